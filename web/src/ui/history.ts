// The patient's access history (issue 27): which rows verified, the filters a patient
// understands (who, what, why, only emergencies, only the rows that did not verify), and the
// two downloads — CSV for a spreadsheet, and a FHIR R4 Bundle of AuditEvents shaped exactly as
// the CLI's `medledger verify access P --export fhir` (crates/query/src/export.rs) so both
// exports agree. Pure, no DOM and no clock or randomness: the same verified rows always give
// the same bytes. Only rows this browser VERIFIED go into a download; the rest are counted.

import { sha256 } from '@noble/hashes/sha2.js';
import { toHex } from '../bytes.ts';
import * as keys from '../keys.ts';
import type { Read } from '../ledger.ts';
import { Action, actionName, purposeName, reviewName, type AccessEvent } from '../messages.ts';
import { partyWords, readerWords, type NameBook } from './names.ts';
import { actionWords, classWords, purposeWords, reviewWords } from './words.ts';

// ---- the rows ----

/** One entry of the history as the page shows it: the event and whether it verified. */
export interface AccessRow {
  /** Its place in the history (the ledger's event index). */
  index: number;
  event?: AccessEvent;
  /** Proven at the certified state, decoded, and the entry the history names at `index`. */
  ok: boolean;
  /** The gateway refused this key the read (403): not a failed check. */
  denied: boolean;
  /** Why it did not verify (the verifier's words; `reasonWords` turns them into plain ones). */
  reason?: string;
}

/**
 * Checks each read entry of `patient`'s history: verified only when its proof verified and it
 * is the event the history names at that place (its index, this patient), so a gateway cannot
 * swap or replay entries.
 */
export function checkRows(rows: { read: Read; event?: AccessEvent }[], patient: string): AccessRow[] {
  return rows.map(({ read, event }, i) => {
    const here = !!event && event.index === BigInt(i) && event.patientId === patient;
    const ok = read.verified && here;
    const reason = ok ? undefined : (read.error ?? (!event ? 'the entry is missing' : 'the entry is not the one your history names here'));
    return { index: i, event, ok, denied: !!read.denied, reason };
  });
}

/** Newest first (the ledger appends, so the highest index is the newest access). */
export const newestFirst = (rows: AccessRow[]): AccessRow[] => [...rows].sort((a, b) => b.index - a.index);

// ---- filters ----

/** What the patient asked to see; "" (or false) means no restriction. */
export interface Filter {
  /** A member id (`AccessEvent.actor`): that hospital, lab or insurer, and its practitioners. */
  who: string;
  /** A record type (`AccessEvent.data_class`, a FHIR resource type). */
  type: string;
  /** A purpose name (`TREAT`). */
  purpose: string;
  /** Only emergency (break-glass) accesses. */
  breakGlass: boolean;
  /** Only the rows that are not verified (failed, or not permitted). */
  problems: boolean;
}

export const NO_FILTER: Filter = { who: '', type: '', purpose: '', breakGlass: false, problems: false };

export const isFiltered = (f: Filter): boolean => !!(f.who || f.type || f.purpose || f.breakGlass || f.problems);

/** Whether a row passes every part of the filter. A row without an event passes only "" parts. */
export function matches(r: AccessRow, f: Filter): boolean {
  const e = r.event;
  if (f.who && e?.actor !== f.who) return false;
  if (f.type && e?.dataClass !== f.type) return false;
  if (f.purpose && (!e || purposeName(e.purpose) !== f.purpose)) return false;
  if (f.breakGlass && !e?.breakGlass) return false;
  if (f.problems && r.ok) return false;
  return true;
}

export interface Choice {
  value: string;
  label: string;
}

export interface Choices {
  who: Choice[];
  type: Choice[];
  purpose: Choice[];
}

/**
 * The options of the who / what / why filters, from the rows shown, in words (member names only
 * where proven, else the id), sorted by their words. A value the patient picked that no row has
 * any more (after a refresh) stays offered, so a filter is never silently dropped.
 */
export function filterChoices(rows: AccessRow[], names: NameBook, keep: Filter = NO_FILTER): Choices {
  const who = new Map<string, string>();
  const type = new Map<string, string>();
  const purpose = new Map<string, string>();
  for (const { event: e } of rows) {
    if (!e) continue;
    if (e.actor) who.set(e.actor, partyWords(names, e.actor).main);
    if (e.dataClass) type.set(e.dataClass, classWords(e.dataClass));
    const p = purposeName(e.purpose);
    purpose.set(p, purposeWords(p));
  }
  if (keep.who && !who.has(keep.who)) who.set(keep.who, partyWords(names, keep.who).main);
  if (keep.type && !type.has(keep.type)) type.set(keep.type, classWords(keep.type));
  if (keep.purpose && !purpose.has(keep.purpose)) purpose.set(keep.purpose, purposeWords(keep.purpose));
  // Two members with the same name stay apart by their ids.
  const labels = [...who.values()];
  for (const [id, name] of who) if (name !== id && labels.filter((l) => l === name).length > 1) who.set(id, `${name} (${id})`);
  const sorted = (m: Map<string, string>): Choice[] =>
    [...m].map(([value, label]) => ({ value, label })).sort((a, b) => a.label.localeCompare(b.label, 'en') || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  return { who: sorted(who), type: sorted(type), purpose: sorted(purpose) };
}

/** What the filters show, counted, and what they hide that did not verify. */
export interface Shown {
  shown: number;
  total: number;
  /** Rows hidden by the filters that are not verified (failed or not permitted). */
  hiddenProblems: number;
}

export function countShown(rows: AccessRow[], f: Filter): Shown {
  let shown = 0;
  let hiddenProblems = 0;
  for (const r of rows) {
    if (matches(r, f)) shown++;
    else if (!r.ok) hiddenProblems++;
  }
  return { shown, total: rows.length, hiddenProblems };
}

const accesses = (n: number) => `${n} access${n === 1 ? '' : 'es'}`;

/**
 * "Showing N of M", and — since filtering never hides trouble — how many of the rows the filters
 * hide did not verify (the banner above counts every row, not only those shown).
 */
export function countText(s: Shown): string {
  const head = s.shown === s.total ? (s.total === 1 ? 'Showing the 1 access.' : `Showing all ${accesses(s.total)}.`) : `Showing ${s.shown} of ${accesses(s.total)}.`;
  if (s.hiddenProblems === 0) return head;
  const n = s.hiddenProblems;
  return `${head} Hidden by the filters: ${n} ${n === 1 ? 'entry that' : 'entries that'} could NOT be verified or ${n === 1 ? 'was' : 'were'} not shown to you — the message at the top counts ${n === 1 ? 'it' : 'them'}.`;
}

// ---- what goes into a download ----

/** The last second a FHIR instant (four-digit year) can name: 9999-12-31T23:59:59Z. */
export const LAST_SECOND = 253_402_300_799n;

/** Unix seconds as a FHIR instant `YYYY-MM-DDTHH:MM:SSZ` (UTC), or undefined past LAST_SECOND. */
export function utcInstant(secs: bigint): string | undefined {
  if (secs < 0n || secs > LAST_SECOND) return undefined;
  return new Date(Number(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export interface Exportable {
  /** The verified events, in ledger order (oldest first), as the CLI exports them. */
  events: AccessEvent[];
  /** Rows left out: not verified (failed or not permitted), or with no time a FHIR instant can say. */
  leftOut: number;
}

/** The rows a download may hold: only those this browser verified. */
export function exportable(rows: AccessRow[]): Exportable {
  const events = [...rows]
    .sort((a, b) => a.index - b.index)
    .flatMap((r) => (r.ok && r.event && utcInstant(r.event.time) !== undefined ? [r.event] : []));
  return { events, leftOut: rows.length - events.length };
}

/** What the page says beside the download buttons. */
export function downloadNote(x: Exportable, complete: boolean): string {
  const kept = x.events.length;
  const head = kept === 0
    ? 'No verified access to download yet.'
    : `The files hold the ${kept === 1 ? '1 access' : `${kept} accesses`} verified in this browser: your whole history, whatever the filters show.`;
  const out = x.leftOut === 0 ? '' : ` ${x.leftOut} ${x.leftOut === 1 ? 'entry that' : 'entries that'} could NOT be verified ${x.leftOut === 1 ? 'is' : 'are'} left out.`;
  const gap = complete ? '' : ' Your history could NOT be verified complete, so the files may miss accesses.';
  return `${head}${out}${gap}`;
}

// ---- CSV ----

/** Leading characters a spreadsheet may take for a formula (OWASP "CSV injection"). */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * One CSV field: a value a spreadsheet would run as a formula gets a leading `'`; then, as RFC
 * 4180 says, a field holding a comma, a double quote, CR or LF is quoted, quotes doubled.
 */
export function csvField(value: string): string {
  const v = FORMULA_START.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** One CSV record, ended by CRLF (RFC 4180). */
export const csvRecord = (fields: string[]): string => `${fields.map(csvField).join(',')}\r\n`;

export const CSV_HEADER = [
  'when_utc',
  'who',
  'who_id',
  'organisation',
  'organisation_id',
  'what',
  'record_id',
  'action',
  'why',
  'allowed_by',
  'consent_id',
  'emergency',
  'review',
  'ledger_height',
  'event_index',
];

/**
 * The verified access history as CSV (RFC 4180, CRLF): one record per event in the order given,
 * in the page's words — who by proven name (else the id), what, why — with the ids beside them.
 */
export function historyCsv(events: AccessEvent[], names: NameBook): string {
  let out = csvRecord(CSV_HEADER);
  for (const e of events) {
    const bg = e.breakGlass;
    out += csvRecord([
      utcInstant(e.time) ?? '',
      readerWords(names, e.actor, e.practitioner).main,
      e.practitioner || e.actor,
      partyWords(names, e.actor).main,
      e.actor,
      classWords(e.dataClass),
      e.recordId,
      actionWords(actionName(e.action)),
      purposeWords(purposeName(e.purpose)),
      bg ? 'Emergency access without your consent' : e.consentId ? `Your consent ${e.consentId}` : '',
      e.consentId,
      bg ? 'yes' : 'no',
      bg ? reviewWords(reviewName(e.review), e.reviewer) : '',
      e.height.toString(),
      e.index.toString(),
    ]);
  }
  return out;
}

// ---- FHIR R4 (mirrors crates/query/src/export.rs) ----

/** The verified state a download was read from (`Bundle.meta`'s provenance extension). */
export interface Proven {
  chainId: string;
  height: bigint;
  /** Hex of the app hash every row's proof checked against (upper case, as the CLI writes it). */
  appHashHex: string;
}

export const VERIFIED_STATE_EXTENSION_URL = 'urn:medledger:fhir:StructureDefinition:verified-state';
export const PATIENT_SYSTEM = 'urn:medledger:patient';
/** DICOM, whose `110153` "Source Role ID" types BALP's client agent (the member). */
const DICOM_SYSTEM = 'http://dicom.nema.org/resources/ontology/DCM';
/** IHE BALP's AuditEvent types (`rest`) and FHIR's RESTful interactions (the subtype). */
const AUDIT_EVENT_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const RESTFUL_INTERACTION_SYSTEM = 'http://hl7.org/fhir/restful-interaction';
const ACT_REASON_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const ENTITY_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/object-role';
const SOURCE_TYPE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/security-source-type';
const PARTICIPATION_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';

/** HL7 v3 ActReason code, display and the phrase people read, as export.rs `purpose_terms`. */
const PURPOSE_TERMS: Record<string, [code: string, display: string, phrase: string]> = {
  TREAT: ['TREAT', 'treatment', 'treatment'],
  ETREAT: ['ETREAT', 'Emergency Treatment', 'emergency treatment (break-glass)'],
  HPAYMT: ['HPAYMT', 'healthcare payment', 'payment'],
  HOPERAT: ['HOPERAT', 'healthcare operations', 'health care operations'],
  HRESCH: ['HRESCH', 'healthcare research', 'research'],
  PATRQT: ['PATRQT', 'patient requested', "the patient's own read"],
};

/** The purpose as a CodeableConcept; an unknown one as text only (no invented code). */
function purposeConcept(purpose: number): object {
  const t = Object.hasOwn(PURPOSE_TERMS, purposeName(purpose)) ? PURPOSE_TERMS[purposeName(purpose)] : undefined;
  if (!t) return { text: `unspecified (purpose code ${purpose})` };
  return { coding: [{ system: ACT_REASON_SYSTEM, code: t[0], display: t[1] }], text: t[2] };
}

const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * The name-based UUID (RFC 9562 version 8) of an event, as export.rs `event_uuid`: the first 16
 * bytes of SHA-256("medledger/fhir/AuditEvent/v1" 0x00 chain id 0x00 `access/{patient}/{index:020}`),
 * version and variant bits set. The same event of the same chain has the same UUID in every export.
 */
export function eventUuid(chainId: string, e: AccessEvent): string {
  const parts = [utf8('medledger/fhir/AuditEvent/v1\0'), utf8(chainId), new Uint8Array([0]), utf8(keys.accessEvent(e.patientId, e.index))];
  const msg = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    msg.set(p, at);
    at += p.length;
  }
  const b = sha256(msg).slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A review state as export.rs writes it (`PENDING`, …; an unknown value `UNSPECIFIED`). */
function reviewCode(r: number): string {
  const n = reviewName(r);
  return /^\d+$/.test(n) ? 'UNSPECIFIED' : n;
}

/** One access event as a BALP-style AuditEvent, field for field as export.rs `audit_event`. */
export function auditEvent(e: AccessEvent, chainId: string): object {
  const purpose = purposeConcept(e.purpose);
  const recorded = utcInstant(e.time);
  if (recorded === undefined) throw new Error(`event ${e.index}: time ${e.time} is past 9999-12-31T23:59:59Z`);
  const agents: object[] = [
    {
      type: { coding: [{ system: DICOM_SYSTEM, code: '110153', display: 'Source Role ID' }] },
      who: { identifier: { value: e.actor }, display: e.actor },
      requestor: !e.practitioner,
      purposeOfUse: [purpose],
    },
  ];
  if (e.practitioner) {
    agents.unshift({
      type: { coding: [{ system: PARTICIPATION_SYSTEM, code: 'AUT', display: 'author (originator)' }] },
      who: { identifier: { system: 'urn:ietf:rfc:3986', value: e.practitioner }, display: e.practitioner },
      requestor: true,
      purposeOfUse: [purpose],
    });
  }
  // FHIR forbids empty strings: a break-glass access has no consent, so no consent-id detail.
  const detail: { type: string; valueString: string }[] = [];
  if (e.consentId) detail.push({ type: 'consent-id', valueString: e.consentId });
  detail.push({ type: 'ledger-height', valueString: e.height.toString() });
  detail.push({ type: 'event-index', valueString: e.index.toString() });
  detail.push({ type: 'ledger-key', valueString: keys.accessEvent(e.patientId, e.index) });
  if (e.breakGlass) detail.push({ type: 'break-glass-review', valueString: reviewCode(e.review) });
  return {
    resourceType: 'AuditEvent',
    type: { system: AUDIT_EVENT_TYPE_SYSTEM, code: 'rest', display: 'Restful Operation' },
    subtype: [
      e.action === Action.WRITE
        ? { system: RESTFUL_INTERACTION_SYSTEM, code: 'update', display: 'update' }
        : { system: RESTFUL_INTERACTION_SYSTEM, code: 'read', display: 'read' },
    ],
    action: e.action === Action.WRITE ? 'U' : 'R',
    recorded,
    outcome: '0',
    purposeOfEvent: [purpose],
    agent: agents,
    source: {
      site: chainId,
      observer: { display: 'medledger' },
      type: [{ system: SOURCE_TYPE_SYSTEM, code: '4', display: 'Application Server' }],
    },
    entity: [
      {
        what: { reference: `Patient/${e.patientId}` },
        type: { system: ENTITY_TYPE_SYSTEM, code: '1', display: 'Person' },
        role: { system: OBJECT_ROLE_SYSTEM, code: '1', display: 'Patient' },
      },
      {
        what: { identifier: { value: e.recordId }, type: e.dataClass, display: `${e.dataClass} ${e.recordId}` },
        type: { system: ENTITY_TYPE_SYSTEM, code: '2', display: 'System Object' },
        role: { system: OBJECT_ROLE_SYSTEM, code: '4', display: 'Domain Resource' },
        detail,
      },
    ],
  };
}

/**
 * A FHIR R4 Bundle (type `collection`) of one AuditEvent per verified event, as export.rs
 * `fhir_audit_bundle`: each entry's `fullUrl` is `urn:uuid:` of `eventUuid`, and `Bundle.meta`
 * names the verified state (chain, height, app hash) and the patient. When rows were left out
 * (not verified), one more part of that extension, `leftOut`, says how many.
 */
export function fhirBundle(patient: string, events: AccessEvent[], proven: Proven, leftOut = 0): object {
  const state: object[] = [
    { url: 'chainId', valueString: proven.chainId },
    { url: 'height', valueString: proven.height.toString() },
    { url: 'appHash', valueString: proven.appHashHex },
    { url: 'patient', valueReference: { type: 'Patient', identifier: { system: PATIENT_SYSTEM, value: patient } } },
  ];
  if (leftOut > 0) state.push({ url: 'leftOut', valueString: String(leftOut) });
  const bundle: Record<string, unknown> = {
    resourceType: 'Bundle',
    meta: { extension: [{ url: VERIFIED_STATE_EXTENSION_URL, extension: state }] },
    type: 'collection',
  };
  // FHIR forbids empty arrays: no events, no `entry`.
  if (events.length > 0) bundle.entry = events.map((e) => ({ fullUrl: `urn:uuid:${eventUuid(proven.chainId, e)}`, resource: auditEvent(e, proven.chainId) }));
  return bundle;
}

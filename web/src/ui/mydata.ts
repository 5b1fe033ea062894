// "My data" on the patient page (issue 27 point 7, issue 25 point 6; GDPR articles 15 and 20):
// the proven list of the records about the patient, each downloadable and decrypted in this
// browser, and everything as one FHIR R4 Bundle.
//
// - The list is `patient-records/{P}/…`, proven by its digest (one proof; each entry alone when
//   the entries do not chain to it), and each record's anchor `record/{id}` with its proof: type,
//   custodian, holders, threshold, share commitments, content hash, key commitment, erasure.
// - Downloads need the patient's box key on the ledger (`patient-box-key/{P}`): an X25519 key
//   derived from the patient's Ed25519 seed (vault.ts `patientBoxKey`), registered once with
//   RegisterPatientBoxKey ("Set up downloads"), believed only once the proven state shows it.
// - A download signs the patient's own LogAccess (purpose PATRQT, unordered) and sends it to the
//   first holder that answers (`GET /records/{id}?purpose=PATRQT`, the tx in the
//   `Medledger-Access-Tx` header, RFC 9421-signed with the patient's key, the header covered;
//   the page's own gateway first), which commits the access and releases its key
//   share sealed to the patient's box key; the other holders are asked for their share of that
//   same access event. The shares are opened here, each checked against the anchored
//   commitments (a wrong one names its holder), combined, and the record opened against the
//   anchored content hash and key commitment (vault.ts). A record held whole by its custodian
//   comes with its whole key sealed to the patient instead.
// - "Download everything": every record that can be opened, the patient's consents (as FHIR
//   Consent, shaped as the gateway's `consent_to_fhir`) and the access history (as AuditEvents,
//   history.ts, re-read after the downloads so that they are in it), one Bundle of type
//   `collection`; Bundle.meta names the verified state, as the history's own download does.

import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { decodeU64, equal, fromBase64, fromUtf8, pad20, toBase64, toHex, utf8 } from '../bytes.ts';
import { parseBroadcastAnswer } from '../broadcast.ts';
import { contentDigest, LABEL, PROFILE_COMPONENTS, profileParams, randomNonce, SIGNATURE_VALIDITY_SECS, signRequest } from '../httpsig.ts';
import * as keys from '../keys.ts';
import type { Attested, Ledger, Read } from '../ledger.ts';
import { encodeTx, type AccessEvent, type Consent, type TxMsg } from '../messages.ts';
import { signingBytes, signTx, type PatientKey } from '../tx.ts';
import { Purpose } from '../gen/medledger/v1/common_pb.ts';
import { GatewaySchema } from '../gen/medledger/v1/gateway_pb.ts';
import { RecordAnchorSchema, type RecordAnchor } from '../gen/medledger/v1/records_pb.ts';
import { PatientBoxKeySchema } from '../gen/medledger/v1/state_pb.ts';
import { LogAccessSchema, RegisterPatientBoxKeySchema, TxBodySchema, UnorderedSchema } from '../gen/medledger/v1/tx_pb.ts';
import { BadShareError, openRecord, openShare, openSharedKey, parseCommitments, patientBoxKey, combine, verifyShare, VaultError, type BoxKey, type KeyShare } from '../vault.ts';
import { $, download, el } from './dom.ts';
import { auditEvent, eventUuid, PATIENT_SYSTEM, utcInstant, VERIFIED_STATE_EXTENSION_URL, type Proven } from './history.ts';
import { partyWords, readNames, type NameBook } from './names.ts';
import type { RowState } from './truth.ts';
import { verifiedText } from './common.ts';
import { classWords, reasonWords, refusalWords } from './words.ts';

// ---- state keys (docs/queries.md) ----

export const recordsCount = (p: string) => `patient-records/${p}/count`;
export const recordsItem = (p: string, n: bigint | number) => `patient-records/${p}/${pad20(n)}`;
export const recordsDigest = (p: string) => `patient-records/${p}/digest`;
export const patientBoxKeyKey = (p: string) => `patient-box-key/${p}`;
export const gatewayKey = (m: string) => `gateway/${m}`;

/** How long an unordered LogAccess signed here stays valid (the ledger allows 60 s). */
export const LOG_ACCESS_VALIDITY_SECS = 30;
/** How long the page waits for the ledger to prove the registered box key. */
export const SETUP_TIMEOUT_MS = 30_000;
/** How long one holder may take to answer. */
export const HOLDER_TIMEOUT_MS = 30_000;
/** The most records the page lists and downloads at once. */
export const MAX_RECORDS = 1000;

// ---- the list, verified ----

/** One record about the patient, as the proven list and anchor say. */
export interface RecordRow {
  /** Position in the patient's list (anchor order). */
  index: number;
  id: string;
  anchor?: RecordAnchor;
  /** The list entry and the anchor verified, and the anchor is this record of this patient. */
  ok: boolean;
  denied: boolean;
  reason?: string;
}

/** Checks each listed record against its anchor: the same id, the same patient. */
export function checkRecords(patient: string, entries: Read[], anchors: Read[]): RecordRow[] {
  return entries.map((entry, index) => {
    let id = '';
    try {
      id = entry.value ? fromUtf8(entry.value) : '';
    } catch {
      id = '';
    }
    const a = anchors[index];
    let anchor: RecordAnchor | undefined;
    let reason = entry.error ?? a?.error;
    try {
      anchor = a?.value ? fromBinary(RecordAnchorSchema, a.value) : undefined;
    } catch {
      reason = 'the record does not decode';
    }
    if (!reason && !id) reason = 'the list entry is missing';
    if (!reason && !anchor) reason = 'the ledger holds no such record';
    if (!reason && anchor && (anchor.recordId !== id || anchor.patientId !== patient)) reason = 'the record is not the one your list names';
    const denied = !!(entry.denied || a?.denied);
    const ok = entry.verified && !!a?.verified && !reason;
    return { index, id, anchor, ok, denied, reason: ok ? undefined : reason };
  });
}

/** "Stored", "Erased (requested)", "Erased" in words. */
export function recordStatusWords(a: RecordAnchor): string {
  if (a.erasedHeight === 0n) return 'Stored';
  return a.erasureConfirmedHeight !== 0n ? 'Erased: its key was destroyed' : 'Erasure asked for, not yet confirmed by every keeper';
}

/** The box key on the ledger compared with the one this key derives. */
export type BoxKeyState = 'registered' | 'absent' | 'other' | 'unverified' | 'denied';

export function boxKeyState(r: Read, mine: Uint8Array, patient: string): BoxKeyState {
  if (r.denied) return 'denied';
  if (!r.verified) return 'unverified';
  if (!r.value) return 'absent';
  try {
    const k = fromBinary(PatientBoxKeySchema, r.value);
    return k.patientId === patient && equal(k.boxKey, mine) ? 'registered' : 'other';
  } catch {
    return 'unverified';
  }
}

export function setupWords(s: BoxKeyState): string {
  switch (s) {
    case 'registered':
      return 'Downloads are set up for this key (verified).';
    case 'absent':
      return 'To download your records, set up downloads once: your key signs a download key onto the ledger, so the hospitals can send your records sealed to you alone. It is made from your key, so there is nothing new to keep.';
    case 'other':
      return 'The download key on the ledger is not the one made from this key (perhaps from a key you replaced): set up downloads again for this key.';
    case 'unverified':
      return 'Whether downloads are set up could NOT be verified.';
    case 'denied':
      return 'The gateway does not let this key read whether downloads are set up.';
  }
}

// ---- the patient's signed LogAccess (unordered) ----

/** A signed unordered LogAccess by the patient of their own record, purpose PATRQT, as crates/gateway `unordered_log_access_tx`. */
export function patientLogAccess(key: PatientKey, chainId: string, patient: string, recordId: string, dataClass: string, nowSecs: number, nonce: Uint8Array = crypto.getRandomValues(new Uint8Array(16))): Uint8Array {
  const body = toBinary(
    TxBodySchema,
    create(TxBodySchema, {
      chainId,
      sequence: 0n,
      unordered: create(UnorderedSchema, { nonce, validUntil: BigInt(nowSecs + LOG_ACCESS_VALIDITY_SECS) }),
      msg: { case: 'logAccess', value: create(LogAccessSchema, { patientId: patient, recordId, dataClass, purpose: Purpose.PATRQT }) },
    }),
  );
  return encodeTx(body, key.publicKey, ed25519.sign(signingBytes(chainId, body), key.seed));
}

export const registerBoxKeyMsg = (patient: string, box: BoxKey): TxMsg => ({ case: 'registerPatientBoxKey', value: create(RegisterPatientBoxKeySchema, { patientId: patient, boxKey: box.public }) });

// ---- asking the holders ----

/** A holder's answer to a read (docs/vault.md, "Requests"); untrusted until opened. */
export interface HolderAnswer {
  record_id: string;
  patient_id: string;
  resource_type: string;
  version: number;
  sealed_base64: string;
  shared_key_base64: string;
  sealed_share_base64?: string;
  reader_member: string;
  access_height: number;
  access_index: number;
}

/** A holder said no (an HTTP status), with its JSON `{error, code?, code_name?}`. */
export class HolderRefusal extends Error {
  constructor(
    readonly holder: string,
    readonly status: number,
    readonly code?: number,
    readonly detail?: string,
  ) {
    super(`${holder}: HTTP ${status}${detail ? `: ${detail}` : ''}`);
  }
}

/** A holder that could not be reached (or answered 5xx): the next one is tried. */
export class HolderDown extends Error {}

export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/** The `GET /records/{id}?purpose=PATRQT` URL at a holder's proven endpoint. */
export const recordUrl = (endpoint: string, recordId: string) => `${endpoint.replace(/\/+$/, '')}/records/${encodeURIComponent(recordId)}?purpose=PATRQT`;

/** What a read asks a holder: the patient's signed access (the first holder), or its share of a committed access (the others). */
export type Ask = { tx: Uint8Array } | { index: number };

/**
 * The headers of one read (docs/vault.md): a browser sends no body with `GET`, so the signed
 * LogAccess travels in `Medledger-Access-Tx` (base64), or the access event in
 * `Medledger-Access-Index`; the RFC 9421 signature covers the profile's components (the empty
 * body's digest) and that header too.
 */
export function readHeaders(seed: Uint8Array, url: string, ask: Ask, nowSecs: number, nonce: string = randomNonce()): [string, string][] {
  const extra: [string, string] = 'tx' in ask ? ['medledger-access-tx', toBase64(ask.tx)] : ['medledger-access-index', String(ask.index)];
  const digest = contentDigest(new Uint8Array(0));
  const params = profileParams(toHex(ed25519.getPublicKey(seed)), nonce, nowSecs, nowSecs + SIGNATURE_VALIDITY_SECS);
  const s = signRequest({ method: 'GET', targetUri: url, headers: [['content-digest', digest], extra] }, LABEL, [...PROFILE_COMPONENTS, extra[0]], params, seed);
  return [['content-digest', digest], extra, ['signature-input', s.signatureInput], ['signature', s.signature]];
}

/** One signed read at a holder. */
export async function askHolder(fetchFn: Fetch, holder: string, endpoint: string, recordId: string, ask: Ask, seed: Uint8Array): Promise<HolderAnswer> {
  const url = recordUrl(endpoint, recordId);
  const headers = readHeaders(seed, url, ask, Math.floor(Date.now() / 1000));
  let res: Response;
  try {
    res = await fetchFn(url, { method: 'GET', headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal: AbortSignal.timeout(HOLDER_TIMEOUT_MS) });
  } catch (e) {
    throw new HolderDown(`${holder}: cannot be reached (${(e as Error).message})`);
  }
  const text = await res.text().catch(() => '');
  if (res.status >= 500 || res.status === 429) throw new HolderDown(`${holder}: HTTP ${res.status}`);
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const code = typeof json?.code === 'number' ? json.code : undefined;
    throw new HolderRefusal(holder, res.status, code, typeof json?.error === 'string' ? json.error.slice(0, 300) : undefined);
  }
  if (!json || typeof json !== 'object') throw new HolderDown(`${holder}: the answer is not JSON`);
  return json as HolderAnswer;
}

/** What a holder said, in words a patient can act on. */
export function refusalText(e: HolderRefusal, memberName: string): string {
  if (e.code) return `${memberName} refused: ${refusalWords(e.code)}`;
  switch (e.status) {
    case 401:
      return `${memberName} did not accept this page's signature (is this device's clock right?).`;
    case 403:
      return `${memberName} would not release it to this key${e.detail ? ` (${e.detail})` : ''}.`;
    case 404:
      return `${memberName} does not have this record.`;
    case 409:
      return `${memberName} already released this read; download again.`;
    case 410:
      return 'The record was erased: its key no longer exists.';
    default:
      return `${memberName} refused (HTTP ${e.status}${e.detail ? `: ${e.detail}` : ''}).`;
  }
}

/** A holder of the record and where its gateway answers (proven `gateway/{member}`). */
export interface Holder {
  member: string;
  /** 1-based position in the anchor's holder list (the share index it keeps). */
  position: number;
  endpoint?: string;
  error?: string;
}

/** The holders, in the order asked: this page's own gateway first (same origin), then the anchor's order. */
export function holderOrder(a: RecordAnchor, ownMember?: string): { member: string; position: number }[] {
  const list = a.holders.length > 0 ? a.holders.map((member, i) => ({ member, position: i + 1 })) : [{ member: a.custodian, position: 1 }];
  const own = list.filter((h) => h.member === ownMember);
  return [...own, ...list.filter((h) => h.member !== ownMember)];
}

export interface Opened {
  plaintext: Uint8Array;
  accessHeight: bigint;
  accessIndex: number;
  /** Holders whose share was used. */
  used: string[];
  /** `holder: why` for each holder that gave nothing usable. */
  problems: string[];
}

function checkAnswer(a: HolderAnswer, anchor: RecordAnchor, patient: string, holder: string): void {
  if (a.record_id !== anchor.recordId || a.patient_id !== patient || a.resource_type !== anchor.resourceType) {
    throw new HolderDown(`${holder}: answered for another record`);
  }
}

/**
 * Reads one record for the patient from its holders and opens it here: the access goes to the
 * first holder that answers; the others are asked for their share of that access; each share is
 * checked before use (a wrong one is named); the record is opened against the anchor.
 */
export async function fetchAndOpen(opts: {
  fetchFn: Fetch;
  key: PatientKey;
  box: BoxKey;
  chainId: string;
  patient: string;
  anchor: RecordAnchor;
  holders: Holder[];
  nowSecs: number;
  names: (member: string) => string;
}): Promise<Opened> {
  const { anchor, patient, box, chainId } = opts;
  const problems: string[] = [];
  const tx = patientLogAccess(opts.key, chainId, patient, anchor.recordId, anchor.resourceType, opts.nowSecs);
  const reachable = opts.holders.filter((h) => {
    if (!h.endpoint) problems.push(`${opts.names(h.member)}: ${h.error ?? 'no gateway on the ledger'}`);
    return !!h.endpoint;
  });
  let first: { h: Holder; a: HolderAnswer } | undefined;
  let rest: Holder[] = [];
  for (let i = 0; i < reachable.length; i++) {
    const h = reachable[i];
    try {
      const a = await askHolder(opts.fetchFn, h.member, h.endpoint!, anchor.recordId, { tx }, opts.key.seed);
      checkAnswer(a, anchor, patient, h.member);
      first = { h, a };
      rest = reachable.slice(i + 1);
      break;
    } catch (e) {
      // A refusal (the ledger or the gateway decided) would be the same at every holder; a
      // holder that does not have the record (yet: replicas follow the anchor) is passed by.
      if (e instanceof HolderRefusal && e.status !== 404) throw new Error(refusalText(e, opts.names(h.member)));
      problems.push(e instanceof HolderRefusal ? refusalText(e, opts.names(h.member)) : (e as Error).message);
    }
  }
  if (!first) throw new Error(`No keeper of this record answered. ${problems.join('; ')}`);
  const meta = { recordId: anchor.recordId, patientId: patient, resourceType: anchor.resourceType, version: BigInt(first.a.version) };
  let sealed: Uint8Array;
  try {
    sealed = fromBase64(first.a.sealed_base64);
  } catch {
    throw new Error(`${opts.names(first.h.member)} sent a record that is not base64.`);
  }
  const anchored = { contentHash: anchor.contentHash, keyId: anchor.keyId };
  const done = (key: Uint8Array, used: string[]): Opened => ({
    plaintext: openRecord(meta, sealed, key, anchored),
    accessHeight: BigInt(first!.a.access_height),
    accessIndex: first!.a.access_index,
    used,
    problems,
  });
  if (anchor.shareCommitments.length === 0) {
    const key = openSharedKey(box, anchor.recordId, patient, fromBase64(first.a.shared_key_base64 || ''));
    return done(key, [first.h.member]);
  }
  const commitments = parseCommitments(anchor.shareCommitments);
  const t = anchor.shareCommitments.length;
  const good: { member: string; share: KeyShare }[] = [];
  const take = (h: Holder, a: HolderAnswer) => {
    try {
      const share = openShare(box, chainId, anchor.recordId, patient, fromBase64(a.sealed_share_base64 ?? ''));
      if (share.index !== h.position || !verifyShare(share, commitments)) throw new BadShareError(h.position);
      if (!good.some((g) => g.share.index === share.index)) good.push({ member: h.member, share });
    } catch (e) {
      problems.push(`${opts.names(h.member)}: ${e instanceof BadShareError ? 'its part of the key does not match the ledger (a wrong share)' : (e as Error).message}`);
    }
  };
  take(first.h, first.a);
  const index = first.a.access_index;
  await Promise.all(
    rest.map(async (h) => {
      if (good.length >= t) return;
      try {
        const a = await askHolder(opts.fetchFn, h.member, h.endpoint!, anchor.recordId, { index }, opts.key.seed);
        checkAnswer(a, anchor, patient, h.member);
        if (good.length < t) take(h, a);
      } catch (e) {
        problems.push(e instanceof HolderRefusal ? refusalText(e, opts.names(h.member)) : (e as Error).message);
      }
    }),
  );
  if (good.length < t) throw new Error(`Only ${good.length} of the ${t} parts of the key needed arrived. ${problems.join('; ')}`);
  const used = good.slice(0, t);
  return done(
    combine(
      used.map((g) => g.share),
      anchor.shareCommitments,
    ),
    used.map((g) => g.member),
  );
}

// ---- FHIR ----

/** A name-based UUID (version 8, as history.ts `eventUuid`) of `kind` and `key` on `chainId`. */
export function nameUuid(kind: string, chainId: string, key: string): string {
  const b = sha256(utf8(`medledger/fhir/${kind}/v1\0${chainId}\0${key}`)).slice(0, 16);
  b[6] = (b[6] & 0x0f) | 0x80;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const ACT_REASON = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CONSENT_SCOPE = 'http://terminology.hl7.org/CodeSystem/consentscope';
const LOINC = 'http://loinc.org';
const CONSENT_ACTION = 'http://terminology.hl7.org/CodeSystem/consentaction';
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';
const PARTICIPATION = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
const DID_SYSTEM = 'urn:ietf:rfc:3986';
const RECORD_SYSTEM = 'urn:medledger:record';
const STUDY_EXTENSION = 'urn:medledger:fhir:StructureDefinition:research-study';
const PURPOSE_CODES: Record<number, string> = { 1: 'TREAT', 2: 'ETREAT', 3: 'HPAYMT', 4: 'HOPERAT', 5: 'HRESCH' };

/** The ledger's consent as a FHIR R4 Consent, field for field as crates/gateway `consent_to_fhir`. */
export function consentToFhir(c: Consent): Record<string, unknown> {
  const research = c.purposes.includes(5);
  const provision: Record<string, unknown> = { type: 'permit' };
  const start = c.notBefore !== 0n ? utcInstant(c.notBefore) : undefined;
  const end = c.notAfter !== 0n ? utcInstant(c.notAfter) : undefined;
  if (start || end) provision.period = { ...(start ? { start } : {}), ...(end ? { end } : {}) };
  provision.actor = [
    {
      role: { coding: [{ system: PARTICIPATION, code: 'IRCP', display: 'information recipient' }] },
      reference: c.grantee.startsWith('did:') ? { type: 'Practitioner', identifier: { system: DID_SYSTEM, value: c.grantee } } : { reference: `Organization/${c.grantee}` },
    },
  ];
  const actions = c.actions.length === 0 ? [1] : c.actions;
  provision.action = actions.map((a) => ({ coding: [{ system: CONSENT_ACTION, code: a === 2 ? 'correct' : 'access' }] }));
  const purposes = c.purposes.flatMap((p) => (PURPOSE_CODES[p] ? [{ system: ACT_REASON, code: PURPOSE_CODES[p] }] : []));
  if (purposes.length) provision.purpose = purposes;
  const classes = c.dataClasses.filter((k) => k !== '*').map((k) => ({ system: RESOURCE_TYPES, code: k }));
  if (classes.length) provision.class = classes;
  if (c.recordIds.length) provision.data = c.recordIds.map((r) => ({ meaning: 'instance', reference: { identifier: { system: RECORD_SYSTEM, value: r } } }));
  if (c.denyClasses.length) provision.provision = [{ type: 'deny', class: c.denyClasses.map((k) => ({ system: RESOURCE_TYPES, code: k })) }];
  const out: Record<string, unknown> = {
    resourceType: 'Consent',
    id: c.id,
    status: c.revokedHeight === 0n ? 'active' : 'inactive',
    scope: { coding: [{ system: CONSENT_SCOPE, code: research ? 'research' : 'patient-privacy' }] },
    category: [{ coding: [{ system: LOINC, code: '59284-0', display: 'Patient Consent' }] }],
    patient: { reference: `Patient/${c.patientId}` },
    policyRule: { coding: [{ system: ACT_CODE, code: 'OPTIN' }] },
    provision,
  };
  if (c.studyId) out.extension = [{ url: STUDY_EXTENSION, valueString: c.studyId }];
  return out;
}

/** A record's bytes as a FHIR resource: the JSON resource it is, else a Binary holding it. */
export function recordResource(plaintext: Uint8Array): Record<string, unknown> {
  try {
    const j = JSON.parse(fromUtf8(plaintext));
    if (j && typeof j === 'object' && !Array.isArray(j) && typeof j.resourceType === 'string') return j;
  } catch {
    // not JSON: kept as it is, below
  }
  return { resourceType: 'Binary', contentType: 'application/octet-stream', data: toBase64(plaintext) };
}

export interface Everything {
  patient: string;
  proven: Proven;
  records: { id: string; plaintext: Uint8Array; resourceType: string }[];
  /** Records that could not be downloaded (listed in Bundle.meta). */
  recordsLeftOut: number;
  consents: Consent[];
  events: AccessEvent[];
  /** Access events not verified, left out. */
  eventsLeftOut: number;
}

/**
 * Everything as one FHIR R4 Bundle (type `collection`): the records (each its own resource),
 * the consents, the access history as AuditEvents; Bundle.meta names the verified state, and
 * how many records or accesses were left out.
 */
export function everythingBundle(x: Everything): object {
  const chain = x.proven.chainId;
  const state: object[] = [
    { url: 'chainId', valueString: chain },
    { url: 'height', valueString: x.proven.height.toString() },
    { url: 'appHash', valueString: x.proven.appHashHex },
    { url: 'patient', valueReference: { type: 'Patient', identifier: { system: PATIENT_SYSTEM, value: x.patient } } },
  ];
  if (x.eventsLeftOut > 0) state.push({ url: 'leftOut', valueString: String(x.eventsLeftOut) });
  if (x.recordsLeftOut > 0) state.push({ url: 'recordsLeftOut', valueString: String(x.recordsLeftOut) });
  const entry = [
    ...x.records.map((r) => ({ fullUrl: `urn:uuid:${nameUuid('record', chain, keys.record(r.id))}`, resource: recordResource(r.plaintext) })),
    ...x.consents.map((c) => ({ fullUrl: `urn:uuid:${nameUuid('Consent', chain, keys.consent(c.id))}`, resource: consentToFhir(c) })),
    ...x.events.map((e) => ({ fullUrl: `urn:uuid:${eventUuid(chain, e)}`, resource: auditEvent(e, chain) })),
  ];
  const bundle: Record<string, unknown> = { resourceType: 'Bundle', meta: { extension: [{ url: VERIFIED_STATE_EXTENSION_URL, extension: state }] }, type: 'collection' };
  if (entry.length) bundle.entry = entry;
  return bundle;
}

/** A safe file name part of an id. */
export const fileId = (id: string) => id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'record';

// ---- the page ----

/** What the section needs of the patient page, read when it acts. */
export interface PageContext {
  ledger: Ledger;
  key: PatientKey;
  patient: string;
  /** This page's gateway's member (its holders are asked first). */
  ownMember?: string;
  /** The verified consents shown. */
  consents: Consent[];
  /** The verified access events shown (oldest first), those left out, and the state they were read at. */
  history?: { events: AccessEvent[]; leftOut: number; proven: Proven };
}

interface Hooks {
  context: () => PageContext | undefined;
  /** Re-reads the page at a certified height ≥ min (so new accesses and the box key show). */
  refresh: (min: bigint) => Promise<void>;
  status: (text: string, kind: 'ok' | 'warn' | 'error' | 'info') => void;
}

let hooks: Hooks | undefined;
let shown: { patient: string; at: Attested; rows: RecordRow[]; box: BoxKeyState; names: NameBook } | undefined;
let busy = false;

export function wireMyData(h: Hooks): void {
  hooks = h;
  $('#mydata-setup-button').addEventListener('click', () => void setUp());
  $('#download-everything').addEventListener('click', () => void downloadEverything());
}

/** Forgets the previous patient's records (another key was opened). */
export function clearMyData(): void {
  shown = undefined;
  $<HTMLTableElement>('#records').tBodies[0]?.replaceChildren();
  $('#records').hidden = true;
  const sum = $('#mydata-summary');
  sum.textContent = '';
  sum.className = 'summary';
  $('#mydata-setup').hidden = true;
  $('#mydata-download').hidden = true;
  $('#mydata-done').textContent = '';
}

/** Reads the records list, anchors and box key at `at`, verified; renders; the rows' states for the banner. */
export async function showMyData(ledger: Ledger, at: Attested, patient: string, key: PatientKey, current: () => boolean): Promise<RowState[]> {
  const byDigest = await ledger.readListByDigest(at, recordsDigest(patient), (n) => recordsItem(patient, n), (v) => v, MAX_RECORDS);
  const list = byDigest ?? (await ledger.readList(at, recordsCount(patient), (n) => recordsItem(patient, n), MAX_RECORDS));
  const ids = list.items.map((r) => {
    try {
      return r.value ? fromUtf8(r.value) : '?';
    } catch {
      return '?';
    }
  });
  const [anchors, boxRead] = await Promise.all([ledger.readMany(at, ids.map((id) => keys.record(id || '?'))), ledger.read(at, patientBoxKeyKey(patient))]);
  const rows = checkRecords(patient, list.items, anchors);
  const names = await readNames(ledger, at, rows.flatMap((r) => (r.ok && r.anchor ? [r.anchor.custodian] : [])));
  if (!current()) return [];
  const box = boxKeyState(boxRead, patientBoxKey(key.seed).public, patient);
  shown = { patient, at, rows, box, names };
  render(list.count, list.n, rows, box, names);
  // The box key counts once there is a record to download (it is shown only then).
  return [
    { verified: list.count.verified, denied: list.count.denied },
    ...rows.map((r) => ({ verified: r.ok, denied: r.denied })),
    ...(rows.length > 0 ? [{ verified: boxRead.verified, denied: boxRead.denied }] : []),
  ];
}

function render(count: Read, n: bigint, rows: RecordRow[], box: BoxKeyState, names: NameBook): void {
  const table = $<HTMLTableElement>('#records');
  const body = table.tBodies[0] ?? table.appendChild(el('tbody'));
  body.replaceChildren(...[...rows].reverse().map((r) => recordRow(r, names, box)));
  table.hidden = rows.length === 0;
  const cap = table.querySelector('caption');
  if (cap) cap.textContent = 'Your records, newest first';
  const denied = count.denied || rows.some((r) => r.denied);
  const ok = count.verified && rows.every((r) => r.ok);
  const sum = $('#mydata-summary');
  sum.className = `summary ${denied ? 'denied' : ok ? 'ok' : 'bad'}`;
  sum.textContent = denied
    ? 'The gateway does not let this key read your list of records. This is a permission, not a verification failure.'
    : !count.verified
      ? `Your list of records could NOT be verified: ${count.error ?? ''}`
      : ok
        ? rows.length === 0
          ? 'No records about you are stored (verified: the list is complete and empty).'
          : `${n} record(s) about you; the list is complete and every record verified.`
        : `${rows.filter((r) => !r.ok).length} record(s) could NOT be verified.`;
  const setup = $('#mydata-setup');
  setup.hidden = box === 'registered' || rows.length === 0;
  setup.setAttribute('data-box-key', box);
  $('#mydata-setup-text').textContent = setupWords(box);
  $('#mydata-setup-button').hidden = box !== 'absent' && box !== 'other';
  // Consents and the history download even with no record.
  $('#mydata-download').hidden = false;
}

function recordRow(r: RecordRow, names: NameBook, box: BoxKeyState): HTMLTableRowElement {
  const a = r.anchor;
  const erased = !!a && a.erasedHeight !== 0n;
  const who = a && r.ok ? partyWords(names, a.custodian) : undefined;
  const canDownload = r.ok && !erased;
  const button = canDownload
    ? el('button', { type: 'button', class: 'download-record', 'data-record-id': r.id }, 'Download', el('span', { class: 'visually-hidden' }, ` record ${r.id}`))
    : null;
  button?.addEventListener('click', () => void downloadOne(r));
  return el(
    'tr',
    { class: `record-row${r.ok ? '' : ' unverified'}`, 'data-record-id': r.id, 'data-verified': r.ok ? 'yes' : 'no', 'data-erased': erased ? 'yes' : 'no', 'data-box-key': box },
    el('td', { 'data-label': 'What' }, a ? classWords(a.resourceType) : '', el('div', { class: 'small' }, `record ${r.id}`)),
    el('td', { 'data-label': 'Kept by' }, who?.main ?? a?.custodian ?? '', a && a.holders.length > 1 ? el('div', { class: 'small' }, `its key is split among ${a.holders.length} keepers; any ${a.threshold} open it`) : ''),
    el('td', { 'data-label': 'When' }, a ? `Stored in ledger block ${a.anchoredHeight}` : ''),
    el('td', { 'data-label': 'Status' }, a ? recordStatusWords(a) : ''),
    el('td', { 'data-label': 'Checked' }, verifiedText(r.ok, r.denied), !r.ok && !r.denied && r.reason ? el('div', { class: 'why', 'data-error': r.reason }, `Why: ${reasonWords(r.reason)}`) : ''),
    el('td', { 'data-label': 'Download' }, button ?? (erased ? 'Erased: nothing to download' : '')),
  );
}

/** The holders with their proven endpoints, read at the state shown. */
async function holdersOf(ledger: Ledger, at: Attested, a: RecordAnchor, ownMember?: string): Promise<Holder[]> {
  const order = holderOrder(a, ownMember);
  const reads = await ledger.readMany(
    at,
    order.map((h) => gatewayKey(h.member)),
  );
  return order.map((h, i) => {
    const r = reads[i];
    if (!r.verified) return { ...h, error: `its gateway address could NOT be verified (${r.error ?? ''})` };
    if (!r.value) return { ...h, error: 'it has no gateway on the ledger' };
    try {
      const g = fromBinary(GatewaySchema, r.value);
      if (g.memberId !== h.member || !/^https?:\/\//.test(g.endpoint)) return { ...h, error: 'its gateway entry is not its own' };
      return { ...h, endpoint: g.endpoint };
    } catch {
      return { ...h, error: 'its gateway entry does not decode' };
    }
  });
}

function memberNameOf(member: string): string {
  const w = shown ? partyWords(shown.names, member) : undefined;
  return w && w.main !== member ? `${w.main} (${member})` : member;
}

async function openOne(c: PageContext, r: RecordRow): Promise<Opened> {
  if (!shown || !r.anchor) throw new Error('the record is not shown verified');
  if (shown.box !== 'registered') throw new Error(setupWords(shown.box));
  const holders = await holdersOf(c.ledger, shown.at, r.anchor, c.ownMember);
  return fetchAndOpen({
    fetchFn: (url, init) => fetch(url, init),
    key: c.key,
    box: patientBoxKey(c.key.seed),
    chainId: c.ledger.chainId ?? '',
    patient: c.patient,
    anchor: r.anchor,
    holders,
    nowSecs: Math.floor(Date.now() / 1000),
    names: memberNameOf,
  });
}

function done(text: string, kind: 'ok' | 'warn' | 'error'): void {
  const d = $('#mydata-done');
  d.textContent = text;
  d.className = kind === 'ok' ? 'small' : 'small bad';
  d.setAttribute('data-kind', kind);
  hooks?.status(text, kind);
}

async function downloadOne(r: RecordRow): Promise<void> {
  const c = hooks?.context();
  if (!c || busy || !r.anchor) return;
  busy = true;
  document.body.classList.add('busy');
  try {
    hooks?.status(`Downloading record ${r.id}: asking its keepers…`, 'info');
    const o = await openOne(c, r);
    const res = recordResource(o.plaintext);
    const json = res.resourceType === 'Binary' ? undefined : fromUtf8(o.plaintext);
    download(`record-${fileId(r.id)}.${json === undefined ? 'bin' : 'fhir.json'}`, json ?? new Blob([o.plaintext as BlobPart], { type: 'application/octet-stream' }), 'application/fhir+json');
    done(`Saved record ${r.id}: decrypted in this browser and checked against the ledger (from ${o.used.map(memberNameOf).join(' and ')}). Your download is recorded in your access history.${o.problems.length ? ` Not used: ${o.problems.join('; ')}.` : ''}`, 'ok');
    await hooks?.refresh(o.accessHeight);
  } catch (e) {
    done(`Record ${r.id} was not downloaded: ${e instanceof VaultError ? vaultWords(e) : (e as Error).message}`, 'error');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}

/** A check that failed while opening, in words. */
export function vaultWords(e: VaultError): string {
  if (e instanceof BadShareError) return `a keeper sent a wrong part of the key (share ${e.index}): nothing was opened.`;
  switch (e.reason) {
    case 'content-hash-mismatch':
      return 'the record sent is not the one stored on the ledger (its fingerprint differs): nothing was opened.';
    case 'key-commitment-mismatch':
    case 'decrypt-failed':
      return 'the record or its key was changed on the way: nothing was opened.';
    default:
      return e.message;
  }
}

async function downloadEverything(): Promise<void> {
  const c = hooks?.context();
  if (!c || busy || !shown) return;
  busy = true;
  document.body.classList.add('busy');
  try {
    const records: Everything['records'] = [];
    const failed: string[] = [];
    let highest = 0n;
    const wanted = shown.rows.filter((r) => r.ok && r.anchor && r.anchor.erasedHeight === 0n);
    if (wanted.length && shown.box !== 'registered') throw new Error(setupWords(shown.box));
    for (const r of wanted) {
      hooks?.status(`Downloading everything: record ${records.length + failed.length + 1} of ${wanted.length}…`, 'info');
      try {
        const o = await openOne(c, r);
        records.push({ id: r.id, plaintext: o.plaintext, resourceType: r.anchor!.resourceType });
        if (o.accessHeight > highest) highest = o.accessHeight;
      } catch (e) {
        failed.push(`${r.id} (${e instanceof VaultError ? vaultWords(e) : (e as Error).message})`);
      }
    }
    // The downloads are accesses too: read the history again so that the Bundle holds them.
    if (highest > 0n) await hooks?.refresh(highest);
    const now = hooks?.context();
    if (!now || now.patient !== c.patient) return;
    const h = now.history;
    if (!h) throw new Error('your access history is not shown verified yet');
    const leftOut = shown.rows.length - records.length;
    const bundle = everythingBundle({ patient: c.patient, proven: h.proven, records, recordsLeftOut: leftOut, consents: now.consents, events: h.events, eventsLeftOut: h.leftOut });
    const name = `my-data-${fileId(c.patient)}.fhir.json`;
    download(name, `${JSON.stringify(bundle, null, 2)}\n`, 'application/fhir+json');
    const d = $('#mydata-done');
    d.setAttribute('data-records', String(records.length));
    done(
      `Saved ${name}: ${records.length} record(s), ${now.consents.length} consent(s) and ${h.events.length} access(es), all checked in this browser.${leftOut ? ` ${leftOut} record(s) left out${failed.length ? `: ${failed.join('; ')}` : ' (erased or NOT verified)'}.` : ''}`,
      failed.length ? 'warn' : 'ok',
    );
  } catch (e) {
    done(`Nothing was saved: ${(e as Error).message}`, 'error');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}

/** Registers the box key made from this key, then waits until the proven state shows it. */
async function setUp(): Promise<void> {
  const c = hooks?.context();
  if (!c || busy) return;
  const chainId = c.ledger.chainId;
  if (!chainId) return;
  busy = true;
  document.body.classList.add('busy');
  const what = 'Set up downloads';
  try {
    hooks?.status(`${what}: signing and sending…`, 'info');
    const box = patientBoxKey(c.key.seed);
    const at = await c.ledger.attest();
    const seqRead = await c.ledger.read(at, keys.sequence(toHex(c.key.publicKey)));
    if (!seqRead.verified) throw new Error(`your key's sequence could NOT be verified (${seqRead.error ?? ''})`);
    const seq = seqRead.value ? decodeU64(seqRead.value) : 0n;
    const tx = signTx(c.key, chainId, seq, registerBoxKeyMsg(c.patient, box));
    const a = parseBroadcastAnswer(await c.ledger.rpc('broadcast_tx_commit', `tx=0x${toHex(tx.bytes)}`));
    const code = a.checkCode || a.deliverCode;
    if (code) {
      done(`${what}: not done. ${refusalWords(code)}`, 'error');
      return;
    }
    hooks?.status(`${what}: the gateway says it is done; checking with the ledger…`, 'info');
    const until = Date.now() + SETUP_TIMEOUT_MS;
    for (;;) {
      const h = await c.ledger.latestCertifiedHeight();
      if (h >= a.height && a.height > 0n) {
        const proven = await c.ledger.attest(h);
        const r = await c.ledger.read(proven, patientBoxKeyKey(c.patient));
        if (boxKeyState(r, box.public, c.patient) === 'registered') {
          await hooks?.refresh(h);
          done(`${what}: done. The ledger confirms it (committed at height ${a.height} and verified at certified height ${h}). You can now download your records.`, 'ok');
          return;
        }
      }
      if (Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    done(`${what}: NOT confirmed by the ledger. The gateway said it was done (height ${a.height}), but the ledger does not show it. Try again later, or through another hospital's gateway.`, 'warn');
  } catch (e) {
    done(`${what}: could not be completed (${(e as Error).message}).`, 'error');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}

// The patient's access history (issue 27): rows verified or not, the filters (who, what, why,
// only emergencies, only rows not verified) and their count, and the downloads — CSV (RFC 4180,
// formula cells defused) and a FHIR R4 Bundle equal to what the CLI's `verify access --export
// fhir` writes (crates/query/src/export.rs), holding verified rows only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, toBinary } from '@bufbuild/protobuf';
import { fromBase64 } from '../src/bytes.ts';
import * as keys from '../src/keys.ts';
import type { Read } from '../src/ledger.ts';
import { Action, decodeAccessEvent, Purpose, ReviewStatus, type AccessEvent } from '../src/messages.ts';
import { AccessEventSchema, MemberSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerRole, PractitionerSchema, PractitionerStatus } from '../src/gen/medledger/v1/identity_pb.ts';
import type { NameBook } from '../src/ui/names.ts';
import {
  checkRows,
  countShown,
  countText,
  CSV_HEADER,
  csvField,
  downloadNote,
  eventUuid,
  exportable,
  fhirBundle,
  filterChoices,
  isFiltered,
  LAST_SECOND,
  matches,
  newestFirst,
  NO_FILTER,
  historyCsv,
  utcInstant,
  type AccessRow,
  type Filter,
} from '../src/ui/history.ts';

/** 2026-11-21T21:37:45Z (export.rs `NOV_21_2026`). */
const NOV_21_2026 = 1_795_297_065n;
const PT = 'pt-93b566eb3054802214ef8744fdb9fbe9';
const DID = 'did:medledger:ana';

function event(over: Partial<Omit<AccessEvent, '$typeName' | '$unknown'>> = {}): AccessEvent {
  return create(AccessEventSchema, {
    patientId: PT,
    index: 0n,
    actor: 'hospital-a',
    recordId: 'obs-1',
    dataClass: 'Observation',
    purpose: Purpose.TREAT,
    consentId: 'c-1',
    height: 4n,
    time: NOV_21_2026,
    action: Action.READ,
    ...over,
  });
}

const ok = (value?: Uint8Array): Read => ({ key: 'k', value, verified: true });
const member = (id: string, name: string) => ok(toBinary(MemberSchema, create(MemberSchema, { id, name })));
const names: NameBook = new Map([
  ['hospital-a', member('hospital-a', 'Hospital A')],
  ['lab-b', member('lab-b', 'Lab B')],
  [DID, ok(toBinary(PractitionerSchema, create(PractitionerSchema, { did: DID, memberId: 'hospital-a', name: 'Dr Ana Silva', role: PractitionerRole.PHYSICIAN, status: PractitionerStatus.ACTIVE })))],
]);

/** A history of five: two plain reads, a break-glass read, a forged row and a refused one. */
function history(): AccessRow[] {
  const e = [
    event({ index: 0n }),
    event({ index: 1n, actor: 'lab-b', recordId: 'lab-9', dataClass: 'DiagnosticReport', purpose: Purpose.HPAYMT, consentId: 'c-2', height: 6n, time: NOV_21_2026 + 60n }),
    event({ index: 2n, practitioner: DID, purpose: Purpose.ETREAT, consentId: '', breakGlass: true, review: ReviewStatus.PENDING, height: 8n, time: NOV_21_2026 + 120n }),
    event({ index: 3n, actor: 'lab-b', recordId: 'obs-7', height: 9n, time: NOV_21_2026 + 180n }),
    event({ index: 4n, height: 10n, time: NOV_21_2026 + 240n }),
  ];
  return checkRows(
    [
      { read: ok(), event: e[0] },
      { read: ok(), event: e[1] },
      { read: ok(), event: e[2] },
      { read: { key: 'k', verified: false, error: 'the value does not verify against app hash' }, event: e[3] },
      { read: { key: 'k', verified: false, denied: true }, event: e[4] },
    ],
    PT,
  );
}

// ---- rows ----

test('a row verifies only when its proof did and it is the entry the history names there', () => {
  const e = event({ index: 0n });
  const rows = checkRows(
    [
      { read: ok(), event: e },
      { read: ok(), event: e }, // a replayed entry: index 0 shown at place 1
      { read: ok(), event: event({ index: 2n, patientId: 'pt-other' }) },
      { read: ok() },
      { read: { key: 'k', verified: false, error: 'proof does not verify' }, event: event({ index: 4n }) },
      { read: { key: 'k', verified: false, denied: true } },
    ],
    PT,
  );
  assert.deepEqual(rows.map((r) => r.ok), [true, false, false, false, false, false]);
  assert.equal(rows[0].reason, undefined);
  assert.equal(rows[1].reason, 'the entry is not the one your history names here');
  assert.equal(rows[2].reason, 'the entry is not the one your history names here');
  assert.equal(rows[3].reason, 'the entry is missing');
  assert.equal(rows[4].reason, 'proof does not verify');
  assert.deepEqual(rows.map((r) => r.denied), [false, false, false, false, false, true]);
});

test('newest first: the highest index comes first', () => {
  assert.deepEqual(newestFirst(history()).map((r) => r.index), [4, 3, 2, 1, 0]);
});

// ---- filters ----

const pick = (rows: AccessRow[], f: Partial<Filter>) => rows.filter((r) => matches(r, { ...NO_FILTER, ...f })).map((r) => r.index);

test('no filter shows every row, also those not verified', () => {
  const rows = history();
  assert.equal(isFiltered(NO_FILTER), false);
  assert.deepEqual(pick(rows, {}), [0, 1, 2, 3, 4]);
  assert.deepEqual(pick([{ index: 0, ok: false, denied: false, reason: 'the entry is missing' }], {}), [0]);
});

test('filters by who (the member, its practitioners included), record type and purpose', () => {
  const rows = history();
  assert.deepEqual(pick(rows, { who: 'hospital-a' }), [0, 2, 4]);
  assert.deepEqual(pick(rows, { who: 'lab-b' }), [1, 3]);
  assert.deepEqual(pick(rows, { type: 'DiagnosticReport' }), [1]);
  assert.deepEqual(pick(rows, { purpose: 'TREAT' }), [0, 3, 4]);
  assert.deepEqual(pick(rows, { purpose: 'ETREAT' }), [2]);
  // Parts combine: all of them must hold.
  assert.deepEqual(pick(rows, { who: 'lab-b', type: 'Observation' }), [3]);
  assert.deepEqual(pick(rows, { who: 'lab-b', purpose: 'ETREAT' }), []);
  assert.equal(isFiltered({ ...NO_FILTER, type: 'Observation' }), true);
});

test('only emergencies; only rows not verified (failed or not permitted)', () => {
  const rows = history();
  assert.deepEqual(pick(rows, { breakGlass: true }), [2]);
  assert.deepEqual(pick(rows, { problems: true }), [3, 4]);
  assert.deepEqual(pick(rows, { problems: true, who: 'lab-b' }), [3]);
  assert.deepEqual(pick(rows, { problems: true, breakGlass: true }), []);
  // A row without an event passes "only not verified", never a who / what / why.
  const missing: AccessRow = { index: 0, ok: false, denied: false, reason: 'the entry is missing' };
  assert.deepEqual(pick([missing], { problems: true }), [0]);
  assert.deepEqual(pick([missing], { who: 'hospital-a' }), []);
  assert.deepEqual(pick([missing], { breakGlass: true }), []);
});

test('the choices are in words, proven names only, sorted; a picked value no row has stays', () => {
  const rows = history();
  const c = filterChoices(rows, names);
  assert.deepEqual(c.who, [
    { value: 'hospital-a', label: 'Hospital A' },
    { value: 'lab-b', label: 'Lab B' },
  ]);
  assert.deepEqual(c.type, [
    { value: 'DiagnosticReport', label: 'Diagnostic report (DiagnosticReport)' },
    { value: 'Observation', label: 'Lab result (Observation)' },
  ]);
  assert.deepEqual(c.purpose, [
    { value: 'ETREAT', label: 'Emergency treatment' },
    { value: 'HPAYMT', label: 'Payment' },
    { value: 'TREAT', label: 'Treatment' },
  ]);
  // A name that did not verify is not offered as a name: the id is.
  const forged: NameBook = new Map([['hospital-a', { ...member('hospital-a', 'Hospital A'), verified: false, error: 'bad proof' }]]);
  assert.deepEqual(filterChoices(rows, forged).who.map((x) => x.label), ['hospital-a', 'lab-b']);
  // After a refresh without lab-x's rows, the picked lab-x is still offered.
  const kept = filterChoices(rows, names, { ...NO_FILTER, who: 'lab-x', type: 'Immunization', purpose: 'HRESCH' });
  assert.ok(kept.who.some((x) => x.value === 'lab-x' && x.label === 'lab-x'));
  assert.ok(kept.type.some((x) => x.value === 'Immunization' && x.label === 'Vaccination (Immunization)'));
  assert.ok(kept.purpose.some((x) => x.value === 'HRESCH' && x.label === 'Research'));
  // Two members of the same name are told apart by their ids.
  const twins: NameBook = new Map([['hospital-a', member('hospital-a', 'St Mary')], ['lab-b', member('lab-b', 'St Mary')]]);
  assert.deepEqual(filterChoices(rows, twins).who.map((x) => x.label), ['St Mary (hospital-a)', 'St Mary (lab-b)']);
});

test('"showing N of M", and what the filters hide that did not verify is said', () => {
  const rows = history();
  assert.equal(countText(countShown(rows, NO_FILTER)), 'Showing all 5 accesses.');
  assert.equal(countText(countShown(rows.slice(0, 1), NO_FILTER)), 'Showing the 1 access.');
  const bg = countShown(rows, { ...NO_FILTER, breakGlass: true });
  assert.deepEqual(bg, { shown: 1, total: 5, hiddenProblems: 2 });
  assert.match(countText(bg), /^Showing 1 of 5 accesses\. Hidden by the filters: 2 entries that could NOT be verified/);
  const problems = countShown(rows, { ...NO_FILTER, problems: true });
  assert.deepEqual(problems, { shown: 2, total: 5, hiddenProblems: 0 });
  assert.equal(countText(problems), 'Showing 2 of 5 accesses.');
  const lab = countShown(rows, { ...NO_FILTER, who: 'lab-b' });
  assert.match(countText(lab), /^Showing 2 of 5 accesses\. Hidden by the filters: 1 entry that could NOT be verified or was not shown to you/);
});

// ---- what a download holds ----

test('a download holds only verified rows, oldest first, and counts what it left out', () => {
  const x = exportable(newestFirst(history()));
  assert.deepEqual(x.events.map((e) => e.index), [0n, 1n, 2n]);
  assert.equal(x.leftOut, 2);
  assert.equal(downloadNote(x, true), 'The files hold the 3 accesses verified in this browser: your whole history, whatever the filters show. 2 entries that could NOT be verified are left out.');
  assert.match(downloadNote({ events: [], leftOut: 1 }, false), /^No verified access to download yet\. 1 entry that could NOT be verified is left out\. Your history could NOT be verified complete/);
  assert.equal(downloadNote(exportable(history().slice(0, 1)), true), 'The files hold the 1 access verified in this browser: your whole history, whatever the filters show.');
  // A time no FHIR instant can say is left out too, not written as a bad date.
  const late = checkRows([{ read: ok(), event: event({ time: LAST_SECOND + 1n }) }], PT);
  assert.deepEqual(exportable(late), { events: [], leftOut: 1 });
});

test('times are FHIR instants (UTC, seconds, Z), as export.rs writes them', () => {
  assert.equal(utcInstant(0n), '1970-01-01T00:00:00Z');
  assert.equal(utcInstant(86_399n), '1970-01-01T23:59:59Z');
  assert.equal(utcInstant(951_782_400n), '2000-02-29T00:00:00Z');
  assert.equal(utcInstant(NOV_21_2026), '2026-11-21T21:37:45Z');
  assert.equal(utcInstant(LAST_SECOND), '9999-12-31T23:59:59Z');
  assert.equal(utcInstant(LAST_SECOND + 1n), undefined);
  const instant = /^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$/;
  for (const t of [1n, NOV_21_2026, LAST_SECOND]) assert.match(utcInstant(t)!, instant);
});

// ---- CSV ----

test('CSV fields: RFC 4180 quoting', () => {
  assert.equal(csvField('hospital-a'), 'hospital-a');
  assert.equal(csvField(''), '');
  assert.equal(csvField('Lab B, Inc.'), '"Lab B, Inc."');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField('cr\rhere'), '"cr\rhere"');
});

test('CSV fields: a cell a spreadsheet would run as a formula starts with a quote', () => {
  for (const v of ['=1+1', '+1', '-1', '@SUM(A1)', '\tx']) assert.equal(csvField(v), `'${v}`, v);
  assert.equal(csvField('=HYPERLINK("http://x","y")'), `"'=HYPERLINK(""http://x"",""y"")"`);
  assert.equal(csvField('\rx'), `"'\rx"`);
  // Only at the start: inside a value they are plain characters.
  assert.equal(csvField('a=b-c+d@e'), 'a=b-c+d@e');
});

test('the CSV: header, one CRLF record per event in words with the ids beside them', () => {
  const rows = history();
  const csv = historyCsv(exportable(rows).events, names);
  const lines = csv.split('\r\n');
  assert.equal(lines.length, 5, 'header, 3 events, and the empty rest after the last CRLF');
  assert.equal(lines[4], '');
  assert.equal(lines[0], CSV_HEADER.join(','));
  assert.equal(lines[0], 'when_utc,who,who_id,organisation,organisation_id,what,record_id,action,why,allowed_by,consent_id,emergency,review,ledger_height,event_index');
  assert.equal(lines[1], '2026-11-21T21:37:45Z,Hospital A,hospital-a,Hospital A,hospital-a,Lab result (Observation),obs-1,read,Treatment,Your consent c-1,c-1,no,,4,0');
  assert.equal(lines[2], '2026-11-21T21:38:45Z,Lab B,lab-b,Lab B,lab-b,Diagnostic report (DiagnosticReport),lab-9,read,Payment,Your consent c-2,c-2,no,,6,1');
  assert.equal(lines[3], `2026-11-21T21:39:45Z,"Dr Ana Silva, doctor",${DID},Hospital A,hospital-a,Lab result (Observation),obs-1,read,Emergency treatment,Emergency access without your consent,,yes,not reviewed yet,8,2`);
  assert.equal(historyCsv([], names), `${CSV_HEADER.join(',')}\r\n`);
  // A name that did not verify is not written: the id is. A hostile id cannot become a formula.
  const csv2 = historyCsv([event({ actor: '-2+3', action: Action.WRITE })], new Map());
  assert.equal(csv2.split('\r\n')[1], "2026-11-21T21:37:45Z,'-2+3,'-2+3,'-2+3,'-2+3,Lab result (Observation),obs-1,added or changed,Treatment,Your consent c-1,c-1,no,,4,0");
});

// ---- FHIR ----

const proven = { chainId: 'medledger-localnet', height: 9n, appHashHex: '2FAD3ABA' };

test('the event UUID is the one export.rs pins (computed with Python hashlib there)', () => {
  assert.equal(eventUuid('medledger-localnet', event()), '969f9b5c-fe63-8fe9-8c27-b416370c7ded');
  // Index 2 and 4: SHA-256 bytes 6 and 8 are 0x9b, 0xc8 and 0x83, 0x6d, so both the version and the
  // variant bits change them (Python's hashlib, here too).
  assert.equal(eventUuid('medledger-localnet', event({ index: 2n })), '88c8c6c8-dee2-8b39-8895-459467a62433');
  assert.equal(eventUuid('medledger-localnet', event({ index: 4n })), 'c0c681a9-7505-83d4-ade2-6acc56919c49');
  const u = eventUuid('medledger-localnet', event({ index: 1n }));
  assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(eventUuid('another', event()), eventUuid('medledger-localnet', event()));
  assert.equal(eventUuid('medledger-localnet', event()), eventUuid('medledger-localnet', event({ actor: 'lab-b' })), 'named by the state key only');
});

test('a Bundle of one event equals export.rs `fhir_bundle_of_one_event_matches_the_pinned_golden`', () => {
  const treatment = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT', display: 'treatment' }], text: 'treatment' };
  const want = {
    resourceType: 'Bundle',
    meta: {
      extension: [
        {
          url: 'urn:medledger:fhir:StructureDefinition:verified-state',
          extension: [
            { url: 'chainId', valueString: 'medledger-localnet' },
            { url: 'height', valueString: '9' },
            { url: 'appHash', valueString: '2FAD3ABA' },
            { url: 'patient', valueReference: { type: 'Patient', identifier: { system: 'urn:medledger:patient', value: PT } } },
          ],
        },
      ],
    },
    type: 'collection',
    entry: [
      {
        fullUrl: 'urn:uuid:969f9b5c-fe63-8fe9-8c27-b416370c7ded',
        resource: {
          resourceType: 'AuditEvent',
          type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'Restful Operation' },
          subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read', display: 'read' }],
          action: 'R',
          recorded: '2026-11-21T21:37:45Z',
          outcome: '0',
          purposeOfEvent: [treatment],
          agent: [
            {
              type: { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] },
              who: { identifier: { value: 'hospital-a' }, display: 'hospital-a' },
              requestor: true,
              purposeOfUse: [treatment],
            },
          ],
          source: {
            site: 'medledger-localnet',
            observer: { display: 'medledger' },
            type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }],
          },
          entity: [
            {
              what: { reference: `Patient/${PT}` },
              type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
              role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
            },
            {
              what: { identifier: { value: 'obs-1' }, type: 'Observation', display: 'Observation obs-1' },
              type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
              role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '4', display: 'Domain Resource' },
              detail: [
                { type: 'consent-id', valueString: 'c-1' },
                { type: 'ledger-height', valueString: '4' },
                { type: 'event-index', valueString: '0' },
                { type: 'ledger-key', valueString: `access/${PT}/00000000000000000000` },
              ],
            },
          ],
        },
      },
    ],
  };
  assert.deepEqual(fhirBundle(PT, [event()], proven), want);
  // The same rows, the same bytes.
  assert.equal(JSON.stringify(fhirBundle(PT, [event()], proven)), JSON.stringify(fhirBundle(PT, [event()], proven)));
});

/** Every string in a JSON value, with its path. */
function strings(v: unknown, path = '', out: [string, string][] = []): [string, string][] {
  if (typeof v === 'string') out.push([path, v]);
  else if (Array.isArray(v)) v.forEach((x, i) => strings(x, `${path}[${i}]`, out));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) strings(x, `${path}.${k}`, out);
  return out;
}

test('a break-glass AuditEvent: ETREAT, the practitioner as requestor, its review, no empty string', () => {
  const rows = history();
  const b = fhirBundle(PT, exportable(rows).events, proven, exportable(rows).leftOut) as any;
  assert.deepEqual(strings(b).filter(([, s]) => s === ''), []);
  const bg = b.entry[2].resource;
  assert.equal(bg.purposeOfEvent[0].coding[0].code, 'ETREAT');
  assert.equal(bg.purposeOfEvent[0].text, 'emergency treatment (break-glass)');
  assert.equal(bg.agent[0].who.identifier.value, DID);
  assert.equal(bg.agent[0].requestor, true);
  assert.equal(bg.agent[1].who.identifier.value, 'hospital-a');
  assert.equal(bg.agent[1].requestor, false);
  const detail = bg.entity[1].detail;
  assert.ok(!detail.some((d: any) => d.type === 'consent-id'));
  assert.deepEqual(detail.at(-1), { type: 'break-glass-review', valueString: 'PENDING' });
  // Only the verified rows are in it; the two left out are counted in Bundle.meta.
  assert.equal(b.entry.length, 3);
  assert.deepEqual(b.meta.extension[0].extension.at(-1), { url: 'leftOut', valueString: '2' });
  assert.equal(new Set(b.entry.map((e: any) => e.fullUrl)).size, 3);
  // A write is U; an unknown purpose is text only, with no invented code.
  const w = (fhirBundle(PT, [event({ action: Action.WRITE, purpose: 0 as Purpose })], proven) as any).entry[0].resource;
  assert.equal(w.action, 'U');
  assert.deepEqual(w.purposeOfEvent[0], { text: 'unspecified (purpose code 0)' });
  // No events: a Bundle without `entry` (FHIR forbids empty arrays), and no leftOut when none was.
  const empty = fhirBundle(PT, [], proven) as any;
  assert.equal('entry' in empty, false);
  assert.equal(empty.meta.extension[0].extension.length, 4);
});

const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
const CLI = JSON.parse(readFileSync(new URL('./vectors/fhir-auditevent-bundle.json', import.meta.url), 'utf8'));

/** The patient's events as the localnet stored them (the captured abci_query values). */
function localnetEvents(): AccessEvent[] {
  const out: AccessEvent[] = [];
  for (let i = 0; ; i++) {
    const hex = Buffer.from(keys.accessEvent(V.patient_id, i)).toString('hex');
    const a = Object.entries(V.answers).find(([q]) => q.includes(`data=0x${hex}&`))?.[1] as any;
    if (!a) return out;
    out.push(decodeAccessEvent(fromBase64(a.result.response.value)));
  }
}

test("the page's AuditEvents of the localnet patient are the CLI's, field for field", () => {
  const events = localnetEvents();
  assert.equal(events.length, 4);
  assert.ok(events.some((e) => e.breakGlass) && events.some((e) => e.practitioner));
  const b = fhirBundle(V.patient_id, events, { chainId: V.chain_id, height: BigInt(V.cert_height), appHashHex: 'AB' }) as any;
  assert.equal(b.entry.length, 4);
  for (let i = 0; i < 4; i++) {
    const cli = CLI.entry.find((x: any) => x.resource.entity[1].detail.some((d: any) => d.type === 'event-index' && d.valueString === String(i)));
    assert.ok(cli, `the CLI's bundle has event ${i}`);
    assert.deepEqual(b.entry[i].resource, cli.resource, `event ${i}`);
  }
});

test('the Bundle the page builds passes the FHIR R4 validator (tools/validate-fhir.mjs)', () => {
  const rows = checkRows(localnetEvents().map((event) => ({ read: ok(), event })), V.patient_id);
  rows[1] = { ...rows[1], ok: false, reason: 'proof does not verify' };
  const x = exportable(rows);
  const b = fhirBundle(V.patient_id, x.events, { chainId: V.chain_id, height: BigInt(V.cert_height), appHashHex: 'AB' }, x.leftOut);
  const dir = mkdtempSync(join(tmpdir(), 'fhir-'));
  const file = join(dir, 'page-bundle.json');
  writeFileSync(file, JSON.stringify(b));
  const script = fileURLToPath(new URL('../tools/validate-fhir.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

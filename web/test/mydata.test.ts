// "My data" (src/ui/mydata.ts), the parts that need no browser: the records list checked
// against the anchors, the box key's state, the patient's signed LogAccess (PATRQT, unordered),
// reading a record from its holders (the vectors crates/vault wrote, served by holders played
// here: a wrong share is named and the others still open it; a refusal is said in words), the
// FHIR Consent and the Bundle of everything (FHIR.js-valid).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromBase64, fromHex, toBase64, toHex, utf8 } from '../src/bytes.ts';
import { Purpose } from '../src/gen/medledger/v1/common_pb.ts';
import { RecordAnchorSchema, type RecordAnchor } from '../src/gen/medledger/v1/records_pb.ts';
import { AccessEventSchema, ConsentSchema, PatientBoxKeySchema } from '../src/gen/medledger/v1/state_pb.ts';
import { TxBodySchema, TxSchema } from '../src/gen/medledger/v1/tx_pb.ts';
import type { Read } from '../src/ledger.ts';
import { componentValue } from '../src/httpsig.ts';
import { signingBytes, type PatientKey } from '../src/tx.ts';
import { patientBoxKey } from '../src/vault.ts';
import {
  boxKeyState,
  checkRecords,
  consentToFhir,
  everythingBundle,
  fetchAndOpen,
  holderOrder,
  patientLogAccess,
  recordResource,
  recordUrl,
  setupWords,
  type Fetch,
  type Holder,
  type HolderAnswer,
} from '../src/ui/mydata.ts';

const v = JSON.parse(readFileSync(new URL('./vectors/vault.json', import.meta.url), 'utf8'));
const P: string = v.patient_id;
const CHAIN: string = v.chain_id;
const seed = fromHex(v.patient_seed);
const key: PatientKey = { name: 'p', seed, publicKey: ed25519.getPublicKey(seed) };
const box = patientBoxKey(seed);

const read = (value?: Uint8Array, verified = true, extra: Partial<Read> = {}): Read => ({ key: 'k', value, verified, ...extra });
const anchorOf = (r: any, holders: string[] = [], commitments: string[] = []): RecordAnchor =>
  create(RecordAnchorSchema, {
    recordId: r.record_id,
    patientId: P,
    custodian: holders[0] ?? 'hospital-a',
    resourceType: r.resource_type,
    contentHash: fromHex(r.content_hash),
    keyId: r.key_id,
    anchoredHeight: 7n,
    holders,
    threshold: commitments.length,
    shareCommitments: commitments.map(fromHex),
  });

test('the records list: each entry checked against its anchor (same id, same patient)', () => {
  const a = anchorOf(v.threshold);
  const good = toBinary(RecordAnchorSchema, a);
  const other = toBinary(RecordAnchorSchema, create(RecordAnchorSchema, { ...a, patientId: 'pt-other' }));
  const rows = checkRecords(P, [read(utf8('rec-threshold')), read(utf8('rec-threshold')), read(utf8('rec-x')), read(utf8('rec-y'), false, { error: 'proof' }), read(utf8('rec-z'))], [read(good), read(other), read(undefined), read(good), read(utf8('not a proto'))]);
  assert.deepEqual(
    rows.map((r) => r.ok),
    [true, false, false, false, false],
  );
  assert.equal(rows[1].reason, 'the record is not the one your list names');
  assert.equal(rows[2].reason, 'the ledger holds no such record');
  assert.equal(rows[3].reason, 'proof');
  assert.equal(rows[0].anchor?.resourceType, 'Observation');
  const denied = checkRecords(P, [read(undefined, false, { denied: true })], [read(undefined, false, { denied: true })]);
  assert.equal(denied[0].denied, true);
});

test("the box key on the ledger: this key's, absent, another, not verified, not permitted", () => {
  const mine = toBinary(PatientBoxKeySchema, create(PatientBoxKeySchema, { patientId: P, boxKey: box.public, setHeight: 3n }));
  const other = toBinary(PatientBoxKeySchema, create(PatientBoxKeySchema, { patientId: P, boxKey: new Uint8Array(32).fill(9), setHeight: 3n }));
  assert.equal(boxKeyState(read(mine), box.public, P), 'registered');
  assert.equal(boxKeyState(read(mine), box.public, 'pt-other'), 'other');
  assert.equal(boxKeyState(read(undefined), box.public, P), 'absent');
  assert.equal(boxKeyState(read(other), box.public, P), 'other');
  assert.equal(boxKeyState(read(mine, false), box.public, P), 'unverified');
  assert.equal(boxKeyState(read(undefined, false, { denied: true }), box.public, P), 'denied');
  for (const s of ['registered', 'absent', 'other', 'unverified', 'denied'] as const) assert.ok(setupWords(s).length > 10);
  assert.doesNotMatch(setupWords('absent'), /medledger |HKDF|X25519/);
});

test("the patient's LogAccess: unordered, PATRQT, the anchor's type, signed by the patient", () => {
  const nonce = new Uint8Array(16).fill(5);
  const bytes = patientLogAccess(key, CHAIN, P, 'rec-1', 'Observation', 1_700_000_000, nonce);
  const tx = fromBinary(TxSchema, bytes);
  assert.ok(ed25519.verify(tx.signature, signingBytes(CHAIN, tx.body), key.publicKey));
  assert.deepEqual(tx.publicKey, key.publicKey);
  const body = fromBinary(TxBodySchema, tx.body);
  assert.equal(body.chainId, CHAIN);
  assert.equal(body.sequence, 0n);
  assert.deepEqual(body.unordered?.nonce, nonce);
  assert.equal(body.unordered?.validUntil, 1_700_000_030n);
  assert.equal(body.msg.case, 'logAccess');
  const m = body.msg.value as any;
  assert.deepEqual([m.patientId, m.recordId, m.dataClass, m.purpose, m.action], [P, 'rec-1', 'Observation', Purpose.PATRQT, 0]);
  assert.equal(Purpose.PATRQT, 6);
});

test("holders: this page's own gateway first, then the anchor's order; a record held whole has its custodian", () => {
  const a = anchorOf(v.threshold, ['hospital-a', 'lab-b', 'clinic-c'], v.threshold.commitments);
  assert.deepEqual(holderOrder(a, 'lab-b'), [
    { member: 'lab-b', position: 2 },
    { member: 'hospital-a', position: 1 },
    { member: 'clinic-c', position: 3 },
  ]);
  assert.deepEqual(holderOrder(anchorOf(v.whole), 'x'), [{ member: 'hospital-a', position: 1 }]);
  assert.equal(recordUrl('http://127.0.0.1:9000/', 'rec 1'), 'http://127.0.0.1:9000/records/rec%201?purpose=PATRQT');
});

/** Holders played here: each answers with what it is given, and checks the request is signed by the patient. */
function holders(answers: Record<string, (body: any) => { status: number; json?: any }>): { fetchFn: Fetch; asked: string[] } {
  const asked: string[] = [];
  const fetchFn: Fetch = async (url, init) => {
    const member = new URL(url).hostname.split('.')[0];
    asked.push(member);
    assert.equal(init.method, 'GET');
    assert.equal(init.body, undefined, 'a browser sends no body with GET');
    const h = new Map(init.headers as [string, string][]);
    const input = h.get('signature-input') ?? '';
    assert.match(input, new RegExp(`keyid="${toHex(key.publicKey)}"`));
    const tx = h.get('medledger-access-tx');
    const index = h.get('medledger-access-index');
    assert.ok((tx === undefined) !== (index === undefined), 'exactly one of the two headers');
    // The signature covers that header too, and verifies over the signature base.
    assert.match(input, tx ? /"content-digest" "medledger-access-tx"\)/ : /"content-digest" "medledger-access-index"\)/);
    const headers: [string, string][] = [...h.entries()].filter(([n]) => n !== 'signature' && n !== 'signature-input');
    const params = input.slice(input.indexOf('=') + 1);
    const components = /^\(([^)]*)\)/.exec(params)![1].split(' ').map((c) => c.slice(1, -1));
    let base = '';
    for (const c of components) base += `"${c}": ${componentValue({ method: 'GET', targetUri: url, headers }, c)}\n`;
    base += `"@signature-params": ${params}`;
    const sig = fromBase64(/^sig1=:([^:]+):$/.exec(h.get('signature') ?? '')![1]);
    assert.ok(ed25519.verify(sig, utf8(base), key.publicKey), 'the read is signed by the patient');
    const body = tx ? { log_access_tx_base64: tx } : { access_index: Number(index) };
    const answer = answers[member];
    if (!answer) throw new TypeError('Failed to fetch');
    const r = answer(body);
    return new Response(JSON.stringify(r.json ?? { error: 'no' }), { status: r.status });
  };
  return { fetchFn, asked };
}

const T = v.threshold;
const members = ['hospital-a', 'lab-b', 'clinic-c'];
const endpoints: Holder[] = members.map((m, i) => ({ member: m, position: i + 1, endpoint: `http://${m}.test` }));
const answer = (i: number, sealedShare: string, first: boolean): HolderAnswer => ({
  record_id: T.record_id,
  patient_id: P,
  resource_type: 'Observation',
  version: 1,
  sealed_base64: first ? toBase64(fromHex(T.sealed)) : '',
  shared_key_base64: '',
  sealed_share_base64: toBase64(fromHex(sealedShare)),
  reader_member: P,
  access_height: 40,
  access_index: 3,
});
const open = (fetchFn: Fetch, anchor: RecordAnchor, hs: Holder[] = endpoints) =>
  fetchAndOpen({ fetchFn, key, box, chainId: CHAIN, patient: P, anchor, holders: hs, nowSecs: Math.floor(Date.now() / 1000), names: (m) => m });

test('a threshold record read from its holders opens to the bytes stored; the first holder down is skipped', async () => {
  const anchor = anchorOf(T, members, T.commitments);
  const { fetchFn, asked } = holders({
    'lab-b': (b) => {
      assert.ok(b.log_access_tx_base64.length > 0, 'the first holder asked gets the signed access');
      return { status: 200, json: answer(1, T.sealed_shares[1], true) };
    },
    'clinic-c': (b) => {
      assert.equal(b.access_index, 3, 'the others are asked for their share of that access');
      return { status: 200, json: answer(2, T.sealed_shares[2], false) };
    },
  });
  const o = await open(fetchFn, anchor);
  assert.equal(toHex(o.plaintext), T.plaintext);
  assert.deepEqual(o.used, ['lab-b', 'clinic-c']);
  assert.equal(o.accessHeight, 40n);
  assert.deepEqual(asked, ['hospital-a', 'lab-b', 'clinic-c']);
  assert.match(o.problems.join(), /hospital-a: cannot be reached/);
});

test('a holder sending a wrong share is named; too few good shares open nothing', async () => {
  const anchor = anchorOf(T, members, T.commitments);
  const wrong = holders({
    'hospital-a': () => ({ status: 200, json: answer(0, T.sealed_shares[0], true) }),
    'lab-b': () => ({ status: 200, json: answer(1, T.wrong_share_2, false) }),
    'clinic-c': () => ({ status: 200, json: answer(2, T.sealed_shares[2], false) }),
  });
  const o = await open(wrong.fetchFn, anchor);
  assert.equal(toHex(o.plaintext), T.plaintext);
  assert.deepEqual(o.used.sort(), ['clinic-c', 'hospital-a']);
  assert.match(o.problems.join(), /lab-b: its part of the key does not match the ledger/);
  // A holder handing over another holder's share is caught too.
  const swapped = holders({
    'hospital-a': () => ({ status: 200, json: answer(0, T.sealed_shares[0], true) }),
    'lab-b': () => ({ status: 200, json: answer(1, T.sealed_shares[0], false) }),
  });
  await assert.rejects(open(swapped.fetchFn, anchor), /Only 1 of the 2 parts[\s\S]*lab-b: its part of the key does not match/);
});

test('a record whose bytes differ from the anchor is refused; a refusal is said in words', async () => {
  const anchor = anchorOf(T, members, T.commitments);
  const tampered = fromHex(T.sealed);
  tampered[tampered.length - 1] ^= 1;
  const bad = holders({
    'hospital-a': () => ({ status: 200, json: { ...answer(0, T.sealed_shares[0], true), sealed_base64: toBase64(tampered) } }),
    'lab-b': () => ({ status: 200, json: answer(1, T.sealed_shares[1], false) }),
  });
  await assert.rejects(open(bad.fetchFn, anchor), (e: any) => e.reason === 'content-hash-mismatch');
  const refused = holders({ 'hospital-a': () => ({ status: 403, json: { error: 'the ledger refused the access', code: 143, code_name: 'NO_PATIENT_BOX_KEY' } }) });
  await assert.rejects(open(refused.fetchFn, anchor), /hospital-a refused: Downloads are not set up yet/);
  assert.deepEqual(refused.asked, ['hospital-a'], 'a refusal is not asked again elsewhere');
  // A keeper without the record (its replica not there yet) is passed by.
  const missing = holders({
    'hospital-a': () => ({ status: 404, json: { error: 'no such record here' } }),
    'lab-b': () => ({ status: 200, json: answer(1, T.sealed_shares[1], true) }),
    'clinic-c': () => ({ status: 200, json: answer(2, T.sealed_shares[2], false) }),
  });
  assert.equal(toHex((await open(missing.fetchFn, anchor)).plaintext), T.plaintext);
  assert.deepEqual(missing.asked, ['hospital-a', 'lab-b', 'clinic-c']);
  const erased = holders({ 'hospital-a': () => ({ status: 410, json: { error: 'erased', erased_height: 9 } }) });
  await assert.rejects(open(erased.fetchFn, anchor), /The record was erased/);
});

test('a record held whole: its key sealed to the patient opens it', async () => {
  const W = v.whole;
  const anchor = anchorOf(W);
  const { fetchFn } = holders({
    'hospital-a': () => ({
      status: 200,
      json: { record_id: W.record_id, patient_id: P, resource_type: 'Observation', version: 1, sealed_base64: toBase64(fromHex(W.sealed)), shared_key_base64: toBase64(fromHex(W.shared_key)), reader_member: P, access_height: 5, access_index: 0 },
    }),
  });
  const o = await open(fetchFn, anchor, [endpoints[0]]);
  assert.equal(toHex(o.plaintext), W.plaintext);
  const other = holders({
    'hospital-a': () => ({
      status: 200,
      json: { record_id: W.record_id, patient_id: P, resource_type: 'Observation', version: 1, sealed_base64: toBase64(fromHex(W.sealed)), shared_key_base64: toBase64(fromHex(W.shared_key_to_another_box)), reader_member: P, access_height: 5, access_index: 0 },
    }),
  });
  await assert.rejects(open(other.fetchFn, anchor, [endpoints[0]]), (e: any) => e.reason === 'decrypt-failed');
});

test('everything as one Bundle: records, consents and accesses; FHIR.js finds it valid', () => {
  const consent = create(ConsentSchema, { id: 'c-1', patientId: P, grantee: 'hospital-a', dataClasses: ['Observation'], purposes: [1], grantedHeight: 3n, notAfter: 1_900_000_000n });
  const research = create(ConsentSchema, { id: 'c-2', patientId: P, grantee: 'did:medledger:dr-1', dataClasses: ['*'], purposes: [5], studyId: 'study-7', revokedHeight: 9n });
  const event = create(AccessEventSchema, { patientId: P, index: 0n, actor: P, recordId: T.record_id, dataClass: 'Observation', purpose: Purpose.PATRQT, time: 1_700_000_000n, height: 40n });
  const plain = fromHex(T.plaintext);
  const b: any = everythingBundle({
    patient: P,
    proven: { chainId: CHAIN, height: 41n, appHashHex: 'AB'.repeat(32) },
    records: [
      { id: T.record_id, plaintext: plain, resourceType: 'Observation' },
      { id: 'rec-bin', plaintext: Uint8Array.of(0, 1, 2), resourceType: 'DocumentReference' },
    ],
    recordsLeftOut: 1,
    consents: [consent, research],
    events: [event],
    eventsLeftOut: 0,
  });
  assert.equal(b.resourceType, 'Bundle');
  assert.equal(b.type, 'collection');
  assert.deepEqual(
    b.entry.map((e: any) => e.resource.resourceType),
    ['Observation', 'Binary', 'Consent', 'Consent', 'AuditEvent'],
  );
  assert.deepEqual(b.entry[0].resource, JSON.parse(new TextDecoder().decode(plain)));
  assert.deepEqual(fromBase64(b.entry[1].resource.data), Uint8Array.of(0, 1, 2));
  assert.equal(new Set(b.entry.map((e: any) => e.fullUrl)).size, 5);
  const state = b.meta.extension[0].extension;
  assert.deepEqual(state.find((x: any) => x.url === 'recordsLeftOut'), { url: 'recordsLeftOut', valueString: '1' });
  assert.equal(b.entry[2].resource.status, 'active');
  assert.equal(b.entry[3].resource.status, 'inactive');
  assert.equal(b.entry[3].resource.scope.coding[0].code, 'research');
  assert.deepEqual(b.entry[3].resource.extension, [{ url: 'urn:medledger:fhir:StructureDefinition:research-study', valueString: 'study-7' }]);
  assert.equal(b.entry[3].resource.provision.class, undefined, '* is every class: left out');
  assert.deepEqual(consentToFhir(consent).provision, {
    type: 'permit',
    period: { end: '2030-03-17T17:46:40Z' },
    actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP', display: 'information recipient' }] }, reference: { reference: 'Organization/hospital-a' } }],
    action: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code: 'access' }] }],
    purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
    class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }],
  });
  assert.deepEqual(b.entry[4].resource.purposeOfEvent, [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'PATRQT', display: 'patient requested' }], text: "the patient's own read" }]);
  assert.equal(recordResource(utf8('[1,2]')).resourceType, 'Binary');
  const dir = mkdtempSync(join(tmpdir(), 'mydata-'));
  const file = join(dir, 'everything.json');
  writeFileSync(file, JSON.stringify(b));
  const script = fileURLToPath(new URL('../tools/validate-fhir.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

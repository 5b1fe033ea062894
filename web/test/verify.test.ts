// The verifier against answers captured from a real localnet (test/vectors/localnet.json), and
// negative tests: any flipped byte in a value, proof, app hash, certificate or genesis PoP fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ledger, type Transport } from '../src/ledger.ts';
import * as keys from '../src/keys.ts';
import { fromBase64, toBase64, decodeU64, fromUtf8 } from '../src/bytes.ts';
import { decodeAccessEvent, decodeConsent, decodeKeyOwner, decodeCertificate, Purpose, ReviewStatus } from '../src/messages.ts';
import { trustFromGenesis, verifyCertificate, BLS_POP_DST } from '../src/cert.ts';
import { bls12_381 } from '@noble/curves/bls12-381.js';
import { toHex } from '../src/bytes.ts';
import { expand } from '../src/compact.ts';
import { JMT_SPEC, verifyMembership, verifyNonMembership } from '../src/ics23.ts';

const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
const P: string = V.patient_id;
const H = BigInt(V.cert_height);

type Mutate = (method: string, query: string, body: any) => any;
const hexOf = (k: string) => Buffer.from(k).toString('hex');

function replay(mutate?: Mutate): Transport {
  return async (method, query) => {
    const a = V.answers[`${method}?${query}`];
    if (a === undefined) throw new Error(`no captured answer for ${method}?${query}`);
    const body = structuredClone(a);
    return mutate ? mutate(method, query, body) : body;
  };
}

/** Mutates the abci_query answer of `key` only. */
const onKey = (key: string, f: (resp: any) => void): Mutate => (method, query, body) => {
  if (method === 'abci_query' && query.includes(`data=0x${hexOf(key)}&`)) f(body.result.response);
  return body;
};

const flipB64 = (s: string, at: number) => {
  const b = fromBase64(s);
  b[((at % b.length) + b.length) % b.length] ^= 0x01;
  return toBase64(b);
};

test('the genesis trust root: four validators, every PoP checked', async () => {
  const L = new Ledger(replay());
  const t = await L.loadTrust();
  assert.equal(t.chainId, V.chain_id);
  assert.equal(t.validators.length, 4);
  assert.ok(t.validators.every((v) => v.blsKey.length === 48));
  const names = t.validators.map((v) => v.name).sort();
  assert.deepEqual(names, ['hospital-a', 'hospital-d', 'insurer-c', 'lab-b']);
});

test('a certificate attests the latest certified state', async () => {
  const L = new Ledger(replay());
  const at = await L.attest();
  assert.equal(at.height, H);
  assert.equal(at.appHash.length, 32);
  assert.ok(at.signedPower * 3n > at.totalPower * 2n);
  assert.equal(at.handovers, 0);
});

test('present and absent values verify; the access history is complete', async () => {
  const L = new Ledger(replay());
  const at = await L.attest();
  const ko = await L.read(at, keys.keyOwner(V.public_key));
  assert.ok(ko.verified, ko.error);
  assert.deepEqual(decodeKeyOwner(ko.value!), { kind: 'patient_id', id: P });
  const absent = await L.read(at, keys.consent('c-99'));
  assert.ok(absent.verified, absent.error);
  assert.equal(absent.value, undefined);
  const rec = await L.read(at, keys.record('no-such-record'));
  assert.ok(rec.verified && rec.value === undefined);
  const h = await L.readList(at, keys.accessCount(P), (n) => keys.accessEvent(P, n));
  assert.ok(h.count.verified);
  assert.ok(h.n >= 4n);
  assert.ok(h.items.every((r) => r.verified));
  const events = h.items.map((r) => decodeAccessEvent(r.value!));
  events.forEach((e, i) => assert.equal(e.index, BigInt(i)));
  assert.ok(events.some((e) => e.breakGlass && e.review === ReviewStatus.JUSTIFIED));
  assert.ok(events.some((e) => e.breakGlass && e.review === ReviewStatus.PENDING));
  const cs = await L.readList(at, keys.patientConsentCount(P), (n) => keys.patientConsent(P, n));
  assert.ok(cs.items.every((r) => r.verified));
  const c3 = await L.read(at, keys.consent('c-3'));
  const consent = decodeConsent(c3.value!);
  assert.deepEqual(consent.dataClasses, ['Observation', 'DiagnosticReport']);
  assert.deepEqual(consent.purposes, [Purpose.TREAT, Purpose.HOPERAT]);
  assert.ok(consent.revokedHeight > 0n);
  assert.ok(cs.items.map((r) => fromUtf8(r.value!)).includes('c-3'));
});

test('a flipped byte in a value fails', async () => {
  for (const at of [0, 5, -1]) {
    const L = new Ledger(replay(onKey(keys.accessEvent(P, 1), (r) => (r.value = flipB64(r.value, at)))));
    const st = await L.attest();
    const r = await L.read(st, keys.accessEvent(P, 1));
    assert.equal(r.verified, false);
    const ok = await L.read(st, keys.accessEvent(P, 0));
    assert.ok(ok.verified);
  }
});

test('a flipped byte anywhere in a membership proof fails', async () => {
  const key = keys.accessEvent(P, 0);
  const L0 = new Ledger(replay());
  const st = await L0.attest();
  const raw = V.answers[`abci_query?path=%22/store%22&data=0x${hexOf(key)}&height=${H}&prove=true`];
  const n = fromBase64(raw.result.response.proofOps.ops[0].data).length;
  for (let i = 0; i < n; i++) {
    const L = new Ledger(replay(onKey(key, (r) => (r.proofOps.ops[0].data = flipB64(r.proofOps.ops[0].data, i)))));
    const r = await L.read(st, key);
    assert.equal(r.verified, false, `flipping proof byte ${i} of ${n} went unnoticed`);
  }
});

test('a flipped byte anywhere in a non-membership proof fails', async () => {
  const key = keys.consent('c-99');
  const L0 = new Ledger(replay());
  const st = await L0.attest();
  const raw = V.answers[`abci_query?path=%22/store%22&data=0x${hexOf(key)}&height=${H}&prove=true`];
  const n = fromBase64(raw.result.response.proofOps.ops[0].data).length;
  for (let i = 0; i < n; i++) {
    const L = new Ledger(replay(onKey(key, (r) => (r.proofOps.ops[0].data = flipB64(r.proofOps.ops[0].data, i)))));
    const r = await L.read(st, key);
    assert.equal(r.verified, false, `flipping absence proof byte ${i} of ${n} went unnoticed`);
  }
});

test('an absent value cannot be shown as present, nor a present one hidden', async () => {
  const L0 = new Ledger(replay());
  const st = await L0.attest();
  const hide = new Ledger(replay(onKey(keys.accessEvent(P, 2), (r) => { r.value = null; r.log = 'absent'; })));
  assert.equal((await hide.read(st, keys.accessEvent(P, 2))).verified, false);
  const invent = new Ledger(replay(onKey(keys.consent('c-99'), (r) => { r.value = toBase64(new Uint8Array([10, 4, 99, 45, 57, 57])); r.log = 'exists'; })));
  assert.equal((await invent.read(st, keys.consent('c-99'))).verified, false);
  // An answer for another key (the proof of c-99's absence offered for c-98) fails.
  const other = new Ledger(async (m, q) => {
    const body = await replay()(m, q.replace(hexOf(keys.consent('c-98')), hexOf(keys.consent('c-99'))));
    return body;
  });
  assert.equal((await other.read(st, keys.consent('c-98'))).verified, false);
  // A count lowered by one (hiding the last event) fails.
  const lower = new Ledger(replay(onKey(keys.accessCount(P), (r) => {
    const n = decodeU64(fromBase64(r.value));
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, n - 1n);
    r.value = toBase64(b);
  })));
  assert.equal((await lower.readList(st, keys.accessCount(P), (n) => keys.accessEvent(P, n))).count.verified, false);
});

test('an answer at another height or with another proof type fails', async () => {
  const L0 = new Ledger(replay());
  const st = await L0.attest();
  const key = keys.accessEvent(P, 0);
  const h = new Ledger(replay(onKey(key, (r) => (r.height = String(H - 1n)))));
  assert.equal((await h.read(st, key)).verified, false);
  const t = new Ledger(replay(onKey(key, (r) => (r.proofOps.ops[0].type = 'ics23:iavl'))));
  assert.equal((await t.read(st, key)).verified, false);
  const none = new Ledger(replay(onKey(key, (r) => (r.proofOps = null))));
  assert.equal((await none.read(st, key)).verified, false);
});

test('a flipped app hash fails every proof', async () => {
  const L = new Ledger(replay());
  const st = await L.attest();
  for (let i = 0; i < 32; i += 7) {
    const bad = { ...st, appHash: st.appHash.slice() };
    bad.appHash[i] ^= 0x80;
    assert.equal((await L.read(bad, keys.accessEvent(P, 0))).verified, false);
    assert.equal((await L.read(bad, keys.consent('c-99'))).verified, false);
  }
});

test('a certificate with a flipped byte (signature, app hash, height, bitmap) is refused', async () => {
  const certKey = keys.certificate(H);
  const raw = V.answers[`abci_query?path=%22/store%22&data=0x${hexOf(certKey)}&height=0&prove=true`];
  const bytes = fromBase64(raw.result.response.value);
  const L = new Ledger(replay());
  const trust = await L.loadTrust();
  const cert = decodeCertificate(bytes);
  assert.doesNotThrow(() => verifyCertificate(trust, cert));
  const mutants = [
    { ...cert, aggregateSignature: (() => { const s = cert.aggregateSignature.slice(); s[50] ^= 1; return s; })() },
    { ...cert, aggregateSignature: (() => { const s = cert.aggregateSignature.slice(); s[95] ^= 1; return s; })() },
    { ...cert, appHash: (() => { const s = cert.appHash.slice(); s[0] ^= 1; return s; })() },
    { ...cert, height: cert.height + 1n },
    { ...cert, chainId: cert.chainId + 'x' },
    { ...cert, signers: Uint8Array.of(cert.signers[0] & 0b0111) }, // 3 of 4 claimed: the aggregate no longer matches
    { ...cert, signers: Uint8Array.of(0b0011) }, // 2 of 4: not more than 2/3
    { ...cert, signers: Uint8Array.of(cert.signers[0], 0) }, // wrong bitmap length
    { ...cert, signers: Uint8Array.of(cert.signers[0] | 0x10) }, // names a validator that does not exist
  ];
  for (const m of mutants) assert.throws(() => verifyCertificate(trust, m));
  // Through the client: a flipped byte of the stored certificate makes attest fail.
  for (const i of [bytes.length - 1, bytes.length - 40, bytes.length - 100]) {
    const bad = new Ledger(replay(onKey(certKey, (r) => (r.value = flipB64(r.value, i)))));
    await assert.rejects(bad.attest());
  }
});

test('a genesis with a bad proof of possession is refused', async () => {
  const g = structuredClone(V.answers['genesis?'].result.genesis);
  assert.doesNotThrow(() => trustFromGenesis(g));
  const pop: string = g.app_state.members[1].validator.bls_pop;
  g.app_state.members[1].validator.bls_pop = pop.slice(0, -2) + (pop.endsWith('00') ? '01' : '00');
  assert.throws(() => trustFromGenesis(g), /bls_pop|possession/);
  const g2 = structuredClone(V.answers['genesis?'].result.genesis);
  // A stranger's key with a valid PoP in place of a member's: the PoP passes, but the
  // certificate (signed by the real member) no longer verifies.
  const bls = bls12_381.longSignatures;
  const { secretKey, publicKey } = bls.keygen(new Uint8Array(48).fill(7));
  const pk = publicKey.toBytes();
  const popSig = bls.sign(bls.hash(pk, BLS_POP_DST), secretKey);
  g2.app_state.members[0].validator.bls_key = toHex(pk);
  g2.app_state.members[0].validator.bls_pop = toHex(bls.Signature.toBytes(popSig));
  assert.doesNotThrow(() => trustFromGenesis(g2));
  const L = new Ledger(replay((m, q, body) => (m === 'genesis' ? { result: { genesis: g2 } } : body)));
  await assert.rejects(L.attest());
});

test('the ICS23 port: membership and non-membership from the vectors', async () => {
  const L = new Ledger(replay());
  const st = await L.attest();
  const k = keys.accessEvent(P, 0);
  const a = await L.query(k, H);
  const kb = new TextEncoder().encode(k);
  const proof = expand(a.proofData!, kb, a.value);
  assert.ok(verifyMembership(proof, JMT_SPEC, st.appHash, kb, a.value!));
  assert.equal(verifyNonMembership(proof, JMT_SPEC, st.appHash, kb), false);
  const ka = new TextEncoder().encode(keys.consent('c-99'));
  const b = await L.query(keys.consent('c-99'), H);
  const nproof = expand(b.proofData!, ka, undefined);
  assert.ok(verifyNonMembership(nproof, JMT_SPEC, st.appHash, ka));
  // The same absence proof does not prove the absence of a key outside its neighbours.
  assert.equal(verifyNonMembership(nproof, JMT_SPEC, st.appHash, kb), false);
  // Trailing bytes and a wrong version are refused by the expander.
  const d = b.proofData!;
  assert.throws(() => expand(Uint8Array.from([...d, 0]), ka, undefined));
  assert.throws(() => expand(Uint8Array.from([2, ...d.subarray(1)]), ka, undefined));
  assert.throws(() => expand(d, ka, new Uint8Array([1])));
});

// A validator-set change (governance: lab-b's power 10 → 20 at block 758 of the capture): trust
// is handed over from the genesis set with the certificate of the changing state, and the
// change count is proven against the certified state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ledger, type Transport } from '../src/ledger.ts';
import * as keys from '../src/keys.ts';
import { fromBase64, toBase64 } from '../src/bytes.ts';

const V = JSON.parse(readFileSync(new URL('./vectors/localnet-handover.json', import.meta.url), 'utf8'));
const hexOf = (k: string) => Buffer.from(k).toString('hex');
type Mutate = (method: string, query: string, body: any) => any;
const replay = (mutate?: Mutate): Transport => async (method, query) => {
  const a = V.answers[`${method}?${query}`];
  if (a === undefined) throw new Error(`no captured answer for ${method}?${query}`);
  const body = structuredClone(a);
  return mutate ? mutate(method, query, body) : body;
};
const onKey = (key: string, f: (r: any, query: string) => void): Mutate => (method, query, body) => {
  if (method === 'abci_query' && query.includes(`data=0x${hexOf(key)}&`)) f(body.result.response, query);
  return body;
};

test('the certificate after a validator change verifies with the handed-over set', async () => {
  const at = await new Ledger(replay()).attest();
  assert.equal(at.height, BigInt(V.cert_height));
  assert.equal(at.handovers, 1);
  assert.equal(at.totalPower, 50n);
  const L = new Ledger(replay());
  const st = await L.attest();
  assert.ok((await L.read(st, keys.accessCount(V.patient_id))).verified);
});

test('a tampered registry at the changing state is refused', async () => {
  const L = new Ledger(replay(onKey(keys.validators(), (r, q) => {
    if (!q.includes(`height=${V.cert_height}&`)) r.value = (() => { const b = fromBase64(r.value); b[b.length - 1] ^= 1; return toBase64(b); })();
  })));
  await assert.rejects(L.attest(), /registry|handing trust over/);
});

test('a hidden validator change is refused', async () => {
  // The node says "no change": the count's absence proof cannot verify.
  const L = new Ledger(replay(onKey(keys.validatorChangeCount(), (r) => {
    r.value = null;
    r.log = 'absent';
  })));
  await assert.rejects(L.attest());
});

// Issue 27: a dropped broadcast must not look like a success. A gateway that answers
// broadcast_tx_commit with code 0 without forwarding the tx leaves the proven state unchanged;
// the page says "verified" only when the proven state at a certified height shows the effect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Ledger, type Transport } from '../src/ledger.ts';
import { broadcastAndConfirm, parseBroadcastAnswer, type Expectation } from '../src/broadcast.ts';
import { parseKeyFile, signTx } from '../src/tx.ts';
import { grantConsent, Purpose, revokeConsent, type TxMsg } from '../src/messages.ts';

const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
const alice = parseKeyFile(readFileSync(new URL('./vectors/alice.key.json', import.meta.url), 'utf8'));
const P: string = V.patient_id;
const H = BigInt(V.cert_height);

/**
 * The captured ledger (certified height H; c-1 active, c-3 revoked at 91, alice's proven
 * sequence 5), behind a gateway that answers every broadcast with `answer` and applies nothing.
 */
function okWithoutApplying(answer: object, sent: string[] = []): Transport {
  return async (method, query) => {
    if (method === 'broadcast_tx_commit') {
      sent.push(query);
      return structuredClone(answer);
    }
    const a = V.answers[`${method}?${query}`];
    if (a === undefined) throw new Error(`no captured answer for ${method}?${query}`);
    return structuredClone(a);
  };
}

const ok = (height: bigint, consentId?: string) => ({
  jsonrpc: '2.0',
  id: -1,
  result: {
    check_tx: { code: 0 },
    tx_result: { code: 0, events: consentId ? [{ type: 'medledger.consent.granted', attributes: [{ key: 'consent_id', value: consentId }] }] : [] },
    hash: 'AB',
    height: height.toString(),
  },
});

/** A clock that only moves when the code under test sleeps: no test waits in real time. */
function fakeClock() {
  let t = 0;
  return { now: () => t, sleep: async (ms: number) => void (t += ms) };
}

const REVOKE_C1: TxMsg = revokeConsent('c-1');
const GRANT_C3_INIT = { grantee: 'lab-b', dataClasses: ['Observation', 'DiagnosticReport'], purposes: [Purpose.TREAT, Purpose.HOPERAT] };
const GRANT_C3: TxMsg = grantConsent(GRANT_C3_INIT);

async function send(t: Transport, msg: TxMsg, sequence: bigint, shownAt: bigint) {
  const L = new Ledger(t);
  await L.loadTrust();
  const exp: Expectation = { msg, patient: P, signer: V.public_key, sequence, shownAt };
  return broadcastAndConfirm(L, signTx(alice, V.chain_id, sequence, msg), exp, 'Tx', fakeClock());
}

test('a revoke answered OK but not applied is not confirmed (the consent is still proven active)', async () => {
  const sent: string[] = [];
  const o = await send(okWithoutApplying(ok(H), sent), REVOKE_C1, 5n, H);
  assert.equal(sent.length, 1, 'the tx was sent once');
  assert.equal(o.kind, 'unconfirmed', o.text);
  assert.match(o.text, /NOT confirmed by the ledger: the gateway said OK/);
  assert.doesNotMatch(o.text, /verified/);
});

test('a revoke the proven state shows (revoked after the height shown) is verified', async () => {
  const o = await send(okWithoutApplying(ok(91n)), revokeConsent('c-3'), 4n, 90n);
  assert.equal(o.kind, 'verified', o.text);
  assert.match(o.text, /committed at height 91 and verified at certified height 354/);
});

test('a revoke of a consent revoked before the page last showed it does not count as this one', async () => {
  const o = await send(okWithoutApplying(ok(H)), revokeConsent('c-3'), 5n, H);
  assert.equal(o.kind, 'unconfirmed', o.text);
});

test('a grant answered OK but not applied is not confirmed, even when the answer names an old matching consent', async () => {
  // c-3 matches the grant, but it was granted long before, and the proven sequence did not move.
  const o = await send(okWithoutApplying(ok(H, 'c-3')), GRANT_C3, 5n, H);
  assert.equal(o.kind, 'unconfirmed', o.text);
  const o2 = await send(okWithoutApplying(ok(H)), GRANT_C3, 5n, H);
  assert.equal(o2.kind, 'unconfirmed', o2.text);
});

test('a grant whose consent and sequence are proven is verified (named by the answer or the newest of the list)', async () => {
  const o = await send(okWithoutApplying(ok(90n, 'c-3')), GRANT_C3, 4n, 89n);
  assert.equal(o.kind, 'verified', o.text);
  const o2 = await send(okWithoutApplying(ok(90n)), GRANT_C3, 4n, 89n);
  assert.equal(o2.kind, 'verified', o2.text);
  // Another grantee than asked: not this grant.
  const o3 = await send(okWithoutApplying(ok(90n, 'c-3')), grantConsent({ ...GRANT_C3_INIT, grantee: 'hospital-a' }), 4n, 89n);
  assert.equal(o3.kind, 'unconfirmed', o3.text);
  // The same grant for a research study: the proven consent names none, so not this grant.
  const o4 = await send(okWithoutApplying(ok(90n, 'c-3')), grantConsent({ ...GRANT_C3_INIT, studyId: 'study-7' }), 4n, 89n);
  assert.equal(o4.kind, 'unconfirmed', o4.text);
});

test('an OK at a height never certified ends, bounded, as not confirmed', async () => {
  const o = await send(okWithoutApplying(ok(10_000n)), REVOKE_C1, 5n, H);
  assert.equal(o.kind, 'unconfirmed', o.text);
  assert.match(o.text, /within 30 s/);
});

test('a refusal is reported with its code name', async () => {
  const refused = { result: { check_tx: { code: 27, log: 'consent c-3 is already revoked' }, tx_result: {}, height: '0' } };
  const o = await send(okWithoutApplying(refused), revokeConsent('c-3'), 5n, H);
  assert.equal(o.kind, 'refused');
  assert.match(o.text, /CONSENT_ALREADY_REVOKED \(27\)/);
});

test('broadcast answers parse defensively', () => {
  assert.equal(parseBroadcastAnswer({}).height, 0n);
  assert.equal(parseBroadcastAnswer({ result: { height: '-1' } }).height, 0n);
  assert.equal(parseBroadcastAnswer({ result: { height: '12', tx_result: { events: 'x' } } }).height, 12n);
});

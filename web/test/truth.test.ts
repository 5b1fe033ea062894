// The patient page tells the truth (issue 27): rollback of the certified height, the banner's
// verdict, the consortium fingerprint and its pin, freshness and backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { trustFingerprint, trustFromGenesis, type CertTrust } from '../src/cert.ts';
import { HttpError, DeniedError } from '../src/auth.ts';
import {
  backoffMs,
  checkPin,
  checkRollback,
  freshness,
  isOutage,
  isStale,
  pin,
  recordSeen,
  seenHeight,
  seenKey,
  verdict,
  type Store,
} from '../src/ui/truth.ts';

const memory = (): Store & { m: Map<string, string> } => {
  const m = new Map<string, string>();
  return { m, getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v) };
};

test('rollback: an older certified height than the newest seen is refused, in words', () => {
  const s = memory();
  assert.equal(seenHeight(s, 'c', 'f'), 0n);
  assert.deepEqual(checkRollback(0n, 5n), { ok: true });
  recordSeen(s, 'c', 'f', 40n);
  recordSeen(s, 'c', 'f', 30n); // never lowered
  assert.equal(seenHeight(s, 'c', 'f'), 40n);
  assert.deepEqual(checkRollback(40n, 40n), { ok: true });
  assert.deepEqual(checkRollback(40n, 41n), { ok: true });
  const r = checkRollback(seenHeight(s, 'c', 'f'), 39n);
  assert.equal(r.ok, false);
  assert.match((r as { text: string }).text, /the gateway showed an older state than you have seen before: height 39 < 40/i);
  // Keyed by chain and consortium: another one starts afresh; garbage reads as nothing seen.
  assert.equal(seenHeight(s, 'c', 'g'), 0n);
  assert.equal(seenHeight(s, 'd', 'f'), 0n);
  s.setItem(seenKey('c', 'x'), 'not a number');
  assert.equal(seenHeight(s, 'c', 'x'), 0n);
});

test('the banner reflects the worst row', () => {
  assert.equal(verdict([{ verified: true }, { verified: true }], 7n).kind, 'ok');
  assert.match(verdict([{ verified: true }], 7n).text, /every access to your data, verified: .*\(ledger state 7\)/);
  const bad = verdict([{ verified: true }, { verified: false }, { verified: false, denied: true }], 7n);
  assert.equal(bad.kind, 'error');
  assert.doesNotMatch(bad.text, /every access to your data, verified/);
  assert.match(bad.text, /1 item\(s\) below could NOT be verified, and the gateway did not show 1 to you/);
  const denied = verdict([{ verified: true }, { verified: false, denied: true }], 7n);
  assert.equal(denied.kind, 'warn');
  assert.doesNotMatch(denied.text, /every access to your data, verified/);
  assert.match(denied.text, /did not show you 1 item\(s\).*a permission, not a failed check/);
  // Only a row that failed (not one refused) makes it red, however many rows there are.
  assert.equal(verdict([...Array(50)].map(() => ({ verified: true })).concat([{ verified: false }]), 1n).kind, 'error');
  assert.equal(verdict([], 1n).kind, 'ok');
});

const genesis = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8')).answers['genesis?'].result.genesis;

test('the fingerprint covers the chain id and every validator address, power, BLS key and member name', () => {
  const t = trustFromGenesis(genesis);
  const fp = trustFingerprint(t);
  assert.match(fp, /^[0-9a-f]{64}$/);
  const changed = (f: (t: CertTrust) => void) => {
    const c: CertTrust = structuredClone(t);
    f(c);
    return trustFingerprint(c);
  };
  assert.equal(changed(() => {}), fp);
  assert.notEqual(changed((c) => (c.chainId += 'x')), fp);
  assert.notEqual(changed((c) => (c.validators[1].power += 1n)), fp);
  assert.notEqual(changed((c) => (c.validators[2].name = 'mallory')), fp);
  assert.notEqual(changed((c) => (c.validators[0].blsKey = c.validators[0].blsKey.slice(0, 47))), fp);
  assert.notEqual(changed((c) => (c.validators[3].address[0] ^= 1)), fp);
  assert.notEqual(changed((c) => c.validators.pop()), fp);
  // Fields are length-prefixed: moving a byte from a name into the chain id changes it.
  assert.notEqual(changed((c) => { c.chainId = 'a'; c.validators[0].name = 'bc'; }), changed((c) => { c.chainId = 'ab'; c.validators[0].name = 'c'; }));
});

test('the consortium is pinned on first use; a different one later is a change', () => {
  const s = memory();
  const a = { chainId: 'c', fingerprint: 'aa' };
  const d = checkPin(s, a);
  assert.equal(d.kind, 'first-use');
  pin(s, a);
  assert.equal(checkPin(s, a).kind, 'same');
  const b = { chainId: 'c', fingerprint: 'bb' };
  assert.deepEqual(checkPin(s, b), { kind: 'changed', pinned: a, now: b });
  assert.equal(checkPin(s, { chainId: 'other', fingerprint: 'aa' }).kind, 'changed');
  pin(s, b); // accepted explicitly
  assert.equal(checkPin(s, b).kind, 'same');
});

test('outages back off; other failures are not outages', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map((n) => backoffMs(n)), [2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.equal(isOutage(new TypeError('Failed to fetch')), true);
  assert.equal(isOutage(new HttpError(502, 'abci_query', '')), true);
  assert.equal(isOutage(new DeniedError(403, 'abci_query', '')), false);
  assert.equal(isOutage(new Error('proof does not verify')), false);
  assert.equal(isStale(200_000, 0), true);
  assert.equal(isStale(100_000, 0), false);
});

test('freshness: the certified block time when proven, else the time since the state advanced', () => {
  const min = 60_000;
  const t = (secs: bigint) => `T${secs}`;
  // A proven block time: old by this device's clock after 2 minutes.
  assert.deepEqual(freshness(1000 * 1000, 0, 1000n, t), { stale: false, text: 'Ledger time T1000' });
  const old = freshness(1000 * 1000 + 3 * min, Date.now(), 1000n, t);
  assert.equal(old.stale, true);
  assert.match(old.text, /^Ledger time T1000, 3 minutes ago — what you see may be out of date$/);
  // Exactly 2 minutes is not yet old.
  assert.equal(freshness(1000 * 1000 + 2 * min, 0, 1000n, t).stale, false);
  // No block time (or 0): judged by when the certified height last advanced.
  assert.deepEqual(freshness(10 * min, 10 * min - 5000, undefined, t), { stale: false, text: 'Newest ledger state seen less than a minute ago' });
  const stuck = freshness(10 * min, 5 * min, 0n, t);
  assert.equal(stuck.stale, true);
  assert.match(stuck.text, /^No newer ledger state since 5 minutes ago — what you see may be out of date$/);
});

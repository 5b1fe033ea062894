// Pending guardian-set changes and key rotations (issue 23): `guardian-change/{patient}` decodes
// as the ledger writes it, and the patient page's warning says what is pending and until when.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { toHex } from '../src/bytes.ts';
import { PendingPatientChangeSchema } from '../src/gen/medledger/v1/identity_pb.ts';
import * as keys from '../src/keys.ts';
import { decodePendingPatientChange } from '../src/messages.ts';
import { describePending } from '../src/ui/pending.ts';

const key = (b: number) => new Uint8Array(32).fill(b);

/** PendingPatientChange (identity.proto) encoded with the code generated from it. */
function encodePending(p: { guardians?: { keys: Uint8Array[]; threshold: number }; gTime?: bigint; gHeight?: bigint; newKey?: Uint8Array; kTime?: bigint; kHeight?: bigint }): Uint8Array {
  return toBinary(
    PendingPatientChangeSchema,
    create(PendingPatientChangeSchema, {
      guardians: p.guardians && { guardianKeys: p.guardians.keys, threshold: p.guardians.threshold },
      guardiansEffectiveTime: p.gTime ?? 0n,
      guardiansRequestedHeight: p.gHeight ?? 0n,
      newKey: p.newKey ?? new Uint8Array(),
      keyEffectiveTime: p.kTime ?? 0n,
      keyRequestedHeight: p.kHeight ?? 0n,
    }),
  );
}

// 2030-01-02 03:04:05 UTC and 2030-01-03 03:04:05 UTC.
const T1 = 1893553445n;
const T2 = T1 + 86400n;
const BEFORE = Number(T1) - 3600;

test('the state key is guardian-change/{patient} (crates/tx/src/keys.rs guardian_change)', () => {
  assert.equal(keys.guardianChange('pt-ab'), 'guardian-change/pt-ab');
});

test('a pending guardian set and key rotation decode field by field', () => {
  const b = encodePending({ guardians: { keys: [key(1), key(2), key(3)], threshold: 2 }, gTime: T1, gHeight: 41n, newKey: key(0xab), kTime: T2, kHeight: 42n });
  const p = decodePendingPatientChange(b);
  assert.equal(p.guardians?.threshold, 2);
  assert.deepEqual(p.guardians?.guardianKeys.map(toHex), [key(1), key(2), key(3)].map(toHex));
  assert.equal(p.guardiansEffectiveTime, T1);
  assert.equal(p.guardiansRequestedHeight, 41n);
  assert.equal(toHex(p.newKey), toHex(key(0xab)));
  assert.equal(p.keyEffectiveTime, T2);
  assert.equal(p.keyRequestedHeight, 42n);
});

test("the field numbers are the ledger's: bytes written out by hand decode", () => {
  // guardians (1) {guardian_keys (1) [0x01 × 32], threshold (2) 1}, guardians_effective_time (2) 300,
  // new_key (4) [0x07 × 32], key_requested_height (6) 9.
  const hex = '0a24' + '0a20' + '01'.repeat(32) + '1001' + '10ac02' + '2220' + '07'.repeat(32) + '3009';
  const p = decodePendingPatientChange(Uint8Array.from(hex.match(/../g)!.map((x) => parseInt(x, 16))));
  assert.deepEqual(p.guardians?.guardianKeys.map(toHex), [toHex(key(1))]);
  assert.equal(p.guardians?.threshold, 1);
  assert.equal(p.guardiansEffectiveTime, 300n);
  assert.equal(toHex(p.newKey), toHex(key(7)));
  assert.equal(p.keyEffectiveTime, 0n);
  assert.equal(p.keyRequestedHeight, 9n);
});

test('an empty message decodes to defaults, and nothing is pending', () => {
  const p = decodePendingPatientChange(new Uint8Array());
  assert.equal(p.guardians, undefined);
  assert.equal(p.guardiansEffectiveTime, 0n);
  assert.equal(p.guardiansRequestedHeight, 0n);
  assert.equal(p.newKey.length, 0);
  assert.equal(p.keyEffectiveTime, 0n);
  assert.equal(p.keyRequestedHeight, 0n);
  assert.equal(describePending(p, BEFORE), undefined);
});

test('a truncated value does not decode', () => {
  const b = encodePending({ newKey: key(7), kTime: T1 });
  assert.throws(() => decodePendingPatientChange(b.subarray(0, b.length - 3)));
});

test('the warning names the new guardians, the new key and when each takes effect', () => {
  const p = decodePendingPatientChange(encodePending({ guardians: { keys: [key(1), key(2), key(3)], threshold: 2 }, gTime: T1, gHeight: 41n, newKey: key(0xab), kTime: T2, kHeight: 42n }));
  const d = describePending(p, BEFORE)!;
  assert.ok(d.guardians && d.key);
  assert.match(d.headline, /^A change to your account is pending: /);
  assert.ok(d.headline.includes('new guardians (2 of 3) take effect on 2030-01-02 03:04:05 UTC (asked at block 41)'), d.headline);
  assert.ok(d.headline.includes('your key will be replaced by abababab… from 2030-01-03 03:04:05 UTC (asked at block 42)'), d.headline);
  assert.ok(d.advice.includes('ask your guardians to recover your account before then — that cancels it'), d.advice);
});

test('a rotation alone, and a removal of every guardian, are each described', () => {
  const r = describePending(decodePendingPatientChange(encodePending({ newKey: key(0x0c), kTime: T1, kHeight: 9n })), BEFORE)!;
  assert.ok(r.key && !r.guardians);
  assert.ok(!r.headline.includes('guardians ('), r.headline);
  assert.ok(r.headline.includes('replaced by 0c0c0c0c…'), r.headline);
  const g = describePending(decodePendingPatientChange(encodePending({ guardians: { keys: [], threshold: 0 }, gTime: T1, gHeight: 5n })), BEFORE)!;
  assert.ok(g.guardians && !g.key);
  assert.ok(g.headline.includes('all your guardians will be removed from 2030-01-02 03:04:05 UTC'), g.headline);
});

test('the times can be worded by the page (the patient page uses local time)', () => {
  const p = decodePendingPatientChange(encodePending({ newKey: key(0x0c), kTime: T1, kHeight: 9n }));
  const d = describePending(p, BEFORE, (t) => `<${t}>`)!;
  assert.ok(d.headline.includes(`from <${T1}>`), d.headline);
});

test('once the effective time has passed, the advice no longer says "before then"', () => {
  const p = decodePendingPatientChange(encodePending({ guardians: { keys: [key(1)], threshold: 1 }, gTime: T1, gHeight: 3n }));
  const d = describePending(p, Number(T1) + 1)!;
  assert.ok(d.headline.includes('took effect on 2030-01-02 03:04:05 UTC'), d.headline);
  assert.ok(!d.advice.includes('before then'), d.advice);
  const k = describePending(decodePendingPatientChange(encodePending({ newKey: key(2), kTime: T1, kHeight: 3n })), Number(T1))!;
  assert.ok(k.advice.includes('at once'), k.advice);
});

// Refused attempts (issue 27, point 5): the entries of `refused/{patient}/…` in words — who tried,
// what, why it was refused — only for entries that verified (proof, index, patient); the summary
// reflects the worst entry and says how many attempts went unrecorded; newest first; the filter
// by who tried.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import type { Read } from '../src/ledger.ts';
import { Action, Purpose } from '../src/messages.ts';
import { MemberSchema, RefusedAttemptSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerRole, PractitionerSchema, PractitionerStatus } from '../src/gen/medledger/v1/identity_pb.ts';
import type { NameBook } from '../src/ui/names.ts';
import { checkAttempts, matchesWho, newestFirst, reasonWords, RefusalReason, refusedNameIds, refusedSentence, summaryText, whoChoices, type Refused } from '../src/ui/refused.ts';
import * as keys from '../src/keys.ts';

const PT = 'pt-1';
const TECH = 'did:medledger:tech';
const ok = (value?: Uint8Array, key = 'k'): Read => ({ key, value, verified: true });
const u64 = (n: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), false);
  return b;
};
const member = (id: string, name: string) => ok(toBinary(MemberSchema, create(MemberSchema, { id, name })));
const book = (): NameBook =>
  new Map([
    ['hospital-a', member('hospital-a', 'Hospital A')],
    ['lab-b', member('lab-b', 'Lab B')],
    [TECH, ok(toBinary(PractitionerSchema, create(PractitionerSchema, { did: TECH, memberId: 'lab-b', name: 'Cy Chan', role: PractitionerRole.LAB_TECHNICIAN, status: PractitionerStatus.ACTIVE })))],
  ]);
const attempt = (index: number, more: Partial<{ actor: string; practitioner: string; dataClass: string; reason: RefusalReason; consentId: string; patientId: string; action: Action }> = {}) =>
  create(RefusedAttemptSchema, {
    patientId: more.patientId ?? PT,
    index: BigInt(index),
    actor: more.actor ?? 'hospital-a',
    practitioner: more.practitioner ?? '',
    recordId: `obs-${index}`,
    dataClass: more.dataClass ?? 'Observation',
    purpose: Purpose.TREAT,
    action: more.action ?? Action.READ,
    code: 28,
    reason: more.reason ?? RefusalReason.NO_CONSENT,
    consentId: more.consentId ?? '',
    height: BigInt(10 + index),
    time: BigInt(1_700_000_000 + index),
  });
const read = (a: ReturnType<typeof attempt>, i: number): Read => ok(toBinary(RefusedAttemptSchema, a), keys.refusedAttempt(PT, i));
const list = (items: Read[], dropped = 0): Refused => ({
  count: ok(new Uint8Array(40), keys.refusedDigest(PT)),
  n: BigInt(items.length),
  items,
  dropped: ok(dropped ? u64(dropped) : undefined, keys.refusedDropped(PT)),
});

test('the keys are the ledger keys', () => {
  assert.equal(keys.refusedAttempt('pt-ab', 3), 'refused/pt-ab/00000000000000000003');
  assert.equal(keys.refusedCount('pt-ab'), 'refused/pt-ab/count');
  assert.equal(keys.refusedDigest('pt-ab'), 'refused/pt-ab/digest');
  assert.equal(keys.refusedDropped('pt-ab'), 'refused/pt-ab/dropped');
});

test('a member that tried without consent, in plain words', () => {
  const [r] = checkAttempts([read(attempt(0), 0)], PT);
  assert.ok(r.ok);
  assert.equal(refusedSentence(r.attempt!, book()), 'Hospital A tried to read your Lab result (Observation) — refused (no consent)');
});

test('a practitioner, a write and every reason', () => {
  const a = attempt(0, { actor: 'lab-b', practitioner: TECH, dataClass: 'Condition', reason: RefusalReason.CONSENT_REVOKED, consentId: 'c-4', action: Action.WRITE });
  assert.equal(refusedSentence(a, book()), 'Cy Chan, lab technician at Lab B tried to change your Diagnosis (Condition) — refused (your consent c-4 was withdrawn)');
  assert.equal(reasonWords(RefusalReason.CONSENT_EXPIRED, 'c-2'), 'your consent c-2 had ended');
  assert.equal(reasonWords(RefusalReason.CONSENT_NOT_YET_VALID, 'c-2'), 'your consent c-2 had not started yet');
  assert.equal(reasonWords(RefusalReason.NOT_COVERED), 'no consent covers this');
  assert.equal(reasonWords(RefusalReason.UNSPECIFIED), 'no consent permitted it');
});

test('a name whose proof failed is its id, never a name', () => {
  const names = book();
  names.set('hospital-a', { key: 'member/hospital-a', verified: false, error: 'bad proof' });
  assert.match(refusedSentence(attempt(0), names), /^hospital-a tried to read/);
});

test('an entry is verified only with its proof, its index and its patient', () => {
  const rows = checkAttempts(
    [
      read(attempt(0), 0),
      { ...read(attempt(1), 1), verified: false, error: 'proof does not verify' },
      read(attempt(7), 2),
      read(attempt(3, { patientId: 'pt-other' }), 3),
      ok(new Uint8Array([0xff, 0xff]), 'x'),
    ],
    PT,
  );
  assert.deepEqual(
    rows.map((r) => r.ok),
    [true, false, false, false, false],
  );
  assert.match(rows[2].reason!, /number 7/);
  assert.match(rows[3].reason!, /another patient/);
  assert.match(rows[4].reason!, /does not decode/);
  // Only verified entries' names are looked up.
  assert.deepEqual(refusedNameIds(list([read(attempt(0), 0), read(attempt(5, { actor: 'lab-b' }), 1)]), PT), ['hospital-a', '']);
});

test('the summary reflects the worst entry and the unrecorded ones', () => {
  const good = list([read(attempt(0), 0), read(attempt(1), 1)]);
  let s = summaryText(good, checkAttempts(good.items, PT));
  assert.equal(s.kind, 'ok');
  assert.match(s.text, /^2 attempt\(s\) to see your data were refused/);
  const dropped = list([read(attempt(0), 0)], 3);
  s = summaryText(dropped, checkAttempts(dropped.items, PT));
  assert.match(s.text, /And 3 more not recorded/);
  const empty = list([]);
  assert.match(summaryText(empty, []).text, /^No one was refused access/);
  const bad = list([read(attempt(0), 0), { ...read(attempt(1), 1), verified: false }]);
  s = summaryText(bad, checkAttempts(bad.items, PT));
  assert.equal(s.kind, 'bad');
  assert.match(s.text, /NOT be verified complete: 1 entry/);
  const unproven = { ...good, count: { key: 'k', verified: false, error: 'bad proof' } };
  assert.equal(summaryText(unproven, checkAttempts(good.items, PT)).kind, 'bad');
  const denied = { ...good, count: { key: 'k', verified: false, denied: true } };
  assert.equal(summaryText(denied, []).kind, 'denied');
});

test('newest first, and the filter by who tried', () => {
  const rows = checkAttempts([read(attempt(0), 0), read(attempt(1, { actor: 'lab-b' }), 1), read(attempt(2), 2)], PT);
  assert.deepEqual(
    newestFirst(rows).map((r) => r.index),
    [2, 1, 0],
  );
  assert.deepEqual(whoChoices(rows, book()), [
    { value: 'hospital-a', text: 'Hospital A' },
    { value: 'lab-b', text: 'Lab B' },
  ]);
  assert.deepEqual(
    rows.filter((r) => matchesWho(r, 'lab-b')).map((r) => r.index),
    [1],
  );
  assert.equal(rows.filter((r) => matchesWho(r, '')).length, 3);
  // An entry that did not verify is never hidden by the filter.
  const unverified = { ...rows[0], ok: false };
  assert.ok(matchesWho(unverified, 'lab-b'));
});

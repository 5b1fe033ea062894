// Notifications (issue 27, point 10): which rows notify (only new ones, only once verified,
// never the rows there when the key was opened, never the patient's own downloads), the words
// (who by name, role and member, what, why, "emergency access"), the coalescing of many into
// one, the permission in plain words, and the Subscription the page sends for an address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import type { Read } from '../src/ledger.ts';
import { Action, Purpose } from '../src/messages.ts';
import { AccessEventSchema, MemberSchema, RefusedAttemptSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerRole, PractitionerSchema, PractitionerStatus } from '../src/gen/medledger/v1/identity_pb.ts';
import type { AccessRow } from '../src/ui/history.ts';
import type { NameBook } from '../src/ui/names.ts';
import { RefusalReason, type RefusedRow } from '../src/ui/refused.ts';
import { checkEndpoint, coalesce, MAX_SINGLE, newSeen, permissionWords, statusWords, subscriptionResource, subscriptionRows, takeNew, whoText } from '../src/ui/notify.ts';

const PT = 'pt-1';
const DOC = 'did:medledger:doc';
const ok = (value?: Uint8Array, key = 'k'): Read => ({ key, value, verified: true });
const member = (id: string, name: string) => ok(toBinary(MemberSchema, create(MemberSchema, { id, name })));
const book = (): NameBook =>
  new Map([
    ['hospital-a', member('hospital-a', 'Hospital A')],
    ['lab-b', member('lab-b', 'Lab B')],
    [DOC, ok(toBinary(PractitionerSchema, create(PractitionerSchema, { did: DOC, memberId: 'hospital-a', name: 'Dr Ana Silva', role: PractitionerRole.PHYSICIAN, status: PractitionerStatus.ACTIVE })))],
  ]);

const access = (index: number, more: Partial<{ actor: string; practitioner: string; breakGlass: boolean; ok: boolean; action: Action; purpose: Purpose }> = {}): AccessRow => ({
  index,
  ok: more.ok ?? true,
  denied: false,
  event: create(AccessEventSchema, {
    patientId: PT,
    index: BigInt(index),
    actor: more.actor ?? 'hospital-a',
    practitioner: more.practitioner ?? '',
    recordId: `obs-${index}`,
    dataClass: 'Observation',
    purpose: more.purpose ?? Purpose.TREAT,
    action: more.action ?? Action.READ,
    breakGlass: more.breakGlass ?? false,
  }),
});
const refused = (index: number): RefusedRow => ({
  index,
  read: ok(),
  ok: true,
  denied: false,
  attempt: create(RefusedAttemptSchema, { patientId: PT, index: BigInt(index), actor: 'lab-b', recordId: 'obs-9', dataClass: 'Observation', purpose: Purpose.TREAT, action: Action.READ, code: 28, reason: RefusalReason.NO_CONSENT }),
});

test('the rows there when the key was opened never notify; a new verified one does, once', () => {
  const seen = newSeen(PT);
  assert.deepEqual(takeNew(seen, [access(0), access(1)], [refused(0)], book()), []);
  // The same rows again: nothing.
  assert.deepEqual(takeNew(seen, [access(0), access(1)], [refused(0)], book()), []);
  const a = takeNew(seen, [access(0), access(1), access(2, { practitioner: DOC })], [refused(0)], book());
  assert.equal(a.length, 1);
  assert.equal(a[0].index, 2);
  assert.equal(a[0].title, 'Someone accessed your data');
  assert.equal(a[0].body, 'Dr Ana Silva, doctor at Hospital A read your Lab result (Observation) (record obs-2). Why: Treatment.');
  assert.equal(a[0].tag, `medledger-${PT}-access-2`);
  // Notified once only.
  assert.deepEqual(takeNew(seen, [access(0), access(1), access(2, { practitioner: DOC })], [refused(0)], book()), []);
});

test('a new row not verified waits until it verifies', () => {
  const seen = newSeen(PT);
  takeNew(seen, [], [], book());
  assert.deepEqual(takeNew(seen, [access(0, { ok: false })], [], book()), []);
  const a = takeNew(seen, [access(0)], [], book());
  assert.deepEqual(a.map((x) => x.index), [0]);
});

test('a list not readable sets no base: its rows are not taken as new later', () => {
  const seen = newSeen(PT);
  takeNew(seen, undefined, undefined, book());
  assert.deepEqual(takeNew(seen, [access(0), access(1)], [refused(0)], book()), []);
  assert.equal(takeNew(seen, [access(0), access(1), access(2)], [refused(0)], book()).length, 1);
});

test("the patient's own download does not notify", () => {
  const seen = newSeen(PT);
  takeNew(seen, [], [], book());
  assert.deepEqual(takeNew(seen, [access(0, { actor: PT, purpose: Purpose.PATRQT })], [], book()), []);
});

test('a break-glass says emergency access; a refused attempt says refused', () => {
  const seen = newSeen(PT);
  takeNew(seen, [], [], book());
  const a = takeNew(seen, [access(0, { practitioner: DOC, breakGlass: true })], [refused(0)], book());
  assert.equal(a.length, 2);
  assert.equal(a[0].title, 'Emergency access to your data');
  assert.ok(a[0].emergency);
  assert.match(a[0].body, /^Emergency access without your consent: Dr Ana Silva, doctor at Hospital A read your Lab result \(Observation\)/);
  assert.equal(a[1].kind, 'refused');
  assert.equal(a[1].title, 'An attempt to see your data was refused');
  assert.equal(a[1].body, 'Lab B tried to read your Lab result (Observation) — refused (no consent).');
});

test('who: a member system by name; a practitioner whose name is not proven by id', () => {
  assert.equal(whoText(book(), 'hospital-a', ''), 'Hospital A');
  assert.equal(whoText(new Map(), 'hospital-a', DOC), `${DOC} at hospital-a`);
});

test('more than a few at once become one notification; a few stay apart', () => {
  const seen = newSeen(PT);
  takeNew(seen, [], [], book());
  const few = takeNew(seen, Array.from({ length: MAX_SINGLE }, (_, i) => access(i)), [], book());
  assert.equal(coalesce(few, PT).length, MAX_SINGLE);
  const many = takeNew(seen, [...Array.from({ length: MAX_SINGLE }, (_, i) => access(i)), ...[3, 4, 5].map((i) => access(i, { breakGlass: true, practitioner: DOC })), access(6)], [refused(0)], book());
  assert.equal(many.length, 5);
  const one = coalesce(many, PT);
  assert.equal(one.length, 1);
  assert.equal(one[0].title, '5 new accesses to your data');
  assert.equal(one[0].body, '3 of them are emergency accesses without your consent; 1 was a refused attempt. Open the page to see who, what and why.');
  assert.equal(one[0].tag, `medledger-${PT}-batch`);
});

test('the permission in plain words, never an error', () => {
  assert.match(permissionWords('denied', true), /set not to show notifications.*still listed here/);
  assert.match(permissionWords('unsupported', false), /cannot show notifications.*still listed here/);
  assert.match(permissionWords('granted', true), /^On:/);
  assert.match(permissionWords('granted', false), /^Off\./);
});

test('the address: https (http only on this computer), no credentials, no fragment, bounded', () => {
  assert.deepEqual(checkEndpoint(' https://app.example/hook '), { ok: true, url: 'https://app.example/hook' });
  assert.ok(checkEndpoint('http://127.0.0.1:9000/hook').ok);
  for (const bad of ['', 'app.example', 'http://app.example/hook', 'ftp://app.example', 'https://u:p@app.example/', 'https://app.example/#x', `https://a.example/${'x'.repeat(2048)}`]) {
    assert.equal(checkEndpoint(bad).ok, false, bad);
  }
});

test('the Subscription sent and the list read back', () => {
  assert.deepEqual(subscriptionResource(PT, 'https://app.example/hook'), {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'Tell me of every access to my health data',
    criteria: `AuditEvent?patient=${PT}`,
    channel: { type: 'rest-hook', endpoint: 'https://app.example/hook', payload: 'application/fhir+json' },
  });
  const rows = subscriptionRows({
    resourceType: 'Bundle',
    entry: [
      { resource: { resourceType: 'Subscription', id: 'sub-1', status: 'active', criteria: `AuditEvent?patient=${PT}`, channel: { endpoint: 'https://a.example/' } } },
      { resource: { resourceType: 'Subscription', id: 'sub-2', status: 'error', error: 'HTTP 500', criteria: `AuditEvent?patient=${PT}`, channel: { endpoint: 'https://b.example/' } } },
      { resource: { resourceType: 'Patient', id: 'x' } },
      { nonsense: true },
    ],
  });
  assert.deepEqual(rows.map((r) => [r.id, r.status, r.endpoint]), [
    ['sub-1', 'active', 'https://a.example/'],
    ['sub-2', 'error', 'https://b.example/'],
  ]);
  assert.equal(statusWords(rows[0]), 'Active: each new access is sent there');
  assert.equal(statusWords(rows[1]), 'Not delivering: the address did not accept the last alerts (HTTP 500)');
  assert.deepEqual(subscriptionRows('not a bundle'), []);
});

// Break-glass up front (issue 27, point 6): the banner's lines in words — who (name, role,
// member), what, when, the review status and the reviewer — only for entries that verified; an
// entry that did not verify is said to be unverified, never stated as fact; a name whose proof
// failed is its id, marked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import type { Read } from '../src/ledger.ts';
import { Action, Purpose, ReviewStatus } from '../src/messages.ts';
import { AccessEventSchema, MemberSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerRole, PractitionerSchema, PractitionerStatus } from '../src/gen/medledger/v1/identity_pb.ts';
import type { NameBook } from '../src/ui/names.ts';
import type { AccessRow } from '../src/ui/history.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8 } from '../src/bytes.ts';
import { checkReason, emergencies, reasonLine, reasonUrl } from '../src/ui/breakglass.ts';
import { reviewStatusWords } from '../src/ui/words.ts';

const PT = 'pt-1';
const DOC = 'did:medledger:doc';
const PO = 'did:medledger:po';
const ok = (value?: Uint8Array): Read => ({ key: 'k', value, verified: true });
const member = (id: string, name: string) => ok(toBinary(MemberSchema, create(MemberSchema, { id, name })));
const person = (did: string, memberId: string, name: string, role: PractitionerRole) =>
  ok(toBinary(PractitionerSchema, create(PractitionerSchema, { did, memberId, name, role, status: PractitionerStatus.ACTIVE })));
const book = (): NameBook =>
  new Map([
    ['hospital-a', member('hospital-a', 'Hospital A')],
    ['lab-b', member('lab-b', 'Lab B')],
    [DOC, person(DOC, 'hospital-a', 'Dr Ana Silva', PractitionerRole.PHYSICIAN)],
    [PO, person(PO, 'lab-b', 'Bo Berg', PractitionerRole.PRIVACY_OFFICER)],
  ]);
const event = (index: number, more: Partial<{ breakGlass: boolean; review: ReviewStatus; reviewer: string; consentId: string }> = {}) =>
  create(AccessEventSchema, {
    patientId: PT,
    index: BigInt(index),
    actor: 'hospital-a',
    practitioner: DOC,
    recordId: `obs-${index}`,
    dataClass: 'Observation',
    purpose: more.breakGlass ? Purpose.ETREAT : Purpose.TREAT,
    action: Action.READ,
    time: 1_700_000_000n + BigInt(index),
    height: 10n + BigInt(index),
    ...more,
  });
const row = (index: number, e = event(index), ok = true): AccessRow => ({ index, event: e, ok, denied: false, reason: ok ? undefined : 'proof does not verify against app hash' });
const at = (s: bigint) => `T${s}`;

test('the review status in words', () => {
  assert.equal(reviewStatusWords('PENDING'), 'waiting for review');
  assert.equal(reviewStatusWords('JUSTIFIED'), 'reviewed: justified');
  assert.equal(reviewStatusWords('UNJUSTIFIED'), 'reviewed: NOT justified');
  assert.equal(reviewStatusWords('UNSPECIFIED'), 'no review opened');
});

test('no emergency access: no banner line; a consented read is not one', () => {
  assert.deepEqual(emergencies([row(0), row(1)], book(), PT, at), []);
});

test('a pending break-glass: who by name, role and member, what, when, waiting for review', () => {
  const rows = [row(0), row(1, event(1, { breakGlass: true, review: ReviewStatus.PENDING }))];
  const [{ event: e, ...x }, ...more] = emergencies(rows, book(), PT, at);
  assert.equal(more.length, 0);
  assert.equal(e, rows[1].event);
  assert.deepEqual(x, {
    index: 1,
    verified: true,
    namesVerified: true,
    review: 'PENDING',
    reviewer: '',
    headline: `Emergency access without your consent: Dr Ana Silva, doctor at Hospital A read Lab result (Observation) (record obs-1) on T1700000001`,
    reviewLine: 'Review: waiting for review',
    reviewerLine: 'A privacy officer of a member other than Hospital A reviews it.',
  });
});

test('reviewed: the verdict and the reviewer by name and member, newest first', () => {
  const rows = [
    row(0, event(0, { breakGlass: true, review: ReviewStatus.UNJUSTIFIED, reviewer: PO })),
    row(1),
    row(2, event(2, { breakGlass: true, review: ReviewStatus.JUSTIFIED, reviewer: PO })),
  ];
  const xs = emergencies(rows, book(), PT, at);
  assert.deepEqual(xs.map((x) => x.index), [2, 0]);
  assert.equal(xs[0].reviewLine, 'Review: reviewed: justified');
  assert.equal(xs[0].reviewerLine, 'Reviewed by Bo Berg, privacy officer at Lab B');
  assert.equal(xs[1].reviewLine, 'Review: reviewed: NOT justified');
  assert.equal(xs[1].reviewer, PO);
  assert.ok(xs.every((x) => x.verified && x.namesVerified));
});

test('an entry that did not verify is not stated as fact', () => {
  const forged = event(0, { breakGlass: true, review: ReviewStatus.JUSTIFIED, reviewer: PO });
  const [x] = emergencies([row(0, forged, false)], book(), PT, at);
  assert.equal(x.verified, false);
  assert.equal(x.review, '');
  assert.equal(x.reviewerLine, '');
  assert.match(x.headline, /could NOT be verified/);
  assert.doesNotMatch(x.headline, /Ana Silva|justified/);
});

test('a name whose proof failed is its id, marked; the entry still verified', () => {
  const names = book();
  names.set(PO, { key: 'k', value: names.get(PO)!.value, verified: false, error: 'proof does not verify' });
  const [x] = emergencies([row(0, event(0, { breakGlass: true, review: ReviewStatus.JUSTIFIED, reviewer: PO }))], names, PT, at);
  assert.equal(x.verified, true);
  assert.equal(x.namesVerified, false);
  assert.equal(x.reviewerLine, `Reviewed by ${PO} (name NOT verified)`);
  assert.doesNotMatch(x.reviewerLine, /Bo Berg/);
});

test('an entry the gateway may not show this key (403) is left out', () => {
  const denied: AccessRow = { index: 0, event: event(0, { breakGlass: true }), ok: false, denied: true };
  assert.deepEqual(emergencies([denied], book(), PT, at), []);
});

test('an entry that did not verify carries no event to fetch a reason for', () => {
  const [x] = emergencies([row(0, event(0, { breakGlass: true }), false)], book(), PT, at);
  assert.equal(x.event, undefined);
});

test('the reason is shown only when its SHA-256 is the one on the ledger', () => {
  const text = 'Unconscious on arrival; allergies unknown';
  const hash = sha256(utf8(text));
  assert.deepEqual(checkReason(text, hash), { kind: 'checked', text });
  assert.equal(reasonLine(checkReason(text, hash)), `Reason given (checked against the ledger): "${text}"`);
  // One character changed, or another text: NOT shown.
  assert.deepEqual(checkReason(`${text}.`, hash), { kind: 'mismatch' });
  assert.equal(reasonLine({ kind: 'mismatch' }), 'Reason: the reason served does NOT match the ledger: it is not shown.');
  // No hash on chain: nothing can be checked.
  assert.equal(checkReason(text, new Uint8Array(0)).kind, 'unavailable');
  assert.equal(reasonLine({ kind: 'unavailable', why: 'Hospital A keeps no reason for it' }), 'Reason: not available (Hospital A keeps no reason for it).');
  assert.equal(reasonLine(undefined), 'Reason: being fetched…');
});

test("the reason's URL at the member's proven endpoint", () => {
  assert.equal(reasonUrl('http://127.0.0.1:26659/', 'pt-ab', 3n), 'http://127.0.0.1:26659/break-glass/pt-ab/3/reason');
});

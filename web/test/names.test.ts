// Who, in words (issue 27, point 4): a member's name and a practitioner's name and role, from
// reads verified like every row; an unverified name is never shown as a name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { MemberSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerSchema, PractitionerRole, PractitionerStatus } from '../src/gen/medledger/v1/identity_pb.ts';
import { nameKey, partyWords, readerWords, type NameBook } from '../src/ui/names.ts';
import type { Read } from '../src/ledger.ts';

const DID = 'did:medledger:ana';
const member = toBinary(MemberSchema, create(MemberSchema, { id: 'hospital-a', name: 'Hospital A' }));
const ana = toBinary(PractitionerSchema, create(PractitionerSchema, { did: DID, memberId: 'hospital-a', name: 'Ana Silva', role: PractitionerRole.LAB_TECHNICIAN, status: PractitionerStatus.ACTIVE }));
const ok = (value?: Uint8Array): Read => ({ key: 'k', value, verified: true });

test('names are read from member/{id} and practitioner/{did}', () => {
  assert.equal(nameKey('hospital-a'), 'member/hospital-a');
  assert.equal(nameKey(DID), `practitioner/${DID}`);
});

test('a member reads as its name; its practitioner by name and role at the member', () => {
  const book: NameBook = new Map([['hospital-a', ok(member)], [DID, ok(ana)]]);
  assert.deepEqual(partyWords(book, 'hospital-a'), { main: 'Hospital A', detail: 'hospital-a', verified: true, denied: false });
  assert.deepEqual(readerWords(book, 'hospital-a', ''), { main: 'Hospital A', detail: 'hospital-a · no named person', verified: true, denied: false });
  assert.deepEqual(readerWords(book, 'hospital-a', DID), { main: 'Ana Silva, lab technician', detail: `Hospital A · ${DID}`, verified: true, denied: false });
});

test('an unverified name is not shown: the id is, marked', () => {
  const forged: Read = { key: 'k', value: member, verified: false, error: 'proof does not verify' };
  const book: NameBook = new Map([['hospital-a', forged], [DID, ok(ana)]]);
  assert.deepEqual(partyWords(book, 'hospital-a'), { main: 'hospital-a', detail: 'name NOT verified', verified: false, denied: false });
  // The practitioner's member did not verify: the reader does not count as verified.
  assert.equal(readerWords(book, 'hospital-a', DID).verified, false);
  // A proven absence: the id, said to be gone; a refused read: the id, said so.
  const gone: NameBook = new Map([['lab-x', ok(undefined)], ['lab-y', { key: 'k', verified: false, denied: true }]]);
  assert.deepEqual(partyWords(gone, 'lab-x'), { main: 'lab-x', detail: 'no longer a member', verified: true, denied: false });
  assert.deepEqual(partyWords(gone, 'lab-y'), { main: 'lab-y', detail: 'name not permitted', verified: false, denied: true });
  assert.equal(partyWords(new Map(), 'lab-z').main, 'lab-z');
});

test("the patient's own download reads as You; another patient's id is not taken for you", () => {
  const book: NameBook = new Map();
  assert.deepEqual(readerWords(book, 'pt-1', '', 'pt-1'), { main: 'You', detail: 'your own copy', verified: true, denied: false });
  assert.equal(readerWords(book, 'pt-2', '', 'pt-1').main, 'pt-2');
  assert.equal(readerWords(book, 'pt-1', DID, 'pt-1').main, DID);
});

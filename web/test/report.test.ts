// "Report this access" (issue 27, point 6): which rows may be reported, how a report's review is
// worded, that a report is proven only by the reported event itself, and that the report's
// fields stay outside the history's digest chain.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { accessLeaf } from '../src/digest.ts';
import { provenDone, type Expectation } from '../src/broadcast.ts';
import { AccessEventSchema, MemberSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerRole, PractitionerSchema } from '../src/gen/medledger/v1/identity_pb.ts';
import { ReviewStatus, type AccessEvent } from '../src/messages.ts';
import type { AccessRow } from '../src/ui/history.ts';
import type { NameBook } from '../src/ui/names.ts';
import { reportable, reportAccess, ReportReason, reportReasonWords, reportStatusWords, rowName } from '../src/ui/report.ts';
import * as keys from '../src/keys.ts';

const P = 'pt-aa';
const OFFICER = 'did:medledger:0fff';

const event = (m: MessageInitShape<typeof AccessEventSchema> = {}): AccessEvent =>
  create(AccessEventSchema, { patientId: P, index: 3n, actor: 'hospital-a', practitioner: 'did:medledger:0aaa', height: 10n, time: 1_700_000_000n, ...m });
const row = (e: AccessEvent, ok = true): AccessRow => ({ index: Number(e.index), event: e, ok, denied: false });

function names(): NameBook {
  const book: NameBook = new Map();
  book.set('did:medledger:0aaa', { key: 'p', verified: true, value: toBinary(PractitionerSchema, create(PractitionerSchema, { did: 'did:medledger:0aaa', name: 'Dr Ada Lovelace', memberId: 'hospital-a', role: PractitionerRole.PHYSICIAN })) });
  book.set(OFFICER, { key: 'o', verified: true, value: toBinary(PractitionerSchema, create(PractitionerSchema, { did: OFFICER, name: 'Grace Hopper', memberId: 'lab-b', role: PractitionerRole.PRIVACY_OFFICER })) });
  book.set('lab-b', { key: 'm', verified: true, value: toBinary(MemberSchema, create(MemberSchema, { id: 'lab-b', name: 'Lab B' })) });
  return book;
}

test("only a verified, unreported access by someone else may be reported", () => {
  assert.equal(reportable(row(event()), P), true);
  assert.equal(reportable(row(event(), false), P), false, 'a row that did not verify');
  assert.equal(reportable(row(event({ actor: P, practitioner: '' })), P), false, "the patient's own download");
  assert.equal(reportable(row(event({ reportedHeight: 12n })), P), false, 'reported already');
});

test('the button names its row, and the review is worded with the officer and their member', () => {
  const book = names();
  assert.equal(rowName(event(), book, P), 'access #3 by Dr Ada Lovelace, doctor');
  assert.equal(reportStatusWords(event(), book), '');
  const reported = event({ reportedHeight: 12n, reportReason: ReportReason.NOT_MY_CARE, reportReview: ReviewStatus.PENDING });
  assert.equal(reportStatusWords(reported, book), 'Reported by you: review pending');
  const upheld = event({ ...reported, reportReview: ReviewStatus.UNJUSTIFIED, reportReviewer: OFFICER });
  assert.equal(reportStatusWords(upheld, book), 'Your report was upheld by Grace Hopper, privacy officer (Lab B): the access was not justified');
  const not = event({ ...reported, reportReview: ReviewStatus.JUSTIFIED, reportReviewer: OFFICER });
  assert.match(reportStatusWords(not, book), /^Your report was not upheld by Grace Hopper/);
  assert.equal(reportReasonWords(ReportReason.UNKNOWN_READER), "I don't know who this is");
  assert.equal(reportReasonWords(ReportReason.UNSPECIFIED), '');
});

test('a report is done only when the proven event is reported, after the height shown, for the reason sent', () => {
  const msg = reportAccess(P, 3n, ReportReason.WRONG_PURPOSE);
  const exp: Expectation = { msg, patient: P, signer: '00', sequence: 4n, shownAt: 11n };
  const read = (e: AccessEvent, verified = true) => ({ height: 20n, event: { key: keys.accessEvent(P, 3n), value: toBinary(AccessEventSchema, e), verified } });
  const reported = event({ reportedHeight: 12n, reportReason: ReportReason.WRONG_PURPOSE, reportReview: ReviewStatus.PENDING });
  assert.equal(provenDone(exp, read(reported)), true);
  assert.equal(provenDone(exp, read(reported, false)), false, 'not proven');
  assert.equal(provenDone(exp, read(event())), false, 'a gateway that said OK and dropped it');
  assert.equal(provenDone(exp, read(event({ ...reported, reportedHeight: 11n }))), false, 'reported before: not this tx');
  assert.equal(provenDone(exp, read(event({ ...reported, reportReason: ReportReason.OTHER }))), false, 'another reason');
  assert.equal(provenDone(exp, read(event({ ...reported, index: 4n }))), false, 'another event');
  assert.equal(provenDone(exp, { height: 20n }), false, 'nothing read');
});

test("a report and its review are outside the history's chain", () => {
  const logged = event();
  const reported = event({ reportedHeight: 12n, reportReason: 2, reportReview: ReviewStatus.UNJUSTIFIED, reportReviewer: OFFICER, reportNoteHash: new Uint8Array(32).fill(7) });
  assert.deepEqual(accessLeaf(toBinary(AccessEventSchema, reported)), accessLeaf(toBinary(AccessEventSchema, logged)));
});

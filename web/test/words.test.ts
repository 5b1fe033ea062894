// Plain words (issue 27, point 4): record types, purposes, roles, reviews, local time, and the
// ledger's refusals of a grant or revoke said so a patient can act on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CODE_NAMES } from '../src/codes.ts';
import { PurposeSchema } from '../src/gen/medledger/v1/common_pb.ts';
import { PractitionerRoleSchema } from '../src/gen/medledger/v1/identity_pb.ts';
import { actionWords, age, classWords, DATA_CLASSES, localTime, purposeWords, reasonWords, refusalWords, reviewWords, roleWords } from '../src/ui/words.ts';

const code = (name: string) => Number(Object.entries(CODE_NAMES).find(([, n]) => n === name)![0]);

test('what: a record type in words with its FHIR name; everything is said', () => {
  assert.equal(classWords('Observation'), 'Lab result (Observation)');
  assert.equal(classWords('MedicationRequest'), 'Prescription (MedicationRequest)');
  assert.equal(classWords('*'), 'All your data (*)');
  // A type without words is shown as the ledger stores it, never hidden.
  assert.equal(classWords('Basic'), 'Basic');
  // The form's list: FHIR resource types (capitalised as FHIR spells them) and *, each in words.
  assert.deepEqual(DATA_CLASSES.map((c) => c.value), ['Observation', 'DiagnosticReport', 'DocumentReference', 'MedicationRequest', 'Condition', 'Procedure', 'Immunization', 'AllergyIntolerance', 'ImagingStudy', '*']);
  for (const c of DATA_CLASSES) {
    assert.ok(c.words && !c.words.includes('undefined'), c.value);
    if (c.value !== '*') assert.match(c.value, /^[A-Z][A-Za-z]+$/);
  }
});

test('why: every purpose the proto names has words', () => {
  for (const v of PurposeSchema.values.filter((v) => v.number !== 0)) {
    const w = purposeWords(v.localName);
    assert.notEqual(w, v.localName, v.localName);
    assert.match(w, /^[A-Z][a-z]/);
  }
  assert.equal(purposeWords('TREAT'), 'Treatment');
  assert.equal(purposeWords('HRESCH'), 'Research');
  assert.equal(purposeWords('PATRQT'), 'Your own copy (you asked for it)');
  assert.equal(purposeWords('UNSPECIFIED'), 'UNSPECIFIED');
});

test('who: every practitioner role the proto names has words; actions and reviews too', () => {
  for (const v of PractitionerRoleSchema.values.filter((v) => v.number !== 0)) assert.ok(roleWords(v.localName), v.localName);
  assert.equal(roleWords('PHYSICIAN'), 'doctor');
  assert.equal(roleWords('UNSPECIFIED'), '');
  assert.equal(actionWords('READ'), 'read');
  assert.equal(actionWords('WRITE'), 'added or changed');
  assert.equal(reviewWords('PENDING', ''), 'not reviewed yet');
  assert.equal(reviewWords('JUSTIFIED', 'lab-b'), 'reviewed by lab-b: justified');
  assert.equal(reviewWords('UNJUSTIFIED', ''), 'reviewed: NOT justified');
});

test('when: block time in the reader\'s own zone, with the zone', () => {
  // 2026-03-12 13:05:09 UTC.
  const t = 1773320709n;
  assert.equal(localTime(t, 'en-GB', 'Europe/Paris'), '12 Mar 2026, 14:05 CET');
  assert.equal(localTime(t, 'en-GB', 'UTC'), '12 Mar 2026, 13:05 UTC');
  assert.equal(localTime(0n, 'en-GB', 'UTC'), '');
  assert.equal(age(100_000, 100_000 - 30_000), 'less than a minute ago');
  assert.equal(age(10 * 60_000, 0), '10 minutes ago');
  assert.equal(age(60_000, 0), '1 minute ago');
  assert.equal(age(5 * 3_600_000, 0), '5 hours ago');
});

test('refusals are said in words a patient can act on, never as a CLI command', () => {
  const unknown = refusalWords(code('UNKNOWN_MEMBER'), { grantee: 'Hospital-A' });
  assert.match(unknown, /^There is no hospital, lab or other member called "Hospital-A" on the ledger\. .*case-sensitive.*Nothing was granted\. \(ledger code UNKNOWN_MEMBER\)$/);
  assert.match(refusalWords(code('UNKNOWN_PRACTITIONER'), { grantee: 'did:medledger:x' }), /no practitioner "did:medledger:x"/);
  assert.match(refusalWords(code('CONSENT_ALREADY_REVOKED'), { consentId: 'c-8' }), /^Consent c-8 was already revoked\./);
  assert.match(refusalWords(code('SEQUENCE_REUSED')), /try again/);
  assert.match(refusalWords(code('TOO_MANY_CONSENTS')), /Revoke one you no longer need/);
  assert.match(refusalWords(code('BAD_SIGNATURE')), /reload the page/);
  assert.match(refusalWords(9999), /^The ledger refused it\. Nothing was changed\. \(ledger code CODE_9999\)$/);
  // No refusal sends the patient to a command line, or shows the ledger's log.
  for (const n of Object.keys(CODE_NAMES)) {
    const w = refusalWords(Number(n), { grantee: 'g', consentId: 'c-1' });
    assert.doesNotMatch(w, /medledger |query |`/, w);
    assert.match(w, /\(ledger code [A-Z_0-9]+\)$/);
  }
});

test('why a row did not verify, in words', () => {
  assert.equal(reasonWords('proof does not verify against app hash 49E8'), "the gateway's answer does not match the ledger: it may have been altered");
  assert.equal(reasonWords('compact proof: trailing bytes'), "the gateway's answer does not match the ledger: it may have been altered");
  assert.equal(reasonWords('the node answered at height 7, not 8'), 'the gateway answered for another moment of the ledger than the one checked');
  assert.equal(reasonWords('the answer carries no proof'), 'the gateway sent it without a proof the page can check');
  assert.match(reasonWords('the entry is missing'), /hiding or swapping/);
  assert.equal(reasonWords('something else'), 'something else');
});

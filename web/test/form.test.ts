// The consent form that prevents mistakes (issue 27, point 8): nothing is signed unless the
// grantee is an id the ledger holds (and, for a practitioner, active), the data classes come
// from the list, and research names its study, as the ledger's check_grant demands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create, toBinary } from '@bufbuild/protobuf';
import { MemberSchema } from '../src/gen/medledger/v1/state_pb.ts';
import { PractitionerSchema, PractitionerRole, PractitionerStatus } from '../src/gen/medledger/v1/identity_pb.ts';
import { Purpose } from '../src/messages.ts';
import { checkGrant, checkGrantee, grantConfirmation, pickedClasses, revokeConfirmation } from '../src/ui/form.ts';
import type { Read } from '../src/ledger.ts';

const base = { grantee: 'hospital-a', classes: ['Observation'], purpose: 'TREAT', study: '' };

test('classes are picked from the list: free text (lower-case observation) never gets through', () => {
  assert.deepEqual(pickedClasses(['Observation', 'observation', 'Bogus', 'Condition', 'Observation']), ['Observation', 'Condition']);
  assert.deepEqual(pickedClasses(['Observation', '*']), ['*']);
  assert.deepEqual(pickedClasses(['observation']), []);
  const r = checkGrant({ ...base, classes: ['observation'] });
  assert.deepEqual(r, { ok: false, field: 'classes', text: 'Pick at least one kind of data.' });
});

test('a valid grant is what the ledger takes', () => {
  assert.deepEqual(checkGrant({ ...base, grantee: '  hospital-a ', study: 'ignored' }), {
    ok: true,
    grant: { grantee: 'hospital-a', dataClasses: ['Observation'], purposes: [Purpose.TREAT], studyId: '' },
  });
  const did = 'did:medledger:abc';
  assert.equal(checkGrant({ ...base, grantee: did }).ok, true);
});

test('who: empty, not an id, or a foreign DID is refused before signing', () => {
  for (const grantee of ['', '   ', 'Hospital A', 'hospital/a', 'a'.repeat(65), 'did:web:example.org', 'hospital*']) {
    const r = checkGrant({ ...base, grantee });
    assert.equal(r.ok, false, grantee);
    assert.equal(!r.ok && r.field, 'grantee');
  }
});

test('research needs a study id (exactly when HRESCH, as check_grant demands)', () => {
  const none = checkGrant({ ...base, purpose: 'HRESCH' });
  assert.equal(none.ok, false);
  assert.equal(!none.ok && none.field, 'study');
  assert.match(!none.ok ? none.text : '', /id of the study/);
  const bad = checkGrant({ ...base, purpose: 'HRESCH', study: 'my study' });
  assert.equal(!bad.ok && bad.field, 'study');
  assert.deepEqual(checkGrant({ ...base, purpose: 'HRESCH', study: ' study-7 ' }), {
    ok: true,
    grant: { grantee: 'hospital-a', dataClasses: ['Observation'], purposes: [Purpose.HRESCH], studyId: 'study-7' },
  });
  const unknown = checkGrant({ ...base, purpose: 'NOPE' });
  assert.equal(!unknown.ok && unknown.field, 'purpose');
});

test('granting everything and revoking ask first, by name', () => {
  assert.equal(grantConfirmation('Lab B (lab-b)', ['Observation']), undefined);
  assert.match(grantConfirmation('Lab B (lab-b)', ['*']) ?? '', /^Let Lab B \(lab-b\) see ALL your data/);
  assert.match(revokeConfirmation('c-1', 'Hospital A (hospital-a)'), /^Revoke consent c-1 to Hospital A \(hospital-a\)\?/);
});

const read = (value?: Uint8Array, verified = true, extra: Partial<Read> = {}): Read => ({ key: 'k', value, verified, ...extra });

test('the grantee is checked against the proven state: a name, or why nothing is sent', () => {
  const m = toBinary(MemberSchema, create(MemberSchema, { id: 'hospital-a', name: 'Hospital A' }));
  assert.deepEqual(checkGrantee('hospital-a', read(m)), { ok: true, name: 'Hospital A (hospital-a)' });
  const absent = checkGrantee('Hospital-A', read(undefined));
  assert.equal(absent.ok, false);
  assert.match(!absent.ok ? absent.text : '', /^There is no hospital, lab or other member with the id "Hospital-A" on the ledger\..*Nothing was sent\.$/);
  const forged = checkGrantee('hospital-a', read(m, false, { error: 'proof does not verify' }));
  assert.match(!forged.ok ? forged.text : '', /could NOT be verified \(proof does not verify\)/);
  const did = 'did:medledger:ana';
  const p = (status: PractitionerStatus) => toBinary(PractitionerSchema, create(PractitionerSchema, { did, memberId: 'hospital-a', name: 'Ana Silva', role: PractitionerRole.PHYSICIAN, status }));
  assert.deepEqual(checkGrantee(did, read(p(PractitionerStatus.ACTIVE))), { ok: true, name: 'Ana Silva, doctor (hospital-a)' });
  const suspended = checkGrantee(did, read(p(PractitionerStatus.SUSPENDED)));
  assert.match(!suspended.ok ? suspended.text : '', /suspended or no longer practising: a consent to them would permit nothing/);
  assert.match(!checkGrantee(did, read(undefined)).ok ? (checkGrantee(did, read(undefined)) as { text: string }).text : '', /no practitioner with the id/);
  // A gateway that refuses the read (403) leaves the decision to the ledger.
  assert.deepEqual(checkGrantee('hospital-a', read(undefined, false, { denied: true })), { ok: true, name: 'hospital-a' });
});

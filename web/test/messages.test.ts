// The generated protobuf code (src/gen/, from proto/) as the pages use it: values the ledger
// wrote decode with every field known, the auditor's table shows the proto's field and enum
// names, and enum names map back to the ledger's numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromBinary } from '@bufbuild/protobuf';
import { fromBase64 } from '../src/bytes.ts';
import { AccessEventSchema, ConsentSchema, MemberSchema } from '../src/gen/medledger/v1/state_pb.ts';
import * as keys from '../src/keys.ts';
import { Action, decodeKeyOwner, enumName, Purpose, purposeByName, purposeName, reviewName, ReviewStatus, view } from '../src/messages.ts';
import { PurposeSchema } from '../src/gen/medledger/v1/common_pb.ts';

const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
const P: string = V.patient_id;

/** The value the captured localnet stored at `key` (any height). */
function stored(key: string): Uint8Array {
  const data = `data=0x${Buffer.from(key).toString('hex')}&`;
  const hit = Object.entries(V.answers).find(([q, a]: [string, any]) => q.startsWith('abci_query?') && q.includes(data) && a.result.response.value);
  if (!hit) throw new Error(`no captured value for ${key}`);
  return fromBase64((hit[1] as any).result.response.value);
}

test('values the ledger stored decode with no field left unknown', () => {
  for (const [schema, key] of [
    [ConsentSchema, keys.consent('c-3')],
    [AccessEventSchema, keys.accessEvent(P, 0)],
    [MemberSchema, keys.member('hospital-a')],
  ] as const) {
    const m = fromBinary(schema, stored(key));
    assert.equal(m.$unknown, undefined, `${key}: a field the generated schema does not know`);
  }
});

test("the auditor's view: proto field names, enum names, every field with its default", () => {
  const c = view(ConsentSchema, fromBinary(ConsentSchema, stored(keys.consent('c-3'))));
  assert.deepEqual(Object.keys(c), ConsentSchema.fields.map((f) => f.name));
  assert.equal(c.id, 'c-3');
  assert.equal(c.patient_id, P);
  assert.deepEqual(c.data_classes, ['Observation', 'DiagnosticReport']);
  assert.deepEqual(c.purposes, ['TREAT', 'HOPERAT']);
  assert.equal(typeof c.revoked_height, 'bigint');
  assert.deepEqual(c.actions, []);
  assert.equal(c.study_id, '');
  const m = view(MemberSchema, fromBinary(MemberSchema, stored(keys.member('hospital-a'))));
  assert.equal(m.kind, 'HOSPITAL');
  assert.ok(m.admin_key instanceof Uint8Array && m.admin_key.length === 32);
});

test('a key owner is named by its oneof field', () => {
  const ko = stored(keys.keyOwner(V.public_key));
  assert.deepEqual(decodeKeyOwner(ko), { kind: 'patient_id', id: P });
  assert.deepEqual(decodeKeyOwner(new Uint8Array()), { kind: '', id: '' });
  // retired_patient_key (5) = "pt-x"
  assert.deepEqual(decodeKeyOwner(Uint8Array.of(0x2a, 4, ...new TextEncoder().encode('pt-x'))), { kind: 'retired_patient_key', id: 'pt-x' });
});

test('enum names without their prefix, and back', () => {
  assert.equal(purposeName(Purpose.HOPERAT), 'HOPERAT');
  assert.equal(purposeName(99), '99');
  assert.equal(reviewName(ReviewStatus.UNJUSTIFIED), 'UNJUSTIFIED');
  assert.equal(enumName(PurposeSchema, 0), 'UNSPECIFIED');
  assert.equal(Action.WRITE, 2);
  for (const [name, n] of [['TREAT', 1], ['ETREAT', 2], ['HPAYMT', 3], ['HOPERAT', 4], ['HRESCH', 5]] as const) assert.equal(purposeByName(name), n);
  assert.throws(() => purposeByName('UNSPECIFIED'), /unknown purpose/);
  assert.throws(() => purposeByName('treat'), /unknown purpose/);
});

test('a truncated or malformed value throws instead of decoding', () => {
  const b = stored(keys.consent('c-3'));
  assert.throws(() => fromBinary(ConsentSchema, b.subarray(0, b.length - 1)));
  // patient_id (2) with invalid UTF-8
  assert.throws(() => fromBinary(ConsentSchema, Uint8Array.of(0x12, 1, 0xff)));
});

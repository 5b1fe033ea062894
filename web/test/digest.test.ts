// List digests (docs/queries.md, "List digests"): the fixed vector of the docs, the chain's
// sensitivity to order and content, and the access event's leaf without its review fields.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toBinary, create } from '@bufbuild/protobuf';
import { toHex, utf8 } from '../src/bytes.ts';
import { accessLeaf, decodeDigest, digestOf, sameDigest, withoutFields } from '../src/digest.ts';
import { AccessEventSchema, ReviewStatus } from '../src/gen/medledger/v1/state_pb.ts';

test("the records list ['lab-1', 'lab-2'] has the head the docs give", () => {
  const d = digestOf([utf8('lab-1'), utf8('lab-2')]);
  assert.equal(d.count, 2n);
  assert.equal(toHex(d.head), 'b7ff346e2ba7ea28da28e6f3a3cfdb3765e09b6eae8f6c7f6a6046ded106c46d');
});

test('a missing, reordered or altered entry changes the head', () => {
  const d = digestOf([utf8('a'), utf8('b'), utf8('c')]);
  for (const other of [[utf8('a'), utf8('b')], [utf8('b'), utf8('a'), utf8('c')], [utf8('a'), utf8('b'), utf8('x')]]) {
    assert.equal(sameDigest(digestOf(other), d), false);
  }
  const stored = new Uint8Array(40);
  new DataView(stored.buffer).setBigUint64(0, 3n, false);
  stored.set(d.head, 8);
  assert.equal(sameDigest(decodeDigest(stored), d), true);
  assert.throws(() => decodeDigest(new Uint8Array(39)));
});

test("an access event's leaf leaves out the review a privacy officer writes later", () => {
  const logged = create(AccessEventSchema, { patientId: 'pt-1', index: 1n, actor: 'hospital-a', breakGlass: true, review: ReviewStatus.PENDING });
  const reviewed = create(AccessEventSchema, { ...logged, review: ReviewStatus.JUSTIFIED, reviewer: 'did:medledger:00ff', reviewNoteHash: new Uint8Array(32).fill(7) });
  const bare = create(AccessEventSchema, { patientId: 'pt-1', index: 1n, actor: 'hospital-a', breakGlass: true });
  assert.deepEqual(accessLeaf(toBinary(AccessEventSchema, reviewed)), toBinary(AccessEventSchema, bare));
  assert.deepEqual(accessLeaf(toBinary(AccessEventSchema, logged)), accessLeaf(toBinary(AccessEventSchema, reviewed)));
  const other = create(AccessEventSchema, { ...logged, actor: 'lab-b' });
  assert.notDeepEqual(accessLeaf(toBinary(AccessEventSchema, other)), accessLeaf(toBinary(AccessEventSchema, logged)));
  assert.throws(() => withoutFields(new Uint8Array([0x0a, 0x05, 0x61]), [14]), /truncated/);
});

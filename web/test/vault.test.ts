// The patient's own copy, opened in the browser (src/vault.ts), against vectors that
// crates/vault's own functions wrote (crates/vault/tests/web_vectors.rs): the box key from the
// seed, HPKE open, Feldman checks, Lagrange combine, the record's checks; and every tampered
// case refused with its stable reason (a bad share named by its index).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex, utf8 } from '../src/bytes.ts';
import {
  BadShareError,
  L,
  VaultError,
  combine,
  dataKeyFor,
  decodeSealed,
  keyCommitment,
  keyIdOf,
  openRecord,
  openShare,
  openSharedKey,
  parseCommitments,
  patientBoxKey,
  scalarToBytes,
  type RecordMeta,
  type VaultReason,
} from '../src/vault.ts';

const v = JSON.parse(readFileSync(new URL('./vectors/vault.json', import.meta.url), 'utf8'));
const box = patientBoxKey(fromHex(v.patient_seed));
const P: string = v.patient_id;
const CHAIN: string = v.chain_id;
const metaOf = (r: any): RecordMeta => ({ recordId: r.record_id, patientId: P, resourceType: r.resource_type, version: BigInt(r.version) });
const anchoredOf = (r: any) => ({ contentHash: fromHex(r.content_hash), keyId: r.key_id as string });
const T = v.threshold;
const shares = (T.sealed_shares as string[]).map(fromHex);
const commitments = (T.commitments as string[]).map(fromHex);
const open = (i: number, b = shares[i]) => openShare(box, CHAIN, T.record_id, P, b);

function refused(f: () => unknown, reason: VaultReason): VaultError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof VaultError, `not a VaultError: ${e}`);
    assert.equal(e.reason, reason, e.message);
    return e;
  }
  assert.fail(`not refused (${reason} expected)`);
}

const flip = (b: Uint8Array, i: number, bit = 1): Uint8Array => {
  const c = b.slice();
  c[i] ^= bit;
  return c;
};

test("the patient's box key is the one Rust derives from the same seed", () => {
  assert.equal(toHex(box.secret), v.patient_box_secret);
  assert.equal(toHex(box.public), v.patient_box_public);
  assert.notEqual(toHex(patientBoxKey(new Uint8Array(32).fill(8)).public), v.patient_box_public);
  refused(() => patientBoxKey(new Uint8Array(31)), 'malformed');
});

test("the patient box key of docs/vault.md's vector (RFC 8032 test 1's seed)", () => {
  const k = patientBoxKey(fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'));
  assert.equal(toHex(k.secret), '93a1afee0a20bb36550a23d2e6b4e7d1da7672a3d9cc7c062736fd30d9723d03');
  assert.equal(toHex(k.public), '9472b33355e59d6c915ff4f4fce22c654d1640a7c95e051edcccdee64b71803f');
});

test('a record held whole: the shared key opens and the record decrypts to what was stored', () => {
  const W = v.whole;
  const key = openSharedKey(box, W.record_id, P, fromHex(W.shared_key));
  assert.equal(toHex(key), W.data_key);
  assert.equal(keyIdOf(keyCommitment(key, W.record_id)), W.key_id);
  const plain = openRecord(metaOf(W), fromHex(W.sealed), key, anchoredOf(W));
  assert.equal(toHex(plain), W.plaintext);
  const viaHolders = dataKeyFor(box, CHAIN, metaOf(W), P, [], [{ position: 1, sharedKey: fromHex(W.shared_key) }]);
  assert.equal(toHex(viaHolders), W.data_key);
});

test('a shared key for another box, record or reader, or with a flipped bit, does not open', () => {
  const W = v.whole;
  refused(() => openSharedKey(box, W.record_id, P, fromHex(W.shared_key_to_another_box)), 'decrypt-failed');
  refused(() => openSharedKey(box, 'rec-other', P, fromHex(W.shared_key)), 'decrypt-failed');
  refused(() => openSharedKey(box, W.record_id, 'hospital-a', fromHex(W.shared_key)), 'decrypt-failed');
  for (const i of [1, 20, 33, 60, 80]) refused(() => openSharedKey(box, W.record_id, P, flip(fromHex(W.shared_key), i)), 'decrypt-failed');
  refused(() => openSharedKey(box, W.record_id, P, fromHex(W.shared_key).subarray(1)), 'malformed');
  refused(() => openSharedKey(box, W.record_id, P, flip(fromHex(W.shared_key), 0, 3)), 'malformed');
  refused(() => openSharedKey(box, '', P, fromHex(W.shared_key)), 'bad-identifier');
  refused(() => dataKeyFor(box, CHAIN, metaOf(W), P, [], []), 'not-enough-shares');
});

test('threshold: any two of the three shares give the data key, and the record opens', () => {
  const opened = [0, 1, 2].map((i) => open(i));
  assert.deepEqual(
    opened.map((s) => s.index),
    [1, 2, 3],
  );
  for (const pair of [
    [0, 1],
    [0, 2],
    [1, 2],
    [2, 0],
  ]) {
    const key = combine(
      pair.map((i) => opened[i]),
      commitments,
    );
    assert.equal(toHex(key), T.data_key);
  }
  assert.equal(toHex(combine(opened, commitments)), T.data_key);
  const released = [0, 1, 2].map((i) => ({ position: i + 1, sealedShare: shares[i] }));
  const key = dataKeyFor(box, CHAIN, metaOf(T), P, commitments, released.slice(1));
  assert.equal(toHex(openRecord(metaOf(T), fromHex(T.sealed), key, anchoredOf(T))), T.plaintext);
});

test("threshold: a holder's wrong share is named by its index; a repeated or missing share is refused", () => {
  const wrong = open(0, fromHex(T.wrong_share_2));
  assert.equal(wrong.index, 2);
  const e = refused(() => combine([open(0), wrong], commitments), 'bad-share');
  assert.ok(e instanceof BadShareError);
  assert.equal(e.index, 2);
  assert.match(e.message, /key share 2 does not match/);
  // Even with enough good shares, a bad one given is named (the reader names its holder).
  assert.equal((refused(() => combine([open(0), open(2), wrong], commitments), 'bad-share') as BadShareError).index, 2);
  refused(() => combine([open(0), open(0)], commitments), 'duplicate-share');
  refused(() => combine([open(1)], commitments), 'not-enough-shares');
  refused(() => combine([], commitments), 'not-enough-shares');
  // The shares of this record against another record's commitments.
  assert.equal((refused(() => combine([open(0), open(1)], (v.other_commitments as string[]).map(fromHex)), 'bad-share') as BadShareError).index, 1);
  // A share whose value was nudged in the page's memory.
  const nudged = { index: 3, value: (open(2).value + 1n) % L };
  assert.equal((refused(() => combine([open(0), nudged], commitments), 'bad-share') as BadShareError).index, 3);
  // A holder that answers with another holder's share: named by the position it answered for.
  assert.equal((refused(() => dataKeyFor(box, CHAIN, metaOf(T), P, commitments, [{ position: 2, sealedShare: shares[0] }]), 'bad-share') as BadShareError).index, 2);
  assert.equal(
    (refused(() => dataKeyFor(box, CHAIN, metaOf(T), P, commitments, [{ position: 1, sealedShare: shares[0] }, { position: 2, sealedShare: fromHex(T.wrong_share_2) }]), 'bad-share') as BadShareError).index,
    2,
  );
});

test('threshold: a sealed share relabelled, for another reader, record or chain, or altered, does not open', () => {
  const relabelled = shares[0].slice();
  relabelled[1] = 2;
  refused(() => open(0, relabelled), 'decrypt-failed');
  refused(() => open(0, fromHex(T.share_1_for_another_reader)), 'decrypt-failed');
  refused(() => openShare(box, CHAIN, 'rec-other', P, shares[0]), 'decrypt-failed');
  refused(() => openShare(box, 'another-chain', T.record_id, P, shares[0]), 'decrypt-failed');
  refused(() => openShare(patientBoxKey(new Uint8Array(32).fill(8)), CHAIN, T.record_id, P, shares[0]), 'decrypt-failed');
  for (const i of [2, 33, 34, 60, 81]) refused(() => open(0, flip(shares[0], i)), 'decrypt-failed');
  const zeroIndex = shares[0].slice();
  zeroIndex[1] = 0;
  refused(() => open(0, zeroIndex), 'malformed');
  refused(() => open(0, flip(shares[0], 0, 2)), 'malformed');
  refused(() => open(0, shares[0].subarray(0, 81)), 'malformed');
});

test('threshold: malformed commitments are refused by position', () => {
  refused(() => parseCommitments([commitments[0]]), 'bad-commitment');
  refused(() => parseCommitments(Array(33).fill(commitments[0])), 'bad-commitment');
  assert.match(refused(() => parseCommitments([commitments[0], commitments[1].subarray(1)]), 'bad-commitment').message, /commitment 1: not 32 bytes/);
  assert.match(refused(() => parseCommitments([new Uint8Array(32), commitments[1]]), 'bad-commitment').message, /commitment 0: the identity/);
  // Not canonical: ℓ's own encoding is no field element encoding either; all 0xff is not canonical.
  assert.match(refused(() => parseCommitments([commitments[0], new Uint8Array(32).fill(0xff)]), 'bad-commitment').message, /commitment 1: not a canonical/);
  assert.equal(scalarToBytes(L).every((b) => b === 0), true);
});

test('the record: content hash, key commitment and AEAD each refuse a change', () => {
  const meta = metaOf(T);
  const key = fromHex(T.data_key);
  const sealed = fromHex(T.sealed);
  const anchored = anchoredOf(T);
  // Any byte of the stored object changed: its hash is not the anchored one.
  for (const i of [0, 5, 30, 58, sealed.length - 1]) refused(() => openRecord(meta, flip(sealed, i), key, anchored), 'content-hash-mismatch');
  // A gateway that also lies about the hash (an anchor it made up) still cannot pass the rest.
  const ct = flip(sealed, sealed.length - 1);
  refused(() => openRecord(meta, ct, key, { contentHash: sha256(ct), keyId: anchored.keyId }), 'decrypt-failed');
  const commit = flip(sealed, 30);
  refused(() => openRecord(meta, commit, key, { contentHash: sha256(commit), keyId: anchored.keyId }), 'key-commitment-mismatch');
  refused(() => openRecord(meta, commit, key, { contentHash: sha256(commit) }), 'key-commitment-mismatch');
  // Another key id anchored, another key, or the details the ciphertext is bound to.
  refused(() => openRecord(meta, sealed, key, { ...anchored, keyId: v.whole.key_id }), 'key-commitment-mismatch');
  refused(() => openRecord(meta, sealed, fromHex(v.whole.data_key), anchored), 'key-commitment-mismatch');
  refused(() => openRecord({ ...meta, patientId: 'pt-other' }, sealed, key, anchored), 'decrypt-failed');
  refused(() => openRecord({ ...meta, resourceType: 'Condition' }, sealed, key, anchored), 'decrypt-failed');
  refused(() => openRecord({ ...meta, version: 2n }, sealed, key, anchored), 'decrypt-failed');
  // The record of another id under its own key: the commitment binds the record id.
  refused(() => openRecord({ ...meta, recordId: 'rec-other' }, sealed, key, anchored), 'key-commitment-mismatch');
  // Truncated and padded encodings.
  const short = sealed.subarray(0, sealed.length - 1);
  refused(() => openRecord(meta, short, key, { contentHash: sha256(short) }), 'malformed');
  const long = new Uint8Array([...sealed, 0]);
  refused(() => openRecord(meta, long, key, { contentHash: sha256(long) }), 'malformed');
  assert.equal(decodeSealed(sealed).ciphertext.length, utf8(new TextDecoder().decode(fromHex(T.plaintext))).length + 16);
});

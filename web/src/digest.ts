// List digests (docs/queries.md, "List digests"; crates/tx/src/digest.rs): a patient's access
// history, consents and records each keep `count ‖ head`, the head of a SHA-256 chain over the
// entries. One proof of the digest and the entries read without proofs prove the whole list.

import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equal, utf8 } from './bytes.ts';

export const TAG = utf8('medledger/list-digest/v1');
/**
 * The fields of an AccessEvent written after it is logged, outside the chain: a break-glass
 * review (14, 15, 18) and a patient's report with its review (19 to 23).
 */
export const REVIEW_FIELDS = [14, 15, 18, 19, 20, 21, 22, 23];

export interface ListDigest {
  count: bigint;
  head: Uint8Array;
}

export const EMPTY: ListDigest = { count: 0n, head: new Uint8Array(32) };

/** Decodes a stored digest (exactly 40 bytes). */
export function decodeDigest(b: Uint8Array): ListDigest {
  if (b.length !== 40) throw new Error(`a list digest is 40 bytes, not ${b.length}`);
  const count = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, false);
  return { count, head: b.slice(8) };
}

function u64be(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n, false);
  return out;
}

/** The digest after appending an entry whose leaf is `leaf` (entry number `d.count`). */
export function push(d: ListDigest, leaf: Uint8Array): ListDigest {
  return { count: d.count + 1n, head: sha256(concat(TAG, d.head, u64be(d.count), sha256(leaf))) };
}

/** The digest of `leaves`, in order. */
export function digestOf(leaves: Uint8Array[]): ListDigest {
  return leaves.reduce(push, EMPTY);
}

export const sameDigest = (a: ListDigest, b: ListDigest) => a.count === b.count && equal(a.head, b.head);

function varint(b: Uint8Array, at: number): [bigint, number] {
  let v = 0n;
  for (let shift = 0n, i = at; i < b.length && shift < 70n; i++, shift += 7n) {
    v |= BigInt(b[i] & 0x7f) << shift;
    if ((b[i] & 0x80) === 0) return [v, i + 1];
  }
  throw new Error('truncated varint');
}

/**
 * `b` (a protobuf message) without its top-level fields numbered in `drop`: for a canonical
 * encoding, the canonical encoding of the message with those fields cleared.
 */
export function withoutFields(b: Uint8Array, drop: number[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < b.length) {
    const [tag, afterTag] = varint(b, at);
    const field = Number(tag >> 3n);
    let end: number;
    switch (Number(tag & 7n)) {
      case 0:
        end = varint(b, afterTag)[1];
        break;
      case 1:
        end = afterTag + 8;
        break;
      case 2: {
        const [len, afterLen] = varint(b, afterTag);
        end = afterLen + Number(len);
        break;
      }
      case 5:
        end = afterTag + 4;
        break;
      default:
        throw new Error(`unsupported wire type at byte ${at}`);
    }
    if (end > b.length) throw new Error('truncated field');
    if (!drop.includes(field)) parts.push(b.subarray(at, end));
    at = end;
  }
  return concat(...parts);
}

/** The leaf of an access event: its stored bytes without the review fields. */
export const accessLeaf = (value: Uint8Array) => withoutFields(value, REVIEW_FIELDS);

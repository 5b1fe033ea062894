// The compact proof transport `jmt-compact-v1` (docs/queries.md, crates/query/src/compact.rs):
// a decoder that rebuilds exactly the ICS23 CommitmentProof jmt 0.12 builds. Nothing is verified
// here; pass the result to the ICS23 verifier (ics23.ts). Like the Rust expander, it accepts only
// the one canonical encoding of a proof.

import { equal } from './bytes.ts';
import {
  HashOp,
  JMT_INTERNAL_PREFIX,
  JMT_PLACEHOLDER,
  JMT_SPEC,
  type CommitmentProof,
  type ExistenceProof,
  type InnerOp,
  type LeafOp,
} from './ics23.ts';

export const PROOF_OP_TYPE = 'jmt-compact-v1';
export const VERSION = 1;
export const MAX_LEVELS = 256;
export const MAX_KEY_LEN = 4096;
export const MAX_VALUE_LEN = 1 << 20;
const SIBLING_LEN = 32;
const KIND_PRESENT = 0x00;
const HAS_LEFT = 0x01;
const HAS_RIGHT = 0x02;
const DIRECTION_LEFT = 0b01;
const PLACEHOLDER_BIT = 0b10;

export class CompactProofError extends Error {}
const bad = (why: string) => new CompactProofError(`compact proof: ${why}`);

const jmtLeaf = (): LeafOp => ({ ...JMT_SPEC.leaf_spec, prefix: JMT_SPEC.leaf_spec.prefix.slice() });

const sameOp = (a: InnerOp, b: InnerOp) => a.hash === b.hash && equal(a.prefix, b.prefix) && equal(a.suffix, b.suffix);

class CompactReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get rest(): number {
    return this.buf.length - this.pos;
  }
  take(n: number, what: string): Uint8Array {
    if (n > this.rest) throw bad(`${what} needs ${n} bytes, ${this.rest} are left`);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  uint(width: number, max: number, what: string): number {
    let n = 0;
    for (const b of this.take(width, what)) n = n * 256 + b;
    if (n > max) throw bad(`${what} is ${n}, more than ${max}`);
    return n;
  }
  path(): InnerOp[] {
    const levels = this.uint(2, MAX_LEVELS, 'the number of levels');
    const bitmap = this.take(Math.ceil(levels / 4), 'the level bitmap');
    if (bitmap.length > 0) {
      const used = 2 * (levels - 4 * (bitmap.length - 1));
      if (used < 8 && bitmap[bitmap.length - 1] >> used !== 0) throw bad('bits set past the last level');
    }
    const path: InnerOp[] = [];
    for (let i = 0; i < levels; i++) {
      const bits = bitmap[i >> 2] >> (2 * (i % 4));
      let sibling: Uint8Array;
      if (bits & PLACEHOLDER_BIT) sibling = JMT_PLACEHOLDER;
      else {
        sibling = this.take(SIBLING_LEN, 'a sibling hash');
        if (equal(sibling, JMT_PLACEHOLDER)) throw bad(`level ${i} sends the placeholder hash instead of setting its bit`);
      }
      const left = (bits & DIRECTION_LEFT) !== 0;
      const prefix = new Uint8Array(JMT_INTERNAL_PREFIX.length + (left ? SIBLING_LEN : 0));
      prefix.set(JMT_INTERNAL_PREFIX);
      if (left) prefix.set(sibling, JMT_INTERNAL_PREFIX.length);
      path.push({ hash: HashOp.SHA256, prefix, suffix: left ? new Uint8Array() : sibling.slice() });
    }
    return path;
  }
  neighbour(above?: InnerOp[]): ExistenceProof {
    const keyLen = this.uint(2, MAX_KEY_LEN, 'a neighbour key length');
    const key = this.take(keyLen, 'a neighbour key').slice();
    const valueLen = this.uint(4, MAX_VALUE_LEN, 'a neighbour value length');
    const value = this.take(valueLen, 'a neighbour value').slice();
    let path: InnerOp[];
    if (above === undefined) path = this.path();
    else {
      const shared = this.uint(2, above.length, 'the levels shared with the left path');
      path = this.path();
      const below = above.slice(0, above.length - shared);
      const top = above.slice(above.length - shared);
      const last = path[path.length - 1];
      const belowLast = below[below.length - 1];
      if (last !== undefined && belowLast !== undefined && sameOp(last, belowLast)) {
        throw bad('the right path repeats a level it could share with the left path');
      }
      if (path.length + shared > MAX_LEVELS) throw bad(`the right path has ${path.length + shared} levels, more than ${MAX_LEVELS}`);
      path = path.concat(top);
    }
    return { key, value, leaf: jmtLeaf(), path };
  }
}

/**
 * Rebuilds the ICS23 proof of the answer `key` → `value` (`undefined`: absent) from its compact
 * encoding (`crates/query/src/compact.rs::expand`).
 */
export function expand(bytes: Uint8Array, key: Uint8Array, value: Uint8Array | undefined): CommitmentProof {
  const r = new CompactReader(bytes);
  const version = r.uint(1, 255, 'the version');
  if (version !== VERSION) throw bad(`version ${version}; this verifier reads version ${VERSION}`);
  const kind = r.uint(1, 255, 'the kind');
  let proof: CommitmentProof;
  if (kind === KIND_PRESENT) {
    if (value === undefined) throw new CompactProofError('proof kind does not match the answer (an absence needs a non-membership proof)');
    proof = { exist: { key: key.slice(), value: value.slice(), leaf: jmtLeaf(), path: r.path() } };
  } else if (kind >= 0x01 && kind <= 0x03) {
    if (value !== undefined) throw new CompactProofError('proof kind does not match the answer (a value needs a membership proof)');
    const left = kind & HAS_LEFT ? r.neighbour() : undefined;
    const right = kind & HAS_RIGHT ? r.neighbour(left?.path ?? undefined) : undefined;
    // A right neighbour alone has no left path to share with: it is read like a left one.
    proof = { nonexist: { key: key.slice(), left, right } };
  } else throw bad(`unknown kind 0x${kind.toString(16).padStart(2, '0')}`);
  if (r.rest !== 0) throw bad(`${r.rest} bytes after the end of the proof`);
  return proof;
}

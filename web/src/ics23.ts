// The ICS23 verifier (ics23 0.12, Rust: src/verify.rs, src/ops.rs, src/api.rs), ported for the
// proof spec of the Jellyfish Merkle Tree (jmt 0.12, `jmt::ics23_spec()`). Existence and
// non-existence, including `prehash_key_before_comparison`, which the JMT spec sets: the
// neighbours of an absent key are ordered by SHA-256 of the key, not by the key.
//
// Only what the JMT spec uses is implemented (hash ops NO_HASH and SHA256, length op NO_PREFIX
// and REQUIRE_32_BYTES); any other op makes verification fail. The IAVL-only prefix checks of
// api.rs (`ensure_leaf_prefix`, `ensure_inner_prefix`) are no-ops for a non-IAVL spec, as in
// Rust.

import { sha256 } from '@noble/hashes/sha2.js';
import { compare, concat, equal, utf8 } from './bytes.ts';

export const HashOp = { NO_HASH: 0, SHA256: 1 } as const;
export const LengthOp = { NO_PREFIX: 0, REQUIRE_32_BYTES: 7 } as const;

export interface LeafOp {
  hash: number;
  prehash_key: number;
  prehash_value: number;
  length: number;
  prefix: Uint8Array;
}
export interface InnerOp {
  hash: number;
  prefix: Uint8Array;
  suffix: Uint8Array;
}
export interface ExistenceProof {
  key: Uint8Array;
  value: Uint8Array;
  leaf?: LeafOp;
  path: InnerOp[];
}
export interface NonExistenceProof {
  key: Uint8Array;
  left?: ExistenceProof;
  right?: ExistenceProof;
}
export type CommitmentProof = { exist: ExistenceProof } | { nonexist: NonExistenceProof };

export interface InnerSpec {
  child_order: number[];
  child_size: number;
  min_prefix_length: number;
  max_prefix_length: number;
  empty_child: Uint8Array;
  hash: number;
}
export interface ProofSpec {
  leaf_spec: LeafOp;
  inner_spec: InnerSpec;
  max_depth: number;
  min_depth: number;
  prehash_key_before_comparison: boolean;
}

/** jmt 0.12 `LEAF_DOMAIN_SEPARATOR`. */
export const JMT_LEAF_PREFIX = utf8('JMT::LeafNode');
/** jmt 0.12 `INTERNAL_DOMAIN_SEPARATOR`. */
export const JMT_INTERNAL_PREFIX = utf8('JMT::IntrnalNode');
/** jmt 0.12 `SPARSE_MERKLE_PLACEHOLDER_HASH`. */
export const JMT_PLACEHOLDER = utf8('SPARSE_MERKLE_PLACEHOLDER_HASH__');

/** `jmt::ics23_spec()` of jmt 0.12 (src/tree/ics23_impl.rs). */
export const JMT_SPEC: ProofSpec = Object.freeze({
  leaf_spec: {
    hash: HashOp.SHA256,
    prehash_key: HashOp.SHA256,
    prehash_value: HashOp.SHA256,
    length: LengthOp.NO_PREFIX,
    prefix: JMT_LEAF_PREFIX,
  },
  inner_spec: {
    hash: HashOp.SHA256,
    child_order: [0, 1],
    min_prefix_length: JMT_INTERNAL_PREFIX.length,
    max_prefix_length: JMT_INTERNAL_PREFIX.length,
    child_size: 32,
    empty_child: JMT_PLACEHOLDER,
  },
  min_depth: 0,
  max_depth: 64,
  prehash_key_before_comparison: true,
});

export class Ics23Error extends Error {}
function ensure(cond: boolean, msg: string): asserts cond {
  if (!cond) throw new Ics23Error(msg);
}

function doHash(op: number, data: Uint8Array): Uint8Array {
  if (op === HashOp.NO_HASH) return data.slice();
  if (op === HashOp.SHA256) return sha256(data);
  throw new Ics23Error(`unsupported hash op ${op}`);
}

function doLength(op: number, data: Uint8Array): Uint8Array {
  if (op === LengthOp.NO_PREFIX) return data;
  if (op === LengthOp.REQUIRE_32_BYTES) {
    ensure(data.length === 32, 'Invalid length');
    return data;
  }
  throw new Ics23Error(`unsupported length op ${op}`);
}

function prepareLeafData(prehash: number, length: number, data: Uint8Array): Uint8Array {
  ensure(data.length > 0, 'Input to prepare_leaf_data missing');
  return doLength(length, doHash(prehash, data));
}

export function applyLeaf(leaf: LeafOp, key: Uint8Array, value: Uint8Array): Uint8Array {
  const k = prepareLeafData(leaf.prehash_key, leaf.length, key);
  const v = prepareLeafData(leaf.prehash_value, leaf.length, value);
  return doHash(leaf.hash, concat(leaf.prefix, k, v));
}

export function applyInner(inner: InnerOp, child: Uint8Array): Uint8Array {
  ensure(child.length > 0, 'Missing child hash');
  return doHash(inner.hash, concat(inner.prefix, child, inner.suffix));
}

const hasPrefix = (prefix: Uint8Array, data: Uint8Array) =>
  prefix.length <= data.length && equal(prefix, data.subarray(0, prefix.length));

function ensureLeaf(leaf: LeafOp, spec: LeafOp): void {
  ensure(spec.hash === leaf.hash, `Unexpected hashOp: ${leaf.hash}`);
  ensure(spec.prehash_key === leaf.prehash_key, `Unexpected prehash_key: ${leaf.prehash_key}`);
  ensure(spec.prehash_value === leaf.prehash_value, `Unexpected prehash_value: ${leaf.prehash_value}`);
  ensure(spec.length === leaf.length, `Unexpected lengthOp: ${leaf.length}`);
  ensure(hasPrefix(spec.prefix, leaf.prefix), 'Incorrect prefix on leaf');
}

function ensureInner(inner: InnerOp, spec: ProofSpec): void {
  const is = spec.inner_spec;
  ensure(inner.hash === is.hash, `Unexpected hashOp: ${inner.hash}`);
  ensure(!hasPrefix(spec.leaf_spec.prefix, inner.prefix), 'Inner node with leaf prefix');
  ensure(inner.prefix.length >= is.min_prefix_length, `Inner prefix too short: ${inner.prefix.length}`);
  const maxLeftChildBytes = (is.child_order.length - 1) * is.child_size;
  ensure(inner.prefix.length <= is.max_prefix_length + maxLeftChildBytes, `Inner prefix too long: ${inner.prefix.length}`);
  ensure(is.child_size > 0, 'spec.InnerSpec.ChildSize must be >= 1');
  ensure(inner.suffix.length % is.child_size === 0, 'InnerOp suffix malformed');
}

function checkExistenceSpec(proof: ExistenceProof, spec: ProofSpec): void {
  ensure(proof.leaf !== undefined, 'Leaf and Leaf Spec must be set');
  ensureLeaf(proof.leaf, spec.leaf_spec);
  if (spec.min_depth !== 0) {
    ensure(proof.path.length >= spec.min_depth, `Too few InnerOps: ${proof.path.length}`);
    ensure(proof.path.length <= spec.max_depth, `Too many InnerOps: ${proof.path.length}`);
  }
  for (const step of proof.path) ensureInner(step, spec);
}

function calculateExistenceRoot(proof: ExistenceProof, spec: ProofSpec): Uint8Array {
  ensure(proof.key.length > 0, 'Existence proof must have key set');
  ensure(proof.value.length > 0, 'Existence proof must have value set');
  ensure(proof.leaf !== undefined, 'No leaf operation set');
  let hash = applyLeaf(proof.leaf, proof.key, proof.value);
  for (const step of proof.path) {
    hash = applyInner(step, hash);
    const is = spec.inner_spec;
    if (hash.length > is.child_size && is.child_size >= 32) throw new Ics23Error('Invalid inner operation (child_size)');
  }
  return hash;
}

export function verifyExistence(proof: ExistenceProof, spec: ProofSpec, root: Uint8Array, key: Uint8Array, value: Uint8Array): void {
  checkExistenceSpec(proof, spec);
  ensure(equal(proof.key, key), "Provided key doesn't match proof");
  ensure(equal(proof.value, value), "Provided value doesn't match proof");
  const calc = calculateExistenceRoot(proof, spec);
  ensure(equal(calc, root), "Root hash doesn't match");
}

// ---- neighbour checks (verify.rs) ----

interface Padding {
  min_prefix: number;
  max_prefix: number;
  suffix: number;
}

function getPadding(spec: InnerSpec, branch: number): Padding {
  const idx = spec.child_order.find((x) => x === branch);
  if (idx === undefined) throw new Ics23Error(`Branch ${branch} not found`);
  const prefix = idx * spec.child_size;
  const suffix = spec.child_size * (spec.child_order.length - 1 - idx);
  return { min_prefix: prefix + spec.min_prefix_length, max_prefix: prefix + spec.max_prefix_length, suffix };
}

const hasPadding = (op: InnerOp, pad: Padding) =>
  op.prefix.length >= pad.min_prefix && op.prefix.length <= pad.max_prefix && op.suffix.length === pad.suffix;

function orderFromPadding(spec: InnerSpec, op: InnerOp): number {
  for (let branch = 0; branch < spec.child_order.length; branch++) {
    if (hasPadding(op, getPadding(spec, branch))) return branch;
  }
  throw new Ics23Error("padding doesn't match any branch");
}

function leftBranchesAreEmpty(spec: InnerSpec, op: InnerOp): boolean {
  const leftBranches = orderFromPadding(spec, op);
  if (leftBranches === 0) return false;
  const cs = spec.child_size;
  const actualPrefix = op.prefix.length - leftBranches * cs;
  if (actualPrefix < 0) return false;
  for (let i = 0; i < leftBranches; i++) {
    const idx = spec.child_order.find((x) => x === i)!;
    const from = actualPrefix + idx * cs;
    if (!equal(spec.empty_child, op.prefix.subarray(from, from + cs))) return false;
  }
  return true;
}

function rightBranchesAreEmpty(spec: InnerSpec, op: InnerOp): boolean {
  const idx0 = orderFromPadding(spec, op);
  const rightBranches = spec.child_order.length - 1 - idx0;
  if (rightBranches === 0) return false;
  if (op.suffix.length !== spec.child_size) return false;
  for (let i = 0; i < rightBranches; i++) {
    const idx = spec.child_order.find((x) => x === i)!;
    const from = idx * spec.child_size;
    if (!equal(spec.empty_child, op.suffix.subarray(from, from + spec.child_size))) return false;
  }
  return true;
}

function ensureLeftMost(spec: InnerSpec, path: InnerOp[]): void {
  const pad = getPadding(spec, 0);
  for (const step of path) {
    if (!hasPadding(step, pad) && !leftBranchesAreEmpty(spec, step)) throw new Ics23Error('step not leftmost');
  }
}

function ensureRightMost(spec: InnerSpec, path: InnerOp[]): void {
  const pad = getPadding(spec, spec.child_order.length - 1);
  for (const step of path) {
    if (!hasPadding(step, pad) && !rightBranchesAreEmpty(spec, step)) throw new Ics23Error('step not rightmost');
  }
}

function isLeftStep(spec: InnerSpec, left: InnerOp, right: InnerOp): boolean {
  return orderFromPadding(spec, left) + 1 === orderFromPadding(spec, right);
}

function ensureLeftNeighbor(spec: InnerSpec, left: InnerOp[], right: InnerOp[]): void {
  const l = left.slice();
  const r = right.slice();
  // Rust pops with unwrap (a panic on an empty path); here an empty path fails verification.
  const pop = (xs: InnerOp[]) => {
    const x = xs.pop();
    if (x === undefined) throw new Ics23Error('neighbour paths do not diverge');
    return x;
  };
  let topLeft = pop(l);
  let topRight = pop(r);
  while (equal(topLeft.prefix, topRight.prefix) && equal(topLeft.suffix, topRight.suffix)) {
    topLeft = pop(l);
    topRight = pop(r);
  }
  if (!isLeftStep(spec, topLeft, topRight)) throw new Ics23Error('Not left neighbor at first divergent step');
  ensureRightMost(spec, l);
  ensureLeftMost(spec, r);
}

function keyForComparison(spec: ProofSpec, key: Uint8Array): Uint8Array {
  return spec.prehash_key_before_comparison ? doHash(spec.leaf_spec.prehash_key, key) : key;
}

export function verifyNonExistence(proof: NonExistenceProof, spec: ProofSpec, root: Uint8Array, key: Uint8Array): void {
  const k = keyForComparison(spec, key);
  if (proof.left) {
    verifyExistence(proof.left, spec, root, proof.left.key, proof.left.value);
    ensure(compare(k, keyForComparison(spec, proof.left.key)) > 0, "left key isn't before key");
  }
  if (proof.right) {
    verifyExistence(proof.right, spec, root, proof.right.key, proof.right.value);
    ensure(compare(k, keyForComparison(spec, proof.right.key)) < 0, "right key isn't after key");
  }
  if (proof.left && proof.right) ensureLeftNeighbor(spec.inner_spec, proof.left.path, proof.right.path);
  else if (proof.left) ensureRightMost(spec.inner_spec, proof.left.path);
  else if (proof.right) ensureLeftMost(spec.inner_spec, proof.right.path);
  else throw new Ics23Error('neither left nor right proof defined');
}

/** `ics23::verify_membership` (api.rs): false on any failure. */
export function verifyMembership(proof: CommitmentProof, spec: ProofSpec, root: Uint8Array, key: Uint8Array, value: Uint8Array): boolean {
  if (!('exist' in proof)) return false;
  try {
    verifyExistence(proof.exist, spec, root, key, value);
    return true;
  } catch {
    return false;
  }
}

/** `ics23::verify_non_membership` (api.rs): false on any failure. */
export function verifyNonMembership(proof: CommitmentProof, spec: ProofSpec, root: Uint8Array, key: Uint8Array): boolean {
  if (!('nonexist' in proof)) return false;
  const non = proof.nonexist;
  try {
    // get_nonexist_proof: the neighbours must bracket the key (hashed when the spec says so).
    const k = keyForComparison(spec, key);
    if (non.left && !(compare(keyForComparison(spec, non.left.key), k) < 0)) return false;
    if (non.right && !(compare(keyForComparison(spec, non.right.key), k) > 0)) return false;
    verifyNonExistence(non, spec, root, key);
    return true;
  } catch {
    return false;
  }
}

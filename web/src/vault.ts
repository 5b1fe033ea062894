// The patient's own copy of a record, opened in the browser (issue 25 point 6, issue 27 point 7).
// The byte formats are docs/vault.md's, implemented exactly as crates/vault does; the tests run
// against vectors that crates/vault's own functions wrote (crates/vault/tests/web_vectors.rs).
//
// - The patient's box key: X25519, derived from the Ed25519 seed the page already holds
//   (HKDF-SHA256, info "medledger/patient-box/v1"), so nothing new is stored.
// - HPKE (RFC 9180) base mode, single-shot open: DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//   ChaCha20-Poly1305 (ids 0x0020 / 0x0001 / 0x0003), no AAD: the suite of crates/vault/src/share.rs.
// - Threshold custody: each holder's share, sealed to the patient, is opened, checked against the
//   anchored Feldman commitments (a wrong share is named by its index), the first t are
//   interpolated at 0 (Lagrange over Ristretto255's scalars), s·G is checked against C_0, and the
//   data key is SHA-256("medledger/vault/threshold-key/v1" ‖ s).
// - The record: its sealed bytes must hash to the anchored content hash, its key commitment must
//   be the anchored `kc1-…` and the data key's HMAC, and only then is XChaCha20-Poly1305 opened
//   with the record's associated data.
//
// Every refusal is a VaultError whose `reason` is stable (tests match on it); a bad share is a
// BadShareError naming its index, so the page names the holder the anchor lists there.

import { xchacha20poly1305, chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ristretto255, x25519 } from '@noble/curves/ed25519.js';
import { extract, expand } from '@noble/hashes/hkdf.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equal, toHex, utf8 } from './bytes.ts';

/** Why a record could not be opened. `reason` is a stable name; the message is in words. */
export type VaultReason =
  | 'malformed'
  | 'bad-identifier'
  | 'decrypt-failed'
  | 'bad-commitment'
  | 'duplicate-share'
  | 'bad-share'
  | 'not-enough-shares'
  | 'secret-mismatch'
  | 'content-hash-mismatch'
  | 'key-commitment-mismatch';

export class VaultError extends Error {
  constructor(
    readonly reason: VaultReason,
    message: string,
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

/** A holder gave a share that does not match the record's anchored commitments. */
export class BadShareError extends VaultError {
  constructor(readonly index: number) {
    super('bad-share', `key share ${index} does not match the record's share commitments`);
    this.name = 'BadShareError';
  }
}

// --- Constants (crates/vault) ---

export const PATIENT_BOX_INFO = utf8('medledger/patient-box/v1');
export const RECORD_AD_DOMAIN = utf8('medledger/vault/record/v1');
export const KEY_COMMITMENT_DOMAIN = utf8('medledger/vault/key-commitment/v1');
export const SHARE_INFO_DOMAIN = utf8('medledger/vault/share/v1');
export const KEY_SHARE_INFO_DOMAIN = utf8('medledger/vault/key-share/v1');
export const THRESHOLD_KEY_DOMAIN = utf8('medledger/vault/threshold-key/v1');
/** The largest record plaintext: 16 MiB. */
export const MAX_RECORD_BYTES = 16 * 1024 * 1024;
const TAG_LEN = 16;
const NONCE_LEN = 24;
const COMMITMENT_LEN = 32;
const SHARED_KEY_LEN = 81;
const SEALED_SHARE_LEN = 82;
const MAX_ID_BYTES = 256;
export const MIN_THRESHOLD = 2;
export const MAX_HOLDERS = 32;
/** The order ℓ of Ristretto255 (its scalars are integers modulo ℓ). */
export const L = 2n ** 252n + 27742317777372353535851937790883648493n;

// --- Encoding helpers ---

function u32be(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
}

function checkId(field: string, id: string): Uint8Array {
  const b = utf8(id);
  if (b.length === 0 || b.length > MAX_ID_BYTES) throw new VaultError('bad-identifier', `the ${field} must be 1 to ${MAX_ID_BYTES} bytes (it is ${b.length})`);
  return b;
}

const lp = (b: Uint8Array): Uint8Array => concat(u32be(b.length), b);

/** Equality without an early exit (the page compares MACs it computed itself; kept as Rust does). */
function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** A 32-byte little-endian canonical scalar (< ℓ), or undefined. */
export function scalarFromBytes(b: Uint8Array): bigint | undefined {
  if (b.length !== 32) return undefined;
  let n = 0n;
  for (let i = 31; i >= 0; i--) n = (n << 8n) | BigInt(b[i]);
  return n < L ? n : undefined;
}

export function scalarToBytes(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let v = ((n % L) + L) % L;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

const mod = (a: bigint): bigint => ((a % L) + L) % L;

function invert(a: bigint): bigint {
  // ℓ is prime: a^(ℓ−2) mod ℓ.
  let result = 1n;
  let base = mod(a);
  let e = L - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % L;
    base = (base * base) % L;
    e >>= 1n;
  }
  return result;
}

// --- The patient's box key (contract §1) ---

export interface BoxKey {
  secret: Uint8Array;
  public: Uint8Array;
}

/**
 * The patient's X25519 box key from their Ed25519 seed:
 * `HKDF-SHA256(ikm = seed, salt = empty, info = "medledger/patient-box/v1", L = 32)` is the
 * X25519 private key (clamped by X25519 itself); the public key is what RegisterPatientBoxKey
 * puts on chain.
 */
export function patientBoxKey(seed: Uint8Array): BoxKey {
  if (seed.length !== 32) throw new VaultError('malformed', 'an Ed25519 seed is 32 bytes');
  const secret = expand(sha256, extract(sha256, seed, new Uint8Array(0)), PATIENT_BOX_INFO, 32);
  return { secret, public: x25519.getPublicKey(secret) };
}

// --- HPKE (RFC 9180), base mode, open only ---

const HPKE_V1 = utf8('HPKE-v1');
const KEM_SUITE = concat(utf8('KEM'), Uint8Array.of(0x00, 0x20));
const HPKE_SUITE = concat(utf8('HPKE'), Uint8Array.of(0x00, 0x20, 0x00, 0x01, 0x00, 0x03));

const labeledExtract = (suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array) =>
  extract(sha256, concat(HPKE_V1, suite, utf8(label), ikm), salt);

const labeledExpand = (suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, len: number) =>
  expand(sha256, prk, concat(Uint8Array.of(len >> 8, len & 0xff), HPKE_V1, suite, utf8(label), info), len);

/**
 * HPKE `OpenBase` of a single message (sequence 0): the recipient's X25519 secret, the
 * encapsulated key, `info`, empty AAD. Any mismatch is `decrypt-failed`.
 */
export function hpkeOpen(recipientSecret: Uint8Array, enc: Uint8Array, info: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const failed = () => new VaultError('decrypt-failed', 'the sealed key does not open with this box key (another key, record, reader or index)');
  if (enc.length !== 32 || recipientSecret.length !== 32) throw failed();
  let dh: Uint8Array;
  try {
    dh = x25519.getSharedSecret(recipientSecret, enc);
  } catch {
    throw failed();
  }
  if (dh.every((b) => b === 0)) throw failed();
  const pkR = x25519.getPublicKey(recipientSecret);
  const eaePrk = labeledExtract(KEM_SUITE, new Uint8Array(0), 'eae_prk', dh);
  const shared = labeledExpand(KEM_SUITE, eaePrk, 'shared_secret', concat(enc, pkR), 32);
  const pskIdHash = labeledExtract(HPKE_SUITE, new Uint8Array(0), 'psk_id_hash', new Uint8Array(0));
  const infoHash = labeledExtract(HPKE_SUITE, new Uint8Array(0), 'info_hash', info);
  const context = concat(Uint8Array.of(0x00), pskIdHash, infoHash);
  const secret = labeledExtract(HPKE_SUITE, shared, 'secret', new Uint8Array(0));
  const key = labeledExpand(HPKE_SUITE, secret, 'key', context, 32);
  const nonce = labeledExpand(HPKE_SUITE, secret, 'base_nonce', context, 12);
  try {
    return chacha20poly1305(key, nonce, new Uint8Array(0)).decrypt(ciphertext);
  } catch {
    throw failed();
  }
}

// --- A whole data key shared with HPKE (records stored before threshold custody) ---

/** `"medledger/vault/share/v1" ‖ lp(record id) ‖ lp(reader id)` (the patient id for the patient). */
export const shareInfo = (recordId: string, readerId: string): Uint8Array =>
  concat(SHARE_INFO_DOMAIN, lp(checkId('record id', recordId)), lp(checkId('reader id', readerId)));

/** Opens a shared key encoding (`0x01 ‖ enc (32) ‖ ct (48)`, 81 bytes): the 32-byte data key. */
export function openSharedKey(box: BoxKey, recordId: string, readerId: string, encoded: Uint8Array): Uint8Array {
  if (encoded.length !== SHARED_KEY_LEN) throw new VaultError('malformed', `a shared key is ${SHARED_KEY_LEN} bytes (got ${encoded.length})`);
  if (encoded[0] !== 1) throw new VaultError('malformed', `shared key format version ${encoded[0]} is not supported`);
  const key = hpkeOpen(box.secret, encoded.subarray(1, 33), shareInfo(recordId, readerId), encoded.subarray(33));
  if (key.length !== 32) throw new VaultError('decrypt-failed', 'the shared key is not 32 bytes');
  return key;
}

// --- Threshold custody ---

export interface KeyShare {
  index: number;
  value: bigint;
}

/** `"medledger/vault/key-share/v1" ‖ lp(chain) ‖ lp(record) ‖ lp(recipient) ‖ index`. */
export function keyShareInfo(chainId: string, recordId: string, recipientId: string, index: number): Uint8Array {
  return concat(KEY_SHARE_INFO_DOMAIN, lp(checkId('chain id', chainId)), lp(checkId('record id', recordId)), lp(checkId('recipient id', recipientId)), Uint8Array.of(index));
}

/** The index a sealed share (`0x01 ‖ index ‖ enc (32) ‖ ct (48)`, 82 bytes) claims, checked for form. */
export function sealedShareIndex(encoded: Uint8Array): number {
  if (encoded.length !== SEALED_SHARE_LEN) throw new VaultError('malformed', `a sealed key share is ${SEALED_SHARE_LEN} bytes (got ${encoded.length})`);
  if (encoded[0] !== 1) throw new VaultError('malformed', `sealed key share format version ${encoded[0]} is not supported`);
  const index = encoded[1];
  if (index === 0 || index > MAX_HOLDERS) throw new VaultError('malformed', `sealed key share index ${index} is outside 1..=${MAX_HOLDERS}`);
  return index;
}

/** Opens a share sealed to the recipient (the patient: its id as recipient). Its index is authenticated. */
export function openShare(box: BoxKey, chainId: string, recordId: string, recipientId: string, encoded: Uint8Array): KeyShare {
  const index = sealedShareIndex(encoded);
  const plain = hpkeOpen(box.secret, encoded.subarray(2, 34), keyShareInfo(chainId, recordId, recipientId, index), encoded.subarray(34));
  const value = scalarFromBytes(plain);
  if (value === undefined) throw new VaultError('malformed', `key share ${index} is not a canonical scalar`);
  return { index, value };
}

type Point = InstanceType<typeof ristretto255.Point>;

/** Parses the anchored commitments: 2..=32 canonical Ristretto points, none the identity. */
export function parseCommitments(entries: Uint8Array[]): Point[] {
  if (entries.length < MIN_THRESHOLD || entries.length > MAX_HOLDERS) throw new VaultError('bad-commitment', `${entries.length} share commitments; a record has 2 to 32`);
  return entries.map((e, position) => {
    if (e.length !== 32) throw new VaultError('bad-commitment', `share commitment ${position}: not 32 bytes`);
    let p: Point;
    try {
      p = ristretto255.Point.fromBytes(e);
    } catch {
      throw new VaultError('bad-commitment', `share commitment ${position}: not a canonical Ristretto point`);
    }
    if (p.is0()) throw new VaultError('bad-commitment', `share commitment ${position}: the identity point`);
    return p;
  });
}

const mulBase = (s: bigint): Point => (s === 0n ? ristretto255.Point.ZERO : ristretto255.Point.BASE.multiply(s));

/** Feldman: `value·G == Σ_j index^j · C_j`. */
export function verifyShare(share: KeyShare, commitments: Point[]): boolean {
  let sum = ristretto255.Point.ZERO;
  let power = 1n;
  const x = BigInt(share.index);
  for (const c of commitments) {
    sum = sum.add(c.multiplyUnsafe(power));
    power = (power * x) % L;
  }
  return mulBase(share.value).equals(sum);
}

/** `SHA-256("medledger/vault/threshold-key/v1" ‖ s)`, s as 32 bytes little-endian. */
export const thresholdDataKey = (secret: bigint): Uint8Array => sha256(concat(THRESHOLD_KEY_DOMAIN, scalarToBytes(secret)));

/**
 * The record's data key from its holders' shares, as crates/vault `combine`: a repeated index
 * refused, every share checked (the first bad one named), at least t needed, the first t
 * interpolated at 0, the secret checked against C_0.
 */
export function combine(shares: KeyShare[], commitmentBytes: Uint8Array[]): Uint8Array {
  const commitments = parseCommitments(commitmentBytes);
  const seen = new Set<number>();
  for (const s of shares) {
    if (seen.has(s.index)) throw new VaultError('duplicate-share', `key share ${s.index} was given more than once`);
    seen.add(s.index);
  }
  for (const s of shares) if (!verifyShare(s, commitments)) throw new BadShareError(s.index);
  const t = commitments.length;
  if (shares.length < t) throw new VaultError('not-enough-shares', `${shares.length} valid key shares, ${t} needed`);
  const used = shares.slice(0, t);
  let secret = 0n;
  for (const i of used) {
    let num = 1n;
    let den = 1n;
    for (const j of used) {
      if (j.index === i.index) continue;
      num = (num * BigInt(j.index)) % L;
      den = mod(den * (BigInt(j.index) - BigInt(i.index)));
    }
    secret = mod(secret + i.value * ((num * invert(den)) % L));
  }
  if (!mulBase(secret).equals(commitments[0])) throw new VaultError('secret-mismatch', 'the combined secret does not match the first share commitment');
  return thresholdDataKey(secret);
}

// --- The record ---

export interface RecordMeta {
  recordId: string;
  patientId: string;
  resourceType: string;
  version: bigint;
}

/** `"medledger/vault/record/v1" ‖ lp(record) ‖ lp(patient) ‖ lp(type) ‖ u64be(version)`. */
export function recordAd(m: RecordMeta): Uint8Array {
  const v = new Uint8Array(8);
  new DataView(v.buffer).setBigUint64(0, m.version, false);
  return concat(RECORD_AD_DOMAIN, lp(checkId('record id', m.recordId)), lp(checkId('patient id', m.patientId)), lp(checkId('resource type', m.resourceType)), v);
}

/** `HMAC-SHA256(key = data key, "medledger/vault/key-commitment/v1" ‖ record id)`. */
export const keyCommitment = (key: Uint8Array, recordId: string): Uint8Array => hmac(sha256, key, concat(KEY_COMMITMENT_DOMAIN, checkId('record id', recordId)));

/** The anchor's `key_id` for a commitment: `kc1-<64 lowercase hex>`. */
export const keyIdOf = (commitment: Uint8Array): string => `kc1-${toHex(commitment)}`;

export interface SealedRecord {
  nonce: Uint8Array;
  commitment: Uint8Array;
  ciphertext: Uint8Array;
}

/** Decodes `0x01 ‖ nonce (24) ‖ commitment (32) ‖ u32be(len) ‖ ciphertext`, nothing after. */
export function decodeSealed(b: Uint8Array): SealedRecord {
  const bad = (why: string) => new VaultError('malformed', `sealed record: ${why}`);
  if (b.length > MAX_RECORD_BYTES + TAG_LEN + 1 + NONCE_LEN + COMMITMENT_LEN + 4) throw bad('too large');
  if (b.length < 1 + NONCE_LEN + COMMITMENT_LEN + 4) throw bad('truncated');
  if (b[0] !== 1) throw bad(`format version ${b[0]} is not supported`);
  const len = new DataView(b.buffer, b.byteOffset + 57, 4).getUint32(0, false);
  if (len < TAG_LEN || len > MAX_RECORD_BYTES + TAG_LEN) throw bad('ciphertext length out of range');
  if (b.length < 61 + len) throw bad('truncated');
  if (b.length > 61 + len) throw bad('trailing bytes');
  return { nonce: b.slice(1, 25), commitment: b.slice(25, 57), ciphertext: b.slice(61) };
}

/** What the anchor says of a record, proven on chain (`record/{id}`). */
export interface Anchored {
  contentHash: Uint8Array;
  /** `kc1-…`, when the anchor carries one. */
  keyId?: string;
}

/**
 * Opens a record: the sealed bytes must hash to the anchored content hash, the commitment inside
 * must be the anchored key id and the data key's own, and then the AEAD must open under the
 * record's associated data.
 */
export function openRecord(meta: RecordMeta, sealedBytes: Uint8Array, key: Uint8Array, anchored: Anchored): Uint8Array {
  if (!equal(sha256(sealedBytes), anchored.contentHash)) throw new VaultError('content-hash-mismatch', 'the record does not hash to the content hash on the ledger: it is not the record that was stored');
  const sealed = decodeSealed(sealedBytes);
  if (anchored.keyId !== undefined && anchored.keyId !== '' && anchored.keyId !== keyIdOf(sealed.commitment)) {
    throw new VaultError('key-commitment-mismatch', 'the record carries another key commitment than the ledger');
  }
  if (key.length !== 32 || !ctEqual(keyCommitment(key, meta.recordId), sealed.commitment)) {
    throw new VaultError('key-commitment-mismatch', 'the key does not match the record (key commitment)');
  }
  try {
    return xchacha20poly1305(key, sealed.nonce, recordAd(meta)).decrypt(sealed.ciphertext);
  } catch {
    throw new VaultError('decrypt-failed', 'the record does not decrypt: its bytes or its details were changed');
  }
}

/** One holder's answer for the patient: a sealed share, or (a record held whole) a shared key. */
export interface Released {
  /** The holder's position in the anchor's list, from 1 (the share index it must carry). */
  position: number;
  sealedShare?: Uint8Array;
  sharedKey?: Uint8Array;
}

/**
 * The data key of a record from what its holders released to the patient: a shared whole key
 * when the record has no holders; otherwise the shares, opened (each must carry the index of the
 * holder's position), then `combine`.
 */
export function dataKeyFor(box: BoxKey, chainId: string, meta: RecordMeta, patientId: string, commitments: Uint8Array[], released: Released[]): Uint8Array {
  if (commitments.length === 0) {
    const whole = released.find((r) => r.sharedKey && r.sharedKey.length > 0);
    if (!whole?.sharedKey) throw new VaultError('not-enough-shares', 'the custodian released no key');
    return openSharedKey(box, meta.recordId, patientId, whole.sharedKey);
  }
  const shares: KeyShare[] = [];
  for (const r of released) {
    if (!r.sealedShare) continue;
    const share = openShare(box, chainId, meta.recordId, patientId, r.sealedShare);
    if (share.index !== r.position) throw new BadShareError(r.position);
    shares.push(share);
  }
  return combine(shares, commitments);
}

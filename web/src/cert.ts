// BLS checkpoint certificates (docs/certificates.md): the trust root from genesis (every proof of
// possession checked), certificate verification (FastAggregateVerify, min-pk, POP ciphersuite)
// and the handover of trust at a validator-set change.

import { bls12_381 } from '@noble/curves/bls12-381.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { compare, concat, fromHex, toHex, u64be, utf8 } from './bytes.ts';
import type { Certificate, Validator } from './messages.ts';

export const BLS_SIG_DST = 'BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_';
export const BLS_POP_DST = 'BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_';
export const CHECKPOINT_NAMESPACE = utf8('medledger/checkpoint/v1');
export const MAX_VALIDATORS = 256;

const bls = bls12_381.longSignatures;
const G1 = bls12_381.G1.Point;

export class CertError extends Error {}

export interface CertValidator {
  address: Uint8Array;
  /** Compressed G1 key; empty for a validator without a BLS key (counts in the total power). */
  blsKey: Uint8Array;
  power: bigint;
  name: string;
}

/** The validators that sign certificates, in certificate order (by address bytes). */
export interface CertTrust {
  chainId: string;
  validators: CertValidator[];
}

export interface CertifiedState {
  height: bigint;
  appHash: Uint8Array;
  signers: number[];
  signerNames: string[];
  signedPower: bigint;
  totalPower: bigint;
}

/** blst `key_validate`: on the curve, in the subgroup, not the identity. */
function publicKey(bytes: Uint8Array) {
  if (bytes.length !== 48) return undefined;
  try {
    const p = G1.fromBytes(bytes);
    p.assertValidity();
    if (p.is0()) return undefined;
    return p;
  } catch {
    return undefined;
  }
}

/** blst `Signature::from_bytes` + `validate(true)`: in the subgroup, not the identity. */
function signature(bytes: Uint8Array) {
  if (bytes.length !== 96) return undefined;
  try {
    const s = bls.Signature.fromBytes(bytes);
    s.assertValidity();
    if (s.is0()) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

/** Whether `pop` proves possession of the secret key of `blsKey` (POP DST over the 48 key bytes). */
export function verifyPossession(blsKey: Uint8Array, pop: Uint8Array): boolean {
  const pk = publicKey(blsKey);
  const sig = signature(pop);
  if (!pk || !sig) return false;
  try {
    return bls.verify(sig, bls.hash(blsKey, BLS_POP_DST), pk);
  } catch {
    return false;
  }
}

/** `crates/tx/src/checkpoint.rs::checkpoint_message`. */
export function checkpointMessage(chainId: string, height: bigint, appHash: Uint8Array): Uint8Array {
  const id = utf8(chainId);
  return concat(CHECKPOINT_NAMESPACE, Uint8Array.of(0, Math.min(id.length, 255)), id, u64be(height), appHash);
}

export const sortByAddress = (vs: CertValidator[]): CertValidator[] => vs.slice().sort((a, b) => compare(a.address, b.address));

/** The trust root from a genesis document (the `genesis` object of CometBFT's `/genesis`). */
export function trustFromGenesis(genesis: any): CertTrust {
  const chainId = genesis?.chain_id;
  if (typeof chainId !== 'string' || !chainId) throw new CertError('genesis: no chain_id');
  if (!Array.isArray(genesis.validators) || genesis.validators.length === 0) throw new CertError('genesis: no validators');
  const entries: CertValidator[] = genesis.validators.map((v: any) => {
    if (typeof v.address !== 'string' || typeof v.power !== 'string' || !/^\d+$/.test(v.power)) {
      throw new CertError('genesis: a validator has no address or power');
    }
    const address = fromHex(v.address);
    return { address, blsKey: new Uint8Array(), power: BigInt(v.power), name: v.address.toUpperCase() };
  });
  for (const m of genesis.app_state?.members ?? []) {
    const v = m?.validator;
    if (v === null || v === undefined) continue;
    const id = String(m.id ?? '');
    let address: Uint8Array, key: Uint8Array, pop: Uint8Array;
    try {
      address = fromHex(v.address);
      key = fromHex(v.bls_key);
      pop = fromHex(v.bls_pop);
    } catch {
      throw new CertError(`genesis: member ${id}: validator address, bls_key or bls_pop is not hex`);
    }
    if (!verifyPossession(key, pop)) throw new CertError(`genesis: member ${id}: bls_pop does not prove possession of bls_key`);
    const entry = entries.find((e) => compare(e.address, address) === 0);
    if (!entry) throw new CertError(`genesis: member ${id}'s validator is not a genesis validator`);
    entry.blsKey = key;
    entry.name = id;
  }
  return { chainId, validators: sortByAddress(entries) };
}

/** The trust after a handover: the registry proven at the changing state (`ValidatorSet`). */
export function trustFromRegistry(chainId: string, validators: Validator[]): CertTrust {
  if (validators.length === 0) throw new CertError('the certified registry is empty');
  return {
    chainId,
    validators: sortByAddress(
      validators.map((v) => ({
        address: v.address,
        blsKey: v.blsKey,
        power: v.power,
        name: v.memberId || toHex(v.address).toUpperCase(),
      })),
    ),
  };
}

/** Domain separator of the consortium fingerprint (v2: member names covered, fields length-prefixed). */
export const FINGERPRINT_DOMAIN = utf8('medledger/consortium-fingerprint/v2');

/** The bytes the fingerprint hashes: each field length-prefixed (u64be), so no two roots collide. */
export function fingerprintInput(t: CertTrust): Uint8Array {
  const field = (b: Uint8Array) => [u64be(BigInt(b.length)), b];
  const parts: Uint8Array[] = [FINGERPRINT_DOMAIN, Uint8Array.of(0), ...field(utf8(t.chainId)), u64be(BigInt(t.validators.length))];
  for (const v of t.validators) parts.push(...field(v.address), u64be(v.power), ...field(v.blsKey), ...field(utf8(v.name)));
  return concat(...parts);
}

/**
 * A fingerprint of the trust root a user can compare out of band (and the page pins on first
 * use): SHA-256 over the chain id and each genesis validator's address, voting power, BLS key
 * and member name, in certificate order ({@link fingerprintInput}).
 */
export function trustFingerprint(t: CertTrust): string {
  return toHex(sha256(fingerprintInput(t)));
}

/** `crates/tx/src/checkpoint.rs::verify_certificate`. */
export function verifyCertificate(trust: CertTrust, cert: Certificate): CertifiedState {
  const vs = trust.validators;
  if (cert.chainId !== trust.chainId) throw new CertError(`certificate is for chain ${JSON.stringify(cert.chainId)}, not ${JSON.stringify(trust.chainId)}`);
  if (vs.length === 0 || vs.length > MAX_VALIDATORS) throw new CertError('validator set is empty or too large');
  if (cert.appHash.length !== 32) throw new CertError('app hash is not 32 bytes');
  if (cert.signers.length !== Math.ceil(vs.length / 8)) throw new CertError('signer bitmap has the wrong length');
  const signers: number[] = [];
  for (let i = 0; i < cert.signers.length * 8; i++) if (cert.signers[i >> 3] & (1 << (i % 8))) signers.push(i);
  if (signers.some((i) => i >= vs.length)) throw new CertError('signer bitmap names a validator that does not exist');
  const total = vs.reduce((n, v) => n + v.power, 0n);
  const signed = signers.reduce((n, i) => n + vs[i].power, 0n);
  if (signed * 3n <= total * 2n) throw new CertError(`not enough power: ${signed} of ${total} signed`);
  const keys = signers.map((i) => publicKey(vs[i].blsKey));
  if (keys.some((k) => k === undefined)) throw new CertError("a signer's BLS key is invalid");
  const sig = signature(cert.aggregateSignature);
  if (!sig) throw new CertError('the aggregate signature does not verify');
  const message = checkpointMessage(trust.chainId, cert.height, cert.appHash);
  let ok = false;
  try {
    const agg = bls.aggregatePublicKeys(keys as NonNullable<(typeof keys)[number]>[]);
    ok = bls.verify(sig, bls.hash(message, BLS_SIG_DST), agg);
  } catch {
    ok = false;
  }
  if (!ok) throw new CertError('the aggregate signature does not verify');
  return {
    height: cert.height,
    appHash: cert.appHash,
    signers,
    signerNames: signers.map((i) => vs[i].name),
    signedPower: signed,
    totalPower: total,
  };
}

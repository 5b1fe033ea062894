// The patient's key (the CLI's key file format) and signed transactions
// (crates/tx/src/envelope.rs).

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equal, fromHex, toHex, utf8 } from './bytes.ts';
import { encodeTx, encodeTxBody, type TxMsg } from './messages.ts';

export const TX_SIGNING_NAMESPACE = utf8('medledger/tx/v1');

export interface KeyFile {
  name: string;
  public_key: string;
  secret_key: string;
}

export interface PatientKey {
  name: string;
  publicKey: Uint8Array;
  seed: Uint8Array;
}

/** Parses and checks a key file: the public key must be the seed's. */
export function parseKeyFile(text: string): PatientKey {
  let j: any;
  try {
    j = JSON.parse(text);
  } catch {
    throw new Error('the key file is not JSON');
  }
  if (typeof j?.secret_key !== 'string' || typeof j?.public_key !== 'string') throw new Error('the key file needs "public_key" and "secret_key" (hex)');
  const seed = fromHex(j.secret_key.trim());
  if (seed.length !== 32) throw new Error('secret_key must be 32 bytes (64 hex characters)');
  const publicKey = ed25519.getPublicKey(seed);
  if (!equal(publicKey, fromHex(j.public_key.trim()))) throw new Error('public_key is not the public key of secret_key');
  return { name: typeof j.name === 'string' ? j.name : 'patient', publicKey, seed };
}

export function newKey(name = 'patient'): PatientKey {
  const seed = ed25519.utils.randomSecretKey();
  return { name, publicKey: ed25519.getPublicKey(seed), seed };
}

export function keyFileJson(k: PatientKey): string {
  const f: KeyFile = { name: k.name, public_key: toHex(k.publicKey), secret_key: toHex(k.seed) };
  return JSON.stringify(f, null, 2);
}

/** `namespace || 0x00 || len(chain_id) || chain_id || body`. */
export function signingBytes(chainId: string, body: Uint8Array): Uint8Array {
  const id = utf8(chainId);
  if (id.length > 50) throw new Error('chain id longer than 50 bytes');
  return concat(TX_SIGNING_NAMESPACE, Uint8Array.of(0, id.length), id, body);
}

export interface SignedTx {
  bytes: Uint8Array;
  /** CometBFT's tx hash: SHA-256 of the tx bytes, upper-case hex. */
  hash: string;
}

export function signTx(key: PatientKey, chainId: string, sequence: bigint, msg: TxMsg): SignedTx {
  const body = encodeTxBody(chainId, sequence, msg);
  const signature = ed25519.sign(signingBytes(chainId, body), key.seed);
  const bytes = encodeTx(body, key.publicKey, signature);
  return { bytes, hash: toHex(sha256(bytes)).toUpperCase() };
}

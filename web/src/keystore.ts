// The patient's key remembered on this device, encrypted under a passphrase (issue 27, "Code
// trust"): PBKDF2-HMAC-SHA-256 with 600,000 iterations and a random 16-byte salt derives an
// AES-256-GCM key, which seals the key file with a random 12-byte IV; the patient's public key
// is the additional data, so a sealed record cannot be passed off for another key. Only the
// sealed record is stored (IndexedDB, database "medledger", store "keys", entry "patient"):
// never the key in clear. A wrong passphrase fails AES-GCM's check, said as such.

import { fromHex, toHex, utf8 } from './bytes.ts';
import { keyFileJson, parseKeyFile, type PatientKey } from './tx.ts';

/** PBKDF2 iterations: OWASP's 2023 figure for PBKDF2-HMAC-SHA-256. Fewer is refused. */
export const PBKDF2_ITERATIONS = 600_000;
/** The shortest passphrase accepted. */
export const MIN_PASSPHRASE = 8;

/** A sealed key as stored: everything but the passphrase. */
export interface SealedKey {
  version: 1;
  /** Hex public key (shown before unlocking; bound to the ciphertext as additional data). */
  publicKey: string;
  name: string;
  iterations: number;
  salt: string;
  iv: string;
  ciphertext: string;
}

export class WrongPassphrase extends Error {
  constructor() {
    super('wrong passphrase: the remembered key did not open with it');
  }
}

const AAD_PREFIX = 'medledger/remembered-key/v1/';

async function deriveKey(passphrase: string, salt: Uint8Array, iterations: number): Promise<CryptoKey> {
  const base = await crypto.subtle.importKey('raw', utf8(passphrase) as BufferSource, 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: salt as BufferSource, iterations },
    base,
    { name: 'AES-GCM', length: 256 },
    false,
    ['encrypt', 'decrypt'],
  );
}

/** Why `passphrase` is not good enough, or undefined. */
export function passphraseProblem(passphrase: string, again?: string): string | undefined {
  if ([...passphrase].length < MIN_PASSPHRASE) return `the passphrase needs at least ${MIN_PASSPHRASE} characters`;
  if (again !== undefined && again !== passphrase) return 'the two passphrases differ';
  return undefined;
}

/** Seals `k` under `passphrase`. */
export async function sealKey(k: PatientKey, passphrase: string): Promise<SealedKey> {
  const problem = passphraseProblem(passphrase);
  if (problem) throw new Error(problem);
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const publicKey = toHex(k.publicKey);
  const aes = await deriveKey(passphrase, salt, PBKDF2_ITERATIONS);
  const ct = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv: iv as BufferSource, additionalData: utf8(AAD_PREFIX + publicKey) as BufferSource },
    aes,
    utf8(keyFileJson(k)) as BufferSource,
  );
  return { version: 1, publicKey, name: k.name, iterations: PBKDF2_ITERATIONS, salt: toHex(salt), iv: toHex(iv), ciphertext: toHex(new Uint8Array(ct)) };
}

/** Opens a sealed key; [`WrongPassphrase`] when AES-GCM's check fails. */
export async function openKey(s: SealedKey, passphrase: string): Promise<PatientKey> {
  if (s.version !== 1 || !Number.isSafeInteger(s.iterations) || s.iterations < PBKDF2_ITERATIONS || s.iterations > 100 * PBKDF2_ITERATIONS) {
    throw new Error('the remembered key is not in a form this page opens; forget it and open your key file');
  }
  const aes = await deriveKey(passphrase, fromHex(s.salt), s.iterations);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromHex(s.iv) as BufferSource, additionalData: utf8(AAD_PREFIX + s.publicKey) as BufferSource },
      aes,
      fromHex(s.ciphertext) as BufferSource,
    );
  } catch {
    throw new WrongPassphrase();
  }
  const k = parseKeyFile(new TextDecoder().decode(plain));
  if (toHex(k.publicKey) !== s.publicKey) throw new Error('the remembered key is not the key it says it is; forget it');
  return k;
}

/** Where the sealed key lives. */
export interface KeyStore {
  get(): Promise<SealedKey | undefined>;
  put(s: SealedKey): Promise<void>;
  remove(): Promise<void>;
}

/** A store in memory (tests; a browser without IndexedDB remembers nothing across visits). */
export function memoryStore(): KeyStore {
  let v: SealedKey | undefined;
  return {
    get: async () => v,
    put: async (s) => void (v = s),
    remove: async () => void (v = undefined),
  };
}

const DB = 'medledger';
const STORE = 'keys';
const ENTRY = 'patient';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

async function openDb(idb: IDBFactory): Promise<IDBDatabase> {
  const r = idb.open(DB, 1);
  r.onupgradeneeded = () => {
    if (!r.result.objectStoreNames.contains(STORE)) r.result.createObjectStore(STORE);
  };
  return request(r);
}

/** The browser's IndexedDB (database "medledger", object store "keys", entry "patient"). */
export function indexedDbStore(idb: IDBFactory = indexedDB): KeyStore {
  const run = async <T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> => {
    const db = await openDb(idb);
    try {
      return await request(f(db.transaction(STORE, mode).objectStore(STORE)));
    } finally {
      db.close();
    }
  };
  return {
    get: async () => {
      const v = await run('readonly', (s) => s.get(ENTRY));
      return v && typeof v === 'object' ? (v as SealedKey) : undefined;
    },
    put: async (sealed) => void (await run('readwrite', (s) => s.put(sealed, ENTRY))),
    remove: async () => void (await run('readwrite', (s) => s.delete(ENTRY))),
  };
}

// HTTP Message Signatures (RFC 9421) with Ed25519: the signer of the gateway's `POST
// /auth/token`, the same profile the CLI signs vault requests with (crates/vault/src/httpsig.rs,
// crates/gateway/src/client.rs::sign_headers, docs/vault.md).
//
// The profile covers "@method" "@target-uri" "content-digest" (RFC 9530, `sha-256=:base64:`),
// with the parameters created, expires, nonce, keyid (lower-case hex of the Ed25519 public key)
// and alg="ed25519", under the label `sig1`. The signature base is built as RFC 9421 §2.5 says:
// one `"<component>": <value>` line per covered component, each ended by LF, then
// `"@signature-params": <params>` with no trailing LF. No function here reads a clock or draws
// randomness except signHeaders, which takes the time and nonce as optional arguments.

import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { toBase64, toHex, utf8 } from './bytes.ts';

/** How long a signature is valid after `created`, in seconds (the gateway accepts at most 300). */
export const SIGNATURE_VALIDITY_SECS = 60;
/** The components every profile signature covers. */
export const PROFILE_COMPONENTS = ['@method', '@target-uri', 'content-digest'] as const;
/** The label of the profile's signature. */
export const LABEL = 'sig1';
/** The fewest characters a nonce may have (crates/vault/src/httpsig.rs MIN_NONCE_BYTES). */
export const MIN_NONCE_LEN = 16;

/** One signature parameter, in the order it is serialized. */
export type SigParam = ['created' | 'expires', number] | ['nonce' | 'keyid' | 'alg', string];

/** The parts of a request a signature covers. */
export interface HttpRequest {
  method: string;
  /** The absolute target URI, e.g. `https://gw.example/auth/token`. */
  targetUri: string;
  /** Header field lines as [name, value], in message order; names match case-insensitively. */
  headers: [string, string][];
}

/** `Content-Digest` of a body (RFC 9530): `sha-256=:<base64 of SHA-256(body)>:`. */
export function contentDigest(body: Uint8Array): string {
  return `sha-256=:${toBase64(sha256(body))}:`;
}

function sfString(s: string): string {
  if (!/^[\x20-\x7e]*$/.test(s)) throw new Error('a signature parameter must be printable ASCII');
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 8941 serialization of the covered components and their parameters: `("@method" …);created=1;keyid="k"`. */
export function serializeParams(components: readonly string[], params: SigParam[]): string {
  let out = `(${components.map(sfString).join(' ')})`;
  for (const [name, v] of params) {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0 || v > 999_999_999_999_999) throw new Error(`${name} is not an RFC 8941 integer`);
      out += `;${name}=${v}`;
    } else {
      out += `;${name}=${sfString(v)}`;
    }
  }
  return out;
}

function splitUri(uri: string): { scheme: string; authority: string; path: string; query?: string } {
  const m = /^([A-Za-z0-9+.-]+):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/.exec(uri);
  if (!m || !m[2] || m[2].includes('@')) throw new Error(`not an absolute URI: ${uri.slice(0, 80)}`);
  return { scheme: m[1], authority: m[2], path: m[3], query: m[4] };
}

/** The value of one covered component (RFC 9421 §2.1, §2.2), as crates/vault/src/httpsig.rs::component_value. */
export function componentValue(req: HttpRequest, name: string): string {
  let value: string;
  switch (name) {
    case '@method':
      value = req.method;
      break;
    case '@target-uri':
      value = req.targetUri;
      break;
    case '@scheme':
      value = splitUri(req.targetUri).scheme.toLowerCase();
      break;
    case '@authority': {
      const u = splitUri(req.targetUri);
      const scheme = u.scheme.toLowerCase();
      const auth = u.authority.toLowerCase();
      // §2.2.3: the default port of the scheme is left out.
      value = (scheme === 'http' && auth.endsWith(':80')) || (scheme === 'https' && auth.endsWith(':443')) ? auth.slice(0, auth.lastIndexOf(':')) : auth;
      break;
    }
    case '@path':
      value = splitUri(req.targetUri).path || '/';
      break;
    case '@query':
      value = `?${splitUri(req.targetUri).query ?? ''}`;
      break;
    default: {
      if (name.startsWith('@') || !/^[a-z0-9!#$%&'*+\-.^_`|~]+$/.test(name)) throw new Error(`unsupported component ${name}`);
      const values = req.headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v.replace(/^[ \t]+|[ \t]+$/g, ''));
      if (values.length === 0) throw new Error(`the request has no ${name} header`);
      value = values.join(', ');
    }
  }
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new Error(`component ${name} holds a control character`);
  return value;
}

/** The signature base (RFC 9421 §2.5). */
export function signatureBase(req: HttpRequest, components: readonly string[], params: SigParam[]): string {
  let base = '';
  for (const c of components) base += `"${c}": ${componentValue(req, c)}\n`;
  return `${base}"@signature-params": ${serializeParams(components, params)}`;
}

/** Signs `req` under `label`: the `Signature-Input` and `Signature` header values. */
export function signRequest(req: HttpRequest, label: string, components: readonly string[], params: SigParam[], seed: Uint8Array): { signatureInput: string; signature: string } {
  if (!/^[a-z*][a-z0-9_\-.*]*$/.test(label)) throw new Error(`bad signature label ${label}`);
  const sig = ed25519.sign(utf8(signatureBase(req, components, params)), seed);
  return { signatureInput: `${label}=${serializeParams(components, params)}`, signature: `${label}=:${toBase64(sig)}:` };
}

/** The profile's parameters: created, expires, nonce, keyid, alg (crates/vault SignatureParams::profile). */
export function profileParams(keyid: string, nonce: string, created: number, expires: number): SigParam[] {
  return [
    ['created', created],
    ['expires', expires],
    ['nonce', nonce],
    ['keyid', keyid],
    ['alg', 'ed25519'],
  ];
}

/** A fresh nonce: 16 random bytes in hex (32 characters), as the CLI draws. */
export function randomNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * The headers that sign one request with the profile (crates/gateway/src/client.rs::sign_headers):
 * `content-digest`, `signature-input`, `signature`. `now` is UNIX seconds.
 */
export function signHeaders(
  seed: Uint8Array,
  method: string,
  targetUri: string,
  body: Uint8Array,
  now: number = Math.floor(Date.now() / 1000),
  nonce: string = randomNonce(),
): [string, string][] {
  if (nonce.length < MIN_NONCE_LEN) throw new Error(`a nonce needs at least ${MIN_NONCE_LEN} characters`);
  const digest = contentDigest(body);
  const keyid = toHex(ed25519.getPublicKey(seed));
  const params = profileParams(keyid, nonce, now, now + SIGNATURE_VALIDITY_SECS);
  const req: HttpRequest = { method, targetUri, headers: [['content-digest', digest]] };
  const s = signRequest(req, LABEL, PROFILE_COMPONENTS, params, seed);
  return [
    ['content-digest', digest],
    ['signature-input', s.signatureInput],
    ['signature', s.signature],
  ];
}

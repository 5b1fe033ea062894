// The token request's signer (RFC 9421, the CLI's vault profile) against the vectors the Rust
// code is pinned to: crates/vault/src/httpsig.rs checks RFC 9421 B.2.6 (base, Signature-Input,
// Signature) and RFC 9530's Content-Digest example byte for byte; the same here. The profile's
// own base is written out by hand from RFC 9421 §2.5 and the Rust profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromBase64, fromHex, toBase64, toHex, utf8 } from '../src/bytes.ts';
import { componentValue, contentDigest, profileParams, PROFILE_COMPONENTS, signatureBase, signHeaders, signRequest, type HttpRequest, type SigParam } from '../src/httpsig.ts';

// RFC 9421 B.1.4 test-key-ed25519 (the seed is the JWK "d").
const RFC_SEED = fromHex('9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff66586f6a7d29c5');
const RFC_PUB = '26b40b8f93fff3d897112f7ebc582b232dbd72517d082fe83cfb30ddce43d1bb';

test('the RFC key: the public key is the JWK "x"', () => {
  assert.equal(toHex(ed25519.getPublicKey(RFC_SEED)), RFC_PUB);
});

test('RFC 9421 B.2.6: signature base, Signature-Input and Signature byte for byte (as the Rust test)', () => {
  const req: HttpRequest = {
    method: 'POST',
    targetUri: 'https://example.com/foo?param=Value&Pet=dog',
    headers: [
      ['Host', 'example.com'],
      ['Date', 'Tue, 20 Apr 2021 02:07:55 GMT'],
      ['Content-Type', 'application/json'],
      ['Content-Digest', 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:'],
      ['Content-Length', '18'],
    ],
  };
  const components = ['date', '@method', '@path', '@authority', 'content-type', 'content-length'];
  const params: SigParam[] = [
    ['created', 1618884473],
    ['keyid', 'test-key-ed25519'],
  ];
  assert.equal(
    signatureBase(req, components, params),
    '"date": Tue, 20 Apr 2021 02:07:55 GMT\n' +
      '"@method": POST\n' +
      '"@path": /foo\n' +
      '"@authority": example.com\n' +
      '"content-type": application/json\n' +
      '"content-length": 18\n' +
      '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
  );
  const s = signRequest(req, 'sig-b26', components, params, RFC_SEED);
  assert.equal(s.signatureInput, 'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"');
  assert.equal(s.signature, 'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:');
});

test('RFC 9530 Content-Digest, and the empty body a token request sends', () => {
  assert.equal(contentDigest(utf8('{"hello": "world"}')), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  assert.equal(contentDigest(new Uint8Array(0)), 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
});

test('derived components follow RFC 9421 §2.2 (as the Rust test)', () => {
  const req: HttpRequest = { method: 'GET', targetUri: 'HTTPS://Example.COM:443/a/b?x=1#frag', headers: [['X-Multi', ' a '], ['x-multi', 'b\t']] };
  assert.equal(componentValue(req, '@authority'), 'example.com');
  assert.equal(componentValue(req, '@scheme'), 'https');
  assert.equal(componentValue(req, '@path'), '/a/b');
  assert.equal(componentValue(req, '@query'), '?x=1');
  assert.equal(componentValue(req, 'x-multi'), 'a, b');
  const bare = { ...req, targetUri: 'http://example.com:8080' };
  assert.equal(componentValue(bare, '@authority'), 'example.com:8080');
  assert.equal(componentValue(bare, '@path'), '/');
  assert.equal(componentValue(bare, '@query'), '?');
  assert.throws(() => componentValue(req, '@request-response'));
  assert.throws(() => componentValue(req, 'X-Multi'));
  assert.throws(() => componentValue({ ...req, headers: [['x-evil', 'a\nb']] }, 'x-evil'));
});

// The token request of the profile at a fixed time and nonce, its base written out by hand from
// RFC 9421 §2.5 and crates/vault/src/httpsig.rs (SignatureParams::profile: created, expires,
// nonce, keyid, alg; components "@method" "@target-uri" "content-digest"; no trailing LF).
const URI = 'http://127.0.0.1:8080/auth/token';
const NONCE = '00112233445566778899aabbccddeeff';
const EMPTY_DIGEST = 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:';
const PARAMS = `("@method" "@target-uri" "content-digest");created=1700000000;expires=1700000060;nonce="${NONCE}";keyid="${RFC_PUB}";alg="ed25519"`;
const BASE = `"@method": POST\n"@target-uri": ${URI}\n"content-digest": ${EMPTY_DIGEST}\n"@signature-params": ${PARAMS}`;

test('the token request: the profile signature base, as built by hand', () => {
  const req: HttpRequest = { method: 'POST', targetUri: URI, headers: [['content-digest', EMPTY_DIGEST]] };
  assert.equal(signatureBase(req, PROFILE_COMPONENTS, profileParams(RFC_PUB, NONCE, 1700000000, 1700000060)), BASE);
});

test('signHeaders: content-digest, signature-input and an Ed25519 signature of that base under the keyid', () => {
  const h = signHeaders(RFC_SEED, 'POST', URI, new Uint8Array(0), 1700000000, NONCE);
  assert.deepEqual(
    h.map(([k]) => k),
    ['content-digest', 'signature-input', 'signature'],
  );
  assert.equal(h[0][1], EMPTY_DIGEST);
  assert.equal(h[1][1], `sig1=${PARAMS}`);
  // Ed25519 is deterministic (RFC 8032): the one signature of these bytes under this key.
  assert.equal(h[2][1], `sig1=:${toBase64(ed25519.sign(utf8(BASE), RFC_SEED))}:`);
  assert.ok(ed25519.verify(fromBase64(h[2][1].slice(6, -1)), utf8(BASE), fromHex(RFC_PUB)));
});

test('signHeaders draws a fresh nonce of 32 hex characters and expires 60 s after created', () => {
  const a = signHeaders(RFC_SEED, 'POST', 'http://gw/auth/token', new Uint8Array(0), 100);
  const b = signHeaders(RFC_SEED, 'POST', 'http://gw/auth/token', new Uint8Array(0), 100);
  const nonce = (h: [string, string][]) => /;nonce="([0-9a-f]+)"/.exec(h[1][1])?.[1];
  assert.equal(nonce(a)?.length, 32);
  assert.notEqual(nonce(a), nonce(b));
  assert.match(a[1][1], /^sig1=\("@method" "@target-uri" "content-digest"\);created=100;expires=160;nonce="[0-9a-f]{32}";keyid="[0-9a-f]{64}";alg="ed25519"$/);
  assert.throws(() => signHeaders(RFC_SEED, 'POST', 'http://gw/auth/token', new Uint8Array(0), 100, 'short'));
});

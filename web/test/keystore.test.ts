// The key remembered on this device (src/keystore.ts): sealed with PBKDF2-SHA-256 (600,000
// iterations) and AES-GCM, never stored in clear; the right passphrase opens it, a wrong one is
// said to be wrong, and a tampered or downgraded record does not open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toHex } from '../src/bytes.ts';
import { memoryStore, MIN_PASSPHRASE, openKey, passphraseProblem, PBKDF2_ITERATIONS, sealKey, WrongPassphrase } from '../src/keystore.ts';
import { newKey } from '../src/tx.ts';

const PASS = 'correct horse battery';

test('a sealed key opens with its passphrase and holds no secret in clear', async () => {
  const k = newKey('alice');
  const s = await sealKey(k, PASS);
  assert.equal(s.iterations, PBKDF2_ITERATIONS);
  assert.ok(PBKDF2_ITERATIONS >= 600_000);
  assert.equal(s.publicKey, toHex(k.publicKey));
  const stored = JSON.stringify(s);
  assert.ok(!stored.includes(toHex(k.seed)), 'the secret key is not stored in clear');
  assert.ok(!stored.includes('secret_key'), 'nor the key file');
  const store = memoryStore();
  await store.put(s);
  const back = await openKey((await store.get())!, PASS);
  assert.deepEqual(back.seed, k.seed);
  assert.deepEqual(back.publicKey, k.publicKey);
  assert.equal(back.name, 'alice');
  await store.remove();
  assert.equal(await store.get(), undefined);
});

test('two seals of one key differ (fresh salt and IV)', async () => {
  const k = newKey();
  const [a, b] = [await sealKey(k, PASS), await sealKey(k, PASS)];
  assert.notEqual(a.salt, b.salt);
  assert.notEqual(a.iv, b.iv);
  assert.notEqual(a.ciphertext, b.ciphertext);
});

test('a wrong passphrase is said to be wrong', async () => {
  const s = await sealKey(newKey(), PASS);
  await assert.rejects(openKey(s, 'correct horse battery!'), WrongPassphrase);
  await assert.rejects(openKey(s, ''), /wrong passphrase/);
});

test('a tampered, re-labelled or downgraded record does not open', async () => {
  const k = newKey();
  const s = await sealKey(k, PASS);
  const flip = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1);
  await assert.rejects(openKey({ ...s, ciphertext: flip(s.ciphertext) }, PASS), WrongPassphrase);
  await assert.rejects(openKey({ ...s, publicKey: toHex(newKey().publicKey) }, PASS), WrongPassphrase, 'the public key is bound as additional data');
  await assert.rejects(openKey({ ...s, iterations: 1000 }, PASS), /not in a form this page opens/);
});

test('short or mistyped passphrases are refused before sealing', async () => {
  assert.match(passphraseProblem('x'.repeat(MIN_PASSPHRASE - 1))!, /at least 8/);
  assert.equal(passphraseProblem('x'.repeat(MIN_PASSPHRASE)), undefined);
  assert.match(passphraseProblem(PASS, PASS + '.')!, /differ/);
  await assert.rejects(sealKey(newKey(), 'short'), /at least 8/);
});

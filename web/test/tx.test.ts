// Transactions: the browser builds byte for byte the transactions the Rust CLI signed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromBase64, toHex } from '../src/bytes.ts';
import { decode } from '../src/proto.ts';
import { encodeTxBody, type TxMsg } from '../src/messages.ts';
import { parseKeyFile, signTx, signingBytes, newKey, keyFileJson } from '../src/tx.ts';
import type { Schema } from '../src/proto.ts';

const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
const alice = parseKeyFile(readFileSync(new URL('./vectors/alice.key.json', import.meta.url), 'utf8'));

const TxS: Schema = { name: 'Tx', fields: { 1: { name: 'body', type: 'bytes' }, 2: { name: 'public_key', type: 'bytes' }, 3: { name: 'signature', type: 'bytes' } } };
const GrantS: Schema = {
  name: 'GrantConsent',
  fields: {
    1: { name: 'grantee', type: 'string' },
    2: { name: 'data_classes', type: 'string', repeated: true },
    3: { name: 'purposes', type: { enum: { 1: 'TREAT', 2: 'ETREAT', 3: 'HPAYMT', 4: 'HOPERAT', 5: 'HRESCH' } }, repeated: true },
  },
};
const BodyS: Schema = {
  name: 'TxBody',
  fields: {
    1: { name: 'chain_id', type: 'string' },
    2: { name: 'sequence', type: 'uint64' },
    11: { name: 'grant_consent', type: { message: GrantS } },
    12: { name: 'revoke_consent', type: { message: { name: 'RevokeConsent', fields: { 1: { name: 'consent_id', type: 'string' } } } } },
  },
};

test('the CLI\'s transactions are rebuilt byte for byte (body, signature, envelope)', () => {
  assert.ok(V.txs.length >= 2);
  for (const h of V.txs) {
    const raw = fromBase64(V.answers[`tx?hash=0x${h}`].result.tx);
    const tx = decode(TxS, raw) as any;
    const body = decode(BodyS, tx.body) as any;
    let msg: TxMsg;
    if (body.grant_consent) msg = { grant_consent: { grantee: body.grant_consent.grantee, data_classes: body.grant_consent.data_classes, purposes: body.grant_consent.purposes } };
    else msg = { revoke_consent: { consent_id: body.revoke_consent.consent_id } };
    assert.equal(toHex(encodeTxBody(body.chain_id, body.sequence, msg)), toHex(tx.body));
    const signed = signTx(alice, body.chain_id, body.sequence, msg);
    assert.equal(toHex(signed.bytes), toHex(raw));
    assert.equal(signed.hash, h.toUpperCase());
  }
});

test('signing bytes: namespace, 0x00, chain id length, chain id, body', () => {
  assert.equal(toHex(signingBytes('ab', Uint8Array.of(7))), toHex(new TextEncoder().encode('medledger/tx/v1\x00\x02ab\x07')));
});

test('a grant with several classes and purposes packs the purposes', () => {
  const b = encodeTxBody('c', 3n, { grant_consent: { grantee: 'lab-b', data_classes: ['Observation', 'DiagnosticReport'], purposes: ['TREAT', 'HOPERAT'] } });
  const d = decode(BodyS, b) as any;
  assert.equal(d.sequence, 3n);
  assert.deepEqual(d.grant_consent.purposes, ['TREAT', 'HOPERAT']);
  assert.ok(toHex(b).includes('1a020104'), 'purposes are packed: tag 0x1a, length 2, 1, 4');
});

test('key files: parse, reject a mismatched public key, round-trip a new key', () => {
  const k = newKey('bob');
  const back = parseKeyFile(keyFileJson(k));
  assert.equal(toHex(back.publicKey), toHex(k.publicKey));
  const j = JSON.parse(keyFileJson(k));
  j.public_key = toHex(alice.publicKey);
  assert.throws(() => parseKeyFile(JSON.stringify(j)), /not the public key/);
  assert.throws(() => parseKeyFile('{}'));
});

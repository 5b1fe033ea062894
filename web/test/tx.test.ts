// Transactions: the browser builds byte for byte the transactions the Rust CLI signed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fromBinary } from '@bufbuild/protobuf';
import { fromBase64, toHex } from '../src/bytes.ts';
import { TxBodySchema, TxSchema } from '../src/gen/medledger/v1/tx_pb.ts';
import { encodeTxBody, grantConsent, Purpose, revokeConsent, type TxMsg } from '../src/messages.ts';
import { parseKeyFile, signTx, signingBytes, newKey, keyFileJson } from '../src/tx.ts';

const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
const alice = parseKeyFile(readFileSync(new URL('./vectors/alice.key.json', import.meta.url), 'utf8'));

test('the CLI\'s transactions are rebuilt byte for byte (body, signature, envelope)', () => {
  assert.ok(V.txs.length >= 2);
  const kinds = new Set<string>();
  for (const h of V.txs) {
    const raw = fromBase64(V.answers[`tx?hash=0x${h}`].result.tx);
    const tx = fromBinary(TxSchema, raw);
    const body = fromBinary(TxBodySchema, tx.body);
    assert.equal(body.$unknown, undefined, 'the generated schema knows every field prost wrote');
    // The message is rebuilt from its fields, as the page builds it, not passed through.
    let msg: TxMsg;
    if (body.msg.case === 'grantConsent') {
      const g = body.msg.value;
      msg = grantConsent({ grantee: g.grantee, dataClasses: [...g.dataClasses], purposes: [...g.purposes] });
    } else if (body.msg.case === 'revokeConsent') msg = revokeConsent(body.msg.value.consentId);
    else throw new Error(`unexpected captured tx ${body.msg.case}`);
    kinds.add(body.msg.case);
    assert.equal(toHex(encodeTxBody(body.chainId, body.sequence, msg)), toHex(tx.body));
    const signed = signTx(alice, body.chainId, body.sequence, msg);
    assert.equal(toHex(signed.bytes), toHex(raw));
    assert.equal(signed.hash, h.toUpperCase());
  }
  assert.deepEqual([...kinds].sort(), ['grantConsent', 'revokeConsent']);
});

test('signing bytes: namespace, 0x00, chain id length, chain id, body', () => {
  assert.equal(toHex(signingBytes('ab', Uint8Array.of(7))), toHex(new TextEncoder().encode('medledger/tx/v1\x00\x02ab\x07')));
});

test('a grant with several classes and purposes packs the purposes', () => {
  const b = encodeTxBody('c', 3n, grantConsent({ grantee: 'lab-b', dataClasses: ['Observation', 'DiagnosticReport'], purposes: [Purpose.TREAT, Purpose.HOPERAT] }));
  const d = fromBinary(TxBodySchema, b);
  assert.equal(d.sequence, 3n);
  const m = d.msg;
  assert.ok(m.case === 'grantConsent');
  assert.deepEqual(m.value.purposes, [Purpose.TREAT, Purpose.HOPERAT]);
  assert.ok(toHex(b).includes('1a020104'), 'purposes are packed: tag 0x1a, length 2, 1, 4');
});

test('canonical bytes, written out: fields in number order, defaults left out, an empty message still sent', () => {
  // TxBody{chain_id "c" (1), sequence 0 (2: omitted), revoke_consent (12) {consent_id "" (omitted)}}.
  assert.equal(toHex(encodeTxBody('c', 0n, revokeConsent(''))), '0a0163' + '6200');
  // TxBody{chain_id "c", sequence 300, grant_consent (11) {grantee "g" (1), data_classes ["*"] (2), purposes [ETREAT] (3)}}.
  const grant = '0a0167' + '12012a' + '1a0102';
  assert.equal(toHex(encodeTxBody('c', 300n, grantConsent({ grantee: 'g', dataClasses: ['*'], purposes: [Purpose.ETREAT] }))), '0a0163' + '10ac02' + '5a' + '09' + grant);
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

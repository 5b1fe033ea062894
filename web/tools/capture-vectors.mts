// Captures a replayable set of CometBFT RPC answers from a running node, for the tests:
//   npx tsx tools/capture-vectors.mts http://127.0.0.1:36657 PATIENT_ID PUBKEY_HEX OUT.json [TXHASH...]
// It runs the verifying client itself with a recording transport, so the test replays exactly
// the requests the pages make.
import { writeFileSync } from 'node:fs';
import { Ledger, httpTransport } from '../src/ledger.ts';
import * as keys from '../src/keys.ts';
import { decodeConsent } from '../src/messages.ts';
import { fromUtf8 } from '../src/bytes.ts';

const [node, patient, pubkey, out, ...txs] = process.argv.slice(2);
if (!out) throw new Error('usage: capture-vectors.mts NODE PATIENT PUBKEY OUT.json [TXHASH...]');
const inner = httpTransport(node.endsWith('/') ? node : `${node}/`);
const answers: Record<string, unknown> = {};
const L = new Ledger(async (method, query) => {
  const body = await inner(method, query);
  answers[`${method}?${query}`] = body;
  return body;
});
await L.loadTrust();
const at = await L.attest();
await L.read(at, keys.keyOwner(pubkey));
await L.read(at, keys.sequence(pubkey));
await L.read(at, keys.patient(patient));
const cs = await L.readList(at, keys.patientConsentCount(patient), (n) => keys.patientConsent(patient, n));
for (const c of cs.items) {
  const r = await L.read(at, keys.consent(fromUtf8(c.value!)));
  const consent = decodeConsent(r.value!);
  await L.read(at, keys.member(consent.grantee));
}
await L.readList(at, keys.accessCount(patient), (n) => keys.accessEvent(patient, n));
await L.read(at, keys.consent('c-99'));
await L.read(at, keys.record('obs-7'));
await L.read(at, keys.record('no-such-record'));
await L.read(at, keys.validators());
for (const h of txs) answers[`tx?hash=0x${h}`] = await inner('tx', `hash=0x${h}`);
const vectors = {
  captured_from: 'medledger localnet (4 validators), `medledger localnet up`; see tools/capture-vectors.mts',
  chain_id: L.chainId,
  patient_id: patient,
  public_key: pubkey,
  cert_height: at.height.toString(),
  txs,
  answers,
};
writeFileSync(out, JSON.stringify(vectors, null, 1) + '\n');
console.log(`wrote ${Object.keys(answers).length} answers at certified height ${at.height} to ${out}`);

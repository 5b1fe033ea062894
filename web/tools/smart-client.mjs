// A SMART Backend Services client as an EHR backend runs one, for tests/smart.rs: Node's own
// crypto makes the keys and signs the client assertions (ES384, RS384), and fhir-kit-client (an
// off-the-shelf FHIR client) reads the gateway with the token. Each command prints one JSON
// value on stdout.
//
//   node tools/smart-client.mjs keygen ES384|RS384 KID PRIVATE_JWK_FILE
//       writes the private JWK (mode 0600) and prints the public JWK
//   node tools/smart-client.mjs assertion PRIVATE_JWK_FILE CLIENT_ID AUD [EXP_IN_SECS] [JTI]
//       prints {"assertion": JWT} signed with the key's alg (RFC 7523 claims; exp default +240 s)
//   node tools/smart-client.mjs fhir BASE_URL TOKEN PATIENT_ID
//       with fhir-kit-client: the CapabilityStatement, Consent?patient=…&_count=1 and its next
//       page, and a read of the first consent; prints what each answered
import { generateKeyPairSync, createPrivateKey, sign, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Client } from 'fhir-kit-client';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function keygen(alg, kid, file) {
  const { privateKey } =
    alg === 'ES384'
      ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
      : alg === 'RS384'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : fail(`alg ${alg}: ES384 or RS384`);
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg };
  writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  const { d, p, q, dp, dq, qi, ...pub } = jwk;
  return pub;
}

function assertion(file, clientId, aud, expIn = '240', jti = randomUUID()) {
  const jwk = JSON.parse(readFileSync(file, 'utf8'));
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const header = { alg: jwk.alg, kid: jwk.kid, typ: 'JWT' };
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: clientId, sub: clientId, aud, exp: now + Number(expIn), jti };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS ES384 is the raw r || s (IEEE P1363), not DER.
  const sig =
    jwk.alg === 'ES384'
      ? sign('sha384', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
      : sign('sha384', Buffer.from(input), key);
  return { assertion: `${input}.${b64url(sig)}` };
}

async function fhir(base, token, patient) {
  const client = new Client({ baseUrl: `${base}/fhir`, bearerToken: token });
  const cap = await client.capabilityStatement();
  const first = await client.search({
    resourceType: 'Consent',
    searchParams: { patient: `Patient/${patient}`, _count: 1 },
  });
  const next = await client.nextPage({ bundle: first });
  const id = first.entry?.find((e) => e.search?.mode === 'match')?.resource?.id;
  const read = await client.read({ resourceType: 'Consent', id });
  const matches = (b) =>
    (b?.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource.id);
  return {
    capability: {
      resourceType: cap.resourceType,
      fhirVersion: cap.fhirVersion,
      security: cap.rest?.[0]?.security?.service?.[0]?.coding?.[0]?.code ?? null,
    },
    first: { total: first.total, ids: matches(first) },
    next: next ? { ids: matches(next) } : null,
    read: { resourceType: read.resourceType, id: read.id },
  };
}

function fail(msg) {
  console.error(msg);
  process.exit(2);
}

const [cmd, ...args] = process.argv.slice(2);
try {
  const out =
    cmd === 'keygen'
      ? keygen(...args)
      : cmd === 'assertion'
        ? assertion(...args)
        : cmd === 'fhir'
          ? await fhir(...args)
          : fail('usage: keygen | assertion | fhir (see the header of this file)');
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(`smart-client ${cmd}: ${e?.stack ?? e}`);
  if (e?.response) console.error(JSON.stringify(e.response.data ?? e.response));
  process.exit(1);
}

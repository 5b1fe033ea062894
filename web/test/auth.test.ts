// The pages' session with the gateway: the signed token request, the bearer token on reads, one
// new token on a 401, Retry-After on a 429, and a 403 kept apart from verification failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromBase64, toHex, utf8 } from '../src/bytes.ts';
import { DeniedError, HttpError, Session } from '../src/auth.ts';
import { httpTransport, Ledger } from '../src/ledger.ts';
import { parseKeyFile } from '../src/tx.ts';
import * as keys from '../src/keys.ts';

const alice = parseKeyFile(readFileSync(new URL('./vectors/alice.key.json', import.meta.url), 'utf8'));
const GW = 'https://gw.example';

interface Seen {
  url: string;
  method: string;
  headers: Headers;
}

/** A scripted gateway: `answer` sees each request (with its number) and returns a Response. */
function gateway(answer: (r: Seen, n: number) => Response) {
  const seen: Seen[] = [];
  const fetchFn = (async (url: string, init: RequestInit = {}) => {
    const r = { url: String(url), method: init.method ?? 'GET', headers: new Headers(init.headers) };
    seen.push(r);
    return answer(r, seen.length - 1);
  }) as typeof fetch;
  return { seen, fetchFn };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });

const tokenAnswer = (t: string) => json(200, { access_token: t, token_type: 'Bearer', expires_in: 900, subject: { kind: 'patient', id: 'pt-1' } });

function clock() {
  let t = 1_700_000_000_000;
  return { now: () => t, sleep: async (ms: number) => void (t += ms), advance: (ms: number) => (t += ms) };
}

test('the token request is POST /auth/token, signed over the gateway URL with the key, empty body', async () => {
  const g = gateway(() => tokenAnswer('ab'.repeat(32)));
  const s = new Session({ gateway: `${GW}/`, fetchFn: g.fetchFn, ...clock() });
  s.setKey(alice);
  const who = await s.login();
  assert.deepEqual(who, { kind: 'patient', id: 'pt-1' });
  const r = g.seen[0];
  assert.equal(r.url, '/auth/token');
  assert.equal(r.method, 'POST');
  assert.equal(r.headers.get('content-digest'), 'sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
  const input = r.headers.get('signature-input')!;
  assert.match(input, new RegExp(`^sig1=\\("@method" "@target-uri" "content-digest"\\);created=1700000000;expires=1700000060;nonce="[0-9a-f]{32}";keyid="${toHex(alice.publicKey)}";alg="ed25519"$`));
  const base = `"@method": POST\n"@target-uri": ${GW}/auth/token\n"content-digest": ${r.headers.get('content-digest')}\n"@signature-params": ${input.slice('sig1='.length)}`;
  const sig = fromBase64(r.headers.get('signature')!.replace(/^sig1=:|:$/g, ''));
  assert.ok(ed25519.verify(sig, utf8(base), alice.publicKey), 'the signature verifies over the RFC 9421 base');
});

test('reads carry the bearer token; the token is fetched once and reused', async () => {
  const g = gateway((r) => (r.url === '/auth/token' ? tokenAnswer('cd'.repeat(32)) : json(200, { ok: true })));
  const s = new Session({ gateway: GW, fetchFn: g.fetchFn, ...clock() });
  s.setKey(alice);
  await Promise.all([s.fetch('/rpc/abci_query?x'), s.fetch('/rpc/abci_query?y')]);
  assert.equal(g.seen.filter((r) => r.url === '/auth/token').length, 1);
  for (const r of g.seen.filter((r) => r.url !== '/auth/token')) assert.equal(r.headers.get('authorization'), `Bearer ${'cd'.repeat(32)}`);
  // Open methods and signed broadcasts go without it.
  await s.fetch('/rpc/genesis', {}, false);
  assert.equal(g.seen.at(-1)!.headers.get('authorization'), null);
});

test('a 401 on a read gets one new token and one retry, no more', async () => {
  let tokens = 0;
  const g = gateway((r) => {
    if (r.url === '/auth/token') return tokenAnswer(String(++tokens).repeat(64));
    return r.headers.get('authorization') === `Bearer ${'2'.repeat(64)}` ? json(200, { ok: true }) : json(401, { error: 'token expired' });
  });
  const s = new Session({ gateway: GW, fetchFn: g.fetchFn, ...clock() });
  s.setKey(alice);
  assert.equal((await s.fetch('/rpc/abci_query?x')).status, 200);
  assert.equal(tokens, 2);
  // A gateway that refuses every token: one renewal, then the 401 is the answer.
  const g2 = gateway((r) => (r.url === '/auth/token' ? tokenAnswer('ee'.repeat(32)) : json(401, { error: 'no' })));
  const s2 = new Session({ gateway: GW, fetchFn: g2.fetchFn, ...clock() });
  s2.setKey(alice);
  assert.equal((await s2.fetch('/rpc/abci_query?x')).status, 401);
  assert.equal(g2.seen.filter((r) => r.url === '/auth/token').length, 2);
});

test('a token is renewed before it expires', async () => {
  const c = clock();
  const g = gateway((r) => (r.url === '/auth/token' ? tokenAnswer('aa'.repeat(32)) : json(200, {})));
  const s = new Session({ gateway: GW, fetchFn: g.fetchFn, ...c });
  s.setKey(alice);
  await s.fetch('/rpc/abci_query?x');
  c.advance(899_000);
  await s.fetch('/rpc/abci_query?x');
  assert.equal(g.seen.filter((r) => r.url === '/auth/token').length, 2);
});

test('429: Retry-After is waited out (bounded); a 403 on sign-in says the key has no role', async () => {
  const c = clock();
  const start = c.now();
  const g = gateway((r, n) => (n === 0 ? json(429, { error: 'slow down' }, { 'retry-after': '3' }) : tokenAnswer('bb'.repeat(32))));
  const s = new Session({ gateway: GW, fetchFn: g.fetchFn, ...c });
  s.setKey(alice);
  await s.login();
  assert.equal(c.now() - start, 3000, 'waited the Retry-After');
  const g2 = gateway(() => json(429, { error: 'slow down' }, { 'retry-after': '3600' }));
  const s2 = new Session({ gateway: GW, fetchFn: g2.fetchFn, ...clock() });
  s2.setKey(alice);
  await assert.rejects(s2.login(), (e) => e instanceof HttpError && e.status === 429 && e.retryAfterSecs === 3600);
  const g3 = gateway(() => json(403, { error: 'unknown key' }));
  const s3 = new Session({ gateway: GW, fetchFn: g3.fetchFn, ...clock() });
  s3.setKey(alice);
  await assert.rejects(s3.login(), (e) => e instanceof HttpError && e.status === 403 && /no role/.test(e.message));
});

test('a 403 on abci_query is a DeniedError and a denied read, never a failed verification', async () => {
  const V = JSON.parse(readFileSync(new URL('./vectors/localnet.json', import.meta.url), 'utf8'));
  const other = keys.accessCount('pt-someone-else');
  const fetchFn = async (url: string) => {
    const q = url.slice('/rpc/'.length);
    if (q.includes(toHex(utf8(other)))) return json(403, { error: 'patient pt-2684… may not read access/pt-someone-else/count' });
    const a = V.answers[q.includes('?') ? q : `${q}?`];
    return a === undefined ? json(404, { error: 'no such answer' }) : json(200, a);
  };
  const L = new Ledger(httpTransport('/rpc/', fetchFn));
  await assert.rejects(L.query(other, 0), (e) => e instanceof DeniedError && /HTTP 403, not permitted/.test(e.message));
  const at = await L.attest();
  const r = await L.read(at, other);
  assert.equal(r.verified, false);
  assert.equal(r.denied, true);
  const ok = await L.read(at, keys.accessCount(V.patient_id));
  assert.ok(ok.verified && !ok.denied, ok.error);
});

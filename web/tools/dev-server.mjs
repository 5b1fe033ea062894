// A development stand-in for the member gateway: serves web/dist like the gateway does, answers
// POST /auth/token for any key whose RFC 9421 signature verifies (it checks no role on the ledger,
// unlike the real gateway), and passes /rpc/{method} through to a CometBFT node, abci_query only
// with a token it issued. For page development only: it enforces no read permissions.
//   node tools/dev-server.mjs --node http://127.0.0.1:36657 [--port 8088] [--member hospital-a]
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { ed25519 } from '@noble/curves/ed25519.js';
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const node = arg('node', 'http://127.0.0.1:26657').replace(/\/$/, '');
const port = Number(arg('port', '8088'));
const member = arg('member', 'hospital-a');
const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const METHODS = new Set(['abci_query', 'genesis', 'status', 'broadcast_tx_sync', 'broadcast_tx_commit']);
const OPEN = new Set(['genesis', 'status', 'broadcast_tx_sync', 'broadcast_tx_commit']);
const publicUrl = `http://127.0.0.1:${port}`;
/** Tokens issued: token → expiry (ms). */
const tokens = new Map();

/** Checks the profile signature of `POST /auth/token` (empty body); the keyid, or throws. */
function verifyTokenRequest(req) {
  const digest = `sha-256=:${createHash('sha256').update(Buffer.alloc(0)).digest('base64')}:`;
  if (req.headers['content-digest'] !== digest) throw new Error('content-digest is not that of an empty body');
  const input = /^sig1=(\("@method" "@target-uri" "content-digest"\);created=(\d+);expires=(\d+);nonce="[!-~]{16,128}";keyid="([0-9a-f]{64})";alg="ed25519")$/.exec(String(req.headers['signature-input'] ?? ''));
  const sig = /^sig1=:([A-Za-z0-9+/=]+):$/.exec(String(req.headers['signature'] ?? ''));
  if (!input || !sig) throw new Error('no sig1 signature of the profile');
  const now = Math.floor(Date.now() / 1000);
  const [created, expires] = [Number(input[2]), Number(input[3])];
  if (created > now + 60 || now >= expires || expires - created > 300) throw new Error('signature outside its validity');
  const base = `"@method": POST\n"@target-uri": ${publicUrl}/auth/token\n"content-digest": ${digest}\n"@signature-params": ${input[1]}`;
  if (!ed25519.verify(Buffer.from(sig[1], 'base64'), Buffer.from(base), Buffer.from(input[4], 'hex'))) throw new Error('bad signature');
  return input[4];
}
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

const genesis = await (await fetch(`${node}/genesis`)).json();
const chainId = genesis.result.genesis.chain_id;

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  try {
    if (url.pathname === '/api/info') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ chain_id: chainId, member_id: member, gateway: publicUrl }));
      return;
    }
    if (url.pathname === '/auth/token' && req.method === 'POST') {
      let keyid;
      try {
        keyid = verifyTokenRequest(req);
      } catch (e) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: String(e.message) }));
        return;
      }
      const token = randomBytes(32).toString('hex');
      tokens.set(token, Date.now() + 900_000);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 900, subject: { kind: 'unchecked', id: keyid } }));
      return;
    }
    const rpc = url.pathname.match(/^\/rpc\/([a-z_]+)$/);
    if (rpc && METHODS.has(rpc[1])) {
      const bearer = /^Bearer ([0-9a-f]{64})$/.exec(String(req.headers.authorization ?? ''))?.[1];
      if (!OPEN.has(rpc[1]) && !(bearer && (tokens.get(bearer) ?? 0) > Date.now())) {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'a bearer token is required (POST /auth/token)' }));
        return;
      }
      const r = await fetch(`${node}/${rpc[1]}${url.search}`);
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(Buffer.from(await r.arrayBuffer()));
      return;
    }
    const page = { '/patient': 'patient.html', '/auditor': 'auditor.html' }[url.pathname];
    const file = page ? join(dist, page) : url.pathname.match(/^\/assets\/[a-z]+\.(js|css)$/) ? join(dist, url.pathname) : undefined;
    if (file && existsSync(file)) {
      res.writeHead(200, { 'content-type': TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(readFileSync(file));
      return;
    }
    res.writeHead(404).end('not found');
  } catch (e) {
    res.writeHead(502).end(String(e));
  }
}).listen(port, '127.0.0.1', () => console.log(`dev gateway on http://127.0.0.1:${port}/patient (node ${node})`));

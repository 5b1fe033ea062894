// A development stand-in for the member gateway: serves web/dist like the gateway will and passes
// /rpc/{method} through to a CometBFT node unchanged.
//   node tools/dev-server.mjs --node http://127.0.0.1:36657 [--port 8088] [--member hospital-a]
import { createServer } from 'node:http';
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
const METHODS = new Set(['abci_query', 'genesis', 'status', 'broadcast_tx_sync', 'broadcast_tx_commit', 'tx']);
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

const genesis = await (await fetch(`${node}/genesis`)).json();
const chainId = genesis.result.genesis.chain_id;

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  try {
    if (url.pathname === '/api/info') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ chain_id: chainId, member_id: member, rpc_websocket: `${node.replace(/^http/, 'ws')}/websocket`, gateway: `http://127.0.0.1:${port}` }));
      return;
    }
    const rpc = url.pathname.match(/^\/rpc\/([a-z_]+)$/);
    if (rpc && METHODS.has(rpc[1])) {
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

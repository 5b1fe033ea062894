// Live updates poll the certified height (no WebSocket): one re-read per advance, none for the
// same or a lower height, failures reported as "offline" and polling goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseSse, poll, stream } from '../src/ui/live.ts';

test('each advance of the certified height is reported once; errors flip the state, polling goes on with backoff', async () => {
  const heights: (bigint | Error)[] = [10n, 10n, 12n, new Error('gateway down'), new Error('gateway down'), 12n, 11n, 15n];
  const advances: bigint[] = [];
  const states: boolean[] = [];
  let stop = () => {};
  const sleeps: number[] = [];
  await new Promise<void>((done) => {
    stop = poll({
      from: 10n,
      latest: async () => {
        const h = heights.shift();
        if (h === undefined) {
          stop();
          done();
          return 0n;
        }
        if (h instanceof Error) throw h;
        return h;
      },
      onAdvance: (h) => void advances.push(h),
      onState: (live) => void states.push(live),
      sleep: async (ms) => void sleeps.push(ms),
    });
  });
  assert.deepEqual(advances, [12n, 15n]);
  assert.deepEqual(states, [true, true, true, false, false, true, true, true]);
  assert.deepEqual(sleeps, [2000, 2000, 2000, 4000, 8000, 2000, 2000, 2000]);
});

test('the pages open no WebSocket; the auditor connects only to its gateway, the patient page also to the holders of its records', () => {
  for (const f of ['../src/ui/live.ts', '../src/ui/patient.ts', '../src/ui/common.ts', '../src/ui/mydata.ts']) {
    assert.doesNotMatch(readFileSync(new URL(f, import.meta.url), 'utf8'), /new WebSocket|rpc_websocket/);
  }
  const csp = (f: string) => /Content-Security-Policy" content="([^"]+)"/.exec(readFileSync(new URL(f, import.meta.url), 'utf8'))?.[1] ?? '';
  assert.match(csp('../pages/auditor.html'), /connect-src 'self';/);
  // "My data" asks the other gateways that keep a record (their addresses proven on the ledger)
  // for their share of its key: the patient page may connect to http(s) origins, nothing else.
  assert.match(csp('../pages/patient.html'), /connect-src 'self' https: http:;/);
  for (const f of ['../pages/patient.html', '../pages/auditor.html']) assert.doesNotMatch(csp(f), /ws:|wss:|\*/);
});

test('server-sent events are parsed whole, comments skipped, the unfinished rest kept', () => {
  const { events, rest } = parseSse('event: ready\ndata: {"patient":"pt-1"}\n\n: keep-alive\n\nevent: change\r\ndata: {"height":7}\r\n\nevent: chan');
  assert.deepEqual(events, [
    { event: 'ready', data: '{"patient":"pt-1"}' },
    { event: 'change', data: '{"height":7}' },
  ]);
  assert.equal(rest, 'event: chan');
});

test('the stream re-reads on connect and on each change, and reconnects when closed', async () => {
  const bodies = [
    ['event: ready\ndata: {}\n\n', 'event: change\ndata: {"height":12}\n', '\n'],
    ['event: ready\ndata: {}\n\nevent: change\ndata: {"height":0}\n\n'],
  ];
  const changes: bigint[] = [];
  const states: boolean[] = [];
  let opened = 0;
  let stop = () => {};
  await new Promise<void>((done) => {
    stop = stream({
      open: async () => {
        const chunks = bodies[opened++];
        if (!chunks) {
          stop();
          done();
          return new Response('', { status: 503 });
        }
        const enc = new TextEncoder();
        return new Response(new ReadableStream({ start(c) { chunks.forEach((t) => c.enqueue(enc.encode(t))); c.close(); } }));
      },
      onChange: (h) => void changes.push(h),
      onState: (up) => void states.push(up),
      sleep: async () => {},
    });
  });
  assert.deepEqual(changes, [0n, 12n, 0n, 0n]);
  assert.deepEqual(states, [true, false, true, false]);
});

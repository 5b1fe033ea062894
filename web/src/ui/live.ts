// Live updates. The gateway's authenticated per-patient stream (`GET /live?patient=P`,
// Server-Sent Events read with fetch, so the bearer token travels in a header) says when a block
// touched the patient; the page then re-reads what it shows, verified. The stream is only a hint
// of when to look: a slow poll of the certified height goes on beside it (a fast one while the
// stream is down), so a gateway that hides events only delays what the page shows. The node's
// event WebSocket is not used: it carried every tx's events for every patient to anyone.

import { backoffMs } from './truth.ts';

export const POLL_EVERY_MS = 2000;
/** The poll's period while the stream is up. */
export const SLOW_POLL_EVERY_MS = 30_000;

export interface PollOptions {
  /** The latest certified height (an unproven pointer; the page attests what it reads). */
  latest: () => Promise<bigint>;
  /** The certified height advanced to `height` (called once per advance, never concurrently). */
  onAdvance: (height: bigint) => Promise<void> | void;
  /** The last poll answered (true) or failed (false, with why). */
  onState: (live: boolean, error?: unknown) => void;
  /** The period (read before each wait, so it may change while polling). */
  everyMs?: number | (() => number);
  /** The height already shown (0: none); only a higher one is an advance. */
  from?: bigint;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Polls until the returned function is called. One poll at a time; no overlap. After a failure
 * the next poll waits longer (doubling up to 30 s, {@link backoffMs}); an answer resets it.
 */
export function poll(o: PollOptions): () => void {
  let stopped = false;
  let seen = o.from ?? 0n;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const every = () => (typeof o.everyMs === 'function' ? o.everyMs() : o.everyMs ?? POLL_EVERY_MS);
  let failures = 0;
  void (async () => {
    while (!stopped) {
      try {
        const h = await o.latest();
        if (stopped) return;
        failures = 0;
        o.onState(true);
        if (h > seen) {
          seen = h;
          await o.onAdvance(h);
        }
      } catch (e) {
        if (stopped) return;
        failures++;
        o.onState(false, e);
      }
      await sleep(backoffMs(failures, every()));
    }
  })();
  return () => {
    stopped = true;
  };
}

/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * The complete events at the start of `buf` (text/event-stream: fields `event:` and `data:`,
 * events ended by a blank line, `:` comments ignored) and the unfinished rest.
 */
export function parseSse(buf: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  const text = buf.replace(/\r\n?/g, '\n');
  let start = 0;
  for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n', start)) {
    let event = 'message';
    const data: string[] = [];
    for (const line of text.slice(start, end).split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length > 0 || event !== 'message') events.push({ event, data: data.join('\n') });
    start = end + 2;
  }
  return { events, rest: text.slice(start) };
}

export interface StreamOptions {
  /** Opens the stream (an authenticated `GET /live?patient=P`). */
  open: () => Promise<Response>;
  /** A block at `height` touched the patient (0: events may have been missed; re-read all). */
  onChange: (height: bigint) => Promise<void> | void;
  /** The stream is up (true) or down (false, with why). */
  onState: (up: boolean, error?: unknown) => void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Keeps the stream open until the returned function is called: reconnects with backoff after a
 * failure or when the gateway closes it, and asks for a full re-read on each (re)connection,
 * since changes may have been missed meanwhile.
 */
export function stream(o: StreamOptions): () => void {
  let stopped = false;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let failures = 0;
  void (async () => {
    while (!stopped) {
      try {
        const res = await o.open();
        if (!res.ok || !res.body) throw new Error(`live stream: HTTP ${res.status}`);
        reader = res.body.getReader();
        const decoder = new TextDecoder();
        let buf = '';
        for (;;) {
          const { done, value } = await reader.read();
          if (done || stopped) break;
          const parsed = parseSse(buf + decoder.decode(value, { stream: true }));
          buf = parsed.rest;
          if (buf.length > 64 * 1024) throw new Error('live stream: an event over 64 KiB');
          for (const e of parsed.events) {
            if (e.event === 'ready') {
              failures = 0;
              o.onState(true);
              await o.onChange(0n);
            } else if (e.event === 'change') {
              const h = /"height":\s*(\d+)/.exec(e.data)?.[1];
              await o.onChange(h ? BigInt(h) : 0n);
            }
          }
        }
        if (stopped) return;
        o.onState(false, new Error('live stream closed'));
      } catch (e) {
        if (stopped) return;
        failures++;
        o.onState(false, e);
      }
      await sleep(backoffMs(failures, POLL_EVERY_MS));
    }
  })();
  return () => {
    stopped = true;
    void reader?.cancel().catch(() => undefined);
  };
}

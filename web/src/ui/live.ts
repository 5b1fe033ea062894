// Live updates by polling: every few seconds, read the latest certified height (through the
// authenticated abci_query, like every other read) and, when it advanced, tell the page to
// re-read what it shows, verified at the new height. The node's event WebSocket is not used:
// it carried every tx's events for every patient to anyone who connected.

import { backoffMs } from './truth.ts';

export const POLL_EVERY_MS = 2000;

export interface PollOptions {
  /** The latest certified height (an unproven pointer; the page attests what it reads). */
  latest: () => Promise<bigint>;
  /** The certified height advanced to `height` (called once per advance, never concurrently). */
  onAdvance: (height: bigint) => Promise<void> | void;
  /** The last poll answered (true) or failed (false, with why). */
  onState: (live: boolean, error?: unknown) => void;
  everyMs?: number;
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
  const every = o.everyMs ?? POLL_EVERY_MS;
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
      await sleep(backoffMs(failures, every));
    }
  })();
  return () => {
    stopped = true;
  };
}

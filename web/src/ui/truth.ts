// The patient page tells the truth (issue 27): pure decisions the page takes about what it may
// show, kept apart from the DOM so they are tested — rollback of the certified height, the
// banner's verdict (the worst row wins), the pinned consortium fingerprint, the freshness of the
// state shown and the outage backoff.

import { HttpError } from '../auth.ts';
import { age } from './words.ts';

/** The part of `localStorage` the page uses (a Map-backed stand-in in tests). */
export interface Store {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

// ---- rollback ----

/** Where the newest certified height this browser has seen for a chain and consortium is kept. */
export const seenKey = (chainId: string, fingerprint: string) => `medledger/seen-height/${chainId}/${fingerprint}`;

export function seenHeight(store: Store, chainId: string, fingerprint: string): bigint {
  const v = store.getItem(seenKey(chainId, fingerprint));
  return v !== null && /^\d{1,20}$/.test(v) ? BigInt(v) : 0n;
}

export type RollbackDecision = { ok: true } | { ok: false; text: string };

/**
 * Whether a certified height may be shown: never one older than the newest this browser has seen
 * for the chain (a gateway replaying an older, genuinely certified state, e.g. from before a
 * revoke, is caught here; the certificate alone cannot tell).
 */
export function checkRollback(seen: bigint, height: bigint): RollbackDecision {
  if (height >= seen) return { ok: true };
  return { ok: false, text: `The gateway showed an older state than you have seen before: height ${height} < ${seen}. Nothing of it is shown as verified.` };
}

/** Records `height` as seen (only ever raises the stored height). */
export function recordSeen(store: Store, chainId: string, fingerprint: string, height: bigint): void {
  if (height > seenHeight(store, chainId, fingerprint)) store.setItem(seenKey(chainId, fingerprint), height.toString());
}

// ---- the banner ----

/** One shown row (or list head): verified, refused by the gateway (403), or neither. */
export interface RowState {
  verified: boolean;
  denied?: boolean;
}

export interface Verdict {
  kind: 'ok' | 'warn' | 'error';
  text: string;
}

/**
 * The banner over everything shown at `height`: the worst row decides. "verified" only when
 * every row verified; any row NOT verified makes it red; any row not permitted (and none failed)
 * amber.
 */
export function verdict(rows: RowState[], height: bigint): Verdict {
  const bad = rows.filter((r) => !r.verified && !r.denied).length;
  const denied = rows.filter((r) => !r.verified && r.denied).length;
  const at = ` (ledger state ${height})`;
  if (bad > 0) {
    return { kind: 'error', text: `${bad} item(s) below could NOT be verified${denied ? `, and the gateway did not show ${denied} to you` : ''}: do not rely on what is marked NOT verified — the gateway may be showing you something false${at}.` };
  }
  if (denied > 0) {
    return { kind: 'warn', text: `The gateway did not show you ${denied} item(s) below (a permission, not a failed check); everything else was verified${at}.` };
  }
  return { kind: 'ok', text: `Your consents and every access to your data, verified: checked in this browser against the ledger${at}.` };
}

// ---- the consortium pin ----

/** Where the consortium fingerprint pinned on first use is kept (localStorage is per origin). */
export const PIN_KEY = 'medledger/consortium';

export interface Pin {
  chainId: string;
  fingerprint: string;
}

export type PinDecision = { kind: 'first-use'; pin: Pin } | { kind: 'same' } | { kind: 'changed'; pinned: Pin; now: Pin };

/** Compares the trust root the gateway served now with the one pinned on first use. */
export function checkPin(store: Store, now: Pin): PinDecision {
  let pinned: Pin | undefined;
  try {
    const v = JSON.parse(store.getItem(PIN_KEY) ?? 'null');
    if (v && typeof v.chainId === 'string' && typeof v.fingerprint === 'string') pinned = { chainId: v.chainId, fingerprint: v.fingerprint };
  } catch {
    pinned = undefined;
  }
  if (!pinned) return { kind: 'first-use', pin: now };
  if (pinned.chainId === now.chainId && pinned.fingerprint === now.fingerprint) return { kind: 'same' };
  return { kind: 'changed', pinned, now };
}

export function pin(store: Store, p: Pin): void {
  store.setItem(PIN_KEY, JSON.stringify(p));
}

// ---- freshness ----

/** The state shown is called stale when it is this old. */
export const STALE_AFTER_MS = 2 * 60 * 1000;

export const isStale = (nowMs: number, sinceMs: number): boolean => nowMs - sinceMs > STALE_AFTER_MS;

export interface Freshness {
  stale: boolean;
  text: string;
}

/**
 * How old the state shown is. With the certified block time (unix seconds, proven at the
 * certified height): that time, stale when more than 2 minutes old by this device's clock.
 * Without it (a ledger that does not store it): when this page last saw the certified state
 * advance, stale after 2 minutes without an advance.
 */
export function freshness(nowMs: number, advancedAtMs: number, blockTimeSecs: bigint | undefined, time: (secs: bigint) => string): Freshness {
  if (blockTimeSecs !== undefined && blockTimeSecs > 0n) {
    const ms = Number(blockTimeSecs) * 1000;
    const stale = isStale(nowMs, ms);
    return { stale, text: stale ? `Ledger time ${time(blockTimeSecs)}, ${age(nowMs, ms)} — what you see may be out of date` : `Ledger time ${time(blockTimeSecs)}` };
  }
  const stale = isStale(nowMs, advancedAtMs);
  return { stale, text: stale ? `No newer ledger state since ${age(nowMs, advancedAtMs)} — what you see may be out of date` : `Newest ledger state seen ${age(nowMs, advancedAtMs)}` };
}

// ---- outages ----

/** A fetch that never got an HTTP answer (or a proxy's 502/503/504): the gateway cannot be reached. */
export function isOutage(e: unknown): boolean {
  if (e instanceof HttpError) return [502, 503, 504].includes(e.status);
  return e instanceof TypeError;
}

export const OUTAGE_TEXT = 'The gateway cannot be reached; retrying… What you see may be out of date.';

/** Delay before the next poll after `failures` failures in a row: 2 s, doubling, at most 30 s. */
export function backoffMs(failures: number, everyMs = 2000, maxMs = 30_000): number {
  if (failures <= 0) return everyMs;
  return Math.min(maxMs, everyMs * 2 ** Math.min(failures, 16));
}

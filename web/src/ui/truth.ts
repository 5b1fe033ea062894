// The patient page tells the truth (issue 27): pure decisions the page takes about what it may
// show, kept apart from the DOM so they are tested — rollback of the certified height, the
// banner's verdict (the worst row wins), the pinned consortium fingerprint, the freshness of the
// state shown, the outage backoff, and the words for purposes and data classes.

import { HttpError } from '../auth.ts';

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
  if (bad > 0) {
    return { kind: 'error', text: `${bad} item(s) shown below did NOT verify at certified height ${height}${denied ? `, and ${denied} were not permitted` : ''}: do not rely on what is marked NOT verified.` };
  }
  if (denied > 0) {
    return { kind: 'warn', text: `${denied} item(s) shown below were not permitted to this key (a permission, not a verification failure); everything else verified at certified height ${height}.` };
  }
  return { kind: 'ok', text: `Your consents and every access to your data, verified at certified height ${height}.` };
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

/** The state shown is called stale when the certified height has not advanced for this long. */
export const STALE_AFTER_MS = 2 * 60 * 1000;

export const isStale = (nowMs: number, sinceMs: number): boolean => nowMs - sinceMs > STALE_AFTER_MS;

// ---- outages ----

/** A fetch that never got an HTTP answer (or a proxy's 502/503/504): the gateway cannot be reached. */
export function isOutage(e: unknown): boolean {
  if (e instanceof HttpError) return [502, 503, 504].includes(e.status);
  return e instanceof TypeError;
}

export const OUTAGE_TEXT = 'The gateway cannot be reached; retrying…';

/** Delay before the next poll after `failures` failures in a row: 2 s, doubling, at most 30 s. */
export function backoffMs(failures: number, everyMs = 2000, maxMs = 30_000): number {
  if (failures <= 0) return everyMs;
  return Math.min(maxMs, everyMs * 2 ** Math.min(failures, 16));
}

// ---- the consent form ----

/** The data classes a patient picks from (FHIR resource types; `*` is everything). */
export const DATA_CLASSES: { value: string; words: string }[] = [
  { value: 'Observation', words: 'Observations (lab results, vital signs)' },
  { value: 'DiagnosticReport', words: 'Diagnostic reports' },
  { value: 'DocumentReference', words: 'Documents (letters, notes)' },
  { value: 'MedicationRequest', words: 'Prescriptions' },
  { value: 'Condition', words: 'Conditions (diagnoses)' },
  { value: 'Procedure', words: 'Procedures' },
  { value: 'Immunization', words: 'Immunizations' },
  { value: 'AllergyIntolerance', words: 'Allergies' },
  { value: 'ImagingStudy', words: 'Imaging studies' },
  { value: '*', words: 'Everything (all my data)' },
];

export const PURPOSE_WORDS: Record<string, string> = {
  TREAT: 'treatment',
  ETREAT: 'emergency treatment',
  HPAYMT: 'payment',
  HOPERAT: 'healthcare operations',
  HRESCH: 'research',
};

/** A purpose code in words (the code kept in brackets); an unknown code as it is. */
export const purposeWords = (p: string): string => (PURPOSE_WORDS[p] ? `${PURPOSE_WORDS[p]} (${p})` : p);

/** The picked classes, validated against the list; `*` alone when everything is picked. */
export function pickedClasses(picked: string[]): string[] {
  const known = new Set(DATA_CLASSES.map((c) => c.value));
  const ok = picked.filter((c) => known.has(c));
  return ok.includes('*') ? ['*'] : ok;
}

/** What a grant asks the patient to confirm, if anything: granting everything. */
export function grantConfirmation(grantee: string, classes: string[]): string | undefined {
  return classes.includes('*') ? `Grant ${grantee} access to ALL your data (every class, *)? Only do this if you trust ${grantee} with everything.` : undefined;
}

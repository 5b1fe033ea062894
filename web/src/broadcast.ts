// Sending a signed tx and believing nothing until the ledger proves it (issue 27).
//
// The gateway's answer to broadcast_tx_commit is not evidence: a proxy can answer code 0 without
// forwarding the tx. So after an OK the page waits (bounded) for a certified height at or above
// the answer's height at which the *proven* state shows the tx's effect:
//   - a revoke: the consent's proven `revoked_height` is set, after the height at which the page
//     last showed it active;
//   - a grant: the proven `seq/{signer}` is past the tx's sequence, and the proven consent (the
//     one the answer names, else the newest of the patient's proven list) is the patient's, with
//     the grantee, classes, purposes and study asked for, granted after the height the page last
//     showed;
//   - a report of an access: the proven event is reported (`reported_height` after the height the
//     page last showed) for the reason sent.
// Only then is the outcome "verified"; otherwise "unconfirmed", which the page shows in amber.

import { decodeU64, fromUtf8, toHex } from './bytes.ts';
import { codeName } from './codes.ts';
import * as keys from './keys.ts';
import type { Attested, Ledger, Read } from './ledger.ts';
import { decodeAccessEvent, decodeConsent, type Consent, type TxMsg } from './messages.ts';
import type { SignedTx } from './tx.ts';

/** How long the page waits for the ledger to prove a broadcast's effect. */
export const CONFIRM_TIMEOUT_MS = 30_000;
export const CONFIRM_EVERY_MS = 1000;

/** What the page expects the tx to have done, and what it knew before sending. */
export interface Expectation {
  msg: TxMsg;
  patient: string;
  /** The signer's public key, hex. */
  signer: string;
  /** The tx's sequence. */
  sequence: bigint;
  /** The certified height the page last showed (the effect must come after it). */
  shownAt: bigint;
}

/** What the gateway answered to broadcast_tx_commit (untrusted). */
export interface BroadcastAnswer {
  checkCode: number;
  checkLog: string;
  deliverCode: number;
  deliverLog: string;
  height: bigint;
  /** The consent id in the answer's events, if any. */
  consentId?: string;
}

export function parseBroadcastAnswer(body: any): BroadcastAnswer {
  const r = body?.result ?? {};
  const check = r.check_tx ?? {};
  const res = r.tx_result ?? r.deliver_tx ?? {};
  const ev = (Array.isArray(res.events) ? res.events : []).find((e: any) => /^medledger\.consent\./.test(e?.type ?? ''));
  const cid = ev?.attributes?.find((a: any) => a?.key === 'consent_id')?.value;
  let height = 0n;
  try {
    height = BigInt(/^\d{1,20}$/.test(String(r.height ?? '')) ? r.height : '0');
  } catch {
    height = 0n;
  }
  return {
    checkCode: Number(check.code ?? 0) || 0,
    checkLog: String(check.log ?? ''),
    deliverCode: Number(res.code ?? 0) || 0,
    deliverLog: String(res.log ?? ''),
    height,
    consentId: typeof cid === 'string' && cid.length <= 128 ? cid : undefined,
  };
}

/** The proven state the decision needs, read at one attested height. */
export interface ProvenState {
  height: bigint;
  consent?: Read;
  consentId?: string;
  sequence?: Read;
  /** For a report: the reported access event. */
  event?: Read;
}

const sameList = <T extends string | number>(a: T[], b: T[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

function provenConsent(p: ProvenState): Consent | undefined {
  if (!p.consent?.verified || !p.consent.value) return undefined;
  try {
    return decodeConsent(p.consent.value);
  } catch {
    return undefined;
  }
}

/** Does the proven state show the expected effect? Pure: the whole decision of issue 27. */
export function provenDone(exp: Expectation, p: ProvenState): boolean {
  if (exp.msg.case === 'reportAccess') return reportProven(exp, exp.msg.value, p);
  const c = provenConsent(p);
  if (!c || c.patientId !== exp.patient) return false;
  if (exp.msg.case === 'revokeConsent') {
    return c.id === exp.msg.value.consentId && c.revokedHeight !== 0n && c.revokedHeight > exp.shownAt;
  }
  if (exp.msg.case !== 'grantConsent') return false;
  const g = exp.msg.value;
  if (!p.sequence?.verified || !p.sequence.value) return false;
  let seq: bigint;
  try {
    seq = decodeU64(p.sequence.value);
  } catch {
    return false;
  }
  return (
    seq > exp.sequence &&
    c.id === p.consentId &&
    c.grantee === g.grantee &&
    sameList(c.dataClasses, g.dataClasses) &&
    sameList(c.purposes, g.purposes) &&
    c.studyId === g.studyId &&
    c.grantedHeight > exp.shownAt
  );
}

/**
 * A report: the proven event at `access/{patient}/{index}` is the patient's, that index, and
 * reported (`reported_height` set, after the height the page last showed) for the reason sent.
 */
function reportProven(exp: Expectation, m: { patientId: string; eventIndex: bigint; reason: number }, p: ProvenState): boolean {
  if (!p.event?.verified || !p.event.value || m.patientId !== exp.patient) return false;
  let e;
  try {
    e = decodeAccessEvent(p.event.value);
  } catch {
    return false;
  }
  return e.patientId === exp.patient && e.index === m.eventIndex && e.reportedHeight !== 0n && e.reportedHeight > exp.shownAt && e.reportReason === m.reason;
}

/** Reads, at `at`, what provenDone needs for `exp`. */
export async function readProven(ledger: Ledger, at: Attested, exp: Expectation, answer: BroadcastAnswer): Promise<ProvenState> {
  if (exp.msg.case === 'reportAccess') {
    const m = exp.msg.value;
    return { height: at.height, event: await ledger.read(at, keys.accessEvent(exp.patient, m.eventIndex)) };
  }
  if (exp.msg.case === 'revokeConsent') {
    const id = exp.msg.value.consentId;
    return { height: at.height, consentId: id, consent: await ledger.read(at, keys.consent(id)) };
  }
  let id = answer.consentId;
  if (id === undefined) {
    const count = await ledger.read(at, keys.patientConsentCount(exp.patient));
    if (count.verified && count.value) {
      const n = decodeU64(count.value);
      if (n > 0n) {
        const last = await ledger.read(at, keys.patientConsent(exp.patient, n - 1n));
        if (last.verified && last.value) id = fromUtf8(last.value);
      }
    }
  }
  const [consent, sequence] = await ledger.readMany(at, [keys.consent(id ?? '?'), keys.sequence(exp.signer)]);
  return { height: at.height, consentId: id, consent, sequence };
}

export type Outcome =
  | { kind: 'refused'; stage: 'check' | 'deliver'; code: number; log: string; height: bigint; text: string }
  | { kind: 'verified'; height: bigint; certified: bigint; consentId?: string; text: string }
  | { kind: 'unconfirmed'; height: bigint; certified?: bigint; text: string };

export interface ConfirmOptions {
  timeoutMs?: number;
  everyMs?: number;
  /** Milliseconds (tests pass a fake clock with a sleep that advances it). */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Called with the gateway's OK answer, before the wait for its proof. */
  onAnswer?: (a: BroadcastAnswer) => void;
}

/**
 * Waits (bounded) until a certified height ≥ `answer.height` proves `exp`; the outcome is
 * `verified` only then.
 */
export async function confirm(ledger: Ledger, exp: Expectation, answer: BroadcastAnswer, what: string, o: ConfirmOptions = {}): Promise<Outcome> {
  const now = o.now ?? (() => Date.now());
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const timeout = o.timeoutMs ?? CONFIRM_TIMEOUT_MS;
  const deadline = now() + timeout;
  let checked = 0n;
  let lastError = '';
  for (;;) {
    try {
      const c = await ledger.latestCertifiedHeight();
      if (c >= answer.height && c > checked) {
        const at = await ledger.attest(c);
        const p = await readProven(ledger, at, exp, answer);
        checked = c;
        if (provenDone(exp, p)) {
          return { kind: 'verified', height: answer.height, certified: c, consentId: p.consentId, text: `${what}: committed at height ${answer.height} and verified at certified height ${c}${p.consentId && exp.msg.case === 'grantConsent' ? ` (consent ${p.consentId})` : ''}.` };
        }
        lastError = p.consent && !p.consent.verified ? ` (${p.consent.error ?? 'the consent did not verify'})` : '';
      }
    } catch (e) {
      lastError = ` (${(e as Error).message})`;
    }
    if (now() >= deadline) break;
    await sleep(o.everyMs ?? CONFIRM_EVERY_MS);
  }
  const where = checked > 0n ? `at certified height ${checked}` : `at any certified height ≥ ${answer.height} within ${Math.round(timeout / 1000)} s`;
  return {
    kind: 'unconfirmed',
    height: answer.height,
    certified: checked > 0n ? checked : undefined,
    text: `${what}: NOT confirmed by the ledger: the gateway said OK (height ${answer.height}) but the proven state ${where} does not show it${lastError}.`,
  };
}

/** Sends `tx` with broadcast_tx_commit and confirms it against the proven state. */
export async function broadcastAndConfirm(ledger: Ledger, tx: SignedTx, exp: Expectation, what: string, o: ConfirmOptions = {}): Promise<Outcome> {
  const body = await ledger.rpc('broadcast_tx_commit', `tx=0x${toHex(tx.bytes)}`);
  const a = parseBroadcastAnswer(body);
  if (a.checkCode) {
    return { kind: 'refused', stage: 'check', code: a.checkCode, log: a.checkLog, height: a.height, text: `${what} REFUSED: ${codeName(a.checkCode)} (${a.checkCode}): ${a.checkLog}` };
  }
  if (a.deliverCode) {
    return { kind: 'refused', stage: 'deliver', code: a.deliverCode, log: a.deliverLog, height: a.height, text: `${what} REFUSED at height ${a.height}: ${codeName(a.deliverCode)} (${a.deliverCode}): ${a.deliverLog}` };
  }
  o.onAnswer?.(a);
  return confirm(ledger, exp, a, what, o);
}

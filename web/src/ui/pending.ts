// The words the patient page shows for a pending guardian-set change or key rotation (issue 23,
// docs/rules.md "Guardians win against a thief"). Pure, no DOM: the tests check the wording.

import { toHex } from '../bytes.ts';
import type { PendingPatientChange } from '../messages.ts';
import { utcTime } from './dom.ts';

export interface PendingText {
  /** "A change to your account is pending: …". */
  headline: string;
  /** What to do if the patient did not ask for it. */
  advice: string;
  guardians: boolean;
  key: boolean;
}

/**
 * Describes `p` (undefined when nothing is pending: both effective times 0). `nowSecs` only picks
 * the tense: a part whose effective time has passed is in force at the ledger's next block (the
 * ledger uses block time; this page can only use the device's clock, and says so). `time` words a
 * block time (the patient page: local time; default UTC).
 */
export function describePending(p: PendingPatientChange, nowSecs: number, time: (secs: bigint) => string = utcTime): PendingText | undefined {
  const guardians = p.guardiansEffectiveTime !== 0n;
  const key = p.keyEffectiveTime !== 0n;
  if (!guardians && !key) return undefined;
  const now = BigInt(Math.floor(nowSecs));
  const due = (t: bigint) => t <= now;
  const when = (t: bigint, future: string, past: string) => (due(t) ? `${past} ${time(t)} (that time has passed by this device's clock)` : `${future} ${time(t)}`);
  const parts: string[] = [];
  if (guardians) {
    const n = p.guardians?.guardianKeys.length ?? 0;
    const t = p.guardiansEffectiveTime;
    const what = n === 0 ? `all your guardians will be removed ${when(t, 'from', 'from')}` : `new guardians (${p.guardians?.threshold ?? 0} of ${n}) ${when(t, 'take effect on', 'took effect on')}`;
    parts.push(`${what} (asked at block ${p.guardiansRequestedHeight})`);
  }
  if (key) {
    const k = p.newKey.length ? `${toHex(p.newKey).slice(0, 8)}…` : 'another key';
    parts.push(`your key will be replaced by ${k} ${when(p.keyEffectiveTime, 'from', 'from')} (asked at block ${p.keyRequestedHeight})`);
  }
  const advice = guardians && due(p.guardiansEffectiveTime)
    ? 'If you did not ask for this, your key may be stolen and your guardians may no longer be able to recover your account: contact your hospital at once.'
    : key && due(p.keyEffectiveTime)
      ? 'If you did not ask for this, your key may be stolen: ask your guardians to recover your account at once — a recovery replaces that key and cancels what is pending.'
      : 'If you did not ask for this, your key may be stolen: ask your guardians to recover your account before then — that cancels it.';
  return { headline: `A change to your account is pending: ${parts.join('; ')}.`, advice, guardians, key };
}

// The consent form that prevents mistakes (issue 27, point 8): what the patient filled in is
// checked before anything is signed — who (an id the ledger knows, active), which data (picked
// from the list, never free text that would silently permit nothing), why, and the study a
// research consent names. Pure, no DOM: the tests check every refusal.

import type { Read } from '../ledger.ts';
import { decodeMember, decodePractitioner, PractitionerStatus, purposeByName, roleName } from '../messages.ts';
import { DATA_CLASSES, roleWords } from './words.ts';

/** What a patient filled in. */
export interface GrantInput {
  grantee: string;
  /** The ticked data classes. */
  classes: string[];
  /** The purpose's code (`TREAT`). */
  purpose: string;
  /** The study's id (only read for research, HRESCH). */
  study: string;
}

/** A grant the ledger's stateless check accepts (crates/tx/src/check/mod.rs `check_grant`). */
export interface CheckedGrant {
  grantee: string;
  dataClasses: string[];
  purposes: number[];
  studyId: string;
}

export type FormField = 'grantee' | 'classes' | 'purpose' | 'study';
export type FormCheck = { ok: true; grant: CheckedGrant } | { ok: false; field: FormField; text: string };

/** Prefix of a practitioner's DID (a grantee without it is a member). */
export const DID_PREFIX = 'did:medledger:';

/** An id as the ledger takes it: letters, digits and - _ . :, at most 64 (limits.rs MAX_ID_LEN). */
const ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** The picked classes, kept only when on the list; `*` alone when everything is picked. */
export function pickedClasses(picked: string[]): string[] {
  const known = new Set(DATA_CLASSES.map((c) => c.value));
  const ok = [...new Set(picked.filter((c) => known.has(c)))];
  return ok.includes('*') ? ['*'] : ok;
}

/** Checks the form; the first problem is named with the field it is in. */
export function checkGrant(f: GrantInput): FormCheck {
  const grantee = f.grantee.trim();
  if (!grantee) return { ok: false, field: 'grantee', text: 'Say who may see your data: the id of a hospital, lab or practitioner (for example hospital-a).' };
  if (!ID.test(grantee) || (grantee.startsWith('did:') && !grantee.startsWith(DID_PREFIX))) {
    return { ok: false, field: 'grantee', text: `"${grantee.slice(0, 80)}" is not an id: ids use letters, digits and - _ . : only (for example hospital-a, or did:medledger:… for a practitioner).` };
  }
  const classes = pickedClasses(f.classes);
  if (classes.length === 0) return { ok: false, field: 'classes', text: 'Pick at least one kind of data.' };
  let purpose: number;
  try {
    purpose = purposeByName(f.purpose);
  } catch {
    return { ok: false, field: 'purpose', text: 'Pick why they may see it.' };
  }
  const research = f.purpose === 'HRESCH';
  const study = research ? f.study.trim() : '';
  if (research && !study) return { ok: false, field: 'study', text: 'Research needs the id of the study you agree to take part in (the study gives it to you).' };
  if (research && !ID.test(study)) return { ok: false, field: 'study', text: 'A study id uses letters, digits and - _ . : only, at most 64.' };
  return { ok: true, grant: { grantee, dataClasses: classes, purposes: [purpose], studyId: study } };
}

/** What a grant asks the patient to confirm, if anything: granting everything. */
export function grantConfirmation(granteeName: string, classes: string[]): string | undefined {
  return classes.includes('*') ? `Let ${granteeName} see ALL your data (every kind, *)? Only do this if you trust them with everything.` : undefined;
}

/** What a revoke asks the patient to confirm. */
export const revokeConfirmation = (consentId: string, granteeName: string): string =>
  `Revoke consent ${consentId} to ${granteeName}? They will no longer be permitted to see your data under it.`;

export type GranteeCheck = { ok: true; name: string } | { ok: false; text: string };

/**
 * Who the grantee is, from `member/{id}` or `practitioner/{did}` read with a proof at the state
 * shown: a name to confirm, or why nothing is sent — an id the ledger does not hold (which the
 * ledger would refuse), a practitioner who is not active (a consent that would permit nothing),
 * or an answer that did not verify.
 */
export function checkGrantee(grantee: string, r: Read): GranteeCheck {
  if (r.denied) return { ok: true, name: grantee };
  if (!r.verified) return { ok: false, text: `Who "${grantee}" is could NOT be verified (${r.error ?? 'the proof failed'}). Nothing was sent.` };
  if (!r.value) {
    const what = grantee.startsWith(DID_PREFIX) ? 'practitioner' : 'hospital, lab or other member';
    return { ok: false, text: `There is no ${what} with the id "${grantee}" on the ledger. Check the id with them (ids are case-sensitive, for example hospital-a). Nothing was sent.` };
  }
  try {
    if (grantee.startsWith(DID_PREFIX)) {
      const p = decodePractitioner(r.value);
      const role = roleWords(roleName(p.role));
      const name = `${p.name || grantee}${role ? `, ${role}` : ''} (${p.memberId})`;
      if (p.status !== PractitionerStatus.ACTIVE) return { ok: false, text: `${name} is suspended or no longer practising: a consent to them would permit nothing. Nothing was sent.` };
      return { ok: true, name };
    }
    const m = decodeMember(r.value);
    return { ok: true, name: m.name ? `${m.name} (${grantee})` : grantee };
  } catch {
    return { ok: false, text: `The ledger's record of "${grantee}" could not be read. Nothing was sent.` };
  }
}

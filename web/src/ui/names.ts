// Who, in words (issue 27, point 4): the names behind the ids the ledger stores — a member's name
// (`member/{id}`, Member.name) and a practitioner's name and role (`practitioner/{did}`,
// Practitioner.name and .role) — read at the certified state with proofs like every other row.
// A name whose proof fails is not shown (the id is, marked NOT verified).

import * as keys from '../keys.ts';
import type { Attested, Ledger, Read } from '../ledger.ts';
import { decodeMember, decodePractitioner, roleName } from '../messages.ts';
import { DID_PREFIX } from './form.ts';
import { roleWords } from './words.ts';

/** The proven reads of names, by member id or practitioner DID. */
export type NameBook = Map<string, Read>;

/** Most names one refresh reads (a history names few distinct readers; beyond this, ids only). */
export const MAX_NAMES = 200;

export const nameKey = (id: string): string => (id.startsWith(DID_PREFIX) ? keys.practitioner(id) : keys.member(id));

/**
 * Reads the names of `ids` (members and practitioners, distinct, at most MAX_NAMES) at `at`, and
 * the names of the members of the practitioners among them.
 */
export async function readNames(ledger: Ledger, at: Attested, ids: Iterable<string>): Promise<NameBook> {
  const book: NameBook = new Map();
  const add = async (more: string[]) => {
    const want = [...new Set(more.filter((id) => id && !book.has(id)))].slice(0, Math.max(0, MAX_NAMES - book.size));
    const reads = await ledger.readMany(at, want.map(nameKey));
    want.forEach((id, i) => book.set(id, reads[i]));
  };
  await add([...ids]);
  await add([...book].flatMap(([id, r]) => (id.startsWith(DID_PREFIX) && r.verified && r.value ? [practitionerMember(r.value)] : [])));
  return book;
}

function practitionerMember(value: Uint8Array): string {
  try {
    return decodePractitioner(value).memberId;
  } catch {
    return '';
  }
}

/** One party in words: a main line, a smaller second line, and whether its name is proven. */
export interface PartyWords {
  main: string;
  detail: string;
  /** The name was read with a verified proof (or there is no name to read: an absent id). */
  verified: boolean;
  denied: boolean;
}

/** A member's proven name, if any. */
export function memberName(book: NameBook, id: string): string | undefined {
  const r = book.get(id);
  if (!r?.verified || !r.value) return undefined;
  try {
    return decodeMember(r.value).name || undefined;
  } catch {
    return undefined;
  }
}

/** A member or practitioner (a consent's grantee) in words: "St Mary's Hospital" / "hospital-a". */
export function partyWords(book: NameBook, id: string): PartyWords {
  const r = book.get(id);
  const state = { verified: !!r?.verified, denied: !!r?.denied };
  if (!r || !r.verified || !r.value) {
    const why = !r ? '' : r.denied ? 'name not permitted' : !r.verified ? 'name NOT verified' : id.startsWith(DID_PREFIX) ? 'no such practitioner on the ledger' : 'no longer a member';
    return { main: id, detail: why, ...state };
  }
  try {
    if (id.startsWith(DID_PREFIX)) {
      const p = decodePractitioner(r.value);
      const role = roleWords(roleName(p.role));
      const at = memberName(book, p.memberId) ?? p.memberId;
      return { main: `${p.name || id}${role ? `, ${role}` : ''}`, detail: `${at} · ${id}`, ...state };
    }
    const m = decodeMember(r.value);
    return { main: m.name || id, detail: m.name ? id : '', ...state };
  } catch {
    return { main: id, detail: 'name does not decode', verified: false, denied: false };
  }
}

/**
 * Who read, in words: the practitioner (name, role) at their member when one signed, else the
 * member's systems. `actor` is the member (or `self`, the signed-in patient, for their own
 * download); `practitioner` the DID, or "".
 */
export function readerWords(book: NameBook, actor: string, practitioner: string, self?: string): PartyWords {
  // The patient's own read (purpose PATRQT): the proven event names the patient as its actor.
  if (self && actor === self && !practitioner) return { main: 'You', detail: 'your own copy', verified: true, denied: false };
  const member = partyWords(book, actor);
  if (!practitioner) {
    return { ...member, detail: [member.detail, 'no named person'].filter(Boolean).join(' · ') };
  }
  const p = partyWords(book, practitioner);
  return { main: p.main, detail: p.detail, verified: p.verified && member.verified, denied: p.denied || member.denied };
}

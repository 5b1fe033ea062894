// Break-glass up front (issue 27, point 6): a banner at the top of the patient page for every
// emergency access without the patient's consent that the proven history holds — who (name, role,
// member), what, when in local time — with its review status and its reviewer in words. Each line
// is checked like the rows: an entry that did not verify is never stated as fact (it is said to be
// unverified), and a name whose proof failed is shown as its id, marked. The reason's text is
// kept by the member whose practitioner broke the glass (the ledger holds its SHA-256): the page
// fetches it from that member's gateway (its URL proven, `gateway/{member}`), signed with the
// patient's key, and shows it only if its SHA-256 is the proven event's. `emergencies` and
// `checkReason` are pure (the unit tests call them); `showBreakGlass` fills `#break-glass`.

import { fromBinary } from '@bufbuild/protobuf';
import { sha256 } from '@noble/hashes/sha2.js';
import { equal, toHex, utf8 } from '../bytes.ts';
import { signHeaders } from '../httpsig.ts';
import type { Attested, Ledger } from '../ledger.ts';
import { actionName, decodePractitioner, reviewName, type AccessEvent } from '../messages.ts';
import { GatewaySchema } from '../gen/medledger/v1/gateway_pb.ts';
import type { AccessRow } from './history.ts';
import { memberName, partyWords, readerWords, type NameBook } from './names.ts';
import { actionWords, classWords, localTime, reviewStatusWords } from './words.ts';
import { $, el } from './dom.ts';
import { verifiedText } from './common.ts';

/** One emergency access as the banner says it. */
export interface Emergency {
  /** The ledger's event index. */
  index: number;
  /** The entry verified (proof, index, patient): only then is `headline` stated as fact. */
  verified: boolean;
  /** Every name in it was read with a verified proof (else its id is shown, marked). */
  namesVerified: boolean;
  /** `PENDING`, `JUSTIFIED`, `UNJUSTIFIED` (the ledger's review status), "" when unverified. */
  review: string;
  /** The reviewing privacy officer's DID, "" when none (or unverified). */
  reviewer: string;
  /** "Emergency access without your consent: Dr Ana Silva, doctor at Hospital A read …". */
  headline: string;
  /** "Review: waiting for review" … */
  reviewLine: string;
  /** "Reviewed by Bo Berg, privacy officer at Lab B", or who reviews a pending one; "" if none. */
  reviewerLine: string;
  /** The verified event (its member keeps the reason; its reason hash checks it). */
  event?: AccessEvent;
}

/** A party's words and whether its name is proven: "Name, role at Member" for a practitioner. */
function personAt(book: NameBook, did: string, member: string, patient: string): { text: string; verified: boolean } {
  const who = readerWords(book, member, did, patient);
  const at = memberName(book, member) ?? member;
  if (!who.verified) return { text: `${who.main} (${who.detail || 'name NOT verified'})`, verified: false };
  return { text: did ? `${who.main} at ${at}` : who.main, verified: true };
}

/** The member a practitioner belongs to, from their proven record ("" when not proven). */
function practitionerMember(book: NameBook, did: string): string {
  const r = book.get(did);
  if (!r?.verified || !r.value) return '';
  try {
    return decodePractitioner(r.value).memberId;
  } catch {
    return '';
  }
}

/** The reviewer in words: "Bo Berg, privacy officer at Lab B" (their member read from their proven record). */
function reviewerWords(book: NameBook, did: string): { text: string; verified: boolean } {
  const member = practitionerMember(book, did);
  const p = partyWords(book, did);
  if (!p.verified || !member) return { text: `${did} (${p.detail || 'name NOT verified'})`, verified: false };
  const at = memberName(book, member) ?? member;
  return { text: `${p.main} at ${at}`, verified: !!book.get(member)?.verified };
}

/**
 * The emergency accesses of `patient`'s history, newest first: every verified break-glass entry,
 * and every entry that claims to be one but did not verify (said so, not stated as fact).
 * `time` words a block time (the tests name a zone).
 */
export function emergencies(rows: AccessRow[], book: NameBook, patient: string, time: (secs: bigint) => string = (s) => localTime(s)): Emergency[] {
  const out: Emergency[] = [];
  for (const r of [...rows].sort((a, b) => b.index - a.index)) {
    const e = r.event;
    if (!e?.breakGlass || r.denied) continue;
    if (!r.ok) {
      out.push({
        index: r.index,
        verified: false,
        namesVerified: false,
        review: '',
        reviewer: '',
        headline: `Entry ${r.index} of your history claims to be an emergency access, but it could NOT be verified: it is not shown as fact.`,
        reviewLine: '',
        reviewerLine: '',
      });
      continue;
    }
    const who = personAt(book, e.practitioner, e.actor, patient);
    const what = `${classWords(e.dataClass)}${e.recordId ? ` (record ${e.recordId})` : ''}`;
    const review = reviewName(e.review);
    const by = e.reviewer ? reviewerWords(book, e.reviewer) : undefined;
    const accessor = memberName(book, e.actor) ?? e.actor;
    out.push({
      index: r.index,
      verified: true,
      namesVerified: who.verified && (by?.verified ?? true),
      review,
      reviewer: e.reviewer,
      headline: `Emergency access without your consent: ${who.text} ${actionWords(actionName(e.action))} ${what} on ${time(e.time)}`,
      reviewLine: `Review: ${reviewStatusWords(review)}`,
      reviewerLine: by ? `Reviewed by ${by.text}` : review === 'PENDING' ? `A privacy officer of a member other than ${accessor} reviews it.` : '',
      event: e,
    });
  }
  return out;
}

// ---- the reason, fetched from the member that keeps it and checked against the ledger ----

/** The reason of one emergency access as checked here. */
export type Reason = { kind: 'checked'; text: string } | { kind: 'mismatch' } | { kind: 'unavailable'; why: string };

/** The longest reason text the page takes (the gateway keeps at most 1 KiB). */
export const MAX_REASON_CHARS = 1024;

/** How long the page waits for a reason, in ms. */
const REASON_TIMEOUT_MS = 10_000;

/** How long an unavailable reason waits before it is asked again, in ms. */
const REASON_RETRY_MS = 30_000;

/** `GET /break-glass/{patient}/{index}/reason` at the member's proven endpoint. */
export const reasonUrl = (endpoint: string, patient: string, index: number | bigint) =>
  `${endpoint.replace(/\/+$/, '')}/break-glass/${encodeURIComponent(patient)}/${index}/reason`;

/** The text served, checked against the proven event's `break_glass_reason_hash`. */
export function checkReason(text: string, hash: Uint8Array): Reason {
  if (hash.length !== 32) return { kind: 'unavailable', why: 'the ledger holds no hash of a reason for it' };
  return equal(sha256(utf8(text)), hash) ? { kind: 'checked', text } : { kind: 'mismatch' };
}

/** The banner's reason line. */
export function reasonLine(r: Reason | undefined): string {
  if (!r) return 'Reason: being fetched…';
  if (r.kind === 'checked') return `Reason given (checked against the ledger): "${r.text}"`;
  if (r.kind === 'mismatch') return 'Reason: the reason served does NOT match the ledger: it is not shown.';
  return `Reason: not available (${r.why}).`;
}

export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

/**
 * Fetches the reason of verified break-glass event `e` from the gateway of its member (`e.actor`,
 * the endpoint read with a proof at `at`), the request signed with the patient's key `seed`, and
 * checks it against the event's hash.
 */
export async function fetchReason(fetchFn: Fetch, ledger: Ledger, at: Attested, e: AccessEvent, seed: Uint8Array, memberWords: string): Promise<Reason> {
  const g = await ledger.read(at, `gateway/${e.actor}`);
  if (!g.verified) return { kind: 'unavailable', why: `where ${memberWords}'s gateway is could NOT be verified` };
  if (!g.value) return { kind: 'unavailable', why: `${memberWords} has registered no gateway` };
  let endpoint: string;
  try {
    const gw = fromBinary(GatewaySchema, g.value);
    if (gw.memberId !== e.actor || !/^https?:\/\//.test(gw.endpoint)) return { kind: 'unavailable', why: `${memberWords}'s gateway entry is not its own` };
    endpoint = gw.endpoint;
  } catch {
    return { kind: 'unavailable', why: `${memberWords}'s gateway entry does not decode` };
  }
  const url = reasonUrl(endpoint, e.patientId, e.index);
  let res: Response;
  try {
    const headers = signHeaders(seed, 'GET', url, new Uint8Array(0));
    res = await fetchFn(url, { method: 'GET', headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal: AbortSignal.timeout(REASON_TIMEOUT_MS) });
  } catch {
    return { kind: 'unavailable', why: `${memberWords}'s gateway cannot be reached` };
  }
  if (res.status === 404) return { kind: 'unavailable', why: `${memberWords} keeps no reason for it` };
  if (!res.ok) return { kind: 'unavailable', why: `${memberWords}'s gateway answered HTTP ${res.status}` };
  const text = await res.text().catch(() => undefined);
  if (text === undefined) return { kind: 'unavailable', why: `${memberWords}'s gateway did not finish its answer` };
  if (text.length > MAX_REASON_CHARS) return { kind: 'mismatch' };
  return checkReason(text, e.breakGlassReasonHash);
}

/** Reasons checked (kept: the event's hash decides them for good) and recent failures. */
const reasons = new Map<string, { reason: Reason; at: number }>();
/** Reasons being fetched (a refresh while one is in flight does not ask again). */
const inFlight = new Set<string>();
const reasonKey = (e: AccessEvent) => `${e.patientId}/${e.index}/${toHex(e.breakGlassReasonHash)}`;

/** What the banner's reasons need: where and how to fetch them (undefined: not fetched). */
export interface ReasonContext {
  fetchFn: Fetch;
  ledger: Ledger;
  at: Attested;
  seed: Uint8Array;
  /** Still the patient shown (another key opened meanwhile: nothing is written). */
  current: () => boolean;
}

/** Empties and hides the banner (another key opened). */
export function clearBreakGlass(): void {
  const box = $('#break-glass');
  box.hidden = true;
  $('#break-glass-list').replaceChildren();
  box.removeAttribute('data-count');
  reasons.clear();
  inFlight.clear();
}

function setReason(li: Element, r: Reason | undefined): void {
  const line = li.querySelector('.reason');
  if (!line) return;
  line.textContent = reasonLine(r);
  line.className = `reason${r?.kind === 'mismatch' ? ' bad' : ''}`;
  line.setAttribute('data-reason', r?.kind ?? 'fetching');
}

/** Fills the banner at the top of the page from the history just checked (hidden when there is none), then each reason as it is fetched and checked. */
export function showBreakGlass(rows: AccessRow[], book: NameBook, patient: string, denied: boolean, cx?: ReasonContext): void {
  const list = denied ? [] : emergencies(rows, book, patient);
  const box = $('#break-glass');
  box.hidden = list.length === 0;
  box.setAttribute('data-count', String(list.length));
  const proven = list.filter((x) => x.verified).length;
  $('#break-glass-heading').textContent =
    proven === 1 ? 'Someone read your data in an emergency, without your consent' : proven ? `${proven} emergency accesses to your data without your consent` : 'An emergency access could NOT be verified';
  const items = list.map((x) => {
    const li = el(
      'li',
      {
        class: x.verified ? 'emergency' : 'emergency unverified',
        'data-index': String(x.index),
        'data-verified': x.verified ? 'yes' : 'no',
        'data-names-verified': x.namesVerified ? 'yes' : 'no',
        'data-review': x.review,
        'data-reviewer': x.reviewer,
      },
      el('strong', {}, x.headline),
      x.event ? el('div', { class: 'reason' }) : null,
      x.reviewLine ? el('div', { class: 'review-status' }, x.reviewLine) : null,
      x.reviewerLine ? el('div', { class: 'reviewer' }, x.reviewerLine) : null,
      el('div', { class: 'checked' }, 'Checked: ', verifiedText(x.verified)),
    );
    const e = x.event;
    if (e) {
      const known = reasons.get(reasonKey(e));
      setReason(li, known?.reason);
      const fresh = known && (known.reason.kind !== 'unavailable' || Date.now() - known.at < REASON_RETRY_MS);
      const k = reasonKey(e);
      if (cx && !fresh && !inFlight.has(k)) {
        const member = memberName(book, e.actor) ?? e.actor;
        inFlight.add(k);
        void fetchReason(cx.fetchFn, cx.ledger, cx.at, e, cx.seed, member)
          .catch((err: unknown): Reason => ({ kind: 'unavailable', why: err instanceof Error ? err.message : String(err) }))
          .then((r) => {
          inFlight.delete(k);
          if (!cx.current()) return;
          reasons.set(k, { reason: r, at: Date.now() });
          const shown = document.querySelector(`#break-glass-list li[data-index="${x.index}"]`);
          if (shown) setReason(shown, r);
        });
      } else if (!cx && !known) {
        setReason(li, { kind: 'unavailable', why: 'not fetched' });
      }
    }
    return li;
  });
  $('#break-glass-list').replaceChildren(...items);
}

// Refused attempts (issue 27, point 5): who tried to see the patient's data and was refused by
// the ledger for want of a consent. The ledger keeps them per patient in a proven list
// (`refused/{patient}/…`, count + entries + digest, docs/rules.md "Refused attempts"), bounded per
// block; those over the bound are counted in `refused/{patient}/dropped`. The list is read like
// the access history: one proof of its digest and the entries chained to it (or, when they do
// not chain, one proof per entry), so every line is verified or marked NOT verified, newest
// first, with a filter by who tried.
//
// `checkAttempts`, `refusedSentence`, `reasonWords`, `summaryText`, `whoChoices` and `matchesWho`
// are pure (the unit tests call them); `readRefused` reads the ledger; `showRefused` fills the
// page's `#refused-section` (created after the access history when the page has none).

import { fromBinary } from '@bufbuild/protobuf';
import { decodeU64 } from '../bytes.ts';
import { RefusalReason, RefusedAttemptSchema, type RefusedAttempt } from '../gen/medledger/v1/state_pb.ts';
import * as keys from '../keys.ts';
import type { Attested, Ledger, Read } from '../ledger.ts';
import { actionName } from '../messages.ts';
import { memberName, readerWords, type NameBook } from './names.ts';
import { classWords, localTime } from './words.ts';
import { $, el } from './dom.ts';
import { deniedText, verifiedText } from './common.ts';
import type { RowState } from './truth.ts';

export { RefusalReason, type RefusedAttempt };

/** Most refused attempts one refresh reads (the ledger records at most 4 per block for a patient). */
export const MAX_REFUSED_READ = 10_000;

/** The list as read: its count (the proven digest), the entries, and the dropped counter. */
export interface Refused {
  count: Read;
  n: bigint;
  items: Read[];
  dropped: Read;
}

/** One entry, checked: its proof, its index and its patient. */
export interface RefusedRow {
  index: number;
  read: Read;
  attempt?: RefusedAttempt;
  /** Verified: proven (or chained to the proven digest), decodes, is entry `index` of this patient. */
  ok: boolean;
  denied: boolean;
  /** Why it is not verified. */
  reason?: string;
}

export const decodeRefusedAttempt = (b: Uint8Array): RefusedAttempt => fromBinary(RefusedAttemptSchema, b);

/** Reads the patient's refused attempts at `at`: one proof of the digest, or one per entry. */
export async function readRefused(ledger: Ledger, at: Attested, patient: string): Promise<Refused> {
  const item = (n: bigint) => keys.refusedAttempt(patient, n);
  const [byDigest, dropped] = await Promise.all([
    ledger.readListByDigest(at, keys.refusedDigest(patient), item, (v) => v, MAX_REFUSED_READ),
    ledger.read(at, keys.refusedDropped(patient)),
  ]);
  // The list keeps its digest from its first entry on: a digest proven absent is an empty list.
  const l = byDigest ?? { count: { key: keys.refusedDigest(patient), verified: true }, n: 0n, items: [] };
  return { count: l.count, n: l.n, items: l.items, dropped };
}

/** Checks each entry: verified read, decodes, its index is its place, its patient is `patient`. */
export function checkAttempts(items: Read[], patient: string): RefusedRow[] {
  return items.map((read, i) => {
    const denied = !!read.denied;
    if (!read.verified) return { index: i, read, ok: false, denied, reason: read.error ?? 'proof did not verify' };
    if (!read.value) return { index: i, read, ok: false, denied, reason: 'the entry is missing' };
    let attempt: RefusedAttempt;
    try {
      attempt = decodeRefusedAttempt(read.value);
    } catch {
      return { index: i, read, ok: false, denied, reason: 'does not decode as a RefusedAttempt' };
    }
    if (attempt.index !== BigInt(i)) return { index: i, read, attempt, ok: false, denied, reason: `entry ${i} says it is number ${attempt.index}` };
    if (attempt.patientId !== patient) return { index: i, read, attempt, ok: false, denied, reason: 'the entry is about another patient' };
    return { index: i, read, attempt, ok: true, denied };
  });
}

/** Why the ledger refused, in words: "no consent", "your consent c-4 was withdrawn", … */
export function reasonWords(reason: RefusalReason, consentId = ''): string {
  const c = consentId ? `your consent ${consentId}` : 'your consent';
  switch (reason) {
    case RefusalReason.NO_CONSENT:
      return 'no consent';
    case RefusalReason.CONSENT_REVOKED:
      return `${c} was withdrawn`;
    case RefusalReason.CONSENT_EXPIRED:
      return `${c} had ended`;
    case RefusalReason.CONSENT_NOT_YET_VALID:
      return `${c} had not started yet`;
    case RefusalReason.NOT_COVERED:
      return 'no consent covers this';
    default:
      return 'no consent permitted it';
  }
}

/** Who tried, in words: the member's name, or "Name, role at Member" for a practitioner. */
export function whoWords(names: NameBook, a: RefusedAttempt): { text: string; verified: boolean } {
  const who = readerWords(names, a.actor, a.practitioner);
  if (!who.verified) return { text: who.main, verified: false };
  if (!a.practitioner) return { text: who.main, verified: true };
  return { text: `${who.main} at ${memberName(names, a.actor) ?? a.actor}`, verified: true };
}

/** "Hospital A tried to read your Lab result (Observation) — refused (no consent)". */
export function refusedSentence(a: RefusedAttempt, names: NameBook): string {
  const verb = actionName(a.action) === 'WRITE' ? 'change' : 'read';
  return `${whoWords(names, a).text} tried to ${verb} your ${classWords(a.dataClass)} — refused (${reasonWords(a.reason, a.consentId)})`;
}

/** The number in the dropped counter (0 when absent or not verified). */
export function droppedCount(r: Read): bigint {
  if (!r.verified || !r.value) return 0n;
  try {
    return decodeU64(r.value);
  } catch {
    return 0n;
  }
}

/** The sentence above the list. */
export function summaryText(r: Refused, rows: RefusedRow[]): { text: string; kind: 'ok' | 'bad' | 'denied' } {
  if (r.count.denied || rows.some((x) => x.denied)) return { text: deniedText('the refused attempts to see your data'), kind: 'denied' };
  if (!r.count.verified) return { text: `The refused attempts could NOT be verified: their number could NOT be verified (${r.count.error ?? ''}).`, kind: 'bad' };
  const bad = rows.filter((x) => !x.ok).length;
  if (bad || rows.length !== Number(r.n)) return { text: `The refused attempts could NOT be verified complete: ${bad || Number(r.n) - rows.length} entry(ies) could NOT be verified.`, kind: 'bad' };
  if (!r.dropped.verified && !r.dropped.denied) return { text: `${r.n} refused attempt(s); the number not recorded could NOT be verified (${r.dropped.error ?? ''}).`, kind: 'bad' };
  const k = droppedCount(r.dropped);
  const more = k ? ` And ${k} more not recorded (the ledger records at most 4 a block for you, 64 in all).` : '';
  if (r.n === 0n) return { text: `No one was refused access to your data (verified: the list is complete and empty).${more}`, kind: 'ok' };
  return { text: `${r.n} attempt(s) to see your data were refused by the ledger; the list is complete and every entry verified.${more}`, kind: 'ok' };
}

/** Newest first. */
export const newestFirst = (rows: RefusedRow[]): RefusedRow[] => [...rows].sort((a, b) => b.index - a.index);

/** The filter's choices: every member that tried (verified rows only), by name. */
export function whoChoices(rows: RefusedRow[], names: NameBook): { value: string; text: string }[] {
  const members = [...new Set(rows.flatMap((r) => (r.ok && r.attempt ? [r.attempt.actor] : [])))].sort();
  return members.map((m) => ({ value: m, text: memberName(names, m) ?? m }));
}

/** Whether a row is shown under the filter `who` ("" = everyone; an unverified row always is). */
export const matchesWho = (r: RefusedRow, who: string): boolean => !who || !r.ok || r.attempt?.actor === who;

/** The ids whose names the list shows (verified rows only). */
export function refusedNameIds(r: Refused, patient: string): string[] {
  return checkAttempts(r.items, patient).flatMap((x) => (x.ok && x.attempt ? [x.attempt.actor, x.attempt.practitioner] : []));
}

// ---- the page ----

let shown: { rows: RefusedRow[]; names: NameBook } | undefined;

/** The section, created after the access history the first time. */
function section(): HTMLElement {
  const have = document.querySelector<HTMLElement>('#refused-section');
  if (have) return have;
  const select = el('select', { id: 'refused-who' }, el('option', { value: '' }, 'Everyone'));
  select.addEventListener('change', () => renderBody());
  const s = el(
    'section',
    { id: 'refused-section', 'aria-labelledby': 'refused-heading' },
    el('h2', { id: 'refused-heading' }, 'Who tried to see my data and was refused'),
    el('p', { id: 'refused-summary', class: 'summary' }),
    el('div', { id: 'refused-tools', class: 'filters', hidden: '' }, el('label', { for: 'refused-who' }, 'Show only who tried: '), select),
    el(
      'table',
      { id: 'refused', class: 'rows', hidden: '' },
      el('caption', {}, 'Refused attempts to see your data, newest first'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'When'), el('th', { scope: 'col' }, 'What happened'), el('th', { scope: 'col' }, 'Checked'))),
      el('tbody'),
    ),
  );
  const after = document.querySelector('#accesses-section');
  if (after) after.after(s);
  else (document.querySelector('main') ?? document.body).append(s);
  return s;
}

function row(r: RefusedRow, names: NameBook): HTMLTableRowElement {
  const a = r.attempt;
  const said = r.ok && a ? refusedSentence(a, names) : `Entry ${r.index} could not be shown as a fact.`;
  return el(
    'tr',
    {
      class: `refused-row${r.ok ? '' : ' unverified'}`,
      'data-index': String(r.index),
      'data-actor': a?.actor ?? '',
      'data-record-id': a?.recordId ?? '',
      'data-verified': r.ok ? 'yes' : 'no',
    },
    el('td', { 'data-label': 'When' }, r.ok && a ? localTime(a.time) : ''),
    el('td', { 'data-label': 'What happened' }, said, r.ok && a ? el('div', { class: 'small' }, `record ${a.recordId}`) : ''),
    el('td', { 'data-label': 'Checked' }, verifiedText(r.ok, r.denied), !r.ok && !r.denied && r.reason ? el('div', { class: 'why' }, `Why: ${r.reason}`) : ''),
  );
}

function renderBody(): void {
  const table = document.querySelector<HTMLTableElement>('#refused');
  if (!table || !shown) return;
  const who = document.querySelector<HTMLSelectElement>('#refused-who')?.value ?? '';
  const body = table.tBodies[0] ?? table.appendChild(el('tbody'));
  const { rows, names } = shown;
  body.replaceChildren(...newestFirst(rows).filter((r) => matchesWho(r, who)).map((r) => row(r, names)));
}

/** Shows the list; returns the rows for the page's verdict (the count, the dropped counter, each entry). */
export function showRefused(r: Refused, names: NameBook, patient: string): RowState[] {
  section();
  const rows = checkAttempts(r.items, patient);
  shown = { rows, names };
  const s = summaryText(r, rows);
  const sum = $('#refused-summary');
  sum.className = `summary ${s.kind}`;
  sum.textContent = s.text;
  const select = $<HTMLSelectElement>('#refused-who');
  const keep = select.value;
  const choices = whoChoices(rows, names);
  select.replaceChildren(el('option', { value: '' }, 'Everyone'), ...choices.map((c) => el('option', { value: c.value }, c.text)));
  select.value = choices.some((c) => c.value === keep) ? keep : '';
  $('#refused-tools').hidden = choices.length < 2;
  $('#refused').hidden = rows.length === 0;
  renderBody();
  return [
    { verified: r.count.verified, denied: r.count.denied },
    { verified: r.dropped.verified, denied: r.dropped.denied },
    ...rows.map((x) => ({ verified: x.ok, denied: x.denied })),
  ];
}

/** Forgets the previous patient's refused attempts (another key opened). */
export function clearRefused(): void {
  shown = undefined;
  const s = document.querySelector('#refused-section');
  if (!s) return;
  $('#refused-summary').textContent = '';
  $('#refused').hidden = true;
  $('#refused').querySelector('tbody')?.replaceChildren();
  $('#refused-tools').hidden = true;
  $<HTMLSelectElement>('#refused-who').replaceChildren(el('option', { value: '' }, 'Everyone'));
}

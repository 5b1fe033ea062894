// "Report this access" (issue 27, point 6): a patient disputes an access in their history. Each
// history row made by someone else and not yet reported gets a "Report" button; it asks for a
// reason (a small dialog with a list: no free text goes on the ledger), asks for confirmation,
// and sends ReportAccess signed with the patient's key through the page's one sending path
// (`submit` in patient.ts: the outcome is "verified" only once a certified state proves the
// event reported, broadcast.ts). A reported row says where its review stands, by the proven
// event's `report_review` and `report_reviewer`.

import { create } from '@bufbuild/protobuf';
import { ReportAccessSchema, type TxBody } from '../gen/medledger/v1/tx_pb.ts';
import { ReportReason } from '../gen/medledger/v1/state_pb.ts';
import { reviewName, type AccessEvent } from '../messages.ts';
import { el } from './dom.ts';
import type { AccessRow } from './history.ts';
import { partyWords, readerWords, type NameBook } from './names.ts';

export { ReportReason };

/** The reasons a patient picks from, in the order the dialog lists them. */
export const REPORT_REASONS: { value: ReportReason; words: string }[] = [
  { value: ReportReason.UNKNOWN_READER, words: "I don't know who this is" },
  { value: ReportReason.NOT_MY_CARE, words: 'They are not involved in my care' },
  { value: ReportReason.WRONG_PURPOSE, words: 'It was not for the reason given' },
  { value: ReportReason.OTHER, words: 'Another reason' },
];

/** A reason in words ("" for none). */
export const reportReasonWords = (r: number): string => REPORT_REASONS.find((x) => x.value === r)?.words ?? '';

/** The tx message: the patient reports event `index` of their own history. */
export const reportAccess = (patientId: string, index: bigint, reason: ReportReason): TxBody['msg'] => ({
  case: 'reportAccess',
  value: create(ReportAccessSchema, { patientId, eventIndex: index, reason }),
});

/** Whether the row may be reported: verified, someone else's access, not reported yet. */
export function reportable(r: AccessRow, patient: string): boolean {
  const e = r.event;
  return r.ok && !!e && e.actor !== patient && e.reportedHeight === 0n;
}

/** "access #3 by Dr Ada Lovelace, doctor": how the button and the dialog name the row. */
export function rowName(e: AccessEvent, names: NameBook, patient: string): string {
  return `access #${e.index} by ${readerWords(names, e.actor, e.practitioner, patient).main}`;
}

/**
 * Where a reported access's review stands, in plain words: "Reported by you: review pending",
 * "Your report was upheld by <officer> (<member>)", "Your report was not upheld by …".
 * "" when the event was not reported.
 */
export function reportStatusWords(e: AccessEvent, names: NameBook): string {
  if (e.reportedHeight === 0n) return '';
  const r = reviewName(e.reportReview);
  if (r !== 'JUSTIFIED' && r !== 'UNJUSTIFIED') return 'Reported by you: review pending';
  const officer = e.reportReviewer ? partyWords(names, e.reportReviewer) : undefined;
  const who = officer ? ` by ${officerWords(officer.main, officer.detail)}` : '';
  return r === 'UNJUSTIFIED' ? `Your report was upheld${who}: the access was not justified` : `Your report was not upheld${who}: the access was found justified`;
}

/** "Dr Grace Hopper, privacy officer (Lab B)": the officer's name and their member's. */
function officerWords(main: string, detail: string): string {
  const member = detail.split(' · ')[0];
  return member && member !== main ? `${main} (${member})` : main;
}

/** What the page's sending path needs: send the message, saying what it is. */
export type Send = (m: TxBody['msg'], what: string) => Promise<void>;

/**
 * The report part of a history row: the review's status for a reported row, a "Report" button
 * for a reportable one, nothing otherwise.
 */
export function reportCell(r: AccessRow, names: NameBook, patient: string, send: Send): HTMLElement[] {
  const e = r.event;
  if (!e || !r.ok) return [];
  const status = reportStatusWords(e, names);
  if (status) {
    const reason = reportReasonWords(e.reportReason);
    return [el('div', { class: 'small report-status', 'data-report-review': reviewName(e.reportReview) }, status, reason ? ` (you said: ${reason.toLowerCase()})` : '')];
  }
  if (!reportable(r, patient)) return [];
  const name = rowName(e, names, patient);
  const button = el('button', { class: 'report', type: 'button', 'data-index': e.index.toString(), 'aria-label': `Report ${name}` }, 'Report');
  button.addEventListener('click', () => openReportDialog(e, name, send, button));
  return [button];
}

/** The dialog's id (one at a time). */
export const DIALOG_ID = 'report-dialog';

/**
 * A modal dialog asking why (a list, keyboard-accessible: the native <dialog> traps focus and
 * closes on Escape), then for confirmation, then sends. Focus returns to the row's button.
 */
export function openReportDialog(e: AccessEvent, name: string, send: Send, opener?: HTMLElement): void {
  document.getElementById(DIALOG_ID)?.remove();
  const select = el(
    'select',
    { id: 'report-reason', name: 'reason', required: '' },
    el('option', { value: '' }, 'Choose a reason…'),
    ...REPORT_REASONS.map((r) => el('option', { value: String(r.value) }, r.words)),
  ) as HTMLSelectElement;
  const error = el('p', { class: 'form-error', id: 'report-error', role: 'alert' });
  const cancel = el('button', { type: 'button', class: 'cancel' }, 'Cancel');
  const sendButton = el('button', { type: 'submit', class: 'send' }, 'Send report');
  const title = `Report ${name}`;
  const form = el(
    'form',
    { method: 'dialog' },
    el('h2', { id: 'report-title' }, title),
    el('p', {}, 'A privacy officer of another member than the one that accessed your data will review it. Only the reason you pick goes on the ledger.'),
    el('label', { for: 'report-reason' }, 'Why are you reporting it?'),
    select,
    error,
    el('div', { class: 'actions' }, sendButton, ' ', cancel),
  );
  const dialog = el('dialog', { id: DIALOG_ID, 'aria-labelledby': 'report-title' }, form) as HTMLDialogElement;
  const close = () => {
    dialog.close();
    dialog.remove();
    opener?.focus();
  };
  cancel.addEventListener('click', close);
  dialog.addEventListener('cancel', () => {
    dialog.remove();
    opener?.focus();
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const reason = Number(select.value) as ReportReason;
    const words = reportReasonWords(reason);
    if (!words) {
      error.textContent = 'Choose a reason first.';
      select.setAttribute('aria-invalid', 'true');
      select.focus();
      return;
    }
    if (!window.confirm(`Report ${name} ("${words}")? A privacy officer of another member will review it. This cannot be undone.`)) return;
    close();
    void send(reportAccess(e.patientId, e.index, reason), `Report of ${name}`);
  });
  document.body.append(dialog);
  dialog.showModal();
  select.focus();
}

// What both pages share: the gateway's info, the key's session with the gateway, the verifying
// ledger client, the key inputs, the trust panel and the access-history table.

import { toHex } from '../bytes.ts';
import { accessLeaf } from '../digest.ts';
import { trustFingerprint, type CertTrust } from '../cert.ts';
import { Action, actionName, decodeAccessEvent, purposeName, reviewName, type AccessEvent } from '../messages.ts';
import { DeniedError, HttpError, Session } from '../auth.ts';
import { httpTransport, Ledger, type Attested, type Read } from '../ledger.ts';
import * as keys from '../keys.ts';
import { parseKeyFile, type PatientKey } from '../tx.ts';
import { $, el, setStatus, utcTime } from './dom.ts';

export interface Info {
  chain_id: string;
  member_id: string;
  /** The gateway's public base URL: what a token request's signature names. */
  gateway: string;
}

export async function loadInfo(): Promise<Info> {
  const res = await fetch('/api/info', { cache: 'no-store' });
  if (!res.ok) throw new Error(`/api/info: HTTP ${res.status}`);
  return res.json();
}

/**
 * The base URL a token request's `@target-uri` names: the gateway's public URL from /api/info
 * (what the gateway checks signatures against, also behind a proxy or TLS terminator), else this
 * page's origin. Either way it is the gateway that served this page's code.
 */
export function gatewayBase(info?: Info): string {
  const g = info?.gateway;
  return typeof g === 'string' && /^https?:\/\/[^/?#@\s]+\/?$/.test(g) ? g : location.origin;
}

/** RPC methods that need no token: the open ones and the signed broadcasts. */
const OPEN_RPC = new Set(['genesis', 'status', 'broadcast_tx_sync', 'broadcast_tx_commit']);

/** A ledger client whose reads go through `session` (bearer token on abci_query). */
export function makeLedger(session: Session): Ledger {
  return new Ledger(httpTransport('/rpc/', (url, method) => session.fetch(url, {}, !OPEN_RPC.has(method))));
}

/** Wires a key file input, a paste box and its button to `open` (the text of the key file). */
export function wireKeyInputs(open: (k: PatientKey) => void): void {
  const tryOpen = (text: string) => {
    let k: PatientKey;
    try {
      k = parseKeyFile(text);
    } catch (e) {
      setStatus(`Key not opened: ${msg(e)}`, 'error');
      return;
    }
    $<HTMLTextAreaElement>('#key-paste').value = '';
    open(k);
  };
  $<HTMLInputElement>('#key-file').addEventListener('change', async (ev) => {
    const input = ev.target as HTMLInputElement;
    const f = input.files?.[0];
    if (f) tryOpen(await f.text());
    input.value = '';
  });
  $('#key-open').addEventListener('click', () => tryOpen($<HTMLTextAreaElement>('#key-paste').value));
}

/** Loads the trust root and fills the trust panel (`#trust`). */
export async function loadTrust(ledger: Ledger, info?: Info): Promise<CertTrust> {
  const t = await ledger.loadTrust();
  if (info && info.chain_id && info.chain_id !== t.chainId) {
    throw new Error(`the gateway says chain ${info.chain_id} but its genesis is for ${t.chainId}`);
  }
  const panel = document.querySelector('#trust');
  if (panel) {
    panel.replaceChildren(
      el('div', {}, 'Chain ', el('code', { id: 'chain-id' }, t.chainId), info?.member_id ? ` · via ${info.member_id}'s gateway` : ''),
      el('div', {}, 'Consortium fingerprint ', el('code', { id: 'trust-fingerprint', title: 'SHA-256 over the chain id and every genesis validator address, power, BLS key and member name (pinned in this browser on first use)' }, trustFingerprint(t).slice(0, 32))),
      el('div', { class: 'small' }, `Validators (BLS keys from genesis, every proof of possession checked): ${t.validators.map((v) => `${v.name} (${v.power})`).join(', ')}`),
    );
  }
  return t;
}

export function showAttested(at: Attested): void {
  $('#cert-height').textContent = at.height.toString();
  const d = document.querySelector('#cert-detail');
  if (d) {
    d.textContent = `app hash ${toHex(at.appHash).toUpperCase()} · certificate signed by ${at.signerNames.length}/${at.validatorCount} validators (${at.signerNames.join(', ')}), ${at.signedPower} of ${at.totalPower} voting power${at.handovers ? ` · ${at.handovers} validator-set handover(s) verified` : ''}`;
  }
}

export const verifiedText = (v: boolean, denied = false) =>
  denied ? el('span', { class: 'denied' }, 'not permitted') : el('span', { class: v ? 'ok' : 'bad' }, v ? 'verified' : 'NOT verified');

/** Whether an error is the gateway refusing this key (403), not a failed verification. */
export const isDenied = (e: unknown) => e instanceof DeniedError;

/** The sentence shown for a 403: what was refused, and that nothing failed to verify. */
export function deniedText(what: string, e?: unknown): string {
  const why = e instanceof HttpError && e.detail ? ` (${e.detail})` : '';
  return `The gateway does not let this key read ${what}${why}. This is a permission, not a verification failure.`;
}

export interface History {
  count: Read;
  n: bigint;
  rows: { read: Read; event?: AccessEvent }[];
  complete: boolean;
  /** The gateway refused this key the history (403). */
  denied: boolean;
}

/** A break-glass or reported event: its review (or report) is written outside the digest. */
function isBreakGlass(read: Read): boolean {
  try {
    if (!read.value) return false;
    const e = decodeAccessEvent(read.value);
    return e.breakGlass || e.reportedHeight !== 0n;
  } catch {
    return false;
  }
}

export async function readHistory(ledger: Ledger, at: Attested, patient: string): Promise<History> {
  // One proof for the whole history (its digest); one per event for a history older than digests.
  const item = (n: bigint) => keys.accessEvent(patient, n);
  const byDigest = await ledger.readListByDigest(at, keys.accessDigest(patient), item, accessLeaf);
  const l = byDigest ?? (await ledger.readList(at, keys.accessCount(patient), item));
  if (byDigest) {
    // A break-glass event's review and a reported event's report are written after the event,
    // outside the digest: prove those events alone.
    l.items = await Promise.all(l.items.map((read) => (isBreakGlass(read) ? ledger.read(at, read.key) : read)));
  }
  const rows = l.items.map((read) => {
    let event: AccessEvent | undefined;
    try {
      event = read.value ? decodeAccessEvent(read.value) : undefined;
    } catch {
      read = { ...read, verified: false, error: 'does not decode as an AccessEvent' };
    }
    return { read, event };
  });
  const complete = l.count.verified && rows.length === Number(l.n) && rows.every((r) => r.read.verified && r.event);
  return { count: l.count, n: l.n, rows, complete, denied: !!l.count.denied || rows.some((r) => r.read.denied) };
}

/** Fills `table` (the `#accesses` table) with the history, one `tr.access-row` per event. */
export function renderHistory(table: HTMLTableElement, h: History, patient: string): void {
  const body = table.tBodies[0] ?? table.appendChild(el('tbody'));
  body.replaceChildren(
    ...h.rows.map(({ read, event }, i) => {
      const e = event;
      const ok = read.verified && !!e && e.index === BigInt(i) && e.patientId === patient;
      const bg = !!e?.breakGlass;
      const tr = el(
        'tr',
        {
          class: `access-row${bg ? ' break-glass' : ''}${ok ? '' : ' unverified'}`,
          'data-index': String(i),
          'data-record-id': e?.recordId ?? '',
          'data-actor': e?.actor ?? '',
          'data-verified': ok ? 'yes' : 'no',
          'data-break-glass': bg ? 'yes' : 'no',
        },
        el('td', { 'data-label': '#' }, String(i)),
        el('td', { 'data-label': 'When' }, e ? utcTime(e.time) : '', e ? el('div', { class: 'small' }, `block ${e.height}`) : ''),
        el('td', { 'data-label': 'Who' }, e?.actor ?? '', e?.practitioner ? el('div', { class: 'small did' }, e.practitioner) : ''),
        el('td', { 'data-label': 'What' }, e ? `${e.dataClass} ${e.recordId}` : '', e && e.action !== Action.READ ? el('div', { class: 'small' }, actionName(e.action)) : ''),
        el('td', { 'data-label': 'Why' }, e ? purposeName(e.purpose) : ''),
        el(
          'td',
          { 'data-label': 'Consent' },
          bg ? el('strong', { class: 'bg-flag' }, 'BREAK-GLASS') : (e?.consentId ?? ''),
          bg ? el('div', { class: 'small review' }, `review: ${reviewName(e!.review)}${e!.reviewer ? ` by ${e!.reviewer}` : ''}`) : '',
        ),
        el('td', { 'data-label': 'Proof' }, verifiedText(ok, !!read.denied), !ok && !read.denied ? el('div', { class: 'why' }, `Why: ${read.error ?? (e ? 'the event is not the one the history names here' : 'the event is missing')}`) : ''),
      );
      return tr;
    }),
  );
  const cap = table.querySelector('caption');
  if (cap && h.denied) {
    cap.textContent = deniedText(`this patient's access history`);
    cap.className = 'denied';
  } else if (cap) {
    cap.textContent = h.complete
      ? `Complete history: ${h.n} access event(s), count and every event verified`
      : `History NOT verified complete: ${h.count.verified ? `${h.rows.filter((r) => !r.read.verified).length} event(s) failed` : `the event count did not verify (${h.count.error ?? ''})`}`;
    cap.className = h.complete ? 'ok' : 'bad';
  }
}

/** Human text for an error. */
export const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

// The patient page: open or create a key, see consents and every access (each row verified in
// the browser against a BLS certificate of the genesis consortium), grant and revoke consents.
// The secret key stays in this page's memory: no request ever carries it. It signs the gateway's
// token request (RFC 9421) and the txs; the token then names the patient on every read. What is
// shown is in plain words (who by name and role, what, why, when in local time, newest first);
// the technical details are behind "How is this checked?" (issue 27). The access history can be
// filtered (who, what, why, only emergencies, only rows not verified; the banner still counts
// every row) and downloaded as CSV or a FHIR Bundle built here from the verified rows only
// (history.ts).

import { decodeU64, fromUtf8, toHex } from '../bytes.ts';
import { HttpError, Session } from '../auth.ts';
import { broadcastAndConfirm, type Expectation, type Outcome } from '../broadcast.ts';
import * as keys from '../keys.ts';
import { actionName, decodeConsent, decodeKeyOwner, decodePendingPatientChange, grantConsent, purposeName, reviewName, revokeConsent, type Consent, type PendingPatientChange, type TxMsg } from '../messages.ts';
import { trustFingerprint } from '../cert.ts';
import { keyFileJson, newKey, signTx, type PatientKey } from '../tx.ts';
import type { Attested, Ledger, Read } from '../ledger.ts';
import { deniedText, gatewayBase, isDenied, loadInfo, loadTrust, makeLedger, msg, readHistory, showAttested, verifiedText, wireKeyInputs, type History, type Info } from './common.ts';
import { poll, POLL_EVERY_MS, SLOW_POLL_EVERY_MS, stream } from './live.ts';
import { describePending } from './pending.ts';
import { proveRelease, showRelease } from './release.ts';
import { keyOpened, wireRemember } from './remember.ts';
import { clearMyData, showMyData, wireMyData, type PageContext } from './mydata.ts';
import { clearBreakGlass, showBreakGlass } from './breakglass.ts';
import { checkAttempts, clearRefused, readRefused, refusedNameIds, showRefused } from './refused.ts';
import { clearNotify, notifyRows, wireNotify } from './notify.ts';
import { $, download, el, setStatus } from './dom.ts';
import { checkGrant, checkGrantee, grantConfirmation, revokeConfirmation, type CheckedGrant, type FormField } from './form.ts';
import { partyWords, readerWords, readNames, type NameBook } from './names.ts';
import { reportCell } from './report.ts';
import { actionWords, classWords, DATA_CLASSES, localTime, purposeWords, reasonWords, refusalWords, reviewWords, type Asked } from './words.ts';
import {
  checkRows,
  countShown,
  countText,
  downloadNote,
  exportable,
  fhirBundle,
  filterChoices,
  historyCsv,
  matches,
  newestFirst,
  NO_FILTER,
  type AccessRow,
  type Choice,
  type Filter,
  type Proven,
} from './history.ts';
import {
  backoffMs,
  checkPin,
  checkRollback,
  freshness,
  isOutage,
  OUTAGE_TEXT,
  pin,
  recordSeen,
  seenHeight,
  verdict,
  type Pin,
  type RowState,
  type Store,
} from './truth.ts';

/** How often a key the gateway does not know yet (not enrolled) tries to sign in again. */
const ENROL_RETRY_MS = 5000;

const state: {
  info?: Info;
  session?: Session;
  ledger?: Ledger;
  key?: PatientKey;
  patient?: string;
  at?: Attested;
  nextSeq: bigint;
  stopLive?: () => void;
  refreshing: boolean;
  /** The genesis trust root's chain id and fingerprint (what rollback and the pin are keyed by). */
  root?: Pin;
  /** The gateway served another consortium than the one pinned: nothing is read or shown. */
  blocked: boolean;
  /** Device time (ms) at which the certified height shown last advanced. */
  advancedAt: number;
  /** The last poll or read could not reach the gateway. */
  outage: boolean;
  /** The certified block time (unix seconds), when the ledger stores it and it verified. */
  blockTime?: bigint;
  /** The names read with the last refresh (grantees, readers). */
  names: NameBook;
  /** The access history shown (every row, verified or not), for the filters and the downloads. */
  history?: ShownHistory;
  /** The consents shown that verified (for "My data"'s download of everything). */
  consents: Consent[];
} = { nextSeq: 0n, refreshing: false, blocked: false, advancedAt: 0, outage: false, names: new Map(), consents: [] };

/** The access history as the last refresh showed it. */
interface ShownHistory {
  patient: string;
  rows: AccessRow[];
  names: NameBook;
  /** The verified state the rows were checked against (what a FHIR download names). */
  proven: Proven;
  complete: boolean;
  denied: boolean;
}

/** localStorage, or a memory stand-in where the browser refuses it (rollback then per page load). */
const store: Store = (() => {
  try {
    const s = window.localStorage;
    s.getItem('medledger/probe');
    return s;
  } catch {
    const m = new Map<string, string>();
    return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v) };
  }
})();

/** A refresh found a certified height older than one this browser saw before. */
class RollbackError extends Error {}

/** Resolves once the session and the trust root are set up (or failed, said in #status). */
let ready: Promise<void> = Promise.resolve();

async function main(): Promise<void> {
  wireKeyInputs((k) => void setKey(k));
  void wireRemember((k, note) => void setKey(k, note));
  void showRelease();
  $('#key-create').addEventListener('click', () => {
    const k = newKey('patient');
    download('medledger-patient-key.json', keyFileJson(k));
    void setKey(k, 'New key created and downloaded: keep the file safe. Hand the public key below to your hospital to be enrolled.');
  });
  wireGrant();
  wireHistory();
  wireNotify(() => (state.patient ? state.session : undefined));
  wireMyData({ context: myDataContext, refresh: (min) => refresh(min), status: setStatus });
  $('#trust-accept').addEventListener('click', acceptNewConsortium);
  setInterval(showFreshness, 5000);
  ready = (async () => {
    try {
      state.info = await loadInfo();
    } catch (e) {
      setStatus(`The gateway's /api/info is unavailable (${msg(e)}); signing in uses this page's address.`, 'error');
    }
    state.session = new Session({ gateway: gatewayBase(state.info) });
    state.ledger = makeLedger(state.session);
    for (let failures = 0; ; failures++) {
      try {
        const t = await loadTrust(state.ledger, state.info);
        state.root = { chainId: t.chainId, fingerprint: trustFingerprint(t) };
        showMembers(state.ledger.genesisMembers);
        checkConsortium();
        if (!state.key && !state.blocked) setStatus('Open your key to see your consents and every access to your data.', 'info');
        return;
      } catch (e) {
        if (!isOutage(e)) {
          setStatus(`Cannot establish the trust root: ${msg(e)}`, 'error');
          return;
        }
        setStatus(OUTAGE_TEXT, 'error');
        setLive(false, e);
        await new Promise((r) => setTimeout(r, backoffMs(failures + 1)));
      }
    }
  })();
}

// ---- the consortium pin ----

/** Pins the trust root on first use; another one later stops the page until accepted. */
function checkConsortium(): void {
  const now = state.root!;
  const d = checkPin(store, now);
  const box = $('#trust-warning');
  if (d.kind === 'first-use') pin(store, d.pin);
  if (d.kind !== 'changed') {
    state.blocked = false;
    box.hidden = true;
    return;
  }
  state.blocked = true;
  clearPatient();
  $('#trust-warning-text').textContent =
    `STOP: this gateway serves a different consortium than the one this browser trusted before. Pinned: chain ${d.pinned.chainId}, fingerprint ${d.pinned.fingerprint.slice(0, 32)}; now: chain ${d.now.chainId}, fingerprint ${d.now.fingerprint.slice(0, 32)}. Nothing is shown as verified. Accept the new one only if your consortium published this fingerprint.`;
  box.hidden = false;
  setStatus('The consortium (trust root) changed: nothing is read until you accept it.', 'error');
}

function acceptNewConsortium(): void {
  if (!state.root || !state.blocked) return;
  pin(store, state.root);
  state.blocked = false;
  $('#trust-warning').hidden = true;
  setStatus('New consortium accepted and pinned.', 'info');
  const k = state.key;
  if (k) void setKey(k);
}

// ---- the key ----

async function setKey(k: PatientKey, note?: string): Promise<void> {
  state.key = k;
  state.patient = undefined;
  state.at = undefined;
  state.nextSeq = 0n;
  state.stopLive?.();
  state.stopLive = undefined;
  wanted = 0n;
  setLive(false);
  clearPatient();
  $('#public-key').textContent = toHex(k.publicKey);
  keyOpened(k);
  $('#key-section').classList.add('has-key');
  await ready;
  if (state.key !== k || state.blocked) return;
  state.session!.setKey(k);
  await signIn(k, note);
}

/** Clears everything shown of the previous patient before anything of the next is. */
function clearPatient(): void {
  $('#patient-id').textContent = '';
  $('#enrol-hint').hidden = true;
  clearPending();
  for (const id of ['#consents', '#accesses']) {
    const t = $<HTMLTableElement>(id);
    t.tBodies[0]?.replaceChildren();
    t.hidden = true;
    const cap = t.querySelector('caption');
    if (cap) cap.textContent = '';
  }
  for (const id of ['#consents-summary', '#accesses-summary']) {
    $(id).textContent = '';
    $(id).className = 'summary';
  }
  const v = $('#verdict');
  v.hidden = true;
  v.textContent = '';
  v.removeAttribute('data-verdict');
  state.advancedAt = 0;
  state.blockTime = undefined;
  state.names = new Map();
  clearHistoryTools();
  clearBreakGlass();
  clearRefused();
  clearNotify();
  state.consents = [];
  clearMyData();
  $('#cert-height').textContent = '–';
  $('#cert-detail').textContent = '';
  const t = $('#cert-time');
  t.textContent = '';
  t.className = '';
  t.setAttribute('data-stale', 'no');
  // The previous patient's half-filled form goes too.
  $<HTMLFormElement>('#grant-form').reset();
  $('#grant-study-box').hidden = true;
  $('#grant-grantee-name').textContent = '';
  showFormError();
}

let signInFailures = 0;

/** Gets a token for `k`; a key the ledger does not know yet is retried every few seconds. */
async function signIn(k: PatientKey, note?: string): Promise<void> {
  if (state.key !== k) return;
  setStatus(note ?? 'Signing in to the gateway with your key (a signature; the key stays here)…', note ? 'ok' : 'info');
  try {
    await state.session!.login();
  } catch (e) {
    if (state.key !== k) return;
    if (e instanceof HttpError && e.status === 403) {
      $('#enrol-hint').hidden = false;
      setStatus(`${note ? `${note} ` : ''}The gateway knows no role for this key: it is not enrolled yet. Give your public key to your hospital; this page tries again every few seconds.`, note ? 'ok' : 'info');
      setTimeout(() => void signIn(k, note), ENROL_RETRY_MS);
      return;
    }
    if (e instanceof HttpError && e.status === 429) {
      setStatus(`Signing in: the gateway is busy (${msg(e)}); trying again shortly.`, 'error');
      setTimeout(() => void signIn(k, note), Math.max(ENROL_RETRY_MS, (e.retryAfterSecs ?? 0) * 1000));
      return;
    }
    if (isOutage(e)) {
      setStatus(OUTAGE_TEXT, 'error');
      setLive(false, e);
      signInFailures++;
      setTimeout(() => void signIn(k, note), backoffMs(signInFailures));
      return;
    }
    setStatus(`Could not sign in to the gateway: ${msg(e)}`, 'error');
    return;
  }
  signInFailures = 0;
  await refresh();
}

function setLive(live: boolean, _why?: unknown): void {
  const l = $('#live');
  l.textContent = live ? 'live' : 'offline';
  l.className = live ? 'ok' : 'bad';
  l.setAttribute('data-live', live ? 'yes' : 'no');
}

/** The poll's answer: an outage is said in words (and the status restored once it is over). */
function onPollState(live: boolean, why?: unknown): void {
  setLive(live, why);
  if (!live && isOutage(why)) {
    state.outage = true;
    setStatus(OUTAGE_TEXT, 'error');
  } else if (live && state.outage) {
    state.outage = false;
    setStatus('The gateway can be reached again.', 'info');
  }
}

/**
 * How old the state shown is: the certified block time when the ledger proves one (warned when
 * more than 2 minutes old), else how long ago the certified height last advanced.
 */
function showFreshness(): void {
  const t = $('#cert-time');
  if (!state.at || !state.advancedAt) return;
  const f = freshness(Date.now(), state.advancedAt, state.blockTime, (secs) => localTime(secs));
  t.textContent = f.text;
  t.className = f.stale ? 'stale' : '';
  t.setAttribute('data-stale', f.stale ? 'yes' : 'no');
}

// ---- reading, verified ----

/**
 * Re-reads everything at a certified height ≥ `minHeight` (0: the latest). Calls made while a
 * refresh runs are coalesced into one more; each resolves once a refresh at a height ≥ its own
 * `minHeight` finished (or the next one failed).
 */
function refresh(minHeight = 0n): Promise<void> {
  return new Promise((resolve) => {
    waiters.push({ min: minHeight, resolve });
    if (minHeight > wanted) wanted = minHeight;
    if (!state.refreshing) void loop();
  });
}

const waiters: { min: bigint; resolve: () => void }[] = [];
let readFailures = 0;
let wanted = 0n;

async function loop(): Promise<void> {
  state.refreshing = true;
  while (waiters.length > 0) {
    const min = wanted;
    const batch = waiters.splice(0, waiters.length);
    try {
      await refreshOnce(min);
    } catch (e) {
      if (e instanceof RollbackError) setStatus(e.message, 'error');
      else if (isDenied(e)) setStatus(deniedText('the ledger state this page needs', e), 'warn');
      else if (isOutage(e)) {
        setStatus(OUTAGE_TEXT, 'error');
        setLive(false, e);
        state.outage = true;
        // Before polling runs (the first read failed), retry here, backing off.
        if (!state.stopLive && state.key) {
          const k = state.key;
          readFailures++;
          setTimeout(() => state.key === k && !state.stopLive && void refresh(), backoffMs(readFailures));
        }
      } else setStatus(`Could not read the ledger: ${msg(e)}`, 'error');
      batch.forEach((w) => w.resolve());
      continue;
    }
    readFailures = 0;
    state.outage = false;
    const at = state.at?.height ?? 0n;
    for (const w of batch) (w.min <= at ? w.resolve() : waiters.push(w));
  }
  state.refreshing = false;
}

async function refreshOnce(minHeight: bigint): Promise<void> {
  const key = state.key;
  const L = state.ledger;
  if (!key || !L) return;
  if (state.blocked) return;
  if (!state.root) throw new Error('the trust root (the consortium in genesis) is not established; reload the page');
  if (minHeight > 0n) await L.waitForCertifiedHeight(minHeight);
  const at = await L.attest();
  if (state.key !== key || state.blocked) return;
  // Never show a certified height older than one this browser has seen for this consortium.
  const root = state.root;
  const rb = checkRollback(seenHeight(store, root.chainId, root.fingerprint), at.height);
  if (!rb.ok) {
    const v = $('#verdict');
    v.hidden = false;
    v.className = 'status error';
    v.textContent = rb.text;
    v.setAttribute('data-verdict', 'rollback');
    throw new RollbackError(rb.text);
  }
  recordSeen(store, root.chainId, root.fingerprint, at.height);
  if (!state.at || at.height > state.at.height) state.advancedAt = Date.now();
  state.at = at;
  showAttested(at);
  void proveRelease(L, at).catch(() => undefined);
  const hex = toHex(key.publicKey);
  const [owner, seq, time] = await L.readMany(at, [keys.keyOwner(hex), keys.sequence(hex), keys.blockTime()]);
  if (seq.verified) {
    const s = seq.value ? decodeU64(seq.value) : 0n;
    if (s > state.nextSeq) state.nextSeq = s;
  }
  if (state.key !== key) return;
  // The certified block time: shown when proven; a gateway refusing it (or a ledger without it)
  // leaves the page judging age by when the certified height last advanced.
  state.blockTime = time.verified && time.value ? decodeU64(time.value) : undefined;
  const timeRows: RowState[] = time.verified || time.denied ? [] : [time];
  if (owner.denied) {
    setStatus(deniedText("your key's owner record"), 'warn');
    return;
  }
  if (!owner.verified) {
    $('#patient-id').textContent = '';
    clearPending();
    setStatus(`Who your key belongs to could NOT be verified: ${owner.error}`, 'error');
    return;
  }
  if (!owner.value) {
    $('#patient-id').textContent = '';
    clearPending();
    $('#enrol-hint').hidden = false;
    setStatus('This key is not enrolled yet (the ledger proves it holds no such key). Give your public key to your hospital; this page checks again every few seconds.', 'info');
    setTimeout(() => state.key === key && !state.patient && void refresh(), ENROL_RETRY_MS);
    return;
  }
  const o = decodeKeyOwner(owner.value);
  if (o.kind !== 'patient_id') {
    clearPending();
    setStatus(o.kind === 'retired_patient_key' ? `This key was replaced by a newer one for patient ${o.id}; it can no longer sign. Open your current key file.` : `This key belongs to a ${o.kind.replace(/_/g, ' ')} (${o.id}), not a patient.`, 'error');
    return;
  }
  $('#enrol-hint').hidden = true;
  const first = state.patient === undefined;
  state.patient = o.id;
  $('#patient-id').textContent = o.id;
  const [pendingRows, consents, history, myDataRows, refused] = await Promise.all([
    refreshPending(at, o.id, key),
    readConsents(at, o.id),
    readHistory(L, at, o.id),
    showMyData(L, at, o.id, key, () => state.key === key),
    readRefused(L, at, o.id),
  ]);
  if (state.key !== key) return;
  state.consents = consents.rows.flatMap((r) => (r.ok && r.consent ? [r.consent] : []));
  // Names only of what verified: an altered row's ids are shown as they came, never looked up.
  const names = await readNames(L, at, [
    ...consents.rows.flatMap((r) => (r.ok && r.consent ? [r.consent.grantee] : [])),
    ...history.rows.flatMap((r, i) => (r.read.verified && r.event && r.event.index === BigInt(i) ? [r.event.actor, r.event.practitioner, r.event.reviewer, r.event.reportReviewer] : [])),
    ...refusedNameIds(refused, o.id),
  ]);
  if (state.key !== key) return;
  state.names = names;
  const rows: RowState[] = [
    owner,
    ...timeRows,
    ...pendingRows,
    ...renderConsents(consents, names),
    ...renderAccesses(history, names, o.id, { chainId: L.chainId ?? '', height: at.height, appHashHex: toHex(at.appHash).toUpperCase() }),
    ...showRefused(refused, names, o.id),
    ...[...names.values()].map((r) => ({ verified: r.verified, denied: r.denied })),
    ...myDataRows,
  ];
  // Break-glass up front: the banner at the top, its reasons fetched from the members that keep them.
  const shown = state.history;
  // Notifications (opt-in): the rows new since the key was opened, once verified.
  notifyRows(o.id, shown && !shown.denied && shown.patient === o.id ? shown.rows : undefined, refused.count.denied ? undefined : checkAttempts(refused.items, o.id), names);
  if (shown) showBreakGlass(shown.rows, names, o.id, shown.denied, { fetchFn: (u, i) => fetch(u, i), ledger: L, at, seed: key.seed, current: () => state.key === key });
  const v = verdict(rows, at.height);
  const box = $('#verdict');
  box.hidden = false;
  box.className = `status ${v.kind}`;
  box.textContent = v.text;
  box.setAttribute('data-verdict', v.kind);
  showFreshness();
  if (first) startLive(at.height);
  if (first) setStatus(`Signed in as patient ${o.id}: your consents and every access to your data are below, newest first.`, 'info');
}

// ---- pending guardian change or key rotation (issue 23) ----

function clearPending(): void {
  const box = $('#pending');
  box.hidden = true;
  box.replaceChildren();
}

/**
 * Reads `guardian-change/{patient}` at the attested state, verified like every row: a pending
 * guardian set or key rotation is shown as a warning (a thief holding the key would have signed
 * it; the guardians can still recover during the delay), a proven absence as one small line.
 */
async function refreshPending(at: Attested, patient: string, key: PatientKey): Promise<RowState[]> {
  const r = await state.ledger!.read(at, keys.guardianChange(patient));
  if (state.key !== key) return [];
  let p: PendingPatientChange | undefined;
  let error = r.error;
  if (r.value) {
    try {
      p = decodePendingPatientChange(r.value);
    } catch (e) {
      error = `does not decode as a PendingPatientChange: ${msg(e)}`;
    }
  }
  const ok = r.verified && error === undefined;
  const d = p ? describePending(p, Date.now() / 1000, (secs) => localTime(secs)) : undefined;
  const box = $('#pending');
  const proof = el('div', { class: 'small', 'data-error': error ?? '' }, 'Checked: ', verifiedText(ok, !!r.denied));
  box.hidden = false;
  box.setAttribute('data-verified', ok ? 'yes' : 'no');
  box.setAttribute('data-pending', d ? 'yes' : r.denied ? 'unknown' : ok ? 'no' : 'unknown');
  if (r.denied) {
    box.className = 'pending-none small';
    box.replaceChildren('Pending changes to your guardians or key: ', verifiedText(false, true));
  } else if (d) {
    box.className = `pending${ok ? '' : ' unverified'}`;
    box.replaceChildren(el('strong', {}, d.headline), ' ', d.advice, proof);
  } else if (ok) {
    box.className = 'pending-none small';
    box.replaceChildren('No pending change to your guardians or key: ', verifiedText(true), '.');
  } else {
    box.className = 'pending unverified';
    box.replaceChildren(el('strong', {}, 'Whether a change to your guardians or key is pending could NOT be verified.'), ` ${error ?? ''}`, proof);
  }
  return [{ verified: ok, denied: r.denied }];
}

/** The patient's consents as read at one state: the list, and each consent checked against it. */
interface Consents {
  count: Read;
  n: bigint;
  rows: { id: string; index: Read; read: Read; consent?: Consent; ok: boolean; reason?: string }[];
}

async function readConsents(at: Attested, patient: string): Promise<Consents> {
  const L = state.ledger!;
  const list = await L.readList(at, keys.patientConsentCount(patient), (n) => keys.patientConsent(patient, n));
  const ids = list.items.map((r) => {
    try {
      return r.value ? fromUtf8(r.value) : '';
    } catch {
      return '';
    }
  });
  const reads = await L.readMany(at, ids.map((id) => keys.consent(id || '?')));
  const rows = reads.map((read, i) => {
    const id = ids[i];
    const index = list.items[i];
    let consent: Consent | undefined;
    let reason = index.error ?? read.error;
    try {
      consent = read.value ? decodeConsent(read.value) : undefined;
    } catch {
      reason = 'the consent does not decode';
    }
    if (!reason && !consent) reason = 'the ledger holds no such consent';
    if (!reason && consent && (consent.id !== id || consent.patientId !== patient)) reason = 'the consent is not the one your list names';
    const ok = index.verified && read.verified && !reason;
    return { id, index, read, consent, ok, reason: ok ? undefined : reason };
  });
  return { count: list.count, n: list.n, rows };
}

/** Fills the consents table (newest first) and its summary; the rows' states for the banner. */
function renderConsents(c: Consents, names: NameBook): RowState[] {
  const table = $<HTMLTableElement>('#consents');
  const body = table.tBodies[0] ?? table.appendChild(el('tbody'));
  body.replaceChildren(...c.rows.map((r) => consentRow(r, names)).reverse());
  table.hidden = c.rows.length === 0;
  const cap = table.querySelector('caption');
  if (cap) cap.textContent = 'Your consents, newest first';
  const denied = [c.count, ...c.rows.flatMap((r) => [r.index, r.read])].some((r) => r.denied);
  const ok = c.count.verified && c.rows.every((r) => r.ok);
  const active = c.rows.filter((r) => r.ok && r.consent?.revokedHeight === 0n).length;
  const sum = $('#consents-summary');
  sum.className = `summary ${denied ? 'denied' : ok ? 'ok' : 'bad'}`;
  sum.textContent = denied
    ? deniedText('your list of consents')
    : !c.count.verified
      ? `Your list of consents could NOT be verified: ${c.count.error ?? ''}`
      : ok
        ? c.rows.length === 0
          ? 'You have given no consents (verified).'
          : `${active} active of ${c.rows.length} consent(s); the list is complete and every consent verified.`
        : `${c.rows.filter((r) => !r.ok).length} consent(s) could NOT be verified.`;
  return [{ verified: c.count.verified, denied: c.count.denied }, ...c.rows.map((r) => ({ verified: r.ok, denied: !!(r.read.denied || r.index.denied) }))];
}

/** "verified" / "NOT verified" / "not permitted", with the reason in plain sight (not a tooltip). */
function proofCell(ok: boolean, denied: boolean, reason?: string): (Node | string)[] {
  const out: (Node | string)[] = [verifiedText(ok, denied)];
  if (!ok && !denied && reason) out.push(el('div', { class: 'why', 'data-error': reason }, `Why: ${reasonWords(reason)}`));
  return out;
}

const dateOnly = (secs: bigint) => localTime(secs);

function consentRow(r: Consents['rows'][number], names: NameBook): HTMLTableRowElement {
  const c = r.consent;
  const id = r.id;
  const active = !!c && c.revokedHeight === 0n;
  const who = c ? partyWords(names, c.grantee) : undefined;
  const when = c ? `${c.notBefore ? `From ${dateOnly(c.notBefore)}` : 'From when given'}${c.notAfter ? ` until ${dateOnly(c.notAfter)}` : ', no end date'}` : '';
  const what = c
    ? [c.dataClasses.map(classWords).join('; '), c.denyClasses.length ? ` except ${c.denyClasses.map(classWords).join('; ')}` : '', c.recordIds.length ? `; also records ${c.recordIds.join(', ')}` : ''].join('')
    : '';
  const why = c ? c.purposes.map((p) => purposeWords(purposeName(p))).join('; ') + (c.studyId ? ` — study ${c.studyId}` : '') : '';
  const denied = !!(r.read.denied || r.index.denied);
  const revoke = active && r.ok
    ? el('button', { class: 'revoke', type: 'button', 'data-consent-id': id }, 'Revoke', el('span', { class: 'visually-hidden' }, ` consent ${id} to ${who?.main ?? c?.grantee ?? ''}`))
    : null;
  revoke?.addEventListener('click', () => {
    if (!window.confirm(revokeConfirmation(id, who && who.main !== c?.grantee ? `${who.main} (${c?.grantee})` : (c?.grantee ?? '?')))) return;
    void submit(revokeConsent(id), `Revoke consent ${id}`, { consentId: id });
  });
  return el(
    'tr',
    {
      class: `consent-row${active ? '' : ' revoked'}${r.ok ? '' : ' unverified'}`,
      'data-consent-id': id,
      'data-status': active ? 'active' : 'revoked',
      'data-verified': r.ok ? 'yes' : 'no',
    },
    el('td', { 'data-label': 'Consent' }, id),
    el('td', { 'data-label': 'Who' }, who?.main ?? '', who?.detail ? el('div', { class: 'small' }, who.detail) : ''),
    el('td', { 'data-label': 'What' }, what),
    el('td', { 'data-label': 'Why' }, why),
    el('td', { 'data-label': 'When' }, when),
    el('td', { 'data-label': 'Status' }, active ? 'Active' : c ? 'Revoked' : '?'),
    el('td', { 'data-label': 'Checked' }, ...proofCell(r.ok, denied, r.reason), revoke ? ' ' : '', revoke),
  );
}

/** Fills the access table (newest first) and its summary; the rows' states for the banner (all rows, whatever the filters show). */
function renderAccesses(h: History, names: NameBook, patient: string, proven: Proven): RowState[] {
  const table = $<HTMLTableElement>('#accesses');
  const body = table.tBodies[0] ?? table.appendChild(el('tbody'));
  const rows = checkRows(h.rows, patient);
  body.replaceChildren(...newestFirst(rows).map((r) => accessRow(r, names, patient)));
  table.hidden = rows.length === 0;
  const cap = table.querySelector('caption');
  if (cap) cap.textContent = 'Every access to your data, newest first';
  const emergencies = rows.filter((r) => r.event?.breakGlass).length;
  const sum = $('#accesses-summary');
  sum.className = `summary ${h.denied ? 'denied' : h.complete ? 'ok' : 'bad'}`;
  sum.textContent = h.denied
    ? deniedText('your access history')
    : h.complete
      ? h.n === 0n
        ? 'No one has accessed your data (verified: the history is complete and empty).'
        : `${h.n} access(es) to your data; the history is complete and every entry verified.${emergencies === 1 ? ' 1 of them was an emergency access without your consent.' : emergencies ? ` ${emergencies} of them were emergency accesses without your consent.` : ''}`
      : `Your history could NOT be verified complete: ${h.count.verified ? `${rows.filter((r) => !r.ok).length} entry(ies) could NOT be verified` : `its length could NOT be verified (${h.count.error ?? ''})`}.`;
  state.history = { patient, rows, names, proven, complete: h.complete, denied: h.denied };
  showHistoryTools();
  return [{ verified: h.count.verified, denied: h.count.denied }, ...rows.map((r) => ({ verified: r.ok, denied: r.denied }))];
}

function accessRow(r: AccessRow, names: NameBook, patient: string): HTMLTableRowElement {
  const e = r.event;
  const bg = !!e?.breakGlass;
  const who = e ? readerWords(names, e.actor, e.practitioner, patient) : undefined;
  const action = e ? actionName(e.action) : 'READ';
  return el(
    'tr',
    {
      class: `access-row${bg ? ' break-glass' : ''}${r.ok ? '' : ' unverified'}`,
      'data-index': String(r.index),
      'data-record-id': e?.recordId ?? '',
      'data-actor': e?.actor ?? '',
      'data-practitioner': e?.practitioner ?? '',
      'data-height': e ? e.height.toString() : '',
      'data-verified': r.ok ? 'yes' : 'no',
      'data-break-glass': bg ? 'yes' : 'no',
    },
    el('td', { 'data-label': 'When' }, e ? localTime(e.time) : ''),
    el('td', { 'data-label': 'Who' }, who?.main ?? '', who?.detail ? el('div', { class: 'small' }, who.detail) : ''),
    el('td', { 'data-label': 'What' }, e ? classWords(e.dataClass) : '', e ? el('div', { class: 'small' }, `${action === 'READ' ? '' : `${actionWords(action)} · `}record ${e.recordId}`) : ''),
    el('td', { 'data-label': 'Why' }, e ? purposeWords(purposeName(e.purpose)) : ''),
    el(
      'td',
      { 'data-label': 'Allowed by' },
      bg ? el('strong', { class: 'bg-flag' }, 'Emergency access without your consent') : e?.consentId ? `Your consent ${e.consentId}` : '',
      bg ? el('div', { class: 'small review' }, `Emergency access (break-glass), ${reviewWords(reviewName(e!.review), e!.reviewer)}`) : '',
    ),
    el('td', { 'data-label': 'Checked' }, ...proofCell(r.ok, r.denied, r.reason), ...reportCell(r, names, patient, (m, what) => submit(m, what, { report: what }))),
  );
}

/** What "My data" needs of the page when it acts (undefined until a patient is shown). */
function myDataContext(): PageContext | undefined {
  const { key, patient, ledger } = state;
  if (!key || !patient || !ledger) return undefined;
  const h = state.history;
  const x = h && !h.denied && h.patient === patient ? exportable(h.rows) : undefined;
  return {
    ledger,
    key,
    patient,
    ownMember: state.info?.member_id,
    consents: state.consents,
    history: x && h ? { events: x.events, leftOut: x.leftOut, proven: h.proven } : undefined,
  };
}

// ---- the history's filters and downloads ----

const FILTER_SELECTS = { who: '#filter-who', type: '#filter-type', purpose: '#filter-purpose' } as const;
const FILTER_ALL: Record<keyof typeof FILTER_SELECTS, string> = { who: 'Everyone', type: 'All kinds of data', purpose: 'Any reason' };

function wireHistory(): void {
  for (const sel of [...Object.values(FILTER_SELECTS), '#filter-break-glass', '#filter-problems']) $(sel).addEventListener('change', applyFilter);
  $('#filter-clear').addEventListener('click', () => {
    setFilter(NO_FILTER);
    applyFilter();
  });
  $('#download-csv').addEventListener('click', () => downloadHistory('csv'));
  $('#download-fhir').addEventListener('click', () => downloadHistory('fhir'));
}

function readFilter(): Filter {
  return {
    who: $<HTMLSelectElement>(FILTER_SELECTS.who).value,
    type: $<HTMLSelectElement>(FILTER_SELECTS.type).value,
    purpose: $<HTMLSelectElement>(FILTER_SELECTS.purpose).value,
    breakGlass: $<HTMLInputElement>('#filter-break-glass').checked,
    problems: $<HTMLInputElement>('#filter-problems').checked,
  };
}

function setFilter(f: Filter): void {
  for (const k of ['who', 'type', 'purpose'] as const) $<HTMLSelectElement>(FILTER_SELECTS[k]).value = f[k];
  $<HTMLInputElement>('#filter-break-glass').checked = f.breakGlass;
  $<HTMLInputElement>('#filter-problems').checked = f.problems;
}

/** Refills a filter's options ("all" first), keeping what was picked. */
function fillSelect(k: keyof typeof FILTER_SELECTS, choices: Choice[]): void {
  const s = $<HTMLSelectElement>(FILTER_SELECTS[k]);
  const picked = s.value;
  s.replaceChildren(el('option', { value: '' }, FILTER_ALL[k]), ...choices.map((c) => el('option', { value: c.value }, c.label)));
  s.value = picked;
}

/** Shows the filters and downloads for the history just rendered, keeping the filters picked. */
function showHistoryTools(): void {
  const h = state.history;
  $('#history-tools').hidden = !h || h.denied || h.rows.length === 0;
  $('#history-download').hidden = !h || h.denied;
  if (!h) return;
  const c = filterChoices(h.rows, h.names, readFilter());
  fillSelect('who', c.who);
  fillSelect('type', c.type);
  fillSelect('purpose', c.purpose);
  const x = exportable(h.rows);
  const note = $('#download-note');
  note.textContent = downloadNote(x, h.complete);
  note.className = x.leftOut || !h.complete ? 'small bad' : 'small';
  const box = $('#history-download');
  box.setAttribute('data-kept', String(x.events.length));
  box.setAttribute('data-left-out', String(x.leftOut));
  applyFilter();
}

/** Hides the rows the filters leave out and says "showing N of M" (the banner counts every row). */
function applyFilter(): void {
  const h = state.history;
  const out = $('#history-count');
  if (!h) {
    out.textContent = '';
    return;
  }
  const f = readFilter();
  const byIndex = new Map(h.rows.map((r) => [r.index, r]));
  for (const tr of $<HTMLTableElement>('#accesses').tBodies[0]?.rows ?? []) {
    const r = byIndex.get(Number(tr.getAttribute('data-index')));
    tr.hidden = !r || !matches(r, f);
  }
  const s = countShown(h.rows, f);
  out.textContent = countText(s);
  out.className = s.hiddenProblems ? 'small bad' : 'small';
  out.setAttribute('data-shown', String(s.shown));
  out.setAttribute('data-total', String(s.total));
  out.setAttribute('data-hidden-problems', String(s.hiddenProblems));
}

/** Forgets the previous patient's history tools: filters reset, options and notes emptied. */
function clearHistoryTools(): void {
  state.history = undefined;
  setFilter(NO_FILTER);
  for (const k of ['who', 'type', 'purpose'] as const) fillSelect(k, []);
  for (const id of ['#history-count', '#download-note', '#download-done']) $(id).textContent = '';
  $('#history-tools').hidden = true;
  $('#history-download').hidden = true;
}

/** Saves the verified rows of the history as CSV or as a FHIR R4 Bundle (built here, from the proven rows only). */
function downloadHistory(kind: 'csv' | 'fhir'): void {
  const h = state.history;
  if (!h || h.denied) return;
  const x = exportable(h.rows);
  const name = `access-history-${h.patient}.${kind === 'csv' ? 'csv' : 'fhir.json'}`;
  if (kind === 'csv') {
    // The byte order mark lets spreadsheets read the names as UTF-8.
    download(name, `\ufeff${historyCsv(x.events, h.names)}`, 'text/csv;charset=utf-8');
  } else {
    download(name, `${JSON.stringify(fhirBundle(h.patient, x.events, h.proven, x.leftOut), null, 2)}\n`, 'application/fhir+json');
  }
  const n = x.events.length;
  $('#download-done').textContent = `Saved ${name}: ${n === 1 ? '1 verified access' : `${n} verified accesses`}${x.leftOut ? `, ${x.leftOut} not verified left out` : ''}.`;
}

/** The genesis members, as suggestions for the consent form's "who". */
function showMembers(members: { id: string; name: string }[]): void {
  $('#grantee-list').replaceChildren(...members.map((m) => el('option', { value: m.id }, m.name ? `${m.name}` : m.id)));
  $('#grantee-members').textContent = members.length ? members.map((m) => (m.name ? `${m.name} (${m.id})` : m.id)).join(', ') : 'none listed';
}

// ---- live ----

/**
 * The gateway's stream says when a block touched this patient: the page re-reads, verified, at
 * a certified height that includes that block. The certified height is polled beside it, slowly
 * while the stream is up and every 2 s while it is down; each advance re-reads too.
 */
function startLive(from: bigint): void {
  const L = state.ledger!;
  const S = state.session!;
  const patient = state.patient!;
  state.stopLive?.();
  let streaming = false;
  const stopPoll = poll({
    latest: () => L.latestCertifiedHeight(),
    from,
    onState: onPollState,
    onAdvance: (height) => refresh(height),
    everyMs: () => (streaming ? SLOW_POLL_EVERY_MS : POLL_EVERY_MS),
  });
  const stopStream = stream({
    open: () => S.fetch(`/live?patient=${encodeURIComponent(patient)}`),
    onChange: (height) => refresh(height),
    onState: (up) => {
      streaming = up;
      document.body.setAttribute('data-live-stream', up ? 'up' : 'down');
    },
  });
  state.stopLive = () => {
    stopPoll();
    stopStream();
  };
}

// ---- transactions ----

function wireGrant(): void {
  $('#grant-classes').append(
    ...DATA_CLASSES.map((c) =>
      el('label', { class: 'check' }, el('input', { type: 'checkbox', name: 'grant-class', value: c.value }), ` ${c.words}`, c.value === '*' ? '' : el('span', { class: 'small' }, ` (${c.value})`)),
    ),
  );
  const purpose = $<HTMLSelectElement>('#grant-purpose');
  purpose.addEventListener('change', () => {
    $('#grant-study-box').hidden = purpose.value !== 'HRESCH';
  });
  // Say who an id names as soon as it is typed, from the proven state shown.
  $<HTMLInputElement>('#grant-grantee').addEventListener('change', () => void describeGrantee());
  $('#grant-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void grant();
  });
}

function formInput() {
  return {
    grantee: $<HTMLInputElement>('#grant-grantee').value,
    classes: [...document.querySelectorAll<HTMLInputElement>('#grant-classes input[name=grant-class]:checked')].map((i) => i.value),
    purpose: $<HTMLSelectElement>('#grant-purpose').value,
    study: $<HTMLInputElement>('#grant-study').value,
  };
}

const FIELD_INPUT: Record<FormField, string> = { grantee: '#grant-grantee', classes: '#grant-classes input', purpose: '#grant-purpose', study: '#grant-study' };

/** Shows the form's problem next to it (and marks the field), or clears it. */
function showFormError(field?: FormField, text?: string): void {
  const box = $('#grant-error');
  box.hidden = !text;
  box.textContent = text ?? '';
  for (const sel of Object.values(FIELD_INPUT)) document.querySelector(sel)?.removeAttribute('aria-invalid');
  if (field && text) {
    const input = document.querySelector<HTMLElement>(FIELD_INPUT[field]);
    input?.setAttribute('aria-invalid', 'true');
    input?.focus();
  }
}

/** Reads the grantee's record at the state shown: a name to confirm, or why nothing is sent. */
async function lookUpGrantee(grantee: string): Promise<ReturnType<typeof checkGrantee>> {
  const L = state.ledger;
  const at = state.at;
  if (!L || !at) return { ok: false, text: 'Open your key first: the page checks who you grant to against the ledger.' };
  const r = await L.read(at, grantee.startsWith('did:') ? keys.practitioner(grantee) : keys.member(grantee));
  return checkGrantee(grantee, r);
}

async function describeGrantee(): Promise<void> {
  const out = $('#grant-grantee-name');
  const f = checkGrant({ ...formInput(), classes: ['*'], purpose: 'TREAT' });
  if (!f.ok || !state.at) {
    out.textContent = '';
    return;
  }
  const g = await lookUpGrantee(f.grant.grantee);
  out.textContent = g.ok ? `That is ${g.name}.` : g.text;
  out.className = g.ok ? 'small' : 'small bad';
}

async function grant(): Promise<void> {
  showFormError();
  const f = checkGrant(formInput());
  if (!f.ok) {
    showFormError(f.field, f.text);
    return;
  }
  const g: CheckedGrant = f.grant;
  if (!state.key || !state.patient) {
    showFormError(undefined, 'Open an enrolled key first.');
    return;
  }
  const who = await lookUpGrantee(g.grantee);
  if (!who.ok) {
    showFormError('grantee', who.text);
    return;
  }
  const ask = grantConfirmation(who.name, g.dataClasses);
  if (ask && !window.confirm(ask)) return;
  await submit(grantConsent(g), `Consent to ${who.name}`, { grantee: g.grantee });
}

let busy = false;

/** The outcome of a grant or revoke in plain words (the ledger's heights in brackets, for support). */
function outcomeText(o: Outcome, what: string, asked: Asked): string {
  if (o.kind === 'refused') return `${what}: not done. ${refusalWords(o.code, asked)}`;
  if (o.kind === 'verified') {
    if (asked.report) return `Reported — a privacy officer of another member will review it. The ledger confirms it (committed at height ${o.height} and verified at certified height ${o.certified}).`;
    const done = asked.consentId ? `consent ${asked.consentId} is revoked` : `given${o.consentId ? ` (consent ${o.consentId})` : ''}`;
    return `${what}: done — ${done}. The ledger confirms it (committed at height ${o.height} and verified at certified height ${o.certified}).`;
  }
  return `${what}: NOT confirmed by the ledger. The gateway said it was done (height ${o.height}), but the ledger does not show it${o.certified ? ` at certified height ${o.certified}` : ''}. What you see below is what the ledger holds: try again later, or through another hospital's gateway.`;
}

async function submit(m: TxMsg, what: string, asked: Asked): Promise<void> {
  const key = state.key;
  const L = state.ledger;
  const chainId = L?.chainId;
  if (!key || !L || !state.patient || !chainId) {
    setStatus('Open an enrolled key first.', 'error');
    return;
  }
  if (busy) {
    setStatus(`${what}: not sent — the previous change is still being confirmed; try again in a moment.`, 'error');
    return;
  }
  busy = true;
  document.body.classList.add('busy');
  try {
    setStatus(`${what}: signing and sending…`, 'info');
    const seq = state.nextSeq;
    const tx = signTx(key, chainId, seq, m);
    const exp: Expectation = { msg: m, patient: state.patient, signer: toHex(key.publicKey), sequence: seq, shownAt: state.at?.height ?? 0n };
    const o = await broadcastAndConfirm(L, tx, exp, what, {
      // The gateway's OK is a claim, not a fact: say so until the ledger proves it.
      onAnswer: () => setStatus(`${what}: the gateway says it is done; checking with the ledger…`, 'info'),
    });
    const text = outcomeText(o, what, asked);
    if (o.kind === 'verified') {
      if (seq + 1n > state.nextSeq) state.nextSeq = seq + 1n;
      if (asked.grantee) $<HTMLFormElement>('#grant-form').reset();
      $('#grant-study-box').hidden = $<HTMLSelectElement>('#grant-purpose').value !== 'HRESCH';
      await refresh(o.certified);
      setStatus(text, 'ok');
    } else if (o.kind === 'refused') {
      // Take the ledger's proven sequence (an authentic tx refused in a block consumed one).
      state.nextSeq = 0n;
      setStatus(text, 'error');
      if (asked.grantee) showFormError(undefined, text);
      await refresh(o.stage === 'deliver' ? o.height : 0n);
      setStatus(text, 'error');
    } else {
      state.nextSeq = 0n;
      setStatus(text, 'warn');
      await refresh();
      setStatus(text, 'warn');
    }
  } catch (e) {
    state.nextSeq = 0n;
    const text = isOutage(e)
      ? `${what}: not sent — the gateway cannot be reached. Nothing was changed; try again when it is back.`
      : isDenied(e)
        ? `${what}: the gateway would not pass it on to the ledger (${msg(e)}). Nothing was changed.`
        : `${what}: could not be completed (${msg(e)}). Check below what the ledger holds before trying again.`;
    setStatus(text, 'error');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}

void main();

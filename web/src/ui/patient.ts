// The patient page: open or create a key, see consents and every access (each row verified in
// the browser against a BLS certificate of the genesis consortium), grant and revoke consents.
// The secret key stays in this page's memory: no request ever carries it. It signs the gateway's
// token request (RFC 9421) and the txs; the token then names the patient on every read.

import { decodeU64, fromUtf8, toHex } from '../bytes.ts';
import { HttpError, Session } from '../auth.ts';
import { broadcastAndConfirm, type Expectation } from '../broadcast.ts';
import * as keys from '../keys.ts';
import { decodeConsent, decodeKeyOwner, decodePendingPatientChange, grantConsent, purposeByName, purposeName, revokeConsent, type Consent, type PendingPatientChange, type TxMsg } from '../messages.ts';
import { trustFingerprint } from '../cert.ts';
import { keyFileJson, newKey, signTx, type PatientKey } from '../tx.ts';
import type { Attested, Ledger, Read } from '../ledger.ts';
import { deniedText, gatewayBase, isDenied, loadInfo, loadTrust, makeLedger, msg, readHistory, renderHistory, showAttested, verifiedText, wireKeyInputs, type Info } from './common.ts';
import { poll, POLL_EVERY_MS, SLOW_POLL_EVERY_MS, stream } from './live.ts';
import { describePending } from './pending.ts';
import { $, download, el, setStatus, utcTime } from './dom.ts';
import {
  backoffMs,
  checkPin,
  checkRollback,
  DATA_CLASSES,
  grantConfirmation,
  isOutage,
  isStale,
  OUTAGE_TEXT,
  pickedClasses,
  pin,
  purposeWords,
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
} = { nextSeq: 0n, refreshing: false, blocked: false, advancedAt: 0, outage: false };

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
  $('#key-create').addEventListener('click', () => {
    const k = newKey('patient');
    download('medledger-patient-key.json', keyFileJson(k));
    void setKey(k, 'New key created and downloaded: keep the file safe. Hand the public key below to your hospital to be enrolled.');
  });
  wireGrant();
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
    const cap = t.querySelector('caption');
    if (cap) {
      cap.textContent = '';
      cap.className = '';
    }
  }
  const v = $('#verdict');
  v.hidden = true;
  v.textContent = '';
  newestEvent = undefined;
  state.advancedAt = 0;
  $('#cert-height').textContent = '–';
  $('#cert-time').textContent = '';
  $('#cert-time').className = '';
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

function setLive(live: boolean, why?: unknown): void {
  const l = $('#live');
  l.textContent = live ? 'live' : 'offline';
  l.className = live ? 'ok' : 'bad';
  l.title = live ? 'checks the certified height every 2 s' : why ? msg(why) : '';
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
 * The certified state's age. The certificate carries no block time, so the page shows the newest
 * block time it proves (the newest access event's) "as of height N", and calls the state stale
 * when the certified height has not advanced for 2 minutes by this device's clock.
 */
function showFreshness(): void {
  const t = $('#cert-time');
  if (!state.at || !state.advancedAt) return;
  const stale = isStale(Date.now(), state.advancedAt);
  const newest = newestEvent ? `newest proven block time ${localTime(newestEvent.time)} (block ${newestEvent.height}), ` : '';
  t.textContent = `${newest}as of height ${state.at.height}${stale ? ` — no newer certified state for ${Math.floor((Date.now() - state.advancedAt) / 60000)} min: what you see may be out of date` : ''}`;
  t.className = stale ? 'stale' : 'small';
  t.setAttribute('data-stale', stale ? 'yes' : 'no');
}

let newestEvent: { time: bigint; height: bigint } | undefined;

/** Unix seconds → this device's local time, with its zone offset. */
function localTime(secs: bigint): string {
  const d = new Date(Number(secs) * 1000);
  const off = -d.getTimezoneOffset();
  const z = `UTC${off >= 0 ? '+' : '-'}${String(Math.floor(Math.abs(off) / 60)).padStart(2, '0')}:${String(Math.abs(off) % 60).padStart(2, '0')}`;
  return `${d.toLocaleString()} (${z})`;
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
  const hex = toHex(key.publicKey);
  const [owner, seq] = await L.readMany(at, [keys.keyOwner(hex), keys.sequence(hex)]);
  if (seq.verified) {
    const s = seq.value ? decodeU64(seq.value) : 0n;
    if (s > state.nextSeq) state.nextSeq = s;
  }
  if (state.key !== key) return;
  if (owner.denied) {
    setStatus(deniedText("your key's owner record"), 'warn');
    return;
  }
  if (!owner.verified) {
    $('#patient-id').textContent = '';
    clearPending();
    setStatus(`Your key's owner record did NOT verify: ${owner.error}`, 'error');
    return;
  }
  if (!owner.value) {
    $('#patient-id').textContent = '';
    clearPending();
    $('#enrol-hint').hidden = false;
    setStatus(`This key is not enrolled yet (verified absent at height ${at.height}). Give your public key to your hospital; this page checks again every few seconds.`, 'info');
    setTimeout(() => state.key === key && !state.patient && void refresh(), ENROL_RETRY_MS);
    return;
  }
  const o = decodeKeyOwner(owner.value);
  if (o.kind !== 'patient_id') {
    clearPending();
    setStatus(o.kind === 'retired_patient_key' ? `This key was retired (replaced) for patient ${o.id}; it can sign nothing.` : `This key belongs to a ${o.kind.replace(/_/g, ' ')} (${o.id}), not a patient.`, 'error');
    return;
  }
  $('#enrol-hint').hidden = true;
  const first = state.patient === undefined;
  state.patient = o.id;
  $('#patient-id').textContent = o.id;
  const parts = await Promise.all([refreshPending(at, o.id, key), refreshConsents(at, o.id, key), refreshAccesses(at, o.id, key)]);
  if (state.key !== key) return;
  const rows: RowState[] = [owner, ...parts.flat()];
  const v = verdict(rows, at.height);
  const box = $('#verdict');
  box.hidden = false;
  box.className = `status ${v.kind}`;
  box.textContent = v.text;
  box.setAttribute('data-verdict', v.kind);
  showFreshness();
  if (first) startLive(at.height);
  if (first) setStatus(v.text, v.kind);
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
  const d = p ? describePending(p, Date.now() / 1000) : undefined;
  const box = $('#pending');
  const proof = el('div', { class: 'small', title: error ?? '' }, 'Proof: ', verifiedText(ok, !!r.denied), ` at certified height ${at.height}`);
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
    box.replaceChildren('No pending change to your guardians or key: ', verifiedText(true), ` at certified height ${at.height}.`);
  } else {
    box.className = 'pending unverified';
    box.replaceChildren(el('strong', {}, 'Whether a change to your guardians or key is pending could NOT be verified.'), ` ${error ?? ''}`, proof);
  }
  return [{ verified: ok, denied: r.denied }];
}

async function refreshConsents(at: Attested, patient: string, key: PatientKey): Promise<RowState[]> {
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
  if (state.key !== key) return [];
  const shown: RowState[] = [list.count];
  const rows = reads.map((r, i) => {
    const row = consentRow(ids[i], list.items[i], r, patient);
    shown.push({ verified: row.getAttribute('data-verified') === 'yes', denied: !!(r.denied || list.items[i].denied) });
    return row;
  });
  const table = $<HTMLTableElement>('#consents');
  (table.tBodies[0] ?? table.appendChild(el('tbody'))).replaceChildren(...rows.reverse());
  const cap = table.querySelector('caption');
  if (cap) {
    const ok = list.count.verified && list.items.every((r) => r.verified) && reads.every((r) => r.verified);
    const denied = [list.count, ...list.items, ...reads].some((r) => r.denied);
    cap.textContent = denied ? deniedText('your consent list') : ok ? `${list.n} consent(s), the list and each consent verified` : 'Consent list NOT verified';
    cap.className = denied ? 'denied' : ok ? 'ok' : 'bad';
  }
  return shown;
}

function consentRow(id: string, index: Read, r: Read, patient: string): HTMLTableRowElement {
  let c: Consent | undefined;
  try {
    c = r.value ? decodeConsent(r.value) : undefined;
  } catch {
    c = undefined;
  }
  const ok = index.verified && r.verified && !!c && c.id === id && c.patientId === patient;
  const active = !!c && c.revokedHeight === 0n;
  const period = c ? `${c.notBefore ? `from ${utcTime(c.notBefore)}` : 'from grant'}${c.notAfter ? ` until ${utcTime(c.notAfter)}` : ', open-ended'}` : '';
  const revoke = active && ok ? el('button', { class: 'revoke', type: 'button', 'data-consent-id': id }, 'Revoke') : null;
  revoke?.addEventListener('click', () => {
    if (!window.confirm(`Revoke consent ${id} to ${c?.grantee ?? '?'}? They will no longer be permitted to read your data under it.`)) return;
    void submit(revokeConsent(id), `Revoke ${id}`);
  });
  return el(
    'tr',
    {
      class: `consent-row${active ? '' : ' revoked'}${ok ? '' : ' unverified'}`,
      'data-consent-id': id,
      'data-status': active ? 'active' : 'revoked',
      'data-verified': ok ? 'yes' : 'no',
      title: r.error ?? index.error ?? '',
    },
    el('td', { 'data-label': 'Consent' }, id),
    el('td', { 'data-label': 'To' }, c?.grantee ?? ''),
    el('td', { 'data-label': 'Classes' }, c ? c.dataClasses.join(', ') + (c.denyClasses.length ? ` (except ${c.denyClasses.join(', ')})` : '') + (c.recordIds.length ? ` + records ${c.recordIds.join(', ')}` : '') : ''),
    el('td', { 'data-label': 'Purposes' }, c ? c.purposes.map((p) => purposeWords(purposeName(p))).join(', ') + (c.studyId ? ` (study ${c.studyId})` : '') : ''),
    el('td', { 'data-label': 'Period' }, period, c ? el('div', { class: 'small' }, `granted at block ${c.grantedHeight}`) : ''),
    el('td', { 'data-label': 'Status' }, active ? 'active' : c ? `revoked at block ${c.revokedHeight}` : '?'),
    el('td', { 'data-label': 'Proof' }, verifiedText(ok, !!(r.denied || index.denied)), revoke ? ' ' : '', revoke),
  );
}

async function refreshAccesses(at: Attested, patient: string, key: PatientKey): Promise<RowState[]> {
  const h = await readHistory(state.ledger!, at, patient);
  if (state.key !== key) return [];
  renderHistory($<HTMLTableElement>('#accesses'), h, patient);
  newestEvent = undefined;
  for (const [i, r] of h.rows.entries()) {
    const e = r.event;
    if (r.read.verified && e && e.index === BigInt(i) && e.patientId === patient && (!newestEvent || e.time > newestEvent.time)) newestEvent = { time: e.time, height: e.height };
  }
  return [
    { verified: h.count.verified, denied: h.count.denied },
    ...h.rows.map(({ read, event }, i) => ({ verified: read.verified && !!event && event.index === BigInt(i) && event.patientId === patient, denied: read.denied })),
  ];
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
  $('#grant-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const grantee = $<HTMLInputElement>('#grant-grantee').value.trim();
    const picked = [...document.querySelectorAll<HTMLInputElement>('#grant-classes input[name=grant-class]:checked')].map((i) => i.value);
    const classes = pickedClasses(picked);
    const purposeText = $<HTMLSelectElement>('#grant-purpose').value;
    if (!grantee || classes.length === 0) {
      setStatus('Name the grantee and pick at least one kind of data.', 'error');
      return;
    }
    let purpose: number;
    try {
      purpose = purposeByName(purposeText);
    } catch (e) {
      setStatus(msg(e), 'error');
      return;
    }
    const ask = grantConfirmation(grantee, classes);
    if (ask && !window.confirm(ask)) return;
    void submit(grantConsent({ grantee, dataClasses: classes, purposes: [purpose] }), `Grant to ${grantee}`);
  });
}

let busy = false;

async function submit(m: TxMsg, what: string): Promise<void> {
  const key = state.key;
  const L = state.ledger;
  const chainId = L?.chainId;
  if (!key || !L || !state.patient || !chainId) {
    setStatus('Open an enrolled key first.', 'error');
    return;
  }
  if (busy) {
    setStatus(`${what}: not sent — the previous transaction is still being confirmed; try again in a moment.`, 'error');
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
      onAnswer: (a) => setStatus(`${what}: the gateway says committed at height ${a.height}; waiting for the ledger to prove it…`, 'info'),
    });
    if (o.kind === 'verified') {
      if (seq + 1n > state.nextSeq) state.nextSeq = seq + 1n;
      await refresh(o.certified);
      setStatus(o.text, 'ok');
    } else if (o.kind === 'refused') {
      // Take the ledger's proven sequence (an authentic tx refused in a block consumed one).
      state.nextSeq = 0n;
      setStatus(o.text, 'error');
      await refresh(o.stage === 'deliver' ? o.height : 0n);
      setStatus(o.text, 'error');
    } else {
      state.nextSeq = 0n;
      setStatus(o.text, 'warn');
      await refresh();
      setStatus(o.text, 'warn');
    }
  } catch (e) {
    state.nextSeq = 0n;
    setStatus(isDenied(e) ? `${what}: the gateway refused to forward it: ${msg(e)}` : `${what} failed: ${msg(e)}`, 'error');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}

void main();

// The patient page: open or create a key, see consents and every access (each row verified in
// the browser against a BLS certificate of the genesis consortium), grant and revoke consents.
// The secret key stays in this page's memory: no request ever carries it.

import { decodeU64, fromUtf8, toHex } from '../bytes.ts';
import { codeName } from '../codes.ts';
import * as keys from '../keys.ts';
import { decodeConsent, decodeKeyOwner, type ConsentV, type TxMsg } from '../messages.ts';
import { keyFileJson, newKey, parseKeyFile, signTx, type PatientKey } from '../tx.ts';
import type { Attested, Ledger, Read } from '../ledger.ts';
import { loadInfo, loadTrust, makeLedger, msg, readHistory, renderHistory, showAttested, verifiedText, type Info } from './common.ts';
import { subscribe, patientQueries } from './live.ts';
import { $, download, el, setStatus, utcTime } from './dom.ts';

const ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

const state: {
  info?: Info;
  ledger: Ledger;
  key?: PatientKey;
  patient?: string;
  at?: Attested;
  nextSeq: bigint;
  stopLive?: () => void;
  refreshing: boolean;
} = { ledger: makeLedger(), nextSeq: 0n, refreshing: false };

async function main(): Promise<void> {
  wireKeyInputs();
  wireGrant();
  try {
    state.info = await loadInfo();
  } catch (e) {
    setStatus(`The gateway's /api/info is unavailable (${msg(e)}); live updates are off.`, 'error');
  }
  try {
    await loadTrust(state.ledger, state.info);
  } catch (e) {
    setStatus(`Cannot establish the trust root: ${msg(e)}`, 'error');
  }
}

// ---- the key ----

function wireKeyInputs(): void {
  $<HTMLInputElement>('#key-file').addEventListener('change', async (ev) => {
    const f = (ev.target as HTMLInputElement).files?.[0];
    if (f) openKey(await f.text());
  });
  $('#key-open').addEventListener('click', () => openKey($<HTMLTextAreaElement>('#key-paste').value));
  $('#key-create').addEventListener('click', () => {
    const k = newKey('patient');
    download('medledger-patient-key.json', keyFileJson(k));
    setKey(k);
    setStatus('New key created and downloaded: keep the file safe. Hand the public key below to your hospital to be enrolled.', 'ok');
  });
}

function openKey(text: string): void {
  try {
    setKey(parseKeyFile(text));
    $<HTMLTextAreaElement>('#key-paste').value = '';
  } catch (e) {
    setStatus(`Key not opened: ${msg(e)}`, 'error');
  }
}

function setKey(k: PatientKey): void {
  state.key = k;
  state.patient = undefined;
  state.nextSeq = 0n;
  state.stopLive?.();
  state.stopLive = undefined;
  $('#public-key').textContent = toHex(k.publicKey);
  $('#patient-id').textContent = '';
  $('#key-section').classList.add('has-key');
  void refresh();
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
let wanted = 0n;

async function loop(): Promise<void> {
  state.refreshing = true;
  while (waiters.length > 0) {
    const min = wanted;
    const batch = waiters.splice(0, waiters.length);
    try {
      await refreshOnce(min);
    } catch (e) {
      setStatus(`Could not read the ledger: ${msg(e)}`, 'error');
      batch.forEach((w) => w.resolve());
      continue;
    }
    const at = state.at?.height ?? 0n;
    for (const w of batch) (w.min <= at ? w.resolve() : waiters.push(w));
  }
  state.refreshing = false;
}

async function refreshOnce(minHeight: bigint): Promise<void> {
  const key = state.key;
  if (!key) return;
  const L = state.ledger;
  if (minHeight > 0n) await L.waitForCertifiedHeight(minHeight);
  const at = await L.attest();
  state.at = at;
  showAttested(at);
  const hex = toHex(key.publicKey);
  const [owner, seq] = await L.readMany(at, [keys.keyOwner(hex), keys.sequence(hex)]);
  if (seq.verified) {
    const s = seq.value ? decodeU64(seq.value) : 0n;
    if (s > state.nextSeq) state.nextSeq = s;
  }
  if (!owner.verified) {
    $('#patient-id').textContent = '';
    setStatus(`Your key's owner record did NOT verify: ${owner.error}`, 'error');
    return;
  }
  if (!owner.value) {
    $('#patient-id').textContent = '';
    $('#enrol-hint').hidden = false;
    setStatus(`This key is not enrolled yet (verified absent at height ${at.height}). Give your public key to your hospital; this page checks again every few seconds.`, 'info');
    setTimeout(() => state.key === key && !state.patient && void refresh(), 5000);
    return;
  }
  const o = decodeKeyOwner(owner.value);
  if (o.kind !== 'patient_id') {
    setStatus(o.kind === 'retired_patient_key' ? `This key was retired (replaced) for patient ${o.id}; it can sign nothing.` : `This key belongs to a ${o.kind.replace(/_/g, ' ')} (${o.id}), not a patient.`, 'error');
    return;
  }
  $('#enrol-hint').hidden = true;
  const first = state.patient === undefined;
  state.patient = o.id;
  $('#patient-id').textContent = o.id;
  if (first) startLive(o.id);
  await Promise.all([refreshConsents(at, o.id), refreshAccesses(at, o.id)]);
  if (first) setStatus(`Your consents and every access to your data, verified at certified height ${at.height}.`, 'ok');
}

async function refreshConsents(at: Attested, patient: string): Promise<void> {
  const L = state.ledger;
  const list = await L.readList(at, keys.patientConsentCount(patient), (n) => keys.patientConsent(patient, n));
  const ids = list.items.map((r) => {
    try {
      return r.value ? fromUtf8(r.value) : '';
    } catch {
      return '';
    }
  });
  const reads = await L.readMany(at, ids.map((id) => keys.consent(id || '?')));
  const rows = reads.map((r, i) => consentRow(ids[i], list.items[i], r, patient));
  const table = $<HTMLTableElement>('#consents');
  (table.tBodies[0] ?? table.appendChild(el('tbody'))).replaceChildren(...rows.reverse());
  const cap = table.querySelector('caption');
  if (cap) {
    const ok = list.count.verified && list.items.every((r) => r.verified) && reads.every((r) => r.verified);
    cap.textContent = ok ? `${list.n} consent(s), the list and each consent verified` : 'Consent list NOT verified';
    cap.className = ok ? 'ok' : 'bad';
  }
}

function consentRow(id: string, index: Read, r: Read, patient: string): HTMLTableRowElement {
  let c: ConsentV | undefined;
  try {
    c = r.value ? decodeConsent(r.value) : undefined;
  } catch {
    c = undefined;
  }
  const ok = index.verified && r.verified && !!c && c.id === id && c.patient_id === patient;
  const active = !!c && c.revoked_height === 0n;
  const period = c ? `${c.not_before ? `from ${utcTime(c.not_before)}` : 'from grant'}${c.not_after ? ` until ${utcTime(c.not_after)}` : ', open-ended'}` : '';
  const revoke = active && ok ? el('button', { class: 'revoke', type: 'button', 'data-consent-id': id }, 'Revoke') : null;
  revoke?.addEventListener('click', () => void submit({ revoke_consent: { consent_id: id } }, `Revoke ${id}`));
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
    el('td', { 'data-label': 'Classes' }, c ? c.data_classes.join(', ') + (c.deny_classes.length ? ` (except ${c.deny_classes.join(', ')})` : '') + (c.record_ids.length ? ` + records ${c.record_ids.join(', ')}` : '') : ''),
    el('td', { 'data-label': 'Purposes' }, c ? c.purposes.join(', ') + (c.study_id ? ` (study ${c.study_id})` : '') : ''),
    el('td', { 'data-label': 'Period' }, period, c ? el('div', { class: 'small' }, `granted at block ${c.granted_height}`) : ''),
    el('td', { 'data-label': 'Status' }, active ? 'active' : c ? `revoked at block ${c.revoked_height}` : '?'),
    el('td', { 'data-label': 'Proof' }, verifiedText(ok), revoke ? ' ' : '', revoke),
  );
}

async function refreshAccesses(at: Attested, patient: string): Promise<void> {
  const h = await readHistory(state.ledger, at, patient);
  renderHistory($<HTMLTableElement>('#accesses'), h, patient);
}

// ---- live ----

function startLive(patient: string): void {
  const url = state.info?.rpc_websocket;
  if (!url || !ID_RE.test(patient)) return;
  state.stopLive = subscribe({
    url,
    queries: patientQueries(patient),
    onState: (live) => {
      const l = $('#live');
      l.textContent = live ? 'live' : 'offline';
      l.className = live ? 'ok' : 'bad';
    },
    onEvent: (height) => void refresh(height),
  });
}

// ---- transactions ----

function wireGrant(): void {
  $('#grant-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const grantee = $<HTMLInputElement>('#grant-grantee').value.trim();
    const classes = $<HTMLInputElement>('#grant-class').value.split(',').map((s) => s.trim()).filter(Boolean);
    const purpose = $<HTMLSelectElement>('#grant-purpose').value;
    if (!grantee || classes.length === 0) {
      setStatus('Name the grantee and at least one data class.', 'error');
      return;
    }
    void submit({ grant_consent: { grantee, data_classes: classes, purposes: [purpose] } }, `Grant to ${grantee}`);
  });
}

let busy = false;

async function submit(m: TxMsg, what: string): Promise<void> {
  const key = state.key;
  const chainId = state.ledger.chainId;
  if (!key || !state.patient || !chainId) {
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
    const body = await state.ledger.rpc('broadcast_tx_commit', `tx=0x${toHex(tx.bytes)}`);
    const r = body?.result;
    const check = r?.check_tx ?? {};
    const res = r?.tx_result ?? r?.deliver_tx ?? {};
    if (check.code) {
      if (check.code === 7 || check.code === 8) state.nextSeq = 0n; // take the ledger's proven value below
      setStatus(`${what} REFUSED: ${codeName(check.code)} (${check.code}): ${check.log ?? ''}`, 'error');
      void refresh();
      return;
    }
    // Authentic txs consume a sequence number, accepted or not.
    state.nextSeq = seq + 1n;
    const height = BigInt(r?.height ?? '0');
    if (res.code) {
      setStatus(`${what} REFUSED at height ${height}: ${codeName(res.code)} (${res.code}): ${res.log ?? ''}`, 'error');
    } else {
      const ev = (res.events ?? []).find((e: any) => /^medledger\.consent\./.test(e.type));
      const cid = ev?.attributes?.find((a: any) => a.key === 'consent_id')?.value;
      setStatus(`${what}: OK, committed at height ${height}${cid ? ` (consent ${cid})` : ''}. Waiting for its certificate…`, 'ok');
    }
    await refresh(height);
    if (!res.code) setStatus(`${what}: OK, committed at height ${height} and verified at certified height ${state.at?.height}.`, 'ok');
  } catch (e) {
    setStatus(`${what} failed: ${msg(e)}`, 'error');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}

void main();

// The auditor page: look up any patient, consent, record, claim, member or practitioner; the
// value (or its absence) is verified in the browser against a BLS checkpoint certificate.

import { toHex } from '../bytes.ts';
import * as keys from '../keys.ts';
import * as M from '../messages.ts';
import { decode, type Schema } from '../proto.ts';
import { loadInfo, loadTrust, makeLedger, msg, readHistory, renderHistory, showAttested, verifiedText, type Info } from './common.ts';
import { $, el, setStatus, utcTime } from './dom.ts';

const KINDS: Record<string, { key: (id: string) => string; schema: Schema; label: string }> = {
  patient: { key: keys.patient, schema: M.Patient, label: 'Patient' },
  consent: { key: keys.consent, schema: M.Consent, label: 'Consent' },
  record: { key: keys.record, schema: M.RecordAnchor, label: 'Record anchor' },
  claim: { key: keys.claim, schema: M.Claim, label: 'Claim' },
  member: { key: keys.member, schema: M.Member, label: 'Member' },
  practitioner: { key: keys.practitioner, schema: M.Practitioner, label: 'Practitioner' },
};
const TIME_FIELDS = new Set(['time', 'not_before', 'not_after', 'valid_until', 'service_date']);

const ledger = makeLedger();
let info: Info | undefined;

function show(v: unknown, field = ''): string {
  if (typeof v === 'bigint') return TIME_FIELDS.has(field) && v !== 0n ? `${v} (${utcTime(v)})` : v.toString();
  if (v instanceof Uint8Array) return v.length ? toHex(v) : '';
  if (Array.isArray(v)) return v.map((x) => show(x)).join(', ');
  if (v && typeof v === 'object') return '{' + Object.entries(v).filter(([, x]) => show(x) !== '' && show(x) !== '0').map(([k, x]) => `${k}: ${show(x, k)}`).join(', ') + '}';
  return String(v ?? '');
}

function fieldsTable(d: Record<string, unknown>): HTMLTableElement {
  return el('table', { class: 'fields' }, el('tbody', {}, ...Object.entries(d).map(([k, v]) => el('tr', {}, el('th', {}, k), el('td', {}, show(v, k))))));
}

async function lookup(): Promise<void> {
  const kind = $<HTMLSelectElement>('#lookup-kind').value;
  const id = $<HTMLInputElement>('#lookup-id').value.trim();
  const k = KINDS[kind];
  const result = $('#result');
  if (!k || !id || id.includes('/')) {
    setStatus('Choose a kind and enter an id (without "/").', 'error');
    return;
  }
  const fhir = $<HTMLAnchorElement>('#download-fhir');
  const csv = $<HTMLAnchorElement>('#download-csv');
  const isPatient = kind === 'patient';
  fhir.href = `/fhir/AuditEvent?patient=${encodeURIComponent(isPatient ? id : '')}`;
  csv.href = `/audit/access.csv?patient=${encodeURIComponent(isPatient ? id : '')}`;
  $('#downloads').hidden = !isPatient;
  result.removeAttribute('data-verified');
  result.replaceChildren(el('p', {}, 'Verifying…'));
  setStatus(`Looking up ${kind} ${id}…`, 'info');
  try {
    if (!ledger.trust) await loadTrust(ledger, info);
    const at = await ledger.attest();
    showAttested(at);
    const key = k.key(id);
    const r = await ledger.read(at, key);
    let decoded: Record<string, unknown> | undefined;
    let decodeError: string | undefined;
    try {
      decoded = r.value ? decode(k.schema, r.value) : undefined;
    } catch (e) {
      decodeError = msg(e);
    }
    const ok = r.verified && !decodeError;
    const parts: (Node | string)[] = [
      el('h3', {}, `${k.label} ${id}: `, r.value ? (decodeError ? 'present (does not decode)' : 'present') : 'ABSENT', ' — ', verifiedText(ok)),
      el(
        'table',
        { class: 'fields attest' },
        el(
          'tbody',
          {},
          el('tr', {}, el('th', {}, 'state key'), el('td', {}, key)),
          el('tr', {}, el('th', {}, 'height'), el('td', { class: 'result-height' }, at.height.toString())),
          el('tr', {}, el('th', {}, 'app hash'), el('td', { class: 'result-app-hash' }, toHex(at.appHash).toUpperCase())),
          el('tr', {}, el('th', {}, 'certificate signers'), el('td', { class: 'result-signers' }, `${at.signerNames.join(', ')} (${at.signedPower} of ${at.totalPower} voting power)`)),
          el('tr', {}, el('th', {}, 'proof'), el('td', {}, r.verified ? (r.value ? 'ICS23 membership proof verified' : 'ICS23 non-membership proof verified') : `FAILED: ${r.error}`)),
        ),
      ),
    ];
    if (decoded) parts.push(fieldsTable(decoded));
    if (decodeError) parts.push(el('p', { class: 'bad' }, decodeError));
    let allOk = ok;
    if (isPatient) {
      const h = await readHistory(ledger, at, id);
      const table = el('table', { id: 'accesses', class: 'rows' }, el('caption'), historyHead(), el('tbody'));
      renderHistory(table, h, id);
      parts.push(el('h3', {}, 'Access history'), table);
      allOk = allOk && h.complete;
    }
    result.setAttribute('data-verified', allOk ? 'yes' : 'no');
    result.replaceChildren(...parts);
    setStatus(allOk ? `Verified at certified height ${at.height}.` : `NOT verified: ${r.error ?? decodeError ?? 'see the rows marked NOT verified'}`, allOk ? 'ok' : 'error');
  } catch (e) {
    result.setAttribute('data-verified', 'no');
    result.replaceChildren(el('p', { class: 'bad' }, `NOT verified: ${msg(e)}`));
    setStatus(`NOT verified: ${msg(e)}`, 'error');
  }
}

export function historyHead(): HTMLTableSectionElement {
  return el('thead', {}, el('tr', {}, ...['#', 'When (UTC)', 'Who', 'What', 'Why', 'Consent', 'Proof'].map((h) => el('th', {}, h))));
}

async function main(): Promise<void> {
  $('#lookup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void lookup();
  });
  const params = new URLSearchParams(location.search);
  const kind = params.get('kind');
  const id = params.get('id');
  if (kind && KINDS[kind]) $<HTMLSelectElement>('#lookup-kind').value = kind;
  if (id) $<HTMLInputElement>('#lookup-id').value = id;
  try {
    info = await loadInfo();
  } catch {
    info = undefined;
  }
  try {
    await loadTrust(ledger, info);
    setStatus('Trust root loaded from genesis. Enter an id to verify.', 'info');
  } catch (e) {
    setStatus(`Cannot establish the trust root: ${msg(e)}`, 'error');
  }
  if (kind && id) void lookup();
}

void main();

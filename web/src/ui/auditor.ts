// The auditor page: open a member admin's or privacy officer's key (kept in memory; it signs the
// gateway's token request), then look up any patient, consent, record, claim, member or
// practitioner; the value (or its absence) is verified in the browser against a BLS checkpoint
// certificate. The gateway's exports are fetched with the token and saved as files.

import { toHex } from '../bytes.ts';
import { errorText, describeStatus, HttpError, Session } from '../auth.ts';
import * as keys from '../keys.ts';
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { ClaimSchema } from '../gen/medledger/v1/claims_pb.ts';
import { PractitionerSchema } from '../gen/medledger/v1/identity_pb.ts';
import { RecordAnchorSchema } from '../gen/medledger/v1/records_pb.ts';
import { ConsentSchema, MemberSchema, PatientSchema } from '../gen/medledger/v1/state_pb.ts';
import { view } from '../messages.ts';
import type { Ledger } from '../ledger.ts';
import type { PatientKey } from '../tx.ts';
import { deniedText, gatewayBase, isDenied, loadInfo, loadTrust, makeLedger, msg, readHistory, renderHistory, showAttested, verifiedText, wireKeyInputs, type Info } from './common.ts';
import { $, download, el, setStatus, utcTime } from './dom.ts';
import { showRelease } from './release.ts';

const KINDS: Record<string, { key: (id: string) => string; schema: DescMessage; label: string }> = {
  patient: { key: keys.patient, schema: PatientSchema, label: 'Patient' },
  consent: { key: keys.consent, schema: ConsentSchema, label: 'Consent' },
  record: { key: keys.record, schema: RecordAnchorSchema, label: 'Record anchor' },
  claim: { key: keys.claim, schema: ClaimSchema, label: 'Claim' },
  member: { key: keys.member, schema: MemberSchema, label: 'Member' },
  practitioner: { key: keys.practitioner, schema: PractitionerSchema, label: 'Practitioner' },
};
const TIME_FIELDS = new Set(['time', 'not_before', 'not_after', 'valid_until', 'service_date']);

let info: Info | undefined;
let session: Session | undefined;
let ledger: Ledger | undefined;
/** Resolves once the session and the trust root are set up. */
let ready: Promise<void> = Promise.resolve();
/** The patient whose exports the download buttons fetch. */
let exportPatient = '';

const NEEDS_KEY = "Open a member admin's or a privacy officer's key first: the gateway answers only a key with a role on the ledger.";

function show(v: unknown, field = ''): string {
  if (typeof v === 'bigint') return TIME_FIELDS.has(field) && v !== 0n ? `${v} (${utcTime(v)})` : v.toString();
  if (v instanceof Uint8Array) return v.length ? toHex(v) : '';
  if (Array.isArray(v)) return v.map((x) => show(x)).join(', ');
  if (v && typeof v === 'object') return '{' + Object.entries(v).filter(([, x]) => show(x) !== '' && show(x) !== '0').map(([k, x]) => `${k}: ${show(x, k)}`).join(', ') + '}';
  return String(v ?? '');
}

function fieldsTable(d: Record<string, unknown>): HTMLTableElement {
  return el('table', { class: 'fields' }, el('tbody', {}, ...Object.entries(d).map(([k, v]) => el('tr', {}, el('th', { scope: 'row' }, k), el('td', {}, show(v, k))))));
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
  await ready;
  if (!session?.hasKey() || !ledger) {
    setStatus(NEEDS_KEY, 'error');
    return;
  }
  const isPatient = kind === 'patient';
  exportPatient = isPatient ? id : '';
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
      decoded = r.value ? view(k.schema, fromBinary(k.schema, r.value)) : undefined;
    } catch (e) {
      decodeError = msg(e);
    }
    if (r.denied) {
      result.setAttribute('data-verified', 'denied');
      result.replaceChildren(el('p', { class: 'denied' }, deniedText(`${k.label.toLowerCase()} ${id}`)), el('p', { class: 'small' }, r.error ?? ''));
      setStatus(deniedText(`${k.label.toLowerCase()} ${id}`), 'warn');
      return;
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
          el('tr', {}, el('th', { scope: 'row' }, 'state key'), el('td', {}, key)),
          el('tr', {}, el('th', { scope: 'row' }, 'height'), el('td', { class: 'result-height' }, at.height.toString())),
          el('tr', {}, el('th', { scope: 'row' }, 'app hash'), el('td', { class: 'result-app-hash' }, toHex(at.appHash).toUpperCase())),
          el('tr', {}, el('th', { scope: 'row' }, 'certificate signers'), el('td', { class: 'result-signers' }, `${at.signerNames.join(', ')} (${at.signedPower} of ${at.totalPower} voting power)`)),
          el('tr', {}, el('th', { scope: 'row' }, 'proof'), el('td', {}, r.verified ? (r.value ? 'ICS23 membership proof verified' : 'ICS23 non-membership proof verified') : `FAILED: ${r.error}`)),
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
      if (h.denied) {
        result.setAttribute('data-verified', 'denied');
        result.replaceChildren(...parts);
        setStatus(deniedText(`patient ${id}'s access history`), 'warn');
        return;
      }
    }
    result.setAttribute('data-verified', allOk ? 'yes' : 'no');
    result.replaceChildren(...parts);
    setStatus(allOk ? `Verified at certified height ${at.height}.` : `NOT verified: ${r.error ?? decodeError ?? 'see the rows marked NOT verified'}`, allOk ? 'ok' : 'error');
  } catch (e) {
    if (isDenied(e)) {
      result.setAttribute('data-verified', 'denied');
      result.replaceChildren(el('p', { class: 'denied' }, deniedText('the ledger state this lookup needs', e)));
      setStatus(deniedText('the ledger state this lookup needs', e), 'warn');
      return;
    }
    result.setAttribute('data-verified', 'no');
    result.replaceChildren(el('p', { class: 'bad' }, `NOT verified: ${msg(e)}`));
    setStatus(`NOT verified: ${msg(e)}`, 'error');
  }
}

export function historyHead(): HTMLTableSectionElement {
  return el('thead', {}, el('tr', {}, ...['#', 'When (UTC)', 'Who', 'What', 'Why', 'Consent', 'Proof'].map((h) => el('th', { scope: 'col' }, h))));
}

/** Opens the auditor's key: signs in, and says who the gateway takes it for. */
async function setKey(k: PatientKey): Promise<void> {
  await ready;
  if (!session) return;
  session.setKey(k);
  $('#public-key').textContent = toHex(k.publicKey);
  $('#subject').textContent = '';
  setStatus('Signing in to the gateway with the key (a signature; the key stays here)…', 'info');
  try {
    const who = await session.login();
    $('#subject').textContent = `${who.kind} ${who.id}`;
    $('#key-section').classList.add('has-key');
    $('#key-needed').hidden = true;
    const note = who.kind === 'patient' ? ' A patient key reads only its own patient\'s data here.' : '';
    setStatus(`Signed in as ${who.kind} ${who.id}. Enter an id to verify.${note}`, 'ok');
    const id = $<HTMLInputElement>('#lookup-id').value.trim();
    if (id && new URLSearchParams(location.search).get('id') === id) void lookup();
  } catch (e) {
    session.setKey(undefined);
    const why = e instanceof HttpError && e.status === 403 ? 'the ledger gives this key no role (not a member admin, privacy officer or other known key)' : msg(e);
    setStatus(`Not signed in: ${why}. ${NEEDS_KEY}`, 'error');
  }
}

/** Fetches one of the gateway's exports with the token and saves it as a file. */
/** The URL of an RFC 8288 `Link` header's `rel="next"`, if any. */
function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part.trim());
    if (m) return m[1];
  }
  return undefined;
}

/** Most pages one export follows (the gateway pins every page to one certified state). */
const MAX_EXPORT_PAGES = 1000;

async function saveExport(path: string, name: string, what: string): Promise<void> {
  if (!session?.hasKey()) {
    setStatus(NEEDS_KEY, 'error');
    return;
  }
  if (!exportPatient) return;
  const s = session;
  try {
    // The gateway answers a long history a page at a time: follow the pages (the CSV's `Link`
    // header, the Bundle's `next` link) and save them as one file.
    let url: string | undefined = `${path}?patient=${encodeURIComponent(exportPatient)}&_count=1000`;
    const csv: string[] = [];
    let bundle: { entry?: unknown[]; link?: { relation: string; url: string }[] } | undefined;
    for (let page = 0; url && page < MAX_EXPORT_PAGES; page++) {
      const res = await s.fetch(url);
      if (!res.ok) {
        const text = await res.text();
        setStatus(`${what}: ${describeStatus(res.status)}${text ? `: ${errorText(text)}` : ''}`, res.status === 403 ? 'warn' : 'error');
        return;
      }
      let next: string | undefined;
      if (path.endsWith('.csv')) {
        const text = await res.text();
        // Every page repeats the header line.
        csv.push(page === 0 ? text : text.slice(text.indexOf('\n') + 1));
        next = nextLink(res.headers.get('link'));
      } else {
        const b = (await res.json()) as typeof bundle & object;
        if (!bundle) bundle = b;
        else bundle.entry = [...(bundle.entry ?? []), ...(b.entry ?? [])];
        next = b.link?.find((l) => l.relation === 'next')?.url;
      }
      url = next ? new URL(next).pathname + new URL(next).search : undefined;
    }
    if (bundle) bundle.link = bundle.link?.filter((l) => l.relation === 'first');
    const blob = bundle
      ? new Blob([JSON.stringify(bundle, null, 2)], { type: 'application/fhir+json' })
      : new Blob(csv, { type: 'text/csv' });
    download(name, blob);
    setStatus(`Saved ${name} (${what}, ${blob.size} bytes, made by the gateway: not verified by this page).`, 'info');
  } catch (e) {
    setStatus(`${what}: ${msg(e)}`, 'error');
  }
}

async function main(): Promise<void> {
  wireKeyInputs((k) => void setKey(k));
  void showRelease();
  $('#lookup-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void lookup();
  });
  $('#download-fhir').addEventListener('click', () => void saveExport('/fhir/AuditEvent', `auditevents-${exportPatient}.json`, 'FHIR AuditEvent Bundle'));
  $('#download-csv').addEventListener('click', () => void saveExport('/audit/access.csv', `access-${exportPatient}.csv`, 'HIPAA accounting CSV'));
  const params = new URLSearchParams(location.search);
  const kind = params.get('kind');
  const id = params.get('id');
  if (kind && KINDS[kind]) $<HTMLSelectElement>('#lookup-kind').value = kind;
  if (id) $<HTMLInputElement>('#lookup-id').value = id;
  ready = (async () => {
    try {
      info = await loadInfo();
    } catch {
      info = undefined;
    }
    session = new Session({ gateway: gatewayBase(info) });
    ledger = makeLedger(session);
    try {
      await loadTrust(ledger, info);
      if (!session.hasKey()) setStatus(`Trust root loaded from genesis. ${NEEDS_KEY}`, 'info');
    } catch (e) {
      setStatus(`Cannot establish the trust root: ${msg(e)}`, 'error');
    }
  })();
}

void main();

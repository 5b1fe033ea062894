// Notifications (issue 27, point 10), both opt-in:
//
// - In this browser, while the page is open: a NEW access to the patient's data (or a refused
//   attempt, or an emergency access) is shown as a browser notification in plain words once this
//   page has VERIFIED it — never for a row that did not verify, never for the rows already there
//   when the key was opened. More than MAX_SINGLE at once become one "N new accesses". The same
//   alerts go into an on-page list (aria-live), so a patient who refused the browser's
//   permission still sees them. The choice is remembered per patient in this browser.
// - To an address the patient chooses, also while the page is closed: a FHIR Subscription
//   (rest-hook on `AuditEvent?patient=P`, payload application/fhir+json) created at this
//   member's gateway with the patient's own signed-in session; the gateway POSTs each new
//   access with its proof there. Listed with their status, each with a "Stop" (DELETE).
//
// The top half is pure (no DOM, no clock): the tests check which rows notify and the wording.

import { HttpError, type Session } from '../auth.ts';
import { actionName, purposeName } from '../messages.ts';
import type { AccessRow } from './history.ts';
import { memberName, readerWords, type NameBook } from './names.ts';
import { refusedSentence, type RefusedRow } from './refused.ts';
import { $, el } from './dom.ts';
import { classWords, purposeWords } from './words.ts';

/** At most this many separate notifications at once; more become one "N new accesses". */
export const MAX_SINGLE = 3;
/** The on-page list keeps the newest this many alerts. */
export const MAX_LIST = 50;
/** Longest endpoint URL the page sends (the gateway's limit too). */
export const MAX_ENDPOINT_LEN = 2048;

// ---- which rows are new ----

/** One alert: what a notification and the on-page list say. */
export interface Alert {
  kind: 'access' | 'refused';
  /** The entry's place in its list (the ledger's index). */
  index: number;
  title: string;
  body: string;
  /** Notifications with the same tag replace each other (one per entry). */
  tag: string;
  emergency: boolean;
}

/**
 * What this page has seen of one patient since the key was opened: how long each list was then
 * (nothing before that notifies) and which later entries were already notified.
 */
export interface Seen {
  patient: string;
  accessBase?: number;
  refusedBase?: number;
  accessDone: Set<number>;
  refusedDone: Set<number>;
}

export const newSeen = (patient: string): Seen => ({ patient, accessDone: new Set(), refusedDone: new Set() });

/**
 * The alerts for the entries that are new since `seen` began and verified now, in ledger order
 * (accesses, then refused attempts). A list not readable this time (undefined: not permitted)
 * sets no base, so its entries are not taken as new later. A new entry not verified yet is left
 * for a later refresh: it notifies once it verifies. The patient's own downloads do not notify.
 */
export function takeNew(seen: Seen, access: AccessRow[] | undefined, refused: RefusedRow[] | undefined, names: NameBook): Alert[] {
  const out: Alert[] = [];
  if (access) {
    if (seen.accessBase === undefined) seen.accessBase = access.length;
    for (const r of access) {
      if (r.index < seen.accessBase || seen.accessDone.has(r.index) || !r.ok || !r.event) continue;
      seen.accessDone.add(r.index);
      if (r.event.actor === seen.patient && !r.event.practitioner) continue;
      out.push(accessAlert(r, names, seen.patient));
    }
  }
  if (refused) {
    if (seen.refusedBase === undefined) seen.refusedBase = refused.length;
    for (const r of refused) {
      if (r.index < seen.refusedBase || seen.refusedDone.has(r.index) || !r.ok || !r.attempt) continue;
      seen.refusedDone.add(r.index);
      out.push(refusedAlert(r, names, seen.patient));
    }
  }
  return out;
}

// ---- the words ----

/** "Dr Ana Silva, doctor at Hospital A", or the member's name when no person signed. */
export function whoText(names: NameBook, actor: string, practitioner: string): string {
  const who = readerWords(names, actor, practitioner);
  if (!practitioner) return who.main;
  return `${who.main} at ${memberName(names, actor) ?? actor}`;
}

/** A verified access in words. */
export function accessAlert(r: AccessRow, names: NameBook, patient: string): Alert {
  const e = r.event!;
  const who = whoText(names, e.actor, e.practitioner);
  const verb = actionName(e.action) === 'WRITE' ? 'added to or changed' : 'read';
  const why = purposeWords(purposeName(e.purpose));
  const emergency = !!e.breakGlass;
  const body = emergency
    ? `Emergency access without your consent: ${who} ${verb} your ${classWords(e.dataClass)} (record ${e.recordId}). A privacy officer of another member reviews it.`
    : `${who} ${verb} your ${classWords(e.dataClass)} (record ${e.recordId}). Why: ${why}.`;
  return {
    kind: 'access',
    index: r.index,
    title: emergency ? 'Emergency access to your data' : 'Someone accessed your data',
    body,
    tag: `medledger-${patient}-access-${r.index}`,
    emergency,
  };
}

/** A verified refused attempt in words. */
export function refusedAlert(r: RefusedRow, names: NameBook, patient: string): Alert {
  return {
    kind: 'refused',
    index: r.index,
    title: 'An attempt to see your data was refused',
    body: `${refusedSentence(r.attempt!, names)}.`,
    tag: `medledger-${patient}-refused-${r.index}`,
    emergency: false,
  };
}

/** What the browser shows: one notification each, or one for all when more than MAX_SINGLE. */
export interface Shown {
  title: string;
  body: string;
  tag: string;
}

export function coalesce(alerts: Alert[], patient: string): Shown[] {
  if (alerts.length <= MAX_SINGLE) return alerts.map(({ title, body, tag }) => ({ title, body, tag }));
  const n = alerts.length;
  const emergencies = alerts.filter((a) => a.emergency).length;
  const refused = alerts.filter((a) => a.kind === 'refused').length;
  const parts = [
    emergencies ? `${emergencies} of them ${emergencies === 1 ? 'is an emergency access' : 'are emergency accesses'} without your consent` : '',
    refused ? `${refused} ${refused === 1 ? 'was a refused attempt' : 'were refused attempts'}` : '',
  ].filter(Boolean);
  return [
    {
      title: `${n} new accesses to your data`,
      body: `${parts.length ? `${parts.join('; ')}. ` : ''}Open the page to see who, what and why.`,
      tag: `medledger-${patient}-batch`,
    },
  ];
}

/** The browser's permission in plain words (never an error: the page still lists alerts). */
export function permissionWords(p: NotificationPermission | 'unsupported', on: boolean): string {
  if (p === 'unsupported') return 'This browser cannot show notifications. New accesses are still listed here while this page is open.';
  if (p === 'denied') return 'This browser is set not to show notifications from this page. New accesses are still listed here while this page is open; to get notifications, allow them in the browser\'s site settings.';
  if (!on) return 'Off. New accesses are listed here while this page is open.';
  if (p === 'granted') return 'On: this browser shows a notification for each new verified access while this page is open.';
  return 'Not allowed yet: press "Notify me in this browser" and answer the browser\'s question. New accesses are listed here meanwhile.';
}

// ---- alerts to an address: FHIR Subscriptions at this gateway ----

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The address alerts go to: an https URL (http only on this computer, for testing). */
export function checkEndpoint(input: string): { ok: true; url: string } | { ok: false; text: string } {
  const s = input.trim();
  if (!s) return { ok: false, text: 'Type the address (https://…) alerts should be sent to.' };
  if (s.length > MAX_ENDPOINT_LEN) return { ok: false, text: `The address is too long (at most ${MAX_ENDPOINT_LEN} characters).` };
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return { ok: false, text: 'That is not a web address: it should start with https://' };
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOOPBACK.has(u.hostname))) return { ok: false, text: 'The address must start with https:// (alerts carry your access history: they are sent encrypted).' };
  if (u.username || u.password) return { ok: false, text: 'The address must not carry a user name or password.' };
  if (u.hash) return { ok: false, text: 'The address must not have a # part.' };
  return { ok: true, url: s };
}

/** The Subscription the page creates for `patient`'s accesses, sent to `endpoint`. */
export function subscriptionResource(patient: string, endpoint: string): Record<string, unknown> {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'Tell me of every access to my health data',
    criteria: `AuditEvent?patient=${patient}`,
    channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json' },
  };
}

/** One subscription as the page lists it. */
export interface SubRow {
  id: string;
  endpoint: string;
  status: string;
  criteria: string;
  error?: string;
}

/** The patient's subscriptions from the gateway's searchset Bundle (at most `max`, well-formed only). */
export function subscriptionRows(bundle: unknown, max = 64): SubRow[] {
  const entries = (bundle as { entry?: unknown })?.entry;
  if (!Array.isArray(entries)) return [];
  return entries.slice(0, max).flatMap((e) => {
    const r = (e as { resource?: Record<string, unknown> })?.resource;
    const ch = r?.channel as { endpoint?: unknown } | undefined;
    if (r?.resourceType !== 'Subscription' || typeof r.id !== 'string') return [];
    return [{ id: r.id, endpoint: typeof ch?.endpoint === 'string' ? ch.endpoint : '', status: String(r.status ?? ''), criteria: String(r.criteria ?? ''), error: typeof r.error === 'string' ? r.error : undefined }];
  });
}

/** A subscription's status in words. */
export function statusWords(s: SubRow): string {
  if (s.status === 'active') return 'Active: each new access is sent there';
  if (s.status === 'error') return `Not delivering: the address did not accept the last alerts${s.error ? ` (${s.error})` : ''}`;
  if (s.status === 'off') return `Stopped by the gateway${s.error ? `: ${s.error}` : ''}`;
  return s.status;
}

// ---- the page ----

/** The remembered choice, per patient (like the consortium pin: this browser's localStorage). */
const PREF = (patient: string) => `medledger/notify/${patient}`;

function prefGet(patient: string): boolean {
  try {
    return window.localStorage.getItem(PREF(patient)) === 'on';
  } catch {
    return false;
  }
}

function prefSet(patient: string, on: boolean): void {
  try {
    if (on) window.localStorage.setItem(PREF(patient), 'on');
    else window.localStorage.removeItem(PREF(patient));
  } catch {
    // A browser that refuses storage: the choice lasts while the page is open.
  }
}

const supported = (): boolean => typeof window !== 'undefined' && 'Notification' in window;
const permission = (): NotificationPermission | 'unsupported' => (supported() ? Notification.permission : 'unsupported');

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

const page: { seen?: Seen; on: boolean; session?: () => Session | undefined; subs: SubRow[] } = { on: false, subs: [] };

/** Wires the section's buttons and form; `session` is the signed-in session (the patient's key). */
export function wireNotify(session: () => Session | undefined): void {
  page.session = session;
  $('#notify-on').addEventListener('click', () => void turnOn());
  $('#notify-off').addEventListener('click', () => {
    const p = page.seen?.patient;
    page.on = false;
    if (p) prefSet(p, false);
    render();
  });
  $('#endpoint-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void addEndpoint();
  });
  clearNotify();
}

async function turnOn(): Promise<void> {
  const p = page.seen?.patient;
  if (!p) return;
  page.on = true;
  prefSet(p, true);
  render();
  if (supported() && Notification.permission === 'default') {
    try {
      await Notification.requestPermission();
    } catch {
      // An old browser's callback form, or a refusal: the state below says which.
    }
  }
  render();
}

function render(): void {
  const signedIn = !!page.seen;
  const p = permission();
  const state = $('#notify-state');
  state.textContent = signedIn ? permissionWords(p, page.on) : 'Open your key to choose notifications.';
  state.setAttribute('data-permission', p);
  state.setAttribute('data-on', page.on ? 'yes' : 'no');
  $('#notify-on').hidden = !signedIn || p === 'unsupported' || p === 'denied' || (page.on && p === 'granted');
  $('#notify-off').hidden = !signedIn || !page.on;
  $('#endpoint-box').hidden = !signedIn;
  $('#notify-none').hidden = $('#notify-list').childElementCount > 0;
}

/** Another key was opened (or none): forget what was seen, the list and the subscriptions. */
export function clearNotify(): void {
  page.seen = undefined;
  page.on = false;
  page.subs = [];
  $('#notify-list').replaceChildren();
  $('#endpoints').hidden = true;
  $<HTMLTableElement>('#endpoints').tBodies[0]?.replaceChildren();
  $('#endpoint-summary').textContent = '';
  $('#endpoint-error').hidden = true;
  $<HTMLFormElement>('#endpoint-form').reset();
  render();
}

/**
 * A refresh showed `patient`'s rows (undefined: a list not permitted): the first call after a
 * key is opened only notes what is there; later calls notify what is new and verified.
 */
export function notifyRows(patient: string, access: AccessRow[] | undefined, refused: RefusedRow[] | undefined, names: NameBook): void {
  if (page.seen?.patient !== patient) {
    page.seen = newSeen(patient);
    page.on = prefGet(patient);
    render();
    void loadEndpoints();
  }
  const alerts = takeNew(page.seen, access, refused, names);
  if (alerts.length === 0) return;
  const list = $('#notify-list');
  list.prepend(
    ...alerts
      .slice()
      .reverse()
      .map((a) =>
        el('li', { class: a.emergency ? 'emergency' : a.kind, 'data-kind': a.kind, 'data-index': String(a.index), 'data-emergency': a.emergency ? 'yes' : 'no' }, el('strong', {}, a.title), ': ', a.body),
      ),
  );
  while (list.childElementCount > MAX_LIST) list.lastElementChild?.remove();
  render();
  if (!page.on || permission() !== 'granted') return;
  for (const n of coalesce(alerts, patient)) {
    try {
      new Notification(n.title, { body: n.body, tag: n.tag });
    } catch {
      // Some browsers (Android) allow notifications only from a service worker: the list above has them.
    }
  }
}

// ---- alerts to an address ----

function endpointError(text?: string): void {
  const box = $('#endpoint-error');
  box.hidden = !text;
  box.textContent = text ?? '';
  const input = $('#endpoint-url');
  if (text) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } else input.removeAttribute('aria-invalid');
}

/** The gateway's OperationOutcome diagnostics, or the status. */
async function answerText(r: Response): Promise<string> {
  const t = await r.text().catch(() => '');
  try {
    const d = (JSON.parse(t) as { issue?: { diagnostics?: string }[] }).issue?.[0]?.diagnostics;
    if (d) return d;
  } catch {
    // Not JSON: the status says it.
  }
  return `HTTP ${r.status}`;
}

async function addEndpoint(): Promise<void> {
  endpointError();
  const patient = page.seen?.patient;
  const S = page.session?.();
  if (!patient || !S) return endpointError('Open your key first.');
  const c = checkEndpoint($<HTMLInputElement>('#endpoint-url').value);
  if (!c.ok) return endpointError(c.text);
  const sum = $('#endpoint-summary');
  sum.textContent = 'Asking this gateway to send alerts there…';
  try {
    const r = await S.fetch('/fhir/Subscription', {
      method: 'POST',
      headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
      body: JSON.stringify(subscriptionResource(patient, c.url)),
    });
    if (page.seen?.patient !== patient) return;
    if (!r.ok) {
      sum.textContent = '';
      return endpointError(`The gateway did not set up the alerts: ${await answerText(r)}`);
    }
    $<HTMLFormElement>('#endpoint-form').reset();
    await loadEndpoints(`Alerts will be sent to ${c.url}.`);
  } catch (e) {
    sum.textContent = '';
    endpointError(`The gateway could not be reached (${msg(e)}): nothing was set up.`);
  }
}

/** Reads the patient's subscriptions at this gateway and lists them. */
async function loadEndpoints(done?: string): Promise<void> {
  const patient = page.seen?.patient;
  const S = page.session?.();
  if (!patient || !S) return;
  const sum = $('#endpoint-summary');
  try {
    const r = await S.fetch('/fhir/Subscription', { headers: { accept: 'application/fhir+json' } });
    if (page.seen?.patient !== patient) return;
    if (!r.ok) {
      sum.textContent = `Your alert addresses could not be read: ${await answerText(r)}`;
      return;
    }
    page.subs = subscriptionRows(await r.json()).filter((s) => s.criteria.startsWith('AuditEvent'));
  } catch (e) {
    if (e instanceof HttpError || e instanceof Error) sum.textContent = `Your alert addresses could not be read (${msg(e)}).`;
    return;
  }
  const table = $<HTMLTableElement>('#endpoints');
  const body = table.tBodies[0] ?? table.appendChild(el('tbody'));
  body.replaceChildren(...page.subs.map(endpointRow));
  table.hidden = page.subs.length === 0;
  const n = page.subs.length;
  sum.textContent = `${done ? `${done} ` : ''}${n === 0 ? 'No alerts are sent to any address.' : `Alerts go to ${n === 1 ? '1 address' : `${n} addresses`}.`}`;
  sum.setAttribute('data-count', String(n));
}

function endpointRow(s: SubRow): HTMLTableRowElement {
  const stop = el('button', { class: 'revoke', type: 'button', 'data-subscription-id': s.id }, 'Stop', el('span', { class: 'visually-hidden' }, ` alerts to ${s.endpoint}`));
  stop.addEventListener('click', () => void stopEndpoint(s));
  return el(
    'tr',
    { class: 'endpoint-row', 'data-subscription-id': s.id, 'data-status': s.status },
    el('td', { 'data-label': 'Address' }, s.endpoint),
    el('td', { 'data-label': 'Status' }, statusWords(s)),
    el('td', { 'data-label': 'Stop' }, stop),
  );
}

async function stopEndpoint(s: SubRow): Promise<void> {
  if (!window.confirm(`Stop sending alerts to ${s.endpoint}? Nothing more is sent there; the alerts already sent stay where they are.`)) return;
  const S = page.session?.();
  if (!S) return;
  const sum = $('#endpoint-summary');
  try {
    const r = await S.fetch(`/fhir/Subscription/${encodeURIComponent(s.id)}`, { method: 'DELETE', headers: { accept: 'application/fhir+json' } });
    if (!r.ok && r.status !== 404) {
      sum.textContent = `Alerts to ${s.endpoint} could not be stopped: ${await answerText(r)}`;
      return;
    }
    await loadEndpoints(`Alerts to ${s.endpoint} are stopped.`);
  } catch (e) {
    sum.textContent = `Alerts to ${s.endpoint} could not be stopped: the gateway could not be reached (${msg(e)}).`;
  }
}

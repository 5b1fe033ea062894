// Plain words for what the ledger stores as codes (issue 27, point 4): record types, purposes,
// roles, review states, times in the reader's own zone, and the ledger's refusals of a grant or a
// revoke. Pure, no DOM: the tests check the wording.

import { codeName } from '../codes.ts';

// ---- what: record types ----

/** FHIR resource types in words. The data-class list of the consent form is the first ten. */
export const CLASS_WORDS: Record<string, string> = {
  Observation: 'Lab result',
  DiagnosticReport: 'Diagnostic report',
  DocumentReference: 'Document (letter, note)',
  MedicationRequest: 'Prescription',
  Condition: 'Diagnosis',
  Procedure: 'Procedure (operation, treatment)',
  Immunization: 'Vaccination',
  AllergyIntolerance: 'Allergy',
  ImagingStudy: 'Imaging (X-ray, scan)',
  MedicationStatement: 'Medication taken',
  MedicationAdministration: 'Medication given',
  Encounter: 'Visit or stay',
  CarePlan: 'Care plan',
  Patient: 'Personal details',
  Claim: 'Insurance claim',
  Coverage: 'Insurance cover',
  Specimen: 'Sample (specimen)',
  FamilyMemberHistory: 'Family history',
  QuestionnaireResponse: 'Questionnaire answers',
  Consent: 'Consent',
};

/** A record type in words with its FHIR name, e.g. "Lab result (Observation)"; `*` is everything. */
export function classWords(c: string): string {
  if (c === '*') return 'All your data (*)';
  const w = CLASS_WORDS[c];
  return w ? `${w} (${c})` : c;
}

/** The types a patient picks from in the consent form (FHIR resource types; `*` is everything). */
export const DATA_CLASSES: { value: string; words: string }[] = [
  ...['Observation', 'DiagnosticReport', 'DocumentReference', 'MedicationRequest', 'Condition', 'Procedure', 'Immunization', 'AllergyIntolerance', 'ImagingStudy'].map((value) => ({ value, words: CLASS_WORDS[value] })),
  { value: '*', words: 'Everything (all my data)' },
];

// ---- why: purposes ----

export const PURPOSE_WORDS: Record<string, string> = {
  TREAT: 'Treatment',
  ETREAT: 'Emergency treatment',
  HPAYMT: 'Payment',
  HOPERAT: 'Running the hospital (operations)',
  HRESCH: 'Research',
  PATRQT: 'Your own copy (you asked for it)',
};

/** A purpose code in words (`TREAT` → "Treatment"); an unknown code as it is. */
export const purposeWords = (p: string): string => PURPOSE_WORDS[p] ?? p;

// ---- who: roles ----

export const ROLE_WORDS: Record<string, string> = {
  PHYSICIAN: 'doctor',
  NURSE: 'nurse',
  LAB_TECHNICIAN: 'lab technician',
  CLAIMS_ADJUSTER: 'insurance claims officer',
  RESEARCHER: 'researcher',
  PRIVACY_OFFICER: 'privacy officer',
};

/** A practitioner role (`PHYSICIAN`) in words ("doctor"); unknown or unset: "". */
export const roleWords = (r: string): string => ROLE_WORDS[r] ?? '';

/** What was done: a read is the default, a write is said. */
export const actionWords = (a: string): string => (a === 'WRITE' ? 'added or changed' : 'read');

/** A break-glass access's review (`PENDING`, `JUSTIFIED`, `UNJUSTIFIED`) in words. */
export function reviewWords(r: string, reviewer: string): string {
  const by = reviewer ? ` by ${reviewer}` : '';
  if (r === 'JUSTIFIED') return `reviewed${by}: justified`;
  if (r === 'UNJUSTIFIED') return `reviewed${by}: NOT justified`;
  return 'not reviewed yet';
}

/**
 * A break-glass access's review status as the banner says it (issue 27, point 6): "waiting for
 * review", "reviewed: justified", "reviewed: NOT justified"; anything else "no review opened".
 */
export function reviewStatusWords(r: string): string {
  if (r === 'PENDING') return 'waiting for review';
  if (r === 'JUSTIFIED') return 'reviewed: justified';
  if (r === 'UNJUSTIFIED') return 'reviewed: NOT justified';
  return 'no review opened';
}

// ---- when ----

/**
 * Unix seconds (block time) in the reader's local time with its zone, e.g. "12 Mar 2026, 14:05
 * CET". `locale` and `timeZone` default to the device's (the tests name them).
 */
export function localTime(secs: bigint | number, locale?: string, timeZone?: string): string {
  const n = Number(secs);
  if (!n) return '';
  return new Intl.DateTimeFormat(locale, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short', timeZone }).format(new Date(n * 1000));
}

/** "N minutes ago" style age of a time, from the device's clock. */
export function age(nowMs: number, thenMs: number): string {
  const s = Math.max(0, Math.floor((nowMs - thenMs) / 1000));
  if (s < 60) return 'less than a minute ago';
  const m = Math.floor(s / 60);
  if (m < 120) return `${m} minute${m === 1 ? '' : 's'} ago`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} hours ago` : `${Math.floor(h / 24)} days ago`;
}

// ---- why a row did not verify, in words ----

/**
 * Why a value did not verify (the verifier's message, ledger.ts and compact.ts), in words; the
 * technical message stays with the "How is this checked?" details and the row's data-error.
 */
export function reasonWords(error: string): string {
  const known: [RegExp, string][] = [
    [/does not verify against app hash|compact proof|proof kind does not match|proof is for another key/i, "the gateway's answer does not match the ledger: it may have been altered"],
    [/answered at height/i, 'the gateway answered for another moment of the ledger than the one checked'],
    [/carries no proof|unknown proof type/i, 'the gateway sent it without a proof the page can check'],
    [/not the one|is missing|no such consent/i, `${error}: the gateway may be hiding or swapping entries`],
    [/does not decode/i, `${error}: it may have been altered`],
  ];
  for (const [re, words] of known) if (re.test(error)) return words;
  return error;
}

// ---- the ledger's refusals, in words ----

/** What was asked, to word a refusal: a grant to `grantee`, a revoke of `consentId`, or a report. */
export interface Asked {
  grantee?: string;
  consentId?: string;
  /** A report of an access: how the page names it ("access #3 by Dr Ada Lovelace"). */
  report?: string;
}

/**
 * Why the ledger refused a patient's grant or revoke, in words a patient can act on; the code's
 * name follows in brackets (for the hospital's help desk). The ledger's own log is not shown: it
 * is written for operators (it may say to run a CLI command).
 */
export function refusalWords(code: number, asked: Asked = {}): string {
  const who = asked.grantee ? `"${asked.grantee}"` : 'that name';
  const consent = asked.consentId ? `consent ${asked.consentId}` : 'this consent';
  const name = codeName(code);
  const words: Record<string, string> = {
    SEQUENCE_REUSED: 'Another change from your key reached the ledger first (perhaps from another window). Nothing was changed: try again.',
    SEQUENCE_GAP: 'Another change from your key reached the ledger first (perhaps from another window). Nothing was changed: try again.',
    NONCE_REUSED: 'This change was already sent once. Nothing more was changed.',
    FIELD_TOO_LONG: 'A name in the form is too long (at most 64 letters). Nothing was changed.',
    TOO_MANY_ITEMS: 'Too many kinds of data were picked at once. Nothing was changed.',
    INVALID_FIELD: 'The ledger did not accept the form as filled in: check who, the kinds of data, and the study id for research. Nothing was changed.',
    UNKNOWN_SIGNER: 'The ledger does not know your key: you are not enrolled yet. Give your public key to your hospital.',
    KEY_RETIRED: 'This key was replaced by a newer one and can no longer sign: open your current key file.',
    NOT_AUTHORIZED: 'Your key may not make this change. Nothing was changed.',
    UNKNOWN_MEMBER: `There is no hospital, lab or other member called ${who} on the ledger. Check the id with them (ids are case-sensitive, for example hospital-a). Nothing was granted.`,
    MEMBER_ID_RETIRED: `${who} has left the consortium. Nothing was granted.`,
    UNKNOWN_PRACTITIONER: `There is no practitioner ${who} on the ledger. Check the id with them. Nothing was granted.`,
    PRACTITIONER_INACTIVE: `${who} is suspended or no longer practising. Nothing was granted.`,
    TOO_MANY_CONSENTS: 'You already have as many consents as the ledger allows (in all, or to this one grantee). Revoke one you no longer need, then try again.',
    UNKNOWN_CONSENT: `The ledger holds no ${consent}. Nothing was changed.`,
    NOT_CONSENT_OWNER: `${consent[0].toUpperCase()}${consent.slice(1)} is not yours, so you cannot revoke it.`,
    CONSENT_ALREADY_REVOKED: `${consent[0].toUpperCase()}${consent.slice(1)} was already revoked.`,
    MEMPOOL_LANE_FULL: 'The ledger is busy right now. Nothing was changed: try again in a minute.',
    NODE_STORAGE: 'The ledger had a problem storing it. Nothing was changed: try again later.',
    OUTSIDE_VALIDITY_WINDOW: "This device's clock may be wrong. Nothing was changed: check the time and try again.",
    BAD_PATIENT_BOX_KEY: 'The ledger did not accept the download key this page made from your key. Nothing was changed: reload the page and try again.',
    NOT_OWN_PATIENT_ID: 'Your key can set up downloads and download records only for yourself. Nothing was changed.',
    PATIENT_ONLY: 'Only the patient themself can do this, with their own key. Nothing was changed.',
    NO_PATIENT_BOX_KEY: 'Downloads are not set up yet: press "Set up downloads" first, then try again.',
    PATIENT_PURPOSE_ONLY: 'Your key may only log downloads of your own records. Nothing was changed.',
    UNKNOWN_ACCESS_EVENT: 'The ledger holds no such access in your history. Nothing was reported.',
    OWN_ACCESS_NOT_REPORTABLE: 'This is your own download of your records: there is nobody else to report. Nothing was reported.',
    ALREADY_REPORTED: 'You reported this access already; its review is shown in your history. Nothing more was sent.',
    TOO_MANY_REPORTS: 'The ledger takes only a few reports at a time. Nothing was reported: try again in a minute.',
  };
  const pageFault = ['TX_DECODE', 'TX_TOO_LARGE', 'NON_CANONICAL', 'BAD_PUBLIC_KEY', 'BAD_SIGNATURE', 'WRONG_CHAIN_ID', 'MISSING_MESSAGE', 'UNORDERED_NOT_ALLOWED'];
  const text = words[name] ?? (pageFault.includes(name) ? 'This page could not sign it in a way the ledger accepts. Nothing was changed: reload the page and try again.' : 'The ledger refused it. Nothing was changed.');
  return `${text} (ledger code ${name})`;
}

// State keys (crates/tx/src/keys.rs): readable `domain/part/part`, numbers zero-padded to 20.

import { pad20 } from './bytes.ts';

type N = bigint | number;
export const member = (id: string) => `member/${id}`;
export const keyOwner = (hexKey: string) => `keyowner/${hexKey.toLowerCase()}`;
export const sequence = (hexKey: string) => `seq/${hexKey.toLowerCase()}`;
export const patient = (id: string) => `patient/${id}`;
export const consent = (id: string) => `consent/${id}`;
export const patientConsentCount = (p: string) => `patient-consents/${p}/count`;
export const patientConsent = (p: string, n: N) => `patient-consents/${p}/${pad20(n)}`;
export const accessCount = (p: string) => `access/${p}/count`;
export const accessEvent = (p: string, n: N) => `access/${p}/${pad20(n)}`;
/** The access history's digest: its count and the head of the hash chain over its events. */
export const accessDigest = (p: string) => `access/${p}/digest`;
/** A patient's refused access attempts (docs/rules.md, "Refused attempts"): count, entries, digest. */
export const refusedCount = (p: string) => `refused/${p}/count`;
export const refusedAttempt = (p: string, n: N) => `refused/${p}/${pad20(n)}`;
export const refusedDigest = (p: string) => `refused/${p}/digest`;
/** How many of the patient's refused attempts the ledger did not record (over its bounds). */
export const refusedDropped = (p: string) => `refused/${p}/dropped`;
export const validators = () => 'validators';
export const certificate = (h: N) => `cert/${pad20(h)}`;
export const latestCertificate = () => 'cert/latest';
export const validatorChangeCount = () => 'validators/changes/count';
export const validatorChange = (n: N) => `validators/changes/${pad20(n)}`;
export const practitioner = (did: string) => `practitioner/${did}`;
export const record = (id: string) => `record/${id}`;
export const claim = (id: string) => `claim/${id}`;
/** The patient's pending guardian-set change and/or key rotation (absent: nothing pending). */
export const guardianChange = (p: string) => `guardian-change/${p}`;
/**
 * The time (unix seconds, 8-byte big-endian) of the block that made the state, proven at the
 * certified height (absent on a ledger that does not store it; the page then says how long ago
 * it saw the certified state advance).
 */
export const blockTime = () => 'block-time';
/** The approved release of the pages (WebRelease; absent: none approved). */
export const webRelease = () => 'params/web-release';

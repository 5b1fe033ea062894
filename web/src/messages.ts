// Schemas of the medledger protobuf messages the pages decode (proto/medledger/v1/*.proto), and
// the encoders of the transactions a patient signs.

import { decode, Writer, type Schema, type Decoded } from './proto.ts';

export const PURPOSE: Record<number, string> = { 0: 'UNSPECIFIED', 1: 'TREAT', 2: 'ETREAT', 3: 'HPAYMT', 4: 'HOPERAT', 5: 'HRESCH' };
export const ACTION: Record<number, string> = { 0: 'UNSPECIFIED', 1: 'READ', 2: 'WRITE' };
export const REVIEW: Record<number, string> = { 0: 'UNSPECIFIED', 1: 'PENDING', 2: 'JUSTIFIED', 3: 'UNJUSTIFIED' };
export const MEMBER_KIND: Record<number, string> = { 0: 'UNSPECIFIED', 1: 'HOSPITAL', 2: 'LAB', 3: 'INSURER', 4: 'RESEARCH', 5: 'REGULATOR' };
export const ROLE: Record<number, string> = {
  0: 'UNSPECIFIED', 1: 'PHYSICIAN', 2: 'NURSE', 3: 'LAB_TECHNICIAN', 4: 'CLAIMS_ADJUSTER', 5: 'RESEARCHER', 6: 'PRIVACY_OFFICER',
};
export const PRACTITIONER_STATUS: Record<number, string> = { 0: 'UNSPECIFIED', 1: 'ACTIVE', 2: 'SUSPENDED', 3: 'REVOKED' };
export const CLAIM_STATUS: Record<number, string> = {
  0: 'UNSPECIFIED', 1: 'PENDING', 2: 'APPROVED', 3: 'PARTIALLY_APPROVED', 4: 'DENIED', 5: 'PAID', 6: 'APPEALED',
};

const S = (name: string, fields: Schema['fields'], oneof?: string): Schema => ({ name, fields, oneof });

export const Member = S('Member', {
  1: { name: 'id', type: 'string' },
  2: { name: 'name', type: 'string' },
  3: { name: 'kind', type: { enum: MEMBER_KIND } },
  4: { name: 'admin_key', type: 'bytes' },
});

export const KeyOwner = S(
  'KeyOwner',
  {
    1: { name: 'member_id', type: 'string' },
    2: { name: 'patient_id', type: 'string' },
    3: { name: 'practitioner_did', type: 'string' },
    4: { name: 'retired_member_key', type: 'string' },
    5: { name: 'retired_patient_key', type: 'string' },
  },
  'owner',
);

export const Patient = S('Patient', {
  1: { name: 'id', type: 'string' },
  2: { name: 'key', type: 'bytes' },
  3: { name: 'registered_height', type: 'uint64' },
  4: { name: 'enrolled_by', type: 'string' },
});

export const Consent = S('Consent', {
  1: { name: 'id', type: 'string' },
  2: { name: 'patient_id', type: 'string' },
  3: { name: 'grantee', type: 'string' },
  4: { name: 'data_classes', type: 'string', repeated: true },
  5: { name: 'purposes', type: { enum: PURPOSE }, repeated: true },
  6: { name: 'not_before', type: 'uint64' },
  7: { name: 'not_after', type: 'uint64' },
  8: { name: 'granted_height', type: 'uint64' },
  9: { name: 'revoked_height', type: 'uint64' },
  10: { name: 'actions', type: { enum: ACTION }, repeated: true },
  11: { name: 'deny_classes', type: 'string', repeated: true },
  12: { name: 'record_ids', type: 'string', repeated: true },
  13: { name: 'study_id', type: 'string' },
});

export const AccessEvent = S('AccessEvent', {
  1: { name: 'patient_id', type: 'string' },
  2: { name: 'index', type: 'uint64' },
  3: { name: 'actor', type: 'string' },
  4: { name: 'record_id', type: 'string' },
  5: { name: 'data_class', type: 'string' },
  6: { name: 'purpose', type: { enum: PURPOSE } },
  7: { name: 'consent_id', type: 'string' },
  8: { name: 'height', type: 'uint64' },
  9: { name: 'time', type: 'uint64' },
  10: { name: 'action', type: { enum: ACTION } },
  11: { name: 'practitioner', type: 'string' },
  12: { name: 'break_glass', type: 'bool' },
  14: { name: 'review', type: { enum: REVIEW } },
  15: { name: 'reviewer', type: 'string' },
  17: { name: 'break_glass_reason_hash', type: 'bytes' },
  18: { name: 'review_note_hash', type: 'bytes' },
});

export const Validator = S('Validator', {
  1: { name: 'address', type: 'bytes' },
  2: { name: 'member_id', type: 'string' },
  3: { name: 'bls_key', type: 'bytes' },
  4: { name: 'power', type: 'uint64' },
  5: { name: 'pub_key', type: 'bytes' },
});

export const ValidatorSet = S('ValidatorSet', {
  1: { name: 'validators', type: { message: Validator }, repeated: true },
});

export const Certificate = S('Certificate', {
  1: { name: 'chain_id', type: 'string' },
  2: { name: 'height', type: 'uint64' },
  3: { name: 'app_hash', type: 'bytes' },
  4: { name: 'signers', type: 'bytes' },
  5: { name: 'aggregate_signature', type: 'bytes' },
});

export const RecordAnchor = S('RecordAnchor', {
  1: { name: 'record_id', type: 'string' },
  2: { name: 'patient_id', type: 'string' },
  3: { name: 'custodian', type: 'string' },
  4: { name: 'resource_type', type: 'string' },
  5: { name: 'content_hash', type: 'bytes' },
  6: { name: 'size', type: 'uint64' },
  7: { name: 'key_id', type: 'string' },
  8: { name: 'anchored_by', type: 'string' },
  9: { name: 'anchored_height', type: 'uint64' },
  10: { name: 'erased_height', type: 'uint64' },
  11: { name: 'erased_by', type: 'string' },
  13: { name: 'erase_reason_hash', type: 'bytes' },
  14: { name: 'erasure_confirmed_height', type: 'uint64' },
  15: { name: 'erasure_confirmed_by', type: 'string' },
});

export const Practitioner = S('Practitioner', {
  1: { name: 'did', type: 'string' },
  2: { name: 'member_id', type: 'string' },
  3: { name: 'public_key', type: 'bytes' },
  4: { name: 'role', type: { enum: ROLE } },
  5: { name: 'licence_hash', type: 'bytes' },
  6: { name: 'valid_until', type: 'uint64' },
  7: { name: 'status', type: { enum: PRACTITIONER_STATUS } },
  8: { name: 'name', type: 'string' },
  9: { name: 'registered_height', type: 'uint64' },
  11: { name: 'status_reason_hash', type: 'bytes' },
});

const ClaimItem = S('ClaimItem', {
  1: { name: 'service_code', type: 'string' },
  2: { name: 'quantity', type: 'uint64' },
  3: { name: 'unit_price', type: 'uint64' },
  4: { name: 'modifier', type: 'string' },
});
const ItemDecision = S('ItemDecision', {
  1: { name: 'approved_amount', type: 'uint64' },
  2: { name: 'copay', type: 'uint64' },
  3: { name: 'reasons', type: 'string', repeated: true },
});

export const Claim = S('Claim', {
  1: { name: 'id', type: 'string' },
  2: { name: 'provider', type: 'string' },
  3: { name: 'submitted_by', type: 'string' },
  4: { name: 'patient_id', type: 'string' },
  5: { name: 'insurer', type: 'string' },
  6: { name: 'policy_id', type: 'string' },
  7: { name: 'policy_version', type: 'uint64' },
  8: { name: 'service_date', type: 'uint64' },
  9: { name: 'items', type: { message: ClaimItem }, repeated: true },
  10: { name: 'record_ids', type: 'string', repeated: true },
  11: { name: 'decisions', type: { message: ItemDecision }, repeated: true },
  12: { name: 'total_claimed', type: 'uint64' },
  13: { name: 'total_approved', type: 'uint64' },
  14: { name: 'total_copay', type: 'uint64' },
  15: { name: 'status', type: { enum: CLAIM_STATUS } },
  16: { name: 'appealed', type: 'bool' },
  18: { name: 'payment_reference', type: 'string' },
  19: { name: 'submitted_height', type: 'uint64' },
  20: { name: 'decided_height', type: 'uint64' },
  21: { name: 'consent_id', type: 'string' },
  22: { name: 'total_benefit', type: 'uint64' },
  23: { name: 'decided_by', type: 'string' },
  25: { name: 'paid_height', type: 'uint64' },
  26: { name: 'appeal_reason_hash', type: 'bytes' },
  27: { name: 'decision_note_hash', type: 'bytes' },
  28: { name: 'evidence', type: 'uint64', repeated: true },
  29: { name: 'coverage_index', type: 'uint64' },
});

export const SetGuardians = S('SetGuardians', {
  1: { name: 'guardian_keys', type: 'bytes', repeated: true },
  2: { name: 'threshold', type: 'uint32' },
});

/** `guardian-change/{patient}` (proto/medledger/v1/identity.proto): what waits the guardian-change delay. */
export const PendingPatientChange = S('PendingPatientChange', {
  1: { name: 'guardians', type: { message: SetGuardians } },
  2: { name: 'guardians_effective_time', type: 'uint64' },
  3: { name: 'guardians_requested_height', type: 'uint64' },
  4: { name: 'new_key', type: 'bytes' },
  5: { name: 'key_effective_time', type: 'uint64' },
  6: { name: 'key_requested_height', type: 'uint64' },
});

// ---- typed views ----

export interface ConsentV {
  id: string;
  patient_id: string;
  grantee: string;
  data_classes: string[];
  purposes: string[];
  not_before: bigint;
  not_after: bigint;
  granted_height: bigint;
  revoked_height: bigint;
  actions: string[];
  deny_classes: string[];
  record_ids: string[];
  study_id: string;
}
export interface AccessEventV {
  patient_id: string;
  index: bigint;
  actor: string;
  record_id: string;
  data_class: string;
  purpose: string;
  consent_id: string;
  height: bigint;
  time: bigint;
  action: string;
  practitioner: string;
  break_glass: boolean;
  review: string;
  reviewer: string;
  break_glass_reason_hash: Uint8Array;
  review_note_hash: Uint8Array;
}
export interface ValidatorV {
  address: Uint8Array;
  member_id: string;
  bls_key: Uint8Array;
  power: bigint;
  pub_key: Uint8Array;
}
export interface CertificateV {
  chain_id: string;
  height: bigint;
  app_hash: Uint8Array;
  signers: Uint8Array;
  aggregate_signature: Uint8Array;
}

export interface SetGuardiansV {
  guardian_keys: Uint8Array[];
  threshold: number;
}
export interface PendingPatientChangeV {
  /** The pending guardian set; undefined when the field is absent. */
  guardians?: SetGuardiansV;
  /** Unix seconds of block time from which the set applies (0: no guardian change pending). */
  guardians_effective_time: bigint;
  guardians_requested_height: bigint;
  /** The pending new key (empty: no rotation pending). */
  new_key: Uint8Array;
  /** Unix seconds of block time from which the rotation may be completed (0: none pending). */
  key_effective_time: bigint;
  key_requested_height: bigint;
}

export const decodeAs = <T>(schema: Schema, b: Uint8Array): T => decode(schema, b) as T;
export const decodeConsent = (b: Uint8Array) => decodeAs<ConsentV>(Consent, b);
export const decodeAccessEvent = (b: Uint8Array) => decodeAs<AccessEventV>(AccessEvent, b);
export const decodeCertificate = (b: Uint8Array) => decodeAs<CertificateV>(Certificate, b);
export const decodeValidatorSet = (b: Uint8Array) => decodeAs<{ validators: ValidatorV[] }>(ValidatorSet, b);
export const decodePendingPatientChange = (b: Uint8Array) => decodeAs<PendingPatientChangeV>(PendingPatientChange, b);
export const decodeKeyOwner = (b: Uint8Array): { kind: string; id: string } => {
  const d = decode(KeyOwner, b) as Decoded;
  const kind = (d.owner as string) ?? '';
  return { kind, id: kind ? (d[kind] as string) : '' };
};

// ---- transactions ----

export const PURPOSE_CODE: Record<string, number> = { TREAT: 1, ETREAT: 2, HPAYMT: 3, HOPERAT: 4, HRESCH: 5 };
export const ACTION_CODE: Record<string, number> = { READ: 1, WRITE: 2 };

export interface GrantConsentMsg {
  grantee: string;
  data_classes: string[];
  purposes: string[];
  not_before?: bigint;
  not_after?: bigint;
  actions?: string[];
  deny_classes?: string[];
  record_ids?: string[];
  study_id?: string;
}

export function encodeGrantConsent(m: GrantConsentMsg): Uint8Array {
  const code = (table: Record<string, number>, what: string) => (s: string) => {
    const c = table[s];
    if (c === undefined) throw new Error(`unknown ${what} ${s}`);
    return c;
  };
  return new Writer()
    .string(1, m.grantee)
    .repeatedString(2, m.data_classes)
    .packed(3, m.purposes.map(code(PURPOSE_CODE, 'purpose')))
    .uint(4, m.not_before ?? 0n)
    .uint(5, m.not_after ?? 0n)
    .packed(6, (m.actions ?? []).map(code(ACTION_CODE, 'action')))
    .repeatedString(7, m.deny_classes ?? [])
    .repeatedString(8, m.record_ids ?? [])
    .string(9, m.study_id ?? '')
    .finish();
}

export function encodeRevokeConsent(consentId: string): Uint8Array {
  return new Writer().string(1, consentId).finish();
}

export type TxMsg = { grant_consent: GrantConsentMsg } | { revoke_consent: { consent_id: string } };

/** TxBody{chain_id = 1, sequence = 2, msg oneof: grant_consent = 11, revoke_consent = 12}. */
export function encodeTxBody(chainId: string, sequence: bigint, msg: TxMsg): Uint8Array {
  const w = new Writer().string(1, chainId).uint(2, sequence);
  if ('grant_consent' in msg) w.message(11, encodeGrantConsent(msg.grant_consent));
  else w.message(12, encodeRevokeConsent(msg.revoke_consent.consent_id));
  return w.finish();
}

/** Tx{body = 1, public_key = 2, signature = 3}. */
export function encodeTx(body: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): Uint8Array {
  return new Writer().bytes(1, body).bytes(2, publicKey).bytes(3, signature).finish();
}

// The medledger protobuf messages the pages read, and the transactions a patient signs. Every
// type, decoder and encoder is generated from proto/ (src/gen/, `npm run gen`; `npm run
// check-gen` fails when it is stale), the schemas prost compiles for the ledger: nothing here
// re-declares a field. This module only names what the pages use, and shows a decoded message
// with the proto's own field and enum names (the auditor's table, the history's columns).

import { create, fromBinary, toBinary, type DescEnum, type DescField, type DescMessage, type MessageInitShape } from '@bufbuild/protobuf';
import { ActionSchema, PurposeSchema } from './gen/medledger/v1/common_pb.ts';
import { PendingPatientChangeSchema, PractitionerRoleSchema, PractitionerSchema, type PendingPatientChange, type Practitioner } from './gen/medledger/v1/identity_pb.ts';
import { AccessEventSchema, CertificateSchema, ConsentSchema, KeyOwnerSchema, MemberSchema, ReviewStatusSchema, ValidatorSetSchema, type AccessEvent, type Certificate, type Consent, type Member, type Validator } from './gen/medledger/v1/state_pb.ts';
import { GrantConsentSchema, RevokeConsentSchema, TxBodySchema, TxSchema, type TxBody } from './gen/medledger/v1/tx_pb.ts';

export { Action, Purpose } from './gen/medledger/v1/common_pb.ts';
export { ReviewStatus, type AccessEvent, type Certificate, type Consent, type Member, type Validator } from './gen/medledger/v1/state_pb.ts';
export { PractitionerStatus, type PendingPatientChange, type Practitioner, type SetGuardians } from './gen/medledger/v1/identity_pb.ts';

// ---- decoding ----
// fromBinary: proto3 defaults for absent fields, strict UTF-8, unknown fields kept aside; a
// truncated or malformed value throws.

export const decodeConsent = (b: Uint8Array): Consent => fromBinary(ConsentSchema, b);
export const decodeAccessEvent = (b: Uint8Array): AccessEvent => fromBinary(AccessEventSchema, b);
export const decodeCertificate = (b: Uint8Array): Certificate => fromBinary(CertificateSchema, b);
export const decodeValidatorSet = (b: Uint8Array): { validators: Validator[] } => fromBinary(ValidatorSetSchema, b);
export const decodePendingPatientChange = (b: Uint8Array): PendingPatientChange => fromBinary(PendingPatientChangeSchema, b);
export const decodeMember = (b: Uint8Array): Member => fromBinary(MemberSchema, b);
export const decodePractitioner = (b: Uint8Array): Practitioner => fromBinary(PractitionerSchema, b);

/** Who owns a key: the `owner` case by its proto field name (`patient_id`, `retired_patient_key`, …; '' when unset) and its id. */
export function decodeKeyOwner(b: Uint8Array): { kind: string; id: string } {
  const o = fromBinary(KeyOwnerSchema, b).owner;
  return o.case === undefined ? { kind: '', id: '' } : { kind: KeyOwnerSchema.field[o.case].name, id: o.value };
}

// ---- names, as the proto spells them ----

/** An enum value's name without the enum's prefix (`PURPOSE_TREAT` → `TREAT`); an unknown number as it is. */
export const enumName = (e: DescEnum, n: number): string => e.value[n]?.localName ?? String(n);
export const purposeName = (p: number): string => enumName(PurposeSchema, p);
export const actionName = (a: number): string => enumName(ActionSchema, a);
export const reviewName = (r: number): string => enumName(ReviewStatusSchema, r);
export const roleName = (r: number): string => enumName(PractitionerRoleSchema, r);

/** A purpose by its name (`TREAT`); throws for a name the proto does not have. */
export function purposeByName(name: string): number {
  const v = PurposeSchema.values.find((x) => x.localName === name && x.number !== 0);
  if (!v) throw new Error(`unknown purpose ${name}`);
  return v.number;
}

/**
 * A decoded message as a plain object keyed by the proto's field names, with enum values by name
 * and nested messages likewise (a oneof shows only its set field). For display only.
 */
export function view(desc: DescMessage, m: object): Record<string, unknown> {
  const fields = m as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of desc.fields) {
    if (f.oneof) {
      const o = fields[f.oneof.localName] as { case?: string; value?: unknown } | undefined;
      if (o?.case === f.localName) out[f.name] = viewValue(f, o.value);
    } else out[f.name] = viewValue(f, fields[f.localName]);
  }
  return out;
}

function viewValue(f: DescField, v: unknown): unknown {
  switch (f.fieldKind) {
    case 'enum':
      return enumName(f.enum, v as number);
    case 'message':
      return v === undefined ? undefined : view(f.message, v as object);
    case 'list':
      if (f.listKind === 'enum') return (v as number[]).map((x) => enumName(f.enum, x));
      if (f.listKind === 'message') return (v as object[]).map((x) => view(f.message, x));
      return v;
    default:
      return v;
  }
}

// ---- transactions ----

/** The message a tx carries: TxBody's `msg` oneof (the pages send `grantConsent` and `revokeConsent`). */
export type TxMsg = TxBody['msg'];

export const grantConsent = (m: MessageInitShape<typeof GrantConsentSchema>): TxMsg => ({ case: 'grantConsent', value: create(GrantConsentSchema, m) });
export const revokeConsent = (consentId: string): TxMsg => ({ case: 'revokeConsent', value: create(RevokeConsentSchema, { consentId }) });

/**
 * TxBody{chain_id, sequence, msg} in the canonical encoding prost writes and the ledger demands
 * (fields in number order, defaults omitted, repeated enums packed).
 */
export const encodeTxBody = (chainId: string, sequence: bigint, msg: TxMsg): Uint8Array => toBinary(TxBodySchema, create(TxBodySchema, { chainId, sequence, msg }));

/** Tx{body, public_key, signature}. */
export const encodeTx = (body: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): Uint8Array => toBinary(TxSchema, create(TxSchema, { body, publicKey, signature }));

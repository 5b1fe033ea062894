//! Stateless checks of practitioner and patient-key messages.

use super::{check_count, check_id, check_text, check_text_hash};
use crate::error::{Code, TxError};
use crate::limits::{MAX_GUARDIANS, MAX_TEXT_LEN};
use crate::pb::{
    PractitionerRole, PractitionerStatus, RecoverPatientKey, RegisterPatient,
    RegisterPatientBoxKey, RegisterPractitioner, RotatePatientKey, SetGuardians,
    SetPractitionerStatus,
};

fn check_key(field: &str, key: &[u8]) -> Result<(), TxError> {
    if key.len() != 32 {
        return Err(TxError::new(
            Code::BadPublicKey,
            format!("{field} is {} bytes; an Ed25519 key is 32", key.len()),
        ));
    }
    Ok(())
}

pub(crate) fn check_register_practitioner(m: &RegisterPractitioner) -> Result<(), TxError> {
    check_key("public_key", &m.public_key)?;
    check_proof("key_proof", &m.key_proof)?;
    match PractitionerRole::try_from(m.role) {
        Ok(PractitionerRole::Unspecified) | Err(_) => {
            return Err(TxError::new(
                Code::InvalidField,
                format!("role {} is not a practitioner role", m.role),
            ))
        }
        Ok(_) => {}
    }
    if m.licence_hash.len() != 32 {
        return Err(TxError::new(
            Code::InvalidField,
            "licence_hash must be the 32-byte SHA-256 of the licence credential",
        ));
    }
    check_text("name", &m.name, MAX_TEXT_LEN)
}

pub(crate) fn check_practitioner_status(m: &SetPractitionerStatus) -> Result<(), TxError> {
    check_id("did", &m.did)?;
    match PractitionerStatus::try_from(m.status) {
        Ok(PractitionerStatus::Unspecified) | Err(_) => {
            return Err(TxError::new(
                Code::InvalidField,
                "status must be ACTIVE, SUSPENDED or REVOKED",
            ))
        }
        Ok(_) => {}
    }
    check_text_hash("reason_hash", &m.reason_hash, true)
}

/// Proofs of possession are Ed25519 signatures; the state machine verifies them.
fn check_proof(field: &str, proof: &[u8]) -> Result<(), TxError> {
    if proof.len() != 64 {
        return Err(TxError::new(
            Code::BadKeyProof,
            format!(
                "{field} is {} bytes; a key proof is a 64-byte signature",
                proof.len()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_register_patient(m: &RegisterPatient) -> Result<(), TxError> {
    check_key("patient_key", &m.patient_key)?;
    check_proof("key_proof", &m.key_proof)
}

pub(crate) fn check_guardians(m: &SetGuardians) -> Result<(), TxError> {
    check_count("guardian_keys", m.guardian_keys.len(), MAX_GUARDIANS)?;
    for k in &m.guardian_keys {
        check_key("guardian_keys", k)?;
    }
    let mut sorted = m.guardian_keys.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != m.guardian_keys.len() {
        return Err(TxError::new(
            Code::InvalidField,
            "guardian_keys: a guardian is listed twice",
        ));
    }
    let n = m.guardian_keys.len() as u64;
    let t = u64::from(m.threshold);
    if (n == 0 && t != 0) || (n > 0 && (t == 0 || t > n)) {
        return Err(TxError::new(
            Code::InvalidField,
            format!("threshold {t} must be between 1 and the {n} guardians (0 with none)"),
        ));
    }
    Ok(())
}

pub(crate) fn check_rotate(m: &RotatePatientKey) -> Result<(), TxError> {
    check_key("new_key", &m.new_key)?;
    check_proof("new_key_proof", &m.new_key_proof)
}

pub(crate) fn check_recover(m: &RecoverPatientKey) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_key("new_key", &m.new_key)?;
    check_count("approvals", m.approvals.len(), MAX_GUARDIANS)?;
    for a in &m.approvals {
        check_key("approvals.guardian_key", &a.guardian_key)?;
        if a.signature.len() != 64 {
            return Err(TxError::new(
                Code::BadSignature,
                "approvals.signature must be 64 bytes",
            ));
        }
    }
    Ok(())
}

/// RegisterPatientBoxKey: the patient id, and a box key that is a usable X25519 public key
/// ([`crate::boxkey::check_x25519_public`]).
pub(crate) fn check_patient_box_key(m: &RegisterPatientBoxKey) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    crate::boxkey::check_x25519_public(&m.box_key).map(|_| ())
}

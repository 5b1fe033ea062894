//! Proof of possession for a key that a transaction hands rights to (a patient's key at
//! enrolment or rotation, a practitioner's key at registration).
//!
//! Without it, a signer could name any public key it does not hold, for example the new admin
//! key of an open governance proposal, and squat it (the proposal then fails `KEY_IN_USE`).
//! The named key signs:
//!
//! `"medledger/key-proof/v1" || 0x00 || len(chain_id) || chain_id || len(purpose) || purpose ||
//! len(subject) || subject || key (32)`
//!
//! with lengths as one byte (every field is far shorter than 255 bytes by the tx limits).
//! `purpose` is one of the constants below; `subject` is the member id (enrolment, practitioner
//! registration) or the patient id (rotation), so a proof made for one use serves no other.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::error::{Code, TxError};

/// Domain separation of key proofs.
pub const KEY_PROOF_NAMESPACE: &[u8] = b"medledger/key-proof/v1";
/// Purpose: a member enrols the patient holding the key (subject: the member id).
pub const ENROL_PATIENT: &str = "enrol-patient";
/// Purpose: a patient rotates to the key (subject: the patient id).
pub const ROTATE_PATIENT_KEY: &str = "rotate-patient-key";
/// Purpose: a member registers the practitioner holding the key (subject: the member id).
pub const REGISTER_PRACTITIONER: &str = "register-practitioner";

/// The bytes the key signs.
pub fn statement(chain_id: &str, purpose: &str, subject: &str, key: &[u8; 32]) -> Vec<u8> {
    let mut m = KEY_PROOF_NAMESPACE.to_vec();
    m.push(0);
    for field in [chain_id, purpose, subject] {
        m.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
        m.extend_from_slice(field.as_bytes());
    }
    m.extend_from_slice(key);
    m
}

/// The proof `key` makes for `purpose` and `subject`.
pub fn prove(key: &SigningKey, chain_id: &str, purpose: &str, subject: &str) -> [u8; 64] {
    let pk = key.verifying_key().to_bytes();
    key.sign(&statement(chain_id, purpose, subject, &pk))
        .to_bytes()
}

/// Checks `proof`: `key` is a valid, non-weak Ed25519 key and signed the statement (strict
/// verification). Refuses with [`Code::BadKeyProof`].
pub fn verify(
    key: &[u8; 32],
    proof: &[u8],
    chain_id: &str,
    purpose: &str,
    subject: &str,
) -> Result<(), TxError> {
    let refuse = |why: &str| {
        TxError::new(
            Code::BadKeyProof,
            format!("the new key must prove it is held ({purpose} for {subject:?}): {why}"),
        )
    };
    let sig = <[u8; 64]>::try_from(proof).map_err(|_| refuse("the proof must be 64 bytes"))?;
    let vk = VerifyingKey::from_bytes(key).map_err(|_| refuse("not an Ed25519 public key"))?;
    if vk.is_weak() {
        return Err(refuse("a weak key"));
    }
    vk.verify_strict(
        &statement(chain_id, purpose, subject, key),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| refuse("the signature does not verify"))
}

/// A member's `RegisterPatient` of `patient`, with the patient's proof for `member` (the patient
/// signs it where their key is; clients, tests and the load generator build it here).
pub fn enrol_patient(
    patient: &SigningKey,
    chain_id: &str,
    member: &str,
) -> crate::pb::RegisterPatient {
    crate::pb::RegisterPatient {
        patient_key: patient.verifying_key().to_bytes().to_vec(),
        key_proof: prove(patient, chain_id, ENROL_PATIENT, member).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_serves_one_chain_purpose_subject_and_key() {
        let k = SigningKey::from_bytes(&[5; 32]);
        let pk = k.verifying_key().to_bytes();
        let p = prove(&k, "c", ENROL_PATIENT, "hospital-a");
        assert!(verify(&pk, &p, "c", ENROL_PATIENT, "hospital-a").is_ok());
        for (chain, purpose, subject) in [
            ("other", ENROL_PATIENT, "hospital-a"),
            ("c", REGISTER_PRACTITIONER, "hospital-a"),
            ("c", ENROL_PATIENT, "lab-b"),
        ] {
            assert_eq!(
                verify(&pk, &p, chain, purpose, subject).unwrap_err().code,
                Code::BadKeyProof
            );
        }
        let other = SigningKey::from_bytes(&[6; 32]).verifying_key().to_bytes();
        assert!(verify(&other, &p, "c", ENROL_PATIENT, "hospital-a").is_err());
        assert!(verify(&pk, &p[..63], "c", ENROL_PATIENT, "hospital-a").is_err());
        assert!(verify(&pk, &[], "c", ENROL_PATIENT, "hospital-a").is_err());
    }
}

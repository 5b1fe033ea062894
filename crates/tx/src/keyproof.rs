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

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

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

/// One proof to check: the key, its proof, and what the statement names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The key that must have signed.
    pub key: [u8; 32],
    /// Its proof (a 64-byte signature when well formed).
    pub proof: Vec<u8>,
    /// The chain id.
    pub chain_id: String,
    /// One of the purposes above.
    pub purpose: &'static str,
    /// The member or patient id the statement names.
    pub subject: String,
}

impl Check {
    /// What identifies this check: SHA-256 of the statement, the key and the proof.
    fn id(&self) -> [u8; 32] {
        check_id(
            &self.key,
            &self.proof,
            &self.chain_id,
            self.purpose,
            &self.subject,
        )
    }
}

fn check_id(
    key: &[u8; 32],
    proof: &[u8],
    chain_id: &str,
    purpose: &str,
    subject: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(statement(chain_id, purpose, subject, key));
    h.update(key);
    h.update(proof);
    h.finalize().into()
}

/// Proofs already verified (a block's, on every core, before its txs are applied in order):
/// [`verify_with`] skips exactly these. It only ever holds proofs that passed [`verify`], so a
/// verdict never depends on it, only the time it takes.
#[derive(Clone, Debug, Default)]
pub struct Verified(BTreeSet<[u8; 32]>);

/// Most threads [`verify_all`] uses, and fewer proofs than [`PARALLEL_FROM`] stay on one.
const MAX_THREADS: usize = 4;
const PARALLEL_FROM: usize = 16;

/// Verifies `checks` (strictly, each on its own: never a randomised batch) on up to four cores
/// and returns those that passed.
pub fn verify_all(checks: Vec<Check>) -> Verified {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    let passed = |chunk: &[Check]| -> Vec<[u8; 32]> {
        chunk
            .iter()
            .filter(|c| verify(&c.key, &c.proof, &c.chain_id, c.purpose, &c.subject).is_ok())
            .map(Check::id)
            .collect()
    };
    if checks.len() < PARALLEL_FROM || threads < 2 {
        return Verified(passed(&checks).into_iter().collect());
    }
    let per_thread = checks.len().div_ceil(threads);
    let ids: Vec<[u8; 32]> = std::thread::scope(|s| {
        let handles: Vec<_> = checks
            .chunks(per_thread)
            .map(|chunk| s.spawn(move || passed(chunk)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    Verified(ids.into_iter().collect())
}

/// [`verify`], skipping the signature check for a proof in `verified`.
pub fn verify_with(
    verified: &Verified,
    key: &[u8; 32],
    proof: &[u8],
    chain_id: &str,
    purpose: &str,
    subject: &str,
) -> Result<(), TxError> {
    if verified
        .0
        .contains(&check_id(key, proof, chain_id, purpose, subject))
    {
        return Ok(());
    }
    verify(key, proof, chain_id, purpose, subject)
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
    fn verified_ahead_skips_only_proofs_that_passed() {
        let k = SigningKey::from_bytes(&[5; 32]);
        let pk = k.verifying_key().to_bytes();
        let good = prove(&k, "c", ENROL_PATIENT, "hospital-a").to_vec();
        let check = |proof: Vec<u8>, subject: &str| Check {
            key: pk,
            proof,
            chain_id: "c".into(),
            purpose: ENROL_PATIENT,
            subject: subject.into(),
        };
        // Enough to run on several threads, half of them bad.
        let checks: Vec<Check> = (0..40)
            .map(|i| {
                if i % 2 == 0 {
                    check(good.clone(), "hospital-a")
                } else {
                    check(good.clone(), &format!("m-{i}"))
                }
            })
            .collect();
        let verified = verify_all(checks);
        assert_eq!(verified.0.len(), 1, "the good proof, once");
        assert!(verify_with(&verified, &pk, &good, "c", ENROL_PATIENT, "hospital-a").is_ok());
        assert_eq!(
            verify_with(&verified, &pk, &good, "c", ENROL_PATIENT, "m-1")
                .unwrap_err()
                .code,
            Code::BadKeyProof,
            "a check that failed ahead is verified again, and fails"
        );
        assert!(verify_with(
            &Verified::default(),
            &pk,
            &good,
            "c",
            ENROL_PATIENT,
            "hospital-a"
        )
        .is_ok());
    }

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

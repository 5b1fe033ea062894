//! Social key recovery: guardians sign a statement naming the patient's new key.
//!
//! Statement: `"medledger/recovery/v1" || 0x00 || len(chain_id) || chain_id || len(patient_id) ||
//! patient_id || new_key (32) || recoveries (8, big-endian)`. `recoveries` is the patient's count
//! of past recoveries, so an approval is good for one recovery only.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Domain separation of recovery approvals.
pub const RECOVERY_NAMESPACE: &[u8] = b"medledger/recovery/v1";

/// The bytes a guardian signs to approve moving `patient_id` to `new_key`.
pub fn recovery_statement(
    chain_id: &str,
    patient_id: &str,
    new_key: &[u8; 32],
    recoveries: u64,
) -> Vec<u8> {
    let mut m = RECOVERY_NAMESPACE.to_vec();
    m.push(0);
    m.push(u8::try_from(chain_id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(chain_id.as_bytes());
    m.push(u8::try_from(patient_id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(patient_id.as_bytes());
    m.extend_from_slice(new_key);
    m.extend_from_slice(&recoveries.to_be_bytes());
    m
}

/// A guardian's approval.
pub fn approve(
    guardian: &SigningKey,
    chain_id: &str,
    patient_id: &str,
    new_key: &[u8; 32],
    recoveries: u64,
) -> [u8; 64] {
    guardian
        .sign(&recovery_statement(
            chain_id, patient_id, new_key, recoveries,
        ))
        .to_bytes()
}

/// Whether `signature` is `guardian_key`'s approval (strict Ed25519, weak keys refused).
pub fn verify_approval(
    guardian_key: &[u8],
    signature: &[u8],
    chain_id: &str,
    patient_id: &str,
    new_key: &[u8; 32],
    recoveries: u64,
) -> bool {
    let (Ok(key), Ok(sig)) = (
        <[u8; 32]>::try_from(guardian_key),
        <[u8; 64]>::try_from(signature),
    ) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    if key.is_weak() {
        return false;
    }
    key.verify_strict(
        &recovery_statement(chain_id, patient_id, new_key, recoveries),
        &Signature::from_bytes(&sig),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_is_bound_to_chain_patient_key_and_count() {
        let g = SigningKey::from_bytes(&[3; 32]);
        let pk = g.verifying_key().to_bytes();
        let sig = approve(&g, "c", "pt-1", &[9; 32], 0);
        assert!(verify_approval(&pk, &sig, "c", "pt-1", &[9; 32], 0));
        assert!(!verify_approval(&pk, &sig, "other", "pt-1", &[9; 32], 0));
        assert!(!verify_approval(&pk, &sig, "c", "pt-2", &[9; 32], 0));
        assert!(!verify_approval(&pk, &sig, "c", "pt-1", &[8; 32], 0));
        assert!(
            !verify_approval(&pk, &sig, "c", "pt-1", &[9; 32], 1),
            "used approvals do not replay"
        );
    }
}

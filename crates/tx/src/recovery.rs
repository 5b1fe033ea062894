//! Social key recovery: guardians sign a statement naming the patient's new key.
//!
//! Statement: `"medledger/recovery/v2" || 0x00 || len(chain_id) || chain_id || len(patient_id) ||
//! patient_id || new_key (32) || recoveries (8, big-endian) || current_key (32) ||
//! guardian_set_hash (32)`.
//!
//! An approval binds the state it was given in: `recoveries` (the patient's count of past
//! recoveries: good for one recovery only), the patient's *current* key (a rotation voids it)
//! and the hash of the guardian set (a change of guardians or threshold voids it).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Domain separation of recovery approvals.
pub const RECOVERY_NAMESPACE: &[u8] = b"medledger/recovery/v2";

/// The bytes a guardian signs to approve moving `patient_id` to `new_key`.
pub fn recovery_statement(
    chain_id: &str,
    patient_id: &str,
    new_key: &[u8; 32],
    at: &RecoveryState,
) -> Vec<u8> {
    let mut m = RECOVERY_NAMESPACE.to_vec();
    m.push(0);
    m.push(u8::try_from(chain_id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(chain_id.as_bytes());
    m.push(u8::try_from(patient_id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(patient_id.as_bytes());
    m.extend_from_slice(new_key);
    m.extend_from_slice(&at.recoveries.to_be_bytes());
    m.extend_from_slice(&at.current_key);
    m.extend_from_slice(&at.guardian_set_hash);
    m
}

/// The patient's recovery state an approval is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryState {
    /// How many recoveries the patient has had.
    pub recoveries: u64,
    /// The patient's key now (the one being replaced).
    pub current_key: [u8; 32],
    /// [`guardian_set_hash`] of the patient's guardians now.
    pub guardian_set_hash: [u8; 32],
}

/// SHA-256 over the threshold (4 bytes, big-endian) and the guardian keys in their stored order.
pub fn guardian_set_hash(guardian_keys: &[Vec<u8>], threshold: u32) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"medledger/guardian-set/v1");
    h.update(threshold.to_be_bytes());
    for k in guardian_keys {
        h.update([u8::try_from(k.len()).unwrap_or(u8::MAX)]);
        h.update(k);
    }
    h.finalize().into()
}

/// A guardian's approval.
pub fn approve(
    guardian: &SigningKey,
    chain_id: &str,
    patient_id: &str,
    new_key: &[u8; 32],
    at: &RecoveryState,
) -> [u8; 64] {
    guardian
        .sign(&recovery_statement(chain_id, patient_id, new_key, at))
        .to_bytes()
}

/// Whether `signature` is `guardian_key`'s approval (strict Ed25519, weak keys refused).
pub fn verify_approval(
    guardian_key: &[u8],
    signature: &[u8],
    chain_id: &str,
    patient_id: &str,
    new_key: &[u8; 32],
    at: &RecoveryState,
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
        &recovery_statement(chain_id, patient_id, new_key, at),
        &Signature::from_bytes(&sig),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_is_bound_to_chain_patient_key_count_current_key_and_guardians() {
        let g = SigningKey::from_bytes(&[3; 32]);
        let pk = g.verifying_key().to_bytes();
        let at = RecoveryState {
            recoveries: 0,
            current_key: [1; 32],
            guardian_set_hash: guardian_set_hash(&[pk.to_vec()], 1),
        };
        let sig = approve(&g, "c", "pt-1", &[9; 32], &at);
        assert!(verify_approval(&pk, &sig, "c", "pt-1", &[9; 32], &at));
        assert!(!verify_approval(&pk, &sig, "other", "pt-1", &[9; 32], &at));
        assert!(!verify_approval(&pk, &sig, "c", "pt-2", &[9; 32], &at));
        assert!(!verify_approval(&pk, &sig, "c", "pt-1", &[8; 32], &at));
        let used = RecoveryState {
            recoveries: 1,
            ..at.clone()
        };
        assert!(
            !verify_approval(&pk, &sig, "c", "pt-1", &[9; 32], &used),
            "used approvals do not replay"
        );
        let rotated = RecoveryState {
            current_key: [2; 32],
            ..at.clone()
        };
        assert!(
            !verify_approval(&pk, &sig, "c", "pt-1", &[9; 32], &rotated),
            "a rotation voids approvals"
        );
        let regrouped = RecoveryState {
            guardian_set_hash: guardian_set_hash(&[pk.to_vec()], 2),
            ..at
        };
        assert!(
            !verify_approval(&pk, &sig, "c", "pt-1", &[9; 32], &regrouped),
            "new guardians void approvals"
        );
    }
}

//! Social key recovery: guardians sign a statement naming the patient's new key.
//!
//! Statement: `"medledger/recovery/v2" || 0x00 || len(chain_id) || chain_id || len(patient_id) ||
//! patient_id || new_key (32) || recoveries (8, big-endian) || current_key (32) ||
//! guardian_set_hash (32)`.
//!
//! An approval binds the state it was given in: `recoveries` (the patient's count of past
//! recoveries: good for one recovery only), the patient's *current* key (a rotation voids it)
//! and the hash of the guardian set (a change of guardians or threshold voids it).
//!
//! A guardian-set change or key rotation the patient's key signs while the patient has guardians
//! waits (`PendingPatientChange`, `guardian-change/{patient}`) until its effective time, so the
//! guardians can recover from a stolen key first. [`standing`] is what is in force at a block
//! time: the ledger, CheckTx and the CLI all read a patient's key and guardians through it.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::pb::{Guardians, PendingPatientChange};

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

/// A patient's key and guardians in force at one block time.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    /// The patient's key: the stored one, or a pending rotation's new key once it is due.
    pub key: Vec<u8>,
    /// The guardians: the stored ones, or a pending guardian set once it is due (keeping the
    /// stored recovery count). `None` when the patient has none.
    pub guardians: Option<Guardians>,
    /// A due rotation was applied: [`Standing::key`] is not the stored key.
    pub key_changed: bool,
    /// A due guardian set was applied.
    pub guardians_changed: bool,
    /// What is still waiting after that (`None` when nothing is).
    pub pending: Option<PendingPatientChange>,
}

impl Standing {
    /// Whether the patient has guardians now: then a change the patient's key signs waits.
    pub fn has_guardians(&self) -> bool {
        self.guardians
            .as_ref()
            .is_some_and(|g| !g.guardian_keys.is_empty())
    }

    /// The state a recovery approval must be bound to now, if the patient has guardians.
    pub fn recovery_state(&self) -> Option<RecoveryState> {
        let g = self
            .guardians
            .as_ref()
            .filter(|g| !g.guardian_keys.is_empty())?;
        Some(RecoveryState {
            recoveries: g.recoveries,
            current_key: self.key.as_slice().try_into().ok()?,
            guardian_set_hash: guardian_set_hash(&g.guardian_keys, g.threshold),
        })
    }
}

/// Whether `p` holds no pending change.
pub fn nothing_pending(p: &PendingPatientChange) -> bool {
    p.guardians.is_none() && p.new_key.is_empty()
}

/// What is in force at block time `now`, from the stored key, guardians and pending change: each
/// pending part whose effective time is at or before `now` applies, the rest stays pending.
/// Pure, so every validator, CheckTx and a client compute the same answer.
pub fn standing(
    key: &[u8],
    guardians: Option<&Guardians>,
    pending: Option<&PendingPatientChange>,
    now: u64,
) -> Standing {
    let mut out = Standing {
        key: key.to_vec(),
        guardians: guardians.cloned(),
        key_changed: false,
        guardians_changed: false,
        pending: None,
    };
    let Some(p) = pending else {
        return out;
    };
    let mut left = p.clone();
    if let Some(set) = &p.guardians {
        if p.guardians_effective_time <= now {
            out.guardians = Some(Guardians {
                guardian_keys: set.guardian_keys.clone(),
                threshold: set.threshold,
                recoveries: guardians.map_or(0, |g| g.recoveries),
            });
            out.guardians_changed = true;
            left.guardians = None;
            left.guardians_effective_time = 0;
            left.guardians_requested_height = 0;
        }
    }
    if !p.new_key.is_empty() && p.key_effective_time <= now {
        out.key = p.new_key.clone();
        out.key_changed = true;
        left.new_key = Vec::new();
        left.key_effective_time = 0;
        left.key_requested_height = 0;
    }
    out.pending = (!nothing_pending(&left)).then_some(left);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_changes_apply_at_their_effective_time_and_not_before() {
        let old = Guardians {
            guardian_keys: vec![vec![1; 32]],
            threshold: 1,
            recoveries: 2,
        };
        let p = PendingPatientChange {
            guardians: Some(crate::pb::SetGuardians {
                guardian_keys: vec![vec![7; 32], vec![8; 32]],
                threshold: 2,
            }),
            guardians_effective_time: 100,
            guardians_requested_height: 3,
            new_key: vec![9; 32],
            key_effective_time: 200,
            key_requested_height: 4,
        };
        let before = standing(&[5; 32], Some(&old), Some(&p), 99);
        assert_eq!(before.key, vec![5; 32]);
        assert_eq!(before.guardians.as_ref(), Some(&old));
        assert_eq!(before.pending.as_ref(), Some(&p));
        assert!(!before.key_changed && !before.guardians_changed);
        let mid = standing(&[5; 32], Some(&old), Some(&p), 100);
        assert!(mid.guardians_changed && !mid.key_changed);
        let g = mid.guardians.clone().unwrap_or_default();
        assert_eq!(
            (g.threshold, g.recoveries),
            (2, 2),
            "the recovery count stays"
        );
        assert_eq!(
            mid.pending.as_ref().map(|p| p.new_key.clone()),
            Some(vec![9; 32])
        );
        let after = standing(&[5; 32], Some(&old), Some(&p), 200);
        assert!(after.key_changed && after.pending.is_none());
        assert_eq!(after.key, vec![9; 32]);
        assert_eq!(after.recovery_state().map(|r| r.current_key), Some([9; 32]));
    }

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

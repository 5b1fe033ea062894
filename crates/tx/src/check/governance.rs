//! Stateless checks of governance messages: shapes, key encodings, power bounds and the BLS
//! proof of possession. Everything that depends on the ledger's state (who is a member, which
//! keys are taken, the deadline against the current height) is checked by the state machine.

use ed25519_dalek::VerifyingKey;

use super::{check_id, check_text};
use crate::checkpoint::verify_possession;
use crate::error::{Code, TxError};
use crate::limits::{MAX_APP_VERSION, MAX_TEXT_LEN, MAX_VALIDATOR_POWER};
use crate::pb::submit_proposal::Action;
use crate::pb::{AddMember, MemberKind, SubmitProposal, VoteProposal};
use crate::rules::custody::check_custody;
use crate::rules::web_release::check_release;

pub(crate) fn check_submit(m: &SubmitProposal) -> Result<(), TxError> {
    let action = m.action.as_ref().ok_or_else(|| {
        TxError::new(
            Code::MissingMessage,
            "proposal names no action (add, remove, change power, rotate key, upgrade, grant or revoke auditor, set custody, set web release)",
        )
    })?;
    if m.deadline_height == 0 {
        return Err(TxError::new(
            Code::BadDeadline,
            "deadline_height: give the last height at which the proposal may pass",
        ));
    }
    match action {
        Action::AddMember(a) => check_add(a),
        Action::RemoveMember(r) => check_id("member_id", &r.member_id),
        Action::ChangePower(c) => {
            check_id("member_id", &c.member_id)?;
            check_power(c.power)
        }
        Action::RotateAdminKey(r) => {
            check_id("member_id", &r.member_id)?;
            check_ed25519("new_admin_key", &r.new_admin_key).map(|_| ())
        }
        Action::ScheduleUpgrade(u) => {
            check_id("name", &u.name)?;
            if u.height == 0 || u.app_version < 2 || u.app_version > MAX_APP_VERSION {
                return Err(TxError::new(
                    Code::InvalidField,
                    format!(
                        "an upgrade names a height and an app version from 2 to {MAX_APP_VERSION}"
                    ),
                ));
            }
            Ok(())
        }
        Action::GrantAuditor(g) => {
            check_id("practitioner_did", &g.practitioner_did)?;
            // Empty means every member.
            if g.scope_member.is_empty() {
                return Ok(());
            }
            check_id("scope_member", &g.scope_member)
        }
        Action::RevokeAuditor(r) => check_id("practitioner_did", &r.practitioner_did),
        Action::SetCustody(c) => check_custody(c.holders, c.threshold),
        Action::SetWebRelease(w) => check_release(&w.bundle_sha256, &w.version),
    }
}

pub(crate) fn check_vote(m: &VoteProposal) -> Result<(), TxError> {
    if m.proposal_id == 0 {
        return Err(TxError::new(
            Code::InvalidField,
            "proposal_id: ids start at 1",
        ));
    }
    Ok(())
}

fn check_add(a: &AddMember) -> Result<(), TxError> {
    check_id("id", &a.id)?;
    check_text("name", &a.name, MAX_TEXT_LEN)?;
    if a.name.trim().is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "name: give the member's display name",
        ));
    }
    match MemberKind::try_from(a.kind) {
        Ok(MemberKind::Unspecified) | Err(_) => {
            return Err(TxError::new(
                Code::InvalidField,
                format!(
                    "kind {} is not hospital, lab, insurer, research or regulator",
                    a.kind
                ),
            ))
        }
        Ok(_) => {}
    }
    check_ed25519("admin_key", &a.admin_key)?;
    if a.validator_pub_key.is_empty() {
        // A member without a validator (e.g. a regulator that only audits): no validator fields.
        if a.power != 0 || !a.bls_key.is_empty() || !a.bls_pop.is_empty() {
            return Err(TxError::new(
                Code::InvalidField,
                "power, bls_key and bls_pop need a validator_pub_key",
            ));
        }
        return Ok(());
    }
    let consensus = check_ed25519("validator_pub_key", &a.validator_pub_key)?;
    if consensus == a.admin_key.as_slice() {
        return Err(TxError::new(
            Code::InvalidField,
            "validator_pub_key: the consensus key must not be the admin key",
        ));
    }
    check_power(a.power)?;
    if a.bls_key.len() != 48 || a.bls_pop.len() != 96 {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "bls_key must be 48 bytes and bls_pop 96 (got {} and {})",
                a.bls_key.len(),
                a.bls_pop.len()
            ),
        ));
    }
    // Without a proof of possession an aggregate of certificate shares could be forged with a
    // rogue key: the same rule as genesis.
    if !verify_possession(&a.bls_key, &a.bls_pop) {
        return Err(TxError::new(
            Code::InvalidField,
            "bls_pop does not prove possession of bls_key",
        ));
    }
    Ok(())
}

fn check_power(power: u64) -> Result<(), TxError> {
    if power == 0 || power > MAX_VALIDATOR_POWER {
        return Err(TxError::new(
            Code::InvalidField,
            format!("power {power}: give 1 to {MAX_VALIDATOR_POWER} (to leave the validator set, remove the member)"),
        ));
    }
    Ok(())
}

/// A valid, non-weak Ed25519 key (the rules of transaction signers, so that an admin key can
/// always sign and a consensus key is one CometBFT accepts).
fn check_ed25519<'k>(field: &str, key: &'k [u8]) -> Result<&'k [u8], TxError> {
    let bytes: [u8; 32] = key.try_into().map_err(|_| {
        TxError::new(
            Code::BadPublicKey,
            format!("{field} is {} bytes; want 32", key.len()),
        )
    })?;
    let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| {
        TxError::new(
            Code::BadPublicKey,
            format!("{field} is not a valid Ed25519 point"),
        )
    })?;
    if vk.is_weak() {
        return Err(TxError::new(
            Code::BadPublicKey,
            format!("{field} has small order"),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::BlsKey;
    use crate::pb::{ChangePower, GrantAuditor, RevokeAuditor, RotateAdminKey, SetCustody};
    use ed25519_dalek::SigningKey;

    fn key(seed: u8) -> Vec<u8> {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
            .to_vec()
    }

    fn add() -> AddMember {
        let bls = BlsKey::from_ikm(&[3; 32]).expect("32 bytes");
        AddMember {
            id: "lab-e".into(),
            name: "Lab E".into(),
            kind: MemberKind::Lab as i32,
            admin_key: key(1),
            validator_pub_key: key(2),
            power: 10,
            bls_key: bls.public_key().to_vec(),
            bls_pop: bls.proof_of_possession().to_vec(),
        }
    }

    fn submit(action: Action) -> SubmitProposal {
        SubmitProposal {
            action: Some(action),
            deadline_height: 10,
        }
    }

    fn code(m: &SubmitProposal) -> Option<Code> {
        check_submit(m).err().map(|e| e.code)
    }

    #[test]
    fn a_well_formed_add_passes_with_or_without_a_validator() {
        assert_eq!(code(&submit(Action::AddMember(add()))), None);
        let plain = AddMember {
            validator_pub_key: vec![],
            power: 0,
            bls_key: vec![],
            bls_pop: vec![],
            ..add()
        };
        assert_eq!(code(&submit(Action::AddMember(plain))), None);
    }

    #[test]
    fn bad_adds_have_their_codes() {
        let other_pop = BlsKey::from_ikm(&[4; 32])
            .expect("32 bytes")
            .proof_of_possession()
            .to_vec();
        let cases = [
            (
                AddMember {
                    bls_pop: other_pop,
                    ..add()
                },
                Code::InvalidField,
            ),
            (AddMember { power: 0, ..add() }, Code::InvalidField),
            (
                AddMember {
                    power: MAX_VALIDATOR_POWER + 1,
                    ..add()
                },
                Code::InvalidField,
            ),
            (
                AddMember {
                    admin_key: vec![1; 31],
                    ..add()
                },
                Code::BadPublicKey,
            ),
            (
                AddMember {
                    validator_pub_key: key(1),
                    ..add()
                },
                Code::InvalidField,
            ),
            (AddMember { kind: 0, ..add() }, Code::InvalidField),
            (
                AddMember {
                    id: "a/b".into(),
                    ..add()
                },
                Code::InvalidField,
            ),
            (
                AddMember {
                    validator_pub_key: vec![],
                    ..add()
                },
                Code::InvalidField,
            ),
        ];
        for (a, want) in cases {
            assert_eq!(
                code(&submit(Action::AddMember(a.clone()))),
                Some(want),
                "{a:?}"
            );
        }
    }

    #[test]
    fn deadline_action_power_and_vote_shapes() {
        assert_eq!(
            code(&SubmitProposal {
                action: None,
                deadline_height: 5
            }),
            Some(Code::MissingMessage)
        );
        assert_eq!(
            code(&SubmitProposal {
                deadline_height: 0,
                ..submit(Action::AddMember(add()))
            }),
            Some(Code::BadDeadline)
        );
        let zero = Action::ChangePower(ChangePower {
            member_id: "lab-b".into(),
            power: 0,
        });
        assert_eq!(code(&submit(zero)), Some(Code::InvalidField));
        let rotate = Action::RotateAdminKey(RotateAdminKey {
            member_id: "lab-b".into(),
            new_admin_key: vec![0; 32],
        });
        assert_eq!(
            code(&submit(rotate)),
            Some(Code::BadPublicKey),
            "the identity point is weak"
        );
        assert_eq!(
            check_vote(&VoteProposal {
                proposal_id: 0,
                yes: true
            })
            .err()
            .map(|e| e.code),
            Some(Code::InvalidField)
        );
    }

    #[test]
    fn auditor_grants_need_well_formed_ids() {
        let did = "did:medledger:0123456789abcdef0123456789abcdef";
        let grant = |did: &str, member: &str| {
            Action::GrantAuditor(GrantAuditor {
                practitioner_did: did.into(),
                scope_member: member.into(),
            })
        };
        assert_eq!(code(&submit(grant(did, ""))), None, "every member");
        assert_eq!(code(&submit(grant(did, "lab-b"))), None, "one member");
        assert_eq!(code(&submit(grant("", ""))), Some(Code::InvalidField));
        assert_eq!(
            code(&submit(grant("did/medledger", ""))),
            Some(Code::InvalidField)
        );
        assert_eq!(code(&submit(grant(did, "lab/b"))), Some(Code::InvalidField));
        assert_eq!(
            code(&submit(grant(&"d".repeat(1_000), ""))),
            Some(Code::FieldTooLong)
        );
        let revoke = |did: &str| {
            Action::RevokeAuditor(RevokeAuditor {
                practitioner_did: did.into(),
            })
        };
        assert_eq!(code(&submit(revoke(did))), None);
        assert_eq!(code(&submit(revoke(""))), Some(Code::InvalidField));
    }

    #[test]
    fn set_custody_is_two_to_seven_holders_or_off() {
        let set = |holders, threshold| {
            code(&submit(Action::SetCustody(SetCustody {
                holders,
                threshold,
            })))
        };
        assert_eq!(set(3, 2), None);
        assert_eq!(set(7, 7), None);
        assert_eq!(set(0, 0), None, "off");
        for (holders, threshold) in [(3, 1), (2, 3), (8, 2), (0, 2), (3, 0)] {
            assert_eq!(
                set(holders, threshold),
                Some(Code::InvalidCustody),
                "{threshold} of {holders}"
            );
        }
    }

    #[test]
    fn set_web_release_needs_a_32_byte_hash_and_a_label() {
        let set = |hash: Vec<u8>, version: &str| {
            code(&submit(Action::SetWebRelease(crate::pb::SetWebRelease {
                bundle_sha256: hash,
                version: version.into(),
            })))
        };
        assert_eq!(set(vec![7; 32], "2025.06-1"), None);
        assert_eq!(set(vec![7; 31], "v1"), Some(Code::BadReleaseHash));
        assert_eq!(set(vec![], "v1"), Some(Code::BadReleaseHash));
        assert_eq!(set(vec![7; 32], ""), Some(Code::BadReleaseVersion));
        assert_eq!(set(vec![7; 32], "v 1"), Some(Code::BadReleaseVersion));
    }
}

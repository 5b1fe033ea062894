//! Adversarial input: arbitrary and mutated bytes through CheckTx, ProcessProposal and
//! FinalizeBlock never panic, always get a known code, and never change state unless a valid
//! tx was applied.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use medledger_state::store::WriteSet;
use medledger_state::view::StateRead;
use medledger_tx::checkpoint::encode_certificate_tx;
use medledger_tx::envelope::decode_and_verify;
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg, PractitionerRole, Purpose};
use medledger_tx::{keys, recovery, Code};
use proptest::prelude::*;
use prost::Message;

use crate::common::*;

fn valid_txs(c: &mut Chain) -> Vec<Vec<u8>> {
    let alice = key(1);
    vec![
        c.tx(&admin(0), enrol(&alice)),
        c.tx(
            &alice,
            Msg::GrantConsent(pb::GrantConsent {
                grantee: "hospital-a".into(),
                data_classes: vec!["*".into()],
                purposes: vec![Purpose::Treat as i32],
                ..Default::default()
            }),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    /// Random bytes: refused with a known code by CheckTx, ProcessProposal and FinalizeBlock,
    /// and a block of them leaves the app hash where it was.
    #[test]
    fn arbitrary_bytes_are_refused_without_effect(txs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..8)) {
        let mut c = Chain::new();
        let before = c.block(vec![]).app_hash;
        for tx in &txs {
            let code = c.ledger_mut().check_tx(tx).err().map(|e| e.code);
            prop_assert!(code.is_some(), "random bytes passed CheckTx");
        }
        prop_assert!(c.process_proposal(&txs).is_err());
        let r = c.block(txs.clone());
        prop_assert_eq!(r.app_hash, before);
        for t in &r.tx_results {
            prop_assert!(Code::from_value(t.code).is_some(), "unknown code {}", t.code);
        }
    }

    /// Valid txs with one byte flipped: never panic; either refused with a known code, or (when
    /// the flip lands in a field that still decodes, verifies and is canonical, which a signature
    /// makes impossible) applied.
    #[test]
    fn mutated_valid_txs_are_refused_with_known_codes(which in 0..2usize, pos in any::<prop::sample::Index>(), bit in 0..8u8) {
        let mut c = Chain::new();
        let mut txs = valid_txs(&mut c);
        let tx = &mut txs[which];
        let i = pos.index(tx.len());
        tx[i] ^= 1 << bit;
        let r = c.block(vec![txs[which].clone()]);
        let code = r.tx_results[0].code;
        prop_assert!(code != 0, "a mutated signed tx was applied");
        prop_assert!(Code::from_value(code).is_some());
    }
}

/// Where an abusive tx is stopped, which fixes what it may change (src/apply.rs).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    /// Before its sequence is consumed (decoding, signature, chain id, stateless checks, a
    /// signer the ledger knows, sequence): CheckTx refuses it with the same code, and a block
    /// holding it changes nothing.
    Admission,
    /// Signed by a key the ledger does not know, in the one message such a key may send (a
    /// recovery): CheckTx runs the recovery's handler against the committed state and refuses it
    /// with the handler's code (so it never takes a place in a mempool, issue 23); a block that
    /// carries it anyway refuses it with the same code, and nothing is written, not even a
    /// sequence (an outsider cannot grow the state with refused txs).
    Outsider,
    /// Authentic and in sequence, refused by the state machine: by design it consumes its
    /// sequence (so the same signed bytes can never apply later) and changes nothing else. The
    /// app hash after the block must equal the root of the state before it with only the
    /// signer's sequence advanced.
    StateMachine,
    /// ProcessProposal rejects any block carrying it, so no honest validator votes for the
    /// block and it is never finalized.
    Proposal,
}

/// One row of the abuse table: what, how to build it against the chain's current state, the
/// code it must get, and where it must be stopped.
type Row = (&'static str, Box<dyn Fn(&mut Chain) -> Vec<u8>>, Code, Stop);

const HOSP: usize = 0;
const LAB: usize = 1;
const INSURER: usize = 2;
const REMOVED: usize = 3;
/// `insurer-e`: a second insurer, genesis member 4.
const OTHER_INSURER: usize = 4;

fn attr(events: &[medledger_state::Event], name: &str) -> String {
    events
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
        .unwrap()
}

/// `k`'s tx at its next sequence with the envelope edited by `edit` (the body stays as signed).
fn tampered(c: &mut Chain, k: &SigningKey, edit: impl Fn(&mut pb::Tx)) -> Vec<u8> {
    let seq = c.committed_sequence(k);
    let bytes = c.tx_at(k, seq, enrol(&key(77)));
    let mut tx = pb::Tx::decode(bytes.as_slice()).unwrap();
    edit(&mut tx);
    tx.encode_to_vec()
}

/// The issue's abuse list ("Adversarial inputs"), plus a few more refusals, each against a
/// chain where the abused thing exists: alice's consent to hospital-a, a suspended physician of
/// hospital-a, alice's guardians (2 of 3), a claim of hospital-a to insurer-c, and hospital-d
/// removed by governance. Every row gets its specific code, and the app hash proves that
/// nothing but what the design allows (see [`Stop`]) changed.
#[test]
fn abuse_table_each_gets_its_own_code_and_changes_nothing() {
    let mut c = Chain::with_validators(&[("insurer-e", "insurer")]);
    let (alice, bob, suspended) = (key(1), key(2), key(21));
    let guardians = [key(40), key(41), key(42)];
    let setup = vec![
        c.tx(&admin(0), enrol(&alice)),
        c.tx(&admin(0), enrol(&bob)),
        c.tx(
            &alice,
            Msg::GrantConsent(pb::GrantConsent {
                grantee: "hospital-a".into(),
                data_classes: vec!["*".into()],
                purposes: vec![Purpose::Treat as i32],
                ..Default::default()
            }),
        ),
        c.tx(
            &alice,
            Msg::GrantConsent(pb::GrantConsent {
                grantee: "insurer-c".into(),
                data_classes: vec!["Claim".into()],
                purposes: vec![Purpose::Hpaymt as i32],
                ..Default::default()
            }),
        ),
        c.tx(
            &alice,
            Msg::SetGuardians(pb::SetGuardians {
                guardian_keys: guardians.iter().map(|g| pk(g).to_vec()).collect(),
                threshold: 2,
            }),
        ),
        c.tx(
            &admin(HOSP),
            Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: pk(&suspended).to_vec(),
                role: PractitionerRole::Physician as i32,
                licence_hash: vec![7; 32],
                valid_until: 0,
                name: "Dr Suspended".into(),
                key_proof: practitioner_proof(&suspended, MEMBERS[HOSP].0),
            }),
        ),
        c.tx(
            &admin(HOSP),
            Msg::SetPractitionerStatus(pb::SetPractitionerStatus {
                did: did(&suspended),
                status: pb::PractitionerStatus::Suspended as i32,
                reason_hash: vec![9; 32],
            }),
        ),
        c.tx(
            &admin(INSURER),
            Msg::PublishPolicy(pb::PublishPolicy {
                policy_id: "gold".into(),
                rules: vec![pb::CoverageRule {
                    service_code: "99213".into(),
                    covered: true,
                    ..Default::default()
                }],
            }),
        ),
        c.tx(
            &admin(INSURER),
            Msg::EnrolCoverage(pb::EnrolCoverage {
                patient_id: patient_id(&alice),
                policy_id: "gold".into(),
                start: 0,
                end: 0,
            }),
        ),
        // hospital-a, the custodian, anchors alice's record "r": a claim's evidence must read
        // a record anchored for the patient (docs/rules.md, "Claims").
        c.tx(
            &admin(HOSP),
            Msg::AnchorRecord(pb::AnchorRecord {
                record_id: "r".into(),
                patient_id: patient_id(&alice),
                resource_type: "Observation".into(),
                content_hash: vec![7; 32],
                size: 10,
                key_id: "k".into(),
                holders: vec![],
                threshold: 0,
                share_commitments: vec![],
            }),
        ),
        c.tx(
            &admin(HOSP),
            Msg::LogAccess(pb::LogAccess {
                patient_id: patient_id(&alice),
                record_id: "r".into(),
                data_class: "Observation".into(),
                purpose: Purpose::Treat as i32,
                action: 0,
            }),
        ),
        c.tx(
            &admin(HOSP),
            Msg::SubmitClaim(pb::SubmitClaim {
                patient_id: patient_id(&alice),
                insurer: "insurer-c".into(),
                policy_id: "gold".into(),
                service_date: T0,
                items: vec![pb::ClaimItem {
                    service_code: "99213".into(),
                    quantity: 1,
                    unit_price: 10_000,
                    modifier: String::new(),
                }],
                record_ids: vec![],
                total: 10_000,
                evidence: vec![0],
                ..Default::default()
            }),
        ),
        // Governance removes hospital-d: three of the four validators' members vote yes.
        c.tx(
            &admin(HOSP),
            Msg::SubmitProposal(pb::SubmitProposal {
                action: Some(Action::RemoveMember(pb::RemoveMember {
                    member_id: "hospital-d".into(),
                })),
                deadline_height: 20,
            }),
        ),
        c.tx(
            &admin(LAB),
            Msg::VoteProposal(pb::VoteProposal {
                proposal_id: 1,
                yes: true,
            }),
        ),
        c.tx(
            &admin(INSURER),
            Msg::VoteProposal(pb::VoteProposal {
                proposal_id: 1,
                yes: true,
            }),
        ),
    ];
    let replayed = setup[0].clone();
    let r = c.block(setup);
    for (i, t) in r.tx_results.iter().enumerate() {
        assert_eq!(t.code, 0, "setup tx {i}: {}", t.log);
    }
    assert!(c
        .ledger()
        .store()
        .get(&keys::member("hospital-d"))
        .unwrap()
        .is_none());
    let consent_id = attr(&r.tx_results[2].events, "consent_id");
    let claim_id = attr(&r.tx_results[11].events, "claim_id");
    let pid = patient_id(&alice);

    let read = |patient: &str| {
        Msg::LogAccess(pb::LogAccess {
            patient_id: patient.into(),
            record_id: "r".into(),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            action: 0,
        })
    };
    let cases: Vec<Row> = vec![
        (
            "wrong chain id",
            Box::new(|c: &mut Chain| {
                let body = pb::TxBody {
                    chain_id: "other".into(),
                    sequence: c.committed_sequence(&key(1)),
                    unordered: None,
                    msg: Some(enrol(&key(77))),
                };
                medledger_tx::sign_tx(&key(1), &body)
            }),
            Code::WrongChainId,
            Stop::Admission,
        ),
        (
            "bad signature",
            Box::new(|c: &mut Chain| tampered(c, &key(1), |tx| tx.signature[10] ^= 1)),
            Code::BadSignature,
            Stop::Admission,
        ),
        (
            // The same code as a bad one: the issue lists "bad or missing signature" as one abuse.
            "missing signature",
            Box::new(|c: &mut Chain| tampered(c, &key(1), |tx| tx.signature.clear())),
            Code::BadSignature,
            Stop::Admission,
        ),
        (
            "replayed sequence (alice's registration, byte for byte)",
            Box::new(move |_: &mut Chain| replayed.clone()),
            Code::SequenceReused,
            Stop::Admission,
        ),
        (
            "oversized field",
            Box::new(|c: &mut Chain| {
                c.tx(
                    &key(1),
                    Msg::RevokeConsent(pb::RevokeConsent {
                        consent_id: "x".repeat(1000),
                    }),
                )
            }),
            Code::FieldTooLong,
            Stop::Admission,
        ),
        (
            "oversized tx",
            Box::new(|c: &mut Chain| {
                c.tx(
                    &key(1),
                    Msg::RevokeConsent(pb::RevokeConsent {
                        consent_id: "x".repeat(9000),
                    }),
                )
            }),
            Code::TxTooLarge,
            Stop::Admission,
        ),
        (
            "too many items",
            Box::new(|c: &mut Chain| {
                c.tx(
                    &key(1),
                    Msg::GrantConsent(pb::GrantConsent {
                        grantee: "hospital-a".into(),
                        data_classes: vec!["Observation".into(); 33],
                        purposes: vec![Purpose::Treat as i32],
                        ..Default::default()
                    }),
                )
            }),
            Code::TooManyItems,
            Stop::Admission,
        ),
        (
            "another patient's consent revoked",
            Box::new(move |c: &mut Chain| {
                c.tx(
                    &key(2),
                    Msg::RevokeConsent(pb::RevokeConsent {
                        consent_id: consent_id.clone(),
                    }),
                )
            }),
            Code::NotConsentOwner,
            Stop::StateMachine,
        ),
        (
            "an insurer adjudicating another insurer's claim",
            Box::new(move |c: &mut Chain| {
                c.tx(
                    &admin(OTHER_INSURER),
                    Msg::DecideClaim(pb::DecideClaim {
                        claim_id: claim_id.clone(),
                        approved_amounts: vec![0],
                        note_hash: Vec::new(),
                    }),
                )
            }),
            Code::NotClaimParty,
            Stop::StateMachine,
        ),
        (
            "a suspended practitioner reading",
            Box::new({
                let msg = read(&pid);
                move |c: &mut Chain| c.tx(&key(21), msg.clone())
            }),
            Code::PractitionerInactive,
            Stop::StateMachine,
        ),
        (
            // Its admin key was retired with it; this is the key the member's validator
            // operator signed governance with.
            "a removed member's key acting (hospital-d votes)",
            Box::new(|c: &mut Chain| {
                c.tx(
                    &admin(REMOVED),
                    Msg::VoteProposal(pb::VoteProposal {
                        proposal_id: 1,
                        yes: true,
                    }),
                )
            }),
            Code::UnknownSigner,
            Stop::Admission,
        ),
        (
            "a guardian recovery with too few signatures (1 of 2)",
            Box::new({
                let pid = pid.clone();
                move |c: &mut Chain| {
                    let new = key(53);
                    let approval = pb::GuardianApproval {
                        guardian_key: pk(&key(40)).to_vec(),
                        signature: recovery::approve(
                            &key(40),
                            CHAIN,
                            &pid,
                            &pk(&new),
                            &recovery::RecoveryState {
                                recoveries: 0,
                                current_key: pk(&key(1)),
                                guardian_set_hash: recovery::guardian_set_hash(
                                    &[40u8, 41, 42].map(|s| pk(&key(s)).to_vec()),
                                    2,
                                ),
                            },
                        )
                        .to_vec(),
                    };
                    c.tx(
                        &new,
                        Msg::RecoverPatientKey(pb::RecoverPatientKey {
                            patient_id: pid.clone(),
                            new_key: pk(&new).to_vec(),
                            approvals: vec![approval],
                        }),
                    )
                }
            }),
            Code::NotEnoughGuardians,
            Stop::Outsider,
        ),
        (
            "a patient logging a treatment access (a patient logs only their own PATRQT read)",
            Box::new({
                let msg = read(&patient_id(&bob));
                move |c: &mut Chain| c.tx(&key(1), msg.clone())
            }),
            Code::PatientPurposeOnly,
            Stop::StateMachine,
        ),
        (
            "a member reading without consent",
            Box::new({
                let msg = read(&pid);
                move |c: &mut Chain| c.tx(&admin(LAB), msg.clone())
            }),
            Code::NoPermittingConsent,
            Stop::StateMachine,
        ),
        (
            "an unknown key granting consent",
            Box::new(|c: &mut Chain| {
                c.tx(
                    &key(77),
                    Msg::GrantConsent(pb::GrantConsent {
                        grantee: "hospital-a".into(),
                        data_classes: vec!["*".into()],
                        purposes: vec![Purpose::Treat as i32],
                        ..Default::default()
                    }),
                )
            }),
            Code::UnknownSigner,
            Stop::Admission,
        ),
        (
            "a proposal carrying an undecodable tx",
            Box::new(|_: &mut Chain| vec![0xff, 0xff, 0xff]),
            Code::TxDecode,
            Stop::Proposal,
        ),
        (
            "a proposal carrying a certificate that is not its first tx",
            Box::new(|_: &mut Chain| encode_certificate_tx(&pb::Certificate::default())),
            Code::ProposerOnly,
            Stop::Proposal,
        ),
    ];

    for (what, build, code, stop) in &cases {
        let before = c.ledger().info().unwrap().app_hash;
        let tx = build(&mut c);
        match stop {
            Stop::Proposal => {
                // After a valid tx, so the rejection is the invalid tx's alone.
                let valid = c.tx(&admin(0), enrol(&key(90)));
                assert!(c.process_proposal(std::slice::from_ref(&valid)).is_ok());
                let err = c.process_proposal(&[valid, tx]).expect_err(what);
                assert_eq!(err.code, *code, "{what}: {}", err.message);
                assert_eq!(c.ledger().info().unwrap().app_hash, before, "{what}");
                c.resync();
                continue;
            }
            Stop::Admission | Stop::Outsider => {
                let err = c.ledger_mut().check_tx(&tx).expect_err(what);
                assert_eq!(err.code, *code, "{what}: CheckTx: {}", err.message);
            }
            Stop::StateMachine => {
                // Authentic and in sequence: CheckTx (a filter) admits it; the block refuses it.
                assert!(c.ledger_mut().check_tx(&tx).is_ok(), "{what}: CheckTx");
            }
        }
        let expected = match stop {
            Stop::StateMachine => {
                let v = decode_and_verify(&tx).unwrap();
                // The consumed sequence, and the block's time that any block writing
                // something records.
                let mut seq = WriteSet::from([
                    (
                        keys::sequence(v.signer()),
                        Some(keys::encode_u64(v.body().sequence + 1)),
                    ),
                    (keys::block_time(), Some(keys::encode_u64(c.time))),
                ]);
                if *code == Code::NoPermittingConsent {
                    // A LogAccess refused for want of a consent is also recorded, and nothing
                    // else (docs/rules.md, "Refused attempts").
                    seq.extend(refused_writes(&c, &pid));
                }
                let root = c.ledger().store().stage(c.height, &seq).unwrap().root;
                assert_ne!(
                    root, before,
                    "{what}: the consumed sequence is in the app hash"
                );
                root
            }
            _ => before,
        };
        let r = c.block(vec![tx]);
        let t = &r.tx_results[0];
        assert_eq!(t.code, code.value(), "{what}: {}", t.log);
        assert!(!t.log.is_empty(), "{what}: a refusal says why");
        assert!(r.events.is_empty(), "{what}: no end-of-block effects");
        assert_eq!(
            r.app_hash, expected,
            "{what}: state changed beyond {stop:?}"
        );
        c.resync();
    }
}

/// The writes of the first refused attempt of `pid`: lab-b's admin reading record `r`
/// (Observation, TREAT) with no consent to lab-b, in the chain's next block.
fn refused_writes(c: &Chain, pid: &str) -> WriteSet {
    let list = keys::List::Refused(pid);
    assert_eq!(
        c.ledger()
            .store()
            .get_u64(&keys::grant_count(pid, "lab-b"))
            .unwrap(),
        0
    );
    assert_eq!(c.ledger().store().get_u64(&list.count_key()).unwrap(), 0);
    let entry = pb::RefusedAttempt {
        patient_id: pid.into(),
        index: 0,
        actor: "lab-b".into(),
        record_id: "r".into(),
        data_class: "Observation".into(),
        purpose: Purpose::Treat as i32,
        action: pb::Action::Read as i32,
        code: Code::NoPermittingConsent.value(),
        reason: pb::RefusalReason::NoConsent as i32,
        height: c.height,
        time: c.time,
        ..Default::default()
    }
    .encode_to_vec();
    let digest = medledger_tx::digest::ListDigest::of(&list, [entry.as_slice()]).unwrap();
    let mut block = c.height.to_be_bytes().to_vec();
    block.extend_from_slice(&1u64.to_be_bytes());
    WriteSet::from([
        (list.entry_key(0), Some(entry)),
        (list.count_key(), Some(keys::encode_u64(1))),
        (list.digest_key().unwrap(), Some(digest.encode())),
        (keys::refused_block(), Some(block)),
    ])
}

//! CheckTx's mempool lanes: patients and practitioners are rationed per node, so a flood from
//! their keys cannot crowd members out of the mempool (issue 15, "members are not starved").

#![allow(clippy::unwrap_used)]

use medledger_state::lanes::{PATIENT_LANE, PATIENT_SIGNER};
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use medledger_tx::Code;

use crate::common::*;

fn grant_to(member: usize, class: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: MEMBERS[member].0.into(),
        data_classes: vec![class.into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

#[test]
fn a_flooding_patient_key_is_held_to_its_share_while_members_are_admitted() {
    let mut c = Chain::new();
    let flooder = key(1);
    c.enrol(&flooder);
    c.ok(&flooder, grant_to(0, "Observation"));
    let patient = patient_id(&flooder);
    let flood: Vec<Vec<u8>> = (0..PATIENT_SIGNER + 4)
        .map(|i| c.tx(&flooder, grant_to((i % 4) as usize, "Immunization")))
        .collect();
    let codes: Vec<Option<Code>> = flood
        .iter()
        .map(|t| c.ledger_mut().check_tx(t).err().map(|e| e.code))
        .collect();
    let admitted = PATIENT_SIGNER as usize;
    assert!(codes[..admitted].iter().all(Option::is_none), "{codes:?}");
    assert_eq!(codes[admitted], Some(Code::MempoolLaneFull));
    // A member's reads are admitted however many the patient keeps pending.
    for n in 0..200u8 {
        let read = c.unordered(
            &admin(0),
            n,
            c.time + 30,
            read(&patient, &format!("o{n}"), "Observation"),
        );
        c.ledger_mut().check_tx(&read).unwrap();
    }
    // A block carries the pending txs: the patient's next tx is admitted again.
    let r = c.block(flood[..admitted].to_vec());
    assert!(r.tx_results.iter().all(|t| t.code == 0));
    c.ledger_mut().check_tx(&flood[admitted]).unwrap();
}

#[test]
fn many_patient_keys_together_fill_only_the_patient_lane() {
    let mut c = Chain::new();
    // Enough patients that their shares add up past the lane: 20 × 16 > 256.
    let keys: Vec<_> = (0..20u8).map(|i| key(10 + i)).collect();
    for k in &keys {
        c.enrol(k);
    }
    let mut admitted = 0u64;
    let mut lane_full = 0u64;
    for k in &keys {
        for i in 0..PATIENT_SIGNER {
            let tx = c.tx(k, grant_to((i % 4) as usize, "Immunization"));
            match c.ledger_mut().check_tx(&tx) {
                Ok(()) => admitted += 1,
                Err(e) if e.code == Code::MempoolLaneFull => lane_full += 1,
                Err(e) if e.code == Code::SequenceGap => {} // after its own refusal
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert_eq!(admitted, PATIENT_LANE);
    assert!(lane_full > 0);
    // Members are still admitted (CheckTx does not evaluate consent; the block does).
    let patient = patient_id(&keys[0]);
    let read = c.unordered(
        &admin(0),
        1,
        c.time + 30,
        read(&patient, "o", "Observation"),
    );
    c.ledger_mut().check_tx(&read).unwrap();
}

// Issue 23: the mempool could be jammed on a real localnet. Each attack is replayed as found.

use ed25519_dalek::SigningKey;
use medledger_tx::{limits, recovery, sign_tx};

/// The `i`th fresh key: one the ledger has never seen.
fn fresh(i: u32) -> SigningKey {
    let mut seed = [0xA5u8; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    SigningKey::from_bytes(&seed)
}

/// `msg` signed by `k` unordered with a nonce made from `n`, valid 30 s past the chain's time.
fn unordered_n(c: &Chain, k: &SigningKey, n: u32, msg: Msg) -> Vec<u8> {
    let mut nonce = vec![0x5Au8; 16];
    nonce[..4].copy_from_slice(&n.to_be_bytes());
    let body = pb::TxBody {
        chain_id: CHAIN.into(),
        sequence: 0,
        unordered: Some(pb::Unordered {
            nonce,
            valid_until: c.time + 30,
        }),
        msg: Some(msg),
    };
    sign_tx(k, &body)
}

/// A recovery of `patient` to `new` (signed by `new`, sequence 0) with `approvals`.
fn recovery_tx(patient: &str, new: &SigningKey, approvals: Vec<pb::GuardianApproval>) -> Vec<u8> {
    signed(
        new,
        0,
        Msg::RecoverPatientKey(pb::RecoverPatientKey {
            patient_id: patient.into(),
            new_key: pk(new).to_vec(),
            approvals,
        }),
    )
}

/// The guardians of the patients these tests recover: [`limits::MAX_GUARDIANS`] keys, any one
/// of which approves (threshold 1).
fn guardians() -> Vec<SigningKey> {
    (0..limits::MAX_GUARDIANS as u8)
        .map(|i| key(200 + i))
        .collect()
}

/// Patient `k` names [`guardians`] (threshold 1).
fn set_guardians(c: &mut Chain, k: &SigningKey) {
    let set = Msg::SetGuardians(pb::SetGuardians {
        guardian_keys: guardians().iter().map(|g| pk(g).to_vec()).collect(),
        threshold: 1,
    });
    c.ok(k, set);
}

/// Valid approvals of moving patient `k` (never recovered, guardians from [`set_guardians`]) to
/// `new`, by the guardians whose bits are set in `which`.
fn approvals(k: &SigningKey, new: &SigningKey, which: u32) -> Vec<pb::GuardianApproval> {
    let gs = guardians();
    let at = recovery::RecoveryState {
        recoveries: 0,
        current_key: pk(k),
        guardian_set_hash: recovery::guardian_set_hash(
            &gs.iter().map(|g| pk(g).to_vec()).collect::<Vec<_>>(),
            1,
        ),
    };
    gs.iter()
        .enumerate()
        .filter(|(i, _)| which & (1 << i) != 0)
        .map(|(_, g)| pb::GuardianApproval {
            guardian_key: pk(g).to_vec(),
            signature: recovery::approve(g, CHAIN, &patient_id(k), &pk(new), &at).to_vec(),
        })
        .collect()
}

/// The id of the consent a grant's events name.
fn consent_id(events: &[medledger_state::Event]) -> String {
    events
        .iter()
        .flat_map(|e| &e.attributes)
        .find(|(k, _)| *k == "consent_id")
        .map(|(_, v)| v.clone())
        .unwrap()
}

fn revoke(id: &str) -> Msg {
    Msg::RevokeConsent(pb::RevokeConsent {
        consent_id: id.into(),
    })
}

/// Attack 1 (issue 23): format-valid recoveries without approvals, from fresh keys, passed
/// CheckTx and filled the patients' lane, so the real patients' revocations were refused with
/// MEMPOOL_LANE_FULL. CheckTx now checks a recovery as its handler does, against the committed
/// state, and refuses it with the code the block would give.
#[test]
fn junk_recoveries_from_fresh_keys_never_reach_the_mempool() {
    let mut c = Chain::new();
    let alice = key(1);
    let bob = key(2);
    c.enrol(&alice);
    c.enrol(&bob);
    let grant = c.ok(&alice, grant_to(0, "Observation"));
    let consent = consent_id(&grant);
    set_guardians(&mut c, &alice);
    // The attack: 2 × the patients' lane of junk, for a patient with guardians, one without and
    // one that does not exist.
    let cases = [
        (patient_id(&alice), Code::NotEnoughGuardians),
        (patient_id(&bob), Code::NoGuardians),
        ("pt-nobody".to_string(), Code::UnknownPatient),
    ];
    for i in 0..2 * PATIENT_LANE as u32 {
        let (patient, code) = &cases[i as usize % cases.len()];
        let junk = recovery_tx(patient, &fresh(i), Vec::new());
        let got = c.ledger_mut().check_tx(&junk).err().map(|e| e.code);
        assert_eq!(got, Some(*code), "junk recovery {i}");
    }
    // The same code as the block's handler gives.
    for (i, (patient, code)) in cases.iter().enumerate() {
        let junk = recovery_tx(patient, &fresh(i as u32), Vec::new());
        let r = c.block(vec![junk]);
        assert_eq!(
            r.tx_results[0].code,
            code.value(),
            "{}",
            r.tx_results[0].log
        );
    }
    // A recovery whose approvals are another patient's, or void, is refused too.
    let stolen = recovery_tx(
        &patient_id(&alice),
        &fresh(9000),
        approvals(&bob, &fresh(9000), 1),
    );
    assert_eq!(
        c.ledger_mut().check_tx(&stolen).unwrap_err().code,
        Code::NotEnoughGuardians
    );
    // The real patients' consent changes are admitted.
    let revoke = c.tx(&alice, revoke(&consent));
    c.ledger_mut().check_tx(&revoke).unwrap();
    let grant = c.tx(&bob, grant_to(1, "Observation"));
    c.ledger_mut().check_tx(&grant).unwrap();
    // A genuine recovery is admitted, and applies.
    let good = recovery_tx(
        &patient_id(&alice),
        &fresh(9001),
        approvals(&alice, &fresh(9001), 1),
    );
    c.ledger_mut().check_tx(&good).unwrap();
    let r = c.block(vec![revoke, grant, good]);
    let codes: Vec<u32> = r.tx_results.iter().map(|t| t.code).collect();
    assert_eq!(codes, vec![0, 0, 0], "{:?}", r.tx_results);
}

/// Attack 2 (issue 23): one unknown key had 600 more sequence-0 txs admitted with code 0,
/// because CheckTx admitted any sequence already pending without its lane. Now only the same
/// bytes again (a recheck or a resend) skip admission; a different tx at a pending sequence
/// takes a place in its lane like any other.
#[test]
fn distinct_txs_at_a_pending_sequence_are_held_to_the_lane_limits() {
    let mut c = Chain::new();
    let alice = key(1);
    c.enrol(&alice);
    set_guardians(&mut c, &alice);
    let new = fresh(1);
    // 600 distinct, valid recoveries (each a different subset of guardians), all at sequence 0.
    let txs: Vec<Vec<u8>> = (1..=600u32)
        .map(|which| recovery_tx(&patient_id(&alice), &new, approvals(&alice, &new, which)))
        .collect();
    let mut admitted = 0;
    for tx in &txs {
        match c.ledger_mut().check_tx(tx) {
            Ok(()) => admitted += 1,
            Err(e) => assert_eq!(e.code, Code::MempoolLaneFull, "{e}"),
        }
    }
    assert_eq!(admitted, limits::MEMPOOL_OUTSIDER_SIGNER);
    // A resend (or a recheck) of a pending tx is admitted again, for free.
    c.ledger_mut().check_tx(&txs[0]).unwrap();
    // The same holds for a known key: a patient's distinct txs at one pending sequence stop at
    // the per-key limit.
    let bob = key(2);
    c.enrol(&bob);
    let seq = c.committed_sequence(&bob);
    let mut admitted = 0;
    for n in 0..600u32 {
        let tx = c.tx_at(&bob, seq, grant_to((n % 4) as usize, &format!("Class{n}")));
        match c.ledger_mut().check_tx(&tx) {
            Ok(()) => admitted += 1,
            Err(e) => assert_eq!(e.code, Code::MempoolLaneFull, "{e}"),
        }
    }
    assert_eq!(admitted, PATIENT_SIGNER);
    // A client that re-signs after a block: one tx per sequence applies, the others are refused
    // by the block, and the next sequence is admitted.
    let first = c.tx_at(&bob, seq, grant_to(0, "Class0"));
    let other = c.tx_at(&bob, seq, grant_to(1, "Class1"));
    let r = c.block(vec![first, other]);
    assert_eq!(r.tx_results[0].code, 0);
    assert_eq!(r.tx_results[1].code, Code::SequenceReused.value());
    let next = c.tx_at(&bob, seq + 1, grant_to(2, "Observation"));
    c.ledger_mut().check_tx(&next).unwrap();
}

/// Attack 3 (issue 23): no outsider can block a revocation, and no member starves another.
/// Fresh keys queue in their own small lane; a patients' lane filled by other patient keys
/// still admits a patient's revocation (a reserved allowance); one member's flood stops at its
/// quota, shared by its admin and practitioners, and another member's txs are admitted.
#[test]
fn floods_from_outsiders_patients_and_one_member_leave_a_revoke_and_another_member_admitted() {
    let mut c = Chain::new();
    let alice = key(1);
    c.enrol(&alice);
    let mut consents = Vec::new();
    for n in 0..limits::MEMPOOL_PATIENT_RESERVED + 1 {
        let grant = c.ok(&alice, grant_to((n % 4) as usize, "Observation"));
        consents.push(consent_id(&grant));
    }
    set_guardians(&mut c, &alice);
    let doc_a = key(30);
    let doc_b = key(31);
    c.ok(
        &admin(0),
        register_practitioner_for(0, &doc_a, pb::PractitionerRole::Physician, 0),
    );
    c.ok(
        &admin(3),
        register_practitioner_for(3, &doc_b, pb::PractitionerRole::Physician, 0),
    );
    let patient = patient_id(&alice);

    // Outsiders: 300 fresh keys, each with a valid recovery of alice, fill only their own lane.
    let mut admitted = 0;
    for i in 0..300u32 {
        let new = fresh(i);
        let tx = recovery_tx(&patient, &new, approvals(&alice, &new, 1 << (i % 16)));
        match c.ledger_mut().check_tx(&tx) {
            Ok(()) => admitted += 1,
            Err(e) => assert_eq!(e.code, Code::MempoolLaneFull, "{e}"),
        }
    }
    assert_eq!(admitted, limits::MEMPOOL_OUTSIDER_LANE);
    // Alice's next txs are admitted: outsiders took nothing of the patients' lane.
    let grant = c.tx(&alice, grant_to(1, "Immunization"));
    c.ledger_mut().check_tx(&grant).unwrap();

    // Other patient keys fill the patients' lane.
    let flooders: Vec<_> = (0..20u8).map(|i| key(40 + i)).collect();
    for k in &flooders {
        c.enrol(k);
    }
    for k in &flooders {
        for i in 0..PATIENT_SIGNER {
            let tx = c.tx(k, grant_to((i % 4) as usize, "Immunization"));
            let _ = c.ledger_mut().check_tx(&tx);
        }
    }
    // Alice's grant above is pending at her committed sequence; her next is one past it.
    let next = c.committed_sequence(&alice) + 1;
    let grant = c.tx_at(&alice, next, grant_to(2, "Immunization"));
    assert_eq!(
        c.ledger_mut().check_tx(&grant).unwrap_err().code,
        Code::MempoolLaneFull,
        "the lane is full for anything but a revocation"
    );
    // Alice's revocations are admitted while she has fewer than the reserved allowance pending
    // (her grant uses one place).
    let mut revoked = 0;
    for (i, id) in consents.iter().enumerate() {
        let tx = c.tx_at(&alice, next + i as u64, revoke(id));
        match c.ledger_mut().check_tx(&tx) {
            Ok(()) => revoked += 1,
            Err(e) => {
                assert_eq!(e.code, Code::MempoolLaneFull, "{e}");
                break;
            }
        }
    }
    assert_eq!(revoked, limits::MEMPOOL_PATIENT_RESERVED - 1);

    // One member floods: its admin and its practitioner share one quota.
    let mut admitted = 0;
    for n in 0..limits::MEMPOOL_MEMBER_QUOTA as u32 + 50 {
        let signer = if n % 32 == 0 { &doc_a } else { &admin(0) };
        let tx = unordered_n(
            &c,
            signer,
            n,
            read(&patient, &format!("r{n}"), "Observation"),
        );
        match c.ledger_mut().check_tx(&tx) {
            Ok(()) => admitted += 1,
            Err(e) => assert_eq!(e.code, Code::MempoolLaneFull, "{e}"),
        }
    }
    assert_eq!(admitted, limits::MEMPOOL_MEMBER_QUOTA);
    let tx = unordered_n(&c, &doc_a, 99_999, read(&patient, "y", "Observation"));
    assert_eq!(
        c.ledger_mut().check_tx(&tx).unwrap_err().code,
        Code::MempoolLaneFull,
        "the member's practitioner shares its quota"
    );
    // Another member's admin and practitioner are admitted.
    for (n, signer) in [admin(3), doc_b].iter().enumerate() {
        let tx = unordered_n(&c, signer, n as u32, read(&patient, "x", "Observation"));
        c.ledger_mut().check_tx(&tx).unwrap();
    }
}

/// Issue 23, `bench starve --flood member`: one member's admin key flooded unordered reads
/// (admitted by CheckTx, refused by the block) and, with only the count quota (1,024), held half
/// of a ten-block mempool, so the other members waited behind it and met CometBFT's `mempool is
/// full`. Once the node knows the block size (from PrepareProposal), a member's lane also stops
/// at two blocks' bytes, far below its count quota, shared equally among the members with txs
/// pending: the others are admitted, and the flooder is held to its share.
#[test]
fn one_member_flood_holds_only_its_share_of_two_blocks_and_the_others_are_admitted() {
    let mut c = Chain::new();
    let alice = key(1);
    c.enrol(&alice);
    let patient = patient_id(&alice);
    // A small block, so two blocks hold a few dozen txs.
    let block: u64 = 4_000;
    let height = c.height;
    c.ledger_mut()
        .prepare_proposal(height, &[], Vec::new(), block);

    let mut held = 0u64;
    let mut admitted = 0u64;
    let mut refused = None;
    for n in 0..limits::MEMPOOL_MEMBER_QUOTA as u32 {
        let tx = unordered_n(
            &c,
            &admin(0),
            n,
            read(&patient, &format!("r{n}"), "Observation"),
        );
        match c.ledger_mut().check_tx(&tx) {
            Ok(()) => {
                admitted += 1;
                held += medledger_state::ledger::framed_tx_size(tx.len());
            }
            Err(e) => {
                refused = Some((e, medledger_state::ledger::framed_tx_size(tx.len())));
                break;
            }
        }
    }
    let (e, size) = refused.expect("the member's lane stops before its count quota");
    assert_eq!(e.code, Code::MempoolLaneFull, "{e}");
    assert!(
        held <= 2 * block && held + size > 2 * block,
        "{held} + {size}"
    );
    assert!(admitted > 10 && admitted < limits::MEMPOOL_MEMBER_QUOTA);
    // Its practitioner shares the lane.
    let doc = key(30);
    c.ok(
        &admin(0),
        register_practitioner_for(0, &doc, pb::PractitionerRole::Physician, 0),
    );
    let tx = unordered_n(&c, &doc, 99_999, read(&patient, "y", "Observation"));
    assert_eq!(
        c.ledger_mut().check_tx(&tx).unwrap_err().code,
        Code::MempoolLaneFull,
        "the member's practitioner shares its lane"
    );
    // Every other member is admitted, up to an equal share of the two blocks among the members
    // with txs pending (never under an eighth of a block): one block for the first beside the
    // flooder, two thirds of one for the next, half a block for the last; the flooder's own txs
    // queued ahead are never more than its share.
    for m in 1..4u64 {
        let share = (2 * block / (m + 1)).max(block / 8);
        let mut theirs = 0u64;
        let mut held = 0u64;
        for n in 0..admitted as u32 {
            let tx = unordered_n(
                &c,
                &admin(m as usize),
                n,
                read(&patient, &format!("x{n}"), "Observation"),
            );
            match c.ledger_mut().check_tx(&tx) {
                Ok(_) => {
                    theirs += 1;
                    held += medledger_state::ledger::framed_tx_size(tx.len());
                }
                Err(e) => {
                    assert_eq!(e.code, Code::MempoolLaneFull, "{e}");
                    assert!(
                        held <= share
                            && held + medledger_state::ledger::framed_tx_size(tx.len()) > share,
                        "{held} of {share}"
                    );
                    break;
                }
            }
        }
        assert!(
            theirs > 0 && theirs < admitted,
            "member {m}: {theirs} of {admitted}"
        );
    }
    // The flooder, now one of four, is over its share: refused though its lane was admitted
    // two blocks when it was alone.
    let tx = unordered_n(&c, &admin(0), 88_888, read(&patient, "z", "Observation"));
    assert_eq!(
        c.ledger_mut().check_tx(&tx).unwrap_err().code,
        Code::MempoolLaneFull
    );
}

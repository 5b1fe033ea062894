//! Threshold custody on the ledger (issue 25): the consortium's `params/custody` from genesis and
//! from a passed SetCustody proposal; anchors that list their holders (the custodian first, each
//! a member with a gateway, `threshold` share commitments of 32 bytes); and erasure across the
//! holders, complete exactly when `holders - threshold + 1` of them confirmed. Each test tries
//! to break one rule and names the code it must answer.

#![allow(clippy::unwrap_used, clippy::panic)]

use medledger_state::genesis::genesis_writes;
use medledger_state::view::StateRead;
use medledger_state::{Event, Ledger};
use medledger_tx::pb::submit_proposal::Action;
use medledger_tx::pb::{
    self, tx_body::Msg, Custody, PractitionerRole, Proposal, ProposalStatus, RecordAnchor,
    SetCustody,
};
use medledger_tx::{boxkey, keys, Code};
use sha2::{Digest, Sha256};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;
const INSURER: usize = 2;
const HOSP_D: usize = 3;

// ---------------------------------------------------------------- messages

fn set_gateway(member: usize) -> Msg {
    let box_key = [member as u8 + 1; 32];
    let sig = boxkey::sign(&admin(member), CHAIN, MEMBERS[member].0, &box_key);
    Msg::SetGateway(pb::SetGateway {
        endpoint: format!("https://vault.{}.example", MEMBERS[member].0),
        box_public_key: box_key.to_vec(),
        box_key_signature: sig.to_vec(),
    })
}

fn set_custody(holders: u32, threshold: u32) -> Action {
    Action::SetCustody(SetCustody { holders, threshold })
}

fn commitments(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![i as u8 + 1; 32]).collect()
}

/// `record` of `patient` anchored with `holders`, `threshold` and `commitments`.
fn anchor_held(
    record: &str,
    patient: &str,
    holders: &[&str],
    threshold: u32,
    commitments: Vec<Vec<u8>>,
) -> Msg {
    let Msg::AnchorRecord(mut a) = anchor_as(record, patient, "Observation") else {
        unreachable!("anchor_as builds an AnchorRecord")
    };
    a.holders = holders.iter().map(|h| h.to_string()).collect();
    a.threshold = threshold;
    a.share_commitments = commitments;
    Msg::AnchorRecord(a)
}

fn erase(record: &str) -> Msg {
    Msg::EraseRecord(pb::EraseRecord {
        record_id: record.into(),
        reason_hash: Sha256::digest(b"patient request").to_vec(),
    })
}

fn confirm(record: &str) -> Msg {
    Msg::ConfirmErasure(pb::ConfirmErasure {
        record_id: record.into(),
    })
}

/// Every value of attribute `name` in the event of `kind`.
fn attrs(events: &[Event], kind: &str, name: &str) -> Vec<String> {
    let e = events
        .iter()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:?}"));
    e.attributes
        .iter()
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

// ---------------------------------------------------------------- the world

/// Four members running validators (so governance passes with three yes votes), patient alice,
/// and the gateways of `gateways`.
struct World {
    c: Chain,
    alice: ed25519_dalek::SigningKey,
}

impl World {
    fn new(gateways: &[usize]) -> World {
        let mut c = Chain::with_validators(&[]);
        let alice = key(1);
        c.enrol(&alice);
        for &m in gateways {
            c.ok(&admin(m), set_gateway(m));
        }
        World { c, alice }
    }

    /// Custody `holders`/`threshold` by a passed proposal, and gateways at hospital-a, lab-b and
    /// insurer-c (hospital-d has none).
    fn with_custody(holders: u32, threshold: u32) -> World {
        let mut w = World::new(&[HOSP, LAB, INSURER]);
        w.pass(set_custody(holders, threshold));
        w
    }

    fn pid(&self) -> String {
        patient_id(&self.alice)
    }

    /// hospital-a proposes `action`; lab-b and insurer-c vote yes: 30 of 40 power passes it.
    /// Returns the events of the deciding vote.
    fn pass(&mut self, action: Action) -> Vec<Event> {
        let deadline = self.c.height + 100;
        self.c.ok(
            &admin(HOSP),
            Msg::SubmitProposal(pb::SubmitProposal {
                action: Some(action),
                deadline_height: deadline,
            }),
        );
        let id = self
            .c
            .ledger()
            .store()
            .get_u64(&keys::proposal_counter())
            .unwrap();
        let vote = |yes| {
            Msg::VoteProposal(pb::VoteProposal {
                proposal_id: id,
                yes,
            })
        };
        self.c.ok(&admin(LAB), vote(true));
        let events = self.c.ok(&admin(INSURER), vote(true));
        let p: Proposal = self.c.get(&keys::proposal(id)).unwrap();
        assert_eq!(p.status, ProposalStatus::Passed as i32, "{}", p.outcome);
        events
    }

    fn custody(&self) -> Option<Custody> {
        self.c.get(&keys::custody())
    }

    fn record(&self, id: &str) -> RecordAnchor {
        self.c.get(&keys::record(id)).unwrap()
    }

    /// hospital-a anchors `record` held by hospital-a, lab-b and insurer-c (custody 3/2).
    fn anchor_three(&mut self, record: &str) {
        let pid = self.pid();
        self.c.ok(
            &admin(HOSP),
            anchor_held(
                record,
                &pid,
                &["hospital-a", "lab-b", "insurer-c"],
                2,
                commitments(2),
            ),
        );
    }

    /// The code of an anchor of `rec-x` signed by hospital-a with these holders.
    fn anchor_code(&mut self, holders: &[&str], threshold: u32, commitments: Vec<Vec<u8>>) -> u32 {
        let pid = self.pid();
        let code = self.c.send(
            &admin(HOSP),
            anchor_held("rec-x", &pid, holders, threshold, commitments),
        );
        // A stateless refusal consumes no sequence, a stateful one does.
        self.c.resync();
        if code != 0 {
            assert!(
                self.c.get::<RecordAnchor>(&keys::record("rec-x")).is_none(),
                "a refused anchor writes nothing"
            );
        }
        code
    }
}

// ---------------------------------------------------------------- parameters

fn app_state(custody: serde_json::Value) -> Vec<u8> {
    let member = serde_json::json!({"id": "hospital-a", "name": "A", "kind": "hospital",
        "admin_key": hex::encode(pk(&admin(HOSP)))});
    let mut state = serde_json::json!({ "members": [member] });
    if !custody.is_null() {
        state["custody"] = custody;
    }
    serde_json::to_vec(&state).unwrap()
}

#[test]
fn custody_comes_from_genesis_and_is_off_without_it() {
    let custody_of = |custody: serde_json::Value| {
        let writes = genesis_writes(&app_state(custody), &[]).unwrap();
        writes
            .get(&keys::custody())
            .cloned()
            .flatten()
            .map(|v| <Custody as prost::Message>::decode(v.as_slice()).unwrap())
    };
    assert_eq!(
        custody_of(serde_json::json!({"holders": 3, "threshold": 2})),
        Some(Custody {
            holders: 3,
            threshold: 2
        })
    );
    assert_eq!(custody_of(serde_json::Value::Null), None, "absent: off");
    assert_eq!(
        custody_of(serde_json::json!({"holders": 0, "threshold": 0})),
        None,
        "both 0: off, and off is the key's absence"
    );

    // A ledger started from such a genesis holds it under its proven key.
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(dir.path()).unwrap();
    let genesis = app_state(serde_json::json!({"holders": 4, "threshold": 3}));
    l.init_chain_with_keys(CHAIN, 1, &genesis, &[], &[])
        .unwrap();
    let stored = l.store().get_msg::<Custody>(&keys::custody()).unwrap();
    assert_eq!(
        stored,
        Some(Custody {
            holders: 4,
            threshold: 3
        })
    );
}

#[test]
fn a_genesis_with_invalid_custody_is_refused() {
    for custody in [
        serde_json::json!({"holders": 3, "threshold": 1}),
        serde_json::json!({"holders": 2, "threshold": 3}),
        serde_json::json!({"holders": 8, "threshold": 2}),
        serde_json::json!({"holders": 0, "threshold": 2}),
        serde_json::json!({"holders": 3}),
        serde_json::json!({"holders": 3, "threshold": 2, "extra": 1}),
        serde_json::json!({"holders": -3, "threshold": 2}),
    ] {
        let refused = genesis_writes(&app_state(custody.clone()), &[]);
        assert!(refused.is_err(), "{custody} was accepted");
    }
}

#[test]
fn a_passed_set_custody_writes_the_params_and_both_zero_switch_it_off() {
    let mut w = World::new(&[]);
    assert_eq!(w.custody(), None, "the test genesis names no custody");
    let events = w.pass(set_custody(3, 2));
    assert_eq!(
        attrs(&events, "medledger.governance.custody_set", "holders"),
        ["3"]
    );
    assert_eq!(
        attrs(&events, "medledger.governance.custody_set", "threshold"),
        ["2"]
    );
    assert_eq!(
        w.custody(),
        Some(Custody {
            holders: 3,
            threshold: 2
        })
    );
    w.pass(set_custody(4, 3));
    assert_eq!(
        w.custody(),
        Some(Custody {
            holders: 4,
            threshold: 3
        })
    );
    w.pass(set_custody(0, 0));
    assert_eq!(w.custody(), None);
}

#[test]
fn an_invalid_set_custody_is_refused_and_opens_no_proposal() {
    let mut w = World::new(&[]);
    let deadline = w.c.height + 100;
    for (holders, threshold) in [(3, 1), (2, 3), (8, 2), (8, 8), (0, 2), (3, 0)] {
        let code = w.c.send(
            &admin(HOSP),
            Msg::SubmitProposal(pb::SubmitProposal {
                action: Some(set_custody(holders, threshold)),
                deadline_height: deadline,
            }),
        );
        assert_eq!(
            code,
            Code::InvalidCustody.value(),
            "{threshold} of {holders}"
        );
        // Refused statelessly: the sequence was not consumed.
        w.c.resync();
    }
    assert_eq!(
        w.c.ledger()
            .store()
            .get_u64(&keys::proposal_counter())
            .unwrap(),
        0
    );
    // Only a member's admin proposes it.
    let alice = w.alice.clone();
    assert_eq!(
        w.c.send(
            &alice,
            Msg::SubmitProposal(pb::SubmitProposal {
                action: Some(set_custody(3, 2)),
                deadline_height: deadline,
            }),
        ),
        Code::NotAuthorized.value()
    );
}

// ---------------------------------------------------------------- anchors

#[test]
fn an_anchor_lists_its_holders_custodian_first_with_threshold_commitments() {
    let mut w = World::with_custody(3, 2);
    let pid = w.pid();
    let events = w.c.ok(
        &admin(HOSP),
        anchor_held(
            "rec-1",
            &pid,
            &["hospital-a", "lab-b", "insurer-c"],
            2,
            commitments(2),
        ),
    );
    assert_eq!(
        attrs(&events, "medledger.record.anchored", "holder"),
        ["hospital-a", "lab-b", "insurer-c"]
    );
    let a = w.record("rec-1");
    assert_eq!(a.custodian, "hospital-a");
    assert_eq!(a.holders, ["hospital-a", "lab-b", "insurer-c"]);
    assert_eq!(a.threshold, 2);
    assert_eq!(a.share_commitments, commitments(2));
    assert!(a.erasure_confirmations.is_empty());

    // The holders' order after the custodian is the anchor's.
    let events = w.c.ok(
        &admin(HOSP),
        anchor_held(
            "rec-2",
            &pid,
            &["hospital-a", "insurer-c", "lab-b"],
            2,
            commitments(2),
        ),
    );
    assert_eq!(
        attrs(&events, "medledger.record.anchored", "holder"),
        ["hospital-a", "insurer-c", "lab-b"]
    );

    // A practitioner anchors for their member, which must come first.
    let tech = key(30);
    w.c.ok(
        &admin(LAB),
        register_practitioner_for(LAB, &tech, PractitionerRole::LabTechnician, 0),
    );
    w.c.ok(
        &tech,
        anchor_held(
            "rec-3",
            &pid,
            &["lab-b", "hospital-a", "insurer-c"],
            2,
            commitments(2),
        ),
    );
    assert_eq!(w.record("rec-3").custodian, "lab-b");
    assert_eq!(
        w.c.send(
            &tech,
            anchor_held(
                "rec-4",
                &pid,
                &["hospital-a", "lab-b", "insurer-c"],
                2,
                commitments(2)
            )
        ),
        Code::CustodianNotFirst.value()
    );
}

#[test]
fn a_single_custodian_anchor_stays_valid_with_custody_on_or_off() {
    for mut w in [World::with_custody(3, 2), World::new(&[])] {
        let pid = w.pid();
        let events =
            w.c.ok(&admin(HOSP), anchor_held("rec-1", &pid, &[], 0, vec![]));
        assert!(attrs(&events, "medledger.record.anchored", "holder").is_empty());
        let a = w.record("rec-1");
        assert!(a.holders.is_empty() && a.threshold == 0 && a.share_commitments.is_empty());
    }
}

#[test]
fn the_wrong_number_of_holders_is_a_custody_mismatch() {
    let mut w = World::with_custody(3, 2);
    w.c.ok(&admin(HOSP_D), set_gateway(HOSP_D));
    let m = Code::CustodyMismatch.value();
    assert_eq!(
        w.anchor_code(&["hospital-a", "lab-b"], 2, commitments(2)),
        m
    );
    assert_eq!(
        w.anchor_code(
            &["hospital-a", "lab-b", "insurer-c", "hospital-d"],
            2,
            commitments(2)
        ),
        m
    );
}

#[test]
fn the_wrong_threshold_is_a_custody_mismatch() {
    let mut w = World::with_custody(3, 2);
    let m = Code::CustodyMismatch.value();
    let three = ["hospital-a", "lab-b", "insurer-c"];
    assert_eq!(w.anchor_code(&three, 3, commitments(3)), m);
    assert_eq!(
        w.anchor_code(&[], 2, vec![]),
        m,
        "a threshold without holders"
    );
    // Holders while custody is off.
    let mut off = World::new(&[HOSP, LAB, INSURER]);
    assert_eq!(off.anchor_code(&three, 2, commitments(2)), m);
    off.pass(set_custody(3, 2));
    off.pass(set_custody(0, 0));
    assert_eq!(off.anchor_code(&three, 2, commitments(2)), m);
}

#[test]
fn a_holder_listed_twice_is_refused() {
    let mut w = World::with_custody(3, 2);
    assert_eq!(
        w.anchor_code(&["hospital-a", "lab-b", "lab-b"], 2, commitments(2)),
        Code::DuplicateHolder.value()
    );
    assert_eq!(
        w.anchor_code(&["hospital-a", "lab-b", "hospital-a"], 2, commitments(2)),
        Code::DuplicateHolder.value()
    );
}

#[test]
fn the_custodian_must_be_the_first_holder() {
    let mut w = World::with_custody(3, 2);
    let code = Code::CustodianNotFirst.value();
    assert_eq!(
        w.anchor_code(&["lab-b", "hospital-a", "insurer-c"], 2, commitments(2)),
        code
    );
    assert_eq!(
        w.anchor_code(&["lab-b", "insurer-c", "hospital-d"], 2, commitments(2)),
        code,
        "nor may the custodian leave itself out"
    );
}

#[test]
fn every_holder_is_a_member_with_a_gateway() {
    let mut w = World::with_custody(3, 2);
    assert_eq!(
        w.anchor_code(&["hospital-a", "lab-b", "ghost-z"], 2, commitments(2)),
        Code::UnknownMember.value()
    );
    assert_eq!(
        w.anchor_code(&["hospital-a", "hospital-d", "lab-b"], 2, commitments(2)),
        Code::HolderWithoutGateway.value(),
        "hospital-d is a member but has registered no gateway"
    );
    // Once it registers one, it may hold.
    w.c.ok(&admin(HOSP_D), set_gateway(HOSP_D));
    assert_eq!(
        w.anchor_code(&["hospital-a", "hospital-d", "lab-b"], 2, commitments(2)),
        0
    );
}

#[test]
fn share_commitments_are_exactly_threshold_entries_of_32_bytes() {
    let mut w = World::with_custody(3, 2);
    let three = ["hospital-a", "lab-b", "insurer-c"];
    let bad = Code::BadShareCommitments.value();
    for commitments in [
        commitments(1),
        commitments(3),
        vec![],
        vec![vec![1; 32], vec![2; 31]],
        vec![vec![1; 33], vec![2; 32]],
    ] {
        assert_eq!(
            w.anchor_code(&three, 2, commitments.clone()),
            bad,
            "{commitments:?}"
        );
    }
    assert_eq!(
        w.anchor_code(&[], 0, commitments(2)),
        bad,
        "commitments without holders"
    );
    assert_eq!(
        w.anchor_code(&three, 2, commitments(8)),
        Code::TooManyItems.value()
    );
}

// ---------------------------------------------------------------- erasure

#[test]
fn a_threshold_erasure_completes_when_fewer_than_threshold_shares_can_remain() {
    let mut w = World::with_custody(3, 2);
    let pid = w.pid();
    w.anchor_three("rec-1");
    assert_eq!(
        w.c.send(&admin(LAB), confirm("rec-1")),
        Code::ErasureNotRequested.value()
    );
    let alice = w.alice.clone();
    let events = w.c.ok(&alice, erase("rec-1"));
    assert_eq!(
        attrs(&events, "medledger.record.erased", "holder"),
        ["hospital-a", "lab-b", "insurer-c"],
        "every holder's gateway finds the erasure"
    );
    assert_eq!(
        attrs(&events, "medledger.record.erased", "custodian"),
        ["hospital-a"]
    );

    // One holder: two shares may remain, enough to rebuild the key.
    let events = w.c.ok(&admin(LAB), confirm("rec-1"));
    let kind = "medledger.record.erasure_confirmed";
    assert_eq!(attrs(&events, kind, "holder"), ["lab-b"]);
    assert_eq!(attrs(&events, kind, "complete"), ["false"]);
    assert_eq!(attrs(&events, kind, "patient_id"), [pid]);
    let a = w.record("rec-1");
    assert_eq!(a.erasure_confirmations, ["lab-b"]);
    assert_eq!(a.erasure_confirmed_height, 0, "requested, not complete");
    assert!(a.erasure_confirmed_by.is_empty());

    // The second: at most one share remains, fewer than the threshold. Complete.
    let height = w.c.height;
    let events = w.c.ok(&admin(INSURER), confirm("rec-1"));
    assert_eq!(attrs(&events, kind, "complete"), ["true"]);
    let a = w.record("rec-1");
    assert_eq!(a.erasure_confirmations, ["lab-b", "insurer-c"]);
    assert_eq!(
        (a.erasure_confirmed_height, a.erasure_confirmed_by.as_str()),
        (height, "insurer-c")
    );

    // The last holder still confirms; the completion height stays.
    w.c.ok(&admin(HOSP), confirm("rec-1"));
    let a = w.record("rec-1");
    assert_eq!(
        a.erasure_confirmations,
        ["lab-b", "insurer-c", "hospital-a"]
    );
    assert_eq!(a.erasure_confirmed_height, height);
    assert_eq!(a.erasure_confirmed_by, "insurer-c");
}

#[test]
fn completion_comes_exactly_at_r_minus_t_plus_one_confirmations() {
    for (holders, threshold) in [(3u32, 2u32), (4, 2), (4, 3), (4, 4)] {
        let mut w = World::new(&[HOSP, LAB, INSURER, HOSP_D]);
        w.pass(set_custody(holders, threshold));
        let all = ["hospital-a", "lab-b", "insurer-c", "hospital-d"];
        let held = &all[..holders as usize];
        let pid = w.pid();
        w.c.ok(
            &admin(HOSP),
            anchor_held(
                "rec-1",
                &pid,
                held,
                threshold,
                commitments(threshold as usize),
            ),
        );
        w.c.ok(&admin(HOSP), erase("rec-1"));
        let needed = (holders - threshold + 1) as usize;
        // Holders confirm last first, so the custodian's place in the list does not matter.
        for (n, member) in (1..=held.len()).zip((0..held.len()).rev()) {
            w.c.ok(&admin(member), confirm("rec-1"));
            let a = w.record("rec-1");
            assert_eq!(a.erasure_confirmations.len(), n);
            assert_eq!(
                a.erasure_confirmed_height != 0,
                n >= needed,
                "{threshold} of {holders}, after {n} confirmations"
            );
        }
    }
}

#[test]
fn a_member_that_holds_no_share_cannot_confirm() {
    let mut w = World::with_custody(3, 2);
    w.anchor_three("rec-1");
    let alice = w.alice.clone();
    w.c.ok(&alice, erase("rec-1"));
    assert_eq!(
        w.c.send(&admin(HOSP_D), confirm("rec-1")),
        Code::NotHolder.value()
    );
    // Nor its practitioner, nor the patient.
    let officer = key(31);
    w.c.ok(
        &admin(HOSP_D),
        register_practitioner_for(HOSP_D, &officer, PractitionerRole::PrivacyOfficer, 0),
    );
    assert_eq!(
        w.c.send(&officer, confirm("rec-1")),
        Code::NotHolder.value()
    );
    assert_eq!(
        w.c.send(&alice, confirm("rec-1")),
        Code::NotAuthorized.value()
    );
    let a = w.record("rec-1");
    assert!(a.erasure_confirmations.is_empty());
}

#[test]
fn a_holder_confirms_once() {
    let mut w = World::with_custody(3, 2);
    w.anchor_three("rec-1");
    w.c.ok(&admin(HOSP), erase("rec-1"));
    w.c.ok(&admin(LAB), confirm("rec-1"));
    assert_eq!(
        w.c.send(&admin(LAB), confirm("rec-1")),
        Code::HolderAlreadyConfirmed.value(),
        "a second confirmation would count one share twice"
    );
    assert_eq!(w.record("rec-1").erasure_confirmed_height, 0);

    // The custodian's admin and its practitioner are one holder.
    let physician = key(30);
    w.c.ok(
        &admin(HOSP),
        register_practitioner_for(HOSP, &physician, PractitionerRole::Physician, 0),
    );
    let height = w.c.height;
    w.c.ok(&physician, confirm("rec-1"));
    let a = w.record("rec-1");
    assert_eq!(a.erasure_confirmations, ["lab-b", "hospital-a"]);
    assert_eq!(
        (a.erasure_confirmed_height, a.erasure_confirmed_by.clone()),
        (height, did(&physician))
    );
    assert_eq!(
        w.c.send(&admin(HOSP), confirm("rec-1")),
        Code::HolderAlreadyConfirmed.value()
    );
    assert_eq!(
        w.c.send(&admin(LAB), confirm("rec-1")),
        Code::HolderAlreadyConfirmed.value(),
        "also after the erasure is complete"
    );
    assert_eq!(w.record("rec-1").erasure_confirmations.len(), 2);
}

#[test]
fn another_holder_confirms_only_with_its_admin_key() {
    let mut w = World::with_custody(3, 2);
    w.anchor_three("rec-1");
    w.c.ok(&admin(HOSP), erase("rec-1"));
    let [lab_officer, hosp_nurse] = [key(30), key(31)];
    w.c.ok(
        &admin(LAB),
        register_practitioner_for(LAB, &lab_officer, PractitionerRole::PrivacyOfficer, 0),
    );
    w.c.ok(
        &admin(HOSP),
        register_practitioner_for(HOSP, &hosp_nurse, PractitionerRole::Nurse, 0),
    );
    assert_eq!(
        w.c.send(&lab_officer, confirm("rec-1")),
        Code::NotAuthorized.value(),
        "lab-b holds a share but is not the custodian: its gateway (admin key) confirms"
    );
    assert_eq!(
        w.c.send(&hosp_nurse, confirm("rec-1")),
        Code::RoleNotPermitted.value(),
        "the custodian's practitioners confirm by the one role table"
    );
    assert!(w.record("rec-1").erasure_confirmations.is_empty());
    // A holder's gateway may confirm unordered, like the custodian's.
    let valid_until = w.c.time + 30;
    let tx = w.c.unordered(&admin(LAB), 9, valid_until, confirm("rec-1"));
    let r = w.c.block(vec![tx]);
    assert_eq!(r.tx_results[0].code, 0, "{}", r.tx_results[0].log);
    assert_eq!(w.record("rec-1").erasure_confirmations, ["lab-b"]);
}

#[test]
fn a_single_custodian_record_is_confirmed_as_before_with_custody_on() {
    let mut w = World::with_custody(3, 2);
    let pid = w.pid();
    w.c.ok(&admin(HOSP), anchor_held("rec-1", &pid, &[], 0, vec![]));
    w.c.ok(&admin(HOSP), erase("rec-1"));
    assert_eq!(
        w.c.send(&admin(LAB), confirm("rec-1")),
        Code::NotCustodian.value(),
        "no holders: only the custodian confirms"
    );
    let height = w.c.height;
    let events = w.c.ok(&admin(HOSP), confirm("rec-1"));
    assert!(attrs(&events, "medledger.record.erasure_confirmed", "holder").is_empty());
    let a = w.record("rec-1");
    assert_eq!(
        (a.erasure_confirmed_height, a.erasure_confirmed_by.as_str()),
        (height, "hospital-a")
    );
    assert!(
        a.erasure_confirmations.is_empty(),
        "the list is for holders"
    );
    assert_eq!(
        w.c.send(&admin(HOSP), confirm("rec-1")),
        Code::ErasureAlreadyConfirmed.value()
    );
}

#[test]
fn an_anchor_keeps_its_custody_when_the_consortium_changes_it() {
    let mut w = World::with_custody(3, 2);
    w.anchor_three("rec-1");
    w.pass(set_custody(0, 0));
    w.c.ok(&admin(HOSP), erase("rec-1"));
    w.c.ok(&admin(LAB), confirm("rec-1"));
    assert_eq!(w.record("rec-1").erasure_confirmed_height, 0);
    w.c.ok(&admin(HOSP), confirm("rec-1"));
    let a = w.record("rec-1");
    assert_ne!(a.erasure_confirmed_height, 0, "two of three, as anchored");
    assert_eq!(a.threshold, 2);
}

// ---------------------------------------------------------------- reshare

/// A reshare (docs/rules.md, "Threshold custody"): an AnchorRecord for an id anchored without
/// holders moves it to threshold custody, once, by its custodian's admin, while not erased,
/// keeping patient and type; everything else about an anchored id stays RECORD_EXISTS.
#[test]
fn a_single_custodian_record_moves_to_threshold_custody_once_by_its_custodians_admin() {
    let mut w = World::new(&[HOSP, LAB, INSURER]);
    let pid = w.pid();
    w.c.ok(&admin(HOSP), anchor_held("rec-1", &pid, &[], 0, vec![]));
    w.c.ok(&admin(HOSP), anchor_held("rec-e", &pid, &[], 0, vec![]));
    w.c.ok(&admin(HOSP), erase("rec-e"));
    let before = w.record("rec-1");
    let three = ["hospital-a", "lab-b", "insurer-c"];
    let moved = |id: &str, holders: &[&str], rtype: &str| {
        let Msg::AnchorRecord(mut a) = anchor_held(id, &pid, holders, 2, commitments(2)) else {
            unreachable!("anchor_held builds an AnchorRecord")
        };
        a.resource_type = rtype.into();
        a.content_hash = vec![9; 32];
        a.size = 4096;
        a.key_id = format!("kc1-{}", hex::encode([9u8; 32]));
        Msg::AnchorRecord(a)
    };
    let code = |w: &mut World, k: &ed25519_dalek::SigningKey, m: Msg| {
        let c = w.c.send(k, m);
        w.c.resync();
        c
    };

    // Custody off: no anchor may list holders.
    assert_eq!(
        code(&mut w, &admin(HOSP), moved("rec-1", &three, "Observation")),
        Code::CustodyMismatch.value()
    );
    w.pass(set_custody(3, 2));
    // Another member's admin: not its record.
    assert_eq!(
        code(
            &mut w,
            &admin(LAB),
            moved(
                "rec-1",
                &["lab-b", "hospital-a", "insurer-c"],
                "Observation"
            )
        ),
        Code::NotCustodian.value()
    );
    // The custodian's practitioner: only the admin key reshares.
    let physician = key(31);
    w.c.ok(
        &admin(HOSP),
        register_practitioner_for(HOSP, &physician, PractitionerRole::Physician, 0),
    );
    assert_eq!(
        code(&mut w, &physician, moved("rec-1", &three, "Observation")),
        Code::RoleNotPermitted.value()
    );
    // Never an erased record.
    assert_eq!(
        code(&mut w, &admin(HOSP), moved("rec-e", &three, "Observation")),
        Code::RecordErased.value()
    );
    // Patient and type stay.
    assert_eq!(
        code(&mut w, &admin(HOSP), moved("rec-1", &three, "Condition")),
        Code::RecordExists.value()
    );
    // The custody must be the consortium's.
    assert_eq!(
        code(
            &mut w,
            &admin(HOSP),
            moved("rec-1", &["hospital-a", "lab-b"], "Observation")
        ),
        Code::CustodyMismatch.value()
    );
    // A whole-key anchor over a whole-key record is no reshare.
    assert_eq!(
        code(
            &mut w,
            &admin(HOSP),
            anchor_held("rec-1", &pid, &[], 0, vec![])
        ),
        Code::RecordExists.value()
    );
    assert_eq!(w.record("rec-1"), before, "refusals change nothing");

    let events = w.c.ok(&admin(HOSP), moved("rec-1", &three, "Observation"));
    assert_eq!(attrs(&events, "medledger.record.anchored", "holder"), three);
    assert_eq!(
        attrs(&events, "medledger.record.anchored", "reshared"),
        ["true"]
    );
    let after = w.record("rec-1");
    assert_eq!(after.holders, three);
    assert_eq!(after.threshold, 2);
    assert_eq!(after.share_commitments, commitments(2));
    assert_eq!(after.content_hash, vec![9; 32]);
    assert_eq!(after.size, 4096);
    assert_eq!(after.anchored_height, before.anchored_height);
    assert_eq!(after.anchored_by, before.anchored_by);
    assert_eq!(after.custodian, "hospital-a");

    // Once: a threshold record is never reshared again.
    assert_eq!(
        code(&mut w, &admin(HOSP), moved("rec-1", &three, "Observation")),
        Code::RecordExists.value()
    );
    assert_eq!(w.record("rec-1"), after);
}

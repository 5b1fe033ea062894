//! Record erasure is requested, then confirmed by the custodian that destroyed the key
//! (ConfirmErasure); one role table decides which practitioners anchor, erase and confirm; and
//! every patient's anchored records are listed in order (`patient-records/{patient}/…`).

#![allow(clippy::unwrap_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use medledger_state::view::StateRead;
use medledger_state::Event;
use medledger_tx::keys::List;
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, RecordAnchor};
use medledger_tx::{keys, Code};
use sha2::{Digest, Sha256};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;

fn anchor(record: &str, patient: &str) -> Msg {
    anchor_as(record, patient, "Observation")
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

/// The value of attribute `name` of the event of `kind`.
fn attr<'e>(events: &'e [Event], kind: &str, name: &str) -> &'e str {
    let e = events
        .iter()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} event in {events:?}"));
    e.attributes
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{kind} has no attribute {name}"))
}

/// A chain with patient alice and one hospital-a practitioner of each role.
struct World {
    c: Chain,
    alice: SigningKey,
    physician: SigningKey,
    nurse: SigningKey,
    officer: SigningKey,
    researcher: SigningKey,
    adjuster: SigningKey,
    tech: SigningKey,
}

impl World {
    fn new() -> World {
        let mut c = Chain::new();
        let alice = key(1);
        c.enrol(&alice);
        let [physician, nurse, officer, researcher, adjuster, tech] =
            [30, 31, 32, 33, 34, 35].map(key);
        for (k, role) in [
            (&physician, PractitionerRole::Physician),
            (&nurse, PractitionerRole::Nurse),
            (&officer, PractitionerRole::PrivacyOfficer),
            (&researcher, PractitionerRole::Researcher),
            (&adjuster, PractitionerRole::ClaimsAdjuster),
            (&tech, PractitionerRole::LabTechnician),
        ] {
            c.ok(&admin(HOSP), register_practitioner_for(HOSP, k, role, 0));
        }
        World {
            c,
            alice,
            physician,
            nurse,
            officer,
            researcher,
            adjuster,
            tech,
        }
    }

    fn pid(&self) -> String {
        patient_id(&self.alice)
    }

    fn record(&self, id: &str) -> RecordAnchor {
        self.c.get(&keys::record(id)).unwrap()
    }
}

#[test]
fn the_custodian_confirms_an_erasure_once_and_only_after_it_was_requested() {
    let mut w = World::new();
    let pid = w.pid();
    w.c.ok(&admin(HOSP), anchor("rec-1", &pid));
    assert_eq!(
        w.c.send(&admin(HOSP), confirm("nope")),
        Code::UnknownRecord.value()
    );
    assert_eq!(
        w.c.send(&admin(HOSP), confirm("rec-1")),
        Code::ErasureNotRequested.value(),
        "a record that is not erased has no erasure to confirm"
    );

    // The patient's own erasure: requested, naming the custodian so its gateway finds it.
    let erased = w.c.ok(&w.alice.clone(), erase("rec-1"));
    assert_eq!(
        attr(&erased, "medledger.record.erased", "custodian"),
        "hospital-a"
    );
    let a = w.record("rec-1");
    assert_ne!(a.erased_height, 0);
    assert_eq!(a.erasure_confirmed_height, 0, "requested, not yet complete");

    // Only the custodian confirms: not another member, not the patient.
    assert_eq!(
        w.c.send(&admin(LAB), confirm("rec-1")),
        Code::NotCustodian.value()
    );
    assert_eq!(
        w.c.send(&w.alice.clone(), confirm("rec-1")),
        Code::NotAuthorized.value()
    );

    let height = w.c.height;
    let events = w.c.ok(&admin(HOSP), confirm("rec-1"));
    let kind = "medledger.record.erasure_confirmed";
    assert_eq!(attr(&events, kind, "record_id"), "rec-1");
    assert_eq!(attr(&events, kind, "patient_id"), pid);
    assert_eq!(attr(&events, kind, "custodian"), "hospital-a");
    let a = w.record("rec-1");
    assert_eq!(
        (a.erasure_confirmed_height, a.erasure_confirmed_by.as_str()),
        (height, "hospital-a")
    );
    assert_eq!(a.content_hash, vec![1; 32], "the anchor stays as evidence");

    assert_eq!(
        w.c.send(&admin(HOSP), confirm("rec-1")),
        Code::ErasureAlreadyConfirmed.value()
    );
    assert_eq!(w.record("rec-1").erasure_confirmed_height, height);
}

#[test]
fn a_gateway_may_confirm_unordered() {
    let mut w = World::new();
    let pid = w.pid();
    w.c.ok(&admin(HOSP), anchor("rec-1", &pid));
    w.c.ok(&w.alice.clone(), erase("rec-1"));
    let valid_until = w.c.time + 30;
    let tx =
        w.c.unordered(&admin(HOSP), 7, valid_until, confirm("rec-1"));
    let r = w.c.block(vec![tx]);
    assert_eq!(r.tx_results[0].code, 0, "{}", r.tx_results[0].log);
    assert_ne!(w.record("rec-1").erasure_confirmed_height, 0);
}

#[test]
fn a_practitioner_confirms_only_if_their_role_may_erase() {
    let mut w = World::new();
    let pid = w.pid();
    w.c.ok(&admin(HOSP), anchor("rec-1", &pid));
    w.c.ok(&w.alice.clone(), erase("rec-1"));
    for k in [&w.nurse, &w.researcher, &w.adjuster, &w.tech] {
        let k = k.clone();
        assert_eq!(
            w.c.send(&k, confirm("rec-1")),
            Code::RoleNotPermitted.value()
        );
    }
    w.c.ok(&w.officer.clone(), confirm("rec-1"));
    assert_eq!(w.record("rec-1").erasure_confirmed_by, did(&w.officer));
}

#[test]
fn researchers_and_claims_adjusters_neither_anchor_nor_erase() {
    let mut w = World::new();
    let pid = w.pid();
    for k in [w.researcher.clone(), w.adjuster.clone()] {
        assert_eq!(
            w.c.send(&k, anchor("rec-r", &pid)),
            Code::RoleNotPermitted.value()
        );
    }
    assert!(w.c.get::<RecordAnchor>(&keys::record("rec-r")).is_none());

    // Clinical roles anchor.
    w.c.ok(&w.physician.clone(), anchor("rec-1", &pid));
    w.c.ok(&w.nurse.clone(), anchor("rec-2", &pid));
    w.c.ok(&w.tech.clone(), anchor("rec-3", &pid));

    for k in [
        w.researcher.clone(),
        w.adjuster.clone(),
        w.nurse.clone(),
        w.tech.clone(),
    ] {
        assert_eq!(w.c.send(&k, erase("rec-1")), Code::RoleNotPermitted.value());
    }
    assert_eq!(w.record("rec-1").erased_height, 0);
    w.c.ok(&w.physician.clone(), erase("rec-1"));
    w.c.ok(&w.officer.clone(), erase("rec-2"));
    assert_eq!(w.record("rec-2").erased_by, did(&w.officer));
}

#[test]
fn the_patient_record_list_holds_every_anchored_record_in_order() {
    let mut w = World::new();
    let pid = w.pid();
    let bob = key(2);
    w.c.enrol(&bob);
    let bob_id = patient_id(&bob);
    w.c.ok(&admin(HOSP), anchor("rec-b", &pid));
    w.c.ok(&admin(HOSP), anchor("bob-1", &bob_id));
    w.c.ok(&w.physician.clone(), anchor("rec-a", &pid));
    // A refused anchor (the id is taken) lists nothing.
    assert_eq!(
        w.c.send(&admin(HOSP), anchor("rec-a", &pid)),
        Code::RecordExists.value()
    );
    // An erased record stays listed: the list is of anchors, which stay as evidence.
    w.c.ok(&w.alice.clone(), erase("rec-b"));
    w.c.ok(&admin(LAB), anchor("rec-c", &pid));

    let store = w.c.ledger().store();
    let list = List::PatientRecords(&pid);
    assert_eq!(store.get_u64(&keys::patient_record_count(&pid)).unwrap(), 3);
    let ids: Vec<String> = (0..3)
        .map(|n| String::from_utf8(store.get(&list.entry_key(n)).unwrap().unwrap()).unwrap())
        .collect();
    assert_eq!(ids, ["rec-b", "rec-a", "rec-c"]);
    assert!(store.get(&list.entry_key(3)).unwrap().is_none());
    assert_eq!(
        list.entry_key(1),
        format!("patient-records/{pid}/00000000000000000001").into_bytes()
    );
    let bobs = List::PatientRecords(&bob_id);
    assert_eq!(store.get_u64(&bobs.count_key()).unwrap(), 1);
    assert_eq!(
        store.get(&bobs.entry_key(0)).unwrap().as_deref(),
        Some(&b"bob-1"[..])
    );
}

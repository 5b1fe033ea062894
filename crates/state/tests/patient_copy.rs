//! The patient's own copy on chain (issue 25 point 6): RegisterPatientBoxKey (the patient's own
//! key registers the X25519 key holders seal shares to, under `patient-box-key/{patient}`) and
//! the patient's own read, a LogAccess with purpose PATRQT that needs no consent. Each rule is
//! tried by the one who must not pass it, with the code it answers.

#![allow(clippy::unwrap_used)]

use medledger_tx::pb::{self, tx_body::Msg, AccessEvent, PatientBoxKey, PractitionerRole, Purpose};
use medledger_tx::{keys, Code};

use crate::common::*;

const HOSP: usize = 0;

/// The RFC 7748 section 6.1 public keys of Alice and Bob: honest X25519 keys.
fn x25519(n: u8) -> Vec<u8> {
    let h = match n {
        0 => "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        _ => "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
    };
    hex::decode(h).unwrap()
}

fn box_key(patient: &str, key: Vec<u8>) -> Msg {
    Msg::RegisterPatientBoxKey(pb::RegisterPatientBoxKey {
        patient_id: patient.into(),
        box_key: key,
    })
}

/// The patient's own read of Observation `record`.
fn own_read(patient: &str, record: &str) -> Msg {
    Msg::LogAccess(pb::LogAccess {
        patient_id: patient.into(),
        record_id: record.into(),
        data_class: "Observation".into(),
        purpose: Purpose::Patrqt as i32,
        action: 0,
    })
}

/// A chain with patients alice (key 1) and bob (key 2) enrolled, and Observation `obs-a` of
/// alice anchored by hospital-a.
fn chain() -> (Chain, ed25519_dalek::SigningKey, ed25519_dalek::SigningKey) {
    let mut c = Chain::new();
    let (alice, bob) = (key(1), key(2));
    c.enrol(&alice);
    c.enrol(&bob);
    c.ok(
        &admin(HOSP),
        anchor_as("obs-a", &patient_id(&alice), "Observation"),
    );
    (c, alice, bob)
}

#[test]
fn a_patient_registers_and_replaces_their_box_key() {
    let (mut c, alice, _) = chain();
    let pid = patient_id(&alice);
    let events = c.ok(&alice, box_key(&pid, x25519(0)));
    assert!(events
        .iter()
        .any(|e| e.kind == "medledger.patient.box_key_set"));
    let k: PatientBoxKey = c.get(&keys::patient_box_key(&pid)).unwrap();
    assert_eq!(k.patient_id, pid);
    assert_eq!(k.box_key, x25519(0));
    assert_eq!(k.set_height, c.height - 1);
    c.ok(&alice, box_key(&pid, x25519(1)));
    let k: PatientBoxKey = c.get(&keys::patient_box_key(&pid)).unwrap();
    assert_eq!(k.box_key, x25519(1), "re-registering replaces the key");
}

#[test]
fn only_the_patients_own_key_registers_their_box_key() {
    let (mut c, alice, bob) = chain();
    let pid = patient_id(&alice);
    // Another patient's key, for alice.
    assert_eq!(
        c.send(&bob, box_key(&pid, x25519(0))),
        Code::NotOwnPatientId.value()
    );
    // A guardian of alice (a patient too) may recover alice's key, not register her box key.
    let guardian = key(3);
    c.enrol(&guardian);
    c.ok(
        &alice,
        Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: vec![pk(&guardian).to_vec()],
            threshold: 1,
        }),
    );
    assert_eq!(
        c.send(&guardian, box_key(&pid, x25519(0))),
        Code::NotOwnPatientId.value()
    );
    // A member's admin and a practitioner.
    assert_eq!(
        c.send(&admin(HOSP), box_key(&pid, x25519(0))),
        Code::PatientOnly.value()
    );
    let doc = key(40);
    c.ok(
        &admin(HOSP),
        register_practitioner_for(HOSP, &doc, PractitionerRole::Physician, 0),
    );
    assert_eq!(
        c.send(&doc, box_key(&pid, x25519(0))),
        Code::PatientOnly.value()
    );
    // A key the ledger does not know.
    assert_eq!(
        c.send(&key(99), box_key(&pid, x25519(0))),
        Code::UnknownSigner.value()
    );
    assert!(c
        .get::<PatientBoxKey>(&keys::patient_box_key(&pid))
        .is_none());
}

#[test]
fn a_box_key_that_is_no_usable_x25519_key_is_refused() {
    let (mut c, alice, _) = chain();
    let pid = patient_id(&alice);
    let mut one = vec![0u8; 32];
    one[0] = 1;
    let mut top_bit = x25519(0);
    top_bit[31] |= 0x80;
    let mut p = vec![0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    for bad in [
        Vec::new(),
        vec![7; 31],
        vec![7; 33],
        vec![0; 32],
        one,
        top_bit,
        p,
    ] {
        assert_eq!(
            c.send(&alice, box_key(&pid, bad.clone())),
            Code::BadPatientBoxKey.value(),
            "{}",
            hex::encode(&bad)
        );
    }
    assert!(c
        .get::<PatientBoxKey>(&keys::patient_box_key(&pid))
        .is_none());
}

#[test]
fn a_patients_own_read_is_logged_without_consent_as_the_patients_own_access() {
    let (mut c, alice, _) = chain();
    let pid = patient_id(&alice);
    // No box key yet: nothing to seal the shares to.
    assert_eq!(
        c.send(&alice, own_read(&pid, "obs-a")),
        Code::NoPatientBoxKey.value()
    );
    c.ok(&alice, box_key(&pid, x25519(0)));
    let events = c.ok(&alice, own_read(&pid, "obs-a"));
    let logged = events
        .iter()
        .find(|e| e.kind == "medledger.access.logged")
        .unwrap();
    let index: u64 = logged
        .attributes
        .iter()
        .find(|(k, _)| *k == "index")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let e: AccessEvent = c.get(&keys::access_event(&pid, index)).unwrap();
    assert_eq!(e.actor, pid, "the patient is the actor");
    assert_eq!(e.purpose, Purpose::Patrqt as i32);
    assert_eq!(e.consent_id, "", "no consent was asked");
    assert_eq!(e.practitioner, "");
    assert_eq!(e.record_id, "obs-a");
    assert!(!e.break_glass);
}

#[test]
fn a_patient_reads_as_patient_requested_their_own_records_only() {
    let (mut c, alice, bob) = chain();
    let (pa, pb_) = (patient_id(&alice), patient_id(&bob));
    c.ok(&alice, box_key(&pa, x25519(0)));
    c.ok(&bob, box_key(&pb_, x25519(1)));
    // Bob's key reading alice's record, as alice or as himself.
    assert_eq!(
        c.send(&bob, own_read(&pa, "obs-a")),
        Code::NotOwnPatientId.value()
    );
    assert_ne!(c.send(&bob, own_read(&pb_, "obs-a")), 0, "not bob's record");
    // A patient logs no other purpose, and no write.
    let mut treat = own_read(&pa, "obs-a");
    if let Msg::LogAccess(la) = &mut treat {
        la.purpose = Purpose::Treat as i32;
    }
    assert_eq!(c.send(&alice, treat), Code::PatientPurposeOnly.value());
    let mut write = own_read(&pa, "obs-a");
    if let Msg::LogAccess(la) = &mut write {
        la.action = pb::Action::Write as i32;
    }
    assert_eq!(c.send(&alice, write), Code::PatientPurposeOnly.value());
    // A member's admin or practitioner may not read as "patient requested".
    assert_eq!(
        c.send(&admin(HOSP), own_read(&pa, "obs-a")),
        Code::PatientOnly.value()
    );
    let doc = key(41);
    c.ok(
        &admin(HOSP),
        register_practitioner_for(HOSP, &doc, PractitionerRole::Physician, 0),
    );
    assert_eq!(
        c.send(&doc, own_read(&pa, "obs-a")),
        Code::PatientOnly.value()
    );
    // The patient's access list holds nothing but what passed.
    assert_eq!(
        c.get::<AccessEvent>(&keys::access_event(&pa, 0)),
        None,
        "no access was recorded"
    );
}

#[test]
fn a_consent_may_not_grant_patient_requested() {
    let (mut c, alice, _) = chain();
    let code = c.send(
        &alice,
        Msg::GrantConsent(pb::GrantConsent {
            grantee: "hospital-a".into(),
            data_classes: vec!["Observation".into()],
            purposes: vec![Purpose::Patrqt as i32],
            ..Default::default()
        }),
    );
    assert_eq!(code, Code::InvalidField.value());
}

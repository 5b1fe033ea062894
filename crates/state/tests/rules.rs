//! The consortium's rules, allowed and denied: practitioners, consent shapes, break-glass,
//! record anchors and erasure, patients' guardians, rotation and recovery.

#![allow(clippy::unwrap_used)]

use medledger_tx::pb::{
    self, tx_body::Msg, AccessEvent, Action, Practitioner, PractitionerRole, PractitionerStatus,
    Purpose, RecordAnchor, ReviewStatus,
};
use medledger_tx::{keys, recovery, Code};
use sha2::{Digest, Sha256};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;

/// hospital-a registers the practitioner holding `k` (send it signed by `admin(HOSP)`).
fn register_practitioner(
    k: &ed25519_dalek::SigningKey,
    role: PractitionerRole,
    valid_until: u64,
) -> Msg {
    register_practitioner_for(HOSP, k, role, valid_until)
}

fn status(did: &str, s: PractitionerStatus) -> Msg {
    Msg::SetPractitionerStatus(pb::SetPractitionerStatus {
        did: did.into(),
        status: s as i32,
        reason_hash: Sha256::digest(b"audit").to_vec(),
    })
}

fn grant(grantee: &str, classes: &[&str]) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: classes.iter().map(|c| c.to_string()).collect(),
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

fn break_glass(patient: &str, record: &str) -> Msg {
    break_glass_as(patient, record, "Observation")
}

fn anchor(record: &str, patient: &str) -> Msg {
    anchor_as(record, patient, "Observation")
}

fn erase(record: &str) -> Msg {
    Msg::EraseRecord(pb::EraseRecord {
        record_id: record.into(),
        reason_hash: Sha256::digest(b"patient request").to_vec(),
    })
}

/// A chain with patient alice, hospital-a's physician `doc`, nurse, privacy officer, lab-b's
/// technician and officer.
struct World {
    c: Chain,
    alice: ed25519_dalek::SigningKey,
    doc: ed25519_dalek::SigningKey,
    nurse: ed25519_dalek::SigningKey,
    officer: ed25519_dalek::SigningKey,
    tech: ed25519_dalek::SigningKey,
    lab_officer: ed25519_dalek::SigningKey,
}

impl World {
    fn new() -> World {
        let mut c = Chain::new();
        let (alice, doc, nurse, officer, tech, lab_officer) =
            (key(1), key(20), key(21), key(22), key(23), key(24));
        c.enrol(&alice);
        c.ok(
            &admin(HOSP),
            register_practitioner(&doc, PractitionerRole::Physician, 0),
        );
        c.ok(
            &admin(HOSP),
            register_practitioner(&nurse, PractitionerRole::Nurse, 0),
        );
        c.ok(
            &admin(HOSP),
            register_practitioner(&officer, PractitionerRole::PrivacyOfficer, 0),
        );
        c.ok(
            &admin(LAB),
            register_practitioner_for(LAB, &tech, PractitionerRole::LabTechnician, 0),
        );
        c.ok(
            &admin(LAB),
            register_practitioner_for(LAB, &lab_officer, PractitionerRole::PrivacyOfficer, 0),
        );
        World {
            c,
            alice,
            doc,
            nurse,
            officer,
            tech,
            lab_officer,
        }
    }

    fn pid(&self) -> String {
        patient_id(&self.alice)
    }
}

#[test]
fn practitioner_gets_a_did_and_only_their_member_changes_their_status() {
    let mut w = World::new();
    let did = did(&w.doc);
    let p: Practitioner = w.c.get(&keys::practitioner(&did)).unwrap();
    assert_eq!(
        (p.member_id.as_str(), p.status),
        ("hospital-a", PractitionerStatus::Active as i32)
    );
    assert!(did.starts_with("did:medledger:"));
    assert_eq!(
        w.c.send(&admin(LAB), status(&did, PractitionerStatus::Suspended)),
        Code::NotPractitionersMember.value()
    );
    assert_eq!(
        w.c.send(
            &w.alice.clone(),
            status(&did, PractitionerStatus::Suspended)
        ),
        Code::NotAuthorized.value()
    );
    assert_eq!(
        w.c.send(
            &admin(HOSP),
            register_practitioner(&w.doc.clone(), PractitionerRole::Nurse, 0)
        ),
        Code::PractitionerExists.value()
    );
    assert_eq!(
        w.c.send(
            &admin(HOSP),
            register_practitioner(&w.alice.clone(), PractitionerRole::Nurse, 0)
        ),
        Code::PractitionerExists.value()
    );
    w.c.ok(&admin(HOSP), status(&did, PractitionerStatus::Revoked));
    assert_eq!(
        w.c.send(&admin(HOSP), status(&did, PractitionerStatus::Active)),
        Code::PractitionerInactive.value(),
        "revocation is final"
    );
}

#[test]
fn member_grant_covers_its_active_practitioners_only() {
    let mut w = World::new();
    let pid = w.pid();
    w.c.ok(&w.alice.clone(), grant("hospital-a", &["Observation"]));
    let events = w.c.ok(&w.doc.clone(), read(&pid, "obs-1", "Observation"));
    let logged = events
        .iter()
        .find(|e| e.kind == "medledger.access.logged")
        .unwrap();
    assert!(logged
        .attributes
        .iter()
        .any(|(k, v)| *k == "practitioner" && *v == did(&w.doc)));
    assert_eq!(
        w.c.send(&w.tech.clone(), read(&pid, "obs-1", "Observation")),
        Code::NoPermittingConsent.value(),
        "lab-b has no consent"
    );
    w.c.ok(
        &admin(HOSP),
        status(&did(&w.doc), PractitionerStatus::Suspended),
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), read(&pid, "obs-2", "Observation")),
        Code::PractitionerInactive.value()
    );
    w.c.ok(
        &admin(HOSP),
        status(&did(&w.doc), PractitionerStatus::Active),
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), read(&pid, "obs-3", "Observation")),
        0,
        "reinstated"
    );
}

#[test]
fn practitioner_past_valid_until_cannot_act() {
    let mut w = World::new();
    let short = key(30);
    let until = w.c.time + 7;
    w.c.ok(
        &admin(HOSP),
        register_practitioner(&short, PractitionerRole::Physician, until),
    );
    w.c.ok(&w.alice.clone(), grant("hospital-a", &["*"]));
    assert_eq!(
        w.c.send(&short, read(&w.pid(), "r", "Observation")),
        Code::PractitionerInactive.value()
    );
}

#[test]
fn practitioner_grant_deny_exceptions_and_record_ids() {
    let mut w = World::new();
    let pid = w.pid();
    let doc_did = did(&w.doc);
    let nurse = w.nurse.clone();
    w.c.ok(
        &w.alice.clone(),
        Msg::GrantConsent(pb::GrantConsent {
            grantee: doc_did.clone(),
            data_classes: vec!["*".into()],
            deny_classes: vec!["MedicationStatement".into()],
            record_ids: vec!["med-7".into()],
            purposes: vec![Purpose::Treat as i32],
            ..Default::default()
        }),
    );
    assert_eq!(w.c.send(&w.doc.clone(), read(&pid, "c-1", "Condition")), 0);
    assert_eq!(
        w.c.send(&w.doc.clone(), read(&pid, "med-1", "MedicationStatement")),
        Code::NoPermittingConsent.value()
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), read(&pid, "med-7", "MedicationStatement")),
        0,
        "a listed record is covered"
    );
    assert_eq!(
        w.c.send(&nurse, read(&pid, "c-1", "Condition")),
        Code::NoPermittingConsent.value(),
        "grant names the physician only"
    );
    assert_eq!(
        w.c.send(&admin(HOSP), read(&pid, "c-1", "Condition")),
        Code::NoPermittingConsent.value()
    );
    let write = Msg::LogAccess(pb::LogAccess {
        patient_id: pid.clone(),
        record_id: "c-1".into(),
        data_class: "Condition".into(),
        purpose: Purpose::Treat as i32,
        action: Action::Write as i32,
    });
    assert_eq!(
        w.c.send(&w.doc.clone(), write),
        Code::NoPermittingConsent.value(),
        "no WRITE in the grant"
    );
    assert_eq!(
        w.c.send(
            &w.alice.clone(),
            grant("did:medledger:00000000000000000000000000000000", &["*"])
        ),
        Code::UnknownPractitioner.value()
    );
}

#[test]
fn break_glass_is_for_physicians_and_nurses_and_opens_a_review() {
    let mut w = World::new();
    let pid = w.pid();
    assert_eq!(
        w.c.send(&w.tech.clone(), break_glass(&pid, "r-1")),
        Code::RoleNotPermitted.value()
    );
    assert_eq!(
        w.c.send(&admin(HOSP), break_glass(&pid, "r-1")),
        Code::NotAuthorized.value()
    );
    let events = w.c.ok(&w.nurse.clone(), break_glass(&pid, "r-1"));
    assert!(events
        .iter()
        .any(|e| e.kind == "medledger.access.break_glass"));
    let event: AccessEvent = w.c.get(&keys::access_event(&pid, 0)).unwrap();
    assert!(event.break_glass);
    assert_eq!(
        (event.purpose, event.review),
        (Purpose::Etreat as i32, ReviewStatus::Pending as i32)
    );
    assert_eq!(
        w.c.ledger()
            .store()
            .get(&keys::review("hospital-a", 0))
            .unwrap(),
        Some(format!("{pid}/0").into_bytes())
    );

    // A privacy officer of another member closes it, once; the member that broke the glass
    // never clears itself.
    assert_eq!(
        w.c.send(&w.doc.clone(), review(&pid, 0, true)),
        Code::RoleNotPermitted.value()
    );
    assert_eq!(
        w.c.send(&w.officer.clone(), review(&pid, 0, true)),
        Code::SelfReview.value()
    );
    assert_eq!(
        w.c.send(&w.lab_officer.clone(), review(&pid, 9, true)),
        Code::UnknownAccessEvent.value()
    );
    w.c.ok(&w.lab_officer.clone(), review(&pid, 0, false));
    let event: AccessEvent = w.c.get(&keys::access_event(&pid, 0)).unwrap();
    assert_eq!(
        (event.review, event.reviewer.as_str()),
        (
            ReviewStatus::Unjustified as i32,
            did(&w.lab_officer).as_str()
        )
    );
    assert_eq!(
        w.c.send(&w.lab_officer.clone(), review(&pid, 0, true)),
        Code::AlreadyReviewed.value()
    );

    // A consented access is not a review item.
    w.c.ok(&w.alice.clone(), grant("hospital-a", &["*"]));
    w.c.ok(&w.doc.clone(), read(&pid, "r-2", "Observation"));
    assert_eq!(
        w.c.send(&w.lab_officer.clone(), review(&pid, 1, true)),
        Code::NotBreakGlass.value()
    );
}

#[test]
fn erased_record_can_no_longer_be_read_even_in_an_emergency() {
    let mut w = World::new();
    let pid = w.pid();
    let bob = key(2);
    w.c.enrol(&bob);
    w.c.ok(&w.alice.clone(), grant("hospital-a", &["*"]));
    w.c.ok(&w.doc.clone(), anchor("rec-1", &pid));
    assert_eq!(
        w.c.send(&admin(HOSP), anchor("rec-1", &pid)),
        Code::RecordExists.value()
    );
    assert_eq!(
        w.c.send(&w.alice.clone(), anchor("rec-2", &pid)),
        Code::NotAuthorized.value()
    );
    let a: RecordAnchor = w.c.get(&keys::record("rec-1")).unwrap();
    assert_eq!(
        (a.custodian.as_str(), a.anchored_by.as_str()),
        ("hospital-a", did(&w.doc).as_str())
    );

    assert_eq!(
        w.c.send(
            &w.doc.clone(),
            read(&patient_id(&bob), "rec-1", "Observation")
        ),
        Code::RecordOfAnotherPatient.value()
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), read(&pid, "rec-1", "Observation")),
        0
    );
    assert_eq!(
        w.c.send(&admin(LAB), erase("rec-1")),
        Code::NotCustodian.value()
    );
    assert_eq!(w.c.send(&bob, erase("rec-1")), Code::NotCustodian.value());
    assert_eq!(
        w.c.send(&w.alice.clone(), erase("nope")),
        Code::UnknownRecord.value()
    );
    w.c.ok(&w.alice.clone(), erase("rec-1"));
    let a: RecordAnchor = w.c.get(&keys::record("rec-1")).unwrap();
    assert_eq!(a.content_hash, vec![1; 32], "the anchor stays as evidence");
    assert_eq!(
        w.c.send(&w.doc.clone(), read(&pid, "rec-1", "Observation")),
        Code::RecordErased.value()
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), break_glass(&pid, "rec-1")),
        Code::RecordErased.value()
    );
    assert_eq!(
        w.c.send(&admin(HOSP), erase("rec-1")),
        Code::RecordErased.value()
    );
}

#[test]
fn rotated_key_leaves_the_old_key_powerless() {
    let mut c = Chain::new();
    let (alice, new) = (key(1), key(3));
    c.enrol(&alice);
    c.ok(&alice, rotate(&patient_id(&alice), &new));
    assert_eq!(
        c.send(&alice, grant("hospital-a", &["*"])),
        Code::KeyRetired.value()
    );
    c.ok(&new, grant("hospital-a", &["*"]));
    let p: pb::Patient = c.get(&keys::patient(&patient_id(&alice))).unwrap();
    assert_eq!(
        p.key,
        pk(&new).to_vec(),
        "the patient id stays; the key moves"
    );
    assert_eq!(
        c.send(
            &new,
            Msg::RotatePatientKey(pb::RotatePatientKey {
                new_key: pk(&admin(0)).to_vec(),
                new_key_proof: vec![0; 64],
            })
        ),
        Code::KeyInUse.value()
    );
}

#[test]
fn guardians_recover_a_lost_key_with_threshold_approvals() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    let guardians = [key(40), key(41), key(42)];
    c.enrol(&alice);
    // Approvals bound to the patient's key `current` and the 2-of-3 guardian set.
    let approvals_for = |new: &ed25519_dalek::SigningKey,
                         who: &[usize],
                         recoveries: u64,
                         current: &ed25519_dalek::SigningKey| {
        let at = recovery::RecoveryState {
            recoveries,
            current_key: pk(current),
            guardian_set_hash: recovery::guardian_set_hash(
                &guardians.iter().map(|g| pk(g).to_vec()).collect::<Vec<_>>(),
                2,
            ),
        };
        who.iter()
            .map(|&i| pb::GuardianApproval {
                guardian_key: pk(&guardians[i]).to_vec(),
                signature: recovery::approve(&guardians[i], CHAIN, &pid, &pk(new), &at).to_vec(),
            })
            .collect::<Vec<_>>()
    };
    let recover_signed_by = |c: &mut Chain,
                             signer: &ed25519_dalek::SigningKey,
                             new: &ed25519_dalek::SigningKey,
                             approvals: Vec<pb::GuardianApproval>| {
        let code = c.send(
            signer,
            Msg::RecoverPatientKey(pb::RecoverPatientKey {
                patient_id: pid.clone(),
                new_key: pk(new).to_vec(),
                approvals,
            }),
        );
        // A refused tx of a key the ledger does not know consumes no sequence.
        c.resync();
        code
    };
    let recover_with =
        |c: &mut Chain, new: &ed25519_dalek::SigningKey, who: &[usize], recoveries: u64| {
            let current = if recoveries == 0 { key(1) } else { key(53) };
            let approvals = approvals_for(new, who, recoveries, &current);
            recover_signed_by(c, new, new, approvals)
        };
    assert_eq!(
        recover_with(&mut c, &key(50), &[0, 1], 0),
        Code::NoGuardians.value()
    );
    let set = Msg::SetGuardians(pb::SetGuardians {
        guardian_keys: guardians.iter().map(|g| pk(g).to_vec()).collect(),
        threshold: 2,
    });
    c.ok(&alice, set);
    assert_eq!(
        recover_with(&mut c, &key(51), &[0], 0),
        Code::NotEnoughGuardians.value()
    );
    assert_eq!(
        recover_with(&mut c, &key(52), &[0, 0], 0),
        Code::NotEnoughGuardians.value(),
        "one guardian counts once"
    );
    // The signer must be the new key: a thief holding approvals cannot point them elsewhere
    // while signing with another key.
    let approvals = approvals_for(&key(53), &[0, 2], 0, &alice);
    assert_eq!(
        recover_signed_by(&mut c, &key(60), &key(53), approvals),
        Code::RecoverySignerMismatch.value()
    );
    assert_eq!(recover_with(&mut c, &key(53), &[0, 2], 0), 0);
    assert_eq!(
        c.send(&alice, grant("hospital-a", &["*"])),
        Code::KeyRetired.value(),
        "the lost key signs nothing"
    );
    c.ok(&key(53), grant("hospital-a", &["*"]));
    // Approvals were for recovery number 0: they do not work again.
    assert_eq!(
        recover_with(&mut c, &key(54), &[0, 2], 0),
        Code::NotEnoughGuardians.value()
    );
    assert_eq!(recover_with(&mut c, &key(54), &[1, 2], 1), 0);
}

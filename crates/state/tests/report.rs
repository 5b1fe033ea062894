//! "Report this access" (issue 27 point 6): a patient disputes an access in their history
//! (ReportAccess) and a privacy officer of another member than the one that accessed closes the
//! report (ReviewReport). Each rule is tried by the one who must not pass it, with the code it
//! answers.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use medledger_tx::digest::ListDigest;
use medledger_tx::keys::List;
use medledger_tx::limits::{MAX_REPORTS_PER_BLOCK, MAX_REPORTS_PER_PATIENT_PER_BLOCK};
use medledger_tx::pb::{
    self, tx_body::Msg, AccessEvent, PractitionerRole, Purpose, ReportReason, ReviewStatus,
};
use medledger_tx::{keys, Code};
use sha2::{Digest, Sha256};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;

fn report(patient: &str, index: u64, reason: ReportReason) -> Msg {
    Msg::ReportAccess(pb::ReportAccess {
        patient_id: patient.into(),
        event_index: index,
        reason: reason as i32,
    })
}

fn review_report(patient: &str, index: u64, upheld: bool) -> Msg {
    Msg::ReviewReport(pb::ReviewReport {
        patient_id: patient.into(),
        event_index: index,
        upheld,
        note_hash: Sha256::digest(b"no treatment relationship that day").to_vec(),
    })
}

fn grant_treatment(member: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: member.into(),
        data_classes: vec!["*".into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

/// Patient alice who consented to hospital-a's treatment; hospital-a's physician `doc` and
/// privacy officer, lab-b's privacy officer; events 0 (doc's read) and 1 (hospital-a's
/// system's read) in alice's history.
struct World {
    c: Chain,
    alice: SigningKey,
    doc: SigningKey,
    hosp_officer: SigningKey,
    lab_officer: SigningKey,
}

impl World {
    fn new() -> World {
        let mut c = Chain::new();
        let (alice, doc, hosp_officer, lab_officer) = (key(1), key(20), key(22), key(24));
        c.enrol(&alice);
        c.ok(
            &admin(HOSP),
            register_practitioner_for(HOSP, &doc, PractitionerRole::Physician, 0),
        );
        c.ok(
            &admin(HOSP),
            register_practitioner_for(HOSP, &hosp_officer, PractitionerRole::PrivacyOfficer, 0),
        );
        c.ok(
            &admin(LAB),
            register_practitioner_for(LAB, &lab_officer, PractitionerRole::PrivacyOfficer, 0),
        );
        let pid = patient_id(&alice);
        c.ok(&alice, grant_treatment("hospital-a"));
        c.ok(&doc, read(&pid, "obs-1", "Observation"));
        c.ok(&admin(HOSP), read(&pid, "obs-2", "Observation"));
        World {
            c,
            alice,
            doc,
            hosp_officer,
            lab_officer,
        }
    }

    fn pid(&self) -> String {
        patient_id(&self.alice)
    }

    fn event(&self, index: u64) -> AccessEvent {
        self.c.get(&keys::access_event(&self.pid(), index)).unwrap()
    }
}

#[test]
fn a_patient_reports_an_access_and_an_officer_of_another_member_upholds_it() {
    let mut w = World::new();
    let pid = w.pid();
    let digest_before =
        w.c.ledger()
            .store()
            .get(&List::Access(&pid).digest_key().unwrap())
            .unwrap();
    let events =
        w.c.ok(&w.alice.clone(), report(&pid, 0, ReportReason::NotMyCare));
    let reported = events
        .iter()
        .find(|e| e.kind == "medledger.access.reported")
        .unwrap();
    assert_eq!(
        reported.attributes,
        vec![
            ("patient_id", pid.clone()),
            ("index", "0".into()),
            ("member", "hospital-a".into()),
            ("reason", "REPORT_REASON_NOT_MY_CARE".into()),
        ]
    );
    let e = w.event(0);
    assert_ne!(e.reported_height, 0);
    assert_eq!(e.report_reason, ReportReason::NotMyCare as i32);
    assert_eq!(e.report_review, ReviewStatus::Pending as i32);
    assert_eq!(
        e.review, 0,
        "a read under consent has no break-glass review"
    );
    // It joins the accessing member's review queue.
    assert_eq!(
        w.c.ledger()
            .store()
            .get(&keys::review("hospital-a", 0))
            .unwrap(),
        Some(format!("{pid}/0").into_bytes())
    );
    // The history's digest does not change: the report is outside its chain, and the chain
    // over the stored events (report included) still gives the stored digest.
    let digest_after =
        w.c.ledger()
            .store()
            .get(&List::Access(&pid).digest_key().unwrap())
            .unwrap();
    assert_eq!(digest_before, digest_after);
    let values: Vec<Vec<u8>> = (0..2)
        .map(|i| {
            w.c.ledger()
                .store()
                .get(&keys::access_event(&pid, i))
                .unwrap()
                .unwrap()
        })
        .collect();
    let chain = ListDigest::of(&List::Access(&pid), values.iter().map(Vec::as_slice)).unwrap();
    assert_eq!(Some(chain.encode()), digest_after);

    // lab-b's privacy officer upholds it; the review is closed once.
    let events = w.c.ok(&w.lab_officer.clone(), review_report(&pid, 0, true));
    assert!(events
        .iter()
        .any(|e| e.kind == "medledger.access.report_reviewed"
            && e.attributes.contains(&("upheld", "true".into()))));
    let e = w.event(0);
    assert_eq!(e.report_review, ReviewStatus::Unjustified as i32);
    assert_eq!(e.report_reviewer, did(&w.lab_officer));
    assert_eq!(e.report_note_hash.len(), 32);
    assert_eq!(
        w.c.send(&w.lab_officer.clone(), review_report(&pid, 0, false)),
        Code::NoOpenReport.value()
    );
    // A reviewed report is still a report: the event is not reported twice.
    assert_eq!(
        w.c.send(&w.alice.clone(), report(&pid, 0, ReportReason::Other)),
        Code::AlreadyReported.value()
    );
}

#[test]
fn a_report_not_upheld_marks_the_access_justified() {
    let mut w = World::new();
    let pid = w.pid();
    w.c.ok(
        &w.alice.clone(),
        report(&pid, 1, ReportReason::UnknownReader),
    );
    w.c.ok(&w.lab_officer.clone(), review_report(&pid, 1, false));
    let e = w.event(1);
    assert_eq!(e.report_review, ReviewStatus::Justified as i32);
    assert_eq!(e.report_reason, ReportReason::UnknownReader as i32);
}

#[test]
fn only_the_patients_own_key_reports_their_accesses() {
    let mut w = World::new();
    let pid = w.pid();
    let bob = key(2);
    w.c.enrol(&bob);
    assert_eq!(
        w.c.send(&bob, report(&pid, 0, ReportReason::NotMyCare)),
        Code::NotOwnPatientId.value()
    );
    // A guardian recovers a key; as for GrantConsent, it does not speak for the patient.
    let guardian = key(3);
    w.c.enrol(&guardian);
    w.c.ok(
        &w.alice.clone(),
        Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: vec![pk(&guardian).to_vec()],
            threshold: 1,
        }),
    );
    assert_eq!(
        w.c.send(&guardian, report(&pid, 0, ReportReason::NotMyCare)),
        Code::NotOwnPatientId.value()
    );
    assert_eq!(
        w.c.send(&admin(LAB), report(&pid, 0, ReportReason::NotMyCare)),
        Code::PatientOnly.value()
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), report(&pid, 0, ReportReason::NotMyCare)),
        Code::PatientOnly.value()
    );
    assert_eq!(
        w.c.send(&key(99), report(&pid, 0, ReportReason::NotMyCare)),
        Code::UnknownSigner.value()
    );
    assert_eq!(w.event(0).reported_height, 0);
}

#[test]
fn a_report_names_an_existing_event_of_someone_else_once_with_a_reason() {
    let mut w = World::new();
    let pid = w.pid();
    let alice = w.alice.clone();
    assert_eq!(
        w.c.send(&alice, report(&pid, 2, ReportReason::NotMyCare)),
        Code::UnknownAccessEvent.value()
    );
    assert_eq!(
        w.c.send(&alice, report(&pid, 0, ReportReason::Unspecified)),
        Code::InvalidField.value()
    );
    let mut bad = report(&pid, 0, ReportReason::Other);
    if let Msg::ReportAccess(m) = &mut bad {
        m.reason = 9;
    }
    assert_eq!(w.c.send(&alice, bad), Code::InvalidField.value());
    // A tx refused by the stateless checks consumes no sequence.
    w.c.resync();
    w.c.ok(&alice, report(&pid, 0, ReportReason::WrongPurpose));
    assert_eq!(
        w.c.send(&alice, report(&pid, 0, ReportReason::WrongPurpose)),
        Code::AlreadyReported.value()
    );

    // The patient's own read (PATRQT, actor the patient) is not reportable.
    let x25519 =
        hex::decode("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a").unwrap();
    w.c.ok(
        &alice,
        Msg::RegisterPatientBoxKey(pb::RegisterPatientBoxKey {
            patient_id: pid.clone(),
            box_key: x25519,
        }),
    );
    w.c.ok(
        &alice,
        Msg::LogAccess(pb::LogAccess {
            patient_id: pid.clone(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: Purpose::Patrqt as i32,
            action: 0,
        }),
    );
    assert_eq!(w.event(2).actor, pid);
    assert_eq!(
        w.c.send(&alice, report(&pid, 2, ReportReason::UnknownReader)),
        Code::OwnAccessNotReportable.value()
    );
}

#[test]
fn only_an_active_privacy_officer_of_another_member_reviews_a_report() {
    let mut w = World::new();
    let pid = w.pid();
    // Nothing reported yet.
    assert_eq!(
        w.c.send(&w.lab_officer.clone(), review_report(&pid, 0, true)),
        Code::NoOpenReport.value()
    );
    assert_eq!(
        w.c.send(&w.lab_officer.clone(), review_report(&pid, 7, true)),
        Code::UnknownAccessEvent.value()
    );
    w.c.ok(&w.alice.clone(), report(&pid, 0, ReportReason::NotMyCare));
    // The accessing member's own officer, a physician, a member's admin, the patient.
    assert_eq!(
        w.c.send(&w.hosp_officer.clone(), review_report(&pid, 0, true)),
        Code::SelfReview.value()
    );
    assert_eq!(
        w.c.send(&w.doc.clone(), review_report(&pid, 0, false)),
        Code::RoleNotPermitted.value()
    );
    assert_eq!(
        w.c.send(&admin(LAB), review_report(&pid, 0, true)),
        Code::NotAuthorized.value()
    );
    assert_eq!(
        w.c.send(&w.alice.clone(), review_report(&pid, 0, true)),
        Code::NotAuthorized.value()
    );
    assert_eq!(w.event(0).report_review, ReviewStatus::Pending as i32);
}

#[test]
fn a_reported_break_glass_access_keeps_one_entry_in_the_review_queue() {
    let mut w = World::new();
    let pid = w.pid();
    w.c.ok(&w.doc.clone(), break_glass_as(&pid, "obs-3", "Observation"));
    let queue = List::Reviews("hospital-a");
    let len = |w: &World| {
        w.c.ledger()
            .store()
            .get(&queue.count_key())
            .unwrap()
            .and_then(|v| keys::decode_u64(&v))
            .unwrap_or(0)
    };
    assert_eq!(len(&w), 1);
    w.c.ok(
        &w.alice.clone(),
        report(&pid, 2, ReportReason::WrongPurpose),
    );
    assert_eq!(len(&w), 1, "the break-glass event is in the queue already");
    // The two reviews are independent: the report's closes only the report.
    w.c.ok(&w.lab_officer.clone(), review_report(&pid, 2, true));
    let e = w.event(2);
    assert_eq!(
        (e.review, e.report_review),
        (
            ReviewStatus::Pending as i32,
            ReviewStatus::Unjustified as i32
        )
    );
    w.c.ok(&w.alice.clone(), report(&pid, 1, ReportReason::Other));
    assert_eq!(len(&w), 2);
}

#[test]
fn reports_are_bounded_per_patient_and_per_block() {
    let mut c = Chain::new();
    // 18 patients with 5 reads each: the first alone, the other 17 together report 68 reads in
    // one block, more than the block takes.
    let n_patients = MAX_REPORTS_PER_BLOCK / MAX_REPORTS_PER_PATIENT_PER_BLOCK + 2;
    let patients: Vec<SigningKey> = (0..n_patients).map(|i| key(200 + i as u8)).collect();
    for p in &patients {
        c.enrol(p);
    }
    let grants: Vec<Vec<u8>> = patients
        .iter()
        .map(|p| c.tx(p, grant_treatment("hospital-a")))
        .collect();
    c.block(grants);
    let reads = MAX_REPORTS_PER_PATIENT_PER_BLOCK + 1;
    let mut txs = Vec::new();
    for p in &patients {
        for _ in 0..reads {
            txs.push(c.tx(&admin(HOSP), read(&patient_id(p), "obs-1", "Observation")));
        }
    }
    let r = c.block(txs);
    assert!(r.tx_results.iter().all(|t| t.code == 0));

    // One patient: 4 in a block, the 5th refused, accepted in the next block.
    let first = &patients[0];
    let pid = patient_id(first);
    let txs: Vec<Vec<u8>> = (0..reads)
        .map(|i| c.tx(first, report(&pid, i, ReportReason::UnknownReader)))
        .collect();
    let r = c.block(txs);
    let codes: Vec<u32> = r.tx_results.iter().map(|t| t.code).collect();
    let mut want = vec![0; MAX_REPORTS_PER_PATIENT_PER_BLOCK as usize];
    want.push(Code::TooManyReports.value());
    assert_eq!(codes, want);
    c.ok(first, report(&pid, reads - 1, ReportReason::UnknownReader));

    // All patients together: the first 64 reports of a block are recorded, the rest refused.
    let mut txs = Vec::new();
    for p in &patients[1..] {
        for i in 0..MAX_REPORTS_PER_PATIENT_PER_BLOCK {
            txs.push(c.tx(p, report(&patient_id(p), i, ReportReason::NotMyCare)));
        }
    }
    assert!(txs.len() as u64 > MAX_REPORTS_PER_BLOCK);
    let r = c.block(txs);
    let codes: Vec<u32> = r.tx_results.iter().map(|t| t.code).collect();
    let (taken, refused) = codes.split_at(MAX_REPORTS_PER_BLOCK as usize);
    assert!(taken.iter().all(|&code| code == 0), "{codes:?}");
    assert!(
        refused
            .iter()
            .all(|&code| code == Code::TooManyReports.value()),
        "{codes:?}"
    );
    // The next block takes the rest.
    let last = patients.last().unwrap();
    let lp = patient_id(last);
    c.ok(last, report(&lp, 0, ReportReason::NotMyCare));
}

//! Issue 23, attacks 7 and 8, replayed on a real ledger.
//!
//! 7. Made-up treatment evidence got claims paid: a physician's break-glass on a record id that
//!    was never anchored backed two approved claims; an UNJUSTIFIED review left them approved; one
//!    access backed any number of claims; any string passed as a modifier (`99213@ZZ`).
//! 8. A stolen key locked the guardians out: the thief replaced the guardian set and rotated the
//!    key at once, and the real guardians' approvals then failed.

#![allow(clippy::unwrap_used, clippy::panic)]

use ed25519_dalek::SigningKey;
use medledger_state::view::StateRead;
use medledger_state::Event;
use medledger_tx::pb::{
    self, tx_body::Msg, Claim, ClaimItem, ClaimStatus, Guardians, Patient, PendingPatientChange,
    PractitionerRole, Purpose,
};
use medledger_tx::{keys, recovery, Code};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;
const INSURER: usize = 2;

fn attr(events: &[Event], kind: &str, name: &str) -> Option<String> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .flat_map(|e| &e.attributes)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
}

// ---- attack 7: evidence that counts ----

/// Alice enrolled and enrolled by insurer-c in "gold" (99213 and 80053 covered, no cap), her
/// HPAYMT consent to insurer-c and TREAT consent to hospital-a; hospital-a's physician (key 20)
/// and lab-b's privacy officer (key 23). Returns alice's key and id.
fn claims_world(c: &mut Chain) -> (SigningKey, String) {
    let alice = key(1);
    let pid = patient_id(&alice);
    c.enrol(&alice);
    let covered = |code: &str| pb::CoverageRule {
        service_code: code.into(),
        covered: true,
        ..Default::default()
    };
    let txs = vec![
        c.tx(
            &admin(INSURER),
            Msg::PublishPolicy(pb::PublishPolicy {
                policy_id: "gold".into(),
                rules: vec![covered("99213"), covered("80053"), covered("85025")],
            }),
        ),
        c.tx(
            &admin(INSURER),
            Msg::EnrolCoverage(pb::EnrolCoverage {
                patient_id: pid.clone(),
                policy_id: "gold".into(),
                start: 0,
                end: 0,
            }),
        ),
        c.tx(&alice, grant("insurer-c", Purpose::Hpaymt, "Claim")),
        c.tx(&alice, grant("hospital-a", Purpose::Treat, "*")),
        c.tx(
            &admin(HOSP),
            register_practitioner_for(HOSP, &key(20), PractitionerRole::Physician, 0),
        ),
        c.tx(
            &admin(LAB),
            register_practitioner_for(LAB, &key(23), PractitionerRole::PrivacyOfficer, 0),
        ),
    ];
    let r = c.block(txs);
    for (i, t) in r.tx_results.iter().enumerate() {
        assert_eq!(t.code, 0, "setup tx {i}: {}", t.log);
    }
    (alice, pid)
}

fn grant(grantee: &str, purpose: Purpose, class: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec![class.into()],
        purposes: vec![purpose as i32],
        ..Default::default()
    })
}

/// hospital-a's claim for `pid` under "gold": one `code` item of `amount`, on `day`, citing
/// `evidence`.
fn claim(pid: &str, code: &str, modifier: &str, amount: u64, day: u64, evidence: &[u64]) -> Msg {
    Msg::SubmitClaim(pb::SubmitClaim {
        patient_id: pid.into(),
        insurer: "insurer-c".into(),
        policy_id: "gold".into(),
        service_date: day,
        items: vec![ClaimItem {
            service_code: code.into(),
            quantity: 1,
            unit_price: amount,
            modifier: modifier.into(),
        }],
        record_ids: Vec::new(),
        total: amount,
        evidence: evidence.to_vec(),
        ..Default::default()
    })
}

/// Submits as hospital-a's admin: the code and, when applied, the claim id.
fn submit(c: &mut Chain, msg: Msg) -> (Option<Code>, String, String) {
    let tx = c.tx(&admin(HOSP), msg);
    let r = c.block(vec![tx]);
    let t = &r.tx_results[0];
    let id = attr(&t.events, "medledger.claim.submitted", "claim_id").unwrap_or_default();
    c.resync();
    (Code::from_value(t.code), id, t.log.clone())
}

/// The index of the access event a LogAccess / LogBreakGlass logged.
fn logged_index(events: &[Event]) -> u64 {
    attr(events, "medledger.access.logged", "index")
        .unwrap()
        .parse()
        .unwrap()
}

fn stored_claim(c: &Chain, id: &str) -> Claim {
    c.get(&keys::claim(id)).unwrap()
}

fn status(claim: &Claim) -> ClaimStatus {
    ClaimStatus::try_from(claim.status).unwrap()
}

/// The live attack: a break-glass on a record id the ledger never anchored, then two claims
/// (90,000 and 4,000) citing it. Both were APPROVED; now both are refused.
#[test]
fn a_break_glass_on_a_never_anchored_record_backs_no_claim() {
    let mut c = Chain::new();
    let (_, pid) = claims_world(&mut c);
    let day = c.time;
    let events = c.ok(
        &key(20),
        break_glass_as(&pid, "made-up-record", "Encounter"),
    );
    let index = logged_index(&events);
    for (code, amount) in [("99213", 90_000), ("80053", 4_000)] {
        let (refused, id, log) = submit(&mut c, claim(&pid, code, "", amount, day, &[index]));
        assert_eq!(refused, Some(Code::NoTreatmentEvidence), "{log}");
        assert!(id.is_empty());
        assert!(log.contains("not anchored"), "{log}");
    }
    // A consented read of a made-up record id is no evidence either.
    let events = c.ok(&admin(HOSP), read(&pid, "also-made-up", "Encounter"));
    let read_index = logged_index(&events);
    let (refused, _, log) = submit(&mut c, claim(&pid, "99213", "", 90_000, day, &[read_index]));
    assert_eq!(refused, Some(Code::NoTreatmentEvidence), "{log}");
    assert_eq!(
        c.ledger().store().get_u64(&keys::claim_counter()).unwrap(),
        0
    );
}

/// A claim resting on a break-glass access not reviewed yet waits PENDING (never approved by
/// policy, not decidable); an UNJUSTIFIED review denies it, with an event, and it stays denied.
#[test]
fn a_claim_on_an_unreviewed_break_glass_waits_and_an_unjustified_review_denies_it() {
    let mut c = Chain::new();
    let (_, pid) = claims_world(&mut c);
    let day = c.time;
    c.ok(&admin(HOSP), anchor_as("r-1", &pid, "Encounter"));
    let events = c.ok(&key(20), break_glass_as(&pid, "r-1", "Encounter"));
    let index = logged_index(&events);
    let (code, id, log) = submit(&mut c, claim(&pid, "99213", "", 90_000, day, &[index]));
    assert_eq!(code, None, "{log}");
    let waiting = stored_claim(&c, &id);
    assert_eq!(
        status(&waiting),
        ClaimStatus::Pending,
        "every item is covered, yet the claim waits for the review"
    );
    assert_eq!(waiting.decided_by, "");
    let decide = Msg::DecideClaim(pb::DecideClaim {
        claim_id: id.clone(),
        approved_amounts: vec![90_000],
        note_hash: Vec::new(),
    });
    assert_eq!(
        c.send(&admin(INSURER), decide.clone()),
        Code::EvidenceUnderReview.value()
    );
    let events = c.ok(&key(23), review(&pid, index, false));
    assert_eq!(
        attr(&events, "medledger.claim.denied", "claim_id").as_deref(),
        Some(id.as_str()),
        "the review reports the claim it denies: {events:?}"
    );
    let denied = stored_claim(&c, &id);
    assert_eq!(status(&denied), ClaimStatus::Denied);
    assert_eq!(denied.total_approved, 0);
    assert_eq!(denied.decided_by, "break-glass-review");
    assert_eq!(
        denied.decisions[0].reasons,
        vec!["EVIDENCE_UNJUSTIFIED".to_string()]
    );
    // Nothing brings it back: no appeal, no decision, no payment.
    let appeal = Msg::AppealClaim(pb::AppealClaim {
        claim_id: id.clone(),
        reason_hash: vec![5; 32],
    });
    assert_eq!(
        c.send(&admin(HOSP), appeal),
        Code::NoTreatmentEvidence.value()
    );
    c.resync();
    assert_eq!(
        c.send(&admin(INSURER), decide),
        Code::ClaimNotDecidable.value()
    );
}

/// Each access event backs one claim: a second claim citing it (another service, so it is no
/// duplicate) is refused, whether the access was consented or a break-glass reviewed JUSTIFIED.
#[test]
fn an_access_backs_at_most_one_claim() {
    let mut c = Chain::new();
    let (_, pid) = claims_world(&mut c);
    let day = c.time;
    c.ok(&admin(HOSP), anchor_as("r-1", &pid, "Encounter"));
    let consented = logged_index(&c.ok(&admin(HOSP), read(&pid, "r-1", "Encounter")));
    let (code, first, log) = submit(&mut c, claim(&pid, "99213", "", 9_000, day, &[consented]));
    assert_eq!(code, None, "{log}");
    assert_eq!(status(&stored_claim(&c, &first)), ClaimStatus::Approved);
    let (code, _, log) = submit(&mut c, claim(&pid, "80053", "", 4_000, day, &[consented]));
    assert_eq!(code, Some(Code::EvidenceAlreadyClaimed), "{log}");
    assert!(log.contains(&first), "{log}");
    assert_eq!(
        c.get::<pb::AccessEvent>(&keys::access_event(&pid, consented))
            .map(|e| e.index),
        Some(consented)
    );
    assert_eq!(
        c.ledger()
            .store()
            .get(&keys::evidence(&pid, consented))
            .unwrap(),
        Some(first.into_bytes())
    );

    // A break-glass reviewed JUSTIFIED is evidence, once.
    let glass = logged_index(&c.ok(&key(20), break_glass_as(&pid, "r-1", "Encounter")));
    c.ok(&key(23), review(&pid, glass, true));
    let (code, id, log) = submit(&mut c, claim(&pid, "80053", "", 4_000, day, &[glass]));
    assert_eq!(code, None, "{log}");
    assert_eq!(status(&stored_claim(&c, &id)), ClaimStatus::Approved);
    let (code, _, log) = submit(&mut c, claim(&pid, "85025", "", 1_000, day, &[glass]));
    assert_eq!(code, Some(Code::EvidenceAlreadyClaimed), "{log}");
}

/// `99213@ZZ` escaped the duplicate key; only listed modifiers are accepted now.
#[test]
fn a_made_up_modifier_is_refused() {
    let mut c = Chain::new();
    let (_, pid) = claims_world(&mut c);
    let day = c.time;
    c.ok(&admin(HOSP), anchor_as("r-1", &pid, "Encounter"));
    let a = logged_index(&c.ok(&admin(HOSP), read(&pid, "r-1", "Encounter")));
    let b = logged_index(&c.ok(&admin(HOSP), read(&pid, "r-1", "Encounter")));
    let (code, _, log) = submit(&mut c, claim(&pid, "99213", "", 9_000, day, &[a]));
    assert_eq!(code, None, "{log}");
    let (code, _, log) = submit(&mut c, claim(&pid, "99213", "ZZ", 9_000, day, &[b]));
    assert_eq!(code, Some(Code::UnknownModifier), "{log}");
    // A real repeat procedure still goes to the insurer.
    let (code, id, log) = submit(&mut c, claim(&pid, "99213", "76", 9_000, day, &[b]));
    assert_eq!(code, None, "{log}");
    assert_eq!(status(&stored_claim(&c, &id)), ClaimStatus::Pending);
}

// ---- attack 8: guardians win against a thief ----

const DELAY: u64 = keys::DEFAULT_GUARDIAN_CHANGE_DELAY_SECS;

fn set_guardians(keys: &[&SigningKey], threshold: u32) -> Msg {
    Msg::SetGuardians(pb::SetGuardians {
        guardian_keys: keys.iter().map(|g| pk(g).to_vec()).collect(),
        threshold,
    })
}

/// `guardians` approve moving `pid` to `new`, bound to `at`.
fn recover(
    pid: &str,
    new: &SigningKey,
    guardians: &[&SigningKey],
    at: &recovery::RecoveryState,
) -> Msg {
    Msg::RecoverPatientKey(pb::RecoverPatientKey {
        patient_id: pid.into(),
        new_key: pk(new).to_vec(),
        approvals: guardians
            .iter()
            .map(|g| pb::GuardianApproval {
                guardian_key: pk(g).to_vec(),
                signature: recovery::approve(g, CHAIN, pid, &pk(new), at).to_vec(),
            })
            .collect(),
    })
}

fn recovery_state(c: &Chain, pid: &str) -> recovery::RecoveryState {
    let p: Patient = c.get(&keys::patient(pid)).unwrap();
    let g: Guardians = c.get(&keys::guardians(pid)).unwrap();
    recovery::RecoveryState {
        recoveries: g.recoveries,
        current_key: p.key.as_slice().try_into().unwrap(),
        guardian_set_hash: recovery::guardian_set_hash(&g.guardian_keys, g.threshold),
    }
}

/// The live attack: with alice's key, a thief names its own guardian and rotates to its own key
/// straight away. Both wait the delay; alice's real guardians recover within it, which cancels
/// the thief's changes, and the thief's key never signs for her.
#[test]
fn the_real_guardians_recover_before_a_thiefs_changes_take_effect() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    let (g1, g2, g3) = (key(40), key(41), key(42));
    c.enrol(&alice);
    // Her first guardians apply at once: there is nobody yet whom a delay would protect.
    c.ok(&alice, set_guardians(&[&g1, &g2, &g3], 2));
    let honest = recovery_state(&c, &pid);

    // The thief holds alice's key.
    let (accomplice, thief) = (key(50), key(55));
    let events = c.ok(&alice, set_guardians(&[&accomplice], 1));
    assert!(
        attr(
            &events,
            "medledger.patient.guardians_pending",
            "effective_time"
        )
        .is_some(),
        "{events:?}"
    );
    let events = c.ok(&alice, rotate(&pid, &thief));
    assert!(
        attr(
            &events,
            "medledger.patient.key_rotation_pending",
            "effective_time"
        )
        .is_some(),
        "{events:?}"
    );
    let pending: PendingPatientChange = c.get(&keys::guardian_change(&pid)).unwrap();
    assert_eq!(pending.new_key, pk(&thief).to_vec());
    assert!(pending.key_effective_time >= c.time - 5 + DELAY);
    assert_eq!(recovery_state(&c, &pid), honest, "nothing changed yet");
    // The thief's key cannot take over before the delay.
    let grab = Msg::RecoverPatientKey(pb::RecoverPatientKey {
        patient_id: pid.clone(),
        new_key: pk(&thief).to_vec(),
        approvals: Vec::new(),
    });
    assert_eq!(c.send(&thief, grab.clone()), Code::RotationNotDue.value());
    // (A refused tx of a key the ledger does not know consumes no sequence.)
    c.resync();

    // The real guardians recover alice to a key she holds: they win.
    let fresh = key(60);
    let events = c.ok(&fresh, recover(&pid, &fresh, &[&g1, &g2], &honest));
    assert!(
        attr(&events, "medledger.patient.pending_cancelled", "patient_id").is_some(),
        "{events:?}"
    );
    assert_eq!(
        c.get::<PendingPatientChange>(&keys::guardian_change(&pid)),
        None
    );
    let p: Patient = c.get(&keys::patient(&pid)).unwrap();
    assert_eq!(p.key, pk(&fresh).to_vec());
    let g: Guardians = c.get(&keys::guardians(&pid)).unwrap();
    assert_eq!(g.guardian_keys.len(), 3, "the real guardians stay");
    assert_eq!(g.recoveries, 1);

    // Long after the delay, the cancelled rotation gives the thief nothing, and the stolen key
    // is retired.
    c.time += 2 * DELAY;
    assert_eq!(c.send(&thief, grab), Code::NotEnoughGuardians.value());
    c.resync();
    assert_eq!(
        c.send(&alice, set_guardians(&[&accomplice], 1)),
        Code::KeyRetired.value()
    );
    c.resync();
    c.ok(&fresh, grant("hospital-a", Purpose::Treat, "*"));
}

/// The patient's own rotation and guardian change take effect after the delay: the old key signs
/// meanwhile; the new key completes the rotation once it is due; a due guardian set is the one
/// recoveries bind to.
#[test]
fn an_honest_rotation_and_guardian_change_take_effect_after_the_delay() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    let (g1, g2, g3) = (key(40), key(41), key(42));
    c.enrol(&alice);
    c.ok(&alice, set_guardians(&[&g1, &g2], 2));
    let next = key(61);
    c.ok(&alice, rotate(&pid, &next));
    c.ok(&alice, set_guardians(&[&g1, &g3], 1));
    // Meanwhile the old key still signs for alice.
    c.ok(&alice, grant("hospital-a", Purpose::Treat, "*"));
    let complete = Msg::RecoverPatientKey(pb::RecoverPatientKey {
        patient_id: pid.clone(),
        new_key: pk(&next).to_vec(),
        approvals: Vec::new(),
    });
    assert_eq!(
        c.send(&next, complete.clone()),
        Code::RotationNotDue.value()
    );
    c.resync();
    c.time += DELAY;
    let events = c.ok(&next, complete);
    assert!(attr(&events, "medledger.patient.key_rotated", "patient_id").is_some());
    assert!(attr(&events, "medledger.patient.guardians", "patient_id").is_some());
    let p: Patient = c.get(&keys::patient(&pid)).unwrap();
    assert_eq!(p.key, pk(&next).to_vec());
    let g: Guardians = c.get(&keys::guardians(&pid)).unwrap();
    assert_eq!((g.guardian_keys.len(), g.threshold), (2, 1));
    assert_eq!(
        c.get::<PendingPatientChange>(&keys::guardian_change(&pid)),
        None
    );
    assert_eq!(
        c.send(&alice, grant("lab-b", Purpose::Treat, "*")),
        Code::KeyRetired.value()
    );
    c.resync();
    c.ok(&next, grant("lab-b", Purpose::Treat, "*"));
    // The new guardian set (1 of g1, g3) recovers.
    let at = recovery_state(&c, &pid);
    let lost = key(62);
    c.ok(&lost, recover(&pid, &lost, &[&g3], &at));
}

/// The delay is a genesis parameter, stored in the proven state; 48 h when the genesis names none.
#[test]
fn the_guardian_change_delay_comes_from_genesis() {
    let c = Chain::new();
    assert_eq!(
        c.ledger()
            .store()
            .get_u64(&keys::guardian_change_delay())
            .unwrap(),
        48 * 3600
    );
    let dir = tempfile::tempdir().unwrap();
    let mut l = medledger_state::Ledger::open(dir.path()).unwrap();
    let app_state = serde_json::to_vec(&serde_json::json!({
        "members": [],
        "guardian_change_delay_secs": 60,
    }))
    .unwrap();
    l.init_chain(CHAIN, 1, &app_state, &[]).unwrap();
    assert_eq!(
        l.store().get_u64(&keys::guardian_change_delay()).unwrap(),
        60
    );
}

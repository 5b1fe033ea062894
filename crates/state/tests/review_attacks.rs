//! The adversarial review's attacks on identity, access and break-glass (issue 11), replayed as
//! written against the state machine: each is refused with its own stable code and changes
//! nothing it must not. The localnet replays of the halting proposal live in
//! `tests/consortium.rs`; claims and governance in their own files.

#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use medledger_tx::keyproof::{self, ENROL_PATIENT, ROTATE_PATIENT_KEY};
use medledger_tx::limits::MAX_ENROLMENTS_PER_BLOCK;
use medledger_tx::pb::{self, tx_body::Msg, AccessEvent, PractitionerRole, Purpose, TxBody};
use medledger_tx::{keys, recovery, Code};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::common::*;

const HOSP: usize = 0;
const LAB: usize = 1;
const INSURER: usize = 2;

fn register_practitioner(member: usize, k: &SigningKey, role: PractitionerRole) -> Msg {
    register_practitioner_for(member, k, role, 0)
}

fn grant(grantee: &str, classes: &[&str], deny: &[&str]) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: classes.iter().map(|c| c.to_string()).collect(),
        deny_classes: deny.iter().map(|c| c.to_string()).collect(),
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

fn anchor(record: &str, patient: &str, resource_type: &str) -> Msg {
    anchor_as(record, patient, resource_type)
}

fn break_glass(patient: &str, record: &str, class: &str) -> Msg {
    break_glass_as(patient, record, class)
}

/// An anchored record read as another class is CLASS_MISMATCH; read as its own class, the
/// consent decides (here: NO_PERMITTING_CONSENT).
fn assert_class_is_the_anchors(
    c: &mut Chain,
    patient: &str,
    record: &str,
    declared: &str,
    actual: &str,
) {
    assert_eq!(
        c.send(&admin(HOSP), read(patient, record, declared)),
        Code::ClassMismatch.value()
    );
    assert_eq!(
        c.send(&admin(HOSP), read(patient, record, actual)),
        Code::NoPermittingConsent.value()
    );
}

/// Attack 1: patient registers with K0, rotates to K1; whoever holds K0 tries to take the
/// patient back by registering again (or being enrolled again), then by signing as the patient.
#[test]
fn a_stolen_key_cannot_take_the_patient_back_after_rotation() {
    let mut c = Chain::new();
    let (k0, k1) = (key(1), key(2));
    let pid = patient_id(&k0);
    c.enrol(&k0);
    c.ok(&k0, rotate(&pid, &k1));
    for who in [HOSP, LAB] {
        let again = Msg::RegisterPatient(keyproof::enrol_patient(&k0, CHAIN, MEMBERS[who].0));
        assert_eq!(c.send(&admin(who), again), Code::KeyRetired.value());
    }
    assert_eq!(
        c.send(&k0, grant("hospital-a", &["*"], &[])),
        Code::KeyRetired.value(),
        "the old key signs nothing for the patient"
    );
    let p: pb::Patient = c.get(&keys::patient(&pid)).unwrap();
    assert_eq!(p.key, pk(&k1).to_vec(), "the patient keeps the new key");
    // Nor may the old key become a practitioner, or the patient's key again by rotation.
    assert_eq!(
        c.send(
            &admin(HOSP),
            register_practitioner(HOSP, &k0, PractitionerRole::Nurse)
        ),
        Code::PractitionerExists.value()
    );
    assert_eq!(c.send(&k1, rotate(&pid, &k0)), Code::KeyInUse.value());
}

/// Attack 2: hospital-a holds an Observation consent and declares a psychiatric note, or a
/// denied class, to be an Observation.
#[test]
fn the_class_of_an_anchored_record_is_the_anchors_not_the_readers() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    c.enrol(&alice);
    c.ok(&alice, grant("hospital-a", &["Observation"], &[]));
    c.ok(&admin(HOSP), anchor("psy-1", &pid, "PsychiatricNote"));
    assert_class_is_the_anchors(&mut c, &pid, "psy-1", "Observation", "PsychiatricNote");
    // A `*` grant that denies MedicationStatement.
    let bob = key(3);
    let bob_id = patient_id(&bob);
    c.enrol(&bob);
    c.ok(&bob, grant("hospital-a", &["*"], &["MedicationStatement"]));
    c.ok(
        &admin(HOSP),
        anchor("med-1", &bob_id, "MedicationStatement"),
    );
    assert_class_is_the_anchors(
        &mut c,
        &bob_id,
        "med-1",
        "Observation",
        "MedicationStatement",
    );
    // Break-glass names the anchor's class too.
    let doc = key(20);
    c.ok(
        &admin(HOSP),
        register_practitioner(HOSP, &doc, PractitionerRole::Physician),
    );
    assert_eq!(
        c.send(&doc, break_glass(&pid, "psy-1", "Observation")),
        Code::ClassMismatch.value()
    );
    c.ok(&doc, break_glass(&pid, "psy-1", "PsychiatricNote"));
    assert_eq!(c.get::<AccessEvent>(&keys::access_event(&bob_id, 0)), None);
}

/// Attack 3: insurer-c vouches for its own "physician" and "privacy officer", breaks the glass
/// into a psychiatric note without consent and reviews it justified itself.
#[test]
fn only_care_providers_break_the_glass_and_nobody_reviews_their_own() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    c.enrol(&alice);
    c.ok(&admin(HOSP), anchor("psy-1", &pid, "PsychiatricNote"));
    let (fake_doc, ins_officer) = (key(30), key(31));
    for role in [PractitionerRole::Physician, PractitionerRole::Nurse] {
        assert_eq!(
            c.send(
                &admin(INSURER),
                register_practitioner(INSURER, &fake_doc, role)
            ),
            Code::RoleNotForMemberKind.value()
        );
    }
    assert_eq!(
        c.send(
            &admin(LAB),
            register_practitioner(LAB, &fake_doc, PractitionerRole::Physician)
        ),
        Code::RoleNotForMemberKind.value(),
        "a lab has technicians, not physicians"
    );
    c.ok(
        &admin(INSURER),
        register_practitioner(INSURER, &ins_officer, PractitionerRole::PrivacyOfficer),
    );
    assert_eq!(
        c.send(&ins_officer, break_glass(&pid, "psy-1", "PsychiatricNote")),
        Code::RoleNotPermitted.value()
    );
    // A hospital's physician may; the hospital's own officer may not clear it; another
    // member's officer reviews it.
    let (doc, hosp_officer) = (key(20), key(21));
    c.ok(
        &admin(HOSP),
        register_practitioner(HOSP, &doc, PractitionerRole::Physician),
    );
    c.ok(
        &admin(HOSP),
        register_practitioner(HOSP, &hosp_officer, PractitionerRole::PrivacyOfficer),
    );
    c.ok(&doc, break_glass(&pid, "psy-1", "PsychiatricNote"));
    assert_eq!(
        c.send(&hosp_officer, review(&pid, 0, true)),
        Code::SelfReview.value()
    );
    c.ok(&ins_officer, review(&pid, 0, false));
    let e: AccessEvent = c.get(&keys::access_event(&pid, 0)).unwrap();
    assert_eq!(e.reviewer, did(&ins_officer));
}

/// Attack 7: a fresh key with RPC access writes state for free.
#[test]
fn outsiders_write_nothing_and_members_enrol_patients_within_a_quota() {
    let mut c = Chain::new();
    c.block(vec![]);
    let outsider = key(77);
    // CheckTx refuses every tx of an unknown key, self-registration included.
    let own = Msg::RegisterPatient(keyproof::enrol_patient(&outsider, CHAIN, "hospital-a"));
    for msg in [own, grant("hospital-a", &["*"], &[])] {
        let tx = c.tx_at(&outsider, 0, msg);
        assert_eq!(
            c.ledger_mut().check_tx(&tx).unwrap_err().code,
            Code::UnknownSigner
        );
        // A proposer that includes it anyway: refused, and the app hash does not move.
        let before = c.ledger().info().unwrap().app_hash;
        let r = c.block(vec![tx]);
        assert_eq!(r.tx_results[0].code, Code::UnknownSigner.value());
        assert_eq!(r.app_hash, before, "not even a sequence is written");
    }
    assert_eq!(
        c.ledger()
            .store()
            .get(&keys::sequence(&pk(&outsider)))
            .unwrap(),
        None
    );

    // A member enrols at most MAX_ENROLMENTS_PER_BLOCK patients per block.
    let n = MAX_ENROLMENTS_PER_BLOCK as usize;
    let patients: Vec<SigningKey> = (0..=n)
        .map(|i| {
            let mut seed = [200u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            SigningKey::from_bytes(&seed)
        })
        .collect();
    let txs: Vec<Vec<u8>> = patients
        .iter()
        .map(|p| c.tx(&admin(HOSP), enrol(p)))
        .collect();
    let r = c.block(txs);
    let codes: Vec<u32> = r.tx_results.iter().map(|t| t.code).collect();
    assert!(codes[..n].iter().all(|&code| code == 0), "{codes:?}");
    assert_eq!(codes[n], Code::EnrolmentLimit.value());
    // Another member is not held back by it, and the next block starts a new quota.
    c.ok(
        &admin(LAB),
        Msg::RegisterPatient(keyproof::enrol_patient(&key(5), CHAIN, "lab-b")),
    );
    c.enrol(&patients[n]);
    let p: pb::Patient = c.get(&keys::patient(&patient_id(&patients[n]))).unwrap();
    assert_eq!(p.enrolled_by, "hospital-a");
}

/// Attack 8: a throwaway patient rotates to a key it does not hold (the new admin key of an
/// open governance proposal) to make the proposal fail KEY_IN_USE; a member registers someone
/// else's key as its practitioner.
#[test]
fn a_new_key_must_prove_it_is_held() {
    let mut c = Chain::new();
    let throwaway = key(1);
    let pid = patient_id(&throwaway);
    c.enrol(&throwaway);
    let victim = key(99); // e.g. the new admin key of an open proposal
    let squat = Msg::RotatePatientKey(pb::RotatePatientKey {
        new_key: pk(&victim).to_vec(),
        new_key_proof: keyproof::prove(&throwaway, CHAIN, ROTATE_PATIENT_KEY, &pid).to_vec(),
    });
    assert_eq!(c.send(&throwaway, squat), Code::BadKeyProof.value());
    // A proof made for another purpose or subject does not serve either.
    let replayed = Msg::RotatePatientKey(pb::RotatePatientKey {
        new_key: pk(&victim).to_vec(),
        new_key_proof: keyproof::prove(&victim, CHAIN, ENROL_PATIENT, &pid).to_vec(),
    });
    assert_eq!(c.send(&throwaway, replayed), Code::BadKeyProof.value());
    assert_eq!(
        c.ledger()
            .store()
            .get(&keys::key_owner(&pk(&victim)))
            .unwrap(),
        None
    );

    let squat = Msg::RegisterPractitioner(pb::RegisterPractitioner {
        public_key: pk(&victim).to_vec(),
        role: PractitionerRole::Nurse as i32,
        licence_hash: vec![7; 32],
        key_proof: practitioner_proof(&victim, "hospital-d"),
        ..Default::default()
    });
    assert_eq!(c.send(&admin(HOSP), squat), Code::BadKeyProof.value());
    let no_proof = Msg::RegisterPatient(pb::RegisterPatient {
        patient_key: pk(&victim).to_vec(),
        key_proof: vec![0; 64],
    });
    assert_eq!(c.send(&admin(HOSP), no_proof), Code::BadKeyProof.value());
    assert_eq!(
        c.ledger()
            .store()
            .get(&keys::key_owner(&pk(&victim)))
            .unwrap(),
        None
    );
}

/// Attack 10: guardian approvals outlive a rotation or a change of guardians.
#[test]
fn guardian_approvals_are_void_after_a_rotation_or_a_new_guardian_set() {
    let mut c = Chain::new();
    let (alice, rotated) = (key(1), key(2));
    let pid = patient_id(&alice);
    let guardians = [key(40), key(41), key(42)];
    let guardian_keys: Vec<Vec<u8>> = guardians.iter().map(|g| pk(g).to_vec()).collect();
    c.enrol(&alice);
    c.ok(
        &alice,
        Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: guardian_keys.clone(),
            threshold: 2,
        }),
    );
    let new = key(60);
    let at = recovery::RecoveryState {
        recoveries: 0,
        current_key: pk(&alice),
        guardian_set_hash: recovery::guardian_set_hash(&guardian_keys, 2),
    };
    let approvals: Vec<pb::GuardianApproval> = guardians[..2]
        .iter()
        .map(|g| pb::GuardianApproval {
            guardian_key: pk(g).to_vec(),
            signature: recovery::approve(g, CHAIN, &pid, &pk(&new), &at).to_vec(),
        })
        .collect();
    let recover = |approvals: Vec<pb::GuardianApproval>| {
        Msg::RecoverPatientKey(pb::RecoverPatientKey {
            patient_id: pid.clone(),
            new_key: pk(&new).to_vec(),
            approvals,
        })
    };
    // With guardians, a rotation and a guardian change wait the guardian-change delay
    // (docs/rules.md, "Patients"); each is let take effect before the old approvals are tried.
    let delay = keys::DEFAULT_GUARDIAN_CHANGE_DELAY_SECS;
    // The patient rotates (the collected approvals were for the old key): once the rotation is
    // due and the new key has completed it (RecoverPatientKey with no approvals), they are void.
    c.ok(&alice, rotate(&pid, &rotated));
    c.time += delay;
    c.ok(
        &rotated,
        Msg::RecoverPatientKey(pb::RecoverPatientKey {
            patient_id: pid.clone(),
            new_key: pk(&rotated).to_vec(),
            approvals: Vec::new(),
        }),
    );
    assert_eq!(
        c.send(&new, recover(approvals.clone())),
        Code::NotEnoughGuardians.value()
    );
    c.resync();
    // Bound to the new key they work, unless the guardian set changed meanwhile.
    let at = recovery::RecoveryState {
        current_key: pk(&rotated),
        ..at
    };
    let fresh: Vec<pb::GuardianApproval> = guardians[..2]
        .iter()
        .map(|g| pb::GuardianApproval {
            guardian_key: pk(g).to_vec(),
            signature: recovery::approve(g, CHAIN, &pid, &pk(&new), &at).to_vec(),
        })
        .collect();
    // A new guardian set (3 of 3), once due, is the one recoveries bind to: the approvals bound
    // to the 2-of-3 set are void. (The due set is applied by the recovery's own settling.)
    c.ok(
        &rotated,
        Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: guardian_keys.clone(),
            threshold: 3,
        }),
    );
    c.time += delay;
    assert_eq!(
        c.send(&new, recover(fresh.clone())),
        Code::NotEnoughGuardians.value()
    );
    c.resync();
    // Back to 2 of 3: this SetGuardians applies the due 3-of-3 set and waits the delay itself.
    c.ok(
        &rotated,
        Msg::SetGuardians(pb::SetGuardians {
            guardian_keys,
            threshold: 2,
        }),
    );
    c.time += delay;
    // Signed by another key than the one it names: refused whatever the approvals.
    assert_eq!(
        c.send(&key(61), recover(fresh.clone())),
        Code::RecoverySignerMismatch.value()
    );
    c.resync();
    assert_eq!(c.send(&new, recover(fresh)), 0);
}

/// Attack 11: free text on chain. Reasons and notes go on chain only as SHA-256 hashes; a
/// message that carries text where the hash goes, or the retired text fields, is refused.
#[test]
fn free_text_never_reaches_the_chain() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    c.enrol(&alice);
    let doc = key(20);
    c.ok(
        &admin(HOSP),
        register_practitioner(HOSP, &doc, PractitionerRole::Physician),
    );
    let text_as_hash = Msg::LogBreakGlass(pb::LogBreakGlass {
        patient_id: pid.clone(),
        record_id: "r-1".into(),
        data_class: "Observation".into(),
        reason_hash: b"patient has a history of ...".to_vec(),
    });
    assert_eq!(c.send(&doc, text_as_hash), Code::InvalidField.value());
    c.resync();
    // An old client's body with the retired `reason` text field (4): not a canonical tx.
    let mut bg = pb::LogBreakGlass {
        patient_id: pid.clone(),
        record_id: "r-1".into(),
        data_class: "Observation".into(),
        reason_hash: Sha256::digest(b"x").to_vec(),
    }
    .encode_to_vec();
    prost::encoding::string::encode(4, &"patient has a history of ...".to_string(), &mut bg);
    let mut body = TxBody {
        chain_id: CHAIN.into(),
        sequence: c.committed_sequence(&doc),
        unordered: None,
        msg: None,
    }
    .encode_to_vec();
    prost::encoding::bytes::encode(14, &bg, &mut body);
    let tx = pb::Tx {
        body: body.clone(),
        public_key: pk(&doc).to_vec(),
        signature: ed25519_dalek::Signer::sign(
            &doc,
            &medledger_tx::envelope::signing_bytes(CHAIN, &body),
        )
        .to_bytes()
        .to_vec(),
    }
    .encode_to_vec();
    let refused = c.ledger_mut().check_tx(&tx).unwrap_err().code;
    assert!(
        matches!(refused, Code::NonCanonical | Code::TxDecode),
        "{refused:?}"
    );
    c.ok(&doc, break_glass(&pid, "r-1", "Observation"));
    let e: AccessEvent = c.get(&keys::access_event(&pid, 0)).unwrap();
    assert_eq!(
        e.break_glass_reason_hash,
        Sha256::digest(b"unconscious in the emergency room").to_vec()
    );
}

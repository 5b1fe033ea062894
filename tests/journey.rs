//! One patient's journey through the consortium, on a real 4-validator localnet: registration,
//! consent to a hospital, a lab result anchored and read, a claim auto-approved and paid, a second
//! claim denied and appealed, a break-glass read reviewed, consent revoked, and erasure.

use ed25519_dalek::SigningKey;
use medledger_client::Client;
use medledger_tx::pb::{
    self, tx_body::Msg, ClaimItem, ClaimStatus, CoverageRule, PractitionerRole, Purpose,
};
use medledger_tx::{ids, keyproof, keys, Code};
use prost::Message;

use crate::support::TestNet;

async fn ok(c: &Client, k: &SigningKey, msg: Msg) -> medledger_client::TxReport {
    let r = c.submit(k, msg).await.unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    r
}

async fn refused(c: &Client, k: &SigningKey, msg: Msg, code: Code) {
    let r = c.submit(k, msg).await.unwrap();
    assert_eq!(r.code, code.value(), "{}", r.log);
}

/// `member` registers the practitioner holding `k`, who proves possession of the key.
fn practitioner(member: &str, k: &SigningKey, role: PractitionerRole) -> Msg {
    Msg::RegisterPractitioner(pb::RegisterPractitioner {
        public_key: k.verifying_key().to_bytes().to_vec(),
        role: role as i32,
        licence_hash: vec![1; 32],
        valid_until: 0,
        name: String::new(),
        key_proof: keyproof::prove(k, CHAIN, keyproof::REGISTER_PRACTITIONER, member).to_vec(),
    })
}

/// The chain id of `TestNet`.
const CHAIN: &str = "medledger-it";

/// SHA-256 of a free text the member keeps off chain.
fn text_hash(text: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).to_vec()
}

fn grant(grantee: &str, classes: &[&str], purpose: Purpose) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: classes.iter().map(|c| c.to_string()).collect(),
        purposes: vec![purpose as i32],
        ..Default::default()
    })
}

fn read(patient: &str, record: &str, class: &str) -> Msg {
    Msg::LogAccess(pb::LogAccess {
        patient_id: patient.into(),
        record_id: record.into(),
        data_class: class.into(),
        purpose: Purpose::Treat as i32,
        action: 0,
    })
}

/// A claim to insurer-c under gold for services on the day of `visit` (the patient's access
/// event it cites as evidence of treatment).
fn claim(patient: &str, items: Vec<ClaimItem>, record: &str, visit: &pb::AccessEvent) -> Msg {
    let total = items.iter().map(|i| i.quantity * i.unit_price).sum();
    Msg::SubmitClaim(pb::SubmitClaim {
        patient_id: patient.into(),
        insurer: "insurer-c".into(),
        policy_id: "gold".into(),
        service_date: visit.time,
        items,
        record_ids: vec![record.into()],
        total,
        evidence: vec![visit.index],
        ..Default::default()
    })
}

/// `k` reads `record` of `patient` for treatment; returns the access event the read logged.
async fn log_visit(c: &Client, k: &SigningKey, patient: &str, record: &str) -> pb::AccessEvent {
    let r = ok(c, k, read(patient, record, "Observation")).await;
    let index: u64 = r.attribute("index").unwrap().parse().unwrap();
    let (v, _) = c
        .query_raw(&keys::access_event(patient, index), 0)
        .await
        .unwrap();
    pb::AccessEvent::decode(v.unwrap().as_slice()).unwrap()
}

async fn claim_status(c: &Client, id: &str) -> ClaimStatus {
    let (v, _) = c.query_raw(&keys::claim(id), 0).await.unwrap();
    let status = pb::Claim::decode(v.unwrap().as_slice()).unwrap().status;
    ClaimStatus::try_from(status).unwrap()
}

/// `quantity` units of service `code` at `unit_price` minor units each.
fn item(code: &str, quantity: u64, unit_price: u64) -> ClaimItem {
    ClaimItem {
        service_code: code.into(),
        quantity,
        unit_price,
        modifier: String::new(),
    }
}

/// The insurer approves nothing of a one-item claim, for the reason `note` (hashed: the text
/// stays with the insurer).
fn deny(claim_id: &str, note: &str) -> Msg {
    Msg::DecideClaim(pb::DecideClaim {
        claim_id: claim_id.into(),
        approved_amounts: vec![0],
        note_hash: text_hash(note),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patients_journey_through_the_consortium() {
    let t = TestNet::start().await;
    let c = t.client(0);
    let (hospital, lab, insurer) = (
        t.member_key("hospital-a"),
        t.member_key("lab-b"),
        t.member_key("insurer-c"),
    );
    let alice = SigningKey::from_bytes(&[81; 32]);
    let (doc, nurse, officer, tech) = (
        SigningKey::from_bytes(&[82; 32]),
        SigningKey::from_bytes(&[83; 32]),
        SigningKey::from_bytes(&[84; 32]),
        SigningKey::from_bytes(&[85; 32]),
    );
    assert_eq!(t.chain_id, CHAIN);
    let pid = ids::patient_id(&alice.verifying_key().to_bytes());

    // Identities.
    // hospital-a identified alice and enrols her; her key proves she holds it.
    let enrol = keyproof::enrol_patient(&alice, CHAIN, "hospital-a");
    ok(&c, &hospital, Msg::RegisterPatient(enrol)).await;
    let staff = [
        ("hospital-a", &hospital, &doc, PractitionerRole::Physician),
        ("hospital-a", &hospital, &nurse, PractitionerRole::Nurse),
        ("lab-b", &lab, &officer, PractitionerRole::PrivacyOfficer),
        ("lab-b", &lab, &tech, PractitionerRole::LabTechnician),
    ];
    for (member, admin, k, role) in staff {
        ok(&c, admin, practitioner(member, k, role)).await;
    }

    // Consent to the hospital (treatment), the lab (its results) and the insurer (payment).
    let treat = ok(&c, &alice, grant("hospital-a", &["*"], Purpose::Treat)).await;
    let hospital_consent = treat.attribute("consent_id").unwrap().to_string();
    ok(&c, &alice, grant("lab-b", &["Observation"], Purpose::Treat)).await;
    ok(&c, &alice, grant("insurer-c", &["Claim"], Purpose::Hpaymt)).await;

    // A lab result is anchored by the lab's technician and read by the hospital's physician.
    ok(
        &c,
        &tech,
        Msg::AnchorRecord(pb::AnchorRecord {
            record_id: "lab-result-1".into(),
            patient_id: pid.clone(),
            resource_type: "Observation".into(),
            content_hash: vec![9; 32],
            size: 2048,
            key_id: "lab-vault-7".into(),
            holders: vec![],
            threshold: 0,
            share_commitments: vec![],
        }),
    )
    .await;
    let r = ok(&c, &doc, read(&pid, "lab-result-1", "Observation")).await;
    assert_eq!(r.attribute("consent_id"), Some(hospital_consent.as_str()));
    let visit_index: u64 = r.attribute("index").unwrap().parse().unwrap();
    let (v, _) = c
        .query_raw(&keys::access_event(&pid, visit_index), 0)
        .await
        .unwrap();
    let visit = pb::AccessEvent::decode(v.unwrap().as_slice()).unwrap();

    // The insurer's policy; a covered claim is approved at once and paid.
    let rules = vec![
        CoverageRule {
            service_code: "99213".into(),
            covered: true,
            price_cap: 15_000,
            copay_fixed: 2_000,
            ..Default::default()
        },
        CoverageRule {
            service_code: "97110".into(),
            covered: false,
            ..Default::default()
        },
    ];
    ok(
        &c,
        &insurer,
        Msg::PublishPolicy(pb::PublishPolicy {
            policy_id: "gold".into(),
            rules,
        }),
    )
    .await;
    // The insurer enrols alice in gold; claims need that coverage on the day of service.
    ok(
        &c,
        &insurer,
        Msg::EnrolCoverage(pb::EnrolCoverage {
            patient_id: pid.clone(),
            policy_id: "gold".into(),
            start: 0,
            end: 0,
        }),
    )
    .await;
    let first = ok(
        &c,
        &hospital,
        claim(&pid, vec![item("99213", 1, 12_000)], "lab-result-1", &visit),
    )
    .await;
    let first_id = first.attribute("claim_id").unwrap().to_string();
    assert_eq!(claim_status(&c, &first_id).await, ClaimStatus::Approved);
    // Double billing, as the review replayed it: the same service split into two items.
    let split = |n: usize| (0..n).map(|_| item("99213", 1, 12_000)).collect::<Vec<_>>();
    refused(
        &c,
        &hospital,
        claim(&pid, split(2), "lab-result-1", &visit),
        Code::DuplicateClaim,
    )
    .await;
    ok(
        &c,
        &insurer,
        Msg::PayClaim(pb::PayClaim {
            claim_id: first_id.clone(),
            payment_reference: "wire-001".into(),
        }),
    )
    .await;
    assert_eq!(claim_status(&c, &first_id).await, ClaimStatus::Paid);

    // An uncovered service waits for the insurer, is denied, and is appealed once. It rests on
    // its own visit: each access event backs at most one claim.
    let second_visit = log_visit(&c, &doc, &pid, "lab-result-1").await;
    assert_eq!(
        second_visit.consent_id, hospital_consent,
        "the second visit is under the hospital's consent"
    );
    let second = ok(
        &c,
        &hospital,
        claim(
            &pid,
            vec![item("97110", 2, 5_000)],
            "lab-result-1",
            &second_visit,
        ),
    )
    .await;
    let second_id = second.attribute("claim_id").unwrap().to_string();
    assert_eq!(claim_status(&c, &second_id).await, ClaimStatus::Pending);
    ok(&c, &insurer, deny(&second_id, "not covered")).await;
    assert_eq!(claim_status(&c, &second_id).await, ClaimStatus::Denied);
    let appeal = || {
        Msg::AppealClaim(pb::AppealClaim {
            claim_id: second_id.clone(),
            reason_hash: text_hash("medically necessary"),
        })
    };
    ok(&c, &hospital, appeal()).await;
    assert_eq!(claim_status(&c, &second_id).await, ClaimStatus::Appealed);
    ok(&c, &insurer, deny(&second_id, "upheld")).await;
    let r = c.submit(&hospital, appeal()).await.unwrap();
    assert_ne!(r.code, 0, "a claim is appealed once");

    // Emergency: the nurse reads without going through consent; a privacy officer of another
    // member (the lab) reviews it. Reason and note stay with the members; the chain holds hashes.
    let bg = ok(
        &c,
        &nurse,
        Msg::LogBreakGlass(pb::LogBreakGlass {
            patient_id: pid.clone(),
            record_id: "ecg-1".into(),
            data_class: "Observation".into(),
            reason_hash: text_hash("cardiac arrest in ER"),
        }),
    )
    .await;
    let index: u64 = bg.attribute("index").unwrap().parse().unwrap();
    ok(
        &c,
        &officer,
        Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
            patient_id: pid.clone(),
            event_index: index,
            justified: true,
            note_hash: text_hash("ER protocol"),
        }),
    )
    .await;

    // Alice revokes the hospital's consent: its next read is refused.
    ok(
        &c,
        &alice,
        Msg::RevokeConsent(pb::RevokeConsent {
            consent_id: hospital_consent,
        }),
    )
    .await;
    refused(
        &c,
        &doc,
        read(&pid, "lab-result-1", "Observation"),
        Code::NoPermittingConsent,
    )
    .await;

    // Erasure: the lab result can no longer be read by anyone, even under the lab's consent.
    ok(
        &c,
        &alice,
        Msg::EraseRecord(pb::EraseRecord {
            record_id: "lab-result-1".into(),
            reason_hash: text_hash("right to be forgotten"),
        }),
    )
    .await;
    refused(
        &c,
        &tech,
        read(&pid, "lab-result-1", "Observation"),
        Code::RecordErased,
    )
    .await;

    // The whole history is there, complete and proven on another node: the physician's 2 reads
    // and the break-glass read.
    let count = t
        .client(3)
        .query_proven(&keys::access_count(&pid), 0)
        .await
        .unwrap();
    assert_eq!(count.value.as_deref().and_then(keys::decode_u64), Some(3));

    // An auditor checks the paid claim with one BLS certificate, and the ledger's decisions on
    // two accesses from proven consents.
    use medledger_client::verify::{verify_key, verify_permitted, PermittedQuery, Trust};
    let genesis = t.net.dir.join("hospital-a/cometbft/config/genesis.json");
    let certs = Trust::from_genesis(&genesis, true).unwrap();
    let paid = verify_key(&t.client(2), &certs, &keys::claim(&first_id), 0)
        .await
        .unwrap();
    assert_eq!(
        pb::Claim::decode(paid.value.unwrap().as_slice())
            .unwrap()
            .status,
        ClaimStatus::Paid as i32
    );
    let headers = Trust::from_genesis(&genesis, false).unwrap();
    let ask = |actor: String| PermittedQuery {
        patient: pid.clone(),
        actor,
        action: pb::Action::Read as i32,
        data_class: "Observation".into(),
        record_id: String::new(),
        purpose: Purpose::Treat as i32,
    };
    let (doc_decision, _, _) = verify_permitted(
        &c,
        &headers,
        ask(ids::practitioner_did(&doc.verifying_key().to_bytes())),
        0,
    )
    .await
    .unwrap();
    assert_eq!(doc_decision, None, "the hospital's consent was revoked");
    let (tech_decision, _, _) = verify_permitted(
        &c,
        &headers,
        ask(ids::practitioner_did(&tech.verifying_key().to_bytes())),
        0,
    )
    .await
    .unwrap();
    assert!(
        tech_decision.is_some(),
        "the lab's consent still permits its technician"
    );
}

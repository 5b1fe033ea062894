//! List digests (issue 28): a patient's whole access history, consents and records verify with
//! one proof of the list's digest and the entries read without proofs; a missing, extra,
//! reordered or altered entry is refused, and a break-glass review is proven by its own event.

#![allow(clippy::unwrap_used)]

use medledger_query::history::{
    verify_access_digest, verify_list_digest, HistoryError, ProvenRead,
};
use medledger_tx::digest::ListDigest;
use medledger_tx::keys::{self, List};
use medledger_tx::pb::{self, tx_body::Msg, AccessEvent, PractitionerRole, Purpose, ReviewStatus};
use prost::Message;

use crate::common::*;

/// A consent to `grantee` for every class, for treatment.
fn grant_all(grantee: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec!["*".into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

/// The committed app hash and proven reads of `keys` at the last committed height.
fn prove(c: &Chain, key: &[u8]) -> (Vec<u8>, ProvenRead) {
    let at = c.ledger().info().unwrap();
    let (value, proof) = c.ledger().store().prove(key, at.height).unwrap();
    (
        at.app_hash.to_vec(),
        ProvenRead {
            key: key.to_vec(),
            value,
            proof,
        },
    )
}

fn values(c: &Chain, list: &List<'_>) -> Vec<Vec<u8>> {
    let n = c
        .ledger()
        .store()
        .get(&list.count_key())
        .unwrap()
        .map_or(0, |v| keys::decode_u64(&v).unwrap());
    (0..n)
        .map(|i| c.ledger().store().get(&list.entry_key(i)).unwrap().unwrap())
        .collect()
}

#[test]
fn a_whole_access_history_verifies_with_one_proof_and_refuses_every_tampering() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    c.enrol(&alice);
    c.ok(&alice, grant_all("hospital-a"));
    for r in ["obs-1", "obs-2", "obs-3"] {
        c.ok(&admin(0), anchor_as(r, &pid, "Observation"));
        c.ok(&admin(0), read(&pid, r, "Observation"));
    }
    let history = List::Access(&pid);
    let (app_hash, digest) = prove(&c, &history.digest_key().unwrap());
    let v = values(&c, &history);
    let events = verify_access_digest(&app_hash, &pid, &digest, &v, &[]).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| e.record_id.as_str())
            .collect::<Vec<_>>(),
        ["obs-1", "obs-2", "obs-3"]
    );
    // The patient's records list verifies the same way.
    let records = List::PatientRecords(&pid);
    let (_, rd) = prove(&c, &records.digest_key().unwrap());
    assert_eq!(
        verify_list_digest(&app_hash, &records, &rd, &values(&c, &records)).unwrap(),
        3
    );

    // Dropped, added, reordered or altered events are each refused.
    let incomplete = |r: Result<Vec<AccessEvent>, HistoryError>| {
        assert!(matches!(r, Err(HistoryError::Incomplete(_))), "{r:?}")
    };
    incomplete(verify_access_digest(&app_hash, &pid, &digest, &v[..2], &[]));
    let mut extra = v.clone();
    extra.push(v[2].clone());
    incomplete(verify_access_digest(&app_hash, &pid, &digest, &extra, &[]));
    let swapped = vec![v[1].clone(), v[0].clone(), v[2].clone()];
    incomplete(verify_access_digest(
        &app_hash,
        &pid,
        &digest,
        &swapped,
        &[],
    ));
    let mut altered = v.clone();
    let mut e = AccessEvent::decode(v[2].as_slice()).unwrap();
    e.actor = "lab-b".into();
    altered[2] = e.encode_to_vec();
    incomplete(verify_access_digest(
        &app_hash,
        &pid,
        &digest,
        &altered,
        &[],
    ));
    // A digest of another key, or a digest value that is not the proven one, is refused.
    let (_, other) = prove(&c, &List::PatientConsents(&pid).digest_key().unwrap());
    incomplete(verify_access_digest(&app_hash, &pid, &other, &v, &[]));
    let mut forged = digest.clone();
    forged.value = Some(
        ListDigest::of(&history, altered.iter().map(Vec::as_slice))
            .unwrap()
            .encode(),
    );
    assert!(matches!(
        verify_access_digest(&app_hash, &pid, &forged, &altered, &[]),
        Err(HistoryError::Proof { .. })
    ));
}

#[test]
fn a_break_glass_review_is_proven_by_its_own_event() {
    let mut c = Chain::new();
    let alice = key(1);
    let pid = patient_id(&alice);
    c.enrol(&alice);
    c.ok(&admin(0), anchor_as("psy-1", &pid, "PsychiatricNote"));
    let (doc, officer) = (key(20), key(31));
    c.ok(
        &admin(0),
        register_practitioner_for(0, &doc, PractitionerRole::Physician, 0),
    );
    c.ok(
        &admin(2),
        register_practitioner_for(2, &officer, PractitionerRole::PrivacyOfficer, 0),
    );
    c.ok(&doc, break_glass_as(&pid, "psy-1", "PsychiatricNote"));
    let history = List::Access(&pid);
    let digest_before = c
        .ledger()
        .store()
        .get(&history.digest_key().unwrap())
        .unwrap();
    c.ok(&officer, review(&pid, 0, true));
    // The review changed the event, not the digest.
    assert_eq!(
        c.ledger()
            .store()
            .get(&history.digest_key().unwrap())
            .unwrap(),
        digest_before
    );
    let (app_hash, digest) = prove(&c, &history.digest_key().unwrap());
    let v = values(&c, &history);
    // Without the event's own proof, the review status is not taken on trust.
    assert!(matches!(
        verify_access_digest(&app_hash, &pid, &digest, &v, &[]),
        Err(HistoryError::Incomplete(_))
    ));
    // A relayed value that claims "pending" is overruled by the proven review.
    let mut claimed = AccessEvent::decode(v[0].as_slice()).unwrap();
    claimed.review = ReviewStatus::Pending as i32;
    claimed.reviewer.clear();
    let (_, own) = prove(&c, &keys::access_event(&pid, 0));
    let events =
        verify_access_digest(&app_hash, &pid, &digest, &[claimed.encode_to_vec()], &[own]).unwrap();
    assert_eq!(events[0].review, ReviewStatus::Justified as i32);
    assert_eq!(events[0].reviewer, did(&officer));
}

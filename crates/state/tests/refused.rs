//! Refused access attempts (issue 27 point 5): a LogAccess that no consent permits, signed by a
//! known member admin or active practitioner, is recorded in the patient's proven list
//! `refused/{patient}/…` with its code and reason; nobody else writes there, the list is bounded
//! per patient and per block (the rest counted in `refused/{patient}/dropped`), and a permitted
//! read writes nothing there.

#![allow(clippy::unwrap_used)]

use medledger_query::history::{verify_list_digest, ProvenRead};
use medledger_state::view::StateRead;
use medledger_tx::keys::{self, List};
use medledger_tx::limits::{MAX_REFUSED_PER_BLOCK, MAX_REFUSED_PER_PATIENT_PER_BLOCK};
use medledger_tx::pb::{
    self, tx_body::Msg, Action, PractitionerRole, Purpose, RefusalReason, RefusedAttempt,
};
use medledger_tx::Code;

use crate::common::*;

const LAB: usize = 1;

fn grant(grantee: &str, classes: &[&str], not_after: u64) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: classes.iter().map(|c| c.to_string()).collect(),
        purposes: vec![Purpose::Treat as i32],
        not_after,
        ..Default::default()
    })
}

fn revoke(id: &str) -> Msg {
    Msg::RevokeConsent(pb::RevokeConsent {
        consent_id: id.into(),
    })
}

fn count(c: &Chain, pid: &str) -> u64 {
    c.ledger()
        .store()
        .get_u64(&List::Refused(pid).count_key())
        .unwrap()
}

fn dropped(c: &Chain, pid: &str) -> u64 {
    c.ledger()
        .store()
        .get_u64(&keys::refused_dropped(pid))
        .unwrap()
}

fn attempts(c: &Chain, pid: &str) -> Vec<RefusedAttempt> {
    (0..count(c, pid))
        .map(|n| c.get(&List::Refused(pid).entry_key(n)).unwrap())
        .collect()
}

fn values(c: &Chain, list: &List<'_>) -> Vec<Vec<u8>> {
    let n = c.ledger().store().get_u64(&list.count_key()).unwrap();
    (0..n)
        .map(|i| c.ledger().store().get(&list.entry_key(i)).unwrap().unwrap())
        .collect()
}

/// Patient alice (enrolled by hospital-a), and lab-b's technician.
fn world() -> (Chain, String, ed25519_dalek::SigningKey) {
    let mut c = Chain::new();
    let alice = key(1);
    c.enrol(&alice);
    let tech = key(23);
    c.ok(
        &admin(LAB),
        register_practitioner_for(LAB, &tech, PractitionerRole::LabTechnician, 0),
    );
    (c, patient_id(&alice), tech)
}

#[test]
fn a_refused_read_by_a_member_is_recorded_with_its_code_and_reason() {
    let (mut c, pid, tech) = world();
    let alice = key(1);
    // No consent at all: lab-b's admin key.
    let h = c.height;
    let t = c.time;
    assert_eq!(
        c.send(&admin(LAB), read(&pid, "obs-1", "Observation")),
        Code::NoPermittingConsent.value()
    );
    let a = &attempts(&c, &pid)[0];
    assert_eq!(
        a,
        &RefusedAttempt {
            patient_id: pid.clone(),
            index: 0,
            actor: "lab-b".into(),
            practitioner: String::new(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            action: Action::Read as i32,
            code: Code::NoPermittingConsent.value(),
            reason: RefusalReason::NoConsent as i32,
            consent_id: String::new(),
            height: h,
            time: t,
        }
    );
    // A consent for another class: not covered; the practitioner is named.
    c.ok(&alice, grant("lab-b", &["Observation"], 0));
    assert_eq!(
        c.send(&tech, read(&pid, "cond-1", "Condition")),
        Code::NoPermittingConsent.value()
    );
    let a = &attempts(&c, &pid)[1];
    assert_eq!(a.index, 1);
    assert_eq!(a.reason, RefusalReason::NotCovered as i32);
    assert_eq!(a.actor, "lab-b");
    assert_eq!(a.practitioner, did(&tech));
    assert_eq!(a.data_class, "Condition");
    // The covering consent, revoked: the reason names it.
    c.ok(&alice, revoke("c-1"));
    assert_eq!(
        c.send(&admin(LAB), read(&pid, "obs-2", "Observation")),
        Code::NoPermittingConsent.value()
    );
    let a = &attempts(&c, &pid)[2];
    assert_eq!(a.reason, RefusalReason::ConsentRevoked as i32);
    assert_eq!(a.consent_id, "c-1");
    // A consent whose period ended.
    let until = c.time + 6;
    c.ok(&alice, grant("hospital-d", &["*"], until));
    assert_eq!(c.send(&admin(3), read(&pid, "obs-3", "Observation")), 0);
    c.block(vec![]);
    assert_eq!(
        c.send(&admin(3), read(&pid, "obs-4", "Observation")),
        Code::NoPermittingConsent.value()
    );
    let a = &attempts(&c, &pid)[3];
    assert_eq!(a.reason, RefusalReason::ConsentExpired as i32);
    assert_eq!(a.consent_id, "c-2");
    assert_eq!(a.actor, "hospital-d");
    assert_eq!(count(&c, &pid), 4);
    assert_eq!(dropped(&c, &pid), 0);
    // The refused tx consumed its sequence: the same signed bytes cannot come back.
    let again = c.tx_at(
        &admin(LAB),
        c.committed_sequence(&admin(LAB)) - 1,
        read(&pid, "obs-2", "Observation"),
    );
    let r = c.block(vec![again]);
    assert_eq!(r.tx_results[0].code, Code::SequenceReused.value());
    assert_eq!(count(&c, &pid), 4, "a replay writes nothing");
}

#[test]
fn unknown_keys_and_other_refusals_write_nothing() {
    let (mut c, pid, tech) = world();
    // A key the ledger does not know.
    let outsider = key(77);
    assert_eq!(
        c.send(&outsider, read(&pid, "obs-1", "Observation")),
        Code::UnknownSigner.value()
    );
    // A suspended practitioner is refused before any consent is asked.
    c.ok(
        &admin(LAB),
        Msg::SetPractitionerStatus(pb::SetPractitionerStatus {
            did: did(&tech),
            status: pb::PractitionerStatus::Suspended as i32,
            reason_hash: vec![7; 32],
        }),
    );
    assert_eq!(
        c.send(&tech, read(&pid, "obs-1", "Observation")),
        Code::PractitionerInactive.value()
    );
    // A patient the ledger does not know has no list to fill.
    let ghost = patient_id(&key(78));
    assert_ne!(c.send(&admin(LAB), read(&ghost, "obs-1", "Observation")), 0);
    assert_eq!(count(&c, &ghost), 0);
    // A break-glass by a member's admin key is refused as not a practitioner's: not recorded.
    assert_eq!(
        c.send(&admin(LAB), break_glass_as(&pid, "obs-1", "Observation")),
        Code::NotAuthorized.value()
    );
    assert_eq!(count(&c, &pid), 0);
    assert_eq!(dropped(&c, &pid), 0);
    for k in [
        List::Refused(&pid).digest_key().unwrap(),
        keys::refused_dropped(&pid),
        keys::refused_block(),
    ] {
        assert_eq!(c.ledger().store().get(&k).unwrap(), None);
    }
}

#[test]
fn a_permitted_read_writes_nothing_there() {
    let (mut c, pid, tech) = world();
    c.ok(&key(1), grant("lab-b", &["*"], 0));
    assert_eq!(c.send(&tech, read(&pid, "obs-1", "Observation")), 0);
    assert_eq!(c.send(&admin(LAB), read(&pid, "obs-2", "Observation")), 0);
    assert_eq!(count(&c, &pid), 0);
    assert_eq!(
        c.ledger().store().get(&keys::refused_block()).unwrap(),
        None
    );
}

#[test]
fn the_per_patient_bound_holds_and_the_dropped_counter_counts() {
    let (mut c, pid, tech) = world();
    let extra = 3;
    let txs: Vec<_> = (0..MAX_REFUSED_PER_PATIENT_PER_BLOCK + extra)
        .map(|i| {
            let k = if i % 2 == 0 { admin(LAB) } else { tech.clone() };
            c.tx(&k, read(&pid, &format!("obs-{i}"), "Observation"))
        })
        .collect();
    let r = c.block(txs);
    assert!(r
        .tx_results
        .iter()
        .all(|t| t.code == Code::NoPermittingConsent.value()));
    assert_eq!(count(&c, &pid), MAX_REFUSED_PER_PATIENT_PER_BLOCK);
    assert_eq!(dropped(&c, &pid), extra);
    // The first ones of the block are kept, in tx order.
    let kept: Vec<_> = attempts(&c, &pid)
        .into_iter()
        .map(|a| a.record_id)
        .collect();
    let expected: Vec<_> = (0..MAX_REFUSED_PER_PATIENT_PER_BLOCK)
        .map(|i| format!("obs-{i}"))
        .collect();
    assert_eq!(kept, expected);
    // The next block records again.
    assert_eq!(
        c.send(&admin(LAB), read(&pid, "obs-next", "Observation")),
        Code::NoPermittingConsent.value()
    );
    assert_eq!(count(&c, &pid), MAX_REFUSED_PER_PATIENT_PER_BLOCK + 1);
    assert_eq!(dropped(&c, &pid), extra);
}

#[test]
fn the_per_block_bound_holds_over_all_patients() {
    let mut c = Chain::new();
    let per = MAX_REFUSED_PER_PATIENT_PER_BLOCK;
    let patients = MAX_REFUSED_PER_BLOCK / per + 2;
    let pids: Vec<String> = (0..patients)
        .map(|i| {
            let k = key(130 + i as u8);
            c.enrol(&k);
            patient_id(&k)
        })
        .collect();
    let mut txs = Vec::new();
    for pid in &pids {
        for i in 0..per {
            txs.push(c.tx(&admin(LAB), read(pid, &format!("obs-{i}"), "Observation")));
        }
    }
    let r = c.block(txs);
    assert!(r
        .tx_results
        .iter()
        .all(|t| t.code == Code::NoPermittingConsent.value()));
    let recorded: u64 = pids.iter().map(|p| count(&c, p)).sum();
    let lost: u64 = pids.iter().map(|p| dropped(&c, p)).sum();
    assert_eq!(recorded, MAX_REFUSED_PER_BLOCK);
    assert_eq!(lost, patients * per - MAX_REFUSED_PER_BLOCK);
    // The last patients of the block got nothing recorded, and know how many were lost.
    assert_eq!(count(&c, pids.last().unwrap()), 0);
    assert_eq!(dropped(&c, pids.last().unwrap()), per);
    // A new block starts a new count.
    assert_eq!(
        c.send(
            &admin(LAB),
            read(pids.last().unwrap(), "obs-x", "Observation")
        ),
        Code::NoPermittingConsent.value()
    );
    assert_eq!(count(&c, pids.last().unwrap()), 1);
}

#[test]
fn the_list_is_proven_by_its_digest() {
    let (mut c, pid, tech) = world();
    for (k, r) in [
        (admin(LAB), "obs-1"),
        (tech.clone(), "obs-2"),
        (admin(3), "obs-3"),
    ] {
        assert_eq!(
            c.send(&k, read(&pid, r, "Observation")),
            Code::NoPermittingConsent.value()
        );
    }
    let list = List::Refused(&pid);
    let at = c.ledger().info().unwrap();
    let key = list.digest_key().unwrap();
    let app_hash = at.app_hash.to_vec();
    let (value, proof) = c.ledger().store().prove(&key, at.height).unwrap();
    let proven = ProvenRead { key, value, proof };
    let v = values(&c, &list);
    assert_eq!(
        verify_list_digest(&app_hash, &list, &proven, &v).unwrap(),
        3
    );
    // A dropped, reordered or altered entry fails.
    assert!(verify_list_digest(&app_hash, &list, &proven, &v[..2]).is_err());
    let swapped = vec![v[1].clone(), v[0].clone(), v[2].clone()];
    assert!(verify_list_digest(&app_hash, &list, &proven, &swapped).is_err());
    let mut altered = v.clone();
    let mut a: RefusedAttempt = prost::Message::decode(altered[2].as_slice()).unwrap();
    a.actor = "hospital-a".into();
    altered[2] = prost::Message::encode_to_vec(&a);
    assert!(verify_list_digest(&app_hash, &list, &proven, &altered).is_err());
}

#[test]
fn the_refused_tx_says_so_in_its_event_recorded_or_not() {
    let (mut c, pid, _) = world();
    let txs: Vec<_> = (0..=MAX_REFUSED_PER_PATIENT_PER_BLOCK)
        .map(|i| c.tx(&admin(LAB), read(&pid, &format!("obs-{i}"), "Observation")))
        .collect();
    let r = c.block(txs);
    let attrs = |i: usize| {
        let t = &r.tx_results[i];
        assert_eq!(t.code, Code::NoPermittingConsent.value(), "{}", t.log);
        assert_eq!(t.events.len(), 1);
        assert_eq!(t.events[0].kind, "medledger.access.refused");
        t.events[0]
            .attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let first = attrs(0);
    assert_eq!(first["patient_id"], pid);
    assert_eq!(first["actor"], "lab-b");
    assert_eq!(first["record_id"], "obs-0");
    assert_eq!(first["reason"], "REFUSAL_REASON_NO_CONSENT");
    assert_eq!(first["recorded"], "true");
    assert_eq!(first["index"], "0");
    let last = attrs(MAX_REFUSED_PER_PATIENT_PER_BLOCK as usize);
    assert_eq!(last["recorded"], "false");
    assert!(!last.contains_key("index"));
    // An outsider's refused tx carries no event.
    let r = c.block(vec![c.tx_at(
        &key(77),
        0,
        read(&pid, "obs-9", "Observation"),
    )]);
    assert_eq!(r.tx_results[0].code, Code::UnknownSigner.value());
    assert!(r.tx_results[0].events.is_empty());
}

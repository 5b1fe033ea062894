//! Unordered transactions: many in flight from one key without sequence numbers, each applied
//! at most once (a nonce remembered until the tx's `valid_until`), only for messages that
//! commute, and the nonce set forgotten as it expires.

#![allow(clippy::unwrap_used)]

use medledger_state::view::StateRead;
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use medledger_tx::{keys, Code};

use crate::common::*;

const HOSP: usize = 0;

fn grant_observations() -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: MEMBERS[HOSP].0.into(),
        data_classes: vec!["Observation".into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

/// A chain where patient `key(1)` lets hospital-a read Observations for treatment.
fn chain_with_consent() -> (Chain, String) {
    let mut c = Chain::new();
    let p = key(1);
    c.enrol(&p);
    c.ok(&p, grant_observations());
    (c, patient_id(&p))
}

fn codes(r: &medledger_state::BlockResult) -> Vec<u32> {
    r.tx_results.iter().map(|t| t.code).collect()
}

#[test]
fn one_key_sends_many_unordered_txs_in_any_order_and_each_applies_once() {
    let (mut c, patient) = chain_with_consent();
    let until = c.time + 30;
    let txs: Vec<Vec<u8>> = (0..20u8)
        .map(|n| {
            c.unordered(
                &admin(HOSP),
                n,
                until,
                read(&patient, &format!("obs-{n}"), "Observation"),
            )
        })
        .collect();
    let before = c.committed_sequence(&admin(HOSP));
    // Reversed order, split over two blocks: no sequence to keep.
    let mut reversed = txs.clone();
    reversed.reverse();
    let second = reversed.split_off(10);
    assert_eq!(codes(&c.block(reversed)), vec![0; 10]);
    // The second block carries a copy of an applied tx: refused, never applied twice.
    let mut block = second;
    block.push(txs[15].clone());
    let r = c.block(block);
    assert_eq!(&codes(&r)[..10], &[0; 10]);
    assert_eq!(r.tx_results[10].code, Code::NonceReused as u32);
    assert_eq!(
        c.ledger()
            .store()
            .get_u64(&keys::access_count(&patient))
            .unwrap(),
        20
    );
    // Unordered txs leave the ordered sequence alone: ordered txs interleave freely.
    assert_eq!(c.committed_sequence(&admin(HOSP)), before);
    let ordered = c.tx(&admin(HOSP), read(&patient, "obs-ordered", "Observation"));
    assert_eq!(codes(&c.block(vec![ordered])), vec![0]);
}

#[test]
fn a_copy_within_one_block_is_refused_and_check_tx_refuses_a_committed_copy() {
    let (mut c, patient) = chain_with_consent();
    let tx = c.unordered(
        &admin(HOSP),
        7,
        c.time + 30,
        read(&patient, "obs-1", "Observation"),
    );
    let r = c.block(vec![tx.clone(), tx.clone()]);
    assert_eq!(codes(&r), vec![0, Code::NonceReused as u32]);
    assert_eq!(
        c.ledger_mut().check_tx(&tx).unwrap_err().code,
        Code::NonceReused,
        "a resubmission of an applied tx is refused before the mempool"
    );
    // The same nonce with another body is the same pair: refused too.
    let other = c.unordered(
        &admin(HOSP),
        7,
        c.time + 30,
        read(&patient, "obs-2", "Observation"),
    );
    assert_eq!(
        c.ledger_mut().check_tx(&other).unwrap_err().code,
        Code::NonceReused
    );
}

#[test]
fn a_tx_refused_by_its_rules_still_uses_its_nonce() {
    // Without a consent the read is refused; the same signed bytes must never apply later,
    // once a consent exists (a validator holding them cannot replay a refused access log).
    let mut c = Chain::new();
    let p = key(1);
    c.enrol(&p);
    let patient = patient_id(&p);
    let tx = c.unordered(
        &admin(HOSP),
        1,
        c.time + 50,
        read(&patient, "obs-1", "Observation"),
    );
    assert_eq!(
        codes(&c.block(vec![tx.clone()])),
        vec![Code::NoPermittingConsent as u32]
    );
    c.ok(&p, grant_observations());
    assert_eq!(codes(&c.block(vec![tx])), vec![Code::NonceReused as u32]);
    assert_eq!(
        c.ledger()
            .store()
            .get_u64(&keys::access_count(&patient))
            .unwrap(),
        0
    );
}

#[test]
fn the_validity_window_is_enforced_by_the_block_and_by_check_tx() {
    let (mut c, patient) = chain_with_consent();
    let now = c.time;
    let expired = c.unordered(&admin(HOSP), 1, now - 1, read(&patient, "a", "Observation"));
    let too_far = c.unordered(
        &admin(HOSP),
        2,
        now + 61,
        read(&patient, "b", "Observation"),
    );
    let edge_late = c.unordered(
        &admin(HOSP),
        3,
        now + 60,
        read(&patient, "c", "Observation"),
    );
    let edge_now = c.unordered(&admin(HOSP), 4, now, read(&patient, "d", "Observation"));
    let w = Code::OutsideValidityWindow as u32;
    assert_eq!(
        codes(&c.block(vec![expired.clone(), too_far, edge_late, edge_now])),
        vec![w, w, 0, 0]
    );
    // CheckTx uses the last block's time (`now`): the expired tx never reaches the mempool.
    assert_eq!(
        c.ledger_mut().check_tx(&expired).unwrap_err().code,
        Code::OutsideValidityWindow
    );
    // A refusal by the window writes nothing: the nonce stays free.
    let retry = c.unordered(
        &admin(HOSP),
        1,
        c.time + 30,
        read(&patient, "a", "Observation"),
    );
    assert_eq!(codes(&c.block(vec![retry])), vec![0]);
}

#[test]
fn ordered_only_messages_and_outsiders_are_refused_unordered() {
    let (mut c, _) = chain_with_consent();
    let p = key(1);
    let grant = c.unordered(&p, 1, c.time + 30, grant_observations());
    assert_eq!(
        c.ledger_mut().check_tx(&grant).unwrap_err().code,
        Code::UnorderedNotAllowed
    );
    assert_eq!(
        codes(&c.block(vec![grant])),
        vec![Code::UnorderedNotAllowed as u32]
    );
    // An unknown key gains nothing by dropping the sequence: refused, and writes nothing.
    let outsider = key(99);
    let patient = patient_id(&p);
    let tx = c.unordered(
        &outsider,
        1,
        c.time + 30,
        read(&patient, "x", "Observation"),
    );
    assert_eq!(
        c.ledger_mut().check_tx(&tx).unwrap_err().code,
        Code::UnknownSigner
    );
    assert_eq!(codes(&c.block(vec![tx])), vec![Code::UnknownSigner as u32]);
    assert!(c
        .ledger()
        .store()
        .get(&keys::nonce(&pk(&outsider), &[1; 16]))
        .unwrap()
        .is_none());
}

#[test]
fn the_nonce_set_is_forgotten_once_expired_so_it_stays_bounded() {
    let (mut c, patient) = chain_with_consent();
    let until = c.time + 7;
    let txs: Vec<Vec<u8>> = (0..5u8)
        .map(|n| {
            c.unordered(
                &admin(HOSP),
                n,
                until,
                read(&patient, &format!("r{n}"), "Observation"),
            )
        })
        .collect();
    assert_eq!(codes(&c.block(txs.clone())), vec![0; 5]);
    let pair = keys::nonce(&pk(&admin(HOSP)), &[0; 16]);
    assert!(c.ledger().store().get(&pair).unwrap().is_some());
    // Blocks are 5 s apart: at +10 s the pairs (valid until +7 s) are forgotten.
    c.block(vec![]);
    assert!(
        c.ledger().store().get(&pair).unwrap().is_some(),
        "still valid at +5 s"
    );
    c.block(vec![]);
    assert!(c.ledger().store().get(&pair).unwrap().is_none());
    assert!(c
        .ledger()
        .store()
        .get(&keys::nonce_expiry_count(until))
        .unwrap()
        .is_none());
    // A copy now is refused by the window, so forgetting never lets a replay through.
    assert_eq!(
        codes(&c.block(vec![txs[0].clone()])),
        vec![Code::OutsideValidityWindow as u32]
    );
}

/// Attack 4 (issue 23): a replayed unordered tx was admitted after a node restart, because the
/// ledger forgot the last block's time and CheckTx skipped the window. The time is now kept with
/// the committed state and loaded on open.
#[test]
fn a_reopened_ledger_refuses_an_expired_unordered_tx_at_check_tx() {
    let (mut c, patient) = chain_with_consent();
    let last = c.time - 5; // the last committed block's time
    let expired = c.unordered(
        &admin(HOSP),
        1,
        last - 1,
        read(&patient, "a", "Observation"),
    );
    let too_far = c.unordered(
        &admin(HOSP),
        2,
        last + 61,
        read(&patient, "b", "Observation"),
    );
    let fine = c.unordered(
        &admin(HOSP),
        3,
        last + 30,
        read(&patient, "c", "Observation"),
    );
    let info = c.ledger().info();
    c.reopen();
    assert_eq!(c.ledger().info(), info, "Info reports the same commit");
    for tx in [&expired, &too_far] {
        assert_eq!(
            c.ledger_mut().check_tx(tx).unwrap_err().code,
            Code::OutsideValidityWindow
        );
    }
    c.ledger_mut().check_tx(&fine).unwrap();
    // A restart between two blocks changes nothing: the next block applies it.
    assert_eq!(codes(&c.block(vec![fine])), vec![0]);
}

/// A ledger that has committed no block has no clock to check a window against: it refuses
/// every unordered tx at CheckTx, with a message saying why, until its first block.
#[test]
fn a_ledger_with_no_block_yet_refuses_unordered_txs_at_check_tx() {
    let mut c = Chain::new();
    let p = key(1);
    let tx = c.unordered(
        &admin(HOSP),
        1,
        c.time + 30,
        read(&patient_id(&p), "a", "Observation"),
    );
    let e = c.ledger_mut().check_tx(&tx).unwrap_err();
    assert_eq!(e.code, Code::OutsideValidityWindow);
    assert!(e.message.contains("block time"), "{}", e.message);
    // After a restart, still none.
    c.reopen();
    assert_eq!(
        c.ledger_mut().check_tx(&tx).unwrap_err().code,
        Code::OutsideValidityWindow
    );
    // Ordered txs are admitted; after the first block unordered ones are too.
    let ordered = c.tx(&admin(HOSP), enrol(&p));
    c.ledger_mut().check_tx(&ordered).unwrap();
    c.block(vec![ordered]);
    let patient = patient_id(&p);
    let read = c.unordered(
        &admin(HOSP),
        2,
        c.time + 30,
        read(&patient, "a", "Observation"),
    );
    c.ledger_mut().check_tx(&read).unwrap();
}

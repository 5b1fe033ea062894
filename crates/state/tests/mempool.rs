//! CheckTx's mempool lanes: patients and practitioners are rationed per node, so a flood from
//! their keys cannot crowd members out of the mempool (issue 15, "members are not starved").

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use medledger_state::lanes::{PATIENT_LANE, PATIENT_SIGNER};
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use medledger_tx::Code;

fn grant_to(member: usize, class: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: MEMBERS[member].0.into(),
        data_classes: vec![class.into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

#[test]
fn a_flooding_patient_key_is_held_to_its_share_while_members_are_admitted() {
    let mut c = Chain::new();
    let flooder = key(1);
    c.enrol(&flooder);
    c.ok(&flooder, grant_to(0, "Observation"));
    let patient = patient_id(&flooder);
    let flood: Vec<Vec<u8>> = (0..PATIENT_SIGNER + 4)
        .map(|i| c.tx(&flooder, grant_to((i % 4) as usize, "Immunization")))
        .collect();
    let codes: Vec<Option<Code>> = flood
        .iter()
        .map(|t| c.ledger_mut().check_tx(t).err().map(|e| e.code))
        .collect();
    let admitted = PATIENT_SIGNER as usize;
    assert!(codes[..admitted].iter().all(Option::is_none), "{codes:?}");
    assert_eq!(codes[admitted], Some(Code::MempoolLaneFull));
    // A member's reads are admitted however many the patient keeps pending.
    for n in 0..200u8 {
        let read = c.unordered(
            &admin(0),
            n,
            c.time + 30,
            read(&patient, &format!("o{n}"), "Observation"),
        );
        c.ledger_mut().check_tx(&read).unwrap();
    }
    // A block carries the pending txs: the patient's next tx is admitted again.
    let r = c.block(flood[..admitted].to_vec());
    assert!(r.tx_results.iter().all(|t| t.code == 0));
    c.ledger_mut().check_tx(&flood[admitted]).unwrap();
}

#[test]
fn many_patient_keys_together_fill_only_the_patient_lane() {
    let mut c = Chain::new();
    // Enough patients that their shares add up past the lane: 20 × 16 > 256.
    let keys: Vec<_> = (0..20u8).map(|i| key(10 + i)).collect();
    for k in &keys {
        c.enrol(k);
    }
    let mut admitted = 0u64;
    let mut lane_full = 0u64;
    for k in &keys {
        for i in 0..PATIENT_SIGNER {
            let tx = c.tx(k, grant_to((i % 4) as usize, "Immunization"));
            match c.ledger_mut().check_tx(&tx) {
                Ok(()) => admitted += 1,
                Err(e) if e.code == Code::MempoolLaneFull => lane_full += 1,
                Err(e) if e.code == Code::SequenceGap => {} // after its own refusal
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert_eq!(admitted, PATIENT_LANE);
    assert!(lane_full > 0);
    // Members are still admitted (CheckTx does not evaluate consent; the block does).
    let patient = patient_id(&keys[0]);
    let read = c.unordered(
        &admin(0),
        1,
        c.time + 30,
        read(&patient, "o", "Observation"),
    );
    c.ledger_mut().check_tx(&read).unwrap();
}

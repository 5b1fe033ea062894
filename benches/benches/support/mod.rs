//! The benches' workload: members enrolling new patients, the tx that writes the most new state
//! (a patient, a key owner, the member's enrolment quota). A member enrols at most
//! `MAX_ENROLMENTS_PER_BLOCK` patients per block, so the bench genesis has enough members for
//! the biggest block measured.

#![allow(dead_code, clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use medledger_state::view::StateRead;
use medledger_state::Ledger;
use medledger_tx::limits::MAX_ENROLMENTS_PER_BLOCK;
use medledger_tx::pb::{tx_body::Msg, TxBody};
use medledger_tx::{keyproof, keys, sign_tx};

/// Members in the bench genesis: 80 × 64 enrolments cover a block of 5,000.
pub const BENCH_MEMBERS: usize = 80;

/// Admin key of bench member `i`.
pub fn member_key(i: usize) -> SigningKey {
    let mut seed = [0xbe; 32];
    seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
    SigningKey::from_bytes(&seed)
}

/// Id of bench member `i`.
pub fn member_id(i: usize) -> String {
    format!("bench-m{i}")
}

/// The genesis app state with the bench members (hospitals).
pub fn genesis() -> Vec<u8> {
    let members: Vec<_> = (0..BENCH_MEMBERS)
        .map(|i| {
            serde_json::json!({"id": member_id(i), "name": member_id(i), "kind": "hospital",
                "admin_key": hex::encode(member_key(i).verifying_key().to_bytes())})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "members": members })).unwrap()
}

/// `n` enrolments of fresh patients (`salt` keeps batches apart), spread over the members
/// within their per-block quota, at the members' next sequences in `ledger`'s committed state.
pub fn enrol_txs(ledger: &Ledger, chain: &str, n: usize, salt: u64) -> Vec<Vec<u8>> {
    assert!(
        n <= BENCH_MEMBERS * MAX_ENROLMENTS_PER_BLOCK as usize,
        "more enrolments than the members' quotas"
    );
    let mut next: Vec<u64> = (0..BENCH_MEMBERS)
        .map(|i| {
            let pk = member_key(i).verifying_key().to_bytes();
            ledger.store().get_u64(&keys::sequence(&pk)).unwrap()
        })
        .collect();
    (0..n)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            seed[8..16].copy_from_slice(&salt.to_le_bytes());
            let patient = SigningKey::from_bytes(&seed);
            let m = i % BENCH_MEMBERS;
            let body = TxBody {
                chain_id: chain.into(),
                sequence: next[m],
                unordered: None,
                msg: Some(Msg::RegisterPatient(keyproof::enrol_patient(
                    &patient,
                    chain,
                    &member_id(m),
                ))),
            };
            next[m] += 1;
            sign_tx(&member_key(m), &body)
        })
        .collect()
}

//! Helpers for state-machine tests: a ledger on a temp RocksDB with genesis members, a client-like
//! signer that tracks sequences, and blocks that finalize and commit.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use medledger_state::{BlockResult, Ledger};
use medledger_tx::pb::{tx_body::Msg, TxBody};
use medledger_tx::{ids, sign_tx};
use tempfile::TempDir;

pub const CHAIN: &str = "test-chain";
pub const T0: u64 = 1_700_000_000;
/// Genesis members: (id, kind).
pub const MEMBERS: [(&str, &str); 4] = [
    ("hospital-a", "hospital"),
    ("lab-b", "lab"),
    ("insurer-c", "insurer"),
    ("hospital-d", "hospital"),
];

/// A test key from a seed byte.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The admin key of genesis member `i`.
pub fn admin(i: usize) -> SigningKey {
    key(100 + i as u8)
}

/// The public key bytes.
pub fn pk(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

/// The patient id of a key.
pub fn patient_id(k: &SigningKey) -> String {
    ids::patient_id(&pk(k))
}

/// The practitioner DID of a key.
pub fn did(k: &SigningKey) -> String {
    ids::practitioner_did(&pk(k))
}

/// A ledger at height 0 with the four genesis members.
pub fn ledger() -> (TempDir, Ledger) {
    let members: Vec<_> = MEMBERS
        .iter()
        .enumerate()
        .map(|(i, (id, kind))| serde_json::json!({"id": id, "name": id, "kind": kind, "admin_key": hex::encode(pk(&admin(i)))}))
        .collect();
    let app_state = serde_json::to_vec(&serde_json::json!({ "members": members })).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(dir.path()).unwrap();
    l.init_chain(CHAIN, 1, &app_state, &[]).unwrap();
    (dir, l)
}

/// A chain under test: the ledger, the next height, and each key's next sequence.
pub struct Chain {
    _dir: TempDir,
    pub ledger: Ledger,
    pub height: u64,
    /// Block time of the next block.
    pub time: u64,
    next: BTreeMap<[u8; 32], u64>,
}

impl Chain {
    pub fn new() -> Chain {
        let (dir, ledger) = ledger();
        Chain {
            _dir: dir,
            ledger,
            height: 1,
            time: T0,
            next: BTreeMap::new(),
        }
    }

    /// Signs `msg` with `k` at its next sequence.
    pub fn tx(&mut self, k: &SigningKey, msg: Msg) -> Vec<u8> {
        let seq = self.next.entry(pk(k)).or_insert(0);
        let body = TxBody {
            chain_id: CHAIN.into(),
            sequence: *seq,
            msg: Some(msg),
        };
        *seq += 1;
        sign_tx(k, &body)
    }

    /// Finalizes and commits one block of `txs`.
    pub fn block(&mut self, txs: Vec<Vec<u8>>) -> BlockResult {
        let r = self
            .ledger
            .finalize_block(self.height, self.time, &txs)
            .unwrap();
        self.ledger.commit().unwrap();
        self.height += 1;
        self.time += 5;
        r
    }

    /// One tx in its own block: its code (0 = applied).
    pub fn send(&mut self, k: &SigningKey, msg: Msg) -> u32 {
        let tx = self.tx(k, msg);
        let r = self.block(vec![tx]);
        r.tx_results[0].code
    }

    /// Like `send`, asserting success, returning the tx's events.
    pub fn ok(&mut self, k: &SigningKey, msg: Msg) -> Vec<medledger_state::Event> {
        let tx = self.tx(k, msg);
        let r = self.block(vec![tx]);
        assert_eq!(r.tx_results[0].code, 0, "{}", r.tx_results[0].log);
        r.tx_results[0].events.clone()
    }

    /// A committed value decoded.
    pub fn get<M: prost::Message + Default>(&self, key: &[u8]) -> Option<M> {
        self.ledger
            .store()
            .get(key)
            .unwrap()
            .map(|v| M::decode(v.as_slice()).unwrap())
    }
}

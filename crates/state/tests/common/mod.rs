//! Helpers for state-machine tests: a ledger on a temp RocksDB with genesis members, a client-like
//! signer that tracks sequences, and blocks that finalize and commit.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use medledger_state::view::StateRead;
use medledger_state::{BlockResult, Ledger};
use medledger_tx::checkpoint::BlsKey;
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, Purpose, TxBody};
use medledger_tx::{ids, keys, sign_tx};
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

/// hospital-a's enrolment of the patient holding `k` (send it signed by `admin(0)`).
pub fn enrol(k: &SigningKey) -> Msg {
    Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
        k,
        CHAIN,
        MEMBERS[0].0,
    ))
}

/// A practitioner key's proof of possession for member `member`.
pub fn practitioner_proof(k: &SigningKey, member: &str) -> Vec<u8> {
    medledger_tx::keyproof::prove(
        k,
        CHAIN,
        medledger_tx::keyproof::REGISTER_PRACTITIONER,
        member,
    )
    .to_vec()
}

/// The practitioner DID of a key.
pub fn did(k: &SigningKey) -> String {
    ids::practitioner_did(&pk(k))
}

/// The Ed25519 consensus key of genesis member `i`'s validator (see [`Chain::with_validators`]).
pub fn consensus(i: usize) -> [u8; 32] {
    pk(&key(60 + i as u8))
}

/// The BLS key of genesis member `i`'s validator.
pub fn bls(i: usize) -> BlsKey {
    BlsKey::from_ikm(&[70 + i as u8; 32]).unwrap()
}

/// The one way state tests build a genesis: members (id, kind, admin key), some running a
/// validator; then [`Genesis::ledger`] or [`Genesis::chain`].
#[derive(Default)]
pub struct Genesis {
    members: Vec<serde_json::Value>,
    powers: Vec<([u8; 32], u64)>,
}

impl Genesis {
    pub fn new() -> Genesis {
        Genesis::default()
    }

    /// A member without a validator.
    pub fn member(mut self, id: &str, kind: &str, admin: &SigningKey) -> Genesis {
        self.members
            .push(serde_json::json!({"id": id, "name": id, "kind": kind,
            "admin_key": hex::encode(pk(admin))}));
        self
    }

    /// A member running a validator of power 10 with consensus key `consensus` and BLS key `bls`.
    pub fn validator(
        mut self,
        id: &str,
        kind: &str,
        admin: &SigningKey,
        consensus: [u8; 32],
        bls: &BlsKey,
    ) -> Genesis {
        self.members
            .push(serde_json::json!({"id": id, "name": id, "kind": kind,
            "admin_key": hex::encode(pk(admin)),
            "validator": {"address": hex::encode(ids::validator_address(&consensus)),
                "bls_key": hex::encode(bls.public_key()),
                "bls_pop": hex::encode(bls.proof_of_possession())}}));
        self.powers.push((consensus, 10));
        self
    }

    /// A ledger on a temp RocksDB, at height 0 with this genesis.
    pub fn ledger(self) -> (TempDir, Ledger) {
        let app_state =
            serde_json::to_vec(&serde_json::json!({ "members": self.members })).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        l.init_chain_with_keys(CHAIN, 1, &app_state, &self.powers, &[])
            .unwrap();
        (dir, l)
    }

    /// A [`Chain`] on [`Genesis::ledger`].
    pub fn chain(self) -> Chain {
        Chain::from_ledger(self.ledger())
    }
}

/// A ledger at height 0 with the four genesis members.
pub fn ledger() -> (TempDir, Ledger) {
    ledger_with(&[], false)
}

/// A ledger at height 0 with the four genesis members, then `extra` members (admin keys
/// `admin(4)`, `admin(5)`, ...). With `validators`, each of the four runs a validator of power
/// 10, so governance can pass proposals (more than 2/3: three of the four); extra members run
/// none.
pub fn ledger_with(extra: &[(&str, &str)], validators: bool) -> (TempDir, Ledger) {
    let mut g = Genesis::new();
    for (i, (id, kind)) in MEMBERS.iter().chain(extra).enumerate() {
        g = if validators && i < MEMBERS.len() {
            g.validator(id, kind, &admin(i), consensus(i), &bls(i))
        } else {
            g.member(id, kind, &admin(i))
        };
    }
    g.ledger()
}

/// Signs txs like a well-behaved client: each key's next sequence, tracked.
#[derive(Default)]
pub struct Sequences {
    next: BTreeMap<[u8; 32], u64>,
}

impl Sequences {
    /// Signs `msg` with `k` at its next sequence.
    pub fn tx(&mut self, k: &SigningKey, msg: Msg) -> Vec<u8> {
        let seq = self.next.entry(pk(k)).or_insert(0);
        let tx = signed(k, *seq, msg);
        *seq += 1;
        tx
    }

    /// Re-reads every tracked key's next sequence from `view`, as a client does after a tx
    /// refused before it consumed its sequence.
    pub fn resync(&mut self, view: &impl StateRead) {
        for (k, next) in self.next.iter_mut() {
            *next = view.get_u64(&keys::sequence(k)).unwrap();
        }
    }
}

/// `msg` signed by `k` at sequence `seq`.
pub fn signed(k: &SigningKey, seq: u64, msg: Msg) -> Vec<u8> {
    let body = TxBody {
        chain_id: CHAIN.into(),
        sequence: seq,
        unordered: None,
        msg: Some(msg),
    };
    sign_tx(k, &body)
}

/// A chain under test: the ledger, the next height, and each key's next sequence.
pub struct Chain {
    dir: TempDir,
    /// `None` only inside [`Chain::reopen`].
    ledger: Option<Ledger>,
    pub height: u64,
    /// Block time of the next block.
    pub time: u64,
    pub seqs: Sequences,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::from_ledger(ledger())
    }

    /// A chain on [`ledger_with`]`(extra, true)`: validators, so governance works.
    pub fn with_validators(extra: &[(&str, &str)]) -> Chain {
        Chain::from_ledger(ledger_with(extra, true))
    }

    fn from_ledger((dir, ledger): (TempDir, Ledger)) -> Chain {
        Chain {
            dir,
            ledger: Some(ledger),
            height: 1,
            time: T0,
            seqs: Sequences::default(),
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        self.ledger.as_ref().unwrap()
    }

    /// The ledger, mutable.
    pub fn ledger_mut(&mut self) -> &mut Ledger {
        self.ledger.as_mut().unwrap()
    }

    /// Closes and reopens the ledger, as a restarted node does.
    pub fn reopen(&mut self) {
        self.ledger = None;
        self.ledger = Some(Ledger::open(self.dir.path()).unwrap());
    }

    /// Signs `msg` with `k` at its next sequence.
    pub fn tx(&mut self, k: &SigningKey, msg: Msg) -> Vec<u8> {
        self.seqs.tx(k, msg)
    }

    /// Signs `msg` with `k` at sequence `seq`, leaving the tracked sequences alone.
    pub fn tx_at(&self, k: &SigningKey, seq: u64, msg: Msg) -> Vec<u8> {
        signed(k, seq, msg)
    }

    /// Signs `msg` with `k` unordered: nonce `[nonce; 16]`, valid until `valid_until`.
    pub fn unordered(&self, k: &SigningKey, nonce: u8, valid_until: u64, msg: Msg) -> Vec<u8> {
        let body = TxBody {
            chain_id: CHAIN.into(),
            sequence: 0,
            unordered: Some(pb::Unordered {
                nonce: vec![nonce; 16],
                valid_until,
            }),
            msg: Some(msg),
        };
        sign_tx(k, &body)
    }

    /// `k`'s next sequence in the committed state.
    pub fn committed_sequence(&self, k: &SigningKey) -> u64 {
        self.ledger()
            .store()
            .get_u64(&keys::sequence(&pk(k)))
            .unwrap()
    }

    /// Re-reads every tracked key's next sequence from the committed state, as a client does
    /// after a tx refused before it consumed its sequence.
    pub fn resync(&mut self) {
        let store = self.ledger.as_ref().unwrap().store();
        self.seqs.resync(store);
    }

    /// ProcessProposal of `txs` as the next block.
    pub fn process_proposal(&mut self, txs: &[Vec<u8>]) -> Result<(), medledger_tx::TxError> {
        let height = self.height;
        self.ledger_mut().process_proposal(height, txs)
    }

    /// Finalizes and commits one block of `txs`; the next block is 5 s later.
    pub fn block(&mut self, txs: Vec<Vec<u8>>) -> BlockResult {
        let time = self.time;
        let r = self.block_at(time, &txs);
        self.time = time + 5;
        r
    }

    /// Finalizes and commits one block of `txs` at `time` (unix seconds).
    pub fn block_at(&mut self, time: u64, txs: &[Vec<u8>]) -> BlockResult {
        let height = self.height;
        let l = self.ledger_mut();
        let r = l.finalize_block(height, time, txs).unwrap();
        l.commit().unwrap();
        self.height += 1;
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

    /// hospital-a enrols the patient holding `k` in its own block.
    pub fn enrol(&mut self, k: &SigningKey) {
        self.ok(&admin(0), enrol(k));
    }

    /// A committed value decoded.
    pub fn get<M: prost::Message + Default>(&self, key: &[u8]) -> Option<M> {
        self.ledger()
            .store()
            .get(key)
            .unwrap()
            .map(|v| M::decode(v.as_slice()).unwrap())
    }
}

// Messages the rule tests send again and again: one builder each.

/// Genesis member `member` registers the practitioner holding `k` (with the key's proof).
pub fn register_practitioner_for(
    member: usize,
    k: &SigningKey,
    role: PractitionerRole,
    valid_until: u64,
) -> Msg {
    Msg::RegisterPractitioner(pb::RegisterPractitioner {
        public_key: pk(k).to_vec(),
        role: role as i32,
        licence_hash: vec![7; 32],
        valid_until,
        name: "Dr Test".into(),
        key_proof: practitioner_proof(k, MEMBERS[member].0),
    })
}

/// A read of `record` of `patient`, declared as `class`, for treatment.
pub fn read(patient: &str, record: &str, class: &str) -> Msg {
    Msg::LogAccess(pb::LogAccess {
        patient_id: patient.into(),
        record_id: record.into(),
        data_class: class.into(),
        purpose: Purpose::Treat as i32,
        action: 0,
    })
}

/// The custodian anchors `record` of `patient` as a `resource_type`.
pub fn anchor_as(record: &str, patient: &str, resource_type: &str) -> Msg {
    Msg::AnchorRecord(pb::AnchorRecord {
        record_id: record.into(),
        patient_id: patient.into(),
        resource_type: resource_type.into(),
        content_hash: vec![1; 32],
        size: 1024,
        key_id: "vault-key-1".into(),
        holders: vec![],
        threshold: 0,
        share_commitments: vec![],
    })
}

/// An emergency read of `record` (declared as `class`), with the hash of a written reason.
pub fn break_glass_as(patient: &str, record: &str, class: &str) -> Msg {
    use sha2::{Digest, Sha256};
    Msg::LogBreakGlass(pb::LogBreakGlass {
        patient_id: patient.into(),
        record_id: record.into(),
        data_class: class.into(),
        reason_hash: Sha256::digest(b"unconscious in the emergency room").to_vec(),
    })
}

/// A privacy officer's verdict on access event `index` of `patient`.
pub fn review(patient: &str, index: u64, justified: bool) -> Msg {
    Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
        patient_id: patient.into(),
        event_index: index,
        justified,
        note_hash: Vec::new(),
    })
}

/// The patient `patient` rotates to `new`, which proves possession.
pub fn rotate(patient: &str, new: &SigningKey) -> Msg {
    Msg::RotatePatientKey(pb::RotatePatientKey {
        new_key: pk(new).to_vec(),
        new_key_proof: medledger_tx::keyproof::prove(
            new,
            CHAIN,
            medledger_tx::keyproof::ROTATE_PATIENT_KEY,
            patient,
        )
        .to_vec(),
    })
}

// Random blocks for the store's tests (store.rs, prune.rs).

/// A small deterministic generator (xorshift64*), so failures replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One block's writes over a key space of `keys` keys; deletions only when `deletes`.
pub fn block(
    rng: &mut Rng,
    size: u64,
    keys: u64,
    deletes: bool,
) -> medledger_state::store::WriteSet {
    (0..size)
        .map(|_| {
            let key = format!("k/{}", rng.below(keys)).into_bytes();
            let value = if deletes && rng.below(4) == 0 {
                None
            } else {
                Some(rng.next().to_le_bytes().repeat(1 + rng.below(8) as usize))
            };
            (key, value)
        })
        .collect()
}

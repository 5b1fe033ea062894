//! The fuzzing harness: one set of functions shared by the cargo-fuzz targets in `fuzz/` (which
//! include this file with `#[path]`) and the stable regression test `tests/fuzz_corpus.rs` (which
//! replays every corpus and artifact file through them), so a reproducer replays exactly as it
//! was found.
//!
//! - [`decode`]: untrusted bytes through envelope decoding and the stateless checks, and as a
//!   compact query proof (`medledger_query::compact::expand`).
//! - [`check_tx`]: a signed tx built from the bytes (or the raw bytes) through `Ledger::check_tx`,
//!   against a reference model of what CheckTx must answer.
//! - [`apply`]: a block of such txs through ProcessProposal, FinalizeBlock and Commit, asserting
//!   every code is known and a block without an applied tx changes nothing but the sequences
//!   that refused-but-authentic txs consume (see `src/apply.rs`).
//!
//! Raw bytes almost never carry a valid signature, so most inputs are *structured*: the bytes
//! choose a signer among fixed keys, the chain id, the sequence (usually the right one) and the
//! message with its fields (ids usually drawn from the ledger's own vocabulary), and the harness
//! signs the result. The ledger is opened once per thread (RocksDB is too slow to reopen per
//! input) and lets state grow; [`apply`] starts a fresh ledger every [`BLOCKS_PER_LEDGER`] blocks.
//! A panic anywhere is a finding.

#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::panic)]

use std::cell::RefCell;
use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use medledger_state::view::StateRead;
use medledger_state::Ledger;
use medledger_tx::check::check_body;
use medledger_tx::checkpoint::{decode_certificate_tx, encode_certificate_tx, BlsKey};
use medledger_tx::envelope::decode_and_verify;
use medledger_tx::limits::MAX_TX_BYTES;
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg, TxBody};
use medledger_tx::{decode_tx, ids, keys, recovery, sign_tx, Code, TxError};
use prost::Message;
use tempfile::TempDir;

pub const CHAIN: &str = "fuzz-chain";
pub const T0: u64 = 1_700_000_000;
/// A fresh ledger after this many blocks, so state (and the temp dir) stays bounded.
pub const BLOCKS_PER_LEDGER: u64 = 2_000;
/// Most txs in one fuzzed block.
pub const MAX_BLOCK_TXS: usize = 8;
/// An X25519 public key that passes RegisterPatientBoxKey's stateless check (RFC 7748 6.1).
const RFC7748_ALICE: [u8; 32] = [
    0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
    0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a,
];

/// Genesis members: (id, kind); admin key `i` is [`key`]`(100 + i)`, as in `tests/common`.
pub const MEMBERS: [(&str, &str); 4] = [
    ("hospital-a", "hospital"),
    ("lab-b", "lab"),
    ("insurer-c", "insurer"),
    ("hospital-d", "hospital"),
];

/// Seeds of the keys that sign fuzzed txs: the four admins, patients alice (1, registered with
/// guardians 40, 41, 42) and bob (2, registered), two unregistered keys (3, 4), hospital-a's
/// physician (20), nurse (21) and privacy officer (23), insurer-c's claims adjuster (22),
/// guardians (40, 41), a spare key (53) and a key nobody knows (77).
pub const SEEDS: [u8; 16] = [
    100, 101, 102, 103, 1, 2, 3, 4, 20, 21, 22, 23, 40, 41, 53, 77,
];

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn pk(k: &SigningKey) -> [u8; 32] {
    k.verifying_key().to_bytes()
}

/// Reads choices from the fuzz input; an exhausted input reads as zeros.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Mostly small numbers, sometimes block-time-like ones, sometimes any u64.
    pub fn number(&mut self) -> u64 {
        match self.u8() % 4 {
            0 | 1 => u64::from(self.u8()),
            2 => T0
                .wrapping_add(u64::from(self.u8()) * 3_600)
                .wrapping_sub(86_400),
            _ => self.u64(),
        }
    }

    /// Up to `max` bytes.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.u8() as usize).min(max).min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// A list length: mostly 0..4, rarely over the limits.
    pub fn count(&mut self) -> usize {
        match self.u8() {
            b @ 0..=250 => (b % 4) as usize,
            b => 60 + (b as usize - 250) * 4,
        }
    }

    /// An enum value: mostly a defined one, sometimes not.
    pub fn enumeration(&mut self) -> i32 {
        i32::from(self.u8() % 10) - 1
    }
}

// ---------------------------------------------------------------------------------------------
// decode

/// Arbitrary bytes through envelope decoding and the stateless checks, and as a compact proof.
/// Invariants: a decoded envelope is exactly the input (canonical form); any body that decodes,
/// signed honestly, is accepted by decoding and verification unless it is too large; a compact
/// proof that expands re-encodes to exactly the input.
pub fn decode(data: &[u8]) {
    compact_proof(data);
    let _ = decode_certificate_tx(data);
    if let Ok(tx) = decode_tx(data) {
        let again = pb::Tx {
            body: tx.body_bytes.clone(),
            public_key: tx.public_key.to_vec(),
            signature: tx.signature.to_vec(),
        }
        .encode_to_vec();
        assert_eq!(again, data, "decode_tx accepted a non-canonical envelope");
        let _ = check_body(&tx.body);
        let _ = tx.verify();
    }
    // The same bytes as a body: reaches every stateless check, which random envelopes cannot.
    if let Ok(body) = TxBody::decode(data) {
        let stateless = check_body(&body).map(|_| ()).map_err(|e| e.code);
        let tx = sign_tx(&key(1), &body);
        match decode_and_verify(&tx) {
            Ok(v) => {
                assert_eq!(v.body(), &body, "signed body changed in transit");
                let again = check_body(v.body()).map(|_| ()).map_err(|e| e.code);
                assert_eq!(again, stateless);
            }
            Err(e) if e.code == Code::TxTooLarge => assert!(tx.len() > MAX_TX_BYTES),
            Err(e) => panic!("an honestly signed body was refused: {e}"),
        }
    }
}

/// `data` as a compact query proof, as it is and behind a valid header (version, one of the four
/// kinds) so that the fuzzer reaches the paths: never a panic, and any accepted bytes are the one
/// encoding of the proof they expand to.
fn compact_proof(data: &[u8]) {
    use medledger_query::compact::{encode, expand, VERSION};
    let framed: Vec<u8> = match data.split_first() {
        Some((kind, rest)) => [&[VERSION, kind % 4][..], rest].concat(),
        None => Vec::new(),
    };
    for bytes in [data, &framed] {
        for value in [None, Some(&b"value"[..])] {
            if let Ok(proof) = expand(bytes, b"key", value) {
                assert_eq!(
                    encode(&proof).as_deref(),
                    Ok(bytes),
                    "expand accepted a non-canonical compact proof"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The ledger under test

pub struct Harness {
    /// Declared before the temp dir so that RocksDB closes before its directory is removed.
    pub ledger: Ledger,
    _dir: TempDir,
    /// Height of the next block.
    pub height: u64,
    pub time: u64,
    /// Next sequence per key, as the ledger will expect it (committed plus admitted to the
    /// mempool in the check_tx target).
    next: BTreeMap<[u8; 32], u64>,
    keys: Vec<SigningKey>,
    bls: BlsKey,
}

thread_local! {
    static HARNESS: RefCell<Option<Harness>> = const { RefCell::new(None) };
}

fn with_harness<R>(f: impl FnOnce(&mut Harness) -> R) -> R {
    HARNESS.with(|cell| {
        let mut slot = cell.borrow_mut();
        let h = slot.get_or_insert_with(Harness::new);
        f(h)
    })
}

/// A signed tx and what the harness knows of it.
struct Built {
    bytes: Vec<u8>,
    /// Signer and sequence, when the harness signed it (`None` for raw bytes).
    signed: Option<([u8; 32], u64)>,
    /// What CheckTx must answer, when the harness can tell.
    expect: Option<Result<(), Code>>,
}

impl Harness {
    pub fn new() -> Harness {
        let members: Vec<_> = MEMBERS
            .iter()
            .enumerate()
            .map(|(i, (id, kind))| {
                serde_json::json!({"id": id, "name": id, "kind": kind,
                    "admin_key": hex::encode(pk(&key(100 + i as u8)))})
            })
            .collect();
        let app_state = serde_json::to_vec(&serde_json::json!({ "members": members })).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        ledger.init_chain(CHAIN, 1, &app_state, &[]).unwrap();
        let mut h = Harness {
            ledger,
            _dir: dir,
            height: 1,
            time: T0,
            next: BTreeMap::new(),
            keys: SEEDS.iter().map(|s| key(*s)).collect(),
            bls: BlsKey::from_ikm(&[70; 32]).unwrap(),
        };
        h.setup();
        h
    }

    /// A first block that makes deep paths reachable: patients, practitioners, guardians, a
    /// policy, consents and a record.
    fn setup(&mut self) {
        let (hosp, insurer, alice, bob) = (key(100), key(102), key(1), key(2));
        let practitioner = |seed: u8, role: pb::PractitionerRole| {
            // hospital-a's staff, but the adjuster (seed 22), who is insurer-c's.
            let member = if seed == 22 {
                "insurer-c"
            } else {
                "hospital-a"
            };
            Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: pk(&key(seed)).to_vec(),
                role: role as i32,
                licence_hash: vec![seed; 32],
                valid_until: 0,
                name: "Dr Fuzz".into(),
                key_proof: medledger_tx::keyproof::prove(
                    &key(seed),
                    CHAIN,
                    medledger_tx::keyproof::REGISTER_PRACTITIONER,
                    member,
                )
                .to_vec(),
            })
        };
        let enrol = |k: &SigningKey| {
            Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
                k,
                CHAIN,
                "hospital-a",
            ))
        };
        let consent = |grantee: &str, class: &str, purpose: pb::Purpose| {
            Msg::GrantConsent(pb::GrantConsent {
                grantee: grantee.into(),
                data_classes: vec![class.into()],
                purposes: vec![purpose as i32],
                ..Default::default()
            })
        };
        let msgs: Vec<(&SigningKey, Msg)> = vec![
            (&hosp, enrol(&alice)),
            (&hosp, enrol(&bob)),
            (&hosp, practitioner(20, pb::PractitionerRole::Physician)),
            (&hosp, practitioner(21, pb::PractitionerRole::Nurse)),
            (
                &hosp,
                practitioner(23, pb::PractitionerRole::PrivacyOfficer),
            ),
            (
                &insurer,
                practitioner(22, pb::PractitionerRole::ClaimsAdjuster),
            ),
            (
                &insurer,
                Msg::PublishPolicy(pb::PublishPolicy {
                    policy_id: "gold".into(),
                    rules: vec![pb::CoverageRule {
                        service_code: "99213".into(),
                        covered: true,
                        price_cap: 15_000,
                        copay_fixed: 2_000,
                        copay_bps: 0,
                        preauth_required: false,
                    }],
                }),
            ),
            (&alice, consent("hospital-a", "*", pb::Purpose::Treat)),
            (&alice, consent("insurer-c", "Claim", pb::Purpose::Hpaymt)),
            (
                &insurer,
                Msg::EnrolCoverage(pb::EnrolCoverage {
                    patient_id: ids::patient_id(&pk(&alice)),
                    policy_id: "gold".into(),
                    start: 0,
                    end: 0,
                }),
            ),
            (
                &alice,
                Msg::SetGuardians(pb::SetGuardians {
                    guardian_keys: [40, 41, 42].iter().map(|s| pk(&key(*s)).to_vec()).collect(),
                    threshold: 2,
                }),
            ),
            (
                &hosp,
                Msg::AnchorRecord(pb::AnchorRecord {
                    record_id: "rec-1".into(),
                    patient_id: ids::patient_id(&pk(&alice)),
                    resource_type: "Observation".into(),
                    content_hash: vec![1; 32],
                    size: 10,
                    key_id: "k".into(),
                    holders: vec![],
                    threshold: 0,
                    share_commitments: vec![],
                }),
            ),
        ];
        let txs: Vec<Vec<u8>> = msgs
            .into_iter()
            .map(|(k, msg)| {
                let seq = self.sequence_for(k, 0);
                self.next.insert(pk(k), seq + 1);
                sign_tx(
                    k,
                    &TxBody {
                        chain_id: CHAIN.into(),
                        sequence: seq,
                        unordered: None,
                        msg: Some(msg),
                    },
                )
            })
            .collect();
        let r = self.ledger.finalize_block(1, self.time, &txs).unwrap();
        for (i, t) in r.tx_results.iter().enumerate() {
            assert_eq!(t.code, 0, "setup tx {i}: {}", t.log);
        }
        self.ledger.commit().unwrap();
        self.next.clear();
        self.height = 2;
        self.time += 5;
    }

    /// The recovery state of `patient` in the committed store, if it has guardians.
    fn recovery_state(&self, patient: &str) -> Option<recovery::RecoveryState> {
        let store = self.ledger.store();
        let p: pb::Patient =
            pb::Patient::decode(store.get(&keys::patient(patient)).ok()??.as_slice()).ok()?;
        let g: pb::Guardians =
            pb::Guardians::decode(store.get(&keys::guardians(patient)).ok()??.as_slice()).ok()?;
        Some(recovery::RecoveryState {
            recoveries: g.recoveries,
            current_key: p.key.as_slice().try_into().ok()?,
            guardian_set_hash: recovery::guardian_set_hash(&g.guardian_keys, g.threshold),
        })
    }

    /// The refusal a tx of `signer` gets for who signed it, from the committed key owners: keys
    /// the ledger does not know send only recoveries; retired keys send nothing.
    fn signer_refusal(&self, signer: &[u8; 32], body: &TxBody) -> Option<Code> {
        use pb::key_owner::Owner;
        let owner = self
            .ledger
            .store()
            .get(&keys::key_owner(signer))
            .unwrap()
            .and_then(|v| pb::KeyOwner::decode(v.as_slice()).ok())
            .and_then(|o| o.owner);
        match owner {
            Some(Owner::RetiredMemberKey(_)) => Some(Code::UnknownSigner),
            Some(Owner::RetiredPatientKey(_)) => Some(Code::KeyRetired),
            Some(_) => None,
            None if matches!(body.msg, Some(Msg::RecoverPatientKey(_))) => None,
            None => Some(Code::UnknownSigner),
        }
    }

    /// Whether the committed state knows `signer` (its refused txs then consume its sequence).
    fn known(&self, signer: &[u8; 32]) -> bool {
        self.ledger
            .store()
            .get(&keys::key_owner(signer))
            .unwrap()
            .is_some()
    }

    fn committed_sequence(&self, k: &[u8; 32]) -> u64 {
        self.ledger.store().get_u64(&keys::sequence(k)).unwrap()
    }

    /// The sequence to sign with: the one the ledger expects of `k`, moved by `delta`.
    fn sequence_for(&self, k: &SigningKey, delta: i8) -> u64 {
        self.expected_sequence(&pk(k))
            .saturating_add_signed(i64::from(delta))
    }

    fn expected_sequence(&self, k: &[u8; 32]) -> u64 {
        match self.next.get(k) {
            Some(n) => *n,
            None => self.committed_sequence(k),
        }
    }

    fn pool_key(&self, r: &mut Reader<'_>) -> SigningKey {
        self.keys[r.u8() as usize % self.keys.len()].clone()
    }

    fn pool_pk(&self, r: &mut Reader<'_>) -> Vec<u8> {
        match r.u8() % 8 {
            0 => r.bytes(40).to_vec(),
            _ => pk(&self.pool_key(r)).to_vec(),
        }
    }

    /// A string field: mostly a name the ledger knows, sometimes an edge case or arbitrary text.
    fn text(&self, r: &mut Reader<'_>) -> String {
        const WORDS: [&str; 22] = [
            "hospital-a",
            "lab-b",
            "insurer-c",
            "hospital-d",
            "nobody",
            "c-1",
            "c-2",
            "c-3",
            "cl-1",
            "cl-2",
            "rec-1",
            "rec-2",
            "Observation",
            "*",
            "Claim",
            "Condition",
            "gold",
            "silver",
            "99213",
            "80053",
            "st-1",
            "",
        ];
        match r.u8() % 8 {
            0..=2 => WORDS[r.u8() as usize % WORDS.len()].into(),
            3 => ids::patient_id(&pk(&self.pool_key(r))),
            4 => ids::practitioner_did(&pk(&self.pool_key(r))),
            5 => "x".repeat(r.u8() as usize * 3),
            _ => String::from_utf8_lossy(r.bytes(80)).into_owned(),
        }
    }

    /// A hash of off-chain text: mostly 32 bytes, sometimes none or another length.
    fn hash(&self, r: &mut Reader<'_>) -> Vec<u8> {
        match r.u8() % 4 {
            0 => Vec::new(),
            1 => r.bytes(40).to_vec(),
            _ => vec![r.u8(); 32],
        }
    }

    fn texts(&self, r: &mut Reader<'_>) -> Vec<String> {
        (0..r.count()).map(|_| self.text(r)).collect()
    }

    /// A message built from the input.
    fn msg(&self, r: &mut Reader<'_>) -> Msg {
        match r.u8() % 29 {
            0 => Msg::RegisterPatient(pb::RegisterPatient {
                patient_key: self.pool_pk(r),
                key_proof: r.bytes(70).to_vec(),
            }),
            1 => Msg::GrantConsent(pb::GrantConsent {
                grantee: self.text(r),
                data_classes: self.texts(r),
                purposes: (0..r.count()).map(|_| r.enumeration()).collect(),
                not_before: r.number(),
                not_after: r.number(),
                actions: (0..r.count()).map(|_| r.enumeration()).collect(),
                deny_classes: self.texts(r),
                record_ids: self.texts(r),
                study_id: self.text(r),
            }),
            2 => Msg::RevokeConsent(pb::RevokeConsent {
                consent_id: self.text(r),
            }),
            3 => Msg::LogAccess(pb::LogAccess {
                patient_id: self.text(r),
                record_id: self.text(r),
                data_class: self.text(r),
                purpose: r.enumeration(),
                action: r.enumeration(),
            }),
            4 => Msg::LogBreakGlass(pb::LogBreakGlass {
                patient_id: self.text(r),
                record_id: self.text(r),
                data_class: self.text(r),
                reason_hash: r.bytes(40).to_vec(),
            }),
            5 => Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
                patient_id: self.text(r),
                event_index: r.number(),
                justified: r.bool(),
                note_hash: r.bytes(40).to_vec(),
            }),
            6 => Msg::SubmitProposal(pb::SubmitProposal {
                action: self.action(r),
                deadline_height: self.height.wrapping_add(r.number()),
            }),
            7 => Msg::VoteProposal(pb::VoteProposal {
                proposal_id: r.number(),
                yes: r.bool(),
            }),
            8 => Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: self.pool_pk(r),
                role: r.enumeration(),
                licence_hash: r.bytes(40).to_vec(),
                valid_until: r.number(),
                name: self.text(r),
                key_proof: r.bytes(70).to_vec(),
            }),
            9 => Msg::SetPractitionerStatus(pb::SetPractitionerStatus {
                did: self.text(r),
                status: r.enumeration(),
                reason_hash: r.bytes(40).to_vec(),
            }),
            10 => Msg::SetGuardians(pb::SetGuardians {
                guardian_keys: (0..r.count()).map(|_| self.pool_pk(r)).collect(),
                threshold: u32::from(r.u8() % 5),
            }),
            11 => Msg::RotatePatientKey(pb::RotatePatientKey {
                new_key: self.pool_pk(r),
                new_key_proof: r.bytes(70).to_vec(),
            }),
            12 => {
                let patient_id = self.text(r);
                let new_key = pk(&self.pool_key(r));
                // Mostly bound to the patient's state now (so recoveries can succeed), else to
                // an arbitrary count.
                let at = match self.recovery_state(&patient_id) {
                    Some(at) if r.bool() => at,
                    _ => recovery::RecoveryState {
                        recoveries: u64::from(r.u8() % 3),
                        current_key: [0; 32],
                        guardian_set_hash: [0; 32],
                    },
                };
                let approvals = (0..r.count())
                    .map(|_| {
                        let g = self.pool_key(r);
                        let signature = if r.bool() {
                            recovery::approve(&g, CHAIN, &patient_id, &new_key, &at).to_vec()
                        } else {
                            r.bytes(70).to_vec()
                        };
                        pb::GuardianApproval {
                            guardian_key: pk(&g).to_vec(),
                            signature,
                        }
                    })
                    .collect();
                Msg::RecoverPatientKey(pb::RecoverPatientKey {
                    patient_id,
                    new_key: new_key.to_vec(),
                    approvals,
                })
            }
            13 => Msg::AnchorRecord(pb::AnchorRecord {
                record_id: self.text(r),
                patient_id: self.text(r),
                resource_type: self.text(r),
                content_hash: r.bytes(40).to_vec(),
                size: r.number(),
                key_id: self.text(r),
                holders: vec![],
                threshold: 0,
                share_commitments: vec![],
            }),
            14 => Msg::EraseRecord(pb::EraseRecord {
                record_id: self.text(r),
                reason_hash: r.bytes(40).to_vec(),
            }),
            15 => Msg::PublishPolicy(pb::PublishPolicy {
                policy_id: self.text(r),
                rules: (0..r.count())
                    .map(|_| pb::CoverageRule {
                        service_code: self.text(r),
                        covered: r.bool(),
                        price_cap: r.number(),
                        copay_fixed: r.number(),
                        copay_bps: r.number() as u32,
                        preauth_required: r.bool(),
                    })
                    .collect(),
            }),
            16 => {
                let items: Vec<pb::ClaimItem> = (0..r.count())
                    .map(|_| pb::ClaimItem {
                        service_code: self.text(r),
                        quantity: r.number(),
                        unit_price: r.number(),
                        modifier: if r.bool() {
                            String::new()
                        } else {
                            self.text(r)
                        },
                    })
                    .collect();
                // Usually the honest total, so the claim gets past the totals check.
                let total = if r.bool() {
                    items
                        .iter()
                        .try_fold(0u64, |s, i| {
                            s.checked_add(i.quantity.checked_mul(i.unit_price)?)
                        })
                        .unwrap_or(0)
                } else {
                    r.number()
                };
                Msg::SubmitClaim(pb::SubmitClaim {
                    patient_id: self.text(r),
                    insurer: self.text(r),
                    policy_id: self.text(r),
                    service_date: r.number(),
                    items,
                    record_ids: self.texts(r),
                    total,
                    evidence: (0..r.count()).map(|_| r.number()).collect(),
                    ..Default::default()
                })
            }
            17 => Msg::DecideClaim(pb::DecideClaim {
                claim_id: self.text(r),
                approved_amounts: (0..r.count()).map(|_| r.number()).collect(),
                note_hash: self.hash(r),
            }),
            18 => Msg::PayClaim(pb::PayClaim {
                claim_id: self.text(r),
                payment_reference: self.text(r),
            }),
            19 => Msg::AppealClaim(pb::AppealClaim {
                claim_id: self.text(r),
                reason_hash: self.hash(r),
            }),
            20 => Msg::EnrolCoverage(pb::EnrolCoverage {
                patient_id: self.text(r),
                policy_id: self.text(r),
                start: r.number(),
                end: r.number(),
            }),
            22 => Msg::ConfirmErasure(pb::ConfirmErasure {
                record_id: self.text(r),
            }),
            21 => Msg::EndCoverage(pb::EndCoverage {
                patient_id: self.text(r),
                index: r.number(),
                end: r.number(),
            }),
            23 => Msg::RegisterSmartClient(pb::RegisterSmartClient {
                client_id: self.text(r),
                kid: self.text(r),
                alg: r.enumeration(),
                ec_point: r.bytes(100).to_vec(),
                rsa_n: r.bytes(520).to_vec(),
                rsa_e: r.bytes(6).to_vec(),
                acts_for_practitioner: self.text(r),
                scopes: self.texts(r),
            }),
            24 => Msg::RevokeSmartClient(pb::RevokeSmartClient {
                client_id: self.text(r),
            }),
            25 => Msg::RegisterPatientBoxKey(pb::RegisterPatientBoxKey {
                patient_id: self.text(r),
                box_key: match r.u8() % 4 {
                    // RFC 7748's Alice: a key that passes the stateless check.
                    0 | 1 => RFC7748_ALICE.to_vec(),
                    2 => r.bytes(40).to_vec(),
                    _ => vec![r.u8(); 32],
                },
            }),
            26 => Msg::ReportAccess(pb::ReportAccess {
                patient_id: self.text(r),
                event_index: r.number(),
                reason: i32::from(r.u8() % 6),
            }),
            27 => Msg::ReviewReport(pb::ReviewReport {
                patient_id: self.text(r),
                event_index: r.number(),
                upheld: r.bool(),
                note_hash: r.bytes(40).to_vec(),
            }),
            _ => Msg::SetGateway(pb::SetGateway {
                endpoint: self.text(r),
                box_public_key: r.bytes(40).to_vec(),
                box_key_signature: r.bytes(70).to_vec(),
            }),
        }
    }

    fn action(&self, r: &mut Reader<'_>) -> Option<Action> {
        Some(match r.u8() % 7 {
            0 => Action::AddMember(pb::AddMember {
                id: self.text(r),
                name: self.text(r),
                kind: r.enumeration(),
                admin_key: self.pool_pk(r),
                validator_pub_key: self.pool_pk(r),
                power: r.number(),
                bls_key: if r.bool() {
                    self.bls.public_key().to_vec()
                } else {
                    r.bytes(60).to_vec()
                },
                bls_pop: if r.bool() {
                    self.bls.proof_of_possession().to_vec()
                } else {
                    r.bytes(100).to_vec()
                },
            }),
            1 => Action::RemoveMember(pb::RemoveMember {
                member_id: self.text(r),
            }),
            2 => Action::ChangePower(pb::ChangePower {
                member_id: self.text(r),
                power: r.number(),
            }),
            3 => Action::RotateAdminKey(pb::RotateAdminKey {
                member_id: self.text(r),
                new_admin_key: self.pool_pk(r),
            }),
            4 => Action::ScheduleUpgrade(pb::ScheduleUpgrade {
                name: self.text(r),
                height: r.number(),
                app_version: r.number(),
            }),
            5 => Action::SetWebRelease(pb::SetWebRelease {
                bundle_sha256: r.bytes(40).to_vec(),
                version: self.text(r),
            }),
            _ => return None,
        })
    }

    /// One tx from the input: raw bytes, a certificate, a protobuf body signed by a pool key,
    /// or (most often) a structured body signed by a pool key.
    fn build(&mut self, r: &mut Reader<'_>, raw_max: usize) -> Built {
        let mode = r.u8();
        let body = match mode % 16 {
            0 => {
                let bytes = r.bytes(raw_max).to_vec();
                return Built {
                    bytes,
                    signed: None,
                    expect: None,
                };
            }
            1 => {
                let cert = pb::Certificate::decode(r.bytes(raw_max)).unwrap_or_default();
                return Built {
                    bytes: encode_certificate_tx(&cert),
                    signed: None,
                    expect: Some(Err(Code::ProposerOnly)),
                };
            }
            2 => TxBody::decode(r.bytes(raw_max)).unwrap_or_default(),
            _ => TxBody {
                chain_id: CHAIN.into(),
                sequence: 0,
                unordered: None,
                msg: Some(self.msg(r)),
            },
        };
        let k = self.pool_key(r);
        let mut body = body;
        // Chain id and sequence: usually right, so the deeper checks are reached.
        match r.u8() % 16 {
            0 => body.chain_id = self.text(r),
            1 if mode % 16 == 2 => {}
            _ => body.chain_id = CHAIN.into(),
        }
        let delta = match r.u8() % 16 {
            0 => -1,
            1 => 1,
            2 => i8::MIN,
            _ => 0,
        };
        body.sequence = self.sequence_for(&k, delta);
        let bytes = sign_tx(&k, &body);
        let expect = Some(self.model(&bytes, &body, &pk(&k)));
        Built {
            bytes,
            signed: Some((pk(&k), body.sequence)),
            expect,
        }
    }

    /// What CheckTx must answer for an honestly signed `body`: the protocol's order of checks
    /// (size, chain id, stateless checks, sequence), written out independently.
    fn model(&self, bytes: &[u8], body: &TxBody, signer: &[u8; 32]) -> Result<(), Code> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(Code::TxTooLarge);
        }
        if body.chain_id != CHAIN {
            return Err(Code::WrongChainId);
        }
        check_body(body).map_err(|e| e.code)?;
        if let Some(code) = self.signer_refusal(signer, body) {
            return Err(code);
        }
        // Any sequence from the committed next one up to one past the highest admitted.
        let committed = self.committed_sequence(signer);
        let admitted = self.expected_sequence(signer).max(committed);
        if body.sequence < committed {
            Err(Code::SequenceReused)
        } else if body.sequence > admitted {
            Err(Code::SequenceGap)
        } else {
            Ok(())
        }
    }

    /// check_tx target: one tx from the input through CheckTx.
    pub fn check_tx_input(&mut self, data: &[u8]) {
        let mut r = Reader::new(data);
        let mut built = self.build(&mut r, usize::MAX);
        // CheckTx judges a recovery by running its handler against committed state (the
        // guardians' approvals): the model does not restate the recovery rules.
        if decode_and_verify(&built.bytes).is_ok_and(|t| {
            matches!(
                t.body().msg,
                Some(medledger_tx::pb::tx_body::Msg::RecoverPatientKey(_))
            )
        }) {
            built.expect = None;
        }
        let got = self.ledger.check_tx(&built.bytes).map_err(|e: TxError| {
            assert!(!e.message.is_empty(), "a refusal must say why");
            e.code
        });
        if let Some(expect) = built.expect {
            assert_eq!(got, expect, "CheckTx disagrees with the model");
        }
        if got.is_ok() {
            // Admitted: the mempool's window of that signer now reaches past it.
            let v = decode_and_verify(&built.bytes).expect("CheckTx admitted an unverifiable tx");
            let admitted = self.expected_sequence(v.signer());
            self.next
                .insert(*v.signer(), admitted.max(v.body().sequence + 1));
        }
    }

    /// apply target: a block of txs from the input through ProcessProposal, FinalizeBlock and
    /// Commit.
    pub fn apply_input(&mut self, data: &[u8]) {
        if self.height > BLOCKS_PER_LEDGER {
            *self = Harness::new();
        }
        let mut r = Reader::new(data);
        let n = 1 + r.u8() as usize % MAX_BLOCK_TXS;
        let mut built = Vec::with_capacity(n);
        for _ in 0..n {
            let b = self.build(&mut r, 512);
            // Within a block the next tx of the same signer follows this one (if it is admitted).
            if let (Some((signer, seq)), Some(Ok(()))) = (b.signed, b.expect) {
                self.next.insert(signer, seq + 1);
            }
            built.push(b);
        }
        self.next.clear();
        let txs: Vec<Vec<u8>> = built.iter().map(|b| b.bytes.clone()).collect();
        let before = self.ledger.info().map(|c| c.app_hash).unwrap();

        // ProcessProposal accepts exactly the blocks whose txs all decode and verify (a
        // certificate makes the answer depend on votes, so it is not modelled).
        let proposal = self.ledger.process_proposal(self.height, &txs);
        if !txs.iter().any(|t| decode_certificate_tx(t).is_some()) {
            // Those the harness signed are valid unless too large; raw bytes are checked here.
            let valid = |b: &Built| match b.signed {
                Some(_) => b.bytes.len() <= MAX_TX_BYTES,
                None => decode_and_verify(&b.bytes).is_ok(),
            };
            let all_valid = built.iter().all(valid);
            assert_eq!(proposal.is_ok(), all_valid, "ProcessProposal: {proposal:?}");
        }

        let result = self
            .ledger
            .finalize_block(self.height, self.time, &txs)
            .unwrap();
        assert_eq!(result.tx_results.len(), txs.len());
        for t in &result.tx_results {
            assert!(
                t.code == 0 || Code::from_value(t.code).is_some(),
                "unknown code {}: {}",
                t.code,
                t.log
            );
            assert!(t.code == 0 || !t.log.is_empty(), "a refusal must say why");
        }

        // Every tx the harness signed got the code the model predicts (the stateless checks,
        // the signer and the sequence are the same in FinalizeBlock as in CheckTx). Who owns a
        // key is modelled from the committed state: once a tx of the block has applied (a
        // recovery may have moved a key), the signer refusals are no longer predicted.
        let mut applied_before = false;
        for (b, t) in built.iter().zip(&result.tx_results) {
            let signer_code = matches!(
                b.expect,
                Some(Err(Code::UnknownSigner)) | Some(Err(Code::KeyRetired))
            );
            if applied_before && signer_code {
                continue;
            }
            applied_before |= t.code == 0;
            if let Some(Err(code)) = b.expect {
                assert_eq!(
                    t.code,
                    code.value(),
                    "FinalizeBlock disagrees with the model: {}",
                    t.log
                );
            }
        }

        // Without an applied tx and without end-of-block effects (expired proposals, validator
        // updates: both reported as block events), the only writes are the sequences consumed
        // by authentic, in-sequence txs that the state machine refused (src/apply.rs). Which
        // txs those are follows from the model, not from the code: stateless checks refuse with
        // domain codes too (e.g. DECISION_MISMATCH), before the sequence step. Raw bytes that
        // happen to verify are not modelled.
        let applied = result.tx_results.iter().any(|t| t.code == 0);
        let raw_verified = built
            .iter()
            .any(|b| b.signed.is_none() && decode_and_verify(&b.bytes).is_ok());
        // A LogAccess refused for want of a consent also records the attempt (its event says
        // so; docs/rules.md, "Refused attempts"): the refused suite checks those writes.
        let recorded_refusal = result.tx_results.iter().any(|t| {
            t.events
                .iter()
                .any(|e| e.kind == "medledger.access.refused")
        });
        if !applied && !raw_verified && !recorded_refusal && result.events.is_empty() {
            let mut writes = medledger_state::store::WriteSet::new();
            for b in &built {
                if let (Some((signer, seq)), Some(Ok(()))) = (b.signed, b.expect) {
                    if self.known(&signer) {
                        writes.insert(keys::sequence(&signer), Some(keys::encode_u64(seq + 1)));
                    }
                }
            }
            let expected = if writes.is_empty() {
                before
            } else {
                // A block that writes anything records its time too.
                writes.insert(keys::block_time(), Some(keys::encode_u64(self.time)));
                self.ledger
                    .store()
                    .stage(self.height, &writes)
                    .unwrap()
                    .root
            };
            assert_eq!(
                result.app_hash, expected,
                "a block without an applied tx changed more than the consumed sequences"
            );
        }
        self.ledger.commit().unwrap();
        self.height += 1;
        self.time += 5;
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

/// check_tx target entry point.
pub fn check_tx(data: &[u8]) {
    with_harness(|h| h.check_tx_input(data));
}

/// apply target entry point.
pub fn apply(data: &[u8]) {
    with_harness(|h| h.apply_input(data));
}

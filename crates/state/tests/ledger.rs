//! The ledger's block lifecycle on a real RocksDB: determinism, atomicity, restart, proofs.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use medledger_state::store::{Store, WriteSet};
use medledger_state::{BlockResult, Ledger};
use medledger_tx::pb::{self, tx_body::Msg, Purpose, TxBody};
use medledger_tx::{ids, keys, sign_tx, Code};
use proptest::prelude::*;
use tempfile::TempDir;

use crate::common::{self, Sequences};

const CHAIN: &str = "test-chain";
const MEMBERS: [&str; 2] = ["hospital-a", "lab-b"];
const T0: u64 = 1_700_000_000;

fn member_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[100 + i as u8; 32])
}

fn patient_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[1 + i as u8; 32])
}

fn ledger() -> (TempDir, Ledger) {
    MEMBERS
        .iter()
        .enumerate()
        .fold(common::Genesis::new(), |g, (i, id)| {
            g.member(id, "hospital", &member_key(i))
        })
        .ledger()
}

fn block(l: &mut Ledger, height: u64, txs: &[Vec<u8>]) -> BlockResult {
    let r = l.finalize_block(height, T0 + height, txs).unwrap();
    l.commit().unwrap();
    r
}

/// hospital-a's enrolment of the patient holding `p` (signed by `member_key(0)`).
fn register(p: &SigningKey) -> Msg {
    Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(p, CHAIN, MEMBERS[0]))
}

fn grant(grantee: &str, class: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec![class.into()],
        purposes: vec![Purpose::Treat as i32],
        not_before: 0,
        not_after: 0,
        ..Default::default()
    })
}

fn access(patient: usize, class: &str) -> Msg {
    Msg::LogAccess(pb::LogAccess {
        patient_id: ids::patient_id(&patient_key(patient).verifying_key().to_bytes()),
        record_id: "r-1".into(),
        data_class: class.into(),
        purpose: Purpose::Treat as i32,
        ..Default::default()
    })
}

fn revoke(id: &str) -> Msg {
    Msg::RevokeConsent(pb::RevokeConsent {
        consent_id: id.into(),
    })
}

#[test]
fn refused_tx_writes_only_its_sequence() {
    let (_d, mut l) = ledger();
    let mut s = Sequences::default();
    let alice = patient_key(0);
    let r1 = block(&mut l, 1, &[s.tx(&member_key(0), register(&alice))]);
    assert_eq!(r1.tx_results[0].code, 0);

    // A patient may not log a treatment access (only their own PATRQT read): refused, but its
    // sequence is consumed.
    let r2 = block(&mut l, 2, &[s.tx(&alice, access(0, "Observation"))]);
    assert_eq!(r2.tx_results[0].code, Code::PatientPurposeOnly.value());
    let pk = alice.verifying_key().to_bytes();
    assert_eq!(
        l.store().get(&keys::sequence(&pk)).unwrap(),
        Some(keys::encode_u64(1))
    );
    let pid = ids::patient_id(&pk);
    assert_eq!(l.store().get(&keys::access_count(&pid)).unwrap(), None);

    // Txs refused before their sequence check write nothing at all: the root does not move.
    let mut forged = s.tx(&member_key(0), register(&alice));
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let stale = sign_tx(
        &alice,
        &TxBody {
            chain_id: CHAIN.into(),
            sequence: 0,
            unordered: None,
            msg: Some(grant("hospital-a", "Observation")),
        },
    );
    let r3 = block(&mut l, 3, &[forged, stale, vec![1, 2, 3]]);
    let codes: Vec<u32> = r3.tx_results.iter().map(|t| t.code).collect();
    assert_eq!(
        codes,
        vec![
            Code::BadSignature.value(),
            Code::SequenceReused.value(),
            Code::TxDecode.value()
        ]
    );
    assert_eq!(r3.app_hash, r2.app_hash);
}

/// CheckTx keeps a signer's pending sequences across blocks: many txs in flight, a resend of a
/// pending one, no gap, no reuse of a committed one.
#[test]
fn check_tx_admits_a_window_of_pending_sequences_across_commits() {
    let (_d, mut l) = ledger();
    let hosp = member_key(0);
    let tx = |sequence: u64| {
        sign_tx(
            &hosp,
            &TxBody {
                chain_id: CHAIN.into(),
                sequence,
                unordered: None,
                msg: Some(register(&patient_key(sequence as usize))),
            },
        )
    };
    let txs: Vec<Vec<u8>> = (0..4).map(tx).collect();
    for t in &txs {
        l.check_tx(t).unwrap();
    }
    assert_eq!(l.check_tx(&tx(5)).unwrap_err().code, Code::SequenceGap);
    // Block 1 commits sequences 0 and 1; 2 and 3 stay pending and 4 is next, without a recheck.
    block(&mut l, 1, &txs[..2]);
    l.check_tx(&tx(4)).unwrap();
    l.check_tx(&txs[2]).unwrap(); // a resend (or a recheck) of a pending tx
    assert_eq!(l.check_tx(&txs[0]).unwrap_err().code, Code::SequenceReused);
    assert_eq!(l.check_tx(&tx(6)).unwrap_err().code, Code::SequenceGap);
}

#[test]
fn revocation_applies_from_the_next_block() {
    let (_d, mut l) = ledger();
    let mut s = Sequences::default();
    let (alice, hosp) = (patient_key(0), member_key(0));
    block(
        &mut l,
        1,
        &[
            s.tx(&member_key(0), register(&alice)),
            s.tx(&alice, grant("hospital-a", "Observation")),
        ],
    );
    let r = block(
        &mut l,
        2,
        &[
            s.tx(&alice, revoke("c-1")),
            s.tx(&hosp, access(0, "Observation")),
        ],
    );
    assert_eq!(
        r.tx_results[1].code, 0,
        "same block as the revocation: still permitted"
    );
    let r = block(&mut l, 3, &[s.tx(&hosp, access(0, "Observation"))]);
    assert_eq!(r.tx_results[0].code, Code::NoPermittingConsent.value());
    let r = block(&mut l, 4, &[s.tx(&alice, revoke("c-1"))]);
    assert_eq!(r.tx_results[0].code, Code::ConsentAlreadyRevoked.value());
}

#[test]
fn only_the_patient_revokes_and_only_members_are_grantees() {
    let (_d, mut l) = ledger();
    let mut s = Sequences::default();
    let (alice, bob) = (patient_key(0), patient_key(1));
    let r = block(
        &mut l,
        1,
        &[
            s.tx(&member_key(0), register(&alice)),
            s.tx(&member_key(0), register(&bob)),
            s.tx(&alice, grant("hospital-a", "Observation")),
            s.tx(&bob, revoke("c-1")),
            s.tx(&alice, grant("no-such-member", "Observation")),
            s.tx(&member_key(0), register(&member_key(0))),
            s.tx(&member_key(0), register(&alice)),
            s.tx(&patient_key(5), grant("hospital-a", "Observation")),
        ],
    );
    let codes: Vec<u32> = r.tx_results.iter().map(|t| t.code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            0,
            0,
            Code::NotConsentOwner.value(),
            Code::UnknownMember.value(),
            Code::KeyInUse.value(),
            Code::PatientExists.value(),
            Code::UnknownSigner.value(),
        ]
    );
}

#[test]
fn restart_reports_the_last_commit_and_replays_the_lost_block_identically() {
    let (dir, first) = ledger();
    let mut s = Sequences::default();
    let txs2 = vec![s.tx(&member_key(0), register(&patient_key(1)))];
    let lost_hash = {
        let mut l = first;
        block(
            &mut l,
            1,
            &[s.tx(&member_key(0), register(&patient_key(0)))],
        );
        // Finalized but never committed: the node dies here.
        l.finalize_block(2, T0 + 2, &txs2).unwrap().app_hash
    };
    let mut l = Ledger::open(dir.path()).unwrap();
    assert_eq!(l.info().map(|c| c.height), Some(1));
    assert_eq!(l.chain_id(), CHAIN);
    let replayed = block(&mut l, 2, &txs2);
    assert_eq!(replayed.app_hash, lost_hash);
    assert_eq!(l.info().map(|c| c.app_hash), Some(lost_hash));
}

#[test]
fn proofs_of_presence_and_absence_verify_at_every_height() {
    let (_d, mut l) = ledger();
    let mut s = Sequences::default();
    let alice = patient_key(0);
    let r1 = block(
        &mut l,
        1,
        &[
            s.tx(&member_key(0), register(&alice)),
            s.tx(&alice, grant("hospital-a", "Observation")),
        ],
    );
    let r2 = block(&mut l, 2, &[s.tx(&alice, revoke("c-1"))]);
    let key = keys::consent("c-1");
    for (h, root) in [(1, r1.app_hash), (2, r2.app_hash)] {
        let (value, proof) = l.store().prove(&key, h).unwrap();
        let value = value.unwrap();
        assert!(medledger_query::verify(&root, &key, Some(&value), &proof).is_ok());
        let other_root = if h == 1 { r2.app_hash } else { r1.app_hash };
        assert!(medledger_query::verify(&other_root, &key, Some(&value), &proof).is_err());
        let (none, absent) = l.store().prove(&keys::consent("c-2"), h).unwrap();
        assert_eq!(none, None);
        assert!(medledger_query::verify(&root, &keys::consent("c-2"), None, &absent).is_ok());
        // An absence proof cannot be passed off as a value, nor a value proof as an absence.
        assert!(
            medledger_query::verify(&root, &keys::consent("c-2"), Some(b"x"), &absent).is_err()
        );
        assert!(medledger_query::verify(&root, &key, None, &proof).is_err());
    }
}

#[test]
fn queries_answer_at_a_height_and_refuse_the_future() {
    let (_d, mut l) = ledger();
    let mut s = Sequences::default();
    block(
        &mut l,
        1,
        &[s.tx(&member_key(0), register(&patient_key(0)))],
    );
    let a = l.query("/consent/c-1", &[], 0, true);
    assert_eq!(
        (a.code, a.height, a.value.is_none(), a.proof.is_some()),
        (0, 1, true, true)
    );
    assert_eq!(
        l.query("/consent/c-1", &[], 9, false).code,
        medledger_tx::QueryCode::FutureHeight as u32
    );
    assert_eq!(
        l.query("", &[], 0, false).code,
        medledger_tx::QueryCode::BadPath as u32
    );
    assert_eq!(
        l.query(&"/x".repeat(200), &[], 0, false).code,
        medledger_tx::QueryCode::BadPath as u32
    );
}

/// One step of a random workload.
#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Grant(usize, usize, bool),
    Revoke(usize, u64),
    Access(usize, usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Register),
        (0..3usize, 0..2usize, any::<bool>()).prop_map(|(p, m, c)| Op::Grant(p, m, c)),
        (0..3usize, 0..4u64).prop_map(|(p, k)| Op::Revoke(p, k)),
        (0..2usize, 0..3usize, any::<bool>()).prop_map(|(m, p, c)| Op::Access(m, p, c)),
    ]
}

fn class(c: bool) -> &'static str {
    if c {
        "Observation"
    } else {
        "Condition"
    }
}

fn to_tx(s: &mut Sequences, model: &Model, op: &Op) -> Vec<u8> {
    match *op {
        Op::Register(p) => s.tx(&member_key(0), register(&patient_key(p))),
        Op::Grant(p, m, c) => s.tx(&patient_key(p), grant(MEMBERS[m], class(c))),
        // Revoke one of the patient's own consents from earlier blocks (so revocations happen),
        // or, when there is none, someone else's.
        Op::Revoke(p, k) => s.tx(&patient_key(p), revoke(&model.consent_of(p, k))),
        Op::Access(m, p, c) => s.tx(&member_key(m), access(p, class(c))),
    }
}

/// A naive model of consent: which (patient, member, class) grants exist and when revoked.
#[derive(Default)]
struct Model {
    registered: [bool; 3],
    consents: Vec<(usize, usize, bool, Option<u64>)>,
}

impl Model {
    /// Whether an access must be accepted at `height`.
    fn permits(&self, m: usize, p: usize, c: bool, height: u64) -> bool {
        self.registered[p]
            && self.consents.iter().any(|&(cp, cm, cc, rev)| {
                cp == p && cm == m && cc == c && rev.is_none_or(|r| height <= r)
            })
    }

    /// The id of the `k`-th (mod count) consent of patient `p`, else of anyone.
    fn consent_of(&self, p: usize, k: u64) -> String {
        let own: Vec<usize> = (0..self.consents.len())
            .filter(|&i| self.consents[i].0 == p)
            .collect();
        let i = if own.is_empty() {
            k as usize
        } else {
            own[k as usize % own.len()]
        };
        format!("c-{}", i + 1)
    }

    fn apply(&mut self, op: &Op, height: u64, code: u32, revoked: Option<&str>) {
        match *op {
            Op::Register(p) if code == 0 => self.registered[p] = true,
            Op::Grant(p, m, c) if code == 0 => self.consents.push((p, m, c, None)),
            Op::Revoke(..) if code == 0 => {
                let n: usize = revoked
                    .and_then(|id| id.strip_prefix("c-"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                self.consents[n - 1].3 = Some(height);
            }
            _ => {}
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Two fresh nodes given the same blocks compute the same app hash at every height, and no
    /// access is ever accepted unless a consent permitted it in that block.
    #[test]
    fn same_blocks_same_app_hash_and_no_access_without_consent(blocks in prop::collection::vec(prop::collection::vec(op(), 0..8), 1..8)) {
        let (_d1, mut a) = ledger();
        let (_d2, mut b) = ledger();
        let mut signer = Sequences::default();
        let mut model = Model::default();
        for (i, ops) in blocks.iter().enumerate() {
            let height = i as u64 + 1;
            let txs: Vec<Vec<u8>> = ops.iter().map(|op| to_tx(&mut signer, &model, op)).collect();
            let ra = block(&mut a, height, &txs);
            let rb = block(&mut b, height, &txs);
            prop_assert_eq!(ra.app_hash, rb.app_hash);
            for (op, result) in ops.iter().zip(&ra.tx_results) {
                if let Op::Access(m, p, c) = *op {
                    let expected = model.permits(m, p, c, height);
                    prop_assert_eq!(result.code == 0, expected, "access {:?} at {}: {}", op, height, result.log);
                }
                let revoked = result.events.iter().flat_map(|e| &e.attributes).find(|(k, _)| *k == "consent_id");
                model.apply(op, height, result.code, revoked.map(|(_, v)| v.as_str()));
            }
        }
    }

    /// The root after many incremental versions equals the root of the final key-value set
    /// written from scratch in one version.
    #[test]
    fn incremental_root_equals_rebuild(versions in prop::collection::vec(
        prop::collection::vec((0..40u8, prop::option::of(prop::collection::vec(any::<u8>(), 1..16))), 0..20), 1..10)) {
        let d1 = tempfile::tempdir().unwrap();
        let mut incremental = Store::open(d1.path()).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut root = [0u8; 32];
        for (v, writes) in versions.iter().enumerate() {
            let ws: WriteSet = writes.iter().map(|(k, val)| (vec![b'k', *k], val.clone())).collect();
            for (k, val) in &ws {
                match val {
                    Some(val) => { model.insert(k.clone(), val.clone()); }
                    None => { model.remove(k); }
                }
            }
            let staged = incremental.stage(v as u64, &ws).unwrap();
            root = incremental.commit(staged).unwrap().app_hash;
        }
        let d2 = tempfile::tempdir().unwrap();
        let mut rebuilt = Store::open(d2.path()).unwrap();
        let ws: WriteSet = model.into_iter().map(|(k, v)| (k, Some(v))).collect();
        let staged = rebuilt.stage(0, &ws).unwrap();
        prop_assert_eq!(rebuilt.commit(staged).unwrap().app_hash, root);
    }
}

mod certificates {
    use super::*;
    use medledger_state::ledger::VoteExtension;
    use medledger_tx::checkpoint::{decode_certificate_tx, encode_certificate_tx, BlsKey};

    fn bls(i: u8) -> BlsKey {
        BlsKey::from_ikm(&[50 + i; 32]).unwrap()
    }

    /// Four members, each running a validator of power 10 with a BLS key.
    fn ledger_with_validators() -> (TempDir, Ledger) {
        let members: Vec<_> = (0..4u8)
            .map(|i| {
                let k = bls(i);
                serde_json::json!({"id": format!("m-{i}"), "name": "m", "kind": "hospital",
                    "admin_key": hex::encode(SigningKey::from_bytes(&[200 + i; 32]).verifying_key().to_bytes()),
                    "validator": {"address": hex::encode([i; 20]), "bls_key": hex::encode(k.public_key()),
                                  "bls_pop": hex::encode(k.proof_of_possession())}})
            })
            .collect();
        let app_state = serde_json::to_vec(&serde_json::json!({ "members": members })).unwrap();
        let validators: Vec<([u8; 20], u64)> = (0..4u8).map(|i| ([i; 20], 10)).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        l.init_chain(CHAIN, 1, &app_state, &validators).unwrap();
        block(&mut l, 1, &[]);
        block(&mut l, 2, &[]);
        (dir, l)
    }

    /// The precommits of height 2 as the proposer of block 3 sees them: each signs state 1.
    fn votes(l: &Ledger, signers: &[u8]) -> Vec<VoteExtension> {
        let root1 = l.store().root_at(1).unwrap();
        signers
            .iter()
            .map(|&i| VoteExtension {
                address: [i; 20],
                committed: true,
                extension: bls(i).sign_checkpoint(CHAIN, 1, &root1).to_vec(),
            })
            .collect()
    }

    /// A tx of roughly `size` bytes that decodes and verifies (its key id pads it).
    fn padded_tx(signer: &mut Sequences, size: usize) -> Vec<u8> {
        signer.tx(
            &member_key(0),
            Msg::AnchorRecord(pb::AnchorRecord {
                record_id: "r".into(),
                patient_id: "p".into(),
                resource_type: "Observation".into(),
                content_hash: vec![1; 32],
                size: 1,
                key_id: "k".repeat(size.min(60_000)),
                holders: vec![],
                threshold: 0,
                share_commitments: vec![],
            }),
        )
    }

    /// CometBFT's own measure of a proposal against `max_tx_bytes`: the protobuf size of `Data`.
    fn comet_size(txs: &[Vec<u8>]) -> u64 {
        let data = tendermint_proto::v0_38::types::Data { txs: txs.to_vec() };
        prost::Message::encoded_len(&data) as u64
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The framing formula is CometBFT's (`ComputeProtoSizeForTxs`) for every length.
        #[test]
        fn framed_size_is_cometbft_s(lens in prop::collection::vec(0usize..300_000, 0..8)) {
            let txs: Vec<Vec<u8>> = lens.iter().map(|&n| vec![0; n]).collect();
            let ours: u64 = lens.iter().map(|&n| medledger_state::ledger::framed_tx_size(n)).sum();
            prop_assert_eq!(ours, comet_size(&txs));
        }

        /// Whatever the tx sizes, counts and limit, the proposal (certificate included) never
        /// exceeds `max_tx_bytes` as CometBFT counts it, and it stops only where the next tx
        /// would not fit.
        #[test]
        fn a_proposal_never_exceeds_max_tx_bytes(
            sizes in prop::collection::vec(0usize..2_000, 1..120),
            max in 0u64..60_000,
            with_cert in any::<bool>(),
        ) {
            let (_d, mut l) = ledger_with_validators();
            let mut signer = Sequences::default();
            let txs: Vec<Vec<u8>> = sizes.iter().map(|&n| padded_tx(&mut signer, n)).collect();
            let v = if with_cert { votes(&l, &[0, 1, 2, 3]) } else { vec![] };
            let out = l.prepare_proposal(3, &v, txs.clone(), max);
            prop_assert!(comet_size(&out) <= max, "{} > {max}", comet_size(&out));
            let users = out.iter().filter(|t| decode_certificate_tx(t).is_none()).count();
            prop_assert_eq!(&out[out.len() - users..], &txs[..users]);
            if users < txs.len() {
                let mut more = out.clone();
                more.push(txs[users].clone());
                prop_assert!(comet_size(&more) > max, "tx {users} would have fit");
            }
        }
    }

    #[test]
    fn genesis_rejects_a_bls_key_without_proof_of_possession() {
        let k = bls(0);
        let member = serde_json::json!({"id": "m", "name": "m", "kind": "lab",
            "admin_key": hex::encode([9u8; 32]),
            "validator": {"address": hex::encode([0u8; 20]), "bls_key": hex::encode(k.public_key()),
                          "bls_pop": hex::encode(bls(1).proof_of_possession())}});
        let app_state = serde_json::to_vec(&serde_json::json!({ "members": [member] })).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        assert!(l
            .init_chain(CHAIN, 1, &app_state, &[([0; 20], 10)])
            .is_err());
    }

    #[test]
    fn genesis_keeps_cometbfts_consensus_params_provably_and_bounds_them() {
        let app_state = serde_json::to_vec(&serde_json::json!({ "members": [] })).unwrap();
        let validators = [([7u8; 32], 10)];
        let params = b"\x0a\x06\x08\x80\x80\x40\x10\x01".to_vec();
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        l.init_chain_with_keys(CHAIN, 1, &app_state, &validators, &params)
            .unwrap();
        assert_eq!(l.consensus_params().unwrap(), Some(params.clone()));
        let a = l.query("/consensus/params", &[], 0, true);
        assert_eq!((a.code, a.value), (0, Some(params)), "{}", a.log);
        assert!(a.proof.is_some());
        let huge = vec![0u8; medledger_state::ledger::MAX_CONSENSUS_PARAMS_BYTES + 1];
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(dir.path()).unwrap();
        assert!(l
            .init_chain_with_keys(CHAIN, 1, &app_state, &validators, &huge)
            .is_err());
    }

    #[test]
    fn vote_extensions_must_sign_the_last_committed_state() {
        let (_d, l) = ledger_with_validators();
        let root2 = l.store().root_at(2).unwrap();
        let good = bls(1).sign_checkpoint(CHAIN, 2, &root2);
        assert!(l.verify_vote_extension(&[1; 20], 3, &good));
        assert!(
            l.verify_vote_extension(&[1; 20], 3, &[]),
            "a validator may opt out"
        );
        assert!(
            !l.verify_vote_extension(&[2; 20], 3, &good),
            "another validator's share"
        );
        assert!(
            !l.verify_vote_extension(&[1; 20], 3, &bls(1).sign_checkpoint(CHAIN, 1, &root2)),
            "wrong height"
        );
        assert!(
            !l.verify_vote_extension(&[9; 20], 3, &good),
            "unknown validator"
        );
        assert!(!l.verify_vote_extension(&[1; 20], 3, &[0u8; 96]), "garbage");
    }

    #[test]
    fn proposer_certificate_is_checked_and_stored() {
        let (_d, mut l) = ledger_with_validators();
        assert!(
            l.build_certificate(3, &votes(&l, &[0, 1])).is_none(),
            "2 of 4 is not > 2/3"
        );
        let txs = l.prepare_proposal(3, &votes(&l, &[0, 2, 3]), vec![], 1 << 20);
        let cert = decode_certificate_tx(&txs[0]).unwrap().unwrap();
        assert_eq!(cert.height, 1);
        assert!(l.process_proposal(3, &txs).is_ok());

        // Wrong position, wrong height, tampered root: the block is rejected.
        let user_tx = Sequences::default().tx(
            &SigningKey::from_bytes(&[200; 32]),
            Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
                &patient_key(0),
                CHAIN,
                "m-0",
            )),
        );
        assert_eq!(
            l.process_proposal(3, &[user_tx.clone(), txs[0].clone()])
                .unwrap_err()
                .code,
            Code::ProposerOnly
        );
        assert_eq!(
            l.process_proposal(4, &txs).unwrap_err().code,
            Code::ProposerOnly
        );
        let mut forged = cert.clone();
        forged.app_hash[0] ^= 1;
        assert_eq!(
            l.process_proposal(3, &[encode_certificate_tx(&forged)])
                .unwrap_err()
                .code,
            Code::ProposerOnly
        );
        let mut no_signers = cert.clone();
        no_signers.signers = vec![0b0000_0111];
        assert_eq!(
            l.process_proposal(3, &[encode_certificate_tx(&no_signers)])
                .unwrap_err()
                .code,
            Code::ProposerOnly
        );

        let r = block(&mut l, 3, &[txs[0].clone(), user_tx]);
        assert_eq!(
            r.tx_results.iter().map(|t| t.code).collect::<Vec<_>>(),
            vec![0, 0]
        );
        let stored = l.store().get(&keys::certificate(1)).unwrap().unwrap();
        assert_eq!(prost::Message::decode(stored.as_slice()), Ok(cert));
        assert_eq!(
            l.store().get(&keys::latest_certificate()).unwrap(),
            Some(keys::encode_u64(1))
        );
        // Users cannot submit one.
        assert_eq!(l.check_tx(&txs[0]).unwrap_err().code, Code::ProposerOnly);
    }

    /// A snapshot's chain id is not part of the state: the restored state's newest certificate
    /// must be signed for it, or the snapshot is rejected unwritten.
    #[test]
    fn a_snapshot_naming_another_chain_id_is_rejected_by_its_own_certificate() {
        use medledger_state::ledger::ChunkOutcome;
        use medledger_state::snapshot::SnapshotStore;
        let (_d, mut l) = ledger_with_validators();
        let txs = l.prepare_proposal(3, &votes(&l, &[0, 1, 2]), vec![], 1 << 20);
        assert!(decode_certificate_tx(&txs[0]).is_some());
        l.finalize_block(3, T0 + 3, &txs).unwrap();
        let at = l.commit().unwrap();
        assert!(
            medledger_state::view::StateRead::get(l.store(), &keys::certificate(1))
                .unwrap()
                .is_some(),
            "state 3 holds the certificate of state 1"
        );
        let snaps = tempfile::tempdir().unwrap();
        for (chain, accepted) in [("another-chain", false), (CHAIN, true)] {
            let store = SnapshotStore::new(&snaps.path().join(chain));
            let s = store
                .create(&l.store().exporter(), 3, chain, 1 << 20)
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let mut fresh = Ledger::open(dir.path()).unwrap();
            fresh.offer_snapshot(&s, &at.app_hash).unwrap();
            let mut last = ChunkOutcome::Accept;
            for i in 0..s.chunks {
                last = fresh
                    .apply_snapshot_chunk(i, &store.chunk(3, s.format, i).unwrap())
                    .unwrap();
            }
            if accepted {
                assert_eq!(last, ChunkOutcome::Accept);
                assert_eq!(fresh.chain_id(), CHAIN);
                assert_eq!(fresh.info(), Some(at));
            } else {
                assert!(
                    matches!(last, ChunkOutcome::Reject(ref why) if why.contains("chain id")),
                    "{last:?}"
                );
                assert_eq!(fresh.info(), None, "nothing written");
            }
        }
    }
}

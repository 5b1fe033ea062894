//! Integration tests against a real 4-validator CometBFT localnet: consent gates access, proofs
//! verify against committed headers, bad input gets stable codes, and killed nodes rejoin.

use std::time::Duration;

use ed25519_dalek::SigningKey;
use medledger_devnet::localnet::Proc;
use medledger_tx::pb::{self, tx_body::Msg, Consent, TxBody};
use medledger_tx::{ids, keys, sign_tx, Code};
use prost::Message;

use crate::support::{self, grant, read, Patient, TestNet};

fn patient_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_consent_rejects_later_access_and_proofs_verify() {
    let t = TestNet::start().await;
    let c = t.client(0);
    let hospital = t.member_key("hospital-a");
    let Patient {
        key: alice,
        id: patient,
        consent_id,
    } = t.consenting_patient(11, "hospital-a").await;

    // Another member has no consent: refused.
    let r = c
        .submit(&t.member_key("lab-b"), read(&patient, "obs-0"))
        .await
        .unwrap();
    assert_eq!(r.code, Code::NoPermittingConsent.value(), "{}", r.log);

    let r = c.submit(&hospital, read(&patient, "obs-1")).await.unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(r.attribute("consent_id"), Some(consent_id.as_str()));

    let r = c
        .submit(
            &alice,
            Msg::RevokeConsent(pb::RevokeConsent {
                consent_id: consent_id.clone(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let revoked_at = r.height;

    let r = c.submit(&hospital, read(&patient, "obs-2")).await.unwrap();
    assert_eq!(r.code, Code::NoPermittingConsent.value(), "{}", r.log);
    assert!(r.height > revoked_at);

    // Another node serves the same, proven, answer: the consent is revoked.
    let answer = t
        .client(2)
        .query_proven(&keys::consent(&consent_id), 0)
        .await
        .unwrap();
    let consent = Consent::decode(answer.value.as_deref().unwrap()).unwrap();
    assert_eq!(consent.revoked_height, revoked_at);
    assert_eq!(consent.patient_id, patient);

    // Exactly one access event, proven.
    let count = t
        .client(1)
        .query_proven(&keys::access_count(&patient), 0)
        .await
        .unwrap();
    assert_eq!(count.value.as_deref().and_then(keys::decode_u64), Some(1));

    // Absence of an unknown consent is proven too.
    let absent = c.query_proven(&keys::consent("c-999"), 0).await.unwrap();
    assert_eq!(absent.value, None);

    // A tampered value does not verify against the committed app hash.
    let proof = tendermint_rpc::Client::abci_query(
        c.rpc(),
        Some("/store".into()),
        keys::consent(&consent_id),
        None,
        true,
    )
    .await
    .unwrap();
    let app_hash = c.app_hash_for_state(proof.height.value()).await.unwrap();
    let op = &proof.proof.as_ref().unwrap().ops[0];
    assert_eq!(op.field_type, medledger_query::PROOF_OP_TYPE);
    let p = medledger_query::decode_proof(
        &op.field_type,
        &op.data,
        &keys::consent(&consent_id),
        Some(&proof.value),
    )
    .unwrap();
    let mut tampered = proof.value.clone();
    tampered[3] ^= 1;
    assert!(medledger_query::verify(
        &app_hash,
        &keys::consent(&consent_id),
        Some(&proof.value),
        &p
    )
    .is_ok());
    assert!(
        medledger_query::verify(&app_hash, &keys::consent(&consent_id), Some(&tampered), &p)
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_own_code_and_the_chain_goes_on() {
    let t = TestNet::start().await;
    let c = t.client(1);
    // hospital-a enrols patient 21; its txs are the ones tampered with below.
    let key = t.member_key("hospital-a");
    let patient = patient_key(21);
    let body = |chain_id: &str, sequence: u64| TxBody {
        chain_id: chain_id.into(),
        sequence,
        unordered: None,
        msg: Some(Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
            &patient,
            chain_id,
            "hospital-a",
        ))),
    };

    let garbage = c
        .broadcast(vec![0xde, 0xad, 0xbe, 0xef, 0xff])
        .await
        .unwrap();
    assert_eq!(garbage.code, Code::TxDecode.value(), "{}", garbage.log);

    let oversized = c
        .broadcast(vec![0u8; medledger_tx::limits::MAX_TX_BYTES + 1])
        .await
        .unwrap();
    assert_eq!(
        oversized.code,
        Code::TxTooLarge.value(),
        "{}",
        oversized.log
    );

    let wrong_chain = c
        .broadcast(sign_tx(&key, &body("another-chain", 0)))
        .await
        .unwrap();
    assert_eq!(
        wrong_chain.code,
        Code::WrongChainId.value(),
        "{}",
        wrong_chain.log
    );

    let mut forged = pb::Tx::decode(sign_tx(&key, &body(&t.chain_id, 0)).as_slice()).unwrap();
    forged.signature[0] ^= 0x01;
    let bad_sig = c.broadcast(forged.encode_to_vec()).await.unwrap();
    assert_eq!(bad_sig.code, Code::BadSignature.value(), "{}", bad_sig.log);

    let ok = c
        .broadcast(sign_tx(&key, &body(&t.chain_id, 0)))
        .await
        .unwrap();
    assert_eq!(ok.code, 0, "{}", ok.log);
    // Same sequence again, different bytes (a different message): a replay of sequence 0.
    let again = TxBody {
        msg: Some(grant("hospital-a")),
        ..body(&t.chain_id, 0)
    };
    let reused = c.broadcast(sign_tx(&key, &again)).await.unwrap();
    assert_eq!(reused.code, Code::SequenceReused.value(), "{}", reused.log);
    let gap = c
        .broadcast(sign_tx(&key, &body(&t.chain_id, 5)))
        .await
        .unwrap();
    assert_eq!(gap.code, Code::SequenceGap.value(), "{}", gap.log);

    // A key the ledger does not know is refused before the mempool, whatever it sends.
    let outsider = TxBody {
        msg: Some(grant("hospital-a")),
        ..body(&t.chain_id, 0)
    };
    let outsider = c
        .broadcast(sign_tx(&patient_key(22), &outsider))
        .await
        .unwrap();
    assert_eq!(
        (outsider.code, outsider.height),
        (Code::UnknownSigner.value(), 0),
        "{}",
        outsider.log
    );

    // Nothing stopped: the chain still commits good transactions on every node.
    let r = c.submit(&patient, grant("lab-b")).await.unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    t.wait_all(&[0, 1, 2, 3], r.height + 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_validator_is_tolerated_and_catches_up_to_the_same_app_hash() {
    let t = TestNet::start().await;
    t.kill9(3, Proc::CometBft);
    t.kill9(3, Proc::App);

    // Three of four validators hold > 2/3 of the power: the chain keeps committing txs.
    for seed in 30..33 {
        let k = patient_key(seed);
        t.enrol_patient(0, &k).await;
    }
    let h = t.height(0).await;

    t.net.start_node(3).unwrap();
    t.wait_all(&[3], h + 2).await;
    let hashes = t.app_hashes_at(&[0, 1, 2, 3], h + 1).await;
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "app hashes differ at {}: {hashes:?}",
        h + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_app_replays_its_missing_blocks_and_rejoins() {
    let t = TestNet::start().await;
    t.kill9(2, Proc::App);
    // CometBFT v0.38 shuts itself down when its app connection dies (it must not sign blocks it
    // cannot execute): operators restart the pair, which `localnet up` / `start_node` do.
    // (It notices at its next use of the connection; on a loaded machine that took over 45 s.)
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while t.net.running_pid(2, Proc::CometBft).is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "CometBFT kept running without its app"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    t.net.stop(2, Proc::CometBft, true).unwrap(); // reap the exited process and its PID file

    let c = t.client(0);
    let k = patient_key(40);
    t.enrol_patient(0, &k).await;
    let r = c.submit(&k, grant("insurer-c")).await.unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let h = t.height(0).await;

    t.net.start_node(2).unwrap();
    t.wait_all(&[2], h + 2).await;
    let hashes = t.app_hashes_at(&[0, 1, 2, 3], h + 1).await;
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "app hashes differ at {}: {hashes:?}",
        h + 1
    );
    // The restarted node answers from its own replayed state.
    let consent = t
        .client(2)
        .query_proven(&keys::consent(r.attribute("consent_id").unwrap()), 0)
        .await
        .unwrap();
    assert!(consent.value.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_proves_answers_against_headers_signed_by_the_consortium() {
    use medledger_client::verify::{verify_history, verify_key, Trust};
    use medledger_query::history::verify_access_history;
    use medledger_query::light::{verify_header, HeaderError};

    let t = TestNet::start().await;
    let c = t.client(0);
    let patient = t.consenting_patient(51, "hospital-a").await.id;
    for record in ["obs-1", "obs-2", "obs-3"] {
        assert_eq!(
            c.submit(&t.member_key("hospital-a"), read(&patient, record))
                .await
                .unwrap()
                .code,
            0
        );
    }
    let genesis = t.net.dir.join("hospital-a/cometbft/config/genesis.json");
    let trust = Trust::from_genesis(&genesis, false).unwrap();
    let Trust::Headers(trusted) = &trust else {
        panic!("header trust")
    };
    let trusted = trusted.clone();

    // A consent, an absence and a complete history, each proven under a signed header.
    let consent = verify_key(&c, &trust, &keys::consent("c-1"), 0)
        .await
        .unwrap();
    assert!(consent.value.is_some());
    let a = &consent.attestation;
    assert!(a.signed_power * 3 > a.total_power * 2, "{a:?}");
    assert!(
        a.signers.iter().all(|s| s.contains('-')),
        "signers are named from genesis: {:?}",
        a.signers
    );
    assert_eq!(
        verify_key(&c, &trust, &keys::consent("c-404"), 0)
            .await
            .unwrap()
            .value,
        None
    );
    let (events, attestation) = verify_history(&c, &trust, &patient, 0).await.unwrap();
    let height = attestation.height;
    assert_eq!(
        events
            .iter()
            .map(|e| e.record_id.as_str())
            .collect::<Vec<_>>(),
        ["obs-1", "obs-2", "obs-3"]
    );

    // Dropping one event from the answer is caught by the proven count.
    let (count, _) = c
        .read_with_proof(&keys::access_count(&patient), height)
        .await
        .unwrap();
    let mut reads = Vec::new();
    for i in 0..3 {
        reads.push(
            c.read_with_proof(&keys::access_event(&patient, i), height)
                .await
                .unwrap()
                .0,
        );
    }
    let app_hash = medledger_client::verify::attest(&c, &trust, height)
        .await
        .unwrap()
        .app_hash;
    assert_eq!(
        verify_access_history(&app_hash, &patient, &count, &reads)
            .unwrap()
            .len(),
        3
    );
    reads.remove(1);
    assert!(verify_access_history(&app_hash, &patient, &count, &reads).is_err());

    // Tampered header, validator set, trust root and chain id are each refused.
    let (header, validators) = c.light_block(height + 1).await.unwrap();
    let now = header.header.time;
    assert!(verify_header(&trusted, &header, &validators, now).is_ok());
    let mut forged = header.clone();
    forged.header.app_hash = tendermint::AppHash::try_from(vec![7u8; 32]).unwrap();
    assert!(
        verify_header(&trusted, &forged, &validators, now).is_err(),
        "a changed app hash breaks the commit"
    );
    assert!(
        verify_header(&trusted, &header, &validators[1..], now).is_err(),
        "validator set must match the header"
    );
    let mut stranger = trusted.clone();
    let key = SigningKey::from_bytes(&[99; 32]).verifying_key().to_bytes();
    let pk = tendermint::PublicKey::from_raw_ed25519(&key).unwrap();
    stranger.validators =
        tendermint::validator::Set::without_proposer(vec![tendermint::validator::Info::new(
            pk,
            10u32.into(),
        )]);
    assert!(matches!(
        verify_header(&stranger, &header, &validators, now),
        Err(HeaderError::NotEnoughTrust { .. })
    ));
    let mut other_chain = trusted.clone();
    other_chain.chain_id = "another-consortium".into();
    assert!(matches!(
        verify_header(&other_chain, &header, &validators, now),
        Err(HeaderError::ChainId { .. })
    ));

    // The CLI says so, for people and for programs.
    let out = std::process::Command::new(support::medledger_bin())
        .args([
            "verify",
            "--node",
            &t.net.spec.nodes[1].rpc_url(),
            "--genesis",
        ])
        .arg(&genesis)
        .args(["-o", "json", "consent", "c-1"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verified"], true, "{json}");
    assert_eq!(json["state"], "ACTIVE");
    let csv = std::process::Command::new(support::medledger_bin())
        .args([
            "verify",
            "--node",
            &t.net.spec.nodes[2].rpc_url(),
            "--genesis",
        ])
        .arg(&genesis)
        .args(["access", &patient, "--export", "csv"])
        .output()
        .unwrap();
    assert!(csv.status.success());
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout).lines().count(),
        4,
        "header + 3 disclosures"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bls_certificates_appear_every_block_and_prove_answers() {
    use medledger_client::verify::{verify_key, Trust};
    use medledger_query::certificate::CertTrust;
    use medledger_tx::checkpoint::decode_certificate_tx;

    let t = TestNet::start().await;
    let c = t.client(0);
    let alice = patient_key(61);
    t.enrol_patient(0, &alice).await;
    let r = c.submit(&alice, grant("lab-b")).await.unwrap();
    assert_eq!(r.code, 0);
    t.wait_all(&[0], r.height + 3).await;

    let genesis = std::fs::read(t.net.dir.join("hospital-a/cometbft/config/genesis.json")).unwrap();
    let trust = CertTrust::from_genesis_json(&genesis).unwrap();
    // Every block from 3 on starts with a certificate of the state two blocks back.
    for h in 3..=r.height + 2 {
        let block =
            tendermint_rpc::Client::block(c.rpc(), tendermint::block::Height::try_from(h).unwrap())
                .await
                .unwrap();
        let first = block
            .block
            .data
            .first()
            .unwrap_or_else(|| panic!("block {h} has no certificate"));
        let cert = decode_certificate_tx(first)
            .unwrap_or_else(|| panic!("block {h} does not start with a certificate"))
            .unwrap();
        assert_eq!(cert.height, h - 2);
        let (state, signers) = trust.verify(&cert).unwrap();
        assert!(state.signed_power * 3 > state.total_power * 2);
        assert!(signers.len() >= 3, "{signers:?}");
        // Claiming a validator that did not sign (or dropping one that did) breaks it.
        let mut forged = cert.clone();
        forged.signers[0] ^= 0b0000_0001;
        assert!(trust.verify(&forged).is_err(), "forged bitmap at {h}");
    }

    // The consent is proven by a certificate: one aggregate check, no header chain.
    let by_cert = verify_key(
        &c,
        &Trust::Certificates(trust.clone()),
        &keys::consent(r.attribute("consent_id").unwrap()),
        0,
    )
    .await
    .unwrap();
    assert!(by_cert.value.is_some());
    assert_eq!(by_cert.attestation.method, "BLS certificate");

    // Users cannot submit certificates.
    let block = tendermint_rpc::Client::block(
        c.rpc(),
        tendermint::block::Height::try_from(r.height).unwrap(),
    )
    .await
    .unwrap();
    let mut cert = decode_certificate_tx(&block.block.data[0])
        .unwrap()
        .unwrap();
    cert.height += 1_000; // new bytes: CometBFT's cache already holds the committed ones
    let submitted = c
        .broadcast(medledger_tx::checkpoint::encode_certificate_tx(&cert))
        .await
        .unwrap();
    assert_eq!(
        submitted.code,
        Code::ProposerOnly.value(),
        "{}",
        submitted.log
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_chain_into_a_fresh_ledger_gives_the_same_app_hash_at_every_height() {
    let t = TestNet::start().await;
    let c = t.client(1);
    let patient = t.consenting_patient(71, "hospital-a").await.id;
    assert_eq!(
        c.submit(&t.member_key("hospital-a"), read(&patient, "obs-1"))
            .await
            .unwrap()
            .code,
        0
    );
    // A refused tx is part of the history too.
    assert_ne!(
        c.submit(&t.member_key("lab-b"), read(&patient, "obs-1"))
            .await
            .unwrap()
            .code,
        0
    );
    let h = t.height(1).await;
    t.wait_all(&[1], h + 1).await;

    let dir = tempfile::tempdir().unwrap();
    let genesis = t.net.dir.join("lab-b/cometbft/config/genesis.json");
    let report = medledger_client::replay::replay(&c, &genesis, dir.path(), h, false)
        .await
        .unwrap();
    assert_eq!(report.blocks, h);
    assert!(report.txs >= 4, "{report:?}");
    assert!(report.divergences.is_empty(), "{report:?}");
}

/// CometBFT stops a node for good when a proposal's txs, framed as protobuf, exceed
/// `max_tx_bytes`. With small blocks and a mempool holding several blocks' worth of txs, every
/// proposal is filled to the limit, the certificate first: the proposer must count framing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mempool_fuller_than_a_block_never_halts_the_chain() {
    let t = TestNet::prepare();
    t.edit_genesis(|g| {
        g["consensus_params"]["block"]["max_bytes"] = "40000".into();
        // CometBFT requires evidence to fit in a block.
        g["consensus_params"]["evidence"]["max_bytes"] = "1000".into();
    });
    t.up().await;
    let c = t.client(0);
    // Each member stays within its share of the mempool (CheckTx's lanes: half a block each
    // while the four send, docs/rules.md), and together they still queue over a block and a half.
    const PER_MEMBER: u64 = 50;
    let members = ["hospital-a", "lab-b", "insurer-c", "hospital-d"];
    let mut offered = 0usize;
    for seq in 0..PER_MEMBER {
        for m in members {
            // ~330-byte txs: 4 × 50 of them are over 1.5 blocks of 40,000 bytes.
            let body = TxBody {
                chain_id: t.chain_id.clone(),
                sequence: seq,
                unordered: None,
                msg: Some(Msg::AnchorRecord(pb::AnchorRecord {
                    record_id: format!("fill-{m}-{seq}"),
                    patient_id: "pt-00000000000000000000000000000000".into(),
                    resource_type: "Observation".into(),
                    content_hash: vec![7; 32],
                    size: 1,
                    key_id: "k".repeat(120),
                    holders: vec![],
                    threshold: 0,
                    share_commitments: vec![],
                })),
            };
            let tx = sign_tx(&t.member_key(m), &body);
            offered += tx.len();
            let r = tendermint_rpc::Client::broadcast_tx_sync(c.rpc(), tx)
                .await
                .unwrap();
            assert_eq!(r.code.value(), 0, "CheckTx admits it: {}", r.log);
        }
    }
    assert!(
        offered > 3 * 40_000 / 2,
        "the mempool holds more than a block"
    );
    // Every admitted tx is committed (each consumes its signer's sequence), and blocks go on.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    for m in members {
        let pk = t.member_key(m).verifying_key().to_bytes();
        while c.next_sequence(&pk).await.unwrap() < PER_MEMBER {
            assert!(
                std::time::Instant::now() < deadline,
                "txs of {m} not all committed: the chain stalled at height {}",
                t.height(0).await
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    let h = t.height(0).await;
    t.wait_all(&[0, 1, 2, 3], h + 2).await;
}

/// The review's attacks that succeeded on a live localnet (issue 11, items 1–3; item 0 is
/// `a_mempool_fuller_than_a_block_never_halts_the_chain`, item 4 is in `tests/journey.rs`),
/// replayed through a real consortium: each is refused with its stable code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviews_live_attacks_are_refused_by_a_real_consortium() {
    use medledger_tx::keyproof;
    use pb::PractitionerRole;

    let t = TestNet::start().await;
    let c = t.client(2);
    let chain = t.chain_id.clone();
    let (hospital, insurer) = (t.member_key("hospital-a"), t.member_key("insurer-c"));
    let code = |r: &medledger_client::TxReport| format!("{} {}", r.code_name, r.log);

    // 1. A stolen first key cannot take the patient back after a rotation.
    let (k0, k1) = (patient_key(91), patient_key(92));
    let pid = ids::patient_id(&k0.verifying_key().to_bytes());
    t.enrol_patient(0, &k0).await;
    let rotate = Msg::RotatePatientKey(pb::RotatePatientKey {
        new_key: k1.verifying_key().to_bytes().to_vec(),
        new_key_proof: keyproof::prove(&k1, &chain, keyproof::ROTATE_PATIENT_KEY, &pid).to_vec(),
    });
    assert_eq!(c.submit(&k0, rotate).await.unwrap().code, 0);
    let r = c.submit(&k0, grant("insurer-c")).await.unwrap();
    assert_eq!(
        (r.code, r.height),
        (Code::KeyRetired.value(), 0),
        "{:?}",
        code(&r)
    );
    let again = c.submit(&hospital, t.enrol(&k0)).await.unwrap();
    assert_eq!(again.code, Code::KeyRetired.value(), "{:?}", code(&again));

    // 2. The data class of an anchored record is the anchor's, not the reader's.
    assert_eq!(c.submit(&k1, grant("hospital-a")).await.unwrap().code, 0);
    let psy = Msg::AnchorRecord(pb::AnchorRecord {
        record_id: "psy-1".into(),
        patient_id: pid.clone(),
        resource_type: "PsychiatricNote".into(),
        content_hash: vec![3; 32],
        size: 10,
        key_id: "k".into(),
        holders: vec![],
        threshold: 0,
        share_commitments: vec![],
    });
    assert_eq!(c.submit(&hospital, psy).await.unwrap().code, 0);
    let r = c.submit(&hospital, read(&pid, "psy-1")).await.unwrap();
    assert_eq!(r.code, Code::ClassMismatch.value(), "{:?}", code(&r));

    // 3. An insurer cannot vouch for a physician (so it cannot break the glass), and a
    //    hospital's own privacy officer cannot clear its break-glass.
    let staff = |member: &str, k: &SigningKey, role: PractitionerRole| {
        Msg::RegisterPractitioner(pb::RegisterPractitioner {
            public_key: k.verifying_key().to_bytes().to_vec(),
            role: role as i32,
            licence_hash: vec![1; 32],
            key_proof: keyproof::prove(k, &chain, keyproof::REGISTER_PRACTITIONER, member).to_vec(),
            ..Default::default()
        })
    };
    let fake = patient_key(93);
    let r = c
        .submit(
            &insurer,
            staff("insurer-c", &fake, PractitionerRole::Physician),
        )
        .await
        .unwrap();
    assert_eq!(r.code, Code::RoleNotForMemberKind.value(), "{:?}", code(&r));
    let (doc, officer) = (patient_key(94), patient_key(95));
    for (k, role) in [
        (&doc, PractitionerRole::Physician),
        (&officer, PractitionerRole::PrivacyOfficer),
    ] {
        let r = c
            .submit(&hospital, staff("hospital-a", k, role))
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", code(&r));
    }
    let bg = Msg::LogBreakGlass(pb::LogBreakGlass {
        patient_id: pid.clone(),
        record_id: "psy-1".into(),
        data_class: "PsychiatricNote".into(),
        reason_hash: vec![5; 32],
    });
    let r = c.submit(&doc, bg).await.unwrap();
    assert_eq!(r.code, 0, "{:?}", code(&r));
    let index: u64 = r.attribute("index").unwrap().parse().unwrap();
    let review = Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
        patient_id: pid.clone(),
        event_index: index,
        justified: true,
        note_hash: Vec::new(),
    });
    let r = c.submit(&officer, review).await.unwrap();
    assert_eq!(r.code, Code::SelfReview.value(), "{:?}", code(&r));
}

/// Issue 23, attack 3, replayed on a real consortium: format-valid key recoveries without
/// guardian approvals, each from a fresh key, used to pass CheckTx and fill the patients' lane
/// (256), after which the patient's own `consent revoke` was refused with MEMPOOL_LANE_FULL.
/// Now each junk recovery is refused at CheckTx on its merits, and the revocation commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_recoveries_from_fresh_keys_never_block_a_patients_revocation() {
    let t = TestNet::start().await;
    let p = t.consenting_patient(71, "hospital-a").await;
    // Node 1 sends everything below: it must have seen the patient's consent (their sequence).
    let h = t.height(0).await;
    t.wait_all(&[1], h).await;
    let c = t.client(1);
    let guardians: Vec<Vec<u8>> = [72u8, 73]
        .iter()
        .map(|s| patient_key(*s).verifying_key().to_bytes().to_vec())
        .collect();
    let r = c
        .submit(
            &p.key,
            Msg::SetGuardians(pb::SetGuardians {
                guardian_keys: guardians,
                threshold: 2,
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);

    // 300 junk recoveries (more than the patients' lane holds), straight to a node's RPC.
    let mut refused = std::collections::BTreeMap::<u32, usize>::new();
    for i in 0..300u32 {
        let mut seed = [0x5a; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let stranger = SigningKey::from_bytes(&seed);
        let tx = sign_tx(
            &stranger,
            &TxBody {
                chain_id: t.chain_id.clone(),
                sequence: 0,
                unordered: None,
                msg: Some(Msg::RecoverPatientKey(pb::RecoverPatientKey {
                    patient_id: p.id.clone(),
                    new_key: stranger.verifying_key().to_bytes().to_vec(),
                    approvals: Vec::new(),
                })),
            },
        );
        let r = tendermint_rpc::Client::broadcast_tx_sync(c.rpc(), tx)
            .await
            .unwrap();
        *refused.entry(r.code.value()).or_default() += 1;
    }
    assert!(
        !refused.contains_key(&0),
        "a junk recovery entered the mempool: {refused:?}"
    );
    assert!(
        !refused.contains_key(&Code::MempoolLaneFull.value()),
        "refused for a full lane, not on its merits: {refused:?}"
    );
    assert_eq!(
        refused.get(&Code::NotEnoughGuardians.value()),
        Some(&300),
        "{refused:?}"
    );

    // The patient's revocation goes through.
    let r = c
        .submit(
            &p.key,
            Msg::RevokeConsent(pb::RevokeConsent {
                consent_id: p.consent_id.clone(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    assert!(r.height > 0);
}

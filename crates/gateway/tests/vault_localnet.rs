//! The record vault end to end on a real 4-node localnet (CometBFT + the `medledger` binary):
//! gateways registered on chain, a record stored and anchored by lab-b, read by hospital-a after
//! a committed, consented access log, refused to insurer-c and after revocation, and erased.
//!
//! Needs CometBFT on PATH (or MEDLEDGER_COMETBFT, see the localnet module) and the `medledger`
//! binary, found by `medledger_devnet::medledger_bin` (`MEDLEDGER_BIN`, else next to this test's
//! target directory; `scripts/test.sh` builds it first). Missing either is a failure, never a
//! skip. The localnet is `tests/support`'s (the integration tests' [`TestNet`]): its tests run
//! one at a time, each with the machine to itself.

#![allow(clippy::unwrap_used, clippy::panic)]

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use medledger_gateway::client::{
    break_glass_tx, log_access_tx, open_released, reason_hash, GatewayClient,
};
use medledger_gateway::{Config, Gateway};
use medledger_tx::pb::{self, tx_body::Msg, Action, Purpose, RecordAnchor};
use medledger_tx::{boxkey, keys};
use medledger_vault::kek::Kek;
use medledger_vault::share::MemberBoxKey;
use support::{Patient, TestNet};
use tempfile::TempDir;

/// Sends `msg` signed by `key` through node 0 and asserts it committed.
async fn ok(net: &TestNet, key: &SigningKey, msg: Msg) -> medledger_client::TxReport {
    let r = net.client(0).submit(key, msg).await.unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    r
}

/// A practitioner of `member` with `role` (key from `seed`).
async fn practitioner(
    net: &TestNet,
    member: &str,
    seed: u8,
    role: pb::PractitionerRole,
) -> SigningKey {
    let key = SigningKey::from_bytes(&[seed; 32]);
    ok(
        net,
        &net.member_key(member),
        Msg::RegisterPractitioner(pb::RegisterPractitioner {
            public_key: key.verifying_key().to_bytes().to_vec(),
            role: role as i32,
            licence_hash: vec![seed; 32],
            valid_until: 0,
            name: String::new(),
            key_proof: medledger_tx::keyproof::prove(
                &key,
                &net.chain_id,
                medledger_tx::keyproof::REGISTER_PRACTITIONER,
                member,
            )
            .to_vec(),
        }),
    )
    .await;
    key
}

/// The proven anchor of `record`.
async fn record_anchor(net: &TestNet, record: &str) -> RecordAnchor {
    net.client(0)
        .query_proven(&keys::record(record), 0)
        .await
        .unwrap()
        .value
        .map(|v| prost::Message::decode(v.as_slice()).unwrap())
        .unwrap()
}

/// A running gateway of `member`.
struct Gw {
    url: String,
    data_dir: PathBuf,
    box_key: MemberBoxKey,
    _dir: TempDir,
}

/// The localnet with threshold custody off (`params/custody` removed from its genesis): these
/// tests exercise the single-custodian vault, which every record anchored without holders keeps
/// using; `tests/custody.rs` runs threshold custody on the same localnet.
async fn single_custodian_net() -> TestNet {
    let net = TestNet::prepare();
    net.edit_genesis(|g| {
        if let Some(state) = g["app_state"].as_object_mut() {
            assert!(
                state.remove("custody").is_some(),
                "the localnet deploys custody"
            );
        }
    });
    net.up().await;
    net
}

async fn start_gateway(net: &TestNet, member: &str, seed: u8) -> Gw {
    start_gateway_with(net, member, seed, 10_000).await
}

async fn start_gateway_with(net: &TestNet, member: &str, seed: u8, nonce_capacity: usize) -> Gw {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let kek_file = dir.path().join("kek");
    let mut rng = <rand_v010::rngs::StdRng as rand_v010::SeedableRng>::seed_from_u64(seed.into());
    Kek::generate(&kek_file, &mut rng).unwrap();
    let box_key = MemberBoxKey::generate(&mut rng);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let gateway = Gateway::new(Config {
        data_dir: data_dir.clone(),
        member_id: member.into(),
        signing_key: net.member_key(member),
        kek_file,
        box_key: MemberBoxKey::from_secret_bytes(&box_key.secret_bytes()).unwrap(),
        node_urls: vec![
            net.net.spec.nodes[0].rpc_url(),
            net.net.spec.nodes[1].rpc_url(),
        ],
        genesis_json: std::fs::read(net.net.node_dir(0).join("cometbft/config/genesis.json"))
            .unwrap(),
        public_url: url.clone(),
        nonce_cache_capacity: nonce_capacity,
        rate_limits: Default::default(),
    })
    .unwrap();
    tokio::spawn(gateway.serve(listener));
    // Register it on chain: endpoint and box key signed by the member's admin key.
    let admin = net.member_key(member);
    let public = box_key.public_bytes();
    let sig = boxkey::sign(&admin, &net.chain_id, member, &public);
    ok(
        net,
        &admin,
        Msg::SetGateway(pb::SetGateway {
            endpoint: url.clone(),
            box_public_key: public.to_vec(),
            box_key_signature: sig.to_vec(),
        }),
    )
    .await;
    Gw {
        url,
        data_dir,
        box_key,
        _dir: dir,
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// `client` sends `signed` as the anchor of `record`, which it stored: the status and body.
async fn send_anchor(
    client: &GatewayClient,
    record: &str,
    signed: &medledger_gateway::api::SignedTx,
) -> (u16, Vec<u8>) {
    let body = serde_json::to_vec(signed).unwrap();
    let path = format!("/records/{record}/anchor");
    client.send_raw("POST", &path, body, &[]).await.unwrap()
}

/// A LogAccess tx of `key` (at its next sequence) reading `record`, of `class`, of `patient`
/// for treatment.
async fn treat_tx(
    net: &TestNet,
    key: &SigningKey,
    patient: &str,
    record: &str,
    class: &str,
) -> Vec<u8> {
    let sequence = next_seq(net, key).await;
    log_access_tx(
        key,
        &net.chain_id,
        sequence,
        patient,
        record,
        class,
        Purpose::Treat,
    )
}

async fn next_seq(net: &TestNet, key: &SigningKey) -> u64 {
    net.client(0)
        .next_sequence(&key.verifying_key().to_bytes())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_stored_read_with_consent_refused_without_and_erased() {
    let net = single_custodian_net().await;
    let hospital = net.member_key("hospital-a");
    let insurer = net.member_key("insurer-c");
    let lab_gw = start_gateway(&net, "lab-b", 1).await;
    let hospital_gw = start_gateway(&net, "hospital-a", 2).await;
    let _insurer_gw = start_gateway(&net, "insurer-c", 3).await;

    // A patient, enrolled by hospital-a, grants hospital-a Observation/TREAT.
    let Patient {
        key: patient,
        id: patient_id,
        consent_id,
    } = net.consenting_patient(42, "hospital-a").await;

    // lab-b's admin stores an Observation through lab-b's gateway.
    let content =
        br#"{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1}}"#;
    let lab_client = GatewayClient::new(&lab_gw.url, net.member_key("lab-b"));
    let put = lab_client
        .put("obs-1", &patient_id, "Observation", content)
        .await
        .unwrap();
    assert!(put.anchor_height > 0);
    let anchor = record_anchor(&net, "obs-1").await;
    assert_eq!(anchor.custodian, "lab-b");
    assert_eq!(hex::encode(&anchor.content_hash), put.content_hash);
    assert!(anchor.key_id.starts_with("kc1-"));
    // The same id again: 409.
    let again = lab_client
        .put("obs-1", &patient_id, "Observation", content)
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(409));
    // hospital-a may not store at lab-b's gateway.
    let foreign = GatewayClient::new(&lab_gw.url, hospital.clone())
        .put("obs-2", &patient_id, "Observation", content)
        .await
        .unwrap_err();
    assert_eq!(foreign.status(), Some(403));

    // hospital-a's admin reads it: the access is committed first, then the key is shared.
    let reader = GatewayClient::new(&lab_gw.url, hospital.clone());
    let tx = treat_tx(&net, &hospital, &patient_id, "obs-1", "Observation").await;
    let got = reader.get("obs-1", Purpose::Treat, &tx).await.unwrap();
    assert_eq!(got.reader_member, "hospital-a");
    assert!(got.access_height > 0);
    let plain = open_released(&got, &hospital_gw.box_key, Some(&anchor.content_hash)).unwrap();
    assert_eq!(plain, content);
    // The released share opens for no other member's box key.
    assert!(open_released(&got, &lab_gw.box_key, None).is_err());

    // A tx naming another class, or signed by another key than the request's: 400, nothing
    // broadcast.
    let wrong_class = treat_tx(&net, &hospital, &patient_id, "obs-1", "Condition").await;
    let e = reader
        .get("obs-1", Purpose::Treat, &wrong_class)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    let e = GatewayClient::new(&lab_gw.url, insurer.clone())
        .get("obs-1", Purpose::Treat, &tx)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));

    // A replayed request (same signature headers): 401.
    let body = serde_json::to_vec(&medledger_gateway::api::GetRecord {
        log_access_tx_base64: "AA==".into(),
        access_index: None,
    })
    .unwrap();
    let url = reader.url("/records/obs-1?purpose=TREAT");
    let headers = medledger_gateway::client::sign_headers(
        &hospital,
        "GET",
        &url,
        &body,
        medledger_gateway::client::now_secs(),
    )
    .unwrap();
    let (s1, _) = reader
        .send_signed("GET", &url, body.clone(), &headers, &[])
        .await
        .unwrap();
    assert_eq!(s1, 400, "first use reaches the body check");
    let (s2, _) = reader
        .send_signed("GET", &url, body, &headers, &[])
        .await
        .unwrap();
    assert_eq!(s2, 401, "replay refused");

    // insurer-c has no consent: 403 with the ledger's code.
    let tx = treat_tx(&net, &insurer, &patient_id, "obs-1", "Observation").await;
    let e = GatewayClient::new(&lab_gw.url, insurer.clone())
        .get("obs-1", Purpose::Treat, &tx)
        .await
        .unwrap_err();
    match &e {
        medledger_gateway::client::ClientError::Status { status, body } => {
            assert_eq!(*status, 403);
            assert_eq!(body.code_name.as_deref(), Some("NO_PERMITTING_CONSENT"));
        }
        other => panic!("{other}"),
    }

    // The patient revokes; hospital-a is refused.
    ok(
        &net,
        &patient,
        Msg::RevokeConsent(pb::RevokeConsent {
            consent_id: consent_id.clone(),
        }),
    )
    .await;
    let tx = treat_tx(&net, &hospital, &patient_id, "obs-1", "Observation").await;
    let e = reader.get("obs-1", Purpose::Treat, &tx).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");

    // In an emergency a hospital-a physician breaks the glass through the same path: the
    // record is released, and the ledger records the access as break-glass with a review open.
    let doctor = practitioner(&net, "hospital-a", 77, pb::PractitionerRole::Physician).await;
    let glass = break_glass_tx(
        &doctor,
        &net.chain_id,
        0,
        &patient_id,
        "obs-1",
        "Observation",
        "unconscious in the ED",
    );
    let by_doctor = GatewayClient::new(&lab_gw.url, doctor.clone());
    // Only as ETREAT: a break-glass sent as a TREAT read is refused before anything is sent.
    let e = by_doctor
        .get("obs-1", Purpose::Treat, &glass)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    let got = by_doctor
        .get("obs-1", Purpose::Etreat, &glass)
        .await
        .unwrap();
    let plain = open_released(&got, &hospital_gw.box_key, Some(&anchor.content_hash)).unwrap();
    assert_eq!(plain, content);
    let event: pb::AccessEvent = net
        .client(0)
        .query_proven(&keys::access_event(&patient_id, got.access_index), 0)
        .await
        .unwrap()
        .value
        .map(|v| prost::Message::decode(v.as_slice()).unwrap())
        .unwrap();
    assert!(event.break_glass, "{event:?}");
    assert_eq!(event.record_id, "obs-1");
    assert_eq!(
        event.review,
        pb::ReviewStatus::Pending as i32,
        "the review is open"
    );

    // Unknown record: 404.
    let tx = treat_tx(&net, &hospital, &patient_id, "nope", "Observation").await;
    let e = reader.get("nope", Purpose::Treat, &tx).await.unwrap_err();
    assert_eq!(e.status(), Some(404));

    // The wrapped key is in lab-b's data dir until erasure.
    let wrapped_before: Vec<Vec<u8>> = files(&lab_gw.data_dir.join("keys"))
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(wrapped_before.len(), 1);
    let wrapped = wrapped_before[0].clone();
    assert_eq!(wrapped.len(), 81);

    // The patient asks for erasure (signing the request with their own key).
    let erased = GatewayClient::new(&lab_gw.url, patient.clone())
        .erase("obs-1", Some(reason_hash("patient request")))
        .await
        .unwrap();
    assert!(erased.erasure_height > 0);
    let anchor = record_anchor(&net, "obs-1").await;
    assert_eq!(anchor.erased_height, erased.erasure_height);
    // The erasure is the patient's own: the gateway prepared it (202) and the client signed it
    // with the patient's key. The receipt is that EraseRecord, committed at that height,
    // naming the record; the anchor's key id is the key destroyed.
    assert_eq!(anchor.erased_by, patient_id);
    let receipt = erased.receipt.clone().expect("a destruction receipt");
    assert_eq!(receipt.height, erased.erasure_height);
    assert_eq!(receipt.key_id, anchor.key_id);
    let tx = medledger_tx::decode_tx(
        &<base64ct::Base64 as base64ct::Encoding>::decode_vec(&receipt.tx_base64).unwrap(),
    )
    .unwrap()
    .verify()
    .expect("the receipt's signature verifies");
    assert_eq!(tx.signer(), &patient.verifying_key().to_bytes());
    assert_eq!(receipt.signer, hex::encode(tx.signer()));
    match &tx.body().msg {
        Some(Msg::EraseRecord(e)) => assert_eq!(e.record_id, "obs-1"),
        other => panic!("the receipt is an EraseRecord, not {other:?}"),
    }

    // A read now answers 410 with the erasure height.
    let tx = treat_tx(&net, &hospital, &patient_id, "obs-1", "Observation").await;
    match reader.get("obs-1", Purpose::Treat, &tx).await.unwrap_err() {
        medledger_gateway::client::ClientError::Status { status, body } => {
            assert_eq!(status, 410);
            assert_eq!(body.erased_height, Some(erased.erasure_height));
        }
        other => panic!("{other}"),
    }

    // No byte of the wrapped key (nor its 24-byte nonce or 48-byte ciphertext) remains in any
    // file of lab-b's data dir; the ciphertext does.
    for f in files(&lab_gw.data_dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, &wrapped[9..33]), "{}", f.display());
        assert!(!contains(&bytes, &wrapped[33..]), "{}", f.display());
    }
    assert!(files(&lab_gw.data_dir.join("keys")).is_empty());
    assert!(!files(&lab_gw.data_dir.join("records")).is_empty());
}

/// The next server-sent event of `r` (comments included), within 30 s.
async fn next_event(seen: &mut String, r: &mut reqwest::Response) -> String {
    let read = async {
        while !seen.contains("\n\n") {
            let chunk = r.chunk().await.unwrap().expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), read)
        .await
        .expect("an event within 30 s");
    let end = seen.find("\n\n").unwrap();
    let event = seen[..end].to_string();
    seen.replace_range(..end + 2, "");
    event
}

fn hex_query(key: &[u8]) -> String {
    format!(
        "/rpc/abci_query?path=%22/store%22&data=0x{}&prove=true",
        hex::encode(key)
    )
}

/// Issue 23's edge attacks, replayed against a real gateway: an anonymous client learns nothing
/// patient-linked; throwaway keys cannot jam signed requests; a patient's erasure on the ledger
/// destroys the key at the custodian's gateway, which confirms it on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outsider_learns_nothing_cannot_jam_the_gateway_and_ledger_erasure_destroys_the_key() {
    let net = single_custodian_net().await;
    let hospital = net.member_key("hospital-a");
    // A small replay cache, so that the flood below would fill it (as 100,000 requests did live).
    let lab_gw = start_gateway_with(&net, "lab-b", 11, 64).await;
    let Patient {
        key: patient,
        id: patient_id,
        consent_id,
    } = net.consenting_patient(43, "hospital-a").await;

    // 1. Anonymous: every patient-linked read answers 401, and the tx index is not relayed.
    let http = reqwest::Client::new();
    for path in [
        format!("/fhir/Consent/{consent_id}"),
        format!("/fhir/Consent?patient={patient_id}"),
        format!("/fhir/AuditEvent?patient={patient_id}"),
        format!("/audit/access.csv?patient={patient_id}"),
        format!("/live?patient={patient_id}"),
        "/fhir/ClaimResponse/cl-1".to_string(),
        hex_query(&keys::access_count(&patient_id)),
        hex_query(&keys::consent(&consent_id)),
    ] {
        let r = http
            .get(format!("{}{path}", lab_gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 401, "anonymous {path}");
    }
    let r = http
        .get(format!("{}/rpc/tx?hash=0x{}", lab_gw.url, "AB".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "the tx index is not relayed");

    // 2. Throwaway keys, 200 at once: each signed request is refused for want of a role (403),
    // or throttled as one of too many unfamiliar keys at once (429), before its nonce is stored;
    // a member's signed request then still gets through (the old gateway answered 503 here).
    let mut flood = tokio::task::JoinSet::new();
    for i in 0..200u32 {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&i.to_be_bytes());
        let stranger = GatewayClient::new(&lab_gw.url, SigningKey::from_bytes(&seed));
        flood.spawn(async move {
            stranger
                .send_raw("POST", "/auth/token", Vec::new(), &[])
                .await
                .unwrap()
                .0
        });
    }
    let statuses = flood.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == 403 || *s == 429),
        "a key with no role on chain: {statuses:?}"
    );
    assert!(statuses.contains(&403), "{statuses:?}");
    let hospital_client = GatewayClient::new(&lab_gw.url, hospital.clone());
    let hospital_token = hospital_client
        .token()
        .await
        .expect("a member's signed request is not jammed");

    // 3. Who reads what: the patient reads their own history, not another patient's; the member
    // that enrolled the patient reads it; a member with no relation to the patient does not.
    let patient_client = GatewayClient::new(&lab_gw.url, patient.clone());
    let patient_token = patient_client.token().await.unwrap();
    let (s, _) = patient_client
        .get_with_token(&hex_query(&keys::access_count(&patient_id)), &patient_token)
        .await
        .unwrap();
    assert_eq!(s, 200);
    let (s, _) = patient_client
        .get_with_token(
            &hex_query(&keys::access_count("pt-someone-else")),
            &patient_token,
        )
        .await
        .unwrap();
    assert_eq!(s, 403);
    let (s, _) = hospital_client
        .get_with_token(
            &format!("/fhir/AuditEvent?patient={patient_id}"),
            &hospital_token,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "the enrolling member");
    let insurer_client = GatewayClient::new(&lab_gw.url, net.member_key("insurer-c"));
    let insurer_token = insurer_client.token().await.unwrap();
    for path in [
        format!("/fhir/AuditEvent?patient={patient_id}"),
        format!("/fhir/Consent/{consent_id}"),
        hex_query(&keys::patient(&patient_id)),
    ] {
        let (s, _) = insurer_client
            .get_with_token(&path, &insurer_token)
            .await
            .unwrap();
        assert_eq!(s, 403, "insurer-c has no relation to the patient: {path}");
    }
    let (s, _) = insurer_client
        .get_with_token(&format!("/live?patient={patient_id}"), &insurer_token)
        .await
        .unwrap();
    assert_eq!(s, 403, "nor follows the patient's live stream");

    // Live updates come from the gateway: the patient's own stream says `ready`, then which
    // block touched the patient; a key holds at most two streams.
    let live = |token: String| {
        let url = format!("{}/live?patient={patient_id}", lab_gw.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let mut own = live(patient_token.clone()).await;
    assert_eq!(own.status().as_u16(), 200);
    assert_eq!(own.headers()["content-type"], "text/event-stream");
    let second = live(patient_token.clone()).await;
    assert_eq!(second.status().as_u16(), 200);
    assert_eq!(live(patient_token.clone()).await.status().as_u16(), 429);
    drop(second);
    let mut seen = String::new();
    let ready = next_event(&mut seen, &mut own).await;
    assert!(ready.starts_with("event: ready"), "{ready}");
    let touched = ok(
        &net,
        &hospital,
        Msg::LogAccess(pb::LogAccess {
            patient_id: patient_id.clone(),
            record_id: "visit-live".into(),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            action: Action::Read as i32,
        }),
    )
    .await;
    // Keep-alive comments come every 15 s; the change must come well before.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let change = loop {
        let e = next_event(&mut seen, &mut own).await;
        if !e.starts_with(':') {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "no change event");
    };
    assert_eq!(
        change,
        format!("event: change\ndata: {{\"height\":{}}}", touched.height)
    );
    drop(own);
    // A tx signed by a key the ledger does not know is not relayed.
    let stranger = SigningKey::from_bytes(&[99; 32]);
    let junk = medledger_tx::sign_tx(
        &stranger,
        &pb::TxBody {
            chain_id: net.chain_id.clone(),
            sequence: 0,
            unordered: None,
            msg: Some(Msg::RevokeConsent(pb::RevokeConsent {
                consent_id: consent_id.clone(),
            })),
        },
    );
    let r = http
        .get(format!(
            "{}/rpc/broadcast_tx_sync?tx=0x{}",
            lab_gw.url,
            hex::encode(&junk)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);

    // The same role rules on every path: lab-b's privacy officer may neither store a record nor
    // submit a claim through lab-b's gateway in lab-b's name, as the ledger would refuse both
    // if they signed them (the old gateway accepted any practitioner and signed as the member).
    let researcher = practitioner(&net, "lab-b", 78, pb::PractitionerRole::PrivacyOfficer).await;
    let by_researcher = GatewayClient::new(&lab_gw.url, researcher);
    let e = by_researcher
        .put("obs-r", &patient_id, "Observation", b"{}")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let (s, _) = by_researcher
        .send_raw("POST", "/fhir/Claim", b"{}".to_vec(), &[])
        .await
        .unwrap();
    assert_eq!(s, 403, "a privacy officer does not bill");
    let (s, _) = by_researcher
        .send_raw("POST", "/fhir/Claim/$prepare", b"{}".to_vec(), &[])
        .await
        .unwrap();
    assert_eq!(s, 403, "nor prepares a claim to sign");

    // The chain names the person who acted: a lab-b technician's record is anchored by a tx the
    // technician signed, and erased by one lab-b's privacy officer signed (the gateway prepares
    // each, answering 202, and relays it as signed).
    let technician = practitioner(&net, "lab-b", 79, pb::PractitionerRole::LabTechnician).await;
    let by_technician = GatewayClient::new(&lab_gw.url, technician.clone());
    by_technician
        .put("obs-p", &patient_id, "Observation", b"{}")
        .await
        .unwrap();
    let anchored = record_anchor(&net, "obs-p").await;
    assert!(
        anchored.anchored_by.starts_with("did:"),
        "anchored by the technician, not {:?}",
        anchored.anchored_by
    );
    // What is relayed must be exactly what was prepared, signed by the requester: an anchor of
    // another record (or another key's signature) is refused, and nothing is anchored.
    let put = |id: &str| {
        serde_json::to_vec(&medledger_gateway::api::PutRecord {
            patient_id: patient_id.clone(),
            resource_type: "Observation".into(),
            content_base64: "e30=".into(),
        })
        .map(|b| (format!("/records/{id}"), b))
        .unwrap()
    };
    let (path, body) = put("obs-q");
    let (s, b) = by_technician
        .send_raw("PUT", &path, body, &[])
        .await
        .unwrap();
    assert_eq!(s, 202, "{}", String::from_utf8_lossy(&b));
    let prepared: medledger_gateway::api::PreparedTx = serde_json::from_slice(&b).unwrap();
    let (_, other) = put("obs-q2");
    let (s, b2) = by_technician
        .send_raw("PUT", "/records/obs-q2", other, &[])
        .await
        .unwrap();
    assert_eq!(s, 202);
    let prepared_other: medledger_gateway::api::PreparedTx = serde_json::from_slice(&b2).unwrap();
    let signed_other = by_technician
        .sign_prepared(&prepared_other, |_| true)
        .unwrap();
    let (s, b) = send_anchor(&by_technician, "obs-q", &signed_other).await;
    assert_eq!(s, 400, "{}", String::from_utf8_lossy(&b));
    let by_stranger_sig = GatewayClient::new(&lab_gw.url, net.member_key("lab-b"))
        .sign_prepared(
            &medledger_gateway::api::PreparedTx {
                signer: hex::encode(net.member_key("lab-b").verifying_key().to_bytes()),
                ..prepared.clone()
            },
            |_| true,
        )
        .unwrap();
    let (s, _) = send_anchor(&by_technician, "obs-q", &by_stranger_sig).await;
    assert_eq!(s, 400, "another key's signature is not the technician's");
    // Another key, even the member's admin, may not send the anchor of the technician's record.
    let (s, _) = send_anchor(
        &GatewayClient::new(&lab_gw.url, net.member_key("lab-b")),
        "obs-q",
        &by_stranger_sig,
    )
    .await;
    assert_eq!(s, 403, "only the key that stored it sends its anchor");
    assert!(net
        .client(0)
        .query_proven(&keys::record("obs-q"), 0)
        .await
        .unwrap()
        .value
        .is_none());
    // One key can leave only a few records waiting for its signature.
    let mut statuses = Vec::new();
    for i in 0..medledger_gateway::MAX_AWAITING_PER_SIGNER {
        let (path, body) = put(&format!("obs-w{i}"));
        statuses.push(
            by_technician
                .send_raw("PUT", &path, body, &[])
                .await
                .unwrap()
                .0,
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        6,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    // A technician does not erase (the ledger's role table, same on every path); the privacy
    // officer does, in their own name, and lab-b's gateway destroys the key and confirms.
    let e = by_technician.erase("obs-p", None).await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    let erased = by_researcher.erase("obs-p", None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let anchor = loop {
        let anchor = record_anchor(&net, "obs-p").await;
        if anchor.erasure_confirmed_height != 0 {
            break anchor;
        }
        assert!(std::time::Instant::now() < deadline, "never confirmed");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(anchor.erased_height, erased.erasure_height);
    assert!(anchor.erased_by.starts_with("did:") && anchor.erased_by != anchored.anchored_by);
    assert_eq!(anchor.erasure_confirmed_by, "lab-b");

    // 4. The patient erases a record on the ledger directly, not through the gateway: the
    // custodian's gateway destroys the key by itself and confirms on chain.
    let lab_client = GatewayClient::new(&lab_gw.url, net.member_key("lab-b"));
    // (The technician's unsigned records still hold their keys here until they expire.)
    let keys_before = files(&lab_gw.data_dir.join("keys"));
    lab_client
        .put(
            "obs-9",
            &patient_id,
            "Observation",
            br#"{"resourceType":"Observation"}"#,
        )
        .await
        .unwrap();
    let wrapped = files(&lab_gw.data_dir.join("keys"))
        .iter()
        .filter(|p| !keys_before.contains(p))
        .map(|p| std::fs::read(p).unwrap())
        .next()
        .expect("the wrapped key is stored");
    ok(
        &net,
        &patient,
        Msg::EraseRecord(pb::EraseRecord {
            record_id: "obs-9".into(),
            reason_hash: Vec::new(),
        }),
    )
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let confirmed = loop {
        let anchor = record_anchor(&net, "obs-9").await;
        if anchor.erasure_confirmed_height != 0 {
            break anchor;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "lab-b's gateway never confirmed the erasure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert_eq!(confirmed.erasure_confirmed_by, "lab-b");
    assert_eq!(files(&lab_gw.data_dir.join("keys")), keys_before);
    for f in files(&lab_gw.data_dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(!contains(&bytes, &wrapped[9..33]), "{}", f.display());
        assert!(!contains(&bytes, &wrapped[33..]), "{}", f.display());
        let text = hex::encode(&wrapped[33..]);
        assert!(
            !contains(&bytes, text.as_bytes()),
            "hex copy in {}",
            f.display()
        );
    }
}
/// Passes `action` with the yes votes of hospital-a (the proposer), lab-b and insurer-c: 30 of
/// the 40 voting power.
async fn pass(net: &TestNet, action: pb::submit_proposal::Action) {
    let height = net.client(0).latest_height().await.unwrap();
    let r = ok(
        net,
        &net.member_key("hospital-a"),
        Msg::SubmitProposal(pb::SubmitProposal {
            action: Some(action),
            deadline_height: height + 200,
        }),
    )
    .await;
    let id: u64 = r.attribute("proposal_id").unwrap().parse().unwrap();
    for member in ["lab-b", "insurer-c"] {
        ok(
            net,
            &net.member_key(member),
            Msg::VoteProposal(pb::VoteProposal {
                proposal_id: id,
                yes: true,
            }),
        )
        .await;
    }
    let p: pb::Proposal = net
        .client(0)
        .query_proven(&keys::proposal(id), 0)
        .await
        .unwrap()
        .value
        .map(|v| prost::Message::decode(v.as_slice()).unwrap())
        .unwrap();
    assert_eq!(p.status, pb::ProposalStatus::Passed as i32, "{}", p.outcome);
}

/// The statuses `c` gets for `paths`, polled until they are `want` (the gateway decides on state
/// one block old, so a grant or revocation shows within a block or two); fails after 20 s.
async fn statuses_become(c: &GatewayClient, token: &str, paths: &[String], want: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut got = Vec::new();
        for p in paths {
            got.push(c.get_with_token(p, token).await.unwrap().0);
        }
        if got.iter().all(|s| *s == want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{paths:?}: {got:?}, want {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Issue 23: an auditor is made by governance, not by a role. lab-b's privacy officer reads
/// nothing of hospital-a's or hospital-d's patients until the members pass a GrantAuditor; a
/// grant scoped to insurer-c (unrelated to both) still reads nothing of theirs, one scoped to
/// hospital-a reads hospital-a's patient only, one for every member reads both; revoked, nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privacy_officer_reads_another_members_patient_only_with_a_governance_grant() {
    let net = single_custodian_net().await;
    let lab_gw = start_gateway(&net, "lab-b", 61).await;
    let Patient {
        id: a_patient,
        consent_id: a_consent,
        ..
    } = net.consenting_patient(62, "hospital-a").await;
    let d_key = SigningKey::from_bytes(&[63; 32]);
    let d_patient = medledger_tx::ids::patient_id(&d_key.verifying_key().to_bytes());
    ok(
        &net,
        &net.member_key("hospital-d"),
        Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
            &d_key,
            &net.chain_id,
            "hospital-d",
        )),
    )
    .await;
    let officer = practitioner(&net, "lab-b", 64, pb::PractitionerRole::PrivacyOfficer).await;
    let did = medledger_tx::ids::practitioner_did(&officer.verifying_key().to_bytes());
    let by_officer = GatewayClient::new(&lab_gw.url, officer);
    let token = by_officer.token().await.unwrap();
    let of_a = [
        format!("/fhir/AuditEvent?patient={a_patient}"),
        format!("/fhir/Consent/{a_consent}"),
        hex_query(&keys::patient(&a_patient)),
    ];
    let of_d = [
        format!("/fhir/AuditEvent?patient={d_patient}"),
        hex_query(&keys::patient(&d_patient)),
    ];
    let grant = |scope: &str| {
        pb::submit_proposal::Action::GrantAuditor(pb::GrantAuditor {
            practitioner_did: did.clone(),
            scope_member: scope.into(),
        })
    };

    // A privacy officer without a grant is a practitioner of lab-b, no more.
    statuses_become(&by_officer, &token, &of_a, 403).await;
    statuses_become(&by_officer, &token, &of_d, 403).await;
    // The grant is public, proven consortium state.
    statuses_become(&by_officer, &token, &[hex_query(&keys::auditor(&did))], 200).await;

    // Scoped to insurer-c: what insurer-c reads, which is neither patient.
    pass(&net, grant("insurer-c")).await;
    statuses_become(&by_officer, &token, &of_a, 403).await;
    statuses_become(&by_officer, &token, &of_d, 403).await;

    // Scoped to hospital-a: hospital-a's patient, not hospital-d's.
    pass(&net, grant("hospital-a")).await;
    statuses_become(&by_officer, &token, &of_a, 200).await;
    statuses_become(&by_officer, &token, &of_d, 403).await;

    // Every member: both.
    pass(&net, grant("")).await;
    statuses_become(&by_officer, &token, &of_d, 200).await;
    statuses_become(&by_officer, &token, &of_a, 200).await;

    // Revoked: nothing again.
    pass(
        &net,
        pb::submit_proposal::Action::RevokeAuditor(pb::RevokeAuditor {
            practitioner_did: did.clone(),
        }),
    )
    .await;
    statuses_become(&by_officer, &token, &of_a, 403).await;
    statuses_become(&by_officer, &token, &of_d, 403).await;
}

//! Block retention (`medledger start --retain-blocks`, issue 16): CometBFT deletes the blocks
//! the app lets go; the app refuses states below its own window with code 103; and every state
//! it still answers for verifies against the header after it, which the node still has. A
//! consent's FHIR `_history` at such a node names the versions it can no longer prove.

use std::process::Command;

use std::time::{Duration, Instant};

use medledger_gateway::client::GatewayClient;
use medledger_tx::keys;
use medledger_tx::pb::{self, tx_body::Msg};
use serde_json::Value;
use tendermint_rpc::Client as _;

use crate::support::{self, medledger_bin, TestNet};

const KEEP_RECENT: u64 = 10;
const RETAIN_BLOCKS: u64 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_only_the_blocks_it_retains_and_every_state_it_answers_for_verifies() {
    let mut t = TestNet::prepare();
    t.net.spec.keep_recent = Some(KEEP_RECENT);
    t.net.spec.retain_blocks = Some(RETAIN_BLOCKS);
    t.net.spec.snapshot_interval = Some(0);
    t.up().await;
    t.wait_all(&[0, 1, 2, 3], 3 * RETAIN_BLOCKS).await;
    let c = t.client(0);

    let status = c.rpc().status().await.unwrap();
    let (earliest, latest) = (
        status.sync_info.earliest_block_height.value(),
        status.sync_info.latest_block_height.value(),
    );
    assert!(
        earliest > 1 && latest - earliest <= RETAIN_BLOCKS + 2,
        "CometBFT keeps blocks {earliest}..={latest}, not about the newest {RETAIN_BLOCKS}"
    );
    let gone = c.rpc().block(tendermint::block::Height::from(1u32)).await;
    assert!(gone.is_err(), "block 1 is still served: {gone:?}");

    // The oldest state the app still answers for (its window may have moved on by a block or
    // two since the status): proven against the header after it, which CometBFT kept.
    let now = t.height(0).await;
    let oldest = now - KEEP_RECENT + 3;
    let proven = c.query_proven(&keys::member("hospital-a"), oldest).await;
    let proven = proven.unwrap_or_else(|e| panic!("state {oldest} of {now}: {e:#}"));
    assert_eq!(proven.height, oldest);
    assert!(proven.value.is_some());
    // Below the window: the app's own refusal, not a missing header.
    let old = c.query_raw(&keys::member("hospital-a"), earliest).await;
    let err = format!("{:#}", old.unwrap_err());
    assert!(err.contains("(code 103)"), "{err}");
}

/// `GET path` at `gateway`, signed by the patient: the status and the FHIR JSON answer.
async fn fhir_get(gateway: &GatewayClient, path: &str) -> (u16, Value) {
    let (status, body) = gateway
        .send_raw("GET", path, Vec::new(), &[])
        .await
        .unwrap();
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("GET {path} -> {status}: {}", String::from_utf8_lossy(&body)));
    (status, v)
}

/// Waits until node 0 is at `height` or later.
async fn wait_height(t: &TestNet, height: u64) {
    t.net
        .wait_for_height(0, height, Duration::from_secs(120))
        .await
        .unwrap();
}

/// Issue 26 point 3 at a node that prunes: each version of a consent (its grant and its
/// revocation) is proven at its own height while the node keeps that height. Once the grant's
/// height is pruned, `_history` still answers, the grant's entry without a resource and with an
/// OperationOutcome saying why, and its vread is 410; once every version's height is pruned,
/// `_history` is 410. Never a version the node cannot prove.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_history_at_a_pruning_node_names_the_versions_it_can_no_longer_prove() {
    let mut t = TestNet::prepare_with(true);
    t.net.spec.keep_recent = Some(KEEP_RECENT);
    t.net.spec.retain_blocks = Some(RETAIN_BLOCKS);
    t.net.spec.snapshot_interval = Some(0);
    t.up().await;
    let alice = t.consenting_patient(141, "lab-b").await;
    let gateway = GatewayClient::new(&t.net.spec.nodes[0].gateway_url(), alice.key.clone());
    let history = format!("/fhir/Consent/{}/_history", alice.consent_id);

    // The grant, proven: one version, its ETag its height.
    let deadline = Instant::now() + Duration::from_secs(30);
    let granted = loop {
        let (s, b) = fhir_get(&gateway, &history).await;
        if s == 200 && b["entry"][0]["resource"]["resourceType"] == "Consent" {
            break b["entry"][0]["resource"]["meta"]["versionId"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the grant is never proven: {s} {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // The revocation, KEEP_RECENT blocks later, so that for a while the node keeps its height
    // but no longer the grant's.
    wait_height(&t, granted + KEEP_RECENT).await;
    let r = t
        .client(0)
        .submit(
            &alice.key,
            Msg::RevokeConsent(pb::RevokeConsent {
                consent_id: alice.consent_id.clone(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "revoke: {} {}", r.code_name, r.log);
    let revoked = r.height;
    // The gateway reads at the certified state: until it holds the revocation, the consent's
    // one version is the grant, already pruned (410).
    t.certified(revoked).await;

    // Past the grant's height (the window is the newest KEEP_RECENT states, give or take the
    // certificate's two blocks), well before the revocation's.
    let deadline = Instant::now() + Duration::from_secs(90);
    let b = loop {
        let (s, b) = fhir_get(&gateway, &history).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["total"], 2, "{b}");
        if b["entry"][1].get("resource").is_none() {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "the grant's height {granted} is never pruned: {b}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // Newest first: the revocation, proven at its height; then the grant, unproven, saying why.
    let now = t.height(0).await;
    assert!(
        now < revoked + KEEP_RECENT,
        "the revocation's height {revoked} went too (now {now}): the test lost its window"
    );
    assert_eq!(b["entry"][0]["request"]["method"], "PUT");
    assert_eq!(b["entry"][0]["resource"]["status"], "inactive");
    assert_eq!(
        b["entry"][0]["resource"]["meta"]["versionId"],
        revoked.to_string()
    );
    assert_eq!(b["entry"][1]["request"]["method"], "POST");
    assert_eq!(
        b["entry"][1]["response"]["etag"],
        format!("W/\"{granted}\"")
    );
    let why = &b["entry"][1]["response"]["outcome"];
    assert_eq!(why["resourceType"], "OperationOutcome");
    assert!(
        why["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("pruned"),
        "{why}"
    );
    let (s, oo) = fhir_get(&gateway, &format!("{history}/{granted}")).await;
    assert_eq!(
        (s, &oo["resourceType"]),
        (410, &Value::from("OperationOutcome")),
        "{oo}"
    );
    let (s, v) = fhir_get(&gateway, &format!("{history}/{revoked}")).await;
    assert_eq!((s, &v["status"]), (200, &Value::from("inactive")), "{v}");

    // Past the revocation's height too: no version can be proven, and the history says so.
    wait_height(&t, revoked + KEEP_RECENT + 3).await;
    let (s, oo) = fhir_get(&gateway, &history).await;
    assert_eq!(
        (s, &oo["resourceType"]),
        (410, &Value::from("OperationOutcome")),
        "{oo}"
    );
    // The current consent still reads, proven at the newest state.
    let (s, c) = fhir_get(&gateway, &format!("/fhir/Consent/{}", alice.consent_id)).await;
    assert_eq!((s, &c["status"]), (200, &Value::from("inactive")), "{c}");
}

#[test]
fn retaining_fewer_blocks_than_the_readable_states_is_refused_at_start() {
    let _machine = support::exclusive();
    let dir = tempfile::tempdir().unwrap();
    for (retain, keep, snapshots) in [("10", "10", "0"), ("50", "0", "0"), ("50", "20", "100")] {
        let out = Command::new(medledger_bin())
            .args(["start", "--data"])
            .arg(dir.path().join("app"))
            .args(["--listen", "127.0.0.1:1", "--retain-blocks", retain])
            .args(["--keep-recent", keep, "--snapshot-interval", snapshots])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("--retain-blocks"),
            "retain {retain}, keep {keep}, snapshots {snapshots}: {stderr}"
        );
    }
}

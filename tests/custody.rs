//! Threshold custody on a real localnet (issue 25): the genesis asks for 3 holders and threshold
//! 2, so a record lab-b stores through its gateway is split among lab-b and two other members'
//! gateways. Killed gateways, a read, and an erasure that must reach every holder.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use medledger_devnet::localnet::Proc;
use medledger_tx::keys;
use medledger_tx::pb::{self, tx_body::Msg};
use prost::Message;

use crate::support::TestNet;

/// The record's anchor as node 0 has it.
async fn anchor(net: &TestNet, id: &str) -> pb::RecordAnchor {
    let (value, _) = net.client(0).query_raw(&keys::record(id), 0).await.unwrap();
    pb::RecordAnchor::decode(value.expect("anchored").as_slice()).unwrap()
}

/// Node `i`'s gateway files of record `id`: (metadata, key file).
fn held(net: &TestNet, i: usize, id: &str) -> (PathBuf, PathBuf) {
    let data = net.net.gateway_dir(i).join("data");
    let name = hex::encode(id.as_bytes());
    (
        data.join("records").join(format!("{name}.json")),
        data.join("keys").join(format!("{name}.key")),
    )
}

fn node_of(net: &TestNet, member: &str) -> usize {
    net.net
        .spec
        .nodes
        .iter()
        .position(|n| n.name == member)
        .unwrap()
}

/// Polls `check` every 200 ms for up to 60 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_outlives_its_custodians_gateway_and_its_erasure_reaches_every_holder() {
    let net = TestNet::start_with_gateways().await;
    let patient = net.consenting_patient(23, "hospital-a").await;
    let content = br#"{"resourceType":"Observation","code":{"text":"ferritin"},"valueQuantity":{"value":41,"unit":"ng/mL"}}"#;
    net.vault_put("lab-b", &patient.id, "Observation", "obs-t", content);
    // A second record of the patient, of a kind the patient's consent to hospital-a does not
    // cover (Observation only), stored at another member.
    let report = br#"{"resourceType":"DiagnosticReport"}"#;
    net.vault_put(
        "hospital-d",
        &patient.id,
        "DiagnosticReport",
        "dr-u",
        report,
    );

    // The anchor lists the holders (lab-b first), the threshold and one commitment per share
    // needed; the ledger proves it like any other value.
    let a = anchor(&net, "obs-t").await;
    assert_eq!(a.custodian, "lab-b");
    assert_eq!(a.holders.len(), 3, "{:?}", a.holders);
    assert_eq!(a.holders[0], "lab-b");
    assert_eq!(a.threshold, 2);
    assert_eq!(a.share_commitments.len(), 2);
    assert!(a.share_commitments.iter().all(|c| c.len() == 32));

    // Every holder's gateway has its replica; the custodian has handed out every share.
    let holders: Vec<usize> = a.holders.iter().map(|m| node_of(&net, m)).collect();
    for &i in &holders {
        let (meta, key) = held(&net, i, "obs-t");
        eventually(
            &format!(
                "{}'s replica",
                a.holders[holders.iter().position(|&h| h == i).unwrap()]
            ),
            async || meta.exists() && key.exists(),
        )
        .await;
    }
    let (custodian_meta, _) = held(&net, holders[0], "obs-t");
    eventually("every replica acknowledged", async || {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&custodian_meta).unwrap()).unwrap();
        m["custody"]["to_replicate"]
            .as_array()
            .is_none_or(|v| v.is_empty())
    })
    .await;
    // No gateway holds the data key: each key file is one share, and the custodian's metadata
    // keeps no sealed share once delivered.
    let non_holder = (0..4).find(|i| !holders.contains(i)).unwrap();
    assert!(
        !held(&net, non_holder, "obs-t").0.exists(),
        "only holders hold it"
    );

    // Only the record's custodian hands out its replicas, and only to a holder: an anonymous
    // caller gets 401, another member's key 403, the custodian at a non-holder's gateway 403;
    // nothing is stored.
    let replica = |i: usize| format!("{}/replicas/obs-t", net.net.spec.nodes[i].gateway_url());
    let body = br#"{"sealed_base64":"","sealed_share_base64":""}"#;
    let put = async |key: Option<&str>, url: String| {
        let mut rb = reqwest::Client::new().put(&url).body(body.to_vec());
        if let Some(k) = key {
            let key = net.member_key(k);
            for (h, v) in medledger_gateway::client::sign_headers(
                &key,
                "PUT",
                &url,
                body,
                medledger_gateway::client::now_secs(),
            )
            .unwrap()
            {
                rb = rb.header(h, v);
            }
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    };
    let other = net.net.spec.nodes[non_holder].name.clone();
    let (s, said) = put(None, replica(holders[1])).await;
    assert_eq!(s, 401, "{said}");
    let (s, said) = put(Some(&other), replica(holders[1])).await;
    assert_eq!(s, 403, "another member: {said}");
    assert!(said.contains("custodian"), "{said}");
    let (s, said) = put(Some("lab-b"), replica(non_holder)).await;
    assert_eq!(s, 403, "not a holder: {said}");
    assert!(!held(&net, non_holder, "obs-t").0.exists());

    // The custodian's gateway goes down: the read still succeeds, byte for byte, from the two
    // other holders.
    net.kill9(holders[0], Proc::Gateway);
    let output = net.home().join("read.json");
    let out = ["-o", "json", "--out", output.to_str().unwrap()];
    let get = net.vault_get("hospital-a", "obs-t", &out);
    assert_eq!(get.status.code(), Some(0));
    assert_eq!(std::fs::read(&output).unwrap(), content);
    let report: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
    let used: Vec<&str> = report["holders_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(used.len(), 2, "{report}");
    assert!(!used.contains(&"lab-b"), "the custodian is down: {report}");
    // Another member asking a holder for its share of that same access is refused (409: a
    // holder releases a share once per access event, and that one is spent).
    let stolen = medledger_gateway::client::GatewayClient::new(
        &net.net.spec.nodes[holders[2]].gateway_url(),
        net.member_key(&other),
    )
    .get_share(
        "obs-t",
        pb::Purpose::Treat,
        report["access_index"].as_u64().unwrap(),
    )
    .await;
    match stolen {
        Err(medledger_gateway::client::ClientError::Status { status, body }) => {
            assert_eq!(status, 409, "{}", body.error)
        }
        other => panic!("another member got a share: {other:?}"),
    }

    // `vault pull`: every record of the patient (the proven list), each read from whichever
    // holders are up, or refused with the ledger's reason; exit 1 (refused) as one was.
    let dir = net.home().join("pulled");
    let pull = net.cli(&[
        "-o",
        "json",
        "vault",
        "pull",
        "--from",
        "hospital-a",
        "--patient",
        &patient.id,
        "--purpose",
        "TREAT",
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(pull.status.code(), Some(1));
    let pulled: serde_json::Value = serde_json::from_slice(&pull.stdout).unwrap();
    assert_eq!(
        (pulled["read"].as_u64(), pulled["refused"].as_u64()),
        (Some(1), Some(1)),
        "{pulled}"
    );
    assert_eq!(std::fs::read(dir.join("obs-t")).unwrap(), content);
    let refusal = pulled["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record_id"] == "dr-u")
        .unwrap();
    assert_eq!(refusal["outcome"], "refused", "{pulled}");
    assert!(
        refusal["reason"]
            .as_str()
            .unwrap()
            .contains("NO_PERMITTING_CONSENT"),
        "{refusal}"
    );
    assert!(!dir.join("dr-u").exists());

    // One more holder down: one share is left, below the threshold; the read is refused and
    // says why, naming what each holder answered.
    net.kill9(holders[1], Proc::Gateway);
    let get = net.vault_get("hospital-a", "obs-t", &["-o", "json"]);
    assert_ne!(get.status.code(), Some(0));
    let said =
        String::from_utf8_lossy(&get.stderr).to_string() + &String::from_utf8_lossy(&get.stdout);
    assert!(said.contains("1 of 2 key shares"), "{said}");

    // The patient erases the record on the ledger directly. Every holder destroys its share
    // when it sees the committed erasure (the two down gateways when they come back) and
    // confirms; the ledger calls the erasure complete once fewer than 2 shares can remain.
    let r = net
        .client(0)
        .submit(
            &patient.key,
            Msg::EraseRecord(pb::EraseRecord {
                record_id: "obs-t".into(),
                reason_hash: Vec::new(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    eventually("the one live holder destroys its share", async || {
        !held(&net, holders[2], "obs-t").1.exists()
    })
    .await;
    eventually("its confirmation on the ledger", async || {
        !anchor(&net, "obs-t").await.erasure_confirmations.is_empty()
    })
    .await;
    let a = anchor(&net, "obs-t").await;
    assert_eq!(a.erasure_confirmations, [a.holders[2].clone()]);
    assert_eq!(
        a.erasure_confirmed_height, 0,
        "one confirmation of 3 is not complete"
    );
    // `verify record` proves it and names the two holders that have not confirmed yet (it
    // reads the state a certified header attests, which may be a block behind).
    let want = format!(
        "share destruction confirmed by 1 of the 2 holders needed (3 hold shares, 2 rebuild the \
         key); not yet confirmed by {}, {}",
        a.holders[0], a.holders[1]
    );
    let mut said = String::new();
    eventually("verify record names the unconfirmed holders", async || {
        let verify = net.verify(&["record", "obs-t"]);
        said = String::from_utf8_lossy(&verify.stdout).into_owned();
        assert!(verify.status.success(), "{said}");
        said.contains(&want)
    })
    .await;
    assert!(
        said.starts_with("VERIFIED record obs-t ERASURE REQUESTED"),
        "{said}"
    );
    net.net.start(holders[0], Proc::Gateway).unwrap();
    net.net.start(holders[1], Proc::Gateway).unwrap();
    eventually("every holder confirmed", async || {
        anchor(&net, "obs-t").await.erasure_confirmations.len() == 3
    })
    .await;
    let a = anchor(&net, "obs-t").await;
    assert_ne!(a.erasure_confirmed_height, 0, "complete: {a:?}");
    for &i in &holders {
        assert!(
            !held(&net, i, "obs-t").1.exists(),
            "no holder keeps its share"
        );
    }
}

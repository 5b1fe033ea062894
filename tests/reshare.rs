//! `gateway reshare` on a real localnet (issue 25 point 8): lab-b stores two records while the
//! consortium has no threshold custody (each held whole, under lab-b's KEK); the consortium
//! turns custody on (3 holders, threshold 2) by a passed SetCustody; `gateway reshare` moves
//! both, and they read byte for byte with lab-b's gateway stopped. The whole keys are gone, a
//! second reshare moves nothing, and neither another member's admin nor the ledger lets anyone
//! but the custodian's admin do it.

use medledger_devnet::localnet::Proc;
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg};
use medledger_tx::{keys, Code};
use prost::Message;

use crate::support::TestNet;

async fn anchor(net: &TestNet, id: &str) -> pb::RecordAnchor {
    let (value, _) = net.client(0).query_raw(&keys::record(id), 0).await.unwrap();
    pb::RecordAnchor::decode(value.expect("anchored").as_slice()).unwrap()
}

fn node_of(net: &TestNet, member: &str) -> usize {
    net.net
        .spec
        .nodes
        .iter()
        .position(|n| n.name == member)
        .unwrap()
}

/// Node `i`'s gateway data dir.
fn data(net: &TestNet, i: usize) -> std::path::PathBuf {
    net.net.gateway_dir(i).join("data")
}

/// Node `i`'s key file of record `id`.
fn key_file(net: &TestNet, i: usize, id: &str) -> std::path::PathBuf {
    data(net, i)
        .join("keys")
        .join(format!("{}.key", hex::encode(id.as_bytes())))
}

/// `medledger -o json gateway reshare --from FROM [--gateway URL] MORE…`: exit code and JSON.
fn reshare(
    net: &TestNet,
    from: &str,
    gateway: Option<&str>,
    more: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["-o", "json", "gateway", "reshare", "--from", from];
    if let Some(g) = gateway {
        args.extend(["--gateway", g]);
    }
    args.extend_from_slice(more);
    let out = net.cli(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), json)
}

/// The outcomes of a reshare's answers: (record id, outcome), in order.
fn outcomes(answers: &serde_json::Value) -> Vec<(String, String)> {
    answers
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["records"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["record_id"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_stored_whole_move_to_threshold_custody_and_read_with_the_custodian_down() {
    let net = TestNet::prepare_with(true);
    net.edit_genesis(|g| {
        g["app_state"].as_object_mut().unwrap().remove("custody");
    });
    net.up().await;
    let patient = net.consenting_patient(37, "hospital-a").await;
    let one = br#"{"resourceType":"Observation","code":{"text":"ferritin"},"valueQuantity":{"value":38,"unit":"ng/mL"}}"#;
    let two = br#"{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":5.9,"unit":"%"}}"#;
    net.vault_put("lab-b", &patient.id, "Observation", "obs-w1", one);
    net.vault_put("lab-b", &patient.id, "Observation", "obs-w2", two);
    let custodian = node_of(&net, "lab-b");
    let before = anchor(&net, "obs-w1").await;
    assert!(before.holders.is_empty(), "stored whole: {before:?}");
    let whole_key = std::fs::read(key_file(&net, custodian, "obs-w1")).unwrap();

    // Custody off: nothing to move to (409), nothing changes.
    let (code, refused) = reshare(&net, "lab-b", None, &[]);
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused["status"], 409, "{refused}");

    // The consortium turns threshold custody on: 3 of 4 members vote yes.
    let c = net.client(0);
    let propose = Msg::SubmitProposal(pb::SubmitProposal {
        action: Some(Action::SetCustody(pb::SetCustody {
            holders: 3,
            threshold: 2,
        })),
        deadline_height: net.height(0).await + 200,
    });
    let r = c
        .submit(&net.member_key("hospital-a"), propose)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{} {}", r.code_name, r.log);
    let id: u64 = r.attribute("proposal_id").unwrap().parse().unwrap();
    for m in ["lab-b", "insurer-c"] {
        let vote = Msg::VoteProposal(pb::VoteProposal {
            proposal_id: id,
            yes: true,
        });
        let r = c.submit(&net.member_key(m), vote).await.unwrap();
        assert_eq!(r.code, 0, "{m}: {} {}", r.code_name, r.log);
    }

    // A dry run names both and changes nothing (the gateway reads custody a block behind).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let dry = loop {
        let (code, dry) = reshare(&net, "lab-b", None, &["--dry-run"]);
        if code == Some(0) {
            break dry;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "custody never seen: {dry}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(
        outcomes(&dry),
        [
            ("obs-w1".to_string(), "would_move".to_string()),
            ("obs-w2".to_string(), "would_move".to_string())
        ],
        "{dry}"
    );
    assert!(anchor(&net, "obs-w1").await.holders.is_empty());

    // Another member's admin cannot trigger it at lab-b's gateway (403), and the ledger refuses
    // another member's anchor of lab-b's record with holders (NOT_CUSTODIAN).
    let lab_gateway = net.net.spec.nodes[custodian].gateway_url();
    let (code, refused) = reshare(&net, "hospital-a", Some(&lab_gateway), &[]);
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused["status"], 403, "{refused}");
    let stolen = c
        .submit(
            &net.member_key("hospital-a"),
            Msg::AnchorRecord(pb::AnchorRecord {
                record_id: "obs-w1".into(),
                patient_id: patient.id.clone(),
                resource_type: "Observation".into(),
                content_hash: vec![7; 32],
                size: 100,
                key_id: format!("kc1-{}", hex::encode([7u8; 32])),
                holders: vec!["hospital-a".into(), "lab-b".into(), "insurer-c".into()],
                threshold: 2,
                share_commitments: vec![vec![1; 32], vec![2; 32]],
            }),
        )
        .await
        .unwrap();
    assert_eq!(stolen.code, Code::NotCustodian.value(), "{}", stolen.log);

    // lab-b's admin reshares: both move.
    let (code, moved) = reshare(&net, "lab-b", None, &[]);
    assert_eq!(code, Some(0), "{moved}");
    assert_eq!(
        outcomes(&moved),
        [
            ("obs-w1".to_string(), "moved".to_string()),
            ("obs-w2".to_string(), "moved".to_string())
        ],
        "{moved}"
    );
    for id in ["obs-w1", "obs-w2"] {
        let a = anchor(&net, id).await;
        assert_eq!(a.holders.len(), 3, "{a:?}");
        assert_eq!(a.holders[0], "lab-b");
        assert_eq!((a.threshold, a.share_commitments.len()), (2, 2));
        if id == "obs-w1" {
            assert_ne!(a.content_hash, before.content_hash, "sealed again");
            assert_eq!(a.anchored_height, before.anchored_height);
        }
        // Every holder has its replica: its metadata and its own share.
        for h in &a.holders {
            let i = node_of(&net, h);
            assert!(key_file(&net, i, id).exists(), "{h} holds {id}");
        }
    }
    // The whole key is gone: lab-b's key file is its share now, nothing is kept aside.
    assert_ne!(
        std::fs::read(key_file(&net, custodian, "obs-w1")).unwrap(),
        whole_key
    );
    let kept: Vec<_> = std::fs::read_dir(data(&net, custodian).join("reshare"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(kept.is_empty(), "left in reshare/: {kept:?}");

    // A second reshare moves nothing.
    let (code, again) = reshare(&net, "lab-b", None, &[]);
    assert_eq!(code, Some(0), "{again}");
    assert!(outcomes(&again).is_empty(), "{again}");
    assert_eq!(again[0]["moved"], 0, "{again}");

    // lab-b's gateway stops; hospital-a reads both from the other holders, byte for byte.
    net.kill9(custodian, Proc::Gateway);
    for (id, content) in [("obs-w1", &one[..]), ("obs-w2", &two[..])] {
        let output = net.home().join(format!("{id}.read"));
        let get = net.vault_get(
            "hospital-a",
            id,
            &["-o", "json", "--out", output.to_str().unwrap()],
        );
        assert_eq!(get.status.code(), Some(0), "{id}");
        assert_eq!(std::fs::read(&output).unwrap(), content, "{id}");
        let report: serde_json::Value = serde_json::from_slice(&get.stdout).unwrap();
        assert!(
            !report["holders_used"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h == "lab-b"),
            "{report}"
        );
    }
}

//! The record vault through the CLI on a localnet whose nodes run their members' gateways (as
//! `medledger localnet up` starts them): lab-b stores an Observation with `medledger vault put`,
//! hospital-a (consented) reads it back byte for byte with `vault get`, insurer-c (no consent)
//! is refused with exit status 1.

use crate::support::TestNet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_b_puts_hospital_a_gets_insurer_c_is_refused() {
    let net = TestNet::start_with_gateways().await;
    // The localnet started and registered one gateway per member.
    for s in net.net.status().await {
        assert!(s.gateway_running, "{}'s gateway runs", s.name);
        assert!(s.gateway.is_some());
    }

    let patient_id = net.consenting_patient(7, "hospital-a").await.id;

    let content = br#"{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%"}}"#;
    let put = net.vault_put("lab-b", &patient_id, "Observation", "obs-1", content);
    assert_eq!(put["record_id"], "obs-1");
    assert!(put["anchor_height"].as_u64().unwrap() > 0);

    // The record locator: the patient's proven list of records names obs-1, held by lab-b.
    let list = net.cli(&["-o", "json", "vault", "list", "--patient", &patient_id]);
    assert_eq!(list.status.code(), Some(0));
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(list["count"]["value"], 1, "{list}");
    let first = &list["items"][0];
    assert_eq!(first["value"]["record_id"], "obs-1", "{list}");
    assert_eq!(first["value"]["custodian"], "lab-b", "{list}");
    assert!(first["verified_against"].is_string(), "proven: {list}");

    let output = net.home().join("read.json");
    let get = net.vault_get("hospital-a", "obs-1", &["--out", output.to_str().unwrap()]);
    assert_eq!(get.status.code(), Some(0));
    assert_eq!(std::fs::read(&output).unwrap(), content);
    // Without --out the record goes to stdout, byte for byte.
    let get = net.vault_get("hospital-a", "obs-1", &[]);
    assert_eq!(get.status.code(), Some(0));
    assert_eq!(get.stdout, content);

    let refused = net.vault_get("insurer-c", "obs-1", &["-o", "json"]);
    assert_eq!(refused.status.code(), Some(1), "Exit::Refused");
    let refused: serde_json::Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(refused["status"], 403);
    assert_eq!(refused["code_name"], "NO_PERMITTING_CONSENT");

    // The verified access history holds exactly the reads that released data: hospital-a's two
    // gets of obs-1, and nothing of insurer-c's refused one.
    let history = net.verify(&["access", &patient_id, "--export", "csv"]);
    assert_eq!(history.status.code(), Some(0));
    let csv = String::from_utf8(history.stdout).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    for row in rows {
        assert!(row.contains("hospital-a") && row.contains("obs-1"), "{row}");
        assert!(!row.contains("insurer-c"), "{row}");
    }
}

//! The patient's own copy on a real localnet (issue 25 point 6): a record lab-b stores is split
//! 2-of-3 among its holders; the patient registers the box key derived from their own key
//! (`tx patient box-key`) and reads the record byte for byte with `vault get --patient-key`
//! while the custodian's gateway is down. The read is in the patient's proven access history as
//! the patient's own; the refusals carry their codes.

use medledger_devnet::localnet::Proc;
use medledger_gateway::client::{ClientError, GatewayClient};
use medledger_tx::keys;
use medledger_tx::pb::{self, Purpose};
use prost::Message;

use crate::support::TestNet;

fn node_of(net: &TestNet, member: &str) -> usize {
    net.net
        .spec
        .nodes
        .iter()
        .position(|n| n.name == member)
        .unwrap()
}

/// `medledger -o json vault get --patient-key FILE RECORD --out OUT`: exit code and JSON.
fn patient_get(
    net: &TestNet,
    key_name: &str,
    record: &str,
    out: &std::path::Path,
) -> (Option<i32>, serde_json::Value) {
    let file = net.keyring.dir().join(format!("{key_name}.json"));
    let get = net.cli(&[
        "-o",
        "json",
        "vault",
        "get",
        "--patient-key",
        file.to_str().unwrap(),
        record,
        "--out",
        out.to_str().unwrap(),
    ]);
    let json = serde_json::from_slice(&get.stdout).unwrap_or(serde_json::Value::Null);
    (get.status.code(), json)
}

/// `medledger tx --node NODE0 --from KEY patient box-key`; the tx must commit.
fn register_box_key(net: &TestNet, key_name: &str) {
    net.tx_ok(key_name, &["patient", "box-key"]);
}

/// A share asked of `holder` by `key` for access event `index`: the HTTP status of the refusal.
async fn share_status(
    net: &TestNet,
    holder: usize,
    key: &ed25519_dalek::SigningKey,
    index: u64,
) -> u16 {
    let got = GatewayClient::new(&net.net.spec.nodes[holder].gateway_url(), key.clone())
        .get_share("obs-p", Purpose::Patrqt, index)
        .await;
    match got {
        Err(ClientError::Status { status, body }) => {
            eprintln!("refused: {status} {}", body.error);
            status
        }
        other => panic!("a share was released: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_reads_their_own_record_from_its_holders_with_the_custodian_down() {
    let net = TestNet::start_with_gateways().await;
    let alice = net.consenting_patient(31, "hospital-a").await;
    net.keyring.import("alice", &alice.key).unwrap();
    let content = br#"{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%"}}"#;
    net.vault_put("lab-b", &alice.id, "Observation", "obs-p", content);
    let (value, _) = net
        .client(0)
        .query_raw(&keys::record("obs-p"), 0)
        .await
        .unwrap();
    let anchor = pb::RecordAnchor::decode(value.expect("anchored").as_slice()).unwrap();
    assert_eq!((anchor.holders.len(), anchor.threshold), (3, 2));
    let out = net.home().join("mine.json");

    // Before the patient registered a box key there is nothing to seal the shares to.
    let (code, refused) = patient_get(&net, "alice", "obs-p", &out);
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(refused["code_name"], "NO_PATIENT_BOX_KEY", "{refused}");
    assert!(!out.exists());

    // The patient registers the box key derived from their own key, with their own key.
    register_box_key(&net, "alice");
    let (value, _) = net
        .client(0)
        .query_raw(&keys::patient_box_key(&alice.id), 0)
        .await
        .unwrap();
    let registered = pb::PatientBoxKey::decode(value.expect("registered").as_slice()).unwrap();
    assert_eq!(registered.patient_id, alice.id);
    assert_eq!(registered.box_key.len(), 32);

    // The custodian's gateway goes down; the patient reads from the other two holders, byte
    // for byte.
    assert_eq!(anchor.holders[0], "lab-b");
    net.kill9(node_of(&net, "lab-b"), Proc::Gateway);
    let (code, report) = patient_get(&net, "alice", "obs-p", &out);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(report["reader_member"], alice.id.as_str(), "{report}");
    let used: Vec<&str> = report["holders_used"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(used.len(), 2, "{report}");
    assert!(!used.contains(&"lab-b"), "{report}");
    let index = report["access_index"].as_u64().unwrap();

    // The read is in the patient's proven access history, as the patient's own.
    let (value, _) = net
        .client(0)
        .query_raw(&keys::access_event(&alice.id, index), 0)
        .await
        .unwrap();
    let event = pb::AccessEvent::decode(value.expect("logged").as_slice()).unwrap();
    assert_eq!(event.actor, alice.id);
    assert_eq!(event.purpose, Purpose::Patrqt as i32);
    assert_eq!(event.record_id, "obs-p");
    let history = net.verify(&["access", &alice.id, "--export", "csv"]);
    assert_eq!(history.status.code(), Some(0));
    let csv = String::from_utf8(history.stdout).unwrap();
    assert!(
        csv.lines().skip(1).any(|row| row.contains(&alice.id)
            && row.contains("obs-p")
            && row.contains(&format!(",{index}"))),
        "{csv}"
    );

    // Another patient, bob, with a box key of his own.
    let bob = net.consenting_patient(32, "hospital-a").await;
    net.keyring.import("bob", &bob.key).unwrap();
    register_box_key(&net, "bob");

    // Each holder releases once per access event: a second release of that event is refused
    // (409), to the patient and to anyone else.
    let holder = node_of(&net, used[0]);
    assert_eq!(share_status(&net, holder, &alice.key, index).await, 409);
    assert_eq!(share_status(&net, holder, &bob.key, index).await, 409);
    // The same ask in the headers a browser sends (fetch sends no body with GET).
    let (status, said) =
        GatewayClient::new(&net.net.spec.nodes[holder].gateway_url(), alice.key.clone())
            .send_raw(
                "GET",
                "/records/obs-p?purpose=PATRQT",
                Vec::new(),
                &[("medledger-access-index".into(), index.to_string())],
            )
            .await
            .unwrap();
    assert_eq!(status, 409, "{}", String::from_utf8_lossy(&said));

    // Bob's key reads nothing of alice's: the ledger refuses the access (NOT_OWN_PATIENT_ID),
    // so no holder releases anything.
    let stolen = net.home().join("stolen.json");
    let (code, refused) = patient_get(&net, "bob", "obs-p", &stolen);
    assert_eq!(code, Some(1), "{refused}");
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(refused["code_name"], "NOT_OWN_PATIENT_ID", "{refused}");
    assert!(!stolen.exists());

    // A browser page at one gateway may ask another holder: CORS on GET /records/{id}.
    let url = format!("{}/records/obs-p", net.net.spec.nodes[holder].gateway_url());
    let http = reqwest::Client::new();
    let pre = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "http://127.0.0.1:1")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "signature, signature-input, content-digest, medledger-access-tx",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status().as_u16(), 204);
    let allowed = pre.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "signature",
        "signature-input",
        "content-digest",
        "medledger-access-tx",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    // An unsigned cross-origin read is refused, and the browser may read why.
    let r = http
        .get(&url)
        .header("origin", "http://127.0.0.1:1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

/// A record held whole by its custodian (stored before threshold custody, or on a consortium
/// without it): the custodian seals the data key itself to the patient's box key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_reads_a_record_held_whole_by_its_custodian() {
    let net = TestNet::prepare_with(true);
    net.edit_genesis(|g| {
        g["app_state"].as_object_mut().unwrap().remove("custody");
    });
    net.up().await;
    let carol = net.consenting_patient(33, "hospital-a").await;
    net.keyring.import("carol", &carol.key).unwrap();
    let content = br#"{"resourceType":"Observation","code":{"text":"ferritin"}}"#;
    net.vault_put("lab-b", &carol.id, "Observation", "obs-p", content);
    register_box_key(&net, "carol");
    let out = net.home().join("whole.json");
    let (code, report) = patient_get(&net, "carol", "obs-p", &out);
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(std::fs::read(&out).unwrap(), content);
    assert_eq!(report["reader_member"], carol.id.as_str(), "{report}");
    assert!(report.get("holders_used").is_none(), "{report}");
    // The custodian released it once for that access event.
    let index = report["access_index"].as_u64().unwrap();
    let custodian = node_of(&net, "lab-b");
    assert_eq!(share_status(&net, custodian, &carol.key, index).await, 409);
}

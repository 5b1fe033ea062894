//! FHIR R4 Subscriptions (`rest-hook`) at a member's gateway on a localnet, with a real HTTP
//! receiver in the test: a practitioner of hospital-d, which the patient consented to,
//! subscribes to the patient's AuditEvents and Consents; an access logged through the CLI and a
//! new consent reach the receiver as `history` Bundles whose proofs verify against a checkpoint
//! certificate of the genesis validators (the client's own verification); an anonymous caller
//! is 401, a member the patient never consented to 403, a `file:` endpoint 400, a 17th
//! subscription 422; an endpoint that redirects is not followed and, after the retries, turns
//! its subscription to `error`; an empty-payload subscription gets an empty POST; the
//! subscription survives a gateway restart and keeps notifying; once the patient revokes the
//! consent it rests on, it is turned off and nothing more reaches the receiver. HAPI's
//! validator accepts the notifications.

use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};
use ed25519_dalek::SigningKey;
use medledger_devnet::localnet::Proc;
use medledger_gateway::client::GatewayClient;
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole};
use prost::Message;
use serde_json::{json, Value};

use crate::fhir::{part, proven_against};
use crate::support::hooks::{next_hook, receiver, serve};
use crate::support::{self, TestNet};

/// A FHIR request to `base` with `token` (none: anonymous): the status and the JSON body.
async fn fhir(
    base: &str,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut rb = reqwest::Client::new().request(method.clone(), format!("{base}{path}"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/fhir+json")
            .body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "{method} {path} -> {status}: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    eprintln!("{method} {path} -> {status}");
    (status, v)
}

/// POSTs a Subscription of `criteria` to `endpoint` at `base`, with `token` or anonymously.
async fn subscribe(
    base: &str,
    token: Option<&str>,
    criteria: &str,
    endpoint: &str,
) -> (u16, Value) {
    fhir(
        base,
        token,
        reqwest::Method::POST,
        "/fhir/Subscription",
        Some(&subscription(criteria, endpoint)),
    )
    .await
}

fn subscription(criteria: &str, endpoint: &str) -> Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "tell the EHR of every access to the patient's records",
        "criteria": criteria,
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json",
            "header": ["X-Hook-Token: s3cret"],
        },
    })
}

/// Checks a notification as its receiver would: a `history` Bundle whose first entry is
/// subscription `id`; the Bundle's certificate verifies under the genesis validators' BLS keys
/// and certifies the Bundle's height and app hash; each other entry's ICS23 proof verifies its
/// value against that app hash (a changed value fails). Returns the other entries' resources.
pub(crate) fn verified_notification(net: &TestNet, b: &Value, id: &str) -> Vec<Value> {
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "history", "{b}");
    let entries = b["entry"].as_array().unwrap();
    assert_eq!(entries[0]["resource"]["resourceType"], "Subscription");
    assert_eq!(entries[0]["resource"]["id"], id);
    let state = b["meta"]["extension"][0]["extension"].as_array().unwrap();
    let app_hash = hex::decode(part(state, "appHash")["valueString"].as_str().unwrap()).unwrap();
    let height: u64 = part(state, "height")["valueString"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let cert = Base64::decode_vec(
        part(state, "certificate")["valueBase64Binary"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let genesis = std::fs::read(net.net.node_dir(0).join("cometbft/config/genesis.json")).unwrap();
    let trust = medledger_query::certificate::CertTrust::from_genesis_json(&genesis).unwrap();
    let (certified, _) = trust
        .verify(&pb::Certificate::decode(cert.as_slice()).unwrap())
        .unwrap();
    assert_eq!(
        (certified.height, &certified.app_hash),
        (height, &app_hash),
        "the certificate certifies the Bundle's state"
    );
    entries[1..]
        .iter()
        .map(|e| {
            proven_against(&e["resource"], &app_hash);
            e["resource"].clone()
        })
        .collect()
}

/// `medledger tx --from MEMBER access log` of Observation `record` of `patient`, through the CLI
/// (as a person types it, against node 0).
fn cli_access(net: &TestNet, member: &str, patient: &str, record: &str) {
    let node = net.net.spec.nodes[0].rpc_url();
    let args = [
        "tx",
        "--node",
        &node,
        "--from",
        member,
        "access",
        "log",
        "--patient",
        patient,
        "--record",
        record,
        "--class",
        "Observation",
        "--purpose",
        "TREAT",
    ];
    let out = std::process::Command::new(support::medledger_bin())
        .arg("--home")
        .arg(net.home())
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "medledger {}: {:?}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the CLI logged the access");
}

/// Waits until the gateway at `base` answers again.
async fn answers(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/fhir/metadata")).await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the gateway did not come back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_is_notified_with_proofs_until_the_consent_is_revoked() {
    let net = TestNet::start_with_gateways().await;
    let c = net.client(0);
    let (hook_base, hooks) = receiver();
    let mut set_aside = Vec::new();
    let wait = Duration::from_secs(30);

    // The patient, enrolled by hospital-a, consents to hospital-d; hospital-a holds a record.
    let alice = SigningKey::from_bytes(&[71; 32]);
    let pid = medledger_tx::ids::patient_id(&alice.verifying_key().to_bytes());
    net.enrol_patient(0, &alice).await;
    let r = c
        .submit(&alice, support::grant("hospital-d"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let consent_d = r.attribute("consent_id").unwrap().to_string();
    let hospital_a = net.member_key("hospital-a");
    let r = c
        .submit(
            &hospital_a,
            Msg::AnchorRecord(pb::AnchorRecord {
                record_id: "visit-1".into(),
                patient_id: pid.clone(),
                resource_type: "Observation".into(),
                content_hash: vec![9; 32],
                size: 512,
                key_id: "hospital-a-vault-1".into(),
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    // A physician of hospital-d.
    let doc = SigningKey::from_bytes(&[72; 32]);
    let r = c
        .submit(
            &net.member_key("hospital-d"),
            Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: doc.verifying_key().to_bytes().to_vec(),
                role: PractitionerRole::Physician as i32,
                licence_hash: vec![1; 32],
                valid_until: 0,
                name: String::new(),
                key_proof: medledger_tx::keyproof::prove(
                    &doc,
                    &net.chain_id,
                    medledger_tx::keyproof::REGISTER_PRACTITIONER,
                    "hospital-d",
                )
                .to_vec(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    net.wait_all(&[3], r.height).await;

    let i = 3; // hospital-d's gateway
    let base = net.net.spec.nodes[i].gateway_url();
    let token = GatewayClient::new(&base, doc.clone())
        .token()
        .await
        .unwrap();
    let mut docs: Vec<(String, Value)> = Vec::new();

    // The physician subscribes to the patient's AuditEvents and Consents.
    let audit_url = format!("{hook_base}/audit");
    let (s, sub) = subscribe(
        &base,
        Some(&token),
        &format!("AuditEvent?patient=Patient/{pid}"),
        &audit_url,
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    assert_eq!(sub["status"], "active");
    let audit_id = sub["id"].as_str().unwrap().to_string();
    let (s, sub) = subscribe(
        &base,
        Some(&token),
        &format!("Consent?patient={pid}"),
        &format!("{hook_base}/consent"),
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    let consent_sub = sub["id"].as_str().unwrap().to_string();
    // … and once more without a payload: an empty POST says only that there is news.
    let mut bare = subscription(
        &format!("AuditEvent?patient={pid}"),
        &format!("{hook_base}/bare"),
    );
    bare["channel"].as_object_mut().unwrap().remove("payload");
    let (s, sub) = fhir(
        &base,
        Some(&token),
        reqwest::Method::POST,
        "/fhir/Subscription",
        Some(&bare),
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    assert!(sub["channel"].get("payload").is_none(), "{sub}");
    let (s, read) = fhir(
        &base,
        Some(&token),
        reqwest::Method::GET,
        &format!("/fhir/Subscription/{audit_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200, "{read}");
    assert_eq!(read["channel"]["endpoint"], audit_url.as_str());
    docs.push(("GET /fhir/Subscription/{id}".into(), read));

    // Refusals: anonymous 401; a bad endpoint 400; a member the patient never consented to 403,
    // and it reads no one else's subscription.
    let (s, oo) = subscribe(
        &base,
        None,
        &format!("AuditEvent?patient={pid}"),
        &audit_url,
    )
    .await;
    assert_eq!(
        (s, oo["issue"][0]["code"].as_str()),
        (401, Some("login")),
        "{oo}"
    );
    let (s, oo) = subscribe(
        &base,
        Some(&token),
        &format!("AuditEvent?patient={pid}"),
        "file:///etc/passwd",
    )
    .await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "value");
    assert_eq!(
        oo["issue"][0]["expression"][0],
        "Subscription.channel.endpoint"
    );
    let lab = GatewayClient::new(&base, net.member_key("lab-b"))
        .token()
        .await
        .unwrap();
    let (s, oo) = subscribe(
        &base,
        Some(&lab),
        &format!("AuditEvent?patient={pid}"),
        &audit_url,
    )
    .await;
    assert_eq!(
        (s, oo["issue"][0]["code"].as_str()),
        (403, Some("forbidden")),
        "{oo}"
    );
    let (s, oo) = fhir(
        &base,
        Some(&lab),
        reqwest::Method::GET,
        &format!("/fhir/Subscription/{audit_id}"),
        None,
    )
    .await;
    assert_eq!(s, 403, "{oo}");

    // An endpoint that redirects (to the receiver) is never followed: after the retries the
    // subscription is `error`. And a subscriber holds at most 16.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirecting = format!("http://{}/hook", l.local_addr().unwrap());
    let redirects = serve(
        l,
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {hook_base}/stolen\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
    );
    let (s, sub) = subscribe(
        &base,
        Some(&token),
        &format!("AuditEvent?patient={pid}"),
        &redirecting,
    )
    .await;
    assert_eq!(s, 201, "{sub}");
    let redirected_id = sub["id"].as_str().unwrap().to_string();
    let mut idle = subscription(&format!("Consent?patient={pid}"), &audit_url);
    idle["status"] = json!("off");
    for n in 5..=16 {
        let (s, sub) = fhir(
            &base,
            Some(&token),
            reqwest::Method::POST,
            "/fhir/Subscription",
            Some(&idle),
        )
        .await;
        assert_eq!(
            (s, sub["status"].as_str()),
            (201, Some("off")),
            "{n}: {sub}"
        );
    }
    let (s, oo) = fhir(
        &base,
        Some(&token),
        reqwest::Method::POST,
        "/fhir/Subscription",
        Some(&idle),
    )
    .await;
    assert_eq!(
        (s, oo["issue"][0]["code"].as_str()),
        (422, Some("business-rule")),
        "{oo}"
    );

    // The patient consents to hospital-a too: the Consent subscriber hears of it.
    let r = c
        .submit(&alice, support::grant("hospital-a"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let consent_a = r.attribute("consent_id").unwrap().to_string();
    let hook = next_hook(&hooks, "/consent", wait, &mut set_aside).expect("a Consent notification");
    assert_eq!(hook.header("content-type"), Some("application/fhir+json"));
    let b = hook.bundle();
    let consents = verified_notification(&net, &b, &consent_sub);
    assert_eq!(consents.len(), 1, "{b}");
    assert_eq!(consents[0]["id"], consent_a.as_str());
    docs.push(("Consent notification".into(), b));

    // hospital-d logs an access through the CLI: the AuditEvent subscriber hears of it, with
    // the header it asked for and the event's proof.
    cli_access(&net, "hospital-d", &pid, "visit-1");
    let logged = Instant::now();
    let hook =
        next_hook(&hooks, "/audit", wait, &mut set_aside).expect("an AuditEvent notification");
    eprintln!("notified {:?} after the CLI returned", logged.elapsed());
    assert_eq!(hook.header("x-hook-token"), Some("s3cret"));
    assert_eq!(hook.header("content-type"), Some("application/fhir+json"));
    let b = hook.bundle();
    let events = verified_notification(&net, &b, &audit_id);
    assert_eq!(events.len(), 1, "{b}");
    assert_eq!(events[0]["id"], format!("{pid}-0"));
    assert_eq!(
        b["entry"][0]["resource"]["extension"][0]["extension"][0]["valueUnsignedInt"],
        1
    );
    docs.push(("AuditEvent notification".into(), b));
    let hook = next_hook(&hooks, "/bare", wait, &mut set_aside).expect("an empty notification");
    assert!(hook.body.is_empty(), "{hook:?}");
    assert_eq!(hook.header("x-hook-token"), Some("s3cret"));
    crate::hapi::assert_valid(&docs);
    let deadline = Instant::now() + wait;
    loop {
        let (s, read) = fhir(
            &base,
            Some(&token),
            reqwest::Method::GET,
            &format!("/fhir/Subscription/{redirected_id}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{read}");
        if read["status"] == "error" {
            let why = read["error"].as_str().unwrap();
            assert!(why.contains("307") && why.contains("redirect"), "{why}");
            break;
        }
        assert!(Instant::now() < deadline, "still retrying: {read}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let attempts = tokio::task::block_in_place(|| {
        (0..4)
            .filter(|_| redirects.recv_timeout(Duration::from_secs(5)).is_ok())
            .count()
    });
    assert_eq!(attempts, 4, "one attempt and three retries");
    assert!(redirects.try_recv().is_err(), "and no more");

    // The gateway restarts: the subscriptions are still there, and still notify.
    net.net.stop(i, Proc::Gateway, false).unwrap();
    net.net.start(i, Proc::Gateway).unwrap();
    answers(&base).await;
    let token = GatewayClient::new(&base, doc.clone())
        .token()
        .await
        .unwrap();
    let (s, read) = fhir(
        &base,
        Some(&token),
        reqwest::Method::GET,
        &format!("/fhir/Subscription/{audit_id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, read["status"].as_str()),
        (200, Some("active")),
        "{read}"
    );
    cli_access(&net, "hospital-a", &pid, "visit-1");
    let hook = next_hook(&hooks, "/audit", wait, &mut set_aside)
        .expect("a notification after the restart");
    let events = verified_notification(&net, &hook.bundle(), &audit_id);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], format!("{pid}-1"));

    // The patient revokes hospital-d's consent: its physician may be told no more. The next
    // block that names the patient turns both subscriptions off, and nothing reaches the
    // receiver.
    let r = c
        .submit(
            &alice,
            Msg::RevokeConsent(pb::RevokeConsent {
                consent_id: consent_d.clone(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    cli_access(&net, "hospital-a", &pid, "visit-1");
    let deadline = Instant::now() + wait;
    let off = loop {
        let (s, read) = fhir(
            &base,
            Some(&token),
            reqwest::Method::GET,
            &format!("/fhir/Subscription/{audit_id}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{read}");
        if read["status"] == "off" {
            break read;
        }
        assert!(Instant::now() < deadline, "still notifying: {read}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(off["error"].as_str().unwrap().contains("revoked"), "{off}");
    cli_access(&net, "hospital-a", &pid, "visit-1");
    assert!(
        next_hook(&hooks, "/audit", Duration::from_secs(5), &mut set_aside).is_none(),
        "no notification after the revocation"
    );
    assert!(
        set_aside.iter().all(|h| h.path != "/audit"),
        "no notification after the revocation"
    );
    assert!(
        hooks
            .try_iter()
            .chain(set_aside)
            .all(|h| h.path != "/stolen"),
        "no redirect was followed"
    );
    let (s, read) = fhir(
        &base,
        Some(&token),
        reqwest::Method::GET,
        &format!("/fhir/Subscription/{consent_sub}"),
        None,
    )
    .await;
    assert_eq!((s, read["status"].as_str()), (200, Some("off")), "{read}");

    // The subscriber deletes it; it is gone.
    let (s, _) = fhir(
        &base,
        Some(&token),
        reqwest::Method::DELETE,
        &format!("/fhir/Subscription/{audit_id}"),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, oo) = fhir(
        &base,
        Some(&token),
        reqwest::Method::GET,
        &format!("/fhir/Subscription/{audit_id}"),
        None,
    )
    .await;
    assert_eq!(s, 404, "{oo}");
}

//! FHIR R4 at the members' gateways, on a localnet whose nodes run them (as `localnet up` does):
//! a patient grants and revokes consent through `Consent/$prepare` (signing in the test, never
//! at the gateway), a practitioner system's access shows as a proven AuditEvent, a record is read
//! as its FHIR resource under the same consent check as `vault get`, a claim is submitted and its
//! ClaimResponse read back; what the ledger cannot represent gets a 422 naming the element.
//! Everything the gateway emitted is then checked by an independent FHIR R4 validator
//! (`web/tools/validate-fhir.mjs`, FHIR.js with the R4 core profiles).

use std::path::PathBuf;

use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signer, SigningKey};
use medledger_gateway::client::{log_access_tx, now_secs, sign_headers, GatewayClient};
use medledger_tx::pb::{self, tx_body::Msg, CoverageRule, Purpose};
use prost::Message;
use serde_json::{json, Value};

use crate::support::{self, TestNet};

struct Fhir {
    base: String,
    http: reqwest::Client,
    /// The requester's bearer token (every FHIR read names its requester).
    token: String,
    /// Every FHIR document the gateway answered, for the validator.
    emitted: std::sync::Mutex<Vec<(String, Value)>>,
}

impl Fhir {
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.send_as(&self.token, method, path, body).await
    }

    /// [`Fhir::send`] with another requester's token.
    async fn send_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let rb = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        }
        .bearer_auth(token);
        let rb = match body {
            Some(b) => rb
                .header("content-type", "application/fhir+json")
                .body(b.to_string()),
            None => rb,
        };
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = r.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {path}: not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(
            ct.as_deref(),
            Some("application/fhir+json"),
            "{method} {path}"
        );
        eprintln!("{method} {path} -> {status}");
        self.emitted
            .lock()
            .unwrap()
            .push((format!("{method} {path}"), v.clone()));
        (status, v)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    async fn get_as(&self, token: &str, path: &str) -> (u16, Value) {
        self.send_as(token, "GET", path, None).await
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send("POST", path, Some(body)).await
    }

    /// `$prepare`, sign as `key`, post: the whole patient-side flow.
    async fn consent(&self, key: &SigningKey, consent: &Value) -> (u16, Value) {
        let (s, prepared) = self.post("/fhir/Consent/$prepare", consent).await;
        assert_eq!(s, 200, "{prepared}");
        self.post("/fhir/Consent", &sign_prepared(&prepared, key))
            .await
    }
}

/// What `$prepare` answered, signed by `key`: `Parameters {txBody, signature, signer}`.
pub(crate) fn sign_prepared(prepared: &Value, key: &SigningKey) -> Value {
    let param = |n: &str| {
        prepared["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .unwrap()
            .clone()
    };
    let sign_bytes =
        Base64::decode_vec(param("signBytes")["valueBase64Binary"].as_str().unwrap()).unwrap();
    json!({ "resourceType": "Parameters", "parameter": [
        param("txBody"),
        { "name": "signature", "valueBase64Binary": Base64::encode_string(&key.sign(&sign_bytes).to_bytes()) },
        { "name": "signer", "valueString": hex::encode(key.verifying_key().to_bytes()) },
    ]})
}

fn consent_for(patient: &str, grantee: &str, class: &str, purpose: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0" }] }],
        "patient": { "reference": format!("Patient/{patient}") },
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
        "provision": {
            "type": "permit",
            "actor": [{ "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP" }] },
                        "reference": { "reference": format!("Organization/{grantee}") } }],
            "purpose": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": purpose }],
            "class": [{ "system": "http://hl7.org/fhir/resource-types", "code": class }],
        },
    })
}

/// The state value a resource's proof extension carries, after checking its ICS23 proof against
/// the app hash of the verified state in the same `meta` (and that a changed value fails), with
/// that state's height.
fn proven_value(resource: &Value) -> (Vec<u8>, u64) {
    let state = meta_extension(
        resource,
        medledger_query::export::VERIFIED_STATE_EXTENSION_URL,
    );
    let app_hash = hex::decode(part(&state, "appHash")["valueString"].as_str().unwrap()).unwrap();
    let height: u64 = part(&state, "height")["valueString"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    (proven_against(resource, &app_hash), height)
}

/// The parts of the `meta` extension `url` of `resource`.
fn meta_extension(resource: &Value, url: &str) -> Vec<Value> {
    resource["meta"]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == url)
        .unwrap_or_else(|| panic!("no {url} in {resource}"))["extension"]
        .as_array()
        .unwrap()
        .clone()
}

/// The part `name` of an extension's parts.
pub(crate) fn part(parts: &[Value], name: &str) -> Value {
    parts
        .iter()
        .find(|e| e["url"] == name)
        .unwrap_or_else(|| panic!("no {name} in {parts:?}"))
        .clone()
}

/// The state value a resource's proof extension carries, after checking its ICS23 proof against
/// `app_hash` (and that a changed value fails).
pub(crate) fn proven_against(resource: &Value, app_hash: &[u8]) -> Vec<u8> {
    let proof = meta_extension(
        resource,
        "urn:medledger:fhir:StructureDefinition:ics23-proof",
    );
    let key = part(&proof, "key")["valueString"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let b64 = |n: &str| {
        Base64::decode_vec(part(&proof, n)["valueBase64Binary"].as_str().unwrap()).unwrap()
    };
    let value = b64("value");
    let p = ics23::CommitmentProof::decode(b64("proof").as_slice()).unwrap();
    assert_eq!(
        medledger_query::verify(app_hash, &key, Some(&value), &p).unwrap(),
        medledger_query::Proven::Present(value.clone())
    );
    let mut tampered = value.clone();
    tampered[0] ^= 1;
    assert!(medledger_query::verify(app_hash, &key, Some(&tampered), &p).is_err());
    value
}

fn issue_code(v: &Value) -> &str {
    v["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_consent_audit_records_and_claims_at_the_gateway() {
    let net = TestNet::start_with_gateways().await;
    let gw = |i: usize| net.net.spec.nodes[i].gateway_url();
    let c = net.client(0);
    let (hospital, lab, insurer) = (
        net.member_key("hospital-a"),
        net.member_key("lab-b"),
        net.member_key("insurer-c"),
    );
    // hospital-a's EHR, reading at hospital-a's gateway with its admin key's token.
    let f = Fhir {
        base: gw(0),
        http: reqwest::Client::new(),
        token: GatewayClient::new(&gw(0), hospital.clone())
            .token()
            .await
            .expect("a member's key gets a token"),
        emitted: Default::default(),
    };
    let alice = SigningKey::from_bytes(&[91; 32]);
    let pid = medledger_tx::ids::patient_id(&alice.verifying_key().to_bytes());
    net.enrol_patient(0, &alice).await;

    // What the server supports, and only that.
    let (s, cap) = f.get("/fhir/metadata").await;
    assert_eq!(s, 200);
    assert_eq!(cap["resourceType"], "CapabilityStatement");
    assert_eq!(cap["fhirVersion"], "4.0.1");

    // A bare Consent is not a signature: 422, and it says how to sign.
    let grant = consent_for(&pid, "hospital-a", "Observation", "TREAT");
    let (s, oo) = f.post("/fhir/Consent", &grant).await;
    assert_eq!(s, 422, "{oo}");
    assert!(oo["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("$prepare"));
    // What the ledger has no rule for is named, not dropped.
    let mut optout = grant.clone();
    optout["policyRule"]["coding"][0]["code"] = json!("OPTOUT");
    let (s, oo) = f.post("/fhir/Consent/$prepare", &optout).await;
    assert_eq!(s, 422);
    assert_eq!(oo["issue"][0]["expression"][0], "Consent.policyRule");
    // Someone else's signature over the patient's consent does not verify.
    let (s, prepared) = f.post("/fhir/Consent/$prepare", &grant).await;
    assert_eq!(s, 200);
    let body = prepared["parameter"][0].clone();
    let forged = SigningKey::from_bytes(&[13; 32]);
    let (s, oo) = f
        .post(
            "/fhir/Consent",
            &json!({ "resourceType": "Parameters", "parameter": [body,
                { "name": "signature", "valueBase64Binary": Base64::encode_string(&forged.sign(b"x").to_bytes()) },
                { "name": "signer", "valueString": hex::encode(alice.verifying_key().to_bytes()) }]}),
        )
        .await;
    assert_eq!(s, 400, "{oo}");

    // The patient signs; the ledger commits; the answer is the ledger's consent as FHIR.
    let (s, created) = f.consent(&alice, &grant).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["status"], "active");
    let consent_id = created["id"].as_str().unwrap().to_string();
    // Payment consent to the insurer, for the claim below.
    let (s, _) = f
        .consent(&alice, &consent_for(&pid, "insurer-c", "Claim", "HPAYMT"))
        .await;
    assert_eq!(s, 201);

    // hospital-a anchors its visit note, then its system reads it (logs its access): an access
    // to an anchored record is what a claim may cite as treatment evidence. lab-b has no consent.
    let r = c
        .submit(
            &hospital,
            Msg::AnchorRecord(pb::AnchorRecord {
                record_id: "visit-1".into(),
                patient_id: pid.clone(),
                resource_type: "Observation".into(),
                content_hash: vec![9; 32],
                size: 512,
                key_id: "hospital-a-vault-1".into(),
                holders: vec![],
                threshold: 0,
                share_commitments: vec![],
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let r = c
        .submit(&hospital, support::read(&pid, "visit-1"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    net.certified(r.height).await;

    let (s, bundle) = f.get(&format!("/fhir/Consent?patient={pid}")).await;
    assert_eq!(s, 200);
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 2);
    let (s, one) = f.get(&format!("/fhir/Consent/{consent_id}")).await;
    assert_eq!(s, 200);
    assert_eq!(one["provision"]["class"][0]["code"], "Observation");
    let (s, oo) = f.get("/fhir/Consent/c-999").await;
    assert_eq!(s, 404, "{oo}");

    // The access history, every entry with a proof against the Bundle's certified app hash.
    let (s, audit) = f
        .get(&format!("/fhir/AuditEvent?patient=Patient/{pid}"))
        .await;
    assert_eq!(s, 200, "{audit}");
    assert_eq!(audit["total"], 1);
    let verified = &audit["meta"]["extension"][0]["extension"];
    let app_hash = verified
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["url"] == "appHash")
        .unwrap()["valueString"]
        .as_str()
        .unwrap();
    let app_hash = hex::decode(app_hash).unwrap();
    let event = &audit["entry"][0]["resource"];
    assert_eq!(event["entity"][1]["what"]["identifier"]["value"], "visit-1");
    // IHE BALP: a RESTful read, by hospital-a's system (the client agent, at the endpoint it
    // published on chain).
    assert_eq!(
        event["type"]["system"],
        "http://terminology.hl7.org/CodeSystem/audit-event-type"
    );
    assert_eq!(event["type"]["code"], "rest");
    assert_eq!(
        event["subtype"],
        json!([{ "system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read" }])
    );
    let client = event["agent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["type"]["coding"][0]["code"] == "110153")
        .unwrap_or_else(|| panic!("no BALP client agent in {event}"));
    assert_eq!(client["who"]["identifier"]["value"], "hospital-a");
    assert_eq!(client["network"], json!({ "address": gw(0), "type": "5" }));
    let proof = &event["meta"]["extension"][0]["extension"];
    let field = |n: &str| {
        proof
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == n)
            .unwrap()
            .clone()
    };
    let key = field("key")["valueString"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let value = Base64::decode_vec(field("value")["valueBase64Binary"].as_str().unwrap()).unwrap();
    let proof = ics23::CommitmentProof::decode(
        Base64::decode_vec(field("proof")["valueBase64Binary"].as_str().unwrap())
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    assert_eq!(
        medledger_query::verify(&app_hash, &key, Some(&value), &proof).unwrap(),
        medledger_query::Proven::Present(value.clone())
    );
    let mut tampered = value.clone();
    tampered[3] ^= 1;
    assert!(medledger_query::verify(&app_hash, &key, Some(&tampered), &proof).is_err());
    // Date search: today's events, none before 1970-01-02.
    let today = medledger_query::export::utc_date(now_secs());
    let (_, b) = f
        .get(&format!("/fhir/AuditEvent?patient={pid}&date=ge{today}"))
        .await;
    assert_eq!(b["entry"].as_array().map_or(0, Vec::len), 1, "{b}");
    let (_, b) = f
        .get(&format!("/fhir/AuditEvent?patient={pid}&date=lt1970-01-02"))
        .await;
    assert_eq!(b["entry"].as_array().map_or(0, Vec::len), 0, "{b}");
    let (s, one) = f.get(&format!("/fhir/AuditEvent/{pid}-0")).await;
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["entity"][1]["what"]["identifier"]["value"], "visit-1");
    assert_eq!(
        (
            one["type"]["code"].clone(),
            one["subtype"][0]["code"].clone()
        ),
        (json!("rest"), json!("read"))
    );
    // A patient without history: a complete, proven empty answer (no empty FHIR strings).
    let nobody = medledger_tx::ids::patient_id(&[5; 32]);
    // A patient hospital-a has no relation with (never enrolled, no consent, no coverage).
    let (s, oo) = f.get(&format!("/fhir/AuditEvent?patient={nobody}")).await;
    assert_eq!(s, 403, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "forbidden");
    // The pages' RPC pass-through offers the methods they need, nothing else: the node answers
    // `net_info` (its peers' addresses), the gateway does not relay it.
    let direct = reqwest::get(format!("{}/net_info", net.net.spec.nodes[0].rpc_url()))
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 200);
    let r = reqwest::get(format!("{}/rpc/net_info", gw(0)))
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        404,
        "a method outside RPC_METHODS is not relayed"
    );
    let (s, _) = f.get("/fhir/Patient/pt-1").await;
    assert_eq!(
        s, 404,
        "only the vault's record types are read at /fhir/{{type}}/{{id}}"
    );
    // A parameter the server does not support is ignored, and said so in an OperationOutcome
    // entry (R4 search; `Prefer: handling=strict` refuses it: tests/fhir_search.rs).
    let (s, bundle) = f
        .get(&format!("/fhir/AuditEvent?patient={pid}&_sort=date"))
        .await;
    assert_eq!(s, 200);
    let last = bundle["entry"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["search"]["mode"], "outcome", "{bundle}");
    assert_eq!(
        last["resource"]["resourceType"], "OperationOutcome",
        "{bundle}"
    );
    let anonymous = reqwest::get(format!("{}/audit/access.csv?patient={pid}", gw(0)))
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401, "an anonymous export");
    let csv = reqwest::Client::new()
        .get(format!("{}/audit/access.csv?patient={pid}", gw(0)))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains("visit-1"));

    // A record in lab-b's vault, read at lab-b's gateway as its FHIR resource by hospital-a.
    let content = br#"{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%"}}"#;
    GatewayClient::new(&gw(1), lab.clone())
        .put("obs-1", &pid, "Observation", content)
        .await
        .unwrap();
    let read = |path: &'static str, key: SigningKey| {
        let base = gw(1);
        let chain = net.chain_id.clone();
        let pid = pid.clone();
        let c = c.clone();
        async move {
            let seq = c
                .next_sequence(&key.verifying_key().to_bytes())
                .await
                .unwrap();
            let tx = log_access_tx(
                &key,
                &chain,
                seq,
                &pid,
                "obs-1",
                "Observation",
                Purpose::Treat,
            );
            let url = format!("{base}{path}");
            let headers = sign_headers(&key, "GET", &url, b"", now_secs()).unwrap();
            let mut rb = reqwest::Client::new()
                .get(&url)
                .header("medledger-access-tx", Base64::encode_string(&tx));
            for (k, v) in headers {
                rb = rb.header(k, v);
            }
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    };
    let (s, got) = read("/fhir/Observation/obs-1?purpose=TREAT", hospital.clone()).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&got));
    assert_eq!(got, content.to_vec());
    // Two events now: the history comes a page at a time, each page pinned by its links to one
    // certified state, and together they are the whole proven history.
    // (The read committed at lab-b's node; the certified state reaches it a block or two on.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = loop {
        let (s, first) = f
            .get(&format!("/fhir/AuditEvent?patient={pid}&_count=1"))
            .await;
        assert_eq!(s, 200, "{first}");
        if first["total"] == 2 {
            break first;
        }
        assert!(std::time::Instant::now() < deadline, "{first}");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let link = |b: &Value, rel: &str| {
        b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == rel)
            .map(|l| l["url"].as_str().unwrap().to_string())
    };
    assert!(link(&first, "previous").is_none());
    let next = link(&first, "next").expect("a next page");
    let (s, second) = f.get(next.strip_prefix(&gw(0)).unwrap()).await;
    assert_eq!(s, 200, "{second}");
    assert!(link(&second, "next").is_none(), "{second}");
    assert!(link(&second, "previous").is_some());
    let ids: Vec<&str> = [&first, &second]
        .iter()
        .map(|b| b["entry"][0]["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [format!("{pid}-0"), format!("{pid}-1")]);
    assert_eq!(
        first["meta"]["extension"][0], second["meta"]["extension"][0],
        "both pages prove against one certified state"
    );
    for bad in ["_count=0", "_count=1001", "_offset=x"] {
        let (s, oo) = f
            .get(&format!("/fhir/AuditEvent?patient={pid}&{bad}"))
            .await;
        assert_eq!(s, 400, "{bad}: {oo}");
    }
    let r = reqwest::Client::new()
        .get(format!("{}/audit/access.csv?patient={pid}&_count=1", gw(0)))
        .bearer_auth(&f.token)
        .send()
        .await
        .unwrap();
    let links = r.headers()["link"].to_str().unwrap().to_string();
    assert!(links.contains("rel=\"next\""), "{links}");
    assert_eq!(
        r.text().await.unwrap().lines().count(),
        2,
        "a header and one row"
    );
    let (s, got) = read("/fhir/Observation/obs-1?purpose=TREAT", insurer.clone()).await;
    assert_eq!(s, 403, "{}", String::from_utf8_lossy(&got));
    let oo: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(issue_code(&oo), "NO_PERMITTING_CONSENT");
    let (s, _) = read(
        "/fhir/DiagnosticReport/obs-1?purpose=TREAT",
        hospital.clone(),
    )
    .await;
    assert_eq!(s, 400, "the type in the URL must be the anchor's");
    let r = reqwest::get(format!("{}/fhir/Observation/obs-1?purpose=TREAT", gw(1)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "an unsigned read is refused");
    // The refused read's access tx used insurer-c's sequence in a block that lab-b's node (the
    // gateway's) has committed; node 0, which the submits below read sequences from, may be a
    // block behind.
    let lab_b = net.height(1).await;
    net.wait_all(&[0], lab_b).await;

    // A claim, submitted as FHIR by hospital-a's signed request, answered as ClaimResponse.
    for m in [
        Msg::PublishPolicy(pb::PublishPolicy {
            policy_id: "gold".into(),
            rules: vec![CoverageRule {
                service_code: "99213".into(),
                covered: true,
                price_cap: 10_000,
                copay_fixed: 2_000,
                ..Default::default()
            }],
        }),
        Msg::EnrolCoverage(pb::EnrolCoverage {
            patient_id: pid.clone(),
            policy_id: "gold".into(),
            start: 0,
            end: 0,
        }),
    ] {
        let r = c.submit(&insurer, m).await.unwrap();
        assert_eq!(r.code, 0, "{}", r.log);
    }
    let claim = json!({
        "resourceType": "Claim",
        "status": "active",
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional" }] },
        "use": "claim",
        "patient": { "reference": format!("Patient/{pid}") },
        "created": today,
        "insurer": { "reference": "Organization/insurer-c" },
        "provider": { "reference": "Organization/hospital-a" },
        "priority": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal" }] },
        "insurance": [{ "sequence": 1, "focal": true, "coverage": { "reference": "Coverage/gold" } }],
        "supportingInfo": [{ "sequence": 1,
            "category": { "coding": [{ "system": "urn:medledger:claim-info", "code": "access-event" }] },
            "valueReference": { "reference": format!("AuditEvent/{pid}-0") } }],
        "item": [{ "sequence": 1, "servicedDate": today,
            "productOrService": { "coding": [{ "system": "http://www.ama-assn.org/go/cpt", "code": "99213" }] },
            "quantity": { "value": 1 }, "unitPrice": { "value": 120 } }],
        "total": { "value": 120 },
    });
    let body = claim.to_string().into_bytes();
    let (s, answer) = GatewayClient::new(&gw(0), hospital.clone())
        .send_raw("POST", "/fhir/Claim", body.clone(), &[])
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(s, 201, "{answer}");
    f.emitted
        .lock()
        .unwrap()
        .push(("POST /fhir/Claim".into(), answer.clone()));
    assert_eq!(answer["resourceType"], "ClaimResponse");
    // The price cap binds (100.00 of 120.00): not approved automatically, the insurer decides.
    assert_eq!(answer["outcome"], "queued", "{answer}");
    assert_eq!(answer["total"][1]["amount"]["value"], json!(100.0));
    let claim_id = answer["id"].as_str().unwrap().to_string();
    // Nobody else's key submits claims here, and an unsigned request is 401.
    let (s, _) = GatewayClient::new(&gw(0), lab.clone())
        .send_raw("POST", "/fhir/Claim", body.clone(), &[])
        .await
        .unwrap();
    assert_eq!(s, 403);
    let r = reqwest::Client::new()
        .post(format!("{}/fhir/Claim", gw(0)))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let h = net.height(0).await;
    net.certified(h).await;
    let (s, b) = f
        .get(&format!("/fhir/ClaimResponse?request=Claim/{claim_id}"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["total"], 1);
    assert_eq!(
        b["entry"][0]["resource"]["request"]["reference"],
        format!("Claim/{claim_id}")
    );

    // A hospital-a physician bills in their own name: a plain Claim is refused (the gateway
    // never signs for a person), the $prepare'd SubmitClaim signed with their key is relayed, and
    // the ledger names the physician as the submitter.
    let doctor = SigningKey::from_bytes(&[92; 32]);
    let r = c
        .submit(
            &hospital,
            Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: doctor.verifying_key().to_bytes().to_vec(),
                role: pb::PractitionerRole::Physician as i32,
                licence_hash: vec![3; 32],
                valid_until: 0,
                name: String::new(),
                key_proof: medledger_tx::keyproof::prove(
                    &doctor,
                    &net.chain_id,
                    medledger_tx::keyproof::REGISTER_PRACTITIONER,
                    "hospital-a",
                )
                .to_vec(),
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let did = r.attribute("did").unwrap().to_string();
    let r = c
        .submit(&doctor, support::read(&pid, "visit-1"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let visit = r.attribute("index").unwrap().to_string();
    // A care team is the provider's own practitioners: a DID of no practitioner of hospital-a
    // is refused by the ledger (nothing is stored), whoever signs.
    let mut stranger_team = claim.clone();
    stranger_team["careTeam"] = json!([{ "sequence": 1, "provider": { "identifier": {
        "system": "urn:ietf:rfc:3986", "value": medledger_tx::ids::practitioner_did(&[1; 32]) } } }]);
    let (s, oo) = GatewayClient::new(&gw(0), hospital.clone())
        .send_raw(
            "POST",
            "/fhir/Claim",
            stranger_team.to_string().into_bytes(),
            &[],
        )
        .await
        .unwrap();
    let oo: Value = serde_json::from_slice(&oo).unwrap();
    assert_eq!(s, 403, "{oo}");
    assert_eq!(issue_code(&oo), "CARE_TEAM_NOT_OF_PROVIDER", "{oo}");
    // A preauthorization of tomorrow's visit: no evidence yet, recorded PENDING for the insurer.
    let tomorrow = medledger_query::export::utc_date(now_secs() + 86_400);
    let mut preauth = claim.clone();
    preauth["use"] = json!("preauthorization");
    preauth["item"][0]["servicedDate"] = json!(tomorrow);
    if let Some(o) = preauth.as_object_mut() {
        o.remove("supportingInfo");
    }
    let (s, answer) = GatewayClient::new(&gw(0), hospital.clone())
        .send_raw("POST", "/fhir/Claim", preauth.to_string().into_bytes(), &[])
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(s, 201, "{answer}");
    assert_eq!(
        (answer["use"].clone(), answer["outcome"].clone()),
        (json!("preauthorization"), json!("queued")),
        "{answer}"
    );
    f.emitted
        .lock()
        .unwrap()
        .push(("POST /fhir/Claim (preauthorization)".into(), answer.clone()));
    let mut by_doctor = claim.clone();
    by_doctor["supportingInfo"][0]["valueReference"]["reference"] =
        json!(format!("AuditEvent/{pid}-{visit}"));
    // With its diagnoses (ICD-10) and its care team: the physician themself, by DID.
    by_doctor["diagnosis"] = json!([
        { "sequence": 1, "diagnosisCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J45.909" }] } },
        { "sequence": 2, "diagnosisCodeableConcept": { "coding": [{ "system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.65" }] } },
    ]);
    by_doctor["careTeam"] = json!([{ "sequence": 1,
        "provider": { "identifier": { "system": "urn:ietf:rfc:3986", "value": did } } }]);
    by_doctor["item"][0]["diagnosisSequence"] = json!([1, 2]);
    by_doctor["item"][0]["modifier"] =
        json!([{ "coding": [{ "system": "http://www.ama-assn.org/go/cpt", "code": "25" }] }]);
    let doctor_gw = GatewayClient::new(&gw(0), doctor.clone());
    let body = by_doctor.to_string().into_bytes();
    let (s, oo) = doctor_gw
        .send_raw("POST", "/fhir/Claim", body.clone(), &[])
        .await
        .unwrap();
    assert_eq!(s, 422, "{}", String::from_utf8_lossy(&oo));
    let (s, prepared) = doctor_gw
        .send_raw("POST", "/fhir/Claim/$prepare", body, &[])
        .await
        .unwrap();
    let prepared: Value = serde_json::from_slice(&prepared).unwrap();
    assert_eq!(s, 200, "{prepared}");
    let signed = sign_prepared(&prepared, &doctor);
    let (s, answer) = doctor_gw
        .send_raw("POST", "/fhir/Claim", signed.to_string().into_bytes(), &[])
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(s, 201, "{answer}");
    let doctors_claim: pb::Claim = c
        .query_proven(
            &medledger_tx::keys::claim(answer["id"].as_str().unwrap()),
            0,
        )
        .await
        .unwrap()
        .value
        .map(|v| pb::Claim::decode(v.as_slice()).unwrap())
        .unwrap();
    assert_eq!(
        doctors_claim.submitted_by, did,
        "the chain names the physician"
    );
    assert_eq!(doctors_claim.diagnoses, ["J45.909", "E11.65"]);
    assert_eq!(
        doctors_claim.care_team.as_slice(),
        std::slice::from_ref(&did)
    );
    let doctors_claim_id = doctors_claim.id.clone();

    // Claim/$submit (R4's operation) with what a claim carries as sent: the patient as payee,
    // a procedure (CPT, on the day of service) and two insurances, the focal one adjudicated and
    // the other recorded as other coverage; read back proven as sent.
    let r = c
        .submit(&hospital, support::read(&pid, "visit-1"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let visit = r.attribute("index").unwrap().to_string();
    let mut as_sent = claim.clone();
    as_sent["supportingInfo"][0]["valueReference"]["reference"] =
        json!(format!("AuditEvent/{pid}-{visit}"));
    // A real second visit that day: modifier 76, so no duplicate of the claims above.
    as_sent["item"][0]["modifier"] =
        json!([{ "coding": [{ "system": "http://www.ama-assn.org/go/cpt", "code": "76" }] }]);
    as_sent["payee"] = json!({
        "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/payeetype", "code": "subscriber" }] },
        "party": { "reference": format!("Patient/{pid}") } });
    as_sent["procedure"] = json!([{ "sequence": 1, "date": today,
        "procedureCodeableConcept": { "coding": [{ "system": "http://www.ama-assn.org/go/cpt", "code": "99213" }] } }]);
    as_sent["insurance"] = json!([
        { "sequence": 1, "focal": true, "coverage": { "reference": "Coverage/gold" } },
        { "sequence": 2, "focal": false, "coverage": { "identifier": { "value": "silver",
            "assigner": { "reference": "Organization/insurer-c" } } } },
    ]);
    // Another coverage must name a registered insurer: hospital-d is none (nothing stored).
    let mut not_insurer = as_sent.clone();
    not_insurer["insurance"][1]["coverage"]["identifier"]["assigner"]["reference"] =
        json!("Organization/hospital-d");
    let (s, oo) = GatewayClient::new(&gw(0), hospital.clone())
        .send_raw(
            "POST",
            "/fhir/Claim/$submit",
            not_insurer.to_string().into_bytes(),
            &[],
        )
        .await
        .unwrap();
    let oo: Value = serde_json::from_slice(&oo).unwrap();
    assert_ne!(s, 201, "{oo}");
    assert_eq!(issue_code(&oo), "OTHER_INSURER_UNKNOWN", "{oo}");
    // A second focal insurance is refused by the mapping, naming the element.
    let mut two_focal = as_sent.clone();
    two_focal["insurance"][1] =
        json!({ "sequence": 2, "focal": true, "coverage": { "reference": "Coverage/silver" } });
    let (s, oo) = GatewayClient::new(&gw(0), hospital.clone())
        .send_raw(
            "POST",
            "/fhir/Claim/$submit",
            two_focal.to_string().into_bytes(),
            &[],
        )
        .await
        .unwrap();
    let oo: Value = serde_json::from_slice(&oo).unwrap();
    assert_eq!(s, 422, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "business-rule", "{oo}");
    assert_eq!(
        oo["issue"][0]["expression"][0], "Claim.insurance[1].focal",
        "{oo}"
    );
    let (s, answer) = GatewayClient::new(&gw(0), hospital.clone())
        .send_raw(
            "POST",
            "/fhir/Claim/$submit",
            as_sent.to_string().into_bytes(),
            &[],
        )
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&answer).unwrap();
    assert_eq!(s, 201, "{answer}");
    assert_eq!(answer["resourceType"], "ClaimResponse");
    assert_eq!(answer["payeeType"]["coding"][0]["code"], "subscriber");
    f.emitted
        .lock()
        .unwrap()
        .push(("POST /fhir/Claim/$submit".into(), answer.clone()));
    let as_sent_id = answer["id"].as_str().unwrap().to_string();
    let recorded: pb::Claim = c
        .query_proven(&medledger_tx::keys::claim(&as_sent_id), 0)
        .await
        .unwrap()
        .value
        .map(|v| pb::Claim::decode(v.as_slice()).unwrap())
        .unwrap();
    assert_eq!(recorded.payee, pb::Payee::Subscriber as i32);
    assert_eq!(
        recorded.procedures,
        [pb::ClaimProcedure {
            system: pb::ProcedureSystem::Cpt as i32,
            code: "99213".into()
        }]
    );
    assert_eq!(
        recorded.other_coverage,
        [pb::OtherCoverage {
            insurer: "insurer-c".into(),
            policy_id: "silver".into()
        }]
    );
    assert_eq!(recorded.policy_id, "gold");

    // The patient revokes through FHIR: an inactive Consent with the id.
    let mut revoke = created.clone();
    revoke["status"] = json!("inactive");
    let (s, revoked) = f.consent(&alice, &revoke).await;
    assert_eq!(s, 200, "{revoked}");
    assert_eq!(revoked["status"], "inactive");
    let (s, _) = read("/fhir/Observation/obs-1?purpose=TREAT", hospital.clone()).await;
    assert_eq!(s, 403, "no read after the revocation");

    // The claim read as the FHIR Claim the ledger records, verified against a certified state:
    // by its provider, its insurer and its patient; another member gets 403, an unknown id 404.
    let h = net.height(0).await;
    net.certified(h).await;
    let token_of = |key: SigningKey| {
        let base = gw(0);
        async move { GatewayClient::new(&base, key).token().await.unwrap() }
    };
    let insurer_token = token_of(insurer.clone()).await;
    let patient_token = token_of(alice.clone()).await;
    let lab_token = token_of(lab.clone()).await;
    for token in [&f.token, &insurer_token, &patient_token] {
        let (s, cl) = f.get_as(token, &format!("/fhir/Claim/{claim_id}")).await;
        assert_eq!(s, 200, "{cl}");
        assert_eq!(cl["resourceType"], "Claim");
        assert_eq!(cl["id"], claim_id.as_str());
        assert_eq!(cl["patient"]["reference"], format!("Patient/{pid}"));
        assert_eq!(cl["provider"]["reference"], "Organization/hospital-a");
        assert_eq!(cl["insurer"]["reference"], "Organization/insurer-c");
        assert_eq!(cl["insurance"][0]["coverage"]["reference"], "Coverage/gold");
        assert_eq!(
            cl["item"][0]["productOrService"]["coding"][0]["code"],
            "99213"
        );
        assert_eq!(cl["total"]["value"], json!(120.0));
        assert_eq!(
            cl["supportingInfo"][0]["valueReference"]["reference"],
            format!("AuditEvent/{pid}-0")
        );
        assert_eq!(
            cl["meta"]["extension"][0]["url"],
            medledger_query::export::VERIFIED_STATE_EXTENSION_URL
        );
    }
    // The claim sent through $submit reads back, proven, as it was sent.
    let (s, cl) = f.get(&format!("/fhir/Claim/{as_sent_id}")).await;
    assert_eq!(s, 200, "{cl}");
    assert_eq!(
        cl["meta"]["extension"][0]["url"],
        medledger_query::export::VERIFIED_STATE_EXTENSION_URL
    );
    assert_eq!(cl["payee"]["type"]["coding"][0]["code"], "subscriber");
    assert_eq!(
        cl["procedure"][0]["procedureCodeableConcept"]["coding"][0],
        json!({ "system": "http://www.ama-assn.org/go/cpt", "code": "99213" })
    );
    assert_eq!(cl["procedure"][0]["date"], today.as_str());
    assert_eq!(
        (
            cl["insurance"][0]["focal"].clone(),
            cl["insurance"][1]["focal"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(
        cl["insurance"][1]["coverage"]["identifier"],
        json!({ "value": "silver", "assigner": { "reference": "Organization/insurer-c" } })
    );
    f.emitted
        .lock()
        .unwrap()
        .push(("GET /fhir/Claim (as sent)".into(), cl.clone()));
    // The physician's claim reads back with its diagnoses and care team.
    let (s, cl) = f.get(&format!("/fhir/Claim/{doctors_claim_id}")).await;
    assert_eq!(s, 200, "{cl}");
    assert_eq!(
        cl["diagnosis"][1]["diagnosisCodeableConcept"]["coding"][0]["code"],
        "E11.65"
    );
    assert_eq!(
        cl["careTeam"][0]["provider"]["identifier"]["value"],
        did.as_str()
    );
    let (s, oo) = f
        .get_as(&lab_token, &format!("/fhir/Claim/{claim_id}"))
        .await;
    assert_eq!(s, 403, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "forbidden");
    let (s, oo) = f.get("/fhir/Claim/cl-999999").await;
    assert_eq!(s, 404, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "not-found");

    // The revoked consent's history: the revocation and the grant, newest first, each read at
    // its own height with a proof against that height's certified app hash.
    let granted_at = created["meta"]["versionId"].as_str().unwrap().to_string();
    let revoked_at = revoked["meta"]["versionId"].as_str().unwrap().to_string();
    let (s, hist) = f.get(&format!("/fhir/Consent/{consent_id}/_history")).await;
    assert_eq!(s, 200, "{hist}");
    assert_eq!(hist["type"], "history");
    assert_eq!(hist["total"], 2, "{hist}");
    let entries = hist["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{hist}");
    for (e, (status, version)) in entries
        .iter()
        .zip([("inactive", &revoked_at), ("active", &granted_at)])
    {
        let r = &e["resource"];
        assert_eq!(r["id"], consent_id.as_str());
        assert_eq!(r["status"], status, "{e}");
        assert_eq!(r["meta"]["versionId"], version.as_str());
        assert_eq!(e["response"]["etag"], format!("W/\"{version}\""));
        let (value, height) = proven_value(r);
        assert_eq!(height.to_string(), *version, "read at its own height");
        let c = pb::Consent::decode(value.as_slice()).unwrap();
        assert_eq!(c.id, consent_id);
        assert_eq!(c.revoked_height != 0, status == "inactive", "{c:?}");
    }
    let (s, v1) = f
        .get(&format!("/fhir/Consent/{consent_id}/_history/{granted_at}"))
        .await;
    assert_eq!(s, 200, "{v1}");
    assert_eq!(v1["status"], "active");
    assert_eq!(proven_value(&v1).1.to_string(), granted_at);
    let (s, oo) = f
        .get(&format!("/fhir/Consent/{consent_id}/_history/1"))
        .await;
    assert_eq!(s, 404, "no such version: {oo}");
    let (s, oo) = f
        .get_as(&lab_token, &format!("/fhir/Consent/{consent_id}/_history"))
        .await;
    assert_eq!(s, 403, "{oo}");
    let (s, _) = f.get("/fhir/Consent/c-999/_history").await;
    assert_eq!(s, 404);
    let (s, cap) = f.get("/fhir/metadata").await;
    assert_eq!(s, 200);
    let interactions = |ty: &str| -> Vec<String> {
        cap["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == ty)
            .unwrap()["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(interactions("Claim").contains(&"read".to_string()));
    for i in ["read", "vread", "history-instance"] {
        assert!(interactions("Consent").contains(&i.to_string()), "{i}");
    }

    // Metrics: the gateway's requests by route and status, the node's ABCI latency and txs by
    // code, read back with a Prometheus text parser.
    let scrape = |url: String| async move {
        let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .unwrap_or_else(|e| panic!("{url}: not Prometheus text: {e}"))
    };
    let value = |s: &prometheus_parse::Scrape, name: &str, label: (&str, &str)| -> f64 {
        s.samples
            .iter()
            .filter(|x| x.metric == name && x.labels.get(label.0) == Some(label.1))
            .map(|x| match x.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let gw_metrics = scrape(format!("{}/metrics", gw(0))).await;
    assert!(
        value(
            &gw_metrics,
            "medledger_gateway_requests_total",
            ("status", "201")
        ) >= 2.0,
        "the consents and the claim created here are counted"
    );
    assert!(
        value(
            &gw_metrics,
            "medledger_gateway_requests_total",
            ("route", "/fhir/Consent")
        ) >= 1.0
    );
    let status = net.net.status().await;
    let app_metrics = scrape(status[0].metrics.clone().expect("the app serves metrics")).await;
    assert!(value(&app_metrics, "medledger_txs_total", ("code", "OK")) >= 5.0);
    assert!(
        app_metrics.samples.iter().any(|x| x.metric
            == "medledger_abci_request_duration_seconds_count"
            && x.labels.get("method") == Some("finalize_block")),
        "ABCI latency per method"
    );
    let comet = scrape(status[0].cometbft_metrics.clone()).await;
    assert!(
        comet
            .samples
            .iter()
            .any(|x| x.metric == "cometbft_consensus_height"),
        "CometBFT's own metrics are on"
    );
    let signers = app_metrics
        .samples
        .iter()
        .find(|x| x.metric == "medledger_certificate_signers")
        .map(|x| match x.value {
            prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        });
    assert_eq!(signers, Some(4.0), "all four validators sign checkpoints");
    // The store: its size per column family, its reads by where they were answered, the tree
    // nodes each block wrote, and the pruner's window (nothing pruned on a young chain).
    assert!(value(&app_metrics, "medledger_store_bytes", ("cf", "nodes")) > 0.0);
    assert!(
        value(
            &app_metrics,
            "medledger_store_node_reads_total",
            ("from", "top")
        ) + value(
            &app_metrics,
            "medledger_store_node_reads_total",
            ("from", "disk")
        ) > 0.0
    );
    assert!(app_metrics
        .samples
        .iter()
        .any(|x| x.metric == "medledger_store_nodes_written_count"));
    assert!(app_metrics
        .samples
        .iter()
        .any(|x| x.metric == "medledger_prune_earliest_height"));
    // The shipped Grafana dashboard charts only series these three endpoints really serve.
    let served: std::collections::BTreeSet<String> = [&gw_metrics, &app_metrics, &comet]
        .iter()
        .flat_map(|s| s.samples.iter())
        .flat_map(|x| {
            let histogram = matches!(
                x.value,
                prometheus_parse::Value::Histogram(_) | prometheus_parse::Value::Summary(_)
            );
            let mut names = vec![x.metric.clone()];
            if histogram {
                names.extend(["_bucket", "_sum", "_count"].map(|s| format!("{}{s}", x.metric)));
            }
            names
        })
        .collect();
    let charted = dashboard_series();
    assert!(charted.len() >= 20, "the dashboard charts {charted:?}");
    let missing: Vec<&String> = charted.iter().filter(|m| !served.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "localnet/grafana/medledger.json charts series no endpoint serves: {missing:?}"
    );

    // An independent validator (FHIR.js, R4 core profiles) accepts everything emitted.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (what, v)) in f.emitted.lock().unwrap().iter().enumerate() {
        // Parameters of $prepare are FHIR too; all of it is validated.
        let p = dir.path().join(format!("{i:02}.json"));
        std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
        eprintln!("{} = {what}", p.display());
        files.push(p);
    }
    let out = std::process::Command::new("node")
        .arg(repo_root().join("web/tools/validate-fhir.mjs"))
        .args(&files)
        .output()
        .expect("node runs the FHIR validator (scripts/deps.sh installs it)");
    assert!(
        out.status.success(),
        "the FHIR validator refused what the gateway emitted:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // HL7's own validator (HAPI FHIR, stricter than FHIR.js: it refuses impossible dates and
    // relative references without fullUrl) finds no error in the same documents, a record the
    // gateway released, nor the CLI's FHIR export of the patient's access history.
    let mut docs = f.emitted.lock().unwrap().clone();
    docs.push((
        "GET /fhir/Observation/obs-1".into(),
        serde_json::from_slice(content).unwrap(),
    ));
    let export = crate::hapi::cli_fhir_export(net.home(), &net.net.spec.nodes[0].rpc_url(), &pid);
    docs.push(("medledger verify access --export fhir".into(), export));
    crate::hapi::assert_valid(&docs);
}

/// Every `medledger_…` and `cometbft_…` series named in a PromQL expression of the Grafana
/// dashboard (`localnet/grafana/medledger.json`).
fn dashboard_series() -> std::collections::BTreeSet<String> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../localnet/grafana/medledger.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query", serde_json::Value::String(s)) => out.push(s.clone()),
                        ("query", serde_json::Value::Object(q)) => {
                            if let Some(serde_json::Value::String(s)) = q.get("query") {
                                out.push(s.clone());
                            }
                        }
                        _ => exprs(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    exprs(&dashboard, &mut all);
    let mut names = std::collections::BTreeSet::new();
    for e in &all {
        for word in e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("medledger_") || word.starts_with("cometbft_") {
                names.insert(word.to_string());
            }
        }
    }
    names
}

//! FHIR search and paging as R4 has them, and the HTTP around the FHIR routes, at a member's
//! gateway on a localnet: a patient's AuditEvents are paged two at a time, every page pinned by
//! its links to one certified height, so that an access committed between two pages changes
//! none of them; an unknown parameter is ignored and reported in an OperationOutcome entry, and
//! refused under `Prefer: handling=strict`; `_summary=count` answers the total; `proof=digest`
//! pages verify the complete history with one proof; a repeated
//! `patient` is refused; XML is 406; unknown routes and methods answer OperationOutcomes; a
//! browser's CORS preflight is answered while authentication still applies; consents page and
//! carry their version. Everything collected goes through HAPI's FHIR validator.

use base64ct::{Base64, Encoding};
use ed25519_dalek::SigningKey;
use medledger_gateway::client::GatewayClient;
use medledger_query::history::{verify_access_digest, ProvenRead};
use medledger_tx::pb::{self, tx_body::Msg};
use prost::Message;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::fhir::part;
use crate::support::{self, TestNet};

/// A FHIR client of one gateway with a bearer token; it keeps every FHIR document answered.
struct Client {
    base: String,
    http: reqwest::Client,
    token: String,
    docs: Vec<(String, Value)>,
}

impl Client {
    /// `method path` with `headers` and the token: the status, the headers and the JSON body
    /// (which must be FHIR JSON).
    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, Value) {
        let what = format!("{method} {path}");
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        let (status, h) = (r.status().as_u16(), r.headers().clone());
        let body = r.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            panic!(
                "{what} -> {status}: not JSON: {}",
                String::from_utf8_lossy(&body)
            )
        });
        assert_eq!(h["content-type"], "application/fhir+json", "{what}");
        eprintln!("{what} -> {status}");
        self.docs.push((format!("{what} -> {status}"), v.clone()));
        (status, h, v)
    }

    async fn get(&mut self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.send(reqwest::Method::GET, path, &[]).await;
        (s, v)
    }

    /// Follows a link of a Bundle this gateway answered.
    async fn follow(&mut self, url: &str) -> Value {
        let path = url.strip_prefix(&self.base).unwrap().to_string();
        let (s, b) = self.get(&path).await;
        assert_eq!(s, 200, "{url}: {b}");
        assert_eq!(
            link(&b, "self").as_deref(),
            Some(url),
            "self is the page asked for"
        );
        b
    }
}

fn link(b: &Value, relation: &str) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

/// The entries of a Bundle with `search.mode` `mode`.
fn entries<'a>(b: &'a Value, mode: &str) -> Vec<&'a Value> {
    b["entry"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["search"]["mode"] == mode).collect())
        .unwrap_or_default()
}

fn ids(b: &Value) -> Vec<String> {
    entries(b, "match")
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// The Bundle's verified state (chain, height, app hash, …).
fn verified_state(b: &Value) -> &Value {
    &b["meta"]["extension"][0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_page_at_one_height_and_fhir_answers_as_r4_says() {
    let net = TestNet::start_with_gateways().await;
    let c = net.client(0);
    let hospital = net.member_key("hospital-a");
    let base = net.net.spec.nodes[0].gateway_url();
    let mut f = Client {
        base: base.clone(),
        http: reqwest::Client::new(),
        token: GatewayClient::new(&base, hospital.clone())
            .token()
            .await
            .unwrap(),
        docs: Vec::new(),
    };

    // A patient with two consents to hospital-a and five of its accesses to one record.
    let alice = SigningKey::from_bytes(&[94; 32]);
    let pid = medledger_tx::ids::patient_id(&alice.verifying_key().to_bytes());
    net.enrol_patient(0, &alice).await;
    for _ in 0..2 {
        let r = c
            .submit(&alice, support::grant("hospital-a"))
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{}", r.log);
    }
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
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let read = support::read(&pid, "visit-1");
    let mut last = 0;
    for _ in 0..5 {
        let r = c.submit(&hospital, read.clone()).await.unwrap();
        assert_eq!(r.code, 0, "{}", r.log);
        last = r.height;
    }
    net.certified(last).await;

    // Page one of three: two events, the proven total, self/first/next, no previous.
    let search = format!("/fhir/AuditEvent?patient={pid}&_count=2");
    let (s, first) = f.get(&search).await;
    assert_eq!(s, 200, "{first}");
    assert_eq!(first["total"], 5);
    assert_eq!(ids(&first), [format!("{pid}-0"), format!("{pid}-1")]);
    assert!(link(&first, "self").is_some() && link(&first, "first").is_some());
    assert!(link(&first, "previous").is_none());
    let pinned = first["meta"]["extension"][0].clone();
    // A sixth access commits and is certified before the next pages are read: they still read
    // the state the first page was read at (its height is in every link), so the three pages
    // are exactly the five events of that state, each once.
    let r = c.submit(&hospital, read.clone()).await.unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    net.certified(r.height).await;
    let second = f
        .follow(&link(&first, "next").expect("a second page"))
        .await;
    assert_eq!(ids(&second), [format!("{pid}-2"), format!("{pid}-3")]);
    assert_eq!(second["total"], 5, "the total of the pinned state");
    assert_eq!(link(&second, "previous"), link(&first, "self"));
    let third = f
        .follow(&link(&second, "next").expect("a third page"))
        .await;
    assert_eq!(ids(&third), [format!("{pid}-4")]);
    assert!(link(&third, "next").is_none(), "{third}");
    for page in [&second, &third] {
        assert_eq!(
            verified_state(page),
            &pinned,
            "one certified state for all pages"
        );
    }
    // A new search reads the new state.
    let (_, now) = f.get(&search).await;
    assert_eq!(now["total"], 6);
    assert_ne!(verified_state(&now), &pinned);

    // `proof=digest` (issue 28 point 4): every page carries one proof of the history's digest,
    // each entry its value only; the pages together verify the complete history against the
    // certified app hash with that one proof, and an altered value does not.
    let (s, d1) = f
        .get(&format!(
            "/fhir/AuditEvent?patient={pid}&proof=digest&_count=4"
        ))
        .await;
    assert_eq!(s, 200, "{d1}");
    let d2 = f
        .follow(&link(&d1, "next").expect("a second digest page"))
        .await;
    assert!(link(&d2, "next").is_none(), "{d2}");
    assert!(link(&d2, "self").unwrap().contains("proof=digest"));
    assert_eq!(verified_state(&d2), verified_state(&d1));
    let app_hash = hex::decode(
        part(
            verified_state(&d1)["extension"].as_array().unwrap(),
            "appHash",
        )["valueString"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let proof_of = |ext: &Value| -> Option<ProvenRead> {
        if ext["url"] != "urn:medledger:fhir:StructureDefinition:ics23-proof" {
            return None;
        }
        let parts = ext["extension"].as_array()?;
        let b64 = |n: &str| {
            parts
                .iter()
                .find(|p| p["url"] == n)
                .map(|p| Base64::decode_vec(p["valueBase64Binary"].as_str().unwrap()).unwrap())
        };
        Some(ProvenRead {
            key: part(parts, "key")["valueString"]
                .as_str()?
                .as_bytes()
                .to_vec(),
            value: b64("value"),
            proof: ics23::CommitmentProof::decode(b64("proof")?.as_slice()).unwrap(),
        })
    };
    let digest = d1["meta"]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(proof_of)
        .find(|r| r.key.ends_with(b"/digest"))
        .expect("the digest's proof on the Bundle");
    let mut values = Vec::new();
    for page in [&d1, &d2] {
        for e in entries(page, "match") {
            let ext = &e["resource"]["meta"]["extension"][0];
            assert!(
                proof_of(ext).is_none(),
                "an entry with its own proof: {ext}"
            );
            let value = part(ext["extension"].as_array().unwrap(), "value");
            values.push(Base64::decode_vec(value["valueBase64Binary"].as_str().unwrap()).unwrap());
        }
    }
    let events = verify_access_digest(&app_hash, &pid, &digest, &values, &[]).unwrap();
    assert_eq!(events.len(), 6);
    let mut altered = values.clone();
    altered[3][0] ^= 1;
    assert!(verify_access_digest(&app_hash, &pid, &digest, &altered, &[]).is_err());
    assert!(verify_access_digest(&app_hash, &pid, &digest, &values[1..], &[]).is_err());
    // A digest proves the whole history, a date search a part of it: refused, naming `proof`.
    let (s, oo) = f
        .get(&format!(
            "/fhir/AuditEvent?patient={pid}&proof=digest&date=ge2020"
        ))
        .await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(oo["issue"][0]["expression"][0], "proof");

    // `_summary=count`: the total, no events.
    let (s, count) = f
        .get(&format!("/fhir/AuditEvent?patient={pid}&_summary=count"))
        .await;
    assert_eq!(s, 200, "{count}");
    assert_eq!(count["total"], 6);
    assert!(count.get("entry").is_none(), "{count}");
    assert!(link(&count, "self").unwrap().contains("_summary=count"));

    // Unknown parameters are ignored and named in an OperationOutcome entry; the self link is
    // the search as understood, without them.
    let (s, lenient) = f.get(&format!("{search}&_sort=-date&_elements=id")).await;
    assert_eq!(s, 200, "{lenient}");
    assert_eq!(ids(&lenient).len(), 2);
    let outcome = entries(&lenient, "outcome");
    assert_eq!(outcome.len(), 1, "{lenient}");
    let issues = outcome[0]["resource"]["issue"].as_array().unwrap();
    let named: Vec<&str> = issues
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap())
        .collect();
    assert_eq!(named, ["_sort", "_elements"]);
    assert!(!link(&lenient, "self").unwrap().contains("_sort"));
    // … and refused under `Prefer: handling=strict`.
    let (s, _, oo) = f
        .send(
            reqwest::Method::GET,
            &format!("{search}&_sort=-date"),
            &[("prefer", "handling=strict")],
        )
        .await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "not-supported");
    assert_eq!(oo["issue"][0]["expression"][0], "_sort");

    // One patient per search.
    let (s, oo) = f
        .get(&format!(
            "/fhir/AuditEvent?patient={pid}&patient=pt-someone-else"
        ))
        .await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(oo["issue"][0]["expression"][0], "patient");

    // JSON only: `_format=json` is fine, XML is 406 either way it is asked.
    let (s, _) = f.get(&format!("{search}&_format=json")).await;
    assert_eq!(s, 200);
    let (s, oo) = f.get(&format!("{search}&_format=xml")).await;
    assert_eq!(s, 406, "{oo}");
    let (s, _, oo) = f
        .send(
            reqwest::Method::GET,
            &search,
            &[("accept", "application/fhir+xml")],
        )
        .await;
    assert_eq!(s, 406, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");

    // Consents page too, and carry their version: the height that last changed them.
    let (s, consents) = f
        .get(&format!("/fhir/Consent?patient={pid}&_count=1"))
        .await;
    assert_eq!(s, 200, "{consents}");
    assert_eq!(consents["total"], 2);
    let next = f
        .follow(&link(&consents, "next").expect("a second consent page"))
        .await;
    assert!(link(&next, "next").is_none());
    let id = ids(&next)[0].clone();
    let version = entries(&next, "match")[0]["resource"]["meta"]["versionId"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, h, consent) = f
        .send(reqwest::Method::GET, &format!("/fhir/Consent/{id}"), &[])
        .await;
    assert_eq!(s, 200, "{consent}");
    assert_eq!(consent["meta"]["versionId"], version.as_str());
    assert_eq!(h["etag"], format!("W/\"{version}\"").as_str());

    // Every FHIR refusal is an OperationOutcome: an unknown route, an unknown method.
    let (s, oo) = f.get("/fhir/Nothing").await;
    assert_eq!(s, 404, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "not-found");
    let (s, h, oo) = f.send(reqwest::Method::DELETE, &search, &[]).await;
    assert_eq!(s, 405, "{oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(h["allow"].to_str().unwrap().contains("GET"), "{h:?}");

    // What the CapabilityStatement declares, down to $prepare's definition.
    let (s, cap) = f.get("/fhir/metadata").await;
    assert_eq!(s, 200);
    let consent_res = cap["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Consent")
        .unwrap()
        .clone();
    let definition = consent_res["operation"][0]["definition"].as_str().unwrap();
    let (s, op) = f.get(definition.strip_prefix(&base).unwrap()).await;
    assert_eq!(s, 200, "{op}");
    assert_eq!(op["resourceType"], "OperationDefinition");
    assert_eq!(op["code"], "prepare");

    // A browser app: its preflight is answered, then the search is readable cross-origin, while
    // authentication still applies (no token: 401, readable too).
    let origin = "https://ehr-app.example";
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}{search}"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization, prefer")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("prefer"),
        "{allowed}"
    );
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let (s, h, _) = f
        .send(reqwest::Method::GET, &search, &[("origin", origin)])
        .await;
    assert_eq!(s, 200);
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("ETag"));
    let r = reqwest::Client::new()
        .get(format!("{base}{search}"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        401,
        "CORS lets nobody past authentication"
    );
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // HL7's validator (HAPI) finds no error in anything answered.
    crate::hapi::assert_valid(&f.docs);
}

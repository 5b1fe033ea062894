//! Revoking a consent the FHIR way, at a member's gateway on a localnet: `PUT Consent/{id}` of
//! the Consent as read with `status: inactive` and `If-Match` naming the version read. The
//! gateway never signs for a patient, so that PUT answers 202 with the RevokeConsent to sign;
//! the patient's signed Parameters, PUT to the same URL, revoke it (200, the inactive Consent,
//! a new ETag). A PUT without If-Match is 428, a stale one 412, one that changes anything but
//! the status 422 naming each element, a signature by anyone but the patient changes nothing,
//! and the signed revocation of one consent cannot be PUT to another. The CapabilityStatement
//! says `update` and `versioned-update`; HAPI's validator finds no error in what was answered.

use std::time::{Duration, Instant};

use medledger_gateway::client::GatewayClient;
use serde_json::{json, Value};

use crate::fhir::sign_prepared;
use crate::support::{self, TestNet};

/// A FHIR client of one gateway with a bearer token; it keeps every FHIR document answered.
struct Client {
    base: String,
    http: reqwest::Client,
    token: String,
    docs: Vec<(String, Value)>,
}

impl Client {
    /// `method path` with `If-Match` (when given) and a JSON body: the status, the ETag and
    /// the FHIR JSON answer.
    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        if_match: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Option<String>, Value) {
        let what = format!("{method} {path}");
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(m) = if_match {
            rb = rb.header("if-match", m);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/fhir+json")
                .body(b.to_string());
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            r.headers()["content-type"],
            "application/fhir+json",
            "{what}"
        );
        let bytes = r.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{what} -> {status}: not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        eprintln!("{what} -> {status}");
        self.docs.push((format!("{what} -> {status}"), v.clone()));
        (status, etag, v)
    }

    async fn put(&mut self, path: &str, if_match: Option<&str>, body: &Value) -> (u16, Value) {
        let (s, _, v) = self
            .send(reqwest::Method::PUT, path, if_match, Some(body))
            .await;
        (s, v)
    }

    /// `GET Consent/{id}` once it is certified: the Consent and its ETag.
    async fn read_consent(&mut self, id: &str) -> (Value, String) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (s, etag, v) = self
                .send(
                    reqwest::Method::GET,
                    &format!("/fhir/Consent/{id}"),
                    None,
                    None,
                )
                .await;
            if s == 200 {
                return (v, etag.expect("an ETag"));
            }
            assert_eq!(s, 404, "{v}");
            assert!(Instant::now() < deadline, "consent {id} is never certified");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The parameter `name` of a Parameters resource.
fn param<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no parameter {name} in {p}"))
}

/// The `expression`s of an OperationOutcome's issues.
fn expressions(oo: &Value) -> Vec<String> {
    oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["expression"][0].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_is_revoked_by_put_with_if_match_the_patient_signing() {
    let net = TestNet::start_with_gateways().await;
    let base = net.net.spec.nodes[0].gateway_url();
    let hospital = net.member_key("hospital-a");
    let mut f = Client {
        base: base.clone(),
        http: reqwest::Client::new(),
        token: GatewayClient::new(&base, hospital.clone())
            .token()
            .await
            .unwrap(),
        docs: Vec::new(),
    };
    // A patient with two consents to hospital-a.
    let patient = net.consenting_patient(96, "hospital-a").await;
    let r = net
        .client(0)
        .submit(&patient.key, support::grant("hospital-a"))
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{}", r.log);
    let other_id = r.attribute("consent_id").unwrap().to_string();
    let id = patient.consent_id.clone();
    let path = format!("/fhir/Consent/{id}");
    let (read, etag) = f.read_consent(&id).await;
    let (_, other_etag) = f.read_consent(&other_id).await;
    assert_eq!(read["status"], "active");
    assert_eq!(
        etag,
        format!("W/\"{}\"", read["meta"]["versionId"].as_str().unwrap())
    );
    let mut inactive = read.clone();
    inactive["status"] = json!("inactive");

    // Without If-Match: 428, naming the header; with a version that is not the current one: 412.
    let (s, oo) = f.put(&path, None, &inactive).await;
    assert_eq!(s, 428, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "required");
    assert_eq!(expressions(&oo), ["If-Match"]);
    let (s, oo) = f.put(&path, Some("W/\"1\""), &inactive).await;
    assert_eq!(s, 412, "{oo}");
    assert_eq!(expressions(&oo), ["If-Match"]);

    // Anything but the status changed: 422, every element named at once; nothing is prepared.
    let mut changed = inactive.clone();
    changed["provision"]["class"][0]["code"] = json!("Condition");
    changed["provision"]["purpose"][0]["code"] = json!("HPAYMT");
    changed["identifier"] = json!([{ "system": "urn:example", "value": "x-1" }]);
    let (s, oo) = f.put(&path, Some(&etag), &changed).await;
    assert_eq!(s, 422, "{oo}");
    assert_eq!(
        expressions(&oo),
        [
            "Consent.identifier",
            "Consent.provision.class[0].code",
            "Consent.provision.purpose[0].code",
        ]
    );
    assert!(oo["issue"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["code"] == "business-rule" && i["severity"] == "error"));
    // An id other than the URL's: 400.
    let mut elsewhere = inactive.clone();
    elsewhere["id"] = json!(other_id);
    let (s, oo) = f.put(&path, Some(&etag), &elsewhere).await;
    assert_eq!(s, 400, "{oo}");
    assert_eq!(expressions(&oo), ["Consent.id"]);
    // The Consent as read, status unchanged: nothing to do, the same version.
    let (s, same_tag, same) = f
        .send(reqwest::Method::PUT, &path, Some(&etag), Some(&read))
        .await;
    assert_eq!(s, 200, "{same}");
    assert_eq!(same_tag.as_deref(), Some(etag.as_str()));
    assert_eq!(same["status"], "active");

    // Status inactive: 202, the RevokeConsent for the patient to sign; nothing changed yet.
    let (s, prepared) = f.put(&path, Some(&etag), &inactive).await;
    assert_eq!(s, 202, "{prepared}");
    assert_eq!(prepared["resourceType"], "Parameters");
    assert_eq!(
        param(&prepared, "signer")["valueString"],
        hex::encode(patient.key.verifying_key().to_bytes())
    );
    assert_eq!(
        param(&prepared, "outcome")["resource"]["issue"][0]["code"],
        "informational"
    );
    let (again, tag) = f.read_consent(&id).await;
    assert_eq!(
        (again["status"].clone(), tag),
        (json!("active"), etag.clone())
    );

    // Signed by anyone but the patient (here the hospital): the ledger refuses, nothing changes.
    let (s, oo) = f
        .put(&path, Some(&etag), &sign_prepared(&prepared, &hospital))
        .await;
    assert!((400..500).contains(&s), "{s} {oo}");
    assert_eq!(oo["resourceType"], "OperationOutcome");
    // The patient's signed revocation of this consent cannot be PUT to another.
    let by_patient = sign_prepared(&prepared, &patient.key);
    let (s, oo) = f
        .put(
            &format!("/fhir/Consent/{other_id}"),
            Some(&other_etag),
            &by_patient,
        )
        .await;
    assert_eq!(s, 422, "{oo}");
    assert_eq!(oo["issue"][0]["code"], "business-rule");
    let (still, _) = f.read_consent(&other_id).await;
    assert_eq!(still["status"], "active");

    // The patient's signature, PUT with the same If-Match: revoked, a new version.
    let (s, new_tag, revoked) = f
        .send(reqwest::Method::PUT, &path, Some(&etag), Some(&by_patient))
        .await;
    assert_eq!(s, 200, "{revoked}");
    assert_eq!(revoked["resourceType"], "Consent");
    assert_eq!(revoked["status"], "inactive");
    let version: u64 = revoked["meta"]["versionId"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let old: u64 = read["meta"]["versionId"].as_str().unwrap().parse().unwrap();
    assert!(version > old, "{version} > {old}");
    assert_eq!(new_tag, Some(format!("W/\"{version}\"")));
    // The version read before is stale now: 412, even for the same signed revocation.
    let (s, oo) = f.put(&path, Some(&etag), &by_patient).await;
    assert_eq!(s, 412, "{oo}");
    // A revoked consent stays revoked.
    let mut active = revoked.clone();
    active["status"] = json!("active");
    let new_tag = new_tag.unwrap();
    let (s, oo) = f.put(&path, Some(&new_tag), &active).await;
    assert_eq!(s, 422, "{oo}");
    assert_eq!(expressions(&oo), ["Consent.status"]);
    // Its history has both versions, the revocation an update.
    let deadline = Instant::now() + Duration::from_secs(30);
    let history = loop {
        let (s, _, h) = f
            .send(
                reqwest::Method::GET,
                &format!("{path}/_history"),
                None,
                None,
            )
            .await;
        assert_eq!(s, 200, "{h}");
        if h["total"] == 2 {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "the revocation is never certified"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(history["entry"][0]["request"]["method"], "PUT");
    assert_eq!(
        history["entry"][0]["response"]["etag"],
        format!("W/\"{version}\"")
    );

    // The CapabilityStatement says so.
    let (s, _, cap) = f
        .send(reqwest::Method::GET, "/fhir/metadata", None, None)
        .await;
    assert_eq!(s, 200);
    let consent = cap["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Consent")
        .unwrap()
        .clone();
    assert_eq!(consent["versioning"], "versioned-update");
    assert!(consent["interaction"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["code"] == "update"));

    // HL7's validator (HAPI) finds no error in anything answered.
    crate::hapi::assert_valid(&f.docs);
}

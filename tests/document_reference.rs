//! The record locator as FHIR (issue 25 point 5): `GET /fhir/DocumentReference?patient=…` at any
//! member's gateway lists every record anchored for the patient at any member, each value proven
//! against the certified app hash. On a localnet whose nodes run their members' gateways, lab-b
//! stores two records of a patient who consented to hospital-a; hospital-a finds them at
//! hospital-d's gateway (neither its own nor the custodian's), checks the proofs itself, follows
//! the attachment URL to lab-b's record route and reads the record with `vault get`; the patient
//! finds them too; insurer-c is refused; pages of one record each are consistent; an erased
//! record is `entered-in-error`; `Patient/{id}/$everything` brings consents, access events and
//! records together. HAPI's validator finds no error in any answer.

use base64ct::{Base64, Encoding};
use medledger_gateway::client::GatewayClient;
use prost::Message;
use serde_json::Value;

use crate::support::TestNet;

/// Signed FHIR GETs at one gateway, each answer kept for the validator.
struct Fhir<'a> {
    gw: GatewayClient,
    docs: &'a mut Vec<(String, Value)>,
}

impl Fhir<'_> {
    async fn get(&mut self, path: &str) -> (u16, Value) {
        let (status, body) = self
            .gw
            .send_raw("GET", path, Vec::new(), &[])
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
            panic!(
                "GET {path} -> {status}: not JSON: {}",
                String::from_utf8_lossy(&body)
            )
        });
        eprintln!("GET {path} -> {status}");
        self.docs
            .push((format!("GET {path} -> {status}"), v.clone()));
        (status, v)
    }
}

fn link(b: &Value, relation: &str) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_string())
}

fn matches(b: &Value) -> Vec<Value> {
    b["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"].clone())
                .collect()
        })
        .unwrap_or_default()
}

fn ids(b: &Value) -> Vec<String> {
    matches(b)
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// The sub-extension `name` of extension `ext`.
fn part<'a>(ext: &'a Value, name: &str) -> &'a Value {
    ext["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["url"] == name)
        .unwrap_or_else(|| panic!("no {name} in {ext}"))
}

/// The Bundle's verified-state extension.
fn verified_state(b: &Value) -> &Value {
    &b["meta"]["extension"][0]
}

/// Checks, as a verifier holding only the Bundle would, the proof of `key` in `resource`'s
/// `meta` against the Bundle's app hash (and that a flipped bit fails); the proven value.
fn proven(bundle: &Value, resource: &Value, key: &str) -> Vec<u8> {
    let app_hash = hex::decode(
        part(verified_state(bundle), "appHash")["valueString"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let proof = resource["meta"]["extension"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["url"] == "urn:medledger:fhir:StructureDefinition:ics23-proof"
                && part(e, "key")["valueString"] == key
        })
        .unwrap_or_else(|| panic!("no proof of {key} in {resource}"));
    let b64 = |n: &str| {
        Base64::decode_vec(part(proof, n)["valueBase64Binary"].as_str().unwrap()).unwrap()
    };
    let value = b64("value");
    let p = ics23::CommitmentProof::decode(b64("proof").as_slice()).unwrap();
    assert_eq!(
        medledger_query::verify(&app_hash, key.as_bytes(), Some(&value), &p).unwrap(),
        medledger_query::Proven::Present(value.clone())
    );
    let mut tampered = value.clone();
    tampered[0] ^= 1;
    assert!(medledger_query::verify(&app_hash, key.as_bytes(), Some(&tampered), &p).is_err());
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_gateway_locates_a_patients_records_with_proofs_for_those_who_may_read_them() {
    let net = TestNet::start_with_gateways().await;
    let gateway = |i: usize| net.net.spec.nodes[i].gateway_url();
    // hospital-a, lab-b, insurer-c, hospital-d: nodes 0 to 3, each with its member's gateway.
    let lab = gateway(1);
    let patient = net.consenting_patient(151, "hospital-a").await;
    let pid = patient.id.clone();

    let content = br#"{"resourceType":"Observation","code":{"text":"HbA1c"},"valueQuantity":{"value":6.1,"unit":"%"}}"#;
    let first = net.vault_put("lab-b", &pid, "Observation", "obs-1", content);
    let second = net.vault_put(
        "lab-b",
        &pid,
        "Observation",
        "obs-2",
        b"{\"resourceType\":\"Observation\"}",
    );
    let anchored = second["anchor_height"].as_u64().unwrap();
    net.certified(anchored).await;

    let mut docs = Vec::new();
    let hospital = net.member_key("hospital-a");
    let search = format!("/fhir/DocumentReference?patient={pid}");

    // hospital-a (consented) at hospital-d's gateway: both records, in anchor order, each at its
    // custodian's gateway, every value proven.
    {
        let mut f = Fhir {
            gw: GatewayClient::new(&gateway(3), hospital.clone()),
            docs: &mut docs,
        };
        let (s, b) = f.get(&search).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["type"], "searchset");
        assert_eq!(b["total"], 2, "{b}");
        assert_eq!(ids(&b), ["obs-1", "obs-2"]);
        let doc = &matches(&b)[0];
        assert_eq!(doc["status"], "current");
        assert_eq!(doc["docStatus"], "final");
        assert_eq!(
            doc["subject"]["reference"],
            format!("Patient/{pid}").as_str()
        );
        assert_eq!(doc["custodian"]["identifier"]["value"], "lab-b");
        assert_eq!(doc["type"]["coding"][0]["code"], "Observation");
        assert!(doc["date"].as_str().unwrap().ends_with('Z'), "{doc}");
        let att = &doc["content"][0]["attachment"];
        let url = format!("{lab}/records/obs-1");
        assert_eq!(att["url"], url.as_str(), "the custodian's gateway");
        assert_eq!(att["size"], first["size"]);
        assert_eq!(att["extension"][0]["valueString"], first["content_hash"]);
        assert!(att.get("hash").is_none());
        // The proofs, checked here against the Bundle's certified app hash: the list's index,
        // the anchor (custodian, content hash) and the custodian's published gateway.
        let index = proven(&b, doc, &format!("patient-records/{pid}/{:020}", 0));
        assert_eq!(index, b"obs-1");
        let anchor =
            medledger_tx::pb::RecordAnchor::decode(proven(&b, doc, "record/obs-1").as_slice())
                .unwrap();
        assert_eq!(anchor.custodian, "lab-b");
        assert_eq!(
            hex::encode(&anchor.content_hash),
            first["content_hash"].as_str().unwrap()
        );
        let gw =
            medledger_tx::pb::Gateway::decode(proven(&b, doc, "gateway/lab-b").as_slice()).unwrap();
        assert_eq!(format!("{}/records/obs-1", gw.endpoint), url);
        assert!(part(verified_state(&b), "certificate")["valueBase64Binary"].is_string());

        // The attachment's URL is lab-b's record route: it releases nothing unsigned …
        let unsigned = reqwest::get(&url).await.unwrap();
        assert_eq!(unsigned.status().as_u16(), 401);
        // … and hospital-a's consent reads the record there, byte for byte.
        let get = net.vault_get("hospital-a", "obs-1", &[]);
        assert_eq!(get.status.code(), Some(0));
        assert_eq!(get.stdout, content);

        // Pages of one, pinned to one certified height: exactly the two records, each once.
        let (s, p1) = f.get(&format!("{search}&_count=1")).await;
        assert_eq!(s, 200, "{p1}");
        assert_eq!(ids(&p1), ["obs-1"]);
        assert_eq!(p1["total"], 2);
        let next = link(&p1, "next").expect("a second page");
        let (s, p2) = f.get(next.strip_prefix(&gateway(3)).unwrap()).await;
        assert_eq!(s, 200, "{p2}");
        assert_eq!(ids(&p2), ["obs-2"]);
        assert!(link(&p2, "next").is_none(), "{p2}");
        assert_eq!(verified_state(&p2), verified_state(&p1));
        let (s, count) = f.get(&format!("{search}&_summary=count")).await;
        assert_eq!(s, 200, "{count}");
        assert_eq!(count["total"], 2);
        assert!(count.get("entry").is_none(), "{count}");

        // One record's entry, read by id, proven too.
        let (s, one) = f.get("/fhir/DocumentReference/obs-2").await;
        assert_eq!(s, 200, "{one}");
        assert_eq!(
            (one["resourceType"].as_str(), one["id"].as_str()),
            (Some("DocumentReference"), Some("obs-2"))
        );
        let anchor =
            medledger_tx::pb::RecordAnchor::decode(proven(&one, &one, "record/obs-2").as_slice())
                .unwrap();
        assert_eq!(anchor.record_id, "obs-2");
        let (s, oo) = f.get("/fhir/DocumentReference/no-such-record").await;
        assert_eq!(s, 404, "{oo}");
        assert_eq!(oo["issue"][0]["code"], "not-found");

        // `$everything`: the consents, access events and records in one Bundle, one state.
        let everything = format!("/fhir/Patient/{pid}/$everything");
        let (s, all) = f.get(&everything).await;
        assert_eq!(s, 200, "{all}");
        assert_eq!(all["type"], "searchset");
        let kinds: Vec<String> = matches(&all)
            .iter()
            .map(|r| r["resourceType"].as_str().unwrap().to_string())
            .collect();
        let of = |k: &str| kinds.iter().filter(|t| *t == k).count();
        assert_eq!((of("Consent"), of("DocumentReference")), (1, 2), "{all}");
        assert_eq!(all["total"], kinds.len(), "nothing left out below the cap");
        let records: Vec<Value> = matches(&all)
            .into_iter()
            .filter(|r| r["resourceType"] == "DocumentReference")
            .collect();
        proven(&all, &records[0], "record/obs-1");
        let (s, oo) = f.get(&format!("{everything}?_count=5")).await;
        assert_eq!(s, 400, "{oo}");
        assert_eq!(oo["issue"][0]["code"], "not-supported");

        // A patient no one enrolled: as the Consent search answers it.
        let (consent_status, _) = f.get("/fhir/Consent?patient=pt-nobody").await;
        let (s, oo) = f.get("/fhir/DocumentReference?patient=pt-nobody").await;
        assert_eq!(s, consent_status, "{oo}");
        // A missing patient is 400.
        let (s, oo) = f.get("/fhir/DocumentReference").await;
        assert_eq!(s, 400, "{oo}");
    }

    // The patient finds their records at their enrolling member's gateway.
    {
        let mut f = Fhir {
            gw: GatewayClient::new(&gateway(0), patient.key.clone()),
            docs: &mut docs,
        };
        let (s, b) = f.get(&search).await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(ids(&b), ["obs-1", "obs-2"]);
    }

    // insurer-c, with no consent, enrolment or coverage, is refused at its own gateway: the
    // search and the read.
    {
        let mut f = Fhir {
            gw: GatewayClient::new(&gateway(2), net.member_key("insurer-c")),
            docs: &mut docs,
        };
        for path in [
            search.clone(),
            "/fhir/DocumentReference/obs-1".to_string(),
            format!("/fhir/Patient/{pid}/$everything"),
        ] {
            let (s, oo) = f.get(&path).await;
            assert_eq!(s, 403, "{path}: {oo}");
            assert_eq!(oo["resourceType"], "OperationOutcome");
            assert_eq!(oo["issue"][0]["code"], "forbidden");
        }
    }

    // lab-b erases obs-2: once certified, the locator says entered-in-error and names the
    // erasure; obs-1 stays current.
    let erase = net.cli(&["vault", "erase", "--from", "lab-b", "--record", "obs-2"]);
    assert_eq!(erase.status.code(), Some(0));
    let h = net.height(0).await;
    net.certified(h).await;
    {
        let mut f = Fhir {
            gw: GatewayClient::new(&gateway(0), hospital.clone()),
            docs: &mut docs,
        };
        let (s, b) = f.get(&search).await;
        assert_eq!(s, 200, "{b}");
        let found = matches(&b);
        assert_eq!(found[0]["status"], "current");
        assert_eq!(found[1]["status"], "entered-in-error", "{b}");
        let erasure = found[1]["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == "urn:medledger:fhir:StructureDefinition:erasure")
            .unwrap_or_else(|| panic!("no erasure extension: {b}"))
            .clone();
        assert!(part(&erasure, "requestedHeight")["valueString"].is_string());
    }

    // HL7's validator (HAPI) finds no error in anything answered.
    crate::hapi::assert_valid(&docs);
}

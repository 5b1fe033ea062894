//! DocumentReference: the record locator (issue 25 point 5, IHE MHD's Find Document References).
//! Every gateway answers, for whoever may read the patient, one DocumentReference per record
//! anchored for the patient at any member: the ledger's proven list of the patient's records
//! (`patient-records/{p}/…`), each record's anchor (`record/{id}`) and its custodian's published
//! gateway (`gateway/{member}`), all read at one certified height with their ICS23 proofs. The
//! attachment's URL is the custodian gateway's `GET /records/{id}`, where the record itself is
//! released under consent and logged.

use super::*;

/// DocumentReferences per search page: the default and the most (`_count`).
pub const DOCUMENT_PAGE: (u64, u64) = (100, 1_000);

/// `DocumentReference.content[0].attachment.extension`: the anchored content hash, lowercase hex
/// of the SHA-256 of the sealed record (not `Attachment.hash`, which R4 defines as SHA-1).
pub const CONTENT_HASH_EXTENSION_URL: &str =
    "urn:medledger:fhir:StructureDefinition:content-sha256";

/// `DocumentReference.extension`: the anchor (`anchoredHeight`, `anchoredBy`, `keyId`).
pub const ANCHOR_EXTENSION_URL: &str = "urn:medledger:fhir:StructureDefinition:record-anchor";

/// `DocumentReference.extension`: threshold custody (`threshold`, then one `holder` per holder
/// in the anchor's order, the custodian first); absent for a single-custodian record.
pub const CUSTODY_EXTENSION_URL: &str = "urn:medledger:fhir:StructureDefinition:custody";

/// `DocumentReference.extension`: the erasure (`requestedHeight`, `requestedBy`, and once
/// complete `confirmedHeight`, `confirmedBy`); absent while the record is not erased.
pub const ERASURE_EXTENSION_URL: &str = "urn:medledger:fhir:StructureDefinition:erasure";

/// The identifier system of a member (`custodian.identifier`).
pub const MEMBER_SYSTEM: &str = "urn:medledger:member";

/// The search parameters of `GET /fhir/DocumentReference`.
const SEARCH_PARAMS: &[&str] = &["patient", "_count", "_offset", "_height"];

/// The record types the words below know, as the patient pages say them (web/src/ui/words.ts).
fn class_words(t: &str) -> Option<&'static str> {
    Some(match t {
        "Observation" => "Lab result",
        "DiagnosticReport" => "Diagnostic report",
        "DocumentReference" => "Document (letter, note)",
        "MedicationRequest" => "Prescription",
        "Condition" => "Diagnosis",
        "Procedure" => "Procedure (operation, treatment)",
        "Immunization" => "Vaccination",
        "AllergyIntolerance" => "Allergy",
        "ImagingStudy" => "Imaging (X-ray, scan)",
        _ => return None,
    })
}

/// One record as the locator proves it: the anchor, the custodian's endpoint (none published:
/// `None`) and the reads that prove them (the list index when searched, the anchor, the gateway).
struct Located {
    anchor: pb::RecordAnchor,
    endpoint: Option<String>,
    reads: Vec<medledger_query::history::ProvenRead>,
}

/// Checks every read against the attested app hash.
fn verify_reads(
    a: &Attestation,
    reads: &[&medledger_query::history::ProvenRead],
) -> Result<(), FhirError> {
    for r in reads {
        medledger_query::verify(&a.app_hash, &r.key, r.value.as_deref(), &r.proof).map_err(
            |e| {
                FhirError::unavailable(format!(
                    "the node's answer for {} does not match the certified app hash: {e}",
                    String::from_utf8_lossy(&r.key)
                ))
            },
        )?;
    }
    Ok(())
}

/// Record `id`'s anchor and its custodian's gateway, read at `height` (the anchor `None`:
/// proven absent once verified). The reads are appended to `reads`.
async fn locate(
    st: &State,
    id: &str,
    height: u64,
    reads: &mut Vec<medledger_query::history::ProvenRead>,
) -> Result<Option<(pb::RecordAnchor, Option<String>)>, FhirError> {
    let r = proven_read(st, &keys::record(id), height).await?;
    let anchor = r
        .value
        .as_deref()
        .map(pb::RecordAnchor::decode)
        .transpose()
        .map_err(|e| FhirError::unavailable(format!("record {id}'s anchor: {e}")))?;
    reads.push(r);
    let Some(anchor) = anchor else {
        return Ok(None);
    };
    let g = proven_read(st, &keys::gateway(&anchor.custodian), height).await?;
    let endpoint = g
        .value
        .as_deref()
        .and_then(|v| pb::Gateway::decode(v).ok())
        .map(|g| g.endpoint)
        .filter(|e| !e.is_empty());
    reads.push(g);
    Ok(Some((anchor, endpoint)))
}

/// One proven page of the patient's records.
struct RecordPage {
    n: u64,
    records: Vec<Located>,
    count_read: medledger_query::history::ProvenRead,
    attestation: Attestation,
    certificate: Vec<u8>,
}

/// The patient's records `page.offset ..` (at most `page.count`) at the certified height
/// `page.height` (or the latest), with the proven count, all verified against that state.
async fn record_page(st: &State, patient: &str, page: Page) -> Result<RecordPage, FhirError> {
    let (height, certificate) = certified_height(st, page.height).await?;
    let count_read = proven_read(st, &keys::patient_record_count(patient), height).await?;
    let n = count_read
        .value
        .as_deref()
        .and_then(keys::decode_u64)
        .unwrap_or(0);
    let mut records = Vec::new();
    for i in page.offset..page.offset.saturating_add(page.count).min(n) {
        let index = proven_read(st, &keys::patient_record(patient, i), height).await?;
        let Some(id) = index.value.clone() else {
            return Err(FhirError::unavailable(format!(
                "the node has no record {i} of patient {patient}'s {n}"
            )));
        };
        let id = String::from_utf8(id)
            .map_err(|_| FhirError::unavailable(format!("record id {i} is not UTF-8")))?;
        let mut reads = vec![index];
        let Some((anchor, endpoint)) = locate(st, &id, height, &mut reads).await? else {
            return Err(FhirError::unavailable(format!(
                "the node has no anchor of record {id}, listed for patient {patient}"
            )));
        };
        if anchor.patient_id != patient {
            return Err(FhirError::unavailable(format!(
                "record {id}, listed for patient {patient}, is anchored for another patient"
            )));
        }
        records.push(Located {
            anchor,
            endpoint,
            reads,
        });
    }
    let attestation = attest(&st.client, &st.trust, height)
        .await
        .map_err(FhirError::unavailable)?;
    let all: Vec<&medledger_query::history::ProvenRead> = std::iter::once(&count_read)
        .chain(records.iter().flat_map(|r| r.reads.iter()))
        .collect();
    verify_reads(&attestation, &all)?;
    Ok(RecordPage {
        n,
        records,
        count_read,
        attestation,
        certificate,
    })
}

fn string_ext(url: &str, value: impl Into<String>) -> Value {
    json!({ "url": url, "valueString": value.into() })
}

/// A record's DocumentReference (without `meta`): every value from the proven anchor and the
/// custodian's proven gateway, except `date`, the anchoring block's time (`block_time`; 0:
/// unknown, left out).
pub(super) fn document_reference(
    a: &pb::RecordAnchor,
    endpoint: Option<&str>,
    block_time: u64,
) -> Value {
    let id = &a.record_id;
    let erased = a.erased_height != 0;
    let class = {
        let words = class_words(&a.resource_type);
        let text = match words {
            Some(w) => format!("{w} (FHIR {})", a.resource_type),
            None => format!("FHIR {}", a.resource_type),
        };
        let mut c = json!({ "text": text });
        if words.is_some() {
            c["coding"] = json!([{ "system": map::RESOURCE_TYPES, "code": a.resource_type }]);
        }
        c
    };
    let mut attachment = json!({
        "extension": [{ "url": CONTENT_HASH_EXTENSION_URL, "valueString": hex::encode(&a.content_hash) }],
        "contentType": FHIR_JSON,
        "size": a.size.min(i32::MAX as u64),
    });
    if let Some(e) = endpoint {
        attachment["url"] = json!(format!("{}/records/{id}", e.trim_end_matches('/')));
    }
    let mut extension = vec![json!({
        "url": ANCHOR_EXTENSION_URL,
        "extension": [
            string_ext("anchoredHeight", a.anchored_height.to_string()),
            string_ext("anchoredBy", a.anchored_by.clone()),
            string_ext("keyId", a.key_id.clone()),
        ],
    })];
    if !a.holders.is_empty() {
        let mut parts = vec![json!({ "url": "threshold", "valueUnsignedInt": a.threshold })];
        parts.extend(a.holders.iter().map(|h| string_ext("holder", h.clone())));
        extension.push(json!({ "url": CUSTODY_EXTENSION_URL, "extension": parts }));
    }
    if erased {
        let mut parts = vec![
            string_ext("requestedHeight", a.erased_height.to_string()),
            string_ext("requestedBy", a.erased_by.clone()),
        ];
        if a.erasure_confirmed_height != 0 {
            parts.push(string_ext(
                "confirmedHeight",
                a.erasure_confirmed_height.to_string(),
            ));
            if !a.erasure_confirmed_by.is_empty() {
                parts.push(string_ext("confirmedBy", a.erasure_confirmed_by.clone()));
            }
        }
        extension.push(json!({ "url": ERASURE_EXTENSION_URL, "extension": parts }));
    }
    let mut v = json!({
        "resourceType": "DocumentReference",
        "id": id,
        "extension": extension,
        "masterIdentifier": { "system": map::RECORD_SYSTEM, "value": id },
        "status": if erased { "entered-in-error" } else { "current" },
        "docStatus": "final",
        "type": class.clone(),
        "category": [class],
        "subject": { "reference": format!("Patient/{}", a.patient_id) },
        "custodian": {
            "type": "Organization",
            "identifier": { "system": MEMBER_SYSTEM, "value": a.custodian },
            "display": a.custodian,
        },
        "content": [{ "attachment": attachment }],
    });
    if block_time != 0 {
        v["date"] = json!(map::instant(block_time));
    }
    v
}

/// `GET /fhir/DocumentReference?patient=…`: one page of the patient's records, in anchor
/// order, erased ones included (`_summary=count`: the proven count only).
pub(super) async fn search_document_references(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let search = Search::parse(&q, &headers, SEARCH_PARAMS)?;
    let p = search.patient()?;
    require_patient(&st, &authed.who, &p).await?;
    let mut page = search.page(DOCUMENT_PAGE.0, DOCUMENT_PAGE.1)?;
    if search.count_only {
        page.offset = 0;
        page.count = 0;
    }
    let rp = record_page(&st, &p, page).await?;
    let a = &rp.attestation;
    let mut entries = Vec::with_capacity(rp.records.len());
    for r in &rp.records {
        let time = st.block_time(r.anchor.anchored_height).await;
        let mut v = document_reference(&r.anchor, r.endpoint.as_deref(), time);
        let proofs: Vec<Value> = r.reads.iter().map(audit_event::proof_extension).collect();
        v["meta"] = json!({ "extension": proofs });
        entries.push(v);
    }
    let base = format!("{}/fhir/DocumentReference", st.public_url);
    let fixed = search.fixed(&["patient"]);
    let links = if search.count_only {
        summary_links(&base, &fixed, a.height)
    } else {
        page_links(&base, &fixed, page, a.height, rp.n)
    };
    let mut meta = verified_meta(st.node.chain_id(), a);
    if let Some(ext) = meta["extension"][0]["extension"].as_array_mut() {
        ext.push(json!({ "url": "certificate", "valueBase64Binary": Base64::encode_string(&rp.certificate) }));
    }
    if let Some(exts) = meta["extension"].as_array_mut() {
        exts.push(audit_event::proof_extension(&rp.count_read));
    }
    let answer = Answer {
        resource: "DocumentReference",
        total: Some(rp.n),
        links,
        meta,
    };
    Ok(fhir(
        StatusCode::OK,
        &searchset(&st, answer, entries, &search),
    ))
}

/// `GET /fhir/DocumentReference/{id}`: with a `Medledger-Access-Tx` header, the vault record
/// `id` of type DocumentReference, released as every vault record ([`super::record`]);
/// without, record `id`'s locator entry, proven at the latest certified height.
pub(super) async fn read_document_reference(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    if headers.contains_key("medledger-access-tx") {
        return record::read_record(
            AxState(st),
            Path(("DocumentReference".to_string(), id)),
            uri,
            headers,
            FhirAuthed(authed),
        )
        .await;
    }
    if id.is_empty() || id.len() > 128 {
        return Err(FhirError::bad("bad record id"));
    }
    let (height, _) = certified_height(&st, None).await?;
    let mut reads = Vec::new();
    let located = locate(&st, &id, height, &mut reads).await?;
    let a = attest(&st.client, &st.trust, height)
        .await
        .map_err(FhirError::unavailable)?;
    verify_reads(&a, &reads.iter().collect::<Vec<_>>())?;
    let (anchor, endpoint) =
        located.ok_or_else(|| FhirError::not_found(format!("no record {id} (proven absent)")))?;
    require_patient(&st, &authed.who, &anchor.patient_id).await?;
    let time = st.block_time(anchor.anchored_height).await;
    let mut v = document_reference(&anchor, endpoint.as_deref(), time);
    let mut meta = verified_meta(st.node.chain_id(), &a);
    if let Some(exts) = meta["extension"].as_array_mut() {
        exts.extend(reads.iter().map(audit_event::proof_extension));
    }
    v["meta"] = meta;
    Ok(fhir(StatusCode::OK, &v))
}

/// Resources of each kind in `Patient/{id}/$everything`: the first this many of the patient's
/// consents, access events and records; the rest are read with the searches, from the height
/// the answer names (its OperationOutcome entry gives the URLs).
pub const EVERYTHING_CAP: u64 = 100;

/// `GET /fhir/Patient/{id}/$everything`: in one searchset Bundle, read at one certified height,
/// the patient's consents, access events (AuditEvents, each with its proof) and records
/// (DocumentReferences, with theirs), the first [`EVERYTHING_CAP`] of each, for those who may
/// read the patient.
pub(super) async fn patient_everything(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["_format", "_pretty"])?;
    let p = patient_param(&[("patient".to_string(), id)])?;
    // A SMART token passed the route's own scope (`system/Patient.read`); the answer holds three
    // kinds more, and each must be granted too, or `$everything` would widen a token's scopes.
    if let Some(g) = &authed.who.smart {
        let missing: Vec<String> = ["Consent", "AuditEvent", "DocumentReference"]
            .into_iter()
            .filter(|r| !g.permits(r, medledger_tx::check::smart::Perms::SEARCH))
            .map(|r| format!("system/{r}.s"))
            .collect();
        if !missing.is_empty() {
            return Err(FhirError::security(format!(
                "$everything answers Consents, AuditEvents and DocumentReferences; the token of \
                 SMART client {} is not granted {} (granted: {})",
                g.client_id,
                missing.join(", "),
                g.scope_string()
            )));
        }
    }
    require_patient(&st, &authed.who, &p).await?;
    let (height, _) = certified_height(&st, None).await?;
    let page = Page {
        offset: 0,
        count: EVERYTHING_CAP,
        height: Some(height),
    };
    // Consents: the proven count, then each index and consent.
    let count = proven_read(&st, &keys::patient_consent_count(&p), height).await?;
    let consents_n = count
        .value
        .as_deref()
        .and_then(keys::decode_u64)
        .unwrap_or(0);
    let mut reads = vec![count];
    let mut consents = Vec::new();
    for i in 0..consents_n.min(EVERYTHING_CAP) {
        let index = proven_read(&st, &keys::patient_consent(&p, i), height).await?;
        let cid = index
            .value
            .clone()
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        reads.push(index);
        let Some(cid) = cid else { continue };
        let c = proven_read(&st, &keys::consent(&cid), height).await?;
        if let Some(v) = c.value.as_deref() {
            consents.push(
                Consent::decode(v)
                    .map_err(|e| FhirError::unavailable(format!("consent {cid}: {e}")))?,
            );
        }
        reads.push(c);
    }
    let audit = audit_event::proven_page_bundle(&st, &p, page).await?;
    let events_n = audit["total"].as_u64().unwrap_or(0);
    let rp = record_page(&st, &p, page).await?;
    let a = &rp.attestation;
    verify_reads(a, &reads.iter().collect::<Vec<_>>())?;

    let base = &st.public_url;
    let mut entry = Vec::new();
    for c in &consents {
        let mut v = map::consent_to_fhir(c);
        v["meta"] = json!({ "versionId": consent::consent_version(c).to_string() });
        entry.push(json!({
            "fullUrl": format!("{base}/fhir/Consent/{}", c.id),
            "resource": v,
            "search": { "mode": "match" },
        }));
    }
    if let Some(events) = audit["entry"].as_array() {
        entry.extend(events.iter().cloned());
    }
    for r in &rp.records {
        let time = st.block_time(r.anchor.anchored_height).await;
        let mut v = document_reference(&r.anchor, r.endpoint.as_deref(), time);
        let proofs: Vec<Value> = r.reads.iter().map(audit_event::proof_extension).collect();
        v["meta"] = json!({ "extension": proofs });
        entry.push(json!({
            "fullUrl": format!("{base}/fhir/DocumentReference/{}", r.anchor.record_id),
            "resource": v,
            "search": { "mode": "match" },
        }));
    }
    let more: Vec<(&str, u64)> = [
        ("Consent", consents_n),
        ("AuditEvent", events_n),
        ("DocumentReference", rp.n),
    ]
    .into_iter()
    .filter(|(_, n)| *n > EVERYTHING_CAP)
    .collect();
    let self_url = format!("{base}/fhir/Patient/{p}/$everything");
    if !more.is_empty() {
        let issues: Vec<Value> = more
            .iter()
            .map(|(ty, n)| {
                json!({
                    "severity": "information",
                    "code": "incomplete",
                    "diagnostics": format!(
                        "the first {EVERYTHING_CAP} of the patient's {n} {ty} resources are \
                         here; the rest: {base}/fhir/{ty}?patient={p}&_offset={EVERYTHING_CAP}\
                         &_count={EVERYTHING_CAP}&_height={height} and its next links"
                    ),
                    "expression": [ty],
                })
            })
            .collect();
        entry.push(json!({
            "fullUrl": format!("urn:uuid:{}", name_uuid(b"medledger/fhir/everything-outcome/v1", &[self_url.as_bytes(), height.to_string().as_bytes()])),
            "resource": { "resourceType": "OperationOutcome", "issue": issues },
            "search": { "mode": "outcome" },
        }));
    }
    let mut meta = verified_meta(st.node.chain_id(), a);
    if let Some(ext) = meta["extension"][0]["extension"].as_array_mut() {
        ext.push(json!({ "url": "certificate", "valueBase64Binary": Base64::encode_string(&rp.certificate) }));
    }
    if let Some(exts) = meta["extension"].as_array_mut() {
        exts.extend(reads.first().map(audit_event::proof_extension));
        exts.extend(
            audit["meta"]["extension"]
                .as_array()
                .and_then(|e| e.get(1))
                .cloned(),
        );
        exts.push(audit_event::proof_extension(&rp.count_read));
    }
    let mut b = json!({
        "resourceType": "Bundle",
        "meta": meta,
        "type": "searchset",
        "total": consents_n.saturating_add(events_n).saturating_add(rp.n),
        "link": [{ "relation": "self", "url": self_url }],
    });
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    Ok(fhir(StatusCode::OK, &b))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn anchor() -> pb::RecordAnchor {
        pb::RecordAnchor {
            record_id: "obs-1".into(),
            patient_id: "pt-1".into(),
            custodian: "lab-b".into(),
            resource_type: "Observation".into(),
            content_hash: vec![0xab; 32],
            size: 321,
            key_id: "kc1-00".into(),
            anchored_by: "lab-b".into(),
            anchored_height: 7,
            ..Default::default()
        }
    }

    #[test]
    fn a_record_is_a_current_document_at_its_custodians_gateway() {
        let v = document_reference(&anchor(), Some("https://lab-b.example/"), 1_795_651_200);
        assert_eq!(v["status"], "current");
        assert_eq!(v["docStatus"], "final");
        assert_eq!(v["subject"]["reference"], "Patient/pt-1");
        assert_eq!(v["custodian"]["identifier"]["value"], "lab-b");
        assert_eq!(v["type"]["coding"][0]["code"], "Observation");
        assert_eq!(v["date"], "2026-11-26T00:00:00Z");
        let att = &v["content"][0]["attachment"];
        assert_eq!(att["url"], "https://lab-b.example/records/obs-1");
        assert_eq!(att["size"], 321);
        assert_eq!(att["extension"][0]["valueString"], "ab".repeat(32));
        assert!(att.get("hash").is_none(), "R4's hash is SHA-1: not used");
        assert!(v["extension"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["url"] != ERASURE_EXTENSION_URL && e["url"] != CUSTODY_EXTENSION_URL));
    }

    #[test]
    fn an_erased_threshold_record_says_so_and_names_its_holders() {
        let mut a = anchor();
        a.resource_type = "Foo".into();
        a.erased_height = 9;
        a.erased_by = "pt-1".into();
        a.erasure_confirmed_height = 11;
        a.erasure_confirmed_by = "lab-b".into();
        a.holders = vec!["lab-b".into(), "hospital-a".into(), "insurer-c".into()];
        a.threshold = 2;
        let v = document_reference(&a, None, 0);
        assert_eq!(v["status"], "entered-in-error");
        assert!(v.get("date").is_none());
        assert!(v["content"][0]["attachment"].get("url").is_none());
        assert!(
            v["type"].get("coding").is_none(),
            "not a type the words know"
        );
        let ext = |url: &str| {
            v["extension"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["url"] == url)
                .unwrap()["extension"]
                .clone()
        };
        let custody = ext(CUSTODY_EXTENSION_URL);
        assert_eq!(custody[0]["valueUnsignedInt"], 2);
        assert_eq!(custody[1]["valueString"], "lab-b");
        assert_eq!(custody.as_array().unwrap().len(), 4);
        let erasure = ext(ERASURE_EXTENSION_URL);
        assert_eq!(erasure[0]["valueString"], "9");
        assert_eq!(erasure[2]["valueString"], "11");
    }
}

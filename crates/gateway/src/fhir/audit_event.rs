//! AuditEvent: the patient's proven access history, paged, and the HIPAA accounting of
//! disclosures as CSV.

use super::*;

/// One proven page of `patient`'s access history at a certified height (the latest, or the
/// page's `_height`): the proven count `n`, the events `offset ..` (at most `count`, none
/// past `n`), the reads (the count's first), the proven read of the history's digest when asked
/// for (`proof=digest`), and the state's attestation and certificate.
pub(super) struct HistoryPage {
    n: u64,
    events: Vec<pb::AccessEvent>,
    reads: Vec<medledger_query::history::ProvenRead>,
    digest: Option<medledger_query::history::ProvenRead>,
    attestation: Attestation,
    certificate: Vec<u8>,
}

/// How a search answer proves its events.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ProofMode {
    /// Each entry with its own proof (the default, `proof=entry`): every page verifies alone.
    Entry,
    /// One proof of the history's digest on every page, each entry with its value only
    /// (`proof=digest`): the pages together verify the complete history with one proof.
    Digest,
}

pub(super) async fn certified_history(
    st: &State,
    patient: &str,
    page: Page,
    mode: ProofMode,
) -> Result<HistoryPage, FhirError> {
    let unavailable = FhirError::unavailable;
    let (height, certificate) = certified_height(st, page.height).await?;
    let (count, height) = st
        .client
        .read_with_proof(&keys::access_count(patient), height)
        .await
        .map_err(unavailable)?;
    let n = count
        .value
        .as_deref()
        .and_then(keys::decode_u64)
        .unwrap_or(0);
    let end = page.offset.saturating_add(page.count).min(n);
    let digest = match mode {
        ProofMode::Entry => None,
        ProofMode::Digest => Some(proven_read(st, &keys::access_digest(patient), height).await?),
    };
    let mut reads = vec![count];
    for i in page.offset..end {
        reads.push(
            st.client
                .read_with_proof(&keys::access_event(patient, i), height)
                .await
                .map_err(unavailable)?
                .0,
        );
    }
    let attestation = attest(&st.client, &st.trust, height)
        .await
        .map_err(unavailable)?;
    let (proven_n, events) = verify_access_page(
        &attestation.app_hash,
        patient,
        &reads[0],
        page.offset,
        &reads[1..],
    )
    .map_err(|e| FhirError::unavailable(format!("the node's history does not verify: {e}")))?;
    if proven_n != n {
        return Err(FhirError::unavailable("the node's count does not verify"));
    }
    if let Some(d) = &digest {
        // The digest must verify and count the same history (the values are checked against it
        // by whoever collects every page).
        let proven =
            medledger_query::verify(&attestation.app_hash, &d.key, d.value.as_deref(), &d.proof)
                .map_err(|e| {
                    FhirError::unavailable(format!(
                        "the node's history digest does not verify: {e}"
                    ))
                })?;
        let count = match proven {
            medledger_query::Proven::Absent => 0,
            medledger_query::Proven::Present(v) => medledger_tx::digest::ListDigest::decode(&v)
                .map(|d| d.count)
                .ok_or_else(|| {
                    FhirError::unavailable("the node's history digest is not 40 bytes")
                })?,
        };
        if count != n {
            return Err(FhirError::unavailable(
                "the node's history digest counts another history",
            ));
        }
    }
    Ok(HistoryPage {
        n,
        events,
        reads,
        digest,
        attestation,
        certificate,
    })
}

/// The members' published gateway endpoints (`SetGateway`), by member id.
type Endpoints = std::collections::BTreeMap<String, String>;

/// R4 AuditEventAgentNetworkType `5`: a URI.
const NETWORK_URI: &str = "5";

/// The endpoints, proven against `a`'s state, of the members that read in `events`: each
/// `gateway/{member}` read with its proof at that height (a member that published none has
/// no entry).
async fn proven_endpoints(
    st: &State,
    events: &[pb::AccessEvent],
    a: &Attestation,
) -> Result<Endpoints, FhirError> {
    let members: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.actor.as_str()).collect();
    let mut out = Endpoints::new();
    for m in members {
        let read = proven_read(st, &keys::gateway(m), a.height).await?;
        medledger_query::verify(&a.app_hash, &read.key, read.value.as_deref(), &read.proof)
            .map_err(|e| {
                FhirError::unavailable(format!("member {m}'s gateway does not verify: {e}"))
            })?;
        if let Some(g) = read
            .value
            .as_deref()
            .and_then(|v| pb::Gateway::decode(v).ok())
        {
            out.insert(m.to_string(), g.endpoint);
        }
    }
    Ok(out)
}

/// An access event's AuditEvent as the gateway answers it: the export's BALP RESTful AuditEvent
/// ([`medledger_query::export`], docs/fhir.md "AuditEvent"), with the reading member's agent
/// given its published gateway endpoint as its network address where it published one.
fn balp(r: &mut Value, e: &pb::AccessEvent, endpoints: &Endpoints) {
    let Some(endpoint) = endpoints.get(&e.actor).filter(|u| !u.is_empty()) else {
        return;
    };
    let Some(agents) = r["agent"].as_array_mut() else {
        return;
    };
    for agent in agents {
        if agent["who"]["identifier"]["value"].as_str() == Some(e.actor.as_str())
            && agent["who"]["identifier"].get("system").is_none()
        {
            agent["network"] = json!({ "address": endpoint, "type": NETWORK_URI });
        }
    }
}

pub(super) fn proof_extension(read: &medledger_query::history::ProvenRead) -> Value {
    let mut v = value_extension(read);
    if let Some(parts) = v["extension"].as_array_mut() {
        parts.push(json!({ "url": "proof", "valueBase64Binary": Base64::encode_string(&read.proof.encode_to_vec()) }));
    }
    v
}

/// A proven read's key and value without its proof: an entry of a `proof=digest` answer, checked
/// by the digest's one proof.
fn value_extension(read: &medledger_query::history::ProvenRead) -> Value {
    let mut parts =
        vec![json!({ "url": "key", "valueString": String::from_utf8_lossy(&read.key) })];
    // An absent key (a history of no events has no count) has no value: its proof is one of
    // absence, and FHIR forbids empty strings.
    if let Some(v) = read.value.as_deref() {
        parts.push(json!({ "url": "value", "valueBase64Binary": Base64::encode_string(v) }));
    }
    json!({ "url": PROOF_EXTENSION_URL, "extension": parts })
}

/// `GET /fhir/AuditEvent?patient=…`: one page of the patient's proven history (`date` filters
/// what the page's index range holds; `_summary=count` reads the proven count only).
pub(super) async fn search_audit_events(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let search = Search::parse(
        &q,
        &headers,
        &["patient", "date", "proof", "_count", "_offset", "_height"],
    )?;
    let p = search.patient()?;
    require_patient(&st, &authed.who, &p).await?;
    let filters = search
        .all("date")
        .map(date_filter)
        .collect::<Result<Vec<_>, _>>()?;
    let mode = proof_mode(search.one("proof")?, !filters.is_empty())?;
    let mut page = search.page(AUDIT_PAGE.0, AUDIT_PAGE.1)?;
    if search.count_only {
        if !filters.is_empty() {
            return Err(FhirError {
                element: Some("_summary".into()),
                ..FhirError::new(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    "_summary=count with date is not supported: the ledger proves the count of \
                     a whole history, and a date search's total is known only by reading every \
                     event (page through it, or count without date)",
                )
            });
        }
        // The proven count, no events read.
        page.offset = 0;
        page.count = 0;
    }
    let history = certified_history(&st, &p, page, mode).await?;
    let endpoints = proven_endpoints(&st, &history.events, &history.attestation).await?;
    let mut bundle = audit_searchset(&st, &p, &history, &filters, &endpoints);
    let base = format!("{}/fhir/AuditEvent", st.public_url);
    let fixed = search.fixed(&["patient", "date", "proof"]);
    let height = history.attestation.height;
    bundle["link"] = links_json(if search.count_only {
        summary_links(&base, &fixed, height)
    } else {
        page_links(&base, &fixed, page, height, history.n)
    });
    search.finish(&mut bundle);
    Ok(fhir(StatusCode::OK, &bundle))
}

/// `proof`: `entry` (or absent) or `digest`; a digest proves the whole history, so not with
/// `date`.
fn proof_mode(v: Option<&str>, dated: bool) -> Result<ProofMode, FhirError> {
    let bad = |why: &str| FhirError {
        element: Some("proof".into()),
        ..FhirError::new(StatusCode::BAD_REQUEST, "value", why)
    };
    match v {
        None | Some("entry") => Ok(ProofMode::Entry),
        Some("digest") if dated => Err(bad(
            "proof=digest proves the complete history, and a date search answers part of it: \
             search without date, or with proof=entry",
        )),
        Some("digest") => Ok(ProofMode::Digest),
        Some(_) => Err(bad("proof is entry (each event with its proof) or digest (one proof of the history's digest)")),
    }
}

/// The searchset Bundle of a history page's events that pass `filters`: ids, full URLs and each
/// entry's proof; the certificate and the count's proof (completeness) on the Bundle. With the
/// history's digest (`proof=digest`), its proof goes on the Bundle and an entry carries its
/// value only, except a break-glass or reported event: the fields a review or report writes
/// later are outside the digest, so that entry keeps its own proof.
pub(super) fn audit_searchset(
    st: &State,
    p: &str,
    h: &HistoryPage,
    filters: &[DateFilter],
    endpoints: &Endpoints,
) -> Value {
    let a = &h.attestation;
    let keep = |e: &pb::AccessEvent| filters.iter().all(|f| f.keeps(e.time));
    let kept: Vec<(usize, &pb::AccessEvent)> = h
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| keep(e))
        .collect();
    let chosen: Vec<pb::AccessEvent> = kept.iter().map(|(_, e)| (*e).clone()).collect();
    let mut bundle = fhir_audit_bundle(
        p,
        &chosen,
        &ProvenanceInfo {
            chain_id: st.node.chain_id().to_string(),
            height: a.height,
            app_hash_hex: hex::encode(&a.app_hash),
        },
    );
    if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
        for (entry, (i, e)) in entries.iter_mut().zip(&kept) {
            let id = format!("{}-{}", e.patient_id, e.index);
            let resource = &mut entry["resource"];
            balp(resource, e, endpoints);
            resource["id"] = json!(id);
            let read = &h.reads[i + 1];
            let own_proof = h.digest.is_none() || e.break_glass || e.reported_height != 0;
            resource["meta"] = json!({ "extension": [if own_proof {
                proof_extension(read)
            } else {
                value_extension(read)
            }] });
            entry["fullUrl"] = json!(format!("{}/fhir/AuditEvent/{id}", st.public_url));
            entry["search"] = json!({ "mode": "match" });
        }
    }
    bundle["type"] = json!("searchset");
    // The number of matches over all pages: the proven count, when no date filters (a date
    // search's total is not known without reading every page, so it is left out).
    if filters.is_empty() {
        bundle["total"] = json!(h.n);
    } else if let Some(b) = bundle.as_object_mut() {
        b.remove("total");
    }
    if let Some(ext) = bundle["meta"]["extension"][0]["extension"].as_array_mut() {
        ext.push(json!({ "url": "certificate", "valueBase64Binary": Base64::encode_string(&h.certificate) }));
        ext.push(json!({ "url": "signers", "valueString": a.signers.join(",") }));
    }
    if let Some(exts) = bundle["meta"]["extension"].as_array_mut() {
        exts.push(proof_extension(&h.reads[0]));
        if let Some(d) = &h.digest {
            exts.push(proof_extension(d));
        }
    }
    bundle
}

/// One proven page of `patient`'s history as the search's Bundle (no date filter), with its
/// proofs and certificate: what a Subscription notification carries ([`super::subscription`]).
pub(super) async fn proven_page_bundle(
    st: &State,
    patient: &str,
    page: Page,
) -> Result<Value, FhirError> {
    let history = certified_history(st, patient, page, ProofMode::Entry).await?;
    let endpoints = proven_endpoints(st, &history.events, &history.attestation).await?;
    Ok(audit_searchset(st, patient, &history, &[], &endpoints))
}

/// `GET /fhir/AuditEvent/{patient}-{index}`: one event, proven at the latest certified height.
pub(super) async fn read_audit_event(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let (patient, index) = id
        .rsplit_once('-')
        .and_then(|(p, n)| Some((p, n.parse::<u64>().ok()?)))
        .ok_or_else(|| {
            FhirError::not_found(format!(
                "{id:?} is not an AuditEvent id ({{patient}}-{{index}})"
            ))
        })?;
    require_patient(&st, &authed.who, patient).await?;
    let mut s = ProvenSession::start(&st.client, &st.trust, 0)
        .await
        .map_err(FhirError::unavailable)?;
    let v = s
        .get(&keys::access_event(patient, index))
        .await
        .map_err(FhirError::unavailable)?;
    let e = v
        .map(|b| pb::AccessEvent::decode(b.as_slice()))
        .transpose()
        .map_err(|e| FhirError::unavailable(format!("event {id}: {e}")))?
        .ok_or_else(|| FhirError::not_found(format!("no access event {id} (proven absent)")))?;
    // The reading member's published endpoint, proven in the same state as the event.
    let mut endpoints = Endpoints::new();
    if let Some(g) = s
        .get(&keys::gateway(&e.actor))
        .await
        .map_err(FhirError::unavailable)?
    {
        if let Ok(g) = pb::Gateway::decode(g.as_slice()) {
            endpoints.insert(e.actor.clone(), g.endpoint);
        }
    }
    let a = s.finish(&st.trust).await.map_err(FhirError::unavailable)?;
    let bundle = fhir_audit_bundle(
        patient,
        std::slice::from_ref(&e),
        &ProvenanceInfo {
            chain_id: st.node.chain_id().to_string(),
            height: a.height,
            app_hash_hex: hex::encode(&a.app_hash),
        },
    );
    let mut r = bundle["entry"][0]["resource"].clone();
    balp(&mut r, &e, &endpoints);
    r["id"] = json!(id);
    r["meta"] = verified_meta(st.node.chain_id(), &a);
    Ok(fhir(StatusCode::OK, &r))
}

pub(super) async fn access_csv(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["patient", "_count", "_offset", "_height"])?;
    let p = patient_param(&ps)?;
    require_patient(&st, &authed.who, &p).await?;
    let page = page_params(&ps, CSV_PAGE.0, CSV_PAGE.1)?;
    let HistoryPage {
        n,
        events,
        attestation: a,
        ..
    } = certified_history(&st, &p, page, ProofMode::Entry).await?;
    let mut r = (StatusCode::OK, hipaa_disclosures_csv(&events)).into_response();
    let h = r.headers_mut();
    // RFC 8288 links to the other pages, pinned to this page's certified state.
    let fixed = vec![("patient".to_string(), p.clone())];
    let links = page_links(
        &format!("{}/audit/access.csv", st.public_url),
        &fixed,
        page,
        a.height,
        n,
    )
    .into_iter()
    .filter(|(rel, _)| *rel != "self")
    .map(|(rel, url)| format!("<{url}>; rel=\"{rel}\""))
    .collect::<Vec<_>>()
    .join(", ");
    if let Ok(v) = HeaderValue::from_str(&links) {
        h.insert(header::LINK, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"access-{p}-h{}.csv\"",
        a.height
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("{} {}", a.height, hex::encode(&a.app_hash))) {
        h.insert("medledger-verified-state", v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(practitioner: &str, action: pb::Action) -> pb::AccessEvent {
        pb::AccessEvent {
            patient_id: "pt-1".into(),
            actor: "hospital-a".into(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: pb::Purpose::Treat as i32,
            height: 4,
            time: 1_700_000_000,
            action: action as i32,
            practitioner: practitioner.into(),
            ..Default::default()
        }
    }

    fn resource(e: &pb::AccessEvent, endpoints: &Endpoints) -> Value {
        let proven = ProvenanceInfo {
            chain_id: "c".into(),
            height: 9,
            app_hash_hex: "00".into(),
        };
        let mut r = fhir_audit_bundle("pt-1", std::slice::from_ref(e), &proven)["entry"][0]
            ["resource"]
            .clone();
        balp(&mut r, e, endpoints);
        r
    }

    #[test]
    fn an_access_is_a_balp_rest_interaction_with_the_client_and_its_address() {
        let endpoints: Endpoints = [(
            "hospital-a".to_string(),
            "https://gw.hospital-a.example".to_string(),
        )]
        .into();
        let r = resource(&event("", pb::Action::Read), &endpoints);
        assert_eq!(r["type"]["code"], "rest");
        assert_eq!(
            r["type"]["system"],
            "http://terminology.hl7.org/CodeSystem/audit-event-type"
        );
        assert_eq!(
            r["subtype"],
            json!([{ "system": "http://hl7.org/fhir/restful-interaction", "code": "read", "display": "read" }])
        );
        let client = &r["agent"][0];
        assert_eq!(client["type"]["coding"][0]["code"], "110153");
        assert_eq!(client["requestor"], true);
        assert_eq!(
            client["network"],
            json!({ "address": "https://gw.hospital-a.example", "type": "5" })
        );

        // A practitioner's write: `update`; the practitioner stays the requestor, untouched; a
        // member that published no gateway has no network address.
        let did = "did:key:z6Mk";
        let r = resource(&event(did, pb::Action::Write), &Endpoints::new());
        assert_eq!(r["subtype"][0]["code"], "update");
        assert_eq!(r["agent"][0]["who"]["identifier"]["value"], did);
        assert_eq!(r["agent"][0]["type"]["coding"][0]["code"], "AUT");
        assert_eq!(r["agent"][1]["type"]["coding"][0]["code"], "110153");
        assert!(r["agent"][1].get("network").is_none());
    }
}

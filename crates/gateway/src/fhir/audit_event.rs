//! AuditEvent: the patient's proven access history, paged, and the HIPAA accounting of
//! disclosures as CSV.

use super::*;

/// One proven page of `patient`'s access history at a certified height (the latest, or the
/// page's `_height`): the proven count `n`, the events `offset ..` (at most `count`, none
/// past `n`), the reads (the count's first) and the state's attestation and certificate.
pub(super) struct HistoryPage {
    n: u64,
    events: Vec<pb::AccessEvent>,
    reads: Vec<medledger_query::history::ProvenRead>,
    attestation: Attestation,
    certificate: Vec<u8>,
}

pub(super) async fn certified_history(
    st: &State,
    patient: &str,
    page: Page,
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
    Ok(HistoryPage {
        n,
        events,
        reads,
        attestation,
        certificate,
    })
}

pub(super) fn proof_extension(read: &medledger_query::history::ProvenRead) -> Value {
    let mut parts =
        vec![json!({ "url": "key", "valueString": String::from_utf8_lossy(&read.key) })];
    // An absent key (a history of no events has no count) has no value: its proof is one of
    // absence, and FHIR forbids empty strings.
    if let Some(v) = read.value.as_deref() {
        parts.push(json!({ "url": "value", "valueBase64Binary": Base64::encode_string(v) }));
    }
    parts.push(json!({ "url": "proof", "valueBase64Binary": Base64::encode_string(&read.proof.encode_to_vec()) }));
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
        &["patient", "date", "_count", "_offset", "_height"],
    )?;
    let p = search.patient()?;
    require_patient(&st, &authed.who, &p).await?;
    let filters = search
        .all("date")
        .map(date_filter)
        .collect::<Result<Vec<_>, _>>()?;
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
    let history = certified_history(&st, &p, page).await?;
    let mut bundle = audit_searchset(&st, &p, &history, &filters);
    let base = format!("{}/fhir/AuditEvent", st.public_url);
    let fixed = search.fixed(&["patient", "date"]);
    let height = history.attestation.height;
    bundle["link"] = links_json(if search.count_only {
        summary_links(&base, &fixed, height)
    } else {
        page_links(&base, &fixed, page, height, history.n)
    });
    search.finish(&mut bundle);
    Ok(fhir(StatusCode::OK, &bundle))
}

/// The searchset Bundle of a history page's events that pass `filters`: ids, full URLs and each
/// entry's proof; the certificate and the count's proof (completeness) on the Bundle.
fn audit_searchset(st: &State, p: &str, h: &HistoryPage, filters: &[DateFilter]) -> Value {
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
            resource["id"] = json!(id);
            resource["meta"] = json!({ "extension": [proof_extension(&h.reads[i + 1])] });
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
    }
    bundle
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
    let a = s.finish(&st.trust).await.map_err(FhirError::unavailable)?;
    let e = v
        .map(|b| pb::AccessEvent::decode(b.as_slice()))
        .transpose()
        .map_err(|e| FhirError::unavailable(format!("event {id}: {e}")))?
        .ok_or_else(|| FhirError::not_found(format!("no access event {id} (proven absent)")))?;
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
    } = certified_history(&st, &p, page).await?;
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

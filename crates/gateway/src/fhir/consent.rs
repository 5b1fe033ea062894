//! Consent: search and read (proven), `$prepare` (the tx body the patient signs) and create
//! (the patient's signed tx, relayed).

use super::*;

impl State {
    /// One page of `patient`'s consents in the order granted, read at the certified height
    /// `page.height` (or the latest) and verified together against it: the proven count, the
    /// consents `page.offset ..` (at most `page.count`) and the state's attestation.
    async fn consent_page(
        &self,
        patient: &str,
        page: Page,
    ) -> Result<(u64, Vec<Consent>, Attestation), FhirError> {
        let unavailable = FhirError::unavailable;
        let (height, _) = certified_height(self, page.height).await?;
        let mut s = ProvenSession::start(&self.client, &self.trust, height)
            .await
            .map_err(unavailable)?;
        let n = s
            .get(&keys::patient_consent_count(patient))
            .await
            .map_err(unavailable)?
            .as_deref()
            .and_then(keys::decode_u64)
            .unwrap_or(0);
        let mut out = Vec::new();
        for i in page.offset..page.offset.saturating_add(page.count).min(n) {
            let Some(id) = s
                .get(&keys::patient_consent(patient, i))
                .await
                .map_err(unavailable)?
            else {
                continue;
            };
            let id = String::from_utf8_lossy(&id).into_owned();
            if let Some(c) = s.get(&keys::consent(&id)).await.map_err(unavailable)? {
                out.push(decode_consent(&id, &c)?);
            }
        }
        let a = s.finish(&self.trust).await.map_err(unavailable)?;
        Ok((n, out, a))
    }

    /// Consent `id` at the latest certified height, verified (`None`: proven absent).
    async fn certified_consent(
        &self,
        id: &str,
    ) -> Result<(Option<Consent>, Attestation), FhirError> {
        let unavailable = FhirError::unavailable;
        let mut s = ProvenSession::start(&self.client, &self.trust, 0)
            .await
            .map_err(unavailable)?;
        let v = s.get(&keys::consent(id)).await.map_err(unavailable)?;
        let a = s.finish(&self.trust).await.map_err(unavailable)?;
        Ok((v.map(|v| decode_consent(id, &v)).transpose()?, a))
    }
}

fn decode_consent(id: &str, v: &[u8]) -> Result<Consent, FhirError> {
    Consent::decode(v).map_err(|e| FhirError::unavailable(format!("consent {id}: {e}")))
}

/// A consent's version (`meta.versionId`, the ETag): the height of the block that last changed
/// it, its grant or its revocation. Nothing else about a consent ever changes.
pub(super) fn consent_version(c: &Consent) -> u64 {
    c.granted_height.max(c.revoked_height)
}

/// R4's ETag of a version: `W/"{version}"`.
pub(super) fn etag(version: u64) -> Option<HeaderValue> {
    HeaderValue::from_str(&format!("W/\"{version}\"")).ok()
}

/// The consent as FHIR, with `meta` (the verified state, or none) plus `versionId` and, when
/// the node names the block's time, `lastUpdated`; and its ETag.
async fn versioned(st: &State, c: &Consent, meta: Option<Value>) -> (Value, Option<HeaderValue>) {
    let version = consent_version(c);
    let mut v = map::consent_to_fhir(c);
    v["meta"] = meta.unwrap_or_else(|| json!({}));
    v["meta"]["versionId"] = json!(version.to_string());
    let time = st.block_time(version).await;
    if time != 0 {
        v["meta"]["lastUpdated"] = json!(map::instant(time));
    }
    (v, etag(version))
}

/// `GET /fhir/Consent?patient=…`: one page of the patient's consents, revoked ones included
/// (`_summary=count`: the proven count only).
pub(super) async fn search_consents(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let search = Search::parse(&q, &headers, &["patient", "_count", "_offset", "_height"])?;
    let p = search.patient()?;
    require_patient(&st, &authed.who, &p).await?;
    let mut page = search.page(CONSENT_PAGE.0, CONSENT_PAGE.1)?;
    if search.count_only {
        page.offset = 0;
        page.count = 0;
    }
    let (n, consents, a) = st.consent_page(&p, page).await?;
    let entries = consents
        .iter()
        .map(|c| {
            let mut v = map::consent_to_fhir(c);
            v["meta"] = json!({ "versionId": consent_version(c).to_string() });
            v
        })
        .collect();
    let base = format!("{}/fhir/Consent", st.public_url);
    let fixed = vec![("patient".to_string(), p.clone())];
    let links = if search.count_only {
        summary_links(&base, &fixed, a.height)
    } else {
        page_links(&base, &fixed, page, a.height, n)
    };
    let answer = Answer {
        resource: "Consent",
        total: Some(n),
        links,
        meta: verified_meta(st.node.chain_id(), &a),
    };
    Ok(fhir(
        StatusCode::OK,
        &searchset(&st, answer, entries, &search),
    ))
}

/// `GET /fhir/Consent/{id}`: the consent at the latest certified height, with its version.
pub(super) async fn read_consent(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    if id.is_empty() || id.len() > 128 {
        return Err(FhirError::bad("bad consent id"));
    }
    let (c, a) = st.certified_consent(&id).await?;
    let c = c.ok_or_else(|| FhirError::not_found(format!("no consent {id} (proven absent)")))?;
    if authed.who.subject.acting_member() != Some(c.grantee.as_str()) {
        require_patient(&st, &authed.who, &c.patient_id).await?;
    }
    let (v, tag) = versioned(&st, &c, Some(verified_meta(st.node.chain_id(), &a))).await;
    let mut r = fhir(StatusCode::OK, &v);
    if let Some(tag) = tag {
        r.headers_mut().insert(header::ETAG, tag);
    }
    Ok(r)
}

pub(super) async fn prepare_consent(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    // `_format` passed negotiation (JSON), `_pretty` changes nothing: both are fine here.
    only_params(&ps, &["signer", "_format", "_pretty"])?;
    let v = parse_json(&authed.body)?;
    let mapped = map::map_consent(&v)?;
    let outcome = map::warnings_outcome(&mapped.warnings);
    let (patient_id, msg) = match mapped.value {
        ConsentIntent::Grant { patient_id, grant } => (patient_id, Msg::GrantConsent(grant)),
        ConsentIntent::Revoke {
            patient_id,
            consent_id,
        } => (patient_id, Msg::RevokeConsent(RevokeConsent { consent_id })),
    };
    // Preparing reads the patient's key and sequence: for those who may read the patient.
    require_patient(&st, &authed.who, &patient_id).await?;
    let signer: [u8; 32] =
        match param(&ps, "signer") {
            Some(h) => hex::decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| FhirError::bad("signer must be a hex Ed25519 public key"))?,
            None => {
                let patient: Patient = st
                    .node
                    .read_msg(&keys::patient(&patient_id))
                    .await?
                    .ok_or_else(|| {
                        FhirError::not_found(format!("no patient {patient_id} on the ledger"))
                    })?;
                patient.key.as_slice().try_into().map_err(|_| {
                    FhirError::unavailable("the patient's key on chain is not 32 bytes")
                })?
            }
        };
    prepared(&st, signer, msg, outcome).await
}

pub(super) async fn create_consent(AxState(st): AxState<Arc<State>>, body: Bytes) -> FhirResult {
    let v = parse_json(&body)?;
    match v["resourceType"].as_str() {
        Some("Parameters") => {}
        Some("Consent") => {
            return Err(FhirError {
                element: Some("Consent".into()),
                ..FhirError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "security",
                    "a consent needs the patient's signature, and the gateway never signs for a patient: POST it to Consent/$prepare, sign signBytes with the patient's key, then POST Parameters {txBody, signature, signer} here",
                )
            })
        }
        _ => return Err(FhirError::bad("POST a Parameters resource (txBody, signature, signer)")),
    }
    let (tx, decoded) = signed_parameters(&v, "consent")?;
    if !st.gate.broadcast_allowed(decoded.signer()) {
        return Err(FhirError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "this signer sends txs faster than the gateway relays for one key; retry shortly",
        ));
    }
    let revoke = match &decoded.body().msg {
        Some(Msg::GrantConsent(_)) => false,
        Some(Msg::RevokeConsent(_)) => true,
        _ => return Err(FhirError::bad("the tx must grant or revoke a consent")),
    };
    let committed = st.node.submit(tx).await?;
    if committed.code != 0 {
        return Err(FhirError::ledger(&committed));
    }
    let kind = if revoke {
        "medledger.consent.revoked"
    } else {
        "medledger.consent.granted"
    };
    let id = committed
        .event_attribute(kind, "consent_id")
        .ok_or_else(|| FhirError::unavailable("the committed tx names no consent"))?
        .to_string();
    // The answer is what the ledger now proves (its certificate arrives two blocks later).
    let consent: Consent = st
        .node
        .read_msg_newest(&keys::consent(&id))
        .await?
        .ok_or_else(|| FhirError::unavailable(format!("consent {id} is not readable")))?;
    let (v, tag) = versioned(&st, &consent, None).await;
    let status = if revoke {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut r = fhir(status, &v);
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/fhir/Consent/{id}", st.public_url)) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    if let Some(tag) = tag {
        r.headers_mut().insert(header::ETAG, tag);
    }
    Ok(r)
}

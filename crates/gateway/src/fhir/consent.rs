//! Consent: search and read (proven), `$prepare` (the tx body the patient signs) and create
//! (the patient's signed tx, relayed).

use super::*;

impl State {
    /// Reads `keys` (each may depend on nothing but the previous answers, so this takes a
    /// closure) at the latest certified height and verifies them against the certificate.
    async fn certified_consents(
        &self,
        patient: Option<&str>,
        id: Option<&str>,
    ) -> Result<(Vec<Consent>, Attestation), FhirError> {
        let mut s = ProvenSession::start(&self.client, &self.trust, 0)
            .await
            .map_err(FhirError::unavailable)?;
        let mut ids = Vec::new();
        if let Some(p) = patient {
            let n = s
                .get(&keys::patient_consent_count(p))
                .await
                .map_err(FhirError::unavailable)?
                .as_deref()
                .and_then(keys::decode_u64)
                .unwrap_or(0);
            if n > MAX_SEARCH {
                return Err(FhirError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "too-costly",
                    format!("{n} consents: more than the {MAX_SEARCH} one search answers"),
                ));
            }
            for i in 0..n {
                if let Some(v) = s
                    .get(&keys::patient_consent(p, i))
                    .await
                    .map_err(FhirError::unavailable)?
                {
                    ids.push(String::from_utf8_lossy(&v).into_owned());
                }
            }
        }
        if let Some(id) = id {
            ids.push(id.to_string());
        }
        let mut out = Vec::new();
        for id in &ids {
            if let Some(v) = s
                .get(&keys::consent(id))
                .await
                .map_err(FhirError::unavailable)?
            {
                out.push(
                    Consent::decode(v.as_slice())
                        .map_err(|e| FhirError::unavailable(format!("consent {id}: {e}")))?,
                );
            }
        }
        let a = s
            .finish(&self.trust)
            .await
            .map_err(FhirError::unavailable)?;
        Ok((out, a))
    }
}

pub(super) async fn search_consents(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["patient"])?;
    let p = patient_param(&ps)?;
    require_patient(&st, &authed.who, &p).await?;
    let (consents, a) = st.certified_consents(Some(&p), None).await?;
    let entries = consents.iter().map(map::consent_to_fhir).collect();
    Ok(fhir(
        StatusCode::OK,
        &searchset(
            &st,
            "Consent",
            &[("patient".into(), p.clone())],
            entries,
            verified_meta(st.node.chain_id(), &a),
        ),
    ))
}

pub(super) async fn read_consent(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    if id.is_empty() || id.len() > 128 {
        return Err(FhirError::bad("bad consent id"));
    }
    let (consents, a) = st.certified_consents(None, Some(&id)).await?;
    let c = consents
        .first()
        .ok_or_else(|| FhirError::not_found(format!("no consent {id} (proven absent)")))?;
    if authed.who.subject.acting_member() != Some(c.grantee.as_str()) {
        require_patient(&st, &authed.who, &c.patient_id).await?;
    }
    let mut v = map::consent_to_fhir(c);
    v["meta"] = verified_meta(st.node.chain_id(), &a);
    Ok(fhir(StatusCode::OK, &v))
}

pub(super) async fn prepare_consent(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["signer"])?;
    let v = parse_json(&authed.body)?;
    let (patient_id, msg) = match map::consent_from_fhir(&v)? {
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
    prepared(&st, signer, msg).await
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
    let mut r = fhir(
        if revoke {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        &map::consent_to_fhir(&consent),
    );
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/fhir/Consent/{id}", st.public_url)) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

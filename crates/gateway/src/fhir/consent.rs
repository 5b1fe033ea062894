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
    let signer = signer_of(&st, param(&ps, "signer"), &patient_id).await?;
    prepared(&st, signer, msg, outcome).await
}

/// The key that will sign a prepared consent tx: the `signer` query parameter (hex), or by
/// default the key the ledger holds for the patient.
async fn signer_of(
    st: &State,
    signer: Option<&str>,
    patient_id: &str,
) -> Result<[u8; 32], FhirError> {
    if let Some(h) = signer {
        return hex::decode(h)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| FhirError::bad("signer must be a hex Ed25519 public key"));
    }
    let patient: Patient = st
        .node
        .read_msg(&keys::patient(patient_id))
        .await?
        .ok_or_else(|| FhirError::not_found(format!("no patient {patient_id} on the ledger")))?;
    patient
        .key
        .as_slice()
        .try_into()
        .map_err(|_| FhirError::unavailable("the patient's key on chain is not 32 bytes"))
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
    let revoke = match &decoded.body().msg {
        Some(Msg::GrantConsent(_)) => false,
        Some(Msg::RevokeConsent(_)) => true,
        _ => return Err(FhirError::bad("the tx must grant or revoke a consent")),
    };
    let (id, consent) = relay(&st, tx, &decoded, revoke).await?;
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

/// Relays a patient's signed grant or revocation (`revoke`) and reads back what the ledger now
/// holds: the consent's id and the consent (its certificate arrives two blocks later).
async fn relay(
    st: &State,
    tx: Vec<u8>,
    decoded: &medledger_tx::VerifiedTx,
    revoke: bool,
) -> Result<(String, Consent), FhirError> {
    if !st.gate.broadcast_allowed(decoded.signer()) {
        return Err(FhirError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "this signer sends txs faster than the gateway relays for one key; retry shortly",
        ));
    }
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
    // The answer is what the ledger now holds (its certificate arrives two blocks later).
    let consent: Consent = st
        .node
        .read_msg_newest(&keys::consent(&id))
        .await?
        .ok_or_else(|| FhirError::unavailable(format!("consent {id} is not readable")))?;
    Ok((id, consent))
}

/// The version an `If-Match` names (`W/"{version}"`, or the strong `"{version}"`): 428 when
/// there is none (an update of a consent always names the version it read), 412 when it is
/// not `current`.
fn if_match(headers: &HeaderMap, id: &str, current: u64) -> Result<(), FhirError> {
    let Some(h) = headers.get(header::IF_MATCH) else {
        return Err(FhirError {
            element: Some("If-Match".into()),
            ..FhirError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "required",
                format!(
                    "an update of Consent/{id} must name the version it read: send \
                     If-Match: W/\"{current}\" (the ETag of GET Consent/{id}) if that is the \
                     one you mean to change"
                ),
            )
        });
    };
    let named = h
        .to_str()
        .ok()
        .map(|t| t.trim())
        .map(|t| t.strip_prefix("W/").unwrap_or(t))
        .and_then(|t| t.strip_prefix('"')?.strip_suffix('"'))
        .and_then(|v| v.parse::<u64>().ok());
    if named == Some(current) {
        return Ok(());
    }
    Err(FhirError {
        element: Some("If-Match".into()),
        ..FhirError::new(
            StatusCode::PRECONDITION_FAILED,
            "conflict",
            format!(
                "If-Match {:?} is not the current version of Consent/{id}, W/\"{current}\": \
                 it changed since you read it; read it again (GET Consent/{id})",
                String::from_utf8_lossy(h.as_bytes())
            ),
        )
    })
}

/// `PUT /fhir/Consent/{id}`: revoke by update, the patient still signing (docs/fhir.md,
/// "Revoking by PUT"). Always with `If-Match` naming the current version (428 without, 412
/// when stale). The body is either
/// - the Consent as read with `status: inactive` (nothing else may differ: 422 naming each
///   element that does): answered `202 Accepted` with the `Parameters {txBody, signBytes,
///   signer, sequence}` of the RevokeConsent the patient signs, nothing changed yet; the same
///   Consent with its current status changes nothing (200, the consent);
/// - or the signed `Parameters {txBody, signature, signer}` of that RevokeConsent: relayed, and
///   answered 200 with the revoked Consent and its new ETag.
pub(super) async fn update_consent(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["signer", "_format", "_pretty"])?;
    // Who may read it may ask to revoke it; only the patient's signature revokes.
    readable_consent(&st, &authed.who, &id).await?;
    // The consent as committed (a revocation just answered is already its current version).
    let c: Consent = st
        .node
        .read_msg_newest(&keys::consent(&id))
        .await?
        .ok_or_else(|| FhirError::not_found(format!("no consent {id}")))?;
    if_match(&headers, &id, consent_version(&c))?;
    let v = parse_json(&authed.body)?;
    match v["resourceType"].as_str() {
        Some("Consent") => put_consent(&st, &c, &v, param(&ps, "signer")).await,
        Some("Parameters") => put_signed(&st, &id, &v).await,
        _ => Err(FhirError {
            element: Some("resourceType".into()),
            ..FhirError::bad(format!(
                "PUT Consent/{id} takes the Consent (status inactive), or the Parameters \
                 {{txBody, signature, signer}} of its signed revocation"
            ))
        }),
    }
}

/// A PUT of the Consent itself: the revocation to sign (202), or no change (200).
async fn put_consent(st: &State, c: &Consent, v: &Value, signer: Option<&str>) -> FhirResult {
    let id = c.id.as_str();
    if v["id"].as_str() != Some(id) {
        return Err(FhirError {
            element: Some("Consent.id".into()),
            ..FhirError::bad(format!(
                "Consent.id must be {id:?}, the id in the URL (R4: an update carries its id)"
            ))
        });
    }
    map::consent_update(v, &map::consent_to_fhir(c))?;
    let revoked = c.revoked_height != 0;
    match (v["status"].as_str(), revoked) {
        (Some("inactive"), true) | (Some("active"), false) => {
            // Nothing changes: the consent as it is.
            let (v, tag) = versioned(st, c, None).await;
            let mut r = fhir(StatusCode::OK, &v);
            if let Some(tag) = tag {
                r.headers_mut().insert(header::ETAG, tag);
            }
            Ok(r)
        }
        (Some("inactive"), false) => {
            let signer = signer_of(st, signer, &c.patient_id).await?;
            let outcome = operation_outcome(
                "information",
                "informational",
                &format!(
                    "nothing has changed yet: the patient signs signBytes with their key, then \
                     PUT Parameters {{txBody, signature, signer}} to Consent/{id} with the same \
                     If-Match; the gateway never signs for a patient"
                ),
                None,
                None,
            );
            let msg = Msg::RevokeConsent(RevokeConsent {
                consent_id: id.to_string(),
            });
            let mut r = prepared(st, signer, msg, Some(outcome)).await?;
            *r.status_mut() = StatusCode::ACCEPTED;
            Ok(r)
        }
        (Some("active"), true) => Err(FhirError {
            element: Some("Consent.status".into()),
            ..FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "business-rule",
                format!("consent {id} is revoked, and a revocation is final: grant a new consent"),
            )
        }),
        (other, _) => Err(FhirError {
            element: Some("Consent.status".into()),
            ..FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                if other.is_some() { "value" } else { "required" },
                format!("an update of a consent sets status inactive (revoking it), not {other:?}"),
            )
        }),
    }
}

/// A PUT of the signed revocation of consent `id`: relayed; the revoked Consent (200).
async fn put_signed(st: &State, id: &str, v: &Value) -> FhirResult {
    let (tx, decoded) = signed_parameters(v, "revocation")?;
    match &decoded.body().msg {
        Some(Msg::RevokeConsent(m)) if m.consent_id == id => {}
        _ => {
            return Err(FhirError {
                element: Some("Parameters.parameter.where(name = 'txBody')".into()),
                ..FhirError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "business-rule",
                    format!(
                        "PUT Consent/{id} relays the revocation of consent {id} only: the signed \
                         txBody must be the RevokeConsent that PUT of the inactive Consent \
                         answered"
                    ),
                )
            })
        }
    }
    let (id, consent) = relay(st, tx, &decoded, true).await?;
    let (v, tag) = versioned(st, &consent, None).await;
    let mut r = fhir(StatusCode::OK, &v);
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/fhir/Consent/{id}", st.public_url)) {
        r.headers_mut().insert(header::CONTENT_LOCATION, loc);
    }
    if let Some(tag) = tag {
        r.headers_mut().insert(header::ETAG, tag);
    }
    Ok(r)
}

/// The heights of consent `c`'s versions, oldest first: its grant, and its revocation if it is
/// revoked. Nothing else about a consent ever changes, so these are all its versions.
fn version_heights(c: &Consent) -> Vec<u64> {
    let mut v = vec![c.granted_height];
    if c.revoked_height != 0 {
        v.push(c.revoked_height);
    }
    v
}

/// Whether a node refused a read because it pruned that height (query code 103,
/// docs/reliability.md, "Pruning"; the client names the code as `(code 103)`).
fn is_pruned(e: &anyhow::Error) -> bool {
    format!("{e:#}").contains(&format!(
        "(code {})",
        medledger_tx::QueryCode::Pruned as u32
    ))
}

/// Consent `id` as it stood at state `height`, read there with its proof and verified against
/// that height's certified app hash: the Consent with `meta` (the verified state, its version
/// and `lastUpdated`) and the proof extension, as the AuditEvent search carries it. `Err(why)`:
/// the node pruned that height, so the version cannot be proven.
async fn consent_at(st: &State, id: &str, height: u64) -> Result<Result<Value, String>, FhirError> {
    let (read, answered) = match st.client.read_with_proof(&keys::consent(id), height).await {
        Ok(r) => r,
        Err(e) if is_pruned(&e) => return Ok(Err(format!("{e:#}"))),
        Err(e) => return Err(FhirError::unavailable(e)),
    };
    if answered != height {
        return Err(FhirError::unavailable(format!(
            "the node answered state {answered} for state {height}"
        )));
    }
    let a = attest(&st.client, &st.trust, height)
        .await
        .map_err(FhirError::unavailable)?;
    medledger_query::verify(&a.app_hash, &read.key, read.value.as_deref(), &read.proof).map_err(
        |e| {
            FhirError::unavailable(format!(
                "consent {id} at state {height} does not verify: {e}"
            ))
        },
    )?;
    let bytes = read.value.as_deref().ok_or_else(|| {
        FhirError::unavailable(format!(
            "consent {id} is proven absent at its own version {height}"
        ))
    })?;
    let c = decode_consent(id, bytes)?;
    let (mut v, _) = versioned(st, &c, Some(verified_meta(st.node.chain_id(), &a))).await;
    if let Some(ext) = v["meta"]["extension"].as_array_mut() {
        ext.push(super::audit_event::proof_extension(&read));
    }
    Ok(Ok(v))
}

/// The certified consent `id` for `who` (its grantee, or those who may read its patient), or
/// 404 when proven absent.
async fn readable_consent(st: &State, who: &Requester, id: &str) -> Result<Consent, FhirError> {
    if id.is_empty() || id.len() > 128 {
        return Err(FhirError::bad("bad consent id"));
    }
    let (c, _) = st.certified_consent(id).await?;
    let c = c.ok_or_else(|| FhirError::not_found(format!("no consent {id} (proven absent)")))?;
    if who.subject.acting_member() != Some(c.grantee.as_str()) {
        require_patient(st, who, &c.patient_id).await?;
    }
    Ok(c)
}

/// A `history` Bundle of consent `id`'s versions (`(version, read)`, oldest first; answered
/// newest first, as R4 orders a history). A proven version is an entry with its Consent; one the
/// node cannot prove (`Err(why)`: its height is pruned) is an entry without a resource whose
/// `response.outcome` is an OperationOutcome saying so. `base` is the server's `…/fhir`.
pub(super) fn history_bundle(
    base: &str,
    id: &str,
    versions: Vec<(u64, Result<Value, String>)>,
) -> Value {
    let total = versions.len();
    let entries: Vec<Value> = versions
        .into_iter()
        .enumerate()
        .rev()
        .map(|(i, (version, read))| {
            // The first version is the grant (a create), the second the revocation (an update).
            let (method, url, status) = if i == 0 {
                ("POST", "Consent".to_string(), "201 Created")
            } else {
                ("PUT", format!("Consent/{id}"), "200 OK")
            };
            let mut e = json!({
                "fullUrl": format!("{base}/Consent/{id}"),
                "request": { "method": method, "url": url },
                "response": { "status": status, "etag": format!("W/\"{version}\"") },
            });
            match read {
                Ok(resource) => {
                    if let Some(t) = resource["meta"]["lastUpdated"].as_str() {
                        e["response"]["lastModified"] = json!(t);
                    }
                    e["resource"] = resource;
                }
                Err(why) => {
                    e["response"]["outcome"] = operation_outcome(
                        "warning",
                        "not-found",
                        &format!(
                            "version {version} of consent {id} (the state at height {version}) \
                             cannot be proven: this node has pruned that height ({why}); the \
                             current consent (GET Consent/{id}) still proves both heights"
                        ),
                        None,
                        None,
                    );
                }
            }
            e
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": [{ "relation": "self", "url": format!("{base}/Consent/{id}/_history") }],
        "entry": entries,
    })
}

/// `GET /fhir/Consent/{id}/_history`: every version of the consent (its grant and, if revoked,
/// its revocation), each read and proven at its own height. 410 when the node has pruned every
/// one of them.
pub(super) async fn consent_history(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let c = readable_consent(&st, &authed.who, &id).await?;
    let mut versions = Vec::new();
    for h in version_heights(&c) {
        versions.push((h, consent_at(&st, &id, h).await?));
    }
    if versions.iter().all(|(_, r)| r.is_err()) {
        return Err(FhirError::new(
            StatusCode::GONE,
            "not-found",
            format!(
                "no version of consent {id} can be proven: this node has pruned every height it \
                 changed at ({}); GET Consent/{id} reads the current one",
                version_heights(&c)
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let base = format!("{}/fhir", st.public_url);
    Ok(fhir(StatusCode::OK, &history_bundle(&base, &id, versions)))
}

/// `GET /fhir/Consent/{id}/_history/{vid}`: one version (`vid` a height its history names),
/// read and proven at its height, with its ETag; 404 for a version it does not have, 410 when the
/// node has pruned that height.
pub(super) async fn consent_vread(
    AxState(st): AxState<Arc<State>>,
    Path((id, vid)): Path<(String, String)>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let c = readable_consent(&st, &authed.who, &id).await?;
    let heights = version_heights(&c);
    let Some(version) = vid.parse::<u64>().ok().filter(|v| heights.contains(v)) else {
        return Err(FhirError::not_found(format!(
            "consent {id} has no version {vid:?}: its versions are {}",
            heights
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let v = consent_at(&st, &id, version).await?.map_err(|why| {
        FhirError::new(
            StatusCode::GONE,
            "not-found",
            format!(
                "version {version} of consent {id} cannot be proven: this node has pruned that \
                 height ({why})"
            ),
        )
    })?;
    let mut r = fhir(StatusCode::OK, &v);
    if let Some(tag) = etag(version) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_history_lists_the_versions_newest_first_and_names_the_unproven_one() {
        let base = "https://gw.example/fhir";
        let v1 = json!({ "resourceType": "Consent", "id": "c-1", "status": "active",
            "meta": { "versionId": "40", "lastUpdated": "2026-11-26T00:00:00Z" } });
        let b = history_bundle(base, "c-1", vec![(40, Ok(v1)), (52, Err("pruned".into()))]);
        assert_eq!(
            (b["type"].clone(), b["total"].clone()),
            (json!("history"), json!(2))
        );
        let newest = &b["entry"][0];
        assert!(newest.get("resource").is_none(), "{newest}");
        assert_eq!(
            newest["request"],
            json!({ "method": "PUT", "url": "Consent/c-1" })
        );
        assert_eq!(newest["response"]["etag"], "W/\"52\"");
        let outcome = &newest["response"]["outcome"];
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert!(outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("pruned"));
        let oldest = &b["entry"][1];
        assert_eq!(oldest["resource"]["status"], "active");
        assert_eq!(oldest["request"]["method"], "POST");
        assert_eq!(oldest["response"]["lastModified"], "2026-11-26T00:00:00Z");
        assert_eq!(oldest["fullUrl"], "https://gw.example/fhir/Consent/c-1");
    }

    #[test]
    fn a_revoked_consent_has_two_versions_and_code_103_is_pruned() {
        let c = Consent {
            granted_height: 40,
            revoked_height: 52,
            ..Default::default()
        };
        assert_eq!(version_heights(&c), [40, 52]);
        let active = Consent {
            granted_height: 40,
            ..Default::default()
        };
        assert_eq!(version_heights(&active), [40]);
        let e = anyhow::anyhow!("query consent/c-1 failed: height 3 is pruned (code 103)");
        assert!(is_pruned(&e.context("reading")));
        assert!(!is_pruned(&anyhow::anyhow!("failed (code 102)")));
    }
}

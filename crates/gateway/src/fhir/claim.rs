//! Claim and ClaimResponse: a provider's claim (`$prepare`, then submitted), and the payer's
//! proven answers.

use super::*;

/// 403 unless `who` bills for this gateway's member: its admin, or an active practitioner of a
/// provider role (the ledger's own table).
pub(super) fn require_biller(st: &State, who: &Requester) -> Result<(), FhirError> {
    if st.acts_for_member(who, &medledger_tx::rules::claims::PROVIDER_ROLES) {
        return Ok(());
    }
    Err(FhirError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "claims are submitted here by {}'s admin key or its active physicians, nurses, lab \
             technicians and claims adjusters (the ledger's provider roles)",
            st.member_id
        ),
    ))
}

/// A FHIR Claim as the ledger's SubmitClaim, for this gateway's member only.
pub(super) fn claim_msg(st: &State, v: &Value) -> Result<Msg, FhirError> {
    claim_mapped(st, v).map(|(msg, _)| msg)
}

/// [`claim_msg`], with the mapping's warnings as an OperationOutcome (for `$prepare`).
fn claim_mapped(st: &State, v: &Value) -> Result<(Msg, Option<Value>), FhirError> {
    let mapped = map::map_claim(v)?;
    let outcome = map::warnings_outcome(&mapped.warnings);
    let (claim, provider) = mapped.value;
    if let Some(p) = provider {
        if p != st.member_id {
            return Err(FhirError {
                element: Some("Claim.provider".into()),
                ..FhirError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "this gateway submits claims of {} only, not {p}",
                        st.member_id
                    ),
                )
            });
        }
    }
    Ok((Msg::SubmitClaim(claim), outcome))
}

/// `POST /fhir/Claim/$prepare`: the SubmitClaim tx body for the requester's own key to sign (a
/// practitioner's claim is signed by the practitioner, so the chain names who billed).
pub(super) async fn prepare_claim(
    AxState(st): AxState<Arc<State>>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    require_biller(&st, &authed.who)?;
    let (msg, outcome) = claim_mapped(&st, &parse_json(&authed.body)?)?;
    prepared(&st, authed.who.key, msg, outcome).await
}

/// `POST /fhir/Claim`: a Claim from the member's admin key (the gateway signs with that key), or
/// `Parameters {txBody, signature, signer}` from `$prepare`, signed by the requester itself and
/// relayed as signed. A practitioner's Claim must come signed: the gateway never signs in the
/// member's name for a person.
pub(super) async fn submit_claim(
    AxState(st): AxState<Arc<State>>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    require_biller(&st, &authed.who)?;
    let v = parse_json(&authed.body)?;
    let committed = if v["resourceType"] == "Parameters" {
        let (tx, decoded) = signed_parameters(&v, "claim")?;
        if decoded.signer() != &authed.who.key {
            return Err(FhirError {
                issue: "security",
                ..FhirError::bad("the claim tx must be signed by the key that makes the request")
            });
        }
        if !matches!(decoded.body().msg, Some(Msg::SubmitClaim(_))) {
            return Err(FhirError::bad("the tx must submit a claim"));
        }
        if !st.gate.broadcast_allowed(decoded.signer()) {
            return Err(FhirError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                "this signer sends txs faster than the gateway relays for one key; retry shortly",
            ));
        }
        st.node.submit(tx).await?
    } else {
        if !matches!(authed.who.subject, crate::auth::Subject::Member(_)) {
            return Err(FhirError {
                element: Some("Claim".into()),
                ..FhirError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "security",
                    "a practitioner signs their own claim, so the ledger names who billed: POST the Claim to Claim/$prepare, sign signBytes with your key, then POST Parameters {txBody, signature, signer} here",
                )
            });
        }
        st.submit(claim_msg(&st, &v)?).await?
    };
    if committed.code != 0 {
        return Err(FhirError::ledger(&committed));
    }
    let id = committed
        .event_attribute("medledger.claim.submitted", "claim_id")
        .ok_or_else(|| FhirError::unavailable("the committed claim names no id"))?
        .to_string();
    let c: Claim = st
        .node
        .read_msg_newest(&keys::claim(&id))
        .await?
        .ok_or_else(|| FhirError::unavailable(format!("claim {id} is not readable")))?;
    let created = st.block_time(c.submitted_height).await;
    let mut r = fhir(StatusCode::CREATED, &map::claim_response(&c, created));
    // What was created is the Claim (`Location`, R4's create); the body is its ClaimResponse,
    // which has the claim's id (`Content-Location`).
    for (name, path) in [
        (header::LOCATION, "Claim"),
        (header::CONTENT_LOCATION, "ClaimResponse"),
    ] {
        if let Ok(v) = HeaderValue::from_str(&format!("{}/fhir/{path}/{id}", st.public_url)) {
            r.headers_mut().insert(name, v);
        }
    }
    Ok(r)
}

/// 403 unless `who` may read claim `c` (its patient, provider, insurer, auditors).
pub(super) async fn require_claim(st: &State, who: &Requester, c: &Claim) -> Result<(), FhirError> {
    if access::may_read_claim(&st.node, &st.decisions, who, c).await? {
        return Ok(());
    }
    Err(FhirError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "claim {} is read by its patient, provider {}, insurer {} and auditors only",
            c.id, c.provider, c.insurer
        ),
    ))
}

pub(super) async fn certified_claim(
    st: &State,
    id: &str,
) -> Result<(Option<Claim>, Attestation), FhirError> {
    let mut s = ProvenSession::start(&st.client, &st.trust, 0)
        .await
        .map_err(FhirError::unavailable)?;
    let v = s
        .get(&keys::claim(id))
        .await
        .map_err(FhirError::unavailable)?;
    let a = s.finish(&st.trust).await.map_err(FhirError::unavailable)?;
    let c = v
        .map(|b| Claim::decode(b.as_slice()))
        .transpose()
        .map_err(|e| FhirError::unavailable(format!("claim {id}: {e}")))?;
    Ok((c, a))
}

/// `GET /fhir/ClaimResponse?request=Claim/{id}`: the claim's ClaimResponse, or none.
pub(super) async fn search_claim_responses(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    // `_count` is taken and checked as in the other searches, but a search here has one match
    // at most: one page.
    let search = Search::parse(&q, &headers, &["request", "_count"])?;
    search.page(1, CONSENT_PAGE.1)?;
    let r = search
        .one("request")?
        .ok_or_else(|| FhirError::bad("the request parameter (Claim/{id}) is required"))?;
    let id = r.strip_prefix("Claim/").unwrap_or(r);
    let (c, a) = certified_claim(&st, id).await?;
    let mut entries = Vec::new();
    if let Some(c) = &c {
        require_claim(&st, &authed.who, c).await?;
        let created = st.block_time(c.submitted_height).await;
        entries.push(map::claim_response(c, created));
    }
    let fixed = [("request".to_string(), format!("Claim/{id}"))];
    let base = format!("{}/fhir/ClaimResponse", st.public_url);
    let links = if search.count_only {
        summary_links(&base, &fixed, a.height)
    } else {
        vec![("self", url_of(&base, &fixed))]
    };
    let answer = Answer {
        resource: "ClaimResponse",
        total: Some(u64::from(c.is_some())),
        links,
        meta: verified_meta(st.node.chain_id(), &a),
    };
    Ok(fhir(
        StatusCode::OK,
        &searchset(&st, answer, entries, &search),
    ))
}

pub(super) async fn read_claim_response(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let (c, a) = certified_claim(&st, &id).await?;
    let c = c.ok_or_else(|| FhirError::not_found(format!("no claim {id} (proven absent)")))?;
    require_claim(&st, &authed.who, &c).await?;
    let created = st.block_time(c.submitted_height).await;
    let mut v = map::claim_response(&c, created);
    v["meta"] = verified_meta(st.node.chain_id(), &a);
    Ok(fhir(StatusCode::OK, &v))
}

/// `GET /fhir/Claim/{id}`: the claim as the FHIR Claim the ledger records, read at the latest
/// certified height and verified (`meta`: the verified state), for those who may read it.
pub(super) async fn read_claim(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    if id.is_empty() || id.len() > 128 {
        return Err(FhirError::bad("bad claim id"));
    }
    let (c, a) = certified_claim(&st, &id).await?;
    let c = c.ok_or_else(|| FhirError::not_found(format!("no claim {id} (proven absent)")))?;
    require_claim(&st, &authed.who, &c).await?;
    let created = st.block_time(c.submitted_height).await;
    let mut v = map::claim_to_fhir(&c, created);
    v["meta"] = verified_meta(st.node.chain_id(), &a);
    Ok(fhir(StatusCode::OK, &v))
}

//! FHIR R4 over HTTP (`application/fhir+json`): consents, audit events, claims and the vault's
//! records, answered from state proven against a BLS checkpoint certificate (docs/fhir.md).
//!
//! The gateway never signs for a patient: a Consent is prepared here (`$prepare` answers the tx
//! body and the exact bytes to sign), signed by the patient wherever their key is, and posted
//! back signed. Claims are signed requests (RFC 9421) of the provider's admin or practitioners;
//! the gateway submits them as its member. Records go through the same consent check and access
//! logging as `GET /records/{id}`.

pub mod map;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64ct::{Base64, Encoding};
use medledger_client::verify::{attest, Attestation, ProvenSession};
use medledger_query::export::{
    fhir_audit_bundle, hipaa_disclosures_csv, ProvenanceInfo, VERIFIED_STATE_EXTENSION_URL,
};
use medledger_query::history::verify_access_page;
use medledger_tx::check::check_body;
use medledger_tx::envelope::signing_bytes;
use medledger_tx::pb::{self, tx_body::Msg, Claim, Consent, Patient, RevokeConsent, TxBody};
use medledger_tx::{decode_tx, keys, Code};
use prost::Message;
use serde_json::{json, Value};

use crate::access;
use crate::auth::{FhirAuthed, Requester};
use crate::node::Committed;
use crate::server::State;
use map::{ConsentIntent, Unrepresentable};

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Most consents one FHIR search answers (larger lists: the CLI's `query --prove`).
pub const MAX_SEARCH: u64 = 5_000;

/// Access events per AuditEvent search page: the default and the most (`_count`); larger
/// histories are read page by page (`next` links).
pub const AUDIT_PAGE: (u64, u64) = (100, 1_000);

/// Rows per page of the HIPAA CSV: the default and the most (`_count`); a longer history
/// continues at the `Link: <…>; rel="next"` header's URL.
pub const CSV_PAGE: (u64, u64) = (1_000, 1_000);

/// Extension on each entry: the state key, value and ICS23 proof (protobuf
/// `cosmos.ics23.v1.CommitmentProof`) that verify the entry against the Bundle's app hash.
pub const PROOF_EXTENSION_URL: &str = "urn:medledger:fhir:StructureDefinition:ics23-proof";

/// The resource types read from the vault at `GET /fhir/{type}/{id}` (clinical data a member
/// stores; the ledger's own resources have their own routes, anything else is 404).
pub const RECORD_TYPES: &[&str] = &[
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
    "MedicationRequest",
    "Condition",
    "Procedure",
    "Immunization",
    "AllergyIntolerance",
    "ImagingStudy",
];

/// A FHIR error: an OperationOutcome with an HTTP status.
#[derive(Debug)]
pub struct FhirError {
    status: StatusCode,
    /// R4 IssueType code.
    issue: &'static str,
    diagnostics: String,
    /// The element at fault (`OperationOutcome.issue.expression`).
    element: Option<String>,
    /// The ledger's code and its name.
    ledger: Option<(u32, String)>,
}

impl FhirError {
    fn new(status: StatusCode, issue: &'static str, msg: impl Into<String>) -> FhirError {
        FhirError {
            status,
            issue,
            diagnostics: msg.into(),
            element: None,
            ledger: None,
        }
    }

    fn bad(msg: impl Into<String>) -> FhirError {
        FhirError::new(StatusCode::BAD_REQUEST, "invalid", msg)
    }

    fn not_found(msg: impl Into<String>) -> FhirError {
        FhirError::new(StatusCode::NOT_FOUND, "not-found", msg)
    }

    fn unavailable(e: impl std::fmt::Display) -> FhirError {
        FhirError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transient",
            format!("the ledger could not be read and verified: {e:#}"),
        )
    }

    fn ledger(c: &Committed) -> FhirError {
        let (status, issue) = match Code::from_value(c.code) {
            Some(Code::UnknownRecord) => (StatusCode::NOT_FOUND, "not-found"),
            Some(Code::RecordErased) => (StatusCode::GONE, "deleted"),
            Some(Code::SequenceReused | Code::SequenceGap | Code::RecordExists) => {
                (StatusCode::CONFLICT, "conflict")
            }
            Some(code) if code.value() < 20 => (StatusCode::BAD_REQUEST, "invalid"),
            Some(Code::NodeStorage) => (StatusCode::SERVICE_UNAVAILABLE, "transient"),
            _ => (StatusCode::FORBIDDEN, "forbidden"),
        };
        FhirError {
            status,
            issue,
            diagnostics: format!("the ledger refused: {} ({})", c.log, c.code_name),
            element: None,
            ledger: Some((c.code, c.code_name.clone())),
        }
    }
}

impl From<Unrepresentable> for FhirError {
    fn from(u: Unrepresentable) -> FhirError {
        FhirError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            issue: "not-supported",
            diagnostics: format!("{}: {}", u.element, u.reason),
            element: Some(u.element),
            ledger: None,
        }
    }
}

impl From<crate::server::ApiError> for FhirError {
    fn from(e: crate::server::ApiError) -> FhirError {
        let (status, body) = e.parts();
        let issue = match status.as_u16() {
            400 => "invalid",
            401 => "login",
            403 => "forbidden",
            404 => "not-found",
            409 => "conflict",
            410 => "deleted",
            413 => "too-long",
            503 => "transient",
            _ => "exception",
        };
        FhirError {
            status,
            issue,
            diagnostics: body.error,
            element: None,
            ledger: body.code.zip(body.code_name),
        }
    }
}

impl From<crate::node::NodeError> for FhirError {
    fn from(e: crate::node::NodeError) -> FhirError {
        crate::server::ApiError::from(e).into()
    }
}

/// An OperationOutcome.
pub fn operation_outcome(
    severity: &str,
    issue: &str,
    diagnostics: &str,
    element: Option<&str>,
    ledger: Option<(u32, &str)>,
) -> Value {
    let mut i = json!({ "severity": severity, "code": issue, "diagnostics": diagnostics });
    if let Some((code, name)) = ledger {
        i["details"] = json!({
            "coding": [{ "system": map::LEDGER_CODE_SYSTEM, "code": name, "display": format!("ledger code {code}") }],
            "text": format!("{name} ({code})"),
        });
    }
    if let Some(e) = element {
        i["expression"] = json!([e]);
    }
    json!({ "resourceType": "OperationOutcome", "issue": [i] })
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = operation_outcome(
            "error",
            self.issue,
            &self.diagnostics,
            self.element.as_deref(),
            self.ledger.as_ref().map(|(c, n)| (*c, n.as_str())),
        );
        let mut r = fhir(self.status, &body);
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// A FHIR JSON answer.
pub fn fhir(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    r
}

type FhirResult = Result<Response, FhirError>;

pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .route("/fhir/Consent", get(search_consents).post(create_consent))
        .route("/fhir/Consent/$prepare", post(prepare_consent))
        .route("/fhir/Consent/{id}", get(read_consent))
        .route("/fhir/AuditEvent", get(search_audit_events))
        .route("/fhir/AuditEvent/{id}", get(read_audit_event))
        .route("/fhir/Claim", post(submit_claim))
        .route("/fhir/Claim/$prepare", post(prepare_claim))
        .route("/fhir/ClaimResponse", get(search_claim_responses))
        .route("/fhir/ClaimResponse/{id}", get(read_claim_response))
        .route("/fhir/{resource_type}/{id}", get(read_record))
        .route("/audit/access.csv", get(access_csv))
}

/// The query's parameters in order (`application/x-www-form-urlencoded`, as FHIR search sends
/// them); a malformed query is a 400 OperationOutcome.
/// 403 unless `who` may read `patient`'s data ([`crate::access`]).
async fn require_patient(st: &State, who: &Requester, patient: &str) -> Result<(), FhirError> {
    if access::may_read_patient(&st.node, &st.decisions, who, patient).await? {
        return Ok(());
    }
    Err(FhirError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        format!(
            "{} {} may not read patient {patient}'s data: only the patient, a member they \
             enrolled with, granted a consent to or are covered by, and auditors may",
            who.subject.kind(),
            who.subject.id()
        ),
    ))
}

fn params(q: &Option<String>) -> Result<Vec<(String, String)>, FhirError> {
    serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| FhirError::bad(format!("the query string does not decode: {e}")))
}

fn param<'a>(ps: &'a [(String, String)], name: &str) -> Option<&'a str> {
    ps.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn only_params(ps: &[(String, String)], known: &[&str]) -> Result<(), FhirError> {
    for (k, _) in ps {
        if !known.contains(&k.as_str()) {
            return Err(FhirError {
                element: Some(k.clone()),
                ..FhirError::new(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    format!(
                        "search parameter {k:?} is not supported here (supported: {})",
                        known.join(", ")
                    ),
                )
            });
        }
    }
    Ok(())
}

/// `Patient/pt-…` or `pt-…`.
fn patient_param(ps: &[(String, String)]) -> Result<String, FhirError> {
    let p =
        param(ps, "patient").ok_or_else(|| FhirError::bad("the patient parameter is required"))?;
    let p = p.strip_prefix("Patient/").unwrap_or(p);
    if p.is_empty()
        || p.len() > 128
        || !p
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    {
        return Err(FhirError::bad(format!("{p:?} is not a patient id")));
    }
    Ok(p.to_string())
}

fn verified_meta(chain_id: &str, a: &Attestation) -> Value {
    json!({
        "extension": [{
            "url": VERIFIED_STATE_EXTENSION_URL,
            "extension": [
                { "url": "chainId", "valueString": chain_id },
                { "url": "height", "valueString": a.height.to_string() },
                { "url": "appHash", "valueString": hex::encode(&a.app_hash) },
                { "url": "method", "valueString": a.method },
                { "url": "signers", "valueString": a.signers.join(",") },
            ],
        }]
    })
}

fn searchset(st: &State, resource: &str, entries: Vec<Value>, meta: Value) -> Value {
    let total = entries.len();
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            json!({
                "fullUrl": format!("{}/fhir/{resource}/{id}", st.public_url),
                "resource": r,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let mut b = json!({
        "resourceType": "Bundle",
        "meta": meta,
        "type": "searchset",
        "total": total,
    });
    // FHIR forbids empty arrays: no match, no `entry`.
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

async fn metadata(AxState(st): AxState<Arc<State>>) -> Response {
    fhir(StatusCode::OK, &capability_statement(&st.public_url))
}

/// The CapabilityStatement: exactly what this gateway answers.
pub fn capability_statement(base: &str) -> Value {
    let read = json!({ "code": "read" });
    let search = json!({ "code": "search-type" });
    let create = json!({ "code": "create" });
    let patient = json!({ "name": "patient", "type": "reference", "documentation": "Patient/{ledger patient id}" });
    let vault_types: Vec<Value> = RECORD_TYPES
        .iter()
        .map(|t| json!({
            "type": t,
            "documentation": "A record in this member's vault, released under a consent the ledger proves, after the reader's signed LogAccess is committed (headers Signature-Input, Signature, Content-Digest per RFC 9421, and Medledger-Access-Tx; query purpose=TREAT|ETREAT|HPAYMT|HOPERAT|HRESCH).",
            "interaction": [read],
        }))
        .collect();
    let mut resources = vec![
        json!({
            "type": "Consent",
            "documentation": "The ledger's patient consents. Create: POST Consent/$prepare with a Consent, sign signBytes with the patient's Ed25519 key, POST the Parameters (txBody, signature, signer) to Consent; an inactive Consent revokes. The gateway never signs for a patient.",
            "interaction": [read, search, create],
            "searchParam": [patient],
        }),
        json!({
            "type": "AuditEvent",
            "documentation": "IHE BALP AuditEvents of a patient's complete, proven access history; each entry carries its ICS23 proof, the Bundle the certificate and height it was verified against.",
            "interaction": [read, search],
            "searchParam": [patient, { "name": "date", "type": "date", "documentation": "eq, ge, gt, le, lt on the event's day (YYYY-MM-DD)" }],
        }),
        json!({
            "type": "Claim",
            "documentation": "Submit a claim, answered with the ledger's adjudication as a ClaimResponse. The provider's admin key POSTs the Claim (the gateway signs with the member's key); a practitioner (physician, nurse, lab technician, claims adjuster) POSTs it to Claim/$prepare, signs signBytes with their own key and POSTs the Parameters (txBody, signature, signer), so the ledger names who billed. Every request is authenticated (RFC 9421 or a bearer token from POST /auth/token).",
            "interaction": [create],
        }),
        json!({
            "type": "ClaimResponse",
            "interaction": [read, search],
            "searchParam": [{ "name": "request", "type": "reference", "documentation": "Claim/{claim id}" }],
        }),
    ];
    resources.extend(vault_types);
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-26",
        "publisher": "medledger",
        "kind": "instance",
        "software": { "name": "medledger gateway", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "medledger member gateway", "url": format!("{base}/fhir") },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [{ "mode": "server", "resource": resources }],
    })
}

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

async fn search_consents(
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
            entries,
            verified_meta(st.node.chain_id(), &a),
        ),
    ))
}

async fn read_consent(
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

fn parse_json(body: &[u8]) -> Result<Value, FhirError> {
    serde_json::from_slice(body).map_err(|e| FhirError {
        issue: "structure",
        ..FhirError::bad(format!("the body is not JSON: {e}"))
    })
}

fn parameter<'a>(params: &'a Value, name: &str) -> Option<&'a Value> {
    params["parameter"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}

async fn prepare_consent(
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

/// The signed tx in a `Parameters {txBody, signature, signer}` (what `$prepare` asked to sign),
/// its bytes and its verified form.
fn signed_parameters(
    v: &Value,
    what: &str,
) -> Result<(Vec<u8>, medledger_tx::VerifiedTx), FhirError> {
    let b64 = |name: &str| -> Result<Vec<u8>, FhirError> {
        let p = parameter(v, name)
            .ok_or_else(|| FhirError::bad(format!("parameter {name} is required")))?;
        let s = p["valueBase64Binary"]
            .as_str()
            .ok_or_else(|| FhirError::bad(format!("parameter {name} must be valueBase64Binary")))?;
        Base64::decode_vec(s).map_err(|e| FhirError::bad(format!("{name}: {e}")))
    };
    let body_bytes = b64("txBody")?;
    let signature = b64("signature")?;
    let signer = parameter(v, "signer")
        .and_then(|p| p["valueString"].as_str())
        .and_then(|h| hex::decode(h).ok())
        .ok_or_else(|| {
            FhirError::bad("parameter signer (hex public key, valueString) is required")
        })?;
    let tx = pb::Tx {
        body: body_bytes,
        public_key: signer,
        signature,
    }
    .encode_to_vec();
    let decoded = decode_tx(&tx)
        .and_then(|t| t.verify())
        .map_err(|e| FhirError {
            issue: "security",
            ..FhirError::bad(format!("the signed {what} does not verify: {e}"))
        })?;
    Ok((tx, decoded))
}

/// `$prepare`'s answer: the tx body carrying `msg` at `signer`'s next sequence, and the exact
/// bytes to sign.
async fn prepared(st: &State, signer: [u8; 32], msg: Msg) -> FhirResult {
    let sequence = st.node.next_sequence(&signer).await?;
    let tx_body = TxBody {
        chain_id: st.node.chain_id().to_string(),
        sequence,
        unordered: None,
        msg: Some(msg),
    };
    if let Err(e) = check_body(&tx_body) {
        return Err(FhirError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            issue: "business-rule",
            diagnostics: e.message,
            element: None,
            ledger: Some((e.code.value(), e.code.name().to_string())),
        });
    }
    let body_bytes = tx_body.encode_to_vec();
    let sign = signing_bytes(&tx_body.chain_id, &body_bytes);
    Ok(fhir(
        StatusCode::OK,
        &json!({
            "resourceType": "Parameters",
            "parameter": [
                { "name": "txBody", "valueBase64Binary": Base64::encode_string(&body_bytes) },
                { "name": "signBytes", "valueBase64Binary": Base64::encode_string(&sign) },
                { "name": "signer", "valueString": hex::encode(signer) },
                { "name": "sequence", "valueString": sequence.to_string() },
            ],
        }),
    ))
}

async fn create_consent(AxState(st): AxState<Arc<State>>, body: Bytes) -> FhirResult {
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
        .attribute(kind, "consent_id")
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

/// `date` search on a day: (comparator, day number).
fn date_filter(v: &str) -> Result<(String, u64), FhirError> {
    let (cmp, d) = match v.get(..2) {
        Some(p @ ("eq" | "ge" | "gt" | "le" | "lt")) => (p.to_string(), &v[2..]),
        _ => ("eq".to_string(), v),
    };
    if d.len() != 10 {
        return Err(FhirError::bad(
            "date must be a day, YYYY-MM-DD, with an optional eq/ge/gt/le/lt prefix",
        ));
    }
    let secs = map::parse_time(d, "date").map_err(|u| FhirError::bad(u.reason))?;
    Ok((cmp, secs / 86_400))
}

/// Which page of a history a request asks for: `_offset` (the first event index, default 0),
/// `_count` (default and most per request differ by route) and `_height` (the certified state
/// to read; the `next` links pin it, so every page proves against one app hash).
#[derive(Clone, Copy, Debug)]
struct Page {
    offset: u64,
    count: u64,
    height: Option<u64>,
}

fn page_params(ps: &[(String, String)], default: u64, max: u64) -> Result<Page, FhirError> {
    let num = |name: &str| -> Result<Option<u64>, FhirError> {
        param(ps, name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| FhirError {
                    element: Some(name.into()),
                    ..FhirError::bad(format!("{name} must be a whole number, not {v:?}"))
                })
            })
            .transpose()
    };
    let count = num("_count")?.unwrap_or(default);
    if count == 0 || count > max {
        return Err(FhirError {
            element: Some("_count".into()),
            ..FhirError::bad(format!("_count is 1 to {max} here"))
        });
    }
    Ok(Page {
        offset: num("_offset")?.unwrap_or(0),
        count,
        height: num("_height")?,
    })
}

/// One proven page of `patient`'s access history at a certified height (the latest, or the
/// page's `_height`): the proven count `n`, the events `offset ..` (at most `count`, none
/// past `n`), the reads (the count's first) and the state's attestation and certificate.
struct HistoryPage {
    n: u64,
    events: Vec<pb::AccessEvent>,
    reads: Vec<medledger_query::history::ProvenRead>,
    attestation: Attestation,
    certificate: Vec<u8>,
}

async fn certified_history(
    st: &State,
    patient: &str,
    page: Page,
) -> Result<HistoryPage, FhirError> {
    let unavailable = FhirError::unavailable;
    let height = match page.height {
        Some(h) => h,
        None => {
            let (latest, _) = st
                .client
                .query_raw(&keys::latest_certificate(), 0)
                .await
                .map_err(unavailable)?;
            latest
                .as_deref()
                .and_then(keys::decode_u64)
                .ok_or_else(|| {
                    FhirError::unavailable(
                        "no checkpoint certificate yet (the first, of state 0, is in block 2)",
                    )
                })?
        }
    };
    let (cert, _) = st
        .client
        .query_raw(&keys::certificate(height), 0)
        .await
        .map_err(unavailable)?;
    let certificate = cert.ok_or_else(|| {
        FhirError::not_found(format!(
            "no certificate of state {height}: start the search again without _height"
        ))
    })?;
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

/// The search links of a page: `self`, `first`, and `previous`/`next` where there are such
/// pages, each pinned to the page's certified height. `base` is the URL without its query, and
/// `fixed` the parameters every page repeats (the patient, the dates).
fn page_links(
    base: &str,
    fixed: &[(String, String)],
    page: Page,
    height: u64,
    n: u64,
) -> Vec<(&'static str, String)> {
    let url = |offset: u64| {
        let mut ps: Vec<(String, String)> = fixed.to_vec();
        ps.push(("_offset".into(), offset.to_string()));
        ps.push(("_count".into(), page.count.to_string()));
        ps.push(("_height".into(), height.to_string()));
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(&ps).unwrap_or_default()
        )
    };
    let mut links = vec![("self", url(page.offset)), ("first", url(0))];
    if page.offset > 0 {
        links.push(("previous", url(page.offset.saturating_sub(page.count))));
    }
    if page.offset.saturating_add(page.count) < n {
        links.push(("next", url(page.offset + page.count)));
    }
    links
}

fn proof_extension(read: &medledger_query::history::ProvenRead) -> Value {
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

async fn search_audit_events(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["patient", "date", "_count", "_offset", "_height"])?;
    let p = patient_param(&ps)?;
    require_patient(&st, &authed.who, &p).await?;
    let filters = ps
        .iter()
        .filter(|(k, _)| k == "date")
        .map(|(_, v)| date_filter(v))
        .collect::<Result<Vec<_>, _>>()?;
    let page = page_params(&ps, AUDIT_PAGE.0, AUDIT_PAGE.1)?;
    let HistoryPage {
        n,
        events,
        reads,
        attestation: a,
        certificate: cert,
    } = certified_history(&st, &p, page).await?;
    let keep = |e: &pb::AccessEvent| {
        let day = e.time / 86_400;
        filters.iter().all(|(cmp, d)| match cmp.as_str() {
            "eq" => day == *d,
            "ge" => day >= *d,
            "gt" => day > *d,
            "le" => day <= *d,
            _ => day < *d,
        })
    };
    let kept: Vec<(usize, &pb::AccessEvent)> =
        events.iter().enumerate().filter(|(_, e)| keep(e)).collect();
    let chosen: Vec<pb::AccessEvent> = kept.iter().map(|(_, e)| (*e).clone()).collect();
    let chain = st.node.chain_id().to_string();
    let mut bundle = fhir_audit_bundle(
        &p,
        &chosen,
        &ProvenanceInfo {
            chain_id: chain.clone(),
            height: a.height,
            app_hash_hex: hex::encode(&a.app_hash),
        },
    );
    // A search answer: ids, full URLs, each entry's proof; the certificate and the count's proof
    // (completeness) on the Bundle.
    if let Some(entries) = bundle.get_mut("entry").and_then(Value::as_array_mut) {
        for (entry, (i, e)) in entries.iter_mut().zip(&kept) {
            let id = format!("{}-{}", e.patient_id, e.index);
            let resource = &mut entry["resource"];
            resource["id"] = json!(id);
            resource["meta"] = json!({ "extension": [proof_extension(&reads[i + 1])] });
            entry["fullUrl"] = json!(format!("{}/fhir/AuditEvent/{id}", st.public_url));
            entry["search"] = json!({ "mode": "match" });
        }
    }
    bundle["type"] = json!("searchset");
    // The number of matches over all pages: the proven count, when no date filters (a date
    // search's total is not known without reading every page, so it is left out).
    if filters.is_empty() {
        bundle["total"] = json!(n);
    } else if let Some(b) = bundle.as_object_mut() {
        b.remove("total");
    }
    let fixed: Vec<(String, String)> = ps
        .iter()
        .filter(|(k, _)| k == "patient" || k == "date")
        .cloned()
        .collect();
    bundle["link"] = Value::Array(
        page_links(
            &format!("{}/fhir/AuditEvent", st.public_url),
            &fixed,
            page,
            a.height,
            n,
        )
        .into_iter()
        .map(|(relation, url)| json!({ "relation": relation, "url": url }))
        .collect(),
    );
    if let Some(ext) = bundle["meta"]["extension"][0]["extension"].as_array_mut() {
        ext.push(
            json!({ "url": "certificate", "valueBase64Binary": Base64::encode_string(&cert) }),
        );
        ext.push(json!({ "url": "signers", "valueString": a.signers.join(",") }));
    }
    if let Some(exts) = bundle["meta"]["extension"].as_array_mut() {
        exts.push(proof_extension(&reads[0]));
    }
    Ok(fhir(StatusCode::OK, &bundle))
}

/// `GET /fhir/AuditEvent/{patient}-{index}`: one event, proven at the latest certified height.
async fn read_audit_event(
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

async fn access_csv(
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

/// 403 unless `who` bills for this gateway's member: its admin, or an active practitioner of a
/// provider role (the ledger's own table).
fn require_biller(st: &State, who: &Requester) -> Result<(), FhirError> {
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
fn claim_msg(st: &State, v: &Value) -> Result<Msg, FhirError> {
    let (claim, provider) = map::claim_from_fhir(v)?;
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
    Ok(Msg::SubmitClaim(claim))
}

/// `POST /fhir/Claim/$prepare`: the SubmitClaim tx body for the requester's own key to sign (a
/// practitioner's claim is signed by the practitioner, so the chain names who billed).
async fn prepare_claim(
    AxState(st): AxState<Arc<State>>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    require_biller(&st, &authed.who)?;
    let msg = claim_msg(&st, &parse_json(&authed.body)?)?;
    prepared(&st, authed.who.key, msg).await
}

/// `POST /fhir/Claim`: a Claim from the member's admin key (the gateway signs with that key), or
/// `Parameters {txBody, signature, signer}` from `$prepare`, signed by the requester itself and
/// relayed as signed. A practitioner's Claim must come signed: the gateway never signs in the
/// member's name for a person.
async fn submit_claim(
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
        .attribute("medledger.claim.submitted", "claim_id")
        .ok_or_else(|| FhirError::unavailable("the committed claim names no id"))?
        .to_string();
    let c: Claim = st
        .node
        .read_msg_newest(&keys::claim(&id))
        .await?
        .ok_or_else(|| FhirError::unavailable(format!("claim {id} is not readable")))?;
    let created = st.block_time(c.submitted_height).await;
    let mut r = fhir(StatusCode::CREATED, &map::claim_response(&c, created));
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/fhir/ClaimResponse/{id}", st.public_url)) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// 403 unless `who` may read claim `c` (its patient, provider, insurer, auditors).
async fn require_claim(st: &State, who: &Requester, c: &Claim) -> Result<(), FhirError> {
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

async fn certified_claim(st: &State, id: &str) -> Result<(Option<Claim>, Attestation), FhirError> {
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

async fn search_claim_responses(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let ps = params(&q)?;
    only_params(&ps, &["request"])?;
    let r = param(&ps, "request")
        .ok_or_else(|| FhirError::bad("the request parameter (Claim/{id}) is required"))?;
    let id = r.strip_prefix("Claim/").unwrap_or(r);
    let (c, a) = certified_claim(&st, id).await?;
    let mut entries = Vec::new();
    if let Some(c) = c {
        require_claim(&st, &authed.who, &c).await?;
        let created = st.block_time(c.submitted_height).await;
        entries.push(map::claim_response(&c, created));
    }
    Ok(fhir(
        StatusCode::OK,
        &searchset(
            &st,
            "ClaimResponse",
            entries,
            verified_meta(st.node.chain_id(), &a),
        ),
    ))
}

async fn read_claim_response(
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

/// `GET /fhir/{type}/{id}?purpose=…`: a vault record, released as `GET /records/{id}` releases
/// it (signed request, the reader's LogAccess in `Medledger-Access-Tx`, committed first); the
/// gateway opens it and answers the FHIR resource itself.
async fn read_record(
    AxState(st): AxState<Arc<State>>,
    Path((resource_type, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    if !RECORD_TYPES.contains(&resource_type.as_str()) {
        return Err(FhirError::not_found(format!(
            "{} is not served here (records: {}; see /fhir/metadata)",
            resource_type.chars().take(64).collect::<String>(),
            RECORD_TYPES.join(", ")
        )));
    }
    let started = std::time::Instant::now();
    let tx = headers
        .get("medledger-access-tx")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| FhirError {
            status: StatusCode::UNAUTHORIZED,
            ..FhirError::new(
                StatusCode::UNAUTHORIZED,
                "login",
                "a record read needs the reader's signed LogAccess tx (base64) in the Medledger-Access-Tx header and an RFC 9421 signature",
            )
        })?
        .to_string();
    let released = st
        .release(&id, &uri, &authed.who, &tx, Some(&resource_type))
        .await?;
    let mut r = (StatusCode::OK, released.plaintext).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    if let Ok(v) = HeaderValue::from_str(&crate::server::server_timing(
        started.elapsed(),
        released.ledger_wait,
    )) {
        h.insert("server-timing", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{} {}",
        released.access_height, released.access_index
    )) {
        h.insert("medledger-access-event", v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_strings_decode() {
        let ps = params(&Some("patient=Patient%2Fpt-1&date=ge2026-11-01&x".into())).unwrap();
        assert_eq!(param(&ps, "patient"), Some("Patient/pt-1"));
        assert_eq!(param(&ps, "date"), Some("ge2026-11-01"));
        assert_eq!(patient_param(&ps).unwrap(), "pt-1");
        let odd = params(&Some("x=%zz%4".into())).unwrap();
        assert_eq!(param(&odd, "x"), Some("%zz%4"));
        assert!(only_params(&ps, &["patient", "date"]).is_err());
    }

    #[test]
    fn dates_take_fhir_prefixes() {
        assert_eq!(date_filter("2026-11-26").unwrap(), ("eq".into(), 20_783));
        assert_eq!(date_filter("le1970-01-02").unwrap(), ("le".into(), 1));
        assert!(date_filter("2026-11").is_err());
    }

    #[test]
    fn refusals_are_operation_outcomes_with_the_ledgers_code() {
        let o = operation_outcome(
            "error",
            "forbidden",
            "no",
            Some("Consent.x"),
            Some((28, "NO_PERMITTING_CONSENT")),
        );
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(
            o["issue"][0]["details"]["coding"][0]["code"],
            "NO_PERMITTING_CONSENT"
        );
        assert_eq!(o["issue"][0]["expression"][0], "Consent.x");
    }
}

//! FHIR R4 over HTTP (`application/fhir+json`): consents, audit events, claims and the vault's
//! records, answered from state proven against a BLS checkpoint certificate (docs/fhir.md).
//!
//! The gateway never signs for a patient: a Consent is prepared here (`$prepare` answers the tx
//! body and the exact bytes to sign), signed by the patient wherever their key is, and posted
//! back signed. Claims are signed requests (RFC 9421) of the provider's admin or practitioners;
//! the gateway submits them as its member. Records go through the same consent check and access
//! logging as `GET /records/{id}`.

//!
//! One file per resource: [`capability`] (`metadata` and the OperationDefinitions), [`consent`],
//! [`audit_event`] (with the HIPAA CSV), [`claim`], [`document_reference`] (the record locator)
//! and [`record`] (the vault's records as FHIR resources); [`search`] holds what searches share (parameters, paging, the searchset Bundle),
//! [`protocol`] the HTTP around them all (JSON only, CORS, OperationOutcomes for unknown routes
//! and methods).

mod audit_event;
mod capability;
mod claim;
mod consent;
mod document_reference;
pub mod map;
mod protocol;
mod record;
mod search;
pub(crate) mod subscription;

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
use crate::state::State;
use audit_event::{access_csv, read_audit_event, search_audit_events};
pub use capability::capability_statement;
use capability::{metadata, read_operation_definition};
use claim::{prepare_claim, read_claim, read_claim_response, search_claim_responses, submit_claim};
use consent::{
    consent_history, consent_vread, create_consent, prepare_consent, read_consent, search_consents,
    update_consent,
};
use document_reference::{patient_everything, read_document_reference, search_document_references};
use map::ConsentIntent;
pub(crate) use protocol::{is_fhir_path, not_found};
use record::read_record;
use search::*;
use subscription::{
    create_subscription, delete_subscription, read_subscription, search_subscriptions,
};

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Consents per Consent search page: the default and the most (`_count`); more are read page
/// by page (`next` links), every page of one search at one certified height.
pub const CONSENT_PAGE: (u64, u64) = (100, 1_000);

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
    /// Every issue, when a refusal has several (the mapping's: each with its code and FHIRPath);
    /// `None`: the one issue above. (Boxed: every handler returns this error, so it stays small.)
    issues: Option<Box<[Value]>>,
}

impl FhirError {
    fn new(status: StatusCode, issue: &'static str, msg: impl Into<String>) -> FhirError {
        FhirError {
            status,
            issue,
            diagnostics: msg.into(),
            element: None,
            ledger: None,
            issues: None,
        }
    }

    /// 403 `security`: the credentials do not allow this (a SMART token's scopes).
    pub(crate) fn security(msg: impl Into<String>) -> FhirError {
        FhirError::new(StatusCode::FORBIDDEN, "security", msg)
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
            issues: None,
        }
    }
}

impl From<crate::error::ApiError> for FhirError {
    fn from(e: crate::error::ApiError) -> FhirError {
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
            issues: None,
        }
    }
}

impl From<crate::node::NodeError> for FhirError {
    fn from(e: crate::node::NodeError) -> FhirError {
        crate::error::ApiError::from(e).into()
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
        let mut body = operation_outcome(
            "error",
            self.issue,
            &self.diagnostics,
            self.element.as_deref(),
            self.ledger.as_ref().map(|(c, n)| (*c, n.as_str())),
        );
        if let Some(issues) = self.issues.filter(|i| !i.is_empty()) {
            body["issue"] = Value::Array(issues.into_vec());
        }
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

/// The FHIR routes (and the CSV). Every FHIR route answers JSON only ([`protocol::negotiate`]),
/// and a method it does not take is 405 with an OperationOutcome (and axum's `Allow` header).
pub(crate) fn routes() -> Router<Arc<State>> {
    Router::new()
        .route("/fhir/metadata", get(metadata))
        .route(
            "/fhir/OperationDefinition/{id}",
            get(read_operation_definition),
        )
        .route("/fhir/Consent", get(search_consents).post(create_consent))
        .route("/fhir/Consent/$prepare", post(prepare_consent))
        .route("/fhir/Consent/{id}", get(read_consent).put(update_consent))
        .route("/fhir/Consent/{id}/_history", get(consent_history))
        .route("/fhir/Consent/{id}/_history/{vid}", get(consent_vread))
        .route("/fhir/AuditEvent", get(search_audit_events))
        .route("/fhir/AuditEvent/{id}", get(read_audit_event))
        .route("/fhir/Claim", post(submit_claim))
        .route("/fhir/Claim/$prepare", post(prepare_claim))
        .route("/fhir/Claim/$submit", post(submit_claim))
        .route("/fhir/Claim/{id}", get(read_claim))
        .route("/fhir/ClaimResponse", get(search_claim_responses))
        .route("/fhir/ClaimResponse/{id}", get(read_claim_response))
        .route(
            "/fhir/Subscription",
            post(create_subscription).get(search_subscriptions),
        )
        .route(
            "/fhir/Subscription/{id}",
            get(read_subscription).delete(delete_subscription),
        )
        .route("/fhir/DocumentReference", get(search_document_references))
        .route("/fhir/DocumentReference/{id}", get(read_document_reference))
        .route("/fhir/Patient/{id}/$everything", get(patient_everything))
        .route("/fhir/{resource_type}/{id}", get(read_record))
        .route("/audit/access.csv", get(access_csv))
        // After every route: it sets the fallback of the routes present.
        .method_not_allowed_fallback(protocol::method_not_allowed)
        .route_layer(axum::middleware::from_fn(protocol::negotiate))
}

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
/// The `$prepare` answer: the tx body to sign and its signing bytes, plus (`outcome`) what the
/// mapping accepted without recording or read in the ledger's own terms, as warnings.
async fn prepared(st: &State, signer: [u8; 32], msg: Msg, outcome: Option<Value>) -> FhirResult {
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
            element: tx_body
                .msg
                .as_ref()
                .and_then(|m| fhir_path_of(m, &e.message)),
            diagnostics: e.message,
            ledger: Some((e.code.value(), e.code.name().to_string())),
            issues: None,
        });
    }
    let body_bytes = tx_body.encode_to_vec();
    let sign = signing_bytes(&tx_body.chain_id, &body_bytes);
    let mut parameter = vec![
        json!({ "name": "txBody", "valueBase64Binary": Base64::encode_string(&body_bytes) }),
        json!({ "name": "signBytes", "valueBase64Binary": Base64::encode_string(&sign) }),
        json!({ "name": "signer", "valueString": hex::encode(signer) }),
        json!({ "name": "sequence", "valueString": sequence.to_string() }),
    ];
    if let Some(o) = outcome {
        parameter.push(json!({ "name": "outcome", "resource": o }));
    }
    Ok(fhir(
        StatusCode::OK,
        &json!({ "resourceType": "Parameters", "parameter": parameter }),
    ))
}

/// The FHIR element that the ledger field a stateless check names (the first word of its
/// message, `data_classes: …`, `items[0].quantity must …`) was mapped from (docs/fhir.md's
/// tables), so that a `$prepare` refusal points at the sender's element, not at ours.
fn fhir_path_of(msg: &Msg, message: &str) -> Option<String> {
    let field = message.split([':', ' ']).next()?;
    let path = match (msg, field) {
        (Msg::GrantConsent(_), "grantee") => "Consent.provision.actor[0].reference",
        (Msg::GrantConsent(_), "data_classes") => "Consent.provision.class",
        (Msg::GrantConsent(_), "purposes" | "purpose") => "Consent.provision.purpose",
        (Msg::GrantConsent(_), "actions" | "action") => "Consent.provision.action",
        (Msg::GrantConsent(_), "deny_classes") => "Consent.provision.provision",
        (Msg::GrantConsent(_), "record_ids") => "Consent.provision.data",
        (Msg::GrantConsent(_), "study_id") => "Consent.extension",
        (Msg::GrantConsent(_), "period") => "Consent.provision.period",
        (Msg::RevokeConsent(_), "consent_id") => "Consent.id",
        (Msg::SubmitClaim(_), "patient_id") => "Claim.patient.reference",
        (Msg::SubmitClaim(_), "insurer") => "Claim.insurer.reference",
        (Msg::SubmitClaim(_), "policy_id") => "Claim.insurance[0].coverage",
        (Msg::SubmitClaim(_), "service_date") => "Claim.billablePeriod.start",
        (Msg::SubmitClaim(_), "items") => "Claim.item",
        (Msg::SubmitClaim(_), "evidence" | "record_ids") => "Claim.supportingInfo",
        (Msg::SubmitClaim(_), "total") => "Claim.total",
        (Msg::SubmitClaim(_), item) => {
            // items[i].service_code, items[i].modifier, items[i].quantity
            let (i, part) = item.strip_prefix("items[")?.split_once("].")?;
            let element = match part {
                "service_code" => "productOrService",
                "modifier" => "modifier",
                "quantity" => "quantity",
                _ => return None,
            };
            return Some(format!("Claim.item[{i}].{element}"));
        }
        _ => return None,
    };
    Some(path.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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

    #[test]
    fn a_prepare_refusal_names_the_fhir_element_not_the_ledger_field() {
        let grant = Msg::GrantConsent(Default::default());
        assert_eq!(
            fhir_path_of(&grant, "data_classes: name at least one class, or \"*\"").as_deref(),
            Some("Consent.provision.class")
        );
        assert_eq!(
            fhir_path_of(&grant, "period: not_after 5 is before not_before 10").as_deref(),
            Some("Consent.provision.period")
        );
        let claim = Msg::SubmitClaim(Default::default());
        assert_eq!(
            fhir_path_of(&claim, "items[2].quantity must be at least 1").as_deref(),
            Some("Claim.item[2].quantity")
        );
        assert_eq!(
            fhir_path_of(&claim, "service_date: give the day of service").as_deref(),
            Some("Claim.billablePeriod.start")
        );
        assert_eq!(fhir_path_of(&grant, "something else entirely"), None);
    }

    #[test]
    fn a_mapping_refusal_carries_its_issue_code_and_fhir_path() {
        let e = FhirError::from(
            map::consent_from_fhir(&json!({
                "resourceType": "Consent", "status": "active",
                "patient": { "reference": "Patient/pt-1" },
                "provision": { "period": { "end": "2026-02-30" } },
            }))
            .unwrap_err(),
        );
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.issue, "value");
        assert_eq!(e.element.as_deref(), Some("Consent.provision.period.end"));
        let e = FhirError::from(
            map::consent_from_fhir(&json!({ "resourceType": "Consent", "status": "active" }))
                .unwrap_err(),
        );
        assert_eq!(
            (e.issue, e.element.as_deref()),
            ("required", Some("Consent.patient"))
        );
    }
}

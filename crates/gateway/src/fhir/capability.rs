//! `GET /fhir/metadata`: the CapabilityStatement.

use super::*;

pub(super) async fn metadata(AxState(st): AxState<Arc<State>>) -> Response {
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

//! Fixtures shared by the mapping's unit tests: a ledger consent, a FHIR claim, the official
//! R4 examples, and refusals as `code@expression`.
#![allow(clippy::unwrap_used, clippy::panic)]

use medledger_tx::pb::{Consent, GrantConsent, Purpose};
use serde_json::{json, Value};

use super::{
    claim_from_fhir, consent_from_fhir, ConsentIntent, Refusal, CLAIM_INFO_SYSTEM, CLAIM_TYPE,
};

pub(super) fn consent() -> Consent {
    Consent {
        id: "c-1".into(),
        patient_id: "pt-1".into(),
        grantee: "hospital-a".into(),
        data_classes: vec!["Observation".into()],
        purposes: vec![Purpose::Treat as i32],
        not_before: 0,
        not_after: 1_800_000_000,
        granted_height: 5,
        revoked_height: 0,
        actions: vec![],
        deny_classes: vec!["MedicationRequest".into()],
        record_ids: vec!["obs-9".into()],
        study_id: String::new(),
    }
}

pub(super) fn grant_of(v: &Value) -> GrantConsent {
    match consent_from_fhir(v) {
        Ok(ConsentIntent::Grant { grant, .. }) => grant,
        other => panic!("a grant, not {other:?}"),
    }
}

/// The errors of a refusal as `code@expression`, in the order found.
pub(super) fn errors(r: &Refusal) -> Vec<String> {
    r.errors()
        .map(|i| format!("{}@{}", i.kind.code(), i.element))
        .collect()
}

pub(super) fn consent_errors(v: &Value) -> Vec<String> {
    errors(&consent_from_fhir(v).unwrap_err())
}

pub(super) fn claim_errors(v: &Value) -> Vec<String> {
    errors(&claim_from_fhir(v).unwrap_err())
}

pub(super) fn a_claim() -> Value {
    json!({
        "resourceType": "Claim",
        "status": "active",
        "type": { "coding": [{ "system": CLAIM_TYPE, "code": "professional" }] },
        "use": "claim",
        "patient": { "reference": "Patient/pt-1" },
        "created": "2026-11-26",
        "insurer": { "reference": "Organization/insurer-c" },
        "provider": { "reference": "Organization/hospital-a" },
        "priority": { "coding": [{ "code": "normal" }] },
        "insurance": [{ "sequence": 1, "focal": true, "coverage": { "reference": "Coverage/basic" } }],
        "supportingInfo": [{ "sequence": 1,
            "category": { "coding": [{ "system": CLAIM_INFO_SYSTEM, "code": "access-event" }] },
            "valueReference": { "reference": "AuditEvent/pt-1-3" } }],
        "item": [{ "sequence": 1, "servicedDate": "2026-11-25",
            "productOrService": { "coding": [{ "code": "99213" }] },
            "quantity": { "value": 2 }, "unitPrice": { "value": 75.5 } }],
        "total": { "value": 151 },
    })
}

pub(super) fn example(file: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/fhir-examples/{file}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Sets (or, with `None`, removes) the element at JSON pointer `at`.
pub(super) fn patch(v: &mut Value, at: &str, with: Option<Value>) {
    let (parent, key) = at.rsplit_once('/').unwrap();
    match (v.pointer_mut(parent).unwrap(), with) {
        (Value::Object(o), Some(x)) => {
            o.insert(key.into(), x);
        }
        (Value::Object(o), None) => {
            o.remove(key).unwrap();
        }
        (Value::Array(a), Some(x)) => a[key.parse::<usize>().unwrap()] = x,
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().unwrap());
        }
        (p, _) => panic!("no element at {at}: {p}"),
    }
}

//! FHIR R4 ⇄ ledger mappings (docs/fhir.md is the table). Pure functions: no I/O, no clock.
//!
//! Reading FHIR ([`map_consent`], [`map_claim`]) drops nothing silently. An element the ledger
//! records is mapped. One it does not record, whose loss changes nothing the ledger enforces
//! (`Consent.organization`, `identifier`, `sourceAttachment`, …), is accepted with a warning
//! [`Issue`]. Anything else refuses the input ([`Refusal`], answered 422) with every issue found
//! at once, each with its R4 IssueType and FHIRPath: a sender learns in one answer all that
//! stands between its resource and the ledger.
//!
//! By responsibility: `read.rs` is the reader that collects every issue, `time.rs` FHIR dates
//! and the ledger's seconds, `consent.rs` and `claim.rs` the two resources (each way); this
//! file the issues, the refusal, the code systems and the refusal as the gateway's 422.

mod claim;
mod consent;
mod read;
#[cfg(test)]
mod testkit;
mod time;

pub use self::time::{date, fhir_span, instant, parse_time, Edge, FhirSpan, Precision};
pub use claim::{claim_from_fhir, claim_response, claim_to_fhir, map_claim, minor_units, money};
pub use consent::{
    consent_from_fhir, consent_to_fhir, consent_update, grantee_reference, map_consent,
    purpose_code, ConsentIntent, STUDY_EXTENSION,
};

use serde_json::{json, Value};

/// HL7 v3 ActReason (purposes of use).
pub const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// HL7 v3 ActCode (the OPTIN policy rule).
pub const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// FHIR consent scopes.
pub const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
/// LOINC (consent category 59284-0, Patient Consent).
pub const CONSENT_CATEGORY_LOINC: &str = "http://loinc.org";
/// FHIR consent actions (access, correct).
pub const CONSENT_ACTION: &str = "http://terminology.hl7.org/CodeSystem/consentaction";
/// FHIR resource types (the ledger's data classes).
pub const RESOURCE_TYPES: &str = "http://hl7.org/fhir/resource-types";
/// HL7 v3 ParticipationType (the recipient role).
pub const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// URIs: a practitioner's DID as an identifier.
pub const DID_SYSTEM: &str = "urn:ietf:rfc:3986";
/// Identifier system of the ledger's record ids (record anchors).
pub const RECORD_SYSTEM: &str = "urn:medledger:record";
/// Code system of the ledger's codes in OperationOutcome and adjudication reasons.
pub const LEDGER_CODE_SYSTEM: &str = "urn:medledger:code";
/// FHIR adjudication categories.
pub const ADJUDICATION: &str = "http://terminology.hl7.org/CodeSystem/adjudication";
/// FHIR claim types.
pub const CLAIM_TYPE: &str = "http://terminology.hl7.org/CodeSystem/claim-type";
/// FHIR example payment types.
pub const PAYMENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/ex-paymenttype";
/// `Claim.supportingInfo.category` of the ledger's evidence and records.
pub const CLAIM_INFO_SYSTEM: &str = "urn:medledger:claim-info";

/// What kind of issue an element of a FHIR input has, as R4's IssueType names it
/// (`OperationOutcome.issue.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// `required`: an element the ledger needs is missing.
    Required,
    /// `value`: the element is one the ledger records, but its value is malformed (a day that
    /// does not exist) or not one the ledger takes (a purpose outside its five, a recipient
    /// that is neither a member nor a practitioner's DID).
    Value,
    /// `invalid`: the JSON is not the shape R4 gives the element (an object where a string
    /// goes, a resource that is no JSON object).
    Invalid,
    /// `not-supported`: the ledger cannot record what the element says: an element it has no
    /// field for, a meaning it cannot express (a deny, an opt-out, a limit by security label),
    /// more repetitions than it holds (a second grantee). As a warning: accepted, not recorded.
    NotSupported,
    /// `business-rule`: each element is fine, together they break a rule (a period that ends
    /// before it starts, a research purpose without its study).
    BusinessRule,
    /// `security`: the consent would not be the patient's own (a performer other than the
    /// patient): the ledger records only what the patient signs.
    Security,
    /// `informational` (warnings only): how the ledger reads an element whose R4 meaning it
    /// records in its own terms (no purpose: the four purposes that need no study).
    Informational,
}

impl IssueKind {
    /// The R4 IssueType code.
    pub fn code(self) -> &'static str {
        match self {
            IssueKind::Required => "required",
            IssueKind::Value => "value",
            IssueKind::Invalid => "invalid",
            IssueKind::NotSupported => "not-supported",
            IssueKind::BusinessRule => "business-rule",
            IssueKind::Security => "security",
            IssueKind::Informational => "informational",
        }
    }
}

/// How bad an issue is (`OperationOutcome.issue.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The input is refused.
    Error,
    /// Accepted; the element is not recorded.
    Warning,
}

impl Severity {
    /// The R4 IssueSeverity code.
    pub fn code(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One issue of a FHIR input: an error that refuses it, or a warning that an element is not
/// recorded. Answered as an `OperationOutcome.issue` ([`Issue::to_fhir`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong with it.
    pub kind: IssueKind,
    /// Its FHIRPath, e.g. `Consent.provision.purpose[1].code` (`issue.expression`).
    pub element: String,
    /// Why, for a person (`issue.diagnostics`).
    pub reason: String,
}

impl Issue {
    fn new(
        severity: Severity,
        kind: IssueKind,
        element: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Issue {
            severity,
            kind,
            element: element.into(),
            reason: reason.into(),
        }
    }

    fn value(element: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(Severity::Error, IssueKind::Value, element, reason)
    }

    fn invalid(element: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(Severity::Error, IssueKind::Invalid, element, reason)
    }

    /// Whether it refuses the input.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// As an R4 `OperationOutcome.issue`.
    pub fn to_fhir(&self) -> Value {
        json!({
            "severity": self.severity.code(),
            "code": self.kind.code(),
            "diagnostics": format!("{}: {}", self.element, self.reason),
            "expression": [self.element],
        })
    }
}

type Res<T> = Result<T, Issue>;

/// Most issues one refusal lists; past this they are counted ([`Refusal::more`]). A resource
/// this far from what the ledger holds is best fixed in a few rounds anyway.
pub const MAX_ISSUES: usize = 100;

/// A FHIR input the ledger cannot take: every issue found in it, errors (at least one) and
/// warnings, in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The issues, at most [`MAX_ISSUES`].
    pub issues: Vec<Issue>,
    /// How many more were found and not listed.
    pub more: usize,
}

impl Refusal {
    /// The issues that refuse it.
    pub fn errors(&self) -> impl Iterator<Item = &Issue> {
        self.issues.iter().filter(|i| i.is_error())
    }

    /// The first error (a refusal has one; `None` only for one built by hand without).
    pub fn first_error(&self) -> Option<&Issue> {
        self.errors().next()
    }

    /// Its issues as `OperationOutcome.issue`s, with a last `informational` one when more were
    /// found than listed.
    pub fn outcome_issues(&self) -> Vec<Value> {
        let mut out: Vec<Value> = self.issues.iter().map(Issue::to_fhir).collect();
        if self.more > 0 {
            out.push(json!({
                "severity": "information",
                "code": "informational",
                "diagnostics": format!("{} more issues were found and are not listed", self.more),
            }));
        }
        out
    }

    /// As an R4 OperationOutcome.
    pub fn outcome(&self) -> Value {
        json!({ "resourceType": "OperationOutcome", "issue": self.outcome_issues() })
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let errors: Vec<String> = self
            .errors()
            .map(|i| format!("{} ({}): {}", i.element, i.kind.code(), i.reason))
            .collect();
        write!(f, "{}", errors.join("; "))?;
        if self.more > 0 {
            write!(f, "; and {} more", self.more)?;
        }
        Ok(())
    }
}

/// A FHIR input read: what the ledger makes of it, and the warnings for what it does not record.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped<T> {
    /// The ledger's reading.
    pub value: T,
    /// Elements accepted and not recorded (severity warning, code `not-supported`), and
    /// readings in the ledger's own terms (`informational`).
    pub warnings: Vec<Issue>,
}

/// The warnings of a reading as an OperationOutcome (for the `$prepare` answer), or `None`
/// when there are none.
pub fn warnings_outcome(warnings: &[Issue]) -> Option<Value> {
    if warnings.is_empty() {
        return None;
    }
    Some(json!({
        "resourceType": "OperationOutcome",
        "issue": warnings.iter().map(Issue::to_fhir).collect::<Vec<_>>(),
    }))
}

/// The id in a reference `{prefix}{id}` (`Patient/pt-1`): `None` unless it has that prefix and
/// the rest is one non-empty path segment.
fn reference_id<'a>(reference: &'a str, prefix: &str) -> Option<&'a str> {
    reference
        .strip_prefix(prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// The ledger record id a Reference names: its identifier of system [`RECORD_SYSTEM`].
fn record_id(reference: &Value) -> Option<&str> {
    reference
        .get("identifier")
        .filter(|i| i.get("system").and_then(Value::as_str) == Some(RECORD_SYSTEM))
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
}

// ---- The boundary: a refusal as the gateway's FHIR error (422) ---------------------------------

impl From<Refusal> for super::FhirError {
    /// Every issue, each with its code and expression (`Refusal::outcome_issues`); the first
    /// error also sets the status line's issue, and the diagnostics name the others.
    fn from(r: Refusal) -> super::FhirError {
        // Errors first (a client that reads `issue[0]` reads why it was refused), warnings after.
        let mut issues = r.outcome_issues();
        issues.sort_by_key(|i| !matches!(i["severity"].as_str(), Some("error" | "fatal")));
        let first = r.first_error().cloned();
        let others: Vec<&str> = r.errors().skip(1).map(|i| i.element.as_str()).collect();
        let mut diagnostics = first
            .as_ref()
            .map_or_else(|| r.to_string(), |i| format!("{}: {}", i.element, i.reason));
        let more = others.len().saturating_add(r.more);
        if more > 0 {
            diagnostics.push_str(&format!(" (and {more} more issues: {})", others.join(", ")));
        }
        super::FhirError {
            status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            issue: first.as_ref().map_or("invalid", |i| i.kind.code()),
            diagnostics,
            element: first.map(|i| i.element),
            ledger: None,
            issues: Some(issues.into_boxed_slice()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use testkit::*;

    #[test]
    fn each_refusal_has_the_issue_code_of_its_kind() {
        let refused = |f: &dyn Fn(&mut Value)| {
            let mut v = consent_to_fhir(&consent());
            f(&mut v);
            consent_errors(&v)
        };
        assert_eq!(
            refused(&|v| v["provision"]["actor"] = json!([])),
            ["invalid@Consent.provision.actor"]
        );
        assert_eq!(
            refused(&|v| {
                v["provision"].as_object_mut().unwrap().remove("actor");
            }),
            ["required@Consent.provision.actor"]
        );
        assert_eq!(
            refused(&|v| v["provision"]["period"] = json!("2027")),
            ["invalid@Consent.provision.period"]
        );
        assert_eq!(
            refused(&|v| v["patient"]["reference"] = json!("Group/g-1")),
            ["value@Consent.patient.reference"]
        );
        let mut claim = a_claim();
        claim["item"][0]
            .as_object_mut()
            .unwrap()
            .remove("unitPrice");
        claim.as_object_mut().unwrap().remove("total");
        assert_eq!(claim_errors(&claim), ["required@Claim.item[0].unitPrice"]);
        let mut claim = a_claim();
        claim["item"][0]["servicedDate"] = json!("2026-11");
        assert_eq!(claim_errors(&claim), ["value@Claim.item[0].servicedDate"]);
        claim["item"][0]["servicedDate"] = json!("2026-11-31");
        assert_eq!(claim_errors(&claim), ["value@Claim.item[0].servicedDate"]);
        claim["item"][0]["servicedDate"] = json!("2026-11-24");
        claim["billablePeriod"] = json!({ "start": "2026-11-25" });
        assert_eq!(
            claim_errors(&claim),
            ["not-supported@Claim.item[0].servicedDate"]
        );
        let mut claim = a_claim();
        claim["total"] = json!({ "value": 150 });
        assert_eq!(claim_errors(&claim), ["business-rule@Claim.total"]);
        claim["use"] = json!("predetermination");
        claim["payee"] = json!({ "type": { "coding": [{ "code": "other" }] } });
        let mut second = claim["insurance"][0].clone();
        second["sequence"] = json!(2);
        claim["insurance"].as_array_mut().unwrap().push(second);
        assert_eq!(
            claim_errors(&claim),
            [
                "not-supported@Claim.use",
                "business-rule@Claim.insurance[1].focal",
                "business-rule@Claim.total",
                "not-supported@Claim.payee.type",
            ]
        );
    }

    /// docs/fhir.md lists every official example with the outcome the mapping gives it, and
    /// the issue codes of its refusal.
    #[test]
    fn the_docs_list_every_official_example_as_it_fares() {
        let doc =
            std::fs::read_to_string(format!("{}/../../docs/fhir.md", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        let dir = format!(
            "{}/tests/fixtures/fhir-examples",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".json"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 29, "12 Consent and 17 Claim examples");
        for f in files {
            let v = example(f.trim_end_matches(".json"));
            let id = v["id"].as_str().unwrap();
            let r = if f.starts_with("Consent-") {
                consent_from_fhir(&v).err()
            } else {
                claim_from_fhir(&v).err()
            };
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{id}` |")))
                .unwrap_or_else(|| panic!("docs/fhir.md has no row for {id}"));
            let outcome = if r.is_some() { "refused" } else { "accepted" };
            assert!(
                row.contains(&format!("| {outcome} |")),
                "{id} is {outcome}: {row}"
            );
            for e in r.iter().flat_map(Refusal::errors) {
                assert!(
                    row.contains(&format!("`{}`", e.kind.code())),
                    "{id}'s row names no `{}`: {row}",
                    e.kind.code()
                );
            }
        }
    }
}

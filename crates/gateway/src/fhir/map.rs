//! FHIR R4 ⇄ ledger mappings (docs/fhir.md is the table). Pure functions: no I/O, no clock.
//!
//! Reading FHIR ([`map_consent`], [`map_claim`]) drops nothing silently. An element the ledger
//! records is mapped. One it does not record, whose loss changes nothing the ledger enforces
//! (`Consent.organization`, `identifier`, `sourceAttachment`, …), is accepted with a warning
//! [`Issue`]. Anything else refuses the input ([`Refusal`], answered 422) with every issue found
//! at once, each with its R4 IssueType and FHIRPath: a sender learns in one answer all that
//! stands between its resource and the ledger.

use medledger_tx::pb::{
    Action, Claim, ClaimItem, ClaimStatus, Consent, GrantConsent, Purpose, SubmitClaim,
};
use serde_json::{json, Map, Value};

use medledger_query::export::{utc_date, utc_instant, LAST_SECOND};

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

/// The ledger purpose as its HL7 v3 ActReason code.
pub fn purpose_code(p: i32) -> Option<&'static str> {
    Some(match Purpose::try_from(p).ok()? {
        Purpose::Unspecified => return None,
        Purpose::Treat => "TREAT",
        Purpose::Etreat => "ETREAT",
        Purpose::Hpaymt => "HPAYMT",
        Purpose::Hoperat => "HOPERAT",
        Purpose::Hresch => "HRESCH",
    })
}

fn purpose_from_code(code: &str) -> Option<Purpose> {
    match code {
        "TREAT" => Some(Purpose::Treat),
        "ETREAT" => Some(Purpose::Etreat),
        "HPAYMT" => Some(Purpose::Hpaymt),
        "HOPERAT" => Some(Purpose::Hoperat),
        "HRESCH" => Some(Purpose::Hresch),
        _ => None,
    }
}

/// A reference to a grantee: a member is an `Organization`, a practitioner is identified by
/// their DID (a DID is no FHIR id: it has colons).
pub fn grantee_reference(grantee: &str) -> Value {
    if grantee.starts_with("did:") {
        json!({ "type": "Practitioner", "identifier": { "system": DID_SYSTEM, "value": grantee } })
    } else {
        json!({ "reference": format!("Organization/{grantee}") })
    }
}

/// FHIR `instant`/`dateTime` of unix seconds (UTC). No block time passes [`LAST_SECOND`]
/// (9999-12-31T23:59:59Z, where FHIR's four-digit years end too); a ledger value past it (a
/// consent's `not_before` given in raw seconds) is written as that second.
pub fn instant(secs: u64) -> String {
    utc_instant(secs.min(LAST_SECOND))
}

/// The ledger's consent as a FHIR R4 Consent.
pub fn consent_to_fhir(c: &Consent) -> Value {
    let research = c.purposes.contains(&(Purpose::Hresch as i32));
    let mut provision = Map::new();
    provision.insert("type".into(), json!("permit"));
    if c.not_before != 0 || (c.not_after != 0 && c.not_after < LAST_SECOND) {
        let mut period = Map::new();
        if c.not_before != 0 {
            period.insert("start".into(), json!(instant(c.not_before)));
        }
        // An end past the last block time ends nothing: the same as no end, which FHIR says by
        // leaving it out.
        if c.not_after != 0 && c.not_after < LAST_SECOND {
            period.insert("end".into(), json!(instant(c.not_after)));
        }
        provision.insert("period".into(), Value::Object(period));
    }
    provision.insert(
        "actor".into(),
        json!([{
            "role": { "coding": [{ "system": PARTICIPATION, "code": "IRCP", "display": "information recipient" }] },
            "reference": grantee_reference(&c.grantee),
        }]),
    );
    let actions: Vec<Value> = if c.actions.is_empty() {
        vec![action_concept(Action::Read as i32)]
    } else {
        c.actions.iter().map(|a| action_concept(*a)).collect()
    };
    provision.insert("action".into(), Value::Array(actions));
    let purposes: Vec<Value> = c
        .purposes
        .iter()
        .filter_map(|p| purpose_code(*p))
        .map(|code| json!({ "system": ACT_REASON, "code": code }))
        .collect();
    if !purposes.is_empty() {
        provision.insert("purpose".into(), Value::Array(purposes));
    }
    // "*" is every class: FHIR says that by leaving `class` out.
    let classes: Vec<Value> = c
        .data_classes
        .iter()
        .filter(|k| k.as_str() != "*")
        .map(|k| json!({ "system": RESOURCE_TYPES, "code": k }))
        .collect();
    if !classes.is_empty() {
        provision.insert("class".into(), Value::Array(classes));
    }
    if !c.record_ids.is_empty() {
        provision.insert(
            "data".into(),
            Value::Array(
                c.record_ids
                    .iter()
                    .map(|r| json!({ "meaning": "instance", "reference": { "identifier": { "system": RECORD_SYSTEM, "value": r } } }))
                    .collect(),
            ),
        );
    }
    if !c.deny_classes.is_empty() {
        provision.insert(
            "provision".into(),
            json!([{
                "type": "deny",
                "class": c.deny_classes.iter().map(|k| json!({ "system": RESOURCE_TYPES, "code": k })).collect::<Vec<_>>(),
            }]),
        );
    }
    let mut out = json!({
        "resourceType": "Consent",
        "id": c.id,
        "status": if c.revoked_height == 0 { "active" } else { "inactive" },
        "scope": { "coding": [{
            "system": CONSENT_SCOPE,
            "code": if research { "research" } else { "patient-privacy" },
        }] },
        "category": [{ "coding": [{ "system": CONSENT_CATEGORY_LOINC, "code": "59284-0", "display": "Patient Consent" }] }],
        "patient": { "reference": format!("Patient/{}", c.patient_id) },
        "policyRule": { "coding": [{ "system": ACT_CODE, "code": "OPTIN" }] },
        "provision": Value::Object(provision),
    });
    if !c.study_id.is_empty() {
        out["extension"] = json!([{ "url": STUDY_EXTENSION, "valueString": c.study_id }]);
    }
    out
}

/// Extension carrying a research consent's study id (`GrantConsent.study_id`).
pub const STUDY_EXTENSION: &str = "urn:medledger:fhir:StructureDefinition:research-study";

fn action_concept(a: i32) -> Value {
    let code = if a == Action::Write as i32 {
        "correct"
    } else {
        "access"
    };
    json!({ "coding": [{ "system": CONSENT_ACTION, "code": code }] })
}

// ---- Reading FHIR: every issue at once --------------------------------------------------------
//
// A reading walks the whole resource and collects its issues instead of stopping at the first:
// each reader returns `None` after recording why, and its caller goes on with the next
// element. A resource is accepted only when no error was recorded.

/// The issues of one reading, in the order found (at most [`MAX_ISSUES`] kept).
#[derive(Debug, Default)]
struct Issues {
    list: Vec<Issue>,
    /// Found past [`MAX_ISSUES`], not kept.
    more: usize,
    /// Whether any error was found (kept or not).
    refused: bool,
}

/// What a reading does with an element of an object.
#[derive(Debug, Clone, Copy)]
enum Treat {
    /// Read by the mapping.
    Read,
    /// Accepted, not recorded, and nothing is lost that anyone reads (`meta`, `text`).
    Quiet,
    /// Accepted, not recorded, with a warning saying why.
    Warn(&'static str),
    /// Refused (`not-supported`), saying why.
    Refuse(&'static str),
    /// Not an element the table names: refused (`not-supported`), naming those it reads.
    Unknown,
}

/// Why a modifier extension is refused wherever it appears.
const MODIFIER: &str = "a modifier extension changes the meaning of the element that holds it, \
                        and the ledger cannot record that change";

impl Issues {
    fn push(&mut self, issue: Issue) {
        self.refused |= issue.is_error();
        if self.list.len() < MAX_ISSUES {
            self.list.push(issue);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    fn error(&mut self, kind: IssueKind, at: impl Into<String>, reason: impl Into<String>) {
        self.push(Issue::new(Severity::Error, kind, at, reason));
    }

    fn required(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::Required, at, reason);
    }

    fn value(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::Value, at, reason);
    }

    fn not_supported(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::NotSupported, at, reason);
    }

    fn business_rule(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::BusinessRule, at, reason);
    }

    fn warn(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.push(Issue::new(
            Severity::Warning,
            IssueKind::NotSupported,
            at,
            reason,
        ));
    }

    /// A warning that the ledger reads the element at `at` in its own terms.
    fn note(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.push(Issue::new(
            Severity::Warning,
            IssueKind::Informational,
            at,
            reason,
        ));
    }

    /// The value of `r`, or `None` with its issue recorded.
    fn keep<T>(&mut self, r: Res<T>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    fn obj<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a Map<String, Value>> {
        self.keep(
            v.as_object()
                .ok_or_else(|| Issue::invalid(at, "must be a JSON object")),
        )
    }

    /// A JSON array (R4 repeats an element as an array, never empty).
    fn arr<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a Vec<Value>> {
        self.keep(match v.as_array() {
            Some(a) if a.is_empty() => Err(Issue::invalid(
                at,
                "an empty array: R4 JSON leaves the element out instead",
            )),
            Some(a) => Ok(a),
            None => Err(Issue::invalid(at, "must be a JSON array")),
        })
    }

    fn string<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a str> {
        self.keep(
            v.as_str()
                .ok_or_else(|| Issue::invalid(at, "must be a string")),
        )
    }

    /// Element `key` of `o` (FHIRPath `{at}.{key}`), or a `required` issue saying `why`.
    fn need<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        at: &str,
        key: &str,
        why: &str,
    ) -> Option<&'a Value> {
        let v = o.get(key);
        if v.is_none() {
            self.required(format!("{at}.{key}"), why);
        }
        v
    }

    /// The string element `key` of `o`, or an issue (`required` saying `why`, or `invalid`).
    fn need_str<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        at: &str,
        key: &str,
        why: &str,
    ) -> Option<&'a str> {
        let v = self.need(o, at, key, why)?;
        self.string(v, &format!("{at}.{key}"))
    }

    /// Judges every element of `o` by `table`. `id` and `extension` are accepted wherever the
    /// table does not name them (an extension with a warning: R4 lets a reader ignore one),
    /// `modifierExtension` and every other element refused. `_x` (a primitive's id and
    /// extensions) is accepted with a warning.
    fn elements(&mut self, o: &Map<String, Value>, at: &str, table: &[(&str, Treat)]) {
        for k in o.keys() {
            let path = format!("{at}.{k}");
            let treat = table
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, t)| *t)
                .unwrap_or(match k.as_str() {
                    "id" => Treat::Quiet,
                    "extension" => {
                        Treat::Warn("not recorded: an extension the ledger does not know")
                    }
                    "modifierExtension" => Treat::Refuse(MODIFIER),
                    _ if k.starts_with('_') => {
                        Treat::Warn("not recorded: the id and extensions of a primitive element")
                    }
                    _ => Treat::Unknown,
                });
            match treat {
                Treat::Read | Treat::Quiet => {}
                Treat::Warn(why) => self.warn(path, why),
                Treat::Unknown => {
                    let read: Vec<&str> = table
                        .iter()
                        .filter(|(_, t)| matches!(t, Treat::Read | Treat::Quiet | Treat::Warn(_)))
                        .map(|(name, _)| *name)
                        .collect();
                    self.not_supported(
                        path,
                        format!(
                            "the ledger has no field for this element (here it takes: {})",
                            read.join(", ")
                        ),
                    );
                }
                Treat::Refuse(why) => self.not_supported(path, why),
            }
        }
    }

    /// The (system, code) pairs of a CodeableConcept at `at` (`coding` and `text` only; a
    /// coding without a system has system "").
    fn concept<'a>(&mut self, v: &'a Value, at: &str) -> Option<Vec<(&'a str, &'a str)>> {
        let o = self.obj(v, at)?;
        self.elements(o, at, &[("coding", Treat::Read), ("text", Treat::Quiet)]);
        let cat = format!("{at}.coding");
        let codings = self.need(o, at, "coding", "a coding is required")?;
        let codings = self.arr(codings, &cat)?;
        let mut out = Vec::new();
        for (i, c) in codings.iter().enumerate() {
            let ci = format!("{cat}[{i}]");
            let Some(co) = self.obj(c, &ci) else {
                continue;
            };
            let system = co.get("system").and_then(Value::as_str).unwrap_or("");
            if let Some(code) = co
                .get("code")
                .and_then(|c| self.string(c, &format!("{ci}.code")))
            {
                out.push((system, code));
            }
        }
        Some(out)
    }

    /// The code of the coding from `system` in the CodeableConcept at `at`; a `value` issue
    /// when it has none (codings of other systems beside it are ignored).
    fn coded<'a>(&mut self, v: &'a Value, at: &str, system: &str) -> Option<&'a str> {
        let pairs = self.concept(v, at)?;
        let found = pairs.iter().find(|(s, _)| *s == system).map(|(_, c)| *c);
        if found.is_none() {
            self.value(
                format!("{at}.coding"),
                format!("no coding from {system}, the only system the ledger reads here"),
            );
        }
        found
    }

    /// The code of a Coding (not a CodeableConcept) at `at`, which must be of `system`.
    fn coding<'a>(&mut self, v: &'a Value, at: &str, system: &str, what: &str) -> Option<&'a str> {
        let o = self.obj(v, at)?;
        self.elements(
            o,
            at,
            &[
                ("system", Treat::Read),
                ("code", Treat::Read),
                ("display", Treat::Quiet),
                ("version", Treat::Quiet),
                ("userSelected", Treat::Quiet),
            ],
        );
        let sys = o.get("system").and_then(Value::as_str);
        let code = self.need_str(o, at, "code", "a coding needs its code");
        if sys != Some(system) {
            self.value(
                format!("{at}.system"),
                format!(
                    "{what} come from {system}, not {}",
                    sys.map_or("a coding without system".to_string(), |s| format!("{s:?}"))
                ),
            );
            return None;
        }
        code
    }

    /// The end of a reading: the value when no error was found, else the refusal.
    fn finish<T>(self, root: &str, value: Option<T>) -> Result<Mapped<T>, Refusal> {
        match value {
            Some(value) if !self.refused => Ok(Mapped {
                value,
                warnings: self.list,
            }),
            _ => {
                // Every reader that gives nothing has recorded why.
                debug_assert!(
                    self.refused,
                    "a reading of {root} gave nothing and said no why"
                );
                let mut issues = self.list;
                if !self.refused {
                    issues.push(Issue::invalid(root, "could not be read"));
                }
                Err(Refusal {
                    issues,
                    more: self.more,
                })
            }
        }
    }
}

/// How much of the calendar a FHIR date names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-MM-DD`.
    Day,
    /// A date and time with a zone (`YYYY-MM-DDThh:mm:ss[.f](Z|±hh:mm)`).
    Instant,
}

/// The span of time a FHIR `date`, `dateTime` or `instant` covers, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirSpan {
    /// The first instant it covers.
    pub first: time::OffsetDateTime,
    /// The first instant after it: the next year, month or day; the instant itself for an
    /// instant.
    pub after: time::OffsetDateTime,
    /// How much it names.
    pub precision: Precision,
}

/// Reads a FHIR R4 `date` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`), `dateTime` or `instant` (a date and
/// time with seconds and a `Z` or `±hh:mm` zone, which R4 requires once a time is given) with
/// the `time` crate's calendar: a day or month that does not exist (2026-02-30, 2026-13-01) is
/// `None`, as is anything not in R4's form (a lower-case `t`, a missing zone, year 0000).
pub fn fhir_span(s: &str) -> Option<FhirSpan> {
    use time::format_description::well_known::Rfc3339;
    use time::{Date, Month, OffsetDateTime};
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_digit());
    let day = |d: Date| d.midnight().assume_utc();
    if s.len() > 10 {
        // R4's regex: upper-case `T` and `Z`, seconds always, four-digit year 0001-9999.
        if s.as_bytes().get(10) != Some(&b'T') || s.contains(['t', 'z']) {
            return None;
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        if t.year() < 1 {
            return None;
        }
        let t = t.to_offset(time::UtcOffset::UTC);
        return Some(FhirSpan {
            first: t,
            after: t,
            precision: Precision::Instant,
        });
    }
    let parts: Vec<&str> = s.split('-').collect();
    let year = match parts.first() {
        Some(y) if digits(y, 4) => y.parse::<i32>().ok().filter(|y| *y >= 1)?,
        _ => return None,
    };
    let month = |m: &str| {
        if !digits(m, 2) {
            return None;
        }
        Month::try_from(m.parse::<u8>().ok()?).ok()
    };
    match parts.as_slice() {
        [_] => Some(FhirSpan {
            first: day(Date::from_calendar_date(year, Month::January, 1).ok()?),
            after: day(Date::from_calendar_date(year.checked_add(1)?, Month::January, 1).ok()?),
            precision: Precision::Year,
        }),
        [_, m] => {
            let m = month(m)?;
            let (ny, nm) = if m == Month::December {
                (year.checked_add(1)?, Month::January)
            } else {
                (year, m.next())
            };
            Some(FhirSpan {
                first: day(Date::from_calendar_date(year, m, 1).ok()?),
                after: day(Date::from_calendar_date(ny, nm, 1).ok()?),
                precision: Precision::Month,
            })
        }
        [_, m, d] if digits(d, 2) => {
            let date = Date::from_calendar_date(year, month(m)?, d.parse::<u8>().ok()?).ok()?;
            Some(FhirSpan {
                first: day(date),
                after: day(date.next_day()?),
                precision: Precision::Day,
            })
        }
        _ => None,
    }
}

/// Which second of a FHIR date's span a ledger time takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The first second it covers: a period's start (a fraction of a second rounds up, so no
    /// earlier block time is let in).
    Start,
    /// The last second it covers: a period's end, which R4 includes whole, so `2027-12-31`
    /// ends at 2027-12-31T23:59:59Z (the ledger compares `time ≤ not_after` in whole seconds).
    End,
}

/// Unix seconds of a FHIR date, dateTime or instant ([`fhir_span`]) at `edge` of its span, for
/// the ledger time at FHIR path `at`. Refused (`value`, naming `at`): anything that is not an R4
/// date, a day that does not exist, and anything before 1970: the ledger holds times as unix
/// seconds of block time, from 1970-01-01T00:00:00Z, and has no earlier second to store.
pub fn parse_time(s: &str, at: &str, edge: Edge) -> Res<u64> {
    let span = fhir_span(s).ok_or_else(|| not_a_date(s, at))?;
    if span.first < time::OffsetDateTime::UNIX_EPOCH {
        return Err(Issue::value(
            at,
            format!(
                "{s} is before 1970-01-01: the ledger holds times as seconds since \
                 1970-01-01T00:00:00Z (block times), so it has no second to store this one in"
            ),
        ));
    }
    let secs = match (edge, span.precision) {
        (Edge::Start, Precision::Instant) => span
            .first
            .unix_timestamp()
            .saturating_add(i64::from(span.first.nanosecond() > 0)),
        (Edge::Start, _) => span.first.unix_timestamp(),
        (Edge::End, Precision::Instant) => span.first.unix_timestamp(),
        (Edge::End, _) => span.after.unix_timestamp().saturating_sub(1),
    };
    u64::try_from(secs).map_err(|_| Issue::value(at, format!("{s} is before 1970")))
}

/// The `value` issue of `s` at `at`, which is no R4 date or dateTime.
fn not_a_date(s: &str, at: &str) -> Issue {
    Issue::value(
        at,
        format!(
            "{s:?} is not an R4 date (YYYY, YYYY-MM, YYYY-MM-DD, a day that exists) or \
             dateTime (YYYY-MM-DDThh:mm:ss with Z or ±hh:mm)"
        ),
    )
}

/// A consent's start (`not_before`) from a FHIR date at `at`: as [`parse_time`] at
/// [`Edge::Start`], except that a start before 1970 is 0, "from any time". No block time is
/// earlier, so a consent from 1964 on covers exactly the block times one without a start
/// covers: nothing is lost.
fn period_start(s: &str, at: &str) -> Res<u64> {
    match fhir_span(s) {
        Some(span) if span.first < time::OffsetDateTime::UNIX_EPOCH => Ok(0),
        _ => parse_time(s, at, Edge::Start),
    }
}

/// The day of service of a claim from a FHIR date or dateTime at `at`: a whole day
/// (`YYYY-MM-DD`, its first second) or an instant (its second); a year or a month is not a day.
/// The ledger's `service_date` 0 means "none", so the first second of 1970-01-01 is refused
/// rather than stored as no date.
fn service_date(s: &str, at: &str) -> Res<u64> {
    if matches!(
        fhir_span(s).map(|x| x.precision),
        Some(Precision::Year | Precision::Month)
    ) {
        return Err(Issue::value(
            at,
            format!("{s} is not a day: a day of service is YYYY-MM-DD (or a dateTime)"),
        ));
    }
    match parse_time(s, at, Edge::Start)? {
        0 => Err(Issue::value(
            at,
            "the ledger cannot hold a day of service at 1970-01-01T00:00:00Z: its 0 there \
             means no date",
        )),
        t => Ok(t),
    }
}

/// What a FHIR Consent asks the ledger to do.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentIntent {
    /// `status: active`: grant, on behalf of this patient.
    Grant {
        /// The patient (`Consent.patient`).
        patient_id: String,
        /// The grant.
        grant: GrantConsent,
    },
    /// `status: inactive` with an `id`: revoke that consent.
    Revoke {
        /// The patient (`Consent.patient`).
        patient_id: String,
        /// The consent id.
        consent_id: String,
    },
}

/// Why a deny is refused (an opt-out policy, a deny provision).
const DENY: &str = "nothing of a patient is disclosed without a consent that permits it, so the \
                    ledger records permits only; to withdraw a grant, revoke it (an inactive \
                    Consent with its id)";

/// Why a source document is not recorded.
const SOURCE: &str = "not recorded: the patient's signature over the tx body is the ledger's \
                      record of the consent; keep the source document in your own system";

/// Why an exception narrower than a whole class is refused.
const NARROW: &str = "the ledger's exceptions deny whole classes of data (class) to the \
                      grantee, for every purpose and time: it cannot limit one by this element";

/// Why a consent without a recipient is refused.
const NO_RECIPIENT: &str = "name the recipient: one actor in role IRCP or PRCP \
                            (v3-ParticipationType) whose reference is the grantee, \
                            Organization/{member id} or a practitioner's DID; a ledger consent \
                            always names whom it permits";

/// Why unknown implicit rules are refused.
const IMPLICIT: &str = "rules the ledger does not know would change how the resource reads";

/// Why `Consent.identifier` is not recorded.
const IDENTIFIER: &str = "not recorded: the ledger names the consent by the id it gives it (the \
                          answer's Consent.id)";

/// Why `Consent.organization` is not recorded.
const ORGANIZATION: &str = "not recorded: the ledger itself holds the consent, for every \
                            member; whom it permits is the provision's actor";

/// Why `Consent.policy` is not recorded.
const POLICY: &str = "not recorded: every consent on the ledger is read under the consortium's \
                      rules (docs/rules.md)";

/// Why `Consent.verification` is not recorded.
const VERIFICATION: &str = "not recorded: the patient's own signature on the tx is the ledger's \
                            verification";

/// Why a provision limited by security label is refused.
const BY_LABEL: &str = "the ledger's consents cover data by class and by record, not by \
                        security label: without the label this would permit more than it says";

/// Why a provision limited by code is refused.
const BY_CODE: &str = "the ledger's consents cover data by class and by record, not by code (a \
                       kind of document or result): without the code this would permit more \
                       than it says";

/// Why a provision limited by the data's period is refused.
const BY_DATA_PERIOD: &str = "the ledger's consents cover data by class and by record, not by \
                              when it was recorded: without the period this would permit more \
                              than it says";

/// The elements of a Consent.
const CONSENT_ELEMENTS: &[(&str, Treat)] = &[
    ("resourceType", Treat::Read),
    ("id", Treat::Read),
    ("meta", Treat::Quiet),
    ("implicitRules", Treat::Refuse(IMPLICIT)),
    ("language", Treat::Quiet),
    ("text", Treat::Quiet),
    (
        "contained",
        Treat::Warn("not recorded: contained resources"),
    ),
    ("extension", Treat::Read),
    ("identifier", Treat::Warn(IDENTIFIER)),
    ("status", Treat::Read),
    ("scope", Treat::Read),
    ("category", Treat::Read),
    ("patient", Treat::Read),
    ("dateTime", Treat::Read),
    ("performer", Treat::Read),
    ("organization", Treat::Warn(ORGANIZATION)),
    ("sourceAttachment", Treat::Warn(SOURCE)),
    ("sourceReference", Treat::Warn(SOURCE)),
    ("policy", Treat::Warn(POLICY)),
    ("policyRule", Treat::Read),
    ("verification", Treat::Warn(VERIFICATION)),
    ("provision", Treat::Read),
];

/// The elements of a Consent's top provision.
const PROVISION_ELEMENTS: &[(&str, Treat)] = &[
    ("type", Treat::Read),
    ("period", Treat::Read),
    ("actor", Treat::Read),
    ("action", Treat::Read),
    ("securityLabel", Treat::Refuse(BY_LABEL)),
    ("purpose", Treat::Read),
    ("class", Treat::Read),
    ("code", Treat::Refuse(BY_CODE)),
    ("dataPeriod", Treat::Refuse(BY_DATA_PERIOD)),
    ("data", Treat::Read),
    ("provision", Treat::Read),
];

/// The elements of a nested provision (a deny exception).
const EXCEPTION_ELEMENTS: &[(&str, Treat)] = &[
    ("type", Treat::Read),
    ("class", Treat::Read),
    ("period", Treat::Refuse(NARROW)),
    ("actor", Treat::Refuse(NARROW)),
    ("action", Treat::Refuse(NARROW)),
    ("securityLabel", Treat::Refuse(NARROW)),
    ("purpose", Treat::Refuse(NARROW)),
    ("code", Treat::Refuse(NARROW)),
    ("dataPeriod", Treat::Refuse(NARROW)),
    ("data", Treat::Refuse(NARROW)),
    ("provision", Treat::Refuse(NARROW)),
];

/// The roles (v3-ParticipationType) of the actor a consent permits: information recipient and
/// primary information recipient.
const RECIPIENT_ROLES: &[&str] = &["IRCP", "PRCP"];

/// The purposes of a provision that names none (R4: every purpose): all the ledger's purposes
/// that need nothing more; HRESCH needs its study.
const EVERY_PURPOSE: [Purpose; 4] = [
    Purpose::Treat,
    Purpose::Etreat,
    Purpose::Hpaymt,
    Purpose::Hoperat,
];

/// Reads a FHIR R4 Consent into a grant or a revocation, with warnings for what is accepted and
/// not recorded; refused with every issue found (docs/fhir.md, "Consent: FHIR → ledger").
pub fn map_consent(v: &Value) -> Result<Mapped<ConsentIntent>, Refusal> {
    let mut is = Issues::default();
    let intent = consent_intent(&mut is, v);
    is.finish("Consent", intent)
}

/// Reads a FHIR R4 Consent ([`map_consent`] without its warnings).
pub fn consent_from_fhir(v: &Value) -> Result<ConsentIntent, Refusal> {
    map_consent(v).map(|m| m.value)
}

fn consent_intent(is: &mut Issues, v: &Value) -> Option<ConsentIntent> {
    let o = is.obj(v, "Consent")?;
    if o.get("resourceType").and_then(Value::as_str) != Some("Consent") {
        is.value("Consent.resourceType", "must be \"Consent\"");
        return None;
    }
    is.elements(o, "Consent", CONSENT_ELEMENTS);
    let status = is.need_str(
        o,
        "Consent",
        "status",
        "active grants, inactive revokes the consent with this id",
    );
    let patient_id = consent_patient(is, o);
    consent_context(is, o, patient_id.as_deref());
    let study_id = consent_study(is, o);
    if status == Some("inactive") {
        let id = is.need_str(
            o,
            "Consent",
            "id",
            "an inactive Consent revokes the consent with this id",
        );
        return Some(ConsentIntent::Revoke {
            patient_id: patient_id?,
            consent_id: id?.to_string(),
        });
    }
    if let Some(other) = status.filter(|s| *s != "active") {
        is.value(
            "Consent.status",
            format!("the ledger records active grants and revocations (inactive), not {other:?}"),
        );
    }
    let grant = consent_grant(is, o, study_id);
    Some(ConsentIntent::Grant {
        patient_id: patient_id?,
        grant: grant?,
    })
}

/// `Consent.patient`: `Patient/{ledger patient id}`.
fn consent_patient(is: &mut Issues, o: &Map<String, Value>) -> Option<String> {
    let at = "Consent.patient";
    let p = is.need(
        o,
        "Consent",
        "patient",
        "the patient whose consent this is (their key signs it)",
    )?;
    let po = is.obj(p, at)?;
    let r = is.need_str(po, at, "reference", "Patient/{ledger patient id}")?;
    let id = r
        .strip_prefix("Patient/")
        .filter(|p| !p.is_empty() && !p.contains('/'));
    if id.is_none() {
        is.value(
            "Consent.patient.reference",
            format!("must be Patient/{{ledger patient id}}, not {r:?}"),
        );
    }
    id.map(str::to_string)
}

/// What frames the consent and is not recorded: scope, category, dateTime, policyRule and
/// performer, each checked for what would change its meaning.
fn consent_context(is: &mut Issues, o: &Map<String, Value>, patient: Option<&str>) {
    if let Some(s) = o.get("scope") {
        consent_scope(is, s);
    }
    if let Some(c) = o.get("category") {
        consent_category(is, c);
    }
    if let Some(d) = o.get("dateTime") {
        if let Some(s) = is.string(d, "Consent.dateTime") {
            if fhir_span(s).is_none() {
                is.push(not_a_date(s, "Consent.dateTime"));
            }
        }
    }
    if let Some(p) = o.get("policyRule") {
        consent_policy_rule(is, p);
    }
    if let Some(p) = o.get("performer") {
        consent_performers(is, p, patient);
    }
}

/// `Consent.scope`: a privacy consent (or research); not an advance directive or a consent to
/// treatment, which permit no access.
fn consent_scope(is: &mut Issues, v: &Value) {
    let at = "Consent.scope";
    let Some(pairs) = is.concept(v, at) else {
        return;
    };
    match pairs
        .iter()
        .find(|(s, _)| *s == CONSENT_SCOPE)
        .map(|(_, c)| *c)
    {
        Some("patient-privacy" | "research") => {}
        Some("adr") => is.not_supported(
            at,
            "an advance directive: the ledger records privacy consents (who may read or correct \
             which data)",
        ),
        Some("treatment") => is.not_supported(
            at,
            "a consent to treatment: the ledger records privacy consents (who may read or \
             correct which data)",
        ),
        Some(other) => is.value(
            format!("{at}.coding"),
            format!(
                "R4's consent scopes are patient-privacy, research, adr and treatment, not \
                 {other:?}"
            ),
        ),
        None => is.warn(
            at,
            "not recorded: no consentscope coding; a consent reads back as patient-privacy \
             (research when a purpose is HRESCH)",
        ),
    }
}

/// `Consent.category`: not recorded; a warning for each that is not LOINC 59284-0.
fn consent_category(is: &mut Issues, v: &Value) {
    let Some(cats) = is.arr(v, "Consent.category") else {
        return;
    };
    for (i, c) in cats.iter().enumerate() {
        let at = format!("Consent.category[{i}]");
        let Some(pairs) = is.concept(c, &at) else {
            continue;
        };
        if !pairs.contains(&(CONSENT_CATEGORY_LOINC, "59284-0")) {
            is.warn(
                at,
                "not recorded: a consent reads back with category LOINC 59284-0 (Patient Consent)",
            );
        }
    }
}

/// `Consent.policyRule`: opt-in (OPTIN, OPTINR) is what the ledger records; any other v3-ActCode
/// (OPTOUT, OPTOUTE, …) is a deny; a rule of another system is not recorded.
fn consent_policy_rule(is: &mut Issues, v: &Value) {
    let at = "Consent.policyRule";
    let Some(pairs) = is.concept(v, at) else {
        return;
    };
    let codes: Vec<&str> = pairs
        .iter()
        .filter(|(s, _)| *s == ACT_CODE)
        .map(|(_, c)| *c)
        .collect();
    if codes.iter().any(|c| matches!(*c, "OPTIN" | "OPTINR")) {
        return;
    }
    match codes.first() {
        Some(code) => is.not_supported(at, format!("{code} is not an opt-in: {DENY}")),
        None => is.warn(
            at,
            "not recorded: no v3-ActCode coding; the ledger reads every consent as opt-in \
             (OPTIN): a permit",
        ),
    }
}

/// `Consent.performer`: only the patient gives a consent the ledger records (with their key).
fn consent_performers(is: &mut Issues, v: &Value, patient: Option<&str>) {
    let Some(ps) = is.arr(v, "Consent.performer") else {
        return;
    };
    for (i, p) in ps.iter().enumerate() {
        let r = p.get("reference").and_then(Value::as_str);
        let own = match (r.and_then(|r| r.strip_prefix("Patient/")), patient) {
            (Some(r), Some(pt)) => r == pt,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !own {
            is.error(
                IssueKind::Security,
                format!("Consent.performer[{i}]"),
                format!(
                    "{} would give this consent, and the ledger records a consent only when the \
                     patient signs it with their own key (the tx that $prepare answers): the \
                     performer is the patient, Patient/{{id}}",
                    r.unwrap_or("someone other than the patient")
                ),
            );
        }
    }
}

/// `Consent.extension`: the research study (`study_id`); any other extension is not recorded.
fn consent_study(is: &mut Issues, o: &Map<String, Value>) -> String {
    let mut study = String::new();
    let Some(exts) = o.get("extension") else {
        return study;
    };
    let Some(exts) = is.arr(exts, "Consent.extension") else {
        return study;
    };
    for (i, e) in exts.iter().enumerate() {
        let at = format!("Consent.extension[{i}]");
        let Some(eo) = is.obj(e, &at) else {
            continue;
        };
        let url = eo.get("url").and_then(Value::as_str);
        if url != Some(STUDY_EXTENSION) {
            is.warn(
                at,
                format!(
                    "not recorded: an extension the ledger does not know ({})",
                    url.unwrap_or("no url")
                ),
            );
            continue;
        }
        let Some(s) = is.need_str(eo, &at, "valueString", "the study id") else {
            continue;
        };
        if study.is_empty() {
            study = s.to_string();
        } else {
            is.not_supported(at, "a ledger consent names one study");
        }
    }
    study
}

/// The grant of an active Consent: its top provision, read whole.
fn consent_grant(
    is: &mut Issues,
    o: &Map<String, Value>,
    study_id: String,
) -> Option<GrantConsent> {
    let at = "Consent.provision";
    let pv = is.need(
        o,
        "Consent",
        "provision",
        "a grant needs a provision: its actor is the grantee",
    )?;
    let p = is.obj(pv, at)?;
    is.elements(p, at, PROVISION_ELEMENTS);
    if let Some(t) = p.get("type") {
        match is.string(t, "Consent.provision.type") {
            Some("permit") | None => {}
            Some("deny") => is.not_supported("Consent.provision.type", format!("a deny: {DENY}")),
            Some(other) => is.value(
                "Consent.provision.type",
                format!("R4's provision types are permit and deny, not {other:?}"),
            ),
        }
    }
    let mut grant = GrantConsent {
        study_id,
        ..Default::default()
    };
    consent_period(is, p, &mut grant);
    let grantee = consent_grantee(is, p);
    consent_actions(is, p, &mut grant);
    let purposes = consent_purposes(is, p, &mut grant);
    consent_classes(is, p, &mut grant);
    consent_records(is, p, &mut grant);
    consent_exceptions(is, p, &mut grant);
    consent_covers(is, p, &mut grant);
    if purposes {
        consent_research(is, &grant);
    }
    grant.grantee = grantee?;
    Some(grant)
}

/// `provision.period`: `not_before` (a start before 1970 is "from any time") and `not_after`
/// (an end's last second).
fn consent_period(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) {
    let at = "Consent.provision.period";
    let Some(pv) = p.get("period") else {
        return;
    };
    let Some(po) = is.obj(pv, at) else {
        return;
    };
    is.elements(po, at, &[("start", Treat::Read), ("end", Treat::Read)]);
    let (start_at, end_at) = (
        "Consent.provision.period.start",
        "Consent.provision.period.end",
    );
    let start_text = po.get("start").and_then(|s| is.string(s, start_at));
    let start = start_text.and_then(|s| is.keep(period_start(s, start_at)));
    if let (Some(0), Some(text)) = (start, start_text) {
        if fhir_span(text).is_some_and(|s| s.first < time::OffsetDateTime::UNIX_EPOCH) {
            is.note(
                start_at,
                format!(
                    "{text} is before 1970-01-01, the ledger's first second: stored as no start \
                     (0), which covers the same block times"
                ),
            );
        }
    }
    let end_text = po.get("end").and_then(|e| is.string(e, end_at));
    let end = end_text.and_then(|e| is.keep(parse_time(e, end_at, Edge::End)));
    grant.not_before = start.unwrap_or(0);
    match (end, end_text) {
        (Some(0), Some(text)) => is.value(
            end_at,
            format!(
                "the ledger cannot hold an end at {text}: it stores the last second a consent \
                 covers, and 0 there means no end"
            ),
        ),
        (Some(end), Some(text)) => {
            grant.not_after = end;
            if start.is_some_and(|s| end < s) {
                is.business_rule(
                    end_at,
                    format!(
                        "the period ends ({text}) before it starts ({})",
                        start_text.unwrap_or("")
                    ),
                );
            }
        }
        _ => {}
    }
}

/// `provision.actor`: the one recipient (role IRCP or PRCP) is the grantee; any other role
/// would limit the consent by who holds or wrote the data, which the ledger cannot.
fn consent_grantee(is: &mut Issues, p: &Map<String, Value>) -> Option<String> {
    let at = "Consent.provision.actor";
    let Some(av) = p.get("actor") else {
        is.required(at, NO_RECIPIENT);
        return None;
    };
    let actors = is.arr(av, at)?;
    let mut recipients = Vec::new();
    for (i, a) in actors.iter().enumerate() {
        let ai = format!("{at}[{i}]");
        let Some(ao) = is.obj(a, &ai) else {
            continue;
        };
        is.elements(
            ao,
            &ai,
            &[("role", Treat::Read), ("reference", Treat::Read)],
        );
        if actor_is_recipient(is, ao, &ai) {
            recipients.push((ai, ao));
        }
    }
    if recipients.is_empty() {
        is.required(at, NO_RECIPIENT);
    }
    let mut grantee = None;
    for (n, (ai, ao)) in recipients.iter().enumerate() {
        if n == 0 {
            grantee = actor_reference(is, ao, ai);
        } else {
            is.not_supported(
                ai.as_str(),
                "a ledger consent has one grantee: send one Consent for each recipient",
            );
        }
    }
    grantee.filter(|_| recipients.len() == 1)
}

/// Whether the actor at `ai` is a recipient; an actor of any other role is a `not-supported`
/// issue. An actor without a role (R4 requires one) is read as the recipient.
fn actor_is_recipient(is: &mut Issues, ao: &Map<String, Value>, ai: &str) -> bool {
    let Some(role) = ao.get("role") else {
        return true;
    };
    let rat = format!("{ai}.role");
    let Some(pairs) = is.concept(role, &rat) else {
        return false;
    };
    let code = pairs
        .iter()
        .find(|(s, _)| *s == PARTICIPATION)
        .map(|(_, c)| *c);
    let what = match code {
        Some(c) if RECIPIENT_ROLES.contains(&c) => return true,
        Some("CST") => "the custodian (CST) that holds the data".to_string(),
        Some("AUT") => "the author (AUT) of the data".to_string(),
        Some(c) => format!("an actor in role {c}"),
        None => "an actor whose role is no v3-ParticipationType code".to_string(),
    };
    is.not_supported(
        rat,
        format!(
            "the ledger's consents cover the patient's data wherever it is held and name only \
             whom they permit (role IRCP or PRCP): it cannot limit one by {what}"
        ),
    );
    false
}

/// The grantee an actor's reference names: `Organization/{member id}`, or a practitioner's DID
/// as an identifier.
fn actor_reference(is: &mut Issues, ao: &Map<String, Value>, ai: &str) -> Option<String> {
    let rat = format!("{ai}.reference");
    let rv = is.need(
        ao,
        ai,
        "reference",
        "the grantee: Organization/{member id} or a practitioner's DID",
    )?;
    let r = is.obj(rv, &rat)?;
    if let Some(reference) = r.get("reference") {
        let at = format!("{rat}.reference");
        let reference = is.string(reference, &at)?;
        let member = reference
            .strip_prefix("Organization/")
            .filter(|m| !m.is_empty() && !m.contains('/'));
        if member.is_none() {
            let why = if reference.starts_with("Practitioner/") {
                "a practitioner is named by their DID, as an identifier {system: \
                 urn:ietf:rfc:3986, value: did:medledger:…} (a DID is no FHIR id)"
            } else {
                "the ledger's grantees are its members, Organization/{member id}, and their \
                 practitioners, by DID (an identifier {system: urn:ietf:rfc:3986, value: \
                 did:medledger:…})"
            };
            is.value(at, format!("{reference:?}: {why}"));
        }
        return member.map(str::to_string);
    }
    if let Some(ident) = r.get("identifier") {
        let at = format!("{rat}.identifier");
        let io = is.obj(ident, &at)?;
        let value = is.need_str(io, &at, "value", "the practitioner's DID")?;
        if !value.starts_with("did:") {
            is.value(
                format!("{at}.value"),
                format!("{value:?}: a practitioner is named by their DID (did:medledger:…)"),
            );
            return None;
        }
        return Some(value.to_string());
    }
    is.required(
        rat,
        "a reference (Organization/{member id}) or an identifier (a practitioner's DID)",
    );
    None
}

/// `provision.action`: access or use is READ, correct is WRITE.
fn consent_actions(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) {
    let Some(av) = p.get("action") else {
        return;
    };
    let Some(actions) = is.arr(av, "Consent.provision.action") else {
        return;
    };
    for (i, a) in actions.iter().enumerate() {
        let at = format!("Consent.provision.action[{i}]");
        let act = match is.coded(a, &at, CONSENT_ACTION) {
            None => continue,
            Some("access" | "use") => Action::Read,
            Some("correct") => Action::Write,
            Some(other) => {
                is.value(
                    format!("{at}.coding"),
                    format!(
                        "the ledger's actions are access or use (READ) and correct (WRITE), not \
                         {other:?}"
                    ),
                );
                continue;
            }
        };
        if !grant.actions.contains(&(act as i32)) {
            grant.actions.push(act as i32);
        }
    }
}

/// `provision.purpose`: the ledger's five; none named is every purpose that needs no more
/// (HRESCH too when a study is named). Whether they were all read.
fn consent_purposes(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) -> bool {
    let at = "Consent.provision.purpose";
    let Some(pv) = p.get("purpose") else {
        grant.purposes = EVERY_PURPOSE.iter().map(|p| *p as i32).collect();
        if !grant.study_id.is_empty() {
            grant.purposes.push(Purpose::Hresch as i32);
        }
        is.note(
            at,
            "no purpose, which R4 reads as every purpose: recorded as TREAT, ETREAT, HPAYMT and \
             HOPERAT (and HRESCH when the consent names its study)",
        );
        return true;
    };
    let Some(ps) = is.arr(pv, at) else {
        return false;
    };
    let mut all = true;
    for (i, c) in ps.iter().enumerate() {
        let ci = format!("{at}[{i}]");
        let Some(code) = is.coding(c, &ci, ACT_REASON, "the ledger's purposes") else {
            all = false;
            continue;
        };
        match purpose_from_code(code) {
            Some(purpose) if grant.purposes.contains(&(purpose as i32)) => {}
            Some(purpose) => grant.purposes.push(purpose as i32),
            None => {
                all = false;
                is.value(
                    format!("{ci}.code"),
                    format!(
                        "the ledger's purposes are TREAT, ETREAT, HPAYMT, HOPERAT and HRESCH, not \
                         {code:?}"
                    ),
                );
            }
        }
    }
    all
}

/// `provision.class`: FHIR resource types.
fn consent_classes(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) {
    let at = "Consent.provision.class";
    let Some(cs) = p.get("class").and_then(|cv| is.arr(cv, at)) else {
        return;
    };
    for (i, c) in cs.iter().enumerate() {
        let what = "the ledger's data classes (FHIR resource types)";
        if let Some(k) = is.coding(c, &format!("{at}[{i}]"), RESOURCE_TYPES, what) {
            grant.data_classes.push(k.to_string());
        }
    }
}

/// `provision.data`: named records (`instance`, by ledger record id).
fn consent_records(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) {
    let at = "Consent.provision.data";
    let Some(ds) = p.get("data").and_then(|dv| is.arr(dv, at)) else {
        return;
    };
    for (i, d) in ds.iter().enumerate() {
        let di = format!("{at}[{i}]");
        let Some(dobj) = is.obj(d, &di) else {
            continue;
        };
        is.elements(
            dobj,
            &di,
            &[("meaning", Treat::Read), ("reference", Treat::Read)],
        );
        let meaning = is.need_str(dobj, &di, "meaning", "instance: the named record itself");
        if let Some(m) = meaning.filter(|m| *m != "instance") {
            is.not_supported(
                format!("{di}.meaning"),
                format!(
                    "{m:?}: the ledger's consents cover named records themselves (instance), not \
                     what relates to them"
                ),
            );
        }
        let Some(r) = is.need(dobj, &di, "reference", "the record") else {
            continue;
        };
        let id = r
            .get("identifier")
            .filter(|i| i.get("system").and_then(Value::as_str) == Some(RECORD_SYSTEM))
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str);
        match id {
            Some(id) => grant.record_ids.push(id.to_string()),
            None => {
                is.value(
                    format!("{di}.reference"),
                    format!(
                        "name the record by its ledger id: identifier {{system: {RECORD_SYSTEM}, \
                         value: record id}}"
                    ),
                );
            }
        }
    }
}

/// `provision.provision`: exceptions that deny whole classes (`deny_classes`).
fn consent_exceptions(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) {
    let at = "Consent.provision.provision";
    let Some(nv) = p.get("provision") else {
        return;
    };
    let Some(ns) = is.arr(nv, at) else {
        return;
    };
    for (i, n) in ns.iter().enumerate() {
        let ni = format!("{at}[{i}]");
        let Some(no) = is.obj(n, &ni) else {
            continue;
        };
        let tat = format!("{ni}.type");
        match no.get("type").map(|t| is.string(t, &tat)) {
            Some(Some("deny")) => {}
            Some(Some("permit")) => {
                is.not_supported(
                    tat,
                    "a nested permit: the ledger's exceptions only deny classes; what a consent \
                     permits goes in its top provision",
                );
                continue;
            }
            Some(Some(other)) => {
                is.value(
                    tat,
                    format!("R4's provision types are permit and deny, not {other:?}"),
                );
                continue;
            }
            Some(None) => continue,
            None => is.required(
                tat,
                "a nested provision says whether it permits or denies (R4 requires it); the \
                 ledger's exceptions deny",
            ),
        }
        is.elements(no, &ni, EXCEPTION_ELEMENTS);
        let Some(cv) = is.need(no, &ni, "class", "the classes this exception denies") else {
            continue;
        };
        let cat = format!("{ni}.class");
        let Some(cs) = is.arr(cv, &cat) else {
            continue;
        };
        for (j, c) in cs.iter().enumerate() {
            let what = "the ledger's data classes (FHIR resource types)";
            if let Some(k) = is.coding(c, &format!("{cat}[{j}]"), RESOURCE_TYPES, what) {
                grant.deny_classes.push(k.to_string());
            }
        }
    }
}

/// What the grant covers: every class when it names no class and no record. Named records
/// alone the ledger cannot hold: its consents always cover a class, the records besides.
fn consent_covers(is: &mut Issues, p: &Map<String, Value>, grant: &mut GrantConsent) {
    match (p.contains_key("class"), p.contains_key("data")) {
        (false, false) => grant.data_classes.push("*".into()),
        (false, true) => is.business_rule(
            "Consent.provision.class",
            "a ledger consent covers at least one class of data (the records it names besides): \
             it cannot cover named records alone; add a class",
        ),
        (true, _) => {}
    }
}

/// A study exactly when HRESCH is a purpose (the ledger's rule).
fn consent_research(is: &mut Issues, grant: &GrantConsent) {
    let research = grant.purposes.contains(&(Purpose::Hresch as i32));
    if research && grant.study_id.is_empty() {
        is.business_rule(
            "Consent.extension",
            format!(
                "a research consent (purpose HRESCH) names its study: extension {STUDY_EXTENSION} \
                 with valueString"
            ),
        );
    } else if !research && !grant.study_id.is_empty() {
        is.business_rule(
            "Consent.provision.purpose",
            "the consent names a study but HRESCH is not among its purposes: the ledger names a \
             study for research consents only",
        );
    }
}

/// Money in minor units as a FHIR `Money` (value in major units; the ledger keeps no currency,
/// so none is claimed). The decimal is written as text and read back as a JSON number, exact for
/// any amount below 2^53 minor units.
pub fn money(minor: u64) -> Value {
    let text = format!("{}.{:02}", minor / 100, minor % 100);
    let value = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| json!(minor / 100));
    json!({ "value": value })
}

/// A FHIR decimal (a JSON number) as minor units: at most two decimals, non-negative.
pub fn minor_units(v: &Value, at: &str) -> Res<u64> {
    let n = v
        .as_number()
        .ok_or_else(|| Issue::invalid(at, "must be a number"))?;
    let s = n.to_string();
    let bad = || {
        Issue::value(
            at,
            format!("{s} is not a non-negative amount with at most two decimals"),
        )
    };
    let (whole, frac) = s.split_once('.').unwrap_or((&s, ""));
    if frac.len() > 2 || whole.starts_with('-') || s.contains(['e', 'E']) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| bad())?
    };
    whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)
}

fn positive_integer(v: &Value, at: &str) -> Res<u64> {
    if let Some(n) = v.as_u64() {
        return Ok(n);
    }
    // FHIR decimals like 1.0 are a whole quantity too.
    let units = minor_units(v, at)?;
    if units % 100 != 0 {
        return Err(Issue::value(at, "the ledger bills whole quantities"));
    }
    Ok(units / 100)
}

/// The elements of a Claim. Those not named have no field in `SubmitClaim` and are refused
/// (`careTeam`, `diagnosis`, `procedure`, `payee`, …): each would be lost.
const CLAIM_ELEMENTS: &[(&str, Treat)] = &[
    ("resourceType", Treat::Read),
    ("id", Treat::Quiet),
    ("meta", Treat::Quiet),
    (
        "implicitRules",
        Treat::Refuse("rules the ledger does not know would change how the claim reads"),
    ),
    ("language", Treat::Quiet),
    ("text", Treat::Quiet),
    ("identifier", Treat::Quiet),
    ("status", Treat::Read),
    ("type", Treat::Quiet),
    ("use", Treat::Read),
    ("patient", Treat::Read),
    ("billablePeriod", Treat::Read),
    ("created", Treat::Read),
    ("insurer", Treat::Read),
    ("provider", Treat::Read),
    ("priority", Treat::Quiet),
    ("supportingInfo", Treat::Read),
    ("insurance", Treat::Read),
    ("item", Treat::Read),
    ("total", Treat::Read),
];

/// The elements of a `Claim.item`.
const ITEM_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    ("productOrService", Treat::Read),
    ("modifier", Treat::Read),
    ("servicedDate", Treat::Read),
    ("quantity", Treat::Read),
    ("unitPrice", Treat::Read),
    ("net", Treat::Quiet),
];

/// The elements of a `Claim.supportingInfo`.
const INFO_ELEMENTS: &[(&str, Treat)] = &[
    ("sequence", Treat::Quiet),
    ("category", Treat::Read),
    ("valueReference", Treat::Read),
];

/// Reads a FHIR R4 Claim into the ledger's SubmitClaim and the `provider` it names (a member,
/// checked by the caller: the provider is whoever signs), with warnings; refused with every
/// issue found (docs/fhir.md, "Claim: FHIR → ledger").
pub fn map_claim(v: &Value) -> Result<Mapped<(SubmitClaim, Option<String>)>, Refusal> {
    let mut is = Issues::default();
    let claim = claim_read(&mut is, v);
    is.finish("Claim", claim)
}

/// Reads a FHIR R4 Claim ([`map_claim`] without its warnings).
pub fn claim_from_fhir(v: &Value) -> Result<(SubmitClaim, Option<String>), Refusal> {
    map_claim(v).map(|m| m.value)
}

fn claim_read(is: &mut Issues, v: &Value) -> Option<(SubmitClaim, Option<String>)> {
    let o = is.obj(v, "Claim")?;
    if o.get("resourceType").and_then(Value::as_str) != Some("Claim") {
        is.value("Claim.resourceType", "must be \"Claim\"");
        return None;
    }
    is.elements(o, "Claim", CLAIM_ELEMENTS);
    claim_kind(is, o);
    let patient = claim_reference(is, o, "patient", "Patient/");
    let insurer = claim_reference(is, o, "insurer", "Organization/");
    let provider = o
        .get("provider")
        .and_then(|p| p.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Organization/"))
        .filter(|x| !x.is_empty() && !x.contains('/'))
        .map(str::to_string);
    let policy = claim_policy(is, o);
    let (service, source) = claim_service_date(is, o);
    let items = claim_items(is, o, service, &source);
    let total = claim_total(is, o, items.as_deref());
    let (evidence, record_ids) = claim_supporting(is, o, patient.as_deref());
    let claim = SubmitClaim {
        patient_id: patient?,
        insurer: insurer?,
        policy_id: policy?,
        service_date: service?,
        items: items?,
        record_ids,
        total: total?,
        evidence,
    };
    Some((claim, provider))
}

/// `status` (active), `use` (claim), and the dates the ledger does not record but checks.
fn claim_kind(is: &mut Issues, o: &Map<String, Value>) {
    if let Some(s) = o.get("status") {
        match is.string(s, "Claim.status") {
            Some("active") | None => {}
            Some(other) => is.value(
                "Claim.status",
                format!("only an active claim is submitted, not {other:?}"),
            ),
        }
    }
    if let Some(u) = o.get("use") {
        match is.string(u, "Claim.use") {
            Some("claim") | None => {}
            Some(other @ ("preauthorization" | "predetermination")) => is.not_supported(
                "Claim.use",
                format!("a {other}: the ledger adjudicates claims for services given"),
            ),
            Some(other) => is.value(
                "Claim.use",
                format!(
                    "R4's uses are claim, preauthorization and predetermination, not {other:?}"
                ),
            ),
        }
    }
    let end = o.get("billablePeriod").and_then(|b| b.get("end"));
    for (at, v) in [
        ("Claim.created", o.get("created")),
        ("Claim.billablePeriod.end", end),
    ] {
        if let Some(s) = v.and_then(|v| is.string(v, at)) {
            if fhir_span(s).is_none() {
                is.push(not_a_date(s, at));
            }
        }
    }
}

/// `Claim.{key}.reference`: `{prefix}{id}`.
fn claim_reference(
    is: &mut Issues,
    o: &Map<String, Value>,
    key: &str,
    prefix: &str,
) -> Option<String> {
    let at = format!("Claim.{key}");
    let rv = is.need(o, "Claim", key, &format!("a reference {prefix}{{id}}"))?;
    let ro = is.obj(rv, &at)?;
    let r = is.need_str(ro, &at, "reference", &format!("{prefix}{{id}}"))?;
    let id = r
        .strip_prefix(prefix)
        .filter(|x| !x.is_empty() && !x.contains('/'));
    if id.is_none() {
        is.value(
            format!("{at}.reference"),
            format!("must be {prefix}{{id}}, not {r:?}"),
        );
    }
    id.map(str::to_string)
}

/// `insurance`: exactly one; its coverage names the insurer's policy.
fn claim_policy(is: &mut Issues, o: &Map<String, Value>) -> Option<String> {
    let at = "Claim.insurance";
    let iv = is.need(
        o,
        "Claim",
        "insurance",
        "the coverage the claim is made against",
    )?;
    let ins = is.arr(iv, at)?;
    for i in 1..ins.len() {
        is.not_supported(
            format!("{at}[{i}]"),
            "the ledger adjudicates a claim against one coverage: send exactly one insurance",
        );
    }
    let first = is.obj(ins.first()?, "Claim.insurance[0]")?;
    let cat = "Claim.insurance[0].coverage";
    let why = "the insurer's policy: Coverage/{policy id} or identifier.value";
    let c = is.need(first, "Claim.insurance[0]", "coverage", why)?;
    if let Some(id) = c
        .get("identifier")
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
    {
        return Some(id.to_string());
    }
    let Some(r) = c.get("reference").and_then(Value::as_str) else {
        is.required(cat, why);
        return None;
    };
    let policy = r
        .strip_prefix("Coverage/")
        .filter(|x| !x.is_empty() && !x.contains('/'));
    if policy.is_none() {
        is.value(
            format!("{cat}.reference"),
            format!("{r:?}: the insurer's policy is Coverage/{{policy id}} (or identifier.value)"),
        );
    }
    policy.map(str::to_string)
}

/// The day of service: `billablePeriod.start`, else `item[0].servicedDate`; and the FHIRPath it
/// came from.
fn claim_service_date(is: &mut Issues, o: &Map<String, Value>) -> (Option<u64>, String) {
    let from_period = o.get("billablePeriod").and_then(|b| b.get("start"));
    let from_item = o
        .get("item")
        .and_then(|i| i.get(0))
        .and_then(|i| i.get("servicedDate"));
    let (v, at) = match (from_period, from_item) {
        (Some(s), _) => (s, "Claim.billablePeriod.start"),
        (None, Some(s)) => (s, "Claim.item[0].servicedDate"),
        (None, None) => {
            is.required(
                "Claim.billablePeriod.start",
                "the day of service (billablePeriod.start or item.servicedDate)",
            );
            return (None, String::new());
        }
    };
    let day = is.string(v, at).and_then(|s| is.keep(service_date(s, at)));
    (day, at.to_string())
}

/// `item`: at least one, each read whole.
fn claim_items(
    is: &mut Issues,
    o: &Map<String, Value>,
    service: Option<u64>,
    source: &str,
) -> Option<Vec<ClaimItem>> {
    let iv = is.need(o, "Claim", "item", "at least one item")?;
    let items = is.arr(iv, "Claim.item")?;
    let mut out = Vec::new();
    let mut all = true;
    for (i, it) in items.iter().enumerate() {
        match claim_item(is, it, i, service, source) {
            Some(item) => out.push(item),
            None => all = false,
        }
    }
    all.then_some(out)
}

fn claim_item(
    is: &mut Issues,
    it: &Value,
    i: usize,
    service: Option<u64>,
    source: &str,
) -> Option<ClaimItem> {
    let at = format!("Claim.item[{i}]");
    let io = is.obj(it, &at)?;
    is.elements(io, &at, ITEM_ELEMENTS);
    let dat = format!("{at}.servicedDate");
    if let Some(d) = io.get("servicedDate").filter(|_| dat != source) {
        let day = is
            .string(d, &dat)
            .and_then(|s| is.keep(service_date(s, &dat)));
        if let (Some(day), Some(service)) = (day, service) {
            if day / 86_400 != service / 86_400 {
                is.not_supported(
                    dat,
                    "a ledger claim has one day of service: send one claim for each day",
                );
            }
        }
    }
    let code = claim_item_code(is, io, &at);
    let modifier = claim_item_modifier(is, io, &at);
    let quantity = claim_item_quantity(is, io, &at);
    let unit_price = claim_item_price(is, io, &at);
    Some(ClaimItem {
        service_code: code?,
        quantity: quantity?,
        unit_price: unit_price?,
        modifier: modifier?,
    })
}

/// `item.productOrService`: the code of its first coding, whatever the system.
fn claim_item_code(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<String> {
    let pat = format!("{at}.productOrService");
    let pv = is.need(io, at, "productOrService", "the service billed")?;
    let pairs = is.concept(pv, &pat)?;
    let code = pairs.first().map(|(_, c)| c.to_string());
    if code.is_none() {
        is.required(format!("{pat}.coding[0].code"), "the service's code");
    }
    code
}

/// `item.modifier`: at most one; its first coding's code.
fn claim_item_modifier(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<String> {
    let Some(m) = io.get("modifier") else {
        return Some(String::new());
    };
    let mat = format!("{at}.modifier");
    let ms = is.arr(m, &mat)?;
    for j in 1..ms.len() {
        is.not_supported(
            format!("{mat}[{j}]"),
            "the ledger records one modifier per item",
        );
    }
    let pairs = is.concept(ms.first()?, &format!("{mat}[0]"))?;
    Some(
        pairs
            .first()
            .map(|(_, c)| c.to_string())
            .unwrap_or_default(),
    )
}

/// `item.quantity.value`: a whole number; absent, 1.
fn claim_item_quantity(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<u64> {
    let Some(q) = io.get("quantity") else {
        return Some(1);
    };
    let qat = format!("{at}.quantity");
    let qo = is.obj(q, &qat)?;
    let v = is.need(qo, &qat, "value", "how many")?;
    is.keep(positive_integer(v, &format!("{qat}.value")))
}

/// `item.unitPrice.value` in minor units.
fn claim_item_price(is: &mut Issues, io: &Map<String, Value>, at: &str) -> Option<u64> {
    let pat = format!("{at}.unitPrice");
    let p = is.need(io, at, "unitPrice", "the price of one unit")?;
    let po = is.obj(p, &pat)?;
    let v = is.need(po, &pat, "value", "the amount")?;
    is.keep(minor_units(v, &format!("{pat}.value")))
}

/// `total.value`, else Σ quantity × unit price; a total that is not that sum is refused here
/// as the ledger would (`TOTALS_MISMATCH`).
fn claim_total(
    is: &mut Issues,
    o: &Map<String, Value>,
    items: Option<&[ClaimItem]>,
) -> Option<u64> {
    let sum = items.map(|items| {
        items.iter().try_fold(0u64, |acc, i| {
            i.quantity
                .checked_mul(i.unit_price)
                .and_then(|x| acc.checked_add(x))
        })
    });
    if sum == Some(None) {
        is.value("Claim.item", "the total of the items overflows");
    }
    let Some(t) = o.get("total") else {
        return sum.flatten();
    };
    let to = is.obj(t, "Claim.total")?;
    let v = is.need(to, "Claim.total", "value", "the amount")?;
    let total = is.keep(minor_units(v, "Claim.total.value"))?;
    if let Some(Some(sum)) = sum {
        if sum != total {
            is.business_rule(
                "Claim.total",
                format!(
                    "the total ({}) is not the sum of quantity × unit price over the items ({})",
                    money(total)["value"],
                    money(sum)["value"]
                ),
            );
        }
    }
    Some(total)
}

/// `supportingInfo`: the ledger's evidence (access events) and records.
fn claim_supporting(
    is: &mut Issues,
    o: &Map<String, Value>,
    patient: Option<&str>,
) -> (Vec<u64>, Vec<String>) {
    let mut evidence = Vec::new();
    let mut records = Vec::new();
    let Some(infos) = o
        .get("supportingInfo")
        .and_then(|s| is.arr(s, "Claim.supportingInfo"))
    else {
        return (evidence, records);
    };
    for (i, s) in infos.iter().enumerate() {
        let at = format!("Claim.supportingInfo[{i}]");
        let Some(so) = is.obj(s, &at) else {
            continue;
        };
        is.elements(so, &at, INFO_ELEMENTS);
        let why = "access-event or record (urn:medledger:claim-info)";
        let Some(cat) = is
            .need(so, &at, "category", why)
            .and_then(|c| is.coded(c, &format!("{at}.category"), CLAIM_INFO_SYSTEM))
        else {
            continue;
        };
        let Some(r) = is.need(so, &at, "valueReference", "the access event or record") else {
            continue;
        };
        let rat = format!("{at}.valueReference");
        match cat {
            "access-event" => {
                if let Some(n) = evidence_index(is, r, &rat, patient) {
                    evidence.push(n);
                }
            }
            "record" => {
                let id = r
                    .get("identifier")
                    .filter(|i| i.get("system").and_then(Value::as_str) == Some(RECORD_SYSTEM))
                    .and_then(|i| i.get("value"))
                    .and_then(Value::as_str);
                match id {
                    Some(id) => records.push(id.to_string()),
                    None => is.value(
                        format!("{rat}.identifier"),
                        format!("a record is an identifier with system {RECORD_SYSTEM}"),
                    ),
                }
            }
            other => is.value(
                format!("{at}.category"),
                format!("the ledger records access-event and record, not {other:?}"),
            ),
        }
    }
    (evidence, records)
}

/// The index of an access event of `patient` named `AuditEvent/{patient}-{index}` (the ids the
/// AuditEvent search gives).
fn evidence_index(is: &mut Issues, r: &Value, rat: &str, patient: Option<&str>) -> Option<u64> {
    let at = format!("{rat}.reference");
    let Some(id) = r
        .get("reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("AuditEvent/"))
    else {
        is.value(at, "must be AuditEvent/{patient id}-{event index}");
        return None;
    };
    let patient = patient?;
    let index = id
        .strip_prefix(&format!("{patient}-"))
        .and_then(|n| n.parse::<u64>().ok());
    if index.is_none() {
        is.value(
            at,
            "evidence must be an access event of the claim's patient",
        );
    }
    index
}

fn status_outcome(s: i32) -> (&'static str, &'static str) {
    match ClaimStatus::try_from(s).unwrap_or(ClaimStatus::Unspecified) {
        ClaimStatus::Pending => ("queued", "pending: the insurer decides"),
        ClaimStatus::Approved => ("complete", "approved"),
        ClaimStatus::PartiallyApproved => ("partial", "partially approved"),
        ClaimStatus::Denied => ("complete", "denied"),
        ClaimStatus::Paid => ("complete", "approved and paid"),
        ClaimStatus::Appealed => ("queued", "appealed: the insurer decides again"),
        ClaimStatus::Unspecified => ("error", "unknown status"),
    }
}

fn adjudication(category: &str, amount: u64) -> Value {
    json!({
        "category": { "coding": [{ "system": ADJUDICATION, "code": category }] },
        "amount": money(amount),
    })
}

/// The ledger's claim as a FHIR R4 ClaimResponse (`created` is the submitting block's time).
pub fn claim_response(c: &Claim, created: u64) -> Value {
    let (outcome, disposition) = status_outcome(c.status);
    let items: Vec<Value> = c
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let claimed = item.quantity.saturating_mul(item.unit_price);
            let mut adj = vec![adjudication("submitted", claimed)];
            if let Some(d) = c.decisions.get(i) {
                adj.push(adjudication("eligible", d.approved_amount));
                adj.push(adjudication("copay", d.copay));
                adj.push(adjudication(
                    "benefit",
                    d.approved_amount.saturating_sub(d.copay),
                ));
                for r in &d.reasons {
                    adj.push(json!({
                        "category": { "coding": [{ "system": ADJUDICATION, "code": "eligible" }] },
                        "reason": { "coding": [{ "system": LEDGER_CODE_SYSTEM, "code": r }] },
                    }));
                }
            }
            json!({ "itemSequence": i + 1, "adjudication": adj })
        })
        .collect();
    let mut out = json!({
        "resourceType": "ClaimResponse",
        "id": c.id,
        "status": "active",
        "type": { "coding": [{ "system": CLAIM_TYPE, "code": "professional" }] },
        "use": "claim",
        "patient": { "reference": format!("Patient/{}", c.patient_id) },
        "created": instant(created),
        "insurer": { "reference": format!("Organization/{}", c.insurer) },
        "requestor": { "reference": format!("Organization/{}", c.provider) },
        "request": { "reference": format!("Claim/{}", c.id) },
        "outcome": outcome,
        "disposition": disposition,
        "item": items,
        "total": [
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "submitted" }] }, "amount": money(c.total_claimed) },
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "eligible" }] }, "amount": money(c.total_approved) },
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "copay" }] }, "amount": money(c.total_copay) },
            { "category": { "coding": [{ "system": ADJUDICATION, "code": "benefit" }] }, "amount": money(c.total_benefit) },
        ],
    });
    if c.status == ClaimStatus::Paid as i32 {
        out["payment"] = json!({
            "type": { "coding": [{ "system": PAYMENT_TYPE, "code": "complete" }] },
            "amount": money(c.total_benefit),
            "identifier": { "value": c.payment_reference },
        });
    }
    if c.appealed {
        out["processNote"] =
            json!([{ "number": 1, "type": "display", "text": "the provider appealed this claim" }]);
    }
    out
}

/// A FHIR `date` (UTC) of unix seconds.
pub fn date(secs: u64) -> String {
    utc_date(secs)
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

    fn consent() -> Consent {
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

    fn grant_of(v: &Value) -> GrantConsent {
        match consent_from_fhir(v) {
            Ok(ConsentIntent::Grant { grant, .. }) => grant,
            other => panic!("a grant, not {other:?}"),
        }
    }

    /// The errors of a refusal as `code@expression`, in the order found.
    fn errors(r: &Refusal) -> Vec<String> {
        r.errors()
            .map(|i| format!("{}@{}", i.kind.code(), i.element))
            .collect()
    }

    fn consent_errors(v: &Value) -> Vec<String> {
        errors(&consent_from_fhir(v).unwrap_err())
    }

    fn claim_errors(v: &Value) -> Vec<String> {
        errors(&claim_from_fhir(v).unwrap_err())
    }

    #[test]
    fn a_consent_round_trips_through_fhir() {
        let c = consent();
        let v = consent_to_fhir(&c);
        assert_eq!(v["status"], "active");
        assert_eq!(
            v["provision"]["actor"][0]["reference"]["reference"],
            "Organization/hospital-a"
        );
        let Mapped { value, warnings } = map_consent(&v).unwrap();
        assert_eq!(warnings, vec![], "what the ledger writes it reads whole");
        let ConsentIntent::Grant { patient_id, grant } = value else {
            panic!("a grant")
        };
        assert_eq!(patient_id, "pt-1");
        assert_eq!(grant.grantee, "hospital-a");
        assert_eq!(grant.data_classes, vec!["Observation"]);
        assert_eq!(grant.purposes, vec![Purpose::Treat as i32]);
        assert_eq!(grant.not_after, 1_800_000_000);
        assert_eq!(grant.deny_classes, vec!["MedicationRequest"]);
        assert_eq!(grant.record_ids, vec!["obs-9"]);
        assert_eq!(grant.actions, vec![Action::Read as i32]);
    }

    #[test]
    fn a_practitioner_grantee_travels_as_their_did() {
        let mut c = consent();
        c.grantee = "did:medledger:abc".into();
        assert_eq!(grant_of(&consent_to_fhir(&c)).grantee, "did:medledger:abc");
    }

    #[test]
    fn what_the_ledger_cannot_hold_is_named_not_dropped() {
        let refused = |f: &dyn Fn(&mut Value)| {
            let mut v = consent_to_fhir(&consent());
            f(&mut v);
            consent_errors(&v)
        };
        assert_eq!(
            refused(&|v| v["policyRule"]["coding"][0]["code"] = json!("OPTOUT")),
            ["not-supported@Consent.policyRule"]
        );
        assert_eq!(
            refused(&|v| v["provision"]["purpose"][0]["code"] = json!("PUBHLTH")),
            ["value@Consent.provision.purpose[0].code"]
        );
        assert_eq!(
            refused(&|v| v["provision"]["securityLabel"] = json!([{ "code": "R" }])),
            ["not-supported@Consent.provision.securityLabel"]
        );
        assert_eq!(
            refused(&|v| {
                let a = v["provision"]["actor"][0].clone();
                v["provision"]["actor"] = json!([a.clone(), a]);
            }),
            ["not-supported@Consent.provision.actor[1]"]
        );
        assert_eq!(
            refused(&|v| v["provision"]["type"] = json!("deny")),
            ["not-supported@Consent.provision.type"]
        );
        assert_eq!(
            refused(&|v| v["status"] = json!("proposed")),
            ["value@Consent.status"]
        );
        assert_eq!(
            refused(&|v| v["modifierExtension"] = json!([{ "url": "urn:x", "valueBoolean": true }])),
            ["not-supported@Consent.modifierExtension"]
        );
        assert_eq!(
            refused(&|v| v["scope"]["coding"][0]["code"] = json!("adr")),
            ["not-supported@Consent.scope"]
        );
    }

    /// One Consent with a fault in nearly every element: one answer names them all, each with
    /// the IssueType of its kind and its FHIRPath.
    #[test]
    fn every_issue_is_listed_at_once_with_its_code_and_path() {
        let v = json!({
            "resourceType": "Consent",
            "status": "active",
            "patient": { "reference": "Patient/pt-1" },
            "performer": [{ "reference": "RelatedPerson/peter" }],
            "dateTime": "2026-02-30",
            "policyRule": { "coding": [{ "system": ACT_CODE, "code": "OPTOUT" }] },
            "provision": {
                "period": { "start": "2027-01-02", "end": "2027-01-01" },
                "actor": [{ "role": { "coding": [{ "system": PARTICIPATION, "code": "CST" }] },
                            "reference": { "reference": "Organization/hospital-a" } }],
                "action": [{ "coding": [{ "system": CONSENT_ACTION, "code": "disclose" }] }],
                "purpose": [{ "system": ACT_REASON, "code": "PUBHLTH" }, "TREAT"],
                "class": [{ "system": "urn:ietf:bcp:13", "code": "application/pdf" }],
                "dataPeriod": { "start": "2020" },
                "provision": [{ "type": "deny", "purpose": [{ "system": ACT_REASON, "code": "TREAT" }] }],
            },
        });
        let r = consent_from_fhir(&v).unwrap_err();
        assert_eq!(
            errors(&r),
            [
                "value@Consent.dateTime",
                "not-supported@Consent.policyRule",
                "security@Consent.performer[0]",
                "not-supported@Consent.provision.dataPeriod",
                "business-rule@Consent.provision.period.end",
                "not-supported@Consent.provision.actor[0].role",
                "required@Consent.provision.actor",
                "value@Consent.provision.action[0].coding",
                "value@Consent.provision.purpose[0].code",
                "invalid@Consent.provision.purpose[1]",
                "value@Consent.provision.class[0].system",
                "not-supported@Consent.provision.provision[0].purpose",
                "required@Consent.provision.provision[0].class",
            ]
        );
        assert_eq!(r.more, 0);
        // As an OperationOutcome: every issue, with severity, code and expression.
        let o = r.outcome();
        assert_eq!(o["resourceType"], "OperationOutcome");
        let issues = o["issue"].as_array().unwrap();
        assert_eq!(issues.len(), r.issues.len());
        assert_eq!(issues[0]["severity"], "error");
        assert_eq!(issues[0]["code"], "value");
        assert_eq!(issues[0]["expression"], json!(["Consent.dateTime"]));
        assert!(issues[0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("\"2026-02-30\" is not an R4 date"));
    }

    #[test]
    fn a_refusal_past_the_limit_says_how_many_more() {
        let mut v = consent_to_fhir(&consent());
        for i in 0..MAX_ISSUES + 5 {
            v[format!("unknown{i:03}")] = json!(1);
        }
        let r = consent_from_fhir(&v).unwrap_err();
        assert_eq!((r.issues.len(), r.more), (MAX_ISSUES, 5));
        let issues = r.outcome_issues();
        assert_eq!(issues.len(), MAX_ISSUES + 1);
        assert_eq!(issues[MAX_ISSUES]["code"], "informational");
    }

    #[test]
    fn elements_the_ledger_does_not_record_are_accepted_with_a_warning() {
        let mut v = consent_to_fhir(&consent());
        v["identifier"] = json!([{ "system": "urn:oid:1.2.3", "value": "c-77" }]);
        v["organization"] = json!([{ "reference": "Organization/f001" }]);
        v["sourceAttachment"] = json!({ "title": "scan" });
        v["policy"] = json!([{ "uri": "https://example.org/policy" }]);
        v["verification"] = json!([{ "verified": true }]);
        v["category"] = json!([{ "coding": [{ "system": ACT_CODE, "code": "INFAO" }] }]);
        v["performer"] = json!([{ "reference": "Patient/pt-1" }]);
        v["extension"] = json!([{ "url": "urn:other", "valueString": "x" }]);
        v["provision"].as_object_mut().unwrap().remove("purpose");
        let Mapped { value, warnings } = map_consent(&v).unwrap();
        let ConsentIntent::Grant { grant, .. } = value else {
            panic!("a grant")
        };
        assert_eq!(
            grant.purposes,
            [
                Purpose::Treat,
                Purpose::Etreat,
                Purpose::Hpaymt,
                Purpose::Hoperat
            ]
            .map(|p| p as i32)
        );
        let got: Vec<String> = warnings
            .iter()
            .map(|w| format!("{}:{}@{}", w.severity.code(), w.kind.code(), w.element))
            .collect();
        assert_eq!(
            got,
            [
                "warning:not-supported@Consent.identifier",
                "warning:not-supported@Consent.organization",
                "warning:not-supported@Consent.policy",
                "warning:not-supported@Consent.sourceAttachment",
                "warning:not-supported@Consent.verification",
                "warning:not-supported@Consent.category[0]",
                "warning:not-supported@Consent.extension[0]",
                "warning:informational@Consent.provision.purpose",
            ]
        );
        let o = warnings_outcome(&warnings).unwrap();
        assert_eq!(o["issue"][0]["severity"], "warning");
        assert_eq!(warnings_outcome(&[]), None);
    }

    #[test]
    fn only_the_patient_gives_a_consent() {
        let mut v = consent_to_fhir(&consent());
        v["performer"] = json!([{ "reference": "Patient/pt-1" }]);
        assert!(consent_from_fhir(&v).is_ok());
        for other in [
            json!({ "reference": "Patient/pt-2" }),
            json!({ "reference": "Organization/hospital-a" }),
            json!({ "display": "the patient" }),
        ] {
            v["performer"] = json!([{ "reference": "Patient/pt-1" }, other]);
            assert_eq!(consent_errors(&v), ["security@Consent.performer[1]"]);
        }
    }

    #[test]
    fn an_inactive_consent_is_a_revocation() {
        let mut v = consent_to_fhir(&consent());
        v["status"] = json!("inactive");
        assert_eq!(
            consent_from_fhir(&v).unwrap(),
            ConsentIntent::Revoke {
                patient_id: "pt-1".into(),
                consent_id: "c-1".into()
            }
        );
        v.as_object_mut().unwrap().remove("id");
        assert_eq!(consent_errors(&v), ["required@Consent.id"]);
    }

    #[test]
    fn research_needs_its_study_and_records_need_a_class() {
        let mut v = consent_to_fhir(&consent());
        v["provision"]["purpose"] = json!([{ "system": ACT_REASON, "code": "HRESCH" }]);
        assert_eq!(consent_errors(&v), ["business-rule@Consent.extension"]);
        v["extension"] = json!([{ "url": STUDY_EXTENSION, "valueString": "study-1" }]);
        assert_eq!(grant_of(&v).study_id, "study-1");
        v["provision"]["purpose"] = json!([{ "system": ACT_REASON, "code": "TREAT" }]);
        assert_eq!(
            consent_errors(&v),
            ["business-rule@Consent.provision.purpose"]
        );
        // No purpose with a study: every purpose, research included.
        v["provision"].as_object_mut().unwrap().remove("purpose");
        assert!(grant_of(&v).purposes.contains(&(Purpose::Hresch as i32)));
        let mut v = consent_to_fhir(&consent());
        v["provision"].as_object_mut().unwrap().remove("class");
        assert_eq!(
            consent_errors(&v),
            ["business-rule@Consent.provision.class"]
        );
        v["provision"].as_object_mut().unwrap().remove("data");
        assert_eq!(grant_of(&v).data_classes, ["*"]);
    }

    #[test]
    fn fhir_times_parse_with_their_zones() {
        let start = |s: &str| parse_time(s, "x", Edge::Start);
        assert_eq!(start("1970-01-02").unwrap(), 86_400);
        assert_eq!(start("2026-11-26T00:00:00Z").unwrap(), 1_795_651_200);
        assert_eq!(start("2026-11-26T01:00:00+01:00").unwrap(), 1_795_651_200);
        assert_eq!(
            start("2024-02-29").unwrap(),
            start("2024-03-01").unwrap() - 86_400
        );
        // A start never lets in an earlier block time: a fraction rounds up.
        assert_eq!(start("2026-11-26T00:00:00.123Z").unwrap(), 1_795_651_201);
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-02-31",
            "2023-02-29",
            "2026-04-31",
            "2026-00",
            "2026-11-26T00:00:00",
            "2026-11-26T00:00Z",
            "2026-11-26t00:00:00z",
            "2026-11-26T24:00:00Z",
            "0000-01-01",
            "yesterday",
            "2026-11-2",
            "",
        ] {
            let e = start(bad).unwrap_err();
            assert_eq!(
                (e.kind, e.element.as_str()),
                (IssueKind::Value, "x"),
                "{bad}"
            );
        }
        assert_eq!(date(1_795_651_200), "2026-11-26");
    }

    #[test]
    fn a_date_only_end_includes_its_whole_day_month_or_year() {
        let end = |s: &str| parse_time(s, "x", Edge::End).unwrap();
        let start = |s: &str| parse_time(s, "x", Edge::Start).unwrap();
        assert_eq!(end("2027-12-31"), start("2028-01-01") - 1);
        assert_eq!(instant(end("2027-12-31")), "2027-12-31T23:59:59Z");
        assert_eq!(instant(end("2027-02")), "2027-02-28T23:59:59Z");
        assert_eq!(instant(end("2028-02")), "2028-02-29T23:59:59Z");
        assert_eq!(instant(end("2027")), "2027-12-31T23:59:59Z");
        assert_eq!(instant(start("2027")), "2027-01-01T00:00:00Z");
        // An instant is its own second, a fraction of it rounded down for an end.
        assert_eq!(end("2027-12-31T10:00:00.9Z"), start("2027-12-31T10:00:00Z"));
        // In a consent: the ledger's `time ≤ not_after` holds all through 2027-12-31.
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!({ "start": "2027-01-01", "end": "2027-12-31" });
        let grant = grant_of(&v);
        assert_eq!(grant.not_before, start("2027-01-01"));
        assert_eq!(grant.not_after, start("2028-01-01") - 1);
        // Out again, the period says the same.
        let back = consent_to_fhir(&Consent {
            not_before: grant.not_before,
            not_after: grant.not_after,
            ..consent()
        });
        assert_eq!(
            back["provision"]["period"],
            json!({ "start": "2027-01-01T00:00:00Z", "end": "2027-12-31T23:59:59Z" })
        );
    }

    /// A start before 1970 covers every block time, as no start does; an end before 1970 has no
    /// second to be stored in.
    #[test]
    fn a_start_before_1970_is_from_any_time_and_an_end_then_is_refused() {
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!({ "start": "1964-01-01", "end": "2016-01-01" });
        let Mapped { value, warnings } = map_consent(&v).unwrap();
        let ConsentIntent::Grant { grant, .. } = value else {
            panic!("a grant")
        };
        assert_eq!(grant.not_before, 0);
        assert_eq!(
            grant.not_after,
            parse_time("2016-01-02", "x", Edge::Start).unwrap() - 1
        );
        assert_eq!(
            (warnings[0].kind, warnings[0].element.as_str()),
            (IssueKind::Informational, "Consent.provision.period.start")
        );
        v["provision"]["period"] = json!({ "end": "1969-12-31" });
        let r = consent_from_fhir(&v).unwrap_err();
        assert_eq!(errors(&r), ["value@Consent.provision.period.end"]);
        assert!(r.issues[0].reason.contains("before 1970-01-01"), "{r}");
        assert!(parse_time("1969-12-31T23:59:59.5Z", "x", Edge::End).is_err());
        assert!(parse_time("1969", "x", Edge::End).is_err());
    }

    /// The ledger's 0 means "unset" in `not_before`, `not_after` and `service_date`: 1970-01-01
    /// never silently becomes that.
    #[test]
    fn the_first_day_of_1970_is_a_date_not_unset() {
        let mut v = consent_to_fhir(&consent());
        // An end on 1970-01-01 covers that day: its last second, not 0 ("no end").
        v["provision"]["period"] = json!({ "end": "1970-01-01" });
        assert_eq!(grant_of(&v).not_after, 86_399);
        // An end at its very first second would be 0: refused, not turned into no end.
        v["provision"]["period"] = json!({ "end": "1970-01-01T00:00:00Z" });
        let r = consent_from_fhir(&v).unwrap_err();
        assert_eq!(errors(&r), ["value@Consent.provision.period.end"]);
        assert!(r.issues[0].reason.contains("0 there means no end"), "{r}");
        // A start then is stored as 0, which the ledger reads as "from any time": the same,
        // since no block time is earlier.
        v["provision"]["period"] = json!({ "start": "1970-01-01" });
        assert_eq!(grant_of(&v).not_before, 0);
        // A claim's day of service 1970-01-01 would be 0 ("none"): refused at its path.
        let mut claim = a_claim();
        claim["billablePeriod"] = json!({ "start": "1970-01-01" });
        let r = claim_from_fhir(&claim).unwrap_err();
        assert_eq!(errors(&r), ["value@Claim.billablePeriod.start"]);
        assert!(r.issues[0].reason.contains("0 there"), "{r}");
    }

    #[test]
    fn a_period_that_ends_before_it_starts_breaks_a_business_rule() {
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!({ "start": "2027-01-02", "end": "2027-01-01" });
        assert_eq!(
            consent_errors(&v),
            ["business-rule@Consent.provision.period.end"]
        );
    }

    #[test]
    fn an_end_past_the_last_block_time_is_no_end() {
        let v = consent_to_fhir(&Consent {
            not_after: u64::MAX,
            ..consent()
        });
        assert!(v["provision"].get("period").is_none(), "{v}");
        let v = consent_to_fhir(&Consent {
            not_before: u64::MAX,
            not_after: 0,
            ..consent()
        });
        assert_eq!(
            v["provision"]["period"],
            json!({ "start": "9999-12-31T23:59:59Z" })
        );
    }

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
        claim["use"] = json!("preauthorization");
        claim["diagnosis"] = json!([{ "sequence": 1 }]);
        let second = claim["insurance"][0].clone();
        claim["insurance"].as_array_mut().unwrap().push(second);
        assert_eq!(
            claim_errors(&claim),
            [
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.use",
                "not-supported@Claim.insurance[1]",
                "business-rule@Claim.total",
            ]
        );
    }

    #[test]
    fn money_is_exact_in_minor_units() {
        assert_eq!(minor_units(&json!(12.5), "x").unwrap(), 1250);
        assert_eq!(minor_units(&json!(12), "x").unwrap(), 1200);
        assert_eq!(minor_units(&json!(0.07), "x").unwrap(), 7);
        assert!(minor_units(&json!(1.005), "x").is_err());
        assert!(minor_units(&json!(-1), "x").is_err());
        assert_eq!(money(1250), json!({ "value": 12.5 }));
        assert_eq!(money(7), json!({ "value": 0.07 }));
    }

    fn a_claim() -> Value {
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

    #[test]
    fn a_fhir_claim_becomes_a_submit_claim() {
        let Mapped { value, warnings } = map_claim(&a_claim()).unwrap();
        assert_eq!(warnings, vec![]);
        let (c, provider) = value;
        assert_eq!(provider.as_deref(), Some("hospital-a"));
        assert_eq!(c.patient_id, "pt-1");
        assert_eq!(c.insurer, "insurer-c");
        assert_eq!(c.policy_id, "basic");
        assert_eq!(c.items[0].unit_price, 7550);
        assert_eq!(c.items[0].quantity, 2);
        assert_eq!(c.total, 15100);
        assert_eq!(c.evidence, vec![3]);
        assert_eq!(
            c.service_date,
            parse_time("2026-11-25", "x", Edge::Start).unwrap()
        );
    }

    // ---- The official R4 examples (crates/gateway/tests/fixtures/fhir-examples) -----------------

    fn example(file: &str) -> Value {
        let path = format!(
            "{}/tests/fixtures/fhir-examples/{file}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    /// Sets (or, with `None`, removes) the element at JSON pointer `at`.
    fn patch(v: &mut Value, at: &str, with: Option<Value>) {
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

    fn coding(system: &str, code: &str) -> Value {
        json!({ "coding": [{ "system": system, "code": code }] })
    }

    /// The 12 Consent examples of R4: what each is refused for (`code@expression`, every error
    /// at once), and the changes that the refusal asks for, after which each is accepted: so
    /// nothing else stood in its way. docs/fhir.md, "Official examples", says why for each.
    #[test]
    fn the_official_consent_examples() {
        let recipient = || json!([{ "role": coding(PARTICIPATION, "IRCP"), "reference": { "reference": "Organization/f001" } }]);
        let optin = || Some(coding(ACT_CODE, "OPTIN"));
        let ircp = || Some(coding(PARTICIPATION, "IRCP"));
        let did = |d: &str| Some(json!({ "identifier": { "system": DID_SYSTEM, "value": d } }));
        type Fix = Vec<(&'static str, Option<Value>)>;
        let table: Vec<(&str, Vec<String>, Fix)> = vec![
            (
                "basic",
                strs(&["required@Consent.provision.actor"]),
                vec![("/provision/actor", Some(recipient()))],
            ),
            (
                "Out",
                strs(&[
                    "not-supported@Consent.policyRule",
                    "not-supported@Consent.provision.actor[0].role",
                    "required@Consent.provision.actor",
                ]),
                vec![
                    ("/policyRule", optin()),
                    ("/provision/actor/0/role", ircp()),
                ],
            ),
            (
                "Emergency",
                strs(&[
                    "not-supported@Consent.policyRule",
                    "not-supported@Consent.provision.actor[0].role",
                    "required@Consent.provision.actor",
                    "not-supported@Consent.provision.provision[0].actor",
                    "required@Consent.provision.provision[0].class",
                ]),
                vec![
                    ("/policyRule", optin()),
                    ("/provision/actor/0/role", ircp()),
                    ("/provision/provision/0/actor", None),
                    (
                        "/provision/provision/0/class",
                        Some(json!([{ "system": RESOURCE_TYPES, "code": "Observation" }])),
                    ),
                ],
            ),
            (
                "grantor",
                strs(&[
                    "not-supported@Consent.policyRule",
                    "not-supported@Consent.provision.actor[0].role",
                    "value@Consent.provision.actor[1].reference.reference",
                ]),
                vec![
                    ("/policyRule", optin()),
                    (
                        "/provision/actor/1/reference",
                        Some(json!({ "reference": "Organization/f001" })),
                    ),
                    ("/provision/actor/0", None),
                ],
            ),
            (
                "notAuthor",
                strs(&[
                    "not-supported@Consent.provision.actor[0].role",
                    "required@Consent.provision.actor",
                ]),
                vec![("/provision/actor/0/role", ircp())],
            ),
            (
                "notOrg",
                strs(&["not-supported@Consent.provision.type"]),
                vec![("/provision/type", Some(json!("permit")))],
            ),
            (
                "notThem",
                strs(&["value@Consent.provision.actor[0].reference.reference"]),
                vec![("/provision/actor/0/reference", did("did:medledger:f204"))],
            ),
            (
                "notThis",
                strs(&[
                    "required@Consent.provision.actor",
                    "not-supported@Consent.provision.data[0].meaning",
                    "value@Consent.provision.data[0].reference",
                    "business-rule@Consent.provision.class",
                ]),
                vec![
                    ("/provision/actor", Some(recipient())),
                    (
                        "/provision/data/0",
                        Some(
                            json!({ "meaning": "instance", "reference": { "identifier": { "system": RECORD_SYSTEM, "value": "lab-3" } } }),
                        ),
                    ),
                    (
                        "/provision/class",
                        Some(json!([{ "system": RESOURCE_TYPES, "code": "Task" }])),
                    ),
                ],
            ),
            (
                "notTime",
                strs(&["required@Consent.provision.actor"]),
                vec![("/provision/actor", Some(recipient()))],
            ),
            (
                "pkb",
                pkb_errors(),
                vec![
                    ("/policyRule", optin()),
                    ("/provision/securityLabel", None),
                    ("/provision/provision", None),
                ],
            ),
            (
                "signature",
                strs(&[
                    "value@Consent.provision.actor[0].reference.reference",
                    "not-supported@Consent.provision.provision[0].type",
                ]),
                vec![
                    ("/provision/actor/0/reference", did("did:medledger:13")),
                    ("/provision/provision", None),
                ],
            ),
            (
                "smartonfhir",
                strs(&[
                    "security@Consent.performer[0]",
                    "required@Consent.provision.actor",
                    "not-supported@Consent.provision.provision[0].type",
                ]),
                vec![
                    ("/performer/0", Some(json!({ "reference": "Patient/xcda" }))),
                    ("/provision/actor", Some(recipient())),
                    (
                        "/provision/class",
                        Some(json!([{ "system": RESOURCE_TYPES, "code": "MedicationRequest" }])),
                    ),
                    ("/provision/provision", None),
                ],
            ),
        ];
        assert_eq!(table.len(), 12);
        for (name, expected, fix) in table {
            let mut v = example(&format!("Consent-consent-example-{name}"));
            assert_eq!(consent_errors(&v), expected, "consent-example-{name}");
            for (at, with) in fix {
                patch(&mut v, at, with);
            }
            let Mapped { value, warnings } =
                map_consent(&v).unwrap_or_else(|r| panic!("consent-example-{name}, fixed: {r}"));
            let ConsentIntent::Grant { grant, .. } = value else {
                panic!("consent-example-{name}: a grant")
            };
            assert!(!grant.grantee.is_empty(), "consent-example-{name}");
            // The examples' elements the ledger does not record are named, not dropped.
            if v.get("organization").is_some() {
                assert!(
                    warnings.iter().any(|w| w.element == "Consent.organization"),
                    "consent-example-{name}: {warnings:?}"
                );
            }
        }
    }

    /// consent-example-pkb: an opt-out, a security label, and 11 nested provisions that limit
    /// by actor, action and security label (none has a type or a class).
    fn pkb_errors() -> Vec<String> {
        let mut e = strs(&[
            "not-supported@Consent.policyRule",
            "not-supported@Consent.provision.securityLabel",
        ]);
        for i in 0..11 {
            let n = format!("Consent.provision.provision[{i}]");
            e.extend([
                format!("required@{n}.type"),
                format!("not-supported@{n}.action"),
                format!("not-supported@{n}.actor"),
                format!("not-supported@{n}.securityLabel"),
                format!("required@{n}.class"),
            ]);
        }
        e
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// The 17 Claim examples of R4: each is refused, with every issue at once, for elements that
    /// `SubmitClaim` has no field for (care team, diagnosis, payee, …) or values it cannot take.
    /// Doing what each issue asks ([`fix_claim`]) makes every one acceptable: nothing else stood
    /// in its way.
    #[test]
    fn the_official_claim_examples() {
        let mut wrong = Vec::new();
        for (id, expected) in CLAIM_OUTCOMES {
            let mut v = example(&format!("Claim-{id}"));
            let got = match claim_from_fhir(&v) {
                Ok(_) => vec!["accepted".to_string()],
                Err(r) => errors(&r),
            };
            if got != expected {
                wrong.push(format!("{id}: {got:#?}"));
                continue;
            }
            for e in &got {
                fix_claim(&mut v, e);
            }
            if let Err(r) = claim_from_fhir(&v) {
                wrong.push(format!("{id}, fixed: {r}"));
            }
        }
        assert!(wrong.is_empty(), "outcomes differ:\n{}", wrong.join("\n"));
    }

    /// Does what the issue `code@expression` of a Claim example asks: leaves out an element the
    /// ledger has no field for (a second insurance, every supportingInfo that is not the
    /// ledger's), names the patient, insurer and coverage by reference, prices an item by its
    /// `net`, and leaves the total to the items.
    fn fix_claim(v: &mut Value, e: &str) {
        let (code, path) = e.split_once('@').unwrap();
        let o = v.as_object_mut().unwrap();
        if path.starts_with("Claim.supportingInfo") {
            o.remove("supportingInfo");
            return;
        }
        match (code, path) {
            (_, "Claim.patient.reference") => o["patient"] = json!({ "reference": "Patient/1" }),
            (_, "Claim.insurer.reference") => {
                o["insurer"] = json!({ "reference": "Organization/2" })
            }
            (_, "Claim.insurance[0].coverage.reference") => {
                o["insurance"][0]["coverage"] = json!({ "reference": "Coverage/9876B1" })
            }
            ("not-supported", "Claim.insurance[1]") => {
                o["insurance"].as_array_mut().unwrap().truncate(1)
            }
            ("business-rule", "Claim.total") => {
                o.remove("total");
            }
            ("required", p) if p.ends_with(".unitPrice") => {
                let pointer = fhir_pointer(p.trim_end_matches(".unitPrice"));
                let item = v.pointer_mut(&pointer).unwrap();
                item["unitPrice"] = item["net"].clone();
                item.as_object_mut().unwrap().remove("quantity");
            }
            ("not-supported", p) => patch(v, &fhir_pointer(p), None),
            _ => panic!("no fix for {e}"),
        }
    }

    /// The JSON pointer of a FHIRPath such as `Claim.item[2].detail`: `/item/2/detail`.
    fn fhir_pointer(path: &str) -> String {
        let (_, rest) = path.split_once('.').unwrap();
        format!("/{}", rest.replace(['.', '['], "/").replace(']', ""))
    }

    /// Each Claim example's errors (`code@expression`, in the order found); none is accepted.
    const CLAIM_OUTCOMES: [(&str, &[&str]); 17] = [
        (
            "100150",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "100151",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[1].bodySite",
                "not-supported@Claim.item[1].careTeamSequence",
                "not-supported@Claim.item[1].subSite",
                "not-supported@Claim.item[2].bodySite",
                "not-supported@Claim.item[2].careTeamSequence",
                "not-supported@Claim.item[2].detail",
                "not-supported@Claim.supportingInfo[0].code",
                "not-supported@Claim.supportingInfo[0].reason",
                "not-supported@Claim.supportingInfo[0].timingDate",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "not-supported@Claim.supportingInfo[1].valueString",
                "value@Claim.supportingInfo[1].category.coding",
            ],
        ),
        (
            "100152",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.contained",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "value@Claim.patient.reference",
                "value@Claim.insurer.reference",
                "value@Claim.insurance[0].coverage.reference",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "100153",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.fundsReserve",
                "not-supported@Claim.payee",
                "not-supported@Claim.use",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].diagnosisSequence",
                "not-supported@Claim.item[1].bodySite",
                "not-supported@Claim.item[1].careTeamSequence",
                "not-supported@Claim.item[1].subSite",
                "not-supported@Claim.item[1].servicedDate",
                "not-supported@Claim.item[2].bodySite",
                "not-supported@Claim.item[2].careTeamSequence",
                "not-supported@Claim.item[2].detail",
                "not-supported@Claim.item[2].servicedDate",
            ],
        ),
        (
            "100154",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "required@Claim.patient.reference",
                "required@Claim.insurer.reference",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "100155",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.contained",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "value@Claim.patient.reference",
                "required@Claim.insurer.reference",
                "value@Claim.insurance[0].coverage.reference",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "100156",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.contained",
                "not-supported@Claim.payee",
                "not-supported@Claim.procedure",
                "not-supported@Claim.referral",
                "not-supported@Claim.related",
                "not-supported@Claim.item[0].bodySite",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].factor",
                "not-supported@Claim.item[0].informationSequence",
                "not-supported@Claim.item[0].locationCodeableConcept",
                "not-supported@Claim.item[0].udi",
                "not-supported@Claim.item[1].bodySite",
                "not-supported@Claim.item[1].careTeamSequence",
                "not-supported@Claim.item[1].locationCodeableConcept",
                "not-supported@Claim.item[1].subSite",
                "not-supported@Claim.item[2].bodySite",
                "not-supported@Claim.item[2].careTeamSequence",
                "not-supported@Claim.item[2].detail",
                "not-supported@Claim.item[2].locationCodeableConcept",
                "not-supported@Claim.item[2].procedureSequence",
                "business-rule@Claim.total",
                "not-supported@Claim.supportingInfo[0].code",
                "not-supported@Claim.supportingInfo[0].timingDate",
                "value@Claim.supportingInfo[0].category.coding",
            ],
        ),
        (
            "660150",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "660151",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.prescription",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].detail",
            ],
        ),
        (
            "660152",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.contained",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.prescription",
                "not-supported@Claim.insurance[1]",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].category",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].programCode",
                "not-supported@Claim.item[0].revenue",
            ],
        ),
        (
            "760150",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "760151",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.originalPrescription",
                "not-supported@Claim.payee",
                "not-supported@Claim.prescription",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].informationSequence",
                "required@Claim.item[0].unitPrice",
                "not-supported@Claim.supportingInfo[0].code",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "not-supported@Claim.supportingInfo[1].valueQuantity",
                "value@Claim.supportingInfo[1].category.coding",
                "not-supported@Claim.supportingInfo[2].code",
                "not-supported@Claim.supportingInfo[2].valueQuantity",
                "value@Claim.supportingInfo[2].category.coding",
            ],
        ),
        (
            "760152",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].detail",
                "not-supported@Claim.item[0].informationSequence",
                "required@Claim.item[0].unitPrice",
                "not-supported@Claim.supportingInfo[0].code",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "not-supported@Claim.supportingInfo[1].valueQuantity",
                "value@Claim.supportingInfo[1].category.coding",
                "not-supported@Claim.supportingInfo[2].code",
                "not-supported@Claim.supportingInfo[2].valueQuantity",
                "value@Claim.supportingInfo[2].category.coding",
                "not-supported@Claim.supportingInfo[3].code",
                "value@Claim.supportingInfo[3].category.coding",
            ],
        ),
        (
            "860150",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
            ],
        ),
        (
            "960150",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.enterer",
                "not-supported@Claim.facility",
                "not-supported@Claim.payee",
                "not-supported@Claim.procedure",
                "not-supported@Claim.subType",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].encounter",
            ],
        ),
        (
            "960151",
            &[
                "not-supported@Claim.accident",
                "not-supported@Claim.careTeam",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.enterer",
                "not-supported@Claim.facility",
                "not-supported@Claim.payee",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].servicedDate",
                "not-supported@Claim.supportingInfo[0].timingPeriod",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].timingPeriod",
                "value@Claim.supportingInfo[1].category.coding",
            ],
        ),
        (
            "MED-00050",
            &[
                "not-supported@Claim.careTeam",
                "not-supported@Claim.contained",
                "not-supported@Claim.diagnosis",
                "not-supported@Claim.payee",
                "not-supported@Claim.subType",
                "value@Claim.patient.reference",
                "required@Claim.insurer.reference",
                "value@Claim.insurance[0].coverage.reference",
                "not-supported@Claim.item[0].careTeamSequence",
                "not-supported@Claim.item[0].diagnosisSequence",
                "not-supported@Claim.item[0].informationSequence",
                "not-supported@Claim.item[0].locationCodeableConcept",
                "not-supported@Claim.supportingInfo[0].timingPeriod",
                "value@Claim.supportingInfo[0].category.coding",
                "not-supported@Claim.supportingInfo[1].code",
                "value@Claim.supportingInfo[1].category.coding",
            ],
        ),
    ];

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

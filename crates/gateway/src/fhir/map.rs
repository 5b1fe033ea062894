//! FHIR R4 ⇄ ledger mappings (docs/fhir.md is the table). Pure functions: no I/O, no clock.
//!
//! Reading FHIR, anything the ledger cannot represent is refused with the element's path
//! ([`Unrepresentable`], answered 422), never dropped: an element this module does not know is
//! named, so a sender learns that its meaning would be lost.

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

/// How a FHIR input is refused, as R4's IssueType names it (`OperationOutcome.issue.code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// `required`: an element the ledger needs is missing.
    Required,
    /// `value`: an element's value is malformed, or one the ledger does not take (a date that
    /// does not exist, a purpose outside the ledger's five, `Patient/` missing from a reference).
    Value,
    /// `structure`: the JSON is not the shape FHIR gives the element (an object where a string
    /// goes).
    Structure,
    /// `not-supported`: an element the ledger has no field for, or more repetitions of one than
    /// it holds (a second grantee, a second insurance).
    NotSupported,
}

impl IssueKind {
    /// The R4 IssueType code.
    pub fn code(self) -> &'static str {
        match self {
            IssueKind::Required => "required",
            IssueKind::Value => "value",
            IssueKind::Structure => "structure",
            IssueKind::NotSupported => "not-supported",
        }
    }
}

/// An element of a FHIR input the ledger cannot take (answered 422 with [`IssueKind::code`]
/// and the element's FHIR path as `expression`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrepresentable {
    /// What is wrong with it.
    pub kind: IssueKind,
    /// FHIRPath-like location, e.g. `Consent.provision.purpose[1]`.
    pub element: String,
    /// Why.
    pub reason: String,
}

impl Unrepresentable {
    fn new(kind: IssueKind, element: impl Into<String>, reason: impl Into<String>) -> Self {
        Unrepresentable {
            kind,
            element: element.into(),
            reason: reason.into(),
        }
    }

    fn required(element: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(IssueKind::Required, element, reason)
    }

    fn value(element: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(IssueKind::Value, element, reason)
    }

    fn structure(element: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(IssueKind::Structure, element, reason)
    }

    fn not_supported(element: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(IssueKind::NotSupported, element, reason)
    }
}

type Res<T> = Result<T, Unrepresentable>;

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

fn obj<'a>(v: &'a Value, at: &str) -> Res<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| Unrepresentable::structure(at, "must be a JSON object"))
}

fn arr<'a>(v: &'a Value, at: &str) -> Res<&'a Vec<Value>> {
    v.as_array()
        .ok_or_else(|| Unrepresentable::structure(at, "must be a JSON array"))
}

fn string<'a>(v: &'a Value, at: &str) -> Res<&'a str> {
    v.as_str()
        .ok_or_else(|| Unrepresentable::structure(at, "must be a string"))
}

/// Refuses any key of `o` outside `known`, naming it.
fn only(o: &Map<String, Value>, at: &str, known: &[&str]) -> Res<()> {
    for k in o.keys() {
        if !known.contains(&k.as_str()) {
            return Err(Unrepresentable::not_supported(
                format!("{at}.{k}"),
                format!(
                    "the ledger has no field for this element (supported here: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The one coding of a CodeableConcept whose system is `system`.
fn coded<'a>(v: &'a Value, at: &str, system: &str) -> Res<&'a str> {
    let o = obj(v, at)?;
    only(o, at, &["coding", "text"])?;
    let codings = arr(
        o.get("coding").ok_or_else(|| {
            Unrepresentable::required(format!("{at}.coding"), "a coding is required")
        })?,
        &format!("{at}.coding"),
    )?;
    let mut found = None;
    for (i, c) in codings.iter().enumerate() {
        let cat = format!("{at}.coding[{i}]");
        let co = obj(c, &cat)?;
        if co.get("system").and_then(Value::as_str) == Some(system) {
            found = Some(string(
                co.get("code")
                    .ok_or_else(|| Unrepresentable::required(format!("{cat}.code"), "missing"))?,
                &format!("{cat}.code"),
            )?);
        }
    }
    found.ok_or_else(|| {
        Unrepresentable::value(
            format!("{at}.coding"),
            format!("no coding from {system}, the only system the ledger records here"),
        )
    })
}

/// A Coding (not a CodeableConcept) with system `system`.
fn coding<'a>(v: &'a Value, at: &str, system: &str) -> Res<&'a str> {
    let o = obj(v, at)?;
    only(o, at, &["system", "code", "display", "version"])?;
    if o.get("system").and_then(Value::as_str) != Some(system) {
        return Err(Unrepresentable::value(
            format!("{at}.system"),
            format!("must be {system}"),
        ));
    }
    string(
        o.get("code")
            .ok_or_else(|| Unrepresentable::required(format!("{at}.code"), "missing"))?,
        &format!("{at}.code"),
    )
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
    let span = fhir_span(s).ok_or_else(|| {
        Unrepresentable::value(
            at,
            format!(
                "{s:?} is not an R4 date (YYYY, YYYY-MM, YYYY-MM-DD, a day that exists) or \
                 dateTime (YYYY-MM-DDThh:mm:ss with Z or ±hh:mm)"
            ),
        )
    })?;
    if span.first < time::OffsetDateTime::UNIX_EPOCH {
        return Err(Unrepresentable::value(
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
    u64::try_from(secs).map_err(|_| Unrepresentable::value(at, format!("{s} is before 1970")))
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
        return Err(Unrepresentable::value(
            at,
            format!("{s} is not a day: a day of service is YYYY-MM-DD (or a dateTime)"),
        ));
    }
    match parse_time(s, at, Edge::Start)? {
        0 => Err(Unrepresentable::value(
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

/// Reads a FHIR R4 Consent into a grant or a revocation.
pub fn consent_from_fhir(v: &Value) -> Res<ConsentIntent> {
    let o = obj(v, "Consent")?;
    if o.get("resourceType").and_then(Value::as_str) != Some("Consent") {
        return Err(Unrepresentable::value(
            "Consent.resourceType",
            "must be \"Consent\"",
        ));
    }
    only(
        o,
        "Consent",
        &[
            "resourceType",
            "id",
            "meta",
            "text",
            "extension",
            "status",
            "scope",
            "category",
            "patient",
            "dateTime",
            "policyRule",
            "provision",
        ],
    )?;
    let patient_ref = string(
        obj(
            o.get("patient")
                .ok_or_else(|| Unrepresentable::required("Consent.patient", "required"))?,
            "Consent.patient",
        )?
        .get("reference")
        .ok_or_else(|| Unrepresentable::required("Consent.patient.reference", "required"))?,
        "Consent.patient.reference",
    )?;
    let patient_id = patient_ref
        .strip_prefix("Patient/")
        .filter(|p| !p.is_empty() && !p.contains('/'))
        .ok_or_else(|| {
            Unrepresentable::value(
                "Consent.patient.reference",
                "must be Patient/{ledger patient id}",
            )
        })?
        .to_string();
    if let Some(rule) = o.get("policyRule") {
        let code = coded(rule, "Consent.policyRule", ACT_CODE)?;
        if code != "OPTIN" {
            return Err(Unrepresentable::value(
                "Consent.policyRule",
                format!("the ledger has rules for OPTIN consents only, not {code:?}"),
            ));
        }
    }
    let mut study_id = String::new();
    if let Some(exts) = o.get("extension") {
        for (i, e) in arr(exts, "Consent.extension")?.iter().enumerate() {
            let at = format!("Consent.extension[{i}]");
            let eo = obj(e, &at)?;
            if eo.get("url").and_then(Value::as_str) != Some(STUDY_EXTENSION) {
                return Err(Unrepresentable::not_supported(at, "unknown extension"));
            }
            study_id = string(
                eo.get("valueString").ok_or_else(|| {
                    Unrepresentable::required(format!("{at}.valueString"), "required")
                })?,
                &format!("{at}.valueString"),
            )?
            .to_string();
        }
    }
    let status = string(
        o.get("status")
            .ok_or_else(|| Unrepresentable::required("Consent.status", "required"))?,
        "Consent.status",
    )?;
    match status {
        "active" => {}
        "inactive" => {
            let id = o.get("id").and_then(Value::as_str).ok_or_else(|| {
                Unrepresentable::required(
                    "Consent.id",
                    "an inactive Consent revokes the consent with this id",
                )
            })?;
            return Ok(ConsentIntent::Revoke {
                patient_id,
                consent_id: id.to_string(),
            });
        }
        other => {
            return Err(Unrepresentable::value(
                "Consent.status",
                format!(
                    "the ledger records active grants and revocations (inactive), not {other:?}"
                ),
            ))
        }
    }
    let p = obj(
        o.get("provision").ok_or_else(|| {
            Unrepresentable::required("Consent.provision", "a grant needs a provision")
        })?,
        "Consent.provision",
    )?;
    only(
        p,
        "Consent.provision",
        &[
            "type",
            "period",
            "actor",
            "action",
            "purpose",
            "class",
            "data",
            "provision",
        ],
    )?;
    if let Some(t) = p.get("type") {
        if string(t, "Consent.provision.type")? != "permit" {
            return Err(Unrepresentable::value(
                "Consent.provision.type",
                "the top provision of a grant must permit",
            ));
        }
    }
    let mut grant = GrantConsent {
        study_id,
        ..Default::default()
    };
    if let Some(period) = p.get("period") {
        let po = obj(period, "Consent.provision.period")?;
        only(po, "Consent.provision.period", &["start", "end"])?;
        // A start at 1970-01-01T00:00:00Z is stored as 0, which the ledger reads as no start:
        // the same thing, since no block time is earlier.
        if let Some(s) = po.get("start") {
            let at = "Consent.provision.period.start";
            grant.not_before = parse_time(string(s, at)?, at, Edge::Start)?;
        }
        if let Some(e) = po.get("end") {
            let at = "Consent.provision.period.end";
            let end = string(e, at)?;
            grant.not_after = parse_time(end, at, Edge::End)?;
            // The ledger's not_after 0 means no end: an end at the very first second of 1970
            // would become a consent without end, so it is refused instead.
            if grant.not_after == 0 {
                return Err(Unrepresentable::value(
                    at,
                    format!(
                        "the ledger cannot hold an end at {end}: it stores the last second a \
                         consent covers, and 0 there means no end"
                    ),
                ));
            }
            if grant.not_after < grant.not_before {
                return Err(Unrepresentable::value(
                    at,
                    "the period ends before it starts",
                ));
            }
        }
    }
    let actors = arr(
        p.get("actor").ok_or_else(|| {
            Unrepresentable::required(
                "Consent.provision.actor",
                "name the one recipient (grantee)",
            )
        })?,
        "Consent.provision.actor",
    )?;
    if actors.len() != 1 {
        let kind = if actors.is_empty() {
            IssueKind::Required
        } else {
            IssueKind::NotSupported
        };
        return Err(Unrepresentable::new(
            kind,
            "Consent.provision.actor",
            format!(
                "a ledger consent has exactly one grantee; this names {} (send one Consent each)",
                actors.len()
            ),
        ));
    }
    let ao = obj(&actors[0], "Consent.provision.actor[0]")?;
    only(ao, "Consent.provision.actor[0]", &["role", "reference"])?;
    let r = obj(
        ao.get("reference").ok_or_else(|| {
            Unrepresentable::required("Consent.provision.actor[0].reference", "required")
        })?,
        "Consent.provision.actor[0].reference",
    )?;
    grant.grantee = if let Some(reference) = r.get("reference").and_then(Value::as_str) {
        reference
            .strip_prefix("Organization/")
            .filter(|m| !m.is_empty() && !m.contains('/'))
            .ok_or_else(|| {
                Unrepresentable::value(
                    "Consent.provision.actor[0].reference.reference",
                    "a member is Organization/{member id}; a practitioner is an identifier with their DID",
                )
            })?
            .to_string()
    } else if let Some(ident) = r.get("identifier") {
        let io = obj(ident, "Consent.provision.actor[0].reference.identifier")?;
        let value = io.get("value").and_then(Value::as_str).unwrap_or("");
        if !value.starts_with("did:") {
            return Err(Unrepresentable::value(
                "Consent.provision.actor[0].reference.identifier.value",
                "a practitioner is named by their DID (did:medledger:…)",
            ));
        }
        value.to_string()
    } else {
        return Err(Unrepresentable::required(
            "Consent.provision.actor[0].reference",
            "needs a reference (Organization/{member}) or an identifier (DID)",
        ));
    };
    if let Some(actions) = p.get("action") {
        for (i, a) in arr(actions, "Consent.provision.action")?.iter().enumerate() {
            let at = format!("Consent.provision.action[{i}]");
            let act = match coded(a, &at, CONSENT_ACTION)? {
                "access" | "use" => Action::Read,
                "correct" => Action::Write,
                other => {
                    return Err(Unrepresentable::value(
                        at,
                        format!(
                        "the ledger's actions are access (READ) and correct (WRITE), not {other:?}"
                    ),
                    ))
                }
            };
            if !grant.actions.contains(&(act as i32)) {
                grant.actions.push(act as i32);
            }
        }
    }
    let purposes = arr(
        p.get("purpose").ok_or_else(|| {
            Unrepresentable::required("Consent.provision.purpose", "name at least one purpose")
        })?,
        "Consent.provision.purpose",
    )?;
    for (i, c) in purposes.iter().enumerate() {
        let at = format!("Consent.provision.purpose[{i}]");
        let code = coding(c, &at, ACT_REASON)?;
        let purpose = purpose_from_code(code).ok_or_else(|| {
            Unrepresentable::value(
                format!("{at}.code"),
                format!("the ledger's purposes are TREAT, ETREAT, HPAYMT, HOPERAT and HRESCH, not {code:?}"),
            )
        })?;
        grant.purposes.push(purpose as i32);
    }
    if let Some(classes) = p.get("class") {
        for (i, c) in arr(classes, "Consent.provision.class")?.iter().enumerate() {
            grant.data_classes.push(
                coding(c, &format!("Consent.provision.class[{i}]"), RESOURCE_TYPES)?.to_string(),
            );
        }
    }
    if let Some(data) = p.get("data") {
        for (i, d) in arr(data, "Consent.provision.data")?.iter().enumerate() {
            let at = format!("Consent.provision.data[{i}]");
            let dobj = obj(d, &at)?;
            only(dobj, &at, &["meaning", "reference"])?;
            if dobj.get("meaning").and_then(Value::as_str) != Some("instance") {
                return Err(Unrepresentable::value(
                    format!("{at}.meaning"),
                    "the ledger covers specific records (instance) only",
                ));
            }
            let id = dobj
                .get("reference")
                .and_then(|r| r.get("identifier"))
                .filter(|i| i.get("system").and_then(Value::as_str) == Some(RECORD_SYSTEM))
                .and_then(|i| i.get("value"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    Unrepresentable::value(
                        format!("{at}.reference"),
                        format!("name the record by identifier {{system {RECORD_SYSTEM}, value: record id}}"),
                    )
                })?;
            grant.record_ids.push(id.to_string());
        }
    }
    if grant.data_classes.is_empty() && grant.record_ids.is_empty() {
        grant.data_classes.push("*".into());
    }
    if let Some(nested) = p.get("provision") {
        for (i, n) in arr(nested, "Consent.provision.provision")?
            .iter()
            .enumerate()
        {
            let at = format!("Consent.provision.provision[{i}]");
            let no = obj(n, &at)?;
            only(no, &at, &["type", "class"])?;
            if no.get("type").and_then(Value::as_str) != Some("deny") {
                return Err(Unrepresentable::value(
                    format!("{at}.type"),
                    "nested provisions can only deny classes (the ledger's deny exceptions)",
                ));
            }
            let classes = arr(
                no.get("class")
                    .ok_or_else(|| Unrepresentable::required(format!("{at}.class"), "required"))?,
                &format!("{at}.class"),
            )?;
            for (j, c) in classes.iter().enumerate() {
                grant
                    .deny_classes
                    .push(coding(c, &format!("{at}.class[{j}]"), RESOURCE_TYPES)?.to_string());
            }
        }
    }
    Ok(ConsentIntent::Grant { patient_id, grant })
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
        .ok_or_else(|| Unrepresentable::structure(at, "must be a number"))?;
    let s = n.to_string();
    let bad = || {
        Unrepresentable::value(
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
        return Err(Unrepresentable::value(
            at,
            "the ledger bills whole quantities",
        ));
    }
    Ok(units / 100)
}

/// Reads a FHIR R4 Claim into the ledger's SubmitClaim. The provider is whoever signs; the
/// `provider` element, if a member reference, must name `provider` (checked by the caller).
pub fn claim_from_fhir(v: &Value) -> Res<(SubmitClaim, Option<String>)> {
    let o = obj(v, "Claim")?;
    if o.get("resourceType").and_then(Value::as_str) != Some("Claim") {
        return Err(Unrepresentable::value(
            "Claim.resourceType",
            "must be \"Claim\"",
        ));
    }
    only(
        o,
        "Claim",
        &[
            "resourceType",
            "id",
            "meta",
            "text",
            "identifier",
            "status",
            "type",
            "use",
            "patient",
            "billablePeriod",
            "created",
            "insurer",
            "provider",
            "priority",
            "supportingInfo",
            "insurance",
            "item",
            "total",
        ],
    )?;
    if let Some(s) = o.get("status") {
        if string(s, "Claim.status")? != "active" {
            return Err(Unrepresentable::value(
                "Claim.status",
                "only an active claim is submitted",
            ));
        }
    }
    if let Some(u) = o.get("use") {
        if string(u, "Claim.use")? != "claim" {
            return Err(Unrepresentable::value(
                "Claim.use",
                "the ledger adjudicates claims, not preauthorizations or predeterminations",
            ));
        }
    }
    let reference = |key: &str, prefix: &str| -> Res<String> {
        let at = format!("Claim.{key}.reference");
        let r = o
            .get(key)
            .and_then(|p| p.get("reference"))
            .and_then(Value::as_str)
            .ok_or_else(|| Unrepresentable::required(&at, "required"))?;
        r.strip_prefix(prefix)
            .filter(|x| !x.is_empty() && !x.contains('/'))
            .map(str::to_string)
            .ok_or_else(|| Unrepresentable::value(&at, format!("must be {prefix}{{id}}")))
    };
    let mut claim = SubmitClaim {
        patient_id: reference("patient", "Patient/")?,
        insurer: reference("insurer", "Organization/")?,
        ..Default::default()
    };
    let provider = reference("provider", "Organization/").ok();
    let insurance = arr(
        o.get("insurance")
            .ok_or_else(|| Unrepresentable::required("Claim.insurance", "required"))?,
        "Claim.insurance",
    )?;
    if insurance.len() != 1 {
        let kind = if insurance.is_empty() {
            IssueKind::Required
        } else {
            IssueKind::NotSupported
        };
        return Err(Unrepresentable::new(
            kind,
            "Claim.insurance",
            "the ledger adjudicates against one coverage: send exactly one insurance",
        ));
    }
    claim.policy_id = insurance[0]
        .get("coverage")
        .and_then(|c| {
            c.get("identifier")
                .and_then(|i| i.get("value"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    c.get("reference")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("Coverage/"))
                        .map(str::to_string)
                })
        })
        .ok_or_else(|| {
            Unrepresentable::required(
                "Claim.insurance[0].coverage",
                "name the insurer's policy: Coverage/{policy id} or identifier.value",
            )
        })?;
    let service = o
        .get("billablePeriod")
        .and_then(|b| b.get("start"))
        .map(|s| (s, "Claim.billablePeriod.start"))
        .or_else(|| {
            o.get("item")
                .and_then(|i| i.get(0))
                .and_then(|i| i.get("servicedDate"))
                .map(|s| (s, "Claim.item[0].servicedDate"))
        })
        .ok_or_else(|| {
            Unrepresentable::required(
                "Claim.billablePeriod.start",
                "the date of service is required (billablePeriod.start or item.servicedDate)",
            )
        })?;
    claim.service_date = service_date(string(service.0, service.1)?, service.1)?;
    let items = arr(
        o.get("item")
            .ok_or_else(|| Unrepresentable::required("Claim.item", "at least one item"))?,
        "Claim.item",
    )?;
    for (i, it) in items.iter().enumerate() {
        let at = format!("Claim.item[{i}]");
        let io = obj(it, &at)?;
        only(
            io,
            &at,
            &[
                "sequence",
                "productOrService",
                "modifier",
                "servicedDate",
                "quantity",
                "unitPrice",
                "net",
            ],
        )?;
        if let Some(d) = io.get("servicedDate") {
            let dat = format!("{at}.servicedDate");
            let t = service_date(string(d, &dat)?, &dat)?;
            if t / 86_400 != claim.service_date / 86_400 {
                return Err(Unrepresentable::value(
                    format!("{at}.servicedDate"),
                    "a ledger claim has one day of service",
                ));
            }
        }
        let code = io
            .get("productOrService")
            .and_then(|p| p.get("coding"))
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("code"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Unrepresentable::required(
                    format!("{at}.productOrService.coding[0].code"),
                    "required",
                )
            })?;
        let modifier = match io.get("modifier") {
            None => String::new(),
            Some(m) => {
                let ms = arr(m, &format!("{at}.modifier"))?;
                if ms.len() > 1 {
                    return Err(Unrepresentable::not_supported(
                        format!("{at}.modifier"),
                        "the ledger records one modifier per item",
                    ));
                }
                ms.first()
                    .and_then(|m| m.get("coding"))
                    .and_then(|c| c.get(0))
                    .and_then(|c| c.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            }
        };
        let quantity = match io.get("quantity") {
            None => 1,
            Some(q) => positive_integer(
                q.get("value").ok_or_else(|| {
                    Unrepresentable::required(format!("{at}.quantity.value"), "required")
                })?,
                &format!("{at}.quantity.value"),
            )?,
        };
        let unit_price = minor_units(
            io.get("unitPrice")
                .and_then(|p| p.get("value"))
                .ok_or_else(|| {
                    Unrepresentable::required(format!("{at}.unitPrice.value"), "required")
                })?,
            &format!("{at}.unitPrice.value"),
        )?;
        claim.items.push(ClaimItem {
            service_code: code.to_string(),
            quantity,
            unit_price,
            modifier,
        });
    }
    claim.total = match o.get("total").and_then(|t| t.get("value")) {
        Some(t) => minor_units(t, "Claim.total.value")?,
        None => claim
            .items
            .iter()
            .try_fold(0u64, |acc, i| {
                i.quantity
                    .checked_mul(i.unit_price)
                    .and_then(|x| acc.checked_add(x))
            })
            .ok_or_else(|| Unrepresentable::value("Claim.item", "the total overflows"))?,
    };
    if let Some(infos) = o.get("supportingInfo") {
        for (i, s) in arr(infos, "Claim.supportingInfo")?.iter().enumerate() {
            let at = format!("Claim.supportingInfo[{i}]");
            let so = obj(s, &at)?;
            only(so, &at, &["sequence", "category", "valueReference"])?;
            let cat = coded(
                so.get("category").ok_or_else(|| {
                    Unrepresentable::required(format!("{at}.category"), "required")
                })?,
                &format!("{at}.category"),
                CLAIM_INFO_SYSTEM,
            )?;
            let r = so.get("valueReference").ok_or_else(|| {
                Unrepresentable::required(format!("{at}.valueReference"), "required")
            })?;
            match cat {
                "access-event" => {
                    // AuditEvent ids are `{patient}-{index}` (the AuditEvent export's ids).
                    let id = r
                        .get("reference")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("AuditEvent/"))
                        .ok_or_else(|| {
                            Unrepresentable::value(
                                format!("{at}.valueReference.reference"),
                                "must be AuditEvent/{patient id}-{event index}",
                            )
                        })?;
                    let index = id
                        .strip_prefix(&format!("{}-", claim.patient_id))
                        .and_then(|n| n.parse::<u64>().ok())
                        .ok_or_else(|| {
                            Unrepresentable::value(
                                format!("{at}.valueReference.reference"),
                                "evidence must be an access event of the claim's patient",
                            )
                        })?;
                    claim.evidence.push(index);
                }
                "record" => {
                    let id = r
                        .get("identifier")
                        .filter(|i| i.get("system").and_then(Value::as_str) == Some(RECORD_SYSTEM))
                        .and_then(|i| i.get("value"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            Unrepresentable::value(
                                format!("{at}.valueReference.identifier"),
                                format!("a record is an identifier with system {RECORD_SYSTEM}"),
                            )
                        })?;
                    claim.record_ids.push(id.to_string());
                }
                other => {
                    return Err(Unrepresentable::value(
                        format!("{at}.category"),
                        format!("the ledger records access-event and record, not {other:?}"),
                    ))
                }
            }
        }
    }
    Ok((claim, provider))
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

    #[test]
    fn a_consent_round_trips_through_fhir() {
        let c = consent();
        let v = consent_to_fhir(&c);
        assert_eq!(v["status"], "active");
        assert_eq!(
            v["provision"]["actor"][0]["reference"]["reference"],
            "Organization/hospital-a"
        );
        let ConsentIntent::Grant { patient_id, grant } = consent_from_fhir(&v).unwrap() else {
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
        let v = consent_to_fhir(&c);
        let ConsentIntent::Grant { grant, .. } = consent_from_fhir(&v).unwrap() else {
            panic!()
        };
        assert_eq!(grant.grantee, "did:medledger:abc");
    }

    #[test]
    fn what_the_ledger_cannot_hold_is_named_not_dropped() {
        let mut v = consent_to_fhir(&consent());
        v["policyRule"]["coding"][0]["code"] = json!("OPTOUT");
        assert_eq!(
            consent_from_fhir(&v).unwrap_err().element,
            "Consent.policyRule"
        );
        let mut v = consent_to_fhir(&consent());
        v["provision"]["purpose"][0]["code"] = json!("PUBHLTH");
        assert_eq!(
            consent_from_fhir(&v).unwrap_err().element,
            "Consent.provision.purpose[0].code"
        );
        let mut v = consent_to_fhir(&consent());
        v["sourceAttachment"] = json!({ "title": "scan" });
        assert_eq!(
            consent_from_fhir(&v).unwrap_err().element,
            "Consent.sourceAttachment"
        );
        let mut v = consent_to_fhir(&consent());
        v["provision"]["actor"] = json!([v["provision"]["actor"][0], v["provision"]["actor"][0]]);
        assert_eq!(
            consent_from_fhir(&v).unwrap_err().element,
            "Consent.provision.actor"
        );
        let mut v = consent_to_fhir(&consent());
        v["status"] = json!("proposed");
        assert_eq!(consent_from_fhir(&v).unwrap_err().element, "Consent.status");
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
        let ConsentIntent::Grant { grant, .. } = consent_from_fhir(&v).unwrap() else {
            panic!("a grant")
        };
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

    #[test]
    fn dates_before_1970_are_refused_and_say_why() {
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!({ "start": "1964-01-01" });
        let e = consent_from_fhir(&v).unwrap_err();
        assert_eq!(e.kind, IssueKind::Value);
        assert_eq!(e.element, "Consent.provision.period.start");
        assert!(e.reason.contains("before 1970-01-01"), "{}", e.reason);
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
        let ConsentIntent::Grant { grant, .. } = consent_from_fhir(&v).unwrap() else {
            panic!("a grant")
        };
        assert_eq!(grant.not_after, 86_399);
        // An end at its very first second would be 0: refused, not turned into no end.
        v["provision"]["period"] = json!({ "end": "1970-01-01T00:00:00Z" });
        let e = consent_from_fhir(&v).unwrap_err();
        assert_eq!(e.kind, IssueKind::Value);
        assert_eq!(e.element, "Consent.provision.period.end");
        assert!(e.reason.contains("0 there means no end"), "{}", e.reason);
        // A start then is stored as 0, which the ledger reads as "from any time": the same,
        // since no block time is earlier.
        v["provision"]["period"] = json!({ "start": "1970-01-01" });
        let ConsentIntent::Grant { grant, .. } = consent_from_fhir(&v).unwrap() else {
            panic!("a grant")
        };
        assert_eq!(grant.not_before, 0);
        // A claim's day of service 1970-01-01 would be 0 ("none"): refused at its path.
        let mut claim = a_claim();
        claim["billablePeriod"] = json!({ "start": "1970-01-01" });
        let e = claim_from_fhir(&claim).unwrap_err();
        assert_eq!(
            (e.kind, e.element.as_str()),
            (IssueKind::Value, "Claim.billablePeriod.start")
        );
        assert!(e.reason.contains("0 there"), "{}", e.reason);
    }

    #[test]
    fn a_period_that_ends_before_it_starts_is_refused_at_its_end() {
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!({ "start": "2027-01-02", "end": "2027-01-01" });
        let e = consent_from_fhir(&v).unwrap_err();
        assert_eq!(
            (e.kind, e.element.as_str()),
            (IssueKind::Value, "Consent.provision.period.end")
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
        let code = |v: &Value| consent_from_fhir(v).unwrap_err();
        let mut v = consent_to_fhir(&consent());
        v["provision"].as_object_mut().unwrap().remove("purpose");
        let e = code(&v);
        assert_eq!(
            (e.kind.code(), e.element.as_str()),
            ("required", "Consent.provision.purpose")
        );
        let mut v = consent_to_fhir(&consent());
        v["provision"]["purpose"][0]["code"] = json!("PUBHLTH");
        assert_eq!(code(&v).kind.code(), "value");
        let mut v = consent_to_fhir(&consent());
        v["sourceAttachment"] = json!({ "title": "scan" });
        let e = code(&v);
        assert_eq!(
            (e.kind.code(), e.element.as_str()),
            ("not-supported", "Consent.sourceAttachment")
        );
        let mut v = consent_to_fhir(&consent());
        v["provision"]["actor"] = json!([v["provision"]["actor"][0], v["provision"]["actor"][0]]);
        assert_eq!(code(&v).kind.code(), "not-supported");
        let mut v = consent_to_fhir(&consent());
        v["provision"]["actor"] = json!([]);
        assert_eq!(code(&v).kind.code(), "required");
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!("2027");
        assert_eq!(code(&v).kind.code(), "structure");
        let mut claim = a_claim();
        claim["item"][0]
            .as_object_mut()
            .unwrap()
            .remove("unitPrice");
        let e = claim_from_fhir(&claim).unwrap_err();
        assert_eq!(
            (e.kind.code(), e.element.as_str()),
            ("required", "Claim.item[0].unitPrice.value")
        );
        let mut claim = a_claim();
        claim["item"][0]["servicedDate"] = json!("2026-11");
        let e = claim_from_fhir(&claim).unwrap_err();
        assert_eq!(
            (e.kind.code(), e.element.as_str()),
            ("value", "Claim.item[0].servicedDate")
        );
        let mut claim = a_claim();
        claim["item"][0]["servicedDate"] = json!("2026-11-31");
        assert_eq!(
            claim_from_fhir(&claim).unwrap_err().element,
            "Claim.item[0].servicedDate"
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
        let v = a_claim();
        let (c, provider) = claim_from_fhir(&v).unwrap();
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
}

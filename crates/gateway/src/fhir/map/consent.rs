//! Consent: the ledger's consent as a FHIR R4 Consent, and a FHIR Consent read into a grant or
//! a revocation (docs/fhir.md, "Consent").

use medledger_tx::pb::{Action, Consent, GrantConsent, Purpose};
use serde_json::{json, Map, Value};

use medledger_query::export::LAST_SECOND;

use super::read::{Issues, Treat};
use super::time::{fhir_span, instant, not_a_date, parse_time, period_start, Edge};
use super::{
    record_id, reference_id, IssueKind, Mapped, Refusal, ACT_CODE, ACT_REASON, CONSENT_ACTION,
    CONSENT_CATEGORY_LOINC, CONSENT_SCOPE, DID_SYSTEM, PARTICIPATION, RECORD_SYSTEM,
    RESOURCE_TYPES,
};

/// The ledger purpose as its HL7 v3 ActReason code.
pub fn purpose_code(p: i32) -> Option<&'static str> {
    Some(match Purpose::try_from(p).ok()? {
        Purpose::Unspecified => return None,
        Purpose::Treat => "TREAT",
        Purpose::Etreat => "ETREAT",
        Purpose::Hpaymt => "HPAYMT",
        Purpose::Hoperat => "HOPERAT",
        Purpose::Hresch => "HRESCH",
        Purpose::Patrqt => "PATRQT",
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

/// What a PUT of a consent may differ in from the consent it updates without changing it: what
/// the ledger does not record (`meta`, `text`) and `status`, the one change it makes.
const UPDATE_FREE: &[&str] = &["meta", "text", "status"];

/// Why nothing but `status` may change in a PUT.
const TERMS_FIXED: &str =
    "a consent's terms never change on the ledger, only its status (inactive \
                           revokes it): send the Consent as read, with status inactive; to permit \
                           something else, grant a new consent";

/// Checks a PUT of a consent (`put`, the body) against the consent it updates (`current`, as
/// [`consent_to_fhir`] writes it): every element but `meta`, `text` and `status` must be as the
/// ledger answers it; each difference is a `business-rule` error at its FHIRPath, all listed at
/// once (docs/fhir.md, "Revoking by PUT").
pub fn consent_update(put: &Value, current: &Value) -> Result<(), Refusal> {
    let mut is = Issues::default();
    if let Some(p) = is.obj(put, "Consent") {
        let empty = Map::new();
        let c = current.as_object().unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = p
            .keys()
            .chain(c.keys())
            .filter(|k| !UPDATE_FREE.contains(&k.as_str()))
            .collect();
        for k in keys {
            update_diff(&mut is, &format!("Consent.{k}"), p.get(k), c.get(k));
        }
    }
    is.finish("Consent", Some(())).map(|_| ())
}

/// A value of the consent as a refusal quotes it: its JSON, cut at 120 characters.
fn shown(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Records where `put` differs from `current` below `at` (the deepest element that differs).
fn update_diff(is: &mut Issues, at: &str, put: Option<&Value>, current: Option<&Value>) {
    match (put, current) {
        (Some(p), Some(c)) if p == c => {}
        (Some(Value::Object(p)), Some(Value::Object(c))) => {
            let keys: std::collections::BTreeSet<&String> = p.keys().chain(c.keys()).collect();
            for k in keys {
                update_diff(is, &format!("{at}.{k}"), p.get(k), c.get(k));
            }
        }
        (Some(Value::Array(p)), Some(Value::Array(c))) if p.len() == c.len() => {
            for (i, (p, c)) in p.iter().zip(c).enumerate() {
                update_diff(is, &format!("{at}[{i}]"), Some(p), Some(c));
            }
        }
        (Some(_), None) => is.business_rule(at, format!("added: {TERMS_FIXED}")),
        (None, Some(c)) => is.business_rule(
            at,
            format!("left out (the consent has {}): {TERMS_FIXED}", shown(c)),
        ),
        (Some(_), Some(c)) => is.business_rule(
            at,
            format!("changed (the consent has {}): {TERMS_FIXED}", shown(c)),
        ),
        (None, None) => {}
    }
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
    let id = reference_id(r, "Patient/");
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
        let member = reference_id(reference, "Organization/");
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
    if let Some(cv) = p.get("class") {
        let classes = resource_classes(is, cv, "Consent.provision.class");
        grant.data_classes.extend(classes);
    }
}

/// The data classes of a provision's `class` at `at`: codings of FHIR resource types, each that
/// is not one recorded as an issue.
fn resource_classes(is: &mut Issues, v: &Value, at: &str) -> Vec<String> {
    let Some(cs) = is.arr(v, at) else {
        return Vec::new();
    };
    let what = "the ledger's data classes (FHIR resource types)";
    let mut classes = Vec::new();
    for (i, c) in cs.iter().enumerate() {
        if let Some(k) = is.coding(c, &format!("{at}[{i}]"), RESOURCE_TYPES, what) {
            classes.push(k.to_string());
        }
    }
    classes
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
        match record_id(r) {
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
        let classes = resource_classes(is, cv, &format!("{ni}.class"));
        grant.deny_classes.extend(classes);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fhir::map::testkit::*;
    use crate::fhir::map::warnings_outcome;

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
    fn a_put_may_change_the_status_only_and_names_every_other_change() {
        let current = consent_to_fhir(&consent());
        let mut put = current.clone();
        put["status"] = json!("inactive");
        put["meta"] = json!({ "versionId": "5" });
        put["text"] = json!({ "status": "generated", "div": "<div>x</div>" });
        assert_eq!(consent_update(&put, &current), Ok(()));
        put["provision"]["class"][0]["code"] = json!("Condition");
        put["provision"]["purpose"] = json!([]);
        put["identifier"] = json!([{ "value": "x" }]);
        if let Some(o) = put["provision"].as_object_mut() {
            o.remove("data");
        }
        let r = consent_update(&put, &current).unwrap_err();
        assert_eq!(
            errors(&r),
            [
                "business-rule@Consent.identifier",
                "business-rule@Consent.provision.class[0].code",
                "business-rule@Consent.provision.data",
                "business-rule@Consent.provision.purpose",
            ]
        );
        assert!(r.issues[1].reason.contains("\"Observation\""), "{r}");
        assert!(consent_update(&json!([]), &current).is_err());
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
}

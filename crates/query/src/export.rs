//! Exports of a patient's verified access history, in the two forms people ask for.
//!
//! - [`fhir_audit_bundle`]: a FHIR R4 `Bundle` (type `collection`) of `AuditEvent` resources
//!   shaped after IHE **Basic Audit Log Patterns** (BALP). Auditors and security tooling (SIEMs,
//!   FHIR audit repositories) already read BALP, so an export in that shape needs no custom
//!   parser: one `AuditEvent` per access, written as BALP writes a RESTful interaction (`type`
//!   `rest`, `subtype` `read`, or `update` for a write, action `R` or `U`), outcome `0`, the
//!   purpose coded from HL7 v3 `ActReason` (break-glass access is `ETREAT`, as BALP has it); the
//!   agents are the practitioner who read, by DID, as the requestor (always there for
//!   break-glass) and the member as BALP's client (DICOM `110153` "Source Role ID"; the requestor
//!   when its own system read); the patient and the record are the entities. No element is an empty string (FHIR
//!   forbids them): a break-glass access has no consent-id detail, and carries its review status.
//!   The bundle's `meta` names the verified state it was read from ([`ProvenanceInfo`]), so a
//!   reader can check every event again against that app hash.
//! - [`hipaa_disclosures_csv`]: the accounting of disclosures of 45 CFR 164.528(b)(2) (date,
//!   recipient, what was disclosed, purpose) as RFC 4180 CSV, because that is what a patient's
//!   request under the HIPAA Privacy Rule is answered with and what spreadsheets open. It lists
//!   every access, including those for treatment, payment and operations that 164.528(a)(1)(i)
//!   exempts from the required accounting: the ledger does not decide what a covered entity
//!   may leave out, and a patient may ask for the full access report.
//!
//! Both are pure functions of their arguments: no I/O, no clock, no randomness, so the same
//! verified history always exports to the same bytes. Times are the block times the validators
//! agreed on, converted from unix seconds to UTC by the `time` crate (the same calendar the
//! gateway parses FHIR dates with).
//!
//! The functions trust their input to be verified (each event read with its proof, see
//! [`crate::verify`]); they only format. An event that a verified state cannot hold (an
//! unspecified or unknown purpose) is still exported, marked "unspecified", never dropped.

use ics23::{HostFunctionsManager, HostFunctionsProvider};
use medledger_tx::pb::{AccessEvent, Purpose, ReviewStatus};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// The verified state an export was read from: the chain, the height the answers were read at,
/// and that height's app hash (hex) that every event's proof checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenanceInfo {
    /// The CometBFT chain id.
    pub chain_id: String,
    /// The height the access history was read at.
    pub height: u64,
    /// The app hash of that height, hex, as the proofs were checked against it.
    pub app_hash_hex: String,
}

/// URL of the `Bundle.meta` extension that carries [`ProvenanceInfo`]. A logical URI (FHIR R4
/// allows one for `Extension.url`) until the consortium publishes a StructureDefinition under a
/// domain it owns; it is one constant so that change is one line.
pub const VERIFIED_STATE_EXTENSION_URL: &str =
    "urn:medledger:fhir:StructureDefinition:verified-state";

/// Identifier system of the ledger's patient ids (`Bundle.meta`'s `patient`, where a relative
/// `Patient/{id}` would have no `fullUrl` to resolve against).
pub const PATIENT_SYSTEM: &str = "urn:medledger:patient";

/// The last second a block time can be, 9999-12-31T23:59:59Z: CometBFT's header time is a
/// protobuf `Timestamp`, which ends there, and so do FHIR's four-digit years.
pub const LAST_SECOND: u64 = 253_402_300_799;

/// Header of [`hipaa_disclosures_csv`].
pub const HIPAA_CSV_HEADER: &str =
    "date,recipient,description,purpose,consent_id,ledger_height,event_index";

/// DICOM, whose `110153` "Source Role ID" types BALP's client agent (the member).
const DICOM_SYSTEM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// IHE BALP's code system of AuditEvent types (`rest`: a RESTful operation).
const AUDIT_EVENT_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
/// FHIR's RESTful interactions (BALP's `AuditEvent.subtype`).
const RESTFUL_INTERACTION_SYSTEM: &str = "http://hl7.org/fhir/restful-interaction";
const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const ENTITY_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const SOURCE_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
/// HL7 v3 ParticipationType: the agent's part (custodian organisation, authoring person).
const PARTICIPATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// How a purpose is written: the HL7 v3 ActReason code and display, and the phrase people read.
struct PurposeTerms {
    code: &'static str,
    display: &'static str,
    phrase: &'static str,
}

/// The terms of a known purpose; `None` for unspecified or unknown values, which the ledger's
/// stateless checks refuse, so a verified event never has one.
fn purpose_terms(purpose: i32) -> Option<PurposeTerms> {
    let (code, display, phrase) = match Purpose::try_from(purpose).ok()? {
        Purpose::Unspecified => return None,
        Purpose::Treat => ("TREAT", "treatment", "treatment"),
        // Break-glass: BALP records it as purposeOfEvent ETREAT; the phrase says so plainly.
        Purpose::Etreat => (
            "ETREAT",
            "Emergency Treatment",
            "emergency treatment (break-glass)",
        ),
        Purpose::Hpaymt => ("HPAYMT", "healthcare payment", "payment"),
        Purpose::Hoperat => ("HOPERAT", "healthcare operations", "health care operations"),
        Purpose::Hresch => ("HRESCH", "healthcare research", "research"),
        Purpose::Patrqt => ("PATRQT", "patient requested", "the patient's own read"),
    };
    Some(PurposeTerms {
        code,
        display,
        phrase,
    })
}

/// The phrase for a purpose, or an explicit "unspecified" that keeps the raw value visible.
fn purpose_phrase(purpose: i32) -> String {
    match purpose_terms(purpose) {
        Some(t) => t.phrase.to_string(),
        None => format!("unspecified (purpose code {purpose})"),
    }
}

/// The purpose as a FHIR `CodeableConcept`; without a known code it carries only text, since an
/// invented code would claim more than the ledger holds.
fn purpose_concept(purpose: i32) -> Value {
    match purpose_terms(purpose) {
        Some(t) => json!({
            "coding": [{ "system": ACT_REASON_SYSTEM, "code": t.code, "display": t.display }],
            "text": t.phrase,
        }),
        None => json!({ "text": purpose_phrase(purpose) }),
    }
}

/// A FHIR R4 `Bundle` of type `collection` with one BALP-style `AuditEvent` per access event,
/// in the order given, for the access history of `patient_id` read at the verified state
/// `proven`.
///
/// Each `AuditEvent` names the patient its own event records (`event.patient_id`), so a caller
/// that passes the wrong history cannot relabel it; `patient_id` names the history as a whole in
/// the provenance extension of `Bundle.meta`, by identifier (system [`PATIENT_SYSTEM`]): a
/// relative reference there would have no entry, so no `fullUrl`, to resolve against.
///
/// Every entry has a `fullUrl` (R4 requires one outside transactions and batches, and the
/// AuditEvent's relative `Patient/{id}` resolves against it): `urn:uuid:` of
/// [`event_uuid`], the same for the same event of the same chain in every export. The
/// gateway's search replaces it with the event's RESTful URL.
pub fn fhir_audit_bundle(
    patient_id: &str,
    events: &[AccessEvent],
    proven: &ProvenanceInfo,
) -> Value {
    let entries: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "fullUrl": format!("urn:uuid:{}", event_uuid(&proven.chain_id, e)),
                "resource": audit_event(e, proven),
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "meta": {
            "extension": [{
                "url": VERIFIED_STATE_EXTENSION_URL,
                // Heights are u64; FHIR R4 integers are 32-bit, so numbers travel as strings.
                "extension": [
                    { "url": "chainId", "valueString": proven.chain_id },
                    { "url": "height", "valueString": proven.height.to_string() },
                    { "url": "appHash", "valueString": proven.app_hash_hex },
                    { "url": "patient", "valueReference": {
                        "type": "Patient",
                        "identifier": { "system": PATIENT_SYSTEM, "value": patient_id },
                    } },
                ],
            }],
        },
        "type": "collection",
        "entry": entries,
    });
    // FHIR forbids empty arrays: a history without events is a Bundle without entries.
    if events.is_empty() {
        if let Some(o) = bundle.as_object_mut() {
            o.remove("entry");
        }
    }
    bundle
}

/// A name-based UUID (RFC 9562 version 8) of an access event: the first 16 bytes of
/// SHA-256(`"medledger/fhir/AuditEvent/v1" ‖ 0x00 ‖ chain id ‖ 0x00 ‖ state key`), with the
/// version and variant bits set. The state key `access/{patient}/{index:020}` names the event
/// within its chain, so the same event always gets the same UUID and two events never share one.
pub fn event_uuid(chain_id: &str, e: &AccessEvent) -> String {
    let key = medledger_tx::keys::access_event(&e.patient_id, e.index);
    let mut msg = Vec::with_capacity(32 + chain_id.len() + key.len());
    msg.extend_from_slice(b"medledger/fhir/AuditEvent/v1\0");
    msg.extend_from_slice(chain_id.as_bytes());
    msg.push(0);
    msg.extend_from_slice(&key);
    let mut b = [0u8; 16];
    b.copy_from_slice(&HostFunctionsManager::sha2_256(&msg)[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// One access event as a BALP-style `AuditEvent`.
fn audit_event(e: &AccessEvent, proven: &ProvenanceInfo) -> Value {
    let write = e.action == medledger_tx::pb::Action::Write as i32;
    let purpose = purpose_concept(e.purpose);
    let key = medledger_tx::keys::access_event(&e.patient_id, e.index);
    let ledger_key = String::from_utf8_lossy(&key).into_owned();
    // The member is the organisation that disclosed, BALP's client; when one of its practitioners
    // read (always for break-glass), that person is the requesting agent, by DID. FHIR forbids empty strings,
    // so a detail without a value (a break-glass access has no consent) is left out.
    let member = json!({
        "type": { "coding": [{ "system": DICOM_SYSTEM, "code": "110153", "display": "Source Role ID" }] },
        "who": { "identifier": { "value": e.actor }, "display": e.actor },
        "requestor": e.practitioner.is_empty(),
        "purposeOfUse": [purpose],
    });
    let mut agents = vec![member];
    if !e.practitioner.is_empty() {
        agents.insert(
            0,
            json!({
                "type": { "coding": [{ "system": PARTICIPATION_SYSTEM, "code": "AUT", "display": "author (originator)" }] },
                "who": { "identifier": { "system": "urn:ietf:rfc:3986", "value": e.practitioner }, "display": e.practitioner },
                "requestor": true,
                "purposeOfUse": [purpose],
            }),
        );
    }
    let mut detail = Vec::new();
    if !e.consent_id.is_empty() {
        detail.push(json!({ "type": "consent-id", "valueString": e.consent_id }));
    }
    detail.push(json!({ "type": "ledger-height", "valueString": e.height.to_string() }));
    detail.push(json!({ "type": "event-index", "valueString": e.index.to_string() }));
    detail.push(json!({ "type": "ledger-key", "valueString": ledger_key }));
    if e.break_glass {
        let review = ReviewStatus::try_from(e.review)
            .map_or("UNSPECIFIED", |r| r.as_str_name())
            .trim_start_matches("REVIEW_STATUS_");
        detail.push(json!({ "type": "break-glass-review", "valueString": review }));
    }
    json!({
        "resourceType": "AuditEvent",
        // IHE BALP's RESTful pattern: each access is a read (or, for the ledger's WRITE, an
        // update) of one record at a member's vault.
        "type": { "system": AUDIT_EVENT_TYPE_SYSTEM, "code": "rest", "display": "Restful Operation" },
        "subtype": [if write {
            json!({ "system": RESTFUL_INTERACTION_SYSTEM, "code": "update", "display": "update" })
        } else {
            json!({ "system": RESTFUL_INTERACTION_SYSTEM, "code": "read", "display": "read" })
        }],
        // FHIR AuditEvent.action: R(ead) or U(pdate) for the ledger's WRITE.
        "action": if write { "U" } else { "R" },
        "recorded": utc_instant(e.time),
        "outcome": "0",
        "purposeOfEvent": [purpose],
        "agent": agents,
        "source": {
            "site": proven.chain_id,
            "observer": { "display": "medledger" },
            "type": [{ "system": SOURCE_TYPE_SYSTEM, "code": "4", "display": "Application Server" }],
        },
        "entity": [
            {
                "what": { "reference": format!("Patient/{}", e.patient_id) },
                "type": { "system": ENTITY_TYPE_SYSTEM, "code": "1", "display": "Person" },
                "role": { "system": OBJECT_ROLE_SYSTEM, "code": "1", "display": "Patient" },
            },
            {
                // The record id is the member's own id, not a resolvable FHIR reference, so it
                // travels as an identifier; the data class is its FHIR resource type.
                "what": {
                    "identifier": { "value": e.record_id },
                    "type": e.data_class,
                    "display": format!("{} {}", e.data_class, e.record_id),
                },
                "type": { "system": ENTITY_TYPE_SYSTEM, "code": "2", "display": "System Object" },
                "role": { "system": OBJECT_ROLE_SYSTEM, "code": "4", "display": "Domain Resource" },
                // R4 `entity.detail` values are strings (or base64), hence the decimal strings.
                "detail": detail,
            },
        ],
    })
}

/// A HIPAA accounting of disclosures (45 CFR 164.528) as RFC 4180 CSV: the header
/// [`HIPAA_CSV_HEADER`], then one row per event in the order given, every line ended by CRLF.
///
/// The recipient is the member id that accessed the record (the ledger holds ids; a caller with
/// the member list may map them to names). Fields are quoted only when they hold a comma, a
/// double quote, CR or LF, with quotes doubled, as RFC 4180 says. Values are written as the
/// ledger holds them: no spreadsheet-formula escaping, which would alter the ids an auditor
/// compares against the ledger.
pub fn hipaa_disclosures_csv(events: &[AccessEvent]) -> String {
    let mut out =
        String::with_capacity(HIPAA_CSV_HEADER.len() + 2 + events.len().saturating_mul(96));
    out.push_str(HIPAA_CSV_HEADER);
    out.push_str("\r\n");
    for e in events {
        let fields = [
            utc_date(e.time),
            e.actor.clone(),
            format!("{} record {}", e.data_class, e.record_id),
            purpose_phrase(e.purpose),
            e.consent_id.clone(),
            e.height.to_string(),
            e.index.to_string(),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_csv_field(&mut out, field);
        }
        out.push_str("\r\n");
    }
    out
}

/// Appends one RFC 4180 field, quoted if it needs to be.
fn push_csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// A unix time in seconds as a UTC date and time; `None` past [`LAST_SECOND`], which no block
/// time reaches.
pub fn utc_datetime(unix_seconds: u64) -> Option<OffsetDateTime> {
    if unix_seconds > LAST_SECOND {
        return None;
    }
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix_seconds).ok()?).ok()
}

/// What [`utc_date`] and [`utc_instant`] write for a time past [`LAST_SECOND`]: the raw value,
/// said as such (it is no date, and no FHIR reader would take it for one).
fn past_last_second(unix_seconds: u64) -> String {
    format!("unix time {unix_seconds} (after 9999-12-31T23:59:59Z)")
}

/// The UTC date `YYYY-MM-DD` of a unix time in seconds (a FHIR `date`). Past [`LAST_SECOND`]
/// (beyond any block time) it writes the raw value and says so, rather than clamp it.
pub fn utc_date(unix_seconds: u64) -> String {
    match utc_datetime(unix_seconds) {
        Some(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        None => past_last_second(unix_seconds),
    }
}

/// The RFC 3339 UTC instant `YYYY-MM-DDTHH:MM:SSZ` of a unix time in seconds (a FHIR
/// `instant`); past [`LAST_SECOND`] as [`utc_date`] says.
pub fn utc_instant(unix_seconds: u64) -> String {
    match utc_datetime(unix_seconds) {
        Some(t) => format!(
            "{}T{:02}:{:02}:{:02}Z",
            utc_date(unix_seconds),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => past_last_second(unix_seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-21T21:37:45Z.
    const NOV_21_2026: u64 = 1_795_297_065;
    const PT: &str = "pt-93b566eb3054802214ef8744fdb9fbe9";

    fn event(purpose: Purpose) -> AccessEvent {
        AccessEvent {
            patient_id: PT.into(),
            index: 0,
            actor: "hospital-a".into(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: purpose as i32,
            consent_id: "c-1".into(),
            height: 4,
            time: NOV_21_2026,
            ..Default::default()
        }
    }

    fn proven() -> ProvenanceInfo {
        ProvenanceInfo {
            chain_id: "medledger-localnet".into(),
            height: 9,
            app_hash_hex: "2FAD3ABA".into(),
        }
    }

    const ALL_PURPOSES: [(Purpose, &str, &str); 5] = [
        (Purpose::Treat, "TREAT", "treatment"),
        (
            Purpose::Etreat,
            "ETREAT",
            "emergency treatment (break-glass)",
        ),
        (Purpose::Hpaymt, "HPAYMT", "payment"),
        (Purpose::Hoperat, "HOPERAT", "health care operations"),
        (Purpose::Hresch, "HRESCH", "research"),
    ];

    #[test]
    fn fhir_bundle_of_one_event_matches_the_pinned_golden() {
        let got = fhir_audit_bundle(PT, &[event(Purpose::Treat)], &proven());
        let treatment = json!({
            "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "code": "TREAT",
                "display": "treatment",
            }],
            "text": "treatment",
        });
        let want = json!({
            "resourceType": "Bundle",
            "meta": { "extension": [{
                "url": "urn:medledger:fhir:StructureDefinition:verified-state",
                "extension": [
                    { "url": "chainId", "valueString": "medledger-localnet" },
                    { "url": "height", "valueString": "9" },
                    { "url": "appHash", "valueString": "2FAD3ABA" },
                    {
                        "url": "patient",
                        "valueReference": {
                            "type": "Patient",
                            "identifier": {
                                "system": "urn:medledger:patient",
                                "value": "pt-93b566eb3054802214ef8744fdb9fbe9",
                            },
                        },
                    },
                ],
            }] },
            "type": "collection",
            // SHA-256 of the chain and the state key, computed outside this code (Python's
            // hashlib), version 8 and variant bits set.
            "entry": [{ "fullUrl": "urn:uuid:969f9b5c-fe63-8fe9-8c27-b416370c7ded", "resource": {
                "resourceType": "AuditEvent",
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                    "code": "rest",
                    "display": "Restful Operation",
                },
                "subtype": [{
                    "system": "http://hl7.org/fhir/restful-interaction",
                    "code": "read",
                    "display": "read",
                }],
                // FHIR AuditEvent.action: R(ead) or U(pdate) for the ledger's WRITE.
        "action": "R",
                "recorded": "2026-11-21T21:37:45Z",
                "outcome": "0",
                "purposeOfEvent": [treatment],
                "agent": [{
                    "type": { "coding": [{
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "110153",
                        "display": "Source Role ID",
                    }] },
                    "who": { "identifier": { "value": "hospital-a" }, "display": "hospital-a" },
                    "requestor": true,
                    "purposeOfUse": [treatment],
                }],
                "source": {
                    "site": "medledger-localnet",
                    "observer": { "display": "medledger" },
                    "type": [{
                        "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                        "code": "4",
                        "display": "Application Server",
                    }],
                },
                "entity": [
                    {
                        "what": { "reference": "Patient/pt-93b566eb3054802214ef8744fdb9fbe9" },
                        "type": {
                            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                            "code": "1",
                            "display": "Person",
                        },
                        "role": {
                            "system": "http://terminology.hl7.org/CodeSystem/object-role",
                            "code": "1",
                            "display": "Patient",
                        },
                    },
                    {
                        "what": {
                            "identifier": { "value": "obs-1" },
                            "type": "Observation",
                            "display": "Observation obs-1",
                        },
                        "type": {
                            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                            "code": "2",
                            "display": "System Object",
                        },
                        "role": {
                            "system": "http://terminology.hl7.org/CodeSystem/object-role",
                            "code": "4",
                            "display": "Domain Resource",
                        },
                        "detail": [
                            { "type": "consent-id", "valueString": "c-1" },
                            { "type": "ledger-height", "valueString": "4" },
                            { "type": "event-index", "valueString": "0" },
                            {
                                "type": "ledger-key",
                                "valueString": "access/pt-93b566eb3054802214ef8744fdb9fbe9/00000000000000000000",
                            },
                        ],
                    },
                ],
            } }],
        });
        assert_eq!(got, want);
    }

    #[test]
    fn csv_of_one_event_matches_the_pinned_golden() {
        assert_eq!(
            hipaa_disclosures_csv(&[event(Purpose::Treat)]),
            "date,recipient,description,purpose,consent_id,ledger_height,event_index\r\n\
             2026-11-21,hospital-a,Observation record obs-1,treatment,c-1,4,0\r\n"
        );
    }

    #[test]
    fn csv_of_no_events_is_the_header_alone() {
        assert_eq!(
            hipaa_disclosures_csv(&[]),
            format!("{HIPAA_CSV_HEADER}\r\n")
        );
    }

    #[test]
    fn csv_quotes_fields_with_commas() {
        let e = AccessEvent {
            actor: "Lab B, Inc.".into(),
            ..event(Purpose::Treat)
        };
        let csv = hipaa_disclosures_csv(&[e]);
        assert!(
            csv.contains(",\"Lab B, Inc.\",Observation record obs-1,"),
            "{csv}"
        );
    }

    #[test]
    fn csv_doubles_quotes_inside_quoted_fields() {
        let e = AccessEvent {
            record_id: "say \"hi\"".into(),
            ..event(Purpose::Treat)
        };
        let csv = hipaa_disclosures_csv(&[e]);
        assert!(
            csv.contains(",\"Observation record say \"\"hi\"\"\","),
            "{csv}"
        );
    }

    #[test]
    fn csv_quotes_fields_with_line_breaks() {
        let e = AccessEvent {
            consent_id: "c-1\r\nc-2\nc-3".into(),
            ..event(Purpose::Treat)
        };
        let csv = hipaa_disclosures_csv(&[e]);
        assert!(
            csv.ends_with(",treatment,\"c-1\r\nc-2\nc-3\",4,0\r\n"),
            "{csv}"
        );
    }

    #[test]
    fn csv_leaves_plain_fields_unquoted_and_keeps_event_order() {
        let second = AccessEvent {
            index: 1,
            height: 7,
            time: 0,
            actor: "lab-b".into(),
            ..event(Purpose::Hresch)
        };
        let csv = hipaa_disclosures_csv(&[event(Purpose::Treat), second]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines.len(),
            4,
            "header, two rows, and the empty rest after the last CRLF"
        );
        assert_eq!(
            lines[1],
            "2026-11-21,hospital-a,Observation record obs-1,treatment,c-1,4,0"
        );
        assert_eq!(
            lines[2],
            "1970-01-01,lab-b,Observation record obs-1,research,c-1,7,1"
        );
        assert!(!csv.contains('"'));
    }

    #[test]
    fn every_purpose_has_its_hl7_code_in_fhir_and_its_phrase_in_csv() {
        for (purpose, code, phrase) in ALL_PURPOSES {
            let bundle = fhir_audit_bundle("p", &[event(purpose)], &proven());
            let audit = &bundle["entry"][0]["resource"];
            for concept in [
                &audit["purposeOfEvent"][0],
                &audit["agent"][0]["purposeOfUse"][0],
            ] {
                assert_eq!(concept["coding"][0]["system"], ACT_REASON_SYSTEM);
                assert_eq!(concept["coding"][0]["code"], code);
                assert_eq!(concept["text"], phrase);
            }
            let csv = hipaa_disclosures_csv(&[event(purpose)]);
            assert!(
                csv.contains(&format!(",Observation record obs-1,{phrase},c-1,")),
                "{purpose:?}: {csv}"
            );
        }
    }

    /// Every string value in `v`, with its JSON path.
    fn strings(v: &Value, path: String, out: &mut Vec<(String, String)>) {
        match v {
            Value::String(s) => out.push((path, s.clone())),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, x)| strings(x, format!("{path}[{i}]"), out)),
            Value::Object(o) => o
                .iter()
                .for_each(|(k, x)| strings(x, format!("{path}.{k}"), out)),
            _ => {}
        }
    }

    /// The review's finding: a break-glass event exported `consent-id` as `""` (FHIR forbids
    /// empty strings) and left out the practitioner who broke the glass.
    #[test]
    fn a_break_glass_event_names_its_practitioner_and_has_no_empty_string() {
        let e = AccessEvent {
            consent_id: String::new(),
            practitioner: "did:medledger:0123456789abcdef0123456789abcdef".into(),
            break_glass: true,
            review: ReviewStatus::Pending as i32,
            ..event(Purpose::Etreat)
        };
        let bundle = fhir_audit_bundle(PT, &[e], &proven());
        let mut all = Vec::new();
        strings(&bundle, String::new(), &mut all);
        let empty: Vec<&String> = all
            .iter()
            .filter(|(_, s)| s.is_empty())
            .map(|(p, _)| p)
            .collect();
        assert!(empty.is_empty(), "empty strings at {empty:?}");
        let audit = &bundle["entry"][0]["resource"];
        assert_eq!(
            audit["agent"][0]["who"]["identifier"]["value"],
            "did:medledger:0123456789abcdef0123456789abcdef"
        );
        assert_eq!(audit["agent"][0]["requestor"], true);
        assert_eq!(
            audit["agent"][1]["who"]["identifier"]["value"],
            "hospital-a"
        );
        assert_eq!(audit["agent"][1]["requestor"], false);
        let details = &audit["entity"][1]["detail"];
        assert!(details
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["type"] != "consent-id"));
        assert_eq!(details[3]["valueString"], "PENDING");
    }

    #[test]
    fn break_glass_access_is_marked_etreat_for_the_event_and_the_agent() {
        let bundle = fhir_audit_bundle("p", &[event(Purpose::Etreat)], &proven());
        let audit = &bundle["entry"][0]["resource"];
        assert_eq!(audit["purposeOfEvent"][0]["coding"][0]["code"], "ETREAT");
        assert_eq!(
            audit["purposeOfEvent"][0]["coding"][0]["display"],
            "Emergency Treatment"
        );
        assert_eq!(
            audit["agent"][0]["purposeOfUse"][0]["coding"][0]["code"],
            "ETREAT"
        );
        assert_eq!(
            audit["purposeOfEvent"][0]["text"],
            "emergency treatment (break-glass)"
        );
    }

    #[test]
    fn an_unknown_purpose_is_exported_as_unspecified_without_an_invented_code() {
        for raw in [Purpose::Unspecified as i32, 99] {
            let e = AccessEvent {
                purpose: raw,
                ..event(Purpose::Treat)
            };
            let bundle = fhir_audit_bundle("p", std::slice::from_ref(&e), &proven());
            let concept = &bundle["entry"][0]["resource"]["purposeOfEvent"][0];
            assert_eq!(
                *concept,
                json!({ "text": format!("unspecified (purpose code {raw})") })
            );
            let csv = hipaa_disclosures_csv(&[e]);
            assert!(
                csv.contains(&format!(",unspecified (purpose code {raw}),")),
                "{csv}"
            );
        }
    }

    #[test]
    fn each_audit_event_names_the_patient_of_its_own_event() {
        let other = AccessEvent {
            patient_id: "pt-other".into(),
            ..event(Purpose::Treat)
        };
        let bundle = fhir_audit_bundle(PT, &[event(Purpose::Treat), other], &proven());
        let entities = &bundle["entry"][1]["resource"]["entity"];
        assert_eq!(entities[0]["what"]["reference"], "Patient/pt-other");
        assert_eq!(
            entities[1]["detail"][3]["valueString"],
            "access/pt-other/00000000000000000000"
        );
    }

    #[test]
    fn an_empty_history_is_a_bundle_with_no_entries_and_its_provenance() {
        let bundle = fhir_audit_bundle("p", &[], &proven());
        assert_eq!(bundle["type"], "collection");
        // FHIR forbids empty arrays: no events, no `entry`.
        assert!(bundle.get("entry").is_none(), "{bundle}");
        assert_eq!(
            bundle["meta"]["extension"][0]["extension"][2]["valueString"],
            "2FAD3ABA"
        );
    }

    #[test]
    fn unix_epoch_is_1970_01_01() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_instant(86_399), "1970-01-01T23:59:59Z");
        assert_eq!(utc_instant(86_400), "1970-01-02T00:00:00Z");
    }

    #[test]
    fn leap_day_2000_02_29_is_converted() {
        assert_eq!(utc_instant(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_instant(951_825_599), "2000-02-29T11:59:59Z");
        assert_eq!(utc_instant(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(utc_date(951_782_399), "2000-02-28");
    }

    #[test]
    fn known_block_time_converts_to_2026_11_21t21_37_45z() {
        assert_eq!(utc_instant(NOV_21_2026), "2026-11-21T21:37:45Z");
        assert_eq!(utc_date(NOV_21_2026), "2026-11-21");
    }

    #[test]
    fn last_protobuf_timestamp_second_is_9999_12_31t23_59_59z() {
        assert_eq!(utc_instant(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn past_the_last_block_time_the_raw_value_is_said_not_clamped() {
        assert_eq!(utc_datetime(LAST_SECOND + 1), None);
        assert_eq!(
            utc_instant(u64::MAX),
            "unix time 18446744073709551615 (after 9999-12-31T23:59:59Z)"
        );
        assert_eq!(
            utc_date(LAST_SECOND + 1),
            "unix time 253402300800 (after 9999-12-31T23:59:59Z)"
        );
    }

    /// The `time` crate's calendar against a count of days written out here, every day from
    /// 1970 to 9999.
    #[test]
    fn utc_date_agrees_with_counting_day_by_day_to_year_9999() {
        let is_leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let month_len = |y: u64, m: u64| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1970, 1, 1);
        let mut days: u64 = 0;
        while y < 10_000 {
            // Only the last second of the day: the first is checked by the other tests.
            assert_eq!(
                utc_date(days * 86_400 + 86_399),
                format!("{y:04}-{m:02}-{d:02}"),
                "day {days}"
            );
            days += 1;
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
        assert_eq!(days, 2_932_897, "days from 1970-01-01 to 10000-01-01");
        assert_eq!(days * 86_400 - 1, LAST_SECOND);
    }

    #[test]
    fn every_entry_has_a_full_url_of_its_own_that_an_export_repeats() {
        let second = AccessEvent {
            index: 1,
            ..event(Purpose::Treat)
        };
        let events = [event(Purpose::Treat), second];
        let bundle = fhir_audit_bundle(PT, &events, &proven());
        let urls: Vec<&str> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        assert_eq!(urls.len(), 2);
        assert_ne!(urls[0], urls[1]);
        for u in &urls {
            let uuid = u.strip_prefix("urn:uuid:").unwrap();
            assert_eq!(uuid.len(), 36, "{u}");
            assert_eq!(&uuid[14..15], "8", "version 8: {u}");
            assert!(
                matches!(&uuid[19..20], "8" | "9" | "a" | "b"),
                "variant: {u}"
            );
        }
        assert_eq!(fhir_audit_bundle(PT, &events, &proven()), bundle);
        let other_chain = ProvenanceInfo {
            chain_id: "another".into(),
            ..proven()
        };
        assert_ne!(
            fhir_audit_bundle(PT, &events, &other_chain)["entry"][0]["fullUrl"],
            bundle["entry"][0]["fullUrl"]
        );
    }

    /// HAPI's validator refuses a relative reference in a Bundle outside an entry with a
    /// `fullUrl`: the Bundle's own `patient` is an identifier.
    #[test]
    fn no_relative_reference_sits_outside_an_entry() {
        let bundle = fhir_audit_bundle(PT, &[event(Purpose::Treat)], &proven());
        let mut all = Vec::new();
        strings(&bundle["meta"], String::new(), &mut all);
        assert!(
            all.iter().all(|(_, s)| !s.starts_with("Patient/")),
            "{all:?}"
        );
        assert_eq!(
            bundle["meta"]["extension"][0]["extension"][3]["valueReference"]["identifier"]["value"],
            PT
        );
    }
}

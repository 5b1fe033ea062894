//! Stateless checks of claims messages: identifiers, lengths, counts, co-pay rules and the
//! declared total of a claim. Everything here is decided from the message alone, so CheckTx can
//! drop a malformed claim before it reaches a block; the state machine runs the same checks again.

use std::collections::BTreeSet;

use super::{check_count, check_id, check_len, check_text_hash, check_token};
use crate::error::{Code, TxError};
use crate::limits::{
    MAX_CLAIM_CARE_TEAM, MAX_CLAIM_DIAGNOSES, MAX_CLAIM_EVIDENCE, MAX_CLAIM_ITEMS,
    MAX_CLAIM_OTHER_COVERAGE, MAX_CLAIM_PROCEDURES, MAX_CLAIM_RECORDS, MAX_COPAY_BPS,
    MAX_DIAGNOSIS_LEN, MAX_ID_LEN, MAX_MODIFIER_LEN, MAX_POLICY_RULES, MAX_PROCEDURE_CODE_LEN,
    MAX_RECORD_ID_LEN, MAX_SERVICE_CODE_LEN,
};
use crate::pb::{
    AppealClaim, ClaimItem, ClaimProcedure, CoverageRule, DecideClaim, EndCoverage, EnrolCoverage,
    OtherCoverage, PayClaim, Payee, ProcedureSystem, PublishPolicy, SubmitClaim,
};
use crate::rules::claims::{item_amount, modifier_allowed, CLAIM_MODIFIERS};

pub(crate) fn check_policy(m: &PublishPolicy) -> Result<(), TxError> {
    check_id("policy_id", &m.policy_id)?;
    // An empty policy covers nothing; publishing one is far more likely a client bug than intent.
    if m.rules.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "rules: a policy needs at least one coverage rule",
        ));
    }
    check_count("rules", m.rules.len(), MAX_POLICY_RULES)?;
    let mut seen = BTreeSet::new();
    for (i, rule) in m.rules.iter().enumerate() {
        check_rule(i, rule)?;
        // One rule per code, so that adjudication never has to choose between two.
        if !seen.insert(rule.service_code.as_str()) {
            return Err(TxError::new(
                Code::InvalidField,
                format!(
                    "rules[{i}]: service code {:?} has a rule already; give each code one rule",
                    rule.service_code
                ),
            ));
        }
    }
    Ok(())
}

fn check_rule(i: usize, r: &CoverageRule) -> Result<(), TxError> {
    check_service_code(&format!("rules[{i}].service_code"), &r.service_code)?;
    if r.copay_bps > MAX_COPAY_BPS {
        return Err(TxError::new(
            Code::InvalidField,
            format!("rules[{i}].copay_bps is {}; basis points go up to {MAX_COPAY_BPS} (the whole amount)", r.copay_bps),
        ));
    }
    if r.copay_fixed != 0 && r.copay_bps != 0 {
        return Err(TxError::new(
            Code::InvalidField,
            format!("rules[{i}]: a co-pay is either fixed or in basis points, not both"),
        ));
    }
    // A rule that does not cover its code has no cap, co-pay or pre-authorisation to apply; a
    // value there would mean the insurer thinks it covers something it does not.
    if !r.covered
        && (r.price_cap != 0 || r.copay_fixed != 0 || r.copay_bps != 0 || r.preauth_required)
    {
        return Err(TxError::new(
            Code::InvalidField,
            format!("rules[{i}]: {} is not covered, so it takes no price cap, co-pay or pre-authorisation", r.service_code),
        ));
    }
    Ok(())
}

pub(crate) fn check_submit(m: &SubmitClaim) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_id("insurer", &m.insurer)?;
    check_id("policy_id", &m.policy_id)?;
    if m.service_date == 0 {
        return Err(TxError::new(
            Code::InvalidField,
            "service_date: give the day of service in unix seconds",
        ));
    }
    if m.items.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "items: a claim needs at least one item",
        ));
    }
    check_count("items", m.items.len(), MAX_CLAIM_ITEMS)?;
    for (i, item) in m.items.iter().enumerate() {
        check_service_code(&format!("items[{i}].service_code"), &item.service_code)?;
        check_modifier(&format!("items[{i}].modifier"), &item.modifier)?;
        if item.quantity == 0 {
            return Err(TxError::new(
                Code::InvalidField,
                format!("items[{i}].quantity must be at least 1"),
            ));
        }
    }
    if m.preauthorization && !m.evidence.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "evidence: a preauthorization cites no access event (its services are not given yet; the claim for them will)",
        ));
    }
    if m.evidence.is_empty() && !m.preauthorization {
        return Err(TxError::new(
            Code::NoTreatmentEvidence,
            "evidence: cite the index of at least one access event of the patient by this provider (see `medledger query access PATIENT`)",
        ));
    }
    check_count("evidence", m.evidence.len(), MAX_CLAIM_EVIDENCE)?;
    let mut cited = BTreeSet::new();
    for n in &m.evidence {
        if !cited.insert(*n) {
            return Err(TxError::new(
                Code::InvalidField,
                format!("evidence: access event {n} is cited twice"),
            ));
        }
    }
    check_count("record_ids", m.record_ids.len(), MAX_CLAIM_RECORDS)?;
    let mut seen = BTreeSet::new();
    for r in &m.record_ids {
        check_token("record_ids", r, MAX_RECORD_ID_LEN)?;
        if !seen.insert(r.as_str()) {
            return Err(TxError::new(
                Code::InvalidField,
                format!("record_ids: {r} is listed twice"),
            ));
        }
    }
    check_diagnoses(&m.diagnoses)?;
    check_count("care_team", m.care_team.len(), MAX_CLAIM_CARE_TEAM)?;
    let mut team = BTreeSet::new();
    for did in &m.care_team {
        check_id("care_team", did)?;
        if !team.insert(did.as_str()) {
            return Err(TxError::new(
                Code::InvalidField,
                format!("care_team: {did} is listed twice"),
            ));
        }
    }
    if Payee::try_from(m.payee).is_err() {
        return Err(TxError::new(
            Code::BadPayee,
            format!(
                "payee {} is not PROVIDER (1) or SUBSCRIBER (2) (0 reads as PROVIDER)",
                m.payee
            ),
        ));
    }
    check_procedures(&m.procedures)?;
    check_other_coverage(m)?;
    let sum = items_total(&m.items)?;
    if sum != m.total {
        return Err(TxError::new(
            Code::TotalsMismatch,
            format!(
                "total is {} but the items sum to {sum} (quantity × unit_price, minor units)",
                m.total
            ),
        ));
    }
    Ok(())
}

/// A claim's diagnoses: at most [`MAX_CLAIM_DIAGNOSES`], distinct, each an ICD-10 code
/// ([`is_icd10`]).
fn check_diagnoses(diagnoses: &[String]) -> Result<(), TxError> {
    check_count("diagnoses", diagnoses.len(), MAX_CLAIM_DIAGNOSES)?;
    let mut seen = BTreeSet::new();
    for (i, d) in diagnoses.iter().enumerate() {
        if !is_icd10(d) {
            return Err(TxError::new(
                Code::BadDiagnosisCode,
                format!(
                    "diagnoses[{i}]: {:?} is not an ICD-10 code (a letter, a digit, a digit or \
                     letter, then optionally a dot and 1-4 digits or letters, upper case: \
                     J45.909)",
                    d.chars().take(MAX_DIAGNOSIS_LEN + 1).collect::<String>()
                ),
            ));
        }
        if !seen.insert(d.as_str()) {
            return Err(TxError::new(
                Code::InvalidField,
                format!("diagnoses: {d} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// A claim's procedures: at most [`MAX_CLAIM_PROCEDURES`], distinct, each a code of its
/// system's form ([`is_procedure_code`]).
fn check_procedures(procedures: &[ClaimProcedure]) -> Result<(), TxError> {
    check_count("procedures", procedures.len(), MAX_CLAIM_PROCEDURES)?;
    let mut seen = BTreeSet::new();
    for (i, p) in procedures.iter().enumerate() {
        let system = ProcedureSystem::try_from(p.system).unwrap_or(ProcedureSystem::Unspecified);
        if !is_procedure_code(system, &p.code) {
            return Err(TxError::new(
                Code::BadProcedureCode,
                format!(
                    "procedures[{i}]: {:?} is not a {} code ({})",
                    p.code
                        .chars()
                        .take(MAX_PROCEDURE_CODE_LEN + 1)
                        .collect::<String>(),
                    procedure_system_name(system),
                    procedure_form(system)
                ),
            ));
        }
        if !seen.insert((p.system, p.code.as_str())) {
            return Err(TxError::new(
                Code::InvalidField,
                format!(
                    "procedures: {} {} is listed twice",
                    procedure_system_name(system),
                    p.code
                ),
            ));
        }
    }
    Ok(())
}

/// The name of a procedure code system, for messages.
pub fn procedure_system_name(system: ProcedureSystem) -> &'static str {
    match system {
        ProcedureSystem::Icd10Pcs => "ICD-10-PCS",
        ProcedureSystem::SnomedCt => "SNOMED CT",
        ProcedureSystem::Cpt => "CPT",
        ProcedureSystem::Unspecified => "known procedure system",
    }
}

fn procedure_form(system: ProcedureSystem) -> &'static str {
    match system {
        ProcedureSystem::Icd10Pcs => "7 characters of 0-9 and A-Z without I and O: 0DB60ZZ",
        ProcedureSystem::SnomedCt => "a concept id of 6-18 digits, not starting with 0: 80146002",
        ProcedureSystem::Cpt => "4 digits then a digit, F or T: 99213, 3074F, 0042T",
        ProcedureSystem::Unspecified => "the system is ICD10_PCS, SNOMED_CT or CPT",
    }
}

/// Whether `code` has the form of a code of `system`: ICD-10-PCS 7 characters of `0-9`
/// and `A-Z` without `I` and `O`; a SNOMED CT concept id 6-18 digits, the first not `0`; CPT 4
/// digits then a digit, `F` (category II) or `T` (category III). The form only, as for
/// diagnoses.
pub fn is_procedure_code(system: ProcedureSystem, code: &str) -> bool {
    let b = code.as_bytes();
    match system {
        ProcedureSystem::Icd10Pcs => {
            b.len() == 7
                && b.iter().all(|c| {
                    c.is_ascii_digit() || (c.is_ascii_uppercase() && *c != b'I' && *c != b'O')
                })
        }
        ProcedureSystem::SnomedCt => {
            (6..=MAX_PROCEDURE_CODE_LEN).contains(&b.len())
                && b[0] != b'0'
                && b.iter().all(u8::is_ascii_digit)
        }
        ProcedureSystem::Cpt => {
            b.len() == 5
                && b[..4].iter().all(u8::is_ascii_digit)
                && (b[4].is_ascii_digit() || b[4] == b'F' || b[4] == b'T')
        }
        ProcedureSystem::Unspecified => false,
    }
}

/// A claim's other coverage: at most [`MAX_CLAIM_OTHER_COVERAGE`], distinct, none the claim's
/// own insurer and policy.
fn check_other_coverage(m: &SubmitClaim) -> Result<(), TxError> {
    check_count(
        "other_coverage",
        m.other_coverage.len(),
        MAX_CLAIM_OTHER_COVERAGE,
    )?;
    let mut seen = BTreeSet::new();
    for (i, OtherCoverage { insurer, policy_id }) in m.other_coverage.iter().enumerate() {
        check_id(&format!("other_coverage[{i}].insurer"), insurer)?;
        check_id(&format!("other_coverage[{i}].policy_id"), policy_id)?;
        if *insurer == m.insurer && *policy_id == m.policy_id {
            return Err(TxError::new(
                Code::DuplicateCoverage,
                format!("other_coverage[{i}]: {insurer} {policy_id} is the coverage the claim is adjudicated under, not another one"),
            ));
        }
        if !seen.insert((insurer.as_str(), policy_id.as_str())) {
            return Err(TxError::new(
                Code::DuplicateCoverage,
                format!("other_coverage[{i}]: {insurer} {policy_id} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// Whether `code` has the form of an ICD-10 code: `[A-Z][0-9][0-9A-Z]`, then optionally `.`
/// and 1-4 of `[0-9A-Z]` (ICD-10-CM's `C4A.0`, `S52.5211`; WHO's `J45.9`). The form only:
/// which codes exist is the payer's business, and changes every year.
pub fn is_icd10(code: &str) -> bool {
    let b = code.as_bytes();
    let alnum = |c: &u8| c.is_ascii_digit() || c.is_ascii_uppercase();
    if b.len() < 3 || b.len() > MAX_DIAGNOSIS_LEN {
        return false;
    }
    if !(b[0].is_ascii_uppercase() && b[1].is_ascii_digit() && alnum(&b[2])) {
        return false;
    }
    match &b[3..] {
        [] => true,
        [b'.', rest @ ..] => !rest.is_empty() && rest.len() <= 4 && rest.iter().all(alnum),
        _ => false,
    }
}

pub(crate) fn check_decide(m: &DecideClaim) -> Result<(), TxError> {
    check_id("claim_id", &m.claim_id)?;
    // The count must match the claim's items, which only the state knows; here it is bounded.
    if m.approved_amounts.is_empty() {
        return Err(TxError::new(
            Code::DecisionMismatch,
            "approved_amounts: give one amount per item of the claim",
        ));
    }
    check_count(
        "approved_amounts",
        m.approved_amounts.len(),
        MAX_CLAIM_ITEMS,
    )?;
    check_text_hash("note_hash", &m.note_hash, true)
}

pub(crate) fn check_pay(m: &PayClaim) -> Result<(), TxError> {
    check_id("claim_id", &m.claim_id)?;
    check_token("payment_reference", &m.payment_reference, MAX_ID_LEN)
}

pub(crate) fn check_appeal(m: &AppealClaim) -> Result<(), TxError> {
    check_id("claim_id", &m.claim_id)?;
    check_text_hash("reason_hash", &m.reason_hash, false)
}

pub(crate) fn check_enrol(m: &EnrolCoverage) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_id("policy_id", &m.policy_id)?;
    if m.end != 0 && m.end <= m.start {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "period: end {} is not after start {} (end 0 = open-ended)",
                m.end, m.start
            ),
        ));
    }
    Ok(())
}

pub(crate) fn check_end_coverage(m: &EndCoverage) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    if m.end == 0 {
        return Err(TxError::new(
            Code::InvalidField,
            "end: give the time (unix seconds) from which services are no longer covered",
        ));
    }
    Ok(())
}

/// A procedure modifier: empty, or one of [`CLAIM_MODIFIERS`] (e.g. CPT `76`).
fn check_modifier(field: &str, modifier: &str) -> Result<(), TxError> {
    check_len(field, modifier, MAX_MODIFIER_LEN)?;
    if !modifier_allowed(modifier) {
        return Err(TxError::new(
            Code::UnknownModifier,
            format!(
                "{field} {modifier:?} is not an accepted modifier; use one of {}",
                CLAIM_MODIFIERS.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `CODE` or `CODE@MODIFIER` (the CLI's form), for messages.
pub fn service_name(code: &str, modifier: &str) -> String {
    if modifier.is_empty() {
        code.to_string()
    } else {
        format!("{code}@{modifier}")
    }
}

/// A service code: a bounded token. `*` is refused because a rule for "*" would read as a
/// wildcard while matching only the literal code "*".
fn check_service_code(field: &str, code: &str) -> Result<(), TxError> {
    check_token(field, code, MAX_SERVICE_CODE_LEN)?;
    if code.contains('*') {
        return Err(TxError::new(
            Code::InvalidField,
            format!("{field} {code:?}: service codes have no wildcards"),
        ));
    }
    Ok(())
}

/// The sum of [`item_amount`] over `items`, with checked arithmetic.
pub(crate) fn items_total(items: &[ClaimItem]) -> Result<u64, TxError> {
    items.iter().try_fold(0u64, |sum, item| {
        sum.checked_add(item_amount(item)?).ok_or_else(|| {
            TxError::new(
                Code::AmountOverflow,
                "the items' total does not fit in 64 bits of minor units",
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::check_body;
    use crate::pb::{tx_body::Msg, TxBody};

    fn code_of(msg: Msg) -> Option<Code> {
        check_body(&TxBody {
            chain_id: "c".into(),
            sequence: 0,
            unordered: None,
            msg: Some(msg),
        })
        .err()
        .map(|e| e.code)
    }

    fn rule(code: &str) -> CoverageRule {
        CoverageRule {
            service_code: code.into(),
            covered: true,
            price_cap: 100,
            copay_fixed: 10,
            ..Default::default()
        }
    }

    fn policy(rules: Vec<CoverageRule>) -> Msg {
        Msg::PublishPolicy(PublishPolicy {
            policy_id: "gold".into(),
            rules,
        })
    }

    fn item(code: &str, quantity: u64, unit_price: u64) -> ClaimItem {
        ClaimItem {
            service_code: code.into(),
            quantity,
            unit_price,
            modifier: String::new(),
        }
    }

    fn submit(items: Vec<ClaimItem>) -> SubmitClaim {
        let total = items_total(&items).unwrap_or(0);
        SubmitClaim {
            patient_id: "pt-1".into(),
            insurer: "insurer-c".into(),
            policy_id: "gold".into(),
            service_date: 86_400,
            items,
            record_ids: vec!["r-1".into()],
            total,
            evidence: vec![0],
            diagnoses: vec!["J45.909".into()],
            care_team: vec!["did:medledger:0123456789abcdef0123456789abcdef".into()],
            preauthorization: false,
            payee: Payee::Provider as i32,
            procedures: vec![ClaimProcedure {
                system: ProcedureSystem::Cpt as i32,
                code: "99213".into(),
            }],
            other_coverage: vec![OtherCoverage {
                insurer: "insurer-d".into(),
                policy_id: "silver".into(),
            }],
        }
    }

    #[test]
    fn a_preauthorization_cites_no_evidence_and_a_claim_at_least_one() {
        let with = |preauthorization: bool, evidence: Vec<u64>| {
            code_of(Msg::SubmitClaim(SubmitClaim {
                preauthorization,
                evidence,
                ..submit(vec![item("99213", 1, 100)])
            }))
        };
        assert_eq!(with(true, vec![]), None);
        assert_eq!(with(true, vec![0]), Some(Code::InvalidField));
        assert_eq!(with(false, vec![]), Some(Code::NoTreatmentEvidence));
        assert_eq!(with(false, vec![0]), None);
    }

    #[test]
    fn diagnoses_are_distinct_icd10_codes_and_the_care_team_distinct_dids() {
        let with = |f: &dyn Fn(&mut SubmitClaim)| {
            let mut m = submit(vec![item("99213", 1, 100)]);
            f(&mut m);
            code_of(Msg::SubmitClaim(m))
        };
        assert_eq!(with(&|_| {}), None);
        for good in [
            "J45", "J45.9", "E11.65", "S52.5211", "C4A.0", "Z00.00", "U07.1",
        ] {
            assert!(is_icd10(good), "{good}");
            assert_eq!(with(&|m| m.diagnoses = vec![good.into()]), None, "{good}");
        }
        for bad in [
            "",
            "j45.909",
            "J4",
            "145.9",
            "JJ5.9",
            "J45.",
            "J45.90912",
            "J45909",
            "J45-9",
            "J45.9 ",
            "S52.52111",
        ] {
            assert!(!is_icd10(bad), "{bad}");
            assert_eq!(
                with(&|m| m.diagnoses = vec!["Z00.00".into(), bad.into()]),
                Some(Code::BadDiagnosisCode),
                "{bad:?}"
            );
        }
        assert_eq!(
            with(&|m| m.diagnoses = vec!["J45.909".into(), "J45.909".into()]),
            Some(Code::InvalidField)
        );
        let many = |n: usize, prefix: &str| -> Vec<String> {
            (0..n).map(|i| format!("{prefix}{i:02}")).collect()
        };
        assert_eq!(
            with(&|m| m.diagnoses = many(MAX_CLAIM_DIAGNOSES, "Z00.")),
            None
        );
        assert_eq!(
            with(&|m| m.diagnoses = many(MAX_CLAIM_DIAGNOSES + 1, "Z00.")),
            Some(Code::TooManyItems)
        );
        let did = "did:medledger:0123456789abcdef0123456789abcdef";
        assert_eq!(
            with(&|m| m.care_team = vec![did.into(), did.into()]),
            Some(Code::InvalidField)
        );
        assert_eq!(
            with(&|m| m.care_team = many(MAX_CLAIM_CARE_TEAM, "did:medledger:")),
            None
        );
        assert_eq!(
            with(&|m| m.care_team = many(MAX_CLAIM_CARE_TEAM + 1, "did:medledger:")),
            Some(Code::TooManyItems)
        );
        assert_eq!(
            with(&|m| m.care_team = vec!["not an id".into()]),
            Some(Code::InvalidField)
        );
    }

    #[test]
    fn payee_procedures_and_other_coverage_are_checked() {
        let with = |f: &dyn Fn(&mut SubmitClaim)| {
            let mut m = submit(vec![item("99213", 1, 100)]);
            f(&mut m);
            code_of(Msg::SubmitClaim(m))
        };
        assert_eq!(with(&|_| {}), None);
        for payee in [0, 1, 2] {
            assert_eq!(with(&|m| m.payee = payee), None, "{payee}");
        }
        assert_eq!(with(&|m| m.payee = 3), Some(Code::BadPayee));
        assert_eq!(with(&|m| m.payee = -1), Some(Code::BadPayee));

        let proc = |system: ProcedureSystem, code: &str| ClaimProcedure {
            system: system as i32,
            code: code.into(),
        };
        use ProcedureSystem::{Cpt, Icd10Pcs, SnomedCt, Unspecified};
        for (system, good) in [
            (Icd10Pcs, "0DB60ZZ"),
            (Icd10Pcs, "B2151ZZ"),
            (SnomedCt, "80146002"),
            (SnomedCt, "123456"),
            (SnomedCt, "123456789012345678"),
            (Cpt, "99213"),
            (Cpt, "3074F"),
            (Cpt, "0042T"),
        ] {
            assert!(is_procedure_code(system, good), "{good}");
            assert_eq!(with(&|m| m.procedures = vec![proc(system, good)]), None);
        }
        for (system, bad) in [
            (Icd10Pcs, "0DB60Z"),
            (Icd10Pcs, "0DB60ZZZ"),
            (Icd10Pcs, "0DBI0ZZ"),
            (Icd10Pcs, "0DBO0ZZ"),
            (Icd10Pcs, "0db60zz"),
            (SnomedCt, "12345"),
            (SnomedCt, "0123456"),
            (SnomedCt, "1234567890123456789"),
            (SnomedCt, "12345A"),
            (Cpt, "9921"),
            (Cpt, "992134"),
            (Cpt, "9921X"),
            (Cpt, "A9213"),
            (Unspecified, "99213"),
        ] {
            assert!(!is_procedure_code(system, bad), "{bad}");
            assert_eq!(
                with(&|m| m.procedures = vec![proc(system, bad)]),
                Some(Code::BadProcedureCode),
                "{bad}"
            );
        }
        assert_eq!(
            with(&|m| m.procedures = vec![ClaimProcedure {
                system: 9,
                code: "99213".into()
            }]),
            Some(Code::BadProcedureCode)
        );
        // The same code in two systems is two procedures; in one system, a repeat.
        assert_eq!(
            with(&|m| m.procedures = vec![proc(Cpt, "99213"), proc(Cpt, "99213")]),
            Some(Code::InvalidField)
        );
        let twelve: Vec<ClaimProcedure> = (0..MAX_CLAIM_PROCEDURES)
            .map(|i| proc(SnomedCt, &format!("{}", 100_000 + i)))
            .collect();
        assert_eq!(with(&|m| m.procedures = twelve.clone()), None);
        let mut thirteen = twelve.clone();
        thirteen.push(proc(Cpt, "99214"));
        assert_eq!(
            with(&|m| m.procedures = thirteen.clone()),
            Some(Code::TooManyItems)
        );

        let other = |insurer: &str, policy: &str| OtherCoverage {
            insurer: insurer.into(),
            policy_id: policy.into(),
        };
        assert_eq!(
            with(&|m| m.other_coverage = vec![other("insurer-c", "gold")]),
            Some(Code::DuplicateCoverage)
        );
        // The claim's insurer under another policy is other coverage.
        assert_eq!(
            with(&|m| m.other_coverage = vec![other("insurer-c", "silver")]),
            None
        );
        assert_eq!(
            with(&|m| m.other_coverage = vec![other("insurer-d", "a"), other("insurer-d", "a")]),
            Some(Code::DuplicateCoverage)
        );
        let three: Vec<OtherCoverage> = (0..MAX_CLAIM_OTHER_COVERAGE)
            .map(|i| other("insurer-d", &format!("p{i}")))
            .collect();
        assert_eq!(with(&|m| m.other_coverage = three.clone()), None);
        let mut four = three.clone();
        four.push(other("insurer-e", "p"));
        assert_eq!(
            with(&|m| m.other_coverage = four.clone()),
            Some(Code::TooManyItems)
        );
        assert_eq!(
            with(&|m| m.other_coverage = vec![other("insurer-d", "")]),
            Some(Code::InvalidField)
        );
    }

    #[test]
    fn a_well_formed_policy_passes() {
        let bps = CoverageRule {
            service_code: "b".into(),
            covered: true,
            copay_bps: MAX_COPAY_BPS,
            ..Default::default()
        };
        let not_covered = CoverageRule {
            service_code: "c".into(),
            ..Default::default()
        };
        assert_eq!(code_of(policy(vec![rule("a"), bps, not_covered])), None);
    }

    #[test]
    fn malformed_policies_are_refused_with_their_codes() {
        assert_eq!(code_of(policy(vec![])), Some(Code::InvalidField));
        assert_eq!(
            code_of(policy(vec![rule("a"), rule("a")])),
            Some(Code::InvalidField),
            "duplicate code"
        );
        assert_eq!(
            code_of(policy(vec![rule("a"); MAX_POLICY_RULES + 1])),
            Some(Code::TooManyItems)
        );
        assert_eq!(
            code_of(policy(vec![rule(&"x".repeat(MAX_SERVICE_CODE_LEN + 1))])),
            Some(Code::FieldTooLong)
        );
        assert_eq!(code_of(policy(vec![rule("*")])), Some(Code::InvalidField));
        assert_eq!(code_of(policy(vec![rule("a b")])), Some(Code::InvalidField));
        let both = CoverageRule {
            copay_bps: 5,
            ..rule("a")
        };
        assert_eq!(code_of(policy(vec![both])), Some(Code::InvalidField));
        let over = CoverageRule {
            copay_fixed: 0,
            copay_bps: MAX_COPAY_BPS + 1,
            ..rule("a")
        };
        assert_eq!(code_of(policy(vec![over])), Some(Code::InvalidField));
        let uncovered_with_cap = CoverageRule {
            covered: false,
            copay_fixed: 0,
            ..rule("a")
        };
        assert_eq!(
            code_of(policy(vec![uncovered_with_cap])),
            Some(Code::InvalidField)
        );
        let bad_id = Msg::PublishPolicy(PublishPolicy {
            policy_id: "a/b".into(),
            rules: vec![rule("a")],
        });
        assert_eq!(code_of(bad_id), Some(Code::InvalidField));
    }

    #[test]
    fn a_well_formed_claim_passes() {
        assert_eq!(
            code_of(Msg::SubmitClaim(submit(vec![
                item("99213", 2, 5_000),
                item("80053", 1, 1)
            ]))),
            None
        );
    }

    #[test]
    fn malformed_claims_are_refused_with_their_codes() {
        let base = submit(vec![item("99213", 1, 100)]);
        let with = |f: &dyn Fn(&mut SubmitClaim)| {
            let mut m = base.clone();
            f(&mut m);
            code_of(Msg::SubmitClaim(m))
        };
        assert_eq!(with(&|m| m.items.clear()), Some(Code::InvalidField));
        assert_eq!(with(&|m| m.items[0].quantity = 0), Some(Code::InvalidField));
        assert_eq!(with(&|m| m.service_date = 0), Some(Code::InvalidField));
        assert_eq!(
            with(&|m| m.insurer = String::new()),
            Some(Code::InvalidField)
        );
        assert_eq!(
            with(&|m| m.patient_id = "p".repeat(MAX_ID_LEN + 1)),
            Some(Code::FieldTooLong)
        );
        assert_eq!(
            with(&|m| m.record_ids = vec!["r-1".into(), "r-1".into()]),
            Some(Code::InvalidField)
        );
        assert_eq!(
            with(&|m| m.record_ids = (0..=MAX_CLAIM_RECORDS).map(|i| format!("r-{i}")).collect()),
            Some(Code::TooManyItems)
        );
        assert_eq!(
            with(&|m| {
                m.items = vec![item("a", 1, 1); MAX_CLAIM_ITEMS + 1];
                m.total = (MAX_CLAIM_ITEMS + 1) as u64;
            }),
            Some(Code::TooManyItems)
        );
        assert_eq!(with(&|m| m.total += 1), Some(Code::TotalsMismatch));
        assert_eq!(
            with(&|m| m.items[0] = item("a", 2, u64::MAX)),
            Some(Code::AmountOverflow)
        );
        assert_eq!(
            with(&|m| m.items = vec![item("a", 1, u64::MAX), item("b", 1, 1)]),
            Some(Code::AmountOverflow),
            "each item fits, their sum does not"
        );
    }

    #[test]
    fn modifiers_are_short_tokens() {
        let with_items = |items: Vec<ClaimItem>| code_of(Msg::SubmitClaim(submit(items)));
        let repeat = ClaimItem {
            modifier: "76".into(),
            ..item("99213", 1, 5_000)
        };
        assert_eq!(
            with_items(vec![item("99213", 1, 5_000), repeat.clone()]),
            None,
            "a repeat procedure carries its modifier"
        );
        let long = ClaimItem {
            modifier: "76777".into(),
            ..repeat.clone()
        };
        assert_eq!(with_items(vec![long]), Some(Code::FieldTooLong));
        let text = ClaimItem {
            modifier: "7 6".into(),
            ..repeat.clone()
        };
        assert_eq!(with_items(vec![text]), Some(Code::UnknownModifier));
    }

    /// Issue 23, attack 7: `99213@ZZ` escaped the duplicate key with a made-up modifier.
    #[test]
    fn only_listed_modifiers_are_accepted() {
        let with_modifier = |modifier: &str| {
            code_of(Msg::SubmitClaim(submit(vec![ClaimItem {
                modifier: modifier.into(),
                ..item("99213", 1, 5_000)
            }])))
        };
        for m in ["ZZ", "zz", "76 ", "lt", "A1"] {
            assert_eq!(with_modifier(m), Some(Code::UnknownModifier), "{m:?}");
        }
        for m in CLAIM_MODIFIERS {
            assert_eq!(with_modifier(m), None, "{m:?}");
        }
    }

    #[test]
    fn a_claim_cites_one_to_sixteen_distinct_access_events() {
        let with = |evidence: Vec<u64>| {
            code_of(Msg::SubmitClaim(SubmitClaim {
                evidence,
                ..submit(vec![item("99213", 1, 100)])
            }))
        };
        assert_eq!(with(vec![]), Some(Code::NoTreatmentEvidence));
        assert_eq!(with(vec![3, 3]), Some(Code::InvalidField));
        assert_eq!(
            with((0..=MAX_CLAIM_EVIDENCE as u64).collect()),
            Some(Code::TooManyItems)
        );
        assert_eq!(with((0..MAX_CLAIM_EVIDENCE as u64).collect()), None);
    }

    #[test]
    fn enrolments_need_a_patient_a_policy_and_a_period() {
        let enrol = |start: u64, end: u64| {
            code_of(Msg::EnrolCoverage(EnrolCoverage {
                patient_id: "pt-1".into(),
                policy_id: "gold".into(),
                start,
                end,
            }))
        };
        assert_eq!(enrol(0, 0), None);
        assert_eq!(enrol(10, 11), None);
        assert_eq!(enrol(10, 10), Some(Code::InvalidField));
        assert_eq!(enrol(10, 5), Some(Code::InvalidField));
        let end = |end: u64| {
            code_of(Msg::EndCoverage(EndCoverage {
                patient_id: "pt-1".into(),
                index: 0,
                end,
            }))
        };
        assert_eq!(end(5), None);
        assert_eq!(end(0), Some(Code::InvalidField));
    }

    #[test]
    fn decisions_payments_and_appeals_need_their_fields() {
        let decide = |amounts: Vec<u64>, note_hash: &[u8]| {
            code_of(Msg::DecideClaim(DecideClaim {
                claim_id: "cl-1".into(),
                approved_amounts: amounts,
                note_hash: note_hash.to_vec(),
            }))
        };
        assert_eq!(decide(vec![0, 5], b""), None);
        assert_eq!(decide(vec![0, 5], &[7; 32]), None);
        assert_eq!(decide(vec![], b""), Some(Code::DecisionMismatch));
        assert_eq!(
            decide(vec![1; MAX_CLAIM_ITEMS + 1], b""),
            Some(Code::TooManyItems)
        );
        assert_eq!(
            decide(vec![1], b"not covered: see letter"),
            Some(Code::InvalidField),
            "a note is hashed, never sent"
        );
        assert_eq!(decide(vec![1], &[7; 33]), Some(Code::InvalidField));

        let pay = |r: &str| {
            code_of(Msg::PayClaim(PayClaim {
                claim_id: "cl-1".into(),
                payment_reference: r.into(),
            }))
        };
        assert_eq!(pay("SEPA-2024-0001"), None);
        assert_eq!(pay(""), Some(Code::InvalidField));
        assert_eq!(pay("has space"), Some(Code::InvalidField));

        let appeal = |r: &[u8]| {
            code_of(Msg::AppealClaim(AppealClaim {
                claim_id: "cl-1".into(),
                reason_hash: r.to_vec(),
            }))
        };
        assert_eq!(appeal(&[9; 32]), None);
        assert_eq!(
            appeal(b""),
            Some(Code::InvalidField),
            "an appeal has a reason"
        );
        assert_eq!(
            appeal(b"pre-authorisation was granted by phone"),
            Some(Code::InvalidField),
            "free text is refused: only its hash goes on chain"
        );
        assert_eq!(appeal(&[9; 31]), Some(Code::InvalidField));
        let no_id = AppealClaim {
            claim_id: String::new(),
            reason_hash: vec![9; 32],
        };
        assert_eq!(code_of(Msg::AppealClaim(no_id)), Some(Code::InvalidField));
    }
}

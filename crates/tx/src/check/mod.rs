//! Stateless checks: everything about a message that can be decided without reading state.
//! The state machine runs them again before applying, so CheckTx is only a filter.

mod claims;

pub use claims::{is_icd10, is_procedure_code, procedure_system_name, service_name};
pub use records::{
    check_endpoint, commitment_of_key_id, key_id_for_commitment, record_roles, RecordAction,
    KEY_COMMITMENT_PREFIX,
};
mod governance;
mod identity;
mod records;
pub mod smart;

use crate::error::{Code, TxError};
use crate::limits::*;
use crate::pb::{
    tx_body::Msg, Action, GrantConsent, LogAccess, LogBreakGlass, Purpose, ReportAccess,
    ReportReason, ReviewBreakGlass, ReviewReport, RevokeConsent, TxBody, Unordered,
};

/// Checks a body: chain id length, a message present, every field within its limits.
pub fn check_body(body: &TxBody) -> Result<&Msg, TxError> {
    check_len("chain_id", &body.chain_id, MAX_CHAIN_ID_LEN)?;
    let msg = body
        .msg
        .as_ref()
        .ok_or_else(|| TxError::new(Code::MissingMessage, "tx body carries no message"))?;
    match msg {
        Msg::RegisterPatient(m) => identity::check_register_patient(m)?,
        Msg::GrantConsent(m) => check_grant(m)?,
        Msg::RevokeConsent(m) => check_revoke(m)?,
        Msg::LogAccess(m) => check_access(m)?,
        Msg::LogBreakGlass(m) => check_break_glass(m)?,
        Msg::ReviewBreakGlass(m) => check_review(m)?,
        Msg::ReportAccess(m) => check_report(m)?,
        Msg::ReviewReport(m) => check_review_report(m)?,
        Msg::SubmitProposal(m) => governance::check_submit(m)?,
        Msg::VoteProposal(m) => governance::check_vote(m)?,
        Msg::RegisterPractitioner(m) => identity::check_register_practitioner(m)?,
        Msg::SetPractitionerStatus(m) => identity::check_practitioner_status(m)?,
        Msg::SetGuardians(m) => identity::check_guardians(m)?,
        Msg::RotatePatientKey(m) => identity::check_rotate(m)?,
        Msg::RecoverPatientKey(m) => identity::check_recover(m)?,
        Msg::RegisterPatientBoxKey(m) => identity::check_patient_box_key(m)?,
        Msg::AnchorRecord(m) => records::check_anchor(m)?,
        Msg::EraseRecord(m) => records::check_erase(m)?,
        Msg::ConfirmErasure(m) => records::check_confirm_erasure(m)?,
        Msg::PublishPolicy(m) => claims::check_policy(m)?,
        Msg::SubmitClaim(m) => claims::check_submit(m)?,
        Msg::DecideClaim(m) => claims::check_decide(m)?,
        Msg::PayClaim(m) => claims::check_pay(m)?,
        Msg::AppealClaim(m) => claims::check_appeal(m)?,
        Msg::EnrolCoverage(m) => claims::check_enrol(m)?,
        Msg::EndCoverage(m) => claims::check_end_coverage(m)?,
        Msg::SetGateway(m) => records::check_set_gateway(m)?,
        Msg::RegisterSmartClient(m) => smart::check_register(m)?,
        Msg::RevokeSmartClient(m) => smart::check_revoke(m)?,
    }
    if let Some(u) = &body.unordered {
        check_unordered(body.sequence, u, msg)?;
    }
    Ok(msg)
}

/// Whether `msg` may be sent unordered: messages whose effect does not depend on the order in
/// which one signer's txs are applied (each appends an event, anchors a new record, confirms an
/// erasure or files a new claim; a second copy is refused by its own rule). Consents, keys,
/// guardians, governance, policies, coverage, claim decisions and erasure requests stay
/// ordered: there a later tx relies on an earlier one of the same signer.
pub fn may_be_unordered(msg: &Msg) -> bool {
    matches!(
        msg,
        Msg::LogAccess(_)
            | Msg::LogBreakGlass(_)
            | Msg::ReviewBreakGlass(_)
            | Msg::AnchorRecord(_)
            | Msg::ConfirmErasure(_)
            | Msg::SubmitClaim(_)
    )
}

/// An unordered body: `sequence` 0, a nonce of [`UNORDERED_NONCE_LEN`] bytes, a `valid_until`,
/// and a message that may be unordered. The validity window is checked against the block.
fn check_unordered(sequence: u64, u: &Unordered, msg: &Msg) -> Result<(), TxError> {
    if sequence != 0 {
        return Err(TxError::new(
            Code::InvalidField,
            "sequence: an unordered tx carries no sequence (0)",
        ));
    }
    if u.nonce.len() != UNORDERED_NONCE_LEN {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "unordered.nonce is {} bytes; want {UNORDERED_NONCE_LEN} random bytes",
                u.nonce.len()
            ),
        ));
    }
    if u.valid_until == 0 {
        return Err(TxError::new(
            Code::InvalidField,
            "unordered.valid_until: give the unix second until which the tx is valid",
        ));
    }
    if !may_be_unordered(msg) {
        return Err(TxError::new(
            Code::UnorderedNotAllowed,
            "this message must be ordered: sign it with the signer's next sequence (only \
             LogAccess, LogBreakGlass, ReviewBreakGlass, AnchorRecord, ConfirmErasure and \
             SubmitClaim may be unordered)",
        ));
    }
    Ok(())
}

fn check_grant(m: &GrantConsent) -> Result<(), TxError> {
    check_id("grantee", &m.grantee)?;
    if m.data_classes.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "data_classes: name at least one class, or \"*\"",
        ));
    }
    check_count("data_classes", m.data_classes.len(), MAX_DATA_CLASSES)?;
    for class in &m.data_classes {
        check_token("data_classes", class, MAX_DATA_CLASS_LEN)?;
    }
    if m.purposes.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "purposes: name at least one purpose",
        ));
    }
    check_count("purposes", m.purposes.len(), MAX_PURPOSES)?;
    for p in &m.purposes {
        check_purpose(*p)?;
        if *p == Purpose::Patrqt as i32 {
            return Err(TxError::new(
                Code::InvalidField,
                "purposes: PATRQT is the patient's own read, which needs no consent",
            ));
        }
    }
    check_count("actions", m.actions.len(), 2)?;
    for a in &m.actions {
        check_action(*a)?;
    }
    check_count("deny_classes", m.deny_classes.len(), MAX_DATA_CLASSES)?;
    for class in &m.deny_classes {
        check_token("deny_classes", class, MAX_DATA_CLASS_LEN)?;
    }
    check_count("record_ids", m.record_ids.len(), MAX_RECORD_IDS)?;
    for r in &m.record_ids {
        check_token("record_ids", r, MAX_RECORD_ID_LEN)?;
    }
    let research = m.purposes.contains(&(Purpose::Hresch as i32));
    if research == m.study_id.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            "study_id: name a study exactly when the purpose is HRESCH",
        ));
    }
    if !m.study_id.is_empty() {
        check_id("study_id", &m.study_id)?;
    }
    if m.not_after != 0 && m.not_after < m.not_before {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "period: not_after {} is before not_before {}",
                m.not_after, m.not_before
            ),
        ));
    }
    Ok(())
}

fn check_action(a: i32) -> Result<(), TxError> {
    match Action::try_from(a) {
        Ok(Action::Read) | Ok(Action::Write) => Ok(()),
        _ => Err(TxError::new(
            Code::InvalidField,
            format!("action {a} is not READ or WRITE"),
        )),
    }
}

fn check_break_glass(m: &LogBreakGlass) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_token("record_id", &m.record_id, MAX_RECORD_ID_LEN)?;
    check_token("data_class", &m.data_class, MAX_DATA_CLASS_LEN)?;
    // Break-glass access needs a written reason; its SHA-256 goes on chain.
    check_text_hash("reason_hash", &m.reason_hash, false)
}

fn check_review(m: &ReviewBreakGlass) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_text_hash("note_hash", &m.note_hash, true)
}

/// A report names one of the listed reasons; there is no free text.
fn check_report(m: &ReportAccess) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    match ReportReason::try_from(m.reason) {
        Ok(ReportReason::Unspecified) | Err(_) => Err(TxError::new(
            Code::InvalidField,
            format!(
                "reason {} is not one of UNKNOWN_READER (1), NOT_MY_CARE (2), WRONG_PURPOSE (3), \
                 OTHER (4)",
                m.reason
            ),
        )),
        Ok(_) => Ok(()),
    }
}

fn check_review_report(m: &ReviewReport) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_text_hash("note_hash", &m.note_hash, true)
}

/// Free text stays off chain: a message carries its SHA-256 (32 bytes), or nothing where
/// `optional`. Anything else is refused, so that no field can smuggle readable text onto the
/// permanent ledger.
pub(crate) fn check_text_hash(field: &str, hash: &[u8], optional: bool) -> Result<(), TxError> {
    if hash.len() == TEXT_HASH_LEN || (optional && hash.is_empty()) {
        return Ok(());
    }
    Err(TxError::new(
        Code::InvalidField,
        format!(
            "{field} is {} bytes; give the SHA-256 ({TEXT_HASH_LEN} bytes) of the text you keep off chain{}",
            hash.len(),
            if optional { ", or nothing" } else { "" }
        ),
    ))
}

/// Free text (reasons, notes): bounded, no control characters.
pub(crate) fn check_text(field: &str, value: &str, max: usize) -> Result<(), TxError> {
    check_len(field, value, max)?;
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(TxError::new(
            Code::InvalidField,
            format!("{field} contains control characters"),
        ));
    }
    Ok(())
}

fn check_revoke(m: &RevokeConsent) -> Result<(), TxError> {
    check_id("consent_id", &m.consent_id)
}

fn check_access(m: &LogAccess) -> Result<(), TxError> {
    check_id("patient_id", &m.patient_id)?;
    check_token("record_id", &m.record_id, MAX_RECORD_ID_LEN)?;
    check_token("data_class", &m.data_class, MAX_DATA_CLASS_LEN)?;
    if m.data_class == "*" {
        return Err(TxError::new(
            Code::InvalidField,
            "data_class: an access reads one class, not \"*\"",
        ));
    }
    check_purpose(m.purpose)?;
    if m.action != 0 {
        check_action(m.action)?;
    }
    Ok(())
}

/// A purpose must be one of the known codes, not unspecified.
pub(crate) fn check_purpose(p: i32) -> Result<(), TxError> {
    match Purpose::try_from(p) {
        Ok(Purpose::Unspecified) | Err(_) => Err(TxError::new(
            Code::InvalidField,
            format!("purpose {p} is not one of TREAT, ETREAT, HPAYMT, HOPERAT, HRESCH, PATRQT"),
        )),
        Ok(_) => Ok(()),
    }
}

/// Identifiers become parts of storage keys: non-empty, bounded, and no `/`.
pub fn check_id(field: &str, value: &str) -> Result<(), TxError> {
    check_token(field, value, MAX_ID_LEN)
}

pub(crate) fn check_token(field: &str, value: &str, max: usize) -> Result<(), TxError> {
    check_len(field, value, max)?;
    if value.is_empty() {
        return Err(TxError::new(
            Code::InvalidField,
            format!("{field} is empty"),
        ));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '*');
    if !value.chars().all(ok) {
        return Err(TxError::new(
            Code::InvalidField,
            format!("{field} {value:?} may only use letters, digits and - _ . : *"),
        ));
    }
    Ok(())
}

pub(crate) fn check_len(field: &str, value: &str, max: usize) -> Result<(), TxError> {
    if value.len() > max {
        return Err(TxError::new(
            Code::FieldTooLong,
            format!("{field} is {} bytes; the limit is {max}", value.len()),
        ));
    }
    Ok(())
}

pub(crate) fn check_count(field: &str, n: usize, max: usize) -> Result<(), TxError> {
    if n > max {
        return Err(TxError::new(
            Code::TooManyItems,
            format!("{field} has {n} items; the limit is {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> GrantConsent {
        GrantConsent {
            grantee: "hospital-a".into(),
            data_classes: vec!["Observation".into()],
            purposes: vec![Purpose::Treat as i32],
            not_before: 0,
            not_after: 0,
            ..Default::default()
        }
    }

    fn body(msg: Msg) -> TxBody {
        TxBody {
            chain_id: "c".into(),
            sequence: 0,
            unordered: None,
            msg: Some(msg),
        }
    }

    fn unordered(msg: Msg, nonce_len: usize, valid_until: u64) -> TxBody {
        TxBody {
            unordered: Some(Unordered {
                nonce: vec![7; nonce_len],
                valid_until,
            }),
            ..body(msg)
        }
    }

    fn access() -> Msg {
        Msg::LogAccess(LogAccess {
            patient_id: "pt-1".into(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            action: 0,
        })
    }

    #[test]
    fn an_unordered_body_needs_a_nonce_a_deadline_no_sequence_and_a_commuting_message() {
        let code = |b: TxBody| check_body(&b).err().map(|e| e.code);
        assert_eq!(code(unordered(access(), UNORDERED_NONCE_LEN, 100)), None);
        assert_eq!(
            code(unordered(access(), UNORDERED_NONCE_LEN - 1, 100)),
            Some(Code::InvalidField)
        );
        assert_eq!(code(unordered(access(), 0, 100)), Some(Code::InvalidField));
        assert_eq!(
            code(unordered(access(), UNORDERED_NONCE_LEN, 0)),
            Some(Code::InvalidField)
        );
        let mut with_sequence = unordered(access(), UNORDERED_NONCE_LEN, 100);
        with_sequence.sequence = 3;
        assert_eq!(code(with_sequence), Some(Code::InvalidField));
        // A patient's consent changes depend on each other: never unordered.
        assert_eq!(
            code(unordered(
                Msg::GrantConsent(grant()),
                UNORDERED_NONCE_LEN,
                100
            )),
            Some(Code::UnorderedNotAllowed)
        );
        assert_eq!(
            code(unordered(
                Msg::RevokeConsent(RevokeConsent {
                    consent_id: "c-1".into()
                }),
                UNORDERED_NONCE_LEN,
                100
            )),
            Some(Code::UnorderedNotAllowed)
        );
    }

    fn code_of(msg: Msg) -> Option<Code> {
        check_body(&body(msg)).err().map(|e| e.code)
    }

    #[test]
    fn a_well_formed_grant_passes() {
        assert_eq!(code_of(Msg::GrantConsent(grant())), None);
    }

    #[test]
    fn each_bad_field_has_its_code() {
        let mut g = grant();
        g.grantee = "x".repeat(MAX_ID_LEN + 1);
        assert_eq!(code_of(Msg::GrantConsent(g)), Some(Code::FieldTooLong));
        let mut g = grant();
        g.grantee = "a/b".into();
        assert_eq!(code_of(Msg::GrantConsent(g)), Some(Code::InvalidField));
        let mut g = grant();
        g.data_classes = vec!["Observation".into(); MAX_DATA_CLASSES + 1];
        assert_eq!(code_of(Msg::GrantConsent(g)), Some(Code::TooManyItems));
        let mut g = grant();
        g.purposes = vec![99];
        assert_eq!(code_of(Msg::GrantConsent(g)), Some(Code::InvalidField));
        let mut g = grant();
        g.not_before = 10;
        g.not_after = 5;
        assert_eq!(code_of(Msg::GrantConsent(g)), Some(Code::InvalidField));
        let empty = TxBody {
            chain_id: "c".into(),
            sequence: 0,
            unordered: None,
            msg: None,
        };
        assert_eq!(
            check_body(&empty).err().map(|e| e.code),
            Some(Code::MissingMessage)
        );
    }

    #[test]
    fn access_must_name_one_class_and_a_purpose() {
        let access = LogAccess {
            patient_id: "pt-1".into(),
            record_id: "r1".into(),
            data_class: "*".into(),
            purpose: Purpose::Treat as i32,
            action: 0,
        };
        assert_eq!(
            code_of(Msg::LogAccess(access.clone())),
            Some(Code::InvalidField)
        );
        let access = LogAccess {
            data_class: "Observation".into(),
            purpose: 0,
            ..access
        };
        assert_eq!(code_of(Msg::LogAccess(access)), Some(Code::InvalidField));
    }
}

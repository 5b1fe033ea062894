//! Stateless checks of record anchors and erasures, and the one table of which practitioner
//! roles may anchor, erase and confirm the erasure of their member's records.

use super::{check_count, check_id, check_text_hash, check_token};
use crate::error::{Code, TxError};
use crate::limits::{
    MAX_DATA_CLASS_LEN, MAX_ENDPOINT_LEN, MAX_HOLDERS, MAX_RECORD_ID_LEN, SHARE_COMMITMENT_LEN,
};
use crate::pb::{AnchorRecord, ConfirmErasure, EraseRecord, PractitionerRole, SetGateway};

pub(crate) fn check_anchor(m: &AnchorRecord) -> Result<(), TxError> {
    check_token("record_id", &m.record_id, MAX_RECORD_ID_LEN)?;
    check_id("patient_id", &m.patient_id)?;
    check_token("resource_type", &m.resource_type, MAX_DATA_CLASS_LEN)?;
    if m.content_hash.len() != 32 {
        return Err(TxError::new(
            Code::InvalidField,
            "content_hash must be the 32-byte SHA-256 of the encrypted record",
        ));
    }
    check_token("key_id", &m.key_id, MAX_RECORD_ID_LEN)?;
    check_anchor_custody(m)
}

/// The shape of an anchor's threshold custody, in this order: at most [`MAX_HOLDERS`] holders,
/// each a valid id, and at most as many commitments (`TOO_MANY_ITEMS`, `INVALID_FIELD`,
/// `FIELD_TOO_LONG`); no holders means threshold 0 (`CUSTODY_MISMATCH`) and no commitments
/// (`BAD_SHARE_COMMITMENTS`); holders distinct (`DUPLICATE_HOLDER`); exactly `threshold`
/// commitments of 32 bytes (`BAD_SHARE_COMMITMENTS`). The state machine then compares them
/// with `params/custody`, the custodian and the holders' gateways.
fn check_anchor_custody(m: &AnchorRecord) -> Result<(), TxError> {
    check_count("holders", m.holders.len(), MAX_HOLDERS)?;
    for holder in &m.holders {
        check_id("holders", holder)?;
    }
    check_count("share_commitments", m.share_commitments.len(), MAX_HOLDERS)?;
    if m.holders.is_empty() {
        if m.threshold != 0 {
            return Err(TxError::new(
                Code::CustodyMismatch,
                format!(
                    "threshold {} without holders: a single-custodian record has threshold 0",
                    m.threshold
                ),
            ));
        }
        if !m.share_commitments.is_empty() {
            return Err(TxError::new(
                Code::BadShareCommitments,
                "share_commitments without holders: a single-custodian record has none",
            ));
        }
        return Ok(());
    }
    // At most MAX_HOLDERS² comparisons.
    for (i, holder) in m.holders.iter().enumerate() {
        if m.holders.iter().take(i).any(|h| h == holder) {
            return Err(TxError::new(
                Code::DuplicateHolder,
                format!("holder {holder} is listed twice; each holder keeps one share"),
            ));
        }
    }
    let count_ok = u32::try_from(m.share_commitments.len()).is_ok_and(|n| n == m.threshold);
    let sizes_ok = m
        .share_commitments
        .iter()
        .all(|c| c.len() == SHARE_COMMITMENT_LEN);
    if !count_ok || !sizes_ok {
        return Err(TxError::new(
            Code::BadShareCommitments,
            format!(
                "share_commitments: give exactly threshold ({}) commitments of \
                 {SHARE_COMMITMENT_LEN} bytes each (got {} of {:?} bytes)",
                m.threshold,
                m.share_commitments.len(),
                m.share_commitments.iter().map(Vec::len).collect::<Vec<_>>()
            ),
        ));
    }
    Ok(())
}

/// Prefix of a key id that is a vault key commitment: `kc1-` and 64 lowercase hex digits.
pub const KEY_COMMITMENT_PREFIX: &str = "kc1-";

/// The key id the record vault writes for a data key with this key commitment.
pub fn key_id_for_commitment(commitment: &[u8; 32]) -> String {
    format!("{KEY_COMMITMENT_PREFIX}{}", hex::encode(commitment))
}

/// The key commitment a key id carries, if it is of the vault's form.
pub fn commitment_of_key_id(key_id: &str) -> Option<[u8; 32]> {
    let hex_part = key_id.strip_prefix(KEY_COMMITMENT_PREFIX)?;
    if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let bytes = hex::decode(hex_part).ok()?;
    <[u8; 32]>::try_from(bytes.as_slice()).ok()
}

/// A gateway endpoint: `http://` or `https://` followed by a host, printable ASCII without
/// spaces, at most [`MAX_ENDPOINT_LEN`] bytes.
pub fn check_endpoint(endpoint: &str) -> Result<(), TxError> {
    if endpoint.len() > MAX_ENDPOINT_LEN {
        return Err(TxError::new(
            Code::FieldTooLong,
            format!(
                "endpoint is {} bytes; the limit is {MAX_ENDPOINT_LEN}",
                endpoint.len()
            ),
        ));
    }
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| {
            TxError::new(
                Code::InvalidField,
                "endpoint must start with http:// or https://",
            )
        })?;
    if !endpoint.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TxError::new(
            Code::InvalidField,
            "endpoint must be printable ASCII without spaces",
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(TxError::new(
            Code::InvalidField,
            "endpoint must name a host (and no user info)",
        ));
    }
    if rest.contains(['?', '#']) {
        return Err(TxError::new(
            Code::InvalidField,
            "endpoint is a base URL: no query or fragment",
        ));
    }
    Ok(())
}

pub(crate) fn check_set_gateway(m: &SetGateway) -> Result<(), TxError> {
    check_endpoint(&m.endpoint)?;
    if m.box_public_key.len() != 32 || m.box_public_key.iter().all(|b| *b == 0) {
        return Err(TxError::new(
            Code::InvalidField,
            "box_public_key must be a 32-byte X25519 public key (not all zero)",
        ));
    }
    if m.box_key_signature.len() != 64 {
        return Err(TxError::new(
            Code::BadBoxKeySignature,
            "box_key_signature must be the admin key's 64-byte Ed25519 signature over the box-key statement",
        ));
    }
    Ok(())
}

pub(crate) fn check_erase(m: &EraseRecord) -> Result<(), TxError> {
    check_token("record_id", &m.record_id, MAX_RECORD_ID_LEN)?;
    check_text_hash("reason_hash", &m.reason_hash, true)
}

pub(crate) fn check_confirm_erasure(m: &ConfirmErasure) -> Result<(), TxError> {
    check_token("record_id", &m.record_id, MAX_RECORD_ID_LEN)
}

/// What a practitioner does to a record anchor of their own member (the custodian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordAction {
    /// `AnchorRecord`: put a record's hash on the ledger.
    Anchor,
    /// `EraseRecord`: request the record's erasure (for the patient).
    Erase,
    /// `ConfirmErasure`: state that the record's key was destroyed.
    ConfirmErasure,
}

impl RecordAction {
    /// The message that takes this action.
    pub fn message(self) -> &'static str {
        match self {
            RecordAction::Anchor => "AnchorRecord",
            RecordAction::Erase => "EraseRecord",
            RecordAction::ConfirmErasure => "ConfirmErasure",
        }
    }
}

/// The practitioner roles that may take `action` on their member's records: the one role table,
/// enforced by the ledger's handlers (`ROLE_NOT_PERMITTED`) and readable by a gateway that
/// wants to refuse the same requests before they reach the ledger (docs/rules.md, "Record
/// anchors and erasure"). Those who make clinical records anchor them: physicians, nurses and
/// lab technicians. Erasing a record destroys evidence of care, so only a physician or a privacy
/// officer requests it for the custodian; they, or the member's admin key that the record
/// vault signs with, confirm it. Researchers and claims adjusters do neither: they read records
/// under consent and never hold them. (A member's admin key may take every action for its own
/// records; the patient may always erase their own.)
pub fn record_roles(action: RecordAction) -> &'static [PractitionerRole] {
    use PractitionerRole::*;
    match action {
        RecordAction::Anchor => &[Physician, Nurse, LabTechnician],
        RecordAction::Erase | RecordAction::ConfirmErasure => &[Physician, PrivacyOfficer],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(endpoint: &str, key: Vec<u8>, sig: Vec<u8>) -> SetGateway {
        SetGateway {
            endpoint: endpoint.into(),
            box_public_key: key,
            box_key_signature: sig,
        }
    }

    #[test]
    fn gateway_endpoints_are_bounded_http_urls() {
        for ok in ["http://127.0.0.1:8080", "https://vault.lab-b.example/base"] {
            assert!(check_endpoint(ok).is_ok(), "{ok}");
        }
        for (bad, code) in [
            ("ftp://x", Code::InvalidField),
            ("http://", Code::InvalidField),
            ("https://u@host", Code::InvalidField),
            ("http://a b", Code::InvalidField),
            ("http://a?x=1", Code::InvalidField),
            ("http://h\u{e9}", Code::InvalidField),
            ("", Code::InvalidField),
        ] {
            assert_eq!(check_endpoint(bad).unwrap_err().code, code, "{bad:?}");
        }
        let long = format!("https://{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(check_endpoint(&long).unwrap_err().code, Code::FieldTooLong);
    }

    #[test]
    fn gateway_keys_and_signatures_have_their_sizes() {
        let e = "http://h";
        assert!(check_set_gateway(&gw(e, vec![1; 32], vec![0; 64])).is_ok());
        assert_eq!(
            check_set_gateway(&gw(e, vec![1; 31], vec![0; 64]))
                .unwrap_err()
                .code,
            Code::InvalidField
        );
        assert_eq!(
            check_set_gateway(&gw(e, vec![0; 32], vec![0; 64]))
                .unwrap_err()
                .code,
            Code::InvalidField
        );
        assert_eq!(
            check_set_gateway(&gw(e, vec![1; 32], vec![0; 63]))
                .unwrap_err()
                .code,
            Code::BadBoxKeySignature
        );
    }

    #[test]
    fn the_record_role_table_keeps_researchers_and_adjusters_out() {
        use PractitionerRole::*;
        for action in [
            RecordAction::Anchor,
            RecordAction::Erase,
            RecordAction::ConfirmErasure,
        ] {
            let roles = record_roles(action);
            for outsider in [Researcher, ClaimsAdjuster, Unspecified] {
                assert!(!roles.contains(&outsider), "{outsider:?} may {action:?}");
            }
        }
        assert_eq!(
            record_roles(RecordAction::Anchor),
            &[Physician, Nurse, LabTechnician]
        );
        assert_eq!(
            record_roles(RecordAction::Erase),
            record_roles(RecordAction::ConfirmErasure)
        );
    }

    fn anchor(holders: &[&str], threshold: u32, commitments: Vec<Vec<u8>>) -> AnchorRecord {
        AnchorRecord {
            record_id: "rec-1".into(),
            patient_id: "pt-1".into(),
            resource_type: "Observation".into(),
            content_hash: vec![1; 32],
            size: 10,
            key_id: "k1".into(),
            holders: holders.iter().map(|h| h.to_string()).collect(),
            threshold,
            share_commitments: commitments,
        }
    }

    fn anchor_code(m: &AnchorRecord) -> Option<Code> {
        check_anchor(m).err().map(|e| e.code)
    }

    #[test]
    fn an_anchor_without_holders_has_no_threshold_and_no_commitments() {
        assert_eq!(anchor_code(&anchor(&[], 0, vec![])), None);
        assert_eq!(
            anchor_code(&anchor(&[], 2, vec![])),
            Some(Code::CustodyMismatch)
        );
        assert_eq!(
            anchor_code(&anchor(&[], 0, vec![vec![0; 32]])),
            Some(Code::BadShareCommitments)
        );
    }

    #[test]
    fn holders_are_distinct_bounded_ids_with_threshold_commitments_of_32_bytes() {
        let c = || vec![7u8; SHARE_COMMITMENT_LEN];
        let abc = ["a", "b", "c"];
        assert_eq!(anchor_code(&anchor(&abc, 2, vec![c(), c()])), None);
        for (m, want) in [
            (
                anchor(&["a", "b", "a"], 2, vec![c(), c()]),
                Code::DuplicateHolder,
            ),
            (anchor(&abc, 2, vec![c()]), Code::BadShareCommitments),
            (
                anchor(&abc, 2, vec![c(), c(), c()]),
                Code::BadShareCommitments,
            ),
            (
                anchor(&abc, 2, vec![c(), vec![7; 31]]),
                Code::BadShareCommitments,
            ),
            (
                anchor(&abc, 2, vec![c(), vec![7; 33]]),
                Code::BadShareCommitments,
            ),
            (anchor(&["a", "b/c"], 2, vec![c(), c()]), Code::InvalidField),
            (anchor(&["a", ""], 2, vec![c(), c()]), Code::InvalidField),
            (
                anchor(&[&"m".repeat(65), "b"], 2, vec![c(), c()]),
                Code::FieldTooLong,
            ),
            (
                anchor(&["1", "2", "3", "4", "5", "6", "7", "8"], 2, vec![c(), c()]),
                Code::TooManyItems,
            ),
            (anchor(&abc, 8, vec![c(); 8]), Code::TooManyItems),
        ] {
            assert_eq!(anchor_code(&m), Some(want), "{m:?}");
        }
    }

    #[test]
    fn key_commitment_key_ids_round_trip_and_fit() {
        let kc = [0xab; 32];
        let id = key_id_for_commitment(&kc);
        assert_eq!(commitment_of_key_id(&id), Some(kc));
        assert!(check_token("key_id", &id, MAX_RECORD_ID_LEN).is_ok());
        assert_eq!(commitment_of_key_id("k1"), None);
        assert_eq!(commitment_of_key_id(&id.to_uppercase()), None);
        assert_eq!(commitment_of_key_id(&id[..id.len() - 2]), None);
    }
}

//! Stateless checks of record anchors and erasures, and the one table of which practitioner
//! roles may anchor, erase and confirm the erasure of their member's records.

use super::{check_id, check_text_hash, check_token};
use crate::error::{Code, TxError};
use crate::limits::{MAX_DATA_CLASS_LEN, MAX_ENDPOINT_LEN, MAX_RECORD_ID_LEN};
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
    check_token("key_id", &m.key_id, MAX_RECORD_ID_LEN)
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

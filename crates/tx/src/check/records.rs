//! Stateless checks of record anchors and erasures.

use super::{check_id, check_text_hash, check_token};
use crate::error::{Code, TxError};
use crate::limits::{MAX_DATA_CLASS_LEN, MAX_RECORD_ID_LEN};
use crate::pb::{AnchorRecord, EraseRecord};

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

pub(crate) fn check_erase(m: &EraseRecord) -> Result<(), TxError> {
    check_token("record_id", &m.record_id, MAX_RECORD_ID_LEN)?;
    check_text_hash("reason_hash", &m.reason_hash, true)
}

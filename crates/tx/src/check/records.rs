//! Stateless checks of records messages.

use crate::error::TxError;
use crate::pb::{AnchorRecord, EraseRecord};

pub(crate) fn check_anchor(_m: &AnchorRecord) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_erase(_m: &EraseRecord) -> Result<(), TxError> {
    Ok(())
}

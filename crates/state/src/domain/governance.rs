//! governance (in progress).

use super::members::Signer;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::TxState;
use medledger_tx::pb::tx_body::Msg;
use medledger_tx::{Code, TxError};

/// Applies a governance message.
pub fn apply(_st: &mut TxState<'_, '_>, _signer: Signer, _msg: &Msg, _ctx: &BlockCtx) -> Result<Vec<Event>, ApplyError> {
    Err(TxError::new(Code::InvalidField, "not implemented yet").into())
}

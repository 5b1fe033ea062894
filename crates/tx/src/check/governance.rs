//! Stateless checks of governance messages.

use crate::error::TxError;
use crate::pb::{SubmitProposal, VoteProposal};

pub(crate) fn check_submit(_m: &SubmitProposal) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_vote(_m: &VoteProposal) -> Result<(), TxError> {
    Ok(())
}

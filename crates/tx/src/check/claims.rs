//! Stateless checks of claims messages.

use crate::error::TxError;
use crate::pb::{AppealClaim, DecideClaim, PayClaim, PublishPolicy, SubmitClaim};

pub(crate) fn check_policy(_m: &PublishPolicy) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_submit(_m: &SubmitClaim) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_decide(_m: &DecideClaim) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_pay(_m: &PayClaim) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_appeal(_m: &AppealClaim) -> Result<(), TxError> {
    Ok(())
}

//! Stateless checks of identity messages.

use crate::error::TxError;
use crate::pb::{RecoverPatientKey, RegisterPractitioner, RotatePatientKey, SetGuardians, SetPractitionerStatus};

pub(crate) fn check_register_practitioner(_m: &RegisterPractitioner) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_practitioner_status(_m: &SetPractitionerStatus) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_guardians(_m: &SetGuardians) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_rotate(_m: &RotatePatientKey) -> Result<(), TxError> {
    Ok(())
}

pub(crate) fn check_recover(_m: &RecoverPatientKey) -> Result<(), TxError> {
    Ok(())
}

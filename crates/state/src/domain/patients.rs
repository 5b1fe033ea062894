//! Patients: registration under a pseudonymous id derived from their key.

use medledger_tx::pb::{key_owner::Owner, KeyOwner, Patient};
use medledger_tx::{ids, keys, Code, TxError};

use super::members::Signer;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// RegisterPatient: the signing key becomes a patient's key.
pub fn register(st: &mut TxState<'_, '_>, signer: &Signer, key: &[u8; 32], ctx: &BlockCtx) -> Result<Vec<Event>, ApplyError> {
    match signer {
        Signer::Unknown => {}
        Signer::Patient(id) => {
            return Err(TxError::new(Code::PatientExists, format!("this key is already patient {id}")).into())
        }
        Signer::Member(id) => {
            return Err(TxError::new(Code::KeyInUse, format!("this key is member {id}'s admin key")).into())
        }
        Signer::Practitioner(p) => {
            return Err(TxError::new(Code::KeyInUse, format!("this key is practitioner {}'s key", p.did)).into())
        }
    }
    let id = ids::patient_id(key);
    let patient = Patient { id: id.clone(), key: key.to_vec(), registered_height: ctx.height };
    st.put_msg(keys::patient(&id), &patient);
    st.put_msg(keys::key_owner(key), &KeyOwner { owner: Some(Owner::PatientId(id.clone())) });
    Ok(vec![Event::new("medledger.patient.registered", vec![("patient_id", id)])])
}

/// The signer as a patient, or a rejection saying who may send `what`.
pub fn require_patient_signer(signer: &Signer, what: &str) -> Result<String, ApplyError> {
    match signer {
        Signer::Patient(id) => Ok(id.clone()),
        Signer::Member(id) => Err(TxError::new(
            Code::NotAuthorized,
            format!("{what} must be signed by the patient; member {id} may not"),
        )
        .into()),
        Signer::Practitioner(p) => Err(TxError::new(
            Code::NotAuthorized,
            format!("{what} must be signed by the patient; practitioner {} may not", p.did),
        )
        .into()),
        Signer::Unknown => Err(TxError::new(
            Code::UnknownSigner,
            format!("{what} must be signed by a registered patient; register this key first"),
        )
        .into()),
    }
}

/// The patient with `id`, or [`Code::UnknownPatient`].
pub fn require_patient(view: &impl StateRead, id: &str) -> Result<Patient, ApplyError> {
    view.get_msg(&keys::patient(id))?
        .ok_or_else(|| TxError::new(Code::UnknownPatient, format!("no patient {id:?}")).into())
}

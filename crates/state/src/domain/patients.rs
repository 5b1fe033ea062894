//! Patients: registration under a pseudonymous id derived from their key.

use medledger_tx::pb::{
    key_owner::Owner, Guardians, KeyOwner, Patient, RecoverPatientKey, RotatePatientKey,
    SetGuardians,
};
use medledger_tx::{ids, keys, recovery, Code, TxError};

use super::members::Signer;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// RegisterPatient: the signing key becomes a patient's key.
pub fn register(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    key: &[u8; 32],
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    match signer {
        Signer::Unknown => {}
        Signer::Patient(id) => {
            return Err(TxError::new(
                Code::PatientExists,
                format!("this key is already patient {id}"),
            )
            .into())
        }
        Signer::Member(id) => {
            return Err(TxError::new(
                Code::KeyInUse,
                format!("this key is member {id}'s admin key"),
            )
            .into())
        }
        Signer::Practitioner(p) => {
            return Err(TxError::new(
                Code::KeyInUse,
                format!("this key is practitioner {}'s key", p.did),
            )
            .into())
        }
    }
    let id = ids::patient_id(key);
    let patient = Patient {
        id: id.clone(),
        key: key.to_vec(),
        registered_height: ctx.height,
    };
    st.put_msg(keys::patient(&id), &patient);
    st.put_msg(
        keys::key_owner(key),
        &KeyOwner {
            owner: Some(Owner::PatientId(id.clone())),
        },
    );
    Ok(vec![Event::new(
        "medledger.patient.registered",
        vec![("patient_id", id)],
    )])
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
            format!(
                "{what} must be signed by the patient; practitioner {} may not",
                p.did
            ),
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

/// SetGuardians: the patient names the guardians (m of n) who can recover their key.
pub fn set_guardians(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &SetGuardians,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_patient_signer(signer, "SetGuardians")?;
    let patient = require_patient(st, &id)?;
    if m.guardian_keys.iter().any(|k| *k == patient.key) {
        return Err(
            TxError::new(Code::InvalidField, "a patient cannot be their own guardian").into(),
        );
    }
    let recoveries = st
        .get_msg::<Guardians>(&keys::guardians(&id))?
        .map_or(0, |g| g.recoveries);
    let g = Guardians {
        guardian_keys: m.guardian_keys.clone(),
        threshold: m.threshold,
        recoveries,
    };
    st.put_msg(keys::guardians(&id), &g);
    Ok(vec![Event::new(
        "medledger.patient.guardians",
        vec![
            ("patient_id", id),
            ("guardians", m.guardian_keys.len().to_string()),
            ("threshold", m.threshold.to_string()),
        ],
    )])
}

/// RotatePatientKey: the patient's current key hands over to a new one.
pub fn rotate(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RotatePatientKey,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_patient_signer(signer, "RotatePatientKey")?;
    let patient = require_patient(st, &id)?;
    let new_key = new_key(st, &m.new_key)?;
    move_key(st, patient, &new_key);
    Ok(vec![Event::new(
        "medledger.patient.key_rotated",
        vec![("patient_id", id)],
    )])
}

/// RecoverPatientKey: signed by the new key, with approvals of `threshold` guardians.
pub fn recover(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RecoverPatientKey,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let new_key = new_key(st, &m.new_key)?;
    if !matches!(signer, Signer::Unknown) || st.get(&keys::key_owner(&new_key))?.is_some() {
        return Err(TxError::new(
            Code::KeyInUse,
            "a recovery is signed by the new key, which must not belong to anyone yet",
        )
        .into());
    }
    let patient = require_patient(st, &m.patient_id)?;
    let mut g: Guardians = st
        .get_msg::<Guardians>(&keys::guardians(&m.patient_id))?
        .filter(|g| !g.guardian_keys.is_empty())
        .ok_or_else(|| {
            TxError::new(
                Code::NoGuardians,
                format!(
                    "patient {} has no guardians; recovery is impossible",
                    m.patient_id
                ),
            )
        })?;
    let mut approved: Vec<&[u8]> = Vec::new();
    for a in &m.approvals {
        let listed = g.guardian_keys.iter().any(|k| *k == a.guardian_key);
        let fresh = !approved.contains(&a.guardian_key.as_slice());
        if listed
            && fresh
            && recovery::verify_approval(
                &a.guardian_key,
                &a.signature,
                &ctx.chain_id,
                &m.patient_id,
                &new_key,
                g.recoveries,
            )
        {
            approved.push(&a.guardian_key);
        }
    }
    if (approved.len() as u64) < u64::from(g.threshold) {
        return Err(TxError::new(
            Code::NotEnoughGuardians,
            format!(
                "{} valid guardian approvals; {} are needed",
                approved.len(),
                g.threshold
            ),
        )
        .into());
    }
    g.recoveries += 1;
    st.put_msg(keys::guardians(&m.patient_id), &g);
    move_key(st, patient, &new_key);
    Ok(vec![Event::new(
        "medledger.patient.key_recovered",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("approvals", approved.len().to_string()),
        ],
    )])
}

fn new_key(st: &TxState<'_, '_>, bytes: &[u8]) -> Result<[u8; 32], ApplyError> {
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|_| TxError::new(Code::BadPublicKey, "new_key must be 32 bytes"))?;
    if st.get(&keys::key_owner(&key))?.is_some() {
        return Err(TxError::new(
            Code::KeyInUse,
            "new_key already belongs to a member, patient or practitioner",
        )
        .into());
    }
    Ok(key)
}

/// Points the patient at `new_key`; the old key owns nothing afterwards, so it can sign nothing.
fn move_key(st: &mut TxState<'_, '_>, mut patient: Patient, new_key: &[u8; 32]) {
    if let Ok(old) = <[u8; 32]>::try_from(patient.key.as_slice()) {
        st.delete(keys::key_owner(&old));
    }
    st.put_msg(
        keys::key_owner(new_key),
        &KeyOwner {
            owner: Some(Owner::PatientId(patient.id.clone())),
        },
    );
    patient.key = new_key.to_vec();
    st.put_msg(keys::patient(&patient.id), &patient);
}

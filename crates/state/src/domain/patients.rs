//! Patients: registration under a pseudonymous id derived from their key.

use medledger_tx::limits::MAX_ENROLMENTS_PER_BLOCK;
use medledger_tx::pb::{
    key_owner::Owner, Guardians, KeyOwner, Patient, RecoverPatientKey, RegisterPatient,
    RotatePatientKey, SetGuardians,
};
use medledger_tx::{ids, keyproof, keys, recovery, Code, TxError};

use super::members::Signer;
use super::practitioners::acting_member;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// RegisterPatient: a member (its admin or an active practitioner) enrols the patient it
/// identified. The patient's key proves possession; a key that is, or ever was, a patient's is
/// refused; each member enrols at most [`MAX_ENROLMENTS_PER_BLOCK`] patients per block.
pub fn register(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RegisterPatient,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (member, _) = acting_member(st, signer, "RegisterPatient", ctx)?;
    let key: [u8; 32] = m
        .patient_key
        .as_slice()
        .try_into()
        .map_err(|_| TxError::new(Code::BadPublicKey, "patient_key must be 32 bytes"))?;
    keyproof::verify_with(
        &ctx.key_proofs,
        &key,
        &m.key_proof,
        &ctx.chain_id,
        keyproof::ENROL_PATIENT,
        &member,
    )?;
    let id = ids::patient_id(&key);
    match st
        .get_msg::<KeyOwner>(&keys::key_owner(&key))?
        .and_then(|o| o.owner)
    {
        None => {}
        Some(Owner::PatientId(existing)) => {
            return Err(TxError::new(
                Code::PatientExists,
                format!("this key is already patient {existing}"),
            )
            .into())
        }
        Some(Owner::RetiredPatientKey(old)) => {
            return Err(TxError::new(
                Code::KeyRetired,
                format!("this key was patient {old}'s and was replaced; it stays retired"),
            )
            .into())
        }
        Some(Owner::RetiredMemberKey(old)) => {
            return Err(TxError::new(
                Code::KeyRetired,
                format!("this key was an admin key of member {old} and was retired"),
            )
            .into())
        }
        Some(_) => {
            return Err(TxError::new(
                Code::KeyInUse,
                "this key belongs to a member or practitioner",
            )
            .into())
        }
    }
    if st.get(&keys::patient(&id))?.is_some() {
        // The id is derived from the patient's first key; that key is retired above, so this is
        // only reached by a store written before keys were retired. Refuse all the same.
        return Err(TxError::new(Code::PatientExists, format!("patient {id} exists")).into());
    }
    let quota_key = keys::enrolments(&member);
    let (last_height, count) = st
        .get(&quota_key)?
        .and_then(|v| {
            let h = keys::decode_u64(v.get(..8)?)?;
            let n = keys::decode_u64(v.get(8..)?)?;
            Some((h, n))
        })
        .unwrap_or((0, 0));
    let count = if last_height == ctx.height { count } else { 0 };
    if count >= MAX_ENROLMENTS_PER_BLOCK {
        return Err(TxError::new(
            Code::EnrolmentLimit,
            format!(
                "member {member} enrolled {count} patients in this block, the most one member may; \
                 send the rest in later blocks"
            ),
        )
        .into());
    }
    let mut quota = keys::encode_u64(ctx.height);
    quota.extend_from_slice(&keys::encode_u64(count + 1));
    st.put(quota_key, quota);
    let patient = Patient {
        id: id.clone(),
        key: key.to_vec(),
        registered_height: ctx.height,
        enrolled_by: member.clone(),
    };
    st.put_msg(keys::patient(&id), &patient);
    st.put_msg(
        keys::key_owner(&key),
        &KeyOwner {
            owner: Some(Owner::PatientId(id.clone())),
        },
    );
    Ok(vec![Event::new(
        "medledger.patient.registered",
        vec![("patient_id", id), ("enrolled_by", member)],
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
    _ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_patient_signer(signer, "SetGuardians")?;
    let patient = require_patient(st, &id)?;
    if m.guardian_keys.contains(&patient.key) {
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
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_patient_signer(signer, "RotatePatientKey")?;
    let patient = require_patient(st, &id)?;
    let new_key = new_key(st, &m.new_key)?;
    keyproof::verify_with(
        &ctx.key_proofs,
        &new_key,
        &m.new_key_proof,
        &ctx.chain_id,
        keyproof::ROTATE_PATIENT_KEY,
        &id,
    )?;
    move_key(st, patient, &new_key);
    Ok(vec![Event::new(
        "medledger.patient.key_rotated",
        vec![("patient_id", id)],
    )])
}

/// RecoverPatientKey: signed by the new key, with approvals of `threshold` guardians, each bound
/// to the patient's current key and guardian set (see [`recovery`]).
pub fn recover(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    signer_key: &[u8; 32],
    m: &RecoverPatientKey,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let new_key = new_key(st, &m.new_key)?;
    if *signer_key != new_key {
        return Err(TxError::new(
            Code::RecoverySignerMismatch,
            "a recovery is signed by the new key it names (that signature proves it is held)",
        )
        .into());
    }
    if !matches!(signer, Signer::Unknown) {
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
    let at = recovery::RecoveryState {
        recoveries: g.recoveries,
        current_key: patient.key.as_slice().try_into().unwrap_or([0; 32]),
        guardian_set_hash: recovery::guardian_set_hash(&g.guardian_keys, g.threshold),
    };
    let mut approved: Vec<&[u8]> = Vec::new();
    for a in &m.approvals {
        let listed = g.guardian_keys.contains(&a.guardian_key);
        let fresh = !approved.contains(&a.guardian_key.as_slice());
        if listed
            && fresh
            && recovery::verify_approval(
                &a.guardian_key,
                &a.signature,
                &ctx.chain_id,
                &m.patient_id,
                &new_key,
                &at,
            )
        {
            approved.push(&a.guardian_key);
        }
    }
    if (approved.len() as u64) < u64::from(g.threshold) {
        return Err(TxError::new(
            Code::NotEnoughGuardians,
            format!(
                "{} valid guardian approvals; {} are needed (an approval is void once the \
                 patient's key or guardians change)",
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

/// Points the patient at `new_key`. The old key stays owned as retired: it can sign nothing,
/// and it can never be registered, rotated to or vouched for again.
fn move_key(st: &mut TxState<'_, '_>, mut patient: Patient, new_key: &[u8; 32]) {
    if let Ok(old) = <[u8; 32]>::try_from(patient.key.as_slice()) {
        st.put_msg(
            keys::key_owner(&old),
            &KeyOwner {
                owner: Some(Owner::RetiredPatientKey(patient.id.clone())),
            },
        );
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

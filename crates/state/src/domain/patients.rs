//! Patients: registration under a pseudonymous id derived from their key, their guardians, key
//! rotation and social recovery.
//!
//! While a patient has guardians, a guardian-set change or rotation signed by the patient's key
//! waits the genesis guardian-change delay (`PendingPatientChange` at `guardian-change/{id}`), so
//! that a thief holding the key cannot lock the guardians out: they recover within the delay,
//! which cancels the pending change. Due changes are applied lazily, by the patient's next
//! SetGuardians, RotatePatientKey or RecoverPatientKey ([`settle`]), never by a scan.

use medledger_tx::limits::MAX_ENROLMENTS_PER_BLOCK;
use medledger_tx::pb::{
    key_owner::Owner, Guardians, KeyOwner, Patient, PatientBoxKey, PendingPatientChange,
    RecoverPatientKey, RegisterPatient, RegisterPatientBoxKey, RotatePatientKey, SetGuardians,
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
    let key = require_enrolment_proof(m, &member, ctx)?;
    let id = ids::patient_id(&key);
    require_unowned_key(st, &key)?;
    if st.get(&keys::patient(&id))?.is_some() {
        // The id is derived from the patient's first key; that key is retired above, so this is
        // only reached by a store written before keys were retired. Refuse all the same.
        return Err(TxError::new(Code::PatientExists, format!("patient {id} exists")).into());
    }
    count_enrolment(st, &member, ctx)?;
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

/// The patient's key, which must prove possession for enrolment by `member` on this chain.
fn require_enrolment_proof(
    m: &RegisterPatient,
    member: &str,
    ctx: &BlockCtx,
) -> Result<[u8; 32], ApplyError> {
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
        member,
    )?;
    Ok(key)
}

/// Refuses a key that is, or ever was, anyone's: a patient's, a member's or a practitioner's.
fn require_unowned_key(view: &impl StateRead, key: &[u8; 32]) -> Result<(), ApplyError> {
    match view
        .get_msg::<KeyOwner>(&keys::key_owner(key))?
        .and_then(|o| o.owner)
    {
        None => Ok(()),
        Some(Owner::PatientId(existing)) => Err(TxError::new(
            Code::PatientExists,
            format!("this key is already patient {existing}"),
        )
        .into()),
        Some(Owner::RetiredPatientKey(old)) => Err(TxError::new(
            Code::KeyRetired,
            format!("this key was patient {old}'s and was replaced; it stays retired"),
        )
        .into()),
        Some(Owner::RetiredMemberKey(old)) => Err(TxError::new(
            Code::KeyRetired,
            format!("this key was an admin key of member {old} and was retired"),
        )
        .into()),
        Some(_) => Err(TxError::new(
            Code::KeyInUse,
            "this key belongs to a member or practitioner",
        )
        .into()),
    }
}

/// Counts one enrolment by `member` in this block (`enrolments/{member}`: the height, then the
/// count at that height), refusing it past [`MAX_ENROLMENTS_PER_BLOCK`].
fn count_enrolment(
    st: &mut TxState<'_, '_>,
    member: &str,
    ctx: &BlockCtx,
) -> Result<(), ApplyError> {
    let quota_key = keys::enrolments(member);
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
    Ok(())
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

/// The signer's own patient id, for something only the patient's own key sends about the
/// patient `named`: a member's admin or a practitioner is [`Code::PatientOnly`], another
/// patient's key (a guardian's included) [`Code::NotOwnPatientId`], an unknown key
/// [`Code::UnknownSigner`].
pub fn require_own_patient(signer: &Signer, named: &str, what: &str) -> Result<String, ApplyError> {
    match signer {
        Signer::Patient(id) if id == named => Ok(id.clone()),
        Signer::Patient(id) => Err(TxError::new(
            Code::NotOwnPatientId,
            format!("{what} names patient {named}; the signing key is patient {id}'s, and a patient's key speaks for that patient only"),
        )
        .into()),
        Signer::Member(id) => Err(TxError::new(
            Code::PatientOnly,
            format!("{what} is signed by the patient's own key; member {id} may not"),
        )
        .into()),
        Signer::Practitioner(p) => Err(TxError::new(
            Code::PatientOnly,
            format!("{what} is signed by the patient's own key; practitioner {} may not", p.did),
        )
        .into()),
        Signer::Unknown => Err(TxError::new(
            Code::UnknownSigner,
            format!("{what} must be signed by a registered patient; register this key first"),
        )
        .into()),
    }
}

/// RegisterPatientBoxKey: the patient's own key registers (or replaces) the X25519 key that
/// holders seal key shares to for the patient's own reads (purpose PATRQT). The key was checked
/// statelessly ([`medledger_tx::boxkey::check_x25519_public`]); a due pending rotation retires
/// the signing key first ([`Code::KeyRetired`]).
pub fn register_box_key(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RegisterPatientBoxKey,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_own_patient(signer, &m.patient_id, "RegisterPatientBoxKey")?;
    let box_key = medledger_tx::boxkey::check_x25519_public(&m.box_key)?;
    let settled = settle(st, require_patient(st, &id)?, ctx)?;
    settled.signer_retired()?;
    let replaced = st.get(&keys::patient_box_key(&id))?.is_some();
    st.put_msg(
        keys::patient_box_key(&id),
        &PatientBoxKey {
            patient_id: id.clone(),
            box_key: box_key.to_vec(),
            set_height: ctx.height,
        },
    );
    let mut events = settled.events;
    events.push(Event::new(
        "medledger.patient.box_key_set",
        vec![
            ("patient_id", id),
            ("box_key", hex::encode(box_key)),
            ("replaced", replaced.to_string()),
        ],
    ));
    Ok(events)
}

/// The patient with `id`, or [`Code::UnknownPatient`].
pub fn require_patient(view: &impl StateRead, id: &str) -> Result<Patient, ApplyError> {
    view.get_msg(&keys::patient(id))?
        .ok_or_else(|| TxError::new(Code::UnknownPatient, format!("no patient {id:?}")).into())
}

/// The guardian-change delay of the chain, in seconds of block time (genesis
/// `guardian_change_delay_secs`; [`keys::DEFAULT_GUARDIAN_CHANGE_DELAY_SECS`] if the chain's
/// genesis predates it).
pub fn guardian_change_delay(view: &impl StateRead) -> Result<u64, ApplyError> {
    Ok(view
        .get(&keys::guardian_change_delay())?
        .and_then(|v| keys::decode_u64(&v))
        .unwrap_or(keys::DEFAULT_GUARDIAN_CHANGE_DELAY_SECS))
}

/// The patient's key and guardians in force at the block time, read-only: the stored ones with
/// every due pending change applied ([`recovery::standing`]). CheckTx may call this against
/// committed state; the handlers call [`settle`], which also writes what it applied.
pub fn standing(
    view: &impl StateRead,
    patient: &Patient,
    ctx: &BlockCtx,
) -> Result<recovery::Standing, ApplyError> {
    let guardians = view.get_msg::<Guardians>(&keys::guardians(&patient.id))?;
    let pending = view.get_msg::<PendingPatientChange>(&keys::guardian_change(&patient.id))?;
    Ok(recovery::standing(
        &patient.key,
        guardians.as_ref(),
        pending.as_ref(),
        ctx.time,
    ))
}

/// Applies the patient's due pending changes and writes them: a due guardian set replaces the
/// guardians, a due rotation moves the patient to its new key (dropped, with an event, if that
/// key was taken meanwhile), and the pending entry keeps what still waits. Returns the patient
/// and guardians now in force, what still waits, whether a rotation was applied, and the events.
fn settle(
    st: &mut TxState<'_, '_>,
    patient: Patient,
    ctx: &BlockCtx,
) -> Result<Settled, ApplyError> {
    let now = standing(st, &patient, ctx)?;
    let mut events = Vec::new();
    let mut patient = patient;
    if now.guardians_changed {
        if let Some(g) = &now.guardians {
            st.put_msg(keys::guardians(&patient.id), g);
            events.push(guardians_event(
                &patient.id,
                g,
                "medledger.patient.guardians",
            ));
        }
    }
    let mut rotated = false;
    if now.key_changed {
        match <[u8; 32]>::try_from(now.key.as_slice()) {
            Ok(k) if st.get(&keys::key_owner(&k))?.is_none() => {
                patient = move_key(st, patient, &k);
                rotated = true;
                events.push(Event::new(
                    "medledger.patient.key_rotated",
                    vec![("patient_id", patient.id.clone())],
                ));
            }
            _ => events.push(Event::new(
                "medledger.patient.pending_cancelled",
                vec![
                    ("patient_id", patient.id.clone()),
                    ("reason", "new key taken".to_string()),
                ],
            )),
        }
    }
    if now.guardians_changed || now.key_changed {
        match &now.pending {
            Some(p) => st.put_msg(keys::guardian_change(&patient.id), p),
            None => st.delete(keys::guardian_change(&patient.id)),
        }
    }
    Ok(Settled {
        patient,
        guardians: now.guardians,
        pending: now.pending,
        rotated,
        events,
    })
}

/// What [`settle`] leaves in force.
struct Settled {
    patient: Patient,
    guardians: Option<Guardians>,
    pending: Option<PendingPatientChange>,
    rotated: bool,
    events: Vec<Event>,
}

impl Settled {
    fn has_guardians(&self) -> bool {
        self.guardians
            .as_ref()
            .is_some_and(|g| !g.guardian_keys.is_empty())
    }

    /// A tx signed by the patient's key refused because [`settle`] just moved the patient to a
    /// due rotation's new key: the signing key is retired from now on.
    fn signer_retired(&self) -> Result<(), ApplyError> {
        if self.rotated {
            return Err(TxError::new(
                Code::KeyRetired,
                format!(
                    "patient {}'s pending rotation is due: this key is retired and the new key signs \
                     (it completes the rotation with RecoverPatientKey without approvals)",
                    self.patient.id
                ),
            )
            .into());
        }
        Ok(())
    }
}

fn guardians_event(id: &str, g: &Guardians, name: &'static str) -> Event {
    Event::new(
        name,
        vec![
            ("patient_id", id.to_string()),
            ("guardians", g.guardian_keys.len().to_string()),
            ("threshold", g.threshold.to_string()),
        ],
    )
}

/// The block time `delay` seconds after `ctx`'s, saturating.
fn effective_time(view: &impl StateRead, ctx: &BlockCtx) -> Result<u64, ApplyError> {
    Ok(ctx.time.saturating_add(guardian_change_delay(view)?))
}

/// SetGuardians: the patient names the guardians (m of n) who can recover their key. With no
/// guardians yet it applies at once; while the patient has guardians it waits the guardian-change
/// delay (replacing any guardian set already pending), so the guardians can recover first.
pub fn set_guardians(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &SetGuardians,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_patient_signer(signer, "SetGuardians")?;
    let settled = settle(st, require_patient(st, &id)?, ctx)?;
    settled.signer_retired()?;
    if m.guardian_keys.contains(&settled.patient.key) {
        return Err(
            TxError::new(Code::InvalidField, "a patient cannot be their own guardian").into(),
        );
    }
    let mut events = settled.events.clone();
    if settled.has_guardians() {
        let at = effective_time(st, ctx)?;
        let mut pending = settled.pending.clone().unwrap_or_default();
        pending.guardians = Some(m.clone());
        pending.guardians_effective_time = at;
        pending.guardians_requested_height = ctx.height;
        st.put_msg(keys::guardian_change(&id), &pending);
        events.push(Event::new(
            "medledger.patient.guardians_pending",
            vec![
                ("patient_id", id),
                ("guardians", m.guardian_keys.len().to_string()),
                ("threshold", m.threshold.to_string()),
                ("effective_time", at.to_string()),
            ],
        ));
        return Ok(events);
    }
    let g = Guardians {
        guardian_keys: m.guardian_keys.clone(),
        threshold: m.threshold,
        recoveries: settled.guardians.map_or(0, |g| g.recoveries),
    };
    st.put_msg(keys::guardians(&id), &g);
    events.push(guardians_event(&id, &g, "medledger.patient.guardians"));
    Ok(events)
}

/// RotatePatientKey: the patient's current key hands over to a new one. With no guardians it
/// applies at once (from the next tx on only `new_key` signs); while the patient has guardians it
/// waits the guardian-change delay (replacing any rotation already pending) and is then completed
/// by the new key (RecoverPatientKey without approvals).
pub fn rotate(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RotatePatientKey,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let id = require_patient_signer(signer, "RotatePatientKey")?;
    let settled = settle(st, require_patient(st, &id)?, ctx)?;
    settled.signer_retired()?;
    let new_key = new_key(st, &m.new_key)?;
    keyproof::verify_with(
        &ctx.key_proofs,
        &new_key,
        &m.new_key_proof,
        &ctx.chain_id,
        keyproof::ROTATE_PATIENT_KEY,
        &id,
    )?;
    let mut events = settled.events.clone();
    if settled.has_guardians() {
        let at = effective_time(st, ctx)?;
        let mut pending = settled.pending.clone().unwrap_or_default();
        pending.new_key = new_key.to_vec();
        pending.key_effective_time = at;
        pending.key_requested_height = ctx.height;
        st.put_msg(keys::guardian_change(&id), &pending);
        events.push(Event::new(
            "medledger.patient.key_rotation_pending",
            vec![("patient_id", id), ("effective_time", at.to_string())],
        ));
        return Ok(events);
    }
    move_key(st, settled.patient, &new_key);
    events.push(Event::new(
        "medledger.patient.key_rotated",
        vec![("patient_id", id)],
    ));
    Ok(events)
}

/// RecoverPatientKey, signed by the new key it names. Either the completion of a due pending
/// rotation to that key (no approvals needed: the patient's key asked for it a delay ago), or a
/// recovery with approvals of `threshold` guardians, each bound to the patient's key and
/// guardian set in force now (see [`recovery`]); a recovery cancels every pending change.
pub fn recover(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    signer_key: &[u8; 32],
    m: &RecoverPatientKey,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let named: [u8; 32] = m
        .new_key
        .as_slice()
        .try_into()
        .map_err(|_| TxError::new(Code::BadPublicKey, "new_key must be 32 bytes"))?;
    if *signer_key != named {
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
    let settled = settle(st, require_patient(st, &m.patient_id)?, ctx)?;
    if settled.rotated && settled.patient.key == named {
        // The due rotation to this key was just applied: the rotation is complete.
        return Ok(settled.events);
    }
    if let Some(p) = &settled.pending {
        if p.new_key == named && m.approvals.is_empty() {
            return Err(TxError::new(
                Code::RotationNotDue,
                format!(
                    "the rotation of patient {} to this key takes effect at block time {}; until \
                     then the patient's guardians can still recover",
                    m.patient_id, p.key_effective_time
                ),
            )
            .into());
        }
    }
    let new_key = new_key(st, &m.new_key)?;
    let mut g: Guardians = settled
        .guardians
        .clone()
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
        current_key: settled.patient.key.as_slice().try_into().unwrap_or([0; 32]),
        guardian_set_hash: recovery::guardian_set_hash(&g.guardian_keys, g.threshold),
    };
    let approved = count_approvals(&g, m, &new_key, &at, &ctx.chain_id);
    if (approved as u64) < u64::from(g.threshold) {
        return Err(TxError::new(
            Code::NotEnoughGuardians,
            format!(
                "{approved} valid guardian approvals; {} are needed (an approval is void once the \
                 patient's key or guardians change)",
                g.threshold
            ),
        )
        .into());
    }
    let mut events = settled.events.clone();
    if let Some(p) = &settled.pending {
        st.delete(keys::guardian_change(&m.patient_id));
        events.push(Event::new(
            "medledger.patient.pending_cancelled",
            vec![
                ("patient_id", m.patient_id.clone()),
                ("reason", "recovered".to_string()),
                ("guardians", p.guardians.is_some().to_string()),
                ("rotation", (!p.new_key.is_empty()).to_string()),
            ],
        ));
    }
    g.recoveries += 1;
    st.put_msg(keys::guardians(&m.patient_id), &g);
    move_key(st, settled.patient, &new_key);
    events.push(Event::new(
        "medledger.patient.key_recovered",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("approvals", approved.to_string()),
        ],
    ));
    Ok(events)
}

/// How many distinct listed guardians validly approve moving the patient to `new_key` at `at`.
pub fn count_approvals(
    g: &Guardians,
    m: &RecoverPatientKey,
    new_key: &[u8; 32],
    at: &recovery::RecoveryState,
    chain_id: &str,
) -> usize {
    let mut approved: Vec<&[u8]> = Vec::new();
    for a in &m.approvals {
        let listed = g.guardian_keys.contains(&a.guardian_key);
        let fresh = !approved.contains(&a.guardian_key.as_slice());
        if listed
            && fresh
            && recovery::verify_approval(
                &a.guardian_key,
                &a.signature,
                chain_id,
                &m.patient_id,
                new_key,
                at,
            )
        {
            approved.push(&a.guardian_key);
        }
    }
    approved.len()
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

/// Points the patient at `new_key` and returns it so. The old key stays owned as retired: it can
/// sign nothing, and it can never be registered, rotated to or vouched for again.
fn move_key(st: &mut TxState<'_, '_>, mut patient: Patient, new_key: &[u8; 32]) -> Patient {
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
    patient
}

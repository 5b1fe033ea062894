//! Practitioners: keys a member vouches for, with a role, a licence hash and a validity period.
//! A practitioner acts only while ACTIVE, before `valid_until`, and while their member exists.

use medledger_tx::check::{record_roles, RecordAction};
use medledger_tx::pb::MemberKind;
use medledger_tx::pb::{
    key_owner::Owner, KeyOwner, Practitioner, PractitionerRole, PractitionerStatus,
    RegisterPractitioner, SetPractitionerStatus,
};
use medledger_tx::{ids, keyproof, keys, Code, TxError};

use super::members::{require_member, require_member_signer, Signer};
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// RegisterPractitioner: a member's admin vouches for a practitioner key.
pub fn register(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RegisterPractitioner,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let member = require_member_signer(signer, "RegisterPractitioner")?;
    let key: [u8; 32] = m.public_key.as_slice().try_into().map_err(|_| {
        TxError::new(
            Code::BadPublicKey,
            "practitioner public_key must be 32 bytes",
        )
    })?;
    if st.get(&keys::key_owner(&key))?.is_some() {
        return Err(TxError::new(
            Code::PractitionerExists,
            "this key already belongs to a member, patient or practitioner",
        )
        .into());
    }
    keyproof::verify_with(
        &ctx.key_proofs,
        &key,
        &m.key_proof,
        &ctx.chain_id,
        keyproof::REGISTER_PRACTITIONER,
        &member,
    )?;
    let kind = require_member(st, &member)?.kind;
    require_role_fits_member(m.role, kind)?;
    let did = ids::practitioner_did(&key);
    let p = Practitioner {
        did: did.clone(),
        member_id: member.clone(),
        public_key: key.to_vec(),
        role: m.role,
        licence_hash: m.licence_hash.clone(),
        valid_until: m.valid_until,
        status: PractitionerStatus::Active as i32,
        name: m.name.clone(),
        registered_height: ctx.height,
        status_reason_hash: Vec::new(),
    };
    st.put_msg(keys::practitioner(&did), &p);
    st.put_msg(
        keys::key_owner(&key),
        &KeyOwner {
            owner: Some(Owner::PractitionerDid(did.clone())),
        },
    );
    Ok(vec![Event::new(
        "medledger.practitioner.registered",
        vec![("did", did), ("member", member)],
    )])
}

/// The member kinds that may vouch for a practitioner of `role`. Clinical roles belong to care
/// providers: physicians and nurses to hospitals, lab technicians to labs and hospitals. Claims
/// staff work for insurers and for providers' billing offices; researchers for research members
/// and hospitals; every member has privacy officers. An insurer, research or regulator member
/// cannot vouch for a physician or nurse, so it cannot break the glass.
pub fn kinds_for_role(role: PractitionerRole) -> &'static [MemberKind] {
    use MemberKind::*;
    match role {
        PractitionerRole::Physician | PractitionerRole::Nurse => &[Hospital],
        PractitionerRole::LabTechnician => &[Hospital, Lab],
        PractitionerRole::ClaimsAdjuster => &[Hospital, Lab, Insurer],
        PractitionerRole::Researcher => &[Hospital, Research],
        PractitionerRole::PrivacyOfficer => &[Hospital, Lab, Insurer, Research, Regulator],
        PractitionerRole::Unspecified => &[],
    }
}

/// Whether a member of `kind` may vouch for `role`, or [`Code::RoleNotForMemberKind`].
fn require_role_fits_member(role: i32, kind: i32) -> Result<(), ApplyError> {
    let role = PractitionerRole::try_from(role).unwrap_or(PractitionerRole::Unspecified);
    if kinds_for_role(role).iter().any(|k| *k as i32 == kind) {
        return Ok(());
    }
    Err(TxError::new(
        Code::RoleNotForMemberKind,
        format!(
            "a {} member cannot vouch for a {}",
            MemberKind::try_from(kind).map_or("UNKNOWN", |k| k.as_str_name()),
            role.as_str_name()
        ),
    )
    .into())
}

/// SetPractitionerStatus: the practitioner's member suspends, reinstates or revokes them.
pub fn set_status(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &SetPractitionerStatus,
    _ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let member = require_member_signer(signer, "SetPractitionerStatus")?;
    let mut p = require_practitioner(st, &m.did)?;
    if p.member_id != member {
        return Err(TxError::new(
            Code::NotPractitionersMember,
            format!("{} belongs to member {}", p.did, p.member_id),
        )
        .into());
    }
    if p.status == PractitionerStatus::Revoked as i32 {
        return Err(TxError::new(
            Code::PractitionerInactive,
            format!("{} was revoked; revocation is final", p.did),
        )
        .into());
    }
    p.status = m.status;
    p.status_reason_hash = m.reason_hash.clone();
    st.put_msg(keys::practitioner(&p.did), &p);
    let status = PractitionerStatus::try_from(m.status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    Ok(vec![Event::new(
        "medledger.practitioner.status",
        vec![("did", p.did), ("status", status.to_string())],
    )])
}

/// The practitioner with `did`, or [`Code::UnknownPractitioner`].
pub fn require_practitioner(view: &impl StateRead, did: &str) -> Result<Practitioner, ApplyError> {
    view.get_msg(&keys::practitioner(did))?.ok_or_else(|| {
        TxError::new(
            Code::UnknownPractitioner,
            format!("no practitioner {did:?}"),
        )
        .into()
    })
}

/// Whether `p` may act now: ACTIVE, not past `valid_until`, member still a member.
pub fn require_active(
    view: &impl StateRead,
    p: &Practitioner,
    ctx: &BlockCtx,
) -> Result<(), ApplyError> {
    let inactive = |why: String| -> ApplyError {
        TxError::new(Code::PractitionerInactive, format!("{}: {why}", p.did)).into()
    };
    if p.status != PractitionerStatus::Active as i32 {
        let status = PractitionerStatus::try_from(p.status)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        return Err(inactive(format!("status is {status}")));
    }
    if p.valid_until != 0 && ctx.time > p.valid_until {
        return Err(inactive(format!("credential expired at {}", p.valid_until)));
    }
    if view.get(&keys::member(&p.member_id))?.is_none() {
        return Err(inactive(format!(
            "member {} is no longer a member",
            p.member_id
        )));
    }
    Ok(())
}

/// Whether `p`'s role is one of `roles`, or [`Code::RoleNotPermitted`].
pub fn require_role(
    p: &Practitioner,
    roles: &[PractitionerRole],
    what: &str,
) -> Result<(), ApplyError> {
    if roles.iter().any(|r| *r as i32 == p.role) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str_name()).collect();
    Err(TxError::new(
        Code::RoleNotPermitted,
        format!("{what} needs role {}; {} is not", names.join(" or "), p.did),
    )
    .into())
}

/// Who acts for a message that members' admins or their active practitioners may send: the
/// member id, and the practitioner DID when a practitioner signed.
pub fn acting_member(
    view: &impl StateRead,
    signer: &Signer,
    what: &str,
    ctx: &BlockCtx,
) -> Result<(String, Option<Practitioner>), ApplyError> {
    match signer {
        Signer::Member(id) => Ok((id.clone(), None)),
        Signer::Practitioner(p) => {
            require_active(view, p, ctx)?;
            Ok((p.member_id.clone(), Some((**p).clone())))
        }
        Signer::Patient(id) => Err(TxError::new(
            Code::NotAuthorized,
            format!("{what} is for members and practitioners; {id} is a patient"),
        )
        .into()),
        Signer::Unknown => Err(TxError::new(
            Code::UnknownSigner,
            format!("{what}: this key belongs to no member or practitioner"),
        )
        .into()),
    }
}

/// Who acts on a record for its custodian: [`acting_member`], and a practitioner's role must be
/// one the record role table ([`record_roles`]) allows for `action`, or
/// [`Code::RoleNotPermitted`]. Every path that anchors, erases or confirms an erasure for a
/// member goes through here, so a role may do on one path exactly what it may on another.
pub fn acting_for_record(
    view: &impl StateRead,
    signer: &Signer,
    action: RecordAction,
    ctx: &BlockCtx,
) -> Result<(String, Option<Practitioner>), ApplyError> {
    let (member, practitioner) = acting_member(view, signer, action.message(), ctx)?;
    if let Some(p) = &practitioner {
        require_role(p, record_roles(action), action.message())?;
    }
    Ok((member, practitioner))
}

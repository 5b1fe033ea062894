//! SMART Backend Services clients: a member's admin registers an EHR backend's public key, who
//! it acts for (the member, or one of the member's practitioners) and the scopes it may be
//! granted (`RegisterSmartClient`), and revokes it (`RevokeSmartClient`). Gateways read the
//! client with a proof when it asks for a token (docs/fhir.md, "Authorization").

use medledger_tx::pb::{
    Practitioner, PractitionerStatus, RegisterSmartClient, RevokeSmartClient, SmartClient,
};
use medledger_tx::{keys, Code, TxError};

use super::members::{require_member, require_member_signer, Signer};
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// RegisterSmartClient: a member admin registers a client, or replaces one of its own that is
/// not revoked (a key rotation or new scopes). The practitioner it acts for must be the
/// member's own, and not revoked.
pub fn register(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RegisterSmartClient,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let member = require_member_signer(signer, "RegisterSmartClient")?;
    require_member(st, &member)?;
    if let Some(old) = st.get_msg::<SmartClient>(&keys::smart_client(&m.client_id))? {
        if old.member_id != member || old.revoked_height != 0 {
            return Err(TxError::new(
                Code::SmartClientIdTaken,
                format!(
                    "client id {:?} was registered by {}{}; client ids are never reused: pick another",
                    m.client_id,
                    old.member_id,
                    if old.revoked_height != 0 { " and revoked" } else { "" }
                ),
            )
            .into());
        }
    }
    if !m.acts_for_practitioner.is_empty() {
        let did = &m.acts_for_practitioner;
        let p: Practitioner = st.get_msg(&keys::practitioner(did))?.ok_or_else(|| {
            TxError::new(
                Code::UnknownPractitioner,
                format!("no practitioner {did:?}: register them first"),
            )
        })?;
        if p.member_id != member {
            return Err(TxError::new(
                Code::NotAuthorized,
                format!(
                    "practitioner {did} belongs to {}; a client acts only for its own member's practitioners",
                    p.member_id
                ),
            )
            .into());
        }
        if p.status == PractitionerStatus::Revoked as i32 {
            return Err(TxError::new(
                Code::PractitionerInactive,
                format!("practitioner {did} is revoked; a client cannot act for them"),
            )
            .into());
        }
    }
    let client = SmartClient {
        client_id: m.client_id.clone(),
        member_id: member.clone(),
        kid: m.kid.clone(),
        alg: m.alg,
        ec_point: m.ec_point.clone(),
        rsa_n: m.rsa_n.clone(),
        rsa_e: m.rsa_e.clone(),
        acts_for_practitioner: m.acts_for_practitioner.clone(),
        scopes: m.scopes.clone(),
        registered_height: ctx.height,
        revoked_height: 0,
    };
    st.put_msg(keys::smart_client(&m.client_id), &client);
    let acts_for = if m.acts_for_practitioner.is_empty() {
        member.clone()
    } else {
        m.acts_for_practitioner.clone()
    };
    Ok(vec![Event::new(
        "medledger.smart_client.registered",
        vec![
            ("client_id", m.client_id.clone()),
            ("member", member),
            ("acts_for", acts_for),
        ],
    )])
}

/// RevokeSmartClient: the member that registered the client revokes it, for good.
pub fn revoke(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RevokeSmartClient,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let member = require_member_signer(signer, "RevokeSmartClient")?;
    let key = keys::smart_client(&m.client_id);
    let mut client = match st.get_msg::<SmartClient>(&key)? {
        Some(c) if c.revoked_height == 0 => c,
        _ => {
            return Err(TxError::new(
                Code::UnknownSmartClient,
                format!(
                    "no registered client {:?} (or it is revoked already)",
                    m.client_id
                ),
            )
            .into())
        }
    };
    if client.member_id != member {
        return Err(TxError::new(
            Code::NotAuthorized,
            format!(
                "client {:?} belongs to {}; only its member's admin revokes it",
                m.client_id, client.member_id
            ),
        )
        .into());
    }
    client.revoked_height = ctx.height;
    st.put_msg(key, &client);
    Ok(vec![Event::new(
        "medledger.smart_client.revoked",
        vec![("client_id", m.client_id.clone()), ("member", member)],
    )])
}

//! Record-vault gateways: a member's admin sets where its gateway answers and the X25519 box key
//! that other gateways share data keys to, signed by the admin key (`SetGateway`).

use medledger_tx::pb::{Gateway, SetGateway};
use medledger_tx::{boxkey, keys, Code, TxError};

use super::members::{require_member, require_member_signer, Signer};
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::TxState;

/// SetGateway: a member admin sets (or replaces) its gateway. The box key must be signed by the
/// very admin key that signs the tx, over this chain id and member id.
pub fn set(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    admin_key: &[u8; 32],
    m: &SetGateway,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let member = require_member_signer(signer, "SetGateway")?;
    require_member(st, &member)?;
    let box_key = <[u8; 32]>::try_from(m.box_public_key.as_slice()).map_err(|_| {
        TxError::new(
            Code::InvalidField,
            "box_public_key must be a 32-byte X25519 public key",
        )
    })?;
    boxkey::verify(
        admin_key,
        &m.box_key_signature,
        &ctx.chain_id,
        &member,
        &box_key,
    )?;
    let gateway = Gateway {
        member_id: member.clone(),
        endpoint: m.endpoint.clone(),
        box_public_key: m.box_public_key.clone(),
        box_key_signature: m.box_key_signature.clone(),
        admin_key: admin_key.to_vec(),
        set_height: ctx.height,
    };
    st.put_msg(keys::gateway(&member), &gateway);
    Ok(vec![Event::new(
        "medledger.gateway.set",
        vec![("member", member), ("endpoint", m.endpoint.clone())],
    )])
}

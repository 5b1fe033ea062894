//! Access events: every read of a patient's data, under the consent that permitted it.

use medledger_tx::pb::{AccessEvent, LogAccess};
use medledger_tx::{keys, Code, TxError};

use super::consent::{evaluate, Decision};
use super::members::{require_member_signer, Signer};
use super::patients::require_patient;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// LogAccess: a member records a read; refused unless a consent permits it now.
pub fn log(st: &mut TxState<'_, '_>, signer: Signer, m: &LogAccess, ctx: &BlockCtx) -> Result<Vec<Event>, ApplyError> {
    let actor = require_member_signer(signer, "LogAccess")?;
    require_patient(st, &m.patient_id)?;
    let consent_id = match evaluate(st, &m.patient_id, &actor, &m.data_class, m.purpose, ctx)? {
        Decision::Permit(id) => id,
        Decision::Deny(reason) => return Err(TxError::new(Code::NoPermittingConsent, reason).into()),
    };
    let index = st.get_u64(&keys::access_count(&m.patient_id))?;
    let event = AccessEvent {
        patient_id: m.patient_id.clone(),
        index,
        actor: actor.clone(),
        record_id: m.record_id.clone(),
        data_class: m.data_class.clone(),
        purpose: m.purpose,
        consent_id: consent_id.clone(),
        height: ctx.height,
        time: ctx.time,
    };
    st.put_msg(keys::access_event(&m.patient_id, index), &event);
    // The index counts events of one patient; u64 cannot overflow within any ledger's life, and
    // overflow-checks stop the node rather than wrap if it ever did.
    st.put_u64(keys::access_count(&m.patient_id), index + 1);
    Ok(vec![Event::new(
        "medledger.access.logged",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("actor", actor),
            ("consent_id", consent_id),
            ("record_id", m.record_id.clone()),
            ("index", index.to_string()),
        ],
    )])
}

//! Consent: patient-signed grants and revocations, and the evaluation of a patient's consents
//! for an access (each one judged by the pure [`permits`] of `medledger_tx::rules::consent`).

use medledger_tx::keys::List;
use medledger_tx::limits::{MAX_CONSENTS_PER_GRANTEE, MAX_CONSENTS_PER_PATIENT};
use medledger_tx::pb::{Consent, GrantConsent, RevokeConsent};
use medledger_tx::{ids, keys, Code, TxError};

pub use medledger_tx::rules::consent::{action_name, permits, purpose_name, Request, DID_PREFIX};

use super::members::{require_member, Signer};
use super::patients::require_patient_signer;
use super::practitioners::require_practitioner;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::lists;
use crate::view::{StateRead, TxState};

/// GrantConsent: the signing patient grants `grantee` access.
pub fn grant(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &GrantConsent,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let patient = require_patient_signer(signer, "GrantConsent")?;
    if m.grantee.starts_with(DID_PREFIX) {
        require_practitioner(st, &m.grantee)?;
    } else {
        require_member(st, &m.grantee)?;
    }
    let patient_count = lists::len(st, &List::PatientConsents(&patient))?;
    let grantee_count = lists::len(st, &List::Grants(&patient, &m.grantee))?;
    if patient_count >= MAX_CONSENTS_PER_PATIENT || grantee_count >= MAX_CONSENTS_PER_GRANTEE {
        return Err(TxError::new(
            Code::TooManyConsents,
            format!(
                "patient holds {patient_count} consents ({grantee_count} to {}); limits are \
                 {MAX_CONSENTS_PER_PATIENT} and {MAX_CONSENTS_PER_GRANTEE} per grantee",
                m.grantee
            ),
        )
        .into());
    }
    // Counters cannot overflow: they are bounded by the limits above.
    let n = st.get_u64(&keys::consent_counter())? + 1;
    let id = ids::consent_id(n);
    let consent = Consent {
        id: id.clone(),
        patient_id: patient.clone(),
        grantee: m.grantee.clone(),
        data_classes: m.data_classes.clone(),
        purposes: m.purposes.clone(),
        not_before: m.not_before,
        not_after: m.not_after,
        granted_height: ctx.height,
        revoked_height: 0,
        actions: m.actions.clone(),
        deny_classes: m.deny_classes.clone(),
        record_ids: m.record_ids.clone(),
        study_id: m.study_id.clone(),
    };
    if !m.study_id.is_empty() {
        lists::push(st, &List::Study(&m.study_id), id.clone().into_bytes())?;
    }
    st.put_u64(keys::consent_counter(), n);
    st.put_msg(keys::consent(&id), &consent);
    lists::push(
        st,
        &List::PatientConsents(&patient),
        id.clone().into_bytes(),
    )?;
    lists::push(
        st,
        &List::Grants(&patient, &m.grantee),
        id.clone().into_bytes(),
    )?;
    Ok(vec![Event::new(
        "medledger.consent.granted",
        vec![
            ("consent_id", id),
            ("patient_id", patient),
            ("grantee", m.grantee.clone()),
        ],
    )])
}

/// RevokeConsent: the patient who granted a consent revokes it.
pub fn revoke(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &RevokeConsent,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let patient = require_patient_signer(signer, "RevokeConsent")?;
    let mut consent: Consent = st.get_msg(&keys::consent(&m.consent_id))?.ok_or_else(|| {
        TxError::new(
            Code::UnknownConsent,
            format!("no consent {:?}", m.consent_id),
        )
    })?;
    if consent.patient_id != patient {
        return Err(TxError::new(
            Code::NotConsentOwner,
            format!(
                "consent {} belongs to another patient; only its patient may revoke it",
                consent.id
            ),
        )
        .into());
    }
    if consent.revoked_height != 0 {
        return Err(TxError::new(
            Code::ConsentAlreadyRevoked,
            format!(
                "consent {} was revoked at height {}",
                consent.id, consent.revoked_height
            ),
        )
        .into());
    }
    consent.revoked_height = ctx.height;
    st.put_msg(keys::consent(&consent.id), &consent);
    Ok(vec![Event::new(
        "medledger.consent.revoked",
        vec![
            ("consent_id", consent.id),
            ("patient_id", patient),
            ("grantee", consent.grantee),
        ],
    )])
}

/// The decision of the ledger on an access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Permitted by this consent.
    Permit(String),
    /// Denied; the reason says what would be needed.
    Deny(String),
}

/// `permitted(patient, actor, action, class/record, purpose, time)`: the first consent (in grant
/// order, the member's grants before the practitioner's own) that permits the request.
pub fn evaluate(
    view: &impl StateRead,
    req: &Request<'_>,
    ctx: &BlockCtx,
) -> Result<Decision, ApplyError> {
    let mut checked = 0u64;
    for grantee in std::iter::once(req.member).chain(req.practitioner) {
        let grants = List::Grants(req.patient, grantee);
        for n in 0..lists::len(view, &grants)? {
            let Some(id) = lists::entry(view, &grants, n)? else {
                continue;
            };
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(consent) = view.get_msg::<Consent>(&keys::consent(&id))? else {
                continue;
            };
            checked += 1;
            if permits(&consent, req, ctx.height, ctx.time) {
                return Ok(Decision::Permit(id));
            }
        }
    }
    let who = match req.practitioner {
        Some(p) => format!("{} (of {})", p, req.member),
        None => req.member.to_string(),
    };
    Ok(Decision::Deny(format!(
        "none of the {checked} consents of patient {} to {who} permits {} of {} (record {}) for purpose {} at height {} (block time {}); the patient must grant one",
        req.patient,
        action_name(req.action),
        req.data_class,
        req.record_id,
        purpose_name(req.purpose),
        ctx.height,
        ctx.time
    )))
}

//! Consent: patient-signed grants and revocations, and the one function that decides whether a
//! consent permits an access.

use medledger_tx::limits::{MAX_CONSENTS_PER_GRANTEE, MAX_CONSENTS_PER_PATIENT};
use medledger_tx::pb::{Consent, GrantConsent, Purpose, RevokeConsent};
use medledger_tx::{ids, keys, Code, TxError};

use super::members::{require_member, Signer};
use super::patients::require_patient_signer;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::view::{StateRead, TxState};

/// GrantConsent: the signing patient grants `grantee` access.
pub fn grant(st: &mut TxState<'_, '_>, signer: &Signer, m: &GrantConsent, ctx: &BlockCtx) -> Result<Vec<Event>, ApplyError> {
    let patient = require_patient_signer(signer, "GrantConsent")?;
    require_member(st, &m.grantee)?;
    let patient_count = st.get_u64(&keys::patient_consent_count(&patient))?;
    let grantee_count = st.get_u64(&keys::grant_count(&patient, &m.grantee))?;
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
    };
    st.put_u64(keys::consent_counter(), n);
    st.put_msg(keys::consent(&id), &consent);
    st.put(keys::patient_consent(&patient, patient_count), id.clone().into_bytes());
    st.put_u64(keys::patient_consent_count(&patient), patient_count + 1);
    st.put(keys::grant(&patient, &m.grantee, grantee_count), id.clone().into_bytes());
    st.put_u64(keys::grant_count(&patient, &m.grantee), grantee_count + 1);
    Ok(vec![Event::new(
        "medledger.consent.granted",
        vec![("consent_id", id), ("patient_id", patient), ("grantee", m.grantee.clone())],
    )])
}

/// RevokeConsent: the patient who granted a consent revokes it.
pub fn revoke(st: &mut TxState<'_, '_>, signer: &Signer, m: &RevokeConsent, ctx: &BlockCtx) -> Result<Vec<Event>, ApplyError> {
    let patient = require_patient_signer(signer, "RevokeConsent")?;
    let mut consent: Consent = st
        .get_msg(&keys::consent(&m.consent_id))?
        .ok_or_else(|| TxError::new(Code::UnknownConsent, format!("no consent {:?}", m.consent_id)))?;
    if consent.patient_id != patient {
        return Err(TxError::new(
            Code::NotConsentOwner,
            format!("consent {} belongs to another patient; only its patient may revoke it", consent.id),
        )
        .into());
    }
    if consent.revoked_height != 0 {
        return Err(TxError::new(
            Code::ConsentAlreadyRevoked,
            format!("consent {} was revoked at height {}", consent.id, consent.revoked_height),
        )
        .into());
    }
    consent.revoked_height = ctx.height;
    st.put_msg(keys::consent(&consent.id), &consent);
    Ok(vec![Event::new(
        "medledger.consent.revoked",
        vec![("consent_id", consent.id), ("patient_id", patient), ("grantee", consent.grantee)],
    )])
}

/// Whether `consent` permits reading `data_class` for `purpose` in the block `ctx`.
///
/// A revocation takes effect from the block after the one that revoked it; the period is
/// `not_before ..= not_after` in block time (`not_after` 0 = open-ended).
pub fn permits(consent: &Consent, data_class: &str, purpose: i32, ctx: &BlockCtx) -> bool {
    let not_revoked = consent.revoked_height == 0 || ctx.height <= consent.revoked_height;
    let in_period = consent.not_before <= ctx.time && (consent.not_after == 0 || ctx.time <= consent.not_after);
    let class_ok = consent.data_classes.iter().any(|c| c == "*" || c == data_class);
    let purpose_ok = consent.purposes.contains(&purpose);
    not_revoked && in_period && class_ok && purpose_ok
}

/// The decision of the ledger on an access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Permitted by this consent.
    Permit(String),
    /// Denied; the reason says what would be needed.
    Deny(String),
}

/// Decides whether `actor` may read `data_class` of `patient` for `purpose` now: the first of the
/// patient's consents to `actor` (in grant order) that permits it.
pub fn evaluate(
    view: &impl StateRead,
    patient: &str,
    actor: &str,
    data_class: &str,
    purpose: i32,
    ctx: &BlockCtx,
) -> Result<Decision, ApplyError> {
    let count = view.get_u64(&keys::grant_count(patient, actor))?;
    for n in 0..count {
        let Some(id) = view.get(&keys::grant(patient, actor, n))? else { continue };
        let id = String::from_utf8_lossy(&id).into_owned();
        let Some(consent) = view.get_msg::<Consent>(&keys::consent(&id))? else { continue };
        if permits(&consent, data_class, purpose, ctx) {
            return Ok(Decision::Permit(id));
        }
    }
    Ok(Decision::Deny(format!(
        "none of the {count} consents of patient {patient} to {actor} permits {data_class} for purpose {} at height {} (block time {}); the patient must grant one",
        purpose_name(purpose), ctx.height, ctx.time
    )))
}

/// The HL7 code of a purpose, e.g. `TREAT`.
pub fn purpose_name(purpose: i32) -> &'static str {
    match Purpose::try_from(purpose) {
        Ok(Purpose::Treat) => "TREAT",
        Ok(Purpose::Etreat) => "ETREAT",
        Ok(Purpose::Hpaymt) => "HPAYMT",
        Ok(Purpose::Hoperat) => "HOPERAT",
        Ok(Purpose::Hresch) => "HRESCH",
        Ok(Purpose::Unspecified) | Err(_) => "UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(height: u64, time: u64) -> BlockCtx {
        BlockCtx { chain_id: "c".into(), height, time }
    }

    fn consent() -> Consent {
        Consent {
            id: "c-1".into(),
            patient_id: "pt-1".into(),
            grantee: "hospital-a".into(),
            data_classes: vec!["Observation".into()],
            purposes: vec![Purpose::Treat as i32],
            not_before: 100,
            not_after: 200,
            granted_height: 1,
            revoked_height: 0,
        }
    }

    #[test]
    fn consent_permits_only_its_class_purpose_and_period() {
        let c = consent();
        let treat = Purpose::Treat as i32;
        assert!(permits(&c, "Observation", treat, &ctx(5, 150)));
        assert!(permits(&c, "Observation", treat, &ctx(5, 200)), "not_after is inclusive");
        assert!(!permits(&c, "Condition", treat, &ctx(5, 150)));
        assert!(!permits(&c, "Observation", Purpose::Hresch as i32, &ctx(5, 150)));
        assert!(!permits(&c, "Observation", treat, &ctx(5, 99)));
        assert!(!permits(&c, "Observation", treat, &ctx(5, 201)));
    }

    #[test]
    fn revocation_takes_effect_from_the_next_block() {
        let c = Consent { revoked_height: 7, ..consent() };
        let treat = Purpose::Treat as i32;
        assert!(permits(&c, "Observation", treat, &ctx(7, 150)));
        assert!(!permits(&c, "Observation", treat, &ctx(8, 150)));
    }

    #[test]
    fn wildcard_class_and_open_period() {
        let c = Consent { data_classes: vec!["*".into()], not_before: 0, not_after: 0, ..consent() };
        assert!(permits(&c, "MedicationStatement", Purpose::Treat as i32, &ctx(1, u64::MAX)));
    }
}

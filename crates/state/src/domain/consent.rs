//! Consent: patient-signed grants and revocations, and the one function that decides whether a
//! consent permits an access.

use medledger_tx::limits::{MAX_CONSENTS_PER_GRANTEE, MAX_CONSENTS_PER_PATIENT};
use medledger_tx::pb::{Action, Consent, GrantConsent, Purpose, RevokeConsent};
use medledger_tx::{ids, keys, Code, TxError};

use super::members::{require_member, Signer};
use super::patients::require_patient_signer;
use super::practitioners::require_practitioner;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
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
        actions: m.actions.clone(),
        deny_classes: m.deny_classes.clone(),
        record_ids: m.record_ids.clone(),
        study_id: m.study_id.clone(),
    };
    if !m.study_id.is_empty() {
        let k = st.get_u64(&keys::study_count(&m.study_id))?;
        st.put(keys::study_consent(&m.study_id, k), id.clone().into_bytes());
        st.put_u64(keys::study_count(&m.study_id), k + 1);
    }
    st.put_u64(keys::consent_counter(), n);
    st.put_msg(keys::consent(&id), &consent);
    st.put(
        keys::patient_consent(&patient, patient_count),
        id.clone().into_bytes(),
    );
    st.put_u64(keys::patient_consent_count(&patient), patient_count + 1);
    st.put(
        keys::grant(&patient, &m.grantee, grantee_count),
        id.clone().into_bytes(),
    );
    st.put_u64(keys::grant_count(&patient, &m.grantee), grantee_count + 1);
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

/// Prefix of practitioner DIDs; a grantee with it names one practitioner, any other a member.
pub const DID_PREFIX: &str = "did:medledger:";

/// An access request, as the one evaluation function sees it.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    /// The patient whose data is read.
    pub patient: &'a str,
    /// The member acting (directly, or through one of its practitioners).
    pub member: &'a str,
    /// The practitioner acting, if any.
    pub practitioner: Option<&'a str>,
    /// READ or WRITE (`Action` as i32).
    pub action: i32,
    /// FHIR resource type of the record.
    pub data_class: &'a str,
    /// The record.
    pub record_id: &'a str,
    /// Purpose of use (`Purpose` as i32).
    pub purpose: i32,
}

/// Whether `consent` permits `req` in the block `ctx`. FHIR Consent semantics with one permit
/// provision: grantee (a member's grant covers its practitioners), action (none listed = READ),
/// class (or "*") minus deny exceptions, or a listed record id; purpose; period
/// `not_before ..= not_after` of block time; a revocation applies from the block after it.
pub fn permits(consent: &Consent, req: &Request<'_>, ctx: &BlockCtx) -> bool {
    let not_revoked = consent.revoked_height == 0 || ctx.height <= consent.revoked_height;
    let in_period =
        consent.not_before <= ctx.time && (consent.not_after == 0 || ctx.time <= consent.not_after);
    let grantee_ok =
        consent.grantee == req.member || Some(consent.grantee.as_str()) == req.practitioner;
    let action_ok = if consent.actions.is_empty() {
        req.action == Action::Read as i32
    } else {
        consent.actions.contains(&req.action)
    };
    let denied = consent.deny_classes.iter().any(|c| c == req.data_class);
    let class_ok = !denied
        && consent
            .data_classes
            .iter()
            .any(|c| c == "*" || c == req.data_class);
    let record_ok = consent.record_ids.iter().any(|r| r == req.record_id);
    let purpose_ok = consent.purposes.contains(&req.purpose);
    not_revoked && in_period && grantee_ok && action_ok && (class_ok || record_ok) && purpose_ok
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
        let count = view.get_u64(&keys::grant_count(req.patient, grantee))?;
        for n in 0..count {
            let Some(id) = view.get(&keys::grant(req.patient, grantee, n))? else {
                continue;
            };
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(consent) = view.get_msg::<Consent>(&keys::consent(&id))? else {
                continue;
            };
            checked += 1;
            if permits(&consent, req, ctx) {
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

/// `READ` or `WRITE`.
pub fn action_name(action: i32) -> &'static str {
    match Action::try_from(action) {
        Ok(Action::Write) => "WRITE",
        _ => "READ",
    }
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
        BlockCtx::new("c", height, time)
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
            ..Default::default()
        }
    }

    fn req<'a>(class: &'a str, purpose: Purpose) -> Request<'a> {
        Request {
            patient: "pt-1",
            member: "hospital-a",
            practitioner: None,
            action: Action::Read as i32,
            data_class: class,
            record_id: "r-1",
            purpose: purpose as i32,
        }
    }

    #[test]
    fn consent_permits_only_its_class_purpose_and_period() {
        let c = consent();
        assert!(permits(
            &c,
            &req("Observation", Purpose::Treat),
            &ctx(5, 150)
        ));
        assert!(
            permits(&c, &req("Observation", Purpose::Treat), &ctx(5, 200)),
            "not_after is inclusive"
        );
        assert!(!permits(
            &c,
            &req("Condition", Purpose::Treat),
            &ctx(5, 150)
        ));
        assert!(!permits(
            &c,
            &req("Observation", Purpose::Hresch),
            &ctx(5, 150)
        ));
        assert!(!permits(
            &c,
            &req("Observation", Purpose::Treat),
            &ctx(5, 99)
        ));
        assert!(!permits(
            &c,
            &req("Observation", Purpose::Treat),
            &ctx(5, 201)
        ));
    }

    #[test]
    fn revocation_takes_effect_from_the_next_block() {
        let c = Consent {
            revoked_height: 7,
            ..consent()
        };
        assert!(permits(
            &c,
            &req("Observation", Purpose::Treat),
            &ctx(7, 150)
        ));
        assert!(!permits(
            &c,
            &req("Observation", Purpose::Treat),
            &ctx(8, 150)
        ));
    }

    #[test]
    fn wildcard_minus_deny_exceptions() {
        let c = Consent {
            data_classes: vec!["*".into()],
            deny_classes: vec!["MedicationStatement".into()],
            not_before: 0,
            not_after: 0,
            ..consent()
        };
        assert!(permits(&c, &req("Condition", Purpose::Treat), &ctx(1, 5)));
        assert!(!permits(
            &c,
            &req("MedicationStatement", Purpose::Treat),
            &ctx(1, 5)
        ));
    }

    #[test]
    fn a_listed_record_is_covered_whatever_its_class() {
        let c = Consent {
            record_ids: vec!["r-1".into()],
            ..consent()
        };
        assert!(permits(
            &c,
            &req("DiagnosticReport", Purpose::Treat),
            &ctx(1, 150)
        ));
        let other = Request {
            record_id: "r-2",
            ..req("DiagnosticReport", Purpose::Treat)
        };
        assert!(!permits(&c, &other, &ctx(1, 150)));
    }

    #[test]
    fn actions_default_to_read_only() {
        let write = Request {
            action: Action::Write as i32,
            ..req("Observation", Purpose::Treat)
        };
        assert!(!permits(&consent(), &write, &ctx(1, 150)));
        let c = Consent {
            actions: vec![Action::Read as i32, Action::Write as i32],
            ..consent()
        };
        assert!(permits(&c, &write, &ctx(1, 150)));
    }

    #[test]
    fn a_member_grant_covers_its_practitioners_and_a_practitioner_grant_only_them() {
        let by_practitioner = Request {
            practitioner: Some("did:medledger:aa"),
            ..req("Observation", Purpose::Treat)
        };
        assert!(permits(&consent(), &by_practitioner, &ctx(1, 150)));
        let c = Consent {
            grantee: "did:medledger:aa".into(),
            ..consent()
        };
        assert!(permits(&c, &by_practitioner, &ctx(1, 150)));
        assert!(
            !permits(&c, &req("Observation", Purpose::Treat), &ctx(1, 150)),
            "the member itself is not the grantee"
        );
        let colleague = Request {
            practitioner: Some("did:medledger:bb"),
            ..req("Observation", Purpose::Treat)
        };
        assert!(!permits(&c, &colleague, &ctx(1, 150)));
    }
}

//! The pure rule of consent: whether one consent permits one access request at one block. The
//! ledger (`medledger-state`) evaluates a patient's consents with it, and `medledger verify
//! permitted` re-evaluates proven consents with the same function, without a ledger.

use crate::pb::{Action, Consent, Purpose};

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

/// Whether `consent` is in force in the block at `height` and `time`: not revoked before that
/// block (a revocation applies from the block after it), and `not_before ≤ time ≤ not_after`
/// (0 = open-ended).
pub fn in_force(consent: &Consent, height: u64, time: u64) -> bool {
    let not_revoked = consent.revoked_height == 0 || height <= consent.revoked_height;
    let in_period =
        consent.not_before <= time && (consent.not_after == 0 || time <= consent.not_after);
    not_revoked && in_period
}

/// Whether `consent` permits `req` in the block at `height` and `time`. FHIR Consent semantics with one permit
/// provision: grantee (a member's grant covers its practitioners), action (none listed = READ),
/// class (or "*") minus deny exceptions, or a listed record id; purpose; period
/// `not_before ..= not_after` of block `time`; a revocation applies from the block after it
/// (`height` is the block's).
pub fn permits(consent: &Consent, req: &Request<'_>, height: u64, time: u64) -> bool {
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
    in_force(consent, height, time)
        && grantee_ok
        && action_ok
        && (class_ok || record_ok)
        && purpose_ok
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
        Ok(Purpose::Patrqt) => "PATRQT",
        Ok(Purpose::Unspecified) | Err(_) => "UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(permits(&c, &req("Observation", Purpose::Treat), 5, 150));
        assert!(
            permits(&c, &req("Observation", Purpose::Treat), 5, 200),
            "not_after is inclusive"
        );
        assert!(!permits(&c, &req("Condition", Purpose::Treat), 5, 150));
        assert!(!permits(&c, &req("Observation", Purpose::Hresch), 5, 150));
        assert!(!permits(&c, &req("Observation", Purpose::Treat), 5, 99));
        assert!(!permits(&c, &req("Observation", Purpose::Treat), 5, 201));
    }

    #[test]
    fn revocation_takes_effect_from_the_next_block() {
        let c = Consent {
            revoked_height: 7,
            ..consent()
        };
        assert!(permits(&c, &req("Observation", Purpose::Treat), 7, 150));
        assert!(!permits(&c, &req("Observation", Purpose::Treat), 8, 150));
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
        assert!(permits(&c, &req("Condition", Purpose::Treat), 1, 5));
        assert!(!permits(
            &c,
            &req("MedicationStatement", Purpose::Treat),
            1,
            5
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
            1,
            150
        ));
        let other = Request {
            record_id: "r-2",
            ..req("DiagnosticReport", Purpose::Treat)
        };
        assert!(!permits(&c, &other, 1, 150));
    }

    #[test]
    fn actions_default_to_read_only() {
        let write = Request {
            action: Action::Write as i32,
            ..req("Observation", Purpose::Treat)
        };
        assert!(!permits(&consent(), &write, 1, 150));
        let c = Consent {
            actions: vec![Action::Read as i32, Action::Write as i32],
            ..consent()
        };
        assert!(permits(&c, &write, 1, 150));
    }

    #[test]
    fn a_member_grant_covers_its_practitioners_and_a_practitioner_grant_only_them() {
        let by_practitioner = Request {
            practitioner: Some("did:medledger:aa"),
            ..req("Observation", Purpose::Treat)
        };
        assert!(permits(&consent(), &by_practitioner, 1, 150));
        let c = Consent {
            grantee: "did:medledger:aa".into(),
            ..consent()
        };
        assert!(permits(&c, &by_practitioner, 1, 150));
        assert!(
            !permits(&c, &req("Observation", Purpose::Treat), 1, 150),
            "the member itself is not the grantee"
        );
        let colleague = Request {
            practitioner: Some("did:medledger:bb"),
            ..req("Observation", Purpose::Treat)
        };
        assert!(!permits(&c, &colleague, 1, 150));
    }
}

//! Who may read what, decided on proven chain state. One policy for every route: the `/rpc`
//! relay of proven state reads, the FHIR resources and the CSV export.
//!
//! An anonymous caller reads nothing patient-linked. An authenticated requester reads a
//! patient's data when it is:
//! - the patient (their current key);
//! - a member, or an active practitioner of it, that enrolled the patient, that the patient ever
//!   granted a consent to, or that covers the patient as an insurer;
//! - an active privacy officer (the auditor role: practitioners with role `PRIVACY_OFFICER`,
//!   registered on chain by a member and revocable there), who reads everything.
//!
//! A consent is also readable by its grantee, a record anchor by its custodian, and a claim by
//! its provider and insurer. Public consortium state (validators, certificates, members,
//! gateways, policies, proposals, practitioners) is readable by any authenticated requester.
//! Anything this module does not know is readable by auditors only (deny by default).
//!
//! The table of what each role sees is in docs/privacy.md.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medledger_tx::keys;
use medledger_tx::pb::{Claim, Consent, Patient, PractitionerRole, RecordAnchor};

use crate::auth::{Requester, Subject};
use crate::node::{Node, NodeError};

/// How long a "may read patient P" decision is reused.
const DECISION_TTL: Duration = Duration::from_secs(5);
/// The most decisions remembered (cleared when full).
const MAX_DECISIONS: usize = 50_000;

/// What a state key is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope<'a> {
    /// Consortium state with no patient in it.
    Public,
    /// Keyed by a signer's public key (hex): its owner, sequence, nonces.
    OwnKey(&'a str),
    /// Keyed by a patient id.
    Patient(&'a str),
    /// A consent, by id: its patient and grantee decide.
    Consent(&'a str),
    /// A record anchor, by id: its patient and custodian decide.
    Record(&'a str),
    /// A claim, by id: its patient, provider and insurer decide.
    Claim(&'a str),
    /// Keyed by a member (its enrolments, its break-glass reviews).
    Member(&'a str),
    /// Anything else: auditors only.
    AuditorsOnly,
}

/// Classifies a state key (`crates/tx/src/keys.rs` names every one).
pub fn scope(key: &[u8]) -> Scope<'_> {
    let Ok(k) = std::str::from_utf8(key) else {
        return Scope::AuditorsOnly;
    };
    let (head, rest) = k.split_once('/').unwrap_or((k, ""));
    let first = rest.split('/').next().unwrap_or("");
    match head {
        "validators" | "cert" | "member" | "member-tombstone" | "gateway" | "consensus"
        | "app-version" | "upgrade" | "counter" | "proposal" | "proposals" | "policy"
        | "practitioner" | "params" => Scope::Public,
        "keyowner" | "seq" | "nonce" if !first.is_empty() => Scope::OwnKey(first),
        "patient" | "patient-consents" | "grants" | "access" | "guardians" | "coverage"
        | "patient-records" | "evidence" | "guardian-change"
            if !first.is_empty() =>
        {
            Scope::Patient(first)
        }
        "consent" if !rest.is_empty() => Scope::Consent(rest),
        "record" if !rest.is_empty() => Scope::Record(rest),
        "claim" if !rest.is_empty() => Scope::Claim(rest),
        "enrolments" | "review" if !first.is_empty() => Scope::Member(first),
        _ => Scope::AuditorsOnly,
    }
}

/// The auditor role: an active privacy officer.
pub fn is_auditor(who: &Requester) -> bool {
    matches!(
        who.subject,
        Subject::Practitioner {
            role: PractitionerRole::PrivacyOfficer,
            active: true,
            ..
        }
    )
}

/// Remembered positive decisions (a page reads hundreds of keys of one patient).
#[derive(Default)]
pub struct Decisions {
    allowed: Mutex<BTreeMap<([u8; 32], String), Instant>>,
}

impl Decisions {
    fn seen(&self, key: &[u8; 32], patient: &str) -> bool {
        self.allowed
            .lock()
            .ok()
            .and_then(|m| m.get(&(*key, patient.to_string())).copied())
            .is_some_and(|at| at.elapsed() < DECISION_TTL)
    }

    fn remember(&self, key: &[u8; 32], patient: &str) {
        if let Ok(mut m) = self.allowed.lock() {
            if m.len() >= MAX_DECISIONS {
                m.clear();
            }
            m.insert((*key, patient.to_string()), Instant::now());
        }
    }
}

/// Whether `who` may read patient `patient`'s data.
pub async fn may_read_patient(
    node: &Node,
    decisions: &Decisions,
    who: &Requester,
    patient: &str,
) -> Result<bool, NodeError> {
    if is_auditor(who) {
        return Ok(true);
    }
    let member = match &who.subject {
        Subject::Patient(p) => return Ok(p == patient),
        s => match s.acting_member() {
            Some(m) => m.to_string(),
            None => return Ok(false),
        },
    };
    if decisions.seen(&who.key, patient) {
        return Ok(true);
    }
    let enrolled = node
        .read_msg::<Patient>(&keys::patient(patient))
        .await?
        .is_some_and(|p| p.enrolled_by == member);
    let related = enrolled
        || count(node, &keys::grant_count(patient, &member)).await? > 0
        || count(node, &keys::coverage_count(patient, &member)).await? > 0;
    if related {
        decisions.remember(&who.key, patient);
    }
    Ok(related)
}

async fn count(node: &Node, key: &[u8]) -> Result<u64, NodeError> {
    Ok(node
        .read(key)
        .await?
        .as_deref()
        .and_then(keys::decode_u64)
        .unwrap_or(0))
}

/// Whether `who` may read state key `key` (proven reads decide the entity-keyed ones).
pub async fn may_read_key(
    node: &Node,
    decisions: &Decisions,
    who: &Requester,
    key: &[u8],
) -> Result<bool, NodeError> {
    if is_auditor(who) {
        return Ok(true);
    }
    let acting = who.subject.acting_member().map(str::to_string);
    let is = |m: &str| acting.as_deref() == Some(m);
    Ok(match scope(key) {
        Scope::Public => true,
        Scope::OwnKey(hex_key) => hex_key.eq_ignore_ascii_case(&hex::encode(who.key)),
        Scope::Patient(p) => may_read_patient(node, decisions, who, p).await?,
        Scope::Consent(id) => match node.read_msg::<Consent>(&keys::consent(id)).await? {
            None => true,
            Some(c) => {
                is(&c.grantee) || may_read_patient(node, decisions, who, &c.patient_id).await?
            }
        },
        Scope::Record(id) => match node.read_msg::<RecordAnchor>(&keys::record(id)).await? {
            None => true,
            Some(a) => {
                is(&a.custodian) || may_read_patient(node, decisions, who, &a.patient_id).await?
            }
        },
        Scope::Claim(id) => match node.read_msg::<Claim>(&keys::claim(id)).await? {
            None => true,
            Some(c) => may_read_claim(node, decisions, who, &c).await?,
        },
        Scope::Member(m) => is(m),
        Scope::AuditorsOnly => false,
    })
}

/// A claim is read by its patient, its provider, its insurer, and auditors.
pub async fn may_read_claim(
    node: &Node,
    decisions: &Decisions,
    who: &Requester,
    c: &Claim,
) -> Result<bool, NodeError> {
    if let Some(m) = who.subject.acting_member() {
        if m == c.provider || m == c.insurer {
            return Ok(true);
        }
    }
    let _ = (node, decisions);
    Ok(match &who.subject {
        Subject::Patient(p) => *p == c.patient_id,
        _ => is_auditor(who),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key the ledger writes has a scope, and the patient-linked ones name their patient:
    /// a key that slipped into "public" would be readable by anyone with a token.
    #[test]
    fn patient_linked_keys_are_never_public() {
        let p = "pt-1";
        for k in [
            keys::patient(p),
            keys::patient_consent_count(p),
            keys::patient_consent(p, 3),
            keys::grant_count(p, "hospital-a"),
            keys::grant(p, "hospital-a", 0),
            keys::access_count(p),
            keys::access_event(p, 7),
            keys::guardians(p),
            keys::coverage_count(p, "insurer-c"),
            keys::coverage(p, "insurer-c", 0),
        ] {
            assert_eq!(
                scope(&k),
                Scope::Patient(p),
                "{}",
                String::from_utf8_lossy(&k)
            );
        }
        assert_eq!(scope(&keys::consent("c-1")), Scope::Consent("c-1"));
        assert_eq!(scope(&keys::record("lab-1")), Scope::Record("lab-1"));
        assert_eq!(scope(&keys::claim("cl-2")), Scope::Claim("cl-2"));
        assert_eq!(scope(&keys::enrolments("lab-b")), Scope::Member("lab-b"));
        assert_eq!(scope(&keys::review(&"lab-b", 0)), Scope::Member("lab-b"));
        let k = [9u8; 32];
        assert_eq!(scope(&keys::key_owner(&k)), Scope::OwnKey(&hex::encode(k)));
        assert_eq!(scope(&keys::sequence(&k)), Scope::OwnKey(&hex::encode(k)));
        for k in [
            keys::claim_fingerprint(&[1; 32]),
            keys::study_count("s"),
            b"nonsense".to_vec(),
            vec![0xff, 0xfe],
        ] {
            assert_eq!(scope(&k), Scope::AuditorsOnly);
        }
        for k in [
            keys::validators(),
            keys::latest_certificate(),
            keys::certificate(9),
            keys::validator_change_count(),
            keys::validator_change(0),
            keys::member("lab-b"),
            keys::gateway("lab-b"),
        ] {
            assert_eq!(scope(&k), Scope::Public);
        }
    }
}

//! Who may read what, decided on proven chain state. One policy for every route: the `/rpc`
//! relay of proven state reads, the FHIR resources and the CSV export.
//!
//! An anonymous caller reads nothing patient-linked. An authenticated requester reads a
//! patient's data when it is:
//! - the patient (their current key);
//! - a member, or an active practitioner of it, that enrolled the patient, that the patient ever
//!   granted a consent to, or that covers the patient as an insurer;
//! - an auditor: an active practitioner (of any member, any role) that governance made one with
//!   a passed `GrantAuditor` proposal (`auditor/{did}`, read with a proof). A grant for every
//!   member reads everything; a grant for one member reads what that member's admin reads. A
//!   privacy officer without a grant is a practitioner of their member, no more.
//!
//! A consent is also readable by its grantee, a record anchor by its custodian, and a claim by
//! its provider and insurer. Public consortium state (validators, certificates, members,
//! gateways, policies, proposals, practitioners, auditor grants) is readable by any
//! authenticated requester. Anything this module does not know is readable by auditors for
//! every member only (deny by default).
//!
//! The table of what each role sees is in docs/privacy.md.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medledger_tx::keys;
use medledger_tx::pb::{Auditor, Claim, Consent, Patient, RecordAnchor};

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
        | "app-version" | "block-time" | "upgrade" | "counter" | "proposal" | "proposals"
        | "policy" | "practitioner" | "params" | "auditor" => Scope::Public,
        "keyowner" | "seq" | "nonce" if !first.is_empty() => Scope::OwnKey(first),
        "patient" | "patient-consents" | "grants" | "access" | "guardians" | "coverage"
        | "patient-records" | "evidence" | "guardian-change" | "patient-box-key" | "refused"
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

/// What an auditor grant lets its holder read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditScope {
    /// Everything (a grant with no scope member).
    All,
    /// What this member's own admin reads.
    Member(String),
}

/// The auditor grant `who` holds, read with a proof from `auditor/{did}`: only an active
/// practitioner's grant counts (any role: the grant is what counts), while their member is a
/// member. `None` for members, patients, inactive practitioners, practitioners of a removed
/// member and practitioners without a grant.
///
/// The `may_read_*` functions read it only when the requester's own member's reads do not
/// suffice (most requesters hold no grant, and an absent key costs a read of the newest state),
/// and never remember a decision that rests on it, so a revoked grant stops counting within a
/// block or two.
pub async fn auditor_scope(node: &Node, who: &Requester) -> Result<Option<AuditScope>, NodeError> {
    let Subject::Practitioner {
        did, active: true, ..
    } = &who.subject
    else {
        return Ok(None);
    };
    let Some(grant) = node.read_msg::<Auditor>(&keys::auditor(did)).await? else {
        return Ok(None);
    };
    if grant.practitioner_did != *did {
        // The ledger writes the key from the DID; anything else is not this practitioner's.
        return Ok(None);
    }
    // (`active` includes that their member is still one: a removal does not delete grants.)
    Ok(Some(if grant.scope_member.is_empty() {
        AuditScope::All
    } else {
        AuditScope::Member(grant.scope_member)
    }))
}

/// Whom a read is decided for: a patient, a member (its admin, an active practitioner of it, or
/// an auditor of it), or nobody (an inactive practitioner).
#[derive(Clone, Copy)]
enum Reader<'a> {
    Patient(&'a str),
    Member(&'a str),
    Nobody,
}

impl<'a> Reader<'a> {
    fn of(who: &'a Requester) -> Reader<'a> {
        match &who.subject {
            Subject::Patient(p) => Reader::Patient(p),
            s => s.acting_member().map_or(Reader::Nobody, Reader::Member),
        }
    }
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
    if reads_patient(node, decisions, who, Reader::of(who), patient, false).await? {
        return Ok(true);
    }
    Ok(match auditor_scope(node, who).await? {
        None => false,
        Some(AuditScope::All) => true,
        Some(AuditScope::Member(m)) => {
            reads_patient(node, decisions, who, Reader::Member(&m), patient, true).await?
        }
    })
}

/// Whether `member` enrolled `patient`, was ever granted a consent by them, or covers them.
async fn member_reads_patient(node: &Node, member: &str, patient: &str) -> Result<bool, NodeError> {
    Ok(node
        .read_msg::<Patient>(&keys::patient(patient))
        .await?
        .is_some_and(|p| p.enrolled_by == member)
        || count(node, &keys::grant_count(patient, member)).await? > 0
        || count(node, &keys::coverage_count(patient, member)).await? > 0)
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
    if reads_key(node, decisions, who, Reader::of(who), key, false).await? {
        return Ok(true);
    }
    Ok(match auditor_scope(node, who).await? {
        None => false,
        Some(AuditScope::All) => true,
        Some(AuditScope::Member(m)) => {
            reads_key(node, decisions, who, Reader::Member(&m), key, true).await?
        }
    })
}

/// Whether `reader` reads `key`; `who` is the requester (its own keys, its remembered
/// decisions); `audit`: `reader` is the member `who` audits.
async fn reads_key(
    node: &Node,
    decisions: &Decisions,
    who: &Requester,
    reader: Reader<'_>,
    key: &[u8],
    audit: bool,
) -> Result<bool, NodeError> {
    let is = |m: &str| matches!(reader, Reader::Member(r) if r == m);
    Ok(match scope(key) {
        Scope::Public => true,
        Scope::OwnKey(hex_key) => hex_key.eq_ignore_ascii_case(&hex::encode(who.key)),
        Scope::Patient(p) => reads_patient(node, decisions, who, reader, p, audit).await?,
        Scope::Consent(id) => match node.read_msg::<Consent>(&keys::consent(id)).await? {
            None => true,
            Some(c) => {
                is(&c.grantee)
                    || reads_patient(node, decisions, who, reader, &c.patient_id, audit).await?
            }
        },
        Scope::Record(id) => match node.read_msg::<RecordAnchor>(&keys::record(id)).await? {
            None => true,
            Some(a) => {
                is(&a.custodian)
                    || reads_patient(node, decisions, who, reader, &a.patient_id, audit).await?
            }
        },
        Scope::Claim(id) => match node.read_msg::<Claim>(&keys::claim(id)).await? {
            None => true,
            Some(c) => reads_claim(reader, &c),
        },
        Scope::Member(m) => is(m),
        Scope::AuditorsOnly => false,
    })
}

/// Whether `reader` reads patient `patient`'s data. A positive answer is remembered for `who`
/// unless it rests on an auditor grant (`audit`).
async fn reads_patient(
    node: &Node,
    decisions: &Decisions,
    who: &Requester,
    reader: Reader<'_>,
    patient: &str,
    audit: bool,
) -> Result<bool, NodeError> {
    let member = match reader {
        Reader::Patient(p) => return Ok(p == patient),
        Reader::Nobody => return Ok(false),
        Reader::Member(m) => m,
    };
    if decisions.seen(&who.key, patient) {
        return Ok(true);
    }
    let allowed = member_reads_patient(node, member, patient).await?;
    if allowed && !audit {
        decisions.remember(&who.key, patient);
    }
    Ok(allowed)
}

/// A claim is read by its patient, its provider, its insurer, and auditors (of every member, or
/// of its provider or insurer).
pub async fn may_read_claim(
    node: &Node,
    decisions: &Decisions,
    who: &Requester,
    c: &Claim,
) -> Result<bool, NodeError> {
    let _ = decisions;
    if reads_claim(Reader::of(who), c) {
        return Ok(true);
    }
    Ok(match auditor_scope(node, who).await? {
        None => false,
        Some(AuditScope::All) => true,
        Some(AuditScope::Member(m)) => reads_claim(Reader::Member(&m), c),
    })
}

fn reads_claim(reader: Reader<'_>, c: &Claim) -> bool {
    match reader {
        Reader::Member(m) => m == c.provider || m == c.insurer,
        Reader::Patient(p) => p == c.patient_id,
        Reader::Nobody => false,
    }
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
            keys::access_digest(p),
            keys::List::PatientConsents(p).digest_key().unwrap(),
            keys::List::PatientRecords(p).digest_key().unwrap(),
            keys::guardians(p),
            keys::coverage_count(p, "insurer-c"),
            keys::coverage(p, "insurer-c", 0),
            keys::refused_count(p),
            keys::refused_attempt(p, 2),
            keys::refused_digest(p),
            keys::refused_dropped(p),
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
        assert_eq!(scope(&keys::review("lab-b", 0)), Scope::Member("lab-b"));
        let k = [9u8; 32];
        assert_eq!(scope(&keys::key_owner(&k)), Scope::OwnKey(&hex::encode(k)));
        assert_eq!(scope(&keys::sequence(&k)), Scope::OwnKey(&hex::encode(k)));
        for k in [
            keys::claim_fingerprint(&[1; 32]),
            keys::study_count("s"),
            keys::refused_block(),
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
            keys::auditor("did:medledger:00ff"),
            keys::practitioner("did:medledger:00ff"),
        ] {
            assert_eq!(scope(&k), Scope::Public);
        }
    }
}

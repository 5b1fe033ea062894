//! The one table of the ledger's entities that `query` and `verify` read by key: for each, its
//! state key, its protobuf type, its label in output and (for `verify`) its one-word state.

use anyhow::Context;
use medledger_tx::keys;
use medledger_tx::pb;
use prost::Message;
use serde::Serialize;

use super::render::{self, Render};

/// An entity stored under one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Entity {
    Member(String),
    Patient(String),
    Consent(String),
    Practitioner(String),
    Guardians(String),
    Record(String),
    Proposal(u64),
    Claim(String),
    /// Patient, insurer, index.
    Coverage(String, String, u64),
}

/// A decoded entity value. Serializes as the protobuf value itself (untagged), so `-o json` is
/// the same as when each command decoded its own type.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum Value {
    Member(pb::Member),
    Patient(pb::Patient),
    Consent(pb::Consent),
    Practitioner(pb::Practitioner),
    Guardians(pb::Guardians),
    Record(pb::RecordAnchor),
    Proposal(pb::Proposal),
    /// Boxed: a claim (its items, diagnoses, procedures, coverages) is many times the others.
    Claim(Box<pb::Claim>),
    Coverage(pb::Coverage),
}

impl Entity {
    /// Its state key.
    pub(super) fn key(&self) -> Vec<u8> {
        match self {
            Entity::Member(id) => keys::member(id),
            Entity::Patient(id) => keys::patient(id),
            Entity::Consent(id) => keys::consent(id),
            Entity::Practitioner(did) => keys::practitioner(did),
            Entity::Guardians(patient) => keys::guardians(patient),
            Entity::Record(id) => keys::record(id),
            Entity::Proposal(id) => keys::proposal(*id),
            Entity::Claim(id) => keys::claim(id),
            Entity::Coverage(patient, insurer, index) => keys::coverage(patient, insurer, *index),
        }
    }

    /// How output names it: `consent c-1`.
    pub(super) fn label(&self) -> String {
        match self {
            Entity::Member(id) => format!("member {id}"),
            Entity::Patient(id) => format!("patient {id}"),
            Entity::Consent(id) => format!("consent {id}"),
            Entity::Practitioner(did) => format!("practitioner {did}"),
            Entity::Guardians(patient) => format!("guardians of {patient}"),
            Entity::Record(id) => format!("record {id}"),
            Entity::Proposal(id) => format!("proposal {id}"),
            Entity::Claim(id) => format!("claim {id}"),
            Entity::Coverage(patient, insurer, index) => {
                format!("coverage {patient} {insurer} {index}")
            }
        }
    }

    /// Decodes the value stored under its key as its type.
    pub(super) fn decode(&self, bytes: &[u8]) -> anyhow::Result<Value> {
        fn d<M: Message + Default>(b: &[u8]) -> anyhow::Result<M> {
            M::decode(b).context("value does not decode")
        }
        Ok(match self {
            Entity::Member(_) => Value::Member(d(bytes)?),
            Entity::Patient(_) => Value::Patient(d(bytes)?),
            Entity::Consent(_) => Value::Consent(d(bytes)?),
            Entity::Practitioner(_) => Value::Practitioner(d(bytes)?),
            Entity::Guardians(_) => Value::Guardians(d(bytes)?),
            Entity::Record(_) => Value::Record(d(bytes)?),
            Entity::Proposal(_) => Value::Proposal(d(bytes)?),
            Entity::Claim(_) => Value::Claim(Box::new(d(bytes)?)),
            Entity::Coverage(..) => Value::Coverage(d(bytes)?),
        })
    }
}

impl Value {
    /// Its state in one word or phrase, as `verify` prints it: `ACTIVE`, `REVOKED (at height 8)`.
    pub(super) fn state(&self) -> String {
        match self {
            Value::Member(_) => "MEMBER".into(),
            Value::Patient(_) => "REGISTERED".into(),
            Value::Consent(c) if c.revoked_height == 0 => "ACTIVE".into(),
            Value::Consent(c) => format!("REVOKED (at height {})", c.revoked_height),
            Value::Practitioner(p) => render::practitioner_status(p.status),
            Value::Guardians(g) => format!("{} of {}", g.threshold, g.guardian_keys.len()),
            Value::Record(a) if a.erased_height == 0 => "ANCHORED".into(),
            Value::Record(a) => format!("ERASED (at height {})", a.erased_height),
            Value::Proposal(p) => render::proposal_status(p.status),
            Value::Claim(c) => render::claim_status(c.status),
            Value::Coverage(c) => format!(
                "ENROLLED {} [{}, {})",
                c.policy_id,
                render::utc(c.start),
                render::utc(c.end)
            ),
        }
    }
}

impl Render for Value {
    fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Value::Member(v) => v.fields(),
            Value::Patient(v) => v.fields(),
            Value::Consent(v) => v.fields(),
            Value::Practitioner(v) => v.fields(),
            Value::Guardians(v) => v.fields(),
            Value::Record(v) => v.fields(),
            Value::Proposal(v) => v.fields(),
            Value::Claim(v) => v.fields(),
            Value::Coverage(v) => v.fields(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_labels_and_json_are_those_of_the_types() -> anyhow::Result<()> {
        let e = Entity::Consent("c-1".into());
        assert_eq!(e.key(), keys::consent("c-1"));
        assert_eq!(e.label(), "consent c-1");
        let c = pb::Consent {
            id: "c-1".into(),
            revoked_height: 8,
            ..Default::default()
        };
        let v = e.decode(&c.encode_to_vec())?;
        assert_eq!(v.state(), "REVOKED (at height 8)");
        // Untagged: the JSON is the consent's own.
        assert_eq!(serde_json::to_value(&v)?, serde_json::to_value(&c)?);
        let e = Entity::Coverage("pt-1".into(), "insurer-c".into(), 2);
        assert_eq!(e.key(), keys::coverage("pt-1", "insurer-c", 2));
        assert!(Entity::Claim("x".into()).decode(&[0xFF]).is_err());
        Ok(())
    }
}

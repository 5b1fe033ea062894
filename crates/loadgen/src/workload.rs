//! The medledger workload: the members' and patients' signers with their sequences, and the
//! timed phase's mix of access logs, grants and revocations, pre-signed into a [`Plan`].

use std::time::Duration;

use anyhow::Context;
use ed25519_dalek::SigningKey;
use medledger_tx::limits::MAX_CONSENTS_PER_GRANTEE;
use medledger_tx::pb::{self, tx_body::Msg, Purpose, TxBody};
use medledger_tx::{ids, sign_tx};

use medledger_client::unordered::now_secs;
use medledger_devnet::localnet::MEMBERS;

use crate::config::{
    LoadConfig, ACCESS_PCT, GRANT_PCT, MIX_SEED, UNORDERED_VALIDITY_AFTER_DUE_SECS,
};
use crate::plan::{
    average_size, due, patient_conn, patient_signer, random_key, random_u64, Plan, Planned, Rng,
};

/// Data classes of the grants in the timed phase (FHIR resource types).
const GRANT_CLASSES: [&str; 4] = [
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Immunization",
];
/// The member that receives the spare consents revoked by the timed phase.
pub(crate) const SPARE_GRANTEE: usize = 2;

/// A consent to `grantee` for one data class and purpose, open-ended.
pub(crate) fn grant_msg(grantee: &str, class: &str, purpose: Purpose) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec![class.into()],
        purposes: vec![purpose as i32],
        not_before: 0,
        not_after: 0,
        ..Default::default()
    })
}

/// A signing key and its next sequence number.
pub(crate) struct Signer {
    /// The key.
    pub(crate) key: SigningKey,
    /// The sequence of its next ordered tx.
    pub(crate) next_seq: u64,
}

impl Signer {
    /// Signs `msg` with the next sequence number.
    pub(crate) fn sign(&mut self, chain_id: &str, msg: Msg) -> Vec<u8> {
        let body = TxBody {
            chain_id: chain_id.into(),
            sequence: self.next_seq,
            unordered: None,
            msg: Some(msg),
        };
        self.next_seq += 1;
        sign_tx(&self.key, &body)
    }

    /// Signs `msg` unordered with `nonce`, valid until `valid_until`.
    fn sign_unordered(
        &self,
        chain_id: &str,
        msg: Msg,
        nonce: Vec<u8>,
        valid_until: u64,
    ) -> Vec<u8> {
        let body = TxBody {
            chain_id: chain_id.into(),
            sequence: 0,
            unordered: Some(pb::Unordered { nonce, valid_until }),
            msg: Some(msg),
        };
        sign_tx(&self.key, &body)
    }
}

/// A patient of the workload.
pub(crate) struct Patient {
    /// The patient's own key.
    pub(crate) signer: Signer,
    /// The patient's ledger id.
    pub(crate) id: String,
    /// Ids of the spare consents, revoked in order.
    pub(crate) spares: Vec<String>,
    /// Consents granted per member (the ledger caps them at MAX_CONSENTS_PER_GRANTEE).
    pub(crate) grants: [u64; 4],
}

/// A planned tx: its bytes, connection, and ordered signer ([`Planned::ordered`]).
type Sent = (Vec<u8>, usize, Option<usize>);

/// The signers of a medledger run and their sequence numbers.
pub(crate) struct Workload {
    /// The chain the txs are signed for.
    pub(crate) chain_id: String,
    /// The members' admin keys that send the access logs.
    pub(crate) members: Vec<Signer>,
    /// The patients that grant and revoke.
    pub(crate) patients: Vec<Patient>,
    /// Next spare to revoke, counted over (spare index, patient).
    pub(crate) revoke_cursor: usize,
    /// Random prefix of this run's unordered nonces (the rest is the tx's index).
    pub(crate) salt: [u8; 8],
    /// Unix second at which the timed plan is signed: unordered txs are valid until
    /// [`UNORDERED_VALIDITY_AFTER_DUE_SECS`] after `epoch` + their due time.
    pub(crate) epoch: u64,
}

impl Workload {
    /// The timed phase: `total` txs of the mix, pre-signed, due at `rate`.
    pub(crate) fn timed_plan(&mut self, cfg: &LoadConfig, total: u64) -> Plan {
        let mut rng = Rng(MIX_SEED);
        let mut txs = Vec::new();
        self.epoch = now_secs();
        for i in 0..total {
            let roll = if cfg.members_only {
                0
            } else {
                rng.next() % 100
            };
            let patient = rng.below(self.patients.len());
            let at = due(i, cfg.rate);
            let (bytes, conn, ordered) = if roll >= ACCESS_PCT + GRANT_PCT {
                match self.revoke(cfg.connections) {
                    Some(t) => t,
                    None => self
                        .grant(patient, &mut rng, cfg.connections)
                        .unwrap_or_else(|| self.access(patient, i, at, &mut rng, cfg.connections)),
                }
            } else if roll >= ACCESS_PCT {
                self.grant(patient, &mut rng, cfg.connections)
                    .unwrap_or_else(|| self.access(patient, i, at, &mut rng, cfg.connections))
            } else {
                self.access(patient, i, at, &mut rng, cfg.connections)
            };
            txs.push(Planned {
                bytes,
                conn,
                at,
                ordered,
            });
        }
        Plan { txs }
    }

    /// A member logs a read of a patient's Observation: always permitted by a setup consent.
    /// Unordered (a nonce, valid until [`UNORDERED_VALIDITY_AFTER_DUE_SECS`] after its due
    /// time `at`), as a member's servers send reads, so it may go over any connection.
    fn access(
        &mut self,
        patient: usize,
        i: u64,
        at: Duration,
        rng: &mut Rng,
        conns: usize,
    ) -> Sent {
        let m = rng.below(self.members.len());
        let msg = Msg::LogAccess(pb::LogAccess {
            patient_id: self
                .patients
                .get(patient)
                .map(|p| p.id.clone())
                .unwrap_or_default(),
            record_id: format!("obs-{i}"),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            ..Default::default()
        });
        let mut nonce = self.salt.to_vec();
        nonce.extend_from_slice(&i.to_be_bytes());
        let valid_until = self.epoch + at.as_secs() + UNORDERED_VALIDITY_AFTER_DUE_SECS;
        let bytes = match self.members.get(m) {
            Some(s) => s.sign_unordered(&self.chain_id, msg, nonce, valid_until),
            None => Vec::new(),
        };
        // u64 → usize: i < MAX_PLANNED_TXS.
        (bytes, (i as usize) % conns.max(1), None)
    }

    /// The patient grants a member a new consent; `None` if that pair is at the ledger's limit.
    fn grant(&mut self, patient: usize, rng: &mut Rng, conns: usize) -> Option<Sent> {
        let g = rng.below(MEMBERS.len());
        let class = GRANT_CLASSES[rng.below(GRANT_CLASSES.len())];
        let p = self.patients.get_mut(patient)?;
        let count = p.grants.get_mut(g)?;
        if *count >= MAX_CONSENTS_PER_GRANTEE {
            return None;
        }
        *count += 1;
        Some((
            p.signer.sign(
                &self.chain_id,
                grant_msg(MEMBERS[g].0, class, Purpose::Treat),
            ),
            patient_conn(patient, conns),
            Some(patient_signer(patient)),
        ))
    }

    /// The next spare consent is revoked by its patient; `None` when none is left.
    fn revoke(&mut self, conns: usize) -> Option<Sent> {
        // Patient by patient, so the revocations spread over the patients (and connections).
        let n = self.patients.len().max(1);
        let (p, s) = (self.revoke_cursor % n, self.revoke_cursor / n);
        let patient = self.patients.get_mut(p)?;
        let consent_id = patient.spares.get(s)?.clone();
        self.revoke_cursor += 1;
        Some((
            patient.signer.sign(
                &self.chain_id,
                Msg::RevokeConsent(pb::RevokeConsent { consent_id }),
            ),
            patient_conn(p, conns),
            Some(patient_signer(p)),
        ))
    }
}

/// A workload of throwaway keys, as after a setup with `patients` patients and 10 spares each
/// (consent ids made up): for sizing txs and for tests of the plan.
fn offline_workload(chain_id: &str, patients: usize) -> anyhow::Result<Workload> {
    let members = (0..MEMBERS.len())
        .map(|_| {
            random_key().map(|key| Signer {
                key,
                next_seq: 1000,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let patients = (0..patients)
        .map(|p| {
            let key = random_key()?;
            let id = ids::patient_id(&key.verifying_key().to_bytes());
            let spares = (0..10)
                .map(|s| format!("c-{}", 1000 + p * 10 + s))
                .collect();
            Ok(Patient {
                signer: Signer { key, next_seq: 15 },
                id,
                spares,
                grants: [1, 1, 11, 1],
            })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Workload {
        chain_id: chain_id.into(),
        members,
        patients,
        revoke_cursor: 0,
        salt: random_u64()?.to_be_bytes(),
        epoch: 0,
    })
}

/// The average size of medledger txs of the mix for `chain_id`, from a plan signed with
/// throwaway keys (sizes do not depend on which key signs).
pub fn sample_medledger_tx_size(chain_id: &str) -> anyhow::Result<usize> {
    let mut w = offline_workload(chain_id, 10)?;
    let cfg = LoadConfig {
        rate: 1000,
        connections: 1,
        ..LoadConfig::default()
    };
    let plan = w.timed_plan(&cfg, 1000);
    usize::try_from(average_size(&plan)).context("size")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn medledger_txs_are_about_the_size_of_a_log_access() {
        let size = sample_medledger_tx_size("medledger-localnet").expect("sample");
        assert!(
            (100..400).contains(&size),
            "average medledger tx is {size} bytes"
        );
    }

    #[test]
    fn ordered_signers_keep_one_connection_and_access_logs_are_unordered_and_spread() {
        use prost::Message;
        let mut w = offline_workload("c", 20).expect("workload");
        let cfg = LoadConfig {
            rate: 1000,
            connections: 3,
            ..LoadConfig::default()
        };
        let plan = w.timed_plan(&cfg, 5000);
        let mut last: BTreeMap<Vec<u8>, (u64, usize)> = BTreeMap::new();
        let mut kinds = [0u64; 4];
        let mut nonces = std::collections::BTreeSet::new();
        let mut access_conns = std::collections::BTreeSet::new();
        for t in &plan.txs {
            let tx = pb::Tx::decode(t.bytes.as_slice()).expect("tx");
            let body = TxBody::decode(tx.body.as_slice()).expect("body");
            match body.msg {
                Some(Msg::LogAccess(_)) => kinds[0] += 1,
                Some(Msg::GrantConsent(_)) => kinds[1] += 1,
                Some(Msg::RevokeConsent(_)) => kinds[2] += 1,
                _ => kinds[3] += 1,
            }
            if let Some(u) = &body.unordered {
                assert!(
                    matches!(body.msg, Some(Msg::LogAccess(_))),
                    "only reads are unordered"
                );
                assert!(t.ordered.is_none());
                assert!(
                    nonces.insert((tx.public_key.clone(), u.nonce.clone())),
                    "a nonce is used once"
                );
                let due = w.epoch + t.at.as_secs();
                assert_eq!(u.valid_until, due + UNORDERED_VALIDITY_AFTER_DUE_SECS);
                assert!(u.valid_until - due <= medledger_tx::limits::MAX_UNORDERED_VALIDITY_SECS);
                access_conns.insert(t.conn);
                continue;
            }
            assert!(t.ordered.is_some(), "consent changes are ordered");
            if let Some((seq, conn)) = last.get(&tx.public_key) {
                assert_eq!(
                    body.sequence,
                    seq + 1,
                    "sequences of one signer are consecutive in plan order"
                );
                assert_eq!(t.conn, *conn, "one ordered signer, one connection");
            }
            last.insert(tx.public_key.clone(), (body.sequence, t.conn));
        }
        assert_eq!(access_conns.len(), 3, "reads use every connection");
        assert!(plan.txs.windows(2).all(|w| w[0].at <= w[1].at));
        // 90/8/2 within sampling noise, and 100 revocations fit in the 200 spares.
        assert!((4300..4700).contains(&kinds[0]), "{kinds:?}");
        assert!((300..500).contains(&kinds[1]), "{kinds:?}");
        assert!((50..150).contains(&kinds[2]), "{kinds:?}");
        assert_eq!(kinds[3], 0, "only access logs, grants and revocations");
    }
}

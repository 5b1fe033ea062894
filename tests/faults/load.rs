//! The fault suite's steady load: closed-loop workers sending signed txs of the load
//! generator's mix (members' access logs, patients' registrations and consent grants), failing
//! over between nodes, and recording the fate of every tx they sent.
//!
//! Why not `medledger bench load`: the bench tracks commits through node 0 and assumes every
//! node answers; here any node may be dead, frozen or cut off, and the suite must know, for each
//! tx, whether it was acknowledged as committed, refused, or left in doubt by a fault.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use medledger_client::Client;
use medledger_tx::pb::{self, tx_body::Msg, TxBody};
use medledger_tx::{ids, sign_tx};
use sha2::{Digest, Sha256};
use tendermint::Hash;

use crate::support::{grant, read};
use tendermint_rpc::Client as _;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Longest wait for one RPC answer: a frozen node never answers.
const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an accepted tx may take to commit before it is counted as in doubt.
const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// Access logs each member has in flight at once (consecutive sequences, one node).
const WINDOW: usize = 8;
/// Patients whose access histories the members append to.
pub const PATIENTS: usize = 8;

/// What a tx did, as far as the suite can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Seen in a block with code 0: acknowledged to the client as committed.
    Committed {
        /// Its block.
        height: u64,
    },
    /// Refused, by CheckTx or in its block, with this code.
    Refused(u32),
    /// No node confirmed it within the wait: a fault may have dropped it or delayed it.
    InDoubt,
}

/// What a tx was.
#[derive(Clone, Debug)]
pub enum Kind {
    /// A member logged an access to a patient's record (`record` is unique per tx); the
    /// event's index in the patient's history when committed.
    Access {
        patient: String,
        record: String,
        index: Option<u64>,
    },
    /// A new patient registered.
    Register { patient: String },
    /// A patient granted a consent; its id when committed.
    Grant {
        patient: String,
        consent_id: Option<String>,
    },
}

/// One tx sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub kind: Kind,
    pub outcome: Outcome,
}

/// The running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    log: Arc<Mutex<Vec<Sent>>>,
    workers: Vec<JoinHandle<()>>,
    /// The patients the members' access logs go to.
    pub patients: Vec<String>,
}

/// `member`'s enrolment of the patient holding `patient`.
fn enrol(patient: &SigningKey, chain_id: &str, member: &str) -> Msg {
    Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
        patient, chain_id, member,
    ))
}

/// `member` registers the nurse holding `k` (who proves possession of the key).
fn nurse(k: &SigningKey, chain_id: &str, member: &str) -> Msg {
    Msg::RegisterPractitioner(pb::RegisterPractitioner {
        public_key: k.verifying_key().to_bytes().to_vec(),
        role: pb::PractitionerRole::Nurse as i32,
        licence_hash: vec![1; 32],
        key_proof: medledger_tx::keyproof::prove(
            k,
            chain_id,
            medledger_tx::keyproof::REGISTER_PRACTITIONER,
            member,
        )
        .to_vec(),
        ..Default::default()
    })
}

fn seeded_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&Sha256::digest(label.as_bytes()).into())
}

/// RPC clients of every node, and failover.
#[derive(Clone)]
struct Nodes {
    clients: Vec<Client>,
    chain_id: String,
}

impl Nodes {
    /// Sends `tx` to node `first` (or the next that answers) and waits for a node to show it
    /// in a block.
    async fn send(&self, first: usize, tx: Vec<u8>) -> (Outcome, Vec<(String, String)>) {
        let (hash, refused) = self.submit(first, tx).await;
        self.await_commit(first, hash, refused).await
    }

    /// Hands `tx` to node `first`, or to the next node that answers: its hash, and CheckTx's
    /// code if every node that answered refused it.
    async fn submit(&self, first: usize, tx: Vec<u8>) -> (Hash, Option<u32>) {
        let n = self.clients.len();
        let hash = Hash::Sha256(Sha256::digest(&tx).into());
        let mut refused = None;
        for k in 0..n {
            let c = &self.clients[(first + k) % n];
            match timeout(RPC_TIMEOUT, c.rpc().broadcast_tx_sync(tx.clone())).await {
                Ok(Ok(r)) if r.code.value() == 0 => return (hash, None),
                // Refused here; it may still be committed already (sent before a failover).
                Ok(Ok(r)) => refused = Some(r.code.value()),
                // Down, frozen, or "already in cache": try the next node with the same bytes
                // (the same hash, so at most one copy can ever commit).
                _ => {}
            }
        }
        (hash, refused)
    }

    /// Waits for a node to show the tx in a block (briefly if CheckTx refused it).
    async fn await_commit(
        &self,
        first: usize,
        hash: Hash,
        refused: Option<u32>,
    ) -> (Outcome, Vec<(String, String)>) {
        let n = self.clients.len();
        let wait = if refused.is_some() {
            Duration::from_secs(1)
        } else {
            COMMIT_WAIT
        };
        let deadline = Instant::now() + wait;
        let mut k = first;
        loop {
            let c = &self.clients[k % n];
            k += 1;
            if let Ok(Ok(r)) = timeout(RPC_TIMEOUT, c.rpc().tx(hash, false)).await {
                let code = r.tx_result.code.value();
                let attrs = r
                    .tx_result
                    .events
                    .iter()
                    .flat_map(|e| e.attributes.iter())
                    .map(|a| {
                        (
                            a.key_str().unwrap_or_default().to_string(),
                            a.value_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
                let outcome = if code == 0 {
                    Outcome::Committed {
                        height: r.height.value(),
                    }
                } else {
                    Outcome::Refused(code)
                };
                return (outcome, attrs);
            }
            if Instant::now() > deadline {
                return (
                    refused.map_or(Outcome::InDoubt, Outcome::Refused),
                    Vec::new(),
                );
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The next sequence of `key` per the committed state of the first node that answers.
    async fn next_sequence(&self, first: usize, key: &SigningKey) -> u64 {
        loop {
            for k in 0..self.clients.len() {
                let c = &self.clients[(first + k) % self.clients.len()];
                let pk = key.verifying_key().to_bytes();
                if let Ok(Ok(s)) = timeout(RPC_TIMEOUT, c.next_sequence(&pk)).await {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn sign(&self, key: &SigningKey, sequence: u64, msg: Msg) -> Vec<u8> {
        sign_tx(
            key,
            &TxBody {
                chain_id: self.chain_id.clone(),
                sequence,
                unordered: None,
                msg: Some(msg),
            },
        )
    }
}

impl Load {
    /// Registers the access patients (each grants every member a consent), then starts one
    /// access-logging worker per member and `registrars` patient-registration workers.
    pub async fn start(
        urls: &[String],
        chain_id: &str,
        members: Vec<(String, SigningKey)>,
        registrars: usize,
    ) -> Load {
        let nodes = Nodes {
            clients: urls.iter().map(|u| Client::new(u).unwrap()).collect(),
            chain_id: chain_id.to_string(),
        };
        let member_ids: Vec<String> = members.iter().map(|(id, _)| id.clone()).collect();
        // The first member (a hospital) enrols the access patients and registers one nurse per
        // registration worker: members enrol patients, and each worker signs with its own key
        // so that its sequence is its own.
        let (hospital_id, hospital) = members[0].clone();
        let patient_keys: Vec<SigningKey> = (0..PATIENTS)
            .map(|p| seeded_key(&format!("faults-access-patient-{p}")))
            .collect();
        let registrar_keys: Vec<SigningKey> = (0..registrars)
            .map(|w| seeded_key(&format!("faults-registrar-{w}")))
            .collect();
        let enrolments = patient_keys
            .iter()
            .map(|k| enrol(k, chain_id, &hospital_id));
        let nurses = registrar_keys
            .iter()
            .map(|k| nurse(k, chain_id, &hospital_id));
        let mut seq = nodes.next_sequence(0, &hospital).await;
        for msg in enrolments.chain(nurses) {
            let (outcome, _) = nodes.send(0, nodes.sign(&hospital, seq, msg)).await;
            assert!(
                matches!(outcome, Outcome::Committed { .. }),
                "setup tx {seq} of {hospital_id}: {outcome:?}"
            );
            seq += 1;
        }
        let mut setup = Vec::new();
        for (p, key) in patient_keys.into_iter().enumerate() {
            let (nodes, member_ids) = (nodes.clone(), member_ids.clone());
            setup.push(tokio::spawn(async move {
                let msgs: Vec<Msg> = member_ids.iter().map(|m| grant(m)).collect();
                for (seq, msg) in (0u64..).zip(msgs) {
                    let (outcome, _) = nodes.send(p, nodes.sign(&key, seq, msg)).await;
                    assert!(
                        matches!(outcome, Outcome::Committed { .. }),
                        "setup tx {seq} of patient {p}: {outcome:?}"
                    );
                }
                ids::patient_id(&key.verifying_key().to_bytes())
            }));
        }
        let mut patients = Vec::new();
        for s in setup {
            patients.push(s.await.unwrap());
        }

        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut workers = Vec::new();
        for (m, (_, key)) in members.into_iter().enumerate() {
            let (nodes, patients, stop, acked, log) = (
                nodes.clone(),
                patients.clone(),
                stop.clone(),
                acked.clone(),
                log.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut seq = nodes.next_sequence(m, &key).await;
                let mut counter = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // A window of txs in sequence order to one node, then their commits.
                    let mut window = Vec::new();
                    for _ in 0..WINDOW {
                        let patient = patients[(counter as usize) % patients.len()].clone();
                        let record = format!("fault-w{m}-{counter}");
                        counter += 1;
                        let tx = nodes.sign(&key, seq, read(&patient, &record));
                        seq += 1;
                        let (hash, refused) = nodes.submit(m, tx).await;
                        window.push((patient, record, hash, refused));
                    }
                    let outcomes = futures::future::join_all(
                        window
                            .iter()
                            .map(|(_, _, hash, refused)| nodes.await_commit(m, *hash, *refused)),
                    )
                    .await;
                    let mut all_in = true;
                    for ((patient, record, _, _), (outcome, attrs)) in
                        window.into_iter().zip(outcomes)
                    {
                        let index = attrs
                            .into_iter()
                            .find(|(k, _)| k == "index")
                            .and_then(|(_, v)| v.parse().ok());
                        if matches!(outcome, Outcome::Committed { .. }) {
                            acked.fetch_add(1, Ordering::Relaxed);
                        } else {
                            all_in = false;
                        }
                        log.lock().unwrap().push(Sent {
                            kind: Kind::Access {
                                patient,
                                record,
                                index,
                            },
                            outcome,
                        });
                    }
                    if !all_in {
                        seq = nodes.next_sequence(m, &key).await;
                    }
                }
            }));
        }
        for (w, registrar) in registrar_keys.into_iter().enumerate() {
            let (nodes, stop, acked, log, hospital_id) = (
                nodes.clone(),
                stop.clone(),
                acked.clone(),
                log.clone(),
                hospital_id.clone(),
            );
            workers.push(tokio::spawn(async move {
                let mut n = 0u64;
                let first = w + 1;
                let mut seq = nodes.next_sequence(first, &registrar).await;
                while !stop.load(Ordering::Relaxed) {
                    let key = seeded_key(&format!("faults-new-patient-{w}-{n}"));
                    n += 1;
                    let patient = ids::patient_id(&key.verifying_key().to_bytes());
                    let msg = enrol(&key, &nodes.chain_id, &hospital_id);
                    let tx = nodes.sign(&registrar, seq, msg);
                    let (outcome, _) = nodes.send(first, tx).await;
                    let registered = matches!(outcome, Outcome::Committed { .. });
                    seq = if registered {
                        seq + 1
                    } else {
                        nodes.next_sequence(first, &registrar).await
                    };
                    log.lock().unwrap().push(Sent {
                        kind: Kind::Register {
                            patient: patient.clone(),
                        },
                        outcome,
                    });
                    if !registered {
                        continue;
                    }
                    acked.fetch_add(1, Ordering::Relaxed);
                    let (outcome, attrs) = nodes
                        .send(first, nodes.sign(&key, 0, grant("hospital-a")))
                        .await;
                    if matches!(outcome, Outcome::Committed { .. }) {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    let consent_id = attrs
                        .into_iter()
                        .find(|(k, _)| k == "consent_id")
                        .map(|(_, v)| v);
                    log.lock().unwrap().push(Sent {
                        kind: Kind::Grant {
                            patient,
                            consent_id,
                        },
                        outcome,
                    });
                }
            }));
        }
        Load {
            stop,
            acked,
            log,
            workers,
            patients,
        }
    }

    /// Every tx whose fate is known so far, in the order the workers learnt it.
    pub fn sent(&self) -> Vec<Sent> {
        self.log.lock().unwrap().clone()
    }

    /// Txs acknowledged as committed so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops the workers (each finishes its tx in flight) and returns every tx sent.
    pub async fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        let log = self.log.lock().unwrap().clone();
        log
    }
}

/// Counts of outcomes, by kind of tx.
pub fn tally(sent: &[Sent]) -> BTreeMap<&'static str, [u64; 3]> {
    let mut t: BTreeMap<&'static str, [u64; 3]> = BTreeMap::new();
    for s in sent {
        let kind = match s.kind {
            Kind::Access { .. } => "access",
            Kind::Register { .. } => "register",
            Kind::Grant { .. } => "grant",
        };
        let slot = match s.outcome {
            Outcome::Committed { .. } => 0,
            Outcome::Refused(_) => 1,
            Outcome::InDoubt => 2,
        };
        t.entry(kind).or_default()[slot] += 1;
    }
    t
}

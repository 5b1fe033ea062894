//! The untimed setup of a medledger run: the members enrol fresh patients, each patient grants
//! every member a consent plus a few spares to revoke, and everything is committed (in waves
//! the mempool admits) before timing starts.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use medledger_tx::ids;
use medledger_tx::pb::{tx_body::Msg, Purpose};
use tendermint_rpc::Client as _;

use medledger_client::Keyring;
use medledger_devnet::localnet::{AppKind, MEMBERS};

use crate::config::{Broadcast, LoadConfig, Target, MAX_SPARES, REVOKE_PCT, SETUP_TIMEOUT};
use crate::plan::{
    lane_waves, member_conn, patient_conn, patient_signer, random_key, random_u64, Plan, Planned,
};
use crate::send::{chain_id, execute, http};
use crate::tracker::{Tracker, TxState};
use crate::workload::{grant_msg, Patient, Signer, Workload, SPARE_GRANTEE};

impl Workload {
    /// Registers the patients and their consents and waits until all of it is committed.
    pub(crate) async fn setup(
        target: &Target,
        keyring: &Keyring,
        cfg: &LoadConfig,
        total: u64,
    ) -> anyhow::Result<Workload> {
        let chain_id = chain_id(&target.rpc[0]).await?;
        let mut members = member_signers(target, keyring).await?;
        // Enough spares for the revocations of the mix, at least one each.
        let revokes = total.saturating_mul(REVOKE_PCT).div_ceil(100);
        let spares = revokes.div_ceil(cfg.patients as u64).clamp(1, MAX_SPARES);
        let keys: Vec<SigningKey> = (0..cfg.patients)
            .map(|_| random_key())
            .collect::<anyhow::Result<_>>()?;
        enrol(target, &chain_id, &mut members, &keys, cfg).await?;
        let SetupGrants {
            mut patients,
            txs,
            spare_txs,
        } = sign_setup_grants(&chain_id, keys, spares, cfg.connections);
        let n = txs.len();
        if cfg.progress {
            eprintln!(
                "setup: {} patients grant {} consents each ({n} txs)",
                cfg.patients,
                MEMBERS.len() as u64 + spares
            );
        }
        let started = Instant::now();
        // Untimed: async, so the setup does not crawl at one CheckTx round trip per tx; every
        // setup tx must still end in a block with code 0. In waves that fit the mempool's
        // patients' lane (each committed before the next): a burst of patients' txs past it is
        // refused, as it must be.
        let mut states = Vec::with_capacity(n);
        let wave_bytes = patients_lane_bytes(target).await?;
        for wave in lane_waves(&txs, wave_bytes) {
            states.extend(commit_setup(target, wave).await?);
        }
        record_spares(&mut patients, &spare_txs, &states)?;
        if cfg.progress {
            eprintln!(
                "setup: committed in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        Ok(Workload {
            chain_id,
            members,
            patients,
            revoke_cursor: 0,
            salt: random_u64()?.to_be_bytes(),
            epoch: 0,
        })
    }
}

/// The patients of a setup and their consents, signed and not yet sent.
struct SetupGrants {
    /// The patients, with their grant counts (spare ids still to be read from the blocks).
    patients: Vec<Patient>,
    /// Each patient's grants in sequence order, patient by patient.
    txs: Vec<Planned>,
    /// (patient, index in `txs`) of every spare grant.
    spare_txs: Vec<(usize, usize)>,
}

/// Each patient (one per key) grants every member an `Observation` consent for treatment, then
/// `spares` payment consents to [`SPARE_GRANTEE`] that the timed phase revokes. All of a
/// patient's txs go over its one connection, in sequence order.
fn sign_setup_grants(
    chain_id: &str,
    keys: Vec<SigningKey>,
    spares: u64,
    conns: usize,
) -> SetupGrants {
    let mut patients = Vec::with_capacity(keys.len());
    let mut txs = Vec::new();
    let mut spare_txs = Vec::new(); // (patient, tx index)
    for (p, key) in keys.into_iter().enumerate() {
        let id = ids::patient_id(&key.verifying_key().to_bytes());
        let mut patient = Patient {
            signer: Signer { key, next_seq: 0 },
            id,
            spares: Vec::new(),
            grants: [1, 1, 1, 1],
        };
        let conn = patient_conn(p, conns);
        let mut push = |bytes: Vec<u8>| {
            txs.push(Planned {
                bytes,
                conn,
                at: Duration::ZERO,
                ordered: Some(patient_signer(p)),
            });
            txs.len() - 1
        };
        for (member, _, _) in MEMBERS {
            push(
                patient
                    .signer
                    .sign(chain_id, grant_msg(member, "Observation", Purpose::Treat)),
            );
        }
        for _ in 0..spares {
            let i = push(patient.signer.sign(
                chain_id,
                grant_msg(MEMBERS[SPARE_GRANTEE].0, "Claim", Purpose::Hpaymt),
            ));
            spare_txs.push((p, i));
            patient.grants[SPARE_GRANTEE] += 1;
        }
        patients.push(patient);
    }
    SetupGrants {
        patients,
        txs,
        spare_txs,
    }
}

/// Gives each patient the consent ids its spare grants emitted (`states` in setup tx order).
fn record_spares(
    patients: &mut [Patient],
    spare_txs: &[(usize, usize)],
    states: &[TxState],
) -> anyhow::Result<()> {
    for &(p, i) in spare_txs {
        let id = states
            .get(i)
            .and_then(|s| s.consent_id.clone())
            .context("a spare grant emitted no consent_id")?;
        if let Some(patient) = patients.get_mut(p) {
            patient.spares.push(id);
        }
    }
    Ok(())
}

/// Sends untimed setup txs (async) and waits until every one is in a block with code 0;
/// answers their states, in order (with the consent ids their grants emitted).
async fn commit_setup(target: &Target, txs: Vec<Planned>) -> anyhow::Result<Vec<TxState>> {
    let n = txs.len();
    let outcome = execute(
        target,
        Plan { txs },
        Instant::now(),
        None,
        SETUP_TIMEOUT,
        Broadcast::Async,
        None,
    )
    .await?;
    require_all_committed(&outcome.tracker, n)?;
    Ok(outcome.tracker.states)
}

/// Every tx of a setup phase ended in a block with code 0, or an error naming the first failures.
fn require_all_committed(t: &Tracker, n: usize) -> anyhow::Result<()> {
    let failed: Vec<String> = t
        .states
        .iter()
        .filter_map(|s| s.failure(AppKind::Medledger))
        .take(3)
        .collect();
    if !failed.is_empty() || t.states.iter().any(|s| s.included == 0) {
        let committed = t
            .states
            .iter()
            .filter(|s| s.included > 0 && s.code == 0)
            .count();
        bail!("setup failed: {committed} of {n} txs committed within {SETUP_TIMEOUT:?}; first failures: {failed:?} (txs refused by CheckTx are only seen as missing)");
    }
    Ok(())
}

/// Bytes of patients' txs per setup wave: 3/4 of the quarter of a block a node's patients'
/// lane holds (the block size from the chain's consensus parameters).
async fn patients_lane_bytes(target: &Target) -> anyhow::Result<u64> {
    let params = http(&target.rpc[0])?
        .latest_consensus_params()
        .await
        .context("consensus parameters")?;
    let block = params.consensus_params.block.max_bytes;
    Ok((block / 4).saturating_mul(3) / 4)
}

/// The members' admin keys (from the localnet's keyring) at their committed next sequences.
pub(crate) async fn member_signers(
    target: &Target,
    keyring: &Keyring,
) -> anyhow::Result<Vec<Signer>> {
    let client = medledger_client::Client::new(&target.rpc[0])?;
    let mut members = Vec::new();
    for (id, _, _) in MEMBERS {
        let key = keyring
            .get(id)
            .with_context(|| format!("admin key of member {id} (the localnet's keyring)"))?;
        let next_seq = client
            .next_sequence(&key.verifying_key().to_bytes())
            .await?;
        members.push(Signer { key, next_seq });
    }
    Ok(members)
}

/// The members enrol the patients (`RegisterPatient` signed by a member, with the patient's key
/// proof), round-robin, in waves of at most `MAX_ENROLMENTS_PER_BLOCK` per member, each wave
/// committed before the next is sent: the ledger refuses more per member and block.
pub(crate) async fn enrol(
    target: &Target,
    chain_id: &str,
    members: &mut [Signer],
    keys: &[SigningKey],
    cfg: &LoadConfig,
) -> anyhow::Result<()> {
    let per_wave = members.len() * medledger_tx::limits::MAX_ENROLMENTS_PER_BLOCK as usize;
    let started = Instant::now();
    for wave in keys.chunks(per_wave.max(1)) {
        let txs: Vec<Planned> = wave
            .iter()
            .enumerate()
            .map(|(j, key)| {
                let m = j % members.len();
                let msg = medledger_tx::keyproof::enrol_patient(key, chain_id, MEMBERS[m].0);
                Planned {
                    bytes: members[m].sign(chain_id, Msg::RegisterPatient(msg)),
                    // One connection per member keeps each member's sequences in order.
                    conn: member_conn(m, cfg.connections),
                    at: Duration::ZERO,
                    ordered: Some(m),
                }
            })
            .collect();
        commit_setup(target, txs).await?;
    }
    every_node_caught_up(target).await?;
    if cfg.progress {
        eprintln!(
            "setup: members enrolled {} patients in {:.1} s",
            keys.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Waits until every node has reached the first node's height (within [`SETUP_TIMEOUT`]).
///
/// The patients' own txs go to every node, and CheckTx admits only keys the ledger knows:
/// after the enrolments each node must have committed them (a node a block behind would
/// refuse a patient's first tx as an unknown signer, and an async sender never hears of it).
async fn every_node_caught_up(target: &Target) -> anyhow::Result<()> {
    let height = http(&target.rpc[0])?
        .status()
        .await
        .context("status of the first node")?
        .sync_info
        .latest_block_height
        .value();
    for url in &target.rpc {
        let c = http(url)?;
        let deadline = Instant::now() + SETUP_TIMEOUT;
        loop {
            let h = c
                .status()
                .await
                .map(|s| s.sync_info.latest_block_height.value())
                .unwrap_or(0);
            if h >= height {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{url} did not reach height {height} (the enrolments) within {SETUP_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

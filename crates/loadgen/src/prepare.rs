//! A load made ready ([`Prepared`]: the setup done, the timed phase signed), then sent and
//! measured: the tracker's counts plus CPU, memory and store growth over the sending window.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::bail;
use medledger_tx::pb;
use serde::Serialize;

use medledger_client::Keyring;
use medledger_devnet::localnet::{AppKind, MEMBERS};

use crate::config::{LoadConfig, Target};
use crate::plan::{average_size, kv_plan, random_u64, Plan};
use crate::report::LoadReport;
use crate::send::{chain_id, execute};
use crate::tracker::TxState;
use crate::usage::{cpu_ticks, dir_bytes, millicores, sample_usage, usage};
use crate::workload::{sample_medledger_tx_size, Workload};

/// A load ready to send: the setup done and the timed phase signed.
pub struct Prepared {
    plan: Plan,
}

/// Runs the setup (medledger) and signs the timed phase, without sending it (see
/// [`run`](crate::run)).
pub async fn prepare(
    target: &Target,
    keyring: &Keyring,
    cfg: &LoadConfig,
) -> anyhow::Result<Prepared> {
    prepare_excluding(target, keyring, cfg, &[]).await
}

/// [`prepare`], with the members named in `excluded` left out of the timed phase (they still
/// enrol the setup's patients): `bench starve --flood member`, where one member floods and the
/// others' load is measured.
pub async fn prepare_excluding(
    target: &Target,
    keyring: &Keyring,
    cfg: &LoadConfig,
    excluded: &[&str],
) -> anyhow::Result<Prepared> {
    cfg.validate()?;
    if target.rpc.is_empty() {
        bail!("no node to send to");
    }
    let total = cfg.planned()?;
    let plan = match target.app {
        AppKind::Medledger => {
            let mut w = Workload::setup(target, keyring, cfg, total).await?;
            if !excluded.is_empty() {
                let members = std::mem::take(&mut w.members);
                w.members = members
                    .into_iter()
                    .zip(MEMBERS)
                    .filter(|(_, (id, _, _))| !excluded.contains(id))
                    .map(|(s, _)| s)
                    .collect();
                anyhow::ensure!(!w.members.is_empty(), "every member is excluded");
            }
            w.timed_plan(cfg, total)
        }
        AppKind::Kvstore => {
            let size = match cfg.kv_tx_size {
                Some(s) => s,
                None => sample_medledger_tx_size(&chain_id(&target.rpc[0]).await?)?,
            };
            kv_plan(cfg, total, size, random_u64()?)
        }
    };
    Ok(Prepared { plan })
}

/// Txs of one signing key in a timed phase.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct KeyCounts {
    /// Planned.
    pub planned: u64,
    /// Sent.
    pub sent: u64,
    /// In a block and applied (code 0), by the end of the drain.
    pub committed: u64,
}

impl Prepared {
    /// Sends the timed phase from now and reports.
    pub async fn run(self, target: &Target, cfg: &LoadConfig) -> anyhow::Result<LoadReport> {
        Ok(send_and_report(target, cfg, self.plan).await?.0)
    }

    /// [`Prepared::run`], with the counts of each signing key (by public key).
    pub async fn run_by_key(
        self,
        target: &Target,
        cfg: &LoadConfig,
    ) -> anyhow::Result<(LoadReport, BTreeMap<Vec<u8>, KeyCounts>)> {
        use prost::Message as _;
        let keys: Vec<Vec<u8>> = self
            .plan
            .txs
            .iter()
            .map(|t| {
                pb::Tx::decode(t.bytes.as_slice())
                    .map(|tx| tx.public_key)
                    .unwrap_or_default()
            })
            .collect();
        let (report, states) = send_and_report(target, cfg, self.plan).await?;
        let mut by_key: BTreeMap<Vec<u8>, KeyCounts> = BTreeMap::new();
        for (key, s) in keys.into_iter().zip(&states) {
            let c = by_key.entry(key).or_default();
            c.planned += 1;
            c.sent += u64::from(s.submitted.is_some());
            c.committed += u64::from(s.included > 0 && s.code == 0);
        }
        Ok((report, by_key))
    }
}

/// Sends the timed phase `plan` and reports it, with the nodes' and the generator's CPU and
/// memory over the sending window and the first node's store before and after; answers the
/// txs' states too.
async fn send_and_report(
    target: &Target,
    cfg: &LoadConfig,
    plan: Plan,
) -> anyhow::Result<(LoadReport, Vec<TxState>)> {
    let tx_bytes_avg = average_size(&plan);
    let label = target.app.name();
    let state_dir = target.nodes.first().and_then(|n| n.app_data.clone());
    let store_before = state_dir.as_deref().map_or(0, dir_bytes);
    let cpu_before = sample_usage(target);
    let self_before = cpu_ticks(std::process::id());
    let started = Instant::now();
    let outcome = execute(
        target,
        plan,
        started,
        Some(started + cfg.duration),
        cfg.drain,
        cfg.broadcast,
        cfg.progress.then_some(label),
    )
    .await?;
    let cpu_after = sample_usage(target);
    let self_after = cpu_ticks(std::process::id());
    let window = outcome.send_elapsed;
    let mut report = outcome
        .tracker
        .report(cfg, target.app, tx_bytes_avg, started, window);
    report.nodes = usage(target, &cpu_before, &cpu_after, window);
    report.loadgen_cpu_millicores = millicores(self_before, self_after, window);
    report.store_bytes = (store_before, state_dir.as_deref().map_or(0, dir_bytes));
    Ok((report, outcome.tracker.states))
}

//! `medledger bench starve`: the members' load beside a flood, on a throwaway localnet with
//! capped blocks; exit 2 unless the members and each victim commit at least 90 % of what they
//! offer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use medledger_devnet::localnet::{AppKind, Spec, MEMBERS};
use medledger_devnet::ThrowawayNet;
use medledger_loadgen::flood::{Flood, FloodConfig, FloodKind, FloodReport, Victim};
use medledger_loadgen::{self as loadgen, KeyCounts, LoadConfig, LoadReport, Target};

use super::{lost, me, print_report, BroadcastArg, LoadTiming, BENCH_BASE_PORT, BENCH_CHAIN_ID};
use crate::cli::{Ctx, Exit};

/// How long the flood runs before the members' timed phase starts (so the mempools are
/// already flooded).
const FLOOD_HEAD_START: Duration = Duration::from_secs(3);

/// `bench starve`.
#[derive(Debug, Args)]
pub struct StarveArgs {
    /// What floods: access logs from patient keys and unknown keys; junk key recoveries
    /// from fresh keys; one unknown key's distinct txs at sequence 0; or one member
    /// (hospital-a) far above its share, the other members being the victims.
    #[arg(long, value_enum, default_value_t = FloodArg::Access)]
    flood: FloodArg,
    /// Seconds between the victim patient's consent changes (recovery and sequence0
    /// floods; the next waits for the previous one's block).
    #[arg(long, default_value_t = 1)]
    patient_every: u64,
    /// Members' offered load, tx/s (about half the capped chain's capacity by default).
    #[arg(long, default_value_t = 110)]
    member_rate: u64,
    /// Flood, tx/s (about three times the capped chain's capacity by default).
    #[arg(long, default_value_t = 660)]
    flood_rate: u64,
    /// Members' connections.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// The flood's connections.
    #[arg(long, default_value_t = 4)]
    flood_connections: usize,
    /// Patient keys the flood enrols: they sign half the access flood (the other half:
    /// unknown keys); the recovery and member floods name them.
    #[arg(long, default_value_t = 32)]
    flood_patients: usize,
    /// Duration, setup size, drain.
    #[command(flatten)]
    timing: LoadTiming,
    /// `async` only (the default): the members' load is sent with broadcast_tx_async, which
    /// returns once CometBFT has queued the tx. `sync` is refused: it waits for each tx's
    /// CheckTx, so a connection tops out near 40-50 tx/s, under the members' default 55 tx/s
    /// per connection, and the bench would measure the sender instead of the chain.
    #[arg(long, value_enum, default_value_t = BroadcastArg::Async)]
    broadcast: BroadcastArg,
    /// First port of the throwaway localnet.
    #[arg(long, default_value_t = BENCH_BASE_PORT)]
    base_port: u16,
    /// Cap each block at N bytes (capacity about 220 tx/s of 200-byte txs at 40,000).
    #[arg(long, default_value_t = 40_000)]
    max_block_bytes: u64,
}

/// What a starve run measured, before the verdict.
struct Measured {
    /// The members' load.
    members: LoadReport,
    /// Each member's sent and committed txs, by admin key.
    by_key: BTreeMap<Vec<u8>, KeyCounts>,
    /// The flood's report.
    flood: FloodReport,
    /// The victim patient's grants and revocations (recovery and sequence0 floods).
    patient: Option<[Victim; 2]>,
    /// Txs in the run's blocks, all and by signing key.
    in_blocks: (u64, BTreeMap<Vec<u8>, u64>),
    /// Blocks of the run.
    blocks: u64,
}

impl StarveArgs {
    /// Runs the members' load beside the flood and prints the verdict: exit 2 when a member
    /// tx was lost or anyone starved.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        anyhow::ensure!(
            self.broadcast == BroadcastArg::Async,
            "bench starve sends the members' load with --broadcast async only: with sync each \
             connection waits for every CheckTx and tops out near 40-50 tx/s, below the \
             members' rate ({} tx/s over {} connections), so the bench would measure the \
             sender, not the chain",
            self.member_rate,
            self.connections
        );
        let kind = self.flood.kind();
        let cfg = LoadConfig {
            members_only: true,
            ..self.timing.config(
                self.member_rate,
                self.connections,
                BroadcastArg::Async,
                ctx.quiet,
            )
        };
        let mut spec = Spec::consortium(BENCH_CHAIN_ID.into(), self.base_port, AppKind::Medledger)?;
        spec.max_block_bytes = Some(self.max_block_bytes);
        let net = ThrowawayNet::start(spec, me()?).await?;
        let m = self.measure(&net, kind, &cfg).await?;
        let (mut victims, flooder_txs_in_blocks) = member_victims(&net, kind, &m)?;
        victims.extend(m.patient.into_iter().flatten());
        let report = StarveReport::new(
            m.members,
            m.flood,
            victims,
            flooder_txs_in_blocks,
            m.in_blocks.0,
            m.blocks,
        );
        print_report(ctx.out, &report, || {
            format!(
                "{}{}{}",
                loadgen::table(&[&report.members]),
                loadgen::details(&report.members),
                report.text()
            )
        })?;
        if loadgen::any_lost(&[&report.members]) {
            return Ok(lost());
        }
        Ok(if report.starved {
            Exit::Failed
        } else {
            Exit::Ok
        })
    }

    /// Prepares the members' load and the flood, floods, runs the members' timed load (and the
    /// victim patient's changes) under it, stops the flood, and counts the run's blocks.
    async fn measure(
        &self,
        net: &ThrowawayNet,
        kind: FloodKind,
        cfg: &LoadConfig,
    ) -> anyhow::Result<Measured> {
        let target = Target::of_localnet(&net.net);
        // The members' setup first (their patients' consents go through the patients'
        // lane the flood fills), then the flood's own enrolments. A flooding member
        // offers none of the measured load.
        let members =
            loadgen::prepare_excluding(&target, &net.keyring, cfg, kind.flooding_members()).await?;
        let mut flood = Flood::prepare(
            &target,
            &net.keyring,
            FloodConfig {
                kind,
                rate: self.flood_rate,
                connections: self.flood_connections,
                // It starts before the members' timed phase and floods until their
                // drain ends (then it is stopped).
                duration: cfg.duration
                    + FLOOD_HEAD_START * 2
                    + cfg.drain * loadgen::MAX_DRAIN_FACTOR,
                patients: self.flood_patients,
            },
        )
        .await?;
        if cfg.progress {
            eprintln!(
                "flood ({}): {} tx/s of {}",
                kind.name(),
                self.flood_rate,
                kind.describe()
            );
        }
        let victim = flood.take_victim();
        let from = loadgen::flood::latest_height(&target).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let flooding = tokio::spawn(flood.run(target.clone(), stop.clone()));
        tokio::time::sleep(FLOOD_HEAD_START).await;
        let every = Duration::from_secs(self.patient_every.max(1));
        let patient = victim.map(|v| tokio::spawn(v.run(every, stop.clone())));
        let members = members.run_by_key(&target, cfg).await;
        stop.store(true, Ordering::Release);
        let flood = flooding.await??;
        let patient = match patient {
            Some(t) => Some(t.await??),
            None => None,
        };
        let (members, by_key) = members?;
        let to = loadgen::flood::latest_height(&target).await?;
        let in_blocks = loadgen::flood::block_txs(&target, from + 1, to).await?;
        Ok(Measured {
            members,
            by_key,
            flood,
            patient,
            in_blocks,
            blocks: to - from,
        })
    }
}

/// Each member but a flooding one as a victim (what it sent and committed, by its admin key),
/// and the flooding member's txs in the run's blocks (the member flood).
fn member_victims(
    net: &ThrowawayNet,
    kind: FloodKind,
    m: &Measured,
) -> anyhow::Result<(Vec<Victim>, Option<u64>)> {
    let mut victims = Vec::new();
    let mut flooder_txs_in_blocks = None;
    for (id, _, _) in MEMBERS {
        let key = net.keyring.get(id)?.verifying_key().to_bytes().to_vec();
        if kind.flooding_members().contains(&id) {
            flooder_txs_in_blocks = Some(m.in_blocks.1.get(&key).copied().unwrap_or(0));
            continue;
        }
        let c = m.by_key.get(&key).copied().unwrap_or_default();
        victims.push(Victim::new(
            format!("member {id}"),
            c.sent,
            c.committed,
            Default::default(),
        ));
    }
    Ok((victims, flooder_txs_in_blocks))
}

/// `bench starve --flood`: what floods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FloodArg {
    /// Unordered access logs, half from enrolled patient keys, half from unknown keys.
    Access,
    /// Key recoveries from fresh keys with no or bogus guardian approvals (issue 23 #3), while
    /// a patient grants and revokes consents.
    Recovery,
    /// One unknown key's distinct key recoveries, all at sequence 0, while a patient grants and
    /// revokes consents.
    Sequence0,
    /// hospital-a's admin key far above its share; the other members are the victims.
    Member,
}

impl FloodArg {
    fn kind(self) -> FloodKind {
        match self {
            FloodArg::Access => FloodKind::Access,
            FloodArg::Recovery => FloodKind::Recovery,
            FloodArg::Sequence0 => FloodKind::Sequence0,
            FloodArg::Member => FloodKind::Member,
        }
    }
}

/// `bench starve`'s verdict.
#[derive(serde::Serialize)]
struct StarveReport {
    /// The measured members' load (every member but a flooding one).
    members: LoadReport,
    /// Committed / offered, in percent (the committed rate over the offered rate).
    members_committed_pct: u64,
    flood_offered_tx_per_s: u64,
    /// Patient keys the flood enrolled.
    flood_patient_keys: usize,
    /// Txs in the blocks of the run (from the flood's start): the members' timed load, the
    /// flood's admitted txs, the victim patient's, and at most one certificate per block.
    txs_in_blocks: u64,
    /// Blocks of the run.
    blocks: u64,
    /// Whether the members committed under 90 % of what they offered, or any victim did.
    starved: bool,
    /// What flooded.
    flood_kind: FloodKind,
    /// The flood: sent, RPC refusals, CheckTx's answers to a sample.
    flood: FloodReport,
    /// Each victim: offered, committed, verdict.
    victims: Vec<Victim>,
    /// The member flood: the flooding member's txs in the run's blocks.
    flooder_txs_in_blocks: Option<u64>,
}

impl StarveReport {
    fn new(
        members: LoadReport,
        flood: FloodReport,
        victims: Vec<Victim>,
        flooder_txs_in_blocks: Option<u64>,
        in_blocks: u64,
        blocks: u64,
    ) -> StarveReport {
        let pct = members
            .committed_tx_per_s
            .saturating_mul(100)
            .checked_div(members.offered_tx_per_s)
            .unwrap_or(0);
        StarveReport {
            members_committed_pct: pct,
            flood_offered_tx_per_s: flood.offered_tx_per_s,
            flood_patient_keys: flood.patient_keys,
            txs_in_blocks: in_blocks,
            blocks,
            starved: pct < loadgen::PLATEAU_PCT || victims.iter().any(|v| v.starved),
            flood_kind: flood.kind,
            flood,
            victims,
            flooder_txs_in_blocks,
            members,
        }
    }

    fn text(&self) -> String {
        let verdict = |starved: bool| {
            if starved {
                "STARVED (under 90 %)"
            } else {
                "not starved (at least 90 %)"
            }
        };
        let join = |m: &std::collections::BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let f = &self.flood;
        let mut out = format!(
            "flood ({}): {} tx/s offered of {}; {} sent ({} tx/s); {} txs in the run's {} blocks, {} of them the members' timed load\n",
            self.flood_kind.name(),
            f.offered_tx_per_s,
            self.flood_kind.describe(),
            f.sent,
            f.sent_tx_per_s,
            self.txs_in_blocks,
            self.blocks,
            self.members.committed,
        );
        out.push_str(&format!(
            "flood: CheckTx's answers to 1 tx in {}: {}\n",
            f.sampled_every,
            join(&f.check_sampled)
        ));
        if !f.rpc_refused.is_empty() {
            out.push_str(&format!(
                "flood: refused by RPC: {}\n",
                join(&f.rpc_refused)
            ));
        }
        if let Some(n) = self.flooder_txs_in_blocks {
            out.push_str(&format!(
                "flood: {n} of the flooding member's txs in the run's blocks\n"
            ));
        }
        out.push_str(&format!(
            "members: {} tx/s offered, {} tx/s committed ({} %): {}\n",
            self.members.offered_tx_per_s,
            self.members.committed_tx_per_s,
            self.members_committed_pct,
            verdict(self.members_committed_pct < loadgen::PLATEAU_PCT)
        ));
        for v in &self.victims {
            out.push_str(&format!(
                "victim {}: {} offered, {} committed ({} %): {}{}\n",
                v.name,
                v.offered,
                v.committed,
                v.committed_pct,
                verdict(v.starved),
                if v.refused.is_empty() {
                    String::new()
                } else {
                    format!("; refused: {}", join(&v.refused))
                }
            ));
        }
        out.push_str(&format!(
            "verdict: {}\n",
            if self.starved {
                "STARVED"
            } else {
                "not starved"
            }
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_from, BenchCmd, Command, Output};

    fn starve(args: &[&str]) -> StarveArgs {
        let mut all = vec!["medledger", "bench", "starve"];
        all.extend_from_slice(args);
        match parse_from(all).map(|c| c.command) {
            Ok(Command::Bench(BenchCmd::Starve(s))) => s,
            other => unreachable!("not bench starve: {other:?}"),
        }
    }

    /// The members' load is sent async: by default, and `--broadcast sync` is refused before
    /// any localnet starts, with the reason.
    #[tokio::test]
    async fn the_members_load_is_async_and_sync_is_refused() {
        assert_eq!(starve(&[]).broadcast, BroadcastArg::Async);
        assert_eq!(
            starve(&["--broadcast", "async"]).broadcast,
            BroadcastArg::Async
        );
        let ctx = Ctx {
            home: std::env::temp_dir().join("medledger-starve-refuses-sync"),
            keyring: medledger_client::Keyring::new(std::env::temp_dir().join("no-keys")),
            out: Output::Text,
            quiet: true,
        };
        let refused = starve(&["--broadcast", "sync"]).run(&ctx).await;
        let message = refused.expect_err("sync is refused").to_string();
        assert!(message.contains("--broadcast async only"), "{message}");
    }
}

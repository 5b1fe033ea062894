//! `medledger bench`: load benchmarks (medledger-loadgen) on a running or throwaway localnet. One
//! struct per benchmark, each with `run`: `load`, `compare` and `grid` here, `starve` in
//! `bench/starve.rs`, the gateway's `vault` and `gateway-flood` in `bench/gateway.rs`.

mod gateway;
mod starve;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medledger_devnet::localnet::{AppKind, Localnet, Spec};
use medledger_devnet::ThrowawayNet;
use medledger_loadgen::{self as loadgen, Broadcast, Comparison, LoadConfig, LoadReport, Target};

use super::{print_json, Ctx, Exit, Output};

pub use gateway::{GatewayFloodArgs, VaultBenchArgs};
pub use starve::StarveArgs;

/// First port of the throwaway localnets: clear of `localnet up`'s default 26656, so a
/// benchmark can run next to a developer's localnet.
pub const BENCH_BASE_PORT: u16 = 36656;
/// Chain id of the throwaway localnets.
pub const BENCH_CHAIN_ID: &str = "medledger-bench";

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Load the running localnet (<home>/localnet; member keys from <home>/keys).
    Load(LoadArgs),
    /// Start a throwaway medledger localnet, then a kvstore one with the same CometBFT config,
    /// run the same load on each, and print both and their ratio.
    Compare(CompareArgs),
    /// CometBFT's QA method: every rate × connection count on one throwaway localnet; a cell is
    /// saturated when it commits under 90 % of its offered rate.
    Grid(GridArgs),
    /// Members' access logs at `--member-rate` while a flood (`--flood`) runs at `--flood-rate`,
    /// on a throwaway localnet with capped blocks; fails (exit 2) unless the members, and each
    /// victim of the flood (each member; the victim patient's grants and revocations), commit
    /// at least 90 % of what they offer, with nothing lost.
    Starve(StarveArgs),
    /// The record vault's reads on a throwaway localnet with gateways: lab-b stores records,
    /// hospital-a reads them under a consent, one at a time (end-to-end latency, the gateway's
    /// own time from Server-Timing) and with many practitioners at once (no read may fail).
    Vault(VaultBenchArgs),
    /// A flood at lab-b's gateway, from fresh unregistered keys and then from one registered
    /// key, while hospital-a reads there (a proven state read with its token, a signed token
    /// request); exit 2 unless hospital-a's p99 under each flood stays within 2x its unloaded
    /// p99 with no failed request (docs/performance.md).
    GatewayFlood(GatewayFloodArgs),
}

impl BenchCmd {
    /// Runs `bench …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            BenchCmd::Load(a) => a.run(ctx).await,
            BenchCmd::Compare(a) => a.run(ctx).await,
            BenchCmd::Grid(a) => a.run(ctx).await,
            BenchCmd::Starve(a) => a.run(ctx).await,
            BenchCmd::Vault(a) => a.run(ctx).await,
            BenchCmd::GatewayFlood(a) => a.run(ctx).await,
        }
    }
}

/// The timing of a load, shared by the load benches (`load`, `compare`, `grid`, `starve`).
#[derive(Debug, Args)]
pub struct LoadTiming {
    /// Seconds of timed load (after an untimed setup phase).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Patients the setup phase registers (medledger).
    #[arg(long, default_value_t = 200)]
    pub patients: usize,
    /// After sending, the drain waits for accepted txs while they keep committing; it ends when
    /// none is left or none committed for this many seconds (at most 12 × this).
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
}

/// `--broadcast` of `bench load | compare | grid` (`bench starve` has its own: `async` only).
#[derive(Debug, Args)]
pub struct BroadcastFlag {
    /// `sync` waits for each tx's CheckTx (rejections counted by code; a connection then tops
    /// out near 40-50 tx/s behind a socket ABCI app); `async` only for CometBFT to queue it.
    #[arg(long, value_enum, default_value_t = BroadcastArg::Sync)]
    pub broadcast: BroadcastArg,
}

/// How `bench` submits txs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BroadcastArg {
    /// broadcast_tx_sync.
    Sync,
    /// broadcast_tx_async.
    Async,
}

impl From<BroadcastArg> for Broadcast {
    fn from(b: BroadcastArg) -> Broadcast {
        match b {
            BroadcastArg::Sync => Broadcast::Sync,
            BroadcastArg::Async => Broadcast::Async,
        }
    }
}

impl LoadTiming {
    /// The load's config; `quiet` (the global `-q`): no progress lines on stderr.
    fn config(
        &self,
        rate: u64,
        connections: usize,
        broadcast: BroadcastArg,
        quiet: bool,
    ) -> LoadConfig {
        LoadConfig {
            rate,
            connections,
            duration: std::time::Duration::from_secs(self.duration),
            patients: self.patients,
            drain: std::time::Duration::from_secs(self.drain),
            kv_tx_size: None,
            progress: !quiet,
            broadcast: broadcast.into(),
            members_only: false,
        }
    }
}

/// The offered load of `bench load` and `bench compare`.
#[derive(Debug, Args)]
pub struct LoadFlags {
    /// Offered load, tx/s.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    /// Concurrent connections, spread over the nodes.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Duration, setup size, drain.
    #[command(flatten)]
    timing: LoadTiming,
    /// How txs are sent.
    #[command(flatten)]
    broadcast: BroadcastFlag,
}

impl LoadFlags {
    /// The load's config; `quiet` (the global `-q`): no progress lines on stderr.
    fn config(&self, quiet: bool) -> LoadConfig {
        self.timing
            .config(self.rate, self.connections, self.broadcast.broadcast, quiet)
    }
}

/// The throwaway localnets of `bench compare` and `bench grid`.
#[derive(Debug, Args)]
pub struct ThrowawayFlags {
    /// First port of the throwaway localnets (node i: base+10i p2p, +1 RPC, +2 ABCI).
    #[arg(long, default_value_t = BENCH_BASE_PORT)]
    base_port: u16,
    /// Cap each block at N bytes (CometBFT `block.max_bytes`; mempools hold about ten such
    /// blocks): puts the chain's capacity below what a sender on the same machine reaches,
    /// so overload can be measured on 2 cores.
    #[arg(long)]
    max_block_bytes: Option<u64>,
}

impl ThrowawayFlags {
    /// The spec of a throwaway consortium localnet of `app`.
    fn spec(&self, app: AppKind) -> anyhow::Result<Spec> {
        let mut spec = Spec::consortium(BENCH_CHAIN_ID.into(), self.base_port, app)?;
        spec.max_block_bytes = self.max_block_bytes;
        Ok(spec)
    }
}

/// Prints a bench's report: JSON with `-o json`, else `text`.
fn print_report(
    out: Output,
    report: &impl serde::Serialize,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if out == Output::Json {
        print_json(report)
    } else {
        print!("{}", text());
        Ok(())
    }
}

/// This binary, which the throwaway localnets' nodes run.
fn me() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating the medledger binary")
}

/// The exit of a bench that lost txs (sent, never committed, no refusal the sender saw).
fn lost() -> Exit {
    eprintln!(
        "bench: txs were sent and never committed (LOST in the verdict column): a failure, see docs/performance.md"
    );
    Exit::Failed
}

/// `bench load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Rate, connections, timing, broadcast.
    #[command(flatten)]
    load: LoadFlags,
    /// RPC URL to send to (repeat; default: every node of the localnet). Commits are tracked
    /// on the first.
    #[arg(long)]
    node: Vec<String>,
    /// Size of kvstore txs in bytes (default: the average medledger tx of the mix).
    #[arg(long)]
    tx_size: Option<usize>,
}

impl LoadArgs {
    /// Loads the running localnet (or `--node`) and prints the report: exit 2 when a tx was
    /// lost.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let dir = ctx.home.join("localnet");
        let mut target = if dir.join("localnet.json").exists() {
            Target::of_localnet(&Localnet::open(&dir, me()?)?)
        } else {
            anyhow::ensure!(
                !self.node.is_empty(),
                "no localnet in {}: start one (`medledger localnet up`) or pass --node",
                dir.display()
            );
            Target {
                app: AppKind::Medledger,
                rpc: Vec::new(),
                nodes: Vec::new(),
            }
        };
        if !self.node.is_empty() {
            target.rpc = self.node;
        }
        let cfg = LoadConfig {
            kv_tx_size: self.tx_size,
            ..self.load.config(ctx.quiet)
        };
        let report = loadgen::run(&target, &ctx.keyring, &cfg).await?;
        print_report(ctx.out, &report, || {
            format!(
                "{}{}",
                loadgen::table(&[&report]),
                loadgen::details(&report)
            )
        })?;
        Ok(if loadgen::any_lost(&[&report]) {
            lost()
        } else {
            Exit::Ok
        })
    }
}

/// `bench compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Rate, connections, timing, broadcast.
    #[command(flatten)]
    load: LoadFlags,
    /// Base port and block cap of the throwaway localnets.
    #[command(flatten)]
    net: ThrowawayFlags,
}

impl CompareArgs {
    /// The same load on a throwaway medledger localnet, then a kvstore one (with txs of the
    /// medledger run's average size); prints both and their ratio: exit 2 when a tx was lost.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let me = me()?;
        let cfg = self.load.config(ctx.quiet);
        let medledger = bench_on_throwaway(AppKind::Medledger, &self.net, &me, &cfg).await?;
        let kv_cfg = LoadConfig {
            kv_tx_size: Some(usize::try_from(medledger.tx_bytes_avg)?),
            ..cfg
        };
        let kvstore = bench_on_throwaway(AppKind::Kvstore, &self.net, &me, &kv_cfg).await?;
        let lost_any = loadgen::any_lost(&[&medledger, &kvstore]);
        let c = Comparison::new(medledger, kvstore);
        print_report(ctx.out, &c, || {
            format!(
                "{}{}{}",
                c.text(),
                loadgen::details(&c.medledger),
                loadgen::details(&c.kvstore)
            )
        })?;
        Ok(if lost_any { lost() } else { Exit::Ok })
    }
}

/// Starts a throwaway localnet of `app`, runs `cfg` on it, stops it.
async fn bench_on_throwaway(
    app: AppKind,
    flags: &ThrowawayFlags,
    me: &Path,
    cfg: &LoadConfig,
) -> anyhow::Result<LoadReport> {
    let net = ThrowawayNet::start(flags.spec(app)?, me.to_path_buf()).await?;
    if cfg.progress {
        eprintln!("{} localnet up in {}", app.name(), net.net.dir.display());
    }
    loadgen::run(&Target::of_localnet(&net.net), &net.keyring, cfg).await
}

/// `bench grid`.
#[derive(Debug, Args)]
pub struct GridArgs {
    /// Offered rates, tx/s.
    #[arg(long, value_delimiter = ',', default_values_t = vec![500, 1000, 2000])]
    rates: Vec<u64>,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 4])]
    connections: Vec<usize>,
    /// Duration, setup size, drain.
    #[command(flatten)]
    timing: LoadTiming,
    /// How txs are sent.
    #[command(flatten)]
    broadcast: BroadcastFlag,
    /// Base port and block cap of the throwaway localnets.
    #[command(flatten)]
    net: ThrowawayFlags,
    /// Run the same grid on a kvstore localnet afterwards.
    #[arg(long)]
    kvstore: bool,
    /// Each medledger node prunes heights older than this many (`start --keep-recent`,
    /// no checkpoints kept): the state's growth per committed tx with pruning.
    #[arg(long)]
    keep_recent: Option<u64>,
    /// Each medledger node lets CometBFT delete blocks older than this many (`start
    /// --retain-blocks`, more than `--keep-recent`; snapshots are then off, since a node
    /// keeping fewer blocks than their interval could not serve them).
    #[arg(long)]
    retain_blocks: Option<u64>,
}

impl GridArgs {
    /// Runs every cell on one throwaway localnet per app and prints the grid: exit 2 when a tx
    /// was lost or a cell past capacity collapsed.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let apps: &[AppKind] = if self.kvstore {
            &[AppKind::Medledger, AppKind::Kvstore]
        } else {
            &[AppKind::Medledger]
        };
        let mut all: Vec<LoadReport> = Vec::new();
        let mut kv_tx_size = None;
        for &app in apps {
            let cells = self.run_cells(ctx, app, kv_tx_size).await?;
            if app == AppKind::Medledger {
                // kvstore txs of the medledger mix's average size (its first cell's).
                kv_tx_size = cells
                    .iter()
                    .find_map(|r| usize::try_from(r.tx_bytes_avg).ok());
            }
            all.extend(cells);
        }
        let mut collapses = Vec::new();
        for &app in apps {
            let cells: Vec<&LoadReport> = all.iter().filter(|r| r.app == app.name()).collect();
            collapses.extend(loadgen::collapses(&cells));
        }
        print_report(ctx.out, &all, || grid_text(apps, &all))?;
        for c in &collapses {
            eprintln!("bench: {c}");
        }
        if loadgen::any_lost(&all.iter().collect::<Vec<_>>()) {
            return Ok(lost());
        }
        Ok(if collapses.is_empty() {
            Exit::Ok
        } else {
            Exit::Failed
        })
    }

    /// Every rate × connection cell on one throwaway localnet of `app`, each cell on empty
    /// mempools.
    async fn run_cells(
        &self,
        ctx: &Ctx,
        app: AppKind,
        kv_tx_size: Option<usize>,
    ) -> anyhow::Result<Vec<LoadReport>> {
        let mut spec = self.net.spec(app)?;
        spec.keep_recent = self.keep_recent;
        spec.retain_blocks = self.retain_blocks;
        if self.retain_blocks.is_some() {
            spec.snapshot_interval = Some(0);
        }
        let net = ThrowawayNet::start(spec, me()?).await?;
        let mut cells = Vec::new();
        for &rate in &self.rates {
            for &c in &self.connections {
                // A saturated cell leaves a backlog; the next cell starts on empty mempools.
                net.wait_mempools_empty(std::time::Duration::from_secs(120))
                    .await?;
                let cfg = LoadConfig {
                    kv_tx_size,
                    ..self
                        .timing
                        .config(rate, c, self.broadcast.broadcast, ctx.quiet)
                };
                let r = loadgen::run(&Target::of_localnet(&net.net), &net.keyring, &cfg).await?;
                if ctx.out == Output::Text {
                    eprint!("{}", loadgen::table(&[&r]));
                }
                cells.push(r);
            }
        }
        Ok(cells)
    }
}

/// The grid for people: the table, each app's saturation summary, the state's growth and the
/// refusals of each cell that had any.
fn grid_text(apps: &[AppKind], all: &[LoadReport]) -> String {
    let mut s = loadgen::table(&all.iter().collect::<Vec<_>>());
    for &app in apps {
        let cells: Vec<&LoadReport> = all.iter().filter(|r| r.app == app.name()).collect();
        s.push_str(&loadgen::saturation_summary(app.name(), &cells));
    }
    for r in all.iter().filter(|r| r.store_bytes.1 > 0) {
        s.push_str(&format!(
            "{} at {} tx/s: the first node's state went {} → {} MiB, {} bytes per committed tx\n",
            r.app,
            r.offered_tx_per_s,
            loadgen::mib(r.store_bytes.0),
            loadgen::mib(r.store_bytes.1),
            r.store_bytes_per_tx()
        ));
    }
    // Why, for each cell that had refusals: a soak read later needs to tell the chain's
    // refusals from the generator's own (expired reads, code 98).
    for r in all.iter().filter(|r| r.rejected_total > 0) {
        let why: Vec<String> = r.rejected.iter().map(|(k, n)| format!("{k} {n}")).collect();
        s.push_str(&format!(
            "{} at {} tx/s, {} connections: refused where the sender saw it: {}\n",
            r.app,
            r.offered_tx_per_s,
            r.connections,
            why.join("; ")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_from, Command};

    fn bench(args: &[&str]) -> BenchCmd {
        let mut all = vec!["medledger", "bench"];
        all.extend_from_slice(args);
        match parse_from(all).map(|c| c.command) {
            Ok(Command::Bench(b)) => b,
            other => unreachable!("not a bench: {other:?}"),
        }
    }

    #[test]
    fn bench_defaults_parse() {
        let BenchCmd::Grid(grid) = bench(&["grid", "--duration", "5"]) else {
            unreachable!("bench grid parses as a grid")
        };
        assert_eq!(grid.rates, vec![500, 1000, 2000]);
        assert_eq!(grid.connections, vec![1, 2, 4]);
        assert_eq!(grid.net.base_port, BENCH_BASE_PORT);
        assert_eq!(grid.broadcast.broadcast, BroadcastArg::Sync);
        let BenchCmd::Compare(compare) = bench(&["compare", "--duration", "60"]) else {
            unreachable!("bench compare parses as a comparison")
        };
        assert_eq!((compare.load.rate, compare.load.connections), (200, 2));
    }
}

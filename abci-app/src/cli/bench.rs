//! `medledger bench`: load benchmarks (medledger-loadgen) on a running or throwaway localnet.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medledger_devnet::localnet::{AppKind, Localnet, Spec};
use medledger_devnet::ThrowawayNet;
use medledger_loadgen::flood::{Flood, FloodConfig, FloodKind, FloodReport, Victim};
use medledger_loadgen::{self as loadgen, Broadcast, Comparison, LoadConfig, LoadReport, Target};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{print_json, Ctx, Exit, Output};

/// The timing of a load, shared by every `bench` subcommand.
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

impl LoadTiming {
    /// The load's config; `quiet` (the global `-q`): no progress lines on stderr.
    fn config(&self, rate: u64, connections: usize, quiet: bool) -> LoadConfig {
        LoadConfig {
            rate,
            connections,
            duration: std::time::Duration::from_secs(self.duration),
            patients: self.patients,
            drain: std::time::Duration::from_secs(self.drain),
            kv_tx_size: None,
            progress: !quiet,
            broadcast: match self.broadcast {
                BroadcastArg::Sync => Broadcast::Sync,
                BroadcastArg::Async => Broadcast::Async,
            },
            members_only: false,
        }
    }
}

/// First port of the throwaway localnets: clear of `localnet up`'s default 26656, so a
/// benchmark can run next to a developer's localnet.
pub const BENCH_BASE_PORT: u16 = 36656;
/// Chain id of the throwaway localnets.
pub const BENCH_CHAIN_ID: &str = "medledger-bench";

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Load the running localnet (<home>/localnet; member keys from <home>/keys).
    Load {
        /// Offered load, tx/s.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Concurrent connections, spread over the nodes.
        #[arg(long, default_value_t = 2)]
        connections: usize,
        /// Duration, setup size, drain.
        #[command(flatten)]
        timing: LoadTiming,
        /// RPC URL to send to (repeat; default: every node of the localnet). Commits are tracked
        /// on the first.
        #[arg(long)]
        node: Vec<String>,
        /// Size of kvstore txs in bytes (default: the average medledger tx of the mix).
        #[arg(long)]
        tx_size: Option<usize>,
    },
    /// Start a throwaway medledger localnet, then a kvstore one with the same CometBFT config,
    /// run the same load on each, and print both and their ratio.
    Compare {
        /// Offered load, tx/s.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Concurrent connections, spread over the nodes.
        #[arg(long, default_value_t = 2)]
        connections: usize,
        /// Duration, setup size, drain.
        #[command(flatten)]
        timing: LoadTiming,
        /// First port of the throwaway localnets (node i: base+10i p2p, +1 RPC, +2 ABCI).
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
        /// Cap each block at N bytes (CometBFT `block.max_bytes`; mempools hold about ten such
        /// blocks): puts the chain's capacity below what a sender on the same machine reaches,
        /// so overload can be measured on 2 cores.
        #[arg(long)]
        max_block_bytes: Option<u64>,
    },
    /// CometBFT's QA method: every rate × connection count on one throwaway localnet; a cell is
    /// saturated when it commits under 90 % of its offered rate.
    Grid {
        /// Offered rates, tx/s.
        #[arg(long, value_delimiter = ',', default_values_t = vec![500, 1000, 2000])]
        rates: Vec<u64>,
        /// Connection counts.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 4])]
        connections: Vec<usize>,
        /// Duration, setup size, drain.
        #[command(flatten)]
        timing: LoadTiming,
        /// First port of the throwaway localnets.
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
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
        /// Cap each block at N bytes (CometBFT `block.max_bytes`; mempools hold about ten such
        /// blocks): puts the chain's capacity below what a sender on the same machine reaches,
        /// so overload can be measured on 2 cores.
        #[arg(long)]
        max_block_bytes: Option<u64>,
    },
    /// Members' access logs at `--member-rate` while a flood (`--flood`) runs at `--flood-rate`,
    /// on a throwaway localnet with capped blocks; fails (exit 2) unless the members, and each
    /// victim of the flood (each member; the victim patient's grants and revocations), commit
    /// at least 90 % of what they offer, with nothing lost.
    Starve {
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
        /// First port of the throwaway localnet.
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
        /// Cap each block at N bytes (capacity about 220 tx/s of 200-byte txs at 40,000).
        #[arg(long, default_value_t = 40_000)]
        max_block_bytes: u64,
    },
    /// The record vault's reads on a throwaway localnet with gateways: lab-b stores records,
    /// hospital-a reads them under a consent, one at a time (end-to-end latency, the gateway's
    /// own time from Server-Timing) and with many practitioners at once (no read may fail).
    Vault {
        /// Bytes per record.
        #[arg(long, default_value_t = 100 * 1024)]
        record_bytes: usize,
        /// Records stored (reads cycle over them).
        #[arg(long, default_value_t = 4)]
        records: usize,
        /// Reads by one reader, one after the other.
        #[arg(long, default_value_t = 50)]
        sequential: usize,
        /// Concurrent readers (hospital-a practitioners, one key each).
        #[arg(long, default_value_t = 100)]
        readers: usize,
        /// Rounds of concurrent reads.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// First port of the throwaway localnet.
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
    },
    /// A flood at lab-b's gateway, from fresh unregistered keys and then from one registered
    /// key, while hospital-a reads there (a proven state read with its token, a signed token
    /// request); exit 2 unless hospital-a's p99 under each flood stays within 2x its unloaded
    /// p99 with no failed request (docs/performance.md).
    GatewayFlood {
        /// Seconds per phase (unloaded, unknown keys, one known key).
        #[arg(long, default_value_t = 10)]
        phase_secs: u64,
        /// Flood requests offered per second (the live attack sent 2,177).
        #[arg(long, default_value_t = 2_000)]
        flood_rate: u64,
        /// Concurrent flood connections (enough that refused requests waiting on the gateway
        /// do not hold the offered rate down).
        #[arg(long, default_value_t = 512)]
        flood_connections: usize,
        /// hospital-a's requests per second during each phase.
        #[arg(long, default_value_t = 20)]
        victim_rate: u64,
        /// First port of the throwaway localnet.
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
    },
}

impl BenchCmd {
    /// Runs `bench …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (home, keyring, cmd, out) = (&ctx.home, &ctx.keyring, self, ctx.out);
        let me = std::env::current_exe().context("locating the medledger binary")?;
        match cmd {
            BenchCmd::Load {
                rate,
                connections,
                timing,
                node,
                tx_size,
            } => {
                let dir = home.join("localnet");
                let mut target = if dir.join("localnet.json").exists() {
                    Target::of_localnet(&Localnet::open(&dir, me)?)
                } else {
                    anyhow::ensure!(
                        !node.is_empty(),
                        "no localnet in {}: start one (`medledger localnet up`) or pass --node",
                        dir.display()
                    );
                    Target {
                        app: AppKind::Medledger,
                        rpc: Vec::new(),
                        nodes: Vec::new(),
                    }
                };
                if !node.is_empty() {
                    target.rpc = node;
                }
                let cfg = LoadConfig {
                    kv_tx_size: tx_size,
                    ..timing.config(rate, connections, ctx.quiet)
                };
                let report = loadgen::run(&target, keyring, &cfg).await?;
                if out == Output::Json {
                    print_json(&report)?;
                } else {
                    print!(
                        "{}{}",
                        loadgen::table(&[&report]),
                        loadgen::details(&report)
                    );
                }
                if loadgen::any_lost(&[&report]) {
                    return Ok(lost());
                }
            }
            BenchCmd::Compare {
                rate,
                connections,
                timing,
                base_port,
                max_block_bytes,
            } => {
                let cfg = timing.config(rate, connections, ctx.quiet);
                let medledger =
                    bench_on_throwaway(AppKind::Medledger, base_port, max_block_bytes, &me, &cfg)
                        .await?;
                let kv_cfg = LoadConfig {
                    kv_tx_size: Some(usize::try_from(medledger.tx_bytes_avg)?),
                    ..cfg
                };
                let kvstore =
                    bench_on_throwaway(AppKind::Kvstore, base_port, max_block_bytes, &me, &kv_cfg)
                        .await?;
                let lost_any = loadgen::any_lost(&[&medledger, &kvstore]);
                let c = Comparison::new(medledger, kvstore);
                if out == Output::Json {
                    print_json(&c)?;
                } else {
                    print!(
                        "{}{}{}",
                        c.text(),
                        loadgen::details(&c.medledger),
                        loadgen::details(&c.kvstore)
                    );
                }
                if lost_any {
                    return Ok(lost());
                }
            }
            BenchCmd::Grid {
                rates,
                connections,
                timing,
                base_port,
                kvstore,
                max_block_bytes,
                keep_recent,
                retain_blocks,
            } => {
                let apps: &[AppKind] = if kvstore {
                    &[AppKind::Medledger, AppKind::Kvstore]
                } else {
                    &[AppKind::Medledger]
                };
                let mut all: Vec<LoadReport> = Vec::new();
                let mut kv_tx_size = None;
                for &app in apps {
                    let mut spec = Spec::consortium(BENCH_CHAIN_ID.into(), base_port, app)?;
                    spec.max_block_bytes = max_block_bytes;
                    spec.keep_recent = keep_recent;
                    spec.retain_blocks = retain_blocks;
                    if retain_blocks.is_some() {
                        spec.snapshot_interval = Some(0);
                    }
                    let net = ThrowawayNet::start(spec, me.clone()).await?;
                    for &rate in &rates {
                        for &c in &connections {
                            // A saturated cell leaves a backlog; the next cell starts on empty mempools.
                            net.wait_mempools_empty(std::time::Duration::from_secs(120))
                                .await?;
                            let cfg = LoadConfig {
                                kv_tx_size,
                                ..timing.config(rate, c, ctx.quiet)
                            };
                            let r =
                                loadgen::run(&Target::of_localnet(&net.net), &net.keyring, &cfg)
                                    .await?;
                            if out == Output::Text {
                                eprint!("{}", loadgen::table(&[&r]));
                            }
                            if app == AppKind::Medledger {
                                kv_tx_size = kv_tx_size.or(usize::try_from(r.tx_bytes_avg).ok());
                            }
                            all.push(r);
                        }
                    }
                }
                let mut collapses = Vec::new();
                for &app in apps {
                    let cells: Vec<&LoadReport> =
                        all.iter().filter(|r| r.app == app.name()).collect();
                    collapses.extend(loadgen::collapses(&cells));
                }
                if out == Output::Json {
                    print_json(&all)?;
                } else {
                    print!("{}", loadgen::table(&all.iter().collect::<Vec<_>>()));
                    for &app in apps {
                        let cells: Vec<&LoadReport> =
                            all.iter().filter(|r| r.app == app.name()).collect();
                        print!("{}", loadgen::saturation_summary(app.name(), &cells));
                    }
                    for r in all.iter().filter(|r| r.store_bytes.1 > 0) {
                        println!(
                            "{} at {} tx/s: the first node's state went {} → {} MiB, {} bytes per committed tx",
                            r.app,
                            r.offered_tx_per_s,
                            loadgen::mib(r.store_bytes.0),
                            loadgen::mib(r.store_bytes.1),
                            r.store_bytes_per_tx()
                        );
                    }
                    // Why, for each cell that had refusals: a soak read later needs to tell the
                    // chain's refusals from the generator's own (expired reads, code 98).
                    for r in all.iter().filter(|r| r.rejected_total > 0) {
                        let why: Vec<String> =
                            r.rejected.iter().map(|(k, n)| format!("{k} {n}")).collect();
                        println!(
                            "{} at {} tx/s, {} connections: refused where the sender saw it: {}",
                            r.app,
                            r.offered_tx_per_s,
                            r.connections,
                            why.join("; ")
                        );
                    }
                }
                for c in &collapses {
                    eprintln!("bench: {c}");
                }
                if loadgen::any_lost(&all.iter().collect::<Vec<_>>()) {
                    return Ok(lost());
                }
                if !collapses.is_empty() {
                    return Ok(Exit::Failed);
                }
            }
            BenchCmd::Starve {
                flood: kind,
                patient_every,
                member_rate,
                flood_rate,
                connections,
                flood_connections,
                flood_patients,
                timing,
                base_port,
                max_block_bytes,
            } => {
                let kind = kind.kind();
                let cfg = LoadConfig {
                    members_only: true,
                    broadcast: Broadcast::Async,
                    ..timing.config(member_rate, connections, ctx.quiet)
                };
                let mut spec =
                    Spec::consortium(BENCH_CHAIN_ID.into(), base_port, AppKind::Medledger)?;
                spec.max_block_bytes = Some(max_block_bytes);
                let net = ThrowawayNet::start(spec, me.clone()).await?;
                let target = Target::of_localnet(&net.net);
                // The members' setup first (their patients' consents go through the patients'
                // lane the flood fills), then the flood's own enrolments. A flooding member
                // offers none of the measured load.
                let members = loadgen::prepare_excluding(
                    &target,
                    &net.keyring,
                    &cfg,
                    kind.flooding_members(),
                )
                .await?;
                let mut flood = Flood::prepare(
                    &target,
                    &net.keyring,
                    FloodConfig {
                        kind,
                        rate: flood_rate,
                        connections: flood_connections,
                        // It starts before the members' timed phase and floods until their
                        // drain ends (then it is stopped).
                        duration: cfg.duration
                            + FLOOD_HEAD_START * 2
                            + cfg.drain * loadgen::MAX_DRAIN_FACTOR,
                        patients: flood_patients,
                    },
                )
                .await?;
                if cfg.progress {
                    eprintln!(
                        "flood ({}): {flood_rate} tx/s of {}",
                        kind.name(),
                        kind.describe()
                    );
                }
                let victim = flood.take_victim();
                let from = loadgen::flood::latest_height(&target).await?;
                let stop = Arc::new(AtomicBool::new(false));
                let flooding = tokio::spawn(flood.run(target.clone(), stop.clone()));
                tokio::time::sleep(FLOOD_HEAD_START).await;
                let patient = victim.map(|v| {
                    tokio::spawn(v.run(
                        std::time::Duration::from_secs(patient_every.max(1)),
                        stop.clone(),
                    ))
                });
                let members = members.run_by_key(&target, &cfg).await;
                stop.store(true, Ordering::Release);
                let flood_report = flooding.await??;
                let patient = match patient {
                    Some(t) => Some(t.await??),
                    None => None,
                };
                let (members, by_key) = members?;
                let to = loadgen::flood::latest_height(&target).await?;
                let (in_blocks, in_blocks_by_key) =
                    loadgen::flood::block_txs(&target, from + 1, to).await?;
                let mut victims = Vec::new();
                let mut flooder_txs_in_blocks = None;
                for (id, _, _) in medledger_devnet::localnet::MEMBERS {
                    let key = net.keyring.get(id)?.verifying_key().to_bytes().to_vec();
                    if kind.flooding_members().contains(&id) {
                        flooder_txs_in_blocks =
                            Some(in_blocks_by_key.get(&key).copied().unwrap_or(0));
                        continue;
                    }
                    let c = by_key.get(&key).copied().unwrap_or_default();
                    victims.push(Victim::new(
                        format!("member {id}"),
                        c.sent,
                        c.committed,
                        Default::default(),
                    ));
                }
                victims.extend(patient.into_iter().flatten());
                let report = StarveReport::new(
                    members,
                    flood_report,
                    victims,
                    flooder_txs_in_blocks,
                    in_blocks,
                    to - from,
                );
                if out == Output::Json {
                    print_json(&report)?;
                } else {
                    print!(
                        "{}{}{}",
                        loadgen::table(&[&report.members]),
                        loadgen::details(&report.members),
                        report.text()
                    );
                }
                if loadgen::any_lost(&[&report.members]) {
                    return Ok(lost());
                }
                if report.starved {
                    return Ok(Exit::Failed);
                }
            }
            BenchCmd::Vault {
                record_bytes,
                records,
                sequential,
                readers,
                rounds,
                base_port,
            } => {
                let (net, lab, hospital) = gateway_net(base_port, me.clone()).await?;
                let box_key = medledger_gateway::keyfiles::load_box_key(
                    &net.net.gateway_dir(hospital).join("box.key"),
                )?;
                let rpc = net.net.spec.nodes[hospital].rpc_url();
                let report = medledger_gateway::bench::run(
                    medledger_gateway::bench::Parties {
                        rpc: &rpc,
                        custodian: (
                            "lab-b",
                            net.keyring.get("lab-b")?,
                            net.net.spec.nodes[lab].gateway_url(),
                        ),
                        reader: ("hospital-a", net.keyring.get("hospital-a")?, box_key),
                    },
                    &medledger_gateway::bench::VaultBench {
                        record_bytes,
                        records,
                        sequential_reads: sequential,
                        readers,
                        rounds,
                        progress: !ctx.quiet,
                    },
                )
                .await?;
                if out == Output::Json {
                    print_json(&report)?;
                } else {
                    print!("{}", report.text());
                }
                if report.concurrent_errors != 0 {
                    return Ok(Exit::Failed);
                }
            }
            BenchCmd::GatewayFlood {
                phase_secs,
                flood_rate,
                flood_connections,
                victim_rate,
                base_port,
            } => {
                let (net, lab, hospital) = gateway_net(base_port, me.clone()).await?;
                let report = medledger_gateway::flood::run(
                    &net.net.spec.nodes[hospital].rpc_url(),
                    &net.net.spec.nodes[lab].gateway_url(),
                    "hospital-a",
                    &net.keyring.get("hospital-a")?,
                    &medledger_gateway::flood::FloodBench {
                        phase_secs,
                        flood_rate,
                        flood_connections,
                        victim_rate,
                        progress: !ctx.quiet,
                    },
                )
                .await?;
                if out == Output::Json {
                    print_json(&report)?;
                } else {
                    print!("{}", report.text());
                }
                if !report.held {
                    return Ok(Exit::Failed);
                }
            }
        }
        Ok(Exit::Ok)
    }
}

/// A throwaway localnet whose members run gateways, with the indexes of lab-b and hospital-a.
async fn gateway_net(
    base_port: u16,
    me: std::path::PathBuf,
) -> anyhow::Result<(ThrowawayNet, usize, usize)> {
    let mut spec = Spec::consortium(BENCH_CHAIN_ID.into(), base_port, AppKind::Medledger)?;
    spec.gateways = true;
    let net = ThrowawayNet::start(spec, me).await?;
    let idx = |m: &str| net.net.spec.nodes.iter().position(|n| n.name == m);
    let lab = idx("lab-b").context("lab-b")?;
    let hospital = idx("hospital-a").context("hospital-a")?;
    Ok((net, lab, hospital))
}

/// The exit of a bench that lost txs (sent, never committed, no refusal the sender saw).
fn lost() -> Exit {
    eprintln!(
        "bench: txs were sent and never committed (LOST in the verdict column): a failure, see docs/performance.md"
    );
    Exit::Failed
}

/// How long the flood runs before the members' timed phase starts (so the mempools are
/// already flooded).
const FLOOD_HEAD_START: std::time::Duration = std::time::Duration::from_secs(3);

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

/// Starts a throwaway localnet of `app`, runs `cfg` on it, stops it.
async fn bench_on_throwaway(
    app: AppKind,
    base_port: u16,
    max_block_bytes: Option<u64>,
    me: &std::path::Path,
    cfg: &LoadConfig,
) -> anyhow::Result<LoadReport> {
    let mut spec = Spec::consortium(BENCH_CHAIN_ID.into(), base_port, app)?;
    spec.max_block_bytes = max_block_bytes;
    let net = ThrowawayNet::start(spec, me.to_path_buf()).await?;
    if cfg.progress {
        eprintln!("{} localnet up in {}", app.name(), net.net.dir.display());
    }
    loadgen::run(&Target::of_localnet(&net.net), &net.keyring, cfg).await
}

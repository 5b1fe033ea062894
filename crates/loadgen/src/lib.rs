//! A load generator for a 4-validator localnet: pre-signed transactions at a fixed offered rate
//! over N connections through CometBFT's RPC, each tracked to the block that commits it.
//!
//! # Method
//!
//! 1. **Setup (medledger only, not timed).** `patients` fresh patient keys register, each grants
//!    one consent (`Observation`, TREAT) to every member, plus a few *spare* consents to
//!    insurer-c that the timed phase revokes. Everything is committed (sent with
//!    `broadcast_tx_async`, see below), and the spares' consent ids are read from the block
//!    results, before timing starts.
//! 2. **Pre-signing.** Every tx of the timed phase is signed up front (signing is not part of
//!    what we measure). The mix is 90 % `LogAccess` (signed by the four members' admin keys,
//!    always permitted by a setup consent), 8 % `GrantConsent` and 2 % `RevokeConsent` (a spare;
//!    when none is left, a grant instead), chosen by a seeded PRNG. For the kvstore baseline the
//!    txs are unique `key=value` strings padded to the average size of the medledger txs.
//! 3. **Sending.** Tx *i* is due at `i / rate` seconds. Each connection is one tokio task with its
//!    own `HttpClient` to one node (connection *j* → node *j* mod 4); it sends its txs one at a
//!    time, at their due time or at once if it is behind, with `broadcast_tx_sync` (the default:
//!    CheckTx rejections are counted by code) or `broadcast_tx_async` ([`Broadcast`]). Sending
//!    stops at `duration`; txs not sent by then are not counted.
//! 4. **Tracking.** One poller asks node 0 for `/status` every 50 ms and fetches `/block` and
//!    `/block_results` of each new height, matching SHA-256 of each tx (CometBFT's tx hash) to
//!    the plan. After sending, it waits for the accepted txs still in mempools while they keep
//!    committing: until none is left, or none commits for `drain` (at most 12 × `drain`).
//!
//! # Why the routing matters
//!
//! The access logs (90 % of the mix) are *unordered*: each carries a random nonce and a
//! `valid_until` ([`UNORDERED_VALIDITY_AFTER_DUE_SECS`] after its due time) instead of a
//! sequence, as a member's many servers would send them. They go over every connection in turn
//! (tx *i* → connection *i* mod N), and a refused one affects no other.
//!
//! Consent grants and revocations stay *ordered*: every patient has a strictly sequential
//! sequence number, and CheckTx checks it against committed state *plus this node's mempool*
//! (`SEQUENCE_GAP`, code 8, for a number that skips ahead). So all txs of one patient go over
//! **one** connection (patient `p` uses `(p + 4) mod N`), hence to one node, in order. When one
//! of them is refused where the sender sees it (a CheckTx code with `sync`, a full mempool with
//! either mode), its later txs could only be `SEQUENCE_GAP`: the sender does not send them and
//! counts them as refused (`client: not sent, …`), where a real client would re-sign them.
//!
//! # What the numbers mean, and their limits
//!
//! - **Latency** is submit → commit: from just before `broadcast_tx_sync` to the local
//!   wall-clock instant at which the poller first saw, in node 0's `/status`, a height whose block
//!   holds the tx. It includes up to one poll interval (50 ms) of polling delay, and measures
//!   commit as seen from node 0. Block header times are not used: they are the proposer's clock
//!   (BFT time), not ours. Percentiles are nearest-rank, in integers, over committed txs.
//! - **Committed tx/s** counts txs applied with code 0, over the blocks seen while sending: the
//!   txs of every such block but the first, divided by the time between the first and the last
//!   of them being seen. This is unbiased by the pipeline delay at both ends of the run; with few
//!   blocks (short runs) it is noisy by about one block's worth of txs.
//!   *Saturated* means below 90 % of the offered rate, as in CometBFT's QA method.
//!   *Sender-bound* means the connections could not even send 90 % of the offered rate: with
//!   `sync`, each connection waits one CheckTx round trip per tx, which behind a socket ABCI app
//!   includes CometBFT's 20 ms ABCI flush throttle (about 40–50 tx/s per connection), while
//!   the in-process kvstore answers at once. Such a run measures the client pattern, not the
//!   chain's capacity: use more connections or `async`.
//! - **Rejected** are keyed by where: `check:` (CheckTx code), `deliver:` (in a block but refused
//!   by FinalizeBlock), `rpc:` (the node refused the request, e.g. a full mempool) or `client:`
//!   (not sent: an earlier tx of its ordered signer was refused).
//! - **Lost** txs were accepted (or sent with `async`, which does not report CheckTx) and
//!   neither committed nor refused where the sender saw it; any makes the bench exit 2.
//! - **CPU and RSS** are read with `procfs` from `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status`
//!   (VmRSS, VmHWM) of the PIDs in the localnet's PID files, at the start and end of sending.
//!   CPU is in millicores (1000 = one core busy the whole time). The generator runs on the same
//!   machine and takes its share of the cores; its own CPU is reported too.
//! - On a laptop or a shared 2-core machine everything shares the CPU: compare runs taken on the
//!   same quiet machine, and prefer the medledger / kvstore *ratio* to absolute numbers.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use medledger_tx::limits::MAX_CONSENTS_PER_GRANTEE;
use medledger_tx::pb::{self, tx_body::Msg, Purpose, TxBody};
use medledger_tx::{ids, sign_tx};
use serde::Serialize;
use tendermint::block::Height;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient};

use medledger_client::unordered::now_secs;
use medledger_client::Keyring;
use medledger_devnet::localnet::{AppKind, Localnet, NodeSpec, Proc, MEMBERS};

pub mod flood;

/// Share of `LogAccess` in the timed mix, in percent.
pub const ACCESS_PCT: u64 = 90;
/// Share of `GrantConsent`, in percent; the rest are `RevokeConsent`.
pub const GRANT_PCT: u64 = 8;
/// Share of `RevokeConsent`, in percent.
pub const REVOKE_PCT: u64 = 100 - ACCESS_PCT - GRANT_PCT;
/// Largest number of txs one run may plan: the plan is held in memory, pre-signed.
pub const MAX_PLANNED_TXS: u64 = 2_000_000;
/// Most connections.
pub const MAX_CONNECTIONS: usize = 256;
/// Most patients the setup phase creates.
pub const MAX_PATIENTS: usize = 10_000;
/// Most spare consents per patient (setup cost grows with them).
const MAX_SPARES: u64 = 16;
/// The longest drain, in multiples of [`LoadConfig::drain`]: an overloaded chain's backlog is
/// drained while it keeps committing, but not forever.
pub const MAX_DRAIN_FACTOR: u32 = 12;
/// How often the poller asks for the latest height; also the resolution of latencies.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Timeout of one RPC request.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the setup phase may take to commit.
const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Seed of the PRNG that picks the mix: the same config gives the same sequence of kinds.
const MIX_SEED: u64 = 0x6d65_646c_6564_6765;

/// What to send, how fast and for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Offered load, tx/s.
    pub rate: u64,
    /// Concurrent connections (each its own RPC client, spread over the nodes).
    pub connections: usize,
    /// How long to send.
    pub duration: Duration,
    /// Patients created by the setup phase (medledger only).
    pub patients: usize,
    /// After sending, how long to wait for the next of the accepted txs to commit: the drain
    /// goes on while they keep committing (up to [`MAX_DRAIN_FACTOR`] × this), and ends when
    /// all are committed or none was for this long.
    pub drain: Duration,
    /// Size of the kvstore txs (default: the size of a sample of medledger txs).
    pub kv_tx_size: Option<usize>,
    /// Print a progress line every second to stderr.
    pub progress: bool,
    /// How the timed phase submits txs.
    pub broadcast: Broadcast,
    /// Only members' access logs in the timed phase (no consent changes): the load whose
    /// committed rate `bench starve` checks under a flood.
    pub members_only: bool,
}

/// How txs are submitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Broadcast {
    /// `broadcast_tx_sync`: wait for each tx's CheckTx, so rejections are counted by code. One
    /// connection then carries one tx per CheckTx round trip; behind a socket ABCI app (medledger)
    /// that round trip includes CometBFT's 20 ms flush throttle of the ABCI socket client, so a
    /// connection tops out near 40–50 tx/s. The in-process kvstore has no such wait.
    #[default]
    Sync,
    /// `broadcast_tx_async`: return once CometBFT has queued the CheckTx (in order, on its one
    /// ABCI mempool connection), as CometBFT's own QA load tool does. Sequences still arrive in
    /// order; a tx refused by CheckTx is not seen and ends as *uncommitted*.
    Async,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            rate: 200,
            connections: 2,
            duration: Duration::from_secs(10),
            patients: 200,
            drain: Duration::from_secs(10),
            kv_tx_size: None,
            progress: true,
            broadcast: Broadcast::Sync,
            members_only: false,
        }
    }
}

impl LoadConfig {
    /// How many txs the timed phase plans: `rate × duration`.
    pub fn planned(&self) -> anyhow::Result<u64> {
        let ms = u64::try_from(self.duration.as_millis()).context("duration too long")?;
        let n = self
            .rate
            .checked_mul(ms)
            .context("rate × duration overflows")?
            / 1000;
        if n > MAX_PLANNED_TXS {
            bail!("rate × duration is {n} txs; the limit is {MAX_PLANNED_TXS} (they are pre-signed in memory)");
        }
        Ok(n)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.rate == 0 || self.duration.is_zero() {
            bail!("rate and duration must be positive");
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            bail!("connections must be 1..={MAX_CONNECTIONS}");
        }
        if self.patients == 0 || self.patients > MAX_PATIENTS {
            bail!("patients must be 1..={MAX_PATIENTS}");
        }
        self.planned().map(|_| ())
    }
}

/// The processes of one node, for CPU and memory readings.
#[derive(Clone, Debug)]
pub struct NodeProcs {
    /// Node name.
    pub name: String,
    /// PID of CometBFT.
    pub cometbft: Option<u32>,
    /// PID of the medledger app (none for kvstore).
    pub app: Option<u32>,
    /// The app's state directory (none for kvstore or a remote node).
    pub app_data: Option<std::path::PathBuf>,
}

/// Where to send: the app behind the nodes, their RPC URLs, and their processes.
#[derive(Clone, Debug)]
pub struct Target {
    /// The application the validators run.
    pub app: AppKind,
    /// RPC URLs; connection `j` goes to `rpc[j mod len]`; commits are tracked on `rpc[0]`.
    pub rpc: Vec<String>,
    /// Processes to sample (may be empty when the nodes are not local).
    pub nodes: Vec<NodeProcs>,
}

impl Target {
    /// Every node of a running localnet, with the PIDs from its PID files.
    pub fn of_localnet(net: &Localnet) -> Target {
        let nodes = (0..net.spec.nodes.len())
            .map(|i| NodeProcs {
                name: net.spec.nodes[i].name.clone(),
                cometbft: net.running_pid(i, Proc::CometBft),
                app: net.running_pid(i, Proc::App),
                app_data: (net.spec.app == AppKind::Medledger).then(|| net.node_dir(i).join("app")),
            })
            .collect();
        Target {
            app: net.spec.app,
            rpc: net.spec.nodes.iter().map(NodeSpec::rpc_url).collect(),
            nodes,
        }
    }
}

/// Submit → commit latencies of the committed txs, in milliseconds (from [`Latencies`], an HDR
/// histogram: within 0.1 %).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Latency {
    /// Median.
    pub p50_ms: u64,
    /// 95th percentile.
    pub p95_ms: u64,
    /// 99th percentile.
    pub p99_ms: u64,
    /// Largest.
    pub max_ms: u64,
}

/// CPU and memory of one process over the sending window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcUsage {
    /// The PID.
    pub pid: u32,
    /// CPU time (user + system) over wall time, in millicores: 1000 = one core all the time.
    pub cpu_millicores: u64,
    /// Resident memory at the end of sending (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident memory over the process's life (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

/// CPU and memory of one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeUsage {
    /// Node name.
    pub name: String,
    /// CometBFT.
    pub cometbft: Option<ProcUsage>,
    /// The medledger app (none for kvstore).
    pub app: Option<ProcUsage>,
}

impl NodeUsage {
    /// CometBFT plus app, millicores.
    pub fn cpu_millicores(&self) -> u64 {
        self.cometbft.map_or(0, |p| p.cpu_millicores) + self.app.map_or(0, |p| p.cpu_millicores)
    }
    /// CometBFT plus app, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.cometbft.map_or(0, |p| p.rss_kib) + self.app.map_or(0, |p| p.rss_kib)
    }
}

/// The result of one load run.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// `medledger` or `kvstore`.
    pub app: String,
    /// Offered load, tx/s.
    pub offered_tx_per_s: u64,
    /// Connections.
    pub connections: usize,
    /// Planned sending time, ms.
    pub duration_ms: u64,
    /// Average size of the planned txs, bytes.
    pub tx_bytes_avg: u64,
    /// Txs planned (`rate × duration`).
    pub planned: u64,
    /// Txs sent.
    pub sent: u64,
    /// Sent over the actual sending time, tx/s (below offered when the connections fall behind).
    pub sent_tx_per_s: u64,
    /// Txs that passed CheckTx.
    pub accepted: u64,
    /// Txs in a block and applied (code 0).
    pub committed: u64,
    /// Committed tx/s (see the module docs for the estimator).
    pub committed_tx_per_s: u64,
    /// Rejected txs by where and why: `check: NAME (code)`, `deliver: …`, `rpc: …`.
    pub rejected: BTreeMap<String, u64>,
    /// Sum of `rejected`.
    pub rejected_total: u64,
    /// Accepted by CheckTx but not seen in a block by the end of the drain.
    pub uncommitted: u64,
    /// Extra inclusions of a tx already seen in an earlier block (should be 0).
    pub duplicates: u64,
    /// Copies of awaited txs the drain resent when the chain stopped committing them (txs a
    /// mempool dropped after accepting them; see [`execute`]).
    pub resent: u64,
    /// Submit → commit latencies of committed txs.
    pub latency: Latency,
    /// Blocks that held at least one of our txs.
    pub blocks: u64,
    /// Whether committed tx/s is below 90 % of the offered rate.
    pub saturated: bool,
    /// Whether the connections sent under 90 % of the offered rate: the generator, not (only)
    /// the chain, limited the run; more connections or `async` would offer more.
    pub sender_bound: bool,
    /// `sync` or `async`.
    pub broadcast: Broadcast,
    /// Per-node CPU and memory over the sending window.
    pub nodes: Vec<NodeUsage>,
    /// CPU of the load generator itself over the sending window, millicores.
    pub loadgen_cpu_millicores: u64,
    /// Bytes of the first node's state directory before sending and after the drain (0 for
    /// kvstore or a remote node).
    pub store_bytes: (u64, u64),
}

impl LoadReport {
    /// How much the first node's state grew per committed tx, in bytes (negative when pruning
    /// and compaction shrank it).
    pub fn store_bytes_per_tx(&self) -> i64 {
        let grown = i64::try_from(self.store_bytes.1).unwrap_or(i64::MAX)
            - i64::try_from(self.store_bytes.0).unwrap_or(i64::MAX);
        grown / i64::try_from(self.committed.max(1)).unwrap_or(i64::MAX)
    }
}

/// Bytes of the files under `dir` (0 when it cannot be read).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

impl LoadReport {
    /// Every node's CPU, millicores.
    pub fn cpu_millicores(&self) -> u64 {
        self.nodes.iter().map(NodeUsage::cpu_millicores).sum()
    }
    /// Every node's RSS, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.nodes.iter().map(NodeUsage::rss_kib).sum()
    }
}

/// Runs the setup (medledger), then the timed load, and reports. `keyring` holds the members'
/// admin keys (unused for kvstore).
pub async fn run(
    target: &Target,
    keyring: &Keyring,
    cfg: &LoadConfig,
) -> anyhow::Result<LoadReport> {
    prepare(target, keyring, cfg).await?.run(target, cfg).await
}

/// A load ready to send: the setup done and the timed phase signed.
pub struct Prepared {
    plan: Plan,
}

/// Runs the setup (medledger) and signs the timed phase, without sending it (see [`run`]).
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

/// The txs of one phase, in due order.
struct Plan {
    txs: Vec<Planned>,
}

struct Planned {
    bytes: Vec<u8>,
    /// Which connection sends it.
    conn: usize,
    /// When it is due, from the start of the phase.
    at: Duration,
    /// The ordered signer it depends on (an index unique in the plan), `None` when unordered:
    /// once a tx of that signer is refused where the sender sees it, its later txs (the next
    /// sequences) can only be `SEQUENCE_GAP`, so the sender does not send them.
    ordered: Option<usize>,
}

fn average_size(plan: &Plan) -> u64 {
    let total: u64 = plan.txs.iter().map(|t| t.bytes.len() as u64).sum();
    total.checked_div(plan.txs.len() as u64).unwrap_or(0)
}

/// Due time of tx `i` at `rate` tx/s.
fn due(i: u64, rate: u64) -> Duration {
    Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate.max(1))
}

/// splitmix64: a tiny deterministic PRNG, so the mix does not depend on a crate's algorithm.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n ≥ 1) for picking a mix.
    fn below(&mut self, n: usize) -> usize {
        // u64 → usize is lossless on the 64-bit targets we build for; the modulo keeps it < n.
        (self.next() % (n.max(1) as u64)) as usize
    }
}

fn random_u64() -> anyhow::Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(u64::from_le_bytes(b))
}

fn random_key() -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Connection of member `m`: members first, so that with ≥ 4 connections each has its own.
fn member_conn(m: usize, conns: usize) -> usize {
    m % conns.max(1)
}

/// Connection of patient `p`: after the members', so patients fill the other connections first.
fn patient_conn(p: usize, conns: usize) -> usize {
    (p + MEMBERS.len()) % conns.max(1)
}

/// Data classes of the grants in the timed phase (FHIR resource types).
const GRANT_CLASSES: [&str; 4] = [
    "Observation",
    "DiagnosticReport",
    "MedicationRequest",
    "Immunization",
];
/// The member that receives the spare consents revoked by the timed phase.
const SPARE_GRANTEE: usize = 2;

fn grant_msg(grantee: &str, class: &str, purpose: Purpose) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec![class.into()],
        purposes: vec![purpose as i32],
        not_before: 0,
        not_after: 0,
        ..Default::default()
    })
}

struct Signer {
    key: SigningKey,
    next_seq: u64,
}

/// How long after its due time a generated unordered tx stays valid, in seconds: the ledger
/// allows at most 60 s after the block time, and the plan is signed before sending starts (a
/// few seconds for a large plan), so this leaves both the signing time and the queueing of an
/// overloaded chain room.
pub const UNORDERED_VALIDITY_AFTER_DUE_SECS: u64 = 55;

impl Signer {
    /// Signs `msg` with the next sequence number.
    fn sign(&mut self, chain_id: &str, msg: Msg) -> Vec<u8> {
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

struct Patient {
    signer: Signer,
    id: String,
    /// Ids of the spare consents, revoked in order.
    spares: Vec<String>,
    /// Consents granted per member (the ledger caps them at MAX_CONSENTS_PER_GRANTEE).
    grants: [u64; 4],
}

/// A planned tx: its bytes, connection, and ordered signer ([`Planned::ordered`]).
type Sent = (Vec<u8>, usize, Option<usize>);

/// The signer index of patient `p` in [`Planned::ordered`] (members are 0..4).
fn patient_signer(p: usize) -> usize {
    MEMBERS.len() + p
}

/// The signers of a medledger run and their sequence numbers.
struct Workload {
    chain_id: String,
    members: Vec<Signer>,
    patients: Vec<Patient>,
    /// Next spare to revoke, counted over (spare index, patient).
    revoke_cursor: usize,
    /// Random prefix of this run's unordered nonces (the rest is the tx's index).
    salt: [u8; 8],
    /// Unix second at which the timed plan is signed: unordered txs are valid until
    /// [`UNORDERED_VALIDITY_AFTER_DUE_SECS`] after `epoch` + their due time.
    epoch: u64,
}

impl Workload {
    /// Registers the patients and their consents and waits until all of it is committed.
    async fn setup(
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
        let mut patients = Vec::with_capacity(cfg.patients);
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
            let conn = patient_conn(p, cfg.connections);
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
                        .sign(&chain_id, grant_msg(member, "Observation", Purpose::Treat)),
                );
            }
            for _ in 0..spares {
                let i = push(patient.signer.sign(
                    &chain_id,
                    grant_msg(MEMBERS[SPARE_GRANTEE].0, "Claim", Purpose::Hpaymt),
                ));
                spare_txs.push((p, i));
                patient.grants[SPARE_GRANTEE] += 1;
            }
            patients.push(patient);
        }
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
        for (p, i) in spare_txs {
            let id = states
                .get(i)
                .and_then(|s| s.consent_id.clone())
                .context("a spare grant emitted no consent_id")?;
            if let Some(patient) = patients.get_mut(p) {
                patient.spares.push(id);
            }
        }
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

    /// The timed phase: `total` txs of the mix, pre-signed, due at `rate`.
    fn timed_plan(&mut self, cfg: &LoadConfig, total: u64) -> Plan {
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

/// kvstore txs: unique `key=value` strings of `size` bytes (the kvstore accepts exactly one `=`,
/// neither first nor last).
fn kv_plan(cfg: &LoadConfig, total: u64, size: usize, nonce: u64) -> Plan {
    let txs = (0..total)
        .map(|i| {
            let key = format!("bench{nonce:016x}{i:010}");
            let pad = size.saturating_sub(key.len() + 1).max(1);
            let mut bytes = Vec::with_capacity(key.len() + 1 + pad);
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(b'=');
            bytes.resize(key.len() + 1 + pad, b'x');
            // u64 → usize: total is at most MAX_PLANNED_TXS.
            Planned {
                bytes,
                conn: (i as usize) % cfg.connections.max(1),
                at: due(i, cfg.rate),
                ordered: None,
            }
        })
        .collect();
    Plan { txs }
}

/// Where a planned tx stands.
#[derive(Clone, Debug, Default)]
struct TxState {
    submitted: Option<Instant>,
    accepted: bool,
    /// Why the node refused it at submission (CheckTx code or RPC error).
    refused: Option<String>,
    /// How many blocks hold it (more than 1 would be a duplicate).
    included: u32,
    /// When the poller first saw a block holding it.
    seen: Option<Instant>,
    /// FinalizeBlock code of its first inclusion.
    code: u32,
    /// `consent_id` of a `medledger.consent.granted` event, if it emitted one.
    consent_id: Option<String>,
}

impl TxState {
    /// Why it did not commit, if it did not.
    fn failure(&self, app: AppKind) -> Option<String> {
        if self.included > 0 {
            return (self.code != 0).then(|| format!("deliver: {}", code_name(app, self.code)));
        }
        self.refused.clone()
    }
}

fn code_name(app: AppKind, code: u32) -> String {
    match app {
        AppKind::Medledger => match medledger_tx::Code::from_value(code) {
            Some(c) => format!("{} ({code})", c.name()),
            None => format!("code {code}"),
        },
        AppKind::Kvstore => format!("code {code}"),
    }
}

/// A block that held some of our txs.
struct BlockSeen {
    seen: Instant,
    /// Our txs in it that were applied (code 0).
    ok: u64,
}

/// Every planned tx's state, shared by the senders and the poller.
struct Tracker {
    app: AppKind,
    index: BTreeMap<[u8; 32], usize>,
    states: Vec<TxState>,
    blocks: Vec<BlockSeen>,
    // Running counts for the progress line.
    sent: u64,
    refused: u64,
    committed: u64,
    /// Accepted and not yet seen in a block.
    awaiting: u64,
    /// Copies sent by the drain's resends.
    resent: u64,
    height: u64,
}

impl Tracker {
    fn new(plan: &Plan, app: AppKind) -> Tracker {
        let index = plan
            .txs
            .iter()
            .enumerate()
            .map(|(i, t)| (ids::tx_hash(&t.bytes), i))
            .collect();
        Tracker {
            app,
            index,
            states: vec![TxState::default(); plan.txs.len()],
            blocks: Vec::new(),
            sent: 0,
            refused: 0,
            committed: 0,
            awaiting: 0,
            resent: 0,
            height: 0,
        }
    }

    fn submitted(&mut self, i: usize, at: Instant) {
        if let Some(s) = self.states.get_mut(i) {
            s.submitted = Some(at);
            self.sent += 1;
        }
    }

    fn checked(&mut self, i: usize, refused: Option<String>) {
        let Some(s) = self.states.get_mut(i) else {
            return;
        };
        match refused {
            None => {
                s.accepted = true;
                if s.included == 0 {
                    self.awaiting += 1;
                }
            }
            Some(why) => {
                s.refused = Some(why);
                self.refused += 1;
            }
        }
    }

    /// Txs accepted and not yet seen in a block, in plan order.
    fn awaited(&self) -> Vec<usize> {
        (0..self.states.len())
            .filter(|&i| {
                self.states
                    .get(i)
                    .is_some_and(|s| s.accepted && s.included == 0 && s.refused.is_none())
            })
            .collect()
    }

    /// Tx `i` was resent; `refused` if the node refused the copy.
    fn resent(&mut self, i: usize, refused: Option<String>) {
        self.resent += 1;
        let Some(s) = self.states.get_mut(i) else {
            return;
        };
        if let (Some(why), 0) = (refused, s.included) {
            if s.refused.is_none() {
                s.refused = Some(why);
                self.refused += 1;
                self.awaiting = self.awaiting.saturating_sub(1);
            }
        }
    }

    fn record_block(
        &mut self,
        height: u64,
        seen: Instant,
        txs: &[Vec<u8>],
        results: &[tendermint::abci::types::ExecTxResult],
    ) -> anyhow::Result<()> {
        if txs.len() != results.len() {
            bail!(
                "block {height} holds {} txs but has {} results",
                txs.len(),
                results.len()
            );
        }
        let mut ok = 0;
        let mut ours = false;
        for (tx, result) in txs.iter().zip(results) {
            let Some(&i) = self.index.get(&ids::tx_hash(tx)) else {
                continue;
            };
            let Some(s) = self.states.get_mut(i) else {
                continue;
            };
            ours = true;
            s.included += 1;
            if s.included > 1 {
                continue;
            }
            s.seen = Some(seen);
            s.code = result.code.value();
            s.consent_id = consent_id_of(result);
            if s.accepted {
                self.awaiting = self.awaiting.saturating_sub(1);
            }
            if s.code == 0 {
                ok += 1;
                self.committed += 1;
            }
        }
        if ours {
            self.blocks.push(BlockSeen { seen, ok });
        }
        self.height = height;
        Ok(())
    }

    fn report(
        &self,
        cfg: &LoadConfig,
        app: AppKind,
        tx_bytes_avg: u64,
        started: Instant,
        send_elapsed: Duration,
    ) -> LoadReport {
        let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
        let (mut sent, mut accepted, mut committed, mut uncommitted, mut duplicates) =
            (0, 0, 0, 0, 0);
        let mut latencies = Latencies::new();
        for s in &self.states {
            sent += u64::from(s.submitted.is_some());
            accepted += u64::from(s.accepted);
            duplicates += u64::from(s.included.saturating_sub(1));
            if s.included > 0 && s.code == 0 {
                committed += 1;
                if let (Some(sub), Some(seen)) = (s.submitted, s.seen) {
                    latencies.record(seen.saturating_duration_since(sub));
                }
            } else if let Some(why) = s.failure(self.app) {
                *rejected.entry(why).or_default() += 1;
            } else if s.accepted {
                uncommitted += 1;
            }
        }
        let duration_ms = u64::try_from(cfg.duration.as_millis()).unwrap_or(u64::MAX);
        let committed_tx_per_s =
            self.committed_rate(committed, duration_ms, started + send_elapsed);
        LoadReport {
            app: app.name().into(),
            offered_tx_per_s: cfg.rate,
            connections: cfg.connections,
            duration_ms,
            tx_bytes_avg,
            planned: self.states.len() as u64,
            sent,
            sent_tx_per_s: per_second(sent, send_elapsed),
            accepted,
            committed,
            committed_tx_per_s,
            rejected_total: rejected.values().sum(),
            rejected,
            uncommitted,
            duplicates,
            resent: self.resent,
            latency: latencies.summary(),
            blocks: self.blocks.len() as u64,
            // Below 90 % of the offered rate, as CometBFT's QA method defines saturation.
            saturated: committed_tx_per_s.saturating_mul(10) < cfg.rate.saturating_mul(9),
            sender_bound: per_second(sent, send_elapsed).saturating_mul(10)
                < cfg.rate.saturating_mul(9),
            broadcast: cfg.broadcast,
            nodes: Vec::new(),
            loadgen_cpu_millicores: 0,
            store_bytes: (0, 0),
        }
    }

    /// Committed tx/s. A block holds the txs that arrived between the previous block's proposal
    /// and its own, so the txs of every block but the first, over the time from the first block
    /// to the last, is the commit rate. Only blocks seen while sending was still going on count:
    /// a later block would add the idle time after the last send to the span (and, when the chain
    /// keeps up, no txs), which reads low. Fallbacks for runs too short for two such blocks: all
    /// blocks, then committed txs over the planned duration.
    fn committed_rate(&self, committed: u64, duration_ms: u64, send_end: Instant) -> u64 {
        let during: Vec<&BlockSeen> = self
            .blocks
            .iter()
            .filter(|b| b.ok > 0 && b.seen <= send_end)
            .collect();
        let all: Vec<&BlockSeen> = self.blocks.iter().filter(|b| b.ok > 0).collect();
        for blocks in [during, all] {
            let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
                continue;
            };
            let span_ms = ms(last.seen.saturating_duration_since(first.seen));
            if blocks.len() >= 2 && span_ms > 0 {
                let after_first: u64 = blocks.iter().skip(1).map(|b| b.ok).sum();
                return after_first.saturating_mul(1000) / span_ms;
            }
        }
        committed.saturating_mul(1000) / duration_ms.max(1)
    }
}

fn consent_id_of(result: &tendermint::abci::types::ExecTxResult) -> Option<String> {
    result
        .events
        .iter()
        .filter(|e| e.kind == "medledger.consent.granted")
        .flat_map(|e| e.attributes.iter())
        .find(|a| a.key_str().ok() == Some("consent_id"))
        .and_then(|a| a.value_str().ok().map(String::from))
}

fn per_second(n: u64, elapsed: Duration) -> u64 {
    let ms = u64::try_from(elapsed.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    n.saturating_mul(1000) / ms
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Submit → commit latencies in an HDR histogram (HdrHistogram, as wrk2 and CometBFT's QA
/// tooling use): milliseconds from 1 ms to one hour at 3 significant digits, so a percentile
/// is within 0.1 % of the exact one and memory does not grow with the number of txs.
pub struct Latencies(hdrhistogram::Histogram<u64>);

impl Latencies {
    /// Latest latency kept: an hour (larger values are clamped to it).
    const MAX_MS: u64 = 3_600_000;

    /// An empty histogram.
    pub fn new() -> Latencies {
        // 1 ..= MAX_MS at 3 significant figures are valid bounds: this cannot fail.
        Latencies(
            hdrhistogram::Histogram::new_with_bounds(1, Self::MAX_MS, 3)
                .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}")),
        )
    }

    /// Records one latency (sub-millisecond counts as 1 ms, the poller's resolution anyway).
    pub fn record(&mut self, d: Duration) {
        self.0.saturating_record(ms(d).clamp(1, Self::MAX_MS));
    }

    /// The value at quantile `q` (0..=1), in ms; 0 with no samples.
    #[allow(clippy::float_arithmetic)] // a report's percentile, never state
    pub fn at(&self, q: f64) -> u64 {
        if self.0.is_empty() {
            0
        } else {
            self.0.value_at_quantile(q)
        }
    }

    /// p50, p95, p99 and max.
    pub fn summary(&self) -> Latency {
        Latency {
            p50_ms: self.at(0.50),
            p95_ms: self.at(0.95),
            p99_ms: self.at(0.99),
            max_ms: if self.0.is_empty() { 0 } else { self.0.max() },
        }
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

fn lock(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A sender that panicked cannot leave a state half-written that matters to a report.
    t.lock().unwrap_or_else(|e| e.into_inner())
}

fn http(url: &str) -> anyhow::Result<HttpClient> {
    let parsed: tendermint_rpc::HttpClientUrl = url
        .parse()
        .with_context(|| format!("bad node URL {url:?}"))?;
    HttpClient::builder(parsed)
        .compat_mode(CompatMode::V0_38)
        .timeout(RPC_TIMEOUT)
        .build()
        .context("building RPC client")
}

async fn chain_id(url: &str) -> anyhow::Result<String> {
    Ok(http(url)?
        .status()
        .await
        .with_context(|| format!("{url}/status"))?
        .node_info
        .network
        .to_string())
}

/// What a phase left behind.
struct Outcome {
    tracker: Tracker,
    /// From the start to the last send.
    send_elapsed: Duration,
}

/// Sends `plan` (tx *i* at `started + at`, until `deadline`), tracks it to its blocks, and after
/// the last send waits for the accepted txs to commit while they keep committing (`drain`
/// without one ends it).
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

/// Splits patients' setup txs (in order) into waves that fit the mempool's patients' lane:
/// at most [`LANE_WAVE`] txs and `max_bytes` per wave and [`LANE_SIGNER`] per signer, keeping
/// each signer's txs in order.
fn lane_waves(txs: &[Planned], max_bytes: u64) -> Vec<Vec<Planned>> {
    let mut waves: Vec<Vec<Planned>> = vec![Vec::new()];
    let mut per_signer: BTreeMap<Option<usize>, u64> = BTreeMap::new();
    let mut bytes = 0u64;
    for t in txs {
        let size = t.bytes.len() as u64 + 4;
        let full = waves.last().is_some_and(|w| {
            !w.is_empty() && (w.len() as u64 >= LANE_WAVE || bytes + size > max_bytes)
        }) || per_signer.get(&t.ordered).copied().unwrap_or(0) >= LANE_SIGNER;
        if full {
            waves.push(Vec::new());
            per_signer.clear();
            bytes = 0;
        }
        bytes += size;
        *per_signer.entry(t.ordered).or_default() += 1;
        if let Some(w) = waves.last_mut() {
            w.push(Planned {
                bytes: t.bytes.clone(),
                conn: t.conn,
                at: t.at,
                ordered: t.ordered,
            });
        }
    }
    waves
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

/// Patients' txs per setup wave: 3/4 of a node's patients' lane (`MEMPOOL_LANE_FULL` past
/// it), leaving room for others.
const LANE_WAVE: u64 = medledger_tx::limits::MEMPOOL_PATIENT_LANE * 3 / 4;
/// Txs of one patient per setup wave: what a node admits pending per patient key.
const LANE_SIGNER: u64 = medledger_tx::limits::MEMPOOL_PATIENT_SIGNER;

/// The members' admin keys (from the localnet's keyring) at their committed next sequences.
async fn member_signers(target: &Target, keyring: &Keyring) -> anyhow::Result<Vec<Signer>> {
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
async fn enrol(
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
    // The patients' own txs go to every node, and CheckTx admits only keys the ledger knows:
    // wait until each node has committed the enrolments (a node a block behind would refuse a
    // patient's first tx as an unknown signer, and an async sender never hears of it).
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
    if cfg.progress {
        eprintln!(
            "setup: members enrolled {} patients in {:.1} s",
            keys.len(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

async fn execute(
    target: &Target,
    plan: Plan,
    started: Instant,
    deadline: Option<Instant>,
    drain: Duration,
    broadcast: Broadcast,
    progress: Option<&str>,
) -> anyhow::Result<Outcome> {
    let tracker = Arc::new(Mutex::new(Tracker::new(&plan, target.app)));
    let poll_client = http(&target.rpc[0])?;
    let from = poll_client
        .status()
        .await
        .context("node /status")?
        .sync_info
        .latest_block_height
        .value();
    let sends_done = Arc::new(AtomicBool::new(false));
    let plan = Arc::new(plan);
    let poller = tokio::spawn(poll_commits(
        poll_client,
        tracker.clone(),
        plan.clone(),
        from,
        sends_done.clone(),
        drain,
    ));
    let ticker = progress.map(|label| {
        tokio::spawn(print_progress(
            label.to_string(),
            tracker.clone(),
            plan.txs.len(),
            started,
        ))
    });

    let conns = plan.txs.iter().map(|t| t.conn + 1).max().unwrap_or(0);
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); conns];
    for (i, t) in plan.txs.iter().enumerate() {
        if let Some(q) = queues.get_mut(t.conn) {
            q.push(i);
        }
    }
    let mut senders = Vec::new();
    for (j, queue) in queues.into_iter().enumerate() {
        let client = http(&target.rpc[j % target.rpc.len()])?;
        senders.push(tokio::spawn(send_queue(
            client,
            plan.clone(),
            queue,
            tracker.clone(),
            started,
            deadline,
            broadcast,
        )));
    }
    let mut send_error = None;
    for s in senders {
        if let Err(e) = s.await {
            send_error.get_or_insert(anyhow::anyhow!("a sender task failed: {e}"));
        }
    }
    let send_elapsed = started.elapsed();
    sends_done.store(true, Ordering::Release);
    let polled = poller.await;
    if let Some(t) = ticker {
        // Abort only requests cancellation; awaiting it drops the task's tracker handle.
        t.abort();
        let _ = t.await;
    }
    if let Some(e) = send_error {
        return Err(e);
    }
    polled.context("the commit poller failed")??;
    let tracker = Arc::try_unwrap(tracker).map_err(|_| anyhow::anyhow!("tracker still shared"))?;
    Ok(Outcome {
        tracker: tracker.into_inner().unwrap_or_else(|e| e.into_inner()),
        send_elapsed,
    })
}

/// One connection: its txs in plan order, one request at a time, each at its due time.
async fn send_queue(
    client: HttpClient,
    plan: Arc<Plan>,
    queue: Vec<usize>,
    tracker: Arc<Mutex<Tracker>>,
    started: Instant,
    deadline: Option<Instant>,
    broadcast: Broadcast,
) {
    // Ordered signers of this connection with a refused tx (all of a signer's txs use one
    // connection): their later sequences cannot apply.
    let mut broken = std::collections::BTreeSet::new();
    for i in queue {
        let Some(tx) = plan.txs.get(i) else { continue };
        let due_at = started + tx.at;
        if deadline.is_some_and(|d| due_at >= d || Instant::now() >= d) {
            break;
        }
        tokio::time::sleep_until(due_at.into()).await;
        lock(&tracker).submitted(i, Instant::now());
        if tx.ordered.is_some_and(|s| broken.contains(&s)) {
            // A client re-signs these after the refusal; the generator's plan is fixed, so it
            // counts them as refused where the sender sees it, never as silently lost.
            lock(&tracker).checked(i, Some(SKIPPED.into()));
            continue;
        }
        // Either way the next request goes out only after this one's answer, which CometBFT
        // gives after queueing its CheckTx: a signer's txs reach the app in order.
        let answer = match broadcast {
            Broadcast::Sync => client
                .broadcast_tx_sync(tx.bytes.clone())
                .await
                .map(|r| r.code.value()),
            Broadcast::Async => client
                .broadcast_tx_async(tx.bytes.clone())
                .await
                .map(|r| r.code.value()),
        };
        let refused = match answer {
            Ok(0) => None,
            Ok(code) => Some(format!("check: {}", code_name(lock(&tracker).app, code))),
            Err(e) => Some(format!("rpc: {}", rpc_error_kind(&e.to_string()))),
        };
        if refused.is_some() {
            if let Some(s) = tx.ordered {
                broken.insert(s);
            }
        }
        lock(&tracker).checked(i, refused);
    }
}

/// Why a planned tx was not sent: an earlier tx of its ordered signer was refused.
const SKIPPED: &str = "client: not sent, an earlier tx of its signer was refused";

/// A short, stable name for an RPC failure, so reports group them.
fn rpc_error_kind(message: &str) -> String {
    for known in [
        "mempool is full",
        "tx already exists in cache",
        "timed out",
        "connection refused",
    ] {
        if message.contains(known) {
            return known.into();
        }
    }
    message.chars().take(80).collect()
}

/// Watches node 0 for new heights and records which of our txs each block holds.
async fn poll_commits(
    client: HttpClient,
    tracker: Arc<Mutex<Tracker>>,
    plan: Arc<Plan>,
    from: u64,
    sends_done: Arc<AtomicBool>,
    drain: Duration,
) -> anyhow::Result<()> {
    let mut next = from + 1;
    // When each height was first reported: the commit instant we attribute to its txs.
    let mut first_seen: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut done_at: Option<Instant> = None;
    // When the count of our committed txs last grew, and to what.
    let mut progress = (Instant::now(), 0u64);
    let mut resends = 0;
    loop {
        if let Ok(status) = client.status().await {
            let now = Instant::now();
            let latest = status.sync_info.latest_block_height.value();
            for h in next..=latest {
                first_seen.entry(h).or_insert(now);
            }
            while next <= latest {
                let h = Height::try_from(next)?;
                // Results are stored just after the block; if they are not there yet, retry at
                // the next poll with the same first-seen time.
                let (Ok(block), Ok(results)) =
                    (client.block(h).await, client.block_results(h).await)
                else {
                    break;
                };
                let seen = first_seen.remove(&next).unwrap_or(now);
                lock(&tracker).record_block(
                    next,
                    seen,
                    &block.block.data,
                    &results.txs_results.unwrap_or_default(),
                )?;
                next += 1;
            }
        }
        if sends_done.load(Ordering::Acquire) {
            let since = *done_at.get_or_insert_with(Instant::now);
            let (awaiting, committed) = {
                let t = lock(&tracker);
                (t.awaiting, t.committed)
            };
            if committed != progress.1 {
                progress = (Instant::now(), committed);
            }
            let idle = progress.0.max(since).elapsed();
            if awaiting == 0 || idle >= drain || since.elapsed() >= drain * MAX_DRAIN_FACTOR {
                return Ok(());
            }
            if idle >= RESEND_IDLE && resends < MAX_RESENDS {
                // The chain commits none of ours while some are awaited: the mempools dropped
                // them (CometBFT drops a tx that passed CheckTx when the mempool filled in the
                // meantime, and tells no one). Resend them, in plan order so each ordered
                // signer's sequences arrive in order; a copy is never applied twice.
                resends += 1;
                resend_awaiting(&client, &plan, &tracker).await;
                progress.0 = Instant::now();
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// How long the drain waits without a commit of ours before it resends the awaited txs.
const RESEND_IDLE: Duration = Duration::from_secs(3);
/// How many times the drain resends the awaited txs.
const MAX_RESENDS: u32 = 2;

/// Resends every tx that was accepted and not yet seen in a block, in plan order, with
/// `broadcast_tx_sync`: one refused now is counted as refused (`resend: CODE`), so it is seen,
/// not lost.
async fn resend_awaiting(client: &HttpClient, plan: &Plan, tracker: &Mutex<Tracker>) {
    let awaited = lock(tracker).awaited();
    for i in awaited {
        let Some(tx) = plan.txs.get(i) else { continue };
        let refused = match client.broadcast_tx_sync(tx.bytes.clone()).await {
            Ok(r) if r.code.value() == 0 => None,
            Ok(r) => Some(format!(
                "resend: {}",
                code_name(lock(tracker).app, r.code.value())
            )),
            // Still in a mempool (its cache), or the node is busy: leave it awaited.
            Err(_) => None,
        };
        lock(tracker).resent(i, refused);
    }
}

async fn print_progress(
    label: String,
    tracker: Arc<Mutex<Tracker>>,
    planned: usize,
    started: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        let line = {
            let t = lock(&tracker);
            format!(
                "[{label}] {:>3} s  sent {}/{planned}  committed {}  rejected {}  in flight {}  height {}",
                started.elapsed().as_secs(),
                t.sent,
                t.committed,
                t.refused,
                t.awaiting,
                t.height
            )
        };
        eprintln!("{line}");
    }
}

// ---- reports for people ----

/// `v` tenths as `12.3`.
fn tenths(v: u64) -> String {
    format!("{}.{}", v / 10, v % 10)
}

/// `a / b` as `0.97` (hundredths, rounded down); `-` when `b` is 0.
pub fn ratio_text(a: u64, b: u64) -> String {
    match a.saturating_mul(100).checked_div(b) {
        Some(r) => format!("{}.{:02}", r / 100, r % 100),
        None => "-".into(),
    }
}

/// `a / b` in percent; `None` when `b` is 0.
pub fn ratio_percent(a: u64, b: u64) -> Option<u64> {
    a.saturating_mul(100).checked_div(b)
}

/// One row per report: the numbers of the module docs. CPU % is summed over the nodes (400 %
/// would be four cores); RSS is summed over the nodes' processes.
pub fn table(reports: &[&LoadReport]) -> String {
    let mut out = format!(
        "{:<10} {:>7} {:>5} {:>7} {:>9} {:>7} {:>6} {:>6} {:>6} {:>8} {:>6} {:>6} {:>8} {:>5}  {}\n",
        "app", "offered", "conns", "sent", "committed", "tx/s", "p50ms", "p95ms", "p99ms", "rejected", "uncomm", "cpu%", "rss MiB", "txB", "verdict"
    );
    for r in reports {
        out.push_str(&format!(
            "{:<10} {:>7} {:>5} {:>7} {:>9} {:>7} {:>6} {:>6} {:>6} {:>8} {:>6} {:>6} {:>8} {:>5}  {}\n",
            r.app,
            r.offered_tx_per_s,
            r.connections,
            r.sent,
            r.committed,
            r.committed_tx_per_s,
            r.latency.p50_ms,
            r.latency.p95_ms,
            r.latency.p99_ms,
            r.rejected_total,
            r.uncommitted,
            tenths(r.cpu_millicores()),
            tenths(r.rss_kib().saturating_mul(10) / 1024),
            r.tx_bytes_avg,
            verdict(r)
        ));
    }
    out
}

/// A cell's verdict: sender-bound, saturated or not, and `LOST n` when txs were sent and never
/// committed nor refused where the sender could see it. Lost txs are a failure, not a footnote:
/// `medledger bench` exits 2 when any cell has them.
pub fn verdict(r: &LoadReport) -> String {
    let v = match (r.saturated, r.sender_bound) {
        (_, true) => "SENDER-BOUND",
        (true, false) => "SATURATED",
        (false, false) => "no",
    };
    if r.uncommitted > 0 {
        format!("{v}, LOST {}", r.uncommitted)
    } else {
        v.to_string()
    }
}

/// Whether any report lost txs (see [`verdict`]).
pub fn any_lost(reports: &[&LoadReport]) -> bool {
    reports.iter().any(|r| r.uncommitted > 0)
}

/// Per node and process: CPU % and RSS MiB over the sending window, and the rejections.
pub fn details(r: &LoadReport) -> String {
    let proc_text = |p: &Option<ProcUsage>| match p {
        Some(p) => format!(
            "{:>6}% {:>7} MiB",
            tenths(p.cpu_millicores),
            tenths(p.rss_kib.saturating_mul(10) / 1024)
        ),
        None => format!("{:>7} {:>11}", "-", "-"),
    };
    let mut out = format!(
        "{} per node ({:<10} {:>17}   {:>17}):\n",
        r.app, "node", "cometbft cpu/rss", "app cpu/rss"
    );
    for n in &r.nodes {
        out.push_str(&format!(
            "  {:<12} {}   {}\n",
            n.name,
            proc_text(&n.cometbft),
            proc_text(&n.app)
        ));
    }
    out.push_str(&format!(
        "  load generator cpu {}%\n",
        tenths(r.loadgen_cpu_millicores)
    ));
    for (why, n) in &r.rejected {
        out.push_str(&format!("  rejected {n:>7}  {why}\n"));
    }
    if r.store_bytes.1 > 0 {
        out.push_str(&format!(
            "  state of the first node: {} MiB before, {} MiB after: {} bytes per committed tx\n",
            mib(r.store_bytes.0),
            mib(r.store_bytes.1),
            r.store_bytes_per_tx()
        ));
    }
    if r.resent > 0 {
        out.push_str(&format!(
            "  resent   {:>7}  copies of accepted txs a mempool had dropped (drain)\n",
            r.resent
        ));
    }
    out
}

/// medledger against the kvstore baseline under the same load.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// The medledger run.
    pub medledger: LoadReport,
    /// The kvstore run.
    pub kvstore: LoadReport,
    /// medledger / kvstore, in percent.
    pub ratio_percent: RatioPercent,
}

/// medledger / kvstore of each headline number, in percent (`None` when kvstore's is 0).
#[derive(Clone, Debug, Serialize)]
pub struct RatioPercent {
    /// Committed tx/s.
    pub committed_tx_per_s: Option<u64>,
    /// Median latency.
    pub p50: Option<u64>,
    /// 95th percentile latency.
    pub p95: Option<u64>,
    /// 99th percentile latency.
    pub p99: Option<u64>,
    /// CPU of all nodes.
    pub cpu: Option<u64>,
    /// RSS of all nodes.
    pub rss: Option<u64>,
}

impl Comparison {
    /// Pairs the two runs.
    pub fn new(medledger: LoadReport, kvstore: LoadReport) -> Comparison {
        let (m, k) = (&medledger, &kvstore);
        let ratio_percent = RatioPercent {
            committed_tx_per_s: ratio_percent(m.committed_tx_per_s, k.committed_tx_per_s),
            p50: ratio_percent(m.latency.p50_ms, k.latency.p50_ms),
            p95: ratio_percent(m.latency.p95_ms, k.latency.p95_ms),
            p99: ratio_percent(m.latency.p99_ms, k.latency.p99_ms),
            cpu: ratio_percent(m.cpu_millicores(), k.cpu_millicores()),
            rss: ratio_percent(m.rss_kib(), k.rss_kib()),
        };
        Comparison {
            medledger,
            kvstore,
            ratio_percent,
        }
    }

    /// The table, then the ratio line.
    pub fn text(&self) -> String {
        let (m, k) = (&self.medledger, &self.kvstore);
        format!(
            "{}ratio medledger / kvstore: committed tx/s {}  p50 {}  p95 {}  p99 {}  cpu {}  rss {}\n",
            table(&[m, k]),
            ratio_text(m.committed_tx_per_s, k.committed_tx_per_s),
            ratio_text(m.latency.p50_ms, k.latency.p50_ms),
            ratio_text(m.latency.p95_ms, k.latency.p95_ms),
            ratio_text(m.latency.p99_ms, k.latency.p99_ms),
            ratio_text(m.cpu_millicores(), k.cpu_millicores()),
            ratio_text(m.rss_kib(), k.rss_kib()),
        )
    }
}

/// The grid's verdict for one app: the highest offered rate at which some connection count kept
/// up, and the lowest at which every connection count saturated (CometBFT QA's saturation point
/// lies between the two).
pub fn saturation_summary(app: &str, cells: &[&LoadReport]) -> String {
    let best = cells
        .iter()
        .filter(|r| !r.saturated)
        .max_by_key(|r| (r.offered_tx_per_s, r.committed_tx_per_s));
    let mut rates: Vec<u64> = cells.iter().map(|r| r.offered_tx_per_s).collect();
    rates.sort_unstable();
    rates.dedup();
    let all_saturated = rates.into_iter().find(|&rate| {
        cells
            .iter()
            .filter(|r| r.offered_tx_per_s == rate)
            .all(|r| r.saturated)
    });
    let max = cells
        .iter()
        .map(|r| r.committed_tx_per_s)
        .max()
        .unwrap_or(0);
    let kept = match best {
        Some(r) => format!(
            "keeps up with {} tx/s offered ({} connections: {} tx/s committed, p99 {} ms)",
            r.offered_tx_per_s, r.connections, r.committed_tx_per_s, r.latency.p99_ms
        ),
        None => "saturated at every rate of the grid".into(),
    };
    let sat = match all_saturated {
        Some(rate) => format!("; saturated at {rate} tx/s offered with every connection count"),
        None => "; no rate of the grid saturates it".into(),
    };
    format!("{app}: {kept}{sat}; highest committed {max} tx/s\n")
}

/// A plateau holds at this share of the peak, in percent: past its capacity a chain commits at
/// least 90 % of the most it ever committed (issue 15's bar; kvstore holds it).
pub const PLATEAU_PCT: u64 = 90;

/// The cells of one app that *collapse*: offered more than the app's peak committed rate (so
/// over capacity), not sender-bound (so the chain, not the generator, was tested), and
/// committing under [`PLATEAU_PCT`] % of that peak. Each is described for the report; a grid
/// with any fails (`medledger bench grid` exits 2).
pub fn collapses(cells: &[&LoadReport]) -> Vec<String> {
    let evidence: Vec<&&LoadReport> = cells.iter().filter(|r| !r.sender_bound).collect();
    let Some(peak) = evidence.iter().map(|r| r.committed_tx_per_s).max() else {
        return Vec::new();
    };
    evidence
        .iter()
        .filter(|r| {
            r.offered_tx_per_s > peak
                && r.committed_tx_per_s.saturating_mul(100) < peak.saturating_mul(PLATEAU_PCT)
        })
        .map(|r| {
            format!(
                "{}: COLLAPSE at {} tx/s offered ({} connections): {} tx/s committed, under {PLATEAU_PCT} % of the peak {peak} tx/s",
                r.app, r.offered_tx_per_s, r.connections, r.committed_tx_per_s
            )
        })
        .collect()
}

// ---- CPU and memory from /proc (procfs) ----

#[derive(Clone, Copy, Default)]
struct Sample {
    ticks: Option<u64>,
}

fn sample_usage(target: &Target) -> Vec<(Sample, Sample)> {
    let s = |pid: Option<u32>| Sample {
        ticks: pid.and_then(cpu_ticks),
    };
    target
        .nodes
        .iter()
        .map(|n| (s(n.cometbft), s(n.app)))
        .collect()
}

fn usage(
    target: &Target,
    before: &[(Sample, Sample)],
    after: &[(Sample, Sample)],
    window: Duration,
) -> Vec<NodeUsage> {
    let one = |pid: Option<u32>, b: Sample, a: Sample| -> Option<ProcUsage> {
        let pid = pid?;
        let (rss, peak) = rss_kib(pid);
        Some(ProcUsage {
            pid,
            cpu_millicores: millicores(b.ticks, a.ticks, window),
            rss_kib: rss.unwrap_or(0),
            peak_rss_kib: peak.unwrap_or(0),
        })
    };
    target
        .nodes
        .iter()
        .zip(before.iter().zip(after))
        .map(|(n, (b, a))| NodeUsage {
            name: n.name.clone(),
            cometbft: one(n.cometbft, b.0, a.0),
            app: one(n.app, b.1, a.1),
        })
        .collect()
}

/// utime + stime of `pid`, in clock ticks (procfs).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?;
    Some(stat.utime + stat.stime)
}

/// Resident and peak resident memory of `pid`, in KiB (`VmRSS`, `VmHWM` of its status).
fn rss_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let status = i32::try_from(pid)
        .ok()
        .and_then(|p| procfs::process::Process::new(p).ok())
        .and_then(|p| p.status().ok());
    match status {
        Some(s) => (s.vmrss, s.vmhwm),
        None => (None, None),
    }
}

/// Clock ticks per second.
fn clk_tck() -> u64 {
    procfs::ticks_per_second().max(1)
}

fn millicores(before: Option<u64>, after: Option<u64>, window: Duration) -> u64 {
    let (Some(b), Some(a)) = (before, after) else {
        return 0;
    };
    let cpu_ms = a.saturating_sub(b).saturating_mul(1000) / clk_tck();
    cpu_ms.saturating_mul(1000) / ms(window).max(1)
}

/// `bytes` in MiB with one decimal, in integers (`1.5` for 1,572,864).
pub fn mib(bytes: u64) -> String {
    let tenths = u128::from(bytes) * 10 / 1_048_576;
    format!("{}.{}", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mebibytes_are_printed_with_one_decimal_without_floats() {
        assert_eq!(mib(0), "0.0");
        assert_eq!(mib(1_572_864), "1.5");
        assert_eq!(mib(1_048_575), "0.9");
        assert_eq!(mib(u64::MAX), "17592186044415.9");
    }

    #[test]
    fn latency_percentiles_come_from_the_histogram() {
        let mut l = Latencies::new();
        assert_eq!(l.summary(), Latency::default(), "no samples: zeros");
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms, s.max_ms), (50, 95, 99, 100));
        // Sub-millisecond counts as 1 ms; past an hour is clamped, not lost.
        let mut l = Latencies::new();
        l.record(Duration::from_micros(10));
        l.record(Duration::from_secs(7_200));
        assert_eq!(l.at(0.0), 1);
        assert!(l.summary().max_ms >= Latencies::MAX_MS);
        // Within 0.1 % at large values.
        let mut l = Latencies::new();
        l.record(Duration::from_millis(123_456));
        assert!(l.at(0.5).abs_diff(123_456) <= 124, "{}", l.at(0.5));
    }

    #[test]
    fn cpu_and_memory_of_this_process_are_read() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        let (rss, peak) = rss_kib(me);
        assert!(rss.unwrap_or(0) > 0 && peak.unwrap_or(0) >= rss.unwrap_or(0));
        assert!(clk_tck() >= 1);
    }

    #[test]
    fn kv_txs_have_the_asked_size_and_one_equals_sign() {
        let cfg = LoadConfig {
            rate: 100,
            connections: 3,
            ..LoadConfig::default()
        };
        let plan = kv_plan(&cfg, 10, 180, 7);
        for t in &plan.txs {
            assert_eq!(t.bytes.len(), 180);
            assert_eq!(t.bytes.iter().filter(|&&b| b == b'=').count(), 1);
            assert!(t.conn < 3);
        }
        assert_eq!(plan.txs[9].at, Duration::from_millis(90));
    }

    #[test]
    fn medledger_txs_are_about_the_size_of_a_log_access() {
        let size = sample_medledger_tx_size("medledger-localnet").expect("sample");
        assert!(
            (100..400).contains(&size),
            "average medledger tx is {size} bytes"
        );
    }

    fn cell(offered: u64, committed: u64, sender_bound: bool) -> LoadReport {
        let mut r = Tracker::new(&Plan { txs: Vec::new() }, AppKind::Medledger).report(
            &LoadConfig {
                rate: offered,
                ..LoadConfig::default()
            },
            AppKind::Medledger,
            200,
            Instant::now(),
            Duration::from_secs(1),
        );
        r.committed_tx_per_s = committed;
        r.sender_bound = sender_bound;
        r
    }

    #[test]
    fn a_grid_collapses_when_an_overloaded_cell_commits_under_ninety_percent_of_the_peak() {
        // Issue 15's numbers: 3,000 offered commits 3,000; 3,500 commits 1,364.
        let knee = cell(3000, 3000, false);
        let collapsed = cell(3500, 1364, false);
        assert_eq!(collapses(&[&knee, &collapsed]).len(), 1);
        assert!(collapses(&[&knee, &collapsed])[0].contains("COLLAPSE at 3500"));
        // A plateau (kvstore: 4,834 of a 4,834 peak at 6,000) passes, so does 0.9 × the peak.
        assert!(collapses(&[&cell(4500, 4834, false), &cell(6000, 4834, false)]).is_empty());
        assert!(collapses(&[&cell(300, 222, false), &cell(900, 200, false)]).is_empty());
        assert_eq!(
            collapses(&[&cell(300, 222, false), &cell(900, 199, false)]).len(),
            1
        );
        // A sender-bound cell is no evidence either way.
        assert!(collapses(&[&knee, &cell(4800, 600, true)]).is_empty());
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

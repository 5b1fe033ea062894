//! What a run sends and where: the [`LoadConfig`], the [`Broadcast`] mode, the [`Target`]
//! nodes, and the limits and constants every phase shares.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use medledger_devnet::localnet::{AppKind, Localnet, NodeSpec, Proc};

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
pub(crate) const MAX_SPARES: u64 = 16;
/// The longest drain, in multiples of [`LoadConfig::drain`]: an overloaded chain's backlog is
/// drained while it keeps committing, but not forever.
pub const MAX_DRAIN_FACTOR: u32 = 12;
/// How often the poller asks for the latest height; also the resolution of latencies.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Timeout of one RPC request.
pub(crate) const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the setup phase may take to commit.
pub(crate) const SETUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Seed of the PRNG that picks the mix: the same config gives the same sequence of kinds.
pub(crate) const MIX_SEED: u64 = 0x6d65_646c_6564_6765;
/// How long after its due time a generated unordered tx stays valid, in seconds: the ledger
/// allows at most 60 s after the block time, and the plan is signed before sending starts (a
/// few seconds for a large plan), so this leaves both the signing time and the queueing of an
/// overloaded chain room.
pub const UNORDERED_VALIDITY_AFTER_DUE_SECS: u64 = 55;

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

    /// Rate, duration, connections, patients and the planned count are within bounds.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
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

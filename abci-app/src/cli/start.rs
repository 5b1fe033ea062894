//! `medledger start`: the node (the ABCI application CometBFT connects to).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::Exit;

/// `start` arguments.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Directory of the node's state database.
    #[arg(long, env = "MEDLEDGER_DATA")]
    pub data: PathBuf,
    /// ABCI listen address, `host:port` or `unix:///path/app.sock` (what localnets use: no
    /// Nagle delays); CometBFT's `proxy_app` points here.
    #[arg(long, env = "MEDLEDGER_LISTEN", default_value = "127.0.0.1:26658")]
    pub listen: String,
    /// This validator's BLS key file: sign checkpoint certificates in vote extensions.
    #[arg(long, env = "MEDLEDGER_BLS_KEY")]
    pub bls_key: Option<PathBuf>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. 127.0.0.1:26660): ABCI latency
    /// per method, txs by result code, block size and height, certificate signers.
    #[arg(long, env = "MEDLEDGER_METRICS")]
    pub metrics: Option<String>,
    /// Keep every height from the newest minus this many, prune older ones in the background
    /// (at least 10; 0 keeps every height: an archive node). The default, about a day of 1 s
    /// blocks, covers every client's point-in-time reads; the ledger's history (access events,
    /// consents, anchors, claims) stays provable from the newest state whatever is pruned
    /// (docs/reliability.md, "Pruning").
    #[arg(long, env = "MEDLEDGER_KEEP_RECENT", default_value_t = 100_000)]
    pub keep_recent: u64,
    /// Below the recent window, also keep every height that is a multiple of this (0: none), so
    /// an auditor can still read the whole state as it was at those checkpoints.
    #[arg(long, env = "MEDLEDGER_KEEP_EVERY", default_value_t = 10_000)]
    pub keep_every: u64,
    /// Let CometBFT delete blocks older than the newest this many (0, the default: keep every
    /// block, the consortium's signed archive, which `medledger replay`, light-client checks of
    /// old heights and new nodes replaying from genesis need). Must be more than `--keep-recent`
    /// and `--snapshot-interval` (unless 0): every state still readable needs the header after
    /// it, and a node joining from the newest snapshot needs its headers.
    #[arg(long, env = "MEDLEDGER_RETAIN_BLOCKS", default_value_t = 0)]
    pub retain_blocks: u64,
    /// Take a state sync snapshot every this many heights (0: none), so new nodes can join
    /// from a recent state instead of replaying every block (docs/deploy.md, "State sync").
    /// The newest two are kept; each is built on a thread of its own, off the Commit path.
    #[arg(long, env = "MEDLEDGER_SNAPSHOT_INTERVAL", default_value_t = 1_000)]
    pub snapshot_interval: u64,
    /// Directory of the snapshots (default: `DATA-snapshots` beside the `--data` directory).
    #[arg(long, env = "MEDLEDGER_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
}

impl StartArgs {
    /// Opens the ledger and serves ABCI until the process is stopped.
    pub async fn run(self) -> anyhow::Result<Exit> {
        let a = self;
        if a.retain_blocks > 0
            && (a.keep_recent == 0
                || a.retain_blocks <= a.keep_recent
                || a.retain_blocks <= a.snapshot_interval)
        {
            anyhow::bail!(
                "--retain-blocks {} must be more than --keep-recent ({}, and not 0) and \
                 --snapshot-interval ({}, or 0): every state still readable needs the header \
                 after it, and a node joining from a snapshot needs the snapshot's headers",
                a.retain_blocks,
                a.keep_recent,
                a.snapshot_interval
            );
        }
        let mut ledger = medledger_state::Ledger::open(&a.data)
            .with_context(|| format!("opening {}", a.data.display()))?;
        if a.keep_recent > 0 {
            ledger
                .retain(a.keep_recent, a.keep_every)
                .context("--keep-recent")?;
            tracing::info!(
                keep_recent = a.keep_recent,
                keep_every = a.keep_every,
                "pruning heights older than the recent window, keeping the checkpoints"
            );
        }
        // Served even with snapshots off: the ones already on disk.
        let snapshot_dir = a.snapshot_dir.clone().unwrap_or_else(|| {
            let name = a
                .data
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into());
            a.data.with_file_name(format!("{name}-snapshots"))
        });
        ledger
            .snapshot_every(&snapshot_dir, a.snapshot_interval)
            .context("--snapshot-interval")?;
        if a.snapshot_interval > 0 {
            tracing::info!(
                interval = a.snapshot_interval,
                dir = %snapshot_dir.display(),
                "taking state sync snapshots"
            );
        }
        let bls = a
            .bls_key
            .as_deref()
            .map(medledger_client::keyring::load_bls_key)
            .transpose()?;
        if let Some((point, height)) = medledger_state::fault::armed() {
            tracing::warn!(
                point,
                height,
                "fault injection armed: this node will abort there"
            );
        }
        let metrics = match &a.metrics {
            None => None,
            Some(addr) => {
                let m = crate::metrics::AppMetrics::default();
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("metrics listen address {addr}"))?;
                tracing::info!(%addr, "metrics at /metrics");
                tokio::spawn(medledger_gateway::metrics::serve(
                    listener,
                    m.registry.clone(),
                ));
                Some(m)
            }
        };
        if a.retain_blocks > 0 {
            tracing::info!(
                retain_blocks = a.retain_blocks,
                "CometBFT may delete blocks older than the newest retain_blocks"
            );
        }
        crate::server::serve(ledger, &a.listen, bls, metrics, a.retain_blocks).await?;
        Ok(Exit::Ok)
    }
}

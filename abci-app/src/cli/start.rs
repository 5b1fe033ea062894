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
}

impl StartArgs {
    /// Opens the ledger and serves ABCI until the process is stopped.
    pub async fn run(self) -> anyhow::Result<Exit> {
        let a = self;
        let ledger = medledger_state::Ledger::open(&a.data)
            .with_context(|| format!("opening {}", a.data.display()))?;
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
        crate::server::serve(ledger, &a.listen, bls, metrics).await?;
        Ok(Exit::Ok)
    }
}

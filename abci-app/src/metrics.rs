//! The node's Prometheus metrics (`medledger start --metrics ADDR`): ABCI latency per method,
//! txs by result code, block sizes, height and certificate signers. Observed around the
//! [`medledger_state::Ledger`], never inside it: nothing here reaches the state machine.

use medledger_gateway::metrics::{seconds_family, Labels, SecondsFamily, SharedRegistry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};

/// What the node records.
#[derive(Clone)]
pub struct AppMetrics {
    /// The registry `--metrics` serves.
    pub registry: SharedRegistry,
    abci: SecondsFamily,
    txs: Family<Labels, Counter>,
    height: Gauge,
    block_txs: Histogram,
    cert_signers: Gauge,
}

impl Default for AppMetrics {
    fn default() -> Self {
        let abci = seconds_family();
        let txs = Family::<Labels, Counter>::default();
        let height = Gauge::default();
        let block_txs = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        let cert_signers = Gauge::default();
        let mut r = Registry::default();
        r.register(
            "medledger_abci_request_duration_seconds",
            "Time the app takes to answer an ABCI request, by method",
            abci.clone(),
        );
        r.register(
            "medledger_txs",
            "Transactions executed in blocks, by result code name (OK or the ledger's code)",
            txs.clone(),
        );
        r.register(
            "medledger_block_height",
            "Last finalized block",
            height.clone(),
        );
        r.register(
            "medledger_block_txs",
            "Transactions per finalized block",
            block_txs.clone(),
        );
        r.register(
            "medledger_certificate_signers",
            "Validators that signed the last checkpoint certificate the node finalized",
            cert_signers.clone(),
        );
        AppMetrics {
            registry: Arc::new(Mutex::new(r)),
            abci,
            txs,
            height,
            block_txs,
            cert_signers,
        }
    }
}

impl AppMetrics {
    /// One ABCI request of `method` took `secs`.
    pub fn request(&self, method: &'static str, secs: f64) {
        self.abci
            .get_or_create(&vec![("method".to_string(), method.to_string())])
            .observe(secs);
    }

    /// A finalized block: its height, and each tx's result code.
    pub fn block(&self, height: u64, codes: impl Iterator<Item = u32>) {
        self.height.set(i64::try_from(height).unwrap_or(i64::MAX));
        let mut n = 0u32;
        for code in codes {
            n += 1;
            let name = match code {
                0 => "OK".to_string(),
                c => medledger_tx::Code::from_value(c)
                    .map_or_else(|| format!("UNKNOWN_{c}"), |c| c.name().to_string()),
            };
            self.txs
                .get_or_create(&vec![("code".to_string(), name)])
                .inc();
        }
        self.block_txs.observe(f64::from(n));
    }

    /// The last certificate's signer count.
    pub fn certificate(&self, signers: u64) {
        self.cert_signers
            .set(i64::try_from(signers).unwrap_or(i64::MAX));
    }
}

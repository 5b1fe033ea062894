//! The node's Prometheus metrics (`medledger start --metrics ADDR`): ABCI latency per method,
//! txs by result code, block sizes, height and certificate signers; the store's size per column
//! family, cache use, tree nodes written per block and the pruner's progress. Observed around the
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
    store_bytes: Family<Labels, Gauge>,
    block_cache_bytes: Gauge,
    node_reads: Family<Labels, Counter>,
    nodes_written: Histogram,
    prune_earliest: Gauge,
    pruned: Family<Labels, Counter>,
    /// Cumulative readings already added to the counters.
    seen: Arc<Mutex<(u64, u64, u64, u64)>>,
}

impl Default for AppMetrics {
    fn default() -> Self {
        let abci = seconds_family();
        let txs = Family::<Labels, Counter>::default();
        let height = Gauge::default();
        let block_txs = Histogram::new(exponential_buckets(1.0, 2.0, 14));
        let cert_signers = Gauge::default();
        let store_bytes = Family::<Labels, Gauge>::default();
        let block_cache_bytes = Gauge::default();
        let node_reads = Family::<Labels, Counter>::default();
        let nodes_written = Histogram::new(exponential_buckets(1.0, 2.0, 18));
        let prune_earliest = Gauge::default();
        let pruned = Family::<Labels, Counter>::default();
        let mut r = Registry::default();
        r.register(
            "medledger_store_bytes",
            "Bytes of the state database (SST files and memtables), by column family",
            store_bytes.clone(),
        );
        r.register(
            "medledger_store_block_cache_bytes",
            "Bytes held in RocksDB's block cache",
            block_cache_bytes.clone(),
        );
        r.register(
            "medledger_store_node_reads",
            "Tree node reads by where they were answered: top (the in-memory top levels) or disk (RocksDB, its block cache included)",
            node_reads.clone(),
        );
        r.register(
            "medledger_store_nodes_written",
            "Tree nodes written per committed block",
            nodes_written.clone(),
        );
        r.register(
            "medledger_prune_earliest_height",
            "First height this node keeps in full (0: nothing pruned yet)",
            prune_earliest.clone(),
        );
        r.register(
            "medledger_pruned_entries",
            "Entries the pruner deleted, by kind (node, value)",
            pruned.clone(),
        );
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
            store_bytes,
            block_cache_bytes,
            node_reads,
            nodes_written,
            prune_earliest,
            pruned,
            seen: Arc::new(Mutex::new((0, 0, 0, 0))),
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

    /// After a commit: the store's readings.
    pub fn store(&self, r: &medledger_state::store::StoreReadings) {
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        for (cf, bytes) in &r.bytes {
            self.store_bytes
                .get_or_create(&vec![("cf".to_string(), (*cf).to_string())])
                .set(gauge(*bytes));
        }
        self.block_cache_bytes.set(gauge(r.block_cache_bytes));
        self.nodes_written.observe(r.last_commit.nodes as f64);
        self.prune_earliest.set(gauge(r.earliest));
        let label = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = (r.top_cache_hits, r.disk_reads, r.pruned.0, r.pruned.1);
        self.node_reads
            .get_or_create(&label("from", "top"))
            .inc_by(now.0.saturating_sub(seen.0));
        self.node_reads
            .get_or_create(&label("from", "disk"))
            .inc_by(now.1.saturating_sub(seen.1));
        self.pruned
            .get_or_create(&label("kind", "node"))
            .inc_by(now.2.saturating_sub(seen.2));
        self.pruned
            .get_or_create(&label("kind", "value"))
            .inc_by(now.3.saturating_sub(seen.3));
        *seen = now;
    }

    /// The last certificate's signer count.
    pub fn certificate(&self, signers: u64) {
        self.cert_signers
            .set(i64::try_from(signers).unwrap_or(i64::MAX));
    }
}

//! What a run measured: the [`LoadReport`] and its latency histogram, and the texts people
//! read: the table with its verdicts, the per-node details, medledger against kvstore
//! ([`Comparison`]), and a grid's saturation point and collapses.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::Broadcast;
use crate::usage::{NodeUsage, ProcUsage};

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
    /// Committed tx/s (see the crate docs for the estimator).
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
    /// mempool dropped after accepting them; see [`execute`](crate::send::execute)).
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

    /// Every node's CPU, millicores.
    pub fn cpu_millicores(&self) -> u64 {
        self.nodes.iter().map(NodeUsage::cpu_millicores).sum()
    }

    /// Every node's RSS, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.nodes.iter().map(NodeUsage::rss_kib).sum()
    }
}

/// `n` over `elapsed`, per second (elapsed counted at least 1 ms).
pub(crate) fn per_second(n: u64, elapsed: Duration) -> u64 {
    let ms = u64::try_from(elapsed.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    n.saturating_mul(1000) / ms
}

/// Whole milliseconds of `d`.
pub(crate) fn ms(d: Duration) -> u64 {
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

// ---- reports for people ----

/// `v` tenths as `12.3`.
fn tenths(v: u64) -> String {
    format!("{}.{}", v / 10, v % 10)
}

/// `bytes` in MiB with one decimal, in integers (`1.5` for 1,572,864).
pub fn mib(bytes: u64) -> String {
    let tenths = u128::from(bytes) * 10 / 1_048_576;
    format!("{}.{}", tenths / 10, tenths % 10)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LoadConfig;
    use crate::plan::Plan;
    use crate::tracker::Tracker;
    use medledger_devnet::localnet::AppKind;
    use std::time::Instant;

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
}

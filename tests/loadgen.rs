//! The load generator against a real 4-validator localnet: a short, low-rate load of the
//! realistic mix (access logs, grants, revocations) is committed completely, once each, with no
//! rejection, and the report's numbers are consistent.

use std::time::Duration;

use medledger_loadgen::{self as loadgen, Broadcast, LoadConfig, Target};

use crate::support::TestNet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_commits_every_sent_tx_exactly_once() {
    let t = TestNet::start().await;
    let cfg = LoadConfig {
        rate: 40,
        connections: 3,
        duration: Duration::from_secs(5),
        patients: 20,
        drain: Duration::from_secs(15),
        kv_tx_size: None,
        progress: true,
        // Sync: CheckTx rejections are counted, so "no rejection" means what it says.
        broadcast: Broadcast::Sync,
        members_only: false,
    };
    let report = loadgen::run(&Target::of_localnet(&t.net), &t.keyring, &cfg)
        .await
        .expect("the load runs");
    eprint!(
        "{}{}",
        loadgen::table(&[&report]),
        loadgen::details(&report)
    );

    assert!(report.committed > 0, "nothing committed: {report:?}");
    assert_eq!(
        report.rejected_total, 0,
        "rejections: {:?}",
        report.rejected
    );
    // Every sent tx committed, each in exactly one block.
    assert_eq!(report.committed, report.sent, "{report:?}");
    assert_eq!(report.uncommitted, 0);
    assert_eq!(report.duplicates, 0);
    // At 40 tx/s for 5 s, essentially the whole plan goes out, and the chain keeps up.
    assert!(
        report.sent + 2 >= report.planned && report.planned == 200,
        "{report:?}"
    );
    // The commit rate is estimated from a handful of blocks: near the offered rate, not exact.
    assert!((20..=60).contains(&report.committed_tx_per_s), "{report:?}");
    assert!(!report.sender_bound, "{report:?}");
    let l = report.latency;
    assert!(
        l.p50_ms > 0 && l.p50_ms <= l.p95_ms && l.p95_ms <= l.p99_ms && l.p99_ms <= l.max_ms,
        "{l:?}"
    );
    // Every node's processes were found and measured.
    assert_eq!(report.nodes.len(), 4);
    for n in &report.nodes {
        assert!(n.cometbft.is_some_and(|p| p.rss_kib > 0), "{n:?}");
        assert!(n.app.is_some_and(|p| p.rss_kib > 0), "{n:?}");
    }
    assert!(report.cpu_millicores() > 0);
}

//! State sync on a real localnet: a fifth node joins a running chain from a validator's
//! snapshot (CometBFT's light client verifies the app hash, the app verifies each chunk and the
//! restored root), without replaying the blocks before it, reaches the same app hash and
//! follows; a node replaying from genesis is timed beside it.

use std::time::Instant;

use medledger_devnet::localnet::{NodePorts, Proc};
use medledger_tx::{keys, QueryCode};
use tendermint_rpc::Client as _;

use crate::support::{read, TestNet};

/// Snapshots every 10 heights on the validators (300 ms blocks: one every 3 s).
const INTERVAL: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_node_joins_by_state_sync_without_replaying_and_follows() {
    let mut t = TestNet::prepare();
    t.net.spec.snapshot_interval = Some(INTERVAL);
    t.up().await;
    let c = t.client(0);
    let patient = t.consenting_patient(31, "hospital-a").await;
    for record in ["obs-1", "obs-2", "obs-3"] {
        let r = c
            .submit(&t.member_key("hospital-a"), read(&patient.id, record))
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{}", r.log);
    }
    // Past two snapshot heights, so the validators serve at least one.
    t.wait_all(&[0], 2 * INTERVAL + 3).await;
    // Snapshots are taken on a thread of their own: wait for the first to be listed.
    let snapshots = t.net.node_dir(0).join("app-snapshots");
    let taken = || {
        std::fs::read_dir(&snapshots)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| !e.file_name().to_string_lossy().ends_with(".tmp"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    while taken() == 0 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        taken() >= 1,
        "hospital-a took no snapshot in {}",
        snapshots.display()
    );

    // The root of trust: a recent header, as an operator would take from a member it trusts.
    let trust_height = t.height(0).await - 1;
    let (header, _) = c.light_block(trust_height).await.unwrap();
    let trust_hash = header.header.hash().to_string();

    let synced = t
        .net
        .add_node("lab-sync", NodePorts::free().unwrap(), &t.keyring)
        .unwrap()
        .index;
    let replayed = t
        .net
        .add_node("lab-replay", NodePorts::free().unwrap(), &t.keyring)
        .unwrap()
        .index;
    t.net
        .join_by_state_sync(synced, trust_height, &trust_hash)
        .unwrap();

    let target = t.height(0).await + 2;
    let started = Instant::now();
    t.net.start_node(synced).unwrap();
    if let Err(e) = t
        .net
        .wait_for_height(synced, target, std::time::Duration::from_secs(60))
        .await
    {
        for p in [Proc::CometBft, Proc::App] {
            let log = std::fs::read_to_string(t.net.log_file(synced, p)).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("--- {:?} log of the syncing node ---\n{tail}", p);
        }
        panic!("{e:#}");
    }
    let by_snapshot = started.elapsed();
    let started = Instant::now();
    t.net.start_node(replayed).unwrap();
    t.wait_all(&[replayed], target).await;
    let by_replay = started.elapsed();
    eprintln!(
        "joined height {target}: state sync {by_snapshot:?}, replay from genesis {by_replay:?}"
    );

    // It restored a snapshot and never executed the blocks before it.
    let log = std::fs::read_to_string(t.net.log_file(synced, Proc::App)).unwrap();
    assert!(log.contains("state restored from a snapshot"), "{log}");
    let status = t.client(synced).rpc().status().await.unwrap();
    let base = status.sync_info.earliest_block_height.value();
    assert!(
        base >= INTERVAL,
        "its block store starts at the snapshot, not at 1: {base}"
    );

    // The same state as the validators at the same heights, and it follows the chain.
    let later = t.height(0).await + 3;
    t.wait_all(&[0, synced, replayed], later).await;
    let hashes = t.app_hashes_at(&[0, synced, replayed], later).await;
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    let count = keys::List::Access(&patient.id).count_key();
    let mine = t.client(synced).query_proven(&count, later).await.unwrap();
    let theirs = c.query_proven(&count, later).await.unwrap();
    assert_eq!(mine.value, theirs.value);
    assert_eq!(mine.value.as_deref().and_then(keys::decode_u64), Some(3));

    // Heights before the snapshot were never on this node: refused as pruned.
    let old = format!(
        "{:#}",
        t.client(synced).query_raw(&count, 2).await.unwrap_err()
    );
    let code = format!("(code {})", QueryCode::Pruned as u32);
    assert!(old.contains(&code), "{old}");
    // The replaying node has them all.
    assert!(t.client(replayed).query_raw(&count, 2).await.is_ok());
}

//! Block retention (`medledger start --retain-blocks`, issue 16): CometBFT deletes the blocks
//! the app lets go; the app refuses states below its own window with code 103; and every state
//! it still answers for verifies against the header after it, which the node still has.

use std::process::Command;

use medledger_tx::keys;
use tendermint_rpc::Client as _;

use crate::support::{self, medledger_bin, TestNet};

const KEEP_RECENT: u64 = 10;
const RETAIN_BLOCKS: u64 = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_only_the_blocks_it_retains_and_every_state_it_answers_for_verifies() {
    let mut t = TestNet::prepare();
    t.net.spec.keep_recent = Some(KEEP_RECENT);
    t.net.spec.retain_blocks = Some(RETAIN_BLOCKS);
    t.net.spec.snapshot_interval = Some(0);
    t.up().await;
    t.wait_all(&[0, 1, 2, 3], 3 * RETAIN_BLOCKS).await;
    let c = t.client(0);

    let status = c.rpc().status().await.unwrap();
    let (earliest, latest) = (
        status.sync_info.earliest_block_height.value(),
        status.sync_info.latest_block_height.value(),
    );
    assert!(
        earliest > 1 && latest - earliest <= RETAIN_BLOCKS + 2,
        "CometBFT keeps blocks {earliest}..={latest}, not about the newest {RETAIN_BLOCKS}"
    );
    let gone = c.rpc().block(tendermint::block::Height::from(1u32)).await;
    assert!(gone.is_err(), "block 1 is still served: {gone:?}");

    // The oldest state the app still answers for (its window may have moved on by a block or
    // two since the status): proven against the header after it, which CometBFT kept.
    let now = t.height(0).await;
    let oldest = now - KEEP_RECENT + 3;
    let proven = c.query_proven(&keys::member("hospital-a"), oldest).await;
    let proven = proven.unwrap_or_else(|e| panic!("state {oldest} of {now}: {e:#}"));
    assert_eq!(proven.height, oldest);
    assert!(proven.value.is_some());
    // Below the window: the app's own refusal, not a missing header.
    let old = c.query_raw(&keys::member("hospital-a"), earliest).await;
    let err = format!("{:#}", old.unwrap_err());
    assert!(err.contains("(code 103)"), "{err}");
}

#[test]
fn retaining_fewer_blocks_than_the_readable_states_is_refused_at_start() {
    let _machine = support::exclusive();
    let dir = tempfile::tempdir().unwrap();
    for (retain, keep, snapshots) in [("10", "10", "0"), ("50", "0", "0"), ("50", "20", "100")] {
        let out = Command::new(medledger_bin())
            .args(["start", "--data"])
            .arg(dir.path().join("app"))
            .args(["--listen", "127.0.0.1:1", "--retain-blocks", retain])
            .args(["--keep-recent", keep, "--snapshot-interval", snapshots])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("--retain-blocks"),
            "retain {retain}, keep {keep}, snapshots {snapshots}: {stderr}"
        );
    }
}

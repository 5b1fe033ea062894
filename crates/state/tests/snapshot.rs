//! State sync on real RocksDB: a node restored from another's snapshot holds the same state,
//! proves it, refuses heights it never had, and executes the next block to the same app hash;
//! a wrong chunk is refetched and a snapshot of another state is rejected without a write.

#![allow(clippy::unwrap_used, clippy::panic)]

use medledger_state::ledger::ChunkOutcome;
use medledger_state::snapshot::{self, OfferRefusal, Snapshot, SnapshotStore};
use medledger_state::Ledger;
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use medledger_tx::{keys, QueryCode};

use crate::common::*;

fn grant(grantee: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec!["Observation".into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

/// A chain with 12 patients, their consents and a read each, over a few blocks.
fn busy_chain() -> Chain {
    let mut c = Chain::new();
    for seed in 1..=12u8 {
        let p = key(seed);
        c.enrol(&p);
        c.ok(&p, grant("hospital-a"));
        c.ok(&admin(0), read(&patient_id(&p), "r-1", "Observation"));
    }
    c
}

/// The snapshot of `c`'s last committed height in chunks of about `chunk_bytes`.
fn take(c: &Chain, dir: &std::path::Path, chunk_bytes: usize) -> (Snapshot, SnapshotStore) {
    let height = c.ledger().info().unwrap().height;
    let store = SnapshotStore::new(dir);
    let s = store
        .create(&c.ledger().store().exporter(), height, CHAIN, chunk_bytes)
        .unwrap();
    (s, store)
}

fn fresh() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(dir.path()).unwrap();
    (dir, l)
}

fn restore(l: &mut Ledger, s: &Snapshot, store: &SnapshotStore, app_hash: &[u8]) -> ChunkOutcome {
    l.offer_snapshot(s, app_hash).unwrap();
    let mut last = ChunkOutcome::Reject("no chunks".into());
    for i in 0..s.chunks {
        last = l
            .apply_snapshot_chunk(i, &store.chunk(s.height, s.format, i).unwrap())
            .unwrap();
        assert!(
            !matches!(last, ChunkOutcome::Refetch | ChunkOutcome::Reject(_)),
            "chunk {i}: {last:?}"
        );
    }
    last
}

#[test]
fn a_restored_node_has_the_same_state_and_executes_the_next_block_identically() {
    let mut source = busy_chain();
    let at = source.ledger().info().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let (s, store) = take(&source, snaps.path(), 1024);
    assert!(s.chunks > 3, "small chunks make several: {}", s.chunks);

    let (dir, mut l) = fresh();
    assert_eq!(
        restore(&mut l, &s, &store, &at.app_hash),
        ChunkOutcome::Accept
    );
    assert_eq!(
        l.info(),
        Some(at),
        "Info tells CometBFT the restored height and hash"
    );
    assert_eq!(l.chain_id(), CHAIN);
    // The same values, proven against the same root.
    let p = patient_id(&key(7));
    let count = keys::List::Access(&p).count_key();
    let mine = l.query("/store", &count, 0, true);
    let theirs = source.ledger().query("/store", &count, 0, true);
    assert_eq!((mine.code, &mine.value), (0, &theirs.value));
    assert_eq!(mine.proof, theirs.proof);
    // Heights before the snapshot were never here: refused as pruned, not answered wrongly.
    let old = l.query("/store", &count, at.height - 1, false);
    assert_eq!(old.code, QueryCode::Pruned as u32, "{}", old.log);

    // The next block: same txs, same app hash, on both.
    let next = vec![
        source.tx(&admin(0), read(&p, "r-2", "Observation")),
        source.tx(&key(3), grant("lab-b")),
    ];
    let theirs = source.block(next.clone());
    let mine = l
        .finalize_block(at.height + 1, source.time - 5, &next)
        .unwrap();
    assert_eq!(mine.app_hash, theirs.app_hash);
    assert!(mine.tx_results.iter().all(|r| r.code == 0));
    l.commit().unwrap();

    // And it restarts whole.
    drop(l);
    let l = Ledger::open(dir.path()).unwrap();
    assert_eq!(l.info().map(|c| c.height), Some(at.height + 1));
    assert_eq!(l.chain_id(), CHAIN);
}

#[test]
fn a_bad_chunk_is_refetched_and_a_snapshot_of_another_state_is_rejected_unwritten() {
    let source = busy_chain();
    let at = source.ledger().info().unwrap();
    let snaps = tempfile::tempdir().unwrap();
    let (s, store) = take(&source, snaps.path(), 1024);

    // A peer sends wrong bytes for chunk 1: fetch it again (from another peer).
    let (_d, mut l) = fresh();
    l.offer_snapshot(&s, &at.app_hash).unwrap();
    let chunk = |i| store.chunk(s.height, s.format, i).unwrap();
    assert_eq!(
        l.apply_snapshot_chunk(0, &chunk(0)).unwrap(),
        ChunkOutcome::Accept
    );
    let mut bad = chunk(1);
    bad[5] ^= 1;
    assert_eq!(
        l.apply_snapshot_chunk(1, &bad).unwrap(),
        ChunkOutcome::Refetch
    );
    for i in 1..s.chunks {
        assert_eq!(
            l.apply_snapshot_chunk(i, &chunk(i)).unwrap(),
            ChunkOutcome::Accept
        );
    }
    assert_eq!(l.info(), Some(at));

    // Chunks that match their metadata but not the app hash the light client verified.
    let (_d, mut l) = fresh();
    let mut wrong = at.app_hash;
    wrong[0] ^= 1;
    l.offer_snapshot(&s, &wrong).unwrap();
    let mut last = ChunkOutcome::Accept;
    for i in 0..s.chunks {
        last = l.apply_snapshot_chunk(i, &chunk(i)).unwrap();
    }
    assert!(
        matches!(last, ChunkOutcome::Reject(ref why) if why.contains("not the app hash")),
        "{last:?}"
    );
    assert_eq!(l.info(), None, "nothing written");
    assert!(matches!(
        l.apply_snapshot_chunk(0, &chunk(0)).unwrap(),
        ChunkOutcome::Reject(_)
    ));

    // A node holding blocks takes no snapshot; an unknown format is refused as such.
    let mut holding = busy_chain();
    assert!(matches!(
        holding.ledger_mut().offer_snapshot(&s, &at.app_hash),
        Err(OfferRefusal::Snapshot(_))
    ));
    let (_d, mut l) = fresh();
    let other = Snapshot {
        format: 9,
        ..s.clone()
    };
    assert_eq!(
        l.offer_snapshot(&other, &at.app_hash),
        Err(OfferRefusal::Format)
    );
}

#[test]
fn a_node_snapshots_every_interval_and_keeps_the_newest_two() {
    let mut c = Chain::new();
    let snaps = tempfile::tempdir().unwrap();
    c.ledger_mut().snapshot_every(snaps.path(), 3).unwrap();
    let listed = |c: &Chain| -> Vec<u64> {
        c.ledger()
            .list_snapshots()
            .iter()
            .map(|s| s.height)
            .collect()
    };
    // Heights 1..=10, one block at a time. The thread takes the newest height it was told of
    // (a node under load skips ahead rather than queue snapshots), so wait for each multiple
    // of 3 before the next block.
    for seed in 1..=10u8 {
        c.enrol(&key(seed));
        let height = c.height - 1;
        if height.is_multiple_of(3) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !listed(&c).contains(&height) && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            assert!(
                listed(&c).contains(&height),
                "snapshot {height}: {:?}",
                listed(&c)
            );
        }
    }
    // 3, 6 and 9 were taken; the newest two are kept.
    assert_eq!(listed(&c), [9, 6]);
    let s = &c.ledger().list_snapshots()[0];
    assert_eq!((s.format, s.chunks), (snapshot::FORMAT, 1));
    assert!(c
        .ledger()
        .load_snapshot_chunk(9, snapshot::FORMAT, 0)
        .is_some());
    assert!(c
        .ledger()
        .load_snapshot_chunk(9, snapshot::FORMAT, 1)
        .is_none());
    assert!(
        c.ledger()
            .load_snapshot_chunk(3, snapshot::FORMAT, 0)
            .is_none(),
        "pruned"
    );
}

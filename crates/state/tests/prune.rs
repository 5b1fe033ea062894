//! Pruning with a promise to auditors (issue 16): every version from `earliest` and every
//! multiple of `keep_every` stay readable, with proofs against their own roots; the others are
//! refused; and under constant load the store stops growing.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;

use medledger_state::Store;

use crate::common::{block, Rng};

/// A store in a temporary directory.
fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Stages and commits `writes` as version `v`; answers its root.
fn commit(store: &mut Store, v: u64, writes: &medledger_state::store::WriteSet) -> [u8; 32] {
    let staged = store.stage(v, writes).unwrap();
    let root = staged.root;
    store.commit(staged).unwrap();
    root
}

/// Commits versions `0..n` of random blocks; answers each version's full state and root.
/// A state after a block, and its root.
type Snapshot = (BTreeMap<Vec<u8>, Vec<u8>>, [u8; 32]);

fn history(store: &mut Store, n: u64, size: u64, keys: u64) -> Vec<Snapshot> {
    let mut rng = Rng(2026);
    let mut state = BTreeMap::new();
    let mut out = Vec::new();
    for v in 0..n {
        let writes = block(&mut rng, size, keys, true);
        for (k, val) in &writes {
            match val {
                Some(val) => state.insert(k.clone(), val.clone()),
                None => state.remove(k),
            };
        }
        let root = commit(store, v, &writes);
        out.push((state.clone(), root));
    }
    out
}

#[test]
fn kept_versions_prove_against_their_roots_and_pruned_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let versions = history(&mut store, 120, 30, 150);
    let before = store.count_entries().unwrap();
    let stats = store.pruner().prune(100, 25).unwrap();
    let after = store.count_entries().unwrap();
    assert!(
        stats.nodes > 0 && stats.values > 0 && stats.kept_for_checkpoints > 0,
        "{stats:?}"
    );
    assert_eq!(before.nodes - after.nodes, stats.nodes);
    assert_eq!(before.values - after.values, stats.values);
    for (v, (state, root)) in versions.iter().enumerate() {
        let v = v as u64;
        let kept = v >= 100 || v.is_multiple_of(25);
        assert_eq!(store.available(v), kept, "version {v}");
        if !kept {
            continue;
        }
        assert_eq!(&store.root_at(v).unwrap(), root, "root of {v}");
        for k in 0..150 {
            let key = format!("k/{k}").into_bytes();
            let (value, proof) = store.prove(&key, v).unwrap();
            assert_eq!(value.as_ref(), state.get(&key), "k/{k} at {v}");
            let spec = jmt::ics23_spec();
            let ok = match &value {
                Some(val) => ics23::verify_membership::<ics23::HostFunctionsManager>(
                    &proof,
                    &spec,
                    &root.to_vec(),
                    &key,
                    val,
                ),
                None => ics23::verify_non_membership::<ics23::HostFunctionsManager>(
                    &proof,
                    &spec,
                    &root.to_vec(),
                    &key,
                ),
            };
            assert!(ok, "proof of k/{k} at {v}");
        }
    }
    // Pruning is remembered across a restart, and never moves back.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.available(99) && store.available(75) && store.available(100));
    assert_eq!(store.pruner().prune(50, 25).unwrap(), Default::default());
    assert!(!store.available(99));
}

#[test]
fn under_constant_load_the_pruned_store_stops_growing() {
    let (_dir, mut store) = temp_store();
    let (_unpruned_dir, mut unpruned) = temp_store();
    let mut rng = Rng(7);
    let mut counts = Vec::new();
    for v in 0..600u64 {
        let writes = block(&mut rng, 40, 2_000, true);
        commit(&mut store, v, &writes);
        commit(&mut unpruned, v, &writes);
        if v % 10 == 9 && v > 20 {
            store.pruner().prune(v - 20, 0).unwrap();
        }
        if v == 199 || v == 599 {
            counts.push((
                store.count_entries().unwrap(),
                unpruned.count_entries().unwrap(),
            ));
        }
    }
    let ((p200, u200), (p600, u600)) = (counts[0], counts[1]);
    eprintln!(
        "entries (nodes + values) at 200 / 600 versions: pruned {} / {}, unpruned {} / {}",
        p200.nodes + p200.values,
        p600.nodes + p600.values,
        u200.nodes + u200.values,
        u600.nodes + u600.values
    );
    // Unpruned, every block adds its nodes; pruned, the store holds the live tree and 20-30
    // versions of churn, whatever the history's length.
    assert!(u600.nodes > u200.nodes * 2, "{u200:?} {u600:?}");
    assert!(
        p600.nodes * 10 <= p200.nodes * 12,
        "pruned store grew: {p200:?} → {p600:?}"
    );
    assert!(p600.values * 10 <= p200.values * 12, "{p200:?} → {p600:?}");
    // The newest state is the same either way.
    for k in 0..2_000 {
        let key = format!("k/{k}").into_bytes();
        assert_eq!(store.get(&key).unwrap(), unpruned.get(&key).unwrap());
    }
    assert_eq!(store.root_at(599).unwrap(), unpruned.root_at(599).unwrap());
}

#[test]
fn a_query_below_the_window_gets_its_own_code_and_the_ledger_prunes_in_the_background() {
    use crate::common::*;
    let mut c = Chain::new();
    for i in 0..40u8 {
        c.enrol(&key(10 + i));
    }
    let latest = c.height - 1;
    assert_eq!(c.ledger().query("/counter/consents", &[], 5, false).code, 0);
    c.ledger_mut().retain(10, 0).unwrap();
    c.block(vec![]);
    // The pruner thread catches up after the commit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while c.ledger().store().available(5) {
        assert!(
            std::time::Instant::now() < deadline,
            "the pruner did not run"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let a = c.ledger().query("/counter/consents", &[], 5, true);
    assert_eq!(a.code, medledger_tx::QueryCode::Pruned as u32, "{}", a.log);
    assert!(a.log.contains("pruned"), "{}", a.log);
    // The recent window answers, with proofs.
    let a = c.ledger().query("/counter/consents", &[], latest, true);
    assert_eq!(a.code, 0, "{}", a.log);
    assert!(a.proof.is_some());
    assert!(
        c.ledger_mut().retain(3, 0).is_err(),
        "a window too short for certificates"
    );
}

/// Bytes of the store's directory: (write-ahead log files, everything).
fn disk_bytes(dir: &std::path::Path) -> (u64, u64) {
    let (mut log, mut all) = (0, 0);
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let len = entry.metadata().unwrap().len();
        if entry.file_name().to_string_lossy().ends_with(".log") {
            log += len;
        }
        all += len;
    }
    (log, all)
}

#[test]
fn under_constant_load_the_pruned_store_stays_bounded_on_disk() {
    // 300 writes a block over 20,000 keys (all written by block 300): the live state is
    // constant, so once compaction has dropped what the pruner deleted, a pruned store takes the
    // same bytes after 300 blocks as after 600, and the write-ahead log never holds more than
    // RocksDB is told to keep. Values are 120 bytes, about an access event, so the log grows as
    // fast as a ledger's (the shorter values of `block` would not reach the bound).
    let (dir, mut store) = temp_store();
    let (unpruned_dir, mut unpruned) = temp_store();
    let mut rng = Rng(11);
    let mut compacted = Vec::new();
    for v in 0..600u64 {
        let writes: medledger_state::store::WriteSet = (0..300)
            .map(|_| {
                let key = format!("k/{}", rng.below(20_000)).into_bytes();
                (key, Some(rng.next().to_le_bytes().repeat(15)))
            })
            .collect();
        commit(&mut store, v, &writes);
        commit(&mut unpruned, v, &writes);
        if v > 20 {
            store.pruner().prune(v - 20, 0).unwrap();
        }
        if v % 50 == 49 {
            // A log file is deleted once every column family has flushed what it holds: the
            // few bytes of `meta` each commit writes once kept every log alive (185 MiB of
            // logs after 400 blocks, against 30 MiB of tables).
            let (log, _) = disk_bytes(dir.path());
            assert!(
                log <= 96 << 20,
                "write-ahead log grew to {log} bytes by block {v}"
            );
        }
        if v == 299 || v == 599 {
            store.compact().unwrap();
            unpruned.compact().unwrap();
            let tables = |d: &std::path::Path| {
                let (log, all) = disk_bytes(d);
                all - log
            };
            compacted.push((tables(dir.path()), tables(unpruned_dir.path())));
        }
    }
    let ((p300, u300), (p600, u600)) = (compacted[0], compacted[1]);
    eprintln!("compacted tables after 300 / 600 blocks: pruned {p300} / {p600} bytes, unpruned {u300} / {u600}");
    assert!(
        p600 * 10 <= p300 * 12,
        "the pruned store grew: {p300} → {p600} bytes"
    );
    assert!(
        u600 * 10 >= u300 * 18,
        "unpruned {u300} → {u600} bytes: the load is too light to tell"
    );
}

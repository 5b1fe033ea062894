//! The store against jmt's own in-memory tree: whatever path a block takes through the store
//! (prefetched nodes, the in-memory top levels, the batch update without deletions, the key by
//! key update with them, a reopened store with a cold cache), every version's root must be the
//! one jmt's reference `put_value_set` computes for the same writes.

#![allow(clippy::unwrap_used, missing_docs)]

use jmt::mock::MockTreeStore;
use jmt::{KeyHash, OwnedValue, Sha256Jmt};
use medledger_state::store::{key_hash, WriteSet};
use medledger_state::Store;

use crate::common::{block, Rng};

fn model_root(model: &MockTreeStore, version: u64, writes: &WriteSet) -> [u8; 32] {
    let set: Vec<(KeyHash, Option<OwnedValue>)> = writes
        .iter()
        .map(|(k, v)| (key_hash(k), v.clone()))
        .collect();
    let (root, batch) = Sha256Jmt::new(model).put_value_set(set, version).unwrap();
    model.write_tree_update_batch(batch).unwrap();
    root.0
}

#[test]
fn every_version_root_matches_jmts_reference_tree() {
    for seed in [1u64, 7, 2026] {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        let model = MockTreeStore::default();
        let mut store = Store::open(dir.path()).unwrap();
        // Version 0 and 1 fill the tree enough that levels are read on several threads.
        let plan: Vec<(u64, bool)> = vec![
            (3000, false),
            (2000, false),
            (500, true),
            (1, false),
            (800, false),
            (300, true),
            (1, true),
        ];
        for (version, &(size, deletes)) in (0u64..).zip(plan.iter().cycle().take(14)) {
            let writes = block(&mut rng, size, 6000, deletes);
            let staged = store.stage(version, &writes).unwrap();
            let expected = model_root(&model, version, &writes);
            assert_eq!(
                staged.root, expected,
                "seed {seed}, version {version}: root differs from jmt's reference"
            );
            store.commit(staged).unwrap();
            if version == 6 {
                // A restarted node: nothing cached, every node read from RocksDB.
                drop(store);
                store = Store::open(dir.path()).unwrap();
            }
            assert_eq!(store.root_at(version).unwrap(), expected);
        }
    }
}

#[test]
fn reads_and_proofs_at_new_and_old_versions_verify_after_batched_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let mut rng = Rng(42);
    let mut state = WriteSet::new();
    let mut at = Vec::new(); // the full key → value map after each version
    for version in 0..5u64 {
        let writes = block(&mut rng, 1500, 2000, version == 3);
        for (k, v) in &writes {
            state.insert(k.clone(), v.clone());
        }
        at.push(state.clone());
        let staged = store.stage(version, &writes).unwrap();
        store.commit(staged).unwrap();
    }
    // The newest version, and an old one whose top nodes have all been rewritten since.
    for version in [4u64, 1] {
        let root = store.root_at(version).unwrap();
        for (key, value) in at[version as usize].iter().take(200) {
            assert_eq!(&store.get_at(key, version).unwrap(), value);
            let (proven, proof) = store.prove(key, version).unwrap();
            assert_eq!(&proven, value, "version {version}");
            medledger_query::verify(&root, key, proven.as_deref(), &proof).unwrap();
        }
    }
}

#[test]
fn an_empty_value_is_stored_as_absence_so_it_and_its_neighbours_are_provable() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let writes: WriteSet = (0..50)
        .map(|i| (format!("k/{i}").into_bytes(), Some(b"v".to_vec())))
        .chain([(b"empty".to_vec(), Some(Vec::new()))])
        .collect();
    let staged = store.stage(0, &writes).unwrap();
    store.commit(staged).unwrap();
    let root = store.root_at(0).unwrap();
    assert_eq!(store.get(b"empty").unwrap(), None);
    for key in [&b"empty"[..], b"k/50", b"k/51", b"zzz"] {
        let (value, proof) = store.prove(key, 0).unwrap();
        assert_eq!(value, None);
        assert_eq!(
            medledger_query::verify(&root, key, None, &proof),
            Ok(medledger_query::Proven::Absent),
            "absence of {:?}",
            String::from_utf8_lossy(key)
        );
    }
}

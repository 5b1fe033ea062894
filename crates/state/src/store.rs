//! The Merkleized, versioned store: a Jellyfish Merkle tree over RocksDB.
//!
//! Version `h` of the tree is the state after block `h` (version 0 is genesis); its root is the
//! app hash CometBFT puts in the header of block `h + 1`. Every version is kept, so queries and
//! proofs can be answered at any committed height.
//!
//! Column families:
//! - `nodes`: borsh(NodeKey) → borsh(Node), the tree itself;
//! - `values`: key_hash ‖ version (big-endian) → 0x00 (deleted) or 0x01 ‖ value, so the value of
//!   a key at version `v` is one reverse seek;
//! - `preimages`: key_hash → key (ICS23 non-membership proofs name the neighbouring keys);
//! - `meta`: `committed` → height ‖ app hash, `chain_id` → the chain id from InitChain,
//!   `retention` → the pruning state (see below), `block_time` → the time of the last committed
//!   block (8 bytes, big-endian unix seconds; written with `committed`, absent before the first
//!   block): CheckTx's clock for unordered txs across restarts, outside the Merkle state;
//! - `stale`: what each version made obsolete, for pruning: `stale_since ‖ 0x00 ‖ NodeKey` for
//!   a tree node the version replaced (jmt's stale node index), `version ‖ 0x01 ‖ key_hash` for
//!   a key the version wrote (its previous value entry becomes obsolete then).
//!
//! **Pruning** ([`Pruner`], issue 16). A node or value entry created at version `c` and made
//! obsolete at version `s` is needed exactly by the versions in `[c, s)`. With a retention of
//! "every version from `earliest`, and every multiple of `keep_every`", it is deleted once
//! `s ≤ earliest` unless some multiple of `keep_every` lies in `[c, s)`. The pruner runs on its
//! own thread, off the Commit path; it publishes the new `earliest` before it deletes anything,
//! so a read of a version about to go is refused ([`Store::available`]) rather than half read.
//!
//! [`Store::stage`] computes a new version without writing; [`Store::commit`] writes it, the
//! preimages and the new `committed` record in one atomic RocksDB write batch.
//!
//! Staging a block reads, before the tree asks for them one at a time, every node on the paths
//! of the keys it writes: level by level, each level's nodes on several threads, so a node's
//! read waits for its parent but not for the other keys' nodes ([`Store::prefetch`]). The top
//! levels of the newest tree are kept decoded in memory ([`TopCache`]). Both change only where
//! bytes come from: a node is immutable once written under its `NodeKey`.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;

use jmt::storage::{HasPreimage, LeafNode, NibblePath, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{KeyHash, OwnedValue, Sha256Jmt, Version};
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options,
    ReadOptions, SliceTransform, WriteBatch, DB,
};
use sha2::Sha256;

use crate::error::StoreError;

const CF_NODES: &str = "nodes";
const CF_VALUES: &str = "values";
const CF_PREIMAGES: &str = "preimages";
const CF_META: &str = "meta";
const CF_STALE: &str = "stale";
const META_COMMITTED: &[u8] = b"committed";
const META_CHAIN_ID: &[u8] = b"chain_id";
const META_RETENTION: &[u8] = b"retention";
const META_BLOCK_TIME: &[u8] = b"block_time";
const STALE_NODE: u8 = 0;
const STALE_VALUE: u8 = 1;

/// Staged writes: key → new value, or `None` to delete. Ordered, so iteration is deterministic.
pub type WriteSet = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The last committed version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Block height (0 = genesis only).
    pub height: u64,
    /// JMT root at that height.
    pub app_hash: [u8; 32],
}

/// A version computed by [`Store::stage`] and not yet written.
pub struct Staged {
    /// The version (block height).
    pub version: Version,
    /// The new root.
    pub root: [u8; 32],
    batch: TreeUpdateBatch,
    preimages: Vec<(KeyHash, Vec<u8>)>,
    /// Nodes of the top levels that staging read from RocksDB, for the [`TopCache`].
    fresh_top: Vec<(NodeKey, Node)>,
    /// The block's time, committed with it ([`Staged::with_block_time`]).
    block_time: Option<u64>,
}

impl Staged {
    /// This version is the state after a block of time `time` (unix seconds): [`Store::commit`]
    /// records it in the same atomic write, and [`Store::block_time`] answers it from then on.
    pub fn with_block_time(mut self, time: u64) -> Staged {
        self.block_time = Some(time);
        self
    }
}

/// The RocksDB-backed versioned Merkle store.
pub struct Store {
    db: Arc<DB>,
    committed: Option<Committed>,
    top: TopCache,
    retention: Arc<RetentionState>,
    cache: Cache,
    /// Tree node reads answered by the [`TopCache`] / from RocksDB, since the store opened.
    top_hits: AtomicU64,
    disk_reads: AtomicU64,
    last_commit: CommitStats,
}

/// What the last commit wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Tree nodes written.
    pub nodes: u64,
    /// Value versions written.
    pub values: u64,
    /// Tree nodes it made obsolete (for the pruner).
    pub stale_nodes: u64,
}

/// Operational readings of a store, for metrics.
#[derive(Clone, Debug, Default)]
pub struct StoreReadings {
    /// Bytes on disk (SST files) plus in memtables, per column family.
    pub bytes: Vec<(&'static str, u64)>,
    /// Bytes in the shared RocksDB block cache.
    pub block_cache_bytes: u64,
    /// Tree node reads answered from the in-memory top levels, since the store opened.
    pub top_cache_hits: u64,
    /// Tree node reads that went to RocksDB, since the store opened.
    pub disk_reads: u64,
    /// What the last commit wrote.
    pub last_commit: CommitStats,
    /// The first height kept in full.
    pub earliest: Version,
    /// The checkpoint interval kept below `earliest` (0: none).
    pub keep_every: u64,
    /// Entries the pruner deleted since the store opened: (tree nodes, value versions).
    pub pruned: (u64, u64),
}

/// Which versions are still readable: every version from `earliest`, and every multiple of
/// `keep_every` (0: none kept below `earliest`). Shared by the store and its pruner.
#[derive(Debug, Default)]
pub struct RetentionState {
    earliest: AtomicU64,
    keep_every: AtomicU64,
    pruned_nodes: AtomicU64,
    pruned_values: AtomicU64,
    /// Every stale entry up to this version is gone, as far as this process knows (0: not
    /// since the store opened, so the first run also sweeps what a crash left behind).
    swept: AtomicU64,
}

impl RetentionState {
    /// Whether version `v` (not above the last committed) can still be read.
    pub fn readable(&self, v: Version) -> bool {
        let every = self.keep_every.load(AtomicOrdering::Acquire);
        v >= self.earliest.load(AtomicOrdering::Acquire) || (every > 0 && v.is_multiple_of(every))
    }

    /// The first version kept in full.
    pub fn earliest(&self) -> Version {
        self.earliest.load(AtomicOrdering::Acquire)
    }

    /// The interval of the checkpoint versions kept below `earliest` (0: none).
    pub fn keep_every(&self) -> u64 {
        self.keep_every.load(AtomicOrdering::Acquire)
    }
}

/// Whether an entry needed by the versions `[created, stale_since)` must be kept for a
/// checkpoint version (a multiple of `keep_every` in that range).
fn needed_by_checkpoint(created: Version, stale_since: Version, keep_every: u64) -> bool {
    if keep_every == 0 {
        return false;
    }
    let first = created.div_ceil(keep_every).saturating_mul(keep_every);
    first < stale_since
}

/// Nibble depths `0..=TOP_DEPTH` of the tree are kept in memory: up to 69,905 nodes (~75 MB) at
/// depth 4. Nearly every block rewrites all of depths 0–2 and, with thousands of writes, most of
/// depths 3 and 4; the levels below are too many to keep (a million nodes at depth 5).
const TOP_DEPTH: usize = 4;

/// Threads reading one tree level's nodes. Reads from disk block on I/O, so more threads than
/// cores keep the disk busy; reads from the page cache cost ~13 µs of CPU each.
const PREFETCH_THREADS: usize = 8;

/// A level with fewer nodes to read than this is read on the calling thread.
const PREFETCH_PARALLEL_MIN: usize = 64;

/// The newest node at each path of the top [`TOP_DEPTH`] levels. A lookup answers only for the
/// exact `NodeKey` (version and path), so an entry that a later version replaced, or a path a
/// deletion removed, is never served for anything else; it merely takes memory until its path
/// is written again. Bounded by the number of paths at those depths.
#[derive(Default)]
struct TopCache {
    nodes: BTreeMap<NibblePath, (Version, Node)>,
}

impl TopCache {
    fn get(&self, key: &NodeKey) -> Option<Node> {
        if key.nibble_path().num_nibbles() > TOP_DEPTH {
            return None;
        }
        match self.nodes.get(key.nibble_path()) {
            Some((version, node)) if *version == key.version() => Some(node.clone()),
            _ => None,
        }
    }

    /// Keeps `node` if it is in the top levels and at least as new as what the path holds.
    fn offer(&mut self, key: &NodeKey, node: &Node) {
        if key.nibble_path().num_nibbles() > TOP_DEPTH {
            return;
        }
        match self.nodes.get(key.nibble_path()) {
            Some((version, _)) if *version >= key.version() => {}
            _ => {
                self.nodes
                    .insert(key.nibble_path().clone(), (key.version(), node.clone()));
            }
        }
    }
}

/// The share of each values memtable kept as a prefix bloom filter (RocksDB's
/// `memtable_prefix_bloom_size_ratio`; 64 MiB memtables keep 6.4 MiB of filter).
const MEMTABLE_PREFIX_BLOOM_RATIO: f64 = 0.1;

/// Size of the block cache shared by the column families.
const BLOCK_CACHE_BYTES: usize = 256 << 20;

/// Write-ahead log kept before RocksDB flushes the column families holding its oldest file.
const MAX_TOTAL_WAL_BYTES: u64 = 64 << 20;

/// The key hash the tree uses for `key`.
pub fn key_hash(key: &[u8]) -> KeyHash {
    KeyHash::with::<Sha256>(key)
}

impl Store {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        // A write-ahead log file is deleted only once every column family with data in it has
        // flushed. `meta` takes a few bytes per commit and would never fill a memtable, so by
        // default (4 × all write buffers, 2.5 GiB here) the log grew past the store it protects.
        // Past this size RocksDB flushes the column families that hold the oldest log.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        // Every read is a point read: a tree node by its key, or a value by its key hash (the
        // newest version at or below a height, one seek within the hash's prefix). Bloom filters
        // let reads of absent keys (most reads of a growing ledger: "no consent yet", a new
        // patient) skip SST files; one shared LRU cache keeps hot nodes, index and filter blocks.
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES)?;
        let table = |prefix_bloom: bool| {
            let mut t = BlockBasedOptions::default();
            t.set_block_cache(&cache);
            t.set_bloom_filter(10.0, false);
            t.set_cache_index_and_filter_blocks(true);
            t.set_pin_l0_filter_and_index_blocks_in_cache(true);
            if prefix_bloom {
                t.set_whole_key_filtering(false);
            }
            t
        };
        let cf = |name: &str, prefix_bloom: bool| {
            let mut o = Options::default();
            o.set_block_based_table_factory(&table(prefix_bloom));
            if prefix_bloom {
                // Values are keyed key-hash (32 bytes) ‖ version: filter on the hash.
                o.set_prefix_extractor(SliceTransform::create_fixed_prefix(32));
                // The same filter for the memtables: most reads are of absent keys, and without
                // it each one searched every memtable's skip list (the grid's profile:
                // `InlineSkipList::FindGreaterOrEqual` and its key compares were the app's top
                // frames, docs/performance.md "Profile of the capped grid").
                o.set_memtable_prefix_bloom_ratio(MEMTABLE_PREFIX_BLOOM_RATIO);
            }
            if name == CF_NODES {
                // Tree nodes are mostly SHA-256 hashes, which do not compress: Snappy would
                // only cost CPU on every flush, compaction and read.
                o.set_compression_type(DBCompressionType::None);
            }
            ColumnFamilyDescriptor::new(name, o)
        };
        let db = DB::open_cf_descriptors(
            &opts,
            path,
            vec![
                cf(CF_NODES, false),
                cf(CF_VALUES, true),
                cf(CF_PREIMAGES, false),
                cf(CF_META, false),
                cf(CF_STALE, false),
            ],
        )?;
        let mut store = Store {
            db: Arc::new(db),
            committed: None,
            top: TopCache::default(),
            retention: Arc::new(RetentionState::default()),
            cache,
            top_hits: AtomicU64::new(0),
            disk_reads: AtomicU64::new(0),
            last_commit: CommitStats::default(),
        };
        store.committed = store.read_committed()?;
        if let Some(bytes) = store.db.get_cf(store.cf(CF_META)?, META_RETENTION)? {
            let (earliest, every) = decode_retention(&bytes)?;
            store
                .retention
                .earliest
                .store(earliest, AtomicOrdering::Release);
            store
                .retention
                .keep_every
                .store(every, AtomicOrdering::Release);
        }
        Ok(store)
    }

    /// Whether version `version` can still be read: committed, and not pruned.
    pub fn available(&self, version: Version) -> bool {
        self.committed.is_some_and(|c| version <= c.height) && self.retention.readable(version)
    }

    /// Which versions are kept (see [`RetentionState`]).
    pub fn retention(&self) -> &RetentionState {
        &self.retention
    }

    /// Sizes, cache use, the last commit's writes and the pruner's progress (cheap: RocksDB
    /// properties and counters; for metrics after each commit).
    pub fn readings(&self) -> StoreReadings {
        let bytes = [CF_NODES, CF_VALUES, CF_PREIMAGES, CF_META, CF_STALE]
            .into_iter()
            .map(|name| {
                let prop = |p: &str| {
                    self.cf(name)
                        .ok()
                        .and_then(|cf| self.db.property_int_value_cf(cf, p).ok().flatten())
                        .unwrap_or(0)
                };
                (
                    name,
                    prop("rocksdb.total-sst-files-size") + prop("rocksdb.size-all-mem-tables"),
                )
            })
            .collect();
        StoreReadings {
            bytes,
            block_cache_bytes: self.cache.get_usage() as u64,
            top_cache_hits: self.top_hits.load(AtomicOrdering::Relaxed),
            disk_reads: self.disk_reads.load(AtomicOrdering::Relaxed),
            last_commit: self.last_commit,
            earliest: self.retention.earliest(),
            keep_every: self.retention.keep_every(),
            pruned: (
                self.retention.pruned_nodes.load(AtomicOrdering::Relaxed),
                self.retention.pruned_values.load(AtomicOrdering::Relaxed),
            ),
        }
    }

    /// Compacts every column family now, dropping what was overwritten or deleted (RocksDB
    /// otherwise does so when its background compactions reach those files). Rewrites the whole
    /// store: for tests and maintenance, not for a running node's hot path.
    pub fn compact(&self) -> Result<(), StoreError> {
        for name in [CF_NODES, CF_VALUES, CF_PREIMAGES, CF_META, CF_STALE] {
            self.db
                .compact_range_cf(self.cf(name)?, None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// How many entries the tree's nodes, the value versions and the pruning index hold. Reads
    /// every entry: for tests and soaks, not for a running node.
    pub fn count_entries(&self) -> Result<EntryCounts, StoreError> {
        let count = |name: &str| -> Result<u64, StoreError> {
            let mut iter = self.db.raw_iterator_cf(self.cf(name)?);
            iter.seek_to_first();
            let mut n = 0;
            while iter.valid() {
                n += 1;
                iter.next();
            }
            iter.status()?;
            Ok(n)
        };
        Ok(EntryCounts {
            nodes: count(CF_NODES)?,
            values: count(CF_VALUES)?,
            stale: count(CF_STALE)?,
        })
    }

    /// An exporter of this store's versions, to run on another thread (state sync snapshots).
    pub fn exporter(&self) -> Exporter {
        Exporter {
            db: self.db.clone(),
            retention: self.retention.clone(),
        }
    }

    /// Stages `entries` (every key and value of a state) as version `version` of an empty tree:
    /// a state sync restore. Nothing is written; the caller compares the root with the app hash
    /// the light client verified, then [`Store::commit_restore`]s. Only a store holding nothing
    /// but genesis may restore.
    pub fn stage_restore(
        &self,
        version: Version,
        entries: &WriteSet,
    ) -> Result<Staged, StoreError> {
        if self.committed.is_some_and(|c| c.height > 0) {
            return Err(StoreError::Tree(format!(
                "restoring version {version} over a store that holds blocks"
            )));
        }
        if version == 0 || entries.is_empty() {
            return Err(StoreError::Tree(
                "a restore needs a height and entries".into(),
            ));
        }
        // jmt builds version `version` over the root of `version - 1`: make that an empty tree
        // (the same trick jmt uses for version 0), without writing it.
        let empty_root: NodeKey = borsh::from_slice(
            &[
                &(version - 1).to_le_bytes()[..],
                &0u64.to_le_bytes(),
                &0u32.to_le_bytes(),
            ]
            .concat(),
        )
        .map_err(|e| StoreError::Tree(format!("empty root key: {e}")))?;
        let nodes = BTreeMap::from([(empty_root, Node::Null)]);
        self.stage_over(version, key_set(entries), entries, nodes, Vec::new())
    }

    /// Writes a restored version (see [`Store::stage_restore`]): first removes genesis, then
    /// commits the version, and marks every earlier version unreadable (queries below it are
    /// answered `pruned`), keeping checkpoints every `keep_every` from then on.
    pub fn commit_restore(
        &mut self,
        staged: Staged,
        keep_every: u64,
    ) -> Result<Committed, StoreError> {
        for name in [CF_NODES, CF_VALUES, CF_PREIMAGES, CF_STALE] {
            let cf = self.cf(name)?;
            let mut wb = WriteBatch::default();
            let mut iter = self.db.raw_iterator_cf(cf);
            iter.seek_to_first();
            while let Some(k) = iter.key() {
                wb.delete_cf(cf, k);
                iter.next();
            }
            iter.status()?;
            self.db.write(wb)?;
        }
        self.committed = None;
        self.top = TopCache::default();
        // The restored state's block time is not in the snapshot: none until the next commit.
        self.db.delete_cf(self.cf(CF_META)?, META_BLOCK_TIME)?;
        let version = staged.version;
        let committed = self.commit(staged)?;
        let mut record = version.to_be_bytes().to_vec();
        record.extend_from_slice(&keep_every.to_be_bytes());
        self.db.put_cf(self.cf(CF_META)?, META_RETENTION, &record)?;
        self.retention
            .keep_every
            .store(keep_every, AtomicOrdering::Release);
        self.retention
            .earliest
            .store(version, AtomicOrdering::Release);
        Ok(committed)
    }

    /// A pruner of this store, to run on another thread.
    pub fn pruner(&self) -> Pruner {
        Pruner {
            db: self.db.clone(),
            retention: self.retention.clone(),
        }
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Tree(format!("column family {name} missing")))
    }

    fn read_committed(&self) -> Result<Option<Committed>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_META)?, META_COMMITTED)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt {
            key: "meta/committed".into(),
            reason: "not 40 bytes".into(),
        };
        let height = medledger_tx::keys::decode_u64(bytes.get(..8).ok_or_else(corrupt)?)
            .ok_or_else(corrupt)?;
        let app_hash: [u8; 32] = bytes
            .get(8..40)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?;
        Ok(Some(Committed { height, app_hash }))
    }

    /// The last committed version, or `None` before genesis was written.
    pub fn committed(&self) -> Option<Committed> {
        self.committed
    }

    /// The chain id written at genesis.
    pub fn chain_id(&self) -> Result<Option<String>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_META)?, META_CHAIN_ID)? else {
            return Ok(None);
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt {
                key: "meta/chain_id".into(),
                reason: "not UTF-8".into(),
            })
    }

    /// The time of the last committed block, as its commit recorded it; `None` before the first
    /// block (or in a store from before block times were kept, until its next commit).
    pub fn block_time(&self) -> Result<Option<u64>, StoreError> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_META)?, META_BLOCK_TIME)? else {
            return Ok(None);
        };
        medledger_tx::keys::decode_u64(&bytes)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                key: "meta/block_time".into(),
                reason: "not 8 bytes".into(),
            })
    }

    /// The value of `key` at `version` (`None` if absent then).
    pub fn get_at(&self, key: &[u8], version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        self.value_at(version, key_hash(key))
    }

    /// The value of `key` in the last committed version.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.committed {
            Some(c) => self.get_at(key, c.height),
            None => Ok(None),
        }
    }

    fn value_at(&self, version: Version, hash: KeyHash) -> Result<Option<Vec<u8>>, StoreError> {
        let mut seek = Vec::with_capacity(40);
        seek.extend_from_slice(&hash.0);
        seek.extend_from_slice(&version.to_be_bytes());
        let mut read = ReadOptions::default();
        read.set_prefix_same_as_start(true); // stay within the hash's prefix, use its bloom
        let mut iter = self.db.raw_iterator_cf_opt(self.cf(CF_VALUES)?, read);
        iter.seek_for_prev(&seek);
        if !iter.valid() {
            iter.status()?;
            return Ok(None);
        }
        match (iter.key(), iter.value()) {
            (Some(k), Some(v)) if k.len() == 40 && k[..32] == hash.0 => decode_value(v),
            _ => Ok(None),
        }
    }

    /// The value of `key` at `version` with an ICS23 proof of membership, or of absence, against
    /// the root of that version.
    pub fn prove(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, ics23::CommitmentProof), StoreError> {
        Sha256Jmt::new(self)
            .get_with_ics23_proof(key.to_vec(), version)
            .map_err(|e| StoreError::Tree(e.to_string()))
    }

    /// The root of a committed version.
    pub fn root_at(&self, version: Version) -> Result<[u8; 32], StoreError> {
        Sha256Jmt::new(self)
            .get_root_hash(version)
            .map(|r| r.0)
            .map_err(|e| StoreError::Tree(e.to_string()))
    }

    /// Computes version `version` = the last committed version plus `writes`, without writing.
    pub fn stage(&self, version: Version, writes: &WriteSet) -> Result<Staged, StoreError> {
        let expected = self.committed.map_or(0, |c| c.height + 1);
        if version != expected {
            return Err(StoreError::Tree(format!(
                "staging version {version}, expected {expected}"
            )));
        }
        let set = key_set(writes);
        let mut hashes: Vec<KeyHash> = set.iter().map(|(h, _)| *h).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut fresh_top = Vec::new();
        let nodes = match self.committed {
            Some(c) => self.prefetch(c.height, &hashes, &mut fresh_top)?,
            None => BTreeMap::new(),
        };
        self.stage_over(version, set, writes, nodes, fresh_top)
    }

    /// Computes version `version` from `set` (the hashed `writes`) over the tree whose nodes
    /// `nodes` holds (falling back to the store), without writing.
    fn stage_over(
        &self,
        version: Version,
        set: Vec<(KeyHash, Option<OwnedValue>)>,
        writes: &WriteSet,
        nodes: BTreeMap<NodeKey, Node>,
        fresh_top: Vec<(NodeKey, Node)>,
    ) -> Result<Staged, StoreError> {
        let reader = Prefetched { store: self, nodes };
        let tree = Sha256Jmt::new(&reader);
        // Without deletions, jmt's batch update visits and hashes each touched node once; the
        // key-by-key update (which also deletes) rewrites and rehashes the path for every key.
        // Both give the same tree (tests/store.rs checks them against jmt's own model).
        let (root, batch) = if !set.is_empty() && set.iter().all(|(_, v)| v.is_some()) {
            let puts = set.into_iter().filter_map(|(h, v)| Some((h, v?))).collect();
            tree.batch_put_value_sets(vec![puts], None, version)
                .map(|(roots, batch)| (roots.first().copied(), batch))
        } else {
            tree.put_value_set(set, version)
                .map(|(root, batch)| (Some(root), batch))
        }
        .map_err(|e| StoreError::Tree(e.to_string()))?;
        let root = root.ok_or_else(|| StoreError::Tree("no root computed".into()))?;
        let preimages = writes
            .iter()
            .filter(|(_, v)| v.as_ref().is_some_and(|v| !v.is_empty()))
            .map(|(k, _)| (key_hash(k), k.clone()))
            .collect();
        Ok(Staged {
            version,
            root: root.0,
            batch,
            preimages,
            fresh_top,
            block_time: None,
        })
    }

    /// Reads every node of version `version`'s tree on the paths to `hashes` (sorted, unique):
    /// the nodes the tree update will visit, and the leaf each new key splits. Top-level nodes
    /// that were not cached are also copied to `fresh_top`.
    fn prefetch(
        &self,
        version: Version,
        hashes: &[KeyHash],
        fresh_top: &mut Vec<(NodeKey, Node)>,
    ) -> Result<BTreeMap<NodeKey, Node>, StoreError> {
        let mut nodes = BTreeMap::new();
        // Each entry: a node to read and the range of `hashes` whose paths go through it.
        let mut level: Vec<(NodeKey, Range<usize>)> = vec![(
            NodeKey::new(version, NibblePath::from_iter([])),
            0..hashes.len(),
        )];
        let mut depth = 0;
        while !level.is_empty() && !hashes.is_empty() {
            let keys: Vec<&NodeKey> = level.iter().map(|(k, _)| k).collect();
            let read = self.read_nodes(&keys)?;
            let mut next = Vec::new();
            for ((key, range), (node, from_disk)) in level.into_iter().zip(read) {
                let Some(node) = node else { continue };
                if from_disk && depth <= TOP_DEPTH {
                    fresh_top.push((key.clone(), node.clone()));
                }
                // A path has at most 64 nibbles (a 32-byte key hash); a deeper internal node
                // could only come from a corrupt store, and the update itself will report it.
                let inner = match &node {
                    Node::Internal(inner) if depth < KEY_NIBBLES => Some(inner),
                    _ => None,
                };
                if let Some(inner) = inner {
                    let mut i = range.start;
                    for (nibble, child) in inner.children_sorted() {
                        let n = u8::from(nibble);
                        while i < range.end && nibble_at(&hashes[i], depth) < n {
                            i += 1;
                        }
                        let start = i;
                        while i < range.end && nibble_at(&hashes[i], depth) == n {
                            i += 1;
                        }
                        if start < i {
                            let path = key.nibble_path().nibbles().chain([nibble]).collect();
                            next.push((NodeKey::new(child.version, path), start..i));
                        }
                    }
                }
                nodes.insert(key, node);
            }
            level = next;
            depth += 1;
        }
        Ok(nodes)
    }

    /// Reads `keys`: from the [`TopCache`], else from RocksDB in sorted batches (`MultiGet`) on
    /// up to [`PREFETCH_THREADS`] threads. Each node comes with whether it was read from disk.
    fn read_nodes(&self, keys: &[&NodeKey]) -> Result<Vec<(Option<Node>, bool)>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        let mut misses = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let cached = self.top.get(key);
            if cached.is_none() {
                misses.push((borsh_bytes(key)?, i));
            }
            out.push((cached, false));
        }
        self.top_hits
            .fetch_add((keys.len() - misses.len()) as u64, AtomicOrdering::Relaxed);
        self.disk_reads
            .fetch_add(misses.len() as u64, AtomicOrdering::Relaxed);
        misses.sort_unstable();
        let read = |chunk: &[(Vec<u8>, usize)]| -> Result<Vec<(usize, Node)>, StoreError> {
            let got = self.db.batched_multi_get_cf(
                self.cf(CF_NODES)?,
                chunk.iter().map(|(k, _)| k),
                true,
            );
            let mut found = Vec::with_capacity(chunk.len());
            for ((key, i), bytes) in chunk.iter().zip(got) {
                if let Some(bytes) = bytes? {
                    found.push((*i, decode_node(key, &bytes)?));
                }
            }
            Ok(found)
        };
        let threads = if misses.len() < PREFETCH_PARALLEL_MIN {
            1
        } else {
            PREFETCH_THREADS
        };
        let chunk = misses.len().div_ceil(threads).max(1);
        let parts: Vec<Result<Vec<(usize, Node)>, StoreError>> = if threads == 1 {
            vec![read(&misses)]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = misses
                    .chunks(chunk)
                    .map(|c| s.spawn(move || read(c)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(StoreError::Tree("node reader panicked".into()))
                        })
                    })
                    .collect()
            })
        };
        for part in parts {
            for (i, node) in part? {
                if let Some(slot) = out.get_mut(i) {
                    *slot = (Some(node), true);
                }
            }
        }
        Ok(out)
    }

    /// One node from RocksDB.
    fn read_node(&self, key: &NodeKey) -> Result<Option<Node>, StoreError> {
        let key = borsh_bytes(key)?;
        match self.db.get_pinned_cf(self.cf(CF_NODES)?, &key)? {
            Some(bytes) => decode_node(&key, &bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a staged version and marks it committed, atomically.
    pub fn commit(&mut self, staged: Staged) -> Result<Committed, StoreError> {
        let mut wb = WriteBatch::default();
        let (nodes, values, preimages, meta) = (
            self.cf(CF_NODES)?,
            self.cf(CF_VALUES)?,
            self.cf(CF_PREIMAGES)?,
            self.cf(CF_META)?,
        );
        let (mut key_buf, mut node_buf) = (Vec::new(), Vec::new());
        for (node_key, node) in staged.batch.node_batch.nodes() {
            borsh_into(node_key, &mut key_buf)?;
            borsh_into(node, &mut node_buf)?;
            wb.put_cf(nodes, &key_buf, &node_buf);
        }
        for ((version, hash), value) in staged.batch.node_batch.values() {
            let mut k = Vec::with_capacity(40);
            k.extend_from_slice(&hash.0);
            k.extend_from_slice(&version.to_be_bytes());
            wb.put_cf(values, k, encode_value(value.as_deref()));
        }
        for (hash, key) in &staged.preimages {
            wb.put_cf(preimages, hash.0, key);
        }
        let stale = self.cf(CF_STALE)?;
        for index in &staged.batch.stale_node_index_batch {
            let mut k = index.stale_since_version.to_be_bytes().to_vec();
            k.push(STALE_NODE);
            k.extend_from_slice(&borsh_bytes(&index.node_key)?);
            wb.put_cf(stale, k, []);
        }
        for (version, hash) in staged.batch.node_batch.values().keys() {
            let mut k = version.to_be_bytes().to_vec();
            k.push(STALE_VALUE);
            k.extend_from_slice(&hash.0);
            wb.put_cf(stale, k, []);
        }
        let committed = Committed {
            height: staged.version,
            app_hash: staged.root,
        };
        let mut record = committed.height.to_be_bytes().to_vec();
        record.extend_from_slice(&committed.app_hash);
        wb.put_cf(meta, META_COMMITTED, record);
        if let Some(time) = staged.block_time {
            wb.put_cf(meta, META_BLOCK_TIME, time.to_be_bytes());
        }
        crate::fault::crash_point("commit-before-write", committed.height);
        self.db.write(wb)?;
        crate::fault::crash_point("commit-after-write", committed.height);
        self.committed = Some(committed);
        self.last_commit = CommitStats {
            nodes: staged.batch.node_batch.nodes().len() as u64,
            values: staged.batch.node_batch.values().len() as u64,
            stale_nodes: staged.batch.stale_node_index_batch.len() as u64,
        };
        for (key, node) in &staged.fresh_top {
            self.top.offer(key, node);
        }
        for (key, node) in staged.batch.node_batch.nodes() {
            self.top.offer(key, node);
        }
        Ok(committed)
    }

    /// Records the chain id (at genesis).
    pub fn set_chain_id(&self, chain_id: &str) -> Result<(), StoreError> {
        self.db
            .put_cf(self.cf(CF_META)?, META_CHAIN_ID, chain_id.as_bytes())?;
        Ok(())
    }
}

fn decode_retention(bytes: &[u8]) -> Result<(Version, u64), StoreError> {
    let corrupt = || StoreError::Corrupt {
        key: "meta/retention".into(),
        reason: "not 16 bytes".into(),
    };
    let earliest = bytes
        .get(..8)
        .and_then(medledger_tx::keys::decode_u64)
        .ok_or_else(corrupt)?;
    let every = bytes
        .get(8..16)
        .and_then(medledger_tx::keys::decode_u64)
        .ok_or_else(corrupt)?;
    Ok((earliest, every))
}

/// Entries per column family ([`Store::count_entries`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryCounts {
    /// Tree nodes.
    pub nodes: u64,
    /// Value versions.
    pub values: u64,
    /// Pruning index entries not yet processed.
    pub stale: u64,
}

/// What one pruning pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Tree nodes deleted.
    pub nodes: u64,
    /// Value entries deleted.
    pub values: u64,
    /// Obsolete entries kept because a checkpoint version needs them.
    pub kept_for_checkpoints: u64,
}

/// Reads whole versions for state sync snapshots, on a thread of its own: from a RocksDB
/// snapshot, so the pruner and new commits do not change what it reads.
pub struct Exporter {
    db: Arc<DB>,
    retention: Arc<RetentionState>,
}

impl Exporter {
    /// Calls `f` with every key and value of version `version`, in key-hash order.
    pub fn for_each(
        &self,
        version: Version,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let cf = |name: &str| {
            self.db
                .cf_handle(name)
                .ok_or_else(|| StoreError::Tree(format!("column family {name} missing")))
        };
        let (values, preimages) = (cf(CF_VALUES)?, cf(CF_PREIMAGES)?);
        let snap = self.db.snapshot();
        if !self.retention.readable(version) {
            return Err(StoreError::Tree(format!("version {version} is pruned")));
        }
        let mut read = ReadOptions::default();
        read.set_total_order_seek(true); // every hash, not one prefix
        let mut iter = snap.raw_iterator_cf_opt(values, read);
        iter.seek_to_first();
        // Entries are key hash ‖ version: for each hash, the last one at or below `version`.
        let mut current: Option<([u8; 32], Option<Vec<u8>>)> = None;
        let mut emit = |entry: Option<([u8; 32], Option<Vec<u8>>)>| -> Result<(), StoreError> {
            if let Some((hash, Some(value))) = entry {
                let key = snap
                    .get_cf(preimages, hash)?
                    .ok_or_else(|| StoreError::Corrupt {
                        key: hex::encode(hash),
                        reason: "no preimage for a live key".into(),
                    })?;
                f(&key, &value)?;
            }
            Ok(())
        };
        while let (Some(k), Some(v)) = (iter.key(), iter.value()) {
            if k.len() != 40 {
                return Err(StoreError::Corrupt {
                    key: hex::encode(k),
                    reason: "values key is not hash ‖ version".into(),
                });
            }
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&k[..32]);
            let mut ver = [0u8; 8];
            ver.copy_from_slice(&k[32..]);
            if current.as_ref().is_some_and(|(h, _)| *h != hash) {
                emit(current.take())?;
            }
            if u64::from_be_bytes(ver) <= version {
                current = Some((hash, decode_value(v)?));
            } else if current.is_none() {
                current = Some((hash, None)); // only later versions: absent at `version`
            }
            iter.next();
        }
        iter.status()?;
        emit(current)?;
        Ok(())
    }
}

/// Deletes what no retained version needs (see the module docs). Runs on its own thread: it
/// shares the database with the [`Store`], never the tree being staged (only versions before
/// `earliest` lose anything, and `earliest` stays behind the last committed version).
pub struct Pruner {
    db: Arc<DB>,
    retention: Arc<RetentionState>,
}

/// Stale index entries deleted per write batch.
const PRUNE_BATCH: usize = 10_000;

impl Pruner {
    fn cf(&self, name: &str) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| StoreError::Tree(format!("column family {name} missing")))
    }

    /// Keeps every version from `earliest` and every multiple of `keep_every` (0: none), and
    /// deletes what only other versions needed. `earliest` never moves back, and `keep_every`
    /// cannot change once pruning started (what it did not keep is gone).
    pub fn prune(&self, earliest: Version, keep_every: u64) -> Result<PruneStats, StoreError> {
        let before = self.retention.earliest();
        if earliest <= before {
            return Ok(PruneStats::default());
        }
        let every = if before == 0 {
            keep_every
        } else {
            self.retention.keep_every()
        };
        // Publish first: from now on reads of the versions about to go are refused.
        let mut record = earliest.to_be_bytes().to_vec();
        record.extend_from_slice(&every.to_be_bytes());
        self.db.put_cf(self.cf(CF_META)?, META_RETENTION, &record)?;
        self.retention
            .keep_every
            .store(every, AtomicOrdering::Release);
        self.retention
            .earliest
            .store(earliest, AtomicOrdering::Release);

        let (nodes, values, stale) = (self.cf(CF_NODES)?, self.cf(CF_VALUES)?, self.cf(CF_STALE)?);
        let mut stats = PruneStats::default();
        let mut iter = self.db.raw_iterator_cf(stale);
        // Entries stale at or before `swept` went in an earlier run of this process; their
        // tombstones stay until compaction reaches them, and scanning past them from the first
        // key made every run slower than the last. The first run after opening starts at the
        // first key: a crash may have left entries behind a published window.
        match self.retention.swept.load(AtomicOrdering::Acquire) {
            0 => iter.seek_to_first(),
            swept => iter.seek((swept + 1).to_be_bytes()),
        }
        let mut wb = WriteBatch::default();
        let mut in_batch = 0usize;
        while iter.valid() {
            let Some(key) = iter.key() else { break };
            let since = key
                .get(..8)
                .and_then(medledger_tx::keys::decode_u64)
                .ok_or_else(|| StoreError::Corrupt {
                    key: format!("stale/{}", hex::encode(key)),
                    reason: "no version".into(),
                })?;
            if since > earliest {
                break;
            }
            match (key.get(8), key.get(9..)) {
                (Some(&STALE_NODE), Some(node_key)) => {
                    let nk: NodeKey =
                        borsh::from_slice(node_key).map_err(|e| StoreError::Corrupt {
                            key: format!("stale/{}", hex::encode(key)),
                            reason: e.to_string(),
                        })?;
                    if needed_by_checkpoint(nk.version(), since, every) {
                        stats.kept_for_checkpoints += 1;
                    } else {
                        wb.delete_cf(nodes, node_key);
                        stats.nodes += 1;
                    }
                }
                (Some(&STALE_VALUE), Some(hash)) if hash.len() == 32 && since > 0 => {
                    // The entry this write made obsolete: the newest one before it.
                    let mut seek = hash.to_vec();
                    seek.extend_from_slice(&(since - 1).to_be_bytes());
                    let mut read = ReadOptions::default();
                    read.set_prefix_same_as_start(true);
                    let mut prev = self.db.raw_iterator_cf_opt(values, read);
                    prev.seek_for_prev(&seek);
                    if let Some(k) = prev.key().filter(|k| k.len() == 40 && &k[..32] == hash) {
                        let created = medledger_tx::keys::decode_u64(&k[32..]).unwrap_or(0);
                        if needed_by_checkpoint(created, since, every) {
                            stats.kept_for_checkpoints += 1;
                        } else {
                            wb.delete_cf(values, k);
                            stats.values += 1;
                        }
                    }
                    prev.status()?;
                }
                _ => {}
            }
            wb.delete_cf(stale, key);
            in_batch += 1;
            if in_batch >= PRUNE_BATCH {
                self.db.write(std::mem::take(&mut wb))?;
                in_batch = 0;
            }
            iter.next();
        }
        iter.status()?;
        self.db.write(wb)?;
        self.retention
            .swept
            .store(earliest, AtomicOrdering::Release);
        self.retention
            .pruned_nodes
            .fetch_add(stats.nodes, AtomicOrdering::Relaxed);
        self.retention
            .pruned_values
            .fetch_add(stats.values, AtomicOrdering::Relaxed);
        Ok(stats)
    }
}

fn borsh_bytes<T: borsh::BorshSerialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    borsh::to_vec(v).map_err(|e| StoreError::Tree(format!("borsh: {e}")))
}

/// A tree node stored under the encoded node key `key`.
fn decode_node(key: &[u8], bytes: &[u8]) -> Result<Node, StoreError> {
    borsh::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("nodes/{}", hex::encode(key)),
        reason: e.to_string(),
    })
}

/// Encodes `v` into `buf`, replacing its contents and keeping its allocation.
fn borsh_into<T: borsh::BorshSerialize>(v: &T, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    buf.clear();
    v.serialize(buf)
        .map_err(|e| StoreError::Tree(format!("borsh: {e}")))
}

/// `writes` as the tree takes them: key hashes, and an empty value as the key's absence (ICS23
/// refuses to prove an empty value, and with it the absence of the keys beside it; every reader
/// of a key that can be empty, an empty list or a registry before validators, already reads
/// absence as empty).
fn key_set(writes: &WriteSet) -> Vec<(KeyHash, Option<OwnedValue>)> {
    writes
        .iter()
        .map(|(k, v)| (key_hash(k), v.clone().filter(|v| !v.is_empty())))
        .collect()
}

fn encode_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        None => vec![0],
        Some(v) => {
            let mut out = Vec::with_capacity(v.len() + 1);
            out.push(1);
            out.extend_from_slice(v);
            out
        }
    }
}

fn decode_value(bytes: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    match bytes.split_first() {
        Some((0, [])) => Ok(None),
        Some((1, v)) => Ok(Some(v.to_vec())),
        _ => Err(StoreError::Corrupt {
            key: "values".into(),
            reason: "bad value tag".into(),
        }),
    }
}

/// Nibbles in a key hash: the deepest a tree path goes.
const KEY_NIBBLES: usize = 64;

/// Nibble `i` (< [`KEY_NIBBLES`]) of a key hash (the tree's path to it), high nibble first.
fn nibble_at(hash: &KeyHash, i: usize) -> u8 {
    let byte = hash.0[i / 2];
    if i.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

/// The committed tree plus the nodes [`Store::prefetch`] read for one block.
struct Prefetched<'a> {
    store: &'a Store,
    nodes: BTreeMap<NodeKey, Node>,
}

impl TreeReader for Prefetched<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.nodes.get(node_key) {
            Some(node) => Ok(Some(node.clone())),
            None => self.store.get_node_option(node_key),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        self.store.get_value_option(max_version, key_hash)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        self.store.get_rightmost_leaf()
    }
}

impl TreeReader for Store {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.top.get(node_key) {
            Some(node) => Ok(Some(node)),
            None => Ok(self.read_node(node_key)?),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value_at(max_version, key_hash)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's restore and migration paths call this; medledger uses neither.
        anyhow::bail!("get_rightmost_leaf is not supported by the medledger store")
    }
}

impl HasPreimage for Store {
    fn preimage(&self, key_hash: KeyHash) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_PREIMAGES)?, key_hash.0)?)
    }
}

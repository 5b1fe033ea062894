//! Errors of the state crate.
//!
//! Two kinds that must never be confused: a [`TxError`] is a refused transaction (the block goes
//! on, the tx gets a code); a [`StoreError`] means this node cannot read or write its own state,
//! and it must stop rather than compute an app hash the others would not.

use medledger_tx::TxError;

/// The node's storage failed or holds something it did not write.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// RocksDB returned an error.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// The Jellyfish Merkle tree failed (a missing node means a corrupt or foreign database).
    #[error("merkle tree: {0}")]
    Tree(String),
    /// A stored value does not decode.
    #[error("corrupt value at {key}: {reason}")]
    Corrupt {
        /// The key, printed lossily.
        key: String,
        /// What did not decode.
        reason: String,
    },
    /// The genesis app_state is invalid.
    #[error("genesis: {0}")]
    Genesis(String),
    /// Commit was called with no finalized block to persist.
    #[error("commit without a finalized block")]
    NothingToCommit,
    /// Governance scheduled an upgrade this release does not know: stop before the block.
    #[error("upgrade {name:?} at height {height} needs app version {app_version}; this medledger runs up to {supported}: install the new release and restart (docs/deploy.md, \"Upgrades\")")]
    UpgradeNeeded {
        /// The release's name.
        name: String,
        /// The block that applies it.
        height: u64,
        /// The version it needs.
        app_version: u64,
        /// The highest this release runs.
        supported: u64,
    },
}

/// Why applying a transaction did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The transaction is refused: it gets this code and writes nothing.
    #[error(transparent)]
    Rejected(#[from] TxError),
    /// The node's storage failed: stop.
    #[error(transparent)]
    Store(#[from] StoreError),
}

//! The deterministic state machine of medledger and its Merkleized, versioned store.
//!
//! Only this crate touches storage. Nothing here reads a clock, iterates a hash map, uses floats
//! or randomness: the same blocks give the same app hash on every node.

pub mod apply;
pub mod domain;
pub mod error;
pub mod fault;
pub mod genesis;
pub mod lanes;
pub mod ledger;
pub mod lists;
pub mod nonces;
pub mod snapshot;
pub mod store;
pub mod upgrade;
pub mod view;

pub use domain::{BlockCtx, Event};
pub use error::{ApplyError, StoreError};
pub use ledger::{BlockResult, Ledger, QueryAnswer};
pub use store::{Committed, Store};

//! medledger transactions and the ledger's data schema.
//!
//! This crate is pure: no storage, no network, no clock. It holds
//! - the protobuf types of transactions and state values ([`pb`], generated from `proto/`),
//! - decoding of untrusted bytes with explicit limits and canonical-form checks ([`envelope`]),
//! - domain-separated Ed25519 signing and verification ([`envelope::sign_tx`], [`VerifiedTx`]),
//! - stateless checks of every message ([`check`]),
//! - every storage key of the Merkleized state ([`keys`]), shared by the state machine and the
//!   standalone proof verifier,
//! - the stable rejection codes ([`Code`], [`TxError`]).

pub mod boxkey;
pub mod check;
pub mod checkpoint;
pub mod digest;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod keyproof;
pub mod keys;
pub mod limits;
pub mod recovery;
pub mod rules;

/// Types generated from `proto/medledger/v1/*.proto`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    include!(concat!(env!("OUT_DIR"), "/medledger.v1.rs"));
}

pub use envelope::{decode_tx, sign_tx, SigCache, SignedTx, VerifiedTx};
pub use error::{Code, QueryCode, TxError};

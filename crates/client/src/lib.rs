//! What talks to a medledger chain from outside the nodes, shared by the CLI, the integration
//! tests and the gateway: the RPC client ([`rpc`]), the signing keys ([`keyring`]), end-to-end
//! verification against the consortium's signatures ([`verify`]) and the determinism check
//! ([`replay`]). No command-line code lives here.

pub mod keyring;
pub mod replay;
pub mod rpc;
pub mod unordered;
pub mod verify;

pub use keyring::Keyring;
pub use rpc::{Client, EventView, ProvenAnswer, TxReport};

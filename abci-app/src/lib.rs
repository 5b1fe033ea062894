//! The medledger node and CLI, as a library so that tests drive the same code as the binary.

pub mod cli;
pub mod client;
pub mod cometbft;
pub mod keyring;
pub mod loadgen;
pub mod localnet;
pub mod replay;
pub mod server;
pub mod verify;

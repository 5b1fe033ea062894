//! The medledger node and CLI, as a library so that tests drive the same code as the binary:
//! the ABCI server ([`server`]) and the commands ([`cli`]), thin over `medledger-client`,
//! `medledger-devnet` and `medledger-loadgen`.

pub mod cli;
pub mod metrics;
pub mod server;

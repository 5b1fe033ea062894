//! The medledger node and CLI, as a library so that tests drive the same code as the binary.

pub mod server;

//! `medledger`: see `medledger --help`.
fn main() {}

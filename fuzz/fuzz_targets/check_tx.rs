//! cargo-fuzz target `check_tx`: see `crates/state/tests/harness/mod.rs` (shared with the
//! regression test `crates/state/tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../../crates/state/tests/harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::check_tx(data));

//! cargo-fuzz target `apply`: see `crates/state/tests/harness/mod.rs` (shared with the
//! regression test `crates/state/tests/fuzz_corpus.rs`).

#![no_main]

#[path = "../../crates/state/tests/harness/mod.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::apply(data));

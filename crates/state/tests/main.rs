//! medledger-state's integration tests, one test binary: each suite file beside this one is a
//! module, so the crate and RocksDB are linked once for all of them rather than once per suite
//! (issue 24). Run one suite or one test by its path:
//!
//! ```sh
//! cargo test --release -p medledger-state --test it claims::
//! cargo test --release -p medledger-state --test it gateway::a_member_admin_sets
//! ```
//!
//! `common` is the test kit (a ledger on a temp RocksDB, signers, blocks); `harness` is the fuzz
//! harness the cargo-fuzz targets in `fuzz/` include by path. Property tests keep their failure
//! seeds in `crates/state/proptest-regressions/<suite>.txt` (proptest's place for sources under a
//! `main.rs`).

mod common;
mod harness;

mod adversarial;
mod claims;
mod custody;
mod digest;
mod evidence_and_guardians;
mod fuzz_corpus;
mod gateway;
mod governance;
mod ledger;
mod mempool;
mod patient_copy;
mod prune;
mod records_erasure;
mod refused;
mod report;
mod review_attacks;
mod rules;
mod smart;
mod snapshot;
mod store;
mod unordered;
mod web_release;

/// A suite file left out of the list above would compile into nothing and never run.
#[test]
fn every_suite_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(suite) = name.strip_suffix(".rs").filter(|s| *s != "main") {
            assert!(
                main.contains(&format!("\nmod {suite};\n")),
                "tests/{name} is not declared in tests/main.rs (`mod {suite};`)"
            );
        }
    }
}

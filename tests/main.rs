//! medledger's integration tests (package `medledger-it`), one test binary: each suite file
//! beside this one is a module, so the workspace's crates and RocksDB are linked once for all of
//! them rather than once per suite (issue 24). Run one suite or one test by its path:
//!
//! ```sh
//! cargo test --release -p medledger-it --test it faults::
//! cargo test --release -p medledger-it --test it consortium::killed_app_replays
//! ```
//!
//! The harness runs tests of different suites side by side (two threads on two cores). Every test
//! that starts processes holds the machine while it runs ([`support::exclusive`]; a
//! [`support::TestNet`] holds it for its test), so each localnet, `bench` and browser still has
//! the machine to itself, as when every suite was its own binary run after the others.

mod support;

mod consortium;
mod custody;
mod deploy;
mod document_reference;
mod faults;
mod fhir;
mod fhir_search;
mod fhir_update;
mod governance;
mod hapi;
mod journey;
mod layout;
mod loadgen;
mod object_store;
mod overload;
mod pages;
mod pages_breakglass;
mod pages_mydata;
mod pages_notify;
mod pages_refused;
mod pages_release;
mod pages_report;
mod patient_copy;
mod reshare;
mod retention;
mod smart;
mod statesync;
mod subscriptions;
mod upgrade;
mod vault;

/// A suite file left out of the list above would compile into nothing and never run.
#[test]
fn every_suite_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let main = std::fs::read_to_string(dir.join("main.rs")).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
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

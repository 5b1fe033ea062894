//! Consortia on one machine for development, tests and benchmarks, and the one configuration
//! path every deployment uses ([`deploy`]: member init, genesis assembly, node install): the
//! localnet launcher
//! ([`localnet`]: four validators, each a CometBFT and a `medledger start` process), the pinned
//! CometBFT ([`cometbft`]) and throwaway nets that clean up after themselves ([`throwaway`]).
//!
//! A devnet runs the `medledger` binary; [`medledger_bin`] finds it for programs other than
//! the binary itself (the integration tests).

use std::path::PathBuf;

use anyhow::{bail, Context};

pub mod cometbft;
pub mod deploy;
pub mod localnet;
pub mod throwaway;

pub use localnet::{AppKind, Localnet, NodePorts, NodeSpec, Proc, Spec, MEMBERS};
pub use throwaway::ThrowawayNet;

/// The environment variable naming the `medledger` binary a devnet runs.
pub const MEDLEDGER_BIN_ENV: &str = "MEDLEDGER_BIN";

/// The `medledger` binary for a devnet started by a program other than `medledger` itself (the
/// integration tests): `$MEDLEDGER_BIN` (scripts/test.sh builds the binary with the fault
/// suite's features and sets it), else `medledger` in the cargo profile directory this program
/// was built into (`target/release/deps/<test>` → `target/release/medledger`). A binary that is
/// not there is an error, never a reason to skip.
pub fn medledger_bin() -> anyhow::Result<PathBuf> {
    let bin = match std::env::var_os(MEDLEDGER_BIN_ENV) {
        Some(p) => PathBuf::from(p),
        None => {
            let me = std::env::current_exe().context("locating this executable")?;
            let mut dir = me.parent().context("this executable has no directory")?;
            if dir.file_name().is_some_and(|n| n == "deps") {
                dir = dir.parent().context("deps/ has no parent")?;
            }
            dir.join("medledger")
        }
    };
    if !bin.is_file() {
        bail!(
            "the medledger binary is not at {}: run scripts/test.sh, or build it (cargo build \
             --release -p medledger --features fault-injection) and set {MEDLEDGER_BIN_ENV}",
            bin.display()
        );
    }
    Ok(bin)
}

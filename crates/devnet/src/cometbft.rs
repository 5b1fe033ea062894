//! Finding the pinned CometBFT binary.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};

const VERSIONS: &str = include_str!("../../../scripts/versions.env");

/// The pinned CometBFT version, e.g. `0.38.25` (from scripts/versions.env).
pub fn pinned_version() -> &'static str {
    VERSIONS
        .lines()
        .find_map(|l| l.strip_prefix("COMETBFT_VERSION="))
        .map(|v| v.trim().trim_start_matches('v'))
        .unwrap_or("unknown")
}

/// Where scripts/deps.sh installs CometBFT: `$MEDLEDGER_TOOLS` or `~/.cache/medledger/bin`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MEDLEDGER_TOOLS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/medledger/bin")
}

/// The CometBFT binary to run: `$MEDLEDGER_COMETBFT`, else the tools dir, else `cometbft` on
/// PATH; it must report the pinned version.
pub fn binary() -> anyhow::Result<PathBuf> {
    let candidates: Vec<PathBuf> = match std::env::var_os("MEDLEDGER_COMETBFT") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![tools_dir().join("cometbft"), PathBuf::from("cometbft")],
    };
    for bin in candidates {
        let Ok(out) = Command::new(&bin).arg("version").output() else {
            continue;
        };
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if version != pinned_version() {
            bail!(
                "{} is CometBFT {version:?}, but medledger needs {}: run scripts/deps.sh",
                bin.display(),
                pinned_version()
            );
        }
        return Ok(bin);
    }
    bail!(
        "CometBFT {} not found (looked in $MEDLEDGER_COMETBFT, {}, PATH): run scripts/deps.sh",
        pinned_version(),
        tools_dir().display()
    )
}

/// Runs `cometbft args...` to completion and returns its stdout.
pub fn run(bin: &PathBuf, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "cometbft {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

//! The import rules of the workspace, checked against the Cargo manifests (issue 12): the README's
//! "Who may import whom" is the rule, so it cannot drift from what the crates really depend on,
//! and the pure crates stay free of I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_path_buf()
}

/// The dependencies of a manifest by section (`dependencies`, `dev-dependencies`): crate names.
fn deps(manifest: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let text = std::fs::read_to_string(manifest).unwrap_or_else(|e| panic!("{manifest:?}: {e}"));
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        if section != "dependencies" && section != "dev-dependencies" {
            continue;
        }
        let name = line
            .split(['.', '=', ' '])
            .next()
            .unwrap_or_default()
            .trim();
        if !name.is_empty() && !name.starts_with('#') {
            out.entry(section.clone())
                .or_default()
                .insert(name.to_string());
        }
    }
    out
}

fn ours(names: Option<&BTreeSet<String>>) -> BTreeSet<String> {
    names
        .into_iter()
        .flatten()
        .filter_map(|n| n.strip_prefix("medledger-").map(str::to_string))
        .collect()
}

/// The README's rule: crate → the crates it may depend on (for `tests` and `benches`, their
/// dev-dependencies).
fn readme_rule() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("Who may import whom")
        .expect("the README states the import rule");
    let block = readme[start..]
        .split("```")
        .nth(1)
        .expect("the rule's code block");
    block
        .lines()
        .filter_map(|l| l.split_once('←'))
        .map(|(name, rest)| {
            let list = rest.split(['(', ';']).next().unwrap_or_default();
            let set = if list.contains("nothing of ours") || list.contains("all of the above") {
                BTreeSet::new()
            } else {
                list.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            };
            (name.trim().to_string(), set)
        })
        .collect()
}

#[test]
fn every_crate_depends_on_exactly_what_the_readme_allows() {
    let rule = readme_rule();
    let manifests = [
        ("tx", "crates/tx"),
        ("state", "crates/state"),
        ("query", "crates/query"),
        ("client", "crates/client"),
        ("vault", "crates/vault"),
        ("gateway", "crates/gateway"),
        ("devnet", "crates/devnet"),
        ("loadgen", "crates/loadgen"),
        ("tests", "tests"),
        ("benches", "benches"),
    ];
    assert_eq!(
        rule.keys().filter(|k| *k != "medledger").count(),
        manifests.len(),
        "the README's rule names every crate: {rule:?}"
    );
    for (name, dir) in manifests {
        let d = deps(&root().join(dir).join("Cargo.toml"));
        let section = if name == "tests" || name == "benches" {
            "dev-dependencies"
        } else {
            "dependencies"
        };
        let actual = ours(d.get(section));
        let allowed = rule
            .get(name)
            .unwrap_or_else(|| panic!("the README's rule has no line for {name}"));
        assert_eq!(
            &actual, allowed,
            "{name} depends on {actual:?}; the README allows {allowed:?}"
        );
    }
}

#[test]
fn the_pure_crates_do_no_io() {
    let io = [
        "rocksdb",
        "tokio",
        "reqwest",
        "hyper",
        "axum",
        "tendermint-rpc",
    ];
    for dir in ["crates/tx", "crates/query", "crates/vault"] {
        let d = deps(&root().join(dir).join("Cargo.toml"));
        let normal = d.get("dependencies").cloned().unwrap_or_default();
        for crate_name in io {
            assert!(
                !normal.contains(crate_name),
                "{dir} must stay pure (no storage, runtime or network), but depends on {crate_name}"
            );
        }
    }
    // The state machine touches RocksDB and nothing else outside.
    let state = deps(&root().join("crates/state/Cargo.toml"));
    for crate_name in ["tokio", "reqwest", "hyper", "axum", "tendermint-rpc"] {
        assert!(
            !state["dependencies"].contains(crate_name),
            "the state machine must not depend on {crate_name}"
        );
    }
}

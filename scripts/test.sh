#!/usr/bin/env bash
# The whole test suite: unit, property and integration tests (the integration tests start real
# 4-validator CometBFT localnets on free ports in temp dirs). `.ci/run` runs exactly this.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh
# One target dir outside the clone, kept between runs and clones: a fresh clone rebuilds only
# medledger's own crates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/medledger/target}"
export MEDLEDGER_TOOLS="${MEDLEDGER_TOOLS:-$HOME/.cache/medledger/bin}"
# Formatting is part of the suite (rustfmt ships with the toolchain).
cargo fmt --all -- --check
# The dependency graph: permissive licences only, crates.io only, duplicates listed (deny.toml).
# Offline: licences, bans and sources need no database.
"$MEDLEDGER_TOOLS/cargo-deny" deny check --hide-inclusion-graph licenses bans sources
# The operators' alerts (docs/deploy.md, "Monitoring"): valid rules, and each fires on the series
# that should fire it and on no other (localnet/prometheus/alerts.test.yml).
promtool check rules localnet/prometheus/alerts.yml
promtool test rules localnet/prometheus/alerts.test.yml
# The pages (web/): the committed build is what the sources build (it is embedded in the
# gateway), the TypeScript type-checks, and the browser verifier passes its tests against vectors
# recorded from a real node (including every tampering it must refuse).
npm --prefix web run --silent check-dist
# The pages' protobuf code is generated from proto/ (protoc-gen-es) and committed: it must be what
# proto/ generates now. web/src/codes.ts is generated from the Rust codes (crates/tx/tests/web_codes.rs).
npm --prefix web run --silent check-gen
npm --prefix web run --silent typecheck
npm --prefix web test --silent
# Everything in one profile (release) so no dependency is compiled twice. The fault suite's
# crash points inside Commit exist only with `fault-injection` (tests/faults.rs).
FEATURES=medledger/fault-injection
# The integration tests (package medledger-it) run the `medledger` binary, which `cargo test`
# builds only for the binary's own package: build it first, with the fault suite's features, and
# name it. A missing binary fails the tests (medledger_devnet::medledger_bin).
cargo build --release --workspace --bins --features "$FEATURES"
# CONTRIBUTING's rules, enforced: the workspace's lints (no unwrap or panic in production code, no
# floats, documented items; clippy.toml: no HashMap or HashSet) on every target, as errors.
cargo clippy --release --workspace --all-targets --features "$FEATURES" -- -D warnings
# The validator's own build (no `dev-tools`: no localnet launcher, no load generator) compiles too.
cargo clippy --release -p medledger --all-targets --no-default-features --features "$FEATURES" -- -D warnings
export MEDLEDGER_BIN="$CARGO_TARGET_DIR/release/medledger"
cargo test --release --workspace --all-targets --no-fail-fast --features "$FEATURES" "$@"

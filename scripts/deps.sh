#!/usr/bin/env bash
# Installs what medledger needs to build and run, once per machine:
#   - Debian packages: librocksdb-dev (we link Debian's RocksDB 7.8 instead of compiling RocksDB
#     from source, ~23 min on 2 cores), libclang-dev (bindgen), protobuf-compiler (prost-build),
#     chromium (the pages' browser tests drive it headless), prometheus (its promtool checks and
#     unit-tests localnet/prometheus/alerts.yml; the server is not run), nodejs and npm (web/:
#     the pages' verifier tests and the independent FHIR validator the Rust tests call);
#   - openjdk-17-jdk-headless and maven (Debian's), and with them the HL7 FHIR validator of
#     HAPI FHIR (tools/fhir-validator) built into $MEDLEDGER_TOOLS/fhir-validator;
#   - cargo-deny, pinned in scripts/versions.env, built once into $MEDLEDGER_TOOLS;
#   - s3s-fs, the S3-compatible server tests/object_store.rs runs a gateway against, pinned in
#     scripts/versions.env, built once into $MEDLEDGER_TOOLS (Apache-2.0; not MinIO, which is AGPL);
#   - web/'s npm packages, exactly as package-lock.json pins them (`npm ci`);
#   - CometBFT at the version pinned in scripts/versions.env, built with `go install` into
#     $MEDLEDGER_TOOLS (default ~/.cache/medledger/bin).
# Idempotent: it only installs what is missing or at the wrong version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/versions.env
TOOLS="${MEDLEDGER_TOOLS:-$HOME/.cache/medledger/bin}"

need_pkgs=()
for pkg in librocksdb-dev libclang-dev protobuf-compiler chromium prometheus; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_pkgs+=("$pkg")
done
if ((${#need_pkgs[@]})); then
  echo "deps: installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Node.js: Debian's, unless one is already on PATH (the development machines have Node 20).
if ! command -v npm >/dev/null; then
  echo "deps: installing Debian packages: nodejs npm"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
# web/node_modules, reinstalled when the lockfile changed since the last install.
if [ ! -f web/node_modules/.package-lock.json ] || ! cmp -s web/package-lock.json web/node_modules/.medledger-lock; then
  echo "deps: npm ci in web/"
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  cp web/package-lock.json web/node_modules/.medledger-lock
fi

# The HL7 FHIR validator (HAPI FHIR's, tools/fhir-validator) that the suite runs beside FHIR.js:
# Java 17 and Maven from Debian; the jar and its dependencies built into $TOOLS/fhir-validator,
# again only when tools/fhir-validator changed. Maven fetches HAPI's jars here; the tests run the
# jar with `java` alone, offline.
need_java=()
for pkg in openjdk-17-jdk-headless maven; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_java+=("$pkg")
done
if ((${#need_java[@]})); then
  echo "deps: installing Debian packages: ${need_java[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_java[@]}" >/dev/null
fi
validator="$TOOLS/fhir-validator"
stamp="$(find tools/fhir-validator -type f ! -path '*/target/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ ! -f "$validator/fhir-validator.jar" ] || [ "$(cat "$validator/stamp" 2>/dev/null)" != "$stamp" ]; then
  echo "deps: building the HAPI FHIR validator into $validator (Maven, ~1 min; more the first time)"
  out="$(mktemp -d)"
  timeout 1200 mvn -B -q -Dstyle.color=never -f tools/fhir-validator/pom.xml -Dfhir-validator.out="$out" -DskipTests package
  rm -rf "$validator" && mkdir -p "$validator"
  mv "$out/fhir-validator.jar" "$out/lib" "$validator/"
  rm -rf "$out"
  echo "$stamp" >"$validator/stamp"
fi

want="${COMETBFT_VERSION#v}"
have="$("$TOOLS/cometbft" version 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
  command -v go >/dev/null || { echo "deps: Go is needed to build CometBFT $COMETBFT_VERSION" >&2; exit 1; }
  echo "deps: building CometBFT $COMETBFT_VERSION into $TOOLS (go install, ~2 min)"
  mkdir -p "$TOOLS"
  # GOTOOLCHAIN=auto fetches the Go version CometBFT's go.mod names if the local Go is older.
  (cd /tmp && GOTOOLCHAIN="${GOTOOLCHAIN:-auto}" GOBIN="$TOOLS" go install "github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION")
  have="$("$TOOLS/cometbft" version)"
  [ "$have" = "$want" ] || { echo "deps: built CometBFT reports $have, want $want" >&2; exit 1; }
fi
command -v cargo >/dev/null || { echo "deps: Rust (cargo) is needed: https://rustup.rs" >&2; exit 1; }
# cargo-deny (deny.toml: licences, bans, sources), pinned, built once into $TOOLS (~5 min).
if [ "$("$TOOLS/cargo-deny" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "deps: building cargo-deny $CARGO_DENY_VERSION into $TOOLS (cargo install, ~5 min)"
  root="$(mktemp -d)"
  cargo install --quiet --locked cargo-deny --version "$CARGO_DENY_VERSION" --root "$root" \
    --target-dir "${CARGO_TARGET_DIR:-$HOME/.cache/medledger/target}/cargo-deny"
  mkdir -p "$TOOLS"
  mv "$root/bin/cargo-deny" "$TOOLS/cargo-deny"
  rm -rf "$root"
fi
# s3s-fs (the s3s project's S3 server on a folder), pinned, built once into $TOOLS (~3 min) in a
# target dir of its own, so the workspace's shared target dir is never touched.
if [ "$("$TOOLS/s3s-fs" --version 2>/dev/null)" != "s3s-fs $S3S_FS_VERSION" ]; then
  echo "deps: building s3s-fs $S3S_FS_VERSION into $TOOLS (cargo install, ~3 min)"
  root="$(mktemp -d)"
  cargo install --quiet --locked s3s-fs --version "$S3S_FS_VERSION" --features binary --root "$root" \
    --target-dir "${CARGO_TARGET_DIR:-$HOME/.cache/medledger/target}/s3s-fs"
  mkdir -p "$TOOLS"
  mv "$root/bin/s3s-fs" "$TOOLS/s3s-fs"
  rm -rf "$root"
fi
echo "deps: ok (CometBFT $have at $TOOLS/cometbft)"

#!/usr/bin/env bash
# One-shot setup of the Docker localnet, run by docker-compose.yml's `init` service in the
# medledger image (which carries the pinned CometBFT). It runs the same three steps as a real
# multi-host deployment (docs/deploy.md) and as `medledger localnet up`, for the four members:
#
#   1. medledger init              each member: CometBFT home, admin key (keyring), BLS key, member.json
#   2. medledger genesis assemble  one genesis from the four member.json files
#   3. medledger genesis install   each node: that genesis and its config.toml (peers from member.json)
#
# Idempotent: an initialised testnet is left alone, so `docker compose up` after `down` resumes
# the same chain (`down -v` starts over). tests/deploy.rs runs this script outside Docker and
# checks its output against `localnet up`'s.
set -euo pipefail

# Member id, display name, kind: the same as MEMBERS in crates/devnet/src/localnet.rs.
MEMBERS=(
  "hospital-a|Hospital A|hospital"
  "lab-b|Lab B|lab"
  "insurer-c|Insurer C|insurer"
  "hospital-d|Hospital D|hospital"
)
TESTNET="${TESTNET:-/testnet}"
# First three octets of the compose network; node i's CometBFT gets .(11+i), as in docker-compose.yml.
NET="${MEDLEDGER_NET:-172.29.86}"
CHAIN_ID="${CHAIN_ID:-medledger-localnet}"
# Matches the native localnet's consensus.timeout_commit.
TIMEOUT_COMMIT="${TIMEOUT_COMMIT:-500ms}"
MEDLEDGER="${MEDLEDGER:-medledger}"

init() {
  if [ -f "$TESTNET/.initialized" ]; then
    echo "testnet already initialised in $TESTNET; remove the volumes (docker compose down -v) to start over"
    return
  fi
  local i=0 files=()
  for m in "${MEMBERS[@]}"; do
    IFS='|' read -r id name kind <<<"$m"
    # Peers by fixed IP, not container name: CometBFT resolves persistent_peers once at start
    # and drops names that do not resolve yet (a peer container that is not up).
    "$MEDLEDGER" init --node-home "$TESTNET/$id" --member "$id" --name "$name" --kind "$kind" \
      --p2p-address "$NET.$((11 + i)):26656" >/dev/null
    files+=("$TESTNET/$id/member.json")
    i=$((i + 1))
  done
  "$MEDLEDGER" genesis assemble --chain-id "$CHAIN_ID" \
    --template "$TESTNET/hospital-a/cometbft/config/genesis.json" --web-release embedded \
    --out "$TESTNET/genesis.json" "${files[@]}" >/dev/null
  for m in "${MEMBERS[@]}"; do
    id="${m%%|*}"
    # The app runs in its own container, reachable by its compose service name; CometBFT
    # retries until it answers. RPC and metrics on all interfaces for the published ports.
    "$MEDLEDGER" genesis install --node-home "$TESTNET/$id" --genesis "$TESTNET/genesis.json" \
      --member-files "${files[@]}" --proxy-app "tcp://app-$id:26658" \
      --rpc-laddr tcp://0.0.0.0:26657 --p2p-laddr tcp://0.0.0.0:26656 \
      --prometheus-laddr 0.0.0.0:26661 --timeout-commit "$TIMEOUT_COMMIT" >/dev/null
  done
  touch "$TESTNET/.initialized"
  echo "testnet $CHAIN_ID initialised in $TESTNET for ${#MEMBERS[@]} members"
}

case "${1:-}" in
  init) init ;;
  *) echo "usage: $0 init" >&2; exit 2 ;;
esac

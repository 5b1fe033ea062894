#!/usr/bin/env bash
# One-shot setup of the Docker localnet, run by docker-compose.yml in two containers:
#
#   docker-init.sh keys     in the medledger image: creates each member's admin key in the keyring
#                           ($MEDLEDGER_HOME/keys) and writes its public half to $KEYS/public/<id>.json
#                           (the medledger image has no jq, the CometBFT image has no medledger).
#   docker-init.sh testnet  in the official cometbft/cometbft image (bash, jq): `cometbft testnet`
#                           for 4 validators, renamed to the member ids, with one genesis whose
#                           app_state lists the members and their admin keys.
#
# Both steps are idempotent: existing keys are reused, and an initialised testnet is left alone so
# that `docker compose up` after `down` resumes the same chain (`down -v` starts over).
set -euo pipefail

# Member id, display name, kind: the same as MEMBERS in crates/devnet/src/localnet.rs. Node i of
# `cometbft testnet` (and validator i of its genesis) becomes member i.
MEMBERS=(
  "hospital-a|Hospital A|hospital"
  "lab-b|Lab B|lab"
  "insurer-c|Insurer C|insurer"
  "hospital-d|Hospital D|hospital"
)
KEYS="${KEYS:-/keys}"
TESTNET="${TESTNET:-/testnet}"
# First three octets of the compose network; CometBFT node i gets .(11+i), as in docker-compose.yml.
NET="${MEDLEDGER_NET:-172.29.86}"
CHAIN_ID="${CHAIN_ID:-medledger-localnet}"
# Matches the native localnet's consensus.timeout_commit.
TIMEOUT_COMMIT="${TIMEOUT_COMMIT:-500ms}"
MEDLEDGER="${MEDLEDGER:-medledger}"
COMETBFT="${COMETBFT:-cometbft}"

keys() {
  mkdir -p "$KEYS/public"
  for m in "${MEMBERS[@]}"; do
    id="${m%%|*}"
    # `keys add` refuses an existing name; reuse the key so a re-run keeps the genesis valid.
    if ! "$MEDLEDGER" keys show "$id" -o json >"$KEYS/public/$id.json" 2>/dev/null; then
      "$MEDLEDGER" keys add "$id" -o json >"$KEYS/public/$id.json"
    fi
    echo "admin key of $id: $(tr -d ' \n' <"$KEYS/public/$id.json")"
  done
}

# Replaces the whole line matching `pattern` in config.toml, and fails if there was none (a
# changed CometBFT config template must not silently leave a default in place).
set_line() {
  local file="$1" pattern="$2" line="$3"
  grep -q "$pattern" "$file" || { echo "docker-init: no line /$pattern/ in $file" >&2; exit 1; }
  sed -i "s|$pattern.*|$line|" "$file"
}

testnet() {
  if [ -f "$TESTNET/.initialized" ]; then
    echo "testnet already initialised in $TESTNET; remove the volumes (docker compose down -v) to start over"
    return
  fi
  local gen="$TESTNET/.gen"
  rm -rf "$gen"
  for m in "${MEMBERS[@]}"; do rm -rf "${TESTNET:?}/${m%%|*}"; done
  # Peers by fixed IP, not container name: CometBFT resolves persistent_peers once at start and
  # drops names that do not resolve yet (a peer container that is not up).
  "$COMETBFT" testnet --v "${#MEMBERS[@]}" --o "$gen" --starting-ip-address "$NET.11" >/dev/null

  local members='[]' names='[]' i=0
  for m in "${MEMBERS[@]}"; do
    IFS='|' read -r id name kind <<<"$m"
    key="$(jq -er '.[0].public_key' "$KEYS/public/$id.json")"
    members="$(jq -c --arg id "$id" --arg name "$name" --arg kind "$kind" --arg key "$key" \
      '. + [{id: $id, name: $name, kind: $kind, admin_key: $key}]' <<<"$members")"
    names="$(jq -c --arg id "$id" '. + [$id]' <<<"$names")"
    mv "$gen/node$i" "$TESTNET/$id"
    i=$((i + 1))
  done
  # One genesis for all nodes: `cometbft testnet` wrote the same file to each.
  jq --arg chain "$CHAIN_ID" --argjson members "$members" --argjson names "$names" '
      .chain_id = $chain
      | .app_state = {members: $members}
      | .validators |= [to_entries[] | .value.name = $names[.key] | .value]
    ' "$TESTNET/hospital-a/config/genesis.json" >"$gen/genesis.json"

  for m in "${MEMBERS[@]}"; do
    id="${m%%|*}"
    cfg="$TESTNET/$id/config"
    cp "$gen/genesis.json" "$cfg/genesis.json"
    # The app runs in its own container, reachable by its compose service name; CometBFT retries
    # until it answers.
    set_line "$cfg/config.toml" '^proxy_app = ' "proxy_app = \"tcp://app-$id:26658\""
    set_line "$cfg/config.toml" '^moniker = ' "moniker = \"$id\""
    # RPC on all interfaces so that published ports and the `cli` service reach it.
    set_line "$cfg/config.toml" '^laddr = "tcp://127.0.0.1:26657"' 'laddr = "tcp://0.0.0.0:26657"'
    set_line "$cfg/config.toml" '^timeout_commit = ' "timeout_commit = \"$TIMEOUT_COMMIT\""
  done
  rm -rf "$gen"
  # This step runs as root; the nodes run as the image's unprivileged user `tmuser`.
  if id tmuser >/dev/null 2>&1; then
    chown -R tmuser:tmuser "$TESTNET"
  fi
  touch "$TESTNET/.initialized"
  echo "testnet $CHAIN_ID initialised in $TESTNET:"
  jq -c '{chain_id, validators: [.validators[].name], members: [.app_state.members[].id]}' \
    "$TESTNET/hospital-a/config/genesis.json"
}

case "${1:-}" in
  keys) keys ;;
  testnet) testnet ;;
  *) echo "usage: $0 keys|testnet" >&2; exit 2 ;;
esac

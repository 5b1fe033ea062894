//! The one configuration path of a consortium, on one machine or many:
//!
//! 1. **Each member, on its own host** ([`init_member`], `medledger init`): a CometBFT home
//!    (node key, consensus key), the member's admin key in its keyring, a BLS checkpoint key,
//!    and `member.json`, the member's public contribution to genesis (ids, public keys, the BLS
//!    proof of possession, its node id and the address peers dial). Private keys never leave
//!    the host.
//! 2. **One coordinator** ([`assemble_genesis`], `medledger genesis assemble`) collects every
//!    `member.json`, checks each (key sizes, the consensus address against its key, the BLS
//!    proof of possession, no id or key twice) and writes `genesis.json`: every member a
//!    validator of power 10, `app_state.members` with their admin and BLS keys, vote extensions
//!    from block 1. It also prints the persistent-peers line ([`peers`]).
//! 3. **Each member** ([`install`], `medledger genesis install`) installs that `genesis.json`
//!    in its home and writes its `config.toml` ([`NodeConfig`]).
//!
//! `medledger localnet up` runs exactly these three steps for its four nodes on 127.0.0.1, and
//! the Docker localnet's `localnet/docker-init.sh` runs the same commands in a container;
//! `tests/deploy.rs` checks that both produce the same genesis and configuration in every field
//! that matters.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use medledger_client::Keyring;
use serde::{Deserialize, Serialize};
use serde_json::json;
use toml_edit::{value, DocumentMut};

use crate::cometbft;

/// Voting power of each founding member's validator.
pub const FOUNDER_POWER: u64 = 10;

/// A member's public contribution to genesis (`member.json`), written by [`init_member`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberFile {
    /// Member id, e.g. `hospital-a`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `hospital`, `lab`, `insurer`, `regulator` or `research`.
    pub kind: String,
    /// The admin key's Ed25519 public key, hex.
    pub admin_key: String,
    /// CometBFT node id (for persistent peers).
    pub node_id: String,
    /// `host:port` where other members' nodes reach this one's p2p port.
    pub p2p_address: String,
    /// The validator: consensus address and key (CometBFT's JSON form) and BLS checkpoint key.
    pub validator: ValidatorFile,
}

/// A member's validator keys, public halves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorFile {
    /// CometBFT address (hex, 20 bytes).
    pub address: String,
    /// CometBFT's `{"type": "tendermint/PubKeyEd25519", "value": base64}`.
    pub pub_key: serde_json::Value,
    /// Compressed BLS12-381 public key, hex (48 bytes).
    pub bls_key: String,
    /// Its proof of possession, hex (96 bytes).
    pub bls_pop: String,
}

/// What `medledger init` needs to know about the member and its host.
#[derive(Clone, Debug)]
pub struct MemberInit {
    /// The node's directory: `cometbft/` (CometBFT home), `bls_key.json`, `member.json`.
    pub home: PathBuf,
    /// Member id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Member kind.
    pub kind: String,
    /// `host:port` other nodes dial to reach this node's p2p port.
    pub p2p_address: String,
}

/// Step 1: initialises a member's node in `m.home` (idempotent: existing keys are kept) and
/// returns its `member.json`. The admin key is created in (or read from) `keyring`.
pub fn init_member(
    cometbft_bin: &PathBuf,
    keyring: &Keyring,
    m: &MemberInit,
) -> anyhow::Result<MemberFile> {
    let home = m.home.join("cometbft");
    let home_s = home.to_string_lossy().to_string();
    fs::create_dir_all(m.home.join("app"))?;
    cometbft::run(cometbft_bin, &["init", "--home", &home_s])?;
    let node_id = cometbft::run(cometbft_bin, &["show-node-id", "--home", &home_s])?
        .trim()
        .to_string();
    let pv: serde_json::Value = serde_json::from_slice(
        &fs::read(home.join("config/priv_validator_key.json"))
            .context("priv_validator_key.json")?,
    )?;
    let bls_path = m.home.join("bls_key.json");
    let bls = if bls_path.exists() {
        serde_json::from_slice::<medledger_client::keyring::BlsKeyFile>(&fs::read(&bls_path)?)?
    } else {
        medledger_client::keyring::create_bls_key(&bls_path)?
    };
    let admin = match keyring.get(&m.id) {
        Ok(k) => k,
        Err(_) => keyring.add(&m.id)?,
    };
    let file = MemberFile {
        id: m.id.clone(),
        name: m.name.clone(),
        kind: m.kind.clone(),
        admin_key: hex::encode(admin.verifying_key().to_bytes()),
        node_id,
        p2p_address: m.p2p_address.clone(),
        validator: ValidatorFile {
            address: pv["address"]
                .as_str()
                .context("priv_validator_key.json: address")?
                .to_string(),
            pub_key: pv["pub_key"].clone(),
            bls_key: bls.public_key,
            bls_pop: bls.proof_of_possession,
        },
    };
    fs::write(
        m.home.join("member.json"),
        serde_json::to_vec_pretty(&file)?,
    )?;
    Ok(file)
}

/// Chain-wide settings of a new genesis.
#[derive(Clone, Debug)]
pub struct GenesisParams {
    /// Chain id.
    pub chain_id: String,
    /// CometBFT `block.max_bytes`; `None` keeps CometBFT's default.
    pub max_block_bytes: Option<u64>,
}

/// Step 2: the genesis of `members`, built on `template` (a `genesis.json` as `cometbft init`
/// writes it: its genesis time and consensus parameters). Every member file is checked first.
pub fn assemble_genesis(
    params: &GenesisParams,
    template: &serde_json::Value,
    members: &[MemberFile],
) -> anyhow::Result<serde_json::Value> {
    ensure!(
        !members.is_empty(),
        "a consortium needs at least one member"
    );
    for (i, m) in members.iter().enumerate() {
        check_member(m).with_context(|| format!("member file of {:?}", m.id))?;
        for other in &members[..i] {
            ensure!(other.id != m.id, "member {} appears twice", m.id);
            ensure!(
                other.admin_key != m.admin_key,
                "{} and {} share an admin key",
                other.id,
                m.id
            );
            ensure!(
                other.validator.address != m.validator.address,
                "{} and {} share a consensus key",
                other.id,
                m.id
            );
            ensure!(
                other.validator.bls_key != m.validator.bls_key,
                "{} and {} share a BLS key",
                other.id,
                m.id
            );
        }
    }
    let mut genesis = template.clone();
    genesis["chain_id"] = json!(params.chain_id);
    genesis["validators"] = json!(members
        .iter()
        .map(|m| json!({
            "address": m.validator.address,
            "pub_key": m.validator.pub_key,
            "power": FOUNDER_POWER.to_string(),
            "name": m.id,
        }))
        .collect::<Vec<_>>());
    genesis["app_state"] = json!({ "members": members
        .iter()
        .map(|m| json!({
            "id": m.id, "name": m.name, "kind": m.kind, "admin_key": m.admin_key,
            "validator": {
                "address": m.validator.address,
                "bls_key": m.validator.bls_key,
                "bls_pop": m.validator.bls_pop,
            },
        }))
        .collect::<Vec<_>>() });
    // Threshold custody (docs/rules.md, "Threshold custody"): each record held by 3 member
    // gateways, any 2 of whose shares rebuild its key; a consortium of fewer members keeps it off.
    if members.len() >= 3 {
        genesis["app_state"]["custody"] = json!({ "holders": 3, "threshold": 2 });
    }
    // Vote extensions from the first block: each precommit carries the validator's BLS
    // signature of the previous state, and the next proposer aggregates them into a checkpoint
    // certificate.
    genesis["consensus_params"]["abci"]["vote_extensions_enable_height"] = json!("1");
    if let Some(n) = params.max_block_bytes {
        genesis["consensus_params"]["block"]["max_bytes"] = json!(n.to_string());
        // CometBFT refuses a genesis whose evidence may exceed the block.
        genesis["consensus_params"]["evidence"]["max_bytes"] = json!((n / 40).to_string());
    }
    Ok(genesis)
}

/// Checks one member file: sizes, the consensus address derived from its key, the BLS proof of
/// possession.
pub fn check_member(m: &MemberFile) -> anyhow::Result<()> {
    medledger_tx::check::check_id("member id", &m.id).map_err(|e| anyhow::anyhow!(e.message))?;
    ensure!(
        ["hospital", "lab", "insurer", "research", "regulator"].contains(&m.kind.as_str()),
        "kind must be hospital, lab, insurer, research or regulator, not {:?}",
        m.kind
    );
    let admin = hex::decode(&m.admin_key).context("admin_key is not hex")?;
    ensure!(admin.len() == 32, "admin_key must be 32 bytes");
    let pub_key: tendermint::PublicKey = serde_json::from_value(m.validator.pub_key.clone())
        .context("validator.pub_key is not a CometBFT public key")?;
    let consensus: [u8; 32] = pub_key
        .ed25519()
        .and_then(|k| k.as_bytes().try_into().ok())
        .context("validator.pub_key is not Ed25519")?;
    ensure!(
        hex::encode_upper(medledger_tx::ids::validator_address(&consensus))
            == m.validator.address.to_uppercase(),
        "validator.address is not the address of validator.pub_key"
    );
    let bls = hex::decode(&m.validator.bls_key).context("bls_key is not hex")?;
    let pop = hex::decode(&m.validator.bls_pop).context("bls_pop is not hex")?;
    ensure!(
        medledger_tx::checkpoint::verify_possession(&bls, &pop),
        "bls_pop is not a proof of possession of bls_key"
    );
    ensure!(
        m.p2p_address.rsplit_once(':').is_some(),
        "p2p_address must be host:port"
    );
    Ok(())
}

/// The persistent-peers line of `members` except `me`: `node_id@host:port,…`.
pub fn peers(members: &[MemberFile], me: &str) -> String {
    members
        .iter()
        .filter(|m| m.id != me)
        .map(|m| format!("{}@{}", m.node_id, m.p2p_address))
        .collect::<Vec<_>>()
        .join(",")
}

/// How one node's `config.toml` is written.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// CometBFT moniker (the member id).
    pub moniker: String,
    /// Where CometBFT reaches the app: `unix:///…/app.sock` or `tcp://host:26658`.
    pub proxy_app: String,
    /// RPC listen address, e.g. `tcp://127.0.0.1:26657`.
    pub rpc_laddr: String,
    /// P2P listen address, e.g. `tcp://0.0.0.0:26656`.
    pub p2p_laddr: String,
    /// CometBFT's Prometheus listen address, e.g. `127.0.0.1:26660`.
    pub prometheus_laddr: String,
    /// [`peers`].
    pub persistent_peers: String,
    /// `consensus.timeout_commit`, e.g. `500ms`.
    pub timeout_commit: String,
    /// The same as the genesis's, to size the mempool; `None` keeps CometBFT's default.
    pub max_block_bytes: Option<u64>,
    /// All nodes on one host (a localnet): peers share an IP and need not be routable.
    pub same_host: bool,
}

/// Step 3: installs `genesis` in the node's CometBFT home (`home/cometbft`) and writes its
/// `config.toml`.
pub fn install(home: &Path, genesis: &serde_json::Value, c: &NodeConfig) -> anyhow::Result<()> {
    let config = home.join("cometbft/config");
    fs::write(
        config.join("genesis.json"),
        serde_json::to_vec_pretty(genesis)?,
    )?;
    let path = config.join("config.toml");
    let mut doc: DocumentMut = fs::read_to_string(&path)?.parse().context("config.toml")?;
    doc["moniker"] = value(c.moniker.as_str());
    doc["proxy_app"] = value(c.proxy_app.as_str());
    doc["rpc"]["laddr"] = value(c.rpc_laddr.as_str());
    doc["rpc"]["pprof_laddr"] = value("");
    doc["p2p"]["laddr"] = value(c.p2p_laddr.as_str());
    doc["p2p"]["persistent_peers"] = value(c.persistent_peers.as_str());
    // A consortium's members are known: peers come from genesis assembly, not from gossip.
    doc["p2p"]["pex"] = value(false);
    if c.same_host {
        // All nodes share 127.0.0.1: allow that, and do not require routable addresses.
        doc["p2p"]["addr_book_strict"] = value(false);
        doc["p2p"]["allow_duplicate_ip"] = value(true);
    }
    doc["consensus"]["timeout_commit"] = value(c.timeout_commit.as_str());
    // No recheck of every pending tx after each block. CometBFT holds the mempool lock while it
    // rechecks, so every CheckTx (and broadcast RPC) waits for a socket round trip per pending
    // tx; medledger's CheckTx does not need it (its view of pending sequences survives Commit,
    // and blocks refuse a stale tx with a code). Measured in docs/performance.md.
    doc["mempool"]["recheck"] = value(false);
    if let Some(n) = c.max_block_bytes {
        // About ten blocks' worth: a sender past capacity meets a full mempool (CheckTx
        // refuses, the sender hears it) instead of a backlog that only grows.
        let bytes = n.saturating_mul(10);
        doc["mempool"]["max_txs_bytes"] = value(i64::try_from(bytes).unwrap_or(i64::MAX));
        doc["mempool"]["size"] = value(i64::try_from((bytes / 200).max(100)).unwrap_or(i64::MAX));
    }
    // CometBFT's own metrics (consensus, mempool, p2p), beside the app's (`start --metrics`).
    doc["instrumentation"]["prometheus"] = value(true);
    doc["instrumentation"]["prometheus_listen_addr"] = value(c.prometheus_laddr.as_str());
    doc["tx_index"]["indexer"] = value("kv");
    fs::write(&path, doc.to_string())?;
    Ok(())
}

/// Reads `member.json` files.
pub fn read_members(paths: &[PathBuf]) -> anyhow::Result<Vec<MemberFile>> {
    paths
        .iter()
        .map(|p| {
            serde_json::from_slice(
                &fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            )
            .with_context(|| format!("{} is not a member file", p.display()))
        })
        .collect()
}

/// Fails unless `genesis` lists `me` among its members with the keys of its `member.json` (the
/// check `genesis install` makes; the rest of the list is each member's to review).
pub fn check_includes(genesis: &serde_json::Value, me: &MemberFile) -> anyhow::Result<()> {
    let found = genesis["app_state"]["members"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == me.id.as_str());
    let Some(found) = found else {
        bail!("genesis has no member {}", me.id);
    };
    ensure!(
        found["admin_key"] == me.admin_key.as_str()
            && found["validator"]["bls_key"] == me.validator.bls_key.as_str()
            && found["validator"]["address"] == me.validator.address.as_str(),
        "genesis lists member {} with other keys than this node's member.json",
        me.id
    );
    Ok(())
}

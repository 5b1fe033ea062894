//! `medledger init` and `medledger genesis assemble | install`: the one configuration path of
//! a consortium on many hosts (`medledger_devnet::deploy`; `localnet up` and the Docker
//! localnet run the same steps). Walkthrough: docs/deploy.md.

use std::fs;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use medledger_devnet::deploy::{self, GenesisParams, MemberInit, NodeConfig};

use super::{print_json, Ctx, Exit, Output};

/// `medledger init`: step 1, on each member's host.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The node's directory: CometBFT home in `cometbft/`, `bls_key.json`, `member.json`.
    #[arg(long)]
    pub node_home: PathBuf,
    /// Member id, e.g. `hospital-a` (the admin key is created in the keyring under it).
    #[arg(long)]
    pub member: String,
    /// Display name, e.g. "Hospital A".
    #[arg(long)]
    pub name: String,
    /// hospital, lab, insurer, regulator or research.
    #[arg(long)]
    pub kind: String,
    /// `host:port` where the other members' nodes reach this node's p2p port.
    #[arg(long)]
    pub p2p_address: String,
}

impl InitArgs {
    /// Runs `cometbft init`, creates the keys (keeping existing ones) and writes `member.json`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let cometbft = medledger_devnet::cometbft::binary()?;
        let m = deploy::init_member(
            &cometbft,
            &ctx.keyring,
            &MemberInit {
                home: self.node_home.clone(),
                id: self.member,
                name: self.name,
                kind: self.kind,
                p2p_address: self.p2p_address,
            },
        )?;
        deploy::check_member(&m)?;
        if ctx.out == Output::Json {
            print_json(&m)?;
        } else {
            println!(
                "initialised {} in {}; send {} (public keys only) to the genesis coordinator",
                m.id,
                self.node_home.display(),
                self.node_home.join("member.json").display()
            );
        }
        Ok(Exit::Ok)
    }
}

/// `medledger genesis …`.
#[derive(Debug, Subcommand)]
pub enum GenesisCmd {
    /// Step 2, once: check every member.json and write genesis.json; print the peers line.
    Assemble(AssembleArgs),
    /// Step 3, on each host: install genesis.json and write this node's config.toml.
    Install(InstallArgs),
}

impl GenesisCmd {
    /// Runs the subcommand.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            GenesisCmd::Assemble(a) => a.run(ctx),
            GenesisCmd::Install(a) => a.run(ctx),
        }
    }
}

/// `genesis assemble`.
#[derive(Debug, Args)]
pub struct AssembleArgs {
    /// Chain id.
    #[arg(long)]
    chain_id: String,
    /// A genesis.json written by `cometbft init` (any member's `cometbft/config/genesis.json`):
    /// its genesis time and consensus parameters.
    #[arg(long)]
    template: PathBuf,
    /// CometBFT `block.max_bytes` (default: CometBFT's).
    #[arg(long)]
    max_block_bytes: Option<u64>,
    /// Where to write the genesis.
    #[arg(long)]
    out: PathBuf,
    /// The page release the founding members approve (`params/web-release`, docs/privacy.md
    /// "Code trust"): `embedded` for the pages this binary embeds, or a release hash (64 hex
    /// characters, `medledger web hash`). Without it no release is approved, and the gateways
    /// serve their pages marked "not approved on chain" until governance approves one.
    #[arg(long)]
    web_release: Option<String>,
    /// Every founding member's member.json.
    #[arg(required = true)]
    members: Vec<PathBuf>,
}

impl AssembleArgs {
    /// Checks the member files, writes the genesis and prints the peers line.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let members = deploy::read_members(&self.members)?;
        let template: serde_json::Value = serde_json::from_slice(
            &fs::read(&self.template)
                .with_context(|| format!("reading {}", self.template.display()))?,
        )
        .context("the template is not JSON")?;
        let genesis = deploy::assemble_genesis(
            &GenesisParams {
                chain_id: self.chain_id,
                max_block_bytes: self.max_block_bytes,
            },
            &template,
            &members,
        )?;
        let mut genesis = genesis;
        if let Some(release) = &self.web_release {
            genesis["app_state"]["web_release"] = serde_json::json!({
                "bundle_sha256": web_release_hash(release)?,
                "version": "genesis",
            });
        }
        let out = self.out;
        fs::write(&out, serde_json::to_vec_pretty(&genesis)?)?;
        let peers = deploy::peers(&members, "");
        if ctx.out == Output::Json {
            print_json(&serde_json::json!({ "genesis": out, "peers": peers }))?;
        } else {
            println!(
                "wrote {} with {} founding members; each installs it with\n  --peers {peers}\n(or --member-files; install leaves out the node's own entry)",
                out.display(),
                members.len()
            );
        }
        Ok(Exit::Ok)
    }
}

/// The release hash `--web-release` names: the embedded pages', or one given in hex.
fn web_release_hash(release: &str) -> anyhow::Result<String> {
    if release == "embedded" {
        let b = medledger_gateway::pages::bundle()
            .map_err(|e| anyhow::anyhow!("the embedded pages: {e}"))?;
        return Ok(hex::encode(b.hash));
    }
    if release.len() != 64 || !release.bytes().all(|b| b.is_ascii_hexdigit()) {
        anyhow::bail!("--web-release: give `embedded` or a release hash of 64 hex characters");
    }
    Ok(release.to_ascii_lowercase())
}

/// `genesis install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The node's directory (as given to `medledger init`).
    #[arg(long)]
    node_home: PathBuf,
    /// The genesis from `genesis assemble`.
    #[arg(long)]
    genesis: PathBuf,
    /// `node_id@host:port,…` of the other members (printed by `genesis assemble`).
    #[arg(long, default_value = "")]
    peers: String,
    /// Or the members' member.json files: the peers are read from them.
    #[arg(long, num_args = 1..)]
    member_files: Vec<PathBuf>,
    /// Where CometBFT reaches this member's app (`medledger start --listen`).
    #[arg(long, default_value = "tcp://127.0.0.1:26658")]
    proxy_app: String,
    /// CometBFT RPC listen address.
    #[arg(long, default_value = "tcp://127.0.0.1:26657")]
    rpc_laddr: String,
    /// CometBFT p2p listen address.
    #[arg(long, default_value = "tcp://0.0.0.0:26656")]
    p2p_laddr: String,
    /// CometBFT's Prometheus listen address.
    #[arg(long, default_value = "127.0.0.1:26661")]
    prometheus_laddr: String,
    /// `consensus.timeout_commit`.
    #[arg(long, default_value = "500ms")]
    timeout_commit: String,
    /// The `--max-block-bytes` given to `genesis assemble`, to size the mempool to about
    /// ten blocks (default: CometBFT's mempool).
    #[arg(long)]
    max_block_bytes: Option<u64>,
    /// All nodes on one host (test setups): allow peers on one IP.
    #[arg(long)]
    same_host: bool,
    /// This node joins a running chain (admitted later by vote, `gov propose admit`): the
    /// genesis must not list it.
    #[arg(long)]
    joining: bool,
}

impl InstallArgs {
    /// Checks that the genesis lists this node (or, `--joining`, that it does not), installs
    /// it and writes the node's config.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let g: serde_json::Value = serde_json::from_slice(
            &fs::read(&self.genesis)
                .with_context(|| format!("reading {}", self.genesis.display()))?,
        )?;
        let me = deploy::read_members(&[self.node_home.join("member.json")])?.remove(0);
        match (self.joining, deploy::check_includes(&g, &me)) {
            (false, r) => r?,
            (true, Ok(())) => anyhow::bail!(
                "--joining, but the genesis already lists {} as a founding member",
                me.id
            ),
            (true, Err(_)) => {}
        }
        let from_files = deploy::peers(&deploy::read_members(&self.member_files)?, &me.id);
        let own = format!("{}@", me.node_id);
        let peers: Vec<&str> = self
            .peers
            .split(',')
            .chain(from_files.split(','))
            .filter(|p| !p.is_empty() && !p.starts_with(&own))
            .collect();
        deploy::install(
            &self.node_home,
            &g,
            &NodeConfig {
                moniker: me.id.clone(),
                proxy_app: self.proxy_app,
                rpc_laddr: self.rpc_laddr,
                p2p_laddr: self.p2p_laddr,
                prometheus_laddr: self.prometheus_laddr,
                persistent_peers: peers.join(","),
                timeout_commit: self.timeout_commit,
                max_block_bytes: self.max_block_bytes,
                same_host: self.same_host,
            },
        )?;
        if ctx.out == Output::Text {
            println!(
                "installed the genesis of {} in {}",
                g["chain_id"].as_str().unwrap_or("?"),
                self.node_home.display()
            );
        }
        Ok(Exit::Ok)
    }
}

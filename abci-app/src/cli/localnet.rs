//! `medledger localnet`: a 4-validator consortium on this machine (medledger-devnet).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use medledger_devnet::localnet::{self, AppKind, Localnet, Spec};

use super::{print_json, Ctx, Exit, Output};

/// `localnet` subcommands.
#[derive(Debug, Subcommand)]
pub enum LocalnetCmd {
    /// Create (first time) and start the 4-validator localnet; returns once blocks are made.
    Up(UpArgs),
    /// Stop every process the localnet started.
    Down(DownArgs),
    /// Height and app hash of each node.
    Status(StatusArgs),
    /// Stop the localnet and delete its data (keys stay).
    Reset(ResetArgs),
    /// Add a full node to the running localnet and wait until it has caught up: by replaying
    /// every block, or with `--state-sync` from the newest snapshot the validators serve
    /// (`medledger start --snapshot-interval`). It can then be admitted by vote
    /// (`gov propose admit <localnet>/NAME/member.json`).
    Join(JoinArgs),
}

impl LocalnetCmd {
    /// Runs `localnet …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            LocalnetCmd::Up(a) => a.run(ctx).await,
            LocalnetCmd::Down(a) => a.run(ctx),
            LocalnetCmd::Status(a) => a.run(ctx).await,
            LocalnetCmd::Reset(a) => a.run(ctx),
            LocalnetCmd::Join(a) => a.run(ctx).await,
        }
    }
}

/// The localnet's directory, `<home>/localnet`.
fn dir(ctx: &Ctx) -> PathBuf {
    ctx.home.join("localnet")
}

/// This binary, which the localnet's nodes run.
fn me() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("locating the medledger binary")
}

/// `localnet up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// First port: node i uses base+10i (p2p), +1 (RPC), +2 (reserved), +3 (its member's
    /// record-vault gateway).
    #[arg(long, default_value_t = 26656)]
    base_port: u16,
    /// Chain id (first time only).
    #[arg(long, default_value = localnet::CHAIN_ID)]
    chain_id: String,
    /// Each validator takes a state sync snapshot every this many heights (first time
    /// only; default: `medledger start`'s).
    #[arg(long)]
    snapshot_interval: Option<u64>,
}

impl UpArgs {
    /// Creates the localnet (first time), starts it and prints its status.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (dir, me) = (dir(ctx), me()?);
        let mut spec = Spec::consortium(self.chain_id, self.base_port, AppKind::Medledger)?;
        spec.gateways = true;
        spec.snapshot_interval = self.snapshot_interval;
        let mut net = Localnet::open_or_init(&dir, spec, &ctx.keyring, me)?;
        if !net.spec.gateways {
            // A localnet made before gateways existed: it gets them from now on.
            net.spec.gateways = true;
            std::fs::write(
                dir.join("localnet.json"),
                serde_json::to_vec_pretty(&net.spec)?,
            )?;
        }
        let took = net.up().await?;
        if ctx.out == Output::Text {
            println!(
                "localnet {:?} is up: first node at height >= 1 after {:.1} s",
                net.spec.chain_id,
                took.as_secs_f64()
            );
            println!("data and logs: {}", dir.display());
            println!(
                "member admin keys: {} ({})",
                ctx.home.join("keys").display(),
                localnet::MEMBERS.map(|m| m.0).join(", ")
            );
        }
        print_status(&net, ctx.out).await?;
        Ok(Exit::Ok)
    }
}

/// `localnet down`.
#[derive(Debug, Args)]
pub struct DownArgs {}

impl DownArgs {
    /// Stops the localnet's processes.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        Localnet::open(&dir(ctx), me()?)?.down()?;
        if ctx.out == Output::Text {
            println!("localnet stopped");
        }
        Ok(Exit::Ok)
    }
}

/// `localnet status`.
#[derive(Debug, Args)]
pub struct StatusArgs {}

impl StatusArgs {
    /// Prints each node's status: [`Exit::NodeDown`] when a node does not answer.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let net = Localnet::open(&dir(ctx), me()?)?;
        print_status(&net, ctx.out).await
    }
}

/// `localnet reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {}

impl ResetArgs {
    /// Stops the localnet and deletes its directory.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (dir, me) = (dir(ctx), me()?);
        if dir.join("localnet.json").exists() {
            Localnet::open(&dir, me)?.down()?;
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        println!("localnet data removed: {}", dir.display());
        Ok(Exit::Ok)
    }
}

/// `localnet join NAME`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The new node's name (and member id if admitted).
    name: String,
    /// Join by state sync (trusting node 0's latest header) instead of replaying.
    #[arg(long)]
    state_sync: bool,
}

impl JoinArgs {
    /// Adds the node, starts it and waits until it reaches the validators' height.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (dir, me, keyring) = (dir(ctx), me()?, &ctx.keyring);
        anyhow::ensure!(
            dir.join("localnet.json").exists(),
            "no localnet in {}: run `medledger localnet up` first",
            dir.display()
        );
        let mut net = Localnet::open_or_init(
            &dir,
            Spec::consortium(localnet::CHAIN_ID.into(), 26656, AppKind::Medledger)?,
            keyring,
            me,
        )?;
        let node = net
            .add_node(&self.name, localnet::NodePorts::free()?, keyring)?
            .index;
        let c = net.client(0)?;
        if self.state_sync {
            let trust = c.latest_height().await?.saturating_sub(1).max(1);
            let (header, _) = c.light_block(trust).await?;
            net.join_by_state_sync(node, trust, &header.header.hash().to_string())?;
        }
        let started = std::time::Instant::now();
        net.start_node(node)?;
        let target = c.latest_height().await?;
        net.wait_for_height(node, target, std::time::Duration::from_secs(3600))
            .await?;
        let took = started.elapsed().as_secs_f64();
        let how = if self.state_sync {
            "state sync"
        } else {
            "replay"
        };
        let name = self.name;
        if ctx.out == Output::Json {
            print_json(&serde_json::json!({
                "node": name, "height": target, "seconds": took, "by": how,
            }))?;
        } else {
            println!("{name} reached height {target} by {how} in {took:.1} s");
        }
        Ok(Exit::Ok)
    }
}

async fn print_status(net: &Localnet, out: Output) -> anyhow::Result<Exit> {
    let status = net.status().await;
    if out == Output::Json {
        print_json(&status)?;
    } else {
        let gateways = status.iter().any(|s| s.gateway.is_some());
        println!(
            "{:<12} {:<24} {:<9} {:>7}  {}app hash",
            "node",
            "rpc",
            "processes",
            "height",
            if gateways {
                format!("{:<30} ", "gateway")
            } else {
                String::new()
            }
        );
        for s in &status {
            let procs = match (s.app_running, s.cometbft_running) {
                (true, true) => "up",
                (false, false) => "down",
                (true, false) => "app only",
                (false, true) => "cmt only",
            };
            let height = s.height.map_or("-".to_string(), |h| h.to_string());
            let gateway = match &s.gateway {
                Some(url) if s.gateway_running => format!("{:<30} ", url),
                Some(url) => format!("{:<30} ", format!("{url} (down)")),
                None => String::new(),
            };
            println!(
                "{:<12} {:<24} {:<9} {:>7}  {}{}",
                s.name,
                s.rpc,
                procs,
                height,
                gateway,
                s.app_hash.as_deref().map_or("-".into(), str::to_lowercase)
            );
        }
        println!("Prometheus metrics (app, CometBFT, gateway):");
        for s in &status {
            println!(
                "  {:<12} {}  {}{}",
                s.name,
                s.metrics.as_deref().unwrap_or("-"),
                s.cometbft_metrics,
                s.gateway
                    .as_deref()
                    .map_or(String::new(), |g| format!("  {g}/metrics"))
            );
        }
    }
    // Exit 3 when a node does not answer, so scripts can wait on `localnet status`.
    Ok(if status.iter().any(|s| s.height.is_none()) {
        Exit::NodeDown
    } else {
        Exit::Ok
    })
}

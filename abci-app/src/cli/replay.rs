//! `medledger replay`: the determinism check, the chain's blocks replayed into a fresh ledger.

use std::path::PathBuf;

use clap::Args;
use medledger_client::Client;
use medledger_devnet::localnet;

use super::{print_json, Ctx, Exit, NodeArgs, Output};

/// `replay` arguments.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    /// The node to read blocks from.
    pub node: NodeArgs,
    /// The chain's genesis.json (default: the localnet's).
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// Last height to replay (0 = the latest the node can vouch for).
    #[arg(long, default_value_t = 0)]
    pub to: u64,
}

impl ReplayArgs {
    /// Replays and compares: [`Exit::Diverged`] when an app hash differs.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (ReplayArgs { node, genesis, to }, out) = (self, ctx.out);
        let genesis = genesis.unwrap_or_else(|| {
            ctx.home
                .join("localnet")
                .join(localnet::MEMBERS[0].0)
                .join("cometbft/config/genesis.json")
        });
        let dir = tempfile_dir()?;
        let report =
            medledger_client::replay::replay(&Client::new(&node.node)?, &genesis, &dir, to, true)
                .await;
        let _ = std::fs::remove_dir_all(&dir);
        let report = report?;
        if out == Output::Json {
            print_json(&report)?;
        } else {
            println!(
                "replayed {} blocks ({} txs) into a fresh ledger: {} divergences",
                report.blocks,
                report.txs,
                report.divergences.len()
            );
            for (h, ours, theirs) in &report.divergences {
                println!(
                    "  height {h}: replay {}, chain {}",
                    ours.to_lowercase(),
                    theirs.to_lowercase()
                );
            }
        }
        Ok(if report.divergences.is_empty() {
            Exit::Ok
        } else {
            Exit::Diverged
        })
    }
}

/// A fresh directory under the system temp dir for a throwaway ledger.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let dir = std::env::temp_dir().join(format!("medledger-replay-{}", hex::encode(nonce)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

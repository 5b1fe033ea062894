//! Determinism check: replay a chain's committed blocks into a fresh ledger and compare the app
//! hash at every height with the one the validators signed.
//!
//! The fresh ledger gets exactly what CometBFT would give a new node: InitChain from the genesis
//! file, then FinalizeBlock + Commit of each block's txs at the block's height and time. Any
//! difference means the state machine is not a function of its blocks.

use std::path::Path;

use anyhow::Context;
use medledger_state::Ledger;
use serde::Serialize;
use tendermint::block::Height;
use tendermint_rpc::Client as _;

use crate::rpc::Client;

/// The outcome of a replay.
#[derive(Clone, Debug, Serialize)]
pub struct ReplayReport {
    /// Blocks replayed.
    pub blocks: u64,
    /// Transactions replayed.
    pub txs: u64,
    /// Heights whose app hash differed (height, ours, the chain's), at most the first ten.
    pub divergences: Vec<(u64, String, String)>,
}

/// Replays blocks `1..=to` (0 = up to the node's latest minus one) from `client` into a new ledger
/// in `dir`, initialised from the genesis file. With `progress`, a bar on stderr shows blocks
/// done, the rate and the time left (drawn only when stderr is a terminal).
pub async fn replay(
    client: &Client,
    genesis: &Path,
    dir: &Path,
    to: u64,
    progress: bool,
) -> anyhow::Result<ReplayReport> {
    let bytes = std::fs::read(genesis).with_context(|| format!("reading {}", genesis.display()))?;
    let g: tendermint::Genesis<serde_json::Value> =
        serde_json::from_slice(&bytes).context("genesis.json")?;
    // Exactly what InitChain carries: the validators' Ed25519 consensus keys and powers.
    let validators: Vec<([u8; 32], u64)> = g
        .validators
        .iter()
        .map(|v| {
            (
                v.pub_key.to_bytes().try_into().unwrap_or([0; 32]),
                v.power.value(),
            )
        })
        .collect();
    let app_state = serde_json::to_vec(&g.app_state)?;
    let mut ledger = Ledger::open(dir).with_context(|| format!("opening {}", dir.display()))?;
    ledger.init_chain_with_keys(
        g.chain_id.as_str(),
        u64::try_from(g.initial_height).unwrap_or(1),
        &app_state,
        &validators,
        &consensus_params_bytes(g.consensus_params),
    )?;

    let latest = client.latest_height().await?;
    let to = if to == 0 {
        latest.saturating_sub(1)
    } else {
        to.min(latest.saturating_sub(1))
    };
    let mut report = ReplayReport {
        blocks: 0,
        txs: 0,
        divergences: Vec::new(),
    };
    let bar = if progress {
        indicatif::ProgressBar::new(to)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "replay {bar:30} {pos}/{len} blocks, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for h in 1..=to {
        let block = client
            .rpc()
            .block(Height::try_from(h)?)
            .await
            .with_context(|| format!("block {h}"))?
            .block;
        let next = client
            .rpc()
            .block(Height::try_from(h + 1)?)
            .await
            .with_context(|| format!("block {}", h + 1))?
            .block;
        let txs: Vec<Vec<u8>> = block.data.clone();
        let time = u64::try_from(block.header.time.unix_timestamp()).unwrap_or(0);
        let ours = ledger.finalize_block(h, time, &txs)?.app_hash;
        ledger.commit()?;
        let theirs = next.header.app_hash.as_bytes().to_vec();
        if ours.as_slice() != theirs.as_slice() && report.divergences.len() < 10 {
            report
                .divergences
                .push((h, hex::encode_upper(ours), hex::encode_upper(&theirs)));
        }
        report.blocks += 1;
        report.txs += txs.len() as u64;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

/// CometBFT's consensus parameters as the ledger keeps them (`consensus/params`): the protobuf of
/// CometBFT v0.38. The ABCI server encodes InitChain's this way and replay the genesis file's,
/// so both write the same genesis state.
pub fn consensus_params_bytes(params: tendermint::consensus::Params) -> Vec<u8> {
    use prost::Message;
    tendermint_proto::v0_38::types::ConsensusParams::from(params).encode_to_vec()
}

//! Where each planned tx stands: sent, refused or accepted, and in which block with what code.
//! The senders and the poller share one [`Tracker`]; at the end it becomes a [`LoadReport`].

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::bail;
use medledger_tx::ids;

use medledger_devnet::localnet::AppKind;

use crate::config::LoadConfig;
use crate::plan::Plan;
use crate::report::{ms, per_second, Latencies, LoadReport};

/// Where a planned tx stands.
#[derive(Clone, Debug, Default)]
pub(crate) struct TxState {
    /// When it was handed to its connection's request.
    pub(crate) submitted: Option<Instant>,
    /// Whether the node accepted it (CheckTx code 0, or queued with `async`).
    pub(crate) accepted: bool,
    /// Why the node refused it at submission (CheckTx code or RPC error).
    pub(crate) refused: Option<String>,
    /// How many blocks hold it (more than 1 would be a duplicate).
    pub(crate) included: u32,
    /// When the poller first saw a block holding it.
    pub(crate) seen: Option<Instant>,
    /// FinalizeBlock code of its first inclusion.
    pub(crate) code: u32,
    /// `consent_id` of a `medledger.consent.granted` event, if it emitted one.
    pub(crate) consent_id: Option<String>,
}

impl TxState {
    /// Why it did not commit, if it did not.
    pub(crate) fn failure(&self, app: AppKind) -> Option<String> {
        if self.included > 0 {
            return (self.code != 0).then(|| format!("deliver: {}", code_name(app, self.code)));
        }
        self.refused.clone()
    }
}

/// A result code as a report names it: `NAME (code)` for medledger, `code N` otherwise.
pub(crate) fn code_name(app: AppKind, code: u32) -> String {
    match app {
        AppKind::Medledger => match medledger_tx::Code::from_value(code) {
            Some(c) => format!("{} ({code})", c.name()),
            None => format!("code {code}"),
        },
        AppKind::Kvstore => format!("code {code}"),
    }
}

/// A block that held some of our txs.
struct BlockSeen {
    seen: Instant,
    /// Our txs in it that were applied (code 0).
    ok: u64,
}

/// Every planned tx's state, shared by the senders and the poller.
pub(crate) struct Tracker {
    /// The app behind the nodes, for naming codes.
    pub(crate) app: AppKind,
    index: BTreeMap<[u8; 32], usize>,
    /// One per planned tx, in plan order.
    pub(crate) states: Vec<TxState>,
    blocks: Vec<BlockSeen>,
    // Running counts for the progress line.
    /// Txs sent.
    pub(crate) sent: u64,
    /// Txs refused where the sender saw it.
    pub(crate) refused: u64,
    /// Txs in a block with code 0.
    pub(crate) committed: u64,
    /// Accepted and not yet seen in a block.
    pub(crate) awaiting: u64,
    /// Copies sent by the drain's resends.
    resent: u64,
    /// The last height recorded.
    pub(crate) height: u64,
}

/// What the states of a finished phase add up to.
#[derive(Default)]
struct Tally {
    sent: u64,
    accepted: u64,
    committed: u64,
    uncommitted: u64,
    duplicates: u64,
    rejected: BTreeMap<String, u64>,
    latencies: Latencies,
}

impl Tracker {
    /// Every tx of `plan` unsent, indexed by its hash.
    pub(crate) fn new(plan: &Plan, app: AppKind) -> Tracker {
        let index = plan
            .txs
            .iter()
            .enumerate()
            .map(|(i, t)| (ids::tx_hash(&t.bytes), i))
            .collect();
        Tracker {
            app,
            index,
            states: vec![TxState::default(); plan.txs.len()],
            blocks: Vec::new(),
            sent: 0,
            refused: 0,
            committed: 0,
            awaiting: 0,
            resent: 0,
            height: 0,
        }
    }

    /// Tx `i` is being sent, at `at`.
    pub(crate) fn submitted(&mut self, i: usize, at: Instant) {
        if let Some(s) = self.states.get_mut(i) {
            s.submitted = Some(at);
            self.sent += 1;
        }
    }

    /// The node answered tx `i`: accepted, or `refused` and why.
    pub(crate) fn checked(&mut self, i: usize, refused: Option<String>) {
        let Some(s) = self.states.get_mut(i) else {
            return;
        };
        match refused {
            None => {
                s.accepted = true;
                if s.included == 0 {
                    self.awaiting += 1;
                }
            }
            Some(why) => {
                s.refused = Some(why);
                self.refused += 1;
            }
        }
    }

    /// Txs accepted and not yet seen in a block, in plan order.
    pub(crate) fn awaited(&self) -> Vec<usize> {
        (0..self.states.len())
            .filter(|&i| {
                self.states
                    .get(i)
                    .is_some_and(|s| s.accepted && s.included == 0 && s.refused.is_none())
            })
            .collect()
    }

    /// Tx `i` was resent; `refused` if the node refused the copy.
    pub(crate) fn resent(&mut self, i: usize, refused: Option<String>) {
        self.resent += 1;
        let Some(s) = self.states.get_mut(i) else {
            return;
        };
        if let (Some(why), 0) = (refused, s.included) {
            if s.refused.is_none() {
                s.refused = Some(why);
                self.refused += 1;
                self.awaiting = self.awaiting.saturating_sub(1);
            }
        }
    }

    /// Block `height`, first seen at `seen`: which of its txs are ours, and their results.
    pub(crate) fn record_block(
        &mut self,
        height: u64,
        seen: Instant,
        txs: &[Vec<u8>],
        results: &[tendermint::abci::types::ExecTxResult],
    ) -> anyhow::Result<()> {
        if txs.len() != results.len() {
            bail!(
                "block {height} holds {} txs but has {} results",
                txs.len(),
                results.len()
            );
        }
        let mut ok = 0;
        let mut ours = false;
        for (tx, result) in txs.iter().zip(results) {
            let Some(&i) = self.index.get(&ids::tx_hash(tx)) else {
                continue;
            };
            let Some(s) = self.states.get_mut(i) else {
                continue;
            };
            ours = true;
            s.included += 1;
            if s.included > 1 {
                continue;
            }
            s.seen = Some(seen);
            s.code = result.code.value();
            s.consent_id = consent_id_of(result);
            if s.accepted {
                self.awaiting = self.awaiting.saturating_sub(1);
            }
            if s.code == 0 {
                ok += 1;
                self.committed += 1;
            }
        }
        if ours {
            self.blocks.push(BlockSeen { seen, ok });
        }
        self.height = height;
        Ok(())
    }

    /// Counts the states: sent, accepted, committed (with their latencies), rejected by why,
    /// accepted but never committed, and extra inclusions.
    fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for s in &self.states {
            t.sent += u64::from(s.submitted.is_some());
            t.accepted += u64::from(s.accepted);
            t.duplicates += u64::from(s.included.saturating_sub(1));
            if s.included > 0 && s.code == 0 {
                t.committed += 1;
                if let (Some(sub), Some(seen)) = (s.submitted, s.seen) {
                    t.latencies.record(seen.saturating_duration_since(sub));
                }
            } else if let Some(why) = s.failure(self.app) {
                *t.rejected.entry(why).or_default() += 1;
            } else if s.accepted {
                t.uncommitted += 1;
            }
        }
        t
    }

    /// The report of a phase started at `started` whose sending took `send_elapsed` (without
    /// the CPU, memory and store sizes, which the caller samples).
    pub(crate) fn report(
        &self,
        cfg: &LoadConfig,
        app: AppKind,
        tx_bytes_avg: u64,
        started: Instant,
        send_elapsed: Duration,
    ) -> LoadReport {
        let Tally {
            sent,
            accepted,
            committed,
            uncommitted,
            duplicates,
            rejected,
            latencies,
        } = self.tally();
        let duration_ms = u64::try_from(cfg.duration.as_millis()).unwrap_or(u64::MAX);
        let committed_tx_per_s =
            self.committed_rate(committed, duration_ms, started + send_elapsed);
        LoadReport {
            app: app.name().into(),
            offered_tx_per_s: cfg.rate,
            connections: cfg.connections,
            duration_ms,
            tx_bytes_avg,
            planned: self.states.len() as u64,
            sent,
            sent_tx_per_s: per_second(sent, send_elapsed),
            accepted,
            committed,
            committed_tx_per_s,
            rejected_total: rejected.values().sum(),
            rejected,
            uncommitted,
            duplicates,
            resent: self.resent,
            latency: latencies.summary(),
            blocks: self.blocks.len() as u64,
            // Below 90 % of the offered rate, as CometBFT's QA method defines saturation.
            saturated: committed_tx_per_s.saturating_mul(10) < cfg.rate.saturating_mul(9),
            sender_bound: per_second(sent, send_elapsed).saturating_mul(10)
                < cfg.rate.saturating_mul(9),
            broadcast: cfg.broadcast,
            nodes: Vec::new(),
            loadgen_cpu_millicores: 0,
            store_bytes: (0, 0),
        }
    }

    /// Committed tx/s. A block holds the txs that arrived between the previous block's proposal
    /// and its own, so the txs of every block but the first, over the time from the first block
    /// to the last, is the commit rate. Only blocks seen while sending was still going on count:
    /// a later block would add the idle time after the last send to the span (and, when the chain
    /// keeps up, no txs), which reads low. Fallbacks for runs too short for two such blocks: all
    /// blocks, then committed txs over the planned duration.
    fn committed_rate(&self, committed: u64, duration_ms: u64, send_end: Instant) -> u64 {
        let during: Vec<&BlockSeen> = self
            .blocks
            .iter()
            .filter(|b| b.ok > 0 && b.seen <= send_end)
            .collect();
        let all: Vec<&BlockSeen> = self.blocks.iter().filter(|b| b.ok > 0).collect();
        for blocks in [during, all] {
            let (Some(first), Some(last)) = (blocks.first(), blocks.last()) else {
                continue;
            };
            let span_ms = ms(last.seen.saturating_duration_since(first.seen));
            if blocks.len() >= 2 && span_ms > 0 {
                let after_first: u64 = blocks.iter().skip(1).map(|b| b.ok).sum();
                return after_first.saturating_mul(1000) / span_ms;
            }
        }
        committed.saturating_mul(1000) / duration_ms.max(1)
    }
}

/// The `consent_id` of a tx's `medledger.consent.granted` event, if it has one.
fn consent_id_of(result: &tendermint::abci::types::ExecTxResult) -> Option<String> {
    result
        .events
        .iter()
        .filter(|e| e.kind == "medledger.consent.granted")
        .flat_map(|e| e.attributes.iter())
        .find(|a| a.key_str().ok() == Some("consent_id"))
        .and_then(|a| a.value_str().ok().map(String::from))
}

/// The shared tracker, locked.
pub(crate) fn lock(t: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A sender that panicked cannot leave a state half-written that matters to a report.
    t.lock().unwrap_or_else(|e| e.into_inner())
}

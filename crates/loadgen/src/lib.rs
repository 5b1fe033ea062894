//! A load generator for a 4-validator localnet: pre-signed transactions at a fixed offered rate
//! over N connections through CometBFT's RPC, each tracked to the block that commits it.
//!
//! # Method
//!
//! 1. **Setup (medledger only, not timed).** `patients` fresh patient keys register, each grants
//!    one consent (`Observation`, TREAT) to every member, plus a few *spare* consents to
//!    insurer-c that the timed phase revokes. Everything is committed (sent with
//!    `broadcast_tx_async`, see below), and the spares' consent ids are read from the block
//!    results, before timing starts.
//! 2. **Pre-signing.** Every tx of the timed phase is signed up front (signing is not part of
//!    what we measure). The mix is 90 % `LogAccess` (signed by the four members' admin keys,
//!    always permitted by a setup consent), 8 % `GrantConsent` and 2 % `RevokeConsent` (a spare;
//!    when none is left, a grant instead), chosen by a seeded PRNG. For the kvstore baseline the
//!    txs are unique `key=value` strings padded to the average size of the medledger txs.
//! 3. **Sending.** Tx *i* is due at `i / rate` seconds. Each connection is one tokio task with its
//!    own `HttpClient` to one node (connection *j* → node *j* mod 4); it sends its txs one at a
//!    time, at their due time or at once if it is behind, with `broadcast_tx_sync` (the default:
//!    CheckTx rejections are counted by code) or `broadcast_tx_async` ([`Broadcast`]). Sending
//!    stops at `duration`; txs not sent by then are not counted.
//! 4. **Tracking.** One poller asks node 0 for `/status` every 50 ms and fetches `/block` and
//!    `/block_results` of each new height, matching SHA-256 of each tx (CometBFT's tx hash) to
//!    the plan. After sending, it waits for the accepted txs still in mempools while they keep
//!    committing: until none is left, or none commits for `drain` (at most 12 × `drain`).
//!
//! # Why the routing matters
//!
//! The access logs (90 % of the mix) are *unordered*: each carries a random nonce and a
//! `valid_until` ([`UNORDERED_VALIDITY_AFTER_DUE_SECS`] after its due time) instead of a
//! sequence, as a member's many servers would send them. They go over every connection in turn
//! (tx *i* → connection *i* mod N), and a refused one affects no other.
//!
//! Consent grants and revocations stay *ordered*: every patient has a strictly sequential
//! sequence number, and CheckTx checks it against committed state *plus this node's mempool*
//! (`SEQUENCE_GAP`, code 8, for a number that skips ahead). So all txs of one patient go over
//! **one** connection (patient `p` uses `(p + 4) mod N`), hence to one node, in order. When one
//! of them is refused where the sender sees it (a CheckTx code with `sync`, a full mempool with
//! either mode), its later txs could only be `SEQUENCE_GAP`: the sender does not send them and
//! counts them as refused (`client: not sent, …`), where a real client would re-sign them.
//!
//! # What the numbers mean, and their limits
//!
//! - **Latency** is submit → commit: from just before `broadcast_tx_sync` to the local
//!   wall-clock instant at which the poller first saw, in node 0's `/status`, a height whose block
//!   holds the tx. It includes up to one poll interval (50 ms) of polling delay, and measures
//!   commit as seen from node 0. Block header times are not used: they are the proposer's clock
//!   (BFT time), not ours. Percentiles are nearest-rank, in integers, over committed txs.
//! - **Committed tx/s** counts txs applied with code 0, over the blocks seen while sending: the
//!   txs of every such block but the first, divided by the time between the first and the last
//!   of them being seen. This is unbiased by the pipeline delay at both ends of the run; with few
//!   blocks (short runs) it is noisy by about one block's worth of txs.
//!   *Saturated* means below 90 % of the offered rate, as in CometBFT's QA method.
//!   *Sender-bound* means the connections could not even send 90 % of the offered rate: with
//!   `sync`, each connection waits one CheckTx round trip per tx, which behind a socket ABCI app
//!   includes CometBFT's 20 ms ABCI flush throttle (about 40–50 tx/s per connection), while
//!   the in-process kvstore answers at once. Such a run measures the client pattern, not the
//!   chain's capacity: use more connections or `async`.
//! - **Rejected** are keyed by where: `check:` (CheckTx code), `deliver:` (in a block but refused
//!   by FinalizeBlock), `rpc:` (the node refused the request, e.g. a full mempool) or `client:`
//!   (not sent: an earlier tx of its ordered signer was refused).
//! - **Lost** txs were accepted (or sent with `async`, which does not report CheckTx) and
//!   neither committed nor refused where the sender saw it; any makes the bench exit 2.
//! - **CPU and RSS** are read with `procfs` from `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status`
//!   (VmRSS, VmHWM) of the PIDs in the localnet's PID files, at the start and end of sending.
//!   CPU is in millicores (1000 = one core busy the whole time). The generator runs on the same
//!   machine and takes its share of the cores; its own CPU is reported too.
//! - On a laptop or a shared 2-core machine everything shares the CPU: compare runs taken on the
//!   same quiet machine, and prefer the medledger / kvstore *ratio* to absolute numbers.
//!
//! # Layout
//!
//! `config` (what to send and where), `plan` (the txs of a phase, in due order),
//! `workload` and `setup` (medledger's signers, its untimed setup and its timed mix),
//! `prepare` ([`Prepared`]), `send` (senders, the block poller and the drain), `tracker` (each
//! tx's state), `report` ([`LoadReport`] and its texts) and `usage` (CPU and memory from
//! `/proc`); [`flood`] is the abuse load of `bench starve`.

mod config;
pub mod flood;
mod plan;
mod prepare;
mod report;
mod send;
mod setup;
mod tracker;
mod usage;
mod workload;

pub use config::{
    Broadcast, LoadConfig, NodeProcs, Target, ACCESS_PCT, GRANT_PCT, MAX_CONNECTIONS,
    MAX_DRAIN_FACTOR, MAX_PATIENTS, MAX_PLANNED_TXS, REVOKE_PCT, UNORDERED_VALIDITY_AFTER_DUE_SECS,
};
pub use prepare::{prepare, prepare_excluding, KeyCounts, Prepared};
pub use report::{
    any_lost, collapses, details, mib, ratio_percent, ratio_text, saturation_summary, table,
    verdict, Comparison, Latencies, Latency, LoadReport, RatioPercent, PLATEAU_PCT,
};
pub use usage::{dir_bytes, NodeUsage, ProcUsage};
pub use workload::sample_medledger_tx_size;

// What `flood` shares with the load above it (`super::…`).
use medledger_devnet::localnet::AppKind;
use plan::{due, random_key, random_u64};
use report::per_second;
use send::{chain_id, http, rpc_error_kind};
use setup::{enrol, member_signers};
use tracker::code_name;

use medledger_client::Keyring;

/// Runs the setup (medledger), then the timed load, and reports. `keyring` holds the members'
/// admin keys (unused for kvstore).
pub async fn run(
    target: &Target,
    keyring: &Keyring,
    cfg: &LoadConfig,
) -> anyhow::Result<LoadReport> {
    prepare(target, keyring, cfg).await?.run(target, cfg).await
}

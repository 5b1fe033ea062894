//! Sending a phase and following it to its blocks: one sender task per connection, a poller of
//! node 0's new blocks, the drain (with its resends of txs a mempool dropped), and the
//! progress line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use tendermint::block::Height;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient};
use tokio::task::JoinHandle;

use crate::config::{Broadcast, Target, MAX_DRAIN_FACTOR, POLL_INTERVAL, RPC_TIMEOUT};
use crate::plan::Plan;
use crate::tracker::{code_name, lock, Tracker};

/// An RPC client of the node at `url` (CometBFT 0.38, [`RPC_TIMEOUT`] per request).
pub(crate) fn http(url: &str) -> anyhow::Result<HttpClient> {
    let parsed: tendermint_rpc::HttpClientUrl = url
        .parse()
        .with_context(|| format!("bad node URL {url:?}"))?;
    HttpClient::builder(parsed)
        .compat_mode(CompatMode::V0_38)
        .timeout(RPC_TIMEOUT)
        .build()
        .context("building RPC client")
}

/// The chain id of the node at `url`.
pub(crate) async fn chain_id(url: &str) -> anyhow::Result<String> {
    Ok(http(url)?
        .status()
        .await
        .with_context(|| format!("{url}/status"))?
        .node_info
        .network
        .to_string())
}

/// What a phase left behind.
pub(crate) struct Outcome {
    /// Every tx's state at the end of the drain.
    pub(crate) tracker: Tracker,
    /// From the start to the last send.
    pub(crate) send_elapsed: Duration,
}

/// Sends `plan` (tx *i* at `started + at`, until `deadline`), tracks it to its blocks, and after
/// the last send waits for the accepted txs to commit while they keep committing (`drain`
/// without one ends it).
pub(crate) async fn execute(
    target: &Target,
    plan: Plan,
    started: Instant,
    deadline: Option<Instant>,
    drain: Duration,
    broadcast: Broadcast,
    progress: Option<&str>,
) -> anyhow::Result<Outcome> {
    let tracker = Arc::new(Mutex::new(Tracker::new(&plan, target.app)));
    let poll_client = http(&target.rpc[0])?;
    let from = poll_client
        .status()
        .await
        .context("node /status")?
        .sync_info
        .latest_block_height
        .value();
    let sends_done = Arc::new(AtomicBool::new(false));
    let plan = Arc::new(plan);
    let poller = tokio::spawn(poll_commits(
        poll_client,
        tracker.clone(),
        plan.clone(),
        from,
        sends_done.clone(),
        drain,
    ));
    let ticker = progress.map(|label| {
        tokio::spawn(print_progress(
            label.to_string(),
            tracker.clone(),
            plan.txs.len(),
            started,
        ))
    });
    let senders = spawn_senders(target, &plan, &tracker, started, deadline, broadcast)?;
    let mut send_error = None;
    for s in senders {
        if let Err(e) = s.await {
            send_error.get_or_insert(anyhow::anyhow!("a sender task failed: {e}"));
        }
    }
    let send_elapsed = started.elapsed();
    sends_done.store(true, Ordering::Release);
    let polled = poller.await;
    if let Some(t) = ticker {
        // Abort only requests cancellation; awaiting it drops the task's tracker handle.
        t.abort();
        let _ = t.await;
    }
    if let Some(e) = send_error {
        return Err(e);
    }
    polled.context("the commit poller failed")??;
    let tracker = Arc::try_unwrap(tracker).map_err(|_| anyhow::anyhow!("tracker still shared"))?;
    Ok(Outcome {
        tracker: tracker.into_inner().unwrap_or_else(|e| e.into_inner()),
        send_elapsed,
    })
}

/// One [`send_queue`] task per connection of the plan, connection `j` to node `j` mod the
/// number of nodes.
fn spawn_senders(
    target: &Target,
    plan: &Arc<Plan>,
    tracker: &Arc<Mutex<Tracker>>,
    started: Instant,
    deadline: Option<Instant>,
    broadcast: Broadcast,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let conns = plan.txs.iter().map(|t| t.conn + 1).max().unwrap_or(0);
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); conns];
    for (i, t) in plan.txs.iter().enumerate() {
        if let Some(q) = queues.get_mut(t.conn) {
            q.push(i);
        }
    }
    let mut senders = Vec::new();
    for (j, queue) in queues.into_iter().enumerate() {
        let client = http(&target.rpc[j % target.rpc.len()])?;
        senders.push(tokio::spawn(send_queue(
            client,
            plan.clone(),
            queue,
            tracker.clone(),
            started,
            deadline,
            broadcast,
        )));
    }
    Ok(senders)
}

/// One connection: its txs in plan order, one request at a time, each at its due time.
async fn send_queue(
    client: HttpClient,
    plan: Arc<Plan>,
    queue: Vec<usize>,
    tracker: Arc<Mutex<Tracker>>,
    started: Instant,
    deadline: Option<Instant>,
    broadcast: Broadcast,
) {
    // Ordered signers of this connection with a refused tx (all of a signer's txs use one
    // connection): their later sequences cannot apply.
    let mut broken = std::collections::BTreeSet::new();
    for i in queue {
        let Some(tx) = plan.txs.get(i) else { continue };
        let due_at = started + tx.at;
        if deadline.is_some_and(|d| due_at >= d || Instant::now() >= d) {
            break;
        }
        tokio::time::sleep_until(due_at.into()).await;
        lock(&tracker).submitted(i, Instant::now());
        if tx.ordered.is_some_and(|s| broken.contains(&s)) {
            // A client re-signs these after the refusal; the generator's plan is fixed, so it
            // counts them as refused where the sender sees it, never as silently lost.
            lock(&tracker).checked(i, Some(SKIPPED.into()));
            continue;
        }
        // Either way the next request goes out only after this one's answer, which CometBFT
        // gives after queueing its CheckTx: a signer's txs reach the app in order.
        let answer = match broadcast {
            Broadcast::Sync => client
                .broadcast_tx_sync(tx.bytes.clone())
                .await
                .map(|r| r.code.value()),
            Broadcast::Async => client
                .broadcast_tx_async(tx.bytes.clone())
                .await
                .map(|r| r.code.value()),
        };
        let refused = match answer {
            Ok(0) => None,
            Ok(code) => Some(format!("check: {}", code_name(lock(&tracker).app, code))),
            Err(e) => Some(format!("rpc: {}", rpc_error_kind(&e.to_string()))),
        };
        if refused.is_some() {
            if let Some(s) = tx.ordered {
                broken.insert(s);
            }
        }
        lock(&tracker).checked(i, refused);
    }
}

/// Why a planned tx was not sent: an earlier tx of its ordered signer was refused.
const SKIPPED: &str = "client: not sent, an earlier tx of its signer was refused";

/// A short, stable name for an RPC failure, so reports group them.
pub(crate) fn rpc_error_kind(message: &str) -> String {
    for known in [
        "mempool is full",
        "tx already exists in cache",
        "timed out",
        "connection refused",
    ] {
        if message.contains(known) {
            return known.into();
        }
    }
    message.chars().take(80).collect()
}

/// Watches node 0 for new heights and records which of our txs each block holds.
async fn poll_commits(
    client: HttpClient,
    tracker: Arc<Mutex<Tracker>>,
    plan: Arc<Plan>,
    from: u64,
    sends_done: Arc<AtomicBool>,
    drain: Duration,
) -> anyhow::Result<()> {
    let mut next = from + 1;
    // When each height was first reported: the commit instant we attribute to its txs.
    let mut first_seen: BTreeMap<u64, Instant> = BTreeMap::new();
    let mut done_at: Option<Instant> = None;
    // When the count of our committed txs last grew, and to what.
    let mut progress = (Instant::now(), 0u64);
    let mut resends = 0;
    loop {
        record_new_blocks(&client, &tracker, &mut next, &mut first_seen).await?;
        if sends_done.load(Ordering::Acquire) {
            let since = *done_at.get_or_insert_with(Instant::now);
            let (awaiting, committed) = {
                let t = lock(&tracker);
                (t.awaiting, t.committed)
            };
            if committed != progress.1 {
                progress = (Instant::now(), committed);
            }
            let idle = progress.0.max(since).elapsed();
            if awaiting == 0 || idle >= drain || since.elapsed() >= drain * MAX_DRAIN_FACTOR {
                return Ok(());
            }
            if idle >= RESEND_IDLE && resends < MAX_RESENDS {
                // The chain commits none of ours while some are awaited: the mempools dropped
                // them (CometBFT drops a tx that passed CheckTx when the mempool filled in the
                // meantime, and tells no one). Resend them, in plan order so each ordered
                // signer's sequences arrive in order; a copy is never applied twice.
                resends += 1;
                resend_awaiting(&client, &plan, &tracker).await;
                progress.0 = Instant::now();
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// How many heights one poll fetches at once. A busy node answers each request slowly; asked
/// one height after another, the poller fell tens of blocks behind the chain on a shared 2-core
/// machine (its progress line showed height 82 with the chain at 125).
const FETCH_AHEAD: u64 = 8;

/// One poll: asks node 0 for its latest height and records the blocks from `next` up to it
/// (advancing `next`), fetching up to [`FETCH_AHEAD`] heights at once and recording them in
/// order. A block whose results are not stored yet is left for the next poll, with the time it
/// was first reported kept in `first_seen`.
async fn record_new_blocks(
    client: &HttpClient,
    tracker: &Mutex<Tracker>,
    next: &mut u64,
    first_seen: &mut BTreeMap<u64, Instant>,
) -> anyhow::Result<()> {
    let Ok(status) = client.status().await else {
        return Ok(());
    };
    let now = Instant::now();
    let latest = status.sync_info.latest_block_height.value();
    for h in *next..=latest {
        first_seen.entry(h).or_insert(now);
    }
    while *next <= latest {
        let batch_end = latest.min(*next + FETCH_AHEAD - 1);
        let mut fetches = tokio::task::JoinSet::new();
        for h in *next..=batch_end {
            let (client, height) = (client.clone(), Height::try_from(h)?);
            fetches.spawn(async move {
                // Results are stored just after the block; if they are not there yet, retry
                // at the next poll with the same first-seen time.
                let fetched = match (
                    client.block(height).await,
                    client.block_results(height).await,
                ) {
                    (Ok(block), Ok(results)) => {
                        Some((block.block.data, results.txs_results.unwrap_or_default()))
                    }
                    _ => None,
                };
                (h, fetched)
            });
        }
        let mut fetched = BTreeMap::new();
        while let Some(done) = fetches.join_next().await {
            if let Ok((h, Some(block))) = done {
                fetched.insert(h, block);
            }
        }
        let start = *next;
        for h in start..=batch_end {
            let Some((txs, results)) = fetched.remove(&h) else {
                return Ok(());
            };
            let seen = first_seen.remove(&h).unwrap_or(now);
            lock(tracker).record_block(h, seen, &txs, &results)?;
            *next = h + 1;
        }
    }
    Ok(())
}

/// How long the drain waits without a commit of ours before it resends the awaited txs.
const RESEND_IDLE: Duration = Duration::from_secs(3);
/// How many times the drain resends the awaited txs.
const MAX_RESENDS: u32 = 2;

/// Resends every tx that was accepted and not yet seen in a block, in plan order, with
/// `broadcast_tx_sync`: one refused now is counted as refused (`resend: CODE`), so it is seen,
/// not lost.
async fn resend_awaiting(client: &HttpClient, plan: &Plan, tracker: &Mutex<Tracker>) {
    let awaited = lock(tracker).awaited();
    for i in awaited {
        let Some(tx) = plan.txs.get(i) else { continue };
        let refused = match client.broadcast_tx_sync(tx.bytes.clone()).await {
            Ok(r) if r.code.value() == 0 => None,
            Ok(r) => Some(format!(
                "resend: {}",
                code_name(lock(tracker).app, r.code.value())
            )),
            // Still in a mempool (its cache), or the node is busy: leave it awaited.
            Err(_) => None,
        };
        lock(tracker).resent(i, refused);
    }
}

/// Every second, a progress line on stderr: sent, committed, rejected, in flight, height.
async fn print_progress(
    label: String,
    tracker: Arc<Mutex<Tracker>>,
    planned: usize,
    started: Instant,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        let line = {
            let t = lock(&tracker);
            format!(
                "[{label}] {:>3} s  sent {}/{planned}  committed {}  rejected {}  in flight {}  height {}",
                started.elapsed().as_secs(),
                t.sent,
                t.committed,
                t.refused,
                t.awaiting,
                t.height
            )
        };
        eprintln!("{line}");
    }
}

//! Erasure by any path destroys the key. A patient may erase a record on the ledger directly
//! (`tx record erase`), without this gateway seeing a request; the ledger's word is what counts.
//!
//! [`enforce`] runs every [`crate::ERASURE_POLL`]:
//! - it asks the node (`tx_search`, an unproven hint) for `medledger.record.erased` events since
//!   the last height it looked at, and keeps the record ids this gateway holds;
//! - at start and then every [`FULL_SWEEP_EVERY`] it looks at every record it holds instead, so a
//!   node that hides events only delays the destruction;
//! - for each candidate it reads the anchor **with a proof**; when the anchor is erased, it
//!   destroys the wrapped key (zeros, fsync, unlink), marks the record erased and confirms the
//!   destruction on chain with a signed `ConfirmErasure`, so the ledger can say the erasure is
//!   complete rather than requested.
//! - A threshold record's holders do the same with their share, whoever signed the erasure: the
//!   ledger calls the erasure complete once fewer than `threshold` shares can remain.

use std::time::{Duration, Instant};

use medledger_tx::keys;
use medledger_tx::pb::{tx_body::Msg, RecordAnchor};
use tendermint_rpc::query::Query;
use tendermint_rpc::{Client as _, Order};

use crate::state::State;
use crate::store::RecordState;

/// How often every held record is checked, events or not.
pub const FULL_SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Where the watcher stands between runs.
#[derive(Default)]
pub struct Watch {
    /// The newest height whose erasure events were searched.
    searched_to: Option<u64>,
    /// When every held record was last checked.
    last_sweep: Option<Instant>,
    /// Held records an event named erased whose proven anchor did not show it yet (the attested
    /// state is a block behind): looked at again next time.
    retry: std::collections::BTreeSet<String>,
}

/// The most ids kept for a retry (beyond: the next sweep finds them).
const MAX_RETRY: usize = 10_000;

/// What [`destroy_if_erased`] found.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Not held here.
    NotHeld,
    /// Held, and the proven anchor shows no erasure (yet).
    NotErased,
    /// Erased: the key was destroyed now (`true`) or before (`false`).
    Erased(bool),
}

/// Destroys the keys of held records whose erasure is committed, and confirms each on chain.
/// Returns the ids whose key was destroyed by this call.
pub async fn enforce(st: &State) -> anyhow::Result<Vec<String>> {
    let (searched_to, last_sweep, retry) = {
        let mut w = st
            .erasure_watch
            .lock()
            .map_err(|_| anyhow::anyhow!("erasure watch poisoned"))?;
        (w.searched_to, w.last_sweep, std::mem::take(&mut w.retry))
    };
    let latest = st.latest_block_height().await?;
    // The node indexes a block's events after it commits it: the newest block may not be
    // searchable yet, so the search stops one block short and takes it next time.
    let searchable = latest.saturating_sub(1).max(searched_to.unwrap_or(0));
    let sweep = last_sweep.is_none_or(|t| t.elapsed() >= FULL_SWEEP_EVERY) || searched_to.is_none();
    // Each run also drops records whose person never signed their anchor in time.
    st.drop_expired_awaiting()
        .await
        .map_err(|e| anyhow::anyhow!("dropping unsigned records: {}", e.message()))?;
    // A sweep lists every record held here; otherwise only the erased ids the node names are
    // looked up (a record this gateway does not hold has no metadata file).
    let candidates: Vec<String> = if sweep {
        st.store.all()?.into_iter().map(|m| m.record_id).collect()
    } else {
        // The retries are looked at again whether or not a block came since (a slow chain
        // must not drop them until the next sweep).
        let from = searched_to.unwrap_or(0);
        let mut ids: Vec<String> = retry.into_iter().collect();
        if searchable > from {
            ids.extend(erased_since(st, from, searchable).await?);
        }
        ids.sort();
        ids.dedup();
        ids
    };
    let (mut destroyed, mut again) = (Vec::new(), std::collections::BTreeSet::new());
    for id in candidates {
        match destroy_if_erased(st, &id).await? {
            Found::Erased(true) => destroyed.push(id),
            Found::NotErased if !sweep && again.len() < MAX_RETRY => {
                again.insert(id);
            }
            _ => {}
        }
    }
    if let Ok(mut w) = st.erasure_watch.lock() {
        w.retry = again;
        w.searched_to = Some(searchable);
        if sweep {
            w.last_sweep = Some(Instant::now());
        }
    }
    Ok(destroyed)
}

/// The record ids named by `medledger.record.erased` events in blocks `(from, to]` (unproven:
/// only a hint of what to read with a proof).
async fn erased_since(st: &State, from: u64, to: u64) -> anyhow::Result<Vec<String>> {
    let q: Query = format!(
        "tx.height > {from} AND tx.height <= {to} AND medledger.record.erased.record_id EXISTS"
    )
    .parse()
    .map_err(|e| anyhow::anyhow!("erasure query: {e}"))?;
    let mut ids = Vec::new();
    let mut page = 1;
    loop {
        let r = st
            .client
            .rpc()
            .tx_search(q.clone(), false, page, 100, Order::Ascending)
            .await?;
        for tx in &r.txs {
            for e in &tx.tx_result.events {
                if e.kind != "medledger.record.erased" {
                    continue;
                }
                for a in &e.attributes {
                    if a.key_str().ok() == Some("record_id") {
                        if let Ok(v) = a.value_str() {
                            ids.push(v.to_string());
                        }
                    }
                }
            }
        }
        let seen = u64::from(page).saturating_mul(100);
        if r.txs.is_empty() || seen >= u64::from(r.total_count) || page >= 1000 {
            break;
        }
        page += 1;
    }
    Ok(ids)
}

/// Reads `id`'s anchor with a proof; if the ledger erased it, destroys the key here (if not yet)
/// and confirms.
async fn destroy_if_erased(st: &State, id: &str) -> anyhow::Result<Found> {
    let Some(mut meta) = st.store.meta(id)? else {
        return Ok(Found::NotHeld);
    };
    // The attested state (one block old, no wait for the next header): an erasure is acted on
    // a block later at most, and a sweep of many records costs one proven read each.
    let anchor: Option<RecordAnchor> = st.node.read_msg(&keys::record(id)).await?;
    let Some(anchor) = anchor else {
        return Ok(Found::NotErased);
    };
    // Held here as its custodian, or as one of its holders (threshold custody).
    if anchor.custodian != st.member_id && !anchor.holders.contains(&st.member_id) {
        return Ok(Found::NotHeld);
    }
    if anchor.erased_height == 0 {
        return Ok(Found::NotErased);
    }
    let had_key = st.store.wrapped_key(id)?.is_some();
    st.store.destroy_key(id)?;
    crate::records::reshare::destroy_staged(st, id)?;
    // The shares the custodian had not handed out yet go too (sealed to their holders, but a
    // share nonetheless).
    let unsent = meta
        .custody
        .as_mut()
        .map(|c| std::mem::take(&mut c.to_replicate))
        .is_some_and(|v| !v.is_empty());
    let erased = RecordState::Erased {
        height: anchor.erased_height,
    };
    if meta.state != erased || unsent {
        meta.state = erased;
        st.store.put_meta(&meta)?;
    }
    if had_key {
        tracing::info!(
            record = id,
            erased_height = anchor.erased_height,
            by = anchor.erased_by,
            "erased on the ledger: data key destroyed"
        );
    }
    confirm(st, id, &anchor).await?;
    Ok(Found::Erased(had_key))
}

/// Sends the signed destruction receipt (`ConfirmErasure`) unless the ledger already has one.
pub(crate) async fn confirm(st: &State, id: &str, anchor: &RecordAnchor) -> anyhow::Result<()> {
    // Complete already, or this member's holder confirmed before.
    if anchor.erasure_confirmed_height != 0 || anchor.erasure_confirmations.contains(&st.member_id)
    {
        return Ok(());
    }
    let committed = st
        .submit(Msg::ConfirmErasure(medledger_tx::pb::ConfirmErasure {
            record_id: id.to_string(),
        }))
        .await?;
    if committed.code != 0 {
        tracing::warn!(
            record = id,
            code = committed.code_name,
            "the ledger refused the erasure confirmation: {}",
            committed.log
        );
    }
    Ok(())
}

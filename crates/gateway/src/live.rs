//! Live updates for the pages: `GET /live?patient=P`, an authenticated Server-Sent Events
//! stream that says when a block touched patient P, so the page re-reads (with proofs) only
//! then. The node's event WebSocket is never relayed: it carried every tx's events for every
//! patient to anyone who connected.
//!
//! One watcher per gateway, running only while a stream is open, reads each new block's results
//! from the node (`block_results`, one request per block whoever listens) and sends the patient
//! ids its events name to the open streams; each stream passes on its own patient's only.
//! Events are an unproven hint of *when* to look: what the page shows it still reads and verifies
//! itself, and it keeps a slow poll of the certified height in case a node hides events.
//!
//! The same watcher hands each such block to the FHIR Subscriptions
//! ([`crate::fhir::subscription::on_block`]): it also runs while a subscription is active.
//!
//! Bounded: at most [`MAX_STREAMS`] streams, [`MAX_STREAMS_PER_KEY`] per key (429 beyond), each
//! closed after [`STREAM_LIFETIME`] (the page reconnects, and is authorized again).

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State as AxState};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tendermint_rpc::Client as _;

use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::State;

/// How often the watcher looks for new blocks while a stream is open.
pub const LIVE_POLL: Duration = Duration::from_secs(1);
/// Most streams open at once.
pub const MAX_STREAMS: usize = 512;
/// Most streams open at once for one key (a page, and one more while it reconnects).
pub const MAX_STREAMS_PER_KEY: usize = 2;
/// A stream is closed after this long.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// Most blocks one watcher run reads (a gateway that fell further behind skips to the newest
/// and tells every stream to re-read).
const MAX_BLOCKS_PER_RUN: u64 = 20;

/// A block and the patients its events name.
#[derive(Clone, Debug)]
pub struct Touched {
    /// The block height.
    pub height: u64,
    /// Patient ids named by a `patient_id` attribute of its txs' events; `None`: unknown
    /// (blocks were skipped), every stream re-reads.
    pub patients: Option<BTreeSet<String>>,
}

/// The watcher's state and the open streams.
pub struct Live {
    tx: tokio::sync::broadcast::Sender<Arc<Touched>>,
    checked_to: Mutex<Option<u64>>,
    open: Arc<Mutex<BTreeMap<[u8; 32], usize>>>,
}

impl Default for Live {
    fn default() -> Live {
        Live {
            tx: tokio::sync::broadcast::channel(64).0,
            checked_to: Mutex::new(None),
            open: Default::default(),
        }
    }
}

/// An open stream's place, given back when the stream is dropped.
struct Slot {
    open: Arc<Mutex<BTreeMap<[u8; 32], usize>>>,
    key: [u8; 32],
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.open.lock() {
            if let Some(n) = m.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(&self.key);
                }
            }
        }
    }
}

impl Live {
    fn open_slot(&self, key: [u8; 32]) -> Option<Slot> {
        let mut m = self.open.lock().ok()?;
        let total: usize = m.values().sum();
        let mine = m.get(&key).copied().unwrap_or(0);
        if total >= MAX_STREAMS || mine >= MAX_STREAMS_PER_KEY {
            return None;
        }
        m.insert(key, mine + 1);
        Some(Slot {
            open: self.open.clone(),
            key,
        })
    }
}

/// Makes the watcher look at every block after `height` (if it is not already looking): a
/// stream or subscription that starts now misses no block however late the next run comes.
pub(crate) fn start_at(st: &State, height: u64) {
    if let Ok(mut c) = st.live.checked_to.lock() {
        c.get_or_insert(height);
    }
}

/// Sends `t` to the streams, and to the subscriptions when `subscribed`.
fn touched(st: &Arc<State>, t: Touched, subscribed: bool) {
    let t = Arc::new(t);
    if subscribed {
        crate::fhir::subscription::on_block(st, &t);
    }
    let _ = st.live.tx.send(t);
}

/// One watcher run: the patients named by each block since the last run, sent to the streams
/// and the subscriptions. Does nothing (and forgets where it was) while no stream is open and
/// no subscription is active.
pub(crate) async fn watch(st: &Arc<State>) -> anyhow::Result<()> {
    let live = &st.live;
    let subscribed = st.subscriptions.any_active();
    if live.tx.receiver_count() == 0 && !subscribed {
        // (A stream or subscription that starts next sets where the watcher starts.)
        if let Ok(mut c) = live.checked_to.lock() {
            *c = None;
        }
        return Ok(());
    }
    let latest = st.latest_block_height().await?;
    let checked = *live
        .checked_to
        .lock()
        .map_err(|_| anyhow::anyhow!("live watcher poisoned"))?;
    let from = checked.unwrap_or(latest);
    let mut h = from;
    if latest.saturating_sub(from) > MAX_BLOCKS_PER_RUN || (checked.is_none() && subscribed) {
        // Blocks were skipped (or, at start, never seen: subscriptions stored before a
        // restart): every stream re-reads, every subscription looks for what is new.
        h = latest;
        touched(
            st,
            Touched {
                height: latest,
                patients: None,
            },
            subscribed,
        );
    }
    while h < latest {
        h += 1;
        let height = tendermint::block::Height::try_from(h)?;
        let r = st.client.rpc().block_results(height).await?;
        let mut patients = BTreeSet::new();
        for tx in r.txs_results.iter().flatten() {
            for e in &tx.events {
                for a in &e.attributes {
                    if a.key_str().ok() == Some("patient_id") {
                        if let Ok(v) = a.value_str() {
                            patients.insert(v.to_string());
                        }
                    }
                }
            }
        }
        if !patients.is_empty() {
            touched(
                st,
                Touched {
                    height: h,
                    patients: Some(patients),
                },
                subscribed,
            );
        }
        if let Ok(mut c) = live.checked_to.lock() {
            *c = Some(h);
        }
    }
    if let Ok(mut c) = live.checked_to.lock() {
        *c = Some(latest);
    }
    Ok(())
}

/// `GET /live?patient=P`: `event: ready` once, then `event: change` with `{"height":H}` each
/// time a block H touched P (`H` 0: events were missed, re-read everything); a comment every
/// 15 s keeps the connection open. For those who may read P (as every other read of P).
pub(crate) async fn stream(
    AxState(st): AxState<Arc<State>>,
    RawQuery(q): RawQuery,
    Authed { who, .. }: Authed,
) -> Response {
    let ps: Vec<(String, String)> =
        serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let Some(patient) = ps
        .iter()
        .find(|(k, _)| k == "patient")
        .map(|(_, v)| v.strip_prefix("Patient/").unwrap_or(v).to_string())
        .filter(|p| medledger_tx::check::check_id("patient", p).is_ok())
    else {
        return ApiError::new(StatusCode::BAD_REQUEST, "name the patient: ?patient=P")
            .into_response();
    };
    match crate::access::may_read_patient(&st.node, &st.decisions, &who, &patient).await {
        Ok(true) => {}
        Ok(false) => {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!("you may not read patient {patient}'s data"),
            )
            .into_response()
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    let Some(slot) = st.live.open_slot(who.key) else {
        return crate::auth::too_many(format!(
            "at most {MAX_STREAMS_PER_KEY} live streams per key ({MAX_STREAMS} in all)"
        ))
        .into_response();
    };
    let rx = st.live.tx.subscribe();
    // The watcher starts from the node's height now at the latest, so a block after `ready`
    // is never skipped however late the watcher's next run comes.
    if st.live.checked_to.lock().is_ok_and(|c| c.is_none()) {
        match st.latest_block_height().await {
            Ok(h) => start_at(&st, h),
            Err(e) => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the node did not say its height: {e:#}"),
                )
                .into_response()
            }
        }
    }
    let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
    let events = futures::stream::unfold(
        (rx, slot, patient, true),
        move |(mut rx, slot, patient, first)| async move {
            if first {
                let ready = Event::default()
                    .event("ready")
                    .data(serde_json::json!({ "patient": patient }).to_string());
                return Some((Ok::<_, Infallible>(ready), (rx, slot, patient, false)));
            }
            loop {
                let height = match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Err(_) | Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                        return None
                    }
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => 0,
                    Ok(Ok(t)) => match &t.patients {
                        None => 0,
                        Some(p) if p.contains(&patient) => t.height,
                        Some(_) => continue,
                    },
                };
                let change = Event::default()
                    .event("change")
                    .data(serde_json::json!({ "height": height }).to_string());
                return Some((Ok(change), (rx, slot, patient, false)));
            }
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

//! Subscription: FHIR R4 `rest-hook` subscriptions on a patient's AuditEvents or Consents
//! (docs/fhir.md, "Subscriptions"). How an EHR, or a patient's app, learns of a break-glass
//! at once, with the proofs to check it.
//!
//! - `POST /fhir/Subscription` (criteria `AuditEvent?patient=P` or `Consent?patient=P`,
//!   `channel.type` `rest-hook`), for those who may read P, with a current basis for it
//!   ([`may_notify`]); `GET` and `DELETE /fhir/Subscription/{id}` for its subscriber only;
//!   `GET /fhir/Subscription` lists the requester's own ([`search_subscriptions`]).
//! - Stored in the gateway's store (`subscriptions/`), so a restart keeps them; bounded per
//!   subscriber and in all, and in every field's size.
//! - The live watcher ([`crate::live::watch`]) hands over every block whose events name a
//!   subscribed patient ([`on_block`]). Each subscription has at most one delivery in flight;
//!   blocks that arrive meanwhile coalesce into its next notification (its queue holds one
//!   target height), so a slow or hostile endpoint makes the gateway hold no more than that.
//! - A delivery first checks again that the subscriber may still read P (a revoked consent, a
//!   removed practitioner: the subscription is turned `off`, with the reason in `error`), waits
//!   for the checkpoint certificate of the block's state, and POSTs a `history` Bundle: the
//!   Subscription first (with the notification's event counts), then the new AuditEvents or
//!   Consent versions, each with its ICS23 proof, the Bundle with the verified state and the
//!   certificate, exactly as the AuditEvent search carries them. No redirect is followed; each
//!   attempt times out; [`RETRIES`] retries with backoff, then the subscription is `error`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue as HttpHeaderValue};
use serde::{Deserialize, Serialize};

use super::audit_event::{proof_extension, proven_page_bundle};
use super::consent::consent_version;
use super::*;
use crate::auth::Subject;
use crate::live::Touched;

/// Most subscriptions one subscriber (one subject) holds at this gateway.
pub const MAX_PER_SUBJECT: usize = 16;
/// Most subscriptions this gateway holds in all.
pub const MAX_SUBSCRIPTIONS: usize = 1_024;
/// Longest `criteria`.
pub const MAX_CRITERIA_LEN: usize = 256;
/// Longest `channel.endpoint`.
pub const MAX_ENDPOINT_LEN: usize = 2_048;
/// Most `channel.header` values.
pub const MAX_HEADERS: usize = 8;
/// Longest `channel.header` value (`Name: value`).
pub const MAX_HEADER_LEN: usize = 512;
/// Longest `reason`.
pub const MAX_REASON_LEN: usize = 1_024;
/// Each delivery attempt's limit (connecting, sending and the answer's head).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connecting to the endpoint's limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Retries after a failed attempt (waiting 1, 2, 4 s), then the subscription is `error`.
pub const RETRIES: u32 = 3;
/// Most AuditEvents in one notification (more follow in the next).
pub const MAX_EVENTS_PER_NOTIFICATION: u64 = 100;
/// The newest consents of the patient a Consent notification looks at.
pub const MAX_CONSENTS_SCANNED: u64 = 64;
/// Most deliveries in flight at once, over every subscription.
pub const MAX_DELIVERIES_AT_ONCE: usize = 32;
/// How long a delivery waits for the checkpoint certificate of the block's state.
const CERTIFIED_WAIT: Duration = Duration::from_secs(20);
/// The extension on the notification's Subscription entry: the notification's counts.
pub const NOTIFICATION_EXTENSION_URL: &str =
    "urn:medledger:fhir:StructureDefinition:subscription-notification";

/// What a subscription is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Topic {
    AuditEvent,
    Consent,
}

/// A stored subscription and where its deliveries stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sub {
    id: String,
    /// The subscriber's key (hex): the key re-read before each delivery.
    owner: String,
    /// The subscriber's subject kind and id (who reads and deletes it).
    subject_kind: String,
    subject_id: String,
    patient: String,
    topic: Topic,
    criteria: String,
    reason: String,
    endpoint: String,
    /// `channel.payload` `application/fhir+json`: the Bundle; else an empty POST.
    payload: bool,
    headers: Vec<String>,
    /// `active`, `error` or `off`.
    status: String,
    error: Option<String>,
    /// AuditEvent: the events notified so far (the next index); Consent: the height up to
    /// which consent versions were notified.
    notified: u64,
    /// Resources notified since the subscription began.
    events_since_start: u64,
}

/// A delivery's state: whether one runs, and the block height the next must reach.
#[derive(Default)]
struct Work {
    running: bool,
    pending: Option<u64>,
}

/// The gateway's subscriptions, their deliveries and the client that makes them.
pub(crate) struct Subscriptions {
    subs: Mutex<BTreeMap<String, Sub>>,
    work: Mutex<BTreeMap<String, Work>>,
    http: Option<reqwest::Client>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl Subscriptions {
    /// The subscriptions stored in `store` (a file that does not read is skipped, and said).
    pub(crate) fn load(store: &crate::store::Store) -> Subscriptions {
        let mut subs = BTreeMap::new();
        match store.subscriptions() {
            Ok(files) => {
                for bytes in files {
                    match serde_json::from_slice::<Sub>(&bytes) {
                        Ok(s) => {
                            subs.insert(s.id.clone(), s);
                        }
                        Err(e) => tracing::warn!("a stored subscription does not read: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("stored subscriptions: {e}"),
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DELIVERY_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| tracing::warn!("subscription HTTP client: {e}"))
            .ok();
        Subscriptions {
            subs: Mutex::new(subs),
            work: Mutex::default(),
            http,
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_DELIVERIES_AT_ONCE)),
        }
    }

    /// Whether any subscription is active (the live watcher runs for them).
    pub(crate) fn any_active(&self) -> bool {
        self.subs
            .lock()
            .is_ok_and(|m| m.values().any(|s| s.status == "active"))
    }

    fn get(&self, id: &str) -> Option<Sub> {
        self.subs.lock().ok()?.get(id).cloned()
    }

    /// Writes `s` over the stored subscription of its id, durably, if it still exists (a
    /// delivery that ends after its subscription was deleted does not bring it back).
    fn update(&self, st: &State, s: &Sub) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(s).map_err(std::io::Error::other)?;
        let mut m = self
            .subs
            .lock()
            .map_err(|_| std::io::Error::other("subscriptions poisoned"))?;
        if let Some(kept) = m.get_mut(&s.id) {
            st.store.put_subscription(&s.id, &bytes)?;
            *kept = s.clone();
        }
        Ok(())
    }

    /// Stores a new subscription durably and keeps it, within [`MAX_PER_SUBJECT`] and
    /// [`MAX_SUBSCRIPTIONS`] (checked and counted under one lock).
    fn insert(&self, st: &State, s: &Sub) -> Result<(), FhirError> {
        let bytes = serde_json::to_vec_pretty(s).map_err(FhirError::unavailable)?;
        let mut m = self
            .subs
            .lock()
            .map_err(|_| FhirError::unavailable("subscriptions poisoned"))?;
        let mine = m
            .values()
            .filter(|o| o.subject_kind == s.subject_kind && o.subject_id == s.subject_id)
            .count();
        if mine >= MAX_PER_SUBJECT {
            return Err(FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "business-rule",
                format!("at most {MAX_PER_SUBJECT} subscriptions per subscriber: delete one first"),
            ));
        }
        if m.len() >= MAX_SUBSCRIPTIONS {
            return Err(FhirError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-costly",
                format!("this gateway holds {MAX_SUBSCRIPTIONS} subscriptions, the most it takes"),
            ));
        }
        st.store.put_subscription(&s.id, &bytes).map_err(|e| {
            FhirError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                format!("the subscription could not be stored: {e}"),
            )
        })?;
        m.insert(s.id.clone(), s.clone());
        Ok(())
    }

    /// Removes subscription `id`, its file first.
    fn remove(&self, st: &State, id: &str) -> Result<(), FhirError> {
        let mut m = self
            .subs
            .lock()
            .map_err(|_| FhirError::unavailable("subscriptions poisoned"))?;
        st.store.remove_subscription(id).map_err(|e| {
            FhirError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                format!("the subscription could not be removed: {e}"),
            )
        })?;
        m.remove(id);
        Ok(())
    }
}

/// Hands block `t` to every active subscription whose patient it names (every one, when the
/// watcher does not know: blocks were skipped).
pub(crate) fn on_block(st: &Arc<State>, t: &Touched) {
    let due: Vec<String> = match st.subscriptions.subs.lock() {
        Ok(m) => m
            .values()
            .filter(|s| s.status == "active")
            .filter(|s| t.patients.as_ref().is_none_or(|p| p.contains(&s.patient)))
            .map(|s| s.id.clone())
            .collect(),
        Err(_) => return,
    };
    for id in due {
        schedule(st, &id, t.height);
    }
}

/// Asks for a delivery of subscription `id` up to block `height`: joined to the pending one,
/// or started.
fn schedule(st: &Arc<State>, id: &str, height: u64) {
    let start = {
        let Ok(mut w) = st.subscriptions.work.lock() else {
            return;
        };
        let work = w.entry(id.to_string()).or_default();
        work.pending = Some(work.pending.map_or(height, |p| p.max(height)));
        !std::mem::replace(&mut work.running, true)
    };
    if start {
        let st = st.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            loop {
                let next = match st.subscriptions.work.lock() {
                    Ok(mut w) => match w.get_mut(&id) {
                        Some(work) => match work.pending.take() {
                            Some(h) => h,
                            None => {
                                w.remove(&id);
                                return;
                            }
                        },
                        None => return,
                    },
                    Err(_) => return,
                };
                deliver(&st, &id, next).await;
            }
        });
    }
}

/// What one delivery sends: the Bundle, the new `notified`, the resources in it, and whether
/// more are waiting.
struct Notification {
    bundle: Value,
    notified: u64,
    count: u64,
    more: bool,
}

/// One delivery of subscription `id` for the state after block `height`.
async fn deliver(st: &Arc<State>, id: &str, height: u64) {
    let Ok(_slot) = st.subscriptions.slots.clone().acquire_owned().await else {
        return;
    };
    let Some(mut sub) = st.subscriptions.get(id) else {
        return;
    };
    if sub.status != "active" {
        return;
    }
    match may_notify(st, &sub.owner, &sub.patient).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            sub.status = "off".into();
            sub.error = Some(why);
            if let Err(e) = st.subscriptions.update(st, &sub) {
                tracing::warn!("subscription {id}: {e}");
            }
            return;
        }
        Err(e) => {
            // The next block tries again (nothing is marked notified).
            tracing::warn!("subscription {id}: the ledger could not be read: {e}");
            return;
        }
    }
    let n = match notification(st, &sub, height).await {
        Ok(Some(n)) => n,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("subscription {id}: {}", e.diagnostics);
            return;
        }
    };
    match post(st, &sub, &n.bundle).await {
        Ok(()) => {
            sub.notified = n.notified;
            sub.events_since_start = sub.events_since_start.saturating_add(n.count);
        }
        Err(why) => {
            sub.status = "error".into();
            sub.error = Some(why);
        }
    }
    // Deliveries are at least once: a crash before this write sends the same events again.
    if let Err(e) = st.subscriptions.update(st, &sub) {
        tracing::warn!("subscription {id}: {e}");
    }
    if n.more && sub.status == "active" {
        schedule(st, id, height);
    }
}

/// POSTs the notification (the Bundle, or nothing when no payload was asked for), with
/// [`RETRIES`] retries; `Err`: why it failed the last time.
async fn post(st: &State, sub: &Sub, bundle: &Value) -> Result<(), String> {
    let http = st
        .subscriptions
        .http
        .as_ref()
        .ok_or("the gateway has no HTTP client")?;
    let body = if sub.payload {
        bundle.to_string()
    } else {
        String::new()
    };
    let mut last = String::new();
    for attempt in 0..=RETRIES {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
        }
        let mut rb = http.post(&sub.endpoint).body(body.clone());
        if sub.payload {
            rb = rb.header("content-type", FHIR_JSON);
        }
        for (name, value) in sub.headers.iter().filter_map(|h| parse_header(h).ok()) {
            rb = rb.header(name, value);
        }
        match rb.send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => {
                last = format!(
                    "the endpoint answered {} (a redirect is not followed)",
                    r.status()
                )
            }
            Err(e) => last = format!("the endpoint could not be reached in time: {e}"),
        }
    }
    Err(format!(
        "{last}; after {} attempts the gateway stopped notifying",
        RETRIES + 1
    ))
}

/// The notification of `sub` for the state after block `height`: read at the first certified
/// state at or after it; `None` when nothing new is there.
async fn notification(
    st: &State,
    sub: &Sub,
    height: u64,
) -> Result<Option<Notification>, FhirError> {
    let certified = wait_certified(st, height).await?;
    let (entries, meta, notified, more) = match sub.topic {
        Topic::AuditEvent => {
            let page = Page {
                offset: sub.notified,
                count: MAX_EVENTS_PER_NOTIFICATION,
                height: Some(certified),
            };
            let mut b = proven_page_bundle(st, &sub.patient, page).await?;
            let n = b["total"].as_u64().unwrap_or(0);
            let mut entries: Vec<Value> = b["entry"].as_array().cloned().unwrap_or_default();
            for e in &mut entries {
                if let Some(o) = e.as_object_mut() {
                    o.remove("search");
                }
                e["request"] = json!({ "method": "POST", "url": "AuditEvent" });
                e["response"] = json!({ "status": "201 Created" });
            }
            let notified = sub.notified.saturating_add(entries.len() as u64).min(n);
            (entries, b["meta"].take(), notified, notified < n)
        }
        Topic::Consent => {
            let (entries, meta) =
                consent_versions(st, &sub.patient, sub.notified, certified).await?;
            (entries, meta, certified, false)
        }
    };
    if entries.is_empty() {
        return Ok(None);
    }
    let count = entries.len() as u64;
    let mut resource = subscription_resource(sub);
    resource["extension"] = json!([{
        "url": NOTIFICATION_EXTENSION_URL,
        "extension": [
            { "url": "eventsInNotification", "valueUnsignedInt": count },
            { "url": "eventsSinceSubscriptionStart", "valueString": sub.events_since_start.saturating_add(count).to_string() },
            { "url": "height", "valueString": certified.to_string() },
        ],
    }]);
    if let Some(o) = resource.as_object_mut() {
        // The headers are the endpoint's own; they are not repeated in the body.
        if let Some(c) = o.get_mut("channel").and_then(Value::as_object_mut) {
            c.remove("header");
        }
    }
    let mut entry = vec![json!({
        "fullUrl": format!("{}/fhir/Subscription/{}", st.public_url, sub.id),
        "resource": resource,
        "request": { "method": "GET", "url": format!("Subscription/{}", sub.id) },
        "response": { "status": "200 OK" },
    })];
    entry.extend(entries);
    let bundle = json!({
        "resourceType": "Bundle",
        "meta": meta,
        "type": "history",
        "entry": entry,
    });
    Ok(Some(Notification {
        bundle,
        notified,
        count,
        more,
    }))
}

/// The first certified height at or after `height`, waiting up to [`CERTIFIED_WAIT`] (the
/// certificate of a state is in the block two after it).
async fn wait_certified(st: &State, height: u64) -> Result<u64, FhirError> {
    let deadline = tokio::time::Instant::now() + CERTIFIED_WAIT;
    loop {
        match certified_height(st, None).await {
            Ok((h, _)) if h >= height => return Ok(h),
            Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Ok((h, _)) => {
                return Err(FhirError::unavailable(format!(
                    "no certificate of state {height} yet (the latest is of {h})"
                )))
            }
            Err(e) => return Err(e),
        }
    }
}

/// The versions of `patient`'s consents (the newest [`MAX_CONSENTS_SCANNED`]) made after
/// height `after`, read at certified height `height` each with its proof, as entries; and the
/// Bundle's `meta` (the verified state and its certificate).
async fn consent_versions(
    st: &State,
    patient: &str,
    after: u64,
    height: u64,
) -> Result<(Vec<Value>, Value), FhirError> {
    let unavailable = FhirError::unavailable;
    let (height, certificate) = certified_height(st, Some(height)).await?;
    let read = |key: Vec<u8>| async move {
        st.client
            .read_with_proof(&key, height)
            .await
            .map(|(r, _)| r)
            .map_err(unavailable)
    };
    let count = read(keys::patient_consent_count(patient)).await?;
    let n = count
        .value
        .as_deref()
        .and_then(keys::decode_u64)
        .unwrap_or(0);
    let mut reads = vec![count];
    let mut consents = Vec::new();
    for i in n.saturating_sub(MAX_CONSENTS_SCANNED)..n {
        let id_read = read(keys::patient_consent(patient, i)).await?;
        let Some(id) = id_read.value.clone() else {
            continue;
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        let c = read(keys::consent(&id)).await?;
        reads.push(id_read);
        consents.push((id, c));
    }
    let a = attest(&st.client, &st.trust, height)
        .await
        .map_err(unavailable)?;
    for r in reads.iter().chain(consents.iter().map(|(_, c)| c)) {
        medledger_query::verify(&a.app_hash, &r.key, r.value.as_deref(), &r.proof).map_err(
            |e| {
                FhirError::unavailable(format!(
                    "the node's consents do not verify at {height}: {e}"
                ))
            },
        )?;
    }
    let mut entries = Vec::new();
    for (id, r) in &consents {
        let Some(bytes) = r.value.as_deref() else {
            continue;
        };
        let c = Consent::decode(bytes)
            .map_err(|e| FhirError::unavailable(format!("consent {id}: {e}")))?;
        let version = consent_version(&c);
        if version <= after || version > height {
            continue;
        }
        let mut v = map::consent_to_fhir(&c);
        v["meta"] = verified_meta(st.node.chain_id(), &a);
        v["meta"]["versionId"] = json!(version.to_string());
        if let Some(ext) = v["meta"]["extension"].as_array_mut() {
            ext.push(proof_extension(r));
        }
        let (request, status) = if c.revoked_height == 0 {
            (json!({ "method": "POST", "url": "Consent" }), "201 Created")
        } else {
            (
                json!({ "method": "PUT", "url": format!("Consent/{id}") }),
                "200 OK",
            )
        };
        entries.push(json!({
            "fullUrl": format!("{}/fhir/Consent/{id}", st.public_url),
            "resource": v,
            "request": request,
            "response": { "status": status, "etag": format!("W/\"{version}\"") },
        }));
    }
    let mut meta = verified_meta(st.node.chain_id(), &a);
    if let Some(ext) = meta["extension"][0]["extension"].as_array_mut() {
        ext.push(json!({ "url": "certificate", "valueBase64Binary": Base64::encode_string(&certificate) }));
    }
    if let (Some(exts), Some(count)) = (meta["extension"].as_array_mut(), reads.first()) {
        exts.push(proof_extension(count));
    }
    Ok((entries, meta))
}

/// Whether the holder of key `owner` (hex) may be told of patient `patient` now: they may read
/// the patient ([`access::may_read_patient`], decided afresh), and that read rests on something
/// in force. The read rule lets a member that was *ever* granted a consent read the patient's
/// history; a push is stricter: a member (or its practitioner, or an auditor scoped to it) must
/// have enrolled the patient, cover them, or hold a consent of theirs that is neither revoked
/// nor expired. `Ok(Err(why))`: not (any more).
pub(crate) async fn may_notify(
    st: &State,
    owner: &str,
    patient: &str,
) -> Result<Result<(), String>, crate::node::NodeError> {
    let Some(key) = hex::decode(owner)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    else {
        return Ok(Err("the subscriber's key does not read".into()));
    };
    let Some(subject) = crate::auth::read_subject(&st.node, &key).await? else {
        return Ok(Err(
            "the subscriber's key no longer belongs to anyone on the ledger".into(),
        ));
    };
    let who = Requester {
        key,
        subject,
        smart: None,
    };
    let fresh = access::Decisions::default();
    let denied = || {
        format!(
            "{} {} may no longer read patient {patient}'s data",
            who.subject.kind(),
            who.subject.id()
        )
    };
    if !access::may_read_patient(&st.node, &fresh, &who, patient).await? {
        return Ok(Err(denied()));
    }
    if let Subject::Patient(_) = &who.subject {
        return Ok(Ok(()));
    }
    if let Some(m) = who.subject.acting_member() {
        if basis_in_force(st, m, patient).await? {
            return Ok(Ok(()));
        }
    }
    let basis = match access::auditor_scope(&st.node, &who).await? {
        Some(access::AuditScope::All) => true,
        Some(access::AuditScope::Member(m)) => basis_in_force(st, &m, patient).await?,
        None => false,
    };
    Ok(if basis {
        Ok(())
    } else {
        Err(format!(
            "{}: the consents it rests on are revoked or expired",
            denied()
        ))
    })
}

/// Whether `member` enrolled `patient`, covers them, or holds a consent of theirs in force (one
/// of its newest [`MAX_CONSENTS_SCANNED`]).
async fn basis_in_force(
    st: &State,
    member: &str,
    patient: &str,
) -> Result<bool, crate::node::NodeError> {
    let count = |v: Option<Vec<u8>>| v.as_deref().and_then(keys::decode_u64).unwrap_or(0);
    let enrolled = st
        .node
        .read_msg::<Patient>(&keys::patient(patient))
        .await?
        .is_some_and(|p| p.enrolled_by == member);
    if enrolled || count(st.node.read(&keys::coverage_count(patient, member)).await?) > 0 {
        return Ok(true);
    }
    let n = count(st.node.read(&keys::grant_count(patient, member)).await?);
    let now = crate::client::now_secs();
    for i in (n.saturating_sub(MAX_CONSENTS_SCANNED)..n).rev() {
        let Some(id) = st.node.read(&keys::grant(patient, member, i)).await? else {
            continue;
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        if let Some(c) = st.node.read_msg::<Consent>(&keys::consent(&id)).await? {
            if c.revoked_height == 0 && (c.not_after == 0 || now <= c.not_after) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A subscription as its subscriber asked for it, read from the posted resource.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    topic: Topic,
    patient: String,
    criteria: String,
    reason: String,
    endpoint: String,
    payload: bool,
    headers: Vec<String>,
    off: bool,
}

fn issue(code: &str, path: &str, msg: impl Into<String>) -> Value {
    json!({ "severity": "error", "code": code, "diagnostics": msg.into(), "expression": [path] })
}

/// Reads a posted Subscription; every issue at once (400, each with its code and FHIRPath).
fn read_subscription_body(v: &Value) -> Result<Asked, FhirError> {
    let mut issues = Vec::new();
    if v["resourceType"] != "Subscription" {
        issues.push(issue(
            "invalid",
            "Subscription",
            "POST a Subscription resource",
        ));
    }
    let off = match v["status"].as_str() {
        Some("requested" | "active") => false,
        Some("off") => true,
        Some(other) => {
            issues.push(issue(
                "value",
                "Subscription.status",
                format!("status {other:?}: a new subscription is requested (or off)"),
            ));
            false
        }
        None => {
            issues.push(issue(
                "required",
                "Subscription.status",
                "status is required (requested)",
            ));
            false
        }
    };
    let reason = match v["reason"].as_str() {
        Some(r) if !r.trim().is_empty() && r.len() <= MAX_REASON_LEN => r.to_string(),
        Some(_) => {
            issues.push(issue(
                "value",
                "Subscription.reason",
                format!("reason: 1 to {MAX_REASON_LEN} bytes"),
            ));
            String::new()
        }
        None => {
            issues.push(issue(
                "required",
                "Subscription.reason",
                "reason is required (R4)",
            ));
            String::new()
        }
    };
    let criteria = v["criteria"].as_str().unwrap_or_default().to_string();
    let parsed = criteria_of(&criteria);
    if let Err((code, msg)) = &parsed {
        issues.push(issue(code, "Subscription.criteria", msg.clone()));
    }
    let channel = &v["channel"];
    match channel["type"].as_str() {
        Some("rest-hook") => {}
        Some(other) => issues.push(issue(
            "not-supported",
            "Subscription.channel.type",
            format!("channel type {other:?} is not supported: rest-hook is"),
        )),
        None => issues.push(issue(
            "required",
            "Subscription.channel.type",
            "channel.type is required (rest-hook)",
        )),
    }
    let endpoint = channel["endpoint"].as_str().unwrap_or_default().to_string();
    if let Err((code, msg)) = check_endpoint(&endpoint) {
        issues.push(issue(code, "Subscription.channel.endpoint", msg));
    }
    let payload = match channel["payload"].as_str() {
        None => false,
        Some(p) if p.eq_ignore_ascii_case(FHIR_JSON) => true,
        Some(other) => {
            issues.push(issue(
                "not-supported",
                "Subscription.channel.payload",
                format!("payload {other:?}: application/fhir+json, or none (an empty POST)"),
            ));
            false
        }
    };
    let mut headers = Vec::new();
    match &channel["header"] {
        Value::Null => {}
        Value::Array(hs) if hs.len() <= MAX_HEADERS => {
            for (i, h) in hs.iter().enumerate() {
                let path = format!("Subscription.channel.header[{i}]");
                match h.as_str().map(|s| (s, parse_header(s))) {
                    Some((s, Ok(_))) => headers.push(s.to_string()),
                    Some((_, Err(msg))) => issues.push(issue("value", &path, msg)),
                    None => issues.push(issue("value", &path, "a header is a string")),
                }
            }
        }
        Value::Array(_) => issues.push(issue(
            "too-long",
            "Subscription.channel.header",
            format!("at most {MAX_HEADERS} headers"),
        )),
        _ => issues.push(issue(
            "structure",
            "Subscription.channel.header",
            "channel.header is an array of strings",
        )),
    }
    match (parsed, issues.is_empty()) {
        (Ok((topic, patient)), true) => Ok(Asked {
            topic,
            patient,
            criteria,
            reason,
            endpoint,
            payload,
            headers,
            off,
        }),
        _ => Err(refusal(StatusCode::BAD_REQUEST, issues)),
    }
}

fn refusal(status: StatusCode, issues: Vec<Value>) -> FhirError {
    let first = &issues[..].first().cloned().unwrap_or_default();
    let code = match first["code"].as_str() {
        Some("required") => "required",
        Some("value") => "value",
        Some("not-supported") => "not-supported",
        Some("too-long") => "too-long",
        Some("structure") => "structure",
        _ => "invalid",
    };
    FhirError {
        element: first["expression"][0].as_str().map(str::to_string),
        issues: Some(issues.into_boxed_slice()),
        ..FhirError::new(
            status,
            code,
            first["diagnostics"]
                .as_str()
                .unwrap_or("invalid Subscription"),
        )
    }
}

/// `AuditEvent?patient=P` or `Consent?patient=P` (`Patient/P` too), nothing else.
fn criteria_of(c: &str) -> Result<(Topic, String), (&'static str, String)> {
    if c.is_empty() {
        return Err((
            "required",
            "criteria is required: AuditEvent?patient=P or Consent?patient=P".into(),
        ));
    }
    if c.len() > MAX_CRITERIA_LEN {
        return Err((
            "too-long",
            format!("criteria: at most {MAX_CRITERIA_LEN} bytes"),
        ));
    }
    let (resource, query) = c.split_once('?').unwrap_or((c, ""));
    let topic = match resource {
        "AuditEvent" => Topic::AuditEvent,
        "Consent" => Topic::Consent,
        other => {
            return Err((
                "not-supported",
                format!("subscriptions on {other:?} are not supported: AuditEvent and Consent are"),
            ))
        }
    };
    let ps: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| ("value", format!("criteria's query does not decode: {e}")))?;
    if let Some((k, _)) = ps.iter().find(|(k, _)| k != "patient") {
        return Err((
            "not-supported",
            format!("criteria parameter {k:?} is not supported: patient (once) is"),
        ));
    }
    match patient_param(&ps) {
        Ok(p) if ps.len() == 1 => Ok((topic, p)),
        Ok(_) => Err(("value", "criteria: name the patient once".into())),
        Err(e) => Err(("value", format!("criteria: {}", e.diagnostics))),
    }
}

/// An endpoint the gateway POSTs to: an absolute `http` or `https` URL with a host, no
/// credentials and no fragment, at most [`MAX_ENDPOINT_LEN`] bytes.
fn check_endpoint(e: &str) -> Result<(), (&'static str, String)> {
    if e.is_empty() {
        return Err((
            "required",
            "channel.endpoint is required (an http or https URL)".into(),
        ));
    }
    if e.len() > MAX_ENDPOINT_LEN {
        return Err((
            "too-long",
            format!("channel.endpoint: at most {MAX_ENDPOINT_LEN} bytes"),
        ));
    }
    let u = url::Url::parse(e)
        .map_err(|err| ("value", format!("channel.endpoint is not a URL: {err}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err((
            "value",
            format!(
                "channel.endpoint scheme {:?}: http or https only",
                u.scheme()
            ),
        ));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(("value", "channel.endpoint names no host".into()));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err((
            "value",
            "channel.endpoint carries credentials: send them in channel.header instead".into(),
        ));
    }
    if u.fragment().is_some() {
        return Err(("value", "channel.endpoint has a fragment".into()));
    }
    Ok(())
}

/// Headers the gateway sets itself (or that would change how the POST is framed).
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "expect",
    "trailer",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
];

/// `Name: value`, a header the gateway may send.
fn parse_header(h: &str) -> Result<(HeaderName, HttpHeaderValue), String> {
    if h.len() > MAX_HEADER_LEN {
        return Err(format!("a header is at most {MAX_HEADER_LEN} bytes"));
    }
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("{h:?} is not `Name: value`"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a header name", name.trim()))?;
    if RESERVED_HEADERS.contains(&name.as_str()) {
        return Err(format!("header {name} is the gateway's to set"));
    }
    let value = HttpHeaderValue::from_str(value.trim())
        .map_err(|_| format!("header {name}'s value is not a header value"))?;
    Ok((name, value))
}

/// The Subscription resource of `s`.
fn subscription_resource(s: &Sub) -> Value {
    let mut channel = json!({ "type": "rest-hook", "endpoint": s.endpoint });
    if s.payload {
        channel["payload"] = json!(FHIR_JSON);
    }
    if !s.headers.is_empty() {
        channel["header"] = json!(s.headers);
    }
    let mut v = json!({
        "resourceType": "Subscription",
        "id": s.id,
        "status": s.status,
        "reason": s.reason,
        "criteria": s.criteria,
        "channel": channel,
    });
    if let Some(e) = &s.error {
        v["error"] = json!(e);
    }
    v
}

fn new_id() -> String {
    let b: [u8; 16] = rand_v010::random();
    format!("sub-{}", hex::encode(b))
}

/// `POST /fhir/Subscription`.
pub(super) async fn create_subscription(
    AxState(st): AxState<Arc<State>>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let who = &authed.who;
    if let Some(g) = &who.smart {
        return Err(FhirError::security(format!(
            "SMART client {}: a subscription is held to its subscriber's key, re-read before \
             every notification; subscribe with a signed request (RFC 9421) or its bearer token",
            g.client_id
        )));
    }
    let asked = read_subscription_body(&parse_json(&authed.body)?)?;
    require_patient(&st, who, &asked.patient).await?;
    let owner = hex::encode(who.key);
    if let Err(why) = may_notify(&st, &owner, &asked.patient).await? {
        return Err(FhirError {
            element: Some("Subscription.criteria".into()),
            ..FhirError::new(StatusCode::FORBIDDEN, "forbidden", why)
        });
    }
    // Where notifications start: the newest committed state.
    let latest = st
        .latest_block_height()
        .await
        .map_err(FhirError::unavailable)?;
    let notified = match asked.topic {
        Topic::AuditEvent => st
            .node
            .read(&keys::access_count(&asked.patient))
            .await?
            .as_deref()
            .and_then(keys::decode_u64)
            .unwrap_or(0),
        Topic::Consent => latest,
    };
    let sub = Sub {
        id: new_id(),
        owner,
        subject_kind: who.subject.kind().to_string(),
        subject_id: who.subject.id().to_string(),
        patient: asked.patient,
        topic: asked.topic,
        criteria: asked.criteria,
        reason: asked.reason,
        endpoint: asked.endpoint,
        payload: asked.payload,
        headers: asked.headers,
        status: if asked.off { "off" } else { "active" }.into(),
        error: None,
        notified,
        events_since_start: 0,
    };
    st.subscriptions.insert(&st, &sub)?;
    // The watcher looks at every block from now on, even when it was idle.
    crate::live::start_at(&st, latest);
    let mut r = fhir(StatusCode::CREATED, &subscription_resource(&sub));
    if let Ok(loc) =
        HeaderValue::from_str(&format!("{}/fhir/Subscription/{}", st.public_url, sub.id))
    {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// Subscription `id`, for its subscriber only.
fn own(st: &State, who: &Requester, id: &str) -> Result<Sub, FhirError> {
    let s = st
        .subscriptions
        .get(id)
        .ok_or_else(|| FhirError::not_found(format!("no subscription {id}")))?;
    if s.subject_kind != who.subject.kind() || s.subject_id != who.subject.id() {
        return Err(FhirError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("subscription {id} is not yours: only its subscriber reads or deletes it"),
        ));
    }
    Ok(s)
}

/// `GET /fhir/Subscription`: the requester's own subscriptions at this gateway (at most
/// [`MAX_PER_SUBJECT`]), by id, as a searchset Bundle; how a patient's page lists the
/// addresses its alerts go to. It takes no search parameter of its own (one given is ignored
/// and named, or 400 under `Prefer: handling=strict`, as every search): a subscription is the
/// subscriber's own, whoever's patient it names.
pub(super) async fn search_subscriptions(
    AxState(st): AxState<Arc<State>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let who = &authed.who;
    let search = Search::parse(&query, &headers, &[])?;
    let mine: Vec<Sub> = st
        .subscriptions
        .subs
        .lock()
        .map_err(|_| FhirError::unavailable("subscriptions poisoned"))?
        .values()
        .filter(|s| s.subject_kind == who.subject.kind() && s.subject_id == who.subject.id())
        .take(MAX_PER_SUBJECT)
        .cloned()
        .collect();
    let self_url = format!("{}/fhir/Subscription", st.public_url);
    let entries: Vec<Value> = mine
        .iter()
        .map(|s| {
            json!({
                "fullUrl": format!("{}/fhir/Subscription/{}", st.public_url, s.id),
                "resource": subscription_resource(s),
                "search": { "mode": "match" },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{ "relation": "self", "url": self_url }],
        "entry": entries,
    });
    search.finish(&mut bundle);
    Ok(fhir(StatusCode::OK, &bundle))
}

/// `GET /fhir/Subscription/{id}`.
pub(super) async fn read_subscription(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    let s = own(&st, &authed.who, &id)?;
    Ok(fhir(StatusCode::OK, &subscription_resource(&s)))
}

/// `DELETE /fhir/Subscription/{id}`: gone for good (no further notification starts).
pub(super) async fn delete_subscription(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    FhirAuthed(authed): FhirAuthed,
) -> FhirResult {
    own(&st, &authed.who, &id)?;
    st.subscriptions.remove(&st, &id)?;
    Ok(fhir(
        StatusCode::OK,
        &operation_outcome(
            "information",
            "informational",
            &format!("subscription {id} is deleted"),
            None,
            None,
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(endpoint: &str) -> Value {
        json!({
            "resourceType": "Subscription", "status": "requested", "reason": "break-glass alerts",
            "criteria": "AuditEvent?patient=Patient/pt-1",
            "channel": { "type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json",
                         "header": ["Authorization: Bearer abc"] },
        })
    }

    #[test]
    fn a_subscription_reads_its_criteria_endpoint_and_headers() {
        let a = read_subscription_body(&body("https://ehr.example/hook")).unwrap();
        assert_eq!((a.topic, a.patient.as_str()), (Topic::AuditEvent, "pt-1"));
        assert!(a.payload && !a.off);
        assert_eq!(a.headers, ["Authorization: Bearer abc"]);
        let mut c = body("http://127.0.0.1:9/x");
        c["criteria"] = json!("Consent?patient=pt-2");
        c["channel"].as_object_mut().unwrap().remove("payload");
        let a = read_subscription_body(&c).unwrap();
        assert_eq!((a.topic, a.payload), (Topic::Consent, false));
    }

    #[test]
    fn bad_subscriptions_name_every_issue() {
        for bad in [
            "file:///etc/passwd",
            "ftp://x.example/",
            "https://user:pw@x.example/",
            "not a url",
            "https://x.example/#frag",
        ] {
            let e = read_subscription_body(&body(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(
                e.element.as_deref(),
                Some("Subscription.channel.endpoint"),
                "{bad}"
            );
        }
        let long = format!("https://x.example/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert_eq!(
            read_subscription_body(&body(&long)).unwrap_err().issue,
            "too-long"
        );
        let mut v = body("https://x.example/");
        v["criteria"] = json!("Claim?patient=pt-1");
        v["channel"]["type"] = json!("websocket");
        v["channel"]["header"] = json!(["Host: evil", "no colon"]);
        v.as_object_mut().unwrap().remove("reason");
        let e = read_subscription_body(&v).unwrap_err();
        let issues = e.issues.unwrap();
        let paths: Vec<&str> = issues
            .iter()
            .map(|i| i["expression"][0].as_str().unwrap())
            .collect();
        assert_eq!(
            paths,
            [
                "Subscription.reason",
                "Subscription.criteria",
                "Subscription.channel.type",
                "Subscription.channel.header[0]",
                "Subscription.channel.header[1]"
            ]
        );
        let mut many = body("https://x.example/");
        many["channel"]["header"] = json!(vec!["X-A: 1"; MAX_HEADERS + 1]);
        assert_eq!(read_subscription_body(&many).unwrap_err().issue, "too-long");
    }

    #[test]
    fn criteria_name_one_patient_of_audit_events_or_consents() {
        assert_eq!(
            criteria_of("Consent?patient=Patient%2Fpt-9").unwrap(),
            (Topic::Consent, "pt-9".into())
        );
        for bad in [
            "",
            "AuditEvent",
            "AuditEvent?patient=pt-1&date=ge2026",
            "AuditEvent?patient=pt-1&patient=pt-2",
            "AuditEvent?patient=a/b",
            "Observation?patient=pt-1",
        ] {
            assert!(criteria_of(bad).is_err(), "{bad}");
        }
        assert_eq!(
            criteria_of(&format!("AuditEvent?patient={}", "p".repeat(300)))
                .unwrap_err()
                .0,
            "too-long"
        );
    }

    #[test]
    fn headers_are_bounded_and_the_gateways_own_are_refused() {
        assert!(parse_header("X-Token: abc").is_ok());
        for bad in [
            "Content-Length: 3",
            "host: x",
            "X-A",
            "X A: 1",
            "X-A: \u{7}",
        ] {
            assert!(parse_header(bad).is_err(), "{bad}");
        }
        assert!(parse_header(&format!("X-A: {}", "a".repeat(MAX_HEADER_LEN))).is_err());
    }
}

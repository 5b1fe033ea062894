//! The HTTP handlers. Every refusal is a JSON [`ErrorBody`] with a status that says why; nothing
//! secret is released before the ledger committed the reader's access with code 0.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, State as AxState};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64ct::{Base64, Encoding};
use ed25519_dalek::SigningKey;
use medledger_tx::check::{check_body, key_id_for_commitment, record_roles, RecordAction};
use medledger_tx::pb::{self, tx_body::Msg, Action, Purpose, RecordAnchor, TxBody};
use medledger_tx::{decode_tx, keys, sign_tx, Code};
use medledger_vault::kek::{self, Kek, WrappedKey};
use medledger_vault::record::{self, RecordMeta, MAX_RECORD_BYTES};
use medledger_vault::share;
use prost::Message;

use crate::api::{
    EraseAnswer, EraseRecord, ErrorBody, GetRecord, GetRecordAnswer, PreparedTx, PutRecord,
    PutRecordAnswer, SignedTx,
};
use crate::auth::{Authed, Requester, Subject};
use crate::node::{Committed, Node, NodeError};
use crate::store::{AwaitingSignature, RecordMetaFile, RecordState, Store};
use crate::{pages, Config, PendingAnchor};
use medledger_client::verify::Trust;
use medledger_query::certificate::CertTrust;

/// Largest request body: a 16 MiB record in base64 (4/3 of it) plus the JSON around it. Larger
/// bodies are answered 413 before they are read in full.
pub const MAX_BODY_BYTES: usize = MAX_RECORD_BYTES / 3 * 4 + 64 * 1024;

/// How recent (block time against the gateway's clock, in seconds) an access event must be to
/// release a read.
pub const FRESH_ACCESS_SECS: u64 = 60;

/// The sealing version of records stored here (one version per id: amendments get new ids).
const RECORD_VERSION: u64 = 1;

/// Records one person may have stored here whose anchor they have not signed yet (each up to
/// 16 MiB, dropped when the prepared anchor's window passes).
pub const MAX_AWAITING_PER_SIGNER: usize = 8;

/// How long after its prepared anchor's window an unsigned record is dropped, in seconds.
const AWAITING_GRACE_SECS: u64 = 60;

pub(crate) struct State {
    pub(crate) member_id: String,
    signing_key: SigningKey,
    kek: Kek,
    pub(crate) public_url: String,
    pub(crate) store: Store,
    /// Where the erasure watcher stands ([`crate::erasure`]).
    pub(crate) erasure_watch: std::sync::Mutex<crate::erasure::Watch>,
    pub(crate) node: Node,
    /// The node RPC URLs (the pages' `/rpc/…` pass-through tries them in order).
    pub(crate) node_urls: Vec<String>,
    /// HTTP client of the pass-through.
    pub(crate) http: reqwest::Client,
    /// Reads verified against BLS checkpoint certificates (FHIR answers).
    pub(crate) client: medledger_client::rpc::Client,
    /// The consortium's genesis BLS keys.
    pub(crate) trust: Trust,
    /// Request counts and latencies (`GET /metrics`).
    pub(crate) metrics: crate::metrics::GatewayMetrics,
    /// Authentication: replay cache, tokens, rate limits ([`crate::auth`]).
    pub(crate) gate: crate::auth::Gate,
    /// Remembered read decisions ([`crate::access`]).
    pub(crate) decisions: crate::access::Decisions,
    /// Serializes the gateway's own txs (one signer, one sequence).
    submit_lock: tokio::sync::Mutex<()>,
    /// The pages' live streams ([`crate::live`]).
    pub(crate) live: crate::live::Live,
    /// Records stored for a person who has not yet signed their anchor: signer → (record id,
    /// the prepared anchor's `valid_until`). Bounds what one key can make the gateway hold.
    awaiting: std::sync::Mutex<std::collections::BTreeMap<[u8; 32], Awaiting>>,
}

#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

/// What a consented read releases (after its access was committed).
pub(crate) struct Released {
    pub(crate) meta: RecordMetaFile,
    pub(crate) sealed_bytes: Vec<u8>,
    pub(crate) data_key: record::DataKey,
    pub(crate) reader_member: String,
    pub(crate) reader_box: [u8; 32],
    pub(crate) access_height: u64,
    pub(crate) access_index: u64,
    /// Time spent waiting for the ledger to commit the access (broadcast to block).
    pub(crate) ledger_wait: std::time::Duration,
}

/// A FHIR read's answer: the opened record.
pub(crate) struct Opened {
    pub(crate) plaintext: Vec<u8>,
    pub(crate) access_height: u64,
    pub(crate) access_index: u64,
    pub(crate) ledger_wait: std::time::Duration,
}

impl ApiError {
    /// The status and body.
    pub(crate) fn parts(self) -> (StatusCode, ErrorBody) {
        (self.status, self.body)
    }

    /// What went wrong, in words (for logs).
    pub(crate) fn message(&self) -> &str {
        &self.body.error
    }

    pub(crate) fn new(status: StatusCode, msg: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                error: msg.into(),
                ..Default::default()
            },
        }
    }

    pub(crate) fn unauthorized(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("request signature refused: {msg}"),
        )
    }

    pub(crate) fn internal(msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg.to_string())
    }

    /// A refusal by the ledger, with its code.
    pub(crate) fn ledger(c: &Committed) -> ApiError {
        let status = match Code::from_value(c.code) {
            Some(Code::RecordErased) => StatusCode::GONE,
            Some(Code::UnknownRecord) => StatusCode::NOT_FOUND,
            Some(Code::RecordExists | Code::SequenceReused | Code::SequenceGap) => {
                StatusCode::CONFLICT
            }
            Some(code) if code.value() < 20 => StatusCode::BAD_REQUEST,
            Some(Code::NodeStorage) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::FORBIDDEN,
        };
        ApiError {
            status,
            body: ErrorBody {
                error: format!("the ledger refused: {} ({})", c.log, c.code_name),
                code: Some(c.code),
                code_name: Some(c.code_name.clone()),
                erased_height: None,
            },
        }
    }

    fn gone(record_id: &str, height: u64) -> ApiError {
        ApiError {
            status: StatusCode::GONE,
            body: ErrorBody {
                error: format!("record {record_id} was erased at height {height}"),
                code: Some(Code::RecordErased.value()),
                code_name: Some(Code::RecordErased.name().into()),
                erased_height: Some(height),
            },
        }
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> ApiError {
        let status = match e {
            NodeError::AlreadySubmitted => StatusCode::CONFLICT,
            NodeError::Unreachable(_) | NodeError::BadAnswer(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        ApiError::internal(format!("storage: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let throttled = self.status == StatusCode::TOO_MANY_REQUESTS;
        let mut r = (self.status, Json(self.body)).into_response();
        if throttled {
            // Every limit here refills within a second.
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        r
    }
}

pub(crate) fn router(state: Arc<State>) -> Router {
    let per_ip = state.gate.ip_limiter();
    Router::new()
        .route("/auth/token", post(crate::auth::issue_token))
        .route(
            "/records/{id}",
            put(put_record)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .get(get_record),
        )
        .route("/records/{id}/anchor", post(anchor_record))
        .route("/records/{id}/erase", post(erase_record))
        .route("/", get(pages::index))
        .route("/patient", get(pages::patient_page))
        .route("/auditor", get(pages::auditor_page))
        .route("/assets/{name}", get(pages::asset))
        .route("/api/info", get(pages::info))
        .route("/live", get(crate::live::stream))
        .route("/rpc/{method}", get(pages::rpc_proxy))
        .merge(crate::fhir::routes())
        .route(
            "/metrics",
            get(|AxState(st): AxState<Arc<State>>| async move {
                crate::metrics::render(&st.metrics.registry)
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(crate::auth::MAX_SMALL_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            per_ip,
            crate::auth::per_ip_limit,
        ))
        .with_state(state)
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

async fn put_record(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    Authed { who, body }: Authed,
) -> Response {
    match st.put(&id, &who, &body).await {
        Ok(Stored::Anchored(a)) => (StatusCode::CREATED, Json(a)).into_response(),
        Ok(Stored::AwaitingSignature(p)) => (StatusCode::ACCEPTED, Json(p)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /records/{id}/anchor`: a practitioner's own signed anchor of the record they stored
/// (the 202 answer to their `PUT` prepared it), relayed as signed.
async fn anchor_record(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    Authed { who, body }: Authed,
) -> Response {
    match st.anchor_signed(&id, &who, &body).await {
        Ok(a) => (StatusCode::CREATED, Json(a)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn get_record(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    uri: Uri,
    Authed { who, body }: Authed,
) -> Response {
    let started = std::time::Instant::now();
    match st.get(&id, &uri, &who, &body).await {
        Ok((a, ledger_wait)) => {
            let mut r = (StatusCode::OK, Json(a)).into_response();
            if let Ok(v) = server_timing(started.elapsed(), ledger_wait).parse() {
                r.headers_mut().insert("server-timing", v);
            }
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn erase_record(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    Authed { who, body }: Authed,
) -> Response {
    match st.erase(&id, &who, &body).await {
        Ok(Erased::Done(a)) => (StatusCode::OK, Json(a)).into_response(),
        Ok(Erased::AwaitingSignature(p)) => (StatusCode::ACCEPTED, Json(p)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A `Server-Timing` header value (W3C Server Timing): the gateway's own time (everything but
/// the wait for the access's block) and the ledger's (broadcast until committed), in ms.
pub(crate) fn server_timing(total: std::time::Duration, ledger: std::time::Duration) -> String {
    let ms = |d: std::time::Duration| {
        let us = d.as_micros();
        format!("{}.{:03}", us / 1000, us % 1000)
    };
    format!(
        "gateway;dur={};desc=\"without the ledger\", ledger;dur={};desc=\"access committed\"",
        ms(total.saturating_sub(ledger)),
        ms(ledger)
    )
}

fn purpose_of(uri: &Uri) -> Result<Purpose, ApiError> {
    let q = uri.query().unwrap_or("");
    let value = q
        .split('&')
        .find_map(|kv| kv.strip_prefix("purpose="))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "name the purpose: ?purpose=TREAT (ETREAT, HPAYMT, HOPERAT, HRESCH)",
            )
        })?;
    let full = if value.starts_with("PURPOSE_") {
        value.to_string()
    } else {
        format!("PURPOSE_{value}")
    };
    match Purpose::from_str_name(&full) {
        Some(p) if p != Purpose::Unspecified => Ok(p),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "unknown purpose {:?}",
                value.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// One signer's records awaiting their signed anchor: (record id, the anchor's `valid_until`).
type Awaiting = Vec<(String, u64)>;

/// What `PUT /records/{id}` did: stored and anchored (the admin key: the gateway signed), or
/// stored awaiting the person's own signed anchor.
enum Stored {
    Anchored(PutRecordAnswer),
    AwaitingSignature(PreparedTx),
}

/// What `POST /records/{id}/erase` did: erased, or prepared the person's erasure to sign.
enum Erased {
    Done(EraseAnswer),
    AwaitingSignature(PreparedTx),
}

/// The 202 answer: `body` for `signer` to sign, then to send to `submit_to`.
fn prepared_tx(id: &str, body: &TxBody, signer: &[u8; 32], submit_to: String) -> PreparedTx {
    let body_bytes = body.encode_to_vec();
    PreparedTx {
        record_id: id.to_string(),
        tx_body_base64: Base64::encode_string(&body_bytes),
        sign_bytes_base64: Base64::encode_string(&medledger_tx::envelope::signing_bytes(
            &body.chain_id,
            &body_bytes,
        )),
        signer: hex::encode(signer),
        submit_to,
    }
}

fn decoded_body(b64: &str) -> Option<TxBody> {
    let bytes = Base64::decode_vec(b64).ok()?;
    TxBody::decode(bytes.as_slice()).ok()
}

/// An erasure's reason hash from its optional hex form.
fn reason_hash_of(hex_hash: Option<&str>) -> Result<Vec<u8>, ApiError> {
    match hex_hash {
        None => Ok(Vec::new()),
        Some(h) => hex::decode(h)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "reason_sha256 must be 64 hex digits (the SHA-256 of the reason)",
                )
            }),
    }
}

impl State {
    pub(crate) fn new(config: Config, kek: Kek) -> anyhow::Result<State> {
        let store = Store::open(&config.data_dir)
            .map_err(|e| anyhow::anyhow!("data dir {}: {e}", config.data_dir.display()))?;
        let node = Node::new(&config.node_urls, &config.genesis_json)?;
        let trust = Trust::Certificates(
            CertTrust::from_genesis_json(&config.genesis_json)
                .map_err(|e| anyhow::anyhow!("genesis BLS keys: {e}"))?,
        );
        let client = medledger_client::rpc::Client::new(&config.node_urls[0])?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        // The box key is registered on chain (SetGateway) by the member; the gateway itself
        // only shares to readers' keys, so it needs no copy of its own secret here.
        drop(config.box_key);
        Ok(State {
            member_id: config.member_id,
            signing_key: config.signing_key,
            kek,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            store,
            erasure_watch: Default::default(),
            node,
            node_urls: config.node_urls,
            http,
            client,
            trust,
            metrics: Default::default(),
            gate: crate::auth::Gate::new(
                &config.public_url,
                config.nonce_cache_capacity,
                config.rate_limits,
            ),
            decisions: Default::default(),
            submit_lock: tokio::sync::Mutex::new(()),
            awaiting: Default::default(),
            live: Default::default(),
        })
    }

    /// Whether `who` may act as this gateway's member: its admin, or an active practitioner of
    /// it whose role is in `roles` (the ledger's own role table for the action, so the gateway
    /// never does in the member's name what the person may not do themselves).
    pub(crate) fn acts_for_member(&self, who: &Requester, roles: &[pb::PractitionerRole]) -> bool {
        match &who.subject {
            Subject::Member(m) => *m == self.member_id,
            Subject::Practitioner {
                member,
                role,
                active: true,
                ..
            } => *member == self.member_id && roles.contains(role),
            _ => false,
        }
    }

    /// Signs `msg` with the gateway key (unordered when the message may be, else at its next
    /// sequence) and waits for its block.
    pub(crate) async fn submit(&self, msg: Msg) -> Result<Committed, NodeError> {
        Ok(self.submit_signed(msg).await?.0)
    }

    /// [`State::submit`], also answering the signed tx bytes.
    async fn submit_signed(&self, msg: Msg) -> Result<(Committed, Vec<u8>), NodeError> {
        if medledger_tx::check::may_be_unordered(&msg) {
            // Anchors need no sequence: concurrent requests (and several gateway replicas
            // sharing the key) sign independently.
            let body = medledger_client::unordered::body_now(self.node.chain_id(), msg)
                .map_err(|e| NodeError::Unreachable(e.to_string()))?;
            let tx = sign_tx(&self.signing_key, &body);
            let committed = self.node.submit(tx.clone()).await?;
            return Ok((committed, tx));
        }
        let _guard = self.submit_lock.lock().await;
        let pk = self.signing_key.verifying_key().to_bytes();
        let sequence = self.node.next_sequence(&pk).await?;
        let tx = sign_tx(
            &self.signing_key,
            &TxBody {
                chain_id: self.node.chain_id().to_string(),
                sequence,
                unordered: None,
                msg: Some(msg),
            },
        );
        let committed = self.node.submit(tx.clone()).await?;
        Ok((committed, tx))
    }

    fn anchor_msg(meta: &RecordMetaFile) -> Result<Msg, ApiError> {
        let content_hash = hex::decode(&meta.content_hash).map_err(ApiError::internal)?;
        Ok(Msg::AnchorRecord(pb::AnchorRecord {
            record_id: meta.record_id.clone(),
            patient_id: meta.patient_id.clone(),
            resource_type: meta.resource_type.clone(),
            content_hash,
            size: meta.size,
            key_id: meta.key_id.clone(),
        }))
    }

    async fn put(&self, id: &str, who: &Requester, body: &[u8]) -> Result<Stored, ApiError> {
        if !self.acts_for_member(who, record_roles(RecordAction::Anchor)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "only {}'s admin key or its active physicians, nurses and lab technicians \
                     store records here",
                    self.member_id
                ),
            ));
        }
        let req: PutRecord = json(body)?;
        // A person signs their own anchor (the ledger names who stored the record); only the
        // member's admin key has the gateway sign for it.
        let person = !matches!(who.subject, Subject::Member(_));
        if person && !self.may_await(&who.key)? {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{MAX_AWAITING_PER_SIGNER} records already wait for your signed anchor: \
                     sign those (POST /records/{{id}}/anchor) or let them expire"
                ),
            ));
        }
        let content = Base64::decode_vec(&req.content_base64)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("content_base64: {e}")))?;
        if content.len() > MAX_RECORD_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a record is at most {MAX_RECORD_BYTES} bytes"),
            ));
        }
        // The ledger's own stateless checks, on the anchor we are about to make (placeholders
        // for the hash and key id): ids and type are refused here, before anything is stored.
        let probe = TxBody {
            chain_id: self.node.chain_id().to_string(),
            sequence: 0,
            unordered: None,
            msg: Some(Msg::AnchorRecord(pb::AnchorRecord {
                record_id: id.to_string(),
                patient_id: req.patient_id.clone(),
                resource_type: req.resource_type.clone(),
                content_hash: vec![0; 32],
                size: 0,
                key_id: key_id_for_commitment(&[0; 32]),
            })),
        };
        if let Err(e) = check_body(&probe) {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                body: ErrorBody {
                    error: e.message,
                    code: Some(e.code.value()),
                    code_name: Some(e.code.name().into()),
                    erased_height: None,
                },
            });
        }
        if self.store.meta(id)?.is_some() || self.node.read(&keys::record(id)).await?.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("record {id} exists; store a new version under a new id"),
            ));
        }
        let rmeta = RecordMeta {
            record_id: id,
            patient_id: &req.patient_id,
            resource_type: &req.resource_type,
            version: RECORD_VERSION,
        };
        let (sealed, data_key) = record::seal(&rmeta, &content, &mut rand_v010::rng())
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        let wrapped = kek::wrap(&self.kek, id, &data_key, &mut rand_v010::rng())
            .map_err(ApiError::internal)?;
        drop(data_key);
        let sealed_bytes = sealed.encode();
        let meta = RecordMetaFile {
            record_id: id.to_string(),
            patient_id: req.patient_id,
            resource_type: req.resource_type,
            version: RECORD_VERSION,
            content_hash: hex::encode(record::content_hash(&sealed)),
            size: sealed_bytes.len() as u64,
            key_id: key_id_for_commitment(sealed.commitment()),
            state: RecordState::Stored,
            awaiting_signature: None,
        };
        if person {
            // Store, then hand the person the anchor to sign (unordered: no sequence to race).
            let body = medledger_client::unordered::body_now(
                self.node.chain_id(),
                Self::anchor_msg(&meta)?,
            )
            .map_err(ApiError::internal)?;
            let valid_until = body.unordered.as_ref().map_or(0, |u| u.valid_until);
            let meta = RecordMetaFile {
                awaiting_signature: Some(AwaitingSignature {
                    signer: hex::encode(who.key),
                    valid_until,
                }),
                ..meta
            };
            self.store.put(&meta, &sealed_bytes, &wrapped.encode())?;
            self.await_signature(&who.key, id, valid_until);
            return Ok(Stored::AwaitingSignature(prepared_tx(
                id,
                &body,
                &who.key,
                format!("/records/{id}/anchor"),
            )));
        }
        // Store first (ciphertext, wrapped key, metadata, each durable), anchor second.
        self.store.put(&meta, &sealed_bytes, &wrapped.encode())?;
        let committed = self.submit(Self::anchor_msg(&meta)?).await?;
        self.anchor_committed(id, meta, &committed)
            .map(Stored::Anchored)
    }

    /// After an anchor's block: refused (for good: a block's answer is final), the stored
    /// record is removed so nothing lingers unanchored; committed, it is marked anchored.
    fn anchor_committed(
        &self,
        id: &str,
        meta: RecordMetaFile,
        committed: &Committed,
    ) -> Result<PutRecordAnswer, ApiError> {
        if committed.code != 0 {
            self.store.remove(id)?;
            return Err(ApiError::ledger(committed));
        }
        let answer = PutRecordAnswer {
            record_id: id.to_string(),
            anchor_height: committed.height,
            content_hash: meta.content_hash.clone(),
            key_id: meta.key_id.clone(),
            size: meta.size,
        };
        self.store.put_meta(&RecordMetaFile {
            state: RecordState::Anchored {
                height: committed.height,
            },
            awaiting_signature: None,
            ..meta
        })?;
        Ok(answer)
    }

    /// Whether `signer` may store one more record awaiting its signed anchor.
    fn may_await(&self, signer: &[u8; 32]) -> Result<bool, ApiError> {
        self.drop_expired_awaiting()?;
        let m = self
            .awaiting
            .lock()
            .map_err(|_| ApiError::internal("awaiting-signature table poisoned"))?;
        Ok(m.get(signer).map_or(0, Vec::len) < MAX_AWAITING_PER_SIGNER)
    }

    /// Drops the records whose prepared anchor's window passed unsigned (on every person's
    /// `PUT` and every erasure sweep; a restart's reconcile drops those it forgot).
    pub(crate) fn drop_expired_awaiting(&self) -> Result<(), ApiError> {
        let now = medledger_client::unordered::now_secs();
        let mut expired = Vec::new();
        {
            let mut m = self
                .awaiting
                .lock()
                .map_err(|_| ApiError::internal("awaiting-signature table poisoned"))?;
            for waiting in m.values_mut() {
                waiting.retain(|(id, until)| {
                    let live = now <= until + AWAITING_GRACE_SECS;
                    if !live {
                        expired.push(id.clone());
                    }
                    live
                });
            }
            m.retain(|_, w| !w.is_empty());
        }
        for id in expired {
            if let Some(meta) = self.store.meta(&id)? {
                if meta.state == RecordState::Stored && meta.awaiting_signature.is_some() {
                    self.store.remove(&id)?;
                }
            }
        }
        Ok(())
    }

    fn await_signature(&self, signer: &[u8; 32], id: &str, valid_until: u64) {
        if let Ok(mut m) = self.awaiting.lock() {
            m.entry(*signer)
                .or_default()
                .push((id.to_string(), valid_until));
        }
    }

    fn done_awaiting(&self, signer: &[u8; 32], id: &str) {
        if let Ok(mut m) = self.awaiting.lock() {
            if let Some(w) = m.get_mut(signer) {
                w.retain(|(r, _)| r != id);
                if w.is_empty() {
                    m.remove(signer);
                }
            }
        }
    }

    /// `POST /records/{id}/anchor`: the person's signed anchor, checked to be exactly the one
    /// prepared for the stored record, relayed, and the record marked anchored once committed.
    async fn anchor_signed(
        &self,
        id: &str,
        who: &Requester,
        body: &[u8],
    ) -> Result<PutRecordAnswer, ApiError> {
        let meta = self
            .store
            .meta(id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no record {id}")))?;
        let Some(awaiting) = meta.awaiting_signature.clone() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("record {id} awaits no signed anchor"),
            ));
        };
        if awaiting.signer != hex::encode(who.key) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("record {id}'s anchor is signed by the key that stored it"),
            ));
        }
        let signed: SignedTx = json(body)?;
        let tx = self.signed_by(who, &signed, &Self::anchor_msg(&meta)?, "anchor")?;
        let committed = self.node.submit(tx).await?;
        self.done_awaiting(&who.key, id);
        self.anchor_committed(id, meta, &committed)
    }

    /// The signed tx bytes of `signed`, once its signature by `who` verifies, it is for this
    /// chain, and it carries exactly `want` (what the gateway prepared or would have signed).
    fn signed_by(
        &self,
        who: &Requester,
        signed: &SignedTx,
        want: &Msg,
        what: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
        let body = Base64::decode_vec(&signed.tx_body_base64)
            .map_err(|e| bad(format!("tx_body_base64: {e}")))?;
        let signature = Base64::decode_vec(&signed.signature_base64)
            .map_err(|e| bad(format!("signature_base64: {e}")))?;
        let tx = pb::Tx {
            body,
            public_key: who.key.to_vec(),
            signature,
        }
        .encode_to_vec();
        let verified = decode_tx(&tx).and_then(|t| t.verify()).map_err(|e| {
            bad(format!(
                "the signed {what} does not verify with your key: {e}"
            ))
        })?;
        let b = verified.body();
        if b.chain_id != self.node.chain_id() || b.msg.as_ref() != Some(want) {
            return Err(bad(format!(
                "the signed {what} is not the one prepared for this record"
            )));
        }
        if !self.gate.broadcast_allowed(&who.key) {
            return Err(crate::auth::too_many(
                "this key sends txs faster than the gateway relays for one key; retry shortly",
            ));
        }
        Ok(tx)
    }

    /// The local record and its anchor, or 404 / 410.
    async fn readable(&self, id: &str) -> Result<(RecordMetaFile, RecordAnchor), ApiError> {
        let meta = self
            .store
            .meta(id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no record {id}")))?;
        if let RecordState::Erased { height } = meta.state {
            return Err(ApiError::gone(id, height));
        }
        let anchor: RecordAnchor =
            self.node
                .read_msg(&keys::record(id))
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("record {id} is not anchored on the ledger"),
                    )
                })?;
        if anchor.erased_height != 0 {
            return Err(ApiError::gone(id, anchor.erased_height));
        }
        if anchor.custodian != self.member_id
            || hex::encode(&anchor.content_hash) != meta.content_hash
            || anchor.key_id != meta.key_id
            || anchor.resource_type != meta.resource_type
            || anchor.patient_id != meta.patient_id
        {
            return Err(ApiError::internal(format!(
                "record {id}: the anchor on chain does not match the stored record"
            )));
        }
        Ok((meta, anchor))
    }

    async fn get(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        body: &[u8],
    ) -> Result<(GetRecordAnswer, std::time::Duration), ApiError> {
        let req: GetRecord = json(body)?;
        let r = self
            .consented_release(id, uri, who, &req.log_access_tx_base64, None)
            .await?;
        let shared = share::share_data_key(
            &r.reader_box,
            id,
            &r.reader_member,
            &r.data_key,
            &mut rand_v010::rng(),
        )
        .map_err(ApiError::internal)?;
        Ok((
            GetRecordAnswer {
                record_id: id.to_string(),
                patient_id: r.meta.patient_id,
                resource_type: r.meta.resource_type,
                version: r.meta.version,
                sealed_base64: Base64::encode_string(&r.sealed_bytes),
                shared_key_base64: Base64::encode_string(&shared.encode()),
                reader_member: r.reader_member,
                access_height: r.access_height,
                access_index: r.access_index,
            },
            r.ledger_wait,
        ))
    }

    /// A FHIR read: the consented release, opened here.
    pub(crate) async fn release(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        log_access_tx_base64: &str,
        resource_type: Option<&str>,
    ) -> Result<Opened, ApiError> {
        let r = self
            .consented_release(id, uri, who, log_access_tx_base64, resource_type)
            .await?;
        let sealed = record::SealedRecord::decode(&r.sealed_bytes).map_err(ApiError::internal)?;
        let plaintext = record::open(
            &RecordMeta {
                record_id: id,
                patient_id: &r.meta.patient_id,
                resource_type: &r.meta.resource_type,
                version: r.meta.version,
            },
            &sealed,
            &r.data_key,
        )
        .map_err(ApiError::internal)?;
        Ok(Opened {
            plaintext,
            access_height: r.access_height,
            access_index: r.access_index,
            ledger_wait: r.ledger_wait,
        })
    }

    /// The node's latest block height (its unproven word: the watchers use it only to know
    /// which blocks to look at).
    pub(crate) async fn latest_block_height(&self) -> anyhow::Result<u64> {
        use tendermint_rpc::Client as _;
        Ok(self
            .client
            .rpc()
            .status()
            .await?
            .sync_info
            .latest_block_height
            .value())
    }

    /// The time of block `height` (unix seconds; 0 if the node cannot say).
    pub(crate) async fn block_time(&self, height: u64) -> u64 {
        use tendermint_rpc::Client as _;
        let Ok(h) = tendermint::block::Height::try_from(height) else {
            return 0;
        };
        match self.client.rpc().commit(h).await {
            Ok(c) => u64::try_from(c.signed_header.header.time.unix_timestamp()).unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Authenticates a read, checks the reader's LogAccess against the record and the request,
    /// submits it and, once the ledger committed it with code 0, unwraps the data key.
    async fn consented_release(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        log_access_tx_base64: &str,
        resource_type: Option<&str>,
    ) -> Result<Released, ApiError> {
        let key = who.key;
        let purpose = purpose_of(uri)?;
        let (meta, anchor) = self.readable(id).await?;
        let bad = |msg: String| ApiError::new(StatusCode::BAD_REQUEST, msg);
        if let Some(t) = resource_type {
            if t != anchor.resource_type {
                return Err(bad(format!(
                    "record {id} is a {}, not a {t}",
                    anchor.resource_type
                )));
            }
        }
        let tx_bytes = Base64::decode_vec(log_access_tx_base64)
            .map_err(|e| bad(format!("log_access_tx_base64: {e}")))?;
        let tx = decode_tx(&tx_bytes)
            .and_then(|t| t.verify())
            .map_err(|e| bad(format!("log access tx: {e}")))?;
        if tx.signer() != &key {
            return Err(bad(
                "the LogAccess tx must be signed by the key that signs the request".into(),
            ));
        }
        let body_ok = tx.body();
        if body_ok.chain_id != self.node.chain_id() {
            return Err(bad(format!(
                "the LogAccess tx is for chain {:?}",
                body_ok.chain_id
            )));
        }
        // A consented read (LogAccess, READ, the request's purpose) or a break-glass
        // (LogBreakGlass, purpose ETREAT): the same release, and the ledger opens the review.
        let (patient_id, record_id, data_class, purpose_ok, action_ok) = match &body_ok.msg {
            Some(Msg::LogAccess(la)) => (
                &la.patient_id,
                &la.record_id,
                &la.data_class,
                la.purpose == purpose as i32,
                la.action == 0 || la.action == Action::Read as i32,
            ),
            Some(Msg::LogBreakGlass(bg)) => (
                &bg.patient_id,
                &bg.record_id,
                &bg.data_class,
                purpose == Purpose::Etreat,
                true,
            ),
            _ => {
                return Err(bad(
                    "the tx must carry a LogAccess or a LogBreakGlass".into()
                ))
            }
        };
        let mut wrong = Vec::new();
        if *patient_id != meta.patient_id {
            wrong.push("patient_id");
        }
        if record_id != id {
            wrong.push("record_id");
        }
        if *data_class != anchor.resource_type {
            wrong.push("data_class (must be the anchor's resource type)");
        }
        if !purpose_ok {
            wrong.push("purpose (the request's; ETREAT for a break-glass)");
        }
        if !action_ok {
            wrong.push("action (must be READ)");
        }
        if !wrong.is_empty() {
            return Err(bad(format!(
                "the access tx does not match this read: {}",
                wrong.join(", ")
            )));
        }
        let reader_member = match &who.subject {
            Subject::Member(m) => m.clone(),
            Subject::Practitioner { member, .. } => member.clone(),
            Subject::Patient(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "records are released to members' admins and practitioners",
                ))
            }
        };
        let gateway: pb::Gateway = self
            .node
            .read_msg(&keys::gateway(&reader_member))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("member {reader_member} has registered no box key (SetGateway)"),
                )
            })?;
        let reader_box: [u8; 32] = gateway
            .box_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::internal("box key on chain is not 32 bytes"))?;
        let wrapped_bytes = self
            .store
            .wrapped_key(id)?
            .ok_or_else(|| ApiError::gone(id, 0))?;
        let wrapped = WrappedKey::decode(&wrapped_bytes).map_err(ApiError::internal)?;
        let sealed_bytes = self.store.sealed(id)?;
        // The access must be committed with code 0 before anything is released.
        let waited = std::time::Instant::now();
        let committed = self.node.submit(tx_bytes).await?;
        let ledger_wait = waited.elapsed();
        if committed.code != 0 {
            return Err(ApiError::ledger(&committed));
        }
        // The tx index's answer is only a hint of which event to read: the release rests on the
        // access event itself, proven, fresh and not used for an earlier release (a replayed old
        // tx gets the old tx's result from the index, never a new event).
        let access_index = committed
            .attribute("medledger.access.logged", "index")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| ApiError::internal("the committed access names no event index"))?;
        self.proven_fresh_access(who, &meta.patient_id, access_index, id, &anchor, purpose)
            .await?;
        let data_key = kek::unwrap(&self.kek, id, &wrapped).map_err(ApiError::internal)?;
        Ok(Released {
            meta,
            sealed_bytes,
            data_key,
            reader_member,
            reader_box,
            access_height: committed.height,
            access_index,
            ledger_wait,
        })
    }

    /// The access event `index` of `patient`, read with a proof, is this read by `who`,
    /// committed within [`FRESH_ACCESS_SECS`] of now, and was never used for a release here.
    async fn proven_fresh_access(
        &self,
        who: &Requester,
        patient: &str,
        index: u64,
        id: &str,
        anchor: &RecordAnchor,
        purpose: Purpose,
    ) -> Result<(), ApiError> {
        let refuse = |msg: String| ApiError::new(StatusCode::CONFLICT, msg);
        let event: pb::AccessEvent = self
            .node
            .read_msg_newest(&keys::access_event(patient, index))
            .await?
            .ok_or_else(|| {
                refuse(format!(
                    "access event {index} of {patient} is not on the ledger (proven absent)"
                ))
            })?;
        let (member, practitioner) = match &who.subject {
            Subject::Member(m) => (m.as_str(), ""),
            Subject::Practitioner { member, did, .. } => (member.as_str(), did.as_str()),
            Subject::Patient(_) => {
                return Err(refuse("patients' reads are not released here".into()))
            }
        };
        let expected_purpose = if event.break_glass {
            Purpose::Etreat
        } else {
            purpose
        };
        if event.record_id != id
            || event.data_class != anchor.resource_type
            || event.actor != member
            || event.practitioner != practitioner
            || event.purpose != expected_purpose as i32
        {
            return Err(refuse(format!(
                "access event {index} of {patient} is not this read by this requester"
            )));
        }
        let now = crate::client::now_secs();
        if now.saturating_sub(event.time) > FRESH_ACCESS_SECS {
            return Err(refuse(format!(
                "access event {index} of {patient} was committed at block time {}, more than \
                 {FRESH_ACCESS_SECS} s ago: log a new access (one committed access releases one \
                 fresh read)",
                event.time
            )));
        }
        if !self.store.claim_release(patient, index)? {
            return Err(refuse(format!(
                "access event {index} of {patient} already released a read: log a new access"
            )));
        }
        Ok(())
    }

    async fn erase(&self, id: &str, who: &Requester, body: &[u8]) -> Result<Erased, ApiError> {
        let mut meta = self
            .store
            .meta(id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no record {id}")))?;
        let allowed = match &who.subject {
            Subject::Patient(p) => *p == meta.patient_id,
            _ => self.acts_for_member(who, record_roles(RecordAction::Erase)),
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "only the record's patient, or its custodian {} (admin key, physicians, \
                     privacy officers), may erase it",
                    self.member_id
                ),
            ));
        }
        if let RecordState::Erased { height } = meta.state {
            if height != 0 {
                return Err(ApiError::gone(id, height));
            }
        }
        let req: EraseRecord = if body.is_empty() {
            EraseRecord::default()
        } else {
            json(body)?
        };
        // The patient or a practitioner signs their own erasure (the ledger names who erased);
        // the gateway signs only for the member's admin key.
        let person = !matches!(who.subject, Subject::Member(_));
        if person {
            let Some(signed) = &req.signed else {
                let sequence = self.node.next_sequence(&who.key).await?;
                let body = TxBody {
                    chain_id: self.node.chain_id().to_string(),
                    sequence,
                    unordered: None,
                    msg: Some(Msg::EraseRecord(pb::EraseRecord {
                        record_id: id.to_string(),
                        reason_hash: reason_hash_of(req.reason_sha256.as_deref())?,
                    })),
                };
                return Ok(Erased::AwaitingSignature(prepared_tx(
                    id,
                    &body,
                    &who.key,
                    format!("/records/{id}/erase"),
                )));
            };
            // The reason hash is the signer's to choose; the record is not.
            let reason_hash = decoded_body(&signed.tx_body_base64)
                .and_then(|b| match b.msg {
                    Some(Msg::EraseRecord(e)) => Some(e.reason_hash),
                    _ => None,
                })
                .unwrap_or_default();
            let want = Msg::EraseRecord(pb::EraseRecord {
                record_id: id.to_string(),
                reason_hash,
            });
            let tx = self.signed_by(who, signed, &want, "erasure")?;
            self.store.destroy_key(id)?;
            meta.state = RecordState::Erased { height: 0 };
            self.store.put_meta(&meta)?;
            let committed = self.node.submit(tx.clone()).await?;
            return self
                .erasure_committed(id, meta, committed, tx, &who.key)
                .await
                .map(Erased::Done);
        }
        let reason_hash = reason_hash_of(req.reason_sha256.as_deref())?;
        // Crypto-shred first: once the wrapped key is gone the record is unreadable here,
        // whatever happens to the erasure tx.
        self.store.destroy_key(id)?;
        meta.state = RecordState::Erased { height: 0 };
        self.store.put_meta(&meta)?;
        let (committed, tx) = self
            .submit_signed(Msg::EraseRecord(pb::EraseRecord {
                record_id: id.to_string(),
                reason_hash,
            }))
            .await?;
        let signer = self.signing_key.verifying_key().to_bytes();
        self.erasure_committed(id, meta, committed, tx, &signer)
            .await
            .map(Erased::Done)
    }

    /// After an erasure tx's block: the record's erasure height stored, the destruction
    /// receipt answered and the erasure confirmed on chain.
    async fn erasure_committed(
        &self,
        id: &str,
        mut meta: RecordMetaFile,
        committed: Committed,
        tx: Vec<u8>,
        signer: &[u8; 32],
    ) -> Result<EraseAnswer, ApiError> {
        let mut receipt = None;
        let height = if committed.code == 0 {
            use sha2::Digest;
            receipt = Some(crate::api::ErasureReceipt {
                tx_base64: Base64::encode_string(&tx),
                tx_hash: hex::encode_upper(sha2::Sha256::digest(&tx)),
                height: committed.height,
                key_id: meta.key_id.clone(),
                signer: hex::encode(signer),
            });
            committed.height
        } else if committed.code == Code::RecordErased.value() {
            // Erased on chain already (e.g. by the patient directly): adopt that height.
            let anchor: Option<RecordAnchor> = self.node.read_msg_newest(&keys::record(id)).await?;
            anchor.map(|a| a.erased_height).unwrap_or(0)
        } else {
            return Err(ApiError::ledger(&committed));
        };
        meta.state = RecordState::Erased { height };
        self.store.put_meta(&meta)?;
        // The destruction receipt: the ledger shows the erasure complete, not just requested.
        if let Some(anchor) = self
            .node
            .read_msg_newest::<RecordAnchor>(&keys::record(id))
            .await?
        {
            if let Err(e) = crate::erasure::confirm(self, id, &anchor).await {
                tracing::warn!(record = id, "erasure confirmation not sent: {e:#}");
            }
        }
        Ok(EraseAnswer {
            record_id: id.to_string(),
            erasure_height: height,
            receipt,
        })
    }

    pub(crate) async fn pending_anchors(&self) -> anyhow::Result<Vec<PendingAnchor>> {
        let mut out = Vec::new();
        for meta in self.store.all()? {
            if meta.state != RecordState::Stored {
                continue;
            }
            let anchor: Option<RecordAnchor> =
                self.node.read_msg(&keys::record(&meta.record_id)).await?;
            let matches = anchor.as_ref().is_some_and(|a| {
                hex::encode(&a.content_hash) == meta.content_hash && a.custodian == self.member_id
            });
            if let (true, Some(a)) = (matches, anchor) {
                self.store.put_meta(&RecordMetaFile {
                    state: RecordState::Anchored {
                        height: a.anchored_height,
                    },
                    awaiting_signature: None,
                    ..meta.clone()
                })?;
            } else if let Some(w) = &meta.awaiting_signature {
                // A person's record whose signed anchor never landed: never anchored in the
                // member's name; dropped once its prepared anchor can no longer land.
                let now = medledger_client::unordered::now_secs();
                if now > w.valid_until + AWAITING_GRACE_SECS {
                    self.store.remove(&meta.record_id)?;
                }
                continue;
            }
            out.push(PendingAnchor {
                record_id: meta.record_id,
                anchored_on_chain: matches,
            });
        }
        Ok(out)
    }

    pub(crate) async fn reconcile(&self) -> anyhow::Result<Vec<String>> {
        let mut anchored = Vec::new();
        for p in self.pending_anchors().await? {
            if p.anchored_on_chain {
                continue;
            }
            let Some(meta) = self.store.meta(&p.record_id)? else {
                continue;
            };
            let msg = Self::anchor_msg(&meta).map_err(|e| anyhow::anyhow!(e.body.error))?;
            let committed = self.submit(msg).await?;
            if committed.code == 0 {
                self.store.put_meta(&RecordMetaFile {
                    state: RecordState::Anchored {
                        height: committed.height,
                    },
                    ..meta
                })?;
                anchored.push(p.record_id);
            } else {
                self.store.remove(&p.record_id)?;
            }
        }
        Ok(anchored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every throttled answer says when to come back, so clients back off instead of hammering.
    #[test]
    fn a_throttled_answer_says_when_to_retry() {
        let r = crate::auth::too_many("slow down").into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            r.headers()
                .get(axum::http::header::RETRY_AFTER)
                .map(|v| v.as_bytes()),
            Some(&b"1"[..])
        );
        let r = ApiError::new(StatusCode::FORBIDDEN, "no").into_response();
        assert!(r.headers().get(axum::http::header::RETRY_AFTER).is_none());
    }

    /// A resent access log (the same signed bytes) is a conflict the client fixes by signing
    /// anew, never "node unreachable"; a node that does not answer is 503.
    #[test]
    fn node_errors_map_to_their_own_statuses() {
        assert_eq!(
            ApiError::from(NodeError::AlreadySubmitted).status,
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::from(NodeError::Unreachable("x".into())).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}

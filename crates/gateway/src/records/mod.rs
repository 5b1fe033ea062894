//! The vault's record handlers. Every refusal is a JSON [`ErrorBody`] with a status that says why; nothing
//! secret is released before the ledger committed the reader's access with code 0.
//!
//! - [`put`]: storing a record and anchoring it (the gateway's signature for the member's admin,
//!   the person's own for a practitioner), and the records awaiting a signature.
//! - [`read`]: a consented read, released only once the reader's access is committed.
//! - [`erase`]: an erasure by the custodian or the patient.
//! - [`custody`]: threshold custody: the record's key split among its holders, its replicas.
//! - [`reshare`]: records stored whole, moved to threshold custody.

pub(crate) mod custody;
mod erase;
mod put;
mod read;
pub(crate) mod reshare;

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64ct::{Base64, Encoding};
use medledger_tx::pb::{Purpose, TxBody};
use medledger_vault::record::{self, MAX_RECORD_BYTES};
use prost::Message;

use crate::api::{EraseAnswer, PreparedTx, PutRecordAnswer};
use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::State;
use crate::store::RecordMetaFile;

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

/// What a consented read releases (after its access was committed).
pub(crate) struct Released {
    pub(crate) meta: RecordMetaFile,
    pub(crate) sealed_bytes: Vec<u8>,
    /// The whole key (a record held by its custodian alone); `None` for a threshold record,
    /// whose holder releases its share instead ([`custody`]).
    pub(crate) data_key: Option<record::DataKey>,
    /// The proven anchor the release rests on.
    pub(crate) anchor: medledger_tx::pb::RecordAnchor,
    pub(crate) purpose: Purpose,
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

pub(crate) fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad JSON body: {e}")))
}

pub(crate) async fn put_record(
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
pub(crate) async fn anchor_record(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    Authed { who, body }: Authed,
) -> Response {
    match st.anchor_signed(&id, &who, &body).await {
        Ok(a) => (StatusCode::CREATED, Json(a)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(crate) async fn get_record(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    Authed { who, body }: Authed,
) -> Response {
    let started = std::time::Instant::now();
    match st.get(&id, &uri, &headers, &who, &body).await {
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

pub(crate) async fn erase_record(
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

pub(crate) fn purpose_of(uri: &Uri) -> Result<Purpose, ApiError> {
    let q = uri.query().unwrap_or("");
    let value = q
        .split('&')
        .find_map(|kv| kv.strip_prefix("purpose="))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "name the purpose: ?purpose=TREAT (ETREAT, HPAYMT, HOPERAT, HRESCH; PATRQT for a patient's own read)",
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

/// What `PUT /records/{id}` did: stored and anchored (the admin key: the gateway signed), or
/// stored awaiting the person's own signed anchor.
pub(crate) enum Stored {
    Anchored(PutRecordAnswer),
    AwaitingSignature(PreparedTx),
}

/// What `POST /records/{id}/erase` did: erased, or prepared the person's erasure to sign.
pub(crate) enum Erased {
    Done(EraseAnswer),
    AwaitingSignature(PreparedTx),
}

/// The 202 answer: `body` for `signer` to sign, then to send to `submit_to`.
pub(crate) fn prepared_tx(
    id: &str,
    body: &TxBody,
    signer: &[u8; 32],
    submit_to: String,
) -> PreparedTx {
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

pub(crate) fn decoded_body(b64: &str) -> Option<TxBody> {
    let bytes = Base64::decode_vec(b64).ok()?;
    TxBody::decode(bytes.as_slice()).ok()
}

/// An erasure's reason hash from its optional hex form.
pub(crate) fn reason_hash_of(hex_hash: Option<&str>) -> Result<Vec<u8>, ApiError> {
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

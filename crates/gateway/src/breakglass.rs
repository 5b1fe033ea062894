//! The reason of a break-glass access, kept by the member whose practitioner broke the glass
//! (issue 27, point 6). The ledger holds only its SHA-256 (`AccessEvent.break_glass_reason_hash`);
//! the text stays here, served to whoever may read the patient and checked by them against the
//! proven hash.
//!
//! - `PUT /break-glass/{patient}/{index}/reason` (`text/plain`, UTF-8, at most
//!   [`MAX_REASON_BYTES`]), signed (RFC 9421, or its token) by the practitioner the proven event
//!   names, at the gateway of the event's member: stored durably when SHA-256 of the body equals
//!   the event's `break_glass_reason_hash`. Storing the same text again answers 200; another text
//!   cannot match the hash.
//! - `GET` of the same path, for whoever may read the patient ([`crate::access`]): the text
//!   (`text/plain`), CORS open ([`crate::cors`]) like `GET /records/{id}` so the patient page at another member's
//!   gateway can fetch it.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use medledger_tx::keys;
use medledger_tx::pb::AccessEvent;
use sha2::{Digest, Sha256};

use crate::auth::Authed;
use crate::error::ApiError;
use crate::state::State;

/// The longest reason text stored, in bytes (a few sentences).
pub const MAX_REASON_BYTES: usize = 1024;

/// The proven break-glass event `index` of `patient`: 404 when there is none, 409 when it is an
/// access under a consent.
async fn proven_event(st: &State, patient: &str, index: u64) -> Result<AccessEvent, ApiError> {
    let bytes = st
        .node
        .read(&keys::access_event(patient, index))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("patient {patient} has no access event {index} on the ledger"),
            )
        })?;
    let event = <AccessEvent as prost::Message>::decode(bytes.as_slice())
        .map_err(|e| ApiError::internal(format!("access event does not decode: {e}")))?;
    if !event.break_glass {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("access event {index} of {patient} was made under a consent: it has no break-glass reason"),
        ));
    }
    Ok(event)
}

/// `PUT /break-glass/{patient}/{index}/reason`.
pub(crate) async fn put_reason(
    AxState(st): AxState<Arc<State>>,
    Path((patient, index)): Path<(String, u64)>,
    authed: Authed,
) -> Result<Response, ApiError> {
    if authed.body.len() > MAX_REASON_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the reason is {} bytes; at most {MAX_REASON_BYTES} are kept",
                authed.body.len()
            ),
        ));
    }
    let text = std::str::from_utf8(&authed.body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "the reason is not UTF-8 text"))?;
    let event = proven_event(&st, &patient, index).await?;
    let signer = authed.who.subject.id();
    if signer != event.practitioner {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "only {}, who broke the glass, stores its reason (signed by {signer})",
                event.practitioner
            ),
        ));
    }
    if event.actor != st.member_id {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "the reason is kept by {}'s gateway, not {}'s",
                event.actor, st.member_id
            ),
        ));
    }
    let hash = Sha256::digest(text.as_bytes());
    if hash.as_slice() != event.break_glass_reason_hash.as_slice() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "SHA-256 of this text is {}; the ledger holds {} for access event {index}",
                hex::encode(hash),
                hex::encode(&event.break_glass_reason_hash)
            ),
        ));
    }
    let before = st
        .store
        .reason(&patient, index)
        .map_err(ApiError::internal)?;
    if before.is_some() {
        return Ok(StatusCode::OK.into_response());
    }
    st.store
        .put_reason(&patient, index, text)
        .map_err(ApiError::internal)?;
    Ok(StatusCode::CREATED.into_response())
}

/// `GET /break-glass/{patient}/{index}/reason`.
pub(crate) async fn get_reason(
    AxState(st): AxState<Arc<State>>,
    Path((patient, index)): Path<(String, u64)>,
    authed: Authed,
) -> Result<Response, ApiError> {
    if !crate::access::may_read_patient(&st.node, &st.decisions, &authed.who, &patient).await? {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} may not read patient {patient}", authed.who.subject.id()),
        ));
    }
    let text = st
        .store
        .reason(&patient, index)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!(
                    "{} keeps no reason for access event {index} of {patient}",
                    st.member_id
                ),
            )
        })?;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(r)
}

/// Whether `path` is a reason's (`/break-glass/{patient}/{index}/reason`).
pub(crate) fn is_reason_path(path: &str) -> bool {
    path.starts_with("/break-glass/") && path.ends_with("/reason")
}

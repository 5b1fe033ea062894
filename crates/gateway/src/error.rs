//! The gateway's one error type: every refusal is a JSON [`ErrorBody`] with a status that says
//! why (the FHIR routes answer the same refusals as OperationOutcomes, [`crate::fhir::FhirError`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use medledger_tx::Code;

use crate::api::ErrorBody;
use crate::node::{Committed, NodeError};

#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) body: ErrorBody,
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

    pub(crate) fn gone(record_id: &str, height: u64) -> ApiError {
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

/// A storage service that did not answer (an S3-compatible store that is down or refuses us):
/// carried inside an `io::Error`, so the answer is 503 (try again), not 500.
#[derive(Debug)]
pub(crate) struct StoreUnavailable(pub(crate) String);

impl std::fmt::Display for StoreUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreUnavailable {}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> ApiError {
        let unavailable = e
            .get_ref()
            .is_some_and(|inner| inner.is::<StoreUnavailable>());
        if unavailable {
            return ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("storage: {e}"));
        }
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

    /// An object store that does not answer is "try again" (503); a broken disk stays 500.
    #[test]
    fn a_store_that_does_not_answer_is_503_and_a_broken_disk_500() {
        let down = std::io::Error::other(StoreUnavailable("object store s3://b: timed out".into()));
        let e = ApiError::from(down);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message().contains("timed out"), "{}", e.message());
        let disk = std::io::Error::other("disk full");
        assert_eq!(
            ApiError::from(disk).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

//! The router: every route of the gateway and the layers around them. The handlers live by
//! responsibility: [`crate::records`], [`crate::fhir`], [`crate::pages`], [`crate::live`] and
//! [`crate::auth`].

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State as AxState};
use axum::routing::{get, post, put};
use axum::Router;

use crate::pages;
use crate::records::{anchor_record, erase_record, get_record, put_record, MAX_BODY_BYTES};
use crate::state::State;

/// Every route, with the per-address limit, the metrics, the body limits and CORS for FHIR.
pub(crate) fn router(state: Arc<State>) -> Router {
    let per_ip = state.gate.ip_limiter();
    Router::new()
        .route("/auth/token", post(crate::auth::issue_token))
        .route(
            "/.well-known/smart-configuration",
            get(crate::smart::configuration),
        )
        .route(
            "/records/{id}",
            put(put_record)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .get(get_record),
        )
        .route("/records/{id}/anchor", post(anchor_record))
        .route(
            "/replicas/{id}",
            put(crate::records::custody::put_replica).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .route("/records/{id}/erase", post(erase_record))
        .route(
            "/break-glass/{patient}/{index}/reason",
            put(crate::breakglass::put_reason).get(crate::breakglass::get_reason),
        )
        .route("/admin/reshare", post(crate::records::reshare::reshare))
        .route("/", get(pages::index))
        .route("/patient", get(pages::patient_page))
        .route("/auditor", get(pages::auditor_page))
        .route("/assets/{name}", get(pages::asset))
        .route("/api/info", get(pages::info))
        .route("/pages/release", get(pages::release))
        .route("/pages/manifest", get(pages::manifest))
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
        // An unknown path: an OperationOutcome under /fhir, the empty 404 elsewhere.
        .fallback(crate::fhir::not_found)
        .layer(DefaultBodyLimit::max(crate::auth::MAX_SMALL_BODY_BYTES))
        // CORS (crate::cors): preflights are answered inside the per-address limit (they
        // count), the origin headers are added outside it (a 429 is readable by the page it
        // throttles).
        .layer(axum::middleware::from_fn(crate::cors::preflight))
        .layer(axum::middleware::from_fn_with_state(
            per_ip,
            crate::auth::per_ip_limit,
        ))
        .layer(axum::middleware::from_fn(crate::cors::headers))
        .with_state(state)
}

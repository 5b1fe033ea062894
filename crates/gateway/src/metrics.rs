//! Prometheus metrics (text exposition format, `prometheus-client`): the gateway's own, and a
//! small server the node (`medledger start --metrics ADDR`) uses for its registry.
//!
//! Metrics never feed back into the state machine: they are observed next to it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Label pairs of a metric.
pub type Labels = Vec<(String, String)>;

/// A histogram of seconds from 100 µs to ~6.5 s (17 doubling buckets).
pub fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

/// A family of [`seconds_histogram`]s.
pub type SecondsFamily = Family<Labels, Histogram, fn() -> Histogram>;

/// A new [`SecondsFamily`].
pub fn seconds_family() -> SecondsFamily {
    Family::new_with_constructor(seconds_histogram as fn() -> Histogram)
}

/// A registry shared by the server and whoever records.
pub type SharedRegistry = Arc<Mutex<Registry>>;

/// The registry in the text exposition format.
pub fn render(registry: &SharedRegistry) -> Response {
    let mut out = String::new();
    let ok = registry
        .lock()
        .map(|r| encode(&mut out, &r).is_ok())
        .unwrap_or(false);
    if !ok {
        return (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable").into_response();
    }
    let mut r = Response::new(Body::from(out));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// Serves `GET /metrics` of `registry` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: SharedRegistry,
) -> std::io::Result<()> {
    let app = Router::new()
        .route(
            "/metrics",
            get(|AxState(r): AxState<SharedRegistry>| async move { render(&r) }),
        )
        .with_state(registry);
    axum::serve(listener, app).await
}

/// The gateway's request metrics.
#[derive(Clone)]
pub struct GatewayMetrics {
    /// Its registry (served at the gateway's own `/metrics`).
    pub registry: SharedRegistry,
    requests: Family<Labels, Counter>,
    latency: SecondsFamily,
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        let requests = Family::<Labels, Counter>::default();
        let latency = seconds_family();
        let mut registry = Registry::default();
        registry.register(
            "medledger_gateway_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "medledger_gateway_request_duration_seconds",
            "Time to answer an HTTP request (a record read includes the wait for its access's block), by route and status",
            latency.clone(),
        );
        GatewayMetrics {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
        }
    }
}

/// Middleware: counts and times every request by its route pattern (never the raw path, which
/// would carry record and patient ids into the metrics) and status.
pub async fn track(AxState(m): AxState<GatewayMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = vec![
        ("method".to_string(), method),
        ("route".to_string(), route),
        ("status".to_string(), resp.status().as_u16().to_string()),
    ];
    m.requests.get_or_create(&labels).inc();
    m.latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

//! The patient and auditor pages (built from `web/` and embedded in the binary), what they ask
//! the gateway, and the auditor's downloads.
//!
//! The pages trust proofs, not this gateway: they read state through [`rpc_proxy`] (a verbatim
//! pass-through of a few read-only CometBFT RPC methods plus tx broadcast) and check every
//! answer in the browser against a BLS checkpoint certificate of the consortium named in
//! genesis. A gateway that altered an answer would make the page show "NOT verified"; nothing
//! here needs to be trusted for the page's "verified", which is why this module stays thin.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use include_dir::{include_dir, Dir};
use serde::Serialize;

use crate::server::State;

/// The built pages (`npm run build` in `web/`; committed so that building the gateway needs no
/// Node.js). `npm run check-dist` checks the committed files are what the sources build.
static DIST: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../web/dist");

/// The CometBFT RPC methods a page may call through the gateway. All read-only except the two
/// broadcasts, which carry txs the patient signed in the browser: the gateway adds no authority.
pub const RPC_METHODS: &[&str] = &[
    "abci_query",
    "genesis",
    "status",
    "broadcast_tx_sync",
    "broadcast_tx_commit",
    "tx",
];

/// Largest query string forwarded (a tx of at most 64 KiB in hex, plus the rest).
const MAX_RPC_QUERY: usize = 140 * 1024;

/// Largest node answer relayed (a 1 MiB value in base64 with its proof fits).
const MAX_RPC_ANSWER: usize = 4 * 1024 * 1024;

/// `GET /api/info`: what the page needs to find the ledger.
#[derive(Serialize)]
pub struct Info {
    /// The chain the gateway's node runs.
    pub chain_id: String,
    /// The member this gateway serves.
    pub member_id: String,
    /// CometBFT's event subscription endpoint (the node's `/websocket`), for live updates.
    pub rpc_websocket: String,
    /// This gateway's public base URL.
    pub gateway: String,
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff2" => "font/woff2",
        "ico" => "image/x-icon",
        "map" => "application/json",
        _ => "application/octet-stream",
    }
}

fn file(path: &str) -> Response {
    match DIST.get_file(path) {
        Some(f) => {
            let mut r = Response::new(Body::from(f.contents()));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            );
            // Everything the page runs is here: no CDN, no inline script from elsewhere.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
                     style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; \
                     frame-ancestors 'none'",
                ),
            );
            h.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => (StatusCode::NOT_FOUND, format!("no page {path}")).into_response(),
    }
}

pub(crate) async fn index() -> Redirect {
    Redirect::to("/patient")
}

pub(crate) async fn patient_page() -> Response {
    file("patient.html")
}

pub(crate) async fn auditor_page() -> Response {
    file("auditor.html")
}

pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    // Flat names only: `include_dir` has no `..`, but say so plainly.
    if name.contains('/') || name.contains("..") {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    file(&format!("assets/{name}"))
}

pub(crate) async fn info(AxState(st): AxState<Arc<State>>) -> Json<Info> {
    Json(Info {
        chain_id: st.node.chain_id().to_string(),
        member_id: st.member_id.clone(),
        rpc_websocket: st.rpc_websocket.clone(),
        gateway: st.public_url.clone(),
    })
}

/// The node's `/websocket` for an RPC URL (`http://h:p` → `ws://h:p/websocket`).
pub fn websocket_url(rpc: &str) -> String {
    let base = rpc.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_string()
    };
    format!("{base}/websocket")
}

/// `GET /rpc/{method}?…`: forwards to the node and relays its answer byte for byte.
pub(crate) async fn rpc_proxy(
    AxState(st): AxState<Arc<State>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if !RPC_METHODS.contains(&method.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": format!("RPC method {:?} is not offered here; offered: {}",
                    method.chars().take(40).collect::<String>(), RPC_METHODS.join(", "))
            })),
        )
            .into_response();
    }
    let query = query.unwrap_or_default();
    if query.len() > MAX_RPC_QUERY {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(serde_json::json!({
                "error": format!("the query string is over {MAX_RPC_QUERY} bytes")
            })),
        )
            .into_response();
    }
    let mut last = String::from("no node configured");
    for base in &st.node_urls {
        let url = if query.is_empty() {
            format!("{}/{method}", base.trim_end_matches('/'))
        } else {
            format!("{}/{method}?{query}", base.trim_end_matches('/'))
        };
        match relay(&st.http, &url).await {
            Ok(r) => return r,
            Err(e) => last = e,
        }
    }
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "error": format!("node unreachable: {last}") })),
    )
        .into_response()
}

async fn relay(http: &reqwest::Client, url: &str) -> Result<Response, String> {
    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if r.content_length()
        .is_some_and(|n| n > MAX_RPC_ANSWER as u64)
    {
        return Ok((StatusCode::BAD_GATEWAY, "the node's answer is too large").into_response());
    }
    let body = r.bytes().await.map_err(|e| e.to_string())?;
    if body.len() > MAX_RPC_ANSWER {
        return Ok((StatusCode::BAD_GATEWAY, "the node's answer is too large").into_response());
    }
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_is_the_nodes_own() {
        assert_eq!(
            websocket_url("http://127.0.0.1:26657/"),
            "ws://127.0.0.1:26657/websocket"
        );
        assert_eq!(
            websocket_url("https://node.example:443"),
            "wss://node.example:443/websocket"
        );
    }

    #[test]
    fn assets_get_their_types() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("patient.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}

//! The patient and auditor pages (built from `web/` and embedded in the binary), what they ask
//! the gateway, and the auditor's downloads.
//!
//! The pages trust proofs, not this gateway: they read state through [`rpc_proxy`] (a relay of
//! proven state reads and tx broadcast, each checked against who asks) and check every answer in
//! the browser against a BLS checkpoint certificate of the consortium named in genesis. A gateway
//! that altered an answer would make the page show "NOT verified"; nothing here needs to be
//! trusted for the page's "verified", which is why this module stays thin. What it decides is
//! who may read: the pages sign in (`POST /auth/token`) and send their bearer token.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Path, RawQuery, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use include_dir::{include_dir, Dir};
use serde::Serialize;

use crate::access;
use crate::auth::Authed;
use crate::state::State;

/// The built pages (`npm run build` in `web/`; committed so that building the gateway needs no
/// Node.js). `npm run check-dist` checks the committed files are what the sources build.
static DIST: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../web/dist");

/// The CometBFT RPC methods a page may call through the gateway, and who may:
/// - `genesis`, `status`: anyone (the consortium's public trust root and height);
/// - `abci_query`: an authenticated requester ([`crate::auth`]), for state keys it may read
///   ([`crate::access`]); the node's proof comes back untouched, for the page to verify;
/// - `broadcast_tx_sync`, `broadcast_tx_commit`: a tx signed by a key the ledger knows (or a
///   key recovery), rate limited per signer. The gateway adds no authority.
///
/// The tx index (`tx`, `tx_search`) and the node's WebSocket are not relayed: they answer
/// every tx of every patient to whoever asks.
pub const RPC_METHODS: &[&str] = &[
    "abci_query",
    "genesis",
    "status",
    "broadcast_tx_sync",
    "broadcast_tx_commit",
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
                    "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
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
        gateway: st.public_url.clone(),
    })
}

/// `GET /rpc/{method}?…`: checks who asks for what, then forwards to the node and relays its
/// answer byte for byte.
pub(crate) async fn rpc_proxy(
    AxState(st): AxState<Arc<State>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let refuse = |status: StatusCode, msg: String| {
        let mut r = (status, Json(serde_json::json!({ "error": msg }))).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    };
    if !RPC_METHODS.contains(&method.as_str()) {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "RPC method {:?} is not offered here; offered: {}",
                method.chars().take(40).collect::<String>(),
                RPC_METHODS.join(", ")
            ),
        );
    }
    let query = query.unwrap_or_default();
    if query.len() > MAX_RPC_QUERY {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the query string is over {MAX_RPC_QUERY} bytes"),
        );
    }
    let params: Vec<(String, String)> = match serde_urlencoded::from_str(&query) {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("bad query string: {e}")),
    };
    // Forward exactly what was checked: the query is rebuilt from the parsed parameters.
    let forwarded = match method.as_str() {
        "genesis" | "status" => String::new(),
        "abci_query" => {
            let Authed { who, .. } = match Authed::from_request(request, &st).await {
                Ok(a) => a,
                Err(e) => return e.into_response(),
            };
            let q = match AbciQuery::parse(&params) {
                Ok(q) => q,
                Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
            };
            match access::may_read_key(&st.node, &st.decisions, &who, &q.key).await {
                Ok(true) => {}
                Ok(false) => {
                    return refuse(
                        StatusCode::FORBIDDEN,
                        format!(
                            "{} {} may not read {}",
                            who.subject.kind(),
                            who.subject.id(),
                            String::from_utf8_lossy(&q.key)
                                .chars()
                                .take(120)
                                .collect::<String>()
                        ),
                    )
                }
                Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            }
            q.forward()
        }
        _ => {
            let tx = match one_param(&params, "tx").and_then(|t| decode_hex_param(t, "tx")) {
                Ok(t) => t,
                Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
            };
            if let Err((status, e)) = broadcast_allowed(&st, &tx).await {
                return refuse(status, e);
            }
            format!("tx=0x{}", hex::encode(&tx))
        }
    };
    let mut last = String::from("no node configured");
    for base in &st.node_urls {
        let url = if forwarded.is_empty() {
            format!("{}/{method}", base.trim_end_matches('/'))
        } else {
            format!("{}/{method}?{forwarded}", base.trim_end_matches('/'))
        };
        match relay(&st.http, &url).await {
            Ok(r) => return r,
            Err(e) => last = e,
        }
    }
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("node unreachable: {last}"),
    )
}

/// The one value of parameter `name`.
fn one_param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, String> {
    let mut it = params.iter().filter(|(k, _)| k == name);
    match (it.next(), it.next()) {
        (Some((_, v)), None) => Ok(v),
        (None, _) => Err(format!("the {name} parameter is required")),
        _ => Err(format!("the {name} parameter is given more than once")),
    }
}

/// `0x…` hex (CometBFT's URI form for bytes), optionally quoted.
fn decode_hex_param(v: &str, name: &str) -> Result<Vec<u8>, String> {
    let v = v.trim_matches('"');
    let h = v
        .strip_prefix("0x")
        .ok_or_else(|| format!("{name} must be 0x-prefixed hex"))?;
    hex::decode(h).map_err(|e| format!("{name}: {e}"))
}

/// An `abci_query` the relay accepts: the proven store path only.
struct AbciQuery {
    key: Vec<u8>,
    height: u64,
    prove: bool,
}

impl AbciQuery {
    fn parse(params: &[(String, String)]) -> Result<AbciQuery, String> {
        for (k, _) in params {
            if !matches!(k.as_str(), "path" | "data" | "height" | "prove") {
                return Err(format!(
                    "abci_query parameter {:?} is not relayed",
                    k.chars().take(40).collect::<String>()
                ));
            }
        }
        if one_param(params, "path")?.trim_matches('"') != "/store" {
            return Err("only path \"/store\" (proven state reads) is relayed".into());
        }
        let key = decode_hex_param(one_param(params, "data")?, "data")?;
        let height = match one_param(params, "height") {
            Ok(h) => h
                .trim_matches('"')
                .parse()
                .map_err(|_| "height must be a number".to_string())?,
            Err(_) => 0,
        };
        let prove = match one_param(params, "prove") {
            Ok(p) => p.trim_matches('"') == "true",
            Err(_) => false,
        };
        Ok(AbciQuery { key, height, prove })
    }

    fn forward(&self) -> String {
        format!(
            "path=%22/store%22&data=0x{}&height={}&prove={}",
            hex::encode(&self.key),
            self.height,
            self.prove
        )
    }
}

/// A relayed tx must be signed by a key the ledger knows (a patient, member or practitioner),
/// or be a key recovery (signed by the new key, checked by the ledger against the guardians),
/// and its signer must be within its rate.
async fn broadcast_allowed(st: &State, tx: &[u8]) -> Result<(), (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let tx = medledger_tx::decode_tx(tx)
        .and_then(|t| t.verify())
        .map_err(|e| bad(format!("not a signed medledger tx: {e}")))?;
    let signer = *tx.signer();
    let recovery = matches!(
        tx.body().msg,
        Some(medledger_tx::pb::tx_body::Msg::RecoverPatientKey(_))
    );
    if !recovery {
        let known = st
            .gate
            .subject(&st.node, &signer)
            .await
            .map_err(|e| {
                let (status, body) = e.parts();
                (status, body.error)
            })?
            .is_some();
        if !known {
            return Err((
                StatusCode::FORBIDDEN,
                "the tx's signer has no role on the ledger; the gateway relays txs of known keys only"
                    .into(),
            ));
        }
    }
    if !st.gate.broadcast_allowed(&signer) {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            "this signer sends txs faster than the gateway relays for one key; retry shortly"
                .into(),
        ));
    }
    Ok(())
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
    fn assets_get_their_types() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("patient.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}

//! The patient and auditor pages (built from `web/` and embedded in the binary), what they ask
//! the gateway, and the auditor's downloads.
//!
//! The pages trust proofs, not this gateway: they read state through [`rpc_proxy`] (a relay of
//! proven state reads and tx broadcast, each checked against who asks) and check every answer in
//! the browser against a BLS checkpoint certificate of the consortium named in genesis. A gateway
//! that altered an answer would make the page show "NOT verified"; nothing here needs to be
//! trusted for the page's "verified", which is why this module stays thin. What it decides is
//! who may read: the pages sign in (`POST /auth/token`) and send their bearer token.
//!
//! What the page's code is, though, must be trusted: a gateway serving other code could take the
//! patient's key. So the code is a consortium decision (docs/privacy.md, "Code trust"): the
//! release hash of the bundle (the SHA-256 of its manifest, [`medledger_tx::rules::web_release`])
//! is approved on chain (`params/web-release`, a SetWebRelease proposal), and this gateway
//! serves its pages only while the bundle it embeds is that release ([`release`], read with a
//! proof and kept [`RELEASE_FRESH`]); otherwise they answer 503 naming both hashes. Anyone can
//! recompute a gateway's release hash from `GET /pages/manifest` and the files it serves
//! (`medledger web check URL`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Path, RawQuery, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use include_dir::{include_dir, Dir};
use medledger_tx::keys;
use medledger_tx::pb::WebRelease;
use medledger_tx::rules::web_release::{self, ManifestEntry};
use serde::{Deserialize, Serialize};

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

/// The bundle this binary embeds: its manifest, the manifest's bytes and its release hash.
#[derive(Debug)]
pub struct Bundle {
    /// Every file, sorted by path.
    pub manifest: Vec<ManifestEntry>,
    /// The manifest's bytes (what `GET /pages/manifest` answers).
    pub manifest_bytes: Vec<u8>,
    /// SHA-256 of `manifest_bytes`.
    pub hash: [u8; 32],
}

/// The embedded bundle, computed once. An error (a file name the manifest cannot carry) is a
/// build defect, caught by this module's tests.
pub fn bundle() -> Result<&'static Bundle, String> {
    static BUNDLE: OnceLock<Result<Bundle, String>> = OnceLock::new();
    BUNDLE
        .get_or_init(|| {
            let mut files = Vec::new();
            collect(&DIST, &mut files)?;
            let manifest = web_release::manifest(files)?;
            Ok(Bundle {
                manifest_bytes: web_release::manifest_bytes(&manifest),
                hash: web_release::release_hash(&manifest),
                manifest,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<(&'a str, &'a [u8])>) -> Result<(), String> {
    for f in dir.files() {
        let path = f
            .path()
            .to_str()
            .ok_or_else(|| format!("{} is not UTF-8", f.path().display()))?;
        out.push((path, f.contents()));
    }
    for d in dir.dirs() {
        collect(d, out)?;
    }
    Ok(())
}

/// The route that serves the bundle's file `path`: `patient.html` at `/patient`,
/// `auditor.html` at `/auditor`, `assets/{name}` at `/assets/{name}`; `None` for any other.
pub fn route_of(path: &str) -> Option<String> {
    match path {
        "patient.html" => Some("/patient".into()),
        "auditor.html" => Some("/auditor".into()),
        _ => path
            .strip_prefix("assets/")
            .filter(|n| !n.is_empty() && !n.contains('/'))
            .map(|n| format!("/assets/{n}")),
    }
}

/// How long a proven read of the approved release is reused: the pages cost no proof per request,
/// and a newly approved release reaches every gateway within seconds.
pub const RELEASE_FRESH: Duration = Duration::from_secs(3);

/// `GET /pages/release`: the release this gateway serves and the one approved on chain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReleaseStatus {
    /// `approved` (served = approved: the pages are served), `mismatch` (the pages answer 503),
    /// `not_approved` (no release is approved on chain: the pages are served, saying so) or
    /// `unknown` (the chain could not be read: the pages are served, saying so).
    pub status: String,
    /// The release hash of the bundle this gateway embeds, hex.
    pub served: String,
    /// The approved release hash (`params/web-release`), hex; absent when none or unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved: Option<String>,
    /// The approved release's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The block that approved it (0: genesis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// The proposal that approved it (0: genesis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal_id: Option<u64>,
    /// The same in words.
    pub message: String,
}

impl ReleaseStatus {
    fn of(served: &[u8; 32], approved: &Result<Option<WebRelease>, String>) -> ReleaseStatus {
        let served = hex::encode(served);
        let mut s = ReleaseStatus {
            status: String::new(),
            served: served.clone(),
            approved: None,
            version: None,
            height: None,
            proposal_id: None,
            message: String::new(),
        };
        match approved {
            Err(e) => {
                s.status = "unknown".into();
                s.message = format!(
                    "these pages are release {served}; the release approved on chain could not be                      read ({e})"
                );
            }
            Ok(None) => {
                s.status = "not_approved".into();
                s.message = format!(
                    "these pages are release {served}, which is not approved on chain: the                      consortium has approved no release of the pages yet"
                );
            }
            Ok(Some(w)) => {
                let approved = hex::encode(&w.bundle_sha256);
                let same = approved == served;
                s.status = if same { "approved" } else { "mismatch" }.into();
                s.message = if same {
                    format!(
                        "these pages are release {served} ({}), approved on chain at height {}",
                        w.version, w.height
                    )
                } else {
                    format!(
                        "this gateway's pages are release {served}, but the release approved on                          chain is {approved} ({}, height {}): the gateway does not serve them.                          Its operator must install the approved release",
                        w.version, w.height
                    )
                };
                s.approved = Some(approved);
                s.version = Some(w.version.clone());
                s.height = Some(w.height);
                s.proposal_id = Some(w.proposal_id);
            }
        }
        s
    }
}

type ReleaseCache = BTreeMap<String, (Instant, Result<Option<WebRelease>, String>)>;

/// The approved release, read with a proof at most every [`RELEASE_FRESH`] per ledger (one
/// read at a time: requests arriving meanwhile wait for it and share it).
async fn approved_release(st: &State) -> Result<Option<WebRelease>, String> {
    static CACHE: OnceLock<tokio::sync::Mutex<ReleaseCache>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().await;
    let ledger = format!("{}|{}", st.node.chain_id(), st.node_urls.join(","));
    if let Some((at, v)) = cache.get(&ledger) {
        if at.elapsed() < RELEASE_FRESH {
            return v.clone();
        }
    }
    let v = st
        .node
        .read_msg::<WebRelease>(&keys::web_release())
        .await
        .map_err(|e| e.to_string());
    cache.insert(ledger, (Instant::now(), v.clone()));
    v
}

/// What this gateway serves against what the chain approves.
pub(crate) async fn release_status(st: &State) -> ReleaseStatus {
    match bundle() {
        Ok(b) => ReleaseStatus::of(&b.hash, &approved_release(st).await),
        Err(e) => ReleaseStatus {
            status: "unknown".into(),
            served: String::new(),
            approved: None,
            version: None,
            height: None,
            proposal_id: None,
            message: format!("the embedded pages have no manifest: {e}"),
        },
    }
}

/// `GET /pages/release`.
pub(crate) async fn release(AxState(st): AxState<Arc<State>>) -> Response {
    let mut r = Json(release_status(&st).await).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /pages/manifest`: the embedded bundle's manifest, byte for byte (its SHA-256 is the
/// release hash).
pub(crate) async fn manifest() -> Response {
    match bundle() {
        Ok(b) => {
            let mut r = Response::new(Body::from(b.manifest_bytes.clone()));
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// A page file, unless the chain approves another release (503, naming both).
async fn approved_file(st: &State, path: &str) -> Response {
    let s = release_status(st).await;
    if s.status == "mismatch" {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, s.message).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return r;
    }
    file(path)
}

/// What `medledger web check` found at a gateway: the manifest it serves (its hash is the
/// served release), the release status it reports, and every file whose served bytes differ
/// from its manifest line or that could not be fetched.
#[derive(Debug)]
pub struct Served {
    /// The served manifest, parsed.
    pub manifest: Vec<ManifestEntry>,
    /// SHA-256 of the served manifest's bytes.
    pub hash: [u8; 32],
    /// `GET /pages/release` as the gateway answered it (`None` if it did not).
    pub status: Option<ReleaseStatus>,
    /// `(path, what is wrong)` for each file not served as its manifest line says.
    pub problems: Vec<(String, String)>,
}

/// Largest manifest `fetch_served` accepts.
const MAX_MANIFEST_BYTES: usize =
    medledger_tx::limits::MAX_RELEASE_FILES * (web_release::MAX_RELEASE_PATH_LEN + 66);

/// Fetches the manifest a gateway at `base` serves and every file it lists, at the route a
/// browser loads it from ([`route_of`]), and hashes each.
pub async fn fetch_served(base: &str) -> Result<Served, String> {
    use sha2::Digest;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let base = base.trim_end_matches('/');
    let (status, bytes) = get_limited(&http, &format!("{base}/pages/manifest"), MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| format!("GET {base}/pages/manifest: {e}"))?;
    if status != 200 {
        return Err(format!(
            "GET {base}/pages/manifest answered {status}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(300)
                .collect::<String>()
        ));
    }
    let manifest = web_release::parse_manifest(&bytes)?;
    let hash = sha2::Sha256::digest(&bytes).into();
    let status = match get_limited(&http, &format!("{base}/pages/release"), 64 * 1024).await {
        Ok((200, b)) => serde_json::from_slice(&b).ok(),
        _ => None,
    };
    let mut problems = Vec::new();
    for e in &manifest {
        let Some(route) = route_of(&e.path) else {
            problems.push((e.path.clone(), "no route serves this file".into()));
            continue;
        };
        let url = format!("{base}{route}");
        match get_limited(&http, &url, medledger_tx::limits::MAX_RELEASE_FILE_BYTES).await {
            Ok((200, body)) => {
                let got: [u8; 32] = sha2::Sha256::digest(&body).into();
                if got != e.sha256 {
                    problems.push((
                        e.path.clone(),
                        format!(
                            "GET {route} served bytes with SHA-256 {}, the manifest says {}",
                            hex::encode(got),
                            hex::encode(e.sha256)
                        ),
                    ));
                }
            }
            Ok((status, body)) => problems.push((
                e.path.clone(),
                format!(
                    "GET {route} answered {status}: {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ),
            )),
            Err(err) => problems.push((e.path.clone(), format!("GET {route}: {err}"))),
        }
    }
    Ok(Served {
        manifest,
        hash,
        status,
        problems,
    })
}

/// GET `url`: its status and body, refusing a body over `max` bytes.
async fn get_limited(
    http: &reqwest::Client,
    url: &str,
    max: usize,
) -> Result<(u16, Vec<u8>), String> {
    let mut r = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is over {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
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
            // Everything the page runs is here: no CDN, no inline script from elsewhere. The
            // patient page asks the other gateways keeping a record for their key shares, so
            // connections may go to http(s) origins; each page's own CSP (its <meta>, in the
            // approved release) narrows it: the auditor page's to 'self'.
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; connect-src 'self' https: http:; img-src 'self' data:; \
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

pub(crate) async fn patient_page(AxState(st): AxState<Arc<State>>) -> Response {
    approved_file(&st, "patient.html").await
}

pub(crate) async fn auditor_page(AxState(st): AxState<Arc<State>>) -> Response {
    approved_file(&st, "auditor.html").await
}

pub(crate) async fn asset(AxState(st): AxState<Arc<State>>, Path(name): Path<String>) -> Response {
    // Flat names only: `include_dir` has no `..`, but say so plainly.
    if name.contains('/') || name.contains("..") {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    if DIST.get_file(format!("assets/{name}")).is_none() {
        return file(&format!("assets/{name}"));
    }
    approved_file(&st, &format!("assets/{name}")).await
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_embedded_file_is_in_the_manifest_and_has_a_route() {
        let b = bundle().unwrap();
        assert!(b.manifest.iter().any(|e| e.path == "patient.html"));
        assert!(b.manifest.iter().any(|e| e.path == "assets/patient.js"));
        for e in &b.manifest {
            assert!(route_of(&e.path).is_some(), "{} has no route", e.path);
        }
        assert_eq!(
            web_release::parse_manifest(&b.manifest_bytes).unwrap(),
            b.manifest
        );
        assert_eq!(route_of("assets/a/b.js"), None);
        assert_eq!(route_of("x.html"), None);
    }

    #[test]
    fn the_status_names_both_hashes_on_a_mismatch() {
        let release = |hash: [u8; 32]| {
            Ok(Some(WebRelease {
                bundle_sha256: hash.to_vec(),
                version: "v2".into(),
                height: 9,
                proposal_id: 3,
            }))
        };
        let s = ReleaseStatus::of(&[1; 32], &release([1; 32]));
        assert_eq!(s.status, "approved");
        let s = ReleaseStatus::of(&[1; 32], &release([2; 32]));
        assert_eq!(s.status, "mismatch");
        assert!(s.message.contains(&hex::encode([1; 32])), "{}", s.message);
        assert!(s.message.contains(&hex::encode([2; 32])), "{}", s.message);
        assert_eq!(
            ReleaseStatus::of(&[1; 32], &Ok(None)).status,
            "not_approved"
        );
        assert_eq!(
            ReleaseStatus::of(&[1; 32], &Err("down".into())).status,
            "unknown"
        );
    }

    #[test]
    fn assets_get_their_types() {
        assert_eq!(content_type("a/b.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("patient.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}

//! SMART Backend Services (SMART App Launch v2, "Backend Services"): an EHR backend gets a
//! bearer token with an OAuth 2.0 `client_credentials` grant, authenticating with a
//! `private_key_jwt` client assertion (RFC 7523) signed by the key its member registered on
//! chain (`RegisterSmartClient`, `smart-client/{client id}`). The token acts as the member or
//! practitioner the client is registered for, limited to the granted scopes, which
//! [`crate::auth::FhirAuthed`] enforces per FHIR route ([`route_need`]).
//!
//! Order against abuse: the form and the assertion's shape, `aud`, `exp` and size are checked
//! first (CPU only, no lookup); then the client is read from the chain with a proof (cached
//! for a moment, unfamiliar ids throttled); then `alg` and `kid` must match the registered key;
//! only then is the signature verified, and only a verified assertion's `jti` is remembered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64ct::{Base64UrlUnpadded, Encoding};
use medledger_tx::check::smart::{Perms, SmartScope};
use medledger_tx::keys;
use medledger_tx::limits::MAX_SMART_SCOPES;
use medledger_tx::pb::{Practitioner, PractitionerRole, SmartClient, SmartKeyAlg};
use medledger_vault::httpsig::NonceCache;
use medledger_vault::HttpSigError;
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::auth::{Requester, Subject};
use crate::client::now_secs;
use crate::state::State;

/// The `grant_type` of SMART Backend Services.
pub const GRANT_TYPE: &str = "client_credentials";
/// The `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The largest form body `POST /auth/token` takes (an RS384 assertion with a 4096-bit key is
/// about 1 KiB; the rest of the form is small).
pub const MAX_FORM_BYTES: usize = 8 * 1024;
/// The largest client assertion (a compact JWS).
pub const MAX_ASSERTION_LEN: usize = 4 * 1024;
/// The furthest ahead an assertion's `exp` may be (SMART: no more than five minutes).
pub const MAX_ASSERTION_LIFETIME_SECS: u64 = 300;
/// How long a SMART access token lives (SMART: no more than five minutes is recommended).
pub const SMART_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Longest `jti` remembered.
pub const MAX_JTI_LEN: usize = 256;
/// The most assertion ids remembered in all, and per client.
const MAX_JTIS: usize = 100_000;
const JTIS_PER_CLIENT: usize = 4_096;
/// How long a client read from the chain is reused.
const CLIENT_TTL: Duration = Duration::from_secs(2);
/// The most clients remembered (cleared when full).
const MAX_CLIENTS: usize = 10_000;

/// What a SMART token was granted: the client and its scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The OAuth client id.
    pub client_id: String,
    /// The granted scopes.
    pub scopes: Vec<SmartScope>,
}

impl Grant {
    /// Whether the grant allows `perm` on `resource`.
    pub fn permits(&self, resource: &str, perm: Perms) -> bool {
        let mut have = Perms::default();
        for s in &self.scopes {
            have = have.union(s.on(resource));
        }
        perm.within(have)
    }

    /// The granted scopes, space-separated, in SMART v2 letters.
    pub fn scope_string(&self) -> String {
        self.scopes
            .iter()
            .map(|s| format!("system/{}.{}", s.resource, s.perms.letters()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What a FHIR route needs: the resource type and the permission (`None`: nothing a scope
/// grants, e.g. the CapabilityStatement, which needs no authentication).
pub fn route_need(method: &Method, path: &str) -> Option<(String, Perms)> {
    let rest = path.strip_prefix("/fhir/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let resource = (*parts.first()?).to_string();
    if resource == "metadata" {
        return None;
    }
    let operation = parts.iter().any(|p| p.starts_with('$'));
    let perm = match *method {
        Method::GET | Method::HEAD if parts.len() == 1 => Perms::SEARCH,
        Method::GET | Method::HEAD => Perms::READ,
        Method::POST if operation || parts.len() == 1 => Perms::CREATE,
        Method::PUT | Method::PATCH => Perms::UPDATE,
        Method::DELETE => Perms::DELETE,
        // Anything else (a POST to an instance): a write of every kind.
        _ => Perms::CREATE.union(Perms::UPDATE),
    };
    Some((resource, perm))
}

/// The routes of SMART: `/.well-known/smart-configuration` (the token endpoint is
/// `POST /auth/token`, shared with the signed-request flow in [`crate::auth`]).
pub(crate) async fn configuration(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
) -> Response {
    let body = json!({
        "issuer": st.public_url,
        "token_endpoint": token_url(&st.public_url),
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES384", "RS384"],
        "grant_types_supported": [GRANT_TYPE],
        "scopes_supported": scopes_supported(),
        "response_types_supported": ["token"],
        "capabilities": ["client-confidential-asymmetric"],
        "code_challenge_methods_supported": [],
    });
    let mut r = Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    r
}

/// The scopes this gateway serves (a registered client may hold others; they grant nothing
/// here).
pub fn scopes_supported() -> Vec<String> {
    let mut v = Vec::new();
    for r in [
        "Consent",
        "AuditEvent",
        "Claim",
        "ClaimResponse",
        "DocumentReference",
        "Patient",
        "*",
    ] {
        for p in ["read", "write", "rs", "cud", "*"] {
            v.push(format!("system/{r}.{p}"));
        }
    }
    v
}

/// The token endpoint's URL, the `aud` an assertion must name.
pub fn token_url(public_url: &str) -> String {
    format!("{}/auth/token", public_url.trim_end_matches('/'))
}

/// An RFC 6749 §5.2 error.
#[derive(Debug, PartialEq, Eq)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, d: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            error,
            description: d.into(),
        }
    }
    fn request(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    fn client(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }
    fn scope(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }
    fn grant(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }
    fn unavailable(d: impl Into<String>) -> OAuthError {
        OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            d,
        )
    }
    fn throttled(d: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::TOO_MANY_REQUESTS, "temporarily_unavailable", d)
    }
    /// The error code (`invalid_client`, ...).
    #[cfg(test)]
    pub fn error(&self) -> &'static str {
        self.error
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response();
        no_store(r.headers_mut());
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The RFC 6749 §5.1 answer.
#[derive(Serialize)]
struct SmartTokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
}

/// The form of a token request, each parameter at most once (RFC 6749 §3.2).
fn form(body: &[u8]) -> Result<BTreeMap<String, String>, OAuthError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| OAuthError::request(format!("the body is not a form: {e}")))?;
    let mut m = BTreeMap::new();
    for (k, v) in pairs {
        if m.contains_key(&k) {
            return Err(OAuthError::request(format!("{k} is given more than once")));
        }
        m.insert(k, v);
    }
    Ok(m)
}

fn param<'a>(f: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    f.get(name)
        .map(String::as_str)
        .ok_or_else(|| OAuthError::request(format!("{name} is missing")))
}

/// A client assertion, decoded but not yet verified.
#[derive(Debug)]
struct Assertion {
    alg: String,
    kid: String,
    iss: String,
    jti: String,
    exp: u64,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn b64_json(part: &str, what: &str) -> Result<Value, OAuthError> {
    let bytes = Base64UrlUnpadded::decode_vec(part)
        .map_err(|_| OAuthError::client(format!("the assertion's {what} is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| OAuthError::client(format!("the assertion's {what} is not a JSON object")))
}

fn str_claim(v: &Value, name: &str) -> Result<String, OAuthError> {
    v[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| OAuthError::client(format!("the assertion has no {name} string")))
}

/// Decodes a compact JWS and checks what needs no lookup: size, `alg`, `iss` = `sub` (and the
/// form's `client_id`, if given), `aud`, `exp` in (now, now + 5 min] and `jti`.
fn decode(
    jwt: &str,
    aud: &str,
    client_id: Option<&str>,
    now: u64,
) -> Result<Assertion, OAuthError> {
    if jwt.len() > MAX_ASSERTION_LEN {
        return Err(OAuthError::client(format!(
            "the assertion is {} bytes; the limit is {MAX_ASSERTION_LEN}",
            jwt.len()
        )));
    }
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OAuthError::client(
            "the assertion is not a compact JWS (header.payload.signature)",
        ));
    };
    let header = b64_json(h, "header")?;
    let claims = b64_json(p, "payload")?;
    let alg = str_claim(&header, "alg")?;
    if alg != "ES384" && alg != "RS384" {
        return Err(OAuthError::client(format!(
            "alg {alg:?} is not accepted: sign with ES384 or RS384"
        )));
    }
    let kid = str_claim(&header, "kid")?;
    let iss = str_claim(&claims, "iss")?;
    if claims["sub"].as_str() != Some(iss.as_str()) {
        return Err(OAuthError::client(
            "the assertion's sub must equal its iss (the client id)",
        ));
    }
    if client_id.is_some_and(|c| c != iss) {
        return Err(OAuthError::client(
            "client_id differs from the assertion's iss",
        ));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == aud,
        Value::Array(list) => list.len() <= 8 && list.iter().any(|a| a.as_str() == Some(aud)),
        _ => false,
    };
    if !aud_ok {
        return Err(OAuthError::client(format!(
            "the assertion's aud must be this token endpoint, {aud}"
        )));
    }
    let exp = claims["exp"]
        .as_u64()
        .ok_or_else(|| OAuthError::client("the assertion has no exp (integer seconds)"))?;
    if exp <= now {
        return Err(OAuthError::client("the assertion expired (exp is past)"));
    }
    if exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(OAuthError::client(format!(
            "the assertion's exp is more than {MAX_ASSERTION_LIFETIME_SECS} s ahead"
        )));
    }
    let jti = str_claim(&claims, "jti")?;
    if jti.is_empty()
        || jti.len() > MAX_JTI_LEN
        || !jti
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(OAuthError::client(format!(
            "jti: give a unique id of 1 to {MAX_JTI_LEN} printable ASCII characters"
        )));
    }
    let signature = Base64UrlUnpadded::decode_vec(s)
        .map_err(|_| OAuthError::client("the assertion's signature is not base64url"))?;
    Ok(Assertion {
        alg,
        kid,
        iss,
        jti,
        exp,
        signing_input: format!("{h}.{p}").into_bytes(),
        signature,
    })
}

/// Verifies the assertion's signature with the registered key (whose `alg` and `kid` it must
/// name).
fn verify(a: &Assertion, c: &SmartClient) -> Result<(), OAuthError> {
    let registered = match SmartKeyAlg::try_from(c.alg) {
        Ok(SmartKeyAlg::Es384) => "ES384",
        Ok(SmartKeyAlg::Rs384) => "RS384",
        _ => return Err(OAuthError::client("the registered key has no algorithm")),
    };
    if a.alg != registered {
        return Err(OAuthError::client(format!(
            "the assertion is signed with {}; client {} is registered with an {registered} key",
            a.alg, c.client_id
        )));
    }
    if a.kid != c.kid {
        return Err(OAuthError::client(format!(
            "kid {:?} is not the registered key's kid",
            a.kid
        )));
    }
    let bad =
        || OAuthError::client("the assertion's signature does not verify with the registered key");
    if registered == "ES384" {
        use p384::ecdsa::signature::Verifier;
        let vk = p384::ecdsa::VerifyingKey::from_sec1_bytes(&c.ec_point).map_err(|_| bad())?;
        let sig = p384::ecdsa::Signature::from_slice(&a.signature).map_err(|_| bad())?;
        vk.verify(&a.signing_input, &sig).map_err(|_| bad())
    } else {
        use rsa::signature::Verifier;
        let n = rsa::BoxedUint::from_be_slice_vartime(&c.rsa_n);
        let e = rsa::BoxedUint::from_be_slice_vartime(&c.rsa_e);
        let key = rsa::PublicKey::new(n, e).map_err(|_| bad())?;
        let vk = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha384>::new(key);
        let sig = rsa::pkcs1v15::Signature::try_from(a.signature.as_slice()).map_err(|_| bad())?;
        vk.verify(&a.signing_input, &sig).map_err(|_| bad())
    }
}

/// The granted scopes: each requested scope, narrowed to what the registered ones allow on its
/// resource; those left with nothing are dropped. Nothing left at all is `invalid_scope`.
fn grant_scopes(requested: &str, registered: &[String]) -> Result<Vec<SmartScope>, OAuthError> {
    let asked: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
    if asked.is_empty() {
        return Err(OAuthError::scope(
            "scope is empty: ask for system/<Resource>.<read|write|cruds> scopes",
        ));
    }
    if asked.len() > MAX_SMART_SCOPES {
        return Err(OAuthError::scope(format!(
            "scope names {} scopes; the limit is {MAX_SMART_SCOPES}",
            asked.len()
        )));
    }
    let registered: Vec<SmartScope> = registered
        .iter()
        .filter_map(|s| SmartScope::parse(s).ok())
        .collect();
    let mut granted: Vec<SmartScope> = Vec::new();
    for s in asked {
        let want = SmartScope::parse(s).map_err(OAuthError::scope)?;
        let mut have = Perms::default();
        for r in &registered {
            // A registered `*` covers every type; a registered type covers only itself (so a
            // request for `*` is granted only where `*` was registered).
            have = have.union(r.on(&want.resource));
        }
        let perms = want.perms.intersection(have);
        if !perms.is_empty()
            && !granted
                .iter()
                .any(|g| g.resource == want.resource && g.perms == perms)
        {
            granted.push(SmartScope {
                resource: want.resource,
                perms,
            });
        }
    }
    if granted.is_empty() {
        return Err(OAuthError::scope(format!(
            "none of the requested scopes is registered for this client (registered: {})",
            registered
                .iter()
                .map(|r| format!("system/{}.{}", r.resource, r.perms.letters()))
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    Ok(granted)
}

/// The 32 bytes a SMART client stands for where the gateway keys state by a requester's key
/// (rate limits, token bookkeeping): never an Ed25519 key, so it can sign and match nothing.
pub fn client_key(client_id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"medledger/smart-client/v1\0");
    h.update(client_id.as_bytes());
    h.finalize().into()
}

/// What the gateway remembers of SMART clients: the assertion ids seen, and clients read.
pub struct Clients {
    jtis: Mutex<NonceCache>,
    read: Mutex<BTreeMap<String, (Instant, Option<SmartClient>)>>,
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            jtis: Mutex::new(NonceCache::with_key_quota(MAX_JTIS, JTIS_PER_CLIENT)),
            read: Mutex::default(),
        }
    }
}

impl Clients {
    /// Remembers a verified assertion's `jti` until its `exp`; a second use is refused.
    fn spend_jti(&self, client: &str, jti: &str, exp: u64, now: u64) -> Result<(), OAuthError> {
        let mut c = self
            .jtis
            .lock()
            .map_err(|_| OAuthError::unavailable("assertion cache poisoned"))?;
        match c.check_and_insert(client, jti, exp, now) {
            Ok(()) => Ok(()),
            Err(HttpSigError::Replay) => Err(OAuthError::client(
                "this assertion was used already (its jti is spent): sign a new one",
            )),
            Err(HttpSigError::NonceCacheFull) => Err(OAuthError::unavailable(
                "too many assertions in flight; retry shortly",
            )),
            Err(HttpSigError::KeyNonceQuota { .. }) => Err(OAuthError::throttled(
                "this client asked for more tokens than the gateway allows in five minutes",
            )),
            Err(e) => Err(OAuthError::client(e.to_string())),
        }
    }
}

/// Reads client `id` from the chain with a proof (reused for [`CLIENT_TTL`]; unfamiliar ids go
/// through the gate's limit on lookups of strangers).
async fn read_client(st: &State, id: &str) -> Result<Option<SmartClient>, OAuthError> {
    let clients = &st.gate.smart;
    if let Ok(m) = clients.read.lock() {
        if let Some((at, c)) = m.get(id) {
            if at.elapsed() < CLIENT_TTL {
                return Ok(c.clone());
            }
        }
    }
    if !st.gate.may_look_up_stranger(&client_key(id)) {
        return Err(OAuthError::throttled(
            "the gateway is answering as many unfamiliar clients as it may right now; retry shortly",
        ));
    }
    let c: Option<SmartClient> = st
        .node
        .read_msg(&keys::smart_client(id))
        .await
        .map_err(|e| OAuthError::unavailable(format!("the ledger could not be read: {e}")))?;
    if let Ok(mut m) = clients.read.lock() {
        if m.len() >= MAX_CLIENTS {
            m.clear();
        }
        m.insert(id.to_string(), (Instant::now(), c.clone()));
    }
    if c.is_some() {
        st.gate.remember_known(&client_key(id));
    }
    Ok(c)
}

/// Who a registered client acts as, read with proofs: its member (which must still exist), or
/// its practitioner (which must be active).
async fn acts_as(st: &State, c: &SmartClient) -> Result<Subject, OAuthError> {
    let unavailable = |e: crate::node::NodeError| {
        OAuthError::unavailable(format!("the ledger could not be read: {e}"))
    };
    let member_exists = st
        .node
        .read(&keys::member(&c.member_id))
        .await
        .map_err(unavailable)?
        .is_some();
    if !member_exists {
        return Err(OAuthError::grant(format!(
            "member {} no longer exists; its clients act no more",
            c.member_id
        )));
    }
    if c.acts_for_practitioner.is_empty() {
        return Ok(Subject::Member(c.member_id.clone()));
    }
    let did = &c.acts_for_practitioner;
    let p: Practitioner = st
        .node
        .read_msg(&keys::practitioner(did))
        .await
        .map_err(unavailable)?
        .ok_or_else(|| OAuthError::grant(format!("practitioner {did} is not registered")))?;
    let active = p.status == medledger_tx::pb::PractitionerStatus::Active as i32
        && (p.valid_until == 0 || now_secs() <= p.valid_until);
    if !active || p.member_id != c.member_id {
        return Err(OAuthError::grant(format!(
            "practitioner {did}, whom this client acts for, is not active"
        )));
    }
    Ok(Subject::Practitioner {
        did: did.clone(),
        member: p.member_id,
        role: PractitionerRole::try_from(p.role).unwrap_or(PractitionerRole::Unspecified),
        active: true,
    })
}

/// `POST /auth/token` with a form: the client credentials grant of SMART Backend Services.
pub(crate) async fn token(st: Arc<State>, body: Bytes) -> Response {
    match grant(&st, &body).await {
        Ok(a) => {
            let mut r = (StatusCode::OK, Json(a)).into_response();
            no_store(r.headers_mut());
            r
        }
        Err(e) => e.into_response(),
    }
}

async fn grant(st: &State, body: &[u8]) -> Result<SmartTokenAnswer, OAuthError> {
    let f = form(body)?;
    let grant_type = param(&f, "grant_type")?;
    if grant_type != GRANT_TYPE {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("grant_type {grant_type:?}: this server grants client_credentials only"),
        ));
    }
    if param(&f, "client_assertion_type")? != ASSERTION_TYPE {
        return Err(OAuthError::client(format!(
            "client_assertion_type must be {ASSERTION_TYPE}"
        )));
    }
    let scope = param(&f, "scope")?;
    if scope.len() > MAX_SMART_SCOPES * 81 {
        return Err(OAuthError::scope("scope is too long"));
    }
    let now = now_secs();
    let a = decode(
        param(&f, "client_assertion")?,
        &token_url(&st.public_url),
        f.get("client_id").map(String::as_str),
        now,
    )?;
    medledger_tx::check::check_id("client_id", &a.iss)
        .map_err(|_| OAuthError::client("the assertion's iss is not a client id"))?;
    let key = client_key(&a.iss);
    if !st.gate.key_allowed(&key) {
        return Err(OAuthError::throttled(
            "this client asks more often a second than the gateway allows one client",
        ));
    }
    let client = read_client(st, &a.iss)
        .await?
        .ok_or_else(|| OAuthError::client(format!("no client {:?} is registered", a.iss)))?;
    if client.revoked_height != 0 {
        return Err(OAuthError::client(format!(
            "client {:?} was revoked at height {}",
            a.iss, client.revoked_height
        )));
    }
    verify(&a, &client)?;
    let scopes = grant_scopes(scope, &client.scopes)?;
    let subject = acts_as(st, &client).await?;
    clients_spend(st, &a, now)?;
    let grant = Grant {
        client_id: a.iss.clone(),
        scopes,
    };
    let scope = grant.scope_string();
    let who = Requester {
        key,
        subject,
        smart: Some(Arc::new(grant)),
    };
    let issued = st
        .gate
        .issue_for(&who, SMART_TOKEN_TTL)
        .map_err(|e| OAuthError::unavailable(e.message().to_string()))?;
    Ok(SmartTokenAnswer {
        access_token: issued.access_token,
        token_type: "bearer",
        expires_in: SMART_TOKEN_TTL.as_secs(),
        scope,
    })
}

fn clients_spend(st: &State, a: &Assertion, now: u64) -> Result<(), OAuthError> {
    st.gate.smart.spend_jti(&a.iss, &a.jti, a.exp, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn jwt(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(claims.to_string().as_bytes()),
            Base64UrlUnpadded::encode_string(&[1, 2, 3]),
        )
    }

    const AUD: &str = "http://gw/auth/token";

    fn claims(exp: u64) -> Value {
        json!({"iss": "ehr", "sub": "ehr", "aud": AUD, "exp": exp, "jti": "j-1"})
    }

    #[test]
    fn assertions_are_checked_before_any_lookup() {
        let h = json!({"alg": "ES384", "kid": "k1", "typ": "JWT"});
        let now = 1_000_000;
        let a = decode(&jwt(h.clone(), claims(now + 60)), AUD, None, now).unwrap();
        assert_eq!(
            (a.iss.as_str(), a.kid.as_str(), a.jti.as_str()),
            ("ehr", "k1", "j-1")
        );
        let err = |t: &str, client: Option<&str>| decode(t, AUD, client, now).unwrap_err().error();
        assert_eq!(
            err(&jwt(h.clone(), claims(now)), None),
            "invalid_client",
            "expired"
        );
        assert_eq!(
            err(&jwt(h.clone(), claims(now + 301)), None),
            "invalid_client",
            "too far"
        );
        let mut c = claims(now + 60);
        c["aud"] = json!("http://other/auth/token");
        assert_eq!(err(&jwt(h.clone(), c), None), "invalid_client", "aud");
        let mut c = claims(now + 60);
        c["sub"] = json!("other");
        assert_eq!(err(&jwt(h.clone(), c), None), "invalid_client", "sub");
        assert_eq!(
            err(&jwt(h.clone(), claims(now + 60)), Some("other")),
            "invalid_client",
            "client_id"
        );
        let hs = json!({"alg": "HS256", "kid": "k1"});
        assert_eq!(
            err(&jwt(hs, claims(now + 60)), None),
            "invalid_client",
            "alg"
        );
        let none = json!({"alg": "none", "kid": "k1"});
        assert_eq!(
            err(&jwt(none, claims(now + 60)), None),
            "invalid_client",
            "none"
        );
        assert_eq!(err("a.b", None), "invalid_client");
        assert_eq!(
            err(&"a".repeat(MAX_ASSERTION_LEN + 1), None),
            "invalid_client"
        );
        let mut c = claims(now + 60);
        c["aud"] = json!(["x", AUD]);
        assert!(decode(&jwt(h, c), AUD, None, now).is_ok());
    }

    #[test]
    fn granted_scopes_are_the_requested_ones_within_the_registered_ones() {
        let reg = vec![
            "system/Consent.read".to_string(),
            "system/Claim.cud".to_string(),
        ];
        let g = grant_scopes("system/Consent.read system/Claim.write", &reg).unwrap();
        let g = Grant {
            client_id: "ehr".into(),
            scopes: g,
        };
        assert_eq!(g.scope_string(), "system/Consent.rs system/Claim.cud");
        assert!(g.permits("Consent", Perms::READ));
        assert!(!g.permits("Consent", Perms::CREATE));
        assert!(g.permits("Claim", Perms::CREATE));
        assert!(!g.permits("Claim", Perms::READ));
        // Narrowed: only what is registered.
        let g = grant_scopes("system/Consent.*", &reg).unwrap();
        assert_eq!(g[0].perms.letters(), "rs");
        assert_eq!(
            grant_scopes("system/AuditEvent.read", &reg)
                .unwrap_err()
                .error(),
            "invalid_scope"
        );
        assert_eq!(
            grant_scopes("system/*.read", &reg).unwrap_err().error(),
            "invalid_scope"
        );
        assert_eq!(grant_scopes("", &reg).unwrap_err().error(), "invalid_scope");
        assert_eq!(
            grant_scopes("openid", &reg).unwrap_err().error(),
            "invalid_scope"
        );
        let all = vec!["system/*.read".to_string()];
        assert_eq!(
            grant_scopes("system/Consent.rs", &all).unwrap()[0]
                .perms
                .letters(),
            "rs"
        );
    }

    #[test]
    fn each_fhir_route_needs_its_resource_and_permission() {
        let need = |m: Method, p: &str| route_need(&m, p).map(|(r, p)| (r, p.letters()));
        assert_eq!(need(Method::GET, "/fhir/metadata"), None);
        assert_eq!(
            need(Method::GET, "/fhir/Consent"),
            Some(("Consent".into(), "s".into()))
        );
        assert_eq!(
            need(Method::GET, "/fhir/Consent/c-1"),
            Some(("Consent".into(), "r".into()))
        );
        assert_eq!(
            need(Method::GET, "/fhir/Consent/c-1/_history"),
            Some(("Consent".into(), "r".into()))
        );
        assert_eq!(
            need(Method::POST, "/fhir/Claim"),
            Some(("Claim".into(), "c".into()))
        );
        assert_eq!(
            need(Method::POST, "/fhir/Claim/$submit"),
            Some(("Claim".into(), "c".into()))
        );
        assert_eq!(
            need(Method::PUT, "/fhir/Consent/c-1"),
            Some(("Consent".into(), "u".into()))
        );
        assert_eq!(
            need(Method::GET, "/fhir/Observation/o-1"),
            Some(("Observation".into(), "r".into()))
        );
        assert_eq!(need(Method::GET, "/records/x"), None);
    }
}

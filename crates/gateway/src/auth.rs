//! Who is asking. Every route that reads or changes anything patient-linked takes an [`Authed`]
//! (or [`FhirAuthed`]) extractor, so authentication happens in one place:
//!
//! - a request signed with RFC 9421 ([`medledger_vault::httpsig`], `keyid` = the hex Ed25519
//!   public key), or
//! - `Authorization: Bearer <token>`, a token `POST /auth/token` issued to a signed request,
//!   or to a SMART backend client ([`crate::smart`]): such a token is good on the FHIR routes
//!   only, and only within its scopes ([`FhirAuthed`] checks them, per route, in one place).
//!
//! Order matters against abuse: the signature is verified first (CPU only, nothing stored), then
//! the key's owner is read from the chain with a proof. A key with no role on chain is refused
//! (403) **before** its nonce reaches the replay cache, so throwaway keys cannot fill it; a known
//! key holds at most [`NONCE_QUOTA_PER_KEY`] nonces, and is rate limited per key. Every request
//! is also rate limited per source address ([`per_ip_limit`]).
//!
//! What a requester may then read is decided in [`crate::access`].

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ed25519_dalek::VerifyingKey;
use governor::{Quota, RateLimiter};
use medledger_tx::keys;
use medledger_tx::pb::{key_owner::Owner, KeyOwner, Practitioner, PractitionerRole};
use medledger_vault::httpsig::{self, HttpRequest, NonceCache, ReceivedSignature, VerifyPolicy};
use medledger_vault::HttpSigError;
use serde::Serialize;

use crate::client::now_secs;
use crate::error::ApiError;
use crate::node::{Node, NodeError};
use crate::records::MAX_BODY_BYTES;
use crate::state::State;

/// How long a bearer token is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(900);
/// The most live tokens one key holds (a new one retires that key's oldest).
pub const TOKENS_PER_KEY: usize = 8;
/// The most live tokens the gateway holds in all (beyond: 503 until some expire).
pub const MAX_TOKENS: usize = 100_000;
/// The most nonces one key may hold in the replay cache (signatures live at most 300 s).
pub const NONCE_QUOTA_PER_KEY: usize = 4_096;
/// How long a key's owner, read with a proof, is reused (well under a block interval or two).
const SUBJECT_TTL: Duration = Duration::from_secs(2);
/// The most owners remembered (the cache is cleared when full).
const MAX_SUBJECTS: usize = 50_000;

/// Rate limits (requests per second, with a burst of twice that).
#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    /// Per source address, every request.
    pub per_ip: u32,
    /// Per authenticated key (signed or token), after the key was found on chain.
    pub per_key: u32,
    /// Per signer of a tx relayed by `/rpc/broadcast_tx_*`.
    pub broadcast_per_signer: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip: 1_000,
            per_key: 300,
            broadcast_per_signer: 10,
        }
    }
}

/// Who a key is, per the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A member's admin key.
    Member(String),
    /// A practitioner of a member.
    Practitioner {
        /// The practitioner's DID.
        did: String,
        /// The member that registered them.
        member: String,
        /// Their role.
        role: PractitionerRole,
        /// Active now (status active and within `valid_until`).
        active: bool,
    },
    /// A patient's current key.
    Patient(String),
}

impl Subject {
    /// `member`, `practitioner` or `patient`.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Member(_) => "member",
            Subject::Practitioner { .. } => "practitioner",
            Subject::Patient(_) => "patient",
        }
    }

    /// The member id, DID or patient id.
    pub fn id(&self) -> &str {
        match self {
            Subject::Member(id) | Subject::Patient(id) => id,
            Subject::Practitioner { did, .. } => did,
        }
    }

    /// The member this subject acts for: a member's admin, or an *active* practitioner.
    pub fn acting_member(&self) -> Option<&str> {
        match self {
            Subject::Member(m) => Some(m),
            Subject::Practitioner {
                member,
                active: true,
                ..
            } => Some(member),
            _ => None,
        }
    }
}

/// An authenticated requester.
#[derive(Clone, Debug)]
pub struct Requester {
    /// The Ed25519 public key that signed the request (or that the token was issued to); for a
    /// SMART client, [`crate::smart::client_key`] of its id (no Ed25519 key: it signs nothing).
    pub key: [u8; 32],
    /// Who it is on chain (for a SMART client: the member or practitioner it acts for).
    pub subject: Subject,
    /// A SMART client's grant: its id and scopes (`None`: a signed request or its token).
    pub smart: Option<Arc<crate::smart::Grant>>,
}

struct Issued {
    key: [u8; 32],
    subject: Subject,
    smart: Option<Arc<crate::smart::Grant>>,
    expires: Instant,
}

#[derive(Default)]
struct Tokens {
    live: BTreeMap<String, Issued>,
    of_key: BTreeMap<[u8; 32], VecDeque<String>>,
}

impl Tokens {
    fn purge(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .live
            .iter()
            .filter(|(_, i)| i.expires <= now)
            .map(|(t, _)| t.clone())
            .collect();
        for t in expired {
            self.drop_token(&t);
        }
    }

    fn drop_token(&mut self, token: &str) {
        if let Some(i) = self.live.remove(token) {
            if let Some(q) = self.of_key.get_mut(&i.key) {
                q.retain(|t| t != token);
                if q.is_empty() {
                    self.of_key.remove(&i.key);
                }
            }
        }
    }
}

/// The answer of `POST /auth/token`.
#[derive(Serialize)]
pub struct TokenAnswer {
    /// The bearer token (64 hex digits).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Who the gateway takes the bearer to be.
    pub subject: SubjectBody,
}

/// A subject as JSON.
#[derive(Serialize)]
pub struct SubjectBody {
    /// `member`, `practitioner` or `patient`.
    pub kind: &'static str,
    /// The member id, DID or patient id.
    pub id: String,
}

type KeyedLimiter<K> = governor::DefaultKeyedRateLimiter<K>;

/// A key's owner as last read, and when.
type CachedSubject = (Instant, Option<Subject>);

/// Authentication state: the replay cache, tokens, the owners of recently seen keys and the
/// per-key rate limiters.
pub struct Gate {
    public_url: String,
    nonces: Mutex<NonceCache>,
    tokens: Mutex<Tokens>,
    subjects: Mutex<BTreeMap<[u8; 32], CachedSubject>>,
    per_key: KeyedLimiter<[u8; 32]>,
    per_signer: KeyedLimiter<[u8; 32]>,
    per_ip: Arc<KeyedLimiter<IpAddr>>,
    /// Proven lookups of keys never seen with a role (what a flood of fresh keys costs the
    /// node), across all callers.
    new_keys: governor::DefaultDirectRateLimiter,
    /// Keys seen with a role (bounded): their lookups are never throttled by `new_keys`.
    known: Mutex<std::collections::BTreeSet<[u8; 32]>>,
    /// SMART clients' spent assertion ids and clients read ([`crate::smart`]).
    pub(crate) smart: crate::smart::Clients,
}

/// Lookups per second of keys the gateway has not seen with a role.
pub const NEW_KEY_LOOKUPS_PER_SEC: u32 = 50;
/// The most keys remembered as known (the set is cleared when full).
const MAX_KNOWN: usize = 200_000;

fn quota(per_sec: u32) -> Quota {
    let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(per_sec.max(1).saturating_mul(2)).unwrap_or(rate);
    Quota::per_second(rate).allow_burst(burst)
}

/// A 429 with `Retry-After: 1`.
pub fn too_many(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, msg)
}

fn one_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    let mut it = headers.get_all(name).iter();
    let v = it
        .next()
        .ok_or_else(|| ApiError::unauthorized(format!("missing {name} header")))?;
    if it.next().is_some() {
        return Err(ApiError::unauthorized(format!(
            "more than one {name} header"
        )));
    }
    v.to_str()
        .map_err(|_| ApiError::unauthorized(format!("{name} is not ASCII")))
}

impl Gate {
    /// A gate for a gateway whose clients sign `public_url`.
    pub fn new(public_url: &str, nonce_capacity: usize, limits: RateLimits) -> Gate {
        Gate {
            public_url: public_url.trim_end_matches('/').to_string(),
            nonces: Mutex::new(NonceCache::with_key_quota(
                nonce_capacity,
                NONCE_QUOTA_PER_KEY,
            )),
            tokens: Mutex::default(),
            subjects: Mutex::default(),
            per_key: RateLimiter::keyed(quota(limits.per_key)),
            per_signer: RateLimiter::keyed(quota(limits.broadcast_per_signer)),
            per_ip: Arc::new(RateLimiter::keyed(quota(limits.per_ip))),
            new_keys: RateLimiter::direct(quota(NEW_KEY_LOOKUPS_PER_SEC)),
            known: Mutex::default(),
            smart: Default::default(),
        }
    }

    /// Whether a proven lookup for `key` may go to the node now: always for a key seen with a
    /// role, else within [`NEW_KEY_LOOKUPS_PER_SEC`] across all callers.
    pub(crate) fn may_look_up_stranger(&self, key: &[u8; 32]) -> bool {
        self.known.lock().is_ok_and(|k| k.contains(key)) || self.new_keys.check().is_ok()
    }

    /// Remembers `key` as one with a role on chain (its lookups are not throttled).
    pub(crate) fn remember_known(&self, key: &[u8; 32]) {
        if let Ok(mut k) = self.known.lock() {
            if k.len() >= MAX_KNOWN {
                k.clear();
            }
            k.insert(*key);
        }
    }

    /// Whether `key` may make one more request now (the per-key limit).
    pub(crate) fn key_allowed(&self, key: &[u8; 32]) -> bool {
        self.per_key.check_key(key).is_ok()
    }

    /// The per-address limiter (for [`per_ip_limit`]).
    pub fn ip_limiter(&self) -> Arc<KeyedLimiter<IpAddr>> {
        self.per_ip.clone()
    }

    /// Who `key` is on chain (proven reads; remembered for [`SUBJECT_TTL`]).
    pub async fn subject(&self, node: &Node, key: &[u8; 32]) -> Result<Option<Subject>, ApiError> {
        if let Ok(m) = self.subjects.lock() {
            if let Some((at, s)) = m.get(key) {
                if at.elapsed() < SUBJECT_TTL {
                    return Ok(s.clone());
                }
            }
        }
        let seen = self.known.lock().is_ok_and(|k| k.contains(key));
        if !seen && self.new_keys.check().is_err() {
            return Err(too_many(
                "the gateway is answering as many unfamiliar keys as it may right now; retry shortly",
            ));
        }
        let s = read_subject(node, key).await?;
        if s.is_some() {
            if let Ok(mut k) = self.known.lock() {
                if k.len() >= MAX_KNOWN {
                    k.clear();
                }
                k.insert(*key);
            }
        }
        if let Ok(mut m) = self.subjects.lock() {
            if m.len() >= MAX_SUBJECTS {
                m.clear();
            }
            m.insert(*key, (Instant::now(), s.clone()));
        }
        Ok(s)
    }

    /// Authenticates a request: a bearer token, else an RFC 9421 signature (verified, then the
    /// key's role checked on chain, and only then its nonce remembered).
    pub async fn requester(
        &self,
        node: &Node,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Requester, ApiError> {
        let who = match bearer(headers)? {
            Some(token) => self.token(token)?,
            None => self.signed(node, method, uri, headers, body).await?,
        };
        if self.per_key.check_key(&who.key).is_err() {
            return Err(too_many(
                "this key sends more requests a second than the gateway allows one key; slow down",
            ));
        }
        Ok(who)
    }

    fn token(&self, token: &str) -> Result<Requester, ApiError> {
        let now = Instant::now();
        let tokens = self
            .tokens
            .lock()
            .map_err(|_| ApiError::internal("token table poisoned"))?;
        match tokens.live.get(token) {
            Some(i) if i.expires > now => Ok(Requester {
                key: i.key,
                subject: i.subject.clone(),
                smart: i.smart.clone(),
            }),
            _ => Err(ApiError::unauthorized(
                "the bearer token is unknown or expired: get a new one (POST /auth/token)",
            )),
        }
    }

    async fn signed(
        &self,
        node: &Node,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Requester, ApiError> {
        if headers.get("signature").is_none() {
            return Err(ApiError::unauthorized(
                "this request must name its requester: sign it (RFC 9421) or send a bearer token from POST /auth/token",
            ));
        }
        let si = one_header(headers, "signature-input")?;
        let sig = one_header(headers, "signature")?;
        let digest = one_header(headers, "content-digest")?;
        let received = ReceivedSignature::parse(si, sig, "sig1").map_err(ApiError::unauthorized)?;
        let keyid = received
            .keyid()
            .ok_or_else(|| ApiError::unauthorized("no keyid"))?;
        let key: [u8; 32] = hex::decode(keyid)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| ApiError::unauthorized("keyid must be a hex Ed25519 public key"))?;
        let vk = VerifyingKey::from_bytes(&key)
            .map_err(|_| ApiError::unauthorized("keyid is not an Ed25519 public key"))?;
        let target = format!(
            "{}{}",
            self.public_url,
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        let lines: Vec<(&str, &str)> = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
            .collect();
        let req = HttpRequest {
            method: method.as_str(),
            target_uri: &target,
            headers: &lines,
        };
        let now = now_secs();
        let verified = received
            .verify(&req, &vk, &VerifyPolicy::default(), now)
            .map_err(ApiError::unauthorized)?;
        httpsig::verify_content_digest(digest, body).map_err(ApiError::unauthorized)?;
        let (Some(nonce), Some(expires)) = (verified.nonce.as_deref(), verified.expires) else {
            return Err(ApiError::unauthorized("nonce and expires are required"));
        };
        // The chain first: a key nobody registered never reaches the replay cache.
        let subject = self.subject(node, &key).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "key {} has no role on the ledger (no member, practitioner or patient owns it)",
                    &keyid[..keyid.len().min(16)]
                ),
            )
        })?;
        let mut cache = self
            .nonces
            .lock()
            .map_err(|_| ApiError::internal("nonce cache poisoned"))?;
        match cache.check_and_insert(&verified.keyid, nonce, expires, now) {
            Ok(()) => Ok(Requester {
                key,
                subject,
                smart: None,
            }),
            Err(HttpSigError::NonceCacheFull) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many signed requests in flight; retry shortly",
            )),
            Err(e @ HttpSigError::KeyNonceQuota { .. }) => Err(too_many(e.to_string())),
            Err(e) => Err(ApiError::unauthorized(e)),
        }
    }

    /// Issues a bearer token to an authenticated requester.
    pub fn issue(&self, who: &Requester) -> Result<TokenAnswer, ApiError> {
        self.issue_for(who, TOKEN_TTL)
    }

    /// Issues a bearer token that lives `ttl`.
    pub(crate) fn issue_for(
        &self,
        who: &Requester,
        ttl: Duration,
    ) -> Result<TokenAnswer, ApiError> {
        use rand_v010::RngExt;
        let mut raw = [0u8; 32];
        rand_v010::rng().fill(&mut raw);
        let token = hex::encode(raw);
        let now = Instant::now();
        let mut t = self
            .tokens
            .lock()
            .map_err(|_| ApiError::internal("token table poisoned"))?;
        t.purge(now);
        let oldest = t
            .of_key
            .get(&who.key)
            .filter(|q| q.len() >= TOKENS_PER_KEY)
            .and_then(|q| q.front().cloned());
        if let Some(old) = oldest {
            t.drop_token(&old);
        }
        if t.live.len() >= MAX_TOKENS {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the gateway holds as many tokens as it may; retry later",
            ));
        }
        t.live.insert(
            token.clone(),
            Issued {
                key: who.key,
                subject: who.subject.clone(),
                smart: who.smart.clone(),
                expires: now + ttl,
            },
        );
        t.of_key
            .entry(who.key)
            .or_default()
            .push_back(token.clone());
        Ok(TokenAnswer {
            access_token: token,
            token_type: "Bearer",
            expires_in: ttl.as_secs(),
            subject: SubjectBody {
                kind: who.subject.kind(),
                id: who.subject.id().to_string(),
            },
        })
    }

    /// Whether a tx signer may have one more tx relayed now.
    pub fn broadcast_allowed(&self, signer: &[u8; 32]) -> bool {
        self.per_signer.check_key(signer).is_ok()
    }

    /// Forgets idle limiter state (called periodically: the keyed limiters are bounded by the
    /// keys and addresses seen recently).
    pub fn shrink(&self) {
        self.per_key.retain_recent();
        self.per_signer.retain_recent();
        self.per_ip.retain_recent();
        self.per_key.shrink_to_fit();
        self.per_signer.shrink_to_fit();
        self.per_ip.shrink_to_fit();
        if let Ok(mut t) = self.tokens.lock() {
            t.purge(Instant::now());
        }
    }
}

fn bearer(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(v) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::unauthorized("Authorization is not ASCII"))?;
    match v.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            let token = token.trim();
            if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::unauthorized("a bearer token is 64 hex digits"));
            }
            Ok(Some(token))
        }
        _ => Err(ApiError::unauthorized(
            "Authorization must be `Bearer <token>` (or sign the request, RFC 9421)",
        )),
    }
}

/// Who `key` is, read with proofs (`None`: nobody on chain owns it).
pub async fn read_subject(node: &Node, key: &[u8; 32]) -> Result<Option<Subject>, NodeError> {
    let owner: Option<KeyOwner> = node.read_msg(&keys::key_owner(key)).await?;
    Ok(match owner.and_then(|o| o.owner) {
        Some(Owner::MemberId(id)) => Some(Subject::Member(id)),
        Some(Owner::PatientId(id)) => Some(Subject::Patient(id)),
        Some(Owner::PractitionerDid(did)) => {
            match node
                .read_msg::<Practitioner>(&keys::practitioner(&did))
                .await?
            {
                None => None,
                Some(p) => {
                    // As the ledger's `require_active`: a removed member's practitioners act
                    // no more (a removal does not touch their records).
                    let member_exists = node.read(&keys::member(&p.member_id)).await?.is_some();
                    Some(Subject::Practitioner {
                        active: member_exists
                            && p.status == medledger_tx::pb::PractitionerStatus::Active as i32
                            && (p.valid_until == 0 || now_secs() <= p.valid_until),
                        role: PractitionerRole::try_from(p.role)
                            .unwrap_or(PractitionerRole::Unspecified),
                        member: p.member_id,
                        did,
                    })
                }
            }
        }
        _ => None,
    })
}

/// An authenticated request and its body (read in full, at most [`MAX_BODY_BYTES`]).
pub struct Authed {
    /// Who asks.
    pub who: Requester,
    /// The request body.
    pub body: Bytes,
}

/// Largest body of any request but storing a record (a signed tx, a FHIR Claim or Consent, a
/// read's `LogAccess`): what a stranger can make the gateway buffer before it knows who asks.
pub const MAX_SMALL_BODY_BYTES: usize = 256 * 1024;

/// The body limit of a route: a record's upload (or a replica's) may be [`MAX_BODY_BYTES`], anything else
/// [`MAX_SMALL_BODY_BYTES`].
pub fn body_limit(method: &Method, path: &str) -> usize {
    if method == Method::PUT && (path.starts_with("/records/") || path.starts_with("/replicas/")) {
        MAX_BODY_BYTES
    } else {
        MAX_SMALL_BODY_BYTES
    }
}

impl FromRequest<Arc<State>> for Authed {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &Arc<State>) -> Result<Self, ApiError> {
        let authed = authenticate(req, st).await?;
        if let Some(g) = &authed.who.smart {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the token of SMART client {} is good on the FHIR routes (/fhir) only",
                    g.client_id
                ),
            ));
        }
        Ok(authed)
    }
}

/// Reads the body (bounded per route) and authenticates the request, whatever the token.
async fn authenticate(req: Request, st: &Arc<State>) -> Result<Authed, ApiError> {
    let (parts, body) = req.into_parts();
    let limit = body_limit(&parts.method, parts.uri.path());
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {limit} bytes, the most this route takes"),
        )
    })?;
    let who = st
        .gate
        .requester(&st.node, &parts.method, &parts.uri, &parts.headers, &body)
        .await?;
    Ok(Authed { who, body })
}

/// [`Authed`] for the FHIR routes (refusals are OperationOutcomes). A SMART client's token is
/// held to its scopes here, the one place for every FHIR route: the route's resource type and
/// permission ([`crate::smart::route_need`]) must be granted, else 403 (`security`). Which
/// rows it then sees is still decided by [`crate::access`], as for whom it acts.
pub struct FhirAuthed(pub Authed);

impl FromRequest<Arc<State>> for FhirAuthed {
    type Rejection = crate::fhir::FhirError;

    async fn from_request(req: Request, st: &Arc<State>) -> Result<Self, Self::Rejection> {
        let need = crate::smart::route_need(req.method(), req.uri().path());
        let authed = authenticate(req, st).await?;
        if let Some(g) = &authed.who.smart {
            let allowed = need
                .as_ref()
                .is_some_and(|(resource, perm)| g.permits(resource, *perm));
            if !allowed {
                let what = need.map_or_else(
                    || "this route".to_string(),
                    |(r, p)| format!("system/{r}.{}", p.letters()),
                );
                return Err(crate::fhir::FhirError::security(format!(
                    "the token of SMART client {} is not granted {what} (granted: {})",
                    g.client_id,
                    g.scope_string()
                )));
            }
        }
        Ok(FhirAuthed(authed))
    }
}

/// `POST /auth/token`: a signed request gets a bearer token for [`TOKEN_TTL`]; a form
/// (`application/x-www-form-urlencoded`) is a SMART client credentials grant
/// ([`crate::smart::token`]).
pub(crate) async fn issue_token(
    axum::extract::State(st): axum::extract::State<Arc<State>>,
    req: Request,
) -> Response {
    let form = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if form {
        let body = match axum::body::to_bytes(req.into_body(), crate::smart::MAX_FORM_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the form is over {} bytes, the most a token request takes",
                        crate::smart::MAX_FORM_BYTES
                    ),
                )
                .into_response()
            }
        };
        return crate::smart::token(st, body).await;
    }
    let who = match Authed::from_request(req, &st).await {
        Ok(Authed { who, .. }) => who,
        Err(e) => return e.into_response(),
    };
    match st.gate.issue(&who) {
        Ok(a) => (StatusCode::OK, axum::Json(a)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Middleware: every request is counted against its source address.
pub(crate) async fn per_ip_limit(
    axum::extract::State(limiter): axum::extract::State<Arc<KeyedLimiter<IpAddr>>>,
    req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = ip {
        if limiter.check_key(&ip).is_err() {
            return too_many("too many requests from this address; slow down").into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn who(n: u8) -> Requester {
        Requester {
            key: [n; 32],
            subject: Subject::Patient(format!("pt-{n}")),
            smart: None,
        }
    }

    /// A token names the key it was issued to; one key's tokens are bounded, the oldest goes.
    #[test]
    fn tokens_name_their_key_and_are_bounded_per_key() {
        let g = Gate::new("http://gw", 1000, RateLimits::default());
        let first = g.issue(&who(1)).unwrap().access_token;
        assert_eq!(g.token(&first).unwrap().key, [1; 32]);
        for _ in 0..TOKENS_PER_KEY {
            g.issue(&who(1)).unwrap();
        }
        assert_eq!(
            g.token(&first).unwrap_err().parts().0,
            StatusCode::UNAUTHORIZED,
            "the oldest of a key's tokens was retired"
        );
        let other = g.issue(&who(2)).unwrap().access_token;
        assert_eq!(g.token(&other).unwrap().subject, who(2).subject);
        assert_eq!(
            g.token(&"0".repeat(64)).unwrap_err().parts().0,
            StatusCode::UNAUTHORIZED
        );
    }

    /// Only a record upload may be large; every other body is small before anyone is known.
    #[test]
    fn only_record_uploads_take_large_bodies() {
        assert_eq!(body_limit(&Method::PUT, "/records/obs-1"), MAX_BODY_BYTES);
        for (m, p) in [
            (Method::GET, "/records/obs-1"),
            (Method::POST, "/records/obs-1/erase"),
            (Method::POST, "/fhir/Claim"),
            (Method::POST, "/auth/token"),
            (Method::PUT, "/fhir/Consent"),
        ] {
            assert_eq!(body_limit(&m, p), MAX_SMALL_BODY_BYTES, "{m} {p}");
        }
    }

    #[test]
    fn bearer_tokens_must_look_like_tokens() {
        let mut h = HeaderMap::new();
        assert!(bearer(&h).unwrap().is_none());
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert!(bearer(&h).is_err());
        h.insert("authorization", "Bearer xyz".parse().unwrap());
        assert!(bearer(&h).is_err());
        let t = "ab".repeat(32);
        h.insert("authorization", format!("bearer {t}").parse().unwrap());
        assert_eq!(bearer(&h).unwrap(), Some(t.as_str()));
    }
}

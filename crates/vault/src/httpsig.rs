//! HTTP Message Signatures (RFC 9421) with Ed25519, for the record gateway.
//!
//! Our profile: the signature covers `@method`, `@target-uri` and `content-digest` (RFC 9530,
//! `sha-256=:base64:`), and carries the parameters `created`, `expires`, `nonce`, `keyid` and
//! `alg="ed25519"`. The signer and verifier build the signature base exactly as RFC 9421 §2.5
//! says; `Signature-Input` and `Signature` are parsed from untrusted strings by a strict parser
//! for the small subset of RFC 8941 structured fields this profile uses, with a byte limit on
//! every header and a count limit on every list.
//!
//! Verification is two steps so that the key can be looked up on chain in between:
//! [`ReceivedSignature::parse`] gives the `keyid`; [`ReceivedSignature::verify`] checks the
//! policy (required components, `created` within skew and age, not expired, nonce present) and
//! then the signature with `verify_strict`. Replay protection is a [`NonceCache`] keyed by
//! (keyid, nonce), filled only after a signature verifies. No function here reads a clock: the
//! time is always an argument.
//!
//! The exact profile and limits are in `docs/vault.md`.

use std::collections::{BTreeMap, BTreeSet};

use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2_v011::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::HttpSigError;

/// Result of this module.
pub type SigResult<T> = core::result::Result<T, HttpSigError>;

/// The most bytes a `Signature-Input` header value may have.
pub const MAX_SIGNATURE_INPUT_BYTES: usize = 2048;
/// The most bytes a `Signature` header value may have.
pub const MAX_SIGNATURE_BYTES: usize = 1024;
/// The most bytes a `Content-Digest` header value may have.
pub const MAX_CONTENT_DIGEST_BYTES: usize = 512;
/// The most members a parsed dictionary header may have.
pub const MAX_DICT_MEMBERS: usize = 4;
/// The most covered components a signature may list.
pub const MAX_COMPONENTS: usize = 12;
/// The most bytes of a label, a parameter name or a component name.
pub const MAX_KEY_BYTES: usize = 64;
/// The most bytes of a string parameter (`keyid`, `nonce`, `alg`).
pub const MAX_PARAM_STRING_BYTES: usize = 128;
/// The fewest bytes a nonce may have when the policy requires one.
pub const MIN_NONCE_BYTES: usize = 16;
/// The most bytes of one component value (a header value or the target URI).
pub const MAX_COMPONENT_VALUE_BYTES: usize = 8192;
/// The largest integer RFC 8941 allows (15 decimal digits).
pub const MAX_SF_INTEGER: u64 = 999_999_999_999_999;
/// The largest capacity of a [`NonceCache`].
pub const MAX_NONCE_CACHE_CAPACITY: usize = 1_000_000;
/// The only `alg` this profile accepts.
pub const ALG_ED25519: &str = "ed25519";
/// The components every profile signature must cover.
pub const PROFILE_COMPONENTS: [&str; 3] = ["@method", "@target-uri", "content-digest"];
/// Derived components this implementation can resolve.
pub const SUPPORTED_DERIVED: [&str; 6] = [
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@path",
    "@query",
];

/// The parts of an HTTP request a signature can cover.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The absolute target URI, e.g. `https://vault.example/records/r1`.
    pub target_uri: &'a str,
    /// Header field lines as (name, value), in message order. Names match case-insensitively.
    pub headers: &'a [(&'a str, &'a str)],
}

/// A signature parameter of this profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigParam {
    /// `created`: UNIX seconds when the signature was made.
    Created(u64),
    /// `expires`: UNIX seconds after which the signature is invalid.
    Expires(u64),
    /// `nonce`: a unique value for replay protection.
    Nonce(String),
    /// `keyid`: names the signer's key (the member's key id on chain).
    KeyId(String),
    /// `alg`: the algorithm; only `ed25519`.
    Alg(String),
}

impl SigParam {
    fn name(&self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Expires(_) => "expires",
            Self::Nonce(_) => "nonce",
            Self::KeyId(_) => "keyid",
            Self::Alg(_) => "alg",
        }
    }
}

/// The covered components and parameters of one signature, in order. Its serialization is both
/// the `Signature-Input` member value and the `@signature-params` line of the signature base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureParams {
    components: Vec<String>,
    params: Vec<SigParam>,
}

fn is_tchar_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn check_component_name(name: &str) -> SigResult<()> {
    if name.starts_with('@') {
        if SUPPORTED_DERIVED.contains(&name) {
            return Ok(());
        }
        return Err(HttpSigError::UnsupportedComponent(truncate(name)));
    }
    if name.is_empty() || name.len() > MAX_KEY_BYTES || !name.bytes().all(is_tchar_lower) {
        return Err(HttpSigError::UnsupportedComponent(truncate(name)));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_KEY_BYTES).collect()
}

fn check_sf_string(what: &'static str, s: &str) -> SigResult<()> {
    if s.len() > MAX_PARAM_STRING_BYTES || !s.bytes().all(|c| (0x20..=0x7e).contains(&c)) {
        return Err(HttpSigError::BadParam(what));
    }
    Ok(())
}

impl SignatureParams {
    /// Checks and builds: 1..=[`MAX_COMPONENTS`] distinct supported components; each parameter
    /// at most once; strings printable ASCII of at most [`MAX_PARAM_STRING_BYTES`]; integers at
    /// most [`MAX_SF_INTEGER`].
    pub fn new(components: Vec<String>, params: Vec<SigParam>) -> SigResult<Self> {
        if components.is_empty() || components.len() > MAX_COMPONENTS {
            return Err(HttpSigError::BadParam("components"));
        }
        let mut seen = BTreeSet::new();
        for c in &components {
            check_component_name(c)?;
            if !seen.insert(c.as_str()) {
                return Err(HttpSigError::BadParam("components"));
            }
        }
        let mut names = BTreeSet::new();
        for p in &params {
            if !names.insert(p.name()) {
                return Err(HttpSigError::BadParam(p.name()));
            }
            match p {
                SigParam::Created(v) | SigParam::Expires(v) => {
                    if *v > MAX_SF_INTEGER {
                        return Err(HttpSigError::BadParam(p.name()));
                    }
                }
                SigParam::Nonce(s) | SigParam::KeyId(s) | SigParam::Alg(s) => {
                    check_sf_string(p.name(), s)?;
                }
            }
        }
        Ok(Self { components, params })
    }

    /// Our profile: covers [`PROFILE_COMPONENTS`], with parameters in the order
    /// `created`, `expires`, `nonce`, `keyid`, `alg`.
    pub fn profile(keyid: &str, nonce: &str, created: u64, expires: u64) -> SigResult<Self> {
        Self::new(
            PROFILE_COMPONENTS.iter().map(|c| (*c).to_owned()).collect(),
            vec![
                SigParam::Created(created),
                SigParam::Expires(expires),
                SigParam::Nonce(nonce.to_owned()),
                SigParam::KeyId(keyid.to_owned()),
                SigParam::Alg(ALG_ED25519.to_owned()),
            ],
        )
    }

    /// The covered components, in order.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The parameters, in order.
    pub fn params(&self) -> &[SigParam] {
        &self.params
    }

    /// `created`, if present.
    pub fn created(&self) -> Option<u64> {
        self.params.iter().find_map(|p| match p {
            SigParam::Created(v) => Some(*v),
            _ => None,
        })
    }

    /// `expires`, if present.
    pub fn expires(&self) -> Option<u64> {
        self.params.iter().find_map(|p| match p {
            SigParam::Expires(v) => Some(*v),
            _ => None,
        })
    }

    fn string_param(&self, name: &str) -> Option<&str> {
        self.params.iter().find_map(|p| match p {
            SigParam::Nonce(s) | SigParam::KeyId(s) | SigParam::Alg(s) if p.name() == name => {
                Some(s.as_str())
            }
            _ => None,
        })
    }

    /// `nonce`, if present.
    pub fn nonce(&self) -> Option<&str> {
        self.string_param("nonce")
    }

    /// `keyid`, if present.
    pub fn keyid(&self) -> Option<&str> {
        self.string_param("keyid")
    }

    /// `alg`, if present.
    pub fn alg(&self) -> Option<&str> {
        self.string_param("alg")
    }

    /// RFC 8941 serialization of the inner list with its parameters, e.g.
    /// `("@method" "@target-uri");created=1;keyid="k"`.
    pub fn serialize(&self) -> String {
        let mut out = String::from("(");
        for (i, c) in self.components.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            push_sf_string(&mut out, c);
        }
        out.push(')');
        for p in &self.params {
            out.push(';');
            out.push_str(p.name());
            out.push('=');
            match p {
                SigParam::Created(v) | SigParam::Expires(v) => out.push_str(&v.to_string()),
                SigParam::Nonce(s) | SigParam::KeyId(s) | SigParam::Alg(s) => {
                    push_sf_string(&mut out, s)
                }
            }
        }
        out
    }
}

fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Splits an absolute `scheme://authority/path?query#fragment` URI.
struct UriParts<'a> {
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_uri(uri: &str) -> SigResult<UriParts<'_>> {
    let bad = || HttpSigError::BadComponentValue("@target-uri".to_owned());
    let (scheme, rest) = uri.split_once("://").ok_or_else(bad)?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
    {
        return Err(bad());
    }
    let rest = rest.split('#').next().unwrap_or("");
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(auth_end);
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    Ok(UriParts {
        scheme,
        authority,
        path,
        query,
    })
}

/// The value of one covered component in this request (RFC 9421 §2.1 and §2.2).
pub fn component_value(req: &HttpRequest<'_>, name: &str) -> SigResult<String> {
    check_component_name(name)?;
    let value = match name {
        "@method" => req.method.to_owned(),
        "@target-uri" => req.target_uri.to_owned(),
        "@scheme" => split_uri(req.target_uri)?.scheme.to_ascii_lowercase(),
        "@authority" => {
            let parts = split_uri(req.target_uri)?;
            let scheme = parts.scheme.to_ascii_lowercase();
            let auth = parts.authority.to_ascii_lowercase();
            // §2.2.3: the default port for the scheme is omitted.
            match (scheme.as_str(), auth.rsplit_once(':')) {
                ("http", Some((host, "80"))) | ("https", Some((host, "443"))) => host.to_owned(),
                _ => auth,
            }
        }
        "@path" => {
            let path = split_uri(req.target_uri)?.path;
            if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            }
        }
        "@query" => format!("?{}", split_uri(req.target_uri)?.query.unwrap_or("")),
        field => {
            let values: Vec<&str> = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(field))
                .map(|(_, v)| v.trim_matches([' ', '\t']))
                .collect();
            if values.is_empty() {
                return Err(HttpSigError::MissingComponent(field.to_owned()));
            }
            values.join(", ")
        }
    };
    if value.is_empty() && name == "@method" {
        return Err(HttpSigError::MissingComponent(name.to_owned()));
    }
    if value.len() > MAX_COMPONENT_VALUE_BYTES
        || value.bytes().any(|c| (c < 0x20 && c != b'\t') || c == 0x7f)
    {
        return Err(HttpSigError::BadComponentValue(name.to_owned()));
    }
    Ok(value)
}

/// The signature base (RFC 9421 §2.5): one line `"<name>": <value>` per covered component,
/// each ended by LF, then `"@signature-params": <params>` with no trailing LF.
pub fn signature_base(req: &HttpRequest<'_>, params: &SignatureParams) -> SigResult<String> {
    let mut base = String::new();
    for name in &params.components {
        let value = component_value(req, name)?;
        base.push('"');
        base.push_str(name);
        base.push_str("\": ");
        base.push_str(&value);
        base.push('\n');
    }
    base.push_str("\"@signature-params\": ");
    base.push_str(&params.serialize());
    Ok(base)
}

/// The two header values a signer adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// The `Signature-Input` value, `label=(...);params`.
    pub signature_input: String,
    /// The `Signature` value, `label=:base64:`.
    pub signature: String,
}

fn check_label(label: &str) -> SigResult<()> {
    let mut p = SfParser::new(label.as_bytes(), "label");
    let key = p.key()?;
    if key.len() != label.len() {
        return Err(HttpSigError::BadParam("label"));
    }
    Ok(())
}

/// Signs a request with Ed25519 under `label`.
pub fn sign_request(
    req: &HttpRequest<'_>,
    label: &str,
    params: &SignatureParams,
    key: &SigningKey,
) -> SigResult<SignatureHeaders> {
    check_label(label)?;
    let base = signature_base(req, params)?;
    let sig = key.sign(base.as_bytes());
    Ok(SignatureHeaders {
        signature_input: format!("{label}={}", params.serialize()),
        signature: format!("{label}=:{}:", Base64::encode_string(&sig.to_bytes())),
    })
}

/// The `Content-Digest` value for a body: `sha-256=:<base64 of SHA-256(body)>:` (RFC 9530).
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", Base64::encode_string(&Sha256::digest(body)))
}

/// Checks a received `Content-Digest` against the body. The `sha-256` member is required; other
/// members (e.g. `sha-512`) are parsed but ignored. The gateway must call this: the signature
/// only covers the header, not the body.
pub fn verify_content_digest(header: &str, body: &[u8]) -> SigResult<()> {
    const H: &str = "Content-Digest";
    check_len(H, header, MAX_CONTENT_DIGEST_BYTES)?;
    let members = SfParser::new(header.as_bytes(), H).dictionary(|p| p.byte_seq())?;
    let claimed = members
        .iter()
        .find(|(k, _)| k == "sha-256")
        .map(|(_, v)| v)
        .ok_or(HttpSigError::DigestMismatch)?;
    let actual = Sha256::digest(body);
    if claimed.len() == actual.len() && bool::from(claimed.as_slice().ct_eq(actual.as_slice())) {
        Ok(())
    } else {
        Err(HttpSigError::DigestMismatch)
    }
}

fn check_len(header: &'static str, value: &str, limit: usize) -> SigResult<()> {
    if value.len() > limit {
        return Err(HttpSigError::HeaderTooLong {
            header,
            len: value.len(),
            limit,
        });
    }
    Ok(())
}

/// What a verifier requires beyond a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Components that must be covered.
    pub required_components: Vec<String>,
    /// How far `created` may be ahead of the verifier's clock, in seconds.
    pub max_skew_secs: u64,
    /// How old `created` may be, in seconds.
    pub max_age_secs: u64,
    /// The longest `expires - created`, in seconds; bounds how long a nonce is remembered.
    pub max_validity_secs: u64,
    /// Whether `nonce` (of at least [`MIN_NONCE_BYTES`]) is required.
    pub require_nonce: bool,
    /// Whether `expires` is required.
    pub require_expires: bool,
    /// Whether `alg` is required (when present it must be `ed25519` regardless).
    pub require_alg: bool,
}

impl Default for VerifyPolicy {
    /// The profile: [`PROFILE_COMPONENTS`], 60 s skew, 300 s age and validity, nonce, expires
    /// and alg required.
    fn default() -> Self {
        Self {
            required_components: PROFILE_COMPONENTS.iter().map(|c| (*c).to_owned()).collect(),
            max_skew_secs: 60,
            max_age_secs: 300,
            max_validity_secs: 300,
            require_nonce: true,
            require_expires: true,
            require_alg: true,
        }
    }
}

/// A signature as received, parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSignature {
    label: String,
    params: SignatureParams,
    signature: [u8; 64],
}

/// A signature that verified under the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The signer's key id.
    pub keyid: String,
    /// `created`.
    pub created: u64,
    /// `expires`, if present.
    pub expires: Option<u64>,
    /// `nonce`, if present.
    pub nonce: Option<String>,
}

impl ReceivedSignature {
    /// Parses the member `label` of the `Signature-Input` and `Signature` header values.
    pub fn parse(signature_input: &str, signature: &str, label: &str) -> SigResult<Self> {
        const SI: &str = "Signature-Input";
        const S: &str = "Signature";
        check_len(SI, signature_input, MAX_SIGNATURE_INPUT_BYTES)?;
        check_len(S, signature, MAX_SIGNATURE_BYTES)?;
        let inputs =
            SfParser::new(signature_input.as_bytes(), SI).dictionary(|p| p.sig_params())?;
        let sigs = SfParser::new(signature.as_bytes(), S).dictionary(|p| p.byte_seq())?;
        let missing = || HttpSigError::MissingLabel(truncate(label));
        let params = inputs
            .into_iter()
            .find(|(k, _)| k == label)
            .map(|(_, v)| v)
            .ok_or_else(missing)?;
        let sig = sigs
            .into_iter()
            .find(|(k, _)| k == label)
            .map(|(_, v)| v)
            .ok_or_else(missing)?;
        let signature = <[u8; 64]>::try_from(sig.as_slice()).map_err(|_| HttpSigError::Parse {
            header: S,
            reason: "an ed25519 signature is 64 bytes",
        })?;
        Ok(Self {
            label: label.to_owned(),
            params,
            signature,
        })
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The parsed parameters.
    pub fn params(&self) -> &SignatureParams {
        &self.params
    }

    /// The `keyid`, for looking up the signer's key on chain before [`Self::verify`].
    pub fn keyid(&self) -> Option<&str> {
        self.params.keyid()
    }

    /// Checks the policy at time `now` (UNIX seconds), then the Ed25519 signature over the
    /// signature base rebuilt from `req`. Policy checks come first: they are cheap and say why.
    pub fn verify(
        &self,
        req: &HttpRequest<'_>,
        key: &VerifyingKey,
        policy: &VerifyPolicy,
        now: u64,
    ) -> SigResult<VerifiedSignature> {
        let p = &self.params;
        match p.alg() {
            Some(ALG_ED25519) => {}
            Some(_) => return Err(HttpSigError::BadParam("alg")),
            None if policy.require_alg => return Err(HttpSigError::MissingParam("alg")),
            None => {}
        }
        let keyid = p.keyid().ok_or(HttpSigError::MissingParam("keyid"))?;
        let created = p.created().ok_or(HttpSigError::MissingParam("created"))?;
        for required in &policy.required_components {
            if !p.components.iter().any(|c| c == required) {
                return Err(HttpSigError::NotCovered(required.clone()));
            }
        }
        if created > now.saturating_add(policy.max_skew_secs) {
            return Err(HttpSigError::CreatedInFuture { created, now });
        }
        if now.saturating_sub(created) > policy.max_age_secs {
            return Err(HttpSigError::TooOld { created, now });
        }
        match p.expires() {
            Some(expires) => {
                if expires < created {
                    return Err(HttpSigError::BadParam("expires"));
                }
                if expires - created > policy.max_validity_secs {
                    return Err(HttpSigError::ValidityTooLong);
                }
                if now >= expires {
                    return Err(HttpSigError::Expired { expires, now });
                }
            }
            None if policy.require_expires => return Err(HttpSigError::MissingParam("expires")),
            None => {}
        }
        match p.nonce() {
            Some(n) if policy.require_nonce && n.len() < MIN_NONCE_BYTES => {
                return Err(HttpSigError::BadParam("nonce"))
            }
            None if policy.require_nonce => return Err(HttpSigError::MissingParam("nonce")),
            _ => {}
        }
        let base = signature_base(req, p)?;
        key.verify_strict(base.as_bytes(), &Signature::from_bytes(&self.signature))
            .map_err(|_| HttpSigError::BadSignature)?;
        Ok(VerifiedSignature {
            keyid: keyid.to_owned(),
            created,
            expires: p.expires(),
            nonce: p.nonce().map(str::to_owned),
        })
    }
}

/// A strict parser for the RFC 8941 shapes this profile uses. Anything else is refused.
struct SfParser<'a> {
    s: &'a [u8],
    pos: usize,
    header: &'static str,
}

impl<'a> SfParser<'a> {
    fn new(s: &'a [u8], header: &'static str) -> Self {
        Self { s, pos: 0, header }
    }

    fn err(&self, reason: &'static str) -> HttpSigError {
        HttpSigError::Parse {
            header: self.header,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, reason: &'static str) -> SigResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    fn skip_sp(&mut self) {
        while self.eat(b' ') {}
    }

    fn skip_ows(&mut self) {
        while self.eat(b' ') || self.eat(b'\t') {}
    }

    /// `key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )`
    fn key(&mut self) -> SigResult<String> {
        let start = self.pos;
        match self.peek() {
            Some(c) if c.is_ascii_lowercase() || c == b'*' => self.pos += 1,
            _ => return Err(self.err("expected a key")),
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || b"_-.*".contains(&c) {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos - start > MAX_KEY_BYTES {
            return Err(self.err("key too long"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn string(&mut self, limit: usize) -> SigResult<String> {
        self.expect(b'"', "expected a string")?;
        let mut out = String::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    if e != b'"' && e != b'\\' {
                        return Err(self.err("bad escape in string"));
                    }
                    self.pos += 1;
                    out.push(char::from(e));
                }
                0x20..=0x7e => out.push(char::from(c)),
                _ => return Err(self.err("non-printable character in string")),
            }
            if out.len() > limit {
                return Err(self.err("string too long"));
            }
        }
    }

    /// A non-negative integer of 1..=15 digits (negative and decimal numbers are refused).
    fn integer(&mut self) -> SigResult<u64> {
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
            if self.pos - start > 15 {
                return Err(self.err("integer too long"));
            }
        }
        if self.pos == start {
            return Err(self.err("expected an integer"));
        }
        if self.peek() == Some(b'.') {
            return Err(self.err("decimals are not accepted"));
        }
        let mut v: u64 = 0;
        for &d in &self.s[start..self.pos] {
            v = v * 10 + u64::from(d - b'0');
        }
        Ok(v)
    }

    /// `:base64:` with the standard alphabet and padding, canonical.
    fn byte_seq(&mut self) -> SigResult<Vec<u8>> {
        self.expect(b':', "expected a byte sequence")?;
        let start = self.pos;
        while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || b"+/=".contains(&c)) {
            self.pos += 1;
        }
        let b64 =
            core::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err("bad base64"))?;
        self.expect(b':', "unterminated byte sequence")?;
        if self.peek() == Some(b';') {
            return Err(self.err("parameters on a byte sequence are not accepted"));
        }
        Base64::decode_vec(b64).map_err(|_| self.err("bad base64"))
    }

    /// `( sf-string *( 1*SP sf-string ) ) *( ";" key "=" bare-item )` as [`SignatureParams`].
    fn sig_params(&mut self) -> SigResult<SignatureParams> {
        self.expect(b'(', "expected an inner list")?;
        let mut components = Vec::new();
        loop {
            self.skip_sp();
            if self.eat(b')') {
                break;
            }
            if components.len() == MAX_COMPONENTS {
                return Err(self.err("too many components"));
            }
            components.push(self.string(MAX_KEY_BYTES)?);
            match self.peek() {
                Some(b' ') | Some(b')') => {}
                Some(b';') => return Err(self.err("component parameters are not supported")),
                _ => return Err(self.err("expected a space or ')'")),
            }
        }
        let mut params = Vec::new();
        while self.eat(b';') {
            self.skip_sp();
            let key = self.key()?;
            self.expect(b'=', "boolean parameters are not accepted")?;
            let int = |p: &mut Self| p.integer();
            let string = |p: &mut Self| p.string(MAX_PARAM_STRING_BYTES);
            let param = match key.as_str() {
                "created" => SigParam::Created(int(self)?),
                "expires" => SigParam::Expires(int(self)?),
                "nonce" => SigParam::Nonce(string(self)?),
                "keyid" => SigParam::KeyId(string(self)?),
                "alg" => SigParam::Alg(string(self)?),
                _ => return Err(self.err("unknown signature parameter")),
            };
            if params.len() == 5 {
                return Err(self.err("too many parameters"));
            }
            params.push(param);
        }
        SignatureParams::new(components, params)
            .map_err(|_| self.err("invalid signature parameters"))
    }

    /// A dictionary `key=value *( OWS "," OWS key=value )`, at most [`MAX_DICT_MEMBERS`]
    /// members, no duplicate keys, no trailing comma; leading and trailing spaces are ignored.
    fn dictionary<V>(
        mut self,
        mut value: impl FnMut(&mut Self) -> SigResult<V>,
    ) -> SigResult<Vec<(String, V)>> {
        while self.s.last() == Some(&b' ') {
            self.s = &self.s[..self.s.len() - 1];
        }
        self.skip_sp();
        let mut out: Vec<(String, V)> = Vec::new();
        loop {
            if out.len() == MAX_DICT_MEMBERS {
                return Err(self.err("too many members"));
            }
            let key = self.key()?;
            if out.iter().any(|(k, _)| *k == key) {
                return Err(self.err("duplicate member"));
            }
            self.expect(b'=', "expected '='")?;
            let v = value(&mut self)?;
            out.push((key, v));
            self.skip_ows();
            if self.pos == self.s.len() {
                return Ok(out);
            }
            self.expect(b',', "expected ','")?;
            self.skip_ows();
            if self.pos == self.s.len() {
                return Err(self.err("trailing comma"));
            }
        }
    }
}

/// Replay protection: remembers (keyid, nonce) until the signature's `expires`.
///
/// Rule: an entry lives while `now < expires`. [`NonceCache::check_and_insert`] first evicts
/// every entry with `expires <= now`, in (expires, keyid, nonce) order; then refuses a pair
/// already present ([`HttpSigError::Replay`]); then, if the cache is at capacity, refuses the
/// request ([`HttpSigError::NonceCacheFull`]) rather than evict a live entry, because evicting
/// one would reopen its replay window. Size the capacity as peak signed requests per second
/// times `max_validity_secs`. Insert only after the signature verified *and* the key was found to
/// have a role on chain, so that neither strangers nor throwaway keys can fill the cache.
///
/// Each keyid may hold at most `per_key` live entries ([`HttpSigError::KeyNonceQuota`] beyond
/// that), so one known key that floods cannot take the capacity every other key needs.
#[derive(Debug, Clone)]
pub struct NonceCache {
    capacity: usize,
    per_key: usize,
    entries: BTreeMap<(String, String), u64>,
    by_expiry: BTreeSet<(u64, String, String)>,
    of_key: BTreeMap<String, usize>,
}

impl NonceCache {
    /// A cache for at most `capacity` live entries (clamped to 1..=[`MAX_NONCE_CACHE_CAPACITY`]).
    /// Each key may hold all of it; see [`NonceCache::with_key_quota`].
    pub fn new(capacity: usize) -> Self {
        Self::with_key_quota(capacity, capacity)
    }

    /// A cache for at most `capacity` live entries, at most `per_key` (clamped to
    /// 1..=capacity) of them from one keyid.
    pub fn with_key_quota(capacity: usize, per_key: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_NONCE_CACHE_CAPACITY);
        Self {
            capacity,
            per_key: per_key.clamp(1, capacity),
            entries: BTreeMap::new(),
            by_expiry: BTreeSet::new(),
            of_key: BTreeMap::new(),
        }
    }

    /// The number of entries held (some may have expired since the last call).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Evicts every entry with `expires <= now`.
    pub fn evict_expired(&mut self, now: u64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, keyid, nonce)) = self.by_expiry.pop_first() {
                if let Some(n) = self.of_key.get_mut(&keyid) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.of_key.remove(&keyid);
                    }
                }
                self.entries.remove(&(keyid, nonce));
            }
        }
    }

    /// Records (keyid, nonce) until `expires`, or refuses it as a replay, as expired, or
    /// because the cache is full.
    pub fn check_and_insert(
        &mut self,
        keyid: &str,
        nonce: &str,
        expires: u64,
        now: u64,
    ) -> SigResult<()> {
        check_sf_string("keyid", keyid)?;
        check_sf_string("nonce", nonce)?;
        self.evict_expired(now);
        if expires <= now {
            return Err(HttpSigError::Expired { expires, now });
        }
        let key = (keyid.to_owned(), nonce.to_owned());
        if self.entries.contains_key(&key) {
            return Err(HttpSigError::Replay);
        }
        if self.entries.len() >= self.capacity {
            return Err(HttpSigError::NonceCacheFull);
        }
        let held = self.of_key.get(keyid).copied().unwrap_or(0);
        if held >= self.per_key {
            return Err(HttpSigError::KeyNonceQuota {
                limit: self.per_key,
            });
        }
        self.by_expiry
            .insert((expires, key.0.clone(), key.1.clone()));
        *self.of_key.entry(key.0.clone()).or_default() += 1;
        self.entries.insert(key, expires);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::Base64UrlUnpadded;
    use proptest::prelude::*;

    // RFC 9421 Appendix B.1.4, test-key-ed25519.
    const RFC_PRIVATE_PKCS8_B64: &str =
        "MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF";
    const RFC_PUBLIC_SPKI_B64: &str =
        "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=";
    const RFC_JWK_D: &str = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU";
    const RFC_JWK_X: &str = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs";

    fn rfc_key() -> SigningKey {
        let der = Base64::decode_vec(RFC_PRIVATE_PKCS8_B64).expect("pem body");
        // PKCS#8 v1 for Ed25519: a fixed 16-byte prefix, then the 32-byte seed.
        let prefix = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        assert_eq!(der[..16], prefix);
        let seed: [u8; 32] = der[16..].try_into().expect("32-byte seed");
        assert_eq!(
            Base64UrlUnpadded::decode_vec(RFC_JWK_D).expect("jwk d"),
            seed
        );
        let key = SigningKey::from_bytes(&seed);
        let spki = Base64::decode_vec(RFC_PUBLIC_SPKI_B64).expect("spki");
        assert_eq!(spki[12..], key.verifying_key().to_bytes());
        assert_eq!(
            Base64UrlUnpadded::decode_vec(RFC_JWK_X).expect("jwk x"),
            key.verifying_key().to_bytes()
        );
        key
    }

    // RFC 9421 Appendix B.2, the test-request message.
    const RFC_HEADERS: [(&str, &str); 5] = [
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        (
            "Content-Digest",
            "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:",
        ),
        ("Content-Length", "18"),
    ];

    fn rfc_request() -> HttpRequest<'static> {
        HttpRequest {
            method: "POST",
            target_uri: "https://example.com/foo?param=Value&Pet=dog",
            headers: &RFC_HEADERS,
        }
    }

    const B26_SIGNATURE_INPUT: &str = "sig-b26=(\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"";
    const B26_SIGNATURE: &str = "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:";
    const B26_BASE: &str = concat!(
        "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n",
        "\"@method\": POST\n",
        "\"@path\": /foo\n",
        "\"@authority\": example.com\n",
        "\"content-type\": application/json\n",
        "\"content-length\": 18\n",
        "\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\"",
    );

    fn b26_params() -> SignatureParams {
        SignatureParams::new(
            [
                "date",
                "@method",
                "@path",
                "@authority",
                "content-type",
                "content-length",
            ]
            .iter()
            .map(|c| (*c).to_owned())
            .collect(),
            vec![
                SigParam::Created(1618884473),
                SigParam::KeyId("test-key-ed25519".to_owned()),
            ],
        )
        .expect("params")
    }

    #[test]
    fn rfc9421_b26_signature_base_and_signature_match_byte_for_byte() {
        let params = b26_params();
        assert_eq!(
            signature_base(&rfc_request(), &params).expect("base"),
            B26_BASE
        );
        let headers = sign_request(&rfc_request(), "sig-b26", &params, &rfc_key()).expect("sign");
        assert_eq!(headers.signature_input, B26_SIGNATURE_INPUT);
        assert_eq!(headers.signature, B26_SIGNATURE);
    }

    fn lenient() -> VerifyPolicy {
        VerifyPolicy {
            required_components: vec!["@method".to_owned()],
            require_nonce: false,
            require_expires: false,
            require_alg: false,
            ..VerifyPolicy::default()
        }
    }

    #[test]
    fn rfc9421_b26_headers_parse_and_verify() {
        let received =
            ReceivedSignature::parse(B26_SIGNATURE_INPUT, B26_SIGNATURE, "sig-b26").expect("parse");
        assert_eq!(received.keyid(), Some("test-key-ed25519"));
        assert_eq!(received.params(), &b26_params());
        let vk = rfc_key().verifying_key();
        let verified = received
            .verify(&rfc_request(), &vk, &lenient(), 1618884473 + 10)
            .expect("verify");
        assert_eq!(verified.keyid, "test-key-ed25519");
        // Our profile refuses it: it covers neither @target-uri nor content-digest.
        assert_eq!(
            received.verify(&rfc_request(), &vk, &VerifyPolicy::default(), 1618884473),
            Err(HttpSigError::MissingParam("alg"))
        );
        let policy = VerifyPolicy {
            require_alg: false,
            ..VerifyPolicy::default()
        };
        assert_eq!(
            received.verify(&rfc_request(), &vk, &policy, 1618884473),
            Err(HttpSigError::NotCovered("@target-uri".to_owned()))
        );
    }

    #[test]
    fn rfc9530_content_digest_example() {
        let body = br#"{"hello": "world"}"#;
        assert_eq!(
            content_digest(body),
            "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
        );
        assert!(verify_content_digest(&content_digest(body), body).is_ok());
        // Other algorithms may ride along; sha-256 is what counts.
        let both = format!(
            "sha-512=:{}:, {}",
            Base64::encode_string(&[1; 64]),
            content_digest(body)
        );
        assert!(verify_content_digest(&both, body).is_ok());
        assert_eq!(
            verify_content_digest(&content_digest(b"other"), body),
            Err(HttpSigError::DigestMismatch)
        );
        assert_eq!(
            verify_content_digest(RFC_HEADERS[3].1, body),
            Err(HttpSigError::DigestMismatch)
        );
    }

    const BODY: &[u8] = br#"{"record":"r1"}"#;
    const NOW: u64 = 1_700_000_000;
    const NONCE: &str = "b3k2pp5k7z-50gnwp.yemd";

    fn profile_headers() -> Vec<(&'static str, String)> {
        vec![
            ("Content-Type", "application/json".to_owned()),
            ("Content-Digest", content_digest(BODY)),
        ]
    }

    fn with_request<T>(headers: &[(&str, String)], f: impl FnOnce(&HttpRequest<'_>) -> T) -> T {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let req = HttpRequest {
            method: "PUT",
            target_uri: "https://vault.hospital-a.example/records/r1?v=2",
            headers: &hs,
        };
        f(&req)
    }

    fn signed(created: u64, expires: u64) -> SignatureHeaders {
        let params =
            SignatureParams::profile("hospital-a/gw-1", NONCE, created, expires).expect("p");
        with_request(&profile_headers(), |req| {
            sign_request(req, "sig1", &params, &rfc_key()).expect("sign")
        })
    }

    fn verify_at(
        h: &SignatureHeaders,
        headers: &[(&str, String)],
        now: u64,
    ) -> SigResult<VerifiedSignature> {
        let r = ReceivedSignature::parse(&h.signature_input, &h.signature, "sig1")?;
        with_request(headers, |req| {
            r.verify(
                req,
                &rfc_key().verifying_key(),
                &VerifyPolicy::default(),
                now,
            )
        })
    }

    #[test]
    fn profile_signature_input_and_base_are_pinned() {
        let params = SignatureParams::profile("hospital-a/gw-1", NONCE, NOW, NOW + 60).expect("p");
        let base =
            with_request(&profile_headers(), |req| signature_base(req, &params)).expect("base");
        let expected = format!(
            "\"@method\": PUT\n\"@target-uri\": https://vault.hospital-a.example/records/r1?v=2\n\"content-digest\": {}\n\"@signature-params\": (\"@method\" \"@target-uri\" \"content-digest\");created={NOW};expires={};nonce=\"{NONCE}\";keyid=\"hospital-a/gw-1\";alg=\"ed25519\"",
            content_digest(BODY),
            NOW + 60
        );
        assert_eq!(base, expected);
        assert_eq!(
            signed(NOW, NOW + 60).signature_input,
            format!("sig1={}", params.serialize())
        );
    }

    #[test]
    fn profile_signature_verifies_and_returns_the_keyid() {
        let v = verify_at(&signed(NOW, NOW + 60), &profile_headers(), NOW + 5).expect("verify");
        assert_eq!(v.keyid, "hospital-a/gw-1");
        assert_eq!(v.nonce.as_deref(), Some(NONCE));
        assert_eq!(v.expires, Some(NOW + 60));
    }

    #[test]
    fn changed_method_uri_or_digest_breaks_the_signature() {
        let h = signed(NOW, NOW + 60);
        let r = ReceivedSignature::parse(&h.signature_input, &h.signature, "sig1").expect("parse");
        let vk = rfc_key().verifying_key();
        let policy = VerifyPolicy::default();
        let hs = profile_headers();
        let hs: Vec<(&str, &str)> = hs.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let good = HttpRequest {
            method: "PUT",
            target_uri: "https://vault.hospital-a.example/records/r1?v=2",
            headers: &hs,
        };
        assert!(r.verify(&good, &vk, &policy, NOW).is_ok());
        let method = HttpRequest {
            method: "DELETE",
            ..good
        };
        let uri = HttpRequest {
            target_uri: "https://vault.hospital-a.example/records/r2?v=2",
            ..good
        };
        let other_digest = [("Content-Digest", content_digest(b"x"))];
        let od: Vec<(&str, &str)> = other_digest.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let digest = HttpRequest {
            headers: &od,
            ..good
        };
        for req in [method, uri, digest] {
            assert_eq!(
                r.verify(&req, &vk, &policy, NOW),
                Err(HttpSigError::BadSignature)
            );
        }
        let stranger = SigningKey::from_bytes(&[3; 32]).verifying_key();
        assert_eq!(
            r.verify(&good, &stranger, &policy, NOW),
            Err(HttpSigError::BadSignature)
        );
        let missing = HttpRequest {
            headers: &[],
            ..good
        };
        assert_eq!(
            r.verify(&missing, &vk, &policy, NOW),
            Err(HttpSigError::MissingComponent("content-digest".to_owned()))
        );
    }

    #[test]
    fn time_checks_refuse_future_old_expired_and_overlong_signatures() {
        let h = signed(NOW, NOW + 60);
        assert!(
            verify_at(&h, &profile_headers(), NOW - 60).is_ok(),
            "within skew"
        );
        assert!(matches!(
            verify_at(&h, &profile_headers(), NOW - 61),
            Err(HttpSigError::CreatedInFuture { .. })
        ));
        assert!(matches!(
            verify_at(&h, &profile_headers(), NOW + 60),
            Err(HttpSigError::Expired { .. })
        ));
        let long = signed(NOW, NOW + 301);
        assert_eq!(
            verify_at(&long, &profile_headers(), NOW),
            Err(HttpSigError::ValidityTooLong)
        );
        let old = signed(NOW, NOW + 300);
        assert!(
            verify_at(&old, &profile_headers(), NOW + 299).is_ok(),
            "validity of exactly max_validity_secs and age under max_age_secs are accepted"
        );
        let backwards = signed(NOW, NOW - 1);
        assert_eq!(
            verify_at(&backwards, &profile_headers(), NOW),
            Err(HttpSigError::BadParam("expires"))
        );
        let policy = VerifyPolicy {
            max_age_secs: 10,
            ..VerifyPolicy::default()
        };
        let r = ReceivedSignature::parse(&h.signature_input, &h.signature, "sig1").expect("parse");
        let res = with_request(&profile_headers(), |req| {
            r.verify(req, &rfc_key().verifying_key(), &policy, NOW + 11)
        });
        assert!(matches!(res, Err(HttpSigError::TooOld { .. })));
    }

    fn sign_with(components: &[&str], params: Vec<SigParam>) -> SignatureHeaders {
        let p = SignatureParams::new(components.iter().map(|c| (*c).to_owned()).collect(), params)
            .expect("params");
        with_request(&profile_headers(), |req| {
            sign_request(req, "sig1", &p, &rfc_key()).expect("sign")
        })
    }

    #[test]
    fn policy_requires_components_nonce_expires_keyid_and_ed25519() {
        let full = |skip: &str| -> Vec<SigParam> {
            vec![
                SigParam::Created(NOW),
                SigParam::Expires(NOW + 60),
                SigParam::Nonce(NONCE.to_owned()),
                SigParam::KeyId("k".to_owned()),
                SigParam::Alg(ALG_ED25519.to_owned()),
            ]
            .into_iter()
            .filter(|p| p.name() != skip)
            .collect()
        };
        for (skip, name) in [
            ("nonce", "nonce"),
            ("expires", "expires"),
            ("keyid", "keyid"),
            ("alg", "alg"),
            ("created", "created"),
        ] {
            let h = sign_with(&PROFILE_COMPONENTS, full(skip));
            assert_eq!(
                verify_at(&h, &profile_headers(), NOW),
                Err(HttpSigError::MissingParam(name))
            );
        }
        let h = sign_with(&["@method", "@target-uri"], full(""));
        assert_eq!(
            verify_at(&h, &profile_headers(), NOW),
            Err(HttpSigError::NotCovered("content-digest".to_owned()))
        );
        let mut rsa = full("alg");
        rsa.push(SigParam::Alg("rsa-pss-sha512".to_owned()));
        let h = sign_with(&PROFILE_COMPONENTS, rsa);
        assert_eq!(
            verify_at(&h, &profile_headers(), NOW),
            Err(HttpSigError::BadParam("alg"))
        );
        let mut short = full("nonce");
        short.push(SigParam::Nonce("short".to_owned()));
        let h = sign_with(&PROFILE_COMPONENTS, short);
        assert_eq!(
            verify_at(&h, &profile_headers(), NOW),
            Err(HttpSigError::BadParam("nonce"))
        );
    }

    #[test]
    fn derived_components_follow_rfc9421_section_2_2() {
        let req = HttpRequest {
            method: "GET",
            target_uri: "HTTPS://Example.COM:443/a/b?x=1#frag",
            headers: &[("X-Multi", " a "), ("x-multi", "b\t")],
        };
        assert_eq!(
            component_value(&req, "@authority").expect("a"),
            "example.com"
        );
        assert_eq!(component_value(&req, "@scheme").expect("s"), "https");
        assert_eq!(component_value(&req, "@path").expect("p"), "/a/b");
        assert_eq!(component_value(&req, "@query").expect("q"), "?x=1");
        assert_eq!(component_value(&req, "x-multi").expect("h"), "a, b");
        let bare = HttpRequest {
            target_uri: "http://example.com:8080",
            ..req
        };
        assert_eq!(
            component_value(&bare, "@authority").expect("a"),
            "example.com:8080"
        );
        assert_eq!(component_value(&bare, "@path").expect("p"), "/");
        assert_eq!(component_value(&bare, "@query").expect("q"), "?");
        assert!(matches!(
            component_value(&req, "@request-response"),
            Err(HttpSigError::UnsupportedComponent(_))
        ));
        assert!(matches!(
            component_value(&req, "X-Multi"),
            Err(HttpSigError::UnsupportedComponent(_))
        ));
        let newline = HttpRequest {
            headers: &[("x-evil", "a\nb")],
            ..req
        };
        assert!(matches!(
            component_value(&newline, "x-evil"),
            Err(HttpSigError::BadComponentValue(_))
        ));
    }

    #[test]
    fn parser_refuses_malformed_and_out_of_profile_headers() {
        let sig = B26_SIGNATURE;
        let bad_inputs = [
            "",
            "sig-b26",
            "sig-b26=",
            "sig-b26=(\"date\"",
            "sig-b26=(\"date\";x=1);created=1",
            "sig-b26=(\"date\");created=-1",
            "sig-b26=(\"date\");created=1.5",
            "sig-b26=(\"date\");created=1234567890123456",
            "sig-b26=(\"date\");created",
            "sig-b26=(\"date\");tag=\"x\"",
            "sig-b26=(\"date\");keyid=\"a\\x\"",
            "sig-b26=(\"date\" \"date\");created=1",
            "sig-b26=(\"Date\");created=1",
            "sig-b26=(\"date\");created=1;created=2",
            "sig-b26=(\"date\"), sig-b26=(\"date\")",
            "sig-b26=(\"date\"),",
            "Sig=(\"date\")",
            "sig-b26=\"date\"",
        ];
        for input in bad_inputs {
            assert!(
                matches!(
                    ReceivedSignature::parse(input, sig, "sig-b26"),
                    Err(HttpSigError::Parse { .. })
                ),
                "{input:?}"
            );
        }
        let bad_sigs = [
            "sig-b26=:wqcA:",
            "sig-b26=:not base64!:",
            "sig-b26=wqcA",
            "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:;x=1",
        ];
        for s in bad_sigs {
            assert!(
                matches!(
                    ReceivedSignature::parse(B26_SIGNATURE_INPUT, s, "sig-b26"),
                    Err(HttpSigError::Parse { .. })
                ),
                "{s:?}"
            );
        }
        assert_eq!(
            ReceivedSignature::parse(B26_SIGNATURE_INPUT, sig, "sig1"),
            Err(HttpSigError::MissingLabel("sig1".to_owned()))
        );
        let long = format!(
            "sig-b26=(\"date\");keyid=\"{}\"",
            "k".repeat(MAX_SIGNATURE_INPUT_BYTES)
        );
        assert!(matches!(
            ReceivedSignature::parse(&long, sig, "sig-b26"),
            Err(HttpSigError::HeaderTooLong { .. })
        ));
        let many = (0..=MAX_DICT_MEMBERS)
            .map(|i| format!("s{i}=(\"date\")"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(ReceivedSignature::parse(&many, sig, "s0").is_err());
    }

    #[test]
    fn parser_accepts_several_members_and_optional_whitespace() {
        let input = format!("other=(\"@method\");created=1 ,\t{B26_SIGNATURE_INPUT}  ");
        let sigs = format!(
            "{B26_SIGNATURE}, other=:{}:",
            Base64::encode_string(&[0; 64])
        );
        let r = ReceivedSignature::parse(&input, &sigs, "sig-b26").expect("parse");
        assert_eq!(r.params(), &b26_params());
        assert_eq!(r.label(), "sig-b26");
    }

    #[test]
    fn strings_with_quotes_and_backslashes_round_trip() {
        let p = SignatureParams::new(
            vec!["@method".to_owned()],
            vec![SigParam::KeyId("a\"b\\c".to_owned())],
        )
        .expect("params");
        assert_eq!(p.serialize(), "(\"@method\");keyid=\"a\\\"b\\\\c\"");
        let h = with_request(&profile_headers(), |req| {
            sign_request(req, "s", &p, &rfc_key())
        })
        .expect("sign");
        let r = ReceivedSignature::parse(&h.signature_input, &h.signature, "s").expect("parse");
        assert_eq!(r.keyid(), Some("a\"b\\c"));
    }

    #[test]
    fn nonce_cache_refuses_replays_until_expiry() {
        let mut cache = NonceCache::new(10);
        assert!(cache.check_and_insert("k", NONCE, NOW + 60, NOW).is_ok());
        assert_eq!(
            cache.check_and_insert("k", NONCE, NOW + 60, NOW + 1),
            Err(HttpSigError::Replay)
        );
        // Same nonce under another key is a different entry.
        assert!(cache
            .check_and_insert("k2", NONCE, NOW + 60, NOW + 1)
            .is_ok());
        // At expiry the entry goes, and so would the signature (verify refuses now >= expires).
        assert!(matches!(
            cache.check_and_insert("k", NONCE, NOW + 60, NOW + 60),
            Err(HttpSigError::Expired { .. })
        ));
        assert!(cache.is_empty());
    }

    #[test]
    fn full_nonce_cache_fails_closed_and_evicts_only_expired_entries_in_order() {
        let mut cache = NonceCache::new(3);
        for (i, exp) in [(0, NOW + 30), (1, NOW + 10), (2, NOW + 20)] {
            cache
                .check_and_insert("k", &format!("nonce-{i}"), exp, NOW)
                .expect("insert");
        }
        assert_eq!(
            cache.check_and_insert("k", "nonce-3", NOW + 30, NOW),
            Err(HttpSigError::NonceCacheFull)
        );
        // The full cache still refuses replays of live entries.
        assert_eq!(
            cache.check_and_insert("k", "nonce-1", NOW + 10, NOW + 9),
            Err(HttpSigError::Replay)
        );
        // At NOW+10 exactly the earliest entry (nonce-1) is evicted, and only it.
        cache
            .check_and_insert("k", "nonce-3", NOW + 40, NOW + 10)
            .expect("room after eviction");
        assert_eq!(
            cache.check_and_insert("k", "nonce-2", NOW + 20, NOW + 10),
            Err(HttpSigError::Replay)
        );
        assert_eq!(
            cache.check_and_insert("k", "nonce-0", NOW + 30, NOW + 10),
            Err(HttpSigError::Replay)
        );
        cache.evict_expired(NOW + 30);
        assert_eq!(cache.len(), 1);
    }

    /// One flooding key fills its own quota, never the cache: another key still gets in, and
    /// the flooder gets room back as its entries expire.
    #[test]
    fn one_key_cannot_take_the_whole_nonce_cache() {
        let mut cache = NonceCache::with_key_quota(100, 4);
        for i in 0..4 {
            cache
                .check_and_insert("flood", &format!("nonce-{i:02}"), NOW + 10, NOW)
                .expect("within the quota");
        }
        assert_eq!(
            cache.check_and_insert("flood", "nonce-99", NOW + 10, NOW),
            Err(HttpSigError::KeyNonceQuota { limit: 4 })
        );
        cache
            .check_and_insert("victim", NONCE, NOW + 10, NOW)
            .expect("another key is not affected");
        cache
            .check_and_insert("flood", "nonce-99", NOW + 20, NOW + 10)
            .expect("the flooder's entries expired");
        assert_eq!(cache.len(), 1);
    }
    #[test]
    fn nonce_cache_eviction_is_deterministic() {
        let run = || {
            let mut c = NonceCache::new(50);
            let mut log = Vec::new();
            for i in 0u64..200 {
                let r = c.check_and_insert(
                    &format!("k{}", i % 7),
                    &format!("n{}", i % 13),
                    NOW + i % 17 + 1,
                    NOW + i / 10,
                );
                log.push(format!("{r:?}"));
            }
            (log, c.len())
        };
        assert_eq!(run(), run());
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_strings(a in ".{0,300}", b in ".{0,200}") {
            let _ = ReceivedSignature::parse(&a, &b, "sig1");
            let _ = verify_content_digest(&a, b.as_bytes());
        }

        #[test]
        fn parsers_never_panic_on_structured_looking_input(a in "[a-z0-9=();:\" ,.*@\\\\-]{0,200}") {
            let _ = ReceivedSignature::parse(&a, &a, "sig1");
            let _ = ReceivedSignature::parse(&a, B26_SIGNATURE, "sig-b26");
        }

        #[test]
        fn sign_parse_verify_round_trips(keyid in "[ -~]{1,64}", nonce in "[ -~]{16,64}", created in 0u64..MAX_SF_INTEGER - 1000) {
            let params = SignatureParams::profile(&keyid, &nonce, created, created + 100).expect("p");
            let h = with_request(&profile_headers(), |req| sign_request(req, "sig1", &params, &rfc_key())).expect("sign");
            let r = ReceivedSignature::parse(&h.signature_input, &h.signature, "sig1").expect("parse");
            prop_assert_eq!(r.params(), &params);
            let v = with_request(&profile_headers(), |req| r.verify(req, &rfc_key().verifying_key(), &VerifyPolicy::default(), created + 1)).expect("verify");
            prop_assert_eq!(v.keyid, keyid);
        }
    }
}

//! The one error type of the vault crate. Every input is untrusted, so every way an input can be
//! refused has its own variant; nothing in this crate panics on bad input.

/// Why a vault operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// A plaintext or ciphertext exceeds its documented limit.
    #[error("{what} is {len} bytes, over the limit of {limit}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// An identifier (record id, patient id, member id, ...) is empty or over its limit.
    #[error("{field} must be 1 to {limit} bytes, got {len}")]
    BadIdentifier {
        /// Which identifier.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// Bytes that should hold an encoded vault object do not.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which object was being decoded.
        what: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// An encoded object carries a format version this code does not know.
    #[error("unsupported {what} format version {version}")]
    UnsupportedVersion {
        /// Which object was being decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// The data key does not match the key commitment stored with the record.
    #[error("the data key does not match the record's key commitment")]
    KeyCommitmentMismatch,
    /// Authenticated decryption failed: wrong key, wrong associated data, or tampered bytes.
    #[error("decryption failed: wrong key, wrong record binding, or tampered ciphertext")]
    DecryptFailed,
    /// Encryption failed (only on lengths the AEAD cannot take; our limits keep far below them).
    #[error("encryption failed")]
    EncryptFailed,
    /// A wrapped key names a different KEK than the one offered to unwrap it.
    #[error("wrapped under KEK {found}, not under the offered KEK {offered}")]
    WrongKek {
        /// Hex of the KEK id in the wrapped key.
        found: String,
        /// Hex of the KEK id of the key offered.
        offered: String,
    },
    /// A KEK file is readable by group or others (unix mode bits shown in octal).
    #[error(
        "KEK file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)"
    )]
    InsecureKekFile {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing a KEK file failed.
    #[error("KEK file {path}: {reason}")]
    KekFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An X25519 public key was refused by HPKE (e.g. a low-order point).
    #[error("the reader's X25519 public key was refused")]
    BadBoxPublicKey,
    /// An Ed25519 signature did not verify (strict verification).
    #[error("signature does not verify")]
    BadSignature,
    /// An HTTP message signature was refused; see [`HttpSigError`].
    #[error(transparent)]
    HttpSig(#[from] HttpSigError),
}

/// Why an HTTP message signature (RFC 9421) or its replay check was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSigError {
    /// A header value is over its byte limit.
    #[error("{header} header is {len} bytes, over the limit of {limit}")]
    HeaderTooLong {
        /// Which header.
        header: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// A structured field does not parse under our strict subset of RFC 8941.
    #[error("cannot parse {header}: {reason}")]
    Parse {
        /// Which header.
        header: &'static str,
        /// What was wrong.
        reason: &'static str,
    },
    /// The requested signature label is not in both Signature-Input and Signature.
    #[error("no signature labelled {0:?}")]
    MissingLabel(String),
    /// A covered component is not one this profile can resolve.
    #[error("unsupported component {0:?}")]
    UnsupportedComponent(String),
    /// A covered component is absent from the message.
    #[error("component {0:?} is not present in the message")]
    MissingComponent(String),
    /// A component value holds characters that cannot appear in a signature base.
    #[error("component {0:?} has a value with control characters")]
    BadComponentValue(String),
    /// A required component is not covered by the signature.
    #[error("signature does not cover required component {0:?}")]
    NotCovered(String),
    /// A required signature parameter is absent.
    #[error("signature parameter {0:?} is required")]
    MissingParam(&'static str),
    /// A signature parameter has a value outside the profile.
    #[error("signature parameter {0:?} has a value outside the profile")]
    BadParam(&'static str),
    /// `created` is later than now plus the allowed skew.
    #[error("signature created in the future ({created} > now {now} + skew)")]
    CreatedInFuture {
        /// The `created` parameter.
        created: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `created` is older than the maximum age.
    #[error("signature too old (created {created}, now {now})")]
    TooOld {
        /// The `created` parameter.
        created: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `expires` has passed.
    #[error("signature expired at {expires} (now {now})")]
    Expired {
        /// The `expires` parameter.
        expires: u64,
        /// The verifier's clock.
        now: u64,
    },
    /// `expires - created` is over the profile's maximum validity.
    #[error("signature validity window is over the limit")]
    ValidityTooLong,
    /// The `Content-Digest` header does not match the body or lacks `sha-256`.
    #[error("content-digest does not match the body")]
    DigestMismatch,
    /// The Ed25519 signature does not verify over the signature base.
    #[error("HTTP message signature does not verify")]
    BadSignature,
    /// (keyid, nonce) was already seen and has not expired: a replay.
    #[error("nonce already used by this key")]
    Replay,
    /// The nonce cache is full of unexpired entries; new requests are refused (fail closed).
    #[error("nonce cache full")]
    NonceCacheFull,
    /// This key already has `limit` signed requests within their validity: it must wait for
    /// them to expire (one key may not take the cache every other key needs).
    #[error("this key has {limit} signed requests in flight, the most one key may; retry shortly")]
    KeyNonceQuota {
        /// The per-key quota.
        limit: usize,
    },
}

/// Shorthand for results of this crate.
pub type Result<T> = core::result::Result<T, VaultError>;

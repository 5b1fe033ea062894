//! medledger record vault, cryptographic core (issue 13).
//!
//! Pure functions and types, no I/O beyond reading and writing a KEK file: the HTTP gateway and
//! storage are wired in elsewhere. Byte formats are specified in `docs/vault.md`.
//!
//! - [`record`]: each record is sealed under its own fresh 32-byte data key with
//!   XChaCha20-Poly1305; the associated data binds record id, patient id, resource type and
//!   version; a key commitment stops a second key from opening the same ciphertext.
//!   [`record::content_hash`] is what goes on chain.
//! - [`kek`]: data keys are stored only wrapped under the member's key-encryption key (KEK).
//! - [`share`]: a data key is shared with another member by HPKE to that member's X25519 key,
//!   which the member registered on chain signed by its Ed25519 admin key.
//! - [`threshold`]: threshold custody (issue 25): a record's key derives from a secret split
//!   `t`-of-`r` among member gateways (Shamir with Feldman commitments over Ristretto255), each
//!   share HPKE-sealed to one member's box key; any `t` rebuild the key, a bad share is named.
//! - [`httpsig`]: RFC 9421 HTTP Message Signatures (Ed25519) for gateway requests, with a
//!   replay cache.
//!
//! # Threat model, in brief
//!
//! - **A stolen ciphertext** (a copy of off-chain storage or a backup) gives nothing but its
//!   length and, from the chain, its metadata: without the data key it is IND-CCA secure.
//!   Moving it to another record, patient, type or version, or altering any byte, makes
//!   decryption fail; the on-chain content hash detects substitution.
//! - **A stolen wrapped key** gives nothing without the KEK that wrapped it (or, for a shared
//!   copy, the reader's X25519 secret). It is bound to its record id, so it cannot be used to
//!   open another record's ciphertext even by someone holding the KEK.
//! - **A stolen KEK** together with the wrapped keys and ciphertexts of that member opens every
//!   record that member holds: the KEK belongs in an HSM or KMS (here a `0600` file stands in
//!   for one). It opens nothing that was never wrapped under it; rotate with [`kek::rewrap`] and
//!   destroy the old KEK.
//! - **A stolen X25519 box key** opens the data keys shared with that member (and only those).
//!   Re-register a new key on chain; shares already sent must be treated as disclosed.
//! - **A stolen threshold holder** (one gateway's KEK, box key and every file) gives one share
//!   of each record it holds: fewer than `t` shares say nothing of the key. `t` colluding
//!   holders rebuild it; a holder giving a wrong share is detected by the anchored commitments.
//! - **A stolen Ed25519 admin key** lets the thief register a box key of its own and so receive
//!   future shares: the chain's key-rotation and revocation rules are the defence.
//! - **A stolen gateway request** cannot be replayed while valid ([`httpsig::NonceCache`]) and is
//!   useless once expired; it cannot be altered (method, target URI and body digest are signed).
//!
//! # Crypto-shredding
//!
//! Erasure of a record (for example after a patient's erasure request, where law allows) is
//! done by destroying its data key: every wrapped copy under every KEK (including backups) and
//! every HPKE share. The ciphertext may remain anywhere; without the key it is noise. This is
//! the "cryptographic erase" sanitization method of NIST SP 800-88. It works only if no
//! plaintext copy or unwrapped key survives elsewhere ([`record::DataKey`] zeroizes on drop),
//! and it cannot recall what a reader already decrypted.

pub mod codec;
pub mod error;
pub mod httpsig;
pub mod kek;
pub mod record;
pub mod share;
pub mod threshold;

pub use error::{HttpSigError, Result, VaultError};

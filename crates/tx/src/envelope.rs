//! The signed envelope: decoding untrusted bytes, signing and verifying.
//!
//! A [`VerifiedTx`] can only be made by checking its signature, so code that holds one knows the
//! signer really signed that body for that chain id.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;

use crate::error::{Code, TxError};
use crate::ids::tx_hash;
use crate::limits::MAX_TX_BYTES;
use crate::pb::{Tx, TxBody};

/// Namespace of every transaction signature: a signature made for medledger transactions can
/// never be replayed as anything else, and vice versa.
pub const TX_SIGNING_NAMESPACE: &[u8] = b"medledger/tx/v1";

/// The bytes a signer signs: `namespace || 0x00 || len(chain_id) || chain_id || body`.
pub fn signing_bytes(chain_id: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TX_SIGNING_NAMESPACE.len() + 2 + chain_id.len() + body.len());
    out.extend_from_slice(TX_SIGNING_NAMESPACE);
    out.push(0);
    // Chain ids are at most 50 bytes (checked before signing and after decoding).
    out.push(u8::try_from(chain_id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(chain_id.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A decoded transaction whose signature has not been checked yet.
#[derive(Clone, Debug)]
pub struct SignedTx {
    /// The decoded body.
    pub body: TxBody,
    /// The exact body bytes that were signed.
    pub body_bytes: Vec<u8>,
    /// The signer's key.
    pub public_key: [u8; 32],
    /// The signature.
    pub signature: [u8; 64],
    /// SHA-256 of the whole tx (CometBFT's tx hash).
    pub hash: [u8; 32],
}

/// A transaction whose signature verified. Only [`SignedTx::verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedTx(SignedTx);

impl VerifiedTx {
    /// The body.
    pub fn body(&self) -> &TxBody {
        &self.0.body
    }
    /// The key that signed it.
    pub fn signer(&self) -> &[u8; 32] {
        &self.0.public_key
    }
    /// The tx hash.
    pub fn hash(&self) -> &[u8; 32] {
        &self.0.hash
    }
}

/// Decodes untrusted bytes into a [`SignedTx`]: size limit, protobuf decoding, canonical form,
/// key and signature lengths. Never panics.
pub fn decode_tx(bytes: &[u8]) -> Result<SignedTx, TxError> {
    if bytes.len() > MAX_TX_BYTES {
        return Err(TxError::new(
            Code::TxTooLarge,
            format!("tx is {} bytes; the limit is {MAX_TX_BYTES}", bytes.len()),
        ));
    }
    let tx = Tx::decode(bytes)
        .map_err(|e| TxError::new(Code::TxDecode, format!("not a medledger Tx: {e}")))?;
    if tx.encode_to_vec() != bytes {
        return Err(TxError::new(
            Code::NonCanonical,
            "tx envelope is not in canonical protobuf form",
        ));
    }
    let body = TxBody::decode(tx.body.as_slice())
        .map_err(|e| TxError::new(Code::TxDecode, format!("tx body is not a TxBody: {e}")))?;
    if body.encode_to_vec() != tx.body {
        return Err(TxError::new(
            Code::NonCanonical,
            "tx body is not in canonical protobuf form",
        ));
    }
    let public_key: [u8; 32] = tx.public_key.as_slice().try_into().map_err(|_| {
        TxError::new(
            Code::BadPublicKey,
            format!("public key is {} bytes; want 32", tx.public_key.len()),
        )
    })?;
    let signature: [u8; 64] = tx.signature.as_slice().try_into().map_err(|_| {
        TxError::new(
            Code::BadSignature,
            format!("signature is {} bytes; want 64", tx.signature.len()),
        )
    })?;
    Ok(SignedTx {
        body,
        body_bytes: tx.body,
        public_key,
        signature,
        hash: tx_hash(bytes),
    })
}

impl SignedTx {
    /// Checks the signature over the body for the chain id the body names (whether that is
    /// *our* chain id is a stateful check). Uses strict verification and rejects weak keys, so
    /// validity does not depend on which verification equation a node happens to use.
    pub fn verify(self) -> Result<VerifiedTx, TxError> {
        let key = VerifyingKey::from_bytes(&self.public_key).map_err(|_| {
            TxError::new(
                Code::BadPublicKey,
                "public key is not a valid Ed25519 point",
            )
        })?;
        if key.is_weak() {
            return Err(TxError::new(
                Code::BadPublicKey,
                "public key has small order",
            ));
        }
        let signature = Signature::from_bytes(&self.signature);
        let message = signing_bytes(&self.body.chain_id, &self.body_bytes);
        key.verify_strict(&message, &signature).map_err(|_| {
            TxError::new(
                Code::BadSignature,
                "signature does not verify for this key, chain id and body",
            )
        })?;
        Ok(VerifiedTx(self))
    }
}

/// Decodes and verifies in one step.
pub fn decode_and_verify(bytes: &[u8]) -> Result<VerifiedTx, TxError> {
    decode_tx(bytes)?.verify()
}

/// Memo of transactions whose signatures verified, by tx hash, so each node checks a signature
/// once (in CheckTx) rather than again in PrepareProposal, ProcessProposal and FinalizeBlock.
///
/// Sound because the hash is SHA-256 of the exact tx bytes: a hit means the very same body, key
/// and signature that verified before. Bounded: the oldest entries are forgotten first (a miss
/// only costs a verification).
pub struct SigCache {
    capacity: usize,
    seen: std::collections::BTreeSet<[u8; 32]>,
    order: std::collections::VecDeque<[u8; 32]>,
    hits: u64,
    misses: u64,
}

impl SigCache {
    /// A cache of at most `capacity` tx hashes.
    pub fn new(capacity: usize) -> Self {
        SigCache {
            capacity,
            seen: std::collections::BTreeSet::new(),
            order: std::collections::VecDeque::new(),
            hits: 0,
            misses: 0,
        }
    }

    /// Decodes and verifies `bytes`, skipping the signature check for a tx verified before.
    pub fn decode_and_verify(&mut self, bytes: &[u8]) -> Result<VerifiedTx, TxError> {
        let tx = decode_tx(bytes)?;
        if self.seen.contains(&tx.hash) {
            self.hits += 1;
            return Ok(VerifiedTx(tx));
        }
        self.misses += 1;
        let verified = tx.verify()?;
        self.remember(verified.0.hash);
        Ok(verified)
    }

    fn remember(&mut self, hash: [u8; 32]) {
        if self.capacity == 0 || self.seen.contains(&hash) {
            return;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(hash);
        self.order.push_back(hash);
    }

    /// Verifies the signatures of a block's txs not seen before, on every core, and remembers
    /// the valid ones, so that the in-order [`SigCache::decode_and_verify`] that follows only
    /// hits. Results do not depend on the cores: each check is the same strict, independent
    /// verification (never a randomised batch check, whose verdict on a crafted signature could
    /// differ from the strict one). Undecodable txs and certificates are left to the caller.
    pub fn warm(&mut self, txs: &[Vec<u8>]) {
        // The hash first: a cached tx (most of a block) is not decoded here a second time.
        let mut fresh: Vec<SignedTx> = txs
            .iter()
            .filter(|b| !self.seen.contains(&tx_hash(b)))
            .filter_map(|b| decode_tx(b).ok())
            .collect();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_VERIFY_THREADS);
        if fresh.len() < PARALLEL_FROM || threads < 2 {
            return; // decode_and_verify does them one by one
        }
        let per_thread = fresh.len().div_ceil(threads);
        let mut chunks = Vec::with_capacity(threads);
        while !fresh.is_empty() {
            let rest = fresh.split_off(per_thread.min(fresh.len()));
            chunks.push(std::mem::replace(&mut fresh, rest));
        }
        let valid: Vec<[u8; 32]> = std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    s.spawn(move || {
                        chunk
                            .into_iter()
                            .filter_map(|t| t.verify().ok().map(|v| v.0.hash))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        self.misses += valid.len() as u64;
        for hash in valid {
            self.remember(hash);
        }
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

/// Most threads [`SigCache::warm`] uses.
const MAX_VERIFY_THREADS: usize = 4;
/// Fewer unseen signatures than this are not worth starting threads for (~40 µs each).
const PARALLEL_FROM: usize = 32;

/// Encodes `body` canonically, signs it for the chain id it names, and returns the tx bytes.
pub fn sign_tx(key: &SigningKey, body: &TxBody) -> Vec<u8> {
    let body_bytes = body.encode_to_vec();
    let signature = key.sign(&signing_bytes(&body.chain_id, &body_bytes));
    Tx {
        body: body_bytes,
        public_key: key.verifying_key().to_bytes().to_vec(),
        signature: signature.to_bytes().to_vec(),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{tx_body::Msg, RegisterPatient};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn body(chain_id: &str, sequence: u64) -> TxBody {
        TxBody {
            chain_id: chain_id.into(),
            sequence,
            unordered: None,
            msg: Some(Msg::RegisterPatient(RegisterPatient::default())),
        }
    }

    #[test]
    fn signed_tx_verifies_and_names_its_signer() {
        let k = key(1);
        let bytes = sign_tx(&k, &body("medledger-test", 0));
        let tx = decode_and_verify(&bytes).expect("valid tx");
        assert_eq!(tx.signer(), &k.verifying_key().to_bytes());
        assert_eq!(tx.body().sequence, 0);
        assert_eq!(tx.hash(), &tx_hash(&bytes));
    }

    #[test]
    fn signature_for_another_chain_id_does_not_verify_after_edit() {
        let k = key(1);
        let bytes = sign_tx(&k, &body("chain-a", 0));
        let mut tx = Tx::decode(bytes.as_slice()).expect("decodes");
        tx.body = body("chain-b", 0).encode_to_vec();
        let err = decode_and_verify(&tx.encode_to_vec()).expect_err("tampered");
        assert_eq!(err.code, Code::BadSignature);
    }

    #[test]
    fn flipped_signature_bit_is_bad_signature() {
        let bytes = sign_tx(&key(2), &body("c", 0));
        let mut tx = Tx::decode(bytes.as_slice()).expect("decodes");
        tx.signature[10] ^= 1;
        assert_eq!(
            decode_and_verify(&tx.encode_to_vec())
                .expect_err("bad")
                .code,
            Code::BadSignature
        );
    }

    #[test]
    fn garbage_is_decode_error() {
        assert_eq!(
            decode_tx(&[0xff, 0xff, 0xff]).expect_err("garbage").code,
            Code::TxDecode
        );
    }

    #[test]
    fn oversized_tx_is_rejected_before_decoding() {
        let err = decode_tx(&vec![0u8; MAX_TX_BYTES + 1]).expect_err("too large");
        assert_eq!(err.code, Code::TxTooLarge);
    }

    #[test]
    fn unknown_field_makes_tx_non_canonical() {
        let mut bytes = sign_tx(&key(3), &body("c", 0));
        // Field 15, varint 1: prost skips it when decoding, so re-encoding differs.
        bytes.extend_from_slice(&[0x78, 0x01]);
        assert_eq!(
            decode_tx(&bytes).expect_err("non canonical").code,
            Code::NonCanonical
        );
    }

    #[test]
    fn short_public_key_is_bad_public_key() {
        let bytes = sign_tx(&key(4), &body("c", 0));
        let mut tx = Tx::decode(bytes.as_slice()).expect("decodes");
        tx.public_key.truncate(31);
        assert_eq!(
            decode_tx(&tx.encode_to_vec()).expect_err("short").code,
            Code::BadPublicKey
        );
    }

    #[test]
    fn signing_bytes_are_pinned() {
        // The exact bytes signers sign: changing them invalidates every signing client.
        assert_eq!(
            signing_bytes("ab", &[9]),
            b"medledger/tx/v1\x00\x02ab\x09".to_vec()
        );
    }

    #[test]
    fn cached_verification_gives_the_same_answers_and_skips_rework() {
        let mut cache = SigCache::new(2);
        let good = sign_tx(&key(5), &body("c", 0));
        let mut bad = Tx::decode(good.as_slice()).expect("decodes");
        bad.signature[1] ^= 1;
        let bad = bad.encode_to_vec();
        assert!(cache.decode_and_verify(&good).is_ok());
        assert!(cache.decode_and_verify(&good).is_ok());
        assert_eq!(
            cache.decode_and_verify(&bad).expect_err("bad").code,
            Code::BadSignature
        );
        assert_eq!(
            cache.decode_and_verify(&bad).expect_err("bad").code,
            Code::BadSignature,
            "failures are never cached"
        );
        assert_eq!(cache.stats(), (1, 3));
        // Capacity 2: the oldest is forgotten and simply verified again.
        let (a, b) = (
            sign_tx(&key(6), &body("c", 0)),
            sign_tx(&key(7), &body("c", 0)),
        );
        assert!(cache.decode_and_verify(&a).is_ok() && cache.decode_and_verify(&b).is_ok());
        assert!(cache.decode_and_verify(&good).is_ok());
        assert_eq!(cache.stats(), (1, 6));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = decode_and_verify(&bytes);
        }
    }
}

//! Checkpoint certificates: BLS12-381 aggregate signatures of the consortium over app hashes.
//!
//! Every validator signs `checkpoint_message(chain_id, height, app_hash)` in its vote extension;
//! the next proposer aggregates the signatures of more than 2/3 of the voting power into one
//! [`Certificate`] and puts it in its block. Anyone holding the validators' BLS keys and powers
//! checks a certificate with one pairing-based verification, no header chain needed.
//!
//! Ciphersuite: the IETF BLS signature draft's proof-of-possession scheme with minimal-size
//! public keys, `BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_` (public keys in G1, 48 bytes
//! compressed; signatures in G2, 96 bytes). Keys are registered with a proof of possession, which
//! is what makes `FastAggregateVerify` (one message, many keys) safe against rogue keys.

use blst::min_pk::{AggregateSignature, PublicKey, SecretKey, Signature};
use blst::BLST_ERROR;
use prost::Message;

use crate::error::{Code, TxError};
use crate::pb::Certificate;

/// Domain separation of the signed checkpoint bytes.
pub const CHECKPOINT_NAMESPACE: &[u8] = b"medledger/checkpoint/v1";
/// Hash-to-curve DST of signatures (the POP ciphersuite).
pub const BLS_SIG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// DST of proofs of possession.
pub const BLS_POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Prefix of a certificate tx in a block. A protobuf message never starts with 0x00 (field 0
/// does not exist), so no user `Tx` can be mistaken for a certificate or the other way round.
pub const CERTIFICATE_TX_TAG: &[u8] = b"\x00medledger/certificate/v1\x00";
/// Most validators a certificate covers.
pub const MAX_VALIDATORS: usize = 256;

/// The bytes every validator signs for state `height` with root `app_hash`:
/// `namespace || 0x00 || len(chain_id) (1 byte) || chain_id || height (8 bytes, big-endian) || app_hash`.
pub fn checkpoint_message(chain_id: &str, height: u64, app_hash: &[u8]) -> Vec<u8> {
    let mut m =
        Vec::with_capacity(CHECKPOINT_NAMESPACE.len() + 2 + chain_id.len() + 8 + app_hash.len());
    m.extend_from_slice(CHECKPOINT_NAMESPACE);
    m.push(0);
    m.push(u8::try_from(chain_id.len()).unwrap_or(u8::MAX));
    m.extend_from_slice(chain_id.as_bytes());
    m.extend_from_slice(&height.to_be_bytes());
    m.extend_from_slice(app_hash);
    m
}

/// A validator's BLS secret key.
pub struct BlsKey(SecretKey);

impl BlsKey {
    /// Derives a key from at least 32 bytes of secret randomness (IETF KeyGen).
    pub fn from_ikm(ikm: &[u8]) -> Option<BlsKey> {
        SecretKey::key_gen(ikm, &[]).ok().map(BlsKey)
    }

    /// Loads a key from its 32-byte serialization.
    pub fn from_bytes(bytes: &[u8]) -> Option<BlsKey> {
        SecretKey::from_bytes(bytes).ok().map(BlsKey)
    }

    /// The 32-byte serialization.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The compressed public key (48 bytes).
    pub fn public_key(&self) -> [u8; 48] {
        self.0.sk_to_pk().compress()
    }

    /// The proof of possession: a signature over the public key with the POP DST.
    pub fn proof_of_possession(&self) -> [u8; 96] {
        self.0.sign(&self.public_key(), BLS_POP_DST, &[]).compress()
    }

    /// Signs a checkpoint.
    pub fn sign_checkpoint(&self, chain_id: &str, height: u64, app_hash: &[u8]) -> [u8; 96] {
        self.0
            .sign(
                &checkpoint_message(chain_id, height, app_hash),
                BLS_SIG_DST,
                &[],
            )
            .compress()
    }
}

fn public_key(bytes: &[u8]) -> Option<PublicKey> {
    // key_validate: on the curve, in the subgroup, not the identity.
    PublicKey::key_validate(bytes).ok()
}

fn signature(bytes: &[u8]) -> Option<Signature> {
    let sig = Signature::from_bytes(bytes).ok()?;
    sig.validate(true).ok()?;
    Some(sig)
}

/// Whether `pop` proves possession of the secret key of `bls_key`.
pub fn verify_possession(bls_key: &[u8], pop: &[u8]) -> bool {
    match (public_key(bls_key), signature(pop)) {
        (Some(pk), Some(sig)) => {
            sig.verify(true, bls_key, BLS_POP_DST, &[], &pk, false) == BLST_ERROR::BLST_SUCCESS
        }
        _ => false,
    }
}

/// Whether `share` is `bls_key`'s signature of the checkpoint.
pub fn verify_share(
    bls_key: &[u8],
    chain_id: &str,
    height: u64,
    app_hash: &[u8],
    share: &[u8],
) -> bool {
    match (public_key(bls_key), signature(share)) {
        (Some(pk), Some(sig)) => {
            let m = checkpoint_message(chain_id, height, app_hash);
            sig.verify(true, &m, BLS_SIG_DST, &[], &pk, false) == BLST_ERROR::BLST_SUCCESS
        }
        _ => false,
    }
}

/// Aggregates signature shares; `None` if there are none or one does not decode.
pub fn aggregate(shares: &[&[u8]]) -> Option<[u8; 96]> {
    let sigs: Vec<Signature> = shares.iter().map(|s| signature(s)).collect::<Option<_>>()?;
    let refs: Vec<&Signature> = sigs.iter().collect();
    Some(
        AggregateSignature::aggregate(&refs, false)
            .ok()?
            .to_signature()
            .compress(),
    )
}

/// A validator as a certificate checker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertValidator {
    /// CometBFT address (20 bytes).
    pub address: Vec<u8>,
    /// Compressed BLS public key (48 bytes), registered with a proof of possession.
    pub bls_key: Vec<u8>,
    /// Voting power.
    pub power: u64,
}

/// What a valid certificate proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedState {
    /// Certified height.
    pub height: u64,
    /// Its app hash.
    pub app_hash: Vec<u8>,
    /// Indices (in address order) of the signers.
    pub signers: Vec<usize>,
    /// Power that signed.
    pub signed_power: u64,
    /// Total power.
    pub total_power: u64,
}

/// Why a certificate is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    /// Malformed (sizes, chain id, bitmap).
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// Too little power signed.
    #[error("signers hold {signed} of {total} voting power; more than 2/3 is required")]
    NotEnoughPower {
        /// Power of the claimed signers.
        signed: u64,
        /// Total power.
        total: u64,
    },
    /// The aggregate signature does not verify for the claimed signers.
    #[error("aggregate signature does not verify for the claimed signers")]
    BadSignature,
}

/// Sorts validators into certificate order (by address).
pub fn certificate_order(mut validators: Vec<CertValidator>) -> Vec<CertValidator> {
    validators.sort_by(|a, b| a.address.cmp(&b.address));
    validators
}

/// The signer bitmap for signer indices `signers` among `n` validators.
pub fn bitmap(n: usize, signers: &[usize]) -> Vec<u8> {
    let mut bits = vec![0u8; n.div_ceil(8)];
    for &i in signers {
        if let Some(b) = bits.get_mut(i / 8) {
            *b |= 1 << (i % 8);
        }
    }
    bits
}

/// Checks `cert` against `validators` (in certificate order, see [`certificate_order`]) for
/// `chain_id`: bitmap shape, more than 2/3 of the power among the claimed signers, and one
/// `FastAggregateVerify` of the aggregate signature over the checkpoint message.
pub fn verify_certificate(
    validators: &[CertValidator],
    chain_id: &str,
    cert: &Certificate,
) -> Result<CertifiedState, CertError> {
    let malformed = |m: &str| CertError::Malformed(m.to_string());
    if cert.chain_id != chain_id {
        return Err(CertError::Malformed(format!(
            "certificate is for chain {:?}, not {chain_id:?}",
            cert.chain_id
        )));
    }
    if validators.is_empty() || validators.len() > MAX_VALIDATORS {
        return Err(malformed("validator set is empty or too large"));
    }
    if cert.app_hash.len() != 32 {
        return Err(malformed("app hash is not 32 bytes"));
    }
    if cert.signers.len() != validators.len().div_ceil(8) {
        return Err(malformed("signer bitmap has the wrong length"));
    }
    let signers: Vec<usize> = (0..cert.signers.len() * 8)
        .filter(|i| cert.signers[i / 8] & (1 << (i % 8)) != 0)
        .collect();
    if signers.iter().any(|&i| i >= validators.len()) {
        return Err(malformed(
            "signer bitmap names a validator that does not exist",
        ));
    }
    let total: u64 = validators
        .iter()
        .map(|v| v.power)
        .fold(0, u64::saturating_add);
    let signed: u64 = signers
        .iter()
        .map(|&i| validators[i].power)
        .fold(0, u64::saturating_add);
    if signed.saturating_mul(3) <= total.saturating_mul(2) {
        return Err(CertError::NotEnoughPower { signed, total });
    }
    let keys: Vec<PublicKey> = signers
        .iter()
        .map(|&i| public_key(&validators[i].bls_key))
        .collect::<Option<_>>()
        .ok_or_else(|| malformed("a signer's BLS key is invalid"))?;
    let refs: Vec<&PublicKey> = keys.iter().collect();
    let sig = signature(&cert.aggregate_signature).ok_or(CertError::BadSignature)?;
    let m = checkpoint_message(chain_id, cert.height, &cert.app_hash);
    if sig.fast_aggregate_verify(true, &m, BLS_SIG_DST, &refs) != BLST_ERROR::BLST_SUCCESS {
        return Err(CertError::BadSignature);
    }
    Ok(CertifiedState {
        height: cert.height,
        app_hash: cert.app_hash.clone(),
        signers,
        signed_power: signed,
        total_power: total,
    })
}

/// The block tx carrying `cert`.
pub fn encode_certificate_tx(cert: &Certificate) -> Vec<u8> {
    let mut tx = CERTIFICATE_TX_TAG.to_vec();
    tx.extend_from_slice(&cert.encode_to_vec());
    tx
}

/// `None` if `tx` is not a certificate tx; otherwise the decoded certificate (canonical form).
pub fn decode_certificate_tx(tx: &[u8]) -> Option<Result<Certificate, TxError>> {
    let body = tx.strip_prefix(CERTIFICATE_TX_TAG)?;
    Some(match Certificate::decode(body) {
        Ok(c) if c.encode_to_vec() == body => Ok(c),
        Ok(_) => Err(TxError::new(
            Code::NonCanonical,
            "certificate is not in canonical form",
        )),
        Err(e) => Err(TxError::new(
            Code::TxDecode,
            format!("certificate does not decode: {e}"),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u8) -> Vec<BlsKey> {
        (0..n)
            .map(|i| BlsKey::from_ikm(&[i + 1; 32]).expect("ikm is 32 bytes"))
            .collect()
    }

    fn validators(keys: &[BlsKey]) -> Vec<CertValidator> {
        keys.iter()
            .enumerate()
            .map(|(i, k)| CertValidator {
                address: vec![i as u8; 20],
                bls_key: k.public_key().to_vec(),
                power: 10,
            })
            .collect()
    }

    fn certificate(keys: &[BlsKey], signers: &[usize]) -> Certificate {
        let hash = [7u8; 32];
        let shares: Vec<[u8; 96]> = signers
            .iter()
            .map(|&i| keys[i].sign_checkpoint("c", 5, &hash))
            .collect();
        let refs: Vec<&[u8]> = shares.iter().map(|s| s.as_slice()).collect();
        Certificate {
            chain_id: "c".into(),
            height: 5,
            app_hash: hash.to_vec(),
            signers: bitmap(keys.len(), signers),
            aggregate_signature: aggregate(&refs).expect("shares decode").to_vec(),
        }
    }

    #[test]
    fn three_of_four_signers_certify() {
        let k = keys(4);
        let state =
            verify_certificate(&validators(&k), "c", &certificate(&k, &[0, 1, 3])).expect("valid");
        assert_eq!(
            (state.signers, state.signed_power, state.total_power),
            (vec![0, 1, 3], 30, 40)
        );
    }

    #[test]
    fn two_of_four_is_not_enough() {
        let k = keys(4);
        let err = verify_certificate(&validators(&k), "c", &certificate(&k, &[0, 1]))
            .expect_err("too few");
        assert_eq!(
            err,
            CertError::NotEnoughPower {
                signed: 20,
                total: 40
            }
        );
    }

    #[test]
    fn a_bitmap_claiming_a_non_signer_fails() {
        let k = keys(4);
        let mut cert = certificate(&k, &[0, 1, 2]);
        cert.signers = bitmap(4, &[0, 1, 2, 3]);
        assert_eq!(
            verify_certificate(&validators(&k), "c", &cert),
            Err(CertError::BadSignature)
        );
    }

    #[test]
    fn tampered_app_hash_or_height_fails() {
        let k = keys(4);
        let mut cert = certificate(&k, &[0, 1, 2, 3]);
        cert.app_hash[0] ^= 1;
        assert_eq!(
            verify_certificate(&validators(&k), "c", &cert),
            Err(CertError::BadSignature)
        );
        let mut cert = certificate(&k, &[0, 1, 2, 3]);
        cert.height += 1;
        assert_eq!(
            verify_certificate(&validators(&k), "c", &cert),
            Err(CertError::BadSignature)
        );
    }

    #[test]
    fn bitmap_beyond_the_set_is_malformed() {
        let k = keys(4);
        let mut cert = certificate(&k, &[0, 1, 2]);
        cert.signers = vec![0b0001_0111];
        assert!(matches!(
            verify_certificate(&validators(&k), "c", &cert),
            Err(CertError::Malformed(_))
        ));
    }

    #[test]
    fn proof_of_possession_binds_the_key() {
        let k = keys(2);
        assert!(verify_possession(
            &k[0].public_key(),
            &k[0].proof_of_possession()
        ));
        assert!(!verify_possession(
            &k[1].public_key(),
            &k[0].proof_of_possession()
        ));
    }

    #[test]
    fn certificate_tx_round_trips_and_user_txs_are_not_certificates() {
        let k = keys(4);
        let cert = certificate(&k, &[0, 1, 2]);
        let tx = encode_certificate_tx(&cert);
        assert_eq!(
            decode_certificate_tx(&tx).map(|r| r.expect("decodes")),
            Some(cert)
        );
        assert!(decode_certificate_tx(b"\x0a\x02hi").is_none());
    }

    #[test]
    fn checkpoint_message_is_pinned() {
        let m = checkpoint_message("ab", 1, &[0xee; 2]);
        assert_eq!(
            m,
            b"medledger/checkpoint/v1\x00\x02ab\x00\x00\x00\x00\x00\x00\x00\x01\xee\xee".to_vec()
        );
    }
}

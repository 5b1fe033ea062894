//! Threshold custody of a record's data key (issue 25): no single gateway holds it.
//!
//! A fresh random secret scalar `s` of Ristretto255 is split `t`-of-`r` with Shamir's scheme
//! (`vsss-rs`), and the record's [`DataKey`] is derived from it:
//! `SHA-256("medledger/vault/threshold-key/v1" ‖ s)`. Sealing, the key commitment (`kc1-…`) and
//! the content hash are those of [`crate::record`], unchanged.
//!
//! Each of the `r` holders gets one [`KeyShare`] (index `1..=r`); any `t` of them rebuild `s`,
//! `t − 1` of them say nothing about it. The dealer also publishes Feldman commitments
//! ([`Commitments`], `t` compressed Ristretto points of 32 bytes, anchored on chain): anyone can
//! check a share against them ([`verify_share`]), so a holder that hands out a wrong share is
//! detected and named by its index before the share is used ([`combine`]). The commitments reveal
//! `s·G`, which gives nothing of `s` (discrete logarithm) nor of the data key (a hash of `s`).
//!
//! A share travels and rests only HPKE-sealed to a member's X25519 box key ([`seal_share`],
//! [`open_share`]): to its holder when the record is stored, to a reader when released. The HPKE
//! `info` binds the chain id, the record id, the recipient member id and the share index.
//!
//! The byte formats are in `docs/vault.md`, "Threshold custody".

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use rand_core_v010::CryptoRng;
use sha2_v011::{Digest, Sha256};
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ReadableShareSet, ShareVerifierGroup,
    ValueGroup,
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::{check_id, put_lp, Reader};
use crate::error::VaultError;
use crate::record::{self, DataKey, RecordMeta, SealedRecord, DATA_KEY_LEN, TAG_LEN};
use crate::share::{hpke_open, hpke_seal, MemberBoxKey, X25519_LEN};

/// A share as `vsss-rs` sees it: identifier and value are scalars of Ristretto255.
type VShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
/// A Feldman verifier: a Ristretto point.
type Verifier = ShareVerifierGroup<RistrettoPoint>;

/// Domain of the data key derived from the shared secret scalar.
pub const THRESHOLD_KEY_DOMAIN: &[u8] = b"medledger/vault/threshold-key/v1";
/// Domain of the HPKE `info` of a sealed key share.
pub const KEY_SHARE_INFO_DOMAIN: &[u8] = b"medledger/vault/key-share/v1";
/// The smallest threshold: one share alone must never rebuild a key.
pub const MIN_THRESHOLD: u8 = 2;
/// The most holders (and so the largest threshold and the most commitments) a record may have.
/// It bounds the on-chain commitments (32 × 32 bytes) and the work of [`combine`].
pub const MAX_HOLDERS: u8 = 32;
/// Bytes of a scalar (little-endian, canonical) and of a compressed Ristretto point.
pub const POINT_LEN: usize = 32;
/// Format version byte of an encoded [`KeyShare`].
pub const KEY_SHARE_VERSION: u8 = 1;
/// Bytes of an encoded [`KeyShare`]: version, index, scalar.
pub const KEY_SHARE_LEN: usize = 1 + 1 + POINT_LEN;
/// Format version byte of an encoded [`SealedShare`].
pub const SEALED_SHARE_VERSION: u8 = 1;
/// Bytes of an encoded [`SealedShare`]: version, index, encapsulated key, encrypted scalar, tag.
pub const SEALED_SHARE_LEN: usize = 1 + 1 + X25519_LEN + POINT_LEN + TAG_LEN;

/// Why a threshold operation was refused. A share that fails its check names its index, so the
/// reader can name the holder the anchor lists at that index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ThresholdError {
    /// The threshold or the number of holders is outside `2 <= t <= r <= MAX_HOLDERS`.
    #[error(
        "a threshold of {threshold} of {holders} holders is not allowed (need 2 <= t <= r <= 32)"
    )]
    Parameters {
        /// The threshold asked for.
        threshold: usize,
        /// The number of holders asked for.
        holders: usize,
    },
    /// Bytes that should hold an encoded key share do not.
    #[error("malformed key share: {reason}")]
    MalformedShare {
        /// What was wrong.
        reason: &'static str,
    },
    /// The commitments are not `2..=MAX_HOLDERS` entries.
    #[error("{count} share commitments; a record has 2 to 32")]
    CommitmentCount {
        /// How many were given.
        count: usize,
    },
    /// A commitment is not the encoding of a usable Ristretto point.
    #[error("share commitment {position}: {reason}")]
    BadCommitment {
        /// Its position, from 0 (the commitment to the secret itself).
        position: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// Two shares carry the same index.
    #[error("key share {index} was given more than once")]
    DuplicateShare {
        /// The repeated index.
        index: u8,
    },
    /// A share does not match the anchored commitments: its holder gave a wrong share.
    #[error("key share {index} does not match the record's share commitments")]
    BadShare {
        /// The index of the bad share (the holder at that index gave it).
        index: u8,
    },
    /// Fewer valid, distinct shares than the threshold.
    #[error("{valid} valid key shares, {threshold} needed")]
    NotEnoughShares {
        /// How many were given (all valid).
        valid: usize,
        /// The threshold: how many are needed.
        threshold: usize,
    },
    /// The secret sharing library refused or returned something inconsistent (a bug, or a
    /// polynomial with a zero coefficient, of probability about 2⁻²⁵²).
    #[error("secret sharing failed: {0}")]
    Sharing(&'static str),
    /// A refusal of the rest of the vault: identifiers, HPKE, record sealing.
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Shorthand for results of this module.
pub type Result<T> = core::result::Result<T, ThresholdError>;

/// One holder's share of a record's secret: its index (`1..=r`, the x-coordinate) and value (the
/// polynomial at that index). Zeroized on drop; never printed.
#[derive(PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct KeyShare {
    index: u8,
    value: Scalar,
}

impl core::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyShare")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl KeyShare {
    /// The share's index, `1..=MAX_HOLDERS`: the position of its holder in the anchor's list.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Encoding: `0x01 ‖ index (1) ‖ value (32, canonical little-endian scalar)`, 34 bytes.
    pub fn encode(&self) -> Zeroizing<[u8; KEY_SHARE_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_SHARE_LEN]);
        out[0] = KEY_SHARE_VERSION;
        out[1] = self.index;
        let mut value = self.value.to_bytes();
        out[2..].copy_from_slice(&value);
        value.zeroize();
        out
    }

    /// Decodes untrusted bytes: exactly [`KEY_SHARE_LEN`] bytes, known version, an index in
    /// `1..=MAX_HOLDERS`, a canonical scalar. Whether the share is *right* is [`verify_share`]'s
    /// question.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let malformed = |reason| ThresholdError::MalformedShare { reason };
        if bytes.len() != KEY_SHARE_LEN {
            return Err(malformed("not 34 bytes"));
        }
        let mut r = Reader::new(bytes, "key share");
        if r.u8()? != KEY_SHARE_VERSION {
            return Err(malformed("unsupported format version"));
        }
        let index = r.u8()?;
        let value = Zeroizing::new(r.array::<POINT_LEN>()?);
        r.finish()?;
        Self::from_parts(index, &value)
    }

    fn from_parts(index: u8, value: &[u8; POINT_LEN]) -> Result<Self> {
        let malformed = |reason| ThresholdError::MalformedShare { reason };
        if index == 0 || index > MAX_HOLDERS {
            return Err(malformed("index outside 1..=32"));
        }
        let value = Option::<Scalar>::from(Scalar::from_canonical_bytes(*value))
            .ok_or(malformed("value is not a canonical scalar"))?;
        Ok(Self { index, value })
    }

    fn to_vsss(&self) -> VShare {
        VShare {
            identifier: IdentifierPrimeField(Scalar::from(self.index)),
            value: IdentifierPrimeField(self.value),
        }
    }
}

/// The Feldman commitments to a record's sharing polynomial: `C_j = a_j·G` for its `t`
/// coefficients (`a_0` is the secret), `G` the Ristretto255 base point. Public; anchored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitments {
    /// `[G, C_0, …, C_{t−1}]`, as `vsss-rs` takes a Feldman verifier set.
    set: Vec<Verifier>,
}

impl Commitments {
    /// Parses anchored commitments: `2..=MAX_HOLDERS` entries, each the 32-byte canonical
    /// encoding of a Ristretto point other than the identity (an identity coefficient would let
    /// fewer than `t` shares rebuild the key, or make the secret zero).
    pub fn from_bytes<B: AsRef<[u8]>>(entries: &[B]) -> Result<Self> {
        let count = entries.len();
        if count < usize::from(MIN_THRESHOLD) || count > usize::from(MAX_HOLDERS) {
            return Err(ThresholdError::CommitmentCount { count });
        }
        let mut points = Vec::with_capacity(count);
        for (position, entry) in entries.iter().enumerate() {
            let bad = |reason| ThresholdError::BadCommitment { position, reason };
            let compressed =
                CompressedRistretto::from_slice(entry.as_ref()).map_err(|_| bad("not 32 bytes"))?;
            let point = compressed
                .decompress()
                .ok_or(bad("not a canonical Ristretto point"))?;
            points.push(point);
        }
        Self::from_points(&points)
    }

    fn from_points(points: &[RistrettoPoint]) -> Result<Self> {
        let mut set = Vec::with_capacity(points.len() + 1);
        set.push(ValueGroup(RISTRETTO_BASEPOINT_POINT));
        for (position, point) in points.iter().enumerate() {
            if *point == RistrettoPoint::identity() {
                return Err(ThresholdError::BadCommitment {
                    position,
                    reason: "the identity point",
                });
            }
            set.push(ValueGroup(*point));
        }
        Ok(Self { set })
    }

    /// The commitments as anchored: `t` entries of 32 bytes, `C_0` first.
    pub fn to_bytes(&self) -> Vec<[u8; POINT_LEN]> {
        self.points()
            .iter()
            .map(|p| p.0.compress().to_bytes())
            .collect()
    }

    /// The threshold `t`: how many shares rebuild the key (the number of commitments).
    pub fn threshold(&self) -> usize {
        self.points().len()
    }

    fn points(&self) -> &[Verifier] {
        self.set.get(1..).unwrap_or_default()
    }
}

/// The data key of a secret scalar: `SHA-256(THRESHOLD_KEY_DOMAIN ‖ s)`, `s` in its 32-byte
/// canonical encoding.
fn derive_data_key(secret: &Scalar) -> DataKey {
    let mut bytes = secret.to_bytes();
    let mut hasher = Sha256::new();
    hasher.update(THRESHOLD_KEY_DOMAIN);
    hasher.update(bytes);
    bytes.zeroize();
    let mut digest: [u8; DATA_KEY_LEN] = hasher.finalize().into();
    let key = DataKey::from_bytes(digest);
    digest.zeroize();
    key
}

fn check_parameters(threshold: u8, holders: u8) -> Result<()> {
    if threshold < MIN_THRESHOLD || threshold > holders || holders > MAX_HOLDERS {
        return Err(ThresholdError::Parameters {
            threshold: usize::from(threshold),
            holders: usize::from(holders),
        });
    }
    Ok(())
}

/// Zeroizes the scalars `vsss-rs` handed back in its own (plain) vectors.
fn wipe(shares: &mut [VShare]) {
    for s in shares {
        s.identifier.0.zeroize();
        s.value.0.zeroize();
    }
}

/// Draws a fresh secret scalar and splits it `threshold`-of-`holders`. Returns the record's data
/// key (derived from the secret; the caller seals with it, then drops it), the `holders` shares
/// with indexes `1..=holders` in order, and the `threshold` commitments to anchor.
///
/// The polynomial's other coefficients live briefly in memory `vsss-rs` allocates and does not
/// zeroize.
pub fn split(
    threshold: u8,
    holders: u8,
    rng: &mut impl CryptoRng,
) -> Result<(DataKey, Vec<KeyShare>, Commitments)> {
    check_parameters(threshold, holders)?;
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(wide.as_mut_slice());
    let mut secret = IdentifierPrimeField(Scalar::from_bytes_mod_order_wide(&wide));
    let split = vsss_rs::feldman::split_secret::<VShare, Verifier>(
        usize::from(threshold),
        usize::from(holders),
        &secret,
        None,
        &mut *rng,
    );
    let key = derive_data_key(&secret.0);
    secret.0.zeroize();
    let (mut raw, set) = split.map_err(|_| ThresholdError::Sharing("vsss-rs refused the split"))?;
    let shares = raw
        .iter()
        .zip(1..=holders)
        .map(|(s, index)| {
            if s.identifier.0 != Scalar::from(index) {
                return Err(ThresholdError::Sharing("share identifiers are not 1..=r"));
            }
            Ok(KeyShare {
                index,
                value: s.value.0,
            })
        })
        .collect::<Result<Vec<_>>>();
    wipe(&mut raw);
    let shares = shares?;
    if shares.len() != usize::from(holders) {
        return Err(ThresholdError::Sharing("wrong number of shares"));
    }
    let points: Vec<RistrettoPoint> = set.iter().skip(1).map(|v| v.0).collect();
    if points.len() != usize::from(threshold) {
        return Err(ThresholdError::Sharing("wrong number of commitments"));
    }
    let commitments = Commitments::from_points(&points)
        .map_err(|_| ThresholdError::Sharing("a polynomial coefficient is zero; split again"))?;
    Ok((key, shares, commitments))
}

/// Splits a fresh secret and seals the record under its data key, which never leaves this
/// function: the custodian hands each share to its holder (sealed with [`seal_share`]), anchors
/// the content hash, key commitment and commitments, and keeps no key.
pub fn seal_split(
    meta: &RecordMeta<'_>,
    plaintext: &[u8],
    threshold: u8,
    holders: u8,
    rng: &mut impl CryptoRng,
) -> Result<(SealedRecord, Vec<KeyShare>, Commitments)> {
    let (key, shares, commitments) = split(threshold, holders, rng)?;
    let sealed = record::seal_with_key(meta, plaintext, &key, rng)?;
    Ok((sealed, shares, commitments))
}

/// Feldman check: `value·G == Σ_j index^j · C_j`. True when the share is the one the dealer
/// committed to for its index.
pub fn verify_share(share: &KeyShare, commitments: &Commitments) -> bool {
    let mut v = share.to_vsss();
    let ok = FeldmanVerifierSet::<VShare, Verifier>::verify_share(&commitments.set, &v).is_ok();
    wipe(core::slice::from_mut(&mut v));
    ok
}

/// Rebuilds a record's data key from its holders' shares. Refuses a repeated index, then checks
/// every share against the commitments (naming the first that fails), then needs at least `t`
/// of them; the first `t` are interpolated. The result is checked against `C_0` once more.
pub fn combine(shares: &[KeyShare], commitments: &Commitments) -> Result<DataKey> {
    let mut seen = [false; 256];
    for s in shares {
        let slot = &mut seen[usize::from(s.index)];
        if *slot {
            return Err(ThresholdError::DuplicateShare { index: s.index });
        }
        *slot = true;
    }
    if let Some(bad) = shares.iter().find(|s| !verify_share(s, commitments)) {
        return Err(ThresholdError::BadShare { index: bad.index });
    }
    let threshold = commitments.threshold();
    if shares.len() < threshold {
        return Err(ThresholdError::NotEnoughShares {
            valid: shares.len(),
            threshold,
        });
    }
    let mut raw: Vec<VShare> = shares
        .iter()
        .take(threshold)
        .map(KeyShare::to_vsss)
        .collect();
    let combined = raw.combine();
    wipe(&mut raw);
    let mut secret = combined.map_err(|_| ThresholdError::Sharing("vsss-rs refused to combine"))?;
    let committed = commitments.points().first().map(|c| c.0);
    let matches = committed == Some(RISTRETTO_BASEPOINT_POINT * secret.0);
    let key = derive_data_key(&secret.0);
    secret.0.zeroize();
    if !matches {
        return Err(ThresholdError::Sharing(
            "the combined secret does not match C_0",
        ));
    }
    Ok(key)
}

/// A key share HPKE-sealed to one member's box key (a holder's at rest, a reader's when
/// released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedShare {
    index: u8,
    enc: [u8; X25519_LEN],
    ciphertext: [u8; POINT_LEN + TAG_LEN],
}

impl SealedShare {
    /// The index of the share inside (authenticated: it is bound in the HPKE `info`).
    pub fn index(&self) -> u8 {
        self.index
    }

    /// Encoding: `0x01 ‖ index (1) ‖ enc (32) ‖ ciphertext and tag (48)`, 82 bytes.
    pub fn encode(&self) -> [u8; SEALED_SHARE_LEN] {
        let mut out = [0u8; SEALED_SHARE_LEN];
        out[0] = SEALED_SHARE_VERSION;
        out[1] = self.index;
        out[2..2 + X25519_LEN].copy_from_slice(&self.enc);
        out[2 + X25519_LEN..].copy_from_slice(&self.ciphertext);
        out
    }

    /// Decodes untrusted bytes: exactly [`SEALED_SHARE_LEN`] bytes, known version, an index in
    /// `1..=MAX_HOLDERS`.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "sealed key share";
        let mut r = Reader::new(bytes, WHAT);
        let version = r.u8()?;
        if version != SEALED_SHARE_VERSION {
            return Err(VaultError::UnsupportedVersion {
                what: WHAT,
                version,
            }
            .into());
        }
        let index = r.u8()?;
        if index == 0 || index > MAX_HOLDERS {
            return Err(VaultError::Malformed {
                what: WHAT,
                reason: "index outside 1..=32",
            }
            .into());
        }
        let enc = r.array()?;
        let ciphertext = r.array()?;
        r.finish()?;
        Ok(Self {
            index,
            enc,
            ciphertext,
        })
    }
}

/// The HPKE info of a sealed share: `KEY_SHARE_INFO_DOMAIN ‖ lp(chain id) ‖ lp(record id) ‖
/// lp(recipient member id) ‖ index (1)`.
pub fn key_share_info(
    chain_id: &str,
    record_id: &str,
    recipient_member_id: &str,
    index: u8,
) -> Result<Vec<u8>> {
    check_id("chain id", chain_id)?;
    check_id("record id", record_id)?;
    check_id("recipient member id", recipient_member_id)?;
    let mut info = Vec::with_capacity(
        KEY_SHARE_INFO_DOMAIN.len()
            + 12
            + chain_id.len()
            + record_id.len()
            + recipient_member_id.len()
            + 1,
    );
    info.extend_from_slice(KEY_SHARE_INFO_DOMAIN);
    put_lp(&mut info, chain_id.as_bytes());
    put_lp(&mut info, record_id.as_bytes());
    put_lp(&mut info, recipient_member_id.as_bytes());
    info.push(index);
    Ok(info)
}

/// Seals a key share to a member's registered X25519 public key (HPKE base mode, the suite of
/// [`crate::share`]). It opens only with that member's box key, as that member, for that record
/// on that chain.
pub fn seal_share(
    share: &KeyShare,
    chain_id: &str,
    record_id: &str,
    recipient_member_id: &str,
    recipient_public: &[u8; X25519_LEN],
    rng: &mut impl CryptoRng,
) -> Result<SealedShare> {
    let info = key_share_info(chain_id, record_id, recipient_member_id, share.index)?;
    let value = Zeroizing::new(share.value.to_bytes());
    let (enc, ciphertext) = hpke_seal(recipient_public, &info, value.as_slice(), rng)?;
    Ok(SealedShare {
        index: share.index,
        enc,
        ciphertext,
    })
}

/// Opens a sealed share with the recipient's box key. Refuses (`DecryptFailed`) a share sealed
/// to another key, for another member id, record, chain, or index.
pub fn open_share(
    recipient: &MemberBoxKey,
    chain_id: &str,
    record_id: &str,
    recipient_member_id: &str,
    sealed: &SealedShare,
) -> Result<KeyShare> {
    let info = key_share_info(chain_id, record_id, recipient_member_id, sealed.index)?;
    let value = hpke_open::<POINT_LEN>(recipient, &sealed.enc, &info, &sealed.ciphertext)?;
    KeyShare::from_parts(sealed.index, &value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{key_commitment, open};
    use proptest::prelude::*;
    use rand_v010::rngs::StdRng;
    use rand_v010::SeedableRng;

    const CHAIN: &str = "medledger-1";

    fn rng() -> StdRng {
        StdRng::seed_from_u64(25)
    }

    fn meta() -> RecordMeta<'static> {
        RecordMeta {
            record_id: "rec-1",
            patient_id: "pat-9",
            resource_type: "Observation",
            version: 1,
        }
    }

    /// Copies of the shares at the given positions (a share is not `Clone`).
    fn pick(shares: &[KeyShare], positions: &[usize]) -> Vec<KeyShare> {
        positions
            .iter()
            .map(|&i| KeyShare::decode(shares[i].encode().as_slice()).expect("decode"))
            .collect()
    }

    #[test]
    fn any_two_of_three_shares_open_the_record() {
        let mut r = rng();
        let (sealed, shares, commitments) =
            seal_split(&meta(), b"blood pressure 120/80", 2, 3, &mut r).expect("split");
        assert_eq!(shares.len(), 3);
        assert_eq!(
            shares.iter().map(KeyShare::index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(commitments.threshold(), 2);
        for pair in [[0, 1], [0, 2], [1, 2], [2, 0]] {
            let key = combine(&pick(&shares, &pair), &commitments).expect("combine");
            assert_eq!(
                open(&meta(), &sealed, &key).expect("open"),
                b"blood pressure 120/80"
            );
            assert_eq!(
                key_commitment(&key, "rec-1").expect("kc"),
                *sealed.commitment()
            );
        }
        let all = combine(&shares, &commitments).expect("all three");
        assert!(open(&meta(), &sealed, &all).is_ok());
    }

    #[test]
    fn split_returns_the_key_the_shares_rebuild() {
        let (key, shares, commitments) = split(3, 5, &mut rng()).expect("split");
        let back = combine(&pick(&shares, &[4, 0, 2]), &commitments).expect("combine");
        assert_eq!(back.as_bytes(), key.as_bytes());
        let (other, _, _) = split(3, 5, &mut rng()).expect("split");
        assert_eq!(other.as_bytes(), key.as_bytes(), "same seed, same key");
        let (fresh, _, _) = split(3, 5, &mut StdRng::seed_from_u64(26)).expect("split");
        assert_ne!(fresh.as_bytes(), key.as_bytes());
    }

    #[test]
    fn one_share_fewer_than_the_threshold_is_refused() {
        let (_, shares, commitments) = split(3, 4, &mut rng()).expect("split");
        assert_eq!(
            combine(&pick(&shares, &[1, 3]), &commitments).map(|_| ()),
            Err(ThresholdError::NotEnoughShares {
                valid: 2,
                threshold: 3
            })
        );
        assert_eq!(
            combine(&[], &commitments).map(|_| ()),
            Err(ThresholdError::NotEnoughShares {
                valid: 0,
                threshold: 3
            })
        );
    }

    #[test]
    fn a_repeated_share_does_not_count_twice() {
        let (_, shares, commitments) = split(2, 3, &mut rng()).expect("split");
        assert_eq!(
            combine(&pick(&shares, &[1, 1]), &commitments).map(|_| ()),
            Err(ThresholdError::DuplicateShare { index: 2 })
        );
    }

    #[test]
    fn a_share_with_a_flipped_bit_is_named_by_its_index() {
        let (_, shares, commitments) = split(2, 3, &mut rng()).expect("split");
        let mut bytes = shares[1].encode();
        bytes[2] ^= 1;
        let bad = KeyShare::decode(bytes.as_slice()).expect("still a canonical scalar");
        assert_eq!(bad.index(), 2);
        assert!(!verify_share(&bad, &commitments));
        let given = vec![
            pick(&shares, &[0]).remove(0),
            bad,
            pick(&shares, &[2]).remove(0),
        ];
        assert_eq!(
            combine(&given, &commitments).map(|_| ()),
            Err(ThresholdError::BadShare { index: 2 })
        );
    }

    #[test]
    fn a_share_of_another_record_does_not_verify() {
        let (_, shares, _) = split(2, 3, &mut rng()).expect("split");
        let (_, _, other) = split(2, 3, &mut StdRng::seed_from_u64(99)).expect("split");
        assert!(shares.iter().all(|s| !verify_share(s, &other)));
        assert_eq!(
            combine(&shares, &other).map(|_| ()),
            Err(ThresholdError::BadShare { index: 1 })
        );
    }

    #[test]
    fn parameters_outside_two_to_thirty_two_are_refused() {
        for (t, r) in [(0, 3), (1, 3), (4, 3), (2, 33), (33, 33), (2, 0)] {
            assert_eq!(
                split(t, r, &mut rng()).map(|_| ()),
                Err(ThresholdError::Parameters {
                    threshold: usize::from(t),
                    holders: usize::from(r)
                }),
                "{t} of {r}"
            );
        }
        assert!(split(2, 2, &mut rng()).is_ok());
        assert!(split(MAX_HOLDERS, MAX_HOLDERS, &mut rng()).is_ok());
    }

    #[test]
    fn commitments_round_trip_through_their_anchored_bytes() {
        let (_, shares, commitments) = split(3, 4, &mut rng()).expect("split");
        let bytes = commitments.to_bytes();
        assert_eq!(bytes.len(), 3);
        let as_vecs: Vec<Vec<u8>> = bytes.iter().map(|b| b.to_vec()).collect();
        let back = Commitments::from_bytes(&as_vecs).expect("parse");
        assert_eq!(back, commitments);
        assert!(shares.iter().all(|s| verify_share(s, &back)));
    }

    #[test]
    fn malformed_commitments_are_refused() {
        let (_, _, commitments) = split(3, 4, &mut rng()).expect("split");
        let good = commitments.to_bytes();
        let with = |position: usize, entry: Vec<u8>| {
            let mut v: Vec<Vec<u8>> = good.iter().map(|b| b.to_vec()).collect();
            v[position] = entry;
            Commitments::from_bytes(&v)
        };
        // Not a point: y = 2^255 - 1 is not canonical.
        assert_eq!(
            with(1, vec![0xff; 32]),
            Err(ThresholdError::BadCommitment {
                position: 1,
                reason: "not a canonical Ristretto point"
            })
        );
        // A flipped bit almost never lands on another valid encoding; the low bit makes the
        // encoding negative, which Ristretto refuses.
        let mut flipped = good[2].to_vec();
        flipped[0] ^= 1;
        assert!(matches!(
            with(2, flipped),
            Err(ThresholdError::BadCommitment { position: 2, .. })
        ));
        assert_eq!(
            with(0, vec![0; 32]),
            Err(ThresholdError::BadCommitment {
                position: 0,
                reason: "the identity point"
            })
        );
        for len in [0, 31, 33] {
            assert_eq!(
                with(0, vec![1; len]),
                Err(ThresholdError::BadCommitment {
                    position: 0,
                    reason: "not 32 bytes"
                })
            );
        }
        assert_eq!(
            Commitments::from_bytes(&good[..1]),
            Err(ThresholdError::CommitmentCount { count: 1 })
        );
        let many = vec![good[0]; 33];
        assert_eq!(
            Commitments::from_bytes(&many),
            Err(ThresholdError::CommitmentCount { count: 33 })
        );
    }

    #[test]
    fn key_share_encoding_round_trips_and_its_layout_is_pinned() {
        let share = KeyShare::from_parts(7, &[5; 32]).expect("parts");
        let bytes = share.encode();
        let mut expected = vec![1u8, 7];
        expected.extend([5u8; 32]);
        assert_eq!(bytes.as_slice(), expected.as_slice());
        assert_eq!(KeyShare::decode(bytes.as_slice()).expect("decode"), share);
    }

    #[test]
    fn key_share_decoding_refuses_wrong_lengths_versions_indexes_and_scalars() {
        let good = *KeyShare::from_parts(3, &[5; 32]).expect("parts").encode();
        for len in [0, 1, 33, 35] {
            let mut v = good.to_vec();
            v.resize(len, 0);
            assert_eq!(
                KeyShare::decode(&v).map(|_| ()),
                Err(ThresholdError::MalformedShare {
                    reason: "not 34 bytes"
                }),
                "{len} bytes"
            );
        }
        let refused = |f: &dyn Fn(&mut [u8; KEY_SHARE_LEN]), reason| {
            let mut v = good;
            f(&mut v);
            assert_eq!(
                KeyShare::decode(&v).map(|_| ()),
                Err(ThresholdError::MalformedShare { reason })
            );
        };
        refused(&|v| v[0] = 2, "unsupported format version");
        refused(&|v| v[1] = 0, "index outside 1..=32");
        refused(&|v| v[1] = 33, "index outside 1..=32");
        refused(&|v| v[2..].fill(0xff), "value is not a canonical scalar");
    }

    #[test]
    fn key_share_debug_does_not_print_the_value() {
        let share = KeyShare::from_parts(2, &[0x0b; 32]).expect("parts");
        assert_eq!(format!("{share:?}"), "KeyShare { index: 2, .. }");
    }

    #[test]
    fn data_key_is_sha256_of_the_domain_and_the_secret() {
        let secret = Scalar::from(42u64);
        let mut input = b"medledger/vault/threshold-key/v1".to_vec();
        input.extend(secret.to_bytes());
        let expected: [u8; 32] = Sha256::digest(&input).into();
        assert_eq!(derive_data_key(&secret).as_bytes(), &expected);
    }

    #[test]
    fn sealed_share_opens_for_its_recipient_only() {
        let mut r = rng();
        let a = MemberBoxKey::generate(&mut r);
        let b = MemberBoxKey::generate(&mut r);
        let (_, shares, commitments) = split(2, 3, &mut r).expect("split");
        let sealed = seal_share(
            &shares[1],
            CHAIN,
            "rec-1",
            "hospital-a",
            &a.public_bytes(),
            &mut r,
        )
        .expect("seal");
        assert_eq!(sealed.index(), 2);
        let decoded = SealedShare::decode(&sealed.encode()).expect("decode");
        assert_eq!(decoded, sealed);
        let back = open_share(&a, CHAIN, "rec-1", "hospital-a", &decoded).expect("open");
        assert_eq!(back, shares[1]);
        assert!(verify_share(&back, &commitments));

        let refused = |key: &MemberBoxKey, chain: &str, record: &str, member: &str| {
            assert_eq!(
                open_share(key, chain, record, member, &sealed).map(|_| ()),
                Err(ThresholdError::Vault(VaultError::DecryptFailed)),
                "{chain} {record} {member}"
            );
        };
        refused(&b, CHAIN, "rec-1", "hospital-a");
        refused(&b, CHAIN, "rec-1", "hospital-b");
        refused(&a, CHAIN, "rec-1", "hospital-b");
        refused(&a, CHAIN, "rec-2", "hospital-a");
        refused(&a, "medledger-2", "rec-1", "hospital-a");
    }

    #[test]
    fn a_sealed_share_relabelled_with_another_index_does_not_open() {
        let mut r = rng();
        let a = MemberBoxKey::generate(&mut r);
        let (_, shares, _) = split(2, 3, &mut r).expect("split");
        let sealed =
            seal_share(&shares[0], CHAIN, "rec-1", "m", &a.public_bytes(), &mut r).expect("seal");
        for i in [1usize, 2, 40, SEALED_SHARE_LEN - 1] {
            let mut bytes = sealed.encode();
            bytes[i] ^= 2;
            let t = SealedShare::decode(&bytes).expect("decode");
            assert!(open_share(&a, CHAIN, "rec-1", "m", &t).is_err(), "byte {i}");
        }
    }

    #[test]
    fn sealed_share_decoding_refuses_wrong_lengths_versions_and_indexes() {
        let mut r = rng();
        let a = MemberBoxKey::generate(&mut r);
        let (_, shares, _) = split(2, 3, &mut r).expect("split");
        let good = seal_share(&shares[0], CHAIN, "rec-1", "m", &a.public_bytes(), &mut r)
            .expect("seal")
            .encode();
        assert!(SealedShare::decode(&good[..SEALED_SHARE_LEN - 1]).is_err());
        let mut long = good.to_vec();
        long.push(0);
        assert!(SealedShare::decode(&long).is_err());
        for (at, byte) in [(0, 2u8), (1, 0), (1, 33)] {
            let mut v = good;
            v[at] = byte;
            assert!(SealedShare::decode(&v).is_err(), "byte {at} = {byte}");
        }
    }

    #[test]
    fn sealing_to_a_refused_box_key_fails() {
        let mut r = rng();
        let (_, shares, _) = split(2, 3, &mut r).expect("split");
        assert_eq!(
            seal_share(&shares[0], CHAIN, "rec-1", "m", &[0; 32], &mut r).map(|_| ()),
            Err(ThresholdError::Vault(VaultError::BadBoxPublicKey))
        );
        let a = MemberBoxKey::generate(&mut r);
        assert!(matches!(
            seal_share(&shares[0], CHAIN, "", "m", &a.public_bytes(), &mut r),
            Err(ThresholdError::Vault(VaultError::BadIdentifier { .. }))
        ));
    }

    #[test]
    fn key_share_info_layout_is_pinned() {
        let mut expected = b"medledger/vault/key-share/v1".to_vec();
        expected.extend([
            0, 0, 0, 1, b'c', 0, 0, 0, 1, b'r', 0, 0, 0, 2, b'm', b'1', 3,
        ]);
        assert_eq!(key_share_info("c", "r", "m1", 3).expect("info"), expected);
    }

    /// A threshold, a number of holders, and a subset of the holders (as positions).
    fn sharing() -> impl Strategy<Value = (u8, u8, Vec<usize>)> {
        (2u8..=6)
            .prop_flat_map(|r| (2u8..=r, Just(r)))
            .prop_flat_map(|(t, r)| {
                let all: Vec<usize> = (0..usize::from(r)).collect();
                (
                    Just(t),
                    Just(r),
                    proptest::sample::subsequence(all, 0..=usize::from(r)).prop_shuffle(),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_t_shares_open_the_record_and_fewer_are_refused(
            (t, r, subset) in sharing(),
            seed in any::<u64>(),
        ) {
            let mut g = StdRng::seed_from_u64(seed);
            let (sealed, shares, commitments) =
                seal_split(&meta(), b"note", t, r, &mut g).expect("split");
            let given = pick(&shares, &subset);
            let res = combine(&given, &commitments);
            if subset.len() >= usize::from(t) {
                let key = res.expect("enough shares");
                prop_assert_eq!(open(&meta(), &sealed, &key).expect("open"), b"note");
            } else {
                prop_assert_eq!(
                    res.map(|_| ()),
                    Err(ThresholdError::NotEnoughShares {
                        valid: subset.len(),
                        threshold: usize::from(t),
                    })
                );
            }
        }

        #[test]
        fn any_flipped_bit_of_a_share_value_is_caught(
            seed in any::<u64>(),
            holder in 0usize..3,
            bit in 0usize..256,
        ) {
            let mut g = StdRng::seed_from_u64(seed);
            let (_, shares, commitments) = split(2, 3, &mut g).expect("split");
            let mut bytes = shares[holder].encode();
            bytes[2 + bit / 8] ^= 1 << (bit % 8);
            // Either the bytes are no longer a canonical scalar, or the share fails Feldman's
            // check and is named.
            if let Ok(bad) = KeyShare::decode(bytes.as_slice()) {
                let index = bad.index();
                prop_assert_eq!(usize::from(index), holder + 1);
                let mut given = pick(&shares, &[(holder + 1) % 3]);
                given.push(bad);
                prop_assert_eq!(
                    combine(&given, &commitments).map(|_| ()),
                    Err(ThresholdError::BadShare { index })
                );
            }
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(s) = KeyShare::decode(&bytes) {
                prop_assert_eq!(s.encode().to_vec(), bytes.clone());
            }
            if let Ok(s) = SealedShare::decode(&bytes) {
                prop_assert_eq!(s.encode().to_vec(), bytes.clone());
            }
            let entries: Vec<&[u8]> = bytes.chunks(32).collect();
            if let Ok(c) = Commitments::from_bytes(&entries) {
                let back: Vec<u8> = c.to_bytes().concat();
                prop_assert_eq!(back, bytes);
            }
        }
    }
}

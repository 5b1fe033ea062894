//! Record encryption: one fresh random data key per record, XChaCha20-Poly1305 with a random
//! 24-byte nonce, associated data that binds the record's identity, and a key commitment.
//!
//! Why a key commitment: an AEAD does not commit to its key, so with a crafted ciphertext two
//! different keys can both "successfully" decrypt it to different plaintexts (a partitioning /
//! invisible-salamander attack). We store `HMAC-SHA256(data key, KEY_COMMITMENT_DOMAIN ‖ record
//! id)` next to the ciphertext and check it, in constant time, before decrypting: only the one
//! committed key is ever used to open a record.
//!
//! The exact byte formats are in `docs/vault.md`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand_core_v010::CryptoRng;
use sha2_v011::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::codec::{check_id, put_lp, Reader};
use crate::error::{Result, VaultError};

/// The largest plaintext a record may have: 16 MiB. Larger documents (imaging) are split or
/// stored by reference; the limit bounds memory use of every decode and decrypt.
pub const MAX_RECORD_BYTES: usize = 16 * 1024 * 1024;
/// Bytes of a data key.
pub const DATA_KEY_LEN: usize = 32;
/// Bytes of an XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag, appended to every ciphertext.
pub const TAG_LEN: usize = 16;
/// Bytes of a key commitment (HMAC-SHA256 output).
pub const COMMITMENT_LEN: usize = 32;
/// Domain of the record associated data.
pub const RECORD_AD_DOMAIN: &[u8] = b"medledger/vault/record/v1";
/// Domain of the key commitment.
pub const KEY_COMMITMENT_DOMAIN: &[u8] = b"medledger/vault/key-commitment/v1";
/// Format version byte of an encoded [`SealedRecord`].
pub const SEALED_RECORD_VERSION: u8 = 1;
/// The most bytes an encoded [`SealedRecord`] may have.
pub const MAX_SEALED_RECORD_BYTES: usize =
    1 + NONCE_LEN + COMMITMENT_LEN + 4 + MAX_RECORD_BYTES + TAG_LEN;

/// A record's data key. Zeroized on drop; never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; DATA_KEY_LEN]);

impl DataKey {
    /// A fresh random data key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut key = [0u8; DATA_KEY_LEN];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// A data key from its bytes (after unwrapping). The caller should zeroize its copy.
    pub fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes. Handle with care: do not log or persist unwrapped.
    pub fn as_bytes(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// What a record is, bound into its associated data: moving a ciphertext to another record,
/// patient, resource type or version makes it fail to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta<'a> {
    /// The record id as registered on chain (1..=256 bytes).
    pub record_id: &'a str,
    /// The patient id (1..=256 bytes).
    pub patient_id: &'a str,
    /// The resource type, e.g. a FHIR resource type such as `Observation` (1..=256 bytes).
    pub resource_type: &'a str,
    /// The record version, starting at 1 and incremented by each amendment.
    pub version: u64,
}

impl RecordMeta<'_> {
    fn check(&self) -> Result<()> {
        check_id("record id", self.record_id)?;
        check_id("patient id", self.patient_id)?;
        check_id("resource type", self.resource_type)
    }

    /// The associated data: `RECORD_AD_DOMAIN ‖ lp(record id) ‖ lp(patient id) ‖
    /// lp(resource type) ‖ u64be(version)`, where `lp(x) = u32be(len x) ‖ x`.
    pub fn associated_data(&self) -> Result<Vec<u8>> {
        self.check()?;
        let mut ad = Vec::with_capacity(RECORD_AD_DOMAIN.len() + 3 * 4 + 3 * 64 + 8);
        ad.extend_from_slice(RECORD_AD_DOMAIN);
        put_lp(&mut ad, self.record_id.as_bytes());
        put_lp(&mut ad, self.patient_id.as_bytes());
        put_lp(&mut ad, self.resource_type.as_bytes());
        ad.extend_from_slice(&self.version.to_be_bytes());
        Ok(ad)
    }
}

/// An encrypted record as stored off chain: nonce, ciphertext (with tag) and key commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedRecord {
    nonce: [u8; NONCE_LEN],
    ciphertext: Vec<u8>,
    commitment: [u8; COMMITMENT_LEN],
}

impl SealedRecord {
    /// The random nonce.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }

    /// The ciphertext, Poly1305 tag included.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The key commitment.
    pub fn commitment(&self) -> &[u8; COMMITMENT_LEN] {
        &self.commitment
    }

    /// Assembles a sealed record from parts, checking the ciphertext length.
    pub fn from_parts(
        nonce: [u8; NONCE_LEN],
        ciphertext: Vec<u8>,
        commitment: [u8; COMMITMENT_LEN],
    ) -> Result<Self> {
        check_ciphertext_len(ciphertext.len())?;
        Ok(Self {
            nonce,
            ciphertext,
            commitment,
        })
    }

    /// Canonical encoding: `0x01 ‖ nonce(24) ‖ commitment(32) ‖ u32be(len ct) ‖ ct`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(1 + NONCE_LEN + COMMITMENT_LEN + 4 + self.ciphertext.len());
        out.push(SEALED_RECORD_VERSION);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.commitment);
        put_lp(&mut out, &self.ciphertext);
        out
    }

    /// Decodes untrusted bytes; refuses unknown versions, bad lengths and trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "sealed record";
        if bytes.len() > MAX_SEALED_RECORD_BYTES {
            return Err(VaultError::TooLarge {
                what: WHAT,
                len: bytes.len(),
                limit: MAX_SEALED_RECORD_BYTES,
            });
        }
        let mut r = Reader::new(bytes, WHAT);
        let version = r.u8()?;
        if version != SEALED_RECORD_VERSION {
            return Err(VaultError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let nonce = r.array::<NONCE_LEN>()?;
        let commitment = r.array::<COMMITMENT_LEN>()?;
        let ciphertext = r.lp(TAG_LEN, MAX_RECORD_BYTES + TAG_LEN)?.to_vec();
        r.finish()?;
        Ok(Self {
            nonce,
            ciphertext,
            commitment,
        })
    }
}

fn check_ciphertext_len(len: usize) -> Result<()> {
    if len < TAG_LEN {
        return Err(VaultError::Malformed {
            what: "sealed record",
            reason: "ciphertext shorter than the tag",
        });
    }
    if len > MAX_RECORD_BYTES + TAG_LEN {
        return Err(VaultError::TooLarge {
            what: "ciphertext",
            len,
            limit: MAX_RECORD_BYTES + TAG_LEN,
        });
    }
    Ok(())
}

type HmacSha256 = Hmac<Sha256>;

fn commitment_mac(key: &DataKey, record_id: &str) -> Result<HmacSha256> {
    check_id("record id", record_id)?;
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key.as_bytes())
        .map_err(|_| VaultError::EncryptFailed)?;
    mac.update(KEY_COMMITMENT_DOMAIN);
    mac.update(record_id.as_bytes());
    Ok(mac)
}

/// The key commitment: `HMAC-SHA256(key = data key, msg = KEY_COMMITMENT_DOMAIN ‖ record id)`.
pub fn key_commitment(key: &DataKey, record_id: &str) -> Result<[u8; COMMITMENT_LEN]> {
    Ok(commitment_mac(key, record_id)?
        .finalize()
        .into_bytes()
        .into())
}

/// Checks a commitment in constant time.
fn check_commitment(key: &DataKey, record_id: &str, commitment: &[u8]) -> Result<()> {
    commitment_mac(key, record_id)?
        .verify_slice(commitment)
        .map_err(|_| VaultError::KeyCommitmentMismatch)
}

fn cipher(key: &DataKey) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(key.as_bytes().into())
}

/// Encrypts a record under a fresh data key. Returns the sealed record and its data key, which
/// the caller wraps under its KEK (`kek::wrap`) and then drops.
pub fn seal(
    meta: &RecordMeta<'_>,
    plaintext: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(SealedRecord, DataKey)> {
    let key = DataKey::generate(rng);
    let sealed = seal_with_key(meta, plaintext, &key, rng)?;
    Ok((sealed, key))
}

/// Encrypts under a given key. Crate-private: a key per record is the rule, so that destroying
/// one key shreds exactly one record.
pub(crate) fn seal_with_key(
    meta: &RecordMeta<'_>,
    plaintext: &[u8],
    key: &DataKey,
    rng: &mut impl CryptoRng,
) -> Result<SealedRecord> {
    if plaintext.len() > MAX_RECORD_BYTES {
        return Err(VaultError::TooLarge {
            what: "record",
            len: plaintext.len(),
            limit: MAX_RECORD_BYTES,
        });
    }
    let ad = meta.associated_data()?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ciphertext = cipher(key)
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &ad,
            },
        )
        .map_err(|_| VaultError::EncryptFailed)?;
    Ok(SealedRecord {
        nonce,
        ciphertext,
        commitment: key_commitment(key, meta.record_id)?,
    })
}

/// Decrypts a record: checks the key commitment (constant time), then the AEAD with the
/// record's associated data.
pub fn open(meta: &RecordMeta<'_>, sealed: &SealedRecord, key: &DataKey) -> Result<Vec<u8>> {
    check_ciphertext_len(sealed.ciphertext.len())?;
    let ad = meta.associated_data()?;
    check_commitment(key, meta.record_id, &sealed.commitment)?;
    cipher(key)
        .decrypt(
            &XNonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: &ad,
            },
        )
        .map_err(|_| VaultError::DecryptFailed)
}

/// What goes on chain: `SHA-256(SealedRecord::encode())`. It covers nonce, commitment and
/// ciphertext, so any change to the stored object changes the hash.
pub fn content_hash(sealed: &SealedRecord) -> [u8; 32] {
    Sha256::digest(sealed.encode()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_v010::rngs::StdRng;
    use rand_v010::SeedableRng;

    fn meta() -> RecordMeta<'static> {
        RecordMeta {
            record_id: "rec-1",
            patient_id: "pat-9",
            resource_type: "Observation",
            version: 1,
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn seal_then_open_returns_the_plaintext() {
        let (sealed, key) = seal(&meta(), b"blood pressure 120/80", &mut rng()).expect("seal");
        assert_eq!(
            open(&meta(), &sealed, &key).expect("open"),
            b"blood pressure 120/80"
        );
        let decoded = SealedRecord::decode(&sealed.encode()).expect("decode");
        assert_eq!(decoded, sealed);
        assert_eq!(
            open(&meta(), &decoded, &key).expect("open"),
            b"blood pressure 120/80"
        );
    }

    #[test]
    fn empty_record_round_trips() {
        let (sealed, key) = seal(&meta(), b"", &mut rng()).expect("seal");
        assert_eq!(open(&meta(), &sealed, &key).expect("open"), b"");
    }

    #[test]
    fn each_seal_uses_a_fresh_key_and_nonce() {
        let mut r = rng();
        let (a, ka) = seal(&meta(), b"x", &mut r).expect("seal");
        let (b, kb) = seal(&meta(), b"x", &mut r).expect("seal");
        assert_ne!(ka.as_bytes(), kb.as_bytes());
        assert_ne!(a.nonce(), b.nonce());
    }

    #[test]
    fn moving_a_ciphertext_to_another_record_patient_type_or_version_fails() {
        let (sealed, key) = seal(&meta(), b"secret", &mut rng()).expect("seal");
        let other_patient = RecordMeta {
            patient_id: "pat-10",
            ..meta()
        };
        let other_type = RecordMeta {
            resource_type: "Condition",
            ..meta()
        };
        let other_version = RecordMeta {
            version: 2,
            ..meta()
        };
        for m in [other_patient, other_type, other_version] {
            assert_eq!(
                open(&m, &sealed, &key),
                Err(VaultError::DecryptFailed),
                "{m:?}"
            );
        }
        // A different record id changes the commitment input too, so it is refused even before
        // the AEAD runs.
        let other_record = RecordMeta {
            record_id: "rec-2",
            ..meta()
        };
        assert_eq!(
            open(&other_record, &sealed, &key),
            Err(VaultError::KeyCommitmentMismatch)
        );
    }

    #[test]
    fn associated_data_fields_cannot_be_shifted_between_each_other() {
        // Without length prefixes ("ab","c") and ("a","bc") would give the same AD.
        let a = RecordMeta {
            record_id: "ab",
            patient_id: "c",
            ..meta()
        };
        let b = RecordMeta {
            record_id: "a",
            patient_id: "bc",
            ..meta()
        };
        assert_ne!(
            a.associated_data().expect("ad"),
            b.associated_data().expect("ad")
        );
    }

    #[test]
    fn tampered_ciphertext_nonce_or_commitment_fails() {
        let (sealed, key) = seal(&meta(), b"secret", &mut rng()).expect("seal");
        let mut ct = sealed.clone();
        ct.ciphertext[0] ^= 1;
        assert_eq!(open(&meta(), &ct, &key), Err(VaultError::DecryptFailed));
        let mut tag = sealed.clone();
        let last = tag.ciphertext.len() - 1;
        tag.ciphertext[last] ^= 0x80;
        assert_eq!(open(&meta(), &tag, &key), Err(VaultError::DecryptFailed));
        let mut nonce = sealed.clone();
        nonce.nonce[3] ^= 1;
        assert_eq!(open(&meta(), &nonce, &key), Err(VaultError::DecryptFailed));
        let mut com = sealed;
        com.commitment[31] ^= 1;
        assert_eq!(
            open(&meta(), &com, &key),
            Err(VaultError::KeyCommitmentMismatch)
        );
    }

    #[test]
    fn a_second_key_that_would_decrypt_is_refused_by_the_commitment() {
        // Simulate the partitioning attack's outcome: a ciphertext that decrypts under key B,
        // presented with the commitment of key A. The AEAD alone would accept B.
        let mut r = rng();
        let key_a = DataKey::generate(&mut r);
        let key_b = DataKey::generate(&mut r);
        let under_b = seal_with_key(&meta(), b"forged", &key_b, &mut r).expect("seal");
        let forged = SealedRecord {
            commitment: key_commitment(&key_a, meta().record_id).expect("commit"),
            ..under_b.clone()
        };
        let ad = meta().associated_data().expect("ad");
        let aead_alone = cipher(&key_b).decrypt(
            &XNonce::from(forged.nonce),
            Payload {
                msg: &forged.ciphertext,
                aad: &ad,
            },
        );
        assert!(aead_alone.is_ok(), "the AEAD by itself accepts key B");
        assert_eq!(
            open(&meta(), &forged, &key_b),
            Err(VaultError::KeyCommitmentMismatch)
        );
        // And key A, the committed one, cannot decrypt B's ciphertext.
        assert_eq!(
            open(&meta(), &forged, &key_a),
            Err(VaultError::DecryptFailed)
        );
    }

    #[test]
    fn commitment_is_hmac_sha256_of_domain_and_record_id() {
        let key = DataKey::from_bytes([0x42; 32]);
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&[0x42; 32]).expect("key");
        mac.update(b"medledger/vault/key-commitment/v1rec-1");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(key_commitment(&key, "rec-1").expect("commit"), expected);
        assert_ne!(key_commitment(&key, "rec-2").expect("commit"), expected);
    }

    #[test]
    fn oversize_record_is_refused() {
        let big = vec![0u8; MAX_RECORD_BYTES + 1];
        assert!(matches!(
            seal(&meta(), &big, &mut rng()),
            Err(VaultError::TooLarge { .. })
        ));
        assert!(matches!(
            SealedRecord::from_parts(
                [0; NONCE_LEN],
                vec![0; MAX_RECORD_BYTES + TAG_LEN + 1],
                [0; 32]
            ),
            Err(VaultError::TooLarge { .. })
        ));
    }

    #[test]
    fn empty_or_overlong_identifiers_are_refused() {
        let long = "x".repeat(crate::codec::MAX_ID_BYTES + 1);
        for m in [
            RecordMeta {
                record_id: "",
                ..meta()
            },
            RecordMeta {
                patient_id: &long,
                ..meta()
            },
            RecordMeta {
                resource_type: "",
                ..meta()
            },
        ] {
            assert!(matches!(
                seal(&m, b"x", &mut rng()),
                Err(VaultError::BadIdentifier { .. })
            ));
        }
    }

    #[test]
    fn decode_refuses_truncation_trailing_bytes_and_unknown_versions() {
        let (sealed, _) = seal(&meta(), b"secret", &mut rng()).expect("seal");
        let bytes = sealed.encode();
        for cut in 0..bytes.len() {
            assert!(SealedRecord::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(SealedRecord::decode(&trailing).is_err());
        let mut v2 = bytes;
        v2[0] = 2;
        assert_eq!(
            SealedRecord::decode(&v2),
            Err(VaultError::UnsupportedVersion {
                what: "sealed record",
                version: 2
            })
        );
    }

    #[test]
    fn content_hash_is_sha256_of_the_encoding_and_changes_with_any_byte() {
        let (sealed, _) = seal(&meta(), b"secret", &mut rng()).expect("seal");
        let expected: [u8; 32] = Sha256::digest(sealed.encode()).into();
        assert_eq!(content_hash(&sealed), expected);
        let mut other = sealed.clone();
        other.commitment[0] ^= 1;
        assert_ne!(content_hash(&other), content_hash(&sealed));
    }

    #[test]
    fn encoding_layout_is_pinned() {
        let sealed = SealedRecord::from_parts([1; 24], vec![2; 16], [3; 32]).expect("parts");
        let mut expected = vec![1u8];
        expected.extend([1u8; 24]);
        expected.extend([3u8; 32]);
        expected.extend([0, 0, 0, 16]);
        expected.extend([2u8; 16]);
        assert_eq!(sealed.encode(), expected);
    }

    #[test]
    fn data_key_debug_does_not_print_the_key() {
        let key = DataKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = SealedRecord::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_on_mutated_valid_encodings(idx in 0usize..120, byte in any::<u8>()) {
            let sealed = SealedRecord::from_parts([1; 24], vec![2; 40], [3; 32]).expect("parts");
            let mut bytes = sealed.encode();
            let i = idx % bytes.len();
            bytes[i] = byte;
            if let Ok(d) = SealedRecord::decode(&bytes) {
                prop_assert_eq!(d.encode(), bytes);
            }
        }
    }
}

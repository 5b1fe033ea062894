//! Sharing a data key with another member: HPKE (RFC 9180) base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20Poly1305, to the reader member's
//! registered X25519 key. The HPKE `info` binds the record id and the reader member id, so a
//! share for one record or reader does not open as another.
//!
//! Each member's X25519 public key is registered on chain in a statement signed by the
//! member's Ed25519 admin key ([`box_key_statement`], [`sign_box_key`], [`verify_box_key`]), so
//! a sharer encrypts only to keys the reader's own admin key vouched for.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core_v010::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{check_id, put_lp, Reader};
use crate::error::{Result, VaultError};
use crate::record::{DataKey, DATA_KEY_LEN, TAG_LEN};

type Kem = X25519HkdfSha256;

/// Domain of the HPKE `info`.
pub const SHARE_INFO_DOMAIN: &[u8] = b"medledger/vault/share/v1";
/// Domain of the box-key statement signed by a member's Ed25519 admin key.
pub const BOX_KEY_STATEMENT_DOMAIN: &[u8] = b"medledger/vault/box-key/v1";
/// Bytes of an X25519 public key, and of the HPKE encapsulated key.
pub const X25519_LEN: usize = 32;
/// Format version byte of an encoded [`SharedKey`].
pub const SHARED_KEY_VERSION: u8 = 1;
/// Bytes of an encoded [`SharedKey`]: version, encapsulated key, encrypted data key and tag.
pub const SHARED_KEY_LEN: usize = 1 + X25519_LEN + DATA_KEY_LEN + TAG_LEN;

/// A member's X25519 key pair for receiving shared data keys.
pub struct MemberBoxKey {
    secret: <Kem as hpke::Kem>::PrivateKey,
    public: [u8; X25519_LEN],
}

impl core::fmt::Debug for MemberBoxKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemberBoxKey")
            .field("public", &crate::codec::hex(&self.public))
            .finish_non_exhaustive()
    }
}

impl MemberBoxKey {
    /// A fresh random key pair.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let (secret, public) = Kem::gen_keypair_with_rng(rng);
        Self::from_pair(secret, &public)
    }

    /// The key pair from its 32 secret bytes (clamped as X25519 requires).
    pub fn from_secret_bytes(secret: &[u8; X25519_LEN]) -> Result<Self> {
        let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret).map_err(|_| {
            VaultError::Malformed {
                what: "X25519 secret key",
                reason: "not 32 bytes",
            }
        })?;
        let public = Kem::sk_to_pk(&secret);
        Ok(Self::from_pair(secret, &public))
    }

    fn from_pair(
        secret: <Kem as hpke::Kem>::PrivateKey,
        public: &<Kem as hpke::Kem>::PublicKey,
    ) -> Self {
        let mut pk = [0u8; X25519_LEN];
        pk.copy_from_slice(&public.to_bytes());
        Self { secret, public: pk }
    }

    /// The secret bytes, for storage under the member's KEK or HSM.
    pub fn secret_bytes(&self) -> Zeroizing<[u8; X25519_LEN]> {
        let mut out = Zeroizing::new([0u8; X25519_LEN]);
        let mut bytes = self.secret.to_bytes();
        out.copy_from_slice(&bytes);
        bytes.zeroize();
        out
    }

    /// The public key, as registered on chain.
    pub fn public_bytes(&self) -> [u8; X25519_LEN] {
        self.public
    }
}

/// HKDF `info` of a patient's box key ([`patient_box_key`]).
pub const PATIENT_BOX_INFO: &[u8] = b"medledger/patient-box/v1";

/// A patient's X25519 box key, derived from the patient's Ed25519 signing seed so that the
/// patient (or the patient page) keeps nothing new: `secret = HKDF-SHA256(ikm = seed (32 bytes),
/// salt = empty, info = "medledger/patient-box/v1", L = 32)`, used as the X25519 private key
/// (clamped as X25519 does, RFC 7748); the public key is what `RegisterPatientBoxKey`
/// registers. Holders seal key shares for the patient's own reads (purpose PATRQT) to it, with
/// the patient id as the reader id of the HPKE `info` (docs/vault.md, "The patient's own copy").
pub fn patient_box_key(ed25519_seed: &[u8; 32]) -> Result<MemberBoxKey> {
    let mut secret = Zeroizing::new([0u8; X25519_LEN]);
    hkdf::Hkdf::<sha2_v011::Sha256>::new(None, ed25519_seed)
        .expand(PATIENT_BOX_INFO, secret.as_mut())
        .map_err(|_| VaultError::Malformed {
            what: "patient box key",
            reason: "HKDF output length",
        })?;
    MemberBoxKey::from_secret_bytes(&secret)
}

/// A data key encrypted to one reader member with HPKE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKey {
    enc: [u8; X25519_LEN],
    ciphertext: [u8; DATA_KEY_LEN + TAG_LEN],
}

impl SharedKey {
    /// Encoding: `0x01 ‖ enc(32) ‖ ciphertext and tag(48)`, 81 bytes.
    pub fn encode(&self) -> [u8; SHARED_KEY_LEN] {
        let mut out = [0u8; SHARED_KEY_LEN];
        out[0] = SHARED_KEY_VERSION;
        out[1..33].copy_from_slice(&self.enc);
        out[33..].copy_from_slice(&self.ciphertext);
        out
    }

    /// Decodes untrusted bytes (exactly [`SHARED_KEY_LEN`] bytes, known version).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "shared key";
        let mut r = Reader::new(bytes, WHAT);
        let version = r.u8()?;
        if version != SHARED_KEY_VERSION {
            return Err(VaultError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let enc = r.array()?;
        let ciphertext = r.array()?;
        r.finish()?;
        Ok(Self { enc, ciphertext })
    }
}

/// The HPKE info: `SHARE_INFO_DOMAIN ‖ lp(record id) ‖ lp(reader member id)`.
pub fn share_info(record_id: &str, reader_member_id: &str) -> Result<Vec<u8>> {
    check_id("record id", record_id)?;
    check_id("reader member id", reader_member_id)?;
    let mut info =
        Vec::with_capacity(SHARE_INFO_DOMAIN.len() + 8 + record_id.len() + reader_member_id.len());
    info.extend_from_slice(SHARE_INFO_DOMAIN);
    put_lp(&mut info, record_id.as_bytes());
    put_lp(&mut info, reader_member_id.as_bytes());
    Ok(info)
}

/// Encrypts a record's data key to a reader member's registered X25519 public key.
pub fn share_data_key(
    reader_public: &[u8; X25519_LEN],
    record_id: &str,
    reader_member_id: &str,
    key: &DataKey,
    rng: &mut impl CryptoRng,
) -> Result<SharedKey> {
    let info = share_info(record_id, reader_member_id)?;
    let (enc, ciphertext) = hpke_seal(reader_public, &info, key.as_bytes(), rng)?;
    Ok(SharedKey { enc, ciphertext })
}

/// HPKE base-mode single-shot seal (X25519-HKDF-SHA256, HKDF-SHA256, ChaCha20-Poly1305, no AAD)
/// of `plain` to `public` under `info`: the encapsulated key and a ciphertext of exactly `C`
/// bytes (`plain` + the tag). The one sealing path of data keys ([`share_data_key`]) and key
/// shares ([`crate::threshold::seal_share`]).
pub(crate) fn hpke_seal<const C: usize>(
    public: &[u8; X25519_LEN],
    info: &[u8],
    plain: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<([u8; X25519_LEN], [u8; C])> {
    let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(public)
        .map_err(|_| VaultError::BadBoxPublicKey)?;
    let (enc, ct) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeS::Base,
        &pk,
        info,
        plain,
        &[],
        rng,
    )
    .map_err(|e| match e {
        hpke::HpkeError::EncapError => VaultError::BadBoxPublicKey,
        _ => VaultError::EncryptFailed,
    })?;
    let mut enc_bytes = [0u8; X25519_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    let ciphertext = <[u8; C]>::try_from(ct.as_slice()).map_err(|_| VaultError::EncryptFailed)?;
    Ok((enc_bytes, ciphertext))
}

/// Opens what [`hpke_seal`] sealed to `recipient` under `info`; any mismatch (key, info, bytes)
/// is `DecryptFailed`, and a plaintext of another length than `P` too.
pub(crate) fn hpke_open<const P: usize>(
    recipient: &MemberBoxKey,
    enc: &[u8; X25519_LEN],
    info: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<[u8; P]>> {
    let enc =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| VaultError::DecryptFailed)?;
    let plain = Zeroizing::new(
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &recipient.secret,
            &enc,
            info,
            ciphertext,
            &[],
        )
        .map_err(|_| VaultError::DecryptFailed)?,
    );
    Ok(Zeroizing::new(
        <[u8; P]>::try_from(plain.as_slice()).map_err(|_| VaultError::DecryptFailed)?,
    ))
}

/// Opens a shared data key with the reader's box key. Refuses a share made for another record,
/// another reader, or another key.
pub fn open_shared_key(
    reader: &MemberBoxKey,
    record_id: &str,
    reader_member_id: &str,
    shared: &SharedKey,
) -> Result<DataKey> {
    let info = share_info(record_id, reader_member_id)?;
    let bytes = hpke_open::<DATA_KEY_LEN>(reader, &shared.enc, &info, &shared.ciphertext)?;
    Ok(DataKey::from_bytes(*bytes))
}

/// The statement a member's Ed25519 admin key signs to register its X25519 box key:
/// `BOX_KEY_STATEMENT_DOMAIN ‖ lp(chain id) ‖ lp(member id) ‖ x25519 public key(32)`.
pub fn box_key_statement(
    chain_id: &str,
    member_id: &str,
    x25519_public: &[u8; X25519_LEN],
) -> Result<Vec<u8>> {
    check_id("chain id", chain_id)?;
    check_id("member id", member_id)?;
    let mut out = Vec::with_capacity(
        BOX_KEY_STATEMENT_DOMAIN.len() + 8 + chain_id.len() + member_id.len() + X25519_LEN,
    );
    out.extend_from_slice(BOX_KEY_STATEMENT_DOMAIN);
    put_lp(&mut out, chain_id.as_bytes());
    put_lp(&mut out, member_id.as_bytes());
    out.extend_from_slice(x25519_public);
    Ok(out)
}

/// Signs a box-key statement with the member's Ed25519 admin key.
pub fn sign_box_key(
    admin: &SigningKey,
    chain_id: &str,
    member_id: &str,
    x25519_public: &[u8; X25519_LEN],
) -> Result<Signature> {
    Ok(admin.sign(&box_key_statement(chain_id, member_id, x25519_public)?))
}

/// Verifies a box-key statement signature with `verify_strict` (refuses small-order keys and
/// non-canonical signatures).
pub fn verify_box_key(
    admin: &VerifyingKey,
    chain_id: &str,
    member_id: &str,
    x25519_public: &[u8; X25519_LEN],
    signature: &Signature,
) -> Result<()> {
    let statement = box_key_statement(chain_id, member_id, x25519_public)?;
    admin
        .verify_strict(&statement, signature)
        .map_err(|_| VaultError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_v010::rngs::StdRng;
    use rand_v010::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(13)
    }

    /// The vector of docs/vault.md ("The patient's own copy"), which the patient page checks
    /// too: the RFC 8032 test 1 seed, its HKDF output (the X25519 secret) and the box key
    /// (computed independently with Python's `cryptography`).
    #[test]
    fn patient_box_key_vector_is_pinned() {
        let seed: [u8; 32] =
            hex_bytes("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let key = patient_box_key(&seed).expect("derives");
        assert_eq!(
            *key.secret_bytes(),
            hex_bytes("93a1afee0a20bb36550a23d2e6b4e7d1da7672a3d9cc7c062736fd30d9723d03")
        );
        assert_eq!(
            key.public_bytes(),
            hex_bytes("9472b33355e59d6c915ff4f4fce22c654d1640a7c95e051edcccdee64b71803f")
        );
        // Another seed, another key; the same seed, the same key.
        assert_ne!(
            patient_box_key(&[1; 32]).expect("derives").public_bytes(),
            key.public_bytes()
        );
        assert_eq!(
            patient_box_key(&seed).expect("derives").public_bytes(),
            key.public_bytes()
        );
    }

    fn hex_bytes(h: &str) -> [u8; 32] {
        let v: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
            .collect();
        v.try_into().expect("32 bytes")
    }

    #[test]
    fn shared_key_opens_for_the_reader() {
        let mut r = rng();
        let reader = MemberBoxKey::generate(&mut r);
        let key = DataKey::generate(&mut r);
        let shared = share_data_key(&reader.public_bytes(), "rec-1", "hospital-b", &key, &mut r)
            .expect("share");
        let decoded = SharedKey::decode(&shared.encode()).expect("decode");
        let back = open_shared_key(&reader, "rec-1", "hospital-b", &decoded).expect("open");
        assert_eq!(back.as_bytes(), key.as_bytes());
    }

    #[test]
    fn another_members_key_cannot_open() {
        let mut r = rng();
        let reader = MemberBoxKey::generate(&mut r);
        let eve = MemberBoxKey::generate(&mut r);
        let key = DataKey::generate(&mut r);
        let shared = share_data_key(&reader.public_bytes(), "rec-1", "hospital-b", &key, &mut r)
            .expect("share");
        assert_eq!(
            open_shared_key(&eve, "rec-1", "hospital-b", &shared).map(|_| ()),
            Err(VaultError::DecryptFailed)
        );
    }

    #[test]
    fn share_for_record_a_does_not_open_as_record_b_or_for_another_reader_id() {
        let mut r = rng();
        let reader = MemberBoxKey::generate(&mut r);
        let key = DataKey::generate(&mut r);
        let shared = share_data_key(&reader.public_bytes(), "rec-A", "hospital-b", &key, &mut r)
            .expect("share");
        assert!(open_shared_key(&reader, "rec-B", "hospital-b", &shared).is_err());
        assert!(open_shared_key(&reader, "rec-A", "hospital-c", &shared).is_err());
    }

    #[test]
    fn tampered_share_is_refused() {
        let mut r = rng();
        let reader = MemberBoxKey::generate(&mut r);
        let key = DataKey::generate(&mut r);
        let shared =
            share_data_key(&reader.public_bytes(), "rec-1", "m", &key, &mut r).expect("share");
        for i in [1usize, 40, SHARED_KEY_LEN - 1] {
            let mut bytes = shared.encode();
            bytes[i] ^= 1;
            let t = SharedKey::decode(&bytes).expect("decode");
            assert!(
                open_shared_key(&reader, "rec-1", "m", &t).is_err(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn low_order_public_key_is_refused() {
        let mut r = rng();
        let key = DataKey::generate(&mut r);
        assert_eq!(
            share_data_key(&[0u8; 32], "rec-1", "m", &key, &mut r).map(|_| ()),
            Err(VaultError::BadBoxPublicKey)
        );
    }

    #[test]
    fn box_key_survives_secret_bytes_round_trip() {
        let k = MemberBoxKey::generate(&mut rng());
        let again = MemberBoxKey::from_secret_bytes(&k.secret_bytes()).expect("from bytes");
        assert_eq!(again.public_bytes(), k.public_bytes());
    }

    #[test]
    fn share_info_and_statement_layouts_are_pinned() {
        let mut expected = b"medledger/vault/share/v1".to_vec();
        expected.extend([0, 0, 0, 1, b'r', 0, 0, 0, 2, b'm', b'1']);
        assert_eq!(share_info("r", "m1").expect("info"), expected);
        let mut expected = b"medledger/vault/box-key/v1".to_vec();
        expected.extend([0, 0, 0, 1, b'c', 0, 0, 0, 1, b'm']);
        expected.extend([4u8; 32]);
        assert_eq!(
            box_key_statement("c", "m", &[4; 32]).expect("stmt"),
            expected
        );
    }

    #[test]
    fn box_key_statement_signature_binds_chain_member_and_key() {
        let admin = SigningKey::from_bytes(&[8; 32]);
        let vk = admin.verifying_key();
        let pk = MemberBoxKey::generate(&mut rng()).public_bytes();
        let sig = sign_box_key(&admin, "medledger-1", "hospital-a", &pk).expect("sign");
        assert!(verify_box_key(&vk, "medledger-1", "hospital-a", &pk, &sig).is_ok());
        assert_eq!(
            verify_box_key(&vk, "medledger-2", "hospital-a", &pk, &sig),
            Err(VaultError::BadSignature)
        );
        assert_eq!(
            verify_box_key(&vk, "medledger-1", "hospital-b", &pk, &sig),
            Err(VaultError::BadSignature)
        );
        let mut other = pk;
        other[0] ^= 1;
        assert_eq!(
            verify_box_key(&vk, "medledger-1", "hospital-a", &other, &sig),
            Err(VaultError::BadSignature)
        );
        let stranger = SigningKey::from_bytes(&[9; 32]).verifying_key();
        assert_eq!(
            verify_box_key(&stranger, "medledger-1", "hospital-a", &pk, &sig),
            Err(VaultError::BadSignature)
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(s) = SharedKey::decode(&bytes) {
                prop_assert_eq!(s.encode().to_vec(), bytes);
            }
        }
    }
}

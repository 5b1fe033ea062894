//! Wrapping data keys under a member's key-encryption key (KEK).
//!
//! The KEK stands in for what an HSM or KMS would hold: 32 random bytes in a file that only its
//! owner can read. A data key is wrapped with XChaCha20-Poly1305 under the KEK, with associated
//! data binding the record id and the KEK id, so a wrapped key cannot be moved to another record
//! and names the KEK that opens it (which lets rotation find the right KEK).

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core_v010::CryptoRng;
use sha2_v011::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::codec::{check_id, hex, put_lp, Reader};
use crate::error::{Result, VaultError};
use crate::record::{DataKey, DATA_KEY_LEN, NONCE_LEN, TAG_LEN};

/// Bytes of a KEK, and the exact size of a KEK file (raw bytes, no encoding).
pub const KEK_LEN: usize = 32;
/// Bytes of a KEK id.
pub const KEK_ID_LEN: usize = 8;
/// Domain of the wrap associated data.
pub const WRAP_AD_DOMAIN: &[u8] = b"medledger/vault/wrap/v1";
/// Format version byte of an encoded [`WrappedKey`].
pub const WRAPPED_KEY_VERSION: u8 = 1;
/// Bytes of an encoded [`WrappedKey`]: version, KEK id, nonce, wrapped key and tag.
pub const WRAPPED_KEY_LEN: usize = 1 + KEK_ID_LEN + NONCE_LEN + DATA_KEY_LEN + TAG_LEN;

/// Identifies a KEK: the first 8 bytes of SHA-256 of the KEK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KekId(pub [u8; KEK_ID_LEN]);

impl core::fmt::Display for KekId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

/// A member's key-encryption key. Zeroized on drop; never printed.
pub struct Kek {
    key: Zeroizing<[u8; KEK_LEN]>,
    id: KekId,
}

impl core::fmt::Debug for Kek {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Kek(id {})", self.id)
    }
}

fn file_err(path: &Path, reason: impl core::fmt::Display) -> VaultError {
    VaultError::KekFile {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl Kek {
    /// A KEK from its bytes.
    pub fn from_bytes(bytes: [u8; KEK_LEN]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut id = [0u8; KEK_ID_LEN];
        id.copy_from_slice(&digest[..KEK_ID_LEN]);
        Self {
            key: Zeroizing::new(bytes),
            id: KekId(id),
        }
    }

    /// This KEK's id.
    pub fn id(&self) -> KekId {
        self.id
    }

    /// Loads a KEK from a file of exactly 32 raw bytes. On unix the file must not be readable,
    /// writable or executable by group or others (mode `0600` or stricter): the permission
    /// check is made on the opened file, so it cannot be swapped between check and read.
    pub fn load(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|e| file_err(path, e))?;
        let meta = file.metadata().map_err(|e| file_err(path, e))?;
        if !meta.is_file() {
            return Err(file_err(path, "not a regular file"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(VaultError::InsecureKekFile {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        // Read one byte more than a key, so a longer file is refused rather than truncated.
        let mut buf = Zeroizing::new([0u8; KEK_LEN + 1]);
        let mut filled = 0;
        while filled < buf.len() {
            let n = file
                .read(&mut buf[filled..])
                .map_err(|e| file_err(path, e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled != KEK_LEN {
            return Err(file_err(path, "a KEK file must hold exactly 32 bytes"));
        }
        let mut key = [0u8; KEK_LEN];
        key.copy_from_slice(&buf[..KEK_LEN]);
        let kek = Self::from_bytes(key);
        key.zeroize();
        Ok(kek)
    }

    /// Generates a KEK and writes it to a new file with mode `0600` (on unix). Refuses to
    /// overwrite an existing file: losing a KEK shreds every record wrapped under it.
    pub fn generate(path: &Path, rng: &mut impl CryptoRng) -> Result<Self> {
        let mut key = [0u8; KEK_LEN];
        rng.fill_bytes(&mut key);
        let kek = Self::from_bytes(key);
        key.zeroize();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| file_err(path, e))?;
        file.write_all(kek.key.as_slice())
            .and_then(|()| file.sync_all())
            .map_err(|e| file_err(path, e))?;
        Ok(kek)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &[u8; KEK_LEN] = &self.key;
        XChaCha20Poly1305::new(key.into())
    }
}

/// A data key wrapped under a KEK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    kek_id: KekId,
    nonce: [u8; NONCE_LEN],
    ciphertext: [u8; DATA_KEY_LEN + TAG_LEN],
}

impl WrappedKey {
    /// The id of the KEK that opens this wrapped key.
    pub fn kek_id(&self) -> KekId {
        self.kek_id
    }

    /// Encoding: `0x01 ‖ kek id(8) ‖ nonce(24) ‖ wrapped key and tag(48)`, 81 bytes.
    pub fn encode(&self) -> [u8; WRAPPED_KEY_LEN] {
        let mut out = [0u8; WRAPPED_KEY_LEN];
        out[0] = WRAPPED_KEY_VERSION;
        out[1..9].copy_from_slice(&self.kek_id.0);
        out[9..33].copy_from_slice(&self.nonce);
        out[33..].copy_from_slice(&self.ciphertext);
        out
    }

    /// Decodes untrusted bytes (exactly [`WRAPPED_KEY_LEN`] bytes, known version).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        const WHAT: &str = "wrapped key";
        let mut r = Reader::new(bytes, WHAT);
        let version = r.u8()?;
        if version != WRAPPED_KEY_VERSION {
            return Err(VaultError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let kek_id = KekId(r.array()?);
        let nonce = r.array()?;
        let ciphertext = r.array()?;
        r.finish()?;
        Ok(Self {
            kek_id,
            nonce,
            ciphertext,
        })
    }
}

/// The wrap associated data: `WRAP_AD_DOMAIN ‖ lp(record id) ‖ kek id(8)`.
pub fn wrap_associated_data(record_id: &str, kek_id: KekId) -> Result<Vec<u8>> {
    check_id("record id", record_id)?;
    let mut ad = Vec::with_capacity(WRAP_AD_DOMAIN.len() + 4 + record_id.len() + KEK_ID_LEN);
    ad.extend_from_slice(WRAP_AD_DOMAIN);
    put_lp(&mut ad, record_id.as_bytes());
    ad.extend_from_slice(&kek_id.0);
    Ok(ad)
}

/// Wraps a record's data key under a KEK.
pub fn wrap(
    kek: &Kek,
    record_id: &str,
    key: &DataKey,
    rng: &mut impl CryptoRng,
) -> Result<WrappedKey> {
    let ad = wrap_associated_data(record_id, kek.id)?;
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let ct = kek
        .cipher()
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: key.as_bytes(),
                aad: &ad,
            },
        )
        .map_err(|_| VaultError::EncryptFailed)?;
    let ciphertext = <[u8; DATA_KEY_LEN + TAG_LEN]>::try_from(ct.as_slice())
        .map_err(|_| VaultError::EncryptFailed)?;
    Ok(WrappedKey {
        kek_id: kek.id,
        nonce,
        ciphertext,
    })
}

/// Unwraps a data key. Refuses a wrapped key made under another KEK (by id) or for another
/// record (by the AEAD).
pub fn unwrap(kek: &Kek, record_id: &str, wrapped: &WrappedKey) -> Result<DataKey> {
    if wrapped.kek_id != kek.id {
        return Err(VaultError::WrongKek {
            found: wrapped.kek_id.to_string(),
            offered: kek.id.to_string(),
        });
    }
    let ad = wrap_associated_data(record_id, kek.id)?;
    let plain = Zeroizing::new(
        kek.cipher()
            .decrypt(
                &XNonce::from(wrapped.nonce),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: &ad,
                },
            )
            .map_err(|_| VaultError::DecryptFailed)?,
    );
    let mut bytes =
        <[u8; DATA_KEY_LEN]>::try_from(plain.as_slice()).map_err(|_| VaultError::DecryptFailed)?;
    let key = DataKey::from_bytes(bytes);
    bytes.zeroize();
    Ok(key)
}

/// KEK rotation: unwraps under `old` and wraps again under `new`, with a fresh nonce.
pub fn rewrap(
    old: &Kek,
    new: &Kek,
    record_id: &str,
    wrapped: &WrappedKey,
    rng: &mut impl CryptoRng,
) -> Result<WrappedKey> {
    let key = unwrap(old, record_id, wrapped)?;
    wrap(new, record_id, &key, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_v010::rngs::StdRng;
    use rand_v010::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(11)
    }

    #[test]
    fn wrap_then_unwrap_returns_the_data_key() {
        let mut r = rng();
        let kek = Kek::from_bytes([5; 32]);
        let key = DataKey::generate(&mut r);
        let wrapped = wrap(&kek, "rec-1", &key, &mut r).expect("wrap");
        let decoded = WrappedKey::decode(&wrapped.encode()).expect("decode");
        let back = unwrap(&kek, "rec-1", &decoded).expect("unwrap");
        assert_eq!(back.as_bytes(), key.as_bytes());
    }

    #[test]
    fn wrapped_key_for_another_record_is_refused() {
        let mut r = rng();
        let kek = Kek::from_bytes([5; 32]);
        let wrapped = wrap(&kek, "rec-1", &DataKey::generate(&mut r), &mut r).expect("wrap");
        assert!(matches!(
            unwrap(&kek, "rec-2", &wrapped),
            Err(VaultError::DecryptFailed)
        ));
    }

    #[test]
    fn wrong_kek_is_refused_by_id_and_by_the_aead() {
        let mut r = rng();
        let kek = Kek::from_bytes([5; 32]);
        let other = Kek::from_bytes([6; 32]);
        let wrapped = wrap(&kek, "rec-1", &DataKey::generate(&mut r), &mut r).expect("wrap");
        assert!(matches!(
            unwrap(&other, "rec-1", &wrapped),
            Err(VaultError::WrongKek { .. })
        ));
        // Even with the id forged to name the other KEK, the AEAD refuses.
        let forged = WrappedKey {
            kek_id: other.id(),
            ..wrapped
        };
        assert!(matches!(
            unwrap(&other, "rec-1", &forged),
            Err(VaultError::DecryptFailed)
        ));
    }

    #[test]
    fn tampered_wrapped_key_is_refused() {
        let mut r = rng();
        let kek = Kek::from_bytes([5; 32]);
        let wrapped = wrap(&kek, "rec-1", &DataKey::generate(&mut r), &mut r).expect("wrap");
        let mut bytes = wrapped.encode();
        bytes[40] ^= 1;
        let tampered = WrappedKey::decode(&bytes).expect("decode");
        assert!(matches!(
            unwrap(&kek, "rec-1", &tampered),
            Err(VaultError::DecryptFailed)
        ));
    }

    #[test]
    fn rewrap_moves_the_key_to_the_new_kek_only() {
        let mut r = rng();
        let old = Kek::from_bytes([5; 32]);
        let new = Kek::from_bytes([6; 32]);
        let key = DataKey::generate(&mut r);
        let wrapped = wrap(&old, "rec-1", &key, &mut r).expect("wrap");
        let rewrapped = rewrap(&old, &new, "rec-1", &wrapped, &mut r).expect("rewrap");
        assert_eq!(rewrapped.kek_id(), new.id());
        assert_eq!(
            unwrap(&new, "rec-1", &rewrapped)
                .expect("unwrap")
                .as_bytes(),
            key.as_bytes()
        );
        assert!(unwrap(&old, "rec-1", &rewrapped).is_err());
        // Rotating with the wrong old KEK fails and produces nothing.
        assert!(rewrap(&new, &old, "rec-1", &wrapped, &mut r).is_err());
    }

    #[test]
    fn kek_id_is_first_8_bytes_of_sha256() {
        let kek = Kek::from_bytes([7; 32]);
        let digest = Sha256::digest([7u8; 32]);
        assert_eq!(kek.id().0, digest[..8]);
        assert_eq!(format!("{kek:?}"), format!("Kek(id {})", kek.id()));
    }

    #[test]
    fn wrap_associated_data_layout_is_pinned() {
        let ad = wrap_associated_data("r1", KekId([9; 8])).expect("ad");
        let mut expected = b"medledger/vault/wrap/v1".to_vec();
        expected.extend([0, 0, 0, 2, b'r', b'1']);
        expected.extend([9; 8]);
        assert_eq!(ad, expected);
    }

    #[test]
    fn generate_writes_0600_and_load_reads_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        let kek = Kek::generate(&path, &mut rng()).expect("generate");
        let loaded = Kek::load(&path).expect("load");
        assert_eq!(loaded.id(), kek.id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Never overwrites.
        assert!(Kek::generate(&path, &mut rng()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn load_refuses_group_or_other_readable_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        Kek::generate(&path, &mut rng()).expect("generate");
        for mode in [0o640, 0o604, 0o660, 0o644, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert!(
                matches!(Kek::load(&path), Err(VaultError::InsecureKekFile { .. })),
                "mode {mode:o}"
            );
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        assert!(Kek::load(&path).is_ok());
    }

    #[test]
    fn load_refuses_files_of_the_wrong_size_and_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        for len in [0usize, 31, 33, 64] {
            let path = dir.path().join(format!("kek{len}"));
            std::fs::write(&path, vec![1u8; len]).expect("write");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
            assert!(
                matches!(Kek::load(&path), Err(VaultError::KekFile { .. })),
                "len {len}"
            );
        }
        assert!(Kek::load(&dir.path().join("absent")).is_err());
        assert!(Kek::load(dir.path()).is_err());
    }

    proptest! {
        #[test]
        fn decode_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(w) = WrappedKey::decode(&bytes) {
                prop_assert_eq!(w.encode().to_vec(), bytes);
            }
        }
    }
}

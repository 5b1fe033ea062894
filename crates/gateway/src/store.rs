//! Durable storage of sealed records, kept apart from their wrapped data keys.
//!
//! Layout under the data dir (file names are the lowercase hex of the record id, so no id can
//! name a path outside its folder):
//!
//! ```text
//! records/<hex id>.sealed   the sealed record encoding (docs/vault.md), ciphertext only
//! records/<hex id>.json     metadata: patient, type, version, content hash, size, key id, state
//! keys/<hex id>.key         the 81-byte wrapped data key (under the member's KEK)
//! subscriptions/<hex id>.json  a FHIR Subscription and where its deliveries stand
//! ```
//!
//! With `--store s3://…` the `.sealed` files are objects `<prefix>/records/<hex id>.sealed` in
//! an S3-compatible bucket instead (`store/sealed.rs`); metadata, keys and release markers stay
//! here.
//!
//! Every write goes to a temporary file in the same folder, is fsynced, renamed over the target,
//! and the folder is fsynced. Erasure overwrites the key file with zeros, fsyncs it, unlinks it
//! and fsyncs the folder: the ciphertext stays, the key material is gone (crypto-shredding). On a
//! copy-on-write or journalling file system an overwrite is not a guarantee that no older block
//! survives; the KEK (in an HSM in production) is the real boundary — see docs/vault.md.

mod sealed;

pub use sealed::{list_objects, S3Url, StoreUrl, MAX_OBJECT_BYTES, MAX_STORE_URL_LEN};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Where a record stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordState {
    /// Stored locally; its anchor is not (yet) known to be committed.
    Stored,
    /// Anchored on chain at `height`.
    Anchored {
        /// The anchor's block height.
        height: u64,
    },
    /// Its data key was destroyed; `height` is the erasure's block height (0 while the
    /// EraseRecord tx is not yet committed).
    Erased {
        /// The erasure's block height, or 0.
        height: u64,
    },
}

/// A stored record's metadata (no secret in it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMetaFile {
    /// Record id.
    pub record_id: String,
    /// Patient id.
    pub patient_id: String,
    /// FHIR resource type.
    pub resource_type: String,
    /// Sealing version (bound in the AEAD's associated data).
    pub version: u64,
    /// SHA-256 of the sealed record encoding, hex.
    pub content_hash: String,
    /// Length of the sealed record encoding.
    pub size: u64,
    /// The anchor's key id (`kc1-<hex key commitment>`).
    pub key_id: String,
    /// Where the record stands.
    #[serde(flatten)]
    pub state: RecordState,
    /// Stored for a person (a practitioner) who signs the anchor themselves: until their
    /// signed anchor lands, the gateway never anchors it in the member's name, and drops it once
    /// the prepared anchor's window has passed unanchored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_signature: Option<AwaitingSignature>,
    /// Threshold custody (docs/vault.md, "Threshold custody"): the key file holds this
    /// gateway's share of the data key, not the key. `None`: a record held whole by its
    /// custodian (stored before threshold custody, or with it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<CustodyFile>,
}

/// A threshold record's custody, as anchored, and this gateway's place in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodyFile {
    /// The member that stored the record and anchored it (holder 1).
    pub custodian: String,
    /// This gateway's share index (its member's place in `holders`, from 1).
    pub index: u8,
    /// The holders, in share order.
    pub holders: Vec<String>,
    /// Shares that rebuild the key.
    pub threshold: u32,
    /// The share commitments (hex), as anchored.
    pub commitments: Vec<String>,
    /// At the custodian only: the other holders' shares, each HPKE-sealed to its holder's box
    /// key (the custodian cannot open them), until that holder acknowledged its replica.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_replicate: Vec<PendingReplica>,
}

/// A replica the custodian still has to hand to a holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingReplica {
    /// The holder member.
    pub holder: String,
    /// Its share, sealed to its box key (`medledger_vault::threshold::SealedShare`), base64.
    pub sealed_share_base64: String,
}

/// Who must sign a stored record's anchor, and until when the prepared anchor is valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingSignature {
    /// The signer's public key, hex.
    pub signer: String,
    /// The prepared unordered anchor's `valid_until` (unix seconds).
    pub valid_until: u64,
}

/// The gateway's record store.
#[derive(Debug, Clone)]
pub struct Store {
    records: PathBuf,
    keys: PathBuf,
    released: PathBuf,
    /// FHIR Subscriptions (`crate::fhir::subscription`), one JSON file each.
    subscriptions: PathBuf,
    /// Break-glass reasons (`crate::breakglass`), one text file per access event.
    reasons: PathBuf,
    /// Where the sealed bytes go: `records/` above, or an object store.
    sealed: sealed::Sealed,
}

fn file_name(record_id: &str, ext: &str) -> String {
    format!("{}.{ext}", hex::encode(record_id.as_bytes()))
}

/// Writes `bytes` to `path` durably: temp file (mode `0600`: only the gateway's user reads a
/// wrapped key, a record or its metadata), fsync, rename, fsync of the folder.
pub fn write_durable(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path has no parent"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        #[cfg(unix)]
        {
            // A temp file left by a crash under an older mode keeps it: set it here.
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl Store {
    /// Opens (creating) the store under `data_dir`, sealed bytes included.
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        Store::open_with(data_dir, &StoreUrl::DataDir)
    }

    /// Opens (creating) the store under `data_dir`, with the sealed bytes where `url` says.
    /// Contacts nothing: [`Store::check`] does.
    pub fn open_with(data_dir: &Path, url: &StoreUrl) -> io::Result<Store> {
        let records = data_dir.join("records");
        let keys = data_dir.join("keys");
        let released = data_dir.join("released");
        let subscriptions = data_dir.join("subscriptions");
        let reasons = data_dir.join("reasons");
        create_private_dir(data_dir)?;
        create_private_dir(&subscriptions)?;
        create_private_dir(&reasons)?;
        create_private_dir(&records)?;
        create_private_dir(&keys)?;
        create_private_dir(&released)?;
        let sealed = sealed::Sealed::open(url, records.clone())?;
        Ok(Store {
            records,
            keys,
            released,
            subscriptions,
            reasons,
            sealed,
        })
    }

    /// Checks that the sealed bytes' store answers (an object store's bucket, endpoint and
    /// credentials); the data dir always does.
    pub async fn check(&self) -> io::Result<()> {
        self.sealed.check().await
    }

    /// Marks access event `index` of `patient` as used for a release, durably; `false` if it
    /// was used before (one committed access releases one read, across restarts).
    pub fn claim_release(&self, patient: &str, index: u64) -> io::Result<bool> {
        let path = self
            .released
            .join(format!("{}-{index}", hex::encode(patient.as_bytes())));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(f) => {
                f.sync_all()?;
                File::open(&self.released)?.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.records.join(file_name(id, "json"))
    }

    fn key_path(&self, id: &str) -> PathBuf {
        self.keys.join(file_name(id, "key"))
    }

    /// Stores a new record: the sealed bytes and the wrapped key first, the metadata last (a
    /// record is known only once all three are durable).
    pub async fn put(
        &self,
        meta: &RecordMetaFile,
        sealed: &[u8],
        wrapped_key: &[u8],
    ) -> io::Result<()> {
        self.sealed
            .put(&file_name(&meta.record_id, "sealed"), sealed)
            .await?;
        write_durable(&self.key_path(&meta.record_id), wrapped_key)?;
        self.put_meta(meta)
    }

    /// Replaces the metadata.
    pub fn put_meta(&self, meta: &RecordMetaFile) -> io::Result<()> {
        let bytes = serde_json::to_vec_pretty(meta).map_err(io::Error::other)?;
        write_durable(&self.meta_path(&meta.record_id), &bytes)
    }

    /// The record's metadata, if stored.
    pub fn meta(&self, id: &str) -> io::Result<Option<RecordMetaFile>> {
        match fs::read(self.meta_path(id)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(io::Error::other),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The sealed record bytes.
    pub async fn sealed(&self, id: &str) -> io::Result<Vec<u8>> {
        self.sealed.get(&file_name(id, "sealed")).await
    }

    /// The wrapped data key, `None` once destroyed.
    pub fn wrapped_key(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.key_path(id)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Destroys the wrapped data key: overwrite with zeros, fsync, unlink, fsync the folder.
    /// Idempotent.
    pub fn destroy_key(&self, id: &str) -> io::Result<()> {
        let path = self.key_path(id);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        {
            let mut f = OpenOptions::new().write(true).open(&path)?;
            let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
            f.write_all(&zeros)?;
            f.sync_all()?;
        }
        fs::remove_file(&path)?;
        File::open(&self.keys)?.sync_all()
    }

    /// Removes a record whose anchor was refused (so that no ciphertext lingers without an
    /// anchor, and the id can be used again): the key, then the sealed bytes, the metadata last
    /// (a crash in between leaves metadata that a later removal finds again).
    pub async fn remove(&self, id: &str) -> io::Result<()> {
        self.destroy_key(id)?;
        self.sealed.delete(&file_name(id, "sealed")).await?;
        match fs::remove_file(self.meta_path(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        File::open(&self.records)?.sync_all()
    }

    /// Writes the reason of access event `index` of `patient` (a break-glass access), durably.
    pub fn put_reason(&self, patient: &str, index: u64, text: &str) -> io::Result<()> {
        write_durable(
            &self
                .reasons
                .join(file_name(&format!("{patient}/{index}"), "txt")),
            text.as_bytes(),
        )
    }

    /// The reason kept for access event `index` of `patient`, if any.
    pub fn reason(&self, patient: &str, index: u64) -> io::Result<Option<String>> {
        let path = self
            .reasons
            .join(file_name(&format!("{patient}/{index}"), "txt"));
        match fs::read(&path) {
            Ok(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| io::Error::other("a stored reason is not UTF-8")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes subscription `id`'s file (JSON bytes), durably.
    pub fn put_subscription(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        write_durable(&self.subscriptions.join(file_name(id, "json")), bytes)
    }

    /// Removes subscription `id`'s file (idempotent).
    pub fn remove_subscription(&self, id: &str) -> io::Result<()> {
        match fs::remove_file(self.subscriptions.join(file_name(id, "json"))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        File::open(&self.subscriptions)?.sync_all()
    }

    /// Every subscription file's bytes (read at start).
    pub fn subscriptions(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.subscriptions)? {
            let path = entry?.path();
            let stored = path.extension().and_then(|e| e.to_str()) == Some("json")
                && !path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
            if stored {
                out.push(fs::read(&path)?);
            }
        }
        Ok(out)
    }

    /// Every stored record's metadata (for recovery after a restart).
    pub fn all(&self) -> io::Result<Vec<RecordMetaFile>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.records)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = fs::read(&path)?;
            if let Ok(m) = serde_json::from_slice::<RecordMetaFile>(&bytes) {
                out.push(m);
            }
        }
        out.sort_by(|a, b| a.record_id.cmp(&b.record_id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn meta(id: &str) -> RecordMetaFile {
        RecordMetaFile {
            record_id: id.into(),
            patient_id: "pt-1".into(),
            resource_type: "Observation".into(),
            version: 1,
            content_hash: "00".repeat(32),
            size: 3,
            key_id: "kc1-x".into(),
            state: RecordState::Stored,
            awaiting_signature: None,
            custody: None,
        }
    }

    /// A break-glass reason is kept per (patient, event) across a restart; another event has none.
    #[test]
    fn a_break_glass_reason_is_kept_per_event_across_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.reason("pt-1", 0).unwrap(), None);
        s.put_reason("pt-1", 0, "Unconscious on arrival").unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            s.reason("pt-1", 0).unwrap().as_deref(),
            Some("Unconscious on arrival")
        );
        assert_eq!(s.reason("pt-1", 1).unwrap(), None);
        assert_eq!(s.reason("pt-2", 0).unwrap(), None);
    }

    /// A record waiting for a person's signed anchor says so across a restart (the file), and
    /// a record without one reads as before (the field is optional).
    #[tokio::test]
    async fn a_record_awaiting_its_signed_anchor_says_so_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let waiting = RecordMetaFile {
            awaiting_signature: Some(AwaitingSignature {
                signer: "ab".repeat(32),
                valid_until: 1_700_000_030,
            }),
            ..meta("r2")
        };
        s.put(&waiting, b"abc", &[0x5a; 81]).await.unwrap();
        let reopened = Store::open(dir.path()).unwrap();
        assert_eq!(reopened.meta("r2").unwrap().unwrap(), waiting);
        let plain = serde_json::to_string(&meta("r3")).unwrap();
        assert!(!plain.contains("awaiting_signature"), "{plain}");
    }

    #[tokio::test]
    async fn put_read_erase_keeps_ciphertext_and_destroys_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let wrapped = [0x5a; 81];
        s.put(&meta("../r1"), b"abc", &wrapped).await.unwrap();
        assert_eq!(s.meta("../r1").unwrap().unwrap(), meta("../r1"));
        assert_eq!(s.sealed("../r1").await.unwrap(), b"abc");
        assert_eq!(s.wrapped_key("../r1").unwrap().unwrap(), wrapped);
        s.destroy_key("../r1").unwrap();
        s.destroy_key("../r1").unwrap();
        assert!(s.wrapped_key("../r1").unwrap().is_none());
        assert_eq!(s.sealed("../r1").await.unwrap(), b"abc");
        assert_eq!(s.all().unwrap().len(), 1);
        // Nothing escaped the data dir, no temp file is left.
        for sub in ["records", "keys"] {
            for e in fs::read_dir(dir.path().join(sub)).unwrap() {
                let n = e.unwrap().file_name().into_string().unwrap();
                assert!(!n.starts_with('.'), "{n}");
            }
        }
        s.remove("../r1").await.unwrap();
        assert!(s.meta("../r1").unwrap().is_none());
        assert!(
            s.sealed("../r1").await.is_err(),
            "the ciphertext went with it"
        );
    }

    /// Wrapped keys, records and metadata are readable by the gateway's user alone.
    #[cfg(unix)]
    #[tokio::test]
    async fn stored_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.put(&meta("r2"), b"abc", &[7; 81]).await.unwrap();
        for sub in ["records", "keys"] {
            for e in fs::read_dir(dir.path().join(sub)).unwrap() {
                let mode = e.unwrap().metadata().unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{sub}");
            }
        }
    }

    /// Subscriptions are kept across a reopen, and removed for good.
    #[test]
    fn subscriptions_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.put_subscription("sub-1", b"{\"a\":1}").unwrap();
        s.put_subscription("sub-2", b"{}").unwrap();
        s.put_subscription("sub-1", b"{\"a\":2}").unwrap();
        let again = Store::open(dir.path()).unwrap();
        let mut all = again.subscriptions().unwrap();
        all.sort();
        assert_eq!(all, [b"{\"a\":2}".to_vec(), b"{}".to_vec()]);
        again.remove_subscription("sub-2").unwrap();
        again.remove_subscription("sub-2").unwrap();
        assert_eq!(again.subscriptions().unwrap().len(), 1);
    }

    /// An access event releases once, and the gateway remembers it across a reopen.
    #[test]
    fn an_access_event_is_released_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.claim_release("pt-1", 3).unwrap());
        assert!(!s.claim_release("pt-1", 3).unwrap());
        assert!(s.claim_release("pt-1", 4).unwrap());
        let again = Store::open(dir.path()).unwrap();
        assert!(!again.claim_release("pt-1", 3).unwrap());
    }
}

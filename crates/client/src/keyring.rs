//! A file keyring: one JSON file per named Ed25519 key in `<home>/keys`, readable only by its
//! owner. Good for a localnet and tests; a production member would keep admin keys in an HSM.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

/// A stored key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyFile {
    /// The key's name.
    pub name: String,
    /// Hex public key.
    pub public_key: String,
    /// Hex secret key (the 32-byte seed).
    pub secret_key: String,
}

/// The keyring directory.
pub struct Keyring {
    dir: PathBuf,
}

impl Keyring {
    /// The keyring in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Keyring { dir: dir.into() }
    }

    fn path(&self, name: &str) -> anyhow::Result<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            bail!("key name {name:?}: use 1-64 letters, digits, - or _");
        }
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// The keyring's directory (key `name` is `<dir>/<name>.json`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new random key `name`; fails if it exists.
    pub fn add(&self, name: &str) -> anyhow::Result<SigningKey> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let key = SigningKey::from_bytes(&seed);
        self.import(name, &key)?;
        Ok(key)
    }

    /// Stores `key` as `name`; fails if the name is taken.
    pub fn import(&self, name: &str, key: &SigningKey) -> anyhow::Result<()> {
        let path = self.path(name)?;
        if path.exists() {
            bail!("key {name:?} already exists in {}", self.dir.display());
        }
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let file = KeyFile {
            name: name.into(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            secret_key: hex::encode(key.to_bytes()),
        };
        write_private(&path, &serde_json::to_vec_pretty(&file)?)
    }

    /// Loads key `name`.
    pub fn get(&self, name: &str) -> anyhow::Result<SigningKey> {
        let path = self.path(name)?;
        let bytes = fs::read(&path).with_context(|| {
            format!(
                "no key {name:?} (looked for {}); create it with `medledger keys add {name}`",
                path.display()
            )
        })?;
        key_of(&path, &bytes)
    }

    /// Names of all keys, sorted.
    pub fn list(&self) -> anyhow::Result<Vec<String>> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Ok(Vec::new());
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".json"))
                    .map(String::from)
            })
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Loads a key file of the keyring's format ([`KeyFile`]) from anywhere: a patient's own key
/// file (`vault get --patient-key`).
pub fn load_key_file(path: &Path) -> anyhow::Result<SigningKey> {
    let bytes = fs::read(path).with_context(|| format!("reading key file {}", path.display()))?;
    key_of(path, &bytes)
}

/// The signing key of a [`KeyFile`]'s bytes (`path` names it in errors).
fn key_of(path: &Path, bytes: &[u8]) -> anyhow::Result<SigningKey> {
    let file: KeyFile =
        serde_json::from_slice(bytes).with_context(|| format!("reading {}", path.display()))?;
    let seed: [u8; 32] = hex::decode(&file.secret_key)
        .ok()
        .and_then(|s| s.try_into().ok())
        .with_context(|| format!("{}: secret_key is not 64 hex characters", path.display()))?;
    Ok(SigningKey::from_bytes(&seed))
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}

/// A validator's BLS key file (JSON, 0600): secret, public key and proof of possession, hex.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlsKeyFile {
    /// The 32-byte secret key.
    pub secret_key: String,
    /// The compressed BLS12-381 public key (48 bytes).
    pub public_key: String,
    /// Proof of possession (96 bytes), for the genesis `validator.bls_pop`.
    pub proof_of_possession: String,
}

/// Creates a new random BLS key in `path` (which must not exist).
pub fn create_bls_key(path: &Path) -> anyhow::Result<BlsKeyFile> {
    let mut ikm = [0u8; 32];
    getrandom::fill(&mut ikm).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = medledger_tx::checkpoint::BlsKey::from_ikm(&ikm).context("BLS key generation")?;
    let file = BlsKeyFile {
        secret_key: hex::encode(key.to_bytes()),
        public_key: hex::encode(key.public_key()),
        proof_of_possession: hex::encode(key.proof_of_possession()),
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    write_private(path, &serde_json::to_vec_pretty(&file)?)?;
    Ok(file)
}

/// Loads a BLS key file.
pub fn load_bls_key(path: &Path) -> anyhow::Result<medledger_tx::checkpoint::BlsKey> {
    let bytes = fs::read(path).with_context(|| format!("reading BLS key {}", path.display()))?;
    let file: BlsKeyFile =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    let secret = hex::decode(&file.secret_key)
        .with_context(|| format!("{}: secret_key is not hex", path.display()))?;
    medledger_tx::checkpoint::BlsKey::from_bytes(&secret)
        .with_context(|| format!("{}: not a BLS secret key", path.display()))
}

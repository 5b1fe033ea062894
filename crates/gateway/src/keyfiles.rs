//! The gateway's secret files: the KEK ([`medledger_vault::kek`], 32 raw bytes) and the member's
//! X25519 box key (32 raw secret bytes), both mode `0600`, created on first start and never
//! overwritten.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use medledger_vault::kek::Kek;
use medledger_vault::share::MemberBoxKey;

/// Loads the KEK at `path`, generating it first if the file does not exist. Returns the KEK and
/// whether it was created now.
pub fn load_or_create_kek(path: &Path) -> anyhow::Result<(Kek, bool)> {
    if path.exists() {
        let kek = Kek::load(path).map_err(|e| anyhow::anyhow!("KEK {}: {e}", path.display()))?;
        return Ok((kek, false));
    }
    create_parent(path)?;
    let kek = Kek::generate(path, &mut rand_v010::rng())
        .map_err(|e| anyhow::anyhow!("creating KEK {}: {e}", path.display()))?;
    Ok((kek, true))
}

/// Loads the box key at `path` (32 raw secret bytes, not readable by group or others).
pub fn load_box_key(path: &Path) -> anyhow::Result<MemberBoxKey> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading box key {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "box key {}: mode {:o} lets group or others in; chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
    }
    let secret: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| anyhow::anyhow!("box key {}: not 32 bytes", path.display()))?;
    MemberBoxKey::from_secret_bytes(&secret)
        .map_err(|e| anyhow::anyhow!("box key {}: {e}", path.display()))
}

/// Loads the box key at `path`, generating it (mode `0600`, never overwriting) if the file does
/// not exist. Returns the key and whether it was created now.
pub fn load_or_create_box_key(path: &Path) -> anyhow::Result<(MemberBoxKey, bool)> {
    if path.exists() {
        return Ok((load_box_key(path)?, false));
    }
    create_parent(path)?;
    let key = MemberBoxKey::generate(&mut rand_v010::rng());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating box key {}", path.display()))?;
    file.write_all(key.secret_bytes().as_slice())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing box key {}", path.display()))?;
    Ok((key, true))
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn files_are_created_once_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, created) = load_or_create_box_key(&dir.path().join("gw/box.key")).unwrap();
        assert!(created);
        let (k2, created) = load_or_create_box_key(&dir.path().join("gw/box.key")).unwrap();
        assert!(!created);
        assert_eq!(k1.public_bytes(), k2.public_bytes());
        let (kek1, created) = load_or_create_kek(&dir.path().join("gw/kek")).unwrap();
        assert!(created);
        let (kek2, created) = load_or_create_kek(&dir.path().join("gw/kek")).unwrap();
        assert!(!created);
        assert_eq!(kek1.id(), kek2.id());
        use std::os::unix::fs::PermissionsExt;
        for f in ["gw/box.key", "gw/kek"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
}

//! The release of the patient and auditor pages (docs/privacy.md, "Code trust"): the one hash
//! that names a build of `web/dist`, the manifest it is the hash of, and the checks of an
//! approved release (`SetWebRelease`, genesis `web_release`). Pure, so anyone recomputes a
//! gateway's release hash from the files it serves.
//!
//! The manifest lists every file of the bundle, sorted by path (byte order), one line each:
//! `{path} NUL {SHA-256 of the file, 64 lower-case hex} LF`, where `path` is relative to the
//! bundle's root with `/` between folders (`assets/patient.js`). The release hash is the SHA-256
//! of the manifest's bytes.

use sha2::{Digest, Sha256};

use crate::error::{Code, TxError};
use crate::limits::{MAX_RELEASE_FILES, MAX_RELEASE_VERSION_LEN};

/// Length of a release hash (SHA-256).
pub const RELEASE_HASH_LEN: usize = 32;

/// Longest path of a file in a manifest.
pub const MAX_RELEASE_PATH_LEN: usize = 200;

/// One file of a bundle as its manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ManifestEntry {
    /// Relative path, `/`-separated.
    pub path: String,
    /// SHA-256 of the file's bytes.
    pub sha256: [u8; 32],
}

/// A path a manifest may list: 1 to [`MAX_RELEASE_PATH_LEN`] bytes of `A-Z a-z 0-9 . _ - /`,
/// no empty, `.` or `..` segment.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok_chars = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    let ok_segments = path
        .split('/')
        .all(|s| !s.is_empty() && s != "." && s != "..");
    if path.is_empty() || path.len() > MAX_RELEASE_PATH_LEN || !ok_chars || !ok_segments {
        return Err(format!(
            "file path {:?}: give 1 to {MAX_RELEASE_PATH_LEN} characters of A-Z a-z 0-9 . _ - /, \
             with no empty, . or .. folder",
            path.chars().take(80).collect::<String>()
        ));
    }
    Ok(())
}

/// The manifest of `files` (path, contents), sorted by path. Refuses a bad path, a path given
/// twice and more than [`MAX_RELEASE_FILES`] files.
pub fn manifest<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Vec<ManifestEntry>, String> {
    let mut entries = Vec::new();
    for (path, contents) in files {
        check_path(path)?;
        if entries.len() >= MAX_RELEASE_FILES {
            return Err(format!("more than {MAX_RELEASE_FILES} files"));
        }
        entries.push(ManifestEntry {
            path: path.to_string(),
            sha256: Sha256::digest(contents).into(),
        });
    }
    sorted(entries)
}

fn sorted(mut entries: Vec<ManifestEntry>) -> Result<Vec<ManifestEntry>, String> {
    entries.sort();
    if let Some(w) = entries.windows(2).find(|w| w[0].path == w[1].path) {
        return Err(format!("file {} is listed twice", w[0].path));
    }
    Ok(entries)
}

/// The manifest's bytes: `{path}\0{sha256 hex}\n` per entry, in order.
pub fn manifest_bytes(entries: &[ManifestEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * 100);
    for e in entries {
        out.extend_from_slice(e.path.as_bytes());
        out.push(0);
        out.extend_from_slice(hex::encode(e.sha256).as_bytes());
        out.push(b'\n');
    }
    out
}

/// The release hash: SHA-256 of the manifest's bytes.
pub fn release_hash(entries: &[ManifestEntry]) -> [u8; 32] {
    Sha256::digest(manifest_bytes(entries)).into()
}

/// Parses manifest bytes as [`manifest_bytes`] writes them, refusing anything else (unsorted,
/// duplicate, malformed lines, more than [`MAX_RELEASE_FILES`]); so the bytes parsed are the
/// bytes the release hash is of.
pub fn parse_manifest(bytes: &[u8]) -> Result<Vec<ManifestEntry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the manifest is not UTF-8".to_string())?;
    let body = text
        .strip_suffix('\n')
        .ok_or_else(|| "the manifest is empty or does not end with a line feed".to_string())?;
    let mut entries = Vec::new();
    for (n, line) in body.split('\n').enumerate() {
        if n >= MAX_RELEASE_FILES {
            return Err(format!(
                "the manifest lists more than {MAX_RELEASE_FILES} files"
            ));
        }
        let (path, digest) = line
            .split_once('\0')
            .ok_or_else(|| format!("manifest line {}: no NUL after the path", n + 1))?;
        check_path(path).map_err(|e| format!("manifest line {}: {e}", n + 1))?;
        let sha256: [u8; 32] = (digest.len() == 64
            && digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| hex::decode(digest).ok())
        .flatten()
        .and_then(|d| d.try_into().ok())
        .ok_or_else(|| {
            format!(
                "manifest line {}: the digest is not 64 lower-case hex characters",
                n + 1
            )
        })?;
        entries.push(ManifestEntry {
            path: path.to_string(),
            sha256,
        });
    }
    let sorted = sorted(entries.clone()).map_err(|e| format!("the manifest: {e}"))?;
    if sorted != entries {
        return Err("the manifest is not sorted by path".into());
    }
    Ok(entries)
}

/// An approved release's fields: the hash is 32 bytes ([`Code::BadReleaseHash`]), the version
/// 1 to [`MAX_RELEASE_VERSION_LEN`] bytes of `A-Z a-z 0-9 . _ -` ([`Code::BadReleaseVersion`]).
/// SetWebRelease and genesis `web_release` both obey it.
pub fn check_release(bundle_sha256: &[u8], version: &str) -> Result<(), TxError> {
    if bundle_sha256.len() != RELEASE_HASH_LEN {
        return Err(TxError::new(
            Code::BadReleaseHash,
            format!(
                "bundle_sha256 is {} bytes: give the 32-byte release hash that `medledger web \
                 hash` prints",
                bundle_sha256.len()
            ),
        ));
    }
    let ok = version
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if version.is_empty() || version.len() > MAX_RELEASE_VERSION_LEN || !ok {
        return Err(TxError::new(
            Code::BadReleaseVersion,
            format!(
                "version: give a label of 1 to {MAX_RELEASE_VERSION_LEN} characters of A-Z a-z \
                 0-9 . _ -"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_manifest_is_sorted_lines_and_round_trips() {
        let files: [(&str, &[u8]); 2] = [("patient.html", b"p"), ("assets/a.js", b"")];
        let m = manifest(files).unwrap();
        let bytes = manifest_bytes(&m);
        let expected = format!(
            "assets/a.js\0{}\npatient.html\0{}\n",
            hex::encode(Sha256::digest(b"")),
            hex::encode(Sha256::digest(b"p"))
        );
        assert_eq!(bytes, expected.as_bytes());
        assert_eq!(release_hash(&m), <[u8; 32]>::from(Sha256::digest(&bytes)));
        assert_eq!(parse_manifest(&bytes).unwrap(), m);
    }

    #[test]
    fn bad_manifests_and_paths_are_refused() {
        let d = hex::encode([0u8; 32]);
        for bad in [
            String::new(),
            format!("b\0{d}\na\0{d}\n"),
            format!("a\0{d}\na\0{d}\n"),
            format!("a\0{}\n", d.to_uppercase().replace('0', "A")),
            format!("a {d}\n"),
            format!("../a\0{d}\n"),
            format!("a\0{d}"),
        ] {
            assert!(parse_manifest(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(check_path("a//b").is_err());
        assert!(check_path("assets/x.js").is_ok());
        let dup: [(&str, &[u8]); 2] = [("a", b"1"), ("a", b"2")];
        assert!(manifest(dup).is_err());
    }

    #[test]
    fn releases_need_32_bytes_and_a_plain_label() {
        assert!(check_release(&[0; 32], "2025.06-1").is_ok());
        assert_eq!(
            check_release(&[0; 31], "v1").unwrap_err().code,
            Code::BadReleaseHash
        );
        for v in ["", "a b", &"x".repeat(33)] {
            assert_eq!(
                check_release(&[0; 32], v).unwrap_err().code,
                Code::BadReleaseVersion
            );
        }
    }
}

//! State sync snapshots (ABCI `ListSnapshots`, `LoadSnapshotChunk`, `OfferSnapshot`,
//! `ApplySnapshotChunk`): a new node restores the state of a recent height instead of replaying
//! every block since genesis, then follows the chain.
//!
//! **Format 1.** A snapshot of height `H` is every key and value of state `H`, in key-hash
//! order, cut into chunks of about [`CHUNK_BYTES`]. A chunk is a sequence of entries, each
//! `u32 key length ‖ key ‖ u32 value length ‖ value` (big-endian lengths). The snapshot's
//! metadata is `u16 chain-id length ‖ chain id ‖ SHA-256 of chunk 0 ‖ SHA-256 of chunk 1 ‖ …`,
//! and its hash is the SHA-256 of the metadata.
//!
//! **What is verified.** CometBFT's light client verifies the app hash of height `H` (from
//! header `H+1`) before it offers a snapshot. Each chunk must hash to its entry in the metadata,
//! else it is refetched from another peer and its sender rejected. After the last chunk the
//! ledger builds the tree of all entries: its root must equal the verified app hash, else the
//! snapshot is rejected and nothing is written. The chain id, which is not part of the state,
//! must be the one the restored state's newest checkpoint certificate (of height `H - 2`) is
//! signed for.
//!
//! **When.** A node with `--snapshot-interval N` takes a snapshot after committing each height
//! that is a multiple of `N` whose validator registry did not change in the last three blocks
//! (blocks check certificates with the registries of the last three states, and a restored node
//! has only one: see [`crate::ledger`]). It builds it on a thread of its own from a consistent
//! RocksDB snapshot, off the Commit path, and keeps the newest [`KEEP`].

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::store::{Exporter, WriteSet};

/// The only snapshot format: see the module docs.
pub const FORMAT: u32 = 1;
/// Target chunk size (CometBFT accepts chunks up to 16 MB).
pub const CHUNK_BYTES: usize = 4 << 20;
/// Most chunks a snapshot may have: a restore buffers the whole state (at most
/// `MAX_CHUNKS × CHUNK_BYTES`, 16 GiB) before its root can be checked.
pub const MAX_CHUNKS: u32 = 4096;
/// Snapshots kept on disk.
pub const KEEP: usize = 2;
/// Longest key and value a chunk may carry (the ledger's own are far smaller).
const MAX_KEY: usize = 4096;
const MAX_VALUE: usize = 8 << 20;

/// A snapshot as ABCI describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The height of the state.
    pub height: u64,
    /// [`FORMAT`].
    pub format: u32,
    /// Number of chunks.
    pub chunks: u32,
    /// SHA-256 of `metadata`.
    pub hash: Vec<u8>,
    /// Chain id and chunk hashes (module docs).
    pub metadata: Vec<u8>,
}

/// The parsed metadata of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The chain the state belongs to.
    pub chain_id: String,
    /// SHA-256 of each chunk, in order.
    pub chunk_hashes: Vec<[u8; 32]>,
}

impl Metadata {
    /// The metadata's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let id = self.chain_id.as_bytes();
        let mut out = Vec::with_capacity(2 + id.len() + 32 * self.chunk_hashes.len());
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id);
        for h in &self.chunk_hashes {
            out.extend_from_slice(h);
        }
        out
    }

    /// Parses metadata; `None` if malformed.
    pub fn decode(bytes: &[u8]) -> Option<Metadata> {
        let (len, rest) = bytes.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if rest.len() < len || (rest.len() - len) % 32 != 0 {
            return None;
        }
        let (id, hashes) = rest.split_at(len);
        Some(Metadata {
            chain_id: String::from_utf8(id.to_vec()).ok()?,
            chunk_hashes: hashes
                .chunks_exact(32)
                .map(|c| {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(c);
                    h
                })
                .collect(),
        })
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Appends one entry to a chunk.
fn put_entry(chunk: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    chunk.extend_from_slice(&(key.len() as u32).to_be_bytes());
    chunk.extend_from_slice(key);
    chunk.extend_from_slice(&(value.len() as u32).to_be_bytes());
    chunk.extend_from_slice(value);
}

/// The entries of a chunk; `None` if malformed.
pub fn decode_chunk(mut chunk: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    let take = |max: usize, chunk: &mut &[u8]| -> Option<Vec<u8>> {
        let (len, rest) = chunk.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        if len > max || rest.len() < len {
            return None;
        }
        let (v, rest) = rest.split_at(len);
        *chunk = rest;
        Some(v.to_vec())
    };
    while !chunk.is_empty() {
        let key = take(MAX_KEY, &mut chunk)?;
        let value = take(MAX_VALUE, &mut chunk)?;
        if key.is_empty() || value.is_empty() {
            return None;
        }
        out.push((key, value));
    }
    Some(out)
}

/// The snapshots of one node on disk: `DIR/{height:020}/metadata` and `DIR/{height:020}/{i}`.
#[derive(Clone, Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
}

impl SnapshotStore {
    /// Snapshots under `dir` (created when the first is written).
    pub fn new(dir: &Path) -> SnapshotStore {
        SnapshotStore {
            dir: dir.to_path_buf(),
        }
    }

    /// The snapshots on disk, newest first. Unreadable ones are skipped.
    pub fn list(&self) -> Vec<Snapshot> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut heights: Vec<u64> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        heights
            .into_iter()
            .filter_map(|h| {
                let metadata = fs::read(self.path(h).join("metadata")).ok()?;
                let m = Metadata::decode(&metadata)?;
                Some(Snapshot {
                    height: h,
                    format: FORMAT,
                    chunks: u32::try_from(m.chunk_hashes.len()).ok()?,
                    hash: sha256(&metadata).to_vec(),
                    metadata,
                })
            })
            .collect()
    }

    /// Chunk `index` of the snapshot of `height` in `format`, if this node has it.
    pub fn chunk(&self, height: u64, format: u32, index: u32) -> Option<Vec<u8>> {
        if format != FORMAT {
            return None;
        }
        fs::read(self.path(height).join(index.to_string())).ok()
    }

    fn path(&self, height: u64) -> PathBuf {
        self.dir.join(format!("{height:020}"))
    }

    /// Writes the snapshot of `version` read through `exporter`, in chunks of about
    /// `chunk_bytes`, then removes all but the newest [`KEEP`]. A half-written snapshot is never
    /// listed: it is written under a temporary name and renamed.
    pub fn create(
        &self,
        exporter: &Exporter,
        version: u64,
        chain_id: &str,
        chunk_bytes: usize,
    ) -> Result<Snapshot, StoreError> {
        let tmp = self.dir.join(format!("{version:020}.tmp"));
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io)?;
        let mut hashes = Vec::new();
        let mut chunk = Vec::new();
        let flush = |chunk: &mut Vec<u8>, hashes: &mut Vec<[u8; 32]>| {
            hashes.push(sha256(chunk));
            let r = fs::write(tmp.join((hashes.len() - 1).to_string()), &chunk).map_err(io);
            chunk.clear();
            r
        };
        exporter.for_each(version, |k, v| {
            put_entry(&mut chunk, k, v);
            if chunk.len() >= chunk_bytes {
                flush(&mut chunk, &mut hashes)?;
            }
            Ok(())
        })?;
        if !chunk.is_empty() || hashes.is_empty() {
            flush(&mut chunk, &mut hashes)?;
        }
        if hashes.len() > MAX_CHUNKS as usize {
            let _ = fs::remove_dir_all(&tmp);
            return Err(StoreError::Tree(format!(
                "the state needs {} chunks, more than {MAX_CHUNKS}",
                hashes.len()
            )));
        }
        let metadata = Metadata {
            chain_id: chain_id.to_string(),
            chunk_hashes: hashes,
        }
        .encode();
        fs::write(tmp.join("metadata"), &metadata).map_err(io)?;
        let _ = fs::remove_dir_all(self.path(version));
        fs::rename(&tmp, self.path(version)).map_err(io)?;
        for old in self.list().iter().skip(KEEP) {
            let _ = fs::remove_dir_all(self.path(old.height));
        }
        self.list()
            .into_iter()
            .find(|s| s.height == version)
            .ok_or_else(|| StoreError::Tree("snapshot written but not listed".into()))
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Tree(format!("snapshot files: {e}"))
}

/// A restore in progress: the snapshot accepted, the chunks applied so far.
#[derive(Debug)]
pub struct Restore {
    /// The snapshot's height.
    pub height: u64,
    /// The app hash of that height, verified by CometBFT's light client.
    pub app_hash: [u8; 32],
    /// Parsed metadata.
    pub metadata: Metadata,
    /// The next chunk expected.
    pub next: u32,
    /// Every entry so far.
    pub entries: WriteSet,
}

/// Why an offered snapshot is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfferRefusal {
    /// Not a format this node reads.
    Format,
    /// Malformed or unusable; the reason says why.
    Snapshot(String),
}

/// Checks an offered snapshot and starts its restore.
pub fn offer(s: &Snapshot, app_hash: &[u8]) -> Result<Restore, OfferRefusal> {
    if s.format != FORMAT {
        return Err(OfferRefusal::Format);
    }
    let bad = |why: &str| Err(OfferRefusal::Snapshot(why.to_string()));
    let Ok(app_hash) = <[u8; 32]>::try_from(app_hash) else {
        return bad("the app hash is not 32 bytes");
    };
    if s.height == 0 {
        return bad("height 0 is genesis, not a snapshot");
    }
    if s.hash != sha256(&s.metadata) {
        return bad("the hash is not the SHA-256 of the metadata");
    }
    let Some(metadata) = Metadata::decode(&s.metadata) else {
        return bad("malformed metadata");
    };
    let n = metadata.chunk_hashes.len();
    if n == 0 || n > MAX_CHUNKS as usize || n != s.chunks as usize {
        return bad("chunk count does not match the metadata, or is out of range");
    }
    Ok(Restore {
        height: s.height,
        app_hash,
        metadata,
        next: 0,
        entries: WriteSet::new(),
    })
}

/// What one applied chunk means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// Taken; more chunks to come.
    More,
    /// The last chunk: every entry is in [`Restore::entries`], ready for the root check.
    Complete,
    /// The chunk does not match its hash: fetch it again, from another peer.
    Refetch,
    /// The snapshot cannot be right (its chunks hash as the metadata says but do not decode,
    /// or repeat a key).
    Reject(String),
}

impl Restore {
    /// Applies chunk `index`. Chunks come in order.
    pub fn apply(&mut self, index: u32, chunk: &[u8]) -> ChunkVerdict {
        if index != self.next {
            return ChunkVerdict::Refetch;
        }
        let Some(expected) = self.metadata.chunk_hashes.get(index as usize) else {
            return ChunkVerdict::Reject(format!("chunk {index} is beyond the snapshot"));
        };
        if sha256(chunk) != *expected {
            return ChunkVerdict::Refetch;
        }
        let Some(entries) = decode_chunk(chunk) else {
            return ChunkVerdict::Reject(format!("chunk {index} does not decode"));
        };
        for (k, v) in entries {
            if self.entries.insert(k, Some(v)).is_some() {
                return ChunkVerdict::Reject(format!("chunk {index} repeats a key"));
            }
        }
        self.next += 1;
        if self.next as usize == self.metadata.chunk_hashes.len() {
            ChunkVerdict::Complete
        } else {
            ChunkVerdict::More
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_chunks_round_trip_and_refuse_garbage() {
        let m = Metadata {
            chain_id: "medledger-test".into(),
            chunk_hashes: vec![[1; 32], [2; 32]],
        };
        assert_eq!(Metadata::decode(&m.encode()), Some(m.clone()));
        assert_eq!(Metadata::decode(&m.encode()[..40]), None);
        assert_eq!(Metadata::decode(&[0xff]), None);
        let mut chunk = Vec::new();
        put_entry(&mut chunk, b"k1", b"v1");
        put_entry(&mut chunk, b"k2", b"value two");
        assert_eq!(
            decode_chunk(&chunk),
            Some(vec![
                (b"k1".to_vec(), b"v1".to_vec()),
                (b"k2".to_vec(), b"value two".to_vec())
            ])
        );
        assert_eq!(decode_chunk(&chunk[..chunk.len() - 1]), None);
        assert_eq!(
            decode_chunk(&[0, 0, 0, 0, 0, 0, 0, 1, 7]),
            None,
            "empty key"
        );
        assert_eq!(decode_chunk(&[0xff, 0xff, 0xff, 0xff]), None, "huge length");
    }

    fn snapshot_of(chunks: &[Vec<u8>]) -> Snapshot {
        let metadata = Metadata {
            chain_id: "c".into(),
            chunk_hashes: chunks.iter().map(|c| sha256(c)).collect(),
        }
        .encode();
        Snapshot {
            height: 7,
            format: FORMAT,
            chunks: chunks.len() as u32,
            hash: sha256(&metadata).to_vec(),
            metadata,
        }
    }

    #[test]
    fn an_offer_is_checked_and_chunks_must_match_their_hashes() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        put_entry(&mut a, b"k1", b"v1");
        put_entry(&mut b, b"k2", b"v2");
        let s = snapshot_of(&[a.clone(), b.clone()]);
        assert_eq!(
            offer(
                &Snapshot {
                    format: 2,
                    ..s.clone()
                },
                &[0; 32]
            )
            .err(),
            Some(OfferRefusal::Format)
        );
        assert!(offer(&s, &[0; 31]).is_err(), "app hash length");
        assert!(offer(
            &Snapshot {
                chunks: 3,
                ..s.clone()
            },
            &[0; 32]
        )
        .is_err());
        assert!(offer(
            &Snapshot {
                hash: vec![0; 32],
                ..s.clone()
            },
            &[0; 32]
        )
        .is_err());
        let mut r = offer(&s, &[0; 32]).unwrap();
        assert_eq!(r.apply(1, &b), ChunkVerdict::Refetch, "out of order");
        assert_eq!(
            r.apply(0, &b),
            ChunkVerdict::Refetch,
            "wrong bytes for chunk 0"
        );
        assert_eq!(r.apply(0, &a), ChunkVerdict::More);
        assert_eq!(r.apply(1, &b), ChunkVerdict::Complete);
        assert_eq!(r.entries.len(), 2);
        // A snapshot whose chunks repeat a key is rejected, not merged.
        let s = snapshot_of(&[a.clone(), a.clone()]);
        let mut r = offer(&s, &[0; 32]).unwrap();
        assert_eq!(r.apply(0, &a), ChunkVerdict::More);
        assert!(matches!(r.apply(1, &a), ChunkVerdict::Reject(_)));
    }
}

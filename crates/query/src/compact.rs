//! The compact proof transport (`ProofOp` type [`crate::PROOF_OP_TYPE`], `jmt-compact-v1`).
//!
//! An ICS23 proof of the JMT spends about 56 bytes per tree level: the 32-byte sibling, plus the
//! JMT domain tag `JMT::IntrnalNode`, the hash op and protobuf framing, all of which the JMT spec
//! ([`jmt::ics23_spec`]) fixes. It also repeats the key and the value the answer already carries.
//! The compact form sends per level only what the spec leaves open: which side the sibling is on
//! and the sibling itself, or a bit saying it is the JMT placeholder (the hash of an empty
//! subtree, then 0 bytes). The two neighbours of a proof of absence send the levels their paths
//! share only once.
//!
//! The verifier does not trust this format: [`expand`] rebuilds the standard
//! `ics23::CommitmentProof` that `jmt` 0.12 would have produced (the same leaf op, the same inner
//! ops) and [`crate::verify`] checks it with the unchanged `ics23` verifier and the JMT spec. The
//! expander is a decoder; anything it accepts is an ICS23 proof like any other. Every ICS23 proof
//! of the JMT's shape has exactly one compact encoding, and [`expand`] accepts only that one:
//! `encode(&expand(bytes, ..)?) == bytes`.
//!
//! # Byte layout (version 1)
//!
//! All integers are big-endian.
//!
//! ```text
//! proof     = version:u8 (= 0x01)  kind:u8  body
//! kind      = 0x00              present: body = path (key and value are the answer's)
//!           | 0x01..=0x03       absent: bit 0 = a left neighbour follows, bit 1 = a right one;
//!                               body = [left neighbour] [right neighbour], left first
//! neighbour = key_len:u16  key  value_len:u32  value  [shared:u16]  path
//! shared    = only in the right neighbour of kind 0x03: its top `shared` levels (the root end)
//!             are the left neighbour's top `shared` levels, not sent again; `path` holds the
//!             levels below them. The two leaves are adjacent, so above their common ancestor
//!             both paths have the same siblings on the same sides; `shared` is the longest
//!             such run (0..=the left path's levels, and the right path's total ≤ 256)
//! path      = levels:u16 (0..=256)  bitmap  siblings
//! bitmap    = ceil(levels / 4) bytes; level i (0 = the inner op next to the leaf, as in the
//!             ICS23 path) owns bits 2i and 2i+1, counted from the least significant bit of the
//!             first byte:
//!               bit 2i   = 1: the sibling is on the left  (prefix = tag ‖ sibling, suffix = ∅)
//!                        = 0: the sibling is on the right (prefix = tag, suffix = sibling)
//!               bit 2i+1 = 1: the sibling is the JMT placeholder hash and is not sent
//!             the bits after the last level are 0
//! siblings  = 32 bytes for each level whose placeholder bit is 0, in level order
//! ```
//!
//! `tag` is `JMT::IntrnalNode`; every inner op hashes with SHA-256; the leaf op is the JMT spec's.
//! The bytes end after the last path: trailing bytes are an error. A sibling equal to the
//! placeholder must use the placeholder bit, and `shared` must be the longest run (one encoding
//! per proof). Limits: [`MAX_LEVELS`], [`MAX_KEY_LEN`], [`MAX_VALUE_LEN`]; every length is
//! checked against its limit and against the bytes left before anything is read or allocated.

use ics23::commitment_proof::Proof;
use ics23::{CommitmentProof, ExistenceProof, HashOp, InnerOp, LeafOp, NonExistenceProof};
use jmt::proof::INTERNAL_DOMAIN_SEPARATOR;

use crate::VerifyError;

/// The format version, the first byte.
pub const VERSION: u8 = 1;
/// Most levels in one path: a JMT key hash has 256 bits, so no leaf is deeper.
pub const MAX_LEVELS: usize = 256;
/// Longest neighbour key carried by a proof of absence. State keys are built from ids of at most
/// [`medledger_tx::limits::MAX_RECORD_ID_LEN`] bytes and a short prefix; this leaves ample room.
pub const MAX_KEY_LEN: usize = 4096;
/// Longest neighbour value carried by a proof of absence. State values are written from
/// transactions of at most [`medledger_tx::limits::MAX_TX_BYTES`] or are bounded aggregates
/// (the validator registry holds at most 256 entries); 1 MiB is far above any of them.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// The JMT's hash of an empty subtree (`jmt::SPARSE_MERKLE_PLACEHOLDER_HASH`, private in jmt;
/// the spec's `empty_child`, which a test checks).
const PLACEHOLDER: [u8; 32] = *b"SPARSE_MERKLE_PLACEHOLDER_HASH__";
const SIBLING_LEN: usize = 32;
const KIND_PRESENT: u8 = 0x00;
const HAS_LEFT: u8 = 0x01;
const HAS_RIGHT: u8 = 0x02;
const DIRECTION_LEFT: u8 = 0b01;
const PLACEHOLDER_BIT: u8 = 0b10;

/// Why a proof has no compact encoding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// The proof's ops are not those the JMT ICS23 spec builds.
    #[error("not a JMT proof: {0}")]
    Shape(&'static str),
    /// A count or length is over its limit.
    #[error("{what} is {len}, more than the {max} a compact proof carries")]
    TooLong {
        /// What was counted.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The JMT spec's leaf op, the only one a compact proof stands for.
fn jmt_leaf() -> LeafOp {
    jmt::ics23_spec().leaf_spec.unwrap_or_default()
}

/// Encodes a JMT ICS23 proof (as `Store::prove` returns it) compactly. The proven key and value
/// are left out: the verifier takes them from the answer.
pub fn encode(proof: &CommitmentProof) -> Result<Vec<u8>, EncodeError> {
    let leaf = jmt_leaf();
    let mut out = vec![VERSION];
    match &proof.proof {
        Some(Proof::Exist(e)) => {
            out.push(KIND_PRESENT);
            check_leaf(e, &leaf)?;
            put_path(&mut out, &e.path)?;
        }
        Some(Proof::Nonexist(n)) => {
            let kind = match (&n.left, &n.right) {
                (Some(_), Some(_)) => HAS_LEFT | HAS_RIGHT,
                (Some(_), None) => HAS_LEFT,
                (None, Some(_)) => HAS_RIGHT,
                (None, None) => return Err(EncodeError::Shape("an absence with no neighbour")),
            };
            out.push(kind);
            let mut left: Option<&[InnerOp]> = None;
            for e in [&n.left, &n.right].into_iter().flatten() {
                check_leaf(e, &leaf)?;
                put_len(&mut out, "neighbour key length", &e.key, MAX_KEY_LEN, 2)?;
                put_len(
                    &mut out,
                    "neighbour value length",
                    &e.value,
                    MAX_VALUE_LEN,
                    4,
                )?;
                check_levels(e.path.len())?;
                let own = match left {
                    // The right neighbour after a left one: the levels above the two leaves'
                    // common ancestor are the same ops in both paths; send them once.
                    Some(above) => {
                        let shared = shared_top(&e.path, above);
                        out.extend_from_slice(&(shared as u16).to_be_bytes());
                        e.path.split_at(e.path.len() - shared).0
                    }
                    None => &e.path,
                };
                put_path(&mut out, own)?;
                left = Some(&e.path);
            }
        }
        Some(Proof::Batch(_) | Proof::Compressed(_)) => {
            return Err(EncodeError::Shape("batch and compressed proofs"))
        }
        None => return Err(EncodeError::Shape("an empty proof")),
    }
    Ok(out)
}

fn check_leaf(e: &ExistenceProof, leaf: &LeafOp) -> Result<(), EncodeError> {
    if e.leaf.as_ref() != Some(leaf) {
        return Err(EncodeError::Shape("the leaf op is not the JMT spec's"));
    }
    Ok(())
}

/// Appends `len(bytes)` in `width` big-endian bytes, then `bytes`.
fn put_len(
    out: &mut Vec<u8>,
    what: &'static str,
    bytes: &[u8],
    max: usize,
    width: usize,
) -> Result<(), EncodeError> {
    let len = bytes.len();
    if len > max {
        return Err(EncodeError::TooLong { what, len, max });
    }
    // `max` fits in `width` bytes (checked by a test), so nothing is cut off here.
    let be = (len as u64).to_be_bytes();
    out.extend_from_slice(&be[be.len() - width..]);
    out.extend_from_slice(bytes);
    Ok(())
}

/// The side and sibling of one inner op, if it has the JMT shape.
fn split_inner(op: &InnerOp) -> Result<(u8, &[u8]), EncodeError> {
    if op.hash != HashOp::Sha256 as i32 {
        return Err(EncodeError::Shape("an inner op does not hash with SHA-256"));
    }
    let tag = INTERNAL_DOMAIN_SEPARATOR;
    let rest = op.prefix.strip_prefix(tag).ok_or(EncodeError::Shape(
        "an inner op lacks the JMT internal-node tag",
    ))?;
    match (rest.len(), op.suffix.len()) {
        (SIBLING_LEN, 0) => Ok((DIRECTION_LEFT, rest)),
        (0, SIBLING_LEN) => Ok((0, &op.suffix)),
        _ => Err(EncodeError::Shape(
            "an inner op is not tag ‖ sibling ‖ child or tag ‖ child ‖ sibling",
        )),
    }
}

fn check_levels(levels: usize) -> Result<(), EncodeError> {
    if levels > MAX_LEVELS {
        return Err(EncodeError::TooLong {
            what: "the number of levels",
            len: levels,
            max: MAX_LEVELS,
        });
    }
    Ok(())
}

/// How many ops at the top (root end) of `path` equal those at the top of `above`.
fn shared_top(path: &[InnerOp], above: &[InnerOp]) -> usize {
    path.iter()
        .rev()
        .zip(above.iter().rev())
        .take_while(|(a, b)| a == b)
        .count()
}

fn put_path(out: &mut Vec<u8>, path: &[InnerOp]) -> Result<(), EncodeError> {
    let levels = path.len();
    check_levels(levels)?;
    out.extend_from_slice(&(levels as u16).to_be_bytes());
    let mut bitmap = vec![0u8; levels.div_ceil(4)];
    let mut siblings = Vec::with_capacity(levels * SIBLING_LEN);
    for (i, op) in path.iter().enumerate() {
        let (direction, sibling) = split_inner(op)?;
        let mut bits = direction;
        if sibling == PLACEHOLDER {
            bits |= PLACEHOLDER_BIT;
        } else {
            siblings.extend_from_slice(sibling);
        }
        if let Some(b) = bitmap.get_mut(i / 4) {
            *b |= bits << (2 * (i % 4));
        }
    }
    out.extend_from_slice(&bitmap);
    out.extend_from_slice(&siblings);
    Ok(())
}

/// Rebuilds the ICS23 proof of the answer `key` → `value` (`None`: absent) from its compact
/// encoding. It does not verify it: pass the result to [`crate::verify`].
pub fn expand(
    bytes: &[u8],
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<CommitmentProof, VerifyError> {
    let mut r = Reader { rest: bytes };
    let version = r.u8("the version")?;
    if version != VERSION {
        return Err(bad(format!(
            "version {version}; this verifier reads version {VERSION}"
        )));
    }
    let leaf = jmt_leaf();
    let proof = match r.u8("the kind")? {
        KIND_PRESENT => {
            let value = value.ok_or(VerifyError::WrongKind(
                "an absence needs a non-membership proof",
            ))?;
            Proof::Exist(ExistenceProof {
                key: key.to_vec(),
                value: value.to_vec(),
                leaf: Some(leaf),
                path: r.path()?,
            })
        }
        kind @ 0x01..=0x03 => {
            if value.is_some() {
                return Err(VerifyError::WrongKind("a value needs a membership proof"));
            }
            let left = match kind & HAS_LEFT {
                0 => None,
                _ => Some(r.neighbour(&leaf, None)?),
            };
            let right = match kind & HAS_RIGHT {
                0 => None,
                _ => Some(r.neighbour(&leaf, left.as_ref().map(|e| &e.path[..]))?),
            };
            Proof::Nonexist(NonExistenceProof {
                key: key.to_vec(),
                left,
                right,
            })
        }
        kind => return Err(bad(format!("unknown kind {kind:#04x}"))),
    };
    if !r.rest.is_empty() {
        return Err(bad(format!(
            "{} bytes after the end of the proof",
            r.rest.len()
        )));
    }
    Ok(CommitmentProof { proof: Some(proof) })
}

fn bad(why: String) -> VerifyError {
    VerifyError::BadProof(format!("compact proof: {why}"))
}

/// Reads the compact form front to back; every read checks the length first.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], VerifyError> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or_else(|| {
            bad(format!(
                "{what} needs {n} bytes, {} are left",
                self.rest.len()
            ))
        })?;
        self.rest = rest;
        Ok(head)
    }

    fn u8(&mut self, what: &str) -> Result<u8, VerifyError> {
        let n = self.uint(1, usize::from(u8::MAX), what)?;
        u8::try_from(n).map_err(|_| bad(format!("{what} is not a byte")))
    }

    /// A big-endian unsigned integer of `width` ≤ 8 bytes, at most `max`.
    fn uint(&mut self, width: usize, max: usize, what: &str) -> Result<usize, VerifyError> {
        let n = self
            .take(width, what)?
            .iter()
            .fold(0u64, |n, &b| (n << 8) | u64::from(b));
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| bad(format!("{what} is {n}, more than {max}")))
    }

    /// A neighbour; the right one of two (`left` = the left one's path) shares its top levels.
    fn neighbour(
        &mut self,
        leaf: &LeafOp,
        left: Option<&[InnerOp]>,
    ) -> Result<ExistenceProof, VerifyError> {
        let key_len = self.uint(2, MAX_KEY_LEN, "a neighbour key length")?;
        let key = self.take(key_len, "a neighbour key")?.to_vec();
        let value_len = self.uint(4, MAX_VALUE_LEN, "a neighbour value length")?;
        let value = self.take(value_len, "a neighbour value")?.to_vec();
        let path = match left {
            None => self.path()?,
            Some(above) => {
                let shared = self.uint(2, above.len(), "the levels shared with the left path")?;
                let mut path = self.path()?;
                let (below, top) = above.split_at(above.len() - shared);
                // One encoding per proof: the shared run is as long as the paths agree.
                if path.last().is_some() && path.last() == below.last() {
                    return Err(bad(
                        "the right path repeats a level it could share with the left path".into(),
                    ));
                }
                if path.len() + shared > MAX_LEVELS {
                    return Err(bad(format!(
                        "the right path has {} levels, more than {MAX_LEVELS}",
                        path.len() + shared
                    )));
                }
                path.extend_from_slice(top);
                path
            }
        };
        Ok(ExistenceProof {
            key,
            value,
            leaf: Some(leaf.clone()),
            path,
        })
    }

    fn path(&mut self) -> Result<Vec<InnerOp>, VerifyError> {
        let levels = self.uint(2, MAX_LEVELS, "the number of levels")?;
        let bitmap = self.take(levels.div_ceil(4), "the level bitmap")?;
        // Bits past the last level are 0: one encoding per proof.
        if let Some(&last) = bitmap.last() {
            let used = 2 * (levels - 4 * (bitmap.len() - 1));
            if used < 8 && last >> used != 0 {
                return Err(bad("bits set past the last level".into()));
            }
        }
        let mut path = Vec::with_capacity(levels);
        for i in 0..levels {
            let bits = bitmap.get(i / 4).map_or(0, |b| b >> (2 * (i % 4)));
            let sibling: &[u8] = if bits & PLACEHOLDER_BIT != 0 {
                &PLACEHOLDER
            } else {
                let s = self.take(SIBLING_LEN, "a sibling hash")?;
                if s == PLACEHOLDER {
                    return Err(bad(format!(
                        "level {i} sends the placeholder hash instead of setting its bit"
                    )));
                }
                s
            };
            let mut prefix = INTERNAL_DOMAIN_SEPARATOR.to_vec();
            let suffix = if bits & DIRECTION_LEFT != 0 {
                prefix.extend_from_slice(sibling);
                Vec::new()
            } else {
                sibling.to_vec()
            };
            path.push(InnerOp {
                hash: HashOp::Sha256 as i32,
                prefix,
                suffix,
            });
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_is_the_jmt_spec_empty_child() {
        let spec = jmt::ics23_spec();
        assert_eq!(
            spec.inner_spec.map(|s| s.empty_child),
            Some(PLACEHOLDER.to_vec())
        );
    }

    #[test]
    fn length_limits_fit_their_fields() {
        assert!(MAX_LEVELS <= usize::from(u16::MAX));
        assert!(MAX_KEY_LEN <= usize::from(u16::MAX));
        assert!(u32::try_from(MAX_VALUE_LEN).is_ok());
    }
}

//! The compact proof transport: real proofs from `medledger_state::Store::prove` encode, expand
//! back to exactly the ICS23 proof they came from and verify; tampered, truncated, padded and
//! absurd encodings are rejected with an error, never a panic.

#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

use ics23::commitment_proof::Proof;
use ics23::{CommitmentProof, ExistenceProof, HashOp, InnerOp};
use medledger_query::compact::{
    encode, expand, EncodeError, MAX_KEY_LEN, MAX_LEVELS, MAX_VALUE_LEN, VERSION,
};
use medledger_query::{
    decode_proof, verify, Proven, VerifyError, ICS23_PROOF_OP_TYPE, PROOF_OP_TYPE,
};
use medledger_state::store::{key_hash, WriteSet};
use medledger_state::Store;
use proptest::prelude::*;
use prost::Message;
use tempfile::TempDir;

/// A committed store holding `fill/{i}` → a 64-byte value for `i < n`.
struct Tree {
    store: Store,
    _dir: TempDir,
    root: [u8; 32],
    version: u64,
    n: u64,
}

fn fill_key(i: u64) -> Vec<u8> {
    format!("fill/{i}").into_bytes()
}

impl Tree {
    fn new(n: u64) -> Tree {
        let dir = TempDir::new().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let writes: WriteSet = (0..n)
            .map(|i| {
                let mut v = vec![0u8; 64];
                v[..8].copy_from_slice(&i.to_be_bytes());
                (fill_key(i), Some(v))
            })
            .collect();
        let staged = store.stage(0, &writes).unwrap();
        let root = staged.root;
        store.commit(staged).unwrap();
        Tree {
            store,
            _dir: dir,
            root,
            version: 0,
            n,
        }
    }

    fn prove(&self, key: &[u8]) -> (Option<Vec<u8>>, CommitmentProof) {
        self.store.prove(key, self.version).unwrap()
    }

    /// An absent key whose hash sorts before (`Edge::Left`), after (`Edge::Right`) or between
    /// (`Edge::Middle`) the hashes of every key in the tree.
    fn absent_key(&self, edge: Edge) -> Vec<u8> {
        let hashes: Vec<[u8; 32]> = (0..self.n).map(|i| key_hash(&fill_key(i)).0).collect();
        let min = hashes.iter().min().unwrap();
        let max = hashes.iter().max().unwrap();
        (0u64..)
            .map(|j| format!("absent/{j}").into_bytes())
            .find(|k| {
                let h = key_hash(k).0;
                match edge {
                    Edge::Left => h < *min,
                    Edge::Right => h > *max,
                    Edge::Middle => h > *min && h < *max,
                }
            })
            .unwrap()
    }
}

#[derive(Clone, Copy, Debug)]
enum Edge {
    Left,
    Right,
    Middle,
}

fn empty_child() -> Vec<u8> {
    jmt::ics23_spec().inner_spec.unwrap().empty_child
}

fn is_placeholder(op: &InnerOp) -> bool {
    let e = empty_child();
    op.suffix == e || op.prefix.ends_with(&e)
}

/// The existence proofs inside `p`.
fn paths(p: &CommitmentProof) -> Vec<&ExistenceProof> {
    match &p.proof {
        Some(Proof::Exist(e)) => vec![e],
        Some(Proof::Nonexist(n)) => [&n.left, &n.right].into_iter().flatten().collect(),
        _ => panic!("not a JMT proof"),
    }
}

/// The compact size the layout predicts: 2 header bytes; per path 2 + ceil(levels / 4) bytes and
/// 32 per non-placeholder sibling; per neighbour 6 length bytes plus its key and value; the right
/// one of two neighbours 2 more bytes and no levels for its top levels equal to the left one's.
fn predicted_len(p: &CommitmentProof) -> usize {
    let neighbours = matches!(p.proof, Some(Proof::Nonexist(_)));
    let paths = paths(p);
    let path_len = |ops: &[InnerOp]| {
        let sent = ops.iter().filter(|op| !is_placeholder(op)).count();
        2 + ops.len().div_ceil(4) + 32 * sent
    };
    let mut len = 2;
    for (i, e) in paths.iter().enumerate() {
        if neighbours {
            len += 6 + e.key.len() + e.value.len();
        }
        let own = if i == 1 {
            let shared = shared_top(&e.path, &paths[0].path);
            len += 2;
            &e.path[..e.path.len() - shared]
        } else {
            &e.path[..]
        };
        len += path_len(own);
    }
    len
}

/// Ops equal at the root end of both paths.
fn shared_top(a: &[InnerOp], b: &[InnerOp]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// Encodes, expands and verifies; asserts the round trip gives back the very same proof.
fn round_trip(tree: &Tree, key: &[u8]) -> (CommitmentProof, Vec<u8>) {
    let (value, proof) = tree.prove(key);
    let bytes = encode(&proof).unwrap();
    assert_eq!(bytes[0], VERSION);
    assert_eq!(bytes.len(), predicted_len(&proof));
    let expanded = expand(&bytes, key, value.as_deref()).unwrap();
    assert_eq!(expanded, proof, "expand(encode(p)) differs from p");
    let proven = verify(&tree.root, key, value.as_deref(), &expanded).unwrap();
    assert_eq!(
        proven,
        value.map_or(Proven::Absent, Proven::Present),
        "verified the wrong thing"
    );
    // The dispatching decoder gives the same proof from either op type.
    assert_eq!(
        decode_proof(PROOF_OP_TYPE, &bytes, key, proof_value(&proof)).unwrap(),
        proof
    );
    assert_eq!(
        decode_proof(ICS23_PROOF_OP_TYPE, &proof.encode_to_vec(), key, None).unwrap(),
        proof
    );
    (proof, bytes)
}

fn proof_value(p: &CommitmentProof) -> Option<&[u8]> {
    match &p.proof {
        Some(Proof::Exist(e)) => Some(&e.value),
        _ => None,
    }
}

#[test]
fn compact_proof_of_present_key_verifies_and_is_smaller() {
    let tree = Tree::new(5_000);
    for i in [0, 1, 2_500, 4_999] {
        let key = fill_key(i);
        let (proof, bytes) = round_trip(&tree, &key);
        let ics23 = proof.encode_to_vec().len();
        // Each sent level costs 32 bytes instead of ~56, and key and value are not repeated.
        assert!(
            bytes.len() * 3 < ics23 * 2,
            "compact {} bytes is not below 2/3 of ICS23 {ics23} bytes",
            bytes.len()
        );
    }
}

#[test]
fn compact_proof_of_absent_key_round_trips_at_both_edges_and_in_the_middle() {
    let tree = Tree::new(200);
    for edge in [Edge::Left, Edge::Right, Edge::Middle] {
        let key = tree.absent_key(edge);
        let (proof, bytes) = round_trip(&tree, &key);
        let Some(Proof::Nonexist(n)) = &proof.proof else {
            panic!("{edge:?}: not a proof of absence");
        };
        // Left edge: only a right neighbour; right edge: only a left one; middle: both.
        let expected = match edge {
            Edge::Left => (false, true),
            Edge::Right => (true, false),
            Edge::Middle => (true, true),
        };
        assert_eq!((n.left.is_some(), n.right.is_some()), expected, "{edge:?}");
        assert_eq!(
            bytes[1],
            u8::from(expected.0) | (u8::from(expected.1) << 1),
            "{edge:?}: kind byte"
        );
        assert!(bytes.len() < proof.encode_to_vec().len());
    }
}

#[test]
fn neighbours_of_an_absent_key_send_their_common_levels_once() {
    let tree = Tree::new(5_000);
    let mut shared_levels = 0;
    for j in 0..20 {
        let key = format!("absent/{j}").into_bytes();
        let (proof, bytes) = round_trip(&tree, &key);
        let Some(Proof::Nonexist(n)) = &proof.proof else {
            panic!("not a proof of absence");
        };
        let (Some(left), Some(right)) = (&n.left, &n.right) else {
            continue;
        };
        let shared = shared_top(&right.path, &left.path);
        // The leaves are adjacent: above their common ancestor the paths agree, below it not.
        assert!(shared < left.path.len() && shared < right.path.len());
        shared_levels += shared;
        assert!(bytes.len() * 2 < proof.encode_to_vec().len());
    }
    assert!(shared_levels > 0, "no two neighbours shared a level");
}

#[test]
fn placeholder_siblings_cost_no_bytes() {
    // A small tree: the 16-way JMT nodes near the leaves are mostly empty.
    let tree = Tree::new(20);
    let mut placeholders = 0;
    for i in 0..tree.n {
        let key = fill_key(i);
        let (proof, bytes) = round_trip(&tree, &key);
        let e = paths(&proof)[0];
        let p = e.path.iter().filter(|op| is_placeholder(op)).count();
        placeholders += p;
        assert_eq!(
            bytes.len(),
            2 + 2 + e.path.len().div_ceil(4) + 32 * (e.path.len() - p)
        );
    }
    assert!(
        placeholders > 0,
        "the tree has no placeholder sibling to test"
    );
}

#[test]
fn empty_path_of_a_single_key_tree_round_trips() {
    let tree = Tree::new(1);
    let (proof, bytes) = round_trip(&tree, &fill_key(0));
    assert!(paths(&proof)[0].path.is_empty());
    assert_eq!(bytes, [VERSION, 0, 0, 0]);
}

/// A present-key proof and its encoding from a 300-key tree.
fn sample() -> (Tree, Vec<u8>, Vec<u8>, Vec<u8>) {
    let tree = Tree::new(300);
    let key = fill_key(7);
    let (value, proof) = tree.prove(&key);
    let bytes = encode(&proof).unwrap();
    (tree, key, value.unwrap(), bytes)
}

fn check(
    tree: &Tree,
    bytes: &[u8],
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<Proven, VerifyError> {
    let p = expand(bytes, key, value)?;
    verify(&tree.root, key, value, &p)
}

#[test]
fn tampered_sibling_is_rejected() {
    let (tree, key, value, bytes) = sample();
    assert!(check(&tree, &bytes, &key, Some(&value)).is_ok());
    let levels = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let first_sibling = 4 + levels.div_ceil(4);
    assert!(bytes.len() >= first_sibling + 32, "no sibling is sent");
    for at in [first_sibling, bytes.len() - 1] {
        let mut t = bytes.clone();
        t[at] ^= 0x01;
        assert!(
            matches!(
                check(&tree, &t, &key, Some(&value)),
                Err(VerifyError::Mismatch { .. })
            ),
            "a tampered sibling byte {at} verified"
        );
    }
}

#[test]
fn flipped_direction_bit_is_rejected() {
    let (tree, key, value, bytes) = sample();
    let levels = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    for level in 0..levels {
        let mut t = bytes.clone();
        t[4 + level / 4] ^= 1 << (2 * (level % 4));
        assert!(
            matches!(
                check(&tree, &t, &key, Some(&value)),
                Err(VerifyError::Mismatch { .. })
            ),
            "flipping the direction of level {level} still verified"
        );
    }
}

#[test]
fn wrong_value_or_wrong_kind_is_rejected() {
    let (tree, key, value, bytes) = sample();
    let mut other = value.clone();
    other[0] ^= 1;
    assert!(matches!(
        check(&tree, &bytes, &key, Some(&other)),
        Err(VerifyError::Mismatch { .. })
    ));
    assert!(matches!(
        check(&tree, &bytes, &fill_key(8), Some(&value)),
        Err(VerifyError::Mismatch { .. })
    ));
    // A membership proof for an answer claiming absence, and the reverse.
    assert!(matches!(
        expand(&bytes, &key, None),
        Err(VerifyError::WrongKind(_))
    ));
    let absent = tree.absent_key(Edge::Middle);
    let (_, proof) = tree.prove(&absent);
    let absence = encode(&proof).unwrap();
    assert!(check(&tree, &absence, &absent, None).is_ok());
    assert!(matches!(
        expand(&absence, &absent, Some(b"x")),
        Err(VerifyError::WrongKind(_))
    ));
    // A proof of absence of one key does not prove absence of a present key.
    assert!(check(&tree, &absence, &key, None).is_err());
}

#[test]
fn truncated_or_padded_bytes_are_rejected() {
    let (_tree, key, value, bytes) = sample();
    let tree = Tree::new(200);
    let absent = tree.absent_key(Edge::Middle);
    let absence = encode(&tree.prove(&absent).1).unwrap();
    for (bytes, value, k) in [(&bytes, Some(&value[..]), &key), (&absence, None, &absent)] {
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    expand(&bytes[..len], k, value),
                    Err(VerifyError::BadProof(_))
                ),
                "a proof cut to {len} of {} bytes decoded",
                bytes.len()
            );
        }
        for extra in [&[0u8][..], &[1, 2, 3]] {
            let mut t = bytes.clone();
            t.extend_from_slice(extra);
            assert!(matches!(
                expand(&t, k, value),
                Err(VerifyError::BadProof(_))
            ));
        }
    }
}

fn bad(bytes: &[u8], value: Option<&[u8]>) {
    let r = expand(bytes, b"k", value);
    assert!(
        matches!(r, Err(VerifyError::BadProof(_))),
        "{} decoded to {r:?}",
        hex::encode(bytes)
    );
}

#[test]
fn absurd_counts_and_non_canonical_encodings_are_rejected() {
    let v = Some(&b"v"[..]);
    // Unknown version and kind.
    bad(&[0, 0, 0, 0], v);
    bad(&[2, 0, 0, 0], v);
    bad(&[VERSION, 4, 0, 0], None);
    bad(&[VERSION, 0xff, 0, 0], None);
    // Levels over the limit, claimed but not sent.
    bad(&[VERSION, 0, 0x01, 0x01], v); // 257
    bad(&[VERSION, 0, 0xff, 0xff], v);
    bad(&[VERSION, 0, 0x01, 0x00], v); // 256 levels, no bitmap
                                       // Bitmap bits past the last level (1 level uses bits 0 and 1 only).
    let mut one = vec![VERSION, 0, 0, 1, 0b0000_0100];
    one.extend_from_slice(&[7u8; 32]);
    bad(&one, v);
    one[4] = 0;
    assert!(expand(&one, b"k", v).is_ok());
    // The placeholder sent as bytes instead of as its bit.
    let mut explicit = vec![VERSION, 0, 0, 1, 0];
    explicit.extend_from_slice(b"SPARSE_MERKLE_PLACEHOLDER_HASH__");
    bad(&explicit, v);
    assert!(expand(&[VERSION, 0, 0, 1, 0b10], b"k", v).is_ok());
    // Neighbour lengths over their limits, or longer than the input.
    let key_len = u16::try_from(MAX_KEY_LEN + 1).unwrap().to_be_bytes();
    bad(&[VERSION, 1, key_len[0], key_len[1]], None);
    bad(&[VERSION, 1, 0xff, 0xff], None);
    let value_len = u32::try_from(MAX_VALUE_LEN + 1).unwrap().to_be_bytes();
    let mut n = vec![VERSION, 1, 0, 1, b'a'];
    n.extend_from_slice(&value_len);
    bad(&n, None);
    bad(&[VERSION, 1, 0, 1, b'a', 0xff, 0xff, 0xff, 0xff], None);
    bad(&[VERSION, 1, 0, 200, b'a'], None);
    bad(&[VERSION, 3, 0, 0, 0, 0, 0, 0, 0, 0], None); // the right neighbour is missing
                                                      // Both neighbours with empty keys and values: the left path has 1 level (sibling on the
                                                      // right, 0x11.. ); the right one shares `shared` of them and has `own` of its own.
    let both = |shared: u8, own: &[u8]| {
        let mut b = vec![VERSION, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        b.extend_from_slice(&[0x11; 32]);
        b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, shared]);
        b.extend_from_slice(own);
        b
    };
    let mut own_left = vec![0, 1, 0b01];
    own_left.extend_from_slice(&[0x22; 32]);
    assert!(expand(&both(0, &own_left), b"k", None).is_ok());
    let mut own_right = vec![0, 1, 0];
    own_right.extend_from_slice(&[0x22; 32]);
    assert!(expand(&both(1, &own_right), b"k", None).is_ok());
    // More shared levels than the left path has.
    bad(&both(2, &own_right), None);
    // The right path's own top level equals the left's: it should have been shared.
    let mut same = vec![0, 1, 0];
    same.extend_from_slice(&[0x11; 32]);
    bad(&both(0, &same), None);
    // 256 levels of its own plus 1 shared is one too many.
    let mut deep = vec![1, 0];
    deep.extend_from_slice(&[0b1010_1010; 64]);
    bad(&both(1, &deep), None);
    assert!(expand(&both(0, &deep), b"k", None).is_ok());
}

fn synthetic(levels: usize) -> CommitmentProof {
    let tag = jmt::proof::INTERNAL_DOMAIN_SEPARATOR;
    let path = (0..levels)
        .map(|i| {
            let sibling = [u8::try_from(i % 251).unwrap() + 1; 32];
            let (prefix, suffix) = if i % 2 == 0 {
                ([tag, &sibling].concat(), Vec::new())
            } else {
                (tag.to_vec(), sibling.to_vec())
            };
            InnerOp {
                hash: HashOp::Sha256 as i32,
                prefix,
                suffix,
            }
        })
        .collect();
    CommitmentProof {
        proof: Some(Proof::Exist(ExistenceProof {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            leaf: jmt::ics23_spec().leaf_spec,
            path,
        })),
    }
}

fn exist_mut(p: &mut CommitmentProof) -> &mut ExistenceProof {
    match &mut p.proof {
        Some(Proof::Exist(e)) => e,
        _ => panic!("not an existence proof"),
    }
}

#[test]
fn the_deepest_path_round_trips_and_one_level_more_is_refused() {
    let p = synthetic(MAX_LEVELS);
    let bytes = encode(&p).unwrap();
    assert_eq!(expand(&bytes, b"k", Some(b"v")).unwrap(), p);
    assert!(matches!(
        encode(&synthetic(MAX_LEVELS + 1)),
        Err(EncodeError::TooLong { .. })
    ));
}

#[test]
fn encode_refuses_proofs_not_of_the_jmt_shape() {
    let shape = |p: &CommitmentProof| matches!(encode(p), Err(EncodeError::Shape(_)));
    let good = synthetic(3);
    assert!(encode(&good).is_ok());

    let mut p = good.clone();
    exist_mut(&mut p).leaf.as_mut().unwrap().prefix = b"other".to_vec();
    assert!(shape(&p), "another leaf prefix");
    let mut p = good.clone();
    exist_mut(&mut p).leaf = None;
    assert!(shape(&p), "no leaf op");
    let mut p = good.clone();
    exist_mut(&mut p).path[1].hash = HashOp::Sha512 as i32;
    assert!(shape(&p), "another inner hash");
    let mut p = good.clone();
    exist_mut(&mut p).path[0].prefix[0] ^= 1;
    assert!(shape(&p), "no internal-node tag");
    let mut p = good.clone();
    exist_mut(&mut p).path[1].suffix.pop();
    assert!(shape(&p), "a 31-byte sibling");
    let mut p = good.clone();
    exist_mut(&mut p).path[0].suffix = vec![0; 32];
    assert!(shape(&p), "a sibling on both sides");
    assert!(shape(&CommitmentProof { proof: None }));
    assert!(shape(&CommitmentProof {
        proof: Some(Proof::Nonexist(ics23::NonExistenceProof {
            key: b"k".to_vec(),
            left: None,
            right: None,
        }))
    }));
    assert!(shape(&CommitmentProof {
        proof: Some(Proof::Batch(ics23::BatchProof { entries: vec![] }))
    }));

    let neighbour = |key_len: usize, value_len: usize| {
        let mut e = exist_mut(&mut good.clone()).clone();
        e.key = vec![b'k'; key_len];
        e.value = vec![b'v'; value_len];
        CommitmentProof {
            proof: Some(Proof::Nonexist(ics23::NonExistenceProof {
                key: b"a".to_vec(),
                left: Some(e),
                right: None,
            })),
        }
    };
    let at_limit = neighbour(MAX_KEY_LEN, MAX_VALUE_LEN);
    let bytes = encode(&at_limit).unwrap();
    assert_eq!(expand(&bytes, b"a", None).unwrap(), at_limit);
    assert!(matches!(
        encode(&neighbour(MAX_KEY_LEN + 1, 1)),
        Err(EncodeError::TooLong { .. })
    ));
    assert!(matches!(
        encode(&neighbour(1, MAX_VALUE_LEN + 1)),
        Err(EncodeError::TooLong { .. })
    ));
}

#[test]
fn unknown_proof_op_type_is_rejected() {
    let (_tree, key, value, bytes) = sample();
    assert!(matches!(
        decode_proof("ics23:iavl", &bytes, &key, Some(&value)),
        Err(VerifyError::UnknownProofType(t)) if t == "ics23:iavl"
    ));
    let long = "x".repeat(10_000);
    assert!(matches!(
        decode_proof(&long, &bytes, &key, Some(&value)),
        Err(VerifyError::UnknownProofType(t)) if t.len() == 64
    ));
    // The compact bytes are not a protobuf proof of the old type (or not a valid one).
    let old = decode_proof(ICS23_PROOF_OP_TYPE, &bytes, &key, Some(&value));
    assert!(old.is_err() || old.unwrap() != expand(&bytes, &key, Some(&value)).unwrap());
}

/// The wire format is pinned: a change of layout must be a deliberate act (a new version).
#[test]
fn compact_encoding_of_a_fixed_tree_is_pinned() {
    let tree = Tree::new(3);
    let (_, present) = round_trip(&tree, &fill_key(1));
    let (_, absent) = round_trip(&tree, b"absent/0");
    assert_eq!(hex::encode(present), GOLDEN_PRESENT);
    assert_eq!(hex::encode(absent), GOLDEN_ABSENT);
}

/// `fill/1` in the tree `fill/0..3`: version 1, kind present, 3 levels, bitmap 0x20 (level 2's
/// sibling is the placeholder; every sibling on the right), two 32-byte siblings.
const GOLDEN_PRESENT: &str = concat!(
    "0100000320528918e5bd88719662283f14b7f5f9992749e6fb7118511a64facd",
    "951bcfcf77ecb0038218ab777dfb085a231d6007ab144596850681cbc64abc7f",
    "dedffea052",
);

/// `absent/0`: kind 3 (both neighbours), then `fill/0` with its 64-byte value and 3-level path,
/// and `fill/2` with its value, 1 level shared with `fill/0`'s path (the top one) and 1 of its own.
const GOLDEN_ABSENT: &str = concat!(
    "0103000666696c6c2f3000000040000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000321c1bbc834a548554e409ed61e0aa847",
    "b1a972442df4bd67eb09121713de5fe3acecb0038218ab777dfb085a231d6007",
    "ab144596850681cbc64abc7fdedffea052000666696c6c2f3200000040000000",
    "0000000002000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000100",
    "01017f1159350099862e31ad3b3385b7c4e14423fff7a6fed1e9b502293f1559",
    "42c1",
);

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, .. ProptestConfig::default() })]

    /// Random bytes never panic; any bytes accepted are the one encoding of the proof they give.
    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        kind in 0u8..4,
        present in any::<bool>(),
    ) {
        let mut bytes = bytes;
        // Mostly well-formed headers, so the fuzzing reaches the paths.
        if bytes.len() >= 2 && present {
            bytes[0] = VERSION;
            bytes[1] = kind;
        }
        let value = if kind == 0 { Some(&b"v"[..]) } else { None };
        if let Ok(p) = expand(&bytes, b"k", value) {
            prop_assert_eq!(encode(&p).unwrap(), bytes);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// No single flipped bit of a real proof (present or absent) still verifies.
    #[test]
    fn no_single_bit_flip_verifies(seed in 0u64..200, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        thread_local! {
            static TREE: Tree = Tree::new(200);
        }
        TREE.with(|tree| {
            let present = seed % 2 == 0;
            let key = if present { fill_key(seed) } else { format!("absent/{seed}").into_bytes() };
            let (value, proof) = tree.prove(&key);
            let mut bytes = encode(&proof).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= 1 << bit;
            let r = expand(&bytes, &key, value.as_deref())
                .and_then(|p| verify(&tree.root, &key, value.as_deref(), &p));
            prop_assert!(r.is_err(), "flipping bit {} of byte {} still verified", bit, i);
            Ok(())
        })?;
    }
}

//! List digests: one proven value that makes a whole list checkable.
//!
//! A patient's access history, consents, records and refused access attempts are append-only
//! lists ([`List`]): a count and numbered entries. Proving the complete list entry by entry costs
//! one proof per entry (about 0.75 KB each, so ~750 KB for 1,000 access events). Each of these
//! four lists also keeps a digest, written by the same append as the entry:
//!
//! ```text
//! digest  = count:u64 (big-endian) ‖ head:32 bytes                      (40 bytes)
//! head₀   = 32 zero bytes                                                (the empty list)
//! headₙ₊₁ = SHA-256("medledger/list-digest/v1" ‖ headₙ ‖ n:u64 (big-endian) ‖ SHA-256(leafₙ))
//! ```
//!
//! where `leafₙ` is entry `n`'s value as stored, except for an access event: its value with the
//! fields a break-glass review changes later (`review` 14, `reviewer` 15, `review_note_hash` 18)
//! and those a patient's report and its review write later (`reported_height` 19,
//! `report_reason` 20, `report_review` 21, `report_reviewer` 22, `report_note_hash` 23)
//! cleared, i.e. the canonical protobuf encoding of the event with those eight fields at their
//! defaults (equivalently, the stored bytes with those eight top-level fields removed). So the
//! chain never changes once written, and a review or a report is proven by its event's own
//! proof.
//!
//! A verifier holding one proof of the digest and the `count` entry values (read without proofs)
//! recomputes the head and compares: a missing, extra, reordered or altered entry changes it.
//! SHA-256 is collision resistant, so a node cannot find other entries with the same head.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::keys::List;
use crate::pb::AccessEvent;

/// The domain tag of every chain step.
pub const TAG: &[u8] = b"medledger/list-digest/v1";
/// Length of a digest value: the count and the head.
pub const LEN: usize = 40;

/// A list's digest: how many entries, and the head of the hash chain over them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListDigest {
    /// The number of entries.
    pub count: u64,
    /// The head of the chain ([`ListDigest::EMPTY`]'s head is 32 zero bytes).
    pub head: [u8; 32],
}

impl ListDigest {
    /// The digest of an empty list (an absent digest key means this).
    pub const EMPTY: ListDigest = ListDigest {
        count: 0,
        head: [0; 32],
    };

    /// The stored form: `count` (u64 big-endian) then `head`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEN);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.head);
        out
    }

    /// Decodes a stored digest; `None` unless it is exactly [`LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Option<ListDigest> {
        if bytes.len() != LEN {
            return None;
        }
        let (count, head) = bytes.split_at(8);
        Some(ListDigest {
            count: u64::from_be_bytes(count.try_into().ok()?),
            head: head.try_into().ok()?,
        })
    }

    /// The digest after appending `value` (entry number `self.count`) to `list`. `None` when the
    /// value of an access event does not decode (the ledger never stores one that does not).
    pub fn push(&self, list: &List<'_>, value: &[u8]) -> Option<ListDigest> {
        let leaf = leaf_hash(list, value)?;
        let mut h = Sha256::new();
        h.update(TAG);
        h.update(self.head);
        h.update(self.count.to_be_bytes());
        h.update(leaf);
        Some(ListDigest {
            count: self.count.checked_add(1)?,
            head: h.finalize().into(),
        })
    }

    /// The digest of `values`, in order, as entries 0, 1, … of `list`.
    pub fn of<'v>(
        list: &List<'_>,
        values: impl IntoIterator<Item = &'v [u8]>,
    ) -> Option<ListDigest> {
        values
            .into_iter()
            .try_fold(ListDigest::EMPTY, |d, v| d.push(list, v))
    }
}

/// SHA-256 of the part of an entry the chain covers (see the module documentation).
pub fn leaf_hash(list: &List<'_>, value: &[u8]) -> Option<[u8; 32]> {
    match list {
        List::Access(_) => {
            let mut event = AccessEvent::decode(value).ok()?;
            event.review = 0;
            event.reviewer.clear();
            event.review_note_hash.clear();
            event.reported_height = 0;
            event.report_reason = 0;
            event.report_review = 0;
            event.report_reviewer.clear();
            event.report_note_hash.clear();
            Some(Sha256::digest(event.encode_to_vec()).into())
        }
        _ => Some(Sha256::digest(value).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::ReviewStatus;

    fn event(i: u64) -> AccessEvent {
        AccessEvent {
            patient_id: "pt-1".into(),
            index: i,
            actor: "hospital-a".into(),
            break_glass: i == 1,
            review: if i == 1 {
                ReviewStatus::Pending as i32
            } else {
                0
            },
            ..Default::default()
        }
    }

    #[test]
    fn the_chain_covers_order_count_and_content() {
        let list = List::Access("pt-1");
        let values: Vec<Vec<u8>> = (0..3).map(|i| event(i).encode_to_vec()).collect();
        let d = ListDigest::of(&list, values.iter().map(Vec::as_slice)).unwrap();
        assert_eq!(d.count, 3);
        assert_eq!(ListDigest::decode(&d.encode()), Some(d));
        // One missing, swapped or altered entry changes the head.
        let fewer = ListDigest::of(&list, values[..2].iter().map(Vec::as_slice)).unwrap();
        assert_ne!(fewer.head, d.head);
        let swapped = [&values[1], &values[0], &values[2]];
        let s = ListDigest::of(&list, swapped.iter().map(|v| v.as_slice())).unwrap();
        assert_ne!(s.head, d.head);
        let mut altered = values.clone();
        let mut e = event(2);
        e.actor = "lab-b".into();
        altered[2] = e.encode_to_vec();
        let a = ListDigest::of(&list, altered.iter().map(Vec::as_slice)).unwrap();
        assert_ne!(a.head, d.head);
    }

    #[test]
    fn a_review_does_not_change_the_chain_but_other_fields_do() {
        let list = List::Access("pt-1");
        let logged = event(1).encode_to_vec();
        let mut reviewed = event(1);
        reviewed.review = ReviewStatus::Justified as i32;
        reviewed.reviewer = "did:medledger:00ff".into();
        reviewed.review_note_hash = vec![7; 32];
        reviewed.reported_height = 9;
        reviewed.report_reason = 2;
        reviewed.report_review = ReviewStatus::Unjustified as i32;
        reviewed.report_reviewer = "did:medledger:00ee".into();
        reviewed.report_note_hash = vec![8; 32];
        assert_eq!(
            leaf_hash(&list, &logged),
            leaf_hash(&list, &reviewed.encode_to_vec())
        );
        // The same bytes in a list of ids are hashed as they are.
        assert_ne!(
            leaf_hash(&list, &logged),
            leaf_hash(&List::PatientRecords("pt-1"), &logged)
        );
        assert_eq!(leaf_hash(&list, b"\xff not an event"), None);
    }

    #[test]
    fn bad_lengths_do_not_decode() {
        assert_eq!(ListDigest::decode(&[0; 39]), None);
        assert_eq!(ListDigest::decode(&[0; 41]), None);
        assert_eq!(ListDigest::decode(&[0; 40]), Some(ListDigest::EMPTY));
    }

    /// A fixed vector, so verifiers in other languages can check their chain (docs/queries.md).
    #[test]
    fn the_chain_of_two_record_ids_is_fixed() {
        let list = List::PatientRecords("pt-1");
        let d = ListDigest::of(&list, [&b"lab-1"[..], &b"lab-2"[..]]).unwrap();
        assert_eq!(d.count, 2);
        assert_eq!(hex::encode(d.head), VECTOR_HEAD);
    }

    const VECTOR_HEAD: &str = "b7ff346e2ba7ea28da28e6f3a3cfdb3765e09b6eae8f6c7f6a6046ded106c46d";
}

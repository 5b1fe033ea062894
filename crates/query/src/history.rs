//! Completeness of a patient's access history.
//!
//! The ledger keeps `access/{patient}/count` and one `access/{patient}/{n}` per event, written
//! together by the same transaction. An answer "these are all the accesses to P" is complete when
//! the count is proven and every index below it is proven, all against one app hash: a node that
//! leaves an event out cannot make the count smaller without its proof failing.
//!
//! The whole history also verifies with ONE proof: `access/{patient}/digest` holds the count and
//! the head of a hash chain over the events ([`medledger_tx::digest`]). With it the events travel
//! without proofs ([`verify_access_digest`]); only a break-glass event, whose review a privacy
//! officer writes later (outside the chain), brings its own proof.

use medledger_tx::digest::ListDigest;
use medledger_tx::keys::{self, List};
use medledger_tx::pb::AccessEvent;
use prost::Message;

use crate::{verify, Proven, VerifyError};

/// One proven read: the key, the value (or none) and its ICS23 proof.
#[derive(Clone, Debug)]
pub struct ProvenRead {
    /// The state key.
    pub key: Vec<u8>,
    /// The value, or `None` when the answer claims absence.
    pub value: Option<Vec<u8>>,
    /// The proof.
    pub proof: ics23::CommitmentProof,
}

/// Why a history was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HistoryError {
    /// A proof failed.
    #[error("{what}: {source}")]
    Proof {
        /// Which read.
        what: String,
        /// Why.
        source: VerifyError,
    },
    /// The answer is not the complete list the count demands.
    #[error("incomplete history: {0}")]
    Incomplete(String),
    /// A value does not decode.
    #[error("event {0} does not decode")]
    Decode(u64),
}

/// Verifies a patient's complete access history against `app_hash`: `count` must prove the
/// number of events (absent = 0), and `events` must be exactly the reads of indices
/// `0..count`, in order. Returns the decoded events.
pub fn verify_access_history(
    app_hash: &[u8],
    patient: &str,
    count: &ProvenRead,
    events: &[ProvenRead],
) -> Result<Vec<AccessEvent>, HistoryError> {
    let (n, out) = verify_access_page(app_hash, patient, count, 0, events)?;
    if out.len() as u64 != n {
        return Err(HistoryError::Incomplete(format!(
            "the ledger proves {n} events; the answer has {}",
            out.len()
        )));
    }
    Ok(out)
}

/// Verifies one page of a patient's access history against `app_hash`: `count` proves the
/// number of events `n` (absent = 0), and `events` must be the reads of the contiguous indices
/// `offset, offset + 1, …`, in order, none at or past `n`. Returns `n` and the decoded events.
/// Pages of `offset = 0, k, 2k, …` whose lengths add up to `n`, all against one app hash, are
/// the complete history.
pub fn verify_access_page(
    app_hash: &[u8],
    patient: &str,
    count: &ProvenRead,
    offset: u64,
    events: &[ProvenRead],
) -> Result<(u64, Vec<AccessEvent>), HistoryError> {
    let count_key = keys::access_count(patient);
    if count.key != count_key {
        return Err(HistoryError::Incomplete(
            "the count read is for another key".into(),
        ));
    }
    let n = match verify(app_hash, &count_key, count.value.as_deref(), &count.proof).map_err(
        |source| HistoryError::Proof {
            what: "event count".into(),
            source,
        },
    )? {
        Proven::Absent => 0,
        Proven::Present(v) => keys::decode_u64(&v)
            .ok_or_else(|| HistoryError::Incomplete("count is not 8 bytes".into()))?,
    };
    if offset.saturating_add(events.len() as u64) > n {
        return Err(HistoryError::Incomplete(format!(
            "the ledger proves {n} events; the answer has events up to index {}",
            offset.saturating_add(events.len() as u64)
        )));
    }
    let mut out = Vec::with_capacity(events.len());
    for (i, read) in (offset..).zip(events) {
        let key = keys::access_event(patient, i);
        if read.key != key {
            return Err(HistoryError::Incomplete(format!(
                "read {i} is not event {i}"
            )));
        }
        let value = read
            .value
            .as_deref()
            .ok_or_else(|| HistoryError::Incomplete(format!("event {i} is missing")))?;
        verify(app_hash, &key, Some(value), &read.proof).map_err(|source| HistoryError::Proof {
            what: format!("event {i}"),
            source,
        })?;
        let event = AccessEvent::decode(value).map_err(|_| HistoryError::Decode(i))?;
        if event.index != i || event.patient_id != patient {
            return Err(HistoryError::Incomplete(format!(
                "event {i} names another index or patient"
            )));
        }
        out.push(event);
    }
    Ok((n, out))
}

/// Verifies a whole list against `app_hash` with one proof: `digest` is the proven read of the
/// list's digest key, `values` every entry's value in order (read without proofs). Returns the
/// number of entries. Fails when the list keeps no digest, the digest is absent while the list is
/// not empty (a list older than digests: verify it entry by entry), or the values do not chain to
/// the proven head.
pub fn verify_list_digest(
    app_hash: &[u8],
    list: &List<'_>,
    digest: &ProvenRead,
    values: &[Vec<u8>],
) -> Result<u64, HistoryError> {
    let key = list
        .digest_key()
        .ok_or_else(|| HistoryError::Incomplete("this list keeps no digest".into()))?;
    if digest.key != key {
        return Err(HistoryError::Incomplete(
            "the digest read is for another key".into(),
        ));
    }
    let proven =
        match verify(app_hash, &key, digest.value.as_deref(), &digest.proof).map_err(|source| {
            HistoryError::Proof {
                what: "list digest".into(),
                source,
            }
        })? {
            Proven::Absent => ListDigest::EMPTY,
            Proven::Present(v) => ListDigest::decode(&v)
                .ok_or_else(|| HistoryError::Incomplete("the digest is not 40 bytes".into()))?,
        };
    if values.len() as u64 != proven.count {
        return Err(HistoryError::Incomplete(format!(
            "the ledger proves {} entries; the answer has {}",
            proven.count,
            values.len()
        )));
    }
    let mut chain = ListDigest::EMPTY;
    for (i, v) in (0u64..).zip(values) {
        chain = chain.push(list, v).ok_or(HistoryError::Decode(i))?;
    }
    if chain != proven {
        return Err(HistoryError::Incomplete(
            "the entries do not chain to the proven digest: one is missing, added, reordered or altered"
                .into(),
        ));
    }
    Ok(proven.count)
}

/// Verifies a patient's complete access history against `app_hash` with one proof of its digest
/// ([`verify_list_digest`]) and the events' values, read without proofs. A break-glass event's
/// review (`review`, `reviewer`, `review_note_hash`) and a patient's report with its review
/// (`reported_height`, `report_reason`, `report_review`, `report_reviewer`, `report_note_hash`)
/// are written after the event and are not in the chain: every break-glass event, and every
/// event whose value says it was reported, must also come in `reviews`, a proven read of its
/// key, and those fields are taken from there; on any other event they are cleared. (So a node
/// can hide that an event was reported by sending its value without the report; only a proven
/// read of the event's key shows that it was not.) Returns the decoded events.
pub fn verify_access_digest(
    app_hash: &[u8],
    patient: &str,
    digest: &ProvenRead,
    values: &[Vec<u8>],
    reviews: &[ProvenRead],
) -> Result<Vec<AccessEvent>, HistoryError> {
    verify_list_digest(app_hash, &List::Access(patient), digest, values)?;
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in (0u64..).zip(values) {
        let mut event = AccessEvent::decode(v.as_slice()).map_err(|_| HistoryError::Decode(i))?;
        if event.index != i || event.patient_id != patient {
            return Err(HistoryError::Incomplete(format!(
                "event {i} names another index or patient"
            )));
        }
        let reported = event.reported_height != 0;
        event.reported_height = 0;
        event.report_reason = 0;
        event.report_review = 0;
        event.report_reviewer.clear();
        event.report_note_hash.clear();
        if event.break_glass || reported {
            let key = keys::access_event(patient, i);
            let read = reviews.iter().find(|r| r.key == key).ok_or_else(|| {
                HistoryError::Incomplete(format!(
                    "break-glass or reported event {i} comes without the proof of its review"
                ))
            })?;
            let value = read
                .value
                .as_deref()
                .ok_or_else(|| HistoryError::Incomplete(format!("event {i} is proven absent")))?;
            verify(app_hash, &key, Some(value), &read.proof).map_err(|source| {
                HistoryError::Proof {
                    what: format!("event {i}"),
                    source,
                }
            })?;
            let proven = AccessEvent::decode(value).map_err(|_| HistoryError::Decode(i))?;
            event.review = proven.review;
            event.reviewer = proven.reviewer;
            event.review_note_hash = proven.review_note_hash;
            event.reported_height = proven.reported_height;
            event.report_reason = proven.report_reason;
            event.report_review = proven.report_review;
            event.report_reviewer = proven.report_reviewer;
            event.report_note_hash = proven.report_note_hash;
        }
        out.push(event);
    }
    Ok(out)
}

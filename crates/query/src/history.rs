//! Completeness of a patient's access history.
//!
//! The ledger keeps `access/{patient}/count` and one `access/{patient}/{n}` per event, written
//! together by the same transaction. An answer "these are all the accesses to P" is complete when
//! the count is proven and every index below it is proven, all against one app hash: a node that
//! leaves an event out cannot make the count smaller without its proof failing.

use medledger_tx::keys;
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

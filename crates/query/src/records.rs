//! Where a proven record anchor stands (docs/rules.md, "Record anchors and erasure"): the record
//! exists, its erasure is *requested* (EraseRecord committed, the custodian has not yet confirmed
//! that its gateway destroyed the key), or its erasure is *complete* (ConfirmErasure committed).
//! Pure, so every verifier prints the same verdict from the same anchor.

use std::fmt;

use medledger_tx::pb::RecordAnchor;

/// A record anchor's erasure state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureState<'a> {
    /// Anchored and not erased.
    Exists,
    /// Erased at `height` by `by` (the patient, the custodian member or its practitioner); the
    /// `custodian` has not yet confirmed that the key is destroyed.
    Requested {
        /// The EraseRecord's height.
        height: u64,
        /// Who requested the erasure.
        by: &'a str,
        /// The member that holds the key and has yet to confirm.
        custodian: &'a str,
    },
    /// Erased at `height` by `by`; the custodian confirmed the key destroyed at
    /// `confirmed_height` (`confirmed_by`: the member id or its practitioner's DID).
    Complete {
        /// The EraseRecord's height.
        height: u64,
        /// Who requested the erasure.
        by: &'a str,
        /// The ConfirmErasure's height.
        confirmed_height: u64,
        /// Who confirmed it.
        confirmed_by: &'a str,
    },
}

/// The erasure state of `anchor`.
pub fn erasure_state(anchor: &RecordAnchor) -> ErasureState<'_> {
    if anchor.erased_height == 0 {
        return ErasureState::Exists;
    }
    if anchor.erasure_confirmed_height == 0 {
        return ErasureState::Requested {
            height: anchor.erased_height,
            by: &anchor.erased_by,
            custodian: &anchor.custodian,
        };
    }
    ErasureState::Complete {
        height: anchor.erased_height,
        by: &anchor.erased_by,
        confirmed_height: anchor.erasure_confirmed_height,
        confirmed_by: &anchor.erasure_confirmed_by,
    }
}

/// `EXISTS`; `ERASURE REQUESTED at height H by X, key destruction not yet confirmed by
/// CUSTODIAN`; or `ERASURE COMPLETE, requested at height H by X, key destruction confirmed at
/// height H2 by Y`.
impl fmt::Display for ErasureState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErasureState::Exists => write!(f, "EXISTS"),
            ErasureState::Requested {
                height,
                by,
                custodian,
            } => write!(
                f,
                "ERASURE REQUESTED at height {height} by {by}, key destruction not yet \
                 confirmed by {custodian}"
            ),
            ErasureState::Complete {
                height,
                by,
                confirmed_height,
                confirmed_by,
            } => write!(
                f,
                "ERASURE COMPLETE, requested at height {height} by {by}, key destruction \
                 confirmed at height {confirmed_height} by {confirmed_by}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_erasure_is_requested_until_the_custodian_confirms_it() {
        let mut a = RecordAnchor {
            record_id: "obs-1".into(),
            custodian: "lab-b".into(),
            ..Default::default()
        };
        assert_eq!(erasure_state(&a).to_string(), "EXISTS");
        a.erased_height = 12;
        a.erased_by = "pt-1".into();
        assert_eq!(
            erasure_state(&a).to_string(),
            "ERASURE REQUESTED at height 12 by pt-1, key destruction not yet confirmed by lab-b"
        );
        a.erasure_confirmed_height = 14;
        a.erasure_confirmed_by = "lab-b".into();
        assert_eq!(
            erasure_state(&a),
            ErasureState::Complete {
                height: 12,
                by: "pt-1",
                confirmed_height: 14,
                confirmed_by: "lab-b"
            }
        );
        assert_eq!(
            erasure_state(&a).to_string(),
            "ERASURE COMPLETE, requested at height 12 by pt-1, key destruction confirmed at \
             height 14 by lab-b"
        );
    }
}

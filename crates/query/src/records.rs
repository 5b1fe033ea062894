//! Where a proven record anchor stands (docs/rules.md, "Record anchors and erasure"): the record
//! exists, its erasure is *requested* (EraseRecord committed, the custodian, or too few of the
//! record's share holders, have yet to confirm that their gateways destroyed the key), or its
//! erasure is *complete* (enough ConfirmErasure committed).
//! Pure, so every verifier prints the same verdict from the same anchor.

use std::fmt;

use medledger_tx::pb::RecordAnchor;
use medledger_tx::rules::custody;

/// A record anchor's erasure state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErasureState<'a> {
    /// Anchored and not erased.
    Exists,
    /// Erased at `height` by `by` (the patient, the custodian member or its practitioner); too
    /// few of those that hold the key have confirmed its destruction.
    Requested {
        /// The EraseRecord's height.
        height: u64,
        /// Who requested the erasure.
        by: &'a str,
        /// Who has yet to confirm: the custodian of a single-custodian record, else the holders
        /// that have not confirmed the destruction of their share, in holder order.
        waiting_on: Vec<&'a str>,
        /// Of a record with holders: how many confirmed, and how many must
        /// ([`medledger_tx::rules::custody::confirmations_needed`]). `None` for one custodian.
        shares: Option<Shares>,
    },
    /// Erased at `height` by `by`; the key is destroyed as far as the ledger can tell: the
    /// custodian confirmed, or enough holders did that fewer than the threshold of shares can
    /// remain (`confirmed_height`: the confirmation that made it so, by `confirmed_by`).
    Complete {
        /// The EraseRecord's height.
        height: u64,
        /// Who requested the erasure.
        by: &'a str,
        /// The height of the confirmation that completed the erasure.
        confirmed_height: u64,
        /// Who confirmed it (the member id or its practitioner's DID).
        confirmed_by: &'a str,
        /// Holders that have still not confirmed (their shares alone cannot rebuild the key).
        unconfirmed: Vec<&'a str>,
        /// As in `Requested`.
        shares: Option<Shares>,
    },
}

/// How far the share holders of a threshold record are with its erasure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shares {
    /// Holders that confirmed the destruction of their share.
    pub confirmed: usize,
    /// Confirmations that complete the erasure (`holders - threshold + 1`).
    pub needed: usize,
    /// How many hold a share.
    pub holders: usize,
    /// How many shares rebuild the key.
    pub threshold: u32,
}

/// The erasure state of `anchor`.
pub fn erasure_state(anchor: &RecordAnchor) -> ErasureState<'_> {
    if anchor.erased_height == 0 {
        return ErasureState::Exists;
    }
    let unconfirmed = custody::unconfirmed_holders(anchor);
    let shares = (!anchor.holders.is_empty()).then(|| Shares {
        confirmed: anchor.holders.len() - unconfirmed.len(),
        needed: custody::confirmations_needed(
            anchor.holders.len(),
            usize::try_from(anchor.threshold).unwrap_or(usize::MAX),
        ),
        holders: anchor.holders.len(),
        threshold: anchor.threshold,
    });
    if anchor.erasure_confirmed_height == 0 {
        let waiting_on = if anchor.holders.is_empty() {
            vec![anchor.custodian.as_str()]
        } else {
            unconfirmed
        };
        return ErasureState::Requested {
            height: anchor.erased_height,
            by: &anchor.erased_by,
            waiting_on,
            shares,
        };
    }
    ErasureState::Complete {
        height: anchor.erased_height,
        by: &anchor.erased_by,
        confirmed_height: anchor.erasure_confirmed_height,
        confirmed_by: &anchor.erasure_confirmed_by,
        unconfirmed,
        shares,
    }
}

/// `EXISTS`; `ERASURE REQUESTED at height H by X, key destruction not yet confirmed by
/// CUSTODIAN`; or `ERASURE COMPLETE, requested at height H by X, key destruction confirmed at
/// height H2 by Y`. A record with share holders says how many confirmed of how many needed, and
/// names the holders that have not.
impl fmt::Display for ErasureState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErasureState::Exists => write!(f, "EXISTS"),
            ErasureState::Requested {
                height,
                by,
                waiting_on,
                shares: None,
            } => write!(
                f,
                "ERASURE REQUESTED at height {height} by {by}, key destruction not yet \
                 confirmed by {}",
                waiting_on.join(", ")
            ),
            ErasureState::Requested {
                height,
                by,
                waiting_on,
                shares: Some(s),
            } => write!(
                f,
                "ERASURE REQUESTED at height {height} by {by}, share destruction confirmed by \
                 {} of the {} holders needed ({} hold shares, {} rebuild the key); not yet \
                 confirmed by {}",
                s.confirmed,
                s.needed,
                s.holders,
                s.threshold,
                waiting_on.join(", ")
            ),
            ErasureState::Complete {
                height,
                by,
                confirmed_height,
                confirmed_by,
                unconfirmed,
                shares,
            } => {
                write!(
                    f,
                    "ERASURE COMPLETE, requested at height {height} by {by}, key destruction \
                     confirmed at height {confirmed_height} by {confirmed_by}"
                )?;
                match shares {
                    Some(s) if !unconfirmed.is_empty() => write!(
                        f,
                        " ({} of {} holders confirmed: fewer than {} shares can remain; not \
                         yet confirmed by {})",
                        s.confirmed,
                        s.holders,
                        s.threshold,
                        unconfirmed.join(", ")
                    ),
                    Some(s) => write!(f, " (all {} holders confirmed)", s.holders),
                    None => Ok(()),
                }
            }
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
                confirmed_by: "lab-b",
                unconfirmed: vec![],
                shares: None,
            }
        );
        assert_eq!(
            erasure_state(&a).to_string(),
            "ERASURE COMPLETE, requested at height 12 by pt-1, key destruction confirmed at \
             height 14 by lab-b"
        );
    }

    #[test]
    fn a_threshold_record_names_the_holders_that_have_not_confirmed() {
        let mut a = RecordAnchor {
            record_id: "obs-t".into(),
            custodian: "lab-b".into(),
            holders: vec!["lab-b".into(), "hospital-a".into(), "hospital-d".into()],
            threshold: 2,
            erased_height: 20,
            erased_by: "pt-1".into(),
            ..Default::default()
        };
        assert_eq!(
            erasure_state(&a).to_string(),
            "ERASURE REQUESTED at height 20 by pt-1, share destruction confirmed by 0 of the 2 \
             holders needed (3 hold shares, 2 rebuild the key); not yet confirmed by lab-b, \
             hospital-a, hospital-d"
        );
        // A confirmation by someone who holds no share counts for nothing.
        a.erasure_confirmations = vec!["hospital-d".into(), "insurer-c".into()];
        assert_eq!(
            erasure_state(&a).to_string(),
            "ERASURE REQUESTED at height 20 by pt-1, share destruction confirmed by 1 of the 2 \
             holders needed (3 hold shares, 2 rebuild the key); not yet confirmed by lab-b, \
             hospital-a"
        );
        a.erasure_confirmations.push("lab-b".into());
        a.erasure_confirmed_height = 23;
        a.erasure_confirmed_by = "lab-b".into();
        assert_eq!(
            erasure_state(&a).to_string(),
            "ERASURE COMPLETE, requested at height 20 by pt-1, key destruction confirmed at \
             height 23 by lab-b (2 of 3 holders confirmed: fewer than 2 shares can remain; not \
             yet confirmed by hospital-a)"
        );
        a.erasure_confirmations.push("hospital-a".into());
        assert!(
            erasure_state(&a)
                .to_string()
                .ends_with("(all 3 holders confirmed)"),
            "{}",
            erasure_state(&a)
        );
    }
}

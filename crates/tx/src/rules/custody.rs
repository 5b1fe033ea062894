//! Threshold custody (docs/rules.md, "Threshold custody"): the consortium's parameters
//! (`params/custody`), and when the erasure of a record held by several member gateways is
//! complete. Pure, so a verifier re-evaluates an anchor's erasure from the anchor alone.

use crate::error::{Code, TxError};
use crate::limits::MAX_HOLDERS;
use crate::pb::RecordAnchor;

/// The fewest shares a threshold may ask for: one share alone would be the whole key.
pub const MIN_THRESHOLD: u32 = 2;

/// Valid custody parameters: `2 <= threshold <= holders <= MAX_HOLDERS`, or both 0 (off).
/// Anything else is [`Code::InvalidCustody`]. SetCustody and genesis `custody` both obey it.
pub fn check_custody(holders: u32, threshold: u32) -> Result<(), TxError> {
    if holders == 0 && threshold == 0 {
        return Ok(());
    }
    let max = u32::try_from(MAX_HOLDERS).unwrap_or(u32::MAX);
    if threshold < MIN_THRESHOLD || threshold > holders || holders > max {
        return Err(TxError::new(
            Code::InvalidCustody,
            format!(
                "custody of {holders} holders with threshold {threshold}: give \
                 {MIN_THRESHOLD} <= threshold <= holders <= {MAX_HOLDERS}, or both 0 to switch \
                 threshold custody off"
            ),
        ));
    }
    Ok(())
}

/// How many holders must confirm the destruction of their share before the erasure of a record
/// with `holders` holders and `threshold` is complete: `holders - threshold + 1`, for then at
/// most `threshold - 1` shares can remain, too few to rebuild the data key. At least 1.
pub fn confirmations_needed(holders: usize, threshold: usize) -> usize {
    holders.saturating_add(1).saturating_sub(threshold).max(1)
}

/// Whether the erasure of `anchor` is complete by the rule of its custody: a single-custodian
/// record (no holders) once its custodian confirmed (`erasure_confirmed_height` ≠ 0); a record
/// with holders once [`confirmations_needed`] distinct holders confirmed. False while the record
/// is not erased. The ledger sets `erasure_confirmed_height` exactly when this becomes true.
pub fn erasure_complete(anchor: &RecordAnchor) -> bool {
    if anchor.erased_height == 0 {
        return false;
    }
    if anchor.holders.is_empty() {
        return anchor.erasure_confirmed_height != 0;
    }
    let confirmed = anchor
        .holders
        .iter()
        .filter(|h| anchor.erasure_confirmations.contains(h))
        .count();
    let threshold = usize::try_from(anchor.threshold).unwrap_or(usize::MAX);
    confirmed >= confirmations_needed(anchor.holders.len(), threshold)
}

/// The holders of `anchor` that have not confirmed the destruction of their share, in holder
/// order (empty for a single-custodian record).
pub fn unconfirmed_holders(anchor: &RecordAnchor) -> Vec<&str> {
    anchor
        .holders
        .iter()
        .filter(|h| !anchor.erasure_confirmations.contains(h))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custody_parameters_are_two_to_seven_or_off() {
        assert!(check_custody(0, 0).is_ok(), "off");
        for (r, t) in [(2, 2), (3, 2), (4, 3), (7, 4), (7, 7)] {
            assert!(check_custody(r, t).is_ok(), "{t} of {r}");
        }
        for (r, t) in [
            (3, 1),
            (3, 0),
            (0, 2),
            (2, 3),
            (8, 2),
            (1, 1),
            (u32::MAX, 2),
        ] {
            assert_eq!(
                check_custody(r, t).err().map(|e| e.code),
                Some(Code::InvalidCustody),
                "{t} of {r}"
            );
        }
    }

    #[test]
    fn fewer_than_threshold_shares_remain_exactly_at_r_minus_t_plus_one() {
        assert_eq!(confirmations_needed(3, 2), 2);
        assert_eq!(confirmations_needed(4, 2), 3);
        assert_eq!(confirmations_needed(7, 4), 4);
        assert_eq!(confirmations_needed(3, 3), 1);
        assert_eq!(confirmations_needed(3, 9), 1, "never fewer than one");
    }

    #[test]
    fn an_anchor_with_holders_is_erased_once_enough_distinct_holders_confirmed() {
        let mut a = RecordAnchor {
            holders: vec!["a".into(), "b".into(), "c".into()],
            threshold: 2,
            ..Default::default()
        };
        a.erasure_confirmations = vec!["a".into(), "b".into()];
        assert!(!erasure_complete(&a), "not erased: nothing to complete");
        a.erased_height = 5;
        a.erasure_confirmations = vec!["a".into()];
        assert!(!erasure_complete(&a));
        assert_eq!(unconfirmed_holders(&a), ["b", "c"]);
        a.erasure_confirmations = vec!["a".into(), "x".into()];
        assert!(!erasure_complete(&a), "a non-holder never counts");
        a.erasure_confirmations = vec!["c".into(), "a".into()];
        assert!(erasure_complete(&a));
        assert_eq!(unconfirmed_holders(&a), ["b"]);

        let single = RecordAnchor {
            erased_height: 5,
            ..Default::default()
        };
        assert!(!erasure_complete(&single));
        assert!(erasure_complete(&RecordAnchor {
            erasure_confirmed_height: 6,
            ..single
        }));
    }
}

//! The pure rules of claims: adjudication against a coverage policy, co-pays, totals and the
//! service fingerprint. No state and no I/O, so an auditor (or `medledger verify`) can recompute
//! a claim's decision from a proven policy and proven claim, and the ledger (`medledger-state`)
//! applies exactly these functions.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::limits::MAX_COPAY_BPS;
use crate::pb::{Claim, ClaimItem, ClaimStatus, CoverageRule, ItemDecision, PractitionerRole};
use crate::{Code, TxError};

/// Practitioner roles that may submit and appeal for a provider: the clinicians who render and
/// attest services, and billing staff (registered with the CLAIMS_ADJUSTER role). Researchers
/// and privacy officers do not bill. The ledger's handlers enforce it (`ROLE_NOT_PERMITTED`), and
/// a gateway refuses the same requests before acting.
pub const PROVIDER_ROLES: [PractitionerRole; 4] = [
    PractitionerRole::Physician,
    PractitionerRole::Nurse,
    PractitionerRole::LabTechnician,
    PractitionerRole::ClaimsAdjuster,
];

/// Practitioner roles that may decide and pay for an insurer.
pub const INSURER_ROLES: [PractitionerRole; 1] = [PractitionerRole::ClaimsAdjuster];

/// Reason: the policy has no rule for the code, or its rule does not cover it.
pub const REASON_NOT_COVERED: &str = "NOT_COVERED";
/// Reason: the claimed unit price is above the rule's price cap; the approved amount is capped.
pub const REASON_PRICE_CAP: &str = "PRICE_CAP";
/// Reason: the rule needs a pre-authorisation, which only the insurer can confirm.
pub const REASON_PREAUTH_REQUIRED: &str = "PREAUTH_REQUIRED";
/// Reason: the item carries a modifier (a repeat or distinct service on the same day), which only
/// the insurer can confirm; the amount is the proposal.
pub const REASON_MODIFIER_REVIEW: &str = "MODIFIER_REVIEW";
/// Reason: the adjuster approved the item in full.
pub const REASON_ADJUSTER_APPROVED: &str = "ADJUSTER_APPROVED";
/// Reason: the adjuster approved part of the item.
pub const REASON_ADJUSTER_REDUCED: &str = "ADJUSTER_REDUCED";
/// Reason: the adjuster approved nothing of the item.
pub const REASON_ADJUSTER_DENIED: &str = "ADJUSTER_DENIED";

/// Reason: a break-glass access the claim cites was reviewed UNJUSTIFIED, so the claim has no
/// evidence of treatment and is denied (every item approved 0).
pub const REASON_EVIDENCE_UNJUSTIFIED: &str = "EVIDENCE_UNJUSTIFIED";

/// The procedure modifiers a claim item may carry: the CPT and HCPCS Level II modifiers that mark
/// a second or distinct service on one day, a part of a procedure, or its side, which is what
/// makes one code billable twice a day for one patient. Any other string would only dodge the
/// duplicate check (`99213@ZZ` is not a service), so it is refused (`UNKNOWN_MODIFIER`).
///
/// - `25` significant, separately identifiable E/M service on the day of a procedure;
/// - `26` professional component; `TC` technical component;
/// - `50` bilateral procedure; `LT` left side; `RT` right side;
/// - `59` distinct procedural service, and its subsets `XE` separate encounter, `XP` separate
///   practitioner, `XS` separate structure, `XU` unusual non-overlapping service;
/// - `76` repeat procedure by the same physician; `77` by another physician;
/// - `91` repeat clinical diagnostic laboratory test.
///
/// Compared exactly (upper case, no spaces).
pub const CLAIM_MODIFIERS: [&str; 14] = [
    "25", "26", "50", "59", "76", "77", "91", "LT", "RT", "TC", "XE", "XP", "XS", "XU",
];

/// Whether `modifier` is empty (none) or one of [`CLAIM_MODIFIERS`].
pub fn modifier_allowed(modifier: &str) -> bool {
    modifier.is_empty() || CLAIM_MODIFIERS.contains(&modifier)
}

/// `decided_by` of a claim approved automatically at submission.
pub const DECIDED_BY_POLICY: &str = "policy";

/// `decided_by` of a claim denied because a break-glass access it cites was reviewed
/// UNJUSTIFIED.
pub const DECIDED_BY_REVIEW: &str = "break-glass-review";

/// Domain separator of claim service fingerprints (v1 hashed a claim's whole code list, which a
/// split or re-quantified resubmission escaped).
const FINGERPRINT_DOMAIN: &[u8] = b"medledger/claim-service/v2";

/// Seconds per day: fingerprints compare days of service, not seconds.
pub const DAY: u64 = 86_400;

/// The outcome of adjudicating a claim against a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Adjudication {
    /// One decision per item, in item order.
    pub decisions: Vec<ItemDecision>,
    /// Every item covered, without pre-authorisation, within its price cap.
    pub auto_approve: bool,
}

/// Adjudicates `items` against `rules`: per item the approved amount, the co-pay and the reasons
/// it is less than claimed. Pure and deterministic; an amount overflow is an error, not a panic.
pub fn adjudicate(rules: &[CoverageRule], items: &[ClaimItem]) -> Result<Adjudication, TxError> {
    let index = rule_index(rules);
    let mut decisions = Vec::with_capacity(items.len());
    for item in items {
        decisions.push(adjudicate_item(
            index.get(item.service_code.as_str()).copied(),
            item,
        )?);
    }
    let auto_approve = decisions.iter().all(|d| d.reasons.is_empty());
    Ok(Adjudication {
        decisions,
        auto_approve,
    })
}

/// One item against its rule (if any):
/// - no rule, or a rule that does not cover the code: approved 0, `NOT_COVERED`;
/// - pre-authorisation required: approved 0, `PREAUTH_REQUIRED` (the ledger cannot see
///   pre-authorisations, so only the adjuster can approve such an item);
/// - else approved = min(quantity × unit_price, quantity × price_cap) (no cap when 0), with
///   `PRICE_CAP` when the cap binds; co-pay per the rule, see [`copay`]; and `MODIFIER_REVIEW`
///   when the item has a modifier (a second service on one day is the insurer's to confirm).
fn adjudicate_item(rule: Option<&CoverageRule>, item: &ClaimItem) -> Result<ItemDecision, TxError> {
    let claimed = item_amount(item)?;
    let Some(rule) = rule.filter(|r| r.covered) else {
        return Ok(ItemDecision {
            approved_amount: 0,
            copay: 0,
            reasons: vec![REASON_NOT_COVERED.into()],
        });
    };
    if rule.preauth_required {
        return Ok(ItemDecision {
            approved_amount: 0,
            copay: 0,
            reasons: vec![REASON_PREAUTH_REQUIRED.into()],
        });
    }
    let mut reasons = Vec::new();
    // quantity × cap can overflow where quantity × unit_price did not; then the cap is above
    // any u64, so it does not bind. That is exact, not a rejection.
    let cap = if rule.price_cap == 0 {
        None
    } else {
        item.quantity.checked_mul(rule.price_cap)
    };
    let approved = match cap {
        Some(cap) if cap < claimed => {
            reasons.push(REASON_PRICE_CAP.to_string());
            cap
        }
        _ => claimed,
    };
    if !item.modifier.is_empty() {
        reasons.push(REASON_MODIFIER_REVIEW.to_string());
    }
    Ok(ItemDecision {
        approved_amount: approved,
        copay: copay(Some(rule), approved),
        reasons,
    })
}

/// An adjuster's amount for one item: at most the claimed amount; the co-pay follows the rule;
/// the reasons are the policy's plus the adjuster's verdict.
pub fn decide_item(
    rule: Option<&CoverageRule>,
    item: &ClaimItem,
    approved: u64,
) -> Result<ItemDecision, TxError> {
    let claimed = item_amount(item)?;
    if approved > claimed {
        return Err(TxError::new(
            Code::ApprovedExceedsClaimed,
            format!(
                "item {}: approved {approved} is more than the {claimed} claimed",
                item.service_code
            ),
        ));
    }
    let mut reasons = adjudicate_item(rule, item)?.reasons;
    reasons.push(
        if approved == claimed {
            REASON_ADJUSTER_APPROVED
        } else if approved == 0 {
            REASON_ADJUSTER_DENIED
        } else {
            REASON_ADJUSTER_REDUCED
        }
        .to_string(),
    );
    Ok(ItemDecision {
        approved_amount: approved,
        copay: copay(rule, approved),
        reasons,
    })
}

/// The co-pay of an approved amount under `rule`: the fixed amount per item, or
/// `approved × bps / 10 000` rounded down (in the patient's favour), and never more than the
/// approved amount, so the insurer's share (approved − co-pay) is never negative. An item the
/// policy does not cover carries no co-pay (the policy defines none for it), even when an
/// adjuster approves it.
pub fn copay(rule: Option<&CoverageRule>, approved: u64) -> u64 {
    let Some(rule) = rule.filter(|r| r.covered) else {
        return 0;
    };
    let raw = if rule.copay_bps != 0 {
        // u64 × u32 always fits in u128, and bps ≤ 10 000 (checked statelessly) keeps the
        // quotient ≤ approved; `min` below holds even if a stored rule broke that.
        let share = u128::from(approved) * u128::from(rule.copay_bps.min(MAX_COPAY_BPS))
            / u128::from(MAX_COPAY_BPS);
        u64::try_from(share).unwrap_or(approved)
    } else {
        rule.copay_fixed
    };
    raw.min(approved)
}

/// The status after an adjuster's decision: every item approved in full is APPROVED, nothing
/// approved is DENIED, anything between is PARTIALLY_APPROVED.
pub fn decided_status(
    items: &[ClaimItem],
    decisions: &[ItemDecision],
) -> Result<ClaimStatus, TxError> {
    let mut full = true;
    let mut any = false;
    for (item, d) in items.iter().zip(decisions) {
        full &= d.approved_amount == item_amount(item)?;
        any |= d.approved_amount != 0;
    }
    Ok(if full {
        ClaimStatus::Approved
    } else if !any {
        ClaimStatus::Denied
    } else {
        ClaimStatus::PartiallyApproved
    })
}

/// A claim's totals, each the checked sum over its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    /// Σ quantity × unit_price.
    pub claimed: u64,
    /// Σ approved amounts.
    pub approved: u64,
    /// Σ co-pays.
    pub copay: u64,
    /// approved − copay: what the insurer pays.
    pub benefit: u64,
}

/// The totals of `items` and their `decisions`; [`Code::AmountOverflow`] when a sum does not fit,
/// [`Code::TotalsMismatch`] when the decisions do not line up with the items.
pub fn totals(items: &[ClaimItem], decisions: &[ItemDecision]) -> Result<Totals, TxError> {
    if items.len() != decisions.len() {
        return Err(mismatch(format!(
            "{} items but {} decisions",
            items.len(),
            decisions.len()
        )));
    }
    let overflow = |what: &str| {
        TxError::new(
            Code::AmountOverflow,
            format!("the {what} total does not fit in 64 bits of minor units"),
        )
    };
    let (mut claimed, mut approved, mut copay) = (0u64, 0u64, 0u64);
    for (item, d) in items.iter().zip(decisions) {
        let amount = item_amount(item)?;
        if d.approved_amount > amount || d.copay > d.approved_amount {
            return Err(mismatch(format!(
                "item {}: approved or co-pay exceeds what it may",
                item.service_code
            )));
        }
        claimed = claimed
            .checked_add(amount)
            .ok_or_else(|| overflow("claimed"))?;
        approved = approved
            .checked_add(d.approved_amount)
            .ok_or_else(|| overflow("approved"))?;
        copay = copay
            .checked_add(d.copay)
            .ok_or_else(|| overflow("co-pay"))?;
    }
    let benefit = approved
        .checked_sub(copay)
        .ok_or_else(|| mismatch("co-pays exceed the approved total".into()))?;
    Ok(Totals {
        claimed,
        approved,
        copay,
        benefit,
    })
}

/// The invariant of every stored claim: its totals equal the sums over its items and decisions
/// (approved ≤ claimed and co-pay ≤ approved per item). Checked before every write of a claim,
/// so a bug in a handler refuses the transaction instead of storing inconsistent money.
pub fn check_totals(claim: &Claim) -> Result<(), TxError> {
    let t = totals(&claim.items, &claim.decisions)?;
    let stored = Totals {
        claimed: claim.total_claimed,
        approved: claim.total_approved,
        copay: claim.total_copay,
        benefit: claim.total_benefit,
    };
    if t != stored {
        return Err(mismatch(format!(
            "claim {}: stored totals {stored:?} differ from the items' {t:?}",
            claim.id
        )));
    }
    Ok(())
}

/// quantity × unit_price, checked.
pub fn item_amount(item: &ClaimItem) -> Result<u64, TxError> {
    item.quantity.checked_mul(item.unit_price).ok_or_else(|| {
        TxError::new(
            Code::AmountOverflow,
            format!(
                "item {}: {} × {} does not fit in 64 bits of minor units",
                item.service_code, item.quantity, item.unit_price
            ),
        )
    })
}

/// The fingerprint of one billed service: SHA-256 of the domain separator, a zero byte, then the
/// patient, the provider, the day of service (`service_date / 86 400`, UTC, as 8 bytes
/// big-endian), the service code and its modifier (empty if none). Each string is prefixed by its
/// length (8 bytes big-endian), so no two tuples encode alike. A claim writes one key per
/// service ([`keys::claim_fingerprint`]) and is refused if any exists: quantities, prices, the
/// split into items, other services of the claim and the time within the day do not matter.
pub fn fingerprint(
    patient: &str,
    provider: &str,
    service_date: u64,
    code: &str,
    modifier: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(FINGERPRINT_DOMAIN);
    h.update([0u8]);
    length_prefixed(&mut h, patient.as_bytes());
    length_prefixed(&mut h, provider.as_bytes());
    h.update((service_date / DAY).to_be_bytes());
    length_prefixed(&mut h, code.as_bytes());
    length_prefixed(&mut h, modifier.as_bytes());
    h.finalize().into()
}

fn length_prefixed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// The id of the `n`-th claim (counting from 1).
pub fn claim_id(n: u64) -> String {
    format!("cl-{n}")
}

/// The short name of a claim status, e.g. `APPROVED`.
pub fn status_name(status: i32) -> &'static str {
    match ClaimStatus::try_from(status) {
        Ok(ClaimStatus::Pending) => "PENDING",
        Ok(ClaimStatus::Approved) => "APPROVED",
        Ok(ClaimStatus::PartiallyApproved) => "PARTIALLY_APPROVED",
        Ok(ClaimStatus::Denied) => "DENIED",
        Ok(ClaimStatus::Paid) => "PAID",
        Ok(ClaimStatus::Appealed) => "APPEALED",
        Ok(ClaimStatus::Unspecified) | Err(_) => "UNSPECIFIED",
    }
}

fn mismatch(message: String) -> TxError {
    TxError::new(Code::TotalsMismatch, message)
}

/// Rules by service code. Codes are unique within a policy (checked statelessly); should a
/// stored policy hold a code twice, the first rule wins, deterministically.
pub fn rule_index(rules: &[CoverageRule]) -> BTreeMap<&str, &CoverageRule> {
    let mut index = BTreeMap::new();
    for r in rules {
        index.entry(r.service_code.as_str()).or_insert(r);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_fingerprint_is_pinned_and_ignores_time_of_day() {
        let a = fingerprint("pt-1", "hospital-a", 19_000 * DAY + 5, "99213", "");
        let b = fingerprint("pt-1", "hospital-a", 19_000 * DAY + 3_600, "99213", "");
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint("pt-1", "hospital-a", 19_001 * DAY, "99213", "")
        );
        assert_ne!(
            a,
            fingerprint("pt-1", "hospital-a", 19_000 * DAY, "80053", "")
        );
        // A modifier (e.g. 76, repeat procedure) makes it another service.
        assert_ne!(
            a,
            fingerprint("pt-1", "hospital-a", 19_000 * DAY, "99213", "76")
        );
        // Length prefixes: moving a character between fields changes the fingerprint.
        assert_ne!(
            fingerprint("pt-1h", "ospital-a", 0, "", ""),
            fingerprint("pt-1", "hospital-a", 0, "", "")
        );
        assert_ne!(
            fingerprint("pt-1", "hospital-a", 0, "992137", "6"),
            fingerprint("pt-1", "hospital-a", 0, "99213", "76")
        );
        // Pinned: stored service keys must keep matching new submissions after an upgrade.
        // (v2: v1 hashed a claim's whole code list, so a split resubmission escaped it.)
        assert_eq!(
            hex::encode(a),
            "c40c4397473df15e5bed1e8832a6e4a79aa1ad319fcec08ecc83e3d7d9faff1b"
        );
    }

    #[test]
    fn copay_never_exceeds_the_approved_amount_and_rounds_down() {
        let fixed = CoverageRule {
            service_code: "a".into(),
            covered: true,
            copay_fixed: 500,
            ..Default::default()
        };
        assert_eq!(copay(Some(&fixed), 2_000), 500);
        assert_eq!(copay(Some(&fixed), 300), 300);
        let bps = CoverageRule {
            service_code: "a".into(),
            covered: true,
            copay_bps: 2_500,
            ..Default::default()
        };
        assert_eq!(copay(Some(&bps), 999), 249);
        assert_eq!(copay(Some(&bps), u64::MAX), u64::MAX / 4);
        let full = CoverageRule {
            copay_bps: MAX_COPAY_BPS,
            ..bps
        };
        assert_eq!(copay(Some(&full), u64::MAX), u64::MAX);
        assert_eq!(copay(None, 1_000), 0);
    }

    #[test]
    fn a_cap_that_overflows_does_not_bind() {
        let rule = CoverageRule {
            service_code: "a".into(),
            covered: true,
            price_cap: u64::MAX,
            ..Default::default()
        };
        let item = ClaimItem {
            service_code: "a".into(),
            quantity: 2,
            unit_price: 10,
            modifier: String::new(),
        };
        let d = adjudicate_item(Some(&rule), &item).map(|d| d.approved_amount);
        assert_eq!(d, Ok(20));
    }
}

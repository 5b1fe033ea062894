//! The validator registry (`validators` → `ValidatorSet`): every validator's address, member,
//! consensus key, BLS key and voting power, in address order (the order of certificate signer
//! bitmaps). Governance changes it; the ledger turns each block's changes into CometBFT
//! validator updates by comparing the registry before and after the block.

use std::collections::BTreeMap;

use medledger_tx::keys;
use medledger_tx::pb::{Validator, ValidatorSet};

use crate::error::StoreError;
use crate::view::{Overlay, StateRead};

/// The registry in address order; empty before genesis.
pub fn registry(view: &(impl StateRead + ?Sized)) -> Result<Vec<Validator>, StoreError> {
    Ok(view
        .get_msg::<ValidatorSet>(&keys::validators())?
        .map(|s| s.validators)
        .unwrap_or_default())
}

/// Stages `validators` as the registry, sorted by address.
pub fn put_registry<S: StateRead + ?Sized>(
    st: &mut Overlay<'_, S>,
    mut validators: Vec<Validator>,
) {
    validators.sort_by(|a, b| a.address.cmp(&b.address));
    st.put_msg(keys::validators(), &ValidatorSet { validators });
}

/// The total voting power. Powers are at most `MAX_VALIDATOR_POWER` and validators at most 256,
/// so the sum cannot overflow; saturating keeps it panic-free regardless.
pub fn total_power(validators: &[Validator]) -> u64 {
    validators
        .iter()
        .map(|v| v.power)
        .fold(0, u64::saturating_add)
}

/// The voting power of `member`: the power of its validators (0 when it runs none).
pub fn member_power(validators: &[Validator], member: &str) -> u64 {
    validators
        .iter()
        .filter(|v| v.member_id == member)
        .map(|v| v.power)
        .fold(0, u64::saturating_add)
}

/// The consensus key of `v`, if the registry knows it.
pub fn consensus_key(v: &Validator) -> Option<[u8; 32]> {
    v.pub_key.as_slice().try_into().ok()
}

/// The CometBFT validator updates that turn `before` into `after`: `(consensus key, power)`,
/// power 0 removing a validator; in address order, so every node returns the same list.
/// Validators whose consensus key is unknown are skipped: governance refuses to change them.
pub fn updates(before: &[Validator], after: &[Validator]) -> Vec<([u8; 32], u64)> {
    let old: BTreeMap<&[u8], &Validator> =
        before.iter().map(|v| (v.address.as_slice(), v)).collect();
    let new: BTreeMap<&[u8], &Validator> =
        after.iter().map(|v| (v.address.as_slice(), v)).collect();
    let mut out = Vec::new();
    let addresses: std::collections::BTreeSet<&[u8]> =
        old.keys().chain(new.keys()).copied().collect();
    for address in addresses {
        let (was, is) = (old.get(address), new.get(address));
        let (validator, power) = match (was, is) {
            (Some(w), Some(n)) if w.power == n.power => continue,
            (_, Some(n)) => (*n, n.power),
            (Some(w), None) => (*w, 0),
            (None, None) => continue,
        };
        if let Some(key) = consensus_key(validator) {
            out.push((key, power));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: u8, power: u64) -> Validator {
        Validator {
            address: vec![a; 20],
            member_id: format!("m{a}"),
            bls_key: vec![],
            power,
            pub_key: vec![a; 32],
        }
    }

    #[test]
    fn updates_name_added_changed_and_removed_validators_in_address_order() {
        let before = [v(1, 10), v(2, 10), v(3, 10)];
        let after = [v(1, 10), v(2, 20), v(4, 5)];
        assert_eq!(
            updates(&before, &after),
            vec![([2; 32], 20), ([3; 32], 0), ([4; 32], 5)]
        );
        assert!(updates(&before, &before).is_empty());
    }

    #[test]
    fn powers_sum_per_member_and_in_total() {
        let set = [v(1, 10), v(2, 7)];
        assert_eq!(
            (
                member_power(&set, "m2"),
                member_power(&set, "x"),
                total_power(&set)
            ),
            (7, 0, 17)
        );
    }
}

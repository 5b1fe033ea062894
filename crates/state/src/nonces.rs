//! Replay protection of unordered transactions: a set of (signer, nonce) pairs, each remembered
//! until its tx's `valid_until` and forgotten by the first block after it.
//!
//! The design follows Cosmos SDK v0.53's unordered transactions (ADR-070: a timeout plus a set
//! of seen txs pruned at expiry) and Aptos's orderless transactions (AIP-123: a random nonce and
//! at most 60 s of validity). A tx is valid in a block whose time `t` satisfies
//! `t <= valid_until <= t + MAX_UNORDERED_VALIDITY_SECS`, so a pair needs to be remembered only
//! until `valid_until`: any later copy is refused by the window alone.
//!
//! The set is a Merkleized state like any other (so every node forgets the same pairs at the
//! same height, and a client can prove a nonce was used): `nonce/{key}/{nonce}` →
//! `valid_until`, indexed by expiry second in `nonce-expiry/{second}/{n}`. At the start of each
//! block, the seconds from the last pruned one up to the block's time minus one are forgotten.
//! Only seconds that can hold entries are visited: nothing is remembered past
//! `nonce-expiry/latest`, and when nothing is live the cursor jumps to the block's time, so a
//! block visits at most the seconds since the previous block, bounded by the 60 s window.

use medledger_tx::keys::List;
use medledger_tx::limits::MAX_UNORDERED_VALIDITY_SECS;
use medledger_tx::pb::Unordered;
use medledger_tx::{keys, Code, TxError};

use crate::error::StoreError;
use crate::lists;
use crate::view::{BlockState, StateRead};

/// Checks an unordered tx of `signer` against the block `time` and the remembered nonces.
/// `time` is `None` where no block time is known (CheckTx on a node that has committed no block
/// yet): the window cannot be checked, so the tx is refused; FinalizeBlock always passes the
/// block's time. Answers the pair's state key.
pub fn check(
    state: &impl StateRead,
    signer: &[u8; 32],
    u: &Unordered,
    time: Option<u64>,
) -> Result<Result<Vec<u8>, TxError>, StoreError> {
    let Some(time) = time else {
        return Ok(Err(TxError::new(
            Code::OutsideValidityWindow,
            "this node has committed no block yet, so it has no block time to check valid_until \
             against; send the tx again after the next block (or to another node)",
        )));
    };
    if u.valid_until < time {
        return Ok(Err(TxError::new(
            Code::OutsideValidityWindow,
            format!(
                "the tx expired: valid_until {} is before the block time {time}; sign a new one",
                u.valid_until
            ),
        )));
    }
    let latest = time.saturating_add(MAX_UNORDERED_VALIDITY_SECS);
    if u.valid_until > latest {
        return Ok(Err(TxError::new(
            Code::OutsideValidityWindow,
            format!(
                "valid_until {} is more than {MAX_UNORDERED_VALIDITY_SECS} s after the block \
                 time {time}; sign it valid for less (30 s is usual)",
                u.valid_until
            ),
        )));
    }
    let key = keys::nonce(signer, &u.nonce);
    if state.get(&key)?.is_some() {
        return Ok(Err(TxError::new(
            Code::NonceReused,
            "this signer's nonce is already used by a committed tx: it was applied once, and a \
             copy is never applied again (a new tx needs a new random nonce)",
        )));
    }
    Ok(Ok(key))
}

/// Remembers the pair at `key` until `valid_until`, in a block at `time`.
pub fn remember(
    block: &mut BlockState<'_>,
    key: Vec<u8>,
    valid_until: u64,
    time: u64,
) -> Result<(), StoreError> {
    let latest = block.get_u64(&keys::nonce_latest())?;
    let pruned = block.get_u64(&keys::nonce_pruned())?;
    if latest <= pruned {
        // Nothing is remembered: every second before this block's is already forgotten (the
        // block started by forgetting up to `time - 1`), so the cursor may jump here.
        block.put_u64(keys::nonce_pruned(), time.saturating_sub(1));
    }
    if valid_until > latest {
        block.put_u64(keys::nonce_latest(), valid_until);
    }
    lists::push(block, &List::NonceExpiry(valid_until), key.clone())?;
    block.put_u64(key, valid_until);
    Ok(())
}

/// Forgets every pair whose `valid_until` is before `time`, the time of the block starting now.
pub fn forget_expired(block: &mut BlockState<'_>, time: u64) -> Result<(), StoreError> {
    let latest = block.get_u64(&keys::nonce_latest())?;
    let pruned = block.get_u64(&keys::nonce_pruned())?;
    if latest <= pruned {
        return Ok(()); // nothing remembered: write nothing
    }
    let last = time.saturating_sub(1).min(latest);
    let mut second = pruned + 1;
    while second <= last {
        let expiring = List::NonceExpiry(second);
        let n = lists::len(block, &expiring)?;
        for i in 0..n {
            let entry = expiring.entry_key(i);
            if let Some(pair) = block.get(&entry)? {
                block.delete(pair);
            }
            block.delete(entry);
        }
        if n > 0 {
            block.delete(expiring.count_key());
        }
        second += 1;
    }
    if last > pruned {
        // Up to `time - 1` when entries remain (they all expire later), else up to `latest`:
        // the next `remember` moves the cursor on from there.
        block.put_u64(keys::nonce_pruned(), last);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn unordered(nonce: u8, valid_until: u64) -> Unordered {
        Unordered {
            nonce: vec![nonce; 16],
            valid_until,
        }
    }

    #[test]
    fn the_window_is_the_block_time_to_sixty_seconds_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let signer = [9u8; 32];
        let code = |valid_until: u64, time: u64| {
            check(&store, &signer, &unordered(1, valid_until), Some(time))
                .unwrap()
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code(1000, 1000), None);
        assert_eq!(code(1060, 1000), None);
        assert_eq!(code(999, 1000), Some(Code::OutsideValidityWindow));
        assert_eq!(code(1061, 1000), Some(Code::OutsideValidityWindow));
        // No block time known (a node before its first block): no window can be checked.
        assert_eq!(
            check(&store, &signer, &unordered(1, 5), None)
                .unwrap()
                .err()
                .map(|e| e.code),
            Some(Code::OutsideValidityWindow)
        );
    }

    #[test]
    fn a_pair_is_remembered_until_it_expires_then_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let signer = [9u8; 32];
        let mut block = BlockState::new(&store);
        forget_expired(&mut block, 1000).unwrap();
        assert!(
            block.writes().is_empty(),
            "nothing remembered, nothing written"
        );
        let key = check(&block, &signer, &unordered(1, 1030), Some(1000))
            .unwrap()
            .unwrap();
        remember(&mut block, key.clone(), 1030, 1000).unwrap();
        let key2 = check(&block, &signer, &unordered(2, 1010), Some(1000))
            .unwrap()
            .unwrap();
        remember(&mut block, key2.clone(), 1010, 1000).unwrap();
        assert_eq!(
            check(&block, &signer, &unordered(1, 1030), Some(1001))
                .unwrap()
                .err()
                .map(|e| e.code),
            Some(Code::NonceReused)
        );
        // Another signer's same nonce is its own.
        assert!(check(&block, &[8u8; 32], &unordered(1, 1030), Some(1001))
            .unwrap()
            .is_ok());
        // At 1010 the 1010 pair is still valid; at 1011 it is forgotten, the other is not.
        forget_expired(&mut block, 1010).unwrap();
        assert!(block.get(&key2).unwrap().is_some());
        forget_expired(&mut block, 1011).unwrap();
        assert!(block.get(&key2).unwrap().is_none());
        assert!(block
            .get(&keys::nonce_expiry_count(1010))
            .unwrap()
            .is_none());
        assert!(block.get(&key).unwrap().is_some());
        // A block long after forgets the rest and visits only seconds that can hold entries.
        forget_expired(&mut block, 1_000_000).unwrap();
        assert!(block.get(&key).unwrap().is_none());
        assert_eq!(block.get_u64(&keys::nonce_pruned()).unwrap(), 1030);
        // The next pair moves the cursor to its block: no walk over the idle seconds.
        let key3 = check(&block, &signer, &unordered(3, 2_000_030), Some(2_000_000))
            .unwrap()
            .unwrap();
        remember(&mut block, key3, 2_000_030, 2_000_000).unwrap();
        assert_eq!(block.get_u64(&keys::nonce_pruned()).unwrap(), 1_999_999);
    }
}

//! Signing unordered transactions, and resubmitting them safely.
//!
//! A message that commutes ([`medledger_tx::check::may_be_unordered`]) is signed with a random
//! nonce and a `valid_until` instead of the signer's sequence, so any number of a key's txs can
//! be in flight from any number of servers without coordinating (`docs/rules.md`, "Unordered
//! transactions"). Such a tx is idempotent: the ledger applies a (signer, nonce) pair at most
//! once, so a client that has not seen it committed resends the *same bytes* until
//! `valid_until`; a copy is refused (`NONCE_REUSED`), never applied twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use medledger_tx::limits::UNORDERED_NONCE_LEN;
use medledger_tx::pb::{tx_body::Msg, TxBody, Unordered};

/// How long an unordered tx signed here stays valid, in seconds: half the ledger's limit
/// (60 s), so a block time a few seconds behind this machine's clock still admits it.
pub const VALIDITY_SECS: u64 = 30;

/// How often a client resends an unordered tx it has not yet seen committed.
pub const RESEND_EVERY: Duration = Duration::from_secs(5);

/// This machine's clock in unix seconds (0 if it is before 1970).
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An unordered body for `msg`: a fresh random nonce, valid until `valid_until`.
pub fn body(chain_id: &str, msg: Msg, valid_until: u64) -> anyhow::Result<TxBody> {
    let mut nonce = vec![0u8; UNORDERED_NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness for a nonce: {e}"))?;
    Ok(TxBody {
        chain_id: chain_id.into(),
        sequence: 0,
        unordered: Some(Unordered { nonce, valid_until }),
        msg: Some(msg),
    })
}

/// An unordered body valid for [`VALIDITY_SECS`] from now.
pub fn body_now(chain_id: &str, msg: Msg) -> anyhow::Result<TxBody> {
    body(chain_id, msg, now_secs() + VALIDITY_SECS)
}

/// The `valid_until` of signed tx bytes, if they are a well-formed unordered tx: such a tx may
/// be resent as is until then.
pub fn resendable_until(tx: &[u8]) -> Option<u64> {
    let signed = medledger_tx::decode_tx(tx).ok()?;
    signed.body.unordered.map(|u| u.valid_until)
}

#[cfg(test)]
mod tests {
    use super::*;
    use medledger_tx::pb::LogAccess;

    #[test]
    fn bodies_get_fresh_nonces_and_are_resendable_until_their_deadline() {
        let msg = || Msg::LogAccess(LogAccess::default());
        let a = body("c", msg(), 1234).unwrap();
        let b = body("c", msg(), 1234).unwrap();
        let (ua, ub) = (a.unordered.clone().unwrap(), b.unordered.unwrap());
        assert_eq!(ua.nonce.len(), UNORDERED_NONCE_LEN);
        assert_ne!(ua.nonce, ub.nonce, "a fresh random nonce each time");
        let key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
        assert_eq!(
            resendable_until(&medledger_tx::sign_tx(&key, &a)),
            Some(1234)
        );
        let ordered = TxBody {
            unordered: None,
            ..a
        };
        assert_eq!(
            resendable_until(&medledger_tx::sign_tx(&key, &ordered)),
            None
        );
    }
}

//! Mempool lanes: CheckTx rations the mempool by who signs, so a flood from low-priority keys
//! cannot push members' txs out.
//!
//! CometBFT v0.38's mempool is one FIFO queue with no priority (the `priority` field of
//! `ResponseCheckTx` is ignored since v0.38), and PrepareProposal only sees the block's worth
//! CometBFT reaped from its head. Fairness can therefore only come from what CheckTx admits.
//! Each node keeps a view of the txs it admitted and that no block has carried yet, by lane:
//!
//! | lane | signers | most pending, all signers | most pending, one signer |
//! |---|---|---|---|
//! | members | member admin keys | no lane limit (the mempool's size) | no limit |
//! | practitioners | practitioner keys | [`PRACTITIONER_LANE`] txs and half a block's bytes | [`PRACTITIONER_SIGNER`] |
//! | patients | patient keys, recoveries | [`PATIENT_LANE`] txs and a quarter of a block's bytes | [`PATIENT_SIGNER`] |
//!
//! CometBFT fills a block from the head of its FIFO mempool, so what bounds a lane's share of
//! the blocks under a flood is its share of the bytes waiting: a patients' lane of at most a
//! quarter of a block leaves members at least three quarters of every block. A node learns the
//! block size (`max_tx_bytes`) from PrepareProposal; until it has proposed once, only the
//! counts apply.
//!
//! A tx over its lane's limit is refused with `MEMPOOL_LANE_FULL`; its sender retries after a
//! block. Members are the consortium's accountable parties (each runs a validator, and the
//! consortium can remove one by vote), and they carry nearly all of the load. Keys the ledger
//! does not know never reach the mempool (CheckTx refuses them, `UNKNOWN_SIGNER`).
//!
//! A tx leaves the view when a block carries it (FinalizeBlock), or [`PENDING_TTL_BLOCKS`]
//! blocks after it was admitted: CometBFT can drop an admitted tx without telling the app (when
//! its mempool filled between the app's answer and the insertion), and with `recheck` off the
//! app is never told which txs are still there. This view is node-local and outside consensus.

use std::collections::BTreeMap;

use medledger_tx::{limits, Code, TxError};

use crate::domain::members::Signer;

/// Most txs of practitioners pending in one node's mempool.
pub const PRACTITIONER_LANE: u64 = limits::MEMPOOL_PRACTITIONER_LANE;
/// Most txs of one practitioner pending in one node's mempool.
pub const PRACTITIONER_SIGNER: u64 = limits::MEMPOOL_PRACTITIONER_SIGNER;
/// Most txs of patients pending in one node's mempool (consent changes are rare: a patient
/// signs a few a day).
pub const PATIENT_LANE: u64 = limits::MEMPOOL_PATIENT_LANE;
/// Most txs of one patient pending in one node's mempool.
pub const PATIENT_SIGNER: u64 = limits::MEMPOOL_PATIENT_SIGNER;
/// Blocks after which an admitted tx no block carried is forgotten (a mempool of ten blocks'
/// worth drains in about ten).
pub const PENDING_TTL_BLOCKS: u64 = 100;
/// Most txs the view tracks; past it, lanes with limits refuse (members' txs are admitted
/// untracked).
pub const MAX_TRACKED: usize = 200_000;

/// Who a lane is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// Member admin keys.
    Members,
    /// Practitioner keys.
    Practitioners,
    /// Patient keys (and key recoveries, signed by a patient's new key).
    Patients,
}

impl Lane {
    /// The lane of a signer.
    pub fn of(signer: &Signer) -> Lane {
        match signer {
            Signer::Member(_) => Lane::Members,
            Signer::Practitioner(_) => Lane::Practitioners,
            Signer::Patient(_) | Signer::Unknown => Lane::Patients,
        }
    }

    /// (most pending in the lane, most pending per signer); `None` for no limit.
    pub fn limits(self) -> Option<(u64, u64)> {
        match self {
            Lane::Members => None,
            Lane::Practitioners => Some((PRACTITIONER_LANE, PRACTITIONER_SIGNER)),
            Lane::Patients => Some((PATIENT_LANE, PATIENT_SIGNER)),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lane::Members => "members",
            Lane::Practitioners => "practitioners",
            Lane::Patients => "patients",
        }
    }
}

struct Pending {
    lane: Lane,
    signer: [u8; 32],
    admitted_at: u64,
    bytes: u64,
}

/// One node's view of the txs it admitted that no block has carried yet.
#[derive(Default)]
pub struct Lanes {
    pending: BTreeMap<[u8; 32], Pending>,
    per_lane: BTreeMap<Lane, u64>,
    lane_bytes: BTreeMap<Lane, u64>,
    per_signer: BTreeMap<[u8; 32], u64>,
    /// A block's tx bytes (`max_tx_bytes`), once PrepareProposal told this node.
    block_bytes: Option<u64>,
}

impl Lanes {
    /// A block holds `max_tx_bytes` of txs (from PrepareProposal).
    pub fn set_block_bytes(&mut self, max_tx_bytes: u64) {
        self.block_bytes = Some(max_tx_bytes);
    }

    /// The most bytes `lane` may hold pending, if the block size is known.
    fn byte_limit(&self, lane: Lane) -> Option<u64> {
        let block = self.block_bytes?;
        match lane {
            Lane::Members => None,
            Lane::Practitioners => Some(block / 2),
            Lane::Patients => Some(block / 4),
        }
    }

    /// Admits tx `hash` (`bytes` long) of `signer` in `lane` at `height` (the next block's), or
    /// refuses it with `MEMPOOL_LANE_FULL`.
    pub fn admit(
        &mut self,
        hash: [u8; 32],
        signer: [u8; 32],
        lane: Lane,
        height: u64,
        bytes: u64,
    ) -> Result<(), TxError> {
        if self.pending.contains_key(&hash) {
            return Ok(());
        }
        let limits = lane.limits();
        if self.pending.len() >= MAX_TRACKED {
            return match limits {
                None => Ok(()),
                Some(_) => Err(TxError::new(
                    Code::MempoolLaneFull,
                    "this node tracks as many pending txs as it may; retry after a block",
                )),
            };
        }
        if let Some((lane_max, signer_max)) = limits {
            let in_lane = self.per_lane.get(&lane).copied().unwrap_or(0);
            if in_lane >= lane_max {
                return Err(TxError::new(
                    Code::MempoolLaneFull,
                    format!(
                        "the {} lane of this node's mempool is full ({lane_max} pending); retry \
                         after the next block",
                        lane.name()
                    ),
                ));
            }
            let held = self.lane_bytes.get(&lane).copied().unwrap_or(0);
            if let Some(max) = self.byte_limit(lane) {
                if held.saturating_add(bytes) > max {
                    return Err(TxError::new(
                        Code::MempoolLaneFull,
                        format!(
                            "the {} lane of this node's mempool holds its share of a block \
                             ({max} bytes pending); retry after the next block",
                            lane.name()
                        ),
                    ));
                }
            }
            let of_signer = self.per_signer.get(&signer).copied().unwrap_or(0);
            if of_signer >= signer_max {
                return Err(TxError::new(
                    Code::MempoolLaneFull,
                    format!(
                        "this key already has {signer_max} txs pending in this node's mempool \
                         (the most one key of the {} lane may); retry after the next block",
                        lane.name()
                    ),
                ));
            }
        }
        *self.per_lane.entry(lane).or_default() += 1;
        *self.lane_bytes.entry(lane).or_default() += bytes;
        *self.per_signer.entry(signer).or_default() += 1;
        self.pending.insert(
            hash,
            Pending {
                lane,
                signer,
                admitted_at: height,
                bytes,
            },
        );
        Ok(())
    }

    /// A block carried tx `hash`: it leaves the mempool.
    pub fn carried(&mut self, hash: &[u8; 32]) {
        if let Some(p) = self.pending.remove(hash) {
            self.release(&p);
        }
    }

    /// Forgets txs admitted more than [`PENDING_TTL_BLOCKS`] before `height`.
    pub fn expire(&mut self, height: u64) {
        let cutoff = height.saturating_sub(PENDING_TTL_BLOCKS);
        let stale: Vec<[u8; 32]> = self
            .pending
            .iter()
            .filter(|(_, p)| p.admitted_at < cutoff)
            .map(|(h, _)| *h)
            .collect();
        for h in stale {
            self.carried(&h);
        }
    }

    /// Txs pending in `lane`.
    pub fn in_lane(&self, lane: Lane) -> u64 {
        self.per_lane.get(&lane).copied().unwrap_or(0)
    }

    fn release(&mut self, p: &Pending) {
        if let Some(n) = self.per_lane.get_mut(&p.lane) {
            *n = n.saturating_sub(1);
        }
        if let Some(n) = self.lane_bytes.get_mut(&p.lane) {
            *n = n.saturating_sub(p.bytes);
        }
        if let Some(n) = self.per_signer.get_mut(&p.signer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_signer.remove(&p.signer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u32) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b
    }

    #[test]
    fn a_flood_of_patient_keys_fills_only_the_patient_lane() {
        let mut l = Lanes::default();
        let mut admitted = 0;
        // 100 patients each try 100 txs: each key stops at 16, the lane at 256.
        for p in 0..100u32 {
            for t in 0..100u32 {
                let signer = h(1_000_000 + p);
                if l.admit(h(p * 1000 + t), signer, Lane::Patients, 5, 200)
                    .is_ok()
                {
                    admitted += 1;
                }
            }
        }
        assert_eq!(admitted, PATIENT_LANE);
        assert_eq!(l.in_lane(Lane::Patients), PATIENT_LANE);
        // Members are still admitted, as many as they send.
        for t in 0..10_000u32 {
            l.admit(h(900_000_000 + t), h(7), Lane::Members, 5, 200)
                .unwrap();
        }
        // One patient alone stops at 16.
        let mut one = Lanes::default();
        let refused = (0..20u32)
            .filter(|&t| one.admit(h(t), h(1), Lane::Patients, 5, 200).is_err())
            .count();
        assert_eq!(refused, 20 - PATIENT_SIGNER as usize);
        assert_eq!(
            one.admit(h(99), h(1), Lane::Patients, 5, 200)
                .unwrap_err()
                .code,
            Code::MempoolLaneFull
        );
        // A resend of a pending tx is admitted again for free.
        assert!(one.admit(h(0), h(1), Lane::Patients, 5, 200).is_ok());
    }

    #[test]
    fn once_the_block_size_is_known_the_patients_lane_holds_at_most_a_quarter_block() {
        let mut l = Lanes::default();
        l.set_block_bytes(40_000);
        let admitted = (0..100u32)
            .filter(|&p| l.admit(h(p), h(1000 + p), Lane::Patients, 5, 200).is_ok())
            .count();
        assert_eq!(admitted, 50, "10,000 bytes of 200-byte txs");
        assert_eq!(
            l.admit(h(500), h(2000), Lane::Patients, 5, 200)
                .unwrap_err()
                .code,
            Code::MempoolLaneFull
        );
        l.carried(&h(0));
        l.admit(h(500), h(2000), Lane::Patients, 5, 200).unwrap();
        // Members have no byte limit.
        for t in 0..1000u32 {
            l.admit(h(10_000 + t), h(7), Lane::Members, 5, 200).unwrap();
        }
    }

    #[test]
    fn a_carried_or_stale_tx_frees_its_place() {
        let mut l = Lanes::default();
        for t in 0..PATIENT_SIGNER as u32 {
            l.admit(h(t), h(1), Lane::Patients, 10, 200).unwrap();
        }
        assert!(l.admit(h(500), h(1), Lane::Patients, 10, 200).is_err());
        l.carried(&h(0));
        l.admit(h(500), h(1), Lane::Patients, 11, 200).unwrap();
        assert!(l.admit(h(501), h(1), Lane::Patients, 11, 200).is_err());
        // Dropped by the mempool without a word: forgotten after the TTL.
        l.expire(10 + PENDING_TTL_BLOCKS);
        assert_eq!(l.in_lane(Lane::Patients), PATIENT_SIGNER);
        l.expire(11 + PENDING_TTL_BLOCKS);
        assert_eq!(l.in_lane(Lane::Patients), 1);
        l.expire(12 + PENDING_TTL_BLOCKS);
        assert_eq!(l.in_lane(Lane::Patients), 0);
        assert!(l.per_signer.is_empty());
    }
}

//! Mempool lanes: CheckTx rations the mempool by who signs, so no flood can push anyone else's
//! txs out: not an outsider's, not a patient's, not one member's.
//!
//! CometBFT v0.38's mempool is one FIFO queue with no priority (the `priority` field of
//! `ResponseCheckTx` is ignored since v0.38), and PrepareProposal only sees the block's worth
//! CometBFT reaped from its head. Fairness can therefore only come from what CheckTx admits.
//! Each node keeps a view of the txs it admitted and that no block has carried yet, by lane:
//!
//! | lane | signers | most pending, all signers | most pending, one key |
//! |---|---|---|---|
//! | one per member | the member's admin keys and its practitioners | [`MEMBER_QUOTA`] txs and an equal share of [`MEMBER_BLOCKS`] blocks' bytes | practitioner: [`PRACTITIONER_SIGNER`]; admin: the quota |
//! | patients | patient keys | [`PATIENT_LANE`] txs and a quarter of a block's bytes | [`PATIENT_SIGNER`] |
//! | outsiders | keys the ledger does not know (key recoveries) | [`OUTSIDER_LANE`] txs | [`OUTSIDER_SIGNER`] |
//!
//! **Reserved allowance.** A patient's `RevokeConsent` is admitted even when the patients' lane
//! is full (count or bytes), as long as that patient has fewer than [`PATIENT_RESERVED`] txs
//! pending: a flood of other patient keys can never hold back a revocation. It still counts in
//! the lane.
//!
//! CometBFT fills a block from the head of its FIFO mempool, so what bounds a lane's share of
//! the blocks under a flood is its share of the bytes waiting: a patients' lane of at most a
//! quarter of a block leaves the members at least three quarters of every block. A node learns
//! the block size (`max_tx_bytes`) from PrepareProposal; until it has proposed once, only the
//! counts apply.
//!
//! Each member has its own lane, bounded twice: by [`MEMBER_QUOTA`] txs and by its equal share
//! of [`MEMBER_BLOCKS`] (two) blocks' bytes. The share is worked out when a tx of the member is
//! checked: the two blocks divided by the number of members with txs pending in this view, the
//! member asking counted whether or not it has any, and never less than an eighth of a block
//! (`max(2 × block / n, block / 8)`). A member alone may hold both blocks and fill every block (a
//! block drains one and the member refills it); beside one other member, one block; beside
//! three others, half a block. Nothing already admitted is dropped: a member over its share
//! (admitted while it was alone) keeps its txs, and each of its next txs is refused until blocks
//! carry enough of them to bring it under.
//!
//! The count alone let one member hold half of a mempool sized at ten blocks (1,024 txs of about
//! 200 bytes), so the other members' txs waited about five blocks behind its flood and met
//! CometBFT's own `mempool is full`, which no lane can answer (issue 23, `bench starve --flood
//! member`). Two blocks' bytes per member, each member's own, stopped that, but the flooder
//! refilled its two blocks the moment a block freed them, so the others' txs still queued two
//! blocks behind it (members at 74 % of what they offered, p50 6 s). The equal share holds a
//! flooding member to half a block while the three others send: the bench passed (97 % and
//! 93 %), where a floor of one block did not (85 %, 80 %). The price: under overload the members'
//! own txs meet their share sooner and are refused (an async sender sees that only when it
//! resends); the overload grid's 900 cell was at 0.84–0.89× its 300 cell with every setting
//! tried (docs/performance.md, "Fair share"). Txs only leave a lane, so the member
//! whose latest tx was admitted j-th had at least j − 1 others pending then: k members together
//! hold at most the sum over j = 1..k of `max(2 × block / j, block / 8)`, 2 + 1 + ⅔ + ½ = 4⅙
//! blocks for four. With the patients' quarter that fits a mempool of ten blocks, so one
//! member's flood takes no other member's place.
//!
//! A tx over its lane's limit is refused with `MEMPOOL_LANE_FULL`; its sender retries after a
//! block. Keys the ledger does not know reach the mempool only with a key recovery that CheckTx
//! found would apply to the committed state (anything else is `UNKNOWN_SIGNER` or the recovery
//! handler's own code), and only into their own lane.
//!
//! Every tx CheckTx admits takes a place here; only the same bytes again (a resend or a
//! recheck) are admitted for free. An ordered tx is tracked with its sequence: once its signer's
//! committed sequence passes it (a block applied another tx at that sequence), it can never be
//! applied, and it is forgotten the next time that signer is checked ([`Lanes::forget_applied`]).
//! A tx also leaves the view when a block carries it (FinalizeBlock), or [`PENDING_TTL_BLOCKS`]
//! blocks after it was admitted: CometBFT can drop an admitted tx without telling the app (when
//! its mempool filled between the app's answer and the insertion), and with `recheck` off the
//! app is never told which txs are still there. This view is node-local and outside consensus.

use std::collections::{BTreeMap, BTreeSet};

use medledger_tx::pb::tx_body::Msg;
use medledger_tx::{limits, Code, TxError};

use crate::domain::members::Signer;

/// Most txs of one member's keys (admin and practitioners) pending in one node's mempool.
pub const MEMBER_QUOTA: u64 = limits::MEMPOOL_MEMBER_QUOTA;
/// Most blocks' worth of bytes one member's keys may have pending in one node's mempool.
pub const MEMBER_BLOCKS: u64 = limits::MEMPOOL_MEMBER_BLOCKS;
/// Most txs of one practitioner pending in one node's mempool.
pub const PRACTITIONER_SIGNER: u64 = limits::MEMPOOL_PRACTITIONER_SIGNER;
/// Most txs of patients pending in one node's mempool (consent changes are rare: a patient
/// signs a few a day).
pub const PATIENT_LANE: u64 = limits::MEMPOOL_PATIENT_LANE;
/// Most txs of one patient pending in one node's mempool.
pub const PATIENT_SIGNER: u64 = limits::MEMPOOL_PATIENT_SIGNER;
/// A patient with fewer txs than this pending has its `RevokeConsent` admitted past a full
/// patients' lane.
pub const PATIENT_RESERVED: u64 = limits::MEMPOOL_PATIENT_RESERVED;
/// Most txs of keys the ledger does not know pending in one node's mempool.
pub const OUTSIDER_LANE: u64 = limits::MEMPOOL_OUTSIDER_LANE;
/// Most txs of one key the ledger does not know pending in one node's mempool.
pub const OUTSIDER_SIGNER: u64 = limits::MEMPOOL_OUTSIDER_SIGNER;
/// Blocks after which an admitted tx no block carried is forgotten (a mempool of ten blocks'
/// worth drains in about ten).
pub const PENDING_TTL_BLOCKS: u64 = 100;
/// Most txs the view tracks; past it, only members' txs are admitted (untracked): the
/// backstop if very many patients each used their reserved allowance.
pub const MAX_TRACKED: usize = 200_000;

/// Who a lane is for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Lane {
    /// One member's admin keys and practitioners (the member's id).
    Member(String),
    /// Patient keys.
    Patients,
    /// Keys the ledger does not know: key recoveries, signed by the new key.
    Outsiders,
}

impl Lane {
    /// Most txs pending in the lane.
    fn max(&self) -> u64 {
        match self {
            Lane::Member(_) => MEMBER_QUOTA,
            Lane::Patients => PATIENT_LANE,
            Lane::Outsiders => OUTSIDER_LANE,
        }
    }

    /// The most bytes the lane may hold pending, in a block of `block` tx bytes: a member two
    /// blocks (enough to fill every block alone), the patients a quarter of one. Outsiders are
    /// bounded by their count ([`OUTSIDER_LANE`] recoveries that would apply).
    fn byte_limit(&self, block: u64) -> Option<u64> {
        match self {
            Lane::Member(_) => Some(block.saturating_mul(MEMBER_BLOCKS)),
            Lane::Patients => Some(block / 4),
            Lane::Outsiders => None,
        }
    }

    fn name(&self) -> String {
        match self {
            Lane::Member(id) => format!("member {id}'s"),
            Lane::Patients => "patients'".into(),
            Lane::Outsiders => "unknown keys'".into(),
        }
    }
}

/// Where one tx queues: its lane, its key's own limit, and whether it may use a patient's
/// reserved allowance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The lane.
    pub lane: Lane,
    /// Most txs of the signing key pending (`None`: only the lane's limit).
    pub signer_max: Option<u64>,
    /// A patient's revocation: admitted past a full lane while the patient has fewer than
    /// [`PATIENT_RESERVED`] txs pending.
    pub reserved: bool,
}

impl Ticket {
    /// The ticket of `msg` signed by `signer`.
    pub fn of(signer: &Signer, msg: &Msg) -> Ticket {
        let (lane, signer_max) = match signer {
            Signer::Member(id) => (Lane::Member(id.clone()), None),
            Signer::Practitioner(p) => {
                (Lane::Member(p.member_id.clone()), Some(PRACTITIONER_SIGNER))
            }
            Signer::Patient(_) => (Lane::Patients, Some(PATIENT_SIGNER)),
            Signer::Unknown => (Lane::Outsiders, Some(OUTSIDER_SIGNER)),
        };
        let reserved = matches!(signer, Signer::Patient(_)) && matches!(msg, Msg::RevokeConsent(_));
        Ticket {
            lane,
            signer_max,
            reserved,
        }
    }
}

struct Pending {
    lane: Lane,
    signer: [u8; 32],
    /// The sequence of an ordered tx (`None`: unordered).
    sequence: Option<u64>,
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
    /// Pending ordered txs by (signer, sequence, hash), to forget those a block made void.
    ordered: BTreeSet<([u8; 32], u64, [u8; 32])>,
    /// A block's tx bytes (`max_tx_bytes`), once PrepareProposal told this node.
    block_bytes: Option<u64>,
}

fn full(message: String) -> TxError {
    TxError::new(Code::MempoolLaneFull, message)
}

impl Lanes {
    /// A block holds `max_tx_bytes` of txs (from PrepareProposal).
    pub fn set_block_bytes(&mut self, max_tx_bytes: u64) {
        self.block_bytes = Some(max_tx_bytes);
    }

    /// Whether tx `hash` is pending in this view.
    pub fn tracks(&self, hash: &[u8; 32]) -> bool {
        self.pending.contains_key(hash)
    }

    /// Admits tx `hash` (`bytes` long, at `sequence` if ordered) of `signer` with `ticket` at
    /// `height` (the next block's), or refuses it with `MEMPOOL_LANE_FULL`. A tx already pending
    /// is admitted again without taking another place.
    pub fn admit(
        &mut self,
        hash: [u8; 32],
        signer: [u8; 32],
        ticket: &Ticket,
        sequence: Option<u64>,
        height: u64,
        bytes: u64,
    ) -> Result<(), TxError> {
        if self.pending.contains_key(&hash) {
            return Ok(());
        }
        let lane = &ticket.lane;
        if self.pending.len() >= MAX_TRACKED {
            return match lane {
                Lane::Member(_) => Ok(()),
                _ => Err(full(
                    "this node tracks as many pending txs as it may; retry after a block".into(),
                )),
            };
        }
        let of_signer = self.per_signer.get(&signer).copied().unwrap_or(0);
        if let Some(max) = ticket.signer_max {
            if of_signer >= max {
                return Err(full(format!(
                    "this key already has {max} txs pending in this node's mempool (the most \
                     one key of the {} lane may); retry after the next block",
                    lane.name()
                )));
            }
        }
        let reserved = ticket.reserved && of_signer < PATIENT_RESERVED;
        if !reserved {
            self.check_lane(lane, bytes)?;
        }
        *self.per_lane.entry(lane.clone()).or_default() += 1;
        *self.lane_bytes.entry(lane.clone()).or_default() += bytes;
        *self.per_signer.entry(signer).or_default() += 1;
        if let Some(s) = sequence {
            self.ordered.insert((signer, s, hash));
        }
        self.pending.insert(
            hash,
            Pending {
                lane: lane.clone(),
                signer,
                sequence,
                admitted_at: height,
                bytes,
            },
        );
        Ok(())
    }

    /// Whether `lane` has room for one more tx of `bytes`.
    fn check_lane(&self, lane: &Lane, bytes: u64) -> Result<(), TxError> {
        let in_lane = self.in_lane(lane);
        if in_lane >= lane.max() {
            return Err(full(format!(
                "the {} lane of this node's mempool is full ({} pending); retry after the next \
                 block",
                lane.name(),
                lane.max()
            )));
        }
        if let Some(max) = self.block_bytes.and_then(|b| self.byte_limit(lane, b)) {
            let held = self.lane_bytes.get(lane).copied().unwrap_or(0);
            if held.saturating_add(bytes) > max {
                return Err(full(format!(
                    "the {} lane of this node's mempool holds its share of the blocks (at most {max} \
                     bytes pending, {held} now); retry after the next block",
                    lane.name()
                )));
            }
        }
        Ok(())
    }

    /// The most bytes `lane` may hold pending now, in a block of `block` tx bytes. The members
    /// share [`MEMBER_BLOCKS`] blocks equally among those with txs pending (this one counted):
    /// a member alone may hold them all (and fill every block), and a member that floods holds
    /// no more than its share once another member sends, so the FIFO mempool puts at most a
    /// share of flood ahead of the others' txs. Never less than an eighth of a block.
    fn byte_limit(&self, lane: &Lane, block: u64) -> Option<u64> {
        let all = lane.byte_limit(block)?;
        let Lane::Member(_) = lane else {
            return Some(all);
        };
        let others = self
            .lane_bytes
            .iter()
            .filter(|(l, b)| matches!(l, Lane::Member(_)) && *l != lane && **b > 0)
            .count() as u64;
        Some((all / (others + 1)).max(block / 8))
    }

    /// A block carried tx `hash`: it leaves the mempool.
    pub fn carried(&mut self, hash: &[u8; 32]) {
        if let Some(p) = self.pending.remove(hash) {
            self.release(&p, hash);
        }
    }

    /// `signer`'s committed next sequence is `next`: its pending ordered txs below it can never
    /// be applied (a block applied another tx at their sequence), so they are forgotten.
    pub fn forget_applied(&mut self, signer: &[u8; 32], next: u64) {
        let void: Vec<[u8; 32]> = self
            .ordered
            .range((*signer, 0, [0; 32])..(*signer, next, [0; 32]))
            .map(|(_, _, h)| *h)
            .collect();
        for h in void {
            self.carried(&h);
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
    pub fn in_lane(&self, lane: &Lane) -> u64 {
        self.per_lane.get(lane).copied().unwrap_or(0)
    }

    fn release(&mut self, p: &Pending, hash: &[u8; 32]) {
        if let Some(n) = self.per_lane.get_mut(&p.lane) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_lane.remove(&p.lane);
            }
        }
        if let Some(n) = self.lane_bytes.get_mut(&p.lane) {
            *n = n.saturating_sub(p.bytes);
            if *n == 0 {
                self.lane_bytes.remove(&p.lane);
            }
        }
        if let Some(n) = self.per_signer.get_mut(&p.signer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_signer.remove(&p.signer);
            }
        }
        if let Some(s) = p.sequence {
            self.ordered.remove(&(p.signer, s, *hash));
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

    fn ticket(lane: Lane, signer_max: Option<u64>) -> Ticket {
        Ticket {
            lane,
            signer_max,
            reserved: false,
        }
    }

    fn patient() -> Ticket {
        ticket(Lane::Patients, Some(PATIENT_SIGNER))
    }

    fn member(id: &str) -> Ticket {
        ticket(Lane::Member(id.into()), None)
    }

    #[test]
    fn a_flood_of_patient_keys_fills_only_the_patient_lane() {
        let mut l = Lanes::default();
        let mut admitted = 0;
        // 100 patients each try 100 txs: each key stops at 16, the lane at 256.
        for p in 0..100u32 {
            for t in 0..100u32 {
                let signer = h(1_000_000 + p);
                if l.admit(h(p * 1000 + t), signer, &patient(), None, 5, 200)
                    .is_ok()
                {
                    admitted += 1;
                }
            }
        }
        assert_eq!(admitted, PATIENT_LANE);
        assert_eq!(l.in_lane(&Lane::Patients), PATIENT_LANE);
        // A member is admitted up to its quota, and another member too.
        for t in 0..MEMBER_QUOTA as u32 {
            l.admit(h(900_000_000 + t), h(7), &member("a"), None, 5, 200)
                .unwrap();
        }
        let over = l.admit(h(800_000_000), h(7), &member("a"), None, 5, 200);
        assert_eq!(over.unwrap_err().code, Code::MempoolLaneFull);
        l.admit(h(800_000_001), h(8), &member("b"), None, 5, 200)
            .unwrap();
        // One patient alone stops at 16.
        let mut one = Lanes::default();
        let refused = (0..20u32)
            .filter(|&t| one.admit(h(t), h(1), &patient(), None, 5, 200).is_err())
            .count();
        assert_eq!(refused, 20 - PATIENT_SIGNER as usize);
        // A resend of a pending tx is admitted again for free.
        assert!(one.admit(h(0), h(1), &patient(), None, 5, 200).is_ok());
    }

    #[test]
    fn a_patient_revocation_passes_a_full_lane_within_its_allowance() {
        let mut l = Lanes::default();
        l.set_block_bytes(40_000);
        let mut t = 0u32;
        for p in 0..100u32 {
            while l.admit(h(t), h(1000 + p), &patient(), None, 5, 200).is_ok() {
                t += 1;
            }
            t += 1;
        }
        let revoke = Ticket {
            reserved: true,
            ..patient()
        };
        assert!(l.admit(h(t), h(5), &patient(), None, 5, 200).is_err());
        for i in 0..PATIENT_RESERVED as u32 {
            l.admit(h(t + 1 + i), h(5), &revoke, None, 5, 200).unwrap();
        }
        let refused = l.admit(h(t + 100), h(5), &revoke, None, 5, 200);
        assert_eq!(refused.unwrap_err().code, Code::MempoolLaneFull);
    }

    #[test]
    fn once_the_block_size_is_known_the_patients_lane_holds_at_most_a_quarter_block() {
        let mut l = Lanes::default();
        l.set_block_bytes(40_000);
        let admitted = (0..100u32)
            .filter(|&p| l.admit(h(p), h(1000 + p), &patient(), None, 5, 200).is_ok())
            .count();
        assert_eq!(admitted, 50, "10,000 bytes of 200-byte txs");
        assert_eq!(
            l.admit(h(500), h(2000), &patient(), None, 5, 200)
                .unwrap_err()
                .code,
            Code::MempoolLaneFull
        );
        l.carried(&h(0));
        l.admit(h(500), h(2000), &patient(), None, 5, 200).unwrap();
        // A member is not held to the patients' quarter: 20,000 bytes of one member's txs.
        for t in 0..100u32 {
            l.admit(h(10_000 + t), h(7), &member("a"), None, 5, 200)
                .unwrap();
        }
    }

    /// Issue 23 (`bench starve --flood member`): by count alone, one member's 1,024 txs held half
    /// of a ten-block mempool and the other members waited behind them. A member's lane now also
    /// stops at two blocks' bytes, and another member's txs are still admitted.
    #[test]
    fn once_the_block_size_is_known_a_members_lane_holds_at_most_two_blocks() {
        let mut l = Lanes::default();
        l.set_block_bytes(40_000);
        // hospital-a floods from its admin key and a practitioner: 80,000 bytes of 200-byte txs.
        let practitioner = ticket(Lane::Member("a".into()), Some(PRACTITIONER_SIGNER));
        let mut admitted = 0u32;
        let mut refused = None;
        for t in 0..MEMBER_QUOTA as u32 {
            let (signer, tk) = if t % 8 == 0 {
                (h(8), &practitioner)
            } else {
                (h(7), &member("a"))
            };
            match l.admit(h(t), signer, tk, None, 5, 200) {
                Ok(()) => admitted += 1,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        assert_eq!(
            admitted, 400,
            "two 40,000-byte blocks, far below the count quota"
        );
        assert_eq!(l.in_lane(&Lane::Member("a".into())), 400);
        let e = refused.expect("the lane stops at two blocks' bytes");
        assert_eq!(e.code, Code::MempoolLaneFull, "{e}");
        // Not even a small tx: the lane is full by bytes, whatever the tx's size.
        let small = l.admit(h(5_000), h(7), &member("a"), None, 5, 1);
        assert_eq!(small.unwrap_err().code, Code::MempoolLaneFull);
        // Other members are admitted: the two blocks are shared equally among the members with
        // txs pending, so b (with a) gets one block, c (with a, b) two thirds of one, d half.
        for (i, (m, share)) in [("b", 200u32), ("c", 133), ("d", 100)].iter().enumerate() {
            let base = 10_000 * (i as u32 + 1);
            for t in 0..*share {
                l.admit(h(base + t), h(20 + i as u32), &member(m), None, 5, 200)
                    .unwrap();
            }
            let over = l.admit(h(base + share), h(20 + i as u32), &member(m), None, 5, 200);
            assert_eq!(over.unwrap_err().code, Code::MempoolLaneFull, "{m}");
        }
        // hospital-a, over its share of four (half a block) now, is refused until blocks carry
        // enough of its txs to bring it under: one carried tx is not enough.
        l.carried(&h(1));
        let e = l
            .admit(h(6_000), h(7), &member("a"), None, 5, 200)
            .unwrap_err();
        assert_eq!(e.code, Code::MempoolLaneFull);
        for t in 2..=301u32 {
            l.carried(&h(t));
        }
        l.admit(h(6_000), h(7), &member("a"), None, 5, 200).unwrap();
        // Before the node learns the block size, only the count quota applies.
        let mut fresh = Lanes::default();
        for t in 0..MEMBER_QUOTA as u32 {
            fresh.admit(h(t), h(7), &member("a"), None, 5, 200).unwrap();
        }
        let over = fresh.admit(h(MEMBER_QUOTA as u32), h(7), &member("a"), None, 5, 200);
        assert_eq!(over.unwrap_err().code, Code::MempoolLaneFull);
    }

    #[test]
    fn a_carried_void_or_stale_tx_frees_its_place() {
        let mut l = Lanes::default();
        for t in 0..PATIENT_SIGNER as u32 {
            l.admit(h(t), h(1), &patient(), Some(3), 10, 200).unwrap();
        }
        assert!(l.admit(h(500), h(1), &patient(), Some(3), 10, 200).is_err());
        l.carried(&h(0));
        l.admit(h(500), h(1), &patient(), Some(4), 11, 200).unwrap();
        assert!(l.admit(h(501), h(1), &patient(), Some(4), 11, 200).is_err());
        // A block applied sequence 3: the other txs at 3 are void and forgotten.
        l.forget_applied(&h(1), 4);
        assert_eq!(l.in_lane(&Lane::Patients), 1);
        l.forget_applied(&h(2), 100); // another key's sequences touch nothing here
        assert_eq!(l.in_lane(&Lane::Patients), 1);
        // Dropped by the mempool without a word: forgotten after the TTL.
        l.expire(11 + PENDING_TTL_BLOCKS);
        assert_eq!(l.in_lane(&Lane::Patients), 1);
        l.expire(12 + PENDING_TTL_BLOCKS);
        assert_eq!(l.in_lane(&Lane::Patients), 0);
        assert!(l.per_signer.is_empty() && l.ordered.is_empty() && l.per_lane.is_empty());
    }
}

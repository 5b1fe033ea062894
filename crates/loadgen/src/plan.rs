//! A phase's txs before they are sent: the [`Plan`] in due order, which connection sends each
//! tx and when, the mix's PRNG, the kvstore plan, and the waves a setup is sent in.

use std::collections::BTreeMap;
use std::time::Duration;

use ed25519_dalek::SigningKey;

use medledger_devnet::localnet::MEMBERS;

use crate::config::LoadConfig;

/// The txs of one phase, in due order.
pub(crate) struct Plan {
    /// The txs, in due order.
    pub(crate) txs: Vec<Planned>,
}

/// One planned tx.
pub(crate) struct Planned {
    /// The signed tx.
    pub(crate) bytes: Vec<u8>,
    /// Which connection sends it.
    pub(crate) conn: usize,
    /// When it is due, from the start of the phase.
    pub(crate) at: Duration,
    /// The ordered signer it depends on (an index unique in the plan), `None` when unordered:
    /// once a tx of that signer is refused where the sender sees it, its later txs (the next
    /// sequences) can only be `SEQUENCE_GAP`, so the sender does not send them.
    pub(crate) ordered: Option<usize>,
}

/// Average size of the planned txs, bytes (0 for an empty plan).
pub(crate) fn average_size(plan: &Plan) -> u64 {
    let total: u64 = plan.txs.iter().map(|t| t.bytes.len() as u64).sum();
    total.checked_div(plan.txs.len() as u64).unwrap_or(0)
}

/// Due time of tx `i` at `rate` tx/s.
pub(crate) fn due(i: u64, rate: u64) -> Duration {
    Duration::from_nanos(i.saturating_mul(1_000_000_000) / rate.max(1))
}

/// splitmix64: a tiny deterministic PRNG, so the mix does not depend on a crate's algorithm.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (n ≥ 1) for picking a mix.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        // u64 → usize is lossless on the 64-bit targets we build for; the modulo keeps it < n.
        (self.next() % (n.max(1) as u64)) as usize
    }
}

/// 64 bits from the operating system's randomness.
pub(crate) fn random_u64() -> anyhow::Result<u64> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(u64::from_le_bytes(b))
}

/// A fresh signing key from the operating system's randomness.
pub(crate) fn random_key() -> anyhow::Result<SigningKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Connection of member `m`: members first, so that with ≥ 4 connections each has its own.
pub(crate) fn member_conn(m: usize, conns: usize) -> usize {
    m % conns.max(1)
}

/// Connection of patient `p`: after the members', so patients fill the other connections first.
pub(crate) fn patient_conn(p: usize, conns: usize) -> usize {
    (p + MEMBERS.len()) % conns.max(1)
}

/// The signer index of patient `p` in [`Planned::ordered`] (members are 0..4).
pub(crate) fn patient_signer(p: usize) -> usize {
    MEMBERS.len() + p
}

/// kvstore txs: unique `key=value` strings of `size` bytes (the kvstore accepts exactly one `=`,
/// neither first nor last).
pub(crate) fn kv_plan(cfg: &LoadConfig, total: u64, size: usize, nonce: u64) -> Plan {
    let txs = (0..total)
        .map(|i| {
            let key = format!("bench{nonce:016x}{i:010}");
            let pad = size.saturating_sub(key.len() + 1).max(1);
            let mut bytes = Vec::with_capacity(key.len() + 1 + pad);
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(b'=');
            bytes.resize(key.len() + 1 + pad, b'x');
            // u64 → usize: total is at most MAX_PLANNED_TXS.
            Planned {
                bytes,
                conn: (i as usize) % cfg.connections.max(1),
                at: due(i, cfg.rate),
                ordered: None,
            }
        })
        .collect();
    Plan { txs }
}

/// Patients' txs per setup wave: 3/4 of a node's patients' lane (`MEMPOOL_LANE_FULL` past
/// it), leaving room for others.
const LANE_WAVE: u64 = medledger_tx::limits::MEMPOOL_PATIENT_LANE * 3 / 4;
/// Txs of one patient per setup wave: what a node admits pending per patient key.
const LANE_SIGNER: u64 = medledger_tx::limits::MEMPOOL_PATIENT_SIGNER;

/// Splits patients' setup txs (in order) into waves that fit the mempool's patients' lane:
/// at most [`LANE_WAVE`] txs and `max_bytes` per wave and [`LANE_SIGNER`] per signer, keeping
/// each signer's txs in order.
pub(crate) fn lane_waves(txs: &[Planned], max_bytes: u64) -> Vec<Vec<Planned>> {
    let mut waves: Vec<Vec<Planned>> = vec![Vec::new()];
    let mut per_signer: BTreeMap<Option<usize>, u64> = BTreeMap::new();
    let mut bytes = 0u64;
    for t in txs {
        let size = t.bytes.len() as u64 + 4;
        let full = waves.last().is_some_and(|w| {
            !w.is_empty() && (w.len() as u64 >= LANE_WAVE || bytes + size > max_bytes)
        }) || per_signer.get(&t.ordered).copied().unwrap_or(0) >= LANE_SIGNER;
        if full {
            waves.push(Vec::new());
            per_signer.clear();
            bytes = 0;
        }
        bytes += size;
        *per_signer.entry(t.ordered).or_default() += 1;
        if let Some(w) = waves.last_mut() {
            w.push(Planned {
                bytes: t.bytes.clone(),
                conn: t.conn,
                at: t.at,
                ordered: t.ordered,
            });
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_txs_have_the_asked_size_and_one_equals_sign() {
        let cfg = LoadConfig {
            rate: 100,
            connections: 3,
            ..LoadConfig::default()
        };
        let plan = kv_plan(&cfg, 10, 180, 7);
        for t in &plan.txs {
            assert_eq!(t.bytes.len(), 180);
            assert_eq!(t.bytes.iter().filter(|&&b| b == b'=').count(), 1);
            assert!(t.conn < 3);
        }
        assert_eq!(plan.txs[9].at, Duration::from_millis(90));
    }

    #[test]
    fn setup_waves_keep_each_signers_order_within_the_lanes_limits() {
        // Three patients with 40 txs each, in sequence order, patient after patient.
        let txs: Vec<Planned> = (0..3)
            .flat_map(|p| {
                (0..40u8).map(move |seq| Planned {
                    bytes: vec![p, seq],
                    conn: p.into(),
                    at: Duration::ZERO,
                    ordered: Some(p.into()),
                })
            })
            .collect();
        let waves = lane_waves(&txs, u64::MAX);
        let flat: Vec<Vec<u8>> = waves.iter().flatten().map(|t| t.bytes.clone()).collect();
        let sent: Vec<Vec<u8>> = txs.iter().map(|t| t.bytes.clone()).collect();
        assert_eq!(flat, sent, "every tx once, in the order given");
        for w in &waves {
            assert!(!w.is_empty() && w.len() as u64 <= LANE_WAVE);
            for p in 0..3 {
                let n = w.iter().filter(|t| t.ordered == Some(p)).count() as u64;
                assert!(n <= LANE_SIGNER, "{n} txs of one patient in a wave");
            }
        }
        // A byte budget splits too: each tx counts its size plus 4 bytes.
        let small = lane_waves(&txs[..10], 12);
        assert_eq!(small.len(), 5);
        assert!(small.iter().all(|w| w.len() == 2));
    }
}

//! A flood from low-priority and unknown keys beside the members' load: `medledger bench
//! starve` (issue 15: members are not starved).
//!
//! The flood is what an attacker with a few patient keys (or none) and RPC access can send that
//! CheckTx cannot refuse by its form: unordered `LogAccess` txs, well formed, fresh nonces, half
//! signed by enrolled patient keys (CheckTx admits them: the signer is known, and whether a
//! patient may log an access is the block's decision, `NOT_AUTHORIZED`, after the tx took
//! block space) and half by keys the ledger does not know (refused by CheckTx,
//! `UNKNOWN_SIGNER`). It is sent with `broadcast_tx_async` over its own connections at a fixed
//! rate, untracked: what matters is the members' committed rate beside it, which the load
//! generator measures as usual. Every block of the run is read afterwards to count the txs that
//! were not the members' (flood and certificates).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use medledger_tx::pb::{self, tx_body::Msg, Purpose, TxBody};
use medledger_tx::{ids, sign_tx};
use serde::Serialize;
use tendermint::block::Height;
use tendermint_rpc::Client as _;

use super::{enrol, http, member_signers, random_key, random_u64, LoadConfig, Target};
use medledger_client::unordered::now_secs;
use medledger_client::Keyring;

/// The flood: rate, connections, duration and how many patient keys it signs with.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// Offered flood, tx/s.
    pub rate: u64,
    /// Its own connections (spread over the nodes).
    pub connections: usize,
    /// How long it floods (the members' load runs as long).
    pub duration: Duration,
    /// Enrolled patient keys signing half the flood.
    pub patients: usize,
}

/// What the flood did.
#[derive(Clone, Debug, Serialize)]
pub struct FloodReport {
    /// Offered flood, tx/s.
    pub offered_tx_per_s: u64,
    /// Patient keys in the flood (the other half: unknown keys).
    pub patient_keys: usize,
    /// Flood txs sent.
    pub sent: u64,
    /// Sent over the sending time, tx/s.
    pub sent_tx_per_s: u64,
    /// RPC refusals by kind (`mempool is full`, …); CheckTx refusals of async sends are unseen.
    pub rpc_refused: BTreeMap<String, u64>,
}

/// A flood ready to send: pre-signed txs, each due at `i / rate`.
pub struct Flood {
    cfg: FloodConfig,
    txs: Vec<Vec<u8>>,
    patient_keys: usize,
}

/// Most flood txs pre-signed.
const MAX_FLOOD_TXS: u64 = 500_000;

impl Flood {
    /// Enrols the flood's patient keys (signed by the members, committed), then pre-signs the
    /// flood. Call it before the members' load sets up: both use the members' sequences.
    pub async fn prepare(
        target: &Target,
        keyring: &Keyring,
        cfg: FloodConfig,
    ) -> anyhow::Result<Flood> {
        anyhow::ensure!(
            cfg.rate > 0 && cfg.connections > 0 && cfg.patients > 0,
            "flood rate, connections and patients must be positive"
        );
        let chain_id = super::chain_id(&target.rpc[0]).await?;
        let mut members = member_signers(target, keyring).await?;
        let patients: Vec<SigningKey> = (0..cfg.patients)
            .map(|_| random_key())
            .collect::<anyhow::Result<_>>()?;
        let enrol_cfg = LoadConfig {
            connections: cfg.connections,
            ..LoadConfig::default()
        };
        enrol(target, &chain_id, &mut members, &patients, &enrol_cfg).await?;
        let ms = u64::try_from(cfg.duration.as_millis()).unwrap_or(u64::MAX);
        let total = cfg.rate.saturating_mul(ms) / 1000;
        anyhow::ensure!(
            total <= MAX_FLOOD_TXS,
            "a flood of {total} txs; the most is {MAX_FLOOD_TXS}"
        );
        let salt = random_u64()?;
        let start = now_secs();
        let mut txs = Vec::new();
        for i in 0..total {
            // Even txs from patient keys, odd from a fresh unknown key.
            // u64 → usize: i < MAX_FLOOD_TXS.
            let (key, target_patient) = if i % 2 == 0 {
                let k = &patients[(i as usize / 2) % patients.len()];
                (k.clone(), ids::patient_id(&k.verifying_key().to_bytes()))
            } else {
                let k = random_key()?;
                let p = ids::patient_id(&k.verifying_key().to_bytes());
                (k, p)
            };
            let msg = Msg::LogAccess(pb::LogAccess {
                patient_id: target_patient,
                record_id: format!("flood-{i}"),
                data_class: "Observation".into(),
                purpose: Purpose::Treat as i32,
                action: 0,
            });
            let mut nonce = salt.to_be_bytes().to_vec();
            nonce.extend_from_slice(&i.to_be_bytes());
            let due = i / cfg.rate;
            let body = TxBody {
                chain_id: chain_id.clone(),
                sequence: 0,
                unordered: Some(pb::Unordered {
                    nonce,
                    valid_until: start + due + super::UNORDERED_VALIDITY_AFTER_DUE_SECS,
                }),
                msg: Some(msg),
            };
            txs.push(sign_tx(&key, &body));
        }
        Ok(Flood {
            patient_keys: patients.len(),
            cfg,
            txs,
        })
    }

    /// Sends the flood from now, each tx at its due time, over its connections.
    pub async fn run(self, target: &Target) -> anyhow::Result<FloodReport> {
        let started = Instant::now();
        let rate = self.cfg.rate;
        let conns = self.cfg.connections;
        let txs = std::sync::Arc::new(self.txs);
        let mut tasks = Vec::new();
        for j in 0..conns {
            let client = http(&target.rpc[(j + 1) % target.rpc.len()])?;
            let txs = txs.clone();
            let deadline = started + self.cfg.duration;
            tasks.push(tokio::spawn(async move {
                let (mut sent, mut refused) = (0u64, BTreeMap::<String, u64>::new());
                for i in (j..txs.len()).step_by(conns) {
                    let due = started + super::due(i as u64, rate);
                    if due >= deadline || Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    let Some(tx) = txs.get(i) else { break };
                    sent += 1;
                    if let Err(e) = client.broadcast_tx_async(tx.clone()).await {
                        *refused
                            .entry(super::rpc_error_kind(&e.to_string()))
                            .or_default() += 1;
                    }
                }
                (sent, refused)
            }));
        }
        let (mut sent, mut rpc_refused) = (0, BTreeMap::new());
        for t in tasks {
            let (s, r) = t.await?;
            sent += s;
            for (k, n) in r {
                *rpc_refused.entry(k).or_default() += n;
            }
        }
        Ok(FloodReport {
            offered_tx_per_s: rate,
            patient_keys: self.patient_keys,
            sent,
            sent_tx_per_s: super::per_second(sent, started.elapsed()),
            rpc_refused,
        })
    }
}

/// Txs in the blocks `from..=to` of the first node, counted from the block headers.
pub async fn txs_in_blocks(target: &Target, from: u64, to: u64) -> anyhow::Result<u64> {
    let c = http(&target.rpc[0])?;
    let mut n = 0;
    for h in from..=to {
        let b = c.block(Height::try_from(h)?).await?;
        n += b.block.data.len() as u64;
    }
    Ok(n)
}

/// The first node's latest height.
pub async fn latest_height(target: &Target) -> anyhow::Result<u64> {
    Ok(http(&target.rpc[0])?
        .status()
        .await?
        .sync_info
        .latest_block_height
        .value())
}

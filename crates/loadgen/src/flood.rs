//! Floods beside the members' load: `medledger bench starve` (issue 15: members are not
//! starved; issue 23: no outsider blocks a revocation, and no member starves another).
//!
//! Each flood is what an attacker can send that CheckTx might not refuse by its form, pre-signed
//! and sent with `broadcast_tx_async` over its own connections at a fixed rate, untracked: what
//! matters is what the victims commit beside it. Every [`SAMPLE_EVERY`]th flood tx is sent with
//! `broadcast_tx_sync` instead, so the report shows what CheckTx answers the flood. The kinds
//! ([`FloodKind`]):
//!
//! - **access**: unordered `LogAccess` txs, well formed, fresh nonces, half signed by enrolled
//!   patient keys (CheckTx admits them: the signer is known, and whether a patient may log an
//!   access is the block's decision, after the tx took block space) and half by keys the ledger
//!   does not know (`UNKNOWN_SIGNER`).
//! - **recovery**: `RecoverPatientKey` txs at sequence 0, each signed by a fresh key (the new key
//!   it names), with no approvals or with approvals that name the victim patient's real
//!   guardians but carry bogus signatures; half for the victim patient (who has guardians), half
//!   for the flood's enrolled patients (who have none). Issue 23's attack #3: they filled the
//!   patients' lane and the patient's revocations were refused `MEMPOOL_LANE_FULL`.
//! - **sequence0**: one key the ledger does not know sends distinct `RecoverPatientKey` bodies
//!   (a bogus approval numbered by the tx), all at sequence 0: issue 23's "600 extra sequence-0
//!   txs admitted", which bypassed the lane limits while `committed ≤ sequence < mempool_next`.
//! - **member**: one member's admin key (the first member, [`FLOODING_MEMBER`]) sends unordered
//!   `LogAccess` txs for the flood's enrolled patients (admitted by CheckTx, refused by the block
//!   for want of a consent, after taking block space) far above its share, while the other
//!   members offer their normal load.
//!
//! With **recovery** and **sequence0** a victim patient (enrolled with the flood's patients,
//! three guardians, threshold 2) also grants and revokes consents during the flood, one
//! `Client::submit` at a time (signed at its committed next sequence, sent with
//! `broadcast_tx_sync`, waited for in a block), as `medledger consent grant` / `revoke` would.
//! Every block of the run is read afterwards to count its txs (and, for the member flood, the
//! flooding member's share).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use medledger_devnet::localnet::MEMBERS;
use medledger_tx::pb::{self, tx_body::Msg, Purpose, TxBody};
use medledger_tx::{ids, sign_tx};
use serde::Serialize;
use tendermint::block::Height;
use tendermint_rpc::Client as _;

use super::{enrol, http, member_signers, random_key, random_u64, LoadConfig, Target};
use medledger_client::unordered::now_secs;
use medledger_client::Keyring;

/// What floods the chain beside the members' load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FloodKind {
    /// Unordered access logs from enrolled patient keys and unknown keys (issue 15).
    #[default]
    Access,
    /// Junk key recoveries from fresh keys (issue 23 #3), beside a victim patient.
    Recovery,
    /// One unknown key's distinct txs at sequence 0 (issue 23 #3), beside a victim patient.
    Sequence0,
    /// One member's admin key far above its share; the other members are the victims.
    Member,
}

/// The member whose admin key sends the member flood.
pub const FLOODING_MEMBER: &str = MEMBERS[0].0;

impl FloodKind {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            FloodKind::Access => "access",
            FloodKind::Recovery => "recovery",
            FloodKind::Sequence0 => "sequence0",
            FloodKind::Member => "member",
        }
    }

    /// Whether a victim patient grants and revokes consents during the flood.
    pub fn patient_victim(self) -> bool {
        matches!(self, FloodKind::Recovery | FloodKind::Sequence0)
    }

    /// The members the flood signs for, left out of the measured load.
    pub fn flooding_members(self) -> &'static [&'static str] {
        match self {
            FloodKind::Member => &[FLOODING_MEMBER],
            _ => &[],
        }
    }

    /// One line on what the flood sends.
    pub fn describe(self) -> &'static str {
        match self {
            FloodKind::Access => {
                "unordered access logs, half from enrolled patient keys, half from unknown keys"
            }
            FloodKind::Recovery => {
                "key recoveries from fresh keys with no or bogus guardian approvals"
            }
            FloodKind::Sequence0 => {
                "distinct key recoveries at sequence 0 from one key the ledger does not know"
            }
            FloodKind::Member => "unordered access logs signed by hospital-a's admin key",
        }
    }
}

/// The flood: kind, rate, connections, duration and how many patient keys it enrols.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// What it sends.
    pub kind: FloodKind,
    /// Offered flood, tx/s.
    pub rate: u64,
    /// Its own connections (spread over the nodes).
    pub connections: usize,
    /// The longest it floods (it is stopped when the measured load ends).
    pub duration: Duration,
    /// Patient keys it enrols: the access flood signs half its txs with them; the recovery
    /// flood and the member flood name them.
    pub patients: usize,
}

/// What the flood did.
#[derive(Clone, Debug, Serialize)]
pub struct FloodReport {
    /// What it sent.
    pub kind: FloodKind,
    /// Offered flood, tx/s.
    pub offered_tx_per_s: u64,
    /// Patient keys the flood enrolled.
    pub patient_keys: usize,
    /// Flood txs sent.
    pub sent: u64,
    /// Sent over the sending time, tx/s.
    pub sent_tx_per_s: u64,
    /// RPC refusals by kind (`mempool is full`, …); CheckTx refusals of async sends are unseen.
    pub rpc_refused: BTreeMap<String, u64>,
    /// One flood tx in this many is sent with `broadcast_tx_sync`.
    pub sampled_every: u64,
    /// CheckTx's answers to those sampled txs, by code (`OK (0)` = admitted to the mempool).
    pub check_sampled: BTreeMap<String, u64>,
}

/// One flood tx in this many is sent with `broadcast_tx_sync`, to see what CheckTx answers.
pub const SAMPLE_EVERY: u64 = 25;

/// A patient who grants and revokes consents during the flood.
pub struct PatientVictim {
    key: SigningKey,
    /// Consents granted at setup, revoked first.
    consents: Vec<String>,
    rpc: String,
}

/// A victim of a flood: what it offered and what committed.
#[derive(Clone, Debug, Serialize)]
pub struct Victim {
    /// Who (a member id, or the victim patient's grants or revocations).
    pub name: String,
    /// Txs it sent.
    pub offered: u64,
    /// Of them, in a block with code 0 (members: by the end of the drain; the patient: within
    /// 30 s of sending, `Client::submit`'s wait).
    pub committed: u64,
    /// `committed / offered`, percent (0 when nothing was offered).
    pub committed_pct: u64,
    /// Why the others did not commit, where the victim saw it (the patient only).
    pub refused: BTreeMap<String, u64>,
    /// Under 90 % ([`super::PLATEAU_PCT`]), or nothing offered.
    pub starved: bool,
}

impl Victim {
    /// A victim with its counts and verdict.
    pub fn new(
        name: String,
        offered: u64,
        committed: u64,
        refused: BTreeMap<String, u64>,
    ) -> Victim {
        let committed_pct = super::ratio_percent(committed, offered).unwrap_or(0);
        Victim {
            name,
            offered,
            committed,
            committed_pct,
            refused,
            starved: offered == 0 || committed_pct < super::PLATEAU_PCT,
        }
    }
}

/// A flood ready to send: pre-signed txs, each due at `i / rate`.
pub struct Flood {
    cfg: FloodConfig,
    txs: Vec<Vec<u8>>,
    patient_keys: usize,
    victim: Option<PatientVictim>,
}

/// Most flood txs pre-signed.
pub const MAX_FLOOD_TXS: u64 = 500_000;
/// Consents the victim patient grants at setup (so revocations never wait for a grant).
const VICTIM_SETUP_CONSENTS: usize = 4;
/// The victim patient's guardians (real keys, whose signatures the flood cannot make).
const VICTIM_GUARDIANS: usize = 3;

/// The keys a flood signs with.
struct FloodKeys {
    chain_id: String,
    /// The flood's enrolled patients.
    patients: Vec<SigningKey>,
    /// The victim patient's id and guardian keys (recovery, sequence0).
    victim: Option<(String, Vec<Vec<u8>>)>,
    /// The flooding member's admin key (member).
    member: Option<SigningKey>,
    /// Random prefix of unordered nonces.
    salt: u64,
    /// Unix second the flood's validity windows count from.
    start: u64,
}

impl Flood {
    /// Enrols the flood's patient keys (and the victim patient, whose guardians are set and who
    /// grants a few consents; all signed and committed), then pre-signs the flood. Call it after
    /// the members' load has set up: both use the members' sequences.
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
        let victim_key = if cfg.kind.patient_victim() {
            Some(random_key()?)
        } else {
            None
        };
        let mut enrolled = patients.clone();
        enrolled.extend(victim_key.clone());
        let enrol_cfg = LoadConfig {
            connections: cfg.connections,
            ..LoadConfig::default()
        };
        enrol(target, &chain_id, &mut members, &enrolled, &enrol_cfg).await?;
        let (victim, victim_keys) = match victim_key {
            Some(key) => {
                let (v, guardians) = setup_victim(target, key).await?;
                let id = ids::patient_id(&v.key.verifying_key().to_bytes());
                (Some(v), Some((id, guardians)))
            }
            None => (None, None),
        };
        let member = match cfg.kind {
            FloodKind::Member => Some(keyring.get(FLOODING_MEMBER)?),
            _ => None,
        };
        let ms = u64::try_from(cfg.duration.as_millis()).unwrap_or(u64::MAX);
        let total = cfg.rate.saturating_mul(ms) / 1000;
        anyhow::ensure!(
            total <= MAX_FLOOD_TXS,
            "a flood of {total} txs; the most is {MAX_FLOOD_TXS}"
        );
        let keys = FloodKeys {
            chain_id,
            patients,
            victim: victim_keys,
            member,
            salt: random_u64()?,
            start: now_secs(),
        };
        let txs = sign_flood(cfg.kind, &keys, total, cfg.rate)?;
        Ok(Flood {
            patient_keys: keys.patients.len(),
            cfg,
            txs,
            victim,
        })
    }

    /// The victim patient, to run beside the flood ([`PatientVictim::run`]); `None` for floods
    /// without one, or once taken.
    pub fn take_victim(&mut self) -> Option<PatientVictim> {
        self.victim.take()
    }

    /// Sends the flood from now, each tx at its due time, over its connections, until its
    /// duration is over or `stop` is set.
    pub async fn run(self, target: Target, stop: Arc<AtomicBool>) -> anyhow::Result<FloodReport> {
        let started = Instant::now();
        let rate = self.cfg.rate;
        let conns = self.cfg.connections;
        let txs = Arc::new(self.txs);
        let mut tasks = Vec::new();
        for j in 0..conns {
            let client = http(&target.rpc[(j + 1) % target.rpc.len()])?;
            let txs = txs.clone();
            let stop = stop.clone();
            let deadline = started + self.cfg.duration;
            tasks.push(tokio::spawn(async move {
                let (mut sent, mut refused) = (0u64, BTreeMap::<String, u64>::new());
                let mut checked = BTreeMap::<String, u64>::new();
                for i in (j..txs.len()).step_by(conns) {
                    let due = started + super::due(i as u64, rate);
                    if due >= deadline || Instant::now() >= deadline {
                        break;
                    }
                    tokio::time::sleep_until(due.into()).await;
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let Some(tx) = txs.get(i) else { break };
                    sent += 1;
                    let answer = if (i as u64).is_multiple_of(SAMPLE_EVERY) {
                        client
                            .broadcast_tx_sync(tx.clone())
                            .await
                            .map(|r| Some(r.code.value()))
                    } else {
                        client.broadcast_tx_async(tx.clone()).await.map(|_| None)
                    };
                    match answer {
                        Ok(Some(code)) => *checked.entry(code_text(code)).or_default() += 1,
                        Ok(None) => {}
                        Err(e) => {
                            *refused
                                .entry(super::rpc_error_kind(&e.to_string()))
                                .or_default() += 1;
                        }
                    }
                }
                (sent, refused, checked)
            }));
        }
        let (mut sent, mut rpc_refused, mut check_sampled) = (0, BTreeMap::new(), BTreeMap::new());
        for t in tasks {
            let (s, r, c) = t.await?;
            sent += s;
            for (k, n) in r {
                *rpc_refused.entry(k).or_default() += n;
            }
            for (k, n) in c {
                *check_sampled.entry(k).or_default() += n;
            }
        }
        Ok(FloodReport {
            kind: self.cfg.kind,
            offered_tx_per_s: rate,
            patient_keys: self.patient_keys,
            sent,
            sent_tx_per_s: super::per_second(sent, started.elapsed()),
            rpc_refused,
            sampled_every: SAMPLE_EVERY,
            check_sampled,
        })
    }
}

/// `OK (0)` or `NAME (code)`.
fn code_text(code: u32) -> String {
    match code {
        0 => "OK (0)".into(),
        c => super::code_name(super::AppKind::Medledger, c),
    }
}

/// The victim patient (enrolled) names three guardians (threshold 2) and grants
/// [`VICTIM_SETUP_CONSENTS`] consents, each committed; answers the victim and the guardians'
/// public keys.
async fn setup_victim(
    target: &Target,
    key: SigningKey,
) -> anyhow::Result<(PatientVictim, Vec<Vec<u8>>)> {
    let rpc = target.rpc[1 % target.rpc.len()].clone();
    let client = medledger_client::Client::new(&rpc)?;
    let guardians: Vec<Vec<u8>> = (0..VICTIM_GUARDIANS)
        .map(|_| random_key().map(|k| k.verifying_key().to_bytes().to_vec()))
        .collect::<anyhow::Result<_>>()?;
    let set = Msg::SetGuardians(pb::SetGuardians {
        guardian_keys: guardians.clone(),
        threshold: 2,
    });
    let r = client.submit(&key, set).await?;
    anyhow::ensure!(
        r.code == 0,
        "the victim patient's SetGuardians: {} {}",
        r.code_name,
        r.log
    );
    let mut consents = Vec::new();
    for k in 0..VICTIM_SETUP_CONSENTS {
        let r = client.submit(&key, victim_grant(k)).await?;
        anyhow::ensure!(
            r.code == 0,
            "the victim patient's GrantConsent: {} {}",
            r.code_name,
            r.log
        );
        consents.push(
            r.attribute("consent_id")
                .map(String::from)
                .ok_or_else(|| anyhow::anyhow!("a grant emitted no consent_id"))?,
        );
    }
    Ok((PatientVictim { key, consents, rpc }, guardians))
}

/// The victim patient's `k`th grant: Observation for treatment, to the members in turn.
fn victim_grant(k: usize) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: MEMBERS[k % MEMBERS.len()].0.into(),
        data_classes: vec!["Observation".into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

impl PatientVictim {
    /// Grants and revokes consents in turn (a revocation whenever a granted consent is left),
    /// one tx every `every` or as soon as the previous one committed, until `stop` is set:
    /// answers the revocations and the grants as two victims.
    pub async fn run(self, every: Duration, stop: Arc<AtomicBool>) -> anyhow::Result<[Victim; 2]> {
        let client = medledger_client::Client::new(&self.rpc)?;
        let mut consents = self.consents;
        // (offered, committed, refused) of revocations, then grants.
        let mut counts: [(u64, u64, BTreeMap<String, u64>); 2] = Default::default();
        let mut k = VICTIM_SETUP_CONSENTS;
        let mut revoke_next = true;
        while !stop.load(Ordering::Acquire) {
            let t0 = Instant::now();
            let revoke = revoke_next && !consents.is_empty();
            let msg = match (revoke, consents.first()) {
                (true, Some(id)) => Msg::RevokeConsent(pb::RevokeConsent {
                    consent_id: id.clone(),
                }),
                _ => {
                    k += 1;
                    victim_grant(k)
                }
            };
            let c = &mut counts[usize::from(!revoke)];
            c.0 += 1;
            match client.submit(&self.key, msg).await {
                Ok(r) if r.code == 0 && r.height > 0 => {
                    c.1 += 1;
                    if revoke {
                        consents.remove(0);
                    } else if let Some(id) = r.attribute("consent_id") {
                        consents.push(id.to_string());
                    }
                }
                Ok(r) => {
                    let at = if r.height == 0 { "check" } else { "deliver" };
                    *c.2.entry(format!("{at}: {} ({})", r.code_name, r.code))
                        .or_default() += 1;
                }
                Err(e) => {
                    let why: String = e.to_string().chars().take(80).collect();
                    *c.2.entry(format!("client: {why}")).or_default() += 1;
                }
            }
            revoke_next = !revoke;
            tokio::time::sleep_until((t0 + every).into()).await;
        }
        let [(ro, rc, rr), (go, gc, gr)] = counts;
        Ok([
            Victim::new("patient: consent revocations".into(), ro, rc, rr),
            Victim::new("patient: consent grants".into(), go, gc, gr),
        ])
    }
}

/// The flood's `total` txs of `kind`, due at `rate` tx/s.
fn sign_flood(
    kind: FloodKind,
    keys: &FloodKeys,
    total: u64,
    rate: u64,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let FloodKeys {
        chain_id,
        patients,
        victim,
        member,
        salt,
        start,
    } = keys;
    anyhow::ensure!(!patients.is_empty(), "the flood needs enrolled patients");
    let patient_id = |i: u64| {
        // u64 → usize: i < MAX_FLOOD_TXS.
        let k = &patients[(i as usize) % patients.len()];
        ids::patient_id(&k.verifying_key().to_bytes())
    };
    let unordered = |i: u64| {
        let mut nonce = salt.to_be_bytes().to_vec();
        nonce.extend_from_slice(&i.to_be_bytes());
        Some(pb::Unordered {
            nonce,
            valid_until: start + i / rate.max(1) + super::UNORDERED_VALIDITY_AFTER_DUE_SECS,
        })
    };
    let body = |msg: Msg, unordered: Option<pb::Unordered>| TxBody {
        chain_id: chain_id.clone(),
        sequence: 0,
        unordered,
        msg: Some(msg),
    };
    let access = |patient_id: String, i: u64| {
        Msg::LogAccess(pb::LogAccess {
            patient_id,
            record_id: format!("flood-{i}"),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            action: 0,
        })
    };
    // A recovery for the victim (even i, bogus approvals naming its real guardians) or for an
    // enrolled patient without guardians (odd i), signed by `key`, the new key it names.
    let recovery = |key: &SigningKey, i: u64, approve: bool| -> Msg {
        let (patient_id, approvals) = match (i % 2, victim) {
            (0, Some((id, guardians))) => {
                let approvals = if approve {
                    guardians
                        .iter()
                        .map(|g| pb::GuardianApproval {
                            guardian_key: g.clone(),
                            signature: bogus_signature(i),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                (id.clone(), approvals)
            }
            _ => (patient_id(i / 2), Vec::new()),
        };
        Msg::RecoverPatientKey(pb::RecoverPatientKey {
            patient_id,
            new_key: key.verifying_key().to_bytes().to_vec(),
            approvals,
        })
    };
    let one_key = random_key()?;
    let mut txs = Vec::new();
    for i in 0..total {
        let tx = match kind {
            FloodKind::Access => {
                // Even txs from patient keys, odd from a fresh unknown key.
                let (key, target) = if i % 2 == 0 {
                    let k = &patients[(i as usize / 2) % patients.len()];
                    (k.clone(), ids::patient_id(&k.verifying_key().to_bytes()))
                } else {
                    let k = random_key()?;
                    let p = ids::patient_id(&k.verifying_key().to_bytes());
                    (k, p)
                };
                sign_tx(&key, &body(access(target, i), unordered(i)))
            }
            FloodKind::Recovery => {
                let key = random_key()?;
                let msg = recovery(&key, i, (i / 2) % 2 == 1);
                sign_tx(&key, &body(msg, None))
            }
            FloodKind::Sequence0 => {
                // Distinct bodies: the approval's bogus signature carries i; with no victim
                // (never here) the patient named varies instead.
                let mut msg = recovery(&one_key, i, true);
                if let Msg::RecoverPatientKey(r) = &mut msg {
                    if r.approvals.is_empty() {
                        r.approvals.push(pb::GuardianApproval {
                            guardian_key: one_key.verifying_key().to_bytes().to_vec(),
                            signature: bogus_signature(i),
                        });
                    }
                }
                sign_tx(&one_key, &body(msg, None))
            }
            FloodKind::Member => {
                let key = member
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the member flood needs the member's key"))?;
                sign_tx(key, &body(access(patient_id(i), i), unordered(i)))
            }
        };
        txs.push(tx);
    }
    Ok(txs)
}

/// 64 bytes that are no one's signature, numbered `i`.
fn bogus_signature(i: u64) -> Vec<u8> {
    let mut s = vec![0x5a; 64];
    s[..8].copy_from_slice(&i.to_be_bytes());
    s
}

/// The txs of the blocks `from..=to` of the first node: how many, and how many per signing key
/// (certificates, which are not signed txs, count in the total only).
pub async fn block_txs(
    target: &Target,
    from: u64,
    to: u64,
) -> anyhow::Result<(u64, BTreeMap<Vec<u8>, u64>)> {
    use prost::Message as _;
    let c = http(&target.rpc[0])?;
    let (mut n, mut by_key) = (0, BTreeMap::<Vec<u8>, u64>::new());
    for h in from..=to {
        let b = c.block(Height::try_from(h)?).await?;
        n += b.block.data.len() as u64;
        for tx in &b.block.data {
            if let Ok(tx) = pb::Tx::decode(tx.as_slice()) {
                if tx.public_key.len() == 32 {
                    *by_key.entry(tx.public_key).or_default() += 1;
                }
            }
        }
    }
    Ok((n, by_key))
}

/// Txs in the blocks `from..=to` of the first node, counted from the block headers.
pub async fn txs_in_blocks(target: &Target, from: u64, to: u64) -> anyhow::Result<u64> {
    Ok(block_txs(target, from, to).await?.0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::collections::BTreeSet;

    fn keys(kind: FloodKind) -> FloodKeys {
        let patients: Vec<SigningKey> = (0..4).map(|_| random_key().expect("key")).collect();
        let victim = kind.patient_victim().then(|| {
            let v = random_key().expect("key");
            let guardians = (0..VICTIM_GUARDIANS)
                .map(|_| {
                    random_key()
                        .expect("key")
                        .verifying_key()
                        .to_bytes()
                        .to_vec()
                })
                .collect();
            (ids::patient_id(&v.verifying_key().to_bytes()), guardians)
        });
        FloodKeys {
            chain_id: "c".into(),
            patients,
            victim,
            member: (kind == FloodKind::Member).then(|| random_key().expect("key")),
            salt: 7,
            start: 1_000,
        }
    }

    fn decoded(tx: &[u8]) -> (pb::Tx, TxBody) {
        let tx = pb::Tx::decode(tx).expect("tx");
        let body = TxBody::decode(tx.body.as_slice()).expect("body");
        (tx, body)
    }

    #[test]
    fn each_flood_kind_signs_distinct_txs_of_its_attack() {
        for kind in [
            FloodKind::Access,
            FloodKind::Recovery,
            FloodKind::Sequence0,
            FloodKind::Member,
        ] {
            let k = keys(kind);
            let txs = sign_flood(kind, &k, 200, 100).expect("flood");
            assert_eq!(txs.len(), 200);
            let hashes: BTreeSet<[u8; 32]> = txs.iter().map(|t| ids::tx_hash(t)).collect();
            assert_eq!(hashes.len(), 200, "{kind:?}: every tx is distinct");
            let mut signers = BTreeSet::new();
            for (i, t) in txs.iter().enumerate() {
                let (tx, body) = decoded(t);
                assert_eq!(body.chain_id, "c");
                assert_eq!(body.sequence, 0, "{kind:?}");
                signers.insert(tx.public_key.clone());
                let of_its_kind = match (kind, &body.msg) {
                    (FloodKind::Access | FloodKind::Member, Some(Msg::LogAccess(_))) => {
                        let u = body.unordered.as_ref().expect("unordered");
                        assert!(
                            u.valid_until - k.start - i as u64 / 100
                                <= medledger_tx::limits::MAX_UNORDERED_VALIDITY_SECS
                        );
                        true
                    }
                    (
                        FloodKind::Recovery | FloodKind::Sequence0,
                        Some(Msg::RecoverPatientKey(r)),
                    ) => {
                        assert!(body.unordered.is_none(), "recoveries are ordered");
                        assert_eq!(r.new_key, tx.public_key, "signed by the key it names");
                        if i % 2 == 0 {
                            let (victim, guardians) = k.victim.as_ref().expect("victim");
                            assert_eq!(&r.patient_id, victim);
                            for a in &r.approvals {
                                assert!(guardians.contains(&a.guardian_key));
                            }
                        }
                        true
                    }
                    _ => false,
                };
                assert!(of_its_kind, "{kind:?} signed {:?}", body.msg);
            }
            match kind {
                // Half from the 4 patients, half from fresh keys.
                FloodKind::Access => assert_eq!(signers.len(), 4 + 100),
                FloodKind::Recovery => assert_eq!(signers.len(), 200, "a fresh key each"),
                FloodKind::Sequence0 => assert_eq!(signers.len(), 1, "one key"),
                FloodKind::Member => {
                    let m = k.member.as_ref().expect("member");
                    assert_eq!(
                        signers,
                        BTreeSet::from([m.verifying_key().to_bytes().to_vec()])
                    );
                }
            }
        }
    }

    #[test]
    fn a_victim_under_ninety_percent_or_with_nothing_offered_is_starved() {
        let v = |o, c| Victim::new("v".into(), o, c, BTreeMap::new());
        assert!(!v(10, 9).starved);
        assert!(v(10, 8).starved);
        assert!(v(0, 0).starved);
        assert_eq!(v(3, 2).committed_pct, 66);
    }
}

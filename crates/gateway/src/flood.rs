//! `medledger bench gateway-flood`: does a flood at one gateway hurt the other members' reads?
//!
//! On a localnet whose members run gateways, a victim (hospital-a's admin key) reads at lab-b's
//! gateway what the pages read, `GET /rpc/abci_query` of a patient's consent count (a proven state
//! read), at a steady rate, alternately with its bearer token and signed (RFC 9421: the signature
//! path and the replay cache the live attack jammed). Three phases of equal length:
//! 1. **unloaded**: the victim alone;
//! 2. **unknown keys**: a flood of signed requests, each from a fresh key no one registered
//!    (issue 23's attack: 100,000 of them made every signed request answer 503 for 5 minutes);
//! 3. **one known key**: a flood of signed requests from one registered patient key.
//!
//! The victim sends from 127.0.0.2 and the flood from 127.0.0.3 (both loopback), as different
//! hosts would: the per-address limit applies to each. The verdict: under each flood the victim's
//! p99 stays within 2× its unloaded p99, and none of its requests fails.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use medledger_client::Client;
use medledger_tx::keys;
use rand_v010::RngExt;
use serde::Serialize;

use crate::bench::{consent_to, enrol_patient, Latency};
use crate::client::{now_secs, sign_headers, GatewayClient};

/// What to run.
#[derive(Clone, Debug)]
pub struct FloodBench {
    /// Seconds per phase.
    pub phase_secs: u64,
    /// Flood requests offered per second (the live attack sent 2,177).
    pub flood_rate: u64,
    /// Concurrent flood connections.
    pub flood_connections: usize,
    /// The victim's requests per second (an EHR's steady reads, well within its key's limit).
    pub victim_rate: u64,
    /// Progress on stderr.
    pub progress: bool,
}

/// One phase's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    /// `unloaded`, `unknown keys`, `one known key`.
    pub name: String,
    /// The victim's latency, every request.
    pub victim: Latency,
    /// The victim's failed requests (must be 0).
    pub victim_errors: usize,
    /// Flood requests sent.
    pub flood_sent: u64,
    /// Flood answers by HTTP status.
    pub flood_statuses: BTreeMap<u16, u64>,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct FloodReport {
    /// The phases, unloaded first.
    pub phases: Vec<Phase>,
    /// Whether every flooded phase kept the victim's p99 within 2× the unloaded one, error-free.
    pub held: bool,
}

impl FloodReport {
    /// The table printed by the CLI.
    pub fn text(&self) -> String {
        let mut s = String::from(
            "phase           victim n  p50 ms     p99 ms     errors  flood sent  flood answers\n",
        );
        for p in &self.phases {
            let statuses: Vec<String> = p
                .flood_statuses
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect();
            s += &format!(
                "{:<15} {:<9} {:<10} {:<10} {:<7} {:<11} {}\n",
                p.name,
                p.victim.n,
                p.victim.p50_ms,
                p.victim.p99_ms,
                p.victim_errors,
                p.flood_sent,
                statuses.join(" ")
            );
        }
        s += if self.held {
            "HELD: under both floods the victim's p99 stayed within 2x its unloaded p99, no errors\n"
        } else {
            "JAMMED: a flood pushed the victim's p99 past 2x its unloaded p99, or a victim request failed\n"
        };
        s
    }
}

fn client_from(ip: Ipv4Addr) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(IpAddr::V4(ip))
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// `method path` with an empty body, signed by `key` (RFC 9421); the status.
async fn signed(
    http: &reqwest::Client,
    method: reqwest::Method,
    gateway: &str,
    path: &str,
    key: &SigningKey,
) -> anyhow::Result<u16> {
    let url = format!("{gateway}{path}");
    let headers = sign_headers(key, method.as_str(), &url, b"", now_secs())?;
    let mut rb = http.request(method, &url);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await?;
    let status = r.status().as_u16();
    let _ = r.bytes().await?;
    Ok(status)
}

/// The victim's loop for one phase: the same proven read, alternately with its bearer token and
/// signed (a token request would retire the victim's older tokens).
async fn victim(
    http: &reqwest::Client,
    gateway: &str,
    key: &SigningKey,
    token: &str,
    read_path: &str,
    rate: u64,
    until: Instant,
) -> (Vec<u128>, usize) {
    let (mut us, mut errors) = (Vec::new(), 0usize);
    let mut i = 0u64;
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < until {
        tick.tick().await;
        let start = Instant::now();
        let ok = if i.is_multiple_of(2) {
            match http
                .get(format!("{gateway}{read_path}"))
                .bearer_auth(token)
                .send()
                .await
            {
                Ok(r) => r.status().as_u16() == 200 && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        } else {
            matches!(
                signed(http, reqwest::Method::GET, gateway, read_path, key).await,
                Ok(200)
            )
        };
        us.push(start.elapsed().as_micros());
        if !ok {
            errors += 1;
        }
        i += 1;
    }
    (us, errors)
}

type Statuses = Arc<Mutex<BTreeMap<u16, u64>>>;

/// A flood at `rate` per second over `connections` tasks until `stop`; `known` signs every
/// request with one key, else each request has a fresh key.
fn flood(
    http: reqwest::Client,
    gateway: String,
    known: Option<SigningKey>,
    rate: u64,
    connections: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<tokio::task::JoinHandle<u64>>, Statuses) {
    let statuses: Statuses = Arc::default();
    let per_task = Duration::from_nanos(
        u64::try_from(connections)
            .unwrap_or(u64::MAX)
            .saturating_mul(1_000_000_000)
            / rate.max(1),
    );
    let tasks = (0..connections)
        .map(|_| {
            let (http, gateway, known, stop, statuses) = (
                http.clone(),
                gateway.clone(),
                known.clone(),
                stop.clone(),
                statuses.clone(),
            );
            tokio::spawn(async move {
                let mut sent = 0u64;
                let mut tick = tokio::time::interval(per_task);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let key = known
                        .clone()
                        .unwrap_or_else(|| SigningKey::from_bytes(&rand_v010::rng().random()));
                    let status =
                        signed(&http, reqwest::Method::POST, &gateway, "/auth/token", &key)
                            .await
                            .unwrap_or(0);
                    sent += 1;
                    if let Ok(mut m) = statuses.lock() {
                        *m.entry(status).or_default() += 1;
                    }
                }
                sent
            })
        })
        .collect();
    (tasks, statuses)
}

/// Runs the benchmark against `gateway` (lab-b's), the victim being `victim_key` (a member
/// admin), with `rpc` a node of the localnet.
pub async fn run(
    rpc: &str,
    gateway: &str,
    victim_member: &str,
    victim_key: &SigningKey,
    cfg: &FloodBench,
) -> anyhow::Result<FloodReport> {
    let say = |m: &str| {
        if cfg.progress {
            eprintln!("bench gateway-flood: {m}");
        }
    };
    let c = Client::new(rpc)?;
    let chain_id = c.chain_id().await?;
    // A patient the victim enrolled (so it may read their history), and a flooding patient key.
    let patient = enrol_patient(&c, &chain_id, victim_member, victim_key).await?;
    let flooder = enrol_patient(&c, &chain_id, victim_member, victim_key).await?;
    consent_to(&c, &patient, victim_member).await?;
    let patient_id = medledger_tx::ids::patient_id(&patient.verifying_key().to_bytes());
    let read_path = format!(
        "/rpc/abci_query?path=%22/store%22&data=0x{}&prove=true",
        hex::encode(keys::patient_consent_count(&patient_id))
    );
    let flood_http = client_from(Ipv4Addr::new(127, 0, 0, 3))?;
    let token = GatewayClient::new(gateway, victim_key.clone())
        .token()
        .await
        .map_err(|e| anyhow::anyhow!("the victim's token: {e}"))?;
    let phase_len = Duration::from_secs(cfg.phase_secs.max(1));
    let mut phases = Vec::new();
    for (name, flooding, known) in [
        ("unloaded", false, None),
        ("unknown keys", true, None),
        ("one known key", true, Some(flooder.clone())),
    ] {
        say(&format!("phase {name}: {} s", phase_len.as_secs()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tasks, statuses) = if flooding {
            flood(
                flood_http.clone(),
                gateway.to_string(),
                known,
                cfg.flood_rate,
                cfg.flood_connections.max(1),
                stop.clone(),
            )
        } else {
            (Vec::new(), Statuses::default())
        };
        if flooding {
            // Let the flood reach its rate first.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // The victim runs on a thread and runtime of its own, so that what it measures is the
        // gateway's answer, not this process's queue of flood tasks.
        let (gw, key, tok, path, rate) = (
            gateway.to_string(),
            victim_key.clone(),
            token.clone(),
            read_path.clone(),
            cfg.victim_rate,
        );
        let until = Instant::now() + phase_len;
        let (us, errors) = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let http = client_from(Ipv4Addr::new(127, 0, 0, 2))?;
            Ok::<_, anyhow::Error>(rt.block_on(victim(&http, &gw, &key, &tok, &path, rate, until)))
        })
        .await??;
        stop.store(true, Ordering::Relaxed);
        let mut sent = 0;
        for t in tasks {
            sent += t.await.unwrap_or(0);
        }
        let flood_statuses = statuses.lock().map(|m| m.clone()).unwrap_or_default();
        phases.push(Phase {
            name: name.to_string(),
            victim: Latency::of(us),
            victim_errors: errors,
            flood_sent: sent,
            flood_statuses,
        });
        // Let the nonces and rate windows of the flood drain before the next phase.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let p99 = |p: &Phase| p.victim.p99_us;
    let base = p99(&phases[0]).max(1);
    let held = phases
        .iter()
        .all(|p| p.victim_errors == 0 && p99(p) <= base.saturating_mul(2));
    Ok(FloodReport { phases, held })
}

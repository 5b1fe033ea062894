//! `medledger bench vault`: what a consented read costs at a gateway.
//!
//! On a localnet whose members run gateways: a patient consents to the reader member, the
//! custodian stores records of a given size, then
//! 1. **sequential reads** by one reader: the end-to-end latency (sign, send, the gateway's
//!    proven checks, the wait for the access's block, release, HPKE + AEAD open at the reader)
//!    and the gateway's own time, which it reports per request in `Server-Timing` (everything
//!    except broadcasting the access and waiting for its block);
//! 2. **concurrent readers**: `readers` practitioners of the reader member, each with its own
//!    key, read at once; every read must succeed.
//!
//! Every read is an unordered `LogAccess` (a nonce instead of a sequence): what a reader signs
//! by default, so nothing here coordinates sequence numbers.
//!
//! Each read is checked byte for byte against what was stored.

use std::time::{Duration, Instant};

use anyhow::Context;
use ed25519_dalek::SigningKey;
use medledger_client::Client;
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, Purpose, TxBody};
use medledger_tx::{keyproof, sign_tx};
use medledger_vault::share::MemberBoxKey;
use rand_v010::RngExt;
use serde::Serialize;

use crate::client::{
    now_secs, open_released, sign_headers, unordered_log_access_tx, GatewayClient,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct VaultBench {
    /// Bytes per record.
    pub record_bytes: usize,
    /// Records stored (reads cycle over them).
    pub records: usize,
    /// Reads by one reader, one after the other.
    pub sequential_reads: usize,
    /// Concurrent readers (practitioners), each reading once per round.
    pub readers: usize,
    /// Rounds of concurrent reads.
    pub rounds: usize,
    /// Progress on stderr.
    pub progress: bool,
}

/// The parties: node RPC, the custodian's and the reader's gateways and keys.
pub struct Parties<'a> {
    /// A node's RPC URL.
    pub rpc: &'a str,
    /// The custodian member id and its admin key, and its gateway URL.
    pub custodian: (&'a str, SigningKey, String),
    /// The reader member id, its admin key, and its box key (to open what is released).
    pub reader: (&'a str, SigningKey, MemberBoxKey),
}

/// Latency percentiles in milliseconds (three decimals).
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50_ms: String,
    /// 99th percentile.
    pub p99_ms: String,
    /// Largest.
    pub max_ms: String,
    /// The 99th percentile in µs (for comparisons).
    #[serde(skip)]
    pub p99_us: u128,
}

impl Latency {
    /// Percentiles of samples in µs (nearest rank).
    pub fn of(mut us: Vec<u128>) -> Latency {
        us.sort_unstable();
        let ms = |v: u128| format!("{}.{:03}", v / 1000, v % 1000);
        let pick = |q: usize| {
            if us.is_empty() {
                0
            } else {
                us[((us.len() * q).div_ceil(100)).clamp(1, us.len()) - 1]
            }
        };
        Latency {
            n: us.len(),
            p50_ms: ms(pick(50)),
            p99_ms: ms(pick(99)),
            max_ms: ms(us.last().copied().unwrap_or(0)),
            p99_us: pick(99),
        }
    }
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct VaultBenchReport {
    /// Bytes per record.
    pub record_bytes: usize,
    /// End-to-end latency of sequential reads.
    pub sequential_end_to_end: Latency,
    /// The gateway's own time per read (Server-Timing `gateway`), sequential reads.
    pub gateway_overhead: Latency,
    /// The same under concurrent readers (queueing for 2 cores included).
    pub gateway_overhead_concurrent: Latency,
    /// The ledger's part (Server-Timing `ledger`: broadcast until committed), over every read.
    pub ledger_wait: Latency,
    /// Concurrent readers in flight at once.
    pub concurrent_readers: usize,
    /// Concurrent reads made (readers × rounds).
    pub concurrent_reads: usize,
    /// Concurrent reads that failed (must be 0).
    pub concurrent_errors: usize,
    /// End-to-end latency under concurrency.
    pub concurrent_end_to_end: Latency,
    /// Concurrent reads per second (wall clock of the rounds).
    pub concurrent_reads_per_s: String,
    /// The first errors seen, if any.
    pub errors: Vec<String>,
}

fn server_timing(h: Option<&str>, name: &str) -> Option<u128> {
    h?.split(',').find_map(|part| {
        let part = part.trim();
        let rest = part.strip_prefix(name)?.strip_prefix(';')?;
        let dur = rest
            .split(';')
            .find_map(|kv| kv.trim().strip_prefix("dur="))?;
        let (whole, frac) = dur.split_once('.').unwrap_or((dur, "0"));
        let frac = format!("{frac:0<3}");
        Some(whole.parse::<u128>().ok()? * 1000 + frac.get(..3)?.parse::<u128>().ok()?)
    })
}

/// One read: (end-to-end µs, gateway µs, ledger µs).
#[allow(clippy::too_many_arguments)]
async fn read_once(
    http: &reqwest::Client,
    gateway: &str,
    key: &SigningKey,
    chain_id: &str,
    patient: &str,
    record: &str,
    box_key: &MemberBoxKey,
    expect: &[u8],
) -> anyhow::Result<(u128, u128, u128)> {
    let start = Instant::now();
    let tx = unordered_log_access_tx(
        key,
        chain_id,
        patient,
        record,
        "Observation",
        Purpose::Treat,
    )?;
    let body = serde_json::to_vec(&crate::api::GetRecord {
        log_access_tx_base64: <base64ct::Base64 as base64ct::Encoding>::encode_string(&tx),
        access_index: None,
    })?;
    let url = format!("{gateway}/records/{record}?purpose=TREAT");
    let headers = sign_headers(key, "GET", &url, &body, now_secs())?;
    let mut rb = http
        .get(&url)
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let r = rb.send().await?;
    let status = r.status().as_u16();
    let timing = r
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = r.bytes().await?;
    anyhow::ensure!(
        status == 200,
        "HTTP {status}: {}",
        String::from_utf8_lossy(&bytes)
    );
    let answer: crate::api::GetRecordAnswer = serde_json::from_slice(&bytes)?;
    let plain = open_released(&answer, box_key, None)?;
    anyhow::ensure!(
        plain == expect,
        "record {record} did not read back byte for byte"
    );
    let total = start.elapsed().as_micros();
    let gw = server_timing(timing.as_deref(), "gateway").context("no Server-Timing gateway")?;
    let ledger = server_timing(timing.as_deref(), "ledger").context("no Server-Timing ledger")?;
    Ok((total, gw, ledger))
}

/// Sends `msgs` signed by `key` at consecutive sequences, then waits until all are committed.
async fn send_all(
    c: &Client,
    key: &SigningKey,
    chain_id: &str,
    msgs: Vec<Msg>,
) -> anyhow::Result<()> {
    let pk = key.verifying_key().to_bytes();
    let first = c.next_sequence(&pk).await?;
    let n = msgs.len() as u64;
    for (i, msg) in (0u64..).zip(msgs) {
        let tx = sign_tx(
            key,
            &TxBody {
                chain_id: chain_id.into(),
                sequence: first + i,
                unordered: None,
                msg: Some(msg),
            },
        );
        use tendermint_rpc::Client as _;
        let r = c.rpc().broadcast_tx_sync(tx).await?;
        anyhow::ensure!(
            r.code.value() == 0,
            "CheckTx refused setup tx {i}: {}",
            r.log
        );
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.next_sequence(&pk).await? < first + n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "setup txs not committed within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A new patient key, enrolled by `member` (signing with its admin key).
pub(crate) async fn enrol_patient(
    c: &Client,
    chain_id: &str,
    member: &str,
    member_key: &SigningKey,
) -> anyhow::Result<SigningKey> {
    let patient = SigningKey::from_bytes(&rand_v010::rng().random());
    let r = c
        .submit(
            member_key,
            Msg::RegisterPatient(keyproof::enrol_patient(&patient, chain_id, member)),
        )
        .await?;
    anyhow::ensure!(r.code == 0, "enrolment refused: {}", r.log);
    Ok(patient)
}

/// `patient` grants `grantee` Observation for TREAT.
pub(crate) async fn consent_to(
    c: &Client,
    patient: &SigningKey,
    grantee: &str,
) -> anyhow::Result<()> {
    let r = c
        .submit(
            patient,
            Msg::GrantConsent(pb::GrantConsent {
                grantee: grantee.to_string(),
                data_classes: vec!["Observation".into()],
                purposes: vec![Purpose::Treat as i32],
                ..Default::default()
            }),
        )
        .await?;
    anyhow::ensure!(r.code == 0, "consent refused: {}", r.log);
    Ok(())
}

/// Runs the benchmark.
pub async fn run(p: Parties<'_>, cfg: &VaultBench) -> anyhow::Result<VaultBenchReport> {
    let c = Client::new(p.rpc)?;
    let chain_id = c.chain_id().await?;
    let (custodian, custodian_key, custodian_gw) = (&p.custodian.0, &p.custodian.1, &p.custodian.2);
    let (reader, reader_key, box_key) = (&p.reader.0, &p.reader.1, &p.reader.2);
    let say = |m: String| {
        if cfg.progress {
            eprintln!("bench vault: {m}");
        }
    };
    // A patient, enrolled by the reader member, consenting to it.
    let patient = enrol_patient(&c, &chain_id, reader, reader_key).await?;
    consent_to(&c, &patient, reader).await?;
    let patient_id = medledger_tx::ids::patient_id(&patient.verifying_key().to_bytes());
    // The reader's practitioners, one key per concurrent reader.
    let practitioners: Vec<SigningKey> = (0..cfg.readers)
        .map(|_| SigningKey::from_bytes(&rand_v010::rng().random()))
        .collect();
    say(format!(
        "registering {} practitioners of {reader}",
        cfg.readers
    ));
    let msgs = practitioners
        .iter()
        .map(|k| {
            Msg::RegisterPractitioner(pb::RegisterPractitioner {
                public_key: k.verifying_key().to_bytes().to_vec(),
                role: PractitionerRole::Physician as i32,
                licence_hash: vec![1; 32],
                valid_until: 0,
                name: String::new(),
                key_proof: keyproof::prove(k, &chain_id, keyproof::REGISTER_PRACTITIONER, reader)
                    .to_vec(),
            })
        })
        .collect();
    send_all(&c, reader_key, &chain_id, msgs).await?;
    // The custodian stores the records.
    say(format!(
        "{custodian} stores {} records of {} bytes",
        cfg.records, cfg.record_bytes
    ));
    let gw = GatewayClient::new(custodian_gw, custodian_key.clone());
    let mut records = Vec::new();
    for i in 0..cfg.records.max(1) {
        let mut content = vec![0u8; cfg.record_bytes];
        rand_v010::rng().fill(&mut content[..]);
        let id = format!("bench-{}-{i}", &patient_id[3..11]);
        gw.put(&id, &patient_id, "Observation", &content)
            .await
            .map_err(|e| anyhow::anyhow!("storing {id}: {e}"))?;
        records.push((id, content));
    }
    let http = reqwest::Client::new();
    let (mut e2e, mut gateway, mut ledger) = (Vec::new(), Vec::new(), Vec::new());
    say(format!("{} sequential reads", cfg.sequential_reads));
    for i in 0..cfg.sequential_reads {
        let (id, content) = &records[i % records.len()];
        let (t, g, l) = read_once(
            &http,
            custodian_gw,
            reader_key,
            &chain_id,
            &patient_id,
            id,
            box_key,
            content,
        )
        .await
        .with_context(|| format!("sequential read {i}"))?;
        e2e.push(t);
        gateway.push(g);
        ledger.push(l);
    }
    say(format!(
        "{} rounds of {} concurrent readers",
        cfg.rounds, cfg.readers
    ));
    let (mut conc, mut errors, mut failed) = (Vec::new(), Vec::new(), 0usize);
    let mut gateway_conc = Vec::new();
    let started = Instant::now();
    for round in 0..cfg.rounds {
        let mut tasks = Vec::new();
        for (j, k) in practitioners.iter().enumerate() {
            let (id, content) = records[(round + j) % records.len()].clone();
            let (http, url, k, chain, pid, bk) = (
                http.clone(),
                custodian_gw.clone(),
                k.clone(),
                chain_id.clone(),
                patient_id.clone(),
                MemberBoxKey::from_secret_bytes(&box_key.secret_bytes())?,
            );
            tasks.push(tokio::spawn(async move {
                read_once(&http, &url, &k, &chain, &pid, &id, &bk, &content).await
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok((t, g, l))) => {
                    conc.push(t);
                    gateway_conc.push(g);
                    ledger.push(l);
                }
                Ok(Err(e)) => {
                    failed += 1;
                    if errors.len() < 5 {
                        errors.push(format!("{e:#}"));
                    }
                }
                Err(e) => {
                    failed += 1;
                    errors.push(e.to_string());
                }
            }
        }
    }
    let wall = started.elapsed().as_millis().max(1);
    let reads = cfg.readers * cfg.rounds;
    let per_s = (reads - failed) as u128 * 1_000_000 / wall;
    Ok(VaultBenchReport {
        record_bytes: cfg.record_bytes,
        sequential_end_to_end: Latency::of(e2e),
        gateway_overhead: Latency::of(gateway),
        gateway_overhead_concurrent: Latency::of(gateway_conc),
        ledger_wait: Latency::of(ledger),
        concurrent_readers: cfg.readers,
        concurrent_reads: reads,
        concurrent_errors: failed,
        concurrent_end_to_end: Latency::of(conc),
        concurrent_reads_per_s: format!("{}.{:03}", per_s / 1000, per_s % 1000),
        errors,
    })
}

impl VaultBenchReport {
    /// The report as text.
    pub fn text(&self) -> String {
        let row = |name: &str, l: &Latency| {
            format!(
                "  {name:<34} n={:<5} p50 {:>9} ms  p99 {:>9} ms  max {:>9} ms\n",
                l.n, l.p50_ms, l.p99_ms, l.max_ms
            )
        };
        let mut s = format!("vault reads of {} byte records\n", self.record_bytes);
        s += &row("end to end, sequential", &self.sequential_end_to_end);
        s += &row("gateway overhead, sequential", &self.gateway_overhead);
        s += &row(
            &format!("gateway overhead, {} concurrent", self.concurrent_readers),
            &self.gateway_overhead_concurrent,
        );
        s += &row("ledger: access broadcast→committed", &self.ledger_wait);
        s += &row(
            &format!("end to end, {} concurrent", self.concurrent_readers),
            &self.concurrent_end_to_end,
        );
        s += &format!(
            "  concurrent: {} reads, {} errors, {} reads/s\n",
            self.concurrent_reads, self.concurrent_errors, self.concurrent_reads_per_s
        );
        for e in &self.errors {
            s += &format!("  error: {e}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_timing_is_read_in_microseconds() {
        let h = crate::records::server_timing(
            Duration::from_micros(512_345),
            Duration::from_micros(500_000),
        );
        assert_eq!(server_timing(Some(&h), "gateway"), Some(12_345));
        assert_eq!(server_timing(Some(&h), "ledger"), Some(500_000));
        assert_eq!(server_timing(Some("x;dur=1"), "ledger"), None);
    }

    #[test]
    fn percentiles_pick_ranks() {
        let l = Latency::of((1..=100).map(|v| v * 1000).collect());
        assert_eq!(
            (l.p50_ms.as_str(), l.p99_ms.as_str(), l.max_ms.as_str()),
            ("50.000", "99.000", "100.000")
        );
    }
}

//! `medledger bench vault`: what a consented read, and a store, cost at a gateway.
//!
//! On a localnet whose members run gateways: a patient consents to the reader member, the
//! custodian stores records of a given size, then
//! 1. **sequential reads** by one reader: the end-to-end latency (sign, send, the gateway's
//!    proven checks, the wait for the access's block, release, the reader's open) and the
//!    gateway's own time, which it reports per request in `Server-Timing` (everything except
//!    broadcasting the access and waiting for its block);
//! 2. **concurrent readers**: `readers` practitioners of the reader member, each with its own
//!    key, read at once; every read must succeed;
//! 3. **one holder down** (threshold custody, when the caller can stop gateways): sequential
//!    reads of the records a stopped holder holds a share of, its gateway then restarted;
//! 4. **puts**: the custodian stores `puts` records of `put_bytes`, `put_concurrency` at a
//!    time; each answers once its anchor is committed and its replicas are handed out.
//!
//! A record under threshold custody (docs/vault.md) is read as a reader reads it,
//! [`read_from_holders`]: the access at the first holder (whose `Server-Timing` is reported),
//! then the other holders' shares at once. A record held whole by its custodian is opened with
//! [`open_released`].
//!
//! Every read is an unordered `LogAccess` (a nonce instead of a sequence): what a reader signs
//! by default, so nothing here coordinates sequence numbers.
//!
//! Each read is checked byte for byte against what was stored.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ed25519_dalek::SigningKey;
use futures::StreamExt;
use medledger_client::Client;
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, Purpose, RecordAnchor, TxBody};
use medledger_tx::{keyproof, keys, sign_tx};
use medledger_vault::share::MemberBoxKey;
use prost::Message;
use rand_v010::RngExt;
use serde::Serialize;

use crate::client::{
    open_released, read_from_holders, unordered_log_access_tx, GatewayClient, HolderEndpoint,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct VaultBench {
    /// Bytes per record.
    pub record_bytes: usize,
    /// Records stored (reads cycle over them).
    pub records: usize,
    /// Reads by one reader, one after the other (also the reads with a holder down).
    pub sequential_reads: usize,
    /// Concurrent readers (practitioners), each reading once per round.
    pub readers: usize,
    /// Rounds of concurrent reads.
    pub rounds: usize,
    /// Records stored in the put phase (0: none).
    pub puts: usize,
    /// Bytes per record of the put phase.
    pub put_bytes: usize,
    /// Puts in flight at once.
    pub put_concurrency: usize,
    /// Progress on stderr.
    pub progress: bool,
}

/// Stops and restarts a member's gateway process (the throwaway localnet's), for the reads
/// with one holder down.
pub trait GatewayProcesses: Sync {
    /// Stops `member`'s gateway (SIGKILL: down, not shutting down politely).
    fn stop(&self, member: &str) -> anyhow::Result<()>;
    /// Starts `member`'s gateway again and waits until it listens.
    fn start(&self, member: &str) -> anyhow::Result<()>;
}

/// The parties: node RPC, the custodian's and the reader's gateways and keys.
pub struct Parties<'a> {
    /// A node's RPC URL.
    pub rpc: &'a str,
    /// The custodian member id and its admin key, and its gateway URL.
    pub custodian: (&'a str, SigningKey, String),
    /// The reader member id, its admin key, and its box key (to open what is released).
    pub reader: (&'a str, SigningKey, MemberBoxKey),
    /// The members' gateway processes (None: the reads with a holder down are skipped).
    pub gateways: Option<&'a dyn GatewayProcesses>,
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

/// `count` per `wall`, with three decimals.
fn per_second(count: usize, wall: Duration) -> String {
    let milli = count as u128 * 1_000_000 / wall.as_millis().max(1);
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct VaultBenchReport {
    /// Bytes per record.
    pub record_bytes: usize,
    /// How the records are held: `threshold t of r holders`, or `whole key at the custodian`.
    pub custody: String,
    /// End-to-end latency of sequential reads.
    pub sequential_end_to_end: Latency,
    /// The gateway's own time per read (Server-Timing `gateway`; under threshold custody the
    /// first holder's, which commits the access), sequential reads.
    pub gateway_overhead: Latency,
    /// The same under concurrent readers (queueing for 2 cores included).
    pub gateway_overhead_concurrent: Latency,
    /// The ledger's part (Server-Timing `ledger`: broadcast until committed), over the
    /// sequential and concurrent reads.
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
    /// Sequential reads with one holder's gateway down (absent: not measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_down: Option<HolderDownReport>,
    /// The put phase (absent: no puts asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub puts: Option<PutReport>,
}

/// Sequential reads while one holder (not the first, which commits the access) is down.
#[derive(Clone, Debug, Serialize)]
pub struct HolderDownReport {
    /// The member whose gateway was stopped.
    pub member: String,
    /// Records read (those it holds a share of).
    pub records: usize,
    /// End-to-end latency.
    pub end_to_end: Latency,
    /// The first holder's own time (Server-Timing `gateway`).
    pub gateway_overhead: Latency,
}

/// Records stored by the custodian's admin key, `in_flight` at a time.
#[derive(Clone, Debug, Serialize)]
pub struct PutReport {
    /// Bytes per record.
    pub record_bytes: usize,
    /// Puts made.
    pub puts: usize,
    /// Puts in flight at once.
    pub in_flight: usize,
    /// Puts that failed (must be 0).
    pub errors: usize,
    /// Latency of each put that succeeded (until its anchor is committed and its replicas are
    /// handed out).
    pub latency: Latency,
    /// Records stored per second (wall clock of the phase).
    pub records_per_s: String,
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

/// A stored record: its anchor, the gateways to read it from (its holders in the anchor's
/// order, or its custodian for a record held whole), and what was stored.
struct Stored {
    anchor: RecordAnchor,
    holders: Vec<HolderEndpoint>,
    content: Vec<u8>,
}

/// One read, timed.
struct Sample {
    /// End to end, µs.
    total: u128,
    /// Server-Timing `gateway` of the gateway that committed the access, µs.
    gateway: u128,
    /// Server-Timing `ledger` of that gateway, µs.
    ledger: u128,
    /// The holders whose shares opened it.
    used: Vec<String>,
}

/// One read of `rec` by `key` (a key of the reader member, whose box key is `box_key`).
async fn read_once(
    key: &SigningKey,
    chain_id: &str,
    rec: &Stored,
    box_key: &MemberBoxKey,
) -> anyhow::Result<Sample> {
    let start = Instant::now();
    let a = &rec.anchor;
    let tx = unordered_log_access_tx(
        key,
        chain_id,
        &a.patient_id,
        &a.record_id,
        &a.resource_type,
        Purpose::Treat,
    )?;
    let (plain, timing, used) = if a.holders.is_empty() {
        let custodian = rec.holders.first().context("no custodian gateway")?;
        let (answer, timing) = GatewayClient::new(&custodian.endpoint, key.clone())
            .get_timed(&a.record_id, Purpose::Treat, &tx)
            .await?;
        let plain = open_released(&answer, box_key, Some(&a.content_hash))?;
        (plain, timing, Vec::new())
    } else {
        let read =
            read_from_holders(key, &rec.holders, a, Purpose::Treat, &tx, box_key, chain_id).await?;
        (read.plaintext, read.server_timing, read.used)
    };
    anyhow::ensure!(
        plain == rec.content,
        "record {} did not read back byte for byte",
        a.record_id
    );
    let total = start.elapsed().as_micros();
    let gateway =
        server_timing(timing.as_deref(), "gateway").context("no Server-Timing gateway")?;
    let ledger = server_timing(timing.as_deref(), "ledger").context("no Server-Timing ledger")?;
    Ok(Sample {
        total,
        gateway,
        ledger,
        used,
    })
}

/// `rec` as stored: its anchor from the ledger and its holders' (or custodian's) registered
/// gateway endpoints, looked up once per member in `endpoints`.
async fn stored(
    c: &Client,
    id: &str,
    content: Vec<u8>,
    endpoints: &mut BTreeMap<String, String>,
) -> anyhow::Result<Stored> {
    let (value, _) = c.query_raw(&keys::record(id), 0).await?;
    let anchor = RecordAnchor::decode(value.context("no anchor")?.as_slice())?;
    let members = if anchor.holders.is_empty() {
        vec![anchor.custodian.clone()]
    } else {
        anchor.holders.clone()
    };
    let mut holders = Vec::new();
    for member in members {
        let endpoint = match endpoints.get(&member) {
            Some(e) => e.clone(),
            None => {
                let (value, _) = c.query_raw(&keys::gateway(&member), 0).await?;
                let value = value.with_context(|| format!("{member} registered no gateway"))?;
                let endpoint = pb::Gateway::decode(value.as_slice())?.endpoint;
                endpoints.insert(member.clone(), endpoint.clone());
                endpoint
            }
        };
        holders.push(HolderEndpoint { member, endpoint });
    }
    Ok(Stored {
        anchor,
        holders,
        content,
    })
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand_v010::rng().fill(&mut v[..]);
    v
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
    let (reader, reader_key) = (&p.reader.0, &p.reader.1);
    let box_key = Arc::new(MemberBoxKey::from_secret_bytes(&p.reader.2.secret_bytes())?);
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
    let tag = &patient_id[3..11];
    let mut endpoints = BTreeMap::new();
    let mut records = Vec::new();
    for i in 0..cfg.records.max(1) {
        let content = random_bytes(cfg.record_bytes);
        let id = format!("bench-{tag}-{i}");
        gw.put(&id, &patient_id, "Observation", &content)
            .await
            .map_err(|e| anyhow::anyhow!("storing {id}: {e}"))?;
        records.push(stored(&c, &id, content, &mut endpoints).await?);
    }
    let records = Arc::new(records);
    let custody = match &records[0].anchor {
        a if a.holders.is_empty() => "whole key at the custodian".to_string(),
        a => format!("threshold {} of {} holders", a.threshold, a.holders.len()),
    };
    say(format!("records held: {custody}"));
    let (mut e2e, mut gateway, mut ledger) = (Vec::new(), Vec::new(), Vec::new());
    say(format!("{} sequential reads", cfg.sequential_reads));
    for i in 0..cfg.sequential_reads {
        let s = read_once(reader_key, &chain_id, &records[i % records.len()], &box_key)
            .await
            .with_context(|| format!("sequential read {i}"))?;
        e2e.push(s.total);
        gateway.push(s.gateway);
        ledger.push(s.ledger);
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
            let (records, k, chain, bk) = (
                records.clone(),
                k.clone(),
                chain_id.clone(),
                box_key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                read_once(&k, &chain, &records[(round + j) % records.len()], &bk).await
            }));
        }
        for t in tasks {
            match t.await {
                Ok(Ok(s)) => {
                    conc.push(s.total);
                    gateway_conc.push(s.gateway);
                    ledger.push(s.ledger);
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
    let reads = cfg.readers * cfg.rounds;
    let concurrent_reads_per_s = per_second(reads - failed, started.elapsed());
    let holder_down = match p.gateways {
        Some(procs) => {
            reads_with_holder_down(procs, reader_key, &chain_id, &records, &box_key, cfg, &say)
                .await?
        }
        None => None,
    };
    let puts = if cfg.puts == 0 {
        None
    } else {
        say(format!(
            "{custodian} stores {} records of {} bytes, {} at a time",
            cfg.puts, cfg.put_bytes, cfg.put_concurrency
        ));
        let report = put_phase(&gw, &patient_id, tag, cfg).await;
        errors.extend(report.1);
        Some(report.0)
    };
    Ok(VaultBenchReport {
        record_bytes: cfg.record_bytes,
        custody,
        sequential_end_to_end: Latency::of(e2e),
        gateway_overhead: Latency::of(gateway),
        gateway_overhead_concurrent: Latency::of(gateway_conc),
        ledger_wait: Latency::of(ledger),
        concurrent_readers: cfg.readers,
        concurrent_reads: reads,
        concurrent_errors: failed,
        concurrent_end_to_end: Latency::of(conc),
        concurrent_reads_per_s,
        errors,
        holder_down,
        puts,
    })
}

/// Sequential reads with one holder's gateway stopped ([`holder_to_stop`]); only the records
/// it holds a share of are read. Its gateway is started again afterwards, whatever the reads did. None for records
/// held whole.
async fn reads_with_holder_down(
    procs: &dyn GatewayProcesses,
    key: &SigningKey,
    chain_id: &str,
    records: &[Stored],
    box_key: &MemberBoxKey,
    cfg: &VaultBench,
    say: &dyn Fn(String),
) -> anyhow::Result<Option<HolderDownReport>> {
    let Some(member) = holder_to_stop(records.iter().map(|r| &r.anchor)) else {
        return Ok(None);
    };
    let affected: Vec<&Stored> = records
        .iter()
        .filter(|r| r.anchor.holders.iter().skip(1).any(|m| *m == member))
        .collect();
    say(format!(
        "{} sequential reads of the {} records {member} holds a share of, its gateway down",
        cfg.sequential_reads,
        affected.len()
    ));
    procs.stop(&member)?;
    let mut samples = Vec::new();
    let mut failure = None;
    for i in 0..cfg.sequential_reads {
        match read_once(key, chain_id, affected[i % affected.len()], box_key).await {
            Ok(s) if s.used.contains(&member) => {
                failure = Some(anyhow::anyhow!(
                    "read {i} used the stopped {member}'s share"
                ));
                break;
            }
            Ok(s) => samples.push(s),
            Err(e) => {
                failure = Some(e.context(format!("read {i} with {member}'s gateway down")));
                break;
            }
        }
    }
    say(format!("starting {member}'s gateway again"));
    procs.start(&member)?;
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Some(HolderDownReport {
        records: affected.len(),
        end_to_end: Latency::of(samples.iter().map(|s| s.total).collect()),
        gateway_overhead: Latency::of(samples.iter().map(|s| s.gateway).collect()),
        member,
    }))
}

/// The holder to stop: the member that holds a share, as holder 2 or later (the first
/// commits the access), of the most records; among equals, the first by name.
fn holder_to_stop<'a>(anchors: impl Iterator<Item = &'a RecordAnchor>) -> Option<String> {
    let mut held: BTreeMap<&str, usize> = BTreeMap::new();
    for a in anchors {
        for m in a.holders.iter().skip(1) {
            *held.entry(m.as_str()).or_default() += 1;
        }
    }
    held.into_iter()
        .max_by_key(|&(m, n)| (n, std::cmp::Reverse(m)))
        .map(|(m, _)| m.to_string())
}

/// The put phase: `cfg.puts` new records of `cfg.put_bytes`, `cfg.put_concurrency` in
/// flight; the report and the first errors.
async fn put_phase(
    gw: &GatewayClient,
    patient_id: &str,
    tag: &str,
    cfg: &VaultBench,
) -> (PutReport, Vec<String>) {
    let in_flight = cfg.put_concurrency.max(1);
    let contents: Vec<Vec<u8>> = (0..cfg.puts).map(|_| random_bytes(cfg.put_bytes)).collect();
    let started = Instant::now();
    let results: Vec<Result<u128, String>> = futures::stream::iter(contents.iter().enumerate())
        .map(|(i, content)| async move {
            let id = format!("bench-put-{tag}-{i}");
            let t = Instant::now();
            match gw.put(&id, patient_id, "Observation", content).await {
                Ok(_) => Ok(t.elapsed().as_micros()),
                Err(e) => Err(format!("storing {id}: {e}")),
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let wall = started.elapsed();
    let (mut latency, mut errors, mut failed) = (Vec::new(), Vec::new(), 0);
    for r in results {
        match r {
            Ok(us) => latency.push(us),
            Err(e) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(e);
                }
            }
        }
    }
    let report = PutReport {
        record_bytes: cfg.put_bytes,
        puts: cfg.puts,
        in_flight,
        errors: failed,
        records_per_s: per_second(latency.len(), wall),
        latency: Latency::of(latency),
    };
    (report, errors)
}

impl VaultBenchReport {
    /// Whether any concurrent read or put failed.
    pub fn failed(&self) -> bool {
        self.concurrent_errors != 0 || self.puts.as_ref().is_some_and(|p| p.errors != 0)
    }

    /// The report as text.
    pub fn text(&self) -> String {
        let row = |name: &str, l: &Latency| {
            format!(
                "  {name:<40} n={:<5} p50 {:>9} ms  p99 {:>9} ms  max {:>9} ms\n",
                l.n, l.p50_ms, l.p99_ms, l.max_ms
            )
        };
        let mut s = format!(
            "vault reads of {} byte records ({})\n",
            self.record_bytes, self.custody
        );
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
        if let Some(d) = &self.holder_down {
            s += &row(
                &format!("end to end, sequential, {} down", d.member),
                &d.end_to_end,
            );
            s += &row(
                &format!("gateway overhead, {} down", d.member),
                &d.gateway_overhead,
            );
        }
        if let Some(p) = &self.puts {
            s += &row(
                &format!("put {} bytes, {} in flight", p.record_bytes, p.in_flight),
                &p.latency,
            );
            s += &format!(
                "  puts: {} records, {} errors, {} records/s\n",
                p.puts, p.errors, p.records_per_s
            );
        }
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
    fn the_holder_stopped_is_a_later_holder_of_the_most_records() {
        let anchor = |holders: &[&str]| RecordAnchor {
            holders: holders.iter().map(|h| h.to_string()).collect(),
            ..Default::default()
        };
        let anchors = [
            anchor(&["lab-b", "insurer-c", "hospital-d"]),
            anchor(&["lab-b", "hospital-a", "insurer-c"]),
            anchor(&["lab-b", "hospital-a", "hospital-d"]),
            anchor(&["hospital-d", "lab-b", "hospital-a"]),
        ];
        // hospital-a and hospital-d are later holders of 3 and 2; the first holder never counts.
        assert_eq!(
            holder_to_stop(anchors.iter()).as_deref(),
            Some("hospital-a")
        );
        // Equal counts: the first by name.
        assert_eq!(
            holder_to_stop(anchors[..1].iter()).as_deref(),
            Some("hospital-d")
        );
        // Records held whole: nobody to stop.
        assert_eq!(holder_to_stop([anchor(&[])].iter()), None);
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

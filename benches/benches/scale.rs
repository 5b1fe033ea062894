//! The state machine on a big state: FinalizeBlock + Commit of blocks of 100 / 1,000 / 5,000
//! txs, proof generation, verification (of the ICS23 proof, and expanding the compact form then
//! verifying) and size (compact and ICS23), with 1M or 10M keys already in the tree.
//!
//! ```sh
//! cargo bench -p medledger-benches --bench scale                       # 1M keys
//! MEDLEDGER_BENCH_KEYS=10000000 cargo bench -p medledger-benches --bench scale
//! ```
//!
//! The filled store is built once per size in `$MEDLEDGER_BENCH_DIR` (default
//! `~/.cache/medledger/bench-state/<keys>`) and reused: filling 10M keys takes minutes. Filler
//! keys are written straight into the store, 100,000 per version, each with a 64-byte value
//! (about the size of a consent or an access event); then the ledger is opened on it and real
//! signed txs go through CheckTx, FinalizeBlock and Commit as on a validator. Under `cargo test`
//! (criterion's test mode) the size is 10,000 keys so that CI only checks the bench runs.

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use medledger_state::store::WriteSet;
use medledger_state::{Ledger, Store};
use medledger_tx::keys;
use prost::Message;

mod support;

const CHAIN: &str = "bench-chain";
const FILL_PER_VERSION: u64 = 100_000;

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn key_count() -> u64 {
    if !benchmarking() {
        return 10_000;
    }
    std::env::var("MEDLEDGER_BENCH_KEYS")
        .ok()
        .map(|v| v.parse().expect("MEDLEDGER_BENCH_KEYS is a number"))
        .unwrap_or(1_000_000)
}

fn fixture_dir(n: u64) -> PathBuf {
    let base = std::env::var_os("MEDLEDGER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/medledger/bench-state")
        });
    // "-members": stores filled since patients are enrolled by members (the genesis has the
    // bench members); older fixtures are rebuilt.
    base.join(format!("{n}-members"))
}

/// A store with the genesis and `n` filler keys, built once.
fn filled(n: u64) -> PathBuf {
    let dir = fixture_dir(n);
    let done = dir.join("FILLED");
    if done.exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    {
        let mut l = Ledger::open(&dir).unwrap();
        l.init_chain(CHAIN, 1, &support::genesis(), &[]).unwrap();
    }
    let mut store = Store::open(&dir).unwrap();
    let mut next = 0u64;
    // On stderr with a rate and an ETA, drawn only on a terminal (10M keys take minutes).
    let bar = indicatif::ProgressBar::new(n).with_style(
        indicatif::ProgressStyle::with_template(
            "fill {bar:30} {pos}/{len} keys, {per_sec}, {eta} left",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    while next < n {
        let end = (next + FILL_PER_VERSION).min(n);
        let writes: WriteSet = (next..end)
            .map(|i| {
                let mut v = vec![0u8; 64];
                v[..8].copy_from_slice(&i.to_le_bytes());
                (format!("bench/fill/{i}").into_bytes(), Some(v))
            })
            .collect();
        let version = store.committed().map_or(0, |c| c.height + 1);
        let staged = store.stage(version, &writes).unwrap();
        store.commit(staged).unwrap();
        next = end;
        bar.set_position(next);
    }
    bar.finish_and_clear();
    eprintln!(
        "filled {n} keys in {:.1?} ({} versions)",
        started.elapsed(),
        n.div_ceil(FILL_PER_VERSION)
    );
    std::fs::write(&done, b"").unwrap();
    dir
}

fn finalize_at_scale(c: &mut Criterion) {
    let n = key_count();
    let dir = filled(n);
    let mut ledger = Ledger::open(&dir).unwrap();
    // Each run of the bench starts its salts past the last run's, so keys are always fresh.
    let mut salt = ledger.info().map_or(0, |c| c.height) * 1_000_000;
    let mut g = c.benchmark_group(format!("finalize_block+commit with {n} keys"));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for size in [100usize, 1000, 5000] {
        g.throughput(Throughput::Elements(size as u64));
        g.bench_function(
            format!("{size} RegisterPatient txs (members enrol), signatures cached by CheckTx"),
            |b| {
                // Setup (signing, CheckTx) is outside the timed part.
                let mut split = (Duration::ZERO, Duration::ZERO, 0u32);
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        salt += 1;
                        let txs = support::enrol_txs(&ledger, CHAIN, size, salt);
                        for tx in &txs {
                            ledger.check_tx(tx).unwrap();
                        }
                        let height = ledger.info().map_or(0, |c| c.height) + 1;
                        let started = Instant::now();
                        let r = ledger.finalize_block(height, 1_700_000_000, &txs).unwrap();
                        let finalized = started.elapsed();
                        ledger.commit().unwrap();
                        timed += started.elapsed();
                        split.0 += finalized;
                        split.1 += started.elapsed() - finalized;
                        split.2 += 1;
                        assert!(r.tx_results.iter().all(|t| t.code == 0));
                    }
                    timed
                });
                if split.2 > 0 {
                    eprintln!(
                        "  {size} txs: FinalizeBlock {:.1?} + Commit {:.1?} on average",
                        split.0 / split.2,
                        split.1 / split.2
                    );
                }
            },
        );
    }
    g.finish();

    // Proofs: of a filler key (present) and of a key never written (absent), at the last height.
    let store = ledger.store();
    let version = store.committed().unwrap().height;
    let root = store.root_at(version).unwrap();
    let present = format!("bench/fill/{}", n / 2).into_bytes();
    let absent = keys::consent("c-never");
    let mut g = c.benchmark_group(format!("proofs with {n} keys"));
    for (name, key) in [("present", &present), ("absent", &absent)] {
        let (value, proof) = store.prove(key, version).unwrap();
        let compact = medledger_query::compact::encode(&proof).unwrap();
        eprintln!(
            "proof of a {name} key at {n} keys: {} bytes compact ({}), {} bytes protobuf-encoded ICS23 CommitmentProof ({}), {} tree levels",
            compact.len(),
            medledger_query::PROOF_OP_TYPE,
            proof.encode_to_vec().len(),
            medledger_query::ICS23_PROOF_OP_TYPE,
            levels(&proof)
        );
        g.bench_function(format!("generate ({name})"), |b| {
            b.iter(|| store.prove(key, version).unwrap())
        });
        g.bench_function(format!("verify ({name})"), |b| {
            b.iter(|| medledger_query::verify(&root, key, value.as_deref(), &proof).unwrap())
        });
        // What a client does with an answer: expand the compact bytes, then verify.
        g.bench_function(format!("expand + verify ({name})"), |b| {
            b.iter(|| {
                let p = medledger_query::decode_proof(
                    medledger_query::PROOF_OP_TYPE,
                    &compact,
                    key,
                    value.as_deref(),
                )
                .unwrap();
                medledger_query::verify(&root, key, value.as_deref(), &p).unwrap()
            })
        });
    }
    g.finish();
    eprintln!(
        "memory of this process (a node's app with the store open): {}",
        memory()
    );
}

/// Inner ops (tree levels) of the existence proof(s) in `proof`.
fn levels(proof: &ics23::CommitmentProof) -> String {
    use ics23::commitment_proof::Proof;
    match &proof.proof {
        Some(Proof::Exist(e)) => e.path.len().to_string(),
        Some(Proof::Nonexist(n)) => format!(
            "{} + {} (the two neighbours)",
            n.left.as_ref().map_or(0, |e| e.path.len()),
            n.right.as_ref().map_or(0, |e| e.path.len())
        ),
        _ => "?".into(),
    }
}

/// VmRSS and VmHWM of this process.
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmRSS") || l.starts_with("VmHWM"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

criterion_group!(benches, finalize_at_scale);
criterion_main!(benches);

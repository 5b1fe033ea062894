//! Micro-benchmarks of the state machine: signature checks, and FinalizeBlock + Commit of a
//! block of txs on RocksDB.
//!
//! `cargo bench -p medledger-benches` (numbers in docs/performance.md once measured).

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use medledger_state::Ledger;
use medledger_tx::envelope::decode_and_verify;

mod support;

const CHAIN: &str = "bench-chain";

/// A ledger at genesis with the bench members.
fn fresh() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(dir.path()).unwrap();
    l.init_chain(CHAIN, 1, &support::genesis(), &[]).unwrap();
    (dir, l)
}

fn verify(c: &mut Criterion) {
    let (_d, l) = fresh();
    let txs = support::enrol_txs(&l, CHAIN, 1, 1);
    c.bench_function("decode_and_verify one tx", |b| {
        b.iter(|| decode_and_verify(&txs[0]).unwrap())
    });
}

/// A fresh ledger at genesis with `n` signed txs, their signatures checked by CheckTx first when
/// `check_first` (what a validator does; FinalizeBlock then finds them in the cache).
fn setup(n: usize, check_first: bool) -> (tempfile::TempDir, Ledger, Vec<Vec<u8>>) {
    let (dir, mut l) = fresh();
    let txs = support::enrol_txs(&l, CHAIN, n, 2);
    if check_first {
        for tx in &txs {
            l.check_tx(tx).unwrap();
        }
    }
    (dir, l, txs)
}

fn finalize_and_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("finalize_block+commit");
    g.sample_size(10);
    for (n, check_first) in [(100usize, false), (1000, false), (1000, true)] {
        g.throughput(Throughput::Elements(n as u64));
        let name = if check_first {
            format!("{n} RegisterPatient txs (members enrol), signatures cached by CheckTx")
        } else {
            format!("{n} RegisterPatient txs (members enrol)")
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || setup(n, check_first),
                |(dir, mut l, txs)| {
                    let r = l.finalize_block(1, 1_700_000_000, &txs).unwrap();
                    assert!(r.tx_results.iter().all(|t| t.code == 0));
                    l.commit().unwrap();
                    (dir, l)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, verify, finalize_and_commit);
criterion_main!(benches);

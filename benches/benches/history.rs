//! One proof for a whole access history (issue 28): the bytes and the verification time of a
//! patient's complete history of 10, 100 and 1,000 events, proven event by event (the count and
//! one proof per event) or with one proof of the history's digest (`medledger_tx::digest`) and
//! the events without proofs.
//!
//! ```sh
//! cargo bench -p medledger-benches --bench history            # 1M filler keys
//! MEDLEDGER_BENCH_HISTORY_KEYS=100000 cargo bench -p medledger-benches --bench history
//! ```
//!
//! The filler keys put the history's keys at a realistic depth in the tree (about 20 levels at
//! 1M keys). Sizes are printed once per history; under `cargo test` (criterion's test mode) the
//! store has 10,000 filler keys so that CI only checks the bench runs.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use medledger_query::compact;
use medledger_query::history::{verify_access_digest, verify_access_history, ProvenRead};
use medledger_state::store::WriteSet;
use medledger_state::view::Overlay;
use medledger_state::{lists, Store};
use medledger_tx::keys::{self, List};
use medledger_tx::pb::{AccessEvent, Action, Purpose};
use prost::Message;

const FILL_PER_VERSION: u64 = 100_000;
const SIZES: [u64; 3] = [10, 100, 1_000];

/// The patient whose history has `n` events.
fn patient(n: u64) -> String {
    format!("pt-5f2b9c1d0e7a4b3c8d6e1f0a2b3c{n:04}")
}

fn filler_keys() -> u64 {
    if !std::env::args().any(|a| a == "--bench") {
        return 10_000;
    }
    std::env::var("MEDLEDGER_BENCH_HISTORY_KEYS")
        .ok()
        .map(|v| v.parse().expect("MEDLEDGER_BENCH_HISTORY_KEYS is a number"))
        .unwrap_or(1_000_000)
}

/// An access event as a hospital logs it (the fields a real one fills).
fn event(patient: &str, i: u64) -> Vec<u8> {
    AccessEvent {
        patient_id: patient.into(),
        index: i,
        actor: "hospital-a".into(),
        record_id: format!("obs-{i}"),
        data_class: "Observation".into(),
        purpose: Purpose::Treat as i32,
        consent_id: "c-17".into(),
        height: 1_000 + i,
        time: 1_765_000_000 + i,
        action: Action::Read as i32,
        practitioner: "did:medledger:3f9a0c4b2e1d8f7a6b5c4d3e2f1a0b9c".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

/// A store with `fill` filler keys and, at the last version, one patient per size with a
/// history of that many events.
fn store_with_histories(dir: &std::path::Path, fill: u64) -> (Store, u64) {
    let mut store = Store::open(dir).unwrap();
    let mut next = 0;
    while next < fill {
        let end = (next + FILL_PER_VERSION).min(fill);
        let writes: WriteSet = (next..end)
            .map(|i| (format!("bench/fill/{i}").into_bytes(), Some(vec![7u8; 64])))
            .collect();
        let version = store.committed().map_or(0, |c| c.height + 1);
        let staged = store.stage(version, &writes).unwrap();
        store.commit(staged).unwrap();
        next = end;
    }
    let writes = {
        let mut st = Overlay::new(&store);
        for n in SIZES {
            let p = patient(n);
            for i in 0..n {
                lists::push(&mut st, &List::Access(&p), event(&p, i)).unwrap();
            }
        }
        st.into_writes()
    };
    let version = store.committed().map_or(0, |c| c.height + 1);
    let staged = store.stage(version, &writes).unwrap();
    store.commit(staged).unwrap();
    (store, version)
}

fn read(store: &Store, key: Vec<u8>, version: u64) -> ProvenRead {
    let (value, proof) = store.prove(&key, version).unwrap();
    ProvenRead { key, value, proof }
}

fn proof_bytes(r: &ProvenRead) -> usize {
    compact::encode(&r.proof).unwrap().len()
}

fn histories(c: &mut Criterion) {
    let fill = filler_keys();
    let mut g = c.benchmark_group(format!(
        "verify a complete access history ({fill} filler keys)"
    ));
    g.sample_size(20);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (store, version) = store_with_histories(dir.path(), fill);
    eprintln!(
        "store of {fill} filler keys built in {:.1?}",
        started.elapsed()
    );
    for n in SIZES {
        let p = patient(n);
        let patient = p.as_str();
        let app_hash = store.root_at(version).unwrap().to_vec();
        let count = read(&store, keys::access_count(patient), version);
        let events: Vec<ProvenRead> = (0..n)
            .map(|i| read(&store, keys::access_event(patient, i), version))
            .collect();
        let digest = read(&store, keys::access_digest(patient), version);
        let values: Vec<Vec<u8>> = events.iter().map(|e| e.value.clone().unwrap()).collect();
        let value_bytes: usize = values.iter().map(Vec::len).sum();
        let per_event: usize = proof_bytes(&count) + events.iter().map(proof_bytes).sum::<usize>();
        eprintln!(
            "{n} events: values {value_bytes} B; proofs event by event {per_event} B (count + {n} \
             proofs), with the digest {} B (one proof) + 40 B digest",
            proof_bytes(&digest),
        );
        assert_eq!(
            verify_access_history(&app_hash, patient, &count, &events)
                .unwrap()
                .len() as u64,
            n
        );
        g.bench_function(format!("{n} events, one proof per event"), |b| {
            b.iter(|| verify_access_history(&app_hash, patient, &count, &events).unwrap())
        });
        g.bench_function(format!("{n} events, one proof of the digest"), |b| {
            b.iter(|| verify_access_digest(&app_hash, patient, &digest, &values, &[]).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, histories);
criterion_main!(benches);

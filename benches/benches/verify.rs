//! How an auditor's check costs: light-client verification of a signed header (Ed25519 commit
//! signatures of the validators) against one BLS checkpoint certificate (one aggregate pairing
//! check), on fixtures captured from a real 4-validator localnet (`benches/fixtures/`).
//!
//! `cargo bench -p medledger-benches --bench verify`

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use medledger_query::certificate::CertTrust;
use medledger_query::light::{verify_header, TrustedValidators};
use medledger_tx::pb::Certificate;
use prost::Message;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn result<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let v: serde_json::Value = serde_json::from_slice(&fixture(name)).unwrap();
    serde_json::from_value(v["result"].clone()).unwrap()
}

fn verification(c: &mut Criterion) {
    let genesis = fixture("genesis.json");
    let trusted = TrustedValidators::from_genesis_json(&genesis).unwrap();
    let commit: tendermint_rpc::endpoint::commit::Response = result("commit.json");
    let validators: tendermint_rpc::endpoint::validators::Response = result("validators.json");
    let query: tendermint_rpc::endpoint::abci_query::Response = result("certificate.json");
    let cert = Certificate::decode(query.response.value.as_slice()).unwrap();
    let cert_trust = CertTrust::from_genesis_json(&genesis).unwrap();

    // Both fixtures must verify, and attest the same state: header 4 carries the app hash of
    // state 3, which the certificate certifies.
    // The fixtures are old: verify at the header's own time, within the trusting period.
    let now = commit.signed_header.header.time;
    let header =
        verify_header(&trusted, &commit.signed_header, &validators.validators, now).unwrap();
    let (certified, _) = cert_trust.verify(&cert).unwrap();
    assert_eq!(header.app_hash, certified.app_hash);

    c.bench_function("light-client header (4 validators, Ed25519)", |b| {
        b.iter(|| {
            verify_header(&trusted, &commit.signed_header, &validators.validators, now).unwrap()
        })
    });
    c.bench_function("BLS checkpoint certificate (4 validators)", |b| {
        b.iter(|| cert_trust.verify(&cert).unwrap())
    });
}

criterion_group!(benches, verification);
criterion_main!(benches);

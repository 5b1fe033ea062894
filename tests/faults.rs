//! The fault suite: a 4-validator localnet under a steady load of signed txs, hit by every fault
//! a consortium member's node will meet in production, with the invariants checked after each:
//!
//! - every node's app holds the same state (app hash) at every common height;
//! - every tx acknowledged as committed is still there, with a valid proof;
//! - no tx was applied twice (access histories hold each record id at most once);
//! - heights keep increasing while ≥ 3 of 4 validators are up, and stop (no fork) with 2 down.
//!
//! `cargo test --release -p medledger-it --test it faults::` runs every fault once (the CI
//! version), on the `medledger` binary built with `--features medledger/fault-injection`
//! (scripts/test.sh builds it and names it in `MEDLEDGER_BIN`; see
//! `medledger_devnet::medledger_bin`). `MEDLEDGER_SOAK_MINUTES=30` then keeps injecting random
//! faults for that long (`MEDLEDGER_SOAK_SEED` picks the sequence) and prints the summary table.
//! The crash points inside Commit need the `fault-injection` feature; without it the test fails
//! and says so. Partitions are TCP relays in the test process on every p2p link
//! (`faults/links.rs`), so no privileges are needed. The suite's localnet holds the machine
//! (`support::exclusive`) while it runs: no other test of the binary starts processes beside it.
//! See docs/reliability.md.

#![allow(clippy::unwrap_used, clippy::panic)]

mod links;
mod load;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use links::Links;
use load::{Kind, Load, Outcome, Sent};
use medledger_client::verify::{verify_history, Trust};
use medledger_devnet::localnet::{Proc, MEMBERS};
use medledger_state::fault::{CRASH_AT_ENV, POINTS};
use medledger_tx::keys;
use medledger_tx::pb::{AccessEvent, Consent, Patient};
use prost::Message;
use tokio::time::{sleep, timeout};

use crate::support::TestNet;

const RPC_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest a faulted-but-quorate chain may take to commit 3 more blocks (a dead proposer costs
/// a round's timeouts).
const PROGRESS_WITHIN: Duration = Duration::from_secs(60);
/// Longest a restarted node may take to catch up.
const CATCH_UP_WITHIN: Duration = Duration::from_secs(120);
/// How long a fault lasts while the others keep going.
const FAULT_HOLD: Duration = Duration::from_secs(6);

#[derive(Clone, Copy, Debug)]
enum Fault {
    KillCometBft(usize),
    KillApp(usize),
    KillBoth(usize),
    Freeze(usize),
    Partition(usize),
    CrashIn(usize, &'static str),
    TwoDown(usize, usize),
    RestartAll,
}

impl Fault {
    fn kind(self) -> String {
        match self {
            Fault::KillCometBft(_) => "kill -9 CometBFT".into(),
            Fault::KillApp(_) => "kill -9 app".into(),
            Fault::KillBoth(_) => "kill -9 both".into(),
            Fault::Freeze(_) => "SIGSTOP/SIGCONT".into(),
            Fault::Partition(_) => "partition".into(),
            Fault::CrashIn(_, point) => format!("crash at {point}"),
            Fault::TwoDown(_, _) => "2 of 4 down".into(),
            Fault::RestartAll => "all 4 restarted".into(),
        }
    }

    /// Every kind once, on varied nodes: the CI sequence.
    fn each_once() -> Vec<Fault> {
        let mut v = vec![
            Fault::KillCometBft(1),
            Fault::KillApp(2),
            Fault::KillBoth(3),
            Fault::Freeze(0),
            Fault::Partition(1),
        ];
        v.extend((0..).zip(POINTS).map(|(i, p)| Fault::CrashIn(2 + i % 2, p)));
        v.push(Fault::TwoDown(0, 3));
        v.push(Fault::RestartAll);
        v
    }

    /// A fault picked by `r` (a random number).
    fn random(r: u64) -> Fault {
        let node = (r >> 8) as usize % 4;
        match r % 8 {
            0 => Fault::KillCometBft(node),
            1 => Fault::KillApp(node),
            2 => Fault::KillBoth(node),
            3 => Fault::Freeze(node),
            4 => Fault::Partition(node),
            5 => Fault::CrashIn(node, POINTS[(r >> 16) as usize % POINTS.len()]),
            6 => Fault::TwoDown(node, (node + 1 + (r >> 24) as usize % 3) % 4),
            _ => Fault::RestartAll,
        }
    }
}

/// xorshift64*: a seeded, reproducible fault sequence.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

struct Suite {
    t: TestNet,
    links: Links,
    load: Option<Load>,
    trust: Trust,
    /// Heights up to which agreement was checked.
    agreed_to: u64,
    /// How many of the load's log entries were verified.
    verified: usize,
    injected: BTreeMap<String, u64>,
    proofs_checked: u64,
    /// Times a CometBFT whose app died hung in its shutdown and was killed.
    hung_shutdowns: u64,
}

impl Suite {
    async fn start() -> Suite {
        let t = TestNet::prepare();
        let links = Links::install(&t.net).await;
        t.up().await;
        let genesis = t.net.node_dir(0).join("cometbft/config/genesis.json");
        let trust = Trust::from_genesis(&genesis, false).unwrap();
        let urls: Vec<String> = t.net.spec.nodes.iter().map(|n| n.rpc_url()).collect();
        let members = MEMBERS
            .iter()
            .map(|(id, _, _)| (id.to_string(), t.member_key(id)))
            .collect();
        let load = Load::start(&urls, &t.chain_id, members, 2).await;
        Suite {
            t,
            links,
            load: Some(load),
            trust,
            agreed_to: 0,
            verified: 0,
            injected: BTreeMap::new(),
            proofs_checked: 0,
            hung_shutdowns: 0,
        }
    }

    fn load(&self) -> &Load {
        self.load.as_ref().unwrap()
    }

    async fn height(&self, i: usize) -> Option<u64> {
        match timeout(RPC_TIMEOUT, self.t.client(i).latest_height()).await {
            Ok(Ok(h)) => Some(h),
            _ => None,
        }
    }

    async fn max_height(&self, nodes: &[usize]) -> u64 {
        let mut m = 0;
        for &i in nodes {
            m = m.max(self.height(i).await.unwrap_or(0));
        }
        m
    }

    /// Asserts that `live` (≥ 3 validators) commit 3 more blocks, and the load gets txs in.
    async fn assert_progress(&self, live: &[usize], what: &str) {
        let (h0, a0) = (self.max_height(live).await, self.load().acked());
        let deadline = Instant::now() + PROGRESS_WITHIN;
        loop {
            let h = self.max_height(live).await;
            if h >= h0 + 3 && self.load().acked() > a0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: with nodes {live:?} up the chain went from {h0} to {h} and acknowledged {} txs in {PROGRESS_WITHIN:?}",
                self.load().acked() - a0
            );
            sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every node is 2 blocks past the highest height any node had.
    async fn assert_caught_up(&self, what: &str) {
        let all = [0, 1, 2, 3];
        let target = self.max_height(&all).await + 2;
        let deadline = Instant::now() + CATCH_UP_WITHIN;
        for i in all {
            loop {
                if self.height(i).await.unwrap_or(0) >= target {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: node {i} did not reach height {target} in {CATCH_UP_WITHIN:?}"
                );
                sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Waits for a process that is exiting by itself (an app at its crash point), then reaps it.
    async fn wait_exit(&self, i: usize, p: Proc, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.t.net.running_pid(i, p).is_some() {
            assert!(
                Instant::now() < deadline,
                "{what}: {p:?} of node {i} kept running"
            );
            sleep(Duration::from_millis(100)).await;
        }
        self.t.net.stop(i, p, true).unwrap();
    }

    /// Length of node `i`'s CometBFT log, to read what it says after a fault.
    fn cometbft_log_len(&self, i: usize) -> u64 {
        std::fs::metadata(self.t.net.log_file(i, Proc::CometBft)).map_or(0, |m| m.len())
    }

    /// CometBFT v0.38 shuts itself down when its app's connection breaks. Its shutdown can hang
    /// waiting for the dead app (the soak saw it stuck in "Stopping State service"); it no
    /// longer takes part in consensus then, and a supervisor (systemd's stop timeout, or
    /// `localnet up`) kills it. So must it begin shutting down within 20 s; if it has not
    /// exited by then it is killed and counted.
    async fn wait_cometbft_stops(&mut self, i: usize, what: &str, log_from: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.t.net.running_pid(i, Proc::CometBft).is_some() {
            if Instant::now() > deadline {
                let log = std::fs::read(self.t.net.log_file(i, Proc::CometBft)).unwrap();
                let log = String::from_utf8_lossy(&log[log_from as usize..]);
                assert!(
                    log.contains("Stopping Consensus service"),
                    "{what}: CometBFT of node {i} lost its app and neither stopped nor began shutting down"
                );
                self.hung_shutdowns += 1;
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        self.t.net.stop(i, Proc::CometBft, true).unwrap();
    }

    fn kill_node(&self, i: usize) {
        self.t.kill9(i, Proc::CometBft);
        self.t.kill9(i, Proc::App);
    }

    fn others(down: &[usize]) -> Vec<usize> {
        (0..4).filter(|i| !down.contains(i)).collect()
    }

    async fn inject(&mut self, f: Fault) {
        let what = format!("{f:?}");
        eprintln!(
            "[faults] {what} at height {} ({} txs acknowledged)",
            self.max_height(&[0, 1, 2, 3]).await,
            self.load().acked()
        );
        match f {
            Fault::KillCometBft(i) => {
                self.t.kill9(i, Proc::CometBft);
                self.assert_progress(&Self::others(&[i]), &what).await;
                self.t.net.start(i, Proc::CometBft).unwrap();
            }
            Fault::KillApp(i) => {
                let log_from = self.cometbft_log_len(i);
                self.t.kill9(i, Proc::App);
                self.wait_cometbft_stops(i, &what, log_from).await;
                self.assert_progress(&Self::others(&[i]), &what).await;
                self.t.net.start_node(i).unwrap();
            }
            Fault::KillBoth(i) => {
                self.kill_node(i);
                self.assert_progress(&Self::others(&[i]), &what).await;
                self.t.net.start_node(i).unwrap();
            }
            Fault::Freeze(i) => {
                self.t.net.signal(i, Proc::CometBft, "STOP").unwrap();
                self.t.net.signal(i, Proc::App, "STOP").unwrap();
                self.assert_progress(&Self::others(&[i]), &what).await;
                sleep(FAULT_HOLD).await;
                self.t.net.signal(i, Proc::App, "CONT").unwrap();
                self.t.net.signal(i, Proc::CometBft, "CONT").unwrap();
            }
            Fault::Partition(i) => {
                self.links.isolate(i);
                sleep(Duration::from_secs(1)).await;
                let alone = self.height(i).await.unwrap_or(0);
                self.assert_progress(&Self::others(&[i]), &what).await;
                sleep(FAULT_HOLD).await;
                let h = self.height(i).await.unwrap_or(0);
                assert!(
                    h <= alone + 1,
                    "{what}: the isolated node went from {alone} to {h} on its own"
                );
                self.links.heal();
            }
            Fault::CrashIn(i, point) => {
                self.kill_node(i);
                let at = self.max_height(&Self::others(&[i])).await + 4;
                let log_file = self.t.net.log_file(i, Proc::App);
                let before = std::fs::metadata(&log_file).map(|m| m.len()).unwrap_or(0);
                let arm = format!("{point}:{at}");
                let cometbft_log_from = self.cometbft_log_len(i);
                self.t
                    .net
                    .start_with_env(i, Proc::App, &[(CRASH_AT_ENV, &arm)])
                    .unwrap();
                let app_log = || {
                    let log = std::fs::read(&log_file).unwrap();
                    String::from_utf8_lossy(&log[before as usize..]).into_owned()
                };
                // Logged before the app listens, so before start_with_env returns.
                assert!(
                    app_log().contains("fault injection armed"),
                    "{what}: the medledger binary has no crash points; build it with \
                     `--features medledger/fault-injection` (scripts/test.sh does)"
                );
                self.t.net.start(i, Proc::CometBft).unwrap();
                self.wait_exit(i, Proc::App, &what).await;
                let log = app_log();
                assert!(
                    log.contains("fault injection: crashing here") && log.contains(point),
                    "{what}: the app exited without reaching its crash point:\n{log}"
                );
                self.wait_cometbft_stops(i, &what, cometbft_log_from).await;
                self.assert_progress(&Self::others(&[i]), &what).await;
                self.t.net.start_node(i).unwrap();
            }
            Fault::TwoDown(i, j) => {
                self.kill_node(i);
                self.kill_node(j);
                let live = Self::others(&[i, j]);
                sleep(Duration::from_secs(2)).await; // a block in flight may still land
                let h0 = self.max_height(&live).await;
                sleep(FAULT_HOLD).await;
                let h = self.max_height(&live).await;
                assert!(
                    h <= h0 + 1,
                    "{what}: half the power committed blocks {h0}..{h}"
                );
                self.t.net.start_node(i).unwrap();
                self.t.net.start_node(j).unwrap();
                self.assert_progress(&[0, 1, 2, 3], &what).await;
            }
            Fault::RestartAll => {
                for i in 0..4 {
                    self.kill_node(i);
                }
                for i in 0..4 {
                    self.t.net.start_node(i).unwrap();
                }
                self.assert_progress(&[0, 1, 2, 3], &what).await;
            }
        }
        self.assert_caught_up(&what).await;
        *self.injected.entry(f.kind()).or_default() += 1;
        self.check_agreement(&what).await;
        let sent = self.load().sent();
        self.check_acknowledged(&what, &sent).await;
        eprintln!(
            "[faults] {what}: recovered; agreement checked to height {}, {} acknowledged txs re-proven",
            self.agreed_to, self.proofs_checked
        );
    }

    /// Every node's app proves the same state at every height not yet checked: the header
    /// app hashes agree, and each node's own store answers with a proof against them.
    async fn check_agreement(&mut self, what: &str) {
        let mut top = u64::MAX;
        for i in 0..4 {
            top = top.min(self.height(i).await.unwrap());
        }
        // State h is attested by header h + 1, so states up to top - 1.
        for h in self.agreed_to + 1..top {
            let mut hashes = Vec::new();
            for i in 0..4 {
                hashes.push(self.t.client(i).app_hash_for_state(h).await.unwrap());
            }
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]),
                "{what}: DIVERGENCE at height {h}: {:?}",
                hashes.iter().map(hex::encode_upper).collect::<Vec<_>>()
            );
            for i in 0..4 {
                let (read, answered) = self
                    .t
                    .client(i)
                    .read_with_proof(&keys::member(MEMBERS[0].0), h)
                    .await
                    .unwrap();
                assert_eq!(answered, h);
                medledger_query::verify(
                    &hashes[0],
                    &read.key,
                    read.value.as_deref(),
                    &read.proof,
                )
                .unwrap_or_else(|e| {
                    panic!("{what}: DIVERGENCE: node {i}'s state at height {h} does not match the agreed app hash: {e}")
                });
            }
        }
        self.agreed_to = self.agreed_to.max(top.saturating_sub(1));
    }

    /// Every tx acknowledged since the last check is in the state with a valid proof, read at
    /// one height past all of them.
    async fn check_acknowledged(&mut self, what: &str, sent: &[Sent]) {
        let last = sent
            .iter()
            .filter_map(|s| match s.outcome {
                Outcome::Committed { height } => Some(height),
                _ => None,
            })
            .max()
            .unwrap_or(1);
        // A height every node has committed, at or past the last acknowledged tx.
        let deadline = Instant::now() + PROGRESS_WITHIN;
        let at = loop {
            let mut at = u64::MAX;
            for i in 0..4 {
                at = at.min(self.height(i).await.unwrap_or(0).saturating_sub(1));
            }
            if at >= last {
                break at;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: a node stays behind txs acknowledged at {last}"
            );
            sleep(Duration::from_millis(200)).await;
        };
        for (n, s) in sent.iter().enumerate().skip(self.verified) {
            if !matches!(s.outcome, Outcome::Committed { .. }) {
                continue;
            }
            let c = self.t.client(n % 4);
            match &s.kind {
                Kind::Access {
                    patient,
                    record,
                    index,
                } => {
                    let index = index.unwrap_or_else(|| panic!("{what}: no index for {record}"));
                    let a = c
                        .query_proven(&keys::access_event(patient, index), at)
                        .await
                        .unwrap();
                    let e = AccessEvent::decode(a.value.as_deref().unwrap_or_else(|| {
                        panic!("{what}: LOST: access {record} (event {index} of {patient})")
                    }))
                    .unwrap();
                    assert_eq!(&e.record_id, record, "{what}: event {index} of {patient}");
                }
                Kind::Register { patient } => {
                    let a = c.query_proven(&keys::patient(patient), at).await.unwrap();
                    let p = Patient::decode(
                        a.value
                            .as_deref()
                            .unwrap_or_else(|| panic!("{what}: LOST: registration of {patient}")),
                    )
                    .unwrap();
                    assert_eq!(&p.id, patient);
                }
                Kind::Grant {
                    patient,
                    consent_id,
                } => {
                    let id = consent_id.as_deref().unwrap();
                    let a = c.query_proven(&keys::consent(id), at).await.unwrap();
                    let consent = Consent::decode(
                        a.value
                            .as_deref()
                            .unwrap_or_else(|| panic!("{what}: LOST: consent {id} of {patient}")),
                    )
                    .unwrap();
                    assert_eq!(&consent.patient_id, patient);
                }
            }
            self.proofs_checked += 1;
        }
        self.verified = sent.len();
    }

    /// Stops the load and checks the complete, light-client-verified access history of every
    /// load patient: each acknowledged access is in it, no record id twice, nothing unknown.
    async fn finish(mut self) -> String {
        let load = self.load.take().unwrap();
        let patients = load.patients.clone();
        let sent: Vec<Sent> = load.stop().await;
        self.check_acknowledged("final", &sent).await;
        let sent_records: BTreeSet<&str> = sent
            .iter()
            .filter_map(|s| match &s.kind {
                Kind::Access { record, .. } => Some(record.as_str()),
                _ => None,
            })
            .collect();
        let (mut lost, mut twice, mut events) = (0u64, 0u64, 0u64);
        for (n, patient) in patients.iter().enumerate() {
            let (history, _) = verify_history(&self.t.client(n % 4), &self.trust, patient, 0)
                .await
                .unwrap();
            events += history.len() as u64;
            let mut seen = BTreeSet::new();
            for e in &history {
                assert!(
                    sent_records.contains(e.record_id.as_str()),
                    "access {} of {patient} was never sent",
                    e.record_id
                );
                if !seen.insert(e.record_id.clone()) {
                    twice += 1;
                }
            }
            for s in &sent {
                if let (
                    Kind::Access {
                        patient: p, record, ..
                    },
                    Outcome::Committed { .. },
                ) = (&s.kind, &s.outcome)
                {
                    if p == patient && !seen.contains(record.as_str()) {
                        lost += 1;
                    }
                }
            }
        }
        let mut out = String::from("| fault | injected |\n|---|---|\n");
        for (kind, n) in &self.injected {
            out += &format!("| {kind} | {n} |\n");
        }
        out += "\n| tx kind | committed | refused | in doubt |\n|---|---|---|---|\n";
        for (kind, [c, r, d]) in load::tally(&sent) {
            out += &format!("| {kind} | {c} | {r} | {d} |\n");
        }
        out += &format!(
            "\nheights checked on all 4 nodes: 1..={}; acknowledged txs re-proven: {}; access events in verified histories: {events}\nCometBFT hung in shutdown after its app died (killed after 20 s): {}\ndivergences: 0, lost: {lost}, applied twice: {twice}\n",
            self.agreed_to, self.proofs_checked, self.hung_shutdowns
        );
        eprintln!("{out}");
        assert_eq!(lost, 0, "acknowledged accesses missing from the history");
        assert_eq!(twice, 0, "accesses applied twice");
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consortium_survives_every_fault_under_load_and_loses_nothing() {
    let mut s = Suite::start().await;
    s.assert_progress(&[0, 1, 2, 3], "steady load").await;
    for f in Fault::each_once() {
        s.inject(f).await;
    }
    let minutes: u64 = std::env::var("MEDLEDGER_SOAK_MINUTES")
        .ok()
        .map(|m| {
            m.parse()
                .expect("MEDLEDGER_SOAK_MINUTES is a number of minutes")
        })
        .unwrap_or(0);
    if minutes > 0 {
        let mut seed: u64 = std::env::var("MEDLEDGER_SOAK_SEED")
            .ok()
            .map(|m| m.parse().expect("MEDLEDGER_SOAK_SEED is a number"))
            .unwrap_or(1)
            .max(1);
        eprintln!("[faults] soak: {minutes} min of random faults, seed {seed}");
        let until = Instant::now() + Duration::from_secs(minutes * 60);
        while Instant::now() < until {
            s.inject(Fault::random(next_random(&mut seed))).await;
            sleep(Duration::from_secs(2)).await;
        }
    }
    let summary = s.finish().await;
    if let Ok(path) = std::env::var("MEDLEDGER_FAULTS_SUMMARY") {
        std::fs::write(path, summary).unwrap();
    }
}

//! Test support: a real 4-validator localnet (real CometBFT processes, real medledger apps) on
//! free ports in a temp dir, stopped when the test ends, even when it fails.
//!
//! One test at a time has the machine: every test that starts processes (a localnet, a
//! `medledger` command, CometBFT, a browser) holds [`exclusive`] for its whole run, and
//! [`TestNet`] holds it from `prepare` until its nodes are stopped. The harness runs two tests at
//! once (two cores), but two consortia on 2 cores would only make both slow and flaky, and the
//! suites that load the chain (faults, overload, loadgen, statesync, pages with chromium) assume
//! nothing else runs beside them, as when each suite was a binary of its own run after the
//! others. Tests that only read files run beside them. A missing `medledger` binary or a
//! missing or wrong CometBFT is a failure, never a skip.

#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use medledger_client::Client;
use medledger_client::Keyring;
use medledger_devnet::localnet::{Localnet, NodePorts, NodeSpec, Proc, Spec, MEMBERS};
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use tempfile::TempDir;

pub mod hooks;
mod vault;

/// The machine, held by one process-starting test at a time (see the module's docs).
static MACHINE: Mutex<()> = Mutex::new(());

/// Waits until no other test of this binary starts processes, and holds the machine until the
/// guard drops (at the end of the test, also when it fails). A test with a [`TestNet`] already
/// holds it and must not ask again (it would wait for itself). A test that failed while holding
/// it does not stop the others: the lock's poison is ignored.
pub fn exclusive() -> MutexGuard<'static, ()> {
    MACHINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `medledger` binary the localnets run (built by scripts/test.sh, named by
/// `$MEDLEDGER_BIN`; see `medledger_devnet::medledger_bin`). Missing is a failure, never a skip.
pub fn medledger_bin() -> PathBuf {
    medledger_devnet::medledger_bin().unwrap_or_else(|e| panic!("{e:#}"))
}

/// A running test consortium.
pub struct TestNet {
    pub net: Localnet,
    pub keyring: Keyring,
    pub chain_id: String,
    // Dropped after `net` has been stopped (see Drop), in this order: the machine is free only
    // once the nodes are gone.
    home: TempDir,
    _machine: MutexGuard<'static, ()>,
}

impl TestNet {
    /// Starts hospital-a, lab-b, insurer-c and hospital-d and waits for the first block.
    pub async fn start() -> TestNet {
        let t = TestNet::prepare();
        t.up().await;
        t
    }

    /// [`TestNet::start`] with each member's record-vault gateway running beside its node
    /// (`medledger gateway start`) and registered on chain, as `medledger localnet up` does.
    pub async fn start_with_gateways() -> TestNet {
        let t = TestNet::prepare_with(true);
        t.up().await;
        t
    }

    /// The consortium written to disk, not yet running: a test may change configs, then `up`.
    pub fn prepare() -> TestNet {
        TestNet::prepare_with(false)
    }

    /// [`TestNet::prepare`], with or without the members' gateways (they cost a process and a
    /// SetGateway tx per node; only tests of the vault ask for them).
    pub fn prepare_with(gateways: bool) -> TestNet {
        let machine = exclusive();
        let home = tempfile::Builder::new()
            .prefix("medledger-it-")
            .tempdir()
            .unwrap();
        let keyring = Keyring::new(home.path().join("keys"));
        let nodes = MEMBERS
            .iter()
            .zip(NodePorts::free_many(MEMBERS.len()).unwrap())
            .map(|((name, _, _), ports)| NodeSpec {
                name: name.to_string(),
                ports,
            })
            .collect();
        let chain_id = "medledger-it".to_string();
        let spec = Spec {
            chain_id: chain_id.clone(),
            nodes,
            timeout_commit: "300ms".into(),
            app: Default::default(),
            gateways,
            max_block_bytes: None,
            keep_recent: None,
            snapshot_interval: None,
            retain_blocks: None,
        };
        let net = Localnet::open_or_init(
            &home.path().join("localnet"),
            spec,
            &keyring,
            medledger_bin(),
        )
        .expect("CometBFT must be installed (scripts/deps.sh) for the integration tests");
        TestNet {
            net,
            keyring,
            chain_id,
            home,
            _machine: machine,
        }
    }

    /// Changes every node's copy of the genesis file the same way (before `up`).
    pub fn edit_genesis(&self, edit: impl Fn(&mut serde_json::Value)) {
        for i in 0..self.net.spec.nodes.len() {
            let path = self.net.node_dir(i).join("cometbft/config/genesis.json");
            let mut g: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&mut g);
            std::fs::write(&path, serde_json::to_vec_pretty(&g).unwrap()).unwrap();
        }
    }

    /// Starts every node and waits for the first block.
    pub async fn up(&self) {
        self.net.up().await.expect("localnet makes its first block");
    }

    /// The home directory (`--home` of the CLI): keys in `keys/`, the localnet in `localnet/`.
    pub fn home(&self) -> &std::path::Path {
        self.home.path()
    }

    /// Runs `medledger --home HOME ARGS --node NODE0` (the CLI as a person types it, against
    /// node 0) and prints what it said.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let out = std::process::Command::new(medledger_bin())
            .arg("--home")
            .arg(self.home())
            .args(args)
            .args(["--node", &self.net.spec.nodes[0].rpc_url()])
            .output()
            .unwrap();
        eprintln!(
            "medledger {}: {:?}\n{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `medledger --home HOME tx --node NODE0 --from FROM ARGS…`, the CLI as a person types
    /// it: what it said (printed too).
    pub fn tx(&self, from: &str, args: &[&str]) -> std::process::Output {
        let node = self.net.spec.nodes[0].rpc_url();
        let out = std::process::Command::new(medledger_bin())
            .arg("--home")
            .arg(self.home())
            .args(["tx", "--node", &node, "--from", from])
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "medledger tx --from {from} {}: {:?}\n{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// [`TestNet::tx`]; the tx must commit.
    pub fn tx_ok(&self, from: &str, args: &[&str]) {
        let out = self.tx(from, args);
        assert!(
            out.status.success(),
            "tx --from {from} {}: {:?}\n{}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// RPC client of node `i`.
    pub fn client(&self, i: usize) -> Client {
        self.net.client(i).unwrap()
    }

    /// The admin key of member `id` (created by the localnet).
    pub fn member_key(&self, id: &str) -> SigningKey {
        self.keyring.get(id).unwrap()
    }

    /// hospital-a's enrolment of the patient holding `patient` (send it signed by
    /// `member_key("hospital-a")`): members enrol the patients they identified.
    pub fn enrol(&self, patient: &SigningKey) -> Msg {
        Msg::RegisterPatient(medledger_tx::keyproof::enrol_patient(
            patient,
            &self.chain_id,
            "hospital-a",
        ))
    }

    /// hospital-a enrols `patient` through node `i` and waits until every running node has
    /// committed the block (CheckTx admits only keys the ledger knows, so the patient's first tx
    /// to a node a block behind would be UNKNOWN_SIGNER); panics if refused. A node a fault test
    /// stopped is not waited for (it is not sent to), nor one stalled for 15 s.
    pub async fn enrol_patient(&self, i: usize, patient: &SigningKey) {
        let r = self
            .client(i)
            .submit(&self.member_key("hospital-a"), self.enrol(patient))
            .await
            .unwrap();
        assert_eq!(r.code, 0, "enrolment: {} {}", r.code_name, r.log);
        for n in 0..self.net.spec.nodes.len() {
            let up = self.net.running_pid(n, Proc::CometBft).is_some()
                && self.net.running_pid(n, Proc::App).is_some();
            if up {
                let _ = self
                    .net
                    .wait_for_height(n, r.height, Duration::from_secs(15))
                    .await;
            }
        }
    }

    /// The scenario most tests start from: the patient holding key `[seed; 32]`, enrolled by
    /// hospital-a through node 0, who then grants `grantee` [`grant`] (Observations, treatment).
    pub async fn consenting_patient(&self, seed: u8, grantee: &str) -> Patient {
        let key = SigningKey::from_bytes(&[seed; 32]);
        self.enrol_patient(0, &key).await;
        let r = self.client(0).submit(&key, grant(grantee)).await.unwrap();
        assert_eq!(r.code, 0, "consent: {} {}", r.code_name, r.log);
        Patient {
            id: medledger_tx::ids::patient_id(&key.verifying_key().to_bytes()),
            consent_id: r.attribute("consent_id").unwrap_or_default().to_string(),
            key,
        }
    }

    /// The patient holding key `[seed; 32]`, enrolled by hospital-a through node 0, with one
    /// lab result `record` (an Observation) anchored by hospital-a (a stand-in content hash: the
    /// pages tests never fetch it) and no consent: no one may read it yet.
    pub async fn patient_with_record(&self, seed: u8, record: &str) -> Patient {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let id = medledger_tx::ids::patient_id(&key.verifying_key().to_bytes());
        self.enrol_patient(0, &key).await;
        let r = self
            .client(0)
            .submit(
                &self.member_key("hospital-a"),
                Msg::AnchorRecord(pb::AnchorRecord {
                    record_id: record.into(),
                    patient_id: id.clone(),
                    resource_type: "Observation".into(),
                    content_hash: vec![7; 32],
                    size: 10,
                    key_id: "k".into(),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        assert_eq!(r.code, 0, "anchor: {} {}", r.code_name, r.log);
        Patient {
            key,
            id,
            consent_id: String::new(),
        }
    }

    /// `member` registers `key` as a practitioner named `name` with `role` (through node 0);
    /// panics if refused.
    pub async fn register_practitioner(
        &self,
        member: &str,
        key: &SigningKey,
        name: &str,
        role: pb::PractitionerRole,
    ) {
        let r = self
            .client(0)
            .submit(
                &self.member_key(member),
                Msg::RegisterPractitioner(pb::RegisterPractitioner {
                    public_key: key.verifying_key().to_bytes().to_vec(),
                    role: role as i32,
                    licence_hash: vec![1; 32],
                    name: name.into(),
                    key_proof: medledger_tx::keyproof::prove(
                        key,
                        &self.chain_id,
                        medledger_tx::keyproof::REGISTER_PRACTITIONER,
                        member,
                    )
                    .to_vec(),
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        assert_eq!(r.code, 0, "practitioner: {} {}", r.code_name, r.log);
    }

    /// Waits (up to 30 s) until node 0's latest certificate is of state `h` or later (the
    /// certificate of state `h` is in block `h + 2`).
    pub async fn certified(&self, h: u64) {
        let c = self.client(0);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (v, _) = c
                .query_raw(&medledger_tx::keys::latest_certificate(), 0)
                .await
                .unwrap();
            if v.as_deref().and_then(medledger_tx::keys::decode_u64) >= Some(h) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no certificate of state {h}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until every node in `nodes` reaches `height`.
    pub async fn wait_all(&self, nodes: &[usize], height: u64) {
        for &i in nodes {
            self.net
                .wait_for_height(i, height, Duration::from_secs(60))
                .await
                .unwrap();
        }
    }

    /// Latest height of node `i`.
    pub async fn height(&self, i: usize) -> u64 {
        self.client(i).latest_height().await.unwrap()
    }

    /// The app hash each of `nodes` has in its header at `height` (all must have it).
    pub async fn app_hashes_at(&self, nodes: &[usize], height: u64) -> Vec<String> {
        let mut out = Vec::new();
        for &i in nodes {
            let h = tendermint::block::Height::try_from(height).unwrap();
            let c = tendermint_rpc::Client::commit(self.client(i).rpc(), h)
                .await
                .unwrap();
            out.push(hex::encode_upper(
                c.signed_header.header.app_hash.as_bytes(),
            ));
        }
        out
    }

    /// Kills (SIGKILL) a process of node `i`.
    pub fn kill9(&self, i: usize, p: Proc) {
        self.net.stop(i, p, true).unwrap();
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Show what the nodes said: a failing consensus test is unreadable without it.
            for (i, node) in self.net.spec.nodes.iter().enumerate() {
                for p in [Proc::App, Proc::CometBft, Proc::Gateway] {
                    let log = std::fs::read_to_string(self.net.log_file(i, p)).unwrap_or_default();
                    let tail: Vec<&str> = log.lines().rev().take(15).collect();
                    eprintln!("---- {} {:?} (last lines) ----", node.name, p);
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
        let _ = self.net.down();
        let _ = &self.home;
    }
}

/// A patient of a scenario ([`TestNet::consenting_patient`]).
pub struct Patient {
    pub key: SigningKey,
    /// The pseudonymous id (`pt-…`).
    pub id: String,
    /// The id of the consent the patient granted (empty when none).
    pub consent_id: String,
}

impl Patient {
    /// The patient's key file (`medledger keys` JSON) as the patient page takes it.
    pub fn key_file_json(&self, name: &str) -> String {
        serde_json::json!({
            "name": name,
            "public_key": hex::encode(self.key.verifying_key().to_bytes()),
            "secret_key": hex::encode(self.key.to_bytes()),
        })
        .to_string()
    }
}

/// A patient's consent for `grantee` to read Observations for treatment, with no time limits.
pub fn grant(grantee: &str) -> Msg {
    Msg::GrantConsent(pb::GrantConsent {
        grantee: grantee.into(),
        data_classes: vec!["Observation".into()],
        purposes: vec![Purpose::Treat as i32],
        ..Default::default()
    })
}

/// A member's log of reading Observation `record` of `patient` for treatment.
pub fn read(patient: &str, record: &str) -> Msg {
    Msg::LogAccess(pb::LogAccess {
        patient_id: patient.into(),
        record_id: record.into(),
        data_class: "Observation".into(),
        purpose: Purpose::Treat as i32,
        ..Default::default()
    })
}

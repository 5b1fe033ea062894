//! A local consortium: four validators (hospital-a, lab-b, insurer-c, hospital-d), each one
//! CometBFT process and one medledger process, on 127.0.0.1.
//!
//! Layout under the localnet directory:
//! ```text
//! localnet.json            chain id, nodes and their ports (written once, by init)
//! <node>/cometbft/         CometBFT home (config, genesis, blocks)
//! <node>/app/              the node's RocksDB state
//! <node>/{app,cometbft}.log
//! <node>/{app,cometbft}.pid
//! <node>/gateway/          the member's record-vault gateway (when the spec has `gateways`):
//!                          data/, kek, box.key (created by the gateway on first start)
//! <node>/gateway.{log,pid}
//! ```
//! The members' admin keys go into the keyring given at init. `down` stops exactly the processes
//! named by the PID files, after checking that each PID still runs the program it was started as.

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use toml_edit::{value, DocumentMut};

use medledger_client::{Client, Keyring};

use crate::{cometbft, deploy};

/// The founding members of the localnet: id, display name, kind.
pub const MEMBERS: [(&str, &str, &str); 4] = [
    ("hospital-a", "Hospital A", "hospital"),
    ("lab-b", "Lab B", "lab"),
    ("insurer-c", "Insurer C", "insurer"),
    ("hospital-d", "Hospital D", "hospital"),
];

/// The default chain id.
pub const CHAIN_ID: &str = "medledger-localnet";

/// Ports of one node.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodePorts {
    /// CometBFT p2p.
    pub p2p: u16,
    /// CometBFT RPC.
    pub rpc: u16,
    /// medledger ABCI.
    pub abci: u16,
    /// The member's record-vault gateway (HTTP). Older `localnet.json` files have none: then
    /// p2p+3, see [`NodePorts::gateway_port`].
    #[serde(default)]
    pub gateway: u16,
    /// The app's Prometheus metrics (`medledger start --metrics`). Older `localnet.json`
    /// files have none: then p2p+4, see [`NodePorts::metrics_port`].
    #[serde(default)]
    pub metrics: u16,
    /// CometBFT's own Prometheus endpoint. Older `localnet.json` files have none: then p2p+5.
    #[serde(default)]
    pub cometbft_metrics: u16,
}

impl NodePorts {
    /// Node `i` of a localnet whose first port is `base`: base+10i (p2p), +1 (rpc), +2 (abci),
    /// +4 (app metrics), +5 (CometBFT metrics),
    /// +3 (gateway).
    pub fn from_base(base: u16, i: usize) -> anyhow::Result<NodePorts> {
        let offset = u16::try_from(i * 10).context("too many nodes")?;
        let p2p = base.checked_add(offset).context("port out of range")?;
        Ok(NodePorts {
            p2p,
            rpc: p2p.checked_add(1).context("port")?,
            abci: p2p.checked_add(2).context("port")?,
            gateway: p2p.checked_add(3).context("port")?,
            metrics: p2p.checked_add(4).context("port")?,
            cometbft_metrics: p2p.checked_add(5).context("port")?,
        })
    }

    /// CometBFT's Prometheus port (p2p+5 where the spec names none).
    pub fn cometbft_metrics_port(&self) -> u16 {
        if self.cometbft_metrics != 0 {
            self.cometbft_metrics
        } else {
            self.p2p.saturating_add(5)
        }
    }

    /// The app's metrics port (p2p+4 where the spec names none).
    pub fn metrics_port(&self) -> u16 {
        if self.metrics != 0 {
            self.metrics
        } else {
            self.p2p.saturating_add(4)
        }
    }

    /// The gateway's port (p2p+3 where the spec names none).
    pub fn gateway_port(&self) -> u16 {
        if self.gateway != 0 {
            self.gateway
        } else {
            self.p2p.saturating_add(3)
        }
    }

    /// Six ports the OS says are free now (for tests running side by side).
    pub fn free() -> anyhow::Result<NodePorts> {
        Ok(NodePorts::free_many(1)?.remove(0))
    }

    /// Free ports for `n` nodes, all distinct: every listener is held until all are picked
    /// (picking node by node let the kernel hand a released port to the next node, and two
    /// nodes then shared a port: a peer answered in the wrong protocol and the net stalled).
    pub fn free_many(n: usize) -> anyhow::Result<Vec<NodePorts>> {
        let held = (0..n * 6)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let ports = held
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<u16>>>()?;
        Ok(ports
            .chunks(6)
            .map(|p| NodePorts {
                p2p: p[0],
                rpc: p[1],
                abci: p[2],
                gateway: p[3],
                metrics: p[4],
                cometbft_metrics: p[5],
            })
            .collect())
    }
}

/// One node of the localnet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Member id and node name, e.g. `hospital-a`.
    pub name: String,
    /// Ports.
    pub ports: NodePorts,
}

impl NodeSpec {
    /// The node's RPC URL.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.rpc)
    }

    /// The node's gateway URL (its endpoint on chain).
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.gateway_port())
    }
}

/// The persisted description of a localnet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    /// Chain id.
    pub chain_id: String,
    /// Nodes, in member order.
    pub nodes: Vec<NodeSpec>,
    /// CometBFT `consensus.timeout_commit`.
    pub timeout_commit: String,
    /// The application behind CometBFT. Older `localnet.json` files have no such field: they
    /// are medledger localnets.
    #[serde(default)]
    pub app: AppKind,
    /// Whether each node runs its member's record-vault gateway (`medledger gateway start`)
    /// and registers it on chain at `up`. `localnet up` sets it; test nets ask for it.
    #[serde(default)]
    pub gateways: bool,
    /// CometBFT's `block.max_bytes` (genesis), with each mempool sized to hold about ten such
    /// blocks; `None` keeps CometBFT's defaults. `bench … --max-block-bytes` sets it to cap the
    /// chain's capacity below what a load generator on the same machine can send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_block_bytes: Option<u64>,
    /// Each app prunes heights older than this many (`medledger start --keep-recent N
    /// --keep-every 0`); `None` runs the app's default retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_recent: Option<u64>,
    /// Each app takes a state sync snapshot every this many heights (`medledger start
    /// --snapshot-interval N`); `None` runs the app's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_interval: Option<u64>,
    /// Each app lets CometBFT delete blocks older than the newest this many (`medledger start
    /// --retain-blocks N`); `None` keeps every block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_blocks: Option<u64>,
}

impl Spec {
    /// The 4-validator consortium of `medledger localnet up` (the [`MEMBERS`], ports from
    /// `base_port`, 500 ms blocks); `medledger bench` uses the same for both apps, so the only
    /// difference between a medledger and a kvstore localnet is the app.
    pub fn consortium(chain_id: String, base_port: u16, app: AppKind) -> anyhow::Result<Spec> {
        let nodes = MEMBERS
            .iter()
            .enumerate()
            .map(|(i, (name, _, _))| {
                Ok(NodeSpec {
                    name: name.to_string(),
                    ports: NodePorts::from_base(base_port, i)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Spec {
            chain_id,
            nodes,
            timeout_commit: "500ms".into(),
            app,
            gateways: false,
            max_block_bytes: None,
            keep_recent: None,
            snapshot_interval: None,
            retain_blocks: None,
        })
    }
}

/// Which application the validators run.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// A `medledger start` process per node, CometBFT connects to it over ABCI.
    #[default]
    Medledger,
    /// CometBFT's built-in `kvstore` (`--proxy_app=kvstore`), no app process: the baseline for
    /// load benchmarks, with the same CometBFT config as a medledger localnet.
    Kvstore,
}

impl AppKind {
    /// `medledger` or `kvstore`.
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Medledger => "medledger",
            AppKind::Kvstore => "kvstore",
        }
    }
}

/// The processes of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proc {
    /// The medledger ABCI app.
    App,
    /// CometBFT.
    CometBft,
    /// The member's record-vault gateway (`medledger gateway start`).
    Gateway,
}

impl Proc {
    fn file(self) -> &'static str {
        match self {
            Proc::App => "app",
            Proc::CometBft => "cometbft",
            Proc::Gateway => "gateway",
        }
    }
}

/// A localnet on disk, and the processes this handle started.
pub struct Localnet {
    /// The localnet directory.
    pub dir: PathBuf,
    /// Its spec.
    pub spec: Spec,
    medledger_bin: PathBuf,
    cometbft_bin: PathBuf,
    /// The keyring of the members' admin keys (known when opened with it).
    keys_dir: Option<PathBuf>,
    children: Mutex<BTreeMap<(usize, Proc), Child>>,
}

impl Localnet {
    /// Opens the localnet in `dir`, creating it (CometBFT homes, genesis, member keys in
    /// `keyring`) with `spec` if it does not exist yet.
    pub fn open_or_init(
        dir: &Path,
        spec: Spec,
        keyring: &Keyring,
        medledger_bin: PathBuf,
    ) -> anyhow::Result<Localnet> {
        let cometbft_bin = cometbft::binary()?;
        let spec_path = dir.join("localnet.json");
        let spec = if spec_path.exists() {
            serde_json::from_slice(&fs::read(&spec_path)?)
                .with_context(|| format!("reading {}", spec_path.display()))?
        } else {
            init(dir, &spec, keyring, &cometbft_bin, &medledger_bin)?;
            fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
            spec
        };
        Ok(Localnet {
            dir: dir.to_path_buf(),
            spec,
            medledger_bin,
            cometbft_bin,
            keys_dir: Some(keyring.dir().to_path_buf()),
            children: Mutex::new(BTreeMap::new()),
        })
    }

    /// Opens an existing localnet (for `down` and `status`).
    pub fn open(dir: &Path, medledger_bin: PathBuf) -> anyhow::Result<Localnet> {
        let spec_path = dir.join("localnet.json");
        let spec: Spec = serde_json::from_slice(&fs::read(&spec_path).with_context(|| {
            format!(
                "no localnet in {} (start one with `medledger localnet up`)",
                dir.display()
            )
        })?)?;
        Ok(Localnet {
            dir: dir.to_path_buf(),
            spec,
            medledger_bin,
            cometbft_bin: PathBuf::from("cometbft"),
            keys_dir: None,
            children: Mutex::new(BTreeMap::new()),
        })
    }

    /// Where node `i`'s app listens: where its CometBFT's `proxy_app` points (a Unix socket in
    /// localnets made by this version, TCP in older ones), as `medledger start --listen` takes it.
    fn app_address(&self, i: usize) -> anyhow::Result<String> {
        let config = self.node_dir(i).join("cometbft/config/config.toml");
        let doc: DocumentMut = fs::read_to_string(&config)
            .with_context(|| format!("reading {}", config.display()))?
            .parse()
            .context("config.toml")?;
        let proxy = doc["proxy_app"].as_str().unwrap_or_default();
        Ok(match proxy.strip_prefix("tcp://") {
            Some(hostport) => hostport.to_string(),
            None => proxy.to_string(),
        })
    }

    /// Node `i`'s directory (its `cometbft/` home, `app/` data, logs and PID files).
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.spec.nodes[i].name)
    }

    fn pid_file(&self, i: usize, p: Proc) -> PathBuf {
        self.node_dir(i).join(format!("{}.pid", p.file()))
    }

    /// The log file of a process.
    pub fn log_file(&self, i: usize, p: Proc) -> PathBuf {
        self.node_dir(i).join(format!("{}.log", p.file()))
    }

    /// An RPC client of node `i`.
    pub fn client(&self, i: usize) -> anyhow::Result<Client> {
        Client::new(&self.spec.nodes[i].rpc_url())
    }

    /// The PID of a process of node `i` if it is running.
    pub fn running_pid(&self, i: usize, p: Proc) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file(i, p))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let want = match p {
            Proc::App => "medledger",
            Proc::CometBft => "cometbft",
            Proc::Gateway => "gateway",
        };
        is_alive_as(pid, want).then_some(pid)
    }

    /// Starts every process that is not running and waits for the first node to make a block.
    /// Returns the time it took.
    pub async fn up(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        for i in 0..self.spec.nodes.len() {
            self.start_node(i)?;
        }
        self.wait_for_height(0, 1, Duration::from_secs(60)).await?;
        if self.spec.gateways && self.spec.app == AppKind::Medledger {
            for i in 0..self.spec.nodes.len() {
                self.start(i, Proc::Gateway)?;
            }
            self.register_gateways().await?;
        }
        Ok(started.elapsed())
    }

    /// Node `i`'s gateway directory (data, KEK and box key).
    pub fn gateway_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("gateway")
    }

    /// Each member's admin registers its node's gateway (endpoint and box key) on chain, unless
    /// the ledger already holds the same endpoint and key. A refusal (e.g. a node whose member
    /// is not on the ledger yet) is reported on stderr and skipped.
    pub async fn register_gateways(&self) -> anyhow::Result<()> {
        use medledger_tx::pb::{self, tx_body::Msg};
        use prost::Message;
        let keyring = Keyring::new(
            self.keys_dir
                .clone()
                .context("internal: the localnet was opened without its keyring")?,
        );
        let client = self.client(0)?;
        for (i, node) in self.spec.nodes.iter().enumerate() {
            let file = self.gateway_dir(i).join("box.key");
            let secret: [u8; 32] = fs::read(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .as_slice()
                .try_into()
                .map_err(|_| anyhow::anyhow!("{}: not 32 bytes", file.display()))?;
            let public = medledger_vault::share::MemberBoxKey::from_secret_bytes(&secret)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?
                .public_bytes();
            let endpoint = node.gateway_url();
            let (current, _) = client
                .query_raw(&medledger_tx::keys::gateway(&node.name), 0)
                .await?;
            let current = current
                .map(|b| pb::Gateway::decode(b.as_slice()))
                .transpose()?;
            if current.is_some_and(|g| g.endpoint == endpoint && g.box_public_key == public) {
                continue;
            }
            let admin = keyring.get(&node.name)?;
            let signature =
                medledger_tx::boxkey::sign(&admin, &self.spec.chain_id, &node.name, &public);
            let report = client
                .submit(
                    &admin,
                    Msg::SetGateway(pb::SetGateway {
                        endpoint,
                        box_public_key: public.to_vec(),
                        box_key_signature: signature.to_vec(),
                    }),
                )
                .await?;
            if report.code != 0 {
                eprintln!(
                    "warning: {}'s SetGateway refused: {} {}",
                    node.name, report.code_name, report.log
                );
            }
        }
        Ok(())
    }

    /// Starts node `i`'s app and CometBFT, whichever is not running (a kvstore node has no app
    /// process).
    pub fn start_node(&self, i: usize) -> anyhow::Result<()> {
        if self.spec.app == AppKind::Medledger
            && self.running_pid(i, Proc::App).is_none()
            && self.running_pid(i, Proc::CometBft).is_some()
        {
            // CometBFT opens its ABCI connections once, at start: without its app it is
            // shutting down, or hung doing so (seen in the fault soak). Stop it for good.
            self.stop(i, Proc::CometBft, false)?;
        }
        if self.spec.app == AppKind::Medledger {
            self.start(i, Proc::App)?;
        }
        self.start(i, Proc::CometBft)
    }

    /// Starts one process of node `i` unless it is running.
    pub fn start(&self, i: usize, p: Proc) -> anyhow::Result<()> {
        self.start_with_env(i, p, &[])
    }

    /// [`Localnet::start`] with extra environment variables for the process (the fault suite
    /// arms crash points this way).
    pub fn start_with_env(&self, i: usize, p: Proc, env: &[(&str, &str)]) -> anyhow::Result<()> {
        if self.running_pid(i, p).is_some() {
            return Ok(());
        }
        let node = &self.spec.nodes[i];
        let dir = self.node_dir(i);
        // The app's command, and the address it listens on to wait for.
        let (mut cmd, listen) = match p {
            Proc::App => {
                let listen = self.app_address(i)?;
                let mut c = Command::new(&self.medledger_bin);
                c.arg("start")
                    .arg("--data")
                    .arg(dir.join("app"))
                    .arg("--listen")
                    .arg(&listen)
                    .arg("--bls-key")
                    .arg(dir.join("bls_key.json"))
                    .arg("--metrics")
                    .arg(format!("127.0.0.1:{}", node.ports.metrics_port()));
                if let Some(n) = self.spec.snapshot_interval {
                    c.arg("--snapshot-interval").arg(n.to_string());
                }
                if let Some(n) = self.spec.keep_recent {
                    c.arg("--keep-recent")
                        .arg(n.to_string())
                        .arg("--keep-every")
                        .arg("0");
                }
                if let Some(n) = self.spec.retain_blocks {
                    c.arg("--retain-blocks").arg(n.to_string());
                }
                (c, Some(listen))
            }
            Proc::CometBft => {
                let mut c = Command::new(&self.cometbft_bin);
                c.arg("start").arg("--home").arg(dir.join("cometbft"));
                // The flag overrides config.toml's proxy_app, so both kinds share one config.
                if self.spec.app == AppKind::Kvstore {
                    c.arg("--proxy_app=kvstore");
                }
                (c, None)
            }
            Proc::Gateway => {
                let keys_dir = self
                    .keys_dir
                    .as_ref()
                    .context("internal: the localnet was opened without its keyring")?;
                let gw = self.gateway_dir(i);
                let listen = format!("127.0.0.1:{}", node.ports.gateway_port());
                let mut c = Command::new(&self.medledger_bin);
                c.arg("gateway")
                    .arg("start")
                    .arg("--data")
                    .arg(gw.join("data"))
                    .arg("--member")
                    .arg(&node.name)
                    .arg("--admin-key")
                    .arg(keys_dir.join(format!("{}.json", node.name)))
                    .arg("--kek")
                    .arg(gw.join("kek"))
                    .arg("--box-key")
                    .arg(gw.join("box.key"))
                    .arg("--node")
                    .arg(node.rpc_url())
                    .arg("--genesis")
                    .arg(dir.join("cometbft/config/genesis.json"))
                    .arg("--listen")
                    .arg(&listen);
                (c, Some(listen))
            }
        };
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_file(i, p))?;
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Own process group: Ctrl-C in the terminal that ran `localnet up` does not stop the nodes.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} of {}", p.file(), node.name))?;
        fs::write(self.pid_file(i, p), child.id().to_string())?;
        self.children
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .insert((i, p), child);
        if let Some(listen) = &listen {
            wait_for_app(listen, Duration::from_secs(20)).with_context(|| {
                format!(
                    "{}'s {} did not listen; see {}",
                    node.name,
                    p.file(),
                    self.log_file(i, p).display()
                )
            })?;
        }
        Ok(())
    }

    /// Sends `signal` (e.g. `KILL`, `TERM`, `STOP`, `CONT`) to a process of node `i`.
    pub fn signal(&self, i: usize, p: Proc, signal: &str) -> anyhow::Result<()> {
        let pid = self
            .running_pid(i, p)
            .with_context(|| format!("{} of node {i} is not running", p.file()))?;
        let ok = Command::new("kill")
            .arg("-s")
            .arg(signal)
            .arg(pid.to_string())
            .status()?
            .success();
        if !ok {
            bail!("kill -s {signal} {pid} failed");
        }
        Ok(())
    }

    /// Stops a process of node `i`: SIGTERM, then SIGKILL after 10 s. `kill9` skips the TERM.
    pub fn stop(&self, i: usize, p: Proc, kill9: bool) -> anyhow::Result<()> {
        if let Some(pid) = self.running_pid(i, p) {
            if !kill9 {
                let _ = self.signal(i, p, "TERM");
                let deadline = Instant::now() + Duration::from_secs(10);
                while is_alive_as(pid, "") && Instant::now() < deadline {
                    self.reap(i, p);
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            if is_alive_as(pid, "") {
                let _ = self.signal(i, p, "KILL");
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while is_alive_as(pid, "") && Instant::now() < deadline {
                self.reap(i, p);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Ok(mut children) = self.children.lock() {
            if let Some(mut c) = children.remove(&(i, p)) {
                let _ = c.wait();
            }
        }
        let _ = fs::remove_file(self.pid_file(i, p));
        Ok(())
    }

    fn reap(&self, i: usize, p: Proc) {
        if let Ok(mut children) = self.children.lock() {
            if let Some(c) = children.get_mut(&(i, p)) {
                let _ = c.try_wait();
            }
        }
    }

    /// Stops every process of the localnet (gateways, CometBFT, then the apps).
    pub fn down(&self) -> anyhow::Result<()> {
        for i in 0..self.spec.nodes.len() {
            self.stop(i, Proc::Gateway, false)?;
            self.stop(i, Proc::CometBft, false)?;
            self.stop(i, Proc::App, false)?;
        }
        Ok(())
    }

    /// Waits until node `i` reports a latest height of at least `height`.
    pub async fn wait_for_height(
        &self,
        i: usize,
        height: u64,
        timeout: Duration,
    ) -> anyhow::Result<u64> {
        let client = self.client(i)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(h) = client.latest_height().await {
                if h >= height {
                    return Ok(h);
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "node {} did not reach height {height} within {timeout:?}; see {}",
                    self.spec.nodes[i].name,
                    self.log_file(i, Proc::CometBft).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One line per node: name, RPC, processes, height and app hash.
    pub async fn status(&self) -> Vec<NodeStatus> {
        let mut out = Vec::new();
        for (i, node) in self.spec.nodes.iter().enumerate() {
            let mut s = NodeStatus {
                name: node.name.clone(),
                rpc: node.rpc_url(),
                app_running: self.running_pid(i, Proc::App).is_some(),
                cometbft_running: self.running_pid(i, Proc::CometBft).is_some(),
                gateway: self.spec.gateways.then(|| node.gateway_url()),
                gateway_running: self.running_pid(i, Proc::Gateway).is_some(),
                metrics: (self.spec.app == AppKind::Medledger)
                    .then(|| format!("http://127.0.0.1:{}/metrics", node.ports.metrics_port())),
                cometbft_metrics: format!(
                    "http://127.0.0.1:{}/metrics",
                    node.ports.cometbft_metrics_port()
                ),
                height: None,
                app_hash: None,
            };
            if let Ok(c) = self.client(i) {
                if let Ok(st) = tendermint_rpc::Client::status(c.rpc()).await {
                    s.height = Some(st.sync_info.latest_block_height.value());
                    s.app_hash = Some(hex::encode_upper(st.sync_info.latest_app_hash.as_bytes()));
                }
            }
            out.push(s);
        }
        out
    }
}

impl Drop for Localnet {
    /// Processes started through this handle are reaped; they keep running unless stopped (the
    /// CLI's `localnet up` exits and leaves them running on purpose).
    fn drop(&mut self) {
        if let Ok(mut children) = self.children.lock() {
            for c in children.values_mut() {
                let _ = c.try_wait();
            }
        }
    }
}

/// Status of one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// RPC URL.
    pub rpc: String,
    /// Whether the app process runs.
    pub app_running: bool,
    /// Whether the CometBFT process runs.
    pub cometbft_running: bool,
    /// The gateway's URL, when the localnet runs gateways.
    pub gateway: Option<String>,
    /// Whether the gateway process runs.
    pub gateway_running: bool,
    /// The app's Prometheus endpoint (the gateway's is its URL + `/metrics`).
    pub metrics: Option<String>,
    /// CometBFT's Prometheus endpoint.
    pub cometbft_metrics: String,
    /// Latest height, if the RPC answered.
    pub height: Option<u64>,
    /// App hash in the latest header, if the RPC answered.
    pub app_hash: Option<String>,
}

/// Whether `pid` is a live (non-zombie) process whose command line contains `name`.
fn is_alive_as(pid: u32, name: &str) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&cmdline).contains(name)
}

/// Waits until something accepts connections at `address` (`unix://path` or `host:port`).
fn wait_for_app(address: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let up = match address.strip_prefix("unix://") {
            Some(path) => std::os::unix::net::UnixStream::connect(path).is_ok(),
            None => TcpStream::connect(address).is_ok(),
        };
        if up {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on {address} after {timeout:?}")
}

/// Creates CometBFT homes, member keys and one genesis for all nodes: the three steps of
/// [`deploy`] (each member's `init`, genesis assembly, each node's install), on 127.0.0.1.
fn init(
    dir: &Path,
    spec: &Spec,
    keyring: &Keyring,
    cometbft_bin: &PathBuf,
    medledger_bin: &Path,
) -> anyhow::Result<()> {
    if spec.nodes.len() > MEMBERS.len() {
        bail!("a localnet has at most {} nodes", MEMBERS.len());
    }
    let mut members = Vec::new();
    for (i, node) in spec.nodes.iter().enumerate() {
        let (id, name, kind) = MEMBERS[i];
        members.push(deploy::init_member(
            cometbft_bin,
            keyring,
            &deploy::MemberInit {
                home: dir.join(&node.name),
                id: id.into(),
                name: name.into(),
                kind: kind.into(),
                p2p_address: format!("127.0.0.1:{}", node.ports.p2p),
            },
        )?);
    }
    let template: serde_json::Value = serde_json::from_slice(&fs::read(
        dir.join(&spec.nodes[0].name)
            .join("cometbft/config/genesis.json"),
    )?)?;
    let mut genesis = deploy::assemble_genesis(
        &deploy::GenesisParams {
            chain_id: spec.chain_id.clone(),
            max_block_bytes: spec.max_block_bytes,
        },
        &template,
        &members,
    )?;
    // The pages the gateways embed are the approved release (docs/privacy.md, "Code trust"), so
    // a fresh localnet serves them.
    genesis["app_state"]["web_release"] = serde_json::json!({
        "bundle_sha256": embedded_web_release(medledger_bin)?,
        "version": "localnet",
    });
    for (node, member) in spec.nodes.iter().zip(&members) {
        let node_dir = dir.join(&node.name);
        let config = node_config(spec, node, &node_dir, deploy::peers(&members, &member.id))?;
        deploy::install(&node_dir, &genesis, &config)?;
    }
    Ok(())
}

/// The release hash of the pages `medledger_bin` embeds (`medledger web hash`).
fn embedded_web_release(medledger_bin: &Path) -> anyhow::Result<String> {
    let out = Command::new(medledger_bin)
        .args(["web", "hash"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} web hash", medledger_bin.display()))?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{} web hash did not print a release hash: {}{}",
            medledger_bin.display(),
            hash,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(hash)
}

/// The `config.toml` settings of a localnet node: everything on 127.0.0.1, the app on a Unix
/// socket in the node's directory.
fn node_config(
    spec: &Spec,
    node: &NodeSpec,
    node_dir: &Path,
    persistent_peers: String,
) -> anyhow::Result<deploy::NodeConfig> {
    // The app on a Unix socket: over TCP each small ABCI response that follows another waits
    // for the peer's delayed ACK (Nagle; tower-abci does not set TCP_NODELAY), ~40 ms per
    // request/flush round trip. See docs/performance.md.
    let socket = fs::canonicalize(node_dir)?.join(APP_SOCKET);
    Ok(deploy::NodeConfig {
        moniker: node.name.clone(),
        proxy_app: format!("unix://{}", socket.display()),
        rpc_laddr: format!("tcp://127.0.0.1:{}", node.ports.rpc),
        p2p_laddr: format!("tcp://127.0.0.1:{}", node.ports.p2p),
        prometheus_laddr: format!("127.0.0.1:{}", node.ports.cometbft_metrics_port()),
        persistent_peers,
        timeout_commit: spec.timeout_commit.clone(),
        max_block_bytes: spec.max_block_bytes,
        same_host: true,
    })
}

/// The app's Unix socket in a node's directory.
pub const APP_SOCKET: &str = "app.sock";

/// The member that joins a running localnet by governance in tests and demos: a second lab.
pub const JOINING_MEMBER: (&str, &str, &str) = ("lab-e", "Lab E", "lab");

/// What a node prepared by [`Localnet::add_node`] brings to the AddMember proposal that makes
/// it a validator.
#[derive(Clone, Debug)]
pub struct JoiningNode {
    /// Index of the node in the localnet's spec (for `start_node`, `client`, ...).
    pub index: usize,
    /// Member id (the node's name).
    pub member_id: String,
    /// Public key of the member's admin (the private key is in the keyring under `member_id`).
    pub admin_key: [u8; 32],
    /// CometBFT consensus key (Ed25519) of the node.
    pub consensus_key: [u8; 32],
    /// Compressed BLS public key the node signs checkpoints with.
    pub bls_key: Vec<u8>,
    /// Its proof of possession.
    pub bls_pop: Vec<u8>,
}

impl Localnet {
    /// Makes node `i` (prepared by [`Localnet::add_node`], not started) join by state sync:
    /// CometBFT's light client starts from block `trust_height` with hash `trust_hash` (hex),
    /// checks headers through the RPC of the first two nodes, and the node restores the newest
    /// snapshot its peers offer instead of replaying from genesis; then it follows the chain.
    pub fn join_by_state_sync(
        &self,
        i: usize,
        trust_height: u64,
        trust_hash: &str,
    ) -> anyhow::Result<()> {
        let servers: Vec<String> = self
            .spec
            .nodes
            .iter()
            .take(2)
            .map(|n| format!("http://127.0.0.1:{}", n.ports.rpc))
            .collect();
        if servers.len() < 2 {
            bail!("state sync checks headers with two RPC servers; the localnet has fewer nodes");
        }
        let path = self.node_dir(i).join("cometbft/config/config.toml");
        let mut doc: DocumentMut = fs::read_to_string(&path)?.parse().context("config.toml")?;
        doc["statesync"]["enable"] = value(true);
        doc["statesync"]["rpc_servers"] = value(servers.join(","));
        doc["statesync"]["trust_height"] = value(i64::try_from(trust_height)?);
        doc["statesync"]["trust_hash"] = value(trust_hash);
        doc["statesync"]["trust_period"] = value("168h0m0s");
        doc["statesync"]["discovery_time"] = value("5s");
        fs::write(&path, doc.to_string())?;
        Ok(())
    }

    /// Prepares a new node `name` to join this (running) localnet: a CometBFT home with the
    /// running chain's genesis.json and every existing node as a persistent peer, a BLS key, and
    /// the member's admin key in `keyring`. Started with [`Localnet::start_node`], it syncs as a
    /// full node; it signs blocks once a governance vote adds it with the returned keys. The node
    /// is recorded in localnet.json, so `status` and `down` include it.
    pub fn add_node(
        &mut self,
        name: &str,
        ports: NodePorts,
        keyring: &Keyring,
    ) -> anyhow::Result<JoiningNode> {
        if self.spec.nodes.iter().any(|n| n.name == name) {
            bail!("the localnet already has a node {name}");
        }
        let first = self
            .spec
            .nodes
            .first()
            .context("the localnet has no nodes")?;
        let genesis: serde_json::Value = serde_json::from_slice(&fs::read(
            self.dir
                .join(&first.name)
                .join("cometbft/config/genesis.json"),
        )?)?;
        let mut peers = Vec::new();
        for n in &self.spec.nodes {
            let home = self
                .dir
                .join(&n.name)
                .join("cometbft")
                .to_string_lossy()
                .to_string();
            let id = cometbft::run(&self.cometbft_bin, &["show-node-id", "--home", &home])?;
            peers.push(format!("{}@127.0.0.1:{}", id.trim(), n.ports.p2p));
        }
        let node = NodeSpec {
            name: name.to_string(),
            ports,
        };
        let dir = self.dir.join(name);
        // The same first step as a founder's (its member.json goes into an AddMember proposal
        // instead of genesis), then the running chain's genesis.
        let member = deploy::init_member(
            &self.cometbft_bin,
            keyring,
            &deploy::MemberInit {
                home: dir.clone(),
                id: name.into(),
                name: name.into(),
                kind: JOINING_MEMBER.2.into(),
                p2p_address: format!("127.0.0.1:{}", node.ports.p2p),
            },
        )?;
        let config = node_config(&self.spec, &node, &dir, peers.join(","))?;
        deploy::install(&dir, &genesis, &config)?;
        let pub_key: tendermint::PublicKey =
            serde_json::from_value(member.validator.pub_key.clone())
                .context("member.json: pub_key")?;
        let consensus_key: [u8; 32] = pub_key
            .ed25519()
            .and_then(|k| k.as_bytes().try_into().ok())
            .context("the node's consensus key is not Ed25519")?;
        let admin = keyring.get(name)?;
        let bls = (member.validator.bls_key, member.validator.bls_pop);
        self.spec.nodes.push(node);
        fs::write(
            self.dir.join("localnet.json"),
            serde_json::to_vec_pretty(&self.spec)?,
        )?;
        Ok(JoiningNode {
            index: self.spec.nodes.len() - 1,
            member_id: name.to_string(),
            admin_key: admin.verifying_key().to_bytes(),
            consensus_key,
            bls_key: hex::decode(&bls.0)?,
            bls_pop: hex::decode(&bls.1)?,
        })
    }
}

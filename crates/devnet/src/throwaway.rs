//! Throwaway localnets: a consortium in a fresh temp dir, on ports that must be free, stopped and
//! deleted when dropped (`medledger bench compare | grid`, and anything else that wants a net for
//! one run).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use medledger_client::Keyring;

use crate::localnet::{Localnet, NodePorts, Spec};

/// A 4-validator localnet in a temp dir, stopped and deleted when dropped.
pub struct ThrowawayNet {
    /// The localnet.
    pub net: Localnet,
    /// Its keyring (the members' admin keys).
    pub keyring: Keyring,
    dir: PathBuf,
}

impl ThrowawayNet {
    /// Creates and starts a localnet of `spec` in a fresh temp dir.
    pub async fn start(spec: Spec, medledger_bin: PathBuf) -> anyhow::Result<ThrowawayNet> {
        // A net just stopped (the previous bench of a run, `bench grid --kvstore`) may hold its
        // ports for a moment while its processes exit: wait for them rather than fail.
        let deadline = Instant::now() + PORTS_WAIT;
        for node in &spec.nodes {
            loop {
                match ports_free(&node.ports, spec.gateways) {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => {
                        return Err(e).with_context(|| {
                            format!(
                                "{}: still in use after {PORTS_WAIT:?}; is a localnet running there? pass --base-port",
                                node.name
                            )
                        })
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "medledger-bench-{}-{}-{:08x}",
            spec.app.name(),
            std::process::id(),
            random_u32()?
        ));
        let keyring = Keyring::new(dir.join("keys"));
        let net = Localnet::open_or_init(&dir.join("localnet"), spec, &keyring, medledger_bin)?;
        let t = ThrowawayNet { net, keyring, dir };
        t.net.up().await?;
        // Every node at height ≥ 2: all are connected and voting before the load starts.
        for i in 0..t.net.spec.nodes.len() {
            t.net.wait_for_height(i, 2, Duration::from_secs(60)).await?;
        }
        Ok(t)
    }

    /// Waits until every node's mempool is empty (between grid cells, so that one cell's backlog
    /// does not load the next); gives up after `timeout`.
    pub async fn wait_mempools_empty(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        for node in &self.net.spec.nodes {
            loop {
                let port = node.ports.rpc;
                let n = tokio::task::spawn_blocking(move || mempool_size(port)).await??;
                if n == 0 {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "{}'s mempool still holds {n} txs after {timeout:?}",
                        node.name
                    );
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }
}

impl Drop for ThrowawayNet {
    fn drop(&mut self) {
        let _ = self.net.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How long [`ThrowawayNet::start`] waits for its ports to be released.
const PORTS_WAIT: Duration = Duration::from_secs(30);

fn ports_free(ports: &NodePorts, gateway: bool) -> anyhow::Result<()> {
    let mut all = vec![
        ports.p2p,
        ports.rpc,
        ports.abci,
        ports.metrics_port(),
        ports.cometbft_metrics_port(),
    ];
    if gateway {
        all.push(ports.gateway_port());
    }
    for port in all {
        std::net::TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("port {port} is in use"))?;
    }
    Ok(())
}

/// `/num_unconfirmed_txs` `total` of the node whose RPC listens on `port`. A plain HTTP/1.0 GET:
/// tendermint-rpc 0.40 has no client method for this endpoint.
fn mempool_size(port: u16) -> anyhow::Result<u64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(
        format!("GET /num_unconfirmed_txs HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
    )?;
    let mut buf = Vec::new();
    // The answer is a few hundred bytes (no txs are listed); bound the read anyway.
    s.take(1 << 20).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no HTTP body")?;
    let v: serde_json::Value =
        serde_json::from_str(body).context("num_unconfirmed_txs is not JSON")?;
    v["result"]["total"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .context("num_unconfirmed_txs has no total")
}

fn random_u32() -> anyhow::Result<u32> {
    let mut b = [0u8; 4];
    getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(u32::from_le_bytes(b))
}

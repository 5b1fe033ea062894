//! Network partitions without privileges: every p2p link between two validators goes through a
//! TCP relay in the test process, which the test can cut and heal.
//!
//! Node `i` reaches node `j` at relay `(i, j)` (its `persistent_peers` are rewritten before
//! start; PEX is off, so no node learns another address). Isolating node `k` drops every open
//! connection through a relay `(k, _)` or `(_, k)` and refuses new ones until healed. CometBFT's
//! secret connections run end to end through the relays, which only copy bytes.

use std::collections::BTreeSet;
use std::fs;
use std::sync::Arc;

use medledger_devnet::localnet::Localnet;
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use toml_edit::{value, DocumentMut};

/// The relays of one localnet.
pub struct Links {
    isolated: Arc<watch::Sender<BTreeSet<usize>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn is_cut(isolated: &BTreeSet<usize>, i: usize, j: usize) -> bool {
    isolated.contains(&i) || isolated.contains(&j)
}

impl Links {
    /// Starts a relay per ordered pair of nodes and points each node's peers at them. Call
    /// before the nodes start.
    pub async fn install(net: &Localnet) -> Links {
        let (tx, _) = watch::channel(BTreeSet::new());
        let isolated = Arc::new(tx);
        let n = net.spec.nodes.len();
        let mut tasks = Vec::new();
        for i in 0..n {
            let config = net.node_dir(i).join("cometbft/config/config.toml");
            let mut doc: DocumentMut = fs::read_to_string(&config).unwrap().parse().unwrap();
            let peers = doc["p2p"]["persistent_peers"].as_str().unwrap().to_string();
            let mut relayed = Vec::new();
            for peer in peers.split(',') {
                let (id, addr) = peer.split_once('@').unwrap();
                let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
                let j = (0..n)
                    .find(|&j| net.spec.nodes[j].ports.p2p == port)
                    .unwrap();
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let relay_port = listener.local_addr().unwrap().port();
                relayed.push(format!("{id}@127.0.0.1:{relay_port}"));
                tasks.push(tokio::spawn(relay(listener, i, j, port, isolated.clone())));
            }
            doc["p2p"]["persistent_peers"] = value(relayed.join(","));
            fs::write(&config, doc.to_string()).unwrap();
        }
        Links { isolated, tasks }
    }

    /// Cuts node `k` off from every other node.
    pub fn isolate(&self, k: usize) {
        self.isolated.send_modify(|s| {
            s.insert(k);
        });
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.isolated.send_modify(BTreeSet::clear);
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Relay `(i, j)`: accepts node `i`'s connections and forwards them to node `j`'s p2p port.
async fn relay(
    listener: TcpListener,
    i: usize,
    j: usize,
    target: u16,
    isolated: Arc<watch::Sender<BTreeSet<usize>>>,
) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            continue;
        };
        if is_cut(&isolated.borrow(), i, j) {
            continue; // dropped: the dialer sees its connection closed
        }
        let mut cut = isolated.subscribe();
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
                return;
            };
            let severed = async {
                loop {
                    if is_cut(&cut.borrow_and_update(), i, j) {
                        return;
                    }
                    if cut.changed().await.is_err() {
                        return;
                    }
                }
            };
            tokio::select! {
                _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = severed => {}
            }
        });
    }
}

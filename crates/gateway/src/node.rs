//! The gateway's view of the ledger: proven reads (ICS23 proofs against an app hash whose header
//! is checked with CometBFT's light-client rules from the genesis trust root) and submission of
//! signed transactions, waiting for their block.

use std::time::{Duration, Instant};

use medledger_client::rpc::{broadcast_and_wait, SubmitError};

use medledger_query::light::{verify_header, TrustedValidators};
use medledger_query::{decode_proof, verify, Proven};
use medledger_tx::keys;
use tendermint::block::Height;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::{Client as _, HttpClient, Paging};

/// A failure to talk to the ledger (answered 503: nothing is released).
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// No node answered.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// A node answered something that does not verify or parse.
    #[error("node answer refused: {0}")]
    BadAnswer(String),
    /// These exact tx bytes were submitted before (CometBFT's mempool cache): a resent access
    /// log, usually signed with a stale sequence. Nothing is released for it.
    #[error("this signed tx was submitted before; sign a new one with the signer's next sequence")]
    AlreadySubmitted,
}

/// The committed result of a tx (or its refusal by CheckTx, at height 0): the client's report.
pub use medledger_client::rpc::TxReport as Committed;

impl From<SubmitError> for NodeError {
    fn from(e: SubmitError) -> NodeError {
        match e {
            SubmitError::AlreadySubmitted => NodeError::AlreadySubmitted,
            SubmitError::Unreachable(m) => NodeError::Unreachable(m),
            e @ SubmitError::NotCommitted { .. } => NodeError::Unreachable(e.to_string()),
        }
    }
}

/// A proven value decoded as the protobuf message `M`.
fn decode_value<M: prost::Message + Default>(
    value: Option<Vec<u8>>,
) -> Result<Option<M>, NodeError> {
    value
        .map(|b| {
            M::decode(b.as_slice())
                .map_err(|e| NodeError::BadAnswer(format!("value does not decode: {e}")))
        })
        .transpose()
}

/// Clients of one or more nodes (tried in order), and the trust root.
pub struct Node {
    rpcs: Vec<HttpClient>,
    trusted: TrustedValidators,
    /// App hashes of recent states whose header this node already verified: a read at a state
    /// verified before costs one query instead of three RPCs and a header check.
    verified: std::sync::Mutex<std::collections::BTreeMap<u64, Vec<u8>>>,
    /// The latest block height seen and when: reads within [`LATEST_FRESH`] of it reuse it
    /// instead of asking the node again.
    latest: std::sync::Mutex<Option<(Instant, u64)>>,
}

/// How long a seen latest height is reused (well under a block interval).
const LATEST_FRESH: Duration = Duration::from_millis(200);

/// How many verified app hashes [`Node`] keeps.
const VERIFIED_CACHE: usize = 64;

impl Node {
    /// Clients of `urls`, trusting the validators of `genesis_json`.
    pub fn new(urls: &[String], genesis_json: &[u8]) -> anyhow::Result<Node> {
        if urls.is_empty() {
            anyhow::bail!("name at least one node RPC URL");
        }
        let mut rpcs = Vec::new();
        for url in urls {
            let u: tendermint_rpc::HttpClientUrl = url
                .parse()
                .map_err(|e| anyhow::anyhow!("bad node URL {url:?}: {e}"))?;
            rpcs.push(
                HttpClient::builder(u)
                    .compat_mode(CompatMode::V0_38)
                    .build()
                    .map_err(|e| anyhow::anyhow!("node client {url}: {e}"))?,
            );
        }
        let trusted = TrustedValidators::from_genesis_json(genesis_json)
            .map_err(|e| anyhow::anyhow!("genesis trust root: {e}"))?;
        Ok(Node {
            rpcs,
            trusted,
            verified: Default::default(),
            latest: Default::default(),
        })
    }

    /// The trusted chain id.
    pub fn chain_id(&self) -> &str {
        &self.trusted.chain_id
    }

    /// Reads `key` with its proof at the state the latest header attests (one block old, so no
    /// wait), falling back to the newest state for an absence; verifies the header that carries
    /// that state's app hash against the trust root, and the proof against the app hash.
    pub async fn read(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        // A key absent one block ago may have been written by the latest block (an anchor, a
        // patient, just committed): ask the newest state before answering "absent".
        match self.read_state(key, false).await? {
            Some(v) => Ok(Some(v)),
            None => self.read_state(key, true).await,
        }
    }

    /// [`Node::read`] of the newest committed state (waits for the next header, up to a block
    /// interval): for what must not be a block old, such as a signer's next sequence.
    pub async fn read_newest(&self, key: &[u8]) -> Result<Option<Vec<u8>>, NodeError> {
        self.read_state(key, true).await
    }

    async fn read_state(&self, key: &[u8], newest: bool) -> Result<Option<Vec<u8>>, NodeError> {
        let mut last = String::from("no node");
        for rpc in &self.rpcs {
            match self.read_from(rpc, key, newest).await {
                Ok(v) => return Ok(v),
                Err(NodeError::Unreachable(e)) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(NodeError::Unreachable(last))
    }

    async fn read_from(
        &self,
        rpc: &HttpClient,
        key: &[u8],
        newest: bool,
    ) -> Result<Option<Vec<u8>>, NodeError> {
        let unreachable = |e: tendermint_rpc::Error| NodeError::Unreachable(e.to_string());
        // Read the state whose header already exists: the state after block L-1, attested by
        // the latest block L. (The state after L needs header L+1, a block away: reading it
        // would wait up to a block interval per read.) One block old is fine for what the
        // gateway decides from it; the consent itself is decided by the ledger when it commits
        // the reader's access.
        let state = if newest {
            None
        } else {
            let seen = self
                .latest
                .lock()
                .ok()
                .and_then(|l| *l)
                .filter(|(at, _)| at.elapsed() < LATEST_FRESH)
                .map(|(_, h)| h);
            let latest = match seen {
                Some(h) => h,
                None => {
                    let h = rpc
                        .status()
                        .await
                        .map_err(unreachable)?
                        .sync_info
                        .latest_block_height
                        .value();
                    if let Ok(mut l) = self.latest.lock() {
                        *l = Some((Instant::now(), h));
                    }
                    h
                }
            };
            Some(
                Height::try_from(latest.saturating_sub(1).max(1))
                    .map_err(|e| NodeError::BadAnswer(e.to_string()))?,
            )
        };
        let r = rpc
            .abci_query(Some("/store".to_string()), key.to_vec(), state, true)
            .await
            .map_err(unreachable)?;
        if r.code.value() != 0 {
            return Err(NodeError::BadAnswer(format!(
                "query {} failed: {}",
                String::from_utf8_lossy(key),
                r.log
            )));
        }
        let value = (r.log == "exists").then_some(r.value);
        let op = r
            .proof
            .and_then(|p| p.ops.into_iter().next())
            .ok_or_else(|| NodeError::BadAnswer("answer without a proof".into()))?;
        let proof = decode_proof(&op.field_type, &op.data, key, value.as_deref())
            .map_err(|e| NodeError::BadAnswer(e.to_string()))?;
        let state = r.height.value();
        let app_hash = match self.cached(state) {
            Some(h) => h,
            None => {
                let h = self.verify_state(rpc, state).await?;
                self.remember(state, h.clone());
                h
            }
        };
        match verify(&app_hash, key, value.as_deref(), &proof)
            .map_err(|e| NodeError::BadAnswer(e.to_string()))?
        {
            Proven::Present(v) => Ok(Some(v)),
            Proven::Absent => Ok(None),
        }
    }

    fn cached(&self, state: u64) -> Option<Vec<u8>> {
        self.verified.lock().ok()?.get(&state).cloned()
    }

    fn remember(&self, state: u64, app_hash: Vec<u8>) {
        if let Ok(mut m) = self.verified.lock() {
            m.insert(state, app_hash);
            while m.len() > VERIFIED_CACHE {
                m.pop_first();
            }
        }
    }

    /// The app hash of state `state`, from header `state + 1` verified from the trust root.
    async fn verify_state(&self, rpc: &HttpClient, state: u64) -> Result<Vec<u8>, NodeError> {
        let unreachable = |e: tendermint_rpc::Error| NodeError::Unreachable(e.to_string());
        let next = Height::try_from(state.saturating_add(1))
            .map_err(|e| NodeError::BadAnswer(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let commit = loop {
            match rpc.commit(next).await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => return Err(unreachable(e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let validators = rpc
            .validators(next, Paging::All)
            .await
            .map_err(unreachable)?
            .validators;
        let att = verify_header(
            &self.trusted,
            &commit.signed_header,
            &validators,
            tendermint::Time::now(),
        )
        .map_err(|e| NodeError::BadAnswer(format!("header {next}: {e}")))?;
        Ok(att.app_hash)
    }

    /// A proven protobuf value.
    pub async fn read_msg<M: prost::Message + Default>(
        &self,
        key: &[u8],
    ) -> Result<Option<M>, NodeError> {
        decode_value(self.read(key).await?)
    }

    /// [`Node::read_msg`] of the newest state: what a tx this gateway just waited for wrote.
    pub async fn read_msg_newest<M: prost::Message + Default>(
        &self,
        key: &[u8],
    ) -> Result<Option<M>, NodeError> {
        decode_value(self.read_newest(key).await?)
    }

    /// The next sequence of `public_key` (proven).
    pub async fn next_sequence(&self, public_key: &[u8; 32]) -> Result<u64, NodeError> {
        Ok(self
            .read_newest(&keys::sequence(public_key))
            .await?
            .as_deref()
            .and_then(keys::decode_u64)
            .unwrap_or(0))
    }

    /// Broadcasts signed tx bytes and waits for the block that holds them
    /// ([`medledger_client::rpc::broadcast_and_wait`]), trying the next node while one does not
    /// answer the broadcast.
    pub async fn submit(&self, tx: Vec<u8>) -> Result<Committed, NodeError> {
        let mut last = String::from("no node");
        for rpc in &self.rpcs {
            match broadcast_and_wait(rpc, tx.clone()).await {
                Err(SubmitError::Unreachable(e)) => last = e,
                answer => return Ok(answer?),
            }
        }
        Err(NodeError::Unreachable(last))
    }
}

//! A client of one node's CometBFT RPC: submit signed transactions and read proven state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ed25519_dalek::SigningKey;
use ics23::CommitmentProof;
use medledger_query::history::ProvenRead;
use medledger_query::{decode_proof, verify, Proven};
use medledger_tx::pb::{tx_body::Msg, TxBody};
use medledger_tx::{keys, sign_tx, Code};
use serde::Serialize;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::Height;
use tendermint::merkle::proof::ProofOp;
use tendermint::validator;
use tendermint_rpc::client::CompatMode;
use tendermint_rpc::Paging;
use tendermint_rpc::{Client as _, HttpClient};

/// How long [`Client::submit`] waits for a tx to be committed.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The outcome of a submitted transaction.
#[derive(Clone, Debug, Serialize)]
pub struct TxReport {
    /// Tx hash (hex), as CometBFT's `/tx?hash=0x…` takes it.
    pub hash: String,
    /// 0 if applied; else the rejection code.
    pub code: u32,
    /// The code's name (`OK` or e.g. `NO_PERMITTING_CONSENT`).
    pub code_name: String,
    /// The rejection reason, empty on success.
    pub log: String,
    /// Height of the block that holds the tx; 0 if it was refused by CheckTx.
    pub height: u64,
    /// Events the tx emitted.
    pub events: Vec<EventView>,
}

/// An event of a committed tx.
#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    /// Event type, e.g. `medledger.consent.granted`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Attributes by name.
    pub attributes: BTreeMap<String, String>,
}

/// Why a submitted tx has no answer from the ledger. A refusal by the ledger is not an error:
/// it is a [`TxReport`] with its code.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The node did not answer the broadcast.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// These exact tx bytes were submitted before (CometBFT's mempool cache): usually a resent
    /// tx signed with a stale sequence.
    #[error("this signed tx was submitted before; sign a new one with the signer's next sequence")]
    AlreadySubmitted,
    /// The node admitted the tx but no block held it within [`COMMIT_TIMEOUT`].
    #[error("tx {hash} was accepted into the mempool but not committed within {COMMIT_TIMEOUT:?}")]
    NotCommitted {
        /// The tx hash (hex).
        hash: String,
    },
}

/// Broadcasts signed tx bytes to the node behind `rpc` and waits until they are in a block (or
/// refused by CheckTx). An unordered tx not yet seen in a block is resent as is every
/// [`crate::unordered::RESEND_EVERY`] until its `valid_until` (a mempool may have dropped it; a
/// copy is never applied twice). The one submit-and-wait path of the CLI, the gateway and the
/// tests.
pub async fn broadcast_and_wait(rpc: &HttpClient, tx: Vec<u8>) -> Result<TxReport, SubmitError> {
    let resend_until = crate::unordered::resendable_until(&tx);
    let res = match rpc.broadcast_tx_sync(tx.clone()).await {
        Ok(res) => res,
        // CometBFT says so only in words (an RPC error, no code): this is the one place that
        // reads them.
        Err(e) if e.to_string().contains("already exists in cache") => {
            return Err(SubmitError::AlreadySubmitted)
        }
        Err(e) => return Err(SubmitError::Unreachable(e.to_string())),
    };
    let hash = res.hash.to_string();
    let code = res.code.value();
    if code != 0 {
        return Ok(TxReport {
            hash,
            code,
            code_name: Code::name_of(code),
            log: res.log,
            height: 0,
            events: Vec::new(),
        });
    }
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let mut resend_at = Instant::now() + crate::unordered::RESEND_EVERY;
    loop {
        if let Ok(r) = rpc.tx(res.hash, false).await {
            return Ok(TxReport::committed(hash, r));
        }
        if Instant::now() > deadline {
            return Err(SubmitError::NotCommitted { hash });
        }
        if let Some(until) = resend_until {
            if Instant::now() >= resend_at && crate::unordered::now_secs() <= until {
                // The answer does not matter: a copy in the mempool cache, a copy already
                // applied (NONCE_REUSED) and a fresh admission all end in the lookup above.
                let _ = rpc.broadcast_tx_sync(tx.clone()).await;
                resend_at = Instant::now() + crate::unordered::RESEND_EVERY;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl TxReport {
    /// The report of a tx found in a block.
    fn committed(hash: String, r: tendermint_rpc::endpoint::tx::Response) -> TxReport {
        let code = r.tx_result.code.value();
        let events = r
            .tx_result
            .events
            .into_iter()
            .map(|e| EventView {
                kind: e.kind,
                attributes: e
                    .attributes
                    .into_iter()
                    .map(|a| {
                        (
                            a.key_str().unwrap_or_default().to_string(),
                            a.value_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            })
            .collect();
        TxReport {
            hash,
            code,
            code_name: Code::name_of(code),
            log: r.tx_result.log,
            height: r.height.value(),
            events,
        }
    }

    /// The value of attribute `key` of the first event of type `kind`.
    pub fn event_attribute(&self, kind: &str, key: &str) -> Option<&str> {
        self.events
            .iter()
            .filter(|e| e.kind == kind)
            .find_map(|e| e.attributes.get(key))
            .map(String::as_str)
    }

    /// The value of attribute `name` of the first event that has it.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.events
            .iter()
            .find_map(|e| e.attributes.get(name))
            .map(String::as_str)
    }
}

/// A verified answer: the value of a key at a height, proven against the app hash of that
/// height (taken from the header of the next height).
#[derive(Clone, Debug)]
pub struct ProvenAnswer {
    /// The key.
    pub key: Vec<u8>,
    /// The value, or `None` if proven absent.
    pub value: Option<Vec<u8>>,
    /// The state height the answer is for.
    pub height: u64,
    /// The app hash the proof verified against (from header `height + 1`).
    pub app_hash: Vec<u8>,
}

/// An RPC client of one node.
#[derive(Clone)]
pub struct Client {
    rpc: HttpClient,
}

impl Client {
    /// A client of the node whose RPC is at `url` (e.g. `http://127.0.0.1:26657`).
    pub fn new(url: &str) -> anyhow::Result<Client> {
        let url: tendermint_rpc::HttpClientUrl = url
            .parse()
            .with_context(|| format!("bad node URL {url:?}"))?;
        let rpc = HttpClient::builder(url)
            .compat_mode(CompatMode::V0_38)
            .build()
            .context("building RPC client")?;
        Ok(Client { rpc })
    }

    /// The raw tendermint-rpc client.
    pub fn rpc(&self) -> &HttpClient {
        &self.rpc
    }

    /// The chain id the node serves.
    pub async fn chain_id(&self) -> anyhow::Result<String> {
        Ok(self
            .rpc
            .status()
            .await
            .context("node /status")?
            .node_info
            .network
            .to_string())
    }

    /// The latest committed height and that block's app hash field.
    pub async fn latest_height(&self) -> anyhow::Result<u64> {
        Ok(self
            .rpc
            .status()
            .await
            .context("node /status")?
            .sync_info
            .latest_block_height
            .value())
    }

    /// The next sequence number of `key`, from the last committed state.
    pub async fn next_sequence(&self, public_key: &[u8; 32]) -> anyhow::Result<u64> {
        let (value, _) = self.query_raw(&keys::sequence(public_key), 0).await?;
        Ok(value.as_deref().and_then(keys::decode_u64).unwrap_or(0))
    }

    /// Signs `msg` with `key` (chain id from the node; unordered when the message may be, else at
    /// the key's next sequence), broadcasts it and waits for its block.
    pub async fn submit(&self, key: &SigningKey, msg: Msg) -> anyhow::Result<TxReport> {
        let chain_id = self.chain_id().await?;
        if medledger_tx::check::may_be_unordered(&msg) {
            let body = crate::unordered::body_now(&chain_id, msg)?;
            return Ok(self.broadcast(sign_tx(key, &body)).await?);
        }
        // Ordered: the next sequence from the committed state. A read that raced the commit of
        // this key's previous tx gives a used sequence, which CheckTx refuses at once
        // (SEQUENCE_REUSED, nothing written): read again and re-sign, a few times.
        let mut attempt = 0;
        loop {
            let body = TxBody {
                chain_id: chain_id.clone(),
                sequence: self.next_sequence(&key.verifying_key().to_bytes()).await?,
                unordered: None,
                msg: Some(msg.clone()),
            };
            let report = self.broadcast(sign_tx(key, &body)).await?;
            let stale =
                report.height == 0 && report.code == medledger_tx::Code::SequenceReused.value();
            attempt += 1;
            if !stale || attempt >= 3 {
                return Ok(report);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Broadcasts signed tx bytes and waits until they are in a block (or refused by CheckTx):
    /// [`broadcast_and_wait`] on this client's node.
    pub async fn broadcast(&self, tx: Vec<u8>) -> Result<TxReport, SubmitError> {
        broadcast_and_wait(&self.rpc, tx).await
    }

    /// Reads `key` at `height` (0 = latest) without a proof: (value, height answered).
    pub async fn query_raw(
        &self,
        key: &[u8],
        height: u64,
    ) -> anyhow::Result<(Option<Vec<u8>>, u64)> {
        let a = self.abci_query(key, height, false).await?;
        Ok((a.0, a.1))
    }

    async fn abci_query(
        &self,
        key: &[u8],
        height: u64,
        prove: bool,
    ) -> anyhow::Result<(Option<Vec<u8>>, u64, Option<ProofOp>)> {
        let h = if height == 0 {
            None
        } else {
            Some(Height::try_from(height)?)
        };
        let r = self
            .rpc
            .abci_query(Some("/store".to_string()), key.to_vec(), h, prove)
            .await
            .context("abci_query")?;
        if r.code.value() != 0 {
            bail!(
                "query {} failed: {} (code {})",
                String::from_utf8_lossy(key),
                r.log,
                r.code.value()
            );
        }
        let value = if r.log == "exists" {
            Some(r.value)
        } else {
            None
        };
        let proof = r.proof.and_then(|p| p.ops.into_iter().next());
        Ok((value, r.height.value(), proof))
    }

    /// Reads `key` with its proof: the value, the height answered and the proof as an ICS23
    /// `CommitmentProof` (expanded from the compact form), not yet verified.
    async fn read_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> anyhow::Result<(Option<Vec<u8>>, u64, CommitmentProof)> {
        let (value, height, op) = self.abci_query(key, height, true).await?;
        let op = op.context("node answered without a proof")?;
        let proof = decode_proof(&op.field_type, &op.data, key, value.as_deref())?;
        Ok((value, height, proof))
    }

    /// Reads `key` at `height` (0 = latest) with a proof, fetches the committed header that
    /// carries that height's app hash, and verifies the proof against it.
    pub async fn query_proven(&self, key: &[u8], height: u64) -> anyhow::Result<ProvenAnswer> {
        let (value, height, proof) = self.read_proof(key, height).await?;
        let app_hash = self.app_hash_for_state(height).await?;
        let proven = verify(&app_hash, key, value.as_deref(), &proof)?;
        let value = match proven {
            Proven::Present(v) => Some(v),
            Proven::Absent => None,
        };
        Ok(ProvenAnswer {
            key: key.to_vec(),
            value,
            height,
            app_hash,
        })
    }

    /// Reads `key` at `height` (0 = latest) with its proof, unverified: the read and the height
    /// it was answered at. Verify it with [`crate::verify`].
    pub async fn read_with_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> anyhow::Result<(ProvenRead, u64)> {
        let (value, height, proof) = self.read_proof(key, height).await?;
        Ok((
            ProvenRead {
                key: key.to_vec(),
                value,
                proof,
            },
            height,
        ))
    }

    /// The signed header at `height` and the validator set that signed it, waiting for the block.
    pub async fn light_block(
        &self,
        height: u64,
    ) -> anyhow::Result<(SignedHeader, Vec<validator::Info>)> {
        let h = Height::try_from(height)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let commit = loop {
            if let Ok(c) = self.rpc.commit(h).await {
                break c;
            }
            if Instant::now() > deadline {
                bail!("no committed header at height {height}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let validators = self
            .rpc
            .validators(h, Paging::All)
            .await
            .context("/validators")?
            .validators;
        Ok((commit.signed_header, validators))
    }

    /// The app hash of the state after block `height`: the `app_hash` of header `height + 1`,
    /// waiting for that block if needed.
    pub async fn app_hash_for_state(&self, height: u64) -> anyhow::Result<Vec<u8>> {
        let next = Height::try_from(height + 1)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(c) = self.rpc.commit(next).await {
                return Ok(c.signed_header.header.app_hash.as_bytes().to_vec());
            }
            if Instant::now() > deadline {
                bail!("no committed header at height {next}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

//! The block lifecycle of the ledger, independent of any ABCI library:
//! InitChain → (CheckTx)* → PrepareProposal / ProcessProposal → FinalizeBlock → Commit, and
//! Info / Query. The ABCI server in `abci-app` is a thin adapter over this type.
//!
//! FinalizeBlock stages every write of the block and computes the app hash without touching the
//! disk; Commit persists it in one atomic write; Info reports exactly what was committed, so a
//! node killed at any point restarts at its last commit and CometBFT replays the rest.

use std::collections::BTreeMap;
use std::path::Path;

use medledger_tx::envelope::decode_and_verify;
use medledger_tx::{keys, QueryCode, TxError};

use crate::apply::{check_sequence, check_stateless, deliver, TxOutcome};
use crate::domain::BlockCtx;
use crate::error::StoreError;
use crate::genesis::genesis_writes;
use crate::store::{Committed, Staged, Store};
use crate::view::{BlockState, StateRead};

/// Longest accepted query path.
pub const MAX_QUERY_PATH: usize = 256;

/// The result of FinalizeBlock.
#[derive(Clone, Debug)]
pub struct BlockResult {
    /// One outcome per tx, in block order.
    pub tx_results: Vec<TxOutcome>,
    /// The new app hash.
    pub app_hash: [u8; 32],
}

/// An answer to a query.
#[derive(Clone, Debug)]
pub struct QueryAnswer {
    /// 0, or a [`QueryCode`].
    pub code: u32,
    /// What went wrong, or `exists` / `absent`.
    pub log: String,
    /// The key that was read.
    pub key: Vec<u8>,
    /// The value, empty when absent.
    pub value: Option<Vec<u8>>,
    /// The height answered for.
    pub height: u64,
    /// ICS23 proof of `value` (or of its absence) against the app hash of `height`.
    pub proof: Option<ics23::CommitmentProof>,
}

/// The ledger: store, chain id, the block in flight and the mempool's view of sequences.
pub struct Ledger {
    store: Store,
    chain_id: String,
    pending: Option<Staged>,
    /// Next sequence per signer counting txs admitted to the mempool since the last commit.
    mempool_next: BTreeMap<[u8; 32], u64>,
}

impl Ledger {
    /// Opens the ledger's store in `dir`.
    pub fn open(dir: &Path) -> Result<Ledger, StoreError> {
        let store = Store::open(dir)?;
        let chain_id = store.chain_id()?.unwrap_or_default();
        Ok(Ledger { store, chain_id, pending: None, mempool_next: BTreeMap::new() })
    }

    /// The last committed block height and app hash; `None` before the first block.
    pub fn info(&self) -> Option<Committed> {
        self.store.committed().filter(|c| c.height > 0)
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// InitChain: writes the genesis state (version 0) and returns its root.
    pub fn init_chain(&mut self, chain_id: &str, initial_height: u64, app_state: &[u8]) -> Result<[u8; 32], StoreError> {
        if initial_height > 1 {
            return Err(StoreError::Genesis(format!("initial_height must be 1, not {initial_height}")));
        }
        if let Some(c) = self.store.committed() {
            if c.height > 0 {
                return Err(StoreError::Genesis(format!("store already holds block {}", c.height)));
            }
            // Genesis was written and no block committed: CometBFT is re-running InitChain after a
            // crash. Genesis is deterministic, so the stored root is the answer.
            return Ok(c.app_hash);
        }
        let writes = genesis_writes(app_state)?;
        let staged = self.store.stage(0, &writes)?;
        self.store.set_chain_id(chain_id)?;
        self.chain_id = chain_id.to_string();
        Ok(self.store.commit(staged)?.app_hash)
    }

    /// CheckTx: decode, signature, chain id, stateless checks, and the sequence against the
    /// committed state plus the txs already admitted to this node's mempool.
    pub fn check_tx(&mut self, tx: &[u8]) -> Result<(), TxError> {
        let tx = decode_and_verify(tx)?;
        check_stateless(&tx, &self.chain_id)?;
        let expected = match self.mempool_next.get(tx.signer()) {
            Some(n) => *n,
            None => self.store.get_u64(&keys::sequence(tx.signer())).map_err(internal)?,
        };
        check_sequence(tx.body().sequence, expected)?;
        self.mempool_next.insert(*tx.signer(), expected + 1);
        Ok(())
    }

    /// PrepareProposal: the mempool's txs that decode and verify, in order, within `max_bytes`.
    pub fn prepare_proposal(&self, txs: Vec<Vec<u8>>, max_bytes: u64) -> Vec<Vec<u8>> {
        let mut total: u64 = 0;
        let mut out = Vec::with_capacity(txs.len());
        for tx in txs {
            let size = tx.len() as u64;
            if total.saturating_add(size) > max_bytes {
                break;
            }
            if decode_and_verify(&tx).is_ok() {
                total += size;
                out.push(tx);
            }
        }
        out
    }

    /// ProcessProposal: accept only blocks whose every tx decodes and carries a valid signature.
    /// Deterministic: the same txs give the same answer on every validator.
    pub fn process_proposal(&self, txs: &[Vec<u8>]) -> Result<(), TxError> {
        txs.iter().try_for_each(|tx| decode_and_verify(tx).map(|_| ()))
    }

    /// FinalizeBlock: applies `txs` and computes the app hash. Writes nothing to disk.
    pub fn finalize_block(&mut self, height: u64, time: u64, txs: &[Vec<u8>]) -> Result<BlockResult, StoreError> {
        let ctx = BlockCtx { chain_id: self.chain_id.clone(), height, time };
        let mut block = BlockState::new(&self.store);
        let mut tx_results = Vec::with_capacity(txs.len());
        for tx in txs {
            tx_results.push(deliver(&mut block, decode_and_verify(tx), &ctx)?);
        }
        let writes = block.into_writes();
        let staged = self.store.stage(height, &writes)?;
        let app_hash = staged.root;
        self.pending = Some(staged);
        Ok(BlockResult { tx_results, app_hash })
    }

    /// Commit: persists the finalized block atomically and resets the mempool's sequences (CometBFT
    /// rechecks the remaining mempool txs right after).
    pub fn commit(&mut self) -> Result<Committed, StoreError> {
        let staged = self.pending.take().ok_or(StoreError::NothingToCommit)?;
        let committed = self.store.commit(staged)?;
        self.mempool_next.clear();
        Ok(committed)
    }

    /// Query: `path` is `/` followed by a state key (e.g. `/consent/c-1`), or `/store` with the raw
    /// key in `data`. `height` 0 means the last committed height.
    pub fn query(&self, path: &str, data: &[u8], height: u64, prove: bool) -> QueryAnswer {
        let fail = |code: QueryCode, log: String| QueryAnswer {
            code: code as u32,
            log,
            key: Vec::new(),
            value: None,
            height,
            proof: None,
        };
        let key = match path {
            "/store" => data.to_vec(),
            p if p.len() > 1 && p.len() <= MAX_QUERY_PATH && p.starts_with('/') => p.as_bytes()[1..].to_vec(),
            _ => {
                return fail(QueryCode::BadPath, format!("path {path:?}: use /<state key> (e.g. /consent/c-1) or /store"))
            }
        };
        let Some(latest) = self.info() else {
            return fail(QueryCode::FutureHeight, "no block committed yet".into());
        };
        let height = if height == 0 { latest.height } else { height };
        if height > latest.height {
            return fail(QueryCode::FutureHeight, format!("height {height} is above the last committed {}", latest.height));
        }
        let result = if prove {
            self.store.prove(&key, height).map(|(v, p)| (v, Some(p)))
        } else {
            self.store.get_at(&key, height).map(|v| (v, None))
        };
        match result {
            Ok((value, proof)) => QueryAnswer {
                code: 0,
                log: if value.is_some() { "exists".into() } else { "absent".into() },
                key,
                value,
                height,
                proof,
            },
            Err(e) => fail(QueryCode::Internal, format!("reading state: {e}")),
        }
    }
}

/// A storage failure during CheckTx refuses the tx (CheckTx is only a filter; FinalizeBlock
/// would stop the node on the same failure).
fn internal(e: StoreError) -> TxError {
    TxError::new(medledger_tx::Code::NodeStorage, format!("node storage error: {e}"))
}

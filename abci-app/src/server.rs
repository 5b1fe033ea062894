//! The ABCI server: a thin adapter from CometBFT's ABCI 2.0 requests to [`Ledger`].
//!
//! One service handles all four connections in arrival order (tower-abci's `split` with a
//! buffer), so requests never interleave inside the ledger. Bad *input* never becomes an error
//! here: it becomes a response with a non-zero code. Only a failure of this node's own storage is
//! returned as an error, which makes tower-abci drop the connection and CometBFT halt: a node that
//! cannot read or persist its state must stop rather than diverge.

use std::future::{ready, Ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use medledger_state::ledger::VoteExtension;
use medledger_state::{Event, Ledger, QueryAnswer, StoreError};
use medledger_tx::checkpoint::BlsKey;
use prost::Message;
use tendermint::abci::types::BlockSignatureInfo;
use tendermint::abci::{response, types::ExecTxResult, Code, EventAttributeIndexExt};
use tendermint::block::BlockIdFlag;
use tendermint::merkle::proof::{ProofOp, ProofOps};
use tendermint::v0_38::abci::{request, Request, Response};
use tendermint::AppHash;
use tower::Service;
use tower_abci::BoxError;
use tracing::{debug, error, info, warn};

/// Application name reported by Info.
pub const APP_NAME: &str = "medledger";

/// Requests each ABCI connection may queue for the app. CometBFT pipelines CheckTx on the
/// mempool connection; with room for one, tower-abci stops reading that connection until the
/// app has taken the previous request, so CheckTx intake ran one request at a time.
const REQUEST_BUFFER: usize = 1024;

/// The ABCI application.
pub struct App {
    ledger: Ledger,
    /// This validator's BLS key for checkpoint signatures; `None` on a non-signing node.
    bls: Option<BlsKey>,
    /// Observed around the ledger when `--metrics` is on.
    metrics: Option<crate::metrics::AppMetrics>,
    /// Blocks CometBFT keeps (`start --retain-blocks`; 0: all).
    retain_blocks: u64,
}

/// The ABCI method of a request, as a metric label.
fn method_name(req: &Request) -> &'static str {
    match req {
        Request::Info(_) => "info",
        Request::InitChain(_) => "init_chain",
        Request::Query(_) => "query",
        Request::CheckTx(_) => "check_tx",
        Request::PrepareProposal(_) => "prepare_proposal",
        Request::ProcessProposal(_) => "process_proposal",
        Request::FinalizeBlock(_) => "finalize_block",
        Request::Commit => "commit",
        Request::ExtendVote(_) => "extend_vote",
        Request::VerifyVoteExtension(_) => "verify_vote_extension",
        Request::Flush => "flush",
        Request::Echo(_) => "echo",
        _ => "snapshot",
    }
}

impl App {
    /// Serves `ledger`, signing checkpoints with `bls` when given.
    pub fn new(ledger: Ledger, bls: Option<BlsKey>) -> Self {
        App {
            ledger,
            bls,
            metrics: None,
            retain_blocks: 0,
        }
    }

    /// Lets CometBFT delete blocks older than the newest `n` (0: keep all).
    pub fn with_retain_blocks(mut self, n: u64) -> Self {
        self.retain_blocks = n;
        self
    }

    /// Records metrics into `m`.
    pub fn with_metrics(mut self, m: crate::metrics::AppMetrics) -> Self {
        self.metrics = Some(m);
        self
    }

    /// [`App::handle`], observed.
    fn handle_observed(&mut self, req: Request) -> Result<Response, StoreError> {
        let Some(m) = self.metrics.clone() else {
            return self.handle(req);
        };
        let method = method_name(&req);
        let height = match &req {
            Request::FinalizeBlock(r) => Some(r.height.value()),
            _ => None,
        };
        let commit = matches!(req, Request::Commit);
        let start = std::time::Instant::now();
        let res = self.handle(req);
        m.request(method, start.elapsed().as_secs_f64());
        if commit && res.is_ok() {
            m.store(&self.ledger.store().readings());
        }
        if let (Ok(Response::FinalizeBlock(f)), Some(h)) = (&res, height) {
            m.block(h, f.tx_results.iter().map(|t| t.code.value()));
            let signers = f
                .tx_results
                .iter()
                .flat_map(|t| &t.events)
                .filter(|e| e.kind == "medledger.checkpoint")
                .flat_map(|e| &e.attributes)
                .find(|a| a.key_str().ok() == Some("signers"))
                .and_then(|a| a.value_str().ok()?.parse::<u64>().ok());
            if let Some(n) = signers {
                m.certificate(n);
            }
        }
        res
    }

    fn handle(&mut self, req: Request) -> Result<Response, StoreError> {
        Ok(match req {
            Request::Info(_) => Response::Info(self.info()),
            Request::InitChain(r) => Response::InitChain(self.init_chain(r)?),
            Request::Query(r) => Response::Query(self.query(r)),
            Request::CheckTx(r) => Response::CheckTx(self.check_tx(r)),
            Request::PrepareProposal(r) => Response::PrepareProposal(self.prepare_proposal(r)),
            Request::ProcessProposal(r) => Response::ProcessProposal(self.process_proposal(r)),
            Request::FinalizeBlock(r) => Response::FinalizeBlock(self.finalize_block(r)?),
            Request::Commit => Response::Commit(self.commit()?),
            Request::ExtendVote(r) => Response::ExtendVote(self.extend_vote(r)),
            Request::VerifyVoteExtension(r) => {
                Response::VerifyVoteExtension(self.verify_vote_extension(r))
            }
            Request::Flush => Response::Flush,
            Request::Echo(r) => Response::Echo(response::Echo { message: r.message }),
            Request::ListSnapshots => Response::ListSnapshots(self.list_snapshots()),
            Request::OfferSnapshot(r) => Response::OfferSnapshot(self.offer_snapshot(r)),
            Request::LoadSnapshotChunk(r) => {
                Response::LoadSnapshotChunk(response::LoadSnapshotChunk {
                    chunk: self
                        .ledger
                        .load_snapshot_chunk(r.height.value(), r.format, r.chunk)
                        .unwrap_or_default()
                        .into(),
                })
            }
            Request::ApplySnapshotChunk(r) => {
                Response::ApplySnapshotChunk(self.apply_snapshot_chunk(r)?)
            }
        })
    }

    fn list_snapshots(&self) -> response::ListSnapshots {
        let snapshots = self
            .ledger
            .list_snapshots()
            .into_iter()
            .filter_map(|s| {
                Some(tendermint::abci::types::Snapshot {
                    height: tendermint::block::Height::try_from(s.height).ok()?,
                    format: s.format,
                    chunks: s.chunks,
                    hash: s.hash.into(),
                    metadata: s.metadata.into(),
                })
            })
            .collect();
        response::ListSnapshots { snapshots }
    }

    fn offer_snapshot(&mut self, r: request::OfferSnapshot) -> response::OfferSnapshot {
        let s = medledger_state::snapshot::Snapshot {
            height: r.snapshot.height.value(),
            format: r.snapshot.format,
            chunks: r.snapshot.chunks,
            hash: r.snapshot.hash.to_vec(),
            metadata: r.snapshot.metadata.to_vec(),
        };
        match self.ledger.offer_snapshot(&s, r.app_hash.as_bytes()) {
            Ok(()) => {
                tracing::info!(height = s.height, chunks = s.chunks, "restoring a snapshot");
                response::OfferSnapshot::Accept
            }
            Err(medledger_state::snapshot::OfferRefusal::Format) => {
                response::OfferSnapshot::RejectFormat
            }
            Err(medledger_state::snapshot::OfferRefusal::Snapshot(why)) => {
                tracing::warn!(height = s.height, %why, "snapshot refused");
                response::OfferSnapshot::Reject
            }
        }
    }

    fn apply_snapshot_chunk(
        &mut self,
        r: request::ApplySnapshotChunk,
    ) -> Result<response::ApplySnapshotChunk, StoreError> {
        use medledger_state::ledger::ChunkOutcome;
        use response::ApplySnapshotChunkResult as R;
        let (result, refetch_chunks, reject_senders) =
            match self.ledger.apply_snapshot_chunk(r.index, &r.chunk)? {
                ChunkOutcome::Accept => (R::Accept, Vec::new(), Vec::new()),
                // Another peer serves it next; this one sent bytes that do not hash right.
                ChunkOutcome::Refetch => (R::Retry, vec![r.index], vec![r.sender]),
                ChunkOutcome::Reject(why) => {
                    tracing::warn!(%why, "snapshot rejected");
                    (R::RejectSnapshot, Vec::new(), Vec::new())
                }
            };
        Ok(response::ApplySnapshotChunk {
            result,
            refetch_chunks,
            reject_senders,
        })
    }

    fn info(&self) -> response::Info {
        let (height, app_hash) = match self.ledger.info() {
            Some(c) => (c.height, c.app_hash.to_vec()),
            None => (0, Vec::new()),
        };
        // The rules' version, raised by governance-scheduled upgrades (docs/deploy.md,
        // "Upgrades"): CometBFT checks it against the headers when a node joins by state sync.
        let app_version = self.ledger.app_version();
        info!(
            height,
            app_hash = %hex::encode_upper(&app_hash),
            app_version,
            "info"
        );
        response::Info {
            data: APP_NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version,
            last_block_height: height.try_into().unwrap_or_default(),
            last_block_app_hash: app_hash_of(&app_hash),
        }
    }

    fn init_chain(&mut self, r: request::InitChain) -> Result<response::InitChain, StoreError> {
        // Consensus keys, not just addresses: governance names them in validator updates.
        // CometBFT's genesis only admits the key types of its consensus params (ed25519 here).
        let mut validators: Vec<([u8; 32], u64)> = Vec::with_capacity(r.validators.len());
        for v in &r.validators {
            let key: [u8; 32] = v
                .pub_key
                .ed25519()
                .and_then(|k| <[u8; 32]>::try_from(k.as_bytes()).ok())
                .ok_or_else(|| {
                    StoreError::Genesis("genesis validators must have Ed25519 keys".into())
                })?;
            validators.push((key, v.power.value()));
        }
        let params = medledger_client::replay::consensus_params_bytes(r.consensus_params);
        let root = self.ledger.init_chain_with_keys(
            &r.chain_id,
            r.initial_height.value(),
            &r.app_state_bytes,
            &validators,
            &params,
        )?;
        info!(chain_id = %r.chain_id, app_hash = %hex::encode_upper(root), "genesis written");
        Ok(response::InitChain {
            consensus_params: None,
            validators: Vec::new(),
            app_hash: app_hash_of(&root),
        })
    }

    fn check_tx(&mut self, r: request::CheckTx) -> response::CheckTx {
        match self.ledger.check_tx(&r.tx) {
            Ok(()) => response::CheckTx::default(),
            Err(e) => {
                debug!(code = e.code.value(), reason = %e.message, kind = ?r.kind, "check_tx rejected");
                // The code travels in `code`; the log is the message alone, as in FinalizeBlock
                // (clients print "NAME (code): log", which showed the name twice).
                response::CheckTx {
                    code: Code::from(e.code.value()),
                    log: e.message,
                    ..Default::default()
                }
            }
        }
    }

    /// Signs the checkpoint of the last committed state (see `Ledger::checkpoint_to_sign`).
    fn extend_vote(&self, r: request::ExtendVote) -> response::ExtendVote {
        let extension = match (&self.bls, self.ledger.checkpoint_to_sign(r.height.value())) {
            (Some(key), Some((height, app_hash))) => key
                .sign_checkpoint(self.ledger.chain_id(), height, &app_hash)
                .to_vec(),
            _ => Vec::new(),
        };
        response::ExtendVote {
            vote_extension: Bytes::from(extension),
        }
    }

    fn verify_vote_extension(
        &self,
        r: request::VerifyVoteExtension,
    ) -> response::VerifyVoteExtension {
        let address: [u8; 20] = r.validator_address.as_bytes().try_into().unwrap_or([0; 20]);
        if self
            .ledger
            .verify_vote_extension(&address, r.height.value(), &r.vote_extension)
        {
            response::VerifyVoteExtension::Accept
        } else {
            warn!(height = %r.height, validator = %r.validator_address, "rejecting an invalid checkpoint signature");
            response::VerifyVoteExtension::Reject
        }
    }

    fn prepare_proposal(&mut self, r: request::PrepareProposal) -> response::PrepareProposal {
        let max = u64::try_from(r.max_tx_bytes).unwrap_or(0);
        let votes: Vec<VoteExtension> = r
            .local_last_commit
            .map(|c| c.votes)
            .unwrap_or_default()
            .into_iter()
            .map(|v| VoteExtension {
                address: v.validator.address,
                committed: matches!(v.sig_info, BlockSignatureInfo::Flag(BlockIdFlag::Commit)),
                extension: v.vote_extension.to_vec(),
            })
            .collect();
        let txs = self.ledger.prepare_proposal(
            r.height.value(),
            &votes,
            r.txs.into_iter().map(|t| t.to_vec()).collect(),
            max,
        );
        response::PrepareProposal {
            txs: txs.into_iter().map(Bytes::from).collect(),
        }
    }

    fn process_proposal(&mut self, r: request::ProcessProposal) -> response::ProcessProposal {
        let txs: Vec<Vec<u8>> = r.txs.iter().map(|t| t.to_vec()).collect();
        match self.ledger.process_proposal(r.height.value(), &txs) {
            Ok(()) => response::ProcessProposal::Accept,
            Err(e) => {
                warn!(height = %r.height, reason = %e, "rejecting proposal with an invalid tx");
                response::ProcessProposal::Reject
            }
        }
    }

    fn finalize_block(
        &mut self,
        r: request::FinalizeBlock,
    ) -> Result<response::FinalizeBlock, StoreError> {
        let height = r.height.value();
        // Block time before 1970 cannot come from a valid CometBFT chain; clamp instead of panic.
        let time = u64::try_from(r.time.unix_timestamp()).unwrap_or(0);
        let txs: Vec<Vec<u8>> = r.txs.iter().map(|t| t.to_vec()).collect();
        let result = self.ledger.finalize_block(height, time, &txs)?;
        let rejected = result.tx_results.iter().filter(|t| t.code != 0).count();
        let (sig_hits, sig_misses) = self.ledger.sig_cache_stats();
        info!(height, txs = txs.len(), rejected, app_hash = %hex::encode_upper(result.app_hash), sig_hits, sig_misses, "finalized block");
        let tx_results = result
            .tx_results
            .into_iter()
            .map(|t| {
                if t.code != 0 {
                    info!(height, code = t.code, reason = %t.log, "tx rejected");
                }
                ExecTxResult {
                    code: Code::from(t.code),
                    log: t.log,
                    events: to_abci_events(t.events),
                    ..Default::default()
                }
            })
            .collect();
        let validator_updates = result
            .validator_updates
            .iter()
            .filter_map(|(key, power)| {
                // Keys and powers were checked when the proposal was submitted (a valid, non-weak
                // Ed25519 point; power at most MAX_VALIDATOR_POWER): neither branch is taken.
                let Some(pub_key) = tendermint::PublicKey::from_raw_ed25519(key) else {
                    error!(key = %hex::encode(key), "registry holds an invalid consensus key; update skipped");
                    return None;
                };
                let power = tendermint::vote::Power::try_from(*power).ok()?;
                info!(height, validator = %hex::encode_upper(medledger_tx::ids::validator_address(key)), power = power.value(), "validator update");
                Some(tendermint::validator::Update { pub_key, power })
            })
            .collect();
        let consensus_param_updates = match result.app_version {
            Some(v) => Some(self.params_with_app_version(v)?),
            None => None,
        };
        Ok(response::FinalizeBlock {
            events: to_abci_events(result.events),
            tx_results,
            validator_updates,
            consensus_param_updates,
            app_hash: app_hash_of(&result.app_hash),
        })
    }

    /// CometBFT's consensus parameters with app version `v`, for the block that upgraded the
    /// chain to it: CometBFT v0.38 takes a parameter update only whole, so the ledger keeps the
    /// genesis parameters (no tx changes them) and hands them back with the new version, which
    /// every header carries from the next block on.
    fn params_with_app_version(&self, v: u64) -> Result<tendermint::consensus::Params, StoreError> {
        let bytes = self.ledger.consensus_params()?.ok_or_else(|| {
            StoreError::Tree("the state holds no consensus parameters to upgrade".into())
        })?;
        let mut raw = tendermint_proto::v0_38::types::ConsensusParams::decode(bytes.as_slice())
            .map_err(|e| StoreError::Tree(format!("stored consensus parameters: {e}")))?;
        raw.version = Some(tendermint_proto::v0_38::types::VersionParams { app: v });
        tendermint::consensus::Params::try_from(raw)
            .map_err(|e| StoreError::Tree(format!("stored consensus parameters: {e}")))
    }

    fn commit(&mut self) -> Result<response::Commit, StoreError> {
        let c = self.ledger.commit()?;
        debug!(height = c.height, "committed");
        // CometBFT may delete the blocks below this height (0: none).
        let retain = match self.retain_blocks {
            0 => 0,
            n => c.height.saturating_sub(n),
        };
        Ok(response::Commit {
            data: Bytes::new(),
            retain_height: tendermint::block::Height::try_from(retain).unwrap_or_default(),
        })
    }

    fn query(&self, r: request::Query) -> response::Query {
        let a: QueryAnswer = self
            .ledger
            .query(&r.path, &r.data, r.height.value(), r.prove);
        if a.code != 0 {
            debug!(path = %r.path, code = a.code, reason = %a.log, "query failed");
        }
        response::Query {
            code: Code::from(a.code),
            log: a.log,
            key: Bytes::from(a.key.clone()),
            value: Bytes::from(a.value.unwrap_or_default()),
            proof: a.proof.map(|p| ProofOps {
                ops: vec![proof_op(a.key, &p)],
            }),
            height: a.height.try_into().unwrap_or_default(),
            ..Default::default()
        }
    }
}

/// The answer's proof as a `ProofOp`: the compact form, or the ICS23 protobuf (which clients
/// still accept) should a proof ever not have the JMT shape the compact form encodes.
fn proof_op(key: Vec<u8>, proof: &ics23::CommitmentProof) -> ProofOp {
    let (field_type, data) = match medledger_query::compact::encode(proof) {
        Ok(data) => (medledger_query::PROOF_OP_TYPE, data),
        Err(e) => {
            error!(key = %String::from_utf8_lossy(&key), error = %e, "proof has no compact form; answering with the ICS23 protobuf");
            (medledger_query::ICS23_PROOF_OP_TYPE, proof.encode_to_vec())
        }
    };
    ProofOp {
        field_type: field_type.into(),
        key,
        data,
    }
}

fn app_hash_of(bytes: &[u8]) -> AppHash {
    AppHash::try_from(bytes.to_vec()).unwrap_or_default()
}

fn to_abci_events(events: Vec<Event>) -> Vec<tendermint::abci::Event> {
    events
        .into_iter()
        .map(|e| {
            tendermint::abci::Event::new(
                e.kind,
                e.attributes.into_iter().map(|(k, v)| (k, v).index()),
            )
        })
        .collect()
}

impl Service<Request> for App {
    type Response = Response;
    type Error = BoxError;
    type Future = Ready<Result<Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        ready(self.handle_observed(req).map_err(|e| {
            error!(error = %e, "storage failure: stopping this node's ABCI connection");
            BoxError::from(e)
        }))
    }
}

/// Serves `ledger` over ABCI on `addr` until the process ends: `unix:///path/app.sock` (a
/// stale socket file from a killed node is replaced) or `host:port`.
pub async fn serve(
    ledger: Ledger,
    addr: &str,
    bls: Option<BlsKey>,
    metrics: Option<crate::metrics::AppMetrics>,
    retain_blocks: u64,
) -> anyhow::Result<()> {
    let mut app = App::new(ledger, bls).with_retain_blocks(retain_blocks);
    if let Some(m) = metrics {
        app = app.with_metrics(m);
    }
    let (consensus, mempool, snapshot, info) =
        tower_abci::v038::split::service(app, REQUEST_BUFFER);
    let server = tower_abci::v038::Server::builder()
        .consensus(consensus)
        .mempool(mempool)
        .snapshot(snapshot)
        .info(info)
        .finish()
        .ok_or_else(|| anyhow::anyhow!("ABCI server is missing a service"))?;
    info!(%addr, "ABCI server listening");
    let served = match addr.strip_prefix("unix://") {
        Some(path) => {
            use std::os::unix::fs::FileTypeExt;
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                std::fs::remove_file(path)?;
            }
            server.listen_unix(path).await
        }
        None => server.listen_tcp(addr).await,
    };
    served.map_err(|e| anyhow::anyhow!("ABCI server: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use ics23::commitment_proof::Proof;
    use medledger_query::{decode_proof, verify, Proven, ICS23_PROOF_OP_TYPE, PROOF_OP_TYPE};

    fn query(app: &App, key: &[u8]) -> response::Query {
        app.query(request::Query {
            data: Bytes::from(key.to_vec()),
            path: "/store".into(),
            height: 0u32.into(),
            prove: true,
        })
    }

    /// What a client does with an answer: decode the op by its type.
    fn decode(key: &[u8], r: &response::Query) -> (Option<Vec<u8>>, ics23::CommitmentProof) {
        let ops = &r.proof.as_ref().unwrap().ops;
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].field_type, PROOF_OP_TYPE);
        assert_eq!(ops[0].key, key);
        let value = (r.log == "exists").then(|| r.value.to_vec());
        let proof = decode_proof(&ops[0].field_type, &ops[0].data, key, value.as_deref()).unwrap();
        (value, proof)
    }

    #[test]
    fn query_answers_carry_compact_proofs_that_verify() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        let members: Vec<serde_json::Value> = (1u8..=3)
            .map(|i| {
                serde_json::json!({"id": format!("member-{i}"), "name": "M", "kind": "hospital",
                    "admin_key": hex::encode([i; 32])})
            })
            .collect();
        let genesis = serde_json::json!({ "members": members }).to_string();
        ledger
            .init_chain("chain", 1, genesis.as_bytes(), &[])
            .unwrap();
        let app_hash = ledger.store().committed().unwrap().app_hash;
        let app = App::new(ledger, None);

        let key = medledger_tx::keys::member("member-2");
        let (value, proof) = decode(&key, &query(&app, &key));
        let Ok(Proven::Present(member)) = verify(&app_hash, &key, value.as_deref(), &proof) else {
            panic!("the genesis member is not proven present");
        };
        assert!(!member.is_empty());

        // This genesis has no validators: the empty registry is stored as absence (ICS23 cannot
        // prove an empty value), so every absent key, whatever its neighbours, is provable.
        for j in 0..8 {
            let absent = medledger_tx::keys::consent(&format!("c-never-{j}"));
            let (value, proof) = decode(&absent, &query(&app, &absent));
            assert_eq!(value, None);
            assert!(matches!(proof.proof, Some(Proof::Nonexist(_))));
            assert_eq!(verify(&app_hash, &absent, None, &proof), Ok(Proven::Absent));
        }
    }

    #[test]
    fn a_check_tx_refusal_carries_its_code_once_and_the_message_as_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .init_chain("chain", 1, br#"{"members": []}"#, &[])
            .unwrap();
        let mut app = App::new(ledger, None);
        let r = app.check_tx(request::CheckTx {
            tx: Bytes::from_static(b"not a tx"),
            kind: Default::default(),
        });
        assert_eq!(r.code.value(), medledger_tx::Code::TxDecode.value());
        assert!(!r.log.is_empty());
        assert!(
            !r.log.contains("TX_DECODE"),
            "the code is in `code`, not repeated in the log: {}",
            r.log
        );
    }

    #[test]
    fn a_proof_without_a_compact_form_is_sent_as_ics23_protobuf() {
        let odd = ics23::CommitmentProof {
            proof: Some(Proof::Batch(ics23::BatchProof { entries: vec![] })),
        };
        let op = proof_op(b"k".to_vec(), &odd);
        assert_eq!(op.field_type, ICS23_PROOF_OP_TYPE);
        assert_eq!(
            decode_proof(&op.field_type, &op.data, b"k", None).unwrap(),
            odd
        );
    }
}

//! The block lifecycle of the ledger, independent of any ABCI library:
//! InitChain → (CheckTx)* → PrepareProposal / ProcessProposal → FinalizeBlock → Commit, and
//! Info / Query. The ABCI server in `abci-app` is a thin adapter over this type.
//!
//! FinalizeBlock stages every write of the block and computes the app hash without touching the
//! disk; Commit persists it in one atomic write; Info reports exactly what was committed, so a
//! node killed at any point restarts at its last commit and CometBFT replays the rest.
//!
//! **Which validator set, when.** Governance changes the registry (`validators`) inside a block;
//! FinalizeBlock of block H returns the difference as validator updates, and CometBFT makes them
//! effective from height H+2. So the validators voting at height h are the registry of state
//! h-2, and the certificate of state S (signed in the votes of height S+1) is made by the
//! registry of state S-1. VerifyVoteExtension, PrepareProposal and the certificate check all use
//! [`Ledger::signers_of`] for that, never the newest registry (see docs/certificates.md).

use std::collections::BTreeMap;
use std::path::Path;

use medledger_tx::checkpoint::{self, decode_certificate_tx, encode_certificate_tx, CertValidator};
use medledger_tx::pb::{Certificate, Validator, ValidatorSet};
use medledger_tx::{ids, keyproof, keys, Code, QueryCode, SigCache, TxError};

use crate::apply::{
    apply_msg, check_sequence, check_stateless, deliver, unknown_signer, unknown_signer_may_send,
    TxOutcome,
};
use crate::domain::members::{signer, Signer};
use crate::domain::{governance, validators, BlockCtx, Event};
use crate::error::ApplyError;
use crate::error::StoreError;
use crate::genesis::{genesis_writes_with_keys, GenesisPower};
use crate::lanes::{Lanes, Ticket};
use crate::lists;
use crate::nonces;
use crate::snapshot;
use crate::store::{Committed, Staged, Store, WriteSet};
use crate::view::{BlockState, StateRead};

/// Largest consensus parameters InitChain may hand the ledger (CometBFT's are under 100 bytes).
pub const MAX_CONSENSUS_PARAMS_BYTES: usize = 4096;

/// Longest accepted query path.
pub const MAX_QUERY_PATH: usize = 256;

/// The result of FinalizeBlock.
#[derive(Clone, Debug)]
pub struct BlockResult {
    /// One outcome per tx, in block order.
    pub tx_results: Vec<TxOutcome>,
    /// The new app hash.
    pub app_hash: [u8; 32],
    /// Validator updates for CometBFT, `(Ed25519 consensus key, new power)`, power 0 removing
    /// the validator; in address order. CometBFT applies them from height `H + 2`.
    pub validator_updates: Vec<([u8; 32], u64)>,
    /// Events of the block itself rather than of a tx: expired proposals, validator updates.
    pub events: Vec<Event>,
    /// The app version this block upgraded the chain to, if it applied an upgrade: CometBFT
    /// puts it in the headers from the next block on (with [`Ledger::consensus_params`]).
    pub app_version: Option<u64>,
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
    /// The time of the pending block.
    pending_time: u64,
    /// The time of the last committed block (kept by the store with each commit, so it
    /// survives restarts; `None` before the first block): CheckTx's clock for unordered txs'
    /// validity windows and for recoveries' pending changes.
    last_block_time: Option<u64>,
    /// The txs this node admitted and no block carried yet, by lane (see [`crate::lanes`]).
    lanes: Lanes,
    /// Tells the pruner thread each committed height (see [`Ledger::retain`]).
    pruner: Option<std::sync::mpsc::Sender<u64>>,
    /// The checkpoint interval pruning keeps (0: none), for a restored store.
    keep_every: u64,
    /// Snapshots this node serves, and the thread that takes them (see [`Ledger::snapshot_every`]).
    snapshots: Option<Snapshots>,
    /// A state sync restore in progress.
    restore: Option<snapshot::Restore>,
    /// Next sequence per signer counting txs admitted to the mempool since the last commit.
    mempool_next: BTreeMap<[u8; 32], u64>,
    /// The validator registry of the last committed state, in address order.
    validators: Vec<Validator>,
    /// Signatures already verified on this node, by tx hash.
    sigs: SigCache,
    /// The registries of the last three committed states (versions c, c-1, c-2): those that
    /// sign the checkpoints this node checks next (see [`Ledger::signers_of`]). Reloaded at
    /// every commit.
    recent_registries: Registries,
}

/// How many verified tx hashes a node remembers (about 10 MB): more than a full mempool.
pub const SIG_CACHE_CAPACITY: usize = 100_000;
/// The fewest recent heights a pruning node keeps: blocks check the certificate and registries
/// of the last three states, and clients read a block or two behind the newest.
pub const MIN_KEEP_RECENT: u64 = 10;
/// Most signers whose pending sequences CheckTx remembers (the mempool's view).
pub const MAX_MEMPOOL_SIGNERS: usize = 100_000;

/// A precommit of the last height as PrepareProposal sees it.
#[derive(Clone, Debug)]
pub struct VoteExtension {
    /// Validator address.
    pub address: [u8; 20],
    /// Whether the validator precommitted the block (not nil, not absent).
    pub committed: bool,
    /// Its vote extension: a BLS signature share of the checkpoint, or empty.
    pub extension: Vec<u8>,
}

impl Ledger {
    /// Opens the ledger's store in `dir`.
    pub fn open(dir: &Path) -> Result<Ledger, StoreError> {
        let store = Store::open(dir)?;
        let chain_id = store.chain_id()?.unwrap_or_default();
        let (validators, recent_registries) = load_registries(&store)?;
        let last_block_time = store.block_time()?;
        Ok(Ledger {
            store,
            chain_id,
            pending: None,
            pending_time: 0,
            last_block_time,
            lanes: Lanes::default(),
            pruner: None,
            keep_every: 0,
            snapshots: None,
            restore: None,
            mempool_next: BTreeMap::new(),
            validators,
            recent_registries,
            sigs: SigCache::new(SIG_CACHE_CAPACITY),
        })
    }

    /// Prunes old versions from now on, on a thread of its own, off the Commit path: after each
    /// commit of height `h` it keeps every version from `h - keep_recent` and every multiple of
    /// `keep_every` (0: none) below, and deletes what only other versions needed
    /// ([`crate::store::Pruner`]). `keep_recent` is at least [`MIN_KEEP_RECENT`]: blocks check
    /// certificates and registries of the last few states.
    pub fn retain(&mut self, keep_recent: u64, keep_every: u64) -> Result<(), StoreError> {
        if keep_recent < MIN_KEEP_RECENT {
            return Err(StoreError::Tree(format!(
                "keep_recent {keep_recent}: keep at least {MIN_KEEP_RECENT} recent heights"
            )));
        }
        self.keep_every = keep_every;
        let pruner = self.store.pruner();
        self.pruner = Some(spawn_newest("pruner", move |height: u64| {
            let earliest = height.saturating_sub(keep_recent);
            if earliest == 0 {
                return true;
            }
            match pruner.prune(earliest, keep_every) {
                Ok(stats) if stats.nodes + stats.values > 0 => tracing::debug!(
                    earliest,
                    nodes = stats.nodes,
                    values = stats.values,
                    kept = stats.kept_for_checkpoints,
                    "pruned"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "pruning failed; the node goes on unpruned");
                    return false;
                }
            }
            true
        })?);
        Ok(())
    }

    /// The validator registry of the last committed state, in address order. Governance changes
    /// reach CometBFT's set two heights later: for signatures use [`Ledger::signers_of`].
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validators whose BLS shares certify state `state`, in certificate order: CometBFT's
    /// validator set at height `state + 1` (whose precommits carry the shares), which is the
    /// registry of state `state - 1` because updates returned by block H act from H+2.
    pub fn signers_of(&self, state: u64) -> Result<Vec<Validator>, StoreError> {
        let version = state.saturating_sub(1);
        match self.recent_registries.get(&version) {
            Some(set) => Ok(set.clone()),
            None => registry_at(&self.store, version),
        }
    }

    /// The last committed block height and app hash; `None` before the first block.
    pub fn info(&self) -> Option<Committed> {
        self.store.committed().filter(|c| c.height > 0)
    }

    /// CometBFT's consensus parameters as InitChain gave them (protobuf bytes; see
    /// [`medledger_tx::keys::consensus_params`]); `None` for a chain started without them.
    pub fn consensus_params(&self) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(&keys::consensus_params())
    }

    /// The app version of the last committed state (1 before the first upgrade).
    pub fn app_version(&self) -> u64 {
        crate::upgrade::app_version(&self.store).unwrap_or(1)
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// InitChain: writes the genesis state (version 0) and returns its root. `validators` are
    /// the genesis validators' addresses and powers. Without their consensus keys governance
    /// cannot change them: the ABCI server uses [`Ledger::init_chain_with_keys`].
    pub fn init_chain(
        &mut self,
        chain_id: &str,
        initial_height: u64,
        app_state: &[u8],
        validators: &[([u8; 20], u64)],
    ) -> Result<[u8; 32], StoreError> {
        let powers: Vec<GenesisPower> = validators
            .iter()
            .map(|(address, power)| GenesisPower {
                address: *address,
                pub_key: None,
                power: *power,
            })
            .collect();
        self.init_chain_powers(chain_id, initial_height, app_state, &powers, &[])
    }

    /// InitChain with the genesis validators' Ed25519 consensus keys and powers (their addresses
    /// are derived as CometBFT does), and CometBFT's consensus parameters as protobuf bytes
    /// (empty: none kept; the chain can then not hand CometBFT a new app version).
    pub fn init_chain_with_keys(
        &mut self,
        chain_id: &str,
        initial_height: u64,
        app_state: &[u8],
        validators: &[([u8; 32], u64)],
        consensus_params: &[u8],
    ) -> Result<[u8; 32], StoreError> {
        let powers: Vec<GenesisPower> = validators
            .iter()
            .map(|(key, power)| GenesisPower {
                address: ids::validator_address(key),
                pub_key: Some(*key),
                power: *power,
            })
            .collect();
        self.init_chain_powers(
            chain_id,
            initial_height,
            app_state,
            &powers,
            consensus_params,
        )
    }

    fn init_chain_powers(
        &mut self,
        chain_id: &str,
        initial_height: u64,
        app_state: &[u8],
        validators: &[GenesisPower],
        consensus_params: &[u8],
    ) -> Result<[u8; 32], StoreError> {
        if initial_height > 1 {
            return Err(StoreError::Genesis(format!(
                "initial_height must be 1, not {initial_height}"
            )));
        }
        if let Some(c) = self.store.committed() {
            if c.height > 0 {
                return Err(StoreError::Genesis(format!(
                    "store already holds block {}",
                    c.height
                )));
            }
            // Genesis was written and no block committed: CometBFT is re-running InitChain after a
            // crash. Genesis is deterministic, so the stored root is the answer.
            return Ok(c.app_hash);
        }
        let mut writes = genesis_writes_with_keys(app_state, validators)?;
        if consensus_params.len() > MAX_CONSENSUS_PARAMS_BYTES {
            return Err(StoreError::Genesis(format!(
                "consensus params of {} bytes; at most {MAX_CONSENSUS_PARAMS_BYTES}",
                consensus_params.len()
            )));
        }
        if !consensus_params.is_empty() {
            writes.insert(keys::consensus_params(), Some(consensus_params.to_vec()));
        }
        let staged = self.store.stage(0, &writes)?;
        self.store.set_chain_id(chain_id)?;
        self.chain_id = chain_id.to_string();
        let root = self.store.commit(staged)?.app_hash;
        (self.validators, self.recent_registries) = load_registries(&self.store)?;
        Ok(root)
    }

    /// The checkpoint a validator signs in its vote extension at `vote_height`: the state after
    /// the previous block, which is committed by then. `None` if this node is not there.
    pub fn checkpoint_to_sign(&self, vote_height: u64) -> Option<(u64, [u8; 32])> {
        let c = self.store.committed()?;
        (vote_height >= 1 && c.height == vote_height - 1).then_some((c.height, c.app_hash))
    }

    /// VerifyVoteExtension: an empty extension is accepted (the validator does not take part in
    /// certificates); otherwise it must be a valid BLS share of the checkpoint by a validator of
    /// the set voting at `vote_height` (the registry of state `vote_height - 2`: a validator
    /// removed by block `vote_height - 1` still votes, one added there does not yet).
    /// Deterministic for every node at `vote_height`.
    pub fn verify_vote_extension(
        &self,
        validator: &[u8; 20],
        vote_height: u64,
        extension: &[u8],
    ) -> bool {
        if extension.is_empty() {
            return true;
        }
        let Some((height, app_hash)) = self.checkpoint_to_sign(vote_height) else {
            return false;
        };
        let Ok(set) = self.signers_of(height) else {
            return false;
        };
        set.iter()
            .find(|v| v.address == validator)
            .is_some_and(|v| {
                checkpoint::verify_share(&v.bls_key, &self.chain_id, height, &app_hash, extension)
            })
    }

    /// The certificate a proposer of `block_height` can build from the last height's vote
    /// extensions: the state `block_height - 2`, if more than 2/3 of the power of its signer set
    /// ([`Ledger::signers_of`]) signed it.
    pub fn build_certificate(
        &self,
        block_height: u64,
        votes: &[VoteExtension],
    ) -> Option<Certificate> {
        let height = block_height.checked_sub(2)?;
        let app_hash = self.store.root_at(height).ok()?;
        let set = self.signers_of(height).ok()?;
        let mut signers = Vec::new();
        let mut shares: Vec<&[u8]> = Vec::new();
        for vote in votes
            .iter()
            .filter(|v| v.committed && !v.extension.is_empty())
        {
            let Some(i) = set.iter().position(|v| v.address == vote.address) else {
                continue;
            };
            if signers.contains(&i) {
                continue;
            }
            let v = &set[i];
            if checkpoint::verify_share(
                &v.bls_key,
                &self.chain_id,
                height,
                &app_hash,
                &vote.extension,
            ) {
                signers.push(i);
                shares.push(&vote.extension);
            }
        }
        let total: u64 = set.iter().map(|v| v.power).fold(0, u64::saturating_add);
        let signed: u64 = signers
            .iter()
            .map(|&i| set[i].power)
            .fold(0, u64::saturating_add);
        if signed.saturating_mul(3) <= total.saturating_mul(2) {
            return None;
        }
        Some(Certificate {
            chain_id: self.chain_id.clone(),
            height,
            app_hash: app_hash.to_vec(),
            signers: checkpoint::bitmap(set.len(), &signers),
            aggregate_signature: checkpoint::aggregate(&shares)?.to_vec(),
        })
    }

    /// A certificate in block `block_height` must certify state `block_height - 2` with that
    /// state's root and more than 2/3 of the power of its signer set ([`Ledger::signers_of`]).
    fn check_certificate(&self, block_height: u64, cert: &Certificate) -> Result<(), TxError> {
        let refuse = |why: String| TxError::new(Code::ProposerOnly, why);
        let expected = block_height
            .checked_sub(2)
            .ok_or_else(|| refuse("no certificate before block 2".into()))?;
        if cert.height != expected {
            return Err(refuse(format!(
                "certificate for height {} in block {block_height}; want {expected}",
                cert.height
            )));
        }
        match self.store.root_at(expected) {
            Ok(root) if cert.app_hash != root => {
                return Err(refuse(format!(
                    "certificate app hash differs from the state root at {expected}"
                )))
            }
            Ok(_) => {}
            // Restored from a snapshot of `expected + 1` (module `snapshot`): the state before
            // it was never on this node, so the certificate's app hash is vouched for by its
            // signatures of more than 2/3 of the power alone (checked below), as an auditor's
            // would be. Every other node compares it with its root too, and a valid signature
            // over another hash would take more than 2/3 of the validators lying.
            Err(_) if self.store.retention().earliest() == expected + 1 => {}
            Err(e) => return Err(refuse(format!("no root at {expected}: {e}"))),
        }
        let set = self
            .signers_of(expected)
            .map_err(|e| refuse(format!("no registry at {expected}: {e}")))?;
        checkpoint::verify_certificate(&cert_validators(&set), &self.chain_id, cert)
            .map(|_| ())
            .map_err(|e| refuse(e.to_string()))
    }

    /// CheckTx: decode, signature, chain id, stateless checks, the sequence (or the unordered
    /// window and nonce) against the committed state plus the txs already admitted to this
    /// node's mempool, and a place in the signer's mempool lane ([`crate::lanes`]).
    ///
    /// A sequence is admitted from the signer's committed next sequence up to one past the
    /// highest this node admitted: a client can keep many txs in flight, and the mempool view
    /// survives Commit, so it does not depend on CometBFT rechecking every pending tx after each
    /// block. The same bytes again (a client resending after a timeout or a failover, a recheck)
    /// are admitted for free. A *different* tx at a sequence already pending (a client that
    /// re-signed after a mempool dropped its tx) takes a place in the signer's lane like any
    /// other tx, so it is admitted within the lane's limits and never bypasses them; a block
    /// applies each sequence at most once and refuses any other copy with `SEQUENCE_REUSED`.
    ///
    /// A tx from a key the ledger does not know (only a key recovery may be) is admitted only if
    /// its handler would apply it to the committed state, at the last block's time: a recovery
    /// the block would refuse is refused here with the handler's code, so it never takes a
    /// place in a mempool.
    pub fn check_tx(&mut self, tx: &[u8]) -> Result<(), TxError> {
        if decode_certificate_tx(tx).is_some() {
            return Err(TxError::new(
                Code::ProposerOnly,
                "certificates are added by block proposers, not submitted",
            ));
        }
        let size = framed_tx_size(tx.len());
        let tx = self.sigs.decode_and_verify(tx)?;
        let msg = check_stateless(&tx, &self.chain_id)?;
        // Only keys the ledger knows reach the mempool (a recovery excepted, signed by the new
        // key): an outsider with RPC access cannot crowd out members or grow the state.
        let who = match signer(&self.store, tx.signer()) {
            Ok(Signer::Unknown) if !unknown_signer_may_send(msg) => return Err(unknown_signer()),
            Ok(who) => who,
            Err(ApplyError::Rejected(e)) => return Err(e),
            Err(ApplyError::Store(e)) => return Err(internal(e)),
        };
        let ticket = Ticket::of(&who, msg);
        let next_height = self.store.committed().map_or(0, |c| c.height) + 1;
        if let Some(u) = &tx.body().unordered {
            // No sequence: the window against the last block's time (the next block's is
            // later), and the nonce against the committed set. Copies pending in the mempool
            // are CometBFT's cache's business; a block applies the first and refuses the rest.
            nonces::check(&self.store, tx.signer(), u, self.last_block_time)
                .map_err(internal)??;
            self.check_outsider(&tx, who, msg, next_height)?;
            return self
                .lanes
                .admit(*tx.hash(), *tx.signer(), &ticket, None, next_height, size);
        }
        let committed = self
            .store
            .get_u64(&keys::sequence(tx.signer()))
            .map_err(internal)?;
        // Pending txs of this signer below its committed sequence can never apply: free them.
        self.lanes.forget_applied(tx.signer(), committed);
        let admitted = self
            .mempool_next
            .get(tx.signer())
            .copied()
            .unwrap_or(committed)
            .max(committed);
        let sequence = tx.body().sequence;
        if sequence < committed {
            check_sequence(sequence, committed)?;
        }
        if sequence > admitted {
            check_sequence(sequence, admitted)?;
        }
        self.check_outsider(&tx, who, msg, next_height)?;
        // Within [committed, admitted]: a new sequence, or one already pending. Either way the
        // tx takes its place in its lane (the same bytes again are admitted for free).
        self.lanes.admit(
            *tx.hash(),
            *tx.signer(),
            &ticket,
            Some(sequence),
            next_height,
            size,
        )?;
        if sequence == admitted {
            if self.mempool_next.len() >= MAX_MEMPOOL_SIGNERS
                && !self.mempool_next.contains_key(tx.signer())
            {
                // Forget one signer's view rather than grow without bound; a signer forgotten
                // here falls back to its committed sequence (its next pipelined tx may see
                // SEQUENCE_GAP).
                self.mempool_next.pop_first();
            }
            self.mempool_next.insert(*tx.signer(), admitted + 1);
        }
        Ok(())
    }

    /// A tx from a key the ledger does not know (after its sequence or nonce checks, as in the
    /// block): its message's handler runs against the committed state (at the next height and
    /// the last block's time) and its writes are dropped. The same rules as the block's, so what
    /// the block would refuse never enters the mempool, with the code the block would give.
    /// Other signers pass: their messages are checked by the block alone.
    fn check_outsider(
        &self,
        tx: &medledger_tx::VerifiedTx,
        who: Signer,
        msg: &medledger_tx::pb::tx_body::Msg,
        next_height: u64,
    ) -> Result<(), TxError> {
        if !matches!(who, Signer::Unknown) {
            return Ok(());
        }
        let view = BlockState::new(&self.store);
        let time = self.last_block_time.unwrap_or(0);
        let ctx = BlockCtx::new(self.chain_id.clone(), next_height, time);
        match apply_msg(&view, tx, who, msg, &ctx) {
            Ok(_) => Ok(()),
            Err(ApplyError::Rejected(e)) => Err(e),
            Err(ApplyError::Store(e)) => Err(internal(e)),
        }
    }

    /// PrepareProposal for `height`: a checkpoint certificate first when the last height's vote
    /// extensions make one, then the mempool's txs that decode and verify, in order, within
    /// `max_bytes`.
    ///
    /// `max_bytes` is CometBFT's `max_tx_bytes`, which it compares with the *framed* size of the
    /// block's txs (`ComputeProtoSizeForTxs`: each tx as a protobuf `bytes` field of `Data`), and
    /// CometBFT stops the node when a proposal is over it. So every tx, the certificate included,
    /// is counted with [`framed_tx_size`], never by its raw length.
    pub fn prepare_proposal(
        &mut self,
        height: u64,
        votes: &[VoteExtension],
        txs: Vec<Vec<u8>>,
        max_bytes: u64,
    ) -> Vec<Vec<u8>> {
        self.lanes.set_block_bytes(max_bytes);
        let mut total: u64 = 0;
        let mut out = Vec::with_capacity(txs.len() + 1);
        if let Some(cert) = self.build_certificate(height, votes) {
            let tx = encode_certificate_tx(&cert);
            let size = framed_tx_size(tx.len());
            if size <= max_bytes {
                total = size;
                out.push(tx);
            }
        }
        for tx in txs {
            let size = framed_tx_size(tx.len());
            if total.saturating_add(size) > max_bytes {
                // A smaller tx further on might still fit, but the mempool's order is kept:
                // later txs of the same signer depend on the earlier ones.
                break;
            }
            if self.sigs.decode_and_verify(&tx).is_ok() {
                total += size;
                out.push(tx);
            }
        }
        out
    }

    /// Verifies, on every core, the key proofs carried by the block's txs (enrolments,
    /// rotations, practitioner registrations), naming the subject the committed state gives the
    /// signer. Handlers then skip the proofs that passed and check any other themselves (a
    /// signer whose owner changes within the block), so the verdicts are the same either way.
    fn verify_key_proofs(&self, parsed: &[BlockTx]) -> Result<keyproof::Verified, StoreError> {
        use medledger_tx::pb::{key_owner::Owner, tx_body::Msg, KeyOwner, Practitioner};
        let mut checks = Vec::new();
        for tx in parsed {
            let BlockTx::User(Ok(tx)) = tx else { continue };
            let (key, proof, purpose) = match &tx.body().msg {
                Some(Msg::RegisterPatient(m)) => {
                    (&m.patient_key, &m.key_proof, keyproof::ENROL_PATIENT)
                }
                Some(Msg::RotatePatientKey(m)) => {
                    (&m.new_key, &m.new_key_proof, keyproof::ROTATE_PATIENT_KEY)
                }
                Some(Msg::RegisterPractitioner(m)) => {
                    (&m.public_key, &m.key_proof, keyproof::REGISTER_PRACTITIONER)
                }
                _ => continue,
            };
            let Ok(key) = <[u8; 32]>::try_from(key.as_slice()) else {
                continue;
            };
            let owner = self
                .store
                .get_msg::<KeyOwner>(&keys::key_owner(tx.signer()))?
                .and_then(|o| o.owner);
            let subject = match owner {
                Some(Owner::MemberId(id)) | Some(Owner::PatientId(id)) => id,
                Some(Owner::PractitionerDid(did)) => {
                    match self
                        .store
                        .get_msg::<Practitioner>(&keys::practitioner(&did))?
                    {
                        Some(p) => p.member_id,
                        None => continue,
                    }
                }
                _ => continue,
            };
            checks.push(keyproof::Check {
                key,
                proof: proof.clone(),
                chain_id: self.chain_id.clone(),
                purpose,
                subject,
            });
        }
        Ok(keyproof::verify_all(checks))
    }

    /// ProcessProposal for block `height`: accept only blocks whose every tx decodes and carries
    /// a valid signature, with at most one certificate, first, and valid. Deterministic: the same
    /// block gives the same answer on every validator.
    pub fn process_proposal(&mut self, height: u64, txs: &[Vec<u8>]) -> Result<(), TxError> {
        self.sigs.warm(txs);
        for (i, tx) in txs.iter().enumerate() {
            match decode_certificate_tx(tx) {
                Some(cert) if i == 0 => self.check_certificate(height, &cert?)?,
                Some(_) => {
                    return Err(TxError::new(
                        Code::ProposerOnly,
                        "a certificate must be the first tx",
                    ))
                }
                None => {
                    self.sigs.decode_and_verify(tx)?;
                }
            }
        }
        Ok(())
    }

    fn deliver_certificate(
        &self,
        block: &mut BlockState<'_>,
        i: usize,
        height: u64,
        cert: Result<Certificate, TxError>,
    ) -> TxOutcome {
        let checked = cert.and_then(|c| {
            if i != 0 {
                return Err(TxError::new(
                    Code::ProposerOnly,
                    "a certificate must be the first tx",
                ));
            }
            self.check_certificate(height, &c).map(|_| c)
        });
        match checked {
            Ok(cert) => {
                block.put_msg(keys::certificate(cert.height), &cert);
                block.put_u64(keys::latest_certificate(), cert.height);
                let signers = cert.signers.iter().map(|b| b.count_ones()).sum::<u32>();
                TxOutcome {
                    code: 0,
                    log: String::new(),
                    events: vec![Event::new(
                        "medledger.checkpoint",
                        vec![
                            ("height", cert.height.to_string()),
                            ("signers", signers.to_string()),
                        ],
                    )],
                }
            }
            Err(e) => TxOutcome {
                code: e.code.value(),
                log: e.message,
                events: Vec::new(),
            },
        }
    }

    /// FinalizeBlock: applies `txs`, expires proposals past their deadline, derives the
    /// validator updates from the registry's change, and computes the app hash. Writes nothing
    /// to disk.
    pub fn finalize_block(
        &mut self,
        height: u64,
        time: u64,
        txs: &[Vec<u8>],
    ) -> Result<BlockResult, StoreError> {
        // Signatures first (mostly cache hits from CheckTx; the rest on all cores), then the
        // key proofs the block's txs carry (on all cores), then the state machine.
        self.sigs.warm(txs);
        let parsed: Vec<BlockTx> = txs
            .iter()
            .map(|tx| match decode_certificate_tx(tx) {
                Some(cert) => BlockTx::Certificate(cert),
                None => BlockTx::User(self.sigs.decode_and_verify(tx)),
            })
            .collect();
        // Only txs that decoded were ever admitted; their hashes come from the signature check.
        for tx in &parsed {
            if let BlockTx::User(Ok(tx)) = tx {
                self.lanes.carried(tx.hash());
            }
        }
        self.lanes.expire(height);
        let ctx = BlockCtx {
            key_proofs: self.verify_key_proofs(&parsed)?,
            ..BlockCtx::new(self.chain_id.clone(), height, time)
        };
        let mut block = BlockState::new(&self.store);
        // An upgrade planned for this block migrates the state before anything else.
        let upgraded = crate::upgrade::apply_due(&mut block, &ctx)?;
        let app_version = upgraded.as_ref().map(|u| u.app_version);
        // Nonces that expired before this block are forgotten before its txs are checked.
        nonces::forget_expired(&mut block, time)?;
        let mut tx_results = Vec::with_capacity(txs.len());
        for (i, tx) in parsed.into_iter().enumerate() {
            let outcome = match tx {
                BlockTx::Certificate(cert) => self.deliver_certificate(&mut block, i, height, cert),
                BlockTx::User(verified) => deliver(&mut block, verified, &ctx)?,
            };
            tx_results.push(outcome);
        }
        let mut events: Vec<Event> = upgraded.into_iter().map(|u| u.event).collect();
        events.extend(governance::end_block(&mut block, &ctx)?);
        let registry = validators::registry(&block)?;
        let validator_updates = validators::updates(&self.validators, &registry);
        if registry != self.validators {
            // Auditors who trust certificates hand trust from one set to the next at exactly
            // these heights (docs/certificates.md), so the list must be complete and proven.
            lists::push(
                &mut block,
                &keys::List::ValidatorChanges,
                keys::encode_u64(height),
            )?;
        }
        for (key, power) in &validator_updates {
            events.push(Event::new(
                "medledger.validators.updated",
                vec![
                    ("address", hex::encode_upper(ids::validator_address(key))),
                    ("power", power.to_string()),
                ],
            ));
        }
        // The block's time, proven like any value, so a reader learns how old a state is. Written
        // with the block's other writes: on a live chain every block writes its checkpoint
        // certificate, so every state carries its time; a block that changes nothing else
        // (only refused txs) still leaves the app hash as it was.
        if !block.writes().is_empty() {
            block.put_u64(keys::block_time(), time);
        }
        let writes = block.into_writes();
        let staged = self.store.stage(height, &writes)?.with_block_time(time);
        let app_hash = staged.root;
        self.pending = Some(staged);
        self.pending_time = time;
        crate::fault::crash_point("finalize-block", height);
        Ok(BlockResult {
            tx_results,
            app_hash,
            validator_updates,
            events,
            app_version,
        })
    }

    /// Commit: persists the finalized block and its time atomically, and reloads the
    /// registries the next signatures are checked against. The mempool's view (sequences and
    /// lanes) survives it: CometBFT need not recheck the remaining txs.
    pub fn commit(&mut self) -> Result<Committed, StoreError> {
        let staged = self.pending.take().ok_or(StoreError::NothingToCommit)?;
        let committed = self.store.commit(staged)?;
        self.last_block_time = Some(self.pending_time);
        if let Some(tx) = &self.pruner {
            // The pruner may have stopped (an error it logged): the chain goes on unpruned.
            let _ = tx.send(committed.height);
        }
        (self.validators, self.recent_registries) = load_registries(&self.store)?;
        if let Some(s) = &self.snapshots {
            if s.interval > 0 && committed.height % s.interval == 0 && self.registry_settled()? {
                // The snapshot thread may have stopped (an error it logged): no more snapshots.
                let _ = s.tx.send((committed.height, self.chain_id.clone()));
            }
        }
        Ok(committed)
    }

    /// Whether the registry of the last committed state `c` is also that of `c - 1`, `c - 2` and
    /// `c - 3` (no block among the last three changed it): only then can a node restored from a
    /// snapshot of `c`, which has no older state, know the signers of the next certificates and
    /// of the newest certificate in the state (of `c - 2`, signed by the registry of `c - 3`).
    fn registry_settled(&self) -> Result<bool, StoreError> {
        let Some(c) = self.store.committed() else {
            return Ok(false);
        };
        Ok(last_registry_change(&self.store)?.is_none_or(|h| h + 3 <= c.height))
    }

    /// Takes a state sync snapshot after every committed height that is a multiple of
    /// `interval` (module [`crate::snapshot`]), into `dir`, on a thread of its own from a
    /// consistent view of the store. Also serves the snapshots already in `dir`.
    pub fn snapshot_every(&mut self, dir: &Path, interval: u64) -> Result<(), StoreError> {
        let store = snapshot::SnapshotStore::new(dir);
        let exporter = self.store.exporter();
        let thread_store = store.clone();
        let tx = spawn_newest("snapshots", move |(height, chain_id): (u64, String)| {
            let started = std::time::Instant::now();
            match thread_store.create(&exporter, height, &chain_id, snapshot::CHUNK_BYTES) {
                Ok(s) => tracing::info!(
                    height,
                    chunks = s.chunks,
                    ms = started.elapsed().as_millis() as u64,
                    "state sync snapshot taken"
                ),
                // Not fatal: the height may have been pruned meanwhile; the next one is tried.
                Err(e) => tracing::warn!(height, error = %e, "snapshot failed"),
            }
            true
        })?;
        self.snapshots = Some(Snapshots {
            store,
            interval,
            tx,
        });
        Ok(())
    }

    /// ListSnapshots: the snapshots this node serves, newest first.
    pub fn list_snapshots(&self) -> Vec<snapshot::Snapshot> {
        self.snapshots
            .as_ref()
            .map(|s| s.store.list())
            .unwrap_or_default()
    }

    /// LoadSnapshotChunk: chunk `index` of the snapshot of `height`, if this node has it.
    pub fn load_snapshot_chunk(&self, height: u64, format: u32, index: u32) -> Option<Vec<u8>> {
        self.snapshots.as_ref()?.store.chunk(height, format, index)
    }

    /// OfferSnapshot: accepts `s` for restoring if it is well-formed and this node holds no
    /// block yet. `app_hash` is the app hash of the snapshot's height as CometBFT's light
    /// client verified it.
    pub fn offer_snapshot(
        &mut self,
        s: &snapshot::Snapshot,
        app_hash: &[u8],
    ) -> Result<(), snapshot::OfferRefusal> {
        if self.info().is_some() {
            return Err(snapshot::OfferRefusal::Snapshot(
                "this node already holds blocks".into(),
            ));
        }
        self.restore = Some(snapshot::offer(s, app_hash)?);
        Ok(())
    }

    /// ApplySnapshotChunk. After the last chunk the restored tree's root must be the verified
    /// app hash, and the state's newest certificate must verify for the snapshot's chain id;
    /// only then is anything written. `Err` only on a storage failure.
    pub fn apply_snapshot_chunk(
        &mut self,
        index: u32,
        chunk: &[u8],
    ) -> Result<ChunkOutcome, StoreError> {
        let Some(restore) = self.restore.as_mut() else {
            return Ok(ChunkOutcome::Reject("no snapshot is being restored".into()));
        };
        let total = restore.metadata.chunk_hashes.len();
        match restore.apply(index, chunk) {
            snapshot::ChunkVerdict::More => {
                // Progress of a long restore, in the node's log.
                tracing::info!(chunk = index + 1, total, "snapshot chunk applied");
                return Ok(ChunkOutcome::Accept);
            }
            snapshot::ChunkVerdict::Refetch => return Ok(ChunkOutcome::Refetch),
            snapshot::ChunkVerdict::Reject(why) => {
                self.restore = None;
                return Ok(ChunkOutcome::Reject(why));
            }
            snapshot::ChunkVerdict::Complete => {}
        }
        let Some(restore) = self.restore.take() else {
            return Ok(ChunkOutcome::Reject("no snapshot is being restored".into()));
        };
        let staged = self.store.stage_restore(restore.height, &restore.entries)?;
        if staged.root != restore.app_hash {
            return Ok(ChunkOutcome::Reject(format!(
                "the snapshot's state has root {}, not the app hash {} of height {}",
                hex::encode_upper(staged.root),
                hex::encode_upper(restore.app_hash),
                restore.height
            )));
        }
        let chain_id = &restore.metadata.chain_id;
        if let Err(why) = certified_chain(&restore.entries, restore.height, chain_id) {
            return Ok(ChunkOutcome::Reject(why));
        }
        self.store.commit_restore(staged, self.keep_every)?;
        self.store.set_chain_id(chain_id)?;
        self.chain_id = chain_id.clone();
        (self.validators, self.recent_registries) = load_registries(&self.store)?;
        tracing::info!(height = restore.height, "state restored from a snapshot");
        Ok(ChunkOutcome::Accept)
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
            p if p.len() > 1 && p.len() <= MAX_QUERY_PATH && p.starts_with('/') => {
                p.as_bytes()[1..].to_vec()
            }
            _ => {
                return fail(
                    QueryCode::BadPath,
                    format!("path {path:?}: use /<state key> (e.g. /consent/c-1) or /store"),
                )
            }
        };
        // Height 0 is genesis: its state is committed at InitChain and proven by header 1.
        let Some(latest) = self.store.committed() else {
            return fail(
                QueryCode::FutureHeight,
                "the chain has not been initialised yet".into(),
            );
        };
        let height = if height == 0 { latest.height } else { height };
        if height > latest.height {
            return fail(
                QueryCode::FutureHeight,
                format!(
                    "height {height} is above the last committed {}",
                    latest.height
                ),
            );
        }
        let pruned = || {
            let r = self.store.retention();
            fail(
                QueryCode::Pruned,
                format!(
                    "height {height} is pruned on this node: it keeps every height from {} and \
                     every multiple of {} (0: none) below; query a later height, or an archive \
                     node (docs/reliability.md, \"Pruning\")",
                    r.earliest(),
                    r.keep_every()
                ),
            )
        };
        if !self.store.available(height) {
            return pruned();
        }
        let result = if prove {
            self.store.prove(&key, height).map(|(v, p)| (v, Some(p)))
        } else {
            self.store.get_at(&key, height).map(|v| (v, None))
        };
        if result.is_err() && !self.store.available(height) {
            return pruned(); // the pruner went past it while we read
        }
        match result {
            Ok((value, proof)) => QueryAnswer {
                code: 0,
                log: if value.is_some() {
                    "exists".into()
                } else {
                    "absent".into()
                },
                key,
                value,
                height,
                proof,
            },
            Err(e) => fail(QueryCode::Internal, format!("reading state: {e}")),
        }
    }
}

/// A tx of a block: a proposer's certificate, or a user tx after its signature check.
// Both variants are a few hundred bytes, held only while one block is executed: boxing either
// would add an allocation per tx for nothing.
#[allow(clippy::large_enum_variant)]
enum BlockTx {
    Certificate(Result<Certificate, TxError>),
    User(Result<medledger_tx::VerifiedTx, TxError>),
}

impl Ledger {
    /// (hits, misses) of the signature cache.
    pub fn sig_cache_stats(&self) -> (u64, u64) {
        self.sigs.stats()
    }
}

/// The registry of state `version`.
fn registry_at(store: &Store, version: u64) -> Result<Vec<Validator>, StoreError> {
    let Some(bytes) = store.get_at(&keys::validators(), version)? else {
        return Ok(Vec::new());
    };
    prost::Message::decode(bytes.as_slice())
        .map(|s: ValidatorSet| s.validators)
        .map_err(|e| StoreError::Corrupt {
            key: "validators".into(),
            reason: e.to_string(),
        })
}

/// Starts thread `name`, which runs `work` on what the returned sender sends, off the Commit
/// path. Only the newest message matters: those queued while `work` ran are skipped (a node
/// under load prunes or snapshots its newest height, never a backlog). `work` returns `false`
/// to stop the thread.
fn spawn_newest<T: Send + 'static>(
    name: &str,
    mut work: impl FnMut(T) -> bool + Send + 'static,
) -> Result<std::sync::mpsc::Sender<T>, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel::<T>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            while let Ok(mut next) = rx.recv() {
                while let Ok(newer) = rx.try_recv() {
                    next = newer;
                }
                if !work(next) {
                    return;
                }
            }
        })
        .map_err(|e| StoreError::Tree(format!("starting the {name} thread: {e}")))?;
    Ok(tx)
}

/// The snapshots a node serves and the channel to its snapshot thread.
struct Snapshots {
    store: snapshot::SnapshotStore,
    interval: u64,
    tx: std::sync::mpsc::Sender<(u64, String)>,
}

/// What a node answers to one snapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Applied (and, after the last chunk, the state restored).
    Accept,
    /// The chunk does not match its hash: fetch it again from another peer.
    Refetch,
    /// The snapshot is wrong: try another.
    Reject(String),
}

/// The height of the last block that changed the validator registry, if any.
fn last_registry_change(view: &impl StateRead) -> Result<Option<u64>, StoreError> {
    let changes = keys::List::ValidatorChanges;
    let n = lists::len(view, &changes)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(lists::entry(view, &changes, n - 1)?
        .as_deref()
        .and_then(keys::decode_u64))
}

/// Checks that a restored state belongs to `chain_id`: the certificate of state `height - 2`
/// (signed in the votes of `height - 1`, stored by block `height`), if the state has one, must
/// verify for `chain_id` with the registry (unchanged over the last three blocks, as snapshots
/// require, so it is also the registry of `height - 3` that signed). The chain id is not
/// part of the state, so this is what binds the snapshot's metadata to the verified app hash.
fn certified_chain(entries: &WriteSet, height: u64, chain_id: &str) -> Result<(), String> {
    let decode = |key: Vec<u8>| entries.get(&key).and_then(|v| v.clone());
    let Some(cert) = decode(keys::certificate(height.saturating_sub(2))) else {
        return Ok(()); // a chain without BLS validators certifies nothing to check against
    };
    let cert: Certificate =
        prost::Message::decode(cert.as_slice()).map_err(|e| format!("certificate: {e}"))?;
    let registry: Vec<Validator> = decode(keys::validators())
        .map(|v| prost::Message::decode(v.as_slice()).map(|s: ValidatorSet| s.validators))
        .transpose()
        .map_err(|e| format!("registry: {e}"))?
        .unwrap_or_default();
    let set = checkpoint::certificate_order(cert_validators(&registry));
    checkpoint::verify_certificate(&set, chain_id, &cert)
        .map(|_| ())
        .map_err(|e| format!("the snapshot's chain id {chain_id:?} is not the state's: {e}"))
}

/// Registries by state version.
type Registries = BTreeMap<u64, Vec<Validator>>;

/// The registry of the last committed state `c`, and those of `c`, `c-1` and `c-2` by version.
fn load_registries(store: &Store) -> Result<(Vec<Validator>, Registries), StoreError> {
    let Some(c) = store.committed() else {
        return Ok((Vec::new(), BTreeMap::new()));
    };
    let mut recent = BTreeMap::new();
    let latest = registry_at(store, c.height)?;
    for version in [
        c.height,
        c.height.saturating_sub(1),
        c.height.saturating_sub(2),
    ] {
        if let std::collections::btree_map::Entry::Vacant(slot) = recent.entry(version) {
            let registry = if store.available(version) {
                registry_at(store, version)?
            } else {
                // A state restored from a snapshot has no older versions; snapshots are taken
                // only where the registry did not change in the last three blocks.
                if last_registry_change(store)?.is_some_and(|h| h > version) {
                    return Err(StoreError::Corrupt {
                        key: "validators".into(),
                        reason: format!("the registry of state {version} is needed but not stored"),
                    });
                }
                latest.clone()
            };
            slot.insert(registry);
        }
    }
    let latest = recent.get(&c.height).cloned().unwrap_or_default();
    Ok((latest, recent))
}

fn cert_validators(set: &[Validator]) -> Vec<CertValidator> {
    set.iter()
        .map(|v| CertValidator {
            address: v.address.clone(),
            bls_key: v.bls_key.clone(),
            power: v.power,
        })
        .collect()
}

/// A storage failure during CheckTx refuses the tx (CheckTx is only a filter; FinalizeBlock
/// would stop the node on the same failure).
fn internal(e: StoreError) -> TxError {
    TxError::new(
        medledger_tx::Code::NodeStorage,
        format!("node storage error: {e}"),
    )
}

/// The bytes one tx of `len` bytes adds to a block's data as CometBFT counts it against
/// `max_tx_bytes` (`types.ComputeProtoSizeForTxs`): the field tag of `Data.txs` (1 byte), the
/// varint length, then the tx.
pub fn framed_tx_size(len: usize) -> u64 {
    let len = len as u64;
    let mut varint = 1;
    let mut rest = len >> 7;
    while rest > 0 {
        varint += 1;
        rest >>= 7;
    }
    1 + varint + len
}

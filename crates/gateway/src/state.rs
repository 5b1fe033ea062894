//! The gateway's shared state (one per gateway, behind an `Arc` in every handler): the store,
//! the ledger, the authentication gate and the bookkeeping of the features built on them.

use ed25519_dalek::SigningKey;
use medledger_tx::pb::{self, tx_body::Msg, TxBody};
use medledger_tx::sign_tx;
use medledger_vault::kek::Kek;

use crate::auth::{Requester, Subject};
use crate::node::{Committed, Node, NodeError};
use crate::store::Store;
use crate::Config;
use medledger_client::verify::Trust;
use medledger_query::certificate::CertTrust;

pub(crate) struct State {
    pub(crate) member_id: String,
    pub(crate) signing_key: SigningKey,
    pub(crate) kek: Kek,
    pub(crate) public_url: String,
    pub(crate) store: Store,
    /// Where the erasure watcher stands ([`crate::erasure`]).
    pub(crate) erasure_watch: std::sync::Mutex<crate::erasure::Watch>,
    pub(crate) node: Node,
    /// The node RPC URLs (the pages' `/rpc/…` pass-through tries them in order).
    pub(crate) node_urls: Vec<String>,
    /// HTTP client of the pass-through.
    pub(crate) http: reqwest::Client,
    /// Reads verified against BLS checkpoint certificates (FHIR answers).
    pub(crate) client: medledger_client::rpc::Client,
    /// The consortium's genesis BLS keys.
    pub(crate) trust: Trust,
    /// Request counts and latencies (`GET /metrics`).
    pub(crate) metrics: crate::metrics::GatewayMetrics,
    /// Authentication: replay cache, tokens, rate limits ([`crate::auth`]).
    pub(crate) gate: crate::auth::Gate,
    /// Remembered read decisions ([`crate::access`]).
    pub(crate) decisions: crate::access::Decisions,
    /// Serializes the gateway's own txs (one signer, one sequence).
    pub(crate) submit_lock: tokio::sync::Mutex<()>,
    /// The pages' live streams ([`crate::live`]).
    pub(crate) live: crate::live::Live,
    /// FHIR Subscriptions and their deliveries ([`crate::fhir::subscription`]).
    pub(crate) subscriptions: crate::fhir::subscription::Subscriptions,
    /// Records stored for a person who has not yet signed their anchor: signer → (record id,
    /// the prepared anchor's `valid_until`). Bounds what one key can make the gateway hold.
    pub(crate) awaiting: std::sync::Mutex<std::collections::BTreeMap<[u8; 32], Awaiting>>,
    /// The member's X25519 box key: it opens the key shares other custodians hand this gateway
    /// as a holder (threshold custody, [`crate::records::custody`]).
    pub(crate) box_key: medledger_vault::share::MemberBoxKey,
    /// The genesis members, in order: the candidates for holding other members' records (each
    /// checked on chain, proven, before it is chosen).
    pub(crate) genesis_members: Vec<String>,
    /// The data dir (`reshare/` stages a record's move to threshold custody there).
    pub(crate) data_dir: std::path::PathBuf,
}

/// The member ids of a genesis file's `app_state.members`.
fn genesis_member_ids(genesis_json: &[u8]) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(genesis_json)
        .map_err(|e| anyhow::anyhow!("genesis is not JSON: {e}"))?;
    Ok(v["app_state"]["members"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// One signer's records awaiting their signed anchor: (record id, the anchor's `valid_until`).
pub(crate) type Awaiting = Vec<(String, u64)>;

impl State {
    pub(crate) fn new(
        config: Config,
        kek: Kek,
        sealed_in: &crate::store::StoreUrl,
    ) -> anyhow::Result<State> {
        let store = Store::open_with(&config.data_dir, sealed_in)
            .map_err(|e| anyhow::anyhow!("data dir {}: {e}", config.data_dir.display()))?;
        let node = Node::new(&config.node_urls, &config.genesis_json)?;
        let trust = Trust::Certificates(
            CertTrust::from_genesis_json(&config.genesis_json)
                .map_err(|e| anyhow::anyhow!("genesis BLS keys: {e}"))?,
        );
        let client = medledger_client::rpc::Client::new(&config.node_urls[0])?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        let genesis_members = genesis_member_ids(&config.genesis_json)?;
        let subscriptions = crate::fhir::subscription::Subscriptions::load(&store);
        Ok(State {
            member_id: config.member_id,
            signing_key: config.signing_key,
            kek,
            public_url: config.public_url.trim_end_matches('/').to_string(),
            store,
            erasure_watch: Default::default(),
            node,
            node_urls: config.node_urls,
            http,
            client,
            trust,
            metrics: Default::default(),
            gate: crate::auth::Gate::new(
                &config.public_url,
                config.nonce_cache_capacity,
                config.rate_limits,
            ),
            decisions: Default::default(),
            submit_lock: tokio::sync::Mutex::new(()),
            awaiting: Default::default(),
            live: Default::default(),
            subscriptions,
            box_key: config.box_key,
            genesis_members,
            data_dir: config.data_dir,
        })
    }

    /// Whether `who` may act as this gateway's member: its admin, or an active practitioner of
    /// it whose role is in `roles` (the ledger's own role table for the action, so the gateway
    /// never does in the member's name what the person may not do themselves).
    pub(crate) fn acts_for_member(&self, who: &Requester, roles: &[pb::PractitionerRole]) -> bool {
        match &who.subject {
            Subject::Member(m) => *m == self.member_id,
            Subject::Practitioner {
                member,
                role,
                active: true,
                ..
            } => *member == self.member_id && roles.contains(role),
            _ => false,
        }
    }

    /// Signs `msg` with the gateway key (unordered when the message may be, else at its next
    /// sequence) and waits for its block.
    pub(crate) async fn submit(&self, msg: Msg) -> Result<Committed, NodeError> {
        Ok(self.submit_signed(msg).await?.0)
    }

    /// [`State::submit`], also answering the signed tx bytes.
    pub(crate) async fn submit_signed(&self, msg: Msg) -> Result<(Committed, Vec<u8>), NodeError> {
        if medledger_tx::check::may_be_unordered(&msg) {
            // Anchors need no sequence: concurrent requests (and several gateway replicas
            // sharing the key) sign independently.
            let body = medledger_client::unordered::body_now(self.node.chain_id(), msg)
                .map_err(|e| NodeError::Unreachable(e.to_string()))?;
            let tx = sign_tx(&self.signing_key, &body);
            let committed = self.node.submit(tx.clone()).await?;
            return Ok((committed, tx));
        }
        let _guard = self.submit_lock.lock().await;
        let pk = self.signing_key.verifying_key().to_bytes();
        let sequence = self.node.next_sequence(&pk).await?;
        let tx = sign_tx(
            &self.signing_key,
            &TxBody {
                chain_id: self.node.chain_id().to_string(),
                sequence,
                unordered: None,
                msg: Some(msg),
            },
        );
        let committed = self.node.submit(tx.clone()).await?;
        Ok((committed, tx))
    }

    /// The node's latest block height (its unproven word: the watchers use it only to know
    /// which blocks to look at).
    pub(crate) async fn latest_block_height(&self) -> anyhow::Result<u64> {
        use tendermint_rpc::Client as _;
        Ok(self
            .client
            .rpc()
            .status()
            .await?
            .sync_info
            .latest_block_height
            .value())
    }

    /// The time of block `height` (unix seconds; 0 if the node cannot say).
    pub(crate) async fn block_time(&self, height: u64) -> u64 {
        use tendermint_rpc::Client as _;
        let Ok(h) = tendermint::block::Height::try_from(height) else {
            return 0;
        };
        match self.client.rpc().commit(h).await {
            Ok(c) => u64::try_from(c.signed_header.header.time.unix_timestamp()).unwrap_or(0),
            Err(_) => 0,
        }
    }
}

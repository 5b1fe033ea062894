//! medledger record vault gateway (issue 13): an HTTP server in front of one member's off-chain
//! record store.
//!
//! - `PUT /records/{id}`: the member's admin or one of its active practitioners stores a record.
//!   The gateway seals it under a fresh data key ([`medledger_vault::record`]), stores the
//!   ciphertext and the KEK-wrapped key durably and apart ([`store`]), then anchors it
//!   (`AnchorRecord`: content hash, type, size, key id `kc1-<key commitment>`) and waits for the
//!   block. Store first, anchor second: no anchor ever lacks its ciphertext.
//! - `GET /records/{id}?purpose=…`: another member's admin or practitioner sends its own signed
//!   `LogAccess` tx; the gateway checks it names this record, patient, class and purpose and is
//!   signed by the request's key, broadcasts it, and releases the sealed record and the data key
//!   (HPKE to the reader member's box key on chain) only once the ledger committed it with code 0.
//! - `POST /records/{id}/erase`: the custodian or the patient; the wrapped key is destroyed, then
//!   `EraseRecord` is anchored.
//!
//! Every request is signed (RFC 9421, [`medledger_vault::httpsig`]), `keyid` being the hex
//! Ed25519 public key; who that key is comes from the chain, read with proofs verified from the
//! genesis trust root ([`node`]). The HTTP API and storage layout are in docs/vault.md.
//!
//! **Signing key.** The gateway signs anchors and erasures with the key in its config. Here that
//! is the member's admin key, which keeps this first slice small; a real deployment gives the
//! gateway its own practitioner-like key (registered by the member, revocable on its own), so
//! that a compromised gateway host does not hold the member's governance key.

mod access;
pub mod api;
mod auth;
pub mod bench;
mod breakglass;
pub mod client;
mod cors;
mod erasure;
mod error;
pub mod fhir;
pub mod flood;
pub mod keyfiles;
mod live;
pub mod metrics;
pub mod node;
pub mod pages;
mod records;
mod server;
mod smart;
mod state;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use medledger_vault::kek::Kek;
use medledger_vault::share::MemberBoxKey;
use tokio::net::TcpListener;

pub use auth::RateLimits;
pub use records::{MAX_AWAITING_PER_SIGNER, MAX_BODY_BYTES};

/// The gateway's configuration.
pub struct Config {
    /// Where records and wrapped keys are stored (created `0700`).
    pub data_dir: PathBuf,
    /// The member this gateway serves (custodian of the records it stores).
    pub member_id: String,
    /// The key that signs anchors and erasures (see the crate docs).
    pub signing_key: SigningKey,
    /// The KEK file (32 raw bytes, mode `0600`).
    pub kek_file: PathBuf,
    /// The member's X25519 box key (what readers' shares are sealed to is the *reader's* key;
    /// this one is registered on chain by SetGateway for records others share with us).
    pub box_key: MemberBoxKey,
    /// Node RPC URLs, tried in order.
    pub node_urls: Vec<String>,
    /// The genesis file's bytes: the trust root for proven reads.
    pub genesis_json: Vec<u8>,
    /// The gateway's public base URL, as clients sign it (`@target-uri` is this plus the path
    /// and query; it is the endpoint registered on chain).
    pub public_url: String,
    /// Capacity of the replay (nonce) cache.
    pub nonce_cache_capacity: usize,
    /// Rate limits per source address, per key and per relayed tx signer.
    pub rate_limits: RateLimits,
}

/// How often the gateway looks for erasures of its records it has not acted on.
pub const ERASURE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// A record that is stored but whose anchor is not known to be committed (found at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAnchor {
    /// Record id.
    pub record_id: String,
    /// Whether the chain already holds a matching anchor (then only the local state lagged).
    pub anchored_on_chain: bool,
}

/// A gateway, ready to serve.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<state::State>,
}

impl Gateway {
    /// Opens the store (sealed bytes in the data dir) and the KEK, and connects to the nodes
    /// (nothing is contacted yet).
    pub fn new(config: Config) -> anyhow::Result<Gateway> {
        Gateway::with_store(config, &store::StoreUrl::DataDir)
    }

    /// [`Gateway::new`] with the sealed bytes where `sealed_in` says (`--store`: the data dir
    /// or an S3-compatible bucket); metadata, wrapped keys and shares stay in the data dir.
    /// Nothing is contacted yet: [`Gateway::check_store`] does.
    pub fn with_store(config: Config, sealed_in: &store::StoreUrl) -> anyhow::Result<Gateway> {
        let kek = Kek::load(&config.kek_file)
            .map_err(|e| anyhow::anyhow!("KEK {}: {e}", config.kek_file.display()))?;
        let inner = state::State::new(config, kek, sealed_in)?;
        Ok(Gateway {
            inner: Arc::new(inner),
        })
    }

    /// Checks that the sealed bytes' store answers (the bucket exists and the credentials are
    /// accepted), so that a wrong `--store` fails at start rather than at the first record.
    pub async fn check_store(&self) -> anyhow::Result<()> {
        Ok(self.inner.store.check().await?)
    }

    /// Records stored but not known to be anchored (e.g. after a crash between storing and
    /// anchoring). Those whose anchor is on chain are marked anchored; the rest are returned
    /// with `anchored_on_chain: false` for [`Gateway::reconcile`].
    pub async fn pending_anchors(&self) -> anyhow::Result<Vec<PendingAnchor>> {
        self.inner.pending_anchors().await
    }

    /// Re-submits the anchor of every stored record that has none on chain; removes a record
    /// whose anchor the ledger refuses (so no ciphertext lingers without an anchor). Returns the
    /// ids anchored.
    pub async fn reconcile(&self) -> anyhow::Result<Vec<String>> {
        self.inner.reconcile().await
    }

    /// Serves HTTP on `listener` until the task is dropped or the listener fails. Also runs
    /// the gateway's background work every [`ERASURE_POLL`]: the erasure watcher
    /// ([`erasure::enforce`]), the replicas holders have not acknowledged yet (threshold
    /// custody), and the pruning of idle rate-limit state.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let inner = self.inner.clone();
        let background = tokio::spawn(async move {
            let mut tick = tokio::time::interval(ERASURE_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                inner.gate.shrink();
                if let Err(e) = erasure::enforce(&inner).await {
                    tracing::warn!("erasure watcher: {e:#}");
                }
                if let Err(e) = inner.replicate_pending().await {
                    tracing::warn!("replicas: {e:#}");
                }
            }
        });
        let inner = self.inner.clone();
        let live = tokio::spawn(async move {
            let mut tick = tokio::time::interval(live::LIVE_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = live::watch(&inner).await {
                    tracing::debug!("live watcher: {e:#}");
                }
            }
        });
        let served = axum::serve(
            listener,
            server::router(self.inner)
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
        background.abort();
        live.abort();
        served
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The ledger's copy of the box-key statement (medledger-tx, kept free of the vault's
    /// crypto) is byte for byte the vault's.
    #[test]
    fn the_ledgers_box_key_statement_is_the_vaults() {
        for (chain, member, key) in [
            ("c", "m", [1u8; 32]),
            ("medledger-local", "lab-b", [0xfe; 32]),
        ] {
            assert_eq!(
                medledger_tx::boxkey::statement(chain, member, &key),
                medledger_vault::share::box_key_statement(chain, member, &key).unwrap()
            );
        }
    }
}

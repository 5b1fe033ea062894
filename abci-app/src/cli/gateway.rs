//! `medledger gateway`: run a member's record-vault gateway (medledger-gateway), and register
//! its endpoint and box key on the ledger (`SetGateway`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use ed25519_dalek::SigningKey;
use medledger_client::keyring::KeyFile;
use medledger_client::{Client, Keyring};
use medledger_gateway::keyfiles;
use medledger_gateway::store::StoreUrl;
use medledger_gateway::{Config, Gateway};
use medledger_tx::pb::{self, key_owner::Owner, tx_body::Msg};
use medledger_tx::{boxkey, keys};
use prost::Message;

use super::{tx, Ctx, Exit, NodeArgs, Output};

/// `gateway` subcommands.
#[derive(Debug, Subcommand)]
pub enum GatewayCmd {
    /// Run the member's record-vault gateway until SIGTERM or Ctrl-C. Creates the KEK and the
    /// box key files (mode 0600) on first start; re-anchors stored records whose anchor is
    /// missing.
    Start(GatewayStartArgs),
    /// Register the gateway's endpoint and the member's box key on the ledger (SetGateway,
    /// signed by the member's admin key).
    Register(GatewayRegisterArgs),
    /// Move the records a running gateway holds whole (stored before threshold custody) to
    /// threshold custody (`POST /admin/reshare`, signed by the member's admin key): each record
    /// is sealed again under a split key, its new custody anchored, the holders given their
    /// replicas, and the whole key destroyed once every holder acknowledged. Idempotent: a
    /// rerun finishes what an interrupted one left.
    Reshare(GatewayReshareArgs),
}

impl GatewayCmd {
    /// Runs `gateway …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            GatewayCmd::Start(a) => a.run(ctx).await,
            GatewayCmd::Register(a) => a.run(ctx).await,
            GatewayCmd::Reshare(a) => a.run(ctx).await,
        }
    }
}

/// `gateway register`.
#[derive(Debug, Args)]
pub struct GatewayRegisterArgs {
    /// The node to send the tx to.
    #[command(flatten)]
    node: NodeArgs,
    /// The member's admin key (keyring name).
    #[arg(long)]
    from: String,
    /// The gateway's public base URL, e.g. http://127.0.0.1:26659.
    #[arg(long)]
    endpoint: String,
    /// The member's box key file (made by `gateway start`).
    #[arg(long = "box-key")]
    box_key: PathBuf,
}

impl GatewayRegisterArgs {
    /// Sends `SetGateway` and reports like `tx`: [`Exit::Refused`] when the chain refuses it.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let admin = ctx.keyring.get(&self.from)?;
        let client = Client::new(&self.node.node)?;
        let report = register(&client, &admin, &self.endpoint, &self.box_key).await?;
        tx::print_report(&report, ctx.out)?;
        Ok(if report.code == 0 {
            Exit::Ok
        } else {
            Exit::Refused
        })
    }
}

/// `gateway reshare`.
#[derive(Debug, Args)]
pub struct GatewayReshareArgs {
    /// The node that names the member's gateway when `--gateway` is left out.
    #[command(flatten)]
    node: NodeArgs,
    /// The gateway's base URL (default: the endpoint the member registered on chain).
    #[arg(long)]
    gateway: Option<String>,
    /// The member's admin key: a key file (keyring JSON) or a keyring name.
    #[arg(long)]
    from: String,
    /// Report what would move; change nothing.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Records the gateway looks at per request (1-64); the command asks again while more wait
    /// and the last request moved some.
    #[arg(long, default_value_t = 16)]
    limit: u32,
}

impl GatewayReshareArgs {
    /// Calls `POST /admin/reshare` until nothing more moves; prints each record's outcome.
    /// [`Exit::Refused`] when the gateway refuses or a record failed.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let key = signing_key(&ctx.keyring, &self.from)?;
        let url = match &self.gateway {
            Some(u) => u.clone(),
            None => registered_endpoint(&Client::new(&self.node.node)?, &key).await?,
        };
        let gw = medledger_gateway::client::GatewayClient::new(&url, key);
        let body = serde_json::to_vec(&serde_json::json!({
            "dry_run": self.dry_run,
            "limit": self.limit,
        }))?;
        let mut answers = Vec::new();
        let mut failed = false;
        // Bounded: each round looks at up to `limit` records; stop when none moved.
        for _ in 0..10_000 {
            let (status, bytes) = gw
                .send_raw("POST", "/admin/reshare", body.clone(), &[])
                .await
                .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
            let answer: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{url} answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(300)
                        .collect::<String>()
                )
            })?;
            if status != 200 {
                let error = answer["error"].as_str().unwrap_or("refused").to_string();
                if ctx.out == Output::Json {
                    let mut answer = answer;
                    if let Some(o) = answer.as_object_mut() {
                        o.insert("status".into(), status.into());
                    }
                    super::print_json(&answer)?;
                } else {
                    println!("REFUSED ({status}): {error}");
                }
                return Ok(Exit::Refused);
            }
            failed |= answer["failed"].as_u64().unwrap_or(0) > 0;
            let again = !self.dry_run
                && answer["more"].as_bool() == Some(true)
                && answer["moved"].as_u64().unwrap_or(0) > 0;
            answers.push(answer);
            if !again {
                break;
            }
        }
        if ctx.out == Output::Json {
            super::print_json(&answers)?;
        } else {
            print_reshare(&answers);
        }
        Ok(if failed { Exit::Refused } else { Exit::Ok })
    }
}

/// The gateway endpoint the member whose admin key is `admin` registered (SetGateway).
async fn registered_endpoint(client: &Client, admin: &SigningKey) -> anyhow::Result<String> {
    let (owner, _) = client
        .query_raw(&keys::key_owner(&admin.verifying_key().to_bytes()), 0)
        .await?;
    let member = match owner
        .map(|b| pb::KeyOwner::decode(b.as_slice()))
        .transpose()?
        .and_then(|o| o.owner)
    {
        Some(Owner::MemberId(id)) => id,
        _ => anyhow::bail!("--from must be a member's admin key"),
    };
    let (gateway, _) = client.query_raw(&keys::gateway(&member), 0).await?;
    let gateway = gateway
        .map(|b| pb::Gateway::decode(b.as_slice()))
        .transpose()?
        .with_context(|| format!("{member} registered no gateway: name it with --gateway"))?;
    Ok(gateway.endpoint)
}

/// One line per record, then the totals.
fn print_reshare(answers: &[serde_json::Value]) {
    let (mut moved, mut pending, mut skipped, mut failed) = (0, 0, 0, 0);
    for a in answers {
        for r in a["records"].as_array().into_iter().flatten() {
            let outcome = r["outcome"].as_str().unwrap_or("?");
            let holders: Vec<&str> = r["holders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|h| h.as_str())
                .collect();
            let mut line = format!("{outcome:<10} {}", r["record_id"].as_str().unwrap_or("?"));
            if !holders.is_empty() {
                line.push_str(&format!(" holders={}", holders.join(",")));
            }
            if let Some(reason) = r["reason"].as_str() {
                line.push_str(&format!(": {reason}"));
            }
            println!("{line}");
        }
        moved += a["moved"].as_u64().unwrap_or(0);
        pending += a["pending"].as_u64().unwrap_or(0);
        skipped += a["skipped"].as_u64().unwrap_or(0);
        failed += a["failed"].as_u64().unwrap_or(0);
    }
    let dry = answers
        .first()
        .is_some_and(|a| a["dry_run"].as_bool() == Some(true));
    let verb = if dry { "would move" } else { "moved" };
    println!("{verb} {moved}, pending {pending}, skipped {skipped}, failed {failed}");
    if answers
        .last()
        .is_some_and(|a| a["more"].as_bool() == Some(true))
    {
        println!("more records wait: run gateway reshare again");
    }
}

/// `gateway start` arguments. Every flag may also be set by its environment variable (shown in
/// `--help`), as container deployments expect.
#[derive(Debug, Args)]
pub struct GatewayStartArgs {
    /// Where records and wrapped keys are stored.
    #[arg(long, env = "MEDLEDGER_GATEWAY_DATA")]
    pub data: PathBuf,
    /// Where the sealed record bytes go instead of the data dir: an S3-compatible bucket,
    /// s3://BUCKET[/PREFIX][?endpoint=URL&region=REGION] (the bucket must exist). Metadata,
    /// wrapped keys and shares stay in --data. Credentials come from the AWS environment
    /// variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) or a role, never
    /// from this URL.
    #[arg(long, env = "MEDLEDGER_GATEWAY_STORE", value_parser = StoreUrl::parse)]
    pub store: Option<StoreUrl>,
    /// The member this gateway serves.
    #[arg(long, env = "MEDLEDGER_GATEWAY_MEMBER")]
    pub member: String,
    /// The key that signs anchors and erasures: a key file (keyring JSON) or a keyring name.
    #[arg(long = "admin-key", env = "MEDLEDGER_GATEWAY_ADMIN_KEY")]
    pub admin_key: String,
    /// The KEK file (32 raw bytes, 0600; created if missing).
    #[arg(long, env = "MEDLEDGER_GATEWAY_KEK")]
    pub kek: PathBuf,
    /// The member's X25519 box key file (created if missing).
    #[arg(long = "box-key", env = "MEDLEDGER_GATEWAY_BOX_KEY")]
    pub box_key: PathBuf,
    /// Node RPC URL (repeat; tried in order; in the variable, comma-separated).
    #[arg(
        long = "node",
        required = true,
        env = "MEDLEDGER_GATEWAY_NODES",
        value_delimiter = ','
    )]
    pub nodes: Vec<String>,
    /// The chain's genesis.json (the trust root of proven reads).
    #[arg(long, env = "MEDLEDGER_GATEWAY_GENESIS")]
    pub genesis: PathBuf,
    /// Address to listen on.
    #[arg(
        long,
        default_value = "127.0.0.1:26659",
        env = "MEDLEDGER_GATEWAY_LISTEN"
    )]
    pub listen: String,
    /// The public base URL clients sign (default http://<listen>); register this one.
    #[arg(long = "public-url", env = "MEDLEDGER_GATEWAY_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Requests a second one source address may send (burst: twice as many).
    #[arg(long = "rate-per-ip", default_value_t = medledger_gateway::RateLimits::default().per_ip, env = "MEDLEDGER_GATEWAY_RATE_PER_IP")]
    pub rate_per_ip: u32,
    /// Requests a second one authenticated key may send (burst: twice as many).
    #[arg(long = "rate-per-key", default_value_t = medledger_gateway::RateLimits::default().per_key, env = "MEDLEDGER_GATEWAY_RATE_PER_KEY")]
    pub rate_per_key: u32,
    /// Txs a second the gateway relays for one signer (`/rpc/broadcast_tx_*`).
    #[arg(long = "broadcast-per-signer", default_value_t = medledger_gateway::RateLimits::default().broadcast_per_signer, env = "MEDLEDGER_GATEWAY_BROADCAST_PER_SIGNER")]
    pub broadcast_per_signer: u32,
}

/// Sends `SetGateway` for the member whose admin key is `admin`: `endpoint` and the public half
/// of the box key in `box_key_file`.
pub async fn register(
    client: &Client,
    admin: &SigningKey,
    endpoint: &str,
    box_key_file: &Path,
) -> anyhow::Result<medledger_client::TxReport> {
    let box_key = keyfiles::load_box_key(box_key_file)?;
    let chain_id = client.chain_id().await?;
    let (owner, _) = client
        .query_raw(&keys::key_owner(&admin.verifying_key().to_bytes()), 0)
        .await?;
    let member = match owner
        .map(|b| pb::KeyOwner::decode(b.as_slice()))
        .transpose()?
        .and_then(|o| o.owner)
    {
        Some(Owner::MemberId(id)) => id,
        _ => anyhow::bail!("--from must be a member's admin key"),
    };
    let public = box_key.public_bytes();
    let signature = boxkey::sign(admin, &chain_id, &member, &public);
    client
        .submit(
            admin,
            Msg::SetGateway(pb::SetGateway {
                endpoint: endpoint.to_string(),
                box_public_key: public.to_vec(),
                box_key_signature: signature.to_vec(),
            }),
        )
        .await
}

/// A signing key given as a key file (the keyring's JSON format) or a keyring name.
pub fn signing_key(keyring: &Keyring, file_or_name: &str) -> anyhow::Result<SigningKey> {
    let path = Path::new(file_or_name);
    if path.is_file() {
        let file: KeyFile = serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        )
        .with_context(|| format!("{}: not a key file", path.display()))?;
        let seed: [u8; 32] = hex::decode(&file.secret_key)
            .ok()
            .and_then(|s| s.try_into().ok())
            .with_context(|| format!("{}: secret_key is not 64 hex characters", path.display()))?;
        return Ok(SigningKey::from_bytes(&seed));
    }
    keyring.get(file_or_name)
}

impl GatewayStartArgs {
    /// Runs the gateway until SIGTERM or Ctrl-C.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let signing_key = signing_key(&ctx.keyring, &self.admin_key)?;
        let (_, created) = keyfiles::load_or_create_kek(&self.kek)?;
        if created {
            tracing::info!(file = %self.kek.display(), "created the KEK");
        }
        let (box_key, created) = keyfiles::load_or_create_box_key(&self.box_key)?;
        if created {
            tracing::info!(file = %self.box_key.display(), "created the box key");
        }
        let genesis_json = std::fs::read(&self.genesis)
            .with_context(|| format!("reading {}", self.genesis.display()))?;
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .with_context(|| format!("listening on {}", self.listen))?;
        let public_url = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        let sealed_in = self.store.clone().unwrap_or_default();
        let gateway = Gateway::with_store(
            Config {
                data_dir: self.data.clone(),
                member_id: self.member.clone(),
                signing_key,
                kek_file: self.kek.clone(),
                box_key,
                node_urls: self.nodes.clone(),
                genesis_json,
                public_url: public_url.clone(),
                nonce_cache_capacity: 100_000,
                rate_limits: medledger_gateway::RateLimits {
                    per_ip: self.rate_per_ip,
                    per_key: self.rate_per_key,
                    broadcast_per_signer: self.broadcast_per_signer,
                },
            },
            &sealed_in,
        )?;
        // A wrong bucket, endpoint or credentials stop the start here (exit status 2).
        gateway
            .check_store()
            .await
            .with_context(|| format!("the record store ({sealed_in}) does not answer"))?;
        reconcile(&gateway).await;
        tracing::info!(
            member = %self.member,
            listen = %self.listen,
            public_url = %public_url,
            store = %sealed_in,
            "gateway serving"
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = gateway.serve(listener) => r.context("serving HTTP")?,
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; gateway stops"),
            _ = term.recv() => tracing::info!("SIGTERM; gateway stops"),
        }
        Ok(Exit::Ok)
    }
}

/// Re-anchors stored records whose anchor is missing, and logs what it did. A failure (e.g. the
/// node is not reachable yet) is logged; the gateway serves anyway.
async fn reconcile(gateway: &Gateway) {
    let pending = match gateway.pending_anchors().await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("reconcile: could not list pending anchors: {e:#}");
            return;
        }
    };
    let lagging = pending.iter().filter(|p| p.anchored_on_chain).count();
    let missing: Vec<&str> = pending
        .iter()
        .filter(|p| !p.anchored_on_chain)
        .map(|p| p.record_id.as_str())
        .collect();
    if pending.is_empty() {
        tracing::info!("reconcile: every stored record is anchored");
        return;
    }
    if lagging > 0 {
        tracing::info!("reconcile: {lagging} record(s) were anchored on chain; marked anchored");
    }
    if missing.is_empty() {
        return;
    }
    match gateway.reconcile().await {
        Ok(anchored) => {
            let removed: Vec<&&str> = missing
                .iter()
                .filter(|id| !anchored.iter().any(|a| a == **id))
                .collect();
            tracing::info!(
                "reconcile: re-anchored {} record(s) [{}]; removed {} refused by the ledger [{}]",
                anchored.len(),
                anchored.join(", "),
                removed.len(),
                removed
                    .iter()
                    .map(|r| **r)
                    .collect::<Vec<&str>>()
                    .join(", ")
            );
        }
        Err(e) => tracing::warn!("reconcile: re-anchoring failed: {e:#}"),
    }
}

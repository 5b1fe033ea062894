//! `medledger vault`: store, read and erase records through the members' record-vault gateways
//! (medledger-gateway). Where a gateway is comes from the ledger: `gateway/{member}` names its
//! endpoint, the record's anchor names its custodian.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use base64ct::{Base64, Encoding};
use clap::{Args, Subcommand};
use medledger_client::Client;
use medledger_gateway::client::{self as gw, ClientError, GatewayClient};
use medledger_tx::keys;
use medledger_tx::pb::{self, Purpose};
use prost::Message;
use serde::Serialize;

use super::query::RecordsQuery;
use super::read::Reader;
use super::rules::ProofCtx;
use super::tx::{proof_ctx, ProofSubject, PurposeArg};
use super::{print_json, Ctx, Exit, NodeArgs, Output};

/// What every `vault` command takes.
#[derive(Debug, Args)]
pub struct VaultCommon {
    #[command(flatten)]
    node: NodeArgs,
    /// Name of the signing key (a member's admin or practitioner; for erase also the patient).
    #[arg(long)]
    from: String,
}

impl VaultCommon {
    /// The signing key and a client of the node.
    fn signer(&self, ctx: &Ctx) -> anyhow::Result<(ed25519_dalek::SigningKey, Client)> {
        Ok((ctx.keyring.get(&self.from)?, Client::new(&self.node.node)?))
    }
}

/// `vault` subcommands.
#[derive(Debug, Subcommand)]
pub enum VaultCmd {
    /// Store a record at the signer's member's gateway, which seals and anchors it.
    Put(VaultPutArgs),
    /// Read a record from its custodian's gateway: a LogAccess tx is committed first, then the
    /// data key is released to the reader's member box key.
    Get(VaultGetArgs),
    /// Erase a record (its custodian or the patient): the custodian's gateway destroys the data
    /// key and anchors the erasure.
    Erase(VaultEraseArgs),
    /// Every record anchored for a patient at any member, proven complete: id, type, custodian,
    /// anchored height and erasure (the same as `query --prove records PATIENT`).
    List(VaultListArgs),
    /// Read every record of a patient that the signer's consent covers, from whichever of each
    /// record's holders are up, into a directory; each refusal is reported with its reason.
    Pull(VaultPullArgs),
}

impl VaultCmd {
    /// Runs `vault …`: [`Exit::Refused`] when the gateway or the ledger refuses.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            VaultCmd::Put(a) => a.run(ctx).await,
            VaultCmd::Get(a) => a.run(ctx).await,
            VaultCmd::Erase(a) => a.run(ctx).await,
            VaultCmd::List(a) => a.run(ctx).await,
            VaultCmd::Pull(a) => a.run(ctx).await,
        }
    }
}

/// `vault put`.
#[derive(Debug, Args)]
pub struct VaultPutArgs {
    /// Node and signer.
    #[command(flatten)]
    common: VaultCommon,
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// FHIR resource type, e.g. Observation (the anchor's data class).
    #[arg(long = "type")]
    resource_type: String,
    /// The record (e.g. a FHIR JSON resource).
    #[arg(long)]
    file: PathBuf,
    /// Record id (default: a random `rec-…`).
    #[arg(long)]
    record: Option<String>,
}

impl VaultPutArgs {
    /// Stores the record at the signer's member's gateway and waits for its anchor.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let out = ctx.out;
        let (key, client) = self.common.signer(ctx)?;
        let member = proof_ctx(&client, &key, ProofSubject::Member)
            .await?
            .subject;
        let endpoint = gateway_of(&client, &member).await?;
        let content = std::fs::read(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        let record_id = self.record.unwrap_or_else(random_record_id);
        let a = match GatewayClient::new(&endpoint, key)
            .put(&record_id, &self.patient, &self.resource_type, &content)
            .await
        {
            Ok(a) => a,
            Err(e) => return refused(e, out),
        };
        wait_for_height(&client, a.anchor_height).await?;
        if out == Output::Json {
            print_json(&a)?;
        } else {
            println!(
                "OK: {} stored at {member}'s gateway ({endpoint}), anchored at height {}",
                a.record_id, a.anchor_height
            );
            println!(
                "  content_hash={} key_id={} size={}",
                a.content_hash, a.key_id, a.size
            );
        }
        Ok(Exit::Ok)
    }
}

/// `vault get`.
#[derive(Debug, Args)]
pub struct VaultGetArgs {
    /// The node.
    #[command(flatten)]
    node: NodeArgs,
    /// Name of the signing key (a member's admin or practitioner).
    #[arg(
        long,
        required_unless_present = "patient_key",
        conflicts_with = "patient_key"
    )]
    from: Option<String>,
    /// The patient's own read: the patient's key file (the keyring's JSON, e.g.
    /// <home>/keys/NAME.json). The read is logged as the patient's (purpose PATRQT) and each
    /// holder seals its share to the patient's box key, derived from this key
    /// (`tx patient box-key` registers it).
    #[arg(long = "patient-key", value_name = "KEYFILE")]
    patient_key: Option<PathBuf>,
    /// Record id (or give it as `--record`).
    #[arg(value_name = "RECORD", required_unless_present = "record_flag")]
    record_pos: Option<String>,
    /// Record id.
    #[arg(long = "record", value_name = "RECORD", conflicts_with = "record_pos")]
    record_flag: Option<String>,
    /// Purpose of use (a member's read; a patient's own read is PATRQT).
    #[arg(long, value_enum, required_unless_present = "patient_key")]
    purpose: Option<PurposeArg>,
    /// Write the record here (default: stdout).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The reader member's box key file (default: <home>/localnet/<member>/gateway/box.key).
    #[arg(long = "box-key")]
    box_key: Option<PathBuf>,
}

/// `vault get`'s JSON answer.
#[derive(Serialize)]
struct GetAnswer {
    record_id: String,
    patient_id: String,
    resource_type: String,
    custodian: String,
    gateway: String,
    reader_member: String,
    access_height: u64,
    access_index: u64,
    size: usize,
    /// A threshold record: the holders whose key shares opened it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    holders_used: Vec<String>,
    /// Where the record was written, or (without --out) the record itself, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    out: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_base64: Option<String>,
}

impl VaultGetArgs {
    /// Commits the access, has the custodian's gateway release the record to the reader
    /// member's box key (a patient's own read: the patient's box key), opens it and writes it
    /// out.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let out = ctx.out;
        let client = Client::new(&self.node.node)?;
        let record = self
            .record_pos
            .clone()
            .or_else(|| self.record_flag.clone())
            .context("name the record")?;
        let (key, chain_id, box_key, purpose) = match (&self.patient_key, &self.from) {
            (Some(file), _) => {
                let key = medledger_client::keyring::load_key_file(file)?;
                let (chain_id, box_key) = patient_reader_keys(&client, &key).await?;
                (key, chain_id, box_key, Purpose::Patrqt)
            }
            (None, Some(from)) => {
                let key = ctx.keyring.get(from)?;
                let (pctx, box_key) =
                    reader_keys(ctx, &client, &key, self.box_key.as_ref()).await?;
                let purpose = self.purpose.context("name the --purpose of the read")?;
                (key, pctx.chain_id, box_key, Purpose::from(purpose))
            }
            (None, None) => anyhow::bail!("give --from KEY or --patient-key KEYFILE"),
        };
        let Some(anchor) = anchored(&client, &record, out).await? else {
            return Ok(Exit::Refused);
        };
        let fetched = match fetch(&client, &key, &chain_id, &box_key, &anchor, purpose).await? {
            Ok(f) => f,
            Err(e) => return refused(e, out),
        };
        let Fetched {
            answer,
            plain,
            endpoint,
            holders_used,
        } = fetched;
        // Read your own writes: the gateway committed the access through its own node;
        // wait until ours has that block too, so that a `verify access` right after
        // sees it.
        wait_for_height(&client, answer.access_height).await?;
        let report = GetAnswer {
            record_id: answer.record_id,
            patient_id: answer.patient_id,
            resource_type: answer.resource_type,
            custodian: anchor.custodian,
            gateway: endpoint,
            reader_member: answer.reader_member,
            access_height: answer.access_height,
            access_index: answer.access_index,
            size: plain.len(),
            holders_used,
            out: None,
            content_base64: None,
        };
        self.write_out(report, &plain, out)?;
        Ok(Exit::Ok)
    }

    /// Writes the record to `--out` or stdout, and the report: JSON (with the record, base64,
    /// when it has no file), or a line (on stderr when the record itself goes to stdout).
    fn write_out(&self, mut report: GetAnswer, plain: &[u8], out: Output) -> anyhow::Result<()> {
        match &self.out {
            Some(f) => {
                std::fs::write(f, plain).with_context(|| format!("writing {}", f.display()))?;
                report.out = Some(f.display().to_string());
            }
            None if out == Output::Json => {
                report.content_base64 = Some(Base64::encode_string(plain));
            }
            None => {}
        }
        if out == Output::Json {
            return print_json(&report);
        }
        let line = format!(
            "OK: {} ({} of {}, {} bytes) from {}'s gateway; access logged at height {} (event {})",
            report.record_id,
            report.resource_type,
            report.patient_id,
            report.size,
            report.custodian,
            report.access_height,
            report.access_index
        );
        match &self.out {
            Some(f) => println!("{line}\n  written to {}", f.display()),
            None => {
                // The record itself goes to stdout, byte for byte; the report to stderr.
                eprintln!("{line}");
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(plain)?;
                stdout.flush()?;
            }
        }
        Ok(())
    }
}

/// `vault erase`.
#[derive(Debug, Args)]
pub struct VaultEraseArgs {
    /// Node and signer.
    #[command(flatten)]
    common: VaultCommon,
    /// Record id.
    #[arg(long)]
    record: String,
    /// Why. Only its SHA-256 is sent; keep the text in your records.
    #[arg(long)]
    reason: Option<String>,
}

impl VaultEraseArgs {
    /// Has the custodian's gateway destroy the record's data key and anchor the erasure.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let out = ctx.out;
        let (key, client) = self.common.signer(ctx)?;
        let Some(anchor) = anchored(&client, &self.record, out).await? else {
            return Ok(Exit::Refused);
        };
        let endpoint = gateway_of(&client, &anchor.custodian).await?;
        let a = match GatewayClient::new(&endpoint, key)
            .erase(&self.record, self.reason.as_deref().map(gw::reason_hash))
            .await
        {
            Ok(a) => a,
            Err(e) => return refused(e, out),
        };
        wait_for_height(&client, a.erasure_height).await?;
        if out == Output::Json {
            print_json(&a)?;
        } else {
            println!(
                "OK: {} erased at {}'s gateway; erasure at height {}",
                a.record_id, anchor.custodian, a.erasure_height
            );
            if let Some(r) = &a.receipt {
                println!(
                    "  destruction receipt: tx {} signed by {} (key {} destroyed); keep it: -o json prints the signed tx",
                    r.tx_hash, r.signer, r.key_id
                );
            }
        }
        Ok(Exit::Ok)
    }
}

/// `vault list`.
#[derive(Debug, Args)]
pub struct VaultListArgs {
    /// The node to read from.
    #[command(flatten)]
    node: NodeArgs,
    /// Patient id.
    #[arg(long)]
    patient: String,
}

impl VaultListArgs {
    /// `query --prove records PATIENT`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let mut r = Reader::new(Client::new(&self.node.node)?, 0, true);
        RecordsQuery {
            patient: self.patient,
        }
        .run(&mut r, ctx.out)
        .await?;
        Ok(Exit::Ok)
    }
}

/// `vault pull`.
#[derive(Debug, Args)]
pub struct VaultPullArgs {
    /// Node and signer.
    #[command(flatten)]
    common: VaultCommon,
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// Purpose of use.
    #[arg(long, value_enum)]
    purpose: PurposeArg,
    /// Where to write the records (one file per record, named by its id; created if missing).
    #[arg(long = "out-dir")]
    out_dir: PathBuf,
    /// The reader member's box key file (default: <home>/localnet/<member>/gateway/box.key).
    #[arg(long = "box-key")]
    box_key: Option<PathBuf>,
}

/// One record of a `vault pull`.
#[derive(Serialize)]
struct Pulled {
    record_id: String,
    resource_type: String,
    custodian: String,
    /// `read`, `refused` or `erased`.
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_index: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    holders_used: Vec<String>,
    /// Why it was not read: the gateway's or the ledger's words, with the code when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl VaultPullArgs {
    /// Lists the patient's records with proofs (the list is proven complete), then reads each
    /// one that is not erased as `vault get` does. Exit 0 when every record was read or is
    /// erased; [`Exit::Refused`] when any was refused (the report says which and why).
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let out = ctx.out;
        let (key, client) = self.common.signer(ctx)?;
        let mut reader = Reader::new(Client::new(&self.common.node.node)?, 0, true);
        let (_, ids) = reader
            .read_ids(
                &keys::List::PatientRecords(&self.patient),
                medledger_tx::limits::MAX_HISTORY_READ,
            )
            .await?;
        let (pctx, box_key) = reader_keys(ctx, &client, &key, self.box_key.as_ref()).await?;
        let purpose = Purpose::from(self.purpose);
        std::fs::create_dir_all(&self.out_dir)
            .with_context(|| format!("creating {}", self.out_dir.display()))?;
        let mut pulled = Vec::new();
        let mut last_height = 0;
        for id in ids {
            let anchor = reader
                .read_msg::<pb::RecordAnchor>(&keys::record(&id))
                .await?
                .value
                .with_context(|| format!("record/{id} is listed but absent"))?;
            let mut p = Pulled {
                record_id: id.clone(),
                resource_type: anchor.resource_type.clone(),
                custodian: anchor.custodian.clone(),
                outcome: "erased",
                file: None,
                size: None,
                access_index: None,
                holders_used: Vec::new(),
                reason: None,
            };
            if anchor.erased_height == 0 {
                match fetch(&client, &key, &pctx.chain_id, &box_key, &anchor, purpose).await? {
                    Ok(f) => {
                        let file = self.write_record(&id, &f.plain)?;
                        last_height = last_height.max(f.answer.access_height);
                        p.outcome = "read";
                        p.file = Some(file.display().to_string());
                        p.size = Some(f.plain.len());
                        p.access_index = Some(f.answer.access_index);
                        p.holders_used = f.holders_used;
                    }
                    Err(e) => {
                        p.outcome = "refused";
                        p.reason = Some(refusal_reason(&e));
                    }
                }
            }
            pulled.push(p);
        }
        wait_for_height(&client, last_height).await?;
        let count = |o: &str| pulled.iter().filter(|p| p.outcome == o).count();
        let (read, refused_n, erased) = (count("read"), count("refused"), count("erased"));
        if out == Output::Json {
            print_json(&serde_json::json!({
                "patient_id": self.patient,
                "read": read,
                "refused": refused_n,
                "erased": erased,
                "records": pulled,
            }))?;
        } else {
            for p in &pulled {
                println!("{}", p.line());
            }
            println!(
                "{read} read, {refused_n} refused, {erased} erased, of {} records of {} (the list is proven complete)",
                pulled.len(),
                self.patient
            );
        }
        Ok(if refused_n == 0 {
            Exit::Ok
        } else {
            Exit::Refused
        })
    }

    /// Writes the record `id` into `--out-dir`, in a file named by its id.
    fn write_record(&self, id: &str, plain: &[u8]) -> anyhow::Result<PathBuf> {
        // Record ids are the ledger's (`[A-Za-z0-9._:-]`, checked when anchored); hex keeps any
        // other name from leaving the directory.
        let plain_name = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let safe = if plain_name {
            id.to_string()
        } else {
            hex::encode(id.as_bytes())
        };
        let file = self.out_dir.join(safe);
        std::fs::write(&file, plain).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }
}

impl Pulled {
    /// The record's line of the text report.
    fn line(&self) -> String {
        match self.outcome {
            "read" => format!(
                "read     {} ({}) from {}: {}",
                self.record_id,
                self.resource_type,
                if self.holders_used.is_empty() {
                    self.custodian.clone()
                } else {
                    self.holders_used.join(" + ")
                },
                self.file.as_deref().unwrap_or("")
            ),
            "refused" => format!(
                "REFUSED  {} ({}) at {}: {}",
                self.record_id,
                self.resource_type,
                self.custodian,
                self.reason.as_deref().unwrap_or("")
            ),
            _ => format!("erased   {} ({})", self.record_id, self.resource_type),
        }
    }
}

/// A gateway's refusal in one line: the HTTP status, the ledger's code when it has one, and
/// the words.
fn refusal_reason(e: &ClientError) -> String {
    match e {
        ClientError::Status { status, body } => match (&body.code_name, body.code) {
            (Some(n), Some(c)) => format!("HTTP {status}: {n} ({c}): {}", body.error),
            _ => format!("HTTP {status}: {}", body.error),
        },
        other => other.to_string(),
    }
}

/// A record read through the vault: the gateway's answer, the opened record, the gateway that
/// answered first and (threshold custody) the holders whose shares opened it.
struct Fetched {
    answer: medledger_gateway::api::GetRecordAnswer,
    plain: Vec<u8>,
    endpoint: String,
    holders_used: Vec<String>,
}

/// What a patient needs to read their own records: the chain id, and the box key derived from
/// the patient's signing seed (the one `tx patient box-key` registers).
async fn patient_reader_keys(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
) -> anyhow::Result<(String, medledger_vault::share::MemberBoxKey)> {
    let chain_id = client.chain_id().await?;
    let box_key = medledger_vault::share::patient_box_key(&key.to_bytes())
        .map_err(|e| anyhow::anyhow!("deriving the patient's box key: {e}"))?;
    Ok((chain_id, box_key))
}

/// What a reader needs to read records: the chain and member of the signing key (from the
/// node), and the member's box key: `--box-key`, else the localnet's file for that member.
async fn reader_keys(
    ctx: &Ctx,
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    file: Option<&PathBuf>,
) -> anyhow::Result<(ProofCtx, medledger_vault::share::MemberBoxKey)> {
    let pctx = proof_ctx(client, key, ProofSubject::Member).await?;
    let member = &pctx.subject;
    let file = file.cloned().unwrap_or_else(|| {
        ctx.home
            .join("localnet")
            .join(member)
            .join("gateway")
            .join("box.key")
    });
    let box_key = medledger_gateway::keyfiles::load_box_key(&file)
        .with_context(|| format!("{member}'s box key (pass --box-key FILE)"))?;
    Ok((pctx, box_key))
}

/// Reads the record `anchor` names for `purpose`: commits the signer's access (unordered, so
/// reads from many terminals never collide and a gateway may resend it), then has the record's
/// custodian release it, or (threshold custody) `threshold` of its holders release their shares,
/// whichever are up. The inner error is the gateway's refusal.
async fn fetch(
    client: &Client,
    key: &ed25519_dalek::SigningKey,
    chain_id: &str,
    box_key: &medledger_vault::share::MemberBoxKey,
    anchor: &pb::RecordAnchor,
    purpose: Purpose,
) -> anyhow::Result<Result<Fetched, ClientError>> {
    let record = &anchor.record_id;
    let tx = gw::unordered_log_access_tx(
        key,
        chain_id,
        &anchor.patient_id,
        record,
        &anchor.resource_type,
        purpose,
    )?;
    if anchor.holders.is_empty() {
        // Held whole by its custodian.
        let endpoint = gateway_of(client, &anchor.custodian).await?;
        let answer = match GatewayClient::new(&endpoint, key.clone())
            .get(record, purpose, &tx)
            .await
        {
            Ok(a) => a,
            Err(e) => return Ok(Err(e)),
        };
        let plain = gw::open_released(&answer, box_key, Some(&anchor.content_hash))
            .map_err(|e| anyhow::anyhow!("opening the released record: {e}"))?;
        return Ok(Ok(Fetched {
            answer,
            plain,
            endpoint,
            holders_used: Vec::new(),
        }));
    }
    // Threshold custody: `threshold` shares from the holders, whichever are up.
    let mut holders = Vec::new();
    for m in &anchor.holders {
        match gateway_of(client, m).await {
            Ok(endpoint) => holders.push(gw::HolderEndpoint {
                member: m.clone(),
                endpoint,
            }),
            Err(e) => tracing::warn!("holder {m}: {e:#}"),
        }
    }
    let read =
        match gw::read_from_holders(key, &holders, anchor, purpose, &tx, box_key, chain_id).await {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
    for r in &read.refusals {
        tracing::warn!("holder {r}");
    }
    let endpoint = holders
        .iter()
        .find(|h| read.used.first() == Some(&h.member))
        .map(|h| h.endpoint.clone())
        .unwrap_or_default();
    Ok(Ok(Fetched {
        answer: read.answer,
        plain: read.plaintext,
        endpoint,
        holders_used: read.used,
    }))
}

/// The record's anchor, proven against the committed app hash: its holders, threshold and share
/// commitments decide whose shares a read combines and which shares are genuine, so a node that
/// lies about them must fail the proof rather than steer the read.
async fn anchor_of(client: &Client, record_id: &str) -> anyhow::Result<Option<pb::RecordAnchor>> {
    let value = client
        .query_proven(&keys::record(record_id), 0)
        .await?
        .value;
    Ok(value
        .map(|b| pb::RecordAnchor::decode(b.as_slice()))
        .transpose()?)
}

/// The proven anchor of `record`; `None` when the ledger has none, which is printed as a
/// refusal.
async fn anchored(
    client: &Client,
    record: &str,
    out: Output,
) -> anyhow::Result<Option<pb::RecordAnchor>> {
    let anchor = anchor_of(client, record).await?;
    if anchor.is_none() {
        refused_msg(&format!("no record {record:?} on the ledger"), out)?;
    }
    Ok(anchor)
}

/// The endpoint `member` registered on the ledger (SetGateway).
async fn gateway_of(client: &Client, member: &str) -> anyhow::Result<String> {
    let (value, _) = client.query_raw(&keys::gateway(member), 0).await?;
    let gateway = value
        .map(|b| pb::Gateway::decode(b.as_slice()))
        .transpose()?
        .with_context(|| {
            format!("{member} registered no gateway on the ledger (`medledger gateway register`)")
        })?;
    Ok(gateway.endpoint)
}

fn random_record_id() -> String {
    let bytes: [u8; 8] = rand_v010::random();
    format!("rec-{}", hex::encode(bytes))
}

/// A refusal by the gateway (an HTTP 4xx answer, which carries the ledger's code when the ledger
/// refused) is [`Exit::Refused`]; anything else is an error.
fn refused(e: ClientError, out: Output) -> anyhow::Result<Exit> {
    match e {
        ClientError::Status { status, body } if (400..500).contains(&status) => {
            if out == Output::Json {
                print_json(&serde_json::json!({
                    "refused": true,
                    "status": status,
                    "error": body.error,
                    "code": body.code,
                    "code_name": body.code_name,
                    "erased_height": body.erased_height,
                }))?;
            } else {
                let code = match (&body.code_name, body.code) {
                    (Some(n), Some(c)) => format!(" {n} ({c}):"),
                    _ => String::new(),
                };
                println!(
                    "REFUSED by the gateway (HTTP {status}):{code} {}",
                    body.error
                );
            }
            Ok(Exit::Refused)
        }
        other => Err(anyhow::anyhow!("gateway: {other}")),
    }
}

fn refused_msg(msg: &str, out: Output) -> anyhow::Result<Exit> {
    if out == Output::Json {
        print_json(&serde_json::json!({ "refused": true, "error": msg }))?;
    } else {
        println!("REFUSED: {msg}");
    }
    Ok(Exit::Refused)
}

/// Waits (up to 20 s) until `client`'s node has committed `height`.
async fn wait_for_height(client: &Client, height: u64) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while client.latest_height().await? < height {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the node did not reach height {height} within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

//! The command line: `medledger start | keys | tx | query | verify | localnet | bench`.

mod claims;

mod governance;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use medledger_tx::{ids, keys};
use prost::Message;
use serde::Serialize;

mod rules;

use medledger_client::Keyring;
use medledger_client::{Client, ProvenAnswer, TxReport};
use medledger_devnet::localnet::{self, AppKind, Localnet, Spec};
use medledger_devnet::ThrowawayNet;
use medledger_loadgen::{self as loadgen, Broadcast, Comparison, LoadConfig, LoadReport, Target};

/// medledger: a consortium ledger of consent, access and claims for health data.
#[derive(Debug, Parser)]
#[command(name = "medledger", version, about)]
pub struct Cli {
    /// Home directory: keys in <home>/keys, the localnet in <home>/localnet.
    #[arg(long, global = true, env = "MEDLEDGER_HOME", default_value_os_t = default_home())]
    pub home: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people.
    Text,
    /// For programs.
    Json,
}

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".medledger")
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ABCI application (CometBFT connects to it).
    Start(StartArgs),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Sign and submit a transaction, and wait for its block.
    Tx(TxArgs),
    /// Read the ledger's state, optionally with verified proofs.
    Query(QueryArgs),
    /// Verify an answer end to end: proofs against a header signed by the consortium.
    Verify(VerifyArgs),
    /// Determinism check: replay the chain's blocks into a fresh ledger and compare app hashes.
    Replay {
        #[command(flatten)]
        /// The node to read blocks from.
        node: NodeArgs,
        /// The chain's genesis.json (default: the localnet's).
        #[arg(long)]
        genesis: Option<PathBuf>,
        /// Last height to replay (0 = the latest the node can vouch for).
        #[arg(long, default_value_t = 0)]
        to: u64,
    },
    /// Guardians' part in a patient's key recovery.
    #[command(subcommand)]
    Guardian(GuardianCmd),
    /// Run a 4-validator consortium on this machine.
    #[command(subcommand)]
    Localnet(LocalnetCmd),
    /// Load benchmarks: committed tx/s, submit→commit latency, CPU and memory (benches/README.md).
    #[command(subcommand)]
    Bench(BenchCmd),
}

/// `start` arguments.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Directory of the node's state database.
    #[arg(long, env = "MEDLEDGER_DATA")]
    pub data: PathBuf,
    /// ABCI listen address, `host:port` or `unix:///path/app.sock` (what localnets use: no
    /// Nagle delays); CometBFT's `proxy_app` points here.
    #[arg(long, env = "MEDLEDGER_LISTEN", default_value = "127.0.0.1:26658")]
    pub listen: String,
    /// This validator's BLS key file: sign checkpoint certificates in vote extensions.
    #[arg(long, env = "MEDLEDGER_BLS_KEY")]
    pub bls_key: Option<PathBuf>,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a new random Ed25519 key.
    Add {
        /// Name of the key.
        name: String,
    },
    /// List keys.
    List,
    /// Show a key's public key and the patient id it would register as.
    Show {
        /// Name of the key.
        name: String,
    },
    /// Prove that you hold a key, for someone else's tx that hands rights to it (a member
    /// enrolling you as a patient, registering you as a practitioner; your own rotation).
    /// Prints the public key and the proof (hex) to give them; the key never leaves here.
    Prove {
        /// Name of the key.
        name: String,
        /// Who the key is handed to: the member id (enrol-patient, register-practitioner) or
        /// the patient id (rotate-patient-key).
        #[arg(long = "for")]
        subject: String,
        /// What for.
        #[arg(long, value_parser = [
            medledger_tx::keyproof::ENROL_PATIENT,
            medledger_tx::keyproof::REGISTER_PRACTITIONER,
            medledger_tx::keyproof::ROTATE_PATIENT_KEY,
        ])]
        purpose: String,
        /// The chain id (default: read from the node).
        #[arg(long)]
        chain_id: Option<String>,
        /// The node to read the chain id from.
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Node selection shared by `tx` and `query`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// CometBFT RPC of the node to talk to.
    #[arg(long, env = "MEDLEDGER_NODE", default_value = "http://127.0.0.1:26657")]
    pub node: String,
}

/// `tx` arguments.
#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Name of the signing key.
    #[arg(long)]
    from: String,
    #[command(subcommand)]
    msg: TxCmd,
}

/// Purposes of use (HL7 PurposeOfUse).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum PurposeArg {
    /// Treatment.
    Treat,
    /// Emergency treatment.
    Etreat,
    /// Payment.
    Hpaymt,
    /// Operations.
    Hoperat,
    /// Research.
    Hresch,
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Purpose {
        match p {
            PurposeArg::Treat => Purpose::Treat,
            PurposeArg::Etreat => Purpose::Etreat,
            PurposeArg::Hpaymt => Purpose::Hpaymt,
            PurposeArg::Hoperat => Purpose::Hoperat,
            PurposeArg::Hresch => Purpose::Hresch,
        }
    }
}

/// Transactions.
#[derive(Debug, Subcommand)]
pub enum TxCmd {
    /// Patients.
    #[command(subcommand)]
    Patient(PatientTx),
    /// Consents (signed by the patient).
    #[command(subcommand)]
    Consent(ConsentTx),
    /// Access events (signed by a member or its practitioner).
    #[command(subcommand)]
    Access(AccessTx),
    /// Practitioners (signed by their member's admin).
    #[command(subcommand)]
    Practitioner(rules::PractitionerTx),
    /// Record anchors and erasure.
    #[command(subcommand)]
    Record(rules::RecordTx),
    /// Coverage policies and claims (signed by insurers and providers).
    #[command(subcommand)]
    Claim(claims::ClaimTx),
    /// Patients' enrolments in insurers' policies (signed by the insurer's admin key).
    #[command(subcommand)]
    Coverage(claims::CoverageTx),
    /// Consortium governance: proposals and votes (signed by a member's admin key).
    #[command(subcommand)]
    Gov(governance::GovTx),
}

/// Patient transactions.
#[derive(Debug, Subcommand)]
pub enum PatientTx {
    /// Enrol a patient (signed by the member that identified them, --from its admin or one of
    /// its practitioners). The patient's key proves possession.
    Register {
        /// The patient's key: a keyring name (it signs its proof of possession here) or 64 hex
        /// characters with --proof.
        #[arg(long = "patient-key")]
        patient_key: String,
        /// The key's proof (hex) from `medledger keys prove KEY --for MEMBER --purpose enrol-patient`.
        #[arg(long)]
        proof: Option<String>,
    },
    /// Name the guardians (m of n) who can recover this patient's key.
    Guardians {
        /// Guardian keys: keyring names or hex (repeat).
        #[arg(long = "guardian")]
        guardians: Vec<String>,
        /// How many guardians must approve a recovery.
        #[arg(long)]
        threshold: u32,
    },
    /// Hand over to a new key; the signing key can sign nothing afterwards.
    Rotate {
        /// The new key: keyring name (it signs its proof of possession here) or hex with --proof.
        #[arg(long)]
        new_key: String,
        /// The new key's proof (hex), when it is not in this keyring.
        #[arg(long)]
        proof: Option<String>,
    },
    /// Recover a lost key: sign with the new key (--from) and attach guardians' approvals
    /// (from `medledger guardian approve`).
    Recover {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Approvals `GUARDIAN_KEY_HEX:SIGNATURE_HEX` (repeat).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
}

/// Consent transactions.
#[derive(Debug, Subcommand)]
pub enum ConsentTx {
    /// Grant a member access.
    Grant {
        /// Member id of the grantee.
        #[arg(long)]
        grantee: String,
        /// FHIR resource types (repeat, or `*` for all).
        #[arg(long = "class", required = true)]
        classes: Vec<String>,
        /// Purposes of use (repeat).
        #[arg(long = "purpose", value_enum, required = true)]
        purposes: Vec<PurposeArg>,
        /// Valid from (unix seconds, block time).
        #[arg(long, default_value_t = 0)]
        not_before: u64,
        /// Valid until (unix seconds, block time; 0 = open-ended).
        #[arg(long, default_value_t = 0)]
        not_after: u64,
        /// Permitted actions (repeat; default READ).
        #[arg(long = "action", value_enum)]
        actions: Vec<ActionArg>,
        /// Classes excluded even under `*` (repeat).
        #[arg(long = "deny")]
        deny: Vec<String>,
        /// Specific records also covered (repeat).
        #[arg(long = "record")]
        records: Vec<String>,
        /// Research study (with purpose HRESCH).
        #[arg(long, default_value = "")]
        study: String,
    },
    /// Revoke a consent.
    Revoke {
        /// The consent id, e.g. c-1.
        consent_id: String,
    },
}

/// Access transactions.
#[derive(Debug, Subcommand)]
pub enum AccessTx {
    /// Record that the signing member read a record.
    Log {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// FHIR resource type of the record.
        #[arg(long = "class")]
        class: String,
        /// Purpose of use.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// READ or WRITE.
        #[arg(long, value_enum, default_value_t = ActionArg::Read)]
        action: ActionArg,
    },
    /// Emergency access without consent (physician or nurse; opens a review).
    BreakGlass {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// FHIR resource type of the record.
        #[arg(long = "class")]
        class: String,
        /// Why (required). Only its SHA-256 goes on chain; keep the text in your records.
        #[arg(long)]
        reason: String,
    },
    /// Close a break-glass review (a privacy officer of another member than the one that broke
    /// the glass).
    Review {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// The access event's index.
        #[arg(long)]
        index: u64,
        /// Verdict.
        #[arg(long, value_enum)]
        verdict: VerdictArg,
        /// Note. Only its SHA-256 goes on chain.
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// FHIR Consent actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum ActionArg {
    /// Read.
    Read,
    /// Write.
    Write,
}

impl From<ActionArg> for pb::Action {
    fn from(a: ActionArg) -> Self {
        match a {
            ActionArg::Read => pb::Action::Read,
            ActionArg::Write => pb::Action::Write,
        }
    }
}

/// Break-glass review verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VerdictArg {
    /// The emergency access was justified.
    Justified,
    /// It was not.
    Unjustified,
}

/// `guardian` subcommands.
#[derive(Debug, Subcommand)]
pub enum GuardianCmd {
    /// Approve moving a patient to a new key (prints `GUARDIAN_KEY:SIGNATURE` for `tx patient recover`).
    Approve {
        /// The guardian's key name.
        #[arg(long)]
        from: String,
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// The patient's new key: keyring name or hex.
        #[arg(long)]
        new_key: String,
        /// The node to read the chain id and recovery count from.
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// `query` arguments.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// State height to read (0 = latest).
    #[arg(long, default_value_t = 0)]
    height: u64,
    /// Fetch proofs and verify them against the app hash in the committed header.
    #[arg(long)]
    prove: bool,
    #[command(subcommand)]
    what: QueryCmd,
}

/// Queries.
#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// A member.
    Member {
        /// Member id.
        id: String,
    },
    /// A patient.
    Patient {
        /// Patient id.
        id: String,
    },
    /// A consent.
    Consent {
        /// Consent id.
        id: String,
    },
    /// Every consent of a patient.
    Consents {
        /// Patient id.
        patient: String,
    },
    /// Every access event of a patient.
    Access {
        /// Patient id.
        patient: String,
    },
    /// A practitioner.
    Practitioner {
        /// The practitioner's DID.
        did: String,
    },
    /// A practitioner's W3C DID document.
    Did {
        /// The DID.
        did: String,
    },
    /// A patient's guardians.
    Guardians {
        /// Patient id.
        patient: String,
    },
    /// A record anchor.
    Record {
        /// Record id.
        id: String,
    },
    /// A member's break-glass reviews (open ones first).
    Reviews {
        /// Member id.
        member: String,
    },
    /// Who consents to a research study now (HRESCH consents active at the answer's block time).
    Study {
        /// Study id.
        study: String,
    },
    /// A governance proposal and its tally.
    Proposal {
        /// Proposal id.
        id: u64,
    },
    /// Any state key, raw (e.g. `seq/<hex key>`).
    Key {
        /// The key.
        key: String,
    },
    /// A claim.
    Claim(claims::ClaimQuery),
    /// An insurer's coverage policy (the latest version unless --version).
    Policy(claims::PolicyQuery),
    /// A patient's enrolments with an insurer (complete, with --prove).
    Coverage(claims::CoverageQuery),
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The consortium's genesis.json, the auditor's trusted starting point (default: the
    /// localnet's, if there is one under --home).
    #[arg(long, env = "MEDLEDGER_GENESIS")]
    genesis: Option<PathBuf>,
    /// State height to verify (0 = the latest one that can be attested).
    #[arg(long, default_value_t = 0)]
    height: u64,
    /// Check the app hash with the consortium's BLS checkpoint certificate (one aggregate
    /// signature) instead of light-client verification of the signed header.
    #[arg(long)]
    certificate: bool,
    /// Light client: how long the trust root (genesis, or --trust-height) is trusted, measured
    /// to now: `168h` (the `cometbft light` default), `14d`, `90m`, `3600s`.
    #[arg(long, default_value = "168h", value_parser = medledger_client::verify::parse_period)]
    trusting_period: std::time::Duration,
    /// Light client: start from this trusted header instead of genesis (with --trust-hash).
    #[arg(long, requires = "trust_hash")]
    trust_height: Option<u64>,
    /// Light client: the hash (hex) of the header at --trust-height, obtained out of band.
    #[arg(long, requires = "trust_height")]
    trust_hash: Option<String>,
    #[command(subcommand)]
    what: VerifyCmd,
}

/// What to verify.
#[derive(Debug, Subcommand)]
pub enum VerifyCmd {
    /// A consent (or its absence).
    Consent {
        /// Consent id.
        id: String,
    },
    /// A patient (or its absence).
    Patient {
        /// Patient id.
        id: String,
    },
    /// A member (or its absence).
    Member {
        /// Member id.
        id: String,
    },
    /// The complete access history of a patient.
    Access {
        /// Patient id.
        patient: String,
        /// Print the verified history as a FHIR R4 Bundle of AuditEvents (IHE BALP) or as a
        /// HIPAA accounting-of-disclosures CSV instead of the summary.
        #[arg(long, value_enum)]
        export: Option<ExportFormat>,
        /// Only events of blocks at or after this height (the complete history is still read
        /// and proven, which is what makes the window complete).
        #[arg(long, default_value_t = 0)]
        from_height: u64,
        /// Only events of blocks at or before this height (0 = no bound).
        #[arg(long, default_value_t = 0)]
        to_height: u64,
    },
    /// A claim (or its absence).
    Claim {
        /// Claim id.
        id: String,
    },
    /// One enrolment of a patient with an insurer (or its absence).
    Coverage {
        /// Patient id.
        patient: String,
        /// Insurer member id.
        insurer: String,
        /// The enrolment's index, from 0.
        index: u64,
    },
    /// A practitioner (or its absence).
    Practitioner {
        /// DID.
        did: String,
    },
    /// A record anchor (or its absence).
    Record {
        /// Record id.
        id: String,
    },
    /// A governance proposal (or its absence).
    Proposal {
        /// Proposal id.
        id: u64,
    },
    /// The ledger's decision on an access, evaluated by this CLI from proven consents.
    Permitted {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Member id or practitioner DID.
        #[arg(long)]
        actor: String,
        /// FHIR resource type.
        #[arg(long = "class")]
        class: String,
        /// Record id.
        #[arg(long, default_value = "")]
        record: String,
        /// Purpose of use.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// READ or WRITE.
        #[arg(long, value_enum, default_value_t = ActionArg::Read)]
        action: ActionArg,
    },
    /// Any state key.
    Key {
        /// The key.
        key: String,
    },
}

/// Export formats of a verified access history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// FHIR R4 Bundle of AuditEvent resources (JSON).
    Fhir,
    /// HIPAA accounting of disclosures (CSV).
    Csv,
}

/// `localnet` subcommands.
#[derive(Debug, Subcommand)]
pub enum LocalnetCmd {
    /// Create (first time) and start the 4-validator localnet; returns once blocks are made.
    Up {
        /// First port: node i uses base+10i (p2p), +1 (RPC), +2 (ABCI).
        #[arg(long, default_value_t = 26656)]
        base_port: u16,
        /// Chain id (first time only).
        #[arg(long, default_value = localnet::CHAIN_ID)]
        chain_id: String,
    },
    /// Stop every process the localnet started.
    Down,
    /// Height and app hash of each node.
    Status,
    /// Stop the localnet and delete its data (keys stay).
    Reset,
}

/// The timing of a load, shared by every `bench` subcommand.
#[derive(Debug, Args)]
pub struct LoadTiming {
    /// Seconds of timed load (after an untimed setup phase).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Patients the setup phase registers (medledger).
    #[arg(long, default_value_t = 200)]
    pub patients: usize,
    /// Seconds to wait after sending for accepted txs to commit.
    #[arg(long, default_value_t = 10)]
    pub drain: u64,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// `sync` waits for each tx's CheckTx (rejections counted by code; a connection then tops
    /// out near 40-50 tx/s behind a socket ABCI app); `async` only for CometBFT to queue it.
    #[arg(long, value_enum, default_value_t = BroadcastArg::Sync)]
    pub broadcast: BroadcastArg,
}

/// How `bench` submits txs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BroadcastArg {
    /// broadcast_tx_sync.
    Sync,
    /// broadcast_tx_async.
    Async,
}

impl LoadTiming {
    fn config(&self, rate: u64, connections: usize) -> LoadConfig {
        LoadConfig {
            rate,
            connections,
            duration: std::time::Duration::from_secs(self.duration),
            patients: self.patients,
            drain: std::time::Duration::from_secs(self.drain),
            kv_tx_size: None,
            progress: !self.quiet,
            broadcast: match self.broadcast {
                BroadcastArg::Sync => Broadcast::Sync,
                BroadcastArg::Async => Broadcast::Async,
            },
        }
    }
}

/// First port of the throwaway localnets: clear of `localnet up`'s default 26656, so a
/// benchmark can run next to a developer's localnet.
pub const BENCH_BASE_PORT: u16 = 36656;
/// Chain id of the throwaway localnets.
pub const BENCH_CHAIN_ID: &str = "medledger-bench";

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Load the running localnet (<home>/localnet; member keys from <home>/keys).
    Load {
        /// Offered load, tx/s.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Concurrent connections, spread over the nodes.
        #[arg(long, default_value_t = 2)]
        connections: usize,
        /// Duration, setup size, drain.
        #[command(flatten)]
        timing: LoadTiming,
        /// RPC URL to send to (repeat; default: every node of the localnet). Commits are tracked
        /// on the first.
        #[arg(long)]
        node: Vec<String>,
        /// Size of kvstore txs in bytes (default: the average medledger tx of the mix).
        #[arg(long)]
        tx_size: Option<usize>,
    },
    /// Start a throwaway medledger localnet, then a kvstore one with the same CometBFT config,
    /// run the same load on each, and print both and their ratio.
    Compare {
        /// Offered load, tx/s.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Concurrent connections, spread over the nodes.
        #[arg(long, default_value_t = 2)]
        connections: usize,
        /// Duration, setup size, drain.
        #[command(flatten)]
        timing: LoadTiming,
        /// First port of the throwaway localnets (node i: base+10i p2p, +1 RPC, +2 ABCI).
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
    },
    /// CometBFT's QA method: every rate × connection count on one throwaway localnet; a cell is
    /// saturated when it commits under 90 % of its offered rate.
    Grid {
        /// Offered rates, tx/s.
        #[arg(long, value_delimiter = ',', default_values_t = vec![500, 1000, 2000])]
        rates: Vec<u64>,
        /// Connection counts.
        #[arg(long, value_delimiter = ',', default_values_t = vec![1, 2, 4])]
        connections: Vec<usize>,
        /// Duration, setup size, drain.
        #[command(flatten)]
        timing: LoadTiming,
        /// First port of the throwaway localnets.
        #[arg(long, default_value_t = BENCH_BASE_PORT)]
        base_port: u16,
        /// Run the same grid on a kvstore localnet afterwards.
        #[arg(long)]
        kvstore: bool,
    },
}

/// Runs the CLI.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let keyring = Keyring::new(cli.home.join("keys"));
    let out = cli.output;
    match cli.command {
        Command::Start(a) => {
            let ledger = medledger_state::Ledger::open(&a.data)
                .with_context(|| format!("opening {}", a.data.display()))?;
            let bls = a
                .bls_key
                .as_deref()
                .map(medledger_client::keyring::load_bls_key)
                .transpose()?;
            if let Some((point, height)) = medledger_state::fault::armed() {
                tracing::warn!(
                    point,
                    height,
                    "fault injection armed: this node will abort there"
                );
            }
            crate::server::serve(ledger, &a.listen, bls).await?;
            Ok(0)
        }
        Command::Keys(KeysCmd::Prove {
            name,
            subject,
            purpose,
            chain_id,
            node,
        }) => {
            let key = keyring.get(&name)?;
            let chain_id = match chain_id {
                Some(c) => c,
                None => Client::new(&node.node)?.chain_id().await?,
            };
            let proof = medledger_tx::keyproof::prove(&key, &chain_id, &purpose, &subject);
            let public_key = hex::encode(key.verifying_key().to_bytes());
            if out == Output::Json {
                print_json(&serde_json::json!({
                    "public_key": public_key, "proof": hex::encode(proof),
                    "purpose": purpose, "subject": subject, "chain_id": chain_id,
                }))?;
            } else {
                println!("public key {public_key}");
                println!("proof      {}", hex::encode(proof));
            }
            Ok(0)
        }
        Command::Keys(k) => keys_cmd(&keyring, k, out),
        Command::Tx(t) => tx_cmd(&keyring, t, out).await,
        Command::Query(q) => query_cmd(q, out).await,
        Command::Verify(v) => verify_cmd(&cli.home, v, out).await,
        Command::Guardian(g) => guardian_cmd(&keyring, g).await,
        Command::Replay { node, genesis, to } => {
            let genesis = genesis.unwrap_or_else(|| {
                cli.home
                    .join("localnet")
                    .join(localnet::MEMBERS[0].0)
                    .join("cometbft/config/genesis.json")
            });
            let dir = tempfile_dir()?;
            let report =
                medledger_client::replay::replay(&Client::new(&node.node)?, &genesis, &dir, to)
                    .await;
            let _ = std::fs::remove_dir_all(&dir);
            let report = report?;
            if out == Output::Json {
                print_json(&report)?;
            } else {
                println!(
                    "replayed {} blocks ({} txs) into a fresh ledger: {} divergences",
                    report.blocks,
                    report.txs,
                    report.divergences.len()
                );
                for (h, ours, theirs) in &report.divergences {
                    println!("  height {h}: replay {ours}, chain {theirs}");
                }
            }
            Ok(if report.divergences.is_empty() { 0 } else { 5 })
        }
        Command::Localnet(l) => localnet_cmd(&cli.home, &keyring, l, out).await,
        Command::Bench(b) => {
            // Ctrl-C drops the bench future, and with it any throwaway localnet, which stops its
            // processes and deletes its directory.
            tokio::select! {
                r = bench_cmd(&cli.home, &keyring, b, out) => r,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            }
        }
    }
}

/// A fresh directory under the system temp dir for a throwaway ledger.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let dir = std::env::temp_dir().join(format!("medledger-replay-{}", hex::encode(nonce)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

#[derive(Serialize)]
struct KeyView {
    name: String,
    public_key: String,
    patient_id: String,
}

fn keys_cmd(keyring: &Keyring, cmd: KeysCmd, out: Output) -> anyhow::Result<i32> {
    let view = |name: &str| -> anyhow::Result<KeyView> {
        let pk = keyring.get(name)?.verifying_key().to_bytes();
        Ok(KeyView {
            name: name.into(),
            public_key: hex::encode(pk),
            patient_id: ids::patient_id(&pk),
        })
    };
    let views = match cmd {
        KeysCmd::Add { name } => {
            keyring.add(&name)?;
            vec![view(&name)?]
        }
        KeysCmd::Show { name } => vec![view(&name)?],
        KeysCmd::Prove { .. } => anyhow::bail!("internal: proofs are made by keys_prove"),
        KeysCmd::List => keyring
            .list()?
            .iter()
            .map(|n| view(n))
            .collect::<anyhow::Result<_>>()?,
    };
    match out {
        Output::Json => print_json(&views)?,
        Output::Text => {
            for v in views {
                println!(
                    "{:<16} public key {}  patient id (if registered) {}",
                    v.name, v.public_key, v.patient_id
                );
            }
        }
    }
    Ok(0)
}

async fn tx_cmd(keyring: &Keyring, t: TxArgs, out: Output) -> anyhow::Result<i32> {
    let key = keyring.get(&t.from)?;
    let client = Client::new(&t.node.node)?;
    let msg = match t.msg {
        TxCmd::Patient(PatientTx::Recover { patient, approvals }) => {
            Msg::RecoverPatientKey(pb::RecoverPatientKey {
                patient_id: patient,
                new_key: key.verifying_key().to_bytes().to_vec(),
                approvals: approvals
                    .iter()
                    .map(|a| parse_approval(a))
                    .collect::<anyhow::Result<_>>()?,
            })
        }
        TxCmd::Gov(g) => governance::to_msg(g, &client, keyring).await?,
        TxCmd::Patient(PatientTx::Register { patient_key, proof }) => {
            let ctx = proof_ctx(&client, &key, ProofSubject::Member).await?;
            let (patient_key, key_proof) = rules::key_with_proof(
                keyring,
                &patient_key,
                proof.as_deref(),
                medledger_tx::keyproof::ENROL_PATIENT,
                &ctx,
            )?;
            Msg::RegisterPatient(pb::RegisterPatient {
                patient_key: patient_key.to_vec(),
                key_proof,
            })
        }
        TxCmd::Patient(PatientTx::Rotate { new_key, proof }) => {
            let ctx = proof_ctx(&client, &key, ProofSubject::Patient).await?;
            let (new_key, new_key_proof) = rules::key_with_proof(
                keyring,
                &new_key,
                proof.as_deref(),
                medledger_tx::keyproof::ROTATE_PATIENT_KEY,
                &ctx,
            )?;
            Msg::RotatePatientKey(pb::RotatePatientKey {
                new_key: new_key.to_vec(),
                new_key_proof,
            })
        }
        TxCmd::Practitioner(p) if p.needs_proof() => {
            let ctx = proof_ctx(&client, &key, ProofSubject::Member).await?;
            p.to_msg(keyring, Some(&ctx))?
        }
        other => build_msg(keyring, other)?,
    };
    let report = client.submit(&key, msg).await?;
    print_report(&report, out)?;
    Ok(if report.code == 0 { 0 } else { 1 })
}

/// Whose id a key proof names as its subject.
enum ProofSubject {
    /// The member the signer acts for (its admin key, or one of its practitioners).
    Member,
    /// The patient the signer is.
    Patient,
}

/// The chain and subject of a key proof for a tx `signer` sends, read from the node: a proof
/// names who the new key is handed to, so it serves no other member or patient.
async fn proof_ctx(
    client: &Client,
    signer: &ed25519_dalek::SigningKey,
    want: ProofSubject,
) -> anyhow::Result<rules::ProofCtx> {
    use medledger_tx::pb::key_owner::Owner;
    let chain_id = client.chain_id().await?;
    let (owner, _) = client
        .query_raw(&keys::key_owner(&signer.verifying_key().to_bytes()), 0)
        .await?;
    let owner = owner
        .map(|b| pb::KeyOwner::decode(b.as_slice()))
        .transpose()?
        .and_then(|o| o.owner);
    let subject = match (want, owner) {
        (ProofSubject::Member, Some(Owner::MemberId(id))) => id,
        (ProofSubject::Member, Some(Owner::PractitionerDid(did))) => {
            let (p, _) = client.query_raw(&keys::practitioner(&did), 0).await?;
            p.map(|b| pb::Practitioner::decode(b.as_slice()))
                .transpose()?
                .context("the signing practitioner is not on the ledger")?
                .member_id
        }
        (ProofSubject::Patient, Some(Owner::PatientId(id))) => id,
        (ProofSubject::Member, _) => {
            anyhow::bail!("--from must be a member's admin key or one of its practitioners")
        }
        (ProofSubject::Patient, _) => anyhow::bail!("--from must be a registered patient's key"),
    };
    Ok(rules::ProofCtx { chain_id, subject })
}

fn build_msg(keyring: &Keyring, cmd: TxCmd) -> anyhow::Result<Msg> {
    Ok(match cmd {
        TxCmd::Patient(PatientTx::Register { .. }) | TxCmd::Patient(PatientTx::Rotate { .. }) => {
            anyhow::bail!("internal: key proofs are built with the node")
        }
        TxCmd::Patient(PatientTx::Guardians {
            guardians,
            threshold,
        }) => Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: guardians
                .iter()
                .map(|g| rules::resolve_key(keyring, g).map(|k| k.to_vec()))
                .collect::<anyhow::Result<_>>()?,
            threshold,
        }),
        TxCmd::Patient(PatientTx::Recover { .. }) => {
            anyhow::bail!("internal: recovery is built with the signing key")
        }
        TxCmd::Consent(ConsentTx::Grant {
            grantee,
            classes,
            purposes,
            not_before,
            not_after,
            actions,
            deny,
            records,
            study,
        }) => Msg::GrantConsent(pb::GrantConsent {
            grantee,
            data_classes: classes,
            purposes: purposes
                .into_iter()
                .map(|p| Purpose::from(p) as i32)
                .collect(),
            not_before,
            not_after,
            actions: actions
                .into_iter()
                .map(|a| pb::Action::from(a) as i32)
                .collect(),
            deny_classes: deny,
            record_ids: records,
            study_id: study,
        }),
        TxCmd::Consent(ConsentTx::Revoke { consent_id }) => {
            Msg::RevokeConsent(pb::RevokeConsent { consent_id })
        }
        TxCmd::Access(AccessTx::Log {
            patient,
            record,
            class,
            purpose,
            action,
        }) => Msg::LogAccess(pb::LogAccess {
            patient_id: patient,
            record_id: record,
            data_class: class,
            purpose: Purpose::from(purpose) as i32,
            action: pb::Action::from(action) as i32,
        }),
        TxCmd::Access(AccessTx::BreakGlass {
            patient,
            record,
            class,
            reason,
        }) => Msg::LogBreakGlass(pb::LogBreakGlass {
            patient_id: patient,
            record_id: record,
            data_class: class,
            reason_hash: rules::text_hash(&reason),
        }),
        TxCmd::Access(AccessTx::Review {
            patient,
            index,
            verdict,
            note,
        }) => Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
            patient_id: patient,
            event_index: index,
            justified: verdict == VerdictArg::Justified,
            note_hash: rules::text_hash(&note),
        }),
        TxCmd::Practitioner(p) => p.to_msg(keyring, None)?,
        TxCmd::Record(r) => r.to_msg()?,
        TxCmd::Claim(c) => claims::to_msg(c)?,
        TxCmd::Coverage(c) => claims::coverage_msg(c),
        TxCmd::Gov(_) => anyhow::bail!("internal: governance messages are built with the node"),
    })
}

fn parse_approval(a: &str) -> anyhow::Result<pb::GuardianApproval> {
    let (k, s) = a
        .split_once(':')
        .context("an approval is GUARDIAN_KEY_HEX:SIGNATURE_HEX")?;
    Ok(pb::GuardianApproval {
        guardian_key: hex::decode(k)?,
        signature: hex::decode(s)?,
    })
}

async fn guardian_cmd(keyring: &Keyring, cmd: GuardianCmd) -> anyhow::Result<i32> {
    let GuardianCmd::Approve {
        from,
        patient,
        new_key,
        node,
    } = cmd;
    let guardian = keyring.get(&from)?;
    let new_key = rules::resolve_key(keyring, &new_key)?;
    let client = Client::new(&node.node)?;
    let chain_id = client.chain_id().await?;
    let (g, _) = client.query_raw(&keys::guardians(&patient), 0).await?;
    let g = g
        .map(|b| pb::Guardians::decode(b.as_slice()))
        .transpose()?
        .context("the patient has no guardians")?;
    let (p, _) = client.query_raw(&keys::patient(&patient), 0).await?;
    let p = p
        .map(|b| pb::Patient::decode(b.as_slice()))
        .transpose()?
        .context("no such patient")?;
    // The approval binds the patient's key and guardians now: a rotation or a change of
    // guardians voids it.
    let at = medledger_tx::recovery::RecoveryState {
        recoveries: g.recoveries,
        current_key: p
            .key
            .as_slice()
            .try_into()
            .context("the patient's key is malformed")?,
        guardian_set_hash: medledger_tx::recovery::guardian_set_hash(&g.guardian_keys, g.threshold),
    };
    let sig = medledger_tx::recovery::approve(&guardian, &chain_id, &patient, &new_key, &at);
    println!(
        "{}:{}",
        hex::encode(guardian.verifying_key().to_bytes()),
        hex::encode(sig)
    );
    Ok(0)
}

fn print_report(r: &TxReport, out: Output) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(r);
    }
    if r.code == 0 {
        println!("OK: committed at height {} (tx {})", r.height, r.hash);
        for e in &r.events {
            let attrs: Vec<String> = e
                .attributes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            println!("  {} {}", e.kind, attrs.join(" "));
        }
    } else if r.height == 0 {
        println!(
            "REJECTED by CheckTx: {} ({}): {}",
            r.code_name, r.code, r.log
        );
    } else {
        println!(
            "REJECTED at height {}: {} ({}): {} (tx {})",
            r.height, r.code_name, r.code, r.log, r.hash
        );
    }
    Ok(())
}

/// A read answer: decoded value plus, when proven, what it was proven against.
#[derive(Serialize)]
pub(super) struct Answer<T: Serialize> {
    key: String,
    height: u64,
    value: Option<T>,
    /// App hash (hex) of `height`, from header `height + 1`, that the proof verified against.
    verified_against: Option<String>,
}

struct Reader {
    client: Client,
    height: u64,
    prove: bool,
}

impl Reader {
    async fn read(&self, key: &[u8]) -> anyhow::Result<(Option<Vec<u8>>, u64, Option<String>)> {
        if self.prove {
            let ProvenAnswer {
                value,
                height,
                app_hash,
                ..
            } = self.client.query_proven(key, self.height).await?;
            Ok((value, height, Some(hex::encode_upper(app_hash))))
        } else {
            let (value, height) = self.client.query_raw(key, self.height).await?;
            Ok((value, height, None))
        }
    }

    async fn read_msg<M: Message + Default + Serialize>(
        &self,
        key: &[u8],
    ) -> anyhow::Result<Answer<M>> {
        let (value, height, verified_against) = self.read(key).await?;
        let value = value
            .map(|v| M::decode(v.as_slice()))
            .transpose()
            .context("value does not decode")?;
        Ok(Answer {
            key: String::from_utf8_lossy(key).into(),
            height,
            value,
            verified_against,
        })
    }

    async fn read_u64(&self, key: &[u8]) -> anyhow::Result<Answer<u64>> {
        let (value, height, verified_against) = self.read(key).await?;
        let value = value
            .map(|v| keys::decode_u64(&v).context("counter is not 8 bytes"))
            .transpose()?;
        Ok(Answer {
            key: String::from_utf8_lossy(key).into(),
            height,
            value,
            verified_against,
        })
    }
}

fn show<T: Serialize + std::fmt::Debug>(a: &Answer<T>, out: Output) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(a);
    }
    match &a.value {
        Some(v) => println!("{} at height {}:\n{v:#?}", a.key, a.height),
        None => println!("{} at height {}: ABSENT", a.key, a.height),
    }
    if let Some(h) = &a.verified_against {
        println!(
            "VERIFIED: proof checks against app hash {h} (committed in header {})",
            a.height + 1
        );
    }
    Ok(())
}

async fn query_cmd(q: QueryArgs, out: Output) -> anyhow::Result<i32> {
    let client = Client::new(&q.node.node)?;
    let mut r = Reader {
        client,
        height: q.height,
        prove: q.prove,
    };
    match q.what {
        QueryCmd::Member { id } => show(&r.read_msg::<pb::Member>(&keys::member(&id)).await?, out)?,
        QueryCmd::Patient { id } => {
            show(&r.read_msg::<pb::Patient>(&keys::patient(&id)).await?, out)?
        }
        QueryCmd::Consent { id } => {
            show(&r.read_msg::<pb::Consent>(&keys::consent(&id)).await?, out)?
        }
        QueryCmd::Practitioner { did } => show(
            &r.read_msg::<pb::Practitioner>(&keys::practitioner(&did))
                .await?,
            out,
        )?,
        QueryCmd::Did { did } => {
            let a = r
                .read_msg::<pb::Practitioner>(&keys::practitioner(&did))
                .await?;
            let p = a.value.with_context(|| format!("no practitioner {did}"))?;
            print_json(&rules::did_document(&p))?;
        }
        QueryCmd::Guardians { patient } => show(
            &r.read_msg::<pb::Guardians>(&keys::guardians(&patient))
                .await?,
            out,
        )?,
        QueryCmd::Record { id } => show(
            &r.read_msg::<pb::RecordAnchor>(&keys::record(&id)).await?,
            out,
        )?,
        QueryCmd::Reviews { member } => {
            let count = r.read_u64(&keys::review_count(&member)).await?;
            r.height = count.height;
            let mut list = Vec::new();
            for n in 0..count.value.unwrap_or(0) {
                let (item, _, _) = r.read(&keys::review(&member, n)).await?;
                let item =
                    String::from_utf8_lossy(&item.context("review index has a gap")?).into_owned();
                let (patient, index) = item
                    .rsplit_once('/')
                    .context("review item is not patient/index")?;
                list.push(
                    r.read_msg::<pb::AccessEvent>(&keys::access_event(patient, index.parse()?))
                        .await?,
                );
            }
            // Open reviews first: that is the privacy officer's work list.
            list.sort_by_key(|a| {
                a.value
                    .as_ref()
                    .map(|e| e.review != pb::ReviewStatus::Pending as i32)
            });
            print_list(&count, &list, out)?;
        }
        QueryCmd::Study { study } => {
            let count = r.read_u64(&keys::study_count(&study)).await?;
            r.height = count.height;
            let n = count.value.unwrap_or(0);
            anyhow::ensure!(
                n <= medledger_tx::limits::MAX_STUDY_PARTICIPANTS,
                "study index has {n} entries; too many to read"
            );
            // The block time of the answer's height decides which consents are in their period.
            let header = r.client.light_block(count.height + 1).await?.0;
            let time = u64::try_from(header.header.time.unix_timestamp()).unwrap_or(0);
            let mut participants = std::collections::BTreeSet::new();
            for i in 0..n {
                let (id, _, _) = r.read(&keys::study_consent(&study, i)).await?;
                let id =
                    String::from_utf8_lossy(&id.context("study index has a gap")?).into_owned();
                if let Some(c) = r.read_msg::<pb::Consent>(&keys::consent(&id)).await?.value {
                    let active = c.revoked_height == 0
                        && c.not_before <= time
                        && (c.not_after == 0 || time <= c.not_after);
                    if active {
                        participants.insert(c.patient_id);
                    }
                }
            }
            let view = serde_json::json!({
                "study": study, "height": count.height, "consenting_patients": participants.len(),
                "patients": participants, "proven": r.prove,
            });
            if out == Output::Json {
                print_json(&view)?;
            } else {
                println!(
                    "study {study} at height {}: {} patients consent{}",
                    count.height,
                    participants.len(),
                    if r.prove { " (every read proven)" } else { "" }
                );
                for p in &participants {
                    println!("  {p}");
                }
            }
        }
        QueryCmd::Proposal { id } => {
            show(&r.read_msg::<pb::Proposal>(&keys::proposal(id)).await?, out)?
        }
        QueryCmd::Key { key } => {
            let (value, height, verified_against) = r.read(key.as_bytes()).await?;
            show(
                &Answer {
                    key,
                    height,
                    value: value.map(hex::encode),
                    verified_against,
                },
                out,
            )?;
        }
        QueryCmd::Consents { patient } => {
            let count = r.read_u64(&keys::patient_consent_count(&patient)).await?;
            r.height = count.height; // read the whole list at one height
            let mut list = Vec::new();
            for n in 0..count.value.unwrap_or(0) {
                let (id, _, _) = r.read(&keys::patient_consent(&patient, n)).await?;
                let id =
                    String::from_utf8_lossy(&id.context("consent index has a gap")?).into_owned();
                list.push(r.read_msg::<pb::Consent>(&keys::consent(&id)).await?);
            }
            print_list(&count, &list, out)?;
        }
        QueryCmd::Access { patient } => {
            let count = r.read_u64(&keys::access_count(&patient)).await?;
            r.height = count.height;
            let mut list = Vec::new();
            for n in 0..count.value.unwrap_or(0) {
                list.push(
                    r.read_msg::<pb::AccessEvent>(&keys::access_event(&patient, n))
                        .await?,
                );
            }
            print_list(&count, &list, out)?;
        }
        QueryCmd::Claim(c) => claims::query_claim(&r, c, out).await?,
        QueryCmd::Policy(p) => claims::query_policy(&mut r, p, out).await?,
        QueryCmd::Coverage(c) => claims::query_coverage(&mut r, c, out).await?,
    }
    Ok(0)
}

pub(super) fn print_list<T: Serialize + std::fmt::Debug>(
    count: &Answer<u64>,
    list: &[Answer<T>],
    out: Output,
) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(&serde_json::json!({ "count": count, "items": list }));
    }
    println!(
        "{} = {} at height {}",
        count.key,
        count.value.unwrap_or(0),
        count.height
    );
    for a in list {
        show(a, out)?;
    }
    Ok(())
}

#[derive(Serialize)]
struct VerifiedView<T: Serialize> {
    verified: bool,
    what: String,
    state: String,
    height: u64,
    app_hash: String,
    method: &'static str,
    signers: Vec<String>,
    signed_power: u64,
    total_power: u64,
    value: Option<T>,
}

fn verified_view<T: Serialize>(
    what: String,
    state: String,
    a: &medledger_client::verify::Attestation,
    value: Option<T>,
) -> VerifiedView<T> {
    VerifiedView {
        verified: true,
        what,
        state,
        height: a.height,
        app_hash: hex::encode_upper(&a.app_hash),
        method: a.method,
        signers: a.signers.clone(),
        signed_power: a.signed_power,
        total_power: a.total_power,
        value,
    }
}

fn print_verified<T: Serialize + std::fmt::Debug>(
    v: &VerifiedView<T>,
    out: Output,
    a: &medledger_client::verify::Attestation,
) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(v);
    }
    println!(
        "VERIFIED {} {} at height {} — {}",
        v.what,
        v.state,
        v.height,
        medledger_client::verify::signed_by(a)
    );
    if let Some(value) = &v.value {
        println!("{value:#?}");
    }
    Ok(())
}

async fn verify_cmd(home: &std::path::Path, v: VerifyArgs, out: Output) -> anyhow::Result<i32> {
    let genesis = match v.genesis {
        Some(g) => g,
        None => {
            let local = home
                .join("localnet")
                .join(localnet::MEMBERS[0].0)
                .join("cometbft/config/genesis.json");
            anyhow::ensure!(
                local.exists(),
                "pass --genesis FILE: the consortium's genesis.json is the trusted starting point"
            );
            local
        }
    };
    let client = Client::new(&v.node.node)?;
    let root = match (v.trust_height, &v.trust_hash) {
        (Some(h), Some(hash)) => Some((h, hex::decode(hash).context("--trust-hash is not hex")?)),
        _ => None,
    };
    let trust = medledger_client::verify::Trust::from_genesis(&genesis, v.certificate)?
        .with_header_root(&client, v.trusting_period, root)
        .await?;
    match verify_what(&client, &trust, v.what, v.height, out).await {
        Ok(()) => Ok(0),
        Err(e) => {
            if out == Output::Json {
                print_json(&serde_json::json!({ "verified": false, "reason": format!("{e:#}") }))?;
            } else {
                println!("NOT VERIFIED: {e:#}");
            }
            Ok(4)
        }
    }
}

/// Verifies `key`, decodes it as `M`, and prints `VERIFIED <what> <state> …` (`ABSENT` when
/// proven absent).
async fn verify_typed<M: Message + Default + Serialize + std::fmt::Debug>(
    client: &Client,
    trust: &medledger_client::verify::Trust,
    key: &[u8],
    height: u64,
    what: String,
    state: impl Fn(&M) -> String,
    out: Output,
) -> anyhow::Result<()> {
    let r = medledger_client::verify::verify_key(client, trust, key, height).await?;
    let value = r.value.as_deref().map(M::decode).transpose()?;
    let state = value.as_ref().map_or_else(|| "ABSENT".to_string(), state);
    print_verified(
        &verified_view(what, state, &r.attestation, value),
        out,
        &r.attestation,
    )
}

/// `APPROVED` from `Ok("CLAIM_STATUS_APPROVED")` and the prefix.
fn enum_name<E>(name: Result<&str, E>, prefix: &str) -> String {
    name.map(|n| n.trim_start_matches(prefix).to_string())
        .unwrap_or_else(|_| "UNKNOWN".into())
}

async fn verify_what(
    client: &Client,
    trust: &medledger_client::verify::Trust,
    what: VerifyCmd,
    height: u64,
    out: Output,
) -> anyhow::Result<()> {
    use medledger_client::verify::{verify_history, verify_key};
    match what {
        VerifyCmd::Consent { id } => {
            let state = |c: &pb::Consent| {
                if c.revoked_height == 0 {
                    "ACTIVE".to_string()
                } else {
                    format!("REVOKED (at height {})", c.revoked_height)
                }
            };
            verify_typed(
                client,
                trust,
                &keys::consent(&id),
                height,
                format!("consent {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Patient { id } => {
            verify_typed(
                client,
                trust,
                &keys::patient(&id),
                height,
                format!("patient {id}"),
                |_: &pb::Patient| "REGISTERED".into(),
                out,
            )
            .await
        }
        VerifyCmd::Member { id } => {
            verify_typed(
                client,
                trust,
                &keys::member(&id),
                height,
                format!("member {id}"),
                |_: &pb::Member| "MEMBER".into(),
                out,
            )
            .await
        }
        VerifyCmd::Claim { id } => {
            let state = |c: &pb::Claim| {
                enum_name(
                    pb::ClaimStatus::try_from(c.status).map(|s| s.as_str_name()),
                    "CLAIM_STATUS_",
                )
            };
            verify_typed(
                client,
                trust,
                &keys::claim(&id),
                height,
                format!("claim {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Coverage {
            patient,
            insurer,
            index,
        } => {
            let state =
                |c: &pb::Coverage| format!("ENROLLED {} [{}, {})", c.policy_id, c.start, c.end);
            verify_typed(
                client,
                trust,
                &keys::coverage(&patient, &insurer, index),
                height,
                format!("coverage {patient} {insurer} {index}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Practitioner { did } => {
            let state = |p: &pb::Practitioner| {
                enum_name(
                    pb::PractitionerStatus::try_from(p.status).map(|s| s.as_str_name()),
                    "PRACTITIONER_STATUS_",
                )
            };
            verify_typed(
                client,
                trust,
                &keys::practitioner(&did),
                height,
                format!("practitioner {did}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Record { id } => {
            let state = |a: &pb::RecordAnchor| {
                if a.erased_height == 0 {
                    "ANCHORED".to_string()
                } else {
                    format!("ERASED (at height {})", a.erased_height)
                }
            };
            verify_typed(
                client,
                trust,
                &keys::record(&id),
                height,
                format!("record {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Proposal { id } => {
            let state = |p: &pb::Proposal| {
                enum_name(
                    pb::ProposalStatus::try_from(p.status).map(|s| s.as_str_name()),
                    "PROPOSAL_STATUS_",
                )
            };
            verify_typed(
                client,
                trust,
                &keys::proposal(id),
                height,
                format!("proposal {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Permitted {
            patient,
            actor,
            class,
            record,
            purpose,
            action,
        } => {
            let q = medledger_client::verify::PermittedQuery {
                patient: patient.clone(),
                actor: actor.clone(),
                action: pb::Action::from(action) as i32,
                data_class: class.clone(),
                record_id: record,
                purpose: Purpose::from(purpose) as i32,
            };
            let (permit, a, time) =
                medledger_client::verify::verify_permitted(client, trust, q, height).await?;
            let state = match &permit {
                Some(id) => format!("PERMIT (consent {id}, block time {time})"),
                None => format!("DENY (no consent permits it at block time {time})"),
            };
            print_verified(
                &verified_view(
                    format!("access by {actor} to {class} of {patient}"),
                    state,
                    &a,
                    permit,
                ),
                out,
                &a,
            )
        }
        VerifyCmd::Key { key } => {
            let r = verify_key(client, trust, key.as_bytes(), height).await?;
            let state = if r.value.is_some() {
                "PRESENT"
            } else {
                "ABSENT"
            };
            let value = r.value.as_ref().map(hex::encode);
            print_verified(
                &verified_view(format!("key {key}"), state.into(), &r.attestation, value),
                out,
                &r.attestation,
            )
        }
        VerifyCmd::Access {
            patient,
            export,
            from_height,
            to_height,
        } => {
            let (events, a) = verify_history(client, trust, &patient, height).await?;
            let events: Vec<pb::AccessEvent> = events
                .into_iter()
                .filter(|e| e.height >= from_height && (to_height == 0 || e.height <= to_height))
                .collect();
            if let Some(format) = export {
                use medledger_query::export::{
                    fhir_audit_bundle, hipaa_disclosures_csv, ProvenanceInfo,
                };
                // The verdict goes to stderr so that stdout is exactly the export.
                eprintln!(
                    "VERIFIED complete access history of {patient} ({} events) at height {} — {}",
                    events.len(),
                    a.height,
                    medledger_client::verify::signed_by(&a)
                );
                match format {
                    ExportFormat::Fhir => {
                        let proven = ProvenanceInfo {
                            chain_id: trust.chain_id().to_string(),
                            height: a.height,
                            app_hash_hex: hex::encode_upper(&a.app_hash),
                        };
                        print_json(&fhir_audit_bundle(&patient, &events, &proven))?;
                    }
                    ExportFormat::Csv => print!("{}", hipaa_disclosures_csv(&events)),
                }
                return Ok(());
            }
            let view = verified_view(
                format!("complete access history of {patient}"),
                format!("({} events)", events.len()),
                &a,
                Some(events),
            );
            print_verified(&view, out, &a)
        }
    }
}

async fn localnet_cmd(
    home: &std::path::Path,
    keyring: &Keyring,
    cmd: LocalnetCmd,
    out: Output,
) -> anyhow::Result<i32> {
    let dir = home.join("localnet");
    let me = std::env::current_exe().context("locating the medledger binary")?;
    match cmd {
        LocalnetCmd::Up {
            base_port,
            chain_id,
        } => {
            let spec = Spec::consortium(chain_id, base_port, AppKind::Medledger)?;
            let net = Localnet::open_or_init(&dir, spec, keyring, me)?;
            let took = net.up().await?;
            if out == Output::Text {
                println!(
                    "localnet {:?} is up: first node at height >= 1 after {:.1} s",
                    net.spec.chain_id,
                    took.as_secs_f64()
                );
                println!("data and logs: {}", dir.display());
                println!(
                    "member admin keys: {} ({})",
                    home.join("keys").display(),
                    localnet::MEMBERS.map(|m| m.0).join(", ")
                );
            }
            print_status(&net, out).await?;
            Ok(0)
        }
        LocalnetCmd::Down => {
            Localnet::open(&dir, me)?.down()?;
            if out == Output::Text {
                println!("localnet stopped");
            }
            Ok(0)
        }
        LocalnetCmd::Status => {
            let net = Localnet::open(&dir, me)?;
            print_status(&net, out).await
        }
        LocalnetCmd::Reset => {
            if dir.join("localnet.json").exists() {
                Localnet::open(&dir, me)?.down()?;
            }
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
            println!("localnet data removed: {}", dir.display());
            Ok(0)
        }
    }
}

async fn bench_cmd(
    home: &std::path::Path,
    keyring: &Keyring,
    cmd: BenchCmd,
    out: Output,
) -> anyhow::Result<i32> {
    let me = std::env::current_exe().context("locating the medledger binary")?;
    match cmd {
        BenchCmd::Load {
            rate,
            connections,
            timing,
            node,
            tx_size,
        } => {
            let dir = home.join("localnet");
            let mut target = if dir.join("localnet.json").exists() {
                Target::of_localnet(&Localnet::open(&dir, me)?)
            } else {
                anyhow::ensure!(
                    !node.is_empty(),
                    "no localnet in {}: start one (`medledger localnet up`) or pass --node",
                    dir.display()
                );
                Target {
                    app: AppKind::Medledger,
                    rpc: Vec::new(),
                    nodes: Vec::new(),
                }
            };
            if !node.is_empty() {
                target.rpc = node;
            }
            let cfg = LoadConfig {
                kv_tx_size: tx_size,
                ..timing.config(rate, connections)
            };
            let report = loadgen::run(&target, keyring, &cfg).await?;
            if out == Output::Json {
                print_json(&report)?;
            } else {
                print!(
                    "{}{}",
                    loadgen::table(&[&report]),
                    loadgen::details(&report)
                );
            }
        }
        BenchCmd::Compare {
            rate,
            connections,
            timing,
            base_port,
        } => {
            let cfg = timing.config(rate, connections);
            let medledger = bench_on_throwaway(AppKind::Medledger, base_port, &me, &cfg).await?;
            let kv_cfg = LoadConfig {
                kv_tx_size: Some(usize::try_from(medledger.tx_bytes_avg)?),
                ..cfg
            };
            let kvstore = bench_on_throwaway(AppKind::Kvstore, base_port, &me, &kv_cfg).await?;
            let c = Comparison::new(medledger, kvstore);
            if out == Output::Json {
                print_json(&c)?;
            } else {
                print!(
                    "{}{}{}",
                    c.text(),
                    loadgen::details(&c.medledger),
                    loadgen::details(&c.kvstore)
                );
            }
        }
        BenchCmd::Grid {
            rates,
            connections,
            timing,
            base_port,
            kvstore,
        } => {
            let apps: &[AppKind] = if kvstore {
                &[AppKind::Medledger, AppKind::Kvstore]
            } else {
                &[AppKind::Medledger]
            };
            let mut all: Vec<LoadReport> = Vec::new();
            let mut kv_tx_size = None;
            for &app in apps {
                let net = ThrowawayNet::start(
                    Spec::consortium(BENCH_CHAIN_ID.into(), base_port, app)?,
                    me.clone(),
                )
                .await?;
                for &rate in &rates {
                    for &c in &connections {
                        // A saturated cell leaves a backlog; the next cell starts on empty mempools.
                        net.wait_mempools_empty(std::time::Duration::from_secs(120))
                            .await?;
                        let cfg = LoadConfig {
                            kv_tx_size,
                            ..timing.config(rate, c)
                        };
                        let r = loadgen::run(&Target::of_localnet(&net.net), &net.keyring, &cfg)
                            .await?;
                        if out == Output::Text {
                            eprint!("{}", loadgen::table(&[&r]));
                        }
                        if app == AppKind::Medledger {
                            kv_tx_size = kv_tx_size.or(usize::try_from(r.tx_bytes_avg).ok());
                        }
                        all.push(r);
                    }
                }
            }
            if out == Output::Json {
                print_json(&all)?;
            } else {
                print!("{}", loadgen::table(&all.iter().collect::<Vec<_>>()));
                for &app in apps {
                    let cells: Vec<&LoadReport> =
                        all.iter().filter(|r| r.app == app.name()).collect();
                    print!("{}", loadgen::saturation_summary(app.name(), &cells));
                }
            }
        }
    }
    Ok(0)
}

/// Starts a throwaway localnet of `app`, runs `cfg` on it, stops it.
async fn bench_on_throwaway(
    app: AppKind,
    base_port: u16,
    me: &std::path::Path,
    cfg: &LoadConfig,
) -> anyhow::Result<LoadReport> {
    let net = ThrowawayNet::start(
        Spec::consortium(BENCH_CHAIN_ID.into(), base_port, app)?,
        me.to_path_buf(),
    )
    .await?;
    if cfg.progress {
        eprintln!("{} localnet up in {}", app.name(), net.net.dir.display());
    }
    loadgen::run(&Target::of_localnet(&net.net), &net.keyring, cfg).await
}

async fn print_status(net: &Localnet, out: Output) -> anyhow::Result<i32> {
    let status = net.status().await;
    if out == Output::Json {
        print_json(&status)?;
    } else {
        println!(
            "{:<12} {:<24} {:<9} {:>7}  app hash",
            "node", "rpc", "processes", "height"
        );
        for s in &status {
            let procs = match (s.app_running, s.cometbft_running) {
                (true, true) => "up",
                (false, false) => "down",
                (true, false) => "app only",
                (false, true) => "cmt only",
            };
            let height = s.height.map_or("-".to_string(), |h| h.to_string());
            println!(
                "{:<12} {:<24} {:<9} {:>7}  {}",
                s.name,
                s.rpc,
                procs,
                height,
                s.app_hash.as_deref().unwrap_or("-")
            );
        }
    }
    // Exit 3 when a node does not answer, so scripts can wait on `localnet status`.
    Ok(if status.iter().any(|s| s.height.is_none()) {
        3
    } else {
        0
    })
}

/// Parses arguments, for tests of the CLI's defaults.
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let cli = parse_from(["medledger", "query", "consent", "c-1"]).expect("parses");
        assert_eq!(cli.output, Output::Text);
        assert!(matches!(
            cli.command,
            Command::Query(QueryArgs {
                prove: false,
                height: 0,
                ..
            })
        ));
        let cli = parse_from([
            "medledger",
            "tx",
            "--from",
            "alice",
            "consent",
            "grant",
            "--grantee",
            "hospital-a",
            "--class",
            "Observation",
            "--purpose",
            "TREAT",
        ])
        .expect("parses");
        assert!(matches!(cli.command, Command::Tx(_)));
    }

    #[test]
    fn bench_defaults_parse() {
        let cli = parse_from(["medledger", "bench", "grid", "--duration", "5"]).expect("parses");
        let Command::Bench(BenchCmd::Grid {
            rates,
            connections,
            base_port,
            ..
        }) = cli.command
        else {
            unreachable!("bench grid parses as a grid")
        };
        assert_eq!(rates, vec![500, 1000, 2000]);
        assert_eq!(connections, vec![1, 2, 4]);
        assert_eq!(base_port, BENCH_BASE_PORT);
        let cli =
            parse_from(["medledger", "bench", "compare", "--duration", "60"]).expect("parses");
        assert!(matches!(
            cli.command,
            Command::Bench(BenchCmd::Compare {
                rate: 200,
                connections: 2,
                ..
            })
        ));
    }

    #[test]
    fn grant_requires_a_purpose() {
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "consent",
            "grant",
            "--grantee",
            "h",
            "--class",
            "x"
        ])
        .is_err());
    }
}

//! The command line: `medledger start | init | genesis | keys | tx | query | verify | replay |
//! guardian | localnet | gateway | vault | web | bench`, one module per command group. Each leaf command
//! is a clap `Args` struct with its own `run` (a tx command: `into_msg`, which `tx` signs and
//! sends; a query: `run` on a `read::Reader`), and each group a thin `match` that dispatches to
//! them. `localnet` and `bench` are dev tools, behind the default `dev-tools` feature: a
//! validator built with `--no-default-features` has neither them nor the load generator.

#[cfg(feature = "dev-tools")]
mod bench;
mod claims;
mod deploy;
mod entity;
mod gateway;
mod governance;
mod guardian;
mod keys;
#[cfg(feature = "dev-tools")]
mod localnet;
mod query;
mod read;
mod render;
mod replay;
mod rules;
mod smart;
mod start;
mod tx;
mod vault;
mod verify;
mod web;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use medledger_client::Keyring;
use serde::Serialize;

#[cfg(feature = "dev-tools")]
pub use bench::{BenchCmd, BroadcastArg, LoadTiming, BENCH_BASE_PORT, BENCH_CHAIN_ID};
pub use deploy::{GenesisCmd, InitArgs};
pub use gateway::{GatewayCmd, GatewayStartArgs};
pub use guardian::GuardianCmd;
pub use keys::KeysCmd;
#[cfg(feature = "dev-tools")]
pub use localnet::LocalnetCmd;
pub use query::{QueryArgs, QueryCmd};
pub use replay::ReplayArgs;
pub use start::StartArgs;
pub use tx::{AccessTx, ActionArg, ConsentTx, PatientTx, PurposeArg, TxArgs, TxCmd, VerdictArg};
pub use vault::VaultCmd;
pub use verify::{ExportFormat, VerifyArgs, VerifyCmd};
pub use web::WebCmd;

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
    /// Log format on stderr: `text` for people, `json` (one object per line) for a log pipeline.
    #[arg(long, global = true, env = "MEDLEDGER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail: `-v` debug, `-vv` trace (`MEDLEDGER_LOG`, an env filter, wins).
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less log detail: `-q` warnings and errors only, `-qq` errors only.
    #[arg(short = 'q', long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people.
    Text,
    /// One JSON object per line.
    Json,
}

impl Cli {
    /// The log level `-v`/`-q` ask for (`info` without either).
    pub fn log_level(&self) -> &'static str {
        match (self.verbose, self.quiet) {
            (0, 0) => "info",
            (1, _) => "debug",
            (v, _) if v >= 2 => "trace",
            (_, 1) => "warn",
            _ => "error",
        }
    }
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
    /// Set up this member's node for a new consortium: keys, CometBFT home, member.json.
    Init(InitArgs),
    /// Assemble the consortium's genesis from the members' member.json; install it on a node.
    #[command(subcommand)]
    Genesis(GenesisCmd),
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
    Replay(ReplayArgs),
    /// Guardians' part in a patient's key recovery.
    #[command(subcommand)]
    Guardian(GuardianCmd),
    /// Run a 4-validator consortium on this machine.
    #[cfg(feature = "dev-tools")]
    #[command(subcommand)]
    Localnet(LocalnetCmd),
    /// A member's record-vault gateway: run it, register it on the ledger.
    #[command(subcommand)]
    Gateway(GatewayCmd),
    /// Records in the members' vaults: store, read (with a committed access log), erase.
    #[command(subcommand)]
    Vault(VaultCmd),
    /// The patient and auditor pages' release: its hash, and whether a gateway serves the one
    /// approved on chain.
    #[command(subcommand)]
    Web(WebCmd),
    /// Load benchmarks: committed tx/s, submit→commit latency, CPU and memory (benches/README.md).
    #[cfg(feature = "dev-tools")]
    #[command(subcommand)]
    Bench(BenchCmd),
}

/// Node selection shared by `tx` and `query`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// CometBFT RPC of the node to talk to.
    #[arg(long, env = "MEDLEDGER_NODE", default_value = "http://127.0.0.1:26657")]
    pub node: String,
}

/// What every command gets besides its own arguments.
pub struct Ctx {
    /// `--home`.
    pub home: PathBuf,
    /// The keyring in `<home>/keys`.
    pub keyring: Keyring,
    /// `--output`.
    pub out: Output,
    /// `-q`/`--quiet`: no progress lines (the benches).
    pub quiet: bool,
}

/// The exit status of `medledger`: every number a command exits with, named. Scripts rely on
/// them; never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done (a tx: applied; `verify`: verified).
    Ok = 0,
    /// `tx`: the chain refused the tx (CheckTx, or in its block). `web check`: the gateway
    /// does not serve the release approved on chain.
    Refused = 1,
    /// Any command: it failed with an error (printed as `error: …`).
    Failed = 2,
    /// `localnet status`: a node does not answer (scripts wait on it).
    NodeDown = 3,
    /// `verify`: the answer did not verify (`NOT VERIFIED: …`).
    NotVerified = 4,
    /// `replay`: a replayed app hash differs from the one the validators signed.
    Diverged = 5,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Runs the CLI.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let ctx = Ctx {
        keyring: Keyring::new(cli.home.join("keys")),
        home: cli.home,
        out: cli.output,
        quiet: cli.quiet > 0,
    };
    match cli.command {
        Command::Start(a) => a.run().await,
        Command::Init(a) => a.run(&ctx).await,
        Command::Genesis(g) => g.run(&ctx).await,
        Command::Keys(k) => k.run(&ctx).await,
        Command::Tx(t) => t.run(&ctx).await,
        Command::Query(q) => q.run(&ctx).await,
        Command::Verify(v) => v.run(&ctx).await,
        Command::Guardian(g) => g.run(&ctx).await,
        Command::Replay(r) => r.run(&ctx).await,
        #[cfg(feature = "dev-tools")]
        Command::Localnet(l) => l.run(&ctx).await,
        Command::Gateway(g) => g.run(&ctx).await,
        Command::Vault(v) => v.run(&ctx).await,
        Command::Web(w) => w.run(&ctx).await,
        #[cfg(feature = "dev-tools")]
        Command::Bench(b) => {
            // Ctrl-C drops the bench future, and with it any throwaway localnet, which stops its
            // processes and deletes its directory.
            tokio::select! {
                r = b.run(&ctx) => r,
                _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            }
        }
    }
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
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

    /// `-v`/`-q` set the log level and `--log-format` the format, anywhere on the line.
    #[test]
    fn log_flags_parse() {
        let cli = parse_from(["medledger", "query", "consent", "c-1"]).expect("parses");
        assert_eq!((cli.log_level(), cli.log_format), ("info", LogFormat::Text));
        let cli = parse_from(["medledger", "-vv", "query", "consent", "c-1"]).expect("parses");
        assert_eq!(cli.log_level(), "trace");
        let cli = parse_from([
            "medledger",
            "-v",
            "query",
            "--log-format",
            "json",
            "consent",
            "c-1",
        ])
        .expect("parses");
        assert_eq!(
            (cli.log_level(), cli.log_format),
            ("debug", LogFormat::Json)
        );
        let cli = parse_from(["medledger", "keys", "list", "--quiet"]).expect("parses");
        assert_eq!(cli.log_level(), "warn");
        let cli = parse_from(["medledger", "-qq", "keys", "list"]).expect("parses");
        assert_eq!(cli.log_level(), "error");
        assert!(parse_from(["medledger", "-v", "-q", "keys", "list"]).is_err());
    }

    /// `-q` also silences a bench's progress lines (it was the bench's own `--quiet`).
    #[cfg(feature = "dev-tools")]
    #[test]
    fn quiet_parses_after_the_dev_tools() {
        let cli = parse_from(["medledger", "bench", "load", "--quiet"]).expect("parses");
        assert_eq!(cli.log_level(), "warn");
        let cli = parse_from(["medledger", "-qq", "localnet", "status"]).expect("parses");
        assert_eq!(cli.log_level(), "error");
        assert!(parse_from(["medledger", "-v", "-q", "localnet", "status"]).is_err());
    }

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
    fn vault_and_gateway_parse() {
        let cli = parse_from([
            "medledger",
            "vault",
            "get",
            "--from",
            "hospital-a",
            "--record",
            "obs-1",
            "--purpose",
            "TREAT",
            "-o",
            "json",
        ])
        .expect("parses");
        assert_eq!(cli.output, Output::Json);
        assert!(matches!(cli.command, Command::Vault(VaultCmd::Get(_))));
        let cli = parse_from([
            "medledger",
            "gateway",
            "start",
            "--data",
            "d",
            "--member",
            "lab-b",
            "--admin-key",
            "lab-b",
            "--kek",
            "k",
            "--box-key",
            "b",
            "--node",
            "http://127.0.0.1:26667",
            "--genesis",
            "g.json",
        ])
        .expect("parses");
        let Command::Gateway(GatewayCmd::Start(a)) = cli.command else {
            unreachable!("gateway start parses")
        };
        assert_eq!(a.listen, "127.0.0.1:26659");
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

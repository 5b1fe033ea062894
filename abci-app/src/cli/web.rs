//! `medledger web hash | check URL`: the release of the patient and auditor pages
//! (docs/privacy.md, "Code trust"). `hash` prints the release hash of the pages this binary
//! embeds (what a SetWebRelease proposal approves); `check` recomputes the release a gateway
//! serves from its manifest and files and compares it with the release approved on chain.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use medledger_client::verify::{verify_key, Trust};
use medledger_client::{Client, ProvenAnswer};
use medledger_gateway::pages;
use medledger_tx::keys;
use medledger_tx::pb::WebRelease;
use prost::Message;
use serde::Serialize;

use super::{print_json, Ctx, Exit, NodeArgs, Output};

/// `web` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebCmd {
    /// Print the release hash of the pages this binary embeds (and, with -o json, its manifest):
    /// the value a SetWebRelease proposal approves.
    Hash,
    /// Fetch the manifest and every file of the pages a gateway serves, recompute its release
    /// hash, and compare it with the release approved on chain (`params/web-release`, read with
    /// a proof). Exit 0 on a match, 1 when they differ, when a served file differs from its
    /// manifest line or when no release is approved.
    Check(WebCheckArgs),
}

impl WebCmd {
    /// Runs `web …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            WebCmd::Hash => hash(ctx.out),
            WebCmd::Check(a) => a.run(ctx).await,
        }
    }
}

#[derive(Serialize)]
struct FileLine {
    path: String,
    sha256: String,
}

fn hash(out: Output) -> anyhow::Result<Exit> {
    let b = pages::bundle().map_err(|e| anyhow::anyhow!("the embedded pages: {e}"))?;
    match out {
        Output::Text => println!("{}", hex::encode(b.hash)),
        Output::Json => print_json(&serde_json::json!({
            "release": hex::encode(b.hash),
            "files": b.manifest.iter().map(|e| FileLine {
                path: e.path.clone(),
                sha256: hex::encode(e.sha256),
            }).collect::<Vec<_>>(),
        }))?,
    }
    Ok(Exit::Ok)
}

/// `web check`.
#[derive(Debug, Args)]
pub struct WebCheckArgs {
    /// The gateway's base URL, e.g. http://127.0.0.1:26659.
    url: String,
    /// The node whose state says which release is approved.
    #[command(flatten)]
    node: NodeArgs,
    /// The consortium's genesis.json: verify the approved release end to end, against an app
    /// hash signed by > 2/3 of the consortium (as `medledger verify`), not the node's header.
    #[arg(long)]
    genesis: Option<PathBuf>,
    /// With --genesis: against a BLS checkpoint certificate instead of a light-client header.
    #[arg(long, requires = "genesis")]
    certificate: bool,
}

/// A file not served as its manifest line says.
#[derive(Serialize)]
struct Problem {
    path: String,
    problem: String,
}

/// `web check -o json`.
#[derive(Serialize)]
struct Report {
    gateway: String,
    /// `match`, `mismatch` or `not_approved`.
    result: &'static str,
    /// The release hash recomputed from what the gateway serves.
    served: String,
    /// The approved release (absent: none approved).
    approved: Option<String>,
    version: Option<String>,
    /// The block that approved it (0: genesis).
    approved_height: Option<u64>,
    /// The state height read, and the app hash its proof verified against.
    read_height: u64,
    verified_against: String,
    /// What vouched for that app hash: `node header` (the node's committed header, as
    /// `query --prove`), or with --genesis `light-client header` or `BLS certificate`.
    verified_by: String,
    /// Files served otherwise than the manifest says, or not fetched.
    problems: Vec<Problem>,
    /// Files that differ between the served and the approved manifest, when this binary embeds
    /// the approved release (so knows its manifest); empty otherwise.
    differing_files: Vec<String>,
    /// The gateway's own account (`GET /pages/release`).
    gateway_says: Option<String>,
}

impl WebCheckArgs {
    async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let served = pages::fetch_served(&self.url)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let client = Client::new(&self.node.node)?;
        let (value, height, app_hash, verified_by) = match &self.genesis {
            Some(genesis) => {
                let trust = Trust::from_genesis(genesis, self.certificate)?;
                let r = verify_key(&client, &trust, &keys::web_release(), 0)
                    .await
                    .context("verifying params/web-release")?;
                let by = r.attestation.method.to_string();
                (r.value, r.height, r.attestation.app_hash, by)
            }
            None => {
                let ProvenAnswer {
                    value,
                    height,
                    app_hash,
                    ..
                } = client
                    .query_proven(&keys::web_release(), 0)
                    .await
                    .context("reading params/web-release with a proof")?;
                (value, height, app_hash, "node header".to_string())
            }
        };
        let approved = value
            .map(|v| WebRelease::decode(v.as_slice()))
            .transpose()
            .context("params/web-release does not decode")?;
        let served_hex = hex::encode(served.hash);
        let result = match &approved {
            None => "not_approved",
            Some(w) if w.bundle_sha256 == served.hash && served.problems.is_empty() => "match",
            Some(_) => "mismatch",
        };
        let differing_files = match (&approved, pages::bundle()) {
            (Some(w), Ok(mine)) if w.bundle_sha256 == mine.hash && mine.hash != served.hash => {
                differing(&mine.manifest, &served.manifest)
            }
            _ => Vec::new(),
        };
        let report = Report {
            gateway: self.url.clone(),
            result,
            served: served_hex,
            approved: approved.as_ref().map(|w| hex::encode(&w.bundle_sha256)),
            version: approved.as_ref().map(|w| w.version.clone()),
            approved_height: approved.as_ref().map(|w| w.height),
            read_height: height,
            verified_against: hex::encode_upper(app_hash),
            verified_by,
            problems: served
                .problems
                .iter()
                .map(|(path, why)| Problem {
                    path: path.clone(),
                    problem: why.clone(),
                })
                .collect(),
            differing_files,
            gateway_says: served.status.map(|s| s.message),
        };
        match ctx.out {
            Output::Json => print_json(&report)?,
            Output::Text => print_text(&report),
        }
        Ok(if result == "match" {
            Exit::Ok
        } else {
            Exit::Refused
        })
    }
}

/// Paths added, removed or changed from `approved` to `served`, sorted.
fn differing(
    approved: &[medledger_tx::rules::web_release::ManifestEntry],
    served: &[medledger_tx::rules::web_release::ManifestEntry],
) -> Vec<String> {
    let a: BTreeMap<&str, [u8; 32]> = approved
        .iter()
        .map(|e| (e.path.as_str(), e.sha256))
        .collect();
    let s: BTreeMap<&str, [u8; 32]> = served.iter().map(|e| (e.path.as_str(), e.sha256)).collect();
    let mut out = Vec::new();
    for (path, d) in &a {
        match s.get(path) {
            None => out.push(format!("{path} (missing)")),
            Some(x) if x != d => out.push(format!("{path} (changed)")),
            _ => {}
        }
    }
    for path in s.keys().filter(|p| !a.contains_key(*p)) {
        out.push(format!("{path} (added)"));
    }
    out.sort();
    out
}

fn print_text(r: &Report) {
    println!("gateway:  {}", r.gateway);
    println!("served:   {}", r.served);
    match (&r.approved, &r.version, r.approved_height) {
        (Some(a), Some(v), Some(h)) => println!("approved: {a} ({v}, height {h})"),
        _ => println!("approved: none"),
    }
    println!(
        "          read at height {}, proven against app hash {} ({})",
        r.read_height, r.verified_against, r.verified_by
    );
    for p in &r.problems {
        println!("file {}: {}", p.path, p.problem);
    }
    for f in &r.differing_files {
        println!("differs from the approved release: {f}");
    }
    match r.result {
        "match" => println!("MATCH: the gateway serves the release approved on chain"),
        "not_approved" => println!("NOT APPROVED: no release of the pages is approved on chain"),
        _ if r.approved.as_deref() == Some(r.served.as_str()) => println!(
            "MISMATCH: the manifest is the approved release, but the gateway does not serve its files as listed"
        ),
        _ => println!("MISMATCH: the gateway serves a release other than the one approved on chain"),
    }
}

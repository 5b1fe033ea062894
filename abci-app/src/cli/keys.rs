//! `medledger keys`: the local keyring.

use clap::{Args, Subcommand};
use medledger_client::{Client, Keyring};
use medledger_tx::ids;
use serde::Serialize;

use super::{print_json, Ctx, Exit, NodeArgs, Output};

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create a new random Ed25519 key.
    Add(KeysAddArgs),
    /// List keys.
    List(KeysListArgs),
    /// Show a key's public key and the patient id it would register as.
    Show(KeysShowArgs),
    /// Prove that you hold a key, for someone else's tx that hands rights to it (a member
    /// enrolling you as a patient, registering you as a practitioner; your own rotation).
    /// Prints the public key and the proof (hex) to give them; the key never leaves here.
    Prove(KeysProveArgs),
}

impl KeysCmd {
    /// Runs `keys …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            KeysCmd::Add(a) => a.run(ctx),
            KeysCmd::List(a) => a.run(ctx),
            KeysCmd::Show(a) => a.run(ctx),
            KeysCmd::Prove(a) => a.run(ctx).await,
        }
    }
}

/// `keys add NAME`.
#[derive(Debug, Args)]
pub struct KeysAddArgs {
    /// Name of the key.
    name: String,
}

impl KeysAddArgs {
    /// Creates the key and prints it.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        ctx.keyring.add(&self.name)?;
        print_keys(&[view(&ctx.keyring, &self.name)?], ctx.out)
    }
}

/// `keys list`.
#[derive(Debug, Args)]
pub struct KeysListArgs {}

impl KeysListArgs {
    /// Prints every key of the keyring.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let views = ctx
            .keyring
            .list()?
            .iter()
            .map(|n| view(&ctx.keyring, n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        print_keys(&views, ctx.out)
    }
}

/// `keys show NAME`.
#[derive(Debug, Args)]
pub struct KeysShowArgs {
    /// Name of the key.
    name: String,
}

impl KeysShowArgs {
    /// Prints the key.
    pub fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        print_keys(&[view(&ctx.keyring, &self.name)?], ctx.out)
    }
}

/// `keys prove NAME --for SUBJECT --purpose PURPOSE`.
#[derive(Debug, Args)]
pub struct KeysProveArgs {
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
}

impl KeysProveArgs {
    /// Prints the key's public key and its proof of possession.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let key = ctx.keyring.get(&self.name)?;
        let chain_id = match self.chain_id {
            Some(c) => c,
            None => Client::new(&self.node.node)?.chain_id().await?,
        };
        let (purpose, subject) = (self.purpose, self.subject);
        let proof = medledger_tx::keyproof::prove(&key, &chain_id, &purpose, &subject);
        let public_key = hex::encode(key.verifying_key().to_bytes());
        if ctx.out == Output::Json {
            print_json(&serde_json::json!({
                "public_key": public_key, "proof": hex::encode(proof),
                "purpose": purpose, "subject": subject, "chain_id": chain_id,
            }))?;
        } else {
            println!("public key {public_key}");
            println!("proof      {}", hex::encode(proof));
        }
        Ok(Exit::Ok)
    }
}

#[derive(Serialize)]
struct KeyView {
    name: String,
    public_key: String,
    patient_id: String,
}

/// Key `name` of the keyring: its public key and the patient id it would register as.
fn view(keyring: &Keyring, name: &str) -> anyhow::Result<KeyView> {
    let pk = keyring.get(name)?.verifying_key().to_bytes();
    Ok(KeyView {
        name: name.into(),
        public_key: hex::encode(pk),
        patient_id: ids::patient_id(&pk),
    })
}

fn print_keys(views: &[KeyView], out: Output) -> anyhow::Result<Exit> {
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
    Ok(Exit::Ok)
}

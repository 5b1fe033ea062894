//! `medledger keys`: the local keyring.

use clap::Subcommand;
use medledger_client::{Client, Keyring};
use medledger_tx::ids;
use serde::Serialize;

use super::{print_json, Ctx, Exit, NodeArgs, Output};

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

impl KeysCmd {
    /// Runs `keys …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (keyring, out) = (&ctx.keyring, ctx.out);
        let (name, subject, purpose, chain_id, node) = match self {
            KeysCmd::Prove {
                name,
                subject,
                purpose,
                chain_id,
                node,
            } => (name, subject, purpose, chain_id, node),
            other => return list_add_show(keyring, other, out),
        };
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
        Ok(Exit::Ok)
    }
}

#[derive(Serialize)]
struct KeyView {
    name: String,
    public_key: String,
    patient_id: String,
}

fn list_add_show(keyring: &Keyring, cmd: KeysCmd, out: Output) -> anyhow::Result<Exit> {
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
        KeysCmd::Prove { .. } => anyhow::bail!("internal: proofs are made by KeysCmd::run"),
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
    Ok(Exit::Ok)
}

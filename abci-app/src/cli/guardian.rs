//! `medledger guardian`: a guardian's part in a patient's key recovery.

use anyhow::Context;
use clap::{Args, Subcommand};
use medledger_client::Client;
use medledger_tx::keys;
use medledger_tx::pb;
use prost::Message;

use super::{rules, Ctx, Exit, NodeArgs};

/// `guardian` subcommands.
#[derive(Debug, Subcommand)]
pub enum GuardianCmd {
    /// Approve moving a patient to a new key (prints `GUARDIAN_KEY:SIGNATURE` for `tx patient recover`).
    Approve(ApproveArgs),
    /// Show a patient's guardians and any pending guardian change or key rotation (with the
    /// block time it takes effect): a change the patient did not make is a stolen key, and the
    /// guardians recover before that time to cancel it.
    Show(GuardianShowArgs),
}

impl GuardianCmd {
    /// Runs `guardian …`.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        match self {
            GuardianCmd::Approve(a) => a.run(ctx).await,
            GuardianCmd::Show(a) => a.run().await,
        }
    }
}

/// `guardian approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
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
}

impl ApproveArgs {
    /// Prints the approval for the patient to collect.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (keyring, patient) = (&ctx.keyring, &self.patient);
        let guardian = keyring.get(&self.from)?;
        let new_key = rules::resolve_key(keyring, &self.new_key)?;
        let client = Client::new(&self.node.node)?;
        let chain_id = client.chain_id().await?;
        let (g, _) = client.query_raw(&keys::guardians(patient), 0).await?;
        let g = g
            .map(|b| pb::Guardians::decode(b.as_slice()))
            .transpose()?
            .context("the patient has no guardians")?;
        let (p, _) = client.query_raw(&keys::patient(patient), 0).await?;
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
            guardian_set_hash: medledger_tx::recovery::guardian_set_hash(
                &g.guardian_keys,
                g.threshold,
            ),
        };
        if let Some(p) = pending(&client, patient).await? {
            eprintln!(
                "note: patient {patient} has a pending change ({}); this approval binds the \
                 guardians and key in force now and, used before it takes effect, cancels it",
                describe(&p)
            );
        }
        let sig = medledger_tx::recovery::approve(&guardian, &chain_id, patient, &new_key, &at);
        println!(
            "{}:{}",
            hex::encode(guardian.verifying_key().to_bytes()),
            hex::encode(sig)
        );
        Ok(Exit::Ok)
    }
}

/// `guardian show`.
#[derive(Debug, Args)]
pub struct GuardianShowArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// The node to read from.
    #[command(flatten)]
    node: NodeArgs,
}

impl GuardianShowArgs {
    /// Prints the stored guardians and what is pending.
    pub async fn run(self) -> anyhow::Result<Exit> {
        let patient = &self.patient;
        let client = Client::new(&self.node.node)?;
        let (g, _) = client.query_raw(&keys::guardians(patient), 0).await?;
        match g.map(|b| pb::Guardians::decode(b.as_slice())).transpose()? {
            Some(g) if !g.guardian_keys.is_empty() => {
                println!(
                    "guardians: {} of {} (recoveries so far: {})",
                    g.threshold,
                    g.guardian_keys.len(),
                    g.recoveries
                );
                for k in &g.guardian_keys {
                    println!("  {}", hex::encode(k));
                }
            }
            _ => println!("guardians: none"),
        }
        match pending(&client, patient).await? {
            Some(p) => println!(
                "PENDING: {} (a part is in force once the block time reaches it; the guardians' \
                 recovery before then cancels it)",
                describe(&p)
            ),
            None => println!("pending: none"),
        }
        Ok(Exit::Ok)
    }
}

/// The patient's pending guardian change or rotation, if any (`guardian-change/{patient}`).
async fn pending(
    client: &Client,
    patient: &str,
) -> anyhow::Result<Option<pb::PendingPatientChange>> {
    let (p, _) = client.query_raw(&keys::guardian_change(patient), 0).await?;
    Ok(p.map(|b| pb::PendingPatientChange::decode(b.as_slice()))
        .transpose()?)
}

/// One line per pending part, with the block time it takes effect.
fn describe(p: &pb::PendingPatientChange) -> String {
    let mut parts = Vec::new();
    if let Some(g) = &p.guardians {
        parts.push(format!(
            "guardians {} of {} from block time {} (asked at height {})",
            g.threshold,
            g.guardian_keys.len(),
            p.guardians_effective_time,
            p.guardians_requested_height
        ));
    }
    if !p.new_key.is_empty() {
        parts.push(format!(
            "rotation to key {} from block time {} (asked at height {})",
            hex::encode(&p.new_key),
            p.key_effective_time,
            p.key_requested_height
        ));
    }
    parts.join("; ")
}

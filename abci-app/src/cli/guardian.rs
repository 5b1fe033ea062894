//! `medledger guardian`: a guardian's part in a patient's key recovery.

use anyhow::Context;
use clap::Subcommand;
use medledger_client::Client;
use medledger_tx::keys;
use medledger_tx::pb;
use prost::Message;

use super::{rules, Ctx, Exit, NodeArgs};

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

impl GuardianCmd {
    /// Runs `guardian …`: prints the approval for the patient to collect.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (keyring, cmd) = (&ctx.keyring, self);
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
            guardian_set_hash: medledger_tx::recovery::guardian_set_hash(
                &g.guardian_keys,
                g.threshold,
            ),
        };
        let sig = medledger_tx::recovery::approve(&guardian, &chain_id, &patient, &new_key, &at);
        println!(
            "{}:{}",
            hex::encode(guardian.verifying_key().to_bytes()),
            hex::encode(sig)
        );
        Ok(Exit::Ok)
    }
}

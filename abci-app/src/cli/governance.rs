//! `medledger tx --from ADMIN gov propose …|vote …`: consortium governance from the command line.
//! Proposals and votes are signed by a member's admin key; `medledger query proposal ID` reads
//! the tally. The rules are in docs/rules.md ("Governance").

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medledger_tx::pb::{self, submit_proposal::Action, tx_body::Msg, MemberKind};

use medledger_client::keyring::Keyring;
use medledger_client::Client;

/// Governance transactions.
#[derive(Debug, Subcommand)]
pub enum GovTx {
    /// Propose a change to the consortium; the submission is the proposer's yes vote.
    #[command(subcommand)]
    Propose(ProposeCmd),
    /// Vote on an open proposal (one vote per member, weighted by its validator power).
    Vote {
        /// The proposal id (printed when it was submitted: `proposal_id=…`).
        id: u64,
        /// Vote yes.
        #[arg(long, conflicts_with = "no", required_unless_present = "no")]
        yes: bool,
        /// Vote no.
        #[arg(long)]
        no: bool,
    },
}

/// When a proposal stops being able to pass.
#[derive(Debug, Args)]
pub struct Deadline {
    /// The last height at which the proposal may pass: a height, or `+N` for N blocks after the
    /// node's latest height; at most 86,400 blocks ahead (`MAX_VOTING_PERIOD`, about a day).
    #[arg(long)]
    pub deadline: String,
}

/// The kinds of consortium members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// A hospital.
    Hospital,
    /// A laboratory.
    Lab,
    /// An insurer.
    Insurer,
    /// A research institution.
    Research,
    /// A regulator.
    Regulator,
}

impl From<KindArg> for MemberKind {
    fn from(k: KindArg) -> MemberKind {
        match k {
            KindArg::Hospital => MemberKind::Hospital,
            KindArg::Lab => MemberKind::Lab,
            KindArg::Insurer => MemberKind::Insurer,
            KindArg::Research => MemberKind::Research,
            KindArg::Regulator => MemberKind::Regulator,
        }
    }
}

/// What to propose.
#[derive(Debug, Subcommand)]
pub enum ProposeCmd {
    /// Admit a member, optionally with a validator.
    AddMember {
        /// Member id, e.g. `lab-e`.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Kind of member.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// The member's admin public key: 64 hex characters, or the name of a key in the keyring.
        #[arg(long)]
        admin_key: String,
        /// The validator's CometBFT consensus key: 64 hex characters, or a file holding it
        /// (`priv_validator_key.json`, or the output of `cometbft show-validator`).
        #[arg(long, requires = "bls_key_file")]
        validator_key: Option<String>,
        /// The validator's voting power.
        #[arg(long, default_value_t = 10, requires = "validator_key")]
        power: u64,
        /// The validator's BLS key file (from `localnet`, or `keys`): its public key and proof of
        /// possession go into the proposal, never its secret.
        #[arg(long, requires = "validator_key")]
        bls_key_file: Option<std::path::PathBuf>,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Admit the member a `member.json` describes (written by `medledger init` on its host),
    /// with its validator: the ids, admin key, consensus key and BLS key with its proof of
    /// possession, checked as genesis assembly checks them.
    Admit {
        /// The newcomer's member.json.
        member_file: std::path::PathBuf,
        /// The validator's voting power.
        #[arg(long, default_value_t = 10)]
        power: u64,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Remove a member: its admin key is retired and its validators leave the set.
    RemoveMember {
        /// Member id.
        member_id: String,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Change the voting power of a member's validator.
    ChangePower {
        /// Member id.
        member_id: String,
        /// The new power (at least 1).
        #[arg(long)]
        power: u64,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Schedule a software upgrade: from block HEIGHT on, only a medledger that runs app
    /// version VERSION executes blocks (docs/deploy.md, "Upgrades").
    Upgrade {
        /// The release's name, e.g. v2.
        name: String,
        /// The block that applies the upgrade.
        #[arg(long)]
        height: u64,
        /// The app version from that block on (the chain's current one plus 1).
        #[arg(long)]
        app_version: u64,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Replace a member's admin key; the old key signs nothing afterwards.
    RotateAdmin {
        /// Member id.
        member_id: String,
        /// The new admin public key: 64 hex characters, or the name of a key in the keyring.
        #[arg(long)]
        new_key: String,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Make a practitioner an auditor: through a gateway they read what the members they audit
    /// read (every member, or the one `--member` names), while they are active. The
    /// practitioner must be registered when the proposal passes, or it FAILS.
    GrantAuditor {
        /// The practitioner's DID (`did:medledger:…`).
        #[arg(long)]
        did: String,
        /// Audit this member only (its id); without it, every member.
        #[arg(long)]
        member: Option<String>,
        #[command(flatten)]
        deadline: Deadline,
    },
    /// Withdraw a practitioner's auditor grant.
    RevokeAuditor {
        /// The practitioner's DID.
        #[arg(long)]
        did: String,
        #[command(flatten)]
        deadline: Deadline,
    },
}

/// The message of a governance command.
pub async fn to_msg(cmd: GovTx, client: &Client, keyring: &Keyring) -> anyhow::Result<Msg> {
    let (action, deadline) = match cmd {
        GovTx::Vote { id, yes, no } => {
            return Ok(Msg::VoteProposal(pb::VoteProposal {
                proposal_id: id,
                yes: yes && !no,
            }))
        }
        GovTx::Propose(p) => match p {
            ProposeCmd::AddMember {
                id,
                name,
                kind,
                admin_key,
                validator_key,
                power,
                bls_key_file,
                deadline,
            } => {
                let mut add = pb::AddMember {
                    id,
                    name,
                    kind: MemberKind::from(kind) as i32,
                    admin_key: public_key(&admin_key, keyring)?.to_vec(),
                    ..Default::default()
                };
                if let (Some(key), Some(bls)) = (validator_key, bls_key_file) {
                    // Only the public half is read: a file without `secret_key` does.
                    let bls: serde_json::Value = serde_json::from_slice(
                        &std::fs::read(&bls)
                            .with_context(|| format!("reading {}", bls.display()))?,
                    )
                    .context("BLS key file")?;
                    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
                        hex::decode(bls[name].as_str().unwrap_or_default())
                            .with_context(|| format!("BLS key file: {name} is not hex"))
                    };
                    add.validator_pub_key = consensus_key(&key)?.to_vec();
                    add.power = power;
                    add.bls_key = field("public_key")?;
                    add.bls_pop = field("proof_of_possession")?;
                }
                (Action::AddMember(add), deadline)
            }
            ProposeCmd::Admit {
                member_file,
                power,
                deadline,
            } => {
                let m = medledger_devnet::deploy::read_members(&[member_file])?.remove(0);
                medledger_devnet::deploy::check_member(&m)?;
                let kind = match m.kind.as_str() {
                    "hospital" => MemberKind::Hospital,
                    "lab" => MemberKind::Lab,
                    "insurer" => MemberKind::Insurer,
                    "research" => MemberKind::Research,
                    "regulator" => MemberKind::Regulator,
                    other => anyhow::bail!("member kind {other:?} is not one the ledger knows"),
                };
                let pub_key: tendermint::PublicKey =
                    serde_json::from_value(m.validator.pub_key.clone())?;
                let add = pb::AddMember {
                    id: m.id,
                    name: m.name,
                    kind: kind as i32,
                    admin_key: hex::decode(&m.admin_key)?,
                    validator_pub_key: pub_key.to_bytes(),
                    power,
                    bls_key: hex::decode(&m.validator.bls_key)?,
                    bls_pop: hex::decode(&m.validator.bls_pop)?,
                };
                (Action::AddMember(add), deadline)
            }
            ProposeCmd::RemoveMember {
                member_id,
                deadline,
            } => (
                Action::RemoveMember(pb::RemoveMember { member_id }),
                deadline,
            ),
            ProposeCmd::ChangePower {
                member_id,
                power,
                deadline,
            } => (
                Action::ChangePower(pb::ChangePower { member_id, power }),
                deadline,
            ),
            ProposeCmd::Upgrade {
                name,
                height,
                app_version,
                deadline,
            } => (
                Action::ScheduleUpgrade(pb::ScheduleUpgrade {
                    name,
                    height,
                    app_version,
                }),
                deadline,
            ),
            ProposeCmd::RotateAdmin {
                member_id,
                new_key,
                deadline,
            } => {
                let new_admin_key = public_key(&new_key, keyring)?.to_vec();
                (
                    Action::RotateAdminKey(pb::RotateAdminKey {
                        member_id,
                        new_admin_key,
                    }),
                    deadline,
                )
            }
            ProposeCmd::GrantAuditor {
                did,
                member,
                deadline,
            } => (
                Action::GrantAuditor(pb::GrantAuditor {
                    practitioner_did: did,
                    scope_member: member.unwrap_or_default(),
                }),
                deadline,
            ),
            ProposeCmd::RevokeAuditor { did, deadline } => (
                Action::RevokeAuditor(pb::RevokeAuditor {
                    practitioner_did: did,
                }),
                deadline,
            ),
        },
    };
    let deadline_height = deadline_height(&deadline.deadline, client).await?;
    Ok(Msg::SubmitProposal(pb::SubmitProposal {
        action: Some(action),
        deadline_height,
    }))
}

/// `H` or `+N` (N blocks after the node's latest height).
async fn deadline_height(arg: &str, client: &Client) -> anyhow::Result<u64> {
    match arg.strip_prefix('+') {
        Some(n) => {
            let n: u64 = n
                .parse()
                .with_context(|| format!("--deadline {arg}: want a height or +N"))?;
            anyhow::ensure!(
                n <= medledger_tx::limits::MAX_VOTING_PERIOD,
                "--deadline {arg}: the ledger accepts deadlines at most {} blocks ahead (VOTING_PERIOD_TOO_LONG)",
                medledger_tx::limits::MAX_VOTING_PERIOD
            );
            let latest = client.latest_height().await?;
            latest.checked_add(n).context("--deadline is too far ahead")
        }
        None => arg
            .parse()
            .with_context(|| format!("--deadline {arg}: want a height or +N")),
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    hex::decode(s).ok()?.try_into().ok()
}

/// 64 hex characters, or the public key of keyring entry `arg`.
fn public_key(arg: &str, keyring: &Keyring) -> anyhow::Result<[u8; 32]> {
    if let Some(k) = hex32(arg) {
        return Ok(k);
    }
    Ok(keyring
        .get(arg)
        .with_context(|| format!("{arg:?} is neither 64 hex characters nor a key in the keyring"))?
        .verifying_key()
        .to_bytes())
}

/// 64 hex characters, or a CometBFT key file: `priv_validator_key.json` (its `pub_key`) or the
/// `{"type": "tendermint/PubKeyEd25519", "value": …}` that `cometbft show-validator` prints.
fn consensus_key(arg: &str) -> anyhow::Result<[u8; 32]> {
    if let Some(k) = hex32(arg) {
        return Ok(k);
    }
    let bytes = std::fs::read(Path::new(arg))
        .with_context(|| format!("{arg:?} is neither 64 hex characters nor a readable key file"))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{arg}: not JSON"))?;
    let value = if json.get("pub_key").is_some() {
        json["pub_key"].clone()
    } else {
        json
    };
    let key: tendermint::PublicKey =
        serde_json::from_value(value).with_context(|| format!("{arg}: no CometBFT public key"))?;
    key.ed25519()
        .and_then(|k| k.as_bytes().try_into().ok())
        .with_context(|| format!("{arg}: the consensus key is not Ed25519"))
}

#[cfg(test)]
mod tests {
    use crate::cli::{parse_from, Command};

    #[test]
    fn governance_commands_parse() {
        let propose = [
            "medledger",
            "tx",
            "--from",
            "hospital-a",
            "gov",
            "propose",
            "add-member",
            "--id",
            "lab-e",
            "--name",
            "Lab E",
            "--kind",
            "lab",
            "--admin-key",
            "lab-e",
            "--validator-key",
            "k.json",
            "--bls-key-file",
            "bls.json",
            "--deadline",
            "+20",
        ];
        assert!(matches!(
            parse_from(propose).expect("parses").command,
            Command::Tx(_)
        ));
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "propose",
            "remove-member",
            "lab-e",
            "--deadline",
            "90"
        ])
        .is_ok());
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "propose",
            "change-power",
            "lab-b",
            "--power",
            "20",
            "--deadline",
            "9"
        ])
        .is_ok());
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "propose",
            "rotate-admin",
            "lab-b",
            "--new-key",
            "k2",
            "--deadline",
            "9"
        ])
        .is_ok());
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "vote",
            "3",
            "--yes"
        ])
        .is_ok());
        assert!(parse_from(["medledger", "query", "proposal", "3"]).is_ok());
        for grant in [
            &[
                "grant-auditor",
                "--did",
                "did:medledger:00",
                "--deadline",
                "+5",
            ][..],
            &[
                "grant-auditor",
                "--did",
                "did:medledger:00",
                "--member",
                "lab-b",
                "--deadline",
                "+5",
            ],
            &[
                "revoke-auditor",
                "--did",
                "did:medledger:00",
                "--deadline",
                "9",
            ],
        ] {
            let mut args = vec!["medledger", "tx", "--from", "a", "gov", "propose"];
            args.extend_from_slice(grant);
            assert!(parse_from(args.clone()).is_ok(), "{args:?}");
        }
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "propose",
            "grant-auditor",
            "--deadline",
            "9"
        ])
        .is_err());
    }

    #[test]
    fn a_vote_says_yes_or_no_and_a_validator_needs_its_bls_key() {
        assert!(parse_from(["medledger", "tx", "--from", "a", "gov", "vote", "3"]).is_err());
        assert!(parse_from([
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "vote",
            "3",
            "--yes",
            "--no"
        ])
        .is_err());
        let no_bls = [
            "medledger",
            "tx",
            "--from",
            "a",
            "gov",
            "propose",
            "add-member",
            "--id",
            "x",
            "--name",
            "X",
            "--kind",
            "lab",
            "--admin-key",
            "x",
            "--validator-key",
            "k.json",
            "--deadline",
            "9",
        ];
        assert!(parse_from(no_bls).is_err());
    }
}

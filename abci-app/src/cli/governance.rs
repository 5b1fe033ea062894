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
    Vote(VoteArgs),
}

impl GovTx {
    /// The message the command sends (a proposal's deadline may be read from the node).
    pub(super) async fn into_msg(self, client: &Client, keyring: &Keyring) -> anyhow::Result<Msg> {
        let (action, deadline) = match self {
            GovTx::Vote(v) => return Ok(v.into_msg()),
            GovTx::Propose(p) => p.action(keyring)?,
        };
        let deadline_height = deadline_height(&deadline.deadline, client).await?;
        Ok(Msg::SubmitProposal(pb::SubmitProposal {
            action: Some(action),
            deadline_height,
        }))
    }
}

/// `tx gov vote`.
#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The proposal id (printed when it was submitted: `proposal_id=…`).
    id: u64,
    /// Vote yes.
    #[arg(long, conflicts_with = "no", required_unless_present = "no")]
    yes: bool,
    /// Vote no.
    #[arg(long)]
    no: bool,
}

impl VoteArgs {
    fn into_msg(self) -> Msg {
        Msg::VoteProposal(pb::VoteProposal {
            proposal_id: self.id,
            yes: self.yes && !self.no,
        })
    }
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
    AddMember(AddMemberArgs),
    /// Admit the member a `member.json` describes (written by `medledger init` on its host),
    /// with its validator: the ids, admin key, consensus key and BLS key with its proof of
    /// possession, checked as genesis assembly checks them.
    Admit(AdmitArgs),
    /// Remove a member: its admin key is retired and its validators leave the set.
    RemoveMember(RemoveMemberArgs),
    /// Change the voting power of a member's validator.
    ChangePower(ChangePowerArgs),
    /// Schedule a software upgrade: from block HEIGHT on, only a medledger that runs app
    /// version VERSION executes blocks (docs/deploy.md, "Upgrades").
    Upgrade(UpgradeArgs),
    /// Replace a member's admin key; the old key signs nothing afterwards.
    RotateAdmin(RotateAdminArgs),
    /// Make a practitioner an auditor: through a gateway they read what the members they audit
    /// read (every member, or the one `--member` names), while they are active. The
    /// practitioner must be registered when the proposal passes, or it FAILS.
    GrantAuditor(GrantAuditorArgs),
    /// Withdraw a practitioner's auditor grant.
    RevokeAuditor(RevokeAuditorArgs),
    /// Approve a release of the patient and auditor pages: member gateways serve the pages only
    /// while the bundle they embed has this release hash (`medledger web hash` prints it).
    WebRelease(WebReleaseArgs),
}

impl ProposeCmd {
    /// What the proposal does, and its deadline.
    fn action(self, keyring: &Keyring) -> anyhow::Result<(Action, Deadline)> {
        match self {
            ProposeCmd::AddMember(a) => a.action(keyring),
            ProposeCmd::Admit(a) => a.action(),
            ProposeCmd::RemoveMember(a) => Ok(a.action()),
            ProposeCmd::ChangePower(a) => Ok(a.action()),
            ProposeCmd::Upgrade(a) => Ok(a.action()),
            ProposeCmd::RotateAdmin(a) => a.action(keyring),
            ProposeCmd::GrantAuditor(a) => Ok(a.action()),
            ProposeCmd::RevokeAuditor(a) => Ok(a.action()),
            ProposeCmd::WebRelease(a) => a.action(),
        }
    }
}

/// `tx gov propose add-member`.
#[derive(Debug, Args)]
pub struct AddMemberArgs {
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
}

impl AddMemberArgs {
    fn action(self, keyring: &Keyring) -> anyhow::Result<(Action, Deadline)> {
        let mut add = pb::AddMember {
            id: self.id,
            name: self.name,
            kind: MemberKind::from(self.kind) as i32,
            admin_key: public_key(&self.admin_key, keyring)?.to_vec(),
            ..Default::default()
        };
        if let (Some(key), Some(bls)) = (self.validator_key, self.bls_key_file) {
            // Only the public half is read: a file without `secret_key` does.
            let bls: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&bls).with_context(|| format!("reading {}", bls.display()))?,
            )
            .context("BLS key file")?;
            let field = |name: &str| -> anyhow::Result<Vec<u8>> {
                hex::decode(bls[name].as_str().unwrap_or_default())
                    .with_context(|| format!("BLS key file: {name} is not hex"))
            };
            add.validator_pub_key = consensus_key(&key)?.to_vec();
            add.power = self.power;
            add.bls_key = field("public_key")?;
            add.bls_pop = field("proof_of_possession")?;
        }
        Ok((Action::AddMember(add), self.deadline))
    }
}

/// `tx gov propose admit MEMBER.json`.
#[derive(Debug, Args)]
pub struct AdmitArgs {
    /// The newcomer's member.json.
    member_file: std::path::PathBuf,
    /// The validator's voting power.
    #[arg(long, default_value_t = 10)]
    power: u64,
    #[command(flatten)]
    deadline: Deadline,
}

impl AdmitArgs {
    fn action(self) -> anyhow::Result<(Action, Deadline)> {
        let m = medledger_devnet::deploy::read_members(&[self.member_file])?.remove(0);
        medledger_devnet::deploy::check_member(&m)?;
        let kind = match m.kind.as_str() {
            "hospital" => MemberKind::Hospital,
            "lab" => MemberKind::Lab,
            "insurer" => MemberKind::Insurer,
            "research" => MemberKind::Research,
            "regulator" => MemberKind::Regulator,
            other => anyhow::bail!("member kind {other:?} is not one the ledger knows"),
        };
        let pub_key: tendermint::PublicKey = serde_json::from_value(m.validator.pub_key.clone())?;
        let add = pb::AddMember {
            id: m.id,
            name: m.name,
            kind: kind as i32,
            admin_key: hex::decode(&m.admin_key)?,
            validator_pub_key: pub_key.to_bytes(),
            power: self.power,
            bls_key: hex::decode(&m.validator.bls_key)?,
            bls_pop: hex::decode(&m.validator.bls_pop)?,
        };
        Ok((Action::AddMember(add), self.deadline))
    }
}

/// `tx gov propose remove-member`.
#[derive(Debug, Args)]
pub struct RemoveMemberArgs {
    /// Member id.
    member_id: String,
    #[command(flatten)]
    deadline: Deadline,
}

impl RemoveMemberArgs {
    fn action(self) -> (Action, Deadline) {
        let member_id = self.member_id;
        (
            Action::RemoveMember(pb::RemoveMember { member_id }),
            self.deadline,
        )
    }
}

/// `tx gov propose change-power`.
#[derive(Debug, Args)]
pub struct ChangePowerArgs {
    /// Member id.
    member_id: String,
    /// The new power (at least 1).
    #[arg(long)]
    power: u64,
    #[command(flatten)]
    deadline: Deadline,
}

impl ChangePowerArgs {
    fn action(self) -> (Action, Deadline) {
        let (member_id, power) = (self.member_id, self.power);
        (
            Action::ChangePower(pb::ChangePower { member_id, power }),
            self.deadline,
        )
    }
}

/// `tx gov propose upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
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
}

impl UpgradeArgs {
    fn action(self) -> (Action, Deadline) {
        (
            Action::ScheduleUpgrade(pb::ScheduleUpgrade {
                name: self.name,
                height: self.height,
                app_version: self.app_version,
            }),
            self.deadline,
        )
    }
}

/// `tx gov propose rotate-admin`.
#[derive(Debug, Args)]
pub struct RotateAdminArgs {
    /// Member id.
    member_id: String,
    /// The new admin public key: 64 hex characters, or the name of a key in the keyring.
    #[arg(long)]
    new_key: String,
    #[command(flatten)]
    deadline: Deadline,
}

impl RotateAdminArgs {
    fn action(self, keyring: &Keyring) -> anyhow::Result<(Action, Deadline)> {
        let new_admin_key = public_key(&self.new_key, keyring)?.to_vec();
        Ok((
            Action::RotateAdminKey(pb::RotateAdminKey {
                member_id: self.member_id,
                new_admin_key,
            }),
            self.deadline,
        ))
    }
}

/// `tx gov propose grant-auditor`.
#[derive(Debug, Args)]
pub struct GrantAuditorArgs {
    /// The practitioner's DID (`did:medledger:…`).
    #[arg(long)]
    did: String,
    /// Audit this member only (its id); without it, every member.
    #[arg(long)]
    member: Option<String>,
    #[command(flatten)]
    deadline: Deadline,
}

impl GrantAuditorArgs {
    fn action(self) -> (Action, Deadline) {
        (
            Action::GrantAuditor(pb::GrantAuditor {
                practitioner_did: self.did,
                scope_member: self.member.unwrap_or_default(),
            }),
            self.deadline,
        )
    }
}

/// `tx gov propose revoke-auditor`.
#[derive(Debug, Args)]
pub struct RevokeAuditorArgs {
    /// The practitioner's DID.
    #[arg(long)]
    did: String,
    #[command(flatten)]
    deadline: Deadline,
}

impl RevokeAuditorArgs {
    fn action(self) -> (Action, Deadline) {
        (
            Action::RevokeAuditor(pb::RevokeAuditor {
                practitioner_did: self.did,
            }),
            self.deadline,
        )
    }
}

/// `tx gov propose web-release`.
#[derive(Debug, Args)]
pub struct WebReleaseArgs {
    /// The release hash: 64 hex characters (`medledger web hash` of the release's binary).
    #[arg(long)]
    hash: String,
    /// The release's label for people (`SetWebRelease.version`), e.g. 2025.06-1: 1 to 32
    /// characters of A-Z a-z 0-9 . _ -
    #[arg(long)]
    label: String,
    #[command(flatten)]
    deadline: Deadline,
}

impl WebReleaseArgs {
    fn action(self) -> anyhow::Result<(Action, Deadline)> {
        let bundle_sha256 = hex::decode(self.hash.trim()).context("--hash is not hex")?;
        Ok((
            Action::SetWebRelease(pb::SetWebRelease {
                bundle_sha256,
                version: self.label,
            }),
            self.deadline,
        ))
    }
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
    use crate::cli::{parse_from, Cli, Command};

    /// `medledger tx --from a gov ARGS…`, parsed.
    fn gov(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut all = vec!["medledger", "tx", "--from", "a", "gov"];
        all.extend_from_slice(args);
        parse_from(all)
    }

    /// `medledger tx --from a gov propose ARGS…`, parsed.
    fn propose(args: &[&str]) -> Result<Cli, clap::Error> {
        let mut all = vec!["propose"];
        all.extend_from_slice(args);
        gov(&all)
    }

    #[test]
    fn governance_commands_parse() {
        let add_member = propose(&[
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
        ]);
        assert!(matches!(
            add_member.expect("parses").command,
            Command::Tx(_)
        ));
        for args in [
            &["remove-member", "lab-e", "--deadline", "90"][..],
            &["change-power", "lab-b", "--power", "20", "--deadline", "9"],
            &[
                "rotate-admin",
                "lab-b",
                "--new-key",
                "k2",
                "--deadline",
                "9",
            ],
            &[
                "grant-auditor",
                "--did",
                "did:medledger:00",
                "--deadline",
                "+5",
            ],
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
            assert!(propose(args).is_ok(), "{args:?}");
        }
        assert!(gov(&["vote", "3", "--yes"]).is_ok());
        assert!(parse_from(["medledger", "query", "proposal", "3"]).is_ok());
        assert!(propose(&["grant-auditor", "--deadline", "9"]).is_err());
    }

    #[test]
    fn a_vote_says_yes_or_no_and_a_validator_needs_its_bls_key() {
        assert!(gov(&["vote", "3"]).is_err());
        assert!(gov(&["vote", "3", "--yes", "--no"]).is_err());
        let no_bls = propose(&[
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
        ]);
        assert!(no_bls.is_err());
    }
}

//! `medledger tx`: sign a transaction, submit it, wait for its block. Each tx command is a
//! struct that builds its message (`into_msg`), in its domain's module (patients, consents and
//! access here; practitioners and records in `rules.rs`, claims and coverage in `claims.rs`,
//! governance in `governance.rs`); [`TxArgs::run`] signs, sends and reports for all of them.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use ed25519_dalek::SigningKey;
use medledger_client::{Client, Keyring, TxReport};
use medledger_tx::keys;
use medledger_tx::pb::{self, tx_body::Msg, Purpose};
use prost::Message;

use super::{claims, governance, print_json, rules, Ctx, Exit, NodeArgs, Output};

/// `tx` arguments.
#[derive(Debug, Args)]
pub struct TxArgs {
    #[command(flatten)]
    pub(super) node: NodeArgs,
    /// Name of the signing key.
    #[arg(long)]
    pub(super) from: String,
    #[command(subcommand)]
    pub(super) msg: TxCmd,
}

impl TxArgs {
    /// Signs the tx with `--from`, submits it and waits for its block: [`Exit::Refused`] when
    /// the chain refuses it.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let key = ctx.keyring.get(&self.from)?;
        let client = Client::new(&self.node.node)?;
        let cx = TxCtx {
            keyring: &ctx.keyring,
            client: &client,
            key: &key,
        };
        // A break-glass reason goes to the member's gateway once the tx is committed.
        let reason = match &self.msg {
            TxCmd::Access(AccessTx::BreakGlass(a)) => Some((a.patient.clone(), a.reason.clone())),
            _ => None,
        };
        let msg = self.msg.into_msg(&cx).await?;
        let report = client.submit(&key, msg).await?;
        print_report(&report, ctx.out)?;
        if let (Some((patient, text)), 0) = (reason, report.code) {
            if let Err(e) = send_reason(&client, &key, &report, &patient, &text).await {
                eprintln!(
                    "warning: the break-glass access is on the ledger, but its reason was not \
                     stored at your member's gateway: {e:#}. Keep the reason's text: the ledger \
                     holds only its SHA-256."
                );
            }
        }
        Ok(if report.code == 0 {
            Exit::Ok
        } else {
            Exit::Refused
        })
    }
}

/// Stores the reason of the break-glass access `report` committed at the gateway its member
/// registered on the ledger (`gateway/{member}`): `PUT /break-glass/{patient}/{index}/reason`,
/// signed with the practitioner's key; the gateway keeps it if its SHA-256 is the one on chain.
async fn send_reason(
    client: &Client,
    key: &SigningKey,
    report: &TxReport,
    patient: &str,
    text: &str,
) -> anyhow::Result<()> {
    let (index, member) = report
        .attribute("index")
        .zip(report.attribute("member"))
        .context("the committed tx names no access event")?;
    let (value, _) = client.query_raw(&keys::gateway(member), 0).await?;
    let gateway = value
        .map(|b| pb::Gateway::decode(b.as_slice()))
        .transpose()?
        .with_context(|| format!("{member} registered no gateway on the ledger"))?;
    // Patient ids are `pt-` and hex (the tx committed: the patient exists).
    let path = format!("/break-glass/{patient}/{index}/reason");
    let gw = medledger_gateway::client::GatewayClient::new(&gateway.endpoint, key.clone());
    let (status, body) = gw
        .send_raw("PUT", &path, text.as_bytes().to_vec(), &[])
        .await?;
    if !(200..300).contains(&status) {
        anyhow::bail!(
            "{} answered HTTP {status}: {}",
            gateway.endpoint,
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

/// What building a message may need besides the command's own arguments: the keyring (keys
/// named on the command line), the node (chain id, key owners, heights) and the signing key.
pub(super) struct TxCtx<'a> {
    /// The keyring in `<home>/keys`.
    pub(super) keyring: &'a Keyring,
    /// The node the tx goes to.
    pub(super) client: &'a Client,
    /// `--from`.
    pub(super) key: &'a SigningKey,
}

impl TxCtx<'_> {
    /// The chain and subject of a key proof for a tx the signing key sends.
    pub(super) async fn proof_ctx(&self, want: ProofSubject) -> anyhow::Result<rules::ProofCtx> {
        proof_ctx(self.client, self.key, want).await
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
    /// SMART backend clients: register and revoke (signed by a member's admin key).
    #[command(subcommand)]
    Smart(super::smart::SmartTx),
}

impl TxCmd {
    /// The message the command sends.
    pub(super) async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        match self {
            TxCmd::Patient(p) => p.into_msg(cx).await,
            TxCmd::Consent(c) => Ok(c.into_msg()),
            TxCmd::Access(a) => Ok(a.into_msg()),
            TxCmd::Practitioner(p) => p.into_msg(cx).await,
            TxCmd::Record(r) => r.into_msg(),
            TxCmd::Claim(c) => c.into_msg(),
            TxCmd::Coverage(c) => Ok(c.into_msg()),
            TxCmd::Gov(g) => g.into_msg(cx.client, cx.keyring).await,
            TxCmd::Smart(s) => s.into_msg(),
        }
    }
}

/// Patient transactions.
#[derive(Debug, Subcommand)]
pub enum PatientTx {
    /// Enrol a patient (signed by the member that identified them, --from its admin or one of
    /// its practitioners). The patient's key proves possession.
    Register(PatientRegisterArgs),
    /// Name the guardians (m of n) who can recover this patient's key.
    Guardians(PatientGuardiansArgs),
    /// Hand over to a new key; the signing key can sign nothing afterwards.
    Rotate(PatientRotateArgs),
    /// Recover a lost key: sign with the new key (--from) and attach guardians' approvals
    /// (from `medledger guardian approve`).
    Recover(PatientRecoverArgs),
    /// Register (or replace) the patient's X25519 box key, derived from the signing key's seed
    /// (docs/vault.md, "The patient's own copy"): holders seal key shares to it for the
    /// patient's own reads (`vault get --patient-key`). Signed by the patient's own key.
    BoxKey,
    /// Report an access in the signing patient's history ("report this access"): a privacy
    /// officer of another member than the one that accessed reviews it (`tx access
    /// review-report`). Signed by the patient's own key.
    Report(PatientReportArgs),
}

impl PatientTx {
    /// The message the command sends.
    async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        match self {
            PatientTx::Register(a) => a.into_msg(cx).await,
            PatientTx::Guardians(a) => a.into_msg(cx.keyring),
            PatientTx::Rotate(a) => a.into_msg(cx).await,
            PatientTx::Recover(a) => a.into_msg(cx.key),
            PatientTx::BoxKey => patient_box_key_msg(cx).await,
            PatientTx::Report(a) => a.into_msg(cx).await,
        }
    }
}

/// `tx patient register`.
#[derive(Debug, Args)]
pub struct PatientRegisterArgs {
    /// The patient's key: a keyring name (it signs its proof of possession here) or 64 hex
    /// characters with --proof.
    #[arg(long = "patient-key")]
    patient_key: String,
    /// The key's proof (hex) from `medledger keys prove KEY --for MEMBER --purpose enrol-patient`.
    #[arg(long)]
    proof: Option<String>,
}

impl PatientRegisterArgs {
    async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        let proof_ctx = cx.proof_ctx(ProofSubject::Member).await?;
        let (patient_key, key_proof) = rules::key_with_proof(
            cx.keyring,
            &self.patient_key,
            self.proof.as_deref(),
            medledger_tx::keyproof::ENROL_PATIENT,
            &proof_ctx,
        )?;
        Ok(Msg::RegisterPatient(pb::RegisterPatient {
            patient_key: patient_key.to_vec(),
            key_proof,
        }))
    }
}

/// `tx patient guardians`.
#[derive(Debug, Args)]
pub struct PatientGuardiansArgs {
    /// Guardian keys: keyring names or hex (repeat).
    #[arg(long = "guardian")]
    guardians: Vec<String>,
    /// How many guardians must approve a recovery.
    #[arg(long)]
    threshold: u32,
}

impl PatientGuardiansArgs {
    fn into_msg(self, keyring: &Keyring) -> anyhow::Result<Msg> {
        Ok(Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: self
                .guardians
                .iter()
                .map(|g| rules::resolve_key(keyring, g).map(|k| k.to_vec()))
                .collect::<anyhow::Result<_>>()?,
            threshold: self.threshold,
        }))
    }
}

/// `tx patient rotate`.
#[derive(Debug, Args)]
pub struct PatientRotateArgs {
    /// The new key: keyring name (it signs its proof of possession here) or hex with --proof.
    #[arg(long)]
    new_key: String,
    /// The new key's proof (hex), when it is not in this keyring.
    #[arg(long)]
    proof: Option<String>,
}

impl PatientRotateArgs {
    async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        let proof_ctx = cx.proof_ctx(ProofSubject::Patient).await?;
        let (new_key, new_key_proof) = rules::key_with_proof(
            cx.keyring,
            &self.new_key,
            self.proof.as_deref(),
            medledger_tx::keyproof::ROTATE_PATIENT_KEY,
            &proof_ctx,
        )?;
        Ok(Msg::RotatePatientKey(pb::RotatePatientKey {
            new_key: new_key.to_vec(),
            new_key_proof,
        }))
    }
}

/// `tx patient box-key`: the signer's own patient id (from the ledger: a rotated key's patient
/// id is its first key's) and the box key derived from the signing key's seed.
async fn patient_box_key_msg(cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
    let patient_id = cx.proof_ctx(ProofSubject::Patient).await?.subject;
    let box_key = medledger_vault::share::patient_box_key(&cx.key.to_bytes())
        .map_err(|e| anyhow::anyhow!("deriving the box key: {e}"))?;
    Ok(Msg::RegisterPatientBoxKey(pb::RegisterPatientBoxKey {
        patient_id,
        box_key: box_key.public_bytes().to_vec(),
    }))
}

/// `tx patient report`.
#[derive(Debug, Args)]
pub struct PatientReportArgs {
    /// The access event's index in the patient's history (`query access PATIENT`).
    #[arg(long)]
    event: u64,
    /// Why: unknown-reader ("I don't know who this is"), not-my-care ("not involved in my
    /// care"), wrong-purpose ("not for the reason given") or other.
    #[arg(long, value_enum)]
    reason: ReportReasonArg,
}

impl PatientReportArgs {
    /// The signer's own patient id (from the ledger, as `box-key`) and the event.
    async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        let patient_id = cx.proof_ctx(ProofSubject::Patient).await?.subject;
        Ok(Msg::ReportAccess(pb::ReportAccess {
            patient_id,
            event_index: self.event,
            reason: pb::ReportReason::from(self.reason) as i32,
        }))
    }
}

/// Why a patient reports an access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportReasonArg {
    /// "I don't know who this is."
    UnknownReader,
    /// "They are not involved in my care."
    NotMyCare,
    /// "It was not for the reason given."
    WrongPurpose,
    /// Another reason.
    Other,
}

impl From<ReportReasonArg> for pb::ReportReason {
    fn from(r: ReportReasonArg) -> Self {
        match r {
            ReportReasonArg::UnknownReader => pb::ReportReason::UnknownReader,
            ReportReasonArg::NotMyCare => pb::ReportReason::NotMyCare,
            ReportReasonArg::WrongPurpose => pb::ReportReason::WrongPurpose,
            ReportReasonArg::Other => pb::ReportReason::Other,
        }
    }
}

/// `tx patient recover`.
#[derive(Debug, Args)]
pub struct PatientRecoverArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// Approvals `GUARDIAN_KEY_HEX:SIGNATURE_HEX` (repeat).
    #[arg(long = "approval")]
    approvals: Vec<String>,
}

impl PatientRecoverArgs {
    /// The recovery to `new_key`, the key that signs it.
    fn into_msg(self, new_key: &SigningKey) -> anyhow::Result<Msg> {
        Ok(Msg::RecoverPatientKey(pb::RecoverPatientKey {
            patient_id: self.patient,
            new_key: new_key.verifying_key().to_bytes().to_vec(),
            approvals: self
                .approvals
                .iter()
                .map(|a| parse_approval(a))
                .collect::<anyhow::Result<_>>()?,
        }))
    }
}

/// Consent transactions.
#[derive(Debug, Subcommand)]
pub enum ConsentTx {
    /// Grant a member access.
    Grant(ConsentGrantArgs),
    /// Revoke a consent.
    Revoke(ConsentRevokeArgs),
}

impl ConsentTx {
    /// The message the command sends.
    fn into_msg(self) -> Msg {
        match self {
            ConsentTx::Grant(a) => a.into_msg(),
            ConsentTx::Revoke(a) => a.into_msg(),
        }
    }
}

/// `tx consent grant`.
#[derive(Debug, Args)]
pub struct ConsentGrantArgs {
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
}

impl ConsentGrantArgs {
    fn into_msg(self) -> Msg {
        Msg::GrantConsent(pb::GrantConsent {
            grantee: self.grantee,
            data_classes: self.classes,
            purposes: self
                .purposes
                .into_iter()
                .map(|p| Purpose::from(p) as i32)
                .collect(),
            not_before: self.not_before,
            not_after: self.not_after,
            actions: self
                .actions
                .into_iter()
                .map(|a| pb::Action::from(a) as i32)
                .collect(),
            deny_classes: self.deny,
            record_ids: self.records,
            study_id: self.study,
        })
    }
}

/// `tx consent revoke`.
#[derive(Debug, Args)]
pub struct ConsentRevokeArgs {
    /// The consent id, e.g. c-1.
    consent_id: String,
}

impl ConsentRevokeArgs {
    fn into_msg(self) -> Msg {
        Msg::RevokeConsent(pb::RevokeConsent {
            consent_id: self.consent_id,
        })
    }
}

/// Access transactions.
#[derive(Debug, Subcommand)]
pub enum AccessTx {
    /// Record that the signing member read a record.
    Log(AccessLogArgs),
    /// Emergency access without consent (physician or nurse; opens a review).
    BreakGlass(BreakGlassArgs),
    /// Close a break-glass review (a privacy officer of another member than the one that broke
    /// the glass).
    Review(ReviewArgs),
    /// Close a patient's report of an access (a privacy officer of another member than the one
    /// that accessed).
    ReviewReport(ReviewReportArgs),
}

impl AccessTx {
    /// The message the command sends.
    fn into_msg(self) -> Msg {
        match self {
            AccessTx::Log(a) => a.into_msg(),
            AccessTx::BreakGlass(a) => a.into_msg(),
            AccessTx::Review(a) => a.into_msg(),
            AccessTx::ReviewReport(a) => a.into_msg(),
        }
    }
}

/// `tx access log`.
#[derive(Debug, Args)]
pub struct AccessLogArgs {
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
}

impl AccessLogArgs {
    fn into_msg(self) -> Msg {
        Msg::LogAccess(pb::LogAccess {
            patient_id: self.patient,
            record_id: self.record,
            data_class: self.class,
            purpose: Purpose::from(self.purpose) as i32,
            action: pb::Action::from(self.action) as i32,
        })
    }
}

/// `tx access break-glass`.
#[derive(Debug, Args)]
pub struct BreakGlassArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// Record id.
    #[arg(long)]
    record: String,
    /// FHIR resource type of the record.
    #[arg(long = "class")]
    class: String,
    /// Why (required). Only its SHA-256 goes on chain; once committed, the text is stored at
    /// your member's gateway, which serves it to whoever may read the patient.
    #[arg(long)]
    reason: String,
}

impl BreakGlassArgs {
    fn into_msg(self) -> Msg {
        Msg::LogBreakGlass(pb::LogBreakGlass {
            patient_id: self.patient,
            record_id: self.record,
            data_class: self.class,
            reason_hash: rules::text_hash(&self.reason),
        })
    }
}

/// `tx access review`.
#[derive(Debug, Args)]
pub struct ReviewArgs {
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
}

impl ReviewArgs {
    fn into_msg(self) -> Msg {
        Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
            patient_id: self.patient,
            event_index: self.index,
            justified: self.verdict == VerdictArg::Justified,
            note_hash: rules::text_hash(&self.note),
        })
    }
}

/// `tx access review-report`.
#[derive(Debug, Args)]
pub struct ReviewReportArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// The reported access event's index.
    #[arg(long)]
    index: u64,
    /// Verdict: upheld (the access was not justified) or not-upheld.
    #[arg(long, value_enum)]
    verdict: ReportVerdictArg,
    /// Note. Only its SHA-256 goes on chain.
    #[arg(long, default_value = "")]
    note: String,
}

impl ReviewReportArgs {
    fn into_msg(self) -> Msg {
        Msg::ReviewReport(pb::ReviewReport {
            patient_id: self.patient,
            event_index: self.index,
            upheld: self.verdict == ReportVerdictArg::Upheld,
            note_hash: rules::text_hash(&self.note),
        })
    }
}

/// Verdicts on a patient's report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportVerdictArg {
    /// The patient is right: the access was not justified.
    Upheld,
    /// The access was justified.
    NotUpheld,
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
    /// Patient requested: the patient's own read (signed by the patient's key; no consent).
    Patrqt,
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Purpose {
        match p {
            PurposeArg::Treat => Purpose::Treat,
            PurposeArg::Etreat => Purpose::Etreat,
            PurposeArg::Hpaymt => Purpose::Hpaymt,
            PurposeArg::Hoperat => Purpose::Hoperat,
            PurposeArg::Hresch => Purpose::Hresch,
            PurposeArg::Patrqt => Purpose::Patrqt,
        }
    }
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

/// Whose id a key proof names as its subject.
pub(super) enum ProofSubject {
    /// The member the signer acts for (its admin key, or one of its practitioners).
    Member,
    /// The patient the signer is.
    Patient,
}

/// The chain and subject of a key proof for a tx `signer` sends, read from the node: a proof
/// names who the new key is handed to, so it serves no other member or patient.
pub(super) async fn proof_ctx(
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

fn parse_approval(a: &str) -> anyhow::Result<pb::GuardianApproval> {
    let (k, s) = a
        .split_once(':')
        .context("an approval is GUARDIAN_KEY_HEX:SIGNATURE_HEX")?;
    Ok(pb::GuardianApproval {
        guardian_key: hex::decode(k)?,
        signature: hex::decode(s)?,
    })
}

pub(super) fn print_report(r: &TxReport, out: Output) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(r);
    }
    if r.code == 0 {
        println!(
            "OK: committed at height {} (tx {})",
            r.height,
            r.hash.to_lowercase()
        );
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
            r.height,
            r.code_name,
            r.code,
            r.log,
            r.hash.to_lowercase()
        );
    }
    Ok(())
}

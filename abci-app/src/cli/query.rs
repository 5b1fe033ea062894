//! `medledger query`: read the ledger's state, optionally with verified proofs. One struct per
//! query, each with `run` on a [`Reader`] (the claims' queries are in `claims.rs`).

use anyhow::Context;
use clap::{Args, Subcommand};
use medledger_client::Client;
use medledger_tx::keys;
use medledger_tx::limits::MAX_HISTORY_READ;
use medledger_tx::pb;
use medledger_tx::rules::consent::in_force;

use super::entity::Entity;
use super::read::{print_list, show, Answer, Reader};
use super::{claims, print_json, rules, Ctx, Exit, NodeArgs, Output};

/// `query` arguments.
#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub(super) node: NodeArgs,
    /// State height to read (0 = latest).
    #[arg(long, default_value_t = 0)]
    pub(super) height: u64,
    /// Fetch proofs and verify them against the app hash in the committed header.
    #[arg(long)]
    pub(super) prove: bool,
    #[command(subcommand)]
    pub(super) what: QueryCmd,
}

/// Queries.
#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// A member.
    Member(MemberQuery),
    /// A patient.
    Patient(PatientQuery),
    /// A consent.
    Consent(ConsentQuery),
    /// Every consent of a patient.
    Consents(ConsentsQuery),
    /// Every access event of a patient.
    Access(AccessQuery),
    /// Every record anchored for a patient, at any member (the record locator): id, type,
    /// custodian, anchored height, erasure. A complete list when proven (`--prove`).
    Records(RecordsQuery),
    /// A practitioner.
    Practitioner(PractitionerQuery),
    /// A practitioner's W3C DID document.
    Did(DidQuery),
    /// A patient's guardians.
    Guardians(GuardiansQuery),
    /// A record anchor.
    Record(RecordQuery),
    /// A member's break-glass reviews (open ones first).
    Reviews(ReviewsQuery),
    /// Who consents to a research study now (HRESCH consents active at the answer's block time).
    Study(StudyQuery),
    /// A practitioner's auditor grant (`auditor/{did}`, written by governance): its scope (every
    /// member, or one) and the proposal that granted it; ABSENT when they hold none.
    Auditor(AuditorQuery),
    /// A governance proposal and its tally.
    Proposal(ProposalQuery),
    /// Any state key, raw (e.g. `seq/<hex key>`).
    Key(KeyQuery),
    /// A claim.
    Claim(claims::ClaimQuery),
    /// An insurer's coverage policy (the latest version unless --version).
    Policy(claims::PolicyQuery),
    /// A patient's enrolments with an insurer (complete, with --prove).
    Coverage(claims::CoverageQuery),
}

impl QueryArgs {
    /// Reads (with `--prove`: and verifies against the committed app hash) and prints.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let mut r = Reader::new(Client::new(&self.node.node)?, self.height, self.prove);
        self.what.run(&mut r, ctx.out).await?;
        Ok(Exit::Ok)
    }
}

impl QueryCmd {
    /// Reads with `r` and prints.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        match self {
            QueryCmd::Member(q) => q.run(r, out).await,
            QueryCmd::Patient(q) => q.run(r, out).await,
            QueryCmd::Consent(q) => q.run(r, out).await,
            QueryCmd::Consents(q) => q.run(r, out).await,
            QueryCmd::Access(q) => q.run(r, out).await,
            QueryCmd::Records(q) => q.run(r, out).await,
            QueryCmd::Practitioner(q) => q.run(r, out).await,
            QueryCmd::Did(q) => q.run(r).await,
            QueryCmd::Guardians(q) => q.run(r, out).await,
            QueryCmd::Record(q) => q.run(r, out).await,
            QueryCmd::Reviews(q) => q.run(r, out).await,
            QueryCmd::Study(q) => q.run(r, out).await,
            QueryCmd::Auditor(q) => q.run(r, out).await,
            QueryCmd::Proposal(q) => q.run(r, out).await,
            QueryCmd::Key(q) => q.run(r, out).await,
            QueryCmd::Claim(q) => q.run(r, out).await,
            QueryCmd::Policy(q) => q.run(r, out).await,
            QueryCmd::Coverage(q) => q.run(r, out).await,
        }
    }
}

/// `query member ID`.
#[derive(Debug, Args)]
pub struct MemberQuery {
    /// Member id.
    id: String,
}

impl MemberQuery {
    /// Prints the member.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Member(self.id)).await?, out)
    }
}

/// `query patient ID`.
#[derive(Debug, Args)]
pub struct PatientQuery {
    /// Patient id.
    id: String,
}

impl PatientQuery {
    /// Prints the patient.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Patient(self.id)).await?, out)
    }
}

/// `query consent ID`.
#[derive(Debug, Args)]
pub struct ConsentQuery {
    /// Consent id.
    id: String,
}

impl ConsentQuery {
    /// Prints the consent.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Consent(self.id)).await?, out)
    }
}

/// `query consents PATIENT`.
#[derive(Debug, Args)]
pub struct ConsentsQuery {
    /// Patient id.
    patient: String,
}

impl ConsentsQuery {
    /// Prints every consent of the patient, read at the height of their list's count.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let (count, ids) = r
            .read_ids(
                &keys::List::PatientConsents(&self.patient),
                medledger_tx::limits::MAX_CONSENTS_PER_PATIENT,
            )
            .await?;
        let mut list = Vec::new();
        for id in ids {
            list.push(r.read_msg::<pb::Consent>(&keys::consent(&id)).await?);
        }
        print_list(&count, &list, out)
    }
}

/// `query access PATIENT`.
#[derive(Debug, Args)]
pub struct AccessQuery {
    /// Patient id.
    patient: String,
}

impl AccessQuery {
    /// Prints the patient's access history.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let (count, entries) = r
            .read_list(&keys::List::Access(&self.patient), MAX_HISTORY_READ)
            .await?;
        let list = entries
            .into_iter()
            .map(|a| a.decoded::<pb::AccessEvent>())
            .collect::<anyhow::Result<Vec<_>>>()?;
        print_list(&count, &list, out)
    }
}

/// `query records PATIENT` (and `vault list --patient PATIENT`).
#[derive(Debug, Args)]
pub struct RecordsQuery {
    /// Patient id.
    pub(super) patient: String,
}

impl RecordsQuery {
    /// Prints the anchor of every record of the patient, at any member.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let (count, ids) = r
            .read_ids(&keys::List::PatientRecords(&self.patient), MAX_HISTORY_READ)
            .await?;
        let mut list = Vec::new();
        for id in ids {
            list.push(r.read_msg::<pb::RecordAnchor>(&keys::record(&id)).await?);
        }
        print_list(&count, &list, out)
    }
}

/// `query practitioner DID`.
#[derive(Debug, Args)]
pub struct PractitionerQuery {
    /// The practitioner's DID.
    did: String,
}

impl PractitionerQuery {
    /// Prints the practitioner.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Practitioner(self.did)).await?, out)
    }
}

/// `query did DID`.
#[derive(Debug, Args)]
pub struct DidQuery {
    /// The DID.
    did: String,
}

impl DidQuery {
    /// Prints the practitioner's DID document (JSON whatever `-o` says: it is a JSON format).
    pub(super) async fn run(self, r: &mut Reader) -> anyhow::Result<()> {
        let a = r
            .read_msg::<pb::Practitioner>(&keys::practitioner(&self.did))
            .await?;
        let p = a
            .value
            .with_context(|| format!("no practitioner {}", self.did))?;
        print_json(&rules::did_document(&p))
    }
}

/// `query guardians PATIENT`.
#[derive(Debug, Args)]
pub struct GuardiansQuery {
    /// Patient id.
    patient: String,
}

impl GuardiansQuery {
    /// Prints the patient's guardians.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Guardians(self.patient)).await?, out)
    }
}

/// `query record ID`.
#[derive(Debug, Args)]
pub struct RecordQuery {
    /// Record id.
    id: String,
}

impl RecordQuery {
    /// Prints the record's anchor.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Record(self.id)).await?, out)
    }
}

/// `query reviews MEMBER`.
#[derive(Debug, Args)]
pub struct ReviewsQuery {
    /// Member id.
    member: String,
}

impl ReviewsQuery {
    /// Prints the member's access events awaiting another member's review (break-glass
    /// accesses and accesses a patient reported), open reviews first.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let (count, items) = r
            .read_ids(&keys::List::Reviews(&self.member), MAX_HISTORY_READ)
            .await?;
        let mut list = Vec::new();
        for item in items {
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
            a.value.as_ref().map(|e| {
                e.review != pb::ReviewStatus::Pending as i32
                    && e.report_review != pb::ReviewStatus::Pending as i32
            })
        });
        print_list(&count, &list, out)
    }
}

/// `query study STUDY`.
#[derive(Debug, Args)]
pub struct StudyQuery {
    /// Study id.
    study: String,
}

impl StudyQuery {
    /// Prints the patients whose consent to the study is in force.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let study = self.study;
        let (count, ids) = r
            .read_ids(
                &keys::List::Study(&study),
                medledger_tx::limits::MAX_STUDY_PARTICIPANTS,
            )
            .await?;
        // As of the block after the answer's height: its time decides which consents are
        // in their period (the ledger's own rule, `rules::consent::in_force`).
        let header = r.client.light_block(count.height + 1).await?.0;
        let time = u64::try_from(header.header.time.unix_timestamp()).unwrap_or(0);
        let mut participants = std::collections::BTreeSet::new();
        for id in ids {
            if let Some(c) = r.read_msg::<pb::Consent>(&keys::consent(&id)).await?.value {
                if in_force(&c, count.height + 1, time) {
                    participants.insert(c.patient_id);
                }
            }
        }
        if out == Output::Json {
            return print_json(&serde_json::json!({
                "study": study, "height": count.height, "consenting_patients": participants.len(),
                "patients": participants, "proven": r.prove,
            }));
        }
        println!(
            "study {study} at height {}: {} patients consent{}",
            count.height,
            participants.len(),
            if r.prove { " (every read proven)" } else { "" }
        );
        for p in &participants {
            println!("  {p}");
        }
        Ok(())
    }
}

/// `query auditor DID`.
#[derive(Debug, Args)]
pub struct AuditorQuery {
    /// The practitioner's DID.
    did: String,
}

impl AuditorQuery {
    /// Prints the practitioner's auditor grant.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(
            &r.read_msg::<pb::Auditor>(&keys::auditor(&self.did)).await?,
            out,
        )
    }
}

/// `query proposal ID`.
#[derive(Debug, Args)]
pub struct ProposalQuery {
    /// Proposal id.
    id: u64,
}

impl ProposalQuery {
    /// Prints the proposal and its tally.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Proposal(self.id)).await?, out)
    }
}

/// `query key KEY`.
#[derive(Debug, Args)]
pub struct KeyQuery {
    /// The key.
    key: String,
}

impl KeyQuery {
    /// Prints the raw value under the key, in hex.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let (value, height, verified_against) = r.read(self.key.as_bytes()).await?;
        show(
            &Answer {
                key: self.key,
                height,
                value: value.map(hex::encode),
                verified_against,
            },
            out,
        )
    }
}

//! `medledger tx`: sign a transaction, submit it, wait for its block.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
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
}

impl From<PurposeArg> for Purpose {
    fn from(p: PurposeArg) -> Purpose {
        match p {
            PurposeArg::Treat => Purpose::Treat,
            PurposeArg::Etreat => Purpose::Etreat,
            PurposeArg::Hpaymt => Purpose::Hpaymt,
            PurposeArg::Hoperat => Purpose::Hoperat,
            PurposeArg::Hresch => Purpose::Hresch,
        }
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
}

/// Patient transactions.
#[derive(Debug, Subcommand)]
pub enum PatientTx {
    /// Enrol a patient (signed by the member that identified them, --from its admin or one of
    /// its practitioners). The patient's key proves possession.
    Register {
        /// The patient's key: a keyring name (it signs its proof of possession here) or 64 hex
        /// characters with --proof.
        #[arg(long = "patient-key")]
        patient_key: String,
        /// The key's proof (hex) from `medledger keys prove KEY --for MEMBER --purpose enrol-patient`.
        #[arg(long)]
        proof: Option<String>,
    },
    /// Name the guardians (m of n) who can recover this patient's key.
    Guardians {
        /// Guardian keys: keyring names or hex (repeat).
        #[arg(long = "guardian")]
        guardians: Vec<String>,
        /// How many guardians must approve a recovery.
        #[arg(long)]
        threshold: u32,
    },
    /// Hand over to a new key; the signing key can sign nothing afterwards.
    Rotate {
        /// The new key: keyring name (it signs its proof of possession here) or hex with --proof.
        #[arg(long)]
        new_key: String,
        /// The new key's proof (hex), when it is not in this keyring.
        #[arg(long)]
        proof: Option<String>,
    },
    /// Recover a lost key: sign with the new key (--from) and attach guardians' approvals
    /// (from `medledger guardian approve`).
    Recover {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Approvals `GUARDIAN_KEY_HEX:SIGNATURE_HEX` (repeat).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
}

/// Consent transactions.
#[derive(Debug, Subcommand)]
pub enum ConsentTx {
    /// Grant a member access.
    Grant {
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
    },
    /// Revoke a consent.
    Revoke {
        /// The consent id, e.g. c-1.
        consent_id: String,
    },
}

/// Access transactions.
#[derive(Debug, Subcommand)]
pub enum AccessTx {
    /// Record that the signing member read a record.
    Log {
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
    },
    /// Emergency access without consent (physician or nurse; opens a review).
    BreakGlass {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Record id.
        #[arg(long)]
        record: String,
        /// FHIR resource type of the record.
        #[arg(long = "class")]
        class: String,
        /// Why (required). Only its SHA-256 goes on chain; keep the text in your records.
        #[arg(long)]
        reason: String,
    },
    /// Close a break-glass review (a privacy officer of another member than the one that broke
    /// the glass).
    Review {
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
    },
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

impl TxArgs {
    /// Signs the tx with `--from`, submits it and waits for its block: [`Exit::Refused`] when
    /// the chain refuses it.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (keyring, out, t) = (&ctx.keyring, ctx.out, self);
        let key = keyring.get(&t.from)?;
        let client = Client::new(&t.node.node)?;
        let msg = match t.msg {
            TxCmd::Patient(PatientTx::Recover { patient, approvals }) => {
                Msg::RecoverPatientKey(pb::RecoverPatientKey {
                    patient_id: patient,
                    new_key: key.verifying_key().to_bytes().to_vec(),
                    approvals: approvals
                        .iter()
                        .map(|a| parse_approval(a))
                        .collect::<anyhow::Result<_>>()?,
                })
            }
            TxCmd::Gov(g) => governance::to_msg(g, &client, keyring).await?,
            TxCmd::Patient(PatientTx::Register { patient_key, proof }) => {
                let ctx = proof_ctx(&client, &key, ProofSubject::Member).await?;
                let (patient_key, key_proof) = rules::key_with_proof(
                    keyring,
                    &patient_key,
                    proof.as_deref(),
                    medledger_tx::keyproof::ENROL_PATIENT,
                    &ctx,
                )?;
                Msg::RegisterPatient(pb::RegisterPatient {
                    patient_key: patient_key.to_vec(),
                    key_proof,
                })
            }
            TxCmd::Patient(PatientTx::Rotate { new_key, proof }) => {
                let ctx = proof_ctx(&client, &key, ProofSubject::Patient).await?;
                let (new_key, new_key_proof) = rules::key_with_proof(
                    keyring,
                    &new_key,
                    proof.as_deref(),
                    medledger_tx::keyproof::ROTATE_PATIENT_KEY,
                    &ctx,
                )?;
                Msg::RotatePatientKey(pb::RotatePatientKey {
                    new_key: new_key.to_vec(),
                    new_key_proof,
                })
            }
            TxCmd::Practitioner(p) if p.needs_proof() => {
                let ctx = proof_ctx(&client, &key, ProofSubject::Member).await?;
                p.into_msg(keyring, Some(&ctx))?
            }
            other => build_msg(keyring, other)?,
        };
        let report = client.submit(&key, msg).await?;
        print_report(&report, out)?;
        Ok(if report.code == 0 {
            Exit::Ok
        } else {
            Exit::Refused
        })
    }
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

fn build_msg(keyring: &Keyring, cmd: TxCmd) -> anyhow::Result<Msg> {
    Ok(match cmd {
        TxCmd::Patient(PatientTx::Register { .. }) | TxCmd::Patient(PatientTx::Rotate { .. }) => {
            anyhow::bail!("internal: key proofs are built with the node")
        }
        TxCmd::Patient(PatientTx::Guardians {
            guardians,
            threshold,
        }) => Msg::SetGuardians(pb::SetGuardians {
            guardian_keys: guardians
                .iter()
                .map(|g| rules::resolve_key(keyring, g).map(|k| k.to_vec()))
                .collect::<anyhow::Result<_>>()?,
            threshold,
        }),
        TxCmd::Patient(PatientTx::Recover { .. }) => {
            anyhow::bail!("internal: recovery is built with the signing key")
        }
        TxCmd::Consent(ConsentTx::Grant {
            grantee,
            classes,
            purposes,
            not_before,
            not_after,
            actions,
            deny,
            records,
            study,
        }) => Msg::GrantConsent(pb::GrantConsent {
            grantee,
            data_classes: classes,
            purposes: purposes
                .into_iter()
                .map(|p| Purpose::from(p) as i32)
                .collect(),
            not_before,
            not_after,
            actions: actions
                .into_iter()
                .map(|a| pb::Action::from(a) as i32)
                .collect(),
            deny_classes: deny,
            record_ids: records,
            study_id: study,
        }),
        TxCmd::Consent(ConsentTx::Revoke { consent_id }) => {
            Msg::RevokeConsent(pb::RevokeConsent { consent_id })
        }
        TxCmd::Access(AccessTx::Log {
            patient,
            record,
            class,
            purpose,
            action,
        }) => Msg::LogAccess(pb::LogAccess {
            patient_id: patient,
            record_id: record,
            data_class: class,
            purpose: Purpose::from(purpose) as i32,
            action: pb::Action::from(action) as i32,
        }),
        TxCmd::Access(AccessTx::BreakGlass {
            patient,
            record,
            class,
            reason,
        }) => Msg::LogBreakGlass(pb::LogBreakGlass {
            patient_id: patient,
            record_id: record,
            data_class: class,
            reason_hash: rules::text_hash(&reason),
        }),
        TxCmd::Access(AccessTx::Review {
            patient,
            index,
            verdict,
            note,
        }) => Msg::ReviewBreakGlass(pb::ReviewBreakGlass {
            patient_id: patient,
            event_index: index,
            justified: verdict == VerdictArg::Justified,
            note_hash: rules::text_hash(&note),
        }),
        TxCmd::Practitioner(p) => p.into_msg(keyring, None)?,
        TxCmd::Record(r) => r.into_msg()?,
        TxCmd::Claim(c) => claims::to_msg(c)?,
        TxCmd::Coverage(c) => claims::coverage_msg(c),
        TxCmd::Gov(_) => anyhow::bail!("internal: governance messages are built with the node"),
    })
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

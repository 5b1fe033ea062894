//! `medledger verify`: an answer checked end to end, proofs against an app hash signed by the
//! consortium.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medledger_client::Client;
use medledger_devnet::localnet;
use medledger_tx::keys;
use medledger_tx::pb::{self, Purpose};
use prost::Message;
use serde::Serialize;

use super::tx::{ActionArg, PurposeArg};
use super::{print_json, Ctx, Exit, NodeArgs, Output};

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// The consortium's genesis.json, the auditor's trusted starting point (default: the
    /// localnet's, if there is one under --home).
    #[arg(long, env = "MEDLEDGER_GENESIS")]
    genesis: Option<PathBuf>,
    /// State height to verify (0 = the latest one that can be attested).
    #[arg(long, default_value_t = 0)]
    height: u64,
    /// Check the app hash with the consortium's BLS checkpoint certificate (one aggregate
    /// signature) instead of light-client verification of the signed header.
    #[arg(long)]
    certificate: bool,
    /// Light client: how long the trust root (genesis, or --trust-height) is trusted, measured
    /// to now: `168h` (the `cometbft light` default), `14d`, `90m`, `3600s`.
    #[arg(long, default_value = "168h", value_parser = medledger_client::verify::parse_period)]
    trusting_period: std::time::Duration,
    /// Light client: start from this trusted header instead of genesis (with --trust-hash).
    #[arg(long, requires = "trust_hash")]
    trust_height: Option<u64>,
    /// Light client: the hash (hex) of the header at --trust-height, obtained out of band.
    #[arg(long, requires = "trust_height")]
    trust_hash: Option<String>,
    #[command(subcommand)]
    what: VerifyCmd,
}

/// What to verify.
#[derive(Debug, Subcommand)]
pub enum VerifyCmd {
    /// A consent (or its absence).
    Consent {
        /// Consent id.
        id: String,
    },
    /// A patient (or its absence).
    Patient {
        /// Patient id.
        id: String,
    },
    /// A member (or its absence).
    Member {
        /// Member id.
        id: String,
    },
    /// The complete access history of a patient.
    Access {
        /// Patient id.
        patient: String,
        /// Print the verified history as a FHIR R4 Bundle of AuditEvents (IHE BALP) or as a
        /// HIPAA accounting-of-disclosures CSV instead of the summary.
        #[arg(long, value_enum)]
        export: Option<ExportFormat>,
        /// Only events of blocks at or after this height (the complete history is still read
        /// and proven, which is what makes the window complete).
        #[arg(long, default_value_t = 0)]
        from_height: u64,
        /// Only events of blocks at or before this height (0 = no bound).
        #[arg(long, default_value_t = 0)]
        to_height: u64,
    },
    /// A claim (or its absence).
    Claim {
        /// Claim id.
        id: String,
    },
    /// One enrolment of a patient with an insurer (or its absence).
    Coverage {
        /// Patient id.
        patient: String,
        /// Insurer member id.
        insurer: String,
        /// The enrolment's index, from 0.
        index: u64,
    },
    /// A practitioner (or its absence).
    Practitioner {
        /// DID.
        did: String,
    },
    /// A record anchor (or its absence).
    Record {
        /// Record id.
        id: String,
    },
    /// A governance proposal (or its absence).
    Proposal {
        /// Proposal id.
        id: u64,
    },
    /// The ledger's decision on an access, evaluated by this CLI from proven consents.
    Permitted {
        /// Patient id.
        #[arg(long)]
        patient: String,
        /// Member id or practitioner DID.
        #[arg(long)]
        actor: String,
        /// FHIR resource type.
        #[arg(long = "class")]
        class: String,
        /// Record id.
        #[arg(long, default_value = "")]
        record: String,
        /// Purpose of use.
        #[arg(long, value_enum)]
        purpose: PurposeArg,
        /// READ or WRITE.
        #[arg(long, value_enum, default_value_t = ActionArg::Read)]
        action: ActionArg,
    },
    /// Any state key.
    Key {
        /// The key.
        key: String,
    },
}

/// Export formats of a verified access history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// FHIR R4 Bundle of AuditEvent resources (JSON).
    Fhir,
    /// HIPAA accounting of disclosures (CSV).
    Csv,
}

#[derive(Serialize)]
struct VerifiedView<T: Serialize> {
    verified: bool,
    what: String,
    state: String,
    height: u64,
    app_hash: String,
    method: &'static str,
    signers: Vec<String>,
    signed_power: u64,
    total_power: u64,
    value: Option<T>,
}

fn verified_view<T: Serialize>(
    what: String,
    state: String,
    a: &medledger_client::verify::Attestation,
    value: Option<T>,
) -> VerifiedView<T> {
    VerifiedView {
        verified: true,
        what,
        state,
        height: a.height,
        app_hash: hex::encode_upper(&a.app_hash),
        method: a.method,
        signers: a.signers.clone(),
        signed_power: a.signed_power,
        total_power: a.total_power,
        value,
    }
}

fn print_verified<T: Serialize + std::fmt::Debug>(
    v: &VerifiedView<T>,
    out: Output,
    a: &medledger_client::verify::Attestation,
) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(v);
    }
    println!(
        "VERIFIED {} {} at height {} — {}",
        v.what,
        v.state,
        v.height,
        medledger_client::verify::signed_by(a)
    );
    if let Some(value) = &v.value {
        println!("{value:#?}");
    }
    Ok(())
}

impl VerifyArgs {
    /// Verifies end to end and prints `VERIFIED …`, or `NOT VERIFIED: …` with [`Exit::NotVerified`].
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (home, v, out) = (&ctx.home, self, ctx.out);
        let genesis = match v.genesis {
            Some(g) => g,
            None => {
                let local = home
                    .join("localnet")
                    .join(localnet::MEMBERS[0].0)
                    .join("cometbft/config/genesis.json");
                anyhow::ensure!(
                local.exists(),
                "pass --genesis FILE: the consortium's genesis.json is the trusted starting point"
            );
                local
            }
        };
        let client = Client::new(&v.node.node)?;
        let root = match (v.trust_height, &v.trust_hash) {
            (Some(h), Some(hash)) => {
                Some((h, hex::decode(hash).context("--trust-hash is not hex")?))
            }
            _ => None,
        };
        let trust = medledger_client::verify::Trust::from_genesis(&genesis, v.certificate)?
            .with_header_root(&client, v.trusting_period, root)
            .await?;
        match verify_what(&client, &trust, v.what, v.height, out).await {
            Ok(()) => Ok(Exit::Ok),
            Err(e) => {
                if out == Output::Json {
                    print_json(
                        &serde_json::json!({ "verified": false, "reason": format!("{e:#}") }),
                    )?;
                } else {
                    println!("NOT VERIFIED: {e:#}");
                }
                Ok(Exit::NotVerified)
            }
        }
    }
}

/// Verifies `key`, decodes it as `M`, and prints `VERIFIED <what> <state> …` (`ABSENT` when
/// proven absent).
async fn verify_typed<M: Message + Default + Serialize + std::fmt::Debug>(
    client: &Client,
    trust: &medledger_client::verify::Trust,
    key: &[u8],
    height: u64,
    what: String,
    state: impl Fn(&M) -> String,
    out: Output,
) -> anyhow::Result<()> {
    let r = medledger_client::verify::verify_key(client, trust, key, height).await?;
    let value = r.value.as_deref().map(M::decode).transpose()?;
    let state = value.as_ref().map_or_else(|| "ABSENT".to_string(), state);
    print_verified(
        &verified_view(what, state, &r.attestation, value),
        out,
        &r.attestation,
    )
}

/// `APPROVED` from `Ok("CLAIM_STATUS_APPROVED")` and the prefix.
fn enum_name<E>(name: Result<&str, E>, prefix: &str) -> String {
    name.map(|n| n.trim_start_matches(prefix).to_string())
        .unwrap_or_else(|_| "UNKNOWN".into())
}

async fn verify_what(
    client: &Client,
    trust: &medledger_client::verify::Trust,
    what: VerifyCmd,
    height: u64,
    out: Output,
) -> anyhow::Result<()> {
    use medledger_client::verify::{verify_history, verify_key};
    match what {
        VerifyCmd::Consent { id } => {
            let state = |c: &pb::Consent| {
                if c.revoked_height == 0 {
                    "ACTIVE".to_string()
                } else {
                    format!("REVOKED (at height {})", c.revoked_height)
                }
            };
            verify_typed(
                client,
                trust,
                &keys::consent(&id),
                height,
                format!("consent {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Patient { id } => {
            verify_typed(
                client,
                trust,
                &keys::patient(&id),
                height,
                format!("patient {id}"),
                |_: &pb::Patient| "REGISTERED".into(),
                out,
            )
            .await
        }
        VerifyCmd::Member { id } => {
            verify_typed(
                client,
                trust,
                &keys::member(&id),
                height,
                format!("member {id}"),
                |_: &pb::Member| "MEMBER".into(),
                out,
            )
            .await
        }
        VerifyCmd::Claim { id } => {
            let state = |c: &pb::Claim| {
                enum_name(
                    pb::ClaimStatus::try_from(c.status).map(|s| s.as_str_name()),
                    "CLAIM_STATUS_",
                )
            };
            verify_typed(
                client,
                trust,
                &keys::claim(&id),
                height,
                format!("claim {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Coverage {
            patient,
            insurer,
            index,
        } => {
            let state =
                |c: &pb::Coverage| format!("ENROLLED {} [{}, {})", c.policy_id, c.start, c.end);
            verify_typed(
                client,
                trust,
                &keys::coverage(&patient, &insurer, index),
                height,
                format!("coverage {patient} {insurer} {index}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Practitioner { did } => {
            let state = |p: &pb::Practitioner| {
                enum_name(
                    pb::PractitionerStatus::try_from(p.status).map(|s| s.as_str_name()),
                    "PRACTITIONER_STATUS_",
                )
            };
            verify_typed(
                client,
                trust,
                &keys::practitioner(&did),
                height,
                format!("practitioner {did}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Record { id } => {
            let state = |a: &pb::RecordAnchor| {
                if a.erased_height == 0 {
                    "ANCHORED".to_string()
                } else {
                    format!("ERASED (at height {})", a.erased_height)
                }
            };
            verify_typed(
                client,
                trust,
                &keys::record(&id),
                height,
                format!("record {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Proposal { id } => {
            let state = |p: &pb::Proposal| {
                enum_name(
                    pb::ProposalStatus::try_from(p.status).map(|s| s.as_str_name()),
                    "PROPOSAL_STATUS_",
                )
            };
            verify_typed(
                client,
                trust,
                &keys::proposal(id),
                height,
                format!("proposal {id}"),
                state,
                out,
            )
            .await
        }
        VerifyCmd::Permitted {
            patient,
            actor,
            class,
            record,
            purpose,
            action,
        } => {
            let q = medledger_client::verify::PermittedQuery {
                patient: patient.clone(),
                actor: actor.clone(),
                action: pb::Action::from(action) as i32,
                data_class: class.clone(),
                record_id: record,
                purpose: Purpose::from(purpose) as i32,
            };
            let (permit, a, time) =
                medledger_client::verify::verify_permitted(client, trust, q, height).await?;
            let state = match &permit {
                Some(id) => format!("PERMIT (consent {id}, block time {time})"),
                None => format!("DENY (no consent permits it at block time {time})"),
            };
            print_verified(
                &verified_view(
                    format!("access by {actor} to {class} of {patient}"),
                    state,
                    &a,
                    permit,
                ),
                out,
                &a,
            )
        }
        VerifyCmd::Key { key } => {
            let r = verify_key(client, trust, key.as_bytes(), height).await?;
            let state = if r.value.is_some() {
                "PRESENT"
            } else {
                "ABSENT"
            };
            let value = r.value.as_ref().map(hex::encode);
            print_verified(
                &verified_view(format!("key {key}"), state.into(), &r.attestation, value),
                out,
                &r.attestation,
            )
        }
        VerifyCmd::Access {
            patient,
            export,
            from_height,
            to_height,
        } => {
            let (events, a) = verify_history(client, trust, &patient, height).await?;
            let events: Vec<pb::AccessEvent> = events
                .into_iter()
                .filter(|e| e.height >= from_height && (to_height == 0 || e.height <= to_height))
                .collect();
            if let Some(format) = export {
                use medledger_query::export::{
                    fhir_audit_bundle, hipaa_disclosures_csv, ProvenanceInfo,
                };
                // The verdict goes to stderr so that stdout is exactly the export.
                eprintln!(
                    "VERIFIED complete access history of {patient} ({} events) at height {} — {}",
                    events.len(),
                    a.height,
                    medledger_client::verify::signed_by(&a)
                );
                match format {
                    ExportFormat::Fhir => {
                        let proven = ProvenanceInfo {
                            chain_id: trust.chain_id().to_string(),
                            height: a.height,
                            app_hash_hex: hex::encode_upper(&a.app_hash),
                        };
                        print_json(&fhir_audit_bundle(&patient, &events, &proven))?;
                    }
                    ExportFormat::Csv => print!("{}", hipaa_disclosures_csv(&events)),
                }
                return Ok(());
            }
            let view = verified_view(
                format!("complete access history of {patient}"),
                format!("({} events)", events.len()),
                &a,
                Some(events),
            );
            print_verified(&view, out, &a)
        }
    }
}

//! `medledger verify`: an answer checked end to end, proofs against an app hash signed by the
//! consortium.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medledger_client::verify::{verify_key, Attestation, Trust};
use medledger_client::Client;
use medledger_devnet::localnet;
use medledger_tx::pb::{self, Purpose};
use serde::Serialize;

use super::entity::{Entity, Value};
use super::render::{self, Render};
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
    Consent(ConsentVerify),
    /// A patient (or its absence).
    Patient(PatientVerify),
    /// A member (or its absence).
    Member(MemberVerify),
    /// The complete access history of a patient.
    Access(AccessVerify),
    /// A claim (or its absence).
    Claim(ClaimVerify),
    /// One enrolment of a patient with an insurer (or its absence).
    Coverage(CoverageVerify),
    /// A practitioner (or its absence).
    Practitioner(PractitionerVerify),
    /// A record anchor (or its absence).
    Record(RecordVerify),
    /// A governance proposal (or its absence).
    Proposal(ProposalVerify),
    /// The ledger's decision on an access, evaluated by this CLI from proven consents.
    Permitted(PermittedVerify),
    /// Any state key.
    Key(KeyVerify),
}

impl VerifyCmd {
    /// Verifies with `v` and prints `VERIFIED …`; an error is the reason it did not verify.
    async fn run(self, v: &Verifier) -> anyhow::Result<()> {
        match self {
            VerifyCmd::Consent(a) => v.entity(Entity::Consent(a.id)).await,
            VerifyCmd::Patient(a) => v.entity(Entity::Patient(a.id)).await,
            VerifyCmd::Member(a) => v.entity(Entity::Member(a.id)).await,
            VerifyCmd::Access(a) => a.run(v).await,
            VerifyCmd::Claim(a) => v.entity(Entity::Claim(a.id)).await,
            VerifyCmd::Coverage(a) => v.entity(a.entity()).await,
            VerifyCmd::Practitioner(a) => v.entity(Entity::Practitioner(a.did)).await,
            VerifyCmd::Record(a) => a.run(v).await,
            VerifyCmd::Proposal(a) => v.entity(Entity::Proposal(a.id)).await,
            VerifyCmd::Permitted(a) => a.run(v).await,
            VerifyCmd::Key(a) => a.run(v).await,
        }
    }
}

/// `verify consent ID`.
#[derive(Debug, Args)]
pub struct ConsentVerify {
    /// Consent id.
    id: String,
}

/// `verify patient ID`.
#[derive(Debug, Args)]
pub struct PatientVerify {
    /// Patient id.
    id: String,
}

/// `verify member ID`.
#[derive(Debug, Args)]
pub struct MemberVerify {
    /// Member id.
    id: String,
}

/// `verify claim ID`.
#[derive(Debug, Args)]
pub struct ClaimVerify {
    /// Claim id.
    id: String,
}

/// `verify coverage PATIENT INSURER INDEX`.
#[derive(Debug, Args)]
pub struct CoverageVerify {
    /// Patient id.
    patient: String,
    /// Insurer member id.
    insurer: String,
    /// The enrolment's index, from 0.
    index: u64,
}

impl CoverageVerify {
    fn entity(self) -> Entity {
        Entity::Coverage(self.patient, self.insurer, self.index)
    }
}

/// `verify practitioner DID`.
#[derive(Debug, Args)]
pub struct PractitionerVerify {
    /// DID.
    did: String,
}

/// `verify proposal ID`.
#[derive(Debug, Args)]
pub struct ProposalVerify {
    /// Proposal id.
    id: u64,
}

/// `verify access PATIENT`.
#[derive(Debug, Args)]
pub struct AccessVerify {
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
}

impl AccessVerify {
    /// Verifies the patient's complete access history and prints the events in the window: a
    /// table, or (`--export`) the export alone on stdout with the verdict on stderr.
    async fn run(self, v: &Verifier) -> anyhow::Result<()> {
        let patient = &self.patient;
        let (events, a) =
            medledger_client::verify::verify_history(&v.client, &v.trust, patient, v.height)
                .await?;
        let events: Vec<pb::AccessEvent> = events
            .into_iter()
            .filter(|e| {
                e.height >= self.from_height && (self.to_height == 0 || e.height <= self.to_height)
            })
            .collect();
        if let Some(format) = self.export {
            // The verdict goes to stderr so that stdout is exactly the export.
            eprintln!(
                "VERIFIED complete access history of {patient} ({}) at height {} — {}",
                event_count(events.len()),
                a.height,
                medledger_client::verify::signed_by(&a)
            );
            return export(format, patient, &events, &a, &v.trust);
        }
        let view = verified_view(
            format!("complete access history of {patient}"),
            format!("({})", event_count(events.len())),
            &a,
            Some(events),
        );
        print_verified(&view, v.out, &a, |events| render::table(events))
    }
}

/// Prints a verified access history as `format`.
fn export(
    format: ExportFormat,
    patient: &str,
    events: &[pb::AccessEvent],
    a: &Attestation,
    trust: &Trust,
) -> anyhow::Result<()> {
    use medledger_query::export::{fhir_audit_bundle, hipaa_disclosures_csv, ProvenanceInfo};
    match format {
        ExportFormat::Fhir => {
            let proven = ProvenanceInfo {
                chain_id: trust.chain_id().to_string(),
                height: a.height,
                app_hash_hex: hex::encode_upper(&a.app_hash),
            };
            print_json(&fhir_audit_bundle(patient, events, &proven))
        }
        ExportFormat::Csv => {
            print!("{}", hipaa_disclosures_csv(events));
            Ok(())
        }
    }
}

/// `verify record ID`.
#[derive(Debug, Args)]
pub struct RecordVerify {
    /// Record id.
    id: String,
}

impl RecordVerify {
    /// Verifies the record's anchor and prints where it stands: `EXISTS`, `ERASURE REQUESTED
    /// …` (the custodian, or too few share holders, have not yet confirmed that the key is
    /// destroyed; the holders that have not are named) or `ERASURE COMPLETE
    /// …` ([`medledger_query::records::erasure_state`]), `ABSENT` when proven absent; then its
    /// fields.
    async fn run(self, v: &Verifier) -> anyhow::Result<()> {
        let e = Entity::Record(self.id);
        let r = verify_key(&v.client, &v.trust, &e.key(), v.height).await?;
        let anchor = r
            .value
            .as_deref()
            .map(<pb::RecordAnchor as prost::Message>::decode)
            .transpose()
            .context("the record anchor does not decode")?;
        let state = anchor.as_ref().map_or_else(
            || "ABSENT".to_string(),
            |a| medledger_query::records::erasure_state(a).to_string(),
        );
        print_verified(
            &verified_view(e.label(), state, &r.attestation, anchor),
            v.out,
            &r.attestation,
            |a| render::detail(&a.fields()),
        )
    }
}

/// `verify permitted --patient P --actor A --class C --purpose P`.
#[derive(Debug, Args)]
pub struct PermittedVerify {
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
}

impl PermittedVerify {
    /// Evaluates the ledger's rule on proven consents and prints `PERMIT (consent …)` or
    /// `DENY`.
    async fn run(self, v: &Verifier) -> anyhow::Result<()> {
        let q = medledger_client::verify::PermittedQuery {
            patient: self.patient.clone(),
            actor: self.actor.clone(),
            action: pb::Action::from(self.action) as i32,
            data_class: self.class.clone(),
            record_id: self.record,
            purpose: Purpose::from(self.purpose) as i32,
        };
        let (permit, a, time) =
            medledger_client::verify::verify_permitted(&v.client, &v.trust, q, v.height).await?;
        let state = match &permit {
            Some(id) => format!("PERMIT (consent {id}, block time {})", render::utc(time)),
            None => format!(
                "DENY (no consent permits it at block time {})",
                render::utc(time)
            ),
        };
        let (actor, class, patient) = (self.actor, self.class, self.patient);
        print_verified(
            &verified_view(
                format!("access by {actor} to {class} of {patient}"),
                state,
                &a,
                permit,
            ),
            v.out,
            &a,
            // The state line names the permitting consent.
            |_| String::new(),
        )
    }
}

/// `verify key KEY`.
#[derive(Debug, Args)]
pub struct KeyVerify {
    /// The key.
    key: String,
}

impl KeyVerify {
    /// Verifies the raw value under the key (hex), or its absence.
    async fn run(self, v: &Verifier) -> anyhow::Result<()> {
        let key = self.key;
        let r = verify_key(&v.client, &v.trust, key.as_bytes(), v.height).await?;
        let state = if r.value.is_some() {
            "PRESENT"
        } else {
            "ABSENT"
        };
        let value = r.value.as_ref().map(hex::encode);
        print_verified(
            &verified_view(format!("key {key}"), state.into(), &r.attestation, value),
            v.out,
            &r.attestation,
            |v| render::detail(&[("value", v.clone())]),
        )
    }
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
struct VerifiedView<T> {
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
    a: &Attestation,
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

/// Prints `VERIFIED <what> <state> at height H — <who signed>` and `body` of the value (text), or
/// the view as JSON.
fn print_verified<T: Serialize>(
    v: &VerifiedView<T>,
    out: Output,
    a: &Attestation,
    body: impl Fn(&T) -> String,
) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(v);
    }
    print!("{}", verified_text(v, a, body));
    Ok(())
}

fn verified_text<T: Serialize>(
    v: &VerifiedView<T>,
    a: &Attestation,
    body: impl Fn(&T) -> String,
) -> String {
    let mut s = format!(
        "VERIFIED {} {} at height {} — {}\n",
        v.what,
        v.state,
        v.height,
        medledger_client::verify::signed_by(a)
    );
    if let Some(value) = &v.value {
        s.push_str(&body(value));
    }
    s
}

impl VerifyArgs {
    /// Verifies end to end and prints `VERIFIED …`, or `NOT VERIFIED: …` with [`Exit::NotVerified`].
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let out = ctx.out;
        let genesis = match self.genesis {
            Some(g) => g,
            None => {
                let local = ctx
                    .home
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
        let client = Client::new(&self.node.node)?;
        let root = match (self.trust_height, &self.trust_hash) {
            (Some(h), Some(hash)) => {
                Some((h, hex::decode(hash).context("--trust-hash is not hex")?))
            }
            _ => None,
        };
        let trust = Trust::from_genesis(&genesis, self.certificate)?
            .with_header_root(&client, self.trusting_period, root)
            .await?;
        let v = Verifier {
            client,
            trust,
            height: self.height,
            out,
        };
        match self.what.run(&v).await {
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

/// What every `verify` command checks against: the node, the trust root, the height, and
/// where the verdict goes.
struct Verifier {
    client: Client,
    trust: Trust,
    /// `--height` (0 = the latest that can be attested).
    height: u64,
    out: Output,
}

impl Verifier {
    /// Verifies the key of `e`, decodes its value, and prints `VERIFIED <label> <state> …`
    /// (`ABSENT` when proven absent) and the value's fields.
    async fn entity(&self, e: Entity) -> anyhow::Result<()> {
        let r = verify_key(&self.client, &self.trust, &e.key(), self.height).await?;
        let value = r.value.as_deref().map(|b| e.decode(b)).transpose()?;
        let state = value
            .as_ref()
            .map_or_else(|| "ABSENT".to_string(), Value::state);
        print_verified(
            &verified_view(e.label(), state, &r.attestation, value),
            self.out,
            &r.attestation,
            |v| render::detail(&v.fields()),
        )
    }
}

/// "1 event", "2 events".
fn event_count(n: usize) -> String {
    if n == 1 {
        "1 event".into()
    } else {
        format!("{n} events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attestation() -> Attestation {
        Attestation {
            method: "light-client header",
            height: 9,
            app_hash: vec![0x2F, 0xAD],
            signers: vec!["hospital-a".into(), "lab-b".into(), "insurer-c".into()],
            signed_power: 30,
            total_power: 40,
            validator_count: 4,
        }
    }

    #[test]
    fn a_verified_consent_prints_its_fields() -> anyhow::Result<()> {
        let a = attestation();
        let e = Entity::Consent("c-1".into());
        let c = pb::Consent {
            id: "c-1".into(),
            grantee: "hospital-a".into(),
            purposes: vec![Purpose::Treat as i32],
            revoked_height: 8,
            ..Default::default()
        };
        let value = e.decode(&prost::Message::encode_to_vec(&c))?;
        let view = verified_view(e.label(), value.state(), &a, Some(value));
        let t = verified_text(&view, &a, |v| render::detail(&v.fields()));
        println!("{t}");
        assert!(!t.contains('{'), "{t}");
        assert!(t.starts_with(
            "VERIFIED consent c-1 REVOKED (at height 8) at height 9 — app hash 2fad, light-client header signed by 3/4 validators"
        ), "{t}");
        assert!(t.contains("\n  purposes        TREAT\n"), "{t}");
        // JSON keeps its shape: the value is the consent itself, the app hash upper-case hex.
        let json = serde_json::to_value(&view)?;
        assert_eq!(json["value"]["purposes"], serde_json::json!([1]));
        assert_eq!(json["app_hash"], "2FAD");
        Ok(())
    }

    #[test]
    fn a_verified_record_says_whether_its_erasure_is_confirmed() -> anyhow::Result<()> {
        let a = attestation();
        let mut anchor = pb::RecordAnchor {
            record_id: "obs-1".into(),
            patient_id: "pt-1".into(),
            custodian: "lab-b".into(),
            erased_height: 7,
            erased_by: "pt-1".into(),
            ..Default::default()
        };
        let text = |anchor: &pb::RecordAnchor| {
            let state = medledger_query::records::erasure_state(anchor).to_string();
            let view = verified_view("record obs-1".into(), state, &a, Some(anchor.clone()));
            verified_text(&view, &a, |v| render::detail(&v.fields()))
        };
        let t = text(&anchor);
        assert!(
            t.starts_with(
                "VERIFIED record obs-1 ERASURE REQUESTED at height 7 by pt-1, key destruction \
                 not yet confirmed by lab-b at height 9"
            ),
            "{t}"
        );
        assert!(t.contains("\n  erasure_confirmed_height  -\n"), "{t}");
        anchor.erasure_confirmed_height = 8;
        anchor.erasure_confirmed_by = "lab-b".into();
        let t = text(&anchor);
        assert!(
            t.starts_with(
                "VERIFIED record obs-1 ERASURE COMPLETE, requested at height 7 by pt-1, key \
                 destruction confirmed at height 8 by lab-b at height 9"
            ),
            "{t}"
        );
        assert!(t.contains("\n  erasure_confirmed_by      lab-b\n"), "{t}");
        let view = verified_view("record obs-1".into(), String::new(), &a, Some(anchor));
        let json = serde_json::to_value(&view)?;
        assert_eq!(json["value"]["erasure_confirmed_height"], 8);
        Ok(())
    }

    #[test]
    fn a_verified_history_prints_a_table() {
        let a = attestation();
        let events = vec![pb::AccessEvent {
            patient_id: "pt-1".into(),
            actor: "hospital-a".into(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: Purpose::Treat as i32,
            action: pb::Action::Read as i32,
            consent_id: "c-1".into(),
            height: 6,
            time: 1_764_126_000,
            ..Default::default()
        }];
        let view = verified_view(
            "complete access history of pt-1".into(),
            "(1 event)".into(),
            &a,
            Some(events),
        );
        let t = verified_text(&view, &a, |events| render::table(events));
        println!("{t}");
        assert!(!t.contains('{'), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3, "{t}");
        assert!(lines[1].contains("index") && lines[1].contains("consent_id"));
        assert!(lines[2].contains("2025-11-26T03:00:00Z") && lines[2].contains("READ"));
    }
}

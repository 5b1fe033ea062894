//! `medledger tx claim publish-policy|submit|decide|pay|appeal`, `medledger tx coverage
//! enrol|end`, and `medledger query claim ID` / `query policy INSURER POLICY [--version N]` /
//! `query coverage PATIENT INSURER`: insurers' coverage policies, patients' enrolments and
//! providers' claims. As in the other domains, each tx command is a struct that builds its
//! message (`into_msg`; `tx` signs and sends it) and each query a struct that reads and prints
//! with a [`Reader`] (`run`).
//!
//! Free text (appeal reasons, decision notes) never goes on chain: the CLI sends its SHA-256 and
//! prints it; the signer keeps the text.
//!
//! Amounts are integer minor currency units (e.g. cents), as on the ledger. The rules the ledger
//! applies are in docs/rules.md ("Claims").

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use medledger_tx::keys;
use medledger_tx::pb::{
    self, tx_body::Msg, ClaimItem, ClaimProcedure, CoverageRule, OtherCoverage, Payee,
    ProcedureSystem,
};
use medledger_tx::rules::claims::item_amount;
use sha2::{Digest, Sha256};

use super::entity::Entity;
use super::read::{print_list, show, Reader};
use super::Output;

/// Claims transactions.
#[derive(Debug, Subcommand)]
pub enum ClaimTx {
    /// Publish the next version of one of your coverage policies (an insurer's admin key).
    PublishPolicy(PublishPolicyArgs),
    /// Submit a claim for a patient (a hospital's or lab's admin, or one of its clinicians).
    Submit(SubmitClaimArgs),
    /// Decide a pending or appealed claim (the insurer's admin or a claims adjuster).
    Decide(DecideClaimArgs),
    /// Record the payment of an approved or partially approved claim (the insurer).
    Pay(PayClaimArgs),
    /// Appeal a denied or partially approved claim, once (the provider).
    Appeal(AppealClaimArgs),
}

impl ClaimTx {
    /// The message the command sends.
    pub(super) fn into_msg(self) -> anyhow::Result<Msg> {
        match self {
            ClaimTx::PublishPolicy(a) => Ok(a.into_msg()),
            ClaimTx::Submit(a) => a.into_msg(),
            ClaimTx::Decide(a) => Ok(a.into_msg()),
            ClaimTx::Pay(a) => Ok(a.into_msg()),
            ClaimTx::Appeal(a) => a.into_msg(),
        }
    }
}

/// `tx claim publish-policy`.
#[derive(Debug, Args)]
pub struct PublishPolicyArgs {
    /// Policy id, e.g. `gold`.
    #[arg(long = "policy")]
    policy_id: String,
    /// A coverage rule (repeat): `CODE[,cap=N][,copay=N|,copay-bps=N][,preauth]`, or
    /// `CODE,not-covered`. `cap` is the most paid per unit; `copay` a fixed amount per item;
    /// `copay-bps` basis points of the approved amount (10000 = all of it).
    #[arg(long = "rule", required = true, value_parser = parse_rule)]
    rules: Vec<CoverageRule>,
}

impl PublishPolicyArgs {
    fn into_msg(self) -> Msg {
        Msg::PublishPolicy(pb::PublishPolicy {
            policy_id: self.policy_id,
            rules: self.rules,
        })
    }
}

/// `tx claim submit`.
#[derive(Debug, Args)]
pub struct SubmitClaimArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// Insurer member id; the patient must have granted it an HPAYMT consent for `Claim`.
    #[arg(long)]
    insurer: String,
    /// The insurer's policy id; the claim is adjudicated against its latest version.
    #[arg(long = "policy")]
    policy_id: String,
    /// Day of service, unix seconds (not after the block time).
    #[arg(long)]
    date: u64,
    /// An item (repeat): `CODE[@MODIFIER]:QUANTITY:UNIT_PRICE`. Each service once per claim;
    /// a real second service of a code on one day carries a modifier, e.g. `99213@76:1:5000`.
    #[arg(long = "item", required = true, value_parser = parse_item)]
    items: Vec<ClaimItem>,
    /// Evidence of treatment (repeat, 1-16): the index of an access event of the patient by
    /// your member for TREAT or ETREAT, on the day of service or up to 30 days before (see
    /// `query access PATIENT`). None for a preauthorization.
    #[arg(long = "evidence", required_unless_present = "preauthorization")]
    evidence: Vec<u64>,
    /// An anchored record of the patient supporting the claim (repeat).
    #[arg(long = "record")]
    records: Vec<String>,
    /// The claim's total; computed from the items when omitted.
    #[arg(long)]
    total: Option<u64>,
    /// A diagnosis (repeat, 0-12, the first the principal one): an ICD-10 code, e.g. `J45.909`.
    #[arg(long = "diagnosis")]
    diagnoses: Vec<String>,
    /// A practitioner of your member on the care team (repeat, 0-8): their DID.
    #[arg(long = "care-team")]
    care_team: Vec<String>,
    /// Ask the insurer to approve the services before they are given (cites no evidence; never
    /// paid).
    #[arg(long)]
    preauthorization: bool,
    /// A procedure performed on the day of service (repeat, 0-12): `SYSTEM|CODE`, SYSTEM one of
    /// `icd10-pcs`, `snomed`, `cpt` or its URI (e.g. `cpt|99213`, `snomed|80146002`,
    /// `icd10-pcs|0DB60ZZ`).
    #[arg(long = "procedure", value_parser = parse_procedure)]
    procedures: Vec<ClaimProcedure>,
    /// To whom the insurer pays the benefit: `provider` (your member; the default) or
    /// `subscriber` (the patient).
    #[arg(long, value_parser = parse_payee)]
    payee: Option<Payee>,
    /// Another coverage of the patient, recorded for coordination of benefits and not
    /// adjudicated (repeat, 0-3): `INSURER:POLICY` (the other insurer's member id and policy id).
    #[arg(long = "other-coverage", value_parser = parse_other_coverage)]
    other_coverage: Vec<OtherCoverage>,
}

impl SubmitClaimArgs {
    fn into_msg(self) -> anyhow::Result<Msg> {
        let total = match self.total {
            Some(t) => t,
            None => items_total(&self.items)?,
        };
        Ok(Msg::SubmitClaim(pb::SubmitClaim {
            patient_id: self.patient,
            insurer: self.insurer,
            policy_id: self.policy_id,
            service_date: self.date,
            items: self.items,
            record_ids: self.records,
            total,
            evidence: self.evidence,
            diagnoses: self.diagnoses,
            care_team: self.care_team,
            preauthorization: self.preauthorization,
            payee: self.payee.unwrap_or(Payee::Provider) as i32,
            procedures: self.procedures,
            other_coverage: self.other_coverage,
        }))
    }
}

/// `tx claim decide`.
#[derive(Debug, Args)]
pub struct DecideClaimArgs {
    /// Claim id, e.g. cl-1.
    claim_id: String,
    /// Approved amount of each item, in item order (repeat once per item).
    #[arg(long = "amount", required = true)]
    amounts: Vec<u64>,
    /// A note for the provider: only its SHA-256 goes on chain (printed); keep the text.
    #[arg(long, default_value = "")]
    note: String,
}

impl DecideClaimArgs {
    fn into_msg(self) -> Msg {
        Msg::DecideClaim(pb::DecideClaim {
            claim_id: self.claim_id,
            approved_amounts: self.amounts,
            note_hash: if self.note.is_empty() {
                Vec::new()
            } else {
                text_hash("note", &self.note)
            },
        })
    }
}

/// `tx claim pay`.
#[derive(Debug, Args)]
pub struct PayClaimArgs {
    /// Claim id.
    claim_id: String,
    /// The payment's reference, e.g. a bank transfer id.
    #[arg(long)]
    reference: String,
}

impl PayClaimArgs {
    fn into_msg(self) -> Msg {
        Msg::PayClaim(pb::PayClaim {
            claim_id: self.claim_id,
            payment_reference: self.reference,
        })
    }
}

/// `tx claim appeal`.
#[derive(Debug, Args)]
pub struct AppealClaimArgs {
    /// Claim id.
    claim_id: String,
    /// Why the insurer should decide again: only its SHA-256 goes on chain (printed); keep
    /// the text and send it to the insurer.
    #[arg(long)]
    reason: String,
}

impl AppealClaimArgs {
    fn into_msg(self) -> anyhow::Result<Msg> {
        if self.reason.trim().is_empty() {
            bail!("an appeal needs a written reason");
        }
        Ok(Msg::AppealClaim(pb::AppealClaim {
            claim_id: self.claim_id,
            reason_hash: text_hash("reason", &self.reason),
        }))
    }
}

/// Coverage (enrolment) transactions, signed by an insurer's admin key.
#[derive(Debug, Subcommand)]
pub enum CoverageTx {
    /// Enrol a patient in one of your published policies for [start, end).
    Enrol(EnrolCoverageArgs),
    /// End an enrolment early: services from END on are not covered (END ≥ the block time).
    End(EndCoverageArgs),
}

impl CoverageTx {
    /// The message the command sends.
    pub(super) fn into_msg(self) -> Msg {
        match self {
            CoverageTx::Enrol(a) => a.into_msg(),
            CoverageTx::End(a) => a.into_msg(),
        }
    }
}

/// `tx coverage enrol`.
#[derive(Debug, Args)]
pub struct EnrolCoverageArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// Your policy id.
    #[arg(long = "policy")]
    policy_id: String,
    /// Start of cover, unix seconds (default 0: from any time).
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// End of cover (exclusive), unix seconds (default 0: open-ended).
    #[arg(long, default_value_t = 0)]
    end: u64,
}

impl EnrolCoverageArgs {
    fn into_msg(self) -> Msg {
        Msg::EnrolCoverage(pb::EnrolCoverage {
            patient_id: self.patient,
            policy_id: self.policy_id,
            start: self.start,
            end: self.end,
        })
    }
}

/// `tx coverage end`.
#[derive(Debug, Args)]
pub struct EndCoverageArgs {
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// The enrolment's index (see `query coverage PATIENT INSURER`).
    #[arg(long)]
    index: u64,
    /// End of cover (exclusive), unix seconds.
    #[arg(long)]
    end: u64,
}

impl EndCoverageArgs {
    fn into_msg(self) -> Msg {
        Msg::EndCoverage(pb::EndCoverage {
            patient_id: self.patient,
            index: self.index,
            end: self.end,
        })
    }
}

/// `query claim ID`.
#[derive(Debug, Args)]
pub struct ClaimQuery {
    /// Claim id, e.g. cl-1.
    id: String,
}

impl ClaimQuery {
    /// Prints the claim.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        show(&r.read_entity(&Entity::Claim(self.id)).await?, out)
    }
}

/// `query policy INSURER POLICY [--version N]`.
#[derive(Debug, Args)]
pub struct PolicyQuery {
    /// Insurer member id.
    insurer: String,
    /// Policy id.
    policy: String,
    /// A published version (default: the latest at the height read).
    #[arg(long)]
    version: Option<u64>,
}

impl PolicyQuery {
    /// Prints a policy version; without `--version`, the latest one, read at the same height as
    /// the pointer to it.
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let version = match self.version {
            Some(v) => v,
            None => {
                let latest = r
                    .read_u64(&keys::policy_latest(&self.insurer, &self.policy))
                    .await?;
                r.height = latest.height;
                match latest.value {
                    Some(v) => v,
                    // No such policy: show the (possibly proven) absence of its pointer.
                    None => return show(&latest, out),
                }
            }
        };
        show(
            &r.read_msg::<pb::CoveragePolicy>(&keys::policy(&self.insurer, &self.policy, version))
                .await?,
            out,
        )
    }
}

/// `query coverage PATIENT INSURER`: every enrolment of the patient with the insurer.
#[derive(Debug, Args)]
pub struct CoverageQuery {
    /// Patient id.
    patient: String,
    /// Insurer member id.
    insurer: String,
}

impl CoverageQuery {
    /// Prints every enrolment, read at the height of the count (with `--prove`, a proof of the
    /// count and of each entry: the complete coverage history).
    pub(super) async fn run(self, r: &mut Reader, out: Output) -> anyhow::Result<()> {
        let (count, entries) = r
            .read_list(
                &keys::List::Coverage(&self.patient, &self.insurer),
                medledger_tx::limits::MAX_COVERAGES_PER_INSURER,
            )
            .await?;
        let list = entries
            .into_iter()
            .map(|a| a.decoded::<pb::Coverage>())
            .collect::<anyhow::Result<Vec<_>>>()?;
        print_list(&count, &list, out)
    }
}

/// SHA-256 of free text that stays off chain; printed (stderr) so the signer can match the text
/// they keep to the hash the ledger holds.
fn text_hash(field: &str, text: &str) -> Vec<u8> {
    let hash = Sha256::digest(text.as_bytes()).to_vec();
    eprintln!(
        "{field}_hash {} (SHA-256 of the {field}; only the hash goes on chain, keep the text)",
        hex::encode(&hash)
    );
    hash
}

/// Sum of quantity × unit_price, with the ledger's own checked arithmetic.
fn items_total(items: &[ClaimItem]) -> anyhow::Result<u64> {
    items.iter().try_fold(0u64, |sum, item| {
        let amount = item_amount(item).map_err(|e| anyhow::anyhow!(e.message))?;
        sum.checked_add(amount)
            .context("the items' total does not fit in 64 bits; the ledger would refuse the claim")
    })
}

/// Parses `CODE[,cap=N][,copay=N|,copay-bps=N][,preauth]` or `CODE,not-covered`.
fn parse_rule(s: &str) -> anyhow::Result<CoverageRule> {
    let mut parts = s.split(',');
    let code = parts
        .next()
        .filter(|c| !c.is_empty())
        .context("a rule starts with its service code")?;
    let mut rule = CoverageRule {
        service_code: code.to_string(),
        covered: true,
        ..Default::default()
    };
    for part in parts {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let number = || {
            value
                .parse::<u64>()
                .with_context(|| format!("{name}={value:?}: not a whole number of minor units"))
        };
        match name {
            "cap" => rule.price_cap = number()?,
            "copay" => rule.copay_fixed = number()?,
            "copay-bps" => rule.copay_bps = value.parse().with_context(|| format!("copay-bps={value:?}: not a whole number"))?,
            "preauth" if value.is_empty() => rule.preauth_required = true,
            "not-covered" if value.is_empty() => rule.covered = false,
            _ => bail!("unknown rule option {part:?}; use cap=N, copay=N, copay-bps=N, preauth or not-covered"),
        }
    }
    Ok(rule)
}

/// Parses `CODE[@MODIFIER]:QUANTITY:UNIT_PRICE` (the code itself may contain `:`; `@` is never
/// part of a code).
fn parse_item(s: &str) -> anyhow::Result<ClaimItem> {
    let mut parts = s.rsplitn(3, ':');
    let (Some(price), Some(quantity), Some(code)) = (parts.next(), parts.next(), parts.next())
    else {
        bail!("an item is CODE[@MODIFIER]:QUANTITY:UNIT_PRICE");
    };
    let (code, modifier) = code.split_once('@').unwrap_or((code, ""));
    Ok(ClaimItem {
        service_code: code.to_string(),
        modifier: modifier.to_string(),
        quantity: quantity
            .parse()
            .with_context(|| format!("quantity {quantity:?} is not a whole number"))?,
        unit_price: price.parse().with_context(|| {
            format!("unit price {price:?} is not a whole number of minor units")
        })?,
    })
}

/// The procedure code systems by the names the CLI takes and their FHIR URIs.
const PROCEDURE_SYSTEMS: [(&str, &str, ProcedureSystem); 3] = [
    (
        "icd10-pcs",
        "http://www.cms.gov/Medicare/Coding/ICD10",
        ProcedureSystem::Icd10Pcs,
    ),
    (
        "snomed",
        "http://snomed.info/sct",
        ProcedureSystem::SnomedCt,
    ),
    (
        "cpt",
        "http://www.ama-assn.org/go/cpt",
        ProcedureSystem::Cpt,
    ),
];

/// Parses `SYSTEM|CODE` (SYSTEM a name of [`PROCEDURE_SYSTEMS`] or its URI).
fn parse_procedure(s: &str) -> anyhow::Result<ClaimProcedure> {
    let Some((system, code)) = s.rsplit_once('|') else {
        bail!("a procedure is SYSTEM|CODE, SYSTEM one of icd10-pcs, snomed, cpt");
    };
    let Some((_, _, system)) = PROCEDURE_SYSTEMS
        .iter()
        .find(|(name, uri, _)| *name == system || *uri == system)
    else {
        bail!("unknown procedure system {system:?}; use icd10-pcs, snomed or cpt");
    };
    Ok(ClaimProcedure {
        system: *system as i32,
        code: code.to_string(),
    })
}

/// Parses `provider` or `subscriber`.
fn parse_payee(s: &str) -> anyhow::Result<Payee> {
    match s {
        "provider" => Ok(Payee::Provider),
        "subscriber" => Ok(Payee::Subscriber),
        _ => bail!("the payee is provider or subscriber, not {s:?}"),
    }
}

/// Parses `INSURER:POLICY`.
fn parse_other_coverage(s: &str) -> anyhow::Result<OtherCoverage> {
    let Some((insurer, policy)) = s.split_once(':') else {
        bail!("other coverage is INSURER:POLICY (the insurer's member id and policy id)");
    };
    Ok(OtherCoverage {
        insurer: insurer.to_string(),
        policy_id: policy.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_from, Command, TxCmd};

    fn tx_msg(args: &[&str]) -> anyhow::Result<Msg> {
        let mut all = vec!["medledger", "tx", "--from", "hospital-a", "claim"];
        all.extend_from_slice(args);
        let cli = parse_from(all)?;
        let Command::Tx(t) = cli.command else {
            bail!("not a tx")
        };
        let TxCmd::Claim(c) = t.msg else {
            bail!("not a claim tx")
        };
        c.into_msg()
    }

    #[test]
    fn rules_parse_with_their_options() {
        let r = parse_rule("99213,cap=15000,copay=2000").expect("parses");
        assert_eq!(
            (
                r.service_code.as_str(),
                r.covered,
                r.price_cap,
                r.copay_fixed
            ),
            ("99213", true, 15_000, 2_000)
        );
        let r = parse_rule("80053,copay-bps=1000,preauth").expect("parses");
        assert_eq!((r.copay_bps, r.preauth_required), (1_000, true));
        assert!(!parse_rule("97110,not-covered").expect("parses").covered);
        assert!(parse_rule("99213,cap=ten").is_err());
        assert!(parse_rule("99213,bogus").is_err());
        assert!(parse_rule(",cap=1").is_err());
    }

    #[test]
    fn items_parse_and_the_total_is_computed() -> anyhow::Result<()> {
        assert_eq!(
            parse_item("loinc:2345-7:3:250")
                .expect("parses")
                .service_code,
            "loinc:2345-7"
        );
        assert!(parse_item("99213:1").is_err());
        let msg = tx_msg(&[
            "submit",
            "--patient",
            "pt-1",
            "--insurer",
            "insurer-c",
            "--policy",
            "gold",
            "--date",
            "1700000000",
            "--item",
            "99213:1:12000",
            "--item",
            "80053:2:4999",
            "--item",
            "99213@76:1:12000",
            "--record",
            "r-1",
            "--evidence",
            "4",
            "--evidence",
            "9",
        ])
        .expect("parses");
        let Msg::SubmitClaim(m) = msg else {
            bail!("not a submit")
        };
        assert_eq!(
            (m.total, m.items.len(), m.record_ids, m.evidence),
            (33_998, 3, vec!["r-1".to_string()], vec![4, 9])
        );
        assert_eq!(
            (
                m.items[2].service_code.as_str(),
                m.items[2].modifier.as_str()
            ),
            ("99213", "76")
        );
        let overflow = tx_msg(&[
            "submit",
            "--patient",
            "p",
            "--insurer",
            "i",
            "--policy",
            "g",
            "--date",
            "1",
            "--item",
            "a:2:18446744073709551615",
            "--evidence",
            "0",
        ]);
        assert!(overflow.is_err());
        Ok(())
    }

    #[test]
    fn every_claim_field_has_a_flag() -> anyhow::Result<()> {
        let Msg::SubmitClaim(m) = tx_msg(&[
            "submit",
            "--patient",
            "pt-1",
            "--insurer",
            "insurer-c",
            "--policy",
            "gold",
            "--date",
            "1700000000",
            "--item",
            "99213:1:12000",
            "--evidence",
            "4",
            "--diagnosis",
            "J45.909",
            "--diagnosis",
            "E11.65",
            "--care-team",
            "did:medledger:ab12",
            "--procedure",
            "cpt|99213",
            "--procedure",
            "http://snomed.info/sct|80146002",
            "--payee",
            "subscriber",
            "--other-coverage",
            "insurer-d:silver",
        ])?
        else {
            bail!("not a submit")
        };
        assert_eq!(m.diagnoses, ["J45.909", "E11.65"]);
        assert_eq!(m.care_team, ["did:medledger:ab12"]);
        assert_eq!(
            m.procedures,
            [
                ClaimProcedure {
                    system: ProcedureSystem::Cpt as i32,
                    code: "99213".into()
                },
                ClaimProcedure {
                    system: ProcedureSystem::SnomedCt as i32,
                    code: "80146002".into()
                }
            ]
        );
        assert_eq!(m.payee, Payee::Subscriber as i32);
        assert_eq!(
            m.other_coverage,
            [OtherCoverage {
                insurer: "insurer-d".into(),
                policy_id: "silver".into()
            }]
        );
        assert!(!m.preauthorization);
        let base = [
            "submit",
            "--patient",
            "p",
            "--insurer",
            "i",
            "--policy",
            "g",
            "--date",
            "1",
            "--item",
            "a:1:1",
        ];
        let Msg::SubmitClaim(p) = tx_msg(&[&base[..], &["--preauthorization"]].concat())? else {
            bail!("not a submit")
        };
        assert!(p.preauthorization && p.evidence.is_empty());
        assert_eq!(p.payee, Payee::Provider as i32, "provider by default");
        assert!(tx_msg(&base).is_err(), "a claim cites evidence");
        for bad in [
            &["--procedure", "loinc|1234-5"][..],
            &["--procedure", "99213"],
            &["--payee", "other"],
            &["--other-coverage", "insurer-d"],
        ] {
            let args = [&base[..], &["--evidence", "0"], bad].concat();
            assert!(tx_msg(&args).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn decide_pay_and_appeal_parse() -> anyhow::Result<()> {
        let Msg::DecideClaim(d) = tx_msg(&["decide", "cl-1", "--amount", "100", "--amount", "0"])?
        else {
            bail!("not a decision")
        };
        assert_eq!(d.approved_amounts, vec![100, 0]);
        assert!(tx_msg(&["decide", "cl-1"]).is_err(), "amounts are required");
        assert!(matches!(
            tx_msg(&["pay", "cl-1", "--reference", "SEPA-1"]),
            Ok(Msg::PayClaim(_))
        ));
        let Msg::AppealClaim(a) = tx_msg(&["appeal", "cl-1", "--reason", "preauth ref 7"])? else {
            bail!("not an appeal")
        };
        assert_eq!(
            a.reason_hash,
            Sha256::digest(b"preauth ref 7").to_vec(),
            "only the reason's hash is sent"
        );
        assert!(tx_msg(&["appeal", "cl-1", "--reason", " "]).is_err());
        let Msg::DecideClaim(d) = tx_msg(&["decide", "cl-1", "--amount", "1", "--note", "n"])?
        else {
            bail!("not a decision")
        };
        assert_eq!(d.note_hash, Sha256::digest(b"n").to_vec());
        assert!(matches!(
            tx_msg(&["publish-policy", "--policy", "gold", "--rule", "99213,cap=1"]),
            Ok(Msg::PublishPolicy(p)) if p.rules.len() == 1
        ));
        Ok(())
    }

    #[test]
    fn claim_and_policy_queries_parse() {
        assert!(parse_from(["medledger", "query", "claim", "cl-1"]).is_ok());
        assert!(parse_from([
            "medledger",
            "query",
            "--prove",
            "policy",
            "insurer-c",
            "gold",
            "--version",
            "2"
        ])
        .is_ok());
        assert!(parse_from(["medledger", "query", "policy", "insurer-c"]).is_err());
    }
}

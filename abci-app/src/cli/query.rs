//! `medledger query`: read the ledger's state, optionally with verified proofs.

use anyhow::Context;
use clap::{Args, Subcommand};
use medledger_client::{Client, ProvenAnswer};
use medledger_tx::keys;
use medledger_tx::limits::MAX_HISTORY_READ;
use medledger_tx::pb;
use medledger_tx::rules::consent::in_force;
use prost::Message;
use serde::Serialize;

use super::entity::{Entity, Value};
use super::render::{self, Render};
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
    Member {
        /// Member id.
        id: String,
    },
    /// A patient.
    Patient {
        /// Patient id.
        id: String,
    },
    /// A consent.
    Consent {
        /// Consent id.
        id: String,
    },
    /// Every consent of a patient.
    Consents {
        /// Patient id.
        patient: String,
    },
    /// Every access event of a patient.
    Access {
        /// Patient id.
        patient: String,
    },
    /// Every record anchored for a patient, at any member (the record locator): id, type,
    /// custodian, anchored height, erasure. A complete list when proven (`--prove`).
    Records {
        /// Patient id.
        patient: String,
    },
    /// A practitioner.
    Practitioner {
        /// The practitioner's DID.
        did: String,
    },
    /// A practitioner's W3C DID document.
    Did {
        /// The DID.
        did: String,
    },
    /// A patient's guardians.
    Guardians {
        /// Patient id.
        patient: String,
    },
    /// A record anchor.
    Record {
        /// Record id.
        id: String,
    },
    /// A member's break-glass reviews (open ones first).
    Reviews {
        /// Member id.
        member: String,
    },
    /// Who consents to a research study now (HRESCH consents active at the answer's block time).
    Study {
        /// Study id.
        study: String,
    },
    /// A practitioner's auditor grant (`auditor/{did}`, written by governance): its scope (every
    /// member, or one) and the proposal that granted it; ABSENT when they hold none.
    Auditor {
        /// The practitioner's DID.
        did: String,
    },
    /// A governance proposal and its tally.
    Proposal {
        /// Proposal id.
        id: u64,
    },
    /// Any state key, raw (e.g. `seq/<hex key>`).
    Key {
        /// The key.
        key: String,
    },
    /// A claim.
    Claim(claims::ClaimQuery),
    /// An insurer's coverage policy (the latest version unless --version).
    Policy(claims::PolicyQuery),
    /// A patient's enrolments with an insurer (complete, with --prove).
    Coverage(claims::CoverageQuery),
}

/// A read answer: decoded value plus, when proven, what it was proven against.
#[derive(Serialize)]
pub(super) struct Answer<T> {
    pub(super) key: String,
    pub(super) height: u64,
    pub(super) value: Option<T>,
    /// App hash (hex) of `height`, from header `height + 1`, that the proof verified against.
    pub(super) verified_against: Option<String>,
}

impl Answer<Vec<u8>> {
    /// The raw value decoded as `M`.
    pub(super) fn decoded<M: Message + Default>(self) -> anyhow::Result<Answer<M>> {
        let value = self
            .value
            .map(|v| M::decode(v.as_slice()))
            .transpose()
            .with_context(|| format!("{} does not decode", self.key))?;
        Ok(Answer {
            key: self.key,
            height: self.height,
            value,
            verified_against: self.verified_against,
        })
    }
}

pub(super) struct Reader {
    pub(super) client: Client,
    pub(super) height: u64,
    pub(super) prove: bool,
}

impl Reader {
    pub(super) async fn read(
        &self,
        key: &[u8],
    ) -> anyhow::Result<(Option<Vec<u8>>, u64, Option<String>)> {
        if self.prove {
            let ProvenAnswer {
                value,
                height,
                app_hash,
                ..
            } = self.client.query_proven(key, self.height).await?;
            Ok((value, height, Some(hex::encode_upper(app_hash))))
        } else {
            let (value, height) = self.client.query_raw(key, self.height).await?;
            Ok((value, height, None))
        }
    }

    pub(super) async fn read_msg<M: Message + Default + Serialize>(
        &self,
        key: &[u8],
    ) -> anyhow::Result<Answer<M>> {
        let (value, height, verified_against) = self.read(key).await?;
        let value = value
            .map(|v| M::decode(v.as_slice()))
            .transpose()
            .context("value does not decode")?;
        Ok(Answer {
            key: String::from_utf8_lossy(key).into(),
            height,
            value,
            verified_against,
        })
    }

    /// Reads one entity of the shared table and decodes it as its type.
    pub(super) async fn read_entity(&self, e: &Entity) -> anyhow::Result<Answer<Value>> {
        let key = e.key();
        let (value, height, verified_against) = self.read(&key).await?;
        Ok(Answer {
            key: String::from_utf8_lossy(&key).into(),
            height,
            value: value.map(|v| e.decode(&v)).transpose()?,
            verified_against,
        })
    }

    /// Reads `list` whole: its count, then (at the count's height, which this reader keeps from
    /// then on) every entry below it. More than `max` entries is an error, a missing one a gap.
    pub(super) async fn read_list(
        &mut self,
        list: &keys::List<'_>,
        max: u64,
    ) -> anyhow::Result<(Answer<u64>, Vec<Answer<Vec<u8>>>)> {
        let count = self.read_u64(&list.count_key()).await?;
        self.height = count.height;
        let n = count.value.unwrap_or(0);
        anyhow::ensure!(
            n <= max,
            "{} is {n}; this command reads at most {max} entries",
            count.key
        );
        let mut entries = Vec::new();
        for i in 0..n {
            let key = list.entry_key(i);
            let (value, height, verified_against) = self.read(&key).await?;
            let key = String::from_utf8_lossy(&key).into_owned();
            anyhow::ensure!(value.is_some(), "{key} is missing: the list has a gap");
            entries.push(Answer {
                key,
                height,
                value,
                verified_against,
            });
        }
        Ok((count, entries))
    }

    /// Reads a list of ids (`List::PatientConsents`, `Grants`, `Reviews`, `Study`) as strings.
    pub(super) async fn read_ids(
        &mut self,
        list: &keys::List<'_>,
        max: u64,
    ) -> anyhow::Result<(Answer<u64>, Vec<String>)> {
        let (count, entries) = self.read_list(list, max).await?;
        let ids = entries
            .into_iter()
            .map(|a| String::from_utf8_lossy(&a.value.unwrap_or_default()).into_owned())
            .collect();
        Ok((count, ids))
    }

    pub(super) async fn read_u64(&self, key: &[u8]) -> anyhow::Result<Answer<u64>> {
        let (value, height, verified_against) = self.read(key).await?;
        let value = value
            .map(|v| keys::decode_u64(&v).context("counter is not 8 bytes"))
            .transpose()?;
        Ok(Answer {
            key: String::from_utf8_lossy(key).into(),
            height,
            value,
            verified_against,
        })
    }
}

pub(super) fn show<T: Serialize + Render>(a: &Answer<T>, out: Output) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(a);
    }
    print!("{}", show_text(a));
    Ok(())
}

/// The text of one answer: `KEY at height H:` and the value's fields, or `ABSENT`.
fn show_text<T: Render>(a: &Answer<T>) -> String {
    let mut s = match &a.value {
        Some(v) => format!(
            "{} at height {}:\n{}",
            a.key,
            a.height,
            render::detail(&v.fields())
        ),
        None => format!("{} at height {}: ABSENT\n", a.key, a.height),
    };
    s.push_str(&verified_line(a));
    s
}

fn verified_line<T>(a: &Answer<T>) -> String {
    match &a.verified_against {
        Some(h) => format!(
            "VERIFIED: proof checks against app hash {} (committed in header {})\n",
            h.to_lowercase(),
            a.height + 1
        ),
        None => String::new(),
    }
}

impl QueryArgs {
    /// Reads (with `--prove`: and verifies against the committed app hash) and prints.
    pub async fn run(self, ctx: &Ctx) -> anyhow::Result<Exit> {
        let (q, out) = (self, ctx.out);
        let client = Client::new(&q.node.node)?;
        let mut r = Reader {
            client,
            height: q.height,
            prove: q.prove,
        };
        match q.what {
            QueryCmd::Member { id } => show(&r.read_entity(&Entity::Member(id)).await?, out)?,
            QueryCmd::Patient { id } => show(&r.read_entity(&Entity::Patient(id)).await?, out)?,
            QueryCmd::Consent { id } => show(&r.read_entity(&Entity::Consent(id)).await?, out)?,
            QueryCmd::Practitioner { did } => {
                show(&r.read_entity(&Entity::Practitioner(did)).await?, out)?
            }
            QueryCmd::Did { did } => {
                let a = r
                    .read_msg::<pb::Practitioner>(&keys::practitioner(&did))
                    .await?;
                let p = a.value.with_context(|| format!("no practitioner {did}"))?;
                print_json(&rules::did_document(&p))?;
            }
            QueryCmd::Guardians { patient } => {
                show(&r.read_entity(&Entity::Guardians(patient)).await?, out)?
            }
            QueryCmd::Record { id } => show(&r.read_entity(&Entity::Record(id)).await?, out)?,
            QueryCmd::Reviews { member } => {
                let (count, items) = r
                    .read_ids(&keys::List::Reviews(&member), MAX_HISTORY_READ)
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
                    a.value
                        .as_ref()
                        .map(|e| e.review != pb::ReviewStatus::Pending as i32)
                });
                print_list(&count, &list, out)?;
            }
            QueryCmd::Study { study } => {
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
                let view = serde_json::json!({
                    "study": study, "height": count.height, "consenting_patients": participants.len(),
                    "patients": participants, "proven": r.prove,
                });
                if out == Output::Json {
                    print_json(&view)?;
                } else {
                    println!(
                        "study {study} at height {}: {} patients consent{}",
                        count.height,
                        participants.len(),
                        if r.prove { " (every read proven)" } else { "" }
                    );
                    for p in &participants {
                        println!("  {p}");
                    }
                }
            }
            QueryCmd::Proposal { id } => show(&r.read_entity(&Entity::Proposal(id)).await?, out)?,
            QueryCmd::Auditor { did } => {
                show(&r.read_msg::<pb::Auditor>(&keys::auditor(&did)).await?, out)?
            }
            QueryCmd::Key { key } => {
                let (value, height, verified_against) = r.read(key.as_bytes()).await?;
                show(
                    &Answer {
                        key,
                        height,
                        value: value.map(hex::encode),
                        verified_against,
                    },
                    out,
                )?;
            }
            QueryCmd::Consents { patient } => {
                let (count, ids) = r
                    .read_ids(
                        &keys::List::PatientConsents(&patient),
                        medledger_tx::limits::MAX_CONSENTS_PER_PATIENT,
                    )
                    .await?;
                let mut list = Vec::new();
                for id in ids {
                    list.push(r.read_msg::<pb::Consent>(&keys::consent(&id)).await?);
                }
                print_list(&count, &list, out)?;
            }
            QueryCmd::Access { patient } => {
                let (count, entries) = r
                    .read_list(&keys::List::Access(&patient), MAX_HISTORY_READ)
                    .await?;
                let list = entries
                    .into_iter()
                    .map(|a| a.decoded::<pb::AccessEvent>())
                    .collect::<anyhow::Result<Vec<_>>>()?;
                print_list(&count, &list, out)?;
            }
            QueryCmd::Records { patient } => {
                let (count, ids) = r
                    .read_ids(&keys::List::PatientRecords(&patient), MAX_HISTORY_READ)
                    .await?;
                let mut list = Vec::new();
                for id in ids {
                    list.push(r.read_msg::<pb::RecordAnchor>(&keys::record(&id)).await?);
                }
                print_list(&count, &list, out)?;
            }
            QueryCmd::Claim(c) => claims::query_claim(&r, c, out).await?,
            QueryCmd::Policy(p) => claims::query_policy(&mut r, p, out).await?,
            QueryCmd::Coverage(c) => claims::query_coverage(&mut r, c, out).await?,
        }
        Ok(Exit::Ok)
    }
}

pub(super) fn print_list<T: Serialize + Render + Default>(
    count: &Answer<u64>,
    list: &[Answer<T>],
    out: Output,
) -> anyhow::Result<()> {
    if out == Output::Json {
        return print_json(&serde_json::json!({ "count": count, "items": list }));
    }
    print!("{}", list_text(count, list));
    Ok(())
}

/// The text of a list: `COUNT-KEY = N at height H`, a table of the items, a line for each item
/// that is absent, and the proof line (every item was read at the count's height).
fn list_text<T: Render + Default>(count: &Answer<u64>, list: &[Answer<T>]) -> String {
    let mut s = format!(
        "{} = {} at height {}\n",
        count.key,
        count.value.unwrap_or(0),
        count.height
    );
    s.push_str(&render::table(list.iter().filter_map(|a| a.value.as_ref())));
    for a in list.iter().filter(|a| a.value.is_none()) {
        s.push_str(&format!("{}: ABSENT\n", a.key));
    }
    let all_proven = list.iter().all(|a| a.verified_against.is_some());
    if all_proven {
        s.push_str(&verified_line(count).replace(
            "VERIFIED: proof checks",
            &format!("VERIFIED: the count and {} proofs check", list.len()),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer<T>(key: &str, value: Option<T>, proven: bool) -> Answer<T> {
        Answer {
            key: key.into(),
            height: 7,
            value,
            verified_against: proven.then(|| "AB12".to_string()),
        }
    }

    #[test]
    fn an_answer_prints_fields_and_a_lowercase_app_hash() {
        let p = pb::Patient {
            id: "pt-1".into(),
            key: vec![0x71, 0xBA],
            registered_height: 2,
            enrolled_by: "hospital-a".into(),
        };
        let t = show_text(&answer("patient/pt-1", Some(p), true));
        assert!(!t.contains('{'), "{t}");
        assert!(t.starts_with("patient/pt-1 at height 7:\n  id "), "{t}");
        assert!(t.contains("  key                71ba\n"), "{t}");
        assert!(
            t.ends_with("app hash ab12 (committed in header 8)\n"),
            "{t}"
        );
        let t = show_text(&answer::<pb::Patient>("patient/x", None, false));
        assert_eq!(t, "patient/x at height 7: ABSENT\n");
    }

    #[test]
    fn a_list_prints_a_table() {
        let e = pb::AccessEvent {
            actor: "hospital-a".into(),
            purpose: pb::Purpose::Treat as i32,
            time: 86_400,
            ..Default::default()
        };
        let count = answer("access/pt-1/count", Some(1), true);
        let t = list_text(&count, &[answer("access/pt-1/0", Some(e), true)]);
        assert!(!t.contains('{'), "{t}");
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "access/pt-1/count = 1 at height 7");
        assert!(lines[1].trim_start().starts_with("index"), "{t}");
        assert!(lines[2].contains("1970-01-02T00:00:00Z") && lines[2].contains("TREAT"));
        assert!(
            lines[3].starts_with("VERIFIED: the count and 1 proofs check against app hash ab12")
        );
    }
}

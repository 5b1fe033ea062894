//! The reading toolkit of `query` (and `vault list`): a [`Reader`] that reads state keys,
//! lists and counters at one height, raw or with proofs checked against the committed app hash,
//! and the printers of its answers ([`show`] one value, [`print_list`] a list).

use anyhow::Context;
use medledger_client::{Client, ProvenAnswer};
use medledger_tx::keys;
use prost::Message;
use serde::Serialize;

use super::entity::{Entity, Value};
use super::render::{self, Render};
use super::{print_json, Output};

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

/// Reads state at one height: raw, or (`prove`) with every value's proof checked against the
/// app hash of the committed header.
pub(super) struct Reader {
    /// The node.
    pub(super) client: Client,
    /// The state height to read (0 = latest); a list read pins it to its count's height.
    pub(super) height: u64,
    /// `--prove`.
    pub(super) prove: bool,
}

impl Reader {
    /// A reader of `client`'s node at `height` (0 = latest), with proofs when `prove`.
    pub(super) fn new(client: Client, height: u64, prove: bool) -> Reader {
        Reader {
            client,
            height,
            prove,
        }
    }

    /// The value under `key` (absent: `None`), the height it was read at and, when proven, the
    /// app hash (upper-case hex) its proof verified against.
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

    /// The value under `key`, decoded as `M`.
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

    /// A counter (8 bytes, big-endian) under `key`.
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

/// Prints one answer: JSON, or its fields as text (`ABSENT` when absent), with the proof line.
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

/// Prints a list read whole: its count and items (JSON), or a table of the items (text).
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
    use medledger_tx::pb;

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

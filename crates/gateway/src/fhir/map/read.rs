//! Reading FHIR: every issue at once.
//!
//! A reading walks the whole resource and collects its issues instead of stopping at the first:
//! each reader returns `None` after recording why, and its caller goes on with the next
//! element. A resource is accepted only when no error was recorded.
//!

use serde_json::{Map, Value};

use super::{Issue, IssueKind, Mapped, Refusal, Res, Severity, MAX_ISSUES};

/// The issues of one reading, in the order found (at most [`MAX_ISSUES`] kept).
#[derive(Debug, Default)]
pub(super) struct Issues {
    list: Vec<Issue>,
    /// Found past [`MAX_ISSUES`], not kept.
    more: usize,
    /// Whether any error was found (kept or not).
    refused: bool,
}

/// What a reading does with an element of an object.
#[derive(Debug, Clone, Copy)]
pub(super) enum Treat {
    /// Read by the mapping.
    Read,
    /// Accepted, not recorded, and nothing is lost that anyone reads (`meta`, `text`).
    Quiet,
    /// Accepted, not recorded, with a warning saying why.
    Warn(&'static str),
    /// Refused (`not-supported`), saying why.
    Refuse(&'static str),
    /// Not an element the table names: refused (`not-supported`), naming those it reads.
    Unknown,
}

/// Why a modifier extension is refused wherever it appears.
const MODIFIER: &str = "a modifier extension changes the meaning of the element that holds it, \
                        and the ledger cannot record that change";

impl Issues {
    pub(super) fn push(&mut self, issue: Issue) {
        self.refused |= issue.is_error();
        if self.list.len() < MAX_ISSUES {
            self.list.push(issue);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    pub(super) fn error(
        &mut self,
        kind: IssueKind,
        at: impl Into<String>,
        reason: impl Into<String>,
    ) {
        self.push(Issue::new(Severity::Error, kind, at, reason));
    }

    pub(super) fn required(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::Required, at, reason);
    }

    pub(super) fn value(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::Value, at, reason);
    }

    pub(super) fn not_supported(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::NotSupported, at, reason);
    }

    pub(super) fn business_rule(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.error(IssueKind::BusinessRule, at, reason);
    }

    pub(super) fn warn(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.push(Issue::new(
            Severity::Warning,
            IssueKind::NotSupported,
            at,
            reason,
        ));
    }

    /// A warning that the ledger reads the element at `at` in its own terms.
    pub(super) fn note(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.push(Issue::new(
            Severity::Warning,
            IssueKind::Informational,
            at,
            reason,
        ));
    }

    /// The value of `r`, or `None` with its issue recorded.
    pub(super) fn keep<T>(&mut self, r: Res<T>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    pub(super) fn obj<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a Map<String, Value>> {
        self.keep(
            v.as_object()
                .ok_or_else(|| Issue::invalid(at, "must be a JSON object")),
        )
    }

    /// A JSON array (R4 repeats an element as an array, never empty).
    pub(super) fn arr<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a Vec<Value>> {
        self.keep(match v.as_array() {
            Some(a) if a.is_empty() => Err(Issue::invalid(
                at,
                "an empty array: R4 JSON leaves the element out instead",
            )),
            Some(a) => Ok(a),
            None => Err(Issue::invalid(at, "must be a JSON array")),
        })
    }

    pub(super) fn string<'a>(&mut self, v: &'a Value, at: &str) -> Option<&'a str> {
        self.keep(
            v.as_str()
                .ok_or_else(|| Issue::invalid(at, "must be a string")),
        )
    }

    /// Element `key` of `o` (FHIRPath `{at}.{key}`), or a `required` issue saying `why`.
    pub(super) fn need<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        at: &str,
        key: &str,
        why: &str,
    ) -> Option<&'a Value> {
        let v = o.get(key);
        if v.is_none() {
            self.required(format!("{at}.{key}"), why);
        }
        v
    }

    /// The string element `key` of `o`, or an issue (`required` saying `why`, or `invalid`).
    pub(super) fn need_str<'a>(
        &mut self,
        o: &'a Map<String, Value>,
        at: &str,
        key: &str,
        why: &str,
    ) -> Option<&'a str> {
        let v = self.need(o, at, key, why)?;
        self.string(v, &format!("{at}.{key}"))
    }

    /// Judges every element of `o` by `table`. `id` and `extension` are accepted wherever the
    /// table does not name them (an extension with a warning: R4 lets a reader ignore one),
    /// `modifierExtension` and every other element refused. `_x` (a primitive's id and
    /// extensions) is accepted with a warning.
    pub(super) fn elements(&mut self, o: &Map<String, Value>, at: &str, table: &[(&str, Treat)]) {
        for k in o.keys() {
            let path = format!("{at}.{k}");
            let treat = table
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, t)| *t)
                .unwrap_or(match k.as_str() {
                    "id" => Treat::Quiet,
                    "extension" => {
                        Treat::Warn("not recorded: an extension the ledger does not know")
                    }
                    "modifierExtension" => Treat::Refuse(MODIFIER),
                    _ if k.starts_with('_') => {
                        Treat::Warn("not recorded: the id and extensions of a primitive element")
                    }
                    _ => Treat::Unknown,
                });
            match treat {
                Treat::Read | Treat::Quiet => {}
                Treat::Warn(why) => self.warn(path, why),
                Treat::Unknown => {
                    let read: Vec<&str> = table
                        .iter()
                        .filter(|(_, t)| matches!(t, Treat::Read | Treat::Quiet | Treat::Warn(_)))
                        .map(|(name, _)| *name)
                        .collect();
                    self.not_supported(
                        path,
                        format!(
                            "the ledger has no field for this element (here it takes: {})",
                            read.join(", ")
                        ),
                    );
                }
                Treat::Refuse(why) => self.not_supported(path, why),
            }
        }
    }

    /// The (system, code) pairs of a CodeableConcept at `at` (`coding` and `text` only; a
    /// coding without a system has system "").
    pub(super) fn concept<'a>(
        &mut self,
        v: &'a Value,
        at: &str,
    ) -> Option<Vec<(&'a str, &'a str)>> {
        let o = self.obj(v, at)?;
        self.elements(o, at, &[("coding", Treat::Read), ("text", Treat::Quiet)]);
        let cat = format!("{at}.coding");
        let codings = self.need(o, at, "coding", "a coding is required")?;
        let codings = self.arr(codings, &cat)?;
        let mut out = Vec::new();
        for (i, c) in codings.iter().enumerate() {
            let ci = format!("{cat}[{i}]");
            let Some(co) = self.obj(c, &ci) else {
                continue;
            };
            let system = co.get("system").and_then(Value::as_str).unwrap_or("");
            if let Some(code) = co
                .get("code")
                .and_then(|c| self.string(c, &format!("{ci}.code")))
            {
                out.push((system, code));
            }
        }
        Some(out)
    }

    /// The code of the coding from `system` in the CodeableConcept at `at`; a `value` issue
    /// when it has none (codings of other systems beside it are ignored).
    pub(super) fn coded<'a>(&mut self, v: &'a Value, at: &str, system: &str) -> Option<&'a str> {
        let pairs = self.concept(v, at)?;
        let found = pairs.iter().find(|(s, _)| *s == system).map(|(_, c)| *c);
        if found.is_none() {
            self.value(
                format!("{at}.coding"),
                format!("no coding from {system}, the only system the ledger reads here"),
            );
        }
        found
    }

    /// The code of a Coding (not a CodeableConcept) at `at`, which must be of `system`.
    pub(super) fn coding<'a>(
        &mut self,
        v: &'a Value,
        at: &str,
        system: &str,
        what: &str,
    ) -> Option<&'a str> {
        let o = self.obj(v, at)?;
        self.elements(
            o,
            at,
            &[
                ("system", Treat::Read),
                ("code", Treat::Read),
                ("display", Treat::Quiet),
                ("version", Treat::Quiet),
                ("userSelected", Treat::Quiet),
            ],
        );
        let sys = o.get("system").and_then(Value::as_str);
        let code = self.need_str(o, at, "code", "a coding needs its code");
        if sys != Some(system) {
            self.value(
                format!("{at}.system"),
                format!(
                    "{what} come from {system}, not {}",
                    sys.map_or("a coding without system".to_string(), |s| format!("{s:?}"))
                ),
            );
            return None;
        }
        code
    }

    /// The end of a reading: the value when no error was found, else the refusal.
    pub(super) fn finish<T>(self, root: &str, value: Option<T>) -> Result<Mapped<T>, Refusal> {
        match value {
            Some(value) if !self.refused => Ok(Mapped {
                value,
                warnings: self.list,
            }),
            _ => {
                // Every reader that gives nothing has recorded why.
                debug_assert!(
                    self.refused,
                    "a reading of {root} gave nothing and said no why"
                );
                let mut issues = self.list;
                if !self.refused {
                    issues.push(Issue::invalid(root, "could not be read"));
                }
                Err(Refusal {
                    issues,
                    more: self.more,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{consent_from_fhir, consent_to_fhir, MAX_ISSUES};
    use crate::fhir::map::testkit::*;
    use serde_json::json;

    #[test]
    fn a_refusal_past_the_limit_says_how_many_more() {
        let mut v = consent_to_fhir(&consent());
        for i in 0..MAX_ISSUES + 5 {
            v[format!("unknown{i:03}")] = json!(1);
        }
        let r = consent_from_fhir(&v).unwrap_err();
        assert_eq!((r.issues.len(), r.more), (MAX_ISSUES, 5));
        let issues = r.outcome_issues();
        assert_eq!(issues.len(), MAX_ISSUES + 1);
        assert_eq!(issues[MAX_ISSUES]["code"], "informational");
    }
}

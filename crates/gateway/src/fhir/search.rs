//! What the searches share: the query's parameters, paging pinned to one proven height, and
//! the searchset Bundle.

use super::*;

/// The query's parameters in order (`application/x-www-form-urlencoded`, as FHIR search sends
/// them); a malformed query is a 400 OperationOutcome.
pub(super) fn params(q: &Option<String>) -> Result<Vec<(String, String)>, FhirError> {
    serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| FhirError::bad(format!("the query string does not decode: {e}")))
}

pub(super) fn param<'a>(ps: &'a [(String, String)], name: &str) -> Option<&'a str> {
    ps.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub(super) fn only_params(ps: &[(String, String)], known: &[&str]) -> Result<(), FhirError> {
    for (k, _) in ps {
        if !known.contains(&k.as_str()) {
            return Err(FhirError {
                element: Some(k.clone()),
                ..FhirError::new(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    format!(
                        "search parameter {k:?} is not supported here (supported: {})",
                        known.join(", ")
                    ),
                )
            });
        }
    }
    Ok(())
}

/// `Patient/pt-…` or `pt-…`.
pub(super) fn patient_param(ps: &[(String, String)]) -> Result<String, FhirError> {
    let p =
        param(ps, "patient").ok_or_else(|| FhirError::bad("the patient parameter is required"))?;
    let p = p.strip_prefix("Patient/").unwrap_or(p);
    if p.is_empty()
        || p.len() > 128
        || !p
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    {
        return Err(FhirError::bad(format!("{p:?} is not a patient id")));
    }
    Ok(p.to_string())
}

pub(super) fn verified_meta(chain_id: &str, a: &Attestation) -> Value {
    json!({
        "extension": [{
            "url": VERIFIED_STATE_EXTENSION_URL,
            "extension": [
                { "url": "chainId", "valueString": chain_id },
                { "url": "height", "valueString": a.height.to_string() },
                { "url": "appHash", "valueString": hex::encode(&a.app_hash) },
                { "url": "method", "valueString": a.method },
                { "url": "signers", "valueString": a.signers.join(",") },
            ],
        }]
    })
}

/// A searchset Bundle of `entries` (each with its `fullUrl` and `search.mode` `match`), with
/// the `self` link R4 asks of a search answer: the search as it was understood, `query` being
/// the parameters the search used.
pub(super) fn searchset(
    st: &State,
    resource: &str,
    query: &[(String, String)],
    entries: Vec<Value>,
    meta: Value,
) -> Value {
    let total = entries.len();
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            json!({
                "fullUrl": format!("{}/fhir/{resource}/{id}", st.public_url),
                "resource": r,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let url = format!(
        "{}/fhir/{resource}?{}",
        st.public_url,
        serde_urlencoded::to_string(query).unwrap_or_default()
    );
    let mut b = json!({
        "resourceType": "Bundle",
        "meta": meta,
        "type": "searchset",
        "total": total,
        "link": [{ "relation": "self", "url": url }],
    });
    // FHIR forbids empty arrays: no match, no `entry`.
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

/// A `date` search value: its prefix and the span of unix seconds it names, `[first, after)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DateFilter {
    prefix: DatePrefix,
    first: i64,
    after: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DatePrefix {
    Eq,
    Ge,
    Gt,
    Le,
    Lt,
}

impl DateFilter {
    /// Whether an event at unix time `t` (whole seconds) matches: R4's comparisons of a point
    /// in time with the span the value names (`eq` within it, `gt` after it, `le` not after
    /// it, …).
    pub(super) fn keeps(&self, t: u64) -> bool {
        let t = i64::try_from(t).unwrap_or(i64::MAX);
        match self.prefix {
            DatePrefix::Eq => self.first <= t && t < self.after,
            DatePrefix::Ge => t >= self.first,
            DatePrefix::Gt => t >= self.after,
            DatePrefix::Le => t < self.after,
            DatePrefix::Lt => t < self.first,
        }
    }
}

/// A `date` search value, `[eq|ge|gt|le|lt]` then an R4 date (`YYYY`, `YYYY-MM`,
/// `YYYY-MM-DD`) or dateTime with a zone, read with the `time` crate's calendar
/// ([`map::fhir_span`]): a day that does not exist is 400 `value`. Dates before 1970 are
/// fine here: nothing is stored, an event is only compared with them.
pub(super) fn date_filter(v: &str) -> Result<DateFilter, FhirError> {
    let (prefix, d) = match v.get(..2) {
        Some("eq") => (DatePrefix::Eq, &v[2..]),
        Some("ge") => (DatePrefix::Ge, &v[2..]),
        Some("gt") => (DatePrefix::Gt, &v[2..]),
        Some("le") => (DatePrefix::Le, &v[2..]),
        Some("lt") => (DatePrefix::Lt, &v[2..]),
        _ => (DatePrefix::Eq, v),
    };
    let span = map::fhir_span(d).ok_or_else(|| FhirError {
        issue: "value",
        element: Some("date".into()),
        ..FhirError::bad(format!(
            "date {v:?}: an optional eq/ge/gt/le/lt, then YYYY, YYYY-MM, YYYY-MM-DD (a day that \
             exists) or YYYY-MM-DDThh:mm:ss with Z or ±hh:mm"
        ))
    })?;
    let first = span.first.unix_timestamp();
    // An instant names its second: events are stored in whole seconds.
    let after = if span.precision == map::Precision::Instant {
        first.saturating_add(1)
    } else {
        span.after.unix_timestamp()
    };
    Ok(DateFilter {
        prefix,
        first,
        after,
    })
}

/// Which page of a history a request asks for: `_offset` (the first event index, default 0),
/// `_count` (default and most per request differ by route) and `_height` (the certified state
/// to read; the `next` links pin it, so every page proves against one app hash).
#[derive(Clone, Copy, Debug)]
pub(super) struct Page {
    pub(super) offset: u64,
    pub(super) count: u64,
    pub(super) height: Option<u64>,
}

pub(super) fn page_params(
    ps: &[(String, String)],
    default: u64,
    max: u64,
) -> Result<Page, FhirError> {
    let num = |name: &str| -> Result<Option<u64>, FhirError> {
        param(ps, name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| FhirError {
                    element: Some(name.into()),
                    ..FhirError::bad(format!("{name} must be a whole number, not {v:?}"))
                })
            })
            .transpose()
    };
    let count = num("_count")?.unwrap_or(default);
    if count == 0 || count > max {
        return Err(FhirError {
            element: Some("_count".into()),
            ..FhirError::bad(format!("_count is 1 to {max} here"))
        });
    }
    Ok(Page {
        offset: num("_offset")?.unwrap_or(0),
        count,
        height: num("_height")?,
    })
}

pub(super) fn page_links(
    base: &str,
    fixed: &[(String, String)],
    page: Page,
    height: u64,
    n: u64,
) -> Vec<(&'static str, String)> {
    let url = |offset: u64| {
        let mut ps: Vec<(String, String)> = fixed.to_vec();
        ps.push(("_offset".into(), offset.to_string()));
        ps.push(("_count".into(), page.count.to_string()));
        ps.push(("_height".into(), height.to_string()));
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(&ps).unwrap_or_default()
        )
    };
    let mut links = vec![("self", url(page.offset)), ("first", url(0))];
    if page.offset > 0 {
        links.push(("previous", url(page.offset.saturating_sub(page.count))));
    }
    if page.offset.saturating_add(page.count) < n {
        links.push(("next", url(page.offset + page.count)));
    }
    links
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_strings_decode() {
        let ps = params(&Some("patient=Patient%2Fpt-1&date=ge2026-11-01&x".into())).unwrap();
        assert_eq!(param(&ps, "patient"), Some("Patient/pt-1"));
        assert_eq!(param(&ps, "date"), Some("ge2026-11-01"));
        assert_eq!(patient_param(&ps).unwrap(), "pt-1");
        let odd = params(&Some("x=%zz%4".into())).unwrap();
        assert_eq!(param(&odd, "x"), Some("%zz%4"));
        assert!(only_params(&ps, &["patient", "date"]).is_err());
    }

    /// 2026-11-26T00:00:00Z.
    const NOV_26: u64 = 1_795_651_200;
    const DAY: u64 = 86_400;

    #[test]
    fn dates_take_fhir_prefixes() {
        let f = date_filter("2026-11-26").unwrap();
        assert!(!f.keeps(NOV_26 - 1));
        assert!(f.keeps(NOV_26) && f.keeps(NOV_26 + DAY - 1));
        assert!(!f.keeps(NOV_26 + DAY));
        let ge = date_filter("ge2026-11-26").unwrap();
        assert!(!ge.keeps(NOV_26 - 1) && ge.keeps(NOV_26));
        let gt = date_filter("gt2026-11-26").unwrap();
        assert!(!gt.keeps(NOV_26 + DAY - 1) && gt.keeps(NOV_26 + DAY));
        let le = date_filter("le2026-11-26").unwrap();
        assert!(le.keeps(NOV_26 + DAY - 1) && !le.keeps(NOV_26 + DAY));
        let lt = date_filter("lt2026-11-26").unwrap();
        assert!(lt.keeps(NOV_26 - 1) && !lt.keeps(NOV_26));
        let lt = date_filter("lt1970-01-02").unwrap();
        assert!(lt.keeps(0) && lt.keeps(DAY - 1) && !lt.keeps(DAY));
    }

    #[test]
    fn a_month_a_year_and_an_instant_are_spans_too() {
        let nov = date_filter("2026-11").unwrap();
        assert!(nov.keeps(NOV_26));
        assert!(!nov.keeps(NOV_26 + 5 * DAY), "December 1");
        let year = date_filter("le2025").unwrap();
        assert!(!year.keeps(NOV_26));
        let second = date_filter("2026-11-26T01:00:00+01:00").unwrap();
        assert!(second.keeps(NOV_26) && !second.keeps(NOV_26 + 1));
    }

    #[test]
    fn impossible_dates_are_refused_and_1964_is_a_date() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-11-2",
            "yesterday",
            "ne2026-11-26",
        ] {
            let e = date_filter(bad).unwrap_err();
            assert_eq!((e.status.as_u16(), e.issue), (400, "value"), "{bad}");
            assert_eq!(e.element.as_deref(), Some("date"));
        }
        let before = date_filter("lt1964-01-01").unwrap();
        assert!(!before.keeps(0));
        assert!(date_filter("ge1964-01-01").unwrap().keeps(0));
    }
}

//! What the searches share: the query's parameters as R4 reads them (unknown ones ignored and
//! reported, unless `Prefer: handling=strict`), paging pinned to one proven height, and the
//! searchset Bundle.

use super::*;

/// Parameters every search takes besides its own: `_format` (JSON only; anything else was
/// answered 406 before the handler, [`super::protocol`]), `_pretty` (ignored: answers are
/// compact JSON either way) and `_summary` (`count`; `false` and `data` are the full answer,
/// since no resource here carries narrative).
const GENERAL: &[&str] = &["_format", "_pretty", "_summary"];

/// The query's parameters in order (`application/x-www-form-urlencoded`, as FHIR search sends
/// them); a malformed query is a 400 OperationOutcome.
pub(super) fn params(q: &Option<String>) -> Result<Vec<(String, String)>, FhirError> {
    serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| FhirError::bad(format!("the query string does not decode: {e}")))
}

pub(super) fn param<'a>(ps: &'a [(String, String)], name: &str) -> Option<&'a str> {
    ps.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Refuses any parameter not in `known` (400 `not-supported`, naming it): for the operations and
/// the CSV, which are not FHIR searches.
pub(super) fn only_params(ps: &[(String, String)], known: &[&str]) -> Result<(), FhirError> {
    match ps.iter().find(|(k, _)| !known.contains(&k.as_str())) {
        Some((k, _)) => Err(unsupported(k, known)),
        None => Ok(()),
    }
}

fn unsupported(name: &str, known: &[&str]) -> FhirError {
    FhirError {
        element: Some(name.to_string()),
        ..FhirError::new(
            StatusCode::BAD_REQUEST,
            "not-supported",
            format!(
                "search parameter {name:?} is not supported here (supported: {})",
                known.join(", ")
            ),
        )
    }
}

/// Whether the request asks for `Prefer: handling=strict` (R4 search: refuse what is not
/// understood rather than ignore it). Preferences are comma-separated, each maybe with
/// `;`-parameters (RFC 7240).
pub(super) fn prefers_strict(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| {
            let pref = p.split(';').next().unwrap_or_default();
            let (name, value) = pref.split_once('=').unwrap_or((pref, ""));
            name.trim().eq_ignore_ascii_case("handling")
                && value
                    .trim()
                    .trim_matches('"')
                    .eq_ignore_ascii_case("strict")
        })
}

/// A search as the gateway understood it.
#[derive(Debug)]
pub(super) struct Search {
    /// The parameters it uses, in order (its own and [`GENERAL`]).
    ps: Vec<(String, String)>,
    /// The names of the parameters it ignored, in order, each once.
    pub(super) ignored: Vec<String>,
    /// `_summary=count`: the total, no entries.
    pub(super) count_only: bool,
}

impl Search {
    /// Reads a search's query. A parameter outside `known` and [`GENERAL`] is ignored and
    /// reported ([`Search::outcome`]), or refused (400 `not-supported`) under
    /// `Prefer: handling=strict`. `_summary` other than `count`, `false` or `data` is 400
    /// `not-supported` either way: an answer that silently is not the subset asked for would
    /// mislead.
    pub(super) fn parse(
        q: &Option<String>,
        headers: &HeaderMap,
        known: &[&str],
    ) -> Result<Search, FhirError> {
        let strict = prefers_strict(headers);
        let mut ps = Vec::new();
        let mut ignored: Vec<String> = Vec::new();
        for (k, v) in params(q)? {
            if known.contains(&k.as_str()) || GENERAL.contains(&k.as_str()) {
                ps.push((k, v));
            } else if strict {
                let all: Vec<&str> = known.iter().chain(GENERAL).copied().collect();
                return Err(unsupported(&k, &all));
            } else if !ignored.contains(&k) {
                ignored.push(k);
            }
        }
        let mut count_only = false;
        for (k, v) in &ps {
            match (k.as_str(), v.as_str()) {
                ("_summary", "count") => count_only = true,
                ("_summary", "false" | "data") => {}
                ("_summary", other) => {
                    return Err(FhirError {
                        element: Some("_summary".into()),
                        ..FhirError::new(
                            StatusCode::BAD_REQUEST,
                            "not-supported",
                            format!(
                                "_summary={other:?} is not supported: count (the total only), \
                                 false or data (the whole answer) are"
                            ),
                        )
                    })
                }
                _ => {}
            }
        }
        Ok(Search {
            ps,
            ignored,
            count_only,
        })
    }

    /// Every value of parameter `name`, in order.
    pub(super) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.ps
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The one value of `name`: a repetition with another value is 400 naming it (R4 reads a
    /// repeated parameter as AND, which for one patient or one claim matches nothing; keeping
    /// the first would answer a different search than the one asked).
    pub(super) fn one(&self, name: &str) -> Result<Option<&str>, FhirError> {
        single(&self.ps, name)
    }

    /// The `patient` parameter ([`patient_param`]).
    pub(super) fn patient(&self) -> Result<String, FhirError> {
        patient_param(&self.ps)
    }

    /// `_offset`, `_count`, `_height` ([`page_params`]).
    pub(super) fn page(&self, default: u64, max: u64) -> Result<Page, FhirError> {
        page_params(&self.ps, default, max)
    }

    /// The parameters named, as the links repeat them (the search as understood).
    pub(super) fn fixed(&self, names: &[&str]) -> Vec<(String, String)> {
        self.ps
            .iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .cloned()
            .collect()
    }

    /// The OperationOutcome entry (`search.mode` `outcome`) naming the ignored parameters, if
    /// any. Its `fullUrl` is a name-based UUID of the search (R4 wants one on every searchset
    /// entry; an OperationOutcome of a search has no address of its own).
    pub(super) fn outcome(&self, self_url: &str) -> Option<Value> {
        if self.ignored.is_empty() {
            return None;
        }
        let issues: Vec<Value> = self
            .ignored
            .iter()
            .map(|k| {
                json!({
                    "severity": "warning",
                    "code": "not-supported",
                    "diagnostics": format!(
                        "search parameter {k:?} is not supported here and was ignored (send \
                         Prefer: handling=strict to have it refused instead)"
                    ),
                    "expression": [k],
                })
            })
            .collect();
        Some(json!({
            "fullUrl": format!("urn:uuid:{}", name_uuid(b"medledger/fhir/search-outcome/v1", &[self_url.as_bytes(), self.ignored.join("&").as_bytes()])),
            "resource": { "resourceType": "OperationOutcome", "issue": issues },
            "search": { "mode": "outcome" },
        }))
    }

    /// Completes a searchset Bundle: `_summary=count` drops the entries (the total stays), and
    /// the outcome entry goes last.
    pub(super) fn finish(&self, bundle: &mut Value) {
        if let Some(b) = bundle.as_object_mut() {
            if self.count_only {
                b.remove("entry");
            }
        }
        let self_url = bundle["link"]
            .as_array()
            .and_then(|ls| ls.iter().find(|l| l["relation"] == "self"))
            .and_then(|l| l["url"].as_str())
            .unwrap_or_default()
            .to_string();
        if let Some(o) = self.outcome(&self_url) {
            match bundle["entry"].as_array_mut() {
                Some(entries) => entries.push(o),
                None => bundle["entry"] = json!([o]),
            }
        }
    }
}

/// A name-based UUID (RFC 9562 version 8, as `export::event_uuid`): the first 16 bytes of
/// SHA-256(`domain` ‖ 0x00 ‖ part ‖ 0x00 ‖ part …) with the version and variant bits set.
pub(super) fn name_uuid(domain: &[u8], parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(domain);
    for p in parts {
        h.update([0]);
        h.update(p);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..]
    )
}

/// The one value of `name` in `ps` (repeating the same value is fine); two different values
/// are 400 `not-supported` with `expression` `name`.
fn single<'a>(ps: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, FhirError> {
    let mut values = ps
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if let Some(other) = values.find(|v| Some(*v) != first) {
        return Err(FhirError {
            element: Some(name.to_string()),
            ..FhirError::new(
                StatusCode::BAD_REQUEST,
                "not-supported",
                format!(
                    "{name} is given more than once ({:?}, {other:?}): one {name} per search \
                     (R4 reads repeated parameters as AND, which no single resource here \
                     matches); search once per value",
                    first.unwrap_or_default()
                ),
            )
        });
    }
    Ok(first)
}

/// `Patient/pt-…` or `pt-…`, given once (or repeated with the same value).
pub(super) fn patient_param(ps: &[(String, String)]) -> Result<String, FhirError> {
    // Compare the ids, not the spellings: `Patient/pt-1` and `pt-1` are one patient.
    let ids: Vec<(String, String)> = ps
        .iter()
        .filter(|(k, _)| k == "patient")
        .map(|(k, v)| {
            (
                k.clone(),
                v.strip_prefix("Patient/").unwrap_or(v).to_string(),
            )
        })
        .collect();
    let p = single(&ids, "patient")?
        .ok_or_else(|| FhirError::bad("the patient parameter is required"))?;
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

/// A searchset Bundle's parts other than its entries.
pub(super) struct Answer<'a> {
    /// The resource type searched.
    pub(super) resource: &'a str,
    /// The number of matches over all pages, when known.
    pub(super) total: Option<u64>,
    /// `Bundle.link`: `self` first ([`page_links`], [`summary_links`]).
    pub(super) links: Vec<(&'static str, String)>,
    /// `Bundle.meta`: the verified state.
    pub(super) meta: Value,
}

/// A searchset Bundle of `entries` (each with its `fullUrl` and `search.mode` `match`), with
/// the links R4 asks of a search answer, finished by [`Search::finish`].
pub(super) fn searchset(st: &State, a: Answer<'_>, entries: Vec<Value>, search: &Search) -> Value {
    let entry: Vec<Value> = entries
        .into_iter()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default().to_string();
            json!({
                "fullUrl": format!("{}/fhir/{}/{id}", st.public_url, a.resource),
                "resource": r,
                "search": { "mode": "match" },
            })
        })
        .collect();
    let mut b = json!({
        "resourceType": "Bundle",
        "meta": a.meta,
        "type": "searchset",
        "link": links_json(a.links),
    });
    if let Some(t) = a.total {
        b["total"] = json!(t);
    }
    // FHIR forbids empty arrays: no match, no `entry`.
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    search.finish(&mut b);
    b
}

/// `Bundle.link` of (relation, url) pairs.
pub(super) fn links_json(links: Vec<(&'static str, String)>) -> Value {
    Value::Array(
        links
            .into_iter()
            .map(|(relation, url)| json!({ "relation": relation, "url": url }))
            .collect(),
    )
}

/// `base?ps` with `ps` form-urlencoded.
pub(super) fn url_of(base: &str, ps: &[(String, String)]) -> String {
    format!(
        "{base}?{}",
        serde_urlencoded::to_string(ps).unwrap_or_default()
    )
}

/// The one link of a `_summary=count` answer: `self`, pinned to the height counted at.
pub(super) fn summary_links(
    base: &str,
    fixed: &[(String, String)],
    height: u64,
) -> Vec<(&'static str, String)> {
    let mut ps = fixed.to_vec();
    ps.push(("_summary".into(), "count".into()));
    ps.push(("_height".into(), height.to_string()));
    vec![("self", url_of(base, &ps))]
}

/// Reads `key` with its proof at exactly `height`.
pub(super) async fn proven_read(
    st: &State,
    key: &[u8],
    height: u64,
) -> Result<medledger_query::history::ProvenRead, FhirError> {
    let (read, answered) = st
        .client
        .read_with_proof(key, height)
        .await
        .map_err(FhirError::unavailable)?;
    if answered != height {
        return Err(FhirError::unavailable(format!(
            "the node answered state {answered} for state {height}"
        )));
    }
    Ok(read)
}

/// The certified height to read at, and its certificate: `pinned` (a page link's `_height`;
/// 404 when no certificate of it is stored, e.g. pruned) or the latest certified one.
pub(super) async fn certified_height(
    st: &State,
    pinned: Option<u64>,
) -> Result<(u64, Vec<u8>), FhirError> {
    let unavailable = FhirError::unavailable;
    let height = match pinned {
        Some(h) => h,
        None => {
            let (latest, _) = st
                .client
                .query_raw(&keys::latest_certificate(), 0)
                .await
                .map_err(unavailable)?;
            latest
                .as_deref()
                .and_then(keys::decode_u64)
                .ok_or_else(|| {
                    FhirError::unavailable(
                        "no checkpoint certificate yet (the first, of state 0, is in block 2)",
                    )
                })?
        }
    };
    let (cert, _) = st
        .client
        .query_raw(&keys::certificate(height), 0)
        .await
        .map_err(unavailable)?;
    let certificate = cert.ok_or_else(|| FhirError {
        element: Some("_height".into()),
        ..FhirError::not_found(format!(
            "no certificate of state {height}: start the search again without _height"
        ))
    })?;
    Ok((height, certificate))
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

/// Which page of a list a request asks for: `_offset` (the first index, default 0), `_count`
/// (default and most per request differ by route; 0 or above the most is 400) and `_height` (the
/// certified state to read; the links pin it, so every page proves against one app hash). Each
/// is given once.
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
        single(ps, name)?
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

/// The links of one page: `self`, `first`, and `previous` and `next` where such pages exist.
/// Each repeats the search (`fixed`) with `_offset`, `_count` and `_height` = the certified
/// height the page was read at: the page token, so that every page of one search is read from
/// one state and together they are exactly its `n` results.
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
        url_of(base, &ps)
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

    fn prefer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("prefer", v.parse().unwrap());
        h
    }

    const AUDIT: &[&str] = &["patient", "date", "_count", "_offset", "_height"];

    #[test]
    fn unknown_parameters_are_ignored_and_reported_unless_strict() {
        let q = Some("patient=pt-1&_sort=date&foo=1&_sort=x&_format=json&_pretty=true".into());
        let s = Search::parse(&q, &HeaderMap::new(), AUDIT).unwrap();
        assert_eq!(s.ignored, ["_sort", "foo"]);
        assert_eq!(s.patient().unwrap(), "pt-1");
        assert_eq!(
            s.fixed(&["patient", "date"]),
            [("patient".into(), "pt-1".into())]
        );
        let o = s
            .outcome("https://gw/fhir/AuditEvent?patient=pt-1")
            .unwrap();
        assert_eq!(o["search"]["mode"], "outcome");
        assert_eq!(o["resource"]["resourceType"], "OperationOutcome");
        assert_eq!(o["resource"]["issue"][1]["expression"][0], "foo");
        assert_eq!(o["resource"]["issue"][0]["severity"], "warning");
        let url = o["fullUrl"].as_str().unwrap();
        assert!(url.starts_with("urn:uuid:") && url.len() == 45, "{url}");
        assert_eq!(&url[23..24], "8", "a version 8 UUID: {url}");

        for strict in [
            "handling=strict",
            "return=minimal, handling=strict",
            "handling=\"strict\"",
        ] {
            let e = Search::parse(&q, &prefer(strict), AUDIT).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.issue),
                (400, "not-supported"),
                "{strict}"
            );
            assert_eq!(e.element.as_deref(), Some("_sort"));
        }
        assert!(Search::parse(&q, &prefer("handling=lenient"), AUDIT).is_ok());
        let known = Some("patient=pt-1&_count=2".into());
        let s = Search::parse(&known, &prefer("handling=strict"), AUDIT).unwrap();
        assert!(s.ignored.is_empty() && s.outcome("x").is_none());
    }

    #[test]
    fn a_repeated_patient_is_refused_unless_it_is_the_same_patient() {
        let e = Search::parse(
            &Some("patient=pt-1&patient=pt-2".into()),
            &HeaderMap::new(),
            AUDIT,
        )
        .unwrap()
        .patient()
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.element.as_deref()),
            (400, Some("patient"))
        );
        assert!(e.diagnostics.contains("pt-2"), "{}", e.diagnostics);
        let same = Search::parse(
            &Some("patient=pt-1&patient=Patient/pt-1".into()),
            &HeaderMap::new(),
            AUDIT,
        )
        .unwrap();
        assert_eq!(same.patient().unwrap(), "pt-1");
        let e =
            page_params(&params(&Some("_count=1&_count=2".into())).unwrap(), 10, 100).unwrap_err();
        assert_eq!(e.element.as_deref(), Some("_count"));
        let two_dates = Search::parse(
            &Some("patient=pt-1&date=ge2026&date=lt2027".into()),
            &HeaderMap::new(),
            AUDIT,
        )
        .unwrap();
        assert_eq!(two_dates.all("date").count(), 2, "every date applies");
    }

    #[test]
    fn summary_count_keeps_the_total_and_the_outcome_only() {
        let s = Search::parse(
            &Some("patient=pt-1&_summary=count&_elements=id".into()),
            &HeaderMap::new(),
            AUDIT,
        )
        .unwrap();
        assert!(s.count_only);
        let mut b = json!({
            "resourceType": "Bundle", "type": "searchset", "total": 7,
            "link": [{ "relation": "self", "url": "https://gw/fhir/AuditEvent?patient=pt-1" }],
            "entry": [{ "fullUrl": "https://gw/fhir/AuditEvent/pt-1-0", "search": { "mode": "match" } }],
        });
        s.finish(&mut b);
        assert_eq!(b["total"], 7);
        let entries = b["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1, "{b}");
        assert_eq!(entries[0]["search"]["mode"], "outcome");
        for ok in ["false", "data"] {
            let q = Some(format!("patient=pt-1&_summary={ok}"));
            assert!(
                !Search::parse(&q, &HeaderMap::new(), AUDIT)
                    .unwrap()
                    .count_only
            );
        }
        let e = Search::parse(
            &Some("patient=pt-1&_summary=true".into()),
            &HeaderMap::new(),
            AUDIT,
        )
        .unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.element.as_deref()),
            (400, Some("_summary"))
        );
        let links = summary_links(
            "https://gw/fhir/Consent",
            &[("patient".into(), "pt-1".into())],
            9,
        );
        assert_eq!(
            links,
            [(
                "self",
                "https://gw/fhir/Consent?patient=pt-1&_summary=count&_height=9".to_string()
            )]
        );
    }

    #[test]
    fn page_links_are_pinned_to_the_height_and_cover_every_result_once() {
        let fixed = [("patient".to_string(), "pt-1".to_string())];
        let n = 5;
        let mut offset = 0;
        let mut seen = Vec::new();
        loop {
            let page = Page {
                offset,
                count: 2,
                height: Some(40),
            };
            let links = page_links("https://gw/fhir/AuditEvent", &fixed, page, 40, n);
            assert_eq!(links[0].0, "self");
            assert!(links
                .iter()
                .all(|(_, u)| u.contains("_height=40") && u.contains("patient=pt-1")));
            assert_eq!(links.iter().any(|(r, _)| *r == "previous"), offset > 0);
            seen.extend(offset..(offset + 2).min(n));
            let Some((_, next)) = links.iter().find(|(r, _)| *r == "next") else {
                break;
            };
            let ps = params(&Some(next.split_once('?').unwrap().1.to_string())).unwrap();
            let p = page_params(&ps, 100, 1_000).unwrap();
            assert_eq!((p.count, p.height), (2, Some(40)));
            offset = p.offset;
        }
        assert_eq!(seen, [0, 1, 2, 3, 4]);
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

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

pub(super) fn searchset(st: &State, resource: &str, entries: Vec<Value>, meta: Value) -> Value {
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
    let mut b = json!({
        "resourceType": "Bundle",
        "meta": meta,
        "type": "searchset",
        "total": total,
    });
    // FHIR forbids empty arrays: no match, no `entry`.
    if !entry.is_empty() {
        b["entry"] = Value::Array(entry);
    }
    b
}

/// `date` search on a day: (comparator, day number).
pub(super) fn date_filter(v: &str) -> Result<(String, u64), FhirError> {
    let (cmp, d) = match v.get(..2) {
        Some(p @ ("eq" | "ge" | "gt" | "le" | "lt")) => (p.to_string(), &v[2..]),
        _ => ("eq".to_string(), v),
    };
    if d.len() != 10 {
        return Err(FhirError::bad(
            "date must be a day, YYYY-MM-DD, with an optional eq/ge/gt/le/lt prefix",
        ));
    }
    let secs = map::parse_time(d, "date").map_err(|u| FhirError::bad(u.reason))?;
    Ok((cmp, secs / 86_400))
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

    #[test]
    fn dates_take_fhir_prefixes() {
        assert_eq!(date_filter("2026-11-26").unwrap(), ("eq".into(), 20_783));
        assert_eq!(date_filter("le1970-01-02").unwrap(), ("le".into(), 1));
        assert!(date_filter("2026-11").is_err());
    }
}

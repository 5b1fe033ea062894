//! FHIR dates and instants ⇄ the ledger's unix seconds of block time, by the `time` crate's
//! calendar.

use medledger_query::export::{utc_date, utc_instant, LAST_SECOND};

use super::{Issue, Res};

/// FHIR `instant`/`dateTime` of unix seconds (UTC). No block time passes [`LAST_SECOND`]
/// (9999-12-31T23:59:59Z, where FHIR's four-digit years end too); a ledger value past it (a
/// consent's `not_before` given in raw seconds) is written as that second.
pub fn instant(secs: u64) -> String {
    utc_instant(secs.min(LAST_SECOND))
}

/// How much of the calendar a FHIR date names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `YYYY`.
    Year,
    /// `YYYY-MM`.
    Month,
    /// `YYYY-MM-DD`.
    Day,
    /// A date and time with a zone (`YYYY-MM-DDThh:mm:ss[.f](Z|±hh:mm)`).
    Instant,
}

/// The span of time a FHIR `date`, `dateTime` or `instant` covers, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirSpan {
    /// The first instant it covers.
    pub first: time::OffsetDateTime,
    /// The first instant after it: the next year, month or day; the instant itself for an
    /// instant.
    pub after: time::OffsetDateTime,
    /// How much it names.
    pub precision: Precision,
}

/// Reads a FHIR R4 `date` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`), `dateTime` or `instant` (a date and
/// time with seconds and a `Z` or `±hh:mm` zone, which R4 requires once a time is given) with
/// the `time` crate's calendar: a day or month that does not exist (2026-02-30, 2026-13-01) is
/// `None`, as is anything not in R4's form (a lower-case `t`, a missing zone, year 0000).
pub fn fhir_span(s: &str) -> Option<FhirSpan> {
    use time::format_description::well_known::Rfc3339;
    use time::{Date, Month, OffsetDateTime};
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|c| c.is_ascii_digit());
    let day = |d: Date| d.midnight().assume_utc();
    if s.len() > 10 {
        // R4's regex: upper-case `T` and `Z`, seconds always, four-digit year 0001-9999.
        if s.as_bytes().get(10) != Some(&b'T') || s.contains(['t', 'z']) {
            return None;
        }
        let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        if t.year() < 1 {
            return None;
        }
        let t = t.to_offset(time::UtcOffset::UTC);
        return Some(FhirSpan {
            first: t,
            after: t,
            precision: Precision::Instant,
        });
    }
    let parts: Vec<&str> = s.split('-').collect();
    let year = match parts.first() {
        Some(y) if digits(y, 4) => y.parse::<i32>().ok().filter(|y| *y >= 1)?,
        _ => return None,
    };
    let month = |m: &str| {
        if !digits(m, 2) {
            return None;
        }
        Month::try_from(m.parse::<u8>().ok()?).ok()
    };
    match parts.as_slice() {
        [_] => Some(FhirSpan {
            first: day(Date::from_calendar_date(year, Month::January, 1).ok()?),
            after: day(Date::from_calendar_date(year.checked_add(1)?, Month::January, 1).ok()?),
            precision: Precision::Year,
        }),
        [_, m] => {
            let m = month(m)?;
            let (ny, nm) = if m == Month::December {
                (year.checked_add(1)?, Month::January)
            } else {
                (year, m.next())
            };
            Some(FhirSpan {
                first: day(Date::from_calendar_date(year, m, 1).ok()?),
                after: day(Date::from_calendar_date(ny, nm, 1).ok()?),
                precision: Precision::Month,
            })
        }
        [_, m, d] if digits(d, 2) => {
            let date = Date::from_calendar_date(year, month(m)?, d.parse::<u8>().ok()?).ok()?;
            Some(FhirSpan {
                first: day(date),
                after: day(date.next_day()?),
                precision: Precision::Day,
            })
        }
        _ => None,
    }
}

/// Which second of a FHIR date's span a ledger time takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The first second it covers: a period's start (a fraction of a second rounds up, so no
    /// earlier block time is let in).
    Start,
    /// The last second it covers: a period's end, which R4 includes whole, so `2027-12-31`
    /// ends at 2027-12-31T23:59:59Z (the ledger compares `time ≤ not_after` in whole seconds).
    End,
}

/// Unix seconds of a FHIR date, dateTime or instant ([`fhir_span`]) at `edge` of its span, for
/// the ledger time at FHIR path `at`. Refused (`value`, naming `at`): anything that is not an R4
/// date, a day that does not exist, and anything before 1970: the ledger holds times as unix
/// seconds of block time, from 1970-01-01T00:00:00Z, and has no earlier second to store.
pub fn parse_time(s: &str, at: &str, edge: Edge) -> Res<u64> {
    let span = fhir_span(s).ok_or_else(|| not_a_date(s, at))?;
    if span.first < time::OffsetDateTime::UNIX_EPOCH {
        return Err(Issue::value(
            at,
            format!(
                "{s} is before 1970-01-01: the ledger holds times as seconds since \
                 1970-01-01T00:00:00Z (block times), so it has no second to store this one in"
            ),
        ));
    }
    let secs = match (edge, span.precision) {
        (Edge::Start, Precision::Instant) => span
            .first
            .unix_timestamp()
            .saturating_add(i64::from(span.first.nanosecond() > 0)),
        (Edge::Start, _) => span.first.unix_timestamp(),
        (Edge::End, Precision::Instant) => span.first.unix_timestamp(),
        (Edge::End, _) => span.after.unix_timestamp().saturating_sub(1),
    };
    u64::try_from(secs).map_err(|_| Issue::value(at, format!("{s} is before 1970")))
}

/// The `value` issue of `s` at `at`, which is no R4 date or dateTime.
pub(super) fn not_a_date(s: &str, at: &str) -> Issue {
    Issue::value(
        at,
        format!(
            "{s:?} is not an R4 date (YYYY, YYYY-MM, YYYY-MM-DD, a day that exists) or \
             dateTime (YYYY-MM-DDThh:mm:ss with Z or ±hh:mm)"
        ),
    )
}

/// A consent's start (`not_before`) from a FHIR date at `at`: as [`parse_time`] at
/// [`Edge::Start`], except that a start before 1970 is 0, "from any time". No block time is
/// earlier, so a consent from 1964 on covers exactly the block times one without a start
/// covers: nothing is lost.
pub(super) fn period_start(s: &str, at: &str) -> Res<u64> {
    match fhir_span(s) {
        Some(span) if span.first < time::OffsetDateTime::UNIX_EPOCH => Ok(0),
        _ => parse_time(s, at, Edge::Start),
    }
}

/// The day of service of a claim from a FHIR date or dateTime at `at`: a whole day
/// (`YYYY-MM-DD`, its first second) or an instant (its second); a year or a month is not a day.
/// The ledger's `service_date` 0 means "none", so the first second of 1970-01-01 is refused
/// rather than stored as no date.
pub(super) fn service_date(s: &str, at: &str) -> Res<u64> {
    if matches!(
        fhir_span(s).map(|x| x.precision),
        Some(Precision::Year | Precision::Month)
    ) {
        return Err(Issue::value(
            at,
            format!("{s} is not a day: a day of service is YYYY-MM-DD (or a dateTime)"),
        ));
    }
    match parse_time(s, at, Edge::Start)? {
        0 => Err(Issue::value(
            at,
            "the ledger cannot hold a day of service at 1970-01-01T00:00:00Z: its 0 there \
             means no date",
        )),
        t => Ok(t),
    }
}

/// A FHIR `date` (UTC) of unix seconds.
pub fn date(secs: u64) -> String {
    utc_date(secs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::fhir::map::testkit::*;
    use crate::fhir::map::{claim_from_fhir, consent_from_fhir, consent_to_fhir, IssueKind};
    use medledger_tx::pb::Consent;
    use serde_json::json;

    #[test]
    fn fhir_times_parse_with_their_zones() {
        let start = |s: &str| parse_time(s, "x", Edge::Start);
        assert_eq!(start("1970-01-02").unwrap(), 86_400);
        assert_eq!(start("2026-11-26T00:00:00Z").unwrap(), 1_795_651_200);
        assert_eq!(start("2026-11-26T01:00:00+01:00").unwrap(), 1_795_651_200);
        assert_eq!(
            start("2024-02-29").unwrap(),
            start("2024-03-01").unwrap() - 86_400
        );
        // A start never lets in an earlier block time: a fraction rounds up.
        assert_eq!(start("2026-11-26T00:00:00.123Z").unwrap(), 1_795_651_201);
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-02-31",
            "2023-02-29",
            "2026-04-31",
            "2026-00",
            "2026-11-26T00:00:00",
            "2026-11-26T00:00Z",
            "2026-11-26t00:00:00z",
            "2026-11-26T24:00:00Z",
            "0000-01-01",
            "yesterday",
            "2026-11-2",
            "",
        ] {
            let e = start(bad).unwrap_err();
            assert_eq!(
                (e.kind, e.element.as_str()),
                (IssueKind::Value, "x"),
                "{bad}"
            );
        }
        assert_eq!(date(1_795_651_200), "2026-11-26");
    }

    #[test]
    fn a_date_only_end_includes_its_whole_day_month_or_year() {
        let end = |s: &str| parse_time(s, "x", Edge::End).unwrap();
        let start = |s: &str| parse_time(s, "x", Edge::Start).unwrap();
        assert_eq!(end("2027-12-31"), start("2028-01-01") - 1);
        assert_eq!(instant(end("2027-12-31")), "2027-12-31T23:59:59Z");
        assert_eq!(instant(end("2027-02")), "2027-02-28T23:59:59Z");
        assert_eq!(instant(end("2028-02")), "2028-02-29T23:59:59Z");
        assert_eq!(instant(end("2027")), "2027-12-31T23:59:59Z");
        assert_eq!(instant(start("2027")), "2027-01-01T00:00:00Z");
        // An instant is its own second, a fraction of it rounded down for an end.
        assert_eq!(end("2027-12-31T10:00:00.9Z"), start("2027-12-31T10:00:00Z"));
        // In a consent: the ledger's `time ≤ not_after` holds all through 2027-12-31.
        let mut v = consent_to_fhir(&consent());
        v["provision"]["period"] = json!({ "start": "2027-01-01", "end": "2027-12-31" });
        let grant = grant_of(&v);
        assert_eq!(grant.not_before, start("2027-01-01"));
        assert_eq!(grant.not_after, start("2028-01-01") - 1);
        // Out again, the period says the same.
        let back = consent_to_fhir(&Consent {
            not_before: grant.not_before,
            not_after: grant.not_after,
            ..consent()
        });
        assert_eq!(
            back["provision"]["period"],
            json!({ "start": "2027-01-01T00:00:00Z", "end": "2027-12-31T23:59:59Z" })
        );
    }

    /// The ledger's 0 means "unset" in `not_before`, `not_after` and `service_date`: 1970-01-01
    /// never silently becomes that.
    #[test]
    fn the_first_day_of_1970_is_a_date_not_unset() {
        let mut v = consent_to_fhir(&consent());
        // An end on 1970-01-01 covers that day: its last second, not 0 ("no end").
        v["provision"]["period"] = json!({ "end": "1970-01-01" });
        assert_eq!(grant_of(&v).not_after, 86_399);
        // An end at its very first second would be 0: refused, not turned into no end.
        v["provision"]["period"] = json!({ "end": "1970-01-01T00:00:00Z" });
        let r = consent_from_fhir(&v).unwrap_err();
        assert_eq!(errors(&r), ["value@Consent.provision.period.end"]);
        assert!(r.issues[0].reason.contains("0 there means no end"), "{r}");
        // A start then is stored as 0, which the ledger reads as "from any time": the same,
        // since no block time is earlier.
        v["provision"]["period"] = json!({ "start": "1970-01-01" });
        assert_eq!(grant_of(&v).not_before, 0);
        // A claim's day of service 1970-01-01 would be 0 ("none"): refused at its path.
        let mut claim = a_claim();
        claim["billablePeriod"] = json!({ "start": "1970-01-01" });
        let r = claim_from_fhir(&claim).unwrap_err();
        assert_eq!(errors(&r), ["value@Claim.billablePeriod.start"]);
        assert!(r.issues[0].reason.contains("0 there"), "{r}");
    }
}

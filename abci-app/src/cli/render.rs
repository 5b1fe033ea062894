//! Text output for people: one value as aligned `field  value` lines, a list as a table. Keys and
//! hashes in lowercase hex, enum values by their names (`TREAT`, `PENDING`), times in UTC. Never
//! Rust `Debug`. `-o json` does not come through here (it serializes the same values with serde).

use comfy_table::{presets, ContentArrangement, Table};
use medledger_query::export::utc_instant;
use medledger_tx::pb;

/// A value the CLI prints in text mode.
pub(super) trait Render {
    /// `(field, value)` pairs, the field names as in `-o json` (the protobuf field names).
    fn fields(&self) -> Vec<(&'static str, String)>;

    /// Column headers of a table of these: by default every field.
    fn columns() -> Vec<&'static str>
    where
        Self: Default,
    {
        Self::default()
            .fields()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    /// One table row, in the order of [`Render::columns`].
    fn row(&self) -> Vec<String> {
        self.fields().into_iter().map(|(_, v)| v).collect()
    }
}

/// Aligned `  field  value` lines, one per field, each ending in a newline.
pub(super) fn detail(fields: &[(&str, String)]) -> String {
    let width = fields.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    fields
        .iter()
        .map(|(n, v)| format!("  {n:<width$}  {v}\n"))
        .collect()
}

/// A table of `items`, one row each, with a header; empty string for no items.
pub(super) fn table<'a, T: Render + Default + 'a>(
    items: impl IntoIterator<Item = &'a T>,
) -> String {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(T::columns());
    let mut rows = 0;
    for item in items {
        t.add_row(item.row());
        rows += 1;
    }
    if rows == 0 {
        return String::new();
    }
    // The NOTHING preset pads every cell with one space each side: indent the table by two, as
    // `detail` indents its lines, and trim the lines' ends.
    t.lines().map(|l| format!(" {}\n", l.trim_end())).collect()
}

/// Lowercase hex, `-` for none.
pub(super) fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        "-".into()
    } else {
        hex::encode(bytes)
    }
}

/// A unix time in seconds as UTC, `-` for 0 (unset).
pub(super) fn utc(secs: u64) -> String {
    if secs == 0 {
        "-".into()
    } else {
        utc_instant(secs)
    }
}

/// A height, `-` for 0 (not yet / never).
fn height(h: u64) -> String {
    if h == 0 {
        "-".into()
    } else {
        h.to_string()
    }
}

/// A string, `-` for empty.
fn text(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

/// A list joined with `, `, `-` for empty.
fn list<T: AsRef<str>>(items: &[T]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(AsRef::as_ref)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// The name of an enum value without its prefix: `TREAT` for `PURPOSE_TREAT`.
fn enum_name<E>(value: i32, name: impl Fn(&E) -> &'static str, prefix: &str) -> String
where
    E: TryFrom<i32>,
{
    E::try_from(value)
        .map(|e| name(&e).trim_start_matches(prefix).to_string())
        .unwrap_or_else(|_| format!("UNKNOWN({value})"))
}

pub(super) fn purpose(v: i32) -> String {
    enum_name(v, pb::Purpose::as_str_name, "PURPOSE_")
}
pub(super) fn action(v: i32) -> String {
    enum_name(v, pb::Action::as_str_name, "ACTION_")
}
fn member_kind(v: i32) -> String {
    enum_name(v, pb::MemberKind::as_str_name, "MEMBER_KIND_")
}
/// `-` for an access that needs no review (not break-glass).
/// A patient's report of an access: `-` when none, else its review and reason
/// (`PENDING (NOT_MY_CARE)`).
fn report(e: &pb::AccessEvent) -> String {
    if e.reported_height == 0 {
        return "-".into();
    }
    format!(
        "{} ({})",
        review(e.report_review),
        report_reason(e.report_reason)
    )
}

fn report_reason(v: i32) -> String {
    if v == pb::ReportReason::Unspecified as i32 {
        return "-".into();
    }
    enum_name(v, pb::ReportReason::as_str_name, "REPORT_REASON_")
}

fn review(v: i32) -> String {
    if v == pb::ReviewStatus::Unspecified as i32 {
        return "-".into();
    }
    enum_name(v, pb::ReviewStatus::as_str_name, "REVIEW_STATUS_")
}
pub(super) fn practitioner_status(v: i32) -> String {
    enum_name(
        v,
        pb::PractitionerStatus::as_str_name,
        "PRACTITIONER_STATUS_",
    )
}
fn practitioner_role(v: i32) -> String {
    enum_name(v, pb::PractitionerRole::as_str_name, "PRACTITIONER_ROLE_")
}
pub(super) fn proposal_status(v: i32) -> String {
    enum_name(v, pb::ProposalStatus::as_str_name, "PROPOSAL_STATUS_")
}
pub(super) fn claim_status(v: i32) -> String {
    enum_name(v, pb::ClaimStatus::as_str_name, "CLAIM_STATUS_")
}

/// A consent's actions: none stored means READ only (the ledger's rule).
fn consent_actions(values: &[i32]) -> String {
    if values.is_empty() {
        "READ (default)".into()
    } else {
        names(values, action)
    }
}

fn names(values: &[i32], name: fn(i32) -> String) -> String {
    list(&values.iter().map(|v| name(*v)).collect::<Vec<_>>())
}

fn numbers(values: &[u64]) -> String {
    list(&values.iter().map(u64::to_string).collect::<Vec<_>>())
}

impl Render for u64 {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("value", self.to_string())]
    }
}

impl Render for String {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("value", self.clone())]
    }
}

impl Render for pb::Member {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", text(&self.id)),
            ("name", text(&self.name)),
            ("kind", member_kind(self.kind)),
            ("admin_key", hex(&self.admin_key)),
        ]
    }
}

impl Render for pb::Patient {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", text(&self.id)),
            ("key", hex(&self.key)),
            ("registered_height", height(self.registered_height)),
            ("enrolled_by", text(&self.enrolled_by)),
        ]
    }
}

impl Render for pb::Consent {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("id", text(&self.id)),
            ("patient_id", text(&self.patient_id)),
            ("grantee", text(&self.grantee)),
            ("data_classes", list(&self.data_classes)),
            ("deny_classes", list(&self.deny_classes)),
            ("record_ids", list(&self.record_ids)),
            ("purposes", names(&self.purposes, purpose)),
            ("actions", consent_actions(&self.actions)),
            ("not_before", utc(self.not_before)),
            ("not_after", utc(self.not_after)),
            ("granted_height", height(self.granted_height)),
            ("revoked_height", height(self.revoked_height)),
            ("study_id", text(&self.study_id)),
        ]
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "id",
            "grantee",
            "data_classes",
            "purposes",
            "actions",
            "not_before",
            "not_after",
            "granted_height",
            "revoked_height",
        ]
    }

    fn row(&self) -> Vec<String> {
        vec![
            text(&self.id),
            text(&self.grantee),
            list(&self.data_classes),
            names(&self.purposes, purpose),
            consent_actions(&self.actions),
            utc(self.not_before),
            utc(self.not_after),
            height(self.granted_height),
            height(self.revoked_height),
        ]
    }
}

impl Render for pb::AccessEvent {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("patient_id", text(&self.patient_id)),
            ("index", self.index.to_string()),
            ("time", utc(self.time)),
            ("height", self.height.to_string()),
            ("actor", text(&self.actor)),
            ("practitioner", text(&self.practitioner)),
            ("action", action(self.action)),
            ("purpose", purpose(self.purpose)),
            ("data_class", text(&self.data_class)),
            ("record_id", text(&self.record_id)),
            ("consent_id", text(&self.consent_id)),
            ("break_glass", yes_no(self.break_glass)),
            ("review", review(self.review)),
            ("reviewer", text(&self.reviewer)),
            (
                "break_glass_reason_hash",
                hex(&self.break_glass_reason_hash),
            ),
            ("review_note_hash", hex(&self.review_note_hash)),
            ("reported_height", height(self.reported_height)),
            ("report_reason", report_reason(self.report_reason)),
            ("report_review", review(self.report_review)),
            ("report_reviewer", text(&self.report_reviewer)),
            ("report_note_hash", hex(&self.report_note_hash)),
        ]
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "index",
            "time",
            "height",
            "actor",
            "action",
            "purpose",
            "data_class",
            "record_id",
            "consent_id",
            "review",
            "report",
        ]
    }

    fn row(&self) -> Vec<String> {
        let actor = if self.practitioner.is_empty() {
            text(&self.actor)
        } else {
            format!("{} ({})", self.actor, self.practitioner)
        };
        let consent = if self.break_glass {
            "BREAK-GLASS".into()
        } else {
            text(&self.consent_id)
        };
        vec![
            self.index.to_string(),
            utc(self.time),
            self.height.to_string(),
            actor,
            action(self.action),
            purpose(self.purpose),
            text(&self.data_class),
            text(&self.record_id),
            consent,
            review(self.review),
            report(self),
        ]
    }
}

impl Render for pb::Practitioner {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("did", text(&self.did)),
            ("name", text(&self.name)),
            ("member_id", text(&self.member_id)),
            ("role", practitioner_role(self.role)),
            ("status", practitioner_status(self.status)),
            ("public_key", hex(&self.public_key)),
            ("licence_hash", hex(&self.licence_hash)),
            ("valid_until", utc(self.valid_until)),
            ("registered_height", height(self.registered_height)),
            ("status_reason_hash", hex(&self.status_reason_hash)),
        ]
    }
}

impl Render for pb::Guardians {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let keys: Vec<String> = self.guardian_keys.iter().map(|k| hex(k)).collect();
        vec![
            ("guardian_keys", list(&keys)),
            ("threshold", self.threshold.to_string()),
            ("recoveries", self.recoveries.to_string()),
        ]
    }
}

impl Render for pb::RecordAnchor {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("record_id", text(&self.record_id)),
            ("patient_id", text(&self.patient_id)),
            ("custodian", text(&self.custodian)),
            ("resource_type", text(&self.resource_type)),
            ("content_hash", hex(&self.content_hash)),
            ("size", self.size.to_string()),
            ("key_id", text(&self.key_id)),
            ("holders", list(&self.holders)),
            ("threshold", self.threshold.to_string()),
            (
                "share_commitments",
                self.share_commitments.len().to_string(),
            ),
            ("anchored_by", text(&self.anchored_by)),
            ("anchored_height", height(self.anchored_height)),
            ("erased_height", height(self.erased_height)),
            ("erased_by", text(&self.erased_by)),
            ("erase_reason_hash", hex(&self.erase_reason_hash)),
            (
                "erasure_confirmed_height",
                height(self.erasure_confirmed_height),
            ),
            ("erasure_confirmed_by", text(&self.erasure_confirmed_by)),
            ("erasure_confirmations", list(&self.erasure_confirmations)),
        ]
    }
}

impl Render for pb::Proposal {
    fn fields(&self) -> Vec<(&'static str, String)> {
        use pb::submit_proposal::Action as A;
        let content = self.content.as_ref();
        let action = match content.and_then(|c| c.action.as_ref()) {
            Some(A::AddMember(a)) => format!("add member {} ({})", a.id, member_kind(a.kind)),
            Some(A::RemoveMember(a)) => format!("remove member {}", a.member_id),
            Some(A::ChangePower(a)) => format!("change power of {} to {}", a.member_id, a.power),
            Some(A::RotateAdminKey(a)) => format!(
                "rotate admin key of {} to {}",
                a.member_id,
                hex(&a.new_admin_key)
            ),
            Some(A::ScheduleUpgrade(u)) => format!(
                "upgrade {} to app version {} at height {}",
                u.name, u.app_version, u.height
            ),
            Some(A::GrantAuditor(g)) => format!(
                "grant auditor to {} over {}",
                g.practitioner_did,
                auditor_scope(&g.scope_member)
            ),
            Some(A::RevokeAuditor(r)) => format!("revoke auditor {}", r.practitioner_did),
            Some(A::SetCustody(c)) if c.holders == 0 => "threshold custody off".into(),
            Some(A::SetCustody(c)) => format!(
                "threshold custody: {} holders, {} to rebuild a key",
                c.holders, c.threshold
            ),
            Some(A::SetWebRelease(w)) => format!(
                "approve web release {} ({})",
                w.version,
                hex::encode(&w.bundle_sha256)
            ),
            None => "-".into(),
        };
        let deadline = content.map_or(0, |c| c.deadline_height);
        vec![
            ("id", self.id.to_string()),
            ("proposer", text(&self.proposer)),
            ("action", action),
            ("status", proposal_status(self.status)),
            ("yes_voters", list(&self.yes_voters)),
            ("no_voters", list(&self.no_voters)),
            ("yes_power", self.yes_power.to_string()),
            ("no_power", self.no_power.to_string()),
            ("total_power", self.total_power.to_string()),
            ("submitted_height", height(self.submitted_height)),
            ("deadline_height", height(deadline)),
            ("decided_height", height(self.decided_height)),
            ("outcome", text(&self.outcome)),
        ]
    }
}

/// An auditor grant's scope in words: `every member`, or `member lab-b`.
fn auditor_scope(member: &str) -> String {
    if member.is_empty() {
        "every member".into()
    } else {
        format!("member {member}")
    }
}

impl Render for pb::Auditor {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("practitioner_did", text(&self.practitioner_did)),
            ("scope", auditor_scope(&self.scope_member)),
            ("granted_by_proposal", self.granted_by_proposal.to_string()),
            ("granted_height", height(self.granted_height)),
        ]
    }
}

impl Render for pb::ClaimItem {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("service_code", text(&self.service_code)),
            ("modifier", text(&self.modifier)),
            ("quantity", self.quantity.to_string()),
            ("unit_price", self.unit_price.to_string()),
        ]
    }
}

impl Render for pb::Claim {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let items: Vec<String> = self
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| {
                let code = if it.modifier.is_empty() {
                    it.service_code.clone()
                } else {
                    format!("{}@{}", it.service_code, it.modifier)
                };
                let decided = self
                    .decisions
                    .get(i)
                    .map(|d| {
                        let reasons = if d.reasons.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", d.reasons.join("; "))
                        };
                        format!(
                            " → approved {}, copay {}{reasons}",
                            d.approved_amount, d.copay
                        )
                    })
                    .unwrap_or_default();
                format!("{code} {} x {}{decided}", it.quantity, it.unit_price)
            })
            .collect();
        vec![
            ("id", text(&self.id)),
            ("status", claim_status(self.status)),
            ("patient_id", text(&self.patient_id)),
            ("provider", text(&self.provider)),
            ("submitted_by", text(&self.submitted_by)),
            ("insurer", text(&self.insurer)),
            (
                "policy",
                format!("{} v{}", self.policy_id, self.policy_version),
            ),
            ("coverage_index", self.coverage_index.to_string()),
            ("service_date", utc(self.service_date)),
            ("items", list(&items)),
            ("evidence", numbers(&self.evidence)),
            ("record_ids", list(&self.record_ids)),
            ("consent_id", text(&self.consent_id)),
            ("total_claimed", self.total_claimed.to_string()),
            ("total_approved", self.total_approved.to_string()),
            ("total_copay", self.total_copay.to_string()),
            ("total_benefit", self.total_benefit.to_string()),
            ("appealed", yes_no(self.appealed)),
            ("payment_reference", text(&self.payment_reference)),
            ("submitted_height", height(self.submitted_height)),
            ("decided_height", height(self.decided_height)),
            ("decided_by", text(&self.decided_by)),
            ("paid_height", height(self.paid_height)),
            ("appeal_reason_hash", hex(&self.appeal_reason_hash)),
            ("decision_note_hash", hex(&self.decision_note_hash)),
        ]
    }
}

impl Render for pb::CoverageRule {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let cap = if self.price_cap == 0 {
            "-".into()
        } else {
            self.price_cap.to_string()
        };
        vec![
            ("service_code", text(&self.service_code)),
            ("covered", yes_no(self.covered)),
            ("price_cap", cap),
            ("copay_fixed", self.copay_fixed.to_string()),
            ("copay_bps", self.copay_bps.to_string()),
            ("preauth_required", yes_no(self.preauth_required)),
        ]
    }
}

impl Render for pb::CoveragePolicy {
    fn fields(&self) -> Vec<(&'static str, String)> {
        let rules = table(&self.rules);
        let rules = rules.trim_end();
        let mut fields = vec![
            ("insurer", text(&self.insurer)),
            ("policy_id", text(&self.policy_id)),
            ("version", self.version.to_string()),
            ("published_height", height(self.published_height)),
        ];
        // The rules, a table of their own under the fields.
        let rules = if rules.is_empty() {
            "-".to_string()
        } else {
            format!("\n{rules}")
        };
        fields.push(("rules", rules));
        fields
    }
}

impl Render for pb::Coverage {
    fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("patient_id", text(&self.patient_id)),
            ("insurer", text(&self.insurer)),
            ("policy_id", text(&self.policy_id)),
            ("index", self.index.to_string()),
            ("start", utc(self.start)),
            ("end", utc(self.end)),
            ("enrolled_height", height(self.enrolled_height)),
            ("ended_height", height(self.ended_height)),
        ]
    }

    fn columns() -> Vec<&'static str> {
        vec![
            "index",
            "policy_id",
            "start",
            "end",
            "enrolled_height",
            "ended_height",
        ]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.index.to_string(),
            text(&self.policy_id),
            utc(self.start),
            utc(self.end),
            height(self.enrolled_height),
            height(self.ended_height),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> pb::AccessEvent {
        pb::AccessEvent {
            patient_id: "pt-1".into(),
            index: 0,
            actor: "hospital-a".into(),
            record_id: "obs-1".into(),
            data_class: "Observation".into(),
            purpose: pb::Purpose::Treat as i32,
            consent_id: "c-1".into(),
            height: 6,
            time: 1_700_000_000,
            action: pb::Action::Read as i32,
            review: pb::ReviewStatus::Pending as i32,
            break_glass_reason_hash: vec![0xAB, 0x01],
            ..Default::default()
        }
    }

    fn no_debug(s: &str) {
        assert!(
            !s.contains('{') && !s.contains('}'),
            "Debug-like output: {s}"
        );
    }

    #[test]
    fn an_access_event_row_has_names_utc_and_no_debug() {
        let t = table(&[event()]);
        no_debug(&t);
        let mut lines = t.lines();
        let header = lines.next().expect("a header");
        assert!(
            header.contains("time") && header.contains("purpose"),
            "{header}"
        );
        let row = lines.next().expect("a row");
        for want in [
            "2023-11-14T22:13:20Z",
            "hospital-a",
            "READ",
            "TREAT",
            "Observation",
            "obs-1",
            "c-1",
            "PENDING",
        ] {
            assert!(row.contains(want), "{want} missing from {row}");
        }
        // Columns line up: every row starts its `time` column where the header does.
        let col = header.find("time").expect("time column");
        assert_eq!(row.find("2023").expect("time"), col);
        assert!(table::<pb::AccessEvent>(&[]).is_empty());
    }

    #[test]
    fn a_reported_access_shows_its_report_and_review() {
        let mut e = event();
        assert!(!table(&[e.clone()]).contains("PENDING ("));
        e.reported_height = 9;
        e.report_reason = pb::ReportReason::NotMyCare as i32;
        e.report_review = pb::ReviewStatus::Unjustified as i32;
        e.report_reviewer = "did:medledger:00ff".into();
        let t = table(&[e.clone()]);
        assert!(t.contains("UNJUSTIFIED (NOT_MY_CARE)"), "{t}");
        let d = detail(&e.fields());
        no_debug(&d);
        assert!(d.contains("report_reason            NOT_MY_CARE\n"), "{d}");
        assert!(
            d.contains("report_reviewer          did:medledger:00ff\n"),
            "{d}"
        );
    }

    #[test]
    fn an_access_event_detail_shows_hashes_in_lowercase_hex() {
        let d = detail(&event().fields());
        no_debug(&d);
        assert!(d.contains("break_glass_reason_hash  ab01\n"), "{d}");
        assert!(d.contains("review_note_hash         -\n"), "{d}");
    }

    #[test]
    fn a_patient_key_is_hex_not_a_column_of_bytes() {
        let p = pb::Patient {
            id: "pt-1".into(),
            key: vec![0x71, 0xBA, 0xA4],
            registered_height: 3,
            enrolled_by: "hospital-a".into(),
        };
        let d = detail(&p.fields());
        no_debug(&d);
        assert!(d.contains("  key                71baa4\n"), "{d}");
        assert!(d.contains("  registered_height  3\n"), "{d}");
    }

    #[test]
    fn a_consent_shows_enum_names_and_utc_period() {
        let c = pb::Consent {
            id: "c-1".into(),
            patient_id: "pt-1".into(),
            grantee: "hospital-a".into(),
            data_classes: vec!["Observation".into(), "Condition".into()],
            purposes: vec![pb::Purpose::Treat as i32, pb::Purpose::Etreat as i32],
            actions: vec![pb::Action::Read as i32],
            not_after: 86_400,
            granted_height: 5,
            ..Default::default()
        };
        let d = detail(&c.fields());
        no_debug(&d);
        for want in [
            "purposes        TREAT, ETREAT\n",
            "actions         READ\n",
            "deny_classes    -\n",
            "data_classes    Observation, Condition\n",
            "not_before      -\n",
            "not_after       1970-01-02T00:00:00Z\n",
            "revoked_height  -\n",
        ] {
            assert!(d.contains(want), "{want:?} missing from\n{d}");
        }
        let t = table(&[c]);
        no_debug(&t);
        assert!(t.contains("TREAT, ETREAT"), "{t}");
    }

    #[test]
    fn a_claim_shows_status_items_and_decisions() {
        let c = pb::Claim {
            id: "cl-1".into(),
            status: pb::ClaimStatus::PartiallyApproved as i32,
            items: vec![pb::ClaimItem {
                service_code: "99213".into(),
                quantity: 1,
                unit_price: 5000,
                modifier: "76".into(),
            }],
            decisions: vec![pb::ItemDecision {
                approved_amount: 4000,
                copay: 500,
                reasons: vec!["cap".into()],
            }],
            decision_note_hash: vec![0xFF],
            ..Default::default()
        };
        let d = detail(&c.fields());
        no_debug(&d);
        assert!(d.contains("PARTIALLY_APPROVED"), "{d}");
        assert!(
            d.contains("99213@76 1 x 5000 → approved 4000, copay 500 (cap)"),
            "{d}"
        );
        assert!(d.contains("decision_note_hash  ff\n"), "{d}");
    }

    #[test]
    fn other_values_render_without_debug() {
        let member = pb::Member {
            id: "lab-b".into(),
            kind: pb::MemberKind::Lab as i32,
            admin_key: vec![1, 2],
            ..Default::default()
        };
        assert!(detail(&member.fields()).contains("kind       LAB\n"));
        let policy = pb::CoveragePolicy {
            insurer: "insurer-c".into(),
            policy_id: "gold".into(),
            version: 2,
            rules: vec![pb::CoverageRule {
                service_code: "99213".into(),
                covered: true,
                ..Default::default()
            }],
            published_height: 9,
        };
        let coverage = pb::Coverage {
            start: 86_400,
            ..Default::default()
        };
        let proposal = pb::Proposal {
            status: pb::ProposalStatus::Passed as i32,
            ..Default::default()
        };
        let practitioner = pb::Practitioner {
            status: pb::PractitionerStatus::Suspended as i32,
            role: pb::PractitionerRole::Nurse as i32,
            ..Default::default()
        };
        let texts = [
            detail(&policy.fields()),
            table(&[coverage]),
            detail(&proposal.fields()),
            detail(&practitioner.fields()),
            detail(&pb::Guardians::default().fields()),
            detail(&pb::RecordAnchor::default().fields()),
        ];
        for t in &texts {
            no_debug(t);
        }
        assert!(texts[0].contains("99213") && texts[0].contains("service_code"));
        assert!(texts[1].contains("1970-01-02T00:00:00Z"));
        assert!(texts[2].contains("PASSED"));
        assert!(texts[3].contains("SUSPENDED") && texts[3].contains("NURSE"));
    }

    #[test]
    fn auditor_grants_render_their_scope() {
        use pb::submit_proposal::Action as A;
        let proposal = |action| pb::Proposal {
            content: Some(pb::SubmitProposal {
                action: Some(action),
                deadline_height: 9,
            }),
            ..Default::default()
        };
        let all = detail(
            &proposal(A::GrantAuditor(pb::GrantAuditor {
                practitioner_did: "did:medledger:ab".into(),
                scope_member: String::new(),
            }))
            .fields(),
        );
        assert!(
            all.contains("grant auditor to did:medledger:ab over every member"),
            "{all}"
        );
        let one = detail(
            &proposal(A::GrantAuditor(pb::GrantAuditor {
                practitioner_did: "did:medledger:ab".into(),
                scope_member: "lab-b".into(),
            }))
            .fields(),
        );
        assert!(one.contains("over member lab-b"), "{one}");
        let revoke = detail(
            &proposal(A::RevokeAuditor(pb::RevokeAuditor {
                practitioner_did: "did:medledger:ab".into(),
            }))
            .fields(),
        );
        assert!(
            revoke.contains("revoke auditor did:medledger:ab"),
            "{revoke}"
        );
        let grant = pb::Auditor {
            practitioner_did: "did:medledger:ab".into(),
            scope_member: "lab-b".into(),
            granted_by_proposal: 4,
            granted_height: 12,
        };
        let t = detail(&grant.fields());
        no_debug(&t);
        assert!(t.contains("member lab-b") && t.contains("12"), "{t}");
    }
}

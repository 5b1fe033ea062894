//! Access events: every read (or write) of a patient's data, under the consent that permitted
//! it, or flagged as emergency ("break-glass") access awaiting a privacy officer's review.

use medledger_tx::keys::List;
use medledger_tx::pb::{
    AccessEvent, Action, LogAccess, LogBreakGlass, MemberKind, Practitioner, PractitionerRole,
    Purpose, ReportAccess, ReportReason, ReviewBreakGlass, ReviewReport, ReviewStatus,
};
use medledger_tx::{keys, Code, TxError};

use super::claims;
use super::consent::{evaluate, Decision, Request};
use super::members::{require_member, Signer};
use super::patients::{require_own_patient, require_patient};
use super::practitioners::{acting_member, require_active, require_role};
use super::records::require_readable_as;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::lists;
use crate::view::{StateRead, TxState};
use prost::Message;

/// LogAccess: a member (its admin system or one of its active practitioners) records a read or
/// write; refused unless a consent permits it now. Signed by a patient's key, it is the
/// patient's own read ([`patient_read`]).
pub fn log(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &LogAccess,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    if matches!(signer, Signer::Patient(_)) {
        return patient_read(st, signer, m, ctx);
    }
    if m.purpose == Purpose::Patrqt as i32 {
        // Who may read as "patient requested" is the patient alone.
        require_own_patient(signer, &m.patient_id, "a LogAccess with purpose PATRQT")?;
    }
    let (member, practitioner) = acting_member(st, signer, "LogAccess", ctx)?;
    require_patient(st, &m.patient_id)?;
    require_readable_as(st, &m.record_id, &m.patient_id, Some(&m.data_class))?;
    let action = if m.action == 0 {
        Action::Read as i32
    } else {
        m.action
    };
    let req = Request {
        patient: &m.patient_id,
        member: &member,
        practitioner: practitioner.as_ref().map(|p| p.did.as_str()),
        action,
        data_class: &m.data_class,
        record_id: &m.record_id,
        purpose: m.purpose,
    };
    let consent_id = match evaluate(st, &req, ctx)? {
        Decision::Permit(id) => id,
        Decision::Deny(reason) => {
            return Err(TxError::new(Code::NoPermittingConsent, reason).into())
        }
    };
    let event = AccessEvent {
        patient_id: m.patient_id.clone(),
        actor: member,
        record_id: m.record_id.clone(),
        data_class: m.data_class.clone(),
        purpose: m.purpose,
        consent_id,
        action,
        practitioner: practitioner.map(|p| p.did).unwrap_or_default(),
        ..Default::default()
    };
    Ok(vec![record_event(st, event, ctx)?.0])
}

/// A patient's own read (LogAccess signed by the patient's key): purpose PATRQT and action READ
/// only ([`Code::PatientPurposeOnly`]), of the signer's own record ([`Code::NotOwnPatientId`]),
/// with a registered box key ([`Code::NoPatientBoxKey`]); no consent is asked. Recorded like
/// any access, its actor the patient id, so it is in the patient's proven access history.
fn patient_read(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &LogAccess,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    if m.purpose != Purpose::Patrqt as i32 || (m.action != 0 && m.action != Action::Read as i32) {
        return Err(TxError::new(
            Code::PatientPurposeOnly,
            "a patient's key logs only the patient's own reads: purpose PATRQT, action READ",
        )
        .into());
    }
    let id = require_own_patient(signer, &m.patient_id, "a patient's own read (PATRQT)")?;
    require_patient(st, &id)?;
    require_readable_as(st, &m.record_id, &id, Some(&m.data_class))?;
    if st.get(&keys::patient_box_key(&id))?.is_none() {
        return Err(TxError::new(
            Code::NoPatientBoxKey,
            format!(
                "patient {id} has registered no box key: send RegisterPatientBoxKey first, so \
                 that holders have a key to seal the record's key shares to"
            ),
        )
        .into());
    }
    let event = AccessEvent {
        patient_id: id.clone(),
        actor: id,
        record_id: m.record_id.clone(),
        data_class: m.data_class.clone(),
        purpose: Purpose::Patrqt as i32,
        action: Action::Read as i32,
        ..Default::default()
    };
    Ok(vec![record_event(st, event, ctx)?.0])
}

/// LogBreakGlass: a physician or nurse of a care provider reads without consent in an emergency.
/// Recorded with the hash of the reason, flagged, and opened for review by a privacy officer of
/// another member.
pub fn break_glass(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &LogBreakGlass,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let Signer::Practitioner(p) = signer else {
        return Err(TxError::new(
            Code::NotAuthorized,
            "break-glass access is logged by the physician or nurse who reads, with their own key",
        )
        .into());
    };
    require_active(st, p, ctx)?;
    require_role(
        p,
        &[PractitionerRole::Physician, PractitionerRole::Nurse],
        "break-glass access",
    )?;
    require_care_provider(st, p)?;
    require_patient(st, &m.patient_id)?;
    require_readable_as(st, &m.record_id, &m.patient_id, Some(&m.data_class))?;
    let event = AccessEvent {
        patient_id: m.patient_id.clone(),
        actor: p.member_id.clone(),
        record_id: m.record_id.clone(),
        data_class: m.data_class.clone(),
        purpose: Purpose::Etreat as i32,
        action: Action::Read as i32,
        practitioner: p.did.clone(),
        break_glass: true,
        break_glass_reason_hash: m.reason_hash.clone(),
        review: ReviewStatus::Pending as i32,
        ..Default::default()
    };
    let (logged, index) = record_event(st, event, ctx)?;
    lists::push(
        st,
        &List::Reviews(&p.member_id),
        format!("{}/{index}", m.patient_id).into_bytes(),
    )?;
    Ok(vec![
        logged,
        Event::new(
            "medledger.access.break_glass",
            vec![
                ("patient_id", m.patient_id.clone()),
                ("member", p.member_id.clone()),
                ("practitioner", p.did.clone()),
                ("index", index.to_string()),
            ],
        ),
    ])
}

/// ReviewBreakGlass: a privacy officer of *another* member than the one whose practitioner broke
/// the glass closes the review as justified or unjustified. A member never clears its own
/// emergency accesses; the patient sees the access and its review either way.
pub fn review(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &ReviewBreakGlass,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let officer = reviewing_officer(st, signer, ctx, "break-glass access")?;
    let key = keys::access_event(&m.patient_id, m.event_index);
    let mut event = require_event(st, &key, &m.patient_id, m.event_index)?;
    if !event.break_glass {
        return Err(TxError::new(
            Code::NotBreakGlass,
            "this access was made under a consent; there is nothing to review",
        )
        .into());
    }
    require_another_member(officer, &event)?;
    if event.review != ReviewStatus::Pending as i32 {
        return Err(TxError::new(
            Code::AlreadyReviewed,
            format!("reviewed already by {}", event.reviewer),
        )
        .into());
    }
    event.review = if m.justified {
        ReviewStatus::Justified
    } else {
        ReviewStatus::Unjustified
    } as i32;
    event.reviewer = officer.did.clone();
    event.review_note_hash = m.note_hash.clone();
    st.put_msg(key, &event);
    let verdict = if m.justified {
        "justified"
    } else {
        "unjustified"
    };
    let mut events = vec![Event::new(
        "medledger.access.reviewed",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("index", m.event_index.to_string()),
            ("verdict", verdict.to_string()),
        ],
    )];
    // The claim resting on this access (at most one) follows the verdict.
    events.extend(claims::on_break_glass_review(
        st,
        &m.patient_id,
        m.event_index,
        m.justified,
        ctx,
    )?);
    Ok(events)
}

/// ReportAccess: the patient disputes an access in their history ("report this access"),
/// signed by the patient's own key for their own id. The event gains `reported_height`,
/// `report_reason` and `report_review` PENDING, and joins the review queue of the member that
/// accessed (`review/{actor}/…`, [`List::Reviews`]; a break-glass event is there already), for a
/// privacy officer of another member ([`review_report`]). Not the patient's own reads
/// ([`Code::OwnAccessNotReportable`]), once per event ([`Code::AlreadyReported`]), bounded per
/// patient and per block ([`Code::TooManyReports`]).
pub fn report(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &ReportAccess,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    use medledger_tx::limits::{MAX_REPORTS_PER_BLOCK, MAX_REPORTS_PER_PATIENT_PER_BLOCK};
    let patient = require_own_patient(signer, &m.patient_id, "ReportAccess")?;
    require_patient(st, &patient)?;
    let key = keys::access_event(&patient, m.event_index);
    let mut event = require_event(st, &key, &patient, m.event_index)?;
    if event.actor == patient {
        return Err(TxError::new(
            Code::OwnAccessNotReportable,
            format!(
                "access {} is your own read of your record; only others' accesses can be reported",
                m.event_index
            ),
        )
        .into());
    }
    if event.reported_height != 0 {
        return Err(TxError::new(
            Code::AlreadyReported,
            format!(
                "access {} was reported at height {}; its review is on the event",
                m.event_index, event.reported_height
            ),
        )
        .into());
    }
    let block_key = keys::report_block();
    let patient_key = keys::report_block_of(&patient);
    let in_block = count_in_block(st, &block_key, ctx.height)?;
    let of_patient = count_in_block(st, &patient_key, ctx.height)?;
    if in_block >= MAX_REPORTS_PER_BLOCK || of_patient >= MAX_REPORTS_PER_PATIENT_PER_BLOCK {
        return Err(TxError::new(
            Code::TooManyReports,
            format!(
                "this block recorded {of_patient} reports of yours and {in_block} in all; the \
                 limits are {MAX_REPORTS_PER_PATIENT_PER_BLOCK} and {MAX_REPORTS_PER_BLOCK}: send \
                 it again in a later block"
            ),
        )
        .into());
    }
    // Bounded by the limits above: the counts cannot overflow.
    st.put(block_key, block_count(ctx.height, in_block + 1));
    st.put(patient_key, block_count(ctx.height, of_patient + 1));
    event.reported_height = ctx.height;
    event.report_reason = m.reason;
    event.report_review = ReviewStatus::Pending as i32;
    let actor = event.actor.clone();
    if !event.break_glass {
        // A break-glass event joined its member's queue when it was logged.
        lists::push(
            st,
            &List::Reviews(&actor),
            format!("{patient}/{}", m.event_index).into_bytes(),
        )?;
    }
    st.put_msg(key, &event);
    let reason = ReportReason::try_from(m.reason).map_or("UNKNOWN", |r| r.as_str_name());
    Ok(vec![Event::new(
        "medledger.access.reported",
        vec![
            ("patient_id", patient),
            ("index", m.event_index.to_string()),
            ("member", actor),
            ("reason", reason.to_string()),
        ],
    )])
}

/// ReviewReport: an active privacy officer of a member other than the one that accessed closes
/// the patient's open report: upheld (the access was not justified: `report_review`
/// UNJUSTIFIED) or not (JUSTIFIED). As with break-glass, a member never clears reports of its
/// own accesses.
pub fn review_report(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &ReviewReport,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let officer = reviewing_officer(st, signer, ctx, "a patient's report")?;
    let key = keys::access_event(&m.patient_id, m.event_index);
    let mut event = require_event(st, &key, &m.patient_id, m.event_index)?;
    require_another_member(officer, &event)?;
    if event.report_review != ReviewStatus::Pending as i32 {
        let why = if event.reported_height == 0 {
            "was never reported".to_string()
        } else {
            format!(
                "had its report reviewed already by {}",
                event.report_reviewer
            )
        };
        return Err(TxError::new(
            Code::NoOpenReport,
            format!("access {} of patient {} {why}", m.event_index, m.patient_id),
        )
        .into());
    }
    event.report_review = if m.upheld {
        ReviewStatus::Unjustified
    } else {
        ReviewStatus::Justified
    } as i32;
    event.report_reviewer = officer.did.clone();
    event.report_note_hash = m.note_hash.clone();
    st.put_msg(key, &event);
    Ok(vec![Event::new(
        "medledger.access.report_reviewed",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("index", m.event_index.to_string()),
            ("member", event.actor),
            ("upheld", m.upheld.to_string()),
        ],
    )])
}

/// The signer of a review of `what`: an active privacy officer ([`Code::NotAuthorized`]
/// otherwise, or the practitioner rules' codes).
fn reviewing_officer<'s>(
    view: &impl StateRead,
    signer: &'s Signer,
    ctx: &BlockCtx,
    what: &str,
) -> Result<&'s Practitioner, ApplyError> {
    let Signer::Practitioner(officer) = signer else {
        return Err(TxError::new(
            Code::NotAuthorized,
            format!("a review of {what} is signed by a privacy officer"),
        )
        .into());
    };
    require_active(view, officer, ctx)?;
    require_role(
        officer,
        &[PractitionerRole::PrivacyOfficer],
        &format!("reviewing {what}"),
    )?;
    Ok(officer.as_ref())
}

/// A member never reviews its own accesses ([`Code::SelfReview`]).
fn require_another_member(officer: &Practitioner, event: &AccessEvent) -> Result<(), ApplyError> {
    if event.actor == officer.member_id {
        return Err(TxError::new(
            Code::SelfReview,
            format!(
                "the access was made by {}; a privacy officer of another member reviews it",
                event.actor
            ),
        )
        .into());
    }
    Ok(())
}

/// The access event at `key` ([`Code::UnknownAccessEvent`] when absent).
fn require_event(
    view: &impl StateRead,
    key: &[u8],
    patient: &str,
    index: u64,
) -> Result<AccessEvent, ApplyError> {
    Ok(view.get_msg(key)?.ok_or_else(|| {
        TxError::new(
            Code::UnknownAccessEvent,
            format!("patient {patient} has no access event {index}"),
        )
    })?)
}

/// The stored form of a per-block count: the height then the count (u64 big-endian each).
fn block_count(height: u64, n: u64) -> Vec<u8> {
    let mut out = height.to_be_bytes().to_vec();
    out.extend_from_slice(&n.to_be_bytes());
    out
}

/// The count kept at `key` ([`block_count`]) for block `height`: 0 when it was last written in
/// another block or never.
fn count_in_block(
    view: &impl StateRead,
    key: &[u8],
    height: u64,
) -> Result<u64, crate::error::StoreError> {
    let Some(bytes) = view.get(key)? else {
        return Ok(0);
    };
    let corrupt = || crate::error::StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "not 16 bytes: a height and a count".into(),
    };
    let (h, n) = bytes.split_at_checked(8).ok_or_else(corrupt)?;
    let h = keys::decode_u64(h).ok_or_else(corrupt)?;
    let n = keys::decode_u64(n).ok_or_else(corrupt)?;
    Ok(if h == height { n } else { 0 })
}

/// Break-glass is for members that treat patients: a hospital's physicians and nurses. The
/// registration rule already keeps clinical roles to care providers; checking the member's kind
/// again here keeps the rule whatever was registered before it existed.
fn require_care_provider(view: &impl StateRead, p: &Practitioner) -> Result<(), ApplyError> {
    let member = require_member(view, &p.member_id)?;
    if member.kind != MemberKind::Hospital as i32 {
        return Err(TxError::new(
            Code::RoleNotForMemberKind,
            format!(
                "break-glass is for care providers; {} of member {} ({}) may not",
                p.did,
                p.member_id,
                MemberKind::try_from(member.kind).map_or("UNKNOWN", |k| k.as_str_name())
            ),
        )
        .into());
    }
    Ok(())
}

/// Appends `event` to the patient's access history (index and block filled in here) and returns
/// its event and index.
fn record_event(
    st: &mut TxState<'_, '_>,
    mut event: AccessEvent,
    ctx: &BlockCtx,
) -> Result<(Event, u64), ApplyError> {
    let patient = event.patient_id.clone();
    event.height = ctx.height;
    event.time = ctx.time;
    // The index counts events of one patient; u64 cannot overflow within any ledger's life, and
    // overflow-checks stop the node rather than wrap if it ever did.
    let index = lists::push_with(st, &List::Access(&patient), |n| {
        event.index = n;
        event.encode_to_vec()
    })?;
    Ok((
        Event::new(
            "medledger.access.logged",
            vec![
                ("patient_id", event.patient_id),
                ("actor", event.actor),
                ("practitioner", event.practitioner),
                ("consent_id", event.consent_id),
                ("record_id", event.record_id),
                ("index", index.to_string()),
            ],
        ),
        index,
    ))
}

/// Records, in the patient's proven list of refused attempts (`refused/{patient}/…`,
/// [`List::Refused`]), a LogAccess that the block refused for a reason about the patient's
/// consent ([`Code::NoPermittingConsent`]), signed by a member's admin key or an active
/// practitioner (the refusal comes after [`acting_member`], [`require_patient`] and
/// [`require_readable_as`] passed, so the signer is known and active and the patient exists).
/// Called by the block for a refused tx of a known signer, after its sequence (or nonce) is
/// consumed; any other refusal, and any other signer, writes nothing here.
///
/// Bounded: at most [`MAX_REFUSED_PER_PATIENT_PER_BLOCK`] attempts per patient and
/// [`MAX_REFUSED_PER_BLOCK`] per block are recorded; one over either bound is counted in
/// `refused/{patient}/dropped` only. Returns the tx's event `medledger.access.refused`
/// (`patient_id`, `actor`, `practitioner`, `record_id`, `reason`, `recorded` `true` with the
/// attempt's `index`, or `false` for a dropped one), so the patient's live stream learns of it;
/// `None` when nothing was written.
///
/// [`MAX_REFUSED_PER_PATIENT_PER_BLOCK`]: medledger_tx::limits::MAX_REFUSED_PER_PATIENT_PER_BLOCK
/// [`MAX_REFUSED_PER_BLOCK`]: medledger_tx::limits::MAX_REFUSED_PER_BLOCK
pub fn record_refused(
    block: &mut crate::view::BlockState<'_>,
    signer: &Signer,
    m: &LogAccess,
    refusal: &TxError,
    ctx: &BlockCtx,
) -> Result<Option<Event>, crate::error::StoreError> {
    use medledger_tx::limits::{MAX_REFUSED_PER_BLOCK, MAX_REFUSED_PER_PATIENT_PER_BLOCK};
    if refusal.code != Code::NoPermittingConsent {
        return Ok(None);
    }
    let (member, practitioner) = match signer {
        Signer::Member(id) => (id.clone(), None),
        Signer::Practitioner(p) => (p.member_id.clone(), Some(p.did.clone())),
        Signer::Patient(_) | Signer::Unknown => return Ok(None),
    };
    let action = if m.action == 0 {
        Action::Read as i32
    } else {
        m.action
    };
    let req = Request {
        patient: &m.patient_id,
        member: &member,
        practitioner: practitioner.as_deref(),
        action,
        data_class: &m.data_class,
        record_id: &m.record_id,
        purpose: m.purpose,
    };
    let (reason, consent_id) = refusal_reason(block, &req, ctx)?;
    let mut attributes = vec![
        ("patient_id", m.patient_id.clone()),
        ("actor", member.clone()),
        ("practitioner", practitioner.clone().unwrap_or_default()),
        ("record_id", m.record_id.clone()),
        ("reason", reason.as_str_name().to_string()),
    ];
    let list = List::Refused(&m.patient_id);
    let in_block = refused_in_block(block, ctx.height)?;
    let of_patient = refused_of_patient_in_block(block, &list, ctx.height)?;
    if in_block >= MAX_REFUSED_PER_BLOCK || of_patient >= MAX_REFUSED_PER_PATIENT_PER_BLOCK {
        let key = keys::refused_dropped(&m.patient_id);
        // Each drop costs its signer a sequence number: u64 cannot overflow.
        let dropped = block.get_u64(&key)? + 1;
        block.put_u64(key, dropped);
        attributes.push(("recorded", "false".into()));
        return Ok(Some(Event::new("medledger.access.refused", attributes)));
    }
    let mut attempt = medledger_tx::pb::RefusedAttempt {
        patient_id: m.patient_id.clone(),
        index: 0,
        actor: member,
        practitioner: practitioner.unwrap_or_default(),
        record_id: m.record_id.clone(),
        data_class: m.data_class.clone(),
        purpose: m.purpose,
        action,
        code: refusal.code.value(),
        reason: reason as i32,
        consent_id,
        height: ctx.height,
        time: ctx.time,
    };
    let index = lists::push_with(block, &list, |n| {
        attempt.index = n;
        attempt.encode_to_vec()
    })?;
    block.put(keys::refused_block(), block_count(ctx.height, in_block + 1));
    attributes.push(("recorded", "true".into()));
    attributes.push(("index", index.to_string()));
    Ok(Some(Event::new("medledger.access.refused", attributes)))
}

/// Why no consent permitted `req`: the first consent to the member, then to the practitioner
/// (grant order), that would permit it but for its revocation or period names the reason and
/// itself; otherwise no consent at all, or none that covers it.
fn refusal_reason(
    view: &impl StateRead,
    req: &Request<'_>,
    ctx: &BlockCtx,
) -> Result<(medledger_tx::pb::RefusalReason, String), crate::error::StoreError> {
    use medledger_tx::pb::{Consent, RefusalReason};
    let mut any = false;
    for grantee in std::iter::once(req.member).chain(req.practitioner) {
        let grants = List::Grants(req.patient, grantee);
        // Bounded by MAX_CONSENTS_PER_GRANTEE, as the evaluation that refused the access.
        for n in 0..lists::len(view, &grants)? {
            let Some(id) = lists::entry(view, &grants, n)? else {
                continue;
            };
            let id = String::from_utf8_lossy(&id).into_owned();
            let Some(consent) = view.get_msg::<Consent>(&keys::consent(&id))? else {
                continue;
            };
            any = true;
            let timeless = Consent {
                revoked_height: 0,
                not_before: 0,
                not_after: 0,
                ..consent.clone()
            };
            if !super::consent::permits(&timeless, req, ctx.height, ctx.time) {
                continue;
            }
            let reason = if consent.revoked_height != 0 && ctx.height > consent.revoked_height {
                RefusalReason::ConsentRevoked
            } else if ctx.time < consent.not_before {
                RefusalReason::ConsentNotYetValid
            } else if consent.not_after != 0 && ctx.time > consent.not_after {
                RefusalReason::ConsentExpired
            } else {
                // In force and covering: the evaluation would have permitted it.
                continue;
            };
            return Ok((reason, id));
        }
    }
    let reason = if any {
        RefusalReason::NotCovered
    } else {
        RefusalReason::NoConsent
    };
    Ok((reason, String::new()))
}

/// How many refused attempts block `height` recorded so far (`refused-block`).
fn refused_in_block(view: &impl StateRead, height: u64) -> Result<u64, crate::error::StoreError> {
    count_in_block(view, &keys::refused_block(), height)
}

/// How many of the patient's refused attempts block `height` recorded so far: the newest
/// entries, at most [`medledger_tx::limits::MAX_REFUSED_PER_PATIENT_PER_BLOCK`] of them read.
fn refused_of_patient_in_block(
    view: &impl StateRead,
    list: &List<'_>,
    height: u64,
) -> Result<u64, crate::error::StoreError> {
    use medledger_tx::limits::MAX_REFUSED_PER_PATIENT_PER_BLOCK;
    let len = lists::len(view, list)?;
    let mut found = 0;
    for n in (len.saturating_sub(MAX_REFUSED_PER_PATIENT_PER_BLOCK)..len).rev() {
        let Some(bytes) = lists::entry(view, list, n)? else {
            break;
        };
        let attempt = medledger_tx::pb::RefusedAttempt::decode(bytes.as_slice()).map_err(|e| {
            crate::error::StoreError::Corrupt {
                key: String::from_utf8_lossy(&list.entry_key(n)).into_owned(),
                reason: e.to_string(),
            }
        })?;
        if attempt.height != height {
            break;
        }
        found += 1;
    }
    Ok(found)
}

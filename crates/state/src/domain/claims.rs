//! Claims, shaped like FHIR Claim / ClaimResponse, and insurers' versioned coverage policies.
//!
//! - An insurer's admin publishes a coverage policy; each publication is a new, immutable version.
//! - A provider (a hospital or lab: its admin, or one of its active clinicians or billing staff)
//!   submits a claim for a patient who has given the insurer an HPAYMT consent covering "Claim".
//!   The claim is adjudicated at once, deterministically, against the insurer's latest version
//!   of the named policy, and approved automatically when every item is covered, needs no
//!   pre-authorisation and is within its price cap; otherwise it waits (PENDING) for the insurer.
//! - The insurer (its admin, or an active CLAIMS_ADJUSTER of it) decides pending or appealed
//!   claims and marks approved ones paid; the provider may appeal a denial or partial approval once.
//! - An insurer's admin enrols a patient in one of its policies for a period (EnrolCoverage) and
//!   may end an enrolment early (EndCoverage). A claim is refused unless the patient's coverage
//!   with the insurer under the named policy includes the day of service, and unless it cites an
//!   access event that shows the provider treated the patient.
//! - Each service (code and modifier) is billed once per patient, provider and day: one
//!   `claim-service/…` key per service, so a split, a re-quantified or an overlapping
//!   resubmission is a duplicate.
//! - Free text (appeal reasons, decision notes) stays off chain; claims hold its SHA-256.
//!
//! Money is integer minor currency units. Every sum and product is checked: an amount that does
//! not fit in a u64 refuses the transaction with [`Code::AmountOverflow`], never a panic, and
//! every claim is checked against [`check_totals`] before it is written.
//!
//! The rules, with who may sign and every code, are in `docs/rules.md` ("Claims").

use std::collections::BTreeSet;

use medledger_tx::check::service_name;
use medledger_tx::keys::List;
use medledger_tx::limits::{
    MAX_COVERAGES_PER_INSURER, MAX_EVIDENCE_AGE_DAYS, MAX_PREAUTH_DAYS_AHEAD,
};
use medledger_tx::pb::{
    AccessEvent, Action, AppealClaim, Claim, ClaimStatus, Coverage, CoveragePolicy, DecideClaim,
    EndCoverage, EnrolCoverage, Member, MemberKind, PayClaim, Payee, Practitioner, PublishPolicy,
    Purpose, RecordAnchor, ReviewStatus, SubmitClaim,
};
use medledger_tx::{keys, Code, TxError};

pub use medledger_tx::rules::claims::*;

use super::consent::{evaluate, Decision, Request};
use super::members::{require_member, require_member_signer, Signer};
use super::patients::require_patient;
use super::practitioners::{acting_member, require_active, require_role};
use super::records::require_readable;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::lists;
use crate::view::{StateRead, TxState};
use prost::Message;

/// The data class a patient's HPAYMT consent must cover (or `*`) for claims to be filed.
pub const CLAIM_DATA_CLASS: &str = "Claim";

/// PublishPolicy: an insurer's admin publishes the next version of one of its policies.
pub fn publish_policy(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &PublishPolicy,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    // Policies are the insurer's contract terms: its admin key publishes them, not an adjuster.
    let insurer = require_member_signer(signer, "PublishPolicy")?;
    require_insurer(&require_member(st, &insurer)?)?;
    let latest = st.get_u64(&keys::policy_latest(&insurer, &m.policy_id))?;
    let version = latest
        .checked_add(1)
        .ok_or_else(|| TxError::new(Code::AmountOverflow, "policy version counter is exhausted"))?;
    let policy = CoveragePolicy {
        insurer: insurer.clone(),
        policy_id: m.policy_id.clone(),
        version,
        rules: m.rules.clone(),
        published_height: ctx.height,
    };
    st.put_msg(keys::policy(&insurer, &m.policy_id, version), &policy);
    st.put_u64(keys::policy_latest(&insurer, &m.policy_id), version);
    Ok(vec![Event::new(
        "medledger.claim.policy_published",
        vec![
            ("insurer", insurer),
            ("policy_id", m.policy_id.clone()),
            ("version", version.to_string()),
        ],
    )])
}

/// SubmitClaim: a provider files a claim; it is adjudicated against the insurer's latest policy.
pub fn submit(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &SubmitClaim,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (provider, practitioner) = acting_member(st, signer, "SubmitClaim", ctx)?;
    if let Some(p) = &practitioner {
        require_role(p, &PROVIDER_ROLES, "submitting a claim")?;
    }
    let grounds = require_grounds(st, m, &provider, ctx)?;
    require_care_team(st, &provider, &m.care_team, ctx)?;
    require_other_insurers(st, m)?;
    let priced = price(m, &grounds.policy)?;
    // A preauthorization bills nothing: the claim for its services is no duplicate of it.
    let fp_keys = if m.preauthorization {
        Vec::new()
    } else {
        require_new_services(st, m, &provider)?
    };
    require_unclaimed_evidence(st, m)?;
    let n = st
        .get_u64(&keys::claim_counter())?
        .checked_add(1)
        .ok_or_else(|| TxError::new(Code::AmountOverflow, "claim counter is exhausted"))?;
    let under_review = grounds.under_review;
    let claim = new_claim(claim_id(n), provider, practitioner, m, grounds, priced, ctx);
    put_claim(st, &claim)?;
    for key in fp_keys {
        st.put(key, claim.id.clone().into_bytes());
    }
    for &e in &m.evidence {
        st.put(
            keys::evidence(&m.patient_id, e),
            claim.id.clone().into_bytes(),
        );
    }
    st.put_u64(keys::claim_counter(), n);
    Ok(vec![submitted_event(claim, under_review)])
}

/// Each insurer of a claim's other coverage is a registered insurer member, else
/// [`Code::OtherInsurerUnknown`]. Its policy is the other insurer's business: the ledger records
/// it for coordination of benefits and adjudicates nothing under it.
fn require_other_insurers(view: &impl StateRead, m: &SubmitClaim) -> Result<(), ApplyError> {
    for (i, o) in m.other_coverage.iter().enumerate() {
        let member: Option<Member> = view.get_msg(&keys::member(&o.insurer))?;
        if member.is_none_or(|mb| mb.kind != MemberKind::Insurer as i32) {
            return Err(TxError::new(
                Code::OtherInsurerUnknown,
                format!(
                    "other_coverage[{i}]: {} is not a registered insurer member; see `medledger query member`",
                    o.insurer
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Each DID of a claim's care team is a registered practitioner of the provider, ACTIVE and
/// within their credential's validity now (and their member still a member), else
/// [`Code::CareTeamNotOfProvider`].
fn require_care_team(
    view: &impl StateRead,
    provider: &str,
    team: &[String],
    ctx: &BlockCtx,
) -> Result<(), ApplyError> {
    for (i, did) in team.iter().enumerate() {
        let refuse = |why: String| -> ApplyError {
            TxError::new(
                Code::CareTeamNotOfProvider,
                format!("care_team[{i}]: {did} {why}; the care team are the provider's own active practitioners"),
            )
            .into()
        };
        let Some(p) = view.get_msg::<Practitioner>(&keys::practitioner(did))? else {
            return Err(refuse("is no registered practitioner".to_string()));
        };
        if p.member_id != provider {
            return Err(refuse(format!(
                "is a practitioner of {}, not of {provider}",
                p.member_id
            )));
        }
        match require_active(view, &p, ctx) {
            Ok(()) => {}
            Err(ApplyError::Rejected(e)) => {
                return Err(refuse(format!("may not act now ({})", e.message)))
            }
            Err(other) => return Err(other),
        }
    }
    Ok(())
}

/// What a submitted claim rests on, each checked in turn.
struct Grounds {
    /// It cites a break-glass access not reviewed yet.
    under_review: bool,
    /// The patient's HPAYMT consent to the insurer.
    consent_id: String,
    /// The insurer's latest version of the named policy.
    policy: CoveragePolicy,
    /// The patient's coverage that includes the day of service.
    coverage: Coverage,
}

/// The parties, the day of service, the records, the evidence of treatment, the payment consent,
/// the policy and the coverage, in that order.
fn require_grounds(
    view: &impl StateRead,
    m: &SubmitClaim,
    provider: &str,
    ctx: &BlockCtx,
) -> Result<Grounds, ApplyError> {
    require_provider(&require_member(view, provider)?)?;
    require_insurer(&require_member(view, &m.insurer)?)?;
    require_patient(view, &m.patient_id)?;
    let latest = if m.preauthorization {
        ctx.time
            .saturating_add(MAX_PREAUTH_DAYS_AHEAD.saturating_mul(DAY))
    } else {
        ctx.time
    };
    if m.preauthorization && m.service_date > latest {
        return Err(TxError::new(
            Code::ServiceDateInFuture,
            format!(
                "service_date {} is more than {MAX_PREAUTH_DAYS_AHEAD} days after the block time {}; preauthorize services of the coming year",
                m.service_date, ctx.time
            ),
        )
        .into());
    }
    if m.service_date > latest {
        return Err(TxError::new(
            Code::ServiceDateInFuture,
            format!(
                "service_date {} is after the block time {}; claim services already rendered",
                m.service_date, ctx.time
            ),
        )
        .into());
    }
    for record_id in &m.record_ids {
        require_anchored(view, record_id, &m.patient_id)?;
    }
    // A preauthorization cites no evidence (its services are not given yet).
    let under_review = !m.preauthorization
        && require_treatment_evidence(view, &m.patient_id, provider, m.service_date, &m.evidence)?;
    let consent_id = require_payment_consent(view, &m.patient_id, &m.insurer, ctx)?;
    let policy = latest_policy(view, &m.insurer, &m.policy_id)?;
    let coverage = require_coverage(
        view,
        &m.patient_id,
        &m.insurer,
        &m.policy_id,
        m.service_date,
    )?;
    Ok(Grounds {
        under_review,
        consent_id,
        policy,
        coverage,
    })
}

/// A claim's items adjudicated against a policy, and their totals.
struct Priced {
    adjudication: Adjudication,
    totals: Totals,
}

/// Adjudicates the items; the claimed sum must be the total the claim states.
fn price(m: &SubmitClaim, policy: &CoveragePolicy) -> Result<Priced, ApplyError> {
    let adjudication = adjudicate(&policy.rules, &m.items)?;
    let totals = totals(&m.items, &adjudication.decisions)?;
    if totals.claimed != m.total {
        return Err(TxError::new(
            Code::TotalsMismatch,
            format!(
                "total is {} but the items sum to {} (minor units)",
                m.total, totals.claimed
            ),
        )
        .into());
    }
    Ok(Priced {
        adjudication,
        totals,
    })
}

/// The claim's `claim-service/…` keys, none of them written yet.
///
/// One key per service: any service of this claim already billed by this provider for this
/// patient on this day makes the claim a duplicate, whatever the split into items, the
/// quantities, the prices, the other services or the insurer.
/// Items of the same service within one claim (a split quantity) share their key.
fn require_new_services(
    view: &impl StateRead,
    m: &SubmitClaim,
    provider: &str,
) -> Result<Vec<Vec<u8>>, ApplyError> {
    let services: BTreeSet<(&str, &str)> = m
        .items
        .iter()
        .map(|i| (i.service_code.as_str(), i.modifier.as_str()))
        .collect();
    let mut fp_keys = Vec::with_capacity(services.len());
    for (code, modifier) in services {
        let key = keys::claim_fingerprint(&fingerprint(
            &m.patient_id,
            provider,
            m.service_date,
            code,
            modifier,
        ));
        if let Some(existing) = view.get(&key)? {
            return Err(TxError::new(
                Code::DuplicateClaim,
                format!(
                    "claim {} already bills {} for this patient and day; appeal it, or give a real second service its modifier (e.g. 76)",
                    String::from_utf8_lossy(&existing),
                    service_name(code, modifier)
                ),
            )
            .into());
        }
        fp_keys.push(key);
    }
    Ok(fp_keys)
}

/// Each access event backs one claim.
fn require_unclaimed_evidence(view: &impl StateRead, m: &SubmitClaim) -> Result<(), ApplyError> {
    for &n in &m.evidence {
        if let Some(other) = view.get(&keys::evidence(&m.patient_id, n))? {
            return Err(TxError::new(
                Code::EvidenceAlreadyClaimed,
                format!(
                    "access event {n} of patient {} already backs claim {}; each access backs one claim",
                    m.patient_id,
                    String::from_utf8_lossy(&other)
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// The claim as adjudicated: APPROVED by the policy, or PENDING for the insurer.
fn new_claim(
    id: String,
    provider: String,
    practitioner: Option<Practitioner>,
    m: &SubmitClaim,
    grounds: Grounds,
    priced: Priced,
    ctx: &BlockCtx,
) -> Claim {
    let Priced {
        adjudication,
        totals,
    } = priced;
    // A claim resting on a break-glass access not reviewed yet is never approved automatically:
    // it waits, undecidable, for the review (see `on_break_glass_review`).
    // Nor is a preauthorization: the insurer authorises services itself.
    let auto_approve = adjudication.auto_approve && !grounds.under_review && !m.preauthorization;
    let status = if auto_approve {
        ClaimStatus::Approved
    } else {
        ClaimStatus::Pending
    };
    Claim {
        id,
        provider: provider.clone(),
        submitted_by: practitioner.map(|p| p.did).unwrap_or(provider),
        patient_id: m.patient_id.clone(),
        insurer: m.insurer.clone(),
        policy_id: m.policy_id.clone(),
        policy_version: grounds.policy.version,
        service_date: m.service_date,
        items: m.items.clone(),
        record_ids: m.record_ids.clone(),
        decisions: adjudication.decisions,
        total_claimed: totals.claimed,
        total_approved: totals.approved,
        total_copay: totals.copay,
        total_benefit: totals.benefit,
        status: status as i32,
        submitted_height: ctx.height,
        decided_height: if auto_approve { ctx.height } else { 0 },
        decided_by: if auto_approve {
            DECIDED_BY_POLICY.to_string()
        } else {
            String::new()
        },
        consent_id: grounds.consent_id,
        evidence: m.evidence.clone(),
        coverage_index: grounds.coverage.index,
        diagnoses: m.diagnoses.clone(),
        care_team: m.care_team.clone(),
        preauthorization: m.preauthorization,
        payee: payee_of(m.payee) as i32,
        procedures: m.procedures.clone(),
        other_coverage: m.other_coverage.clone(),
        ..Default::default()
    }
}

/// The payee a claim records: UNSPECIFIED (and, defensively, a value the stateless checks
/// refuse) is the provider.
pub fn payee_of(payee: i32) -> Payee {
    match Payee::try_from(payee) {
        Ok(Payee::Subscriber) => Payee::Subscriber,
        _ => Payee::Provider,
    }
}

/// `medledger.claim.submitted`, for a claim just written.
fn submitted_event(claim: Claim, under_review: bool) -> Event {
    Event::new(
        "medledger.claim.submitted",
        vec![
            ("claim_id", claim.id),
            ("patient_id", claim.patient_id),
            ("provider", claim.provider),
            ("insurer", claim.insurer),
            ("status", status_name(claim.status).to_string()),
            ("total_claimed", claim.total_claimed.to_string()),
            ("total_approved", claim.total_approved.to_string()),
            ("awaiting_review", under_review.to_string()),
        ],
    )
}

/// DecideClaim: the insurer sets the approved amount of every item of a pending or appealed claim.
pub fn decide(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &DecideClaim,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (insurer, adjuster) = acting_insurer(st, signer, "DecideClaim", ctx)?;
    let mut claim = require_claim(st, &m.claim_id)?;
    require_party(&claim.insurer, &insurer, &claim.id, "insurer")?;
    let status = ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified);
    if !matches!(status, ClaimStatus::Pending | ClaimStatus::Appealed) {
        return Err(TxError::new(
            Code::ClaimNotDecidable,
            format!(
                "claim {} is {}; only PENDING or APPEALED claims are decided",
                claim.id,
                status_name(claim.status)
            ),
        )
        .into());
    }
    require_evidence_stands(st, &claim)?;
    if m.approved_amounts.len() != claim.items.len() {
        return Err(TxError::new(
            Code::DecisionMismatch,
            format!(
                "claim {} has {} items; the decision gives {} amounts",
                claim.id,
                claim.items.len(),
                m.approved_amounts.len()
            ),
        )
        .into());
    }
    // The co-pay of the decided amounts follows the policy version the claim was filed under,
    // not a later one: the terms in force at submission bind both parties.
    let policy: CoveragePolicy = st
        .get_msg(&keys::policy(
            &claim.insurer,
            &claim.policy_id,
            claim.policy_version,
        ))?
        .ok_or_else(|| {
            TxError::new(
                Code::UnknownPolicy,
                format!(
                    "policy {} version {} is missing",
                    claim.policy_id, claim.policy_version
                ),
            )
        })?;
    let rules = rule_index(&policy.rules);
    let decisions = claim
        .items
        .iter()
        .zip(&m.approved_amounts)
        .map(|(item, &approved)| {
            decide_item(
                rules.get(item.service_code.as_str()).copied(),
                item,
                approved,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let totals = totals(&claim.items, &decisions)?;
    claim.status = decided_status(&claim.items, &decisions)? as i32;
    claim.decisions = decisions;
    claim.total_approved = totals.approved;
    claim.total_copay = totals.copay;
    claim.total_benefit = totals.benefit;
    claim.decided_height = ctx.height;
    claim.decided_by = adjuster.map(|p| p.did).unwrap_or_else(|| insurer.clone());
    claim.decision_note_hash = m.note_hash.clone();
    put_claim(st, &claim)?;
    Ok(vec![Event::new(
        "medledger.claim.decided",
        vec![
            ("claim_id", claim.id),
            ("insurer", insurer),
            ("decided_by", claim.decided_by),
            ("status", status_name(claim.status).to_string()),
            ("total_approved", claim.total_approved.to_string()),
        ],
    )])
}

/// PayClaim: the insurer records the payment of an approved or partially approved claim.
pub fn pay(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &PayClaim,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (insurer, _) = acting_insurer(st, signer, "PayClaim", ctx)?;
    let mut claim = require_claim(st, &m.claim_id)?;
    require_party(&claim.insurer, &insurer, &claim.id, "insurer")?;
    if claim.preauthorization {
        return Err(TxError::new(
            Code::PreauthorizationNotPayable,
            format!(
                "claim {} is a preauthorization: it approves services before they are given and bills nothing; pay the claim for the services",
                claim.id
            ),
        )
        .into());
    }
    let status = ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified);
    if !matches!(
        status,
        ClaimStatus::Approved | ClaimStatus::PartiallyApproved
    ) {
        return Err(TxError::new(
            Code::ClaimNotPayable,
            format!(
                "claim {} is {}; only APPROVED or PARTIALLY_APPROVED claims are paid",
                claim.id,
                status_name(claim.status)
            ),
        )
        .into());
    }
    require_evidence_stands(st, &claim)?;
    claim.status = ClaimStatus::Paid as i32;
    claim.payment_reference = m.payment_reference.clone();
    claim.paid_height = ctx.height;
    claim.paid_to = match payee_of(claim.payee) {
        Payee::Subscriber => claim.patient_id.clone(),
        _ => claim.provider.clone(),
    };
    put_claim(st, &claim)?;
    Ok(vec![Event::new(
        "medledger.claim.paid",
        vec![
            ("claim_id", claim.id),
            ("insurer", insurer),
            ("provider", claim.provider),
            ("amount", claim.total_benefit.to_string()),
            ("payment_reference", claim.payment_reference),
            ("paid_to", claim.paid_to),
        ],
    )])
}

/// AppealClaim: the provider sends a denied or partially approved claim back to the insurer, once.
pub fn appeal(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &AppealClaim,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (provider, practitioner) = acting_member(st, signer, "AppealClaim", ctx)?;
    if let Some(p) = &practitioner {
        require_role(p, &PROVIDER_ROLES, "appealing a claim")?;
    }
    let mut claim = require_claim(st, &m.claim_id)?;
    require_party(&claim.provider, &provider, &claim.id, "provider")?;
    if claim.appealed {
        return Err(TxError::new(
            Code::AppealNotAllowed,
            format!("claim {} was appealed once already", claim.id),
        )
        .into());
    }
    let status = ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified);
    if !matches!(status, ClaimStatus::Denied | ClaimStatus::PartiallyApproved) {
        return Err(TxError::new(
            Code::AppealNotAllowed,
            format!(
                "claim {} is {}; only DENIED or PARTIALLY_APPROVED claims are appealed",
                claim.id,
                status_name(claim.status)
            ),
        )
        .into());
    }
    require_evidence_stands(st, &claim)?;
    claim.status = ClaimStatus::Appealed as i32;
    claim.appealed = true;
    claim.appeal_reason_hash = m.reason_hash.clone();
    put_claim(st, &claim)?;
    let by = practitioner
        .map(|p| p.did)
        .unwrap_or_else(|| provider.clone());
    Ok(vec![Event::new(
        "medledger.claim.appealed",
        vec![
            ("claim_id", claim.id),
            ("provider", provider),
            ("insurer", claim.insurer),
            ("by", by),
        ],
    )])
}

/// EnrolCoverage: an insurer's admin enrols a patient in one of its published policies for
/// [start, end) (end 0 = open-ended): entry `n` of `coverage/{patient}/{insurer}/…`.
pub fn enrol(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &EnrolCoverage,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    // Enrolment is the insurer's contract with the patient, like its policies: its admin key.
    let insurer = require_member_signer(signer, "EnrolCoverage")?;
    require_insurer(&require_member(st, &insurer)?)?;
    require_patient(st, &m.patient_id)?;
    latest_policy(st, &insurer, &m.policy_id)?;
    let enrolments = List::Coverage(&m.patient_id, &insurer);
    let n = lists::len(st, &enrolments)?;
    if n >= MAX_COVERAGES_PER_INSURER {
        return Err(TxError::new(
            Code::TooManyItems,
            format!(
                "patient {} has {n} enrolments with {insurer}; the limit is {MAX_COVERAGES_PER_INSURER}",
                m.patient_id
            ),
        )
        .into());
    }
    let coverage = Coverage {
        patient_id: m.patient_id.clone(),
        insurer: insurer.clone(),
        policy_id: m.policy_id.clone(),
        index: n,
        start: m.start,
        end: m.end,
        enrolled_height: ctx.height,
        ended_height: 0,
    };
    lists::push(st, &enrolments, coverage.encode_to_vec())?;
    Ok(vec![Event::new(
        "medledger.claim.coverage_enrolled",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("insurer", insurer),
            ("policy_id", m.policy_id.clone()),
            ("index", n.to_string()),
            ("start", m.start.to_string()),
            ("end", m.end.to_string()),
        ],
    )])
}

/// EndCoverage: the insurer's admin ends an enrolment at `end`, not before the block time (it
/// cannot withdraw cover of services already rendered) and only earlier than its current end.
pub fn end_coverage(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &EndCoverage,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let insurer = require_member_signer(signer, "EndCoverage")?;
    require_insurer(&require_member(st, &insurer)?)?;
    let key = keys::coverage(&m.patient_id, &insurer, m.index);
    let mut coverage: Coverage = st.get_msg(&key)?.ok_or_else(|| {
        TxError::new(
            Code::NoCoverage,
            format!(
                "{insurer} has no enrolment {} of patient {}",
                m.index, m.patient_id
            ),
        )
    })?;
    if m.end < ctx.time {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "end {} is before the block time {}: cover of services already rendered is not withdrawn",
                m.end, ctx.time
            ),
        )
        .into());
    }
    if coverage.end != 0 && m.end >= coverage.end {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "enrolment {} already ends at {}; EndCoverage only shortens (enrol again to extend)",
                m.index, coverage.end
            ),
        )
        .into());
    }
    coverage.end = m.end;
    coverage.ended_height = ctx.height;
    st.put_msg(key, &coverage);
    Ok(vec![Event::new(
        "medledger.claim.coverage_ended",
        vec![
            ("patient_id", m.patient_id.clone()),
            ("insurer", insurer),
            ("index", m.index.to_string()),
            ("end", m.end.to_string()),
        ],
    )])
}

/// The patient's enrolment with `insurer` under `policy_id` whose period [start, end) includes
/// `service_date`, the first such by index; else [`Code::NoCoverage`]. At most
/// [`MAX_COVERAGES_PER_INSURER`] reads.
fn require_coverage(
    view: &impl StateRead,
    patient: &str,
    insurer: &str,
    policy_id: &str,
    service_date: u64,
) -> Result<Coverage, ApplyError> {
    let enrolments = List::Coverage(patient, insurer);
    let n = lists::len(view, &enrolments)?.min(MAX_COVERAGES_PER_INSURER);
    for i in 0..n {
        let Some(c) = view.get_msg::<Coverage>(&enrolments.entry_key(i))? else {
            continue;
        };
        if c.policy_id == policy_id && covers(&c, service_date) {
            return Ok(c);
        }
    }
    Err(TxError::new(
        Code::NoCoverage,
        format!(
            "patient {patient} is not enrolled with {insurer} in policy {policy_id:?} on the day of service {service_date} (see `medledger query coverage {patient} {insurer}`)"
        ),
    )
    .into())
}

/// Whether an enrolment's period [start, end) includes `time` (end 0 = open-ended).
pub fn covers(c: &Coverage, time: u64) -> bool {
    c.start <= time && (c.end == 0 || time < c.end)
}

/// Every access event a claim cites must show that `provider` treated `patient`: an access of
/// this patient by the provider (its admin system or one of its practitioners), for TREAT or
/// ETREAT (care, not payment, operations or research), of a record anchored for this patient at
/// or before the access (a read of a record id the ledger never anchored shows nothing), on the
/// day of service or at most [`MAX_EVIDENCE_AGE_DAYS`] days before it; and either made under a
/// consent or a break-glass access reviewed JUSTIFIED. Anything else, an index with no event
/// included, is [`Code::NoTreatmentEvidence`]; so is citing nothing (checked statelessly too).
/// A break-glass access still PENDING review is not refused here: the answer is `true`, and the
/// claim waits for the review. At most `MAX_CLAIM_EVIDENCE` × 2 reads.
fn require_treatment_evidence(
    view: &impl StateRead,
    patient: &str,
    provider: &str,
    service_date: u64,
    evidence: &[u64],
) -> Result<bool, ApplyError> {
    let refuse = |why: String| -> ApplyError {
        TxError::new(
            Code::NoTreatmentEvidence,
            format!("{why}; a claim cites consented or justified break-glass accesses of an anchored record of the patient by this provider for treatment on or up to {MAX_EVIDENCE_AGE_DAYS} days before the day of service"),
        )
        .into()
    };
    if evidence.is_empty() {
        return Err(refuse("the claim cites no access event".into()));
    }
    let service_day = service_date / DAY;
    let earliest = service_day.saturating_sub(MAX_EVIDENCE_AGE_DAYS);
    let mut under_review = false;
    for &n in evidence {
        let Some(e) = view.get_msg::<AccessEvent>(&keys::access_event(patient, n))? else {
            return Err(refuse(format!("patient {patient} has no access event {n}")));
        };
        let treatment = e.purpose == Purpose::Treat as i32 || e.purpose == Purpose::Etreat as i32;
        let day = e.time / DAY;
        let anchor = view.get_msg::<RecordAnchor>(&keys::record(&e.record_id))?;
        let anchored = anchor
            .as_ref()
            .is_some_and(|a| a.patient_id == patient && a.anchored_height <= e.height);
        let why = if e.patient_id != patient {
            Some("is of another patient".to_string())
        } else if e.actor != provider {
            Some(format!("is an access by {}, not {provider}", e.actor))
        } else if !treatment {
            Some("is not for treatment (TREAT or ETREAT)".to_string())
        } else if !anchored {
            Some(format!(
                "reads record {:?}, which was not anchored for this patient when it was read",
                e.record_id
            ))
        } else if e.break_glass && e.review == ReviewStatus::Unjustified as i32 {
            Some("is a break-glass access reviewed UNJUSTIFIED".to_string())
        } else if !e.break_glass && e.consent_id.is_empty() {
            Some("was made under no consent".to_string())
        } else if day > service_day {
            Some("is after the day of service".to_string())
        } else if day < earliest {
            Some(format!(
                "is more than {MAX_EVIDENCE_AGE_DAYS} days before the day of service"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return Err(refuse(format!(
                "access event {n} of patient {patient} {why}"
            )));
        }
        if e.break_glass && e.review != ReviewStatus::Justified as i32 {
            under_review = true;
        }
    }
    Ok(under_review)
}

/// A claim is decided, appealed or paid only while its evidence stands: no break-glass access it
/// cites is still PENDING review ([`Code::EvidenceUnderReview`]: the claim waits) or was
/// reviewed UNJUSTIFIED ([`Code::NoTreatmentEvidence`]). At most `MAX_CLAIM_EVIDENCE` reads.
fn require_evidence_stands(view: &impl StateRead, claim: &Claim) -> Result<(), ApplyError> {
    for &n in &claim.evidence {
        let Some(e) = view.get_msg::<AccessEvent>(&keys::access_event(&claim.patient_id, n))?
        else {
            continue;
        };
        if !e.break_glass {
            continue;
        }
        if e.review == ReviewStatus::Unjustified as i32 {
            return Err(TxError::new(
                Code::NoTreatmentEvidence,
                format!(
                    "claim {} rests on break-glass access {n} of patient {}, reviewed UNJUSTIFIED: it has no evidence of treatment",
                    claim.id, claim.patient_id
                ),
            )
            .into());
        }
        if e.review != ReviewStatus::Justified as i32 {
            return Err(TxError::new(
                Code::EvidenceUnderReview,
                format!(
                    "claim {} rests on break-glass access {n} of patient {}, which no privacy officer has reviewed yet; it waits for the review",
                    claim.id, claim.patient_id
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Called by a break-glass review of access `index` of `patient`: the one claim that cites it
/// (`evidence/{patient}/{index}`), if any, follows the verdict. UNJUSTIFIED denies the claim
/// (every item approved 0 with reason `EVIDENCE_UNJUSTIFIED`, decided by
/// [`DECIDED_BY_REVIEW`]) unless it was paid already, which the event reports; JUSTIFIED leaves
/// it PENDING for the insurer to decide.
pub fn on_break_glass_review(
    st: &mut TxState<'_, '_>,
    patient: &str,
    index: u64,
    justified: bool,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let Some(id) = st.get(&keys::evidence(patient, index))? else {
        return Ok(Vec::new());
    };
    let id = String::from_utf8_lossy(&id).into_owned();
    let Some(mut claim) = st.get_msg::<Claim>(&keys::claim(&id))? else {
        return Ok(Vec::new());
    };
    if justified {
        return Ok(vec![Event::new(
            "medledger.claim.evidence_justified",
            vec![
                ("claim_id", id),
                ("patient_id", patient.to_string()),
                ("index", index.to_string()),
            ],
        )]);
    }
    let status = ClaimStatus::try_from(claim.status).unwrap_or(ClaimStatus::Unspecified);
    if status == ClaimStatus::Paid {
        return Ok(vec![Event::new(
            "medledger.claim.evidence_unjustified",
            vec![
                ("claim_id", id),
                ("patient_id", patient.to_string()),
                ("index", index.to_string()),
                ("status", status_name(claim.status).to_string()),
            ],
        )]);
    }
    claim.decisions = claim
        .items
        .iter()
        .map(|_| medledger_tx::pb::ItemDecision {
            approved_amount: 0,
            copay: 0,
            reasons: vec![REASON_EVIDENCE_UNJUSTIFIED.to_string()],
        })
        .collect();
    let totals = totals(&claim.items, &claim.decisions)?;
    claim.total_approved = totals.approved;
    claim.total_copay = totals.copay;
    claim.total_benefit = totals.benefit;
    claim.status = ClaimStatus::Denied as i32;
    claim.decided_height = ctx.height;
    claim.decided_by = DECIDED_BY_REVIEW.to_string();
    claim.decision_note_hash = Vec::new();
    put_claim(st, &claim)?;
    Ok(vec![Event::new(
        "medledger.claim.denied",
        vec![
            ("claim_id", id),
            ("patient_id", patient.to_string()),
            ("index", index.to_string()),
            ("reason", REASON_EVIDENCE_UNJUSTIFIED.to_string()),
            ("was", status_name(status as i32).to_string()),
        ],
    )])
}

fn put_claim(st: &mut TxState<'_, '_>, claim: &Claim) -> Result<(), ApplyError> {
    check_totals(claim)?;
    st.put_msg(keys::claim(&claim.id), claim);
    Ok(())
}

fn require_claim(view: &impl StateRead, id: &str) -> Result<Claim, ApplyError> {
    view.get_msg(&keys::claim(id))?.ok_or_else(|| {
        TxError::new(
            Code::UnknownClaim,
            format!("no claim {id:?}; see `medledger query claim`"),
        )
        .into()
    })
}

/// The insurer's latest version of `policy_id`, or [`Code::UnknownPolicy`].
fn latest_policy(
    view: &impl StateRead,
    insurer: &str,
    policy_id: &str,
) -> Result<CoveragePolicy, ApplyError> {
    let unknown = || -> ApplyError {
        TxError::new(
            Code::UnknownPolicy,
            format!("insurer {insurer} has published no policy {policy_id:?}"),
        )
        .into()
    };
    let version = view.get_u64(&keys::policy_latest(insurer, policy_id))?;
    if version == 0 {
        return Err(unknown());
    }
    view.get_msg(&keys::policy(insurer, policy_id, version))?
        .ok_or_else(unknown)
}

/// A record a claim refers to must be anchored, of the claim's patient, and not erased.
fn require_anchored(
    view: &impl StateRead,
    record_id: &str,
    patient: &str,
) -> Result<(), ApplyError> {
    if view.get(&keys::record(record_id))?.is_none() {
        return Err(TxError::new(
            Code::UnknownRecord,
            format!("record {record_id} is not anchored; anchor it before claiming for it"),
        )
        .into());
    }
    require_readable(view, record_id, patient)
}

/// The patient's consent that lets the insurer see the claim for payment: an active consent to
/// the insurer (the member; a consent to one of its practitioners does not count) with purpose
/// HPAYMT and data class "Claim" (or "*", minus deny exceptions), evaluated with the same
/// function as every access. Returns the consent id, stored in the claim.
fn require_payment_consent(
    view: &impl StateRead,
    patient: &str,
    insurer: &str,
    ctx: &BlockCtx,
) -> Result<String, ApplyError> {
    let req = Request {
        patient,
        member: insurer,
        practitioner: None,
        action: Action::Read as i32,
        data_class: CLAIM_DATA_CLASS,
        record_id: "",
        purpose: Purpose::Hpaymt as i32,
    };
    match evaluate(view, &req, ctx)? {
        Decision::Permit(id) => Ok(id),
        Decision::Deny(reason) => Err(TxError::new(
            Code::NoPermittingConsent,
            format!("a claim needs the patient's HPAYMT consent to {insurer} covering class {CLAIM_DATA_CLASS} or *: {reason}"),
        )
        .into()),
    }
}

/// Who acts for an insurer: its admin, or an active CLAIMS_ADJUSTER practitioner of it.
fn acting_insurer(
    view: &impl StateRead,
    signer: &Signer,
    what: &str,
    ctx: &BlockCtx,
) -> Result<(String, Option<Practitioner>), ApplyError> {
    let (member, practitioner) = acting_member(view, signer, what, ctx)?;
    if let Some(p) = &practitioner {
        require_role(p, &INSURER_ROLES, what)?;
    }
    Ok((member, practitioner))
}

fn require_party(party: &str, actor: &str, claim_id: &str, role: &str) -> Result<(), ApplyError> {
    if party != actor {
        return Err(TxError::new(
            Code::NotClaimParty,
            format!("claim {claim_id}'s {role} is {party}, not {actor}"),
        )
        .into());
    }
    Ok(())
}

fn require_insurer(member: &Member) -> Result<(), ApplyError> {
    if member.kind != MemberKind::Insurer as i32 {
        return Err(TxError::new(
            Code::NotInsurer,
            format!("member {} is not an insurer", member.id),
        )
        .into());
    }
    Ok(())
}

fn require_provider(member: &Member) -> Result<(), ApplyError> {
    if member.kind != MemberKind::Hospital as i32 && member.kind != MemberKind::Lab as i32 {
        return Err(TxError::new(
            Code::NotProvider,
            format!(
                "member {} is not a hospital or lab; only providers file claims",
                member.id
            ),
        )
        .into());
    }
    Ok(())
}

//! Consortium governance: members propose changes to the consortium and vote on them; a change
//! is made when members holding more than 2/3 of the voting power have voted yes.
//!
//! - **Who**: `SubmitProposal` and `VoteProposal` are signed by a member's admin key. The
//!   submission is the proposer's yes vote. One vote per member.
//! - **Weight**: a member's voting power is the power of its validators in the registry *now*
//!   (each tally recomputes it), so a member whose power changed, or who left, weighs what it
//!   weighs today. Members without a validator may vote; their vote weighs 0.
//! - **Decision**, on every vote (and at submission): PASSED the moment
//!   `yes * 3 > total * 2`; REJECTED the moment that is impossible even if every member that has
//!   not voted votes yes (`(total - no) * 3 <= total * 2`). A passed proposal executes in the
//!   same transaction; if its preconditions no longer hold (an earlier proposal changed the
//!   state), it is FAILED and changes nothing.
//! - **Expiry**: a proposal may pass at any height up to and including its deadline. At the end
//!   of each block, [`end_block`] marks EXPIRED every open proposal whose deadline is that block
//!   or earlier. The open proposals are listed at `proposals/open`, at most
//!   `MAX_OPEN_PROPOSALS`, so this is bounded work and needs no iteration over the tree.
//! - **Limits** (against governance jamming): a deadline at most `MAX_VOTING_PERIOD` blocks
//!   ahead (`VOTING_PERIOD_TOO_LONG`), at most `MAX_OPEN_PROPOSALS_PER_MEMBER` open proposals per
//!   proposer (`MEMBER_PROPOSAL_LIMIT`) and `MAX_OPEN_PROPOSALS` in all. A member without voting
//!   power may propose (a regulator may ask to remove a member); the per-member cap bounds it.
//! - **Effects**: AddMember writes the member, its admin key's owner and (with a validator) a
//!   registry entry; RemoveMember deletes the member, writes its tombstone
//!   (`member-tombstone/{id}` → height: the id is never reused, `MEMBER_ID_RETIRED`), retires
//!   its admin key and drops its validators; ChangePower sets its validators' power; RotateAdminKey retires the old key.
//!   GrantAuditor writes `auditor/{did}` (replacing the practitioner's earlier grant, if any):
//!   the practitioner must be registered when the proposal executes (not when it is submitted,
//!   so a grant may be proposed while the member registers its officer) and the scope member,
//!   if one is named, must be a current member at submission and at execution. RevokeAuditor
//!   deletes the grant, which must exist. Neither RemoveMember nor a practitioner's status
//!   change deletes a grant; gateways honour it only while the practitioner is active.
//!   SetCustody writes `params/custody` (threshold custody of records anchored from then on),
//!   or deletes it when both numbers are 0. SetWebRelease writes `params/web-release` (the
//!   approved release of the pages, which member gateways serve only while it is theirs); it
//!   must name a release other than the approved one (`RELEASE_UNCHANGED`) at submission and at
//!   execution.
//!   The ledger turns registry changes into CometBFT validator updates at the end of the block.
//!   No change may leave the registry without a validator or with total power 0.

use medledger_tx::checkpoint::MAX_VALIDATORS;
use medledger_tx::limits::{MAX_OPEN_PROPOSALS, MAX_OPEN_PROPOSALS_PER_MEMBER, MAX_VOTING_PERIOD};
use medledger_tx::pb::submit_proposal::Action;
use medledger_tx::pb::{
    key_owner::Owner, AddMember, Auditor, ChangePower, Custody, GrantAuditor, KeyOwner, Member,
    OpenProposals, Proposal, ProposalStatus, RemoveMember, RevokeAuditor, RotateAdminKey,
    ScheduleUpgrade, SetCustody, SetWebRelease, SubmitProposal, UpgradePlan, Validator,
    VoteProposal, WebRelease,
};
use medledger_tx::rules::{custody, web_release};
use medledger_tx::{ids, keys, Code, TxError};

use super::members::{require_member, require_member_signer, Signer};
use super::practitioners::require_practitioner;
use super::validators::{consensus_key, member_power, put_registry, registry, total_power};
use super::{BlockCtx, Event};
use crate::error::{ApplyError, StoreError};
use crate::view::{Overlay, StateRead, TxState};

/// SubmitProposal: a member proposes a change and votes yes on it.
pub fn submit(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &SubmitProposal,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let proposer = require_member_signer(signer, "SubmitProposal")?;
    let action = m
        .action
        .as_ref()
        .ok_or_else(|| TxError::new(Code::MissingMessage, "proposal names no action"))?;
    if m.deadline_height < ctx.height {
        return Err(TxError::new(
            Code::BadDeadline,
            format!(
                "deadline {} is below the current height {}",
                m.deadline_height, ctx.height
            ),
        )
        .into());
    }
    let latest = ctx.height.saturating_add(MAX_VOTING_PERIOD);
    if m.deadline_height > latest {
        return Err(TxError::new(
            Code::VotingPeriodTooLong,
            format!(
                "deadline {} is more than {MAX_VOTING_PERIOD} blocks ahead of height {}; the latest allowed is {latest}",
                m.deadline_height, ctx.height
            ),
        )
        .into());
    }
    let mut open = open_proposals(st)?;
    // At most MAX_OPEN_PROPOSALS reads: the list is bounded.
    let mut own = 0usize;
    for id in &open.ids {
        if let Some(p) = st.get_msg::<Proposal>(&keys::proposal(*id))? {
            if p.proposer == proposer && p.status == ProposalStatus::Open as i32 {
                own += 1;
            }
        }
    }
    if own >= MAX_OPEN_PROPOSALS_PER_MEMBER {
        return Err(TxError::new(
            Code::MemberProposalLimit,
            format!(
                "{proposer} already has {own} open proposals, the most one member may have; wait until they are decided or expire"
            ),
        )
        .into());
    }
    if open.ids.len() >= MAX_OPEN_PROPOSALS {
        return Err(TxError::new(
            Code::TooManyProposals,
            format!(
                "{} proposals are open, the limit; decide or let them expire first",
                open.ids.len()
            ),
        )
        .into());
    }
    // Refuse now what could not be executed now: a proposal that fails only later (because
    // another one changed the state first) ends FAILED instead.
    check_action(st, action)?;
    let id = st.get_u64(&keys::proposal_counter())? + 1;
    st.put_u64(keys::proposal_counter(), id);
    let mut p = Proposal {
        id,
        proposer: proposer.clone(),
        content: Some(m.clone()),
        status: ProposalStatus::Open as i32,
        yes_voters: vec![proposer.clone()],
        submitted_height: ctx.height,
        ..Default::default()
    };
    // Ids only grow, so pushing keeps the list increasing.
    open.ids.push(id);
    let mut events = vec![Event::new(
        "medledger.governance.submitted",
        vec![
            ("proposal_id", id.to_string()),
            ("proposer", proposer),
            ("action", action_name(action).to_string()),
            ("deadline_height", m.deadline_height.to_string()),
        ],
    )];
    events.extend(decide(st, &mut p, &mut open, ctx)?);
    st.put_msg(keys::proposal(id), &p);
    st.put_msg(keys::open_proposals(), &open);
    Ok(events)
}

/// VoteProposal: a member votes once on an open proposal before its deadline.
pub fn vote(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &VoteProposal,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let voter = require_member_signer(signer, "VoteProposal")?;
    let mut p = require_proposal(st, m.proposal_id)?;
    let deadline = p.content.as_ref().map_or(0, |c| c.deadline_height);
    match ProposalStatus::try_from(p.status) {
        Ok(ProposalStatus::Open) if ctx.height > deadline => {
            // Unreachable while end_block expires proposals; kept so that the rule does not
            // depend on that bookkeeping.
            return Err(expired(&p, deadline).into());
        }
        Ok(ProposalStatus::Open) => {}
        Ok(ProposalStatus::Expired) => return Err(expired(&p, deadline).into()),
        _ => {
            let status = ProposalStatus::try_from(p.status).map_or("UNKNOWN", |s| s.as_str_name());
            return Err(TxError::new(
                Code::ProposalClosed,
                format!(
                    "proposal {} was decided at height {}: {status}",
                    p.id, p.decided_height
                ),
            )
            .into());
        }
    }
    if p.yes_voters.contains(&voter) || p.no_voters.contains(&voter) {
        return Err(TxError::new(
            Code::AlreadyVoted,
            format!("{voter} already voted on proposal {}", p.id),
        )
        .into());
    }
    if m.yes {
        p.yes_voters.push(voter.clone());
    } else {
        p.no_voters.push(voter.clone());
    }
    let mut open = open_proposals(st)?;
    let mut events = vec![Event::new(
        "medledger.governance.voted",
        vec![
            ("proposal_id", p.id.to_string()),
            ("voter", voter),
            ("vote", if m.yes { "yes" } else { "no" }.to_string()),
        ],
    )];
    events.extend(decide(st, &mut p, &mut open, ctx)?);
    st.put_msg(keys::proposal(p.id), &p);
    st.put_msg(keys::open_proposals(), &open);
    Ok(events)
}

/// End of block: every open proposal whose deadline is this block or earlier expires. Runs on
/// the block state after the block's transactions, so a vote in the deadline block still counts.
pub fn end_block<S: StateRead + ?Sized>(
    block: &mut Overlay<'_, S>,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, StoreError> {
    let Some(open) = block.get_msg::<OpenProposals>(&keys::open_proposals())? else {
        return Ok(Vec::new());
    };
    let listed = open.ids.len();
    let mut keep = Vec::with_capacity(open.ids.len());
    let mut events = Vec::new();
    for id in open.ids {
        let Some(mut p) = block.get_msg::<Proposal>(&keys::proposal(id))? else {
            continue;
        };
        let deadline = p.content.as_ref().map_or(0, |c| c.deadline_height);
        if p.status != ProposalStatus::Open as i32 {
            continue;
        }
        if deadline > ctx.height {
            keep.push(id);
            continue;
        }
        p.status = ProposalStatus::Expired as i32;
        p.decided_height = ctx.height;
        p.outcome = format!(
            "deadline {deadline} passed with {} of {} voting power yes; more than 2/3 is needed",
            p.yes_power, p.total_power
        );
        block.put_msg(keys::proposal(id), &p);
        events.push(Event::new(
            "medledger.governance.expired",
            vec![("proposal_id", id.to_string())],
        ));
    }
    if keep.len() != listed {
        block.put_msg(keys::open_proposals(), &OpenProposals { ids: keep });
    }
    Ok(events)
}

/// The proposal with `id`, or [`Code::UnknownProposal`].
pub fn require_proposal(view: &impl StateRead, id: u64) -> Result<Proposal, ApplyError> {
    view.get_msg(&keys::proposal(id))?.ok_or_else(|| {
        TxError::new(
            Code::UnknownProposal,
            format!("no proposal {id}; see `medledger query proposal`"),
        )
        .into()
    })
}

fn open_proposals(view: &impl StateRead) -> Result<OpenProposals, StoreError> {
    Ok(view.get_msg(&keys::open_proposals())?.unwrap_or_default())
}

fn expired(p: &Proposal, deadline: u64) -> TxError {
    TxError::new(
        Code::ProposalExpired,
        format!(
            "proposal {} could pass until height {deadline}; it expired",
            p.id
        ),
    )
}

/// Tallies `p` with today's powers and decides it if the tally allows: passes (and executes),
/// or is rejected. A decided proposal leaves `open`.
fn decide(
    st: &mut TxState<'_, '_>,
    p: &mut Proposal,
    open: &mut OpenProposals,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let reg = registry(st)?;
    let weigh = |voters: &[String]| {
        voters
            .iter()
            .map(|v| member_power(&reg, v))
            .fold(0u64, u64::saturating_add)
    };
    p.yes_power = weigh(&p.yes_voters);
    p.no_power = weigh(&p.no_voters);
    p.total_power = total_power(&reg);
    // u128: exact for any u64 powers, so the 2/3 rule never depends on rounding or overflow.
    let (yes, no, total) = (
        u128::from(p.yes_power),
        u128::from(p.no_power),
        u128::from(p.total_power),
    );
    let id = p.id.to_string();
    let mut events = Vec::new();
    if yes * 3 > total * 2 {
        let action = p.content.as_ref().and_then(|c| c.action.clone());
        let outcome = match &action {
            Some(a) => execute_action(st, a, p.id, ctx),
            None => Err(TxError::new(Code::MissingMessage, "proposal names no action").into()),
        };
        match outcome {
            Ok(effects) => {
                p.status = ProposalStatus::Passed as i32;
                events.push(Event::new(
                    "medledger.governance.passed",
                    vec![
                        ("proposal_id", id),
                        ("yes_power", p.yes_power.to_string()),
                        ("total_power", p.total_power.to_string()),
                    ],
                ));
                events.extend(effects);
            }
            Err(ApplyError::Rejected(e)) => {
                p.status = ProposalStatus::Failed as i32;
                p.outcome = format!("passed but could not be executed: {e}");
                events.push(Event::new(
                    "medledger.governance.failed",
                    vec![("proposal_id", id), ("reason", e.to_string())],
                ));
            }
            Err(store) => return Err(store),
        }
    } else if (total - no.min(total)) * 3 <= total * 2 {
        p.status = ProposalStatus::Rejected as i32;
        p.outcome = format!(
            "{} of {} voting power voted no: more than 2/3 yes is no longer possible",
            p.no_power, p.total_power
        );
        events.push(Event::new(
            "medledger.governance.rejected",
            vec![("proposal_id", id), ("no_power", p.no_power.to_string())],
        ));
    } else {
        return Ok(events);
    }
    p.decided_height = ctx.height;
    open.ids.retain(|&i| i != p.id);
    Ok(events)
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::AddMember(_) => "add_member",
        Action::RemoveMember(_) => "remove_member",
        Action::ChangePower(_) => "change_power",
        Action::RotateAdminKey(_) => "rotate_admin_key",
        Action::ScheduleUpgrade(_) => "schedule_upgrade",
        Action::GrantAuditor(_) => "grant_auditor",
        Action::RevokeAuditor(_) => "revoke_auditor",
        Action::SetCustody(_) => "set_custody",
        Action::SetWebRelease(_) => "set_web_release",
    }
}

/// The preconditions of `action` against the current state. Checked at submission and again,
/// before any write, when the proposal passes.
fn check_action(view: &impl StateRead, action: &Action) -> Result<(), ApplyError> {
    match action {
        Action::AddMember(a) => check_add(view, a),
        Action::RemoveMember(r) => check_remove(view, r).map(|_| ()),
        Action::ChangePower(c) => check_change_power(view, c).map(|_| ()),
        Action::RotateAdminKey(r) => check_rotate(view, r).map(|_| ()),
        Action::ScheduleUpgrade(u) => check_upgrade(view, u),
        Action::GrantAuditor(g) => check_grant_scope(view, g),
        Action::RevokeAuditor(r) => require_grant(view, r).map(|_| ()),
        Action::SetCustody(c) => Ok(custody::check_custody(c.holders, c.threshold)?),
        Action::SetWebRelease(w) => check_web_release(view, w),
    }
}

/// A release is well formed and not the one already approved.
fn check_web_release(view: &impl StateRead, w: &SetWebRelease) -> Result<(), ApplyError> {
    web_release::check_release(&w.bundle_sha256, &w.version)?;
    let current = view.get_msg::<WebRelease>(&keys::web_release())?;
    if current.is_some_and(|c| c.bundle_sha256 == w.bundle_sha256) {
        return Err(TxError::new(
            Code::ReleaseUnchanged,
            format!(
                "release {} is already the approved one; see `medledger web check` or `medledger query key params/web-release`",
                hex::encode(&w.bundle_sha256)
            ),
        )
        .into());
    }
    Ok(())
}

/// A grant's scope is every member (empty) or a current member ([`Code::UnknownMember`]). The
/// practitioner is checked only at execution ([`execute_action`]).
fn check_grant_scope(view: &impl StateRead, g: &GrantAuditor) -> Result<(), ApplyError> {
    if !g.scope_member.is_empty() {
        require_member(view, &g.scope_member)?;
    }
    Ok(())
}

/// The grant a RevokeAuditor withdraws; [`Code::InvalidField`] when there is none.
fn require_grant(view: &impl StateRead, r: &RevokeAuditor) -> Result<Auditor, ApplyError> {
    view.get_msg::<Auditor>(&keys::auditor(&r.practitioner_did))?
        .ok_or_else(|| {
            TxError::new(
                Code::InvalidField,
                format!(
                    "{} holds no auditor grant; see `medledger query auditor DID`",
                    r.practitioner_did
                ),
            )
            .into()
        })
}

/// An upgrade goes one app version up from the chain's, and only one is pending at a time.
fn check_upgrade(view: &impl StateRead, u: &ScheduleUpgrade) -> Result<(), ApplyError> {
    let refuse = |why: String| -> ApplyError { TxError::new(Code::InvalidField, why).into() };
    let current = crate::upgrade::app_version(view)?;
    if u.app_version != current + 1 {
        return Err(refuse(format!(
            "the chain runs app version {current}; an upgrade goes to {}",
            current + 1
        )));
    }
    if let Some(p) = view.get_msg::<UpgradePlan>(&keys::upgrade_plan())? {
        return Err(refuse(format!(
            "upgrade {:?} is already scheduled for height {}",
            p.name, p.height
        )));
    }
    Ok(())
}

fn check_add(view: &impl StateRead, a: &AddMember) -> Result<(), ApplyError> {
    let tombstone = keys::member_tombstone(&a.id);
    if view.get(&tombstone)?.is_some() {
        let removed = view.get_u64(&tombstone)?;
        return Err(TxError::new(
            Code::MemberIdRetired,
            format!(
                "member id {} belonged to a member removed at height {removed}; ids are never reused, choose another",
                a.id
            ),
        )
        .into());
    }
    if view.get(&keys::member(&a.id))?.is_some() {
        return Err(TxError::new(
            Code::MemberExists,
            format!("member {} exists already", a.id),
        )
        .into());
    }
    require_free_key(view, &a.admin_key, "admin_key")?;
    if a.validator_pub_key.is_empty() {
        return Ok(());
    }
    let reg = registry(view)?;
    let address = validator_address(&a.validator_pub_key)?;
    if reg
        .iter()
        .any(|v| v.address == address || v.bls_key == a.bls_key)
    {
        return Err(TxError::new(
            Code::ValidatorExists,
            "this consensus key or BLS key is already registered to a validator",
        )
        .into());
    }
    if reg.len() >= MAX_VALIDATORS {
        return Err(TxError::new(
            Code::TooManyItems,
            format!("the registry holds {MAX_VALIDATORS} validators, the limit"),
        )
        .into());
    }
    Ok(())
}

/// The registry without `member`'s validators; refused if that empties it.
fn check_remove(
    view: &impl StateRead,
    r: &RemoveMember,
) -> Result<(Member, Vec<Validator>), ApplyError> {
    let member = require_member(view, &r.member_id)?;
    let reg = registry(view)?;
    let (theirs, rest): (Vec<Validator>, Vec<Validator>) =
        reg.into_iter().partition(|v| v.member_id == r.member_id);
    if theirs.iter().any(|v| consensus_key(v).is_none()) {
        return Err(no_key(&r.member_id));
    }
    if !theirs.is_empty() && (rest.is_empty() || total_power(&rest) == 0) {
        return Err(TxError::new(
            Code::ValidatorSetEmpty,
            format!(
                "removing {} would leave no validator with voting power; the chain would stop",
                r.member_id
            ),
        )
        .into());
    }
    Ok((member, rest))
}

/// The registry with `member`'s validators at the new power.
fn check_change_power(
    view: &impl StateRead,
    c: &ChangePower,
) -> Result<Vec<Validator>, ApplyError> {
    require_member(view, &c.member_id)?;
    let mut reg = registry(view)?;
    let mut found = false;
    for v in reg.iter_mut().filter(|v| v.member_id == c.member_id) {
        if consensus_key(v).is_none() {
            return Err(no_key(&c.member_id));
        }
        v.power = c.power;
        found = true;
    }
    if !found {
        return Err(TxError::new(
            Code::NoValidator,
            format!("member {} runs no validator", c.member_id),
        )
        .into());
    }
    // Powers are at least 1 (stateless check), so the total cannot drop to 0; checked anyway
    // because a stopped chain cannot be repaired by a vote.
    if total_power(&reg) == 0 {
        return Err(
            TxError::new(Code::ValidatorSetEmpty, "the total voting power would be 0").into(),
        );
    }
    Ok(reg)
}

fn check_rotate(view: &impl StateRead, r: &RotateAdminKey) -> Result<Member, ApplyError> {
    let member = require_member(view, &r.member_id)?;
    require_free_key(view, &r.new_admin_key, "new_admin_key")?;
    Ok(member)
}

fn no_key(member: &str) -> ApplyError {
    TxError::new(
        Code::NoValidator,
        format!("the ledger does not know the consensus key of {member}'s validator"),
    )
    .into()
}

fn require_free_key(
    view: &impl StateRead,
    key: &[u8],
    field: &str,
) -> Result<[u8; 32], ApplyError> {
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| TxError::new(Code::BadPublicKey, format!("{field} must be 32 bytes")))?;
    if view.get(&keys::key_owner(&key))?.is_some() {
        return Err(TxError::new(
            Code::KeyInUse,
            format!("{field} already belongs to a member, patient or practitioner, or was retired"),
        )
        .into());
    }
    Ok(key)
}

fn validator_address(pub_key: &[u8]) -> Result<Vec<u8>, ApplyError> {
    let key: [u8; 32] = pub_key
        .try_into()
        .map_err(|_| TxError::new(Code::BadPublicKey, "validator_pub_key must be 32 bytes"))?;
    Ok(ids::validator_address(&key).to_vec())
}

/// Makes a passed proposal's change. Every precondition is checked before the first write, so a
/// refusal leaves nothing half done.
fn execute_action(
    st: &mut TxState<'_, '_>,
    action: &Action,
    proposal_id: u64,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    match action {
        Action::AddMember(a) => add_member(st, a),
        Action::RemoveMember(r) => remove_member(st, r, ctx),
        Action::ChangePower(c) => change_power(st, c),
        Action::ScheduleUpgrade(u) => schedule_upgrade(st, u, proposal_id, ctx),
        Action::GrantAuditor(g) => grant_auditor(st, g, proposal_id, ctx),
        Action::SetCustody(c) => set_custody(st, c),
        Action::SetWebRelease(w) => set_web_release(st, w, proposal_id, ctx),
        Action::RevokeAuditor(r) => revoke_auditor(st, r),
        Action::RotateAdminKey(r) => rotate_admin_key(st, r),
    }
}

/// A passed AddMember: the member, its admin key's owner and, with a validator, its registry
/// entry.
fn add_member(st: &mut TxState<'_, '_>, a: &AddMember) -> Result<Vec<Event>, ApplyError> {
    check_add(st, a)?;
    let admin = require_free_key(st, &a.admin_key, "admin_key")?;
    let member = Member {
        id: a.id.clone(),
        name: a.name.clone(),
        kind: a.kind,
        admin_key: a.admin_key.clone(),
    };
    st.put_msg(keys::member(&a.id), &member);
    st.put_msg(
        keys::key_owner(&admin),
        &KeyOwner {
            owner: Some(Owner::MemberId(a.id.clone())),
        },
    );
    let mut attrs = vec![("member", a.id.clone())];
    if !a.validator_pub_key.is_empty() {
        add_validator(st, a, &mut attrs)?;
    }
    Ok(vec![Event::new("medledger.governance.member_added", attrs)])
}

/// The new member's validator: appended to the registry, named in the event.
fn add_validator(
    st: &mut TxState<'_, '_>,
    a: &AddMember,
    attrs: &mut Vec<(&'static str, String)>,
) -> Result<(), ApplyError> {
    let address = validator_address(&a.validator_pub_key)?;
    let mut reg = registry(st)?;
    attrs.push(("validator", hex::encode_upper(&address)));
    attrs.push(("power", a.power.to_string()));
    reg.push(Validator {
        address,
        member_id: a.id.clone(),
        bls_key: a.bls_key.clone(),
        power: a.power,
        pub_key: a.validator_pub_key.clone(),
    });
    put_registry(st, reg);
    Ok(())
}

/// A passed RemoveMember: the member goes, its tombstone stays, its key is retired, its
/// validators and open votes are dropped.
fn remove_member(
    st: &mut TxState<'_, '_>,
    r: &RemoveMember,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (member, rest) = check_remove(st, r)?;
    st.delete(keys::member(&r.member_id));
    st.put_u64(keys::member_tombstone(&r.member_id), ctx.height);
    retire_key(st, &member.admin_key, &r.member_id);
    put_registry(st, rest);
    forget_votes(st, &r.member_id)?;
    Ok(vec![Event::new(
        "medledger.governance.member_removed",
        vec![("member", r.member_id.clone())],
    )])
}

/// A passed ChangePower: the member's validators get the new power.
fn change_power(st: &mut TxState<'_, '_>, c: &ChangePower) -> Result<Vec<Event>, ApplyError> {
    let reg = check_change_power(st, c)?;
    put_registry(st, reg);
    Ok(vec![Event::new(
        "medledger.governance.power_changed",
        vec![
            ("member", c.member_id.clone()),
            ("power", c.power.to_string()),
        ],
    )])
}

/// A passed ScheduleUpgrade: writes the plan, whose height must still be after this block.
fn schedule_upgrade(
    st: &mut TxState<'_, '_>,
    u: &ScheduleUpgrade,
    proposal_id: u64,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    check_upgrade(st, u)?;
    if u.height <= ctx.height {
        return Err(TxError::new(
            Code::InvalidField,
            format!(
                "upgrade height {} is not after this block ({})",
                u.height, ctx.height
            ),
        )
        .into());
    }
    st.put_msg(
        keys::upgrade_plan(),
        &UpgradePlan {
            name: u.name.clone(),
            height: u.height,
            app_version: u.app_version,
            proposal_id,
        },
    );
    Ok(vec![Event::new(
        "medledger.governance.upgrade_scheduled",
        vec![
            ("name", u.name.clone()),
            ("height", u.height.to_string()),
            ("app_version", u.app_version.to_string()),
        ],
    )])
}

/// A passed GrantAuditor: writes `auditor/{did}`; the practitioner must be registered now.
fn grant_auditor(
    st: &mut TxState<'_, '_>,
    g: &GrantAuditor,
    proposal_id: u64,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    check_grant_scope(st, g)?;
    require_practitioner(st, &g.practitioner_did)?;
    st.put_msg(
        keys::auditor(&g.practitioner_did),
        &Auditor {
            practitioner_did: g.practitioner_did.clone(),
            scope_member: g.scope_member.clone(),
            granted_by_proposal: proposal_id,
            granted_height: ctx.height,
        },
    );
    Ok(vec![Event::new(
        "medledger.governance.auditor_granted",
        vec![
            ("did", g.practitioner_did.clone()),
            ("scope_member", g.scope_member.clone()),
        ],
    )])
}

/// A passed SetWebRelease: writes `params/web-release`, which must still change the release.
fn set_web_release(
    st: &mut TxState<'_, '_>,
    w: &SetWebRelease,
    proposal_id: u64,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    check_web_release(st, w)?;
    st.put_msg(
        keys::web_release(),
        &WebRelease {
            bundle_sha256: w.bundle_sha256.clone(),
            version: w.version.clone(),
            height: ctx.height,
            proposal_id,
        },
    );
    Ok(vec![Event::new(
        "medledger.governance.web_release_set",
        vec![
            ("bundle_sha256", hex::encode(&w.bundle_sha256)),
            ("version", w.version.clone()),
        ],
    )])
}

/// A passed RevokeAuditor: deletes the grant, which must still exist.
fn revoke_auditor(st: &mut TxState<'_, '_>, r: &RevokeAuditor) -> Result<Vec<Event>, ApplyError> {
    require_grant(st, r)?;
    st.delete(keys::auditor(&r.practitioner_did));
    Ok(vec![Event::new(
        "medledger.governance.auditor_revoked",
        vec![("did", r.practitioner_did.clone())],
    )])
}

/// A passed RotateAdminKey: the old key is retired, the new one owned by the member.
fn rotate_admin_key(
    st: &mut TxState<'_, '_>,
    r: &RotateAdminKey,
) -> Result<Vec<Event>, ApplyError> {
    let mut member = check_rotate(st, r)?;
    let new_key = require_free_key(st, &r.new_admin_key, "new_admin_key")?;
    retire_key(st, &member.admin_key, &r.member_id);
    st.put_msg(
        keys::key_owner(&new_key),
        &KeyOwner {
            owner: Some(Owner::MemberId(r.member_id.clone())),
        },
    );
    member.admin_key = new_key.to_vec();
    st.put_msg(keys::member(&r.member_id), &member);
    Ok(vec![Event::new(
        "medledger.governance.admin_rotated",
        vec![("member", r.member_id.clone())],
    )])
}

/// A passed SetCustody: writes `params/custody`, or deletes it when both are 0 (off: absent is
/// the one form of off). Only anchors made from now on follow it; anchors keep their holders.
fn set_custody(st: &mut TxState<'_, '_>, c: &SetCustody) -> Result<Vec<Event>, ApplyError> {
    custody::check_custody(c.holders, c.threshold)?;
    if c.holders == 0 {
        st.delete(keys::custody());
    } else {
        st.put_msg(
            keys::custody(),
            &Custody {
                holders: c.holders,
                threshold: c.threshold,
            },
        );
    }
    Ok(vec![Event::new(
        "medledger.governance.custody_set",
        vec![
            ("holders", c.holders.to_string()),
            ("threshold", c.threshold.to_string()),
        ],
    )])
}

/// The key keeps an owner record saying it was retired, so it can neither sign again nor be
/// registered anew by anyone (see `members::signer`).
fn retire_key(st: &mut TxState<'_, '_>, key: &[u8], member: &str) {
    if let Ok(key) = <[u8; 32]>::try_from(key) {
        st.put_msg(
            keys::key_owner(&key),
            &KeyOwner {
                owner: Some(Owner::RetiredMemberKey(member.to_string())),
            },
        );
    }
}

/// Drops a removed member's votes from the open proposals: its power is 0 from now on anyway,
/// and its votes should not stand in the record of proposals decided after it left.
fn forget_votes(st: &mut TxState<'_, '_>, member: &str) -> Result<(), ApplyError> {
    for id in open_proposals(st)?.ids {
        let Some(mut p) = st.get_msg::<Proposal>(&keys::proposal(id))? else {
            continue;
        };
        let before = p.yes_voters.len() + p.no_voters.len();
        p.yes_voters.retain(|v| v != member);
        p.no_voters.retain(|v| v != member);
        if p.yes_voters.len() + p.no_voters.len() != before {
            st.put_msg(keys::proposal(id), &p);
        }
    }
    Ok(())
}

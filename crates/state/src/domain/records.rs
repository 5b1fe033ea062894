//! Record anchors: the hash of an encrypted record held off chain by its custodian member (and,
//! under threshold custody, by the holder members the anchor lists, each keeping one share of
//! the data key), and its erasure in two steps: requested (EraseRecord: the anchor stays as
//! evidence, and every later access to the record is refused), then complete (ConfirmErasure:
//! the custodian states that its gateway destroyed the record's key; for a record with holders,
//! once enough holders confirmed that fewer than `threshold` shares can remain). Each patient's
//! anchored records are listed (`patient-records/{patient}/…`), so a verifier can prove it has
//! seen all of them.

use medledger_tx::check::RecordAction;
use medledger_tx::keys::List;
use medledger_tx::pb::{
    AnchorRecord, ConfirmErasure, Custody, EraseRecord, Practitioner, RecordAnchor,
};
use medledger_tx::rules::custody::erasure_complete;
use medledger_tx::{keys, Code, TxError};

use super::members::{require_member, Signer};
use super::patients::require_patient;
use super::practitioners::acting_for_record;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::lists;
use crate::view::{StateRead, TxState};

/// AnchorRecord: the custodian (its admin, or an active practitioner whose role may anchor)
/// anchors a record, and appends it to the patient's record list. An anchor that lists holders
/// must match `params/custody` ([`require_custody`]).
pub fn anchor(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &AnchorRecord,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (custodian, practitioner) = acting_for_record(st, signer, RecordAction::Anchor, ctx)?;
    require_patient(st, &m.patient_id)?;
    if let Some(existing) = st.get_msg::<RecordAnchor>(&keys::record(&m.record_id))? {
        return reshare(st, existing, m, &custodian, practitioner.is_some());
    }
    require_custody(st, m, &custodian)?;
    let anchor = RecordAnchor {
        record_id: m.record_id.clone(),
        patient_id: m.patient_id.clone(),
        custodian: custodian.clone(),
        resource_type: m.resource_type.clone(),
        content_hash: m.content_hash.clone(),
        size: m.size,
        key_id: m.key_id.clone(),
        anchored_by: practitioner
            .map(|p| p.did)
            .unwrap_or_else(|| custodian.clone()),
        anchored_height: ctx.height,
        holders: m.holders.clone(),
        threshold: m.threshold,
        share_commitments: m.share_commitments.clone(),
        ..Default::default()
    };
    st.put_msg(keys::record(&m.record_id), &anchor);
    // Bounded like the access history: one entry per applied AnchorRecord, each a new id.
    lists::push(
        st,
        &List::PatientRecords(&m.patient_id),
        m.record_id.clone().into_bytes(),
    )?;
    let mut attributes = vec![
        ("record_id", m.record_id.clone()),
        ("patient_id", m.patient_id.clone()),
        ("custodian", custodian),
    ];
    attributes.extend(holder_attributes(&anchor));
    Ok(vec![Event::new("medledger.record.anchored", attributes)])
}

/// An AnchorRecord for an id already anchored: refused ([`Code::RecordExists`]) unless it moves a
/// single-custodian record to threshold custody (a reshare, docs/rules.md "Threshold custody"):
/// the anchor on chain has no holders and the new one has; the record's custodian sends it with
/// its admin key ([`Code::NotCustodian`] for another member, [`Code::RoleNotPermitted`] for a
/// practitioner); the record is not erased
/// ([`Code::RecordErased`]); patient and type are unchanged ([`Code::RecordExists`]); the custody
/// matches `params/custody` ([`require_custody`]). The anchor's content hash, size, key id,
/// holders, threshold and commitments are replaced (the record was sealed again under the split
/// key); its anchored height, who anchored it and its place in the patient's list stay.
fn reshare(
    st: &mut TxState<'_, '_>,
    mut anchor: RecordAnchor,
    m: &AnchorRecord,
    custodian: &str,
    by_practitioner: bool,
) -> Result<Vec<Event>, ApplyError> {
    let id = &m.record_id;
    if !anchor.holders.is_empty() || m.holders.is_empty() {
        return Err(TxError::new(
            Code::RecordExists,
            format!("record {id} is already anchored; anchor a new version under a new id"),
        )
        .into());
    }
    if anchor.custodian != custodian {
        return Err(TxError::new(
            Code::NotCustodian,
            format!(
                "record {id} is held by {}; only its custodian moves it to threshold custody",
                anchor.custodian
            ),
        )
        .into());
    }
    if by_practitioner {
        return Err(TxError::new(
            Code::RoleNotPermitted,
            format!("only {custodian}'s admin key moves record {id} to threshold custody"),
        )
        .into());
    }
    if anchor.erased_height != 0 {
        return Err(TxError::new(
            Code::RecordErased,
            format!(
                "record {id} was erased at height {}; it is never reshared",
                anchor.erased_height
            ),
        )
        .into());
    }
    if anchor.patient_id != m.patient_id || anchor.resource_type != m.resource_type {
        return Err(TxError::new(
            Code::RecordExists,
            format!("record {id} is anchored; a reshare keeps its patient and resource type"),
        )
        .into());
    }
    require_custody(st, m, custodian)?;
    anchor.content_hash = m.content_hash.clone();
    anchor.size = m.size;
    anchor.key_id = m.key_id.clone();
    anchor.holders = m.holders.clone();
    anchor.threshold = m.threshold;
    anchor.share_commitments = m.share_commitments.clone();
    st.put_msg(keys::record(id), &anchor);
    let mut attributes = vec![
        ("record_id", id.clone()),
        ("patient_id", anchor.patient_id.clone()),
        ("custodian", anchor.custodian.clone()),
        ("reshared", "true".to_string()),
    ];
    attributes.extend(holder_attributes(&anchor));
    Ok(vec![Event::new("medledger.record.anchored", attributes)])
}

/// One `holder` attribute per holder, in order (none for a single-custodian record), so that a
/// holder's gateway finds the records it holds (`medledger.record.anchored.holder='M'`) and
/// their erasures (`medledger.record.erased.holder='M'`).
fn holder_attributes(anchor: &RecordAnchor) -> Vec<(&'static str, String)> {
    anchor
        .holders
        .iter()
        .map(|h| ("holder", h.clone()))
        .collect()
}

/// The threshold custody of an anchor, against the state (its shape was checked statelessly:
/// at most MAX_HOLDERS distinct ids, threshold commitments of 32 bytes). No holders: a
/// single-custodian record, always accepted. Otherwise, in this order: `params/custody` is on
/// and has exactly this many holders and this threshold ([`Code::CustodyMismatch`]); the first
/// holder is the custodian ([`Code::CustodianNotFirst`]); each holder, in order, is a member
/// ([`Code::UnknownMember`]) with a registered gateway ([`Code::HolderWithoutGateway`]).
fn require_custody(
    view: &impl StateRead,
    m: &AnchorRecord,
    custodian: &str,
) -> Result<(), ApplyError> {
    if m.holders.is_empty() {
        return Ok(());
    }
    let Some(params) = view.get_msg::<Custody>(&keys::custody())? else {
        return Err(TxError::new(
            Code::CustodyMismatch,
            "threshold custody is off (no params/custody): anchor the record without holders",
        )
        .into());
    };
    let count = u32::try_from(m.holders.len()).ok();
    if count != Some(params.holders) || m.threshold != params.threshold {
        return Err(TxError::new(
            Code::CustodyMismatch,
            format!(
                "the anchor lists {} holders with threshold {}; the consortium's custody \
                 (params/custody) is {} holders with threshold {}",
                m.holders.len(),
                m.threshold,
                params.holders,
                params.threshold
            ),
        )
        .into());
    }
    if m.holders.first().map(String::as_str) != Some(custodian) {
        return Err(TxError::new(
            Code::CustodianNotFirst,
            format!("the first holder must be the custodian {custodian}, which signs the anchor"),
        )
        .into());
    }
    // At most MAX_HOLDERS members and gateways read.
    for holder in &m.holders {
        require_member(view, holder)?;
        if view.get(&keys::gateway(holder))?.is_none() {
            return Err(TxError::new(
                Code::HolderWithoutGateway,
                format!(
                    "holder {holder} has registered no gateway (SetGateway), so it has no box \
                     key to hold a share under"
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// EraseRecord: the patient, or the custodian on the patient's request (its admin, or an active
/// practitioner whose role may erase), requests a record's erasure. The erasure is complete once
/// the custodian confirms it ([`confirm_erasure`]).
pub fn erase(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &EraseRecord,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let mut anchor: RecordAnchor = st
        .get_msg(&keys::record(&m.record_id))?
        .ok_or_else(|| TxError::new(Code::UnknownRecord, format!("no record {}", m.record_id)))?;
    let by = match &signer {
        Signer::Patient(id) if *id == anchor.patient_id => id.clone(),
        Signer::Member(_) | Signer::Practitioner(_) => {
            let (member, practitioner) = acting_for_record(st, signer, RecordAction::Erase, ctx)?;
            if member != anchor.custodian {
                return Err(TxError::new(
                    Code::NotCustodian,
                    format!("record {} is held by {}", m.record_id, anchor.custodian),
                )
                .into());
            }
            practitioner.map(|p| p.did).unwrap_or(member)
        }
        _ => {
            return Err(TxError::new(
                Code::NotCustodian,
                format!(
                    "only the record's patient or its custodian {} may erase it",
                    anchor.custodian
                ),
            )
            .into())
        }
    };
    if anchor.erased_height != 0 {
        return Err(TxError::new(
            Code::RecordErased,
            format!(
                "record {} was erased at height {}",
                m.record_id, anchor.erased_height
            ),
        )
        .into());
    }
    anchor.erased_height = ctx.height;
    anchor.erased_by = by.clone();
    anchor.erase_reason_hash = m.reason_hash.clone();
    st.put_msg(keys::record(&m.record_id), &anchor);
    let mut attributes = vec![
        ("record_id", m.record_id.clone()),
        ("patient_id", anchor.patient_id.clone()),
        ("by", by),
        // So a custodian's gateway finds the erasures of its own records
        // (`medledger.record.erased.custodian='M'`) and destroys their keys.
        ("custodian", anchor.custodian.clone()),
    ];
    // And every holder's gateway its shares' (`medledger.record.erased.holder='M'`).
    attributes.extend(holder_attributes(&anchor));
    Ok(vec![Event::new("medledger.record.erased", attributes)])
}

/// ConfirmErasure: the signer's gateway destroyed the key of an erased record (its share of it,
/// for a holder). A single-custodian record: the custodian (its admin key, as its gateway signs,
/// or an active practitioner whose role may erase) confirms once, which completes the erasure
/// ([`confirm_single`]). A record with holders: each holder confirms once ([`confirm_holder`]).
pub fn confirm_erasure(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &ConfirmErasure,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let anchor: RecordAnchor = st
        .get_msg(&keys::record(&m.record_id))?
        .ok_or_else(|| TxError::new(Code::UnknownRecord, format!("no record {}", m.record_id)))?;
    let (member, practitioner) = acting_for_record(st, signer, RecordAction::ConfirmErasure, ctx)?;
    if anchor.holders.is_empty() {
        confirm_single(st, anchor, member, practitioner, ctx)
    } else {
        confirm_holder(st, anchor, member, practitioner, ctx)
    }
}

/// The custodian's confirmation of a single-custodian record: once, after the erasure was
/// requested, and it completes the erasure.
fn confirm_single(
    st: &mut TxState<'_, '_>,
    mut anchor: RecordAnchor,
    member: String,
    practitioner: Option<Practitioner>,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let record_id = anchor.record_id.clone();
    if member != anchor.custodian {
        return Err(TxError::new(
            Code::NotCustodian,
            format!(
                "record {record_id} is held by {}; only its custodian confirms that its key is destroyed",
                anchor.custodian
            ),
        )
        .into());
    }
    require_erasure_requested(&anchor)?;
    if anchor.erasure_confirmed_height != 0 {
        return Err(TxError::new(
            Code::ErasureAlreadyConfirmed,
            format!(
                "the erasure of record {record_id} was confirmed at height {} by {}",
                anchor.erasure_confirmed_height, anchor.erasure_confirmed_by
            ),
        )
        .into());
    }
    let by = practitioner.map(|p| p.did).unwrap_or(member);
    anchor.erasure_confirmed_height = ctx.height;
    anchor.erasure_confirmed_by = by.clone();
    st.put_msg(keys::record(&record_id), &anchor);
    Ok(vec![Event::new(
        "medledger.record.erasure_confirmed",
        vec![
            ("record_id", record_id),
            ("patient_id", anchor.patient_id),
            ("custodian", anchor.custodian),
            ("by", by),
        ],
    )])
}

/// A holder's confirmation that it destroyed its share of a record with holders. The custodian
/// confirms as for a single-custodian record (admin key or a practitioner whose role may erase);
/// any other holder with its admin key, which its gateway signs with. Each holder once, in any
/// order, after the erasure was requested, also after the erasure is complete (the anchor then
/// shows every share destroyed). The confirmation that makes `holders - threshold + 1` holders
/// confirmed completes the erasure: `erasure_confirmed_height` and `erasure_confirmed_by`.
fn confirm_holder(
    st: &mut TxState<'_, '_>,
    mut anchor: RecordAnchor,
    member: String,
    practitioner: Option<Practitioner>,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let record_id = anchor.record_id.clone();
    if !anchor.holders.contains(&member) {
        return Err(TxError::new(
            Code::NotHolder,
            format!(
                "record {record_id} is held by {}; {member} holds no share of it",
                anchor.holders.join(", ")
            ),
        )
        .into());
    }
    if let Some(p) = practitioner.as_ref().filter(|_| member != anchor.custodian) {
        return Err(TxError::new(
            Code::NotAuthorized,
            format!(
                "{} is a practitioner of {member}, which holds a share of record {record_id} \
                 but is not its custodian: that holder confirms with its admin key (its gateway)",
                p.did
            ),
        )
        .into());
    }
    require_erasure_requested(&anchor)?;
    if anchor.erasure_confirmations.contains(&member) {
        return Err(TxError::new(
            Code::HolderAlreadyConfirmed,
            format!("{member} already confirmed that its share of record {record_id} is destroyed"),
        )
        .into());
    }
    anchor.erasure_confirmations.push(member.clone());
    let by = practitioner
        .map(|p| p.did)
        .unwrap_or_else(|| member.clone());
    if anchor.erasure_confirmed_height == 0 && erasure_complete(&anchor) {
        anchor.erasure_confirmed_height = ctx.height;
        anchor.erasure_confirmed_by = by.clone();
    }
    let complete = anchor.erasure_confirmed_height != 0;
    st.put_msg(keys::record(&record_id), &anchor);
    Ok(vec![Event::new(
        "medledger.record.erasure_confirmed",
        vec![
            ("record_id", record_id),
            ("patient_id", anchor.patient_id),
            ("custodian", anchor.custodian),
            ("by", by),
            ("holder", member),
            ("complete", complete.to_string()),
        ],
    )])
}

/// [`Code::ErasureNotRequested`] unless the record is erased.
fn require_erasure_requested(anchor: &RecordAnchor) -> Result<(), ApplyError> {
    if anchor.erased_height == 0 {
        return Err(TxError::new(
            Code::ErasureNotRequested,
            format!(
                "record {} is not erased; its erasure is requested by EraseRecord first",
                anchor.record_id
            ),
        )
        .into());
    }
    Ok(())
}

/// An access to `record_id` of `patient` is allowed by the record's anchor: absent (records need
/// not be anchored), or of this patient and not erased.
pub fn require_readable(
    view: &impl StateRead,
    record_id: &str,
    patient: &str,
) -> Result<(), ApplyError> {
    require_readable_as(view, record_id, patient, None)
}

/// [`require_readable`], and when `data_class` is given, an anchored record must be of exactly
/// that resource type. For an anchored record the class is a fact of the ledger, never the
/// reader's claim: a consent for Observations does not open a PsychiatricNote declared as an
/// Observation. (An unanchored record's class is the reader's word, recorded as such.)
pub fn require_readable_as(
    view: &impl StateRead,
    record_id: &str,
    patient: &str,
    data_class: Option<&str>,
) -> Result<(), ApplyError> {
    let Some(anchor) = view.get_msg::<RecordAnchor>(&keys::record(record_id))? else {
        return Ok(());
    };
    if anchor.patient_id != patient {
        return Err(TxError::new(
            Code::RecordOfAnotherPatient,
            format!("record {record_id} belongs to another patient"),
        )
        .into());
    }
    if anchor.erased_height != 0 {
        return Err(TxError::new(
            Code::RecordErased,
            format!(
                "record {record_id} was erased at height {}",
                anchor.erased_height
            ),
        )
        .into());
    }
    let Some(data_class) = data_class else {
        return Ok(());
    };
    if anchor.resource_type != data_class {
        return Err(TxError::new(
            Code::ClassMismatch,
            format!(
                "record {record_id} is a {} (its anchor says so); it cannot be accessed as {data_class:?}",
                anchor.resource_type
            ),
        )
        .into());
    }
    Ok(())
}

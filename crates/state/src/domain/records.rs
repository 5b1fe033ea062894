//! Record anchors: the hash of an encrypted record held off chain by its custodian member, and
//! its erasure in two steps: requested (EraseRecord: the anchor stays as evidence, and every
//! later access to the record is refused), then complete (ConfirmErasure: the custodian states
//! that its gateway destroyed the record's key). Each patient's anchored records are listed
//! (`patient-records/{patient}/…`), so a verifier can prove it has seen all of them.

use medledger_tx::check::RecordAction;
use medledger_tx::keys::List;
use medledger_tx::pb::{AnchorRecord, ConfirmErasure, EraseRecord, RecordAnchor};
use medledger_tx::{keys, Code, TxError};

use super::members::Signer;
use super::patients::require_patient;
use super::practitioners::acting_for_record;
use super::{BlockCtx, Event};
use crate::error::ApplyError;
use crate::lists;
use crate::view::{StateRead, TxState};

/// AnchorRecord: the custodian (its admin, or an active practitioner whose role may anchor)
/// anchors a record, and appends it to the patient's record list.
pub fn anchor(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &AnchorRecord,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let (custodian, practitioner) = acting_for_record(st, signer, RecordAction::Anchor, ctx)?;
    require_patient(st, &m.patient_id)?;
    if st.get(&keys::record(&m.record_id))?.is_some() {
        return Err(TxError::new(
            Code::RecordExists,
            format!(
                "record {} is already anchored; anchor a new version under a new id",
                m.record_id
            ),
        )
        .into());
    }
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
        ..Default::default()
    };
    st.put_msg(keys::record(&m.record_id), &anchor);
    // Bounded like the access history: one entry per applied AnchorRecord, each a new id.
    lists::push(
        st,
        &List::PatientRecords(&m.patient_id),
        m.record_id.clone().into_bytes(),
    )?;
    Ok(vec![Event::new(
        "medledger.record.anchored",
        vec![
            ("record_id", m.record_id.clone()),
            ("patient_id", m.patient_id.clone()),
            ("custodian", custodian),
        ],
    )])
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
    Ok(vec![Event::new(
        "medledger.record.erased",
        vec![
            ("record_id", m.record_id.clone()),
            ("patient_id", anchor.patient_id),
            ("by", by),
            // So a custodian's gateway finds the erasures of its own records
            // (`medledger.record.erased.custodian='M'`) and destroys their keys.
            ("custodian", anchor.custodian),
        ],
    )])
}

/// ConfirmErasure: the custodian (its admin key, as its gateway signs, or an active
/// practitioner whose role may erase) states that the key of an erased record was destroyed.
/// Once per record, and only after the erasure was requested.
pub fn confirm_erasure(
    st: &mut TxState<'_, '_>,
    signer: &Signer,
    m: &ConfirmErasure,
    ctx: &BlockCtx,
) -> Result<Vec<Event>, ApplyError> {
    let mut anchor: RecordAnchor = st
        .get_msg(&keys::record(&m.record_id))?
        .ok_or_else(|| TxError::new(Code::UnknownRecord, format!("no record {}", m.record_id)))?;
    let (member, practitioner) = acting_for_record(st, signer, RecordAction::ConfirmErasure, ctx)?;
    if member != anchor.custodian {
        return Err(TxError::new(
            Code::NotCustodian,
            format!(
                "record {} is held by {}; only its custodian confirms that its key is destroyed",
                m.record_id, anchor.custodian
            ),
        )
        .into());
    }
    if anchor.erased_height == 0 {
        return Err(TxError::new(
            Code::ErasureNotRequested,
            format!(
                "record {} is not erased; its erasure is requested by EraseRecord first",
                m.record_id
            ),
        )
        .into());
    }
    if anchor.erasure_confirmed_height != 0 {
        return Err(TxError::new(
            Code::ErasureAlreadyConfirmed,
            format!(
                "the erasure of record {} was confirmed at height {} by {}",
                m.record_id, anchor.erasure_confirmed_height, anchor.erasure_confirmed_by
            ),
        )
        .into());
    }
    let by = practitioner.map(|p| p.did).unwrap_or(member);
    anchor.erasure_confirmed_height = ctx.height;
    anchor.erasure_confirmed_by = by.clone();
    st.put_msg(keys::record(&m.record_id), &anchor);
    Ok(vec![Event::new(
        "medledger.record.erasure_confirmed",
        vec![
            ("record_id", m.record_id.clone()),
            ("patient_id", anchor.patient_id),
            ("custodian", anchor.custodian),
            ("by", by),
        ],
    )])
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

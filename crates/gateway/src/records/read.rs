//! A consented read: the reader's own signed `LogAccess` is committed before anything is
//! released.

use axum::http::{StatusCode, Uri};
use base64ct::{Base64, Encoding};
use medledger_tx::pb::{self, tx_body::Msg, Action, Purpose, RecordAnchor};
use medledger_tx::{decode_tx, keys};
use medledger_vault::kek::{self, WrappedKey};
use medledger_vault::record::{self, RecordMeta};
use medledger_vault::share;

use super::*;
use crate::api::{GetRecord, GetRecordAnswer};
use crate::auth::{Requester, Subject};
use crate::error::ApiError;
use crate::state::State;
use crate::store::{RecordMetaFile, RecordState};

impl State {
    /// The local record and its anchor, or 404 / 410.
    pub(crate) async fn readable(
        &self,
        id: &str,
    ) -> Result<(RecordMetaFile, RecordAnchor), ApiError> {
        let meta = self
            .store
            .meta(id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no record {id}")))?;
        if let RecordState::Erased { height } = meta.state {
            return Err(ApiError::gone(id, height));
        }
        let anchor: RecordAnchor =
            self.node
                .read_msg(&keys::record(id))
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        format!("record {id} is not anchored on the ledger"),
                    )
                })?;
        if anchor.erased_height != 0 {
            return Err(ApiError::gone(id, anchor.erased_height));
        }
        if anchor.custodian != self.member_id
            || hex::encode(&anchor.content_hash) != meta.content_hash
            || anchor.key_id != meta.key_id
            || anchor.resource_type != meta.resource_type
            || anchor.patient_id != meta.patient_id
        {
            return Err(ApiError::internal(format!(
                "record {id}: the anchor on chain does not match the stored record"
            )));
        }
        Ok((meta, anchor))
    }

    pub(crate) async fn get(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        body: &[u8],
    ) -> Result<(GetRecordAnswer, std::time::Duration), ApiError> {
        let req: GetRecord = json(body)?;
        let r = self
            .consented_release(id, uri, who, &req.log_access_tx_base64, None)
            .await?;
        let shared = share::share_data_key(
            &r.reader_box,
            id,
            &r.reader_member,
            &r.data_key,
            &mut rand_v010::rng(),
        )
        .map_err(ApiError::internal)?;
        Ok((
            GetRecordAnswer {
                record_id: id.to_string(),
                patient_id: r.meta.patient_id,
                resource_type: r.meta.resource_type,
                version: r.meta.version,
                sealed_base64: Base64::encode_string(&r.sealed_bytes),
                shared_key_base64: Base64::encode_string(&shared.encode()),
                reader_member: r.reader_member,
                access_height: r.access_height,
                access_index: r.access_index,
            },
            r.ledger_wait,
        ))
    }

    /// A FHIR read: the consented release, opened here.
    pub(crate) async fn release(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        log_access_tx_base64: &str,
        resource_type: Option<&str>,
    ) -> Result<Opened, ApiError> {
        let r = self
            .consented_release(id, uri, who, log_access_tx_base64, resource_type)
            .await?;
        let sealed = record::SealedRecord::decode(&r.sealed_bytes).map_err(ApiError::internal)?;
        let plaintext = record::open(
            &RecordMeta {
                record_id: id,
                patient_id: &r.meta.patient_id,
                resource_type: &r.meta.resource_type,
                version: r.meta.version,
            },
            &sealed,
            &r.data_key,
        )
        .map_err(ApiError::internal)?;
        Ok(Opened {
            plaintext,
            access_height: r.access_height,
            access_index: r.access_index,
            ledger_wait: r.ledger_wait,
        })
    }

    /// Authenticates a read, checks the reader's LogAccess against the record and the request,
    /// submits it and, once the ledger committed it with code 0, unwraps the data key.
    pub(crate) async fn consented_release(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        log_access_tx_base64: &str,
        resource_type: Option<&str>,
    ) -> Result<Released, ApiError> {
        let key = who.key;
        let purpose = purpose_of(uri)?;
        let (meta, anchor) = self.readable(id).await?;
        let bad = |msg: String| ApiError::new(StatusCode::BAD_REQUEST, msg);
        if let Some(t) = resource_type {
            if t != anchor.resource_type {
                return Err(bad(format!(
                    "record {id} is a {}, not a {t}",
                    anchor.resource_type
                )));
            }
        }
        let tx_bytes = Base64::decode_vec(log_access_tx_base64)
            .map_err(|e| bad(format!("log_access_tx_base64: {e}")))?;
        let tx = decode_tx(&tx_bytes)
            .and_then(|t| t.verify())
            .map_err(|e| bad(format!("log access tx: {e}")))?;
        if tx.signer() != &key {
            return Err(bad(
                "the LogAccess tx must be signed by the key that signs the request".into(),
            ));
        }
        let body_ok = tx.body();
        if body_ok.chain_id != self.node.chain_id() {
            return Err(bad(format!(
                "the LogAccess tx is for chain {:?}",
                body_ok.chain_id
            )));
        }
        // A consented read (LogAccess, READ, the request's purpose) or a break-glass
        // (LogBreakGlass, purpose ETREAT): the same release, and the ledger opens the review.
        let (patient_id, record_id, data_class, purpose_ok, action_ok) = match &body_ok.msg {
            Some(Msg::LogAccess(la)) => (
                &la.patient_id,
                &la.record_id,
                &la.data_class,
                la.purpose == purpose as i32,
                la.action == 0 || la.action == Action::Read as i32,
            ),
            Some(Msg::LogBreakGlass(bg)) => (
                &bg.patient_id,
                &bg.record_id,
                &bg.data_class,
                purpose == Purpose::Etreat,
                true,
            ),
            _ => {
                return Err(bad(
                    "the tx must carry a LogAccess or a LogBreakGlass".into()
                ))
            }
        };
        let mut wrong = Vec::new();
        if *patient_id != meta.patient_id {
            wrong.push("patient_id");
        }
        if record_id != id {
            wrong.push("record_id");
        }
        if *data_class != anchor.resource_type {
            wrong.push("data_class (must be the anchor's resource type)");
        }
        if !purpose_ok {
            wrong.push("purpose (the request's; ETREAT for a break-glass)");
        }
        if !action_ok {
            wrong.push("action (must be READ)");
        }
        if !wrong.is_empty() {
            return Err(bad(format!(
                "the access tx does not match this read: {}",
                wrong.join(", ")
            )));
        }
        let reader_member = match &who.subject {
            Subject::Member(m) => m.clone(),
            Subject::Practitioner { member, .. } => member.clone(),
            Subject::Patient(_) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "records are released to members' admins and practitioners",
                ))
            }
        };
        let gateway: pb::Gateway = self
            .node
            .read_msg(&keys::gateway(&reader_member))
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!("member {reader_member} has registered no box key (SetGateway)"),
                )
            })?;
        let reader_box: [u8; 32] = gateway
            .box_public_key
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::internal("box key on chain is not 32 bytes"))?;
        let wrapped_bytes = self
            .store
            .wrapped_key(id)?
            .ok_or_else(|| ApiError::gone(id, 0))?;
        let wrapped = WrappedKey::decode(&wrapped_bytes).map_err(ApiError::internal)?;
        let sealed_bytes = self.store.sealed(id)?;
        // The access must be committed with code 0 before anything is released.
        let waited = std::time::Instant::now();
        let committed = self.node.submit(tx_bytes).await?;
        let ledger_wait = waited.elapsed();
        if committed.code != 0 {
            return Err(ApiError::ledger(&committed));
        }
        // The tx index's answer is only a hint of which event to read: the release rests on the
        // access event itself, proven, fresh and not used for an earlier release (a replayed old
        // tx gets the old tx's result from the index, never a new event).
        let access_index = committed
            .event_attribute("medledger.access.logged", "index")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| ApiError::internal("the committed access names no event index"))?;
        self.proven_fresh_access(who, &meta.patient_id, access_index, id, &anchor, purpose)
            .await?;
        let data_key = kek::unwrap(&self.kek, id, &wrapped).map_err(ApiError::internal)?;
        Ok(Released {
            meta,
            sealed_bytes,
            data_key,
            reader_member,
            reader_box,
            access_height: committed.height,
            access_index,
            ledger_wait,
        })
    }

    /// The access event `index` of `patient`, read with a proof, is this read by `who`,
    /// committed within [`FRESH_ACCESS_SECS`] of now, and was never used for a release here.
    pub(crate) async fn proven_fresh_access(
        &self,
        who: &Requester,
        patient: &str,
        index: u64,
        id: &str,
        anchor: &RecordAnchor,
        purpose: Purpose,
    ) -> Result<(), ApiError> {
        let refuse = |msg: String| ApiError::new(StatusCode::CONFLICT, msg);
        let event: pb::AccessEvent = self
            .node
            .read_msg_newest(&keys::access_event(patient, index))
            .await?
            .ok_or_else(|| {
                refuse(format!(
                    "access event {index} of {patient} is not on the ledger (proven absent)"
                ))
            })?;
        let (member, practitioner) = match &who.subject {
            Subject::Member(m) => (m.as_str(), ""),
            Subject::Practitioner { member, did, .. } => (member.as_str(), did.as_str()),
            Subject::Patient(_) => {
                return Err(refuse("patients' reads are not released here".into()))
            }
        };
        let expected_purpose = if event.break_glass {
            Purpose::Etreat
        } else {
            purpose
        };
        if event.record_id != id
            || event.data_class != anchor.resource_type
            || event.actor != member
            || event.practitioner != practitioner
            || event.purpose != expected_purpose as i32
        {
            return Err(refuse(format!(
                "access event {index} of {patient} is not this read by this requester"
            )));
        }
        let now = crate::client::now_secs();
        if now.saturating_sub(event.time) > FRESH_ACCESS_SECS {
            return Err(refuse(format!(
                "access event {index} of {patient} was committed at block time {}, more than \
                 {FRESH_ACCESS_SECS} s ago: log a new access (one committed access releases one \
                 fresh read)",
                event.time
            )));
        }
        if !self.store.claim_release(patient, index)? {
            return Err(refuse(format!(
                "access event {index} of {patient} already released a read: log a new access"
            )));
        }
        Ok(())
    }
}

//! A consented read: the reader's own signed `LogAccess` is committed before anything is
//! released.

use axum::http::{HeaderMap, StatusCode, Uri};
use base64ct::{Base64, Encoding};
use medledger_tx::pb::{self, tx_body::Msg, Action, Purpose, RecordAnchor};
use medledger_tx::{decode_tx, keys, Code, VerifiedTx};
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
        // Held here as the custodian of a whole key, or as the holder the anchor names.
        let place_ok = match &meta.custody {
            None => anchor.custodian == self.member_id && anchor.holders.is_empty(),
            Some(c) => {
                anchor.custodian == c.custodian
                    && super::custody::holder_index(&anchor, &self.member_id) == Some(c.index)
            }
        };
        if !place_ok
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
        headers: &HeaderMap,
        who: &Requester,
        body: &[u8],
    ) -> Result<(GetRecordAnswer, std::time::Duration), ApiError> {
        let req = get_request(headers, body)?;
        // A holder asked for its share of an access another holder committed: the reader has the
        // sealed record from that holder, so only the share goes back (not a second copy).
        let share_only = req.log_access_tx_base64.is_empty() && req.access_index.is_some();
        let r = self
            .consented_release(
                id,
                uri,
                who,
                &req.log_access_tx_base64,
                req.access_index,
                None,
            )
            .await?;
        // A whole key sealed to the reader, or (threshold custody) this holder's share.
        let (shared_key_base64, sealed_share_base64) = match &r.data_key {
            Some(key) => {
                let shared = share::share_data_key(
                    &r.reader_box,
                    id,
                    &r.reader_member,
                    key,
                    &mut rand_v010::rng(),
                )
                .map_err(ApiError::internal)?;
                (Base64::encode_string(&shared.encode()), None)
            }
            None => (
                String::new(),
                Some(self.seal_own_share(&r.meta, &r.reader_member, &r.reader_box)?),
            ),
        };
        Ok((
            GetRecordAnswer {
                record_id: id.to_string(),
                patient_id: r.meta.patient_id,
                resource_type: r.meta.resource_type,
                version: r.meta.version,
                sealed_base64: if share_only {
                    String::new()
                } else {
                    Base64::encode_string(&r.sealed_bytes)
                },
                shared_key_base64,
                sealed_share_base64,
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
        if let Subject::Patient(_) = who.subject {
            // The gateway would open the record itself: a patient's own copy is opened in the
            // patient's hands, from the holders' shares sealed to the patient's box key.
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a patient reads their own records with GET /records/{id}?purpose=PATRQT, which \
                 releases the key shares sealed to the patient's registered box key",
            ));
        }
        let r = self
            .consented_release(id, uri, who, log_access_tx_base64, None, resource_type)
            .await?;
        let data_key = match r.data_key {
            Some(k) => k,
            None => {
                self.gather_key(&r.meta, &r.anchor, r.access_index, r.purpose)
                    .await?
            }
        };
        let sealed = record::SealedRecord::decode(&r.sealed_bytes).map_err(ApiError::internal)?;
        let plaintext = record::open(
            &RecordMeta {
                record_id: id,
                patient_id: &r.meta.patient_id,
                resource_type: &r.meta.resource_type,
                version: r.meta.version,
            },
            &sealed,
            &data_key,
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
    /// submits it and, once the ledger committed it with code 0, unwraps the data key (or, for a
    /// threshold record, readies this holder's share). With `access_index` instead of a tx, the
    /// read rests on an access the reader already committed (at another holder).
    pub(crate) async fn consented_release(
        &self,
        id: &str,
        uri: &Uri,
        who: &Requester,
        log_access_tx_base64: &str,
        access_index: Option<u64>,
        resource_type: Option<&str>,
    ) -> Result<Released, ApiError> {
        let purpose = purpose_of(uri)?;
        let (meta, anchor) = self.readable(id).await?;
        if let (true, Some(index)) = (log_access_tx_base64.is_empty(), access_index) {
            return self
                .release_committed(who, meta, anchor, index, purpose)
                .await;
        }
        if let Some(t) = resource_type {
            if t != anchor.resource_type {
                return Err(bad_request(format!(
                    "record {id} is a {}, not a {t}",
                    anchor.resource_type
                )));
            }
        }
        let (tx_bytes, tx) = self.access_tx(who, log_access_tx_base64)?;
        check_access_matches(tx.body(), id, &meta, &anchor, purpose)?;
        let (reader_member, reader_box) = self.reader_box(who).await?;
        let wrapped_bytes = self
            .store
            .wrapped_key(id)?
            .ok_or_else(|| ApiError::gone(id, 0))?;
        let wrapped = WrappedKey::decode(&wrapped_bytes).map_err(ApiError::internal)?;
        let sealed_bytes = self.store.sealed(id).await?;
        let access = self.commit_access(tx_bytes).await?;
        self.proven_fresh_access(
            who,
            false,
            &meta.patient_id,
            access.index,
            id,
            &anchor,
            purpose,
        )
        .await?;
        let data_key = match meta.custody {
            None => Some(kek::unwrap(&self.kek, id, &wrapped).map_err(ApiError::internal)?),
            Some(_) => None,
        };
        Ok(Released {
            meta,
            sealed_bytes,
            data_key,
            anchor,
            purpose,
            reader_member,
            reader_box,
            access_height: access.height,
            access_index: access.index,
            ledger_wait: access.ledger_wait,
        })
    }

    /// The reader's access tx, decoded and verified: signed by the key that signs the request,
    /// for this chain.
    fn access_tx(
        &self,
        who: &Requester,
        log_access_tx_base64: &str,
    ) -> Result<(Vec<u8>, VerifiedTx), ApiError> {
        let tx_bytes = Base64::decode_vec(log_access_tx_base64)
            .map_err(|e| bad_request(format!("log_access_tx_base64: {e}")))?;
        let tx = decode_tx(&tx_bytes)
            .and_then(|t| t.verify())
            .map_err(|e| bad_request(format!("log access tx: {e}")))?;
        if tx.signer() != &who.key {
            return Err(bad_request(
                "the LogAccess tx must be signed by the key that signs the request".into(),
            ));
        }
        let body = tx.body();
        if body.chain_id != self.node.chain_id() {
            return Err(bad_request(format!(
                "the LogAccess tx is for chain {:?}",
                body.chain_id
            )));
        }
        Ok((tx_bytes, tx))
    }

    /// Submits the access; it must be committed with code 0 before anything is released.
    async fn commit_access(&self, tx_bytes: Vec<u8>) -> Result<CommittedAccess, ApiError> {
        let waited = std::time::Instant::now();
        let committed = self.node.submit(tx_bytes).await?;
        let ledger_wait = waited.elapsed();
        if committed.code != 0 {
            return Err(ApiError::ledger(&committed));
        }
        // The tx index's answer is only a hint of which event to read: the release rests on the
        // access event itself, proven, fresh and not used for an earlier release (a replayed old
        // tx gets the old tx's result from the index, never a new event).
        let index = committed
            .event_attribute("medledger.access.logged", "index")
            .and_then(|i| i.parse().ok())
            .ok_or_else(|| ApiError::internal("the committed access names no event index"))?;
        Ok(CommittedAccess {
            height: committed.height,
            index,
            ledger_wait,
        })
    }

    /// Who a release is sealed to and their registered box key: the requester's member
    /// (SetGateway), or a patient reading their own record (RegisterPatientBoxKey), whose id is
    /// then the reader id of the HPKE info.
    async fn reader_box(&self, who: &Requester) -> Result<(String, [u8; 32]), ApiError> {
        let reader_member = match &who.subject {
            Subject::Member(m) => m.clone(),
            Subject::Practitioner { member, .. } => member.clone(),
            Subject::Patient(p) => return self.patient_box(p).await,
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
        Ok((reader_member, reader_box))
    }

    /// The box key patient `p` registered, or 403 with [`Code::NoPatientBoxKey`] (the code the
    /// ledger would answer the patient's access with).
    async fn patient_box(&self, p: &str) -> Result<(String, [u8; 32]), ApiError> {
        let registered: Option<pb::PatientBoxKey> =
            self.node.read_msg(&keys::patient_box_key(p)).await?;
        let Some(registered) = registered else {
            let code = Code::NoPatientBoxKey;
            let mut e = ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "patient {p} has registered no box key: send RegisterPatientBoxKey first \
                     (`medledger tx --from KEY patient box-key`), so that holders have a key to \
                     seal the record's key shares to"
                ),
            );
            e.body.code = Some(code.value());
            e.body.code_name = Some(code.name().into());
            return Err(e);
        };
        let key: [u8; 32] = registered
            .box_key
            .as_slice()
            .try_into()
            .map_err(|_| ApiError::internal("patient box key on chain is not 32 bytes"))?;
        Ok((p.to_string(), key))
    }

    /// A read resting on access event `index`, already committed (the reader sent its tx to
    /// another holder of a threshold record): the same proven, fresh, once-only checks. The
    /// record's custodian may also ask, for a read it serves itself (a FHIR read opened at the
    /// custodian): the event then names the reader, and the share is sealed to the custodian.
    async fn release_committed(
        &self,
        who: &Requester,
        meta: RecordMetaFile,
        anchor: RecordAnchor,
        index: u64,
        purpose: Purpose,
    ) -> Result<Released, ApiError> {
        let (reader_member, reader_box) = self.reader_box(who).await?;
        let relay = matches!(&who.subject, Subject::Member(m) if *m == anchor.custodian);
        let event = self
            .proven_fresh_access(
                who,
                relay,
                &meta.patient_id,
                index,
                &meta.record_id,
                &anchor,
                purpose,
            )
            .await?;
        let wrapped_bytes = self
            .store
            .wrapped_key(&meta.record_id)?
            .ok_or_else(|| ApiError::gone(&meta.record_id, 0))?;
        let wrapped = WrappedKey::decode(&wrapped_bytes).map_err(ApiError::internal)?;
        let sealed_bytes = self.store.sealed(&meta.record_id).await?;
        let data_key = match meta.custody {
            None => Some(
                kek::unwrap(&self.kek, &meta.record_id, &wrapped).map_err(ApiError::internal)?,
            ),
            Some(_) => None,
        };
        Ok(Released {
            meta,
            sealed_bytes,
            data_key,
            anchor,
            purpose,
            reader_member,
            reader_box,
            access_height: event.height,
            access_index: index,
            ledger_wait: std::time::Duration::ZERO,
        })
    }

    /// The access event `index` of `patient`, read with a proof, is this read by `who` (by
    /// anyone, when `any_reader`: the custodian gathering shares for a read it serves),
    /// committed within [`FRESH_ACCESS_SECS`] of now, and was never used for a release here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn proven_fresh_access(
        &self,
        who: &Requester,
        any_reader: bool,
        patient: &str,
        index: u64,
        id: &str,
        anchor: &RecordAnchor,
        purpose: Purpose,
    ) -> Result<pb::AccessEvent, ApiError> {
        let refuse = |msg: String| ApiError::new(StatusCode::CONFLICT, msg);
        // The state a header already attests first: a holder asked for its share after another
        // holder proved the event committed usually finds it there, without waiting for the next
        // block's header; the newest state only when it is not there yet.
        let key = keys::access_event(patient, index);
        let event = match self.node.read_msg::<pb::AccessEvent>(&key).await? {
            Some(e) => Some(e),
            None => self.node.read_msg_newest(&key).await?,
        };
        let event: pb::AccessEvent = event.ok_or_else(|| {
            refuse(format!(
                "access event {index} of {patient} is not on the ledger (proven absent)"
            ))
        })?;
        // A patient's own read names the patient as its actor (purpose PATRQT, no practitioner).
        let (member, practitioner) = match &who.subject {
            Subject::Member(m) => (m.as_str(), ""),
            Subject::Practitioner { member, did, .. } => (member.as_str(), did.as_str()),
            Subject::Patient(p) => (p.as_str(), ""),
        };
        let expected_purpose = if event.break_glass {
            Purpose::Etreat
        } else {
            purpose
        };
        let reader_ok = any_reader || (event.actor == member && event.practitioner == practitioner);
        if event.record_id != id
            || event.data_class != anchor.resource_type
            || !reader_ok
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
        Ok(event)
    }
}

/// A reader's access as the ledger committed it.
struct CommittedAccess {
    /// The block that committed it.
    height: u64,
    /// The access event's index, as the tx index names it (a hint, proven afterwards).
    index: u64,
    /// How long the ledger took to commit it.
    ledger_wait: std::time::Duration,
}

/// Largest `Medledger-Access-Tx` header a read takes: a signed LogAccess in base64 (far below).
const MAX_ACCESS_TX_HEADER: usize = 8 * 1024;

/// The read a `GET /records/{id}` asks for: the JSON body (the CLI), or, with an empty body (a
/// browser's `fetch` sends no body with GET), the `Medledger-Access-Tx` header (the reader's
/// signed LogAccess, base64) or the `Medledger-Access-Index` header (a committed access event,
/// for a holder's share).
fn get_request(headers: &HeaderMap, body: &[u8]) -> Result<GetRecord, ApiError> {
    if !body.is_empty() {
        return json(body);
    }
    let header = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| bad_request(format!("the {name} header is not ASCII")))
            })
            .transpose()
    };
    let tx = header("medledger-access-tx")?;
    let index = header("medledger-access-index")?;
    match (tx, index) {
        (Some(tx), None) if tx.len() <= MAX_ACCESS_TX_HEADER => Ok(GetRecord {
            log_access_tx_base64: tx.trim().to_string(),
            access_index: None,
        }),
        (Some(_), None) => Err(bad_request(format!(
            "the Medledger-Access-Tx header is over {MAX_ACCESS_TX_HEADER} bytes"
        ))),
        (None, Some(i)) => Ok(GetRecord {
            log_access_tx_base64: String::new(),
            access_index: Some(i.trim().parse().map_err(|_| {
                bad_request(
                    "the Medledger-Access-Index header must be a decimal event index".into(),
                )
            })?),
        }),
        _ => Err(bad_request(
            "a read carries a JSON body ({\"log_access_tx_base64\"} or {\"access_index\"}), or \
             exactly one of the headers Medledger-Access-Tx and Medledger-Access-Index"
                .into(),
        )),
    }
}

/// A 400 with `msg`.
fn bad_request(msg: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, msg)
}

/// The access tx is this read: a consented read (LogAccess, READ, the request's purpose) or a
/// break-glass (LogBreakGlass, purpose ETREAT) of this record, its patient and its resource
/// type: the same release, and the ledger opens the review. Names every field that differs.
fn check_access_matches(
    body: &TxBody,
    id: &str,
    meta: &RecordMetaFile,
    anchor: &RecordAnchor,
    purpose: Purpose,
) -> Result<(), ApiError> {
    let (patient_id, record_id, data_class, purpose_ok, action_ok) = match &body.msg {
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
            return Err(bad_request(
                "the tx must carry a LogAccess or a LogBreakGlass".into(),
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
        return Err(bad_request(format!(
            "the access tx does not match this read: {}",
            wrong.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_read_comes_in_the_body_or_in_exactly_one_header() {
        let body = br#"{"access_index":7}"#;
        assert_eq!(
            get_request(&HeaderMap::new(), body).unwrap().access_index,
            Some(7)
        );
        let r = get_request(&headers(&[("medledger-access-tx", "AAEC")]), b"").unwrap();
        assert_eq!(
            (r.log_access_tx_base64.as_str(), r.access_index),
            ("AAEC", None)
        );
        let r = get_request(&headers(&[("medledger-access-index", "12")]), b"").unwrap();
        assert_eq!(
            (r.log_access_tx_base64.as_str(), r.access_index),
            ("", Some(12))
        );
        let status = |h: HeaderMap| get_request(&h, b"").unwrap_err().status;
        assert_eq!(status(HeaderMap::new()), StatusCode::BAD_REQUEST);
        assert_eq!(
            status(headers(&[
                ("medledger-access-tx", "AAEC"),
                ("medledger-access-index", "1")
            ])),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(headers(&[("medledger-access-index", "-1")])),
            StatusCode::BAD_REQUEST
        );
        let long = "A".repeat(MAX_ACCESS_TX_HEADER + 1);
        assert_eq!(
            status(headers(&[("medledger-access-tx", long.as_str())])),
            StatusCode::BAD_REQUEST
        );
    }
}

//! Storing a record and anchoring it; the records awaiting their person's signed anchor.

use axum::http::StatusCode;
use base64ct::{Base64, Encoding};
use medledger_tx::check::{check_body, key_id_for_commitment, record_roles, RecordAction};
use medledger_tx::pb::{self, tx_body::Msg, RecordAnchor, TxBody};
use medledger_tx::{decode_tx, keys};
use medledger_vault::kek::{self};
use medledger_vault::record::{self, RecordMeta, SealedRecord, MAX_RECORD_BYTES};
use prost::Message;

use super::*;
use crate::api::{ErrorBody, PutRecord, PutRecordAnswer, SignedTx};
use crate::auth::{Requester, Subject};
use crate::error::ApiError;
use crate::node::Committed;
use crate::state::State;
use crate::store::{AwaitingSignature, CustodyFile, RecordMetaFile, RecordState};
use crate::PendingAnchor;

impl State {
    pub(crate) fn anchor_msg(meta: &RecordMetaFile) -> Result<Msg, ApiError> {
        let content_hash = hex::decode(&meta.content_hash).map_err(ApiError::internal)?;
        let (holders, threshold, share_commitments) = match &meta.custody {
            Some(c) => (
                c.holders.clone(),
                c.threshold,
                c.commitments
                    .iter()
                    .map(hex::decode)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(ApiError::internal)?,
            ),
            None => (Vec::new(), 0, Vec::new()),
        };
        Ok(Msg::AnchorRecord(pb::AnchorRecord {
            record_id: meta.record_id.clone(),
            patient_id: meta.patient_id.clone(),
            resource_type: meta.resource_type.clone(),
            content_hash,
            size: meta.size,
            key_id: meta.key_id.clone(),
            holders,
            threshold,
            share_commitments,
        }))
    }

    /// Stores a record and anchors it; for a person, stores it and hands back the anchor to sign.
    pub(crate) async fn put(
        &self,
        id: &str,
        who: &Requester,
        body: &[u8],
    ) -> Result<Stored, ApiError> {
        self.require_storer(who)?;
        let req: PutRecord = json(body)?;
        // A person signs their own anchor (the ledger names who stored the record); only the
        // member's admin key has the gateway sign for it.
        let person = !matches!(who.subject, Subject::Member(_));
        if person && !self.may_await(&who.key).await? {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{MAX_AWAITING_PER_SIGNER} records already wait for your signed anchor: \
                     sign those (POST /records/{{id}}/anchor) or let them expire"
                ),
            ));
        }
        let content = record_content(&req)?;
        self.check_anchor_probe(id, &req)?;
        self.require_new_record(id).await?;
        let sealed = self.seal_record(id, &req, &content).await?;
        let sealed_bytes = sealed.record.encode();
        let meta = RecordMetaFile {
            record_id: id.to_string(),
            patient_id: req.patient_id,
            resource_type: req.resource_type,
            version: RECORD_VERSION,
            content_hash: hex::encode(record::content_hash(&sealed.record)),
            size: sealed_bytes.len() as u64,
            key_id: key_id_for_commitment(sealed.record.commitment()),
            state: RecordState::Stored,
            awaiting_signature: None,
            custody: sealed.custody,
        };
        if person {
            return self
                .store_awaiting(id, who, meta, &sealed_bytes, &sealed.key_file)
                .await;
        }
        // Store first (ciphertext, wrapped key, metadata, each durable), anchor second.
        self.store
            .put(&meta, &sealed_bytes, &sealed.key_file)
            .await?;
        let committed = self.submit(Self::anchor_msg(&meta)?).await?;
        let answer = self.anchor_committed(id, meta, &committed).await?;
        self.replicate_now(id).await;
        Ok(Stored::Anchored(answer))
    }

    /// Only the member's admin key and its active record-keeping practitioners store records.
    fn require_storer(&self, who: &Requester) -> Result<(), ApiError> {
        if !self.acts_for_member(who, record_roles(RecordAction::Anchor)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "only {}'s admin key or its active physicians, nurses and lab technicians \
                     store records here",
                    self.member_id
                ),
            ));
        }
        Ok(())
    }

    /// The ledger's own stateless checks, on the anchor we are about to make (placeholders
    /// for the hash and key id): ids and type are refused here, before anything is stored.
    fn check_anchor_probe(&self, id: &str, req: &PutRecord) -> Result<(), ApiError> {
        let probe = TxBody {
            chain_id: self.node.chain_id().to_string(),
            sequence: 0,
            unordered: None,
            msg: Some(Msg::AnchorRecord(pb::AnchorRecord {
                record_id: id.to_string(),
                patient_id: req.patient_id.clone(),
                resource_type: req.resource_type.clone(),
                content_hash: vec![0; 32],
                size: 0,
                key_id: key_id_for_commitment(&[0; 32]),
                ..Default::default()
            })),
        };
        if let Err(e) = check_body(&probe) {
            return Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                body: ErrorBody {
                    error: e.message,
                    code: Some(e.code.value()),
                    code_name: Some(e.code.name().into()),
                    erased_height: None,
                },
            });
        }
        Ok(())
    }

    /// A record id is used once: neither stored here nor anchored on the ledger.
    async fn require_new_record(&self, id: &str) -> Result<(), ApiError> {
        if self.store.meta(id)?.is_some() || self.node.read(&keys::record(id)).await?.is_some() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("record {id} exists; store a new version under a new id"),
            ));
        }
        Ok(())
    }

    /// Seals the record. Threshold custody when the consortium asks for it: the key is split
    /// among the holders and this gateway keeps one share ([`super::custody`]); otherwise it
    /// keeps the whole key, KEK-wrapped.
    async fn seal_record(
        &self,
        id: &str,
        req: &PutRecord,
        content: &[u8],
    ) -> Result<Sealed, ApiError> {
        let rmeta = RecordMeta {
            record_id: id,
            patient_id: &req.patient_id,
            resource_type: &req.resource_type,
            version: RECORD_VERSION,
        };
        Ok(match self.custody_params().await? {
            Some((r, t)) => {
                let holders = self.choose_holders(id, r).await?;
                let s = self.seal_for_holders(&rmeta, content, &holders, t)?;
                Sealed {
                    record: s.sealed,
                    key_file: s.own_wrapped,
                    custody: Some(s.custody),
                }
            }
            None => {
                let (sealed, data_key) = record::seal(&rmeta, content, &mut rand_v010::rng())
                    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
                let wrapped = kek::wrap(&self.kek, id, &data_key, &mut rand_v010::rng())
                    .map_err(ApiError::internal)?;
                Sealed {
                    record: sealed,
                    key_file: wrapped.encode().to_vec(),
                    custody: None,
                }
            }
        })
    }

    /// Stores the record, then hands the person the anchor to sign (unordered: no sequence to
    /// race).
    async fn store_awaiting(
        &self,
        id: &str,
        who: &Requester,
        meta: RecordMetaFile,
        sealed_bytes: &[u8],
        key_file: &[u8],
    ) -> Result<Stored, ApiError> {
        let body =
            medledger_client::unordered::body_now(self.node.chain_id(), Self::anchor_msg(&meta)?)
                .map_err(ApiError::internal)?;
        let valid_until = body.unordered.as_ref().map_or(0, |u| u.valid_until);
        let meta = RecordMetaFile {
            awaiting_signature: Some(AwaitingSignature {
                signer: hex::encode(who.key),
                valid_until,
            }),
            ..meta
        };
        self.store.put(&meta, sealed_bytes, key_file).await?;
        self.await_signature(&who.key, id, valid_until);
        Ok(Stored::AwaitingSignature(prepared_tx(
            id,
            &body,
            &who.key,
            format!("/records/{id}/anchor"),
        )))
    }

    /// After an anchor's block: refused (for good: a block's answer is final), the stored
    /// record is removed so nothing lingers unanchored; committed, it is marked anchored.
    pub(crate) async fn anchor_committed(
        &self,
        id: &str,
        meta: RecordMetaFile,
        committed: &Committed,
    ) -> Result<PutRecordAnswer, ApiError> {
        if committed.code != 0 {
            self.store.remove(id).await?;
            return Err(ApiError::ledger(committed));
        }
        let answer = PutRecordAnswer {
            record_id: id.to_string(),
            anchor_height: committed.height,
            content_hash: meta.content_hash.clone(),
            key_id: meta.key_id.clone(),
            size: meta.size,
        };
        self.store.put_meta(&RecordMetaFile {
            state: RecordState::Anchored {
                height: committed.height,
            },
            awaiting_signature: None,
            ..meta
        })?;
        Ok(answer)
    }

    /// Hands the holders their replicas right after the anchor (what fails is retried in the
    /// background).
    pub(crate) async fn replicate_now(&self, id: &str) {
        match self.replicate(id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("record {id}: {n} replica(s) not delivered yet; retrying"),
            Err(e) => tracing::warn!("record {id}: replicas: {}", e.message()),
        }
    }

    /// Whether `signer` may store one more record awaiting its signed anchor.
    pub(crate) async fn may_await(&self, signer: &[u8; 32]) -> Result<bool, ApiError> {
        self.drop_expired_awaiting().await?;
        let m = self
            .awaiting
            .lock()
            .map_err(|_| ApiError::internal("awaiting-signature table poisoned"))?;
        Ok(m.get(signer).map_or(0, Vec::len) < MAX_AWAITING_PER_SIGNER)
    }

    /// Drops the records whose prepared anchor's window passed unsigned (on every person's
    /// `PUT` and every erasure sweep; a restart's reconcile drops those it forgot).
    pub(crate) async fn drop_expired_awaiting(&self) -> Result<(), ApiError> {
        let now = medledger_client::unordered::now_secs();
        let mut expired = Vec::new();
        {
            let mut m = self
                .awaiting
                .lock()
                .map_err(|_| ApiError::internal("awaiting-signature table poisoned"))?;
            for waiting in m.values_mut() {
                waiting.retain(|(id, until)| {
                    let live = now <= until + AWAITING_GRACE_SECS;
                    if !live {
                        expired.push(id.clone());
                    }
                    live
                });
            }
            m.retain(|_, w| !w.is_empty());
        }
        for id in expired {
            if let Some(meta) = self.store.meta(&id)? {
                if meta.state == RecordState::Stored && meta.awaiting_signature.is_some() {
                    self.store.remove(&id).await?;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn await_signature(&self, signer: &[u8; 32], id: &str, valid_until: u64) {
        if let Ok(mut m) = self.awaiting.lock() {
            m.entry(*signer)
                .or_default()
                .push((id.to_string(), valid_until));
        }
    }

    pub(crate) fn done_awaiting(&self, signer: &[u8; 32], id: &str) {
        if let Ok(mut m) = self.awaiting.lock() {
            if let Some(w) = m.get_mut(signer) {
                w.retain(|(r, _)| r != id);
                if w.is_empty() {
                    m.remove(signer);
                }
            }
        }
    }

    /// `POST /records/{id}/anchor`: the person's signed anchor, checked to be exactly the one
    /// prepared for the stored record, relayed, and the record marked anchored once committed.
    pub(crate) async fn anchor_signed(
        &self,
        id: &str,
        who: &Requester,
        body: &[u8],
    ) -> Result<PutRecordAnswer, ApiError> {
        let meta = self
            .store
            .meta(id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no record {id}")))?;
        let Some(awaiting) = meta.awaiting_signature.clone() else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("record {id} awaits no signed anchor"),
            ));
        };
        if awaiting.signer != hex::encode(who.key) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("record {id}'s anchor is signed by the key that stored it"),
            ));
        }
        let signed: SignedTx = json(body)?;
        let tx = self.signed_by(who, &signed, &Self::anchor_msg(&meta)?, "anchor")?;
        let committed = self.node.submit(tx).await?;
        self.done_awaiting(&who.key, id);
        let answer = self.anchor_committed(id, meta, &committed).await?;
        self.replicate_now(id).await;
        Ok(answer)
    }

    /// The signed tx bytes of `signed`, once its signature by `who` verifies, it is for this
    /// chain, and it carries exactly `want` (what the gateway prepared or would have signed).
    pub(crate) fn signed_by(
        &self,
        who: &Requester,
        signed: &SignedTx,
        want: &Msg,
        what: &str,
    ) -> Result<Vec<u8>, ApiError> {
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
        let body = Base64::decode_vec(&signed.tx_body_base64)
            .map_err(|e| bad(format!("tx_body_base64: {e}")))?;
        let signature = Base64::decode_vec(&signed.signature_base64)
            .map_err(|e| bad(format!("signature_base64: {e}")))?;
        let tx = pb::Tx {
            body,
            public_key: who.key.to_vec(),
            signature,
        }
        .encode_to_vec();
        let verified = decode_tx(&tx).and_then(|t| t.verify()).map_err(|e| {
            bad(format!(
                "the signed {what} does not verify with your key: {e}"
            ))
        })?;
        let b = verified.body();
        if b.chain_id != self.node.chain_id() || b.msg.as_ref() != Some(want) {
            return Err(bad(format!(
                "the signed {what} is not the one prepared for this record"
            )));
        }
        if !self.gate.broadcast_allowed(&who.key) {
            return Err(crate::auth::too_many(
                "this key sends txs faster than the gateway relays for one key; retry shortly",
            ));
        }
        Ok(tx)
    }

    pub(crate) async fn pending_anchors(&self) -> anyhow::Result<Vec<PendingAnchor>> {
        let mut out = Vec::new();
        for meta in self.store.all()? {
            if meta.state != RecordState::Stored {
                continue;
            }
            let anchor: Option<RecordAnchor> =
                self.node.read_msg(&keys::record(&meta.record_id)).await?;
            let matches = anchor.as_ref().is_some_and(|a| {
                hex::encode(&a.content_hash) == meta.content_hash && a.custodian == self.member_id
            });
            if let (true, Some(a)) = (matches, anchor) {
                self.store.put_meta(&RecordMetaFile {
                    state: RecordState::Anchored {
                        height: a.anchored_height,
                    },
                    awaiting_signature: None,
                    ..meta.clone()
                })?;
            } else if let Some(w) = &meta.awaiting_signature {
                // A person's record whose signed anchor never landed: never anchored in the
                // member's name; dropped once its prepared anchor can no longer land.
                let now = medledger_client::unordered::now_secs();
                if now > w.valid_until + AWAITING_GRACE_SECS {
                    self.store.remove(&meta.record_id).await?;
                }
                continue;
            }
            out.push(PendingAnchor {
                record_id: meta.record_id,
                anchored_on_chain: matches,
            });
        }
        Ok(out)
    }

    pub(crate) async fn reconcile(&self) -> anyhow::Result<Vec<String>> {
        let mut anchored = Vec::new();
        for p in self.pending_anchors().await? {
            if p.anchored_on_chain {
                continue;
            }
            let Some(meta) = self.store.meta(&p.record_id)? else {
                continue;
            };
            let msg = Self::anchor_msg(&meta).map_err(|e| anyhow::anyhow!(e.body.error))?;
            let committed = self.submit(msg).await?;
            if committed.code == 0 {
                self.store.put_meta(&RecordMetaFile {
                    state: RecordState::Anchored {
                        height: committed.height,
                    },
                    ..meta
                })?;
                anchored.push(p.record_id);
            } else {
                self.store.remove(&p.record_id).await?;
            }
        }
        Ok(anchored)
    }
}

/// A record sealed for storing.
struct Sealed {
    record: SealedRecord,
    /// The key file this gateway keeps: the data key or, under threshold custody, its own
    /// share, KEK-wrapped.
    key_file: Vec<u8>,
    /// Under threshold custody: the holders, threshold, commitments and replicas.
    custody: Option<CustodyFile>,
}

/// The record's content, decoded, at most [`MAX_RECORD_BYTES`].
fn record_content(req: &PutRecord) -> Result<Vec<u8>, ApiError> {
    let content = Base64::decode_vec(&req.content_base64)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("content_base64: {e}")))?;
    if content.len() > MAX_RECORD_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a record is at most {MAX_RECORD_BYTES} bytes"),
        ));
    }
    Ok(content)
}

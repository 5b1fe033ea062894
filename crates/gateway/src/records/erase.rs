//! An erasure by the custodian or the patient: the wrapped key is destroyed, then the erasure
//! is anchored.

use axum::http::StatusCode;
use base64ct::{Base64, Encoding};
use medledger_tx::check::{record_roles, RecordAction};
use medledger_tx::pb::{self, tx_body::Msg, RecordAnchor, TxBody};
use medledger_tx::{keys, Code};

use super::*;
use crate::api::{EraseAnswer, EraseRecord};
use crate::auth::{Requester, Subject};
use crate::error::ApiError;
use crate::node::Committed;
use crate::state::State;
use crate::store::{RecordMetaFile, RecordState};

impl State {
    pub(crate) async fn erase(
        &self,
        id: &str,
        who: &Requester,
        body: &[u8],
    ) -> Result<Erased, ApiError> {
        let mut meta = self
            .store
            .meta(id)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no record {id}")))?;
        let allowed = match &who.subject {
            Subject::Patient(p) => *p == meta.patient_id,
            _ => self.acts_for_member(who, record_roles(RecordAction::Erase)),
        };
        if !allowed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "only the record's patient, or its custodian {} (admin key, physicians, \
                     privacy officers), may erase it",
                    self.member_id
                ),
            ));
        }
        if let RecordState::Erased { height } = meta.state {
            if height != 0 {
                return Err(ApiError::gone(id, height));
            }
        }
        let req: EraseRecord = if body.is_empty() {
            EraseRecord::default()
        } else {
            json(body)?
        };
        // The patient or a practitioner signs their own erasure (the ledger names who erased);
        // the gateway signs only for the member's admin key.
        let person = !matches!(who.subject, Subject::Member(_));
        if person {
            let Some(signed) = &req.signed else {
                let sequence = self.node.next_sequence(&who.key).await?;
                let body = TxBody {
                    chain_id: self.node.chain_id().to_string(),
                    sequence,
                    unordered: None,
                    msg: Some(Msg::EraseRecord(pb::EraseRecord {
                        record_id: id.to_string(),
                        reason_hash: reason_hash_of(req.reason_sha256.as_deref())?,
                    })),
                };
                return Ok(Erased::AwaitingSignature(prepared_tx(
                    id,
                    &body,
                    &who.key,
                    format!("/records/{id}/erase"),
                )));
            };
            // The reason hash is the signer's to choose; the record is not.
            let reason_hash = decoded_body(&signed.tx_body_base64)
                .and_then(|b| match b.msg {
                    Some(Msg::EraseRecord(e)) => Some(e.reason_hash),
                    _ => None,
                })
                .unwrap_or_default();
            let want = Msg::EraseRecord(pb::EraseRecord {
                record_id: id.to_string(),
                reason_hash,
            });
            let tx = self.signed_by(who, signed, &want, "erasure")?;
            self.store.destroy_key(id)?;
            super::reshare::destroy_staged(self, id)?;
            meta.state = RecordState::Erased { height: 0 };
            self.store.put_meta(&meta)?;
            let committed = self.node.submit(tx.clone()).await?;
            return self
                .erasure_committed(id, meta, committed, tx, &who.key)
                .await
                .map(Erased::Done);
        }
        let reason_hash = reason_hash_of(req.reason_sha256.as_deref())?;
        // Crypto-shred first: once the wrapped key is gone the record is unreadable here,
        // whatever happens to the erasure tx.
        self.store.destroy_key(id)?;
        super::reshare::destroy_staged(self, id)?;
        meta.state = RecordState::Erased { height: 0 };
        self.store.put_meta(&meta)?;
        let (committed, tx) = self
            .submit_signed(Msg::EraseRecord(pb::EraseRecord {
                record_id: id.to_string(),
                reason_hash,
            }))
            .await?;
        let signer = self.signing_key.verifying_key().to_bytes();
        self.erasure_committed(id, meta, committed, tx, &signer)
            .await
            .map(Erased::Done)
    }

    /// After an erasure tx's block: the record's erasure height stored, the destruction
    /// receipt answered and the erasure confirmed on chain.
    pub(crate) async fn erasure_committed(
        &self,
        id: &str,
        mut meta: RecordMetaFile,
        committed: Committed,
        tx: Vec<u8>,
        signer: &[u8; 32],
    ) -> Result<EraseAnswer, ApiError> {
        let mut receipt = None;
        let height = if committed.code == 0 {
            use sha2::Digest;
            receipt = Some(crate::api::ErasureReceipt {
                tx_base64: Base64::encode_string(&tx),
                tx_hash: hex::encode_upper(sha2::Sha256::digest(&tx)),
                height: committed.height,
                key_id: meta.key_id.clone(),
                signer: hex::encode(signer),
            });
            committed.height
        } else if committed.code == Code::RecordErased.value() {
            // Erased on chain already (e.g. by the patient directly): adopt that height.
            let anchor: Option<RecordAnchor> = self.node.read_msg_newest(&keys::record(id)).await?;
            anchor.map(|a| a.erased_height).unwrap_or(0)
        } else {
            return Err(ApiError::ledger(&committed));
        };
        meta.state = RecordState::Erased { height };
        self.store.put_meta(&meta)?;
        // The destruction receipt: the ledger shows the erasure complete, not just requested.
        if let Some(anchor) = self
            .node
            .read_msg_newest::<RecordAnchor>(&keys::record(id))
            .await?
        {
            if let Err(e) = crate::erasure::confirm(self, id, &anchor).await {
                tracing::warn!(record = id, "erasure confirmation not sent: {e:#}");
            }
        }
        Ok(EraseAnswer {
            record_id: id.to_string(),
            erasure_height: height,
            receipt,
        })
    }
}

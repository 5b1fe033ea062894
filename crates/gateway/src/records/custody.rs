//! Threshold custody (issue 25; docs/vault.md, "Threshold custody"): no single gateway holds a
//! record's data key, and the record survives its custodian.
//!
//! When the consortium's `params/custody` asks for `r` holders and threshold `t`, the custodian
//! seals a new record under a key derived from a secret split `t`-of-`r`
//! ([`medledger_vault::threshold`]). It keeps share 1 (KEK-wrapped, like a whole key before), seals
//! every other share to its holder's box key (registered on chain), anchors the holders and the
//! share commitments with the record, and then hands each holder its replica
//! (`PUT /replicas/{id}`: the sealed bytes and the sealed share). A holder accepts only what the
//! proven anchor says: the custodian that anchored it, its own place among the holders, the
//! content hash, and a share that verifies against the anchored commitments. Replicas a holder
//! did not acknowledge stay in the custodian's metadata (sealed to the holder: the custodian
//! cannot open them) and are retried every [`crate::ERASURE_POLL`].
//!
//! A read is released share by share: each holder checks the reader's committed access exactly
//! as the custodian did before, and seals its share to the reader's box key; the reader combines
//! `t` of them ([`crate::client::open_shares`]). The custodian's own FHIR reads gather the other
//! shares the same way, sealed to itself, for the access the reader committed.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64ct::{Base64, Encoding};
use medledger_tx::keys;
use medledger_tx::pb::{self, Purpose, RecordAnchor};
use medledger_vault::kek::{self, WrappedKey};
use medledger_vault::record::{self, DataKey, RecordMeta, SealedRecord};
use medledger_vault::threshold::{self, Commitments, KeyShare, SealedShare};
use sha2::Digest;
use std::sync::Arc;

use super::*;
use crate::api::{GetRecord, GetRecordAnswer, PutReplica};
use crate::auth::{Authed, Requester, Subject};
use crate::client::GatewayClient;
use crate::error::ApiError;
use crate::state::State;
use crate::store::{CustodyFile, PendingReplica, RecordMetaFile, RecordState};

/// A holder chosen for a new record: its member id, box key and gateway endpoint (all proven).
pub(crate) struct Holder {
    pub(crate) member: String,
    pub(crate) box_key: [u8; 32],
    pub(crate) endpoint: String,
}

/// What sealing a record for its holders gives the custodian.
pub(crate) struct SealedForHolders {
    pub(crate) sealed: SealedRecord,
    /// Share 1, KEK-wrapped (the custodian's key file).
    pub(crate) own_wrapped: Vec<u8>,
    /// Holders, threshold, commitments (anchored from here) and the replicas to hand out.
    pub(crate) custody: CustodyFile,
}

/// A KEK-wrapped share: the 32-byte share value wrapped like a data key (bound to the record
/// id); the index lives in the record's [`CustodyFile`].
fn wrap_share(st: &State, id: &str, share: &KeyShare) -> Result<Vec<u8>, ApiError> {
    let encoded = share.encode();
    let mut value = [0u8; 32];
    value.copy_from_slice(&encoded[2..]);
    let as_key = DataKey::from_bytes(value);
    let wrapped =
        kek::wrap(&st.kek, id, &as_key, &mut rand_v010::rng()).map_err(ApiError::internal)?;
    Ok(wrapped.encode().to_vec())
}

/// The share in a key file (see [`wrap_share`]).
fn unwrap_share(st: &State, id: &str, index: u8, wrapped: &[u8]) -> Result<KeyShare, ApiError> {
    let wrapped = WrappedKey::decode(wrapped).map_err(ApiError::internal)?;
    let value = kek::unwrap(&st.kek, id, &wrapped).map_err(ApiError::internal)?;
    let mut encoded = zeroize::Zeroizing::new([0u8; threshold::KEY_SHARE_LEN]);
    encoded[0] = threshold::KEY_SHARE_VERSION;
    encoded[1] = index;
    encoded[2..].copy_from_slice(value.as_bytes());
    KeyShare::decode(encoded.as_slice()).map_err(ApiError::internal)
}

/// The anchored commitments of a threshold record.
pub(crate) fn commitments_of(anchor: &RecordAnchor) -> Result<Commitments, ApiError> {
    Commitments::from_bytes(&anchor.share_commitments)
        .map_err(|e| ApiError::internal(format!("the anchor's share commitments: {e}")))
}

/// Where `member` stands among `anchor`'s holders (its share index), if it is one.
pub(crate) fn holder_index(anchor: &RecordAnchor, member: &str) -> Option<u8> {
    anchor
        .holders
        .iter()
        .position(|h| h == member)
        .and_then(|i| u8::try_from(i + 1).ok())
}

impl State {
    /// The consortium's custody parameters (proven): `(holders, threshold)`, or `None` when
    /// records are held by their custodian alone. Read at the state the latest header attests
    /// (a block old at most), like the holders below, so a put does not wait a block for each
    /// read: a SetCustody in the very last block makes the anchor refused (CUSTODY_MISMATCH),
    /// and the put can be sent again.
    pub(crate) async fn custody_params(&self) -> Result<Option<(u8, u8)>, ApiError> {
        let c: Option<pb::Custody> = self.node.read_msg(&keys::custody()).await?;
        Ok(c.and_then(|c| {
            let r = u8::try_from(c.holders).ok()?;
            let t = u8::try_from(c.threshold).ok()?;
            (r > 0 && t > 0).then_some((r, t))
        }))
    }

    /// A member's gateway as registered on chain (proven): its box key and endpoint.
    pub(crate) async fn gateway_of(&self, member: &str) -> Result<Option<Holder>, ApiError> {
        let g: Option<pb::Gateway> = self.node.read_msg(&keys::gateway(member)).await?;
        Ok(g.and_then(|g| {
            Some(Holder {
                member: member.to_string(),
                box_key: g.box_public_key.as_slice().try_into().ok()?,
                endpoint: g.endpoint,
            })
        }))
    }

    /// The `r` holders of a new record: this member first, then the other members (from the
    /// genesis list, each still a member with a registered gateway, proven) ranked by
    /// SHA-256(record id ‖ member id), so records spread evenly and every gateway would choose
    /// the same. 503 when too few members have a gateway.
    pub(crate) async fn choose_holders(&self, id: &str, r: u8) -> Result<Vec<Holder>, ApiError> {
        let own = self.gateway_of(&self.member_id).await?.ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "{} has registered no gateway (SetGateway): threshold custody needs its box key",
                    self.member_id
                ),
            )
        })?;
        let mut ranked: Vec<([u8; 32], &String)> = self
            .genesis_members
            .iter()
            .filter(|m| **m != self.member_id)
            .map(|m| {
                let mut h = sha2::Sha256::new();
                h.update(id.as_bytes());
                h.update([0]);
                h.update(m.as_bytes());
                (h.finalize().into(), m)
            })
            .collect();
        ranked.sort();
        let mut holders = vec![own];
        for (_, m) in ranked {
            if holders.len() == usize::from(r) {
                break;
            }
            if self.node.read(&keys::member(m)).await?.is_none() {
                continue;
            }
            if let Some(h) = self.gateway_of(m).await? {
                holders.push(h);
            }
        }
        if holders.len() < usize::from(r) {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "threshold custody needs {r} members with a registered gateway; {} have one",
                    holders.len()
                ),
            ));
        }
        Ok(holders)
    }

    /// Seals a new record under a split key for `holders` (threshold `t`): share 1 wrapped for
    /// this gateway, the others sealed to their holders.
    pub(crate) fn seal_for_holders(
        &self,
        meta: &RecordMeta<'_>,
        content: &[u8],
        holders: &[Holder],
        t: u8,
    ) -> Result<SealedForHolders, ApiError> {
        let r = u8::try_from(holders.len()).map_err(ApiError::internal)?;
        let (sealed, shares, commitments) =
            threshold::seal_split(meta, content, t, r, &mut rand_v010::rng())
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
        let mut own_wrapped = Vec::new();
        let mut to_replicate = Vec::new();
        for (share, h) in shares.iter().zip(holders) {
            if share.index() == 1 {
                own_wrapped = wrap_share(self, meta.record_id, share)?;
                continue;
            }
            let s = threshold::seal_share(
                share,
                self.node.chain_id(),
                meta.record_id,
                &h.member,
                &h.box_key,
                &mut rand_v010::rng(),
            )
            .map_err(ApiError::internal)?;
            to_replicate.push(PendingReplica {
                holder: h.member.clone(),
                sealed_share_base64: Base64::encode_string(&s.encode()),
            });
        }
        Ok(SealedForHolders {
            sealed,
            own_wrapped,
            custody: CustodyFile {
                custodian: self.member_id.clone(),
                index: 1,
                holders: holders.iter().map(|h| h.member.clone()).collect(),
                threshold: u32::from(t),
                commitments: commitments.to_bytes().iter().map(hex::encode).collect(),
                to_replicate,
            },
        })
    }

    /// Hands the holders of an anchored record their replicas; keeps those not acknowledged
    /// for the next try. Returns how many remain.
    pub(crate) async fn replicate(&self, id: &str) -> Result<usize, ApiError> {
        let Some(mut meta) = self.store.meta(id)? else {
            return Ok(0);
        };
        let Some(custody) = meta.custody.as_mut() else {
            return Ok(0);
        };
        if custody.to_replicate.is_empty() || !matches!(meta.state, RecordState::Anchored { .. }) {
            return Ok(custody.to_replicate.len());
        }
        let sealed_base64 = Base64::encode_string(&self.store.sealed(id).await?);
        // Every holder at once (at most the anchor's holders, `MAX_HOLDERS`): one slow or
        // unreachable holder no longer delays the others. `join_all` answers in the list's
        // order, so those left keep their order for the next try.
        let pending = std::mem::take(&mut custody.to_replicate);
        let sent = futures::future::join_all(
            pending
                .iter()
                .map(|p| self.send_replica(id, &sealed_base64, p)),
        )
        .await;
        let mut left = Vec::new();
        for (p, delivered) in pending.into_iter().zip(sent) {
            if !delivered? {
                left.push(p);
            }
        }
        let n = left.len();
        custody.to_replicate = left;
        self.store.put_meta(&meta)?;
        Ok(n)
    }

    /// Hands one holder its replica: whether it acknowledged (200 or 201). A refusal is logged
    /// with the holder's answer, an unreachable holder at debug level; both are retried later.
    async fn send_replica(
        &self,
        id: &str,
        sealed_base64: &str,
        p: &PendingReplica,
    ) -> Result<bool, ApiError> {
        let Ok(Some(h)) = self.gateway_of(&p.holder).await else {
            return Ok(false);
        };
        let body = serde_json::to_vec(&PutReplica {
            sealed_base64: sealed_base64.to_string(),
            sealed_share_base64: p.sealed_share_base64.clone(),
        })
        .map_err(ApiError::internal)?;
        let gw = GatewayClient::new(&h.endpoint, self.signing_key.clone());
        Ok(
            match gw
                .send_raw("PUT", &format!("/replicas/{id}"), body, &[])
                .await
            {
                Ok((200 | 201, _)) => true,
                Ok((status, body)) => {
                    tracing::warn!(
                        "replica of {id} refused by {} ({status}): {}",
                        p.holder,
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    );
                    false
                }
                Err(e) => {
                    tracing::debug!("replica of {id} to {}: {e}", p.holder);
                    false
                }
            },
        )
    }

    /// Retries every replica not yet acknowledged (the background loop, every
    /// [`crate::ERASURE_POLL`]).
    pub(crate) async fn replicate_pending(&self) -> anyhow::Result<()> {
        for meta in self.store.all()? {
            let pending = meta
                .custody
                .as_ref()
                .is_some_and(|c| !c.to_replicate.is_empty());
            if pending {
                self.replicate(&meta.record_id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            }
        }
        Ok(())
    }

    /// A holder takes its replica from the record's custodian: only what the proven anchor
    /// names, with a share that verifies against the anchored commitments.
    pub(crate) async fn accept_replica(
        &self,
        id: &str,
        who: &Requester,
        body: &[u8],
    ) -> Result<StatusCode, ApiError> {
        let req: PutReplica = json(body)?;
        // The attested state first; the newest (a block's wait) only for an anchor just made.
        let key = keys::record(id);
        let anchor = match self.node.read_msg::<RecordAnchor>(&key).await? {
            Some(a) => Some(a),
            None => self.node.read_msg_newest(&key).await?,
        };
        let anchor: RecordAnchor = anchor.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("record {id} is not anchored (yet): send its replica after the block"),
            )
        })?;
        let forbidden = |m: String| ApiError::new(StatusCode::FORBIDDEN, m);
        if !matches!(&who.subject, Subject::Member(m) if *m == anchor.custodian) {
            return Err(forbidden(format!(
                "only record {id}'s custodian ({}) hands out its replicas",
                anchor.custodian
            )));
        }
        let index = holder_index(&anchor, &self.member_id).ok_or_else(|| {
            forbidden(format!("{} is not a holder of record {id}", self.member_id))
        })?;
        if anchor.erased_height != 0 {
            return Err(ApiError::gone(id, anchor.erased_height));
        }
        if let Some(m) = self.store.meta(id)? {
            if hex::encode(&anchor.content_hash) == m.content_hash {
                return Ok(StatusCode::OK);
            }
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!("another record {id} is stored here"),
            ));
        }
        let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, m);
        let sealed_bytes = Base64::decode_vec(&req.sealed_base64)
            .map_err(|e| bad(format!("sealed_base64: {e}")))?;
        let sealed =
            SealedRecord::decode(&sealed_bytes).map_err(|e| bad(format!("sealed record: {e}")))?;
        if record::content_hash(&sealed).as_slice() != anchor.content_hash.as_slice() {
            return Err(bad(format!(
                "the sealed bytes do not hash to record {id}'s anchored content hash"
            )));
        }
        let sealed_share = Base64::decode_vec(&req.sealed_share_base64)
            .ok()
            .and_then(|b| SealedShare::decode(&b).ok())
            .ok_or_else(|| bad("sealed_share_base64 is not a sealed key share".into()))?;
        let share = threshold::open_share(
            &self.box_key,
            self.node.chain_id(),
            id,
            &self.member_id,
            &sealed_share,
        )
        .map_err(|_| {
            bad(format!(
                "the key share does not open for {}",
                self.member_id
            ))
        })?;
        if share.index() != index || !threshold::verify_share(&share, &commitments_of(&anchor)?) {
            return Err(bad(format!(
                "key share {} does not verify against record {id}'s anchored commitments \
                 (holder {index} expected)",
                share.index()
            )));
        }
        let meta = RecordMetaFile {
            record_id: id.to_string(),
            patient_id: anchor.patient_id.clone(),
            resource_type: anchor.resource_type.clone(),
            version: RECORD_VERSION,
            content_hash: hex::encode(&anchor.content_hash),
            size: sealed_bytes.len() as u64,
            key_id: anchor.key_id.clone(),
            state: RecordState::Anchored {
                height: anchor.anchored_height,
            },
            awaiting_signature: None,
            custody: Some(CustodyFile {
                custodian: anchor.custodian.clone(),
                index,
                holders: anchor.holders.clone(),
                threshold: anchor.threshold,
                commitments: anchor.share_commitments.iter().map(hex::encode).collect(),
                to_replicate: Vec::new(),
            }),
        };
        let wrapped = wrap_share(self, id, &share)?;
        self.store.put(&meta, &sealed_bytes, &wrapped).await?;
        Ok(StatusCode::CREATED)
    }

    /// This gateway's share of a threshold record, from its key file (410 once destroyed).
    pub(crate) fn own_share(&self, meta: &RecordMetaFile) -> Result<KeyShare, ApiError> {
        let index = meta
            .custody
            .as_ref()
            .map(|c| c.index)
            .ok_or_else(|| ApiError::internal("not a threshold record"))?;
        let wrapped = self
            .store
            .wrapped_key(&meta.record_id)?
            .ok_or_else(|| ApiError::gone(&meta.record_id, 0))?;
        unwrap_share(self, &meta.record_id, index, &wrapped)
    }

    /// This gateway's share sealed to `reader`'s box key.
    pub(crate) fn seal_own_share(
        &self,
        meta: &RecordMetaFile,
        reader_member: &str,
        reader_box: &[u8; 32],
    ) -> Result<String, ApiError> {
        let share = self.own_share(meta)?;
        let sealed = threshold::seal_share(
            &share,
            self.node.chain_id(),
            &meta.record_id,
            reader_member,
            reader_box,
            &mut rand_v010::rng(),
        )
        .map_err(ApiError::internal)?;
        Ok(Base64::encode_string(&sealed.encode()))
    }

    /// The custodian's own read of a threshold record (FHIR answers are opened here): its share
    /// and `t − 1` more from the other holders, each released for the reader's committed access
    /// `access_index` and sealed to this member; combined and checked against the commitments.
    pub(crate) async fn gather_key(
        &self,
        meta: &RecordMetaFile,
        anchor: &RecordAnchor,
        access_index: u64,
        purpose: Purpose,
    ) -> Result<DataKey, ApiError> {
        let commitments = commitments_of(anchor)?;
        let needed = usize::try_from(anchor.threshold).map_err(ApiError::internal)?;
        let mut shares = vec![self.own_share(meta)?];
        let body = serde_json::to_vec(&GetRecord {
            log_access_tx_base64: String::new(),
            access_index: Some(access_index),
        })
        .map_err(ApiError::internal)?;
        let mut refusals = Vec::new();
        for holder in anchor.holders.iter().filter(|h| **h != self.member_id) {
            if shares.len() >= needed {
                break;
            }
            let Some(h) = self.gateway_of(holder).await? else {
                refusals.push(format!("{holder}: no gateway registered"));
                continue;
            };
            let gw = GatewayClient::new(&h.endpoint, self.signing_key.clone());
            let path = format!(
                "/records/{}?purpose={}",
                meta.record_id,
                purpose.as_str_name().trim_start_matches("PURPOSE_")
            );
            match gw.send_raw("GET", &path, body.clone(), &[]).await {
                Ok((200, bytes)) => {
                    let share = serde_json::from_slice::<GetRecordAnswer>(&bytes)
                        .ok()
                        .and_then(|a| a.sealed_share_base64)
                        .and_then(|b| Base64::decode_vec(&b).ok())
                        .and_then(|b| SealedShare::decode(&b).ok())
                        .and_then(|s| {
                            threshold::open_share(
                                &self.box_key,
                                self.node.chain_id(),
                                &meta.record_id,
                                &self.member_id,
                                &s,
                            )
                            .ok()
                        });
                    match share {
                        Some(s) if threshold::verify_share(&s, &commitments) => shares.push(s),
                        _ => refusals.push(format!("{holder}: a share that does not verify")),
                    }
                }
                Ok((status, bytes)) => refusals.push(format!(
                    "{holder}: {status} {}",
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )),
                Err(e) => refusals.push(format!("{holder}: {e}")),
            }
        }
        if shares.len() < needed {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "record {}: {} of {needed} key shares (holders: {})",
                    meta.record_id,
                    shares.len(),
                    refusals.join("; ")
                ),
            ));
        }
        threshold::combine(&shares, &commitments).map_err(ApiError::internal)
    }
}

/// `PUT /replicas/{id}`: a holder takes its replica from the record's custodian.
pub(crate) async fn put_replica(
    AxState(st): AxState<Arc<State>>,
    Path(id): Path<String>,
    Authed { who, body }: Authed,
) -> Response {
    match st.accept_replica(&id, &who, &body).await {
        Ok(status) => (status, Json(serde_json::json!({ "record_id": id }))).into_response(),
        Err(e) => e.into_response(),
    }
}

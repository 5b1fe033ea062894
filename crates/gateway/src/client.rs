//! A client of a record-vault gateway: builds and signs requests (RFC 9421, keyid = the hex
//! Ed25519 public key), sends them, and opens what a read releases. Used by the tests and by the
//! CLI's `vault put/get/erase`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64ct::{Base64, Encoding};
use ed25519_dalek::SigningKey;
use medledger_tx::pb::{tx_body::Msg, LogAccess, Purpose, TxBody};
use medledger_tx::sign_tx;
use medledger_vault::httpsig::{self, HttpRequest, SignatureParams};
use medledger_vault::record::{self, RecordMeta, SealedRecord};
use medledger_vault::share::{self, MemberBoxKey, SharedKey};
use rand_v010::RngExt;

use crate::api::{
    EraseAnswer, EraseRecord, ErrorBody, GetRecord, GetRecordAnswer, PreparedTx, PutRecord,
    PutRecordAnswer, SignedTx,
};

/// How long a request signature is valid (the gateway accepts at most 300 s).
pub const SIGNATURE_VALIDITY_SECS: u64 = 60;

/// A refused or failed request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway answered with an error status.
    #[error("HTTP {status}: {}", body.error)]
    Status {
        /// The HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// Transport or decoding failure.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The HTTP status, if the gateway answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Status { status, .. } => Some(*status),
            ClientError::Other(_) => None,
        }
    }
}

/// The current UNIX time in seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The signature headers (`content-digest`, `signature-input`, `signature`) for a request.
pub fn sign_headers(
    key: &SigningKey,
    method: &str,
    target_uri: &str,
    body: &[u8],
    now: u64,
) -> Result<Vec<(String, String)>, ClientError> {
    let digest = httpsig::content_digest(body);
    let nonce: [u8; 16] = rand_v010::rng().random();
    let keyid = hex::encode(key.verifying_key().to_bytes());
    let params = SignatureParams::profile(
        &keyid,
        &hex::encode(nonce),
        now,
        now + SIGNATURE_VALIDITY_SECS,
    )
    .map_err(|e| ClientError::Other(e.to_string()))?;
    let headers = [("content-digest", digest.as_str())];
    let req = HttpRequest {
        method,
        target_uri,
        headers: &headers,
    };
    let sig = httpsig::sign_request(&req, "sig1", &params, key)
        .map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(vec![
        ("content-digest".into(), digest),
        ("signature-input".into(), sig.signature_input),
        ("signature".into(), sig.signature),
    ])
}

/// A signed `LogAccess` tx: the reader's key records it reads `record_id` of `patient_id` as
/// `data_class` for `purpose`, at the key's next `sequence`.
pub fn log_access_tx(
    key: &SigningKey,
    chain_id: &str,
    sequence: u64,
    patient_id: &str,
    record_id: &str,
    data_class: &str,
    purpose: Purpose,
) -> Vec<u8> {
    sign_tx(
        key,
        &TxBody {
            chain_id: chain_id.into(),
            sequence,
            unordered: None,
            msg: Some(log_access_msg(patient_id, record_id, data_class, purpose)),
        },
    )
}

/// A read of `record_id` of `patient_id`, declared as `data_class`, for `purpose`.
fn log_access_msg(patient_id: &str, record_id: &str, data_class: &str, purpose: Purpose) -> Msg {
    Msg::LogAccess(LogAccess {
        patient_id: patient_id.into(),
        record_id: record_id.into(),
        data_class: data_class.into(),
        purpose: purpose as i32,
        action: 0,
    })
}

/// A signed unordered `LogAccess` tx, valid for 30 s: what a reader sends by default. No
/// sequence to fetch or share, so any number of a member's servers read concurrently with one
/// key; the gateway resends it until it is committed, and the ledger applies it at most once.
pub fn unordered_log_access_tx(
    key: &SigningKey,
    chain_id: &str,
    patient_id: &str,
    record_id: &str,
    data_class: &str,
    purpose: Purpose,
) -> Result<Vec<u8>, ClientError> {
    let msg = log_access_msg(patient_id, record_id, data_class, purpose);
    let body = medledger_client::unordered::body_now(chain_id, msg)
        .map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(sign_tx(key, &body))
}

/// A signed `LogBreakGlass` tx: an emergency read without consent, by a physician or nurse of a
/// care provider, with the SHA-256 of the reason they wrote (their member keeps the text). Sent
/// to `GET /records/{id}?purpose=ETREAT`; the ledger opens its review.
pub fn break_glass_tx(
    key: &SigningKey,
    chain_id: &str,
    sequence: u64,
    patient_id: &str,
    record_id: &str,
    data_class: &str,
    reason: &str,
) -> Vec<u8> {
    sign_tx(
        key,
        &TxBody {
            chain_id: chain_id.into(),
            sequence,
            unordered: None,
            msg: Some(Msg::LogBreakGlass(medledger_tx::pb::LogBreakGlass {
                patient_id: patient_id.into(),
                record_id: record_id.into(),
                data_class: data_class.into(),
                reason_hash: reason_hash(reason).to_vec(),
            })),
        },
    )
}

/// Opens a released record with the reader member's box key: the shared key (HPKE, bound to
/// the record id and reader member), then the sealed record (key commitment first). When
/// `anchor_content_hash` is given, the sealed bytes must hash to it.
pub fn open_released(
    answer: &GetRecordAnswer,
    box_key: &MemberBoxKey,
    anchor_content_hash: Option<&[u8]>,
) -> Result<Vec<u8>, ClientError> {
    let bad = |e: &dyn std::fmt::Display| ClientError::Other(e.to_string());
    let sealed_bytes = Base64::decode_vec(&answer.sealed_base64).map_err(|e| bad(&e))?;
    let shared_bytes = Base64::decode_vec(&answer.shared_key_base64).map_err(|e| bad(&e))?;
    let sealed = SealedRecord::decode(&sealed_bytes).map_err(|e| bad(&e))?;
    if let Some(h) = anchor_content_hash {
        if record::content_hash(&sealed).as_slice() != h {
            return Err(ClientError::Other(
                "the sealed record does not match the anchor's content hash".into(),
            ));
        }
    }
    let shared = SharedKey::decode(&shared_bytes).map_err(|e| bad(&e))?;
    let key = share::open_shared_key(box_key, &answer.record_id, &answer.reader_member, &shared)
        .map_err(|e| bad(&e))?;
    let meta = RecordMeta {
        record_id: &answer.record_id,
        patient_id: &answer.patient_id,
        resource_type: &answer.resource_type,
        version: answer.version,
    };
    record::open(&meta, &sealed, &key).map_err(|e| bad(&e))
}

/// A threshold record's holders, as the proven anchor lists them, each with its gateway's
/// endpoint (proven `gateway/{member}`).
#[derive(Clone, Debug)]
pub struct HolderEndpoint {
    /// The holder member.
    pub member: String,
    /// Its gateway's base URL.
    pub endpoint: String,
}

/// What a threshold read got: the plaintext, and each holder that did not contribute a valid
/// share, with why (down, refused, or a share that does not verify: that holder is named).
#[derive(Debug)]
pub struct ThresholdRead {
    /// The first holder's answer (the access it committed).
    pub answer: GetRecordAnswer,
    /// The first holder's `Server-Timing` header: its own time and its wait for the ledger
    /// (what `medledger bench vault` reports).
    pub server_timing: Option<String>,
    /// The opened record.
    pub plaintext: Vec<u8>,
    /// The holders whose shares were used: the first holder, then the others in the order
    /// their shares arrived.
    pub used: Vec<String>,
    /// `holder: reason` for each holder asked that gave no valid share before enough had
    /// arrived (the requests still open then are dropped, unanswered and unnamed).
    pub refusals: Vec<String>,
}

/// Reads a threshold record (threshold custody, docs/vault.md) from its holders: the reader's
/// signed `LogAccess` goes to the first holder that answers (it commits the access and releases
/// its share), then all the others are asked at once for their share of that same access, and
/// the first shares to arrive that verify against the anchored commitments are taken until
/// `anchor.threshold` are in hand. The shares are opened with the reader member's box key,
/// combined, and the record is opened (content hash and key commitment checked against the
/// anchor).
pub async fn read_from_holders(
    key: &SigningKey,
    holders: &[HolderEndpoint],
    anchor: &medledger_tx::pb::RecordAnchor,
    purpose: Purpose,
    log_access_tx: &[u8],
    box_key: &MemberBoxKey,
    chain_id: &str,
) -> Result<ThresholdRead, ClientError> {
    use futures::StreamExt;
    use medledger_vault::threshold::{self, Commitments};
    let commitments = Commitments::from_bytes(&anchor.share_commitments)
        .map_err(|e| ClientError::Other(format!("the anchor's share commitments: {e}")))?;
    let needed = usize::try_from(anchor.threshold).unwrap_or(usize::MAX);
    let verified = |answer: &GetRecordAnswer| {
        verified_share(answer, box_key, chain_id, &anchor.record_id, &commitments)
    };
    let mut refusals = Vec::new();
    // The access: the first holder that answers commits it and releases its share.
    let mut others = holders.iter();
    let (first, answer, server_timing) = loop {
        let Some(h) = others.next() else {
            return Err(ClientError::Other(format!(
                "no holder of {} released the record: {}",
                anchor.record_id,
                refusals.join("; ")
            )));
        };
        match GatewayClient::new(&h.endpoint, key.clone())
            .get_timed(&anchor.record_id, purpose, log_access_tx)
            .await
        {
            Ok((answer, timing)) => break (h, answer, timing),
            // The holder refused the read itself (the ledger or the gateway decided: a 4xx):
            // asking the others with the same tx would not change that.
            Err(e @ ClientError::Status { status, .. }) if (400..500).contains(&status) => {
                return Err(e)
            }
            Err(e) => refusals.push(format!("{}: {e}", h.member)),
        }
    };
    let mut shares = Vec::new();
    let mut used = Vec::new();
    match verified(&answer) {
        Some(s) => {
            shares.push(s);
            used.push(first.member.clone());
        }
        None => refusals.push(share_does_not_verify(&first.member)),
    }
    // The rest, all at once, for their share of that access. Nothing is sent unless a share
    // is still missing; once enough are in, the requests still open are dropped.
    let access_index = answer.access_index;
    let mut asked: futures::stream::FuturesUnordered<_> = others
        .map(|h| async move {
            let got = GatewayClient::new(&h.endpoint, key.clone())
                .get_share(&anchor.record_id, purpose, access_index)
                .await;
            (h, got)
        })
        .collect();
    while shares.len() < needed {
        let Some((h, got)) = asked.next().await else {
            break;
        };
        match got.as_ref().map(&verified) {
            Ok(Some(s)) => {
                shares.push(s);
                used.push(h.member.clone());
            }
            Ok(None) => refusals.push(share_does_not_verify(&h.member)),
            Err(e) => refusals.push(format!("{}: {e}", h.member)),
        }
    }
    drop(asked);
    if shares.len() < needed {
        return Err(ClientError::Other(format!(
            "{} of {needed} key shares of {} ({})",
            shares.len(),
            anchor.record_id,
            refusals.join("; ")
        )));
    }
    let data_key =
        threshold::combine(&shares, &commitments).map_err(|e| ClientError::Other(e.to_string()))?;
    let sealed_bytes =
        Base64::decode_vec(&answer.sealed_base64).map_err(|e| ClientError::Other(e.to_string()))?;
    let sealed =
        SealedRecord::decode(&sealed_bytes).map_err(|e| ClientError::Other(e.to_string()))?;
    if record::content_hash(&sealed).as_slice() != anchor.content_hash.as_slice() {
        return Err(ClientError::Other(
            "the sealed record does not match the anchor's content hash".into(),
        ));
    }
    let plaintext = record::open(
        &RecordMeta {
            record_id: &answer.record_id,
            patient_id: &answer.patient_id,
            resource_type: &answer.resource_type,
            version: answer.version,
        },
        &sealed,
        &data_key,
    )
    .map_err(|e| ClientError::Other(e.to_string()))?;
    Ok(ThresholdRead {
        answer,
        server_timing,
        plaintext,
        used,
        refusals,
    })
}

/// The key share a holder's answer carries, opened with the reader member's box key, if it
/// verifies against the anchored commitments (None: missing, malformed, sealed to someone
/// else, or not the share the custodian committed to).
fn verified_share(
    answer: &GetRecordAnswer,
    box_key: &MemberBoxKey,
    chain_id: &str,
    record_id: &str,
    commitments: &medledger_vault::threshold::Commitments,
) -> Option<medledger_vault::threshold::KeyShare> {
    use medledger_vault::threshold::{self, SealedShare};
    let bytes = Base64::decode_vec(answer.sealed_share_base64.as_deref()?).ok()?;
    let sealed = SealedShare::decode(&bytes).ok()?;
    let share =
        threshold::open_share(box_key, chain_id, record_id, &answer.reader_member, &sealed).ok()?;
    threshold::verify_share(&share, commitments).then_some(share)
}

fn share_does_not_verify(member: &str) -> String {
    format!("{member}: its key share does not verify against the anchored commitments")
}

/// SHA-256 of a reason text, as `POST /records/{id}/erase` takes it.
pub fn reason_hash(reason: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(reason.as_bytes()).into()
}

/// Sends `rb`; the status and the body.
async fn status_and_body(rb: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), ClientError> {
    let res = rb
        .send()
        .await
        .map_err(|e| ClientError::Other(e.to_string()))?;
    let status = res.status().as_u16();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| ClientError::Other(e.to_string()))?;
    Ok((status, bytes.to_vec()))
}

/// The error a non-2xx answer stands for: its JSON error body, else its text.
fn status_error(status: u16, bytes: &[u8]) -> ClientError {
    let body = serde_json::from_slice(bytes).unwrap_or_else(|_| ErrorBody {
        error: String::from_utf8_lossy(bytes).into_owned(),
        ..Default::default()
    });
    ClientError::Status { status, body }
}

/// A client of one gateway, signing with one key.
pub struct GatewayClient {
    base: String,
    key: SigningKey,
    http: reqwest::Client,
}

impl GatewayClient {
    /// A client of the gateway at `base` (e.g. `http://127.0.0.1:8700`, its endpoint on chain).
    pub fn new(base: &str, key: SigningKey) -> GatewayClient {
        GatewayClient {
            base: base.trim_end_matches('/').to_string(),
            key,
            http: reqwest::Client::new(),
        }
    }

    /// The absolute URL of `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// Sends a signed request; returns the status and body.
    pub async fn send_raw(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
        extra_headers: &[(String, String)],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let url = self.url(path_and_query);
        let headers = sign_headers(&self.key, method, &url, &body, now_secs())?;
        self.send_signed(method, &url, body, &headers, extra_headers)
            .await
    }

    /// Sends a request with the given (already made) signature headers.
    pub async fn send_signed(
        &self,
        method: &str,
        url: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
        extra_headers: &[(String, String)],
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Other(e.to_string()))?;
        let mut rb = self
            .http
            .request(m, url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers.iter().chain(extra_headers) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        status_and_body(rb).await
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let (_, bytes) = self.call_status(method, path_and_query, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Other(e.to_string()))
    }

    /// A signed request whose 2xx status and body are answered; any other status is an error.
    async fn call_status(
        &self,
        method: &str,
        path_and_query: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let (status, bytes) = self.send_raw(method, path_and_query, body, &[]).await?;
        if (200..300).contains(&status) {
            Ok((status, bytes))
        } else {
            Err(status_error(status, &bytes))
        }
    }

    async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path_and_query: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Other(e.to_string()))?;
        self.call(method, path_and_query, body).await
    }

    /// `POST /auth/token`: a bearer token for this client's key (reads: FHIR, the CSV export,
    /// the `/rpc` relay of proven state).
    pub async fn token(&self) -> Result<String, ClientError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            access_token: String,
        }
        let a: Answer = self.call("POST", "/auth/token", Vec::new()).await?;
        Ok(a.access_token)
    }

    /// `GET path_and_query` with `Authorization: Bearer token`; the status and body.
    pub async fn get_with_token(
        &self,
        path_and_query: &str,
        token: &str,
    ) -> Result<(u16, Vec<u8>), ClientError> {
        let rb = self.http.get(self.url(path_and_query)).bearer_auth(token);
        status_and_body(rb).await
    }

    /// `PUT /records/{id}`: store and anchor a record. The member's admin key is answered
    /// 201 (the gateway signed the anchor); a practitioner is answered 202 with the anchor to
    /// sign, which this client checks, signs and sends to `POST /records/{id}/anchor`.
    pub async fn put(
        &self,
        record_id: &str,
        patient_id: &str,
        resource_type: &str,
        content: &[u8],
    ) -> Result<PutRecordAnswer, ClientError> {
        let body = PutRecord {
            patient_id: patient_id.into(),
            resource_type: resource_type.into(),
            content_base64: Base64::encode_string(content),
        };
        let body = serde_json::to_vec(&body).map_err(|e| ClientError::Other(e.to_string()))?;
        let (status, bytes) = self
            .call_status("PUT", &format!("/records/{record_id}"), body)
            .await?;
        if status != 202 {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Other(e.to_string()));
        }
        let prepared: PreparedTx =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Other(e.to_string()))?;
        let signed = self.sign_prepared(&prepared, |msg| {
            matches!(msg, Msg::AnchorRecord(a) if a.record_id == record_id
                && a.patient_id == patient_id && a.resource_type == resource_type)
        })?;
        self.call_json("POST", &format!("/records/{record_id}/anchor"), &signed)
            .await
    }

    /// Signs a [`PreparedTx`] after checking that its body is for this key and carries what
    /// was asked for (`expected`): the gateway proposes, the signer decides.
    pub fn sign_prepared(
        &self,
        prepared: &PreparedTx,
        expected: impl Fn(&Msg) -> bool,
    ) -> Result<SignedTx, ClientError> {
        use ed25519_dalek::Signer;
        use prost::Message;
        let bytes = Base64::decode_vec(&prepared.tx_body_base64)
            .map_err(|e| ClientError::Other(format!("prepared tx body: {e}")))?;
        let body = TxBody::decode(bytes.as_slice())
            .map_err(|e| ClientError::Other(format!("prepared tx body: {e}")))?;
        let mine = prepared.signer == hex::encode(self.key.verifying_key().to_bytes());
        if !mine || !body.msg.as_ref().is_some_and(expected) {
            return Err(ClientError::Other(
                "the gateway prepared a tx other than the one asked for; not signed".into(),
            ));
        }
        let sign = medledger_tx::envelope::signing_bytes(&body.chain_id, &bytes);
        Ok(SignedTx {
            tx_body_base64: prepared.tx_body_base64.clone(),
            signature_base64: Base64::encode_string(&self.key.sign(&sign).to_bytes()),
        })
    }

    /// `GET /records/{id}?purpose=…` with the reader's signed `LogAccess` tx.
    pub async fn get(
        &self,
        record_id: &str,
        purpose: Purpose,
        log_access_tx: &[u8],
    ) -> Result<GetRecordAnswer, ClientError> {
        let (answer, _) = self.get_timed(record_id, purpose, log_access_tx).await?;
        Ok(answer)
    }

    /// [`GatewayClient::get`], with the answer's `Server-Timing` header (the gateway's own time
    /// and its wait for the ledger).
    pub async fn get_timed(
        &self,
        record_id: &str,
        purpose: Purpose,
        log_access_tx: &[u8],
    ) -> Result<(GetRecordAnswer, Option<String>), ClientError> {
        let other = |e: &dyn std::fmt::Display| ClientError::Other(e.to_string());
        let body = serde_json::to_vec(&GetRecord {
            log_access_tx_base64: Base64::encode_string(log_access_tx),
            access_index: None,
        })
        .map_err(|e| other(&e))?;
        let url = self.url(&format!(
            "/records/{record_id}?purpose={}",
            purpose.as_str_name()
        ));
        let headers = sign_headers(&self.key, "GET", &url, &body, now_secs())?;
        let mut rb = self
            .http
            .get(&url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in &headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let res = rb.send().await.map_err(|e| other(&e))?;
        let status = res.status().as_u16();
        let timing = res
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = res.bytes().await.map_err(|e| other(&e))?;
        if !(200..300).contains(&status) {
            return Err(status_error(status, &bytes));
        }
        let answer = serde_json::from_slice(&bytes).map_err(|e| other(&e))?;
        Ok((answer, timing))
    }

    /// `GET /records/{id}?purpose=…` at another holder of a threshold record, resting on the
    /// access event `access_index` the reader already committed at the first holder.
    pub async fn get_share(
        &self,
        record_id: &str,
        purpose: Purpose,
        access_index: u64,
    ) -> Result<GetRecordAnswer, ClientError> {
        let body = GetRecord {
            log_access_tx_base64: String::new(),
            access_index: Some(access_index),
        };
        self.call_json(
            "GET",
            &format!("/records/{record_id}?purpose={}", purpose.as_str_name()),
            &body,
        )
        .await
    }

    /// `POST /records/{id}/erase`.
    pub async fn erase(
        &self,
        record_id: &str,
        reason_sha256: Option<[u8; 32]>,
    ) -> Result<EraseAnswer, ClientError> {
        let mut req = EraseRecord {
            reason_sha256: reason_sha256.map(hex::encode),
            signed: None,
        };
        let path = format!("/records/{record_id}/erase");
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Other(e.to_string()))?;
        let (status, bytes) = self.call_status("POST", &path, body).await?;
        if status != 202 {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Other(e.to_string()));
        }
        // A patient or practitioner signs their own erasure.
        let prepared: PreparedTx =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Other(e.to_string()))?;
        let reason = reason_sha256.map(|h| h.to_vec()).unwrap_or_default();
        req.signed = Some(self.sign_prepared(&prepared, |msg| {
            matches!(msg, Msg::EraseRecord(e) if e.record_id == record_id && e.reason_hash == reason)
        })?);
        self.call_json("POST", &path, &req).await
    }
}

#[cfg(test)]
mod tests {
    //! [`read_from_holders`] against fake holders on 127.0.0.1, each answering its own way.
    #![allow(clippy::unwrap_used)]
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::response::IntoResponse;
    use medledger_tx::pb::RecordAnchor;
    use medledger_vault::threshold::{self, KeyShare};

    use super::*;

    const CHAIN: &str = "medledger-test";
    const RECORD: &str = "obs-1";
    const READER: &str = "hospital-a";
    const CONTENT: &[u8] = br#"{"resourceType":"Observation"}"#;

    /// How a fake holder answers `GET /records/{id}`.
    #[derive(Clone)]
    enum Reply {
        /// 200 with this answer and `Server-Timing`.
        Answer(Box<GetRecordAnswer>, &'static str),
        /// This error status.
        Status(u16),
        /// Never.
        Silent,
    }

    /// A record split 2-of-3, and what each holder (or a liar) answers about it.
    struct Record {
        anchor: RecordAnchor,
        box_key: MemberBoxKey,
        sealed_base64: String,
        shares: Vec<KeyShare>,
    }

    impl Record {
        fn new() -> Record {
            let meta = RecordMeta {
                record_id: RECORD,
                patient_id: "pat-1",
                resource_type: "Observation",
                version: 1,
            };
            let (sealed, shares, commitments) =
                threshold::seal_split(&meta, CONTENT, 2, 3, &mut rand_v010::rng()).unwrap();
            let anchor = RecordAnchor {
                record_id: RECORD.into(),
                patient_id: "pat-1".into(),
                resource_type: "Observation".into(),
                content_hash: record::content_hash(&sealed).to_vec(),
                holders: vec!["h1".into(), "h2".into(), "h3".into()],
                threshold: 2,
                share_commitments: commitments.to_bytes().iter().map(|c| c.to_vec()).collect(),
                ..Default::default()
            };
            Record {
                anchor,
                box_key: MemberBoxKey::generate(&mut rand_v010::rng()),
                sealed_base64: Base64::encode_string(&sealed.encode()),
                shares,
            }
        }

        /// Holder `index`'s honest answer: its share, sealed to the reader member.
        fn honest(&self, index: u8, timing: &'static str) -> Reply {
            self.answer(&self.shares[usize::from(index) - 1], timing)
        }

        /// A share with holder `index`'s index but of another split: it opens, and does not
        /// verify against this record's commitments.
        fn wrong(&self, index: u8) -> Reply {
            let (_, other, _) = threshold::split(2, 3, &mut rand_v010::rng()).unwrap();
            self.answer(&other[usize::from(index) - 1], "")
        }

        fn answer(&self, share: &KeyShare, timing: &'static str) -> Reply {
            let sealed = threshold::seal_share(
                share,
                CHAIN,
                RECORD,
                READER,
                &self.box_key.public_bytes(),
                &mut rand_v010::rng(),
            )
            .unwrap();
            Reply::Answer(
                Box::new(GetRecordAnswer {
                    record_id: RECORD.into(),
                    patient_id: "pat-1".into(),
                    resource_type: "Observation".into(),
                    version: 1,
                    sealed_base64: self.sealed_base64.clone(),
                    shared_key_base64: String::new(),
                    reader_member: READER.into(),
                    sealed_share_base64: Some(Base64::encode_string(&sealed.encode())),
                    access_height: 9,
                    access_index: 4,
                }),
                timing,
            )
        }

        async fn read(&self, holders: &[HolderEndpoint]) -> Result<ThresholdRead, ClientError> {
            let key = SigningKey::from_bytes(&[7; 32]);
            let read = read_from_holders(
                &key,
                holders,
                &self.anchor,
                Purpose::Treat,
                b"the signed LogAccess",
                &self.box_key,
                CHAIN,
            );
            tokio::time::timeout(Duration::from_secs(20), read)
                .await
                .expect("the read waited on a holder that never answers")
        }
    }

    /// A fake holder: its endpoint and every request body it got.
    struct Fake {
        holder: HolderEndpoint,
        asked: Arc<Mutex<Vec<GetRecord>>>,
    }

    async fn serve(member: &str, reply: Reply) -> Fake {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let handler = move |body: axum::body::Bytes| async move {
            log.lock()
                .unwrap()
                .push(serde_json::from_slice::<GetRecord>(&body).unwrap());
            match reply {
                Reply::Answer(a, timing) => {
                    ([("server-timing", timing)], axum::Json(*a)).into_response()
                }
                Reply::Status(s) => (
                    axum::http::StatusCode::from_u16(s).unwrap(),
                    axum::Json(ErrorBody {
                        error: "refused".into(),
                        ..Default::default()
                    }),
                )
                    .into_response(),
                Reply::Silent => std::future::pending::<axum::response::Response>().await,
            }
        };
        let app = axum::Router::new().route("/records/{id}", axum::routing::get(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake {
            holder: HolderEndpoint {
                member: member.into(),
                endpoint,
            },
            asked,
        }
    }

    /// A holder whose gateway is down: nothing listens at its endpoint.
    async fn down(member: &str) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        Fake {
            holder: HolderEndpoint {
                member: member.into(),
                endpoint,
            },
            asked: Arc::default(),
        }
    }

    fn endpoints(fakes: &[&Fake]) -> Vec<HolderEndpoint> {
        fakes.iter().map(|f| f.holder.clone()).collect()
    }

    /// (requests with the tx, requests with an access index) a fake got.
    fn asked(f: &Fake) -> (usize, Vec<Option<u64>>) {
        let asked = f.asked.lock().unwrap();
        let txs = asked
            .iter()
            .filter(|g| !g.log_access_tx_base64.is_empty())
            .count();
        let shares = asked
            .iter()
            .filter(|g| g.log_access_tx_base64.is_empty())
            .map(|g| g.access_index)
            .collect();
        (txs, shares)
    }

    #[tokio::test]
    async fn the_other_holders_are_asked_at_once_so_a_silent_one_does_not_hold_up_the_read() {
        let r = Record::new();
        let h1 = serve("h1", r.honest(1, "gateway;dur=5.000, ledger;dur=700.000")).await;
        let h2 = serve("h2", Reply::Silent).await;
        let h3 = serve("h3", r.honest(3, "gateway;dur=1.000, ledger;dur=0.000")).await;
        let read = r.read(&endpoints(&[&h1, &h2, &h3])).await.unwrap();
        assert_eq!(read.plaintext, CONTENT);
        assert_eq!(read.used, ["h1", "h3"]);
        assert!(read.refusals.is_empty(), "{:?}", read.refusals);
        // The timing is the first holder's, the one that committed the access.
        assert_eq!(
            read.server_timing.as_deref(),
            Some("gateway;dur=5.000, ledger;dur=700.000")
        );
        // The tx went to the first holder only; the others were asked for that access.
        assert_eq!(asked(&h1), (1, vec![]));
        assert_eq!(asked(&h3), (0, vec![Some(4)]));
        assert_eq!(asked(&h2).0, 0);
    }

    #[tokio::test]
    async fn a_down_first_holder_hands_the_access_to_the_next_and_is_named() {
        let r = Record::new();
        let h1 = down("h1").await;
        let h2 = serve("h2", r.honest(2, "gateway;dur=2.000")).await;
        let h3 = serve("h3", r.honest(3, "")).await;
        let read = r.read(&endpoints(&[&h1, &h2, &h3])).await.unwrap();
        assert_eq!(read.plaintext, CONTENT);
        assert_eq!(read.used, ["h2", "h3"]);
        assert_eq!(read.refusals.len(), 1, "{:?}", read.refusals);
        assert!(read.refusals[0].starts_with("h1: "), "{:?}", read.refusals);
        assert_eq!(read.server_timing.as_deref(), Some("gateway;dur=2.000"));
        assert_eq!(asked(&h2), (1, vec![]));
        assert_eq!(asked(&h3), (0, vec![Some(4)]));
    }

    #[tokio::test]
    async fn the_first_holders_refusal_is_final_and_no_other_holder_is_asked() {
        let r = Record::new();
        let h1 = serve("h1", Reply::Status(403)).await;
        let h2 = serve("h2", r.honest(2, "")).await;
        let h3 = serve("h3", r.honest(3, "")).await;
        let e = r.read(&endpoints(&[&h1, &h2, &h3])).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{e}");
        assert_eq!(asked(&h2), (0, vec![]));
        assert_eq!(asked(&h3), (0, vec![]));
    }

    #[tokio::test]
    async fn a_first_holder_whose_share_does_not_verify_is_named_and_the_others_make_up_for_it() {
        let r = Record::new();
        let h1 = serve("h1", r.wrong(1)).await;
        let h2 = serve("h2", r.honest(2, "")).await;
        let h3 = serve("h3", r.honest(3, "")).await;
        let read = r.read(&endpoints(&[&h1, &h2, &h3])).await.unwrap();
        assert_eq!(read.plaintext, CONTENT);
        assert_eq!(read.used.len(), 2);
        assert!(!read.used.contains(&"h1".to_string()), "{:?}", read.used);
        assert_eq!(
            read.refusals,
            ["h1: its key share does not verify against the anchored commitments"]
        );
    }

    #[tokio::test]
    async fn below_the_threshold_the_read_fails_naming_every_holder_that_gave_no_valid_share() {
        let r = Record::new();
        let h1 = serve("h1", r.honest(1, "")).await;
        let h2 = serve("h2", r.wrong(2)).await;
        let h3 = serve("h3", Reply::Status(503)).await;
        let e = r.read(&endpoints(&[&h1, &h2, &h3])).await.unwrap_err();
        let said = e.to_string();
        assert!(said.starts_with("1 of 2 key shares of obs-1"), "{said}");
        assert!(
            said.contains("h2: its key share does not verify against the anchored commitments"),
            "{said}"
        );
        assert!(said.contains("h3: HTTP 503: refused"), "{said}");
    }
}

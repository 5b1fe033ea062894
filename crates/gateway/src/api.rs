//! The JSON bodies of the gateway's HTTP API (docs/vault.md, "Gateway HTTP API").

use serde::{Deserialize, Serialize};

/// `PUT /records/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutRecord {
    /// The patient's id on chain.
    pub patient_id: String,
    /// FHIR resource type, e.g. `Observation` (the anchor's data class).
    pub resource_type: String,
    /// The plaintext record, standard base64 (at most 16 MiB decoded).
    pub content_base64: String,
}

/// Answer to `PUT /records/{id}` (201).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutRecordAnswer {
    /// Record id.
    pub record_id: String,
    /// Height of the block that holds the anchor.
    pub anchor_height: u64,
    /// SHA-256 of the sealed record, hex (the anchor's content hash).
    pub content_hash: String,
    /// The anchor's key id, `kc1-<hex key commitment>`.
    pub key_id: String,
    /// Size of the sealed record.
    pub size: u64,
}

/// `GET /records/{id}?purpose=…` body: the reader's signed `LogAccess` tx, or (at the other
/// holders of a threshold record) the index of the access event it committed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GetRecord {
    /// The signed tx bytes (`medledger_tx::sign_tx`), standard base64. The gateway submits it
    /// and waits for its block.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub log_access_tx_base64: String,
    /// Instead of a tx: the patient's access event, already committed, that this read rests
    /// on (fresh, naming this record and this requester; each holder releases once per event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_index: Option<u64>,
}

/// Answer to `GET /records/{id}` (200).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GetRecordAnswer {
    /// Record id.
    pub record_id: String,
    /// Patient id.
    pub patient_id: String,
    /// Resource type (from the anchor).
    pub resource_type: String,
    /// Sealing version (associated data).
    pub version: u64,
    /// The sealed record encoding, standard base64.
    pub sealed_base64: String,
    /// The data key, HPKE-sealed to the reader member's box key (81-byte shared key encoding),
    /// standard base64.
    pub shared_key_base64: String,
    /// The member the key was shared to (the HPKE info binds it).
    pub reader_member: String,
    /// A threshold record: this holder's key share, HPKE-sealed to the reader member's box key
    /// (`medledger_vault::threshold::SealedShare`, its index inside), standard base64;
    /// `shared_key_base64` is then empty. The reader combines `threshold` shares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_share_base64: Option<String>,
    /// Height of the block holding the access event.
    pub access_height: u64,
    /// Index of the access event in the patient's history.
    pub access_index: u64,
}

/// `POST /records/{id}/erase`. The member's admin key sends the reason only (the gateway signs
/// the erasure); a practitioner or the patient first gets a [`PreparedTx`] (202) and then sends
/// it back signed, in `signed`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EraseRecord {
    /// SHA-256 of the reason (hex, 64 digits), kept off chain; optional.
    #[serde(default)]
    pub reason_sha256: Option<String>,
    /// The requester's own signed `EraseRecord` (the body a 202 answer prepared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedTx>,
}

/// Answer 202: the tx the requester signs with its own key, so that the ledger names the person
/// who acted (a practitioner's anchor or erasure, a patient's erasure). The gateway never signs
/// in the member's name for a person.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreparedTx {
    /// Record id.
    pub record_id: String,
    /// The `TxBody` to sign, standard base64 (an anchor is unordered, valid for 30 s; an
    /// erasure carries the signer's next sequence).
    pub tx_body_base64: String,
    /// The bytes to sign: `medledger_tx::signing_bytes(chain_id, body)`, standard base64 (a
    /// client computes them itself from the body).
    pub sign_bytes_base64: String,
    /// The key that must sign (the requester's), hex.
    pub signer: String,
    /// Where to send the [`SignedTx`]: `POST` this path.
    pub submit_to: String,
}

/// A [`PreparedTx`]'s body, signed by the requester.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedTx {
    /// The prepared `TxBody`, unchanged, standard base64.
    pub tx_body_base64: String,
    /// The Ed25519 signature over its sign bytes, standard base64.
    pub signature_base64: String,
}

/// Answer to `POST /records/{id}/erase` (200).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EraseAnswer {
    /// Record id.
    pub record_id: String,
    /// Height of the block holding the erasure.
    pub erasure_height: u64,
    /// The destruction receipt: the committed `EraseRecord` the custodian signed after
    /// destroying the key (none when the record was erased on chain by someone else first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<ErasureReceipt>,
}

/// The custodian's signed `EraseRecord`, committed: record, signer and (through its block) time;
/// the anchor's `key_id` names the key destroyed (docs/vault.md, "Destruction receipt").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReceipt {
    /// The signed `Tx` bytes, standard base64.
    pub tx_base64: String,
    /// Its CometBFT hash (uppercase hex SHA-256 of the bytes).
    pub tx_hash: String,
    /// The block that holds it.
    pub height: u64,
    /// The destroyed key's commitment, as anchored (`kc1-…`).
    pub key_id: String,
    /// The custodian key that signed it (hex).
    pub signer: String,
}

/// Every refusal.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
    /// The ledger's code, when the ledger refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,
    /// The code's name, e.g. `NO_PERMITTING_CONSENT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_name: Option<String>,
    /// For 410: the erasure's block height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_height: Option<u64>,
}

/// `PUT /replicas/{id}`: a record's custodian hands a holder its replica (signed by the
/// custodian member's admin key, which its gateway holds).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutReplica {
    /// The sealed record encoding, standard base64 (its SHA-256 is the anchor's content hash).
    pub sealed_base64: String,
    /// The holder's key share, HPKE-sealed to the holder's box key, standard base64.
    pub sealed_share_base64: String,
}

//! Query answers and their standalone verifier.
//!
//! An answer of the ledger is a key, a value (or none) and an ICS23 proof. It verifies against
//! the app hash of the height it was read at (CometBFT carries that app hash in the header of the
//! *next* height). This crate needs no storage and no async runtime, so auditors can embed it.
//!
//! On the wire the proof travels in the [`compact`] form (`ProofOp` type [`PROOF_OP_TYPE`]);
//! [`decode_proof`] turns it (or the older protobuf form, [`ICS23_PROOF_OP_TYPE`]) back into a
//! standard `ics23::CommitmentProof`, which [`verify`] checks with the unchanged `ics23` verifier.
//!
//! Query paths are state keys (see [`medledger_tx::keys`]) with a leading `/`; e.g. the consent
//! `c-1` is `/consent/c-1` and the number of access events of a patient is
//! `/access/<patient>/count`.
//!
//! [`export`] turns a verified access history into a FHIR audit bundle and a HIPAA accounting
//! of disclosures.

pub mod export;

pub mod certificate;
pub mod compact;
pub mod history;
pub mod light;
pub mod records;

use ics23::{CommitmentProof, HostFunctionsManager};
use prost::Message;

/// The proof type name in ABCI `ProofOp`s answered by medledger: the [`compact`] encoding.
pub const PROOF_OP_TYPE: &str = "jmt-compact-v1";

/// The older proof type: `ProofOp.data` is a protobuf `ics23.CommitmentProof`. Still accepted
/// from nodes that predate the compact form.
pub const ICS23_PROOF_OP_TYPE: &str = "ics23:jmt-sha256";

/// Longest proof type name quoted back in an error.
const MAX_QUOTED_TYPE_LEN: usize = 64;

/// Why an answer did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// The answer carries no proof.
    #[error("the answer carries no proof")]
    MissingProof,
    /// The proof bytes do not decode.
    #[error("proof does not decode: {0}")]
    BadProof(String),
    /// The proof is of a type this verifier does not read.
    #[error(
        "unknown proof type {0:?} (this verifier reads {PROOF_OP_TYPE} and {ICS23_PROOF_OP_TYPE})"
    )]
    UnknownProofType(String),
    /// The proof is of the wrong kind for the answer (membership for an absent value, or
    /// non-membership for a present one).
    #[error("proof kind does not match the answer ({0})")]
    WrongKind(&'static str),
    /// The proof does not lead to the app hash.
    #[error("proof does not verify against app hash {app_hash}")]
    Mismatch {
        /// The app hash checked against, hex.
        app_hash: String,
    },
}

/// What a verified answer proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proven {
    /// `key` holds `value`.
    Present(Vec<u8>),
    /// `key` holds nothing.
    Absent,
}

/// The JMT's ICS23 spec (SHA-256 leaves and inner nodes).
pub fn proof_spec() -> ics23::ProofSpec {
    jmt::ics23_spec()
}

/// Turns a `ProofOp` (its type and data) of the answer `key` → `value` (`None`: absent) into the
/// ICS23 `CommitmentProof` to [`verify`]: expands the compact form, or decodes the older protobuf
/// form. Nothing is verified here.
pub fn decode_proof(
    op_type: &str,
    data: &[u8],
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<CommitmentProof, VerifyError> {
    match op_type {
        PROOF_OP_TYPE => compact::expand(data, key, value),
        ICS23_PROOF_OP_TYPE => {
            CommitmentProof::decode(data).map_err(|e| VerifyError::BadProof(e.to_string()))
        }
        other => Err(VerifyError::UnknownProofType(
            other.chars().take(MAX_QUOTED_TYPE_LEN).collect(),
        )),
    }
}

/// Verifies that, in the state whose root is `app_hash`, `key` holds `value` (or nothing when
/// `value` is `None`). Uses the standard `ics23` verifier with the JMT spec.
pub fn verify(
    app_hash: &[u8],
    key: &[u8],
    value: Option<&[u8]>,
    proof: &CommitmentProof,
) -> Result<Proven, VerifyError> {
    let spec = proof_spec();
    let root = app_hash.to_vec();
    let is_exist = matches!(proof.proof, Some(ics23::commitment_proof::Proof::Exist(_)));
    let ok = match value {
        Some(v) => {
            if !is_exist {
                return Err(VerifyError::WrongKind("a value needs a membership proof"));
            }
            ics23::verify_membership::<HostFunctionsManager>(proof, &spec, &root, key, v)
        }
        None => {
            if is_exist {
                return Err(VerifyError::WrongKind(
                    "an absence needs a non-membership proof",
                ));
            }
            ics23::verify_non_membership::<HostFunctionsManager>(proof, &spec, &root, key)
        }
    };
    if !ok {
        return Err(VerifyError::Mismatch {
            app_hash: hex::encode_upper(app_hash),
        });
    }
    Ok(match value {
        Some(v) => Proven::Present(v.to_vec()),
        None => Proven::Absent,
    })
}

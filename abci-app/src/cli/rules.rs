//! CLI of practitioners, patients' keys, break-glass reviews and record anchors.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use medledger_tx::pb::{self, tx_body::Msg, PractitionerRole, PractitionerStatus};
use sha2::{Digest, Sha256};

use medledger_client::Keyring;

use super::tx::{ProofSubject, TxCtx};

/// What a key proof is made for: the chain, and the subject it names (see
/// `medledger_tx::keyproof`).
pub struct ProofCtx {
    /// The chain id.
    pub chain_id: String,
    /// The member id (enrolment, practitioner registration) or patient id (rotation).
    pub subject: String,
}

/// A key that must prove possession: a keyring name (the key signs its proof here, and never
/// leaves the keyring), or 64 hex characters with the proof the key's holder made elsewhere
/// (`medledger keys prove`).
pub fn key_with_proof(
    keyring: &Keyring,
    name_or_hex: &str,
    proof: Option<&str>,
    purpose: &str,
    ctx: &ProofCtx,
) -> anyhow::Result<([u8; 32], Vec<u8>)> {
    if let Some(proof) = proof {
        let key = resolve_key(keyring, name_or_hex)?;
        let proof = hex::decode(proof).context("--proof must be hex")?;
        return Ok((key, proof));
    }
    let signing = keyring.get(name_or_hex).with_context(|| {
        format!("{name_or_hex} is not in the keyring: give its proof with --proof (made with `medledger keys prove`)")
    })?;
    let proof = medledger_tx::keyproof::prove(&signing, &ctx.chain_id, purpose, &ctx.subject);
    Ok((signing.verifying_key().to_bytes(), proof.to_vec()))
}

/// Free text stays off chain: its SHA-256 goes into the tx (nothing for an empty text). The
/// member keeps the text and can show it matches the hash the ledger holds.
pub fn text_hash(text: &str) -> Vec<u8> {
    if text.is_empty() {
        Vec::new()
    } else {
        Sha256::digest(text.as_bytes()).to_vec()
    }
}

/// A key given by keyring name or as 64 hex characters.
pub fn resolve_key(keyring: &Keyring, name_or_hex: &str) -> anyhow::Result<[u8; 32]> {
    if name_or_hex.len() == 64 {
        if let Some(k) = hex::decode(name_or_hex)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            return Ok(k);
        }
    }
    Ok(keyring.get(name_or_hex)?.verifying_key().to_bytes())
}

/// Practitioner roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Physician.
    Physician,
    /// Nurse.
    Nurse,
    /// Lab technician.
    LabTechnician,
    /// Claims adjuster.
    ClaimsAdjuster,
    /// Researcher.
    Researcher,
    /// Privacy officer.
    PrivacyOfficer,
}

impl From<RoleArg> for PractitionerRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Physician => PractitionerRole::Physician,
            RoleArg::Nurse => PractitionerRole::Nurse,
            RoleArg::LabTechnician => PractitionerRole::LabTechnician,
            RoleArg::ClaimsAdjuster => PractitionerRole::ClaimsAdjuster,
            RoleArg::Researcher => PractitionerRole::Researcher,
            RoleArg::PrivacyOfficer => PractitionerRole::PrivacyOfficer,
        }
    }
}

/// Practitioner transactions (signed by the member's admin).
#[derive(Debug, Subcommand)]
pub enum PractitionerTx {
    /// Vouch for a practitioner's key.
    Register(PractitionerRegisterArgs),
    /// Suspend a practitioner (reversible).
    Suspend(PractitionerStatusArgs),
    /// Reinstate a suspended practitioner.
    Reinstate(PractitionerStatusArgs),
    /// Revoke a practitioner (final).
    Revoke(PractitionerStatusArgs),
}

impl PractitionerTx {
    /// The message the command sends (the reasons' text stays off chain).
    pub(super) async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        Ok(match self {
            PractitionerTx::Register(a) => a.into_msg(cx).await?,
            PractitionerTx::Suspend(a) => a.into_msg(PractitionerStatus::Suspended),
            PractitionerTx::Reinstate(a) => a.into_msg(PractitionerStatus::Active),
            PractitionerTx::Revoke(a) => a.into_msg(PractitionerStatus::Revoked),
        })
    }
}

/// `tx practitioner register`.
#[derive(Debug, Args)]
pub struct PractitionerRegisterArgs {
    /// The practitioner's key: a keyring name (it signs its proof of possession here) or 64
    /// hex characters with --proof.
    #[arg(long)]
    key: String,
    /// The key's proof of possession (hex), when the key is not in this keyring.
    #[arg(long)]
    proof: Option<String>,
    /// Role.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// The licence credential; only its SHA-256 goes on the ledger.
    #[arg(long)]
    licence_file: PathBuf,
    /// Unix seconds after which the practitioner may no longer act (0 = no limit).
    #[arg(long, default_value_t = 0)]
    valid_until: u64,
    /// Display name.
    #[arg(long, default_value = "")]
    name: String,
}

impl PractitionerRegisterArgs {
    /// The registration; the key proves possession for the signer's member.
    async fn into_msg(self, cx: &TxCtx<'_>) -> anyhow::Result<Msg> {
        let proof_ctx = cx.proof_ctx(ProofSubject::Member).await?;
        let licence = std::fs::read(&self.licence_file)
            .with_context(|| format!("reading {}", self.licence_file.display()))?;
        let (public_key, key_proof) = key_with_proof(
            cx.keyring,
            &self.key,
            self.proof.as_deref(),
            medledger_tx::keyproof::REGISTER_PRACTITIONER,
            &proof_ctx,
        )?;
        Ok(Msg::RegisterPractitioner(pb::RegisterPractitioner {
            public_key: public_key.to_vec(),
            key_proof,
            role: PractitionerRole::from(self.role) as i32,
            licence_hash: Sha256::digest(&licence).to_vec(),
            valid_until: self.valid_until,
            name: self.name,
        }))
    }
}

/// `tx practitioner suspend | reinstate | revoke`.
#[derive(Debug, Args)]
pub struct PractitionerStatusArgs {
    /// The practitioner's DID.
    did: String,
    /// Why.
    #[arg(long, default_value = "")]
    reason: String,
}

impl PractitionerStatusArgs {
    /// The change to `status`.
    fn into_msg(self, status: PractitionerStatus) -> Msg {
        Msg::SetPractitionerStatus(pb::SetPractitionerStatus {
            did: self.did,
            status: status as i32,
            reason_hash: text_hash(&self.reason),
        })
    }
}

/// Record anchors.
#[derive(Debug, Subcommand)]
pub enum RecordTx {
    /// Anchor an encrypted record held off chain: its hash, size and key id go on the ledger.
    Anchor(RecordAnchorArgs),
    /// Erase a record (crypto-shredding: the custodian destroys its key). The erasure is
    /// *requested* until the custodian confirms it (`confirm-erasure`).
    Erase(RecordEraseArgs),
    /// Confirm, as the record's custodian, that an erased record's key is destroyed
    /// (ConfirmErasure): the erasure is then *complete*. The record vault gateway sends it
    /// itself; this is for a custodian without one.
    ConfirmErasure(ConfirmErasureArgs),
}

impl RecordTx {
    /// The message the command sends.
    pub(super) fn into_msg(self) -> anyhow::Result<Msg> {
        match self {
            RecordTx::Anchor(a) => a.into_msg(),
            RecordTx::Erase(a) => Ok(a.into_msg()),
            RecordTx::ConfirmErasure(a) => Ok(a.into_msg()),
        }
    }
}

/// `tx record anchor`.
#[derive(Debug, Args)]
pub struct RecordAnchorArgs {
    /// Record id.
    #[arg(long)]
    record: String,
    /// Patient id.
    #[arg(long)]
    patient: String,
    /// FHIR resource type.
    #[arg(long = "type")]
    resource_type: String,
    /// The encrypted record file (hashed locally; never sent).
    #[arg(long)]
    file: PathBuf,
    /// Id of the encryption key in the custodian's vault.
    #[arg(long)]
    key_id: String,
}

impl RecordAnchorArgs {
    /// The anchor: the file's SHA-256 and size.
    fn into_msg(self) -> anyhow::Result<Msg> {
        let content = std::fs::read(&self.file)
            .with_context(|| format!("reading {}", self.file.display()))?;
        Ok(Msg::AnchorRecord(pb::AnchorRecord {
            record_id: self.record,
            patient_id: self.patient,
            resource_type: self.resource_type,
            content_hash: Sha256::digest(&content).to_vec(),
            size: content.len() as u64,
            key_id: self.key_id,
            // Held by its custodian alone: threshold custody is the gateway's (`vault put`).
            ..Default::default()
        }))
    }
}

/// `tx record erase`.
#[derive(Debug, Args)]
pub struct RecordEraseArgs {
    /// Record id.
    record: String,
    /// Why.
    #[arg(long, default_value = "patient request")]
    reason: String,
}

impl RecordEraseArgs {
    fn into_msg(self) -> Msg {
        Msg::EraseRecord(pb::EraseRecord {
            record_id: self.record,
            reason_hash: text_hash(&self.reason),
        })
    }
}

/// `tx record confirm-erasure`.
#[derive(Debug, Args)]
pub struct ConfirmErasureArgs {
    /// Record id.
    record: String,
}

impl ConfirmErasureArgs {
    fn into_msg(self) -> Msg {
        Msg::ConfirmErasure(pb::ConfirmErasure {
            record_id: self.record,
        })
    }
}

/// A W3C DID Core document for a practitioner.
pub fn did_document(p: &pb::Practitioner) -> serde_json::Value {
    let status = PractitionerStatus::try_from(p.status)
        .map(|s| s.as_str_name())
        .unwrap_or("UNKNOWN");
    let role = PractitionerRole::try_from(p.role)
        .map(|r| r.as_str_name())
        .unwrap_or("UNKNOWN");
    let vm = format!("{}#key-1", p.did);
    serde_json::json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/ed25519-2020/v1"],
        "id": p.did,
        "controller": format!("did:medledger:member:{}", p.member_id),
        "verificationMethod": [{
            "id": vm,
            "type": "Ed25519VerificationKey2020",
            "controller": p.did,
            "publicKeyMultibase": multibase_ed25519(&p.public_key),
        }],
        "authentication": [vm],
        "assertionMethod": [vm],
        "service": [{
            "id": format!("{}#medledger", p.did),
            "type": "MedledgerPractitioner",
            "serviceEndpoint": {
                "member": p.member_id,
                "role": role,
                "status": status,
                "licenceSha256": hex::encode(&p.licence_hash),
                "validUntil": p.valid_until,
            }
        }]
    })
}

/// `z` + base58btc(0xed01 || key): the Ed25519VerificationKey2020 multibase form.
fn multibase_ed25519(key: &[u8]) -> String {
    let mut bytes = vec![0xed, 0x01];
    bytes.extend_from_slice(key);
    format!("z{}", base58(&bytes))
}

/// base58btc (the Bitcoin alphabet, leading zero bytes as `1`s).
fn base58(bytes: &[u8]) -> String {
    bs58::encode(bytes).into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_matches_known_vectors() {
        assert_eq!(base58(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58(&[0, 0, 1]), "112");
    }
}

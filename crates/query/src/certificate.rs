//! Trusting BLS checkpoint certificates: the validators' BLS keys and powers come from the
//! consortium's genesis file, each key checked with its proof of possession; a certificate is then
//! one aggregate verification (see `medledger_tx::checkpoint` and docs/certificates.md).
//!
//! When governance changes the validator set, trust is handed over ([`CertTrust::handover`]):
//! the certificate of the state `c` that changed the registry is still signed by the old set; it
//! certifies the app hash of `c`, against which the new registry (`validators` at `c`) is proven.
//! The certificate of a state `S` is signed by the registry of state `S - 1`.

use medledger_tx::checkpoint::{
    certificate_order, verify_certificate, verify_possession, CertError, CertValidator,
    CertifiedState,
};
use medledger_tx::keys;
use medledger_tx::pb::{Certificate, ValidatorSet};
use prost::Message;

use crate::history::ProvenRead;
use crate::{verify, Proven, VerifyError};

/// The validators whose certificates an auditor accepts, with names for reports.
#[derive(Clone, Debug)]
pub struct CertTrust {
    /// Chain id.
    pub chain_id: String,
    /// Validators in certificate order (by address).
    pub validators: Vec<CertValidator>,
    /// Member id of each validator (same order), or its address when no member claims it.
    pub names: Vec<String>,
}

/// Why trust could not be handed over to a new validator set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandoverError {
    /// The certificate of the changing state does not verify under the current set.
    #[error("certificate of the state that changed the validators: {0}")]
    Certificate(#[from] CertError),
    /// The registry read is not the `validators` key, or its proof fails.
    #[error("the new validator registry is not proven: {0}")]
    Proof(String),
}

/// Why the genesis file cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("genesis: {0}")]
pub struct GenesisError(String);

fn hex_field(v: &serde_json::Value, what: &str) -> Result<Vec<u8>, GenesisError> {
    v.as_str()
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| GenesisError(format!("{what} is not a hex string")))
}

impl CertTrust {
    /// Reads validators (address, power) and the members' BLS keys from a CometBFT genesis.json
    /// whose app_state is medledger's.
    pub fn from_genesis_json(bytes: &[u8]) -> Result<CertTrust, GenesisError> {
        let g: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| GenesisError(e.to_string()))?;
        let chain_id = g["chain_id"]
            .as_str()
            .ok_or_else(|| GenesisError("no chain_id".into()))?
            .to_string();
        let mut entries: Vec<(CertValidator, String)> = Vec::new();
        for v in g["validators"]
            .as_array()
            .ok_or_else(|| GenesisError("no validators".into()))?
        {
            let address = hex_field(&v["address"], "validator address")?;
            let power: u64 = v["power"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| GenesisError("validator power is not a number".into()))?;
            entries.push((
                CertValidator {
                    address: address.clone(),
                    bls_key: Vec::new(),
                    power,
                },
                hex::encode_upper(&address),
            ));
        }
        for m in g["app_state"]["members"].as_array().into_iter().flatten() {
            let v = &m["validator"];
            if v.is_null() {
                continue;
            }
            let address = hex_field(&v["address"], "member validator address")?;
            let bls_key = hex_field(&v["bls_key"], "bls_key")?;
            let pop = hex_field(&v["bls_pop"], "bls_pop")?;
            let id = m["id"].as_str().unwrap_or_default().to_string();
            if !verify_possession(&bls_key, &pop) {
                return Err(GenesisError(format!(
                    "member {id}: bls_pop does not prove possession of bls_key"
                )));
            }
            let entry = entries
                .iter_mut()
                .find(|(e, _)| e.address == address)
                .ok_or_else(|| {
                    GenesisError(format!(
                        "member {id}'s validator is not a genesis validator"
                    ))
                })?;
            entry.0.bls_key = bls_key;
            entry.1 = id;
        }
        entries.sort_by(|a, b| a.0.address.cmp(&b.0.address));
        let names = entries.iter().map(|(_, n)| n.clone()).collect();
        let validators = certificate_order(entries.into_iter().map(|(v, _)| v).collect());
        Ok(CertTrust {
            chain_id,
            validators,
            names,
        })
    }

    /// The signers of certificates under a validator `registry` (the ledger's `validators`
    /// value, e.g. proven against a certified app hash); named by member, or by address.
    pub fn from_registry(chain_id: &str, registry: &ValidatorSet) -> CertTrust {
        let mut entries: Vec<(CertValidator, String)> = registry
            .validators
            .iter()
            .map(|v| {
                let name = if v.member_id.is_empty() {
                    hex::encode_upper(&v.address)
                } else {
                    v.member_id.clone()
                };
                (
                    CertValidator {
                        address: v.address.clone(),
                        bls_key: v.bls_key.clone(),
                        power: v.power,
                    },
                    name,
                )
            })
            .collect();
        entries.sort_by(|a, b| a.0.address.cmp(&b.0.address));
        let names = entries.iter().map(|(_, n)| n.clone()).collect();
        CertTrust {
            chain_id: chain_id.to_string(),
            validators: entries.into_iter().map(|(v, _)| v).collect(),
            names,
        }
    }

    /// Hands trust over a registry change: `cert` certifies the state `c` whose block changed
    /// the registry (it is still signed by this set), and `registry` is the read of
    /// `validators` at `c` with its proof. Returns the trust for certificates of states after `c`.
    pub fn handover(
        &self,
        cert: &Certificate,
        registry: &ProvenRead,
    ) -> Result<CertTrust, HandoverError> {
        let (state, _) = self.verify(cert)?;
        if registry.key != keys::validators() {
            return Err(HandoverError::Proof(
                "the read is not of the `validators` key".into(),
            ));
        }
        let proven = verify(
            &state.app_hash,
            &registry.key,
            registry.value.as_deref(),
            &registry.proof,
        )
        .map_err(|e: VerifyError| HandoverError::Proof(e.to_string()))?;
        let Proven::Present(bytes) = proven else {
            return Err(HandoverError::Proof(
                "the certified state holds no registry".into(),
            ));
        };
        let set = ValidatorSet::decode(bytes.as_slice())
            .map_err(|e| HandoverError::Proof(e.to_string()))?;
        if set.validators.is_empty() {
            return Err(HandoverError::Proof(
                "the certified registry is empty".into(),
            ));
        }
        Ok(CertTrust::from_registry(&self.chain_id, &set))
    }

    /// Verifies `cert`; the names of its signers come with the result.
    pub fn verify(&self, cert: &Certificate) -> Result<(CertifiedState, Vec<String>), CertError> {
        let state = verify_certificate(&self.validators, &self.chain_id, cert)?;
        let names = state
            .signers
            .iter()
            .filter_map(|&i| self.names.get(i).cloned())
            .collect();
        Ok((state, names))
    }
}

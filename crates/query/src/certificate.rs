//! Trusting BLS checkpoint certificates: the validators' BLS keys and powers come from the
//! consortium's genesis file, each key checked with its proof of possession; a certificate is then
//! one aggregate verification (see `medledger_tx::checkpoint` and docs/certificates.md).

use medledger_tx::checkpoint::{certificate_order, verify_certificate, verify_possession, CertError, CertValidator, CertifiedState};
use medledger_tx::pb::Certificate;

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
        let g: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| GenesisError(e.to_string()))?;
        let chain_id = g["chain_id"].as_str().ok_or_else(|| GenesisError("no chain_id".into()))?.to_string();
        let mut entries: Vec<(CertValidator, String)> = Vec::new();
        for v in g["validators"].as_array().ok_or_else(|| GenesisError("no validators".into()))? {
            let address = hex_field(&v["address"], "validator address")?;
            let power: u64 = v["power"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| GenesisError("validator power is not a number".into()))?;
            entries.push((CertValidator { address: address.clone(), bls_key: Vec::new(), power }, hex::encode_upper(&address)));
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
                return Err(GenesisError(format!("member {id}: bls_pop does not prove possession of bls_key")));
            }
            let entry = entries
                .iter_mut()
                .find(|(e, _)| e.address == address)
                .ok_or_else(|| GenesisError(format!("member {id}'s validator is not a genesis validator")))?;
            entry.0.bls_key = bls_key;
            entry.1 = id;
        }
        entries.sort_by(|a, b| a.0.address.cmp(&b.0.address));
        let names = entries.iter().map(|(_, n)| n.clone()).collect();
        let validators = certificate_order(entries.into_iter().map(|(v, _)| v).collect());
        Ok(CertTrust { chain_id, validators, names })
    }

    /// Verifies `cert`; the names of its signers come with the result.
    pub fn verify(&self, cert: &Certificate) -> Result<(CertifiedState, Vec<String>), CertError> {
        let state = verify_certificate(&self.validators, &self.chain_id, cert)?;
        let names = state.signers.iter().filter_map(|&i| self.names.get(i).cloned()).collect();
        Ok((state, names))
    }
}

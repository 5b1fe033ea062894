//! `medledger verify`: answers checked end to end, trusting nothing the node says.
//!
//! 1. read the value(s) and ICS23 proofs at a height H from the node;
//! 2. fetch the signed header H+1 (it carries the app hash of the state after H) and its
//!    validator set; check them with the light-client rules against validators the auditor
//!    trusts (the consortium's genesis file);
//! 3. check every proof against that app hash.

use std::path::Path;

use anyhow::Context;

use medledger_query::history::{verify_access_history, ProvenRead};
use medledger_query::light::{verify_header, HeaderAttestation, TrustedValidators};
use medledger_query::{verify, Proven};
use medledger_tx::keys;
use medledger_tx::pb::AccessEvent;

use crate::client::Client;

/// The trusted validators from a genesis file.
pub fn trusted_from_genesis(path: &Path) -> anyhow::Result<TrustedValidators> {
    let bytes = std::fs::read(path).with_context(|| format!("reading trusted genesis {}", path.display()))?;
    Ok(TrustedValidators::from_genesis_json(&bytes)?)
}

/// A value proven at a height, and who signed the header that commits it.
#[derive(Clone, Debug)]
pub struct VerifiedRead {
    /// The value, or `None` if proven absent.
    pub value: Option<Vec<u8>>,
    /// State height.
    pub height: u64,
    /// The verified header `height + 1`.
    pub attestation: HeaderAttestation,
}

/// Verifies the header that commits the state at `height` and returns its attestation.
pub async fn attest(client: &Client, trusted: &TrustedValidators, height: u64) -> anyhow::Result<HeaderAttestation> {
    let (header, validators) = client.light_block(height + 1).await?;
    verify_header(trusted, &header, &validators).with_context(|| format!("header {} is not signed by the consortium", height + 1))
}

/// Reads `key` (at `height`, 0 = latest) and verifies it end to end.
pub async fn verify_key(client: &Client, trusted: &TrustedValidators, key: &[u8], height: u64) -> anyhow::Result<VerifiedRead> {
    let (read, height) = client.read_with_proof(key, height).await?;
    let attestation = attest(client, trusted, height).await?;
    let proven = verify(&attestation.app_hash, key, read.value.as_deref(), &read.proof)
        .with_context(|| format!("the node's answer for {} does not match the signed app hash", String::from_utf8_lossy(key)))?;
    let value = match proven {
        Proven::Present(v) => Some(v),
        Proven::Absent => None,
    };
    Ok(VerifiedRead { value, height, attestation })
}

/// A patient's complete access history, verified end to end.
pub async fn verify_history(
    client: &Client,
    trusted: &TrustedValidators,
    patient: &str,
    height: u64,
) -> anyhow::Result<(Vec<AccessEvent>, u64, HeaderAttestation)> {
    let (count, height) = client.read_with_proof(&keys::access_count(patient), height).await?;
    let n = count.value.as_deref().and_then(keys::decode_u64).unwrap_or(0);
    // Every index below the count the node claims; the proof of the count keeps it honest.
    if n > medledger_tx::limits::MAX_HISTORY_READ {
        anyhow::bail!("the history has {n} events, more than the {} one command verifies", medledger_tx::limits::MAX_HISTORY_READ);
    }
    let mut events: Vec<ProvenRead> = Vec::new();
    for i in 0..n {
        events.push(client.read_with_proof(&keys::access_event(patient, i), height).await?.0);
    }
    let attestation = attest(client, trusted, height).await?;
    let events = verify_access_history(&attestation.app_hash, patient, &count, &events)
        .context("the node's access history does not match the signed app hash")?;
    Ok((events, height, attestation))
}

/// `signed by 4/4 validators (hospital-a, …)`.
pub fn signed_by(a: &HeaderAttestation) -> String {
    format!(
        "app hash {}, signed by {}/{} validators ({}), {} of {} voting power",
        hex::encode_upper(&a.app_hash),
        a.signers.len(),
        a.validator_count,
        a.signers.join(", "),
        a.signed_power,
        a.total_power
    )
}

//! Identifiers derived by the ledger.

use sha2::{Digest, Sha256};

/// Domain separator for patient ids.
const PATIENT_ID_DOMAIN: &[u8] = b"medledger/patient-id/v1";

/// The pseudonymous id of the patient whose first key is `public_key`: `pt-` and the first
/// 16 bytes of SHA-256(domain || key), in hex. It never changes, even after key rotation.
pub fn patient_id(public_key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(PATIENT_ID_DOMAIN)
        .chain_update(public_key)
        .finalize();
    format!("pt-{}", hex::encode(&digest[..16]))
}

/// Domain separator for practitioner DIDs.
const PRACTITIONER_DID_DOMAIN: &[u8] = b"medledger/practitioner-did/v1";

/// The DID of the practitioner whose key is `public_key`: `did:medledger:` and the first 16 bytes
/// of SHA-256(domain || key), in hex.
pub fn practitioner_did(public_key: &[u8; 32]) -> String {
    let digest = Sha256::new()
        .chain_update(PRACTITIONER_DID_DOMAIN)
        .chain_update(public_key)
        .finalize();
    format!("did:medledger:{}", hex::encode(&digest[..16]))
}

/// The id of the `n`-th consent granted on the ledger (counting from 1).
pub fn consent_id(n: u64) -> String {
    format!("c-{n}")
}

/// SHA-256 of the transaction bytes: the same hash CometBFT uses for `/tx?hash=`.
pub fn tx_hash(tx_bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(tx_bytes).into()
}

/// The CometBFT address of an Ed25519 consensus key: the first 20 bytes of SHA-256(key), the
/// address CometBFT puts in commits, `/validators` and vote extensions.
pub fn validator_address(consensus_key: &[u8; 32]) -> [u8; 20] {
    let digest = Sha256::digest(consensus_key);
    let mut address = [0u8; 20];
    address.copy_from_slice(&digest[..20]);
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_id_is_stable() {
        // Pinned: changing the derivation would orphan every registered patient.
        assert_eq!(
            patient_id(&[7u8; 32]),
            "pt-c23d65e19eaae5729ed4a6c352286542"
        );
        assert_ne!(patient_id(&[7u8; 32]), patient_id(&[8u8; 32]));
    }

    #[test]
    fn validator_address_is_cometbfts() {
        // SHA-256 of 32 zero bytes starts 66687aad…: CometBFT's address of that key.
        assert_eq!(
            hex::encode(validator_address(&[0u8; 32])),
            "66687aadf862bd776c8fc18b8e9f8e2008971485"
        );
    }
}

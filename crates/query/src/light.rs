//! Checking that a header was signed by the consortium, with CometBFT's light-client rules.
//!
//! The auditor starts from a validator set they trust: the consortium's genesis file (which names
//! each validator) or any validator set they obtained out of band. A header is accepted when
//! - its chain id is the trusted chain id,
//! - the validator set served with it hashes to the header's `validators_hash`,
//! - the commit is for this header (block id hash) and every signature in it verifies,
//! - validators holding more than 2/3 of that set's power signed it, and
//! - if that set differs from the trusted one, validators holding at least 1/3 of the *trusted*
//!   power signed it too (CometBFT's skipping verification; sound while fewer than 1/3 of the
//!   trusted power is faulty, the consortium's standing assumption).
//!
//! The predicates come from `tendermint-light-client-verifier`; no clock is read (a permissioned
//! consortium has no unbonding period to expire), so the same inputs always give the same verdict.

use std::collections::BTreeMap;

use tendermint::account;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::CommitSig;
use tendermint::trust_threshold::TrustThresholdFraction;
use tendermint::validator::{Info, Set as ValidatorSet};
use tendermint_light_client_verifier::operations::{
    ProdCommitValidator, ProdVotingPowerCalculator, VotingPowerCalculator,
};
use tendermint_light_client_verifier::predicates::{ProdPredicates, VerificationPredicates};

/// Why a header was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    /// The trusted starting point is unusable.
    #[error("trusted validators: {0}")]
    Trust(String),
    /// The header belongs to another chain.
    #[error("header is for chain {got:?}, trusted chain is {want:?}")]
    ChainId {
        /// Header's chain id.
        got: String,
        /// Trusted chain id.
        want: String,
    },
    /// A light-client check failed.
    #[error("{0}")]
    Invalid(String),
    /// Not enough voting power signed.
    #[error("only {signed} of {total} voting power signed; more than 2/3 is required")]
    NotEnoughPower {
        /// Power that signed.
        signed: u64,
        /// Total power.
        total: u64,
    },
    /// The validator set changed and too little of the trusted set signed.
    #[error("the validator set changed and only {signed} of the trusted {total} power signed; 1/3 is required")]
    NotEnoughTrust {
        /// Trusted power that signed.
        signed: u64,
        /// Total trusted power.
        total: u64,
    },
}

/// A validator set the auditor trusts, with names for reports.
#[derive(Clone, Debug)]
pub struct TrustedValidators {
    /// Chain id.
    pub chain_id: String,
    /// The validators.
    pub validators: ValidatorSet,
    /// Names by address (from genesis), e.g. `hospital-a`.
    pub names: BTreeMap<account::Id, String>,
}

impl TrustedValidators {
    /// The genesis validators of a CometBFT `genesis.json`.
    pub fn from_genesis_json(bytes: &[u8]) -> Result<TrustedValidators, HeaderError> {
        let g: tendermint::Genesis<serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|e| HeaderError::Trust(format!("genesis.json: {e}")))?;
        if g.validators.is_empty() {
            return Err(HeaderError::Trust("genesis names no validators".into()));
        }
        let names = g
            .validators
            .iter()
            .filter_map(|v| Some((v.address, v.name.clone()?)))
            .collect();
        Ok(TrustedValidators {
            chain_id: g.chain_id.to_string(),
            validators: ValidatorSet::without_proposer(g.validators),
            names,
        })
    }
}

/// What a verified header attests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderAttestation {
    /// The header's height.
    pub height: u64,
    /// The app hash in the header: the state root after block `height - 1`.
    pub app_hash: Vec<u8>,
    /// Names (or addresses) of the validators whose signatures verified.
    pub signers: Vec<String>,
    /// Voting power that signed.
    pub signed_power: u64,
    /// Total voting power of the header's validator set.
    pub total_power: u64,
    /// Number of validators in the header's set.
    pub validator_count: usize,
}

fn invalid(e: impl std::fmt::Display) -> HeaderError {
    HeaderError::Invalid(e.to_string())
}

/// Verifies `signed_header`, served with `validators`, against `trusted`.
pub fn verify_header(
    trusted: &TrustedValidators,
    signed_header: &SignedHeader,
    validators: &[Info],
) -> Result<HeaderAttestation, HeaderError> {
    let header = &signed_header.header;
    if header.chain_id.as_str() != trusted.chain_id {
        return Err(HeaderError::ChainId {
            got: header.chain_id.to_string(),
            want: trusted.chain_id.clone(),
        });
    }
    let set = ValidatorSet::without_proposer(validators.to_vec());
    let p = ProdPredicates;
    p.validator_sets_match(&set, header.validators_hash)
        .map_err(invalid)?;
    p.header_matches_commit(header, signed_header.commit.block_id.hash)
        .map_err(invalid)?;
    if signed_header.commit.height != header.height {
        return Err(invalid("commit height differs from header height"));
    }
    p.valid_commit(signed_header, &set, &ProdCommitValidator)
        .map_err(invalid)?;

    // A threshold no tally can pass makes the calculator verify every signature present, so
    // the reported signers all verified (any bad signature fails the whole header).
    let all = TrustThresholdFraction::new(1, 1).map_err(invalid)?;
    let calc = ProdVotingPowerCalculator::default();
    let tally = calc
        .voting_power_in(signed_header, &set, all)
        .map_err(invalid)?;
    if tally.tallied.saturating_mul(3) <= tally.total.saturating_mul(2) {
        return Err(HeaderError::NotEnoughPower {
            signed: tally.tallied,
            total: tally.total,
        });
    }
    if set.hash() != trusted.validators.hash() {
        let t = calc
            .voting_power_in(signed_header, &trusted.validators, all)
            .map_err(invalid)?;
        if t.tallied.saturating_mul(3) < t.total {
            return Err(HeaderError::NotEnoughTrust {
                signed: t.tallied,
                total: t.total,
            });
        }
    }
    let signers = signed_header
        .commit
        .signatures
        .iter()
        .filter_map(|s| match s {
            CommitSig::BlockIdFlagCommit {
                validator_address, ..
            } => Some(
                trusted
                    .names
                    .get(validator_address)
                    .cloned()
                    .unwrap_or_else(|| validator_address.to_string()),
            ),
            _ => None,
        })
        .collect();
    Ok(HeaderAttestation {
        height: header.height.value(),
        app_hash: header.app_hash.as_bytes().to_vec(),
        signers,
        signed_power: tally.tallied,
        total_power: tally.total,
        validator_count: set.validators().len(),
    })
}

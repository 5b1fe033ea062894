//! Checking that a header was signed by the consortium, with CometBFT's light-client rules,
//! exactly as `tendermint-light-client-verifier`'s `ProdVerifier` applies them.
//!
//! The auditor starts from a **trust root**: the consortium's genesis file (its validators, at
//! genesis time, just before the first block) or a header they obtained out of band (its height,
//! time and next validator set). A header is accepted when
//! - its chain id is the trusted chain id,
//! - the validator set served with it hashes to the header's `validators_hash`,
//! - the commit is for this header (block id hash) and every signature in it verifies,
//! - the trust root is still within the **trusting period**: `root time + trusting period > now`
//!   (default [`DEFAULT_TRUSTING_PERIOD`], 168 h, the `cometbft light` default), the header is
//!   later than the root and not from the future (at most [`CLOCK_DRIFT`] ahead of now),
//! - validators holding **more than 2/3** of the header's own set's power signed it, and
//! - unless the header is the one right after the root (whose set the root names), validators
//!   holding **more than 1/3** of the *trusted* set's power signed it too (skipping
//!   verification, trust level 1/3: exactly 1/3 is not enough).
//!
//! Why a trusting period in a permissioned consortium: the 1/3 rule is sound only while fewer than
//! 1/3 of the *trusted* power is faulty. Members leave and their old keys are no longer guarded;
//! an old validator set could then sign a whole invented history (a long-range attack). A root
//! older than the period is refused (`HeaderError::TrustExpired`): take a recent header as the
//! root (its hash from a node you trust, or from the consortium) instead of genesis.
//!
//! `now` is an argument: the library reads no clock, so the same inputs give the same verdict.

use std::time::Duration;

use std::collections::BTreeMap;

use tendermint::account;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::{CommitSig, Height};
use tendermint::trust_threshold::TrustThresholdFraction;
use tendermint::validator::{Info, Set as ValidatorSet};
use tendermint::Time;
use tendermint_light_client_verifier::errors::VerificationErrorDetail;
use tendermint_light_client_verifier::operations::{
    ProdVotingPowerCalculator, VotingPowerCalculator,
};
use tendermint_light_client_verifier::options::Options;
use tendermint_light_client_verifier::types::{TrustedBlockState, UntrustedBlockState};
use tendermint_light_client_verifier::{ProdVerifier, Verdict, Verifier};

/// How long a trust root is trusted when the auditor does not say: 168 hours, the default of
/// `cometbft light --trusting-period`.
pub const DEFAULT_TRUSTING_PERIOD: Duration = Duration::from_secs(168 * 3600);

/// How far a header's time may be ahead of the verifier's clock (CometBFT's light client
/// default `max-clock-drift`, 10 s).
pub const CLOCK_DRIFT: Duration = Duration::from_secs(10);

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
    #[error("the validator set changed and only {signed} of the trusted {total} power signed; more than 1/3 is required")]
    NotEnoughTrust {
        /// Trusted power that signed.
        signed: u64,
        /// Total trusted power.
        total: u64,
    },
    /// The trust root is older than the trusting period.
    #[error("the trust root (height {height}, time {root_time}) expired at {expires_at}, before the verification time {now}: its validators are trusted for {period_hours} h only; start from a recent trusted header (--trust-height/--trust-hash) or, knowingly, a longer --trusting-period")]
    TrustExpired {
        /// Height of the trust root (genesis: initial height - 1).
        height: u64,
        /// Its time.
        root_time: String,
        /// Root time + trusting period.
        expires_at: String,
        /// The verification time.
        now: String,
        /// The trusting period, in hours.
        period_hours: u64,
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
    /// Height of the trust root: the trusted header's height, or the initial height - 1 for
    /// genesis. `validators` sign the block after it.
    pub height: u64,
    /// Time of the trust root: the trusted header's time, or for genesis just before the genesis
    /// time (the first block carries the genesis time itself).
    pub time: Time,
    /// How long after `time` the root may be used.
    pub trusting_period: Duration,
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
        let time = g
            .genesis_time
            .checked_sub(Duration::from_nanos(1))
            .ok_or_else(|| HeaderError::Trust("genesis_time is out of range".into()))?;
        Ok(TrustedValidators {
            chain_id: g.chain_id.to_string(),
            validators: ValidatorSet::without_proposer(g.validators),
            names,
            height: u64::try_from(g.initial_height.saturating_sub(1)).unwrap_or(0),
            time,
            trusting_period: DEFAULT_TRUSTING_PERIOD,
        })
    }

    /// A trusted header as the root: a header the auditor verified out of band (e.g. its hash
    /// from the consortium), with its next validator set (checked against the header).
    pub fn from_trusted_header(
        signed_header: &SignedHeader,
        next_validators: &[Info],
        names: BTreeMap<account::Id, String>,
    ) -> Result<TrustedValidators, HeaderError> {
        let header = &signed_header.header;
        let set = ValidatorSet::without_proposer(next_validators.to_vec());
        if set.hash() != header.next_validators_hash {
            return Err(HeaderError::Trust(format!(
                "the validators served for height {} do not hash to the trusted header's next_validators_hash",
                header.height
            )));
        }
        Ok(TrustedValidators {
            chain_id: header.chain_id.to_string(),
            validators: set,
            names,
            height: header.height.value(),
            time: header.time,
            trusting_period: DEFAULT_TRUSTING_PERIOD,
        })
    }

    /// The same root with another trusting period.
    pub fn with_trusting_period(mut self, period: Duration) -> TrustedValidators {
        self.trusting_period = period;
        self
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

/// Verifies `signed_header`, served with `validators`, against `trusted` at the verification time
/// `now` (the auditor's clock; the library reads none).
pub fn verify_header(
    trusted: &TrustedValidators,
    signed_header: &SignedHeader,
    validators: &[Info],
    now: Time,
) -> Result<HeaderAttestation, HeaderError> {
    let header = &signed_header.header;
    if header.chain_id.as_str() != trusted.chain_id {
        return Err(HeaderError::ChainId {
            got: header.chain_id.to_string(),
            want: trusted.chain_id.clone(),
        });
    }
    if signed_header.commit.height != header.height {
        return Err(invalid("commit height differs from header height"));
    }
    let set = ValidatorSet::without_proposer(validators.to_vec());
    let trusted_height = Height::try_from(trusted.height).map_err(invalid)?;
    let untrusted = UntrustedBlockState {
        signed_header,
        validators: &set,
        next_validators: None,
    };
    let trusted_state = TrustedBlockState {
        chain_id: &header.chain_id,
        header_time: trusted.time,
        height: trusted_height,
        next_validators: &trusted.validators,
        next_validators_hash: trusted.validators.hash(),
    };
    let options = Options {
        trust_threshold: TrustThresholdFraction::ONE_THIRD,
        trusting_period: trusted.trusting_period,
        clock_drift: CLOCK_DRIFT,
    };
    match ProdVerifier::default().verify_update_header(untrusted, trusted_state, &options, now) {
        Verdict::Success => {}
        Verdict::NotEnoughTrust(t) => {
            return Err(HeaderError::NotEnoughTrust {
                signed: t.tallied,
                total: t.total,
            })
        }
        Verdict::Invalid(VerificationErrorDetail::NotWithinTrustPeriod(e)) => {
            return Err(HeaderError::TrustExpired {
                height: trusted.height,
                root_time: trusted.time.to_rfc3339(),
                expires_at: e.expires_at.to_rfc3339(),
                now: e.now.to_rfc3339(),
                period_hours: trusted.trusting_period.as_secs() / 3600,
            })
        }
        Verdict::Invalid(VerificationErrorDetail::InsufficientSignersOverlap(e)) => {
            return Err(HeaderError::NotEnoughPower {
                signed: e.tally.tallied,
                total: e.tally.total,
            })
        }
        Verdict::Invalid(e) => return Err(invalid(e)),
    }

    // For the report: a threshold no tally can pass makes the calculator verify every signature
    // present, so the reported signers all verified (any bad signature fails the whole header).
    let all = TrustThresholdFraction::new(1, 1).map_err(invalid)?;
    let tally = ProdVotingPowerCalculator::default()
        .voting_power_in(signed_header, &set, all)
        .map_err(invalid)?;
    // Defence in depth: the verifier above already required more than 2/3.
    if tally.tallied.saturating_mul(3) <= tally.total.saturating_mul(2) {
        return Err(HeaderError::NotEnoughPower {
            signed: tally.tallied,
            total: tally.total,
        });
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

//! CometBFT's light-client rules in `verify_header` (issue 11, item 9): skipping verification
//! needs *more than* 1/3 of the trusted power, the header more than 2/3 of its own set, and the
//! trust root must be within the trusting period of the verification time. Headers here are
//! built and signed in the test (CometBFT's canonical precommit sign bytes).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey};
use medledger_query::light::{
    verify_header, HeaderError, TrustedValidators, DEFAULT_TRUSTING_PERIOD,
};
use tendermint::block::header::Version;
use tendermint::block::signed_header::SignedHeader;
use tendermint::block::{self, Commit, CommitSig, Header, Height, Round};
use tendermint::validator::{Info, Set};
use tendermint::vote::{Type, ValidatorIndex, Vote};
use tendermint::{account, chain, AppHash, Hash, PublicKey, Signature, Time};

const CHAIN: &str = "light-test";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn info(seed: u8, power: u64) -> Info {
    let pk = PublicKey::from_raw_ed25519(&key(seed).verifying_key().to_bytes()).unwrap();
    Info::new(pk, power.try_into().unwrap())
}

fn address(seed: u8) -> account::Id {
    info(seed, 1).address
}

/// `(seed, power)` validators as a set.
fn set(vals: &[(u8, u64)]) -> Vec<Info> {
    vals.iter().map(|&(s, p)| info(s, p)).collect()
}

fn time(secs: i64) -> Time {
    Time::from_unix_timestamp(1_700_000_000 + secs, 0).unwrap()
}

/// Header `height` at `secs`, of validator set `vals` (also the next set), signed by `signers`
/// (seeds) of that set.
fn signed(height: u64, secs: i64, vals: &[(u8, u64)], signers: &[u8]) -> (SignedHeader, Vec<Info>) {
    let infos = set(vals);
    let set_hash = Set::without_proposer(infos.clone()).hash();
    let header = Header {
        version: Version { block: 11, app: 1 },
        chain_id: CHAIN.parse().unwrap(),
        height: Height::try_from(height).unwrap(),
        time: time(secs),
        last_block_id: None,
        last_commit_hash: None,
        data_hash: None,
        validators_hash: set_hash,
        next_validators_hash: set_hash,
        consensus_hash: Hash::None,
        app_hash: AppHash::try_from(vec![height as u8; 32]).unwrap(),
        last_results_hash: None,
        evidence_hash: None,
        proposer_address: infos[0].address,
    };
    let block_id = block::Id {
        hash: header.hash(),
        part_set_header: Default::default(),
    };
    let chain_id: chain::Id = CHAIN.parse().unwrap();
    let ordered = Set::without_proposer(infos.clone());
    let signatures = ordered
        .validators()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let Some(&seed) = signers.iter().find(|&&s| address(s) == v.address) else {
                return CommitSig::BlockIdFlagAbsent;
            };
            let vote = Vote {
                vote_type: Type::Precommit,
                height: header.height,
                round: Round::default(),
                block_id: Some(block_id),
                timestamp: Some(header.time),
                validator_address: v.address,
                validator_index: ValidatorIndex::try_from(i).unwrap(),
                signature: None,
                extension: vec![],
                extension_signature: None,
            };
            let bytes = vote.into_signable_vec(chain_id.clone());
            let sig = key(seed).sign(&bytes).to_bytes();
            CommitSig::BlockIdFlagCommit {
                validator_address: v.address,
                timestamp: header.time,
                signature: Signature::new(sig).unwrap(),
            }
        })
        .collect();
    let commit = Commit {
        height: header.height,
        round: Round::default(),
        block_id,
        signatures,
    };
    (SignedHeader::new(header, commit).unwrap(), infos)
}

/// A trust root: `vals` trusted at height 1, time 0 (as from a trusted header 1).
fn root(vals: &[(u8, u64)]) -> TrustedValidators {
    TrustedValidators {
        chain_id: CHAIN.into(),
        validators: Set::without_proposer(set(vals)),
        names: BTreeMap::new(),
        height: 1,
        time: time(0),
        trusting_period: DEFAULT_TRUSTING_PERIOD,
    }
}

/// An hour after the root: well within the trusting period.
fn soon() -> Time {
    time(3600)
}

#[test]
fn the_default_trusting_period_is_cometbfts_168_hours() {
    assert_eq!(DEFAULT_TRUSTING_PERIOD, Duration::from_secs(168 * 3600));
}

/// The review's case: the trusted set A, B, C (10 each); a new set in which only A of the trusted
/// validators signs: exactly 1/3 of the trusted power. CometBFT requires more than 1/3.
#[test]
fn exactly_one_third_of_the_trusted_power_is_refused() {
    let trusted = root(&[(1, 10), (2, 10), (3, 10)]);
    let (h, vals) = signed(10, 60, &[(1, 10), (4, 10), (5, 10)], &[1, 4, 5]);
    assert_eq!(
        verify_header(&trusted, &h, &vals, soon()),
        Err(HeaderError::NotEnoughTrust {
            signed: 10,
            total: 30
        })
    );
}

#[test]
fn just_over_one_third_of_the_trusted_power_passes() {
    let trusted = root(&[(1, 11), (2, 10), (3, 10)]);
    let (h, vals) = signed(10, 60, &[(1, 11), (4, 10), (5, 10)], &[1, 4, 5]);
    let a = verify_header(&trusted, &h, &vals, soon()).unwrap();
    assert_eq!((a.height, a.signed_power, a.total_power), (10, 31, 31));
}

#[test]
fn the_header_needs_more_than_two_thirds_of_its_own_set() {
    let trusted = root(&[(1, 10), (2, 10), (3, 10)]);
    // Exactly 2/3 of its own set (and of the trusted set) is not enough.
    let (h, vals) = signed(10, 60, &[(1, 10), (2, 10), (3, 10)], &[1, 2]);
    assert_eq!(
        verify_header(&trusted, &h, &vals, soon()),
        Err(HeaderError::NotEnoughPower {
            signed: 20,
            total: 30
        })
    );
    let (h, vals) = signed(10, 60, &[(1, 10), (2, 10), (3, 11)], &[1, 3]);
    let trusted = root(&[(1, 10), (2, 10), (3, 11)]);
    assert!(verify_header(&trusted, &h, &vals, soon()).is_ok());
}

#[test]
fn an_expired_trust_root_is_refused_with_a_clear_message() {
    let trusted = root(&[(1, 10), (2, 10), (3, 10)]);
    let (h, vals) = signed(10, 60, &[(1, 10), (2, 10), (3, 10)], &[1, 2, 3]);
    let period = DEFAULT_TRUSTING_PERIOD.as_secs() as i64;
    // One second before expiry: accepted. At expiry: refused.
    assert!(verify_header(&trusted, &h, &vals, time(period - 1)).is_ok());
    let err = verify_header(&trusted, &h, &vals, time(period)).unwrap_err();
    assert!(matches!(err, HeaderError::TrustExpired { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("expired") && msg.contains("168 h") && msg.contains("--trust-height"),
        "{msg}"
    );
    // The auditor may choose a longer period, knowingly.
    let longer = trusted.with_trusting_period(Duration::from_secs(30 * 86_400));
    assert!(verify_header(&longer, &h, &vals, time(period)).is_ok());
}

/// A long-range attack: the genesis validators (1, 2, 3) were all replaced by governance by
/// (4, 5, 6); years later their old keys leak and they sign an invented header whose set is
/// their own. From the expired genesis root the auditor refuses it; from a recent trusted
/// header (the new set) it lacks more than 1/3 of the trusted power.
#[test]
fn an_old_validator_set_cannot_forge_a_history_the_auditor_accepts() {
    let old = [(1, 10), (2, 10), (3, 10)];
    let new = [(4, 10), (5, 10), (6, 10)];
    let year = 365 * 86_400;
    let (forged, vals) = signed(900_000, year, &old, &[1, 2, 3]);
    let genesis = root(&old);
    assert!(matches!(
        verify_header(&genesis, &forged, &vals, time(year + 60)),
        Err(HeaderError::TrustExpired { .. })
    ));
    // The auditor's recent root: a header at height 800,000, a day old, of the new set.
    let (recent, recent_vals) = signed(800_000, year - 86_400, &new, &[4, 5, 6]);
    let recent_root =
        TrustedValidators::from_trusted_header(&recent, &recent_vals, BTreeMap::new()).unwrap();
    assert_eq!(recent_root.height, 800_000);
    assert_eq!(
        verify_header(&recent_root, &forged, &vals, time(year + 60)),
        Err(HeaderError::NotEnoughTrust {
            signed: 0,
            total: 30
        })
    );
    // While the real chain's next header verifies.
    let (real, real_vals) = signed(900_000, year, &new, &[4, 5, 6]);
    assert!(verify_header(&recent_root, &real, &real_vals, time(year + 60)).is_ok());
    // A root whose served validators do not match its header is refused.
    assert!(matches!(
        TrustedValidators::from_trusted_header(&recent, &vals, BTreeMap::new()),
        Err(HeaderError::Trust(_))
    ));
}

#[test]
fn headers_at_or_below_the_root_or_from_the_future_are_refused() {
    let trusted = root(&[(1, 10), (2, 10), (3, 10)]);
    let (h, vals) = signed(1, 60, &[(1, 10), (2, 10), (3, 10)], &[1, 2, 3]);
    assert!(matches!(
        verify_header(&trusted, &h, &vals, soon()),
        Err(HeaderError::Invalid(_))
    ));
    let (h, vals) = signed(10, 7200, &[(1, 10), (2, 10), (3, 10)], &[1, 2, 3]);
    assert!(matches!(
        verify_header(&trusted, &h, &vals, soon()),
        Err(HeaderError::Invalid(_))
    ));
}

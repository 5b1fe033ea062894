//! The genesis `app_state`: the consortium's founding members.
//!
//! ```json
//! { "members": [ { "id": "hospital-a", "name": "Hospital A", "kind": "hospital",
//!                  "admin_key": "<64 hex chars: Ed25519 public key>",
//!                  "validator": { "address": "<40 hex: CometBFT validator address>",
//!                                 "bls_key": "<96 hex: BLS12-381 G1 key>",
//!                                 "bls_pop": "<192 hex: proof of possession>" } } ] }
//! ```
//! `validator` is optional (a member need not run a validator). Each one must be a validator of
//! the genesis validator set (its power comes from there) and prove possession of its BLS key.
//! Optional parameters beside `members`: `guardian_change_delay_secs` (a number) and
//! `custody` (`{"holders": 3, "threshold": 2}`, threshold custody; see [`GenesisCustody`]) and
//! `web_release` (`{"bundle_sha256": "<64 hex>", "version": "v1"}`, the approved release of the
//! pages; see [`GenesisWebRelease`]).

use std::collections::BTreeSet;

use medledger_tx::check::check_id;
use medledger_tx::checkpoint;
use medledger_tx::keys;
use medledger_tx::pb::{
    key_owner::Owner, Custody, KeyOwner, Member, MemberKind, Validator, ValidatorSet, WebRelease,
};
use medledger_tx::rules::{custody, web_release};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::store::WriteSet;

/// Most members at genesis.
pub const MAX_GENESIS_MEMBERS: usize = 256;

/// The genesis app_state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AppState {
    /// Founding members.
    pub members: Vec<GenesisMember>,
    /// Seconds of block time a guardian-set change or key rotation signed by a patient's key
    /// waits before it takes effect, while the patient has guardians (who can recover the
    /// patient meanwhile, cancelling it). Absent: 48 hours
    /// ([`keys::DEFAULT_GUARDIAN_CHANGE_DELAY_SECS`]). Stored at `params/guardian-change-delay`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardian_change_delay_secs: Option<u64>,
    /// Threshold custody of records (docs/rules.md, "Threshold custody"), stored at
    /// `params/custody`. Absent (or both 0): off, each record is held by its custodian alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<GenesisCustody>,
    /// The approved release of the patient and auditor pages (docs/privacy.md, "Code trust"),
    /// stored at `params/web-release`. Absent: none approved until a SetWebRelease passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_release: Option<GenesisWebRelease>,
}

/// The genesis release of the pages: its release hash (64 hex characters, what
/// `medledger web hash` prints) and a label of 1 to 32 characters of `A-Z a-z 0-9 . _ -`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenesisWebRelease {
    /// The release hash, hex.
    pub bundle_sha256: String,
    /// The release's label.
    pub version: String,
}

/// Genesis threshold custody: how many member gateways hold each record and how many of their
/// shares rebuild its data key. `2 <= threshold <= holders <= MAX_HOLDERS` (7), or both 0 (off).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenesisCustody {
    /// Member gateways that hold each record, the custodian's included.
    pub holders: u32,
    /// Shares that rebuild a record's data key.
    pub threshold: u32,
}

/// A founding member.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenesisMember {
    /// Short id, e.g. `hospital-a`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `hospital`, `lab`, `insurer`, `research` or `regulator`.
    pub kind: String,
    /// Hex Ed25519 public key of the member's admin.
    pub admin_key: String,
    /// The member's validator, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<GenesisValidator>,
}

/// A member's validator at genesis.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GenesisValidator {
    /// CometBFT validator address, hex.
    pub address: String,
    /// Compressed BLS12-381 public key, hex (96 chars).
    pub bls_key: String,
    /// BLS proof of possession of that key, hex (192 chars).
    pub bls_pop: String,
}

/// Parses a member kind.
pub fn member_kind(kind: &str) -> Option<MemberKind> {
    Some(match kind {
        "hospital" => MemberKind::Hospital,
        "lab" => MemberKind::Lab,
        "insurer" => MemberKind::Insurer,
        "research" => MemberKind::Research,
        "regulator" => MemberKind::Regulator,
        _ => return None,
    })
}

/// A genesis validator as InitChain names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenesisPower {
    /// CometBFT address.
    pub address: [u8; 20],
    /// Ed25519 consensus key, when known: governance needs it to send validator updates.
    pub pub_key: Option<[u8; 32]>,
    /// Voting power.
    pub power: u64,
}

/// Validates `app_state` JSON against the genesis validator set (`(address, power)` from
/// InitChain) and returns the writes of genesis. The registry then holds no consensus keys, so
/// governance cannot change those validators; see [`genesis_writes_with_keys`].
pub fn genesis_writes(
    app_state: &[u8],
    validators: &[([u8; 20], u64)],
) -> Result<WriteSet, StoreError> {
    let validators: Vec<GenesisPower> = validators
        .iter()
        .map(|(address, power)| GenesisPower {
            address: *address,
            pub_key: None,
            power: *power,
        })
        .collect();
    genesis_writes_with_keys(app_state, &validators)
}

/// [`genesis_writes`] with the validators' consensus keys, which go into the registry.
pub fn genesis_writes_with_keys(
    app_state: &[u8],
    validators: &[GenesisPower],
) -> Result<WriteSet, StoreError> {
    let state = parse_app_state(app_state)?;
    let mut writes = WriteSet::new();
    let delay = state
        .guardian_change_delay_secs
        .unwrap_or(keys::DEFAULT_GUARDIAN_CHANGE_DELAY_SECS);
    writes.insert(keys::guardian_change_delay(), Some(keys::encode_u64(delay)));
    if let Some(c) = state.custody {
        write_custody(&mut writes, c)?;
    }
    if let Some(w) = &state.web_release {
        write_web_release(&mut writes, w)?;
    }
    let registered = write_members(&mut writes, &state.members, validators)?;
    let set = validator_set(registered, validators)?;
    writes.insert(
        keys::validators(),
        Some(prost::Message::encode_to_vec(&set)),
    );
    Ok(writes)
}

/// The app_state JSON (empty: no members, every parameter at its default), at most
/// [`MAX_GENESIS_MEMBERS`] members.
fn parse_app_state(app_state: &[u8]) -> Result<AppState, StoreError> {
    let state: AppState = if app_state.is_empty() {
        AppState {
            members: Vec::new(),
            guardian_change_delay_secs: None,
            custody: None,
            web_release: None,
        }
    } else {
        serde_json::from_slice(app_state)
            .map_err(|e| StoreError::Genesis(format!("app_state: {e}")))?
    };
    if state.members.len() > MAX_GENESIS_MEMBERS {
        return Err(StoreError::Genesis(format!(
            "more than {MAX_GENESIS_MEMBERS} members"
        )));
    }
    Ok(state)
}

/// `params/custody`, checked; nothing when custody is off.
fn write_custody(writes: &mut WriteSet, c: GenesisCustody) -> Result<(), StoreError> {
    custody::check_custody(c.holders, c.threshold)
        .map_err(|e| StoreError::Genesis(format!("custody: {}", e.message)))?;
    // Off is the key's absence, whether by genesis or by governance.
    if c.holders != 0 {
        let value = Custody {
            holders: c.holders,
            threshold: c.threshold,
        };
        writes.insert(keys::custody(), Some(prost::Message::encode_to_vec(&value)));
    }
    Ok(())
}

/// `params/web-release`, checked, approved at height 0 by no proposal.
fn write_web_release(writes: &mut WriteSet, w: &GenesisWebRelease) -> Result<(), StoreError> {
    let hash = hex::decode(&w.bundle_sha256).map_err(|_| {
        StoreError::Genesis("web_release: bundle_sha256 must be 64 hex characters".into())
    })?;
    web_release::check_release(&hash, &w.version)
        .map_err(|e| StoreError::Genesis(format!("web_release: {}", e.message)))?;
    let value = WebRelease {
        bundle_sha256: hash,
        version: w.version.clone(),
        height: 0,
        proposal_id: 0,
    };
    writes.insert(
        keys::web_release(),
        Some(prost::Message::encode_to_vec(&value)),
    );
    Ok(())
}

/// Each founding member and its admin key's owner, checked in order; returns the validators
/// the members claim.
fn write_members(
    writes: &mut WriteSet,
    members: &[GenesisMember],
    validators: &[GenesisPower],
) -> Result<Vec<Validator>, StoreError> {
    let mut ids = BTreeSet::new();
    let mut admin_keys = BTreeSet::new();
    let mut registered: Vec<Validator> = Vec::new();
    for m in members {
        let bad = |why: String| StoreError::Genesis(format!("member {:?}: {why}", m.id));
        let bad = &bad;
        check_id("id", &m.id).map_err(|e| bad(e.message))?;
        let kind = member_kind(&m.kind).ok_or_else(|| bad(format!("unknown kind {:?}", m.kind)))?;
        let key: [u8; 32] = hex::decode(&m.admin_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad("admin_key must be 64 hex characters".into()))?;
        if !ids.insert(m.id.clone()) || !admin_keys.insert(key) {
            return Err(bad("duplicate id or admin key".into()));
        }
        let member = Member {
            id: m.id.clone(),
            name: m.name.clone(),
            kind: kind as i32,
            admin_key: key.to_vec(),
        };
        writes.insert(
            keys::member(&m.id),
            Some(prost::Message::encode_to_vec(&member)),
        );
        let owner = KeyOwner {
            owner: Some(Owner::MemberId(m.id.clone())),
        };
        writes.insert(
            keys::key_owner(&key),
            Some(prost::Message::encode_to_vec(&owner)),
        );
        if let Some(v) = &m.validator {
            registered.push(genesis_validator(&m.id, v, validators).map_err(bad)?);
        }
    }
    Ok(registered)
}

/// The registry: the members' validators and every genesis validator no member claims, by
/// address; two members may not claim the same one.
fn validator_set(
    mut registered: Vec<Validator>,
    validators: &[GenesisPower],
) -> Result<ValidatorSet, StoreError> {
    // Validators no member claims still count towards the total power of certificates.
    for g in validators {
        if !registered.iter().any(|v| v.address == g.address) {
            registered.push(Validator {
                address: g.address.to_vec(),
                member_id: String::new(),
                bls_key: Vec::new(),
                power: g.power,
                pub_key: g.pub_key.map(|k| k.to_vec()).unwrap_or_default(),
            });
        }
    }
    registered.sort_by(|a, b| a.address.cmp(&b.address));
    if registered.windows(2).any(|w| w[0].address == w[1].address) {
        return Err(StoreError::Genesis(
            "two members claim the same validator".into(),
        ));
    }
    Ok(ValidatorSet {
        validators: registered,
    })
}

fn genesis_validator(
    member: &str,
    v: &GenesisValidator,
    validators: &[GenesisPower],
) -> Result<Validator, String> {
    let address: [u8; 20] = hex::decode(&v.address)
        .ok()
        .and_then(|a| a.try_into().ok())
        .ok_or("validator.address must be 40 hex characters")?;
    let genesis = validators
        .iter()
        .find(|g| g.address == address)
        .ok_or_else(|| {
            format!(
                "validator {} is not in the genesis validator set",
                v.address
            )
        })?;
    let bls_key = hex::decode(&v.bls_key).map_err(|_| "validator.bls_key is not hex")?;
    let pop = hex::decode(&v.bls_pop).map_err(|_| "validator.bls_pop is not hex")?;
    if !checkpoint::verify_possession(&bls_key, &pop) {
        return Err(format!(
            "member {member}: bls_pop does not prove possession of bls_key"
        ));
    }
    Ok(Validator {
        address: address.to_vec(),
        member_id: member.to_string(),
        bls_key,
        power: genesis.power,
        pub_key: genesis.pub_key.map(|k| k.to_vec()).unwrap_or_default(),
    })
}

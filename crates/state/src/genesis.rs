//! The genesis `app_state`: the consortium's founding members.
//!
//! ```json
//! { "members": [ { "id": "hospital-a", "name": "Hospital A", "kind": "hospital",
//!                  "admin_key": "<64 hex chars: Ed25519 public key>" } ] }
//! ```

use std::collections::BTreeSet;

use medledger_tx::check::check_id;
use medledger_tx::pb::{key_owner::Owner, KeyOwner, Member, MemberKind};
use medledger_tx::keys;
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

/// Validates `app_state` JSON and returns the writes of genesis.
pub fn genesis_writes(app_state: &[u8]) -> Result<WriteSet, StoreError> {
    let state: AppState = if app_state.is_empty() {
        AppState { members: Vec::new() }
    } else {
        serde_json::from_slice(app_state).map_err(|e| StoreError::Genesis(format!("app_state: {e}")))?
    };
    if state.members.len() > MAX_GENESIS_MEMBERS {
        return Err(StoreError::Genesis(format!("more than {MAX_GENESIS_MEMBERS} members")));
    }
    let mut writes = WriteSet::new();
    let mut ids = BTreeSet::new();
    let mut admin_keys = BTreeSet::new();
    for m in &state.members {
        let bad = |why: String| StoreError::Genesis(format!("member {:?}: {why}", m.id));
        check_id("id", &m.id).map_err(|e| bad(e.message))?;
        let kind = member_kind(&m.kind).ok_or_else(|| bad(format!("unknown kind {:?}", m.kind)))?;
        let key: [u8; 32] = hex::decode(&m.admin_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| bad("admin_key must be 64 hex characters".into()))?;
        if !ids.insert(m.id.clone()) || !admin_keys.insert(key) {
            return Err(bad("duplicate id or admin key".into()));
        }
        let member = Member { id: m.id.clone(), name: m.name.clone(), kind: kind as i32, admin_key: key.to_vec() };
        writes.insert(keys::member(&m.id), Some(prost::Message::encode_to_vec(&member)));
        let owner = KeyOwner { owner: Some(Owner::MemberId(m.id.clone())) };
        writes.insert(keys::key_owner(&key), Some(prost::Message::encode_to_vec(&owner)));
    }
    Ok(writes)
}

//! Upgrades of the state machine's rules, scheduled by governance (`ScheduleUpgrade`).
//!
//! Every chain starts at app version 1. A passed `ScheduleUpgrade { height, app_version }`
//! stores an [`UpgradePlan`]; the block at `height` then starts by migrating the state from the
//! current version to `app_version` and records it (`app-version`), before its first tx. A
//! node whose binary does not know that version stops before executing the block (the ABCI
//! server returns an error, CometBFT halts) instead of applying old rules and diverging; the
//! operator installs the new release and restarts, and CometBFT replays the block into it.
//! Each version's migration is a function here, deterministic like every handler.

use medledger_tx::keys;
use medledger_tx::pb::UpgradePlan;

use crate::domain::{BlockCtx, Event};
use crate::error::StoreError;
use crate::view::{BlockState, StateRead};

/// The highest app version this release of medledger runs.
pub const SUPPORTED: u64 = 2;

/// The app version of `view`'s state.
pub fn app_version(view: &impl StateRead) -> Result<u64, StoreError> {
    Ok(view.get_u64(&keys::app_version())?.max(1))
}

/// The highest version this process runs: [`SUPPORTED`], or, in a build with the
/// `fault-injection` feature, `$MEDLEDGER_PRETEND_APP_VERSION` when set (the upgrade test runs
/// one node as if it were the previous release).
pub fn supported() -> u64 {
    #[cfg(feature = "fault-injection")]
    if let Some(v) = std::env::var("MEDLEDGER_PRETEND_APP_VERSION")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return v;
    }
    SUPPORTED
}

/// An upgrade applied by a block.
#[derive(Debug)]
pub struct Applied {
    /// The app version the chain runs from this block on.
    pub app_version: u64,
    /// `medledger.upgrade.applied`.
    pub event: Event,
}

/// Applies the upgrade planned for this block, if any: migrates the state one version at a
/// time and deletes the plan. `Err(StoreError::UpgradeNeeded)` when this release does not know
/// the planned version: the node must stop before this block.
pub fn apply_due(
    block: &mut BlockState<'_>,
    ctx: &BlockCtx,
) -> Result<Option<Applied>, StoreError> {
    let Some(plan) = block.get_msg::<UpgradePlan>(&keys::upgrade_plan())? else {
        return Ok(None);
    };
    if plan.height != ctx.height {
        return Ok(None);
    }
    if plan.app_version > supported() {
        return Err(StoreError::UpgradeNeeded {
            name: plan.name,
            height: plan.height,
            app_version: plan.app_version,
            supported: supported(),
        });
    }
    let mut version = app_version(block)?;
    while version < plan.app_version {
        migrate(block, version + 1)?;
        version += 1;
    }
    block.put_u64(keys::app_version(), version);
    block.delete(keys::upgrade_plan());
    Ok(Some(Applied {
        app_version: version,
        event: Event::new(
            "medledger.upgrade.applied",
            vec![
                ("name", plan.name),
                ("app_version", version.to_string()),
                ("proposal_id", plan.proposal_id.to_string()),
            ],
        ),
    }))
}

/// The migration into version `to`.
fn migrate(_block: &mut BlockState<'_>, to: u64) -> Result<(), StoreError> {
    match to {
        // Version 2 changes no stored value: it is the first version recorded in state
        // (`app-version`), so every rule added from now on can ask which version the chain runs.
        2 => Ok(()),
        _ => Err(StoreError::Tree(format!(
            "no migration into app version {to}"
        ))),
    }
}

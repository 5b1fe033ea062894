//! Crash points for the fault suite (`tests/faults.rs`), compiled only with the
//! `fault-injection` feature. Without it every [`crash_point`] is an empty inline function.
//!
//! A node started with `MEDLEDGER_CRASH_AT=<point>:<height>` aborts (SIGABRT, no unwinding, no
//! destructors: as abrupt as `kill -9`) the first time it reaches `<point>` at a block height of
//! at least `<height>`. The points, in the order a block goes through them:
//!
//! | point | where | what a restart must do |
//! |---|---|---|
//! | `finalize-block` | FinalizeBlock computed the new root, nothing written | re-execute the block |
//! | `commit-before-write` | Commit started, the WriteBatch not yet written | re-execute the block |
//! | `commit-after-write` | the WriteBatch is durable, CometBFT not yet told | report the new height in Info; CometBFT replays nothing to the app |
//!
//! A crash *inside* the write is RocksDB's problem, and it guarantees a WriteBatch lands whole
//! or not at all (its WAL record is one unit), so the two `commit-*` points bracket it.

/// The environment variable that arms a crash point.
pub const CRASH_AT_ENV: &str = "MEDLEDGER_CRASH_AT";

/// Every crash point, by name.
pub const POINTS: [&str; 3] = [
    "finalize-block",
    "commit-before-write",
    "commit-after-write",
];

#[cfg(feature = "fault-injection")]
mod armed {
    use std::sync::OnceLock;

    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();

    /// The armed point, parsed once from the environment.
    pub fn armed() -> Option<&'static (String, u64)> {
        ARMED
            .get_or_init(|| {
                let spec = std::env::var(super::CRASH_AT_ENV).ok()?;
                let (point, height) = spec.split_once(':')?;
                let height = height.parse().ok()?;
                super::POINTS
                    .contains(&point)
                    .then(|| (point.to_string(), height))
            })
            .as_ref()
    }
}

/// The armed crash point, if this build has fault injection and the environment arms one; a
/// node logs it at start so a test can tell the hook is really there.
pub fn armed() -> Option<(&'static str, u64)> {
    #[cfg(feature = "fault-injection")]
    {
        armed::armed().map(|(p, h)| (p.as_str(), *h))
    }
    #[cfg(not(feature = "fault-injection"))]
    {
        None
    }
}

/// Aborts the process if `point` is armed for `height` (see the module docs).
#[inline]
pub fn crash_point(point: &'static str, height: u64) {
    #[cfg(feature = "fault-injection")]
    if let Some((p, h)) = armed::armed() {
        if p == point && height >= *h {
            tracing::error!(point, height, "fault injection: crashing here");
            std::process::abort();
        }
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = (point, height);
}

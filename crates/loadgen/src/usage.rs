//! CPU and memory of the nodes' processes (and of the generator) over the sending window,
//! read with `procfs` from `/proc/<pid>/stat` and `/proc/<pid>/status`, and the size of a
//! node's state directory.

use std::time::Duration;

use serde::Serialize;

use crate::config::Target;
use crate::report::ms;

/// CPU and memory of one process over the sending window.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ProcUsage {
    /// The PID.
    pub pid: u32,
    /// CPU time (user + system) over wall time, in millicores: 1000 = one core all the time.
    pub cpu_millicores: u64,
    /// Resident memory at the end of sending (VmRSS), KiB.
    pub rss_kib: u64,
    /// Peak resident memory over the process's life (VmHWM), KiB.
    pub peak_rss_kib: u64,
}

/// CPU and memory of one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodeUsage {
    /// Node name.
    pub name: String,
    /// CometBFT.
    pub cometbft: Option<ProcUsage>,
    /// The medledger app (none for kvstore).
    pub app: Option<ProcUsage>,
}

impl NodeUsage {
    /// CometBFT plus app, millicores.
    pub fn cpu_millicores(&self) -> u64 {
        self.cometbft.map_or(0, |p| p.cpu_millicores) + self.app.map_or(0, |p| p.cpu_millicores)
    }
    /// CometBFT plus app, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.cometbft.map_or(0, |p| p.rss_kib) + self.app.map_or(0, |p| p.rss_kib)
    }
}

/// Bytes of the files under `dir` (0 when it cannot be read).
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// One process's CPU clock ticks at one instant (`None` when it could not be read).
#[derive(Clone, Copy, Default)]
pub(crate) struct Sample {
    ticks: Option<u64>,
}

/// CometBFT's and the app's CPU ticks, per node of `target`.
pub(crate) fn sample_usage(target: &Target) -> Vec<(Sample, Sample)> {
    let s = |pid: Option<u32>| Sample {
        ticks: pid.and_then(cpu_ticks),
    };
    target
        .nodes
        .iter()
        .map(|n| (s(n.cometbft), s(n.app)))
        .collect()
}

/// Per node: CPU between the samples `before` and `after`, over `window`, and memory now.
pub(crate) fn usage(
    target: &Target,
    before: &[(Sample, Sample)],
    after: &[(Sample, Sample)],
    window: Duration,
) -> Vec<NodeUsage> {
    let one = |pid: Option<u32>, b: Sample, a: Sample| -> Option<ProcUsage> {
        let pid = pid?;
        let (rss, peak) = rss_kib(pid);
        Some(ProcUsage {
            pid,
            cpu_millicores: millicores(b.ticks, a.ticks, window),
            rss_kib: rss.unwrap_or(0),
            peak_rss_kib: peak.unwrap_or(0),
        })
    };
    target
        .nodes
        .iter()
        .zip(before.iter().zip(after))
        .map(|(n, (b, a))| NodeUsage {
            name: n.name.clone(),
            cometbft: one(n.cometbft, b.0, a.0),
            app: one(n.app, b.1, a.1),
        })
        .collect()
}

/// utime + stime of `pid`, in clock ticks (procfs).
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = procfs::process::Process::new(i32::try_from(pid).ok()?)
        .ok()?
        .stat()
        .ok()?;
    Some(stat.utime + stat.stime)
}

/// Resident and peak resident memory of `pid`, in KiB (`VmRSS`, `VmHWM` of its status).
fn rss_kib(pid: u32) -> (Option<u64>, Option<u64>) {
    let status = i32::try_from(pid)
        .ok()
        .and_then(|p| procfs::process::Process::new(p).ok())
        .and_then(|p| p.status().ok());
    match status {
        Some(s) => (s.vmrss, s.vmhwm),
        None => (None, None),
    }
}

/// Clock ticks per second.
fn clk_tck() -> u64 {
    procfs::ticks_per_second().max(1)
}

/// CPU between two tick readings over `window`, in millicores (0 when either is missing).
pub(crate) fn millicores(before: Option<u64>, after: Option<u64>, window: Duration) -> u64 {
    let (Some(b), Some(a)) = (before, after) else {
        return 0;
    };
    let cpu_ms = a.saturating_sub(b).saturating_mul(1000) / clk_tck();
    cpu_ms.saturating_mul(1000) / ms(window).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_memory_of_this_process_are_read() {
        let me = std::process::id();
        assert!(cpu_ticks(me).is_some());
        let (rss, peak) = rss_kib(me);
        assert!(rss.unwrap_or(0) > 0 && peak.unwrap_or(0) >= rss.unwrap_or(0));
        assert!(clk_tck() >= 1);
    }
}

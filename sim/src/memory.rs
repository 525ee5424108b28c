//! Where memory and CPU go: resident memory and process CPU time sampled at the phase
//! boundaries of a run (all seeds started, join phase over, end), read from `/proc/self`.
//!
//! These figures depend on the machine and are not part of the deterministic report
//! ([`Report::deterministic_part`](crate::Report::deterministic_part) zeroes them). The
//! differences between samples attribute memory to phases: "after start" holds every seed's
//! task, socket, store and empty routing table plus turmoil-net's per-host state; the join
//! phase adds the routing tables; the workload adds the stored values (k replicas each).

use serde::{Deserialize, Serialize};

/// Memory and CPU samples of one run (MiB, seconds). Zero where `/proc` is unavailable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    /// Resident memory once every initial seed is started, before any joins.
    pub rss_after_start_mib: f64,
    /// Resident memory at the end of the join phase (routing tables filled).
    pub rss_after_join_mib: f64,
    /// Resident memory at the end of the run, before the seeds are stopped.
    pub rss_at_end_mib: f64,
    /// Process CPU time (user + system) at the end of the join phase.
    pub cpu_join_seconds: f64,
    /// Process CPU time (user + system) at the end of the run.
    pub cpu_seconds: f64,
    /// Replicas of values held at the end (sum over seeds of values held).
    pub replicas_held: u64,
    /// Bytes of value text in those replicas.
    pub replica_bytes: u64,
}

/// The process's resident memory now (VmRSS), MiB.
pub fn rss_mib() -> f64 {
    status_kib("VmRSS:") / 1024.0
}

/// The process's peak resident memory (VmHWM), MiB.
pub fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") / 1024.0
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

/// CPU time (user + system) of this process so far, seconds (`/proc/self/stat`, assuming the
/// usual 100 clock ticks per second).
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_samples_are_plausible() {
        // Linux CI: the process has some resident memory, a peak at least as high, and CPU
        // time that does not go backwards.
        let rss = rss_mib();
        assert!(rss > 0.0, "{rss}");
        assert!(peak_rss_mib() >= rss * 0.5);
        let a = cpu_seconds();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(cpu_seconds() >= a);
    }
}

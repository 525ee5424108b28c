//! The report of a finished run, from its metrics and the fabric's counters.

use crate::fabric::Fabric;
use crate::report::{self, Report, Summary};

use super::world::*;

pub(super) fn f(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub(super) fn build_report(
    w: &mut World,
    fabric: &Fabric,
    hops: &[u32],
    latencies_ms: &[u64],
    panics: Vec<String>,
    wall_seconds: f64,
) -> Report {
    let live = w.live.len();
    let m = &w.m;
    let simulated_seconds = w.t_ms() as f64 / 1000.0;
    let count = hops.len() as u64;
    let ever_ran: Vec<usize> = w
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.state != State::Unused)
        .map(|(i, _)| i)
        .collect();
    let per = |g: fn(&crate::fabric::Traffic) -> u64| {
        Summary::of(
            &ever_ran
                .iter()
                .map(|&i| g(&fabric.traffic[i]) as f64)
                .collect::<Vec<_>>(),
        )
    };
    let lost: u64 = m.lost.values().sum();
    let invariants_ok = m.violation_count == 0 && panics.is_empty();
    Report {
        scenario: w.sc.name.clone(),
        seed: w.seed,
        nodes: report::Nodes {
            seeds: w.sc.seeds,
            pods: w.sc.pods,
            joined: m.joined,
            left: m.left,
            crashed: m.crashed,
            restarted: m.restarted,
            live_at_end: live as u32,
            bootstrap_failed: m.bootstrap_failed,
            bootstrap_empty: m.bootstrap_empty,
        },
        simulated_seconds,
        wall_seconds,
        sim_seconds_per_wall_second: if wall_seconds > 0.0 {
            simulated_seconds / wall_seconds
        } else {
            0.0
        },
        peak_rss_mib: 0.0,
        worker_busy_seconds: Vec::new(),
        lookups: report::Lookups {
            count,
            found: m.found,
            success_rate: ratio(m.found, count),
            aborted: m.lookups_aborted,
            hops: Summary::of(&hops.iter().map(|&h| h as f64).collect::<Vec<_>>()),
            latency_ms: Summary::of(&f(latencies_ms)),
            messages: Summary::of(&m.messages),
        },
        publishes: report::Publishes {
            count: m.publishes,
            stored_at: Summary::of(&m.stored_at),
            latency_ms: Summary::of(&m.publish_latency),
            failed: m.publish_failed,
        },
        delivery: report::Delivery {
            sent: m.delivery_sent,
            delivered: m.delivered,
            lost,
            success_rate: ratio(m.delivered, m.delivered + lost),
            lost_reasons: m.lost.clone(),
            aborted: m.delivery_aborted,
        },
        traffic: report::Traffic {
            datagrams_sent: fabric.stats.sent,
            datagrams_delivered: fabric.stats.delivered,
            datagrams_lost: fabric.stats.lost,
            datagrams_partitioned: fabric.stats.partitioned,
            datagrams_out_per_node: per(|t| t.datagrams_out),
            datagrams_in_per_node: per(|t| t.datagrams_in),
            bytes_out_per_node: per(|t| t.bytes_out),
            bytes_in_per_node: per(|t| t.bytes_in),
        },
        routing: w.routing.clone(),
        invariants: report::Invariants {
            rounds: m.rounds,
            values_checked: m.values_checked,
            violation_count: m.violation_count,
            violations: m.violations.clone(),
            panics,
            ok: invariants_ok,
        },
        // Filled in by the caller once the log is closed.
        events: 0,
        events_sha256: String::new(),
        fabric_passes: fabric.stats.passes,
        messages: w.messages.clone().map(|mut m| {
            m.tcp_segments = fabric.stats.tcp_segments;
            m
        }),
        fabric_scans: fabric.stats.scans,
        memory: crate::memory::Memory::default(),
        provenance: None,
    }
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

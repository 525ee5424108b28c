//! The run report: `report.json`, the human summary, and the SVG plots.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Summary of a sample (n, min, median, mean, p90, p99, max): the project's one definition of
/// percentiles, shared with the benchmarks and the testbed.
pub use muttr_stats::Summary;

/// Node counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nodes {
    /// Seeds at the start.
    pub seeds: u32,
    /// Pods (0 until the pod crate exists).
    pub pods: u32,
    /// Seeds that joined later (churn replacements).
    pub joined: u32,
    /// Seeds that left for good.
    pub left: u32,
    /// Crashes.
    pub crashed: u32,
    /// Restarts after a crash.
    pub restarted: u32,
    /// Seeds up at the end.
    pub live_at_end: u32,
    /// Joins whose bootstrap failed.
    pub bootstrap_failed: u32,
    /// Joins whose bootstrap finished with an empty routing table (every bootstrap address's
    /// reply lost: the seed stays alone until someone contacts it).
    pub bootstrap_empty: u32,
}

/// FIND_VALUE lookups (workload lookups and delivery fetches).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Lookups {
    /// Lookups that finished.
    pub count: u64,
    /// Of them, the value was found.
    pub found: u64,
    /// found / count.
    pub success_rate: f64,
    /// Lookups cut short because the asking node was stopped (churn), not counted above.
    pub aborted: u64,
    /// Hops per finished lookup.
    pub hops: Summary,
    /// Virtual-time latency per finished lookup, ms.
    pub latency_ms: Summary,
    /// Requests sent per lookup.
    pub messages: Summary,
}

/// Publications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Publishes {
    /// PUBLISH commands that finished.
    pub count: u64,
    /// Remote seeds that acknowledged the STORE, per publish.
    pub stored_at: Summary,
    /// Virtual-time latency of a publish, ms.
    pub latency_ms: Summary,
    /// Publishes the node refused or that found nobody.
    pub failed: u64,
}

/// End-to-end delivery: a published value found later by a lookup from another node (until
/// pods exist: published → fetched → byte-identical).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Values published.
    pub sent: u64,
    /// Found, byte-identical, by another node.
    pub delivered: u64,
    /// Not found.
    pub lost: u64,
    /// delivered / (delivered + lost): values whose delivery was aborted are not judged.
    pub success_rate: f64,
    /// Losses by reason.
    pub lost_reasons: BTreeMap<String, u64>,
    /// Not judged: the publisher or the fetcher was stopped by churn midway.
    pub aborted: u64,
}

/// Per-node traffic (payload bytes), over every node that ever ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// Datagrams that left any host.
    pub datagrams_sent: u64,
    /// Delivered to the destination host.
    pub datagrams_delivered: u64,
    /// Dropped by random loss.
    pub datagrams_lost: u64,
    /// Dropped by a partition.
    pub datagrams_partitioned: u64,
    /// Datagrams sent per node.
    pub datagrams_out_per_node: Summary,
    /// Datagrams received per node.
    pub datagrams_in_per_node: Summary,
    /// Bytes sent per node.
    pub bytes_out_per_node: Summary,
    /// Bytes received per node.
    pub bytes_in_per_node: Summary,
}

/// Routing-table health at the end of the run, over live seeds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// Contacts per routing table.
    pub table_size: Summary,
    /// Live seeds whose table holds fewer than min(k, live − 1) contacts.
    pub underfilled: u64,
    /// Requests that timed out, summed over live seeds.
    pub timeouts: u64,
    /// Datagrams dropped by seeds, by reason, summed over live seeds.
    pub dropped: BTreeMap<String, u64>,
    /// STOREs refused, by rule, summed over live seeds.
    pub stores_refused: BTreeMap<String, u64>,
}

/// Invariant checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Invariants {
    /// Check rounds.
    pub rounds: u64,
    /// Values checked, over all rounds.
    pub values_checked: u64,
    /// Violations (first 20 described in `violations`).
    pub violation_count: u64,
    /// Descriptions.
    pub violations: Vec<String>,
    /// Panics caught in any host.
    pub panics: Vec<String>,
    /// True when nothing was violated and nothing panicked.
    pub ok: bool,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The RNG seed used.
    pub seed: u64,
    /// Node counts.
    pub nodes: Nodes,
    /// Virtual seconds simulated (join phase + workload + drain).
    pub simulated_seconds: f64,
    /// Wall-clock seconds of the run (not deterministic).
    pub wall_seconds: f64,
    /// simulated_seconds / wall_seconds (not deterministic).
    pub sim_seconds_per_wall_second: f64,
    /// Peak resident memory of the process, MiB (VmHWM; not deterministic).
    pub peak_rss_mib: f64,
    /// Lookups.
    pub lookups: Lookups,
    /// Publications.
    pub publishes: Publishes,
    /// Delivery.
    pub delivery: Delivery,
    /// Traffic.
    pub traffic: Traffic,
    /// Routing tables.
    pub routing: Routing,
    /// Invariants.
    pub invariants: Invariants,
    /// Lines in the event log.
    pub events: u64,
    /// SHA-256 of the event log (JSON lines), hex.
    pub events_sha256: String,
    /// Window boundaries worker 0 stopped at (every one with several workers; a lone worker
    /// jumps over quiet ones, so this depends on the thread count and is outside the
    /// determinism check).
    pub fabric_passes: u64,
    /// Pods' users' messages, stage by stage (absent without pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<MessageReport>,
    /// Scans of the hosts' outbound queues, summed over the workers (each scans its own hosts
    /// at instants when one of them wrote to TCP; datagrams skip the queues; depends on the
    /// thread count, so outside the determinism check).
    #[serde(default)]
    pub fabric_scans: u64,
    /// Memory and CPU by phase (not deterministic).
    #[serde(default)]
    pub memory: crate::memory::Memory,
    /// Wall seconds each engine worker spent running its hosts rather than waiting at a
    /// barrier for the others, by worker (worker 0 holds the pods, users and schedule): how
    /// well the hosts were balanced (not deterministic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub worker_busy_seconds: Vec<f64>,
    /// Where the report came from ([`crate::provenance`]); absent in reports made before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<crate::provenance::Provenance>,
}

impl Report {
    /// The report with the fields that depend on the machine (wall time, speed, memory) zeroed:
    /// what must be identical between two runs of one scenario and seed.
    pub fn deterministic_part(&self) -> Report {
        Report {
            wall_seconds: 0.0,
            sim_seconds_per_wall_second: 0.0,
            peak_rss_mib: 0.0,
            fabric_passes: 0,
            fabric_scans: 0,
            memory: crate::memory::Memory::default(),
            worker_busy_seconds: Vec::new(),
            provenance: None,
            ..self.clone()
        }
    }

    /// A human summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let l = &self.lookups;
        let d = &self.delivery;
        let t = &self.traffic;
        let _ = writeln!(
            s,
            "scenario {} (seed {}): {} seeds, {} pods; {} joined, {} left, {} crashed, {} restarted, {} joined alone (empty table)",
            self.scenario,
            self.seed,
            self.nodes.seeds,
            self.nodes.pods,
            self.nodes.joined,
            self.nodes.left,
            self.nodes.crashed,
            self.nodes.restarted,
            self.nodes.bootstrap_empty
        );
        let _ = writeln!(
            s,
            "time: {:.0} simulated s in {:.1} wall s ({:.1} sim s / wall s), peak RSS {:.0} MiB",
            self.simulated_seconds,
            self.wall_seconds,
            self.sim_seconds_per_wall_second,
            self.peak_rss_mib
        );
        if self.worker_busy_seconds.len() > 1 {
            let busy: Vec<String> = self
                .worker_busy_seconds
                .iter()
                .map(|b| format!("{b:.1}"))
                .collect();
            let _ = writeln!(
                s,
                "engine workers busy (wall s, worker 0 first): {}",
                busy.join(", ")
            );
        }
        let m = &self.memory;
        let _ = writeln!(
            s,
            "memory: RSS {:.0} MiB with all seeds started, {:.0} MiB after the join phase, {:.0} MiB at the end ({} value replicas, {:.0} MiB of value text); CPU {:.0} s ({:.0} s in the join phase)",
            m.rss_after_start_mib,
            m.rss_after_join_mib,
            m.rss_at_end_mib,
            m.replicas_held,
            m.replica_bytes as f64 / 1_048_576.0,
            m.cpu_seconds,
            m.cpu_join_seconds
        );
        let _ = writeln!(
            s,
            "lookups: {} finished, success {:.2} %, hops median {} p99 {}, latency median {} ms p99 {} ms ({} aborted by churn)",
            l.count,
            100.0 * l.success_rate,
            l.hops.median,
            l.hops.p99,
            l.latency_ms.median,
            l.latency_ms.p99,
            l.aborted
        );
        let _ = writeln!(
            s,
            "publishes: {} (stored at median {} seeds), {} failed",
            self.publishes.count, self.publishes.stored_at.median, self.publishes.failed
        );
        let _ = writeln!(
            s,
            "delivery: {} sent, {} delivered, {} lost {:?}, success {:.2} %",
            d.sent,
            d.delivered,
            d.lost,
            d.lost_reasons,
            100.0 * d.success_rate
        );
        let _ = writeln!(
            s,
            "datagrams: {} sent, {} lost, {} partitioned; per node out median {} p99 {}, bytes out median {} p99 {}",
            t.datagrams_sent,
            t.datagrams_lost,
            t.datagrams_partitioned,
            t.datagrams_out_per_node.median,
            t.datagrams_out_per_node.p99,
            t.bytes_out_per_node.median,
            t.bytes_out_per_node.p99
        );
        let _ = writeln!(
            s,
            "routing tables: median {} contacts (min {}), {} underfilled; {} timeouts",
            self.routing.table_size.median,
            self.routing.table_size.min,
            self.routing.underfilled,
            self.routing.timeouts
        );
        if let Some(m) = &self.messages {
            let _ = writeln!(
                s,
                "messages ({} pods, {} users ready, {} active, {} on push, {} pod restarts, {} seeds left): {} sent -> {} stored -> {} acknowledged -> {} notified ({} push, {} playback) -> {} fetched -> {} verified ({:.2} % of sent, {:.2} % of acknowledged), {} purges, lost {:?}; latency median {} ms p99 {} ms",
                m.pods,
                m.users_ready,
                m.active_users,
                m.push_users,
                m.pod_restarts,
                m.seeds_left,
                m.sent,
                m.stored,
                m.acknowledged,
                m.notified,
                m.notified_by_push,
                m.notified_by_playback,
                m.fetched,
                m.verified,
                100.0 * m.success_rate,
                100.0 * m.delivered_of_acknowledged,
                m.purges,
                m.lost,
                m.latency_ms.median,
                m.latency_ms.p99
            );
        }
        let inv = &self.invariants;
        let _ = writeln!(
            s,
            "invariants: {} rounds, {} values checked, {} violations, {} panics: {}",
            inv.rounds,
            inv.values_checked,
            inv.violation_count,
            inv.panics.len(),
            if inv.ok { "OK" } else { "FAILED" }
        );
        let _ = writeln!(s, "events: {} (sha256 {})", self.events, self.events_sha256);
        s
    }
}

/// Writes `hops.svg` (histogram of lookup hops) and `latency_cdf.svg` (CDF of lookup latency)
/// into `dir`.
pub fn write_plots(dir: &Path, hops: &[u32], latencies_ms: &[u64]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    {
        let path = dir.join("hops.svg");
        let root = SVGBackend::new(&path, (640, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_hop = hops.iter().copied().max().unwrap_or(0);
        let mut counts = vec![0u64; max_hop as usize + 1];
        for &h in hops {
            counts[h as usize] += 1;
        }
        let ymax = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption("Lookup hops", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(
                (0u32..max_hop + 1).into_segmented(),
                0u64..ymax + ymax / 10 + 1,
            )?;
        chart
            .configure_mesh()
            .x_desc("hops")
            .y_desc("lookups")
            .disable_x_mesh()
            .draw()?;
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(BLUE.filled())
                .margin(4)
                .data(hops.iter().map(|&h| (h, 1u64))),
        )?;
        root.present()?;
    }
    {
        let path = dir.join("latency_cdf.svg");
        let root = SVGBackend::new(&path, (640, 400)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut v: Vec<u64> = latencies_ms.to_vec();
        v.sort_unstable();
        let xmax = v.last().copied().unwrap_or(1).max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .caption("Lookup latency (virtual time), CDF", ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..xmax * 1.05, 0f64..1.0)?;
        chart
            .configure_mesh()
            .x_desc("latency, ms")
            .y_desc("fraction of lookups")
            .draw()?;
        let n = v.len().max(1) as f64;
        // At most ~1,000 points: keep the plot small at 100,000 lookups.
        let stride = v.len().div_ceil(1_000).max(1);
        chart.draw_series(LineSeries::new(
            v.iter()
                .enumerate()
                .filter(|(i, _)| i % stride == 0 || i + 1 == v.len())
                .map(|(i, &ms)| (ms as f64, (i + 1) as f64 / n)),
            &RED,
        ))?;
        root.present()?;
    }
    Ok(())
}

/// Hops and latencies of the lookups in an event log (its lines), to re-plot a run.
pub fn lookups_from_events<S: AsRef<str>>(
    lines: impl IntoIterator<Item = S>,
) -> (Vec<u32>, Vec<u64>) {
    let mut hops = Vec::new();
    let mut lat = Vec::new();
    for line in lines {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line.as_ref()) else {
            continue;
        };
        if v["ev"] == "lookup"
            && let (Some(h), Some(l)) = (v["hops"].as_u64(), v["latency_ms"].as_u64())
        {
            hops.push(h as u32);
            lat.push(l);
        }
    }
    (hops, lat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_read_back_from_an_event_log() {
        let log = concat!(
            "{\"t\":1,\"ev\":\"up\",\"node\":0,\"id\":\"00\"}\n",
            "{\"t\":2,\"ev\":\"lookup\",\"hops\":2,\"latency_ms\":80}\n",
            "not json\n",
        );
        assert_eq!(lookups_from_events(log.lines()), (vec![2], vec![80]));
    }
}

/// The messaging part of the report (`report.json` → `messages`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageReport {
    /// Pods.
    pub pods: u32,
    /// Users that registered and took their alias.
    pub users_ready: u32,
    /// Users whose setup failed.
    pub users_failed: u32,
    /// Users with a seed of their own.
    pub active_users: u32,
    /// Users on WebSocket push.
    pub push_users: u32,
    /// Pod restarts done.
    pub pod_restarts: u32,
    /// Messages a user started to send.
    pub sent: u64,
    /// Stored in the DHT (step 8).
    pub stored: u64,
    /// Acknowledged: stored, and the recipient's pod accepted the notification (step 9). From
    /// here on the protocol owes the message its delivery.
    #[serde(default)]
    pub acknowledged: u64,
    /// The recipient learnt of it (step 10).
    pub notified: u64,
    /// Of them, by WebSocket push.
    pub notified_by_push: u64,
    /// Of them, by inbox playback.
    pub notified_by_playback: u64,
    /// The recipient fetched the value (step 11).
    pub fetched: u64,
    /// Decrypted, signature good, plaintext and sender as sent (step 12).
    pub verified: u64,
    /// verified / sent.
    pub success_rate: f64,
    /// verified / acknowledged: the share of the messages the protocol owed that arrived.
    #[serde(default)]
    pub delivered_of_acknowledged: f64,
    /// Inbox purges (`DELETE /inboxes?upto=ID`, PROFILE P-X1) the users made after reading.
    #[serde(default)]
    pub purges: u64,
    /// Users whose own seed left for good when sending ended (`senders_leave`).
    #[serde(default)]
    pub seeds_left: u32,
    /// Messages that stopped, by the stage they stopped at.
    pub lost: BTreeMap<String, u64>,
    /// From the start of the send to the verified plaintext, virtual ms.
    pub latency_ms: Summary,
    /// TCP segments the fabric carried (HTTP and WebSocket of pods and users).
    pub tcp_segments: u64,
}

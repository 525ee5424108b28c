//! The report of a run: what was acknowledged, what was delivered, what was lost and why, how
//! long the network took to recover from each fault.
//!
//! [`Tally`] folds the clients' [`Event`]s into per-message state; [`Tally::report`] turns it
//! into a [`Report`] (written as `report.json`, and as text by [`Report::text`]). The run
//! passes when every message whose pod acknowledged the store was delivered (fetched,
//! decrypted and verified by its recipient), no message arrived bad, and no seed or pod died
//! except by the runner's own SIGKILL.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::switch::{Impairment, Stats};
use crate::workload::Event;

/// What became of one message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Planned send time, ms after `t0`.
    pub at_ms: u64,
    /// Recipient.
    pub to: String,
    /// DHT key, once acknowledged.
    pub key: Option<String>,
    /// When our pod acknowledged the store (Unix ms).
    pub acked: Option<u64>,
    /// When the recipient's pod took the notification.
    pub notified: Option<u64>,
    /// When the recipient had it verified.
    pub delivered: Option<u64>,
    /// Why it was never acknowledged.
    pub unacked: Option<String>,
    /// Last error of a notification still pending at the end.
    pub notify_error: Option<String>,
    /// Last error of a fetch still pending at the end.
    pub fetch_error: Option<String>,
    /// Why it arrived bad.
    pub bad: Option<String>,
}

/// A fault the runner applied, with its times in seconds after `t0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `partition` or `kill`.
    pub kind: String,
    /// What it hit (side B, or the host).
    pub target: String,
    /// When it started.
    pub start_s: f64,
    /// When it ended (healed, or restarted).
    pub end_s: Option<f64>,
    /// Messages acknowledged before the end and not yet delivered at it.
    pub backlog: usize,
    /// Seconds after the end until that backlog was all delivered (`None`: it never was).
    pub recovered_after_s: Option<f64>,
    /// For a restarted seed: seconds after its restart until it logged that it had joined.
    pub rejoined_after_s: Option<f64>,
}

/// Folds events into per-message state.
#[derive(Debug, Default)]
pub struct Tally {
    /// Messages by id.
    pub messages: BTreeMap<String, Message>,
    key_to_id: BTreeMap<String, String>,
    /// Bad arrivals that matched no message.
    pub stray_bad: Vec<String>,
}

impl Tally {
    /// A tally of the planned messages `(id, at_ms, to)`.
    pub fn new(planned: impl IntoIterator<Item = (String, u64, String)>) -> Tally {
        let mut t = Tally::default();
        for (id, at_ms, to) in planned {
            t.messages.insert(
                id,
                Message {
                    at_ms,
                    to,
                    ..Default::default()
                },
            );
        }
        t
    }

    /// Applies one event.
    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::Acked { id, key, t, .. } => {
                if let Some(m) = self.messages.get_mut(id) {
                    m.acked = Some(*t);
                    m.key = Some(key.clone());
                    self.key_to_id.insert(key.clone(), id.clone());
                }
            }
            Event::Unacked { id, error } => {
                if let Some(m) = self.messages.get_mut(id) {
                    m.unacked = Some(error.clone());
                }
            }
            Event::Notified { id, t, .. } => {
                if let Some(m) = self.messages.get_mut(id) {
                    m.notified = Some(*t);
                    m.notify_error = None;
                }
            }
            Event::Delivered { id, to, t, .. } => {
                if let Some(m) = self.messages.get_mut(id) {
                    if &m.to == to {
                        m.delivered.get_or_insert(*t);
                        m.fetch_error = None;
                    } else {
                        m.bad = Some(format!("delivered to {to}, sent to {}", m.to));
                    }
                }
            }
            Event::Bad { key, to, reason } => match self.key_to_id.get(key) {
                Some(id) => {
                    if let Some(m) = self.messages.get_mut(id) {
                        m.bad = Some(reason.clone());
                    }
                }
                None => self.stray_bad.push(format!("{key} to {to}: {reason}")),
            },
            Event::NotifyPending { id, error } => {
                if let Some(m) = self.messages.get_mut(id) {
                    m.notify_error = Some(error.clone());
                }
            }
            Event::FetchPending { key, error, .. } => {
                if let Some(m) = self
                    .key_to_id
                    .get(key)
                    .and_then(|id| self.messages.get_mut(id))
                {
                    m.fetch_error = Some(error.clone());
                }
            }
            Event::Ready { .. } | Event::Keys { .. } | Event::Done { .. } => {}
        }
    }

    /// Whether every planned message is settled: delivered, given up unacknowledged, or bad.
    pub fn settled(&self) -> bool {
        self.messages
            .values()
            .all(|m| m.delivered.is_some() || m.unacked.is_some() || m.bad.is_some())
    }

    /// Messages acknowledged at or before `t` (Unix ms) and not delivered by then.
    pub fn backlog_at(&self, t: u64) -> Vec<&Message> {
        self.messages
            .values()
            .filter(|m| m.acked.is_some_and(|a| a <= t) && m.delivered.is_none_or(|d| d > t))
            .collect()
    }

    /// Seconds after `t` until all of `backlog_at(t)` was delivered (0 when there was none).
    pub fn recovery_after(&self, t: u64) -> (usize, Option<f64>) {
        let backlog = self.backlog_at(t);
        let n = backlog.len();
        let mut last = t;
        for m in backlog {
            match m.delivered {
                Some(d) => last = last.max(d),
                None => return (n, None),
            }
        }
        (n, Some((last - t) as f64 / 1000.0))
    }

    /// The report.
    pub fn report(&self, head: ReportHead, faults: Vec<Fault>, switch: Option<Stats>) -> Report {
        let mut lost_reasons = BTreeMap::new();
        let mut lost = Vec::new();
        let mut latencies = Vec::new();
        let mut store_latencies = Vec::new();
        let (mut acked, mut notified, mut delivered, mut unacked, mut bad) = (0, 0, 0, 0, 0);
        for (id, m) in &self.messages {
            if m.unacked.is_some() {
                unacked += 1;
            }
            if m.notified.is_some() {
                notified += 1;
            }
            if m.bad.is_some() {
                bad += 1;
            }
            let Some(a) = m.acked else { continue };
            acked += 1;
            store_latencies.push(a.saturating_sub(head.t0_ms + m.at_ms));
            match m.delivered {
                Some(d) if m.bad.is_none() => {
                    delivered += 1;
                    latencies.push(d.saturating_sub(a));
                }
                _ => {
                    let (reason, detail) = loss_reason(m);
                    *lost_reasons.entry(reason.clone()).or_insert(0usize) += 1;
                    lost.push(Lost {
                        id: id.clone(),
                        reason,
                        detail,
                    });
                }
            }
        }
        let delivery = Latency::of(latencies);
        let store = Latency::of(store_latencies);
        let pass = acked == delivered
            && bad == 0
            && self.stray_bad.is_empty()
            && head.unexpected_exits.is_empty()
            && acked > 0;
        Report {
            messages: Messages {
                planned: self.messages.len(),
                acked,
                unacked,
                notified,
                delivered,
                lost: lost.len(),
                bad,
                delivered_of_acked: if acked == 0 {
                    0.0
                } else {
                    delivered as f64 / acked as f64
                },
                lost_reasons,
                latency_ms: delivery,
                store_latency_ms: store,
            },
            lost,
            stray_bad: self.stray_bad.clone(),
            faults,
            switch,
            verdict: if pass { "PASS" } else { "FAIL" }.to_string(),
            pass,
            head,
        }
    }
}

fn loss_reason(m: &Message) -> (String, String) {
    if let Some(b) = &m.bad {
        return ("arrived bad".into(), b.clone());
    }
    if m.notified.is_none() {
        return (
            "notification never acknowledged by the recipient's pod".into(),
            m.notify_error.clone().unwrap_or_default(),
        );
    }
    match &m.fetch_error {
        Some(e) => (
            "notified, but the message could not be read".into(),
            e.clone(),
        ),
        None => (
            "notified, but the recipient never saw the notification".into(),
            String::new(),
        ),
    }
}

/// Facts of the run that do not come from the tally.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportHead {
    /// Scenario name.
    pub scenario: String,
    /// RNG seed.
    pub seed: u64,
    /// Seeds.
    pub seeds: usize,
    /// Pods.
    pub pods: usize,
    /// Users in all.
    pub users: usize,
    /// The links' impairment.
    pub network: Impairment,
    /// How the impairment was applied.
    pub impairment_engine: String,
    /// Workload seconds.
    pub duration_s: u64,
    /// The workload's start (Unix ms).
    pub t0_ms: u64,
    /// Seconds from `t0` to the end of the run.
    pub ran_s: f64,
    /// Wall seconds of the whole run, setup included.
    pub wall_s: f64,
    /// Processes that exited without being killed by the runner (name: status).
    pub unexpected_exits: Vec<String>,
}

/// Message counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// Planned.
    pub planned: usize,
    /// Acknowledged by the sender's pod.
    pub acked: usize,
    /// Never acknowledged (the client gave up storing).
    pub unacked: usize,
    /// Notification acknowledged by the recipient's pod.
    pub notified: usize,
    /// Delivered (verified by the recipient).
    pub delivered: usize,
    /// Acknowledged but not delivered.
    pub lost: usize,
    /// Arrived bad.
    pub bad: usize,
    /// delivered / acked.
    pub delivered_of_acked: f64,
    /// Lost messages by reason.
    pub lost_reasons: BTreeMap<String, usize>,
    /// Acknowledged → delivered.
    pub latency_ms: Latency,
    /// Planned send time → acknowledged by the sender's pod (sealing, storing in the DHT
    /// through the pod, retries of the store).
    pub store_latency_ms: Latency,
}

/// A latency summary, ms (percentiles as defined by `muttr_stats`, shared with the simulator
/// and the benchmarks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub median: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
}

impl Latency {
    /// Median, p99 and max of `v`.
    pub fn of(mut v: Vec<u64>) -> Latency {
        v.sort_unstable();
        Latency {
            median: muttr_stats::percentile(&v, 0.5),
            p99: muttr_stats::percentile(&v, 0.99),
            max: v.last().map(|&m| m as f64),
        }
    }
}

/// One lost message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lost {
    /// Message id.
    pub id: String,
    /// Reason class.
    pub reason: String,
    /// The last error seen.
    pub detail: String,
}

/// The whole report (`report.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Run facts.
    #[serde(flatten)]
    pub head: ReportHead,
    /// Message counts.
    pub messages: Messages,
    /// Each lost message.
    pub lost: Vec<Lost>,
    /// Bad arrivals of unknown messages.
    pub stray_bad: Vec<String>,
    /// Faults with recovery.
    pub faults: Vec<Fault>,
    /// The switch's counters.
    pub switch: Option<Stats>,
    /// `PASS` or `FAIL`.
    pub verdict: String,
    /// Whether it passed.
    pub pass: bool,
}

impl Report {
    /// A human summary.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let h = &self.head;
        let m = &self.messages;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "testbed {} (seed {}): {} seeds, {} pods, {} users; links {} ms ± {} ms, loss {:.0} %, reorder {:.0} % ({})",
            h.scenario,
            h.seed,
            h.seeds,
            h.pods,
            h.users,
            h.network.delay_ms,
            h.network.jitter_ms,
            h.network.loss * 100.0,
            h.network.reorder * 100.0,
            h.impairment_engine
        );
        let _ = writeln!(
            s,
            "workload {} s; ran {:.0} s after t0; {:.0} s of wall time in all",
            h.duration_s, h.ran_s, h.wall_s
        );
        let _ = writeln!(
            s,
            "messages: {} planned, {} acknowledged by their pod, {} never acknowledged, {} notified, {} delivered and verified",
            m.planned, m.acked, m.unacked, m.notified, m.delivered
        );
        let _ = writeln!(
            s,
            "delivered {:.2} % of the acknowledged messages; lost {}; bad {}",
            m.delivered_of_acked * 100.0,
            m.lost,
            m.bad
        );
        if let (Some(med), Some(p99), Some(max)) =
            (m.latency_ms.median, m.latency_ms.p99, m.latency_ms.max)
        {
            let _ = writeln!(
                s,
                "acknowledged → delivered: median {med} ms, p99 {p99} ms, max {max} ms"
            );
        }
        if let (Some(med), Some(p99), Some(max)) = (
            m.store_latency_ms.median,
            m.store_latency_ms.p99,
            m.store_latency_ms.max,
        ) {
            let _ = writeln!(
                s,
                "planned → acknowledged (seal + store through the pod, with retries): median {med} ms, p99 {p99} ms, max {max} ms"
            );
        }
        for (reason, n) in &m.lost_reasons {
            let _ = writeln!(s, "  lost {n}: {reason}");
        }
        for l in self.lost.iter().take(10) {
            let _ = writeln!(s, "    {}: {} ({})", l.id, l.reason, l.detail);
        }
        for f in &self.faults {
            let end = f.end_s.map_or("never".to_string(), |e| format!("{e:.0} s"));
            let rec = match (f.backlog, f.recovered_after_s) {
                (0, _) => "no backlog".to_string(),
                (n, Some(r)) => format!("backlog of {n} delivered {r:.1} s after"),
                (n, None) => format!("backlog of {n} NOT all delivered"),
            };
            let rejoin = f.rejoined_after_s.map_or(String::new(), |r| {
                format!("; rejoined {r:.1} s after restart")
            });
            let _ = writeln!(
                s,
                "fault {} {}: {:.0} s → {end}; {rec}{rejoin}",
                f.kind, f.target, f.start_s
            );
        }
        if let Some(sw) = &self.switch {
            let _ = writeln!(
                s,
                "switch: {} frames in, {} out, {} lost, {} cut by partitions, {} reordered, {} overflow",
                sw.received, sw.forwarded, sw.lost, sw.partitioned, sw.reordered, sw.overflow
            );
        }
        for e in &h.unexpected_exits {
            let _ = writeln!(s, "UNEXPECTED EXIT: {e}");
        }
        for b in &self.stray_bad {
            let _ = writeln!(s, "BAD: {b}");
        }
        let _ = writeln!(
            s,
            "{}: {}",
            self.verdict,
            if self.pass {
                "every acknowledged message was delivered"
            } else {
                "see above"
            }
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally() -> Tally {
        Tally::new((0..4).map(|i| (format!("m{i}"), i * 1000, "bob@10.77.0.41:8080".to_string())))
    }

    fn acked(id: &str, t: u64) -> Event {
        Event::Acked {
            id: id.into(),
            key: format!("k{id}"),
            t,
            attempts: 1,
        }
    }

    fn delivered(id: &str, t: u64) -> Event {
        Event::Delivered {
            id: id.into(),
            to: "bob@10.77.0.41:8080".into(),
            t,
            attempts: 1,
        }
    }

    #[test]
    fn all_acknowledged_delivered_passes() {
        let mut t = tally();
        for (i, id) in ["m0", "m1", "m2"].iter().enumerate() {
            t.apply(&acked(id, 100));
            t.apply(&delivered(id, 300 + 100 * i as u64));
        }
        t.apply(&Event::Unacked {
            id: "m3".into(),
            error: "pod down".into(),
        });
        assert!(t.settled());
        let r = t.report(ReportHead::default(), vec![], None);
        assert!(r.pass, "{}", r.text());
        assert_eq!(r.messages.acked, 3);
        assert_eq!(r.messages.unacked, 1);
        assert_eq!(r.messages.delivered_of_acked, 1.0);
        assert_eq!(r.messages.latency_ms.median, Some(300.0));
        assert_eq!(r.messages.latency_ms.max, Some(400.0));
        assert!(r.text().contains("PASS"));
    }

    #[test]
    fn a_lost_acknowledged_message_fails_with_its_reason() {
        let mut t = tally();
        t.apply(&acked("m0", 10));
        t.apply(&acked("m1", 10));
        t.apply(&delivered("m0", 50));
        assert!(!t.settled());
        t.apply(&Event::Notified {
            id: "m1".into(),
            t: 20,
            attempts: 3,
        });
        t.apply(&Event::FetchPending {
            key: "km1".into(),
            to: "bob@10.77.0.41:8080".into(),
            error: "message km1 not found in the DHT".into(),
        });
        let r = t.report(ReportHead::default(), vec![], None);
        assert!(!r.pass);
        assert_eq!(r.messages.lost, 1);
        assert_eq!(
            r.messages.lost_reasons["notified, but the message could not be read"],
            1
        );
        assert!(r.lost[0].detail.contains("not found"));
        assert!(r.text().contains("FAIL"));
    }

    #[test]
    fn bad_arrivals_and_unexpected_exits_fail() {
        let mut t = tally();
        t.apply(&acked("m0", 10));
        t.apply(&delivered("m0", 20));
        t.apply(&Event::Bad {
            key: "km0".into(),
            to: "bob@10.77.0.41:8080".into(),
            reason: "signature: BAD SIGNATURE".into(),
        });
        assert!(!t.report(ReportHead::default(), vec![], None).pass);
        let mut t = tally();
        t.apply(&acked("m0", 10));
        t.apply(&delivered("m0", 20));
        let head = ReportHead {
            unexpected_exits: vec!["seed-3: signal 6".into()],
            ..Default::default()
        };
        assert!(!t.report(head, vec![], None).pass);
        // Delivered to the wrong user is bad too.
        let mut t = tally();
        t.apply(&acked("m0", 10));
        t.apply(&Event::Delivered {
            id: "m0".into(),
            to: "eve@x".into(),
            t: 20,
            attempts: 1,
        });
        assert_eq!(
            t.report(ReportHead::default(), vec![], None).messages.bad,
            1
        );
    }

    #[test]
    fn store_latency_counts_from_the_planned_send_time() {
        let mut t = tally(); // planned at 0, 1000, 2000, 3000 ms after t0
        let t0 = 50_000;
        for (id, ack) in [("m0", 500), ("m1", 1_200), ("m2", 9_000)] {
            t.apply(&acked(id, t0 + ack));
            t.apply(&delivered(id, t0 + ack + 10));
        }
        let head = ReportHead {
            t0_ms: t0,
            ..Default::default()
        };
        let r = t.report(head, vec![], None);
        assert_eq!(r.messages.store_latency_ms.median, Some(500.0));
        assert_eq!(r.messages.store_latency_ms.max, Some(7_000.0));
        assert_eq!(r.messages.latency_ms.max, Some(10.0));
        assert!(r.text().contains("planned → acknowledged"));
    }

    #[test]
    fn nothing_acknowledged_is_not_a_pass() {
        let t = tally();
        assert!(!t.report(ReportHead::default(), vec![], None).pass);
    }

    #[test]
    fn recovery_measures_the_backlog_at_a_heal() {
        let mut t = tally();
        t.apply(&acked("m0", 100));
        t.apply(&delivered("m0", 150)); // before the heal: not backlog
        t.apply(&acked("m1", 200));
        t.apply(&delivered("m1", 5_000));
        t.apply(&acked("m2", 900));
        t.apply(&delivered("m2", 3_000));
        t.apply(&acked("m3", 2_000)); // after the heal: not backlog
        assert_eq!(t.recovery_after(1_000), (2, Some(4.0)));
        assert_eq!(t.recovery_after(50), (0, Some(0.0)));
        let mut u = tally();
        u.apply(&acked("m1", 200));
        assert_eq!(u.recovery_after(1_000), (1, None));
    }
}

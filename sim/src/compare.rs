//! `muttr-sim compare A.toml B.toml`: two scenarios on one RNG seed, side by side.

use std::fmt::Write as _;

use serde::Serialize;

use crate::report::Report;

/// One compared metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Metric name.
    pub metric: String,
    /// Value in run A.
    pub a: f64,
    /// Value in run B.
    pub b: f64,
    /// b / a (`None` when a is 0).
    pub ratio: Option<f64>,
}

/// The metrics compared, from two reports.
pub fn rows(a: &Report, b: &Report) -> Vec<Row> {
    let pick = |r: &Report| -> Vec<(&'static str, f64)> {
        // Pods' messages (zeros in a run without pods).
        let m = r.messages.clone().unwrap_or_default();
        vec![
            ("messages.sent", m.sent as f64),
            ("messages.acknowledged", m.acknowledged as f64),
            ("messages.verified", m.verified as f64),
            (
                "messages.delivered_of_acknowledged",
                m.delivered_of_acknowledged,
            ),
            ("messages.lost", m.lost.values().sum::<u64>() as f64),
            ("messages.latency_ms.median", m.latency_ms.median),
            ("lookups.count", r.lookups.count as f64),
            ("lookups.success_rate", r.lookups.success_rate),
            ("lookups.hops.median", r.lookups.hops.median),
            ("lookups.hops.p99", r.lookups.hops.p99),
            ("lookups.latency_ms.median", r.lookups.latency_ms.median),
            ("lookups.latency_ms.p99", r.lookups.latency_ms.p99),
            ("lookups.messages.mean", r.lookups.messages.mean),
            ("publishes.stored_at.median", r.publishes.stored_at.median),
            ("delivery.success_rate", r.delivery.success_rate),
            ("traffic.datagrams_sent", r.traffic.datagrams_sent as f64),
            (
                "traffic.bytes_out_per_node.mean",
                r.traffic.bytes_out_per_node.mean,
            ),
            (
                "traffic.datagrams_out_per_node.mean",
                r.traffic.datagrams_out_per_node.mean,
            ),
            ("routing.table_size.median", r.routing.table_size.median),
            ("routing.timeouts", r.routing.timeouts as f64),
            ("invariants.violations", r.invariants.violation_count as f64),
            ("wall_seconds", r.wall_seconds),
        ]
    };
    pick(a)
        .into_iter()
        .zip(pick(b))
        .map(|((metric, a), (_, b))| Row {
            metric: metric.to_string(),
            a,
            b,
            ratio: (a != 0.0).then(|| b / a),
        })
        .collect()
}

/// A text table of `rows`, headed by the two scenario names.
pub fn table(name_a: &str, name_b: &str, rows: &[Row]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<36} {:>14} {:>14} {:>9}",
        "metric", name_a, name_b, "B/A"
    );
    for r in rows {
        let ratio = r.ratio.map_or("-".to_string(), |x| format!("{x:.3}"));
        let _ = writeln!(
            s,
            "{:<36} {:>14} {:>14} {:>9}",
            r.metric,
            fmt(r.a),
            fmt(r.b),
            ratio
        );
    }
    s
}

fn fmt(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_zero_denominators() {
        let mut a = Report::default();
        let mut b = Report::default();
        a.lookups.count = 10;
        b.lookups.count = 25;
        let r = rows(&a, &b);
        let count = r.iter().find(|r| r.metric == "lookups.count").unwrap();
        assert_eq!(count.ratio, Some(2.5));
        assert!(r.iter().any(|r| r.ratio.is_none()));
        assert!(table("A", "B", &r).contains("2.500"));
    }
}

//! A run over time, from its event log: per interval of virtual time, the live seeds, the
//! lookups that finished (how many, the share that found their value, the median latency),
//! the publications, and the pods' messages sent, notified, verified and lost — so churn,
//! partitions and pod restarts show where they happen. `timeseries.csv` (one row per interval)
//! and `timeseries.svg` (three panels).

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

/// One interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Start of the interval, virtual seconds.
    pub t_s: f64,
    /// Live seeds at the end of the interval.
    pub live: i64,
    /// Lookups that finished.
    pub lookups: u64,
    /// Of them, found.
    pub found: u64,
    /// Median latency of those lookups, ms.
    pub latency_median_ms: Option<f64>,
    /// Publications that finished.
    pub publishes: u64,
    /// Messages started, notified, verified, lost.
    pub msg_sent: u64,
    /// Messages notified.
    pub msg_notified: u64,
    /// Messages verified.
    pub msg_verified: u64,
    /// Messages lost.
    pub msg_lost: u64,
}

/// The fields of an event-log line the time series reads (the rest is skipped while parsing,
/// so a long run's log is not held as whole JSON values).
#[derive(Deserialize)]
struct Line {
    t: u64,
    #[serde(default)]
    ev: String,
    #[serde(default)]
    found: Option<bool>,
    #[serde(default)]
    latency_ms: Option<u64>,
}

/// The buckets of an event log (its lines): about 100 intervals of a whole number of seconds.
pub fn buckets<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> Vec<Bucket> {
    let parsed: Vec<Line> = lines
        .into_iter()
        .filter_map(|l| serde_json::from_str(l.as_ref()).ok())
        .collect();
    let end_ms = parsed.iter().map(|v| v.t).max().unwrap_or(0);
    let width_ms = (end_ms / 100).max(1_000).div_ceil(1_000) * 1_000;
    let n = (end_ms / width_ms + 1) as usize;
    let mut out: Vec<Bucket> = (0..n)
        .map(|i| Bucket {
            t_s: (i as u64 * width_ms) as f64 / 1_000.0,
            ..Bucket::default()
        })
        .collect();
    let mut latencies: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut live_delta = vec![0i64; n];
    for v in &parsed {
        let i = (v.t / width_ms) as usize;
        let b = &mut out[i];
        match v.ev.as_str() {
            "up" | "restart" => live_delta[i] += 1,
            "crash" | "leave" => live_delta[i] -= 1,
            "lookup" => {
                b.lookups += 1;
                if v.found == Some(true) {
                    b.found += 1;
                }
                if let Some(ms) = v.latency_ms {
                    latencies[i].push(ms);
                }
            }
            "publish" => b.publishes += 1,
            "msg_sent" => b.msg_sent += 1,
            "msg_notified" => b.msg_notified += 1,
            "msg_verified" => b.msg_verified += 1,
            "msg_lost" => b.msg_lost += 1,
            _ => {}
        }
    }
    let mut live = 0;
    for (i, b) in out.iter_mut().enumerate() {
        live += live_delta[i];
        b.live = live;
        let l = &mut latencies[i];
        l.sort_unstable();
        b.latency_median_ms = muttr_stats::percentile(l, 0.5);
    }
    out
}

/// A line of the messages panel: label, the bucket's count, colour.
type Series = (&'static str, fn(&Bucket) -> u64, plotters::style::RGBColor);

/// `timeseries.csv`.
pub fn csv(buckets: &[Bucket]) -> String {
    let mut s = String::from(
        "t_s,live,lookups,found,lookup_success,latency_median_ms,publishes,msg_sent,msg_notified,msg_verified,msg_lost\n",
    );
    for b in buckets {
        let success = if b.lookups == 0 {
            String::new()
        } else {
            format!("{:.4}", b.found as f64 / b.lookups as f64)
        };
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{},{}",
            b.t_s,
            b.live,
            b.lookups,
            b.found,
            success,
            b.latency_median_ms.map_or(String::new(), |m| m.to_string()),
            b.publishes,
            b.msg_sent,
            b.msg_notified,
            b.msg_verified,
            b.msg_lost
        );
    }
    s
}

/// Writes `timeseries.csv` and `timeseries.svg` into `dir`.
pub fn write<S: AsRef<str>>(dir: &Path, lines: impl IntoIterator<Item = S>) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let bs = buckets(lines);
    std::fs::write(dir.join("timeseries.csv"), csv(&bs))?;
    let path = dir.join("timeseries.svg");
    let root = SVGBackend::new(&path, (800, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let tmax = bs.last().map_or(1.0, |b| b.t_s + 1.0);
    // 1: live seeds.
    {
        let ymax = bs.iter().map(|b| b.live).max().unwrap_or(1).max(1) as f64;
        let mut c = ChartBuilder::on(&panels[0])
            .caption("Live seeds", ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax * 1.1)?;
        c.configure_mesh().x_desc("virtual s").draw()?;
        c.draw_series(LineSeries::new(
            bs.iter().map(|b| (b.t_s, b.live as f64)),
            BLUE.stroke_width(2),
        ))?;
    }
    // 2: lookups per interval and their success (right axis as a share).
    {
        let ymax = bs.iter().map(|b| b.lookups).max().unwrap_or(1).max(1) as f64;
        let mut c = ChartBuilder::on(&panels[1])
            .caption(
                "Lookups per interval (bars), share found (line)",
                ("sans-serif", 18),
            )
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .right_y_label_area_size(50)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax * 1.1)?
            .set_secondary_coord(0f64..tmax, 0f64..1.05);
        c.configure_mesh()
            .x_desc("virtual s")
            .y_desc("lookups")
            .draw()?;
        c.configure_secondary_axes().y_desc("found").draw()?;
        let w = bs.get(1).map_or(1.0, |b| b.t_s) * 0.8;
        c.draw_series(bs.iter().map(|b| {
            Rectangle::new(
                [(b.t_s, 0.0), (b.t_s + w, b.lookups as f64)],
                BLUE.mix(0.3).filled(),
            )
        }))?;
        c.draw_secondary_series(LineSeries::new(
            bs.iter()
                .filter(|b| b.lookups > 0)
                .map(|b| (b.t_s, b.found as f64 / b.lookups as f64)),
            RED.stroke_width(2),
        ))?;
    }
    // 3: messages.
    {
        let ymax = bs
            .iter()
            .map(|b| {
                b.msg_sent
                    .max(b.msg_verified)
                    .max(b.msg_notified)
                    .max(b.msg_lost)
            })
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        let mut c = ChartBuilder::on(&panels[2])
            .caption("Pods' messages per interval", ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax * 1.1)?;
        c.configure_mesh().x_desc("virtual s").draw()?;
        let series: [Series; 4] = [
            ("sent", |b| b.msg_sent, BLUE),
            ("notified", |b| b.msg_notified, MAGENTA),
            ("verified", |b| b.msg_verified, GREEN),
            ("lost", |b| b.msg_lost, RED),
        ];
        for (label, f, color) in series {
            c.draw_series(LineSeries::new(
                bs.iter().map(|b| (b.t_s, f(b) as f64)),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        c.configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fall_into_intervals_with_live_counts_and_lookup_shares() {
        let log = [
            r#"{"t":0,"ev":"up","node":0}"#,
            r#"{"t":0,"ev":"up","node":1}"#,
            r#"{"t":500,"ev":"lookup","found":true,"latency_ms":40}"#,
            r#"{"t":900,"ev":"lookup","found":false,"latency_ms":100}"#,
            r#"{"t":1500,"ev":"crash","node":1}"#,
            r#"{"t":1600,"ev":"msg_sent","m":0}"#,
            r#"{"t":2500,"ev":"restart","node":1}"#,
            r#"{"t":2600,"ev":"msg_verified","m":0}"#,
            "not json",
        ]
        .join("\n");
        let b = buckets(log.lines());
        assert_eq!(b.len(), 3, "{b:#?}");
        assert_eq!((b[0].live, b[1].live, b[2].live), (2, 1, 2));
        assert_eq!((b[0].lookups, b[0].found), (2, 1));
        assert_eq!(b[0].latency_median_ms, Some(70.0)); // mean of 40 and 100
        assert_eq!(b[1].latency_median_ms, None);
        assert_eq!((b[1].msg_sent, b[2].msg_verified), (1, 1));
        let text = csv(&b);
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .starts_with("0,2,2,1,0.5000,70,"),
            "{text}"
        );
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), log.lines()).unwrap();
        assert!(tmp.path().join("timeseries.svg").is_file());
    }
}

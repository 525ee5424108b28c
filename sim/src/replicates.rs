//! `muttr-sim compare A B --seeds 1,2,3`: two scenarios, each run once per seed (replicates,
//! in parallel through [`crate::sweep::execute`]), compared metric by metric as a researcher
//! would: each side's mean and 95 % confidence interval (Student's t), the difference B − A
//! with its Welch 95 % interval, and the effect size (Hedges' g); plus both sides' lookup
//! latency CDFs overlaid on a log axis (`latency_cdf.svg`).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::sweep::{METRICS, Outcome};

/// One metric over the replicates of A and B.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Column name (as in `sweep.csv`).
    pub metric: String,
    /// A's mean and 95 % interval half-width.
    pub a: Stat,
    /// B's mean and 95 % interval half-width.
    pub b: Stat,
    /// B − A.
    pub diff: f64,
    /// Half-width of the Welch 95 % interval of B − A (`None` with fewer than two runs a side).
    pub diff_ci95: Option<f64>,
    /// Hedges' g: B − A in pooled standard deviations, small-sample corrected (`None` when
    /// there is no spread).
    pub hedges_g: Option<f64>,
}

/// Mean and spread of one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stat {
    /// Runs.
    pub n: usize,
    /// Mean.
    pub mean: f64,
    /// Sample standard deviation.
    pub sd: f64,
    /// Half-width of the 95 % interval of the mean (`None` with one run).
    pub ci95: Option<f64>,
}

/// Two-sided 97.5 % quantile of Student's t with `df` degrees of freedom.
pub fn t975(df: f64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    if df < 1.0 {
        return f64::NAN;
    }
    let whole = df.floor() as usize;
    if whole <= 30 {
        // Welch's df is fractional: interpolate between the neighbours.
        let lo = TABLE[whole - 1];
        let hi = if whole < 30 { TABLE[whole] } else { 2.042 };
        lo + (hi - lo) * (df - whole as f64)
    } else {
        1.960 + 2.5 / df // within 0.01 of the true quantile beyond 30
    }
}

/// Mean, sd and interval of `xs`.
pub fn stat(xs: &[f64]) -> Stat {
    let n = xs.len();
    let mean = if n == 0 {
        f64::NAN
    } else {
        xs.iter().sum::<f64>() / n as f64
    };
    let sd = if n < 2 {
        0.0
    } else {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    };
    let ci95 = (n >= 2).then(|| t975((n - 1) as f64) * sd / (n as f64).sqrt());
    Stat { n, mean, sd, ci95 }
}

/// The comparison of one metric's values in A's and B's runs.
pub fn row(metric: &str, a: &[f64], b: &[f64]) -> Row {
    let (sa, sb) = (stat(a), stat(b));
    let diff = sb.mean - sa.mean;
    let (va, vb) = (sa.sd.powi(2) / sa.n as f64, sb.sd.powi(2) / sb.n as f64);
    let diff_ci95 = (sa.n >= 2 && sb.n >= 2).then(|| {
        let se = (va + vb).sqrt();
        if se == 0.0 {
            return 0.0;
        }
        let df =
            (va + vb).powi(2) / (va.powi(2) / (sa.n - 1) as f64 + vb.powi(2) / (sb.n - 1) as f64);
        t975(df) * se
    });
    let pooled = if sa.n + sb.n > 2 {
        (((sa.n - 1) as f64 * sa.sd.powi(2) + (sb.n - 1) as f64 * sb.sd.powi(2))
            / (sa.n + sb.n - 2) as f64)
            .sqrt()
    } else {
        0.0
    };
    let hedges_g = (pooled > 0.0).then(|| {
        let correction = 1.0 - 3.0 / (4.0 * (sa.n + sb.n) as f64 - 9.0);
        diff / pooled * correction
    });
    Row {
        metric: metric.to_string(),
        a: sa,
        b: sb,
        diff,
        diff_ci95,
        hedges_g,
    }
}

fn values(outcomes: &[Outcome], path: &str) -> Vec<f64> {
    outcomes
        .iter()
        .filter_map(|o| {
            let r = o.report.as_ref().ok()?;
            crate::sweep::at(r, path)?.as_f64()
        })
        .collect()
}

/// Every metric of [`METRICS`] that both sides report.
pub fn rows(a: &[Outcome], b: &[Outcome]) -> Vec<Row> {
    METRICS
        .iter()
        .filter_map(|(name, path, _)| {
            let (va, vb) = (values(a, path), values(b, path));
            (!va.is_empty() && !vb.is_empty()).then(|| row(name, &va, &vb))
        })
        .collect()
}

/// The table for people.
pub fn table(a: &str, b: &str, rows: &[Row]) -> String {
    let pm = |s: &Stat| match s.ci95 {
        Some(h) => format!("{} ± {}", num(s.mean), num(h)),
        None => num(s.mean),
    };
    let mut t = format!(
        "A = {a}, B = {b}; mean ± 95 % CI over {} and {} runs\n{:<22} {:>24} {:>24} {:>24} {:>9}\n",
        rows.first().map_or(0, |r| r.a.n),
        rows.first().map_or(0, |r| r.b.n),
        "metric",
        "A",
        "B",
        "B − A (95 % CI)",
        "Hedges g"
    );
    for r in rows {
        let diff = match r.diff_ci95 {
            Some(h) => format!("{} ± {}", num(r.diff), num(h)),
            None => num(r.diff),
        };
        let g = r.hedges_g.map_or("–".to_string(), |g| format!("{g:.2}"));
        let _ = writeln!(
            t,
            "{:<22} {:>24} {:>24} {:>24} {:>9}",
            r.metric,
            pm(&r.a),
            pm(&r.b),
            diff,
            g
        );
    }
    t
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x.abs() >= 1_000.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// Both sides' lookup latencies (every replicate's event log together), as CDFs on a log
/// axis, in `dir/latency_cdf.svg`.
pub fn latency_cdf(dir: &Path, sides: [(&str, &[Outcome], &Path); 2]) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let mut curves = Vec::new();
    for (label, outcomes, runs) in sides {
        let mut lat: Vec<u64> = Vec::new();
        for o in outcomes {
            let log = crate::events::file_in(&runs.join(&o.run.id));
            if let Ok((_, l)) =
                crate::events::with_lines(&log, |it| crate::report::lookups_from_events(it))
            {
                lat.extend(l);
            }
        }
        lat.sort_unstable();
        curves.push((label.to_string(), lat));
    }
    let xmax = curves
        .iter()
        .filter_map(|(_, v)| v.last().copied())
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let path = dir.join("latency_cdf.svg");
    let root = SVGBackend::new(&path, (720, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Lookup latency CDF, A vs B (all replicates)",
            ("sans-serif", 20),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d((1f64..xmax * 1.2).log_scale(), 0f64..1.0)?;
    chart
        .configure_mesh()
        .x_desc("latency, ms (log)")
        .y_desc("fraction of lookups")
        .draw()?;
    for (i, (label, v)) in curves.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let n = v.len().max(1) as f64;
        let stride = v.len().div_ceil(1_000).max(1);
        chart
            .draw_series(LineSeries::new(
                v.iter()
                    .enumerate()
                    .filter(|(j, _)| j % stride == 0 || j + 1 == v.len())
                    .map(|(j, &ms)| ((ms as f64).max(1.0), (j + 1) as f64 / n)),
                color.stroke_width(2),
            ))?
            .label(format!("{label} ({} lookups)", v.len()))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_effect_sizes_match_hand_computed_values() {
        // A: 1, 2, 3 (mean 2, sd 1); B: 4, 5, 6 (mean 5, sd 1).
        let r = row("x", &[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(r.a.mean, 2.0);
        assert!((r.a.sd - 1.0).abs() < 1e-12);
        // t(0.975, 2) = 4.303; half-width = 4.303 · 1 / √3.
        assert!((r.a.ci95.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(r.diff, 3.0);
        // Welch: se = √(1/3 + 1/3), df = 4 → t = 2.776.
        let se = (2.0f64 / 3.0).sqrt();
        assert!((r.diff_ci95.unwrap() - 2.776 * se).abs() < 1e-9);
        // Hedges' g: d = 3 / 1 = 3, J = 1 − 3 / (4·6 − 9) = 0.8.
        assert!((r.hedges_g.unwrap() - 2.4).abs() < 1e-12);
    }

    #[test]
    fn one_run_a_side_has_no_interval_and_no_spread_no_effect_size() {
        let r = row("x", &[1.0], &[2.0]);
        assert_eq!(r.a.ci95, None);
        assert_eq!(r.diff_ci95, None);
        assert_eq!(r.hedges_g, None);
        let same = row("x", &[1.0, 1.0], &[1.0, 1.0]);
        assert_eq!(same.diff_ci95, Some(0.0));
        assert_eq!(same.hedges_g, None);
    }

    #[test]
    fn the_t_quantiles_are_the_tabled_ones() {
        assert!((t975(1.0) - 12.706).abs() < 1e-9);
        assert!((t975(10.0) - 2.228).abs() < 1e-9);
        assert!((t975(4.5) - (2.776 + 2.571) / 2.0).abs() < 1e-9);
        assert!((t975(120.0) - 1.980).abs() < 0.01);
        assert!(t975(0.5).is_nan());
    }
}

//! `muttr-sim sweep`: one scenario over a grid of parameter values × several RNG seeds — every
//! run a `muttr-sim run` of its own (a child process, `--jobs` at a time), one tidy CSV of
//! all runs' metrics, and a plot per metric against the first varied parameter (the mean over
//! seeds, with the range).
//!
//! ```text
//! muttr-sim sweep sim/scenarios/width3.toml --vary config.reply_width=3,8,20 \
//!     --vary config.alpha=1,3 --seeds 1,2,3 --out out/sweep
//! ```
//! writes `out/sweep/runs/<run>/` (the scenario as run, its `report.json` with provenance,
//! plots and log), `out/sweep/sweep.csv` (one row per run: run, the varied parameters, seed,
//! then [`METRICS`]) and `out/sweep/<metric>.svg`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::Value;

use crate::scenario::Scenario;

/// One parameter varied: a dotted key of the scenario (`config.alpha`, `network.loss`) and its
/// values (TOML literals).
#[derive(Debug, Clone, PartialEq)]
pub struct Vary {
    /// The dotted key.
    pub key: String,
    /// The values, in order.
    pub values: Vec<toml::Value>,
}

impl std::str::FromStr for Vary {
    type Err = String;

    /// `KEY=V1,V2,…`; each value is a TOML literal (`3`, `0.02`, `true`, `"text"`), a bare word
    /// is a string.
    fn from_str(s: &str) -> Result<Vary, String> {
        let (key, values) = s
            .split_once('=')
            .ok_or_else(|| format!("--vary {s:?}: expected KEY=V1,V2,…"))?;
        let key = key.trim();
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(format!("--vary {s:?}: {key:?} is not a dotted key"));
        }
        let values: Vec<toml::Value> = values
            .split(',')
            .map(|v| {
                let v = v.trim();
                toml::from_str::<toml::Table>(&format!("x = {v}"))
                    .ok()
                    .and_then(|mut t| t.remove("x"))
                    .unwrap_or_else(|| toml::Value::String(v.to_string()))
            })
            .collect();
        if values.is_empty() || values.iter().any(|v| v.as_str() == Some("")) {
            return Err(format!("--vary {s:?}: no values"));
        }
        Ok(Vary {
            key: key.to_string(),
            values,
        })
    }
}

/// One run of the sweep.
#[derive(Debug, Clone)]
pub struct Run {
    /// Directory name under `runs/`.
    pub id: String,
    /// The varied keys' values, in `--vary` order.
    pub params: Vec<(String, toml::Value)>,
    /// The RNG seed.
    pub seed: u64,
    /// The scenario as run (TOML).
    pub toml: String,
}

/// Every combination of the varied values × every seed, each with its scenario text; an
/// invalid combination is an error naming it.
pub fn plan(base: &Path, vary: &[Vary], seeds: &[u64]) -> anyhow::Result<Vec<Run>> {
    let text =
        std::fs::read_to_string(base).map_err(|e| anyhow::anyhow!("{}: {e}", base.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", base.display()))?;
    let name = table
        .get("name")
        .and_then(toml::Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| {
            base.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![Vec::new()];
    for v in vary {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                v.values.iter().map(move |val| {
                    let mut c = c.clone();
                    c.push((v.key.clone(), val.clone()));
                    c
                })
            })
            .collect();
    }
    let mut runs = Vec::new();
    for params in combos {
        for &seed in seeds {
            let mut t = table.clone();
            for (key, value) in &params {
                set(&mut t, key, value.clone())?;
            }
            t.insert("seed".into(), toml::Value::Integer(seed as i64));
            let label: Vec<String> = params.iter().map(|(k, v)| short_label(k, v)).collect();
            let id = format!("{}-seed{seed}", label.join("-"))
                .trim_start_matches('-')
                .replace(
                    |c: char| !(c.is_ascii_alphanumeric() || "=._-".contains(c)),
                    "_",
                );
            t.insert("name".into(), toml::Value::String(format!("{name}-{id}")));
            let toml = toml::to_string(&t)?;
            Scenario::from_toml(&toml).map_err(|e| anyhow::anyhow!("run {id}: {e}"))?;
            runs.push(Run {
                id,
                params: params.clone(),
                seed,
                toml,
            });
        }
    }
    Ok(runs)
}

/// `alpha=3` for `config.alpha` = 3: the key's last part and the value, for run ids and plot
/// legends.
fn short_label(key: &str, value: &toml::Value) -> String {
    format!("{}={}", key.rsplit('.').next().unwrap_or(key), plain(value))
}

/// A TOML value as plain text (strings without quotes).
fn plain(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sets the dotted `key` of `t` to `value`, making tables on the way.
fn set(t: &mut toml::Table, key: &str, value: toml::Value) -> anyhow::Result<()> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or(key);
    let mut at = t;
    for p in parts {
        let next = at
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        at = next
            .as_table_mut()
            .ok_or_else(|| anyhow::anyhow!("--vary {key}: {p} is not a table"))?;
    }
    at.insert(last.to_string(), value);
    Ok(())
}

/// The metrics of the CSV and the plots: column name, where in `report.json`, and a label.
pub const METRICS: [(&str, &str, &str); 12] = [
    ("lookup_success", "lookups.success_rate", "lookup success"),
    ("hops_mean", "lookups.hops.mean", "hops per lookup, mean"),
    ("hops_p99", "lookups.hops.p99", "hops per lookup, p99"),
    (
        "latency_median_ms",
        "lookups.latency_ms.median",
        "lookup latency median, ms",
    ),
    (
        "latency_p99_ms",
        "lookups.latency_ms.p99",
        "lookup latency p99, ms",
    ),
    (
        "messages_per_lookup",
        "lookups.messages.mean",
        "requests per lookup, mean",
    ),
    (
        "delivery_success",
        "delivery.success_rate",
        "delivery success",
    ),
    ("datagrams_sent", "traffic.datagrams_sent", "datagrams sent"),
    (
        "messages_verified",
        "messages.success_rate",
        "pod messages verified, share",
    ),
    (
        "sim_s_per_wall_s",
        "sim_seconds_per_wall_second",
        "simulated s per wall s",
    ),
    ("wall_seconds", "wall_seconds", "wall seconds"),
    ("peak_rss_mib", "peak_rss_mib", "peak RSS, MiB"),
];

/// The value at a dotted `path` of a report (`lookups.hops.mean`).
pub(crate) fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// What a finished run gave: its report, or why there is none.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run.
    pub run: Run,
    /// Its `report.json`, when it finished.
    pub report: Result<Value, String>,
}

/// Runs every run of the plan with `exe run` (`jobs` at a time) into `out/runs/<id>/`.
pub fn execute(exe: &Path, runs: Vec<Run>, out: &Path, jobs: usize) -> Vec<Outcome> {
    // Popped from the end: reversed, so the runs start in plan order.
    let queue = Mutex::new(runs.into_iter().enumerate().rev().collect::<Vec<_>>());
    let done = Mutex::new(Vec::new());
    let total = queue.lock().map(|q| q.len()).unwrap_or(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.pop());
                    let Some((i, run)) = next else { break };
                    let report = one(exe, &run, &out.join("runs").join(&run.id));
                    let line = match &report {
                        Ok(_) => "done".to_string(),
                        Err(e) => format!("FAILED: {e}"),
                    };
                    eprintln!("sweep: run {}/{total} {}: {line}", i + 1, run.id);
                    if let Ok(mut d) = done.lock() {
                        d.push((i, Outcome { run, report }));
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

fn one(exe: &Path, run: &Run, dir: &Path) -> Result<Value, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let file = dir.join("scenario.toml");
    std::fs::write(&file, &run.toml).map_err(|e| format!("{}: {e}", file.display()))?;
    let log = std::fs::File::create(dir.join("run.log")).map_err(|e| e.to_string())?;
    let status = Command::new(exe)
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .arg("--crypto-cache")
        .arg(dir.join("crypto-cache"))
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let report = std::fs::read_to_string(dir.join("report.json")).map_err(|_| {
        format!(
            "no report ({status}); see {}",
            dir.join("run.log").display()
        )
    })?;
    let v: Value = serde_json::from_str(&report).map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "{status}: an invariant failed; see {}",
            dir.join("run.log").display()
        ));
    }
    Ok(v)
}

/// The tidy CSV: one row per run — `run`, each varied key, `seed`, `ok`, then [`METRICS`]
/// (empty where a run has no such figure).
pub fn csv(vary: &[Vary], outcomes: &[Outcome]) -> String {
    let mut s = String::from("run");
    for v in vary {
        s.push(',');
        s.push_str(&v.key);
    }
    s.push_str(",seed,ok");
    for (name, _, _) in METRICS {
        s.push(',');
        s.push_str(name);
    }
    s.push('\n');
    for o in outcomes {
        s.push_str(&o.run.id);
        for (_, value) in &o.run.params {
            s.push(',');
            s.push_str(&plain(value));
        }
        s.push_str(&format!(",{},{}", o.run.seed, o.report.is_ok()));
        for (_, path, _) in METRICS {
            s.push(',');
            if let Some(x) = o.report.as_ref().ok().and_then(|r| at(r, path)) {
                s.push_str(&x.to_string());
            }
        }
        s.push('\n');
    }
    s
}

/// A plot per metric: x = the first varied key, one line per combination of the others,
/// y = the mean over seeds with a bar from the smallest to the largest.
pub fn plots(dir: &Path, vary: &[Vary], outcomes: &[Outcome]) -> anyhow::Result<Vec<PathBuf>> {
    use plotters::prelude::*;
    let Some(first) = vary.first() else {
        return Ok(Vec::new());
    };
    let xs: Vec<f64> = first
        .values
        .iter()
        .enumerate()
        .map(|(i, v)| number(v).unwrap_or(i as f64))
        .collect();
    let mut written = Vec::new();
    for (name, path, label) in METRICS {
        // series label (the other keys' values) → x index → the seeds' values
        let mut series: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
        for o in outcomes {
            let Some(y) = o.report.as_ref().ok().and_then(|r| at(r, path)?.as_f64()) else {
                continue;
            };
            let xi = first
                .values
                .iter()
                .position(|v| Some(v) == o.run.params.first().map(|(_, v)| v))
                .unwrap_or(0);
            let label: Vec<String> = o.run.params[1..]
                .iter()
                .map(|(k, v)| short_label(k, v))
                .collect();
            series
                .entry(label.join(" "))
                .or_default()
                .entry(xi)
                .or_default()
                .push(y);
        }
        if series.is_empty() {
            continue;
        }
        let all: Vec<f64> = series
            .values()
            .flat_map(|m| m.values().flatten().copied())
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        let pad = ((hi - lo) * 0.1).max(hi.abs() * 0.01).max(1e-9);
        let (xmin, xmax) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let xpad = ((xmax - xmin) * 0.05).max(0.5);
        let file = dir.join(format!("{name}.svg"));
        let root = SVGBackend::new(&file, (720, 440)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(label, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(xmin - xpad..xmax + xpad, (lo - pad).min(lo)..hi + pad)?;
        chart
            .configure_mesh()
            .x_desc(first.key.as_str())
            .y_desc(label)
            .draw()?;
        for (si, (legend, points)) in series.iter().enumerate() {
            let color = Palette99::pick(si).to_rgba();
            let means: Vec<(f64, f64)> = points
                .iter()
                .map(|(&xi, ys)| (xs[xi], ys.iter().sum::<f64>() / ys.len() as f64))
                .collect();
            let drawn = chart.draw_series(LineSeries::new(means.clone(), color.stroke_width(2)))?;
            let legend = if legend.is_empty() {
                "mean over seeds".to_string()
            } else {
                legend.clone()
            };
            drawn
                .label(legend)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart.draw_series(means.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            chart.draw_series(points.iter().map(|(&xi, ys)| {
                let (a, b) = ys
                    .iter()
                    .fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
                PathElement::new(vec![(xs[xi], a), (xs[xi], b)], color.stroke_width(1))
            }))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        drop(chart);
        drop(root);
        written.push(file);
    }
    Ok(written)
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_parses_keys_and_toml_values() {
        let v: Vary = "config.alpha=1, 3".parse().unwrap();
        assert_eq!(v.key, "config.alpha");
        assert_eq!(v.values, [toml::Value::Integer(1), toml::Value::Integer(3)]);
        let v: Vary = "network.loss=0.01,0.02".parse().unwrap();
        assert_eq!(v.values[1], toml::Value::Float(0.02));
        assert!("config.alpha".parse::<Vary>().is_err());
        assert!("config..alpha=1".parse::<Vary>().is_err());
        assert!("config.alpha=".parse::<Vary>().is_err());
    }

    #[test]
    fn the_plan_is_the_grid_times_the_seeds_and_refuses_bad_values() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("b.toml");
        std::fs::write(&base, "name = \"b\"\nseeds = 50\n[config]\nalpha = 3\n").unwrap();
        let vary = [
            "config.reply_width=3,20".parse::<Vary>().unwrap(),
            "config.alpha=1,3".parse::<Vary>().unwrap(),
        ];
        let runs = plan(&base, &vary, &[1, 2, 3]).unwrap();
        assert_eq!(runs.len(), 12);
        assert_eq!(runs[0].id, "reply_width=3-alpha=1-seed1");
        let sc = Scenario::from_toml(&runs[11].toml).unwrap();
        assert_eq!(
            (sc.config.reply_width, sc.config.alpha, sc.seed),
            (20, 3, 3)
        );
        assert_eq!(sc.name, "b-reply_width=20-alpha=3-seed3");
        // A value the scenario refuses is an error naming the run.
        let bad = ["config.alpha=0".parse::<Vary>().unwrap()];
        let err = plan(&base, &bad, &[1]).unwrap_err().to_string();
        assert!(err.contains("alpha=0-seed1"), "{err}");
    }

    #[test]
    fn the_csv_has_a_row_per_run_and_blank_for_missing_figures() {
        let vary = ["config.alpha=1,3".parse::<Vary>().unwrap()];
        let run = |a: i64, seed| Run {
            id: format!("alpha={a}-seed{seed}"),
            params: vec![("config.alpha".into(), toml::Value::Integer(a))],
            seed,
            toml: String::new(),
        };
        let outcomes = [
            Outcome {
                run: run(1, 1),
                report: Ok(
                    serde_json::json!({"lookups": {"success_rate": 0.5, "hops": {"mean": 2.5}}}),
                ),
            },
            Outcome {
                run: run(3, 1),
                report: Err("crashed".into()),
            },
        ];
        let text = csv(&vary, &outcomes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("run,config.alpha,seed,ok,lookup_success,hops_mean,"));
        assert!(
            lines[1].starts_with("alpha=1-seed1,1,1,true,0.5,2.5,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with("alpha=3-seed1,3,1,false,,"),
            "{}",
            lines[2]
        );
        let tmp = tempfile::tempdir().unwrap();
        let written = plots(tmp.path(), &vary, &outcomes).unwrap();
        assert!(written.iter().any(|p| p.ends_with("lookup_success.svg")));
        let svg = std::fs::read_to_string(tmp.path().join("hops_mean.svg")).unwrap();
        assert!(svg.contains("<svg"));
    }
}

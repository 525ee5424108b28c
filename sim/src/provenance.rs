//! Where a report came from, and whether it still stands.
//!
//! Every `report.json` carries a [`Provenance`]: the simulator's version, the git revision its
//! binary was built from and whether the checkout it ran in had uncommitted changes to the
//! code a run measures, the scenario with every default filled in, the engine and its thread
//! count, the compiler and the machine's cores. `muttr-sim check-report DIR` ([`check`]) reads
//! it back and says whether a committed report still matches today's code and scenario: no
//! commit since its revision touched [`MEASURED`], and the scenario file resolves to the same
//! scenario. A report older than provenance cannot be checked and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// The paths whose changes change what a run measures: the seed and pod code it runs
/// unchanged, the simulator itself, the percentiles of its reports (`stats`), and the locked
/// dependency versions — as git pathspecs,
/// leaving out what runs no part of a run (tests, benchmarks, documents, and the simulator's
/// command line, sweeps, comparisons, replicates and this module, which only start runs and read reports).
pub const MEASURED: [&str; 16] = [
    "node",
    "pod",
    "sim/src",
    "stats",
    "Cargo.toml",
    "Cargo.lock",
    ":(exclude,glob)**/tests/**",
    ":(exclude,glob)**/benches/**",
    ":(exclude,glob)**/*.md",
    ":(exclude)sim/src/main.rs",
    ":(exclude)sim/src/lib.rs",
    ":(exclude)sim/src/sweep.rs",
    ":(exclude)sim/src/compare.rs",
    ":(exclude)sim/src/replicates.rs",
    ":(exclude)sim/src/timeseries.rs",
    ":(exclude)sim/src/provenance.rs",
];

/// The measured paths for people: the included ones.
fn measured_text() -> String {
    MEASURED
        .iter()
        .filter(|p| !p.starts_with(":("))
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where a report came from (`report.json` → `provenance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// `muttr-sim`'s version.
    pub muttr_sim_version: String,
    /// The git revision the binary was built from (short hash; `unknown` outside a checkout).
    pub git_revision: String,
    /// Whether the checkout the run was made in had uncommitted changes under [`MEASURED`]
    /// (`None`: not a git checkout).
    pub dirty: Option<bool>,
    /// The scenario file, as given on the command line.
    pub scenario_file: Option<PathBuf>,
    /// The scenario as run, every default filled in.
    pub scenario: serde_json::Value,
    /// The engine: `net` (turmoil-net with the event-driven fabric).
    pub engine: String,
    /// Worker threads of the engine.
    pub threads: u32,
    /// The compiler that built the binary (`rustc --version`).
    pub rustc: String,
    /// The machine's cores (available parallelism).
    pub cores: usize,
}

impl Provenance {
    /// The provenance of a run of `scenario` (read from `file`, when there is one) made now,
    /// in the current directory's checkout.
    pub fn of(scenario: &Scenario, file: Option<&Path>) -> Provenance {
        Provenance {
            muttr_sim_version: env!("CARGO_PKG_VERSION").to_string(),
            git_revision: muttr_node::GIT_REV.to_string(),
            dirty: dirty(),
            scenario_file: file.map(Path::to_path_buf),
            scenario: serde_json::to_value(scenario).unwrap_or_default(),
            engine: "net".into(),
            threads: 1,
            rustc: env!("MUTTR_SIM_RUSTC").to_string(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

fn git(args: &[&str]) -> Option<std::process::Output> {
    Command::new("git").args(args).output().ok()
}

/// Uncommitted changes to tracked files under [`MEASURED`]; `None` outside a checkout.
fn dirty() -> Option<bool> {
    let mut args = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    args.extend(MEASURED);
    let out = git(&args).filter(|o| o.status.success())?;
    Some(!out.stdout.is_empty())
}

/// What the repository says today, for [`check`].
pub trait Today {
    /// The paths under [`MEASURED`] that differ between `revision` and HEAD; `Err` when the
    /// revision is unknown here.
    fn changed_since(&self, revision: &str) -> Result<Vec<String>, String>;
}

/// The git checkout of the current directory.
pub struct Git;

impl Today for Git {
    fn changed_since(&self, revision: &str) -> Result<Vec<String>, String> {
        let mut args = vec!["diff", "--name-only", revision, "HEAD", "--"];
        args.extend(MEASURED);
        let out = git(&args).ok_or("git cannot be run")?;
        if !out.status.success() {
            return Err(format!(
                "revision {revision} is not in this repository: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

/// The verdict on a finished run's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// One line per finding.
    pub lines: Vec<String>,
    /// Whether the report still stands for today's code and scenario.
    pub current: bool,
}

/// Checks the report of the run in `dir` against today's code (`today`) and its scenario
/// file (`scenario`; else `dir/scenario.toml`, as a sweep leaves it; else the one its
/// provenance names, relative to the current directory).
pub fn check(dir: &Path, scenario: Option<&Path>, today: &dyn Today) -> anyhow::Result<Verdict> {
    let path = dir.join("report.json");
    let text =
        std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let report: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    let mut lines = Vec::new();
    let Some(p) = report.get("provenance") else {
        lines.push(format!(
            "{}: no provenance (made before reports carried it): run it again to check it",
            path.display()
        ));
        return Ok(Verdict {
            lines,
            current: false,
        });
    };
    let p: Provenance = serde_json::from_value(p.clone())
        .map_err(|e| anyhow::anyhow!("{}: provenance: {e}", path.display()))?;
    let mut current = true;
    // The code.
    match today.changed_since(&p.git_revision) {
        Ok(changed) if changed.is_empty() => lines.push(format!(
            "code: matches — nothing under {} changed since {} (tests, benches, docs and the \
             simulator's command line aside)",
            measured_text(),
            p.git_revision
        )),
        Ok(changed) => {
            current = false;
            let shown: Vec<&str> = changed.iter().take(5).map(String::as_str).collect();
            lines.push(format!(
                "code: STALE — {} files under the measured paths changed since {} ({}{})",
                changed.len(),
                p.git_revision,
                shown.join(", "),
                if changed.len() > shown.len() {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        Err(e) => {
            current = false;
            lines.push(format!("code: cannot tell — {e}"));
        }
    }
    if p.dirty == Some(true) {
        current = false;
        lines.push(format!(
            "code: STALE — the run was made from uncommitted changes on top of {}",
            p.git_revision
        ));
    }
    // The scenario.
    // A sweep's run directory keeps its scenario beside its report.
    let beside = Some(dir.join("scenario.toml")).filter(|f| f.is_file());
    let file = scenario
        .map(Path::to_path_buf)
        .or(beside)
        .or(p.scenario_file.clone());
    match file {
        None => {
            current = false;
            lines.push("scenario: cannot tell — no scenario file named or recorded".into());
        }
        Some(file) => {
            let now = Scenario::load(&file)?;
            let mut now = serde_json::to_value(&now)?;
            // The run's seed may come from --seed; compare it apart.
            let ran_seed = p.scenario.get("seed").cloned();
            let file_seed = now.get("seed").cloned();
            if let (Some(obj), Some(seed)) = (now.as_object_mut(), ran_seed.clone()) {
                obj.insert("seed".into(), seed);
            }
            let differ = differences(&p.scenario, &now, "");
            if differ.is_empty() {
                lines.push(format!("scenario: matches {}", file.display()));
            } else {
                current = false;
                lines.push(format!(
                    "scenario: STALE — {} differs: {}",
                    file.display(),
                    differ.join("; ")
                ));
            }
            if ran_seed != file_seed {
                lines.push(format!(
                    "scenario: note — the run used seed {} (--seed), the file says {}",
                    ran_seed.unwrap_or_default(),
                    file_seed.unwrap_or_default()
                ));
            }
        }
    }
    Ok(Verdict { lines, current })
}

/// The keys whose values differ between two resolved scenarios (`network.loss: 0.01 → 0.02`).
fn differences(then: &serde_json::Value, now: &serde_json::Value, at: &str) -> Vec<String> {
    use serde_json::Value;
    match (then, now) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter()
                .flat_map(|k| {
                    let path = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    differences(
                        a.get(k).unwrap_or(&Value::Null),
                        b.get(k).unwrap_or(&Value::Null),
                        &path,
                    )
                })
                .collect()
        }
        _ if then == now => Vec::new(),
        _ => vec![format!("{at}: {then} → {now}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<Vec<String>, String>);

    impl Today for Fixed {
        fn changed_since(&self, _: &str) -> Result<Vec<String>, String> {
            self.0.clone()
        }
    }

    fn write_run(dir: &Path, scenario_toml: &str, dirty: Option<bool>) -> PathBuf {
        let file = dir.join("s.toml");
        std::fs::write(&file, scenario_toml).unwrap();
        let sc = Scenario::load(&file).unwrap();
        let mut p = Provenance::of(&sc, Some(&file));
        p.dirty = dirty;
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("report.json"),
            serde_json::json!({"seed": sc.seed, "provenance": p}).to_string(),
        )
        .unwrap();
        run
    }

    #[test]
    fn a_report_matches_until_the_code_or_the_scenario_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let run = write_run(tmp.path(), "seeds = 50\nduration_s = 60\n", Some(false));
        let v = check(&run, None, &Fixed(Ok(vec![]))).unwrap();
        assert!(v.current, "{v:?}");
        assert!(v.lines[0].starts_with("code: matches"), "{v:?}");
        assert!(v.lines[1].starts_with("scenario: matches"), "{v:?}");

        let v = check(&run, None, &Fixed(Ok(vec!["node/src/kad/node.rs".into()]))).unwrap();
        assert!(!v.current);
        assert!(v.lines[0].contains("1 files") && v.lines[0].contains("node/src/kad/node.rs"));

        let v = check(
            &run,
            None,
            &Fixed(Err("revision x is not in this repository".into())),
        )
        .unwrap();
        assert!(!v.current);
        assert!(v.lines[0].starts_with("code: cannot tell"), "{v:?}");

        // The scenario file is edited: the changed key is named.
        std::fs::write(tmp.path().join("s.toml"), "seeds = 60\nduration_s = 60\n").unwrap();
        let v = check(&run, None, &Fixed(Ok(vec![]))).unwrap();
        assert!(!v.current);
        assert!(v.lines[1].contains("seeds: 50 → 60"), "{v:?}");
    }

    #[test]
    fn a_run_from_uncommitted_changes_or_without_provenance_does_not_stand() {
        let tmp = tempfile::tempdir().unwrap();
        let run = write_run(tmp.path(), "seeds = 50\n", Some(true));
        let v = check(&run, None, &Fixed(Ok(vec![]))).unwrap();
        assert!(!v.current);
        assert!(v.lines.iter().any(|l| l.contains("uncommitted")), "{v:?}");

        std::fs::write(run.join("report.json"), r#"{"seed": 1}"#).unwrap();
        let v = check(&run, None, &Fixed(Ok(vec![]))).unwrap();
        assert!(!v.current);
        assert!(v.lines[0].contains("no provenance"), "{v:?}");
    }

    #[test]
    fn the_provenance_holds_the_resolved_scenario() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("s.toml");
        std::fs::write(&file, "seeds = 50\n").unwrap();
        let sc = Scenario::load(&file).unwrap();
        let p = Provenance::of(&sc, Some(&file));
        // Defaults are filled in: keys the file does not name are there.
        assert_eq!(p.scenario["seeds"], 50);
        assert!(p.scenario.get("duration_s").is_some());
        assert!(p.scenario.get("network").is_some());
        assert_eq!(p.threads, 1);
        assert!(p.rustc.starts_with("rustc "), "{}", p.rustc);
        assert!(p.cores >= 1);
    }
}

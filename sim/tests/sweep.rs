//! `muttr-sim sweep` end to end: a tiny grid, every run a real `muttr-sim run` child process,
//! one CSV row per run with figures, and the plots.

use std::process::Command;

#[test]
fn a_sweep_runs_the_grid_times_the_seeds_and_writes_its_csv_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("tiny.toml");
    std::fs::write(&base, "seeds = 20\nbootstrap_s = 5\nduration_s = 20\n").unwrap();
    let out = tmp.path().join("sweep");
    let run = Command::new(env!("CARGO_BIN_EXE_muttr-sim"))
        .arg("sweep")
        .arg(&base)
        .args([
            "--vary",
            "config.alpha=1,3",
            "--seeds",
            "1,2",
            "--jobs",
            "2",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 5, "{csv}");
    assert_eq!(&rows[0][..4], ["run", "config.alpha", "seed", "ok"]);
    let success = rows[0].iter().position(|c| *c == "lookup_success").unwrap();
    for r in &rows[1..] {
        assert_eq!(r[3], "true", "{csv}");
        let s: f64 = r[success].parse().unwrap();
        assert!((0.0..=1.0).contains(&s), "{csv}");
    }
    let ids: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
    assert_eq!(
        ids,
        [
            "alpha=1-seed1",
            "alpha=1-seed2",
            "alpha=3-seed1",
            "alpha=3-seed2"
        ]
    );
    // Each run is a run of its own: its scenario, report with provenance, plots.
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("runs/alpha=3-seed2/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["seed"], 2);
    assert_eq!(report["provenance"]["scenario"]["config"]["alpha"], 3);
    assert!(out.join("lookup_success.svg").is_file());
    assert!(out.join("latency_median_ms.svg").is_file());
    // A bad grid is a usage error.
    let bad = Command::new(env!("CARGO_BIN_EXE_muttr-sim"))
        .arg("sweep")
        .arg(&base)
        .args(["--vary", "config.alpha=0"])
        .arg("--out")
        .arg(tmp.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("alpha=0-seed1"));
}

#[test]
fn compare_with_replicates_gives_intervals_effect_sizes_and_overlaid_cdfs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.toml");
    let b = tmp.path().join("b.toml");
    std::fs::write(
        &a,
        "seeds = 20\nbootstrap_s = 5\nduration_s = 20\n[config]\nalpha = 1\n",
    )
    .unwrap();
    std::fs::write(
        &b,
        "seeds = 20\nbootstrap_s = 5\nduration_s = 20\n[config]\nalpha = 3\n",
    )
    .unwrap();
    let out = tmp.path().join("cmp");
    let run = Command::new(env!("CARGO_BIN_EXE_muttr-sim"))
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .args(["--seeds", "1,2,3", "--jobs", "2"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("mean ± 95 % CI over 3 and 3 runs"),
        "{stdout}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let hops = rows
        .iter()
        .find(|r| r["metric"] == "messages_per_lookup")
        .unwrap();
    assert_eq!(hops["a"]["n"], 3);
    assert_eq!(hops["b"]["n"], 3);
    // α = 3 asks more nodes per lookup than α = 1.
    assert!(hops["diff"].as_f64().unwrap() > 0.0, "{hops}");
    assert!(hops["diff_ci95"].as_f64().is_some(), "{hops}");
    assert!(out.join("latency_cdf.svg").is_file());
    assert!(out.join("A/runs/seed3/report.json").is_file());
    assert!(out.join("B/runs/seed1/report.json").is_file());
}

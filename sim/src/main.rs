//! `muttr-sim`: run simulation scenarios and compare them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use muttr_sim::{RunOptions, Scenario, compare, run_to_dir};

#[derive(Parser)]
#[command(
    name = "muttr-sim",
    version,
    about = "Deterministic Muttr network simulator"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Engine {
    /// turmoil-net with the event-driven fabric.
    Net,
    /// Stock turmoil::Sim, 1 ms tick.
    Stock,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one scenario; writes report.json, events.jsonl and SVG plots into --out.
    Run {
        /// Scenario file (TOML).
        file: PathBuf,
        /// RNG seed (overrides the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
        /// Where pods' OpenPGP outputs (keys, sealed messages) are recorded and replayed, so
        /// a rerun with the same seed gives the same event log.
        #[arg(long, default_value = "sim-cache")]
        crypto_cache: PathBuf,
        /// Simulation engine: `net` (turmoil-net, event-driven) or `stock` (stock turmoil::Sim,
        /// 1 ms tick; slow: short runs only; fixed latency, no faults).
        #[arg(long, default_value = "net")]
        engine: Engine,
        /// Worker threads of the `net` engine: seeds dealt over them, lockstep windows; the
        /// run (its event log) is the same for every count.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: u16,
    },
    /// Runs one scenario on both engines at several sizes and compares their speed.
    CompareEngines {
        /// Scenario file (TOML); its `seeds` is replaced by each of --seeds.
        file: PathBuf,
        /// Seed counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "200,400")]
        seeds: Vec<u32>,
        /// RNG seed (overrides the scenario's).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (engines.json, engines.txt).
        #[arg(long, default_value = "sim-engines")]
        out: PathBuf,
    },
    /// Redraws the plots of a finished run (hops, latency CDF, time series) from its event log.
    Plot {
        /// The run's events.jsonl.gz (or a plain events.jsonl of an older run).
        events: PathBuf,
        /// Output directory for hops.svg, latency_cdf.svg, timeseries.svg and timeseries.csv.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
    },
    /// Runs two scenarios on the same seed and prints their metrics side by side. A or B may
    /// also be the output directory of a finished run (one holding `report.json`, such as a
    /// committed `sim/reports/NAME/`): its report is read instead of running it again, so two
    /// long runs made side by side (one `run` per core) can be compared afterwards.
    Compare {
        /// Scenario A (a TOML file), or a finished run's directory.
        a: PathBuf,
        /// Scenario B (a TOML file), or a finished run's directory.
        b: PathBuf,
        /// RNG seed for both (default: A's).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Replicates: run A and B once per seed (in parallel, --jobs at a time) and compare
        /// means with 95 % confidence intervals, the difference's Welch interval and Hedges'
        /// g, and overlay both sides' lookup latency CDFs (A and B must be scenario files).
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
        /// Runs at a time with --seeds (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory (A/ and B/ runs, compare.json, compare.txt).
        #[arg(long, default_value = "sim-compare")]
        out: PathBuf,
        /// Record/replay directory of pods' OpenPGP outputs (see `run`).
        #[arg(long, default_value = "sim-cache")]
        crypto_cache: PathBuf,
    },
    /// Runs one scenario over a grid of parameter values × RNG seeds (each a `run` of its own,
    /// --jobs at a time); writes runs/<run>/, sweep.csv (one row per run) and a plot per metric.
    Sweep {
        /// The base scenario (TOML).
        file: PathBuf,
        /// A parameter and its values, `KEY=V1,V2,…` with KEY a dotted scenario key
        /// (`config.alpha=1,3`, `network.loss=0.01,0.05`); repeatable: the grid is every
        /// combination. The first one is the plots' x axis.
        #[arg(long, required = true)]
        vary: Vec<muttr_sim::sweep::Vary>,
        /// RNG seeds: every combination runs once per seed.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        seeds: Vec<u64>,
        /// Runs at a time (default: the machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Output directory.
        #[arg(long, default_value = "sim-sweep")]
        out: PathBuf,
    },
    /// Says whether a finished run's report (a committed `sim/reports/NAME/`) still stands:
    /// no commit since the revision in its provenance changed the code a run measures, and its
    /// scenario file still resolves to the scenario it ran. Exit 0 when it stands, 1 when not.
    CheckReport {
        /// The run's directory (holding `report.json`).
        dir: PathBuf,
        /// The scenario file to compare with (default: DIR/scenario.toml when there is one, as
        /// in a sweep's runs, else the one its provenance names, relative to the current
        /// directory).
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("muttr-sim: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run {
            file,
            seed,
            out,
            engine: Engine::Stock,
            ..
        } => {
            let sc = Scenario::load(&file)?;
            let r = muttr_sim::stock::run_stock(&sc, seed)?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(
                out.join("stock.json"),
                serde_json::to_string_pretty(&r)? + "\n",
            )?;
            println!(
                "stock turmoil (1 ms tick): {} seeds, {:.1} simulated s in {:.1} wall s ({:.2} wall s per simulated s), peak RSS {:.0} MiB",
                r.seeds,
                r.simulated_seconds,
                r.wall_seconds,
                r.wall_seconds_per_simulated_second,
                r.peak_rss_mib
            );
            println!(
                "lookups: {}/{} found, hops median {} p99 {}, latency median {} ms; {} published, {} delivered, {} lost",
                r.found,
                r.lookups,
                r.hops.median,
                r.hops.p99,
                r.latency_ms.median,
                r.publishes,
                r.delivered,
                r.lost
            );
            println!("wrote {}", out.join("stock.json").display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CompareEngines {
            file,
            seeds,
            seed,
            out,
        } => {
            let sc = Scenario::load(&file)?;
            let rows = muttr_sim::stock::compare_engines(&sc, &seeds, seed)?;
            let text = format!(
                "{} (seed {}), same scenario on both engines\n{}",
                file.display(),
                seed.unwrap_or(sc.seed),
                muttr_sim::stock::engines_table(&rows)
            );
            print!("{text}");
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("engines.txt"), &text)?;
            std::fs::write(
                out.join("engines.json"),
                serde_json::to_string_pretty(&rows)? + "\n",
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            file,
            seed,
            out,
            crypto_cache,
            engine: Engine::Net,
            threads,
        } => {
            let sc = Scenario::load(&file)?;
            let opts = RunOptions {
                seed,
                progress: true,
                crypto_cache: Some(crypto_cache),
                scenario_file: Some(file.clone()),
                threads: threads.into(),
                events_file: None,
            };
            let o = run_to_dir(&sc, &opts, &out)?;
            print!("{}", o.report.summary());
            println!("wrote {}", out.join("report.json").display());
            if !o.report.invariants.ok {
                eprintln!(
                    "FAILED: invariant violated or host panicked; reproduce with: muttr-sim run {} --seed {}",
                    file.display(),
                    o.report.seed
                );
                for v in o
                    .report
                    .invariants
                    .violations
                    .iter()
                    .chain(&o.report.invariants.panics)
                {
                    eprintln!("  {v}");
                }
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sweep {
            file,
            vary,
            seeds,
            jobs,
            out,
        } => {
            use muttr_sim::sweep;
            let runs = sweep::plan(&file, &vary, &seeds)?;
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            eprintln!(
                "sweep: {} runs ({} combinations × {} seeds), {jobs} at a time",
                runs.len(),
                runs.len() / seeds.len().max(1),
                seeds.len()
            );
            std::fs::create_dir_all(&out)?;
            let outcomes = sweep::execute(&std::env::current_exe()?, runs, &out, jobs);
            std::fs::write(out.join("sweep.csv"), sweep::csv(&vary, &outcomes))?;
            let plots = sweep::plots(&out, &vary, &outcomes)?;
            let failed: Vec<&str> = outcomes
                .iter()
                .filter(|o| o.report.is_err())
                .map(|o| o.run.id.as_str())
                .collect();
            println!(
                "wrote {} ({} runs) and {} plots into {}",
                out.join("sweep.csv").display(),
                outcomes.len(),
                plots.len(),
                out.display()
            );
            if !failed.is_empty() {
                eprintln!("FAILED runs: {}", failed.join(", "));
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::CheckReport { dir, scenario } => {
            let v = muttr_sim::provenance::check(
                &dir,
                scenario.as_deref(),
                &muttr_sim::provenance::Git,
            )?;
            for line in &v.lines {
                println!("{line}");
            }
            println!(
                "{}: {}",
                dir.display(),
                if v.current {
                    "stands for today's code and scenario"
                } else {
                    "does NOT stand: run it again"
                }
            );
            Ok(if v.current {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Plot { events, out } => {
            let (hops, lat) = muttr_sim::events::with_lines(&events, |it| {
                muttr_sim::report::lookups_from_events(it)
            })?;
            std::fs::create_dir_all(&out)?;
            muttr_sim::report::write_plots(&out, &hops, &lat)?;
            muttr_sim::events::with_lines(&events, |lines| {
                muttr_sim::timeseries::write(&out, lines)
            })??;
            println!("{} lookups plotted into {}", hops.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare {
            a,
            b,
            seeds,
            jobs,
            out,
            ..
        } if !seeds.is_empty() => {
            use muttr_sim::{replicates, sweep};
            let jobs =
                jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let exe = std::env::current_exe()?;
            let mut sides = Vec::new();
            for (file, side) in [(&a, "A"), (&b, "B")] {
                let runs = sweep::plan(file, &[], &seeds)?;
                eprintln!("compare: {side} = {}, {} runs", file.display(), runs.len());
                let dir = out.join(side);
                sides.push(sweep::execute(&exe, runs, &dir, jobs));
            }
            let rows = replicates::rows(&sides[0], &sides[1]);
            let text = replicates::table(&a.display().to_string(), &b.display().to_string(), &rows);
            write_comparison(
                &out,
                &text,
                serde_json::json!({
                    "a": a.display().to_string(),
                    "b": b.display().to_string(),
                    "seeds": seeds,
                    "rows": rows,
                }),
            )?;
            replicates::latency_cdf(
                &out,
                [
                    ("A", &sides[0], &out.join("A").join("runs")),
                    ("B", &sides[1], &out.join("B").join("runs")),
                ],
            )?;
            let failed: Vec<String> = sides
                .iter()
                .zip(["A", "B"])
                .flat_map(|(o, side)| {
                    o.iter()
                        .filter(|o| o.report.is_err())
                        .map(move |o| format!("{side}/{}", o.run.id))
                })
                .collect();
            if !failed.is_empty() {
                eprintln!("FAILED runs: {}", failed.join(", "));
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare {
            a,
            b,
            seed,
            out,
            crypto_cache,
            ..
        } => {
            let finished = |p: &PathBuf| p.is_dir() && p.join("report.json").is_file();
            let read = |p: &PathBuf| -> anyhow::Result<muttr_sim::Report> {
                let text = std::fs::read_to_string(p.join("report.json"))?;
                Ok(serde_json::from_str(&text)?)
            };
            let seed = match (seed, finished(&a)) {
                (Some(s), _) => s,
                (None, true) => read(&a)?.seed,
                (None, false) => Scenario::load(&a)?.seed,
            };
            let opts = RunOptions {
                seed: Some(seed),
                progress: true,
                crypto_cache: Some(crypto_cache),
                scenario_file: None,
                threads: 1,
                events_file: None,
            };
            let get = |p: &PathBuf, side: &str| -> anyhow::Result<muttr_sim::Report> {
                if finished(p) {
                    return read(p);
                }
                let sc = Scenario::load(p)?;
                let opts = RunOptions {
                    scenario_file: Some(p.clone()),
                    ..opts.clone()
                };
                Ok(run_to_dir(&sc, &opts, &out.join(side))?.report)
            };
            let ra = get(&a, "A")?;
            let rb = get(&b, "B")?;
            if ra.seed != rb.seed {
                eprintln!(
                    "muttr-sim: note: A ran on seed {} and B on seed {}",
                    ra.seed, rb.seed
                );
            }
            let (sa, sb) = (ra.scenario.clone(), rb.scenario.clone());
            let rows = compare::rows(&ra, &rb);
            let text = format!(
                "A = {} , B = {} , seed {}\n{}",
                a.display(),
                b.display(),
                ra.seed,
                compare::table(&sa, &sb, &rows)
            );
            write_comparison(
                &out,
                &text,
                serde_json::json!({
                    "a": a.display().to_string(),
                    "b": b.display().to_string(),
                    "seed": ra.seed,
                    "rows": rows,
                }),
            )?;
            if !(ra.invariants.ok && rb.invariants.ok) {
                eprintln!("FAILED: an invariant was violated (seed {})", ra.seed);
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a comparison's table and writes it (`compare.txt`) and its figures (`compare.json`)
/// into `out`.
fn write_comparison(
    out: &std::path::Path,
    text: &str,
    json: serde_json::Value,
) -> anyhow::Result<()> {
    print!("{text}");
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("compare.txt"), text)?;
    std::fs::write(
        out.join("compare.json"),
        serde_json::to_string_pretty(&json)? + "\n",
    )?;
    Ok(())
}

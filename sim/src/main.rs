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
    },
    /// Redraws the SVG plots of a finished run from its event log.
    Plot {
        /// The run's events.jsonl.
        events: PathBuf,
        /// Output directory for hops.svg and latency_cdf.svg.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
    },
    /// Runs two scenarios on the same seed and prints their metrics side by side.
    Compare {
        /// Scenario A.
        a: PathBuf,
        /// Scenario B.
        b: PathBuf,
        /// RNG seed for both (default: A's).
        #[arg(long)]
        seed: Option<u64>,
        /// Output directory (A/ and B/ runs, compare.json, compare.txt).
        #[arg(long, default_value = "sim-compare")]
        out: PathBuf,
        /// Record/replay directory of pods' OpenPGP outputs (see `run`).
        #[arg(long, default_value = "sim-cache")]
        crypto_cache: PathBuf,
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
            crypto_cache,
        } => {
            let sc = Scenario::load(&file)?;
            let opts = RunOptions {
                seed,
                progress: true,
                crypto_cache: Some(crypto_cache),
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
        Cmd::Plot { events, out } => {
            let text = std::fs::read_to_string(&events)?;
            let (hops, lat) = muttr_sim::report::lookups_from_events(&text);
            std::fs::create_dir_all(&out)?;
            muttr_sim::report::write_plots(&out, &hops, &lat)?;
            println!("{} lookups plotted into {}", hops.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Compare {
            a,
            b,
            seed,
            out,
            crypto_cache,
        } => {
            let sa = Scenario::load(&a)?;
            let sb = Scenario::load(&b)?;
            let seed = Some(seed.unwrap_or(sa.seed));
            let opts = RunOptions {
                seed,
                progress: true,
                crypto_cache: Some(crypto_cache),
            };
            let ra = run_to_dir(&sa, &opts, &out.join("A"))?.report;
            let rb = run_to_dir(&sb, &opts, &out.join("B"))?.report;
            let rows = compare::rows(&ra, &rb);
            let text = format!(
                "A = {} , B = {} , seed {}\n{}",
                a.display(),
                b.display(),
                ra.seed,
                compare::table(&sa.name, &sb.name, &rows)
            );
            print!("{text}");
            std::fs::write(out.join("compare.txt"), &text)?;
            std::fs::write(
                out.join("compare.json"),
                serde_json::to_string_pretty(&serde_json::json!({
                    "a": a.display().to_string(),
                    "b": b.display().to_string(),
                    "seed": ra.seed,
                    "rows": rows,
                }))? + "\n",
            )?;
            if !(ra.invariants.ok && rb.invariants.ok) {
                eprintln!("FAILED: an invariant was violated (seed {})", ra.seed);
                return Ok(ExitCode::from(1));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

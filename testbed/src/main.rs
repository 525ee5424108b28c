//! `muttr-testbed`: runs a scenario on real processes in network namespaces (see the crate
//! docs), or one of the helper processes the runner starts inside them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use muttr_testbed::{netns, runner, scenario::Scenario, switch, workload};

/// Exit status when namespaces cannot be made here (no privilege, no iproute2/ethtool).
const EXIT_NO_PRIVILEGE: u8 = 77;

#[derive(Parser)]
#[command(
    version,
    about = "Muttr multi-host fault testbed: real seeds and pods in network namespaces"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs a scenario and writes OUT/report.json, report.txt, logs/ and the event streams.
    Run {
        /// The scenario (TOML), e.g. testbed/scenarios/faults30.toml.
        scenario: PathBuf,
        /// Output directory [default: testbed-out/NAME].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overrides the scenario's RNG seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Directory of muttr-seed and muttr-pod [default: this program's directory].
        #[arg(long)]
        bin_dir: Option<PathBuf>,
    },
    /// Deletes every namespace a testbed run left behind (and kills what runs in them).
    Cleanup,
    /// (internal) The impairing switch, run in the switch namespace; control on stdin.
    Switch {
        /// Interfaces, comma-separated, in host order.
        #[arg(long, value_delimiter = ',')]
        ports: Vec<String>,
        /// RNG seed of loss, jitter and reordering.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// (internal) The users of one pod, run in the pod's namespace; commands on stdin.
    Client {
        /// The plan (JSON) written by the runner.
        #[arg(long)]
        plan: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            scenario,
            out,
            seed,
            bin_dir,
        } => {
            let s = match Scenario::load(&scenario) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("muttr-testbed: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = netns::check_privilege() {
                eprintln!("muttr-testbed: {e}");
                return ExitCode::from(EXIT_NO_PRIVILEGE);
            }
            let me = match std::env::current_exe() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("muttr-testbed: cannot find this program: {e}");
                    return ExitCode::from(2);
                }
            };
            let bin_dir = bin_dir
                .or_else(|| me.parent().map(PathBuf::from))
                .unwrap_or_default();
            let opts = runner::Options {
                bin_dir,
                me,
                out: out.unwrap_or_else(|| PathBuf::from("testbed-out").join(&s.name)),
                seed,
            };
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("muttr-testbed: {e}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(runner::run(&s, &opts)) {
                Ok(report) => {
                    print!("{}", report.text());
                    println!("report: {}", opts.out.join("report.json").display());
                    if report.pass {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("muttr-testbed: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Cleanup => {
            let gone = netns::cleanup_all();
            println!(
                "removed {} namespaces{}",
                gone.len(),
                if gone.is_empty() {
                    String::new()
                } else {
                    format!(": {}", gone.join(" "))
                }
            );
            ExitCode::SUCCESS
        }
        Cmd::Switch { ports, seed } => match switch::run(&ports, seed) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("switch: {e:#}");
                ExitCode::from(2)
            }
        },
        Cmd::Client { plan } => {
            let plan: workload::Plan = match std::fs::read(&plan)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice(&b)?))
            {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("client: {}: {e}", plan.display());
                    return ExitCode::from(2);
                }
            };
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("client: {e}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(workload::run(plan)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("client: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

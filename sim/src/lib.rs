//! # muttr-sim: thousands of unchanged Muttr seeds on simulated sockets
//!
//! The simulator runs the node crate's own driver ([`muttr_node::driver::spawn_seed`]) — the
//! code that runs on real UDP sockets — on turmoil-net's simulated network, through the
//! [`muttr_node::net::Transport`] trait. There is no `cfg` switch in the node crate: the choice
//! of sockets is a value passed at run time.
//!
//! Time is virtual: one paused current-thread tokio runtime carries every host, and when all of
//! them wait, tokio jumps to the next timer (a node's timeout or the next datagram's arrival), so
//! a quiet network costs nothing to simulate. The node's wall clock ([`muttr_node::net::Clock`])
//! is created inside that runtime and follows virtual time from a fixed date.
//!
//! ## Module map
//! | module | what it holds |
//! |---|---|
//! | [`net`] | `SimTransport`/`SimSocket`: the node's transport trait over turmoil-net, host-scoped |
//! | [`tcp`] | simulated TCP: an `axum::serve::Listener` for pods, a client `Dialer`, host-scoped |
//! | [`pod_host`] | a pod (unchanged `muttr_pod::serve`, embedded seed, SQLite) on a simulated host |
//! | [`users`] | pods' users (the client library), the messaging workload, its stages and report |
//! | [`cache`] | record/replay of OpenPGP outputs (keys, seals), for determinism |
//! | [`engine`] | the parallel deterministic engine: workers in lockstep windows, canonical delivery, jobs to seeds |
//! | [`fabric`] | the network model (latency, loss, partitions), traffic counters |
//! | [`events`] | the event log: hashed as written, in memory or streamed to `events.jsonl.gz`, read back line by line |
//! | [`scenario`] | the TOML scenario format |
//! | [`store`] | a value store wrapper that feeds the invariant checker's oracle |
//! | [`memory`] | resident memory and CPU time sampled at the phase boundaries of a run |
//! | [`mod@run`] | one run, a file per phase: set-up, world state, workload schedule, nodes, operations, report |
//! | [`report`] | `report.json`, the human summary, SVG plots |
//! | [`provenance`] | where a report came from (revision, scenario, engine, machine), `check-report` |
//! | [`compare`] | two scenarios on one seed, side by side with ratios |
//! | [`replicates`] | `compare --seeds`: means, 95 % intervals, Welch difference, Hedges' g, overlaid CDFs |
//! | [`timeseries`] | a run over time from its event log: live seeds, lookups, messages per interval |
//! | [`sweep`] | a scenario over a grid of parameters × seeds: runs in parallel, a tidy CSV, plots |
//! | [`stock`] | the comparison engine: the same seeds on stock `turmoil::Sim` (1 ms tick) |
//!
//! Pods run the unchanged pod crate (`muttr_pod::serve` over simulated TCP) and their users the
//! unchanged client library; see [`users`].

pub mod cache;
pub mod compare;
pub mod engine;
pub mod events;
pub mod fabric;
pub mod memory;
pub mod net;
pub mod pod_host;
pub mod provenance;
pub mod replicates;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stock;
pub mod store;
pub mod sweep;
pub mod tcp;
pub mod timeseries;
pub mod users;

pub use report::Report;
pub use run::{RunOptions, RunOutput, run};
pub use scenario::Scenario;

/// Runs a scenario and writes `report.json`, `events.jsonl.gz` (streamed during the run),
/// `hops.svg`, `latency_cdf.svg`, `timeseries.csv` and `timeseries.svg` into `out`.
pub fn run_to_dir(
    scenario: &Scenario,
    opts: &RunOptions,
    out: &std::path::Path,
) -> anyhow::Result<RunOutput> {
    std::fs::create_dir_all(out)?;
    let log = out.join("events.jsonl.gz");
    // A plain log of an earlier run in the same directory would not describe this one.
    let _ = std::fs::remove_file(out.join("events.jsonl"));
    let opts = RunOptions {
        events_file: Some(log.clone()),
        ..opts.clone()
    };
    let output = run(scenario, &opts)?;
    std::fs::write(
        out.join("report.json"),
        serde_json::to_string_pretty(&output.report)? + "\n",
    )?;
    report::write_plots(out, &output.hops, &output.latencies_ms)?;
    events::with_lines(&log, |lines| timeseries::write(out, lines))??;
    Ok(output)
}

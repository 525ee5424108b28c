//! One simulation run: hosts, seeds, the join phase, workload, churn, partitions, invariant
//! checks, and the report.
//!
//! The run is a program for the [`crate::engine`]: its schedule (the orchestrator,
//! the pods and their users) runs on worker 0, each seed on its worker, and the orchestrator
//! reaches a seed only through [`engine::remote`] jobs (start, bootstrap, publish, look up,
//! stop). Every random choice comes from a ChaCha generator seeded from the scenario's seed,
//! collections that are iterated are ordered, and `select!`s are biased, so one seed gives one
//! byte-identical event log, on any number of threads.
//!
//! | file | phase |
//! |---|---|
//! | `mod.rs` | [`run`]: set-up of the runtime, the network and the world, then the drain and the report |
//! | `world.rs` | the run's state: event log, seed slots, metrics, the `World` every task shares |
//! | `workload.rs` | the schedule: join phase, Poisson publishes and lookups, churn, partitions, pods and users |
//! | `nodes.rs` | seeds starting, stopping, bootstrapping, churning; the last reading of every table |
//! | `ops.rs` | one operation each: publish, lookup, FIND_VALUE, the storage invariant check |
//! | `summary.rs` | the report of a finished run |

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use muttr_node::NodeId;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;
use turmoil_net::KernelConfig;

use crate::engine::{self, EngineConfig, Layout, PanicLog};
use crate::fabric::{host_ip, splitmix64};
use crate::report::{self, Report};
use crate::scenario::Scenario;
use crate::store::Holdings;

/// UDP port every simulated seed listens on.
pub const SEED_PORT: u16 = 4000;

/// Wall-clock time at the start of every simulation (2026-01-01T00:00:00Z), in ms since the
/// epoch: the injected [`muttr_node::net::Clock`] starts here and follows virtual time.
pub const EPOCH_MS: u64 = 1_767_225_600_000;

/// Longest wait, after the workload ends, for operations still in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(120);

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the scenario's RNG seed.
    pub seed: Option<u64>,
    /// Shows a progress bar on stderr (hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Where pods' OpenPGP outputs are recorded and replayed ([`crate::cache`]); `None`: in
    /// memory only (two runs with pods then differ).
    pub crypto_cache: Option<std::path::PathBuf>,
    /// The scenario file the scenario was read from, for the report's provenance.
    pub scenario_file: Option<std::path::PathBuf>,
    /// Worker threads of the engine ([`crate::engine`]); 0 or 1: one. The run is the same
    /// for every count.
    pub threads: usize,
    /// Streams the event log to this gzip file ([`crate::events`]) instead of keeping it in
    /// memory ([`RunOutput::events`] is then empty).
    pub events_file: Option<std::path::PathBuf>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The report.
    pub report: Report,
    /// The event log, JSON lines (empty when streamed to [`RunOptions::events_file`]).
    pub events: Vec<u8>,
    /// Hops of every finished lookup, in completion order.
    pub hops: Vec<u32>,
    /// Latency (virtual ms) of every finished lookup, in completion order.
    pub latencies_ms: Vec<u64>,
}

mod nodes;
mod ops;
mod summary;
mod workload;
mod world;

use summary::*;
use workload::*;
use world::*;

thread_local! {
    static PANICS: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that records panics of simulated hosts on the simulating
/// thread, then defers to the previous hook.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| {
                if let Ok(mut p) = p.try_borrow_mut()
                    && let Some(v) = p.as_mut()
                {
                    v.push(info.to_string());
                }
            });
            prev(info);
        }));
    });
}

/// Runs `scenario` to the end and measures it.
pub fn run(scenario: &Scenario, opts: &RunOptions) -> anyhow::Result<RunOutput> {
    scenario.validate()?;
    let wall = std::time::Instant::now();
    let seed = opts.seed.unwrap_or(scenario.seed);
    let sc = scenario.clone();

    // Churn is planned up front: turmoil-net cannot add hosts once the network is running, so
    // every host that will ever join is registered now.
    let mut churn_rng = ChaCha8Rng::seed_from_u64(splitmix64(seed ^ 0xC4_0E));
    let replace_times = poisson_times(
        &mut churn_rng,
        sc.churn.replace_per_hour * sc.seeds as f64 / 3600.0,
        sc.duration_s,
    );
    let crash_times = poisson_times(
        &mut churn_rng,
        sc.churn.crash_per_hour * sc.seeds as f64 / 3600.0,
        sc.duration_s,
    );
    let hosts = sc.seeds + replace_times.len() as u32;
    let all_hosts = hosts + sc.pods * (1 + sc.users_per_pod);

    // Datagrams up to the P-W1 maximum must fit: MTU = payload + UDP + IPv4 headers.
    // TCP (pods) retransmits after a count of routing passes without progress, not after a
    // time: the defaults (3 passes, 5 retries) would kill connections that merely wait for a
    // 40 ms answer. The network never loses a TCP segment at random (see `Fabric`), so
    // retransmission is only needed after a partition.
    let kernel = KernelConfig::default()
        .mtu(65_535 + 28)
        .retx_threshold(1_000_000)
        .retx_max(20);
    let window_ms = sc.network.window_ms.max(1);
    let ms = |s: f64| Duration::from_secs_f64(s).as_millis() as u64;
    let workload_start_ms = ms(sc.bootstrap_s);
    // The storage checks read every seed's holdings: at a boundary, every worker held.
    let mut holds = std::collections::BTreeSet::new();
    let (every, end) = (
        ms(sc.checks.interval_s),
        workload_start_ms + ms(sc.duration_s),
    );
    let mut t = workload_start_ms + every;
    while every > 0 && t <= end {
        holds.insert(t.div_ceil(window_ms) * window_ms);
        t += every;
    }
    let cfg = EngineConfig {
        layout: Layout::new(opts.threads.max(1), hosts, worker0_load(&sc)),
        hosts: all_hosts,
        window_ms,
        network: sc.network.clone(),
        kernel,
        seed: splitmix64(seed ^ 0xFAB),
        workload_start_ms,
        holds,
    };
    install_panic_hook();
    let panic_log = PanicLog {
        start: || PANICS.with(|p| *p.borrow_mut() = Some(Vec::new())),
        take: || PANICS.with(|p| p.borrow_mut().take()).unwrap_or_default(),
    };
    let log = match &opts.events_file {
        Some(path) => EventLog::to_gzip(path)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?,
        None => EventLog::in_memory(),
    };
    let (world, results) = engine::run(cfg, EPOCH_MS, panic_log, || async {
        let t0 = Instant::now();
        let workload_start = t0 + Duration::from_millis(workload_start_ms);
        let partitions = sc
            .network
            .partitions
            .iter()
            .map(|p| {
                (
                    workload_start + Duration::from_secs_f64(p.start_s),
                    workload_start + Duration::from_secs_f64(p.end_s),
                )
            })
            .collect();
        let slots = (0..hosts)
            .map(|i| {
                let ip = host_ip(i);
                Slot {
                    ip,
                    id: NodeId::from_addr(SocketAddr::new(IpAddr::V4(ip), SEED_PORT)),
                    state: State::Unused,
                    incarnation: 0,
                }
            })
            .collect();
        let pod_hosts = (hosts..all_hosts)
            .map(|i| (engine::host_id(i), host_ip(i)))
            .collect();
        let world: W = Rc::new(RefCell::new(World {
            seed,
            doorbell: engine::doorbell(),
            clock: engine::clock(),
            t0,
            slots,
            live: Vec::new(),
            live_pos: vec![usize::MAX; hosts as usize],
            next_fresh: sc.seeds,
            published: Vec::new(),
            holdings: Holdings::default(),
            log,
            m: Metrics::default(),
            rng: ChaCha8Rng::seed_from_u64(splitmix64(seed ^ 0x0A11)),
            inflight: 0,
            partitions,
            routing: report::Routing::default(),
            end_ms: None,
            pod_hosts,
            crypto_cache: opts.crypto_cache.clone(),
            messages: None,
            mem: crate::memory::Memory::default(),
            sc: sc.clone(),
        }));
        orchestrate(world.clone(), replace_times, crash_times, opts.progress).await?;
        anyhow::Ok(world)
    })?;
    let engine::Merged {
        fabric,
        panics,
        busy_seconds,
    } = engine::merge(results);
    let Ok(world) = Rc::try_unwrap(world) else {
        anyhow::bail!("simulation state still shared after the run");
    };
    let mut w = world.into_inner();
    for p in &panics {
        let t = w.t_ms();
        push_event(&mut w.log, t, &Event::Panic { message: p.clone() });
    }
    let hops = std::mem::take(&mut w.m.hops);
    let latencies_ms = std::mem::take(&mut w.m.latencies_ms);
    let live = w.live.len();
    w.log(Event::End { live });
    let log = w
        .log
        .finish()
        .map_err(|e| anyhow::anyhow!("writing the event log: {e}"))?;
    let wall_seconds = wall.elapsed().as_secs_f64();
    let mut report = build_report(&mut w, &fabric, &hops, &latencies_ms, panics, wall_seconds);
    report.events = log.lines;
    report.events_sha256 = log.sha256;
    report.peak_rss_mib = crate::memory::peak_rss_mib();
    report.worker_busy_seconds = busy_seconds;
    report.memory = std::mem::take(&mut w.mem);
    report.memory.cpu_seconds = crate::memory::cpu_seconds();
    let mut ran = scenario.clone();
    ran.seed = w.seed;
    let mut provenance = crate::provenance::Provenance::of(&ran, opts.scenario_file.as_deref());
    provenance.threads = opts.threads.max(1) as u32;
    report.provenance = Some(provenance);
    Ok(RunOutput {
        report,
        events: log.text,
        hops,
        latencies_ms,
    })
}

/// What worker 0 carries besides its seeds, in seeds' worth of work ([`Layout::new`]): each pod
/// (its embedded seed, its HTTP server and store) counts [`POD_LOAD`], each user (its client,
/// its crypto, and — for an active user — its own seed) [`USER_LOAD`] plus one for the seed.
fn worker0_load(sc: &Scenario) -> f64 {
    let users = f64::from(sc.pods * sc.users_per_pod);
    f64::from(sc.pods) * POD_LOAD + users * (USER_LOAD + sc.messaging.active_share)
}

/// A pod's work in seeds' worth (its server, store and federation; its users are counted
/// apart). Small beside the users' share: see [`USER_LOAD`].
const POD_LOAD: f64 = 2.0;

/// A user's client work (HTTP or WebSocket, sealing and opening, polling) in seeds' worth,
/// besides the seed of an active user. Measured on `seeds10k-pods` on 2 threads, from the
/// workers' busy time (`worker_busy_seconds`): with 3,950 seeds on worker 0 and 6,050 on
/// worker 1 they were busy 276.8 s and 127.4 s, so a seed costs ≈ 21 ms there and the pods
/// with their 2,000 users ≈ 194 s, ≈ 9,100 seeds' worth: ≈ 4.5 per user with the active
/// users' seeds, 4 without.
const USER_LOAD: f64 = 4.0;

//! One simulation run: hosts, seeds, the join phase, workload, churn, partitions, invariant
//! checks, and the report.
//!
//! Everything runs on one thread: a paused current-thread tokio runtime (virtual time that jumps
//! to the next timer when every host is idle), one [`LocalSet`] for the simulator's own tasks,
//! and the seed drivers as ordinary `tokio::spawn`ed tasks of the unchanged node crate. Every
//! random choice comes from a ChaCha generator seeded from the scenario's seed, collections that
//! are iterated are ordered, and `select!`s are biased, so one seed gives one byte-identical
//! event log.
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
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use muttr_node::NodeId;
use muttr_node::net::Clock;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::task::LocalSet;
use tokio::time::Instant;
use turmoil_net::{HostId, KernelConfig, Net};

use crate::fabric::{Fabric, host_ip, splitmix64};
use crate::report::{self, Report};
use crate::scenario::Scenario;
use crate::store::Holdings;

/// UDP port every simulated seed listens on.
pub const SEED_PORT: u16 = 4000;

/// Wall-clock time at the start of every simulation (2026-01-01T00:00:00Z), in ms since the
/// epoch: the injected [`Clock`] starts here and follows virtual time.
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
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The report.
    pub report: Report,
    /// The event log, JSON lines.
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

    // Datagrams up to the P-W1 maximum must fit: MTU = payload + UDP + IPv4 headers.
    // TCP (pods) retransmits after a count of fabric passes without progress, not after a
    // time: passes come with every datagram anywhere, so the defaults (3 passes, 5 retries)
    // would kill connections that merely wait for a 40 ms answer. The fabric never loses a
    // TCP segment at random (see `Fabric`), so retransmission is only needed after a partition.
    let kernel = KernelConfig::default()
        .mtu(65_535 + 28)
        .retx_threshold(1_000_000)
        .retx_max(20);
    let mut net = Net::with_config(kernel);
    let host_ids: Vec<HostId> = (0..hosts)
        .map(|i| net.add_host(IpAddr::V4(host_ip(i))))
        .collect();
    // Pods, then their users, after every seed host.
    let pod_hosts: Vec<(HostId, Ipv4Addr)> = (hosts..hosts + sc.pods * (1 + sc.users_per_pod))
        .map(|i| (net.add_host(IpAddr::V4(host_ip(i))), host_ip(i)))
        .collect();
    let all_hosts = hosts + pod_hosts.len() as u32;
    let guard = net.enter();
    install_panic_hook();
    PANICS.with(|p| *p.borrow_mut() = Some(Vec::new()));

    // tokio's own random choices (unbiased `select!`s in dependencies) from the run's seed too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(
            &splitmix64(seed ^ 0x70C1).to_le_bytes(),
        ))
        .build()?;
    let local = LocalSet::new();
    let result = rt.block_on(local.run_until(async {
        let t0 = Instant::now();
        let workload_start = t0 + Duration::from_secs_f64(sc.bootstrap_s);
        let fabric = RefCell::new(Fabric::new(
            &sc.network,
            all_hosts,
            splitmix64(seed ^ 0xFAB),
            workload_start,
        ));
        let doorbell = fabric.borrow().doorbell();
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
        let slots = host_ids
            .iter()
            .enumerate()
            .map(|(i, &host)| {
                let ip = host_ip(i as u32);
                Slot {
                    host,
                    ip,
                    id: NodeId::from_addr(SocketAddr::new(IpAddr::V4(ip), SEED_PORT)),
                    state: State::Unused,
                    seed: None,
                    kept_store: None,
                    incarnation: 0,
                }
            })
            .collect();
        let world: W = Rc::new(RefCell::new(World {
            seed,
            doorbell,
            clock: Clock::starting_at(EPOCH_MS),
            t0,
            slots,
            live: Vec::new(),
            live_pos: vec![usize::MAX; hosts as usize],
            next_fresh: sc.seeds,
            published: Vec::new(),
            holdings: Holdings::default(),
            log: EventLog::default(),
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
        tokio::select! {
            biased;
            _ = Fabric::run(&fabric, &guard) => unreachable!("the fabric runs forever"),
            r = orchestrate(world.clone(), replace_times, crash_times, opts.progress) => r?,
        }
        let fabric = fabric.into_inner();
        anyhow::Ok((world, fabric))
    }));
    let (world, fabric) = result?;
    // The simulator's own tasks (progress, churn, checks) still hold the world: drop them while
    // the network is still installed.
    drop(local);
    drop(rt);
    drop(guard);
    let panics = PANICS.with(|p| p.borrow_mut().take()).unwrap_or_default();

    let Ok(world) = Rc::try_unwrap(world) else {
        anyhow::bail!("simulation state still shared after the run");
    };
    let mut w = world.into_inner();
    for p in &panics {
        let t = w.t_ms();
        w.log.push(t, &Event::Panic { message: p.clone() });
    }
    let hops = std::mem::take(&mut w.m.hops);
    let latencies_ms = std::mem::take(&mut w.m.latencies_ms);
    let wall_seconds = wall.elapsed().as_secs_f64();
    let mut report = build_report(&mut w, &fabric, &hops, &latencies_ms, panics, wall_seconds);
    report.peak_rss_mib = crate::memory::peak_rss_mib();
    report.memory = std::mem::take(&mut w.mem);
    report.memory.cpu_seconds = crate::memory::cpu_seconds();
    let mut ran = scenario.clone();
    ran.seed = w.seed;
    report.provenance = Some(crate::provenance::Provenance::of(
        &ran,
        opts.scenario_file.as_deref(),
    ));
    Ok(RunOutput {
        report,
        events: std::mem::take(&mut w.log.buf),
        hops,
        latencies_ms,
    })
}

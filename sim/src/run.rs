//! One simulation run: hosts, seeds, the join phase, workload, churn, partitions, invariant
//! checks, and the report.
//!
//! Everything runs on one thread: a paused current-thread tokio runtime (virtual time that jumps
//! to the next timer when every host is idle), one [`LocalSet`] for the simulator's own tasks,
//! and the seed drivers as ordinary `tokio::spawn`ed tasks of the unchanged node crate. Every
//! random choice comes from a ChaCha generator seeded from the scenario's seed, collections that
//! are iterated are ordered, and `select!`s are biased, so one seed gives one byte-identical
//! event log.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use muttr_node::driver::{Seed, SeedError, SeedHandle, SeedOptions, spawn_seed};
use muttr_node::id::closest_k;
use muttr_node::net::Clock;
use muttr_node::store::{MemStore, Quotas, ValueStore};
use muttr_node::{Key, NodeId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::task::LocalSet;
use tokio::time::Instant;
use turmoil_net::{HostId, KernelConfig, Net};

use crate::fabric::{Fabric, host_ip, splitmix64};
use crate::net::SimTransport;
use crate::report::{self, Report, Summary};
use crate::scenario::Scenario;
use crate::store::{Holdings, TrackedStore};

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

/// One line of the event log.
#[derive(Debug, Serialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
enum Event<'a> {
    Start {
        scenario: &'a str,
        seed: u64,
        seeds: u32,
        hosts: u32,
    },
    Up {
        node: u32,
        id: String,
    },
    Bootstrapped {
        node: u32,
        contacts: usize,
    },
    BootstrapFailed {
        node: u32,
        error: String,
    },
    WorkloadStart {
        live: usize,
    },
    Publish {
        node: u32,
        key: String,
        bytes: usize,
        stored_at: usize,
        hops: u32,
        latency_ms: u64,
    },
    PublishFailed {
        node: u32,
        key: String,
        error: String,
    },
    Lookup {
        node: u32,
        key: String,
        fetch: bool,
        found: bool,
        hops: u32,
        messages: u32,
        latency_ms: u64,
    },
    Aborted {
        node: u32,
        key: String,
        what: &'a str,
    },
    Delivered {
        key: String,
        by: u32,
    },
    Lost {
        key: String,
        reason: &'a str,
    },
    Crash {
        node: u32,
    },
    Restart {
        node: u32,
    },
    Leave {
        node: u32,
    },
    PartitionStart {
        index: usize,
    },
    PartitionEnd {
        index: usize,
    },
    Check {
        values: usize,
        violations: usize,
    },
    Violation {
        key: String,
        detail: String,
    },
    Panic {
        message: String,
    },
    End {
        live: usize,
    },
}

#[derive(Default)]
struct EventLog {
    buf: Vec<u8>,
    lines: u64,
}

impl EventLog {
    fn push(&mut self, t_ms: u64, ev: &Event<'_>) {
        let body = serde_json::to_string(ev).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        self.push_raw(t_ms, &body);
    }

    /// Appends a serialized JSON object (`{"ev":…}`).
    fn push_raw(&mut self, t_ms: u64, body: &str) {
        if !body.starts_with('{') {
            return;
        }
        self.buf
            .extend_from_slice(format!("{{\"t\":{t_ms},").as_bytes());
        self.buf.extend_from_slice(&body.as_bytes()[1..]);
        self.buf.push(b'\n');
        self.lines += 1;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unused,
    Up,
    Crashed,
    Left,
}

struct Slot {
    host: HostId,
    ip: Ipv4Addr,
    id: NodeId,
    state: State,
    seed: Option<Seed<TrackedStore>>,
    kept_store: Option<TrackedStore>,
    incarnation: u64,
}

struct Published {
    key: Key,
    value: Rc<String>,
    publisher: u32,
    expires: Instant,
    stored_at: usize,
    in_partition: bool,
}

#[derive(Default)]
struct Metrics {
    hops: Vec<u32>,
    latencies_ms: Vec<u64>,
    messages: Vec<f64>,
    found: u64,
    lookups_aborted: u64,
    publishes: u64,
    publish_failed: u64,
    stored_at: Vec<f64>,
    publish_latency: Vec<f64>,
    delivery_sent: u64,
    delivered: u64,
    lost: BTreeMap<String, u64>,
    delivery_aborted: u64,
    rounds: u64,
    values_checked: u64,
    violation_count: u64,
    violations: Vec<String>,
    joined: u32,
    left: u32,
    crashed: u32,
    restarted: u32,
    bootstrap_failed: u32,
    bootstrap_empty: u32,
}

struct World {
    sc: Scenario,
    seed: u64,
    doorbell: std::sync::Arc<tokio::sync::Notify>,
    clock: Clock,
    t0: Instant,
    slots: Vec<Slot>,
    live: Vec<u32>,
    live_pos: Vec<usize>,
    next_fresh: u32,
    published: Vec<Published>,
    holdings: Holdings,
    log: EventLog,
    m: Metrics,
    rng: ChaCha8Rng,
    inflight: usize,
    partitions: Vec<(Instant, Instant)>,
    routing: report::Routing,
    /// Virtual ms at the end of the run (set inside the runtime; `Instant` is real outside).
    end_ms: Option<u64>,
    /// Pod hosts then pods' user hosts (empty without pods).
    pod_hosts: Vec<(HostId, Ipv4Addr)>,
    crypto_cache: Option<std::path::PathBuf>,
    messages: Option<crate::report::MessageReport>,
    /// Memory and CPU samples by phase.
    mem: crate::memory::Memory,
}

type W = Rc<RefCell<World>>;

impl World {
    fn t_ms(&self) -> u64 {
        self.end_ms
            .unwrap_or_else(|| self.t0.elapsed().as_millis() as u64)
    }

    fn log(&mut self, ev: Event<'_>) {
        let t = self.t_ms();
        self.log.push(t, &ev);
    }

    fn set_live(&mut self, i: u32, live: bool) {
        let pos = self.live_pos[i as usize];
        if live && pos == usize::MAX {
            self.live_pos[i as usize] = self.live.len();
            self.live.push(i);
        } else if !live && pos != usize::MAX {
            self.live.swap_remove(pos);
            if let Some(&moved) = self.live.get(pos) {
                self.live_pos[moved as usize] = pos;
            }
            self.live_pos[i as usize] = usize::MAX;
        }
    }

    fn random_live(&mut self, except: Option<u32>) -> Option<u32> {
        let n = self.live.len();
        if n == 0 || (n == 1 && except.is_some_and(|e| self.live[0] == e)) {
            return None;
        }
        loop {
            let i = self.live[self.rng.random_range(0..n)];
            if Some(i) != except {
                return Some(i);
            }
        }
    }

    /// Up to `bootstrap_via` distinct live nodes other than `me`, to join through.
    fn pick_via(&mut self, me: u32) -> Vec<u32> {
        let others = self.live.len() - usize::from(self.live_pos[me as usize] != usize::MAX);
        let n = self.sc.bootstrap_via.min(others);
        let mut via = Vec::with_capacity(n);
        while via.len() < n {
            if let Some(j) = self.random_live(Some(me))
                && !via.contains(&j)
            {
                via.push(j);
            }
        }
        via
    }

    fn handle(&self, i: u32) -> Option<SeedHandle> {
        self.slots[i as usize].seed.as_ref().map(|s| s.handle())
    }

    fn addr(&self, i: u32) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.slots[i as usize].ip), SEED_PORT)
    }

    fn in_partition(&self, now: Instant) -> bool {
        self.partitions.iter().any(|&(s, e)| now >= s && now < e)
    }
}

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

fn poisson_times(rng: &mut ChaCha8Rng, rate_per_s: f64, duration_s: f64) -> Vec<f64> {
    let mut out = Vec::new();
    if rate_per_s <= 0.0 {
        return out;
    }
    let mut t = 0.0;
    loop {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        t += -u.ln() / rate_per_s;
        if t >= duration_s {
            return out;
        }
        out.push(t);
    }
}

async fn start_node(w: &W, i: u32, store: Option<TrackedStore>) -> Result<(), String> {
    let (transport, options, clock, store) = {
        let mut wb = w.borrow_mut();
        let seed = wb.seed;
        let holdings = wb.holdings.clone();
        let quotas = Quotas::from_config(&wb.sc.config);
        let config = wb.sc.config.clone();
        let doorbell = wb.doorbell.clone();
        let clock = wb.clock;
        let addr = wb.addr(i);
        let slot = &mut wb.slots[i as usize];
        slot.incarnation += 1;
        let rng_seed = splitmix64(seed ^ ((i as u64) << 20) ^ slot.incarnation);
        let store = store.unwrap_or_else(|| TrackedStore::new(MemStore::new(quotas), i, holdings));
        let options = SeedOptions {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SEED_PORT),
            advertise: Some(addr),
            config,
            rng_seed,
        };
        (
            SimTransport::new(slot.host, doorbell),
            options,
            clock,
            store,
        )
    };
    let seed = spawn_seed(transport, options, store, clock)
        .await
        .map_err(|e| e.to_string())?;
    let mut wb = w.borrow_mut();
    let id = seed.node_id().to_hex();
    let slot = &mut wb.slots[i as usize];
    slot.seed = Some(seed);
    slot.state = State::Up;
    wb.set_live(i, true);
    wb.log(Event::Up { node: i, id });
    Ok(())
}

/// Stops node `i`; gives its store back. `None` if it was not up (or its task had died, which
/// the panic hook has recorded).
async fn stop_node(w: &W, i: u32, state: State) -> Option<TrackedStore> {
    let seed = {
        let mut wb = w.borrow_mut();
        wb.set_live(i, false);
        let slot = &mut wb.slots[i as usize];
        slot.state = state;
        slot.seed.take()
    }?;
    seed.shutdown().await.ok()
}

async fn bootstrap(w: &W, i: u32, via: Vec<u32>) {
    if via.is_empty() {
        return;
    }
    let (h, addrs) = {
        let wb = w.borrow();
        (wb.handle(i), via.iter().map(|&v| wb.addr(v)).collect())
    };
    let Some(h) = h else { return };
    let r = h.bootstrap(addrs).await;
    let mut wb = w.borrow_mut();
    match r {
        Ok(contacts) => {
            if contacts == 0 {
                wb.m.bootstrap_empty += 1;
            }
            wb.log(Event::Bootstrapped { node: i, contacts })
        }
        Err(e) => {
            wb.m.bootstrap_failed += 1;
            wb.log(Event::BootstrapFailed {
                node: i,
                error: e.to_string(),
            });
        }
    }
}

async fn orchestrate(
    w: W,
    replace_times: Vec<f64>,
    crash_times: Vec<f64>,
    progress: bool,
) -> anyhow::Result<()> {
    let (sc, t0, seed) = {
        let wb = w.borrow();
        (wb.sc.clone(), wb.t0, wb.seed)
    };
    let hosts = w.borrow().slots.len() as u32;
    w.borrow_mut().log(Event::Start {
        scenario: &sc.name,
        seed,
        seeds: sc.seeds,
        hosts,
    });
    let workload_start = t0 + Duration::from_secs_f64(sc.bootstrap_s);
    let workload_end = workload_start + Duration::from_secs_f64(sc.duration_s);
    let total_s = sc.bootstrap_s + sc.duration_s;

    // Progress: always scheduled (so the task set is the same with or without a terminal).
    let bar = if progress {
        indicatif::ProgressBar::new(total_s.ceil() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} simulated s {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    {
        let bar = bar.clone();
        let w = w.clone();
        let text_progress = progress && !std::io::IsTerminal::is_terminal(&std::io::stderr());
        let step = ((total_s / 10.0).ceil() as u64).max(1);
        let wall = std::time::Instant::now();
        tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let (t, live) = {
                    let wb = w.borrow();
                    (wb.t0.elapsed().as_secs(), wb.live.len())
                };
                bar.set_position(t);
                bar.set_message(format!("{live} live"));
                // Not a terminal: a plain line every tenth of the run, for logs.
                if text_progress && t % step == 0 {
                    eprintln!(
                        "muttr-sim: {t}/{} simulated s, {live} live, {:.0} wall s",
                        total_s.ceil(),
                        wall.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }

    // Join phase: every seed starts, then joins through a random earlier one, spread evenly.
    for i in 0..sc.seeds {
        start_node(&w, i, None)
            .await
            .map_err(|e| anyhow::anyhow!("seed {i} did not start: {e}"))?;
    }
    w.borrow_mut().mem.rss_after_start_mib = crate::memory::rss_mib();
    for i in 1..sc.seeds {
        let at = t0 + Duration::from_secs_f64(sc.bootstrap_s * 0.8 * i as f64 / sc.seeds as f64);
        let via = {
            let mut wb = w.borrow_mut();
            let n = wb.sc.bootstrap_via.min(i as usize);
            let mut via: Vec<u32> = Vec::with_capacity(n);
            while via.len() < n {
                let j = wb.rng.random_range(0..i);
                if !via.contains(&j) {
                    via.push(j);
                }
            }
            via
        };
        let w = w.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(at).await;
            bootstrap(&w, i, via).await;
        });
    }
    let pods = pod_sim(&w)?;
    if let Some(p) = &pods {
        let pods_at = t0 + Duration::from_secs_f64(sc.bootstrap_s * 0.8);
        p.start(pods_at, workload_start, workload_end);
    }
    tokio::time::sleep_until(workload_start).await;
    {
        let mut wb = w.borrow_mut();
        let live = wb.live.len();
        wb.log(Event::WorkloadStart { live });
        wb.mem.rss_after_join_mib = crate::memory::rss_mib();
        wb.mem.cpu_join_seconds = crate::memory::cpu_seconds();
    }

    // Partitions (the fabric applies them; this only logs their edges).
    for (index, p) in sc.network.partitions.iter().enumerate() {
        let (s, e) = (
            workload_start + Duration::from_secs_f64(p.start_s),
            workload_start + Duration::from_secs_f64(p.end_s),
        );
        let w = w.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(s).await;
            w.borrow_mut().log(Event::PartitionStart { index });
            tokio::time::sleep_until(e).await;
            w.borrow_mut().log(Event::PartitionEnd { index });
        });
    }

    // Churn.
    let mut churn: Vec<(f64, bool)> = replace_times
        .into_iter()
        .map(|t| (t, true))
        .chain(crash_times.into_iter().map(|t| (t, false)))
        .collect();
    churn.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    {
        let w = w.clone();
        let restart_after = Duration::from_secs_f64(sc.churn.restart_after_s);
        tokio::task::spawn_local(async move {
            for (t, replace) in churn {
                tokio::time::sleep_until(workload_start + Duration::from_secs_f64(t)).await;
                // Each event on its own task: a join's bootstrap takes seconds, and the next
                // event must not wait for it.
                let w = w.clone();
                tokio::task::spawn_local(async move {
                    churn_event(&w, replace, restart_after).await;
                });
            }
        });
    }

    // Invariant checks.
    {
        let w = w.clone();
        let every = Duration::from_secs_f64(sc.checks.interval_s);
        tokio::task::spawn_local(async move {
            let mut next = workload_start + every;
            while next <= workload_end {
                tokio::time::sleep_until(next).await;
                check_storage(&w);
                next += every;
            }
        });
    }

    // Workload: Poisson arrivals over live nodes.
    let per_node_per_s =
        (sc.workload.lookups_per_node_per_min + sc.workload.publishes_per_node_per_min) / 60.0;
    let p_publish = if per_node_per_s > 0.0 {
        sc.workload.publishes_per_node_per_min / 60.0 / per_node_per_s
    } else {
        0.0
    };
    if per_node_per_s > 0.0 {
        loop {
            let (dt, publish) = {
                let mut wb = w.borrow_mut();
                let rate = per_node_per_s * wb.live.len().max(1) as f64;
                let u: f64 = wb.rng.random::<f64>().max(f64::MIN_POSITIVE);
                let publish = wb.rng.random::<f64>() < p_publish;
                (-u.ln() / rate, publish)
            };
            let at = Instant::now() + Duration::from_secs_f64(dt);
            if at >= workload_end {
                break;
            }
            tokio::time::sleep_until(at).await;
            let w2 = w.clone();
            w.borrow_mut().inflight += 1;
            if publish {
                tokio::task::spawn_local(async move {
                    publish_op(&w2).await;
                    w2.borrow_mut().inflight -= 1;
                });
            } else {
                tokio::task::spawn_local(async move {
                    lookup_op(&w2).await;
                    w2.borrow_mut().inflight -= 1;
                });
            }
        }
    }
    tokio::time::sleep_until(workload_end).await;
    let drain_until = workload_end + DRAIN_LIMIT;
    while (w.borrow().inflight > 0 || pods.as_ref().is_some_and(|p| p.pending() > 0))
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(p) = &pods {
        let r = p.finish().await;
        w.borrow_mut().messages = Some(r);
    }
    bar.finish_and_clear();
    {
        let mut wb = w.borrow_mut();
        wb.mem.rss_at_end_mib = crate::memory::rss_mib();
        let (mut replicas, mut bytes) = (0u64, 0u64);
        for p in &wb.published {
            let n = wb.holdings.holders(&p.key).len() as u64;
            replicas += n;
            bytes += n * p.value.len() as u64;
        }
        wb.mem.replicas_held = replicas;
        wb.mem.replica_bytes = bytes;
    }
    finish(&w).await;
    let mut wb = w.borrow_mut();
    wb.end_ms = Some(wb.t_ms());
    Ok(())
}

/// The pods of the scenario and their users ([`crate::users`]), wired to this run's log,
/// clock, doorbell and live seeds; `None` without pods.
fn pod_sim(w: &W) -> anyhow::Result<Option<crate::users::PodSim>> {
    let wb = w.borrow();
    if wb.sc.pods == 0 {
        return Ok(None);
    }
    let (wl, wj) = (w.clone(), w.clone());
    let env = crate::users::Env {
        hosts: wb.pod_hosts.clone(),
        doorbell: wb.doorbell.clone(),
        clock: wb.clock,
        seed: wb.seed,
        sc: wb.sc.clone(),
        cache_dir: wb.crypto_cache.clone(),
        log: Box::new(move |body: String| {
            let mut wb = wl.borrow_mut();
            let t = wb.t_ms();
            wb.log.push_raw(t, &body);
        }),
        seeds_to_join: Box::new(move |rng: &mut ChaCha8Rng, n: usize| {
            let wb = wj.borrow();
            let n = n.min(wb.live.len());
            let mut picked: Vec<u32> = Vec::with_capacity(n);
            while picked.len() < n {
                let i = wb.live[rng.random_range(0..wb.live.len())];
                if !picked.contains(&i) {
                    picked.push(i);
                }
            }
            picked.into_iter().map(|i| wb.addr(i)).collect()
        }),
    };
    Ok(Some(crate::users::PodSim::new(env)?))
}

/// Reads every live seed's routing table and counters, then stops every seed.
async fn finish(w: &W) {
    let mut live: Vec<u32> = w.borrow().live.clone();
    live.sort_unstable();
    let k = w.borrow().sc.config.k;
    let want = k.min(live.len().saturating_sub(1));
    let mut sizes = Vec::new();
    let mut routing = report::Routing::default();
    for &i in &live {
        let h = w.borrow().handle(i);
        let Some(h) = h else { continue };
        if let Ok(st) = h.stats().await {
            sizes.push(st.table_size as f64);
            if st.table_size < want {
                routing.underfilled += 1;
            }
            routing.timeouts += st.stats.timeouts;
            for (r, n) in &st.stats.dropped {
                *routing.dropped.entry(r.to_string()).or_default() += n;
            }
            for (r, n) in &st.stats.stores_refused {
                *routing.stores_refused.entry(r.to_string()).or_default() += n;
            }
        }
    }
    routing.table_size = Summary::of(&sizes);
    w.borrow_mut().routing = routing;
    let all: Vec<u32> = (0..w.borrow().slots.len() as u32).collect();
    for i in all {
        let seed = w.borrow_mut().slots[i as usize].seed.take();
        if let Some(seed) = seed
            && seed.shutdown().await.is_err()
        {
            // The task died: the panic hook has its message.
        }
    }
}

async fn churn_event(w: &W, replace: bool, restart_after: Duration) {
    let victim = w.borrow_mut().random_live(None);
    let Some(v) = victim else { return };
    if replace {
        let store = stop_node(w, v, State::Left).await;
        let fresh = {
            let mut wb = w.borrow_mut();
            if let Some(s) = &store {
                let keys = s.keys();
                wb.holdings.forget_host(v, &keys);
            }
            wb.m.left += 1;
            wb.log(Event::Leave { node: v });
            let f = wb.next_fresh;
            wb.next_fresh += 1;
            f
        };
        let via = w.borrow_mut().pick_via(fresh);
        if start_node(w, fresh, None).await.is_ok() {
            w.borrow_mut().m.joined += 1;
            bootstrap(w, fresh, via).await;
        }
    } else {
        let store = stop_node(w, v, State::Crashed).await;
        {
            let mut wb = w.borrow_mut();
            wb.m.crashed += 1;
            wb.slots[v as usize].kept_store = store;
            wb.log(Event::Crash { node: v });
        }
        let w = w.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(restart_after).await;
            let store = w.borrow_mut().slots[v as usize].kept_store.take();
            if start_node(&w, v, store).await.is_ok() {
                let via = {
                    let mut wb = w.borrow_mut();
                    wb.m.restarted += 1;
                    wb.log(Event::Restart { node: v });
                    wb.pick_via(v)
                };
                bootstrap(&w, v, via).await;
            }
        });
    }
}

async fn publish_op(w: &W) {
    let (node, h, value) = {
        let mut wb = w.borrow_mut();
        let Some(node) = wb.random_live(None) else {
            return;
        };
        let (lo, hi) = (
            wb.sc.workload.min_value_bytes,
            wb.sc.workload.max_value_bytes,
        );
        let len = wb.rng.random_range(lo..=hi);
        let armored = muttr_node::value::opaque_message(&mut wb.rng, len);
        let value = muttr_node::value::to_hex(&armored);
        (node, wb.handle(node), value)
    };
    let Some(h) = h else { return };
    let key = muttr_node::value::key_of(&value);
    let started = Instant::now();
    let r = h.publish(value.clone()).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let fetch_delay = {
        let mut wb = w.borrow_mut();
        match r {
            Ok(rep) => {
                wb.m.publishes += 1;
                wb.m.delivery_sent += 1;
                wb.m.stored_at.push(rep.stored_at as f64);
                wb.m.publish_latency.push(latency_ms as f64);
                let expires = started + wb.sc.config.expiry;
                let in_partition = wb.in_partition(started) || wb.in_partition(Instant::now());
                wb.published.push(Published {
                    key,
                    value: Rc::new(value.clone()),
                    publisher: node,
                    expires,
                    stored_at: rep.stored_at,
                    in_partition,
                });
                wb.log(Event::Publish {
                    node,
                    key: key.to_hex(),
                    bytes: value.len(),
                    stored_at: rep.stored_at,
                    hops: rep.hops,
                    latency_ms,
                });
                Duration::from_secs_f64(wb.sc.workload.fetch_delay_s)
            }
            Err(e @ (SeedError::Refused(_) | SeedError::Unexpected(_))) => {
                wb.m.publishes += 1;
                wb.m.publish_failed += 1;
                wb.m.delivery_sent += 1;
                *wb.m.lost.entry("publish_failed".into()).or_default() += 1;
                wb.log(Event::PublishFailed {
                    node,
                    key: key.to_hex(),
                    error: e.to_string(),
                });
                return;
            }
            Err(SeedError::Stopped) => {
                wb.m.delivery_aborted += 1;
                wb.log(Event::Aborted {
                    node,
                    key: key.to_hex(),
                    what: "publish",
                });
                return;
            }
        }
    };
    // Delivery: another node fetches it later.
    tokio::time::sleep(fetch_delay).await;
    let by = w.borrow_mut().random_live(Some(node));
    let Some(by) = by else {
        let mut wb = w.borrow_mut();
        wb.m.delivery_aborted += 1;
        return;
    };
    match find(w, by, key, &value, true).await {
        Some(true) => {
            let mut wb = w.borrow_mut();
            wb.m.delivered += 1;
            wb.log(Event::Delivered {
                key: key.to_hex(),
                by,
            });
        }
        Some(false) => {
            let mut wb = w.borrow_mut();
            *wb.m.lost.entry("not_found".into()).or_default() += 1;
            wb.log(Event::Lost {
                key: key.to_hex(),
                reason: "not_found",
            });
        }
        None => w.borrow_mut().m.delivery_aborted += 1,
    }
}

/// FIND_VALUE of `key` from `node`: Some(found the exact value), None if aborted.
async fn find(w: &W, node: u32, key: Key, value: &str, fetch: bool) -> Option<bool> {
    let h = w.borrow().handle(node)?;
    let started = Instant::now();
    let r = h.find_value_report(key).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let mut wb = w.borrow_mut();
    match r {
        Ok(res) => {
            let found = res.value.as_deref() == Some(value);
            wb.m.hops.push(res.hops);
            wb.m.latencies_ms.push(latency_ms);
            wb.m.messages.push(res.messages as f64);
            if found {
                wb.m.found += 1;
            }
            wb.log(Event::Lookup {
                node,
                key: key.to_hex(),
                fetch,
                found,
                hops: res.hops,
                messages: res.messages,
                latency_ms,
            });
            Some(found)
        }
        Err(_) => {
            wb.m.lookups_aborted += 1;
            wb.log(Event::Aborted {
                node,
                key: key.to_hex(),
                what: "lookup",
            });
            None
        }
    }
}

async fn lookup_op(w: &W) {
    let pick = {
        let mut wb = w.borrow_mut();
        let now = Instant::now();
        let n = wb.published.len();
        if n == 0 {
            None
        } else {
            let p = wb.rng.random_range(0..n);
            let node = wb.random_live(None);
            let pb = &wb.published[p];
            // Only values that were stored somewhere and have not expired.
            (pb.expires > now && pb.stored_at > 0)
                .then(|| node.map(|node| (node, pb.key, pb.value.clone())))
                .flatten()
        }
    };
    if let Some((node, key, value)) = pick {
        find(w, node, key, &value, false).await;
    }
}

/// Invariant: a stored value is held by at least one live node among the k closest live nodes
/// to its key, until it expires (values published during a partition are exempt: the minority
/// side cannot reach the true k closest).
fn check_storage(w: &W) {
    let mut wb = w.borrow_mut();
    let now = Instant::now();
    let k = wb.sc.config.k;
    let candidates: Vec<usize> = wb
        .published
        .iter()
        .enumerate()
        .filter(|(_, p)| p.expires > now && p.stored_at > 0 && !p.in_partition)
        .map(|(i, _)| i)
        .collect();
    let sample = wb.sc.checks.sample;
    let chosen: Vec<usize> = if sample == 0 || candidates.len() <= sample {
        candidates
    } else {
        let salt = wb.rng.random::<u64>();
        let mut c = candidates;
        c.sort_by_key(|&i| splitmix64(salt ^ i as u64));
        c.truncate(sample);
        c.sort_unstable();
        c
    };
    let live_ids: Vec<NodeId> = wb.live.iter().map(|&i| wb.slots[i as usize].id).collect();
    let id_to_host: BTreeMap<NodeId, u32> = wb
        .live
        .iter()
        .map(|&i| (wb.slots[i as usize].id, i))
        .collect();
    let mut violations = 0;
    for &pi in &chosen {
        let key = wb.published[pi].key;
        let holders = wb.holdings.holders(&key);
        let closest = closest_k(&key, live_ids.iter(), k);
        let ok = closest
            .iter()
            .any(|id| id_to_host.get(id).is_some_and(|h| holders.contains(h)));
        if !ok {
            violations += 1;
            let live_holders = holders
                .iter()
                .filter(|&&h| wb.slots[h as usize].state == State::Up)
                .count();
            let detail = format!(
                "value published by node {} is held by {} node(s), {} live, none among the {} closest live nodes",
                wb.published[pi].publisher,
                holders.len(),
                live_holders,
                k
            );
            wb.m.violation_count += 1;
            if wb.m.violations.len() < 20 {
                let line = format!("t={} ms key {}: {}", wb.t_ms(), key.to_hex(), detail);
                wb.m.violations.push(line);
            }
            wb.log(Event::Violation {
                key: key.to_hex(),
                detail,
            });
        }
    }
    wb.m.rounds += 1;
    wb.m.values_checked += chosen.len() as u64;
    let values = chosen.len();
    wb.log(Event::Check { values, violations });
}

fn f(v: &[u64]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn build_report(
    w: &mut World,
    fabric: &Fabric,
    hops: &[u32],
    latencies_ms: &[u64],
    panics: Vec<String>,
    wall_seconds: f64,
) -> Report {
    let live = w.live.len();
    w.log(Event::End { live });
    let m = &w.m;
    let events_sha256 = hex::encode(Sha256::digest(&w.log.buf));
    let simulated_seconds = w.t_ms() as f64 / 1000.0;
    let count = hops.len() as u64;
    let ever_ran: Vec<usize> = w
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.state != State::Unused)
        .map(|(i, _)| i)
        .collect();
    let per = |g: fn(&crate::fabric::Traffic) -> u64| {
        Summary::of(
            &ever_ran
                .iter()
                .map(|&i| g(&fabric.traffic[i]) as f64)
                .collect::<Vec<_>>(),
        )
    };
    let lost: u64 = m.lost.values().sum();
    let invariants_ok = m.violation_count == 0 && panics.is_empty();
    Report {
        scenario: w.sc.name.clone(),
        seed: w.seed,
        nodes: report::Nodes {
            seeds: w.sc.seeds,
            pods: w.sc.pods,
            joined: m.joined,
            left: m.left,
            crashed: m.crashed,
            restarted: m.restarted,
            live_at_end: live as u32,
            bootstrap_failed: m.bootstrap_failed,
            bootstrap_empty: m.bootstrap_empty,
        },
        simulated_seconds,
        wall_seconds,
        sim_seconds_per_wall_second: if wall_seconds > 0.0 {
            simulated_seconds / wall_seconds
        } else {
            0.0
        },
        peak_rss_mib: 0.0,
        lookups: report::Lookups {
            count,
            found: m.found,
            success_rate: ratio(m.found, count),
            aborted: m.lookups_aborted,
            hops: Summary::of(&hops.iter().map(|&h| h as f64).collect::<Vec<_>>()),
            latency_ms: Summary::of(&f(latencies_ms)),
            messages: Summary::of(&m.messages),
        },
        publishes: report::Publishes {
            count: m.publishes,
            stored_at: Summary::of(&m.stored_at),
            latency_ms: Summary::of(&m.publish_latency),
            failed: m.publish_failed,
        },
        delivery: report::Delivery {
            sent: m.delivery_sent,
            delivered: m.delivered,
            lost,
            success_rate: ratio(m.delivered, m.delivered + lost),
            lost_reasons: m.lost.clone(),
            aborted: m.delivery_aborted,
        },
        traffic: report::Traffic {
            datagrams_sent: fabric.stats.sent,
            datagrams_delivered: fabric.stats.delivered,
            datagrams_lost: fabric.stats.lost,
            datagrams_partitioned: fabric.stats.partitioned,
            datagrams_out_per_node: per(|t| t.datagrams_out),
            datagrams_in_per_node: per(|t| t.datagrams_in),
            bytes_out_per_node: per(|t| t.bytes_out),
            bytes_in_per_node: per(|t| t.bytes_in),
        },
        routing: w.routing.clone(),
        invariants: report::Invariants {
            rounds: m.rounds,
            values_checked: m.values_checked,
            violation_count: m.violation_count,
            violations: m.violations.clone(),
            panics,
            ok: invariants_ok,
        },
        events: w.log.lines,
        events_sha256,
        fabric_passes: fabric.stats.passes,
        messages: w.messages.clone().map(|mut m| {
            m.tcp_segments = fabric.stats.tcp_segments;
            m
        }),
        fabric_scans: fabric.stats.scans,
        memory: crate::memory::Memory::default(),
        provenance: None,
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

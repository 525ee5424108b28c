//! The comparison engine: the same unchanged seeds on stock `turmoil::Sim` (0.7.2).
//!
//! [`StockTransport`] implements the node's [`Transport`]/[`DatagramSocket`] over
//! `turmoil::net::UdpSocket`. Every seed is a turmoil host (its own paused runtime) running
//! [`spawn_seed`] exactly as on real sockets; a turmoil client host runs the scenario's join
//! phase and workload through the seeds' handles. turmoil steps every host and every link at a
//! fixed tick (1 ms here), so its cost grows with hosts × links per simulated millisecond: it is
//! the baseline the turmoil-net engine ([`mod@crate::run`]) is measured against, on short runs.
//!
//! Only what both engines model the same way is supported: a fixed latency (turmoil's latency is
//! a min..max range with its own distribution, so only `min = max` matches the turmoil-net
//! engine exactly), no loss, no partitions, no churn. Lookups and deliveries are measured like
//! in [`mod@crate::run`]; the invariant checker and the event log are not part of this engine.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use muttr_node::Key;
use muttr_node::driver::{SeedHandle, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, DatagramSocket, Transport};
use muttr_node::store::{MemStore, Quotas};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::fabric::{host_ip, splitmix64};
use crate::report::Summary;
use crate::run::{EPOCH_MS, SEED_PORT};
use crate::scenario::{Latency, Scenario};

/// The tick of the stock engine: turmoil advances every host and link by this much per step.
pub const TICK: Duration = Duration::from_millis(1);

/// Binds `turmoil::net::UdpSocket`s on the current turmoil host.
#[derive(Debug, Clone, Copy, Default)]
pub struct StockTransport;

/// A UDP socket of stock turmoil.
#[derive(Debug)]
pub struct StockSocket(turmoil::net::UdpSocket);

impl DatagramSocket for StockSocket {
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.0.send_to(buf, target).await
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.recv_from(buf).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Transport for StockTransport {
    type Socket = StockSocket;

    async fn bind(&self, addr: SocketAddr) -> io::Result<StockSocket> {
        Ok(StockSocket(turmoil::net::UdpSocket::bind(addr).await?))
    }
}

/// What a stock-engine run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StockReport {
    /// Scenario name.
    pub scenario: String,
    /// RNG seed.
    pub seed: u64,
    /// Seeds (turmoil hosts, plus one client host driving the workload).
    pub seeds: u32,
    /// Virtual seconds simulated.
    pub simulated_seconds: f64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// wall_seconds / simulated_seconds.
    pub wall_seconds_per_simulated_second: f64,
    /// CPU seconds (user + system) of the run.
    #[serde(default)]
    pub cpu_seconds: f64,
    /// turmoil steps (one per tick).
    pub steps: u64,
    /// Joins that ended with an empty routing table or failed.
    pub bootstrap_empty: u32,
    /// FIND_VALUE lookups finished.
    pub lookups: u64,
    /// Of them, the exact value was found.
    pub found: u64,
    /// found / lookups.
    pub success_rate: f64,
    /// Hops of the lookups.
    pub hops: Summary,
    /// Latency of the lookups (virtual ms).
    pub latency_ms: Summary,
    /// Publications that finished (stored somewhere or not).
    pub publishes: u64,
    /// Replicas stored per publication.
    pub stored_at: Summary,
    /// Publications fetched back by another seed.
    pub delivered: u64,
    /// Publications not found by the fetching seed, or whose publish failed.
    pub lost: u64,
    /// Peak resident memory of the process, MiB.
    pub peak_rss_mib: f64,
}

/// Checks that `sc` only uses what the stock engine models like the turmoil-net engine.
pub fn check_supported(sc: &Scenario) -> anyhow::Result<()> {
    sc.validate()?;
    if !matches!(sc.network.latency, Latency::Fixed { .. }) {
        anyhow::bail!("the stock engine needs a fixed latency (network.latency.kind = \"fixed\")");
    }
    if sc.network.loss > 0.0
        || !sc.network.partitions.is_empty()
        || sc.churn.replace_per_hour > 0.0
        || sc.churn.crash_per_hour > 0.0
    {
        anyhow::bail!("the stock engine supports no loss, partitions or churn");
    }
    if sc.pods > 0 {
        anyhow::bail!("the stock engine runs seeds only (pods = 0)");
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    hops: Vec<f64>,
    latency: Vec<f64>,
    found: u64,
    publishes: u64,
    stored_at: Vec<f64>,
    delivered: u64,
    lost: u64,
    bootstrap_empty: u32,
    published: Vec<(Key, Rc<String>)>,
    inflight: usize,
}

type Handles = Rc<RefCell<BTreeMap<u32, SeedHandle>>>;

/// Runs `sc` on stock turmoil (1 ms tick) and measures it. Slow by design: keep `seeds` and the
/// durations small (see the module docs).
pub fn run_stock(sc: &Scenario, seed: Option<u64>) -> anyhow::Result<StockReport> {
    check_supported(sc)?;
    let seed = seed.unwrap_or(sc.seed);
    let Latency::Fixed { ms } = sc.network.latency else {
        unreachable!("checked above")
    };
    let latency = Duration::from_millis(ms.round() as u64);
    let total = Duration::from_secs_f64(sc.bootstrap_s + sc.duration_s);
    let wall = std::time::Instant::now();
    let cpu0 = crate::memory::cpu_seconds();

    let mut sim = turmoil::Builder::new()
        .tick_duration(TICK)
        .min_message_latency(latency)
        .max_message_latency(latency)
        // Time out well after the scenario (the drain below ends the client first).
        .simulation_duration(total + Duration::from_secs(600))
        .rng_seed(splitmix64(seed ^ 0x5707))
        .build();
    let handles: Handles = Rc::new(RefCell::new(BTreeMap::new()));
    let quotas = Quotas::from_config(&sc.config);
    for i in 0..sc.seeds {
        let ip = host_ip(i);
        let handles = handles.clone();
        let config = sc.config.clone();
        sim.host(ip, move || {
            let handles = handles.clone();
            let options = SeedOptions {
                bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SEED_PORT),
                advertise: Some(SocketAddr::new(IpAddr::V4(ip), SEED_PORT)),
                config: config.clone(),
                rng_seed: splitmix64(seed ^ ((i as u64) << 20) ^ 1),
            };
            let store = MemStore::new(quotas);
            async move {
                let clock = Clock::starting_at(EPOCH_MS);
                let seed = spawn_seed(StockTransport, options, store, clock).await?;
                handles.borrow_mut().insert(i, seed.handle());
                // The seed runs on this host's runtime until the simulation ends.
                std::future::pending::<()>().await;
                Ok(())
            }
        });
    }
    let tally = Rc::new(RefCell::new(Tally::default()));
    let client_ip = host_ip(sc.seeds);
    {
        let sc = sc.clone();
        let handles = handles.clone();
        let tally = tally.clone();
        sim.client(client_ip, async move {
            drive(sc, seed, handles, tally).await;
            Ok(())
        });
    }
    let mut steps = 0u64;
    loop {
        steps += 1;
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => anyhow::bail!("stock turmoil simulation failed: {e}"),
        }
    }
    let simulated_seconds = sim.elapsed().as_secs_f64();
    let wall_seconds = wall.elapsed().as_secs_f64();
    drop(sim);
    let t = tally.borrow();
    let lookups = t.hops.len() as u64;
    Ok(StockReport {
        scenario: sc.name.clone(),
        seed,
        seeds: sc.seeds,
        simulated_seconds,
        wall_seconds,
        wall_seconds_per_simulated_second: if simulated_seconds > 0.0 {
            wall_seconds / simulated_seconds
        } else {
            0.0
        },
        cpu_seconds: crate::memory::cpu_seconds() - cpu0,
        steps,
        bootstrap_empty: t.bootstrap_empty,
        lookups,
        found: t.found,
        success_rate: if lookups > 0 {
            t.found as f64 / lookups as f64
        } else {
            0.0
        },
        hops: Summary::of(&t.hops),
        latency_ms: Summary::of(&t.latency),
        publishes: t.publishes,
        stored_at: Summary::of(&t.stored_at),
        delivered: t.delivered,
        lost: t.lost,
        peak_rss_mib: crate::memory::peak_rss_mib(),
    })
}

/// The client host: join phase, then Poisson workload, then a bounded drain.
async fn drive(sc: Scenario, seed: u64, handles: Handles, tally: Rc<RefCell<Tally>>) {
    let t0 = Instant::now();
    // Hosts start on the first step; wait until every seed has published its handle.
    while handles.borrow().len() < sc.seeds as usize {
        tokio::time::sleep(TICK).await;
    }
    let rng = Rc::new(RefCell::new(ChaCha8Rng::seed_from_u64(splitmix64(
        seed ^ 0x0A11,
    ))));
    let addr = |i: u32| SocketAddr::new(IpAddr::V4(host_ip(i)), SEED_PORT);
    let n = sc.seeds;
    for i in 1..n {
        let at = t0 + Duration::from_secs_f64(sc.bootstrap_s * 0.8 * i as f64 / n as f64);
        let via: Vec<SocketAddr> = {
            let mut rng = rng.borrow_mut();
            let k = sc.bootstrap_via.min(i as usize);
            let mut via: Vec<u32> = Vec::with_capacity(k);
            while via.len() < k {
                let j = rng.random_range(0..i);
                if !via.contains(&j) {
                    via.push(j);
                }
            }
            via.into_iter().map(addr).collect()
        };
        let h = handles.borrow()[&i].clone();
        let tally = tally.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(at).await;
            if !matches!(h.bootstrap(via).await, Ok(c) if c > 0) {
                tally.borrow_mut().bootstrap_empty += 1;
            }
        });
    }
    let workload_start = t0 + Duration::from_secs_f64(sc.bootstrap_s);
    let workload_end = workload_start + Duration::from_secs_f64(sc.duration_s);
    tokio::time::sleep_until(workload_start).await;
    let w = &sc.workload;
    let per_node_per_s = (w.lookups_per_node_per_min + w.publishes_per_node_per_min) / 60.0;
    if per_node_per_s > 0.0 {
        let p_publish = w.publishes_per_node_per_min / 60.0 / per_node_per_s;
        let rate = per_node_per_s * n as f64;
        loop {
            let (dt, publish, node) = {
                let mut rng = rng.borrow_mut();
                let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                (
                    -u.ln() / rate,
                    rng.random::<f64>() < p_publish,
                    rng.random_range(0..n),
                )
            };
            let at = Instant::now() + Duration::from_secs_f64(dt);
            if at >= workload_end {
                break;
            }
            tokio::time::sleep_until(at).await;
            let h = handles.borrow()[&node].clone();
            tally.borrow_mut().inflight += 1;
            let (tally, rng, handles) = (tally.clone(), rng.clone(), handles.clone());
            let fetch_delay = Duration::from_secs_f64(w.fetch_delay_s);
            let (lo, hi) = (w.min_value_bytes, w.max_value_bytes);
            tokio::task::spawn_local(async move {
                if publish {
                    publish_then_fetch(&h, node, n, lo, hi, fetch_delay, &rng, &handles, &tally)
                        .await;
                } else {
                    let pick = {
                        let t = tally.borrow();
                        let len = t.published.len();
                        (len > 0)
                            .then(|| t.published[rng.borrow_mut().random_range(0..len)].clone())
                    };
                    if let Some((key, value)) = pick {
                        find(&h, key, &value, &tally).await;
                    }
                }
                tally.borrow_mut().inflight -= 1;
            });
        }
    }
    tokio::time::sleep_until(workload_end).await;
    let drain_until = workload_end + Duration::from_secs(120);
    while tally.borrow().inflight > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn publish_then_fetch(
    h: &SeedHandle,
    node: u32,
    n: u32,
    lo: usize,
    hi: usize,
    fetch_delay: Duration,
    rng: &RefCell<ChaCha8Rng>,
    handles: &Handles,
    tally: &RefCell<Tally>,
) {
    let value = {
        let mut rng = rng.borrow_mut();
        let len = rng.random_range(lo..=hi);
        muttr_node::value::to_hex(&muttr_node::value::opaque_message(&mut *rng, len))
    };
    let key = muttr_node::value::key_of(&value);
    match h.publish(value.clone()).await {
        Ok(rep) => {
            let mut t = tally.borrow_mut();
            t.publishes += 1;
            t.stored_at.push(rep.stored_at as f64);
            if rep.stored_at > 0 {
                t.published.push((key, Rc::new(value.clone())));
            }
        }
        Err(_) => {
            let mut t = tally.borrow_mut();
            t.publishes += 1;
            t.lost += 1;
            return;
        }
    }
    tokio::time::sleep(fetch_delay).await;
    let by = {
        let mut rng = rng.borrow_mut();
        let mut by = rng.random_range(0..n);
        while by == node && n > 1 {
            by = rng.random_range(0..n);
        }
        by
    };
    let hb = handles.borrow()[&by].clone();
    match find(&hb, key, &value, tally).await {
        Some(true) => tally.borrow_mut().delivered += 1,
        Some(false) => tally.borrow_mut().lost += 1,
        None => {}
    }
}

async fn find(h: &SeedHandle, key: Key, value: &str, tally: &RefCell<Tally>) -> Option<bool> {
    let started = Instant::now();
    let r = h.find_value_report(key).await.ok()?;
    let mut t = tally.borrow_mut();
    let found = r.value.as_deref() == Some(value);
    t.hops.push(r.hops as f64);
    t.latency.push(started.elapsed().as_millis() as f64);
    if found {
        t.found += 1;
    }
    Some(found)
}

/// One row of an engine comparison: the same scenario with `seeds` seeds on both engines.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineRow {
    /// Seeds.
    pub seeds: u32,
    /// Simulated seconds (turmoil-net engine; the stock engine's are in `stock`).
    pub simulated_seconds: f64,
    /// Wall seconds per simulated second, turmoil-net engine.
    pub net_wall_per_sim_s: f64,
    /// Wall seconds per simulated second, stock turmoil.
    pub stock_wall_per_sim_s: f64,
    /// stock / turmoil-net.
    pub ratio: f64,
    /// CPU seconds per simulated second, turmoil-net engine.
    pub net_cpu_per_sim_s: f64,
    /// CPU seconds per simulated second, stock turmoil.
    pub stock_cpu_per_sim_s: f64,
    /// stock / turmoil-net, CPU time (less sensitive to other load on the machine).
    pub cpu_ratio: f64,
    /// The turmoil-net engine's report.
    pub net: crate::Report,
    /// The stock engine's report.
    pub stock: StockReport,
}

/// Runs `sc` with each of `sizes` seeds on both engines (same seed) and compares their speed.
pub fn compare_engines(
    sc: &Scenario,
    sizes: &[u32],
    seed: Option<u64>,
) -> anyhow::Result<Vec<EngineRow>> {
    let mut rows = Vec::new();
    for &n in sizes {
        let sc = Scenario {
            seeds: n,
            ..sc.clone()
        };
        check_supported(&sc)?;
        let opts = crate::RunOptions {
            seed,
            progress: false,
            crypto_cache: None,
            scenario_file: None,
            threads: 1,
            events_file: None,
        };
        let cpu0 = crate::memory::cpu_seconds();
        let net = crate::run(&sc, &opts)?.report;
        let net_cpu = crate::memory::cpu_seconds() - cpu0;
        let stock = run_stock(&sc, seed)?;
        let per_s = |x: f64, s: f64| if s > 0.0 { x / s } else { 0.0 };
        let net_c = per_s(net_cpu, net.simulated_seconds);
        let stock_c = per_s(stock.cpu_seconds, stock.simulated_seconds);
        let net_w = if net.simulated_seconds > 0.0 {
            net.wall_seconds / net.simulated_seconds
        } else {
            0.0
        };
        let stock_w = stock.wall_seconds_per_simulated_second;
        rows.push(EngineRow {
            seeds: n,
            simulated_seconds: net.simulated_seconds,
            net_wall_per_sim_s: net_w,
            stock_wall_per_sim_s: stock_w,
            ratio: if net_w > 0.0 { stock_w / net_w } else { 0.0 },
            net_cpu_per_sim_s: net_c,
            stock_cpu_per_sim_s: stock_c,
            cpu_ratio: if net_c > 0.0 { stock_c / net_c } else { 0.0 },
            net,
            stock,
        });
    }
    Ok(rows)
}

/// The comparison as a text table.
pub fn engines_table(rows: &[EngineRow]) -> String {
    use std::fmt::Write as _;
    let mut s = String::from(
        "seeds | engine      | simulated s | wall s  | wall s per sim s | lookups ok       | hops med/p99 | latency med/p99 ms\n",
    );
    for r in rows {
        let n = &r.net;
        let st = &r.stock;
        let _ = writeln!(
            s,
            "{:>5} | turmoil-net | {:>11.1} | {:>7.2} | {:>16.4} | {:>6}/{:<6} {:>3.0}% | {:>4}/{:<4}    | {}/{}",
            r.seeds,
            n.simulated_seconds,
            n.wall_seconds,
            r.net_wall_per_sim_s,
            n.lookups.found,
            n.lookups.count,
            100.0 * n.lookups.success_rate,
            n.lookups.hops.median,
            n.lookups.hops.p99,
            n.lookups.latency_ms.median,
            n.lookups.latency_ms.p99
        );
        let _ = writeln!(
            s,
            "{:>5} | stock 1 ms  | {:>11.1} | {:>7.2} | {:>16.4} | {:>6}/{:<6} {:>3.0}% | {:>4}/{:<4}    | {}/{}",
            r.seeds,
            st.simulated_seconds,
            st.wall_seconds,
            r.stock_wall_per_sim_s,
            st.found,
            st.lookups,
            100.0 * st.success_rate,
            st.hops.median,
            st.hops.p99,
            st.latency_ms.median,
            st.latency_ms.p99
        );
        let _ = writeln!(
            s,
            "{:>5} | ratio stock / turmoil-net: {:.1}x in wall time per simulated second, {:.1}x in CPU time per simulated second ({:.4} vs {:.4} CPU s)",
            r.seeds, r.ratio, r.cpu_ratio, r.stock_cpu_per_sim_s, r.net_cpu_per_sim_s
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_does_not_model() {
        let mut sc = Scenario::from_toml("seeds = 5").unwrap();
        sc.network.latency = Latency::Fixed { ms: 10.0 };
        assert!(check_supported(&sc).is_ok());
        sc.network.loss = 0.1;
        assert!(check_supported(&sc).is_err());
        sc.network.loss = 0.0;
        sc.network.latency = Latency::Uniform {
            min_ms: 1.0,
            max_ms: 2.0,
        };
        assert!(check_supported(&sc).is_err());
    }
}

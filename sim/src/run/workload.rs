//! The run's schedule: the join phase, the workload's publishes and lookups as Poisson
//! processes, churn, partitions, the pods and their users.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::time::Duration;
use tokio::time::Instant;

use super::DRAIN_LIMIT;
use super::nodes::{bootstrap, churn_event, finish, start_node};
use super::ops::{check_storage, lookup_op, publish_op};
use super::world::*;

pub(super) fn poisson_times(rng: &mut ChaCha8Rng, rate_per_s: f64, duration_s: f64) -> Vec<f64> {
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

pub(super) async fn orchestrate(
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

    // Progress: always scheduled (so the task set is the same with or without a terminal). The
    // bar's length includes the longest drain, so its ETA never undershoots; a drain that ends
    // sooner just finishes the bar early.
    let bar_s = (total_s + DRAIN_LIMIT.as_secs_f64()).ceil() as u64;
    let bar = if progress {
        indicatif::ProgressBar::new(bar_s)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} simulated s (incl. up to 120 s drain), ETA {eta} {msg}",
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
                // Not a terminal: a plain line every tenth of the run, for logs, with the time
                // left at the pace so far (the drain counted at its longest).
                if text_progress && t % step == 0 {
                    let spent = wall.elapsed().as_secs_f64();
                    let left = spent / t.max(1) as f64 * bar_s.saturating_sub(t) as f64;
                    eprintln!(
                        "muttr-sim: {t}/{bar_s} simulated s (incl. up to 120 s drain), {live} live, {spent:.0} wall s, about {left:.0} s left"
                    );
                }
            }
        });
    }

    // Join phase: every seed starts, then joins through a random earlier one, spread evenly.
    // Every start request leaves at once (each takes a window there and one back).
    let starts: Vec<_> = (0..sc.seeds).map(|i| start_node(&w, i, false)).collect();
    for (i, up) in starts.into_iter().enumerate() {
        up.await
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

    // Invariant checks: at the boundaries the run gave the engine (`EngineConfig::holds`),
    // with every worker held.
    {
        let w = w.clone();
        crate::engine::set_hold(move || check_storage(&w));
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
pub(super) fn pod_sim(w: &W) -> anyhow::Result<Option<crate::users::PodSim>> {
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

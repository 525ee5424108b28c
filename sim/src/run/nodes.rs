//! Seeds coming and going: start, stop, bootstrap, churn, and the last reading of every
//! table at the end. The orchestrator's side of each is here, and so is the seed's side: a job
//! ([`engine::remote`]) that runs on the seed's worker, where the seed lives in a thread-local.

use crate::engine;
use crate::fabric::{host_ip, splitmix64};
use crate::net::SimTransport;
use crate::report::{self, Summary};
use crate::store::TrackedStore;
use muttr_node::driver::{Seed, SeedHandle, SeedOptions, spawn_seed};
use muttr_node::store::{MemStore, Quotas, ValueStore};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::SEED_PORT;
use super::world::*;

thread_local! {
    /// The seeds running on this worker thread, by host number.
    static SEEDS: RefCell<HashMap<u32, Seed<TrackedStore>>> = RefCell::new(HashMap::new());
    /// Stores of crashed seeds on this worker, kept for their restart.
    static KEPT: RefCell<HashMap<u32, TrackedStore>> = RefCell::new(HashMap::new());
}

/// The handle of seed `i`, on its own worker.
fn handle(i: u32) -> Option<SeedHandle> {
    SEEDS.with(|s| s.borrow().get(&i).map(|s| s.handle()))
}

/// Runs `f` with seed `i`'s handle on the seed's worker; `None` if it is not running there.
pub(super) fn on_seed<T, Fut>(
    i: u32,
    f: impl FnOnce(SeedHandle) -> Fut + Send + 'static,
) -> impl Future<Output = Option<T>>
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    engine::remote(i, move || async move {
        match handle(i) {
            Some(h) => Some(f(h).await),
            None => None,
        }
    })
}

/// Starts seed `i` (with the store it had before its crash if `restart`). The request leaves
/// now; the returned future waits for the seed to be up.
pub(super) fn start_node(
    w: &W,
    i: u32,
    restart: bool,
) -> impl Future<Output = Result<(), String>> + use<> {
    let (holdings, quotas, config, addr, rng_seed) = {
        let mut wb = w.borrow_mut();
        let seed = wb.seed;
        let holdings = wb.holdings.clone();
        let quotas = Quotas::from_config(&wb.sc.config);
        let config = wb.sc.config.clone();
        let addr = wb.addr(i);
        let slot = &mut wb.slots[i as usize];
        slot.incarnation += 1;
        let rng_seed = splitmix64(seed ^ ((i as u64) << 20) ^ slot.incarnation);
        (holdings, quotas, config, addr, rng_seed)
    };
    let up = engine::remote(i, move || async move {
        let kept = if restart {
            KEPT.with(|k| k.borrow_mut().remove(&i))
        } else {
            None
        };
        let store = kept.unwrap_or_else(|| TrackedStore::new(MemStore::new(quotas), i, holdings));
        let options = SeedOptions {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SEED_PORT),
            advertise: Some(addr),
            config,
            rng_seed,
        };
        let transport = SimTransport::new(engine::host_id(i), host_ip(i), engine::doorbell());
        let seed = spawn_seed(transport, options, store, engine::clock())
            .await
            .map_err(|e| e.to_string())?;
        let id = seed.node_id().to_hex();
        SEEDS.with(|s| s.borrow_mut().insert(i, seed));
        Ok::<_, String>(id)
    });
    let w = w.clone();
    async move {
        let id = up.await?;
        let mut wb = w.borrow_mut();
        wb.slots[i as usize].state = State::Up;
        wb.set_live(i, true);
        wb.log(Event::Up { node: i, id });
        Ok(())
    }
}

/// Stops node `i`: a crashed seed's store stays on its worker for the restart, a leaving one's
/// holdings are forgotten. False if it was not running (or its task had died, which the panic
/// hook has recorded).
pub(super) async fn stop_node(w: &W, i: u32, state: State) -> bool {
    let holdings = {
        let mut wb = w.borrow_mut();
        wb.set_live(i, false);
        wb.slots[i as usize].state = state;
        wb.holdings.clone()
    };
    engine::remote(i, move || async move {
        let Some(seed) = SEEDS.with(|s| s.borrow_mut().remove(&i)) else {
            return false;
        };
        let Ok(store) = seed.shutdown().await else {
            return false;
        };
        if state == State::Crashed {
            KEPT.with(|k| k.borrow_mut().insert(i, store));
        } else {
            holdings.forget_host(i, &store.keys());
        }
        true
    })
    .await
}

pub(super) async fn bootstrap(w: &W, i: u32, via: Vec<u32>) {
    if via.is_empty() {
        return;
    }
    let addrs: Vec<SocketAddr> = {
        let wb = w.borrow();
        via.iter().map(|&v| wb.addr(v)).collect()
    };
    let r = on_seed(i, move |h| async move {
        h.bootstrap(addrs).await.map_err(|e| e.to_string())
    })
    .await;
    let Some(r) = r else { return };
    let mut wb = w.borrow_mut();
    match r {
        Ok(contacts) => {
            if contacts == 0 {
                wb.m.bootstrap_empty += 1;
            }
            wb.log(Event::Bootstrapped { node: i, contacts })
        }
        Err(error) => {
            wb.m.bootstrap_failed += 1;
            wb.log(Event::BootstrapFailed { node: i, error });
        }
    }
}

/// Reads every live seed's routing table and counters, then stops every seed.
pub(super) async fn finish(w: &W) {
    let mut live: Vec<u32> = w.borrow().live.clone();
    live.sort_unstable();
    let k = w.borrow().sc.config.k;
    let want = k.min(live.len().saturating_sub(1));
    let mut sizes = Vec::new();
    let mut routing = report::Routing::default();
    // Every request leaves at once; the answers are read in host order.
    let asked: Vec<_> = live
        .iter()
        .map(|&i| on_seed(i, |h| async move { h.stats().await.ok() }))
        .collect();
    for st in asked {
        let Some(Some(st)) = st.await else { continue };
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
    routing.table_size = Summary::of(&sizes);
    w.borrow_mut().routing = routing;
    let stops: Vec<_> = (0..w.borrow().slots.len() as u32)
        .map(|i| {
            engine::remote(i, move || async move {
                KEPT.with(|k| k.borrow_mut().remove(&i));
                if let Some(seed) = SEEDS.with(|s| s.borrow_mut().remove(&i)) {
                    // An error means the task died: the panic hook has its message.
                    let _ = seed.shutdown().await;
                }
            })
        })
        .collect();
    for s in stops {
        s.await;
    }
}

pub(super) async fn churn_event(w: &W, replace: bool, restart_after: Duration) {
    let victim = w.borrow_mut().random_live(None);
    let Some(v) = victim else { return };
    if replace {
        stop_node(w, v, State::Left).await;
        let fresh = {
            let mut wb = w.borrow_mut();
            wb.m.left += 1;
            wb.log(Event::Leave { node: v });
            let f = wb.next_fresh;
            wb.next_fresh += 1;
            f
        };
        let via = w.borrow_mut().pick_via(fresh);
        if start_node(w, fresh, false).await.is_ok() {
            w.borrow_mut().m.joined += 1;
            bootstrap(w, fresh, via).await;
        }
    } else {
        stop_node(w, v, State::Crashed).await;
        {
            let mut wb = w.borrow_mut();
            wb.m.crashed += 1;
            wb.log(Event::Crash { node: v });
        }
        let w = w.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(restart_after).await;
            if start_node(&w, v, true).await.is_ok() {
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

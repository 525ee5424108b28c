//! Seeds coming and going: start, stop, bootstrap, churn, and the last reading of every
//! table at the end.

use crate::fabric::splitmix64;
use crate::net::SimTransport;
use crate::report::{self, Summary};
use crate::store::TrackedStore;
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::store::{MemStore, Quotas, ValueStore};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::SEED_PORT;
use super::world::*;

pub(super) async fn start_node(w: &W, i: u32, store: Option<TrackedStore>) -> Result<(), String> {
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
pub(super) async fn stop_node(w: &W, i: u32, state: State) -> Option<TrackedStore> {
    let seed = {
        let mut wb = w.borrow_mut();
        wb.set_live(i, false);
        let slot = &mut wb.slots[i as usize];
        slot.state = state;
        slot.seed.take()
    }?;
    seed.shutdown().await.ok()
}

pub(super) async fn bootstrap(w: &W, i: u32, via: Vec<u32>) {
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

/// Reads every live seed's routing table and counters, then stops every seed.
pub(super) async fn finish(w: &W) {
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

pub(super) async fn churn_event(w: &W, replace: bool, restart_after: Duration) {
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

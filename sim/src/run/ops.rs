//! One operation each: a publication, a lookup, a FIND_VALUE, and the storage invariant
//! check.

use crate::fabric::splitmix64;
use muttr_node::driver::SeedError;
use muttr_node::id::closest_k;
use muttr_node::{Key, NodeId};
use rand::Rng;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;
use tokio::time::Instant;

use super::nodes::on_seed;
use super::world::*;

pub(super) async fn publish_op(w: &W) {
    let (node, value) = {
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
        (node, value)
    };
    let key = muttr_node::value::key_of(&value);
    let started = Instant::now();
    let v = value.clone();
    let (r, latency_ms) = on_seed(node, move |h| timed(async move { h.publish(v).await }))
        .await
        .unwrap_or((Err(SeedError::Stopped), 0));
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

/// Runs `op` (on the seed's worker) and measures it there, in virtual ms.
async fn timed<T>(op: impl std::future::Future<Output = T>) -> (T, u64) {
    let started = Instant::now();
    let r = op.await;
    (r, started.elapsed().as_millis() as u64)
}

/// FIND_VALUE of `key` from `node`: Some(found the exact value), None if aborted.
pub(super) async fn find(w: &W, node: u32, key: Key, value: &str, fetch: bool) -> Option<bool> {
    let (r, latency_ms) = on_seed(node, move |h| {
        timed(async move { h.find_value_report(key).await })
    })
    .await
    .unwrap_or((Err(SeedError::Stopped), 0));
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

pub(super) async fn lookup_op(w: &W) {
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
pub(super) fn check_storage(w: &W) {
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

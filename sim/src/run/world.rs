//! The state of a run: the event log, the seeds' slots, metrics, and [`World`], shared by
//! the run's tasks as [`W`].

pub(super) use crate::events::EventLog;
use crate::report::{self};
use crate::scenario::Scenario;
use crate::store::Holdings;
use muttr_node::net::Clock;
use muttr_node::{Key, NodeId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use tokio::time::Instant;
use turmoil_net::HostId;

use super::SEED_PORT;

/// One line of the event log.
#[derive(Debug, Serialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub(super) enum Event<'a> {
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

/// Appends event `ev` at virtual ms `t_ms` to `log`.
pub(super) fn push_event(log: &mut EventLog, t_ms: u64, ev: &Event<'_>) {
    let body = serde_json::to_string(ev).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    log.push_raw(t_ms, &body);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Unused,
    Up,
    Crashed,
    Left,
}

/// The orchestrator's view of one seed host (the seed itself lives on its worker, see
/// `nodes.rs`).
pub(super) struct Slot {
    pub(super) ip: Ipv4Addr,
    pub(super) id: NodeId,
    pub(super) state: State,
    pub(super) incarnation: u64,
}

pub(super) struct Published {
    pub(super) key: Key,
    pub(super) value: Rc<String>,
    pub(super) publisher: u32,
    pub(super) expires: Instant,
    pub(super) stored_at: usize,
    pub(super) in_partition: bool,
}

#[derive(Default)]
pub(super) struct Metrics {
    pub(super) hops: Vec<u32>,
    pub(super) latencies_ms: Vec<u64>,
    pub(super) messages: Vec<f64>,
    pub(super) found: u64,
    pub(super) lookups_aborted: u64,
    pub(super) publishes: u64,
    pub(super) publish_failed: u64,
    pub(super) stored_at: Vec<f64>,
    pub(super) publish_latency: Vec<f64>,
    pub(super) delivery_sent: u64,
    pub(super) delivered: u64,
    pub(super) lost: BTreeMap<String, u64>,
    pub(super) delivery_aborted: u64,
    pub(super) rounds: u64,
    pub(super) values_checked: u64,
    pub(super) violation_count: u64,
    pub(super) violations: Vec<String>,
    pub(super) joined: u32,
    pub(super) left: u32,
    pub(super) crashed: u32,
    pub(super) restarted: u32,
    pub(super) bootstrap_failed: u32,
    pub(super) bootstrap_empty: u32,
}

pub(super) struct World {
    pub(super) sc: Scenario,
    pub(super) seed: u64,
    pub(super) doorbell: std::sync::Arc<tokio::sync::Notify>,
    pub(super) clock: Clock,
    pub(super) t0: Instant,
    pub(super) slots: Vec<Slot>,
    pub(super) live: Vec<u32>,
    pub(super) live_pos: Vec<usize>,
    pub(super) next_fresh: u32,
    pub(super) published: Vec<Published>,
    pub(super) holdings: Holdings,
    pub(super) log: EventLog,
    pub(super) m: Metrics,
    pub(super) rng: ChaCha8Rng,
    pub(super) inflight: usize,
    pub(super) partitions: Vec<(Instant, Instant)>,
    pub(super) routing: report::Routing,
    /// Virtual ms at the end of the run (set inside the runtime; `Instant` is real outside).
    pub(super) end_ms: Option<u64>,
    /// Pod hosts then pods' user hosts (empty without pods).
    pub(super) pod_hosts: Vec<(HostId, Ipv4Addr)>,
    pub(super) crypto_cache: Option<std::path::PathBuf>,
    pub(super) messages: Option<crate::report::MessageReport>,
    /// Memory and CPU samples by phase.
    pub(super) mem: crate::memory::Memory,
}

pub(super) type W = Rc<RefCell<World>>;

impl World {
    pub(super) fn t_ms(&self) -> u64 {
        self.end_ms
            .unwrap_or_else(|| self.t0.elapsed().as_millis() as u64)
    }

    pub(super) fn log(&mut self, ev: Event<'_>) {
        let t = self.t_ms();
        push_event(&mut self.log, t, &ev);
    }

    pub(super) fn set_live(&mut self, i: u32, live: bool) {
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

    pub(super) fn random_live(&mut self, except: Option<u32>) -> Option<u32> {
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
    pub(super) fn pick_via(&mut self, me: u32) -> Vec<u32> {
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

    pub(super) fn addr(&self, i: u32) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.slots[i as usize].ip), SEED_PORT)
    }

    pub(super) fn in_partition(&self, now: Instant) -> bool {
        self.partitions.iter().any(|&(s, e)| now >= s && now < e)
    }
}

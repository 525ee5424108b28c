//! An in-process network of sans-IO nodes on virtual time: no sockets, no threads, no real
//! clock. Datagrams wait in one queue ordered by delivery time; timers fire in time order.
//! Used by the tests (hundreds of nodes) and the benchmarks (up to 10⁵ nodes).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::net::SocketAddr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Command, CommandResult, Event, HOUSEKEEPING_INTERVAL_MS, Node};
use crate::config::Config;
use crate::store::MemStore;
use crate::wire::Contact;

/// The start of virtual time (2023-11-14T22:13:20Z).
pub const T0: u64 = 1_700_000_000_000;

/// The address of node number `n` (counting from 1): 10.x.y.z:4000, room for 2²⁴ nodes.
pub fn addr(n: u32) -> SocketAddr {
    SocketAddr::from(([10, (n >> 16) as u8, (n >> 8) as u8, n as u8], 4000))
}

/// A datagram on its way: (delivery time, sequence, destination index, source, bytes).
type InFlight = (u64, u64, usize, SocketAddr, Vec<u8>);

/// An in-process network: nodes exchange datagrams through a queue ordered by delivery time,
/// with a fixed one-way latency and seeded loss. No sockets, no real time.
pub struct Network {
    /// The nodes; node `i` is at [`addr`]`(i + 1)`.
    pub nodes: Vec<Node<MemStore>>,
    index: BTreeMap<SocketAddr, usize>,
    queue: BinaryHeap<Reverse<InFlight>>,
    /// Next deadline of every node with requests in flight, so a step need not scan them all.
    timers: BTreeSet<(u64, usize)>,
    timer_of: Vec<Option<u64>>,
    seq: u64,
    /// Virtual time (ms since the epoch).
    pub now: u64,
    latency_ms: u64,
    loss: f64,
    rng: ChaCha8Rng,
    /// Datagrams delivered so far.
    pub delivered: u64,
}

impl Network {
    /// `n` nodes with the default [`Config`] (see [`Network::with_config`]).
    pub fn new(n: u32, latency_ms: u64, loss: f64, seed: u64) -> Network {
        Network::with_config(n, Config::default(), latency_ms, loss, seed)
    }

    /// `n` nodes with a fixed one-way latency and independent per-datagram loss.
    pub fn with_config(n: u32, config: Config, latency_ms: u64, loss: f64, seed: u64) -> Network {
        let nodes: Vec<Node<MemStore>> = (0..n)
            .map(|i| {
                Node::new(
                    config.clone(),
                    Contact::from_addr(addr(i + 1)),
                    MemStore::default(),
                    seed ^ (i as u64) << 8,
                    T0,
                )
            })
            .collect();
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.local().socket_addr(), i))
            .collect();
        Network {
            timer_of: vec![None; nodes.len()],
            nodes,
            index,
            queue: BinaryHeap::new(),
            timers: BTreeSet::new(),
            seq: 0,
            now: T0,
            latency_ms,
            loss,
            rng: ChaCha8Rng::seed_from_u64(seed),
            delivered: 0,
        }
    }

    /// Takes node `i`'s transmits into the queue and notes its next deadline; called after
    /// every input to a node (only inputs change a sans-IO node's deadline).
    fn collect(&mut self, i: usize) {
        if let Some(old) = self.timer_of[i].take() {
            self.timers.remove(&(old, i));
        }
        if self.nodes[i].pending_requests() > 0
            && let Some(t) = self.nodes[i].poll_timeout()
        {
            self.timers.insert((t, i));
            self.timer_of[i] = Some(t);
        }
        let from = self.nodes[i].local().socket_addr();
        while let Some(t) = self.nodes[i].poll_transmit() {
            if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
                continue;
            }
            if let Some(&to) = self.index.get(&t.to) {
                self.seq += 1;
                self.queue.push(Reverse((
                    self.now + self.latency_ms,
                    self.seq,
                    to,
                    from,
                    t.bytes,
                )));
            }
        }
    }

    /// Runs the whole network until virtual time `end`, firing every node's housekeeping
    /// (expiry, refresh, replicate, republish) when due, on the once-a-minute grid, so that
    /// days of protocol life take seconds of wall time.
    pub fn run_until(&mut self, end: u64) {
        let mut tick = self.now - self.now % HOUSEKEEPING_INTERVAL_MS + HOUSEKEEPING_INTERVAL_MS;
        loop {
            let next_packet = self.queue.peek().map(|Reverse((t, ..))| *t);
            let next_timer = self.timers.first().map(|(t, _)| *t);
            let next = match (next_packet, next_timer) {
                (Some(p), Some(t)) => Some(p.min(t)),
                (p, t) => p.or(t),
            };
            if next.is_some_and(|t| t <= tick.min(end)) {
                self.step();
                continue;
            }
            if tick > end {
                self.now = self.now.max(end);
                return;
            }
            self.now = tick;
            for i in 0..self.nodes.len() {
                if self.nodes[i].poll_timeout().is_some_and(|t| t <= tick) {
                    self.nodes[i].handle_timeout(tick);
                    self.collect(i);
                }
            }
            tick += HOUSEKEEPING_INTERVAL_MS;
        }
    }

    /// Restarts node `i` now: a new [`Node`] at the same address, with the same
    /// configuration, built on the old node's store after `keep` has had its say (return the
    /// store unchanged for a restart from disk). Routing table and requests in flight are
    /// lost, as in a real restart; the node rejoins through `bootstrap`.
    pub fn restart(
        &mut self,
        i: usize,
        keep: impl FnOnce(MemStore) -> MemStore,
        bootstrap: Vec<SocketAddr>,
    ) {
        let local = self.nodes[i].local();
        let config = self.nodes[i].config().clone();
        let placeholder = Node::new(config.clone(), local, MemStore::default(), 0, self.now);
        let old = std::mem::replace(&mut self.nodes[i], placeholder);
        let store = keep(old.into_store());
        self.nodes[i] = Node::new(config, local, store, self.now ^ i as u64, self.now);
        if let Some(old) = self.timer_of[i].take() {
            self.timers.remove(&(old, i));
        }
        self.run_command(i, Command::Bootstrap(bootstrap));
    }

    /// Adds a node at the next address (not yet joined: bootstrap it with
    /// [`Network::run_command`]); returns its index.
    pub fn add_node(&mut self, seed: u64) -> usize {
        let i = self.nodes.len();
        let config = self.nodes[0].config().clone();
        let node = Node::new(
            config,
            Contact::from_addr(addr(i as u32 + 1)),
            MemStore::default(),
            seed,
            self.now,
        );
        self.index.insert(node.local().socket_addr(), i);
        self.nodes.push(node);
        self.timer_of.push(None);
        i
    }

    /// Joins every node `i > 0` through node 0 and node `i - 1`, one after the other.
    pub fn bootstrap_all(&mut self) {
        for i in 1..self.nodes.len() {
            let mut boot = vec![self.nodes[0].local().socket_addr()];
            if i > 1 {
                boot.push(self.nodes[i - 1].local().socket_addr());
            }
            self.run_command(i, Command::Bootstrap(boot));
        }
    }

    /// Runs until command `id` of node `i` completes; returns its result.
    pub fn run_command(&mut self, i: usize, cmd: Command) -> CommandResult {
        let id = self.nodes[i].handle_command(self.now, cmd);
        self.collect(i);
        loop {
            while let Some(ev) = self.nodes[i].poll_event() {
                let Event::Completed { id: got, result } = ev;
                if got == id {
                    return result;
                }
            }
            self.step()
                .expect("the network went idle before the command completed");
        }
    }

    /// Delivers the next datagram or fires the next timer. None when nothing is left.
    fn step(&mut self) -> Option<()> {
        let next_packet = self.queue.peek().map(|Reverse((t, ..))| *t);
        // Timers that are due before the next packet: only lookups' timeouts matter here, so
        // look for the earliest node deadline among nodes with requests in flight.
        let next_timer = self.timers.first().copied();
        match (next_packet, next_timer) {
            (Some(p), Some((t, i))) if t < p => self.fire(t, i),
            (Some(_), _) => {
                let Reverse((t, _, to, from, bytes)) = self.queue.pop()?;
                self.now = self.now.max(t);
                self.nodes[to].handle_datagram(self.now, from, &bytes);
                self.delivered += 1;
                self.collect(to);
            }
            (None, Some((t, i))) => self.fire(t, i),
            (None, None) => return None,
        }
        Some(())
    }

    fn fire(&mut self, t: u64, i: usize) {
        self.now = self.now.max(t);
        self.nodes[i].handle_timeout(self.now);
        self.collect(i);
    }
}

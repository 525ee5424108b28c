//! The parallel deterministic engine: the hosts split over `--threads` worker threads that
//! advance in lockstep windows, with one result whatever the thread count.
//!
//! ## The model (Shadow's conservative windows)
//! Every worker is a paused current-thread tokio runtime with a turmoil-net [`Net`] of its own
//! hosts. Nothing sent can arrive sooner than one *window* (`network.window_ms`, at least 1 ms,
//! tokio's timer resolution): the window is the network's least latency. So at each window
//! boundary every worker has run everything before it, the workers meet at a barrier, swap what
//! their hosts sent to each other's hosts, and run the next window independently. Seeds are
//! interleaved over the workers; pods, their users and the orchestrator (the run's schedule, in
//! the `run` module) live on worker 0, which takes fewer seeds for it ([`Layout::new`]).
//!
//! ## Why the thread count cannot change a run
//! A host's behaviour must depend only on what reaches it and on its own timers, never on which
//! other hosts share its runtime. Each rule below removes one way it could:
//! - **Deliveries happen in the runtime's unpark hook** (`on_thread_unpark`): right after virtual
//!   time moved and the timers due at that instant fired, before any task runs. A datagram due
//!   at the same instant as a host's timer is therefore always seen after the timer fired,
//!   whoever else is in the runtime (a delivering *task* would run before or after the host's
//!   timer task depending on the timer wheel's history, which other hosts shape).
//! - **Routing when the instant is over**: what hosts sent is taken off their queues in the park
//!   hook (`on_thread_park`, every task idle), stamped with the instant it was sent, and given
//!   its loss and latency then; so when the clock jumps next, everything due is known.
//! - **Canonical order**: what falls due at one instant is delivered by (due ms, source host,
//!   the source's own sequence number), not by arrival at the worker.
//! - **Randomness per source host**: loss and latency are drawn from a generator of the sending
//!   host, in its own sending order, not from one stream in routing order.
//! - **Control through the same door**: the orchestrator reaches a seed only by a job
//!   ([`remote`]) delivered at the next boundary on the seed's worker, and the answer comes
//!   back the same way, so a lookup started on worker 0 for a seed on worker 0 takes the same
//!   virtual time as for a seed elsewhere.
//! - **No scheduler batching that counts other hosts' tasks**: tokio's `event_interval` is
//!   unbounded, so the runtime polls its driver (waking yielded tasks) only when its queue is
//!   empty, not after every 61 tasks of whichever hosts.
//! - **Global reads with every worker held**: the storage invariant check reads what every
//!   seed holds; it runs in worker 0's hook at a boundary while the others wait at a second
//!   barrier ([`set_hold`]).
//!
//! With one worker nothing needs the boundaries but holds and the stop, so the clock jumps
//! over quiet stretches to the next timer or delivery; with several, every worker stops at
//! every boundary (a parallel run of a long idle scenario steps through it window by window).
//!
//! `sim/tests/sim.rs` runs `small.toml` (seeds, pods, users) and a faults scenario on 1, 2 and
//! 3 threads and compares the event logs' hashes.

use std::any::Any;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use muttr_node::net::Clock;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::{Notify, oneshot};
use tokio::task::LocalSet;
use tokio::time::Instant;
use turmoil_net::{EnterGuard, HostId, KernelConfig, Net, Packet, Transport as Payload};

use crate::fabric::{Fabric, host_index, host_ip, model_delay, payload_len, splitmix64};
use crate::scenario::Network;

/// What a job answers, type-erased to cross threads.
pub type Answer = Box<dyn Any + Send>;
type JobFuture = Pin<Box<dyn Future<Output = Answer> + Send>>;
type Job = Box<dyn FnOnce() -> JobFuture + Send>;

/// Sort key of everything delivered: (due ms, source, the source's sequence number).
type Key = (u64, u32, u64);

/// The source number of the orchestrator's jobs (hosts are numbered from 0).
const ORCHESTRATOR: u32 = u32::MAX;

enum Ctl {
    /// Run `job` on this worker; answer request `req`.
    Job { req: u64, host: u32, job: Job },
    /// The answer to request `req` of worker 0.
    Answer { req: u64, answer: Answer },
}

/// One thing for a worker's queues.
enum Mail {
    Packet(Packet),
    Ctl(Ctl),
}

/// Host `host`'s network model generator, made on first use.
fn rng_of(rngs: &mut [Option<ChaCha8Rng>], seed: u64, host: u32) -> &mut ChaCha8Rng {
    rngs[host as usize].get_or_insert_with(|| {
        ChaCha8Rng::seed_from_u64(splitmix64(seed ^ 0xFAB ^ ((host as u64) << 24)))
    })
}

#[derive(Default)]
struct Mailbox {
    packets: Vec<(Key, Packet)>,
    ctl: Vec<(Key, Ctl)>,
}

/// Which worker runs which host.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Worker threads.
    pub workers: usize,
    /// Hosts numbered below this are seeds, dealt over the workers; the rest (pods, users) live
    /// on worker 0.
    pub seed_hosts: u32,
    /// Of every 1,000 seeds, how many worker 0 takes (the rest are dealt round-robin over the
    /// others). [`Layout::new`] lowers it by what worker 0 already carries.
    pub zero_per_mille: u32,
}

impl Layout {
    /// A layout that gives every worker about the same load, with worker 0 already carrying
    /// `worker0_load` (the pods, users and schedule, counted in seeds' worth of work).
    ///
    /// With `s` seeds over `n` workers, worker 0 takes the share `z` of the seeds such that
    /// `z·s + worker0_load = (1 − z)·s / (n − 1)`, i.e. `z = (s − (n − 1)·load) / (n·s)`,
    /// at least 0. Without load that is `1/n`, an even interleave.
    pub fn new(workers: usize, seed_hosts: u32, worker0_load: f64) -> Layout {
        let n = workers.max(1);
        let s = f64::from(seed_hosts.max(1));
        let z = if n == 1 {
            1.0
        } else {
            ((s - (n - 1) as f64 * worker0_load) / (n as f64 * s)).clamp(0.0, 1.0)
        };
        Layout {
            workers: n,
            seed_hosts,
            zero_per_mille: (z * 1000.0).round() as u32,
        }
    }

    /// The worker of host `host`. Seeds are interleaved (worker 0's share spread evenly, the
    /// rest round-robin), so every worker gets its part of each stretch of seeds that join or
    /// churn together.
    pub fn worker_of(&self, host: u32) -> usize {
        if host >= self.seed_hosts || self.workers == 1 {
            return 0;
        }
        let (i, z) = (u64::from(host), u64::from(self.zero_per_mille.min(1000)));
        // Seeds of worker 0 among 0..i and 0..=i.
        let (before, through) = (i * z / 1000, (i + 1) * z / 1000);
        if through > before {
            0
        } else {
            1 + ((i - before) % (self.workers as u64 - 1)) as usize
        }
    }
}

/// What every worker of a run needs to know.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Hosts and workers.
    pub layout: Layout,
    /// Every host, seeds first.
    pub hosts: u32,
    /// The window, ms (≥ 1): the least latency and the distance between barriers.
    pub window_ms: u64,
    /// The network model.
    pub network: Network,
    /// turmoil-net's kernel settings.
    pub kernel: KernelConfig,
    /// The run's seed (network model, tokio's own random choices).
    pub seed: u64,
    /// Virtual ms at which the workload starts (partitions are placed relative to it).
    pub workload_start_ms: u64,
    /// Boundaries (virtual ms, multiples of the window) at which worker 0 runs its hold
    /// action ([`set_hold`]) while the other workers wait.
    pub holds: BTreeSet<u64>,
}

/// A barrier that spins before it yields: the workers meet up to a thousand times per simulated
/// second, and a futex sleep and wake-up (`std::sync::Barrier`) costs more than most windows'
/// work when each worker has a core of its own.
struct SpinBarrier {
    n: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    fn wait(&self) {
        if self.n == 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            // Reset before the release: nobody can arrive again until they see it.
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            if spins < 20_000 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                // More workers than free cores, or a long hold: let the others run.
                std::thread::yield_now();
            }
        }
    }
}

struct Shared {
    cfg: EngineConfig,
    barrier: SpinBarrier,
    mail: Vec<Mutex<Mailbox>>,
    /// The boundary at which every worker stops (set by worker 0 in its hook, before that
    /// boundary's barrier, so no worker can read it at an earlier one).
    stop_at: AtomicU64,
}

/// One worker's engine state, reachable from its hook, its tasks and [`remote`] through a
/// thread-local.
struct Worker {
    index: usize,
    shared: Arc<Shared>,
    guard: EnterGuard,
    start: Instant,
    /// Virtual ms of the last instant the hook saw (everything since was sent then).
    tick: u64,
    /// Worker 0's main task ended: stop everyone at the next boundary.
    stop_requested: bool,
    stopped: bool,
    fabric: Fabric,
    /// Network model generators, one per sending host, made on first use.
    rngs: Vec<Option<ChaCha8Rng>>,
    /// Packets sent, per host (the canonical order's last key).
    seqs: Vec<u64>,
    /// Control messages sent, per source host; the orchestrator's in `orchestrator_seq`.
    ctl_seqs: HashMap<u32, u64>,
    orchestrator_seq: u64,
    /// TCP flows: when their last segment is due (segments of a flow never overtake).
    tcp_due: BTreeMap<(SocketAddr, SocketAddr), u64>,
    packets: BTreeMap<Key, Packet>,
    ctl: BTreeMap<Key, Ctl>,
    outbox: Vec<Mailbox>,
    egress: Vec<Packet>,
    /// A TCP delivery may make the kernel answer at once: scan the queues next time.
    dirty: bool,
    doorbell: Arc<Notify>,
    requests: HashMap<u64, oneshot::Sender<Answer>>,
    next_req: u64,
    hold: Option<Box<dyn FnMut()>>,
    stopped_bell: Arc<Notify>,
    /// The alarm task's target, and its wake-up when something falls due before it.
    alarm_at: Instant,
    alarm_bell: Arc<Notify>,
    hosts: HashMap<u32, HostId>,
    clock: Clock,
    /// Wall time spent waiting at barriers: a measurement of the engine's balance for the
    /// report, never read by the simulation (the one use of the real clock here).
    waited: std::time::Duration,
}

thread_local! {
    static WORKER: RefCell<Option<Worker>> = const { RefCell::new(None) };
}

fn with_worker<R>(f: impl FnOnce(&mut Worker) -> R) -> R {
    WORKER.with(|w| f(w.borrow_mut().as_mut().expect("inside an engine worker")))
}

impl Worker {
    fn window(&self) -> u64 {
        self.shared.cfg.window_ms
    }

    /// The first boundary after virtual ms `t`.
    fn next_boundary(&self, t: u64) -> u64 {
        (t / self.window() + 1) * self.window()
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// Puts `mail` into the queue of worker `to`: this worker's own, or the outbox posted at
    /// the next boundary.
    fn enqueue(&mut self, to: usize, key: Key, mail: Mail) {
        let local = to == self.index;
        match mail {
            Mail::Packet(p) if local => {
                self.packets.insert(key, p);
            }
            Mail::Packet(p) => self.outbox[to].packets.push((key, p)),
            Mail::Ctl(c) if local => {
                self.ctl.insert(key, c);
            }
            Mail::Ctl(c) => self.outbox[to].ctl.push((key, c)),
        }
    }

    /// Whether a socket rang since the last look (a `Notify` permit, taken without waiting).
    fn rang(&self) -> bool {
        let notified = pin!(self.doorbell.notified());
        notified
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_ready()
    }

    /// The park hook: every task is idle at this instant; route what the hosts sent in it, and
    /// have the alarm re-armed if something (a packet, a job, an answer) now falls due before
    /// its target.
    fn idle(&mut self) {
        if self.stopped {
            return;
        }
        if std::mem::take(&mut self.dirty) | self.rang() {
            self.route(self.tick);
        }
        if self.next_wake() < self.alarm_at {
            // The alarm task runs before the runtime parks (a wake from here cancels the park),
            // so the clock cannot jump past what just became due.
            self.alarm_bell.notify_one();
        }
    }

    /// The unpark hook: virtual time moved to a new instant.
    fn advance(&mut self) {
        if self.stopped {
            return;
        }
        let tick = (Instant::now() - self.start).as_millis() as u64;
        if tick <= self.tick {
            return;
        }
        self.tick = tick;
        if tick.is_multiple_of(self.window()) {
            if self.index == 0 {
                self.fabric.stats.passes += 1;
            }
            self.exchange(tick);
            if self.stopped {
                return;
            }
        }
        self.deliver_due(tick);
    }

    /// Takes every host's outbound queue (all sent at `sent_at`) through the model: TCP
    /// segments, and datagrams that went through a kernel (loopback, or to the sender itself).
    fn route(&mut self, sent_at: u64) {
        self.fabric.stats.scans += 1;
        let mut egress = std::mem::take(&mut self.egress);
        self.guard.egress_all(&mut egress);
        for pkt in egress.drain(..) {
            self.route_one(pkt, sent_at);
        }
        self.egress = egress;
    }

    /// Takes one packet sent at `sent_at` through the model: counters, partition, loss (a
    /// datagram), latency (at least the window; a TCP segment never overtakes its flow), then
    /// into the queue of the destination's worker under its canonical key.
    fn route_one(&mut self, pkt: Packet, sent_at: u64) {
        let tcp = matches!(pkt.payload, Payload::Tcp(_));
        let (Some(src), Some(dst)) = (host_index(pkt.src), host_index(pkt.dst)) else {
            self.fabric.stats.unroutable += 1;
            return;
        };
        if tcp {
            self.fabric.stats.tcp_segments += 1;
        } else {
            self.fabric.stats.sent += 1;
            let len = payload_len(&pkt);
            if let Some(t) = self.fabric.traffic.get_mut(src as usize) {
                t.datagrams_out += 1;
                t.bytes_out += len;
            }
        }
        if self.fabric.partitioned(self.at(sent_at), src, dst) {
            if tcp {
                self.fabric.stats.tcp_partitioned += 1;
            } else {
                self.fabric.stats.partitioned += 1;
            }
            return;
        }
        let window = self.window();
        let seed = self.shared.cfg.seed;
        let rng = rng_of(&mut self.rngs, seed, src);
        let fabric = &mut self.fabric;
        if !tcp && fabric.loss > 0.0 && rng.random::<f64>() < fabric.loss {
            fabric.stats.lost += 1;
            return;
        }
        let mut due = sent_at + (model_delay(&fabric.latency, rng).as_millis() as u64).max(window);
        if let Payload::Tcp(seg) = &pkt.payload {
            let flow = (
                SocketAddr::new(pkt.src, seg.src_port),
                SocketAddr::new(pkt.dst, seg.dst_port),
            );
            if let Some(&last) = self.tcp_due.get(&flow) {
                due = due.max(last);
            }
            if self.tcp_due.len() > 4096 {
                self.tcp_due.retain(|_, t| *t > sent_at);
            }
            self.tcp_due.insert(flow, due);
        }
        let seq = self.seqs[src as usize];
        self.seqs[src as usize] += 1;
        let to = self.shared.cfg.layout.worker_of(dst);
        self.enqueue(to, (due, src, seq), Mail::Packet(pkt));
    }

    /// At a boundary: post the outboxes, wait for every worker, take the inbox (and run the
    /// hold action with the others waiting, if one falls here).
    fn exchange(&mut self, tick: u64) {
        let shared = self.shared.clone();
        if self.stop_requested {
            shared.stop_at.store(tick, Ordering::Release);
        }
        for (to, out) in self.outbox.iter_mut().enumerate() {
            if to == self.index || (out.packets.is_empty() && out.ctl.is_empty()) {
                continue;
            }
            let mut mail = shared.mail[to].lock().unwrap_or_else(|p| p.into_inner());
            mail.packets.append(&mut out.packets);
            mail.ctl.append(&mut out.ctl);
        }
        let waiting = std::time::Instant::now();
        shared.barrier.wait();
        self.waited += waiting.elapsed();
        if shared.cfg.holds.contains(&tick) {
            if self.index == 0
                && let Some(mut hold) = self.hold.take()
            {
                hold();
                self.hold = Some(hold);
            }
            let waiting = std::time::Instant::now();
            shared.barrier.wait();
            self.waited += waiting.elapsed();
        }
        if shared.stop_at.load(Ordering::Acquire) == tick {
            self.stopped = true;
            self.stopped_bell.notify_one();
            return;
        }
        let mut mail = shared.mail[self.index]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        self.packets.extend(mail.packets.drain(..));
        self.ctl.extend(mail.ctl.drain(..));
    }

    fn deliver_due(&mut self, tick: u64) {
        while let Some(entry) = self.packets.first_entry() {
            if entry.key().0 > tick {
                break;
            }
            let pkt = entry.remove();
            if matches!(pkt.payload, Payload::Tcp(_)) {
                self.dirty = true;
            } else if let Some(dst) = host_index(pkt.dst) {
                self.fabric.stats.delivered += 1;
                if let Some(t) = self.fabric.traffic.get_mut(dst as usize) {
                    t.datagrams_in += 1;
                    t.bytes_in += payload_len(&pkt);
                }
            }
            self.guard.deliver(pkt);
        }
        while let Some(entry) = self.ctl.first_entry() {
            if entry.key().0 > tick {
                break;
            }
            match entry.remove() {
                Ctl::Job { req, host, job } => {
                    tokio::spawn(async move {
                        let answer = job().await;
                        with_worker(|w| w.post(host, 0, Ctl::Answer { req, answer }));
                    });
                }
                Ctl::Answer { req, answer } => {
                    if let Some(tx) = self.requests.remove(&req) {
                        let _ = tx.send(answer);
                    }
                }
            }
        }
    }

    /// Queues a control message from `src` for worker `to`, due at the next boundary.
    fn post(&mut self, src: u32, to: usize, msg: Ctl) {
        let due = self.next_boundary(self.tick);
        let seq = if src == ORCHESTRATOR {
            &mut self.orchestrator_seq
        } else {
            self.ctl_seqs.entry(src).or_default()
        };
        let key = (due, src, *seq);
        *seq += 1;
        self.enqueue(to, key, Mail::Ctl(msg));
    }

    /// When the alarm must wake next: the first delivery due, the next hold, and — with other
    /// workers to meet, or a stop to announce — the next boundary. A lone worker thus jumps
    /// over quiet stretches as far as the next timer of any of its hosts (tokio's paused clock
    /// does that), instead of stepping window by window; it meets the same instants that
    /// matter, so the run is the same.
    fn next_wake(&self) -> Instant {
        let t = self.tick;
        let mut wake = t + 3_600_000;
        if self.shared.mail.len() > 1 || self.stop_requested {
            wake = wake.min(self.next_boundary(t));
        }
        let firsts = [
            self.packets.keys().next().map(|k| k.0),
            self.ctl.keys().next().map(|k| k.0),
            self.shared.cfg.holds.range(t + 1..).next().copied(),
        ];
        for d in firsts.into_iter().flatten() {
            if d > t {
                wake = wake.min(d);
            }
        }
        self.at(wake)
    }
}

fn on_park() {
    WORKER.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.as_mut()
        {
            w.idle();
        }
    });
}

fn on_unpark() {
    WORKER.with(|w| {
        if let Ok(mut w) = w.try_borrow_mut()
            && let Some(w) = w.as_mut()
        {
            w.advance();
        }
    });
}

/// Runs `job` on the worker of seed host `host`, delivered at the next window boundary; its
/// answer comes back the same way. Call from worker 0 (the orchestrator). The request is sent
/// when this is called, not when the returned future is first polled.
pub fn remote<T, Fut>(
    host: u32,
    job: impl FnOnce() -> Fut + Send + 'static,
) -> impl Future<Output = T> + 'static
where
    T: Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    with_worker(|w| {
        let req = w.next_req;
        w.next_req += 1;
        w.requests.insert(req, tx);
        let to = w.shared.cfg.layout.worker_of(host);
        let job: Job = Box::new(move || Box::pin(async move { Box::new(job().await) as Answer }));
        w.post(ORCHESTRATOR, to, Ctl::Job { req, host, job });
    });
    async move {
        let answer = rx
            .await
            .expect("the engine keeps requests until they are answered");
        *answer
            .downcast::<T>()
            .expect("an answer of the requested type")
    }
}

/// Sets worker 0's hold action: it runs in the hook at each boundary of
/// [`EngineConfig::holds`], after every worker finished the time before it and before any runs
/// the time after.
pub fn set_hold(action: impl FnMut() + 'static) {
    with_worker(|w| w.hold = Some(Box::new(action)));
}

/// This worker's turmoil-net host of host number `host`.
pub fn host_id(host: u32) -> HostId {
    with_worker(|w| w.hosts[&host])
}

/// The doorbell this worker's sockets ring after a send.
pub fn doorbell() -> Arc<Notify> {
    with_worker(|w| w.doorbell.clone())
}

/// This worker's wall clock (follows its virtual time from the run's fixed date).
pub fn clock() -> Clock {
    with_worker(|w| w.clock)
}

/// Routes a datagram that a socket of this worker sends now to another simulated host (the
/// `net` module's fast path past the kernel's outbound queue). A datagram over the kernel's
/// MTU is refused, as the kernel would; after the stop it is dropped.
pub fn send_datagram(pkt: Packet) -> std::io::Result<()> {
    with_worker(|w| {
        if pkt.size() > w.shared.cfg.kernel.mtu {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "datagram larger than the MTU",
            ));
        }
        if !w.stopped {
            let tick = w.tick;
            w.route_one(pkt, tick);
        }
        Ok(())
    })
}

/// What one worker leaves behind: its traffic counters and the panics its hosts had.
#[derive(Debug)]
pub struct WorkerResult {
    /// Counters of the datagrams this worker's hosts sent and received.
    pub fabric: Fabric,
    /// Panic messages recorded on this worker's thread.
    pub panics: Vec<String>,
    /// Wall seconds this worker ran its hosts (not waiting at barriers for the others).
    pub busy_seconds: f64,
}

/// What the caller's panic recording needs on every worker thread.
#[derive(Debug, Clone, Copy)]
pub struct PanicLog {
    /// Starts recording on the current thread.
    pub start: fn(),
    /// Stops recording on the current thread and returns what was recorded.
    pub take: fn() -> Vec<String>,
}

/// Runs `main` on worker 0 (this thread) with `cfg.layout.workers - 1` more worker threads,
/// until `main` returns; then stops every worker at the next boundary. `epoch_ms` is the wall
/// clock at virtual time 0.
pub fn run<R, F, Fut>(
    cfg: EngineConfig,
    epoch_ms: u64,
    panics: PanicLog,
    main: F,
) -> anyhow::Result<(R, Vec<WorkerResult>)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    let n = cfg.layout.workers.max(1);
    anyhow::ensure!(
        cfg.window_ms >= 1,
        "the engine's window must be at least 1 ms"
    );
    let shared = Arc::new(Shared {
        barrier: SpinBarrier::new(n),
        mail: (0..n).map(|_| Mutex::new(Mailbox::default())).collect(),
        stop_at: AtomicU64::new(u64::MAX),
        cfg,
    });
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..n)
            .map(|i| {
                let shared = shared.clone();
                std::thread::Builder::new()
                    .name(format!("sim-worker-{i}"))
                    .spawn_scoped(scope, move || {
                        worker(i, shared, epoch_ms, panics, || async {
                            std::future::pending::<anyhow::Result<()>>().await
                        })
                    })
            })
            .collect::<Result<_, _>>()?;
        let first = worker(0, shared.clone(), epoch_ms, panics, main);
        let mut results = Vec::with_capacity(n);
        let (r, w0) = match first {
            Ok((Some(r), w0)) => (r, w0),
            Ok((None, _)) => anyhow::bail!("worker 0 stopped before its main task ended"),
            // Worker 0 stopped everyone before it returned.
            Err(e) => return Err(e),
        };
        results.push(w0);
        for h in others {
            let (_, w) = h
                .join()
                .map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
            results.push(w);
        }
        Ok((r, results))
    })
}

fn worker<R, F, Fut>(
    index: usize,
    shared: Arc<Shared>,
    epoch_ms: u64,
    panics: PanicLog,
    main: F,
) -> anyhow::Result<(Option<R>, WorkerResult)>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<R>>,
{
    (panics.start)();
    let cfg = shared.cfg.clone();
    let mut net = Net::with_config(cfg.kernel.clone());
    let mut hosts = HashMap::new();
    for h in 0..cfg.hosts {
        if cfg.layout.worker_of(h) == index {
            hosts.insert(h, net.add_host(IpAddr::V4(host_ip(h))));
        }
    }
    let guard = net.enter();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        // Poll the driver only when the queue is empty (see the module docs).
        .event_interval(u32::MAX)
        .rng_seed(tokio::runtime::RngSeed::from_bytes(
            &splitmix64(cfg.seed ^ 0x70C1 ^ index as u64).to_le_bytes(),
        ))
        .on_thread_park(on_park)
        .on_thread_unpark(on_unpark)
        .build()?;
    let local = LocalSet::new();
    let stopped_bell = Arc::new(Notify::new());
    let began = std::time::Instant::now();
    let result = rt.block_on(local.run_until(async {
        let start = Instant::now();
        let workload_start = start + Duration::from_millis(cfg.workload_start_ms);
        let fabric = Fabric::new(&cfg.network, cfg.hosts, cfg.seed, workload_start);
        let doorbell = fabric.doorbell();
        WORKER.with(|w| {
            *w.borrow_mut() = Some(Worker {
                index,
                shared: shared.clone(),
                guard,
                start,
                tick: 0,
                stop_requested: false,
                stopped: false,
                fabric,
                rngs: vec![None; cfg.hosts as usize],
                seqs: vec![0; cfg.hosts as usize],
                ctl_seqs: HashMap::new(),
                orchestrator_seq: 0,
                tcp_due: BTreeMap::new(),
                packets: BTreeMap::new(),
                ctl: BTreeMap::new(),
                outbox: (0..shared.mail.len()).map(|_| Mailbox::default()).collect(),
                egress: Vec::with_capacity(1024),
                dirty: false,
                doorbell,
                requests: HashMap::new(),
                next_req: 0,
                hold: None,
                stopped_bell: stopped_bell.clone(),
                alarm_at: start,
                alarm_bell: Arc::new(Notify::new()),
                hosts,
                clock: Clock::starting_at(epoch_ms),
                waited: std::time::Duration::ZERO,
            })
        });
        // The alarm: virtual time stops at every delivery, hold and (with several workers)
        // boundary.
        tokio::spawn(async {
            loop {
                let (at, bell) = with_worker(|w| {
                    w.alarm_at = w.next_wake();
                    (w.alarm_at, w.alarm_bell.clone())
                });
                tokio::select! {
                    biased;
                    _ = bell.notified() => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
        });
        let out = tokio::select! {
            biased;
            r = main() => Some(r),
            _ = stopped_bell.notified() => None,
        };
        if out.is_some() {
            // Tell the others at the next boundary, and wait for it.
            with_worker(|w| {
                w.stop_requested = true;
                w.alarm_bell.notify_one();
            });
            stopped_bell.notified().await;
        }
        out.transpose()
    }));
    // Tasks still hold sockets: drop them while the worker's `Net` is installed.
    drop(local);
    drop(rt);
    let state = WORKER.with(|w| w.borrow_mut().take());
    let (fabric, waited) = match state {
        Some(w) => {
            let Worker {
                fabric,
                guard,
                waited,
                ..
            } = w;
            drop(guard);
            (fabric, waited)
        }
        None => anyhow::bail!("worker {index} lost its state"),
    };
    Ok((
        result?,
        WorkerResult {
            fabric,
            panics: (panics.take)(),
            busy_seconds: began.elapsed().saturating_sub(waited).as_secs_f64(),
        },
    ))
}

/// Runs `main` on one worker holding hosts `0..hosts` (numbered as seeds) on `network`: the
/// unit tests' way to put a few hosts on the engine.
#[cfg(test)]
pub(crate) fn run_hosts<R, Fut: Future<Output = anyhow::Result<R>>>(
    hosts: u32,
    network: &Network,
    kernel: KernelConfig,
    main: impl FnOnce() -> Fut,
) -> anyhow::Result<(R, Fabric)> {
    let cfg = EngineConfig {
        layout: Layout::new(1, hosts, 0.0),
        hosts,
        window_ms: network.window_ms.max(1),
        network: network.clone(),
        kernel,
        seed: 1,
        workload_start_ms: 0,
        holds: BTreeSet::new(),
    };
    let none = PanicLog {
        start: || {},
        take: Vec::new,
    };
    let (r, results) = run(cfg, 0, none, main)?;
    Ok((r, merge(results).fabric))
}

/// The workers' results summed up.
#[derive(Debug)]
pub struct Merged {
    /// Every worker's counters in one fabric's.
    pub fabric: Fabric,
    /// Every worker's panics, worker 0's first.
    pub panics: Vec<String>,
    /// Each worker's busy wall seconds, by worker index.
    pub busy_seconds: Vec<f64>,
}

/// Sums the workers' counters into one fabric's.
pub fn merge(mut results: Vec<WorkerResult>) -> Merged {
    let busy_seconds = results.iter().map(|r| r.busy_seconds).collect();
    let mut first = results.remove(0);
    for r in results {
        let (a, b) = (&mut first.fabric, &r.fabric);
        for (x, y) in a.traffic.iter_mut().zip(&b.traffic) {
            x.datagrams_out += y.datagrams_out;
            x.bytes_out += y.bytes_out;
            x.datagrams_in += y.datagrams_in;
            x.bytes_in += y.bytes_in;
        }
        let (s, t) = (&mut a.stats, &b.stats);
        s.sent += t.sent;
        s.delivered += t.delivered;
        s.lost += t.lost;
        s.partitioned += t.partitioned;
        s.unroutable += t.unroutable;
        s.passes += t.passes;
        s.tcp_segments += t.tcp_segments;
        s.tcp_partitioned += t.tcp_partitioned;
        s.scans += t.scans;
        first.panics.extend(r.panics);
    }
    Merged {
        fabric: first.fabric,
        panics: first.panics,
        busy_seconds,
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("index", &self.index)
            .field("tick", &self.tick)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(l: &Layout, hosts: u32) -> Vec<u32> {
        let mut c = vec![0; l.workers];
        for h in 0..hosts {
            c[l.worker_of(h)] += 1;
        }
        c
    }

    /// Without load on worker 0 the seeds are shared evenly; with load, worker 0 takes fewer,
    /// so that its seeds plus its load match each other worker's seeds; hosts past the seeds
    /// (pods, users) are all on worker 0.
    #[test]
    fn layouts_balance_worker_zeros_load() {
        assert_eq!(counts(&Layout::new(1, 100, 50.0), 120), vec![120]);
        assert_eq!(
            counts(&Layout::new(2, 10_000, 0.0), 10_000),
            vec![5_000, 5_000]
        );
        assert_eq!(
            counts(&Layout::new(3, 9_000, 0.0), 9_000),
            vec![2_997, 3_002, 3_001]
        );
        let l = Layout::new(2, 10_000, 3_000.0);
        assert_eq!(l.zero_per_mille, 350);
        assert_eq!(counts(&l, 10_000), vec![3_500, 6_500]);
        let l = Layout::new(3, 10_000, 1_000.0);
        let c = counts(&l, 10_000);
        // Within the per-mille rounding of worker 0's share.
        assert!((c[0] + 1_000).abs_diff(c[1]) <= 10, "{c:?}");
        assert!(c[1].abs_diff(c[2]) <= 1, "{c:?}");
        // Pods and users (hosts past the seeds) stay on worker 0.
        assert_eq!(l.worker_of(10_000), 0);
        assert_eq!(l.worker_of(12_345), 0);
        // More load than a fair share: worker 0 takes no seeds at all.
        assert_eq!(
            counts(&Layout::new(2, 1_000, 5_000.0), 1_000),
            vec![0, 1_000]
        );
    }

    /// Every stretch of consecutive seeds (they join and churn together) is shared in the same
    /// proportion.
    #[test]
    fn layouts_interleave() {
        let l = Layout::new(2, 10_000, 3_000.0);
        for start in (0..9_900).step_by(700) {
            let zero = (start..start + 100)
                .filter(|&h| l.worker_of(h) == 0)
                .count();
            assert!((34..=36).contains(&zero), "{zero} of 100 from {start}");
        }
    }
}

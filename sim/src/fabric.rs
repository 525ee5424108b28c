//! The packet fabric: an event-driven scheduler over turmoil-net's router, with the network
//! model (latency, loss, partitions) and per-node traffic counters.
//!
//! turmoil-net's own fixtures tick a fixed step (1 ms) and scan every host each tick. Here no
//! tick exists: [`Fabric::run`] sleeps until either a socket rang the doorbell (a datagram was
//! queued at some host) or the next delayed datagram is due. The runtime is paused, so when every
//! host is idle tokio jumps virtual time straight to the next timer — a node's timeout or the
//! fabric's next delivery — and idle time costs nothing.
//!
//! Determinism: all hosts run on one thread; datagrams leave hosts in host order, the model draws
//! from its own seeded RNG in that order, and deliveries due at the same instant keep their
//! emission order (a sequence number breaks ties).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use turmoil_net::{EnterGuard, Packet, Transport as Payload};

use crate::scenario::{Latency, Network};

/// The simulated IPv4 address of host number `i`: `10.a.b.c` with every octet in 1..=250, so no
/// address ends in `.0` or `.255` (turmoil-net refuses `.255` as broadcast).
pub fn host_ip(i: u32) -> Ipv4Addr {
    let c = (i % 250) as u8 + 1;
    let b = ((i / 250) % 250) as u8 + 1;
    let a = (i / 62_500) as u8 + 1;
    Ipv4Addr::new(10, a, b, c)
}

/// The host number of a simulated address, if it is one.
pub fn host_index(ip: IpAddr) -> Option<u32> {
    let IpAddr::V4(v4) = ip else { return None };
    let [ten, a, b, c] = v4.octets();
    if ten != 10 || a == 0 || !(1..=250).contains(&b) || !(1..=250).contains(&c) {
        return None;
    }
    Some((a as u32 - 1) * 62_500 + (b as u32 - 1) * 250 + (c as u32 - 1))
}

/// Datagram and byte counts of one host (payload bytes, as the seed sees them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// Datagrams handed to the host's kernel.
    pub datagrams_in: u64,
    /// Payload bytes handed to the host's kernel.
    pub bytes_in: u64,
}

/// Fabric-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FabricStats {
    /// Datagrams that left a host.
    pub sent: u64,
    /// Datagrams delivered to the destination host.
    pub delivered: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped by a partition.
    pub partitioned: u64,
    /// Datagrams to an address that is no simulated host.
    pub unroutable: u64,
    /// Scheduler passes (deliveries due, and a scan of the outbound queues if a socket rang).
    pub passes: u64,
    /// TCP segments carried (pods and their clients; not in the datagram counts above).
    pub tcp_segments: u64,
    /// TCP segments dropped by a partition.
    pub tcp_partitioned: u64,
    /// Passes that scanned every host's outbound queue (the cost driver at scale).
    pub scans: u64,
}

/// A partition in absolute virtual time.
#[derive(Debug, Clone)]
pub struct ActivePartition {
    /// Start.
    pub start: Instant,
    /// End.
    pub end: Instant,
    /// Nodes whose hash falls below this are on the minority side.
    pub threshold: u64,
    /// Salt of the side hash.
    pub salt: u64,
}

impl ActivePartition {
    fn side(&self, host: u32) -> bool {
        splitmix64(self.salt ^ host as u64) < self.threshold
    }
}

/// A SplitMix64 step: a cheap, good 64-bit mix (partition sides, sampling).
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The scheduler: pending deliveries, the model, the counters.
#[derive(Debug)]
pub struct Fabric {
    doorbell: Arc<Notify>,
    batch: Duration,
    latency: Latency,
    loss: f64,
    partitions: Vec<ActivePartition>,
    rng: ChaCha8Rng,
    pending: BTreeMap<(Instant, u64), Packet>,
    seq: u64,
    egress: Vec<Packet>,
    /// Per TCP flow (source, destination): when its last segment is due (segments of one
    /// connection arrive in order; turmoil-net's receiver drops out-of-order ones).
    tcp_due: BTreeMap<(std::net::SocketAddr, std::net::SocketAddr), Instant>,
    /// Traffic per host number.
    pub traffic: Vec<Traffic>,
    /// Totals.
    pub stats: FabricStats,
}

impl Fabric {
    /// A fabric for `hosts` hosts with the model of `network`; partitions are placed relative to
    /// `workload_start`.
    pub fn new(network: &Network, hosts: u32, rng_seed: u64, workload_start: Instant) -> Fabric {
        let partitions = network
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| ActivePartition {
                start: workload_start + Duration::from_secs_f64(p.start_s),
                end: workload_start + Duration::from_secs_f64(p.end_s),
                threshold: (p.fraction * u64::MAX as f64) as u64,
                salt: splitmix64(rng_seed ^ (0x5041_5254 + i as u64)),
            })
            .collect();
        Fabric {
            doorbell: Arc::new(Notify::new()),
            batch: Duration::from_millis(network.batch_ms),
            latency: network.latency.clone(),
            loss: network.loss,
            partitions,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            pending: BTreeMap::new(),
            seq: 0,
            egress: Vec::with_capacity(1024),
            tcp_due: BTreeMap::new(),
            traffic: vec![Traffic::default(); hosts as usize],
            stats: FabricStats::default(),
        }
    }

    /// The doorbell sockets ring after a send.
    pub fn doorbell(&self) -> Arc<Notify> {
        self.doorbell.clone()
    }

    fn delay(&mut self) -> Duration {
        let ms = match self.latency {
            Latency::Fixed { ms } => ms,
            Latency::Uniform { min_ms, max_ms } => {
                if max_ms > min_ms {
                    self.rng.random_range(min_ms..=max_ms)
                } else {
                    min_ms
                }
            }
            Latency::Lognormal { median_ms, sigma } => {
                // Box–Muller for one standard normal draw.
                let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
                let u2: f64 = self.rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                median_ms * (sigma * z).exp()
            }
        };
        // Cap the tail at 10 s; whole milliseconds (tokio's timer resolution).
        Duration::from_millis(ms.clamp(0.0, 10_000.0).round() as u64)
    }

    fn partitioned(&self, now: Instant, src: u32, dst: u32) -> bool {
        self.partitions
            .iter()
            .any(|p| now >= p.start && now < p.end && p.side(src) != p.side(dst))
    }

    /// One pass at the current instant: deliver what is due, then take every queued datagram
    /// off its host and route it through the model.
    pub fn step(&mut self, guard: &EnterGuard) {
        self.step_with(guard, true);
    }

    /// A pass that scans the hosts' outbound queues only if `egress` (no socket rang the
    /// doorbell since the last scan means every queue is empty: a delivery-only pass).
    fn step_with(&mut self, guard: &EnterGuard, egress: bool) {
        let now = Instant::now();
        self.stats.passes += 1;
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let pkt = entry.remove();
            self.deliver(guard, pkt);
        }
        if !egress {
            return;
        }
        self.stats.scans += 1;
        let mut egress = std::mem::take(&mut self.egress);
        guard.egress_all(&mut egress);
        for pkt in egress.drain(..) {
            if let Payload::Tcp(seg) = &pkt.payload {
                let flow = (
                    std::net::SocketAddr::new(pkt.src, seg.src_port),
                    std::net::SocketAddr::new(pkt.dst, seg.dst_port),
                );
                self.route_tcp(now, flow, pkt);
                continue;
            }
            self.stats.sent += 1;
            let len = payload_len(&pkt);
            let (Some(src), Some(dst)) = (host_index(pkt.src), host_index(pkt.dst)) else {
                self.stats.unroutable += 1;
                continue;
            };
            if let Some(t) = self.traffic.get_mut(src as usize) {
                t.datagrams_out += 1;
                t.bytes_out += len;
            }
            if self.partitioned(now, src, dst) {
                self.stats.partitioned += 1;
                continue;
            }
            if self.loss > 0.0 && self.rng.random::<f64>() < self.loss {
                self.stats.lost += 1;
                continue;
            }
            // With batching, the datagram left its host up to `batch` ago: count that time
            // as part of its latency.
            let d = self.delay().saturating_sub(self.batch);
            if d.is_zero() {
                self.deliver(guard, pkt);
            } else {
                self.seq += 1;
                self.pending.insert((now + d, self.seq), pkt);
            }
        }
        self.egress = egress;
    }

    /// TCP: latency from the model, no random loss (the pods' HTTP and WebSocket traffic is
    /// modelled as a reliable stream; the DHT's datagrams carry the loss), partitions apply,
    /// and a flow's segments never overtake each other.
    fn route_tcp(
        &mut self,
        now: Instant,
        flow: (std::net::SocketAddr, std::net::SocketAddr),
        pkt: Packet,
    ) {
        self.stats.tcp_segments += 1;
        let (Some(src), Some(dst)) = (host_index(pkt.src), host_index(pkt.dst)) else {
            return;
        };
        if self.partitioned(now, src, dst) {
            self.stats.tcp_partitioned += 1;
            return;
        }
        let mut due = now + self.delay().saturating_sub(self.batch);
        if let Some(&last) = self.tcp_due.get(&flow) {
            due = due.max(last);
        }
        if self.tcp_due.len() > 4096 {
            self.tcp_due.retain(|_, t| *t > now);
        }
        self.tcp_due.insert(flow, due);
        self.seq += 1;
        self.pending.insert((due, self.seq), pkt);
    }

    fn deliver(&mut self, guard: &EnterGuard, pkt: Packet) {
        if matches!(pkt.payload, Payload::Tcp(_)) {
            // The receiving kernel answers (ACK, SYN-ACK, RST) at once: another pass sends it.
            guard.deliver(pkt);
            self.doorbell.notify_one();
            return;
        }
        let Some(dst) = host_index(pkt.dst) else {
            self.stats.unroutable += 1;
            return;
        };
        if let Some(t) = self.traffic.get_mut(dst as usize) {
            t.datagrams_in += 1;
            t.bytes_in += payload_len(&pkt);
        }
        self.stats.delivered += 1;
        guard.deliver(pkt);
    }

    /// Runs forever: a pass whenever the doorbell rings (or, with batching, `batch_ms` after
    /// it first rang) or a delivery falls due. Only the former scan every host's outbound
    /// queue, so with batching the scans are bounded by 1000 / `batch_ms` per simulated second
    /// however many deliveries fall due.
    pub async fn run(fabric: &std::cell::RefCell<Fabric>, guard: &EnterGuard) {
        let doorbell = fabric.borrow().doorbell();
        let batch = fabric.borrow().batch;
        let mut pass_at: Option<Instant> = None;
        // A socket rang since the last scan of the outbound queues. Every send rings, so when
        // this is false every queue is empty and a pass only delivers (same result, no scan).
        let mut dirty = false;
        loop {
            let due = fabric.borrow().pending.first_key_value().map(|(k, _)| k.0);
            let next = match (due, pass_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let rang = match next {
                Some(at) => {
                    tokio::select! {
                        biased;
                        _ = doorbell.notified() => true,
                        _ = tokio::time::sleep_until(at) => false,
                    }
                }
                None => {
                    doorbell.notified().await;
                    true
                }
            };
            dirty |= rang;
            if rang && !batch.is_zero() {
                pass_at.get_or_insert_with(|| Instant::now() + batch);
                continue;
            }
            // With batching, the queues are scanned once per batch (when `pass_at` falls
            // due); a delivery falling due in between only delivers.
            let scan_due = batch.is_zero() || pass_at.is_some_and(|p| p <= Instant::now());
            if pass_at.is_some_and(|p| p <= Instant::now()) {
                pass_at = None;
            }
            let scan = dirty && scan_due;
            fabric.borrow_mut().step_with(guard, scan);
            if scan {
                dirty = false;
            }
        }
    }
}

fn payload_len(pkt: &Packet) -> u64 {
    match &pkt.payload {
        Payload::Udp(d) => d.payload.len() as u64,
        Payload::Tcp(s) => s.payload.len() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_avoid_broadcast_octets() {
        for i in [0u32, 1, 249, 250, 62_499, 62_500, 99_999, 1_000_000] {
            let ip = host_ip(i);
            let o = ip.octets();
            assert!(o[3] != 0 && o[3] != 255 && o[2] != 0 && o[2] != 255, "{ip}");
            assert_eq!(host_index(IpAddr::V4(ip)), Some(i), "{ip}");
        }
        assert_eq!(host_index("192.168.0.1".parse().unwrap()), None);
        assert_eq!(host_index("10.1.0.1".parse().unwrap()), None);
    }
}

//! The network model (latency, loss, partitions), simulated addresses, and per-host traffic
//! counters. The engine (the `engine` module) routes every datagram and segment through it.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;
use tokio::time::Instant;
use turmoil_net::{Packet, Transport as Payload};

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
    /// Window boundaries worker 0 stopped at.
    pub passes: u64,
    /// TCP segments carried (pods and their clients; not in the datagram counts above).
    pub tcp_segments: u64,
    /// TCP segments dropped by a partition.
    pub tcp_partitioned: u64,
    /// Scans of every host's outbound queue of a worker: at instants when a TCP socket (or a
    /// loopback datagram) rang; datagrams between hosts skip the queues (the `net` module).
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

/// The network model of one worker, and the counters of its hosts' traffic (the engine sums
/// the workers' counters at the end).
#[derive(Debug)]
pub struct Fabric {
    doorbell: Arc<Notify>,
    pub(crate) latency: Latency,
    pub(crate) loss: f64,
    partitions: Vec<ActivePartition>,
    /// Traffic per host number.
    pub traffic: Vec<Traffic>,
    /// Totals.
    pub stats: FabricStats,
}

impl Fabric {
    /// The model of `network` for `hosts` hosts; partitions are placed relative to
    /// `workload_start`, their sides drawn from `rng_seed`.
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
            latency: network.latency.clone(),
            loss: network.loss,
            partitions,
            traffic: vec![Traffic::default(); hosts as usize],
            stats: FabricStats::default(),
        }
    }

    /// The doorbell sockets ring after a send.
    pub fn doorbell(&self) -> Arc<Notify> {
        self.doorbell.clone()
    }

    /// Whether a partition separates `src` from `dst` at `now`.
    pub(crate) fn partitioned(&self, now: Instant, src: u32, dst: u32) -> bool {
        self.partitions
            .iter()
            .any(|p| now >= p.start && now < p.end && p.side(src) != p.side(dst))
    }
}

/// One latency draw of the model, in whole milliseconds (tokio's timer resolution), the tail
/// capped at 10 s.
pub(crate) fn model_delay(latency: &Latency, rng: &mut ChaCha8Rng) -> Duration {
    let ms = match *latency {
        Latency::Fixed { ms } => ms,
        Latency::Uniform { min_ms, max_ms } => {
            if max_ms > min_ms {
                rng.random_range(min_ms..=max_ms)
            } else {
                min_ms
            }
        }
        Latency::Lognormal { median_ms, sigma } => {
            // Box–Muller for one standard normal draw.
            let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
            let u2: f64 = rng.random();
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            median_ms * (sigma * z).exp()
        }
    };
    // Cap the tail at 10 s; whole milliseconds (tokio's timer resolution).
    Duration::from_millis(ms.clamp(0.0, 10_000.0).round() as u64)
}

pub(crate) fn payload_len(pkt: &Packet) -> u64 {
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

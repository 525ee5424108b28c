//! The impairing switch: an Ethernet learning switch in user space that does `tc netem`'s job.
//!
//! Every host's veth pair ends in the switch namespace; [`run`] opens a raw `AF_PACKET` socket
//! on each of those ports and forwards frames between them like a bridge (MAC learning,
//! flooding of broadcast and unknown destinations). On the way, each IP frame meets the link's
//! [`Impairment`]: it is lost with probability `loss`, or held for `delay ± jitter`
//! (uniform), or — with probability `reorder` — sent at once, overtaking the frames being held
//! (as netem's `reorder`). Jitter alone reorders too, as with netem. Frames between ports on
//! different sides of a partition are dropped, whatever their type: a cut link cuts ARP too.
//! ARP and other non-IP frames are otherwise forwarded at once, so address resolution does not
//! add a second delay to the first packet of a flow.
//!
//! Why user space: the kernel of the machine this was built on has no `sch_netem`
//! (`CONFIG_NET_SCH_NETEM` is not set), so `tc qdisc … netem` fails with "Specified qdisc kind
//! is unknown". The parameters mean the same as netem's (`delay 100ms 50ms loss 10%` is
//! `delay_ms = 100, jitter_ms = 50, loss = 0.1`), applied once per frame on its way from one
//! host to another, i.e. once per one-way trip, as netem on each sender's egress would.
//!
//! The forwarding decision ([`Switch::route`]) is pure and seeded, so it is unit-tested; the
//! IO loop around it ([`run`]) is a receive thread per port feeding one bounded queue, and a
//! scheduler that sends each held frame when it is due. The switch is controlled by JSON lines
//! on stdin ([`Control`]) and answers `stats` with a JSON line on stdout.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::BufRead;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Frames waiting between the receive threads and the scheduler. A full queue drops the new
/// frame (counted as `overflow`) instead of growing: the switch is a bounded queue, like a
/// real one.
pub const QUEUE_FRAMES: usize = 65_536;

/// Frames held for their delay at once, at most; beyond it a frame is dropped (`overflow`),
/// as netem drops beyond its `limit` (1,000 packets by default; this is per switch, for all
/// links together).
pub const MAX_HELD: usize = 200_000;

/// Largest frame read from a port. The ports have segmentation and checksum offloads turned
/// off (see [`crate::netns`]), so frames are at most MTU + header; this leaves room.
pub const MAX_FRAME: usize = 9_216;

/// What a link does to the IP frames crossing it (netem's `delay`, jitter, `loss`, `reorder`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Impairment {
    /// Mean one-way delay, ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// Uniform jitter around the delay, ± ms.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Probability that a frame is lost.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a frame skips the delay (and overtakes those held).
    #[serde(default)]
    pub reorder: f64,
}

impl Impairment {
    /// Checks the ranges: probabilities in [0, 1), jitter not above the delay.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.loss) {
            return Err(format!("loss must be in [0, 1), not {}", self.loss));
        }
        if !(0.0..1.0).contains(&self.reorder) {
            return Err(format!("reorder must be in [0, 1), not {}", self.reorder));
        }
        if self.jitter_ms > self.delay_ms {
            return Err(format!(
                "jitter_ms ({}) above delay_ms ({}) would need negative delays",
                self.jitter_ms, self.delay_ms
            ));
        }
        Ok(())
    }
}

/// A command on the switch's stdin (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Control {
    /// Sets every link's impairment.
    Impair(Impairment),
    /// Cuts the network: `sides[port]` is the side of each port; frames between different
    /// sides are dropped.
    Partition(Vec<u8>),
    /// Restores every link.
    Heal,
    /// Prints [`Stats`] as one JSON line on stdout.
    Stats,
}

/// What the switch did, by fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Frames read from the ports.
    pub received: u64,
    /// Copies sent out (a flooded frame counts once per port).
    pub forwarded: u64,
    /// Copies sent at once by `reorder`.
    pub reordered: u64,
    /// Copies lost by `loss`.
    pub lost: u64,
    /// Copies dropped by a partition.
    pub partitioned: u64,
    /// Frames dropped because a queue was full.
    pub overflow: u64,
    /// Frames too short to be Ethernet.
    pub malformed: u64,
    /// Copies whose send failed.
    pub send_errors: u64,
}

/// Where one copy of a frame goes, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Send out of `port` after `after`.
    Forward {
        /// The port.
        port: usize,
        /// The delay.
        after: Duration,
    },
    /// Lost on the way to `port` (`loss`).
    Lost(usize),
    /// Cut off from `port` by a partition.
    Partitioned(usize),
}

/// The forwarding state: MAC table, partition, impairment, RNG, counters.
#[derive(Debug)]
pub struct Switch {
    ports: usize,
    macs: HashMap<[u8; 6], usize>,
    sides: Option<Vec<u8>>,
    impairment: Impairment,
    rng: ChaCha8Rng,
    /// Counters.
    pub stats: Stats,
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;

impl Switch {
    /// A switch of `ports` ports, no impairment, no partition, randomness from `seed`.
    pub fn new(ports: usize, seed: u64) -> Switch {
        Switch {
            ports,
            macs: HashMap::new(),
            sides: None,
            impairment: Impairment::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            stats: Stats::default(),
        }
    }

    /// Applies a control command (not `Stats`, which the IO loop answers).
    pub fn control(&mut self, c: &Control) -> Result<(), String> {
        match c {
            Control::Impair(i) => {
                i.validate()?;
                self.impairment = *i;
            }
            Control::Partition(sides) => {
                if sides.len() != self.ports {
                    return Err(format!(
                        "partition names {} sides for {} ports",
                        sides.len(),
                        self.ports
                    ));
                }
                self.sides = Some(sides.clone());
            }
            Control::Heal => self.sides = None,
            Control::Stats => {}
        }
        Ok(())
    }

    /// Decides what becomes of `frame`, read from `in_port`: one fate per port it goes to.
    pub fn route(&mut self, in_port: usize, frame: &[u8]) -> Vec<Fate> {
        self.stats.received += 1;
        if frame.len() < 14 || in_port >= self.ports {
            self.stats.malformed += 1;
            return Vec::new();
        }
        let dst: [u8; 6] = frame[0..6].try_into().expect("6 bytes");
        let src: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        if src[0] & 1 == 0 {
            self.macs.insert(src, in_port);
        }
        let outs: Vec<usize> = if dst[0] & 1 == 1 {
            (0..self.ports).filter(|&p| p != in_port).collect()
        } else {
            match self.macs.get(&dst) {
                Some(&p) if p == in_port => Vec::new(),
                Some(&p) => vec![p],
                None => (0..self.ports).filter(|&p| p != in_port).collect(),
            }
        };
        let ip = ethertype == ETHERTYPE_IPV4 || ethertype == ETHERTYPE_IPV6;
        outs.into_iter()
            .map(|port| {
                if let Some(sides) = &self.sides
                    && sides[in_port] != sides[port]
                {
                    self.stats.partitioned += 1;
                    return Fate::Partitioned(port);
                }
                if !ip {
                    return Fate::Forward {
                        port,
                        after: Duration::ZERO,
                    };
                }
                let i = self.impairment;
                if i.loss > 0.0 && self.rng.random_bool(i.loss) {
                    self.stats.lost += 1;
                    return Fate::Lost(port);
                }
                if i.reorder > 0.0 && self.rng.random_bool(i.reorder) {
                    self.stats.reordered += 1;
                    return Fate::Forward {
                        port,
                        after: Duration::ZERO,
                    };
                }
                let ms = if i.jitter_ms > 0 {
                    self.rng
                        .random_range(i.delay_ms - i.jitter_ms..=i.delay_ms + i.jitter_ms)
                } else {
                    i.delay_ms
                };
                Fate::Forward {
                    port,
                    after: Duration::from_millis(ms),
                }
            })
            .collect()
    }
}

/// A frame held until it is due.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Held {
    due: Instant,
    seq: u64,
    port: usize,
    frame: Vec<u8>,
}

enum Input {
    Frame(usize, Vec<u8>),
    Control(Control),
    Eof,
}

/// Runs the switch on the named interfaces (in the current network namespace) until stdin
/// closes; prints the final [`Stats`] as a JSON line. Errors if a port cannot be opened.
pub fn run(port_names: &[String], seed: u64) -> anyhow::Result<Stats> {
    use pnet_datalink::Channel;
    let interfaces = pnet_datalink::interfaces();
    let (tx_in, rx_in) = mpsc::sync_channel::<Input>(QUEUE_FRAMES);
    let mut senders = Vec::new();
    let overflow = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (port, name) in port_names.iter().enumerate() {
        let iface = interfaces
            .iter()
            .find(|i| &i.name == name)
            .ok_or_else(|| anyhow::anyhow!("no interface {name} in this namespace"))?;
        let config = pnet_datalink::Config {
            read_timeout: Some(Duration::from_millis(200)),
            read_buffer_size: MAX_FRAME,
            write_buffer_size: MAX_FRAME,
            ..Default::default()
        };
        let (tx, mut rx) = match pnet_datalink::channel(iface, config) {
            Ok(Channel::Ethernet(tx, rx)) => (tx, rx),
            Ok(_) => anyhow::bail!("{name}: not an Ethernet channel"),
            Err(e) => anyhow::bail!("{name}: cannot open a packet socket: {e}"),
        };
        senders.push(tx);
        let queue = tx_in.clone();
        let overflow = overflow.clone();
        std::thread::Builder::new()
            .name(format!("rx-{name}"))
            .spawn(move || {
                loop {
                    match rx.next() {
                        Ok(frame) => match queue.try_send(Input::Frame(port, frame.to_vec())) {
                            Ok(()) => {}
                            Err(mpsc::TrySendError::Full(_)) => {
                                overflow.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(mpsc::TrySendError::Disconnected(_)) => return,
                        },
                        // A read timeout: nothing came; the process ends with the scheduler.
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(e) => {
                            eprintln!("switch: {e} on port {port}: stopping its reader");
                            return;
                        }
                    }
                }
            })?;
    }
    let ctl = tx_in.clone();
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            for line in stdin.lock().lines() {
                let Ok(line) = line else { break };
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Control>(&line) {
                    Ok(c) => {
                        if ctl.send(Input::Control(c)).is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("switch: ignored control line {line:?}: {e}"),
                }
            }
            let _ = ctl.send(Input::Eof);
        })?;
    drop(tx_in);

    let mut switch = Switch::new(port_names.len(), seed);
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while let Some(Reverse(h)) = held.peek() {
            if h.due > now {
                break;
            }
            let Reverse(h) = held.pop().expect("peeked");
            send(&mut senders[h.port], &h.frame, &mut switch.stats);
        }
        let wait = held
            .peek()
            .map_or(Duration::from_millis(100), |Reverse(h)| {
                h.due.saturating_duration_since(now)
            });
        let input = match rx_in.recv_timeout(wait) {
            Ok(i) => i,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match input {
            Input::Frame(port, frame) => {
                let now = Instant::now();
                for fate in switch.route(port, &frame) {
                    if let Fate::Forward { port, after } = fate {
                        if after.is_zero() {
                            send(&mut senders[port], &frame, &mut switch.stats);
                        } else if held.len() >= MAX_HELD {
                            switch.stats.overflow += 1;
                        } else {
                            seq += 1;
                            held.push(Reverse(Held {
                                due: now + after,
                                seq,
                                port,
                                frame: frame.clone(),
                            }));
                        }
                    }
                }
            }
            Input::Control(Control::Stats) => {
                let mut s = switch.stats;
                s.overflow += overflow.load(std::sync::atomic::Ordering::Relaxed);
                println!("{}", serde_json::to_string(&s)?);
            }
            Input::Control(c) => {
                if let Err(e) = switch.control(&c) {
                    eprintln!("switch: refused {c:?}: {e}");
                }
            }
            Input::Eof => break,
        }
    }
    let mut s = switch.stats;
    s.overflow += overflow.load(std::sync::atomic::Ordering::Relaxed);
    println!("{}", serde_json::to_string(&s)?);
    Ok(s)
}

fn send(tx: &mut Box<dyn pnet_datalink::DataLinkSender>, frame: &[u8], stats: &mut Stats) {
    match tx.send_to(frame, None) {
        Some(Ok(())) => stats.forwarded += 1,
        _ => stats.send_errors += 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(&[0u8; 46]);
        f
    }
    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const BCAST: [u8; 6] = [0xff; 6];

    fn ports(fates: &[Fate]) -> Vec<usize> {
        fates
            .iter()
            .map(|f| match f {
                Fate::Forward { port, .. } | Fate::Lost(port) | Fate::Partitioned(port) => *port,
            })
            .collect()
    }

    #[test]
    fn floods_broadcast_and_unknown_then_learns() {
        let mut s = Switch::new(4, 1);
        // ARP broadcast from A on port 0: everywhere but port 0, at once.
        let f = s.route(0, &frame(BCAST, A, 0x0806));
        assert_eq!(ports(&f), vec![1, 2, 3]);
        assert!(
            f.iter()
                .all(|f| matches!(f, Fate::Forward { after, .. } if after.is_zero()))
        );
        // B (unknown so far) from port 2 to A: A was learned on port 0.
        assert_eq!(ports(&s.route(2, &frame(A, B, 0x0800))), vec![0]);
        // Now B is known on port 2.
        assert_eq!(ports(&s.route(0, &frame(B, A, 0x0800))), vec![2]);
        // A frame to its own port goes nowhere.
        assert!(s.route(2, &frame(B, A, 0x0800)).is_empty());
    }

    #[test]
    fn short_frames_are_counted_and_dropped() {
        let mut s = Switch::new(2, 1);
        assert!(s.route(0, &[1, 2, 3]).is_empty());
        assert_eq!(s.stats.malformed, 1);
    }

    #[test]
    fn delay_and_jitter_stay_in_range_and_vary() {
        let mut s = Switch::new(2, 7);
        s.control(&Control::Impair(Impairment {
            delay_ms: 100,
            jitter_ms: 50,
            loss: 0.0,
            reorder: 0.0,
        }))
        .unwrap();
        s.route(1, &frame(BCAST, B, 0x0806));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..2_000 {
            match s.route(0, &frame(B, A, 0x0800))[..] {
                [Fate::Forward { port: 1, after }] => {
                    let ms = after.as_millis() as u64;
                    assert!((50..=150).contains(&ms), "{ms} ms");
                    seen.insert(ms);
                }
                ref other => panic!("{other:?}"),
            }
        }
        assert!(
            seen.len() > 90,
            "jitter should spread delays: {}",
            seen.len()
        );
        // ARP is not delayed.
        assert!(matches!(
            s.route(0, &frame(B, A, 0x0806))[..],
            [Fate::Forward { after, .. }] if after.is_zero()
        ));
    }

    #[test]
    fn loss_rate_matches_and_is_seeded() {
        let run = |seed| {
            let mut s = Switch::new(2, seed);
            s.control(&Control::Impair(Impairment {
                loss: 0.1,
                ..Default::default()
            }))
            .unwrap();
            s.route(1, &frame(BCAST, B, 0x0806));
            (0..20_000)
                .map(|_| matches!(s.route(0, &frame(B, A, 0x0800))[..], [Fate::Lost(1)]))
                .collect::<Vec<bool>>()
        };
        let a = run(3);
        let lost = a.iter().filter(|&&l| l).count();
        assert!(
            (1_700..=2_300).contains(&lost),
            "{lost} of 20000 lost at 10 %"
        );
        assert_eq!(a, run(3), "same seed, same fates");
        assert_ne!(a, run(4));
    }

    #[test]
    fn reorder_sends_some_frames_at_once() {
        let mut s = Switch::new(2, 5);
        s.control(&Control::Impair(Impairment {
            delay_ms: 100,
            reorder: 0.25,
            ..Default::default()
        }))
        .unwrap();
        s.route(1, &frame(BCAST, B, 0x0806));
        let immediate = (0..4_000)
            .filter(|_| {
                matches!(s.route(0, &frame(B, A, 0x0800))[..],
                    [Fate::Forward { after, .. }] if after.is_zero())
            })
            .count();
        assert!((800..=1_200).contains(&immediate), "{immediate}");
        assert_eq!(s.stats.reordered as usize, immediate);
    }

    #[test]
    fn partition_cuts_everything_across_sides_and_heals() {
        let mut s = Switch::new(3, 1);
        s.route(1, &frame(BCAST, B, 0x0806));
        s.control(&Control::Partition(vec![0, 1, 0])).unwrap();
        assert_eq!(s.route(0, &frame(B, A, 0x0800)), vec![Fate::Partitioned(1)]);
        // ARP across the cut is dropped too; within a side it passes.
        let f = s.route(0, &frame(BCAST, A, 0x0806));
        assert_eq!(f[0], Fate::Partitioned(1));
        assert!(matches!(f[1], Fate::Forward { port: 2, .. }));
        s.control(&Control::Heal).unwrap();
        assert!(matches!(
            s.route(0, &frame(B, A, 0x0800))[..],
            [Fate::Forward { port: 1, .. }]
        ));
        assert!(s.control(&Control::Partition(vec![0, 1])).is_err());
    }

    #[test]
    fn bad_impairments_are_refused() {
        let mut s = Switch::new(2, 1);
        for bad in [
            Impairment {
                loss: 1.0,
                ..Default::default()
            },
            Impairment {
                reorder: -0.1,
                ..Default::default()
            },
            Impairment {
                delay_ms: 10,
                jitter_ms: 20,
                ..Default::default()
            },
        ] {
            assert!(s.control(&Control::Impair(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_lines_parse() {
        let c: Control = serde_json::from_str(r#"{"partition":[0,1,1]}"#).unwrap();
        assert_eq!(c, Control::Partition(vec![0, 1, 1]));
        let c: Control = serde_json::from_str(r#""heal""#).unwrap();
        assert_eq!(c, Control::Heal);
        let c: Control =
            serde_json::from_str(r#"{"impair":{"delay_ms":100,"jitter_ms":50,"loss":0.1}}"#)
                .unwrap();
        assert_eq!(
            c,
            Control::Impair(Impairment {
                delay_ms: 100,
                jitter_ms: 50,
                loss: 0.1,
                reorder: 0.0
            })
        );
    }
}

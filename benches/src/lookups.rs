//! Lookups on the in-process network of sans-IO nodes: hops and messages per lookup.
//!
//! A [`Network`] of n nodes (virtual time, 20 ms one-way latency, no loss) gets its routing
//! tables in one of two ways ([`Build`]):
//! - **joined** ([`joined_network`]): node by node through the protocol itself
//!   ([`Network::bootstrap_all`]: each newcomer looks up its own identifier and refreshes its
//!   buckets). Faithful, but the cost grows faster than n: 7 s for 10³ nodes, ~200 s for 10⁴,
//!   and an attempt at 10⁵ was stopped unfinished after 79 minutes;
//! - **filled** ([`filled_network`]): every node's table is filled directly from the global
//!   set of identifiers, with what a node holds once it has heard from the network: for each
//!   of its buckets, every node that falls in it when there are at most k, else k of them
//!   drawn at random (seeded). The contacts go through the node's normal insert path
//!   ([`Node::add_contact`](muttr_node::kad::Node::add_contact): the same code as a contact
//!   heard from, bucket capacity respected — no bucket is offered more than k, so no
//!   eviction PING is ever due). Nothing else is faked: the lookups that follow are the
//!   unchanged core exchanging real datagrams in virtual time. Building 10⁵ nodes takes
//!   seconds.
//!
//! The two differ in two known ways. A filled table is *full* (every bucket holds min(k,
//! population)), a freshly joined one is not quite (it holds the nodes that answered its own
//! join lookups and those that later queried it: at 10⁴ nodes, ~180 contacts against ~200).
//! And filled tables are drawn independently per node, so that A holds B says nothing about
//! B holding A, whereas joining leaves knowledge more often mutual (measured by the
//! `mutual_probe` example: 48 % of table entries at 10⁴ nodes joined, 29 % filled). The
//! lookup's own hops and requests barely depend on that; the network's background traffic
//! does: a responder hearing from an unknown requester whose bucket is full PINGs that
//! bucket's oldest contact (P-K3), which does the same if it does not know the pinger, and
//! so on, and such chains are far longer on filled tables. `cargo bench` measures both
//! builds at 10³ and 10⁴ nodes, so their distributions can be compared, and the filled one
//! alone at 10⁵.
//!
//! Then random nodes look up random identifiers (FIND_NODE) and values that random other
//! nodes published (FIND_VALUE). Hops and requests per lookup come from the core's own
//! [`LookupResult`](muttr_node::kad::lookup::LookupResult); wall time is measured around
//! [`Network::run_command`], so it includes encoding, decoding and routing every datagram of
//! the lookup.

use std::path::PathBuf;
use std::time::Instant;

use muttr_node::id::{ID_BITS, ID_LEN, NodeId};
use muttr_node::kad::testnet::Network;
use muttr_node::kad::{Command, CommandResult, Update};
use muttr_node::value;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::inputs::{armored_message, rng};

/// One-way latency of the benchmark network, in virtual milliseconds.
pub const LATENCY_MS: u64 = 20;

/// How a benchmark network's routing tables were built (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Build {
    /// Node by node through the protocol ([`Network::bootstrap_all`]).
    #[default]
    Joined,
    /// Tables filled directly from the global identifier set ([`fill_tables`]).
    Filled,
}

impl Build {
    /// "joined" or "filled".
    pub fn name(self) -> &'static str {
        match self {
            Build::Joined => "joined",
            Build::Filled => "filled",
        }
    }
}

/// Distribution of one kind of lookup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Lookups measured.
    pub count: usize,
    /// FIND_VALUE only: lookups that returned the value.
    pub found: usize,
    /// Median hops.
    pub hops_median: f64,
    /// Mean hops.
    pub hops_mean: f64,
    /// 90th percentile of hops.
    pub hops_p90: f64,
    /// 99th percentile of hops.
    #[serde(default)]
    pub hops_p99: f64,
    /// Most hops seen.
    pub hops_max: u32,
    /// Median requests sent per lookup.
    pub messages_median: f64,
    /// Mean requests sent per lookup.
    pub messages_mean: f64,
    /// 90th percentile of requests per lookup.
    pub messages_p90: f64,
    /// 99th percentile of requests per lookup.
    #[serde(default)]
    pub messages_p99: f64,
    /// Most requests seen in one lookup.
    #[serde(default)]
    pub messages_max: u32,
    /// Median wall time per lookup, in microseconds.
    #[serde(default)]
    pub wall_us_median: f64,
    /// Mean number of datagrams the whole network delivered while one lookup ran: its own
    /// requests and replies, plus whatever else was in flight (eviction PINGs of earlier
    /// lookups' responders, P-K3, and on joined networks past the hour, bucket refreshes).
    #[serde(default)]
    pub datagrams_mean: f64,
    /// PINGs answered network-wide per lookup over the whole series (eviction PINGs, and for
    /// FIND_VALUE also the amplification defence's address checks).
    #[serde(default)]
    pub pings_mean: f64,
    /// Mean wall time per lookup, in microseconds.
    pub wall_us_mean: f64,
}

/// The lookup figures of one network size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LookupStats {
    /// Nodes in the network.
    pub nodes: usize,
    /// How the routing tables were built.
    #[serde(default)]
    pub build: Build,
    /// Wall time to create the network and build its tables, in seconds.
    pub setup_secs: f64,
    /// Growth of the process's resident memory while the network was built, in MiB (Linux
    /// only; a lower bound when memory freed earlier in the process was reused).
    #[serde(default)]
    pub setup_rss_mib: Option<f64>,
    /// Mean routing-table size once built.
    pub mean_table_size: f64,
    /// FIND_NODE of random identifiers.
    pub find_node: Summary,
    /// FIND_VALUE of published values.
    pub find_value: Summary,
}

/// A network of `n` nodes joined through the protocol; returns it with the seconds it took.
pub fn joined_network(n: usize, seed: u64) -> (Network, f64) {
    let start = Instant::now();
    let mut net = Network::new(n as u32, LATENCY_MS, 0.0, seed);
    net.bootstrap_all();
    (net, start.elapsed().as_secs_f64())
}

/// A network of `n` nodes whose tables are filled directly ([`fill_tables`]); returns it
/// with the seconds it took (creating the nodes included).
pub fn filled_network(n: usize, seed: u64) -> (Network, f64) {
    let start = Instant::now();
    let mut net = Network::new(n as u32, LATENCY_MS, 0.0, seed);
    fill_tables(&mut net, seed);
    (net, start.elapsed().as_secs_f64())
}

/// A network of `n` nodes built the given way.
pub fn network(build: Build, n: usize, seed: u64) -> (Network, f64) {
    match build {
        Build::Joined => joined_network(n, seed),
        Build::Filled => filled_network(n, seed),
    }
}

/// Fills every node's routing table from the network's global identifier set: for each
/// bucket of each node, all the nodes that fall in it when there are at most k of them, else
/// k drawn at random (seeded by `seed`), inserted in random order through
/// [`Node::add_contact`](muttr_node::kad::Node::add_contact) at the network's current time.
///
/// The identifiers are sorted once; the nodes in bucket `b` of node `x` share `x`'s bits
/// above `b` and differ from it at bit `b`, so they form one contiguous range of the sorted
/// set, found by binary search. Cost: O(n · 160 · log n) searches plus the insertions.
///
/// # Panics
/// If a table refuses a contact (a bucket offered more than k, or its own identifier): a bug
/// here, not a property of the network.
pub fn fill_tables(net: &mut Network, seed: u64) {
    let mut sorted: Vec<([u8; ID_LEN], usize)> = net
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| (node.local().node_id.0, i))
        .collect();
    sorted.sort_unstable();
    let contacts: Vec<_> = net.nodes.iter().map(|node| node.local()).collect();
    let now = net.now;
    let mut r = rng(seed ^ 0xf111);
    let mut picked: Vec<usize> = Vec::new();
    for (i, node) in net.nodes.iter_mut().enumerate() {
        let x = node.local().node_id.0;
        let k = node.config().k;
        picked.clear();
        for b in 0..ID_BITS {
            let (lo, hi) = bucket_bounds(&x, b);
            let start = sorted.partition_point(|(id, _)| *id < lo);
            let end = sorted.partition_point(|(id, _)| *id <= hi);
            let members = &sorted[start..end];
            if members.len() <= k {
                picked.extend(members.iter().map(|(_, j)| *j));
            } else {
                picked.extend(
                    rand::seq::index::sample(&mut r, members.len(), k)
                        .into_iter()
                        .map(|m| members[m].1),
                );
            }
        }
        picked.shuffle(&mut r);
        for &j in &picked {
            let update = node.add_contact(now, contacts[j]);
            assert_eq!(update, Update::Inserted, "node {i} refused contact {j}");
        }
    }
}

/// The smallest and largest identifiers in bucket `b` of `x` (bits counted from the least
/// significant end, as in [`NodeId::bucket_index`]): `x`'s bits above `b`, bit `b` flipped,
/// then all zeros or all ones.
fn bucket_bounds(x: &[u8; ID_LEN], b: usize) -> ([u8; ID_LEN], [u8; ID_LEN]) {
    let byte = ID_LEN - 1 - b / 8;
    let bit = b % 8;
    let below = (1u8 << bit) - 1;
    let mut lo = *x;
    lo[byte] ^= 1 << bit;
    let mut hi = lo;
    lo[byte] &= !below;
    hi[byte] |= below;
    for j in byte + 1..ID_LEN {
        lo[j] = 0;
        hi[j] = 0xff;
    }
    (lo, hi)
}

/// The process's resident memory, in bytes (Linux `/proc/self/status`; None elsewhere).
pub fn rss_bytes() -> Option<u64> {
    proc_status_kib("VmRSS:").map(|k| k * 1024)
}

/// The process's peak resident memory, in bytes (Linux `/proc/self/status`; None elsewhere).
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kib("VmHWM:").map(|k| k * 1024)
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

/// Mean routing-table size of the network's nodes.
pub fn mean_table_size(net: &Network) -> f64 {
    let total: usize = net.nodes.iter().map(|n| n.table().len()).sum();
    total as f64 / net.nodes.len().max(1) as f64
}

/// Runs one FIND_NODE of `target` from node `from`; returns (hops, requests).
///
/// # Panics
/// If the lookup does not complete with a `Found` result (a bug in the core).
pub fn find_node(net: &mut Network, from: usize, target: NodeId) -> (u32, u32) {
    match net.run_command(from, Command::FindNode(target)) {
        CommandResult::Found(r) => (r.hops, r.messages),
        other => panic!("FIND_NODE ended with {other:?}"),
    }
}

/// Measures `lookups` FIND_NODEs of random identifiers from random nodes, and `lookups`
/// FIND_VALUEs of values published by random nodes (at most 50 distinct values, each
/// looked up from other random nodes).
pub fn measure(net: &mut Network, lookups: usize, seed: u64) -> (Summary, Summary) {
    let mut r = rng(seed);
    let n = net.nodes.len();
    let mut samples = Vec::with_capacity(lookups);
    let pings = pings_answered(net);
    for _ in 0..lookups {
        let from = r.random_range(0..n);
        let target = NodeId::random(&mut r);
        let (t, d) = (Instant::now(), net.delivered);
        let (hops, messages) = find_node(net, from, target);
        let secs = t.elapsed().as_secs_f64();
        samples.push((hops, messages, secs, true, net.delivered - d));
    }
    let mut find_node = summarize(&samples);
    find_node.pings_mean = (pings_answered(net) - pings) as f64 / lookups.max(1) as f64;

    let values: Vec<String> = (0..lookups.clamp(1, 50))
        .map(|i| value::to_hex(&armored_message(2048, seed ^ (i as u64 + 1))))
        .collect();
    for v in &values {
        let from = r.random_range(0..n);
        match net.run_command(from, Command::Publish(v.clone())) {
            CommandResult::Published(_) => {}
            other => panic!("publish ended with {other:?}"),
        }
    }
    let mut samples = Vec::with_capacity(lookups);
    let pings = pings_answered(net);
    for i in 0..lookups {
        let v = &values[i % values.len()];
        let key = value::key_of(v);
        let from = r.random_range(0..n);
        let (t, d) = (Instant::now(), net.delivered);
        match net.run_command(from, Command::FindValue(key)) {
            CommandResult::Found(res) => samples.push((
                res.hops,
                res.messages,
                t.elapsed().as_secs_f64(),
                res.value.as_deref() == Some(v.as_str()),
                net.delivered - d,
            )),
            other => panic!("FIND_VALUE ended with {other:?}"),
        }
    }
    let mut find_value = summarize(&samples);
    find_value.pings_mean = (pings_answered(net) - pings) as f64 / lookups.max(1) as f64;
    (find_node, find_value)
}

/// PINGs answered so far by all the nodes of the network.
pub fn pings_answered(net: &Network) -> u64 {
    net.nodes
        .iter()
        .map(|n| n.stats().requests.get("PING").copied().unwrap_or(0))
        .sum()
}

/// Builds a network of `n` nodes the given way and measures `lookups` lookups of each kind
/// on it.
pub fn stats_for(build: Build, n: usize, lookups: usize, seed: u64) -> LookupStats {
    let (mut net, stats) = measured_network(build, n, seed);
    let (find_node, find_value) = measure(&mut net, lookups, seed ^ 0x5eed);
    LookupStats {
        find_node,
        find_value,
        ..stats
    }
}

/// Builds a network of `n` nodes the given way; returns it with its build figures (lookup
/// summaries left empty).
pub fn measured_network(build: Build, n: usize, seed: u64) -> (Network, LookupStats) {
    let before = rss_bytes();
    let (net, setup_secs) = network(build, n, seed);
    let setup_rss_mib = match (before, rss_bytes()) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / (1024.0 * 1024.0)),
        _ => None,
    };
    let stats = LookupStats {
        nodes: n,
        build,
        setup_secs,
        setup_rss_mib,
        mean_table_size: mean_table_size(&net),
        ..LookupStats::default()
    };
    (net, stats)
}

/// (hops, requests, seconds, found, datagrams delivered) samples to a summary.
fn summarize(samples: &[(u32, u32, f64, bool, u64)]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    let mut hops: Vec<u32> = samples.iter().map(|s| s.0).collect();
    let mut msgs: Vec<u32> = samples.iter().map(|s| s.1).collect();
    let mut wall: Vec<f64> = samples.iter().map(|s| s.2).collect();
    hops.sort_unstable();
    msgs.sort_unstable();
    wall.sort_unstable_by(f64::total_cmp);
    let mean = |v: &[u32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    Summary {
        count: samples.len(),
        found: samples.iter().filter(|s| s.3).count(),
        hops_median: percentile(&hops, 0.5),
        hops_mean: mean(&hops),
        hops_p90: percentile(&hops, 0.9),
        hops_p99: percentile(&hops, 0.99),
        hops_max: *hops.last().unwrap_or(&0),
        messages_median: percentile(&msgs, 0.5),
        messages_mean: mean(&msgs),
        messages_p90: percentile(&msgs, 0.9),
        messages_p99: percentile(&msgs, 0.99),
        messages_max: *msgs.last().unwrap_or(&0),
        wall_us_median: percentile(&wall, 0.5) * 1e6,
        datagrams_mean: samples.iter().map(|s| s.4 as f64).sum::<f64>() / samples.len() as f64,
        pings_mean: 0.0,
        wall_us_mean: samples.iter().map(|s| s.2).sum::<f64>() / samples.len() as f64 * 1e6,
    }
}

/// The `q`-percentile of sorted values, 0 for none (the project's one definition,
/// [`muttr_stats::percentile`]: nearest rank; the median of an even count is the mean of the
/// two middle values).
pub fn percentile<T: muttr_stats::Sample>(sorted: &[T], q: f64) -> f64 {
    muttr_stats::percentile(sorted, q).unwrap_or(0.0)
}

/// Where the lookup statistics are saved: `lookup-stats.json` in criterion's directory.
pub fn stats_path() -> PathBuf {
    crate::criterion_dir().join("lookup-stats.json")
}

/// Saves the statistics (as JSON) for the report.
pub fn save(stats: &[LookupStats]) -> std::io::Result<()> {
    let path = stats_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(stats).map_err(std::io::Error::other)?;
    std::fs::write(path, text)
}

/// Saves `new` over the saved statistics: entries of the same network size and build are
/// replaced, others kept (so a separate run, see the `lookup-stats` binary, survives the next
/// `cargo bench` unless that measures the same thing).
pub fn merge_save(new: &[LookupStats]) -> std::io::Result<()> {
    let mut all = load().unwrap_or_default();
    all.retain(|s| new.iter().all(|n| (n.nodes, n.build) != (s.nodes, s.build)));
    all.extend(new.iter().cloned());
    all.sort_by_key(|s| (s.nodes, s.build == Build::Filled));
    save(&all)
}

/// Loads saved statistics, if any.
pub fn load() -> Option<Vec<LookupStats>> {
    let text = std::fs::read_to_string(stats_path()).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[1, 2, 3, 4], 0.5), 2.5);
        assert_eq!(percentile(&[1, 2, 3], 0.5), 2.0);
        assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), 9.0);
        assert_eq!(percentile::<u32>(&[], 0.9), 0.0);
    }

    #[test]
    fn small_network_lookups_find_values_in_few_hops() {
        let s = stats_for(Build::Joined, 64, 10, 1);
        assert_eq!(s.find_node.count, 10);
        assert_eq!(s.find_value.count, 10);
        assert_eq!(s.find_value.found, 10, "every published value is found");
        assert!(s.find_node.hops_max <= 6, "{s:?}");
        assert!(s.find_node.messages_mean >= 1.0, "{s:?}");
        assert!(s.mean_table_size > 10.0, "{s:?}");
    }

    #[test]
    fn bucket_bounds_enclose_exactly_the_bucket() {
        let mut r = rng(9);
        for _ in 0..200 {
            let x = NodeId::random(&mut r);
            let b = r.random_range(0..ID_BITS);
            let (lo, hi) = bucket_bounds(&x.0, b);
            assert_eq!(x.bucket_index(&NodeId(lo)), Some(b));
            assert_eq!(x.bucket_index(&NodeId(hi)), Some(b));
            let inside = x.random_in_bucket(b, &mut r);
            assert!(lo <= inside.0 && inside.0 <= hi);
        }
    }

    #[test]
    fn filled_tables_hold_min_k_population_per_bucket() {
        let n = 300;
        let (net, _) = filled_network(n, 4);
        let ids: Vec<NodeId> = net.nodes.iter().map(|x| x.local().node_id).collect();
        for node in &net.nodes {
            let t = node.table();
            t.check_invariants().unwrap();
            let k = node.config().k;
            let mut population = [0usize; ID_BITS];
            for id in &ids {
                if let Some(b) = t.local().bucket_index(id) {
                    population[b] += 1;
                }
            }
            for (b, &p) in population.iter().enumerate() {
                assert_eq!(t.bucket_len(b), p.min(k), "bucket {b}");
            }
            assert_eq!(t.replacements_len(), 0);
            // Every contact is a node of the network, at its own address.
            for e in t.iter() {
                assert_eq!(
                    NodeId::from_addr(e.contact.socket_addr()),
                    e.contact.node_id
                );
            }
        }
        // No datagram is due: filling sends nothing.
        assert_eq!(net.delivered, 0);
    }

    #[test]
    fn filled_network_lookups_work_and_are_deterministic() {
        let a = stats_for(Build::Filled, 400, 20, 5);
        assert_eq!(a.find_value.found, 20, "every published value is found");
        assert!(a.find_node.hops_max <= 6, "{a:?}");
        assert!(a.find_node.messages_median >= 3.0, "{a:?}");
        let b = stats_for(Build::Filled, 400, 20, 5);
        assert_eq!(
            (
                a.mean_table_size,
                a.find_node.hops_mean,
                a.find_node.messages_mean
            ),
            (
                b.mean_table_size,
                b.find_node.hops_mean,
                b.find_node.messages_mean
            )
        );
        assert_eq!(a.find_value.messages_mean, b.find_value.messages_mean);
    }
}

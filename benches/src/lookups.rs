//! Lookups on the in-process network of sans-IO nodes: hops and messages per lookup.
//!
//! A [`Network`] of n nodes (virtual time, 20 ms one-way latency, no loss) is joined node by
//! node through the protocol itself ([`Network::bootstrap_all`]: each newcomer looks up its
//! own identifier and refreshes its buckets). Then random nodes look up random identifiers
//! (FIND_NODE) and values that random other nodes published (FIND_VALUE). Hops and requests
//! per lookup come from the core's own [`LookupResult`](muttr_node::kad::lookup::LookupResult);
//! wall time is measured around [`Network::run_command`], so it includes encoding, decoding
//! and routing every datagram of the lookup.

use std::path::PathBuf;
use std::time::Instant;

use muttr_node::id::NodeId;
use muttr_node::kad::testnet::Network;
use muttr_node::kad::{Command, CommandResult};
use muttr_node::value;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::inputs::{armored_message, rng};

/// One-way latency of the benchmark network, in virtual milliseconds.
pub const LATENCY_MS: u64 = 20;

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
    /// Most hops seen.
    pub hops_max: u32,
    /// Median requests sent per lookup.
    pub messages_median: f64,
    /// Mean requests sent per lookup.
    pub messages_mean: f64,
    /// 90th percentile of requests per lookup.
    pub messages_p90: f64,
    /// Mean wall time per lookup, in microseconds.
    pub wall_us_mean: f64,
}

/// The lookup figures of one network size.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LookupStats {
    /// Nodes in the network.
    pub nodes: usize,
    /// Wall time to create the network and join every node, in seconds.
    pub setup_secs: f64,
    /// Mean routing-table size after the joins.
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
    for _ in 0..lookups {
        let from = r.random_range(0..n);
        let target = NodeId::random(&mut r);
        let t = Instant::now();
        let (hops, messages) = find_node(net, from, target);
        samples.push((hops, messages, t.elapsed().as_secs_f64(), true));
    }
    let find_node = summarize(&samples);

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
    for i in 0..lookups {
        let v = &values[i % values.len()];
        let key = value::key_of(v);
        let from = r.random_range(0..n);
        let t = Instant::now();
        match net.run_command(from, Command::FindValue(key)) {
            CommandResult::Found(res) => samples.push((
                res.hops,
                res.messages,
                t.elapsed().as_secs_f64(),
                res.value.as_deref() == Some(v.as_str()),
            )),
            other => panic!("FIND_VALUE ended with {other:?}"),
        }
    }
    (find_node, summarize(&samples))
}

/// Joins a network of `n` nodes and measures `lookups` lookups of each kind on it.
pub fn stats_for(n: usize, lookups: usize, seed: u64) -> LookupStats {
    let (mut net, setup_secs) = joined_network(n, seed);
    let mean_table_size = mean_table_size(&net);
    let (find_node, find_value) = measure(&mut net, lookups, seed ^ 0x5eed);
    LookupStats {
        nodes: n,
        setup_secs,
        mean_table_size,
        find_node,
        find_value,
    }
}

/// (hops, requests, seconds, found) samples to a summary.
fn summarize(samples: &[(u32, u32, f64, bool)]) -> Summary {
    if samples.is_empty() {
        return Summary::default();
    }
    let mut hops: Vec<u32> = samples.iter().map(|s| s.0).collect();
    let mut msgs: Vec<u32> = samples.iter().map(|s| s.1).collect();
    hops.sort_unstable();
    msgs.sort_unstable();
    let mean = |v: &[u32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    Summary {
        count: samples.len(),
        found: samples.iter().filter(|s| s.3).count(),
        hops_median: percentile(&hops, 0.5),
        hops_mean: mean(&hops),
        hops_p90: percentile(&hops, 0.9),
        hops_max: *hops.last().unwrap_or(&0),
        messages_median: percentile(&msgs, 0.5),
        messages_mean: mean(&msgs),
        messages_p90: percentile(&msgs, 0.9),
        wall_us_mean: samples.iter().map(|s| s.2).sum::<f64>() / samples.len() as f64 * 1e6,
    }
}

/// The `q`-quantile of sorted values (nearest rank; the median of an even count is the mean
/// of the two middle values).
pub fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    if q == 0.5 && sorted.len().is_multiple_of(2) {
        let m = sorted.len() / 2;
        return (sorted[m - 1] as f64 + sorted[m] as f64) / 2.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64
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

/// Saves `new` over the saved statistics: entries of the same network sizes are replaced,
/// others kept (so a separate run of a large size, see the `lookup-stats` binary, survives
/// the next `cargo bench`).
pub fn merge_save(new: &[LookupStats]) -> std::io::Result<()> {
    let mut all = load().unwrap_or_default();
    all.retain(|s| new.iter().all(|n| n.nodes != s.nodes));
    all.extend(new.iter().cloned());
    all.sort_by_key(|s| s.nodes);
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
        assert_eq!(percentile(&[], 0.9), 0.0);
    }

    #[test]
    fn small_network_lookups_find_values_in_few_hops() {
        let s = stats_for(64, 10, 1);
        assert_eq!(s.find_node.count, 10);
        assert_eq!(s.find_value.count, 10);
        assert_eq!(s.find_value.found, 10, "every published value is found");
        assert!(s.find_node.hops_max <= 6, "{s:?}");
        assert!(s.find_node.messages_mean >= 1.0, "{s:?}");
        assert!(s.mean_table_size > 10.0, "{s:?}");
    }
}

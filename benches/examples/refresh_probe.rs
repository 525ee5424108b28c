//! Shows why lookup wall times on a freshly joined network grow over time: per FIND_NODE
//! command, the datagrams delivered and the lookups started network-wide, in rounds of 300.
//!
//! `cargo run --release -p muttr-benches --example refresh_probe -- 10000`
//!
//! Joining 10⁴ nodes one after the other takes about 53 minutes of virtual time; once the
//! virtual clock passes an hour, nodes woken by a lookup's timers run their due housekeeping,
//! i.e. bucket refresh lookups (P-K2), and each command's loop also delivers their datagrams.

use muttr_benches::inputs::rng;
use muttr_benches::lookups::{find_node, joined_network};
use muttr_node::id::NodeId;
use muttr_node::kad::testnet::{Network, T0};
use rand::Rng;

fn lookups_started(net: &Network) -> u64 {
    net.nodes.iter().map(|x| x.stats().lookups_started).sum()
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 3_000,
        Some(Ok(n)) if n >= 2 => n,
        Some(_) => {
            eprintln!("usage: refresh_probe [NODES >= 2]");
            std::process::exit(2);
        }
    };
    let (mut net, secs) = joined_network(n, 1);
    println!(
        "{n} nodes joined in {secs:.1} s; virtual clock at +{} s",
        (net.now - T0) / 1000
    );
    let mut r = rng(5);
    for round in 0..6 {
        let (d0, l0, t0) = (
            net.delivered,
            lookups_started(&net),
            std::time::Instant::now(),
        );
        for _ in 0..300 {
            let from = r.random_range(0..n);
            find_node(&mut net, from, NodeId::random(&mut r));
        }
        println!(
            "round {round}: per FIND_NODE: {:.1} datagrams, {:.2} lookups started, {:.0} µs; \
             virtual clock at +{} s",
            (net.delivered - d0) as f64 / 300.0,
            (lookups_started(&net) - l0) as f64 / 300.0,
            t0.elapsed().as_micros() as f64 / 300.0,
            (net.now - T0) / 1000
        );
    }
}

//! How mutual the routing tables of a joined and of a filled network are: the fraction of
//! contacts B in A's table such that A is also in B's table.
//!
//! `cargo run --release -p muttr-benches --example mutual_probe -- 10000`
//!
//! Joining leaves knowledge more often mutual (nodes hold those they exchanged messages
//! with); filled tables are drawn independently per node. Measured (seed 1): 67 % joined
//! against 42 % filled at 10³ nodes, 48 % against 29 % at 10⁴. This explains why chains of eviction
//! PINGs (P-K3), and so datagrams and wall time per lookup, are far longer on filled
//! networks, while a lookup's own hops and requests agree (see `muttr_benches::lookups`).

use muttr_benches::lookups::{Build, mean_table_size, network};
use muttr_node::kad::testnet::Network;

fn mutual_fraction(net: &Network) -> f64 {
    let index: std::collections::HashMap<_, _> = net
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.local().node_id, i))
        .collect();
    let (mut total, mut mutual) = (0u64, 0u64);
    for a in &net.nodes {
        for e in a.table().iter() {
            total += 1;
            if let Some(&b) = index.get(&e.contact.node_id)
                && net.nodes[b].table().contains(&a.local().node_id)
            {
                mutual += 1;
            }
        }
    }
    mutual as f64 / total.max(1) as f64
}

fn main() {
    let n: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 1_000,
        Some(Ok(n)) if n >= 2 => n,
        Some(_) => {
            eprintln!("usage: mutual_probe [NODES >= 2]");
            std::process::exit(2);
        }
    };
    for build in [Build::Filled, Build::Joined] {
        let (net, secs) = network(build, n, 1);
        println!(
            "{n} nodes, {} in {secs:.1} s: mean table {:.1}, mutual {:.1} %",
            build.name(),
            mean_table_size(&net),
            100.0 * mutual_fraction(&net)
        );
    }
}

//! Lookups on the in-process network of sans-IO nodes (virtual time, no sockets).
//!
//! Networks (see `muttr_benches::lookups` for the two ways of building them):
//! - full run: 10⁵ nodes with directly filled tables (built first, so the growth of resident
//!   memory it reports is its own), then 10³ and 10⁴ nodes both filled and joined through
//!   the protocol, to compare the two;
//! - test mode (`-- --test`): 200 nodes, filled and joined, 10 lookups of each kind. No
//!   large network is ever built in test mode.
//!
//! On each network: records hops and requests per lookup over 500 FIND_NODE and 500
//! FIND_VALUE lookups (saved for the report, see `muttr_benches::lookups`), then times single
//! lookups with criterion (`lookup/find_node_{joined,filled}/N`,
//! `lookup/find_value_{joined,filled}/N`). Wall time covers everything the core does for the
//! lookup: encoding and decoding every datagram, routing-table updates, and the network's
//! queue.

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use muttr_benches::inputs::{armored_message, rng};
use muttr_benches::lookups::{self, Build, find_node, measured_network, peak_rss_bytes};
use muttr_benches::{pretty_size, test_mode};
use muttr_node::id::NodeId;
use muttr_node::kad::{Command, CommandResult};
use muttr_node::value;
use rand::Rng;

fn lookup(c: &mut Criterion) {
    let (plan, samples): (Vec<(Build, usize)>, usize) = if test_mode() {
        (vec![(Build::Filled, 200), (Build::Joined, 200)], 10)
    } else {
        (
            vec![
                (Build::Filled, 100_000),
                (Build::Filled, 1_000),
                (Build::Joined, 1_000),
                (Build::Filled, 10_000),
                (Build::Joined, 10_000),
            ],
            500,
        )
    };
    let mut all = Vec::new();
    for (build, n) in plan {
        eprintln!("lookup: building {} network of {n} nodes...", build.name());
        let (mut net, stats) = measured_network(build, n, 1);
        eprintln!(
            "lookup: built in {:.1} s, resident memory +{:.0} MiB (process peak {:.0} MiB)",
            stats.setup_secs,
            stats.setup_rss_mib.unwrap_or(f64::NAN),
            peak_rss_bytes().map_or(f64::NAN, |b| b as f64 / 1048576.0),
        );
        let (find_node_s, find_value_s) = lookups::measure(&mut net, samples, 2);
        let stats = lookups::LookupStats {
            find_node: find_node_s,
            find_value: find_value_s,
            ..stats
        };
        eprintln!("{stats:#?}");
        all.push(stats);

        let size = pretty_size(n);
        let mut g = c.benchmark_group("lookup");
        let mut r = rng(3);
        g.bench_function(
            BenchmarkId::new(format!("find_node_{}", build.name()), &size),
            |b| {
                b.iter(|| {
                    let from = r.random_range(0..n);
                    let target = NodeId::random(&mut r);
                    black_box(find_node(&mut net, from, target))
                })
            },
        );
        let v = value::to_hex(&armored_message(2048, 77));
        let key = value::key_of(&v);
        let publisher = r.random_range(0..n);
        assert!(matches!(
            net.run_command(publisher, Command::Publish(v)),
            CommandResult::Published(_)
        ));
        g.bench_function(
            BenchmarkId::new(format!("find_value_{}", build.name()), &size),
            |b| {
                b.iter(|| {
                    let from = r.random_range(0..n);
                    match net.run_command(from, Command::FindValue(key)) {
                        CommandResult::Found(res) => black_box((res.hops, res.messages)),
                        other => panic!("FIND_VALUE ended with {other:?}"),
                    }
                })
            },
        );
        g.finish();
    }
    if !test_mode()
        && let Err(e) = lookups::merge_save(&all)
    {
        eprintln!("could not save the lookup statistics: {e}");
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = lookup
}
criterion_main!(benches);

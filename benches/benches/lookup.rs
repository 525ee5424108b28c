//! Lookups on the in-process network of sans-IO nodes (virtual time, no sockets).
//!
//! For 10³ and 10⁴ nodes (200 in test mode): joins the network through the protocol, records
//! hops and requests per lookup over 200 FIND_NODE and 200 FIND_VALUE lookups (saved for the
//! report, see `muttr_benches::lookups`), then times single lookups with criterion
//! (`lookup/find_node/N`, `lookup/find_value/N`). Wall time covers everything the core does
//! for the lookup: encoding and decoding every datagram, routing-table updates, and the
//! network's queue.
//!
//! 10⁵ nodes take far too long to join for this run (an attempt on the shared 2-core machine
//! was stopped unfinished after 24 CPU-minutes and 4.3 GiB); that size runs apart, through the
//! `lookup-stats` binary.

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use muttr_benches::inputs::{armored_message, rng};
use muttr_benches::lookups::{self, LookupStats, find_node, joined_network};
use muttr_benches::{pretty_size, test_mode};
use muttr_node::id::NodeId;
use muttr_node::kad::{Command, CommandResult};
use muttr_node::value;
use rand::Rng;

fn lookup(c: &mut Criterion) {
    let (sizes, samples): (Vec<usize>, usize) = if test_mode() {
        (vec![200], 10)
    } else {
        (vec![1_000, 10_000], 200)
    };
    let mut all = Vec::new();
    for n in sizes {
        let (mut net, setup_secs) = joined_network(n, 1);
        let mean_table_size = lookups::mean_table_size(&net);
        let (find_node_s, find_value_s) = lookups::measure(&mut net, samples, 2);
        let stats = LookupStats {
            nodes: n,
            setup_secs,
            mean_table_size,
            find_node: find_node_s,
            find_value: find_value_s,
        };
        eprintln!("{stats:#?}");
        all.push(stats);

        let size = pretty_size(n);
        let mut g = c.benchmark_group("lookup");
        let mut r = rng(3);
        g.bench_function(BenchmarkId::new("find_node", &size), |b| {
            b.iter(|| {
                let from = r.random_range(0..n);
                let target = NodeId::random(&mut r);
                black_box(find_node(&mut net, from, target))
            })
        });
        let v = value::to_hex(&armored_message(2048, 77));
        let key = value::key_of(&v);
        let publisher = r.random_range(0..n);
        assert!(matches!(
            net.run_command(publisher, Command::Publish(v)),
            CommandResult::Published(_)
        ));
        g.bench_function(BenchmarkId::new("find_value", &size), |b| {
            b.iter(|| {
                let from = r.random_range(0..n);
                match net.run_command(from, Command::FindValue(key)) {
                    CommandResult::Found(res) => black_box((res.hops, res.messages)),
                    other => panic!("FIND_VALUE ended with {other:?}"),
                }
            })
        });
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

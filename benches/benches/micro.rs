//! Micro benchmarks: the XOR metric, identifier text, and the wire codec of every message type.

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use muttr_benches::inputs::{random_ids, sample_messages};
use muttr_node::wire;

fn metric(c: &mut Criterion) {
    let ids = random_ids(1024, 1);
    let mut g = c.benchmark_group("micro");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    let mut next = || {
        i = (i + 1) & 1023;
        (&ids[i], &ids[(i * 7 + 3) & 1023])
    };
    g.bench_function("xor_distance", |b| {
        b.iter(|| {
            let (x, y) = next();
            black_box(black_box(x).distance(black_box(y)))
        })
    });
    let dists: Vec<_> = ids.iter().map(|x| x.distance(&ids[0])).collect();
    let mut j = 0usize;
    g.bench_function("distance_compare", |b| {
        b.iter(|| {
            j = (j + 1) & 1023;
            black_box(black_box(&dists[j]) < black_box(&dists[(j * 5 + 1) & 1023]))
        })
    });
    let mut l = 0usize;
    g.bench_function("bucket_index", |b| {
        b.iter(|| {
            l = (l + 1) & 1023;
            black_box(black_box(&ids[0]).bucket_index(black_box(&ids[l])))
        })
    });
    let hexes: Vec<String> = ids.iter().map(|x| x.to_hex()).collect();
    let mut h = 0usize;
    g.bench_function("node_id_from_hex", |b| {
        b.iter(|| {
            h = (h + 1) & 1023;
            black_box(muttr_node::id::NodeId::from_hex(black_box(&hexes[h])))
        })
    });
    g.bench_function("node_id_to_hex", |b| {
        b.iter(|| {
            h = (h + 1) & 1023;
            black_box(black_box(&ids[h]).to_hex())
        })
    });
    g.finish();
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    for (name, msg) in sample_messages() {
        let bytes = wire::encode(&msg);
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode", name), &msg, |b, m| {
            b.iter(|| black_box(wire::encode(black_box(m))))
        });
        g.bench_with_input(BenchmarkId::new("decode", name), &bytes, |b, d| {
            b.iter(|| black_box(wire::decode(black_box(d))))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(700))
}

criterion_group! {
    name = benches;
    config = config();
    targets = metric, codec
}
criterion_main!(benches);

//! Global top-k: the k closest of N identifiers to a target, as a simulator's oracle needs.
//!
//! `closest_k` is `muttr_node::id::closest_k` (a bounded max-heap of k, one pass);
//! `sort_all` copies the N identifiers and sorts them all by distance, then keeps k;
//! `select_nth` (for reference) copies them and uses `select_nth_unstable_by_key`, then sorts
//! the k. N is 10⁴, 10⁵, 10⁶ (capped in test mode, see `muttr_benches::sizes`).

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use muttr_benches::inputs::random_ids;
use muttr_benches::{pretty_size, sizes};
use muttr_node::id::{NodeId, closest_k};

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

fn sort_all(target: &NodeId, ids: &[NodeId], k: usize) -> Vec<NodeId> {
    let mut all = ids.to_vec();
    all.sort_unstable_by_key(|x| x.distance(target));
    all.truncate(k);
    all
}

fn select_nth(target: &NodeId, ids: &[NodeId], k: usize) -> Vec<NodeId> {
    let mut all = ids.to_vec();
    if k < all.len() {
        all.select_nth_unstable_by_key(k, |x| x.distance(target));
        all.truncate(k);
    }
    all.sort_unstable_by_key(|x| x.distance(target));
    all
}

fn topk(c: &mut Criterion) {
    let targets = random_ids(64, 9);
    for n in sizes(&SIZES) {
        let ids = random_ids(n, 8);
        // The three must agree before any of them is timed.
        assert_eq!(
            closest_k(&targets[0], &ids, 20),
            sort_all(&targets[0], &ids, 20)
        );
        assert_eq!(
            select_nth(&targets[0], &ids, 20),
            sort_all(&targets[0], &ids, 20)
        );
        let size = pretty_size(n);
        let mut g = c.benchmark_group("topk/k=20");
        if n >= 100_000 {
            g.sample_size(10);
        }
        let mut i = 0usize;
        g.bench_function(BenchmarkId::new("closest_k", &size), |b| {
            b.iter(|| {
                i = (i + 1) % targets.len();
                black_box(closest_k(black_box(&targets[i]), &ids, 20))
            })
        });
        g.bench_function(BenchmarkId::new("sort_all", &size), |b| {
            b.iter(|| {
                i = (i + 1) % targets.len();
                black_box(sort_all(black_box(&targets[i]), &ids, 20))
            })
        });
        g.bench_function(BenchmarkId::new("select_nth", &size), |b| {
            b.iter(|| {
                i = (i + 1) % targets.len();
                black_box(select_nth(black_box(&targets[i]), &ids, 20))
            })
        });
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = topk
}
criterion_main!(benches);

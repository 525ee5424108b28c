//! Measures hops and messages per lookup on networks of the sizes given as arguments
//! (default 100000) and merges them into the statistics the report reads.
//!
//! `cargo bench` measures 10³ and 10⁴ nodes; a 10⁵-node network takes far longer to join (an
//! attempt on the shared 2-core machine was stopped unfinished after 24 CPU-minutes at
//! 4.3 GiB), so it runs apart:
//! `cargo run --release -p muttr-benches --bin lookup-stats -- 100000`.

use muttr_benches::lookups::{merge_save, stats_for};

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("network sizes are numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000]
    } else {
        sizes
    };
    for n in sizes {
        eprintln!("joining {n} nodes...");
        let s = stats_for(n, 200, 1);
        eprintln!("{s:#?}");
        if let Err(e) = merge_save(std::slice::from_ref(&s)) {
            eprintln!("could not save the statistics: {e}");
            std::process::exit(1);
        }
    }
}

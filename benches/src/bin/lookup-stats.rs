//! Measures hops and messages per lookup on networks of the sizes given as arguments and
//! merges them into the statistics the report reads, apart from `cargo bench`.
//!
//! `cargo run --release -p muttr-benches --bin lookup-stats -- [--joined|--filled] [--lookups N] SIZES...`
//!
//! `--filled` (the default) fills the routing tables directly from the global identifier set;
//! `--joined` joins the nodes one by one through the protocol (at 10⁵ nodes an attempt had not
//! finished after 79 minutes, see `muttr_benches::lookups`). Default size: 100000; default
//! lookups: 500 of each kind.

use muttr_benches::lookups::{Build, merge_save, peak_rss_bytes, stats_for};

fn usage() -> ! {
    eprintln!("usage: lookup-stats [--joined|--filled] [--lookups N] [SIZES...]");
    std::process::exit(2);
}

fn main() {
    let mut build = Build::Filled;
    let mut lookups = 500;
    let mut sizes = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--joined" => build = Build::Joined,
            "--filled" => build = Build::Filled,
            "--lookups" => {
                lookups = match args.next().map(|n| n.parse()) {
                    Some(Ok(n)) if n > 0 => n,
                    _ => usage(),
                }
            }
            n => match n.parse::<usize>() {
                Ok(n) if n >= 2 => sizes.push(n),
                _ => usage(),
            },
        }
    }
    if sizes.is_empty() {
        sizes.push(100_000);
    }
    for n in sizes {
        eprintln!("building a {} network of {n} nodes...", build.name());
        let s = stats_for(build, n, lookups, 1);
        eprintln!("{s:#?}");
        if let Some(peak) = peak_rss_bytes() {
            eprintln!(
                "process peak resident memory: {:.0} MiB",
                peak as f64 / 1048576.0
            );
        }
        if let Err(e) = merge_save(std::slice::from_ref(&s)) {
            eprintln!("could not save the statistics: {e}");
            std::process::exit(1);
        }
    }
}

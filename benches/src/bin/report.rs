//! Writes `benches/RESULTS.md` from the output of the last `cargo bench -p muttr-benches`
//! (criterion's `estimates.json` files, the table sizes and the lookup statistics).
//!
//! Usage: `cargo run -p muttr-benches --bin report [-- [OUTPUT.md] [--note TEXT]]`; a note
//! (e.g. on the machine's load during the run) goes under the machine description.

use muttr_benches::report::{Extras, collect, machine, render, table_sizes};
use muttr_benches::{criterion_dir, lookups, workspace_root};

fn main() {
    let dir = criterion_dir();
    let results = collect(&dir);
    if results.is_empty() {
        eprintln!(
            "no criterion results under {}: run `cargo bench -p muttr-benches` first",
            dir.display()
        );
        std::process::exit(1);
    }
    let mut out = None;
    let mut notes = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--note" {
            let Some(text) = args.next() else {
                eprintln!("--note needs a text");
                std::process::exit(2);
            };
            notes.push_str(&format!("\n{text}\n"));
        } else {
            out = Some(std::path::PathBuf::from(a));
        }
    }
    let extras = Extras {
        table_sizes: table_sizes(&dir),
        lookups: lookups::load().unwrap_or_default(),
        machine: machine() + &notes,
    };
    let out = out.unwrap_or_else(|| workspace_root().join("benches").join("RESULTS.md"));
    if let Err(e) = std::fs::write(&out, render(&results, &extras)) {
        eprintln!("could not write {}: {e}", out.display());
        std::process::exit(1);
    }
    println!(
        "{} benchmarks summarised in {}",
        results.len(),
        out.display()
    );
}

//! Shared inputs and helpers of the Muttr benchmarks (crate `muttr-benches`).
//!
//! The benchmarks themselves live in `benches/benches/*.rs` (criterion, `harness = false`); this
//! library holds what they share and what the `report` binary needs, so that it is compiled,
//! documented and unit-tested like any other code.
//!
//! Module map:
//! - [`inputs`]: deterministic inputs — random identifiers, contacts, one realistic message
//!   of each of the eight wire types (with a 2 KiB armored message), routing tables built
//!   from a network of N identifiers.
//! - [`lookups`]: lookups on the in-process network of sans-IO nodes
//!   ([`muttr_node::kad::testnet::Network`]), joined through the protocol or with routing
//!   tables filled directly from the global identifier set: hops and messages per lookup,
//!   saved as JSON next to criterion's output.
//! - [`proto`]: a prototype of a faster closest-k over a routing table's contents, measured
//!   next to the node's (a proposal; the node does not use it).
//! - [`report`]: reads criterion's `estimates.json` files and the lookup statistics, and
//!   writes `benches/RESULTS.md`.
//!
//! # Test mode
//! `cargo bench -- --test` runs every benchmark once, to prove it still works. The large inputs
//! (networks of 10⁵–10⁶ identifiers, lookup networks of 10³–10⁵ nodes) would make that slow, so
//! in test mode ([`test_mode`]) the sizes are capped by [`sizes`] (the lookup networks have 200
//! nodes; a 10⁵-node network is never built) and the benchmark ids name the size actually
//! used.

pub mod inputs;
pub mod lookups;
pub mod proto;
pub mod report;

use std::path::PathBuf;

/// True when the benchmark binary runs in criterion's test mode (`cargo bench -- --test`):
/// every benchmark runs once and nothing is measured.
pub fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// The largest input size used in test mode.
pub const TEST_MODE_MAX: usize = 10_000;

/// The sizes to benchmark: `full` as given, or, in test mode, only those up to
/// [`TEST_MODE_MAX`] (at least the smallest one, capped).
pub fn sizes(full: &[usize]) -> Vec<usize> {
    sizes_for(full, test_mode())
}

/// [`sizes`] with the mode given explicitly.
pub fn sizes_for(full: &[usize], test: bool) -> Vec<usize> {
    if !test {
        return full.to_vec();
    }
    let mut out: Vec<usize> = full
        .iter()
        .copied()
        .filter(|&n| n <= TEST_MODE_MAX)
        .collect();
    if out.is_empty()
        && let Some(&smallest) = full.iter().min()
    {
        out.push(smallest.min(TEST_MODE_MAX));
    }
    out
}

/// Where criterion writes its results: `$CRITERION_HOME`, else `$CARGO_TARGET_DIR/criterion`,
/// else `target/criterion` at the workspace root (criterion's own default under
/// `cargo bench`).
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    workspace_root().join("target").join("criterion")
}

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// "10³"-style name of a power of ten, or the plain number.
pub fn pretty_size(n: usize) -> String {
    const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let mut p = 0;
    let mut m = n;
    while m >= 10 && m.is_multiple_of(10) {
        m /= 10;
        p += 1;
    }
    if m == 1 && p > 1 {
        let exp: String = p
            .to_string()
            .bytes()
            .map(|b| SUP[(b - b'0') as usize])
            .collect();
        format!("10{exp}")
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_mode_caps_sizes() {
        let full = [1_000, 10_000, 100_000, 1_000_000];
        assert_eq!(sizes_for(&full, false), full.to_vec());
        assert_eq!(sizes_for(&full, true), vec![1_000, 10_000]);
        assert_eq!(sizes_for(&[100_000, 1_000_000], true), vec![TEST_MODE_MAX]);
    }

    #[test]
    fn pretty_sizes() {
        assert_eq!(pretty_size(1_000), "10³");
        assert_eq!(pretty_size(1_000_000), "10⁶");
        assert_eq!(pretty_size(200), "200");
        assert_eq!(pretty_size(10), "10");
    }
}

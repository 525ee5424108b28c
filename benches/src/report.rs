//! The summary of a benchmark run: `benches/RESULTS.md`.
//!
//! Criterion leaves, for every benchmark, `<id>/new/benchmark.json` (its group, function and
//! parameter) and `<id>/new/estimates.json` (its statistics) under its output directory.
//! [`collect`] reads them all; [`render`] lays our figures next to the peers' with the ratios,
//! adds the lookup statistics ([`crate::lookups`]) and the machine description ([`machine`]),
//! and checks the goals against what was measured.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::lookups::LookupStats;
use crate::pretty_size;

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Criterion's group (`table/closest/k=20`).
    pub group: String,
    /// The function in the group (`ours`), empty when none.
    pub function: String,
    /// The parameter (`10⁶`), empty when none.
    pub value: String,
    /// Typical time per iteration in nanoseconds: the slope of the linear regression when
    /// criterion computed one, else the mean (what criterion prints as "time").
    pub ns: f64,
    /// Bytes per iteration, when the benchmark declared a byte throughput.
    pub bytes: Option<u64>,
}

/// Results indexed by (group, function, value).
pub type Results = BTreeMap<(String, String, String), Estimate>;

/// Every benchmark result under criterion's directory `dir`.
pub fn collect(dir: &Path) -> Results {
    let mut out = Results::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if !path.is_dir() {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                if let Some(est) = read_one(&path) {
                    out.insert(
                        (est.group.clone(), est.function.clone(), est.value.clone()),
                        est,
                    );
                }
            } else {
                stack.push(path);
            }
        }
    }
    out
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read_one(new_dir: &Path) -> Option<Estimate> {
    let id = read_json(&new_dir.join("benchmark.json"))?;
    let est = read_json(&new_dir.join("estimates.json"))?;
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let ns = est
        .get("slope")
        .and_then(|s| s.get("point_estimate"))
        .and_then(Value::as_f64)
        .or_else(|| est.get("mean")?.get("point_estimate")?.as_f64())?;
    Some(Estimate {
        group: text(&id["group_id"]),
        function: text(&id["function_id"]),
        value: text(&id["value_str"]),
        ns,
        bytes: id["throughput"].get("Bytes").and_then(Value::as_u64),
    })
}

/// A time in nanoseconds, in the unit that suits it.
pub fn fmt_time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `peer / ours` as "3.1×" (how many times faster ours is), or "–".
pub fn ratio(peer: Option<f64>, ours: Option<f64>) -> String {
    match (peer, ours) {
        (Some(p), Some(o)) if o > 0.0 => format!("{:.1}×", p / o),
        _ => "–".into(),
    }
}

fn get(r: &Results, group: &str, function: &str, value: &str) -> Option<f64> {
    r.get(&(group.into(), function.into(), value.into()))
        .map(|e| e.ns)
}

fn cell(t: Option<f64>) -> String {
    t.map(fmt_time).unwrap_or_else(|| "–".into())
}

/// The values of `group` in increasing numeric order (`10³` before `10⁶`).
fn values_of(r: &Results, group: &str) -> Vec<String> {
    let mut vals: Vec<String> = r
        .keys()
        .filter(|(g, _, _)| g == group)
        .map(|(_, _, v)| v.clone())
        .collect();
    vals.sort_by_key(|v| numeric(v));
    vals.dedup();
    vals
}

/// The number a size label stands for ("10⁶" → 1000000, "200" → 200).
pub fn numeric(label: &str) -> u64 {
    if let Some(exp) = label.strip_prefix("10")
        && !exp.is_empty()
        && exp.chars().all(|c| "⁰¹²³⁴⁵⁶⁷⁸⁹".contains(c))
    {
        let p: String = exp
            .chars()
            .map(|c| {
                let i = "⁰¹²³⁴⁵⁶⁷⁸⁹".chars().position(|s| s == c).unwrap_or(0);
                char::from(b'0' + i as u8)
            })
            .collect();
        return 10u64.saturating_pow(p.parse().unwrap_or(0));
    }
    label.parse().unwrap_or(u64::MAX)
}

/// Table sizes written by the table benchmark: network → (ours, libp2p-kad, mainline).
pub type TableSizes = BTreeMap<u64, (u64, u64, u64)>;

/// Reads `table-sizes.json` from criterion's directory.
pub fn table_sizes(dir: &Path) -> TableSizes {
    let mut out = TableSizes::new();
    if let Some(Value::Array(items)) = read_json(&dir.join("table-sizes.json")) {
        for it in items {
            let n = |k: &str| it[k].as_u64().unwrap_or(0);
            out.insert(n("network"), (n("ours"), n("libp2p_kad"), n("mainline")));
        }
    }
    out
}

/// A description of this machine and toolchain: CPU model, cores, memory, OS, rustc.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: u64 = m
                .lines()
                .find(|l| l.starts_with("MemTotal"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some(format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
        })
        .unwrap_or_else(|| "unknown".into());
    let run = |cmd: &str, args: &[&str]| {
        std::process::Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".into())
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into());
    format!(
        "- CPU: {model}\n- Cores available: {cores}\n- Memory: {mem}\n- OS: {}\n- Compiler: {}\n\
         - Load average (1, 5, 15 min) when this report was written: {load}\n",
        run("uname", &["-srm"]),
        run(&rustc, &["-V"]),
    )
}

/// Everything [`render`] needs besides the criterion results.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Routing-table sizes per network size.
    pub table_sizes: TableSizes,
    /// Lookup statistics per network size.
    pub lookups: Vec<LookupStats>,
    /// The machine description (see [`machine`]).
    pub machine: String,
}

/// The Markdown report.
pub fn render(r: &Results, x: &Extras) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Muttr benchmark results\n");
    let _ = writeln!(
        s,
        "Generated by `cargo run -p muttr-benches --bin report` from the criterion output of one \
         `cargo bench -p muttr-benches` run (see `benches/README.md` for what each benchmark \
         measures). Times are criterion's typical time per iteration (regression slope, or \
         mean). A ratio `peer/ours` above 1× means ours is faster.\n"
    );
    let _ = writeln!(s, "## Machine\n\n{}", x.machine);
    goals(&mut s, r, x);
    let _ = writeln!(
        s,
        "No allocation per query beyond the result: by construction, not measured here \
         (`RoutingTable::closest` allocates only the returned `Vec`; `closest_into`, measured as \
         `ours_into`, appends to the caller's buffer and allocates nothing).\n"
    );
    micro(&mut s, r);
    tables(&mut s, r, x);
    topk(&mut s, r);
    lookups(&mut s, r, x);
    s
}

fn goals(s: &mut String, r: &Results, x: &Extras) {
    let _ = writeln!(s, "## Goals of issue 6\n");
    let _ = writeln!(s, "| goal | measured | met |\n|---|---|---|");
    let full = values_of(r, "table/closest/k=20")
        .into_iter()
        .max_by_key(|v| numeric(v));
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    if let Some(v) = full {
        let g = "table/closest/k=20";
        let ours = get(r, g, "ours", &v);
        let p2p = get(r, g, "libp2p_kad", &v);
        if let Some(o) = ours {
            let _ = writeln!(
                s,
                "| closest-20 on a full table (network {v}) ≤ 1 µs | {} | {} |",
                fmt_time(o),
                yes(o <= 1_000.0)
            );
        }
        if let (Some(o), Some(p)) = (ours, p2p) {
            let _ = writeln!(
                s,
                "| closest-20 ≥ 2× faster than libp2p-kad (network {v}) | {} | {} |",
                ratio(p2p, ours),
                yes(p / o >= 2.0)
            );
        }
    }
    if let Some(v) = values_of(r, "table/closest/k=20")
        .into_iter()
        .max_by_key(|v| numeric(v))
        && let Some(p) = get(r, "table/closest/k=20", "proposed", &v)
    {
        let _ = writeln!(
            s,
            "| (prototype `proposed`, not the node's code) closest-20 ≤ 1 µs, ≥ 2× libp2p-kad \
             (network {v}) | {}, {} | {} |",
            fmt_time(p),
            ratio(get(r, "table/closest/k=20", "libp2p_kad", &v), Some(p)),
            yes(p <= 1_000.0
                && get(r, "table/closest/k=20", "libp2p_kad", &v).is_some_and(|l| l / p >= 2.0))
        );
    }
    let g = "topk/k=20";
    if let (Some(k), Some(sort)) = (get(r, g, "closest_k", "10⁵"), get(r, g, "sort_all", "10⁵"))
    {
        let _ = writeln!(
            s,
            "| top-20 of 10⁵ ≥ 25× faster than sorting all | {:.1}× | {} |",
            sort / k,
            yes(sort / k >= 25.0)
        );
    }
    for l in x.lookups.iter().filter(|l| l.nodes == 10_000) {
        let _ = writeln!(
            s,
            "| lookups at 10⁴ nodes ({} tables): median hops ≤ 4 | FIND_NODE {}, FIND_VALUE {} | {} |",
            l.build.name(),
            l.find_node.hops_median,
            l.find_value.hops_median,
            yes(l.find_node.hops_median <= 4.0 && l.find_value.hops_median <= 4.0)
        );
    }
    let _ = writeln!(s);
}

fn micro(s: &mut String, r: &Results) {
    let _ = writeln!(s, "## 1. Micro benchmarks\n");
    let _ = writeln!(s, "| operation | time |\n|---|---|");
    for ((g, f, _), e) in r.iter().filter(|((g, _, _), _)| g == "micro") {
        let _ = writeln!(s, "| {g}/{f} | {} |", fmt_time(e.ns));
    }
    let _ = writeln!(
        s,
        "\nWire codec (realistic messages: 3 contacts per reply, a 2 KiB armored message as \
         hex in STORE and FIND_VALUE_REPLY):\n"
    );
    let _ = writeln!(
        s,
        "| message | bytes | encode | decode | decode MB/s |\n|---|---|---|---|---|"
    );
    let names: std::collections::BTreeSet<&String> = r
        .keys()
        .filter(|(g, _, _)| g == "wire")
        .map(|(_, _, v)| v)
        .collect();
    for name in names {
        let enc = r.get(&("wire".into(), "encode".into(), name.clone()));
        let dec = r.get(&("wire".into(), "decode".into(), name.clone()));
        let bytes = enc.or(dec).and_then(|e| e.bytes);
        let mbs = match (bytes, dec) {
            (Some(b), Some(d)) if d.ns > 0.0 => format!("{:.0}", b as f64 / d.ns * 1e3),
            _ => "–".into(),
        };
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {mbs} |",
            bytes.map(|b| b.to_string()).unwrap_or_else(|| "–".into()),
            cell(enc.map(|e| e.ns)),
            cell(dec.map(|e| e.ns)),
        );
    }
    let _ = writeln!(s);
}

fn tables(s: &mut String, r: &Results, x: &Extras) {
    let _ = writeln!(s, "## 2. Routing table, side by side\n");
    let _ = writeln!(
        s,
        "Each implementation hears once from the same N random peers (k = 20). libp2p-kad \
         (`Behaviour::add_address`, `get_closest_local_peers(..).take(k).collect()`) keys peers \
         by SHA-256 of their id; mainline (`RoutingTable::add`, `closest`) and ours use the same \
         160-bit identifiers. mainline's `closest` always computes its 20 closest (k = 3 takes \
         the first 3). `ours` returns a fresh `Vec`; `ours_into` appends to a reused buffer; `proposed` is \
         the prototype of `muttr_benches::proto` (decorated sort on integer keys) over the same \
         contents as `ours`, returning a fresh `Vec` — a proposal, not the node's code.\n"
    );
    if !x.table_sizes.is_empty() {
        let _ = writeln!(
            s,
            "| network | entries: ours | libp2p-kad | mainline |\n|---|---|---|---|"
        );
        for (n, (o, p, m)) in &x.table_sizes {
            let _ = writeln!(s, "| {} | {o} | {p} | {m} |", pretty_size(*n as usize));
        }
        let _ = writeln!(s);
    }
    for k in [3, 20] {
        let g = format!("table/closest/k={k}");
        let _ = writeln!(s, "### closest-{k}\n");
        let _ = writeln!(
            s,
            "| network | ours | ours_into | proposed | libp2p-kad | mainline | libp2p/ours | \
             mainline/ours | libp2p/proposed |\n|---|---|---|---|---|---|---|---|---|"
        );
        for v in values_of(r, &g) {
            let t = |f: &str| get(r, &g, f, &v);
            let _ = writeln!(
                s,
                "| {v} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(t("ours")),
                cell(t("ours_into")),
                cell(t("proposed")),
                cell(t("libp2p_kad")),
                cell(t("mainline")),
                ratio(t("libp2p_kad"), t("ours")),
                ratio(t("mainline"), t("ours")),
                ratio(t("libp2p_kad"), t("proposed")),
            );
        }
        let _ = writeln!(s);
    }
    let g = "table/update_churn";
    let _ = writeln!(
        s,
        "### Update under churn\n\nOne update, alternately from a contact in the table \
         (refresh) and a newcomer of the network (full bucket: replacement cache / pending \
         entry).\n"
    );
    let _ = writeln!(
        s,
        "| network | ours | libp2p-kad | mainline | libp2p/ours | mainline/ours |\n\
         |---|---|---|---|---|---|"
    );
    for v in values_of(r, g) {
        let t = |f: &str| get(r, g, f, &v);
        let _ = writeln!(
            s,
            "| {v} | {} | {} | {} | {} | {} |",
            cell(t("ours")),
            cell(t("libp2p_kad")),
            cell(t("mainline")),
            ratio(t("libp2p_kad"), t("ours")),
            ratio(t("mainline"), t("ours")),
        );
    }
    let _ = writeln!(s);
}

fn topk(s: &mut String, r: &Results) {
    let g = "topk/k=20";
    let _ = writeln!(
        s,
        "## 3. Global top-20 of N identifiers\n\n`closest_k` is `muttr_node::id::closest_k` \
         (bounded max-heap, one pass); `sort_all` copies and sorts all N; `select_nth` copies \
         and uses `select_nth_unstable`, then sorts the 20.\n"
    );
    let _ = writeln!(
        s,
        "| N | closest_k | select_nth | sort_all | sort_all/closest_k | select_nth/closest_k |\n\
         |---|---|---|---|---|---|"
    );
    for v in values_of(r, g) {
        let t = |f: &str| get(r, g, f, &v);
        let _ = writeln!(
            s,
            "| {v} | {} | {} | {} | {} | {} |",
            cell(t("closest_k")),
            cell(t("select_nth")),
            cell(t("sort_all")),
            ratio(t("sort_all"), t("closest_k")),
            ratio(t("select_nth"), t("closest_k")),
        );
    }
    let _ = writeln!(s);
}

fn lookups(s: &mut String, r: &Results, x: &Extras) {
    let _ = writeln!(
        s,
        "## 4. Lookups on the in-process network\n\n\
         Sans-IO nodes of `muttr_node::kad::testnet::Network`, virtual time, 20 ms one-way \
         latency, no loss, k = 20, α = 3, 3 contacts per reply. Two ways of building the \
         routing tables (see `muttr_benches::lookups`):\n\n\
         - **joined**: node by node through the protocol (`Network::bootstrap_all`: each \
         newcomer looks up its own identifier, then refreshes its buckets). Faithful, but \
         slow: it cannot be done at 10⁵ nodes in the benchmark's budget (an attempt on this \
         shared machine was stopped unfinished after 79 minutes of wall time, 24 of CPU, at \
         4.3 GiB).\n\
         - **filled**: every node's table is filled directly from the global identifier set \
         with what a node holds once it has heard from the network: per bucket, every node \
         that falls in it if there are at most k, else k of them drawn at random (seeded), \
         entered through the node's normal insert path (`Node::add_contact`, the code of a \
         contact heard from; bucket capacity respected). The lookups themselves are the \
         unchanged core exchanging real datagrams. A filled table is full, a freshly joined \
         one a little less so (compare the mean table sizes), so lookups on filled tables \
         can be slightly shorter; the comparison below measures by how much.\n\n\
         FIND_NODE of random identifiers from random nodes; FIND_VALUE of 2 KiB messages \
         (50 distinct) published by random nodes. Both builds of a size have the same node \
         identifiers and see the same sequence of lookups. `requests` counts the requests a \
         lookup sends. Wall time per lookup is the time of `Network::run_command` for it, so \
         it includes whatever else the network does meanwhile. `build` is the wall time to \
         create the nodes and build their tables; `memory` the growth of the benchmark \
         process's resident memory meanwhile (measured for the first network the process \
         builds, the largest; later ones reuse memory freed by earlier ones: `–`). `datagrams` is the mean number of datagrams the \
         whole network delivered while one lookup ran: its own requests and replies (about \
         twice `requests`) plus everything else in flight, chiefly eviction PINGs (P-K3): a \
         responder that hears from an unknown requester while the requester's bucket is full \
         PINGs that bucket's oldest contact, which, if it does not know the pinger and its \
         own bucket for it is full, PINGs its oldest, and so on. These chains are the \
         protocol's own behaviour, and they dominate wall time. They are much longer on filled \
         tables: there each node's contacts are drawn independently, so a pinged node knows \
         its pinger less often than after joining, where nodes hold those they exchanged \
         messages with (the `mutual_probe` example, same networks: 67 % of a joined \
         network's table entries are mutual at 10³ nodes and 48 % at 10⁴, against 42 % and \
         29 % for filled tables). So on filled networks datagrams and wall time per \
         lookup are far above the joined networks' of the same size, while the lookup's own \
         hops and requests agree (see the validation below); `wall/datagram` (mean wall time \
         over mean datagrams) is the cost of delivering one datagram, which times twice the \
         requests estimates the wall time of a lookup's own traffic. `PINGs` counts the PINGs answered network-wide per \
         lookup over the series (for FIND_VALUE including the amplification defence's address \
         checks).\n"
    );
    let _ = writeln!(
        s,
        "| nodes | tables | build | memory | mean table | lookup | n | hops median / mean / \
         p90 / p99 / max | requests median / mean / p90 / p99 / max | found | wall: median / \
         mean | datagrams | PINGs | wall/datagram | wall: criterion |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for l in &x.lookups {
        let size = pretty_size(l.nodes);
        let build = l.build.name();
        for (name, sm, bench) in [
            ("FIND_NODE", &l.find_node, "find_node"),
            ("FIND_VALUE", &l.find_value, "find_value"),
        ] {
            let found = if name == "FIND_VALUE" {
                format!("{}/{}", sm.found, sm.count)
            } else {
                "–".into()
            };
            // Below 1 MiB: the build reused memory freed by an earlier one (not measured).
            let memory = l
                .setup_rss_mib
                .filter(|&m| m >= 1.0)
                .map_or_else(|| "–".to_string(), fmt_mib);
            let _ = writeln!(
                s,
                "| {size} | {build} | {} | {memory} | {:.0} | {name} | {} | {} / {:.2} / {} / {} / \
                 {} | {} / {:.1} / {} / {} / {} | {found} | {} / {} | {:.0} | {:.0} | {} | {} |",
                fmt_secs(l.setup_secs),
                l.mean_table_size,
                sm.count,
                sm.hops_median,
                sm.hops_mean,
                sm.hops_p90,
                sm.hops_p99,
                sm.hops_max,
                sm.messages_median,
                sm.messages_mean,
                sm.messages_p90,
                sm.messages_p99,
                sm.messages_max,
                fmt_time(sm.wall_us_median * 1e3),
                fmt_time(sm.wall_us_mean * 1e3),
                sm.datagrams_mean,
                sm.pings_mean,
                if sm.datagrams_mean > 0.0 {
                    fmt_time(sm.wall_us_mean * 1e3 / sm.datagrams_mean)
                } else {
                    "–".into()
                },
                cell(get(r, "lookup", &format!("{bench}_{build}"), &size)),
            );
        }
    }
    compare_builds(s, x);
    let _ = writeln!(
        s,
        "\nWall time on joined networks: joining 10⁴ nodes one after the other takes ~53 \
         minutes of virtual time; once the virtual clock passes an hour, nodes woken by a \
         lookup's timers run their due housekeeping, i.e. bucket refresh lookups (P-K2), \
         delivered in the same loop. Measured with the `refresh_probe` example at 10⁴ nodes \
         (rounds of 300 FIND_NODEs): ~180 datagrams and 1.00 lookups started per command \
         (~3 ms) before the hour, then 614 datagrams / 6.7 lookups (~13 ms) and 1384 / 16.2 \
         (~25 ms) after it. The sampled lookups come right after the build; criterion's \
         figure (`lookup/*`) is taken over thousands of lookups later, so on a joined 10⁴ \
         network it includes that refresh traffic. Filled networks are measured right from \
         the start of their virtual clock and stay well within the hour."
    );
    if !x.lookups.iter().any(|l| l.nodes >= 100_000) {
        let _ = writeln!(
            s,
            "\n10⁵ nodes: not in this run (`cargo run --release -p muttr-benches --bin \
             lookup-stats -- 100000` measures them apart and merges them here)."
        );
    }
    let _ = writeln!(s);
}

/// Filled against joined tables, for each size measured both ways.
fn compare_builds(s: &mut String, x: &Extras) {
    use crate::lookups::Build;
    let pairs: Vec<(&LookupStats, &LookupStats)> = x
        .lookups
        .iter()
        .filter(|l| l.build == Build::Joined)
        .filter_map(|j| {
            x.lookups
                .iter()
                .find(|f| f.build == Build::Filled && f.nodes == j.nodes)
                .map(|f| (j, f))
        })
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n### Validation: filled against joined tables\n\n\
         Same identifiers, same lookups; `joined → filled`.\n\n\
         | nodes | lookup | mean table | hops median | hops mean | hops p99 / max | \
         requests median | requests mean | requests p99 / max |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for (j, f) in pairs {
        for (name, a, b) in [
            ("FIND_NODE", &j.find_node, &f.find_node),
            ("FIND_VALUE", &j.find_value, &f.find_value),
        ] {
            let _ = writeln!(
                s,
                "| {} | {name} | {:.0} → {:.0} | {} → {} | {:.2} → {:.2} | {} / {} → {} / {} | \
                 {} → {} | {:.1} → {:.1} | {} / {} → {} / {} |",
                pretty_size(j.nodes),
                j.mean_table_size,
                f.mean_table_size,
                a.hops_median,
                b.hops_median,
                a.hops_mean,
                b.hops_mean,
                a.hops_p99,
                a.hops_max,
                b.hops_p99,
                b.hops_max,
                a.messages_median,
                b.messages_median,
                a.messages_mean,
                b.messages_mean,
                a.messages_p99,
                a.messages_max,
                b.messages_p99,
                b.messages_max,
            );
        }
    }
}

/// Seconds, to a sensible precision.
fn fmt_secs(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.2} s")
    } else {
        format!("{secs:.0} s")
    }
}

/// MiB, or GiB above 1 GiB.
fn fmt_mib(mib: f64) -> String {
    if mib >= 1024.0 {
        format!("{:.2} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bench(dir: &Path, name: &str, group: &str, f: &str, v: &str, ns: f64, slope: bool) {
        let d = dir.join(name).join("new");
        std::fs::create_dir_all(&d).unwrap();
        let id = serde_json::json!({"group_id": group, "function_id": f, "value_str": v,
            "throughput": null, "full_id": format!("{group}/{f}/{v}")});
        std::fs::write(d.join("benchmark.json"), id.to_string()).unwrap();
        let e = |x: f64| {
            serde_json::json!({"point_estimate": x, "standard_error": 0.0,
            "confidence_interval": {"confidence_level": 0.95, "lower_bound": x, "upper_bound": x}})
        };
        let est = serde_json::json!({"mean": e(ns * 2.0), "median": e(ns), "median_abs_dev": e(0.0),
            "std_dev": e(0.0), "slope": if slope { e(ns) } else { Value::Null }});
        std::fs::write(d.join("estimates.json"), est.to_string()).unwrap();
    }

    #[test]
    fn collects_and_renders_ratios_and_goals() {
        let dir = tempfile::tempdir().unwrap();
        let g = "table/closest/k=20";
        bench(dir.path(), "a/ours/1", g, "ours", "10⁶", 500.0, true);
        bench(dir.path(), "a/p2p/1", g, "libp2p_kad", "10⁶", 2_000.0, true);
        bench(dir.path(), "a/ours/2", g, "ours", "10³", 300.0, true);
        // No slope: the mean counts (twice the median here).
        bench(
            dir.path(),
            "b/k",
            "topk/k=20",
            "closest_k",
            "10⁵",
            100.0,
            false,
        );
        bench(
            dir.path(),
            "b/s",
            "topk/k=20",
            "sort_all",
            "10⁵",
            3_000.0,
            false,
        );
        let r = collect(dir.path());
        assert_eq!(r.len(), 5);
        assert_eq!(get(&r, "topk/k=20", "closest_k", "10⁵"), Some(200.0));
        assert_eq!(values_of(&r, g), vec!["10³".to_string(), "10⁶".to_string()]);
        let out = render(&r, &Extras::default());
        assert!(
            out.contains("| 10⁶ | 500.0 ns | – | – | 2.00 µs | – | 4.0× | – | – |"),
            "{out}"
        );
        assert!(out.contains("closest-20 on a full table (network 10⁶) ≤ 1 µs | 500.0 ns | yes"));
        assert!(out.contains("| top-20 of 10⁵ ≥ 25× faster than sorting all | 30.0× | yes |"));
    }

    #[test]
    fn renders_lookups_and_compares_builds() {
        use crate::lookups::{Build, Summary};
        let sm = |hops: f64, msgs: f64| Summary {
            count: 500,
            found: 500,
            hops_median: hops,
            hops_mean: hops,
            hops_p90: hops,
            hops_p99: hops + 1.0,
            hops_max: hops as u32 + 2,
            messages_median: msgs,
            messages_mean: msgs,
            messages_p90: msgs,
            messages_p99: msgs,
            messages_max: msgs as u32,
            wall_us_median: 1_000.0,
            wall_us_mean: 2_000.0,
            datagrams_mean: 60.4,
            pings_mean: 7.0,
        };
        let stats = |build, hops, msgs, table| LookupStats {
            nodes: 10_000,
            build,
            setup_secs: 1.5,
            setup_rss_mib: Some(2_048.0),
            mean_table_size: table,
            find_node: sm(hops, msgs),
            find_value: sm(hops - 1.0, msgs / 2.0),
        };
        let x = Extras {
            lookups: vec![
                stats(Build::Joined, 3.0, 24.0, 179.0),
                stats(Build::Filled, 3.0, 22.0, 201.0),
            ],
            ..Extras::default()
        };
        let out = render(&Results::new(), &x);
        assert!(
            out.contains(
                "| 10⁴ | filled | 1.50 s | 2.00 GiB | 201 | FIND_NODE | 500 | 3 / 3.00 / 3 / 4 / 5 \
                 | 22 / 22.0 / 22 / 22 / 22 | – | 1.00 ms / 2.00 ms | 60 | 7 | 33.11 µs | – |"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "| 10⁴ | FIND_NODE | 179 → 201 | 3 → 3 | 3.00 → 3.00 | 4 / 5 → 4 / 5 | 24 → 22 \
                 | 24.0 → 22.0 | 24 / 24 → 22 / 22 |"
            ),
            "{out}"
        );
        assert!(out.contains(
            "| lookups at 10⁴ nodes (joined tables): median hops ≤ 4 | FIND_NODE 3, FIND_VALUE 2 \
             | yes |"
        ));
        assert!(out.contains("lookups at 10⁴ nodes (filled tables): median hops ≤ 4"));
        assert!(out.contains("10⁵ nodes: not in this run"));
    }

    #[test]
    fn units_and_labels() {
        assert_eq!(fmt_time(12.34), "12.3 ns");
        assert_eq!(fmt_time(1_234.0), "1.23 µs");
        assert_eq!(fmt_time(2_500_000.0), "2.50 ms");
        assert_eq!(numeric("10⁶"), 1_000_000);
        assert_eq!(numeric("200"), 200);
        assert_eq!(ratio(Some(3.0), Some(1.0)), "3.0×");
        assert_eq!(ratio(None, Some(1.0)), "–");
    }
}

//! The comparison engine: unchanged seeds on stock `turmoil::Sim` (1 ms tick).

use muttr_sim::Scenario;
use muttr_sim::stock::{compare_engines, run_stock};

fn tiny(seeds: u32) -> Scenario {
    Scenario::from_toml(&format!(
        r#"
        name = "stock-tiny"
        seed = 3
        seeds = {seeds}
        bootstrap_s = 2
        duration_s = 4
        [network]
        latency = {{ kind = "fixed", ms = 20 }}
        [workload]
        lookups_per_node_per_min = 12.0
        publishes_per_node_per_min = 6.0
        fetch_delay_s = 0.5
        "#
    ))
    .unwrap()
}

/// 20 seeds on stock turmoil join, publish and find each other's values: every lookup finds
/// the value, every value is stored at most of the other 19 seeds (k = 20; a seed that just
/// joined may not know them all yet) and is fetched back by another seed.
#[test]
fn twenty_seeds_publish_and_find_on_stock_turmoil() {
    let r = run_stock(&tiny(20), None).unwrap();
    assert_eq!(r.seeds, 20);
    assert_eq!(r.bootstrap_empty, 0, "{r:?}");
    assert!(r.publishes >= 5, "{r:?}");
    assert!(r.stored_at.min >= 15.0 && r.stored_at.max <= 19.0, "{r:?}");
    assert!(r.lookups >= 10, "{r:?}");
    assert_eq!(r.success_rate, 1.0, "{r:?}");
    assert_eq!(r.delivered, r.publishes, "{r:?}");
    assert_eq!(r.lost, 0);
    assert!(r.simulated_seconds >= 6.0, "{r:?}");
    assert!(
        r.steps as f64 >= r.simulated_seconds * 1000.0 - 1.0,
        "1 ms ticks: {r:?}"
    );
}

/// The same scenario on both engines: the lookups agree (same seeds, same workload shape) and
/// the comparison row carries both speeds.
#[test]
fn compare_engines_runs_both() {
    let rows = compare_engines(&tiny(12), &[12], None).unwrap();
    let row = &rows[0];
    assert_eq!(row.seeds, 12);
    assert_eq!(row.net.lookups.success_rate, 1.0, "{}", row.net.summary());
    assert_eq!(row.stock.success_rate, 1.0, "{:?}", row.stock);
    assert!(row.net_wall_per_sim_s > 0.0 && row.stock_wall_per_sim_s > 0.0);
    assert!((row.ratio - row.stock_wall_per_sim_s / row.net_wall_per_sim_s).abs() < 1e-9);
}

//! Ten real seeds on loopback UDP (tokio sockets): a value published at one is found at another,
//! and found again after every seed holding it restarts from its durable store.

use std::net::SocketAddr;
use std::path::PathBuf;

use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{Quotas, SqliteStore, ValueStore};
use muttr_node::{Config, value};
use rand::SeedableRng;

fn config() -> Config {
    // k = 3 so that only a few of the ten seeds hold the value and the search has to cross
    // the network (with k = 20 every seed would hold it).
    Config {
        k: 3,
        ..Config::default()
    }
}

async fn start(bind: SocketAddr, dir: &std::path::Path, n: u64) -> Seed<SqliteStore> {
    let store = SqliteStore::open(dir, Quotas::from_config(&config())).unwrap();
    let options = SeedOptions {
        bind,
        advertise: None,
        config: config(),
        rng_seed: n,
    };
    spawn_seed(TokioTransport, options, store, Clock::system())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_seeds_find_a_value_and_again_after_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..10)
        .map(|i| tmp.path().join(format!("seed{i}")))
        .collect();
    let mut seeds = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        seeds.push(Some(
            start("127.0.0.1:0".parse().unwrap(), dir, i as u64).await,
        ));
    }
    let addrs: Vec<SocketAddr> = seeds
        .iter()
        .map(|s| s.as_ref().unwrap().local_addr())
        .collect();
    for i in 1..10 {
        let s = seeds[i].as_ref().unwrap();
        let known = s.bootstrap(vec![addrs[0], addrs[i - 1]]).await.unwrap();
        assert!(known > 0, "seed {i} joined");
    }
    // Let seed 0 learn everyone too.
    seeds[0]
        .as_ref()
        .unwrap()
        .bootstrap(vec![addrs[9]])
        .await
        .unwrap();

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let v = value::to_hex(&value::opaque_message(&mut rng, 500));
    let key = value::key_of(&v);
    let report = seeds[3].as_ref().unwrap().publish(v.clone()).await.unwrap();
    assert_eq!(report.key, key);
    assert!(
        report.stored_at >= 2,
        "stored at {} seeds",
        report.stored_at
    );

    // A finder that does not hold the value itself.
    let mut finder = None;
    for (i, s) in seeds.iter().enumerate() {
        if s.as_ref().unwrap().stats().await.unwrap().values_held == 0 {
            finder = Some(i);
            break;
        }
    }
    let finder = finder.expect("with k = 3 most seeds hold nothing");
    let found = seeds[finder]
        .as_ref()
        .unwrap()
        .find_value_report(key)
        .await
        .unwrap();
    assert_eq!(found.value.as_deref(), Some(v.as_str()));
    assert!(found.hops >= 1, "found over the network");

    // Restart every seed that holds the value: shut it down (store flushed, then dropped),
    // reopen the store from disk, and listen on the same address again.
    let mut restarted = 0;
    for i in 0..10 {
        if i == finder {
            continue;
        }
        let seed = seeds[i].take().unwrap();
        let store = seed.shutdown().await.unwrap();
        let held = store.contains(&key);
        drop(store);
        let again = start(addrs[i], &dirs[i], 100 + i as u64).await;
        if held {
            restarted += 1;
            assert!(
                again.stats().await.unwrap().values_held >= 1,
                "seed {i} reloaded its value"
            );
        }
        again.bootstrap(vec![addrs[finder]]).await.unwrap();
        seeds[i] = Some(again);
    }
    assert!(restarted >= 2, "{restarted} holders restarted");
    let again = seeds[finder]
        .as_ref()
        .unwrap()
        .find_value(key)
        .await
        .unwrap();
    assert_eq!(
        again.as_deref(),
        Some(v.as_str()),
        "found again after the holders restarted"
    );

    for s in seeds.into_iter().flatten() {
        s.shutdown().await.unwrap();
    }
}

//! P-X2 end to end: a pod keeps its users' unpurged messages alive in a DHT of real seeds (UDP
//! on loopback), across days of virtual time (tokio's paused clock), after the sender is gone.

use std::time::Duration;

use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_node::{Config, Key, Seed, SeedOptions, spawn_seed, value};
use muttr_pod::storage::{InboxEntry, Party};
use muttr_pod::{AppState, PodConfig, Storage, keepalive};
use rand::SeedableRng;

const T0: u64 = 1_700_000_000_000;
const HOUR: Duration = Duration::from_secs(3_600);

async fn seed(clock: &Clock, rng: u64, boot: Option<&Seed<MemStore>>) -> Seed<MemStore> {
    let s = spawn_seed(
        TokioTransport,
        SeedOptions::new("127.0.0.1:0".parse().unwrap(), rng),
        MemStore::new(Quotas::from_config(&Config::default())),
        *clock,
    )
    .await
    .unwrap();
    if let Some(b) = boot {
        s.bootstrap(vec![b.local_addr()]).await.unwrap();
    }
    s
}

fn entry(key: &str) -> InboxEntry {
    InboxEntry {
        recipient: Party {
            user_id: "bob@pod.test".into(),
            pubkeyhash: "bob".into(),
        },
        sender: Party {
            user_id: "alice@elsewhere.test".into(),
            pubkeyhash: "alice".into(),
        },
        key: key.into(),
        timestamp: T0,
        id: None,
    }
}

struct World {
    seeds: Vec<Seed<MemStore>>,
    state: AppState,
    _dir: tempfile::TempDir,
}

/// Eight seeds, a pod with its own seed, and a sender who publishes one message, notifies
/// Bob's pod (an inbox entry) and leaves for good.
async fn world(keepalive_on: bool) -> (World, Key, String) {
    let clock = Clock::starting_at(T0);
    let mut seeds = vec![seed(&clock, 1, None).await];
    for i in 2..=8 {
        let s = seed(&clock, i, Some(&seeds[0])).await;
        seeds.push(s);
    }
    let pod_seed = seed(&clock, 50, Some(&seeds[0])).await;
    let dir = tempfile::tempdir().unwrap();
    let config = PodConfig {
        public_host: "pod.test".into(),
        keepalive: keepalive_on,
        ..PodConfig::default()
    };
    let state = AppState::new(
        config,
        Storage::open(dir.path()).unwrap(),
        Some(pod_seed.handle()),
        clock,
        Some(1),
    );
    seeds.push(pod_seed);
    tokio::spawn(keepalive::run(state.clone()));

    let sender = seed(&clock, 99, Some(&seeds[0])).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let v = value::to_hex(&value::opaque_message(&mut rng, 200));
    let report = sender.publish(v.clone()).await.unwrap();
    assert!(report.stored_at >= 3, "{report:?}");
    state
        .storage
        .add_entry("bob", &entry(&report.key.to_hex()))
        .await
        .unwrap();
    state.keepalive.wake();
    tokio::time::sleep(Duration::from_secs(10)).await;
    sender.shutdown().await.unwrap();
    (
        World {
            seeds,
            state,
            _dir: dir,
        },
        report.key,
        v,
    )
}

#[tokio::test(start_paused = true)]
async fn a_message_outlives_its_sender_for_three_days_while_the_pod_keeps_it_alive_p_x2() {
    let (w, key, v) = world(true).await;
    assert_eq!(
        w.state.storage.keepalive_keys().await.unwrap(),
        [key.to_hex()].into_iter().collect(),
        "adopted soon after the notify"
    );
    for day in 1..=3 {
        tokio::time::sleep(24 * HOUR).await;
        let found = w.seeds[3].find_value(key).await.unwrap();
        assert_eq!(found.as_deref(), Some(v.as_str()), "lost on day {day}");
    }
    // Bob comes back and purges: the pod stops keeping it alive, and it expires a day later.
    w.state.storage.purge("bob").await.unwrap();
    w.state.keepalive.wake();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(w.state.storage.keepalive_keys().await.unwrap().is_empty());
    tokio::time::sleep(25 * HOUR).await;
    assert_eq!(w.seeds[3].find_value(key).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn without_the_keep_alive_the_message_is_lost_after_a_day() {
    // The control: the same world with `keepalive = false` loses the message.
    let (w, key, v) = world(false).await;
    assert!(w.state.storage.keepalive_keys().await.unwrap().is_empty());
    tokio::time::sleep(23 * HOUR).await;
    assert_eq!(
        w.seeds[3].find_value(key).await.unwrap().as_deref(),
        Some(v.as_str())
    );
    tokio::time::sleep(2 * HOUR).await;
    assert_eq!(w.seeds[3].find_value(key).await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn a_key_the_dht_does_not_have_is_retried_not_adopted() {
    let (w, _, _) = world(true).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
    let later = value::to_hex(&value::opaque_message(&mut rng, 100));
    let key = value::key_of(&later);
    w.state
        .storage
        .add_entry("bob", &entry(&key.to_hex()))
        .await
        .unwrap();
    let r = keepalive::sweep(&w.state).await;
    assert_eq!((r.adopted, r.pending), (0, 1), "{r:?}");
    // Published afterwards (a slow sender): the next sweep adopts it.
    w.seeds[1].publish(later).await.unwrap();
    let r = keepalive::sweep(&w.state).await;
    assert_eq!((r.adopted, r.pending), (1, 0), "{r:?}");
    assert!(
        w.state
            .storage
            .keepalive_keys()
            .await
            .unwrap()
            .contains(&key.to_hex())
    );
}

//! Notify + push through one pod and through replicas on PostgreSQL, in one run:
//!
//! | setup | storage | replicas |
//! |---|---|---|
//! | `sqlite` | SQLite (the default) | 1 |
//! | `postgres x1` | PostgreSQL | 1 |
//! | `postgres x2` | PostgreSQL | 2, notifies alternating between them |
//!
//! For each, C concurrent clients send `POST /inboxes/bob` over keep-alive connections while
//! bob holds a WebSocket at one replica (with two, the other replica's notifies reach him
//! through `LISTEN/NOTIFY`). Printed: notifies per second, the p50/p99 of the `POST` answer,
//! and the p50/p99 of notify + push (from sending the `POST` to the frame arriving at bob's
//! socket).
//!
//! `cargo bench -p muttr-pod --bench replicas` with `MUTTR_TEST_POSTGRES` naming a cluster
//! (`eval "$(bash scripts/pg-test-cluster.sh start)"`; each setup gets a fresh database);
//! without it only the SQLite setup runs. `-- --test` (CI) does it with a few requests and
//! checks every entry is pushed. The pods run in this process, on loopback, on the same
//! cores as the clients and PostgreSQL: compare the setups with each other, not with another
//! machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use muttr_node::crypto::auth::sign_auth;
use muttr_node::crypto::{Identity, pubkeyhash};
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_pod::{AppState, PodConfig, Storage};
use tokio_tungstenite::tungstenite::Message;

#[path = "../tests/common/pg.rs"]
mod pg;

const ALICE: &str = include_str!("../../vectors/pgp/keys/alice.sec.asc");
const ALICE_PUB: &str = include_str!("../../vectors/pgp/keys/alice.pub.asc");
const BOB: &str = include_str!("../../vectors/pgp/keys/bob.sec.asc");
const BOB_PUB: &str = include_str!("../../vectors/pgp/keys/bob.pub.asc");

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// The host in users' IDs, the same for every replica.
const HOST: &str = "pod.bench";

async fn send(client: &Http, method: &str, url: &str, body: String) -> u16 {
    let req = hyper::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let res = client.request(req).await.expect("response");
    let status = res.status().as_u16();
    res.into_body().collect().await.expect("body");
    status
}

/// A replica on `storage`, serving on a loopback port: its base URL.
async fn replica(storage: Storage) -> (String, Seed<MemStore>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let seed = spawn_seed(
        TokioTransport,
        SeedOptions::new("127.0.0.1:0".parse().expect("addr"), 1),
        MemStore::new(Quotas::from_config(&muttr_node::Config::default())),
        Clock::system(),
    )
    .await
    .expect("seed");
    let config = PodConfig {
        public_host: HOST.to_string(),
        exempt_loopback: true,
        identity_rate_per_sec: 1e9,
        identity_burst: 1e9,
        ws_queue: 1 << 20,
        keepalive: false,
        ..PodConfig::default()
    };
    let state = AppState::new(config, storage, Some(seed.handle()), Clock::system(), None);
    tokio::spawn(async move {
        muttr_pod::serve(tcp, state, std::future::pending())
            .await
            .expect("serve")
    });
    (format!("http://{addr}"), seed)
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// One setup: `storages` are its replicas. Returns the line to print.
async fn setup(name: &str, storages: Vec<Storage>, n: usize, conns: usize) -> String {
    let mut replicas = Vec::new();
    for s in storages {
        replicas.push(replica(s).await);
    }
    let urls: Vec<String> = replicas.iter().map(|(u, _)| u.clone()).collect();
    let client: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(conns)
        .build_http();
    let alice = Identity::from_armored(ALICE.as_bytes(), None).expect("key");
    let bob = Identity::from_armored(BOB.as_bytes(), None).expect("key");
    let (alice_hash, bob_hash) = (pubkeyhash(ALICE_PUB), pubkeyhash(BOB_PUB));
    let now = std::time::SystemTime::now();
    let mut nonce = now
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    let mut sign = |who: &Identity, hash: &str, params: &[(&str, &str)]| {
        nonce += 1;
        sign_auth(who, hash, "pubkeyhash", nonce, params, now).expect("sign")
    };
    let first = &urls[0];
    for (public, who, hash, alias) in [
        (ALICE_PUB, &alice, &alice_hash, "alice"),
        (BOB_PUB, &bob, &bob_hash, "bob"),
    ] {
        assert_eq!(
            send(&client, "POST", &format!("{first}/"), public.into()).await,
            200
        );
        let body = sign(who, hash, &[("alias", alias)]);
        assert_eq!(
            send(&client, "POST", &format!("{first}/aliases"), body).await,
            200
        );
    }
    // Bob listens at the last replica.
    let ws_url = urls[urls.len() - 1].replacen("http://", "ws://", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}/"))
        .await
        .expect("websocket");
    let frame = hex::encode(sign(&bob, &bob_hash, &[]));
    ws.send(Message::Text(frame.into())).await.expect("auth");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let listener = {
        let arrived = arrived.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
                    && let Some(k) = v["key"].as_str()
                {
                    arrived
                        .lock()
                        .expect("arrived")
                        .insert(k.to_string(), Instant::now());
                }
            }
        })
    };
    // The notifies, signed before the clock starts.
    let from = format!("alice@{HOST}");
    let work: Vec<(String, String)> = (0..n)
        .map(|i| {
            let key = format!("{i:040x}");
            let body = sign(&alice, &alice_hash, &[("from", &from), ("key", &key)]);
            (key, body)
        })
        .collect();
    let queue = Arc::new(Mutex::new(work.into_iter().enumerate().collect::<Vec<_>>()));
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, urls, queue, sent) =
            (client.clone(), urls.clone(), queue.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some((i, (key, body))) = queue.lock().expect("queue").pop() else {
                    return lat;
                };
                let url = format!("{}/inboxes/bob", urls[i % urls.len()]);
                let t = Instant::now();
                sent.lock().expect("sent").insert(key, t);
                assert_eq!(send(&client, "POST", &url, body).await, 200);
                lat.push(t.elapsed());
            }
        }));
    }
    let mut acks = Vec::new();
    for t in tasks {
        acks.extend(t.await.expect("worker"));
    }
    let wall = start.elapsed();
    // Every entry reaches bob's socket (P-S2 asks for 1 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrived.lock().expect("arrived").len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    listener.abort();
    let arrived = arrived.lock().expect("arrived").clone();
    assert_eq!(arrived.len(), n, "{name}: every notify is pushed");
    let sent = sent.lock().expect("sent").clone();
    let mut push: Vec<Duration> = sent
        .iter()
        .map(|(k, t)| arrived[k].saturating_duration_since(*t))
        .collect();
    acks.sort();
    push.sort();
    format!(
        "{name:<14} {n:>6} notifies {:>7.0}/s   POST p50 {:>7.2} ms  p99 {:>7.2} ms   notify+push p50 {:>7.2} ms  p99 {:>7.2} ms",
        n as f64 / wall.as_secs_f64(),
        pct(&acks, 0.5),
        pct(&acks, 0.99),
        pct(&push, 0.5),
        pct(&push, 0.99),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let (n, conns) = if test_mode { (20, 2) } else { (5_000, 16) };
    println!(
        "notify + push, {n} notifies over {conns} connections per setup ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = Storage::open(dir.path()).expect("sqlite");
    println!("{}", setup("sqlite", vec![sqlite], n, conns).await);
    for replicas in [1, 2] {
        let Some(url) = pg::fresh_database().await else {
            return;
        };
        let mut storages = Vec::new();
        for _ in 0..replicas {
            storages.push(Storage::connect(&url).await.expect("postgres"));
        }
        let name = format!("postgres x{replicas}");
        println!("{}", setup(&name, storages, n, conns).await);
    }
}

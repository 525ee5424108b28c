//! Load benchmark of the pod over loopback TCP: requests per second and latency percentiles
//! for `GET /aliases/:alias` (the keyserver) and `POST /inboxes/:alias` (signature check,
//! nonce record, durable insert, push) — the two endpoints every message touches.
//!
//! `cargo bench -p muttr-pod --bench load` runs the full load (C concurrent keep-alive
//! connections); `-- --test` (as CI runs it) sends a few requests of each kind and checks they
//! succeed. Signed bodies are made before the clock starts: the client's signing cost is not
//! the pod's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use muttr_node::crypto::auth::sign_auth;
use muttr_node::crypto::{Identity, pubkeyhash};
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_pod::{AppState, PodConfig, Storage};

const ALICE: &str = include_str!("../../vectors/pgp/keys/alice.sec.asc");
const ALICE_PUB: &str = include_str!("../../vectors/pgp/keys/alice.pub.asc");
const BOB_PUB: &str = include_str!("../../vectors/pgp/keys/bob.pub.asc");

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

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

struct Outcome {
    name: &'static str,
    requests: usize,
    wall: Duration,
    latencies: Vec<Duration>,
}

impl Outcome {
    fn pct(&self, p: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
    fn print(&self) {
        println!(
            "{:<24} {:>7} req {:>9.0} req/s   p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
            self.name,
            self.requests,
            self.requests as f64 / self.wall.as_secs_f64(),
            self.pct(0.50).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3,
            self.pct(1.0).as_secs_f64() * 1e3,
        );
    }
}

/// Runs `bodies` (one request each) over `conns` concurrent workers.
async fn run(
    name: &'static str,
    client: &Http,
    method: &'static str,
    url: String,
    bodies: Vec<String>,
    conns: usize,
) -> Outcome {
    let requests = bodies.len();
    let queue = Arc::new(std::sync::Mutex::new(bodies));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, url, queue) = (client.clone(), url.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let Some(body) = queue.lock().expect("queue").pop() else {
                    return lat;
                };
                let t = Instant::now();
                let status = send(&client, method, &url, body).await;
                assert_eq!(status, 200, "{name}");
                lat.push(t.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("worker"));
    }
    let wall = start.elapsed();
    latencies.sort();
    Outcome {
        name,
        requests,
        wall,
        latencies,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let test_mode = std::env::args().any(|a| a == "--test");
    let (n, conns) = if test_mode { (20, 2) } else { (20_000, 32) };
    let dir = tempfile::tempdir().expect("tempdir");
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
        public_host: addr.to_string(),
        exempt_loopback: true,
        identity_rate_per_sec: 1e9,
        identity_burst: 1e9,
        ..PodConfig::default()
    };
    let state = AppState::new(
        config,
        Storage::open(dir.path()).expect("storage"),
        Some(seed.handle()),
        Clock::system(),
        Some(1),
    );
    tokio::spawn(async move {
        muttr_pod::serve(tcp, state, std::future::pending())
            .await
            .expect("serve")
    });
    let client: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(conns)
        .build_http();
    let base = format!("http://{addr}");
    let alice = Identity::from_armored(ALICE.as_bytes(), None).expect("key");
    let alice_hash = pubkeyhash(ALICE_PUB);
    let now = std::time::SystemTime::now();
    let now_ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis() as u64;
    let sign = |nonce: u64, params: &[(&str, &str)]| {
        sign_auth(&alice, &alice_hash, "pubkeyhash", nonce, params, now).expect("sign")
    };
    // Alice and Bob, with aliases (Bob's taken by Alice's identity: only the recipient's
    // existence matters here).
    assert_eq!(
        send(&client, "POST", &format!("{base}/"), ALICE_PUB.into()).await,
        200
    );
    assert_eq!(
        send(&client, "POST", &format!("{base}/"), BOB_PUB.into()).await,
        200
    );
    for (i, alias) in ["alice", "bob"].into_iter().enumerate() {
        let body = sign(now_ms + i as u64, &[("alias", alias)]);
        assert_eq!(
            send(&client, "POST", &format!("{base}/aliases"), body).await,
            200
        );
    }

    println!(
        "pod load on loopback: {n} requests per endpoint over {conns} connections ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let gets = vec![String::new(); n];
    let out = run(
        "GET /aliases/:alias",
        &client,
        "GET",
        format!("{base}/aliases/alice"),
        gets,
        conns,
    )
    .await;
    out.print();
    let from = format!("alice@{addr}");
    let bodies: Vec<String> = (0..n as u64)
        .map(|i| {
            let key = format!("{:040x}", i + 1);
            sign(now_ms + 10 + i, &[("from", &from), ("key", &key)])
        })
        .collect();
    let out = run(
        "POST /inboxes/:alias",
        &client,
        "POST",
        format!("{base}/inboxes/bob"),
        bodies,
        conns,
    )
    .await;
    out.print();
}

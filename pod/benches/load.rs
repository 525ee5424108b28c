//! Load benchmark of the pod over loopback TCP: requests per second and latency percentiles
//! for `GET /aliases/:alias` (the keyserver) and `POST /inboxes/:alias` (signature check,
//! nonce record, durable insert, push) — the two endpoints every message touches.
//!
//! `cargo bench -p muttr-pod --bench load` runs the full load (C concurrent keep-alive
//! connections) twice: on an otherwise idle pod, and with [`STALLED`] connections held open by
//! a slowloris client (each sends half a request head and waits; when the pod cuts it at the
//! header timeout, it reconnects at once) — then prints how the p99 moved. Last, the real
//! `muttr-pod` binary gets SIGTERM with [`STALLED`] stalled connections open, and the time to
//! exit is printed. `-- --test` (as CI runs it) does all of it with a few requests and a few
//! stalled connections and checks the answers. Signed bodies are made before the clock
//! starts: the client's signing cost is not the pod's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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

/// Stalled connections of the loaded runs and of the SIGTERM measure.
const STALLED: usize = 500;

/// Holds `n` stalled connections to `addr` open: each sends half a request head and waits;
/// cut by the pod, it reconnects. Answers how many are open now and how many were cut.
fn slowloris(
    addr: std::net::SocketAddr,
    n: usize,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    Vec<tokio::task::JoinHandle<()>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let open = Arc::new(AtomicUsize::new(0));
    let cut = Arc::new(AtomicUsize::new(0));
    let tasks = (0..n)
        .map(|_| {
            let (open, cut) = (open.clone(), cut.clone());
            tokio::spawn(async move {
                loop {
                    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    if s.write_all(b"GET /aliases/alice HTTP/1.1\r\nHost: a\r\n")
                        .await
                        .is_err()
                    {
                        continue;
                    }
                    open.fetch_add(1, Ordering::Relaxed);
                    let mut buf = [0u8; 256];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::Relaxed);
                    cut.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    (open, cut, tasks)
}

/// Waits until `n` stalled connections are open.
async fn until_open(open: &AtomicUsize, n: usize) {
    while open.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Starts the `muttr-pod` binary, holds `stalled` connections open on it (half heads), sends
/// SIGTERM, and answers how long it took to exit.
async fn sigterm_with_stalled(stalled: usize) -> Duration {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("pod.toml");
    std::fs::write(&config, "[pod]\nexempt_loopback = true\n").expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_muttr-pod"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed-listen",
            "127.0.0.1:0",
            "--log",
            "warn",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("muttr-pod starts");
    let mut ready = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready line");
    let addr: std::net::SocketAddr = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http://"))
        .and_then(|a| a.parse().ok())
        .expect("address in the ready line");
    let (open, _, tasks) = slowloris(addr, stalled);
    until_open(&open, stalled).await;
    let start = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    let took = start.elapsed();
    assert!(exit.success(), "{exit:?}");
    for t in tasks {
        t.abort();
    }
    took
}

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
    let from = format!("alice@{addr}");
    let mut nonce = now_ms + 10;
    let mut bodies = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                nonce += 1;
                let key = format!("{:040x}", nonce);
                sign(nonce, &[("from", &from), ("key", &key)])
            })
            .collect()
    };
    let stalled = if test_mode { 20 } else { STALLED };
    let mut p99 = Vec::new();
    for loaded in [false, true] {
        let stallers = if loaded {
            let (open, cut, tasks) = slowloris(addr, stalled);
            until_open(&open, stalled).await;
            println!("with {stalled} stalled connections open (half request heads):");
            Some((open, cut, tasks))
        } else {
            println!("no other connections:");
            None
        };
        let get = run(
            "GET /aliases/:alias",
            &client,
            "GET",
            format!("{base}/aliases/alice"),
            vec![String::new(); n],
            conns,
        )
        .await;
        get.print();
        let post = run(
            "POST /inboxes/:alias",
            &client,
            "POST",
            format!("{base}/inboxes/bob"),
            bodies(n),
            conns,
        )
        .await;
        post.print();
        p99.push((get.pct(0.99), post.pct(0.99)));
        if let Some((open, cut, tasks)) = stallers {
            println!(
                "  stalled connections open at the end: {}, cut by the pod's timers and \
                 reopened: {}",
                open.load(Ordering::Relaxed),
                cut.load(Ordering::Relaxed)
            );
            for t in tasks {
                t.abort();
            }
        }
    }
    println!(
        "p99 loaded / unloaded: GET {:.2}x, POST {:.2}x",
        p99[1].0.as_secs_f64() / p99[0].0.as_secs_f64(),
        p99[1].1.as_secs_f64() / p99[0].1.as_secs_f64()
    );
    let took = sigterm_with_stalled(stalled).await;
    println!(
        "muttr-pod binary: SIGTERM to exit with {stalled} stalled connections open: {:.3} s",
        took.as_secs_f64()
    );
}

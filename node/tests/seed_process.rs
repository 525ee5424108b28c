//! The `muttr-seed` binary as a real process: it answers raw UDP as the whitepaper says, stops
//! cleanly on SIGTERM, and a SIGKILL in the middle of a burst of STOREs loses no value it
//! acknowledged.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use muttr_node::value;
use rand::SeedableRng;
use serde_json::{Value, json};

#[path = "common/process.rs"]
mod process;
use process::Process;

fn spawn(data_dir: &std::path::Path) -> Process {
    let mut args = vec!["--listen", "127.0.0.1:0", "--log", "error", "--data-dir"];
    args.push(data_dir.to_str().expect("a UTF-8 temporary path"));
    Process::start(env!("CARGO_BIN_EXE_muttr-seed").as_ref(), args)
}

struct Peer {
    sock: UdpSocket,
    me: Value,
}

impl Peer {
    fn new() -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(2_000)))
            .unwrap();
        let a = sock.local_addr().unwrap();
        let id = hex_sha1(format!("{}:{}", a.ip(), a.port()).as_bytes());
        Peer {
            sock,
            me: json!({"address": a.ip().to_string(), "port": a.port(), "nodeID": id}),
        }
    }

    fn send(&self, to: SocketAddr, ty: &str, params: Value) {
        let mut p = self.me.clone();
        for (k, v) in params.as_object().unwrap() {
            p[k] = v.clone();
        }
        let d = serde_json::to_vec(&json!({"type": ty, "params": p})).unwrap();
        self.sock.send_to(&d, to).unwrap();
    }

    fn recv(&self) -> Option<Value> {
        let mut buf = vec![0u8; 70_000];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        serde_json::from_slice(&buf[..n]).ok()
    }
}

fn hex_sha1(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn answers_ping_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = spawn(dir.path());
    let peer = Peer::new();
    peer.send(seed.seed_addr(), "PING", json!({"rpcID": "hello"}));
    let pong = peer.recv().expect("PONG");
    assert_eq!(pong["type"], "PONG");
    assert_eq!(pong["params"]["referenceID"], "hello");
    let status = Command::new("kill")
        .args(["-TERM", &seed.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Wait at most 10 s for the clean exit.
    let mut exit = None;
    for _ in 0..100 {
        if let Some(e) = seed.child.try_wait().unwrap() {
            exit = Some(e);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit = exit.expect("muttr-seed exits after SIGTERM");
    assert!(exit.success(), "clean exit on SIGTERM: {exit:?}");
}

#[test]
fn sigkill_mid_burst_loses_no_acknowledged_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = spawn(dir.path());
    let peer = Peer::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let values: Vec<String> = (0..300)
        .map(|_| value::to_hex(&value::opaque_message(&mut rng, 300)))
        .collect();
    let publisher = hex_sha1(b"publisher");
    let ts = now_ms();
    let store = |i: usize| {
        let key = value::key_of(&values[i]).to_hex();
        peer.send(
            seed.seed_addr(),
            "STORE",
            json!({"rpcID": format!("s{i}"), "key": key, "value": values[i], "timestamp": ts, "publisher": publisher}),
        );
    };
    // A window of 32 STOREs in flight (a burst the seed's socket buffer can hold), refilled
    // as replies come; SIGKILL as soon as 100 are acknowledged, with the rest still in flight.
    const WINDOW: usize = 32;
    let mut next = 0;
    while next < WINDOW {
        store(next);
        next += 1;
    }
    let mut acked = Vec::new();
    while let Some(reply) = peer.recv() {
        if reply["type"] == "STORE_REPLY" && reply["params"]["success"] == true {
            let i: usize = reply["params"]["referenceID"].as_str().unwrap()[1..]
                .parse()
                .unwrap();
            acked.push(i);
        }
        if acked.len() == 100 {
            seed.child.kill().unwrap(); // SIGKILL, mid-burst
            break;
        }
        if next < values.len() {
            store(next);
            next += 1;
        }
    }
    seed.child.wait().unwrap();
    assert_eq!(
        acked.len(),
        100,
        "the seed acknowledged STOREs before it was killed"
    );
    assert!(next > 100, "STOREs were still in flight at the kill");
    drop(seed);

    let seed = spawn(dir.path());
    for i in acked {
        let key = value::key_of(&values[i]).to_hex();
        peer.send(
            seed.seed_addr(),
            "FIND_VALUE",
            json!({"rpcID": format!("f{i}"), "key": key}),
        );
        let reply = peer.recv().expect("FIND_VALUE_REPLY");
        assert_eq!(
            reply["params"]["value"].as_str(),
            Some(values[i].as_str()),
            "acknowledged value {i} survived SIGKILL"
        );
    }
}

#[test]
fn metrics_listen_counts_what_the_seed_did_in_prometheus_text_p_x3() {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let seed = Process::start(
        env!("CARGO_BIN_EXE_muttr-seed").as_ref(),
        [
            "--listen",
            "127.0.0.1:0",
            "--log",
            "error",
            "--metrics-listen",
            &port,
        ],
    );
    let peer = Peer::new();
    for i in 0..3 {
        peer.send(seed.seed_addr(), "PING", json!({"rpcID": format!("p{i}")}));
        assert_eq!(peer.recv().expect("PONG")["type"], "PONG");
    }
    peer.sock.send_to(b"not json", seed.seed_addr()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut s = std::net::TcpStream::connect(&port).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("a Prometheus parser reads it");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .and_then(|s| match s.value {
                // OpenMetrics names a counter's family without `_total`; the parser then reads
                // its sample as untyped.
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => Some(v),
                _ => None,
            })
    };
    assert_eq!(
        value("muttr_seed_requests_answered_total", Some(("type", "PING"))),
        Some(3.0),
        "{body}"
    );
    assert_eq!(
        value("muttr_seed_datagrams_received_total", None),
        Some(4.0),
        "{body}"
    );
    let dropped: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "muttr_seed_datagrams_dropped_total")
        .filter_map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => Some(v),
            _ => None,
        })
        .sum();
    assert_eq!(dropped, 1.0, "{body}");
    assert_eq!(value("muttr_seed_values_held", None), Some(0.0));
    // The families (one HELP each): at least ten, all `muttr_`, lookups as histograms.
    let families: Vec<&String> = scrape.docs.keys().collect();
    assert!(families.len() >= 10, "{families:?}");
    assert!(
        families.iter().all(|f| f.starts_with("muttr_")),
        "{families:?}"
    );
    for f in [
        "muttr_seed_lookup_hops",
        "muttr_seed_lookup_duration_seconds",
    ] {
        assert!(scrape.docs.contains_key(f), "{f} in {families:?}");
        assert!(
            scrape
                .samples
                .iter()
                .any(|s| s.metric == f && matches!(s.value, prometheus_parse::Value::Histogram(_))),
            "{f} is a histogram: {body}"
        );
    }
}

#[test]
fn version_names_the_git_revision_and_a_bad_log_filter_exits_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muttr-seed"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("muttr-seed {}", muttr_node::VERSION)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muttr-seed"))
        .args(["--listen", "127.0.0.1:0", "--log", "info,[bad"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid log filter") && err.contains("info,[bad"),
        "{err}"
    );
}

/// Under systemd (`Type=notify`) the seed says READY=1 once it serves and STOPPING=1 when it
/// begins to stop, on the datagram socket `$NOTIFY_SOCKET` names.
#[test]
fn the_seed_notifies_systemd_when_ready_and_when_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_muttr-seed"))
        .args(["--listen", "127.0.0.1:0", "--log", "warn"])
        .env("NOTIFY_SOCKET", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 within 20 s");
    assert_eq!(&buf[..n], b"READY=1");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let n = sock.recv(&mut buf).expect("STOPPING=1 within 20 s");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(child.wait().unwrap().success());
}

/// A metrics port already in use stops the seed at start, naming the address.
#[test]
fn a_metrics_port_in_use_fails_at_start_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_muttr-seed"))
        .args(["--listen", "127.0.0.1:0", "--metrics-listen", &addr])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("metrics cannot listen") && err.contains(&addr),
        "{err}"
    );
}

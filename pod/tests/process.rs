//! The `muttr-pod` binary as a real process: it starts, serves, and when killed with SIGKILL in
//! the middle of a burst of `POST /inboxes`, loses no entry it acknowledged (P-A9).

mod common;

use common::process::Process;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use tokio::sync::Mutex;

/// Starts the binary on a free port with `dir` as data directory and waits for its ready line.
fn start(dir: &std::path::Path, listen: &str) -> Process {
    let config = dir.join("pod.toml");
    std::fs::write(
        &config,
        "[pod]\nexempt_loopback = true\nidentity_rate_per_sec = 10000.0\nidentity_burst = 10000.0\n",
    )
    .unwrap();
    let data = dir.join("data");
    Process::start(
        env!("CARGO_BIN_EXE_muttr-pod").as_ref(),
        [
            "--listen".as_ref(),
            listen.as_ref(),
            "--seed-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--log".as_ref(),
            "warn".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_burst_loses_no_acknowledged_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut pod = start(dir.path(), "127.0.0.1:0");
    let host = pod.url().trim_start_matches("http://").to_string();
    let (alice, bob) = (Arc::new(user("alice")), user("bob"));
    for (u, alias) in [(&*alice, "alice"), (&bob, "bob")] {
        let a = http("POST", &format!("{}/", pod.url()), &u.armored).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let a = http(
            "POST",
            &format!("{}/aliases", pod.url()),
            &signed(u, &[("alias", alias)]),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    // A burst: 16 clients in parallel, each posting entries until the pod dies.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let from = format!("alice@{host}");
    let mut clients = Vec::new();
    for c in 0..16u32 {
        let (acked, alice, url, from) = (
            acked.clone(),
            alice.clone(),
            pod.url().clone(),
            from.clone(),
        );
        clients.push(tokio::spawn(async move {
            for i in 0..1000u32 {
                let key = format!("{:040x}", (c as u128) << 64 | i as u128);
                let body = signed(&alice, &[("from", &from), ("key", &key)]);
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http::<http_body_util::Full<bytes::Bytes>>();
                let req = hyper::Request::post(format!("{url}/inboxes/bob"))
                    .header("content-type", "text/plain")
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                match client.request(req).await {
                    Ok(res) if res.status() == 200 => acked.lock().await.push(key),
                    Ok(res) => panic!("unexpected status {}", res.status()),
                    Err(_) => return, // the pod is gone
                }
            }
        }));
    }
    // Kill it mid-burst.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acked.lock().await.len() >= 150 {
            break;
        }
    }
    pod.kill(); // SIGKILL
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert!(acked.len() >= 150);

    // Restart on the same address (the userIDs name it) and play back.
    let pod = start(dir.path(), &host);
    let a = http(
        "POST",
        &format!("{}/tokens", pod.url()),
        &signed(&bob, &[("resource", "/inboxes"), ("method", "GET")]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let token = a.json()["token"]["value"].as_str().unwrap().to_string();
    let p = http("GET", &format!("{}/inboxes?token={token}", pod.url()), "").await;
    assert_eq!(p.status, 200);
    let v = p.json();
    let held: std::collections::HashSet<String> = v["messages"][0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<_> = acked.iter().filter(|k| !held.contains(*k)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged entries lost: {lost:?}",
        lost.len()
    );
    eprintln!(
        "acknowledged {} entries before SIGKILL, all kept ({} held)",
        acked.len(),
        held.len()
    );
}

#[tokio::test]
async fn the_binary_refuses_a_bad_config_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "no_such_setting = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-pod"))
        .args(["--listen", "127.0.0.1:0", "--seed-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_setting"), "{err}");
}

/// Reads `GET /metrics` from `addr` over a plain TCP connection.
async fn scrape(addr: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

fn free_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn metrics_listen_serves_prometheus_text_a_real_parser_reads_p_x3() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = free_port();
    let data = dir.path().join("data");
    let pod = Process::start(
        env!("CARGO_BIN_EXE_muttr-pod").as_ref(),
        [
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--seed-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--log".as_ref(),
            "warn".as_ref(),
            "--metrics-listen".as_ref(),
            std::ffi::OsStr::new(&metrics),
            "--data-dir".as_ref(),
            data.as_os_str(),
        ],
    );
    let http = reqwest_like_get(&format!("{}/healthz", pod.url())).await;
    assert!(http.starts_with("HTTP/1.1 200"), "{http}");
    let (head, body) = scrape(&metrics).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text")
    );
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses");
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    assert_eq!(
        value("muttr_pod_http_requests_total", Some(("route", "/healthz"))),
        Some(1.0),
        "{body}"
    );
    assert_eq!(value("muttr_pod_identities", None), Some(0.0));
    assert!(
        value("muttr_seed_datagrams_received_total", None).is_some(),
        "{body}"
    );
    assert_eq!(value("muttr_seed_routing_table_contacts", None), Some(0.0));
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.metric.starts_with("muttr_")),
        "every name is prefixed muttr_"
    );
    // The families (one HELP each): at least ten of the pod's own, besides its seed's.
    let pod_families = scrape
        .docs
        .keys()
        .filter(|f| f.starts_with("muttr_pod_"))
        .count();
    assert!(pod_families >= 10, "{:?}", scrape.docs.keys());
    for f in [
        "muttr_pod_http_request_duration_seconds",
        "muttr_pod_db_write_duration_seconds",
        "muttr_seed_lookup_duration_seconds",
    ] {
        assert!(scrape.docs.contains_key(f), "{f}: {body}");
    }
    // Anything but /metrics is a JSON 404.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&metrics).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    assert!(
        raw.starts_with("HTTP/1.1 404") && raw.contains("\"error\""),
        "{raw}"
    );
}

/// A GET over a plain TCP connection; the raw answer.
async fn reqwest_like_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    s.write_all(
        format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    raw
}

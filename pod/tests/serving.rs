//! What one client can hold, over real TCP with raw bytes (as an attacker or a broken client
//! would send them): a half-sent request head is cut at the header timeout while others are
//! served; an idle kept-alive connection is closed; a trickling body gets 408; an oversize
//! head gets 431; connections over the per-address cap get a 503 JSON answer; behind a
//! trusted proxy the rate limit counts the forwarded client; and shutdown ends within its
//! deadline with stalled clients open, closing WebSockets with 1001.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt;
use muttr_node::net::Clock;
use muttr_pod::{AppState, PodConfig, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// A pod without a seed on a loopback port, and the means to stop it.
struct Pod {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn pod(config: PodConfig) -> Pod {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::new(
        PodConfig {
            public_host: addr.to_string(),
            ..config
        },
        Storage::open(dir.path()).unwrap(),
        None,
        Clock::system(),
        Some(7),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(muttr_pod::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Pod {
        addr,
        stop: Some(stop),
        served,
        _dir: dir,
    }
}

/// Reads until the pod closes the connection (or `limit` passes: then panics), returning what
/// it sent and how long it took.
async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    let mut got = Vec::new();
    let r = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "the pod kept the connection open for {limit:?}");
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

async fn get_healthz(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut s, Duration::from_secs(5)).await.0
}

#[tokio::test]
async fn a_half_sent_head_is_cut_at_the_header_timeout_while_others_are_served() {
    let p = pod(PodConfig {
        header_timeout: Duration::from_millis(600),
        keep_alive_timeout: Duration::from_millis(60_000),
        ..PodConfig::default()
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(b"GET /aliases/x HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    // Served meanwhile.
    assert!(get_healthz(p.addr).await.starts_with("HTTP/1.1 200"));
    for s in &mut stalled {
        let (_, took) = read_to_close(s, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(5));
    }
    // Not before the timer: a client sending its head at a normal pace is not cut.
    let mut slow = TcpStream::connect(p.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    slow.write_all(b"Host: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (text, _) = read_to_close(&mut slow, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    let p = pod(PodConfig {
        keep_alive_timeout: Duration::from_millis(300),
        ..PodConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    // The answer arrives, then — with no second request — the pod closes.
    let (text, took) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(took >= Duration::from_millis(250), "closed after {took:?}");
}

#[tokio::test]
async fn a_trickling_body_gets_408_in_json() {
    let p = pod(PodConfig {
        body_timeout: Duration::from_millis(500),
        ..PodConfig::default()
    })
    .await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    s.write_all(
        b"POST /messages HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789",
    )
    .await
    .unwrap();
    let (text, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("did not arrive"),
        "{v}"
    );
}

#[tokio::test]
async fn an_oversize_head_gets_431() {
    let p = pod(PodConfig::default()).await;
    let mut s = TcpStream::connect(p.addr).await.unwrap();
    let big = "x".repeat(32 * 1024);
    let req = format!("GET /healthz HTTP/1.1\r\nHost: a\r\nX-Big: {big}\r\n\r\n");
    // The pod may close before reading all of it: a failed write is fine, the answer is not.
    let _ = s.write_all(req.as_bytes()).await;
    let (text, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
}

#[tokio::test]
async fn connections_over_the_per_address_cap_get_a_503_json_answer() {
    let p = pod(PodConfig {
        max_connections_per_ip: 3,
        keep_alive_timeout: Duration::from_millis(60_000),
        header_timeout: Duration::from_millis(60_000),
        ..PodConfig::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(p.addr).await.unwrap());
    }
    // Let the pod accept them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(p.addr).await.unwrap();
    let (text, _) = read_to_close(&mut extra, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("too many connections")
    );
    // One closes: a slot is free again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(get_healthz(p.addr).await.starts_with("HTTP/1.1 200"));
}

async fn status_from(addr: SocketAddr, forwarded_for: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /aliases/nobody HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: {forwarded_for}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (text, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
    text[9..12].parse().unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_rate_limit_counts_the_forwarded_client() {
    let limited = PodConfig {
        ip_rate_per_sec: 0.001,
        ip_burst: 2.0,
        ..PodConfig::default()
    };
    let p = pod(PodConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..limited.clone()
    })
    .await;
    // 404: the request passed the limit (no such alias); 429: it did not.
    assert_eq!(status_from(p.addr, "198.51.100.1").await, 404);
    assert_eq!(status_from(p.addr, "198.51.100.1").await, 404);
    assert_eq!(status_from(p.addr, "198.51.100.1").await, 429);
    // Another client behind the same proxy has its own bucket; a spoofed left-hand entry
    // does not help the first.
    assert_eq!(status_from(p.addr, "198.51.100.2").await, 404);
    assert_eq!(status_from(p.addr, "6.6.6.6, 198.51.100.1").await, 429);

    // From a peer that is not a trusted proxy the header is not believed: one bucket.
    let q = pod(limited).await;
    assert_eq!(status_from(q.addr, "198.51.100.1").await, 404);
    assert_eq!(status_from(q.addr, "198.51.100.2").await, 404);
    assert_eq!(status_from(q.addr, "198.51.100.3").await, 429);
}

#[tokio::test]
async fn shutdown_ends_within_its_deadline_with_stalled_clients_and_closes_websockets_1001() {
    let mut p = pod(PodConfig {
        header_timeout: Duration::from_millis(60_000),
        keep_alive_timeout: Duration::from_millis(60_000),
        shutdown_timeout: Duration::from_millis(3_000),
        ..PodConfig::default()
    })
    .await;
    // Half heads: no request in flight, closed as soon as the pod stops.
    let mut heads = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(
            b"GET /aliases/x HTTP/1.1
Host: a
",
        )
        .await
        .unwrap();
        heads.push(s);
    }
    // Stalled bodies: requests in flight, given until the deadline.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        s.write_all(b"POST /messages HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01")
            .await
            .unwrap();
        stalled.push(s);
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", p.addr))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let start = Instant::now();
    p.stop.take().unwrap().send(()).unwrap();
    // The WebSocket is told the pod is going away.
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame))))) => {
            assert_eq!(u16::from(frame.code), 1001, "{frame:?}")
        }
        other => panic!("no close frame: {other:?}"),
    }
    for s in &mut heads {
        read_to_close(s, Duration::from_secs(5)).await;
    }
    let heads_closed = start.elapsed();
    assert!(
        heads_closed < Duration::from_secs(2),
        "connections without a request were held {heads_closed:?}"
    );
    // The server returns at the deadline, not when the stalled clients please.
    tokio::time::timeout(Duration::from_secs(10), &mut p.served)
        .await
        .expect("serve did not return within 10 s")
        .unwrap()
        .unwrap();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(8), "shutdown took {took:?}");
    assert!(
        took >= Duration::from_millis(2_500),
        "requests in flight were not given until the deadline: {took:?}"
    );
    // And the stalled connections are closed.
    for s in &mut stalled {
        read_to_close(s, Duration::from_secs(5)).await;
    }
}

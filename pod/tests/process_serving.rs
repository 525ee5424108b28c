//! The `muttr-pod` binary as an operator runs it: SIGTERM with hundreds of stalled clients
//! open exits within the shutdown deadline; SIGHUP reloads a renewed TLS certificate; a
//! wildcard `--listen` without `--public-host` is refused with a message saying what to do.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::process::Process;
use common::{Pki, served_certificate};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncWriteExt;

fn pod_args<'a>(dir: &'a Path, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--listen",
        "127.0.0.1:0",
        "--seed-listen",
        "127.0.0.1:0",
        "--log",
        "warn",
        "--data-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(dir.join("data").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .expect("`kill` runs");
    assert!(status.success());
}

/// Waits up to `limit` for the process to exit; its status and how long it took.
fn wait_exit(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, start.elapsed());
        }
        assert!(start.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn addr_of(ready: &str) -> std::net::SocketAddr {
    let url = ready
        .split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {ready:?}"));
    url.split("://").nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_exits_within_the_deadline_with_500_stalled_clients_open() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pod.toml");
    // Timers far beyond the deadline, so only the deadline can end the stalled connections.
    std::fs::write(
        &config,
        "[pod]\nshutdown_timeout = \"2s\"\nheader_timeout = \"10m\"\nkeep_alive_timeout = \"10m\"\n\
         body_timeout = \"10m\"\nmax_connections_per_ip = 10000\n",
    )
    .unwrap();
    let mut pod = Process::start(
        env!("CARGO_BIN_EXE_muttr-pod").as_ref(),
        pod_args(dir.path(), &["--config", config.to_str().unwrap()]),
    );
    let addr = addr_of(&pod.ready);
    let mut stalled = Vec::new();
    for i in 0..500 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Half a head, or a whole head and half a body.
        let bytes: &[u8] = if i % 2 == 0 {
            b"GET /aliases/x HTTP/1.1\r\nHost: a\r\n"
        } else {
            b"POST /messages HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123"
        };
        s.write_all(bytes).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&pod.child, "TERM");
    let (status, took) = wait_exit(&mut pod.child, Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    // 2 s of deadline, plus the seed's stop and the process's own exit.
    assert!(took < Duration::from_secs(8), "SIGTERM took {took:?}");
    assert!(
        took >= Duration::from_millis(1500),
        "ended before the deadline: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new("first CA");
    let pod = Process::start(
        env!("CARGO_BIN_EXE_muttr-pod").as_ref(),
        pod_args(
            dir.path(),
            &[
                "--tls-cert",
                pki.cert().to_str().unwrap(),
                "--tls-key",
                pki.key().to_str().unwrap(),
            ],
        ),
    );
    assert!(pod.ready.contains("https://"), "{}", pod.ready);
    let addr = addr_of(&pod.ready);
    let old = CertificateDer::from_pem_file(pki.cert()).unwrap();
    assert_eq!(served_certificate(addr, &pki.ca()).await, old);
    let renewed = Pki::new("second CA");
    std::fs::copy(renewed.cert(), pki.cert()).unwrap();
    std::fs::copy(renewed.key(), pki.key()).unwrap();
    let new = CertificateDer::from_pem_file(renewed.cert()).unwrap();
    signal(&pod.child, "HUP");
    let start = Instant::now();
    loop {
        // New handshakes get the new certificate once the signal is handled.
        let config = muttr_node::trust::client_config(&[renewed.ca()]).unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let got = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await;
        if let Ok(tls) = got {
            assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], new);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the renewed certificate was not served after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The process is still serving (SIGHUP did not stop it).
    assert_eq!(served_certificate(addr, &renewed.ca()).await, new);
}

#[test]
fn a_wildcard_listen_without_public_host_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = pod_args(dir.path(), &[]);
    args[1] = "0.0.0.0:0".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (status, _, err) = run_to_exit(&args);
    assert!(!status.success());
    assert!(err.contains("--public-host"), "{err}");
    assert!(err.contains("0.0.0.0:0"), "{err}");
}

/// Runs the binary to completion (it must exit by itself within 20 s).
fn run_to_exit(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_muttr-pod"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, out, err)
}

#[test]
fn version_names_the_git_revision_and_a_bad_log_filter_is_refused() {
    let (status, out, _) = run_to_exit(&["--version"]);
    assert!(status.success());
    assert_eq!(
        out.trim(),
        format!(
            "muttr-pod {} ({})",
            env!("CARGO_PKG_VERSION"),
            muttr_node::GIT_REV
        )
    );
    // A typo in the filter is not silently another level: exit 2, naming it.
    let (status, _, err) = run_to_exit(&["--log", "debgu=,,["]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("invalid log filter"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_host_from_the_config_file_is_honoured_and_logs_can_be_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pod.toml");
    std::fs::write(&config, "public_host = \"pod.example:8443\"\n").unwrap();
    let mut args = pod_args(dir.path(), &["--config", config.to_str().unwrap()]);
    // JSON log lines at info: the access log line of the request below is one of them.
    args[5] = "info".into();
    args.extend(["--log-format".into(), "json".into()]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_muttr-pod"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    let addr = addr_of(&ready);
    // The status page (JSON to a client that does not ask for HTML) names the file's host.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id: probe-42\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut s, &mut answer)
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-request-id: probe-42"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["public_host"], "pod.example:8443");
    signal(&child, "TERM");
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    // The access log line: method, path and request id from the span, status and latency.
    let access = lines
        .iter()
        .find(|l| l["span"]["id"] == "probe-42" && l["fields"]["status"].is_number())
        .unwrap_or_else(|| panic!("no access log line in {err}"));
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["span"]["path"], "/");
    assert_eq!(access["fields"]["status"], 200);
}

/// Under systemd (`Type=notify`) the pod says READY=1 once it serves and STOPPING=1 when it
/// stops. The SIGTERM is sent the moment READY=1 arrives: the handlers are installed before
/// readiness is announced, so it is caught and the pod exits cleanly (status 0).
#[test]
fn the_pod_notifies_systemd_and_a_sigterm_right_after_ready_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_muttr-pod"))
        .args(pod_args(dir.path(), &[]))
        .env("NOTIFY_SOCKET", &path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 64];
    let n = sock.recv(&mut buf).expect("READY=1 within 30 s");
    assert_eq!(&buf[..n], b"READY=1");
    signal(&child, "TERM");
    let n = sock.recv(&mut buf).expect("STOPPING=1 within 30 s");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let (status, _) = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}

//! HTTPS and WSS with `--tls-cert/--tls-key` (rustls): a client that trusts the pod's
//! certificate gets JSON answers and a WebSocket; a stalled handshake does not block others.
//! The certificate is made by `openssl` (`.ci/run` installs it when missing).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use muttr_node::net::Clock;
use muttr_pod::{AppState, PodConfig, Storage, tls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

fn make_cert(dir: &Path) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .expect("`openssl` is needed to make a test certificate: install the `openssl` package");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn tls_client(
    dir: &Path,
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_pod_serves_https_and_wss() {
    let dir = tempfile::tempdir().unwrap();
    make_cert(dir.path());
    let config =
        tls::server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = tls::TlsListener::new(tcp, config).unwrap();
    let state = AppState::new(
        PodConfig {
            public_host: format!("localhost:{}", addr.port()),
            ..PodConfig::default()
        },
        Storage::open(&dir.path().join("data")).unwrap(),
        None,
        Clock::system(),
        Some(1),
    );
    tokio::spawn(muttr_pod::serve(listener, state, std::future::pending()));

    // A client that connects and never handshakes does not hold up the others.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled.write_all(b"\x16\x03\x01").await.unwrap();

    let stream = tls_client(dir.path(), addr).await;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/aliases/nobody")
        .header("host", "localhost")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
        .await
        .expect("answer over TLS")
        .unwrap();
    assert_eq!(res.status(), 404);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"].is_string());
    // The pod has no seed here: the DHT endpoints say so in JSON (503).
    let req = hyper::Request::get(format!("/messages/{}", "0".repeat(40)))
        .header("host", "localhost")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    assert_eq!(sender.send_request(req).await.unwrap().status(), 503);

    // WSS at the base URI: a bad auth frame is closed with 4401.
    let stream = tls_client(dir.path(), addr).await;
    let url = format!("wss://localhost:{}/", addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    ws.send(Message::Text("not hex".into())).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Close(Some(f))))) => assert_eq!(u16::from(f.code), 4401),
        other => panic!("expected close 4401, got {other:?}"),
    }
    drop(stalled);
}

#[test]
fn unreadable_certificates_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    let e =
        tls::server_config(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).unwrap_err();
    assert!(e.to_string().contains("cert.pem"), "{e}");
    let e = tls::server_config(&dir.path().join("missing.pem"), &dir.path().join("key.pem"))
        .unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

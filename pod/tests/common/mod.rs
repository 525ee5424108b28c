//! Shared helpers of the pod's integration tests: the committed test keys, signed auth texts,
//! an in-process pod with a real seed on loopback (HTTP, or HTTPS with certificates of a
//! private CA made in-process by rcgen), a one-shot request helper, and (from
//! `node/tests/common`) real `muttr-pod` processes.
#![allow(dead_code)]

pub mod pg;
#[path = "../../../node/tests/common/process.rs"]
pub mod process;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use muttr_node::crypto::auth::sign_auth;
use muttr_node::crypto::{Identity, PublicKey, pubkeyhash};
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_pod::{AppState, PodConfig, Storage};
use tower::ServiceExt;

/// A test user: a committed key pair (vectors/pgp/keys).
pub struct User {
    pub identity: Identity,
    pub public: PublicKey,
    pub armored: String,
    pub hash: String,
}

pub fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../vectors/pgp/keys")
}

pub fn user(name: &str) -> User {
    let dir = keys_dir();
    let sec = std::fs::read(dir.join(format!("{name}.sec.asc"))).unwrap();
    let armored = std::fs::read_to_string(dir.join(format!("{name}.pub.asc"))).unwrap();
    User {
        identity: Identity::from_armored(&sec, None).unwrap(),
        public: PublicKey::from_armored(&armored).unwrap(),
        hash: pubkeyhash(&armored),
        armored,
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

static LAST_NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh nonce: now, or one more than the last one handed out, so no two are equal.
pub fn nonce() -> u64 {
    let now = now_ms();
    let mut last = LAST_NONCE.load(Ordering::SeqCst);
    loop {
        let next = now.max(last + 1);
        match LAST_NONCE.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// An auth text signed by `u` as the pubkeyhash identity.
pub fn signed(u: &User, params: &[(&str, &str)]) -> String {
    signed_as(u, "pubkeyhash", &u.hash, nonce(), params)
}

/// An auth text signed by `u` under any identity.
pub fn signed_as(
    u: &User,
    identity_type: &str,
    identity: &str,
    nonce: u64,
    params: &[(&str, &str)],
) -> String {
    sign_auth(
        &u.identity,
        identity,
        identity_type,
        nonce,
        params,
        SystemTime::now(),
    )
    .unwrap()
}

/// A seed on a loopback port, in memory.
pub async fn seed(rng: u64) -> Seed<MemStore> {
    spawn_seed(
        TokioTransport,
        SeedOptions::new("127.0.0.1:0".parse().unwrap(), rng),
        MemStore::new(Quotas::from_config(&muttr_node::Config::default())),
        Clock::system(),
    )
    .await
    .unwrap()
}

/// A pod state with a seed, its database in `dir`.
pub async fn pod_state(dir: &std::path::Path, config: PodConfig) -> (AppState, Seed<MemStore>) {
    let seed = seed(7).await;
    let state = AppState::new(
        config,
        Storage::open(dir).unwrap(),
        Some(seed.handle()),
        Clock::system(),
        Some(1),
    );
    (state, seed)
}

pub fn test_config() -> PodConfig {
    PodConfig {
        public_host: "pod.test".into(),
        ..PodConfig::default()
    }
}

/// The answer to one request.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?} {}", self.status, self.body))
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts an error answer in the P-A7 shape with this status.
    pub fn assert_error(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert!(
            self.content_type().starts_with("application/json"),
            "error must be JSON: {:?}",
            self.headers
        );
        let v = self.json();
        assert!(v["error"].is_string(), "no error field: {}", self.body);
    }
}

pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    content_type: Option<&str>,
    body: impl Into<Body>,
) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    answer(app, req.body(body.into()).unwrap()).await
}

/// Sends `req` to the router and reads the whole answer.
async fn answer(app: &Router, req: Request<Body>) -> Answer {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A bodiless request with these headers.
pub async fn call_with(app: &Router, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    answer(app, req.body(Body::empty()).unwrap()).await
}

pub async fn post_text(app: &Router, uri: &str, body: impl Into<String>) -> Answer {
    call(app, "POST", uri, Some("text/plain"), body.into()).await
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    call(app, "GET", uri, None, Body::empty()).await
}

/// Registers `u` and gives it `alias`.
pub async fn enrol(app: &Router, u: &User, alias: &str) {
    let a = post_text(app, "/", u.armored.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post_text(app, "/aliases", signed(u, &[("alias", alias)])).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A token for `method /inboxes`.
pub async fn token(app: &Router, u: &User, method: &str) -> String {
    let a = post_text(
        app,
        "/tokens",
        signed(u, &[("resource", "/inboxes"), ("method", method)]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["token"]["value"].as_str().unwrap().to_string()
}

/// A pod served over real TCP on loopback.
pub struct LivePod {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    pub seed: Seed<MemStore>,
    pub dir: tempfile::TempDir,
    pub task: tokio::task::JoinHandle<()>,
    /// `http` or `https`.
    pub scheme: &'static str,
}

impl LivePod {
    /// The public host (`127.0.0.1:PORT`, or `localhost:PORT` over HTTPS).
    pub fn host(&self) -> String {
        self.state.config.public_host.clone()
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.host())
    }
}

/// A private CA and a server certificate it signed for `localhost` and `127.0.0.1`, as PEM
/// files: `ca.pem`, `cert.pem`, `key.pem`.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    /// A fresh CA named `name` and a server certificate signed by it.
    pub fn new(name: &str) -> Pki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        server.is_ca = IsCa::ExplicitNoCa;
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Pki { dir }
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }
}

/// The certificate a TLS client trusting `ca` is shown by `addr` now (for `localhost`).
pub async fn served_certificate(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
) -> rustls::pki_types::CertificateDer<'static> {
    let config = muttr_node::trust::client_config(&[ca.to_path_buf()]).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// Starts a pod on a loopback port; its public host is that address.
pub async fn live_pod(config: PodConfig, rng: u64) -> LivePod {
    live_pod_tls(config, rng, None).await
}

/// Starts a pod on a loopback port, over HTTPS with `pki`'s server certificate when given
/// (public host `localhost:PORT`, the name the certificate carries).
pub async fn live_pod_tls(config: PodConfig, rng: u64, pki: Option<&Pki>) -> LivePod {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = PodConfig {
        public_host: match pki {
            Some(_) => format!("localhost:{}", addr.port()),
            None => addr.to_string(),
        },
        ..config
    };
    let seed = seed(rng).await;
    let state = AppState::new(
        config,
        Storage::open(dir.path()).unwrap(),
        Some(seed.handle()),
        Clock::system(),
        Some(rng),
    );
    let s = state.clone();
    let task = match pki {
        Some(pki) => {
            let certs = muttr_pod::tls::Certificates::load(&pki.cert(), &pki.key()).unwrap();
            let tls = muttr_pod::tls::TlsListener::new(listener, certs.server_config()).unwrap();
            tokio::spawn(async move {
                muttr_pod::serve(tls, s, std::future::pending())
                    .await
                    .unwrap();
            })
        }
        None => tokio::spawn(async move {
            muttr_pod::serve(listener, s, std::future::pending())
                .await
                .unwrap();
        }),
    };
    LivePod {
        addr,
        state,
        seed,
        dir,
        task,
        scheme: if pki.is_some() { "https" } else { "http" },
    }
}

/// A plain HTTP client, as an independent implementation would use.
pub async fn http(method: &str, url: &str, body: &str) -> Answer {
    try_http(method, url, body)
        .await
        .unwrap_or_else(|| panic!("{method} {url}: no answer"))
}

/// [`http`], `None` when no answer comes within 10 s (a killed pod).
pub async fn try_http(method: &str, url: &str, body: &str) -> Option<Answer> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "text/plain")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let res = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.ok()?.to_bytes();
    Some(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Registers `u` at a live pod and gives it `alias`.
pub async fn enrol_live(pod: &LivePod, u: &User, alias: &str) {
    let a = http("POST", &pod.url("/"), &u.armored).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = http(
        "POST",
        &pod.url("/aliases"),
        &signed(u, &[("alias", alias)]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

/// A binary of the `muttr-node` package (`muttr`, `muttrd`) from this target directory, built
/// when missing (a pod test has only its own package's binaries in `CARGO_BIN_EXE_*`).
pub fn node_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "muttr-node", "--bin", name])
            .status()
            .unwrap();
        assert!(status.success(), "could not build the {name} binary");
    }
    bin
}

/// Runs `muttr --home HOME ARGS…` (no passphrase, no `RUST_LOG` from the caller).
pub fn muttr_output(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(node_bin("muttr"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("MUTTR_PASSPHRASE")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

/// Runs `muttr --home HOME ARGS…`, asserts it succeeded, and returns its stdout.
pub fn muttr_ok(home: &std::path::Path, args: &[&str]) -> String {
    let out = muttr_output(home, args);
    assert!(
        out.status.success(),
        "muttr {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A `muttr` home with a key, registered at the plain-http pod `pod_host` as `alias`.
pub fn muttr_user(pod_host: &str, alias: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    muttr_ok(home.path(), &["keygen", "--name", alias]);
    let url = format!("http://{pod_host}");
    muttr_ok(home.path(), &["register", "--pod", &url, "--insecure"]);
    muttr_ok(home.path(), &["alias", "add", alias]);
    home
}

/// Two pods on loopback (plain http, federating over http) whose seeds are one DHT.
pub async fn two_pods(rng: u64) -> (LivePod, LivePod) {
    let config = PodConfig {
        insecure_federation: true,
        ..PodConfig::default()
    };
    let pod1 = live_pod(config.clone(), rng).await;
    let pod2 = live_pod(config, rng + 1).await;
    pod2.seed
        .handle()
        .bootstrap(vec![pod1.seed.local_addr()])
        .await
        .unwrap();
    (pod1, pod2)
}

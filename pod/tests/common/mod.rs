//! Shared helpers of the pod's integration tests: the committed test keys, signed auth texts,
//! an in-process pod with a real seed on loopback, and a one-shot request helper.
#![allow(dead_code)]

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

static NONCE: AtomicU64 = AtomicU64::new(0);

/// A fresh nonce: now, plus a counter so two requests in one millisecond differ.
pub fn nonce() -> u64 {
    now_ms() + NONCE.fetch_add(1, Ordering::Relaxed) % 1000
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
    let res = app
        .clone()
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
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

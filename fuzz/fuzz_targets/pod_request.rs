//! The pod's router, driven with requests built from fuzz input: any method, path, media type
//! and body. Invariants: no panic, never a 500, and every error answer is JSON with an
//! `error` field (P-A7).
//!
//! Input layout: byte 0 picks the method, byte 1 the media type, then the path up to the first
//! newline, then the body.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use muttr_node::net::Clock;
use muttr_pod::{AppState, PodConfig, Storage, router};
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    state: AppState,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let state = rt.block_on(async {
            let config = PodConfig {
                public_host: "pod.fuzz".into(),
                ip_rate_per_sec: 1e12,
                ip_burst: 1e12,
                ..PodConfig::default()
            };
            AppState::new(
                config,
                Storage::open(dir.path()).expect("storage"),
                None,
                Clock::starting_at(1_800_000_000_000),
                Some(1),
            )
        });
        World {
            rt,
            state,
            _dir: dir,
        }
    })
}

const METHODS: &[&str] = &["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];
const TYPES: &[Option<&str>] = &[
    None,
    Some("text/plain"),
    Some("application/pgp-keys"),
    Some("application/json"),
    Some("text/plain; charset=utf-8"),
    Some("\u{0}bad"),
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let method = METHODS[data[0] as usize % METHODS.len()];
    let ctype = TYPES[data[1] as usize % TYPES.len()];
    let rest = &data[2..];
    let (path, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let uri = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut req = Request::builder().method(method).uri(uri.as_str());
    if let Some(ct) = ctype {
        req = req.header("content-type", ct);
    }
    let Ok(req) = req.body(Body::from(body.to_vec())) else {
        return; // not a request http can express
    };
    let w = world();
    let app = router(w.state.clone());
    w.rt.block_on(async {
        let res = app.oneshot(req).await.expect("infallible");
        let status = res.status();
        assert!(status.as_u16() != 500, "500 for {method} {uri}");
        if status.as_u16() >= 400 {
            let is_json = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            assert!(is_json, "{status} without JSON for {method} {uri}");
            if method == "HEAD" {
                return; // HEAD answers carry no body (RFC 9110 §9.3.2)
            }
            let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
                .await
                .expect("body");
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON error");
            assert!(v["error"].is_string(), "no error field for {method} {uri}");
        }
    });
});

//! # muttr-pod: the Muttr pod
//!
//! A pod is a "super seed" (whitepaper "Seed-to-Pod Communication", PROFILE §5–§6): a federated
//! keyserver, username-to-key aliasing (`alice@pod`), instant delivery of message keys over
//! WebSocket, playback for offline users, and a door to the DHT for passive seeds — on top of
//! an embedded seed that takes part in the DHT like any other.
//!
//! The crate is a library first: [`router`] builds the `axum::Router` from one [`AppState`],
//! and [`serve`] runs it on any `axum::serve::Listener` (a TCP listener, a TLS listener from
//! [`tls`], or the simulator's) with the timeouts, caps and shutdown deadline of [`server`].
//! The `muttr-pod` binary wires it to the command line.
//!
//! ## Module map
//! | module | what it holds |
//! |---|---|
//! | [`routes`] | one module per resource: identities, messages, aliases, tokens, inboxes |
//! | [`ws`] | WebSocket push at the base URI (P-S1, P-S2) |
//! | [`auth`] | signed auth texts, nonces, `pubkeyhash` / `href` identities (P-A1–P-A4) |
//! | [`tokens`] | single-use tokens for GET/DELETE (P-A6) |
//! | [`federation`] | `alias@host` → key, fetched from other pods (P-A3) |
//! | [`hub`] | fan-out of new inbox entries to WebSocket subscribers, bounded per client |
//! | [`keepalive`] | the pod's seed keeps its users' unpurged messages alive (P-X2) |
//! | [`metrics`] | Prometheus metrics of the pod and its seed (P-X3, `--metrics-listen`) |
//! | [`storage`] | identities, aliases, inbox entries, nonces (P-A9): SQLite, or PostgreSQL shared by replicas |
//! | [`replicas`] | with PostgreSQL: every replica pushes every replica's new entries (P-S2) |
//! | [`body`] | the text-body extractor: media type (415), size (413), UTF-8 (400) |
//! | [`ratelimit`] | token buckets per IP and per identity (429) |
//! | [`server`] | the HTTP/1.1 server: timeouts, connection caps, shutdown with a deadline |
//! | [`client_ip`] | the client's address, through trusted reverse proxies |
//! | [`error`] | the one error type, rendered `{"error": …}` (P-A7) |
//! | [`config`] | every limit of a pod, loadable from TOML |
//! | [`openapi`] | the OpenAPI 3 document of the API, served at `/openapi.json` |
//! | [`tls`] | a rustls listener for `--tls-cert/--tls-key`, reloaded on SIGHUP |

pub mod auth;
pub mod body;
pub mod client_ip;
pub mod config;
pub mod error;
pub mod federation;
pub mod hub;
pub mod keepalive;
pub mod metrics;
pub mod openapi;
pub mod ratelimit;
pub mod replicas;
pub mod routes;
pub mod server;
pub mod storage;
pub mod tls;
pub mod tokens;
pub mod ws;

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use muttr_node::SeedHandle;
use muttr_node::net::Clock;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::sync::watch;

pub use config::PodConfig;
pub use error::ApiError;
pub use server::serve;
pub use storage::Storage;

use federation::{HttpFetcher, KeyFetcher};

/// Everything a request handler needs, shared by all of them.
pub struct Inner {
    /// Limits and policies.
    pub config: PodConfig,
    /// Identities, aliases, inbox entries, nonces.
    pub storage: Storage,
    /// The embedded seed (`POST /messages`, `GET /messages/:hash`); `None` answers 503 there.
    pub seed: Option<SeedHandle>,
    /// The wall clock (injected: virtual in simulation and tests).
    pub clock: Clock,
    /// WebSocket subscribers.
    pub hub: hub::Hub,
    /// Wakes the keep-alive task (P-X2).
    pub keepalive: keepalive::KeepAlive,
    /// Request counters and histograms (P-X3).
    pub metrics: metrics::PodMetrics,
    /// Outstanding tokens.
    pub tokens: tokens::TokenStore,
    /// How other pods' keys are fetched.
    pub fetcher: Arc<dyn KeyFetcher>,
    /// Per-IP limit.
    pub ip_limiter: ratelimit::RateLimiter,
    /// Per-identity limit (authenticated requests).
    pub identity_limiter: ratelimit::RateLimiter,
    /// WebSocket connections open now (bounded by `ws_total`).
    pub ws_connections: std::sync::atomic::AtomicUsize,
    /// HTTP connections open now (bounded by `max_connections`, `max_connections_per_ip`).
    pub connections: Arc<server::Connections>,
    /// When this state was made (the pod started), Unix ms: the status page's uptime.
    pub started_ms: u64,
    /// Tells WebSocket sessions the pod is shutting down.
    pub shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    rng: Mutex<ChaCha20Rng>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("config", &self.config)
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// The shared state of a pod (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// A pod's state, fetching other pods' keys over HTTP(S) trusting the default roots and
    /// `config.ca_files`. `rng_seed` seeds the token generator: `None` draws the seed from the
    /// operating system (production); `Some` makes tokens reproducible (simulation, tests).
    /// Must be called inside the tokio runtime that serves the pod (the clock reads its time).
    pub fn new(
        config: PodConfig,
        storage: Storage,
        seed: Option<SeedHandle>,
        clock: Clock,
        rng_seed: Option<u64>,
    ) -> AppState {
        // Trusting the config's `ca_files` too. A file that cannot be used leaves the default
        // roots only — trusting less, never more — and says so; `muttr-pod` checks the files
        // before it starts, so there a bad file is a start-up error.
        let fetcher = if config.ca_files.is_empty() {
            HttpFetcher::new()
        } else {
            HttpFetcher::trusting(&config.ca_files).unwrap_or_else(|e| {
                tracing::error!(error = %e, "ca_files not usable: trusting the default roots only");
                HttpFetcher::new()
            })
        };
        AppState::with_fetcher(config, storage, seed, clock, rng_seed, Arc::new(fetcher))
    }

    /// [`AppState::new`] with another way of fetching other pods' keys (simulation).
    pub fn with_fetcher(
        config: PodConfig,
        storage: Storage,
        seed: Option<SeedHandle>,
        clock: Clock,
        rng_seed: Option<u64>,
        fetcher: Arc<dyn KeyFetcher>,
    ) -> AppState {
        let rng = match rng_seed {
            Some(s) => ChaCha20Rng::seed_from_u64(s),
            None => ChaCha20Rng::from_os_rng(),
        };
        let (shutdown_tx, shutdown) = watch::channel(false);
        AppState(Arc::new(Inner {
            hub: hub::Hub::new(config.ws_queue),
            keepalive: keepalive::KeepAlive::default(),
            metrics: metrics::PodMetrics::default(),
            tokens: tokens::TokenStore::new(
                u64::try_from(config.token_ttl.as_millis()).unwrap_or(u64::MAX),
            ),
            ip_limiter: ratelimit::RateLimiter::new(config.ip_rate_per_sec, config.ip_burst),
            identity_limiter: ratelimit::RateLimiter::new(
                config.identity_rate_per_sec,
                config.identity_burst,
            ),
            config,
            storage,
            seed,
            clock,
            fetcher,
            ws_connections: std::sync::atomic::AtomicUsize::new(0),
            connections: Arc::default(),
            started_ms: clock.now_ms(),
            shutdown,
            shutdown_tx,
            rng: Mutex::new(rng),
        }))
    }

    /// A fresh token value: `token_bytes` random bytes as lowercase hex (P-A6).
    pub fn random_token(&self) -> String {
        let mut bytes = vec![0u8; self.config.token_bytes.max(16)];
        self.rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .fill_bytes(&mut bytes);
        hex::encode(bytes)
    }

    /// Closes every WebSocket session (going away); call before the server stops.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Every route of the API: (method, path in axum syntax). The OpenAPI document must list
/// exactly these (checked by a test).
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("POST", "/"),
    ("POST", "/messages"),
    ("GET", "/messages/{hash}"),
    ("GET", "/aliases/{alias}"),
    ("POST", "/aliases"),
    ("POST", "/tokens"),
    ("GET", "/inboxes"),
    ("DELETE", "/inboxes"),
    ("POST", "/inboxes/{alias}"),
    ("GET", "/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

/// The pod's HTTP API.
///
/// Body size is enforced by [`body::TextBody`] (the only body extractor), which answers 413
/// after draining; there is deliberately no `DefaultBodyLimit` layer, which nothing would read.
///
/// Around every route, from the outside in: the JSON error shape, a request id
/// (`x-request-id`, taken from the client or made, echoed in the answer and in the trace
/// span), a trace span per request, a panic in a handler answered 500 instead of dropping the
/// connection, the request timeout (408), the per-IP rate limit, and the metrics.
pub fn router(state: AppState) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    let request_timeout = state.config.request_timeout;
    Router::new()
        .route("/", get(ws::upgrade).post(routes::identities::register))
        .route("/messages", post(routes::messages::store))
        .route("/messages/{hash}", get(routes::messages::fetch))
        .route("/aliases", post(routes::aliases::create))
        .route("/aliases/{alias}", get(routes::aliases::get))
        .route("/tokens", post(routes::tokens::create))
        .route(
            "/inboxes",
            get(routes::inboxes::playback).delete(routes::inboxes::purge),
        )
        .route("/inboxes/{alias}", post(routes::inboxes::notify))
        .route("/openapi.json", get(openapi::serve))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), limit_ip))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panicked,
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    tower_http::trace::DefaultOnResponse::new()
                        .level(tracing::Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::map_response(error::json_errors))
        .with_state(state)
}

/// The trace span of a request: method, path (without the query: it carries signatures and
/// tokens) and request id. With the response event at info level, this is the access log:
/// one line per request with method, path, request id, status and latency.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), path = req.uri().path(), id)
}

/// Per-IP rate limit (P-A7 429). The client address is the [`client_ip::ClientIp`] that
/// [`serve`] sets (the peer, or the client behind a trusted proxy); requests without it
/// (in-process tests) share one bucket.
async fn limit_ip(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ip = req.extensions().get::<client_ip::ClientIp>().map(|c| c.0);
    let exempt = state.config.exempt_loopback && ip.is_some_and(|ip| ip.is_loopback());
    if !exempt {
        let key = ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        if !state.ip_limiter.allow(&key, state.clock.now_ms()) {
            return ApiError::too_many("too many requests from this address").into_response();
        }
    }
    next.run(req).await
}

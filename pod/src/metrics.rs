//! The pod's metrics (PROFILE P-X3), served with its seed's on `--metrics-listen` by
//! [`muttr_node::metrics::serve`].
//!
//! Counted as requests pass ([`track`], a middleware on every route): requests by route
//! template, method and status, and a latency histogram per route. Read at scrape time
//! ([`render`]): WebSocket connections, identities, aliases, inbox entries, values kept alive
//! (P-X2), pushes and rate-limit refusals, SQLite write latency by operation, and the
//! embedded seed's counters
//! (`muttr_seed_*`). Names start with `muttr_pod_`.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use muttr_node::metrics::gauge;

use crate::AppState;

type Labels = Vec<(String, String)>;

/// Latency buckets in seconds: 1 ms to 30 s (a `POST /messages` waits for the DHT).
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

fn histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

/// Counters a pod keeps while serving (cheap to clone: each is shared).
#[derive(Debug, Clone)]
pub struct PodMetrics {
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// Inbox entries pushed to WebSocket sessions.
    pub pushes: Counter,
    /// Requests refused by a rate limit (429).
    pub rate_limited: Counter,
    /// Connections refused at accept, by cap (`total`, `per_ip`).
    refused: Family<Labels, Counter>,
    /// Connections closed by a timer, by kind (`header`, `keep_alive`).
    timed_out: Family<Labels, Counter>,
    /// Connections still open at the shutdown deadline, dropped.
    pub dropped_at_shutdown: Counter,
}

impl PodMetrics {
    /// Counts a connection refused by a cap.
    pub fn refused(&self, why: crate::server::Refusal) {
        self.refused
            .get_or_create(&vec![("cap".into(), why.label().into())])
            .inc();
    }
    /// Counts a connection closed by a timer.
    pub fn timed_out(&self, kind: &str) {
        self.timed_out
            .get_or_create(&vec![("timer".into(), kind.into())])
            .inc();
    }
}

impl Default for PodMetrics {
    fn default() -> Self {
        PodMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(histogram),
            pushes: Counter::default(),
            rate_limited: Counter::default(),
            refused: Family::default(),
            timed_out: Family::default(),
            dropped_at_shutdown: Counter::default(),
        }
    }
}

/// Middleware: counts each request by route template (not the raw path, so aliases and hashes
/// do not make a label each), method and status, and times it.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().as_str().to_string();
    let start = tokio::time::Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let m = &state.metrics;
    m.requests
        .get_or_create(&vec![
            ("route".into(), route.clone()),
            ("method".into(), method),
            ("status".into(), resp.status().as_u16().to_string()),
        ])
        .inc();
    m.latency
        .get_or_create(&vec![("route".into(), route)])
        .observe(elapsed);
    if resp.status() == axum::http::StatusCode::TOO_MANY_REQUESTS {
        m.rate_limited.inc();
    }
    resp
}

/// The exposition text of a pod and its seed.
pub async fn render(state: &AppState) -> Result<String, String> {
    let mut registry = Registry::with_prefix("muttr");
    {
        let r = registry.sub_registry_with_prefix("pod");
        let m = &state.metrics;
        r.register(
            "http_requests",
            "HTTP requests, by route, method and status",
            m.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "HTTP request latency, by route",
            m.latency.clone(),
        );
        r.register(
            "pushes",
            "Inbox entries pushed over WebSocket (P-S2)",
            m.pushes.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by a rate limit (429)",
            m.rate_limited.clone(),
        );
        r.register(
            "connections_refused",
            "Connections refused at accept because a cap was reached (503), by cap",
            m.refused.clone(),
        );
        r.register(
            "connections_timed_out",
            "Connections closed by the header or keep-alive timer, by timer",
            m.timed_out.clone(),
        );
        r.register(
            "connections_dropped_at_shutdown",
            "Connections still open at the shutdown deadline",
            m.dropped_at_shutdown.clone(),
        );
        gauge(
            r,
            "http_connections",
            "HTTP connections open",
            state.connections.open(),
        );
        let ws = state
            .ws_connections
            .load(std::sync::atomic::Ordering::Relaxed);
        gauge(r, "websocket_connections", "WebSocket connections open", ws);
        let counts = state.storage.counts().await.map_err(|e| e.to_string())?;
        gauge(r, "identities", "Registered identities", counts.identities);
        gauge(r, "aliases", "Aliases", counts.aliases);
        gauge(
            r,
            "inbox_entries",
            "Inbox entries not purged",
            counts.inbox_entries,
        );
        gauge(
            r,
            "values_kept_alive",
            "Values the pod keeps alive (P-X2)",
            counts.kept_alive,
        );
        r.register(
            "db_write_duration_seconds",
            "SQLite writes, from holding the connection to the end of the commit, by operation",
            state.storage.write_latency().clone(),
        );
    }
    if let Some(seed) = &state.seed {
        let stats = seed.stats().await.map_err(|e| format!("seed: {e}"))?;
        muttr_node::metrics::register_seed(&mut registry, &stats);
    }
    Ok(muttr_node::metrics::render(&registry))
}

/// The [`muttr_node::metrics::Render`] of a pod.
pub fn pod_render(state: AppState) -> muttr_node::metrics::Render {
    std::sync::Arc::new(move || {
        let state = state.clone();
        Box::pin(async move { render(&state).await })
    })
}

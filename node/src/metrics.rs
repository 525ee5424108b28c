//! Metrics in the Prometheus text format (PROFILE P-X3), served on a listener of their own
//! (`--metrics-listen ADDR`), so that the public API and the operator's scrape port are apart.
//!
//! The seed's counters live in the sans-IO core ([`crate::kad::Stats`]); at each scrape a
//! snapshot ([`crate::driver::SeedStats`]) is taken through the seed's command channel and
//! rendered by [`prometheus_client`] into a fresh registry ([`seed_registry`]). The exposition
//! is OpenMetrics text (`application/openmetrics-text; version=1.0.0`), which Prometheus and
//! every compatible scraper read; all names start with `muttr_`.
//!
//! [`serve`] is the small HTTP/1 server both binaries use: `GET /metrics` answers the text,
//! anything else 404 with a JSON error, like the pod's API.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode, header};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::driver::SeedStats;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Labels of one label name, e.g. `type="PING"`.
type Labels = Vec<(String, String)>;

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c = Counter::<u64>::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// Registers a gauge reading `value` (a count; saturates at `i64::MAX`), for this module and
/// the pod's exposition.
pub fn gauge(registry: &mut Registry, name: &str, help: &str, value: impl TryInto<i64>) {
    let g = Gauge::<i64>::default();
    g.set(value.try_into().unwrap_or(i64::MAX));
    registry.register(name, help, g);
}

fn family<'a>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, &'a u64)>,
) {
    let f = Family::<Labels, Counter<u64>>::default();
    for (k, v) in values {
        f.get_or_create(&vec![(label.to_string(), k.to_string())])
            .inc_by(*v);
    }
    registry.register(name, help, f);
}

/// A histogram as the core counted it, encoded as a Prometheus histogram; bounds and sum are
/// multiplied by `scale` (0.001 turns the core's milliseconds into seconds).
#[derive(Debug)]
struct HistogramSnapshot(crate::kad::histogram::Histogram, f64);

impl prometheus_client::metrics::TypedMetric for HistogramSnapshot {
    const TYPE: prometheus_client::metrics::MetricType =
        prometheus_client::metrics::MetricType::Histogram;
}

impl prometheus_client::encoding::EncodeMetric for HistogramSnapshot {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    ) -> Result<(), std::fmt::Error> {
        let scale = self.1;
        let buckets: Vec<(f64, u64)> = self
            .0
            .buckets()
            .into_iter()
            .map(|(bound, n)| (bound * scale, n))
            .collect();
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.0.sum() as f64 * scale,
            self.0.count(),
            &buckets,
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// Registers a seed's snapshot under `muttr_seed_*` in `registry` (the pod adds its own seed's
/// to its registry the same way).
pub fn register_seed(registry: &mut Registry, s: &SeedStats) {
    let st = &s.stats;
    let mut r = registry.sub_registry_with_prefix("seed");
    let r = &mut r;
    counter(
        r,
        "datagrams_received",
        "Datagrams received",
        st.datagrams_in,
    );
    counter(r, "datagrams_sent", "Datagrams sent", st.datagrams_out);
    counter(r, "received_bytes", "Bytes received", st.bytes_in);
    counter(r, "sent_bytes", "Bytes sent", st.bytes_out);
    family(
        r,
        "datagrams_dropped",
        "Datagrams dropped, by reason (P-W6, rate limit, unmatched reply)",
        "reason",
        st.dropped.iter().map(|(k, v)| (*k, v)),
    );
    family(
        r,
        "requests_answered",
        "Requests answered, by message type",
        "type",
        st.requests.iter().map(|(k, v)| (*k, v)),
    );
    counter(
        r,
        "stores_accepted",
        "STOREs accepted (new values)",
        st.stores_accepted,
    );
    family(
        r,
        "stores_refused",
        "STOREs refused, by PROFILE rule",
        "rule",
        st.stores_refused.iter().map(|(k, v)| (*k, v)),
    );
    counter(
        r,
        "spoofed_senders",
        "Senders not added because their claimed address was not the source (P-W7)",
        st.spoofed_senders,
    );
    counter(
        r,
        "request_timeouts",
        "Requests that timed out",
        st.timeouts,
    );
    counter(
        r,
        "lookup_stalls",
        "Lookup requests that stalled",
        st.lookup_stalls,
    );
    counter(
        r,
        "verification_pings",
        "PINGs sent to check a FIND_VALUE requester's address",
        st.verification_pings,
    );
    counter(
        r,
        "lookups_started",
        "Iterative lookups started",
        st.lookups_started,
    );
    counter(
        r,
        "lookups_finished",
        "Iterative lookups finished",
        st.lookups_finished,
    );
    r.register(
        "lookup_hops",
        "Hops of each finished iterative lookup",
        HistogramSnapshot(st.lookup_hops.clone(), 1.0),
    );
    r.register_with_unit(
        "lookup_duration",
        "Duration of each finished iterative lookup",
        prometheus_client::registry::Unit::Seconds,
        HistogramSnapshot(st.lookup_ms.clone(), 0.001),
    );
    counter(
        r,
        "values_expired",
        "Values removed by expiry (P-K2)",
        st.expired,
    );
    gauge(
        r,
        "routing_table_contacts",
        "Contacts in the routing table",
        s.table_size,
    );
    gauge(r, "values_held", "Values held", s.values_held);
    gauge(
        r,
        "requests_in_flight",
        "Requests waiting for a reply",
        s.pending_requests,
    );
}

/// A registry with the prefix `muttr` holding one seed's snapshot.
pub fn seed_registry(s: &SeedStats) -> Registry {
    let mut registry = Registry::with_prefix("muttr");
    register_seed(&mut registry, s);
    registry
}

/// Renders a registry as exposition text.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

/// What produces the exposition at each scrape.
pub type Render =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync>;

/// Serves `GET /metrics` on `listener` until the task is dropped. Each connection is served
/// with a 10 s header-read timeout, so a stalled scraper cannot hold it.
pub async fn serve(listener: tokio::net::TcpListener, render: Render) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(answer(req, render).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10));
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = builder.serve_connection(io, service).await {
                tracing::debug!(error = %e, "metrics connection");
            }
        });
    }
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

async fn answer(req: Request<hyper::body::Incoming>, render: Render) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return json_error(StatusCode::NOT_FOUND, "only /metrics is served here");
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return json_error(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics");
    }
    match render().await {
        Ok(text) => {
            let mut resp = Response::new(Full::new(Bytes::from(text)));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            resp
        }
        Err(e) => json_error(StatusCode::SERVICE_UNAVAILABLE, &e),
    }
}

/// The [`Render`] of a lone seed (`muttr-seed --metrics-listen`).
pub fn seed_render(seed: crate::SeedHandle) -> Render {
    Arc::new(move || {
        let seed = seed.clone();
        Box::pin(async move {
            let stats = seed.stats().await.map_err(|e| e.to_string())?;
            Ok(render(&seed_registry(&stats)))
        })
    })
}

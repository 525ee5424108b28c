//! [`serve`]: the pod's HTTP/1.1 server — an accept loop over any listener (TCP, TLS, the
//! simulator's), hyper's connection state machine with timers, connection caps, and a graceful
//! shutdown with a deadline.
//!
//! What one client can hold, and for how long (every limit a [`PodConfig`] field):
//! - **a connection that sends nothing or half a request head**: closed by hyper's header timer
//!   (`header_timeout`, 10 s), or earlier by the keep-alive watchdog below;
//! - **a kept-alive connection between requests**: closed after `keep_alive_timeout` (5 s)
//!   of silence with no request in flight;
//! - **a body that trickles**: 408 after `body_timeout` ([`crate::body`]);
//! - **a request that takes too long in all**: 408 after `request_timeout` (tower-http);
//! - **oversize heads**: 431 (`max_header_bytes`);
//! - **many connections**: `max_connections` in all and `max_connections_per_ip` per client
//!   address; one more gets a one-line 503 JSON answer and is closed.
//!
//! Every such close is logged at debug level and none panics. On shutdown the loop stops
//! accepting, WebSocket sessions are closed with 1001 (going away), connections with no
//! request in flight (idle, or stalled in the middle of a head) are closed at once, and the
//! others are told to finish their request and close; whatever is still open after
//! `shutdown_timeout` (15 s) is dropped, and the database is checkpointed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::Service;

use crate::client_ip::{ClientIp, client_ip};
use crate::config::PodConfig;
use crate::{AppState, keepalive, router};

/// How long a refused connection is given to take its 503 before it is dropped.
const REFUSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer to a connection over a cap: a complete HTTP/1.1 response, then close.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
connection: close\r\nretry-after: 1\r\ncontent-length: 51\r\n\r\n\
{\"error\":\"too many connections, try again shortly\"}";

/// Open HTTP connections, in all and per client address, against the caps of [`PodConfig`].
#[derive(Debug, Default)]
pub struct Connections {
    open: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are open.
    Total,
    /// `max_connections_per_ip` are open from this address.
    PerIp,
}

impl Refusal {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerIp => "per_ip",
        }
    }
}

impl Connections {
    /// HTTP connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Takes a slot for a connection from `ip` (`None`: exempt from the per-IP cap), or
    /// says which cap is full. The slot is given back when the guard drops.
    pub fn admit(
        self: &Arc<Self>,
        config: &PodConfig,
        ip: Option<IpAddr>,
    ) -> Result<ConnectionGuard, Refusal> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= config.max_connections {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        if let Some(ip) = ip {
            let mut map = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let n = map.entry(ip).or_default();
            if *n >= config.max_connections_per_ip {
                drop(map);
                self.open.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerIp);
            }
            *n += 1;
        }
        Ok(ConnectionGuard {
            connections: self.clone(),
            ip,
        })
    }
}

/// A connection's slot; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnectionGuard {
    connections: Arc<Connections>,
    ip: Option<IpAddr>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(ip) = self.ip {
            let mut map = self
                .connections
                .per_ip
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// When a connection last moved a byte, and how many of its requests are being answered.
#[derive(Debug)]
struct Activity {
    base: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }
    fn touch(&self) {
        let ms = self.base.elapsed().as_millis() as u64;
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.base + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }
    /// Whether the connection has been idle — no request in flight, no byte moved — for
    /// `timeout` at `now`; if not, when to look again (always after `now`: a request in flight
    /// for longer than `timeout` must not make the watchdog spin).
    fn idle_check(&self, timeout: Duration, now: Instant) -> Result<(), Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Err(now + timeout);
        }
        let due = self.last() + timeout;
        if due <= now { Ok(()) } else { Err(due) }
    }

    /// Resolves once the connection has had no request in flight and moved no byte for
    /// `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        while let Err(next) = self.idle_check(timeout, Instant::now()) {
            tokio::time::sleep_until(next).await;
        }
    }
}

/// Marks a request in flight for as long as it lives (also when its future is dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Busy {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream that records when it last moved bytes.
struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's HTTP/1.1 settings from the pod's config.
fn http1(config: &PodConfig) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .keep_alive(true)
        .max_header_size(config.max_header_bytes.max(1024))
        .max_buf_size(config.max_header_bytes.max(8192) + 8192);
    b
}

/// Serves the pod on `listener` until `shutdown` resolves, then shuts down within
/// `shutdown_timeout` (see the module docs). The keep-alive task of P-X2
/// ([`keepalive::run`]) runs alongside.
pub async fn serve<L, F>(listener: L, state: AppState, shutdown: F) -> io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    F: Future<Output = ()> + Send + 'static,
{
    serve_app(listener, router(state.clone()), state, shutdown).await
}

/// [`serve`] with another router built on [`crate::router`] of `state` (a test wrapping it
/// in a deliberately broken layer, an operator adding routes).
pub async fn serve_app<L, F>(
    mut listener: L,
    app: axum::Router,
    state: AppState,
    shutdown: F,
) -> io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    F: Future<Output = ()> + Send + 'static,
{
    let builder = http1(&state.config);
    let mut tasks = JoinSet::new();
    // The keep-alive task (P-X2) and, with PostgreSQL, the push of other replicas' entries.
    let keepalive = futures::future::join(
        keepalive::run(state.clone()),
        crate::replicas::run(state.clone()),
    );
    tokio::pin!(shutdown, keepalive);
    let mut keepalive_done = false;
    // Biased: the same order every time (the simulator replays runs byte for byte); the stop
    // first, so a flood of connections cannot delay it.
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            (io, peer) = listener.accept() => {
                let peer = SocketAddr::new(muttr_node::id::canonical_ip(peer.ip()), peer.port());
                let exempt = state.config.is_trusted_proxy(peer.ip())
                    || (state.config.exempt_loopback && peer.ip().is_loopback());
                let guard = match state
                    .connections
                    .admit(&state.config, (!exempt).then_some(peer.ip()))
                {
                    Ok(g) => g,
                    Err(why) => {
                        tracing::debug!(%peer, cap = why.label(), "connection refused: cap reached");
                        state.metrics.refused(why);
                        tasks.spawn(refuse(io));
                        continue;
                    }
                };
                tasks.spawn(connection(
                    io,
                    peer,
                    guard,
                    app.clone(),
                    state.clone(),
                    builder.clone(),
                    state.shutdown.clone(),
                ));
            }
            _ = &mut keepalive, if !keepalive_done => keepalive_done = true,
        }
    }
    drop(listener);
    let deadline = Instant::now() + state.config.shutdown_timeout;
    tracing::info!(
        connections = state.connections.open(),
        websockets = state.ws_connections.load(Ordering::Relaxed),
        "shutting down: no new connections; finishing requests in flight"
    );
    // One signal for WebSocket sessions (close 1001) and HTTP connections (finish, close).
    state.begin_shutdown();
    let drained = tokio::time::timeout_at(deadline, async {
        while tasks.join_next().await.is_some() {}
        while state.ws_connections.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            websockets = state.ws_connections.load(Ordering::Relaxed),
            "shutdown deadline reached: dropping what is still open"
        );
        state.metrics.dropped_at_shutdown.inc_by(tasks.len() as u64);
        tasks.shutdown().await;
    }
    if let Err(e) = state.storage.checkpoint() {
        tracing::warn!(error = %e, "database checkpoint at shutdown failed");
    }
    Ok(())
}

/// Answers 503 to a connection over a cap and closes it.
async fn refuse<S: AsyncWrite + Unpin>(mut io: S) {
    let _ = tokio::time::timeout(REFUSE_WRITE_TIMEOUT, async {
        io.write_all(REFUSAL).await?;
        io.shutdown().await
    })
    .await;
}

/// Serves one connection until it closes, times out, or the pod stops.
async fn connection<S>(
    io: S,
    peer: SocketAddr,
    guard: ConnectionGuard,
    app: axum::Router,
    state: AppState,
    builder: hyper::server::conn::http1::Builder,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _guard = guard;
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        inner: io,
        activity: activity.clone(),
    });
    let service = {
        let activity = activity.clone();
        let state = state.clone();
        hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let busy = Busy::new(activity.clone());
            let mut app = app.clone();
            let ip = client_ip(&state.config, peer.ip(), req.headers());
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(ClientIp(ip));
            async move {
                let response = app.call(req).await;
                drop(busy);
                response
            }
        })
    };
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            r = conn.as_mut() => {
                if let Err(e) = r {
                    if e.is_timeout() {
                        state.metrics.timed_out("header");
                    }
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            _ = stop.changed(), if !closing => {
                // No request in flight (idle, or half a head that may never complete):
                // nothing to finish, close now. Otherwise let the request finish.
                if activity.in_flight.load(Ordering::Relaxed) == 0 {
                    tracing::debug!(%peer, "shutdown: closing a connection with no request");
                    return;
                }
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(state.config.keep_alive_timeout), if !closing => {
                tracing::debug!(%peer, "keep-alive timeout: closing an idle connection");
                state.metrics.timed_out("keep_alive");
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_all_and_free_on_drop() {
        let config = PodConfig {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..PodConfig::default()
        };
        let c = Arc::new(Connections::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = c.admit(&config, Some(a)).unwrap();
        let _a2 = c.admit(&config, Some(a)).unwrap();
        assert_eq!(c.admit(&config, Some(a)).unwrap_err(), Refusal::PerIp);
        let _b1 = c.admit(&config, Some(b)).unwrap();
        assert_eq!(c.open(), 3);
        assert_eq!(c.admit(&config, None).unwrap_err(), Refusal::Total);
        drop(a1);
        assert_eq!(c.open(), 2);
        let _a3 = c.admit(&config, Some(a)).unwrap();
        assert_eq!(c.admit(&config, Some(b)).unwrap_err(), Refusal::Total);
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_watchdog_waits_for_requests_in_flight_without_spinning() {
        let t = Duration::from_secs(5);
        let a = Arc::new(Activity::new());
        let start = Instant::now();
        assert_eq!(a.idle_check(t, start), Err(start + t));
        assert_eq!(a.idle_check(t, start + t), Ok(()));
        // A request in flight for much longer than the timeout: the next look is always
        // ahead of now.
        let busy = Busy::new(a.clone());
        let late = start + 10 * t;
        assert_eq!(a.idle_check(t, late), Err(late + t));
        // Its end counts as activity: idle again only `timeout` after it.
        tokio::time::advance(10 * t).await;
        drop(busy);
        let now = Instant::now();
        assert!(matches!(a.idle_check(t, now), Err(d) if d > now));
        assert_eq!(a.idle_check(t, now + t), Ok(()));
        // And the future itself completes once idle.
        tokio::time::timeout(2 * t, a.idle_for(t)).await.unwrap();
    }

    #[test]
    fn the_refusal_is_a_complete_json_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].is_string());
    }
}

//! Simulated TCP: an `axum::serve::Listener` for the unchanged pod server and a client
//! [`Dialer`] for the unchanged client library, over turmoil-net's TCP.
//!
//! Same rule as [`crate::net`]: turmoil-net finds sockets in the *current* host's kernel, and
//! axum and hyper poll connections from tasks they spawn themselves with plain `tokio::spawn`.
//! So every listener and stream carries its [`HostId`] and makes it current around each call —
//! accept, connect, every poll of read/write/shutdown, and drop (closing in another host's
//! kernel would close an innocent socket there). A write, shutdown or close rings the fabric's
//! doorbell: turmoil-net cuts the send buffer into segments when the fabric drains the host.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use muttr_node::client::Dialer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use turmoil_net::HostId;
use turmoil_net::shim::tokio::net::{TcpListener, TcpStream};

/// A future run with `host` current on every poll *and* when dropped (a cancelled connect
/// closes the socket it opened).
struct Scoped<F> {
    host: HostId,
    fut: Option<Pin<Box<F>>>,
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        turmoil_net::set_current(self.host);
        match self.fut.as_mut() {
            Some(f) => f.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

impl<F> Drop for Scoped<F> {
    fn drop(&mut self) {
        if let Some(f) = self.fut.take() {
            turmoil_net::set_current(self.host);
            drop(f);
        }
    }
}

fn scoped<F: Future>(host: HostId, fut: F) -> Scoped<F> {
    Scoped {
        host,
        fut: Some(Box::pin(fut)),
    }
}

/// A TCP listener on a simulated host, usable by `axum::serve`.
#[derive(Debug)]
pub struct SimListener {
    host: HostId,
    inner: Option<TcpListener>,
    doorbell: Arc<Notify>,
}

impl SimListener {
    /// Binds `addr` on `host`. turmoil-net keeps a crashed server's port busy for a while
    /// (no `SO_REUSEADDR`), so a failed bind is retried every 100 ms for up to `retry_for`.
    pub async fn bind(
        host: HostId,
        addr: SocketAddr,
        doorbell: Arc<Notify>,
        retry_for: Duration,
    ) -> io::Result<SimListener> {
        let until = tokio::time::Instant::now() + retry_for;
        loop {
            match scoped(host, TcpListener::bind(addr)).await {
                Ok(inner) => {
                    return Ok(SimListener {
                        host,
                        inner: Some(inner),
                        doorbell,
                    });
                }
                Err(e) if tokio::time::Instant::now() >= until => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

impl Drop for SimListener {
    fn drop(&mut self) {
        if let Some(l) = self.inner.take() {
            turmoil_net::set_current(self.host);
            drop(l);
            self.doorbell.notify_one();
        }
    }
}

impl axum::serve::Listener for SimListener {
    type Io = SimStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (SimStream, SocketAddr) {
        let host = self.host;
        loop {
            let r = poll_fn(|cx| {
                turmoil_net::set_current(host);
                match self.inner.as_ref() {
                    Some(l) => l.poll_accept(cx),
                    None => Poll::Pending,
                }
            })
            .await;
            match r {
                Ok((s, peer)) => {
                    // The SYN-ACK is already queued.
                    self.doorbell.notify_one();
                    return (SimStream::new(host, s, self.doorbell.clone()), peer);
                }
                // Like axum's own listener: an accept error is transient; wait and retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        turmoil_net::set_current(self.host);
        self.inner
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "listener closed"))?
            .local_addr()
    }
}

/// A TCP connection end on a simulated host.
#[derive(Debug)]
pub struct SimStream {
    host: HostId,
    inner: Option<TcpStream>,
    doorbell: Arc<Notify>,
}

impl SimStream {
    fn new(host: HostId, inner: TcpStream, doorbell: Arc<Notify>) -> SimStream {
        SimStream {
            host,
            inner: Some(inner),
            doorbell,
        }
    }

    fn with<T>(
        &mut self,
        f: impl FnOnce(Pin<&mut TcpStream>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        turmoil_net::set_current(self.host);
        match self.inner.as_mut() {
            Some(s) => f(Pin::new(s)),
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "stream closed",
            ))),
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut().with(|s| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.with(|s| s.poll_write(cx, buf));
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.doorbell.notify_one();
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with(|s| s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let r = this.with(|s| s.poll_shutdown(cx));
        this.doorbell.notify_one();
        r
    }
}

impl Drop for SimStream {
    fn drop(&mut self) {
        if let Some(s) = self.inner.take() {
            turmoil_net::set_current(self.host);
            drop(s);
            self.doorbell.notify_one();
        }
    }
}

/// The client library's [`Dialer`] on a simulated host: `host` must be a literal IPv4 address
/// (simulated pods are named by address, see [`crate::fabric::host_ip`]).
#[derive(Debug, Clone)]
pub struct SimDialer {
    host: HostId,
    doorbell: Arc<Notify>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl SimDialer {
    /// A dialer whose connections start from `host`.
    pub fn new(host: HostId, doorbell: Arc<Notify>) -> SimDialer {
        SimDialer {
            host,
            doorbell,
            tls: None,
        }
    }

    /// The same dialer, its `https://` connections trusting `tls` (the run's CA).
    pub fn with_tls(mut self, tls: Option<Arc<rustls::ClientConfig>>) -> SimDialer {
        self.tls = tls;
        self
    }
}

impl Dialer for SimDialer {
    type Stream = SimStream;

    fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .clone()
            .unwrap_or_else(muttr_node::trust::default_config)
    }

    async fn dial(&self, host: &str, port: u16) -> io::Result<SimStream> {
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("simulated hosts are named by address, not {host:?}"),
                )
            })?;
        let bell = self.doorbell.clone();
        let connect = async move {
            let fut = TcpStream::connect(SocketAddr::new(ip, port));
            let mut fut = std::pin::pin!(fut);
            let mut rang = false;
            poll_fn(|cx| {
                let r = fut.as_mut().poll(cx);
                // The SYN is queued on the first poll: let the fabric carry it.
                if !rang {
                    rang = true;
                    bell.notify_one();
                }
                r
            })
            .await
        };
        let s = scoped(self.host, connect).await?;
        Ok(SimStream::new(self.host, s, self.doorbell.clone()))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use axum::Router;
    use axum::routing::get;
    use muttr_node::client::http;
    use turmoil_net::KernelConfig;

    use super::*;
    use crate::engine;
    use crate::fabric::host_ip;
    use crate::scenario::{Latency, Network};

    /// An unchanged `axum::serve` on host A answers a client on host B (hyper's connection
    /// task is a plain `tokio::spawn`); a closed port is refused; the latency applies.
    #[test]
    fn axum_serves_a_client_on_another_host() {
        let network = Network {
            latency: Latency::Fixed { ms: 20.0 },
            ..Network::default()
        };
        let kernel = KernelConfig::default().retx_threshold(1_000_000);
        let ((), fabric) = engine::run_hosts(2, &network, kernel, || async {
            let bell = engine::doorbell();
            let (a, b) = (engine::host_id(0), engine::host_id(1));
            let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 80);
            let listener = SimListener::bind(a, any, bell.clone(), Duration::ZERO).await?;
            let app = Router::new().route("/hi", get(|| async { "hello" }));
            let server = tokio::spawn(async move { axum::serve(listener, app).await });
            let dialer = SimDialer::new(b, bell.clone());
            let start = tokio::time::Instant::now();
            let url = format!("http://{}/hi", host_ip(0));
            let res = http::request(&dialer, "GET", &url, None, Duration::from_secs(5)).await?;
            assert_eq!((res.status, res.body.as_str()), (200, "hello"));
            // SYN, SYN-ACK, then request and answer: at least two round trips.
            assert!(
                start.elapsed() >= Duration::from_millis(80),
                "{:?}",
                start.elapsed()
            );
            let closed = format!("http://{}:81/hi", host_ip(0));
            let r = http::request(&dialer, "GET", &closed, None, Duration::from_secs(5)).await;
            assert!(r.is_err(), "{r:?}");
            let named = dialer.dial("pod.example", 80).await;
            assert!(named.is_err());
            server.abort();
            Ok(())
        })
        .unwrap();
        assert!(fabric.stats.tcp_segments >= 6);
    }
}

//! The IO boundary: datagram transports and the injected wall clock.
//!
//! The seed's protocol code never names a socket type. It is generic over [`Transport`], which
//! binds [`DatagramSocket`]s; this module implements it for real tokio UDP sockets
//! ([`TokioTransport`]), and the simulator implements it for simulated sockets in its own crate,
//! without a `cfg` switch anywhere (Cargo merges features across a workspace, so a feature that
//! swapped socket types in one crate would swap them in every crate).
//!
//! Time enters through tokio's clock (virtual under a paused runtime, as in simulation) and the
//! [`Clock`], which turns it into wall-clock milliseconds since the epoch (P-W5) from a fixed
//! starting point. The clock is monotonic by construction: a seed never sees time go backwards,
//! even when the host's clock is stepped.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

/// A bound datagram socket.
///
/// The methods take `&self` so a driver can receive and send concurrently from one socket.
pub trait DatagramSocket: Send + Sync + 'static {
    /// Sends one datagram to `target`.
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send;

    /// Receives one datagram, returning its length and source address.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

/// A source of datagram sockets: real UDP, or a simulated network.
pub trait Transport: Clone + Send + Sync + 'static {
    /// The socket type this transport binds.
    type Socket: DatagramSocket;

    /// Binds a socket at `addr` (port 0 picks a free port).
    fn bind(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Socket>> + Send;
}

/// Real UDP sockets through tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioTransport;

impl DatagramSocket for tokio::net::UdpSocket {
    fn send_to(
        &self,
        buf: &[u8],
        target: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        tokio::net::UdpSocket::send_to(self, buf, target)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        tokio::net::UdpSocket::recv_from(self, buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::UdpSocket::local_addr(self)
    }
}

impl Transport for TokioTransport {
    type Socket = tokio::net::UdpSocket;

    async fn bind(&self, addr: SocketAddr) -> io::Result<Self::Socket> {
        tokio::net::UdpSocket::bind(addr).await
    }
}

/// Wall-clock milliseconds since the Unix epoch, derived from tokio's monotonic clock and a
/// fixed starting point.
///
/// Create it inside the runtime that will use it: under a paused tokio runtime (simulation) the
/// clock then advances with virtual time only, and two runs with the same epoch read the same
/// times.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch_ms: u64,
    start: tokio::time::Instant,
}

impl Clock {
    /// A clock that starts at the host's current time (the one place that reads the system
    /// clock; only binaries call it).
    pub fn system() -> Clock {
        let epoch_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Clock::starting_at(epoch_ms)
    }

    /// A clock that reads `epoch_ms` now and advances with tokio time (simulation, tests).
    pub fn starting_at(epoch_ms: u64) -> Clock {
        Clock {
            epoch_ms,
            start: tokio::time::Instant::now(),
        }
    }

    /// Milliseconds since the Unix epoch, now.
    pub fn now_ms(&self) -> u64 {
        self.epoch_ms + self.start.elapsed().as_millis() as u64
    }

    /// The same instant as a `SystemTime` (for OpenPGP signature creation times).
    pub fn now_system(&self) -> std::time::SystemTime {
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn clock_follows_virtual_time() {
        let c = Clock::starting_at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        assert_eq!(c.now_ms(), 3_500);
        assert_eq!(
            c.now_system(),
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(3_500)
        );
    }

    #[tokio::test]
    async fn tokio_transport_round_trip() {
        let t = TokioTransport;
        let a = t.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let b = t.bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        DatagramSocket::send_to(&a, b"hi", b.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = DatagramSocket::recv_from(&b, &mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(from, DatagramSocket::local_addr(&a).unwrap());
    }
}

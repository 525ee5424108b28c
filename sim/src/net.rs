//! Simulated sockets: [`node::net::Transport`](muttr_node::net::Transport) for turmoil-net.
//!
//! turmoil-net keeps one simulated kernel per host and looks sockets up in the kernel of the
//! thread's *current* host on every call. The seed driver runs in a plain `tokio::spawn`ed task
//! that knows nothing about hosts, so instead of tagging tasks (tokio's unstable task hooks),
//! every [`SimSocket`] remembers its host and makes it current right before each socket call:
//! bind, send, every poll of a receive, reading the local address, and closing on drop (closing
//! in another host's kernel would close an innocent socket there). The node crate needs no
//! change and no `cfg` switch.
//!
//! A datagram to another simulated host skips the kernel's outbound queue: the socket builds
//! the packet the kernel would (source address and port, MTU check) and hands it to the engine
//! ([`engine::send_datagram`]), which routes it at once, stamped
//! with the instant it was sent. turmoil-net can only drain *every* host's queue at once, and at
//! 100,000 hosts a drain per sending instant cost more than the seeds' own work. Loopback and
//! self-addressed datagrams still go through the kernel, and ring the worker's doorbell so they
//! leave at the same instant.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::pin;
use std::sync::Arc;

use bytes::Bytes;
use muttr_node::net::{DatagramSocket, Transport};
use tokio::sync::Notify;
use turmoil_net::shim::tokio::net::UdpSocket;
use turmoil_net::{HostId, Packet, Transport as Payload, UdpDatagram};

use crate::engine;

/// Binds sockets on one simulated host.
#[derive(Debug, Clone)]
pub struct SimTransport {
    host: HostId,
    ip: Ipv4Addr,
    doorbell: Arc<Notify>,
}

impl SimTransport {
    /// A transport for `host`, whose address is `ip`; sends through the kernel ring `doorbell`
    /// (the worker's wake-up).
    pub fn new(host: HostId, ip: Ipv4Addr, doorbell: Arc<Notify>) -> SimTransport {
        SimTransport { host, ip, doorbell }
    }

    /// The host this transport binds on.
    pub fn host(&self) -> HostId {
        self.host
    }
}

/// Runs `fut` with `host` current on every poll.
async fn on_host<F: Future>(host: HostId, fut: F) -> F::Output {
    let mut fut = pin!(fut);
    poll_fn(|cx| {
        turmoil_net::set_current(host);
        fut.as_mut().poll(cx)
    })
    .await
}

impl Transport for SimTransport {
    type Socket = SimSocket;

    async fn bind(&self, addr: SocketAddr) -> io::Result<SimSocket> {
        let inner = on_host(self.host, UdpSocket::bind(addr)).await?;
        Ok(SimSocket {
            host: self.host,
            ip: self.ip,
            inner: Some(inner),
            doorbell: self.doorbell.clone(),
        })
    }
}

/// A UDP socket on a simulated host.
#[derive(Debug)]
pub struct SimSocket {
    host: HostId,
    ip: Ipv4Addr,
    /// Always `Some` until dropped (taken in `Drop` to close it with the host current).
    inner: Option<UdpSocket>,
    doorbell: Arc<Notify>,
}

impl SimSocket {
    fn inner(&self) -> io::Result<&UdpSocket> {
        self.inner
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket closed"))
    }
}

impl DatagramSocket for SimSocket {
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        let local = self.local_addr()?;
        let src = match local.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => self.ip,
            IpAddr::V4(ip) => ip,
            IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
        };
        if let IpAddr::V4(dst) = target.ip()
            && src == self.ip
            && dst != self.ip
            && !dst.is_loopback()
            && local.port() != 0
        {
            engine::send_datagram(Packet {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                ttl: 64,
                payload: Payload::Udp(UdpDatagram {
                    src_port: local.port(),
                    dst_port: target.port(),
                    payload: Bytes::copy_from_slice(buf),
                }),
            })?;
            return Ok(buf.len());
        }
        let n = on_host(self.host, self.inner()?.send_to(buf, target)).await?;
        self.doorbell.notify_one();
        Ok(n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        // Cancel-safe: turmoil-net pops a datagram only when it returns it.
        on_host(self.host, self.inner()?.recv_from(buf)).await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        turmoil_net::set_current(self.host);
        self.inner()?.local_addr()
    }
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        if let Some(s) = self.inner.take() {
            turmoil_net::set_current(self.host);
            drop(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use muttr_node::net::{DatagramSocket, Transport};
    use turmoil_net::KernelConfig;

    use super::*;
    use crate::engine;
    use crate::fabric::host_ip;
    use crate::scenario::{Latency, Network};

    /// Plain `tokio::spawn`ed tasks (no host context of their own, like the seed driver) send
    /// from the right host, receive on the right host, and close their own socket on drop.
    #[test]
    fn sockets_carry_their_host_into_untagged_tasks() {
        host_scoped_round_trip(1, 25);
    }

    /// A wider window keeps a longer latency; a shorter one is raised to the window (the
    /// engine's least latency).
    #[test]
    fn the_window_is_the_least_latency() {
        host_scoped_round_trip(5, 25);
        host_scoped_round_trip(40, 40);
    }

    fn host_scoped_round_trip(window_ms: u64, expect_ms: u64) {
        let network = Network {
            latency: Latency::Fixed { ms: 25.0 },
            window_ms,
            ..Network::default()
        };
        let ((), fabric) = engine::run_hosts(2, &network, KernelConfig::default(), || async {
            let bell = engine::doorbell();
            let (ta, tb) = (
                SimTransport::new(engine::host_id(0), host_ip(0), bell.clone()),
                SimTransport::new(engine::host_id(1), host_ip(1), bell.clone()),
            );
            let port = 4000;
            let any: SocketAddr = (std::net::Ipv4Addr::UNSPECIFIED, port).into();
            let to_b = SocketAddr::new(IpAddr::V4(host_ip(1)), port);
            let sb = tb.bind(any).await?;
            let start = tokio::time::Instant::now();
            let sender = tokio::spawn(async move {
                let sa = ta.bind(any).await.unwrap();
                sa.send_to(b"hello", to_b).await.unwrap();
                // Dropped here, in a task with no host: must close on host A only.
            });
            let mut buf = [0u8; 16];
            let (n, from) = sb.recv_from(&mut buf).await?;
            sender.await?;
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from, SocketAddr::new(IpAddr::V4(host_ip(0)), port));
            assert_eq!(start.elapsed(), Duration::from_millis(expect_ms));
            // B's socket is still open and A's port is free again.
            assert_eq!(sb.local_addr()?.port(), port);
            let again = SimTransport::new(engine::host_id(0), host_ip(0), bell.clone())
                .bind(any)
                .await;
            assert!(again.is_ok(), "{again:?}");
            Ok(())
        })
        .unwrap();
        assert_eq!(fabric.stats.delivered, 1);
        assert_eq!(fabric.traffic[0].datagrams_out, 1);
        assert_eq!(fabric.traffic[1].bytes_in, 5);
    }
}

//! [`Dialer`]: how the client opens a byte stream to a pod — TCP by default, anything else
//! (the simulator's sockets) through the trait — and TLS on top for `https://` / `wss://`,
//! checked against the dialer's trust roots ([`crate::trust`]: webpki + system + `--ca-file`).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Opens streams to `host:port`.
pub trait Dialer: Clone + Send + Sync + 'static {
    /// The stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Connects.
    fn dial(&self, host: &str, port: u16) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// The TLS configuration of `https://` / `wss://` connections: by default
    /// [`crate::trust::default_config`] (webpki and system roots).
    fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        crate::trust::default_config()
    }
}

/// TCP through tokio, trusting the default roots or those given to [`TcpDialer::trusting`].
#[derive(Debug, Clone, Default)]
pub struct TcpDialer {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl TcpDialer {
    /// A dialer whose TLS connections use `tls` (e.g. [`crate::trust::client_config`] with
    /// the `--ca-file` roots of a private CA).
    pub fn trusting(tls: Arc<rustls::ClientConfig>) -> TcpDialer {
        TcpDialer { tls: Some(tls) }
    }
}

impl Dialer for TcpDialer {
    fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.tls
            .clone()
            .unwrap_or_else(crate::trust::default_config)
    }

    type Stream = tokio::net::TcpStream;
    async fn dial(&self, host: &str, port: u16) -> io::Result<tokio::net::TcpStream> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = tokio::net::TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// A stream, in clear or in TLS.
#[derive(Debug)]
pub enum Conn<S> {
    /// Plain (`http://`, `ws://`).
    Plain(S),
    /// TLS (`https://`, `wss://`).
    Tls(Box<tokio_rustls::client::TlsStream<S>>),
}

/// Dials and, when `tls`, runs a TLS handshake checked against the dialer's roots
/// ([`Dialer::tls_config`]).
pub async fn connect<D: Dialer>(
    dialer: &D,
    host: &str,
    port: u16,
    tls: bool,
) -> io::Result<Conn<D::Stream>> {
    let stream = dialer.dial(host, port).await?;
    if !tls {
        return Ok(Conn::Plain(stream));
    }
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let tls = tokio_rustls::TlsConnector::from(dialer.tls_config())
        .connect(name, stream)
        .await?;
    Ok(Conn::Tls(Box::new(tls)))
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

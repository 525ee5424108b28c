//! [`TlsListener`]: HTTPS (and `wss://`) for a pod started with `--tls-cert/--tls-key`, by
//! rustls.
//!
//! TLS handshakes run in their own tasks, so a client that opens a connection and stalls
//! cannot hold up the others; a handshake that takes longer than [`HANDSHAKE_TIMEOUT`] is
//! dropped.
//!
//! The certificate is a [`Certificates`]: read from its two files at start and again by
//! [`Certificates::reload`] (the binary calls it on SIGHUP), so a renewed certificate is served
//! to new connections without a restart. A reload that fails (a half-written file, a key that
//! does not match) keeps the certificate in use and says why.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server at most.
const READY_QUEUE: usize = 128;

/// Reads a PEM certificate chain and its private key, checking that they belong together.
fn load(cert: &Path, key: &Path) -> io::Result<CertifiedKey> {
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
    };
    // The same PEM reading as the trust roots' (errors name the file; none is an error).
    let certs = muttr_node::trust::read_pem_certs(cert)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(&key.display().to_string(), &e))?;
    CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| invalid("certificate/key", &e))
}

/// The pod's certificate and key, reloadable from their files.
#[derive(Debug)]
pub struct Certificates {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl Certificates {
    /// Reads `cert` (PEM chain) and `key` (PEM private key).
    pub fn load(cert: &Path, key: &Path) -> io::Result<Arc<Certificates>> {
        let current = load(cert, key)?;
        Ok(Arc::new(Certificates {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(current)),
        }))
    }

    /// Reads the files again; new handshakes use what was read. On error the certificate in
    /// use stays.
    pub fn reload(&self) -> io::Result<()> {
        let fresh = load(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// The end-entity certificate in use.
    pub fn current(&self) -> CertificateDer<'static> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).cert[0].clone()
    }

    /// A rustls server configuration serving these certificates (HTTP/1.1 only: WebSocket
    /// upgrades need it).
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Reads a PEM certificate chain and private key into a rustls server configuration
/// (HTTP/1.1 only: WebSocket upgrades need it). Use [`Certificates`] to reload them later.
pub fn server_config(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    Ok(Certificates::load(cert, key)?.server_config())
}

/// A listener that yields TLS streams: over a TCP listener (`muttr-pod`), or over any other
/// listener of the server (the simulator's) with [`TlsListener::over`].
#[derive(Debug)]
pub struct TlsListener<S = TcpStream> {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<S>, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener<TcpStream> {
    /// Accepts on `tcp` and handshakes with `config`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        TlsListener::over(tcp, config)
    }
}

impl<S> TlsListener<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    /// Accepts on `listener` (which handles its own accept errors) and handshakes with
    /// `config`, each handshake in its own task.
    pub fn over<L>(mut listener: L, config: Arc<ServerConfig>) -> io::Result<TlsListener<S>>
    where
        L: axum::serve::Listener<Io = S, Addr = SocketAddr>,
    {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let task = tokio::spawn(async move {
            loop {
                let (stream, addr) = listener.accept().await;
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready, task })
    }
}

impl<S> Drop for TlsListener<S> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<S> axum::serve::Listener for TlsListener<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    type Io = TlsStream<S>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept task only ends when aborted (on drop): never while we are alive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

//! A pod on a simulated host: the unchanged `muttr_pod` server (`muttr_pod::serve`, i.e.
//! `axum::serve`) on a [`SimListener`], its embedded seed on [`SimTransport`], and its SQLite
//! storage (pod database and the seed's durable value store) in a directory that outlives the
//! process — a pod that stops and starts again finds its identities, aliases and undelivered
//! inbox entries, like the `muttr-pod` binary with `--data-dir`.
//!
//! Other pods' keys (`href` identities, P-A3) are fetched through [`SimFetcher`]: the client
//! library's HTTP request over a [`SimDialer`] from the pod's own host.
//!
//! With `messaging.https`, each pod serves HTTPS ([`muttr_pod::tls::TlsListener`] over the
//! simulated listener) with a certificate of the run's CA ([`SimPki`]), and fetches over
//! `https://` trusting that CA, as `muttr-pod --tls-cert … --ca-file …` does. Keys are Ed25519
//! and serial numbers fixed, so every certificate and handshake has the same size from run to
//! run and the simulation stays a function of its seed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use muttr_node::client::http;
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::Clock;
use muttr_node::store::{Quotas, SqliteStore};
use muttr_node::{Config, SeedHandle};
use muttr_pod::federation::{FetchError, FetchFuture, KeyFetcher};
use muttr_pod::{AppState, PodConfig, Storage};
use tokio::sync::{Notify, oneshot};
use turmoil_net::HostId;

use crate::net::SimTransport;
use crate::tcp::{SimDialer, SimListener};

/// TCP port of every simulated pod over HTTP (so a pod's public host is its bare address).
pub const POD_PORT: u16 = 80;

/// TCP port of every simulated pod over HTTPS (the default port of `https://`, so the public
/// host is the bare address here too).
pub const POD_TLS_PORT: u16 = 443;

/// UDP port of a pod's embedded seed (and of active users' seeds).
pub const POD_SEED_PORT: u16 = 4000;

/// Fetches other pods' keys over simulated TCP.
#[derive(Debug, Clone)]
pub struct SimFetcher {
    dialer: SimDialer,
}

impl KeyFetcher for SimFetcher {
    fn fetch<'a>(&'a self, url: &'a str, limit: usize, timeout: Duration) -> FetchFuture<'a> {
        Box::pin(async move {
            let res = http::request(&self.dialer, "GET", url, None, timeout)
                .await
                .map_err(|e| FetchError::Unreachable {
                    url: url.to_string(),
                    why: e.to_string(),
                })?;
            if res.status != 200 {
                return Err(FetchError::Status {
                    url: url.to_string(),
                    status: res.status,
                });
            }
            if res.body.len() > limit {
                return Err(FetchError::TooLarge(url.to_string()));
            }
            Ok(res.body)
        })
    }
}

/// Where and how a pod runs; kept across restarts.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// Pod number (0-based).
    pub index: u32,
    /// Its host.
    pub host: HostId,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Its data directory (pod database + seed store).
    pub dir: PathBuf,
    /// The seed's protocol constants.
    pub config: Config,
    /// Seeds the pod's RNGs (tokens, the embedded seed).
    pub rng_seed: u64,
    /// Whether the pod keeps its users' messages alive ([`PodConfig::keepalive`], P-X2).
    pub keepalive: bool,
    /// HTTPS: the pod's certificate and key files, and the client configuration trusting the
    /// run's CA (for its fetches of other pods' keys). `None`: plain HTTP.
    pub tls: Option<PodTls>,
}

/// A pod's TLS material in an HTTPS run.
#[derive(Debug, Clone)]
pub struct PodTls {
    /// PEM certificate (signed by the run's CA).
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Trusts the run's CA.
    pub client: Arc<rustls::ClientConfig>,
}

/// The CA of an HTTPS run: certificates for each pod's address, Ed25519, fixed serials.
pub struct SimPki {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// A client configuration trusting only this CA.
    pub client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for SimPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimPki").finish_non_exhaustive()
    }
}

impl SimPki {
    /// A new CA.
    pub fn new() -> Result<SimPki, rcgen::Error> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.serial_number = Some(rcgen::SerialNumber::from(1u64));
        params
            .distinguished_name
            .push(DnType::CommonName, "muttr-sim CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key)?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(cert.der().clone())
            .map_err(|e| rcgen::Error::PemError(e.to_string()))?;
        let client = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(SimPki {
            issuer: rcgen::Issuer::new(params, key),
            client: Arc::new(client),
        })
    }

    /// Pod `index`'s certificate for `ip`, written in `dir`.
    pub fn pod(&self, index: u32, ip: Ipv4Addr, dir: &std::path::Path) -> std::io::Result<PodTls> {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
        let bad = |e: rcgen::Error| std::io::Error::other(e.to_string());
        let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(bad)?;
        let mut params = CertificateParams::new(vec![ip.to_string()]).map_err(bad)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.serial_number = Some(rcgen::SerialNumber::from(1000 + index as u64));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).map_err(bad)?;
        std::fs::create_dir_all(dir)?;
        let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_file, cert.pem())?;
        std::fs::write(&key_file, key.serialize_pem())?;
        Ok(PodTls {
            cert: cert_file,
            key: key_file,
            client: self.client.clone(),
        })
    }
}

impl PodSpec {
    /// `http://ip` (or `https://ip`) — the base URL users are given.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.ip)
    }

    /// The embedded seed's address.
    pub fn seed_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), POD_SEED_PORT)
    }
}

/// A running pod.
pub struct RunningPod {
    seed: Seed<SqliteStore>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningPod").finish_non_exhaustive()
    }
}

impl RunningPod {
    /// The embedded seed.
    pub fn seed(&self) -> SeedHandle {
        self.seed.handle()
    }
}

/// Starts the pod of `spec`: opens its storage, starts the embedded seed, serves the API.
/// (Bootstrapping the seed is the caller's business.) Runs on the simulator's `LocalSet`.
pub async fn start(
    spec: &PodSpec,
    doorbell: Arc<Notify>,
    clock: Clock,
    incarnation: u64,
) -> Result<RunningPod, String> {
    let storage = Storage::open(&spec.dir).map_err(|e| format!("pod storage: {e}"))?;
    let values = SqliteStore::open(&spec.dir.join("seed"), Quotas::from_config(&spec.config))
        .map_err(|e| format!("seed store: {e}"))?;
    let seed = spawn_seed(
        SimTransport::new(spec.host, spec.ip, doorbell.clone()),
        SeedOptions {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), POD_SEED_PORT),
            advertise: Some(spec.seed_addr()),
            config: spec.config.clone(),
            rng_seed: spec.rng_seed ^ incarnation,
        },
        values,
        clock,
    )
    .await
    .map_err(|e| format!("pod seed: {e}"))?;
    let listener = SimListener::bind(
        spec.host,
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            if spec.tls.is_some() {
                POD_TLS_PORT
            } else {
                POD_PORT
            },
        ),
        doorbell.clone(),
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| format!("pod listener: {e}"))?;
    let config = PodConfig {
        public_host: spec.ip.to_string(),
        insecure_federation: spec.tls.is_none(),
        keepalive: spec.keepalive,
        ..PodConfig::default()
    };
    let state = AppState::with_fetcher(
        config,
        storage,
        Some(seed.handle()),
        clock,
        Some(spec.rng_seed.wrapping_add(incarnation)),
        Arc::new(SimFetcher {
            dialer: SimDialer::new(spec.host, doorbell)
                .with_tls(spec.tls.as_ref().map(|t| t.client.clone())),
        }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    let server = match &spec.tls {
        Some(tls) => {
            let certs = muttr_pod::tls::Certificates::load(&tls.cert, &tls.key)
                .map_err(|e| format!("pod certificate: {e}"))?;
            let listener = muttr_pod::tls::TlsListener::over(listener, certs.server_config())
                .map_err(|e| format!("pod TLS listener: {e}"))?;
            tokio::task::spawn_local(muttr_pod::serve(listener, state, stopped))
        }
        None => tokio::task::spawn_local(muttr_pod::serve(listener, state, stopped)),
    };
    Ok(RunningPod {
        seed,
        stop: Some(stop),
        server,
    })
}

/// Stops a pod: the server shuts down gracefully (WebSocket sessions are told to close,
/// requests in flight may finish for up to 5 s, then the server is aborted), then the
/// embedded seed stops. The data directory stays.
pub async fn stop(mut pod: RunningPod) {
    if let Some(stop) = pod.stop.take() {
        let _ = stop.send(());
    }
    let abort = pod.server.abort_handle();
    if tokio::time::timeout(Duration::from_secs(5), &mut pod.server)
        .await
        .is_err()
    {
        abort.abort();
        let _ = pod.server.await;
    }
    let _ = pod.seed.shutdown().await;
}

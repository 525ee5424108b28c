//! A pod on a simulated host: the unchanged `muttr_pod` server (`muttr_pod::serve`, i.e.
//! `axum::serve`) on a [`SimListener`], its embedded seed on [`SimTransport`], and its SQLite
//! storage (pod database and the seed's durable value store) in a directory that outlives the
//! process — a pod that stops and starts again finds its identities, aliases and undelivered
//! inbox entries, like the `muttr-pod` binary with `--data-dir`.
//!
//! Other pods' keys (`href` identities, P-A3) are fetched through [`SimFetcher`]: the client
//! library's HTTP request over a [`SimDialer`] from the pod's own host.

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

/// TCP port of every simulated pod (so a pod's public host is its bare address).
pub const POD_PORT: u16 = 80;

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
}

impl PodSpec {
    /// `http://ip` — the base URL users are given.
    pub fn url(&self) -> String {
        format!("http://{}", self.ip)
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
        SimTransport::new(spec.host, doorbell.clone()),
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
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), POD_PORT),
        doorbell.clone(),
        Duration::from_secs(30),
    )
    .await
    .map_err(|e| format!("pod listener: {e}"))?;
    let config = PodConfig {
        public_host: spec.ip.to_string(),
        insecure_federation: true,
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
            dialer: SimDialer::new(spec.host, doorbell),
        }),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::task::spawn_local(muttr_pod::serve(listener, state, async move {
        let _ = stopped.await;
    }));
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

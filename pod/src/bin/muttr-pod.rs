//! `muttr-pod`: run a Muttr pod — the REST API and WebSocket push on TCP, and an embedded seed
//! on UDP that takes part in the DHT.
//!
//! ```text
//! muttr-pod --listen 127.0.0.1:8080 --public-host 127.0.0.1:8080 --data-dir ./pod-data \
//!           --seed-listen 127.0.0.1:4000 --bootstrap 127.0.0.1:4001 --insecure-federation
//! ```
//!
//! It prints one line when ready (`muttr-pod listening on URL seed ADDR node NODEID`), logs to
//! stderr, and on SIGINT or SIGTERM stops accepting, closes WebSocket sessions (1001), gives
//! the requests in flight `shutdown_timeout` (15 s) to finish, drops the rest, and stops its
//! seed (within [`SEED_STOP_TIMEOUT`]). On SIGHUP it reads `--tls-cert/--tls-key` again.
//!
//! Over HTTPS, other pods' certificates are checked against the Mozilla and system roots and
//! any `--ca-file` (pods with a private CA). Listening on a wildcard address (`0.0.0.0`, `::`)
//! needs `--public-host`: users are named `alias@HOST`, and `alias@0.0.0.0:8080` names no one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use muttr_node::Config;
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::process::LogFormat;
use muttr_node::settings::{self, Layers};
use muttr_node::store::{Quotas, SqliteStore};
use muttr_pod::federation::HttpFetcher;
use muttr_pod::{AppState, PodConfig, Storage, serve, tls};
use serde::{Deserialize, Serialize};

/// How long the embedded seed may take to stop and flush its store after the HTTP side has
/// shut down; past it the process exits anyway (values are written as they are stored, so
/// nothing acknowledged is lost).
pub const SEED_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the pod keeps its data when neither the configuration nor systemd's
/// `StateDirectory=` (`$STATE_DIRECTORY`) names a directory.
const DEFAULT_DATA_DIR: &str = "muttr-pod-data";

fn is_false(b: &bool) -> bool {
    !*b
}

/// Run a Muttr pod: keyserver, aliases, inboxes, WebSocket push, and a seed of the DHT.
///
/// Every option is also a key of the configuration file and an environment variable
/// (`--seed-listen` is `seed_listen` and `MUTTR_POD_SEED_LISTEN`); a flag wins over the
/// environment, which wins over the file. The file's `[pod]` table holds the pod's limits
/// (`MUTTR_POD_POD__HEADER_TIMEOUT=30s`), its `[seed]` table the embedded seed's protocol
/// constants (`MUTTR_POD_SEED__K=8`).
#[derive(Debug, Parser, Serialize)]
#[command(name = "muttr-pod", version = muttr_node::VERSION)]
struct Args {
    /// Configuration file (TOML): these options as keys, `[pod]` limits and `[seed]` protocol
    /// constants (see deploy/muttr-pod.toml).
    #[arg(long, env = "MUTTR_POD_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Print the resolved configuration (TOML) and exit.
    #[arg(long)]
    #[serde(skip)]
    print_config: bool,
    /// TCP address of the HTTP(S) API and WebSocket [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// The host users name this pod by (`alice@HOST`), with `:port` when not the default;
    /// defaults to the listen address.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_host: Option<String>,
    /// Directory of the pod's database and its seed's values [default: $STATE_DIRECTORY
    /// under systemd, else muttr-pod-data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL database shared by this pod's replicas (`postgres://user@host/db`); the
    /// pod's state goes there instead of the data directory's SQLite file (the embedded seed's
    /// values stay in the data directory).
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    /// UDP address of the embedded seed [default: 127.0.0.1:4000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    seed_listen: Option<SocketAddr>,
    /// Address other seeds reach the embedded seed at (needed with a wildcard --seed-listen).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    seed_advertise: Option<SocketAddr>,
    /// A seed to join the DHT through, ADDRESS:PORT or NAME:PORT (a name is resolved at each
    /// attempt; repeatable).
    #[arg(long = "bootstrap", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bootstrap: Vec<muttr_node::process::PeerAddr>,
    /// PEM certificate chain: serve HTTPS/WSS (with --tls-key).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Fetch other pods' keys over plain http:// (local networks and tests only, P-A3).
    #[arg(long)]
    #[serde(skip_serializing_if = "is_false")]
    insecure_federation: bool,
    /// Also trust the CA certificates in this PEM file when fetching other pods' keys over
    /// https:// (repeatable): for pods with a private CA or a self-signed certificate.
    #[arg(long = "ca-file", value_name = "FILE")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ca_file: Vec<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `info,muttr_node=debug`); default: $RUST_LOG, else info.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    /// Log line format [default: text].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    /// Seed of the random generators (tokens, rpcIDs); from the OS when absent.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rng_seed: Option<u64>,
    /// Serve Prometheus metrics of the pod and its seed at http://ADDR/metrics (PROFILE
    /// P-X3); off when absent.
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
}

/// The resolved configuration: what `--print-config` prints, and what the file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    listen: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database: Option<String>,
    seed_listen: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed_advertise: Option<SocketAddr>,
    #[serde(deserialize_with = "settings::list::deserialize")]
    bootstrap: Vec<muttr_node::process::PeerAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    insecure_federation: bool,
    #[serde(deserialize_with = "settings::list::deserialize")]
    ca_file: Vec<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    log_format: LogFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    rng_seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
    /// The pod's limits and policies.
    pod: PodConfig,
    /// The embedded seed's protocol constants (PROFILE P-K2).
    seed: Config,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: "127.0.0.1:8080".parse().expect("a socket address"),
            public_host: None,
            data_dir: None,
            database: None,
            seed_listen: "127.0.0.1:4000".parse().expect("a socket address"),
            seed_advertise: None,
            bootstrap: Vec::new(),
            tls_cert: None,
            tls_key: None,
            insecure_federation: false,
            ca_file: Vec::new(),
            log: None,
            log_format: LogFormat::Text,
            rng_seed: None,
            metrics_listen: None,
            pod: PodConfig::default(),
            seed: Config::default(),
        }
    }
}

/// Resolves flag > `MUTTR_POD_*` > file > default and checks what serde cannot. Errors name
/// the source and the key.
fn resolve(args: &Args) -> Result<(Settings, String), String> {
    let mut s: Settings = settings::load(
        Layers {
            file: args.config.as_deref(),
            env_prefix: "MUTTR_POD_",
            env_ignore: &["config"],
        },
        args,
    )?;
    s.seed.validate().map_err(|e| format!("key `seed`: {e}"))?;
    if s.listen.ip().is_unspecified() && s.public_host.is_none() {
        return Err(format!(
            "key `listen`: {} is a wildcard address: give public_host (--public-host \
             HOST[:PORT]), the name users reach this pod by (their IDs are alias@HOST)",
            s.listen
        ));
    }
    if s.data_dir.is_none() {
        s.data_dir = Some(
            std::env::var_os("STATE_DIRECTORY")
                .filter(|v| !v.is_empty())
                .map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from),
        );
    }
    let filter = muttr_node::process::log_filter(s.log.as_deref());
    muttr_node::process::check_log_filter(&filter).map_err(|e| format!("key `log`: {e}"))?;
    Ok((s, filter))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings::begin("muttr-pod", resolve(&args), args.print_config, |s| {
        s.log_format
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    muttr_node::process::run("muttr-pod", rt, run(settings))
}

async fn run(args: Settings) -> Result<(), String> {
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err("keys `tls_cert` and `tls_key` (--tls-cert, --tls-key) go together".into());
    }
    let mut pod_config = args.pod.clone();
    pod_config.insecure_federation = args.insecure_federation;
    pod_config.ca_files = args.ca_file.clone();
    let public_host = args.public_host.clone();
    // Checked before anything is bound: a bad CA file is a start-up error, not a failure at
    // the first federated request.
    let fetcher = HttpFetcher::trusting(&pod_config.ca_files).map_err(|e| e.to_string())?;
    let seed_config = args.seed.clone();
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));

    // Bind first: with `--listen HOST:0` the default public host is the port actually bound.
    let tcp = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    pod_config.public_host = public_host.unwrap_or_else(|| local.to_string());

    let storage = match &args.database {
        Some(url) => Storage::connect(url)
            .await
            .map_err(|e| format!("key `database`: {e}"))?,
        None => Storage::open(&data_dir).map_err(|e| e.to_string())?,
    };
    tracing::info!(storage = %storage.location(), "pod state");
    let values = SqliteStore::open(&data_dir.join("seed"), Quotas::from_config(&seed_config))
        .map_err(|e| e.to_string())?;
    let clock = Clock::system();
    let seed = spawn_seed(
        TokioTransport,
        SeedOptions {
            bind: args.seed_listen,
            advertise: args.seed_advertise,
            config: seed_config,
            rng_seed: args.rng_seed.unwrap_or_else(rand::random),
        },
        values,
        clock,
    )
    .await
    .map_err(|e| format!("seed cannot listen on {}: {e}", args.seed_listen))?;
    let state = AppState::with_fetcher(
        pod_config,
        storage,
        Some(seed.handle()),
        clock,
        args.rng_seed,
        std::sync::Arc::new(fetcher),
    );
    if let Some(addr) = args.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("metrics cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(addr = %bound, "metrics at http://{bound}/metrics");
        tokio::spawn(muttr_node::metrics::serve(
            listener,
            muttr_pod::metrics::pod_render(state.clone()),
        ));
    }
    if !args.bootstrap.is_empty() {
        tokio::spawn(muttr_node::process::join(
            seed.handle(),
            args.bootstrap.clone(),
        ));
    }

    let seed_addr = seed.contact().socket_addr();
    let node = seed.node_id();
    // Handlers first, then READY=1: a SIGTERM right after readiness must stop us cleanly.
    let shutdown = muttr_node::process::shutdown_signal();
    let served = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let certs = tls::Certificates::load(cert, key).map_err(|e| e.to_string())?;
            tokio::spawn(reload_on_sighup(certs.clone()));
            let listener =
                tls::TlsListener::new(tcp, certs.server_config()).map_err(|e| e.to_string())?;
            println!("muttr-pod listening on https://{local} seed {seed_addr} node {node}");
            muttr_node::process::sd_notify("READY=1");
            serve(listener, state, shutdown).await
        }
        _ => {
            println!("muttr-pod listening on http://{local} seed {seed_addr} node {node}");
            muttr_node::process::sd_notify("READY=1");
            serve(tcp, state, shutdown).await
        }
    };
    served.map_err(|e| format!("server: {e}"))?;
    muttr_node::process::sd_notify("STOPPING=1");
    tracing::info!("stopping seed");
    match tokio::time::timeout(SEED_STOP_TIMEOUT, seed.shutdown()).await {
        Ok(r) => {
            r.map_err(|e| format!("seed shutdown: {e}"))?;
        }
        Err(_) => tracing::warn!("the seed did not stop within {SEED_STOP_TIMEOUT:?}; exiting"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Reads the TLS certificate and key again on every SIGHUP (renewals need no restart).
async fn reload_on_sighup(certs: std::sync::Arc<tls::Certificates>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: certificates will not reload");
            return;
        };
        while hup.recv().await.is_some() {
            muttr_node::process::sd_notify("RELOADING=1");
            let reloaded = certs.reload();
            muttr_node::process::sd_notify("READY=1");
            match reloaded {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; keeping the old one")
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = certs;
}

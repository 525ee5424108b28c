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
//! the requests in flight `shutdown_timeout_ms` (15 s) to finish, drops the rest, and stops its
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
use muttr_node::store::{Quotas, SqliteStore};
use muttr_pod::federation::HttpFetcher;
use muttr_pod::{AppState, PodConfig, Storage, serve, tls};

/// How long the embedded seed may take to stop and flush its store after the HTTP side has
/// shut down; past it the process exits anyway (values are written as they are stored, so
/// nothing acknowledged is lost).
pub const SEED_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Run a Muttr pod: keyserver, aliases, inboxes, WebSocket push, and a seed of the DHT.
#[derive(Debug, Parser)]
#[command(name = "muttr-pod", version = muttr_node::VERSION)]
struct Args {
    /// TCP address of the HTTP(S) API and WebSocket.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The host users name this pod by (`alice@HOST`), with `:port` when not the default;
    /// defaults to the listen address.
    #[arg(long)]
    public_host: Option<String>,
    /// Directory of the pod's database and its seed's values.
    /// Under systemd, `StateDirectory=` sets it.
    #[arg(long, env = "STATE_DIRECTORY", default_value = "muttr-pod-data")]
    data_dir: PathBuf,
    /// UDP address of the embedded seed.
    #[arg(long, default_value = "127.0.0.1:4000")]
    seed_listen: SocketAddr,
    /// Address other seeds reach the embedded seed at (needed with a wildcard --seed-listen).
    #[arg(long)]
    seed_advertise: Option<SocketAddr>,
    /// A seed to join the DHT through (repeatable).
    #[arg(long = "bootstrap", value_name = "ADDR")]
    bootstrap: Vec<SocketAddr>,
    /// PEM certificate chain: serve HTTPS/WSS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Fetch other pods' keys over plain http:// (local networks and tests only, P-A3).
    #[arg(long)]
    insecure_federation: bool,
    /// Also trust the CA certificates in this PEM file when fetching other pods' keys over
    /// https:// (repeatable): for pods with a private CA or a self-signed certificate.
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_files: Vec<PathBuf>,
    /// Pod limits (TOML, fields of `PodConfig`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Protocol constants of the embedded seed (TOML, fields of the seed `Config`).
    #[arg(long)]
    seed_config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `info,muttr_node=debug`); default: $RUST_LOG, else info.
    #[arg(long)]
    log: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = muttr_node::process::LogFormat::Text)]
    log_format: muttr_node::process::LogFormat,
    /// Seed of the random generators (tokens, rpcIDs); from the OS when absent.
    #[arg(long)]
    rng_seed: Option<u64>,
    /// Serve Prometheus metrics of the pod and its seed at http://ADDR/metrics (PROFILE
    /// P-X3); off when absent.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = muttr_node::process::log_filter(args.log.as_deref());
    if let Err(e) = muttr_node::process::init_logging(&filter, args.log_format) {
        eprintln!("muttr-pod: {e}");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    muttr_node::process::run("muttr-pod", rt, run(args))
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn run(args: Args) -> Result<(), String> {
    // Whether the file names the public host: it then wins over the bound address (but not
    // over --public-host).
    let mut file_public_host = None;
    let mut pod_config = match &args.config {
        Some(p) => {
            let text = read(p)?;
            let config =
                PodConfig::from_toml(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            if text
                .parse::<toml::Table>()
                .is_ok_and(|t| t.contains_key("public_host"))
            {
                file_public_host = Some(config.public_host.clone());
            }
            config
        }
        None => PodConfig::default(),
    };
    let public_host = args.public_host.clone().or(file_public_host);
    pod_config.insecure_federation |= args.insecure_federation;
    pod_config.ca_files.extend(args.ca_files.iter().cloned());
    // Checked before anything is bound: a bad CA file is a start-up error, not a failure at
    // the first federated request.
    let fetcher = HttpFetcher::trusting(&pod_config.ca_files).map_err(|e| e.to_string())?;
    if args.listen.ip().is_unspecified() && public_host.is_none() {
        return Err(format!(
            "--listen {} is a wildcard address: give --public-host HOST[:PORT] (or public_host \
             in --config), the name users reach this pod by (their IDs are alias@HOST)",
            args.listen
        ));
    }
    let seed_config = match &args.seed_config {
        Some(p) => Config::from_toml(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?,
        None => Config::default(),
    };
    seed_config
        .validate()
        .map_err(|e| format!("invalid seed config: {e}"))?;

    // Bind first: with `--listen HOST:0` the default public host is the port actually bound.
    let tcp = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = tcp.local_addr().map_err(|e| e.to_string())?;
    pod_config.public_host = public_host.unwrap_or_else(|| local.to_string());

    let storage = Storage::open(&args.data_dir).map_err(|e| e.to_string())?;
    let values = SqliteStore::open(
        &args.data_dir.join("seed"),
        Quotas::from_config(&seed_config),
    )
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

//! `muttr-seed`: run one Muttr seed on a UDP socket.
//!
//! ```text
//! muttr-seed --listen 127.0.0.1:4000 --bootstrap 127.0.0.1:4001 --data-dir ./seed-data
//! ```
//!
//! It prints one line when ready (`muttr-seed listening on ADDR node NODEID`), logs with
//! `tracing` to stderr, and on SIGINT or SIGTERM stops, flushing its store.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use muttr_node::Config;
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::process::LogFormat;
use muttr_node::settings::{self, Layers};
use muttr_node::store::{MemStore, Quotas, SqliteStore, ValueStore};
use serde::{Deserialize, Serialize};

/// Run a Muttr seed: a node of the Kademlia DHT that stores encrypted messages.
///
/// Every option is also a key of the configuration file and an environment variable
/// (`--metrics-listen` is `metrics_listen` and `MUTTR_SEED_METRICS_LISTEN`); a flag wins over
/// the environment, which wins over the file. The protocol constants are the file's `[seed]`
/// table (`MUTTR_SEED_SEED__K=8` from the environment).
#[derive(Debug, Parser, Serialize)]
#[command(name = "muttr-seed", version = muttr_node::VERSION)]
struct Args {
    /// Configuration file (TOML): these options as keys, and the `[seed]` table of protocol
    /// constants (see deploy/muttr-seed.toml).
    #[arg(long, env = "MUTTR_SEED_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Print the resolved configuration (TOML) and exit.
    #[arg(long)]
    #[serde(skip)]
    print_config: bool,
    /// UDP address to listen on [default: 127.0.0.1:4000].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Address other seeds reach this one at (fixes the node ID, P-W3); required when
    /// listening on a wildcard address.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    advertise: Option<SocketAddr>,
    /// A seed to join the network through, ADDRESS:PORT or NAME:PORT (a name is resolved at
    /// each attempt; repeatable).
    #[arg(long = "bootstrap", value_name = "ADDR")]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    bootstrap: Vec<muttr_node::process::PeerAddr>,
    /// Keep values in this directory (SQLite) so a restarted seed still serves them; without
    /// it values live in memory only. Under systemd, `StateDirectory=` sets the default.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `info,muttr_node=debug`); default: $RUST_LOG, else info.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    /// Log line format [default: text].
    #[arg(long, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<LogFormat>,
    /// Seed of the protocol's random generator (rpcIDs); random when absent.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    rng_seed: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics (PROFILE P-X3); off when absent.
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
    advertise: Option<SocketAddr>,
    #[serde(deserialize_with = "settings::list::deserialize")]
    bootstrap: Vec<muttr_node::process::PeerAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    log_format: LogFormat,
    #[serde(skip_serializing_if = "Option::is_none")]
    rng_seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
    /// The protocol constants (PROFILE P-K2).
    seed: Config,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            listen: "127.0.0.1:4000".parse().expect("a socket address"),
            advertise: None,
            bootstrap: Vec::new(),
            data_dir: None,
            log: None,
            log_format: LogFormat::Text,
            rng_seed: None,
            metrics_listen: None,
            seed: Config::default(),
        }
    }
}

/// Resolves flag > `MUTTR_SEED_*` > file > default, and checks what serde cannot: the
/// protocol constants together, the log filter. Errors name the source and the key.
fn resolve(args: &Args) -> Result<(Settings, String), String> {
    let mut settings: Settings = settings::load(
        Layers {
            file: args.config.as_deref(),
            env_prefix: "MUTTR_SEED_",
            env_ignore: &["config"],
        },
        args,
    )?;
    settings
        .seed
        .validate()
        .map_err(|e| format!("key `seed`: {e}"))?;
    // systemd's StateDirectory= names the data directory unless the configuration does.
    if settings.data_dir.is_none() {
        settings.data_dir = std::env::var_os("STATE_DIRECTORY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
    }
    let filter = muttr_node::process::log_filter(settings.log.as_deref());
    muttr_node::process::check_log_filter(&filter).map_err(|e| format!("key `log`: {e}"))?;
    Ok((settings, filter))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match settings::begin("muttr-seed", resolve(&args), args.print_config, |s| {
        s.log_format
    }) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    muttr_node::process::run("muttr-seed", rt, start(settings))
}

async fn start(settings: Settings) -> Result<(), String> {
    let quotas = Quotas::from_config(&settings.seed);
    match settings.data_dir.clone() {
        Some(dir) => {
            let store = SqliteStore::open(&dir, quotas).map_err(|e| e.to_string())?;
            serve(settings, store).await
        }
        None => serve(settings, MemStore::new(quotas)).await,
    }
}

async fn serve<S: ValueStore>(args: Settings, store: S) -> Result<(), String> {
    let config = args.seed.clone();
    let rng_seed = args.rng_seed.unwrap_or_else(rand::random);
    let options = SeedOptions {
        bind: args.listen,
        advertise: args.advertise,
        config,
        rng_seed,
    };
    let held = store.len();
    let metrics = match args.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("metrics cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let seed = spawn_seed(TokioTransport, options, store, Clock::system())
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    if let Some(listener) = metrics {
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        tracing::info!(%addr, "metrics at http://{addr}/metrics");
        tokio::spawn(muttr_node::metrics::serve(
            listener,
            muttr_node::metrics::seed_render(seed.handle()),
        ));
    }
    println!(
        "muttr-seed listening on {} node {}",
        seed.contact().socket_addr(),
        seed.node_id()
    );
    // Handlers first, then READY=1: a SIGTERM right after readiness must stop us cleanly.
    let shutdown = muttr_node::process::shutdown_signal();
    muttr_node::process::sd_notify("READY=1");
    tracing::info!(values = held, "store opened");
    if !args.bootstrap.is_empty() {
        tokio::spawn(muttr_node::process::join(
            seed.handle(),
            args.bootstrap.clone(),
        ));
    }
    shutdown.await;
    muttr_node::process::sd_notify("STOPPING=1");
    tracing::info!("stopping");
    seed.shutdown()
        .await
        .map_err(|e| format!("shutdown: {e}"))?;
    tracing::info!("stopped; store flushed");
    Ok(())
}

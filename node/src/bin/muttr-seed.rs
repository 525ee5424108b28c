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
use muttr_node::store::{MemStore, Quotas, SqliteStore, ValueStore};

/// Run a Muttr seed: a node of the Kademlia DHT that stores encrypted messages.
#[derive(Debug, Parser)]
#[command(name = "muttr-seed", version = muttr_node::VERSION)]
struct Args {
    /// UDP address to listen on.
    #[arg(long, default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    /// Address other seeds reach this one at (fixes the node ID, P-W3); required when
    /// listening on a wildcard address.
    #[arg(long)]
    advertise: Option<SocketAddr>,
    /// A seed to join the network through (repeatable).
    #[arg(long = "bootstrap", value_name = "ADDR")]
    bootstrap: Vec<SocketAddr>,
    /// Keep values in this directory (SQLite) so a restarted seed still serves them; without
    /// it values live in memory only. Under systemd, `StateDirectory=` sets it.
    #[arg(long, env = "STATE_DIRECTORY")]
    data_dir: Option<PathBuf>,
    /// Protocol constants (TOML, fields of `Config`; absent fields keep PROFILE P-K2 values).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace, or a tracing filter such as
    /// `info,muttr_node=debug`); default: $RUST_LOG, else info.
    #[arg(long)]
    log: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = muttr_node::process::LogFormat::Text)]
    log_format: muttr_node::process::LogFormat,
    /// Seed of the protocol's random generator (rpcIDs); random when absent.
    #[arg(long)]
    rng_seed: Option<u64>,
    /// Serve Prometheus metrics at http://ADDR/metrics (PROFILE P-X3); off when absent.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = muttr_node::process::log_filter(args.log.as_deref());
    if let Err(e) = muttr_node::process::init_logging(&filter, args.log_format) {
        eprintln!("muttr-seed: {e}");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    muttr_node::process::run("muttr-seed", rt, start(args))
}

async fn start(args: Args) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    config
        .validate()
        .map_err(|e| format!("invalid config: {e}"))?;
    let quotas = Quotas::from_config(&config);
    match &args.data_dir {
        Some(dir) => {
            let store = SqliteStore::open(dir, quotas).map_err(|e| e.to_string())?;
            serve(args, config, store).await
        }
        None => serve(args, config, MemStore::new(quotas)).await,
    }
}

async fn serve<S: ValueStore>(args: Args, config: Config, store: S) -> Result<(), String> {
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

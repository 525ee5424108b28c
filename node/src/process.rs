//! What the binaries (`muttr-seed`, `muttr-pod`) share around a running seed: logging to
//! stderr, waiting for SIGINT/SIGTERM, and joining the network with retries.

use std::net::SocketAddr;
use std::time::Duration;

use crate::driver::SeedHandle;

/// Logs with `tracing` to stderr at `filter` (a level or a tracing filter; `info` when it does
/// not parse), with colours only on a terminal.
pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C only, off Unix).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    biased;
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Attempts of [`join`], [`JOIN_PAUSE`] apart: a minute for the bootstrap seeds to come up.
pub const JOIN_ATTEMPTS: u32 = 12;
/// Pause between attempts of [`join`].
pub const JOIN_PAUSE: Duration = Duration::from_secs(5);

/// Joins the network through `peers`, retrying while none answers (they may still be
/// starting). Logs the outcome; returns the contacts learned (0 when every attempt failed).
pub async fn join(seed: SeedHandle, peers: Vec<SocketAddr>) -> usize {
    for attempt in 1..=JOIN_ATTEMPTS {
        match seed.bootstrap(peers.clone()).await {
            Ok(n) if n > 0 => {
                tracing::info!(contacts = n, "joined the network");
                return n;
            }
            Ok(_) => tracing::warn!(attempt, "no bootstrap seed answered; retrying"),
            Err(e) => {
                tracing::warn!(error = %e, "bootstrap failed");
                return 0;
            }
        }
        tokio::time::sleep(JOIN_PAUSE).await;
    }
    0
}

//! What the binaries (`muttr-seed`, `muttr-pod`) share around a running seed: logging to
//! stderr, running `main`'s future with a clean exit status, waiting for SIGINT/SIGTERM,
//! joining the network with retries, and reading the process's own memory use.

use std::net::SocketAddr;
use std::time::Duration;

use crate::driver::SeedHandle;

/// How log lines are written.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event (colours on a terminal unless `NO_COLOR` is set).
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON), for log collectors.
    Json,
}

/// The filter a binary logs at: its `--log` when given, else `RUST_LOG`, else `info`.
pub fn log_filter(flag: Option<&str>) -> String {
    flag.map(str::to_string)
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "info".to_string())
}

/// Checks that `filter` parses as a log filter: the error names it and says why.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    parse_log_filter(filter).map(drop)
}

fn parse_log_filter(filter: &str) -> Result<tracing_subscriber::EnvFilter, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(filter)
        .map_err(|e| format!("invalid log filter {filter:?} (--log or RUST_LOG): {e}"))
}

/// Logs with `tracing` to stderr at `filter` (a level or a tracing filter, see
/// [`log_filter`]) in `format`. A filter that does not parse is an error naming it (a typo
/// such as `debgu` must not silently log at another level).
pub fn init_logging(filter: &str, format: LogFormat) -> Result<(), String> {
    let parsed = parse_log_filter(filter)?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(parsed)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(ansi).init(),
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
    Ok(())
}

/// Tells systemd how the service is doing (`Type=notify` units, `sd_notify(3)`): `READY=1`
/// once the binary serves, `STOPPING=1` when it begins to shut down, `RELOADING=1`… It sends one
/// datagram to the socket named by `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace); when the variable is unset (not under systemd) it does nothing. A failure is
/// logged, never fatal.
pub fn sd_notify(state: &str) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::net::UnixDatagram;
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return;
        };
        let sent = UnixDatagram::unbound().and_then(|sock| {
            let bytes = target.as_encoded_bytes();
            match bytes.strip_prefix(b"@") {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                    sock.send_to_addr(state.as_bytes(), &addr)
                }
                None => sock.send_to(state.as_bytes(), &target),
            }
        });
        if let Err(e) = sent {
            tracing::warn!(error = %e, state, "could not notify systemd");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = state;
}

/// Runs a binary's `main` future on `runtime`: success is exit status 0; an error (or a
/// runtime that could not be built) is printed as `name: error` on stderr with status 1.
pub fn run<F, E>(
    name: &str,
    runtime: std::io::Result<tokio::runtime::Runtime>,
    main: F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let rt = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(main) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A memory figure of this process from `/proc/self/status`, in KiB: `field` is e.g.
/// `"VmRSS:"` (resident now) or `"VmHWM:"` (peak resident). `None` off Linux or if absent.
pub fn memory_kib(field: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C only, off Unix).
///
/// The handlers are installed when this function is *called*, not when the future is first
/// polled: a binary calls it before it tells systemd `READY=1`, so that a SIGTERM sent the
/// moment the service is ready is caught (and answered with `STOPPING=1` and a clean stop)
/// rather than killing the process with the default action. Must be called inside a tokio
/// runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        biased;
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                (Ok(mut term), Err(_)) => {
                    term.recv().await;
                }
                (Err(_), _) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            let _ = tokio::signal::ctrl_c().await;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_memory_on_linux() {
        if cfg!(target_os = "linux") {
            let rss = memory_kib("VmRSS:").expect("VmRSS on Linux");
            let peak = memory_kib("VmHWM:").expect("VmHWM on Linux");
            assert!(rss > 0 && peak >= rss, "rss {rss} peak {peak}");
        }
        assert_eq!(memory_kib("NoSuchField:"), None);
    }

    #[test]
    fn run_maps_results_to_exit_status() {
        let rt = || tokio::runtime::Builder::new_current_thread().build();
        let ok = run("t", rt(), async { Ok::<(), String>(()) });
        assert_eq!(ok, std::process::ExitCode::SUCCESS);
        let err = run("t", rt(), async { Err::<(), _>("boom") });
        assert_eq!(err, std::process::ExitCode::FAILURE);
        let no_rt = run("t", Err(std::io::Error::other("no")), async {
            Ok::<(), String>(())
        });
        assert_eq!(no_rt, std::process::ExitCode::FAILURE);
    }
}

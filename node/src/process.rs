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

/// A seed to join through: `IP:PORT`, or `NAME:PORT` resolved (again at each attempt of
/// [`join`]) through the system's resolver — a Kubernetes service name, a compose service.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerAddr(String);

impl std::str::FromStr for PeerAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<PeerAddr, String> {
        if s.parse::<SocketAddr>().is_ok() {
            return Ok(PeerAddr(s.to_string()));
        }
        match s.rsplit_once(':') {
            Some((host, port))
                if !host.is_empty()
                    && !host.contains(['[', ']', '/', ' '])
                    && port.parse::<u16>().is_ok_and(|p| p > 0) =>
            {
                Ok(PeerAddr(s.to_string()))
            }
            _ => Err(format!("{s:?} is not ADDRESS:PORT or NAME:PORT")),
        }
    }
}

impl TryFrom<String> for PeerAddr {
    type Error = String;
    fn try_from(s: String) -> Result<PeerAddr, String> {
        s.parse()
    }
}

impl From<PeerAddr> for String {
    fn from(p: PeerAddr) -> String {
        p.0
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        PeerAddr(a.to_string())
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PeerAddr {
    /// The addresses it names now (a name that does not resolve yet: none, and a warning).
    pub async fn resolve(&self) -> Vec<SocketAddr> {
        if let Ok(a) = self.0.parse::<SocketAddr>() {
            return vec![a];
        }
        match tokio::net::lookup_host(self.0.as_str()).await {
            Ok(addrs) => addrs.collect(),
            Err(e) => {
                tracing::warn!(peer = %self.0, error = %e, "bootstrap name does not resolve (yet)");
                Vec::new()
            }
        }
    }
}

/// Joins the network through `peers`, retrying while none answers (they may still be
/// starting, or their names not resolve yet). Logs the outcome; returns the contacts learned
/// (0 when every attempt failed).
pub async fn join(seed: SeedHandle, peers: Vec<PeerAddr>) -> usize {
    for attempt in 1..=JOIN_ATTEMPTS {
        let mut addrs = Vec::new();
        for p in &peers {
            addrs.extend(p.resolve().await);
        }
        match seed.bootstrap(addrs).await {
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
    fn a_peer_is_an_address_or_a_name_with_a_port() {
        for ok in [
            "127.0.0.1:4000",
            "[::1]:4000",
            "seed-0.muttr-seeds:4000",
            "seed1:4000",
        ] {
            assert_eq!(ok.parse::<PeerAddr>().map(String::from), Ok(ok.to_string()));
        }
        for bad in [
            "seed1",
            "seed1:",
            ":4000",
            "seed1:0",
            "seed1:70000",
            "a b:1",
            "[::1]",
        ] {
            assert!(bad.parse::<PeerAddr>().is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn a_peer_resolves_addresses_and_names() {
        let a: PeerAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(a.resolve().await, vec!["127.0.0.1:4000".parse().unwrap()]);
        let n: PeerAddr = "localhost:4000".parse().unwrap();
        assert!(
            n.resolve()
                .await
                .iter()
                .all(|a| a.port() == 4000 && a.ip().is_loopback())
        );
        let none: PeerAddr = "no-such-host.invalid:4000".parse().unwrap();
        assert!(none.resolve().await.is_empty());
    }

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

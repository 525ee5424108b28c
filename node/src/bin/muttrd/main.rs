//! `muttrd`: a long-lived Muttr client per identity, that other programs (bots, GUIs,
//! bridges) talk to over a UNIX socket in JSON lines — the original muttrd's IPC.
//!
//! ```text
//! muttrd [--home DIR] [--socket PATH] [--name NAME] [--bootstrap ADDR…] [--passive]
//! ```
//!
//! It keeps, for as long as it runs:
//! - your pod session: a push subscription that reconnects and plays back what arrived
//!   meanwhile ([`muttr_node::client::Listener`]), forwarded to subscribers;
//! - unless `--passive`, a seed of its own in the DHT (values in `HOME/seed`, SQLite), joined
//!   through `--bootstrap` or the seed the pod names on its status page: messages are stored
//!   and fetched through it, and it republishes what it published (PROFILE P-K2) while the
//!   daemon runs and after a restart;
//! - the socket (`--socket`, default `HOME/muttrd.sock`, mode 0600) and a lock
//!   (`HOME/muttrd.lock`): a second daemon for the same home refuses to start.
//!
//! The home is `muttr`'s (`--home`, `$MUTTR_HOME`, …): register with `muttr register` and take
//! an alias with `muttr alias add` first. With no identity, `--name NAME` makes one (and says
//! so). The API is in [`api`] and `node/DAEMON.md`.

mod api;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use muttr_node::client::home::Home;
use muttr_node::crypto::{Identity, KeyKind};
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{Quotas, SqliteStore};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use api::Daemon;

/// Run a Muttr daemon for one identity: pod session, own seed, JSON socket API.
#[derive(Debug, Parser)]
#[command(name = "muttrd", version = muttr_node::VERSION)]
struct Args {
    /// Home directory (identity, contacts, pod.toml), as for `muttr` (default: $MUTTR_HOME,
    /// then $XDG_CONFIG_HOME/muttr, then ~/.config/muttr).
    #[arg(long)]
    home: Option<PathBuf>,
    /// Read the passphrase of your secret key from this file (else $MUTTR_PASSPHRASE).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
    /// The socket to serve the API on [default: HOME/muttrd.sock].
    #[arg(long)]
    socket: Option<PathBuf>,
    /// With no identity in the home: make one with this user ID.
    #[arg(long)]
    name: Option<String>,
    /// Seeds to join the DHT through (repeatable) [default: the seed the pod names].
    #[arg(long = "bootstrap", value_name = "ADDR")]
    bootstrap: Vec<SocketAddr>,
    /// UDP address of the daemon's own seed.
    #[arg(long, default_value = "127.0.0.1:0")]
    seed_listen: SocketAddr,
    /// No seed of its own: the pod stores and fetches for you.
    #[arg(long)]
    passive: bool,
    /// Also trust the CA certificates in this PEM file for https:// pods (repeatable).
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_files: Vec<PathBuf>,
    /// Log level or filter; default: $RUST_LOG, else info.
    #[arg(long)]
    log: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = muttr_node::process::log_filter(args.log.as_deref());
    if let Err(e) = muttr_node::process::init_logging(&filter, muttr_node::process::LogFormat::Text)
    {
        eprintln!("muttrd: {e}");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build();
    muttr_node::process::run("muttrd", rt, run(args))
}

async fn run(args: Args) -> Result<(), String> {
    let home = Home::resolve(args.home.clone(), args.passphrase_file.clone());
    std::fs::create_dir_all(home.dir()).map_err(|e| format!("{}: {e}", home.dir().display()))?;
    // One daemon per home: the lock is held for the process's life (released by the OS
    // however it ends, so a crash leaves no stale lock).
    let lock_path = home.dir().join("muttrd.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    if let Err(e) = lock.try_lock() {
        return Err(format!(
            "another muttrd is running for {} ({}: {e})",
            home.dir().display(),
            lock_path.display()
        ));
    }
    if !home.identity_path().exists() {
        let Some(name) = &args.name else {
            return Err(format!(
                "no identity at {}: give --name NAME to make one, or run `muttr keygen`",
                home.identity_path().display()
            ));
        };
        let id = Identity::generate(name, KeyKind::Cv25519, std::time::SystemTime::now())
            .map_err(|e| e.to_string())?;
        let passphrase = home.passphrase().map_err(|e| e.to_string())?;
        id.save(&home.identity_path(), passphrase.as_deref())
            .map_err(|e| e.to_string())?;
        println!(
            "muttrd: made a new identity {} (pubkeyhash {}) at {}",
            name,
            id.public().pubkeyhash(),
            home.identity_path().display()
        );
    }
    let (mut client, file) = home.pod_client(&args.ca_files).map_err(|e| e.to_string())?;

    let mut seed = None;
    if !args.passive {
        let values = SqliteStore::open(
            &home.dir().join("seed"),
            Quotas::from_config(&muttr_node::Config::default()),
        )
        .map_err(|e| e.to_string())?;
        let s = spawn_seed(
            TokioTransport,
            SeedOptions::new(args.seed_listen, rand::random()),
            values,
            Clock::system(),
        )
        .await
        .map_err(|e| format!("seed cannot listen on {}: {e}", args.seed_listen))?;
        let peers = if args.bootstrap.is_empty() {
            pod_seed(&client).await?
        } else {
            args.bootstrap.clone()
        };
        let joined =
            muttr_node::process::join(s.handle(), peers.iter().copied().map(Into::into).collect())
                .await;
        if joined == 0 {
            return Err(format!(
                "no seed answered at {peers:?}: use --passive to go through the pod"
            ));
        }
        tracing::info!(seed = %s.contact().socket_addr(), contacts = joined, "seed joined");
        client = client.with_seed(s.handle());
        seed = Some(s);
    }

    let (events, _) = tokio::sync::broadcast::channel(1024);
    let daemon = Arc::new(Daemon {
        client,
        pod: file.pod.clone(),
        seed: seed.as_ref().map(|s| s.handle()),
        events,
        connected: std::sync::atomic::AtomicBool::new(false),
        contacts_dir: home.contacts_dir(),
    });
    tokio::spawn(listen(daemon.clone()));

    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| home.dir().join("muttrd.sock"));
    // We hold the lock: a socket file left there is a dead daemon's.
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", socket.display()))?;
    }
    let shutdown = muttr_node::process::shutdown_signal();
    println!(
        "muttrd serving {} for {} at {}",
        socket.display(),
        daemon
            .client
            .user_id()
            .map_or_else(|| daemon.client.pubkeyhash(), |u| u.to_string()),
        daemon.pod
    );
    muttr_node::process::sd_notify("READY=1");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve(daemon.clone(), stream));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
        }
    }
    let _ = std::fs::remove_file(&socket);
    if let Some(s) = seed {
        s.shutdown().await.map_err(|e| format!("seed: {e}"))?;
    }
    drop(lock);
    Ok(())
}

/// The seed the pod names on its status page (`GET /`, JSON: `seed.address`).
async fn pod_seed(client: &muttr_node::client::Client) -> Result<Vec<SocketAddr>, String> {
    let status = client
        .pod_status()
        .await
        .map_err(|e| format!("asking the pod for its seed: {e} (or give --bootstrap ADDR)"))?;
    status["seed"]["address"]
        .as_str()
        .and_then(|a| a.parse().ok())
        .map(|a| vec![a])
        .ok_or_else(|| "the pod names no seed on its status page: give --bootstrap ADDR".into())
}

/// The pod session: every entry heard is opened and sent to subscribers.
async fn listen(d: Arc<Daemon>) {
    use std::sync::atomic::Ordering;
    let mut sub = loop {
        match d.client.listener().await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe at the pod; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        }
    };
    d.connected.store(true, Ordering::Relaxed);
    loop {
        let heard = sub.next().await;
        match &heard {
            muttr_node::client::Heard::Entry(n) => {
                let delivery = d.client.open(n.clone()).await;
                let _ = d.events.send(muttr_node::client::delivery_json(&delivery));
            }
            muttr_node::client::Heard::Dropped(_) => d.connected.store(false, Ordering::Relaxed),
            muttr_node::client::Heard::Reconnected { .. } => {
                d.connected.store(true, Ordering::Relaxed)
            }
        }
        if let Some(event) = muttr_node::client::heard_json(&heard) {
            let _ = d.events.send(event);
        }
    }
}

/// One API connection: requests answered in order; after `subscribe`, events interleaved.
async fn serve(d: Arc<Daemon>, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let mut events: Option<tokio::sync::broadcast::Receiver<serde_json::Value>> = None;
    loop {
        let out = tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) if line.trim().is_empty() => continue,
                Ok(Some(line)) => {
                    let (answer, subscribe) = api::answer(&d, &line).await;
                    if subscribe && events.is_none() {
                        events = Some(d.events.subscribe());
                    }
                    answer
                }
                Ok(None) | Err(_) => return,
            },
            ev = async { events.as_mut().expect("guarded").recv().await }, if events.is_some() => match ev {
                Ok(v) => v,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => serde_json::json!({
                    "event": "lagged", "missed": n,
                    "hint": "events were dropped for this slow subscriber: use playback",
                }),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
        };
        let mut text = out.to_string();
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

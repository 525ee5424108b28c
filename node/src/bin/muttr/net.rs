//! The network commands: `register`, `alias add`, `send`, `inbox`, `listen` — the client
//! library ([`muttr_node::client`]) behind a command line. Your pod and alias are remembered
//! in `pod.toml` in the home directory.
//!
//! Passive by default (the pod stores and fetches for you). With `--bootstrap ADDR` (a seed,
//! e.g. your pod's embedded seed) the command runs a seed of its own for the duration and
//! stores and fetches in the DHT directly (active mode); `--passive` forces passive mode.
//!
//! `https://` pods are checked against the Mozilla and system roots; `--ca-file FILE` adds the
//! CA (or self-signed certificate) of pods with private certificates. Given to `register`,
//! the files are remembered in `pod.toml` for the other commands.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use muttr_node::client::{Client, ClientConfig, Delivery};
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};

use crate::Failure;
use crate::home::Home;

/// Options every network command takes.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// Join the DHT through this seed and store/fetch directly (active mode).
    #[arg(long, value_name = "ADDR", global = true)]
    bootstrap: Vec<SocketAddr>,
    /// UDP address of your own seed in active mode.
    #[arg(long, default_value = "127.0.0.1:0", global = true)]
    seed_listen: SocketAddr,
    /// Never join the DHT: the pod stores and fetches for you.
    #[arg(long, global = true)]
    passive: bool,
    /// Also trust the CA certificates in this PEM file for https:// pods (repeatable; added
    /// to those `register` remembered).
    #[arg(long = "ca-file", value_name = "FILE", global = true)]
    ca_files: Vec<PathBuf>,
    /// Print JSON lines for scripts (the shapes of node/DAEMON.md) instead of text.
    #[arg(long, global = true)]
    json: bool,
}

/// Arguments of `muttr register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Your pod, e.g. `https://muttr.me` or `http://127.0.0.1:8080`.
    #[arg(long)]
    pod: String,
    /// Reach other pods over plain http:// (local networks only).
    #[arg(long)]
    insecure: bool,
    /// Also trust the CA certificates in this PEM file for https:// pods (repeatable;
    /// remembered for the other commands).
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_files: Vec<PathBuf>,
}

/// `muttr alias …`.
#[derive(Debug, Subcommand)]
pub enum AliasCmd {
    /// Take NAME at your pod: you become NAME@pod.
    Add {
        /// The alias (`[a-z0-9][a-z0-9._-]{0,63}`).
        name: String,
    },
}

/// Arguments of `muttr send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The recipient, alias@pod.
    to: String,
    /// The message; `-` or nothing reads it from stdin.
    text: Option<String>,
}

/// Arguments of `muttr inbox`.
#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Leave the notifications at the pod (default: purge them once every message was read).
    #[arg(long)]
    keep: bool,
}

/// A connection to the `muttrd` serving this home (`HOME/muttrd.sock`), if one runs: the
/// commands then go through it (its seed, its session) instead of starting their own.
struct DaemonApi {
    read: std::io::BufReader<std::os::unix::net::UnixStream>,
    write: std::os::unix::net::UnixStream,
    next: u64,
}

impl DaemonApi {
    fn connect(home: &Home, net: &NetArgs) -> Option<DaemonApi> {
        // Explicit network options ask for this command's own connection.
        if net.passive || !net.bootstrap.is_empty() {
            return None;
        }
        let s = std::os::unix::net::UnixStream::connect(home.dir().join("muttrd.sock")).ok()?;
        Some(DaemonApi {
            read: std::io::BufReader::new(s.try_clone().ok()?),
            write: s,
            next: 0,
        })
    }

    /// The next line from the daemon.
    fn line(&mut self) -> Result<serde_json::Value, Failure> {
        use std::io::BufRead;
        let mut line = String::new();
        if self.read.read_line(&mut line)? == 0 {
            return Err(Failure("muttrd closed the connection".into()));
        }
        Ok(serde_json::from_str(&line)?)
    }

    /// One request; its answer's fields, or the daemon's error.
    fn call(&mut self, mut req: serde_json::Value) -> Result<serde_json::Value, Failure> {
        use std::io::Write;
        self.next += 1;
        req["id"] = self.next.into();
        writeln!(self.write, "{req}")?;
        loop {
            let v = self.line()?;
            if v.get("event").is_some() {
                continue;
            }
            if v["ok"] == true {
                return Ok(v);
            }
            return Err(Failure(format!(
                "muttrd: {}",
                v["error"].as_str().unwrap_or("error")
            )));
        }
    }
}

/// Prints a message in the JSON shape of [`muttr_node::client::delivery_json`] (as the
/// daemon sends it, or made here): the line itself with `--json`, else text; true when
/// verified.
fn show_json(m: &serde_json::Value, json: bool) -> bool {
    let verified = m["verified"] == true;
    if json {
        println!("{m}");
        return verified;
    }
    let from = m["from"].as_str().unwrap_or("?");
    let key = m["key"].as_str().unwrap_or("?");
    match m["text"].as_str() {
        Some(text) if verified => println!("from {from} (verified) key {key}:\n{text}"),
        Some(text) => println!(
            "WARNING: NOT VERIFIED as from {from} ({}) key {key}:\n{text}",
            m["verdict_text"].as_str().unwrap_or("?")
        ),
        None => println!(
            "UNREADABLE from {from} key {key}: {}",
            m["error"].as_str().unwrap_or("?")
        ),
    }
    verified
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// A client for the configured pod, active when asked (its seed must outlive it).
pub async fn client(
    home: &Home,
    net: &NetArgs,
) -> Result<
    (
        Client,
        muttr_node::client::home::PodFile,
        Option<Seed<MemStore>>,
    ),
    Failure,
> {
    let (mut client, file) = home.pod_client(&net.ca_files)?;
    let clock = Clock::system();
    let mut seed = None;
    if !net.passive && !net.bootstrap.is_empty() {
        let s = spawn_seed(
            TokioTransport,
            SeedOptions::new(net.seed_listen, rand::random()),
            MemStore::new(Quotas::from_config(&muttr_node::Config::default())),
            clock,
        )
        .await?;
        let contacts = s.handle().bootstrap(net.bootstrap.clone()).await?;
        if contacts == 0 {
            return Err(Failure(format!(
                "no seed answered at {:?}: use --passive to go through the pod",
                net.bootstrap
            )));
        }
        eprintln!(
            "active mode: seed {} joined with {contacts} contacts",
            s.contact().socket_addr()
        );
        client = client.with_seed(s.handle());
        seed = Some(s);
    }
    Ok((client, file, seed))
}

pub fn register(home: &Home, a: RegisterArgs) -> Result<ExitCode, Failure> {
    let ca_files = a
        .ca_files
        .iter()
        .map(|p| std::path::absolute(p).map_err(|e| Failure(format!("{}: {e}", p.display()))))
        .collect::<Result<Vec<_>, _>>()?;
    let file = muttr_node::client::home::PodFile {
        pod: a.pod.trim_end_matches('/').to_string(),
        insecure: a.insecure,
        alias: None,
        ca_files,
    };
    let mut config = ClientConfig::new(file.pod.clone());
    config.insecure = file.insecure;
    let client = home.client(config, &file.ca_files)?;
    let hash = runtime()?.block_on(client.register())?;
    home.save_pod(&file)?;
    println!("registered at {} as {hash}", file.pod);
    Ok(ExitCode::SUCCESS)
}

pub fn alias(home: &Home, net: NetArgs, cmd: AliasCmd) -> Result<ExitCode, Failure> {
    let AliasCmd::Add { name } = cmd;
    runtime()?.block_on(async {
        let (mut client, mut file, _seed) = client(home, &net).await?;
        let id = client.add_alias(&name).await?;
        file.alias = Some(name);
        home.save_pod(&file)?;
        println!("you are {id}");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn send(home: &Home, net: NetArgs, a: SendArgs) -> Result<ExitCode, Failure> {
    let text = match a.text.as_deref() {
        Some("-") | None => {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        }
        Some(t) => t.as_bytes().to_vec(),
    };
    if let (Some(mut d), Ok(text)) = (DaemonApi::connect(home, &net), std::str::from_utf8(&text)) {
        let r = d.call(serde_json::json!({"op": "send", "to": a.to, "text": text}))?;
        if net.json {
            println!(
                "{}",
                serde_json::json!({"to": a.to, "key": r["key"], "stored_at": r["stored_at"],
                                   "entry": r["entry"]})
            );
        } else {
            println!(
                "sent to {} key {} (through muttrd)",
                a.to,
                r["key"].as_str().unwrap_or("?")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    runtime()?.block_on(async {
        let (client, _, _seed) = client(home, &net).await?;
        let report = client.send(&a.to, &text).await?;
        if net.json {
            println!(
                "{}",
                serde_json::json!({"to": a.to, "key": report.key, "stored_at": report.stored_at,
                                   "entry": report.notification.id})
            );
        } else {
            println!("sent to {} key {}", a.to, report.key);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints one delivery (text, or a JSON line); true when it is a verified message.
fn show(d: &Delivery, json: bool) -> bool {
    show_json(&muttr_node::client::delivery_json(d), json)
}

pub fn inbox(home: &Home, net: NetArgs, a: InboxArgs) -> Result<ExitCode, Failure> {
    if let Some(mut d) = DaemonApi::connect(home, &net) {
        let p = d.call(serde_json::json!({"op": "playback"}))?;
        let messages = p["messages"].as_array().cloned().unwrap_or_default();
        let mut all_good = true;
        for m in &messages {
            all_good &= show_json(m, net.json);
        }
        if !net.json {
            println!("{} message(s) (through muttrd)", messages.len());
        }
        let all_read = messages.iter().all(|m| m.get("text").is_some());
        if !a.keep && !messages.is_empty() && all_read && p["upto"].is_string() {
            let r = d.call(serde_json::json!({"op": "purge", "upto": p["upto"]}))?;
            eprintln!(
                "purged from the pod up to entry {} ({} newer kept)",
                p["upto"], r["left"]
            );
        } else if !a.keep && !messages.is_empty() {
            eprintln!("not purged: some messages could not be read, or the pod gives no entry ids");
        }
        return Ok(if all_good {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    runtime()?.block_on(async {
        let (client, _, _seed) = client(home, &net).await?;
        // Play back, read, then purge up to the highest id played back (PROFILE P-X1), so
        // a message that reaches the pod meanwhile is kept for next time.
        let notes = client.notifications().await?;
        let upto = muttr_node::client::highest_id(&notes);
        let mut deliveries = Vec::new();
        for n in notes {
            deliveries.push(client.open(n).await);
        }
        let all_read = deliveries.iter().all(|d| d.is_ok());
        let mut all_good = true;
        for d in &deliveries {
            all_good &= show(d, net.json);
        }
        if !net.json {
            println!("{} message(s)", deliveries.len());
        }
        if !a.keep && !deliveries.is_empty() {
            if !all_read {
                eprintln!("not purged: some messages could not be read (try again later)");
            } else if let Some(id) = upto {
                let left = client.purge(Some(&id)).await?;
                eprintln!(
                    "purged from the pod up to entry {id} ({} newer entr{} kept)",
                    left.len(),
                    if left.len() == 1 { "y" } else { "ies" }
                );
            } else {
                eprintln!(
                    "not purged: the pod gives no entry ids (PROFILE P-X1), so a purge could \
                     delete messages that arrived after this playback"
                );
            }
        }
        Ok(if all_good {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    })
}

pub fn listen(home: &Home, net: NetArgs) -> Result<ExitCode, Failure> {
    if let Some(mut d) = DaemonApi::connect(home, &net) {
        d.call(serde_json::json!({"op": "subscribe"}))?;
        eprintln!("listening through muttrd (Ctrl-C to stop)");
        loop {
            let v = d.line()?;
            match v["event"].as_str() {
                Some("message") => {
                    show_json(&v, net.json);
                }
                Some(_) if net.json => println!("{v}"),
                Some("connection") => eprintln!("muttrd: connection {}", v["state"]),
                _ => {}
            }
        }
    }
    runtime()?.block_on(async {
        let (client, _, _seed) = client(home, &net).await?;
        // A listener that outlives dropped connections and pod restarts: it reconnects
        // with backoff and plays back what arrived meanwhile, each entry once.
        let mut sub = client.listener().await?;
        eprintln!("listening (Ctrl-C to stop)");
        loop {
            let heard = tokio::select! {
                biased;
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                h = sub.next() => h,
            };
            if net.json
                && let Some(event) = muttr_node::client::heard_json(&heard)
            {
                println!("{event}");
            }
            match heard {
                muttr_node::client::Heard::Entry(n) => {
                    show(&client.open(n).await, net.json);
                }
                muttr_node::client::Heard::Dropped(why) => {
                    eprintln!("connection lost ({why}); reconnecting");
                }
                muttr_node::client::Heard::Reconnected { missed } => {
                    eprintln!("reconnected; {missed} message(s) arrived meanwhile");
                }
            }
        }
    })
}

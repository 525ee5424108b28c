//! The users of one pod: a `muttr-testbed client` process in the pod's namespace.
//!
//! It registers the pod's users (`node::client::Client`, the library users' programs use),
//! then sends the messages of its [`Plan`] and reads what arrives, reporting every step as a
//! JSON line ([`Event`]) on stdout for the runner. It behaves like a patient real client, on
//! the client library's one retry policy (`muttr_node::client::retry`):
//!
//! - **send**: seal to the recipient's key (fetched once, before the workload, as a client
//!   keeps its contacts' keys), store through our pod (`POST /messages`) under
//!   [`Client::with_retry`] — a store still failing after it is given up as never
//!   acknowledged —, then notify the recipient's pod (`POST /inboxes/…`) under the same policy,
//!   round after round ([`retry::patience`] between rounds) until it answers or the run stops.
//!   The message counts as *acknowledged* once our pod accepted the store: from then on the
//!   protocol owes its delivery.
//! - **receive**: each user listens through the library's [`Listener`] (it reconnects after a
//!   drop and plays back what it missed) and plays the inbox back every [`POLL`] as a safety
//!   net. Each new notification is fetched (`GET /messages/KEY`), decrypted and verified
//!   against the sender's key from the sender's pod; a fetch that fails or a signature that
//!   cannot yet be checked (the sender's pod is cut off) is retried until it succeeds or the
//!   run stops. Delivered = verified plaintext whose embedded id matches. Every [`POLL`] the
//!   user purges its inbox up to the entries it has read (`DELETE /inboxes?upto=ID`, PROFILE
//!   P-X1), never past one it is still reading.
//!
//! Commands arrive on stdin ([`Command`]): `prefetch` the keys, `start` the clock, `stop`.
//!
//! [`Listener`]: muttr_node::client::Listener

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use muttr_node::client::{
    Client, ClientConfig, ClientError, Heard, InboxCursor, Notification, TcpDialer, UserId, retry,
};
use muttr_node::crypto::{Identity, KeyKind, PublicKey};
use muttr_node::net::Clock;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// Period of the inbox playback that backs up the WebSocket, and of the purges.
pub const POLL: Duration = Duration::from_secs(15);
/// Timeout of each HTTP request (the links are slow and lossy on purpose).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// What one client process does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The pod's index.
    pub pod: usize,
    /// The pod's URL, e.g. `http://10.77.0.40:8080`.
    pub pod_url: String,
    /// The aliases of this pod's users.
    pub users: Vec<String>,
    /// Plaintext size.
    pub message_bytes: usize,
    /// The messages this pod's users send, in time order.
    pub messages: Vec<Planned>,
    /// The CA certificate (PEM) of the run's pods when they serve HTTPS; `None`: plain HTTP.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

/// One message of the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Planned {
    /// Its id (unique in the run).
    pub id: String,
    /// Index of the sending user in [`Plan::users`].
    pub from: usize,
    /// The recipient's user ID.
    pub to: String,
    /// When to send it, ms after the workload's start.
    pub at_ms: u64,
}

/// A command from the runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Fetch these users' keys (every user of the other pods).
    Prefetch(Vec<String>),
    /// Start the workload now (`t0`, Unix ms, for the event times).
    Start(u64),
    /// Report what is pending and exit.
    Stop,
}

/// A step, reported as one JSON line; `t` is Unix ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum Event {
    /// Every user is registered and has its alias.
    Ready {
        /// The pod.
        pod: usize,
        /// Their user IDs.
        users: Vec<String>,
    },
    /// Every key of `prefetch` is known.
    Keys {
        /// The pod.
        pod: usize,
    },
    /// Our pod acknowledged the store.
    Acked {
        /// Message id.
        id: String,
        /// Its DHT key.
        key: String,
        /// When.
        t: u64,
        /// Store attempts.
        attempts: u32,
    },
    /// The store was never acknowledged.
    Unacked {
        /// Message id.
        id: String,
        /// The last error.
        error: String,
    },
    /// The recipient's pod took the notification.
    Notified {
        /// Message id.
        id: String,
        /// When.
        t: u64,
        /// Attempts.
        attempts: u32,
    },
    /// Delivered: fetched, decrypted, verified.
    Delivered {
        /// Message id.
        id: String,
        /// The recipient.
        to: String,
        /// When.
        t: u64,
        /// Fetch/open attempts.
        attempts: u32,
    },
    /// A message arrived that does not verify or is not what was sent (never retried).
    Bad {
        /// Its DHT key.
        key: String,
        /// The recipient.
        to: String,
        /// What was wrong.
        reason: String,
    },
    /// At stop: a notification still not acknowledged.
    NotifyPending {
        /// Message id.
        id: String,
        /// The last error.
        error: String,
    },
    /// At stop: a notification received whose message was not read yet.
    FetchPending {
        /// Its DHT key.
        key: String,
        /// The recipient.
        to: String,
        /// The last error.
        error: String,
    },
    /// The process is done.
    Done {
        /// The pod.
        pod: usize,
    },
}

/// The text of message `id`: its id on the first line, padded to `bytes`.
pub fn message_text(id: &str, bytes: usize) -> Vec<u8> {
    let mut t = format!("muttr-testbed {id}\n").into_bytes();
    while t.len() < bytes {
        t.push(b'a' + (t.len() % 26) as u8);
    }
    t
}

/// The id inside a message text, if it is one of ours.
pub fn message_id(text: &[u8]) -> Option<&str> {
    let first = text.split(|&b| b == b'\n').next()?;
    std::str::from_utf8(first)
        .ok()?
        .strip_prefix("muttr-testbed ")
}

/// Wall-clock Unix ms (the testbed runs real processes on real time; event times use it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The waits between the rounds of a step retried until the run stops: the client library's
/// reconnect curve ([`retry::patience`]), its jitter drawn from `what` (a message id, a key).
fn patience(what: &str) -> impl Iterator<Item = Duration> + Send + use<> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    what.hash(&mut h);
    retry::patience(h.finish())
}

/// Writes events as JSON lines on stdout, one at a time.
#[derive(Clone)]
struct Out(Arc<Mutex<()>>);

impl Out {
    fn emit(&self, e: &Event) {
        let _g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(line) = serde_json::to_string(e) {
            println!("{line}");
        }
    }
}

/// What is still owed, reported at stop.
#[derive(Default)]
struct Pending {
    notify: BTreeMap<String, String>,
    fetch: BTreeMap<(String, String), String>,
}

struct User {
    client: Client,
    id: String,
}

/// Runs the client process for `plan` until `stop` (or stdin closes).
pub async fn run(plan: Plan) -> anyhow::Result<()> {
    let out = Out(Arc::new(Mutex::new(())));
    let clock = Clock::system();
    let mut users = Vec::new();
    for alias in &plan.users {
        let identity = Identity::generate(alias, KeyKind::Cv25519, clock.now_system())?;
        let mut config = ClientConfig::new(plan.pod_url.clone());
        config.insecure = plan.ca_file.is_none();
        config.timeout = HTTP_TIMEOUT;
        let mut client = match &plan.ca_file {
            Some(ca) => {
                let tls = muttr_node::trust::client_config(std::slice::from_ref(ca))?;
                Client::with_dialer(identity, config, clock, TcpDialer::trusting(tls))?
            }
            None => Client::new(identity, config, clock)?,
        };
        let mut attempt = 0;
        let id = loop {
            let r = async {
                client.register().await?;
                client.add_alias(alias).await
            }
            .await;
            match r {
                Ok(u) => break u.to_string(),
                Err(e) if attempt < 60 => {
                    attempt += 1;
                    eprintln!("register {alias}: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => anyhow::bail!("cannot register {alias} at {}: {e}", plan.pod_url),
            }
        };
        users.push(Arc::new(User { client, id }));
    }
    out.emit(&Event::Ready {
        pod: plan.pod,
        users: users.iter().map(|u| u.id.clone()).collect(),
    });

    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<Command>(&line) {
                Ok(c) => {
                    if cmd_tx.send(c).await.is_err() {
                        return;
                    }
                }
                Err(e) => eprintln!("client: ignored command {line:?}: {e}"),
            }
        }
        let _ = cmd_tx.send(Command::Stop).await;
    });

    let pending = Arc::new(Mutex::new(Pending::default()));
    let seen = Arc::new(Mutex::new(HashSet::<(String, String)>::new()));
    let keys = Arc::new(Mutex::new(BTreeMap::<String, PublicKey>::new()));
    let mut tasks = tokio::task::JoinSet::new();
    // Receivers run from the start: nothing arrives before `start`, but they are ready.
    for u in &users {
        tasks.spawn(receive(
            u.clone(),
            out.clone(),
            pending.clone(),
            seen.clone(),
        ));
    }
    loop {
        match cmd_rx.recv().await.unwrap_or(Command::Stop) {
            Command::Prefetch(all) => {
                let asker = users[0].clone();
                let mut waits = patience("prefetch");
                for user in all {
                    loop {
                        let parsed = UserId::parse(&user)?;
                        match asker.client.key_of(&parsed).await {
                            Ok(k) => {
                                keys.lock().expect("keys").insert(user.clone(), k);
                                break;
                            }
                            Err(e) => {
                                eprintln!("key of {user}: {e}; retrying");
                                tokio::time::sleep(waits.next().unwrap_or(retry::MAX_DELAY)).await;
                            }
                        }
                    }
                }
                out.emit(&Event::Keys { pod: plan.pod });
            }
            Command::Start(t0) => {
                for m in plan.messages.clone() {
                    let sender = users[m.from].clone();
                    let key = keys.lock().expect("keys").get(&m.to).cloned();
                    let text = message_text(&m.id, plan.message_bytes);
                    tasks.spawn(send(sender, m, key, text, t0, out.clone(), pending.clone()));
                }
            }
            Command::Stop => break,
        }
    }
    tasks.abort_all();
    let p = pending.lock().unwrap_or_else(|p| p.into_inner());
    for (id, error) in &p.notify {
        out.emit(&Event::NotifyPending {
            id: id.clone(),
            error: error.clone(),
        });
    }
    for ((key, to), error) in &p.fetch {
        out.emit(&Event::FetchPending {
            key: key.clone(),
            to: to.clone(),
            error: error.clone(),
        });
    }
    out.emit(&Event::Done { pod: plan.pod });
    Ok(())
}

async fn send(
    user: Arc<User>,
    m: Planned,
    their_key: Option<PublicKey>,
    text: Vec<u8>,
    t0: u64,
    out: Out,
    pending: Arc<Mutex<Pending>>,
) {
    let due = t0 + m.at_ms;
    tokio::time::sleep(Duration::from_millis(due.saturating_sub(now_ms()))).await;
    let Some(their_key) = their_key else {
        out.emit(&Event::Unacked {
            id: m.id,
            error: format!("no key for {}", m.to),
        });
        return;
    };
    let value = match user.client.seal(&their_key, &text) {
        Ok(v) => v,
        Err(e) => {
            out.emit(&Event::Unacked {
                id: m.id,
                error: format!("seal: {e}"),
            });
            return;
        }
    };
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let stored = user
        .client
        .with_retry(|| {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            user.client.store(value.clone())
        })
        .await;
    let attempts = attempts.into_inner();
    let key = match stored {
        Ok((key, _)) => key,
        Err(e) => {
            out.emit(&Event::Unacked {
                id: m.id,
                error: format!("{e} (after {attempts} attempts)"),
            });
            return;
        }
    };
    out.emit(&Event::Acked {
        id: m.id.clone(),
        key: key.clone(),
        t: now_ms(),
        attempts,
    });
    let to = match UserId::parse(&m.to) {
        Ok(u) => u,
        Err(e) => {
            pending
                .lock()
                .expect("pending")
                .notify
                .insert(m.id, e.to_string());
            return;
        }
    };
    let mut rounds = 0;
    let mut waits = patience(&m.id);
    loop {
        rounds += 1;
        match user
            .client
            .with_retry(|| user.client.notify(&to, &key))
            .await
        {
            Ok(_) => {
                pending.lock().expect("pending").notify.remove(&m.id);
                out.emit(&Event::Notified {
                    id: m.id,
                    t: now_ms(),
                    attempts: rounds,
                });
                return;
            }
            Err(e) => {
                pending
                    .lock()
                    .expect("pending")
                    .notify
                    .insert(m.id.clone(), e.to_string());
                tokio::time::sleep(waits.next().unwrap_or(retry::MAX_DELAY)).await;
            }
        }
    }
}

async fn receive(
    user: Arc<User>,
    out: Out,
    pending: Arc<Mutex<Pending>>,
    seen: Arc<Mutex<HashSet<(String, String)>>>,
) {
    let (tx, mut rx) = mpsc::channel::<Notification>(1024);
    let cursor = Arc::new(Mutex::new(InboxCursor::default()));
    // Push: the library's listener, which reconnects and plays back what it missed.
    let push = {
        let user = user.clone();
        let tx = tx.clone();
        async move {
            let mut waits = patience(&user.id);
            let mut listener = loop {
                match user.client.listener().await {
                    Ok(l) => break l,
                    Err(e) => {
                        eprintln!("{}: listen: {e}", user.id);
                        tokio::time::sleep(waits.next().unwrap_or(retry::MAX_DELAY)).await;
                    }
                }
            };
            loop {
                match listener.next().await {
                    Heard::Entry(n) => {
                        if tx.send(n).await.is_err() {
                            return;
                        }
                    }
                    Heard::Dropped(why) => eprintln!("{}: push: {why}; reconnecting", user.id),
                    Heard::Reconnected { missed } => {
                        eprintln!("{}: push: back, {missed} missed", user.id)
                    }
                }
            }
        }
    };
    // Playback: the inbox, now and then, after purging what was read.
    let poll = {
        let user = user.clone();
        let cursor = cursor.clone();
        async move {
            loop {
                tokio::time::sleep(POLL).await;
                let upto = cursor.lock().expect("cursor").purgeable();
                if let Some(upto) = upto {
                    let id = upto.to_string();
                    match user
                        .client
                        .with_retry(|| user.client.purge(Some(&id)))
                        .await
                    {
                        Ok(_) => cursor.lock().expect("cursor").purged(upto),
                        Err(e) => eprintln!("{}: purge: {e}", user.id),
                    }
                }
                match user.client.notifications().await {
                    Ok(all) => {
                        for n in all {
                            if tx.send(n).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(e) => eprintln!("{}: playback: {e}", user.id),
                }
            }
        }
    };
    let handle = async {
        let mut opens = tokio::task::JoinSet::new();
        while let Some(n) = rx.recv().await {
            let id = n.id_number();
            let fresh = seen
                .lock()
                .expect("seen")
                .insert((n.key.clone(), user.id.clone()));
            if let Some(id) = id {
                cursor.lock().expect("cursor").heard(id, fresh);
            }
            if fresh {
                let (user, out, pending, cursor) =
                    (user.clone(), out.clone(), pending.clone(), cursor.clone());
                opens.spawn(async move {
                    open(user, n, out, pending).await;
                    if let Some(id) = id {
                        cursor.lock().expect("cursor").read(id);
                    }
                });
            }
            while opens.try_join_next().is_some() {}
        }
    };
    tokio::join!(push, poll, handle);
}

async fn open(user: Arc<User>, n: Notification, out: Out, pending: Arc<Mutex<Pending>>) {
    let slot = (n.key.clone(), user.id.clone());
    let mut attempts = 0;
    let mut waits = patience(&n.key);
    loop {
        attempts += 1;
        let error = match user.client.open(n.clone()).await {
            Ok(r) if r.verdict.is_good() => {
                pending.lock().expect("pending").fetch.remove(&slot);
                match message_id(&r.plaintext) {
                    Some(id) => out.emit(&Event::Delivered {
                        id: id.to_string(),
                        to: user.id.clone(),
                        t: now_ms(),
                        attempts,
                    }),
                    None => out.emit(&Event::Bad {
                        key: n.key.clone(),
                        to: user.id.clone(),
                        reason: "verified, but not a testbed message".into(),
                    }),
                }
                return;
            }
            // The sender's key could not be fetched (its pod is cut off): check later.
            Ok(r) if matches!(r.verdict, muttr_node::crypto::Verdict::UnknownSigner { .. }) => {
                format!("cannot verify yet: {}", r.verdict)
            }
            Ok(r) => {
                pending.lock().expect("pending").fetch.remove(&slot);
                out.emit(&Event::Bad {
                    key: n.key.clone(),
                    to: user.id.clone(),
                    reason: format!("signature: {}", r.verdict),
                });
                return;
            }
            Err(u) => match u.error {
                ClientError::Crypto(e) => {
                    pending.lock().expect("pending").fetch.remove(&slot);
                    out.emit(&Event::Bad {
                        key: n.key.clone(),
                        to: user.id.clone(),
                        reason: format!("OpenPGP: {e}"),
                    });
                    return;
                }
                e => e.to_string(),
            },
        };
        pending
            .lock()
            .expect("pending")
            .fetch
            .insert(slot.clone(), error);
        tokio::time::sleep(waits.next().unwrap_or(retry::MAX_DELAY)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_through_the_text() {
        let t = message_text("p1-u2-17", 500);
        assert_eq!(t.len(), 500);
        assert_eq!(message_id(&t), Some("p1-u2-17"));
        assert_eq!(message_id(b"hello\nmuttr-testbed x"), None);
        let short = message_text("a-very-long-id", 10);
        assert_eq!(message_id(&short), Some("a-very-long-id"));
    }

    #[test]
    fn patience_follows_the_client_policy_and_never_ends() {
        let waits: Vec<Duration> = patience("m1").take(40).collect();
        assert_eq!(waits.len(), 40);
        assert!(waits[0] >= retry::MIN_DELAY && waits[0] <= 2 * retry::MIN_DELAY);
        assert!(waits.iter().all(|w| *w <= 2 * retry::MAX_DELAY));
        assert_eq!(patience("m1").take(40).collect::<Vec<_>>(), waits);
    }

    #[test]
    fn events_and_commands_are_json_lines() {
        let e = Event::Acked {
            id: "m1".into(),
            key: "ab".into(),
            t: 5,
            attempts: 2,
        };
        let line = serde_json::to_string(&e).unwrap();
        assert!(line.starts_with(r#"{"ev":"acked""#), "{line}");
        assert_eq!(serde_json::from_str::<Event>(&line).unwrap(), e);
        let c: Command = serde_json::from_str(r#"{"start":1700}"#).unwrap();
        assert_eq!(c, Command::Start(1700));
        let c: Command = serde_json::from_str(r#""stop""#).unwrap();
        assert_eq!(c, Command::Stop);
    }
}

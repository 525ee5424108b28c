//! The async driver: one task that owns a datagram socket and runs a [`kad::Node`] on it.
//!
//! The task sleeps until the first of three things: a command from a [`SeedHandle`], the core's
//! next timer ([`kad::Node::poll_timeout`]), or a datagram. It hands each to the core and then
//! sends what the core wants sent. It is generic over [`Transport`], so the same code runs on
//! tokio UDP sockets and on the simulator's sockets, and it uses only `tokio::spawn`, tokio
//! time and the injected [`Clock`], so under a paused runtime it is deterministic.
//!
//! `select!` is `biased`: commands first, then timers, then datagrams, so a flood of datagrams
//! can neither starve the user nor delay timeouts.
//!
//! The receive future is dropped whenever a command or a timer wins the `select!`, so a
//! [`DatagramSocket::recv_from`] implementation must be cancel-safe (tokio's is: a datagram is
//! either returned or left in the socket, never lost half-read).

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::config::Config;
use crate::id::{Key, NodeId};
use crate::kad::{self, Command, CommandError, CommandResult, LookupResult, PublishReport, Stats};
use crate::net::{Clock, DatagramSocket, Transport};
use crate::store::ValueStore;
use crate::wire::Contact;

/// Receive buffer size: one byte more than the largest datagram a receiver must accept (P-W1),
/// so a larger one can be told apart (and is dropped as oversize).
pub const RECV_BUFFER: usize = crate::wire::MAX_DATAGRAM + 1;

/// Commands waiting in a seed's queue at most; callers wait (backpressure) beyond that.
pub const COMMAND_QUEUE: usize = 256;

/// Why a [`SeedHandle`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// The seed task has stopped.
    #[error("the seed has stopped")]
    Stopped,
    /// The command was refused (an invalid or oversize value to publish).
    #[error(transparent)]
    Refused(#[from] CommandError),
    /// The seed answered a command with the result of another (a bug, reported rather than
    /// panicking).
    #[error("unexpected result {0}")]
    Unexpected(String),
}

/// A snapshot of a running seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedStats {
    /// The core's counters.
    pub stats: Stats,
    /// Contacts in the routing table.
    pub table_size: usize,
    /// Values held.
    pub values_held: usize,
    /// Requests in flight.
    pub pending_requests: usize,
}

enum Request {
    Command(Command, oneshot::Sender<CommandResult>),
    Stats(oneshot::Sender<SeedStats>),
}

/// A cheap, cloneable handle to a running seed.
#[derive(Debug, Clone)]
pub struct SeedHandle {
    tx: mpsc::Sender<Request>,
    /// Set to stop the seed: checked before the command queue, so a full queue cannot delay
    /// a shutdown.
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    contact: Contact,
    local_addr: SocketAddr,
}

/// A running seed: its handle, and the task that gives its store back on shutdown.
#[derive(Debug)]
pub struct Seed<S> {
    handle: SeedHandle,
    task: tokio::task::JoinHandle<S>,
}

/// How to start a seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Where to bind the socket.
    pub bind: SocketAddr,
    /// The address other seeds reach this one at, which fixes its node ID (P-W3). Needed when
    /// `bind` is a wildcard (`0.0.0.0`, `::`); defaults to the bound address otherwise.
    pub advertise: Option<SocketAddr>,
    /// Protocol constants.
    pub config: Config,
    /// Seed of the core's random generator (rpcIDs, refresh targets).
    pub rng_seed: u64,
}

impl SeedOptions {
    /// Options with the default [`Config`].
    pub fn new(bind: SocketAddr, rng_seed: u64) -> SeedOptions {
        SeedOptions {
            bind,
            advertise: None,
            config: Config::default(),
            rng_seed,
        }
    }
}

/// Binds a socket through `transport` and starts a seed on it. Must run inside a tokio
/// runtime; the seed is a `tokio::spawn`ed task.
pub async fn spawn_seed<T: Transport, S: ValueStore>(
    transport: T,
    options: SeedOptions,
    store: S,
    clock: Clock,
) -> io::Result<Seed<S>> {
    options
        .config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let socket = transport.bind(options.bind).await?;
    let local_addr = socket.local_addr()?;
    let advertise = match options.advertise {
        Some(a) => a,
        None if local_addr.ip().is_unspecified() => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bound to a wildcard address: an advertise address is needed (P-W3)",
            ));
        }
        None => local_addr,
    };
    let contact = Contact::from_addr(advertise);
    let node = kad::Node::new(
        options.config,
        contact,
        store,
        options.rng_seed,
        clock.now_ms(),
    );
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run(node, socket, rx, stopped, clock));
    Ok(Seed {
        handle: SeedHandle {
            tx,
            stop: Arc::new(stop),
            contact,
            local_addr,
        },
        task,
    })
}

async fn run<Sock: DatagramSocket, S: ValueStore>(
    mut node: kad::Node<S>,
    socket: Sock,
    mut rx: mpsc::Receiver<Request>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    clock: Clock,
) -> S {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut waiting: BTreeMap<kad::CommandId, oneshot::Sender<CommandResult>> = BTreeMap::new();
    loop {
        while let Some(t) = node.poll_transmit() {
            if let Err(e) = socket.send_to(&t.bytes, t.to).await {
                tracing::debug!(to = %t.to, error = %e, "send failed");
            }
        }
        while let Some(kad::Event::Completed { id, result }) = node.poll_event() {
            if let Some(tx) = waiting.remove(&id) {
                let _ = tx.send(result);
            }
        }
        let now = clock.now_ms();
        let wait = node
            .poll_timeout()
            .map(|t| t.saturating_sub(now))
            .unwrap_or(kad::HOUSEKEEPING_INTERVAL_MS);
        let sleep = tokio::time::sleep(std::time::Duration::from_millis(wait));
        if *stopped.borrow() {
            break;
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            req = rx.recv() => match req {
                Some(Request::Command(cmd, reply)) => {
                    let id = node.handle_command(clock.now_ms(), cmd);
                    waiting.insert(id, reply);
                }
                Some(Request::Stats(reply)) => {
                    let _ = reply.send(SeedStats {
                        stats: node.stats().clone(),
                        table_size: node.table().len(),
                        values_held: node.store().len(),
                        pending_requests: node.pending_requests(),
                    });
                }
                None => break,
            },
            _ = sleep => node.handle_timeout(clock.now_ms()),
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, from)) => node.handle_datagram(clock.now_ms(), from, &buf[..n]),
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            },
        }
    }
    if let Err(e) = node.store_mut().flush() {
        tracing::error!(error = %e, "store flush failed at shutdown");
    }
    node.into_store()
}

impl SeedHandle {
    /// The bound socket address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The seed's contact (its advertised address and node ID).
    pub fn contact(&self) -> Contact {
        self.contact
    }

    /// The seed's node ID.
    pub fn node_id(&self) -> NodeId {
        self.contact.node_id
    }

    async fn command(&self, cmd: Command) -> Result<CommandResult, SeedError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Command(cmd, tx))
            .await
            .map_err(|_| SeedError::Stopped)?;
        match rx.await.map_err(|_| SeedError::Stopped)? {
            CommandResult::Failed(e) => Err(SeedError::Refused(e)),
            r => Ok(r),
        }
    }

    /// Joins the network through these seeds; returns the routing table's size after.
    pub async fn bootstrap(&self, seeds: Vec<SocketAddr>) -> Result<usize, SeedError> {
        match self.command(Command::Bootstrap(seeds)).await? {
            CommandResult::Bootstrapped { contacts } => Ok(contacts),
            other => Err(unexpected(other)),
        }
    }

    /// Publishes a value (hex of an armored encrypted message) at the k closest seeds.
    pub async fn publish(&self, value_hex: String) -> Result<PublishReport, SeedError> {
        match self.command(Command::Publish(value_hex)).await? {
            CommandResult::Published(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Stops republishing `key` (P-K2, P-X2); true if it was being republished.
    pub async fn unpublish(&self, key: Key) -> Result<bool, SeedError> {
        match self.command(Command::Unpublish(key)).await? {
            CommandResult::Unpublished { was_published } => Ok(was_published),
            other => Err(unexpected(other)),
        }
    }

    /// Finds the value at `key`, with the lookup's figures.
    pub async fn find_value_report(&self, key: Key) -> Result<LookupResult, SeedError> {
        match self.command(Command::FindValue(key)).await? {
            CommandResult::Found(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Finds the value at `key`.
    pub async fn find_value(&self, key: Key) -> Result<Option<String>, SeedError> {
        Ok(self.find_value_report(key).await?.value)
    }

    /// Finds the k closest seeds to `target`, with the lookup's figures.
    pub async fn find_node_report(&self, target: NodeId) -> Result<LookupResult, SeedError> {
        match self.command(Command::FindNode(target)).await? {
            CommandResult::Found(r) => Ok(r),
            other => Err(unexpected(other)),
        }
    }

    /// Finds the k closest seeds to `target`.
    pub async fn find_node(&self, target: NodeId) -> Result<Vec<Contact>, SeedError> {
        Ok(self.find_node_report(target).await?.closest)
    }

    /// Whether the seed at `addr` answers a PING.
    pub async fn ping(&self, addr: SocketAddr) -> Result<bool, SeedError> {
        match self.command(Command::Ping(addr)).await? {
            CommandResult::Pinged { alive } => Ok(alive),
            other => Err(unexpected(other)),
        }
    }

    /// Counters and sizes.
    pub async fn stats(&self) -> Result<SeedStats, SeedError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Request::Stats(tx))
            .await
            .map_err(|_| SeedError::Stopped)?;
        rx.await.map_err(|_| SeedError::Stopped)
    }

    /// Asks the seed to stop (its store is flushed). Use [`Seed::shutdown`] to wait for it.
    /// Never waits behind queued commands: the stop is seen at the seed's next turn.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
    }
}

fn unexpected(r: CommandResult) -> SeedError {
    SeedError::Unexpected(format!("{r:?}"))
}

impl<S> Seed<S> {
    /// A handle to the seed.
    pub fn handle(&self) -> SeedHandle {
        self.handle.clone()
    }

    /// Stops the seed, flushes its store and gives it back (a restart can reuse it).
    pub async fn shutdown(self) -> Result<S, SeedError> {
        self.handle.shutdown().await;
        self.task.await.map_err(|_| SeedError::Stopped)
    }
}

impl<S> std::ops::Deref for Seed<S> {
    type Target = SeedHandle;
    fn deref(&self) -> &SeedHandle {
        &self.handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::TokioTransport;
    use crate::store::MemStore;
    use crate::wire::{self, Body, Message};

    async fn seed(rng_seed: u64) -> Seed<MemStore> {
        let options = SeedOptions::new("127.0.0.1:0".parse().unwrap(), rng_seed);
        spawn_seed(
            TokioTransport,
            options,
            MemStore::default(),
            Clock::starting_at(1_700_000_000_000),
        )
        .await
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_times_out_after_response_timeout_of_virtual_time() {
        let s = seed(1).await;
        // A port nobody listens on: bind one, note it, close it.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        drop(silent);
        let start = tokio::time::Instant::now();
        assert!(!s.ping(silent_addr).await.unwrap());
        // The driver slept until the core's deadline: exactly the configured timeout (the
        // clock's millisecond rounding aside), in virtual time.
        let waited = start.elapsed();
        assert!(
            waited >= Config::default().response_timeout
                && waited
                    < Config::default().response_timeout + std::time::Duration::from_millis(5),
            "{waited:?}"
        );
        let st = s.stats().await.unwrap();
        assert_eq!(st.stats.timeouts, 1);
        s.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn invalid_datagrams_get_no_reply_and_the_seed_keeps_answering_p_w6() {
        let s = seed(2).await;
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let me = crate::wire::Contact::from_addr(client.local_addr().unwrap());
        let garbage: [&[u8]; 4] = [
            b"",
            b"\xff\xfe",
            b"[1,2,3]",
            br#"{"type":"PING","params":{"address":"127.0.0.1","port":1,"nodeID":"00","rpcID":"x"}}"#,
        ];
        for g in garbage {
            client.send_to(g, s.local_addr()).await.unwrap();
        }
        let big = vec![b' '; wire::MAX_DATAGRAM]; // the largest datagram, all whitespace
        client.send_to(&big, s.local_addr()).await.unwrap();
        let ping = wire::encode(&Message::new(me, "probe-1", Body::Ping));
        client.send_to(&ping, s.local_addr()).await.unwrap();
        let mut buf = vec![0u8; RECV_BUFFER];
        let (n, from) = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            client.recv_from(&mut buf),
        )
        .await
        .expect("a PONG")
        .unwrap();
        assert_eq!(from, s.local_addr(), "reply from the seed's socket");
        let pong = wire::decode(&buf[..n]).unwrap();
        assert_eq!((pong.body, pong.rpc_id.as_str()), (Body::Pong, "probe-1"));
        // Nothing else comes back: the invalid datagrams were dropped without a reply.
        let more = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            client.recv_from(&mut buf),
        )
        .await;
        assert!(more.is_err(), "no reply to an invalid datagram");
        let st = s.stats().await.unwrap().stats;
        assert_eq!(st.dropped_total(), 5, "{:?}", st.dropped);
        assert_eq!(st.datagrams_in, 6);
        s.shutdown().await.unwrap();
    }
}

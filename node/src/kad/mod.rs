//! The sans-IO Kademlia core of a seed (PROFILE §1–§3).
//!
//! [`Node`] holds the whole protocol state of one seed — routing table, value store, requests
//! in flight, lookups, timers — and does no IO and reads no clock. Its owner (the async
//! [`crate::driver`], a test harness, the simulator) feeds it:
//! - [`Node::handle_datagram`] for every datagram received, with its source address;
//! - [`Node::handle_timeout`] when the time returned by [`Node::poll_timeout`] has come;
//! - [`Node::handle_command`] for what its user wants (bootstrap, publish, find);
//!
//! and drains its outputs: [`Node::poll_transmit`] (datagrams to send) and [`Node::poll_event`]
//! (commands completed). Time is always passed in as `now_ms`, milliseconds since the Unix
//! epoch (P-W5), which serves both the protocol timers and the STORE checks of P-V3. The only
//! randomness (rpcIDs, refresh targets) comes from a ChaCha8 generator seeded at construction,
//! so a run is a pure function of its inputs.
//!
//! | file | what it holds |
//! |---|---|
//! | [`table`] | the routing table (k-buckets, ping-before-evict, replacement cache, closest-k) |
//! | [`lookup`] | the iterative FIND_NODE / FIND_VALUE state machine |
//! | [`rtt`] | the round-trip estimate and the lookup's stall timer |
//! | [`testnet`] | an in-process network of nodes on virtual time (tests, benchmarks) |
//! | `mod.rs` | [`Node`]: request handling, commands, timers, statistics |

pub mod histogram;
pub mod lookup;
pub mod rtt;
pub mod table;
pub mod testnet;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::id::{Key, NodeId, canonical_ip};
use crate::store::{Publication, PutOutcome, StoreError, StoredValue, ValueStore};
use crate::value::{self, StoreRefusal};
use crate::wire::{self, Body, Contact, FindValueResult, Message, MessageType};

pub use lookup::{Lookup, LookupKind, LookupResult};
pub use table::{RoutingTable, Update};

/// How often the node does its housekeeping (expiry, refresh, replication and republication
/// checks), in ms. Expiry is therefore exact to within a minute, which is far below the 24 h
/// lifetime of a value, and the node wakes up at most once a minute when idle.
pub const HOUSEKEEPING_INTERVAL_MS: u64 = 60_000;

/// Most sources tracked by the per-source rate limiter at once. When full, entries from
/// earlier seconds are forgotten; a flood from many spoofed sources therefore costs bounded
/// memory.
pub const MAX_RATE_SOURCES: usize = 16_384;

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

/// Identifies a command given to [`Node::handle_command`].
pub type CommandId = u64;

/// What the node's user can ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Join the network through these seeds: a lookup of our own ID starting from them.
    Bootstrap(Vec<SocketAddr>),
    /// Store a value (hex of an armored encrypted message, P-V1) at the k closest nodes of its
    /// key (P-K5), keep it, and republish it every `republish_interval` (P-K2) until
    /// [`Command::Unpublish`]. The publication is recorded in the store, so a restarted node
    /// goes on republishing it.
    Publish(String),
    /// Stop republishing a value published earlier (a pod whose user purged the message,
    /// P-X2). The copies already stored live until they expire.
    Unpublish(Key),
    /// Find the value at a key.
    FindValue(Key),
    /// Find the k closest nodes to an ID.
    FindNode(NodeId),
    /// Check whether a seed answers.
    Ping(SocketAddr),
}

/// The outcome of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// The value's key (P-V2).
    pub key: Key,
    /// How many remote nodes answered the STORE with success.
    pub stored_at: usize,
    /// How many STOREs were sent.
    pub store_requests: usize,
    /// Hops of the lookup that found the closest nodes.
    pub hops: u32,
    /// Requests sent by that lookup.
    pub messages: u32,
}

/// The result of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandResult {
    /// Bootstrap finished; the routing table holds this many contacts.
    Bootstrapped {
        /// Contacts in the routing table.
        contacts: usize,
    },
    /// Publish finished.
    Published(PublishReport),
    /// FindValue or FindNode finished (`value` is `None` when not found).
    Found(LookupResult),
    /// Ping finished.
    Pinged {
        /// Whether the seed answered.
        alive: bool,
    },
    /// Unpublish finished.
    Unpublished {
        /// Whether the key was being republished.
        was_published: bool,
    },
    /// The command could not run.
    Failed(CommandError),
}

/// Why a command could not run: what the caller asked is refused before any datagram is sent.
/// Callers decide by variant, never by the message (a pod answers 400 for one and 413 for the
/// other).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The value is not one a seed would store (P-V1: lowercase hex of an armored message).
    #[error("not a valid value: {0}")]
    InvalidValue(String),
    /// The value's STORE would not fit one datagram (P-W1).
    #[error("value too large: a STORE must fit one {max}-byte datagram (P-W1)")]
    TooLarge {
        /// The largest datagram, in bytes.
        max: usize,
    },
}

/// Something the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A command completed.
    Completed {
        /// The command.
        id: CommandId,
        /// Its result.
        result: CommandResult,
    },
}

/// Counters of a node, for logs, the simulator and the conformance of P-W6 ("counts it").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Invalid datagrams dropped, by [`wire::WireError::kind`] (P-W6), plus
    /// `unmatched_reply`, `rate_limited`.
    pub dropped: BTreeMap<&'static str, u64>,
    /// Requests answered, by type.
    pub requests: BTreeMap<&'static str, u64>,
    /// STOREs accepted (new values).
    pub stores_accepted: u64,
    /// STOREs refused, by PROFILE rule.
    pub stores_refused: BTreeMap<&'static str, u64>,
    /// Senders not added to the routing table because their claimed address was not the
    /// datagram's source (P-W7).
    pub spoofed_senders: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Lookup requests that stalled (unanswered after the RTT-based stall time, so the lookup
    /// asked another candidate; see [`rtt`]).
    pub lookup_stalls: u64,
    /// PINGs sent to FIND_VALUE requesters to check their address (amplification defence).
    pub verification_pings: u64,
    /// Lookups started / finished.
    pub lookups_started: u64,
    /// Lookups finished.
    pub lookups_finished: u64,
    /// Values removed by expiry.
    pub expired: u64,
    /// Hops of each finished lookup (see [`lookup`]).
    pub lookup_hops: histogram::Histogram,
    /// Duration of each finished lookup, in milliseconds of the node's clock.
    pub lookup_ms: histogram::Histogram,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            datagrams_in: 0,
            datagrams_out: 0,
            bytes_in: 0,
            bytes_out: 0,
            dropped: BTreeMap::new(),
            requests: BTreeMap::new(),
            stores_accepted: 0,
            stores_refused: BTreeMap::new(),
            spoofed_senders: 0,
            timeouts: 0,
            lookup_stalls: 0,
            verification_pings: 0,
            lookups_started: 0,
            lookups_finished: 0,
            expired: 0,
            lookup_hops: histogram::Histogram::new(histogram::HOPS_BOUNDS),
            lookup_ms: histogram::Histogram::new(histogram::LATENCY_MS_BOUNDS),
        }
    }
}

impl Stats {
    fn drop(&mut self, kind: &'static str) {
        *self.dropped.entry(kind).or_default() += 1;
    }

    /// Total datagrams dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// What to do when a lookup finishes.
#[derive(Debug, Clone)]
enum After {
    /// Report the lookup to a FindValue/FindNode command.
    Report,
    /// Report a bootstrap.
    Bootstrap,
    /// STORE this value at the closest nodes found.
    Store(StoredValue),
    /// Nothing (refresh).
    Nothing,
}

#[derive(Debug)]
enum Op {
    Lookup {
        cmd: Option<CommandId>,
        lookup: Lookup,
        after: After,
        /// When it started (the node's clock, ms).
        started: u64,
    },
    Storing {
        cmd: Option<CommandId>,
        key: Key,
        waiting: usize,
        sent: usize,
        stored_at: usize,
        hops: u32,
        messages: u32,
    },
    Ping {
        cmd: CommandId,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Op(u64),
    EvictionPing,
    /// A PING to a FIND_VALUE requester that has not proven its address yet.
    Verify,
}

/// Sources remembered as having proven their address at most.
pub const MAX_VERIFIED: usize = 65_536;
/// How long a proven address stays proven (ms): an hour, like a bucket refresh.
pub const VERIFIED_TTL_MS: u64 = 3_600_000;
/// Unverified sources with FIND_VALUE answers waiting at most; beyond, the answer is contacts.
pub const MAX_PARKED_SOURCES: usize = 1_024;
/// FIND_VALUE answers waiting per unverified source at most.
pub const MAX_PARKED_PER_SOURCE: usize = 8;

#[derive(Debug, Clone)]
struct Pending {
    to: SocketAddr,
    node: NodeId,
    request: MessageType,
    purpose: Purpose,
    timed_out: bool,
    /// The entry of this request in `Node::deadlines`.
    deadline: u64,
    /// When it was sent (for the RTT estimate).
    sent_at: u64,
    /// A lookup request's stall time ([`rtt`]), also in `Node::deadlines`, until it fires.
    stall_at: Option<u64>,
}

#[derive(Debug, Clone)]
struct Published {
    value: String,
    republish_at: u64,
}

/// One seed's protocol state. See the module docs.
#[derive(Debug)]
pub struct Node<S: ValueStore> {
    config: Config,
    local: Contact,
    table: RoutingTable,
    store: S,
    rng: ChaCha8Rng,
    now: u64,
    pending: BTreeMap<String, Pending>,
    deadlines: BTreeSet<(u64, String)>,
    ops: BTreeMap<u64, Op>,
    next_op: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    published: BTreeMap<Key, Published>,
    next_housekeeping: u64,
    next_replicate: u64,
    /// Keys another node STOREd here within the last replicate interval, and when: those are
    /// skipped by the next replication (see [`Node::housekeeping`]'s replicate step).
    stored_recently: BTreeMap<Key, u64>,
    rate: BTreeMap<IpAddr, u32>,
    /// The second (of `now`) that `rate` counts.
    rate_second: u64,
    /// Sources that answered one of our requests, and when (amplification defence).
    verified: BTreeMap<SocketAddr, u64>,
    /// FIND_VALUE answers (rpcID, key) waiting for their source to answer our PING.
    parked: BTreeMap<SocketAddr, Vec<(String, Key)>>,
    rtt: rtt::RttEstimator,
    stats: Stats,
}

impl<S: ValueStore> Node<S> {
    /// A node reached at `local` (its ID is `local.node_id`, P-W3), holding values in `store`.
    ///
    /// The publications recorded in `store` (P-K2) are taken up again: each is republished
    /// when it was due, or at the first housekeeping if that time has passed while the node
    /// was down.
    pub fn new(config: Config, local: Contact, store: S, rng_seed: u64, now_ms: u64) -> Node<S> {
        let table = RoutingTable::new(local.node_id, config.k, config.replacement_cache);
        let replicate = config.replicate_interval.as_millis() as u64;
        let published = match store.publications() {
            Ok(list) => list
                .into_iter()
                .map(|p| {
                    (
                        p.key,
                        Published {
                            value: p.value,
                            republish_at: p.republish_at,
                        },
                    )
                })
                .collect(),
            Err(e) => {
                tracing::error!(error = %e, "reading the recorded publications failed");
                BTreeMap::new()
            }
        };
        Node {
            table,
            local,
            store,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            now: now_ms,
            pending: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            ops: BTreeMap::new(),
            next_op: 1,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            published,
            next_housekeeping: now_ms + HOUSEKEEPING_INTERVAL_MS,
            next_replicate: now_ms + replicate,
            stored_recently: BTreeMap::new(),
            rate: BTreeMap::new(),
            rate_second: now_ms / 1000,
            verified: BTreeMap::new(),
            parked: BTreeMap::new(),
            rtt: rtt::RttEstimator::default(),
            stats: Stats::default(),
            config,
        }
    }

    /// The node's own contact.
    pub fn local(&self) -> Contact {
        self.local
    }

    /// The keys this node republishes (P-K2), in ascending order.
    pub fn published_keys(&self) -> Vec<Key> {
        self.published.keys().copied().collect()
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The value store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The value store, mutably (to flush it on shutdown).
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// Consumes the node, returning its store (a restart keeps what was held).
    pub fn into_store(self) -> S {
        self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests in flight (waiting for a reply or in their late-reply grace).
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    /// Operations (lookups, stores, pings) in progress.
    pub fn operations(&self) -> usize {
        self.ops.len()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must next be called (ms since the epoch).
    pub fn poll_timeout(&self) -> Option<u64> {
        let next_deadline = self.deadlines.first().map(|(t, _)| *t);
        Some(match next_deadline {
            Some(t) => t.min(self.next_housekeeping),
            None => self.next_housekeeping,
        })
    }

    fn advance(&mut self, now_ms: u64) {
        // Time never goes backwards inside the core, whatever the caller does.
        self.now = self.now.max(now_ms);
    }

    fn timeout_ms(&self) -> u64 {
        self.config.response_timeout.as_millis() as u64
    }

    // ---------------------------------------------------------------- datagrams

    /// Handles one datagram from `from`.
    pub fn handle_datagram(&mut self, now_ms: u64, from: SocketAddr, bytes: &[u8]) {
        self.advance(now_ms);
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += bytes.len() as u64;
        let from = SocketAddr::new(canonical_ip(from.ip()), from.port());
        let msg = match wire::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.stats.drop(e.kind());
                tracing::debug!(%from, rule = e.rule(), error = %e, "dropped invalid datagram");
                return;
            }
        };
        if msg.is_request() && !self.admit(from.ip()) {
            self.stats.drop("rate_limited");
            tracing::debug!(%from, "dropped request over the per-source rate limit");
            return;
        }
        // P-W7: only a sender whose claimed address is the datagram's source enters the table.
        let authentic = msg.sender.socket_addr() == from;
        if msg.is_request() {
            if authentic {
                self.saw(msg.sender);
            } else {
                self.stats.spoofed_senders += 1;
                tracing::debug!(%from, claimed = %msg.sender.socket_addr(), "sender not added: claimed address is not the source (P-W7)");
            }
            self.answer(from, msg, bytes.len());
        } else {
            self.on_reply(from, msg, authentic);
        }
    }

    /// Per-source request budget (abuse limit; see [`Config::max_requests_per_sec_per_source`]).
    ///
    /// Loopback sources are exempt: they are local processes (kernels drop loopback-sourced
    /// packets arriving from the network), and every seed of a local network, a conformance
    /// suite or a load generator on the same host shares the one source IP 127.0.0.1, where a
    /// per-IP budget would drop valid requests that the PROFILE says must be answered.
    fn admit(&mut self, ip: IpAddr) -> bool {
        let limit = self.config.max_requests_per_sec_per_source;
        if limit == 0 || ip.is_loopback() {
            return true;
        }
        let second = self.now / 1000;
        if second != self.rate_second {
            // Budgets are per second, so a source last seen in an earlier second counts as
            // absent: forget them all at once. The map then holds this second's sources only,
            // not every source ever seen (up to MAX_RATE_SOURCES entries per seed).
            self.rate.clear();
            self.rate_second = second;
        }
        if self.rate.len() >= MAX_RATE_SOURCES && !self.rate.contains_key(&ip) {
            return false;
        }
        let count = self.rate.entry(ip).or_insert(0);
        *count += 1;
        *count <= limit
    }

    /// A valid message came from `c` (P-K4).
    fn saw(&mut self, c: Contact) -> Update {
        let update = self.table.update(c, self.now);
        if let Update::PingOldest(old) = update {
            self.send_request(old, Body::Ping, Purpose::EvictionPing);
        }
        update
    }

    /// Enters `contact` in the routing table through the same path as a contact heard from
    /// (P-K4: bucket capacity, replacement cache, and a PING of the oldest contact when its
    /// bucket is full), without any datagram. For building large in-process networks whose
    /// tables are filled directly instead of by joining one node after another (benchmarks,
    /// simulators); a real seed learns contacts only from the network.
    pub fn add_contact(&mut self, now_ms: u64, contact: Contact) -> Update {
        self.advance(now_ms);
        self.saw(contact)
    }

    fn reply(&mut self, to: SocketAddr, rpc_id: String, body: Body) {
        let msg = Message::new(self.local, rpc_id, body);
        self.push_transmit(to, wire::encode(&msg));
    }

    fn push_transmit(&mut self, to: SocketAddr, bytes: Vec<u8>) {
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Contacts for a FIND_* reply: `reply_width` closest to `key`, never ourselves (the table
    /// never holds us), not the requester (P-W8).
    fn reply_contacts(&self, key: &NodeId, requester: &NodeId) -> Vec<Contact> {
        let mut out = self.table.closest(key, self.config.reply_width + 1);
        out.retain(|c| c.node_id != *requester);
        out.truncate(self.config.reply_width);
        out
    }

    fn answer(&mut self, from: SocketAddr, msg: Message, request_len: usize) {
        *self
            .stats
            .requests
            .entry(msg.message_type().as_str())
            .or_default() += 1;
        let requester = msg.sender.node_id;
        let body = match msg.body {
            Body::Ping => Body::Pong,
            Body::Store {
                key,
                value,
                timestamp,
                publisher,
            } => {
                let success = self.accept_store(key, value, timestamp, publisher);
                if success {
                    self.stored_recently.insert(key, self.now);
                }
                Body::StoreReply { success }
            }
            Body::FindNode { key } => Body::FindNodeReply {
                contacts: self.reply_contacts(&key, &requester),
            },
            Body::FindValue { key } => match self.held(&key) {
                Some(v) if self.must_verify(from, v.value.len(), request_len) => {
                    if self.park(from, msg.rpc_id.clone(), key) {
                        return;
                    }
                    // No room to wait: answer small, as if the value were not here.
                    Body::FindValueReply(FindValueResult::Contacts(
                        self.reply_contacts(&key, &requester),
                    ))
                }
                Some(v) => Body::FindValueReply(FindValueResult::Value(v.value)),
                None => Body::FindValueReply(FindValueResult::Contacts(
                    self.reply_contacts(&key, &requester),
                )),
            },
            _ => return, // replies are routed to on_reply
        };
        self.reply(from, msg.rpc_id, body);
    }

    /// Whether answering `value_len` bytes of value to `from` needs `from` to prove its
    /// address first (see [`Config::amplification_factor`]).
    fn must_verify(&self, from: SocketAddr, value_len: usize, request_len: usize) -> bool {
        let factor = self.config.amplification_factor as usize;
        if factor == 0 || from.ip().is_loopback() {
            return false;
        }
        // The reply is the value plus about 250 bytes of envelope.
        if value_len + 250 <= factor.saturating_mul(request_len.max(1)) {
            return false;
        }
        self.verified
            .get(&from)
            .is_none_or(|&t| self.now.saturating_sub(t) >= VERIFIED_TTL_MS)
    }

    /// Holds a FIND_VALUE answer until `from` answers a PING; false when there is no room.
    fn park(&mut self, from: SocketAddr, rpc_id: String, key: Key) -> bool {
        let waiting = self.parked.get(&from).map_or(0, Vec::len);
        if waiting >= MAX_PARKED_PER_SOURCE
            || (waiting == 0 && self.parked.len() >= MAX_PARKED_SOURCES)
        {
            self.stats.drop("unverified_value_request");
            return false;
        }
        self.parked.entry(from).or_default().push((rpc_id, key));
        if waiting == 0 {
            self.stats.verification_pings += 1;
            self.send_request(Contact::from_addr(from), Body::Ping, Purpose::Verify);
        }
        true
    }

    /// `from` answered one of our requests: it receives at that address.
    fn mark_verified(&mut self, from: SocketAddr) {
        if self.verified.len() >= MAX_VERIFIED && !self.verified.contains_key(&from) {
            let now = self.now;
            self.verified
                .retain(|_, t| now.saturating_sub(*t) < VERIFIED_TTL_MS);
            if self.verified.len() >= MAX_VERIFIED {
                // Still full of fresh entries: forget the older half.
                let mut times: Vec<u64> = self.verified.values().copied().collect();
                times.sort_unstable();
                let cut = times[times.len() / 2];
                self.verified.retain(|_, t| *t > cut);
            }
        }
        self.verified.insert(from, self.now);
        if let Some(waiting) = self.parked.remove(&from) {
            for (rpc_id, key) in waiting {
                let body = match self.held(&key) {
                    Some(v) => Body::FindValueReply(FindValueResult::Value(v.value)),
                    None => Body::FindValueReply(FindValueResult::Contacts(
                        self.reply_contacts(&key, &Contact::from_addr(from).node_id),
                    )),
                };
                self.reply(from, rpc_id, body);
            }
        }
    }

    /// The value at `key` if held and not expired. Expired values are removed by the
    /// once-a-minute housekeeping; until then they are no longer handed out (P-K2 expiry).
    fn held(&self, key: &Key) -> Option<StoredValue> {
        let expiry = self.config.expiry.as_millis() as u64;
        self.store
            .get(key)
            .filter(|v| v.timestamp.saturating_add(expiry) > self.now)
    }

    /// Renews the lifetime of a held value when it is stored again with a newer timestamp:
    /// the republication of P-K2. Without this, the "changes nothing" of P-V3 would keep the
    /// first timestamp, and every holder would drop the value at its first expiry however
    /// often it was republished. Key, value and publisher are unchanged (quotas stay counted
    /// against the first publisher); only the lifetime is renewed. Returns whether the value
    /// was renewed.
    ///
    /// Any node's newer timestamp renews, not only the first publisher's: PROFILE P-X2 has the
    /// recipient's pod keep a message alive after its sender is gone, and the pod is not the
    /// first publisher. (PROFILE leaves this open; P-V3's "changes nothing" read strictly would
    /// make P-X2 impossible until the first copies expire.) It gives nobody a new power: the
    /// key is the SHA-1 of the value, so the value cannot change, and anyone who can read the
    /// value could equally store it afresh once it expired.
    fn renew(&mut self, sv: &StoredValue) -> bool {
        let Some(old) = self.store.get(&sv.key) else {
            return false;
        };
        if old.timestamp >= sv.timestamp || old.value != sv.value {
            return false;
        }
        let renewed = StoredValue {
            publisher: old.publisher,
            ..sv.clone()
        };
        match self
            .store
            .remove(&sv.key)
            .and_then(|_| self.store.put(renewed))
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, key = %sv.key, "renewing a republished value failed");
                false
            }
        }
    }

    /// P-V3 admission, then the store's P-V4 quotas.
    fn accept_store(
        &mut self,
        key: Key,
        value: String,
        timestamp: Option<u64>,
        publisher: Option<NodeId>,
    ) -> bool {
        let expiry = self.config.expiry.as_millis() as u64;
        let admitted =
            match value::check_store(&key, &value, timestamp, publisher, self.now, expiry) {
                Ok(a) => a,
                Err(refusal) => {
                    self.refused(&refusal);
                    return false;
                }
            };
        let sv = StoredValue {
            key,
            value,
            publisher: admitted.publisher,
            timestamp: admitted.timestamp,
        };
        if self.renew(&sv) {
            return true;
        }
        match self.store.put(sv) {
            Ok(PutOutcome::Stored) => {
                self.stats.stores_accepted += 1;
                true
            }
            Ok(PutOutcome::AlreadyHeld) => true,
            Err(StoreError::Quota(q)) => {
                self.refused(&StoreRefusal::Quota(q));
                false
            }
            Err(StoreError::Io(e)) => {
                tracing::warn!(error = %e, "store failed; STORE refused");
                *self.stats.stores_refused.entry("io").or_default() += 1;
                false
            }
        }
    }

    fn refused(&mut self, r: &StoreRefusal) {
        *self.stats.stores_refused.entry(r.rule()).or_default() += 1;
        tracing::debug!(reason = %r, "STORE refused");
    }

    fn on_reply(&mut self, from: SocketAddr, msg: Message, authentic: bool) {
        let matches = self
            .pending
            .get(&msg.rpc_id)
            .is_some_and(|p| p.to == from && p.request.reply_type() == Some(msg.message_type()));
        if !matches {
            self.stats.drop("unmatched_reply");
            tracing::debug!(%from, rpc = %msg.rpc_id, "dropped reply matching no request");
            return;
        }
        let p = self.pending.remove(&msg.rpc_id).expect("checked above");
        self.deadlines.remove(&(p.deadline, msg.rpc_id.clone()));
        if let Some(stall) = p.stall_at {
            self.deadlines.remove(&(stall, msg.rpc_id.clone()));
        }
        if !p.timed_out {
            self.rtt.sample(self.now.saturating_sub(p.sent_at));
        }
        // Whoever answers a request we sent to an address receives at that address.
        self.mark_verified(from);
        if authentic {
            self.saw(msg.sender);
        } else {
            self.stats.spoofed_senders += 1;
        }
        if matches!(p.purpose, Purpose::Verify) {
            return; // parked answers went out in `mark_verified`
        }
        let Purpose::Op(op) = p.purpose else {
            // Eviction ping answered. When the answer names the contact we pinged, `saw` has
            // refreshed it and ended the ping. An answer from that address under another
            // identity (or another claimed address) does not vouch for the contact we hold:
            // it is evicted as if silent, so the bucket's ping slot is never left stuck (P-K3).
            if !authentic || msg.sender.node_id != p.node {
                self.table.ping_failed(&p.node);
            }
            return;
        };
        match msg.body {
            Body::Pong => self.finish_ping(op, true),
            // A STORE that already timed out was counted as failed; a late reply does not
            // count it a second time.
            Body::StoreReply { success } if !p.timed_out => self.store_replied(op, success),
            Body::FindNodeReply { contacts }
            | Body::FindValueReply(FindValueResult::Contacts(contacts)) => {
                if let Some(Op::Lookup { lookup, .. }) = self.ops.get_mut(&op) {
                    lookup.on_contacts(&p.node, &contacts);
                }
                self.drive(op);
            }
            Body::FindValueReply(FindValueResult::Value(v)) => {
                if let Some(Op::Lookup { lookup, .. }) = self.ops.get_mut(&op)
                    && !lookup.on_value(&p.node, v)
                {
                    tracing::debug!(%from, "value does not hash to its key; ignored");
                }
                self.drive(op);
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- requests out

    fn new_rpc_id(&mut self) -> String {
        let mut b = [0u8; 20];
        self.rng.fill(&mut b);
        hex::encode(b)
    }

    fn send_request(&mut self, to: Contact, body: Body, purpose: Purpose) {
        let rpc_id = self.new_rpc_id();
        let request = body.message_type();
        let msg = Message::new(self.local, rpc_id.clone(), body);
        let addr = to.socket_addr();
        self.push_transmit(addr, wire::encode(&msg));
        let deadline = self.now + self.timeout_ms();
        self.deadlines.insert((deadline, rpc_id.clone()));
        let lookup_request = matches!(purpose, Purpose::Op(_))
            && matches!(request, MessageType::FindNode | MessageType::FindValue);
        let stall_at = (lookup_request && self.config.lookup_stall)
            .then(|| self.now + self.rtt.stall_after(self.timeout_ms()))
            .filter(|&t| t < deadline);
        if let Some(t) = stall_at {
            self.deadlines.insert((t, rpc_id.clone()));
        }
        self.pending.insert(
            rpc_id,
            Pending {
                to: addr,
                node: to.node_id,
                request,
                purpose,
                timed_out: false,
                deadline,
                sent_at: self.now,
                stall_at,
            },
        );
    }

    // ---------------------------------------------------------------- timers

    /// Handles every timer due at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.advance(now_ms);
        while let Some((t, id)) = self.deadlines.first().cloned() {
            if t > self.now {
                break;
            }
            self.deadlines.pop_first();
            let stalls = self
                .pending
                .get(&id)
                .is_some_and(|p| p.stall_at == Some(t) && p.deadline != t);
            if stalls {
                self.lookup_request_stalled(id);
            } else {
                self.request_timed_out(id);
            }
        }
        if self.now >= self.next_housekeeping {
            self.next_housekeeping = self.now + HOUSEKEEPING_INTERVAL_MS;
            self.housekeeping();
        }
    }

    /// A lookup request went unanswered past its stall time: free its α slot (the lookup asks
    /// the next candidate) but keep the request pending for its reply until the timeout.
    fn lookup_request_stalled(&mut self, rpc_id: String) {
        let Some(p) = self.pending.get_mut(&rpc_id) else {
            return;
        };
        p.stall_at = None;
        let (node, purpose) = (p.node, p.purpose);
        self.stats.lookup_stalls += 1;
        if let Purpose::Op(op) = purpose
            && let Some(Op::Lookup { lookup, .. }) = self.ops.get_mut(&op)
        {
            lookup.on_timeout(&node);
            self.drive(op);
        }
    }

    fn request_timed_out(&mut self, rpc_id: String) {
        let Some(p) = self.pending.get_mut(&rpc_id) else {
            return;
        };
        if p.timed_out {
            // The late-reply grace is over.
            let p = self.pending.remove(&rpc_id).expect("present");
            if let Purpose::Op(op) = p.purpose {
                if let Some(Op::Lookup { lookup, .. }) = self.ops.get_mut(&op) {
                    lookup.on_failed(&p.node);
                }
                self.drive(op);
            }
            return;
        }
        p.timed_out = true;
        // Keep the request one more timeout period for a late reply.
        p.deadline = self.now + self.config.response_timeout.as_millis() as u64;
        let p = p.clone();
        self.stats.timeouts += 1;
        self.deadlines.insert((p.deadline, rpc_id));
        match p.purpose {
            Purpose::EvictionPing => self.table.ping_failed(&p.node),
            Purpose::Verify => {
                // Never proved its address (a spoofed victim, or gone): its answers are dropped.
                if let Some(waiting) = self.parked.remove(&p.to) {
                    for _ in waiting {
                        self.stats.drop("unverified_value_request");
                    }
                }
            }
            Purpose::Op(op) => {
                self.table.request_failed(&p.node);
                // A publish's operation id is first its lookup's, then its STOREs': a FIND_NODE
                // of the finished lookup that times out must not count as a failed STORE.
                match (self.ops.get_mut(&op), p.request) {
                    (
                        Some(Op::Lookup { lookup, .. }),
                        MessageType::FindNode | MessageType::FindValue,
                    ) => {
                        lookup.on_timeout(&p.node);
                        self.drive(op);
                    }
                    (Some(Op::Storing { .. }), MessageType::Store) => self.store_replied(op, false),
                    (Some(Op::Ping { .. }), MessageType::Ping) => self.finish_ping(op, false),
                    _ => {}
                }
            }
        }
    }

    fn housekeeping(&mut self) {
        let expiry = self.config.expiry.as_millis() as u64;
        match self.store.expire(self.now, expiry) {
            Ok(n) => self.stats.expired += n as u64,
            Err(e) => tracing::warn!(error = %e, "expiry failed"),
        }
        // Bucket refresh (P-K2): a lookup of a random ID in every bucket idle for an hour.
        let refresh = self.config.refresh_interval.as_millis() as u64;
        let stale = self.table.stale_buckets(self.now.saturating_sub(refresh));
        for b in stale {
            let target = self.local.node_id.random_in_bucket(b, &mut self.rng);
            self.start_lookup(None, target, LookupKind::Node, After::Nothing, Vec::new());
        }
        // Republish our own values (P-K2), with a fresh timestamp so they live on.
        let republish = self.config.republish_interval.as_millis() as u64;
        let due: Vec<Key> = self
            .published
            .iter()
            .filter(|(_, p)| p.republish_at <= self.now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let p = self.published.get_mut(&key).expect("listed");
            if value::key_of(&p.value) != key {
                // A record that no longer hashes to its key (a damaged store file) is dropped,
                // never republished.
                tracing::warn!(%key, "dropping a publication whose value does not hash to its key (P-V2)");
                self.published.remove(&key);
                if let Err(e) = self.store.remove_publication(&key) {
                    tracing::warn!(error = %e, %key, "forgetting a bad publication failed");
                }
                continue;
            }
            p.republish_at = self.now + republish;
            let record = Publication {
                key,
                value: p.value.clone(),
                republish_at: p.republish_at,
            };
            if let Err(e) = self.store.save_publication(&record) {
                tracing::warn!(error = %e, %key, "recording a republication failed");
            }
            let sv = StoredValue {
                key,
                value: record.value,
                publisher: self.local.node_id,
                timestamp: self.now,
            };
            // The publisher keeps its own copy alive too.
            if !self.renew(&sv)
                && let Err(e) = self.store.put(sv.clone())
            {
                tracing::warn!(error = %e, "publisher could not keep its own value");
            }
            self.start_lookup(None, key, LookupKind::Node, After::Store(sv), Vec::new());
        }
        // Replicate what we hold to the current k closest (P-K2). As in the Kademlia paper
        // (§2.5), a value another node STOREd here within the last interval is skipped: that
        // node stored it at the other k − 1 closest as well, so sending it again is redundant.
        // This turns the k holders' hourly lookup and k STOREs per value into about one
        // holder's, and it changes no value's fate: the holder whose timer fires first in each
        // interval still carries the value to nodes that joined near its key.
        if self.now >= self.next_replicate {
            let interval = self.config.replicate_interval.as_millis() as u64;
            self.next_replicate = self.now + interval;
            let now = self.now;
            self.stored_recently
                .retain(|_, at| now.saturating_sub(*at) < interval);
            for key in self.store.keys() {
                if self.published.contains_key(&key) || self.stored_recently.contains_key(&key) {
                    continue;
                }
                if let Some(sv) = self.store.get(&key) {
                    self.start_lookup(None, key, LookupKind::Node, After::Store(sv), Vec::new());
                }
            }
        }
    }

    // ---------------------------------------------------------------- commands

    /// Starts a command; its result comes later as [`Event::Completed`] with the returned id
    /// (possibly already queued when this returns).
    pub fn handle_command(&mut self, now_ms: u64, cmd: Command) -> CommandId {
        self.advance(now_ms);
        let id = self.next_op;
        self.next_op += 1;
        match cmd {
            Command::Bootstrap(addrs) => {
                let seeds: Vec<Contact> = addrs
                    .into_iter()
                    .map(Contact::from_addr)
                    .filter(|c| c.node_id != self.local.node_id)
                    .collect();
                let target = self.local.node_id;
                self.start_lookup_with_id(
                    id,
                    Some(id),
                    target,
                    LookupKind::Node,
                    After::Bootstrap,
                    seeds,
                );
            }
            Command::Publish(value_hex) => self.publish(id, value_hex),
            Command::FindValue(key) => {
                if let Some(v) = self.held(&key) {
                    self.complete(
                        id,
                        CommandResult::Found(LookupResult {
                            target: key,
                            value: Some(v.value),
                            closest: Vec::new(),
                            hops: 0,
                            messages: 0,
                        }),
                    );
                } else {
                    self.start_lookup_with_id(
                        id,
                        Some(id),
                        key,
                        LookupKind::Value,
                        After::Report,
                        Vec::new(),
                    );
                }
            }
            Command::FindNode(target) => {
                self.start_lookup_with_id(
                    id,
                    Some(id),
                    target,
                    LookupKind::Node,
                    After::Report,
                    Vec::new(),
                );
            }
            Command::Ping(addr) => {
                self.ops.insert(id, Op::Ping { cmd: id });
                self.send_request(Contact::from_addr(addr), Body::Ping, Purpose::Op(id));
            }
            Command::Unpublish(key) => {
                let was_published = self.published.remove(&key).is_some();
                if let Err(e) = self.store.remove_publication(&key) {
                    tracing::warn!(error = %e, %key, "forgetting a publication failed");
                }
                self.complete(id, CommandResult::Unpublished { was_published });
            }
        }
        id
    }

    fn publish(&mut self, id: CommandId, value_hex: String) {
        if let Err(e) = value::validate(&value_hex) {
            self.complete(
                id,
                CommandResult::Failed(CommandError::InvalidValue(e.to_string())),
            );
            return;
        }
        let key = value::key_of(&value_hex);
        let sv = StoredValue {
            key,
            value: value_hex,
            publisher: self.local.node_id,
            timestamp: self.now,
        };
        let probe = Message::new(
            self.local,
            "0".repeat(40),
            Body::Store {
                key,
                value: sv.value.clone(),
                timestamp: Some(sv.timestamp),
                publisher: Some(sv.publisher),
            },
        );
        if wire::encode(&probe).len() > wire::MAX_DATAGRAM {
            self.complete(
                id,
                CommandResult::Failed(CommandError::TooLarge {
                    max: wire::MAX_DATAGRAM,
                }),
            );
            return;
        }
        // Renewed when already held (a pod taking over a message, P-X2), stored otherwise.
        if !self.renew(&sv)
            && let Err(e) = self.store.put(sv.clone())
        {
            tracing::warn!(error = %e, "publisher could not keep its own value");
        }
        let republish = self.config.republish_interval.as_millis() as u64;
        let record = Publication {
            key,
            value: sv.value.clone(),
            republish_at: self.now + republish,
        };
        if let Err(e) = self.store.save_publication(&record) {
            tracing::warn!(error = %e, %key, "recording a publication failed");
        }
        self.published.insert(
            key,
            Published {
                value: record.value,
                republish_at: record.republish_at,
            },
        );
        self.start_lookup_with_id(
            id,
            Some(id),
            key,
            LookupKind::Node,
            After::Store(sv),
            Vec::new(),
        );
    }

    fn start_lookup(
        &mut self,
        cmd: Option<CommandId>,
        target: NodeId,
        kind: LookupKind,
        after: After,
        extra: Vec<Contact>,
    ) {
        let id = self.next_op;
        self.next_op += 1;
        self.start_lookup_with_id(id, cmd, target, kind, after, extra);
    }

    fn start_lookup_with_id(
        &mut self,
        op: u64,
        cmd: Option<CommandId>,
        target: NodeId,
        kind: LookupKind,
        after: After,
        extra: Vec<Contact>,
    ) {
        self.table.touch(&target, self.now);
        let mut initial = self.table.closest(&target, self.config.k);
        initial.extend(extra);
        let lookup = Lookup::new(
            target,
            kind,
            self.config.k,
            self.config.alpha,
            self.local.node_id,
            initial,
        );
        self.stats.lookups_started += 1;
        let started = self.now;
        self.ops.insert(
            op,
            Op::Lookup {
                cmd,
                lookup,
                after,
                started,
            },
        );
        self.drive(op);
    }

    /// Sends what a lookup wants next, and finishes it when done.
    fn drive(&mut self, op: u64) {
        let (asks, finished, kind) = match self.ops.get_mut(&op) {
            Some(Op::Lookup { lookup, .. }) => {
                let asks = lookup.next_requests();
                (asks, lookup.is_finished(), lookup.kind())
            }
            _ => return,
        };
        if finished {
            self.finish_lookup(op);
            return;
        }
        let target = match self.ops.get(&op) {
            Some(Op::Lookup { lookup, .. }) => lookup.target(),
            _ => return,
        };
        for c in asks {
            let body = match kind {
                LookupKind::Node => Body::FindNode { key: target },
                LookupKind::Value => Body::FindValue { key: target },
            };
            self.send_request(c, body, Purpose::Op(op));
        }
    }

    fn finish_lookup(&mut self, op: u64) {
        let Some(Op::Lookup {
            cmd,
            lookup,
            after,
            started,
        }) = self.ops.remove(&op)
        else {
            return;
        };
        self.stats.lookups_finished += 1;
        let result = lookup.result();
        self.stats.lookup_hops.observe(u64::from(result.hops));
        self.stats
            .lookup_ms
            .observe(self.now.saturating_sub(started));
        match after {
            After::Nothing => {}
            After::Report => {
                if let Some(cmd) = cmd {
                    self.complete(cmd, CommandResult::Found(result));
                }
            }
            After::Bootstrap => {
                if let Some(cmd) = cmd {
                    let contacts = self.table.len();
                    self.complete(cmd, CommandResult::Bootstrapped { contacts });
                }
                self.join_refresh();
            }
            After::Store(sv) => {
                let targets: Vec<Contact> = result.closest.clone();
                let sent = targets.len();
                self.ops.insert(
                    op,
                    Op::Storing {
                        cmd,
                        key: sv.key,
                        waiting: sent,
                        sent,
                        stored_at: 0,
                        hops: result.hops,
                        messages: result.messages,
                    },
                );
                for c in targets {
                    let body = Body::Store {
                        key: sv.key,
                        value: sv.value.clone(),
                        timestamp: Some(sv.timestamp),
                        publisher: Some(sv.publisher),
                    };
                    self.send_request(c, body, Purpose::Op(op));
                }
                if sent == 0 {
                    self.store_replied(op, false);
                }
            }
        }
    }

    /// The second half of joining (Kademlia §2.3): after the lookup of its own ID, a node
    /// refreshes every bucket further away than its closest neighbour, by a lookup of a random
    /// ID in each, so it learns contacts across the whole ID space and not only near itself.
    /// About log2(network size) lookups; none when the table is empty.
    fn join_refresh(&mut self) {
        let local = self.local.node_id;
        let Some(nearest) = self.table.closest(&local, 1).first().copied() else {
            return;
        };
        let Some(b0) = local.bucket_index(&nearest.node_id) else {
            return;
        };
        for b in b0 + 1..crate::id::ID_BITS {
            let target = local.random_in_bucket(b, &mut self.rng);
            self.start_lookup(None, target, LookupKind::Node, After::Nothing, Vec::new());
        }
    }

    fn store_replied(&mut self, op: u64, success: bool) {
        let done = match self.ops.get_mut(&op) {
            Some(Op::Storing {
                waiting, stored_at, ..
            }) => {
                if *waiting > 0 {
                    *waiting -= 1;
                    if success {
                        *stored_at += 1;
                    }
                }
                *waiting == 0
            }
            _ => false,
        };
        if done
            && let Some(Op::Storing {
                cmd: Some(cmd),
                key,
                sent,
                stored_at,
                hops,
                messages,
                ..
            }) = self.ops.remove(&op)
        {
            self.complete(
                cmd,
                CommandResult::Published(PublishReport {
                    key,
                    stored_at,
                    store_requests: sent,
                    hops,
                    messages,
                }),
            );
        }
    }

    fn finish_ping(&mut self, op: u64, alive: bool) {
        if let Some(Op::Ping { cmd }) = self.ops.remove(&op) {
            self.complete(cmd, CommandResult::Pinged { alive });
        }
    }

    fn complete(&mut self, id: CommandId, result: CommandResult) {
        self.events.push_back(Event::Completed { id, result });
    }
}

#[cfg(test)]
mod tests;

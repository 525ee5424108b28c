//! [`Storage`]: the pod's durable state — identities, aliases, inbox entries, accepted nonces,
//! the keep-alive set of P-X2 and (with PostgreSQL) tokens — behind one interface with two
//! backends:
//!
//! | backend | module | for |
//! |---|---|---|
//! | SQLite, one file in the data directory | [`sqlite`] | one pod process (the default) |
//! | PostgreSQL (`--database postgres://…`) | [`postgres`] | several pod replicas behind one public host |
//!
//! Both keep the same promises, and the same tests (`pod/tests/storage.rs`) run against each:
//! an acknowledged write is durable; a nonce is accepted once per identity (P-A2); inbox
//! entry ids (P-X1) increase strictly per inbox in the order entries become visible, so
//! `DELETE /inboxes?upto=ID` never deletes an entry a client could not have seen; schemas
//! are versioned and migrated at start.
//!
//! The methods are `async`. The SQLite backend does its work inline and never awaits (which
//! keeps the simulator deterministic, see [`sqlite`]); the PostgreSQL backend awaits the
//! network through a connection pool.
//!
//! Every write is timed from when it holds its connection to the end of its commit
//! ([`Storage::write_latency`], exported as `muttr_pod_db_write_duration_seconds` by
//! operation). It is wall time (`std::time::Instant`), which never steers what the pod does.

pub mod postgres;
pub mod sqlite;

use std::collections::BTreeSet;
use std::path::Path;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

pub use postgres::Postgres;
pub use sqlite::Sqlite;

/// Write latency buckets in seconds: 50 µs (a write on tmpfs) to 5 s (a disk in trouble).
const WRITE_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 5.0,
];

fn write_histogram() -> Histogram {
    Histogram::new(WRITE_BUCKETS)
}

/// The `op` label of each kind of write.
const WRITE_OPS: [&str; 7] = [
    "register",
    "alias",
    "nonce",
    "inbox_add",
    "purge",
    "keepalive",
    "token",
];

/// Write latencies by operation (label `op`).
pub type WriteLatency = Family<Vec<(String, String)>, Histogram, fn() -> Histogram>;

/// A latency family with every operation's series present from the start (at zero), so a
/// dashboard or an alert on one never sees it missing.
fn write_latency() -> WriteLatency {
    let latency: WriteLatency = Family::new_with_constructor(write_histogram);
    for op in WRITE_OPS {
        let _ = latency.get_or_create(&vec![("op".to_string(), op.to_string())]);
    }
    latency
}

/// Row counts of the tables an operator watches ([`Storage::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Registered identities.
    pub identities: u64,
    /// Aliases.
    pub aliases: u64,
    /// Inbox entries not purged.
    pub inbox_entries: u64,
    /// Values the pod keeps alive (P-X2).
    pub kept_alive: u64,
}

/// A storage failure: the disk, a corrupt file, a statement refused — or, with
/// [`StorageError::unavailable`], a database that cannot be reached now (answered 503: try
/// again, nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String, pub bool);

impl StorageError {
    /// A failure of the storage itself.
    pub fn failed(e: impl std::fmt::Display) -> StorageError {
        StorageError(e.to_string(), false)
    }

    /// The database cannot be reached now.
    pub fn down(e: impl std::fmt::Display) -> StorageError {
        StorageError(e.to_string(), true)
    }

    /// Whether the database could not be reached (the request may be tried again).
    pub fn unavailable(&self) -> bool {
        self.1
    }
}

fn err(e: impl std::fmt::Display) -> StorageError {
    StorageError::failed(e)
}

/// A registered identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRow {
    /// SHA-1 of the armored text (P-G1).
    pub pubkeyhash: String,
    /// The primary key's fingerprint.
    pub fingerprint: String,
    /// The armored public key exactly as registered.
    pub armored: String,
    /// When it was registered (ms, P-W5).
    pub registered: u64,
}

/// What registering a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Newly registered.
    Created(IdentityRow),
    /// The same text was registered before; nothing changed.
    Existing(IdentityRow),
    /// The same key (fingerprint) is registered under another text (P-A7 409).
    OtherText,
}

/// What adding an alias did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasOutcome {
    /// Newly created at this time.
    Created(u64),
    /// Already this identity's alias, created at this time; nothing changed.
    Existing(u64),
    /// Someone else's (P-A7 409).
    Taken,
}

/// One side of an inbox entry, `{"userID", "pubkeyhash"}`: the client library's type, so pod
/// and client read and write one shape.
pub use muttr_node::client::Party;

/// An inbox entry, in the whitepaper's message format (also the WebSocket frame, P-S2): the
/// client library's [`muttr_node::client::Notification`].
pub type InboxEntry = muttr_node::client::Notification;

/// The pod's database: SQLite or PostgreSQL.
#[derive(Debug)]
pub enum Storage {
    /// One SQLite file (one pod process).
    Sqlite(Sqlite),
    /// A PostgreSQL database shared by every replica.
    Postgres(Postgres),
}

impl Storage {
    /// Opens (or creates) the SQLite database in `dir`, applying pending migrations.
    pub fn open(dir: &Path) -> Result<Storage, StorageError> {
        Sqlite::open(dir).map(Storage::Sqlite)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user@host/db`), applying
    /// pending migrations. An unreachable database is an error naming it.
    pub async fn connect(url: &str) -> Result<Storage, StorageError> {
        Postgres::connect(url).await.map(Storage::Postgres)
    }

    /// Where the data is, for logs and the status page: the SQLite file, or the PostgreSQL
    /// URL without its password.
    pub fn location(&self) -> String {
        match self {
            Storage::Sqlite(s) => s.path().display().to_string(),
            Storage::Postgres(p) => p.location().to_string(),
        }
    }

    /// The SQLite file, for the SQLite backend.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Storage::Sqlite(s) => Some(s.path()),
            Storage::Postgres(_) => None,
        }
    }

    /// The PostgreSQL backend, if this is one (push across replicas, shared tokens).
    pub fn postgres(&self) -> Option<&Postgres> {
        match self {
            Storage::Postgres(p) => Some(p),
            Storage::Sqlite(_) => None,
        }
    }

    /// At shutdown: SQLite moves its write-ahead log into the file (every commit is already
    /// durable; this leaves one self-contained file); PostgreSQL closes its pool.
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(s) => s.checkpoint(),
            Storage::Postgres(p) => {
                p.close();
                Ok(())
            }
        }
    }

    /// How long each write took, by operation (for the metrics).
    pub fn write_latency(&self) -> &WriteLatency {
        match self {
            Storage::Sqlite(s) => s.write_latency(),
            Storage::Postgres(p) => p.write_latency(),
        }
    }

    /// Registers a key (`POST /`).
    pub async fn register(
        &self,
        pubkeyhash: &str,
        fingerprint: &str,
        armored: &str,
        now_ms: u64,
    ) -> Result<Registration, StorageError> {
        match self {
            Storage::Sqlite(s) => s.register(pubkeyhash, fingerprint, armored, now_ms),
            Storage::Postgres(p) => p.register(pubkeyhash, fingerprint, armored, now_ms).await,
        }
    }

    /// The identity registered under `pubkeyhash`.
    pub async fn identity(&self, pubkeyhash: &str) -> Result<Option<IdentityRow>, StorageError> {
        match self {
            Storage::Sqlite(s) => s.identity(pubkeyhash),
            Storage::Postgres(p) => p.identity(pubkeyhash).await,
        }
    }

    /// Gives `name` to the identity `pubkeyhash` (`POST /aliases`).
    pub async fn add_alias(
        &self,
        name: &str,
        pubkeyhash: &str,
        now_ms: u64,
    ) -> Result<AliasOutcome, StorageError> {
        match self {
            Storage::Sqlite(s) => s.add_alias(name, pubkeyhash, now_ms),
            Storage::Postgres(p) => p.add_alias(name, pubkeyhash, now_ms).await,
        }
    }

    /// The identity behind an alias.
    pub async fn alias(&self, name: &str) -> Result<Option<IdentityRow>, StorageError> {
        match self {
            Storage::Sqlite(s) => s.alias(name),
            Storage::Postgres(p) => p.alias(name).await,
        }
    }

    /// Records an accepted `(identity, nonce)`; false when it was accepted before (replay,
    /// P-A2). Forgets nonces past `expires` on the way (the window check refuses them anyway).
    pub async fn use_nonce(
        &self,
        identity: &str,
        nonce: u64,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<bool, StorageError> {
        match self {
            Storage::Sqlite(s) => s.use_nonce(identity, nonce, now_ms, expires_ms),
            Storage::Postgres(p) => p.use_nonce(identity, nonce, now_ms, expires_ms).await,
        }
    }

    /// Adds an inbox entry for the identity `owner` (`POST /inboxes/:alias`); returns its id
    /// (P-X1), greater than every id of `owner`'s inbox a reader could have seen before. With
    /// PostgreSQL the entry, with its id, is announced to every replica in the same
    /// transaction ([`Postgres::add_entry`]), and each pushes it to its own subscribers.
    pub async fn add_entry(&self, owner: &str, entry: &InboxEntry) -> Result<u64, StorageError> {
        match self {
            Storage::Sqlite(s) => s.add_entry(owner, entry),
            Storage::Postgres(p) => p.add_entry(owner, entry).await,
        }
    }

    /// Every inbox entry of `owner`, oldest first.
    pub async fn entries(&self, owner: &str) -> Result<Vec<InboxEntry>, StorageError> {
        match self {
            Storage::Sqlite(s) => s.entries(owner),
            Storage::Postgres(p) => p.entries(owner).await,
        }
    }

    /// Deletes every inbox entry of `owner` (`DELETE /inboxes`); returns how many.
    pub async fn purge(&self, owner: &str) -> Result<usize, StorageError> {
        match self {
            Storage::Sqlite(s) => s.purge(owner),
            Storage::Postgres(p) => p.purge(owner).await,
        }
    }

    /// Deletes the inbox entries of `owner` whose id is at most `upto`
    /// (`DELETE /inboxes?upto=ID`, P-X1); returns how many.
    pub async fn purge_upto(&self, owner: &str, upto: u64) -> Result<usize, StorageError> {
        match self {
            Storage::Sqlite(s) => s.purge_upto(owner, upto),
            Storage::Postgres(p) => p.purge_upto(owner, upto).await,
        }
    }

    /// Every distinct message key named by an inbox entry of any user (P-X2).
    pub async fn inbox_keys(&self) -> Result<BTreeSet<String>, StorageError> {
        match self {
            Storage::Sqlite(s) => s.inbox_keys(),
            Storage::Postgres(p) => p.inbox_keys().await,
        }
    }

    /// Every key the pod keeps alive (P-X2).
    pub async fn keepalive_keys(&self) -> Result<BTreeSet<String>, StorageError> {
        match self {
            Storage::Sqlite(s) => s.keepalive_keys(),
            Storage::Postgres(p) => p.keepalive_keys().await,
        }
    }

    /// Records that the pod keeps `key` alive (adopted at `now_ms`).
    pub async fn keepalive_add(&self, key: &str, now_ms: u64) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(s) => s.keepalive_add(key, now_ms),
            Storage::Postgres(p) => p.keepalive_add(key, now_ms).await,
        }
    }

    /// Forgets that the pod keeps `key` alive.
    pub async fn keepalive_remove(&self, key: &str) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(s) => s.keepalive_remove(key),
            Storage::Postgres(p) => p.keepalive_remove(key).await,
        }
    }

    /// Whether the database takes writes now (`/healthz`, P-X3), writing nothing.
    pub async fn check_writable(&self) -> Result<(), StorageError> {
        match self {
            Storage::Sqlite(s) => s.check_writable(),
            Storage::Postgres(p) => p.check_writable().await,
        }
    }

    /// Row counts (identities, aliases, inbox entries, values kept alive), for the metrics
    /// and the status page.
    pub async fn counts(&self) -> Result<Counts, StorageError> {
        match self {
            Storage::Sqlite(s) => s.counts(),
            Storage::Postgres(p) => p.counts().await,
        }
    }
}

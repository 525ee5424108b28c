//! The value store: what a seed holds for the DHT (PROFILE §3, P-V4).
//!
//! The sans-IO core (`crate::kad`) admits a STORE with [`crate::value::check_store`] (P-V3)
//! and then hands it to a [`ValueStore`], which enforces the quotas of P-V4 and keeps the value
//! until it expires. Two stores implement the trait:
//! - [`MemStore`]: in memory, for tests, the simulator and seeds that may forget on restart;
//! - [`SqliteStore`]: durable, for seeds that must serve what they held after a restart.

mod mem;
pub mod quota;
pub mod sqlite;
#[cfg(test)]
mod tests;

pub use mem::MemStore;
pub use sqlite::SqliteStore;

use crate::id::{Key, NodeId};

/// One value held by a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredValue {
    /// SHA-1 of `value` (P-V2).
    pub key: Key,
    /// Hex of the armored OpenPGP message (P-V1).
    pub value: String,
    /// Node ID of the original publisher (P-V4 quotas are counted per publisher).
    pub publisher: NodeId,
    /// The publisher's timestamp, ms since the epoch (P-W5); expiry counts from it (P-K2).
    pub timestamp: u64,
}

/// A value this seed published itself and keeps alive (PROFILE P-K2): it is stored again at the
/// current k closest nodes, with a fresh `timestamp`, every `republish_interval` — before the
/// `expiry` of the copies already out there, so a value kept alive is never unserved. The store
/// remembers publications so that a restarted seed (or pod, P-X2) goes on republishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// SHA-1 of `value` (P-V2).
    pub key: Key,
    /// Hex of the armored OpenPGP message (P-V1).
    pub value: String,
    /// When it is next due for republication, ms since the epoch.
    pub republish_at: u64,
}

/// What a successful [`ValueStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The value is new here and now held.
    Stored,
    /// The key was already held; nothing changed (P-V3: storing again succeeds, changes
    /// nothing).
    AlreadyHeld,
}

/// Why a store could not take a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A P-V4 quota would be exceeded.
    #[error("quota exceeded: {0} (P-V4)")]
    Quota(String),
    /// The durable medium failed.
    #[error("store IO error: {0}")]
    Io(String),
}

/// The P-V4 bounds of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Most values held for one publisher.
    pub max_values_per_publisher: usize,
    /// Most values held in total.
    pub max_values: usize,
    /// Most bytes of value text held in total.
    pub max_bytes: u64,
}

impl Quotas {
    /// The quotas of a [`crate::Config`].
    pub fn from_config(c: &crate::Config) -> Quotas {
        Quotas {
            max_values_per_publisher: c.max_values_per_publisher,
            max_values: c.max_values,
            max_bytes: c.max_bytes,
        }
    }
}

/// A seed's value store. Implementations are synchronous and cheap per call: the core calls
/// them while handling a datagram.
pub trait ValueStore: Send + 'static {
    /// Holds `v` unless a quota forbids it. A key already held answers
    /// [`PutOutcome::AlreadyHeld`] and changes nothing (not even the timestamp).
    fn put(&mut self, v: StoredValue) -> Result<PutOutcome, StoreError>;
    /// The value at `key`, if held.
    fn get(&self, key: &Key) -> Option<StoredValue>;
    /// Whether `key` is held.
    fn contains(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }
    /// Forgets `key`; true if it was held.
    fn remove(&mut self, key: &Key) -> Result<bool, StoreError>;
    /// Forgets every value with `timestamp + expiry_ms <= now_ms` (P-K2 expiry); returns how
    /// many were removed.
    fn expire(&mut self, now_ms: u64, expiry_ms: u64) -> Result<usize, StoreError>;
    /// Every key held, in ascending order (deterministic, for replication).
    fn keys(&self) -> Vec<Key>;
    /// Number of values held.
    fn len(&self) -> usize;
    /// True when nothing is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes of value text held.
    fn bytes(&self) -> u64;
    /// Makes everything acknowledged so far durable (no-op in memory).
    fn flush(&mut self) -> Result<(), StoreError>;
    /// Records (or updates, by key) a publication of this seed (P-K2), durably where the store
    /// is durable.
    fn save_publication(&mut self, p: &Publication) -> Result<(), StoreError>;
    /// Forgets a publication; true if it was recorded. The value itself stays until it expires.
    fn remove_publication(&mut self, key: &Key) -> Result<bool, StoreError>;
    /// Every recorded publication, in ascending key order (read when a node starts).
    fn publications(&self) -> Result<Vec<Publication>, StoreError>;
}

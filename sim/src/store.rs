//! A value store that tells the simulator's oracle what each node holds.
//!
//! [`TrackedStore`] wraps a real [`ValueStore`] (the node's own [`MemStore`] by default) and
//! mirrors every change into a shared [`Holdings`] map (key → nodes holding it). The invariant
//! checker reads that map instead of asking nodes over the network, so checking costs no
//! datagrams and cannot disturb the run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use muttr_node::Key;
use muttr_node::store::{MemStore, Publication, PutOutcome, StoreError, StoredValue, ValueStore};

/// Which nodes (by host number) hold which keys.
#[derive(Debug, Clone, Default)]
pub struct Holdings(Arc<Mutex<BTreeMap<Key, BTreeSet<u32>>>>);

impl Holdings {
    /// Locks the map (single-threaded simulation: never contended; a poisoned lock is taken
    /// over, since the map stays consistent between calls).
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, BTreeSet<u32>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, key: Key, host: u32) {
        self.lock().entry(key).or_default().insert(host);
    }

    fn remove(&self, key: &Key, host: u32) {
        let mut m = self.lock();
        if let Some(s) = m.get_mut(key) {
            s.remove(&host);
            if s.is_empty() {
                m.remove(key);
            }
        }
    }

    /// Forgets everything `host` held (it left the network with its store).
    pub fn forget_host(&self, host: u32, keys: &[Key]) {
        for k in keys {
            self.remove(k, host);
        }
    }

    /// The hosts holding `key`.
    pub fn holders(&self, key: &Key) -> BTreeSet<u32> {
        self.lock().get(key).cloned().unwrap_or_default()
    }
}

/// A store that reports its contents to [`Holdings`].
#[derive(Debug)]
pub struct TrackedStore<S = MemStore> {
    inner: S,
    host: u32,
    holdings: Holdings,
}

impl<S: ValueStore> TrackedStore<S> {
    /// Wraps `inner` for host number `host`.
    pub fn new(inner: S, host: u32, holdings: Holdings) -> Self {
        for k in inner.keys() {
            holdings.add(k, host);
        }
        TrackedStore {
            inner,
            host,
            holdings,
        }
    }
}

impl<S: ValueStore> ValueStore for TrackedStore<S> {
    fn put(&mut self, v: StoredValue) -> Result<PutOutcome, StoreError> {
        let key = v.key;
        let r = self.inner.put(v)?;
        if r == PutOutcome::Stored {
            self.holdings.add(key, self.host);
        }
        Ok(r)
    }

    fn get(&self, key: &Key) -> Option<StoredValue> {
        self.inner.get(key)
    }

    fn contains(&self, key: &Key) -> bool {
        self.inner.contains(key)
    }

    fn remove(&mut self, key: &Key) -> Result<bool, StoreError> {
        let r = self.inner.remove(key)?;
        if r {
            self.holdings.remove(key, self.host);
        }
        Ok(r)
    }

    fn expire(&mut self, now_ms: u64, expiry_ms: u64) -> Result<usize, StoreError> {
        let before = self.inner.keys();
        let n = self.inner.expire(now_ms, expiry_ms)?;
        if n > 0 {
            let after: BTreeSet<Key> = self.inner.keys().into_iter().collect();
            for k in before.iter().filter(|k| !after.contains(k)) {
                self.holdings.remove(k, self.host);
            }
        }
        Ok(n)
    }

    fn keys(&self) -> Vec<Key> {
        self.inner.keys()
    }

    fn len(&self) -> usize {
        self.inner.len()
    }

    fn bytes(&self) -> u64 {
        self.inner.bytes()
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn save_publication(&mut self, p: &Publication) -> Result<(), StoreError> {
        self.inner.save_publication(p)
    }

    fn remove_publication(&mut self, key: &Key) -> Result<bool, StoreError> {
        self.inner.remove_publication(key)
    }

    fn publications(&self) -> Result<Vec<Publication>, StoreError> {
        self.inner.publications()
    }
}

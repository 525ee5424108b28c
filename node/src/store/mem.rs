//! [`MemStore`]: values in memory, for tests, the simulator, and seeds that may forget on
//! restart.

use std::collections::BTreeMap;

use super::quota::Ledger;
use super::{Publication, PutOutcome, Quotas, StoreError, StoredValue, ValueStore};
use crate::id::Key;

/// A value store in a `BTreeMap`, with P-V4 quotas.
#[derive(Debug, Clone)]
pub struct MemStore {
    quotas: Quotas,
    values: BTreeMap<Key, StoredValue>,
    ledger: Ledger,
    /// This seed's own publications (P-K2); they survive a restart that keeps the store.
    publications: BTreeMap<Key, Publication>,
}

impl MemStore {
    /// An empty store with these quotas.
    pub fn new(quotas: Quotas) -> MemStore {
        MemStore {
            quotas,
            values: BTreeMap::new(),
            ledger: Ledger::default(),
            publications: BTreeMap::new(),
        }
    }
}

impl Default for MemStore {
    /// An empty store with the quotas of the default [`crate::Config`].
    fn default() -> Self {
        MemStore::new(Quotas::from_config(&crate::Config::default()))
    }
}

impl ValueStore for MemStore {
    fn put(&mut self, v: StoredValue) -> Result<PutOutcome, StoreError> {
        if self.values.contains_key(&v.key) {
            return Ok(PutOutcome::AlreadyHeld);
        }
        self.ledger.check(&self.quotas, &v)?;
        self.ledger.add(&v);
        self.values.insert(v.key, v);
        Ok(PutOutcome::Stored)
    }

    fn get(&self, key: &Key) -> Option<StoredValue> {
        self.values.get(key).cloned()
    }

    fn contains(&self, key: &Key) -> bool {
        self.values.contains_key(key)
    }

    fn remove(&mut self, key: &Key) -> Result<bool, StoreError> {
        Ok(match self.values.remove(key) {
            Some(v) => {
                self.ledger.remove(&v);
                true
            }
            None => false,
        })
    }

    fn expire(&mut self, now_ms: u64, expiry_ms: u64) -> Result<usize, StoreError> {
        let gone: Vec<Key> = self
            .values
            .values()
            .filter(|v| v.timestamp.saturating_add(expiry_ms) <= now_ms)
            .map(|v| v.key)
            .collect();
        for k in &gone {
            self.remove(k)?;
        }
        Ok(gone.len())
    }

    fn keys(&self) -> Vec<Key> {
        self.values.keys().copied().collect()
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn bytes(&self) -> u64 {
        self.ledger.bytes()
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn save_publication(&mut self, p: &Publication) -> Result<(), StoreError> {
        self.publications.insert(p.key, p.clone());
        Ok(())
    }

    fn remove_publication(&mut self, key: &Key) -> Result<bool, StoreError> {
        Ok(self.publications.remove(key).is_some())
    }

    fn publications(&self) -> Result<Vec<Publication>, StoreError> {
        Ok(self.publications.values().cloned().collect())
    }
}

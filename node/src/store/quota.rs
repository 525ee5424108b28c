//! Quota accounting shared by every store (PROFILE P-V4).
//!
//! A [`Ledger`] counts what a store holds — values per publisher, values in total, bytes of
//! value text — and answers whether one more value fits. Stores keep one ledger beside their
//! data (a durable store rebuilds it when it opens), so both stores refuse at exactly the same
//! boundaries.

use std::collections::BTreeMap;

use super::{Quotas, StoreError, StoredValue};
use crate::id::NodeId;

/// What a store holds, for quota decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    per_publisher: BTreeMap<NodeId, usize>,
    values: usize,
    bytes: u64,
}

impl Ledger {
    /// Checks that `v` fits under `q` in addition to what is counted.
    pub fn check(&self, q: &Quotas, v: &StoredValue) -> Result<(), StoreError> {
        let held = self.per_publisher.get(&v.publisher).copied().unwrap_or(0);
        if held >= q.max_values_per_publisher {
            return Err(StoreError::Quota(format!(
                "publisher {} already has {held} values here",
                v.publisher
            )));
        }
        if self.values >= q.max_values {
            return Err(StoreError::Quota(format!(
                "store full ({} values)",
                self.values
            )));
        }
        if self.bytes + v.value.len() as u64 > q.max_bytes {
            return Err(StoreError::Quota(format!(
                "store full ({} of {} bytes)",
                self.bytes, q.max_bytes
            )));
        }
        Ok(())
    }

    /// Counts `v` as held.
    pub fn add(&mut self, v: &StoredValue) {
        *self.per_publisher.entry(v.publisher).or_default() += 1;
        self.values += 1;
        self.bytes += v.value.len() as u64;
    }

    /// Stops counting `v`.
    pub fn remove(&mut self, v: &StoredValue) {
        if let Some(n) = self.per_publisher.get_mut(&v.publisher) {
            *n -= 1;
            if *n == 0 {
                self.per_publisher.remove(&v.publisher);
            }
        }
        self.values -= 1;
        self.bytes -= v.value.len() as u64;
    }

    /// Values counted.
    pub fn values(&self) -> usize {
        self.values
    }

    /// Bytes counted.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

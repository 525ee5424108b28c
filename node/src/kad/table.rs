//! The routing table: 160 k-buckets in least-recently-seen order, with ping-before-evict and a
//! replacement cache (PROFILE P-K3, P-K4).
//!
//! Bucket `i` holds the contacts whose distance to the local node has its highest set bit at
//! position `i` ([`NodeId::bucket_index`]). Within a bucket, contacts are kept least recently
//! seen first. When a full bucket hears from a newcomer, the newcomer waits in the bucket's
//! replacement cache and the table asks its owner to PING the least recently seen contact
//! ([`Update::PingOldest`]): live old contacts are never pushed out by newcomers, which is what
//! makes Kademlia resistant to flooding with fresh identities.
//!
//! # Closest-k without sorting the table
//! The closest contacts to a target `t` can be read bucket by bucket, in an order known in
//! advance. Let `b` be the bucket of `t` and `x = local ⊕ t`:
//! 1. bucket `b` first: its contacts agree with `t` on every bit above `b`;
//! 2. then buckets `i < b` where bit `i` of `x` is 1, from `b-1` down to 0;
//! 3. then buckets `i < b` where bit `i` of `x` is 0, from 0 up to `b-1`;
//! 4. then buckets `i > b`, upwards.
//!
//! Every contact of an earlier bucket in this order is closer to `t` than every contact of a
//! later one, so a query sorts only the (at most k) contacts of the buckets it actually takes.
//! `closest(t, 20)` on a full table touches one or two buckets.

use std::net::SocketAddr;

use crate::id::{Distance, ID_BITS, NodeId};
use crate::wire::Contact;

/// One contact in a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The contact.
    pub contact: Contact,
    /// When a valid message from it was last received (ms since the epoch).
    pub last_seen: u64,
    /// Requests to it that went unanswered since it was last seen.
    pub failures: u32,
}

#[derive(Debug, Clone, Default)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// Newcomers waiting for a slot, most recently seen last.
    replacements: Vec<Contact>,
    /// The contact being PINGed before a possible eviction.
    pinging: Option<NodeId>,
    /// Last time a lookup went through this bucket's range (for refresh).
    last_touched: u64,
}

/// What [`RoutingTable::update`] did with a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Added to a bucket with room.
    Inserted,
    /// Already present: moved to the most-recently-seen end.
    Refreshed,
    /// The bucket is full: the newcomer waits in the replacement cache, and the caller must
    /// PING this (least recently seen) contact; [`RoutingTable::ping_failed`] evicts it if it
    /// does not answer.
    PingOldest(Contact),
    /// The bucket is full and its oldest contact is already being PINGed: the newcomer waits
    /// in the replacement cache.
    Cached,
    /// The local node itself, never stored.
    IsSelf,
}

/// Contacts that go unanswered this many times in a row are removed even when no replacement
/// is waiting. One lost datagram must not cost a good contact its place, but a node that has
/// left should not keep being offered to others for an hour.
pub const MAX_FAILURES: u32 = 3;

/// Buckets up to this size are sorted in a stack buffer by `closest_into` (k is 20 by
/// default, P-K2); larger ones, possible with a MIP's k, are sorted in place.
const SORT_BUFFER: usize = 64;

/// The routing table of one node.
#[derive(Debug, Clone)]
pub struct RoutingTable {
    local: NodeId,
    k: usize,
    cache_size: usize,
    buckets: Vec<Bucket>,
    len: usize,
}

impl RoutingTable {
    /// An empty table for `local`, with buckets of `k` contacts and replacement caches of
    /// `cache_size`.
    pub fn new(local: NodeId, k: usize, cache_size: usize) -> RoutingTable {
        RoutingTable {
            local,
            k: k.max(1),
            cache_size,
            buckets: vec![Bucket::default(); ID_BITS],
            len: 0,
        }
    }

    /// The local node's identifier.
    pub fn local(&self) -> NodeId {
        self.local
    }

    /// Number of contacts in the buckets (not counting replacement caches).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no contact is known.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records that a valid message came from `contact` at `now` (P-K4). The caller has already
    /// checked P-W7 (the claimed address is the datagram's source).
    pub fn update(&mut self, contact: Contact, now: u64) -> Update {
        let Some(index) = self.local.bucket_index(&contact.node_id) else {
            return Update::IsSelf;
        };
        let k = self.k;
        let cache_size = self.cache_size;
        let bucket = &mut self.buckets[index];
        if let Some(pos) = bucket
            .entries
            .iter()
            .position(|e| e.contact.node_id == contact.node_id)
        {
            let mut e = bucket.entries.remove(pos);
            e.contact = contact;
            e.last_seen = now;
            e.failures = 0;
            bucket.entries.push(e);
            if bucket.pinging == Some(contact.node_id) {
                bucket.pinging = None;
            }
            return Update::Refreshed;
        }
        if bucket.entries.len() < k {
            if bucket.entries.is_empty() {
                // A bucket's idle time (for refresh) starts when it gets its first contact.
                bucket.last_touched = bucket.last_touched.max(now);
            }
            bucket.entries.push(Entry {
                contact,
                last_seen: now,
                failures: 0,
            });
            bucket.replacements.retain(|c| c.node_id != contact.node_id);
            self.len += 1;
            return Update::Inserted;
        }
        bucket.replacements.retain(|c| c.node_id != contact.node_id);
        if cache_size > 0 {
            if bucket.replacements.len() == cache_size {
                bucket.replacements.remove(0);
            }
            bucket.replacements.push(contact);
        }
        if bucket.pinging.is_some() {
            return Update::Cached;
        }
        let oldest = bucket.entries[0].contact;
        bucket.pinging = Some(oldest.node_id);
        Update::PingOldest(oldest)
    }

    /// The eviction PING to `node` went unanswered: remove it and promote the most recently
    /// seen replacement (P-K3).
    pub fn ping_failed(&mut self, node: &NodeId) {
        let Some(index) = self.local.bucket_index(node) else {
            return;
        };
        let bucket = &mut self.buckets[index];
        if bucket.pinging == Some(*node) {
            bucket.pinging = None;
        }
        if let Some(pos) = bucket
            .entries
            .iter()
            .position(|e| e.contact.node_id == *node)
        {
            bucket.entries.remove(pos);
            self.len -= 1;
            self.promote(index);
        }
    }

    /// A request to `node` went unanswered. The contact is removed when a replacement is
    /// waiting or after [`MAX_FAILURES`] failures in a row.
    pub fn request_failed(&mut self, node: &NodeId) {
        let Some(index) = self.local.bucket_index(node) else {
            return;
        };
        let bucket = &mut self.buckets[index];
        let Some(pos) = bucket
            .entries
            .iter()
            .position(|e| e.contact.node_id == *node)
        else {
            bucket.replacements.retain(|c| c.node_id != *node);
            return;
        };
        bucket.entries[pos].failures += 1;
        if bucket.entries[pos].failures >= MAX_FAILURES || !bucket.replacements.is_empty() {
            bucket.entries.remove(pos);
            if bucket.pinging == Some(*node) {
                bucket.pinging = None;
            }
            self.len -= 1;
            self.promote(index);
        }
    }

    fn promote(&mut self, index: usize) {
        let bucket = &mut self.buckets[index];
        if bucket.entries.len() < self.k
            && let Some(c) = bucket.replacements.pop()
        {
            // A replacement has been heard from recently, but we don't know exactly when: it
            // goes to the least-recently-seen end.
            bucket.entries.insert(
                0,
                Entry {
                    contact: c,
                    last_seen: 0,
                    failures: 0,
                },
            );
            self.len += 1;
        }
    }

    /// Whether `node` is in a bucket.
    pub fn contains(&self, node: &NodeId) -> bool {
        self.get(node).is_some()
    }

    /// The entry for `node`, if in a bucket.
    pub fn get(&self, node: &NodeId) -> Option<&Entry> {
        let index = self.local.bucket_index(node)?;
        self.buckets[index]
            .entries
            .iter()
            .find(|e| e.contact.node_id == *node)
    }

    /// The contact known at a socket address, if any.
    pub fn find_addr(&self, addr: SocketAddr) -> Option<Contact> {
        let c = Contact::from_addr(addr);
        self.get(&c.node_id).map(|e| e.contact)
    }

    /// Appends the `n` contacts closest to `target` to `out`, closest first (P-W8 order). The
    /// local node is never included. Allocates nothing beyond growing `out`.
    pub fn closest_into(&self, target: &NodeId, n: usize, out: &mut Vec<Contact>) {
        let start = out.len();
        if n == 0 {
            return;
        }
        let x = self.local.distance(target);
        // Each bucket taken is sorted by distance to `target`, the distance computed once per
        // contact as an integer pair (`NodeId::distance_key`), in a stack buffer: no allocation
        // beyond `out`, two integer compares per comparison.
        let take = |i: usize, out: &mut Vec<Contact>| {
            let entries = &self.buckets[i].entries;
            let want = n - (out.len() - start);
            if entries.len() <= SORT_BUFFER {
                let mut keys = [((0u128, 0u32), 0u8); SORT_BUFFER];
                for (j, e) in entries.iter().enumerate() {
                    keys[j] = (e.contact.node_id.distance_key(target), j as u8);
                }
                let keys = &mut keys[..entries.len()];
                keys.sort_unstable_by_key(|&(d, _)| d);
                out.extend(
                    keys.iter()
                        .take(want)
                        .map(|&(_, j)| entries[j as usize].contact),
                );
            } else {
                let before = out.len();
                out.extend(entries.iter().map(|e| e.contact));
                out[before..].sort_unstable_by_key(|c| c.node_id.distance_key(target));
                out.truncate(before + want);
            }
            out.len() - start >= n
        };
        let bit = |i: usize| x.0[ID_BITS / 8 - 1 - i / 8] & (1 << (i % 8)) != 0;
        let done = 'walk: {
            let Some(b) = x.bucket_index() else {
                // target == local: every bucket, nearest first.
                for i in 0..ID_BITS {
                    if take(i, out) {
                        break 'walk true;
                    }
                }
                break 'walk false;
            };
            if take(b, out) {
                break 'walk true;
            }
            for i in (0..b).rev().filter(|&i| bit(i)) {
                if take(i, out) {
                    break 'walk true;
                }
            }
            for i in (0..b).filter(|&i| !bit(i)) {
                if take(i, out) {
                    break 'walk true;
                }
            }
            for i in b + 1..ID_BITS {
                if take(i, out) {
                    break 'walk true;
                }
            }
            false
        };
        if done {
            out.truncate(start + n);
        }
    }

    /// The `n` contacts closest to `target`, closest first.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<Contact> {
        let mut out = Vec::with_capacity(n + self.k);
        self.closest_into(target, n, &mut out);
        out
    }

    /// Every contact in the buckets, bucket by bucket, least recently seen first.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// Marks the bucket that `target` falls in as used by a lookup at `now`.
    pub fn touch(&mut self, target: &NodeId, now: u64) {
        if let Some(i) = self.local.bucket_index(target) {
            self.buckets[i].last_touched = now;
        }
    }

    /// Indexes of non-empty buckets not touched since `before` (they need a refresh lookup).
    pub fn stale_buckets(&self, before: u64) -> Vec<usize> {
        (0..ID_BITS)
            .filter(|&i| {
                let b = &self.buckets[i];
                !b.entries.is_empty() && b.last_touched < before
            })
            .collect()
    }

    /// Number of contacts in bucket `i`.
    pub fn bucket_len(&self, i: usize) -> usize {
        self.buckets[i].entries.len()
    }

    /// Number of contacts waiting in replacement caches.
    pub fn replacements_len(&self) -> usize {
        self.buckets.iter().map(|b| b.replacements.len()).sum()
    }

    /// Checks the table's invariants (for tests and the simulator): at most k per bucket, each
    /// contact in its right bucket, no duplicates, never the local node, `len` consistent.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut total = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            if b.entries.len() > self.k {
                return Err(format!("bucket {i} holds {} > k", b.entries.len()));
            }
            if b.replacements.len() > self.cache_size {
                return Err(format!("bucket {i} replacement cache overflows"));
            }
            for e in &b.entries {
                if e.contact.node_id == self.local {
                    return Err("local node in the table".into());
                }
                if self.local.bucket_index(&e.contact.node_id) != Some(i) {
                    return Err(format!("{} in wrong bucket {i}", e.contact.node_id));
                }
                if !seen.insert(e.contact.node_id) {
                    return Err(format!("{} twice", e.contact.node_id));
                }
                total += 1;
            }
        }
        if total != self.len {
            return Err(format!("len {} but {} entries", self.len, total));
        }
        Ok(())
    }

    /// The distance from the local node to the closest contact known, if any.
    pub fn nearest_distance(&self) -> Option<Distance> {
        self.closest(&self.local, 1)
            .first()
            .map(|c| c.node_id.distance(&self.local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contact(n: u32) -> Contact {
        Contact::from_addr(SocketAddr::from((
            [10, (n >> 16) as u8, (n >> 8) as u8, n as u8],
            4000,
        )))
    }

    fn local() -> NodeId {
        Contact::from_addr("127.0.0.1:4000".parse().unwrap()).node_id
    }

    /// Contacts that all fall in bucket `b` of `local()`.
    fn in_bucket(b: usize, count: usize) -> Vec<Contact> {
        (0..200_000u32)
            .map(contact)
            .filter(|c| local().bucket_index(&c.node_id) == Some(b))
            .take(count)
            .collect()
    }

    #[test]
    fn self_is_never_stored_p_k3() {
        let mut t = RoutingTable::new(local(), 20, 8);
        let me = Contact::from_addr("127.0.0.1:4000".parse().unwrap());
        assert_eq!(t.update(me, 1), Update::IsSelf);
        assert!(t.is_empty());
    }

    #[test]
    fn lrs_order_and_refresh_p_k3() {
        let mut t = RoutingTable::new(local(), 3, 2);
        let cs = in_bucket(159, 3);
        for (i, c) in cs.iter().enumerate() {
            assert_eq!(t.update(*c, i as u64), Update::Inserted);
        }
        assert_eq!(t.update(cs[0], 10), Update::Refreshed);
        let order: Vec<_> = t.iter().map(|e| e.contact).collect();
        assert_eq!(order, vec![cs[1], cs[2], cs[0]]);
    }

    #[test]
    fn full_bucket_pings_oldest_and_evicts_only_on_failure_p_k3() {
        let mut t = RoutingTable::new(local(), 2, 2);
        let cs = in_bucket(159, 5);
        t.update(cs[0], 1);
        t.update(cs[1], 2);
        // Newcomer: oldest must be pinged, newcomer cached.
        assert_eq!(t.update(cs[2], 3), Update::PingOldest(cs[0]));
        assert_eq!(t.update(cs[3], 4), Update::Cached);
        assert_eq!(t.replacements_len(), 2);
        // The oldest answers: it stays, moves to MRS; newcomers keep waiting.
        assert_eq!(t.update(cs[0], 5), Update::Refreshed);
        assert!(t.contains(&cs[0].node_id) && !t.contains(&cs[2].node_id));
        // Next newcomer: now cs[1] is oldest.
        assert_eq!(t.update(cs[4], 6), Update::PingOldest(cs[1]));
        // Cache holds 2: cs[2] fell out, cs[3] and cs[4] remain.
        t.ping_failed(&cs[1].node_id);
        assert!(!t.contains(&cs[1].node_id));
        assert!(
            t.contains(&cs[4].node_id),
            "most recent replacement promoted"
        );
        assert_eq!(t.len(), 2);
        t.check_invariants().unwrap();
    }

    #[test]
    fn request_failures_remove_after_limit() {
        let mut t = RoutingTable::new(local(), 4, 2);
        let c = in_bucket(159, 1)[0];
        t.update(c, 1);
        for _ in 0..MAX_FAILURES - 1 {
            t.request_failed(&c.node_id);
            assert!(t.contains(&c.node_id));
        }
        t.request_failed(&c.node_id);
        assert!(!t.contains(&c.node_id));
        // A message from it resets the count.
        t.update(c, 2);
        t.request_failed(&c.node_id);
        t.update(c, 3);
        assert_eq!(t.get(&c.node_id).unwrap().failures, 0);
    }

    #[test]
    fn closest_matches_sorting_everything() {
        let mut t = RoutingTable::new(local(), 20, 8);
        for n in 0..5_000 {
            t.update(contact(n), n as u64);
        }
        t.check_invariants().unwrap();
        let all: Vec<Contact> = t.iter().map(|e| e.contact).collect();
        for probe in 0..200u32 {
            let target = NodeId::sha1(probe.to_be_bytes());
            for n in [1, 3, 20, 50, all.len() + 5] {
                let mut expect = all.clone();
                expect.sort_by_key(|c| c.node_id.distance(&target));
                expect.truncate(n);
                assert_eq!(t.closest(&target, n), expect, "probe {probe} n {n}");
            }
        }
        // Target = local: nearest first as well.
        let mut expect = all.clone();
        expect.sort_by_key(|c| c.node_id.distance(&local()));
        assert_eq!(t.closest(&local(), 7), expect[..7].to_vec());
    }

    proptest! {
        #[test]
        fn invariants_hold_under_random_operations(ops in proptest::collection::vec((0u8..4, 0u32..400), 1..300)) {
            let mut t = RoutingTable::new(local(), 4, 2);
            for (now, (op, n)) in ops.into_iter().enumerate() {
                let c = contact(n);
                match op {
                    0 | 1 => { t.update(c, now as u64); }
                    2 => t.ping_failed(&c.node_id),
                    _ => t.request_failed(&c.node_id),
                }
                prop_assert!(t.check_invariants().is_ok(), "{:?}", t.check_invariants());
            }
        }
    }
}

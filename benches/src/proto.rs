//! A prototype of a faster closest-k for the node's routing table, measured next to it.
//!
//! [`RoutingTable::closest_into`](muttr_node::kad::RoutingTable::closest_into) walks the
//! buckets in the right order but sorts each bucket it takes with
//! `sort_unstable_by_key(|c| c.node_id.distance(target))`: the key (a 20-byte XOR) is
//! recomputed on both sides of every comparison, and comparing two `[u8; 20]` is a byte-wise
//! comparison. Sorting the 20 contacts of one bucket this way costs a few hundred
//! 20-byte XORs and comparisons.
//!
//! [`FlatTable::closest_into`] does the same walk but computes each contact's distance once,
//! as a `(u128, u32)` pair of big-endian words (whose integer order is the XOR metric's
//! order), and sorts (key, position) pairs: each comparison is two integer compares. This
//! module is not used by the node; it exists to measure the proposal on the very contents of a
//! real table (see the `table/closest/*/proposed` benchmarks) before anyone changes
//! `muttr_node::kad::table`.

use muttr_node::id::{ID_BITS, NodeId};
use muttr_node::kad::RoutingTable;
use muttr_node::wire::Contact;

/// The contents of a routing table, bucket by bucket, with the proposed closest-k.
#[derive(Debug, Clone)]
pub struct FlatTable {
    local: NodeId,
    buckets: Vec<Vec<Contact>>,
}

/// The distance from `a` to `b` as two big-endian integers: ordered like
/// [`muttr_node::id::Distance`].
#[inline]
pub fn distance_key(a: &NodeId, b: &NodeId) -> (u128, u32) {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let hi = |x: &[u8; 20]| u128::from_be_bytes(x[..16].try_into().expect("16 bytes"));
    let lo = |x: &[u8; 20]| u32::from_be_bytes(x[16..].try_into().expect("4 bytes"));
    (hi(a) ^ hi(b), lo(a) ^ lo(b))
}

impl FlatTable {
    /// A copy of `table`'s contacts.
    pub fn from_table(table: &RoutingTable) -> FlatTable {
        let local = table.local();
        let mut buckets = vec![Vec::new(); ID_BITS];
        for e in table.iter() {
            if let Some(i) = local.bucket_index(&e.contact.node_id) {
                buckets[i].push(e.contact);
            }
        }
        FlatTable { local, buckets }
    }

    /// Appends the `n` contacts closest to `target` to `out`, closest first: the same result
    /// as `RoutingTable::closest_into`.
    pub fn closest_into(&self, target: &NodeId, n: usize, out: &mut Vec<Contact>) {
        let start = out.len();
        if n == 0 {
            return;
        }
        let x = self.local.distance(target);
        // Fixed-size scratch: a bucket holds at most k (here ≤ 64) contacts.
        let take = |i: usize, out: &mut Vec<Contact>| {
            let bucket = &self.buckets[i];
            let mut keys = [((0u128, 0u32), 0u8); 64];
            let m = bucket.len().min(64);
            for (j, c) in bucket.iter().take(m).enumerate() {
                keys[j] = (distance_key(&c.node_id, target), j as u8);
            }
            let keys = &mut keys[..m];
            keys.sort_unstable_by_key(|&(d, _)| d);
            let want = n - (out.len() - start);
            out.extend(keys.iter().take(want).map(|&(_, j)| bucket[j as usize]));
            out.len() - start >= n
        };
        let bit = |i: usize| x.0[ID_BITS / 8 - 1 - i / 8] & (1 << (i % 8)) != 0;
        let Some(b) = x.bucket_index() else {
            for i in 0..ID_BITS {
                if take(i, out) {
                    return;
                }
            }
            return;
        };
        if take(b, out) {
            return;
        }
        for i in (0..b).rev().filter(|&i| bit(i)) {
            if take(i, out) {
                return;
            }
        }
        for i in (0..b).filter(|&i| !bit(i)) {
            if take(i, out) {
                return;
            }
        }
        for i in b + 1..ID_BITS {
            if take(i, out) {
                return;
            }
        }
    }

    /// The `n` contacts closest to `target`, closest first.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<Contact> {
        let mut out = Vec::with_capacity(n);
        self.closest_into(target, n, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inputs::{build_table, random_ids, rng};

    #[test]
    fn distance_key_orders_like_distance() {
        let ids = random_ids(200, 5);
        for a in &ids[..20] {
            for b in &ids {
                for c in &ids[..20] {
                    assert_eq!(
                        distance_key(a, b).cmp(&distance_key(a, c)),
                        a.distance(b).cmp(&a.distance(c))
                    );
                }
            }
        }
    }

    #[test]
    fn same_result_as_the_node_table() {
        for (n, seed) in [(1_000, 1), (30_000, 2)] {
            let ids = random_ids(n, seed);
            let table = build_table(NodeId::random(&mut rng(seed + 100)), &ids);
            let flat = FlatTable::from_table(&table);
            let mut r = rng(seed + 200);
            let mut targets: Vec<NodeId> = (0..300).map(|_| NodeId::random(&mut r)).collect();
            targets.push(table.local());
            targets.push(ids[3]);
            for t in &targets {
                for k in [1, 3, 20, 50, 1_000] {
                    assert_eq!(flat.closest(t, k), table.closest(t, k), "n {n} k {k}");
                }
            }
        }
    }
}

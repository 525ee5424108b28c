//! Node identifiers, keys and the XOR metric (PROFILE P-W3, P-K1).
//!
//! Every participant of the DHT and every stored value is named by a 160-bit identifier. A seed's
//! identifier is not chosen freely: it is the SHA-1 of the text `address:port` it is reached at
//! (P-W3), which ties an identity to a network location and makes Sybil placement cost one
//! address per identifier. A value's key is the SHA-1 of the value's hex text (P-V2, see
//! [`crate::value`]).
//!
//! Distances are the XOR of two identifiers read as an unsigned big-endian integer (P-K1). Since
//! Rust compares byte arrays lexicographically, `[u8; 20]` ordering *is* big-endian integer
//! ordering, so [`Distance`] derives `Ord` and costs nothing to compare.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha1::{Digest, Sha1};

/// Length of an identifier in bytes (160 bits, P-K1).
pub const ID_LEN: usize = 20;

/// Length of an identifier in bits; also the number of k-buckets of a routing table.
pub const ID_BITS: usize = ID_LEN * 8;

/// A 160-bit identifier of a node or of a value (a value's identifier is called its *key*).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodeId(pub [u8; ID_LEN]);

/// The key of a stored value: the same 160-bit space as node identifiers.
pub type Key = NodeId;

/// Why a text is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly 40 characters.
    #[error("identifier must be 40 hex characters, got {0}")]
    Length(usize),
    /// A character outside `0-9a-f` (upper case is refused too, P-W4).
    #[error("identifier must be lowercase hex (P-W4)")]
    NotLowercaseHex,
}

impl NodeId {
    /// The all-zero identifier.
    pub const ZERO: NodeId = NodeId([0; ID_LEN]);

    /// The SHA-1 of arbitrary bytes.
    pub fn sha1(data: impl AsRef<[u8]>) -> NodeId {
        let digest = Sha1::digest(data.as_ref());
        NodeId(digest.into())
    }

    /// The identifier of a seed reached at `address:port`, where `address` is the text exactly
    /// as it appears on the wire (P-W3): `sha1("127.0.0.1:4000")`.
    pub fn from_address_text(address: &str, port: u16) -> NodeId {
        let mut h = Sha1::new();
        h.update(address.as_bytes());
        h.update(b":");
        h.update(port.to_string().as_bytes());
        NodeId(h.finalize().into())
    }

    /// The identifier of a seed at a socket address, using the canonical text of its IP
    /// (dotted IPv4, RFC 5952 IPv6 without brackets; IPv4-mapped IPv6 is folded to IPv4).
    pub fn from_addr(addr: SocketAddr) -> NodeId {
        let ip = canonical_ip(addr.ip());
        NodeId::from_address_text(&ip.to_string(), addr.port())
    }

    /// Parses 40 lowercase hex characters (P-W4).
    pub fn from_hex(text: &str) -> Result<NodeId, IdError> {
        if text.len() != ID_LEN * 2 {
            return Err(IdError::Length(text.len()));
        }
        if !is_lower_hex(text) {
            return Err(IdError::NotLowercaseHex);
        }
        let mut out = [0u8; ID_LEN];
        hex::decode_to_slice(text, &mut out).map_err(|_| IdError::NotLowercaseHex)?;
        Ok(NodeId(out))
    }

    /// 40 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// XOR distance to `other` (P-K1).
    #[inline]
    pub fn distance(&self, other: &NodeId) -> Distance {
        let mut d = [0u8; ID_LEN];
        for (i, byte) in d.iter_mut().enumerate() {
            *byte = self.0[i] ^ other.0[i];
        }
        Distance(d)
    }

    /// The XOR distance to `other` as two big-endian integers (the first 16 bytes, the last 4):
    /// their lexicographic order is the order of [`Distance`] (P-K1), and comparing them is two
    /// integer comparisons instead of a 20-byte one. Used to sort contacts by distance.
    #[inline]
    pub fn distance_key(&self, other: &NodeId) -> (u128, u32) {
        let hi = |x: &[u8; ID_LEN]| u128::from_be_bytes(x[..16].try_into().expect("16 bytes"));
        let lo = |x: &[u8; ID_LEN]| u32::from_be_bytes(x[16..].try_into().expect("4 bytes"));
        (hi(&self.0) ^ hi(&other.0), lo(&self.0) ^ lo(&other.0))
    }

    /// The index of the k-bucket `other` falls in, seen from `self`: the position of the
    /// highest set bit of the distance, 0 (distance 1) to 159 (top bit differs). `None` when
    /// `other == self`.
    #[inline]
    pub fn bucket_index(&self, other: &NodeId) -> Option<usize> {
        self.distance(other).bucket_index()
    }

    /// A random identifier drawn from `rng`.
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> NodeId {
        let mut out = [0u8; ID_LEN];
        rng.fill(&mut out[..]);
        NodeId(out)
    }

    /// A random identifier whose distance from `self` falls in bucket `bucket` (0..160): used
    /// to refresh a bucket by looking up a random identifier inside it.
    ///
    /// # Panics
    /// If `bucket >= 160`; callers pass indexes that came from [`NodeId::bucket_index`].
    pub fn random_in_bucket<R: rand::Rng + ?Sized>(&self, bucket: usize, rng: &mut R) -> NodeId {
        assert!(bucket < ID_BITS, "bucket index out of range");
        let mut d = [0u8; ID_LEN];
        rng.fill(&mut d[..]);
        // Bit `bucket` (counted from the least significant end) is the highest set bit.
        let byte = ID_LEN - 1 - bucket / 8;
        let bit = bucket % 8;
        for b in d.iter_mut().take(byte) {
            *b = 0;
        }
        let keep = ((1u16 << bit) - 1) as u8; // bits below the top bit stay random
        d[byte] = (d[byte] & keep) | (1 << bit);
        self.xor(&Distance(d))
    }

    /// `self XOR d`: the identifier at distance `d` from `self`.
    pub fn xor(&self, d: &Distance) -> NodeId {
        let mut out = self.0;
        for (i, byte) in out.iter_mut().enumerate() {
            *byte ^= d.0[i];
        }
        NodeId(out)
    }
}

/// The `k` identifiers of `ids` closest to `target`, closest first: a bounded selection
/// (a max-heap of k) that looks at each identifier once and keeps only k, instead of sorting
/// all of them. This is what a simulator's oracle needs ("which k nodes should hold this
/// key?") over a whole network.
pub fn closest_k<'a, I>(target: &NodeId, ids: I, k: usize) -> Vec<NodeId>
where
    I: IntoIterator<Item = &'a NodeId>,
{
    use std::collections::BinaryHeap;
    if k == 0 {
        return Vec::new();
    }
    // Keys are `distance_key`s: two integers, ordered as `Distance`. Once k are held, an ID
    // whose first 16 distance bytes already exceed the worst held is skipped after one 128-bit
    // XOR and compare — most of them, in a large set — without building its full key.
    let hi = |x: &[u8; ID_LEN]| u128::from_be_bytes(x[..16].try_into().expect("16 bytes"));
    let lo = |x: &[u8; ID_LEN]| u32::from_be_bytes(x[16..].try_into().expect("4 bytes"));
    let (t_hi, t_lo) = (hi(&target.0), lo(&target.0));
    let mut heap: BinaryHeap<((u128, u32), NodeId)> = BinaryHeap::with_capacity(k + 1);
    let mut worst = (u128::MAX, u32::MAX);
    for id in ids {
        let h = hi(&id.0) ^ t_hi;
        if heap.len() == k && h > worst.0 {
            continue;
        }
        let key = (h, lo(&id.0) ^ t_lo);
        if heap.len() < k {
            heap.push((key, *id));
        } else if key < worst {
            heap.pop();
            heap.push((key, *id));
        } else {
            continue;
        }
        if heap.len() == k {
            worst = heap.peek().expect("k > 0 held").0;
        }
    }
    heap.into_sorted_vec()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

/// The IP as it is named on the wire: IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, seen on
/// dual-stack sockets) become plain IPv4, so a seed's identifier does not depend on the kind
/// of socket that received it.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// True when `text` is non-empty-agnostic lowercase hex: every character in `0-9a-f`.
pub fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl std::str::FromStr for NodeId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::from_hex(s)
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NodeId::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// The XOR distance between two identifiers, ordered as an unsigned big-endian integer (P-K1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Distance(pub [u8; ID_LEN]);

impl Distance {
    /// The zero distance (an identifier to itself).
    pub const ZERO: Distance = Distance([0; ID_LEN]);
    /// The largest distance.
    pub const MAX: Distance = Distance([0xff; ID_LEN]);

    /// Number of leading zero bits (160 for the zero distance).
    #[inline]
    pub fn leading_zeros(&self) -> u32 {
        // Two u64 words and one u32 word: three instructions instead of twenty.
        let a = u64::from_be_bytes(self.0[0..8].try_into().expect("8 bytes"));
        if a != 0 {
            return a.leading_zeros();
        }
        let b = u64::from_be_bytes(self.0[8..16].try_into().expect("8 bytes"));
        if b != 0 {
            return 64 + b.leading_zeros();
        }
        let c = u32::from_be_bytes(self.0[16..20].try_into().expect("4 bytes"));
        128 + c.leading_zeros()
    }

    /// The bucket this distance falls in: index of the highest set bit (0..160), or `None` for
    /// the zero distance.
    #[inline]
    pub fn bucket_index(&self) -> Option<usize> {
        let lz = self.leading_zeros() as usize;
        (lz < ID_BITS).then(|| ID_BITS - 1 - lz)
    }

    /// 40 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Distance({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn node_id_of_address_is_sha1_of_text() {
        // sha1("127.0.0.1:4000"), computed independently with `printf '127.0.0.1:4000' | sha1sum`.
        let id = NodeId::from_addr("127.0.0.1:4000".parse().unwrap());
        assert_eq!(id.to_hex(), "caf8d9b85e7fa9a124cb44cb28ad5289faa44668");
        assert_eq!(id, NodeId::sha1(b"127.0.0.1:4000"));
        assert_eq!(id, NodeId::from_address_text("127.0.0.1", 4000));
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let v6: SocketAddr = "[::1]:4000".parse().unwrap();
        assert_eq!(
            NodeId::from_addr(v6).to_hex(),
            "c8b551437c9c3b31acb30b1c34643ed27076a48e"
        );
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:9".parse().unwrap();
        assert_eq!(NodeId::from_addr(mapped), NodeId::sha1(b"10.1.2.3:9"));
    }

    #[test]
    fn hex_is_strict_lowercase() {
        let id = NodeId::sha1(b"x");
        assert_eq!(NodeId::from_hex(&id.to_hex()), Ok(id));
        assert_eq!(
            NodeId::from_hex(&id.to_hex().to_uppercase()),
            Err(IdError::NotLowercaseHex)
        );
        assert_eq!(NodeId::from_hex("abc"), Err(IdError::Length(3)));
        assert_eq!(
            NodeId::from_hex(&"g".repeat(40)),
            Err(IdError::NotLowercaseHex)
        );
    }

    #[test]
    fn bucket_index_edges() {
        let zero = NodeId::ZERO;
        assert_eq!(zero.bucket_index(&zero), None);
        let mut one = [0u8; 20];
        one[19] = 1;
        assert_eq!(zero.bucket_index(&NodeId(one)), Some(0));
        let mut top = [0u8; 20];
        top[0] = 0x80;
        assert_eq!(zero.bucket_index(&NodeId(top)), Some(159));
        let mut mid = [0u8; 20];
        mid[10] = 0x01; // bit 72 from the low end
        assert_eq!(zero.bucket_index(&NodeId(mid)), Some(72));
    }

    fn arb_id() -> impl Strategy<Value = NodeId> {
        any::<[u8; 20]>().prop_map(NodeId)
    }

    proptest! {
        #[test]
        fn distance_key_orders_like_distance(a in any::<[u8; 20]>(), b in any::<[u8; 20]>(), t in any::<[u8; 20]>()) {
            let (a, b, t) = (NodeId(a), NodeId(b), NodeId(t));
            prop_assert_eq!(
                a.distance_key(&t).cmp(&b.distance_key(&t)),
                a.distance(&t).cmp(&b.distance(&t))
            );
        }

        #[test]
        fn distance_is_a_metric(a in arb_id(), b in arb_id(), c in arb_id()) {
            // identity, symmetry, and XOR's triangle law d(a,c) = d(a,b) ^ d(b,c) (so the
            // unsigned triangle inequality holds: x ^ y <= x + y).
            prop_assert_eq!(a.distance(&a), Distance::ZERO);
            prop_assert_eq!(a.distance(&b), b.distance(&a));
            prop_assert_eq!(a == b, a.distance(&b) == Distance::ZERO);
            let ab = a.distance(&b);
            let bc = b.distance(&c);
            let ac = a.distance(&c);
            prop_assert_eq!(a.xor(&ab), b);
            let mut x = [0u8; 20];
            for (i, b) in x.iter_mut().enumerate() { *b = ab.0[i] ^ bc.0[i]; }
            prop_assert_eq!(Distance(x), ac);
            let sum = u256_add(&ab, &bc);
            prop_assert!(pad(&ac) <= sum);
        }

        #[test]
        fn distance_order_is_big_endian_integer_order(a in arb_id(), b in arb_id(), c in arb_id()) {
            let (d1, d2) = (a.distance(&b), a.distance(&c));
            let as_int = |d: &Distance| u128::from_be_bytes(d.0[0..16].try_into().unwrap());
            if as_int(&d1) != as_int(&d2) {
                prop_assert_eq!(d1 < d2, as_int(&d1) < as_int(&d2));
            }
            // Unidirectionality: for a fixed point and distance there is exactly one identifier.
            prop_assert_eq!(a.xor(&d1), b);
        }

        #[test]
        fn bucket_index_is_highest_set_bit(a in arb_id(), b in arb_id()) {
            let d = a.distance(&b);
            match a.bucket_index(&b) {
                None => prop_assert_eq!(a, b),
                Some(i) => {
                    let byte = 19 - i / 8;
                    prop_assert!(d.0[byte] & (1 << (i % 8)) != 0);
                    prop_assert!(d.0[..byte].iter().all(|&x| x == 0));
                    prop_assert!(d.0[byte] >> (i % 8) == 1);
                }
            }
        }

        #[test]
        fn random_in_bucket_lands_in_bucket(a in arb_id(), bucket in 0usize..160, seed in any::<u64>()) {
            use rand::SeedableRng;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let id = a.random_in_bucket(bucket, &mut rng);
            prop_assert_eq!(a.bucket_index(&id), Some(bucket));
        }

        #[test]
        fn closest_k_matches_sorting(target in arb_id(), ids in proptest::collection::vec(arb_id(), 0..300), k in 0usize..40) {
            let mut sorted = ids.clone();
            sorted.sort_by_key(|x| x.distance(&target));
            sorted.truncate(k);
            prop_assert_eq!(closest_k(&target, &ids, k), sorted);
        }

        #[test]
        fn hex_round_trip(a in arb_id()) {
            prop_assert_eq!(NodeId::from_hex(&a.to_hex()).unwrap(), a);
            prop_assert_eq!(a.to_string(), a.to_hex());
        }
    }

    /// 21-byte big-endian view of a distance, for overflow-free sums.
    fn pad(d: &Distance) -> [u8; 21] {
        let mut out = [0u8; 21];
        out[1..].copy_from_slice(&d.0);
        out
    }

    fn u256_add(a: &Distance, b: &Distance) -> [u8; 21] {
        let (a, b) = (pad(a), pad(b));
        let mut out = [0u8; 21];
        let mut carry = 0u16;
        for i in (0..21).rev() {
            let s = a[i] as u16 + b[i] as u16 + carry;
            out[i] = s as u8;
            carry = s >> 8;
        }
        out
    }
}

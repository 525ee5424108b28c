//! Deterministic benchmark inputs: identifiers, contacts, wire messages, routing tables.
//!
//! Everything is drawn from a seeded ChaCha8 generator, so two runs (and the peers' side of a
//! comparison) see exactly the same identifiers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use muttr_node::id::NodeId;
use muttr_node::kad::RoutingTable;
use muttr_node::wire::{Body, Contact, FindValueResult, Message};
use muttr_node::{config::Config, value};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A seeded generator.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// `n` random 160-bit identifiers.
pub fn random_ids(n: usize, seed: u64) -> Vec<NodeId> {
    let mut r = rng(seed);
    (0..n).map(|_| NodeId::random(&mut r)).collect()
}

/// The IPv4 address of node number `i`: 10.x.y.z, room for 2²⁴ nodes.
pub fn ipv4_of(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)
}

/// A contact at node number `i`'s address carrying an arbitrary identifier (a routing table
/// does not re-derive identifiers from addresses; the wire layer does, P-W3).
pub fn contact_with_id(i: u32, id: NodeId) -> Contact {
    Contact {
        address: IpAddr::V4(ipv4_of(i)),
        port: 4000,
        node_id: id,
    }
}

/// The routing table that node `local` holds after hearing from every identifier of a
/// network (`ids`, in that order) once, with the PROFILE's bucket size `k` and replacement
/// cache: each bucket keeps the first k identifiers that fall in it, the rest wait in the
/// replacement cache behind an eviction PING that is never answered. With random
/// identifiers a network of N gives about `k·log₂(N/k) + k` contacts (~130 at 10³, ~330 at
/// 10⁶).
pub fn build_table(local: NodeId, ids: &[NodeId]) -> RoutingTable {
    let config = Config::default();
    let mut table = RoutingTable::new(local, config.k, config.replacement_cache);
    for (i, id) in ids.iter().enumerate() {
        table.update(contact_with_id(i as u32 + 1, *id), i as u64);
    }
    table
}

/// An armored OpenPGP message (see [`value::opaque_message`]) of at least `bytes` bytes of
/// armor, from `seed`: the smallest ciphertext size (in steps of 8 bytes) that gets there.
pub fn armored_message(bytes: usize, seed: u64) -> String {
    let mut len = bytes * 3 / 4 / 2;
    loop {
        let m = value::opaque_message(&mut rng(seed), len);
        if m.len() >= bytes {
            return m;
        }
        len += 8;
    }
}

/// One realistic message of each of the eight wire types, named by type: contacts lists of
/// the PROFILE's reply width (3), a 2 KiB armored message (as hex, ~4 KiB) in STORE and in
/// the value-carrying FIND_VALUE_REPLY, 40-hex RPC ids as the node draws them.
pub fn sample_messages() -> Vec<(&'static str, Message)> {
    let mut r = rng(7);
    let sender = Contact::from_addr(SocketAddr::from(([203, 0, 113, 7], 4000)));
    let rpc = NodeId::random(&mut r).to_hex();
    let contacts: Vec<Contact> = (0..Config::default().reply_width as u32)
        .map(|i| Contact::from_addr(SocketAddr::from((ipv4_of(1000 + i), 4000))))
        .collect();
    let value_hex = value::to_hex(&armored_message(2048, 11));
    let key = value::key_of(&value_hex);
    let m = |body: Body| Message::new(sender, rpc.clone(), body);
    vec![
        ("PING", m(Body::Ping)),
        ("PONG", m(Body::Pong)),
        (
            "STORE",
            m(Body::Store {
                key,
                value: value_hex.clone(),
                timestamp: Some(1_700_000_000_000),
                publisher: Some(sender.node_id),
            }),
        ),
        ("STORE_REPLY", m(Body::StoreReply { success: true })),
        ("FIND_NODE", m(Body::FindNode { key })),
        (
            "FIND_NODE_REPLY",
            m(Body::FindNodeReply {
                contacts: contacts.clone(),
            }),
        ),
        ("FIND_VALUE", m(Body::FindValue { key })),
        (
            "FIND_VALUE_REPLY",
            m(Body::FindValueReply(FindValueResult::Value(value_hex))),
        ),
        (
            "FIND_VALUE_REPLY(contacts)",
            m(Body::FindValueReply(FindValueResult::Contacts(contacts))),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use muttr_node::wire;

    #[test]
    fn ids_are_deterministic() {
        assert_eq!(random_ids(5, 1), random_ids(5, 1));
        assert_ne!(random_ids(5, 1), random_ids(5, 2));
    }

    #[test]
    fn tables_have_realistic_sizes() {
        let ids = random_ids(10_000, 3);
        let local = NodeId::random(&mut rng(99));
        let t = build_table(local, &ids);
        t.check_invariants().unwrap();
        // k·log₂(N/k) + k ≈ 20·9 + 20 = 200 for N = 10⁴; allow the randomness of small buckets.
        assert!((160..=240).contains(&t.len()), "{}", t.len());
    }

    #[test]
    fn armored_message_is_2_kib_and_valid() {
        let m = armored_message(2048, 11);
        assert!((2048..2048 + 100).contains(&m.len()), "{}", m.len());
        assert!(value::validate(&value::to_hex(&m)).is_ok());
    }

    #[test]
    fn sample_messages_round_trip_through_the_wire() {
        let msgs = sample_messages();
        let types: std::collections::BTreeSet<_> =
            msgs.iter().map(|(_, m)| m.message_type()).collect();
        assert_eq!(types.len(), 8, "all eight types");
        for (name, msg) in msgs {
            let bytes = wire::encode(&msg);
            assert_eq!(wire::decode(&bytes).unwrap(), msg, "{name}");
        }
    }
}

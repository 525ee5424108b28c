//! The datagram decoder and the seed's sans-IO core: no input may panic, and the core's
//! routing table must keep its invariants.
//!
//! Each input is tried twice: as sent (from a fixed source), and "repaired" — its claimed
//! `address:port` made the source and its `nodeID` set to SHA-1 of them (P-W3) — so the fuzzer
//! reaches request handling instead of stopping at the identity check it cannot forge.
#![no_main]

use std::net::{IpAddr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use muttr_node::kad::Node;
use muttr_node::store::MemStore;
use muttr_node::wire::{self, Contact};
use muttr_node::{Config, NodeId};

const T0: u64 = 1_700_000_000_000;

fn run(source: SocketAddr, bytes: &[u8]) {
    let _ = wire::decode(bytes);
    let me = Contact::from_addr(SocketAddr::from(([10, 0, 0, 1], 4000)));
    let mut node = Node::new(Config::default(), me, MemStore::default(), 1, T0);
    node.handle_datagram(T0, source, bytes);
    node.handle_datagram(T0 + 1, source, bytes);
    node.handle_timeout(T0 + 10_000);
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    assert!(node.table().check_invariants().is_ok());
}

fn repaired(bytes: &[u8]) -> Option<(SocketAddr, Vec<u8>)> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let params = v.get_mut("params")?.as_object_mut()?;
    let ip: IpAddr = params.get("address")?.as_str()?.parse().ok()?;
    let port = u16::try_from(params.get("port")?.as_u64()?).ok()?;
    let id = NodeId::from_addr(SocketAddr::new(ip, port));
    params.insert("nodeID".into(), serde_json::Value::String(id.to_hex()));
    Some((SocketAddr::new(ip, port), serde_json::to_vec(&v).ok()?))
}

fuzz_target!(|data: &[u8]| {
    run(SocketAddr::from(([10, 9, 9, 9], 5000)), data);
    if let Some((source, fixed)) = repaired(data) {
        run(source, &fixed);
    }
});

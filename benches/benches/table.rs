//! Routing-table benchmarks, side by side with libp2p-kad and mainline.
//!
//! For each network size N (10³…10⁶ random identifiers; capped in test mode, see
//! `muttr_benches::sizes`) every implementation hears from the same N peers once, in the same
//! order, and keeps what its k-buckets (k = 20) accept: ~130–330 entries. Then:
//! - `closest/k=3|20/<impl>/N`: the k contacts closest to a random target, as a fresh `Vec`
//!   (ours also with a reused buffer, `ours_into`; `proposed` is the prototype of
//!   `muttr_benches::proto` on the same contents);
//! - `update_churn/<impl>/N`: one routing-table update, alternately from a contact already in
//!   the table (refresh) and from a newcomer of the network (full bucket: cached / pending).
//!
//! libp2p-kad keys are SHA-256 of the peer id (256-bit space); mainline and ours use the same
//! 160-bit identifiers. mainline's `RoutingTable::closest` always returns its 20 closest, so its
//! k = 3 figure is the first 3 of those.

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddrV4;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use libp2p_core::Multiaddr;
use libp2p_core::multiaddr::Protocol;
use libp2p_identity::PeerId;
use libp2p_kad::store::MemoryStore;
use libp2p_kad::{Behaviour, KBucketKey};
use muttr_benches::inputs::{build_table, contact_with_id, ipv4_of, random_ids, rng};
use muttr_benches::proto::FlatTable;
use muttr_benches::{pretty_size, sizes};
use muttr_node::id::NodeId;
use muttr_node::kad::RoutingTable;
use muttr_node::wire::Contact;
use rand::Rng;

const NETWORKS: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
const TARGETS: usize = 1024;

/// A libp2p peer id drawn from `r` (identity multihash of 32 random bytes, like
/// `PeerId::random` but seeded).
fn peer_id(r: &mut impl Rng) -> PeerId {
    let mut bytes = vec![0x00, 32];
    bytes.extend((0..32).map(|_| r.random::<u8>()));
    PeerId::from_bytes(&bytes).expect("identity multihash")
}

fn multiaddr(i: u32) -> Multiaddr {
    Multiaddr::empty()
        .with(Protocol::Ip4(ipv4_of(i)))
        .with(Protocol::Tcp(4000))
}

struct Tables {
    ours: RoutingTable,
    libp2p: Behaviour<MemoryStore>,
    mainline: mainline::RoutingTable,
    /// The network, in each implementation's terms.
    ids: Vec<NodeId>,
    peers: Vec<PeerId>,
}

fn mainline_id(id: &NodeId) -> mainline::Id {
    mainline::Id::from_bytes(id.as_bytes()).expect("20 bytes")
}

fn mainline_node(i: usize, id: &NodeId) -> mainline::Node {
    mainline::Node::new(
        mainline_id(id),
        SocketAddrV4::new(ipv4_of(i as u32 + 1), 4000),
    )
}

fn build(n: usize) -> Tables {
    let ids = random_ids(n, 1);
    let local = NodeId::random(&mut rng(2));
    let ours = build_table(local, &ids);

    let mut r = rng(3);
    let local_peer = peer_id(&mut r);
    let peers: Vec<PeerId> = (0..n).map(|_| peer_id(&mut r)).collect();
    let mut libp2p = Behaviour::new(local_peer, MemoryStore::new(local_peer));
    for (i, p) in peers.iter().enumerate() {
        libp2p.add_address(p, multiaddr(i as u32 + 1));
    }

    let mut mainline = mainline::RoutingTable::new(mainline_id(&local));
    for (i, id) in ids.iter().enumerate() {
        mainline.add(mainline_node(i, id));
    }
    Tables {
        ours,
        libp2p,
        mainline,
        ids,
        peers,
    }
}

fn libp2p_len(kad: &mut Behaviour<MemoryStore>) -> usize {
    kad.kbuckets().map(|b| b.num_entries()).sum()
}

fn closest(c: &mut Criterion) {
    let mut sizes_seen = Vec::new();
    for n in sizes(&NETWORKS) {
        let mut t = build(n);
        let libp2p_entries = libp2p_len(&mut t.libp2p);
        eprintln!(
            "network {n}: table entries ours {}, libp2p-kad {libp2p_entries}, mainline {}",
            t.ours.len(),
            t.mainline.size()
        );
        sizes_seen.push(serde_json::json!({
            "network": n,
            "ours": t.ours.len(),
            "libp2p_kad": libp2p_entries,
            "mainline": t.mainline.size(),
        }));
        let mut r = rng(4);
        let targets: Vec<NodeId> = (0..TARGETS).map(|_| NodeId::random(&mut r)).collect();
        let ml_targets: Vec<mainline::Id> = targets.iter().map(mainline_id).collect();
        let p2p_targets: Vec<KBucketKey<PeerId>> = (0..TARGETS)
            .map(|_| KBucketKey::from(peer_id(&mut r)))
            .collect();
        let flat = FlatTable::from_table(&t.ours);
        let size = pretty_size(n);
        for k in [3usize, 20] {
            let mut g = c.benchmark_group(format!("table/closest/k={k}"));
            let mut i = 0usize;
            g.bench_function(BenchmarkId::new("ours", &size), |b| {
                b.iter(|| {
                    i = (i + 1) % TARGETS;
                    black_box(t.ours.closest(black_box(&targets[i]), k))
                })
            });
            let mut buf: Vec<Contact> = Vec::with_capacity(k + 20);
            g.bench_function(BenchmarkId::new("ours_into", &size), |b| {
                b.iter(|| {
                    i = (i + 1) % TARGETS;
                    buf.clear();
                    t.ours.closest_into(black_box(&targets[i]), k, &mut buf);
                    black_box(&buf);
                })
            });
            g.bench_function(BenchmarkId::new("proposed", &size), |b| {
                b.iter(|| {
                    i = (i + 1) % TARGETS;
                    black_box(flat.closest(black_box(&targets[i]), k))
                })
            });
            g.bench_function(BenchmarkId::new("libp2p_kad", &size), |b| {
                b.iter(|| {
                    i = (i + 1) % TARGETS;
                    let v: Vec<_> = t
                        .libp2p
                        .get_closest_local_peers(black_box(&p2p_targets[i]))
                        .take(k)
                        .collect();
                    black_box(v)
                })
            });
            g.bench_function(BenchmarkId::new("mainline", &size), |b| {
                b.iter(|| {
                    i = (i + 1) % TARGETS;
                    let all = t.mainline.closest(black_box(ml_targets[i]));
                    black_box(all.iter().take(k).cloned().collect::<Vec<_>>())
                })
            });
            g.finish();
        }
        churn(c, &mut t, &size);
    }
    // The table sizes go to the report (not from test mode's reduced sizes).
    if muttr_benches::test_mode() {
        return;
    }
    let path = muttr_benches::criterion_dir().join("table-sizes.json");
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(&path, serde_json::Value::Array(sizes_seen).to_string()) {
        eprintln!("could not write {}: {e}", path.display());
    }
}

fn churn(c: &mut Criterion, t: &mut Tables, size: &str) {
    let mut g = c.benchmark_group("table/update_churn");
    // Ours: members (refresh) and non-members (newcomers), alternately.
    let members: Vec<Contact> = t.ours.iter().map(|e| e.contact).collect();
    let newcomers: Vec<Contact> = t
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| contact_with_id(i as u32 + 1, *id))
        .filter(|c| !t.ours.contains(&c.node_id))
        .take(4096)
        .collect();
    let mut i = 0usize;
    let mut now = 10_000_000u64;
    g.bench_function(BenchmarkId::new("ours", size), |b| {
        b.iter(|| {
            i += 1;
            now += 1;
            let c = if i.is_multiple_of(2) {
                members[i / 2 % members.len()]
            } else {
                newcomers[i / 2 % newcomers.len()]
            };
            black_box(t.ours.update(black_box(c), now))
        })
    });
    // libp2p-kad: the same mix through `add_address`.
    let mut in_table = std::collections::HashSet::new();
    for bucket in t.libp2p.kbuckets() {
        for e in bucket.iter() {
            in_table.insert(*e.node.key.preimage());
        }
    }
    let p2p: Vec<(PeerId, Multiaddr)> = t
        .peers
        .iter()
        .enumerate()
        .map(|(i, p)| (*p, multiaddr(i as u32 + 1)))
        .collect();
    let p2p_members: Vec<_> = p2p.iter().filter(|(p, _)| in_table.contains(p)).collect();
    let p2p_new: Vec<_> = p2p
        .iter()
        .filter(|(p, _)| !in_table.contains(p))
        .take(4096)
        .collect();
    g.bench_function(BenchmarkId::new("libp2p_kad", size), |b| {
        b.iter(|| {
            i += 1;
            let (p, a) = if i.is_multiple_of(2) {
                p2p_members[i / 2 % p2p_members.len()]
            } else {
                p2p_new[i / 2 % p2p_new.len()]
            };
            black_box(t.libp2p.add_address(black_box(p), a.clone()))
        })
    });
    // mainline: the same identifiers as ours.
    let ml_members: Vec<mainline::Node> = t.mainline.to_owned_nodes();
    let ml_new: Vec<mainline::Node> = t
        .ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !ml_members.iter().any(|m| m.id() == &mainline_id(id)))
        .take(4096)
        .map(|(i, id)| mainline_node(i, id))
        .collect();
    g.bench_function(BenchmarkId::new("mainline", size), |b| {
        b.iter(|| {
            i += 1;
            let node = if i.is_multiple_of(2) {
                ml_members[i / 2 % ml_members.len()].clone()
            } else {
                ml_new[i / 2 % ml_new.len()].clone()
            };
            black_box(t.mainline.add(black_box(node)))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
}

criterion_group! {
    name = benches;
    config = config();
    targets = closest
}
criterion_main!(benches);

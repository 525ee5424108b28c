//! OpenPGP throughput for 1 KiB messages (issue: "sign+encrypt and decrypt+verify per second").
//!
//! Decryption is measured on a fresh message each iteration (made in untimed setup), because
//! sequoia caches signature verifications per process: re-verifying one message would measure
//! the cache.

// criterion_group! expands to an undocumented public function.
#![allow(missing_docs)]

use std::time::SystemTime;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use muttr_node::crypto::{self, Identity, KeyKind, auth};

fn bench(c: &mut Criterion) {
    let now = SystemTime::now();
    let alice = Identity::generate("alice", KeyKind::Cv25519, now).unwrap();
    let bob = Identity::generate("bob", KeyKind::Cv25519, now).unwrap();
    let (alice_pub, bob_pub) = (alice.public(), bob.public());
    let plaintext = vec![b'm'; 1024];

    let mut g = c.benchmark_group("pgp-1KiB");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign+encrypt", |b| {
        b.iter(|| crypto::sign_and_encrypt(&plaintext, &alice, &[&bob_pub], now).unwrap())
    });
    g.bench_function("decrypt+verify", |b| {
        b.iter_batched(
            || crypto::sign_and_encrypt(&plaintext, &alice, &[&bob_pub], now).unwrap(),
            |m| {
                let d =
                    crypto::decrypt_and_verify(m.as_bytes(), &bob, Some(&alice_pub), now).unwrap();
                assert!(d.verdict.is_good());
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("auth-sign", |b| {
        b.iter(|| {
            auth::sign_auth(&alice, "id", auth::PUBKEYHASH, 1, &[("alias", "a")], now).unwrap()
        })
    });
    g.bench_function("auth-verify", |b| {
        b.iter_batched(
            || auth::sign_auth(&alice, "id", auth::PUBKEYHASH, 1, &[("alias", "a")], now).unwrap(),
            |t| auth::verify_auth(&t, &alice_pub, now).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! A local Muttr network on loopback: N seeds join, one publishes an encrypted message, another
//! finds it through the DHT, and a seed holding it restarts from disk and serves it again.
//!
//! The message is real: signed by Alice and encrypted to Bob (the test identities of
//! `vectors/pgp/keys`, P-G2), published as the hex of its armor (P-V1) under the SHA-1 of that
//! hex (P-V2). After the lookup, Bob decrypts what the DHT returned and checks Alice's
//! signature (P-G3).
//!
//! ```text
//! cargo run -p muttr-node --example devnet -- --seeds 10
//! ```

use std::net::SocketAddr;

use clap::Parser;
use muttr_node::crypto::{Identity, PublicKey, decrypt_and_verify, sign_and_encrypt};
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{Quotas, SqliteStore, ValueStore};
use muttr_node::{Config, value};

/// The test identities of `vectors/pgp/keys` (test keys only, never for real use).
const ALICE_SECRET: &str = include_str!("../../vectors/pgp/keys/alice.sec.asc");
const BOB_SECRET: &str = include_str!("../../vectors/pgp/keys/bob.sec.asc");

/// Run a local network of seeds and store and find a message.
#[derive(Debug, Parser)]
struct Args {
    /// How many seeds.
    #[arg(long, default_value_t = 10)]
    seeds: usize,
    /// First UDP port (seeds use consecutive ports on 127.0.0.1).
    #[arg(long, default_value_t = 4700)]
    base_port: u16,
    /// Replication factor k (small, so that most seeds do not hold the message and the
    /// lookup must cross the network).
    #[arg(long, default_value_t = 3)]
    k: usize,
}

async fn start(
    addr: SocketAddr,
    dir: &std::path::Path,
    config: &Config,
    n: u64,
) -> Seed<SqliteStore> {
    let store = SqliteStore::open(dir, Quotas::from_config(config)).expect("open store");
    let options = SeedOptions {
        bind: addr,
        advertise: None,
        config: config.clone(),
        rng_seed: n,
    };
    spawn_seed(TokioTransport, options, store, Clock::system())
        .await
        .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let config = Config {
        k: args.k,
        alpha: args.k.min(3),
        ..Config::default()
    };
    let tmp = tempfile::tempdir().expect("temporary directory");
    println!(
        "1. starting {} seeds on 127.0.0.1:{}..",
        args.seeds, args.base_port
    );
    let mut seeds = Vec::new();
    for i in 0..args.seeds {
        let addr: SocketAddr = ([127, 0, 0, 1], args.base_port + i as u16).into();
        let seed = start(
            addr,
            &tmp.path().join(format!("seed{i}")),
            &config,
            i as u64,
        )
        .await;
        println!(
            "   seed {i:>2} {} node {}",
            seed.local_addr(),
            seed.node_id()
        );
        seeds.push(seed);
    }
    println!("2. each seed joins through seed 0 and its predecessor");
    for i in 1..seeds.len() {
        let boot = vec![seeds[0].local_addr(), seeds[i - 1].local_addr()];
        let known = seeds[i].bootstrap(boot).await.expect("bootstrap");
        println!("   seed {i:>2} knows {known} contacts");
    }
    let clock = Clock::system();
    let alice = Identity::from_armored(ALICE_SECRET.as_bytes(), None).expect("alice's key");
    let bob = Identity::from_armored(BOB_SECRET.as_bytes(), None).expect("bob's key");
    let text = format!(
        "Hello Bob, this is Alice over {} seeds of a local Muttr network.",
        args.seeds
    );
    let armored = sign_and_encrypt(
        text.as_bytes(),
        &alice,
        &[&bob.public()],
        clock.now_system(),
    )
    .expect("sign and encrypt");
    let hex_value = value::to_hex(&armored);
    let publisher = seeds.len() / 3;
    println!(
        "3. seed {publisher} publishes a message signed by Alice and encrypted to Bob \
         ({} bytes armored, {} as hex)",
        armored.len(),
        hex_value.len()
    );
    let report = seeds[publisher]
        .publish(hex_value.clone())
        .await
        .expect("publish");
    println!(
        "   key {} stored at {} of {} closest seeds ({} hops)",
        report.key, report.stored_at, report.store_requests, report.hops
    );
    let mut holders = Vec::new();
    for (i, s) in seeds.iter().enumerate() {
        if s.stats().await.expect("stats").values_held > 0 {
            holders.push(i);
        }
    }
    println!("   held by seeds {holders:?}");
    let finder = (0..seeds.len())
        .rev()
        .find(|i| !holders.contains(i))
        .unwrap_or(0);
    let found = seeds[finder]
        .find_value_report(report.key)
        .await
        .expect("find");
    assert_eq!(
        found.value.as_deref(),
        Some(hex_value.as_str()),
        "value found"
    );
    println!(
        "4. seed {finder} finds it through the DHT: {} hops, {} requests; sha1 of the hex matches the key",
        found.hops, found.messages
    );
    let fetched = value::from_hex(found.value.as_deref().unwrap_or_default()).expect("armor");
    let alice_public: PublicKey = alice.public();
    let opened = decrypt_and_verify(
        fetched.as_bytes(),
        &bob,
        Some(&alice_public),
        clock.now_system(),
    )
    .expect("bob decrypts");
    assert!(opened.verdict.is_good(), "{:?}", opened.verdict);
    assert_eq!(opened.plaintext, text.as_bytes());
    println!(
        "   Bob decrypts it, Alice's signature is good: {:?}",
        String::from_utf8_lossy(&opened.plaintext)
    );
    if let Some(&h) = holders.iter().find(|&&h| h != publisher) {
        let addr = seeds[h].local_addr();
        let store = seeds.remove(h).shutdown().await.expect("shutdown");
        println!(
            "5. seed {h} stops (store flushed, {} value(s) on disk) and restarts",
            store.len()
        );
        drop(store);
        let again = start(addr, &tmp.path().join(format!("seed{h}")), &config, 99).await;
        let v = again.find_value(report.key).await.expect("find");
        assert_eq!(v.as_deref(), Some(hex_value.as_str()));
        println!("   restarted seed {h} serves the message again from its store");
        again.shutdown().await.expect("shutdown");
    }
    for s in seeds {
        s.shutdown().await.expect("shutdown");
    }
    println!("done: every step succeeded");
}

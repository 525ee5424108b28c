//! A whole Muttr network on loopback — seeds, two pods, two users — and the 12-step flow of
//! the whitepaper, step by step: alice@pod1 writes to bob@pod2.
//!
//! Alice runs a seed of her own (active mode): she joins the DHT through pod1's seed and
//! stores the message herself. Bob is passive: his pod stores and fetches for him. Every
//! exchange is real — UDP datagrams between seeds, HTTP and WebSocket between users and pods,
//! `href` authentication between the pods.
//!
//! ```text
//! cargo run -p muttr-pod --example localnet              # walk through the flow and exit
//! cargo run -p muttr-pod --example localnet -- --hold    # then keep the network up
//! ```
//!
//! With `--hold`, the pods stay up for the `muttr` command line (`muttr register --pod URL
//! --insecure`, …) until Ctrl-C.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use clap::Parser;
use muttr_node::client::{Client, ClientConfig, UserId};
use muttr_node::crypto::{Identity, KeyKind};
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas, SqliteStore};
use muttr_node::{Config, SeedHandle};
use muttr_pod::{AppState, PodConfig, Storage};

/// Run a local Muttr network and walk alice@pod1 → bob@pod2 through the whole flow.
#[derive(Debug, Parser)]
struct Args {
    /// Seeds besides the pods' own.
    #[arg(long, default_value_t = 8)]
    seeds: usize,
    /// First UDP port of the seeds (consecutive on 127.0.0.1; the pods' seeds follow).
    #[arg(long, default_value_t = 4800)]
    base_port: u16,
    /// HTTP port of pod1 (pod2 is the next one); 0 picks free ports.
    #[arg(long, default_value_t = 0)]
    http_port: u16,
    /// Keep the network up after the walkthrough, until Ctrl-C.
    #[arg(long)]
    hold: bool,
}

struct Pod {
    url: String,
    seed: Seed<SqliteStore>,
}

async fn seed_at(port: u16, rng: u64) -> Seed<MemStore> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    spawn_seed(
        TokioTransport,
        SeedOptions::new(addr, rng),
        MemStore::new(Quotas::from_config(&Config::default())),
        Clock::system(),
    )
    .await
    .unwrap_or_else(|e| panic!("cannot listen on {addr}: {e}"))
}

async fn start_pod(dir: &std::path::Path, http_port: u16, seed_port: u16, boot: SocketAddr) -> Pod {
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", http_port))
        .await
        .expect("pod HTTP port");
    let addr = tcp.local_addr().expect("address");
    let config = PodConfig {
        public_host: addr.to_string(),
        insecure_federation: true,
        exempt_loopback: true,
        ..PodConfig::default()
    };
    let values = SqliteStore::open(&dir.join("seed"), Quotas::from_config(&Config::default()))
        .expect("seed store");
    let seed = spawn_seed(
        TokioTransport,
        SeedOptions::new(([127, 0, 0, 1], seed_port).into(), seed_port as u64),
        values,
        Clock::system(),
    )
    .await
    .expect("pod seed");
    seed.bootstrap(vec![boot]).await.expect("bootstrap");
    let state = AppState::new(
        config,
        Storage::open(dir).expect("pod storage"),
        Some(seed.handle()),
        Clock::system(),
        None,
    );
    tokio::spawn(async move {
        muttr_pod::serve(tcp, state, std::future::pending())
            .await
            .expect("serve")
    });
    Pod {
        url: format!("http://{addr}"),
        seed,
    }
}

fn client(me: Identity, pod: &Pod, seed: Option<SeedHandle>) -> Client {
    let mut c = ClientConfig::new(pod.url.clone());
    c.insecure = true;
    let client = Client::new(me, c, Clock::system()).expect("client");
    match seed {
        Some(s) => client.with_seed(s),
        None => client,
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut seeds: Vec<Seed<MemStore>> = Vec::new();
    for i in 0..args.seeds {
        let s = seed_at(args.base_port + i as u16, i as u64).await;
        if i > 0 {
            s.bootstrap(vec![seeds[0].local_addr()]).await.ok();
        }
        seeds.push(s);
    }
    let boot = seeds[0].local_addr();
    let next_port = args.base_port + args.seeds as u16;
    let http2 = if args.http_port == 0 {
        0
    } else {
        args.http_port + 1
    };
    let pod1 = start_pod(&tmp.path().join("pod1"), args.http_port, next_port, boot).await;
    let pod2 = start_pod(&tmp.path().join("pod2"), http2, next_port + 1, boot).await;
    println!(
        "network: {} seeds on 127.0.0.1:{}..{}, pod1 {} (seed {}), pod2 {} (seed {})",
        args.seeds,
        args.base_port,
        next_port - 1,
        pod1.url,
        pod1.seed.local_addr(),
        pod2.url,
        pod2.seed.local_addr()
    );

    let now = SystemTime::now();
    let alice_key = Identity::generate("alice", KeyKind::Cv25519, now).expect("key");
    let bob_key = Identity::generate("bob", KeyKind::Cv25519, now).expect("key");

    // 1–2. Alice's seed asks pod1's seed for the nearest seeds and builds its routing table.
    let alice_seed = seed_at(next_port + 2, 1000).await;
    let contacts = alice_seed
        .bootstrap(vec![pod1.seed.local_addr()])
        .await
        .expect("bootstrap");
    println!(
        " 1. alice's seed {} asks pod1's seed for the nearest seeds (FIND_NODE)",
        alice_seed.local_addr()
    );
    println!(" 2. pod1's seed answers; alice's routing table holds {contacts} contacts");
    let mut alice = client(alice_key, &pod1, Some(alice_seed.handle()));
    let mut bob = client(bob_key, &pod2, None);

    // 3–4. Each registers and takes an alias.
    let hash = alice.register().await.expect("register");
    println!(" 3. alice registers her key with pod1: pubkeyhash {hash}");
    let alice_id = alice.add_alias("alice").await.expect("alias");
    println!(" 4. alice registers the alias alice: she is {alice_id}");
    bob.register().await.expect("register");
    let bob_id = bob.add_alias("bob").await.expect("alias");
    println!("    (bob, passive, does the same at pod2: he is {bob_id})");

    // 5. Bob's pod pushes message keys addressed to him.
    let mut sub = bob.listen().await.expect("listen");
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(" 5. bob opens pod2's WebSocket and authenticates (hex of a signed auth text)");

    // 6–9. Alice sends.
    let to = UserId::parse(&bob_id.to_string()).expect("user id");
    let bob_public = alice.key_of(&to).await.expect("bob's key");
    println!(
        " 6. alice asks pod2 for bob's key: GET /aliases/bob → {}",
        bob_public.fingerprint()
    );
    let text = "Hello Bob! Alice here, across two pods and a DHT.";
    let value_hex = alice.seal(&bob_public, text.as_bytes()).expect("seal");
    println!(
        " 7. alice signs and encrypts {} bytes → {} bytes of hex-armored OpenPGP",
        text.len(),
        value_hex.len()
    );
    let (key, stored_at) = alice.store(value_hex).await.expect("store");
    println!(
        " 8. alice's seed stores it at the closest seeds: key {key}, {stored_at} STOREs acknowledged"
    );
    let note = alice.notify(&to, &key).await.expect("notify");
    println!(
        " 9. alice tells pod2 (POST /inboxes/bob, signed as {}, href): entry at {}",
        note.sender.user_id, note.timestamp
    );

    // 10–12. Bob receives.
    let pushed = tokio::time::timeout(Duration::from_secs(5), sub.next_notification())
        .await
        .expect("push in time")
        .expect("push");
    println!(
        "10. pod2 pushes to bob: key {} from {}",
        pushed.key, pushed.sender.user_id
    );
    let fetched = bob.fetch(&pushed.key).await.expect("fetch");
    println!(
        "11. bob (passive) fetches it from the DHT through pod2: GET /messages/{} → {} bytes",
        pushed.key,
        fetched.len()
    );
    let delivery = bob.open(pushed).await.expect("open");
    assert!(delivery.verdict.is_good(), "{:?}", delivery.verdict);
    println!(
        "12. bob decrypts and verifies it against {}'s key: {} — {:?}",
        delivery.notification.sender.user_id,
        delivery.verdict,
        String::from_utf8_lossy(&delivery.plaintext)
    );
    println!("done: the whole flow succeeded");

    if args.hold {
        println!(
            "holding the network up; try: muttr register --pod {} --insecure (Ctrl-C to stop)",
            pod1.url
        );
        let _ = tokio::signal::ctrl_c().await;
    }
}

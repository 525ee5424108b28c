//! The live pod suite against two replicas of this repository's pod on one PostgreSQL
//! database, behind a proxy that sends each connection to the other replica in turn — the
//! suite opens a connection per request, so consecutive requests alternate: a nonce signed
//! for one replica is a replay at the other, a token issued by one is used at the other, and a
//! notify through one is pushed by the other to a WebSocket opened at it.
//!
//! Needs the PostgreSQL test cluster (`MUTTR_TEST_POSTGRES`; `scripts/test.sh` starts one).

#[path = "../../pod/tests/common/pg.rs"]
mod pg;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use muttr_conformance::catalogue::{self, Live};
use muttr_conformance::pod::{self, Options};
use muttr_conformance::report::Verdict;
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_pod::{AppState, PodConfig, Storage};

/// One replica: its own seed and listener, the shared database, the proxy's address as its
/// public host.
async fn replica(db: &str, public_host: &str) -> (SocketAddr, Seed<MemStore>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = PodConfig {
        public_host: public_host.to_string(),
        insecure_federation: true,
        exempt_loopback: true,
        ..PodConfig::default()
    };
    let seed = spawn_seed(
        TokioTransport,
        SeedOptions::new("127.0.0.1:0".parse().unwrap(), 5),
        MemStore::new(Quotas::from_config(&muttr_node::Config::default())),
        Clock::system(),
    )
    .await
    .unwrap();
    let state = AppState::new(
        config,
        Storage::connect(db).await.unwrap(),
        Some(seed.handle()),
        Clock::system(),
        None,
    );
    tokio::spawn(async move {
        muttr_pod::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    (addr, seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_pass_every_case_with_requests_alternating() {
    let Some(db) = pg::fresh_database().await else {
        return;
    };
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = proxy.local_addr().unwrap();
    let (a, _seed_a) = replica(&db, &front.to_string()).await;
    let (b, _seed_b) = replica(&db, &front.to_string()).await;
    let served = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let counts = served.clone();
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut inbound, _)) = proxy.accept().await {
            let i = next % 2;
            next += 1;
            counts[i].fetch_add(1, Ordering::Relaxed);
            let to = [a, b][i];
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });

    let mut o = Options::new(format!("http://{front}"));
    o.federation_host = Some("127.0.0.1:0".parse().unwrap());
    o.rng_seed = 7;
    let cases = pod::run(&o).await.unwrap();
    catalogue::check_run(Live::Pod, &cases).unwrap();
    let bad: Vec<_> = cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotApplicable))
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let na: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c.verdict == Verdict::NotApplicable)
        .map(|c| c.id.as_str())
        .collect();
    let optional: BTreeSet<&str> = [
        "pod.register.rsa",
        "pod.token.expires-after-30s",
        "pod.token.expires-after-30s.json-error",
        "pod.ws.silent-10s-4401",
        "pod.openapi.get-openapi-json",
    ]
    .into();
    assert!(na.is_subset(&optional), "{na:?}");
    let (to_a, to_b) = (
        served[0].load(Ordering::Relaxed),
        served[1].load(Ordering::Relaxed),
    );
    assert!(to_a > 100 && to_b > 100, "{to_a} / {to_b} connections");
    eprintln!(
        "{} cases, {} passed; {to_a} connections to one replica, {to_b} to the other",
        cases.len(),
        cases.iter().filter(|c| c.verdict == Verdict::Pass).count()
    );
}

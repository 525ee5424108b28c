//! Federation over HTTPS, the whitepaper's normal case, with certificates of private CAs made
//! in-process (rcgen): two pods that trust each other's CA (`ca_files`, `--ca-file`) carry
//! alice@pod1 → bob@pod2 through all 12 steps with the client library over `https://` and
//! `wss://`; a pod that does not trust the other's CA, and a client that does not trust its
//! pod's, fail with an error naming the host and the certificate; a renewed certificate is
//! served after a reload, without a restart.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use muttr_node::client::{Client, ClientConfig, ClientError, TcpDialer};
use muttr_node::net::Clock;
use muttr_pod::PodConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

fn trusting(cas: &[PathBuf]) -> PodConfig {
    PodConfig {
        ca_files: cas.to_vec(),
        ..PodConfig::default()
    }
}

fn client(u: &User, pod: &LivePod, cas: &[PathBuf]) -> Client {
    let tls = muttr_node::trust::client_config(cas).unwrap();
    Client::with_dialer(
        u.identity.clone(),
        ClientConfig::new(pod.url("")),
        Clock::system(),
        TcpDialer::trusting(tls),
    )
    .unwrap()
}

/// Two HTTPS pods of two private CAs in one DHT (pod1 trusting both CAs, pod2 `pod2_config`),
/// with alice at pod1 and bob at pod2 registered and aliased through clients trusting both.
struct Federation {
    pod1: LivePod,
    pod2: LivePod,
    cas: [PathBuf; 2],
    alice_u: User,
    alice: Client,
    bob: Client,
    /// The CA files: kept for as long as the test runs.
    _pki: (Pki, Pki),
}

async fn federation(rng: u64, pod2_trusts_pod1: bool) -> Federation {
    let (pki1, pki2) = (Pki::new("pod1 CA"), Pki::new("pod2 CA"));
    let cas = [pki1.ca(), pki2.ca()];
    let pod1 = live_pod_tls(trusting(&cas), rng, Some(&pki1)).await;
    let pod2_config = if pod2_trusts_pod1 {
        trusting(&cas)
    } else {
        // The public and system roots only: not pod1's private CA.
        PodConfig::default()
    };
    let pod2 = live_pod_tls(pod2_config, rng + 1, Some(&pki2)).await;
    assert!(pod1.url("").starts_with("https://localhost:"));
    // Steps 1–2: one DHT.
    pod2.seed
        .handle()
        .bootstrap(vec![pod1.seed.local_addr()])
        .await
        .unwrap();
    let (alice_u, bob_u) = (user("alice"), user("bob"));
    let mut alice = client(&alice_u, &pod1, &cas);
    let mut bob = client(&bob_u, &pod2, &cas);
    // Steps 3–4: register and take aliases, over https://.
    alice.register().await.unwrap();
    bob.register().await.unwrap();
    alice.add_alias("alice").await.unwrap();
    let bob_id = bob.add_alias("bob").await.unwrap();
    assert_eq!(bob_id.to_string(), format!("bob@{}", pod2.host()));
    Federation {
        pod1,
        pod2,
        cas,
        alice_u,
        alice,
        bob,
        _pki: (pki1, pki2),
    }
}

#[tokio::test]
async fn two_pods_with_private_cas_federate_over_https() {
    let Federation {
        pod1,
        pod2,
        alice,
        bob,
        _pki: _keep,
        ..
    } = federation(61, true).await;
    let alice_id = format!("alice@{}", pod1.host());
    let bob_id = format!("bob@{}", pod2.host());
    // Step 5: bob listens over wss://.
    let mut sub = bob.listen().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Steps 6–9: bob's key from pod2, sign+encrypt, store through pod1, notify pod2 — which
    // fetches alice's key from https://localhost:PORT1/aliases/alice, trusting pod1's CA.
    let report = alice.send(&bob_id, b"hello bob, over https").await.unwrap();
    assert_eq!(report.notification.sender.user_id, alice_id);
    // Steps 10–12: pushed, fetched from the DHT, decrypted and verified as alice's.
    let delivery = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("no push within 10 s")
        .unwrap()
        .unwrap();
    assert!(delivery.verdict.is_good(), "{:?}", delivery.verdict);
    assert_eq!(delivery.plaintext, b"hello bob, over https");
    assert_eq!(delivery.notification.key, report.key);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_with_an_error_naming_the_host() {
    let Federation {
        pod1,
        pod2,
        cas,
        alice_u,
        _pki: _keep,
        ..
    } = federation(63, false).await;
    // Alice notifies bob@pod2 as alice@pod1 (href, step 9), as any client would: pod2 cannot
    // check her key at pod1 — 503 (a CA file or a renewal may fix it), and the message says
    // whose certificate and why.
    let alice_id = format!("alice@{}", pod1.host());
    let note = signed_as(
        &alice_u,
        "href",
        &alice_id,
        nonce(),
        &[("from", &alice_id), ("key", &"7".repeat(40))],
    );
    let dialer = TcpDialer::trusting(muttr_node::trust::client_config(&cas).unwrap());
    let res = muttr_node::client::http::request(
        &dialer,
        "POST",
        &pod2.url("/inboxes/bob"),
        Some(&note),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(res.status, 503, "{}", res.body);
    let message = res.error_message();
    assert!(
        message.contains("the certificate of localhost is not trusted"),
        "{message}"
    );
    assert!(message.contains(&pod1.url("/aliases/alice")), "{message}");
    assert!(message.contains("--ca-file"), "{message}");
    // A client that does not trust pod1's CA cannot even register: its error names the URL and
    // what TLS said.
    let stranger = client(&user("carol"), &pod1, &[]);
    let e = stranger.register().await.unwrap_err();
    match &e {
        ClientError::Unreachable(m) => {
            assert!(m.contains(&pod1.url("")), "{m}");
            assert!(m.contains("certificate"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_a_reload() {
    let pki = Pki::new("renewing CA");
    let certs = muttr_pod::tls::Certificates::load(&pki.cert(), &pki.key()).unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = muttr_pod::tls::TlsListener::new(tcp, certs.server_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = muttr_pod::AppState::new(
        PodConfig::default(),
        muttr_pod::Storage::open(dir.path()).unwrap(),
        None,
        Clock::system(),
        Some(65),
    );
    tokio::spawn(muttr_pod::serve(listener, state, std::future::pending()));
    let old = CertificateDer::from_pem_file(pki.cert()).unwrap();
    assert_eq!(served_certificate(addr, &pki.ca()).await, old);

    // A renewal: new files from another CA (trusted by the client below).
    let renewed = Pki::new("renewing CA, next year");
    // A half-written file first: the reload fails and the old certificate stays.
    std::fs::write(pki.cert(), "-----BEGIN CERTIFICATE-----\ntruncated").unwrap();
    assert!(certs.reload().is_err());
    assert_eq!(served_certificate(addr, &pki.ca()).await, old);
    std::fs::copy(renewed.cert(), pki.cert()).unwrap();
    std::fs::copy(renewed.key(), pki.key()).unwrap();
    certs.reload().unwrap();
    let new = CertificateDer::from_pem_file(renewed.cert()).unwrap();
    assert_ne!(new, old);
    assert_eq!(served_certificate(addr, &renewed.ca()).await, new);
    assert_eq!(certs.current(), new);
}

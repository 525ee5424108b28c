//! The client library (`muttr_node::client`) against real pods: `send("bob@pod2", text)` runs
//! steps 6–9, Bob's subscription and playback run 10–12, in passive mode (through the pod) and
//! active mode (the client's own seed in the DHT); a message whose signature is not the
//! claimed sender's is delivered marked, never as from them (P-G3).

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use muttr_node::client::{Client, ClientConfig};
use muttr_node::crypto::{Verdict, sign_and_encrypt};
use muttr_node::net::Clock;
use muttr_node::value;
use muttr_pod::PodConfig;

fn config() -> PodConfig {
    PodConfig {
        insecure_federation: true,
        ..PodConfig::default()
    }
}

fn client(u: &User, pod: &LivePod) -> Client {
    let mut c = ClientConfig::new(pod.url(""));
    c.insecure = true;
    Client::new(u.identity.clone(), c, Clock::system()).unwrap()
}

#[tokio::test]
async fn send_and_receive_across_two_pods_passive_and_active() {
    let pod1 = live_pod(config(), 41).await;
    let pod2 = live_pod(config(), 42).await;
    pod2.seed
        .handle()
        .bootstrap(vec![pod1.seed.local_addr()])
        .await
        .unwrap();
    let (alice_u, bob_u) = (user("alice"), user("bob"));
    // Alice is passive (pod REST only); Bob runs a seed of his own (active).
    let mut alice = client(&alice_u, &pod1);
    let bob_seed = seed(43).await;
    bob_seed
        .handle()
        .bootstrap(vec![pod2.seed.local_addr()])
        .await
        .unwrap();
    let mut bob = client(&bob_u, &pod2).with_seed(bob_seed.handle());
    assert!(!alice.is_active() && bob.is_active());
    assert_eq!(alice.register().await.unwrap(), alice_u.hash);
    bob.register().await.unwrap();
    let alice_id = alice.add_alias("alice").await.unwrap();
    let bob_id = bob.add_alias("bob").await.unwrap();
    assert_eq!(bob_id.to_string(), format!("bob@{}", pod2.host()));

    let mut sub = bob.listen().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let report = alice
        .send(&bob_id.to_string(), b"hi bob, it's alice")
        .await
        .unwrap();
    assert_eq!(report.notification.sender.user_id, alice_id.to_string());
    assert!(
        report.stored_at >= 1,
        "passive mode reports the pod's replicas: {}",
        report.stored_at
    );
    let delivery = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(delivery.verdict.is_good(), "{:?}", delivery.verdict);
    assert_eq!(delivery.plaintext, b"hi bob, it's alice");
    assert_eq!(delivery.notification.key, report.key);

    // And back: Bob (active) answers; his seed stores it; Alice reads it by playback.
    let back = bob
        .send(&alice_id.to_string(), b"hello alice")
        .await
        .unwrap();
    assert!(
        back.stored_at > 0,
        "active mode stores through the client's seed"
    );
    let inbox = alice.inbox().await.unwrap();
    assert_eq!(inbox.len(), 1);
    let got = inbox[0].as_ref().unwrap();
    assert!(got.verdict.is_good());
    assert_eq!(got.plaintext, b"hello alice");
    // Playback keeps entries until purged (P-A9).
    assert_eq!(alice.inbox().await.unwrap().len(), 1);
    assert_eq!(alice.inbox_and_purge().await.unwrap().len(), 1);
    assert!(alice.inbox().await.unwrap().is_empty());
    // Bob's playback has Alice's message too, though it was pushed.
    assert_eq!(bob.inbox().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_message_signed_by_someone_else_is_marked_not_good() {
    let pod = live_pod(config(), 44).await;
    let (alice_u, bob_u, carol_u) = (user("alice"), user("bob"), user("carol"));
    let mut alice = client(&alice_u, &pod);
    let mut bob = client(&bob_u, &pod);
    alice.register().await.unwrap();
    bob.register().await.unwrap();
    alice.add_alias("alice").await.unwrap();
    bob.add_alias("bob").await.unwrap();
    // Carol's message to Bob, announced by Alice as hers.
    let armored = sign_and_encrypt(
        b"trust me",
        &carol_u.identity,
        &[&bob_u.public],
        SystemTime::now(),
    )
    .unwrap();
    let hex_value = value::to_hex(&armored);
    let key = http("POST", &pod.url("/messages"), &hex_value).await.json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let from = format!("alice@{}", pod.host());
    let n = http(
        "POST",
        &pod.url("/inboxes/bob"),
        &signed(&alice_u, &[("from", &from), ("key", &key)]),
    )
    .await;
    assert_eq!(n.status, 200);
    let inbox = bob.inbox().await.unwrap();
    let got = inbox[0].as_ref().unwrap();
    assert!(!got.verdict.is_good());
    assert!(
        matches!(got.verdict, Verdict::WrongSigner { .. }),
        "{:?}",
        got.verdict
    );
    // A notification of a key that is in no seed is reported undelivered, with its reason.
    let n = http(
        "POST",
        &pod.url("/inboxes/bob"),
        &signed(&alice_u, &[("from", &from), ("key", &"9".repeat(40))]),
    )
    .await;
    assert_eq!(n.status, 200);
    let inbox = bob.inbox().await.unwrap();
    let missing = inbox[1].as_ref().unwrap_err();
    assert!(
        missing.error.to_string().contains("not found"),
        "{}",
        missing.error
    );
}

#[tokio::test]
async fn sending_needs_an_alias_and_a_known_recipient() {
    let pod = live_pod(config(), 45).await;
    let alice_u = user("alice");
    let mut alice = client(&alice_u, &pod);
    alice.register().await.unwrap();
    let e = alice.send("bob@x", b"hi").await.unwrap_err();
    assert!(e.to_string().contains("alias"), "{e}");
    alice.add_alias("alice").await.unwrap();
    let e = alice
        .send(&format!("nobody@{}", pod.host()), b"hi")
        .await
        .unwrap_err();
    assert!(
        matches!(e, muttr_node::client::ClientError::Http { status: 404, .. }),
        "{e}"
    );
    let e = alice.send("not-a-user-id", b"hi").await.unwrap_err();
    assert!(
        matches!(e, muttr_node::client::ClientError::BadUrl(_)),
        "{e}"
    );
}

#[tokio::test]
async fn an_entry_notified_between_playback_and_purge_survives_the_purge_p_x1() {
    let pod = live_pod(config(), 45).await;
    let (alice_u, bob_u) = (user("alice"), user("bob"));
    let mut alice = client(&alice_u, &pod);
    let mut bob = client(&bob_u, &pod);
    alice.register().await.unwrap();
    bob.register().await.unwrap();
    alice.add_alias("alice").await.unwrap();
    let bob_id = bob.add_alias("bob").await.unwrap().to_string();
    alice.send(&bob_id, b"first").await.unwrap();
    // Bob plays back and reads; meanwhile a second message arrives; then he purges what he
    // saw.
    let seen = bob.notifications().await.unwrap();
    assert_eq!(seen.len(), 1);
    let first_id = seen[0].id.clone().expect("the pod gives ids (P-X1)");
    assert!(first_id.bytes().all(|b| b.is_ascii_digit()), "{first_id}");
    let late = alice
        .send(&bob_id, b"second, sent during the read")
        .await
        .unwrap();
    let upto = muttr_node::client::highest_id(&seen).unwrap();
    let left = bob.purge(Some(&upto)).await.unwrap();
    assert_eq!(left.len(), 1, "the late entry is answered as remaining");
    assert_eq!(left[0].key, late.key);
    assert!(left[0].id_number().unwrap() > seen[0].id_number().unwrap());
    let inbox = bob.inbox().await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(
        inbox[0].as_ref().unwrap().plaintext,
        b"second, sent during the read"
    );
    // The whitepaper purge (no `upto`) still empties it.
    assert!(bob.purge(None).await.unwrap().is_empty());
    assert!(bob.notifications().await.unwrap().is_empty());
}

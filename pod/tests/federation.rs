//! Two pods on loopback, their seeds in one DHT: alice@pod1 reaches bob@pod2 through the whole
//! 12-step flow of the whitepaper, with plain HTTP and WebSocket calls only — what an
//! independent client knowing the whitepaper and PROFILE would do — and `href` authentication
//! between the pods (P-A3).

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use futures::{SinkExt, StreamExt};
use muttr_node::crypto::auth::sign_auth_hex;
use muttr_node::crypto::{PublicKey, decrypt_and_verify, sign_and_encrypt};
use muttr_node::value;
use muttr_pod::PodConfig;
use tokio_tungstenite::tungstenite::Message;

fn federating() -> PodConfig {
    PodConfig {
        insecure_federation: true,
        ..PodConfig::default()
    }
}

#[tokio::test]
async fn alice_at_pod1_writes_to_bob_at_pod2() {
    let pod1 = live_pod(federating(), 21).await;
    let pod2 = live_pod(federating(), 22).await;
    // Steps 1–2: the seeds join one DHT.
    let joined = pod2
        .seed
        .handle()
        .bootstrap(vec![pod1.seed.local_addr()])
        .await
        .unwrap();
    assert!(joined > 0);
    let (alice, bob) = (user("alice"), user("bob"));
    // Steps 3–4: each registers with its pod and takes an alias.
    enrol_live(&pod1, &alice, "alice").await;
    enrol_live(&pod2, &bob, "bob").await;
    // Step 5: bob listens on his pod's WebSocket.
    let (mut bob_ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", pod2.addr))
        .await
        .unwrap();
    let frame = sign_auth_hex(
        &bob.identity,
        &bob.hash,
        "pubkeyhash",
        nonce(),
        SystemTime::now(),
    )
    .unwrap();
    bob_ws.send(Message::Text(frame.into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Step 6: alice asks for bob's key.
    let k = http("GET", &pod2.url("/aliases/bob"), "").await;
    assert_eq!(k.status, 200);
    let bob_key = PublicKey::from_armored(&k.body).unwrap();
    // Step 7: sign and encrypt.
    let armored = sign_and_encrypt(
        b"hello bob, from pod1",
        &alice.identity,
        &[&bob_key],
        SystemTime::now(),
    )
    .unwrap();
    let hex_value = value::to_hex(&armored);
    // Step 8: store it in the DHT, passive mode, through her pod.
    let s = http("POST", &pod1.url("/messages"), &hex_value).await;
    assert_eq!(s.status, 200, "{}", s.body);
    let key = s.json()["key"].as_str().unwrap().to_string();
    // Step 9: tell bob's pod, authenticated as alice@pod1 (href).
    let alice_id = format!("alice@{}", pod1.host());
    let note = signed_as(
        &alice,
        "href",
        &alice_id,
        nonce(),
        &[("from", &alice_id), ("key", &key)],
    );
    let n = http("POST", &pod2.url("/inboxes/bob"), &note).await;
    assert_eq!(n.status, 200, "{}", n.body);
    assert_eq!(
        n.json()["message"]["sender"]["pubkeyhash"],
        alice.hash.as_str()
    );

    // Step 10: bob is notified.
    let pushed = match tokio::time::timeout(Duration::from_secs(1), bob_ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
        other => panic!("no push: {other:?}"),
    };
    let pushed: serde_json::Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(pushed["key"], key.as_str());
    assert_eq!(pushed["sender"]["userID"], alice_id.as_str());
    // Step 11: bob fetches it from the DHT through his own pod.
    let m = http("GET", &pod2.url(&format!("/messages/{key}")), "").await;
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(m.body, hex_value);
    // Step 12: decrypt and verify against the sender's key, fetched from her pod.
    let a = http("GET", &pod1.url("/aliases/alice"), "").await;
    let alice_key = PublicKey::from_armored(&a.body).unwrap();
    let text = value::from_hex(&m.body).unwrap();
    let d = decrypt_and_verify(
        text.as_bytes(),
        &bob.identity,
        Some(&alice_key),
        SystemTime::now(),
    )
    .unwrap();
    assert!(d.verdict.is_good(), "{:?}", d.verdict);
    assert_eq!(d.plaintext, b"hello bob, from pod1");
}

#[tokio::test]
async fn href_authentication_fails_cleanly_when_the_other_pod_cannot_vouch() {
    let pod1 = live_pod(federating(), 23).await;
    let pod2 = live_pod(federating(), 24).await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    enrol_live(&pod1, &alice, "alice").await;
    enrol_live(&pod2, &bob, "bob").await;
    let k = "5".repeat(40);
    // An alias pod1 does not have.
    let ghost = format!("ghost@{}", pod1.host());
    let t = signed_as(
        &alice,
        "href",
        &ghost,
        nonce(),
        &[("from", &ghost), ("key", &k)],
    );
    http("POST", &pod2.url("/inboxes/bob"), &t)
        .await
        .assert_error(401);
    // Carol signing as alice@pod1: pod1's key for alice does not verify carol's signature.
    let alice_id = format!("alice@{}", pod1.host());
    let t = signed_as(
        &carol,
        "href",
        &alice_id,
        nonce(),
        &[("from", &alice_id), ("key", &k)],
    );
    http("POST", &pod2.url("/inboxes/bob"), &t)
        .await
        .assert_error(401);
    // A pod nobody listens on: not an answer that will stay the same (it may be
    // restarting), so 503 and the client tries again later; nothing is stored.
    let dead = "alice@127.0.0.1:1";
    let t = signed_as(
        &alice,
        "href",
        dead,
        nonce(),
        &[("from", dead), ("key", &k)],
    );
    let a = http("POST", &pod2.url("/inboxes/bob"), &t).await;
    a.assert_error(503);
    assert!(a.body.contains("try again"), "{}", a.body);
    // Alice (href, authenticated) naming someone else as `from`.
    let bob_id = format!("bob@{}", pod2.host());
    let t = signed_as(
        &alice,
        "href",
        &alice_id,
        nonce(),
        &[("from", &bob_id), ("key", &k)],
    );
    http("POST", &pod2.url("/inboxes/bob"), &t)
        .await
        .assert_error(403);
    // Without insecure federation the pod asks https://, which a plain-HTTP pod cannot answer.
    let strict = live_pod(PodConfig::default(), 25).await;
    enrol_live(&strict, &bob, "bob").await;
    let t = signed_as(
        &alice,
        "href",
        &alice_id,
        nonce(),
        &[("from", &alice_id), ("key", &k)],
    );
    // It cannot reach alice's pod that way: 503, naming the https:// URL it tried.
    let a = http("POST", &strict.url("/inboxes/bob"), &t).await;
    a.assert_error(503);
    assert!(a.body.contains("https://"), "{}", a.body);
}

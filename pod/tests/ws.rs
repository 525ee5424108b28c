//! WebSocket push over real TCP (P-S1, P-S2): authentication by the first frame, close code
//! 4401 for anything else, and one JSON frame per new inbox entry to every subscriber.

mod common;

use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use muttr_node::crypto::auth::sign_auth_hex;
use muttr_pod::PodConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(pod: &LivePod) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", pod.addr))
        .await
        .unwrap();
    ws
}

fn auth_frame(u: &User) -> String {
    sign_auth_hex(
        &u.identity,
        &u.hash,
        "pubkeyhash",
        nonce(),
        std::time::SystemTime::now(),
    )
    .unwrap()
}

async fn subscribe(pod: &LivePod, u: &User) -> Ws {
    let mut ws = connect(pod).await;
    ws.send(Message::Text(auth_frame(u).into())).await.unwrap();
    ws
}

/// The next text frame, within a second (P-S2).
async fn next_text(ws: &mut Ws) -> String {
    match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
        other => panic!("expected a text frame within 1 s, got {other:?}"),
    }
}

/// Expects the pod to close the connection with 4401.
async fn expect_4401(ws: &mut Ws) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(frame.code, CloseCode::from(4401), "{frame:?}");
                return;
            }
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            other => panic!("expected close 4401, got {other:?}"),
        }
    }
}

async fn notify(pod: &LivePod, from: &User, from_alias: &str, to: &str, key: &str) {
    let from_id = format!("{from_alias}@{}", pod.host());
    let a = http(
        "POST",
        &pod.url(&format!("/inboxes/{to}")),
        &signed(from, &[("from", &from_id), ("key", key)]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn each_new_entry_is_pushed_to_every_subscriber_of_its_recipient() {
    let pod = live_pod(PodConfig::default(), 11).await;
    let (alice, bob) = (user("alice"), user("bob"));
    enrol_live(&pod, &alice, "alice").await;
    enrol_live(&pod, &bob, "bob").await;
    let mut bob1 = subscribe(&pod, &bob).await;
    let mut bob2 = subscribe(&pod, &bob).await;
    let mut alice_ws = subscribe(&pod, &alice).await;
    // Let the pod process the auth frames before the notification.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key = "1".repeat(40);
    notify(&pod, &alice, "alice", "bob", &key).await;
    let mut first_id = 0u64;
    for ws in [&mut bob1, &mut bob2] {
        let frame: serde_json::Value = serde_json::from_str(&next_text(ws).await).unwrap();
        assert_eq!(frame["key"], key.as_str());
        assert_eq!(frame["recipient"]["userID"], format!("bob@{}", pod.host()));
        assert_eq!(frame["recipient"]["pubkeyhash"], bob.hash.as_str());
        assert_eq!(frame["sender"]["userID"], format!("alice@{}", pod.host()));
        assert_eq!(frame["sender"]["pubkeyhash"], alice.hash.as_str());
        assert!(frame["timestamp"].is_u64());
        // P-X1: the entry's id, decimal digits, in the push frame.
        let id = frame["id"]
            .as_str()
            .expect("an id in the push frame (P-X1)");
        assert!(
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
            "{id}"
        );
        first_id = id.parse().unwrap();
    }
    // Alice got nothing of bob's: her first frame is the entry addressed to her.
    let key2 = "2".repeat(40);
    notify(&pod, &bob, "bob", "alice", &key2).await;
    let frame: serde_json::Value = serde_json::from_str(&next_text(&mut alice_ws).await).unwrap();
    assert_eq!(frame["key"], key2.as_str());
    // A closed subscriber does not disturb the others.
    bob1.close(None).await.unwrap();
    drop(bob1);
    let key3 = "3".repeat(40);
    notify(&pod, &alice, "alice", "bob", &key3).await;
    let frame: serde_json::Value = serde_json::from_str(&next_text(&mut bob2).await).unwrap();
    assert_eq!(frame["key"], key3.as_str());
    let id3: u64 = frame["id"].as_str().unwrap().parse().unwrap();
    assert!(id3 > first_id, "later entries, higher ids");
}

#[tokio::test]
async fn a_bad_first_frame_closes_with_4401() {
    let pod = live_pod(PodConfig::default(), 12).await;
    let (alice, carol) = (user("alice"), user("carol"));
    enrol_live(&pod, &alice, "alice").await;
    let good = auth_frame(&alice);
    let armored = String::from_utf8(hex::decode(&good).unwrap()).unwrap();
    let href = hex::encode(signed_as(
        &alice,
        "href",
        &format!("alice@{}", pod.host()),
        nonce(),
        &[],
    ));
    let stale = hex::encode(signed_as(
        &alice,
        "pubkeyhash",
        &alice.hash,
        now_ms() - 600_000,
        &[],
    ));
    let tampered = hex::encode(armored.replace("nonce=", "nonce=1"));
    let cases: Vec<(&str, Message)> = vec![
        ("not hex", Message::Text("hello".into())),
        ("armor not hexed", Message::Text(armored.clone().into())),
        (
            "hex of no auth text",
            Message::Text(hex::encode("hi").into()),
        ),
        (
            "binary frame",
            Message::Binary(good.clone().into_bytes().into()),
        ),
        ("href identity", Message::Text(href.into())),
        ("unregistered", Message::Text(auth_frame(&carol).into())),
        ("stale nonce", Message::Text(stale.into())),
        ("tampered", Message::Text(tampered.into())),
    ];
    for (what, frame) in cases {
        let mut ws = connect(&pod).await;
        ws.send(frame).await.unwrap();
        eprintln!("case: {what}");
        expect_4401(&mut ws).await;
    }
    // Replay: the good frame works once, then never again.
    let mut ws = connect(&pod).await;
    ws.send(Message::Text(good.clone().into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect(&pod).await;
    again.send(Message::Text(good.into())).await.unwrap();
    expect_4401(&mut again).await;
    // The first connection is still subscribed.
    notify(&pod, &alice, "alice", "alice", &"4".repeat(40)).await;
    assert!(next_text(&mut ws).await.contains(&"4".repeat(40)));
}

#[tokio::test]
async fn silence_after_connecting_closes_with_4401() {
    let config = PodConfig {
        ws_auth_timeout: Duration::from_millis(300),
        ..PodConfig::default()
    };
    let pod = live_pod(config, 13).await;
    let mut ws = connect(&pod).await;
    expect_4401(&mut ws).await;
}

#[tokio::test]
async fn the_websocket_and_the_api_share_the_base_uri() {
    let pod = live_pod(PodConfig::default(), 14).await;
    // A plain GET / is not an upgrade: the status page, as JSON to a client that does not ask
    // for HTML.
    let a = http("GET", &pod.url("/"), "").await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["public_host"], pod.host().as_str());
    let alice = user("alice");
    // POST / on the same URI registers.
    assert_eq!(
        http("POST", &pod.url("/"), &alice.armored).await.status,
        200
    );
}

#[tokio::test]
async fn websocket_connections_are_capped_per_identity_and_in_total() {
    let config = PodConfig {
        ws_per_identity: 2,
        ws_total: 3,
        ..PodConfig::default()
    };
    let pod = live_pod(config, 15).await;
    let alice = user("alice");
    enrol_live(&pod, &alice, "alice").await;
    let mut a1 = subscribe(&pod, &alice).await;
    let _a2 = subscribe(&pod, &alice).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third session for alice is closed after authentication.
    let mut a3 = subscribe(&pod, &alice).await;
    match tokio::time::timeout(Duration::from_secs(5), a3.next()).await {
        Ok(Some(Ok(Message::Close(Some(f))))) => assert_eq!(u16::from(f.code), 4429),
        other => panic!("expected close 4429, got {other:?}"),
    }
    drop(a3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Three connections in all: one unauthenticated fills the pod; a fourth upgrade is 429.
    let _idle = connect(&pod).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}/", pod.addr)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => assert_eq!(res.status(), 429),
        other => panic!("expected a 429 refusal, got {other:?}"),
    }
    // The first sessions still work.
    notify(&pod, &alice, "alice", "alice", &"6".repeat(40)).await;
    assert!(next_text(&mut a1).await.contains(&"6".repeat(40)));
}

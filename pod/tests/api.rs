//! The REST API end to end, in process (tower `oneshot` on the router, a real seed on loopback
//! behind it): every endpoint of PROFILE §5 with its shapes, statuses and media types, and the
//! bad input of each.

mod common;

use axum::body::Body;
use common::*;
use muttr_node::value;
use muttr_pod::{PodConfig, router};
use rand::SeedableRng;

async fn app() -> (
    axum::Router,
    muttr_pod::AppState,
    tempfile::TempDir,
    impl Sized,
) {
    let dir = tempfile::tempdir().unwrap();
    let (state, seed) = pod_state(dir.path(), test_config()).await;
    (router(state.clone()), state, dir, seed)
}

#[tokio::test]
async fn register_answers_the_pubkeyhash_of_the_exact_text() {
    let (app, _, _d, _s) = app().await;
    let alice = user("alice");
    let a = post_text(&app, "/", alice.armored.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["identity"]["pubkeyhash"], alice.hash.as_str());
    let registered = v["identity"]["registered"].as_u64().unwrap();
    assert!(
        registered.abs_diff(now_ms()) < 60_000,
        "ms timestamp (P-W5)"
    );
    // Again: same answer, same registration time.
    let again = post_text(&app, "/", alice.armored.clone()).await.json();
    assert_eq!(again, v);
    // application/pgp-keys is a text body too.
    let b = call(
        &app,
        "POST",
        "/",
        Some("application/pgp-keys"),
        alice.armored.clone(),
    )
    .await;
    assert_eq!(b.status, 200);
    // The same key armored with CRLF line ends is another text of the same key: 409 (P-A7).
    let crlf = std::fs::read_to_string(keys_dir().join("alice.pub.crlf.asc")).unwrap();
    post_text(&app, "/", crlf).await.assert_error(409);
}

#[tokio::test]
async fn register_refuses_what_is_not_a_public_key() {
    let (app, _, _d, _s) = app().await;
    post_text(&app, "/", "hello").await.assert_error(400);
    let sec = std::fs::read_to_string(keys_dir().join("alice.sec.asc")).unwrap();
    post_text(&app, "/", sec).await.assert_error(400);
    let alice = user("alice");
    let corrupt = alice.armored.replacen('A', "B", 40);
    post_text(&app, "/", corrupt).await.assert_error(400);
    call(
        &app,
        "POST",
        "/",
        Some("application/json"),
        alice.armored.clone(),
    )
    .await
    .assert_error(415);
    call(
        &app,
        "POST",
        "/",
        Some("text/plain"),
        vec![0xff_u8, 0xfe, 0x00],
    )
    .await
    .assert_error(400);
    let huge = "x".repeat(PodConfig::default().max_body_bytes + 1);
    post_text(&app, "/", huge).await.assert_error(413);
}

#[tokio::test]
async fn aliases_map_names_to_the_registered_key() {
    let (app, _, _d, _s) = app().await;
    let (alice, bob) = (user("alice"), user("bob"));
    post_text(&app, "/", alice.armored.clone()).await;
    post_text(&app, "/", bob.armored.clone()).await;
    let a = post_text(&app, "/aliases", signed(&alice, &[("alias", "alice")])).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    assert_eq!(v["alias"]["name"], "alice");
    let created = v["alias"]["created"].as_u64().unwrap();
    // Public lookup: the key exactly as registered, as application/pgp-keys.
    let k = get(&app, "/aliases/alice").await;
    assert_eq!(k.status, 200);
    assert_eq!(k.content_type(), "application/pgp-keys");
    assert_eq!(k.body, alice.armored);
    // Asking again for one's own alias changes nothing; someone else's is 409.
    let again = post_text(&app, "/aliases", signed(&alice, &[("alias", "alice")])).await;
    assert_eq!(again.json()["alias"]["created"].as_u64(), Some(created));
    post_text(&app, "/aliases", signed(&bob, &[("alias", "alice")]))
        .await
        .assert_error(409);
    // P-A8 pattern, unknown aliases, missing parameter.
    post_text(&app, "/aliases", signed(&bob, &[("alias", "Bob")]))
        .await
        .assert_error(400);
    post_text(&app, "/aliases", signed(&bob, &[]))
        .await
        .assert_error(400);
    get(&app, "/aliases/nobody").await.assert_error(404);
    get(&app, "/aliases/No%20Body").await.assert_error(400);
    // Several aliases for one identity.
    let b2 = post_text(&app, "/aliases", signed(&bob, &[("alias", "bobby.b")])).await;
    assert_eq!(b2.status, 200);
    assert_eq!(get(&app, "/aliases/bobby.b").await.body, bob.armored);
}

#[tokio::test]
async fn authentication_refuses_forgery_replay_staleness_and_strangers() {
    let (app, _, _d, _s) = app().await;
    let (alice, carol) = (user("alice"), user("carol"));
    post_text(&app, "/", alice.armored.clone()).await;
    // Replay: the same signed text twice.
    let text = signed(&alice, &[("alias", "alice")]);
    assert_eq!(post_text(&app, "/aliases", text.clone()).await.status, 200);
    post_text(&app, "/aliases", text).await.assert_error(401);
    // Stale nonces, past and future (P-A2: 5 minutes).
    for n in [now_ms() - 6 * 60_000, now_ms() + 6 * 60_000] {
        let t = signed_as(&alice, "pubkeyhash", &alice.hash, n, &[("alias", "a2")]);
        post_text(&app, "/aliases", t).await.assert_error(401);
    }
    // A parameter altered after signing.
    let t = signed(&alice, &[("alias", "alice3")]);
    let forged = t.replace("alias=alice3", "alias=alice4");
    assert_ne!(t, forged);
    post_text(&app, "/aliases", forged).await.assert_error(401);
    assert_eq!(get(&app, "/aliases/alice4").await.status, 404);
    // Signed by carol, claiming alice's identity.
    let t = signed_as(
        &carol,
        "pubkeyhash",
        &alice.hash,
        nonce(),
        &[("alias", "x")],
    );
    post_text(&app, "/aliases", t).await.assert_error(401);
    // Carol is not registered.
    post_text(&app, "/aliases", signed(&carol, &[("alias", "carol")]))
        .await
        .assert_error(401);
    // Not signed, not an auth text, unknown identityType, bad pubkeyhash.
    post_text(
        &app,
        "/aliases",
        "identity=x&identityType=pubkeyhash&nonce=1",
    )
    .await
    .assert_error(400);
    let t = signed_as(
        &alice,
        "fingerprint",
        &alice.hash,
        nonce(),
        &[("alias", "x")],
    );
    post_text(&app, "/aliases", t).await.assert_error(400);
    let t = signed_as(&alice, "pubkeyhash", "ABC", nonce(), &[("alias", "x")]);
    post_text(&app, "/aliases", t).await.assert_error(400);
    // Endpoint parameters come from the signed text only, never the query string.
    let t = signed(&alice, &[]);
    post_text(&app, "/aliases?alias=sneaky", t)
        .await
        .assert_error(400);
    assert_eq!(get(&app, "/aliases/sneaky").await.status, 404);
}

#[tokio::test]
async fn href_callers_are_authenticated_but_not_authorized() {
    let (app, _, _d, _s) = app().await;
    let alice = user("alice");
    enrol(&app, &alice, "alice").await;
    // alice@pod.test is this pod: its key is the local alias's, no fetch needed.
    let t = signed_as(&alice, "href", "alice@pod.test", nonce(), &[("alias", "x")]);
    post_text(&app, "/aliases", t).await.assert_error(403);
    let t = signed_as(
        &alice,
        "href",
        "alice@pod.test",
        nonce(),
        &[("resource", "/inboxes"), ("method", "GET")],
    );
    post_text(&app, "/tokens", t).await.assert_error(403);
    // An href naming an alias this pod does not have cannot authenticate.
    let t = signed_as(&alice, "href", "ghost@pod.test", nonce(), &[("alias", "x")]);
    post_text(&app, "/aliases", t).await.assert_error(401);
    // Malformed href identity.
    let t = signed_as(&alice, "href", "not-a-user-id", nonce(), &[("alias", "x")]);
    post_text(&app, "/aliases", t).await.assert_error(400);
}

#[tokio::test]
async fn inbox_notify_playback_and_purge() {
    let (app, _, _d, _s) = app().await;
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&app, &alice, "alice").await;
    enrol(&app, &bob, "bob").await;
    let keys = ["a".repeat(40), "b".repeat(40)];
    for k in &keys {
        let a = post_text(
            &app,
            "/inboxes/bob",
            signed(&alice, &[("from", "alice@pod.test"), ("key", k)]),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let m = &a.json()["message"];
        assert_eq!(m["recipient"]["userID"], "bob@pod.test");
        assert_eq!(m["recipient"]["pubkeyhash"], bob.hash.as_str());
        assert_eq!(m["sender"]["userID"], "alice@pod.test");
        assert_eq!(m["sender"]["pubkeyhash"], alice.hash.as_str());
        assert_eq!(m["key"], k.as_str());
        assert!(m["timestamp"].as_u64().unwrap().abs_diff(now_ms()) < 60_000);
    }
    // Bob notes himself a message too (another contact).
    post_text(
        &app,
        "/inboxes/bob",
        signed(&bob, &[("from", "bob@pod.test"), ("key", &"c".repeat(40))]),
    )
    .await;
    let t = token(&app, &bob, "GET").await;
    let p = get(&app, &format!("/inboxes?token={t}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    let v = p.json();
    let groups = v["messages"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["contact"], "alice@pod.test");
    let got: Vec<_> = groups[0]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, keys);
    assert_eq!(groups[1]["contact"], "bob@pod.test");
    // Alice's inbox is hers: empty.
    let ta = token(&app, &alice, "GET").await;
    let pa = get(&app, &format!("/inboxes?token={ta}")).await.json();
    assert_eq!(pa["messages"].as_array().unwrap().len(), 0);
    // Entries stay until purged (P-A9): a second playback still has them.
    let t = token(&app, &bob, "GET").await;
    let again = get(&app, &format!("/inboxes?token={t}")).await.json();
    assert_eq!(again, v);
    let d = token(&app, &bob, "DELETE").await;
    let purged = call(
        &app,
        "DELETE",
        &format!("/inboxes?token={d}"),
        None,
        Body::empty(),
    )
    .await;
    assert_eq!(purged.status, 200);
    assert_eq!(purged.json(), serde_json::json!({ "messages": [] }));
    let t = token(&app, &bob, "GET").await;
    let after = get(&app, &format!("/inboxes?token={t}")).await.json();
    assert_eq!(after["messages"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn inbox_notify_refuses_bad_input() {
    let (app, _, _d, _s) = app().await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    enrol(&app, &alice, "alice").await;
    enrol(&app, &bob, "bob").await;
    let k = "d".repeat(40);
    // `from` must be the signer (P-A4): alice claiming to be bob.
    post_text(
        &app,
        "/inboxes/bob",
        signed(&alice, &[("from", "bob@pod.test"), ("key", &k)]),
    )
    .await
    .assert_error(403);
    // Unknown recipient.
    post_text(
        &app,
        "/inboxes/nobody",
        signed(&alice, &[("from", "alice@pod.test"), ("key", &k)]),
    )
    .await
    .assert_error(404);
    // Bad key, missing parameters, malformed from.
    for params in [
        vec![("from", "alice@pod.test"), ("key", "ABC")],
        vec![("from", "alice@pod.test"), ("key", &"G".repeat(40))],
        vec![("from", "alice@pod.test")],
        vec![("key", k.as_str())],
        vec![("from", "alice"), ("key", k.as_str())],
    ] {
        post_text(&app, "/inboxes/bob", signed(&alice, &params))
            .await
            .assert_error(400);
    }
    // Not signed by anyone known.
    post_text(
        &app,
        "/inboxes/bob",
        signed(&carol, &[("from", "carol@pod.test"), ("key", &k)]),
    )
    .await
    .assert_error(401);
    // Nothing reached bob.
    let t = token(&app, &bob, "GET").await;
    let v = get(&app, &format!("/inboxes?token={t}")).await.json();
    assert_eq!(v["messages"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn tokens_are_single_use_and_bound_to_route_method_and_user() {
    let (app, _, _d, _s) = app().await;
    let bob = user("bob");
    enrol(&app, &bob, "bob").await;
    let a = post_text(
        &app,
        "/tokens",
        signed(&bob, &[("resource", "/inboxes"), ("method", "get")]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    let tok = &v["token"];
    assert_eq!(tok["method"], "GET");
    assert_eq!(tok["resource"], "/inboxes");
    assert!(tok["issued"].as_u64().unwrap().abs_diff(now_ms()) < 60_000);
    let value = tok["value"].as_str().unwrap();
    assert!(value.len() >= 32, "≥ 128 bits (P-A6)");
    // Used for DELETE: refused and not spent.
    call(
        &app,
        "DELETE",
        &format!("/inboxes?token={value}"),
        None,
        Body::empty(),
    )
    .await
    .assert_error(401);
    assert_eq!(
        get(&app, &format!("/inboxes?token={value}")).await.status,
        200
    );
    // Used again: refused.
    get(&app, &format!("/inboxes?token={value}"))
        .await
        .assert_error(401);
    // Missing and made-up tokens.
    get(&app, "/inboxes").await.assert_error(401);
    get(&app, &format!("/inboxes?token={}", "0".repeat(64)))
        .await
        .assert_error(401);
    // A token for another resource does not open /inboxes.
    let a = post_text(
        &app,
        "/tokens",
        signed(&bob, &[("resource", "/inboxes/bob"), ("method", "GET")]),
    )
    .await;
    let other = a.json()["token"]["value"].as_str().unwrap().to_string();
    get(&app, &format!("/inboxes?token={other}"))
        .await
        .assert_error(401);
    // Only GET and DELETE; parameters required.
    for params in [
        vec![("resource", "/inboxes"), ("method", "POST")],
        vec![("resource", "inboxes"), ("method", "GET")],
        vec![("method", "GET")],
        vec![("resource", "/inboxes")],
    ] {
        post_text(&app, "/tokens", signed(&bob, &params))
            .await
            .assert_error(400);
    }
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_after_thirty_seconds() {
    let dir = tempfile::tempdir().unwrap();
    // Paused time: the pod's clock starts at the real time and advances only virtually.
    let (state, _seed) = pod_state(dir.path(), test_config()).await;
    let app = router(state);
    let bob = user("bob");
    enrol(&app, &bob, "bob").await;
    let t1 = token(&app, &bob, "GET").await;
    let t2 = token(&app, &bob, "GET").await;
    tokio::time::advance(std::time::Duration::from_millis(29_000)).await;
    assert_eq!(get(&app, &format!("/inboxes?token={t1}")).await.status, 200);
    tokio::time::advance(std::time::Duration::from_millis(1_000)).await;
    let a = get(&app, &format!("/inboxes?token={t2}")).await;
    a.assert_error(401);
    assert!(a.body.contains("expired"), "{}", a.body);
}

#[tokio::test]
async fn messages_go_to_the_dht_and_come_back() {
    let (app, _, _d, _s) = app().await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let hex = value::to_hex(&value::opaque_message(&mut rng, 300));
    let a = post_text(&app, "/messages", hex.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let key = a.json()["key"].as_str().unwrap().to_string();
    assert_eq!(
        key,
        value::key_of(&hex).to_hex(),
        "key = SHA-1 of the hex text (P-V2)"
    );
    let g = get(&app, &format!("/messages/{key}")).await;
    assert_eq!(g.status, 200);
    assert!(g.content_type().starts_with("text/plain"));
    assert_eq!(g.body, hex);
    get(&app, &format!("/messages/{}", "e".repeat(40)))
        .await
        .assert_error(404);
    get(&app, "/messages/XYZ").await.assert_error(400);
    get(&app, &format!("/messages/{}", "E".repeat(40)))
        .await
        .assert_error(400);
    // Not P-V1: not hex, hex of no armor, hex of a signed (not encrypted) message.
    post_text(&app, "/messages", "zz").await.assert_error(400);
    post_text(&app, "/messages", hex::encode("hello"))
        .await
        .assert_error(400);
    let alice = user("alice");
    let cleartext = signed(&alice, &[]);
    post_text(&app, "/messages", hex::encode(cleartext))
        .await
        .assert_error(400);
    call(&app, "POST", "/messages", Some("application/json"), hex)
        .await
        .assert_error(415);
    // Larger than one STORE datagram can carry.
    let big = value::to_hex(&value::opaque_message(&mut rng, 40_000));
    post_text(&app, "/messages", big).await.assert_error(413);
}

#[tokio::test]
async fn every_error_is_json() {
    let (app, _, _d, _s) = app().await;
    get(&app, "/nothing/here").await.assert_error(404);
    call(&app, "PUT", "/aliases", None, Body::empty())
        .await
        .assert_error(405);
    call(&app, "DELETE", "/", None, Body::empty())
        .await
        .assert_error(405);
    call(&app, "GET", "/tokens", None, Body::empty())
        .await
        .assert_error(405);
    // GET / with an upgrade that is not a valid one: a JSON 400.
    let a = call_with(
        &app,
        "GET",
        "/",
        &[("upgrade", "websocket"), ("connection", "upgrade")],
    )
    .await;
    a.assert_error(400);
}

#[tokio::test]
async fn get_root_without_an_upgrade_is_the_status_page_json_unless_html_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (state, _seed) = pod_state(dir.path(), test_config()).await;
    let app = muttr_pod::router(state);
    enrol(&app, &user("alice"), "alice").await;
    // No Accept (a script, a checker): JSON (P-A5).
    let a = get(&app, "/").await;
    assert_eq!(a.status, 200);
    assert!(
        a.content_type().starts_with("application/json"),
        "{}",
        a.content_type()
    );
    let v = a.json();
    assert_eq!(v["software"], "muttr-pod");
    assert_eq!(v["revision"], muttr_node::GIT_REV);
    assert_eq!(v["public_host"], test_config().public_host.as_str());
    assert_eq!(v["identities"], 1);
    assert_eq!(v["aliases"], 1);
    assert!(v["seed"]["node_id"].as_str().unwrap().len() == 40, "{v}");
    assert!(v["uptime_s"].is_u64());
    // A browser: HTML, naming the host, with markup in values escaped.
    let h = call_with(&app, "GET", "/", &[("accept", "text/html,*/*;q=0.8")]).await;
    assert_eq!(h.status, 200);
    assert!(
        h.content_type().starts_with("text/html"),
        "{}",
        h.content_type()
    );
    assert!(h.body.contains("<h1>muttr pod "), "{}", h.body);
    assert!(h.body.contains("identities"), "{}", h.body);
}

#[tokio::test]
async fn floods_get_429_per_address_and_per_identity() {
    let dir = tempfile::tempdir().unwrap();
    let config = PodConfig {
        ip_burst: 5.0,
        ip_rate_per_sec: 0.001,
        ..test_config()
    };
    let (state, _seed) = pod_state(dir.path(), config).await;
    let app = router(state);
    for _ in 0..5 {
        assert_eq!(get(&app, "/aliases/x").await.status, 404);
    }
    get(&app, "/aliases/x").await.assert_error(429);

    let dir = tempfile::tempdir().unwrap();
    let config = PodConfig {
        identity_burst: 3.0,
        identity_rate_per_sec: 0.001,
        ..test_config()
    };
    let (state, _seed) = pod_state(dir.path(), config).await;
    let app = router(state);
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&app, &alice, "alice").await; // one authenticated request
    enrol(&app, &bob, "bob").await;
    for _ in 0..2 {
        let t = signed(&alice, &[("resource", "/inboxes"), ("method", "GET")]);
        assert_eq!(post_text(&app, "/tokens", t).await.status, 200);
    }
    let t = signed(&alice, &[("resource", "/inboxes"), ("method", "GET")]);
    post_text(&app, "/tokens", t).await.assert_error(429);
    // Others are not affected.
    let t = signed(&bob, &[("resource", "/inboxes"), ("method", "GET")]);
    assert_eq!(post_text(&app, "/tokens", t).await.status, 200);
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_routes_the_router_serves() {
    let (app, _, _d, _s) = app().await;
    let served = get(&app, "/openapi.json").await;
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut documented = muttr_pod::openapi::operations(&doc);
    documented.sort();
    let mut routes: Vec<(String, String)> = muttr_pod::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(documented, routes, "OpenAPI paths vs ROUTES");
    // And the router really serves each route: no 404 "no such route", no 405.
    for (method, path) in &routes {
        let concrete = path
            .replace("{hash}", &"0".repeat(40))
            .replace("{alias}", "nobody");
        let a = call(&app, method, &concrete, Some("text/plain"), Body::empty()).await;
        assert_ne!(a.status, 405, "{method} {path}");
        if a.status == 404 {
            assert!(
                !a.body.contains("no such route"),
                "{method} {path}: {}",
                a.body
            );
        }
    }
    // The committed file is the one served.
    let file =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&file).unwrap(),
        doc
    );
}

#[tokio::test]
async fn healthz_and_readyz_follow_the_database_and_the_seed_p_x3() {
    let (app, state, _d, seed) = app().await;
    let h = get(&app, "/healthz").await;
    assert_eq!(h.status, 200, "{}", h.body);
    assert_eq!(h.content_type(), "application/json");
    assert_eq!(h.json(), serde_json::json!({"status": "ok"}));
    // The pod's seed has joined nothing yet: not ready.
    let r = get(&app, "/readyz").await;
    r.assert_error(503);
    // Once it has a contact, it is.
    let other = common::seed(99).await;
    state
        .seed
        .as_ref()
        .unwrap()
        .bootstrap(vec![other.local_addr()])
        .await
        .unwrap();
    let r = get(&app, "/readyz").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "ready");
    assert!(r.json()["contacts"].as_u64().unwrap() >= 1);
    // A database that cannot take writes: another connection holds the write lock past the
    // busy timeout — unhealthy, with the JSON error of P-A7.
    let path = state.storage.path().expect("SQLite").to_path_buf();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let h = get(&app, "/healthz").await;
    h.assert_error(503);
    assert!(h.json()["error"].as_str().unwrap().contains("writable"));
    holder.execute_batch("ROLLBACK;").unwrap();
    assert_eq!(get(&app, "/healthz").await.status, 200);
    drop(seed);
}

#[tokio::test]
async fn readyz_without_a_seed_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let state = muttr_pod::AppState::new(
        test_config(),
        muttr_pod::Storage::open(dir.path()).unwrap(),
        None,
        muttr_node::net::Clock::system(),
        Some(1),
    );
    let app = router(state);
    get(&app, "/readyz").await.assert_error(503);
    assert_eq!(get(&app, "/healthz").await.status, 200);
}

async fn notify(app: &axum::Router, from: &User, from_id: &str, key: &str) -> serde_json::Value {
    let a = post_text(
        app,
        "/inboxes/bob",
        signed(from, &[("from", from_id), ("key", key)]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["message"].clone()
}

async fn delete(app: &axum::Router, u: &User, query: &str) -> Answer {
    let d = token(app, u, "DELETE").await;
    call(
        app,
        "DELETE",
        &format!("/inboxes?token={d}{query}"),
        None,
        Body::empty(),
    )
    .await
}

fn ids(playback: &serde_json::Value) -> Vec<u64> {
    let mut out: Vec<u64> = playback["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["messages"].as_array().unwrap().iter())
        .map(|m| m["id"].as_str().unwrap().parse().unwrap())
        .collect();
    out.sort_unstable();
    out
}

#[tokio::test]
async fn purge_upto_deletes_exactly_what_was_seen_p_x1() {
    let (app, _, _d, _s) = app().await;
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&app, &alice, "alice").await;
    enrol(&app, &bob, "bob").await;
    let first = notify(&app, &alice, "alice@pod.test", &"1".repeat(40)).await;
    let second = notify(&app, &bob, "bob@pod.test", &"2".repeat(40)).await;
    // Ids: decimal digit strings, strictly increasing, in the notify answer.
    let (a, b) = (
        first["id"].as_str().unwrap().parse::<u64>().unwrap(),
        second["id"].as_str().unwrap().parse::<u64>().unwrap(),
    );
    assert!(a < b, "{a} < {b}");
    // Bob plays back (ids there too) ...
    let t = token(&app, &bob, "GET").await;
    let seen = get(&app, &format!("/inboxes?token={t}")).await.json();
    assert_eq!(ids(&seen), vec![a, b]);
    // ... a third entry arrives while he reads ...
    let late = notify(&app, &alice, "alice@pod.test", &"3".repeat(40)).await;
    let c: u64 = late["id"].as_str().unwrap().parse().unwrap();
    assert!(c > b);
    // ... and his purge up to what he saw keeps it, answering what remains.
    let purged = delete(&app, &bob, &format!("&upto={b}")).await;
    assert_eq!(purged.status, 200, "{}", purged.body);
    let left = purged.json();
    assert_eq!(ids(&left), vec![c]);
    assert_eq!(left["messages"][0]["contact"], "alice@pod.test");
    assert_eq!(left["messages"][0]["messages"][0]["key"], "3".repeat(40));
    let t = token(&app, &bob, "GET").await;
    assert_eq!(
        ids(&get(&app, &format!("/inboxes?token={t}")).await.json()),
        vec![c]
    );
    // An `upto` beyond the newest id deletes what exists, and nothing else (ids are never
    // reused: the next entry gets a higher one and survives).
    let gone = delete(&app, &bob, "&upto=99999999999999999999999").await;
    assert_eq!(gone.json(), serde_json::json!({ "messages": [] }));
    let next = notify(&app, &alice, "alice@pod.test", &"4".repeat(40)).await;
    assert!(next["id"].as_str().unwrap().parse::<u64>().unwrap() > c);
    // Pushed frames carry the id too (the WebSocket frame is the notify answer's entry).
}

#[tokio::test]
async fn purge_upto_refuses_what_is_not_an_id_p_x1() {
    let (app, _, _d, _s) = app().await;
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&app, &alice, "alice").await;
    enrol(&app, &bob, "bob").await;
    notify(&app, &alice, "alice@pod.test", &"5".repeat(40)).await;
    for bad in ["", "-1", "1.5", "abc", "12a", "%201"] {
        let a = delete(&app, &bob, &format!("&upto={bad}")).await;
        a.assert_error(400);
    }
    // Nothing was deleted by the refused requests.
    let t = token(&app, &bob, "GET").await;
    assert_eq!(
        ids(&get(&app, &format!("/inboxes?token={t}")).await.json()).len(),
        1
    );
}

#[tokio::test]
async fn post_messages_says_how_many_seeds_took_it_and_503_when_none_did() {
    let (app, state, _d, _s) = app().await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let hex = value::to_hex(&value::opaque_message(&mut rng, 300));
    // A pod that knows no other seed: its own copy only, said as such.
    let a = post_text(&app, "/messages", hex.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["replicas"], 0);
    // It knows a seed that takes values: counted.
    let good = common::seed(61).await;
    let pod_seed = state.seed.as_ref().unwrap();
    pod_seed.bootstrap(vec![good.local_addr()]).await.unwrap();
    let hex2 = value::to_hex(&value::opaque_message(&mut rng, 300));
    let a = post_text(&app, "/messages", hex2).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["replicas"], 1);
    good.shutdown().await.unwrap();
    // Only seeds that refuse everything (full: quota 0, P-V4): nobody but the pod holds it.
    let full_dir = tempfile::tempdir().unwrap();
    let config = muttr_node::Config {
        max_values: 0,
        ..muttr_node::Config::default()
    };
    let full = muttr_node::spawn_seed(
        muttr_node::net::TokioTransport,
        muttr_node::SeedOptions {
            config: config.clone(),
            ..muttr_node::SeedOptions::new("127.0.0.1:0".parse().unwrap(), 62)
        },
        muttr_node::store::SqliteStore::open(
            full_dir.path(),
            muttr_node::store::Quotas::from_config(&config),
        )
        .unwrap(),
        muttr_node::net::Clock::system(),
    )
    .await
    .unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    let (state2, seed2) = pod_state(dir2.path(), test_config()).await;
    seed2.bootstrap(vec![full.local_addr()]).await.unwrap();
    let app2 = router(state2);
    let hex3 = value::to_hex(&value::opaque_message(&mut rng, 300));
    let a = post_text(&app2, "/messages", hex3).await;
    a.assert_error(503);
    assert!(a.body.contains("no seed besides"), "{}", a.body);
}

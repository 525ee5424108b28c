//! Two `muttr-pod` processes on one PostgreSQL database (`--database`), as two replicas of
//! one pod behind a load balancer: a notify through one is pushed by the other (P-S2), a
//! token issued by one is used at the other, and SIGKILL of one replica under load loses no
//! acknowledged entry (P-A9) — a replica started again plays them all back.
//!
//! Needs the test cluster (`MUTTR_TEST_POSTGRES`, see `tests/common/pg.rs`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::process::Process;
use common::{User, signed, user};
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The host users name the pod by, the same for both replicas.
const HOST: &str = "pod.test";

/// A replica: a `muttr-pod` process on `db`, its seed's values in `dir`.
fn replica(db: &str, dir: &Path) -> Process {
    let config = dir.join("pod.toml");
    // Loopback is exempt from the per-IP limit: the load below comes from one address.
    std::fs::write(&config, "[pod]\nexempt_loopback = true\n").unwrap();
    Process::start(
        env!("CARGO_BIN_EXE_muttr-pod").as_ref(),
        [
            "--config".as_ref(),
            config.as_os_str(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--public-host".as_ref(),
            HOST.as_ref(),
            "--seed-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
            "--database".as_ref(),
            db.as_ref(),
            "--log".as_ref(),
            "warn".as_ref(),
        ],
    )
}

/// One request; `None` when no answer came (a killed replica).
async fn try_http(method: &str, url: &str, body: &str) -> Option<(u16, String)> {
    common::try_http(method, url, body)
        .await
        .map(|a| (a.status.as_u16(), a.body))
}

async fn ok(method: &str, url: &str, body: &str) -> Value {
    let (status, text) = try_http(method, url, body).await.expect("an answer");
    assert_eq!(status, 200, "{method} {url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// Registers `u` through one replica and gives it `alias` through another.
async fn enrol(first: &str, second: &str, u: &User, alias: &str) {
    ok("POST", &format!("{first}/"), &u.armored).await;
    ok(
        "POST",
        &format!("{second}/aliases"),
        &signed(u, &[("alias", alias)]),
    )
    .await;
}

/// `from` notifies `to_alias` of `key` through `pod`.
fn notify_text(from: &User, from_alias: &str, key: &str) -> String {
    signed(
        from,
        &[("from", &format!("{from_alias}@{HOST}")), ("key", key)],
    )
}

/// The keys of `u`'s inbox, asking the token of `issuer` and playing back at `reader`.
async fn inbox(issuer: &str, reader: &str, u: &User) -> Vec<(String, u64)> {
    let t = ok(
        "POST",
        &format!("{issuer}/tokens"),
        &signed(u, &[("resource", "/inboxes"), ("method", "GET")]),
    )
    .await;
    let token = t["token"]["value"].as_str().unwrap().to_string();
    let v = ok("GET", &format!("{reader}/inboxes?token={token}"), "").await;
    let mut out = Vec::new();
    for group in v["messages"].as_array().unwrap() {
        for m in group["messages"].as_array().unwrap() {
            out.push((
                m["key"].as_str().unwrap().to_string(),
                m["id"].as_str().unwrap().parse().unwrap(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_through_one_replica_is_pushed_by_the_other_within_a_second() {
    let Some(db) = common::pg::fresh_database().await else {
        return;
    };
    let (da, db_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = replica(&db, da.path());
    let b = replica(&db, db_dir.path());
    let (ua, ub) = (a.url(), b.url());
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&ua, &ub, &alice, "alice").await;
    enrol(&ub, &ua, &bob, "bob").await;

    // Alice listens at B (P-S1: the hex of an auth text, the first frame).
    let ws_url = ub.replacen("http://", "ws://", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{ws_url}/"))
        .await
        .unwrap();
    let frame = hex::encode(signed(&alice, &[]));
    ws.send(Message::Text(frame.into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Bob notifies her through A.
    let key = "ab".repeat(20);
    let sent = std::time::Instant::now();
    let v = ok(
        "POST",
        &format!("{ua}/inboxes/alice"),
        &notify_text(&bob, "bob", &key),
    )
    .await;
    let id = v["message"]["id"].as_str().unwrap().to_string();
    let pushed = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("the socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("pushed by the other replica within 1 s (P-S2)");
    let got: Value = serde_json::from_str(&pushed).unwrap();
    assert_eq!(got["key"], key);
    assert_eq!(
        got["id"].as_str(),
        Some(id.as_str()),
        "the frame carries the id"
    );
    assert_eq!(got["sender"]["userID"], format!("bob@{HOST}"));
    eprintln!("pushed across replicas in {:?}", sent.elapsed());
    // The token Alice gets from A plays back at B.
    let entries = inbox(&ua, &ub, &alice).await;
    assert_eq!(entries, vec![(key, id.parse().unwrap())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_replica_under_load_loses_no_acknowledged_entry() {
    let Some(db) = common::pg::fresh_database().await else {
        return;
    };
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut a = replica(&db, dirs[0].path());
    let b = replica(&db, dirs[1].path());
    let (ua, ub) = (a.url(), b.url());
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&ua, &ub, &alice, "alice").await;
    enrol(&ub, &ua, &bob, "bob").await;
    let alice = Arc::new(alice);

    // Four clients notify bob, alternating between the replicas; A is killed mid-way.
    const EACH: usize = 60;
    let acked_total = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (ua, ub, alice, acked_total) =
            (ua.clone(), ub.clone(), alice.clone(), acked_total.clone());
        clients.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut refused = 0;
            for i in 0..EACH {
                let key = format!("{c:02x}{i:038x}");
                let to = if (c + i) % 2 == 0 { &ua } else { &ub };
                let url = format!("{to}/inboxes/bob");
                match try_http("POST", &url, &notify_text(&alice, "alice", &key)).await {
                    Some((200, text)) => {
                        let v: Value = serde_json::from_str(&text).unwrap();
                        let id: u64 = v["message"]["id"].as_str().unwrap().parse().unwrap();
                        acked.push((key, id, to == &ua));
                        acked_total.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => refused += 1,
                }
            }
            (acked, refused)
        }));
    }
    while acked_total.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.kill();
    let mut acked = Vec::new();
    let mut refused = 0;
    for c in clients {
        let (list, r) = c.await.unwrap();
        acked.extend(list);
        refused += r;
    }
    let through_a = acked.iter().filter(|(_, _, at_a)| *at_a).count();
    assert!(
        through_a > 0,
        "some entries were acknowledged by A before it died"
    );
    assert!(refused > 0, "requests to A failed once it was killed");
    assert!(acked.len() > through_a, "B went on acknowledging");

    // A replica started again (a fresh process on the same database) plays every
    // acknowledged entry back, with the id its acknowledgement gave.
    let a2 = replica(&db, dirs[2].path());
    for (issuer, reader) in [(&ub, &a2.url()), (&a2.url(), &ub)] {
        let held: BTreeSet<(String, u64)> = inbox(issuer, reader, &bob).await.into_iter().collect();
        for (key, id, _) in &acked {
            assert!(
                held.contains(&(key.clone(), *id)),
                "acknowledged entry {key} (id {id}) is missing"
            );
        }
        let ids: BTreeSet<u64> = held.iter().map(|(_, id)| *id).collect();
        assert_eq!(ids.len(), held.len(), "distinct ids");
    }
    eprintln!(
        "{} acknowledged ({through_a} by A before SIGKILL), {refused} refused; all played back",
        acked.len()
    );
}

/// A PostgreSQL cluster of this test's own (`scripts/pg-test-cluster.sh` with its own state
/// file), so that it can be taken down and brought back; stopped when dropped.
struct OwnCluster {
    state: std::path::PathBuf,
    url: String,
}

impl OwnCluster {
    fn script(&self, cmd: &str) -> std::process::Output {
        std::process::Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../scripts/pg-test-cluster.sh"
            ))
            .arg(cmd)
            .env("MUTTR_PG_STATE", &self.state)
            .output()
            .unwrap()
    }

    /// Starts one, or `None` (a note; a failure in CI) when PostgreSQL is not installed.
    fn start() -> Option<OwnCluster> {
        let mut c = OwnCluster {
            state: std::env::temp_dir()
                .join(format!("muttr-pg-outage-{}.state", std::process::id())),
            url: String::new(),
        };
        if !c.script("available").status.success() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI has PostgreSQL installed"
            );
            eprintln!("PostgreSQL is not installed: outage case skipped");
            return None;
        }
        let out = c.script("start");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        c.url = text
            .trim()
            .trim_start_matches("export MUTTR_TEST_POSTGRES=")
            .to_string();
        Some(c)
    }

    fn down(&self) {
        assert!(self.script("down").status.success());
    }

    fn up(&self) {
        let out = self.script("up");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_the_pod_recovers_losing_nothing() {
    let Some(cluster) = OwnCluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pod = replica(&cluster.url, dir.path());
    let url = pod.url();
    let (alice, bob) = (user("alice"), user("bob"));
    enrol(&url, &url, &alice, "alice").await;
    enrol(&url, &url, &bob, "bob").await;
    let notify = |key: String| {
        let (url, text) = (url.clone(), notify_text(&alice, "alice", &key));
        async move { try_http("POST", &format!("{url}/inboxes/bob"), &text).await }
    };
    let mut acked = vec![];
    let before = "11".repeat(20);
    assert_eq!(notify(before.clone()).await.map(|r| r.0), Some(200));
    acked.push(before);

    cluster.down();
    let (status, body) = notify("22".repeat(20)).await.expect("an answer");
    assert_eq!(status, 503, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["error"].as_str().unwrap().contains("database"), "{body}");
    let (status, _) = try_http("GET", &format!("{url}/healthz"), "")
        .await
        .unwrap();
    assert_eq!(status, 503, "/healthz says the storage is down");

    cluster.up();
    // The pod recovers by itself: the next requests succeed (a few tries while the pool
    // makes new connections).
    let mut recovered = false;
    for i in 0..50 {
        let key = format!("33{i:038x}");
        if let Some((200, _)) = notify(key.clone()).await {
            acked.push(key);
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the pod answers again once the database is back");
    let held: BTreeSet<String> = inbox(&url, &url, &bob)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    for key in &acked {
        assert!(held.contains(key), "acknowledged {key} is missing");
    }
    assert!(
        !held.contains(&"22".repeat(20)),
        "the refused entry was not stored"
    );
}

//! The storage contract, run against both backends: SQLite (a temporary directory) and
//! PostgreSQL (a fresh database in the cluster named by `MUTTR_TEST_POSTGRES`, which
//! `scripts/pg-test-cluster.sh start` provides; `scripts/test.sh` and `.ci/run` start one).
//! Without it the PostgreSQL cases say so and pass outside CI; in CI (`CI` set) they fail.
//!
//! Then what only several replicas on one database show: entry ids that become visible in
//! order whichever replica writes them (P-X1), a token or a nonce spent once across replicas
//! (P-A6, P-A2), every replica hearing every new entry (P-S2).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use muttr_pod::storage::postgres::CHANNEL;
use muttr_pod::storage::{AliasOutcome, InboxEntry, Party, Registration, Storage};
use muttr_pod::tokens::{Grant, TokenStore};

/// A backend under test, reopenable (a restart of the pod).
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A fresh database in the test cluster, or `None` (with a note) when there is none.
    async fn postgres() -> Option<Backend> {
        common::pg::fresh_database().await.map(Backend::Postgres)
    }

    async fn open(&self) -> Storage {
        match self {
            Backend::Sqlite(dir) => Storage::open(dir.path()).unwrap(),
            Backend::Postgres(url) => Storage::connect(url).await.unwrap(),
        }
    }
}

/// Runs `$name(backend)` as two tests, `$name::sqlite` and `$name::postgres`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name(super::Backend::sqlite()).await
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(b) = super::Backend::postgres().await {
                    super::$name(b).await
                }
            }
        }
    )*};
}

both!(
    registration_is_idempotent_and_refuses_a_second_text_of_one_key,
    aliases_belong_to_one_identity,
    nonces_are_single_use_until_they_expire_and_survive_a_restart,
    inbox_entries_get_increasing_ids_and_survive_a_restart_until_purged,
    the_keepalive_set_follows_the_inboxes_and_survives_a_restart,
    tokens_are_single_use_bound_to_their_route_and_expire,
    counts_count_rows,
);

fn entry(key: &str) -> InboxEntry {
    InboxEntry {
        recipient: Party {
            user_id: "bob@pod".into(),
            pubkeyhash: "b".repeat(40),
        },
        sender: Party {
            user_id: "alice@pod".into(),
            pubkeyhash: "a".repeat(40),
        },
        key: key.into(),
        timestamp: 7,
        id: None,
    }
}

async fn registration_is_idempotent_and_refuses_a_second_text_of_one_key(b: Backend) {
    let s = b.open().await;
    assert!(matches!(
        s.register("h1", "fp", "text1", 5).await.unwrap(),
        Registration::Created(_)
    ));
    match s.register("h1", "fp", "text1", 9).await.unwrap() {
        Registration::Existing(row) => assert_eq!(row.registered, 5),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.register("h2", "fp", "text2", 9).await.unwrap(),
        Registration::OtherText
    );
    assert_eq!(s.identity("h1").await.unwrap().unwrap().armored, "text1");
    assert!(s.identity("h2").await.unwrap().is_none());
}

async fn aliases_belong_to_one_identity(b: Backend) {
    let s = b.open().await;
    s.register("h1", "f1", "t1", 1).await.unwrap();
    s.register("h2", "f2", "t2", 1).await.unwrap();
    assert_eq!(
        s.add_alias("alice", "h1", 3).await.unwrap(),
        AliasOutcome::Created(3)
    );
    assert_eq!(
        s.add_alias("alice", "h1", 4).await.unwrap(),
        AliasOutcome::Existing(3)
    );
    assert_eq!(
        s.add_alias("alice", "h2", 4).await.unwrap(),
        AliasOutcome::Taken
    );
    assert_eq!(s.alias("alice").await.unwrap().unwrap().pubkeyhash, "h1");
    assert!(s.alias("bob").await.unwrap().is_none());
    // An alias for an unregistered identity breaks the foreign key: a failure, not "down".
    let e = s.add_alias("carol", "nobody", 5).await.unwrap_err();
    assert!(!e.unavailable(), "{e}");
}

async fn nonces_are_single_use_until_they_expire_and_survive_a_restart(b: Backend) {
    {
        let s = b.open().await;
        assert!(s.use_nonce("id", 100, 100, 200).await.unwrap());
        assert!(!s.use_nonce("id", 100, 150, 250).await.unwrap());
        assert!(s.use_nonce("other", 100, 150, 250).await.unwrap());
        assert!(s.use_nonce("id", 101, 150, 1_000).await.unwrap());
    }
    let s = b.open().await;
    assert!(!s.use_nonce("id", 101, 160, 1_000).await.unwrap());
    // After expiry the record is gone (the window check refuses such a nonce anyway).
    assert!(s.use_nonce("id", 100, 201, 300).await.unwrap());
}

async fn inbox_entries_get_increasing_ids_and_survive_a_restart_until_purged(b: Backend) {
    let (a, b2);
    {
        let s = b.open().await;
        a = s.add_entry("owner", &entry("k1")).await.unwrap();
        b2 = s.add_entry("owner", &entry("k2")).await.unwrap();
        s.add_entry("someone", &entry("k3")).await.unwrap();
        assert!(b2 > a);
    }
    let s = b.open().await;
    let got = s.entries("owner").await.unwrap();
    let keys: Vec<_> = got.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2"]);
    assert_eq!(got[0].recipient.pubkeyhash, "owner");
    assert_eq!(got[0].id, Some(a.to_string()));
    assert_eq!(got[1].id, Some(b2.to_string()));
    // After a restart new ids are still higher, even once the newest was purged.
    let c = s.add_entry("owner", &entry("k4")).await.unwrap();
    assert!(c > b2);
    assert_eq!(s.purge_upto("owner", b2).await.unwrap(), 2);
    let left: Vec<_> = s.entries("owner").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].key, "k4");
    assert_eq!(s.purge_upto("owner", u64::MAX).await.unwrap(), 1);
    let d = s.add_entry("owner", &entry("k5")).await.unwrap();
    assert!(d > c, "ids are never reused");
    assert_eq!(s.purge("owner").await.unwrap(), 1);
    assert!(s.entries("owner").await.unwrap().is_empty());
    assert_eq!(s.entries("someone").await.unwrap().len(), 1);
}

async fn the_keepalive_set_follows_the_inboxes_and_survives_a_restart(b: Backend) {
    {
        let s = b.open().await;
        s.add_entry("a", &entry("k1")).await.unwrap();
        s.add_entry("b", &entry("k1")).await.unwrap();
        s.add_entry("b", &entry("k2")).await.unwrap();
        s.keepalive_add("k1", 5).await.unwrap();
        s.keepalive_add("k1", 6).await.unwrap(); // idempotent
    }
    let s = b.open().await;
    let set = |v: &[&str]| v.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(s.inbox_keys().await.unwrap(), set(&["k1", "k2"]));
    assert_eq!(s.keepalive_keys().await.unwrap(), set(&["k1"]));
    s.purge("b").await.unwrap();
    assert_eq!(
        s.inbox_keys().await.unwrap(),
        set(&["k1"]),
        "a still names k1"
    );
    s.keepalive_remove("k1").await.unwrap();
    assert!(s.keepalive_keys().await.unwrap().is_empty());
}

fn grant(issued: u64) -> Grant {
    Grant {
        identity: "me".into(),
        resource: "/inboxes".into(),
        method: "GET".into(),
        issued,
    }
}

async fn tokens_are_single_use_bound_to_their_route_and_expire(b: Backend) {
    let s = b.open().await;
    let t = TokenStore::new(30_000);
    t.insert(&s, "a".into(), grant(1_000), 1_000).await.unwrap();
    let e = t
        .consume(&s, "a", "/inboxes", "DELETE", 2_000)
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);
    assert!(e.message.contains("GET /inboxes"), "{e}");
    assert_eq!(
        t.consume(&s, "a", "/inboxes", "GET", 2_000).await.unwrap(),
        "me",
        "the wrong route did not spend it"
    );
    let e = t
        .consume(&s, "a", "/inboxes", "GET", 2_000)
        .await
        .unwrap_err();
    assert!(e.message.contains("already used"), "{e}");
    t.insert(&s, "b".into(), grant(1_000), 1_000).await.unwrap();
    assert!(t.consume(&s, "b", "/inboxes", "GET", 30_999).await.is_ok());
    t.insert(&s, "c".into(), grant(1_000), 1_000).await.unwrap();
    let e = t
        .consume(&s, "c", "/inboxes", "GET", 31_000)
        .await
        .unwrap_err();
    assert!(e.message.contains("expired"), "{e}");
}

async fn counts_count_rows(b: Backend) {
    let s = b.open().await;
    s.register("h1", "f1", "t1", 1).await.unwrap();
    s.add_alias("alice", "h1", 1).await.unwrap();
    s.add_entry("h1", &entry("k1")).await.unwrap();
    s.add_entry("h1", &entry("k2")).await.unwrap();
    s.keepalive_add("k1", 1).await.unwrap();
    let c = s.counts().await.unwrap();
    assert_eq!(
        (c.identities, c.aliases, c.inbox_entries, c.kept_alive),
        (1, 1, 2, 1)
    );
    s.check_writable().await.unwrap();
}

// ------------------------------------------------------------------ several replicas

/// Two replicas of one database (two pools, as two pod processes have).
async fn two_replicas() -> Option<(Storage, Storage)> {
    let url = common::pg::fresh_database().await?;
    Some((
        Storage::connect(&url).await.unwrap(),
        Storage::connect(&url).await.unwrap(),
    ))
}

/// P-X1 across replicas: entries written concurrently to one inbox through two replicas get
/// distinct ids, and a reader never sees a lower id appear after a higher one (so a purge up
/// to what it saw can never delete an entry it had not seen).
#[tokio::test]
async fn ids_become_visible_in_order_whichever_replica_writes() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let (a, b) = (Arc::new(a), Arc::new(b));
    const EACH: usize = 60;
    let mut writers = Vec::new();
    for (w, s) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                s.add_entry("bob", &entry(&format!("{w}-{i}")))
                    .await
                    .unwrap();
            }
        }));
    }
    // A reader on each replica, watching for an id that shows up below one already seen.
    let mut readers = Vec::new();
    for s in [a.clone(), b.clone()] {
        readers.push(tokio::spawn(async move {
            let mut seen: BTreeSet<u64> = BTreeSet::new();
            let mut late: Vec<u64> = Vec::new();
            for _ in 0..200 {
                let now: BTreeSet<u64> = ids_of(&s, "bob").await.into_iter().collect();
                let top = seen.last().copied().unwrap_or(0);
                late.extend(now.iter().filter(|id| **id < top && !seen.contains(id)));
                seen.extend(now);
                if seen.len() == 4 * EACH {
                    break;
                }
                tokio::task::yield_now().await;
            }
            late
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    for r in readers {
        let late = r.await.unwrap();
        assert!(
            late.is_empty(),
            "ids that appeared below a seen one: {late:?}"
        );
    }
    let ids = ids_of(&a, "bob").await;
    assert_eq!(ids.len(), 4 * EACH);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "distinct, ordered");
}

/// The ids of `owner`'s entries, oldest first.
async fn ids_of(s: &Storage, owner: &str) -> Vec<u64> {
    s.entries(owner)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id.as_deref().unwrap().parse().unwrap())
        .collect()
}

/// A token issued through one replica is spent once, whichever replicas it is offered to at
/// the same time; a nonce accepted by one is a replay at the other.
#[tokio::test]
async fn tokens_and_nonces_are_spent_once_across_replicas() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let t = TokenStore::new(30_000);
    for round in 0..20 {
        let value = format!("token-{round}");
        t.insert(&a, value.clone(), grant(1_000), 1_000)
            .await
            .unwrap();
        let (x, y) = tokio::join!(
            t.consume(&a, &value, "/inboxes", "GET", 2_000),
            t.consume(&b, &value, "/inboxes", "GET", 2_000),
        );
        assert_eq!(
            usize::from(x.is_ok()) + usize::from(y.is_ok()),
            1,
            "round {round}: {x:?} {y:?}"
        );
    }
    assert!(a.use_nonce("alice", 5, 10, 1_000).await.unwrap());
    assert!(!b.use_nonce("alice", 5, 11, 1_000).await.unwrap());
}

/// Every replica hears every new entry, with its id, promptly (P-S2 asks for 1 s).
#[tokio::test]
async fn every_replica_hears_every_new_entry() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let mut heard_a = a.postgres().unwrap().listen().await.unwrap();
    let mut heard_b = b.postgres().unwrap().listen().await.unwrap();
    let id = a.add_entry("bob", &entry("k1")).await.unwrap();
    for heard in [&mut heard_a, &mut heard_b] {
        let (owner, frame) = tokio::time::timeout(Duration::from_secs(1), heard.recv())
            .await
            .expect("within 1 s")
            .expect("listening");
        assert_eq!(owner, "bob");
        let got: InboxEntry = serde_json::from_str(&frame).unwrap();
        assert_eq!(got.id, Some(id.to_string()));
        assert_eq!(got.key, "k1");
    }
    assert_eq!(CHANNEL, "muttr_inbox");
}

/// An unreachable database at start is an error naming it, and says it is unreachable.
#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let e = Storage::connect("postgres://muttr@127.0.0.1:1/nowhere?connect_timeout=2")
        .await
        .unwrap_err();
    assert!(e.unavailable(), "{e}");
    let text = e.to_string();
    assert!(text.contains("127.0.0.1:1/nowhere"), "{text}");
    let e = Storage::connect("mysql://x").await.unwrap_err();
    assert!(e.to_string().contains("database URL"), "{e}");
}

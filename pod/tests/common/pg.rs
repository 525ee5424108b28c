//! The PostgreSQL test cluster: `MUTTR_TEST_POSTGRES` (an admin URL, as
//! `scripts/pg-test-cluster.sh start` prints) and a fresh database in it per test.

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

/// The admin URL of the test cluster. Without one: `None` and a note, outside CI; a panic in
/// CI (`CI` set), where the Postgres tests must run.
pub fn admin_url() -> Option<String> {
    match std::env::var("MUTTR_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs the PostgreSQL tests: start a cluster with \
                 `eval \"$(bash scripts/pg-test-cluster.sh start)\"`"
            );
            eprintln!(
                "MUTTR_TEST_POSTGRES is not set: PostgreSQL case skipped \
                 (eval \"$(bash scripts/pg-test-cluster.sh start)\" to run it)"
            );
            None
        }
    }
}

/// Creates an empty database in the test cluster; its URL (the admin URL with the database
/// name replaced).
pub async fn fresh_database() -> Option<String> {
    let admin = admin_url()?;
    let name = format!(
        "muttr_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("the test cluster at {admin}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (admin.as_str(), String::new()),
    };
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    Some(format!("{root}/{name}{query}"))
}

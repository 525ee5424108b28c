//! [`Sqlite`]: the pod's durable state in one SQLite file — identities, aliases, inbox
//! entries, accepted nonces and the keep-alive set — the embedded default backend.
//!
//! Durability (P-A9): `journal_mode = WAL`, `synchronous = FULL`; every write is one
//! transaction fsynced before the handler answers, so an acknowledged registration, alias or
//! inbox entry survives `kill -9` and power loss. The schema is versioned with
//! `PRAGMA user_version` and upgraded by [`MIGRATIONS`] at open.
//!
//! Accepted nonces go through a second connection with `synchronous = NORMAL`: in WAL mode a
//! killed process loses none of them (the WAL is in the OS's cache), only a power loss can
//! forget the last ones — and a forgotten nonce can only be replayed within its 5-minute
//! window. This halves the fsyncs of an authenticated write (one for the entry, none for the
//! nonce).
//!
//! Calls are synchronous under a mutex per connection: each is a single indexed statement taking
//! microseconds plus one fsync for writes. Running them inline (not on a blocking pool) keeps
//! the pod deterministic under the simulator's paused clock, where a blocking-pool task would
//! let virtual time run while it works.
//!
//! One process owns the file: tokens and WebSocket subscribers stay in that process's memory,
//! so several replicas need the PostgreSQL backend ([`super::postgres`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AliasOutcome, Counts, IdentityRow, InboxEntry, Party, Registration, StorageError, WriteLatency,
    err,
};

/// A connection held for one write; the time from taking it to dropping it (after the
/// commit) is observed under its operation.
struct Timed<'a> {
    conn: MutexGuard<'a, Connection>,
    op: &'static str,
    start: Instant,
    latency: &'a WriteLatency,
}

impl std::ops::Deref for Timed<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Timed<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.latency
            .get_or_create(&vec![("op".to_string(), self.op.to_string())])
            .observe(self.start.elapsed().as_secs_f64());
    }
}

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "pod.sqlite3";

/// Schema migrations, applied in order; `user_version` counts those applied.
pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE identities (
        pubkeyhash TEXT PRIMARY KEY NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        armored TEXT NOT NULL,
        registered INTEGER NOT NULL
    );
    CREATE TABLE aliases (
        name TEXT PRIMARY KEY NOT NULL,
        pubkeyhash TEXT NOT NULL REFERENCES identities(pubkeyhash),
        created INTEGER NOT NULL
    );
    CREATE INDEX aliases_by_owner ON aliases(pubkeyhash);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        recipient_user TEXT NOT NULL,
        sender_user TEXT NOT NULL,
        sender_hash TEXT NOT NULL,
        key TEXT NOT NULL,
        timestamp INTEGER NOT NULL
    );
    CREATE INDEX inbox_by_owner ON inbox(owner, id);
    CREATE TABLE nonces (
        identity TEXT NOT NULL,
        nonce INTEGER NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (identity, nonce)
    ) WITHOUT ROWID;
    CREATE INDEX nonces_by_expiry ON nonces(expires);",
    // P-X2: the keys whose values the pod's seed keeps alive for its users.
    "CREATE TABLE keepalive (
        key TEXT PRIMARY KEY NOT NULL,
        adopted INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// Reads `pubkeyhash, fingerprint, armored, registered` columns.
fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityRow> {
    Ok(IdentityRow {
        pubkeyhash: r.get(0)?,
        fingerprint: r.get(1)?,
        armored: r.get(2)?,
        registered: r.get::<_, i64>(3)? as u64,
    })
}

/// The pod's database in one SQLite file.
#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    nonces: Mutex<Connection>,
    path: PathBuf,
    latency: WriteLatency,
}

impl Sqlite {
    /// Opens (or creates) the database in `dir`, applying pending migrations.
    pub fn open(dir: &Path) -> Result<Sqlite, StorageError> {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let mut conn =
            Connection::open(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(err(format!("journal_mode is {mode}, WAL required")));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(err)? as usize;
        if version > MIGRATIONS.len() {
            return Err(err(format!(
                "{} has schema version {version}, newer than this pod ({})",
                path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction().map_err(err)?;
            tx.execute_batch(m).map_err(err)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        let nonces =
            Connection::open(&path).map_err(|e| err(format!("{}: {e}", path.display())))?;
        nonces
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        nonces
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        let latency = super::write_latency();
        Ok(Sqlite {
            conn: Mutex::new(conn),
            nonces: Mutex::new(nonces),
            path,
            latency,
        })
    }

    /// Moves the write-ahead log into the database file (at shutdown: every commit is already
    /// durable with `synchronous = FULL`; this leaves a single self-contained file).
    pub fn checkpoint(&self) -> Result<(), StorageError> {
        self.conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(err)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long each write took, by operation (for the metrics).
    pub fn write_latency(&self) -> &WriteLatency {
        &self.latency
    }

    /// The connection, held for one timed write named `op`.
    fn write(&self, op: &'static str) -> Timed<'_> {
        self.timed(self.conn(), op)
    }

    /// `conn`, held for one write named `op`, timed from now until it is dropped.
    fn timed<'a>(&'a self, conn: MutexGuard<'a, Connection>, op: &'static str) -> Timed<'a> {
        Timed {
            conn,
            op,
            start: Instant::now(),
            latency: &self.latency,
        }
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a key (`POST /`).
    pub fn register(
        &self,
        pubkeyhash: &str,
        fingerprint: &str,
        armored: &str,
        now_ms: u64,
    ) -> Result<Registration, StorageError> {
        let mut conn = self.write("register");
        let tx = conn.transaction().map_err(err)?;
        let existing: Option<(String, String, i64)> = tx
            .query_row(
                "SELECT pubkeyhash, armored, registered FROM identities WHERE fingerprint = ?1",
                params![fingerprint],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(err)?;
        if let Some((hash, text, registered)) = existing {
            return Ok(if hash == pubkeyhash {
                Registration::Existing(IdentityRow {
                    pubkeyhash: hash,
                    fingerprint: fingerprint.to_string(),
                    armored: text,
                    registered: registered as u64,
                })
            } else {
                Registration::OtherText
            });
        }
        tx.execute(
            "INSERT INTO identities (pubkeyhash, fingerprint, armored, registered) VALUES (?1, ?2, ?3, ?4)",
            params![pubkeyhash, fingerprint, armored, now_ms as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(Registration::Created(IdentityRow {
            pubkeyhash: pubkeyhash.to_string(),
            fingerprint: fingerprint.to_string(),
            armored: armored.to_string(),
            registered: now_ms,
        }))
    }

    /// The identity registered under `pubkeyhash`.
    pub fn identity(&self, pubkeyhash: &str) -> Result<Option<IdentityRow>, StorageError> {
        self.conn()
            .query_row(
                "SELECT pubkeyhash, fingerprint, armored, registered FROM identities WHERE pubkeyhash = ?1",
                params![pubkeyhash],
                identity_row,
            )
            .optional()
            .map_err(err)
    }

    /// Gives `name` to the identity `pubkeyhash` (`POST /aliases`).
    pub fn add_alias(
        &self,
        name: &str,
        pubkeyhash: &str,
        now_ms: u64,
    ) -> Result<AliasOutcome, StorageError> {
        let mut conn = self.write("alias");
        let tx = conn.transaction().map_err(err)?;
        let existing: Option<(String, i64)> = tx
            .query_row(
                "SELECT pubkeyhash, created FROM aliases WHERE name = ?1",
                params![name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        if let Some((owner, created)) = existing {
            return Ok(if owner == pubkeyhash {
                AliasOutcome::Existing(created as u64)
            } else {
                AliasOutcome::Taken
            });
        }
        tx.execute(
            "INSERT INTO aliases (name, pubkeyhash, created) VALUES (?1, ?2, ?3)",
            params![name, pubkeyhash, now_ms as i64],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(AliasOutcome::Created(now_ms))
    }

    /// The identity behind an alias.
    pub fn alias(&self, name: &str) -> Result<Option<IdentityRow>, StorageError> {
        self.conn()
            .query_row(
                "SELECT i.pubkeyhash, i.fingerprint, i.armored, i.registered
                 FROM aliases a JOIN identities i ON a.pubkeyhash = i.pubkeyhash
                 WHERE a.name = ?1",
                params![name],
                identity_row,
            )
            .optional()
            .map_err(err)
    }

    /// Records an accepted `(identity, nonce)`; false when it was accepted before (replay,
    /// P-A2). Forgets nonces past `expires` of others on the way (they would be refused by
    /// the window check anyway).
    pub fn use_nonce(
        &self,
        identity: &str,
        nonce: u64,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<bool, StorageError> {
        let conn = self.timed(
            self.nonces.lock().unwrap_or_else(|p| p.into_inner()),
            "nonce",
        );
        conn.execute(
            "DELETE FROM nonces WHERE expires < ?1",
            params![now_ms as i64],
        )
        .map_err(err)?;
        let inserted = conn
            .execute(
                "INSERT OR IGNORE INTO nonces (identity, nonce, expires) VALUES (?1, ?2, ?3)",
                params![identity, nonce as i64, expires_ms as i64],
            )
            .map_err(err)?;
        Ok(inserted == 1)
    }

    /// Adds an inbox entry for the identity `owner` (`POST /inboxes/:alias`); returns its id
    /// (P-X1). Ids come from SQLite's `AUTOINCREMENT`, which never reuses one, even after the
    /// newest entry is purged: strictly increasing within an inbox (and across the pod).
    pub fn add_entry(&self, owner: &str, entry: &InboxEntry) -> Result<u64, StorageError> {
        let conn = self.write("inbox_add");
        conn.execute(
            "INSERT INTO inbox (owner, recipient_user, sender_user, sender_hash, key, timestamp)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                owner,
                entry.recipient.user_id,
                entry.sender.user_id,
                entry.sender.pubkeyhash,
                entry.key,
                entry.timestamp as i64
            ],
        )
        .map_err(err)?;
        Ok(conn.last_insert_rowid() as u64)
    }

    /// Every inbox entry of `owner`, oldest first.
    pub fn entries(&self, owner: &str) -> Result<Vec<InboxEntry>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT recipient_user, sender_user, sender_hash, key, timestamp, id
                 FROM inbox WHERE owner = ?1 ORDER BY id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![owner], |r| {
                Ok(InboxEntry {
                    recipient: Party {
                        user_id: r.get(0)?,
                        pubkeyhash: owner.to_string(),
                    },
                    sender: Party {
                        user_id: r.get(1)?,
                        pubkeyhash: r.get(2)?,
                    },
                    key: r.get(3)?,
                    timestamp: r.get::<_, i64>(4)? as u64,
                    id: Some(r.get::<_, i64>(5)?.to_string()),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(err)
    }

    /// Deletes every inbox entry of `owner` (`DELETE /inboxes`); returns how many.
    pub fn purge(&self, owner: &str) -> Result<usize, StorageError> {
        self.write("purge")
            .execute("DELETE FROM inbox WHERE owner = ?1", params![owner])
            .map_err(err)
    }

    /// Deletes the inbox entries of `owner` whose id is at most `upto`
    /// (`DELETE /inboxes?upto=ID`, P-X1); returns how many.
    pub fn purge_upto(&self, owner: &str, upto: u64) -> Result<usize, StorageError> {
        // SQLite's integers are i64; an `upto` beyond them covers every id there is.
        let upto = i64::try_from(upto).unwrap_or(i64::MAX);
        self.write("purge")
            .execute(
                "DELETE FROM inbox WHERE owner = ?1 AND id <= ?2",
                params![owner, upto],
            )
            .map_err(err)
    }

    /// Every distinct message key named by an inbox entry of any user (P-X2).
    pub fn inbox_keys(&self) -> Result<BTreeSet<String>, StorageError> {
        self.string_column("SELECT DISTINCT key FROM inbox")
    }

    /// Every key the pod keeps alive (P-X2).
    pub fn keepalive_keys(&self) -> Result<BTreeSet<String>, StorageError> {
        self.string_column("SELECT key FROM keepalive")
    }

    /// Records that the pod keeps `key` alive (adopted at `now_ms`).
    pub fn keepalive_add(&self, key: &str, now_ms: u64) -> Result<(), StorageError> {
        self.write("keepalive")
            .execute(
                "INSERT OR IGNORE INTO keepalive (key, adopted) VALUES (?1, ?2)",
                params![key, now_ms as i64],
            )
            .map_err(err)?;
        Ok(())
    }

    /// Forgets that the pod keeps `key` alive.
    pub fn keepalive_remove(&self, key: &str) -> Result<(), StorageError> {
        self.write("keepalive")
            .execute("DELETE FROM keepalive WHERE key = ?1", params![key])
            .map_err(err)?;
        Ok(())
    }

    fn string_column(&self, sql: &str) -> Result<BTreeSet<String>, StorageError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(err)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        let keys: Result<Vec<String>, _> = rows.collect();
        Ok(crate::keepalive::set(keys.map_err(err)?))
    }

    /// Whether the database takes writes now (`/healthz`, P-X3): takes SQLite's write lock
    /// and releases it, writing nothing. A read-only file or mount, or a lock held elsewhere
    /// past the busy timeout, is an error.
    pub fn check_writable(&self) -> Result<(), StorageError> {
        let conn = self.conn();
        // A probe answers quickly: wait for the lock 1 s, not the 5 s requests may.
        conn.busy_timeout(std::time::Duration::from_secs(1))
            .map_err(err)?;
        let r = conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| {
                let _ = conn.execute_batch("ROLLBACK;");
                err(e)
            });
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        r
    }

    /// Row counts (identities, aliases, inbox entries, values kept alive), for the metrics
    /// and the status page.
    pub fn counts(&self) -> Result<Counts, StorageError> {
        let conn = self.conn();
        let count = |table: &str| -> Result<u64, StorageError> {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(err)
        };
        Ok(Counts {
            identities: count("identities")?,
            aliases: count("aliases")?,
            inbox_entries: count("inbox")?,
            kept_alive: count("keepalive")?,
        })
    }
}

#[cfg(test)]
mod tests {
    //! What only SQLite has; the behaviour both backends share is `pod/tests/storage.rs`.
    use super::*;
    use crate::storage::WRITE_OPS;

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

    #[test]
    fn each_write_is_timed_under_its_operation() {
        let dir = tempfile::tempdir().unwrap();
        let s = Sqlite::open(dir.path()).unwrap();
        s.register("h1", "f1", "t1", 1).unwrap();
        s.add_entry("h1", &entry("k1")).unwrap();
        s.add_entry("h1", &entry("k2")).unwrap();
        s.alias("nobody").unwrap();
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("w", "writes", s.write_latency().clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("w_count{op=\"register\"} 1"), "{text}");
        assert!(text.contains("w_count{op=\"inbox_add\"} 2"), "{text}");
        assert!(text.contains("w_count{op=\"purge\"} 0"), "{text}");
        assert_eq!(
            text.matches("w_count{").count(),
            WRITE_OPS.len(),
            "reads are not timed"
        );
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Sqlite::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Sqlite::open(dir.path()).unwrap_err();
        assert!(e.0.contains("newer"), "{e}");
    }
}

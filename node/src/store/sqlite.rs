//! [`SqliteStore`]: a durable value store in one SQLite file.
//!
//! Why SQLite: the pod keeps its identities and inboxes in SQLite too, so one embedded engine
//! (built from source by rusqlite's `bundled` feature, nothing to install) serves the whole
//! project; its write-ahead log gives atomic, crash-safe commits; and a seed's file can be
//! inspected with the `sqlite3` shell.
//!
//! Durability: `journal_mode = WAL` with `synchronous = FULL`. Each `put` is one transaction
//! whose WAL frames are fsynced before `put` returns, so a STORE answered with `success: true`
//! survives `kill -9` and power loss alike. (`NORMAL` would survive a killed process but could
//! lose the last commits on power loss; one fsync per accepted STORE is cheap next to a
//! network round trip.)
//!
//! The schema is versioned with `PRAGMA user_version`; [`MIGRATIONS`] upgrades older files in
//! order when the store opens. Quotas (P-V4) are counted by the same [`Ledger`] as
//! [`super::MemStore`], rebuilt from the file at open.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use super::quota::Ledger;
use super::{Publication, PutOutcome, Quotas, StoreError, StoredValue, ValueStore};
use crate::id::{Key, NodeId};

/// The store's file name inside its data directory.
pub const FILE_NAME: &str = "values.sqlite3";

/// Schema migrations, applied in order; the file's `user_version` counts those applied.
/// Version 2 adds `publications`: what this seed published itself and when it republishes it
/// (P-K2), so a restarted seed goes on keeping its values alive.
pub const MIGRATIONS: &[&str] = &[
    "CREATE TABLE stored_values (
        key BLOB PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        publisher BLOB NOT NULL,
        timestamp INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX stored_values_by_timestamp ON stored_values(timestamp);",
    "CREATE TABLE publications (
        key BLOB PRIMARY KEY NOT NULL,
        value TEXT NOT NULL,
        republish_at INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// A durable value store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    quotas: Quotas,
    ledger: Ledger,
    path: PathBuf,
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn id_from_blob(b: Vec<u8>) -> Result<NodeId, StoreError> {
    let arr: [u8; 20] = b
        .try_into()
        .map_err(|_| StoreError::Io("corrupt identifier in store".into()))?;
    Ok(NodeId(arr))
}

impl SqliteStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path, quotas: Quotas) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(format!("{}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let conn = Connection::open(&path).map_err(|e| io(format!("{}: {e}", path.display())))?;
        let setup = || -> rusqlite::Result<()> {
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(rusqlite::Error::InvalidParameterName(format!(
                    "journal_mode is {mode}, WAL required"
                )));
            }
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            Ok(())
        };
        setup().map_err(|e| io(format!("{}: {e}", path.display())))?;
        let mut store = SqliteStore {
            conn,
            quotas,
            ledger: Ledger::default(),
            path,
        };
        store.migrate()?;
        store.rebuild_ledger()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| io(format!("{}: {e}", self.path.display())))?;
        let version = usize::try_from(version).map_err(io)?;
        if version > MIGRATIONS.len() {
            return Err(StoreError::Io(format!(
                "{} has schema version {version}, newer than this program ({})",
                self.path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction().map_err(io)?;
            tx.execute_batch(sql).map_err(io)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(io)?;
            tx.commit().map_err(io)?;
        }
        Ok(())
    }

    fn rebuild_ledger(&mut self) -> Result<(), StoreError> {
        let mut ledger = Ledger::default();
        let mut stmt = self
            .conn
            .prepare("SELECT key, value, publisher, timestamp FROM stored_values")
            .map_err(io)?;
        let rows = stmt.query_map([], row_parts).map_err(io)?;
        for row in rows {
            let v = to_value(row.map_err(io)?)?;
            ledger.add(&v);
        }
        drop(stmt);
        self.ledger = ledger;
        Ok(())
    }
}

type RowParts = (Vec<u8>, String, Vec<u8>, i64);

fn row_parts(r: &rusqlite::Row<'_>) -> rusqlite::Result<RowParts> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_value((key, value, publisher, timestamp): RowParts) -> Result<StoredValue, StoreError> {
    Ok(StoredValue {
        key: id_from_blob(key)?,
        value,
        publisher: id_from_blob(publisher)?,
        timestamp: u64::try_from(timestamp).map_err(io)?,
    })
}

impl ValueStore for SqliteStore {
    fn put(&mut self, v: StoredValue) -> Result<PutOutcome, StoreError> {
        if self.contains(&v.key) {
            return Ok(PutOutcome::AlreadyHeld);
        }
        self.ledger.check(&self.quotas, &v)?;
        let ts = i64::try_from(v.timestamp).map_err(io)?;
        self.conn
            .execute(
                "INSERT INTO stored_values (key, value, publisher, timestamp) VALUES (?1, ?2, ?3, ?4)",
                params![&v.key.0[..], v.value, &v.publisher.0[..], ts],
            )
            .map_err(io)?;
        self.ledger.add(&v);
        Ok(PutOutcome::Stored)
    }

    fn get(&self, key: &Key) -> Option<StoredValue> {
        let row = self
            .conn
            .query_row(
                "SELECT key, value, publisher, timestamp FROM stored_values WHERE key = ?1",
                params![&key.0[..]],
                row_parts,
            )
            .optional();
        match row {
            Ok(Some(parts)) => to_value(parts).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "store read failed");
                None
            }
        }
    }

    fn remove(&mut self, key: &Key) -> Result<bool, StoreError> {
        let Some(v) = self.get(key) else {
            return Ok(false);
        };
        self.conn
            .execute(
                "DELETE FROM stored_values WHERE key = ?1",
                params![&key.0[..]],
            )
            .map_err(io)?;
        self.ledger.remove(&v);
        Ok(true)
    }

    fn expire(&mut self, now_ms: u64, expiry_ms: u64) -> Result<usize, StoreError> {
        // timestamp + expiry <= now  ⇔  timestamp <= now - expiry
        let Some(cutoff) = now_ms.checked_sub(expiry_ms) else {
            return Ok(0);
        };
        let cutoff = i64::try_from(cutoff).map_err(io)?;
        let tx = self.conn.transaction().map_err(io)?;
        let gone: Vec<StoredValue> = {
            let mut stmt = tx
                .prepare(
                    "SELECT key, value, publisher, timestamp FROM stored_values WHERE timestamp <= ?1",
                )
                .map_err(io)?;
            let rows = stmt.query_map(params![cutoff], row_parts).map_err(io)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(to_value(r.map_err(io)?)?);
            }
            out
        };
        tx.execute(
            "DELETE FROM stored_values WHERE timestamp <= ?1",
            params![cutoff],
        )
        .map_err(io)?;
        tx.commit().map_err(io)?;
        for v in &gone {
            self.ledger.remove(v);
        }
        Ok(gone.len())
    }

    fn keys(&self) -> Vec<Key> {
        let collect = || -> Result<Vec<Key>, StoreError> {
            let mut stmt = self
                .conn
                .prepare("SELECT key FROM stored_values ORDER BY key")
                .map_err(io)?;
            let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0)).map_err(io)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(id_from_blob(r.map_err(io)?)?);
            }
            Ok(out)
        };
        collect().unwrap_or_else(|e| {
            tracing::error!(error = %e, "store read failed");
            Vec::new()
        })
    }

    fn len(&self) -> usize {
        self.ledger.values()
    }

    fn bytes(&self) -> u64 {
        self.ledger.bytes()
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        // Every put is already durable; fold the WAL into the main file so a copy of the
        // directory taken after shutdown is complete without the -wal file.
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(io)
    }

    fn save_publication(&mut self, p: &Publication) -> Result<(), StoreError> {
        let at = i64::try_from(p.republish_at).map_err(io)?;
        self.conn
            .execute(
                "INSERT INTO publications (key, value, republish_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value,
                     republish_at = excluded.republish_at",
                params![&p.key.0[..], p.value, at],
            )
            .map_err(io)?;
        Ok(())
    }

    fn remove_publication(&mut self, key: &Key) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM publications WHERE key = ?1",
                params![&key.0[..]],
            )
            .map_err(io)?;
        Ok(n > 0)
    }

    fn publications(&self) -> Result<Vec<Publication>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value, republish_at FROM publications ORDER BY key")
            .map_err(io)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(io)?;
        let mut out = Vec::new();
        for row in rows {
            let (key, value, at) = row.map_err(io)?;
            out.push(Publication {
                key: id_from_blob(key)?,
                value,
                republish_at: u64::try_from(at).map_err(io)?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            b"this is not a database, just text",
        )
        .unwrap();
        let err =
            SqliteStore::open(dir.path(), Quotas::from_config(&Default::default())).unwrap_err();
        assert!(
            matches!(err, StoreError::Io(ref m) if m.contains(FILE_NAME)),
            "{err:?}"
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let q = Quotas::from_config(&Default::default());
        drop(SqliteStore::open(dir.path(), q).unwrap());
        let c = Connection::open(dir.path().join(FILE_NAME)).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = SqliteStore::open(dir.path(), q).unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}

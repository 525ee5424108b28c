//! [`Postgres`]: the pod's state in a PostgreSQL database that several pod replicas share
//! (`--database postgres://user@host/db`).
//!
//! Everything a replica needs from the others goes through the database: identities,
//! aliases, inbox entries, the nonce replay set (P-A2), tokens (P-A6, single use across
//! replicas), the keep-alive set (P-X2), and new inbox entries themselves, announced with
//! `NOTIFY` so that every replica pushes them to its own WebSocket subscribers (P-S2,
//! [`Postgres::listen`]).
//!
//! Entry ids (P-X1) come from a counter row per inbox, incremented in the transaction that
//! inserts the entry: the row stays locked until that commit, so within one inbox ids become
//! visible in increasing order, whichever replica wrote them. (A sequence would not do: a
//! transaction holding id 5 can commit after one holding id 6, and a client that had seen 6
//! and purged `upto=6` would delete 5 unseen — the purge race P-X1 exists to close.)
//!
//! Connections come from a pool (16 at most, 5 s to get one). A failure to reach the
//! database is [`StorageError::unavailable`] (the pod answers 503, and recovers when the
//! database does); a statement the database refuses is a plain failure (500). Every write is
//! one transaction: acknowledged means committed.
//!
//! The schema is versioned in `muttr_schema` and migrated at connect by [`MIGRATIONS`], under
//! an advisory lock so that replicas starting together apply each migration once. TLS to the
//! database is not supported yet: run it on a private network or a Unix socket
//! (`postgres://user@%2Fvar%2Frun%2Fpostgresql/db`).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{
    AliasOutcome, Counts, IdentityRow, InboxEntry, Party, Registration, StorageError, WriteLatency,
};

/// Schema migrations, applied in order; `muttr_schema.version` counts those applied.
pub const MIGRATIONS: &[&str] = &["CREATE TABLE identities (
        pubkeyhash TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL UNIQUE,
        armored TEXT NOT NULL,
        registered BIGINT NOT NULL
    );
    CREATE TABLE aliases (
        name TEXT PRIMARY KEY,
        pubkeyhash TEXT NOT NULL REFERENCES identities(pubkeyhash),
        created BIGINT NOT NULL
    );
    CREATE INDEX aliases_by_owner ON aliases(pubkeyhash);
    CREATE TABLE inbox_ids (
        owner TEXT PRIMARY KEY,
        last BIGINT NOT NULL
    );
    CREATE TABLE inbox (
        owner TEXT NOT NULL,
        id BIGINT NOT NULL,
        recipient_user TEXT NOT NULL,
        sender_user TEXT NOT NULL,
        sender_hash TEXT NOT NULL,
        key TEXT NOT NULL,
        timestamp BIGINT NOT NULL,
        PRIMARY KEY (owner, id)
    );
    CREATE INDEX inbox_by_key ON inbox(key);
    CREATE TABLE nonces (
        identity TEXT NOT NULL,
        nonce BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        PRIMARY KEY (identity, nonce)
    );
    CREATE INDEX nonces_by_expiry ON nonces(expires);
    CREATE TABLE keepalive (
        key TEXT PRIMARY KEY,
        adopted BIGINT NOT NULL
    );
    CREATE TABLE tokens (
        value TEXT PRIMARY KEY,
        identity TEXT NOT NULL,
        resource TEXT NOT NULL,
        method TEXT NOT NULL,
        issued BIGINT NOT NULL,
        expires BIGINT NOT NULL
    );
    CREATE INDEX tokens_by_expiry ON tokens(expires);"];

/// The `NOTIFY` channel of new inbox entries: payload `owner` `\n` the entry's JSON frame.
pub const CHANNEL: &str = "muttr_inbox";

/// Advisory lock held while migrating (any constant the replicas agree on: "muttr" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_7574_7472;

/// Advisory lock held by the replica that runs the keep-alive sweeps (P-X2): "muttrK".
const KEEPALIVE_LOCK: i64 = 0x6d75_7474_724b;

/// Connections in the pool at most.
const POOL_SIZE: usize = 16;

/// How long a request waits for a connection (or for a new one to be made) before the pod
/// answers 503.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// A PostgreSQL database shared by a pod's replicas.
pub struct Postgres {
    pool: Pool,
    config: tokio_postgres::Config,
    location: String,
    latency: WriteLatency,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// The URL without its password: `postgres://user@host:port/db`.
fn location_of(c: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .zip(c.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(h, p)| match h {
            tokio_postgres::config::Host::Tcp(h) => format!("{h}:{p}"),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => format!("{}:{p}", path.display()),
        })
        .collect();
    format!(
        "postgres://{}@{}/{}",
        c.get_user().unwrap_or(""),
        hosts.join(","),
        c.get_dbname().unwrap_or("")
    )
}

/// A failure of `e`'s kind: the server refused a statement (a plain failure), or the
/// database is not there now — the connection is gone, or the server says it is shutting
/// down, starting, or out of connections (SQLSTATE classes 08, 57P, 53): unavailable.
fn classify(e: tokio_postgres::Error) -> StorageError {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            let text = format!("{code}: {}", db.message());
            if code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") {
                StorageError::down(text)
            } else {
                StorageError::failed(text)
            }
        }
        None => StorageError::down(e),
    }
}

/// What using a token found ([`Postgres::take_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenUse {
    /// Spent now: the identity it was issued to.
    Spent(String),
    /// No such token (never issued, or used already).
    Unknown,
    /// Issued, but its 30 s are over; now forgotten.
    Expired,
    /// Issued for another route (not spent).
    OtherRoute {
        /// The method it is for.
        method: String,
        /// The path it is for.
        resource: String,
    },
}

/// The connection that holds the keep-alive lock ([`Postgres::lead_keepalive`]): this
/// replica runs the sweeps while it is held; dropping it (or losing the connection) hands
/// the lock on.
pub struct Leader {
    _client: tokio_postgres::Client,
    lost: tokio::sync::oneshot::Receiver<()>,
}

impl Leader {
    /// Whether the lock's connection is gone (another replica may lead now).
    pub fn lost(&mut self) -> bool {
        !matches!(
            self.lost.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        )
    }
}

impl Postgres {
    /// Connects (making the pool and one connection at once, so an unreachable database is
    /// an error at start) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Postgres, StorageError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StorageError::failed(format!("database URL: {e}")))?;
        let location = location_of(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StorageError::failed(format!("{location}: {e}")))?;
        let pg = Postgres {
            pool,
            config,
            location,
            latency: super::write_latency(),
        };
        let mut client = pg
            .client()
            .await
            .map_err(|e| StorageError(format!("{}: {}", pg.location, e.0), e.1))?;
        migrate(&mut client)
            .await
            .map_err(|e| StorageError(format!("{}: {}", pg.location, e.0), e.1))?;
        Ok(pg)
    }

    /// The database, as `postgres://user@host:port/db` (no password).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Closes the pool (at shutdown).
    pub fn close(&self) {
        self.pool.close();
    }

    /// How long each write took, by operation.
    pub fn write_latency(&self) -> &WriteLatency {
        &self.latency
    }

    async fn client(&self) -> Result<Object, StorageError> {
        self.pool.get().await.map_err(StorageError::down)
    }

    fn observe(&self, op: &str, start: Instant) {
        self.latency
            .get_or_create(&vec![("op".to_string(), op.to_string())])
            .observe(start.elapsed().as_secs_f64());
    }

    /// Registers a key (`POST /`).
    pub async fn register(
        &self,
        pubkeyhash: &str,
        fingerprint: &str,
        armored: &str,
        now_ms: u64,
    ) -> Result<Registration, StorageError> {
        let c = self.client().await?;
        let start = Instant::now();
        let inserted = c
            .execute(
                "INSERT INTO identities (pubkeyhash, fingerprint, armored, registered)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&pubkeyhash, &fingerprint, &armored, &(now_ms as i64)],
            )
            .await
            .map_err(classify)?;
        self.observe("register", start);
        if inserted == 1 {
            return Ok(Registration::Created(IdentityRow {
                pubkeyhash: pubkeyhash.to_string(),
                fingerprint: fingerprint.to_string(),
                armored: armored.to_string(),
                registered: now_ms,
            }));
        }
        let row = c
            .query_opt(
                "SELECT pubkeyhash, fingerprint, armored, registered FROM identities
                 WHERE fingerprint = $1 OR pubkeyhash = $2",
                &[&fingerprint, &pubkeyhash],
            )
            .await
            .map_err(classify)?;
        Ok(match row.map(|r| identity_row(&r)) {
            Some(row) if row.pubkeyhash == pubkeyhash => Registration::Existing(row),
            _ => Registration::OtherText,
        })
    }

    /// The identity registered under `pubkeyhash`.
    pub async fn identity(&self, pubkeyhash: &str) -> Result<Option<IdentityRow>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT pubkeyhash, fingerprint, armored, registered FROM identities
                 WHERE pubkeyhash = $1",
                &[&pubkeyhash],
            )
            .await
            .map_err(classify)?;
        Ok(row.map(|r| identity_row(&r)))
    }

    /// Gives `name` to the identity `pubkeyhash` (`POST /aliases`).
    pub async fn add_alias(
        &self,
        name: &str,
        pubkeyhash: &str,
        now_ms: u64,
    ) -> Result<AliasOutcome, StorageError> {
        let c = self.client().await?;
        let start = Instant::now();
        let inserted = c
            .execute(
                "INSERT INTO aliases (name, pubkeyhash, created) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &pubkeyhash, &(now_ms as i64)],
            )
            .await
            .map_err(classify)?;
        self.observe("alias", start);
        if inserted == 1 {
            return Ok(AliasOutcome::Created(now_ms));
        }
        let row = c
            .query_one(
                "SELECT pubkeyhash, created FROM aliases WHERE name = $1",
                &[&name],
            )
            .await
            .map_err(classify)?;
        let (owner, created): (String, i64) = (row.get(0), row.get(1));
        Ok(if owner == pubkeyhash {
            AliasOutcome::Existing(created as u64)
        } else {
            AliasOutcome::Taken
        })
    }

    /// The identity behind an alias.
    pub async fn alias(&self, name: &str) -> Result<Option<IdentityRow>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT i.pubkeyhash, i.fingerprint, i.armored, i.registered
                 FROM aliases a JOIN identities i ON a.pubkeyhash = i.pubkeyhash
                 WHERE a.name = $1",
                &[&name],
            )
            .await
            .map_err(classify)?;
        Ok(row.map(|r| identity_row(&r)))
    }

    /// Records an accepted `(identity, nonce)`; false when any replica accepted it before.
    pub async fn use_nonce(
        &self,
        identity: &str,
        nonce: u64,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let start = Instant::now();
        c.execute("DELETE FROM nonces WHERE expires < $1", &[&(now_ms as i64)])
            .await
            .map_err(classify)?;
        let inserted = c
            .execute(
                "INSERT INTO nonces (identity, nonce, expires) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&identity, &clamp(nonce), &(expires_ms as i64)],
            )
            .await
            .map_err(classify)?;
        self.observe("nonce", start);
        Ok(inserted == 1)
    }

    /// Adds an inbox entry for `owner` and announces it (with its id) on [`CHANNEL`], in one
    /// transaction: the id is the inbox's counter plus one, the counter row locked until the
    /// commit (see the module's notes on P-X1), and the announcement is delivered at the
    /// commit, to every replica listening.
    pub async fn add_entry(&self, owner: &str, entry: &InboxEntry) -> Result<u64, StorageError> {
        let mut c = self.client().await?;
        let start = Instant::now();
        let tx = c.transaction().await.map_err(classify)?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO inbox_ids (owner, last) VALUES ($1, 1)
                 ON CONFLICT (owner) DO UPDATE SET last = inbox_ids.last + 1
                 RETURNING last",
                &[&owner],
            )
            .await
            .map_err(classify)?
            .get(0);
        tx.execute(
            "INSERT INTO inbox (owner, id, recipient_user, sender_user, sender_hash, key, timestamp)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &owner,
                &id,
                &entry.recipient.user_id,
                &entry.sender.user_id,
                &entry.sender.pubkeyhash,
                &entry.key,
                &(entry.timestamp as i64),
            ],
        )
        .await
        .map_err(classify)?;
        let framed = InboxEntry {
            id: Some(id.to_string()),
            ..entry.clone()
        };
        let frame = serde_json::to_string(&framed).map_err(StorageError::failed)?;
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &format!("{owner}\n{frame}")],
        )
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        self.observe("inbox_add", start);
        Ok(id as u64)
    }

    /// Every inbox entry of `owner`, oldest first.
    pub async fn entries(&self, owner: &str) -> Result<Vec<InboxEntry>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT recipient_user, sender_user, sender_hash, key, timestamp, id
                 FROM inbox WHERE owner = $1 ORDER BY id",
                &[&owner],
            )
            .await
            .map_err(classify)?;
        Ok(rows
            .iter()
            .map(|r| InboxEntry {
                recipient: Party {
                    user_id: r.get(0),
                    pubkeyhash: owner.to_string(),
                },
                sender: Party {
                    user_id: r.get(1),
                    pubkeyhash: r.get(2),
                },
                key: r.get(3),
                timestamp: r.get::<_, i64>(4) as u64,
                id: Some(r.get::<_, i64>(5).to_string()),
            })
            .collect())
    }

    /// Deletes every inbox entry of `owner`; returns how many.
    pub async fn purge(&self, owner: &str) -> Result<usize, StorageError> {
        self.write("purge", "DELETE FROM inbox WHERE owner = $1", &[&owner])
            .await
    }

    /// Deletes the inbox entries of `owner` whose id is at most `upto`; returns how many.
    pub async fn purge_upto(&self, owner: &str, upto: u64) -> Result<usize, StorageError> {
        self.write(
            "purge",
            "DELETE FROM inbox WHERE owner = $1 AND id <= $2",
            &[&owner, &clamp(upto)],
        )
        .await
    }

    /// Every distinct message key named by an inbox entry (P-X2).
    pub async fn inbox_keys(&self) -> Result<BTreeSet<String>, StorageError> {
        self.strings("SELECT DISTINCT key FROM inbox").await
    }

    /// Every key the pod keeps alive (P-X2).
    pub async fn keepalive_keys(&self) -> Result<BTreeSet<String>, StorageError> {
        self.strings("SELECT key FROM keepalive").await
    }

    /// Records that the pod keeps `key` alive.
    pub async fn keepalive_add(&self, key: &str, now_ms: u64) -> Result<(), StorageError> {
        self.write(
            "keepalive",
            "INSERT INTO keepalive (key, adopted) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&key, &(now_ms as i64)],
        )
        .await
        .map(drop)
    }

    /// Forgets that the pod keeps `key` alive.
    pub async fn keepalive_remove(&self, key: &str) -> Result<(), StorageError> {
        self.write("keepalive", "DELETE FROM keepalive WHERE key = $1", &[&key])
            .await
            .map(drop)
    }

    /// Forgets every adoption (a replica taking the keep-alive lead adopts everything again
    /// through its own seed).
    pub async fn keepalive_clear(&self) -> Result<(), StorageError> {
        self.write("keepalive", "DELETE FROM keepalive", &[])
            .await
            .map(drop)
    }

    /// Whether the database takes writes now: reachable, and not a read-only standby.
    pub async fn check_writable(&self) -> Result<(), StorageError> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
                &[],
            )
            .await
            .map_err(classify)?;
        if row.get::<_, bool>(0) {
            return Err(StorageError::failed(format!(
                "{} is read-only (a standby?)",
                self.location
            )));
        }
        Ok(())
    }

    /// Row counts of the tables an operator watches.
    pub async fn counts(&self) -> Result<Counts, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM aliases),
                        (SELECT COUNT(*) FROM inbox), (SELECT COUNT(*) FROM keepalive)",
                &[],
            )
            .await
            .map_err(classify)?;
        Ok(Counts {
            identities: r.get::<_, i64>(0) as u64,
            aliases: r.get::<_, i64>(1) as u64,
            inbox_entries: r.get::<_, i64>(2) as u64,
            kept_alive: r.get::<_, i64>(3) as u64,
        })
    }

    /// Records a token (P-A6) valid until `expires_ms`, forgetting expired ones on the way.
    pub async fn insert_token(
        &self,
        value: &str,
        grant: &crate::tokens::Grant,
        expires_ms: u64,
    ) -> Result<(), StorageError> {
        let c = self.client().await?;
        let start = Instant::now();
        c.execute(
            "DELETE FROM tokens WHERE expires <= $1",
            &[&(grant.issued as i64)],
        )
        .await
        .map_err(classify)?;
        c.execute(
            "INSERT INTO tokens (value, identity, resource, method, issued, expires)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &value,
                &grant.identity,
                &grant.resource,
                &grant.method,
                &(grant.issued as i64),
                &(expires_ms as i64),
            ],
        )
        .await
        .map_err(classify)?;
        self.observe("token", start);
        Ok(())
    }

    /// Uses a token for `method resource` at `now_ms`: spent in one statement, so two
    /// replicas offered the same token spend it once.
    pub async fn take_token(
        &self,
        value: &str,
        resource: &str,
        method: &str,
        now_ms: u64,
    ) -> Result<TokenUse, StorageError> {
        let c = self.client().await?;
        let start = Instant::now();
        let spent = c
            .query_opt(
                "DELETE FROM tokens WHERE value = $1 AND resource = $2 AND method = $3
                 AND expires > $4 RETURNING identity",
                &[&value, &resource, &method, &(now_ms as i64)],
            )
            .await
            .map_err(classify)?;
        self.observe("token", start);
        if let Some(row) = spent {
            return Ok(TokenUse::Spent(row.get(0)));
        }
        let row = c
            .query_opt(
                "SELECT resource, method, expires FROM tokens WHERE value = $1",
                &[&value],
            )
            .await
            .map_err(classify)?;
        let Some(row) = row else {
            return Ok(TokenUse::Unknown);
        };
        if row.get::<_, i64>(2) as u64 <= now_ms {
            c.execute("DELETE FROM tokens WHERE value = $1", &[&value])
                .await
                .map_err(classify)?;
            return Ok(TokenUse::Expired);
        }
        Ok(TokenUse::OtherRoute {
            resource: row.get(0),
            method: row.get(1),
        })
    }

    /// New inbox entries from every replica, as `(owner, frame)`, for as long as the
    /// receiver is held. The listening connection is its own (not the pool's); when it is lost
    /// the receiver ends, and the caller listens again (entries announced meanwhile are in the
    /// inboxes for playback, P-A9).
    pub async fn listen(&self) -> Result<mpsc::Receiver<(String, String)>, StorageError> {
        let (client, mut connection) = self.config.connect(NoTls).await.map_err(classify)?;
        let client = std::sync::Arc::new(client);
        let (tx, rx) = mpsc::channel(1024);
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        let held = client.clone();
        tokio::spawn(async move {
            // The connection ends when its client is dropped: this task keeps it.
            let _client = held;
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(n)) => {
                        let Some((owner, frame)) = n.payload().split_once('\n') else {
                            continue;
                        };
                        if tx
                            .send((owner.to_string(), frame.to_string()))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "database: the listening connection is lost");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .map_err(classify)?;
        Ok(rx)
    }

    /// Tries to become the replica that runs the keep-alive sweeps (a session advisory lock on
    /// a connection of its own); `None` when another replica holds it.
    pub async fn lead_keepalive(&self) -> Result<Option<Leader>, StorageError> {
        let (client, connection) = self.config.connect(NoTls).await.map_err(classify)?;
        let (lost_tx, lost) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _ = connection.await;
            let _ = lost_tx.send(());
        });
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&KEEPALIVE_LOCK])
            .await
            .map_err(classify)?;
        Ok(row.get::<_, bool>(0).then_some(Leader {
            _client: client,
            lost,
        }))
    }

    async fn write(
        &self,
        op: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<usize, StorageError> {
        let c = self.client().await?;
        let start = Instant::now();
        let n = c.execute(sql, params).await.map_err(classify)?;
        self.observe(op, start);
        Ok(n as usize)
    }

    async fn strings(&self, sql: &str) -> Result<BTreeSet<String>, StorageError> {
        let c = self.client().await?;
        let rows = c.query(sql, &[]).await.map_err(classify)?;
        Ok(crate::keepalive::set(rows.iter().map(|r| r.get(0))))
    }
}

/// PostgreSQL's integers are i64; a `u64` beyond them is the largest.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn identity_row(r: &tokio_postgres::Row) -> IdentityRow {
    IdentityRow {
        pubkeyhash: r.get(0),
        fingerprint: r.get(1),
        armored: r.get(2),
        registered: r.get::<_, i64>(3) as u64,
    }
}

/// Applies pending migrations, under [`MIGRATION_LOCK`].
async fn migrate(client: &mut Object) -> Result<(), StorageError> {
    let tx = client.transaction().await.map_err(classify)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(classify)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS muttr_schema (version INTEGER NOT NULL)")
        .await
        .map_err(classify)?;
    let version: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM muttr_schema", &[])
        .await
        .map_err(classify)?
        .get(0);
    let version = version as usize;
    if version > MIGRATIONS.len() {
        return Err(StorageError::failed(format!(
            "schema version {version} is newer than this pod ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(m).await.map_err(classify)?;
        tx.execute(
            "INSERT INTO muttr_schema (version) VALUES ($1)",
            &[&((i + 1) as i32)],
        )
        .await
        .map_err(classify)?;
    }
    tx.commit().await.map_err(classify)
}

//! The chat's history, kept locally in `HOME/chat.sqlite3`: every message sent and received,
//! by peer, with its marks. Incoming messages are stored before the pod's inbox is purged, so
//! the history is where they live afterwards.

use std::path::Path;

use rusqlite::{Connection, params};

/// How a line of the conversation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Ours, on its way.
    Sending,
    /// Ours, stored in the DHT and announced to the recipient's pod.
    Sent,
    /// Ours, not sent: why.
    Failed(String),
    /// Theirs, signed by the key of the user it claims to come from (PROFILE P-G3).
    Verified,
    /// Theirs, NOT verified: the verdict. Shown loudly.
    NotVerified(String),
    /// Theirs, could not be fetched or decrypted: why.
    Unreadable(String),
}

impl Mark {
    fn encode(&self) -> String {
        match self {
            Mark::Sending => "sending".into(),
            Mark::Sent => "sent".into(),
            Mark::Failed(e) => format!("failed:{e}"),
            Mark::Verified => "verified".into(),
            Mark::NotVerified(v) => format!("not-verified:{v}"),
            Mark::Unreadable(e) => format!("unreadable:{e}"),
        }
    }

    fn decode(s: &str) -> Mark {
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "sending" => Mark::Sending,
            "sent" => Mark::Sent,
            "failed" => Mark::Failed(rest.into()),
            "verified" => Mark::Verified,
            "not-verified" => Mark::NotVerified(rest.into()),
            _ => Mark::Unreadable(rest.into()),
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Row number (order of arrival here).
    pub n: i64,
    /// The other user (`alice@pod`).
    pub peer: String,
    /// Sent by us.
    pub outgoing: bool,
    /// The text (empty when unreadable).
    pub text: String,
    /// Its mark.
    pub mark: Mark,
    /// Its DHT key, once known.
    pub key: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
}

/// The history database.
pub struct History {
    conn: Connection,
}

impl History {
    /// Opens (or creates) `dir/chat.sqlite3`.
    pub fn open(dir: &Path) -> rusqlite::Result<History> {
        std::fs::create_dir_all(dir)
            .map_err(|e| rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into()))?;
        let conn = Connection::open(dir.join("chat.sqlite3"))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS messages (
                 n INTEGER PRIMARY KEY AUTOINCREMENT,
                 peer TEXT NOT NULL,
                 outgoing INTEGER NOT NULL,
                 text TEXT NOT NULL,
                 mark TEXT NOT NULL,
                 key TEXT,
                 timestamp INTEGER NOT NULL,
                 UNIQUE (key, outgoing)
             );",
        )?;
        Ok(History { conn })
    }

    /// Adds a line (a message already stored under its key is not added twice); its row.
    pub fn add(&self, l: &Line) -> rusqlite::Result<i64> {
        self.conn.execute(
            "INSERT OR IGNORE INTO messages (peer, outgoing, text, mark, key, timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                l.peer,
                l.outgoing,
                l.text,
                l.mark.encode(),
                l.key,
                l.timestamp as i64
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Sets the mark (and key) of row `n`.
    pub fn update(&self, n: i64, mark: &Mark, key: Option<&str>) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE messages SET mark = ?2, key = COALESCE(?3, key) WHERE n = ?1",
            params![n, mark.encode(), key],
        )?;
        Ok(())
    }

    /// Everyone we have talked with, most recent first.
    pub fn peers(&self) -> rusqlite::Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT peer FROM messages GROUP BY peer ORDER BY MAX(n) DESC")?;
        st.query_map([], |r| r.get(0))?.collect()
    }

    /// The conversation with `peer`, oldest first.
    pub fn conversation(&self, peer: &str) -> rusqlite::Result<Vec<Line>> {
        let mut st = self.conn.prepare(
            "SELECT n, peer, outgoing, text, mark, key, timestamp FROM messages
             WHERE peer = ?1 ORDER BY n",
        )?;
        st.query_map([peer], |r| {
            Ok(Line {
                n: r.get(0)?,
                peer: r.get(1)?,
                outgoing: r.get(2)?,
                text: r.get(3)?,
                mark: Mark::decode(&r.get::<_, String>(4)?),
                key: r.get(5)?,
                timestamp: r.get::<_, i64>(6)? as u64,
            })
        })?
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_by_peer_once_per_key_and_marks_update() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let line = |peer: &str, key: &str, outgoing: bool, mark: Mark| Line {
            n: 0,
            peer: peer.into(),
            outgoing,
            text: format!("to/from {peer}"),
            mark,
            key: Some(key.into()),
            timestamp: 1,
        };
        h.add(&line("bob@p", "k1", false, Mark::Verified)).unwrap();
        h.add(&line("bob@p", "k1", false, Mark::Verified)).unwrap();
        let n = h.add(&line("carol@p", "k2", true, Mark::Sending)).unwrap();
        h.update(n, &Mark::Failed("no route".into()), None).unwrap();
        assert_eq!(h.peers().unwrap(), ["carol@p", "bob@p"]);
        assert_eq!(h.conversation("bob@p").unwrap().len(), 1);
        let c = h.conversation("carol@p").unwrap();
        assert_eq!(c[0].mark, Mark::Failed("no route".into()));
        // It is all still there after a reopen.
        drop(h);
        let h = History::open(dir.path()).unwrap();
        assert_eq!(h.conversation("carol@p").unwrap()[0].n, n);
    }
}

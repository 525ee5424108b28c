//! Several pod replicas on one PostgreSQL database, behind one public host: an inbox entry
//! written by any replica reaches the recipient's WebSocket subscribers on every replica.
//!
//! The replica that stores an entry announces it with `NOTIFY` in the same transaction
//! ([`crate::storage::Postgres::add_entry`]); every replica, the writer included, listens
//! ([`crate::storage::Postgres::listen`]) and pushes what it hears to its own subscribers
//! (P-S2). PostgreSQL delivers a notification at the commit, typically within milliseconds,
//! well inside P-S2's second.
//!
//! When the listening connection is lost, entries announced until it is back would not be
//! pushed. So every subscriber of this replica is disconnected at once: its client reconnects
//! and plays its inbox back, where every entry is (P-A9). Nothing is lost, only pushed late.
//! A replica that restarts is the same case.
//!
//! With SQLite there is one process, which pushes directly ([`crate::routes::inboxes`]), and
//! [`run`] waits forever.

use std::time::Duration;

use crate::AppState;

/// How long to wait before listening again after the connection was lost.
const RETRY: Duration = Duration::from_secs(1);

/// Listens for the entries of every replica and pushes them here, for as long as the pod
/// serves (polled by [`crate::serve`]).
pub async fn run(state: AppState) {
    let Some(pg) = state.storage.postgres() else {
        return std::future::pending().await;
    };
    loop {
        match pg.listen().await {
            Ok(mut entries) => {
                tracing::info!(database = %pg.location(), "listening for every replica's inbox entries");
                while let Some((owner, frame)) = entries.recv().await {
                    let pushed = state.hub.publish(&owner, &frame);
                    state.metrics.pushes.inc_by(pushed as u64);
                }
                let dropped = state.hub.disconnect_all();
                tracing::warn!(
                    dropped,
                    "lost the database's notifications: WebSocket subscribers disconnected to play back"
                );
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for inbox entries; trying again"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

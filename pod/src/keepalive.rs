//! Keeping the pod's users' messages alive (PROFILE P-X2).
//!
//! A value lives in the DHT 24 h after its timestamp unless its publisher republishes it
//! (P-K2). A sender who goes offline for good after sending would take their message with
//! them, so a recipient away for more than a day would lose it. The recipient's pod therefore
//! takes over: while an inbox entry is not purged, the value it names is *adopted* by the
//! pod's embedded seed — fetched from the DHT (or its own store), checked against its key,
//! and published by the seed, which stores it at the current k closest nodes and republishes
//! it every `republish_interval`, before it expires (P-K2). When the last entry naming a key is
//! purged, the seed stops republishing it.
//!
//! State is durable on both sides: the pod's `keepalive` table says which keys it adopted,
//! and the seed's store records its publications and their schedule, so after a restart the
//! pod neither forgets a message nor adopts it twice.
//!
//! The work is a reconciliation, [`sweep`]: (keys named by inbox entries) minus (keys adopted)
//! are adopted; (keys adopted) minus (keys named) are released. It runs every
//! `keepalive_sweep` and at once after a notify or a purge ([`KeepAlive::wake`]). A value the
//! DHT does not have yet is tried again at the next sweep; a value that does not hash to its
//! key (P-V2) is never published and is logged.
//!
//! With several replicas on one PostgreSQL database, one replica republishes each value, not
//! all: the replica holding an advisory lock ([`crate::storage::Postgres::lead_keepalive`])
//! runs the sweeps. A replica that takes the lock clears the adopted set and adopts every
//! value again through its own seed (the previous holder's connection is gone: it crashed or
//! lost the database); a replica that loses it stops republishing what it adopted.

use std::collections::BTreeSet;
use std::time::Duration;

use muttr_node::id::Key;
use muttr_node::value;
use tokio::sync::Notify;

use crate::AppState;

/// The wake-up signal of the keep-alive task (held in the pod's state).
#[derive(Debug, Default)]
pub struct KeepAlive {
    wake: Notify,
}

impl KeepAlive {
    /// Asks the task to reconcile now (after a notify or a purge).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// What one [`sweep`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys newly adopted (fetched, checked and published by the seed).
    pub adopted: usize,
    /// Keys released (no inbox entry names them any more).
    pub released: usize,
    /// Keys that could not be adopted this time (not found in the DHT, seed busy); retried.
    pub pending: usize,
    /// Values refused because they do not hash to their key (P-V2); never published.
    pub refused: usize,
}

/// Reconciles once: adopts every key an unpurged inbox entry names, releases every key none
/// names. Needs the embedded seed; without one it does nothing.
pub async fn sweep(state: &AppState) -> SweepReport {
    let mut report = SweepReport::default();
    let Some(seed) = state.seed.as_ref() else {
        return report;
    };
    let (named, adopted) = match (
        state.storage.inbox_keys().await,
        state.storage.keepalive_keys().await,
    ) {
        (Ok(n), Ok(a)) => (n, a),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "keep-alive: reading the inboxes failed");
            return report;
        }
    };
    let timeout = state.config.dht_timeout;
    for hex in named.difference(&adopted) {
        let Some(key) = Key::from_hex(hex).ok() else {
            // Keys are checked at notify (40 lowercase hex digits); a row that is not one was
            // not written by this pod.
            tracing::warn!(key = %hex, "keep-alive: inbox entry with a malformed key skipped");
            report.refused += 1;
            continue;
        };
        let found = tokio::time::timeout(timeout, seed.find_value(key)).await;
        let value = match found {
            Ok(Ok(Some(v))) => v,
            Ok(Ok(None)) | Err(_) => {
                report.pending += 1;
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "keep-alive: the seed is not answering");
                report.pending += 1;
                continue;
            }
        };
        if value::key_of(&value) != key {
            tracing::warn!(%key, "keep-alive: value does not hash to its key (P-V2), dropped");
            report.refused += 1;
            continue;
        }
        match tokio::time::timeout(timeout, seed.publish(value)).await {
            Ok(Ok(_)) => {
                if let Err(e) = state.storage.keepalive_add(hex, state.clock.now_ms()).await {
                    tracing::warn!(error = %e, "keep-alive: recording an adoption failed");
                }
                report.adopted += 1;
            }
            Ok(Err(e)) => {
                tracing::warn!(%key, error = %e, "keep-alive: publishing failed");
                report.pending += 1;
            }
            Err(_) => report.pending += 1,
        }
    }
    for hex in adopted.difference(&named) {
        if let Ok(key) = Key::from_hex(hex) {
            match seed.unpublish(key).await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "keep-alive: the seed is not answering");
                    continue;
                }
            }
        }
        if let Err(e) = state.storage.keepalive_remove(hex).await {
            tracing::warn!(error = %e, "keep-alive: recording a release failed");
            continue;
        }
        report.released += 1;
    }
    if report != SweepReport::default() {
        tracing::debug!(?report, "keep-alive sweep");
    }
    report
}

/// The keep-alive task: a [`sweep`] every `keepalive_sweep` and after each wake-up. Runs
/// for as long as the pod serves (it is polled by [`crate::serve`]); never returns when the
/// pod has it switched off (`keepalive = false`) or has no seed.
pub async fn run(state: AppState) {
    if !state.config.keepalive || state.seed.is_none() {
        return std::future::pending().await;
    }
    let every = state.config.keepalive_sweep.max(Duration::from_millis(1));
    let Some(pg) = state.storage.postgres() else {
        loop {
            sweep(&state).await;
            wait(&state, every).await;
        }
    };
    loop {
        match pg.lead_keepalive().await {
            Ok(Some(mut leader)) => {
                tracing::info!("this replica keeps the pod's values alive (P-X2)");
                if let Err(e) = pg.keepalive_clear().await {
                    tracing::warn!(error = %e, "keep-alive: clearing the adopted set failed");
                    continue;
                }
                let mut held = BTreeSet::new();
                while !leader.lost() {
                    sweep(&state).await;
                    if let Ok(keys) = state.storage.keepalive_keys().await {
                        held = keys;
                    }
                    wait(&state, every).await;
                }
                tracing::warn!("keep-alive: lost the lead; releasing what this replica published");
                release(&state, &held).await;
            }
            Ok(None) => wait(&state, every).await,
            Err(e) => {
                tracing::warn!(error = %e, "keep-alive: cannot ask for the lead");
                wait(&state, every).await;
            }
        }
    }
}

/// Until the next sweep is due: `every`, or a wake-up.
async fn wait(state: &AppState, every: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(every) => {}
        _ = state.keepalive.wake.notified() => {}
    }
}

/// Stops this replica's seed republishing `keys` (another replica adopts them).
async fn release(state: &AppState, keys: &BTreeSet<String>) {
    let Some(seed) = state.seed.as_ref() else {
        return;
    };
    for hex in keys {
        if let Ok(key) = Key::from_hex(hex)
            && let Err(e) = seed.unpublish(key).await
        {
            tracing::warn!(error = %e, "keep-alive: the seed is not answering");
        }
    }
}

/// The keys as a set (helper for storage).
pub(crate) fn set(keys: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    keys.into_iter().collect()
}

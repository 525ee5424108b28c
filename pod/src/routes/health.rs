//! `GET /healthz` and `GET /readyz` (PROFILE P-X3): what a load balancer, an orchestrator's
//! probes or an operator's monitoring ask a pod.
//!
//! - `/healthz` — liveness: 200 `{"status":"ok"}` while the pod serves and its database takes
//!   writes (checked by taking SQLite's write lock and releasing it, so a full disk, a
//!   read-only mount or a locked file shows); 503 `{"error"}` otherwise.
//! - `/readyz` — readiness: 200 `{"status":"ready","contacts":N}` once the embedded seed has at
//!   least one contact in its routing table, i.e. `POST /messages` can reach the DHT; 503
//!   `{"error"}` before that, or when the pod runs without a seed.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// `GET /healthz`.
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state
        .storage
        .check_writable()
        .await
        .map_err(|e| ApiError::unavailable(format!("database not writable: {e}")))?;
    Ok(Json(json!({ "status": "ok" })))
}

/// `GET /readyz`.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let Some(seed) = state.seed.as_ref() else {
        return Err(ApiError::unavailable("this pod runs without a seed"));
    };
    let stats = seed
        .stats()
        .await
        .map_err(|e| ApiError::unavailable(format!("seed: {e}")))?;
    if stats.table_size == 0 {
        return Err(ApiError::unavailable(
            "the seed has no contact yet: not joined to the DHT",
        ));
    }
    Ok(Json(
        json!({ "status": "ready", "contacts": stats.table_size }),
    ))
}

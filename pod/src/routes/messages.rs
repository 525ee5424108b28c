//! `POST /messages` and `GET /messages/:hash` — the DHT on behalf of passive seeds (whitepaper
//! "Store Message in DHT" / "Fetch Message from DHT", P-A5, P-V1, P-V2), through the pod's
//! embedded seed.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use muttr_node::id::{Key, is_lower_hex};
use muttr_node::value;
use serde_json::{Value, json};

use crate::AppState;
use crate::body::TextBody;
use crate::error::ApiError;

/// Publishes the hex value of the body to the k closest seeds and answers its key. The value is
/// checked first (P-V1): the pod does not spread what seeds would refuse.
pub async fn store(
    State(state): State<AppState>,
    TextBody(text): TextBody,
) -> Result<Json<Value>, ApiError> {
    let seed = state
        .seed
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this pod runs no seed"))?;
    let value_hex = text.trim_end_matches(['\r', '\n']);
    value::validate(value_hex)
        .map_err(|e| ApiError::bad_request(format!("not a valid value (P-V1): {e}")))?;
    let publish = tokio::time::timeout(
        state.config.dht_timeout,
        seed.publish(value_hex.to_string()),
    );
    // The seed's refusal maps to a status by its variant (`From<SeedError> for ApiError`).
    let report = publish
        .await
        .map_err(|_| ApiError::unavailable("the DHT did not answer in time"))??;
    tracing::debug!(key = %report.key.to_hex(), stored_at = report.stored_at, "published");
    // An honest acknowledgement: `replicas` is how many seeds besides the pod's own took the
    // value. None while the pod knows other seeds means the message would live on this pod
    // alone: 503, so the client tries again rather than count it as sent. (A pod that knows
    // no other seed — a network of one — answers 200 with `replicas: 0`.)
    if report.stored_at == 0 {
        let contacts = seed.stats().await.map(|s| s.table_size).unwrap_or(0);
        if contacts > 0 {
            return Err(ApiError::unavailable(format!(
                "no seed besides this pod's took the message ({} STOREs sent to the closest \
                 of {contacts} known seeds); try again",
                report.store_requests
            )));
        }
    }
    Ok(Json(
        json!({ "key": report.key.to_hex(), "replicas": report.stored_at }),
    ))
}

/// Looks a value up in the DHT and answers its hex text.
pub async fn fetch(
    State(state): State<AppState>,
    Path(hash): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if hash.len() != 40 || !is_lower_hex(&hash) {
        return Err(ApiError::bad_request(
            "a message hash is 40 lowercase hex characters (P-V2)",
        ));
    }
    let key = Key::from_hex(&hash).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let seed = state
        .seed
        .as_ref()
        .ok_or_else(|| ApiError::unavailable("this pod runs no seed"))?;
    let found = tokio::time::timeout(state.config.dht_timeout, seed.find_value(key))
        .await
        .map_err(|_| ApiError::unavailable("the DHT did not answer in time"))??;
    match found {
        Some(v) => Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], v)),
        None => Err(ApiError::not_found(format!("no message {hash} in the DHT"))),
    }
}

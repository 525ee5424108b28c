//! `POST /` — register a public key (whitepaper "Register Identity", P-A5, P-G1).

use axum::Json;
use axum::extract::State;
use muttr_node::crypto::{PublicKey, pubkeyhash};
use serde_json::{Value, json};

use crate::AppState;
use crate::body::TextBody;
use crate::error::ApiError;
use crate::storage::Registration;

/// Registers the armored public key of the body. The identity is the SHA-1 of the body text
/// exactly as sent (P-G1). Registering the same text again answers the first registration;
/// the same key under another text is 409 (P-A7).
pub async fn register(
    State(state): State<AppState>,
    TextBody(text): TextBody,
) -> Result<Json<Value>, ApiError> {
    let key = PublicKey::from_armored(&text)
        .map_err(|e| ApiError::bad_request(format!("not an armored OpenPGP public key: {e}")))?;
    if !key.can_encrypt(state.clock.now_system()) {
        return Err(ApiError::bad_request(
            "the key has no valid encryption subkey: nobody could write to it",
        ));
    }
    let hash = pubkeyhash(&text);
    let outcome = state
        .storage
        .register(&hash, &key.fingerprint(), &text, state.clock.now_ms())
        .await
        .map_err(ApiError::from)?;
    let row = match outcome {
        Registration::Created(row) => {
            tracing::info!(pubkeyhash = %row.pubkeyhash, "identity registered");
            row
        }
        Registration::Existing(row) => row,
        Registration::OtherText => {
            return Err(ApiError::conflict(
                "this key is already registered here under another armored text",
            ));
        }
    };
    Ok(Json(json!({
        "identity": { "pubkeyhash": row.pubkeyhash, "registered": row.registered }
    })))
}

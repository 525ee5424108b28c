//! `POST /tokens` — a single-use token for a GET or DELETE request (whitepaper "Create Auth
//! Token for Request", P-A6).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::authenticate;
use crate::body::TextBody;
use crate::error::ApiError;
use crate::tokens::Grant;

/// Methods a token can be issued for: the whitepaper's tokens are for GET and DELETE requests.
pub const TOKEN_METHODS: &[&str] = &["GET", "DELETE"];

/// Issues a token for the signed `resource` and `method` (authorized callers only).
pub async fn create(
    State(state): State<AppState>,
    TextBody(body): TextBody,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&state, &body).await?;
    let me = caller.authorized()?;
    let resource = caller.param("resource")?;
    let method = caller.param("method")?.to_ascii_uppercase();
    if !resource.starts_with('/') || resource.len() > 256 {
        return Err(ApiError::bad_request(
            "`resource` is an endpoint path such as /inboxes",
        ));
    }
    if !TOKEN_METHODS.contains(&method.as_str()) {
        return Err(ApiError::bad_request(
            "`method` must be GET or DELETE: tokens are for those requests",
        ));
    }
    let value = state.random_token();
    let issued = state.clock.now_ms();
    state
        .tokens
        .insert(
            &state.storage,
            value.clone(),
            Grant {
                identity: me.pubkeyhash.clone(),
                resource: resource.to_string(),
                method: method.clone(),
                issued,
            },
            issued,
        )
        .await?;
    Ok(Json(json!({
        "token": { "issued": issued, "method": method, "resource": resource, "value": value }
    })))
}

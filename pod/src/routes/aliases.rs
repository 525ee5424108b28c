//! `GET /aliases/:alias` (public) and `POST /aliases` (authorized) — username-to-key aliasing
//! (whitepaper "Fetch Public Key for Alias" / "Register an Alias", P-A5, P-A8).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::authenticate;
use crate::body::TextBody;
use crate::error::ApiError;
use crate::storage::AliasOutcome;

pub use muttr_node::client::valid_alias;

/// Answers the armored key registered for `alias`, as `application/pgp-keys`.
pub async fn get(
    State(state): State<AppState>,
    Path(alias): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    if !valid_alias(&alias) {
        return Err(ApiError::bad_request(
            "an alias matches [a-z0-9][a-z0-9._-]{0,63} (P-A8)",
        ));
    }
    let row = state
        .storage
        .alias(&alias)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no alias `{alias}` here")))?;
    Ok((
        [(header::CONTENT_TYPE, "application/pgp-keys")],
        row.armored,
    ))
}

/// Gives the signed parameter `alias` to the caller (authorized only). Asking again for one's
/// own alias answers the first creation; someone else's is 409.
pub async fn create(
    State(state): State<AppState>,
    TextBody(body): TextBody,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&state, &body).await?;
    let me = caller.authorized()?;
    let alias = caller.param("alias")?;
    if !valid_alias(alias) {
        return Err(ApiError::bad_request(
            "an alias matches [a-z0-9][a-z0-9._-]{0,63} (P-A8)",
        ));
    }
    let created = match state
        .storage
        .add_alias(alias, &me.pubkeyhash, state.clock.now_ms())
        .await
        .map_err(ApiError::from)?
    {
        AliasOutcome::Created(t) => {
            tracing::info!(alias, pubkeyhash = %me.pubkeyhash, "alias registered");
            t
        }
        AliasOutcome::Existing(t) => t,
        AliasOutcome::Taken => {
            return Err(ApiError::conflict(format!("alias `{alias}` is taken")));
        }
    };
    Ok(Json(
        json!({ "alias": { "name": alias, "created": created } }),
    ))
}

#[cfg(test)]
mod tests {
    use super::valid_alias;

    #[test]
    fn alias_pattern_of_p_a8() {
        for ok in ["a", "alice", "0", "a.b_c-d", &"a".repeat(64)] {
            assert!(valid_alias(ok), "{ok}");
        }
        for bad in [
            "",
            "Alice",
            ".a",
            "-a",
            "_a",
            "a b",
            "a@b",
            "ä",
            &"a".repeat(65),
        ] {
            assert!(!valid_alias(bad), "{bad}");
        }
    }
}

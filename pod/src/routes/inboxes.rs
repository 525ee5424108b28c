//! `POST /inboxes/:alias` (authenticated), `GET /inboxes` and `DELETE /inboxes` (token) —
//! message notification, playback and purge (whitepaper "Store a Message Key for the Alias",
//! "Playback Missed Messages", "Purge Stored Message Keys"; P-A4, P-A9, P-S2).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use muttr_node::id::is_lower_hex;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{authenticate, resolve_user};
use crate::body::TextBody;
use crate::error::ApiError;
use crate::federation::parse_user_id;
use crate::routes::aliases::valid_alias;
use crate::storage::{InboxEntry, Party};

/// The resource path tokens for playback and purge are bound to.
pub const INBOXES: &str = "/inboxes";

/// Notifies `alias` of a message key. The caller signs `from` (its userID) and `key`; `from`
/// must resolve to the key that signed (P-A4). The entry is stored durably before the answer
/// (P-A9) and pushed to the recipient's WebSocket subscribers (P-S2).
pub async fn notify(
    State(state): State<AppState>,
    Path(alias): Path<String>,
    TextBody(body): TextBody,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&state, &body).await?;
    if !valid_alias(&alias) {
        return Err(ApiError::bad_request(
            "an alias matches [a-z0-9][a-z0-9._-]{0,63} (P-A8)",
        ));
    }
    let from = caller.param("from")?.to_string();
    let key = caller.param("key")?.to_string();
    if key.len() != 40 || !is_lower_hex(&key) {
        return Err(ApiError::bad_request(
            "`key` is a message key: 40 lowercase hex characters (P-V2)",
        ));
    }
    let recipient = state
        .storage
        .alias(&alias)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("no alias `{alias}` here")))?;
    let sender = parse_user_id(&from).map_err(|e| ApiError::bad_request(format!("`from`: {e}")))?;
    // `from` must be the signer: reuse the key fetched for an href caller naming itself.
    let from_key = if caller.text.identity_type == muttr_node::crypto::auth::HREF
        && caller.text.identity.eq_ignore_ascii_case(&from)
    {
        caller.key.clone()
    } else {
        resolve_user(&state, &sender).await.map_err(|e| {
            e.into_api(|m| ApiError::forbidden(format!("`from` ({from}) cannot be checked: {m}")))
        })?
    };
    if from_key.fingerprint() != caller.key.fingerprint() {
        return Err(ApiError::forbidden(format!(
            "`from` ({from}) is not the signer's userID (P-A4)"
        )));
    }
    let entry = InboxEntry {
        recipient: Party {
            user_id: state.config.user_id(&alias),
            pubkeyhash: recipient.pubkeyhash.clone(),
        },
        sender: Party {
            user_id: format!("{}@{}", sender.alias, sender.host),
            pubkeyhash: from_key.pubkeyhash(),
        },
        key,
        timestamp: state.clock.now_ms(),
        id: None,
    };
    let id = state
        .storage
        .add_entry(&recipient.pubkeyhash, &entry)
        .await
        .map_err(ApiError::from)?;
    // P-X1: the answer and the push frame carry the entry's id.
    let entry = InboxEntry {
        id: Some(id.to_string()),
        ..entry
    };
    // With PostgreSQL the entry was announced to every replica, this one included, which
    // push it to their subscribers ([`crate::replicas`]); with SQLite it is pushed here.
    let pushed = if state.storage.postgres().is_none() {
        let frame = serde_json::to_string(&entry).map_err(ApiError::internal)?;
        let pushed = state.hub.publish(&recipient.pubkeyhash, &frame);
        state.metrics.pushes.inc_by(pushed as u64);
        pushed
    } else {
        0
    };
    state.keepalive.wake();
    tracing::debug!(to = %entry.recipient.user_id, from = %entry.sender.user_id, pushed, "inbox entry");
    Ok(Json(json!({ "message": entry })))
}

/// Spends the request's `token` (P-A6) for `method /inboxes`: the identity it was issued to.
async fn spend(
    state: &AppState,
    query: &HashMap<String, String>,
    method: &str,
) -> Result<String, ApiError> {
    let token = query
        .get("token")
        .ok_or_else(|| ApiError::unauthorized("a `token` query parameter is required (P-A6)"))?;
    let now = state.clock.now_ms();
    state
        .tokens
        .consume(&state.storage, token, INBOXES, method, now)
        .await
}

/// Plays back the caller's inbox, grouped by contact (the sender's userID), oldest first.
pub async fn playback(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let owner = spend(&state, &query, "GET").await?;
    grouped(&state, &owner).await
}

/// The inbox of `owner` as playback shows it: `{"messages": [{"contact", "messages"}, …]}`,
/// grouped by the sender's userID in order of first appearance, each group oldest first.
async fn grouped(state: &AppState, owner: &str) -> Result<Json<Value>, ApiError> {
    let entries = state.storage.entries(owner).await.map_err(ApiError::from)?;
    let mut groups: Vec<(String, Vec<InboxEntry>)> = Vec::new();
    for e in entries {
        match groups.iter_mut().find(|(c, _)| *c == e.sender.user_id) {
            Some((_, list)) => list.push(e),
            None => groups.push((e.sender.user_id.clone(), vec![e])),
        }
    }
    let messages: Vec<Value> = groups
        .into_iter()
        .map(|(contact, messages)| json!({ "contact": contact, "messages": messages }))
        .collect();
    Ok(Json(json!({ "messages": messages })))
}

/// Parses `upto` (P-X1): decimal digits only. A number beyond `u64` covers every id there is.
fn parse_upto(text: &str) -> Result<u64, ApiError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "`upto` must be an entry id: decimal digits (P-X1), got {text:?}"
        )));
    }
    Ok(text.parse().unwrap_or(u64::MAX))
}

/// Purges the caller's inbox. With `upto=ID` (PROFILE P-X1) exactly the entries with id ≤ ID
/// are deleted and the entries that remain are answered, grouped as in playback — so an entry
/// that arrived after the client's playback survives its purge. Without `upto`, every entry
/// (the whitepaper's meaning) and an empty list.
pub async fn purge(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    // A malformed `upto` is refused before the single-use token is spent.
    let upto = query.get("upto").map(|t| parse_upto(t)).transpose()?;
    let owner = spend(&state, &query, "DELETE").await?;
    if let Some(upto) = upto {
        let n = state
            .storage
            .purge_upto(&owner, upto)
            .await
            .map_err(ApiError::from)?;
        tracing::debug!(owner = %owner, purged = n, upto, "inbox purged up to");
        state.keepalive.wake();
        return grouped(&state, &owner).await;
    }
    let n = state.storage.purge(&owner).await.map_err(ApiError::from)?;
    tracing::debug!(owner = %owner, purged = n, "inbox purged");
    state.keepalive.wake();
    Ok(Json(json!({ "messages": [] })))
}

//! WebSocket push at the pod's base URI (whitepaper "WebSockets Interface", P-S1, P-S2).
//!
//! The client's first text frame must be the hex of a cleartext-signed auth text with
//! `identityType=pubkeyhash`, within [`crate::PodConfig::ws_auth_timeout`]; anything else
//! closes the connection with code [`CLOSE_AUTH`]. After that the pod sends one JSON text
//! frame per new inbox entry. Each connection has a bounded queue in the [`crate::hub::Hub`];
//! a client that lets it fill is closed with [`CLOSE_SLOW`] and plays back later (its entries
//! stay in the inbox, P-A9).

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use std::sync::atomic::Ordering;

use crate::AppState;
use crate::auth::authenticate_ws;
use crate::error::ApiError;

/// Close code for a failed, missing or late auth frame (P-S1).
pub const CLOSE_AUTH: u16 = 4401;
/// Close code for a client too slow to take its frames (private-use range, like 4401).
pub const CLOSE_SLOW: u16 = 4408;
/// Close code for a session beyond the identity's limit (`ws_per_identity`).
pub const CLOSE_TOO_MANY: u16 = 4429;
/// Close code when the pod shuts down ("going away", RFC 6455).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Largest frame accepted from a client: the auth frame is hex of a small signed text.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// `GET /` with an upgrade: starts a push session. A plain `GET /` is 400 in the JSON format.
pub async fn upgrade(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // A plain GET (no `Upgrade` header): the status page. An attempted upgrade that is not
    // a valid one: 400, saying why.
    if !headers.contains_key(axum::http::header::UPGRADE) {
        return Ok(crate::routes::status::page(&state, &headers).await);
    }
    let ws = ws.map_err(|e| {
        ApiError::bad_request(format!(
            "GET / is the WebSocket endpoint (P-S1); this request is not a valid upgrade: {e}"
        ))
    })?;
    // Count the connection from the upgrade on; refuse beyond the pod's total.
    let slot = ConnectionSlot::take(&state)
        .ok_or_else(|| ApiError::too_many("too many WebSocket connections: try later"))?;
    Ok(ws
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| async move {
            session(state, socket).await;
            drop(slot);
        }))
}

/// One of the pod's `ws_total` connection slots, given back on drop.
struct ConnectionSlot(AppState);

impl ConnectionSlot {
    fn take(state: &AppState) -> Option<ConnectionSlot> {
        let max = state.config.ws_total;
        state
            .ws_connections
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnectionSlot(state.clone()))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.ws_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.chars().take(120).collect::<String>().into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn session(state: AppState, mut socket: WebSocket) {
    let mut shutdown = state.shutdown.clone();
    if *shutdown.borrow_and_update() {
        return close(socket, CLOSE_GOING_AWAY, "pod shutting down").await;
    }
    // Waiting for the auth frame, the pod may start shutting down too.
    let first = tokio::select! {
        biased;
        _ = shutdown.changed() => {
            return close(socket, CLOSE_GOING_AWAY, "pod shutting down").await;
        }
        first = tokio::time::timeout(state.config.ws_auth_timeout, socket.recv()) => first,
    };
    let frame = match first {
        Ok(Some(Ok(Message::Text(t)))) => t,
        Ok(Some(Ok(_))) => return close(socket, CLOSE_AUTH, "expected a text auth frame").await,
        Ok(_) => return,
        Err(_) => return close(socket, CLOSE_AUTH, "no auth frame in time").await,
    };
    let identity = match authenticate_ws(&state, frame.as_str()).await {
        Ok(row) => row,
        Err(e) => {
            tracing::debug!(error = %e.message, "WebSocket auth refused");
            return close(socket, CLOSE_AUTH, &e.message).await;
        }
    };
    let Some((id, mut rx)) = state
        .hub
        .subscribe_capped(&identity.pubkeyhash, state.config.ws_per_identity)
    else {
        return close(
            socket,
            CLOSE_TOO_MANY,
            "too many sessions for this identity",
        )
        .await;
    };
    tracing::debug!(pubkeyhash = %identity.pubkeyhash, "WebSocket subscriber");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                close(socket, CLOSE_GOING_AWAY, "pod shutting down").await;
                break;
            }
            frame = rx.recv() => match frame {
                Some(f) => {
                    if socket.send(Message::Text(f.into())).await.is_err() {
                        break;
                    }
                }
                None => {
                    close(socket, CLOSE_SLOW, "too slow: play back with GET /inboxes").await;
                    break;
                }
            },
            incoming = socket.recv() => match incoming {
                // Pings are answered by the library; other client frames mean nothing here.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    state.hub.unsubscribe(&identity.pubkeyhash, id);
}

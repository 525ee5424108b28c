//! `GET /` without a WebSocket upgrade: the pod's status page — what the original muttrpod
//! showed at its root: version and build, public host, users, the embedded seed's contacts
//! and values, uptime. The same URI upgraded is the WebSocket endpoint ([`crate::ws`], P-S1).
//!
//! JSON unless the client asks for HTML (`Accept` naming `text/html`, as browsers do):
//! PROFILE P-A5 wants every answer other than keys and values to be a JSON object, so a
//! script, a checker or `curl` without an `Accept` gets JSON, and only a browser gets a page.

use axum::Json;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;

/// What the status page shows.
pub async fn status(state: &AppState) -> Result<Value, ApiError> {
    let counts = state.storage.counts().await.map_err(ApiError::from)?;
    let seed = match &state.seed {
        Some(seed) => match seed.stats().await {
            Ok(s) => json!({
                "node_id": seed.contact().node_id.to_hex(),
                "address": seed.contact().socket_addr().to_string(),
                "contacts": s.table_size,
                "values": s.values_held,
            }),
            Err(e) => json!({ "error": e.to_string() }),
        },
        None => Value::Null,
    };
    let uptime_s = state.clock.now_ms().saturating_sub(state.started_ms) / 1000;
    Ok(json!({
        "software": "muttr-pod",
        "version": env!("CARGO_PKG_VERSION"),
        "revision": muttr_node::GIT_REV,
        "public_host": state.config.public_host,
        "identities": counts.identities,
        "aliases": counts.aliases,
        "inbox_entries": counts.inbox_entries,
        "websocket_sessions": state.ws_connections.load(std::sync::atomic::Ordering::Relaxed),
        "seed": seed,
        "uptime_s": uptime_s,
    }))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The answer: HTML when asked for, JSON otherwise.
pub async fn page(state: &AppState, headers: &HeaderMap) -> Response {
    let v = match status(state).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if !wants_html(headers) {
        return Json(v).into_response();
    }
    let mut rows = String::new();
    let flat = |k: &str, v: &Value| match v {
        Value::String(s) => format!("<tr><th>{}</th><td>{}</td></tr>\n", escape(k), escape(s)),
        other => format!(
            "<tr><th>{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(&other.to_string())
        ),
    };
    if let Value::Object(map) = &v {
        for (k, val) in map {
            match val {
                Value::Object(inner) => {
                    for (ik, iv) in inner {
                        rows.push_str(&flat(&format!("{k} {ik}"), iv));
                    }
                }
                other => rows.push_str(&flat(k, other)),
            }
        }
    }
    let host = escape(&state.config.public_host);
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>muttr pod {host}</title></head>\n<body><h1>muttr pod {host}</h1>\n\
         <p>A Muttr pod: keyserver, aliases, inboxes and push for <code>alias@{host}</code>. \
         The API is described at <a href=\"/openapi.json\">/openapi.json</a>; this page is \
         JSON for clients that do not ask for HTML.</p>\n<table>\n{rows}</table>\n\
         </body></html>\n"
    ))
    .into_response()
}

//! The socket API: one JSON object per line each way (see `node/DAEMON.md`).
//!
//! Requests `{"id": N, "op": …}` are answered `{"id": N, "ok": true, …}` or
//! `{"id": N, "ok": false, "error": "…"}`, in the order they came. After `subscribe`, events
//! (`{"event": "message" | "connection", …}`) are written on the same connection as they
//! happen. A line that is not a JSON object, or an unknown op, gets an error answer and the
//! connection stays open.

use std::path::Path;
use std::sync::Arc;

use muttr_node::client::{Client, Notification, delivery_json};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// What every connection shares.
pub struct Daemon {
    /// The client of the pod (with our seed when active).
    pub client: Client,
    /// The pod's URL.
    pub pod: String,
    /// Our seed, when active.
    pub seed: Option<muttr_node::driver::SeedHandle>,
    /// Events for subscribers.
    pub events: broadcast::Sender<Value>,
    /// Whether the push channel is up.
    pub connected: std::sync::atomic::AtomicBool,
    /// The home's contacts directory.
    pub contacts_dir: std::path::PathBuf,
}

/// Answers one request line. `subscribe` is answered here and acted on by the caller (it
/// starts forwarding events): the second value is true for it.
pub async fn answer(d: &Arc<Daemon>, line: &str) -> (Value, bool) {
    let req: Value = match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return (error(&Value::Null, "a request is a JSON object"), false),
        Err(e) => return (error(&Value::Null, &format!("not JSON: {e}")), false),
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let op = req.get("op").and_then(Value::as_str).unwrap_or_default();
    let result = match op {
        "status" => Ok(status(d).await),
        "send" => send(d, &req).await,
        "playback" => playback(d).await,
        "purge" => purge(d, &req).await,
        "subscribe" => Ok(json!({})),
        "contacts" => contacts(&d.contacts_dir),
        "" => Err("no `op`".to_string()),
        other => Err(format!(
            "unknown op {other:?} (status, send, playback, purge, subscribe, contacts)"
        )),
    };
    match result {
        Ok(mut v) => {
            v["id"] = id;
            v["ok"] = json!(true);
            (v, op == "subscribe")
        }
        Err(e) => (error(&id, &e), false),
    }
}

fn error(id: &Value, e: &str) -> Value {
    json!({"id": id, "ok": false, "error": e})
}

async fn status(d: &Daemon) -> Value {
    let seed = match &d.seed {
        Some(s) => match s.stats().await {
            Ok(st) => json!({"address": s.contact().socket_addr().to_string(),
                             "contacts": st.table_size, "values": st.values_held}),
            Err(e) => json!({"error": e.to_string()}),
        },
        None => Value::Null,
    };
    json!({
        "user_id": d.client.user_id().map(|u| u.to_string()),
        "pubkeyhash": d.client.pubkeyhash(),
        "pod": d.pod,
        "mode": if d.seed.is_some() { "active" } else { "passive" },
        "seed": seed,
        "connected": d.connected.load(std::sync::atomic::Ordering::Relaxed),
    })
}

async fn send(d: &Daemon, req: &Value) -> Result<Value, String> {
    let to = req["to"].as_str().ok_or("`to` (alias@host) is required")?;
    let text = req["text"].as_str().ok_or("`text` is required")?;
    let report = d
        .client
        .send(to, text.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({"key": report.key, "stored_at": report.stored_at, "entry": report.notification.id}))
}

async fn playback(d: &Daemon) -> Result<Value, String> {
    let notes: Vec<Notification> = d
        .client
        .with_retry(|| d.client.notifications())
        .await
        .map_err(|e| e.to_string())?;
    let upto = muttr_node::client::highest_id(&notes);
    let mut messages = Vec::new();
    for n in notes {
        messages.push(delivery_json(&d.client.open(n).await));
    }
    Ok(json!({"messages": messages, "upto": upto}))
}

async fn purge(d: &Daemon, req: &Value) -> Result<Value, String> {
    let upto = match &req["upto"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => return Err("`upto` is an entry id (from playback's `upto`)".into()),
    };
    let left = d
        .client
        .purge(upto.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({"left": left.len()}))
}

fn contacts(dir: &Path) -> Result<Value, String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".asc").map(str::to_string)
            })
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    names.sort();
    Ok(json!({"contacts": names}))
}

//! The suite's own HTTP/1.1 and WebSocket client (any method, header, body), and the tiny
//! federation pod it serves with axum: `GET /aliases/:alias` over plain HTTP (P-A3).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{Method, StatusCode, Uri};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use muttr_node::client::TcpDialer;
use muttr_node::client::dial::{Conn, connect};
use muttr_node::client::http::Target;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// Largest answer body read.
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub ctype: Option<String>,
    /// Body (lossy UTF-8).
    pub body: String,
    /// `Retry-After` in seconds, if any.
    pub retry_after: Option<u64>,
}

impl Resp {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    /// The media type without parameters, lowercase.
    pub fn essence(&self) -> String {
        self.ctype
            .as_deref()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// For reports: status, media type, body (clipped).
    pub fn shown(&self) -> Value {
        json!({"status": self.status, "content_type": self.ctype, "body": clip(&self.body)})
    }
}

/// `s`, clipped to 300 characters for reports.
pub fn clip(s: &str) -> Value {
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        json!(format!("{}… ({} bytes)", &s[..end], s.len()))
    } else {
        json!(s)
    }
}

/// A client for one pod.
///
/// It also watches whether the pod is still there: a request that gets no HTTP answer at all
/// (refused, reset, timed out) is followed by a probe (`GET /` on a fresh connection, twice);
/// when that gets no answer either the pod is taken to have stopped, and every later request
/// fails at once with [`STOPPED`] instead of waiting out its timeout ([`Http::stopped`]).
#[derive(Debug, Clone)]
pub struct Http {
    /// Where the pod is.
    pub target: Target,
    /// How long one request may take.
    pub timeout: Duration,
    stopped: Arc<AtomicBool>,
    answers: super::api::Log,
}

/// How many times a request answered 429 (rate limited) is asked again.
const RATE_LIMIT_RETRIES: usize = 3;

/// The error of every request made after the pod stopped answering.
pub const STOPPED: &str = "not sent: the pod had stopped answering";

impl Http {
    /// A client for the pod at `target`.
    pub fn new(target: Target, timeout: Duration) -> Http {
        Http {
            target,
            timeout,
            stopped: Arc::new(AtomicBool::new(false)),
            answers: super::api::Log::default(),
        }
    }

    /// Every answer this client (and its clones) got so far, in order.
    pub fn answers(&self) -> Vec<super::api::Exchange> {
        self.answers.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Whether the pod was found to have stopped answering.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Sends one request with any headers on a fresh connection; when it gets no HTTP answer,
    /// checks that the pod still answers at all.
    pub async fn send_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        if self.stopped() {
            return Err(STOPPED.to_string());
        }
        // A rate-limited answer (429) is not the pod's verdict on the request: it is asked
        // again after `Retry-After` (1 s when absent, at most 5 s), up to RATE_LIMIT_RETRIES
        // times. No case expects a 429.
        let mut r = self.exchange(method, path, headers, body.clone()).await;
        for _ in 0..RATE_LIMIT_RETRIES {
            let Ok(Resp {
                status: 429,
                retry_after,
                ..
            }) = &r
            else {
                break;
            };
            let wait = retry_after.unwrap_or(1).clamp(1, 5);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            r = self.exchange(method, path, headers, body.clone()).await;
        }
        if let (Ok(resp), Ok(mut log)) = (&r, self.answers.lock()) {
            log.push(super::api::Exchange {
                method: method.to_ascii_uppercase(),
                path: path.to_string(),
                status: resp.status,
                essence: resp.essence(),
                body: resp.body.clone(),
            });
        }
        if r.is_err() {
            let probe_timeout = self.timeout.min(Duration::from_secs(5));
            let probe = Http {
                timeout: probe_timeout,
                ..self.clone()
            };
            let mut alive = false;
            for _ in 0..2 {
                if probe.exchange("GET", "/", &[], Vec::new()).await.is_ok() {
                    alive = true;
                    break;
                }
            }
            if !alive {
                self.stopped.store(true, Ordering::Relaxed);
            }
        }
        r
    }

    /// Sends one request on a fresh connection.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        let headers: Vec<(String, String)> = ctype
            .map(|c| vec![("content-type".to_string(), c.to_string())])
            .unwrap_or_default();
        self.send_with(method, path, &headers, body).await
    }

    /// One request with any headers (name, value) on a fresh connection.
    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        let t = &self.target;
        let work = async {
            let conn = connect(&TcpDialer::default(), &t.host, t.port, t.tls)
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(conn))
                    .await
                    .map_err(|e| format!("HTTP handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = connection.await;
            });
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, &t.authority);
            for (name, value) in headers {
                req = req.header(name.as_str(), value.as_str());
            }
            let req = req
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| format!("bad request: {e}"))?;
            let res = sender
                .send_request(req)
                .await
                .map_err(|e| format!("no answer: {e}"))?;
            let status = res.status().as_u16();
            let ctype = res
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let retry_after = res
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let bytes = Limited::new(res.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok(Resp {
                status,
                ctype,
                body: String::from_utf8_lossy(&bytes).into_owned(),
                retry_after,
            })
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
    }

    /// Opens a WebSocket at the base URI (P-S1).
    pub async fn websocket(&self) -> Result<Ws, String> {
        if self.stopped() {
            return Err(STOPPED.to_string());
        }
        let t = &self.target;
        let conn = tokio::time::timeout(
            self.timeout,
            connect(&TcpDialer::default(), &t.host, t.port, t.tls),
        )
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("cannot connect: {e}"))?;
        let url = format!("{}://{}/", if t.tls { "wss" } else { "ws" }, t.authority);
        let (ws, _) = tokio::time::timeout(
            self.timeout,
            tokio_tungstenite::client_async(url.as_str(), conn),
        )
        .await
        .map_err(|_| "WebSocket handshake timed out".to_string())?
        .map_err(|e| format!("WebSocket handshake: {e}"))?;
        Ok(ws)
    }
}

/// A WebSocket to the pod.
pub type Ws = tokio_tungstenite::WebSocketStream<Conn<TcpStream>>;

/// What the federation pod answers for one alias: status, media type, body.
pub type Served = (u16, &'static str, String);

/// The suite's own tiny pod: answers `GET /aliases/:alias` from a fixed table over plain
/// HTTP, and remembers every path it was asked for.
#[derive(Debug)]
pub struct FedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Paths requested, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FedServer {
    /// Listens on `addr` (port 0 picks one) and serves `table` (alias → answer).
    pub async fn start(addr: SocketAddr, table: HashMap<String, Served>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let table = Arc::new(table);
        let seen2 = seen.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri| {
            let (table, seen) = (table.clone(), seen2.clone());
            async move {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                if let Ok(mut s) = seen.lock() {
                    s.push(path.to_string());
                }
                let alias = uri.path().strip_prefix("/aliases/").unwrap_or("");
                let (status, ctype, body) = match table.get(alias) {
                    Some(answer) if method == Method::GET => answer.clone(),
                    _ => (
                        404,
                        "application/json",
                        r#"{"error":"no such alias"}"#.to_string(),
                    ),
                };
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::NOT_FOUND);
                (status, [(axum::http::header::CONTENT_TYPE, ctype)], body)
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FedServer { addr, seen, task })
    }

    /// Paths requested so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The next text frame within `wait` (pings skipped).
pub async fn next_text(ws: &mut Ws, wait: Duration) -> Option<String> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return None,
        }
    }
}

/// The close code the pod sends within `wait` (`None`: none, or the connection just dropped).
pub async fn close_code(ws: &mut Ws, wait: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

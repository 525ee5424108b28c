//! A small HTTP/1.1 client over a [`Dialer`]: one connection per request, a body size limit, a
//! timeout. Enough for the pod API; nothing here knows about Muttr.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::ClientError;
use super::dial::{Dialer, connect};

/// Largest answer body read: a key or a value fits well inside.
pub const MAX_RESPONSE: usize = 1024 * 1024;

/// Where a URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// TLS (`https`/`wss`).
    pub tls: bool,
    /// Host name or address (IPv6 in brackets).
    pub host: String,
    /// Port (scheme default when the URL has none).
    pub port: u16,
    /// `host[:port]` as written in the URL.
    pub authority: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// Parses an `http://`, `https://`, `ws://` or `wss://` URL.
    pub fn parse(url: &str) -> Result<Target, ClientError> {
        let bad = |why: &str| ClientError::BadUrl(format!("{url}: {why}"));
        let uri: hyper::Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") | Some("wss") => true,
            Some("http") | Some("ws") => false,
            _ => return Err(bad("scheme must be http, https, ws or wss")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target {
            tls,
            host: authority.host().to_string(),
            port,
            authority: authority.as_str().to_string(),
            path: uri
                .path_and_query()
                .map_or("/".to_string(), |p| p.as_str().to_string()),
        })
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Body text.
    pub body: String,
}

impl Response {
    /// The `error` of a JSON error answer, or the body.
    pub fn error_message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| self.body.chars().take(200).collect())
    }
}

/// Sends one request and reads the answer.
pub async fn request<D: Dialer>(
    dialer: &D,
    method: &str,
    url: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let target = Target::parse(url)?;
    let work = async {
        let unreachable =
            |e: &dyn std::fmt::Display| ClientError::Unreachable(format!("{url}: {e}"));
        let conn = connect(dialer, &target.host, target.port, target.tls)
            .await
            .map_err(|e| unreachable(&e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(|e| unreachable(&e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut req = Request::builder()
            .method(method)
            .uri(&target.path)
            .header(hyper::header::HOST, &target.authority);
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "text/plain");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or("").to_string())))
            .map_err(|e| ClientError::BadUrl(e.to_string()))?;
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(&e))?;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = Limited::new(res.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| unreachable(&e))?
            .to_bytes();
        let body = String::from_utf8(bytes.to_vec())
            .map_err(|_| ClientError::Protocol(format!("{url}: answer is not UTF-8")))?;
        Ok(Response {
            status,
            content_type,
            body,
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ClientError::Unreachable(format!("{url}: no answer within {timeout:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_targets() {
        let t = Target::parse("https://muttr.me/aliases/alice").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "muttr.me", 443));
        assert_eq!(t.path, "/aliases/alice");
        let t = Target::parse("ws://127.0.0.1:8080").unwrap();
        assert_eq!((t.tls, t.port, t.path.as_str()), (false, 8080, "/"));
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}

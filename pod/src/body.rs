//! [`TextBody`]: the extractor for the pod's text bodies (armored keys, hex values, signed
//! auth texts), with the media-type (415), size (413) and encoding (400) checks of P-A7.
//!
//! A body over the limit is still read (and thrown away) up to [`DRAIN_MAX`] bytes before the
//! 413 goes out. Closing a connection with unread data makes the kernel reset it, and a client
//! still sending would then lose the 413 it was answered; draining lets it read the answer.
//! Bodies declared larger than [`DRAIN_MAX`] get their 413 at once.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use http_body_util::BodyExt;

use crate::AppState;
use crate::error::ApiError;

/// Media types a text body may declare. A request without `Content-Type` is read as text
/// too (lenient: `curl --data-binary @file` tools sometimes omit it), anything else is 415.
pub const TEXT_TYPES: &[&str] = &["text/plain", "application/pgp-keys"];

/// Bytes of an oversized body read and discarded at most before answering 413.
pub const DRAIN_MAX: usize = 8 * 1024 * 1024;

/// How long reading one chunk of a body may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A request body read as UTF-8 text.
#[derive(Debug, Clone)]
pub struct TextBody(pub String);

impl FromRequest<AppState> for TextBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<TextBody, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct
                .to_str()
                .map_err(|_| ApiError::unsupported_media("unreadable Content-Type"))?;
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !TEXT_TYPES.contains(&essence.as_str()) {
                return Err(ApiError::unsupported_media(format!(
                    "Content-Type must be text/plain (got {essence})"
                )));
            }
        }
        let limit = state.config.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || ApiError::too_large(format!("request body over {limit} bytes"));
        if declared.is_some_and(|n| n > DRAIN_MAX as u64) {
            return Err(too_large());
        }
        let deadline = tokio::time::Instant::now() + state.config.body_timeout;
        let bytes = read(req.into_body(), limit, deadline)
            .await?
            .ok_or_else(too_large)?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
        Ok(TextBody(text))
    }
}

/// Reads the body; `None` when it is over `limit` (then read on, discarding, up to
/// [`DRAIN_MAX`]). The whole body must arrive by `deadline` (`body_timeout`) and no chunk
/// may take longer than [`READ_TIMEOUT`]: 408 otherwise.
async fn read(
    mut body: axum::body::Body,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<Option<Bytes>, ApiError> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    loop {
        let chunk_deadline = deadline.min(tokio::time::Instant::now() + READ_TIMEOUT);
        let frame = tokio::time::timeout_at(chunk_deadline, body.frame())
            .await
            .map_err(|_| {
                tracing::debug!(received = total, "request body timed out");
                ApiError::request_timeout(format!(
                    "the body did not arrive in time ({total} bytes received)"
                ))
            })?;
        let Some(frame) = frame else { break };
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("could not read the body: {e}")))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        total = total.saturating_add(data.len());
        if total <= limit {
            kept.extend_from_slice(data);
        } else if total > DRAIN_MAX {
            break;
        }
    }
    Ok((total <= limit).then(|| Bytes::from(kept)))
}

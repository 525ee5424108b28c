//! [`TextBody`]: the extractor for the pod's text bodies (armored keys, hex values, signed
//! auth texts), with the media-type (415), size (413) and encoding (400) checks of P-A7.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use crate::error::ApiError;

/// Media types a text body may declare. A request without `Content-Type` is read as text
/// too (lenient: `curl --data-binary @file` tools sometimes omit it), anything else is 415.
pub const TEXT_TYPES: &[&str] = &["text/plain", "application/pgp-keys"];

/// A request body read as UTF-8 text.
#[derive(Debug, Clone)]
pub struct TextBody(pub String);

impl<S: Send + Sync> FromRequest<S> for TextBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<TextBody, ApiError> {
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
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large("request body too large")
            } else {
                ApiError::bad_request(format!("could not read the body: {e}"))
            }
        })?;
        let text = String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?;
        Ok(TextBody(text))
    }
}

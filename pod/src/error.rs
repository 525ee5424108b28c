//! The one error type of the API, rendered as `{"error": "<message>"}` with the status of
//! P-A7, and the middleware that gives every other error answer (axum's own 404/405/413/415
//! rejections) the same JSON shape.
//!
//! Errors of other layers become an [`ApiError`] here, by variant, through `From` — the one
//! place where a failure's kind decides its status. No status is ever chosen from an error's
//! text.

use axum::Json;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error answer: a status and a message for the `error` field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status (P-A7).
    pub status: StatusCode,
    /// What went wrong, for the `error` field.
    pub message: String,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401: authentication failed (signature, nonce, token).
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }
    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, message)
    }
    /// 404: unknown alias, message or route.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
    /// 408: the request (or its body) did not arrive, or could not be answered, in time.
    pub fn request_timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, message)
    }
    /// 409: alias taken, key registered by someone else.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
    /// 413: body too large.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
    /// 415: wrong media type.
    pub fn unsupported_media(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
    }
    /// 429: rate limited.
    pub fn too_many(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
    }
    /// 500: the pod failed (storage); the message is logged, the client gets a generic one.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %message, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
    /// 503: the DHT could not be reached.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

/// Storage errors: a database that cannot be reached now is 503 (nothing was written; the
/// request may be tried again, and succeeds once the database is back); any other failure is
/// 500.
impl From<crate::storage::StorageError> for ApiError {
    fn from(e: crate::storage::StorageError) -> ApiError {
        if e.unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            ApiError::unavailable("the database cannot be reached now; try again")
        } else {
            ApiError::internal(e)
        }
    }
}

/// The embedded seed's errors (`POST /messages`, `GET /messages/:hash`).
impl From<muttr_node::driver::SeedError> for ApiError {
    fn from(e: muttr_node::driver::SeedError) -> ApiError {
        use muttr_node::driver::SeedError;
        use muttr_node::kad::CommandError;
        match e {
            SeedError::Refused(CommandError::InvalidValue(_)) => {
                ApiError::bad_request(format!("{e} (P-V1)"))
            }
            SeedError::Refused(CommandError::TooLarge { .. }) => ApiError::too_large(e.to_string()),
            SeedError::Stopped => ApiError::unavailable(e.to_string()),
            SeedError::Unexpected(_) => ApiError::internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Middleware body: an error answer (status ≥ 400) that is not already JSON gets the JSON
/// error shape (P-A7: "never a bare text error or an HTML page"). This covers axum's own
/// answers: 404 of unknown routes, 405 of known routes with another method, extractor
/// rejections.
pub async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if status.as_u16() < 400 {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default_message(status).to_string());
    let body = serde_json::to_vec(&serde_json::json!({ "error": text }))
        .unwrap_or_else(|_| b"{\"error\":\"error\"}".to_vec());
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

fn default_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no such route",
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route",
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported media type",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        _ => status.canonical_reason().unwrap_or("error"),
    }
}

/// The answer when a handler panics (tower-http's catch-panic layer): a 500 in the JSON
/// shape, the panic logged; the connection and the pod carry on.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    ApiError::internal(format!("handler panicked: {what}")).into_response()
}

/// The fallback for unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The fallback for known routes with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use muttr_node::driver::SeedError;
    use muttr_node::kad::CommandError;

    #[test]
    fn seed_errors_map_to_statuses_by_variant() {
        let cases = [
            (
                SeedError::Refused(CommandError::InvalidValue("odd length".into())),
                StatusCode::BAD_REQUEST,
            ),
            (
                SeedError::Refused(CommandError::TooLarge { max: 65_507 }),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (SeedError::Stopped, StatusCode::SERVICE_UNAVAILABLE),
            (
                SeedError::Unexpected("Pinged".into()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            let text = e.to_string();
            let api = ApiError::from(e);
            assert_eq!(api.status, status, "{text}");
            // Internal errors are logged, not shown; the others carry the seed's reason.
            if status != StatusCode::INTERNAL_SERVER_ERROR {
                assert!(api.message.starts_with(&text), "{api:?}");
            }
        }
    }
}

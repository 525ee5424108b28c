//! The OpenAPI 3 document of the pod API (`pod/openapi.json`, served at `/openapi.json`).
//! A test checks that it lists exactly the routes of [`crate::ROUTES`] and that the router
//! answers each of them.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as committed in the repository.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /openapi.json`.
pub async fn serve() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}

/// The (method, path) pairs the document describes, methods uppercase.
pub fn operations(document: &serde_json::Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    if let Some(paths) = document.get("paths").and_then(|p| p.as_object()) {
        for (path, item) in paths {
            if let Some(item) = item.as_object() {
                for method in item.keys() {
                    if ["get", "post", "put", "delete", "patch", "head", "options"]
                        .contains(&method.as_str())
                    {
                        ops.push((method.to_ascii_uppercase(), path.clone()));
                    }
                }
            }
        }
    }
    ops.sort();
    ops
}

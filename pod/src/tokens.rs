//! [`TokenStore`]: the tokens of P-A6 — random, bound to (identity, resource, method), valid
//! for 30 s, usable once — kept in memory (a restarted pod refuses old tokens, which a client
//! handles by asking again).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::ApiError;

/// Tokens kept at most; beyond, the request for a new one is refused with 429 (each token
/// needs an authorized, rate-limited request, so this takes a flood from many identities).
pub const MAX_TOKENS: usize = 100_000;

/// What a token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The identity (pubkeyhash) it was issued to.
    pub identity: String,
    /// The path it is for, e.g. `/inboxes`.
    pub resource: String,
    /// The method it is for, uppercase (`GET`, `DELETE`).
    pub method: String,
    /// When it was issued (ms).
    pub issued: u64,
}

/// Issued, unused tokens.
#[derive(Debug)]
pub struct TokenStore {
    ttl_ms: u64,
    tokens: Mutex<HashMap<String, Grant>>,
}

impl TokenStore {
    /// Tokens valid for `ttl_ms`.
    pub fn new(ttl_ms: u64) -> TokenStore {
        TokenStore {
            ttl_ms,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Grant>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a token `value` for `grant`.
    pub fn insert(&self, value: String, grant: Grant, now_ms: u64) -> Result<(), ApiError> {
        let mut tokens = self.lock();
        if tokens.len() >= MAX_TOKENS {
            let ttl = self.ttl_ms;
            tokens.retain(|_, g| now_ms < g.issued.saturating_add(ttl));
            if tokens.len() >= MAX_TOKENS {
                return Err(ApiError::too_many("too many outstanding tokens"));
            }
        }
        tokens.insert(value, grant);
        Ok(())
    }

    /// Uses a token for `method resource`: returns the identity it was issued to and forgets
    /// it. Unknown, expired or used tokens, and tokens for another route or method, are 401
    /// (P-A7). A token presented for the wrong route is not spent.
    pub fn consume(
        &self,
        value: &str,
        resource: &str,
        method: &str,
        now_ms: u64,
    ) -> Result<String, ApiError> {
        let mut tokens = self.lock();
        let Some(grant) = tokens.get(value) else {
            return Err(ApiError::unauthorized(
                "unknown or already used token (P-A6)",
            ));
        };
        if now_ms >= grant.issued.saturating_add(self.ttl_ms) {
            tokens.remove(value);
            return Err(ApiError::unauthorized("token expired (P-A6)"));
        }
        if grant.resource != resource || grant.method != method {
            return Err(ApiError::unauthorized(format!(
                "token is for {} {}, not {method} {resource} (P-A6)",
                grant.method, grant.resource
            )));
        }
        let grant = tokens.remove(value).expect("present: checked above");
        Ok(grant.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(issued: u64) -> Grant {
        Grant {
            identity: "me".into(),
            resource: "/inboxes".into(),
            method: "GET".into(),
            issued,
        }
    }

    #[test]
    fn a_token_works_once_for_its_route_within_its_lifetime() {
        let t = TokenStore::new(30_000);
        t.insert("a".into(), grant(1_000), 1_000).unwrap();
        assert_eq!(
            t.consume("a", "/inboxes", "DELETE", 2_000)
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(t.consume("a", "/inboxes", "GET", 2_000).unwrap(), "me");
        assert_eq!(
            t.consume("a", "/inboxes", "GET", 2_000).unwrap_err().status,
            401
        );
        t.insert("b".into(), grant(1_000), 1_000).unwrap();
        assert!(t.consume("b", "/inboxes", "GET", 30_999).is_ok());
        t.insert("c".into(), grant(1_000), 1_000).unwrap();
        let e = t.consume("c", "/inboxes", "GET", 31_000).unwrap_err();
        assert!(e.message.contains("expired"), "{e}");
    }
}

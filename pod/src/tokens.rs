//! [`TokenStore`]: the tokens of P-A6 — random, bound to (identity, resource, method), valid
//! for 30 s, usable once.
//!
//! With SQLite they are kept in this process's memory (a restarted pod refuses old tokens,
//! which a client handles by asking again). With PostgreSQL they are rows of the shared
//! database, so a token issued by one replica is spent once on any
//! ([`crate::storage::Postgres::take_token`]).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::ApiError;
use crate::storage::Storage;
use crate::storage::postgres::TokenUse;

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

    /// Records a token `value` for `grant`, in `storage` when it is shared by replicas.
    pub async fn insert(
        &self,
        storage: &Storage,
        value: String,
        grant: Grant,
        now_ms: u64,
    ) -> Result<(), ApiError> {
        if let Some(pg) = storage.postgres() {
            let expires = grant.issued.saturating_add(self.ttl_ms);
            return pg
                .insert_token(&value, &grant, expires)
                .await
                .map_err(ApiError::from);
        }
        self.insert_here(value, grant, now_ms)
    }

    /// Uses a token for `method resource`: returns the identity it was issued to and forgets
    /// it. Unknown, expired or used tokens, and tokens for another route or method, are 401
    /// (P-A7). A token presented for the wrong route is not spent.
    pub async fn consume(
        &self,
        storage: &Storage,
        value: &str,
        resource: &str,
        method: &str,
        now_ms: u64,
    ) -> Result<String, ApiError> {
        let used = match storage.postgres() {
            Some(pg) => pg
                .take_token(value, resource, method, now_ms)
                .await
                .map_err(ApiError::from)?,
            None => self.take_here(value, resource, method, now_ms),
        };
        match used {
            TokenUse::Spent(identity) => Ok(identity),
            TokenUse::Unknown => Err(ApiError::unauthorized(
                "unknown or already used token (P-A6)",
            )),
            TokenUse::Expired => Err(ApiError::unauthorized("token expired (P-A6)")),
            TokenUse::OtherRoute {
                method: m,
                resource: r,
            } => Err(ApiError::unauthorized(format!(
                "token is for {m} {r}, not {method} {resource} (P-A6)"
            ))),
        }
    }

    fn insert_here(&self, value: String, grant: Grant, now_ms: u64) -> Result<(), ApiError> {
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

    fn take_here(&self, value: &str, resource: &str, method: &str, now_ms: u64) -> TokenUse {
        let mut tokens = self.lock();
        let Some(grant) = tokens.get(value) else {
            return TokenUse::Unknown;
        };
        if now_ms >= grant.issued.saturating_add(self.ttl_ms) {
            tokens.remove(value);
            return TokenUse::Expired;
        }
        if grant.resource != resource || grant.method != method {
            return TokenUse::OtherRoute {
                method: grant.method.clone(),
                resource: grant.resource.clone(),
            };
        }
        match tokens.remove(value) {
            Some(grant) => TokenUse::Spent(grant.identity),
            None => TokenUse::Unknown,
        }
    }
}

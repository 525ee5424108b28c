//! Authentication and authorization of requests (P-A1–P-A4) and of WebSocket clients (P-S1).
//!
//! An authenticated request's body is a cleartext-signed query string. The pod reads the
//! claimed identity from it, finds the key that must have signed it (registered here for
//! `pubkeyhash`; fetched from the user's pod for `href`), verifies the signature, checks the
//! nonce window and refuses replays. Only then are the parameters used — and only those of the
//! verified text, so nothing can be altered in flight.
//!
//! Order matters: the signature is checked before the nonce is recorded (a forger cannot burn
//! someone's nonces) and before the per-identity rate limit is charged (a forger cannot
//! exhaust someone's allowance).

use muttr_node::crypto::PublicKey;
use muttr_node::crypto::auth::{self, AuthError, AuthText, HREF, PUBKEYHASH};
use muttr_node::id::is_lower_hex;

use crate::AppState;
use crate::error::ApiError;
use crate::federation::{UserId, parse_user_id};
use crate::storage::IdentityRow;

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The verified auth text (identity, nonce and the endpoint's parameters).
    pub text: AuthText,
    /// The key that signed it.
    pub key: PublicKey,
    /// The identity registered here, when `identityType=pubkeyhash` (then the caller is
    /// authorized, P-A3); `None` for `href` callers.
    pub registered: Option<IdentityRow>,
}

impl Authenticated {
    /// The registered identity, or 403 for a caller that is only authenticated (P-A4).
    pub fn authorized(&self) -> Result<&IdentityRow, ApiError> {
        self.registered.as_ref().ok_or_else(|| {
            ApiError::forbidden(
                "only identities registered at this pod (identityType=pubkeyhash) may do this",
            )
        })
    }

    /// A required endpoint parameter (400 when missing).
    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.text
            .param(name)
            .ok_or_else(|| ApiError::bad_request(format!("missing signed parameter `{name}`")))
    }
}

fn auth_failure(e: AuthError) -> ApiError {
    match e {
        AuthError::BadArmor(_) | AuthError::Malformed(_) => {
            ApiError::bad_request(format!("not a valid auth text (P-A1): {e}"))
        }
        other => ApiError::unauthorized(format!("authentication failed: {other}")),
    }
}

/// Checks the signed body of an authenticated request (P-A1–P-A3).
pub async fn authenticate(state: &AppState, body: &str) -> Result<Authenticated, ApiError> {
    let claimed = auth::parse_auth(body).map_err(auth_failure)?;
    let (key, registered) = match claimed.identity_type.as_str() {
        PUBKEYHASH => {
            let row = registered_identity(state, &claimed.identity).await?;
            let key = PublicKey::from_armored(&row.armored).map_err(ApiError::internal)?;
            (key, Some(row))
        }
        HREF => {
            let user = parse_user_id(&claimed.identity)
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            let key = resolve_user(state, &user).await.map_err(|e| {
                let who = claimed.identity.clone();
                e.into_api(|m| ApiError::unauthorized(format!("cannot authenticate {who}: {m}")))
            })?;
            (key, None)
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "identityType must be `pubkeyhash` or `href` (got `{other}`)"
            )));
        }
    };
    let text = verify(state, body, &key)?;
    // The verified text must be the one that named the key.
    if text.identity != claimed.identity || text.identity_type != claimed.identity_type {
        return Err(ApiError::unauthorized("signed identity differs"));
    }
    accept_nonce(state, &text).await?;
    if !state
        .identity_limiter
        .allow(&text.identity, state.clock.now_ms())
    {
        return Err(ApiError::too_many("too many requests for this identity"));
    }
    Ok(Authenticated {
        text,
        key,
        registered,
    })
}

/// Checks a WebSocket auth frame: hex of a cleartext-signed auth text with
/// `identityType=pubkeyhash` (P-S1). Returns the registered identity.
pub async fn authenticate_ws(state: &AppState, frame: &str) -> Result<IdentityRow, ApiError> {
    let bytes = hex::decode(frame.trim())
        .map_err(|_| ApiError::bad_request("the auth frame must be hex (P-S1)"))?;
    let armored = String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("the auth frame is not text"))?;
    let claimed = auth::parse_auth(&armored).map_err(auth_failure)?;
    if claimed.identity_type != PUBKEYHASH {
        return Err(ApiError::unauthorized(
            "WebSocket clients authenticate with identityType=pubkeyhash (P-S1)",
        ));
    }
    let row = registered_identity(state, &claimed.identity).await?;
    let key = PublicKey::from_armored(&row.armored).map_err(ApiError::internal)?;
    let text = verify(state, &armored, &key)?;
    if text.identity != claimed.identity || text.identity_type != PUBKEYHASH {
        return Err(ApiError::unauthorized("signed identity differs"));
    }
    accept_nonce(state, &text).await?;
    Ok(row)
}

async fn registered_identity(state: &AppState, identity: &str) -> Result<IdentityRow, ApiError> {
    if identity.len() != 40 || !is_lower_hex(identity) {
        return Err(ApiError::bad_request(
            "a pubkeyhash identity is 40 lowercase hex characters (P-G1)",
        ));
    }
    state
        .storage
        .identity(identity)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::unauthorized("unknown identity: register the key first (POST /)"))
}

fn verify(state: &AppState, armored: &str, key: &PublicKey) -> Result<AuthText, ApiError> {
    auth::verify_auth(armored, key, state.clock.now_system()).map_err(|e| match e {
        AuthError::BadArmor(_) => ApiError::bad_request(format!("not a valid auth text: {e}")),
        other => ApiError::unauthorized(format!("authentication failed: {other}")),
    })
}

async fn accept_nonce(state: &AppState, text: &AuthText) -> Result<(), ApiError> {
    let now = state.clock.now_ms();
    let window = u64::try_from(state.config.nonce_window.as_millis()).unwrap_or(u64::MAX);
    auth::check_nonce(text.nonce, now, window)
        .map_err(|e| ApiError::unauthorized(format!("{e} (P-A2)")))?;
    // Keep the record until the nonce would fail the window check anyway.
    let expires = text.nonce.saturating_add(window);
    let fresh = state
        .storage
        .use_nonce(&text.identity, text.nonce, now, expires)
        .await
        .map_err(ApiError::from)?;
    if !fresh {
        return Err(ApiError::unauthorized(
            "nonce already used by this identity (replay, P-A2)",
        ));
    }
    Ok(())
}

/// Why a user's key could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The user's pod could not be reached or took too long: the same request may succeed
    /// later, so callers answer 503 and clients retry.
    #[error("{0}")]
    Unreachable(String),
    /// There is no such user, or what came back is not a key: the answer will not change.
    #[error("{0}")]
    Refused(String),
}

impl ResolveError {
    /// The answer for a request that needed this key: 503 when the user's pod was
    /// unreachable (a pod restarting must not make messages to or from its users fail for
    /// good), `refused` otherwise.
    pub fn into_api(self, refused: impl FnOnce(String) -> ApiError) -> ApiError {
        match self {
            ResolveError::Unreachable(m) => {
                ApiError::unavailable(format!("{m}; the user's pod may be restarting, try again"))
            }
            ResolveError::Refused(m) => refused(m),
        }
    }
}

/// The key of `alias@host`: from this pod's own aliases when `host` is this pod, otherwise
/// fetched from the user's pod (P-A3).
pub async fn resolve_user(state: &AppState, user: &UserId) -> Result<PublicKey, ResolveError> {
    if user.host == state.config.public_host.to_ascii_lowercase() {
        let row = state
            .storage
            .alias(&user.alias)
            .await
            .map_err(|e| ResolveError::Unreachable(e.to_string()))?
            .ok_or_else(|| ResolveError::Refused(format!("no alias `{}` here", user.alias)))?;
        return PublicKey::from_armored(&row.armored)
            .map_err(|e| ResolveError::Refused(e.to_string()));
    }
    let url = user.key_url(state.config.insecure_federation);
    let text = state
        .fetcher
        .fetch(
            &url,
            state.config.max_fetched_key_bytes,
            state.config.fetch_timeout,
        )
        .await
        .map_err(|e| match e {
            // An untrusted certificate may be fixed (a renewal, a --ca-file) without the
            // user doing anything: retryable, like an unreachable pod.
            crate::federation::FetchError::Unreachable { .. }
            | crate::federation::FetchError::Untrusted { .. } => {
                ResolveError::Unreachable(e.to_string())
            }
            other => ResolveError::Refused(other.to_string()),
        })?;
    PublicKey::from_armored(&text)
        .map_err(|e| ResolveError::Refused(format!("{url} did not answer a key: {e}")))
}

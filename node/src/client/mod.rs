//! The client library: what libmuttr promised — the 12-step flow of the whitepaper behind two
//! calls, [`Client::send`] and a stream of received messages ([`Client::listen`],
//! [`Client::inbox`]).
//!
//! ```text
//! send("bob@pod2", text):   6. GET pod2/aliases/bob          (Bob's key)
//!                           7. sign (our key) + encrypt (Bob's key and ours)
//!                           8. store in the DHT: our seed (active) or POST pod/messages (passive)
//!                           9. POST pod2/inboxes/bob  signed {from: alice@pod1, key}, href identity
//! listen() / inbox():      10. WebSocket push / GET /inboxes playback
//!                          11. fetch the value: our seed (active) or GET pod/messages/KEY (passive)
//!                          12. decrypt, verify against the sender's key (GET podX/aliases/alias)
//! ```
//!
//! The client is generic over a [`Dialer`] (TCP by default; the simulator supplies its own) and,
//! in active mode, uses a running seed's [`SeedHandle`] — itself generic over the transport.
//! Time comes from an injected [`Clock`]. A message whose signature does not verify is still
//! returned, with its [`Verdict`], and is never presented as from its claimed sender (P-G3).
//!
//! | module | what it holds |
//! |---|---|
//! | [`InboxCursor`] | what a client has read of its inbox: how far it may purge (P-X1) |
//! | [`dial`] | the `Dialer` trait, TCP, TLS |
//! | [`http`] | a minimal HTTP/1.1 request over a dialer |
//! | [`retry`] | the one retry/reconnect policy (jittered exponential backoff, bounded) |
//! | [`userid`] | user IDs (`alias@host[:port]`, strict) and aliases (P-A8), shared with the pod |

mod cursor;
pub mod dial;
pub mod home;
pub mod http;
pub mod retry;
pub mod userid;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use crate::crypto::auth::{HREF, PUBKEYHASH, sign_auth, sign_auth_hex};
use crate::crypto::{
    CryptoError, Identity, PublicKey, Verdict, decrypt_and_verify, sign_and_encrypt,
};
use crate::driver::{SeedError, SeedHandle};
use crate::id::Key;
use crate::net::Clock;
use crate::value;

pub use cursor::InboxCursor;
pub use dial::{Dialer, TcpDialer};
pub use userid::{UserId, valid_alias};

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A URL or user ID could not be used.
    #[error("bad address: {0}")]
    BadUrl(String),
    /// The pod could not be reached.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The pod answered with an error.
    #[error("{url} answered {status}: {message}")]
    Http {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
        /// The `error` of the answer.
        message: String,
    },
    /// The answer did not have the protocol's shape.
    #[error("protocol: {0}")]
    Protocol(String),
    /// OpenPGP failed.
    #[error("OpenPGP: {0}")]
    Crypto(#[from] CryptoError),
    /// The seed failed (active mode).
    #[error("seed: {0}")]
    Seed(#[from] SeedError),
    /// Sending needs our userID: register an alias first.
    #[error("no alias: add one at the pod first (the recipient's pod checks `from`)")]
    NoAlias,
    /// The message is not in the DHT.
    #[error("message {0} not found in the DHT")]
    NotFound(String),
}

/// One side of an inbox entry (the pod's `{"userID", "pubkeyhash"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// `alias@podhost`.
    #[serde(rename = "userID")]
    pub user_id: String,
    /// SHA-1 of the armored key.
    pub pubkeyhash: String,
}

/// A notification: where a message for us is (whitepaper "Message Format").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Us.
    pub recipient: Party,
    /// The claimed sender.
    pub sender: Party,
    /// The message's key in the DHT.
    pub key: String,
    /// When the pod received it (ms).
    pub timestamp: u64,
    /// The entry's place in its inbox (PROFILE P-X1): decimal digits, strictly increasing
    /// within one inbox. `None` from a pod that follows only the whitepaper.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Notification {
    /// The entry id as a number, when the pod gave a valid one (P-X1).
    pub fn id_number(&self) -> Option<u128> {
        let id = self.id.as_deref()?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok()
    }
}

/// The highest entry id among `seen` (P-X1): what to purge up to after handling them. `None`
/// when the pod gave no ids (a whitepaper-only pod).
pub fn highest_id(seen: &[Notification]) -> Option<String> {
    seen.iter()
        .filter_map(|n| n.id_number().map(|v| (v, n.id.clone())))
        .max_by_key(|(v, _)| *v)
        .and_then(|(_, id)| id)
}

/// A received, decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The notification that announced it.
    pub notification: Notification,
    /// The plaintext: authentic only when `verdict.is_good()` (P-G3).
    pub plaintext: Vec<u8>,
    /// The signature verdict against the claimed sender's key.
    pub verdict: Verdict,
}

/// A notification whose message could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    /// The notification.
    pub notification: Notification,
    /// Why.
    pub error: ClientError,
}

/// What came of one notification.
pub type Delivery = Result<Received, Undelivered>;

/// A delivery as JSON, the shape `muttr --json` prints and `muttrd` sends (`node/DAEMON.md`):
/// `{"event": "message", "from", "to", "text", "verified", "verdict" ([`Verdict::code`]),
/// "verdict_text", "key", "timestamp", "entry"}`; an unreadable one has `"verified": false` and `"error"` instead of `"text"`.
pub fn delivery_json(d: &Delivery) -> serde_json::Value {
    use serde_json::json;
    match d {
        Ok(r) => json!({
            "event": "message",
            "from": r.notification.sender.user_id,
            "to": r.notification.recipient.user_id,
            "text": String::from_utf8_lossy(&r.plaintext),
            "verified": r.verdict.is_good(),
            "verdict": r.verdict.code(),
            "verdict_text": r.verdict.to_string(),
            "key": r.notification.key,
            "timestamp": r.notification.timestamp,
            "entry": r.notification.id,
        }),
        Err(u) => json!({
            "event": "message",
            "from": u.notification.sender.user_id,
            "to": u.notification.recipient.user_id,
            "verified": false,
            "error": u.error.to_string(),
            "key": u.notification.key,
            "timestamp": u.notification.timestamp,
            "entry": u.notification.id,
        }),
    }
}

/// A push-channel event as JSON (`muttr listen --json`, `muttrd`'s `connection` event):
/// `{"event": "connection", "state": "lost", "reason"}` or `{…, "state": "reconnected",
/// "missed"}`; `None` for an entry (shown with [`delivery_json`] once opened).
pub fn heard_json(h: &Heard) -> Option<serde_json::Value> {
    use serde_json::json;
    match h {
        Heard::Entry(_) => None,
        Heard::Dropped(why) => Some(json!({"event": "connection", "state": "lost", "reason": why})),
        Heard::Reconnected { missed } => {
            Some(json!({"event": "connection", "state": "reconnected", "missed": missed}))
        }
    }
}

/// What [`Client::send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReport {
    /// The message's key in the DHT.
    pub key: String,
    /// Seeds that acknowledged the STORE: through our own seed (active mode), or the pod's
    /// `replicas` (passive mode: seeds besides the pod's own).
    pub stored_at: usize,
    /// The recipient's pod's record of the notification.
    pub notification: Notification,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Our pod, e.g. `https://muttr.me` or `http://127.0.0.1:8080`.
    pub pod: String,
    /// Our alias at that pod, once we have one: our userID is `alias@podhost`.
    pub alias: Option<String>,
    /// Reach other pods over plain `http://` (local networks, tests).
    pub insecure: bool,
    /// Timeout of each HTTP request.
    pub timeout: Duration,
}

impl ClientConfig {
    /// Settings for `pod`, with no alias yet.
    pub fn new(pod: impl Into<String>) -> ClientConfig {
        ClientConfig {
            pod: pod.into().trim_end_matches('/').to_string(),
            alias: None,
            insecure: false,
            timeout: Duration::from_secs(30),
        }
    }
}

/// A Muttr user: a key pair, a pod, and optionally a seed of its own (active mode).
pub struct Client<D: Dialer = TcpDialer> {
    me: Identity,
    public: PublicKey,
    config: ClientConfig,
    pod: http::Target,
    dialer: D,
    seed: Option<SeedHandle>,
    clock: Clock,
    last_nonce: AtomicU64,
    /// Backoffs started (seeds their jitter, [`Client::with_retry`]).
    retries: AtomicU64,
}

impl<D: Dialer> std::fmt::Debug for Client<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("active", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

fn json(res: &http::Response, url: &str) -> Result<serde_json::Value, ClientError> {
    serde_json::from_str(&res.body)
        .map_err(|e| ClientError::Protocol(format!("{url}: answer is not JSON: {e}")))
}

fn check(res: http::Response, url: &str) -> Result<http::Response, ClientError> {
    if res.status == 200 {
        Ok(res)
    } else {
        Err(ClientError::Http {
            url: url.to_string(),
            status: res.status,
            message: res.error_message(),
        })
    }
}

impl Client<TcpDialer> {
    /// A passive client over TCP.
    pub fn new(me: Identity, config: ClientConfig, clock: Clock) -> Result<Client, ClientError> {
        Client::with_dialer(me, config, clock, TcpDialer::default())
    }
}

impl<D: Dialer> Client<D> {
    /// A passive client over `dialer`.
    pub fn with_dialer(
        me: Identity,
        config: ClientConfig,
        clock: Clock,
        dialer: D,
    ) -> Result<Client<D>, ClientError> {
        let pod = http::Target::parse(&config.pod)?;
        Ok(Client {
            public: me.public(),
            me,
            config,
            pod,
            dialer,
            seed: None,
            clock,
            last_nonce: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    /// Active mode: store and fetch through this seed instead of the pod.
    pub fn with_seed(mut self, seed: SeedHandle) -> Client<D> {
        self.seed = Some(seed);
        self
    }

    /// Our pubkeyhash (P-G1).
    pub fn pubkeyhash(&self) -> String {
        self.public.pubkeyhash()
    }

    /// Our userID, once we have an alias.
    pub fn user_id(&self) -> Option<UserId> {
        self.config.alias.as_ref().map(|a| UserId {
            alias: a.clone(),
            host: self.pod.authority.to_ascii_lowercase(),
        })
    }

    /// Whether a seed of our own stores and fetches (active mode).
    pub fn is_active(&self) -> bool {
        self.seed.is_some()
    }

    fn pod_url(&self, path: &str) -> String {
        format!("{}{path}", self.config.pod)
    }

    /// The base URL of the pod of `host`: ours (with its scheme) or another one.
    fn pod_of(&self, host: &str) -> String {
        if host.eq_ignore_ascii_case(&self.pod.authority) {
            self.config.pod.clone()
        } else if self.config.insecure {
            format!("http://{host}")
        } else {
            format!("https://{host}")
        }
    }

    fn nonce(&self) -> u64 {
        let now = self.clock.now_ms();
        let mut last = self.last_nonce.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self
                .last_nonce
                .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    async fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
    ) -> Result<http::Response, ClientError> {
        tracing::debug!(method, url, "request");
        let res = http::request(&self.dialer, method, url, body, self.config.timeout).await;
        match &res {
            Ok(r) => tracing::debug!(method, url, status = r.status, "response"),
            Err(e) => tracing::debug!(method, url, error = %e, "no response"),
        }
        check(res?, url)
    }

    fn signed(&self, identity_type: &str, params: &[(&str, &str)]) -> Result<String, ClientError> {
        let identity = match identity_type {
            HREF => self.user_id().ok_or(ClientError::NoAlias)?.to_string(),
            _ => self.pubkeyhash(),
        };
        sign_auth(
            &self.me,
            &identity,
            identity_type,
            self.nonce(),
            params,
            self.clock.now_system(),
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// The pod's status page (`GET /` without a WebSocket upgrade, JSON): its version,
    /// public host and seed (`seed.address`, which a client joins the DHT through).
    pub async fn pod_status(&self) -> Result<serde_json::Value, ClientError> {
        let url = self.pod_url("/");
        let res = self.call("GET", &url, None).await?;
        json(&res, &url)
    }

    /// Step 3: registers our key with the pod; returns the pubkeyhash it answered.
    pub async fn register(&self) -> Result<String, ClientError> {
        let url = self.pod_url("/");
        let res = self.call("POST", &url, Some(self.public.armored())).await?;
        let v = json(&res, &url)?;
        let hash = v["identity"]["pubkeyhash"]
            .as_str()
            .ok_or_else(|| ClientError::Protocol(format!("{url}: no identity.pubkeyhash")))?;
        if hash != self.pubkeyhash() {
            return Err(ClientError::Protocol(format!(
                "{url} answered pubkeyhash {hash}, expected {} (P-G1)",
                self.pubkeyhash()
            )));
        }
        Ok(hash.to_string())
    }

    /// Step 4: takes `alias` at the pod; it becomes our userID.
    pub async fn add_alias(&mut self, alias: &str) -> Result<UserId, ClientError> {
        let url = self.pod_url("/aliases");
        let body = self.signed(PUBKEYHASH, &[("alias", alias)])?;
        self.call("POST", &url, Some(&body)).await?;
        self.config.alias = Some(alias.to_string());
        Ok(self.user_id().expect("alias just set"))
    }

    /// Step 6: the key of `user` (`alias@host`), from its pod.
    pub async fn key_of(&self, user: &UserId) -> Result<PublicKey, ClientError> {
        let url = format!("{}/aliases/{}", self.pod_of(&user.host), user.alias);
        let res = self.call("GET", &url, None).await?;
        Ok(PublicKey::from_armored(&res.body)?)
    }

    /// Steps 6–9: sends `text` to `to` (`alias@pod`).
    pub async fn send(&self, to: &str, text: &[u8]) -> Result<SendReport, ClientError> {
        if self.user_id().is_none() {
            return Err(ClientError::NoAlias);
        }
        let to = UserId::parse(to)?;
        // Each network step is retried under the one policy ([`retry`]): a pod restarting or
        // a lost packet delays a message, it does not lose it. (A notify whose answer was lost
        // after the pod stored it may leave two entries for one key: delivery is at least
        // once, and listeners see entries by id.)
        let their_key = self.with_retry(|| self.key_of(&to)).await?;
        let value_hex = self.seal(&their_key, text)?;
        let (key, stored_at) = self.with_retry(|| self.store(value_hex.clone())).await?;
        let notification = self.with_retry(|| self.notify(&to, &key)).await?;
        Ok(SendReport {
            key,
            stored_at,
            notification,
        })
    }

    /// Our public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Step 7: signs `text` with our key and encrypts it to `to` and to us; returns the value
    /// to store (hex of the armored message, P-V1).
    pub fn seal(&self, to: &PublicKey, text: &[u8]) -> Result<String, ClientError> {
        let armored =
            sign_and_encrypt(text, &self.me, &[to, &self.public], self.clock.now_system())?;
        Ok(value::to_hex(&armored))
    }

    /// Step 9: tells `to`'s pod that a message for them is at `key`, signed as our userID
    /// (`href` identity, so any pod can check it, P-A3/P-A4).
    pub async fn notify(&self, to: &UserId, key: &str) -> Result<Notification, ClientError> {
        let me = self.user_id().ok_or(ClientError::NoAlias)?.to_string();
        let url = format!("{}/inboxes/{}", self.pod_of(&to.host), to.alias);
        let body = self.signed(HREF, &[("from", &me), ("key", key)])?;
        let res = self.call("POST", &url, Some(&body)).await?;
        let v = json(&res, &url)?;
        serde_json::from_value(v["message"].clone())
            .map_err(|e| ClientError::Protocol(format!("{url}: no message: {e}")))
    }

    /// Step 8: stores a value in the DHT — through our seed (active) or the pod (passive);
    /// returns its key and how many seeds acknowledged it (in passive mode the pod's
    /// `replicas`: seeds besides its own; a pod that knows other seeds but reached none
    /// answers 503, an error here).
    pub async fn store(&self, value_hex: String) -> Result<(String, usize), ClientError> {
        match &self.seed {
            Some(seed) => {
                let report = seed.publish(value_hex).await?;
                Ok((report.key.to_hex(), report.stored_at))
            }
            None => {
                let url = self.pod_url("/messages");
                let expected = value::key_of(&value_hex).to_hex();
                let res = self.call("POST", &url, Some(&value_hex)).await?;
                let v = json(&res, &url)?;
                let key = v["key"].as_str().unwrap_or_default();
                if key != expected {
                    return Err(ClientError::Protocol(format!(
                        "{url} answered key {key}, expected {expected} (P-V2)"
                    )));
                }
                // Seeds besides the pod's own that took it (0 from a pod that does not say).
                let replicas = v["replicas"].as_u64().unwrap_or(0) as usize;
                Ok((expected, replicas))
            }
        }
    }

    /// Step 11: fetches a value by key (through our seed or the pod).
    pub async fn fetch(&self, key: &str) -> Result<String, ClientError> {
        match &self.seed {
            Some(seed) => {
                let k = Key::from_hex(key).map_err(|e| ClientError::Protocol(e.to_string()))?;
                seed.find_value(k)
                    .await?
                    .ok_or_else(|| ClientError::NotFound(key.to_string()))
            }
            None => {
                let url = self.pod_url(&format!("/messages/{key}"));
                match self.call("GET", &url, None).await {
                    Err(ClientError::Http { status: 404, .. }) => {
                        Err(ClientError::NotFound(key.to_string()))
                    }
                    other => {
                        let body = other?.body;
                        if value::key_of(&body).to_hex() != key {
                            return Err(ClientError::Protocol(format!(
                                "{url}: the value does not hash to its key (P-V2)"
                            )));
                        }
                        Ok(body)
                    }
                }
            }
        }
    }

    /// Steps 11–12 for one notification.
    pub async fn open(&self, notification: Notification) -> Delivery {
        let result = async {
            let value_hex = self.with_retry(|| self.fetch(&notification.key)).await?;
            let armored = value::from_hex(&value_hex)
                .map_err(|e| ClientError::Protocol(format!("value: {e}")))?;
            // The claimed sender's key; if it cannot be had, the message is still read but
            // cannot verify (UnknownSigner), never shown as from them.
            let sender_key = match UserId::parse(&notification.sender.user_id) {
                Ok(u) => self.with_retry(|| self.key_of(&u)).await.ok(),
                Err(_) => None,
            };
            let d = decrypt_and_verify(
                armored.as_bytes(),
                &self.me,
                sender_key.as_ref(),
                self.clock.now_system(),
            )?;
            Ok(Received {
                notification: notification.clone(),
                plaintext: d.plaintext,
                verdict: d.verdict,
            })
        }
        .await;
        result.map_err(|error| Undelivered {
            notification,
            error,
        })
    }

    /// A seed for one backoff's jitter: this identity and a counter, so runs are
    /// reproducible (the simulator) and two clients do not retry in step.
    fn jitter_seed(&self) -> u64 {
        let n = self.retries.fetch_add(1, Ordering::Relaxed);
        let h = self.pubkeyhash();
        let base = u64::from_str_radix(&h[..16.min(h.len())], 16).unwrap_or(0);
        base ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Runs `call` under the retry policy ([`retry::policy`]): errors that may change
    /// ([`retry::retryable`]) are tried again after a jittered, growing wait.
    pub async fn with_retry<T, F, Fut>(&self, call: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        use backon::Retryable;
        call.retry(retry::policy(self.jitter_seed()))
            .sleep(tokio::time::sleep)
            .when(retry::retryable)
            .notify(|e, wait| tracing::debug!(error = %e, ?wait, "retrying"))
            .await
    }

    async fn token(&self, method: &str) -> Result<String, ClientError> {
        let url = self.pod_url("/tokens");
        let body = self.signed(PUBKEYHASH, &[("resource", "/inboxes"), ("method", method)])?;
        let res = self.call("POST", &url, Some(&body)).await?;
        json(&res, &url)?["token"]["value"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol(format!("{url}: no token.value")))
    }

    /// Step 10 for missed messages: the pod's playback, oldest first (not purged).
    pub async fn notifications(&self) -> Result<Vec<Notification>, ClientError> {
        let token = self.token("GET").await?;
        let url = self.pod_url(&format!("/inboxes?token={token}"));
        let res = self.call("GET", &url, None).await?;
        let v = json(&res, &url)?;
        let mut out = Vec::new();
        for group in v["messages"].as_array().into_iter().flatten() {
            for m in group["messages"].as_array().into_iter().flatten() {
                out.push(
                    serde_json::from_value(m.clone())
                        .map_err(|e| ClientError::Protocol(format!("{url}: {e}")))?,
                );
            }
        }
        // Inbox order: by id where the pod gives ids (P-X1), by arrival time otherwise.
        out.sort_by_key(|n: &Notification| (n.id_number(), n.timestamp));
        Ok(out)
    }

    /// Steps 10–12 for missed messages: plays back, fetches, decrypts and verifies each.
    pub async fn inbox(&self) -> Result<Vec<Delivery>, ClientError> {
        let mut out = Vec::new();
        for n in self.notifications().await? {
            out.push(self.open(n).await);
        }
        Ok(out)
    }

    /// Deletes the pod's record of the notifications we have handled (PROFILE P-X1): with
    /// `upto` (the highest id played back, see [`highest_id`]) exactly the entries with an id up
    /// to it, so an entry that arrived after the playback survives; returns the entries that
    /// remain. With `None`, the whitepaper's purge of the whole inbox, which loses anything
    /// that arrived since the playback: only for pods that give no ids.
    pub async fn purge(&self, upto: Option<&str>) -> Result<Vec<Notification>, ClientError> {
        let token = self.token("DELETE").await?;
        let url = match upto {
            Some(id) => self.pod_url(&format!("/inboxes?token={token}&upto={id}")),
            None => self.pod_url(&format!("/inboxes?token={token}")),
        };
        let res = self.call("DELETE", &url, None).await?;
        let v = json(&res, &url)?;
        let mut out: Vec<Notification> = Vec::new();
        for group in v["messages"].as_array().into_iter().flatten() {
            for m in group["messages"].as_array().into_iter().flatten() {
                out.push(
                    serde_json::from_value(m.clone())
                        .map_err(|e| ClientError::Protocol(format!("{url}: {e}")))?,
                );
            }
        }
        out.sort_by_key(|n| (n.id_number(), n.timestamp));
        Ok(out)
    }

    /// Plays back, reads each message, then purges exactly what was played back (P-X1): the
    /// safe way to empty an inbox. A pod that gives no ids is not purged (nothing would say
    /// what was seen); its entries stay for the next playback.
    pub async fn inbox_and_purge(&self) -> Result<Vec<Delivery>, ClientError> {
        let notes = self.notifications().await?;
        let upto = highest_id(&notes);
        let mut out = Vec::new();
        for n in notes {
            out.push(self.open(n).await);
        }
        if let Some(id) = upto {
            self.purge(Some(&id)).await?;
        }
        Ok(out)
    }

    /// Step 5/10: subscribes to the pod's push channel.
    pub async fn listen(&self) -> Result<Subscription<'_, D>, ClientError> {
        let ws_url = format!(
            "{}://{}/",
            if self.pod.tls { "wss" } else { "ws" },
            self.pod.authority
        );
        let conn = dial::connect(&self.dialer, &self.pod.host, self.pod.port, self.pod.tls)
            .await
            .map_err(|e| ClientError::Unreachable(format!("{ws_url}: {e}")))?;
        let (mut ws, _) = tokio_tungstenite::client_async(ws_url.as_str(), conn)
            .await
            .map_err(|e| ClientError::Unreachable(format!("{ws_url}: {e}")))?;
        let frame = sign_auth_hex(
            &self.me,
            &self.pubkeyhash(),
            PUBKEYHASH,
            self.nonce(),
            self.clock.now_system(),
        )
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        ws.send(Message::Text(frame.into()))
            .await
            .map_err(|e| ClientError::Unreachable(format!("{ws_url}: {e}")))?;
        Ok(Subscription { client: self, ws })
    }
}

/// What a [`Listener`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// An inbox entry not heard before (pushed, or played back after a reconnect).
    Entry(Notification),
    /// The push channel dropped (the reason); the listener reconnects with backoff.
    Dropped(String),
    /// The push channel is back; `missed` entries that arrived meanwhile were played back and
    /// come next as [`Heard::Entry`].
    Reconnected {
        /// Entries played back on reconnecting.
        missed: usize,
    },
}

/// A push subscription that survives dropped connections and pod restarts: on a drop it
/// reconnects under [`retry::reconnect`], plays back what arrived meanwhile and carries on.
/// Entries are heard once each: by id where the pod gives ids (P-X1), by key otherwise.
pub struct Listener<'a, D: Dialer> {
    client: &'a Client<D>,
    sub: Option<Subscription<'a, D>>,
    queue: std::collections::VecDeque<Heard>,
    highest: Option<u128>,
    keys: std::collections::BTreeSet<String>,
    backoff: Option<Box<dyn Iterator<Item = Duration> + Send + 'a>>,
}

impl<D: Dialer> Client<D> {
    /// Subscribes to the push channel for good (see [`Listener`]). The first connection must
    /// succeed (a wrong pod address is an error here); later drops are reconnected.
    /// Entries already in the inbox are not heard (play them back with [`Client::inbox`]).
    pub async fn listener(&self) -> Result<Listener<'_, D>, ClientError> {
        let sub = self.listen().await?;
        let mut l = Listener {
            client: self,
            sub: Some(sub),
            queue: Default::default(),
            highest: None,
            keys: Default::default(),
            backoff: None,
        };
        for n in self.with_retry(|| self.notifications()).await? {
            l.mark(&n);
        }
        Ok(l)
    }
}

impl<'a, D: Dialer> Listener<'a, D> {
    /// Records `n` as heard; false when it was heard before.
    fn mark(&mut self, n: &Notification) -> bool {
        match n.id_number() {
            Some(id) => {
                if self.highest.is_some_and(|h| id <= h) {
                    return false;
                }
                self.highest = Some(id);
                true
            }
            None => self.keys.insert(n.key.clone()),
        }
    }

    async fn reconnect(&mut self) {
        loop {
            let wait = self
                .backoff
                .get_or_insert_with(|| Box::new(retry::patience(self.client.jitter_seed())))
                .next()
                .unwrap_or(retry::MAX_DELAY);
            tokio::time::sleep(wait).await;
            let Ok(sub) = self.client.listen().await else {
                continue;
            };
            let Ok(notes) = self.client.notifications().await else {
                continue;
            };
            self.sub = Some(sub);
            self.backoff = None;
            let mut missed = Vec::new();
            for n in notes {
                if self.mark(&n) {
                    missed.push(Heard::Entry(n));
                }
            }
            self.queue.push_back(Heard::Reconnected {
                missed: missed.len(),
            });
            self.queue.extend(missed);
            return;
        }
    }

    /// The next thing heard. Never fails: a drop is reported and reconnected.
    pub async fn next(&mut self) -> Heard {
        loop {
            if let Some(h) = self.queue.pop_front() {
                return h;
            }
            let Some(sub) = self.sub.as_mut() else {
                self.reconnect().await;
                continue;
            };
            match sub.next_notification().await {
                Ok(n) => {
                    if self.mark(&n) {
                        return Heard::Entry(n);
                    }
                }
                Err(e) => {
                    self.sub = None;
                    return Heard::Dropped(e.to_string());
                }
            }
        }
    }
}

/// A live subscription to the pod's push channel.
pub struct Subscription<'a, D: Dialer> {
    client: &'a Client<D>,
    ws: tokio_tungstenite::WebSocketStream<dial::Conn<D::Stream>>,
}

impl<D: Dialer> Subscription<'_, D> {
    /// The next notification; `Err` when the pod closed the channel (with its reason).
    pub async fn next_notification(&mut self) -> Result<Notification, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return serde_json::from_str(t.as_str())
                        .map_err(|e| ClientError::Protocol(format!("push frame: {e}")));
                }
                Some(Ok(Message::Close(frame))) => {
                    let why = frame.map_or_else(
                        || "closed".to_string(),
                        |f| format!("closed {}: {}", u16::from(f.code), f.reason),
                    );
                    return Err(ClientError::Unreachable(format!("push channel {why}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ClientError::Unreachable(format!("push channel: {e}"))),
                None => return Err(ClientError::Unreachable("push channel ended".into())),
            }
        }
    }

    /// The next message: notification, fetch, decrypt, verify.
    pub async fn next(&mut self) -> Result<Delivery, ClientError> {
        let n = self.next_notification().await?;
        Ok(self.client.open(n).await)
    }
}

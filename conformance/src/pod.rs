//! The live pod suite: a black-box check of PROFILE §5–§6 against a pod over HTTP(S) and
//! WebSocket, with keys the suite generates.
//!
//! Written from the whitepaper ("Seed-to-Pod Communication") and PROFILE, not from any pod's
//! behaviour. Phases:
//!
//! 1. probe: the pod answers HTTP at all (otherwise the run stops);
//! 2. `GET /` without a WebSocket upgrade answers, and an error as `{"error": …}` (P-A7);
//! 3. registration `POST /` (P-G1, P-A5, P-A7) with the suite's own keys: pubkeyhash = SHA-1
//!    of the exact body (CRLF kept), RSA-3072 with `--rsa`, not-keys 400, media type 415;
//! 4. authentication (P-A1–P-A3): replay (also at another endpoint), stale nonces, altered or
//!    transplanted signatures, wrong signer, unknown identity, unsigned or garbage bodies,
//!    unknown identity types;
//! 5. (routes, aliases and tokens — P-A4, P-A6–P-A8 — are cases of the REST vectors:
//!    `rest.route.*`, `rest.aliases.*`, `rest.tokens.*`, run in phase 8);
//! 7. WebSocket push and inboxes (P-S2, P-A4, P-A9): notification shape, `from` checked
//!    against the signer, push within 1 s to every subscriber, playback grouped by contact,
//!    entries kept after push and playback until `DELETE /inboxes`
//!    (§7, reported under rule `P-X1`, ids `pod.x1.*`: entry ids in the notify answer and in
//!    playback, strictly increasing; `DELETE /inboxes?upto=ID` keeps an entry that arrived
//!    after the playback and answers what remains; `upto` not digits is 400; an `upto` beyond
//!    the newest id empties the inbox. A pod that follows only the whitepaper fails these and
//!    nothing else);
//! 8. the REST vectors (`vectors/rest.json`, ids `rest.*`), the data-driven cases the
//!    `vectors --pod` run also uses, through this suite's client: `POST /messages` and
//!    `GET /messages/:hash` (P-V1, P-V2, P-A5) are checked there only;
//! 9. WebSocket authentication failures close with 4401 (P-S1; the 10 s silence with `--slow`);
//! 10. federation (P-A3, P-A4), when `--federation-host` is given: the suite serves its own
//!     pod (`GET /aliases/:alias` over plain HTTP) and signs as `alias@that-host` with
//!     `identityType=href`; the pod under test must run in insecure-federation mode;
//! 11. operations endpoints (P-X3, ids `pod.x3.*`): `GET /healthz`, `GET /readyz`;
//! 12. the API document: every answer of the run judged against `pod/openapi.json` — a
//!     documented status, media type and JSON schema — one case per operation
//!     (`pod.openapi.*`, [`api`]);
//! 13. with `--slow`, the cases that wait.
//!
//! A case whose prerequisite failed (no token could be had, say) is `not-applicable` with a
//! note naming the failed case, so a broken rule is reported once, under its own id.

pub mod api;
pub mod http;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use muttr_node::client::http::Target;
use muttr_node::crypto::auth::{cleartext_sign, sign_auth};
use muttr_node::crypto::{Identity, KeyKind, PublicKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::catalogue::{self, Live};
use crate::pgp::sha1_hex;
use crate::report::{CaseResult, Strength, Verdict};
use crate::rest;
use http::{FedServer, Http, Resp, Served, Ws, clip, close_code, next_text};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pod's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// The pod's public host as it names its users (`alias@podhost`, P-A8); default: the URL's
    /// `host[:port]`.
    pub pod_host: Option<String>,
    /// Where the suite serves its own federation pod (P-A3); `None` grades the federation
    /// cases not-applicable.
    pub federation_host: Option<SocketAddr>,
    /// Run the cases that wait (token expiry after 30 s, WebSocket silence for 10 s).
    pub slow: bool,
    /// Also register an RSA-3072 key (P-G2; key generation takes a few seconds).
    pub rsa: bool,
    /// How long one request may take.
    pub timeout: Duration,
    /// Seed of the suite's random aliases and values.
    pub rng_seed: u64,
}

impl Options {
    /// Defaults: 15 s per request, no federation, no slow cases, an RNG seed from the clock.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            pod_host: None,
            federation_host: None,
            slow: false,
            rsa: false,
            timeout: Duration::from_secs(15),
            rng_seed: now_ms(),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

const TEXT: Option<&str> = Some("text/plain");
const MINUTE: u64 = 60_000;

/// A row of a table of refused notifications: id, rule, what, to alias, `from`, `key`, the
/// statuses allowed.
type RefusedNotify<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a [u16],
);

/// A row of a table of refused signed POSTs: id, rule, what, signer, signed parameters, status.
type RefusedSigned<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a User,
    &'a [(&'a str, &'a str)],
    u16,
);

/// A user the suite made up.
struct User {
    id: Identity,
    public: PublicKey,
    armored: String,
    hash: String,
    alias: String,
}

impl User {
    fn new(name: &str, alias: String, kind: KeyKind) -> anyhow::Result<User> {
        let id = Identity::generate(name, kind, SystemTime::now() - Duration::from_secs(600))?;
        let public = id.public();
        let armored = public.armored().to_string();
        Ok(User {
            hash: sha1_hex(&armored),
            id,
            public,
            armored,
            alias,
        })
    }
}

/// A sent request, for reports.
fn sent(method: &str, path: &str, ctype: Option<&str>, body: &str) -> Value {
    json!({"method": method, "path": path, "content_type": ctype, "body": clip(body)})
}

fn is_int_ms_near_now(v: &Value) -> bool {
    v.as_u64()
        .is_some_and(|t| t.abs_diff(now_ms()) <= 10 * MINUTE)
}

fn is_hex40(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 40
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The notification shape of the whitepaper (push frames, `POST /inboxes` answers, playback
/// entries): `recipient`/`sender` `{userID, pubkeyhash}`, `key`, `timestamp`.
fn entry_shape(e: &Value) -> Result<(), String> {
    for party in ["recipient", "sender"] {
        let p = &e[party];
        if !p["userID"].as_str().is_some_and(|u| u.contains('@')) {
            return Err(format!("{party}.userID is not alias@podhost"));
        }
        if !is_hex40(&p["pubkeyhash"]) {
            return Err(format!("{party}.pubkeyhash is not 40 lowercase hex"));
        }
    }
    if !is_hex40(&e["key"]) {
        return Err("key is not 40 lowercase hex".into());
    }
    if !is_int_ms_near_now(&e["timestamp"]) {
        return Err("timestamp is not integer ms since the epoch (P-W5)".into());
    }
    Ok(())
}

struct Suite {
    opts: Options,
    http: Http,
    host: String,
    last_nonce: u64,
    cases: Vec<CaseResult>,
    tag: String,
    /// Where the pod stopped answering, if it did.
    stopped: catalogue::Stopped,
}

/// Runs the whole suite against `opts.url`.
pub async fn run(opts: &Options) -> anyhow::Result<Vec<CaseResult>> {
    let target = Target::parse(&opts.url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let host = opts
        .pod_host
        .clone()
        .unwrap_or_else(|| target.authority.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(opts.rng_seed);
    let tag = format!("{:08x}", rng.random::<u32>());
    let mut s = Suite {
        opts: opts.clone(),
        http: Http::new(target, opts.timeout),
        host,
        last_nonce: 0,
        cases: Vec::new(),
        tag,
        stopped: catalogue::Stopped::default(),
    };
    if !s.probe().await {
        catalogue::complete(
            Live::Pod,
            &mut s.cases,
            "not judged: the pod did not answer the first request",
        );
        return Ok(s.cases);
    }
    s.get_root().await;
    let users = s.users()?;
    let [alice, bob, carol, mallory, dave] = &users;
    s.register(alice, bob, carol, dave, mallory).await?;
    // Aliases for the phases below (alias creation itself is checked by `rest.aliases.*`).
    for u in [alice, bob, carol] {
        let _ = s.create_alias(u, &u.alias).await;
    }
    s.auth(alice, bob, mallory).await;
    s.inboxes(alice, bob, carol, mallory).await;
    s.purge_upto(alice, bob).await;
    s.rest_vectors().await?;
    s.ws_refusals(alice, mallory).await;
    s.federation(alice, bob).await?;
    s.slow(alice).await;
    s.operations().await;
    s.openapi();
    catalogue::complete_refinements(Live::Pod, &mut s.cases);
    s.stopped.finish(Live::Pod, &mut s.cases, "the pod");
    Ok(s.cases)
}

impl Suite {
    // ------------------------------------------------------------------ helpers

    fn nonce(&mut self) -> u64 {
        self.last_nonce = now_ms().max(self.last_nonce + 1);
        self.last_nonce
    }

    fn signed(&mut self, u: &User, params: &[(&str, &str)]) -> String {
        let n = self.nonce();
        self.signed_as(u, "pubkeyhash", &u.hash, n, params)
    }

    fn signed_as(
        &self,
        u: &User,
        ty: &str,
        identity: &str,
        nonce: u64,
        params: &[(&str, &str)],
    ) -> String {
        sign_auth(&u.id, identity, ty, nonce, params, SystemTime::now()).unwrap_or_default()
    }

    fn user_id(&self, u: &User) -> String {
        format!("{}@{}", u.alias, self.host)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        ctype: Option<&str>,
        body: &str,
    ) -> (Value, Result<Resp, String>) {
        let r = self
            .http
            .send(method, path, ctype, body.as_bytes().to_vec())
            .await;
        (sent(method, path, ctype, body), r)
    }

    async fn post(&self, path: &str, body: &str) -> (Value, Result<Resp, String>) {
        self.call("POST", path, TEXT, body).await
    }

    /// Records a case ([`catalogue::Stopped`], [`Http::stopped`]).
    fn push(&mut self, c: CaseResult) {
        let how = || "GET / on a fresh connection got no answer".to_string();
        let c = self.stopped.record(self.http.stopped(), c, "the pod", how);
        self.cases.push(c);
    }

    #[allow(clippy::too_many_arguments)] // one flat call per case keeps the case list readable
    fn check(
        &mut self,
        id: &str,
        rule: &str,
        strength: Strength,
        ok: bool,
        detail: impl Into<String>,
        sent: Option<&Value>,
        got: Option<Value>,
        expected: Value,
    ) {
        let detail = detail.into();
        let c = if ok {
            CaseResult::pass(id, rule, detail)
        } else {
            CaseResult::with(id, rule, strength.violated(), detail).evidence(
                sent.cloned(),
                Some(got.unwrap_or(Value::Null)),
                expected,
            )
        };
        self.push(c);
    }

    /// When case `prereq` did not pass, records `id` as not-applicable and answers true: a
    /// check that reads inside an answer whose shape is wrong would only repeat that failure.
    fn gated(&mut self, id: &str, rule: &str, prereq: &str) -> bool {
        let failed = self
            .cases
            .iter()
            .any(|c| c.id == prereq && c.verdict != Verdict::Pass);
        if failed {
            self.na(id, rule, format!("prerequisite failed: {prereq}"));
        }
        failed
    }

    fn na(&mut self, id: &str, rule: &str, why: impl Into<String>) {
        self.push(CaseResult::with(id, rule, Verdict::NotApplicable, why));
    }

    fn shown(r: &Result<Resp, String>) -> Value {
        match r {
            Ok(r) => r.shown(),
            Err(e) => json!({"transport_error": e}),
        }
    }

    /// `id`: the status is one of `allowed`; `id.json-error`: the answer is P-A7's
    /// `{"error": "<message>"}` as `application/json`.
    fn expect_error(
        &mut self,
        id: &str,
        rule: &str,
        what: &str,
        sent: &Value,
        r: &Result<Resp, String>,
        allowed: &[u16],
    ) {
        let status = r.as_ref().ok().map(|r| r.status);
        let ok = status.is_some_and(|s| allowed.contains(&s));
        self.check(
            id,
            rule,
            Strength::Must,
            ok,
            format!("{what}: answered {allowed:?}"),
            Some(sent),
            Some(Self::shown(r)),
            json!({"status": allowed}),
        );
        self.error_shape(&format!("{id}.json-error"), r);
    }

    /// P-A7: an error answer is `{"error": "<message>"}` as JSON.
    fn error_shape(&mut self, id: &str, r: &Result<Resp, String>) {
        match r {
            Ok(resp) if resp.status >= 400 => {
                let ok = resp.essence() == "application/json"
                    && resp
                        .json()
                        .is_some_and(|v| v.is_object() && v["error"].is_string());
                self.check(
                    id,
                    "P-A7",
                    Strength::Must,
                    ok,
                    "the error answer is a JSON object {\"error\": string} as application/json",
                    None,
                    Some(resp.shown()),
                    json!({"content_type": "application/json", "body": {"error": "<message>"}}),
                );
            }
            _ => self.na(id, "P-A7", "no error answer to judge"),
        }
    }

    /// `id`: 200 with a JSON object body (P-A5); returns the body.
    fn expect_ok_json(
        &mut self,
        id: &str,
        rule: &str,
        what: &str,
        sent: &Value,
        r: &Result<Resp, String>,
    ) -> Option<Value> {
        let v = r
            .as_ref()
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.json())
            .filter(Value::is_object);
        self.check(
            id,
            rule,
            Strength::Must,
            v.is_some(),
            format!("{what}: 200 with a JSON object"),
            Some(sent),
            Some(Self::shown(r)),
            json!({"status": 200, "body": "a JSON object"}),
        );
        v
    }

    // ------------------------------------------------------------------ 1. probe

    async fn probe(&mut self) -> bool {
        let path = format!("/aliases/probe-{}", self.tag);
        let (sent, r) = self.call("GET", &path, None, "").await;
        let ok = r.is_ok();
        self.check(
            "pod.probe.http",
            "P-A5",
            Strength::Must,
            ok,
            "the pod answers HTTP at its base URL (without this nothing else can be judged)",
            Some(&sent),
            Some(Self::shown(&r)),
            json!("any HTTP answer"),
        );
        ok
    }

    // ------------------------------------------------------------------ 2. GET /

    /// The base URI is the WebSocket endpoint; a plain GET there is not a page of HTML (the
    /// other routes and methods are cases of the REST vectors, `rest.route.*`).
    async fn get_root(&mut self) {
        let (sent, r) = self.call("GET", "/", None, "").await;
        match r.as_ref().map(|r| r.status) {
            Ok(s) if s >= 400 => self.error_shape("pod.route.get-root-plain.json-error", &r),
            _ => self.check(
                "pod.route.get-root-plain.json-error",
                "P-A7",
                Strength::Must,
                r.is_ok(),
                "a plain GET / (no WebSocket upgrade) answers; if it is an error, as JSON",
                Some(&sent),
                Some(Self::shown(&r)),
                json!("an answer"),
            ),
        }
    }

    // ------------------------------------------------------------------ 3. registration

    fn users(&mut self) -> anyhow::Result<[User; 5]> {
        let t = self.tag.clone();
        Ok([
            User::new("alice", format!("alice-{t}"), KeyKind::Cv25519)?,
            User::new("bob", format!("bob-{t}"), KeyKind::Cv25519)?,
            User::new("carol", format!("carol-{t}"), KeyKind::Cv25519)?,
            User::new("mallory", format!("mallory-{t}"), KeyKind::Cv25519)?,
            User::new("dave", format!("dave-{t}"), KeyKind::Cv25519)?,
        ])
    }

    async fn register(
        &mut self,
        alice: &User,
        bob: &User,
        carol: &User,
        dave: &User,
        _mallory: &User,
    ) -> anyhow::Result<()> {
        let (sent, r) = self.post("/", &alice.armored).await;
        let v = self.expect_ok_json(
            "pod.register.ok",
            "P-A5",
            "POST / with an armored public key",
            &sent,
            &r,
        );
        let ok = r.as_ref().is_ok_and(|r| r.essence() == "application/json");
        self.check(
            "pod.register.media-json",
            "P-A5",
            Strength::Must,
            ok,
            "the answer is application/json",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"content_type": "application/json"}),
        );
        match &v {
            Some(v) => {
                let ok = is_hex40(&v["identity"]["pubkeyhash"])
                    && is_int_ms_near_now(&v["identity"]["registered"]);
                self.check("pod.register.shape", "P-A5", Strength::Must, ok, "{\"identity\": {\"pubkeyhash\": 40-hex, \"registered\": integer ms (P-W5)}}, unwrapped", Some(&sent), Some(v.clone()), json!({"identity": {"pubkeyhash": alice.hash, "registered": "integer ms"}}));
                let got = v["identity"]["pubkeyhash"].as_str().unwrap_or("");
                if !self.gated(
                    "pod.register.pubkeyhash-sha1-of-body",
                    "P-G1",
                    "pod.register.shape",
                ) {
                    self.check(
                        "pod.register.pubkeyhash-sha1-of-body",
                        "P-G1",
                        Strength::Must,
                        got == alice.hash,
                        "pubkeyhash = lowercase hex SHA-1 of the exact body",
                        Some(&sent),
                        Some(v.clone()),
                        json!(alice.hash),
                    );
                }
            }
            None => {
                self.na(
                    "pod.register.shape",
                    "P-A5",
                    "prerequisite failed: pod.register.ok",
                );
                self.na(
                    "pod.register.pubkeyhash-sha1-of-body",
                    "P-G1",
                    "prerequisite failed: pod.register.ok",
                );
            }
        }
        for u in [bob, carol] {
            let (sent, r) = self.post("/", &u.armored).await;
            if r.as_ref().map(|r| r.status).ok() != Some(200) {
                anyhow::bail!(
                    "cannot register a second user: {sent} → {}",
                    Self::shown(&r)
                );
            }
        }
        // The exact bytes: CRLF line ends.
        let crlf = dave.armored.replace('\n', "\r\n");
        let (sent, r) = self.post("/", &crlf).await;
        let got = r
            .as_ref()
            .ok()
            .and_then(|r| r.json())
            .map(|v| v["identity"]["pubkeyhash"].clone());
        if !self.gated(
            "pod.register.crlf-exact-bytes",
            "P-G1",
            "pod.register.shape",
        ) {
            self.check("pod.register.crlf-exact-bytes", "P-G1", Strength::Must, got.as_ref().and_then(Value::as_str) == Some(sha1_hex(&crlf).as_str()), "a key sent with CRLF line ends: pubkeyhash = SHA-1 of those exact bytes (no normalisation)", Some(&sent), Some(Self::shown(&r)), json!(sha1_hex(&crlf)));
        }
        // Not keys (the REST vectors try plain text, an empty body, a PGP message, a cut
        // armor and bytes that are not UTF-8).
        let signed = self.signed(alice, &[]);
        let not_keys: [(&str, String); 2] = [
            ("pod.register.signed-text-400", signed),
            ("pod.register.bad-base64-400", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!!!not base64!!!!\n-----END PGP PUBLIC KEY BLOCK-----\n".into()),
        ];
        for (id, body) in not_keys {
            let (sent, r) = self.post("/", &body).await;
            self.expect_error(
                id,
                "P-A7",
                "a body that is not an armored public key",
                &sent,
                &r,
                &[400],
            );
        }
        // Media types.
        let ct = "image/png";
        let (sent, r) = self.call("POST", "/", Some(ct), &carol.armored).await;
        let id = "pod.register.media-image-415";
        self.expect_error(id, "P-A7", &format!("Content-Type {ct}"), &sent, &r, &[415]);
        // RSA (optional).
        if self.opts.rsa {
            let rsa = User::new("rsa", format!("rsa-{}", self.tag), KeyKind::Rsa3072)?;
            let (sent, r) = self.post("/", &rsa.armored).await;
            let got = r
                .as_ref()
                .ok()
                .and_then(|r| r.json())
                .map(|v| v["identity"]["pubkeyhash"].clone());
            self.check(
                "pod.register.rsa",
                "P-G2",
                Strength::Must,
                got.as_ref().and_then(Value::as_str) == Some(rsa.hash.as_str()),
                "an RSA-3072 key registers, pubkeyhash = SHA-1 of the body",
                Some(&sent),
                Some(Self::shown(&r)),
                json!(rsa.hash),
            );
        } else {
            self.na(
                "pod.register.rsa",
                "P-G2",
                "RSA keys not tried (run with --rsa)",
            );
        }
        Ok(())
    }

    // ------------------------------------------------------------------ 4. aliases

    async fn create_alias(&mut self, u: &User, alias: &str) -> (Value, Result<Resp, String>) {
        let body = self.signed(u, &[("alias", alias)]);
        self.post("/aliases", &body).await
    }

    // ------------------------------------------------------------------ 5. authentication

    async fn auth(&mut self, alice: &User, bob: &User, mallory: &User) {
        let params: [(&str, &str); 2] = [("resource", "/inboxes"), ("method", "GET")];
        let body = self.signed(alice, &params);
        let (sent, r) = self.post("/tokens", &body).await;
        let ok = r.as_ref().is_ok_and(|r| r.status == 200);
        self.check(
            "pod.auth.valid",
            "P-A1",
            Strength::Must,
            ok,
            "a fresh, correctly signed text is accepted",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"status": 200}),
        );
        if ok {
            let (sent, r) = self.post("/tokens", &body).await;
            self.expect_error(
                "pod.auth.replay-401",
                "P-A2",
                "the same signed text again (replay)",
                &sent,
                &r,
                &[401],
            );
            let (sent, r) = self.post(&format!("/inboxes/{}", alice.alias), &body).await;
            self.expect_error(
                "pod.auth.replay-other-endpoint-refused",
                "P-A2",
                "a text accepted at POST /tokens, replayed at POST /inboxes/:alias",
                &sent,
                &r,
                &[400, 401],
            );
        } else {
            self.na(
                "pod.auth.replay-401",
                "P-A2",
                "prerequisite failed: pod.auth.valid",
            );
            self.na(
                "pod.auth.replay-401.json-error",
                "P-A7",
                "prerequisite failed: pod.auth.valid",
            );
        }
        let now = now_ms();
        for (id, nonce, what) in [
            (
                "pod.auth.nonce-past-401",
                now - 6 * MINUTE,
                "a nonce 6 minutes old",
            ),
            (
                "pod.auth.nonce-future-401",
                now + 6 * MINUTE,
                "a nonce 6 minutes ahead",
            ),
            (
                "pod.auth.nonce-seconds-401",
                now / 1000,
                "a nonce in seconds, not ms",
            ),
        ] {
            let body = self.signed_as(alice, "pubkeyhash", &alice.hash, nonce, &params);
            let (sent, r) = self.post("/tokens", &body).await;
            self.expect_error(id, "P-A2", what, &sent, &r, &[401]);
        }
        let body = self.signed_as(alice, "pubkeyhash", &alice.hash, now - 2 * MINUTE, &params);
        let (sent, r) = self.post("/tokens", &body).await;
        self.check(
            "pod.auth.nonce-within-window-ok",
            "P-A2",
            Strength::Should,
            r.as_ref().is_ok_and(|r| r.status == 200),
            "a nonce 2 minutes old (inside the 5-minute window) is accepted",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"status": 200}),
        );
        // The replay rule is per (identity, nonce): another identity may use the same number.
        let n = self.nonce();
        let a = self.signed_as(alice, "pubkeyhash", &alice.hash, n, &params);
        let b = self.signed_as(bob, "pubkeyhash", &bob.hash, n, &params);
        let _ = self.post("/tokens", &a).await;
        let (sent, r) = self.post("/tokens", &b).await;
        self.check(
            "pod.auth.same-nonce-other-identity-ok",
            "P-A2",
            Strength::Should,
            r.as_ref().is_ok_and(|r| r.status == 200),
            "bob may use the nonce alice just used: replay is per (identity, nonce)",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"status": 200}),
        );
        // Malformed nonces and missing auth parameters.
        let id_ = alice.hash.clone();
        let texts: [(&str, String, &str); 4] = [
            (
                "pod.auth.nonce-not-integer-refused",
                format!(
                    "identity={id_}&identityType=pubkeyhash&nonce=soon&resource=%2Finboxes&method=GET"
                ),
                "nonce=soon",
            ),
            (
                "pod.auth.nonce-missing-refused",
                format!("identity={id_}&identityType=pubkeyhash&resource=%2Finboxes&method=GET"),
                "no nonce",
            ),
            (
                "pod.auth.identity-missing-refused",
                format!(
                    "identityType=pubkeyhash&nonce={}&resource=%2Finboxes&method=GET",
                    self.nonce()
                ),
                "no identity",
            ),
            (
                "pod.auth.identity-type-missing-refused",
                format!(
                    "identity={id_}&nonce={}&resource=%2Finboxes&method=GET",
                    self.nonce()
                ),
                "no identityType",
            ),
        ];
        for (id, q, what) in texts {
            let body = cleartext_sign(&alice.id, &q, SystemTime::now()).unwrap_or_default();
            let (sent, r) = self.post("/tokens", &body).await;
            self.expect_error(id, "P-A1", what, &sent, &r, &[400, 401]);
        }
        // Texts altered after signing, a transplanted signature, a wrong signer, an unknown
        // identity: each 401. Built first (fresh nonces in order), then sent in that order.
        let altered_param = self
            .signed(alice, &params)
            .replacen("method=GET", "method=DEL", 1);
        let n = self.nonce();
        let altered_nonce = self
            .signed_as(alice, "pubkeyhash", &alice.hash, n, &params)
            .replacen(&format!("nonce={n}"), &format!("nonce={}", n + 1), 1);
        let appended = self
            .signed(alice, &params)
            .replacen("method=GET", "method=GET&extra=1", 1);
        // The text of one request with the signature of another.
        let a = self.signed(alice, &params);
        let b = self.signed(alice, &[("resource", "/inboxes"), ("method", "DELETE")]);
        let transplanted = match (
            a.find("-----BEGIN PGP SIGNATURE-----"),
            b.find("-----BEGIN PGP SIGNATURE-----"),
        ) {
            (Some(i), Some(j)) => format!("{}{}", &a[..i], &b[j..]),
            _ => a.clone(),
        };
        let n = self.nonce();
        let wrong_signer = self.signed_as(mallory, "pubkeyhash", &alice.hash, n, &params);
        let unknown = self.signed(mallory, &params);
        let refused: [(&str, &str, &str, String); 6] = [
            (
                "pod.auth.altered-param-401",
                "P-A1",
                "a parameter changed after signing",
                altered_param,
            ),
            (
                "pod.auth.altered-nonce-401",
                "P-A1",
                "the nonce changed after signing",
                altered_nonce,
            ),
            (
                "pod.auth.appended-param-401",
                "P-A1",
                "a parameter appended after signing",
                appended,
            ),
            (
                "pod.auth.transplanted-signature-401",
                "P-A1",
                "one text with the signature of another",
                transplanted,
            ),
            (
                "pod.auth.wrong-signer-401",
                "P-A3",
                "alice's pubkeyhash, signed by another key",
                wrong_signer,
            ),
            (
                "pod.auth.unknown-identity-401",
                "P-A3",
                "a pubkeyhash not registered here",
                unknown,
            ),
        ];
        for (id, rule, what, body) in refused {
            let (sent, r) = self.post("/tokens", &body).await;
            self.expect_error(id, rule, what, &sent, &r, &[401]);
        }
        // Unsigned and garbage bodies.
        let n = self.nonce();
        let plain = format!(
            "identity={}&identityType=pubkeyhash&nonce={n}&resource=%2Finboxes&method=GET",
            alice.hash
        );
        for (id, body, what) in [
            ("pod.auth.unsigned-400", plain, "the query string without a signature"),
            ("pod.auth.garbage-400", "\u{1}garbage\u{2}".to_string(), "garbage"),
            ("pod.auth.empty-400", String::new(), "an empty body"),
            ("pod.auth.bad-armor-400", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nidentity=x\n-----BEGIN PGP SIGNATURE-----\n\n!!!!\n-----END PGP SIGNATURE-----\n".to_string(), "a signed-message armor whose signature does not decode"),
        ] {
            let (sent, r) = self.post("/tokens", &body).await;
            self.expect_error(id, "P-A1", what, &sent, &r, &[400]);
        }
        // Unknown identity type.
        let n = self.nonce();
        let body = self.signed_as(
            alice,
            "fingerprint",
            &alice.public.fingerprint(),
            n,
            &params,
        );
        let (sent, r) = self.post("/tokens", &body).await;
        self.expect_error(
            "pod.auth.unknown-identity-type-refused",
            "P-A3",
            "identityType=fingerprint (neither pubkeyhash nor href)",
            &sent,
            &r,
            &[400, 401],
        );
        // href to a host that does not answer.
        let n = self.nonce();
        let body = self.signed_as(
            alice,
            "href",
            "nobody@127.0.0.1:9",
            n,
            &[("from", "nobody@127.0.0.1:9"), ("key", &sha1_hex("x"))],
        );
        let (sent, r) = self.post(&format!("/inboxes/{}", alice.alias), &body).await;
        // 401 (cannot authenticate) or 503 (try again: the identity's pod may be
        // restarting); PROFILE fixes no status for this, and either refuses the request.
        self.expect_error(
            "pod.auth.href-unreachable-401",
            "P-A3",
            "an href identity whose pod does not answer cannot authenticate",
            &sent,
            &r,
            &[401, 503],
        );
    }

    // ------------------------------------------------------------------ 6. tokens

    async fn token(
        &mut self,
        u: &User,
        resource: &str,
        method: &str,
    ) -> (Value, Result<Resp, String>, Option<String>) {
        let body = self.signed(u, &[("resource", resource), ("method", method)]);
        let (sent, r) = self.post("/tokens", &body).await;
        let value = r
            .as_ref()
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.json())
            .and_then(|v| v["token"]["value"].as_str().map(str::to_string));
        (sent, r, value)
    }

    // ------------------------------------------------------------------ 7. inboxes, push

    /// `DELETE /inboxes` with a fresh token of `u` and `query` appended (`&upto=…`).
    async fn delete_inbox(&mut self, u: &User, query: &str) -> (Value, Result<Resp, String>) {
        let (_, _, t) = self.token(u, "/inboxes", "DELETE").await;
        let t = t.unwrap_or_default();
        self.call("DELETE", &format!("/inboxes?token={t}{query}"), None, "")
            .await
    }

    /// Playback of `u`'s inbox: the answer's entries, in order.
    async fn playback_entries(&mut self, u: &User) -> (Value, Result<Resp, String>, Vec<Value>) {
        let (_, _, t) = self.token(u, "/inboxes", "GET").await;
        let t = t.unwrap_or_default();
        let (sent, r) = self
            .call("GET", &format!("/inboxes?token={t}"), None, "")
            .await;
        let entries = r
            .as_ref()
            .ok()
            .and_then(|r| r.json())
            .map(|v| entries_of(&v))
            .unwrap_or_default();
        (sent, r, entries)
    }

    /// PROFILE §7 P-X1: purge up to what was seen.
    async fn purge_upto(&mut self, alice: &User, bob: &User) {
        const RULE: &str = "P-X1";
        const CASES: [&str; 6] = [
            "pod.x1.id-in-notify",
            "pod.x1.ids-in-playback",
            "pod.x1.purge-upto-answers-remaining",
            "pod.x1.purge-upto-keeps-newer",
            "pod.x1.upto-not-digits-400",
            "pod.x1.upto-beyond-newest",
        ];
        // These cases read tokens, notify answers and purge answers: when those have the
        // wrong shape, that failure is reported once, under its own rule.
        for prereq in [
            "pod.token.shape",
            "pod.inbox.post-shape",
            "pod.inbox.delete-shape",
        ] {
            let failed = self
                .cases
                .iter()
                .any(|c| c.id == prereq && c.verdict != Verdict::Pass);
            if failed {
                for id in CASES {
                    self.na(id, RULE, format!("prerequisite failed: {prereq}"));
                }
                return;
            }
        }
        // Start from an empty inbox (whitepaper purge).
        let _ = self.delete_inbox(bob, "").await;
        let alice_id = self.user_id(alice);
        let bob_alias = bob.alias.clone();
        let mut ids = Vec::new();
        let mut posted = Vec::new();
        for i in 0..2 {
            let k = sha1_hex(&format!("x1-{i}-{}", self.tag));
            let (sent, r) = self.notify(alice, &bob_alias, &alice_id, &k).await;
            let v = r
                .as_ref()
                .ok()
                .and_then(|r| r.json())
                .unwrap_or(Value::Null);
            ids.push(entry_id(&v["message"]));
            posted.push((sent, v));
        }
        let (sent0, v0) = &posted[0];
        self.check(
            "pod.x1.id-in-notify",
            RULE,
            Strength::Must,
            ids.iter().all(Option::is_some),
            "the notify answer's entry carries \"id\", a string of decimal digits",
            Some(sent0),
            Some(v0.clone()),
            json!({"message": {"id": "decimal digits", "…": "…"}}),
        );
        let (sent, r, seen) = self.playback_entries(bob).await;
        let seen_ids: Vec<Option<u128>> = seen.iter().map(entry_id).collect();
        let increasing = seen_ids.len() == 2
            && seen_ids.iter().all(Option::is_some)
            && seen_ids.windows(2).all(|w| w[0] < w[1])
            && seen_ids == ids;
        self.check(
            "pod.x1.ids-in-playback",
            RULE,
            Strength::Must,
            increasing,
            "playback entries carry the ids of their notify answers, strictly increasing",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"ids": ids}),
        );
        // An entry arrives after the playback, before the purge.
        let late_key = sha1_hex(&format!("x1-late-{}", self.tag));
        let (_, lr) = self.notify(alice, &bob_alias, &alice_id, &late_key).await;
        let late_id = lr
            .as_ref()
            .ok()
            .and_then(|r| r.json())
            .and_then(|v| entry_id(&v["message"]));
        let upto = seen_ids.iter().flatten().max().copied().unwrap_or(0);
        let (sent, r) = self.delete_inbox(bob, &format!("&upto={upto}")).await;
        let left = r
            .as_ref()
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.json())
            .map(|v| entries_of(&v));
        let left_keys: Vec<String> = left
            .iter()
            .flatten()
            .filter_map(|e| e["key"].as_str().map(str::to_string))
            .collect();
        self.check(
            "pod.x1.purge-upto-answers-remaining",
            RULE,
            Strength::Must,
            left_keys == [late_key.clone()],
            "DELETE /inboxes?upto=ID answers 200 with the entries that remain, grouped as in \
             playback",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"messages": [{"contact": alice_id, "messages": [{"key": late_key, "id": late_id.map(|i| i.to_string())}]}]}),
        );
        let (sent, r, after) = self.playback_entries(bob).await;
        let after_keys: Vec<String> = after
            .iter()
            .filter_map(|e| e["key"].as_str().map(str::to_string))
            .collect();
        self.check(
            "pod.x1.purge-upto-keeps-newer",
            RULE,
            Strength::Must,
            after_keys == [late_key.clone()],
            "after DELETE upto = the highest id played back, exactly the entry notified after \
             the playback remains",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"keys": [late_key]}),
        );
        // `upto` that is not digits: 400 with the JSON error, nothing deleted.
        let mut refused = Vec::new();
        for bad in ["abc", "-1", "1.5"] {
            let (_, r) = self.delete_inbox(bob, &format!("&upto={bad}")).await;
            // The JSON shape of the error is P-A7's, checked elsewhere.
            let ok = r.as_ref().is_ok_and(|r| r.status == 400);
            if !ok {
                refused.push(json!({"upto": bad, "got": Self::shown(&r)}));
            }
        }
        let (_, _, still) = self.playback_entries(bob).await;
        self.check(
            "pod.x1.upto-not-digits-400",
            RULE,
            Strength::Must,
            refused.is_empty() && still.len() == 1,
            "upto that is not decimal digits is refused with 400 and deletes nothing",
            None,
            Some(json!({"not_refused": refused, "entries_left": still.len()})),
            json!({"status": 400, "entries_left": 1}),
        );
        // An `upto` beyond the newest id deletes what exists.
        let (sent, r) = self
            .delete_inbox(bob, "&upto=99999999999999999999999999")
            .await;
        let empty = r
            .as_ref()
            .ok()
            .filter(|r| r.status == 200)
            .and_then(|r| r.json())
            .is_some_and(|v| entries_of(&v).is_empty());
        let (_, _, none) = self.playback_entries(bob).await;
        self.check(
            "pod.x1.upto-beyond-newest",
            RULE,
            Strength::Must,
            empty && none.is_empty(),
            "an upto beyond the newest id deletes every entry there is and answers none left",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"messages": []}),
        );
    }

    async fn subscribe(&mut self, u: &User) -> Result<Ws, String> {
        let mut ws = self.http.websocket().await?;
        let n = self.nonce();
        let frame = hex::encode(self.signed_as(u, "pubkeyhash", &u.hash, n, &[]));
        ws.send(Message::Text(frame.into()))
            .await
            .map_err(|e| format!("sending the auth frame: {e}"))?;
        Ok(ws)
    }

    async fn notify(
        &mut self,
        from: &User,
        to_alias: &str,
        from_id: &str,
        key: &str,
    ) -> (Value, Result<Resp, String>) {
        let body = self.signed(from, &[("from", from_id), ("key", key)]);
        self.post(&format!("/inboxes/{to_alias}"), &body).await
    }

    async fn inboxes(&mut self, alice: &User, bob: &User, carol: &User, mallory: &User) {
        let mut subs = Vec::new();
        let mut ws_errors = Vec::new();
        for _ in 0..2 {
            match self.subscribe(alice).await {
                Ok(ws) => subs.push(ws),
                Err(e) => ws_errors.push(e),
            }
        }
        let mut bob_ws = self.subscribe(bob).await.ok();
        self.check(
            "pod.ws.upgrade",
            "P-S1",
            Strength::Must,
            ws_errors.is_empty(),
            "a WebSocket opens at the base URI",
            None,
            Some(json!(ws_errors)),
            json!("HTTP 101"),
        );
        // Let the pod finish authenticating the subscribers before anything is posted.
        let mut closed = Vec::new();
        for ws in subs.iter_mut() {
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(300), ws.next()).await {
                closed.push(format!("{m:?}"));
            }
        }
        self.check(
            "pod.ws.auth-ok-stays-open",
            "P-S1",
            Strength::Must,
            closed.is_empty() && !subs.is_empty(),
            "a valid auth frame: the connection stays open (nothing sent back before an entry)",
            None,
            Some(json!(closed)),
            json!("silence"),
        );
        let bob_id = self.user_id(bob);
        let carol_id = self.user_id(carol);
        let k1 = sha1_hex(&format!("k1-{}", self.tag));
        let k2 = sha1_hex(&format!("k2-{}", self.tag));
        let k3 = sha1_hex(&format!("k3-{}", self.tag));
        let alias = alice.alias.clone();
        let (sent, r) = self.notify(bob, &alias, &bob_id, &k1).await;
        let posted = self.expect_ok_json(
            "pod.inbox.post-ok",
            "P-A4",
            "POST /inboxes/:alias signed by the sender, from = its userID",
            &sent,
            &r,
        );
        let pushed_at = std::time::Instant::now();
        match &posted {
            Some(v) => {
                let m = &v["message"];
                let shape = entry_shape(m);
                self.check("pod.inbox.post-shape", "P-A5", Strength::Must, shape.is_ok(), format!("{{\"message\": {{sender, recipient, key, timestamp}}}}, unwrapped{}", shape.as_ref().err().map(|e| format!(": {e}")).unwrap_or_default()), Some(&sent), Some(v.clone()), json!({"message": {"sender": {"userID": bob_id, "pubkeyhash": bob.hash}, "recipient": {"userID": self.user_id(alice), "pubkeyhash": alice.hash}, "key": k1, "timestamp": "integer ms"}}));
                if !self.gated("pod.inbox.post-sender", "P-A4", "pod.inbox.post-shape") {
                    self.check(
                        "pod.inbox.post-sender",
                        "P-A4",
                        Strength::Must,
                        m["sender"]["userID"] == json!(bob_id)
                            && m["sender"]["pubkeyhash"] == json!(bob.hash),
                        "sender = the `from` userID and the signer's pubkeyhash",
                        Some(&sent),
                        Some(m["sender"].clone()),
                        json!({"userID": bob_id, "pubkeyhash": bob.hash}),
                    );
                }
                if !self.gated("pod.inbox.post-recipient", "P-A8", "pod.inbox.post-shape") {
                    self.check(
                        "pod.inbox.post-recipient",
                        "P-A8",
                        Strength::Must,
                        m["recipient"]["userID"] == json!(self.user_id(alice))
                            && m["recipient"]["pubkeyhash"] == json!(alice.hash),
                        "recipient = alias@podhost and its owner's pubkeyhash",
                        Some(&sent),
                        Some(m["recipient"].clone()),
                        json!({"userID": self.user_id(alice), "pubkeyhash": alice.hash}),
                    );
                }
                if !self.gated("pod.inbox.post-key", "P-A4", "pod.inbox.post-shape") {
                    self.check(
                        "pod.inbox.post-key",
                        "P-A4",
                        Strength::Must,
                        m["key"] == json!(k1),
                        "key = the signed `key`",
                        Some(&sent),
                        Some(m["key"].clone()),
                        json!(k1),
                    );
                }
            }
            None => {
                for (id, rule) in [
                    ("pod.inbox.post-shape", "P-A5"),
                    ("pod.inbox.post-sender", "P-A4"),
                    ("pod.inbox.post-recipient", "P-A8"),
                    ("pod.inbox.post-key", "P-A4"),
                ] {
                    self.na(id, rule, "prerequisite failed: pod.inbox.post-ok");
                }
            }
        }
        // Push to every subscriber within 1 s.
        let mut frames = Vec::new();
        for ws in subs.iter_mut() {
            let left = Duration::from_secs(1).saturating_sub(pushed_at.elapsed());
            frames.push(next_text(ws, left).await);
        }
        let first = frames.first().cloned().flatten();
        if posted.is_none() {
            for id in [
                "pod.ws.push-within-1s",
                "pod.ws.push-format",
                "pod.ws.push-matches-entry",
                "pod.ws.push-every-subscriber",
            ] {
                self.na(id, "P-S2", "prerequisite failed: pod.inbox.post-ok");
            }
        } else {
            self.check(
                "pod.ws.push-within-1s",
                "P-S2",
                Strength::Must,
                first.is_some(),
                "a JSON text frame within 1 s of POST /inboxes/:alias",
                None,
                Some(json!(frames)),
                json!("one text frame"),
            );
            let fv = first
                .as_deref()
                .and_then(|t| serde_json::from_str::<Value>(t).ok());
            let shape = fv.as_ref().map(entry_shape);
            self.check("pod.ws.push-format", "P-S2", Strength::Must, matches!(shape, Some(Ok(()))), format!("the whitepaper's message format{}", match &shape { Some(Err(e)) => format!(": {e}"), _ => String::new() }), None, Some(json!(first)), json!({"recipient": {"userID": "…", "pubkeyhash": "…"}, "sender": {"userID": "…", "pubkeyhash": "…"}, "key": "…", "timestamp": "integer ms"}));
            let want = &posted
                .as_ref()
                .map(|v| v["message"].clone())
                .unwrap_or_default();
            let same = fv.as_ref().is_some_and(|f| {
                f["key"] == json!(k1)
                    && f["sender"] == want["sender"]
                    && f["recipient"] == want["recipient"]
            });
            if !self.gated("pod.ws.push-matches-entry", "P-S2", "pod.inbox.post-shape") {
                self.check(
                    "pod.ws.push-matches-entry",
                    "P-S2",
                    Strength::Must,
                    same,
                    "the frame names the key, sender and recipient of the new entry",
                    None,
                    Some(json!(first)),
                    want.clone(),
                );
            }
            let all = frames.len() >= 2 && frames.iter().all(Option::is_some);
            self.check(
                "pod.ws.push-every-subscriber",
                "P-S2",
                Strength::Must,
                all,
                "both of the recipient's connections get the frame",
                None,
                Some(json!(frames)),
                json!("a frame on each"),
            );
        }
        match bob_ws.as_mut() {
            Some(ws) => {
                let leaked = next_text(ws, Duration::from_millis(300)).await;
                self.check(
                    "pod.ws.push-only-recipient",
                    "P-S2",
                    Strength::Must,
                    leaked.is_none(),
                    "another user's connection gets nothing",
                    None,
                    Some(json!(leaked)),
                    json!(null),
                );
            }
            None => self.na(
                "pod.ws.push-only-recipient",
                "P-S2",
                "bob's WebSocket could not be opened",
            ),
        }
        // More entries: a second from bob, one from carol; one that must be refused.
        let _ = self.notify(bob, &alias, &bob_id, &k2).await;
        let _ = self.notify(carol, &alias, &carol_id, &k3).await;
        let bob_key = sha1_hex(&format!("bob-own-{}", self.tag));
        let _ = self
            .notify(carol, &bob.alias.clone(), &carol_id, &bob_key)
            .await;
        // Notifications refused for who sends them or whom they name.
        let k_forged = sha1_hex(&format!("forged-{}", self.tag));
        let k_ghost = sha1_hex(&format!("ghost-{}", self.tag));
        let ghost = format!("ghost-{}@{}", self.tag, self.host);
        let nobody = format!("nobody-{}", self.tag);
        #[rustfmt::skip] // one row per case: id, rule, what, to alias, from, key, statuses
        let refused: [RefusedNotify<'_>; 4] = [
            ("pod.inbox.from-not-signer-refused", "P-A4", "from = another user's userID than the signer's", &alias, &carol_id, &k_forged, &[401, 403]),
            ("pod.inbox.from-unknown-alias-refused", "P-A4", "from = an alias nobody has here", &alias, &ghost, &k_ghost, &[401, 403]),
            ("pod.inbox.unknown-alias-404", "P-A7", "POST /inboxes/:alias for an alias nobody has", &nobody, &bob_id, &k1, &[404]),
            ("pod.inbox.bad-alias-pattern-refused", "P-A8", "POST /inboxes/Alice (outside the pattern)", "Alice", &bob_id, &k1, &[400, 404]),
        ];
        for (id, rule, what, to, from, key, statuses) in refused {
            let (sent, r) = self.notify(bob, to, from, key).await;
            self.expect_error(id, rule, what, &sent, &r, statuses);
        }
        for (id, key) in [
            ("pod.inbox.key-not-hex-400", "not-a-key".to_string()),
            ("pod.inbox.key-uppercase-400", k1.to_uppercase()),
            ("pod.inbox.key-short-400", k1[..39].to_string()),
            ("pod.inbox.key-long-400", format!("{k1}00")),
        ] {
            let (sent, r) = self.notify(bob, &alias, &bob_id, &key).await;
            self.expect_error(
                id,
                "P-V2",
                "a `key` that is not 40 lowercase hex",
                &sent,
                &r,
                &[400],
            );
        }
        // Missing parameters, an unregistered signer.
        #[rustfmt::skip] // one row per case: id, rule, what, signer, signed parameters, status
        let refused: [RefusedSigned<'_>; 3] = [
            ("pod.inbox.missing-key-400", "P-A7", "no `key`", bob, &[("from", &bob_id)], 400),
            ("pod.inbox.missing-from-400", "P-A7", "no `from`", bob, &[("key", &k1)], 400),
            ("pod.inbox.unregistered-401", "P-A3", "a pubkeyhash identity not registered here", mallory, &[("from", &bob_id), ("key", &k1)], 401),
        ];
        for (id, rule, what, signer, params, status) in refused {
            let body = self.signed(signer, params);
            let (sent, r) = self.post(&format!("/inboxes/{alias}"), &body).await;
            self.expect_error(id, rule, what, &sent, &r, &[status]);
        }
        let body = self.signed(bob, &[("from", &bob_id), ("key", &k1)]);
        let (sent, r) = self
            .call(
                "POST",
                &format!("/inboxes/{alias}"),
                Some("application/json"),
                &body,
            )
            .await;
        self.expect_error(
            "pod.inbox.media-json-415",
            "P-A1",
            "a signed text as application/json",
            &sent,
            &r,
            &[415],
        );
        let (sent, r) = self.post(&format!("/inboxes/{alias}"), &body).await;
        self.check(
            "pod.inbox.fresh-after-415",
            "P-A2",
            Strength::Should,
            r.as_ref().is_ok_and(|r| r.status == 200),
            "a text refused with 415 was never accepted, so its nonce is still fresh",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"status": 200}),
        );
        let (sent, r) = self.post(&format!("/inboxes/{alias}"), &body).await;
        self.expect_error(
            "pod.inbox.replay-401",
            "P-A2",
            "the same signed text again",
            &sent,
            &r,
            &[401],
        );
        let k4 = sha1_hex(&format!("k4-{}", self.tag));
        let body = self.signed(bob, &[("from", &bob_id), ("key", &k4)]);
        let (sent, r) = self
            .post(
                &format!("/inboxes/{alias}?key={k_forged}&from={carol_id}"),
                &body,
            )
            .await;
        let m = r
            .as_ref()
            .ok()
            .and_then(|r| r.json())
            .map(|v| v["message"].clone());
        if !self.gated(
            "pod.inbox.query-string-ignored",
            "P-A1",
            "pod.inbox.post-shape",
        ) {
            self.check(
                "pod.inbox.query-string-ignored",
                "P-A1",
                Strength::Must,
                m.as_ref().is_some_and(|m| {
                    m["key"] == json!(k4) && m["sender"]["userID"] == json!(bob_id)
                }),
                "query parameters key/from are ignored; the signed ones are used",
                Some(&sent),
                Some(Self::shown(&r)),
                json!({"message": {"key": k4, "sender": {"userID": bob_id}}}),
            );
        }
        drop(subs);
        drop(bob_ws);
        // Playback.
        let expected: BTreeSet<String> = [&k1, &k2, &k3, &k4].into_iter().cloned().collect();
        let (sent, r, t) = self.token(alice, "/inboxes", "GET").await;
        let Some(t) = t else {
            let _ = (sent, r);
            for id in [
                "pod.playback.ok",
                "pod.playback.shape",
                "pod.playback.grouped-by-contact",
                "pod.playback.complete",
                "pod.inbox.kept-after-push",
                "pod.inbox.refused-not-stored",
                "pod.inbox.kept-after-playback",
                "pod.inbox.delete-ok",
                "pod.inbox.delete-shape",
                "pod.inbox.empty-after-delete",
                "pod.token.identity-bound",
                "pod.inbox.delete-only-own",
            ] {
                self.na(
                    id,
                    "P-A9",
                    "prerequisite failed: no token (pod.token.create-ok)",
                );
            }
            return;
        };
        let (sent, r) = self
            .call("GET", &format!("/inboxes?token={t}"), None, "")
            .await;
        let v = self.expect_ok_json(
            "pod.playback.ok",
            "P-A4",
            "GET /inboxes with a token",
            &sent,
            &r,
        );
        let groups = v.as_ref().and_then(|v| v["messages"].as_array().cloned());
        let shape = groups.as_ref().is_some_and(|g| {
            g.iter().all(|c| {
                c["contact"].is_string()
                    && c["messages"]
                        .as_array()
                        .is_some_and(|m| m.iter().all(|e| entry_shape(e).is_ok()))
            })
        });
        self.check("pod.playback.shape", "P-A5", Strength::Must, shape, "{\"messages\": [{\"contact\", \"messages\": [entries in the whitepaper format]}]}, unwrapped", Some(&sent), Some(Self::shown(&r)), json!({"messages": [{"contact": bob_id, "messages": ["…"]}]}));
        let got = keys_in(groups.as_deref().unwrap_or(&[]));
        let grouped = groups.as_ref().is_some_and(|g| {
            let mut seen = BTreeSet::new();
            g.iter().all(|c| {
                let contact = c["contact"].as_str().unwrap_or("");
                let fresh = seen.insert(contact.to_string());
                fresh
                    && c["messages"].as_array().is_some_and(|m| {
                        m.iter().all(|e| {
                            let s = e["sender"]["userID"].as_str().unwrap_or("");
                            s == contact || s.split('@').next() == Some(contact)
                        })
                    })
            })
        });
        self.check(
            "pod.playback.grouped-by-contact",
            "P-A5",
            Strength::Must,
            grouped,
            "one group per contact (its userID or alias), each holding only that sender's entries",
            Some(&sent),
            Some(Self::shown(&r)),
            json!([{"contact": bob_id}, {"contact": carol_id}]),
        );
        self.check(
            "pod.playback.complete",
            "P-A9",
            Strength::Must,
            expected.is_subset(&got),
            "every accepted entry is played back",
            Some(&sent),
            Some(json!(got)),
            json!(expected),
        );
        self.check(
            "pod.inbox.kept-after-push",
            "P-A9",
            Strength::Must,
            got.contains(&k1),
            "the entry pushed over the WebSocket is still in the inbox",
            Some(&sent),
            Some(json!(got)),
            json!(k1),
        );
        let leaked: Vec<&String> = [&k_forged, &k_ghost, &bob_key]
            .into_iter()
            .filter(|k| got.contains(*k))
            .collect();
        self.check("pod.inbox.refused-not-stored", "P-A4", Strength::Must, leaked.is_empty(), "refused notifications (from ≠ signer, unknown from) and other users' entries are not in the inbox", Some(&sent), Some(json!(leaked)), json!([]));
        let (sent, r, t) = self.token(alice, "/inboxes", "GET").await;
        let again = match t {
            Some(t) => {
                self.call("GET", &format!("/inboxes?token={t}"), None, "")
                    .await
                    .1
            }
            None => r,
        };
        let got2 = again
            .as_ref()
            .ok()
            .and_then(|r| r.json())
            .and_then(|v| v["messages"].as_array().cloned())
            .map(|g| keys_in(&g))
            .unwrap_or_default();
        self.check(
            "pod.inbox.kept-after-playback",
            "P-A9",
            Strength::Must,
            expected.is_subset(&got2),
            "a second playback still has every entry (only DELETE purges)",
            Some(&sent),
            Some(json!(got2)),
            json!(expected),
        );
        // Bob's token shows bob's inbox, not alice's.
        let (_, _, tb) = self.token(bob, "/inboxes", "GET").await;
        let bob_view = match tb {
            Some(t) => self
                .call("GET", &format!("/inboxes?token={t}"), None, "")
                .await
                .1
                .ok()
                .and_then(|r| r.json())
                .and_then(|v| v["messages"].as_array().cloned())
                .map(|g| keys_in(&g)),
            None => None,
        };
        self.check("pod.token.identity-bound", "P-A6", Strength::Must, bob_view.as_ref().is_some_and(|b| b.is_disjoint(&expected)), "a token plays back its own identity's inbox only (none of alice's entries in bob's playback)", None, Some(json!(bob_view)), json!({"not_containing": expected}));
        // Purge.
        let (_, _, td) = self.token(alice, "/inboxes", "DELETE").await;
        let Some(td) = td else {
            for (id, rule) in [
                ("pod.inbox.delete-ok", "P-A4"),
                ("pod.inbox.delete-shape", "P-A5"),
                ("pod.inbox.empty-after-delete", "P-A9"),
                ("pod.inbox.delete-only-own", "P-A9"),
            ] {
                self.na(id, rule, "prerequisite failed: no DELETE token");
            }
            return;
        };
        let (sent, r) = self
            .call("DELETE", &format!("/inboxes?token={td}"), None, "")
            .await;
        let v = self.expect_ok_json(
            "pod.inbox.delete-ok",
            "P-A4",
            "DELETE /inboxes with a DELETE token",
            &sent,
            &r,
        );
        self.check(
            "pod.inbox.delete-shape",
            "P-A5",
            Strength::Must,
            v == Some(json!({"messages": []})),
            "the answer is {\"messages\": []}",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"messages": []}),
        );
        let (sent, _, t) = self.token(alice, "/inboxes", "GET").await;
        let after = match t {
            Some(t) => self
                .call("GET", &format!("/inboxes?token={t}"), None, "")
                .await
                .1
                .ok()
                .and_then(|r| r.json()),
            None => None,
        };
        self.check(
            "pod.inbox.empty-after-delete",
            "P-A9",
            Strength::Must,
            after.as_ref().is_some_and(|v| v["messages"] == json!([])),
            "playback after DELETE is {\"messages\": []}",
            Some(&sent),
            after.clone(),
            json!({"messages": []}),
        );
        let (_, _, tb) = self.token(bob, "/inboxes", "GET").await;
        let bob_after = match tb {
            Some(t) => self
                .call("GET", &format!("/inboxes?token={t}"), None, "")
                .await
                .1
                .ok()
                .and_then(|r| r.json())
                .and_then(|v| v["messages"].as_array().cloned())
                .map(|g| keys_in(&g)),
            None => None,
        };
        self.check(
            "pod.inbox.delete-only-own",
            "P-A9",
            Strength::Must,
            bob_after.as_ref().is_some_and(|b| b.contains(&bob_key)),
            "alice's purge leaves bob's inbox alone",
            None,
            Some(json!(bob_after)),
            json!([bob_key]),
        );
    }

    // ------------------------------------------------------------------ 8. the REST vectors

    /// The REST vectors (`vectors/rest.json`, embedded in this binary), each an HTTP or
    /// WebSocket exchange with its expectation, run through this suite's client (so their
    /// answers are judged against the API document too, and a pod that stops answering is
    /// noticed). What they check is not written again here: `POST /messages` and
    /// `GET /messages/:hash` (P-V1, P-V2, P-A5) are checked by them alone.
    async fn rest_vectors(&mut self) -> anyhow::Result<()> {
        let files = crate::vectors::load(&crate::vectors::Source::Embedded)?;
        let doc = crate::vectors::rest_doc(&files)
            .ok_or_else(|| anyhow::anyhow!("the embedded vectors have no rest.json"))?;
        let seed = self.opts.rng_seed.rotate_left(17);
        for c in rest::run_on(doc, self.http.clone(), self.host.clone(), seed).await? {
            self.push(c);
        }
        Ok(())
    }

    // ------------------------------------------------------------------ 9. WebSocket refusals

    async fn ws_refusals(&mut self, alice: &User, mallory: &User) {
        let n = self.nonce();
        let good = self.signed_as(alice, "pubkeyhash", &alice.hash, n, &[]);
        let used = {
            // A nonce accepted on REST, then offered on the WebSocket.
            let n = self.nonce();
            let body = self.signed_as(
                alice,
                "pubkeyhash",
                &alice.hash,
                n,
                &[("resource", "/inboxes"), ("method", "GET")],
            );
            let (_, r) = self.post("/tokens", &body).await;
            r.as_ref()
                .is_ok_and(|r| r.status == 200)
                .then(|| self.signed_as(alice, "pubkeyhash", &alice.hash, n, &[]))
        };
        let n = self.nonce();
        let wrong_signer = self.signed_as(mallory, "pubkeyhash", &alice.hash, n, &[]);
        let n = self.nonce();
        let unknown = self.signed_as(mallory, "pubkeyhash", &mallory.hash, n, &[]);
        let n = self.nonce();
        let href = self.signed_as(alice, "href", &self.user_id(alice), n, &[]);
        let stale = self.signed_as(alice, "pubkeyhash", &alice.hash, now_ms() - 6 * MINUTE, &[]);
        let replayed = good.clone();
        let frames: Vec<(&str, Option<Message>)> = vec![
            (
                "pod.ws.not-hex-4401",
                Some(Message::Text(good.clone().into())),
            ),
            ("pod.ws.garbage-4401", Some(Message::Text("hello".into()))),
            ("pod.ws.empty-frame-4401", Some(Message::Text("".into()))),
            (
                "pod.ws.binary-frame-4401",
                Some(Message::Binary(hex::encode(&good).into_bytes().into())),
            ),
            (
                "pod.ws.bad-signature-4401",
                Some(Message::Text(hex::encode(&wrong_signer).into())),
            ),
            (
                "pod.ws.unknown-identity-4401",
                Some(Message::Text(hex::encode(&unknown).into())),
            ),
            (
                "pod.ws.href-identity-4401",
                Some(Message::Text(hex::encode(&href).into())),
            ),
            (
                "pod.ws.stale-nonce-4401",
                Some(Message::Text(hex::encode(&stale).into())),
            ),
            (
                "pod.ws.unsigned-query-4401",
                Some(Message::Text(
                    hex::encode(format!(
                        "identity={}&identityType=pubkeyhash&nonce={}",
                        alice.hash,
                        now_ms()
                    ))
                    .into(),
                )),
            ),
            (
                "pod.ws.nonce-used-on-rest-4401",
                used.map(|u| Message::Text(hex::encode(u).into())),
            ),
        ];
        // The replay case needs the first use accepted first.
        let first_use = async {
            let mut ws = self.http.websocket().await.ok()?;
            ws.send(Message::Text(hex::encode(&replayed).into()))
                .await
                .ok()?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(ws)
        }
        .await;
        let mut futs = Vec::new();
        for (id, frame) in frames {
            let http = self.http.clone();
            futs.push(async move { (id, refusal(&http, frame).await) });
        }
        let replay_http = self.http.clone();
        let replay = async move {
            match first_use {
                Some(_keep) => {
                    refusal(
                        &replay_http,
                        Some(Message::Text(hex::encode(&replayed).into())),
                    )
                    .await
                }
                None => Err("the first use could not be made".to_string()),
            }
        };
        let (results, replay) = tokio::join!(futures::future::join_all(futs), replay);
        for (id, r) in results
            .into_iter()
            .chain([("pod.ws.replayed-nonce-4401", replay)])
        {
            match r {
                Err(why) => self.na(id, "P-S1", why),
                Ok(got) => self.check(
                    id,
                    "P-S1",
                    Strength::Must,
                    got == Some(4401),
                    "the pod closes the connection with code 4401",
                    None,
                    Some(json!(got)),
                    json!({"close_code": 4401}),
                ),
            }
        }
    }

    // ------------------------------------------------------------------ 10. federation

    async fn federation(&mut self, alice: &User, bob: &User) -> anyhow::Result<()> {
        const IDS: [&str; 10] = [
            "pod.fed.href-notify-ok",
            "pod.fed.key-fetched-over-http",
            "pod.fed.sender-is-href-user",
            "pod.fed.href-push",
            "pod.fed.wrong-key-401",
            "pod.fed.unknown-alias-401",
            "pod.fed.not-a-key-401",
            "pod.fed.from-other-user-refused",
            "pod.fed.tokens-403",
            "pod.fed.aliases-403",
        ];
        let Some(addr) = self.opts.federation_host else {
            for id in IDS {
                self.na(
                    id,
                    "P-A3",
                    "needs --federation-host (and the pod in insecure-federation mode)",
                );
            }
            return Ok(());
        };
        let fed = User::new("fed", format!("fed-{}", self.tag), KeyKind::Cv25519)?;
        let other = User::new("other", format!("other-{}", self.tag), KeyKind::Cv25519)?;
        let mut table: HashMap<String, Served> = HashMap::new();
        table.insert(
            fed.alias.clone(),
            (200, "application/pgp-keys", fed.armored.clone()),
        );
        table.insert(
            other.alias.clone(),
            (200, "application/pgp-keys", other.armored.clone()),
        );
        table.insert(
            format!("junk-{}", self.tag),
            (200, "application/pgp-keys", "not a key".into()),
        );
        let server = FedServer::start(addr, table).await?;
        let host = server.addr.to_string();
        let fed_id = format!("{}@{host}", fed.alias);
        let other_id = format!("{}@{host}", other.alias);
        let mut ws = self.subscribe(alice).await.ok();
        if let Some(ws) = ws.as_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
        }
        let key = sha1_hex(&format!("fed-{}", self.tag));
        let n = self.nonce();
        let body = self.signed_as(
            &fed,
            "href",
            &fed_id,
            n,
            &[("from", &fed_id), ("key", &key)],
        );
        let (sent, r) = self.post(&format!("/inboxes/{}", alice.alias), &body).await;
        let v = self.expect_ok_json(
            "pod.fed.href-notify-ok",
            "P-A3",
            "POST /inboxes/:alias signed by alias@suite-pod with identityType=href",
            &sent,
            &r,
        );
        let fetched = server.seen().contains(&format!("/aliases/{}", fed.alias));
        self.check(
            "pod.fed.key-fetched-over-http",
            "P-A3",
            Strength::Must,
            fetched,
            "the pod fetched http://suite-pod/aliases/alias (insecure-federation mode)",
            None,
            Some(json!(server.seen())),
            json!([format!("/aliases/{}", fed.alias)]),
        );
        match &v {
            Some(v) => {
                let s = &v["message"]["sender"];
                if !self.gated(
                    "pod.fed.sender-is-href-user",
                    "P-A4",
                    "pod.inbox.post-shape",
                ) {
                    self.check(
                        "pod.fed.sender-is-href-user",
                        "P-A4",
                        Strength::Must,
                        s["userID"] == json!(fed_id) && s["pubkeyhash"] == json!(fed.hash),
                        "sender = alias@suite-pod and SHA-1 of the key it serves",
                        Some(&sent),
                        Some(s.clone()),
                        json!({"userID": fed_id, "pubkeyhash": fed.hash}),
                    );
                }
            }
            None => self.na(
                "pod.fed.sender-is-href-user",
                "P-A4",
                "prerequisite failed: pod.fed.href-notify-ok",
            ),
        }
        match (ws.as_mut(), &v) {
            (Some(ws), Some(_)) => {
                let f = next_text(ws, Duration::from_secs(1)).await;
                let ok = f
                    .as_deref()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok())
                    .is_some_and(|f| f["key"] == json!(key));
                self.check(
                    "pod.fed.href-push",
                    "P-S2",
                    Strength::Must,
                    ok,
                    "the federated entry is pushed within 1 s",
                    None,
                    Some(json!(f)),
                    json!({"key": key}),
                );
            }
            _ => self.na(
                "pod.fed.href-push",
                "P-S2",
                "prerequisite failed: pod.fed.href-notify-ok or the WebSocket",
            ),
        }
        // Refusals: (id, rule, what, signer, identity, path, signed parameters, statuses).
        let ghost = format!("ghost-{}@{host}", self.tag);
        let junk = format!("junk-{}@{host}", self.tag);
        let inbox = format!("/inboxes/{}", alice.alias);
        let alias = format!("fed2-{}", self.tag);
        /// (id, rule, what, signer, identity, path, signed parameters, statuses)
        type Refusal<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a User,
            &'a str,
            &'a str,
            Vec<(&'a str, &'a str)>,
            &'a [u16],
        );
        let refusals: [Refusal<'_>; 6] = [
            (
                "pod.fed.wrong-key-401",
                "P-A3",
                "identity fed@suite-pod, signed by another key",
                &other,
                &fed_id,
                &inbox,
                vec![("from", &fed_id), ("key", &key)],
                &[401],
            ),
            (
                "pod.fed.unknown-alias-401",
                "P-A3",
                "an href identity its pod does not know (404 there)",
                &fed,
                &ghost,
                &inbox,
                vec![("from", &ghost), ("key", &key)],
                &[401],
            ),
            (
                "pod.fed.not-a-key-401",
                "P-A3",
                "an href identity whose pod answers something that is not a key",
                &fed,
                &junk,
                &inbox,
                vec![("from", &junk), ("key", &key)],
                &[401],
            ),
            (
                "pod.fed.from-other-user-refused",
                "P-A4",
                "signed by fed@suite-pod with from = other@suite-pod",
                &fed,
                &fed_id,
                &inbox,
                vec![("from", &other_id), ("key", &key)],
                &[401, 403],
            ),
            (
                "pod.fed.tokens-403",
                "P-A4",
                "an href identity (authenticated, not registered) asks for a token",
                &fed,
                &fed_id,
                "/tokens",
                vec![("resource", "/inboxes"), ("method", "GET")],
                &[403],
            ),
            (
                "pod.fed.aliases-403",
                "P-A4",
                "an href identity asks for an alias",
                &fed,
                &fed_id,
                "/aliases",
                vec![("alias", &alias)],
                &[403],
            ),
        ];
        for (id, rule, what, signer, identity, path, params, statuses) in refusals {
            let n = self.nonce();
            let body = self.signed_as(signer, "href", identity, n, &params);
            let (sent, r) = self.post(path, &body).await;
            self.expect_error(id, rule, what, &sent, &r, statuses);
        }
        let _ = bob;
        Ok(())
    }

    // ------------------------------------------------------------------ 11. operations

    /// P-X3: `GET /healthz` answers 200 `{"status":"ok"}` (the pod serves, and the suite has
    /// just written to its store); `GET /readyz` answers 200, or 503 with `{"error"}` while
    /// its seed knows no contact (the suite cannot tell which, so both shapes pass).
    async fn operations(&mut self) {
        let (sent, r) = self.call("GET", "/healthz", None, "").await;
        let ok = r.as_ref().is_ok_and(|r| {
            r.status == 200
                && r.essence() == "application/json"
                && r.json().is_some_and(|v| v["status"] == "ok")
        });
        self.check(
            "pod.x3.healthz",
            "P-X3",
            Strength::Must,
            ok,
            "GET /healthz of a serving pod: 200 {\"status\":\"ok\"} as application/json",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"status": 200, "body": {"status": "ok"}}),
        );
        let (sent, r) = self.call("GET", "/readyz", None, "").await;
        let ok = r.as_ref().is_ok_and(|r| {
            r.essence() == "application/json"
                && match r.status {
                    200 => r.json().is_some_and(|v| v.is_object()),
                    503 => r.json().is_some_and(|v| v["error"].is_string()),
                    _ => false,
                }
        });
        self.check(
            "pod.x3.readyz",
            "P-X3",
            Strength::Must,
            ok,
            "GET /readyz: 200 with a JSON object, or 503 {\"error\"} while the seed has no contact",
            Some(&sent),
            Some(Self::shown(&r)),
            json!({"status": [200, 503]}),
        );
    }

    /// Every answer of the run against `pod/openapi.json`, one case per operation
    /// ([`api::Api::judge`]).
    fn openapi(&mut self) {
        match api::Api::ours() {
            Ok(doc) => {
                for c in doc.judge(&self.http.answers()) {
                    self.push(c);
                }
            }
            Err(e) => {
                // Not reached with the embedded document (its unit tests parse it).
                for entry in catalogue::entries(Live::Pod) {
                    if entry.id.starts_with("pod.openapi.") {
                        let why = format!("not judged: {e}");
                        self.push(CaseResult::with(
                            entry.id.clone(),
                            &entry.rule,
                            Verdict::NotJudged,
                            why,
                        ));
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------------ 12. slow

    async fn slow(&mut self, alice: &User) {
        if !self.opts.slow {
            self.na(
                "pod.token.expires-after-30s",
                "P-A6",
                "waits 31 s: run with --slow",
            );
            self.na(
                "pod.ws.silent-10s-4401",
                "P-S1",
                "waits 10 s: run with --slow",
            );
            return;
        }
        let (_, _, t) = self.token(alice, "/inboxes", "GET").await;
        let http = self.http.clone();
        let silent = async {
            let mut ws = http.websocket().await.ok()?;
            Some(close_code(&mut ws, Duration::from_secs(13)).await)
        };
        let wait = tokio::time::sleep(Duration::from_secs(31));
        let (silent, _) = tokio::join!(silent, wait);
        match silent {
            Some(code) => self.check(
                "pod.ws.silent-10s-4401",
                "P-S1",
                Strength::Must,
                code == Some(4401),
                "no frame within 10 s: close 4401 (waited 13 s)",
                None,
                Some(json!(code)),
                json!({"close_code": 4401}),
            ),
            None => self.na(
                "pod.ws.silent-10s-4401",
                "P-S1",
                "the WebSocket could not be opened",
            ),
        }
        match t {
            Some(t) => {
                let (sent, r) = self
                    .call("GET", &format!("/inboxes?token={t}"), None, "")
                    .await;
                self.expect_error(
                    "pod.token.expires-after-30s",
                    "P-A6",
                    "a token used 31 s after it was issued",
                    &sent,
                    &r,
                    &[401],
                );
            }
            None => self.na(
                "pod.token.expires-after-30s",
                "P-A6",
                "prerequisite failed: pod.token.create-ok",
            ),
        }
    }
}

/// The entries of a playback-shaped answer (`{"messages": [{"contact", "messages"}]}`), in
/// order.
fn entries_of(v: &Value) -> Vec<Value> {
    v["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["messages"].as_array().into_iter().flatten().cloned())
        .collect()
}

/// An entry's P-X1 id, when it is a string of decimal digits.
fn entry_id(e: &Value) -> Option<u128> {
    let id = e["id"].as_str()?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

fn keys_in(groups: &[Value]) -> BTreeSet<String> {
    groups
        .iter()
        .filter_map(|g| g["messages"].as_array())
        .flatten()
        .filter_map(|e| e["key"].as_str().map(str::to_string))
        .collect()
}

/// Opens a WebSocket, sends `frame`, and reports the close code (`Err`: not observable).
async fn refusal(http: &Http, frame: Option<Message>) -> Result<Option<u16>, String> {
    let frame = frame.ok_or("prerequisite failed: the frame could not be made")?;
    let mut ws = http.websocket().await?;
    ws.send(frame).await.map_err(|e| format!("sending: {e}"))?;
    Ok(close_code(&mut ws, Duration::from_secs(5)).await)
}

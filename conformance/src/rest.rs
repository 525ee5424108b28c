//! The REST vector runner: the cases of `vectors/rest.json` (see `vectors/README.md`), each a
//! short sequence of HTTP and WebSocket steps, sent to a pod and graded.
//!
//! Auth texts carry times and nonces, so a case holds templates; this runner fills them at run
//! time (`{{nonce}}`, `{{pubkeyhash:alice}}`, …) and signs them with the committed keys of
//! `vectors/pgp/keys/`. [`LocalPod`] starts this repository's pod in-process on a loopback
//! port with a temporary data directory, so `muttr-conformance vectors` can grade it without
//! anything running; `--pod URL` grades any live pod instead.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use muttr_node::client::http::Target;
use muttr_node::crypto::Identity;
use muttr_node::crypto::auth::cleartext_sign;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::pgp::sha1_hex;
use crate::pod::http::{Http, Resp, Ws, clip, close_code, next_text};
use crate::report::{CaseResult, Strength, Verdict};

/// How to run the REST vectors.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pod's base URL (`http://127.0.0.1:8080`).
    pub url: String,
    /// The pod's public host in its users' IDs (`{{host}}`); default: the URL's `host[:port]`.
    pub pod_host: Option<String>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Seed of the per-case `{{tag}}`s.
    pub rng_seed: u64,
}

impl Options {
    /// Defaults: 15 s per request, tags seeded from the clock.
    pub fn new(url: impl Into<String>) -> Options {
        Options {
            url: url.into(),
            pod_host: None,
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

/// Every case of `doc` (the loaded `rest.json`, key files read in) graded
/// `not-applicable` with `why` (no pod to send them to).
pub fn not_applicable(doc: &Value, why: &str) -> Vec<CaseResult> {
    cases_of(doc)
        .iter()
        .map(|c| {
            CaseResult::with(
                c["id"].as_str().unwrap_or("<no id>"),
                c["rule"].as_str().unwrap_or("?"),
                Verdict::NotApplicable,
                why,
            )
        })
        .collect()
}

fn cases_of(doc: &Value) -> &[Value] {
    doc["cases"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A committed key: its public text and, when the file has one, the secret key that signs.
struct Key {
    public: String,
    secret: Option<Identity>,
}

/// Runs every case of `doc` against the pod at `opts.url`, one after the other.
pub async fn run(doc: &Value, opts: &Options) -> anyhow::Result<Vec<CaseResult>> {
    let target = Target::parse(&opts.url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let host = opts
        .pod_host
        .clone()
        .unwrap_or_else(|| target.authority.clone());
    run_on(doc, Http::new(target, opts.timeout), host, opts.rng_seed).await
}

/// Runs every case of `doc` through `http` (the live pod suite passes its own client, so the
/// answers are judged against the API document and a pod that stops answering is noticed);
/// `host` is the pod's public host.
pub async fn run_on(
    doc: &Value,
    http: Http,
    host: String,
    rng_seed: u64,
) -> anyhow::Result<Vec<CaseResult>> {
    let mut keys = HashMap::new();
    if let Some(m) = doc["keys"].as_object() {
        for (name, k) in m {
            let public = k["public"].as_str().unwrap_or_default().to_string();
            let secret = match k["secret"].as_str() {
                Some(text) => Some(
                    Identity::from_armored(text.as_bytes(), None)
                        .map_err(|e| anyhow::anyhow!("key {name}: {e}"))?,
                ),
                None => None,
            };
            keys.insert(name.clone(), Key { public, secret });
        }
    }
    let mut runner = Runner {
        http,
        host,
        keys,
        last_nonce: 0,
        rng: ChaCha8Rng::seed_from_u64(rng_seed),
    };
    let mut out = Vec::new();
    for case in cases_of(doc) {
        out.push(runner.case(case).await);
    }
    Ok(out)
}

struct Runner {
    http: Http,
    host: String,
    keys: HashMap<String, Key>,
    last_nonce: u64,
    rng: ChaCha8Rng,
}

/// The state of one case: its tag, captured values, bodies sent, open WebSockets.
struct CaseCx {
    tag: String,
    vars: HashMap<String, String>,
    sent: Vec<Vec<u8>>,
    sockets: HashMap<String, Ws>,
}

/// A failed step: what went wrong, what was sent and what came back.
struct StepFail {
    detail: String,
    sent: Option<Value>,
    got: Option<Value>,
}

fn fail(detail: impl Into<String>, sent: Option<Value>, got: Option<Value>) -> StepFail {
    StepFail {
        detail: detail.into(),
        sent,
        got,
    }
}

impl Runner {
    async fn case(&mut self, case: &Value) -> CaseResult {
        let id = case["id"].as_str().unwrap_or("<no id>").to_string();
        let rule = case["rule"].as_str().unwrap_or("?").to_string();
        let desc = case["description"].as_str().unwrap_or_default().to_string();
        let strength = match case["strength"].as_str() {
            Some("MUST") | None => Strength::Must,
            Some(_) => Strength::Should,
        };
        let mut cx = CaseCx {
            tag: format!("{:08x}", self.rng.random::<u32>()),
            vars: HashMap::new(),
            sent: Vec::new(),
            sockets: HashMap::new(),
        };
        let empty = Vec::new();
        let steps = case["steps"].as_array().unwrap_or(&empty);
        for (i, step) in steps.iter().enumerate() {
            let result = self.step(step, &mut cx).await;
            // `same_as: N` names the body of step N: steps that send nothing count as empty.
            cx.sent.resize(i + 1, Vec::new());
            if let Err(f) = result {
                let setup = step["setup"].as_bool().unwrap_or(false);
                let detail = format!("{desc}: step {i}: {}", f.detail);
                if setup {
                    return CaseResult::with(
                        id,
                        &rule,
                        Verdict::NotApplicable,
                        format!("setup failed ({detail})"),
                    );
                }
                return CaseResult::with(id, &rule, strength.violated(), detail).evidence(
                    f.sent,
                    Some(f.got.unwrap_or(Value::Null)),
                    step["expect"].clone(),
                );
            }
        }
        CaseResult::pass(id, &rule, desc)
    }

    fn nonce(&mut self) -> u64 {
        self.last_nonce = now_ms().max(self.last_nonce + 1);
        self.last_nonce
    }

    /// Fills the `{{…}}` placeholders of `s`.
    fn expand(&mut self, s: &str, cx: &CaseCx) -> Result<String, String> {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
            let name = &after[..end];
            out.push_str(&self.placeholder(name, cx)?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn placeholder(&mut self, name: &str, cx: &CaseCx) -> Result<String, String> {
        let (head, arg) = name.split_once(':').unwrap_or((name, ""));
        let key = |n: &str| {
            self.keys
                .get(n)
                .ok_or_else(|| format!("unknown key {n:?} in {{{{{name}}}}}"))
        };
        Ok(match head {
            "host" => self.host.clone(),
            "tag" => cx.tag.clone(),
            "public" => key(arg)?.public.clone(),
            "pubkeyhash" => sha1_hex(&key(arg)?.public),
            "var" => cx
                .vars
                .get(arg)
                .cloned()
                .ok_or_else(|| format!("no value captured as {arg:?}"))?,
            "nonce" if arg.is_empty() => self.nonce().to_string(),
            "nonce" => {
                let off: i64 = arg
                    .parse()
                    .map_err(|_| format!("bad nonce offset {arg:?}"))?;
                (now_ms() as i64 + off).to_string()
            }
            "nonce-seconds" => (now_ms() / 1000).to_string(),
            _ => return Err(format!("unknown placeholder {{{{{name}}}}}")),
        })
    }

    /// The bytes of a body spec (see `vectors/README.md`).
    fn body(&mut self, spec: &Value, cx: &CaseCx) -> Result<Vec<u8>, String> {
        let mut bytes = match spec {
            Value::Null => Vec::new(),
            Value::String(t) => return Ok(self.expand(t, cx)?.into_bytes()),
            Value::Object(m) => {
                if let Some(t) = m.get("text").and_then(Value::as_str) {
                    self.expand(t, cx)?.into_bytes()
                } else if let Some(s) = m.get("signed") {
                    let by = s["by"].as_str().ok_or("signed: no `by`")?;
                    let text = self.expand(s["text"].as_str().ok_or("signed: no `text`")?, cx)?;
                    let signer = self
                        .keys
                        .get(by)
                        .and_then(|k| k.secret.as_ref())
                        .ok_or_else(|| format!("no secret key {by:?}"))?;
                    cleartext_sign(signer, &text, SystemTime::now())
                        .map_err(|e| format!("signing as {by}: {e}"))?
                        .into_bytes()
                } else if let Some(h) = m.get("hex").and_then(Value::as_str) {
                    hex::decode(h).map_err(|e| format!("body hex: {e}"))?
                } else if let Some(r) = m.get("repeat").and_then(Value::as_str) {
                    let n = m.get("times").and_then(Value::as_u64).unwrap_or(1) as usize;
                    r.repeat(n).into_bytes()
                } else if let Some(i) = m.get("same_as").and_then(Value::as_u64) {
                    cx.sent
                        .get(i as usize)
                        .cloned()
                        .ok_or_else(|| format!("same_as: step {i} sent nothing"))?
                } else {
                    return Err(format!("unknown body spec {spec}"));
                }
            }
            other => return Err(format!("unknown body spec {other}")),
        };
        if let Some([from, to]) = spec
            .get("alter")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            let (from, to) = (
                self.expand(from.as_str().unwrap_or_default(), cx)?,
                self.expand(to.as_str().unwrap_or_default(), cx)?,
            );
            let text = String::from_utf8(bytes).map_err(|_| "alter: body is not text")?;
            if !text.contains(&from) {
                return Err(format!("alter: {from:?} is not in the body"));
            }
            bytes = text.replacen(&from, &to, 1).into_bytes();
        }
        if spec.get("hex_encode").and_then(Value::as_bool) == Some(true) {
            bytes = hex::encode(bytes).into_bytes();
        }
        Ok(bytes)
    }

    async fn step(&mut self, step: &Value, cx: &mut CaseCx) -> Result<(), StepFail> {
        if let Some(req) = step.get("request") {
            self.http_step(req, &step["expect"], &step["capture"], cx)
                .await
        } else if let Some(ws) = step.get("ws") {
            self.ws_step(ws, &step["expect"], cx).await
        } else {
            Err(fail(
                "malformed step: neither `request` nor `ws`",
                None,
                None,
            ))
        }
    }

    async fn http_step(
        &mut self,
        req: &Value,
        expect: &Value,
        capture: &Value,
        cx: &mut CaseCx,
    ) -> Result<(), StepFail> {
        let bad = |e: String| fail(format!("malformed vector: {e}"), None, None);
        let method = req["method"].as_str().unwrap_or("GET").to_string();
        let path = self
            .expand(req["path"].as_str().unwrap_or("/"), cx)
            .map_err(bad)?;
        let mut headers = Vec::new();
        if let Some(h) = req["headers"].as_object() {
            for (name, v) in h {
                let v = self
                    .expand(v.as_str().unwrap_or_default(), cx)
                    .map_err(bad)?;
                headers.push((name.clone(), v));
            }
        }
        let body = self.body(&req["body"], cx).map_err(bad)?;
        cx.sent.push(body.clone());
        let shown = json!({
            "method": method, "path": path,
            "headers": headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
            "body": clip(&String::from_utf8_lossy(&body)),
        });
        // A server that answers 413 before reading a large body may reset the connection
        // before the answer is read (a TCP race): retry large bodies twice.
        let tries = if body.len() > 1024 * 1024 { 3 } else { 1 };
        let mut r = Err(String::new());
        for _ in 0..tries {
            r = self
                .http
                .send_with(&method, &path, &headers, body.clone())
                .await;
            if r.is_ok() {
                break;
            }
        }
        let resp = match r {
            Ok(resp) => resp,
            Err(e) => {
                return Err(fail(
                    format!("no answer: {e}"),
                    Some(shown),
                    Some(json!({"transport_error": e})),
                ));
            }
        };
        let got = || Some(resp.shown());
        if let Err(e) = self.check_http(expect, &resp, cx) {
            return Err(fail(e, Some(shown), got()));
        }
        if let Some(m) = capture.as_object() {
            let v = resp.json().unwrap_or(Value::Null);
            for (name, ptr) in m {
                match v.pointer(ptr.as_str().unwrap_or_default()) {
                    Some(Value::String(s)) => {
                        cx.vars.insert(name.clone(), s.clone());
                    }
                    _ => {
                        return Err(fail(
                            format!("no string at {ptr} to capture as {name}"),
                            Some(shown),
                            got(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_http(&mut self, expect: &Value, resp: &Resp, cx: &CaseCx) -> Result<(), String> {
        if let Some(allowed) = expect["status"].as_array()
            && !allowed
                .iter()
                .any(|s| s.as_u64() == Some(resp.status as u64))
        {
            return Err(format!(
                "status {} (expected one of {})",
                resp.status, expect["status"]
            ));
        }
        if let Some(ct) = expect["content_type"].as_str()
            && resp.essence() != ct
        {
            return Err(format!(
                "media type {:?} (expected {ct})",
                resp.ctype.as_deref().unwrap_or("")
            ));
        }
        if expect["error"].as_bool() == Some(true) {
            let ok = resp.essence() == "application/json"
                && resp
                    .json()
                    .is_some_and(|v| v.is_object() && v["error"].is_string());
            if !ok {
                return Err(
                    "the error answer is not {\"error\": string} as application/json (P-A7)".into(),
                );
            }
        }
        if let Some(b) = expect["body"].as_str() {
            let want = self.expand(b, cx)?;
            if resp.body != want {
                return Err("the body is not the expected text".into());
            }
        }
        if let Some(shape) = expect.get("json") {
            let v = resp
                .json()
                .ok_or_else(|| "the answer is not JSON".to_string())?;
            self.matches(shape, &v, "$", cx)?;
        }
        Ok(())
    }

    async fn ws_step(
        &mut self,
        ws: &Value,
        expect: &Value,
        cx: &mut CaseCx,
    ) -> Result<(), StepFail> {
        let bad = |e: String| fail(format!("malformed vector: {e}"), None, None);
        if let Some(name) = ws["open"].as_str() {
            let mut sock =
                self.http.websocket().await.map_err(|e| {
                    fail(format!("WebSocket: {e}"), None, Some(json!({"error": e})))
                })?;
            let mut shown = json!({"websocket": "open"});
            if let Some(spec) = ws.get("send") {
                let bytes = self.body(spec, cx).map_err(bad)?;
                cx.sent.push(bytes.clone());
                let binary = ws["binary"].as_bool() == Some(true);
                shown = json!({"websocket": "open", "frame": clip(&String::from_utf8_lossy(&bytes)), "binary": binary});
                let frame = if binary {
                    Message::Binary(bytes.into())
                } else {
                    Message::Text(String::from_utf8_lossy(&bytes).into_owned().into())
                };
                sock.send(frame)
                    .await
                    .map_err(|e| fail(format!("sending: {e}"), Some(shown.clone()), None))?;
            }
            if let Some(code) = expect["close_code"].as_u64() {
                let wait = Duration::from_millis(expect["within_ms"].as_u64().unwrap_or(5000));
                let got = close_code(&mut sock, wait).await;
                if got != Some(code as u16) {
                    return Err(fail(
                        format!("closed with {got:?}, expected close code {code}"),
                        Some(shown),
                        Some(json!({"close_code": got})),
                    ));
                }
            } else if let Some(ms) = expect["open_ms"].as_u64() {
                let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
                loop {
                    match tokio::time::timeout_at(deadline, sock.next()).await {
                        Err(_) => break,
                        Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                        Ok(other) => {
                            return Err(fail(
                                "the WebSocket did not stay open",
                                Some(shown),
                                Some(json!(format!("{other:?}"))),
                            ));
                        }
                    }
                }
            }
            cx.sockets.insert(name.to_string(), sock);
            return Ok(());
        }
        if let Some(name) = ws["read"].as_str() {
            let wait = Duration::from_millis(ws["within_ms"].as_u64().unwrap_or(1000));
            let shown = json!({"websocket": name, "read_within_ms": wait.as_millis() as u64});
            let sock = cx
                .sockets
                .get_mut(name)
                .ok_or_else(|| bad(format!("no open WebSocket {name:?}")))?;
            let text = next_text(sock, wait).await.ok_or_else(|| {
                fail(
                    format!("no text frame within {wait:?}"),
                    Some(shown.clone()),
                    None,
                )
            })?;
            let v: Value = serde_json::from_str(&text).map_err(|_| {
                fail(
                    "the frame is not JSON",
                    Some(shown.clone()),
                    Some(clip(&text)),
                )
            })?;
            let shape = expect.get("json").cloned().unwrap_or(json!("<any>"));
            return self
                .matches(&shape, &v, "$", cx)
                .map_err(|e| fail(e, Some(shown), Some(v)));
        }
        Err(bad("a ws step needs `open` or `read`".into()))
    }

    /// Does `got` have the shape `shape` (see `vectors/README.md`)?
    fn matches(&mut self, shape: &Value, got: &Value, at: &str, cx: &CaseCx) -> Result<(), String> {
        let mismatch = |what: &str| {
            let shown = match clip(&got.to_string()) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Err(format!("{at}: {what}, got {shown}"))
        };
        match shape {
            Value::String(s) => match s.as_str() {
                "<any>" => Ok(()),
                "<string>" if got.is_string() => Ok(()),
                "<array>" if got.is_array() => Ok(()),
                "<hex40>" if is_hex40(got) => Ok(()),
                "<int-ms>"
                    if got
                        .as_u64()
                        .is_some_and(|t| t.abs_diff(now_ms()) <= 600_000) =>
                {
                    Ok(())
                }
                "<token128>" if got.as_str().is_some_and(|t| token_bits(t) >= 128.0) => Ok(()),
                "<string>" | "<array>" | "<hex40>" | "<int-ms>" | "<token128>" => {
                    mismatch(&format!("expected {s}"))
                }
                _ => {
                    let want = self.expand(s, cx)?;
                    if got.as_str() == Some(want.as_str()) {
                        Ok(())
                    } else {
                        mismatch(&format!("expected {want:?}"))
                    }
                }
            },
            Value::Object(m) if m.len() == 1 && m.contains_key("$not") => {
                match self.matches(&m["$not"], got, at, cx) {
                    Ok(()) => mismatch(&format!("expected anything but {}", m["$not"])),
                    Err(_) => Ok(()),
                }
            }
            Value::Object(m) if m.contains_key("$contains") || m.contains_key("$excludes") => {
                let Some(items) = got.as_array() else {
                    return mismatch("expected an array");
                };
                let (inner, want) = match m.get("$contains") {
                    Some(inner) => (inner, true),
                    None => (&m["$excludes"], false),
                };
                let found = items
                    .iter()
                    .enumerate()
                    .any(|(i, it)| self.matches(inner, it, &format!("{at}[{i}]"), cx).is_ok());
                match (found, want) {
                    (true, true) | (false, false) => Ok(()),
                    (false, true) => mismatch(&format!("expected an element like {inner}")),
                    (true, false) => mismatch(&format!("expected no element like {inner}")),
                }
            }
            Value::Object(m) => {
                let Some(g) = got.as_object() else {
                    return mismatch("expected an object");
                };
                for (k, v) in m {
                    match g.get(k) {
                        Some(gv) => self.matches(v, gv, &format!("{at}.{k}"), cx)?,
                        None => return Err(format!("{at}: no field {k:?}")),
                    }
                }
                Ok(())
            }
            Value::Array(a) => {
                let Some(g) = got.as_array() else {
                    return mismatch("expected an array");
                };
                if g.len() != a.len() {
                    return mismatch(&format!("expected {} elements", a.len()));
                }
                for (i, (s, v)) in a.iter().zip(g).enumerate() {
                    self.matches(s, v, &format!("{at}[{i}]"), cx)?;
                }
                Ok(())
            }
            other if other == got => Ok(()),
            other => mismatch(&format!("expected {other}")),
        }
    }
}

fn is_hex40(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 40
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Bits of entropy a token's text can hold at most, from its alphabet (hex: 4 per character,
/// base64 / base64url: 6).
fn token_bits(t: &str) -> f64 {
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        t.len() as f64 * 4.0
    } else if t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'+' | b'/' | b'='))
    {
        t.trim_end_matches('=').len() as f64 * 6.0
    } else {
        t.len() as f64 * 6.5
    }
}

/// This repository's pod (`muttr_pod`), served in-process on a loopback port with a temporary
/// data directory and an embedded seed: what `muttr-conformance vectors` grades when no
/// `--pod` is given. Its public host is its address; loopback is exempt from its rate limits
/// and it federates over plain HTTP (insecure-federation mode), so an `href` identity on
/// itself works. Stops when dropped.
pub struct LocalPod {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _seed: muttr_node::driver::Seed<muttr_node::store::MemStore>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LocalPod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPod").field("url", &self.url).finish()
    }
}

impl Drop for LocalPod {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LocalPod {
    /// Starts the pod (inside a tokio runtime).
    pub async fn start() -> anyhow::Result<LocalPod> {
        use muttr_node::driver::{SeedOptions, spawn_seed};
        use muttr_node::net::{Clock, TokioTransport};
        use muttr_node::store::{MemStore, Quotas};
        use muttr_pod::{AppState, PodConfig, Storage};

        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let config = PodConfig {
            public_host: addr.to_string(),
            insecure_federation: true,
            exempt_loopback: true,
            ..PodConfig::default()
        };
        let seed = spawn_seed(
            TokioTransport,
            SeedOptions::new("127.0.0.1:0".parse()?, 5),
            MemStore::new(Quotas::from_config(&muttr_node::Config::default())),
            Clock::system(),
        )
        .await?;
        let state = AppState::new(
            config,
            Storage::open(dir.path())?,
            Some(seed.handle()),
            Clock::system(),
            None,
        );
        let task = tokio::spawn(async move {
            let _ = muttr_pod::serve(listener, state, std::future::pending()).await;
        });
        Ok(LocalPod {
            url: format!("http://{addr}"),
            _seed: seed,
            _dir: dir,
            task,
        })
    }
}

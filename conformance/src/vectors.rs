//! The vector runner: every case of the JSON files under `vectors/` (see `vectors/README.md`)
//! sent to an [`Implementation`] through the adapter protocol and graded.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::adapter::Implementation;
use crate::generate::FILES as GENERATED;
use crate::report::{CaseResult, Strength, Verdict};

/// The vectors of this build, embedded in the binary: the tool runs from any directory, and
/// carries no path of the tree it was built in.
static EMBEDDED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/../vectors");

/// Where the vector files are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The vectors embedded at build time (the default).
    Embedded,
    /// A directory laid out as `vectors/` (`--vectors DIR`): other or newer vectors.
    Dir(PathBuf),
}

impl Source {
    /// The text of the file at `rel` (a `/`-separated path inside the vectors directory).
    pub fn read(&self, rel: &str) -> anyhow::Result<String> {
        match self {
            Source::Embedded => EMBEDDED
                .get_file(rel)
                .and_then(|f| f.contents_utf8())
                .map(str::to_string)
                .with_context(|| format!("{rel}: not among the embedded vectors")),
            Source::Dir(dir) => {
                let path = dir.join(rel);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))
            }
        }
    }

    /// The file at `rel` parsed as JSON.
    fn json(&self, rel: &str) -> anyhow::Result<Value> {
        serde_json::from_str(&self.read(rel)?).with_context(|| format!("parsing {rel}"))
    }

    /// Checks that a directory source is one (a clear error before any case runs).
    pub fn check(&self) -> anyhow::Result<()> {
        if let Source::Dir(dir) = self {
            let meta = std::fs::metadata(dir)
                .with_context(|| format!("vectors directory {}", dir.display()))?;
            anyhow::ensure!(meta.is_dir(), "{} is not a directory", dir.display());
        }
        Ok(())
    }
}

/// Loads the generated vector files ([`GENERATED`]) and `rest.json` from `source`, then
/// `pgp/vectors.json` with the files it names read in (its keys, messages), as suite `pgp`.
pub fn load(source: &Source) -> anyhow::Result<Vec<(String, Value)>> {
    source.check()?;
    let mut out: Vec<(String, Value)> = GENERATED
        .iter()
        .chain(&["rest.json"])
        .map(|name| {
            let mut doc = source.json(name)?;
            if let Some(keys) = doc.get_mut("keys").and_then(Value::as_object_mut) {
                // `rest.json`: key file names (relative to the vectors root) replaced by
                // their texts.
                for files in keys.values_mut().filter_map(Value::as_object_mut) {
                    for f in files.values_mut() {
                        *f = Value::String(source.read(f.as_str().context("a key file name")?)?);
                    }
                }
            }
            Ok((name.to_string(), doc))
        })
        .collect::<anyhow::Result<_>>()?;
    out.push(("pgp/vectors.json".into(), load_pgp(source)?));
    Ok(out)
}

/// `pgp/vectors.json` with every file reference replaced by the file's text, as one document
/// `{"suite": "pgp", "now_ms", "nonce_window_ms", "cases": [...]}` whose cases carry a `kind`
/// (`pubkeyhash`, `message`, `auth`).
fn load_pgp(source: &Source) -> anyhow::Result<Value> {
    let doc = source.json("pgp/vectors.json")?;
    let read = |rel: &Value| -> anyhow::Result<Value> {
        let rel = rel.as_str().context("a file name")?;
        Ok(Value::String(source.read(&format!("pgp/{rel}"))?))
    };
    let key = |name: &Value, part: &str| -> anyhow::Result<Value> {
        read(&doc["keys"][name.as_str().context("a key name")?][part])
    };
    let mut cases = Vec::new();
    let empty = Vec::new();
    for c in doc["pubkeyhash"].as_array().unwrap_or(&empty) {
        let mut c = c.clone();
        c["kind"] = "pubkeyhash".into();
        c["public_key"] = read(&c["public_key"])?;
        cases.push(c);
    }
    for c in doc["messages"].as_array().unwrap_or(&empty) {
        let mut c = c.clone();
        c["kind"] = "message".into();
        c["message"] = read(&c["message"])?;
        c["recipient_secret"] = key(&c["recipient"], "secret")?;
        c["sender_public"] = key(&c["expected_sender"], "public")?;
        cases.push(c);
    }
    for c in doc["auth"].as_array().unwrap_or(&empty) {
        let mut c = c.clone();
        c["kind"] = "auth".into();
        c["public_key"] = key(&c["key"], "public")?;
        cases.push(c);
    }
    Ok(json!({
        "suite": "pgp", "now_ms": doc["now_ms"], "nonce_window_ms": doc["nonce_window_ms"],
        "cases": cases,
    }))
}

/// Runs every case of every file against `imp`, except the REST cases (suite `rest`), which
/// need a pod: see [`crate::rest`] and [`rest_doc`].
pub fn run(files: &[(String, Value)], imp: &mut dyn Implementation) -> Vec<CaseResult> {
    let mut out = Vec::new();
    for (_, doc) in files {
        let suite = doc["suite"].as_str().unwrap_or_default();
        if suite == "rest" {
            continue;
        }
        let empty = Vec::new();
        for case in doc["cases"].as_array().unwrap_or(&empty) {
            let id = case["id"].as_str().unwrap_or("<no id>");
            if let Some(why) = imp.dead() {
                out.push(CaseResult::with(
                    id.to_string(),
                    case["rule"].as_str().unwrap_or("?"),
                    Verdict::NotJudged,
                    why,
                ));
                continue;
            }
            imp.begin_case(id);
            out.push(run_case(suite, doc, case, imp));
        }
    }
    out
}

/// The loaded `rest.json` among `files` (suite `rest`, key texts read in).
pub fn rest_doc(files: &[(String, Value)]) -> Option<&Value> {
    files.iter().map(|(_, d)| d).find(|d| d["suite"] == "rest")
}

/// The datagram bytes of a wire case: `input` (UTF-8) or `input_hex`, then padded with ASCII
/// spaces up to `pad_to` bytes.
pub fn wire_bytes(case: &Value) -> Result<Vec<u8>, String> {
    let mut bytes = match (case.get("input"), case.get("input_hex")) {
        (Some(Value::String(s)), None) => s.as_bytes().to_vec(),
        (None, Some(Value::String(h))) => hex::decode(h).map_err(|e| format!("input_hex: {e}"))?,
        _ => return Err("a wire case needs exactly one of `input` or `input_hex`".into()),
    };
    if let Some(n) = case.get("pad_to").and_then(Value::as_u64) {
        let n = n as usize;
        if bytes.len() < n {
            bytes.resize(n, b' ');
        }
    }
    Ok(bytes)
}

/// Replaces every `address` string that parses as an IP by its canonical text, so that
/// equivalent spellings compare equal.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), v.as_str().map(str::parse::<IpAddr>)) {
                        ("address", Some(Ok(ip))) => Value::String(ip.to_string()),
                        _ => normalize(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

struct Ctx<'a> {
    id: String,
    rule: String,
    imp: &'a mut dyn Implementation,
}

impl Ctx<'_> {
    fn result(&self, verdict: Verdict, detail: impl Into<String>) -> CaseResult {
        CaseResult::with(self.id.clone(), &self.rule, verdict, detail)
    }

    /// Calls the implementation; `Err` is the finished case (transport failure, unsupported).
    fn call(&mut self, req: Value) -> Result<Value, Box<CaseResult>> {
        match self.imp.call(&req) {
            Ok(a) if a.get("unsupported").is_some() => Err(Box::new(self.result(
                Verdict::NotApplicable,
                format!("the adapter does not support op {}", req["op"]),
            ))),
            Ok(a) => Ok(a),
            Err(e) => Err(Box::new(
                self.result(Verdict::Fail, format!("adapter failure: {e}"))
                    .evidence(Some(req), None, json!("an answer")),
            )),
        }
    }

    /// Calls and expects `{"ok": expected}`.
    fn expect_ok(&mut self, req: Value, expected: &Value, what: &str) -> CaseResult {
        match self.call(req.clone()) {
            Err(done) => *done,
            Ok(a) => match a.get("ok") {
                Some(got) if normalize(got) == normalize(expected) => {
                    self.result(Verdict::Pass, what.to_string())
                }
                _ => self
                    .result(Verdict::Fail, format!("{what}: wrong answer"))
                    .evidence(Some(req), Some(a), json!({"ok": expected})),
            },
        }
    }
}

fn run_case(suite: &str, doc: &Value, case: &Value, imp: &mut dyn Implementation) -> CaseResult {
    let mut cx = Ctx {
        id: case["id"].as_str().unwrap_or("<no id>").to_string(),
        rule: case["rule"].as_str().unwrap_or("?").to_string(),
        imp,
    };
    let desc = case["description"].as_str().unwrap_or_default().to_string();
    match suite {
        "wire" => wire_case(&mut cx, case, &desc),
        "node-id" => cx.expect_ok(
            json!({"op": "node_id", "address": case["address"], "port": case["port"]}),
            &case["node_id"],
            &desc,
        ),
        "distance" => cx.expect_ok(
            json!({"op": "distance", "a": case["a"], "b": case["b"]}),
            &json!({"distance": case["distance"], "bucket": case["bucket"]}),
            &desc,
        ),
        "closest" => cx.expect_ok(
            json!({"op": "closest", "target": case["target"], "ids": case["ids"], "k": case["k"]}),
            &case["closest"],
            &desc,
        ),
        "value-key" => {
            let r = cx.expect_ok(
                json!({"op": "value_of", "armored": case["armored"]}),
                &case["value"],
                &format!("{desc}: value"),
            );
            if r.verdict != Verdict::Pass {
                return r;
            }
            cx.expect_ok(
                json!({"op": "key_of", "value": case["value"]}),
                &case["key"],
                &format!("{desc}: key"),
            )
        }
        "store" => store_case(&mut cx, doc, case, &desc),
        "pgp" => pgp_case(&mut cx, doc, case),
        "pubkeyhash" => cx.expect_ok(
            json!({"op": "pubkeyhash", "text": case["public_key"]}),
            &case["pubkeyhash"],
            &desc,
        ),
        other => cx.result(Verdict::Fail, format!("unknown vector suite {other:?}")),
    }
}

fn wire_case(cx: &mut Ctx<'_>, case: &Value, desc: &str) -> CaseResult {
    let bytes = match wire_bytes(case) {
        Ok(b) => b,
        Err(e) => return cx.result(Verdict::Fail, format!("malformed vector: {e}")),
    };
    let req = json!({"op": "decode", "input_hex": hex::encode(&bytes)});
    let shown = || {
        let mut r = req.clone();
        if bytes.len() > 2048 {
            r["input_hex"] = json!(format!("<{} bytes>", bytes.len()));
        } else if let Ok(text) = std::str::from_utf8(&bytes) {
            // Readable evidence; the adapter was sent the hex.
            r["input_text"] = json!(text);
        }
        r
    };
    let answer = match cx.call(req.clone()) {
        Ok(a) => a,
        Err(done) => return *done,
    };
    if case["verdict"] == "valid" {
        match answer.get("ok") {
            Some(got) if normalize(got) == normalize(&case["message"]) => {
                cx.result(Verdict::Pass, format!("{desc}: decoded"))
            }
            Some(_) => cx
                .result(Verdict::Fail, format!("{desc}: decoded to something else"))
                .evidence(Some(shown()), Some(answer), json!({"ok": case["message"]})),
            None => cx
                .result(
                    Verdict::Fail,
                    format!("{desc}: a valid datagram was refused"),
                )
                .evidence(Some(shown()), Some(answer), json!({"ok": case["message"]})),
        }
    } else {
        let Some(e) = answer.get("error") else {
            return cx
                .result(
                    Verdict::Fail,
                    format!("{desc}: an invalid datagram was accepted"),
                )
                .evidence(
                    Some(shown()),
                    Some(answer),
                    json!({"error": {"rule": cx.rule}}),
                );
        };
        let mut allowed = vec![cx.rule.clone()];
        if let Some(alt) = case.get("alt_rules").and_then(Value::as_array) {
            allowed.extend(alt.iter().filter_map(Value::as_str).map(String::from));
        }
        match e.get("rule").and_then(Value::as_str) {
            None => cx.result(Verdict::Pass, format!("{desc}: refused (no rule reported)")),
            Some(r) if allowed.iter().any(|a| a == r) => {
                cx.result(Verdict::Pass, format!("{desc}: refused under {r}"))
            }
            Some(r) => cx
                .result(
                    Verdict::Fail,
                    format!("{desc}: refused, but under {r}, not {}", allowed.join("/")),
                )
                .evidence(
                    Some(shown()),
                    Some(answer.clone()),
                    json!({"error": {"rule": allowed}}),
                ),
        }
    }
}

fn store_case(cx: &mut Ctx<'_>, doc: &Value, case: &Value, desc: &str) -> CaseResult {
    let mut req =
        json!({"op": "check_store", "now_ms": doc["now_ms"], "expiry_ms": doc["expiry_ms"]});
    if let Value::Object(p) = &case["params"] {
        for (k, v) in p {
            req[k] = v.clone();
        }
    }
    let strength = match case["strength"].as_str() {
        Some("SHOULD") => Strength::Should,
        _ => Strength::Must,
    };
    let want_accept = case["verdict"] == "accept";
    let answer = match cx.call(req.clone()) {
        Ok(a) => a,
        Err(done) => return *done,
    };
    let got = answer
        .get("ok")
        .and_then(|o| o.get("accept"))
        .and_then(Value::as_bool);
    match got {
        Some(g) if g == want_accept => {
            cx.result(Verdict::Pass, format!("{desc}: {}", case["verdict"]))
        }
        Some(_) => {
            let verdict = if want_accept {
                Verdict::Fail
            } else {
                strength.violated()
            };
            let mut shown = req.clone();
            if let Some(v) = shown["value"].as_str()
                && v.len() > 400
            {
                shown["value"] = json!(format!("{}… ({} chars)", &v[..400], v.len()));
            }
            cx.result(verdict, format!("{desc}: expected {}", case["verdict"]))
                .evidence(
                    Some(shown),
                    Some(answer),
                    json!({"ok": {"accept": want_accept}}),
                )
        }
        None => cx
            .result(Verdict::Fail, format!("{desc}: no verdict in the answer"))
            .evidence(None, Some(answer), json!({"ok": {"accept": want_accept}})),
    }
}

/// An OpenPGP case (`vectors/pgp/README.md`). P-G3 only requires that nothing but a good
/// signature by the expected sender is reported `good`, and nothing but a valid, fresh auth text
/// `ok`: a different refusal verdict than the vector's passes, with a note.
fn pgp_case(cx: &mut Ctx<'_>, doc: &Value, case: &Value) -> CaseResult {
    let (req, positive) = match case["kind"].as_str() {
        Some("pubkeyhash") => {
            return cx.expect_ok(
                json!({"op": "pubkeyhash", "text": case["public_key"]}),
                &case["pubkeyhash"],
                "pubkeyhash = sha1 of the exact key text",
            );
        }
        Some("message") => (
            json!({"op": "pgp_message", "message": case["message"],
                   "recipient_secret": case["recipient_secret"],
                   "sender_public": case["sender_public"], "now_ms": doc["now_ms"]}),
            "good",
        ),
        Some("auth") => (
            json!({"op": "pgp_auth", "text": case["text"], "public_key": case["public_key"],
                   "now_ms": doc["now_ms"], "window_ms": doc["nonce_window_ms"]}),
            "ok",
        ),
        _ => return cx.result(Verdict::Fail, "malformed pgp vector: unknown kind"),
    };
    let answer = match cx.call(req) {
        Ok(a) => a,
        Err(done) => return *done,
    };
    let want = case["verdict"].as_str().unwrap_or_default();
    let got = answer["ok"]["verdict"].as_str().unwrap_or_default();
    let evidence = |r: CaseResult| {
        r.evidence(
            Some(json!({"case": case["id"]})),
            Some(answer.clone()),
            json!({"verdict": want}),
        )
    };
    if got == want {
        if want == positive
            && let Some(p) = case["plaintext"].as_str()
            && answer["ok"]["plaintext"].as_str().is_some_and(|g| g != p)
        {
            return evidence(cx.result(Verdict::Fail, "good verdict, wrong plaintext"));
        }
        return cx.result(Verdict::Pass, format!("verdict {want}"));
    }
    if want != positive && got != positive && !got.is_empty() {
        return cx.result(
            Verdict::Pass,
            format!("refused as {got} (the vector says {want}; only `{positive}` must be exact)"),
        );
    }
    evidence(cx.result(Verdict::Fail, format!("verdict {got:?}, expected {want}")))
}

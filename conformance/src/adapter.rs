//! The adapter protocol: how the vector runner talks to an implementation.
//!
//! One JSON object per line on the adapter's stdin, one JSON object per line on its stdout, in
//! order (modelled on Sequoia's `sop` interface: no network code needed to be graded). Every
//! request has an `op`; every answer is `{"ok": …}`, `{"error": {"rule": "P-W4", "message":
//! "…"}}` (the input was refused; `rule` optional), or `{"unsupported": true}` (the case is then
//! `not-applicable`).
//!
//! | op | request fields | `ok` answer |
//! |---|---|---|
//! | `hello` | — | `{"implementation": name, "ops": [..]}` |
//! | `decode` | `input_hex` (the datagram's bytes) | `{"type", "id", "sender": {"address","port","nodeID"}, "params": {..}}` |
//! | `node_id` | `address` (text), `port` | node ID hex |
//! | `distance` | `a`, `b` (hex ids) | `{"distance": hex, "bucket": n or null}` |
//! | `closest` | `target`, `ids` [hex], `k` | [hex], closest first |
//! | `value_of` | `armored` (text) | value hex (P-V1) |
//! | `key_of` | `value` (hex text) | key hex (P-V2) |
//! | `check_store` | `key`, `value`, optional `timestamp`, `publisher`; `now_ms`, `expiry_ms` | `{"accept": bool, "rule": refusal rule or absent}` |
//! | `pubkeyhash` | `text` (armored key) | hex (P-G1) |
//! | `pgp_message` | `message`, `recipient_secret`, `sender_public` (armored texts), `now_ms` | `{"verdict": good/unsigned/bad-signature/wrong-signer/not-for-me/error, "plaintext"?}` (P-G2, P-G3) |
//! | `pgp_auth` | `text` (cleartext-signed), `public_key`, `now_ms`, `window_ms` | `{"verdict": ok/wrong-key/bad-signature/stale-nonce/error}` (P-A1, P-A2) |
//!
//! [`InProcess`] answers these from this repository's `muttr-node`; `muttr-conformance adapter`
//! serves it over stdin/stdout, and [`Subprocess`] drives any adapter command.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use muttr_node::crypto::{self, auth};
use muttr_node::id::{self, NodeId};
use muttr_node::value;
use muttr_node::wire::{self, Body, Contact, FindValueResult};
use serde_json::{Value, json};

/// Something that answers adapter requests.
pub trait Implementation {
    /// Answers one request (`{"op": …}`) with `{"ok"|"error"|"unsupported": …}`. A transport
    /// failure (the adapter died, wrote non-JSON) is an `Err` with a message.
    fn call(&mut self, request: &Value) -> Result<Value, String>;

    /// The case about to be run (named in a failure report).
    fn begin_case(&mut self, _id: &str) {}

    /// Why the implementation cannot be asked anything more (an adapter that hung, exited or
    /// wrote garbage, named with the case where it stopped); `None` while it answers.
    fn dead(&self) -> Option<&str> {
        None
    }
}

/// This repository's implementation, called in-process.
#[derive(Debug, Default, Clone, Copy)]
pub struct InProcess;

/// The ops [`InProcess`] answers.
pub const OPS: [&str; 11] = [
    "hello",
    "decode",
    "node_id",
    "distance",
    "closest",
    "value_of",
    "key_of",
    "check_store",
    "pubkeyhash",
    "pgp_message",
    "pgp_auth",
];

fn err(rule: &str, message: impl std::fmt::Display) -> Value {
    json!({"error": {"rule": rule, "message": message.to_string()}})
}

fn bad_request(message: impl std::fmt::Display) -> Value {
    json!({"error": {"message": format!("bad request: {message}")}})
}

fn str_field<'a>(req: &'a Value, name: &str) -> Result<&'a str, Value> {
    req.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request(format!("`{name}` must be a string")))
}

fn id_field(req: &Value, name: &str) -> Result<NodeId, Value> {
    NodeId::from_hex(str_field(req, name)?).map_err(|e| bad_request(format!("`{name}`: {e}")))
}

/// The decoder's view of a message, in the adapter protocol's shape.
pub fn summary(m: &wire::Message) -> Value {
    let c = |c: &Contact| json!({"address": c.address.to_string(), "port": c.port, "nodeID": c.node_id.to_hex()});
    let cs = |list: &[Contact]| Value::Array(list.iter().map(c).collect());
    let params = match &m.body {
        Body::Ping | Body::Pong => json!({}),
        Body::Store {
            key,
            value,
            timestamp,
            publisher,
        } => json!({
            "key": key.to_hex(), "value": value, "timestamp": timestamp,
            "publisher": publisher.map(|p| p.to_hex()),
        }),
        Body::StoreReply { success } => json!({"success": success}),
        Body::FindNode { key } | Body::FindValue { key } => json!({"key": key.to_hex()}),
        Body::FindNodeReply { contacts }
        | Body::FindValueReply(FindValueResult::Contacts(contacts)) => {
            json!({"contacts": cs(contacts)})
        }
        Body::FindValueReply(FindValueResult::Value(v)) => json!({"value": v}),
    };
    json!({
        "type": m.message_type().as_str(), "id": m.rpc_id,
        "sender": c(&m.sender), "params": params,
    })
}

impl InProcess {
    fn answer(&self, req: &Value) -> Result<Value, Value> {
        let op = str_field(req, "op")?;
        Ok(match op {
            "hello" => json!({"ok": {"implementation": "muttr-rs (in-process)", "ops": OPS}}),
            "decode" => {
                let bytes = hex::decode(str_field(req, "input_hex")?).map_err(bad_request)?;
                match wire::decode(&bytes) {
                    Ok(m) => json!({"ok": summary(&m)}),
                    Err(e) => err(e.rule(), e),
                }
            }
            "node_id" => {
                let address = str_field(req, "address")?;
                let port = req
                    .get("port")
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| bad_request("`port` must be 0-65535"))?;
                json!({"ok": NodeId::from_address_text(address, port).to_hex()})
            }
            "distance" => {
                let (a, b) = (id_field(req, "a")?, id_field(req, "b")?);
                json!({"ok": {"distance": a.distance(&b).to_hex(), "bucket": a.bucket_index(&b)}})
            }
            "closest" => {
                let target = id_field(req, "target")?;
                let ids = req
                    .get("ids")
                    .and_then(Value::as_array)
                    .ok_or_else(|| bad_request("`ids` must be an array"))?
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .and_then(|s| NodeId::from_hex(s).ok())
                            .ok_or_else(|| bad_request("`ids` must hold hex ids"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let k = req
                    .get("k")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad_request("`k` must be an integer"))?;
                let out: Vec<String> = id::closest_k(&target, &ids, k as usize)
                    .iter()
                    .map(NodeId::to_hex)
                    .collect();
                json!({"ok": out})
            }
            "value_of" => json!({"ok": value::to_hex(str_field(req, "armored")?)}),
            "key_of" => json!({"ok": value::key_of(str_field(req, "value")?).to_hex()}),
            "check_store" => {
                let key = id_field(req, "key")?;
                let v = str_field(req, "value")?;
                let timestamp = req.get("timestamp").and_then(Value::as_u64);
                let publisher = match req.get("publisher") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(id_field(req, "publisher")?),
                };
                let num = |n: &str| {
                    req.get(n)
                        .and_then(Value::as_u64)
                        .ok_or_else(|| bad_request(format!("`{n}` must be an integer")))
                };
                let (now, expiry) = (num("now_ms")?, num("expiry_ms")?);
                match value::check_store(&key, v, timestamp, publisher, now, expiry) {
                    Ok(_) => json!({"ok": {"accept": true}}),
                    Err(r) => {
                        json!({"ok": {"accept": false, "rule": r.rule(), "message": r.to_string()}})
                    }
                }
            }
            "pubkeyhash" => json!({"ok": crypto::pubkeyhash(str_field(req, "text")?)}),
            "pgp_message" => json!({"ok": pgp_message(req)?}),
            "pgp_auth" => json!({"ok": pgp_auth(req)?}),
            _ => json!({"unsupported": true}),
        })
    }
}

fn at(req: &Value, name: &str) -> Result<(u64, SystemTime), Value> {
    let ms = req
        .get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| bad_request(format!("`{name}` must be an integer")))?;
    Ok((ms, UNIX_EPOCH + Duration::from_millis(ms)))
}

/// Decrypts and verifies a message; the verdict names follow `vectors/pgp/README.md`.
fn pgp_message(req: &Value) -> Result<Value, Value> {
    let me = crypto::Identity::from_armored(str_field(req, "recipient_secret")?.as_bytes(), None)
        .map_err(|e| bad_request(format!("recipient_secret: {e}")))?;
    let sender = crypto::PublicKey::from_armored(str_field(req, "sender_public")?)
        .map_err(|e| bad_request(format!("sender_public: {e}")))?;
    let (_, now) = at(req, "now_ms")?;
    let msg = str_field(req, "message")?;
    Ok(
        match crypto::decrypt_and_verify(msg.as_bytes(), &me, Some(&sender), now) {
            Ok(d) => {
                let verdict = match d.verdict {
                    crypto::Verdict::Good { .. } => "good",
                    crypto::Verdict::Unsigned => "unsigned",
                    crypto::Verdict::BadSignature => "bad-signature",
                    crypto::Verdict::WrongSigner { .. } | crypto::Verdict::UnknownSigner { .. } => {
                        "wrong-signer"
                    }
                };
                json!({"verdict": verdict, "plaintext": String::from_utf8_lossy(&d.plaintext)})
            }
            Err(crypto::CryptoError::NotForMe) => json!({"verdict": "not-for-me"}),
            Err(e) => json!({"verdict": "error", "message": e.to_string()}),
        },
    )
}

/// Verifies a signed auth text, then its nonce window.
fn pgp_auth(req: &Value) -> Result<Value, Value> {
    let key = crypto::PublicKey::from_armored(str_field(req, "public_key")?)
        .map_err(|e| bad_request(format!("public_key: {e}")))?;
    let (now_ms, now) = at(req, "now_ms")?;
    let (window, _) = at(req, "window_ms")?;
    Ok(
        match auth::verify_auth(str_field(req, "text")?, &key, now) {
            Ok(a) => match auth::check_nonce(a.nonce, now_ms, window) {
                Ok(()) => json!({"verdict": "ok"}),
                Err(_) => json!({"verdict": "stale-nonce"}),
            },
            Err(auth::AuthError::WrongKey) => json!({"verdict": "wrong-key"}),
            Err(auth::AuthError::BadSignature) => json!({"verdict": "bad-signature"}),
            Err(e) => json!({"verdict": "error", "message": e.to_string()}),
        },
    )
}

impl Implementation for InProcess {
    fn call(&mut self, request: &Value) -> Result<Value, String> {
        Ok(self.answer(request).unwrap_or_else(|e| e))
    }
}

/// Serves the adapter protocol for [`InProcess`] on `input`/`output` until end of input. A line
/// that is not JSON gets `{"error": {"message": …}}`; the loop never stops on bad input.
pub fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let mut imp = InProcess;
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(req) => imp.call(&req).unwrap_or_else(bad_request),
            Err(e) => bad_request(format!("not JSON: {e}")),
        };
        writeln!(output, "{answer}")?;
        output.flush()?;
    }
    Ok(())
}

/// An adapter command, driven over its stdin/stdout.
///
/// It cannot hang the run: every answer must come within the timeout (`--impl-timeout`,
/// [`DEFAULT_TIMEOUT`]). An adapter that misses it, exits, or writes a line that is not JSON is
/// killed, that case fails with the reason and the last lines the adapter wrote on stderr, and
/// every later call fails at once naming the case where it stopped — so a dead adapter costs
/// one timeout, not one per case. Its stderr is passed through to ours as it comes.
pub struct Subprocess {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    timeout: Duration,
    case: String,
    dead: Option<String>,
}

/// How long an adapter may take to answer one request by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lines of the adapter's stderr kept for failure reports.
const STDERR_TAIL: usize = 20;

impl std::fmt::Debug for Subprocess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subprocess")
            .field("pid", &self.child.id())
            .field("timeout", &self.timeout)
            .field("dead", &self.dead)
            .finish()
    }
}

impl Subprocess {
    /// Starts `command` through the shell; each answer must come within `timeout`.
    pub fn spawn(command: &str, timeout: Duration) -> std::io::Result<Subprocess> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| std::io::Error::other("no stderr"))?;
        // A thread per pipe: reading blocks, and the run must not.
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr_tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                if t.len() == STDERR_TAIL {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        Ok(Subprocess {
            child,
            stdin,
            lines,
            stderr_tail,
            timeout,
            case: String::new(),
            dead: None,
        })
    }

    /// The adapter's last stderr lines, for a failure message ("" when it wrote none).
    fn tail(&self) -> String {
        // Give the stderr thread a moment to take in what a dying adapter just wrote.
        std::thread::sleep(Duration::from_millis(50));
        let t = self.stderr_tail.lock().unwrap_or_else(|p| p.into_inner());
        if t.is_empty() {
            String::new()
        } else {
            let lines: Vec<&str> = t.iter().map(String::as_str).collect();
            format!("; its stderr ended with:\n{}", lines.join("\n"))
        }
    }

    /// Kills the adapter; every later call fails at once with `reason`.
    fn die(&mut self, reason: String) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let message = format!("{reason}{}", self.tail());
        self.dead = Some(format!(
            "not run: the adapter stopped at case {}: {reason}",
            self.case
        ));
        message
    }
}

impl Implementation for Subprocess {
    fn begin_case(&mut self, id: &str) {
        self.begin(id);
    }

    fn dead(&self) -> Option<&str> {
        self.dead.as_deref()
    }

    fn call(&mut self, request: &Value) -> Result<Value, String> {
        if let Some(why) = &self.dead {
            return Err(why.clone());
        }
        if let Err(e) = writeln!(self.stdin, "{request}").and_then(|()| self.stdin.flush()) {
            return Err(self.die(format!("writing to the adapter failed: {e}")));
        }
        match self.lines.recv_timeout(self.timeout) {
            Ok(line) => serde_json::from_str(&line)
                .map_err(|e| self.die(format!("the adapter answered non-JSON ({e}): {line:?}"))),
            Err(RecvTimeoutError::Timeout) => Err(self.die(format!(
                "no answer within {:?} (--impl-timeout)",
                self.timeout
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self
                    .child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string());
                Err(self.die(format!("the adapter exited ({status})")))
            }
        }
    }
}

impl Subprocess {
    fn begin(&mut self, id: &str) {
        self.case = id.to_string();
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses an IP text for comparing addresses by value (`::1` = `0:0:0:0:0:0:0:1`).
pub fn same_address(a: &Value, b: &Value) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) => match (x.parse::<IpAddr>(), y.parse::<IpAddr>()) {
            (Ok(p), Ok(q)) => p == q,
            _ => x == y,
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_answers_each_line_and_survives_garbage() {
        let input = b"{\"op\":\"node_id\",\"address\":\"127.0.0.1\",\"port\":4000}\nnot json\n{\"op\":\"nope\"}\n{\"op\":\"decode\",\"input_hex\":\"5b5d\"}\n";
        let mut out = Vec::new();
        serve(&input[..], &mut out).unwrap();
        let lines: Vec<Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["ok"], "caf8d9b85e7fa9a124cb44cb28ad5289faa44668");
        assert!(
            lines[1]["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not JSON")
        );
        assert_eq!(lines[2]["unsupported"], true);
        assert_eq!(lines[3]["error"]["rule"], "P-W1");
    }

    #[test]
    fn addresses_compare_by_value() {
        assert!(same_address(&json!("::1"), &json!("0:0:0:0:0:0:0:1")));
        assert!(!same_address(&json!("::1"), &json!("::2")));
    }
}

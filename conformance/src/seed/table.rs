//! The seed suite's table-driven cases: the rows of `cases/seed.json` that carry a `send` (the
//! datagram) and an `expect`ation, and the small interpreter that turns a row into bytes.
//!
//! A row's `send` is one of
//! - `{"raw": TEXT}` or `{"hex": BYTES}`: the datagram exactly;
//! - `{"type": T, "params": {…}, "append": TEXT, "repeat": N}`: a message of type `T` whose
//!   params are the sending peer's own (`address`, `port`, `nodeID`) and a fresh `rpcID`, then
//!   the type's defaults (FIND_NODE/FIND_VALUE: a `key`; STORE: a valid `value`, its `key`, the
//!   clock as `timestamp`, a `publisher`), then the row's `params` (`null` removes a field).
//!   The compact JSON text is repeated `repeat` times and followed by `append`.
//!
//! Strings in `params` may hold `${…}` expressions; a string that is one expression and
//! yields a number (the clock) becomes that number:
//!
//! | expression | value |
//! |---|---|
//! | `${key}` | a key of this run (40 hex) |
//! | `${nodeID}` | the sending peer's node ID |
//! | `${publisher}` | the publisher of valid STOREs |
//! | `${rpc}` | a fresh rpcID |
//! | `${value}` | a valid value: hex of an armored OpenPGP message of 64 encrypted bytes, fresh per row |
//! | `${value-key}` | SHA-1 of the row's final `value` (a STORE's default `key`) |
//! | `${armor-key}` | SHA-1 of the armored text that the final `value` is the hex of (libmuttr's key) |
//! | `${now}`, `${now+MS}`, `${now-MS}` | the clock in ms, as a number |
//! | `${sha1:TEXT}`, `${hex:TEXT}` | SHA-1 of TEXT, hex of TEXT |
//! | `${pgp:PARTS}` | hex of an armored message of `+`-joined packets: `encryptedN` (an encrypted message of N bytes), `pkesk`, `seipN`, `literal`, `garbage` |
//! | `${pgp-binary:PARTS}`, `${pgp-public-key:PARTS}`, `${pgp-no-end:PARTS}` | the same packets: not armored, armored as a PUBLIC KEY block, armored without the END line |
//!
//! A variable takes a modifier: `${key:upper}` (uppercase), `${key:39}` (the first 39
//! characters). The `expect`ations are `no-reply` (dropped, P-W6), `accepted` (a STORE answered
//! `success: true`, then found by FIND_VALUE: the case `…-found` after it) and `refused`
//! (`success: false`, then nothing stored: `…-not-stored`).

use rand::Rng;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::catalogue::Entry;
use crate::pgp::{self, hex_of, sha1_hex};

/// A row's `send`, as written in the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Send {
    raw: Option<String>,
    hex: Option<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    params: Map<String, Value>,
    #[serde(default)]
    append: String,
    repeat: Option<usize>,
}

/// What is the same for every row of a run.
pub(super) struct Run<'a, R: Rng> {
    /// A key of this run.
    pub key: &'a str,
    /// The publisher of valid STOREs.
    pub publisher: &'a str,
    /// The clock, in ms.
    pub now_ms: u64,
    /// The run's generator of values.
    pub rng: &'a mut R,
    /// A fresh rpcID each call.
    pub rpc: &'a dyn Fn() -> String,
}

/// One row made concrete for one sending peer.
#[derive(Debug, Clone)]
pub(super) struct Made {
    /// The datagram.
    pub bytes: Vec<u8>,
    /// The message, when the row builds one (for the report, and for STORE rows their
    /// `key` and `value`).
    pub message: Option<Value>,
}

/// The rows of `entries` whose id starts with `prefix` and whose `expect` is `expect`.
pub(super) fn rows<'e>(entries: &'e [Entry], prefix: &str, expect: &str) -> Vec<&'e Entry> {
    entries
        .iter()
        .filter(|e| e.id.starts_with(prefix) && e.expect.as_deref() == Some(expect))
        .collect()
}

/// The datagram of `row` sent by a peer claiming `me` (`address`, `port`, `nodeID`).
pub(super) fn make<R: Rng>(
    row: &Entry,
    me: &Map<String, Value>,
    run: &mut Run<'_, R>,
) -> Result<Made, String> {
    let send: Send = serde_json::from_value(row.send.clone().unwrap_or(Value::Null))
        .map_err(|e| format!("{}: `send`: {e}", row.id))?;
    if let Some(raw) = send.raw {
        return Ok(Made {
            bytes: raw.into_bytes(),
            message: None,
        });
    }
    if let Some(h) = send.hex {
        let bytes = hex::decode(&h).map_err(|e| format!("{}: `hex`: {e}", row.id))?;
        return Ok(Made {
            bytes,
            message: None,
        });
    }
    let ty = send
        .ty
        .ok_or_else(|| format!("{}: `send` needs `raw`, `hex` or `type`", row.id))?;
    let value = value_of(&mut *run.rng, "encrypted64").map_err(|e| format!("{}: {e}", row.id))?;
    let mut vars = Vars {
        key: run.key.to_string(),
        node_id: me
            .get("nodeID")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        publisher: run.publisher.to_string(),
        value,
        value_key: String::new(),
        armor_key: String::new(),
        now_ms: run.now_ms,
    };
    let mut params = me.clone();
    params.insert("rpcID".into(), (run.rpc)().into());
    match ty.as_str() {
        "FIND_NODE" | "FIND_VALUE" => {
            params.insert("key".into(), vars.key.clone().into());
        }
        "STORE" => {
            params.insert("value".into(), vars.value.clone().into());
            params.insert("timestamp".into(), run.now_ms.into());
            params.insert("publisher".into(), vars.publisher.clone().into());
        }
        _ => {}
    }
    // Every field but `key` first: a STORE's key depends on its final value.
    let mut key_patch = None;
    for (k, v) in &send.params {
        if k == "key" {
            key_patch = Some(v.clone());
            continue;
        }
        patch(&mut params, k, v, &vars, run).map_err(|e| format!("{}: {e}", row.id))?;
    }
    if ty == "STORE" {
        let v = params.get("value").and_then(Value::as_str).unwrap_or("");
        vars.value_key = sha1_hex(v);
        let armored = hex::decode(v).ok().and_then(|b| String::from_utf8(b).ok());
        vars.armor_key = sha1_hex(armored.as_deref().unwrap_or(""));
        params.insert("key".into(), vars.value_key.clone().into());
    }
    if let Some(v) = key_patch {
        patch(&mut params, "key", &v, &vars, run).map_err(|e| format!("{}: {e}", row.id))?;
    }
    let message = json!({"type": ty, "params": params});
    let text = crate::canon::compact(&message).repeat(send.repeat.unwrap_or(1)) + &send.append;
    Ok(Made {
        bytes: text.into_bytes(),
        message: Some(message),
    })
}

/// The variables of one row.
struct Vars {
    key: String,
    node_id: String,
    publisher: String,
    value: String,
    value_key: String,
    armor_key: String,
    now_ms: u64,
}

/// Sets `params[k]` to `v` with its expressions expanded, or removes it when `v` is null.
fn patch<R: Rng>(
    params: &mut Map<String, Value>,
    k: &str,
    v: &Value,
    vars: &Vars,
    run: &mut Run<'_, R>,
) -> Result<(), String> {
    match v {
        Value::Null => {
            params.remove(k);
        }
        Value::String(s) => {
            params.insert(k.into(), expand(s, vars, run)?);
        }
        other => {
            params.insert(k.into(), other.clone());
        }
    }
    Ok(())
}

/// `text` with its `${…}` expressions replaced; a text that is one expression yielding a
/// number is that number.
fn expand<R: Rng>(text: &str, vars: &Vars, run: &mut Run<'_, R>) -> Result<Value, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let end = rest[at..]
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        let expr = &rest[at + 2..at + end];
        let v = eval(expr, vars, run)?;
        if out.is_empty() && at + end + 1 == rest.len() && rest.len() == text.len() {
            return Ok(v);
        }
        match v {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[at + end + 1..];
    }
    out.push_str(rest);
    Ok(Value::String(out))
}

fn eval<R: Rng>(expr: &str, vars: &Vars, run: &mut Run<'_, R>) -> Result<Value, String> {
    let (name, arg) = match expr.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (expr, None),
    };
    if let Some(offset) = name.strip_prefix("now") {
        let ms = match offset.chars().next() {
            None => Some(vars.now_ms),
            Some('+') => offset[1..].parse::<u64>().ok().map(|d| vars.now_ms + d),
            Some('-') => offset[1..]
                .parse::<u64>()
                .ok()
                .map(|d| vars.now_ms.saturating_sub(d)),
            Some(_) => None,
        };
        return ms
            .map(Value::from)
            .ok_or_else(|| format!("bad clock expression `${{{expr}}}`"));
    }
    let text = arg.ok_or_else(|| format!("`${{{name}:…}}` needs TEXT"));
    let var = match name {
        "key" => vars.key.clone(),
        "nodeID" => vars.node_id.clone(),
        "publisher" => vars.publisher.clone(),
        "rpc" => (run.rpc)(),
        "value" => vars.value.clone(),
        "value-key" => vars.value_key.clone(),
        "armor-key" => vars.armor_key.clone(),
        "sha1" => return Ok(sha1_hex(text?).into()),
        "hex" => return Ok(hex_of(text?).into()),
        "pgp" | "pgp-binary" | "pgp-public-key" | "pgp-no-end" => {
            let parts = text?;
            return Ok(match name {
                "pgp" => value_of(&mut *run.rng, parts)?,
                _ => {
                    let binary = packets(&mut *run.rng, parts)?;
                    match name {
                        "pgp-binary" => hex::encode(binary),
                        "pgp-public-key" => hex_of(&pgp::armor_as(
                            &binary,
                            sequoia_openpgp::armor::Kind::PublicKey,
                        )),
                        _ => {
                            let full = pgp::armor_message(&binary);
                            hex_of(full.split("-----END").next().unwrap_or_default())
                        }
                    }
                }
            }
            .into());
        }
        other => return Err(format!("unknown expression `${{{other}}}`")),
    };
    Ok(match arg {
        None => var.into(),
        Some("upper") => var.to_uppercase().into(),
        Some(n) => match n.parse::<usize>() {
            Ok(n) => var.chars().take(n).collect::<String>().into(),
            Err(_) => return Err(format!("unknown modifier in `${{{expr}}}`")),
        },
    })
}

/// Hex of the armored message of `parts`.
fn value_of<R: Rng>(rng: &mut R, parts: &str) -> Result<String, String> {
    Ok(hex_of(&pgp::armor_message(&packets(rng, parts)?)))
}

/// The binary OpenPGP packets named by `parts` (`encrypted64+literal`).
fn packets<R: Rng>(rng: &mut R, parts: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for part in parts.split('+') {
        let digits = part.trim_start_matches(|c: char| c.is_ascii_alphabetic());
        let name = &part[..part.len() - digits.len()];
        let n = || {
            digits
                .parse::<usize>()
                .map_err(|_| format!("`{part}` needs a length"))
        };
        match name {
            "encrypted" => out.extend(pgp::encrypted(rng, n()?)),
            "seip" => out.extend(pgp::seip(rng, n()?)),
            "pkesk" => out.extend(pgp::pkesk(rng)),
            "literal" => out.extend(pgp::literal(b"a literal packet")),
            "garbage" => out.extend(b"\x00\x01\x02 not packets"),
            _ => return Err(format!("unknown packet `{part}`")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{self, Live};
    use rand::SeedableRng;

    fn me() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("address".into(), "127.0.0.1".into());
        m.insert("port".into(), 4000.into());
        m.insert("nodeID".into(), sha1_hex("127.0.0.1:4000").into());
        m
    }

    fn make_all(prefix: &str, expect: &str) -> Vec<(String, Made)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let rpc = || "rpc".to_string();
        let mut run = Run {
            key: &sha1_hex("k"),
            publisher: &sha1_hex("127.0.0.1:1"),
            now_ms: 10_000_000,
            rng: &mut rng,
            rpc: &rpc,
        };
        rows(catalogue::entries(Live::Seed), prefix, expect)
            .into_iter()
            .map(|r| (r.id.clone(), make(r, &me(), &mut run).unwrap()))
            .collect()
    }

    #[test]
    fn every_row_of_the_seed_table_makes_its_datagram() {
        let drops = make_all("seed.drop.", "no-reply");
        let accepted = make_all("seed.store.", "accepted");
        let refused = make_all("seed.store.", "refused");
        assert!(drops.len() >= 60, "{}", drops.len());
        assert_eq!(accepted.len(), 6);
        assert!(refused.len() >= 19, "{}", refused.len());
        let get = |list: &[(String, Made)], id: &str| -> Value {
            list.iter()
                .find(|(i, _)| i == id)
                .unwrap()
                .1
                .message
                .clone()
                .unwrap()
        };
        // Defaults, removals and expressions.
        let m = get(&drops, "seed.drop.ping-node-id-uppercase");
        assert_eq!(
            m["params"]["nodeID"],
            json!(sha1_hex("127.0.0.1:4000").to_uppercase())
        );
        assert_eq!(m["params"]["rpcID"], json!("rpc"));
        let m = get(&drops, "seed.drop.find-node-key-short");
        assert_eq!(m["params"]["key"], json!(&sha1_hex("k")[..39]));
        let m = get(&drops, "seed.drop.store-missing-key");
        assert!(m["params"].get("key").is_none() && m["params"]["value"].is_string());
        let m = get(&drops, "seed.drop.store-key-uppercase");
        let v = m["params"]["value"].as_str().unwrap();
        assert_eq!(m["params"]["key"], json!(sha1_hex(v).to_uppercase()));
        let m = get(&accepted, "seed.store.timestamp-1-hour-old-accepted");
        assert_eq!(m["params"]["timestamp"], json!(6_400_000));
        let m = get(&accepted, "seed.store.valid-accepted");
        let v = m["params"]["value"].as_str().unwrap();
        assert_eq!(m["params"]["key"], json!(sha1_hex(v)));
        let armored = String::from_utf8(hex::decode(v).unwrap()).unwrap();
        assert!(armored.starts_with("-----BEGIN PGP MESSAGE-----"));
        let m = get(&refused, "seed.store.libmuttr-key-refused");
        let v = m["params"]["value"].as_str().unwrap();
        let armored = String::from_utf8(hex::decode(v).unwrap()).unwrap();
        assert_eq!(m["params"]["key"], json!(sha1_hex(&armored)));
        let m = get(&refused, "seed.store.value-odd-length-refused");
        let v = m["params"]["value"].as_str().unwrap();
        assert_eq!(v.len() % 2, 1);
        assert_eq!(m["params"]["key"], json!(sha1_hex(v)));
        let (_, two) = drops
            .iter()
            .find(|(i, _)| i == "seed.drop.two-messages")
            .unwrap();
        let one = crate::canon::compact(two.message.as_ref().unwrap());
        assert_eq!(two.bytes, format!("{one}{one}").into_bytes());
        let (_, raw) = drops
            .iter()
            .find(|(i, _)| i == "seed.drop.not-utf8")
            .unwrap();
        assert_eq!(raw.bytes, b"\xff\xfe{}");
    }

    #[test]
    fn a_bad_row_is_an_error_naming_it() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let rpc = || "rpc".to_string();
        let mut run = Run {
            key: "k",
            publisher: "p",
            now_ms: 0,
            rng: &mut rng,
            rpc: &rpc,
        };
        for (send, want) in [
            (
                json!({"type": "PING", "params": {"x": "${nope}"}}),
                "unknown expression",
            ),
            (
                json!({"type": "PING", "params": {"x": "${key"}}),
                "unclosed",
            ),
            (
                json!({"type": "PING", "params": {"x": "${key:lower}"}}),
                "modifier",
            ),
            (
                json!({"type": "STORE", "params": {"value": "${pgp:bogus}"}}),
                "unknown packet",
            ),
            (json!({"params": {}}), "needs `raw`"),
            (json!({"hex": "zz"}), "`hex`"),
        ] {
            let row = Entry {
                id: "seed.x".into(),
                rule: "P-W1".into(),
                description: "d".into(),
                strength: Default::default(),
                send: Some(send),
                expect: Some("no-reply".into()),
            };
            let err = make(&row, &me(), &mut run).unwrap_err();
            assert!(err.contains("seed.x") && err.contains(want), "{err}");
        }
    }
}

//! `rest.json`: REST and WebSocket request/response cases for PROFILE §5–§6 and §7 P-X1 (see
//! `vectors/README.md` for the format and the template language).
//!
//! Expectations are written from the PROFILE and the whitepaper's answer shapes. Where the
//! PROFILE leaves a choice open (a missing token: 400 or 401), a case lists every status the
//! PROFILE allows; where a case checks one of this project's readings beyond the PROFILE (a
//! 2 MiB body is too large), its `strength` is `reading` and a different answer is non-strict.
//!
//! Keys: `alice` and `bob` are registered by the cases that need them; `carol` is never
//! registered by any case (the unregistered signer).

use std::path::Path;

use anyhow::Context as _;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::pgp::{self, hex_of, sha1_hex};

const TEXT: &str = "text/plain";
const JSON: &str = "application/json";
/// The body every pod is assumed to refuse (PROFILE fixes no limit; this project's reading).
const OVERSIZE: u64 = 2 * 1024 * 1024;

fn case(id: &str, rule: &str, strength: &str, description: &str, steps: Vec<Value>) -> Value {
    json!({"id": format!("rest.{id}"), "rule": rule, "strength": strength,
           "description": description, "steps": steps})
}

fn req(method: &str, path: &str, ctype: Option<&str>, body: Value) -> Value {
    let mut r = json!({"method": method, "path": path});
    if let Some(c) = ctype {
        r["headers"] = json!({"content-type": c});
    }
    if !body.is_null() {
        r["body"] = body;
    }
    r
}

fn step(request: Value, expect: Value) -> Value {
    json!({"request": request, "expect": expect})
}

fn setup(request: Value, expect: Value) -> Value {
    json!({"request": request, "expect": expect, "setup": true})
}

fn status(s: &[u16]) -> Value {
    json!({"status": s})
}

/// An error answer: one of `s`, and `{"error": string}` as JSON (P-A7).
fn err(s: &[u16]) -> Value {
    json!({"status": s, "error": true})
}

fn ok_json(shape: Value) -> Value {
    json!({"status": [200], "content_type": JSON, "json": shape})
}

/// An auth text of key `k` (pubkeyhash identity, fresh nonce) with `params` appended.
fn auth(k: &str, params: &str) -> String {
    let base =
        format!("identity={{{{pubkeyhash:{k}}}}}&identityType=pubkeyhash&nonce={{{{nonce}}}}");
    if params.is_empty() {
        base
    } else {
        format!("{base}&{params}")
    }
}

fn signed(by: &str, text: &str) -> Value {
    json!({"signed": {"by": by, "text": text}})
}

fn post_signed(path: &str, by: &str, text: &str) -> Value {
    req("POST", path, Some(TEXT), signed(by, text))
}

/// Setup: register `k`'s public key.
fn register(k: &str) -> Value {
    setup(
        req(
            "POST",
            "/",
            Some(TEXT),
            json!(format!("{{{{public:{k}}}}}")),
        ),
        status(&[200]),
    )
}

/// Setup: `k` takes alias `name`.
fn alias(k: &str, name: &str) -> Value {
    setup(
        post_signed("/aliases", k, &auth(k, &format!("alias={name}"))),
        status(&[200]),
    )
}

/// Setup: `k` gets a token for (`resource`, `method`), captured as `var`.
fn token(k: &str, resource: &str, method: &str, var: &str) -> Value {
    captured(
        setup(
            post_signed(
                "/tokens",
                k,
                &auth(k, &format!("resource={resource}&method={method}")),
            ),
            status(&[200]),
        ),
        var,
        "/token/value",
    )
}

/// The per-case message key: the case's tag, then zeros (40 lowercase hex).
const KEY: &str = "{{tag}}00000000000000000000000000000000";

/// Setup: alice and bob registered, with aliases `a{{tag}}` and `b{{tag}}`.
fn pair() -> Vec<Value> {
    vec![
        register("alice"),
        register("bob"),
        alias("alice", "a{{tag}}"),
        alias("bob", "b{{tag}}"),
    ]
}

/// Bob's notification of `key` to alice, from `from`.
fn notify(from: &str, key: &str) -> Value {
    post_signed(
        "/inboxes/a{{tag}}",
        "bob",
        &auth("bob", &format!("from={from}&key={key}")),
    )
}

/// The whitepaper's notification from bob (`b{{tag}}`) to alice (`a{{tag}}`) about `key`.
fn entry(key: &str) -> Value {
    json!({
        "sender": {"userID": "b{{tag}}@{{host}}", "pubkeyhash": "{{pubkeyhash:bob}}"},
        "recipient": {"userID": "a{{tag}}@{{host}}", "pubkeyhash": "{{pubkeyhash:alice}}"},
        "key": key, "timestamp": "<int-ms>",
    })
}

/// [`entry`] with its P-X1 `id`.
fn entry_with_id(key: &str, id: &str) -> Value {
    let mut e = entry(key);
    e["id"] = json!(id);
    e
}

/// `s`, keeping the string at JSON pointer `pointer` of its answer as `{{var:var}}`.
fn captured(mut s: Value, var: &str, pointer: &str) -> Value {
    s["capture"] = json!({var: pointer});
    s
}

/// Setup: bob's notification of `key` to alice, its entry id (P-X1) kept as `{{var:var}}`.
fn notified_as(from: &str, key: &str, var: &str) -> Value {
    captured(setup(notify(from, key), status(&[200])), var, "/message/id")
}

/// Alice gets a DELETE token, then purges up to `upto` (P-X1), expecting `expect`.
fn purge_upto(upto: &str, expect: Value) -> [Value; 2] {
    [
        token("alice", "/inboxes", "DELETE", "d"),
        step(
            req(
                "DELETE",
                &format!("/inboxes?token={{{{var:d}}}}&upto={upto}"),
                None,
                Value::Null,
            ),
            expect,
        ),
    ]
}

fn playback(var: &str) -> Value {
    req(
        "GET",
        &format!("/inboxes?token={{{{var:{var}}}}}"),
        None,
        Value::Null,
    )
}

/// A playback answer holding bob's entry about `key` (in any group: `contact` may be the
/// sender's userID or alias).
fn holds(key: &str) -> Value {
    ok_json(json!({"messages": {"$contains": {"contact": "<string>",
        "messages": {"$contains": entry(key)}}}}))
}

fn lacks(key: &str) -> Value {
    ok_json(json!({"messages": {"$excludes": {"messages": {"$contains": {"key": key}}}}}))
}

fn ws_open(name: &str, send: Value, expect: Value) -> Value {
    json!({"ws": {"open": name, "send": send}, "expect": expect})
}

fn ws_frame(k: &str, text: &str) -> Value {
    json!({"signed": {"by": k, "text": text}, "hex_encode": true})
}

fn closes() -> Value {
    json!({"close_code": 4401})
}

/// Builds `rest.json`. Reads the committed public key of alice (for a truncated copy and a
/// key sent where a message belongs).
pub fn rest(vectors_dir: &Path) -> anyhow::Result<Value> {
    let key_path = vectors_dir.join("pgp/keys/alice.pub.asc");
    let alice = std::fs::read_to_string(&key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(0x7265_7374);
    let value = hex_of(&pgp::armor_message(&pgp::encrypted(&mut rng, 64)));
    let value_key = sha1_hex(&value);
    let signed_only = hex_of(&pgp::armor_message(&pgp::literal(b"signed, not encrypted")));
    let mut cut = alice.clone();
    cut.truncate(alice.len() / 2);

    let mut cases = Vec::new();
    let mut add = |c: Value| cases.push(c);

    // ---------------------------------------------------------------- routes (P-A7)
    add(case(
        "route.unknown-404",
        "P-A7",
        "MUST",
        "an unknown route is 404 with a JSON error",
        vec![step(
            req("GET", "/no-such-route-{{tag}}", None, Value::Null),
            err(&[404]),
        )],
    ));
    add(case(
        "route.put-messages",
        "P-A7",
        "MUST",
        "PUT /messages (a known path, a method it does not have) is 404 or 405 with a JSON error",
        vec![step(
            req("PUT", "/messages", Some(TEXT), json!("00")),
            err(&[404, 405]),
        )],
    ));
    add(case(
        "route.delete-alias",
        "P-A7",
        "MUST",
        "DELETE /aliases/:alias is not an endpoint: 404 or 405 with a JSON error",
        vec![step(
            req("DELETE", "/aliases/a{{tag}}", None, Value::Null),
            err(&[404, 405]),
        )],
    ));
    add(case(
        "route.get-tokens",
        "P-A7",
        "MUST",
        "GET /tokens is not an endpoint: 404 or 405 with a JSON error",
        vec![step(
            req("GET", "/tokens", None, Value::Null),
            err(&[404, 405]),
        )],
    ));

    // ---------------------------------------------------------------- POST / (register)
    add(case(
        "register.ok",
        "P-A5",
        "MUST",
        "POST / with an armored public key answers {\"identity\": {\"pubkeyhash\", \"registered\"}} unwrapped, as JSON; pubkeyhash = SHA-1 of the exact body (P-G1), registered in integer ms (P-W5)",
        vec![step(
            req("POST", "/", Some(TEXT), json!("{{public:alice}}")),
            ok_json(
                json!({"identity": {"pubkeyhash": "{{pubkeyhash:alice}}", "registered": "<int-ms>"}}),
            ),
        )],
    ));
    add(case(
        "register.charset-ok",
        "P-A5",
        "MUST",
        "`text/plain; charset=utf-8` is text/plain",
        vec![step(
            req(
                "POST",
                "/",
                Some("text/plain; charset=utf-8"),
                json!("{{public:bob}}"),
            ),
            ok_json(json!({"identity": {"pubkeyhash": "{{pubkeyhash:bob}}"}})),
        )],
    ));
    add(case(
        "register.again-same-hash",
        "P-A5",
        "reading",
        "registering the same text again succeeds with the same pubkeyhash (409 is for the same key in another text)",
        vec![
            register("alice"),
            step(
                req("POST", "/", Some(TEXT), json!("{{public:alice}}")),
                ok_json(json!({"identity": {"pubkeyhash": "{{pubkeyhash:alice}}"}})),
            ),
        ],
    ));
    add(case(
        "register.other-text-409",
        "P-A7",
        "reading",
        "the same key in another armored text (an extra armor header) is already registered: 409",
        vec![
            register("alice"),
            step(
                req(
                    "POST",
                    "/",
                    Some(TEXT),
                    json!({"text": "{{public:alice}}",
            "alter": ["-----BEGIN PGP PUBLIC KEY BLOCK-----\n", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: the same key, another text\n"]}),
                ),
                err(&[409]),
            ),
        ],
    ));
    add(case(
        "register.not-a-key-400",
        "P-A5",
        "MUST",
        "a body that is not an armored public key is 400",
        vec![step(
            req("POST", "/", Some(TEXT), json!("hello, pod")),
            err(&[400]),
        )],
    ));
    add(case(
        "register.empty-400",
        "P-A5",
        "MUST",
        "an empty body is 400",
        vec![step(req("POST", "/", Some(TEXT), json!("")), err(&[400]))],
    ));
    add(case(
        "register.message-armor-400",
        "P-A5",
        "MUST",
        "an armored PGP MESSAGE is not a public key: 400",
        vec![step(
            req(
                "POST",
                "/",
                Some(TEXT),
                json!(pgp::armor_message(&pgp::encrypted(&mut rng, 32))),
            ),
            err(&[400]),
        )],
    ));
    add(case(
        "register.truncated-armor-400",
        "P-A5",
        "MUST",
        "the first half of a public key's armor is 400",
        vec![step(req("POST", "/", Some(TEXT), json!(cut)), err(&[400]))],
    ));
    add(case(
        "register.non-utf8-400",
        "P-A5",
        "MUST",
        "a body that is not UTF-8 is 400",
        vec![step(
            req("POST", "/", Some(TEXT), json!({"hex": "fffe2d2d2d2d2d80"})),
            err(&[400]),
        )],
    ));
    add(case(
        "register.json-415",
        "P-A7",
        "MUST",
        "a key sent as application/json is the wrong media type: 415",
        vec![step(
            req("POST", "/", Some(JSON), json!("{{public:alice}}")),
            err(&[415]),
        )],
    ));
    add(case(
        "register.oversize-413",
        "P-A7",
        "reading",
        "a 2 MiB body is too large: 413",
        vec![step(
            req(
                "POST",
                "/",
                Some(TEXT),
                json!({"repeat": "A", "times": OVERSIZE}),
            ),
            err(&[413]),
        )],
    ));

    // ---------------------------------------------------------------- GET /aliases/:alias
    add(case(
        "aliases.get-ok",
        "P-A5",
        "MUST",
        "GET /aliases/:alias answers the exact registered text as application/pgp-keys",
        vec![
            register("alice"),
            alias("alice", "a{{tag}}"),
            step(
                req("GET", "/aliases/a{{tag}}", None, Value::Null),
                json!({"status": [200], "content_type": "application/pgp-keys", "body": "{{public:alice}}"}),
            ),
        ],
    ));
    add(case(
        "aliases.unknown-404",
        "P-A7",
        "MUST",
        "an alias nobody has is 404 with a JSON error",
        vec![step(
            req("GET", "/aliases/nobody-{{tag}}", None, Value::Null),
            err(&[404]),
        )],
    ));
    add(case(
        "aliases.get-bad-pattern",
        "P-A8",
        "MUST",
        "an alias outside [a-z0-9][a-z0-9._-]{0,63} (uppercase) names nobody: 400 or 404",
        vec![step(
            req("GET", "/aliases/Nobody-{{tag}}", None, Value::Null),
            err(&[400, 404]),
        )],
    ));

    // ---------------------------------------------------------------- POST /aliases
    add(case(
        "aliases.create-ok",
        "P-A5",
        "MUST",
        "POST /aliases answers {\"alias\": {\"name\", \"created\"}} unwrapped, created in integer ms",
        vec![
            register("alice"),
            step(
                post_signed("/aliases", "alice", &auth("alice", "alias=a{{tag}}")),
                ok_json(json!({"alias": {"name": "a{{tag}}", "created": "<int-ms>"}})),
            ),
        ],
    ));
    add(case(
        "aliases.taken-409",
        "P-A7",
        "MUST",
        "an alias another identity holds is 409, and it stays its owner's",
        vec![
            register("alice"),
            register("bob"),
            alias("alice", "a{{tag}}"),
            step(
                post_signed("/aliases", "bob", &auth("bob", "alias=a{{tag}}")),
                err(&[409]),
            ),
            step(
                req("GET", "/aliases/a{{tag}}", None, Value::Null),
                json!({"status": [200], "body": "{{public:alice}}"}),
            ),
        ],
    ));
    add(case(
        "aliases.max-length-ok",
        "P-A8",
        "MUST",
        "a 64-character alias is valid",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/aliases",
                    "alice",
                    &auth("alice", &format!("alias={}{{{{tag}}}}", "l".repeat(56))),
                ),
                ok_json(json!({"alias": {"name": format!("{}{{{{tag}}}}", "l".repeat(56))}})),
            ),
        ],
    ));
    add(case(
        "aliases.punctuated-ok",
        "P-A8",
        "MUST",
        "dots, dashes and underscores after the first character are valid",
        vec![
            register("alice"),
            step(
                post_signed("/aliases", "alice", &auth("alice", "alias=a.b-c_{{tag}}")),
                ok_json(json!({"alias": {"name": "a.b-c_{{tag}}"}})),
            ),
        ],
    ));
    add(case(
        "aliases.too-long-400",
        "P-A8",
        "MUST",
        "a 65-character alias is 400",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/aliases",
                    "alice",
                    &auth("alice", &format!("alias={}{{{{tag}}}}", "l".repeat(57))),
                ),
                err(&[400]),
            ),
        ],
    ));
    add(case(
        "aliases.leading-dash-400",
        "P-A8",
        "MUST",
        "an alias starting with `-` is 400",
        vec![
            register("alice"),
            step(
                post_signed("/aliases", "alice", &auth("alice", "alias=-a{{tag}}")),
                err(&[400]),
            ),
        ],
    ));
    add(case(
        "aliases.uppercase-400",
        "P-A8",
        "MUST",
        "an alias with uppercase letters is 400",
        vec![
            register("alice"),
            step(
                post_signed("/aliases", "alice", &auth("alice", "alias=A{{tag}}")),
                err(&[400]),
            ),
        ],
    ));
    add(case(
        "aliases.missing-param-400",
        "P-A4",
        "MUST",
        "POST /aliases without `alias` is 400",
        vec![
            register("alice"),
            step(
                post_signed("/aliases", "alice", &auth("alice", "")),
                err(&[400]),
            ),
        ],
    ));
    add(case(
        "aliases.unregistered-401",
        "P-A3",
        "MUST",
        "a signer whose key is not registered here is not authenticated: 401",
        vec![step(
            post_signed("/aliases", "carol", &auth("carol", "alias=c{{tag}}")),
            err(&[401]),
        )],
    ));
    add(case(
        "aliases.query-ignored",
        "P-A1",
        "MUST",
        "`?alias=` in the query string is ignored: the alias comes only from the signed text",
        vec![
            register("alice"),
            step(
                req(
                    "POST",
                    "/aliases?alias=q{{tag}}",
                    Some(TEXT),
                    signed("alice", &auth("alice", "alias=s{{tag}}")),
                ),
                ok_json(json!({"alias": {"name": "s{{tag}}"}})),
            ),
            step(
                req("GET", "/aliases/q{{tag}}", None, Value::Null),
                err(&[404]),
            ),
        ],
    ));
    add(case(
        "aliases.json-415",
        "P-A7",
        "MUST",
        "a signed text sent as application/json is 415",
        vec![
            register("alice"),
            step(
                req(
                    "POST",
                    "/aliases",
                    Some(JSON),
                    signed("alice", &auth("alice", "alias=a{{tag}}")),
                ),
                err(&[415]),
            ),
        ],
    ));
    add(case(
        "aliases.oversize-413",
        "P-A7",
        "reading",
        "a 2 MiB body on POST /aliases is 413",
        vec![step(
            req(
                "POST",
                "/aliases",
                Some(TEXT),
                json!({"repeat": "A", "times": OVERSIZE}),
            ),
            err(&[413]),
        )],
    ));

    // ---------------------------------------------------------------- authentication (/tokens)
    let tok = "resource=/inboxes&method=GET";
    add(case(
        "auth.replay-401",
        "P-A2",
        "MUST",
        "the same signed text twice: the second is a replay, 401",
        vec![
            register("alice"),
            setup(
                post_signed("/tokens", "alice", &auth("alice", tok)),
                status(&[200]),
            ),
            step(
                req("POST", "/tokens", Some(TEXT), json!({"same_as": 1})),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.nonce-6min-old-401",
        "P-A2",
        "MUST",
        "a nonce 6 minutes old is 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &auth("alice", tok).replace("{{nonce}}", "{{nonce:-360000}}"),
                ),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.nonce-6min-ahead-401",
        "P-A2",
        "MUST",
        "a nonce 6 minutes ahead is 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &auth("alice", tok).replace("{{nonce}}", "{{nonce:360000}}"),
                ),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.nonce-2min-old-ok",
        "P-A2",
        "SHOULD",
        "a nonce 2 minutes old is within the 5-minute window",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &auth("alice", tok).replace("{{nonce}}", "{{nonce:-120000}}"),
                ),
                status(&[200]),
            ),
        ],
    ));
    add(case(
        "auth.nonce-seconds-401",
        "P-A2",
        "MUST",
        "a nonce in seconds, not milliseconds, is far from the clock: 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &auth("alice", tok).replace("{{nonce}}", "{{nonce-seconds}}"),
                ),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.nonce-not-integer",
        "P-A2",
        "MUST",
        "a nonce that is not an integer is refused: 400 or 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &auth("alice", tok).replace("{{nonce}}", "yesterday"),
                ),
                err(&[400, 401]),
            ),
        ],
    ));
    add(case(
        "auth.missing-nonce",
        "P-A1",
        "MUST",
        "an auth text without `nonce` is refused: 400 or 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &format!("identity={{{{pubkeyhash:alice}}}}&identityType=pubkeyhash&{tok}"),
                ),
                err(&[400, 401]),
            ),
        ],
    ));
    add(case(
        "auth.missing-identity-type",
        "P-A1",
        "MUST",
        "an auth text without `identityType` is refused: 400 or 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &format!("identity={{{{pubkeyhash:alice}}}}&nonce={{{{nonce}}}}&{tok}"),
                ),
                err(&[400, 401]),
            ),
        ],
    ));
    add(case(
        "auth.altered-param-401",
        "P-A1",
        "MUST",
        "a parameter changed after signing breaks the signature: 401",
        vec![
            register("alice"),
            step(
                req(
                    "POST",
                    "/tokens",
                    Some(TEXT),
                    json!({"signed": {"by": "alice", "text": auth("alice", tok)},
            "alter": ["method=GET\n", "method=DELETE\n"]}),
                ),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.appended-param-401",
        "P-A1",
        "MUST",
        "a parameter appended after signing breaks the signature: 401",
        vec![
            register("alice"),
            step(
                req(
                    "POST",
                    "/tokens",
                    Some(TEXT),
                    json!({"signed": {"by": "alice", "text": auth("alice", tok)},
            "alter": ["method=GET\n", "method=GET&x=1\n"]}),
                ),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.wrong-signer-401",
        "P-A3",
        "MUST",
        "alice's identity signed by bob's key: 401",
        vec![
            register("alice"),
            register("bob"),
            step(
                post_signed("/tokens", "bob", &auth("alice", tok)),
                err(&[401]),
            ),
        ],
    ));
    add(case(
        "auth.unknown-identity-401",
        "P-A3",
        "MUST",
        "a pubkeyhash nobody registered here: 401",
        vec![step(
            post_signed("/tokens", "carol", &auth("carol", tok)),
            err(&[401]),
        )],
    ));
    add(case(
        "auth.unsigned",
        "P-A1",
        "MUST",
        "the query string without a signature is refused: 400 or 401",
        vec![
            register("alice"),
            step(
                req("POST", "/tokens", Some(TEXT), json!(auth("alice", tok))),
                err(&[400, 401]),
            ),
        ],
    ));
    add(case(
        "auth.garbage",
        "P-A1",
        "MUST",
        "a body that is no auth text is refused: 400 or 401",
        vec![step(
            req("POST", "/tokens", Some(TEXT), json!("not signed at all")),
            err(&[400, 401]),
        )],
    ));
    add(case(
        "auth.empty",
        "P-A1",
        "MUST",
        "an empty body is refused: 400 or 401",
        vec![step(
            req("POST", "/tokens", Some(TEXT), json!("")),
            err(&[400, 401]),
        )],
    ));
    add(case(
        "auth.unknown-identity-type",
        "P-A3",
        "MUST",
        "identityType=email is refused: 400 or 401",
        vec![
            register("alice"),
            step(
                post_signed(
                    "/tokens",
                    "alice",
                    &auth("alice", tok).replace("identityType=pubkeyhash", "identityType=email"),
                ),
                err(&[400, 401]),
            ),
        ],
    ));
    add(case(
        "auth.href-unreachable-401",
        "P-A3",
        "MUST",
        "an href identity whose pod cannot be reached is not authenticated: 401, or 503 (try again: the pod may be restarting)",
        vec![
            register("alice"),
            alias("alice", "a{{tag}}"),
            step(
                post_signed(
                    "/inboxes/a{{tag}}",
                    "bob",
                    &format!(
                        "identity=b{{{{tag}}}}@127.0.0.1:1&identityType=href&nonce={{{{nonce}}}}&from=b{{{{tag}}}}@127.0.0.1:1&key={KEY}"
                    ),
                ),
                err(&[401, 503]),
            ),
        ],
    ));
    add(case(
        "auth.href-token-403",
        "P-A4",
        "MUST",
        "an href identity (here: bob's alias on this very pod) is authenticated, not authorized: a token is 403",
        vec![
            register("bob"),
            alias("bob", "b{{tag}}"),
            step(
                post_signed(
                    "/tokens",
                    "bob",
                    &format!(
                        "identity=b{{{{tag}}}}@{{{{host}}}}&identityType=href&nonce={{{{nonce}}}}&{tok}"
                    ),
                ),
                err(&[403]),
            ),
        ],
    ));

    // ---------------------------------------------------------------- tokens
    add(case(
        "tokens.create-ok",
        "P-A5",
        "MUST",
        "POST /tokens answers {\"token\": {\"issued\", \"method\", \"resource\", \"value\"}} unwrapped, echoing the method and resource",
        vec![
            register("alice"),
            step(
                post_signed("/tokens", "alice", &auth("alice", tok)),
                ok_json(
                    json!({"token": {"issued": "<int-ms>", "method": "GET", "resource": "/inboxes", "value": "<string>"}}),
                ),
            ),
        ],
    ));
    add(case(
        "tokens.128-bits",
        "P-A6",
        "MUST",
        "a token's text holds at least 128 bits (judged from its alphabet and length)",
        vec![
            register("alice"),
            step(
                post_signed("/tokens", "alice", &auth("alice", tok)),
                ok_json(json!({"token": {"value": "<token128>"}})),
            ),
        ],
    ));
    add(case(
        "tokens.playback-ok",
        "P-A4",
        "MUST",
        "GET /inboxes with a GET token answers {\"messages\": [...]}",
        vec![
            register("alice"),
            token("alice", "/inboxes", "GET", "t"),
            step(playback("t"), ok_json(json!({"messages": "<array>"}))),
        ],
    ));
    add(case(
        "tokens.single-use-401",
        "P-A6",
        "MUST",
        "a token used once is refused the second time: 401",
        vec![
            register("alice"),
            token("alice", "/inboxes", "GET", "t"),
            setup(playback("t"), status(&[200])),
            step(playback("t"), err(&[401])),
        ],
    ));
    add(case(
        "tokens.method-bound",
        "P-A6",
        "MUST",
        "a GET token does not DELETE: 401 or 403",
        vec![
            register("alice"),
            token("alice", "/inboxes", "GET", "t"),
            step(
                req("DELETE", "/inboxes?token={{var:t}}", None, Value::Null),
                err(&[401, 403]),
            ),
        ],
    ));
    add(case(
        "tokens.resource-bound",
        "P-A6",
        "MUST",
        "a token issued for another resource (/aliases) does not play back /inboxes: 401 or 403 (not applicable if no such token is issued)",
        vec![
            register("alice"),
            token("alice", "/aliases", "GET", "t"),
            step(playback("t"), err(&[401, 403])),
        ],
    ));
    add(case(
        "tokens.missing",
        "P-A6",
        "MUST",
        "GET /inboxes without a token is refused: 400 or 401",
        vec![step(
            req("GET", "/inboxes", None, Value::Null),
            err(&[400, 401]),
        )],
    ));
    add(case(
        "tokens.made-up-401",
        "P-A6",
        "MUST",
        "a token the pod never issued is 401",
        vec![step(
            req(
                "GET",
                "/inboxes?token=0123456789abcdef0123456789abcdef",
                None,
                Value::Null,
            ),
            err(&[401]),
        )],
    ));
    add(case(
        "tokens.unregistered-401",
        "P-A3",
        "MUST",
        "an unregistered key cannot get a token: 401",
        vec![step(
            post_signed("/tokens", "carol", &auth("carol", tok)),
            err(&[401]),
        )],
    ));
    add(case(
        "tokens.missing-method-400",
        "P-A4",
        "MUST",
        "POST /tokens without `method` is 400",
        vec![
            register("alice"),
            step(
                post_signed("/tokens", "alice", &auth("alice", "resource=/inboxes")),
                err(&[400]),
            ),
        ],
    ));
    add(case(
        "tokens.query-ignored",
        "P-A1",
        "MUST",
        "`?method=DELETE` in the query string is ignored: the token is for the signed GET",
        vec![
            register("alice"),
            step(
                req(
                    "POST",
                    "/tokens?method=DELETE",
                    Some(TEXT),
                    signed("alice", &auth("alice", tok)),
                ),
                ok_json(json!({"token": {"method": "GET"}})),
            ),
        ],
    ));

    // ---------------------------------------------------------------- inboxes
    let from_bob = "b{{tag}}@{{host}}";
    let mut steps = pair();
    steps.push(step(
        notify(from_bob, KEY),
        ok_json(json!({"message": entry(KEY)})),
    ));
    add(case(
        "inboxes.notify-ok",
        "P-A4",
        "MUST",
        "bob's POST /inboxes/:alias answers {\"message\": …} with sender = `from` and bob's pubkeyhash, recipient = alias@podhost (P-A8)",
        steps,
    ));
    let mut steps = pair();
    steps.extend([
        setup(notify(from_bob, KEY), status(&[200])),
        token("alice", "/inboxes", "GET", "t"),
        step(playback("t"), holds(KEY)),
    ]);
    add(case(
        "inboxes.playback-holds-entry",
        "P-A4",
        "MUST",
        "alice's playback holds bob's entry in the whitepaper format, in a {contact, messages} group",
        steps,
    ));
    let mut steps = pair();
    steps.extend([
        setup(notify(from_bob, KEY), status(&[200])),
        token("alice", "/inboxes", "GET", "t"),
        setup(playback("t"), holds(KEY)),
        token("alice", "/inboxes", "GET", "u"),
        step(playback("u"), holds(KEY)),
    ]);
    add(case(
        "inboxes.kept-after-playback",
        "P-A9",
        "MUST",
        "a second playback still holds the entry (only DELETE purges)",
        steps,
    ));
    let mut steps = pair();
    steps.extend([
        setup(notify(from_bob, KEY), status(&[200])),
        token("alice", "/inboxes", "DELETE", "d"),
        step(
            req("DELETE", "/inboxes?token={{var:d}}", None, Value::Null),
            ok_json(json!({"messages": []})),
        ),
        token("alice", "/inboxes", "GET", "t"),
        step(playback("t"), lacks(KEY)),
    ]);
    add(case(
        "inboxes.purge",
        "P-A4",
        "MUST",
        "DELETE /inboxes answers {\"messages\": []} and the entry is gone from the next playback",
        steps,
    ));
    // PROFILE §7 P-X1: entry ids and purge up to what was seen (reported as §7, so a pod that
    // follows only the whitepaper still passes §1–§6).
    let key2 = "{{tag}}11111111111111111111111111111111";
    let mut steps = pair();
    steps.extend([
        notified_as(from_bob, KEY, "i1"),
        token("alice", "/inboxes", "GET", "t"),
        setup(playback("t"), holds(KEY)),
        // Arrives after the playback: the client has not seen it.
        notified_as(from_bob, key2, "i2"),
    ]);
    steps.extend(purge_upto(
        "{{var:i1}}",
        ok_json(json!({"messages": {"$contains": {"contact": "<string>",
                "messages": [entry_with_id(key2, "{{var:i2}}")]}}})),
    ));
    steps.extend([
        token("alice", "/inboxes", "GET", "u"),
        step(playback("u"), lacks(KEY)),
        token("alice", "/inboxes", "GET", "v"),
        step(playback("v"), holds(key2)),
    ]);
    add(case(
        "inboxes.x1-purge-upto-keeps-later",
        "P-X1",
        "MUST",
        "entries carry ids (notify answer and playback); DELETE /inboxes?upto=<first id> deletes the entry seen in the playback and answers the one notified after it, which survives",
        steps,
    ));
    let mut steps = pair();
    steps.extend([
        notified_as(from_bob, KEY, "i1"),
        token("alice", "/inboxes", "GET", "t"),
        step(
            playback("t"),
            ok_json(json!({"messages": {"$contains": {"contact": "<string>",
                "messages": {"$contains": entry_with_id(KEY, "{{var:i1}}")}}}})),
        ),
    ]);
    add(case(
        "inboxes.x1-playback-id",
        "P-X1",
        "MUST",
        "the playback gives each entry the id its notify answer gave",
        steps,
    ));
    let mut steps = pair();
    steps.push(setup(notify(from_bob, KEY), status(&[200])));
    steps.extend(purge_upto("12ab", err(&[400])));
    steps.extend([
        token("alice", "/inboxes", "GET", "t"),
        step(playback("t"), holds(KEY)),
    ]);
    add(case(
        "inboxes.x1-upto-not-digits-400",
        "P-X1",
        "MUST",
        "an `upto` that is not decimal digits is 400 with a JSON error, and nothing is deleted",
        steps,
    ));
    let mut steps = pair();
    steps.push(setup(notify(from_bob, KEY), status(&[200])));
    steps.extend(purge_upto(
        "99999999999999999999",
        ok_json(json!({"messages": []})),
    ));
    steps.extend([
        setup(notify(from_bob, key2), status(&[200])),
        token("alice", "/inboxes", "GET", "t"),
        step(
            playback("t"),
            ok_json(json!({"messages": {"$contains": {"contact": "<string>",
                "messages": [entry(key2)]}}})),
        ),
    ]);
    add(case(
        "inboxes.x1-upto-beyond-newest",
        "P-X1",
        "MUST",
        "an `upto` beyond the newest id deletes what exists and nothing else: an entry notified afterwards is kept",
        steps,
    ));
    let mut steps = pair();
    steps.extend([
        setup(notify(from_bob, KEY), status(&[200])),
        token("bob", "/inboxes", "GET", "t"),
        step(playback("t"), lacks(KEY)),
    ]);
    add(case(
        "inboxes.token-identity-bound",
        "P-A6",
        "MUST",
        "bob's token plays back bob's inbox: alice's entry is not in it",
        steps,
    ));
    let mut steps = pair();
    steps.extend([
        step(notify("a{{tag}}@{{host}}", KEY), err(&[401, 403])),
        token("alice", "/inboxes", "GET", "t"),
        step(playback("t"), lacks(KEY)),
    ]);
    add(case(
        "inboxes.from-not-signer",
        "P-A4",
        "MUST",
        "`from` naming another user than the signer is refused (401 or 403) and not stored",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(
        notify("nobody-{{tag}}@{{host}}", KEY),
        err(&[401, 403]),
    ));
    add(case(
        "inboxes.from-unknown-alias",
        "P-A4",
        "MUST",
        "`from` naming an alias nobody has does not resolve to the signer: 401 or 403",
        steps,
    ));
    add(case(
        "inboxes.unknown-alias-404",
        "P-A7",
        "MUST",
        "a notification to an alias nobody has is 404",
        vec![
            register("bob"),
            alias("bob", "b{{tag}}"),
            step(
                post_signed(
                    "/inboxes/nobody-{{tag}}",
                    "bob",
                    &auth("bob", &format!("from={from_bob}&key={KEY}")),
                ),
                err(&[404]),
            ),
        ],
    ));
    let mut steps = pair();
    steps.push(step(
        notify(from_bob, "{{tag}}ABCDEF00000000000000000000000000"),
        err(&[400]),
    ));
    add(case(
        "inboxes.uppercase-key-400",
        "P-V2",
        "MUST",
        "a key with uppercase hex is 400",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(
        notify(from_bob, "{{tag}}0000000000000000000000000000000"),
        err(&[400]),
    ));
    add(case(
        "inboxes.short-key-400",
        "P-V2",
        "MUST",
        "a key of 39 hex characters is 400",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(
        post_signed(
            "/inboxes/a{{tag}}",
            "bob",
            &auth("bob", &format!("key={KEY}")),
        ),
        err(&[400]),
    ));
    add(case(
        "inboxes.missing-from-400",
        "P-A4",
        "MUST",
        "a notification without `from` is 400",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(
        post_signed(
            "/inboxes/a{{tag}}",
            "bob",
            &auth("bob", &format!("from={from_bob}")),
        ),
        err(&[400]),
    ));
    add(case(
        "inboxes.missing-key-400",
        "P-A4",
        "MUST",
        "a notification without `key` is 400",
        steps,
    ));
    add(case(
        "inboxes.unregistered-signer-401",
        "P-A3",
        "MUST",
        "a pubkeyhash signer not registered here is not authenticated: 401",
        vec![
            register("alice"),
            alias("alice", "a{{tag}}"),
            step(
                post_signed(
                    "/inboxes/a{{tag}}",
                    "carol",
                    &auth(
                        "carol",
                        &format!("from=c{{{{tag}}}}@{{{{host}}}}&key={KEY}"),
                    ),
                ),
                err(&[401]),
            ),
        ],
    ));
    let mut steps = pair();
    steps.extend([
        setup(notify(from_bob, KEY), status(&[200])),
        step(
            req(
                "POST",
                "/inboxes/a{{tag}}",
                Some(TEXT),
                json!({"same_as": 4}),
            ),
            err(&[401]),
        ),
    ]);
    add(case(
        "inboxes.replay-401",
        "P-A2",
        "MUST",
        "the same notification text twice: the second is a replay, 401",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(
        req(
            "POST",
            "/inboxes/a{{tag}}",
            Some(JSON),
            signed("bob", &auth("bob", &format!("from={from_bob}&key={KEY}"))),
        ),
        err(&[415]),
    ));
    add(case(
        "inboxes.json-415",
        "P-A7",
        "MUST",
        "a notification sent as application/json is 415",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(
        req(
            "POST",
            "/inboxes/a{{tag}}?key=ffffffffffffffffffffffffffffffffffffffff",
            Some(TEXT),
            signed("bob", &auth("bob", &format!("from={from_bob}&key={KEY}"))),
        ),
        ok_json(json!({"message": {"key": KEY}})),
    ));
    add(case(
        "inboxes.query-ignored",
        "P-A1",
        "MUST",
        "`?key=` in the query string is ignored: the entry has the signed key",
        steps,
    ));
    let mut steps = pair();
    steps.push(step(post_signed("/inboxes/a{{tag}}", "bob",
        &format!("identity={from_bob}&identityType=href&nonce={{{{nonce}}}}&from={from_bob}&key={KEY}")),
        ok_json(json!({"message": entry(KEY)}))));
    add(case(
        "inboxes.href-notify-ok",
        "P-A3",
        "MUST",
        "an href identity (bob's alias on this very pod, its key fetched from GET /aliases/:alias) may notify",
        steps,
    ));
    add(case(
        "inboxes.oversize-413",
        "P-A7",
        "reading",
        "a 2 MiB body on POST /inboxes/:alias is 413",
        vec![step(
            req(
                "POST",
                "/inboxes/a{{tag}}",
                Some(TEXT),
                json!({"repeat": "A", "times": OVERSIZE}),
            ),
            err(&[413]),
        )],
    ));

    add(case(
        "tokens.oversize-413",
        "P-A7",
        "reading",
        "a 2 MiB body on POST /tokens is 413",
        vec![step(
            req(
                "POST",
                "/tokens",
                Some(TEXT),
                json!({"repeat": "A", "times": OVERSIZE}),
            ),
            err(&[413]),
        )],
    ));

    // ---------------------------------------------------------------- messages
    add(case(
        "messages.store-ok",
        "P-V2",
        "MUST",
        "POST /messages answers {\"key\"} = SHA-1 of the hex text as sent",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!(value)),
            ok_json(json!({"key": value_key})),
        )],
    ));
    add(case(
        "messages.store-again",
        "P-V2",
        "MUST",
        "storing the same value again gives the same key",
        vec![
            setup(
                req("POST", "/messages", Some(TEXT), json!(value)),
                status(&[200]),
            ),
            step(
                req("POST", "/messages", Some(TEXT), json!(value)),
                ok_json(json!({"key": value_key})),
            ),
        ],
    ));
    add(case(
        "messages.get-ok",
        "P-A5",
        "MUST",
        "GET /messages/:hash answers the stored hex text",
        vec![
            setup(
                req("POST", "/messages", Some(TEXT), json!(value)),
                status(&[200]),
            ),
            step(
                req("GET", &format!("/messages/{value_key}"), None, Value::Null),
                json!({"status": [200], "body": value}),
            ),
        ],
    ));
    add(case(
        "messages.unknown-404",
        "P-A7",
        "MUST",
        "a key nobody stored is 404",
        vec![step(
            req("GET", &format!("/messages/{KEY}"), None, Value::Null),
            err(&[404]),
        )],
    ));
    add(case(
        "messages.bad-hash",
        "P-A7",
        "MUST",
        "a hash that is not 40 hex names nothing: 400 or 404",
        vec![step(
            req("GET", "/messages/not-a-hash", None, Value::Null),
            err(&[400, 404]),
        )],
    ));
    add(case(
        "messages.get-uppercase-hash",
        "P-A7",
        "MUST",
        "a hash in uppercase hex is not the lowercase SHA-1 of P-V2: 400 or 404",
        vec![step(
            req(
                "GET",
                "/messages/ABCDEF0123456789ABCDEF0123456789ABCDEF01",
                None,
                Value::Null,
            ),
            err(&[400, 404]),
        )],
    ));
    add(case(
        "messages.get-short-hash",
        "P-A7",
        "MUST",
        "a hash of 39 hex characters names nothing: 400 or 404",
        vec![step(
            // The 8-character tag and 31 zeros.
            req(
                "GET",
                &("/messages/{{tag}}".to_string() + &"0".repeat(31)),
                None,
                Value::Null,
            ),
            err(&[400, 404]),
        )],
    ));
    add(case(
        "messages.not-hex-400",
        "P-V1",
        "MUST",
        "a body that is not hex is 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!("zz-not-hex")),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.odd-length-400",
        "P-V1",
        "MUST",
        "hex of odd length is 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!(format!("{value}0"))),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.uppercase-400",
        "P-V1",
        "MUST",
        "uppercase hex is not the lowercase hex of P-V1: 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!(value.to_uppercase())),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.not-armored-400",
        "P-V1",
        "MUST",
        "hex of text without PGP MESSAGE armor is 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!(hex_of("hello, dht"))),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.public-key-armor-400",
        "P-V1",
        "MUST",
        "hex of a PUBLIC KEY BLOCK is not a message: 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!(hex_of(&alice))),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.empty-400",
        "P-V1",
        "MUST",
        "an empty body is 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!("")),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.unencrypted",
        "P-V3",
        "SHOULD",
        "an armored message that is not encrypted (a literal packet) is refused: 400",
        vec![step(
            req("POST", "/messages", Some(TEXT), json!(signed_only)),
            err(&[400]),
        )],
    ));
    add(case(
        "messages.json-415",
        "P-A7",
        "MUST",
        "a value sent as application/json is 415",
        vec![step(
            req("POST", "/messages", Some(JSON), json!(value)),
            err(&[415]),
        )],
    ));
    add(case(
        "messages.oversize-413",
        "P-A7",
        "reading",
        "a 2 MiB body on POST /messages is 413",
        vec![step(
            req(
                "POST",
                "/messages",
                Some(TEXT),
                json!({"repeat": "A", "times": OVERSIZE}),
            ),
            err(&[413]),
        )],
    ));

    // ---------------------------------------------------------------- WebSocket (§6)
    let mut steps = pair();
    steps.extend([
        ws_open(
            "w",
            ws_frame("alice", &auth("alice", "")),
            json!({"open_ms": 300}),
        ),
        setup(notify(from_bob, KEY), status(&[200])),
        json!({"ws": {"read": "w", "within_ms": 1000}, "expect": {"json": entry(KEY)}}),
    ]);
    add(case(
        "ws.push",
        "P-S2",
        "MUST",
        "after alice's hex auth frame the socket stays open, and bob's notification is pushed to it as one JSON frame in the whitepaper format within 1 s",
        steps,
    ));
    let ws_refusal = |id: &str, rule: &str, desc: &str, pre: Vec<Value>, send: Value| {
        let mut steps = pre;
        steps.push(ws_open("w", send, closes()));
        case(id, rule, "MUST", desc, steps)
    };
    add(ws_refusal(
        "ws.not-hex-4401",
        "P-S1",
        "the armored auth text not hex-encoded: close 4401",
        vec![register("alice")],
        signed("alice", &auth("alice", "")),
    ));
    add(ws_refusal(
        "ws.garbage-4401",
        "P-S1",
        "a first frame that is no auth text: close 4401",
        vec![],
        json!("hello"),
    ));
    add(ws_refusal(
        "ws.wrong-signer-4401",
        "P-S1",
        "alice's identity signed by bob: close 4401",
        vec![register("alice"), register("bob")],
        ws_frame("bob", &auth("alice", "")),
    ));
    add(ws_refusal(
        "ws.unknown-identity-4401",
        "P-S1",
        "an unregistered identity: close 4401",
        vec![],
        ws_frame("carol", &auth("carol", "")),
    ));
    add(ws_refusal(
        "ws.stale-nonce-4401",
        "P-S1",
        "a nonce 6 minutes old: close 4401",
        vec![register("alice")],
        ws_frame(
            "alice",
            &auth("alice", "").replace("{{nonce}}", "{{nonce:-360000}}"),
        ),
    ));
    add(ws_refusal(
        "ws.href-4401",
        "P-S1",
        "identityType=href on the WebSocket (only pubkeyhash): close 4401",
        vec![register("alice"), alias("alice", "a{{tag}}")],
        ws_frame(
            "alice",
            "identity=a{{tag}}@{{host}}&identityType=href&nonce={{nonce}}",
        ),
    ));
    add(case(
        "ws.binary-4401",
        "P-S1",
        "MUST",
        "the auth frame as a binary frame: close 4401",
        vec![
            register("alice"),
            json!({"ws": {"open": "w", "send": ws_frame("alice", &auth("alice", "")), "binary": true}, "expect": closes()}),
        ],
    ));
    add(case(
        "ws.replay-4401",
        "P-S1",
        "MUST",
        "an auth frame already accepted, sent again on a new socket: close 4401",
        vec![
            register("alice"),
            json!({"ws": {"open": "w1", "send": ws_frame("alice", &auth("alice", ""))}, "expect": {"open_ms": 200}, "setup": true}),
            ws_open("w2", json!({"same_as": 1}), closes()),
        ],
    ));

    Ok(super::file(
        "rest",
        "REST and WebSocket request/response cases for PROFILE §5–§6 and §7 P-X1: steps against one fresh pod, with templates the runner fills and signs at run time",
        json!({"keys": {
            "alice": {"public": "pgp/keys/alice.pub.asc", "secret": "pgp/keys/alice.sec.asc"},
            "bob": {"public": "pgp/keys/bob.pub.asc", "secret": "pgp/keys/bob.sec.asc"},
            "carol": {"public": "pgp/keys/carol.pub.asc", "secret": "pgp/keys/carol.sec.asc"},
        }}),
        cases,
    ))
}

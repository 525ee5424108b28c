//! The vector generator: rebuilds the computed files of `vectors/` from fixed seeds, byte for
//! byte. Not generated: `vectors/pgp/` (its own generator) and `vectors/rest.json`, whose cases
//! are symbolic (templates the runner fills in and signs at run time) and so are kept as data,
//! edited by hand and checked against their schema and this implementation by the tests.
//!
//! Expected results are computed here from the PROFILE's text with independent reference code
//! (SHA-1, XOR, sorting written out below), never by calling the implementation under test;
//! the test suite then checks our implementation against the files, which cross-checks both.
//! The only inputs read from disk are the committed public keys under `vectors/pgp/`, whose
//! pubkeyhashes (P-G1) are recorded in `pubkeyhash.json`.

use std::collections::BTreeMap;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use crate::canon;
use crate::pgp::{self, hex_of, sha1_hex};

/// The instant at which STORE verdicts are evaluated: 2026-01-01T00:00:00Z, in ms.
pub const NOW_MS: u64 = 1_767_225_600_000;
/// Value lifetime of P-K2 (86,400 s), in ms.
pub const EXPIRY_MS: u64 = 86_400_000;
/// Ten minutes in ms (P-V3's future-timestamp bound).
pub const TEN_MIN_MS: u64 = 600_000;

/// The file names this generator writes, relative to `vectors/`.
pub const FILES: [&str; 7] = [
    "wire.json",
    "node-id.json",
    "distance.json",
    "closest.json",
    "value-key.json",
    "store.json",
    "pubkeyhash.json",
];

/// Builds every vector file: name (relative to `vectors/`) → contents.
pub fn generate(vectors_dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let docs = [
        ("wire.json", wire()),
        ("node-id.json", node_ids()),
        ("distance.json", distances()),
        ("closest.json", closest()),
        ("value-key.json", value_keys()),
        ("store.json", store()),
        ("pubkeyhash.json", pubkeyhashes(vectors_dir)?),
    ];
    for (name, doc) in docs {
        out.insert(name.to_string(), canon::pretty(&doc));
    }
    Ok(out)
}

fn file(suite: &str, description: &str, extra: Value, cases: Vec<Value>) -> Value {
    let mut doc = json!({
        "suite": suite,
        "schema": format!("schema/{suite}.schema.json"),
        "description": description,
        "cases": cases,
    });
    if let Value::Object(m) = extra {
        for (k, v) in m {
            doc[k] = v;
        }
    }
    doc
}

// ------------------------------------------------------------------------------- wire

const ADDR: &str = "127.0.0.1";
const PORT: u16 = 4000;
const TS: u64 = 1_767_225_540_000;

fn node_id(addr: &str, port: impl std::fmt::Display) -> String {
    sha1_hex(&format!("{addr}:{port}"))
}

fn contact(addr: &str, port: u16) -> Value {
    json!({"address": addr, "port": port, "nodeID": node_id(addr, port)})
}

/// The eight types: wire name, id slug, is-request.
const TYPES: [(&str, &str, bool); 8] = [
    ("PING", "ping", true),
    ("PONG", "pong", false),
    ("STORE", "store", true),
    ("STORE_REPLY", "store-reply", false),
    ("FIND_NODE", "find-node", true),
    ("FIND_NODE_REPLY", "find-node-reply", false),
    ("FIND_VALUE", "find-value", true),
    ("FIND_VALUE_REPLY", "find-value-reply", false),
];

fn store_value() -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    hex_of(&pgp::armor_message(&pgp::encrypted(&mut rng, 48)))
}

/// A valid params object for each type.
fn base_params(ty: &str) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("address".into(), ADDR.into());
    p.insert("port".into(), PORT.into());
    p.insert("nodeID".into(), node_id(ADDR, PORT).into());
    let is_request = TYPES.iter().any(|t| t.0 == ty && t.2);
    if is_request {
        p.insert(
            "rpcID".into(),
            "3f1c8a2e9b0d4c6f8e7a5b2c1d0e9f8a7b6c5d4e".into(),
        );
    } else {
        p.insert(
            "referenceID".into(),
            "3f1c8a2e9b0d4c6f8e7a5b2c1d0e9f8a7b6c5d4e".into(),
        );
    }
    let key = sha1_hex("muttr conformance lookup target");
    match ty {
        "STORE" => {
            let v = store_value();
            p.insert("key".into(), sha1_hex(&v).into());
            p.insert("value".into(), v.into());
            p.insert("timestamp".into(), TS.into());
            p.insert("publisher".into(), node_id(ADDR, 4001).into());
        }
        "STORE_REPLY" => {
            p.insert("success".into(), true.into());
        }
        "FIND_NODE" | "FIND_VALUE" => {
            p.insert("key".into(), key.into());
        }
        "FIND_NODE_REPLY" => {
            p.insert(
                "contacts".into(),
                json!([contact("10.0.0.1", 4001), contact("10.0.0.2", 4002)]),
            );
        }
        "FIND_VALUE_REPLY" => {
            p.insert("value".into(), store_value().into());
        }
        _ => {}
    }
    p
}

/// What a correct decoder makes of a valid message, written from the PROFILE: the id is the
/// `rpcID` of a request or the `referenceID` of a reply (P-W2), contacts past 20 are dropped
/// (P-W8), unknown fields are ignored (P-W1), an absent STORE `timestamp`/`publisher` is null.
fn summary(ty: &str, p: &Map<String, Value>) -> Value {
    let is_request = TYPES.iter().any(|t| t.0 == ty && t.2);
    let id = if is_request {
        &p["rpcID"]
    } else {
        &p["referenceID"]
    };
    let sender = json!({"address": p["address"], "port": p["port"], "nodeID": p["nodeID"]});
    let cut = |c: &Value| {
        let list = c.as_array().expect("contacts");
        Value::Array(
            list.iter()
                .take(20)
                .map(|c| json!({"address": c["address"], "port": c["port"], "nodeID": c["nodeID"]}))
                .collect(),
        )
    };
    let params = match ty {
        "STORE" => json!({
            "key": p["key"], "value": p["value"],
            "timestamp": p.get("timestamp").cloned().unwrap_or(Value::Null),
            "publisher": p.get("publisher").cloned().unwrap_or(Value::Null),
        }),
        "STORE_REPLY" => json!({"success": p["success"]}),
        "FIND_NODE" | "FIND_VALUE" => json!({"key": p["key"]}),
        "FIND_NODE_REPLY" => json!({"contacts": cut(&p["contacts"])}),
        "FIND_VALUE_REPLY" => match p.get("value") {
            Some(v) => json!({"value": v}),
            None => json!({"contacts": cut(&p["contacts"])}),
        },
        _ => json!({}),
    };
    json!({"type": ty, "id": id, "sender": sender, "params": params})
}

fn datagram(ty: &str, p: &Map<String, Value>) -> String {
    canon::compact(&json!({"type": ty, "params": Value::Object(p.clone())}))
}

#[derive(Default)]
struct Wire {
    cases: Vec<Value>,
}

impl Wire {
    fn valid(
        &mut self,
        id: String,
        rule: &str,
        description: &str,
        ty: &str,
        p: Map<String, Value>,
    ) {
        self.cases.push(json!({
            "id": id, "rule": rule, "description": description,
            "input": datagram(ty, &p), "verdict": "valid", "message": summary(ty, &p),
        }));
    }

    fn invalid_text(
        &mut self,
        id: String,
        rule: &str,
        alt: &[&str],
        description: &str,
        input: String,
    ) {
        let mut c = json!({
            "id": id, "rule": rule, "description": description,
            "input": input, "verdict": "invalid",
        });
        if !alt.is_empty() {
            c["alt_rules"] = json!(alt);
        }
        self.cases.push(c);
    }

    fn invalid(
        &mut self,
        id: String,
        rule: &str,
        alt: &[&str],
        description: &str,
        ty: &str,
        p: Map<String, Value>,
    ) {
        self.invalid_text(id, rule, alt, description, datagram(ty, &p));
    }
}

fn with(mut p: Map<String, Value>, k: &str, v: Value) -> Map<String, Value> {
    p.insert(k.into(), v);
    p
}

fn without(mut p: Map<String, Value>, k: &str) -> Map<String, Value> {
    p.remove(k);
    p
}

/// `address`/`port` replaced, with `nodeID` recomputed over the new text so that only the
/// named defect remains (P-W3 holds over the text as sent).
fn readdress(p: Map<String, Value>, address: &str, port: Value) -> Map<String, Value> {
    let port_text = match &port {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let p = with(p, "address", address.into());
    let p = with(p, "port", port);
    with(p, "nodeID", node_id(address, port_text).into())
}

fn wire() -> Value {
    let mut w = Wire::default();
    let ping = || base_params("PING");

    // Datagram-level defects (P-W1, P-W6), independent of the type.
    let bad: [(&str, &str, &[&str], &str, String); 20] = [
        (
            "empty",
            "P-W6",
            &["P-W1"],
            "empty datagram: not JSON",
            String::new(),
        ),
        ("not-json", "P-W6", &[], "plain text", "hello seed".into()),
        (
            "truncated-json",
            "P-W6",
            &[],
            "JSON cut short",
            "{\"type\":\"PING\",\"params\":{".into(),
        ),
        (
            "trailing-garbage",
            "P-W6",
            &[],
            "a valid message followed by garbage",
            format!("{}x", datagram("PING", &ping())),
        ),
        (
            "two-objects",
            "P-W6",
            &["P-W1"],
            "two messages in one datagram (P-W1: one per datagram)",
            format!("{0}{0}", datagram("PING", &ping())),
        ),
        (
            "json-array",
            "P-W1",
            &["P-W6"],
            "a JSON array, not an object",
            "[1,2]".into(),
        ),
        (
            "json-string",
            "P-W1",
            &["P-W6"],
            "a JSON string",
            "\"PING\"".into(),
        ),
        (
            "json-number",
            "P-W1",
            &["P-W6"],
            "a JSON number",
            "42".into(),
        ),
        ("json-null", "P-W1", &["P-W6"], "JSON null", "null".into()),
        ("json-true", "P-W1", &["P-W6"], "JSON true", "true".into()),
        (
            "missing-type",
            "P-W6",
            &[],
            "object without `type`",
            canon::compact(&json!({"params": ping()})),
        ),
        (
            "type-number",
            "P-W6",
            &[],
            "`type` is a number",
            canon::compact(&json!({"type": 1, "params": ping()})),
        ),
        (
            "type-null",
            "P-W6",
            &[],
            "`type` is null",
            canon::compact(&json!({"type": null, "params": ping()})),
        ),
        (
            "type-unknown",
            "P-W6",
            &[],
            "unknown type PANG",
            canon::compact(&json!({"type": "PANG", "params": ping()})),
        ),
        (
            "type-lowercase",
            "P-W6",
            &[],
            "type names are case-sensitive: `ping`",
            canon::compact(&json!({"type": "ping", "params": ping()})),
        ),
        (
            "type-empty",
            "P-W6",
            &[],
            "empty type",
            canon::compact(&json!({"type": "", "params": ping()})),
        ),
        (
            "type-padded",
            "P-W6",
            &[],
            "type with a trailing space",
            canon::compact(&json!({"type": "PING ", "params": ping()})),
        ),
        (
            "missing-params",
            "P-W6",
            &["P-W1"],
            "no `params` object",
            canon::compact(&json!({"type": "PING"})),
        ),
        (
            "params-array",
            "P-W1",
            &["P-W6"],
            "`params` is an array",
            canon::compact(&json!({"type": "PING", "params": []})),
        ),
        (
            "params-string",
            "P-W1",
            &["P-W6"],
            "`params` is a string",
            canon::compact(&json!({"type": "PING", "params": "x"})),
        ),
    ];
    for (slug, rule, alt, desc, input) in bad {
        w.invalid_text(format!("wire.datagram.{slug}"), rule, alt, desc, input);
    }
    w.cases.push(json!({
        "id": "wire.datagram.not-utf8", "rule": "P-W1", "description": "bytes that are not UTF-8",
        "input_hex": "fffe7b7d", "verdict": "invalid",
    }));
    let mut bad_utf8 = datagram("PING", &ping()).into_bytes();
    let pos = bad_utf8.len() - 3;
    bad_utf8.insert(pos, 0xc3); // a lone UTF-8 lead byte inside the rpcID string
    w.cases.push(json!({
        "id": "wire.datagram.invalid-utf8-in-string", "rule": "P-W1", "alt_rules": ["P-W6", "P-W4"],
        "description": "a message whose rpcID holds an invalid UTF-8 sequence",
        "input_hex": hex::encode(&bad_utf8), "verdict": "invalid",
    }));
    let small = datagram("PING", &ping());
    w.cases.push(json!({
        "id": "wire.datagram.max-size-accepted", "rule": "P-W1",
        "description": "a PING padded with trailing JSON whitespace to exactly 65,507 bytes must be accepted",
        "input": small, "pad_to": 65_507, "verdict": "valid", "message": summary("PING", &ping()),
    }));
    w.cases.push(json!({
        "id": "wire.datagram.oversize", "rule": "P-W1",
        "description": "65,508 bytes: larger than any IPv4 UDP payload",
        "input": small, "pad_to": 65_508, "verdict": "invalid",
    }));

    // Every type: valid, and every envelope defect (P-W2, P-W3, P-W4).
    for (ty, slug, is_request) in TYPES {
        let b = || base_params(ty);
        let idf = if is_request { "rpcID" } else { "referenceID" };
        w.valid(
            format!("wire.{slug}.valid"),
            "P-W2",
            &format!("a well-formed {ty}"),
            ty,
            b(),
        );
        let t = |s: &str| format!("wire.{slug}.{s}");
        w.invalid(
            t("missing-address"),
            "P-W2",
            &[],
            "no `address`",
            ty,
            without(b(), "address"),
        );
        w.invalid(
            t("address-number"),
            "P-W2",
            &["P-W6"],
            "`address` is a number",
            ty,
            with(b(), "address", json!(2130706433)),
        );
        w.invalid(
            t("address-hostname"),
            "P-W2",
            &[],
            "`address` is a host name, not an IP",
            ty,
            readdress(b(), "localhost", json!(PORT)),
        );
        w.invalid(
            t("address-bracketed-ipv6"),
            "P-W2",
            &[],
            "IPv6 in brackets",
            ty,
            readdress(b(), "[::1]", json!(PORT)),
        );
        w.invalid(
            t("address-with-port"),
            "P-W2",
            &[],
            "`address` carries a port",
            ty,
            readdress(b(), "127.0.0.1:4000", json!(PORT)),
        );
        w.invalid(
            t("address-empty"),
            "P-W2",
            &[],
            "empty `address`",
            ty,
            readdress(b(), "", json!(PORT)),
        );
        w.invalid(
            t("missing-port"),
            "P-W2",
            &[],
            "no `port`",
            ty,
            without(b(), "port"),
        );
        w.invalid(
            t("port-zero"),
            "P-W2",
            &[],
            "port 0",
            ty,
            readdress(b(), ADDR, json!(0)),
        );
        w.invalid(
            t("port-65536"),
            "P-W2",
            &[],
            "port above 65535",
            ty,
            readdress(b(), ADDR, json!(65_536)),
        );
        w.invalid(
            t("port-negative"),
            "P-W2",
            &[],
            "negative port",
            ty,
            readdress(b(), ADDR, json!(-4000)),
        );
        w.invalid(
            t("port-string"),
            "P-W2",
            &["P-W6"],
            "port as a string",
            ty,
            readdress(b(), ADDR, json!("4000")),
        );
        w.invalid(
            t("port-fraction"),
            "P-W2",
            &[],
            "port with a fraction",
            ty,
            readdress(b(), ADDR, json!(4000.5)),
        );
        w.invalid(
            t("missing-node-id"),
            "P-W2",
            &[],
            "no `nodeID`",
            ty,
            without(b(), "nodeID"),
        );
        w.invalid(
            t("node-id-uppercase"),
            "P-W4",
            &["P-W3"],
            "`nodeID` in uppercase hex",
            ty,
            with(b(), "nodeID", node_id(ADDR, PORT).to_uppercase().into()),
        );
        w.invalid(
            t("node-id-short"),
            "P-W4",
            &["P-W3"],
            "`nodeID` of 39 characters",
            ty,
            with(b(), "nodeID", node_id(ADDR, PORT)[..39].into()),
        );
        w.invalid(
            t("node-id-number"),
            "P-W6",
            &["P-W2", "P-W4"],
            "`nodeID` is a number",
            ty,
            with(b(), "nodeID", json!(12345)),
        );
        w.invalid(
            t("node-id-mismatch"),
            "P-W3",
            &[],
            "`nodeID` is sha1 of another port",
            ty,
            with(b(), "nodeID", node_id(ADDR, 4001).into()),
        );
        w.invalid(
            t("node-id-of-bytes-not-text"),
            "P-W3",
            &[],
            "`nodeID` is sha1 of something other than the text address:port",
            ty,
            with(b(), "nodeID", sha1_hex("127.0.0.1 4000").into()),
        );
        w.invalid(
            t(&format!("missing-{}", kebab(idf))),
            "P-W2",
            &[],
            &format!("no `{idf}`"),
            ty,
            without(b(), idf),
        );
        w.invalid(
            t(&format!("{}-empty", kebab(idf))),
            "P-W4",
            &[],
            &format!("empty `{idf}`"),
            ty,
            with(b(), idf, json!("")),
        );
        w.invalid(
            t(&format!("{}-129-chars", kebab(idf))),
            "P-W4",
            &[],
            &format!("`{idf}` of 129 characters"),
            ty,
            with(b(), idf, json!("a".repeat(129))),
        );
        w.invalid(
            t(&format!("{}-control-char", kebab(idf))),
            "P-W4",
            &[],
            &format!("`{idf}` with a tab"),
            ty,
            with(b(), idf, json!("ab\tcd")),
        );
        w.invalid(
            t(&format!("{}-non-ascii", kebab(idf))),
            "P-W4",
            &[],
            &format!("`{idf}` with a non-ASCII letter"),
            ty,
            with(b(), idf, json!("réf")),
        );
        w.invalid(
            t(&format!("{}-number", kebab(idf))),
            "P-W4",
            &["P-W6"],
            &format!("`{idf}` is a number"),
            ty,
            with(b(), idf, json!(42)),
        );
        if is_request {
            w.invalid(
                t("also-reference-id"),
                "P-W2",
                &[],
                "a request carrying `referenceID` too",
                ty,
                with(b(), "referenceID", json!("other")),
            );
        } else {
            let p = with(without(b(), "referenceID"), "rpcID", json!("3f1c8a2e"));
            w.invalid(
                t("rpc-id-instead-of-reference-id"),
                "P-W2",
                &[],
                "a reply with `rpcID` but no `referenceID`",
                ty,
                p,
            );
        }
    }

    // Valid variants that exercise a specific rule.
    let p = ping();
    w.valid(
        "wire.ping.ipv6-sender".into(),
        "P-W2",
        "IPv6 sender without brackets",
        "PING",
        readdress(p.clone(), "::1", json!(PORT)),
    );
    w.valid(
        "wire.ping.ipv6-global-sender".into(),
        "P-W3",
        "nodeID over the IPv6 text 2001:db8::7",
        "PING",
        readdress(p.clone(), "2001:db8::7", json!(9000)),
    );
    w.valid(
        "wire.ping.unknown-param-ignored".into(),
        "P-W1",
        "unknown params are ignored",
        "PING",
        with(p.clone(), "mip42", json!({"x": [1, 2]})),
    );
    w.valid(
        "wire.ping.last-seen-ignored".into(),
        "P-W1",
        "kad's `lastSeen` is an unknown field",
        "PING",
        with(p.clone(), "lastSeen", json!(1)),
    );
    let top =
        canon::compact(&json!({"type": "PING", "params": Value::Object(p.clone()), "mip": true}));
    w.cases.push(json!({
        "id": "wire.ping.unknown-top-level-field-ignored", "rule": "P-W1",
        "description": "unknown top-level fields are ignored", "input": top, "verdict": "valid",
        "message": summary("PING", &p),
    }));
    w.valid(
        "wire.ping.rpc-id-1-char".into(),
        "P-W4",
        "shortest rpcID",
        "PING",
        with(p.clone(), "rpcID", json!("x")),
    );
    w.valid(
        "wire.ping.rpc-id-128-chars".into(),
        "P-W4",
        "longest rpcID",
        "PING",
        with(p.clone(), "rpcID", json!("z".repeat(128))),
    );
    w.valid(
        "wire.ping.rpc-id-printable-punctuation".into(),
        "P-W4",
        "space, quote, backslash and tilde are printable ASCII",
        "PING",
        with(p.clone(), "rpcID", json!(" \"\\~{}")),
    );
    w.valid(
        "wire.ping.rpc-id-uuid".into(),
        "P-W4",
        "a UUID-shaped rpcID (JavaScript kad)",
        "PING",
        with(
            p.clone(),
            "rpcID",
            json!("6f1a0c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"),
        ),
    );
    w.valid(
        "wire.ping.port-1".into(),
        "P-W2",
        "lowest port",
        "PING",
        readdress(p.clone(), ADDR, json!(1)),
    );
    w.valid(
        "wire.ping.port-65535".into(),
        "P-W2",
        "highest port",
        "PING",
        readdress(p.clone(), ADDR, json!(65_535)),
    );
    w.valid(
        "wire.ping.private-address".into(),
        "P-W3",
        "nodeID of 192.168.1.20:4001",
        "PING",
        readdress(p.clone(), "192.168.1.20", json!(4001)),
    );
    w.valid(
        "wire.pong.also-rpc-id-and-last-seen".into(),
        "P-W2",
        "a reply may carry an extra rpcID and lastSeen (JavaScript kad); referenceID wins",
        "PONG",
        with(
            with(base_params("PONG"), "rpcID", json!("kad-own-id")),
            "lastSeen",
            json!(1_767_225_600_000u64),
        ),
    );
    let s = base_params("STORE");
    w.valid(
        "wire.store.without-timestamp".into(),
        "P-V3",
        "decodes; the STORE is then refused with success:false",
        "STORE",
        without(s.clone(), "timestamp"),
    );
    w.valid(
        "wire.store.without-publisher".into(),
        "P-V3",
        "decodes; the STORE is then refused with success:false",
        "STORE",
        without(s.clone(), "publisher"),
    );
    w.valid(
        "wire.store.timestamp-zero".into(),
        "P-W5",
        "timestamp 0 is an integer count of ms",
        "STORE",
        with(s.clone(), "timestamp", json!(0)),
    );
    w.valid(
        "wire.store-reply.refused".into(),
        "P-W2",
        "success:false",
        "STORE_REPLY",
        with(base_params("STORE_REPLY"), "success", json!(false)),
    );
    let fnr = base_params("FIND_NODE_REPLY");
    let many = |n: u16| Value::Array((1..=n).map(|i| contact("10.0.1.1", 5000 + i)).collect());
    w.valid(
        "wire.find-node-reply.no-contacts".into(),
        "P-W8",
        "empty contact list",
        "FIND_NODE_REPLY",
        with(fnr.clone(), "contacts", json!([])),
    );
    w.valid(
        "wire.find-node-reply.20-contacts".into(),
        "P-W8",
        "receivers MUST accept up to 20 contacts",
        "FIND_NODE_REPLY",
        with(fnr.clone(), "contacts", many(20)),
    );
    w.valid(
        "wire.find-node-reply.21-contacts-cut".into(),
        "P-W8",
        "the 21st contact is dropped",
        "FIND_NODE_REPLY",
        with(fnr.clone(), "contacts", many(21)),
    );
    w.valid(
        "wire.find-node-reply.ipv6-contact".into(),
        "P-W2",
        "a contact at an IPv6 address",
        "FIND_NODE_REPLY",
        with(
            fnr.clone(),
            "contacts",
            json!([contact("2001:db8::2", 4000)]),
        ),
    );
    w.valid(
        "wire.find-value-reply.contacts".into(),
        "P-W9",
        "contacts instead of a value",
        "FIND_VALUE_REPLY",
        with(
            without(base_params("FIND_VALUE_REPLY"), "value"),
            "contacts",
            json!([contact("10.0.0.3", 4003)]),
        ),
    );
    w.valid(
        "wire.find-value-reply.no-contacts".into(),
        "P-W9",
        "an empty contact list is still `contacts`",
        "FIND_VALUE_REPLY",
        with(
            without(base_params("FIND_VALUE_REPLY"), "value"),
            "contacts",
            json!([]),
        ),
    );

    // Type-specific defects.
    for (ty, slug) in [
        ("FIND_NODE", "find-node"),
        ("FIND_VALUE", "find-value"),
        ("STORE", "store"),
    ] {
        let b = || base_params(ty);
        let t = |s: &str| format!("wire.{slug}.{s}");
        let k = b()["key"].as_str().unwrap().to_string();
        w.invalid(
            t("missing-key"),
            "P-W6",
            &[],
            "no `key`",
            ty,
            without(b(), "key"),
        );
        w.invalid(
            t("key-uppercase"),
            "P-W4",
            &[],
            "`key` in uppercase hex",
            ty,
            with(b(), "key", k.to_uppercase().into()),
        );
        w.invalid(
            t("key-short"),
            "P-W4",
            &[],
            "`key` of 38 characters",
            ty,
            with(b(), "key", k[..38].into()),
        );
        w.invalid(
            t("key-long"),
            "P-W4",
            &[],
            "`key` of 42 characters",
            ty,
            with(b(), "key", format!("{k}00").into()),
        );
        w.invalid(
            t("key-not-hex"),
            "P-W4",
            &[],
            "`key` with non-hex letters",
            ty,
            with(b(), "key", format!("zz{}", &k[2..]).into()),
        );
        w.invalid(
            t("key-number"),
            "P-W6",
            &["P-W4"],
            "`key` is a number",
            ty,
            with(b(), "key", json!(7)),
        );
    }
    let st = || base_params("STORE");
    w.invalid(
        "wire.store.missing-value".into(),
        "P-W6",
        &[],
        "no `value`",
        "STORE",
        without(st(), "value"),
    );
    w.invalid(
        "wire.store.value-number".into(),
        "P-W6",
        &[],
        "`value` is a number",
        "STORE",
        with(st(), "value", json!(1)),
    );
    w.invalid(
        "wire.store.value-object".into(),
        "P-W6",
        &[],
        "`value` is an object",
        "STORE",
        with(st(), "value", json!({})),
    );
    w.invalid(
        "wire.store.timestamp-negative".into(),
        "P-W5",
        &[],
        "negative timestamp",
        "STORE",
        with(st(), "timestamp", json!(-1)),
    );
    w.invalid(
        "wire.store.timestamp-fraction".into(),
        "P-W5",
        &[],
        "timestamp with a fraction",
        "STORE",
        with(st(), "timestamp", json!(1.5)),
    );
    w.invalid(
        "wire.store.timestamp-string".into(),
        "P-W5",
        &["P-W6"],
        "timestamp as a string",
        "STORE",
        with(st(), "timestamp", json!("1767225540000")),
    );
    w.invalid(
        "wire.store.timestamp-iso-date".into(),
        "P-W5",
        &["P-W6"],
        "timestamp as an ISO date",
        "STORE",
        with(st(), "timestamp", json!("2026-01-01T00:00:00Z")),
    );
    w.invalid(
        "wire.store.publisher-uppercase".into(),
        "P-W4",
        &[],
        "publisher in uppercase hex",
        "STORE",
        with(st(), "publisher", node_id(ADDR, 4001).to_uppercase().into()),
    );
    w.invalid(
        "wire.store.publisher-short".into(),
        "P-W4",
        &[],
        "publisher of 10 characters",
        "STORE",
        with(st(), "publisher", json!("0123456789")),
    );
    w.invalid(
        "wire.store.publisher-number".into(),
        "P-W6",
        &["P-W4"],
        "publisher is a number",
        "STORE",
        with(st(), "publisher", json!(5)),
    );
    let sr = || base_params("STORE_REPLY");
    w.invalid(
        "wire.store-reply.missing-success".into(),
        "P-W6",
        &[],
        "no `success`",
        "STORE_REPLY",
        without(sr(), "success"),
    );
    w.invalid(
        "wire.store-reply.success-string".into(),
        "P-W6",
        &[],
        "`success` is a string",
        "STORE_REPLY",
        with(sr(), "success", json!("true")),
    );
    w.invalid(
        "wire.store-reply.success-number".into(),
        "P-W6",
        &[],
        "`success` is 1",
        "STORE_REPLY",
        with(sr(), "success", json!(1)),
    );
    let nr = || base_params("FIND_NODE_REPLY");
    w.invalid(
        "wire.find-node-reply.missing-contacts".into(),
        "P-W6",
        &[],
        "no `contacts`",
        "FIND_NODE_REPLY",
        without(nr(), "contacts"),
    );
    w.invalid(
        "wire.find-node-reply.contacts-object".into(),
        "P-W6",
        &[],
        "`contacts` is an object",
        "FIND_NODE_REPLY",
        with(nr(), "contacts", json!({})),
    );
    w.invalid(
        "wire.find-node-reply.contacts-string".into(),
        "P-W6",
        &[],
        "`contacts` is a string",
        "FIND_NODE_REPLY",
        with(nr(), "contacts", json!("10.0.0.1:4001")),
    );
    let vr = || base_params("FIND_VALUE_REPLY");
    w.invalid(
        "wire.find-value-reply.neither".into(),
        "P-W9",
        &["P-W6"],
        "neither `value` nor `contacts`",
        "FIND_VALUE_REPLY",
        without(vr(), "value"),
    );
    w.invalid(
        "wire.find-value-reply.both".into(),
        "P-W9",
        &[],
        "both `value` and `contacts`",
        "FIND_VALUE_REPLY",
        with(vr(), "contacts", json!([])),
    );
    w.invalid(
        "wire.find-value-reply.value-number".into(),
        "P-W6",
        &["P-W9"],
        "`value` is a number",
        "FIND_VALUE_REPLY",
        with(vr(), "value", json!(3)),
    );
    w.invalid(
        "wire.find-value-reply.contacts-object".into(),
        "P-W6",
        &["P-W9"],
        "`contacts` is an object",
        "FIND_VALUE_REPLY",
        with(without(vr(), "value"), "contacts", json!({})),
    );

    file(
        "wire",
        "Datagrams (PROFILE §1). `valid` cases give what a decoder must read; `invalid` ones must be dropped, and name the rule they break.",
        json!({}),
        w.cases,
    )
}

fn kebab(field: &str) -> &'static str {
    match field {
        "rpcID" => "rpc-id",
        _ => "reference-id",
    }
}

// ---------------------------------------------------------------------------- node ids

fn node_ids() -> Value {
    let list: [(&str, &str, u16, &str); 12] = [
        ("loopback-4000", "127.0.0.1", 4000, "the PROFILE's example"),
        ("loopback-port-1", "127.0.0.1", 1, "lowest port"),
        ("loopback-port-65535", "127.0.0.1", 65_535, "highest port"),
        ("private-10", "10.0.0.1", 4001, "a private IPv4 address"),
        (
            "private-192",
            "192.168.1.20",
            4001,
            "another private address",
        ),
        (
            "public-ipv4",
            "203.0.113.9",
            53,
            "a documentation IPv4 address",
        ),
        (
            "broadcast-text",
            "255.255.255.255",
            65_535,
            "longest IPv4 text",
        ),
        (
            "ipv6-loopback",
            "::1",
            4000,
            "IPv6 text has no brackets: sha1(\"::1:4000\")",
        ),
        ("ipv6-global", "2001:db8::7", 9000, "compressed IPv6 text"),
        ("ipv6-link-local", "fe80::1", 4000, "link-local IPv6"),
        (
            "ipv6-mapped",
            "::ffff:10.0.0.1",
            4000,
            "an IPv4-mapped IPv6 text, hashed as written",
        ),
        (
            "ipv6-uncompressed",
            "2001:db8:0:0:0:0:0:7",
            9000,
            "the text as transmitted is hashed, not a canonical form",
        ),
    ];
    let cases = list
        .iter()
        .map(|(slug, addr, port, desc)| {
            json!({
                "id": format!("node-id.{slug}"), "rule": "P-W3", "description": desc,
                "address": addr, "port": port, "node_id": node_id(addr, port),
            })
        })
        .collect();
    file(
        "node-id",
        "nodeID = lowercase hex SHA-1 of the UTF-8 text address + \":\" + port (P-W3, P-W4).",
        json!({}),
        cases,
    )
}

// ---------------------------------------------------------------------------- distances

fn id_with(bytes: &[(usize, u8)]) -> [u8; 20] {
    let mut a = [0u8; 20];
    for &(i, b) in bytes {
        a[i] = b;
    }
    a
}

fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    let mut d = [0u8; 20];
    for i in 0..20 {
        d[i] = a[i] ^ b[i];
    }
    d
}

/// floor(log2(distance)), i.e. the position of the highest set bit counted from the least
/// significant end; null for distance 0.
fn bucket(d: &[u8; 20]) -> Value {
    for (i, &byte) in d.iter().enumerate() {
        if byte != 0 {
            let top = 7 - byte.leading_zeros() as usize;
            return json!((19 - i) * 8 + top);
        }
    }
    Value::Null
}

fn unhex(s: &str) -> [u8; 20] {
    let mut a = [0u8; 20];
    hex::decode_to_slice(s, &mut a).expect("40 hex chars");
    a
}

fn distances() -> Value {
    let n1 = unhex(&node_id(ADDR, 4000));
    let n2 = unhex(&node_id(ADDR, 4001));
    let n3 = unhex(&node_id("10.0.0.1", 4001));
    let ones = [0xffu8; 20];
    let list: Vec<(&str, &str, [u8; 20], [u8; 20])> = vec![
        (
            "identical",
            "a node is at distance 0 from itself, in no bucket",
            n1,
            n1,
        ),
        (
            "lowest-bit",
            "ids differing in the last bit: bucket 0",
            [0; 20],
            id_with(&[(19, 1)]),
        ),
        (
            "bit-7",
            "highest bit of the last byte: bucket 7",
            [0; 20],
            id_with(&[(19, 0x80)]),
        ),
        (
            "bit-8",
            "lowest bit of the second-to-last byte: bucket 8",
            [0; 20],
            id_with(&[(18, 1)]),
        ),
        (
            "bit-152",
            "lowest bit of the first byte: bucket 152",
            [0; 20],
            id_with(&[(0, 1)]),
        ),
        (
            "top-bit",
            "highest bit: bucket 159",
            [0; 20],
            id_with(&[(0, 0x80)]),
        ),
        (
            "all-bits",
            "complement ids: maximal distance, bucket 159",
            [0; 20],
            ones,
        ),
        (
            "several-bits",
            "bucket is the highest differing bit only",
            id_with(&[(5, 0x10), (19, 0xff)]),
            id_with(&[(5, 0x03), (19, 0x0f)]),
        ),
        (
            "real-adjacent-ports",
            "sha1(127.0.0.1:4000) vs sha1(127.0.0.1:4001)",
            n1,
            n2,
        ),
        (
            "real-other-host",
            "sha1(127.0.0.1:4000) vs sha1(10.0.0.1:4001)",
            n1,
            n3,
        ),
        (
            "symmetric",
            "d(b, a) = d(a, b): sha1(10.0.0.1:4001) vs sha1(127.0.0.1:4000)",
            n3,
            n1,
        ),
        ("from-ones", "distance from all-ones to a real id", ones, n2),
    ];
    let cases = list
        .into_iter()
        .map(|(slug, desc, a, b)| {
            let d = xor(&a, &b);
            json!({
                "id": format!("distance.{slug}"), "rule": "P-K1", "description": desc,
                "a": hex::encode(a), "b": hex::encode(b),
                "distance": hex::encode(d), "bucket": bucket(&d),
            })
        })
        .collect();
    file(
        "distance",
        "XOR distance (P-K1) and the k-bucket index: floor(log2(distance)), 0..159, null for distance 0.",
        json!({}),
        cases,
    )
}

// ---------------------------------------------------------------------------- closest

/// slug, rule, description, target, ids, k.
type ClosestCase<'a> = (&'a str, &'a str, &'a str, String, Vec<String>, usize);

fn closest() -> Value {
    let ports =
        |from: u16, n: u16| -> Vec<String> { (from..from + n).map(|p| node_id(ADDR, p)).collect() };
    let h = |a: [u8; 20]| hex::encode(a);
    let list: Vec<ClosestCase<'_>> = vec![
        (
            "big-endian",
            "P-K1",
            "distances compare as big-endian integers: a difference in the last byte is closer than one in the first",
            h([0; 20]),
            vec![h(id_with(&[(0, 1)])), h(id_with(&[(19, 0xff)]))],
            2,
        ),
        (
            "xor-not-numeric",
            "P-K1",
            "0xc0… is XOR-closer to 0x80… than the numerically adjacent 0x7f…",
            h(id_with(&[(0, 0x80)])),
            vec![
                h(id_with(&[(0, 0x7f), (19, 0xff)])),
                h(id_with(&[(0, 0xc0)])),
            ],
            2,
        ),
        (
            "exact-match-first",
            "P-W8",
            "an id equal to the target is closest",
            node_id(ADDR, 4005),
            ports(4000, 8),
            3,
        ),
        (
            "k-3-of-10",
            "P-W8",
            "the reply width: 3 closest of 10, closest first",
            node_id("10.9.8.7", 6000),
            ports(4000, 10),
            3,
        ),
        (
            "k-20-of-30",
            "P-K2",
            "k = 20 closest of 30",
            node_id("10.9.8.7", 6001),
            ports(5000, 30),
            20,
        ),
        (
            "k-larger-than-set",
            "P-W8",
            "fewer ids than k: all of them, sorted",
            node_id("10.9.8.7", 6002),
            ports(7000, 4),
            20,
        ),
        (
            "k-1",
            "P-W8",
            "only the closest",
            node_id("10.9.8.7", 6003),
            ports(8000, 12),
            1,
        ),
        (
            "k-0",
            "P-W8",
            "k = 0 gives nothing",
            node_id("10.9.8.7", 6004),
            ports(9000, 3),
            0,
        ),
    ];
    let cases = list
        .into_iter()
        .map(|(slug, rule, desc, target, ids, k)| {
            let t = unhex(&target);
            let mut sorted: Vec<(String, [u8; 20])> = ids
                .iter()
                .map(|i| (i.clone(), xor(&unhex(i), &t)))
                .collect();
            sorted.sort_by_key(|a| a.1);
            let expected: Vec<String> = sorted.into_iter().take(k).map(|(i, _)| i).collect();
            json!({
                "id": format!("closest.{slug}"), "rule": rule, "description": desc,
                "target": target, "ids": ids, "k": k, "closest": expected,
            })
        })
        .collect();
    file(
        "closest",
        "The k ids closest to a target by XOR distance, closest first (P-K1, P-W8).",
        json!({}),
        cases,
    )
}

// ---------------------------------------------------------------------------- values

fn value_keys() -> Value {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let small = pgp::armor_message(&pgp::encrypted(&mut rng, 40));
    let mut pk = pgp::pkesk(&mut rng);
    pk.extend(pgp::seip(&mut rng, 200));
    let pkesk = pgp::armor_message(&pk);
    let large = pgp::armor_message(&pgp::encrypted(&mut rng, 3000));
    let crlf = pgp::armor_message(&pgp::encrypted(&mut rng, 60)).replace('\n', "\r\n");
    let no_nl = pgp::armor_message(&pgp::encrypted(&mut rng, 60))
        .trim_end()
        .to_string();
    let list = [
        (
            "skesk-seip",
            "a small symmetric-key encrypted message",
            small,
        ),
        ("pkesk-seip", "a public-key encrypted message", pkesk),
        ("large", "a 3,000-byte ciphertext (many armor lines)", large),
        (
            "crlf",
            "armor with CRLF line endings: the text as transmitted is hashed",
            crlf,
        ),
        ("no-final-newline", "armor without a final newline", no_nl),
    ];
    let mut cases = Vec::new();
    for (slug, desc, armored) in list {
        let value = hex_of(&armored);
        cases.push(json!({
            "id": format!("value-key.{slug}"), "rule": "P-V2", "description": desc,
            "armored": armored, "value": value, "key": sha1_hex(&value),
            "not_key": sha1_hex(&armored),
        }));
    }
    file(
        "value-key",
        "value = lowercase hex of the armored text (P-V1); key = SHA-1 of that hex text (P-V2), never SHA-1 of the armored text (`not_key`, libmuttr's reading).",
        json!({}),
        cases,
    )
}

fn store() -> Value {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let publisher = node_id(ADDR, 4001);
    let ts = NOW_MS - 60_000;
    let mut cases = Vec::new();
    let mut push = |slug: &str,
                    rule: &str,
                    strength: &str,
                    verdict: &str,
                    desc: &str,
                    key: String,
                    value: String,
                    timestamp: Option<u64>,
                    publisher: Option<&str>| {
        let mut params = json!({"key": key, "value": value});
        if let Some(t) = timestamp {
            params["timestamp"] = json!(t);
        }
        if let Some(p) = publisher {
            params["publisher"] = json!(p);
        }
        cases.push(json!({
            "id": format!("store.{slug}"), "rule": rule, "strength": strength, "description": desc,
            "params": params, "verdict": verdict,
        }));
    };
    let ok = |binary: Vec<u8>| hex_of(&pgp::armor_message(&binary));
    let keyed = |v: &String| sha1_hex(v);

    let v = ok(pgp::encrypted(&mut rng, 64));
    push(
        "accept.skesk-seip",
        "P-V3",
        "MUST",
        "accept",
        "a valid STORE",
        keyed(&v),
        v.clone(),
        Some(ts),
        Some(&publisher),
    );
    let mut pk = pgp::pkesk(&mut rng);
    pk.extend(pgp::seip(&mut rng, 100));
    let vpk = ok(pk);
    push(
        "accept.pkesk-seip",
        "P-V1",
        "MUST",
        "accept",
        "public-key encrypted",
        keyed(&vpk),
        vpk,
        Some(ts),
        Some(&publisher),
    );
    let mut two = pgp::pkesk(&mut rng);
    two.extend(pgp::skesk(&mut rng));
    two.extend(pgp::seip(&mut rng, 100));
    let vtwo = ok(two);
    push(
        "accept.two-esks",
        "P-V1",
        "MUST",
        "accept",
        "encrypted to two recipients",
        keyed(&vtwo),
        vtwo,
        Some(ts),
        Some(&publisher),
    );
    let mut mk = pgp::marker();
    mk.extend(pgp::encrypted(&mut rng, 64));
    let vmk = ok(mk);
    push(
        "accept.marker-first",
        "P-V1",
        "MUST",
        "accept",
        "a Marker packet before the message is ignored (RFC 9580 §5.8)",
        keyed(&vmk),
        vmk,
        Some(ts),
        Some(&publisher),
    );
    let vcrlf = hex_of(&pgp::armor_message(&pgp::encrypted(&mut rng, 64)).replace('\n', "\r\n"));
    push(
        "accept.crlf-armor",
        "P-V1",
        "MUST",
        "accept",
        "armor with CRLF line endings",
        keyed(&vcrlf),
        vcrlf,
        Some(ts),
        Some(&publisher),
    );
    let vbig = ok(pgp::encrypted(&mut rng, 20_000));
    push(
        "accept.large",
        "P-V1",
        "MUST",
        "accept",
        "a 20,000-byte ciphertext",
        keyed(&vbig),
        vbig,
        Some(ts),
        Some(&publisher),
    );
    push(
        "accept.timestamp-now",
        "P-V3",
        "MUST",
        "accept",
        "timestamp equal to the receiver's clock",
        keyed(&v),
        v.clone(),
        Some(NOW_MS),
        Some(&publisher),
    );
    push(
        "accept.timestamp-10-min-ahead",
        "P-V3",
        "MUST",
        "accept",
        "exactly 10 minutes ahead is not *more* than 10 minutes",
        keyed(&v),
        v.clone(),
        Some(NOW_MS + TEN_MIN_MS),
        Some(&publisher),
    );
    push(
        "accept.timestamp-1-hour-old",
        "P-K2",
        "MUST",
        "accept",
        "an hour old: well inside the 24 h expiry",
        keyed(&v),
        v.clone(),
        Some(NOW_MS - 3_600_000),
        Some(&publisher),
    );
    push(
        "accept.publisher-other-than-sender",
        "P-V3",
        "MUST",
        "accept",
        "the publisher need not be the sender (replication)",
        keyed(&v),
        v.clone(),
        Some(ts),
        Some(&node_id("10.0.0.9", 4009)),
    );

    push(
        "refuse.key-mismatch",
        "P-V3",
        "MUST",
        "refuse",
        "key is not sha1(value)",
        sha1_hex("some other text"),
        v.clone(),
        Some(ts),
        Some(&publisher),
    );
    let armored = pgp::armor_message(&pgp::encrypted(&mut rng, 64));
    push(
        "refuse.libmuttr-key",
        "P-V2",
        "MUST",
        "refuse",
        "key = sha1(armored text), libmuttr's reading",
        sha1_hex(&armored),
        hex_of(&armored),
        Some(ts),
        Some(&publisher),
    );
    let up = v.to_uppercase();
    push(
        "refuse.value-uppercase-hex",
        "P-V1",
        "MUST",
        "refuse",
        "uppercase hex (key matches the text as sent)",
        keyed(&up),
        up,
        Some(ts),
        Some(&publisher),
    );
    let odd = format!("{v}0");
    push(
        "refuse.value-odd-length",
        "P-V1",
        "MUST",
        "refuse",
        "hex of odd length",
        keyed(&odd),
        odd,
        Some(ts),
        Some(&publisher),
    );
    let nonhex = format!("zz{}", &v[2..]);
    push(
        "refuse.value-not-hex",
        "P-V1",
        "MUST",
        "refuse",
        "non-hex letters",
        keyed(&nonhex),
        nonhex,
        Some(ts),
        Some(&publisher),
    );
    let prefixed = format!("0x{v}");
    push(
        "refuse.value-0x-prefix",
        "P-V1",
        "MUST",
        "refuse",
        "hex with a 0x prefix",
        keyed(&prefixed),
        prefixed,
        Some(ts),
        Some(&publisher),
    );
    push(
        "refuse.value-empty",
        "P-V1",
        "MUST",
        "refuse",
        "empty value",
        sha1_hex(""),
        String::new(),
        Some(ts),
        Some(&publisher),
    );
    let plain = hex_of("hello, this is not an OpenPGP message\n");
    push(
        "refuse.value-plain-text",
        "P-V1",
        "MUST",
        "refuse",
        "hex of plain text: no armor",
        keyed(&plain),
        plain,
        Some(ts),
        Some(&publisher),
    );
    let raw = hex::encode(pgp::encrypted(&mut rng, 64));
    push(
        "refuse.value-binary-not-armored",
        "P-V1",
        "MUST",
        "refuse",
        "hex of a binary (unarmored) encrypted message",
        keyed(&raw),
        raw,
        Some(ts),
        Some(&publisher),
    );
    let keyblock = hex_of(&pgp::armor_as(
        &pgp::encrypted(&mut rng, 64),
        sequoia_openpgp::armor::Kind::PublicKey,
    ));
    push(
        "refuse.value-public-key-armor",
        "P-V1",
        "MUST",
        "refuse",
        "armored as a PUBLIC KEY BLOCK, not a PGP MESSAGE",
        keyed(&keyblock),
        keyblock,
        Some(ts),
        Some(&publisher),
    );
    let full = pgp::armor_message(&pgp::encrypted(&mut rng, 64));
    let no_end = hex_of(full.split("-----END").next().unwrap_or_default());
    push(
        "refuse.value-armor-no-end",
        "P-V1",
        "MUST",
        "refuse",
        "armor without its END line",
        keyed(&no_end),
        no_end,
        Some(ts),
        Some(&publisher),
    );
    let bad64 =
        hex_of("-----BEGIN PGP MESSAGE-----\n\n!!!!not*base64!!!!\n-----END PGP MESSAGE-----\n");
    push(
        "refuse.value-armor-bad-base64",
        "P-V1",
        "MUST",
        "refuse",
        "armor body that is not base64",
        keyed(&bad64),
        bad64,
        Some(ts),
        Some(&publisher),
    );
    let empty_body = hex_of("-----BEGIN PGP MESSAGE-----\n\n-----END PGP MESSAGE-----\n");
    push(
        "refuse.value-armor-empty",
        "P-V1",
        "MUST",
        "refuse",
        "armor with no body",
        keyed(&empty_body),
        empty_body,
        Some(ts),
        Some(&publisher),
    );
    let not_utf8 = "ff".repeat(16);
    push(
        "refuse.value-not-text",
        "P-V1",
        "MUST",
        "refuse",
        "hex of bytes that are not text",
        keyed(&not_utf8),
        not_utf8,
        Some(ts),
        Some(&publisher),
    );
    push(
        "refuse.missing-timestamp",
        "P-V3",
        "MUST",
        "refuse",
        "no timestamp",
        keyed(&v),
        v.clone(),
        None,
        Some(&publisher),
    );
    push(
        "refuse.missing-publisher",
        "P-V3",
        "MUST",
        "refuse",
        "no publisher",
        keyed(&v),
        v.clone(),
        Some(ts),
        None,
    );
    push(
        "refuse.missing-both",
        "P-V3",
        "MUST",
        "refuse",
        "neither timestamp nor publisher",
        keyed(&v),
        v.clone(),
        None,
        None,
    );
    push(
        "refuse.timestamp-10-min-1-ms-ahead",
        "P-V3",
        "MUST",
        "refuse",
        "more than 10 minutes in the future, by 1 ms",
        keyed(&v),
        v.clone(),
        Some(NOW_MS + TEN_MIN_MS + 1),
        Some(&publisher),
    );
    push(
        "refuse.timestamp-1-day-ahead",
        "P-V3",
        "MUST",
        "refuse",
        "a day in the future",
        keyed(&v),
        v.clone(),
        Some(NOW_MS + EXPIRY_MS),
        Some(&publisher),
    );

    let lit = ok(pgp::literal(b"hello in the clear"));
    push(
        "refuse.literal-only",
        "P-V3",
        "SHOULD",
        "refuse",
        "a literal data packet: not encrypted",
        keyed(&lit),
        lit,
        Some(ts),
        Some(&publisher),
    );
    let comp = ok(pgp::compressed(&pgp::literal(b"hello in the clear")));
    push(
        "refuse.compressed-literal",
        "P-V3",
        "SHOULD",
        "refuse",
        "compressed plaintext: not encrypted",
        keyed(&comp),
        comp,
        Some(ts),
        Some(&publisher),
    );
    let seip_only = ok(pgp::seip(&mut rng, 64));
    push(
        "refuse.seip-without-esk",
        "P-V3",
        "SHOULD",
        "refuse",
        "an encrypted container with no session key packet",
        keyed(&seip_only),
        seip_only,
        Some(ts),
        Some(&publisher),
    );
    let esk_only = ok(pgp::skesk(&mut rng));
    push(
        "refuse.esk-without-seip",
        "P-V3",
        "SHOULD",
        "refuse",
        "a session key packet with nothing to decrypt",
        keyed(&esk_only),
        esk_only,
        Some(ts),
        Some(&publisher),
    );
    let mut after = pgp::encrypted(&mut rng, 64);
    after.extend(pgp::literal(b"trailing"));
    let after = ok(after);
    push(
        "refuse.packet-after-seip",
        "P-V3",
        "SHOULD",
        "refuse",
        "a literal packet after the encrypted container",
        keyed(&after),
        after,
        Some(ts),
        Some(&publisher),
    );
    let mut twice = pgp::encrypted(&mut rng, 64);
    twice.extend(pgp::seip(&mut rng, 64));
    let twice = ok(twice);
    push(
        "refuse.two-containers",
        "P-V3",
        "SHOULD",
        "refuse",
        "two encrypted containers",
        keyed(&twice),
        twice,
        Some(ts),
        Some(&publisher),
    );
    let junk = ok(b"\x00\x01\x02 not packets".to_vec());
    push(
        "refuse.garbage-packets",
        "P-V3",
        "SHOULD",
        "refuse",
        "armor around bytes that are not OpenPGP packets",
        keyed(&junk),
        junk,
        Some(ts),
        Some(&publisher),
    );

    file(
        "store",
        "STORE admission (P-V1, P-V2, P-V3), evaluated at `now_ms` with the P-K2 expiry: `accept` or `refuse` (success:false, nothing stored). `strength` SHOULD cases are non-strict when accepted.",
        json!({"now_ms": NOW_MS, "expiry_ms": EXPIRY_MS}),
        cases,
    )
}

fn pubkeyhashes(vectors_dir: &Path) -> anyhow::Result<Value> {
    let read = |rel: &str| -> anyhow::Result<String> {
        let p = vectors_dir.join("pgp").join(rel);
        std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
    };
    let alice = read("keys/alice.pub.asc")?;
    let list = vec![
        (
            "alice",
            "an Ed25519/Cv25519 key made by this implementation",
            alice.clone(),
        ),
        ("bob", "another", read("keys/bob.pub.asc")?),
        ("carol", "another", read("keys/carol.pub.asc")?),
        (
            "alice-crlf",
            "the same key armored with CRLF: a different text, a different hash",
            read("keys/alice.pub.crlf.asc")?,
        ),
        (
            "alice-no-final-newline",
            "the same text without its final newline",
            alice.trim_end().to_string(),
        ),
        (
            "gnupg-ed25519",
            "an Ed25519 key exported by GnuPG 2.2",
            read("gnupg/ed25519.pub.asc")?,
        ),
        (
            "gnupg-rsa",
            "an RSA key exported by GnuPG 2.2",
            read("gnupg/rsa.pub.asc")?,
        ),
    ];
    let cases = list
        .into_iter()
        .map(|(slug, desc, text)| {
            json!({
                "id": format!("pubkeyhash.{slug}"), "rule": "P-G1", "description": desc,
                "public_key": text, "pubkeyhash": sha1_hex(&text),
            })
        })
        .collect();
    Ok(file(
        "pubkeyhash",
        "pubkeyhash = lowercase hex SHA-1 of the armored public key text exactly as registered (P-G1).",
        json!({}),
        cases,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_by_hand() {
        assert_eq!(bucket(&[0; 20]), Value::Null);
        assert_eq!(bucket(&id_with(&[(19, 1)])), json!(0));
        assert_eq!(bucket(&id_with(&[(19, 0x80)])), json!(7));
        assert_eq!(bucket(&id_with(&[(0, 0x80)])), json!(159));
        assert_eq!(bucket(&id_with(&[(0, 1)])), json!(152));
    }

    #[test]
    fn ids_are_unique_and_every_case_names_a_rule() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors");
        let files = generate(&dir).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for text in files.values() {
            let doc: Value = serde_json::from_str(text).unwrap();
            for c in doc["cases"].as_array().unwrap() {
                let id = c["id"].as_str().unwrap().to_string();
                assert!(c["rule"].as_str().unwrap().starts_with("P-"), "{id}");
                assert!(seen.insert(id.clone()), "duplicate id {id}");
            }
        }
        assert!(seen.len() > 250, "{}", seen.len());
    }
}

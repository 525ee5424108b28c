//! Regenerates the OpenPGP test vectors in `vectors/pgp/` (keys, messages, auth texts, each
//! with its expected verdict). Run: `cargo run -p muttr-node --example gen-pgp-vectors`.
//!
//! Keys and signatures are random, so a regeneration changes every file; what CI checks is
//! that the committed files still give their recorded verdicts (`node/tests/pgp_vectors.rs`).
//! The GnuPG-made keys come from `vectors/pgp/make-gnupg.sh`.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use muttr_node::crypto::{self, Identity, KeyKind, PublicKey, auth};
use sequoia_openpgp as openpgp;
use serde_json::{Value, json};

/// Vectors are made and checked at this instant (2026-01-01T00:00:00Z), not the wall clock.
const NOW_MS: u64 = 1_767_225_600_000;

fn at(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pgp");
    let now = at(NOW_MS);
    let born = at(NOW_MS - 86_400_000);
    let mut keys = serde_json::Map::new();
    let mut ids = std::collections::BTreeMap::new();
    for name in ["alice", "bob", "carol"] {
        let id = Identity::generate(&format!("{name}@muttr.test"), KeyKind::Cv25519, born).unwrap();
        std::fs::write(
            dir.join(format!("keys/{name}.sec.asc")),
            id.to_armored_secret(None).unwrap(),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("keys/{name}.pub.asc")),
            id.public().armored(),
        )
        .unwrap();
        keys.insert(name.into(), json!({"secret": format!("keys/{name}.sec.asc"), "public": format!("keys/{name}.pub.asc")}));
        ids.insert(name, id);
    }
    let (alice, bob, carol) = (&ids["alice"], &ids["bob"], &ids["carol"]);

    // P-G1 pubkeyhashes, ours and GnuPG's.
    let mut hashes = Vec::new();
    for (id, file) in [
        ("pgp.pubkeyhash.ours-alice", "keys/alice.pub.asc"),
        ("pgp.pubkeyhash.ours-bob", "keys/bob.pub.asc"),
        ("pgp.pubkeyhash.gnupg-rsa", "gnupg/rsa.pub.asc"),
        ("pgp.pubkeyhash.gnupg-ed25519", "gnupg/ed25519.pub.asc"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        hashes.push(json!({"id": id, "rule": "P-G1", "public_key": file, "pubkeyhash": crypto::pubkeyhash(&text)}));
    }
    // CRLF armoring of the same key: another hash.
    let crlf = std::fs::read_to_string(dir.join("keys/alice.pub.asc"))
        .unwrap()
        .replace('\n', "\r\n");
    std::fs::write(dir.join("keys/alice.pub.crlf.asc"), &crlf).unwrap();
    hashes.push(
        json!({"id": "pgp.pubkeyhash.same-key-other-text", "rule": "P-G1",
        "public_key": "keys/alice.pub.crlf.asc", "pubkeyhash": crypto::pubkeyhash(&crlf)}),
    );

    // Messages and their verdicts (P-G2, P-G3).
    let good = crypto::sign_and_encrypt(b"hello bob", alice, &[&bob.public()], now).unwrap();
    let by_carol = crypto::sign_and_encrypt(b"hello bob", carol, &[&bob.public()], now).unwrap();
    let to_carol =
        crypto::sign_and_encrypt(b"hello carol", alice, &[&carol.public()], now).unwrap();
    let unsigned = encrypt_raw(&literal(b"unsigned", None, now), &bob.public(), now);
    let mut forged = literal(b"pay 10", Some(alice), now);
    let p = forged.windows(2).position(|w| w == b"10").unwrap();
    forged[p..p + 2].copy_from_slice(b"99");
    let bad_sig = encrypt_raw(&forged, &bob.public(), now);
    let truncated = good[..good.len() / 2].to_string();
    let mut corrupted = good.clone().into_bytes();
    let mid = corrupted.len() / 2;
    corrupted[mid] = if corrupted[mid] == b'A' { b'B' } else { b'A' };
    let corrupted = String::from_utf8(corrupted).unwrap();
    let messages = [
        (
            "pgp.message.good",
            "P-G2",
            &good,
            "bob",
            "alice",
            "good",
            Some("hello bob"),
        ),
        (
            "pgp.message.unsigned",
            "P-G3",
            &unsigned,
            "bob",
            "alice",
            "unsigned",
            Some("unsigned"),
        ),
        (
            "pgp.message.bad-signature",
            "P-G3",
            &bad_sig,
            "bob",
            "alice",
            "bad-signature",
            Some("pay 99"),
        ),
        (
            "pgp.message.wrong-signer",
            "P-G3",
            &by_carol,
            "bob",
            "alice",
            "wrong-signer",
            Some("hello bob"),
        ),
        (
            "pgp.message.wrong-recipient",
            "P-G2",
            &to_carol,
            "bob",
            "alice",
            "not-for-me",
            None,
        ),
        (
            "pgp.message.truncated-armor",
            "P-G2",
            &truncated,
            "bob",
            "alice",
            "error",
            None,
        ),
        (
            "pgp.message.corrupted-packet",
            "P-G2",
            &corrupted,
            "bob",
            "alice",
            "error",
            None,
        ),
    ];
    let mut msg_cases = Vec::new();
    for (id, rule, text, recipient, sender, verdict, plaintext) in messages {
        let file = format!("messages/{}.asc", id.trim_start_matches("pgp.message."));
        std::fs::write(dir.join(&file), text).unwrap();
        msg_cases.push(
            json!({"id": id, "rule": rule, "message": file, "recipient": recipient,
            "expected_sender": sender, "verdict": verdict, "plaintext": plaintext}),
        );
    }

    // Auth texts (P-A1, P-A2).
    let hash = alice.public().pubkeyhash();
    let signed = auth::sign_auth(
        alice,
        &hash,
        auth::PUBKEYHASH,
        NOW_MS,
        &[("alias", "alice")],
        now,
    )
    .unwrap();
    let stale =
        auth::sign_auth(alice, &hash, auth::PUBKEYHASH, NOW_MS - 600_000, &[], now).unwrap();
    let altered = signed.replace("alias=alice", "alias=mallory");
    let auth_cases = [
        ("pgp.auth.good", "P-A1", &signed, "alice", "ok"),
        ("pgp.auth.wrong-key", "P-A1", &signed, "bob", "wrong-key"),
        (
            "pgp.auth.altered-querystring",
            "P-A1",
            &altered,
            "alice",
            "bad-signature",
        ),
        (
            "pgp.auth.stale-nonce",
            "P-A2",
            &stale,
            "alice",
            "stale-nonce",
        ),
    ];
    let mut a_cases = Vec::new();
    for (id, rule, text, key, verdict) in auth_cases {
        a_cases.push(json!({"id": id, "rule": rule, "text": text, "key": key, "verdict": verdict}));
    }

    let doc = json!({
        "now_ms": NOW_MS,
        "nonce_window_ms": 300_000,
        "keys": Value::Object(keys),
        "pubkeyhash": hashes,
        "messages": msg_cases,
        "auth": a_cases,
    });
    let mut f = std::fs::File::create(dir.join("vectors.json")).unwrap();
    f.write_all(serde_json::to_string_pretty(&doc).unwrap().as_bytes())
        .unwrap();
    f.write_all(b"\n").unwrap();
    println!("wrote {}", dir.join("vectors.json").display());
}

fn literal(data: &[u8], signer: Option<&Identity>, now: SystemTime) -> Vec<u8> {
    use openpgp::serialize::stream::{LiteralWriter, Message, Signer};
    let mut sink = Vec::new();
    let m = Message::new(&mut sink);
    let m = match signer {
        Some(s) => {
            let pair = s
                .cert()
                .keys()
                .unencrypted_secret()
                .with_policy(&openpgp::policy::StandardPolicy::new(), now)
                .for_signing()
                .next()
                .unwrap()
                .key()
                .clone()
                .into_keypair()
                .unwrap();
            Signer::new(m, pair)
                .unwrap()
                .creation_time(now)
                .build()
                .unwrap()
        }
        None => m,
    };
    let mut w = LiteralWriter::new(m).build().unwrap();
    w.write_all(data).unwrap();
    w.finalize().unwrap();
    sink
}

fn encrypt_raw(inner: &[u8], to: &PublicKey, now: SystemTime) -> String {
    use openpgp::serialize::stream::{Armorer, Encryptor, Message};
    let policy = openpgp::policy::StandardPolicy::new();
    let keys: Vec<_> = to
        .cert()
        .keys()
        .with_policy(&policy, now)
        .for_transport_encryption()
        .collect();
    let mut sink = Vec::new();
    let m = Armorer::new(Message::new(&mut sink)).build().unwrap();
    let mut m = Encryptor::for_recipients(m, keys).build().unwrap();
    m.write_all(inner).unwrap();
    m.finalize().unwrap();
    String::from_utf8(sink).unwrap()
}

//! Checks every committed OpenPGP vector in `vectors/pgp/vectors.json` against this
//! implementation: pubkeyhashes (P-G1), message verdicts (P-G2, P-G3) and auth-text verdicts
//! (P-A1, P-A2), all at the vectors' recorded time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use muttr_node::crypto::{self, Identity, PublicKey, Verdict, auth};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pgp")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(dir().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_pgp_vector_gives_its_verdict() {
    let doc: Value = serde_json::from_str(&read("vectors.json")).unwrap();
    let now_ms = doc["now_ms"].as_u64().unwrap();
    let now = SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms);
    let key = |name: &str, part: &str| doc["keys"][name][part].as_str().unwrap().to_string();
    let secret =
        |name: &str| Identity::from_armored(read(&key(name, "secret")).as_bytes(), None).unwrap();
    let public = |name: &str| PublicKey::from_armored(&read(&key(name, "public"))).unwrap();
    let mut checked = 0;

    for c in doc["pubkeyhash"].as_array().unwrap() {
        let text = read(c["public_key"].as_str().unwrap());
        assert_eq!(
            crypto::pubkeyhash(&text),
            c["pubkeyhash"].as_str().unwrap(),
            "{}",
            c["id"]
        );
        assert_eq!(
            PublicKey::from_armored(&text).unwrap().pubkeyhash(),
            c["pubkeyhash"].as_str().unwrap()
        );
        checked += 1;
    }

    for c in doc["messages"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let msg = read(c["message"].as_str().unwrap());
        let me = secret(c["recipient"].as_str().unwrap());
        let sender = public(c["expected_sender"].as_str().unwrap());
        let got = crypto::decrypt_and_verify(msg.as_bytes(), &me, Some(&sender), now);
        let verdict = match &got {
            Ok(d) => match d.verdict {
                Verdict::Good { .. } => "good",
                Verdict::Unsigned => "unsigned",
                Verdict::BadSignature => "bad-signature",
                Verdict::WrongSigner { .. } | Verdict::UnknownSigner { .. } => "wrong-signer",
            },
            Err(crypto::CryptoError::NotForMe) => "not-for-me",
            Err(_) => "error",
        };
        assert_eq!(verdict, c["verdict"].as_str().unwrap(), "{id}: {got:?}");
        if let (Ok(d), Some(p)) = (&got, c["plaintext"].as_str()) {
            assert_eq!(d.plaintext, p.as_bytes(), "{id}");
        }
        checked += 1;
    }

    let window = doc["nonce_window_ms"].as_u64().unwrap();
    for c in doc["auth"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let text = c["text"].as_str().unwrap();
        let k = public(c["key"].as_str().unwrap());
        let verdict = match auth::verify_auth(text, &k, now) {
            Ok(a) => match auth::check_nonce(a.nonce, now_ms, window) {
                Ok(()) => "ok",
                Err(_) => "stale-nonce",
            },
            Err(auth::AuthError::WrongKey) => "wrong-key",
            Err(auth::AuthError::BadSignature) => "bad-signature",
            Err(e) => panic!("{id}: unexpected {e}"),
        };
        assert_eq!(verdict, c["verdict"].as_str().unwrap(), "{id}");
        checked += 1;
    }
    assert!(checked >= 16, "only {checked} vectors");
}

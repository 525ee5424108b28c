//! Signed auth texts (P-A1): parsing the claimed identity before verification, and
//! verification against a key, for any input — and nothing unsigned by that key verifies.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use libfuzzer_sys::fuzz_target;
use muttr_node::crypto::PublicKey;
use muttr_node::crypto::auth::{self, AuthText};

const ALICE_PUB: &str = include_str!("../../vectors/pgp/keys/alice.pub.asc");

fn alice() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| PublicKey::from_armored(ALICE_PUB).expect("test key"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = AuthText::from_query(text);
    let _ = auth::parse_auth(text);
    let _ = auth::cleartext_body(text);
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = auth::verify_auth(text, alice(), now);
    let _ = auth::verify_auth_hex(text, alice(), now);
});

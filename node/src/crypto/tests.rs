//! Tests of every verdict and error of the OpenPGP layer.

use std::io::Write;
use std::time::{Duration, SystemTime};

use sequoia_openpgp as openpgp;

use openpgp::serialize::stream::{Armorer, Encryptor, LiteralWriter, Message, Signer};

use super::auth::*;
use super::*;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_760_000_000)
}

fn ident(name: &str) -> Identity {
    Identity::generate(name, KeyKind::Cv25519, now() - Duration::from_secs(60)).unwrap()
}

/// Encrypts raw packet bytes (already signed or not) to `to`, armored.
fn encrypt_raw(inner: &[u8], to: &PublicKey) -> Vec<u8> {
    let keys: Vec<_> = to
        .cert()
        .keys()
        .with_policy(&POLICY, now())
        .for_transport_encryption()
        .collect();
    let mut sink = Vec::new();
    let m = Message::new(&mut sink);
    let m = Armorer::new(m).build().unwrap();
    let mut m = Encryptor::for_recipients(m, keys).build().unwrap();
    m.write_all(inner).unwrap();
    m.finalize().unwrap();
    sink
}

fn literal(data: &[u8], signer: Option<&Identity>) -> Vec<u8> {
    let mut sink = Vec::new();
    let m = Message::new(&mut sink);
    let m = match signer {
        Some(s) => Signer::new(m, s.signing_keypair(now()).unwrap())
            .unwrap()
            .build()
            .unwrap(),
        None => m,
    };
    let mut w = LiteralWriter::new(m).build().unwrap();
    w.write_all(data).unwrap();
    w.finalize().unwrap();
    sink
}

#[test]
fn pubkeyhash_is_sha1_of_the_exact_text_p_g1() {
    let a = ident("alice");
    let pk = a.public();
    assert_eq!(
        pk.pubkeyhash(),
        crate::id::NodeId::sha1(pk.armored()).to_hex()
    );
    assert_eq!(pk.pubkeyhash().len(), 40);
    assert_eq!(a.public().armored(), pk.armored(), "one key, one text");
    // Another armoring of the same key (CRLF line ends) is another pubkeyhash.
    let crlf = pk.armored().replace('\n', "\r\n");
    let pk2 = PublicKey::from_armored(&crlf).unwrap();
    assert_eq!(pk2.fingerprint(), pk.fingerprint());
    assert_ne!(pk2.pubkeyhash(), pk.pubkeyhash());
}

#[test]
fn good_signature_from_expected_sender_p_g2() {
    let (alice, bob) = (ident("alice"), ident("bob"));
    let msg = sign_and_encrypt(b"hi bob", &alice, &[&bob.public()], now()).unwrap();
    assert!(msg.starts_with("-----BEGIN PGP MESSAGE-----"));
    crate::value::validate(&crate::value::to_hex(&msg)).expect("a valid DHT value (P-V1)");
    let d = decrypt_and_verify(msg.as_bytes(), &bob, Some(&alice.public()), now()).unwrap();
    assert_eq!(d.plaintext, b"hi bob");
    assert_eq!(
        d.verdict,
        Verdict::Good {
            signer_fingerprint: alice.fingerprint()
        }
    );
    // Encrypted to the sender too, she can read it back.
    let both = sign_and_encrypt(b"x", &alice, &[&bob.public(), &alice.public()], now()).unwrap();
    let d = decrypt_and_verify(both.as_bytes(), &alice, Some(&alice.public()), now()).unwrap();
    assert!(d.verdict.is_good());
}

#[test]
fn wrong_and_unknown_signers_are_not_good_p_g3() {
    let (alice, bob, carol) = (ident("alice"), ident("bob"), ident("carol"));
    let msg = sign_and_encrypt(b"hi", &carol, &[&bob.public()], now()).unwrap();
    let d = decrypt_and_verify(msg.as_bytes(), &bob, Some(&alice.public()), now()).unwrap();
    assert!(
        matches!(d.verdict, Verdict::WrongSigner { .. }),
        "{:?}",
        d.verdict
    );
    assert!(!d.verdict.is_good());
    let d = decrypt_and_verify(msg.as_bytes(), &bob, None, now()).unwrap();
    assert!(matches!(d.verdict, Verdict::UnknownSigner { .. }));
    assert!(!d.verdict.is_good());
}

#[test]
fn unsigned_message_is_not_good_p_g3() {
    let (alice, bob) = (ident("alice"), ident("bob"));
    let msg = encrypt_raw(&literal(b"no signature", None), &bob.public());
    let d = decrypt_and_verify(&msg, &bob, Some(&alice.public()), now()).unwrap();
    assert_eq!(d.verdict, Verdict::Unsigned);
    assert_eq!(d.plaintext, b"no signature");
}

#[test]
fn altered_signed_content_is_a_bad_signature_p_g3() {
    let (alice, bob) = (ident("alice"), ident("bob"));
    let mut signed = literal(b"pay 10 coins", Some(&alice));
    let pos = signed.windows(2).position(|w| w == b"10").unwrap();
    signed[pos..pos + 2].copy_from_slice(b"99");
    let msg = encrypt_raw(&signed, &bob.public());
    let d = decrypt_and_verify(&msg, &bob, Some(&alice.public()), now()).unwrap();
    assert_eq!(d.verdict, Verdict::BadSignature);
}

#[test]
fn wrong_recipient_truncated_and_corrupted_are_errors() {
    let (alice, bob, carol) = (ident("alice"), ident("bob"), ident("carol"));
    let msg = sign_and_encrypt(b"for bob", &alice, &[&bob.public()], now()).unwrap();
    assert_eq!(
        decrypt_and_verify(msg.as_bytes(), &carol, None, now()).unwrap_err(),
        CryptoError::NotForMe
    );
    let cut = &msg[..msg.len() / 2];
    let r = decrypt_and_verify(cut.as_bytes(), &bob, None, now());
    assert!(matches!(r, Err(CryptoError::Malformed(_))), "{r:?}");
    // Flip a byte in the middle of the base64 body.
    let mut bytes = msg.clone().into_bytes();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    assert!(decrypt_and_verify(&bytes, &bob, Some(&alice.public()), now()).is_err());
    assert!(matches!(
        decrypt_and_verify(b"not a message", &bob, None, now()),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn passphrase_protection_round_trip() {
    let a = ident("alice");
    let text = a.to_armored_secret(Some("correct horse")).unwrap();
    assert_eq!(
        Identity::from_armored(text.as_bytes(), Some("wrong")).unwrap_err(),
        CryptoError::WrongPassphrase
    );
    assert_eq!(
        Identity::from_armored(text.as_bytes(), None).unwrap_err(),
        CryptoError::WrongPassphrase
    );
    let back = Identity::from_armored(text.as_bytes(), Some("correct horse")).unwrap();
    assert_eq!(back.fingerprint(), a.fingerprint());
    let bob = ident("bob");
    let m = sign_and_encrypt(b"x", &back, &[&bob.public()], now()).unwrap();
    assert!(
        decrypt_and_verify(m.as_bytes(), &bob, Some(&a.public()), now())
            .unwrap()
            .verdict
            .is_good()
    );
    assert_eq!(
        Identity::from_armored(a.public().armored().as_bytes(), None).unwrap_err(),
        CryptoError::NoSecretKey
    );
}

#[cfg(unix)]
#[test]
fn saved_keys_are_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/identity.asc");
    let a = ident("alice");
    a.save(&path, None).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        Identity::load(&path, None).unwrap().fingerprint(),
        a.fingerprint()
    );
}

#[test]
fn key_without_encryption_subkey_is_refused() {
    use openpgp::cert::prelude::*;
    use openpgp::serialize::SerializeInto;
    let (cert, _) = CertBuilder::new()
        .set_creation_time(now() - Duration::from_secs(60))
        .add_userid("signer-only")
        .add_signing_subkey()
        .generate()
        .unwrap();
    let armored = String::from_utf8(cert.armored().to_vec().unwrap()).unwrap();
    let pk = PublicKey::from_armored(&armored).unwrap();
    assert!(!pk.can_encrypt(now()));
    let err = sign_and_encrypt(b"x", &ident("a"), &[&pk], now()).unwrap_err();
    assert!(matches!(err, CryptoError::NoEncryptionKey(_)));
    assert!(err.to_string().contains("encryption-capable"));
    assert!(matches!(
        PublicKey::from_armored(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nzzzz\n-----END PGP PUBLIC KEY BLOCK-----\n"
        ),
        Err(CryptoError::Malformed(_))
    ));
}

#[test]
fn auth_text_signs_every_parameter_p_a1() {
    let alice = ident("alice");
    let pk = alice.public();
    let t = sign_auth(
        &alice,
        &pk.pubkeyhash(),
        PUBKEYHASH,
        1_437_075_033_746,
        &[("alias", "alice")],
        now(),
    )
    .unwrap();
    assert!(t.starts_with("-----BEGIN PGP SIGNED MESSAGE-----"));
    let q = format!(
        "identity={}&identityType=pubkeyhash&nonce=1437075033746&alias=alice",
        pk.pubkeyhash()
    );
    assert!(t.contains(&q), "{t}");
    let a = verify_auth(&t, &pk, now()).unwrap();
    assert_eq!(a.identity, pk.pubkeyhash());
    assert_eq!(a.identity_type, "pubkeyhash");
    assert_eq!(a.nonce, 1_437_075_033_746);
    assert_eq!(a.param("alias"), Some("alice"));
    assert_eq!(a.query, q);
    assert_eq!(
        parse_auth(&t).unwrap(),
        a,
        "unverified parse reads the same text"
    );
    // Hex form (P-S1).
    let h = sign_auth_hex(&alice, &pk.pubkeyhash(), PUBKEYHASH, 5, now()).unwrap();
    assert!(crate::id::is_lower_hex(&h));
    assert_eq!(verify_auth_hex(&h, &pk, now()).unwrap().nonce, 5);
}

#[test]
fn auth_refusals() {
    let (alice, mallory) = (ident("alice"), ident("mallory"));
    let t = sign_auth(&alice, "x", PUBKEYHASH, 1, &[("alias", "alice")], now()).unwrap();
    assert_eq!(
        verify_auth(&t, &mallory.public(), now()).unwrap_err(),
        AuthError::WrongKey
    );
    let altered = t.replace("alias=alice", "alias=alicf");
    assert_eq!(
        verify_auth(&altered, &alice.public(), now()).unwrap_err(),
        AuthError::BadSignature
    );
    assert!(matches!(
        verify_auth("hello", &alice.public(), now()),
        Err(AuthError::BadArmor(_))
    ));
    let no_nonce = cleartext_sign(&alice, "identity=x&identityType=pubkeyhash", now()).unwrap();
    assert!(matches!(
        verify_auth(&no_nonce, &alice.public(), now()),
        Err(AuthError::Malformed(_))
    ));
    let twice = cleartext_sign(
        &alice,
        "identity=x&identity=y&identityType=a&nonce=1",
        now(),
    )
    .unwrap();
    assert!(matches!(
        verify_auth(&twice, &alice.public(), now()),
        Err(AuthError::Malformed(_))
    ));
    assert!(matches!(
        verify_auth_hex("zz", &alice.public(), now()),
        Err(AuthError::BadArmor(_))
    ));
}

#[test]
fn values_with_newlines_and_dashes_survive_the_cleartext_framework() {
    let alice = ident("alice");
    let tricky = [
        ("note", "line1\n- dashed\r\nend  "),
        ("x", "-----BEGIN PGP SIGNATURE-----"),
    ];
    let t = sign_auth(&alice, "id", PUBKEYHASH, 9, &tricky, now()).unwrap();
    let a = verify_auth(&t, &alice.public(), now()).unwrap();
    assert_eq!(a.param("note"), Some("line1\n- dashed\r\nend  "));
    assert_eq!(a.param("x"), Some("-----BEGIN PGP SIGNATURE-----"));
    assert_eq!(parse_auth(&t).unwrap(), a);
    // Dash-escaping of a raw text is undone by both readers.
    let raw = cleartext_sign(&alice, "-x=1&identity=a&identityType=b&nonce=3", now()).unwrap();
    assert!(raw.contains("\n- -x=1"), "{raw}");
    let parsed = parse_auth(&raw).unwrap();
    assert_eq!((parsed.nonce, parsed.param("-x")), (3, Some("1")));
    assert_eq!(verify_auth(&raw, &alice.public(), now()).unwrap(), parsed);
}

#[test]
fn nonce_window_p_a2() {
    let five_min = 300_000;
    assert!(check_nonce(1_000_000, 1_000_000 + five_min, five_min).is_ok());
    assert!(check_nonce(1_000_000 + five_min, 1_000_000, five_min).is_ok());
    assert!(matches!(
        check_nonce(1_000_000, 1_000_001 + five_min, five_min),
        Err(AuthError::StaleNonce { .. })
    ));
}

#[test]
fn rsa_identity_works_too() {
    let a = Identity::generate("rsa", KeyKind::Rsa3072, now() - Duration::from_secs(60)).unwrap();
    let b = ident("bob");
    let m = sign_and_encrypt(b"rsa", &a, &[&b.public()], now()).unwrap();
    assert!(
        decrypt_and_verify(m.as_bytes(), &b, Some(&a.public()), now())
            .unwrap()
            .verdict
            .is_good()
    );
    let m = sign_and_encrypt(b"to rsa", &b, &[&a.public()], now()).unwrap();
    assert!(
        decrypt_and_verify(m.as_bytes(), &a, Some(&b.public()), now())
            .unwrap()
            .verdict
            .is_good()
    );
}

//! Interoperability with GnuPG 2.2, both ways, for a GnuPG RSA key and a GnuPG
//! Ed25519/Cv25519 key (PROFILE P-G2): messages signed and encrypted by `gpg` decrypt and verify
//! here; ours decrypt and verify in `gpg`; cleartext signatures verify both ways.
//!
//! These tests need the `gpg` binary (`.ci/run` installs `gnupg` when it is missing). Without
//! it they fail with a message saying so: they never pass silently.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use muttr_node::crypto::auth::{self, PUBKEYHASH};
use muttr_node::crypto::{self, Identity, KeyKind, PublicKey};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/pgp/gnupg")
        .join(name)
}

/// A throwaway GnuPG home with one of the fixture keys imported.
struct Gpg {
    home: tempfile::TempDir,
}

impl Gpg {
    fn new() -> Gpg {
        let ok = Command::new("gpg").arg("--version").output();
        assert!(
            ok.is_ok_and(|o| o.status.success()),
            "GnuPG (`gpg`) is required for the interoperability tests: install the `gnupg` package"
        );
        Gpg {
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// Runs gpg with `args`, feeding `input`; returns (status ok, stdout, stderr).
    fn run(&self, args: &[&str], input: &[u8]) -> (bool, Vec<u8>, String) {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(["--trust-model", "always"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg runs");
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn import(&self, armored: &[u8]) {
        let (ok, _, err) = self.run(&["--import"], armored);
        assert!(ok, "gpg --import failed: {err}");
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

fn gnupg_key(kind: &str) -> (Identity, PublicKey, Vec<u8>) {
    let sec = std::fs::read(fixture(&format!("{kind}.sec.asc"))).unwrap();
    let id = Identity::from_armored(&sec, None).expect("GnuPG secret key reads");
    let pub_text = std::fs::read_to_string(fixture(&format!("{kind}.pub.asc"))).unwrap();
    let pk = PublicKey::from_armored(&pub_text).expect("GnuPG public key reads");
    assert_eq!(pk.fingerprint(), id.fingerprint());
    (id, pk, sec)
}

fn both_ways(kind: &str) {
    let gpg = Gpg::new();
    let (_gnupg_id, gnupg_pub, gnupg_sec) = gnupg_key(kind);
    gpg.import(&gnupg_sec);
    let ours = Identity::generate("ours@muttr.test", KeyKind::Cv25519, now()).unwrap();
    gpg.import(ours.public().armored().as_bytes());
    let gfp = gnupg_pub.fingerprint();
    let ofp = ours.fingerprint();

    // GnuPG signs and encrypts to us; we decrypt and verify.
    let (ok, msg, err) = gpg.run(
        &[
            "--armor",
            "--local-user",
            &gfp,
            "--recipient",
            &ofp,
            "--sign",
            "--encrypt",
        ],
        b"from gnupg",
    );
    assert!(ok, "gpg --sign --encrypt: {err}");
    let d = crypto::decrypt_and_verify(&msg, &ours, Some(&gnupg_pub), now()).unwrap();
    assert_eq!(d.plaintext, b"from gnupg");
    assert!(d.verdict.is_good(), "{kind}: {:?}", d.verdict);
    // ... and the same message checked against the wrong sender is not good.
    let d = crypto::decrypt_and_verify(&msg, &ours, Some(&ours.public()), now()).unwrap();
    assert!(!d.verdict.is_good());

    // We sign and encrypt to GnuPG's key; gpg decrypts and reports a good signature.
    let m = crypto::sign_and_encrypt(b"from muttr", &ours, &[&gnupg_pub], now()).unwrap();
    let (ok, plain, err) = gpg.run(&["--status-fd", "2", "--decrypt"], m.as_bytes());
    assert!(ok, "gpg --decrypt: {err}");
    assert_eq!(plain, b"from muttr");
    assert!(err.contains("[GNUPG:] GOODSIG"), "{kind}: {err}");
    assert!(err.contains("[GNUPG:] VALIDSIG"), "{err}");

    // Our cleartext auth text verifies in gpg.
    let text = auth::sign_auth(&ours, "id", PUBKEYHASH, 42, &[("alias", "alice")], now()).unwrap();
    let (ok, _, err) = gpg.run(&["--status-fd", "2", "--verify"], text.as_bytes());
    assert!(
        ok && err.contains("[GNUPG:] GOODSIG"),
        "gpg --verify: {err}"
    );

    // GnuPG's cleartext signature of a query string verifies here.
    let query = auth::auth_query(&gnupg_pub.pubkeyhash(), PUBKEYHASH, 7, &[("alias", "bob")]);
    let (ok, signed, err) = gpg.run(&["--local-user", &gfp, "--clearsign"], query.as_bytes());
    assert!(ok, "gpg --clearsign: {err}");
    let signed = String::from_utf8(signed).unwrap();
    let a = auth::verify_auth(&signed, &gnupg_pub, now()).expect("GnuPG cleartext verifies");
    assert_eq!((a.nonce, a.param("alias")), (7, Some("bob")));
    assert_eq!(auth::parse_auth(&signed).unwrap(), a);
    // Tampered, it does not.
    let tampered = signed.replace("alias=bob", "alias=eve");
    assert!(auth::verify_auth(&tampered, &gnupg_pub, now()).is_err());
}

#[test]
fn gnupg_rsa_key_interoperates_both_ways() {
    both_ways("rsa");
}

#[test]
fn gnupg_ed25519_key_interoperates_both_ways() {
    both_ways("ed25519");
}

#[test]
fn gnupg_passphrase_protected_key_reads_with_its_passphrase() {
    let sec = std::fs::read(fixture("protected.sec.asc")).unwrap();
    assert_eq!(
        Identity::from_armored(&sec, Some("wrong")).unwrap_err(),
        crypto::CryptoError::WrongPassphrase
    );
    let id = Identity::from_armored(&sec, Some("muttr")).unwrap();
    let bob = Identity::generate("bob", KeyKind::Cv25519, now()).unwrap();
    let m = crypto::sign_and_encrypt(b"x", &id, &[&bob.public()], now()).unwrap();
    let d = crypto::decrypt_and_verify(m.as_bytes(), &bob, Some(&id.public()), now()).unwrap();
    assert!(d.verdict.is_good());
}

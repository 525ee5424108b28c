//! The `muttr` command-line client, end to end as a user runs it: keygen, export, import,
//! encrypt and decrypt through pipes (with GnuPG on the other side too), auth texts.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use muttr_node::crypto::{PublicKey, auth};

fn muttr(home: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_muttr"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("MUTTR_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn user(root: &Path, name: &str) -> (PathBuf, PathBuf) {
    let home = root.join(name);
    ok(&muttr(&home, &["keygen", "--name", name], b""));
    let key = root.join(format!("{name}.pub.asc"));
    std::fs::write(&key, ok(&muttr(&home, &["key", "export"], b""))).unwrap();
    (home, key)
}

#[test]
fn encrypt_decrypt_and_warn_on_unverified() {
    let root = tempfile::tempdir().unwrap();
    let (alice, alice_key) = user(root.path(), "alice");
    let (bob, bob_key) = user(root.path(), "bob");
    let (_mallory, mallory_key) = user(root.path(), "mallory");

    let again = muttr(&alice, &["keygen"], b"");
    assert!(
        !again.status.success(),
        "keygen refuses to overwrite an identity"
    );

    let imported = ok(&muttr(
        &bob,
        &["key", "import", alice_key.to_str().unwrap()],
        b"",
    ));
    assert!(imported.contains("pubkeyhash"));

    let msg = ok(&muttr(
        &alice,
        &["encrypt", "--to", bob_key.to_str().unwrap()],
        b"hello bob\n",
    ));
    assert!(msg.starts_with("-----BEGIN PGP MESSAGE-----"));
    let out = muttr(
        &bob,
        &["decrypt", "--from", alice_key.to_str().unwrap()],
        msg.as_bytes(),
    );
    assert_eq!(out.stdout, b"hello bob\n");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("good signature"));

    // Claimed to come from mallory: plaintext shown, loud warning, non-zero exit (P-G3).
    let out = muttr(
        &bob,
        &["decrypt", "--from", mallory_key.to_str().unwrap()],
        msg.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WARNING"));

    // Not for alice: a clear error.
    let out = muttr(
        &alice,
        &["decrypt", "--from", alice_key.to_str().unwrap()],
        msg.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not encrypted to this identity"));
    let out = muttr(
        &bob,
        &["decrypt", "--from", alice_key.to_str().unwrap()],
        b"garbage",
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn auth_text_verifies() {
    let root = tempfile::tempdir().unwrap();
    let (alice, alice_key) = user(root.path(), "alice");
    let pk = PublicKey::from_armored(&std::fs::read_to_string(&alice_key).unwrap()).unwrap();
    let text = ok(&muttr(
        &alice,
        &["auth-text", "alias=alice", "--nonce", "77"],
        b"",
    ));
    let a = auth::verify_auth(&text, &pk, std::time::SystemTime::now()).unwrap();
    assert_eq!(a.identity, pk.pubkeyhash());
    assert_eq!((a.nonce, a.param("alias")), (77, Some("alice")));
    let hex = ok(&muttr(&alice, &["auth-text", "--hex"], b""));
    let a = auth::verify_auth_hex(hex.trim(), &pk, std::time::SystemTime::now()).unwrap();
    assert!(a.params.is_empty());
    let bad = muttr(&alice, &["auth-text", "novalue"], b"");
    assert!(!bad.status.success());
}

#[test]
fn passphrase_protected_identity() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("p");
    let pass = root.path().join("pass");
    std::fs::write(&pass, "s3cret\n").unwrap();
    let p = pass.to_str().unwrap();
    ok(&muttr(&home, &["--passphrase-file", p, "keygen"], b""));
    assert!(
        std::fs::read_to_string(home.join("identity.asc"))
            .unwrap()
            .contains("PRIVATE KEY")
    );
    ok(&muttr(
        &home,
        &["--passphrase-file", p, "key", "export"],
        b"",
    ));
    let out = muttr(&home, &["key", "export"], b"");
    assert!(!out.status.success(), "no passphrase: refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("passphrase"));
}

#[test]
fn gnupg_to_muttr_decrypt_and_muttr_encrypt_to_gnupg() {
    assert!(
        Command::new("gpg")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "GnuPG (`gpg`) is required: install the `gnupg` package"
    );
    let root = tempfile::tempdir().unwrap();
    let (me, my_key) = user(root.path(), "me");
    let gnupghome = root.path().join("gnupg");
    std::fs::create_dir(&gnupghome).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/pgp/gnupg");
    let gpg = |args: &[&str], input: &[u8]| {
        let mut c = Command::new("gpg")
            .env("GNUPGHOME", &gnupghome)
            .args([
                "--batch",
                "--yes",
                "--trust-model",
                "always",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(input).unwrap();
        c.wait_with_output().unwrap()
    };
    for kind in ["rsa", "ed25519"] {
        let sec = std::fs::read(fixtures.join(format!("{kind}.sec.asc"))).unwrap();
        assert!(gpg(&["--import"], &sec).status.success());
        assert!(
            gpg(&["--import", my_key.to_str().unwrap()], b"")
                .status
                .success()
        );
        let their_key = fixtures.join(format!("{kind}.pub.asc"));
        let theirs =
            PublicKey::from_armored(&std::fs::read_to_string(&their_key).unwrap()).unwrap();
        let mine = PublicKey::from_armored(&std::fs::read_to_string(&my_key).unwrap()).unwrap();
        let enc = gpg(
            &[
                "--armor",
                "-u",
                &theirs.fingerprint(),
                "-r",
                &mine.fingerprint(),
                "--sign",
                "--encrypt",
            ],
            b"gpg says hi",
        );
        assert!(enc.status.success());
        let out = muttr(
            &me,
            &["decrypt", "--from", their_key.to_str().unwrap()],
            &enc.stdout,
        );
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"gpg says hi");
        let msg = ok(&muttr(
            &me,
            &["encrypt", "--to", their_key.to_str().unwrap()],
            b"muttr says hi",
        ));
        let dec = gpg(&["--status-fd", "2", "--decrypt"], msg.as_bytes());
        assert!(dec.status.success());
        assert_eq!(dec.stdout, b"muttr says hi");
        assert!(String::from_utf8_lossy(&dec.stderr).contains("[GNUPG:] GOODSIG"));
    }
}

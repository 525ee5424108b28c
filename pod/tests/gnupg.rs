//! A client with keys made by GnuPG 2.2 and auth texts signed by `gpg --clearsign` — what an
//! independent implementation would send — registers, takes an alias, gets a token, plays
//! back, and authenticates on the WebSocket (P-A1, P-S1, P-G2). Needs `gpg` (`.ci/run`
//! installs it); fails with a clear message without it.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use futures::{SinkExt, StreamExt};
use muttr_node::crypto::pubkeyhash;
use muttr_pod::PodConfig;
use tokio_tungstenite::tungstenite::Message;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/pgp/gnupg")
        .join(name)
}

struct Gpg(tempfile::TempDir);

impl Gpg {
    fn with_key(secret: &str) -> Gpg {
        let ok = Command::new("gpg").arg("--version").output();
        assert!(
            ok.is_ok_and(|o| o.status.success()),
            "GnuPG (`gpg`) is required: install the `gnupg` package"
        );
        let g = Gpg(tempfile::tempdir().unwrap());
        let key = std::fs::read(fixture(secret)).unwrap();
        g.run(&["--import"], &key);
        g
    }

    fn run(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.0.path())
            .args([
                "--batch",
                "--yes",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
            ])
            .args(["--passphrase", ""])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `gpg --clearsign` of an auth query string.
    fn auth(&self, identity: &str, params: &[(&str, &str)]) -> String {
        let query = muttr_node::crypto::auth::auth_query(identity, "pubkeyhash", nonce(), params);
        String::from_utf8(self.run(&["--clearsign"], query.as_bytes())).unwrap()
    }
}

async fn gnupg_client_uses_the_pod(kind: &str) {
    let pod = live_pod(PodConfig::default(), 31).await;
    let gpg = Gpg::with_key(&format!("{kind}.sec.asc"));
    let armored = std::fs::read_to_string(fixture(&format!("{kind}.pub.asc"))).unwrap();
    let hash = pubkeyhash(&armored);
    let r = http("POST", &pod.url("/"), &armored).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["identity"]["pubkeyhash"], hash.as_str());
    let a = http(
        "POST",
        &pod.url("/aliases"),
        &gpg.auth(&hash, &[("alias", "gnu")]),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        http("GET", &pod.url("/aliases/gnu"), "").await.body,
        armored
    );

    // WebSocket: hex of a gpg cleartext signature.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", pod.addr))
        .await
        .unwrap();
    let frame = hex::encode(gpg.auth(&hash, &[]));
    ws.send(Message::Text(frame.into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let key = "7".repeat(40);
    let from = format!("gnu@{}", pod.host());
    let n = http(
        "POST",
        &pod.url("/inboxes/gnu"),
        &gpg.auth(&hash, &[("from", &from), ("key", &key)]),
    )
    .await;
    assert_eq!(n.status, 200, "{}", n.body);
    match tokio::time::timeout(Duration::from_secs(1), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => assert!(t.contains(&key)),
        other => panic!("no push: {other:?}"),
    }
    // Token and playback.
    let t = http(
        "POST",
        &pod.url("/tokens"),
        &gpg.auth(&hash, &[("resource", "/inboxes"), ("method", "GET")]),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let token = t.json()["token"]["value"].as_str().unwrap().to_string();
    let p = http("GET", &pod.url(&format!("/inboxes?token={token}")), "").await;
    assert_eq!(p.json()["messages"][0]["messages"][0]["key"], key.as_str());
    // A gpg signature over altered parameters fails.
    let signed = gpg.auth(&hash, &[("alias", "gnu2")]);
    let forged = signed.replace("alias=gnu2", "alias=gnu3");
    http("POST", &pod.url("/aliases"), &forged)
        .await
        .assert_error(401);
}

#[tokio::test]
async fn gnupg_rsa_client() {
    gnupg_client_uses_the_pod("rsa").await;
}

#[tokio::test]
async fn gnupg_ed25519_client() {
    gnupg_client_uses_the_pod("ed25519").await;
}

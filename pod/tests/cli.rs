//! The `muttr` command line against a live pod: keygen, register, alias, send (passive and
//! active), inbox with verdicts and purge, and listen.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::live_pod;
use muttr_pod::PodConfig;

/// The `muttr` binary of this workspace (built on demand when only this package is tested).
fn muttr_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let bin = dir.join(format!("muttr{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "muttr-node", "--bin", "muttr"])
            .status()
            .unwrap();
        assert!(status.success(), "could not build the muttr binary");
    }
    bin
}

fn muttr(home: &Path, args: &[&str]) -> Output {
    Command::new(muttr_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("MUTTR_PASSPHRASE")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muttr_sends_reads_and_purges_through_a_pod() {
    let pod = live_pod(
        PodConfig {
            insecure_federation: true,
            ..PodConfig::default()
        },
        51,
    )
    .await;
    let info = PodInfo {
        host: pod.host(),
        seed: pod.seed.local_addr().to_string(),
    };
    // The commands block: run them off the runtime that serves the pod.
    tokio::task::spawn_blocking(move || scenario(&info))
        .await
        .unwrap();
}

struct PodInfo {
    host: String,
    seed: String,
}

fn scenario(pod: &PodInfo) {
    let user = |alias: &str| {
        let home = tempfile::tempdir().unwrap();
        ok(muttr(home.path(), &["keygen", "--name", alias]));
        let url = format!("http://{}", pod.host);
        ok(muttr(
            home.path(),
            &["register", "--pod", &url, "--insecure"],
        ));
        let out = ok(muttr(home.path(), &["alias", "add", alias]));
        assert!(
            out.contains(&format!("you are {alias}@{}", pod.host)),
            "{out}"
        );
        home
    };
    let alice = user("alice");
    let bob = user("bob");
    let bob_id = format!("bob@{}", pod.host);
    let alice_id = format!("alice@{}", pod.host);

    // Bob listens.
    let mut listener = Command::new(muttr_bin())
        .arg("--home")
        .arg(bob.path())
        .arg("listen")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_lines = BufReader::new(listener.stderr.take().unwrap()).lines();
    let ready = err_lines.next().unwrap().unwrap();
    assert!(ready.contains("listening"), "{ready}");

    // Passive send, then active send through the pod's seed.
    let out = ok(muttr(alice.path(), &["send", &bob_id, "hello bob"]));
    assert!(out.contains("key "), "{out}");
    let out = ok(muttr(
        alice.path(),
        &[
            "send",
            "--bootstrap",
            &pod.seed,
            &bob_id,
            "second, via my own seed",
        ],
    ));
    assert!(out.contains("key "), "{out}");

    // The listener printed the first one as it came.
    let mut out_lines = BufReader::new(listener.stdout.take().unwrap()).lines();
    let first = out_lines.next().unwrap().unwrap();
    assert!(
        first.starts_with(&format!("from {alice_id} (verified) key ")),
        "{first}"
    );
    assert_eq!(out_lines.next().unwrap().unwrap(), "hello bob");
    listener.kill().unwrap();
    listener.wait().unwrap();

    // Bob's inbox: both, verified; then purged.
    let out = ok(muttr(bob.path(), &["inbox"]));
    assert!(out.contains("hello bob"), "{out}");
    assert!(out.contains("second, via my own seed"), "{out}");
    assert_eq!(out.matches("(verified)").count(), 2, "{out}");
    assert!(out.contains("2 message(s)"), "{out}");
    let out = ok(muttr(bob.path(), &["inbox"]));
    assert!(out.contains("0 message(s)"), "{out}");

    // Errors are clear: unknown recipient, no pod configured.
    let out = muttr(
        alice.path(),
        &["send", &format!("nobody@{}", pod.host), "x"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    let empty = tempfile::tempdir().unwrap();
    ok(muttr(empty.path(), &["keygen"]));
    let out = muttr(empty.path(), &["inbox"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("muttr register"));
}

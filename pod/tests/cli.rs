//! The `muttr` command line against a live pod: keygen, register, alias, send (passive and
//! active), inbox with verdicts and purge, and listen.

mod common;

use common::process::Process;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::live_pod;
use muttr_pod::PodConfig;

/// The `muttr` binary of this workspace (built on demand when only this package is tested).
fn muttr_bin() -> PathBuf {
    common::node_bin("muttr")
}

fn muttr(home: &Path, args: &[&str]) -> Output {
    common::muttr_output(home, args)
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
        // -vv: each request on stderr at debug; without -v, stderr stays quiet.
        let out = muttr(
            home.path(),
            &["-vv", "register", "--pod", &url, "--insecure"],
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        ok(out);
        assert!(
            err.contains("DEBUG") && err.contains("POST") && err.contains("status=200"),
            "{err}"
        );
        let out = muttr(home.path(), &["key", "export"]);
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        ok(out);
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

/// A TCP proxy in front of the pod that, the first time a `DELETE /inboxes` passes through,
/// runs `hook` before forwarding it: the moment between a client's playback and its purge.
fn racing_proxy(upstream: String, hook: impl FnOnce() + Send + 'static) -> String {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    type Hook = Arc<Mutex<Option<Box<dyn FnOnce() + Send>>>>;
    let hook: Hook = Arc::new(Mutex::new(Some(Box::new(hook))));
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let upstream = upstream.clone();
            let hook = hook.clone();
            std::thread::spawn(move || {
                let mut server = std::net::TcpStream::connect(&upstream).unwrap();
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let back = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s2, &mut c2);
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if buf[..n].starts_with(b"DELETE /inboxes")
                        && let Some(h) = hook.lock().unwrap().take()
                    {
                        h();
                    }
                    if server.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Write);
                let _ = back.join();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muttr_inbox_keeps_a_message_that_arrives_between_playback_and_purge_p_x1() {
    let pod = live_pod(
        PodConfig {
            insecure_federation: true,
            ..PodConfig::default()
        },
        52,
    )
    .await;
    let host = pod.host();
    tokio::task::spawn_blocking(move || {
        let url = format!("http://{host}");
        let alice = tempfile::tempdir().unwrap();
        ok(muttr(alice.path(), &["keygen", "--name", "alice"]));
        ok(muttr(
            alice.path(),
            &["register", "--pod", &url, "--insecure"],
        ));
        ok(muttr(alice.path(), &["alias", "add", "alice"]));
        let bob_id = format!("bob@{host}");
        // Alice's second message is sent while Bob's `muttr inbox` is between its playback
        // and its purge: the proxy Bob talks through sends it when his DELETE comes by.
        let alice_dir = alice.path().to_path_buf();
        let late_to = bob_id.clone();
        let proxy = racing_proxy(host.clone(), move || {
            ok(muttr(
                &alice_dir,
                &["send", &late_to, "late, during the purge"],
            ));
        });
        let bob = tempfile::tempdir().unwrap();
        ok(muttr(bob.path(), &["keygen", "--name", "bob"]));
        let via_proxy = format!("http://{proxy}");
        ok(muttr(
            bob.path(),
            &["register", "--pod", &via_proxy, "--insecure"],
        ));
        ok(muttr(bob.path(), &["alias", "add", "bob"]));
        ok(muttr(alice.path(), &["send", &bob_id, "first"]));

        let out = muttr(bob.path(), &["inbox"]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let stdout = ok(out);
        assert!(
            stdout.contains("first") && stdout.contains("1 message(s)"),
            "{stdout}"
        );
        assert!(stderr.contains("1 newer entry kept"), "{stderr}");
        // The late message was not purged unseen: the next inbox has it.
        let stdout = ok(muttr(bob.path(), &["inbox"]));
        assert!(stdout.contains("late, during the purge"), "{stdout}");
        assert!(stdout.contains("1 message(s)"), "{stdout}");
        assert!(ok(muttr(bob.path(), &["inbox"])).contains("0 message(s)"));
    })
    .await
    .unwrap();
}

/// The `muttr-pod` binary on `listen` with data in `data`; returns once it is ready.
fn pod_process(data: &Path, listen: &str) -> Process {
    let data = data.to_str().expect("a UTF-8 temporary path");
    let args = [
        "--listen",
        listen,
        "--seed-listen",
        "127.0.0.1:0",
        "--log",
        "warn",
    ];
    let pod = Process::start(
        env!("CARGO_BIN_EXE_muttr-pod").as_ref(),
        args.iter()
            .chain(&["--insecure-federation", "--data-dir", data]),
    );
    assert!(pod.ready.contains("listening"), "{:?}", pod.ready);
    pod
}

#[test]
fn muttr_listen_keeps_printing_messages_across_a_pod_restart() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut pod = pod_process(data.path(), &port);
    let url = format!("http://{port}");
    let user = |alias: &str| {
        let home = tempfile::tempdir().unwrap();
        ok(muttr(home.path(), &["keygen", "--name", alias]));
        ok(muttr(
            home.path(),
            &["register", "--pod", &url, "--insecure"],
        ));
        ok(muttr(home.path(), &["alias", "add", alias]));
        home
    };
    let (alice, bob) = (user("alice"), user("bob"));
    let bob_id = format!("bob@{port}");
    let mut listener = Command::new(muttr_bin())
        .arg("--home")
        .arg(bob.path())
        .arg("listen")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let out = listener.stdout.take().unwrap();
    let err = listener.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(format!("out: {l}"));
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(format!("err: {l}"));
        }
    });
    let wait_for = |what: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains(what) => return,
                Ok(l) => seen.push(l),
                Err(_) => panic!("no {what:?} from muttr listen; saw {seen:#?}"),
            }
        }
    };
    wait_for("listening");
    ok(muttr(
        alice.path(),
        &["send", &bob_id, "before the restart"],
    ));
    wait_for("before the restart");

    // The pod goes down hard and comes back on its data directory.
    pod.kill();
    wait_for("connection lost");
    let mut pod = pod_process(data.path(), &port);
    ok(muttr(alice.path(), &["send", &bob_id, "after the restart"]));
    wait_for("after the restart");
    listener.kill().unwrap();
    listener.wait().unwrap();
    pod.kill();
}

/// `muttr` over `https://` with pods whose certificates come from private CAs: `--ca-file` at
/// `register` is remembered and used by the later commands (to the user's own pod and to the
/// recipient's); without it the command fails naming the pod and the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muttr_sends_and_reads_over_https_with_ca_files() {
    let (pki1, pki2) = (common::Pki::new("pod1 CA"), common::Pki::new("pod2 CA"));
    let cas = vec![pki1.ca(), pki2.ca()];
    let config = PodConfig {
        ca_files: cas.clone(),
        ..PodConfig::default()
    };
    let pod1 = common::live_pod_tls(config.clone(), 53, Some(&pki1)).await;
    let pod2 = common::live_pod_tls(config, 54, Some(&pki2)).await;
    pod2.seed
        .handle()
        .bootstrap(vec![pod1.seed.local_addr()])
        .await
        .unwrap();
    let (url1, url2) = (pod1.url(""), pod2.url(""));
    let (host2, ca1, ca2) = (pod2.host(), pki1.ca(), pki2.ca());
    tokio::task::spawn_blocking(move || {
        let ca1 = ca1.to_str().unwrap();
        let ca2 = ca2.to_str().unwrap();
        let user = |alias: &str, url: &str| {
            let home = tempfile::tempdir().unwrap();
            ok(muttr(home.path(), &["keygen", "--name", alias]));
            // Both CAs: the own pod's, and the other pod's for sending there.
            ok(muttr(
                home.path(),
                &["register", "--pod", url, "--ca-file", ca1, "--ca-file", ca2],
            ));
            ok(muttr(home.path(), &["alias", "add", alias]));
            home
        };
        let alice = user("alice", &url1);
        let bob = user("bob", &url2);
        let out = ok(muttr(
            alice.path(),
            &["send", &format!("bob@{host2}"), "hello bob, over https"],
        ));
        assert!(out.contains("key "), "{out}");
        let out = ok(muttr(bob.path(), &["inbox"]));
        assert!(out.contains("hello bob, over https"), "{out}");
        assert_eq!(out.matches("(verified)").count(), 1, "{out}");

        // Without the CA: a clear failure naming the pod and the certificate.
        let stranger = tempfile::tempdir().unwrap();
        ok(muttr(stranger.path(), &["keygen", "--name", "carol"]));
        let out = muttr(stranger.path(), &["register", "--pod", &url1]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&url1), "{err}");
        assert!(err.contains("certificate"), "{err}");
        // A CA file that is not one: refused up front, naming the file.
        let bogus = stranger.path().join("bogus.pem");
        std::fs::write(&bogus, "not a certificate").unwrap();
        let out = muttr(
            stranger.path(),
            &[
                "register",
                "--pod",
                &url1,
                "--ca-file",
                bogus.to_str().unwrap(),
            ],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bogus.pem"), "{err}");
    })
    .await
    .unwrap();
}

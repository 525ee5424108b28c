//! `muttrd` end to end: two daemons, each on its own pod and with its own seed in the DHT,
//! exchange verified messages through their sockets; a restarted daemon loses nothing; the
//! API answers bad lines with errors and stays open; one daemon per home; the socket is 0600.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{live_pod, muttr_ok, muttr_user, node_bin, two_pods};
use muttr_pod::PodConfig;
use serde_json::{Value, json};

struct Daemon {
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(home: &Path) -> Daemon {
        let mut child = Command::new(node_bin("muttrd"))
            .arg("--home")
            .arg(home)
            .args(["--log", "warn"])
            .env_remove("MUTTR_PASSPHRASE")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert!(ready.starts_with("muttrd serving"), "{ready:?}");
        Daemon {
            child,
            socket: home.join("muttrd.sock"),
        }
    }

    fn connect(&self) -> Api {
        let s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Api {
            read: BufReader::new(s.try_clone().unwrap()),
            write: s,
        }
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Api {
    read: BufReader<UnixStream>,
    write: UnixStream,
}

/// `node/daemon.schema.json`, the API's every line.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../node/daemon.schema.json"
        ))
        .unwrap();
        jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
    })
}

/// Asserts `line` is valid under the schema.
fn valid(line: &Value) {
    let errors: Vec<String> = schema().iter_errors(line).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{line} breaks daemon.schema.json: {errors:?}"
    );
}

impl Api {
    fn line(&mut self, text: &str) {
        self.write.write_all(text.as_bytes()).unwrap();
        self.write.write_all(b"\n").unwrap();
    }

    fn next(&mut self) -> Value {
        let mut line = String::new();
        self.read.read_line(&mut line).expect("a line within 30 s");
        let v = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        valid(&v);
        v
    }

    /// Sends a request (valid under the schema) and returns its answer (skipping events that
    /// come first).
    fn call(&mut self, req: Value) -> Value {
        valid(&req);
        self.call_bad(req)
    }

    /// Sends a request that may break the schema on purpose; returns its answer.
    fn call_bad(&mut self, req: Value) -> Value {
        self.line(&req.to_string());
        loop {
            let v = self.next();
            if v.get("event").is_none() {
                assert_eq!(v["id"], req["id"], "{v}");
                return v;
            }
        }
    }

    /// The next `message` event.
    fn message(&mut self) -> Value {
        loop {
            let v = self.next();
            if v["event"] == "message" {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_two_pods_exchange_verified_messages_and_a_restart_loses_none() {
    let (pod1, pod2) = two_pods(81).await;
    let (host1, host2) = (pod1.host(), pod2.host());
    tokio::task::spawn_blocking(move || {
        let alice = muttr_user(&host1, "alice");
        let bob = muttr_user(&host2, "bob");
        let alice_id = format!("alice@{host1}");
        let bob_id = format!("bob@{host2}");

        let a = Daemon::start(alice.path());
        let b = Daemon::start(bob.path());
        let mode = std::fs::metadata(&a.socket).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );

        let mut alice_api = a.connect();
        let mut bob_api = b.connect();
        let status = alice_api.call(json!({"id": 1, "op": "status"}));
        assert_eq!(status["ok"], true, "{status}");
        assert_eq!(status["user_id"], alice_id.as_str());
        assert_eq!(status["mode"], "active");
        assert!(
            status["seed"]["contacts"].as_u64().unwrap() >= 1,
            "{status}"
        );

        // Bad input: errors, and the connection stays open.
        bob_api.line("this is not json");
        let e = bob_api.next();
        assert_eq!(e["ok"], false);
        assert!(e["error"].as_str().unwrap().contains("not JSON"), "{e}");
        let e = bob_api.call_bad(json!({"id": 2, "op": "teleport"}));
        assert!(e["error"].as_str().unwrap().contains("unknown op"), "{e}");
        let e = bob_api.call_bad(json!({"id": 3, "op": "send", "text": "no recipient"}));
        assert!(e["error"].as_str().unwrap().contains("`to`"), "{e}");

        let e = bob_api
            .call(json!({"id": 31, "op": "send", "to": format!("nobody@{host2}"), "text": "?"}));
        assert_eq!(e["ok"], false, "an unknown contact is an error: {e}");
        assert!(!e["error"].as_str().unwrap().is_empty());

        // Bob subscribes; Alice sends; Bob is told, verified.
        assert_eq!(
            bob_api.call(json!({"id": 4, "op": "subscribe"}))["ok"],
            true
        );
        let sent = alice_api.call(json!({"id": 5, "op": "send", "to": bob_id, "text": "hi bob"}));
        assert_eq!(sent["ok"], true, "{sent}");
        assert!(
            sent["stored_at"].as_u64().unwrap() >= 1,
            "stored in the DHT: {sent}"
        );
        let first_key = sent["key"].clone();
        let m = bob_api.message();
        assert_eq!(m["from"], alice_id.as_str());
        assert_eq!(m["text"], "hi bob");
        assert_eq!(m["verified"], true, "{m}");
        assert_eq!(m["key"], sent["key"]);

        // Bob replies; Alice plays it back.
        let r = bob_api.call(json!({"id": 6, "op": "send", "to": alice_id, "text": "hi alice"}));
        assert_eq!(r["ok"], true, "{r}");
        let mut got = Value::Null;
        for _ in 0..100 {
            let p = alice_api.call(json!({"id": 7, "op": "playback"}));
            if let Some(m) = p["messages"].as_array().and_then(|m| m.first()) {
                got = m.clone();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(got["text"], "hi alice", "{got}");
        assert_eq!(got["verified"], true);

        // A second daemon for Bob's home refuses to start.
        let out = Command::new(node_bin("muttrd"))
            .arg("--home")
            .arg(bob.path())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("another muttrd is running"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // Bob's daemon stops; Alice writes meanwhile; the restarted daemon plays it back.
        drop(bob_api);
        b.stop();
        let sent = alice_api
            .call(json!({"id": 8, "op": "send", "to": bob_id, "text": "while you were away"}));
        assert_eq!(sent["ok"], true, "{sent}");
        let b = Daemon::start(bob.path());
        let mut bob_api = b.connect();
        let p = bob_api.call(json!({"id": 9, "op": "playback"}));
        let texts: Vec<&str> = p["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        assert!(texts.contains(&"while you were away"), "{p}");
        assert!(texts.contains(&"hi bob"), "not purged yet: {p}");
        let purged = bob_api.call(json!({"id": 10, "op": "purge", "upto": p["upto"]}));
        assert_eq!(purged["ok"], true, "{purged}");
        assert_eq!(purged["left"], 0);
        let contacts = bob_api.call(json!({"id": 11, "op": "contacts"}));
        assert_eq!(contacts["ok"], true);

        // `muttr` goes through the daemon of its home, and prints JSON lines for scripts.
        let out = muttr_ok(
            alice.path(),
            &["send", "--json", &bob_id, "from the command line"],
        );
        let sent: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(sent["to"], bob_id.as_str());
        assert_eq!(sent["key"].as_str().unwrap().len(), 40, "{sent}");
        let mut lines = Vec::new();
        for _ in 0..100 {
            let out = muttr_ok(bob.path(), &["inbox", "--json", "--keep"]);
            lines = out
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect();
            if !lines.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["text"], "from the command line");
        assert_eq!(lines[0]["verified"], true);
        assert_eq!(lines[0]["key"], sent["key"]);
        let text = muttr_ok(bob.path(), &["inbox", "--keep"]);
        assert!(text.contains("1 message(s) (through muttrd)"), "{text}");
        b.stop();
        // Without a daemon, the same JSON straight from the pod.
        let out = muttr_ok(bob.path(), &["inbox", "--json", "--keep"]);
        let direct: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(direct["text"], "from the command line");
        assert_eq!(direct["from"], alice_id.as_str());
        a.stop();
        // Alice's seed published her messages, and its store remembers them after the daemon
        // stopped: a restarted daemon's seed republishes them before they expire (P-K2).
        let db = rusqlite::Connection::open(
            alice
                .path()
                .join("seed")
                .join(muttr_node::store::sqlite::FILE_NAME),
        )
        .unwrap();
        let published: Vec<String> = db
            .prepare("SELECT lower(hex(key)) FROM publications")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for key in [&first_key, &sent["key"]] {
            let key = key.as_str().unwrap().to_string();
            assert!(published.contains(&key), "{key} not in {published:?}");
        }
    })
    .await
    .unwrap();
}

/// The example bot in another language (`examples/echo_bot.py`) answers a message through the
/// socket API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_echo_bot_answers_a_message() {
    let config = PodConfig {
        insecure_federation: true,
        ..PodConfig::default()
    };
    let pod = live_pod(config, 83).await;
    let host = pod.host();
    tokio::task::spawn_blocking(move || {
        let alice = muttr_user(&host, "alice");
        let bot = muttr_user(&host, "bot");
        let a = Daemon::start(alice.path());
        let b = Daemon::start(bot.path());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/echo_bot.py");
        let mut python = Command::new("python3")
            .arg(script)
            .arg(&b.socket)
            .arg("1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        // The bot says when its `subscribe` is answered: from then on it hears every message.
        let mut bot_out = BufReader::new(python.stdout.take().unwrap());
        let mut said = String::new();
        bot_out.read_line(&mut said).unwrap();
        assert_eq!(said.trim(), "subscribed");
        let mut api = a.connect();
        let sent =
            api.call(json!({"id": 1, "op": "send", "to": format!("bot@{host}"), "text": "ping"}));
        assert_eq!(sent["ok"], true, "{sent}");
        let mut echo = Value::Null;
        for _ in 0..100 {
            let p = api.call(json!({"id": 2, "op": "playback"}));
            if let Some(m) = p["messages"].as_array().and_then(|m| m.first()) {
                echo = m.clone();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(echo["text"], "echo: ping", "{echo}");
        assert_eq!(echo["from"], format!("bot@{host}"));
        assert_eq!(echo["verified"], true);
        said.clear();
        bot_out.read_line(&mut said).unwrap();
        assert!(said.starts_with("echoed 'ping'"), "{said}");
        let out = python.wait().unwrap();
        assert!(out.success(), "{out:?}");
        a.stop();
        b.stop();
    })
    .await
    .unwrap();
}

/// The schema is strict enough to catch what it should.
#[test]
fn the_schema_refuses_bad_lines() {
    for bad in [
        json!({"id": 1, "op": "teleport"}),
        json!({"id": 1, "op": "send", "text": "no recipient"}),
        json!({"id": 1, "ok": false}),
        json!({"event": "message", "from": "a@b", "to": "c@d", "verified": true}),
        json!({"event": "connection", "state": "sleepy"}),
    ] {
        assert!(!schema().is_valid(&bad), "{bad} passed");
    }
    assert!(schema().is_valid(&json!({"id": 1, "op": "send", "to": "bob@pod:8080", "text": "hi"})));
    assert!(schema().is_valid(&json!({"id": null, "ok": false, "error": "not JSON"})));
}

//! The committed vectors: they are what the generator makes (no diff), this implementation
//! passes every one of them in-process and through the adapter binary, and a mutated
//! implementation fails exactly the cases of the rule it breaks.

use std::collections::BTreeSet;
use std::process::Command;

use muttr_conformance::adapter::{Implementation, InProcess};
use muttr_conformance::catalogue::{self, Live};
use muttr_conformance::report::Verdict;
use muttr_conformance::{generate, pgp, rest, vectors};
use serde_json::{Value, json};

/// The repository's `vectors/`.
fn vectors_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

#[test]
fn the_embedded_vectors_are_the_committed_ones() {
    let embedded = vectors::load(&vectors::Source::Embedded).unwrap();
    let on_disk = vectors::load(&vectors::Source::Dir(vectors_dir())).unwrap();
    assert_eq!(embedded, on_disk);
    let err = vectors::load(&vectors::Source::Dir("/nonexistent/vectors".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/vectors"), "{err}");
}

/// The tool as `cargo install` leaves it: copied into an empty directory and run from there,
/// it runs every vector (in-process and REST) from the copy embedded in it; no path to this
/// tree's vectors is in the binary.
#[test]
fn the_binary_copied_to_an_empty_directory_runs_every_vector() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_muttr-conformance"));
    let bytes = std::fs::read(bin).unwrap();
    for path in [vectors_dir(), std::fs::canonicalize(vectors_dir()).unwrap()] {
        let needle = path.display().to_string();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} is in the binary"
        );
    }
    let empty = tempfile::tempdir().unwrap();
    let copy = empty.path().join("muttr-conformance");
    std::fs::copy(bin, &copy).unwrap();
    let out = Command::new(&copy)
        .current_dir(empty.path())
        .arg("vectors")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("result: OK"), "{stdout}");
    assert!(stdout.contains(" 0 fail"), "{stdout}");
}

#[test]
fn committed_vectors_equal_the_generator_output() {
    let dir = vectors_dir();
    let files = generate::generate(&dir).unwrap();
    assert_eq!(files.len(), generate::FILES.len());
    for (name, text) in files {
        let committed = std::fs::read_to_string(dir.join(&name)).unwrap_or_else(|e| {
            panic!("{name}: {e}; run `cargo run -p muttr-conformance -- gen-vectors`")
        });
        assert!(
            committed == text,
            "vectors/{name} differs from the generator; run `cargo run -p muttr-conformance -- gen-vectors`"
        );
    }
}

/// `rest.json` is hand-written data, not generated: the few literal values it holds must be
/// what they claim to be.
#[test]
fn the_literal_values_of_rest_json_are_what_they_claim() {
    let dir = vectors_dir();
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rest.json")).unwrap()).unwrap();
    let case = |id: &str| -> Vec<Value> {
        doc["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not in rest.json"))["steps"]
            .as_array()
            .unwrap()
            .clone()
    };
    // The stored value: hex of an armored OpenPGP message, its key SHA-1 of that hex text.
    let store = case("rest.messages.store-ok");
    let value = store[0]["request"]["body"].as_str().unwrap();
    let armored = String::from_utf8(hex::decode(value).unwrap()).unwrap();
    assert!(
        armored.starts_with("-----BEGIN PGP MESSAGE-----"),
        "{armored}"
    );
    assert_eq!(
        store[0]["expect"]["json"]["key"],
        json!(pgp::sha1_hex(value))
    );
    let get = case("rest.messages.get-ok");
    assert_eq!(get[0]["request"]["body"], json!(value));
    assert_eq!(
        get[1]["request"]["path"],
        json!(format!("/messages/{}", pgp::sha1_hex(value)))
    );
    assert_eq!(get[1]["expect"]["body"], json!(value));
    // The truncated key: the first half of alice's committed public key.
    let alice = std::fs::read_to_string(dir.join("pgp/keys/alice.pub.asc")).unwrap();
    let cut = case("rest.register.truncated-armor-400");
    assert_eq!(cut[0]["request"]["body"], json!(alice[..alice.len() / 2]));
}

#[test]
fn this_implementation_passes_every_vector_in_process() {
    let files = vectors::load(&vectors::Source::Embedded).unwrap();
    let cases = vectors::run(&files, &mut InProcess);
    let bad: Vec<_> = cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "case ids are unique");
    assert!(cases.len() >= 280, "{} vector cases", cases.len());
    // Every rule a case names is defined in spec/PROFILE.md, so every report can link it.
    for c in &cases {
        assert!(
            muttr_conformance::profile::section_of(&c.rule).is_some(),
            "{}: rule {} is not in spec/PROFILE.md",
            c.id,
            c.rule
        );
    }
}

#[test]
fn the_json_report_says_what_ran_against_what_and_links_each_rule() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let html_path = dir.path().join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args(["vectors", "--json"])
        .arg(&json_path)
        .arg("--html")
        .arg(&html_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("§1 Seed-to-seed datagrams"), "{text}");
    assert!(
        text.contains("§7 Extensions beyond the whitepaper"),
        "{text}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let meta = &report["meta"];
    assert_eq!(meta["tool"], "muttr-conformance");
    assert_eq!(meta["profile"], "spec/PROFILE.md");
    assert_eq!(meta["revision"].as_str().unwrap(), muttr_node::GIT_REV);
    assert!(meta["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(meta["duration_s"].as_f64().unwrap() > 0.0);
    assert_eq!(meta["target"], "this implementation (in process)");
    let case = &report["cases"][0];
    assert_eq!(case["rule"], "P-W6");
    assert_eq!(
        case["rule_link"],
        "spec/PROFILE.md#1-seed-to-seed-datagrams"
    );
    let sections = report["sections"].as_array().unwrap();
    let total: u64 = sections.iter().map(|s| s["pass"].as_u64().unwrap()).sum();
    assert_eq!(total, report["summary"]["pass"].as_u64().unwrap());
    // The HTML page: one row per case, each rule linked, self-contained (no external files).
    let page = std::fs::read_to_string(&html_path).unwrap();
    assert!(page.starts_with("<!doctype html>") && page.trim_end().ends_with("</html>"));
    assert_eq!(
        page.matches(" data-v=\"").count() as u64,
        report["summary"]["total"].as_u64().unwrap()
    );
    assert!(page.contains("href=\"spec/PROFILE.md#1-seed-to-seed-datagrams\""));
    assert!(page.contains("wire.datagram.empty"));
    assert!(
        !page.contains("src=\"http") && !page.contains("<link"),
        "self-contained"
    );
}

#[test]
fn adapter_binary_passes_every_vector_and_reports_json_and_junit() {
    let bin = env!("CARGO_BIN_EXE_muttr-conformance");
    let tmp = tempfile::tempdir().unwrap();
    let (json_path, junit_path) = (tmp.path().join("r.json"), tmp.path().join("r.xml"));
    let out = Command::new(bin)
        .args(["vectors", "--impl", &format!("'{bin}' adapter"), "--json"])
        .arg(&json_path)
        .arg("--junit")
        .arg(&junit_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("result: OK"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let total = report["summary"]["total"].as_u64().unwrap();
    assert!(total >= 280);
    // Without --pod, an adapter's run has no pod for the REST cases: those alone are
    // not-applicable.
    let rest = rest_cases().len() as u64;
    assert_eq!(report["summary"]["not_applicable"].as_u64().unwrap(), rest);
    assert_eq!(report["summary"]["pass"].as_u64().unwrap(), total - rest);
    let na_ids: BTreeSet<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "not-applicable")
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(na_ids.iter().all(|i| i.starts_with("rest.")), "{na_ids:?}");
    let c = &report["cases"][0];
    for field in ["id", "rule", "verdict", "detail"] {
        assert!(c.get(field).is_some(), "{field}");
    }
    let xml = std::fs::read_to_string(&junit_path).unwrap();
    assert_eq!(xml.matches("<testcase").count() as u64, total);
    assert!(!xml.contains("<failure"));
}

/// The committed `rest.json`, key texts read in.
fn rest_doc() -> Value {
    let files = vectors::load(&vectors::Source::Embedded).unwrap();
    vectors::rest_doc(&files).unwrap().clone()
}

fn rest_cases() -> Vec<Value> {
    rest_doc()["cases"].as_array().unwrap().clone()
}

#[test]
fn rest_vectors_are_many_distinct_and_cover_every_endpoint() {
    let cases = rest_cases();
    assert!(cases.len() >= 40, "{} REST cases", cases.len());
    let ids: BTreeSet<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), cases.len());
    let mut rules = BTreeSet::new();
    let mut endpoints = BTreeSet::new();
    for c in &cases {
        let rule = c["rule"].as_str().unwrap();
        assert!(
            ["P-A", "P-S", "P-V", "P-X1"]
                .iter()
                .any(|p| rule.starts_with(p)),
            "{rule}"
        );
        rules.insert(rule.to_string());
        assert!(
            matches!(c["strength"].as_str(), Some("MUST" | "SHOULD" | "reading")),
            "{c}"
        );
        // The checked steps (not the setup ones) reach these endpoints.
        for s in c["steps"].as_array().unwrap() {
            if s["setup"] == true {
                continue;
            }
            if s.get("ws").is_some() {
                endpoints.insert("WS /".to_string());
                continue;
            }
            let path = s["request"]["path"].as_str().unwrap();
            let path = path.split('?').next().unwrap();
            let route = match path.rsplit_once('/') {
                Some(("", "")) => "/".to_string(),
                Some(("", first)) => format!("/{first}"),
                Some((head, _)) => format!("{head}/:x"),
                None => path.to_string(),
            };
            endpoints.insert(format!(
                "{} {route}",
                s["request"]["method"].as_str().unwrap()
            ));
        }
    }
    for e in [
        "POST /",
        "POST /messages",
        "GET /messages/:x",
        "GET /aliases/:x",
        "POST /aliases",
        "POST /tokens",
        "GET /inboxes",
        "DELETE /inboxes",
        "POST /inboxes/:x",
        "WS /",
    ] {
        assert!(
            endpoints.contains(e),
            "no checked step reaches {e}: {endpoints:?}"
        );
    }
    for r in [
        "P-A1", "P-A2", "P-A3", "P-A4", "P-A5", "P-A6", "P-A7", "P-A8", "P-A9", "P-S1", "P-S2",
    ] {
        assert!(rules.contains(r), "no REST case for {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_pod_passes_every_rest_vector_in_process() {
    let pod = rest::LocalPod::start().await.unwrap();
    let mut opts = rest::Options::new(pod.url.clone());
    opts.rng_seed = 7;
    let cases = rest::run(&rest_doc(), &opts).await.unwrap();
    assert_eq!(cases.len(), rest_cases().len());
    let bad: Vec<_> = cases
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_cli_runs_the_rest_vectors_against_a_pod_url() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pod = rt.block_on(rest::LocalPod::start()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let json_path = tmp.path().join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args(["vectors", "--pod", &pod.url, "--json"])
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let rest_passed = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("rest.") && c["verdict"] == "pass")
        .count();
    assert_eq!(rest_passed, rest_cases().len());
    drop(pod);
    // Nothing listens there any more: every REST case fails, none hangs or panics.
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args([
            "vectors",
            "--pod",
            "http://127.0.0.1:1",
            "--timeout-ms",
            "2000",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("rest.register.ok"));
}

#[test]
fn a_dead_adapter_fails_cases_instead_of_hanging_or_panicking() {
    let bin = env!("CARGO_BIN_EXE_muttr-conformance");
    let out = Command::new(bin)
        .args(["vectors", "--impl", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("adapter failure"));
}

/// Runs the vectors through `adapter`; its exit code and stdout. Fails the test instead of
/// hanging if the run does not end.
fn run_adapter(adapter: &str) -> (Option<i32>, String) {
    let bin = env!("CARGO_BIN_EXE_muttr-conformance");
    let mut child = Command::new(bin)
        .args(["vectors", "--impl", adapter, "--impl-timeout", "500ms"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the run with adapter {adapter:?} did not end");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap())
}

#[test]
fn an_adapter_that_never_answers_fails_the_first_case_and_the_rest_are_not_judged() {
    let (code, out) = run_adapter("echo 'adapter: starting' >&2; cat > /dev/null");
    assert_eq!(code, Some(1), "{out}");
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("fail") && first.contains("wire.datagram.empty"),
        "{out}"
    );
    assert!(
        out.contains("no answer within 500ms (--impl-timeout)"),
        "{out}"
    );
    assert!(out.contains("adapter: starting"), "the stderr tail: {out}");
    assert!(
        out.contains("not run: the adapter stopped at case wire.datagram.empty"),
        "{out}"
    );
    assert!(out.contains("1 fail (0 expected)"), "{out}");
    assert!(
        out.contains("not judged (the target stopped answering)"),
        "{out}"
    );
}

#[test]
fn an_adapter_that_writes_garbage_or_exits_is_named_as_such() {
    let (code, out) = run_adapter("read line; echo 'this is not json'; cat > /dev/null");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the adapter answered non-JSON"), "{out}");
    let (code, out) = run_adapter("read line; echo 'dying' >&2; exit 3");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("the adapter exited (exit status: 3)"), "{out}");
    assert!(out.contains("dying"), "{out}");
}

/// This implementation with one rule broken, as another implementation might break it.
struct Mutant {
    inner: InProcess,
    bug: Bug,
}

#[derive(Clone, Copy)]
enum Bug {
    /// Keys are SHA-1 of the armored text (libmuttr), and STORE checks that key.
    LibmuttrKey,
    /// Node IDs hash `[address]:port` for IPv6.
    BracketedIpv6NodeId,
    /// Decoding accepts uppercase hex in `nodeID`.
    UppercaseNodeIdAccepted,
    /// Closest-first by little-endian comparison.
    LittleEndianDistance,
    /// Any signed message is "good", whoever signed it.
    TrustsAnySigner,
    /// Auth nonces are never checked for age.
    NoNonceWindow,
}

impl Implementation for Mutant {
    fn call(&mut self, req: &Value) -> Result<Value, String> {
        let mut req = req.clone();
        match (self.bug, req["op"].as_str()) {
            (Bug::LibmuttrKey, Some("key_of")) => {
                let armored =
                    String::from_utf8(hex::decode(req["value"].as_str().unwrap()).unwrap())
                        .unwrap();
                return Ok(json!({"ok": pgp::sha1_hex(&armored)}));
            }
            (Bug::LibmuttrKey, Some("check_store")) => {
                // Accept the key libmuttr would compute by checking against that instead.
                let v = req["value"].as_str().unwrap_or_default();
                if let Some(armored) = hex::decode(v).ok().and_then(|b| String::from_utf8(b).ok())
                    && req["key"] == json!(pgp::sha1_hex(&armored))
                {
                    req["key"] = json!(pgp::sha1_hex(v));
                }
            }
            (Bug::BracketedIpv6NodeId, Some("node_id")) => {
                let a = req["address"].as_str().unwrap();
                if a.contains(':') {
                    return Ok(json!({"ok": pgp::sha1_hex(&format!("[{a}]:{}", req["port"]))}));
                }
            }
            (Bug::UppercaseNodeIdAccepted, Some("decode")) => {
                let bytes = hex::decode(req["input_hex"].as_str().unwrap()).unwrap();
                if bytes.len() <= 65_507
                    && let Ok(mut v) = serde_json::from_slice::<Value>(&bytes)
                    && let Some(id) = v["params"]["nodeID"].as_str()
                    && id.len() == 40
                {
                    v["params"]["nodeID"] = json!(id.to_lowercase());
                    req["input_hex"] = json!(hex::encode(serde_json::to_vec(&v).unwrap()));
                }
            }
            (Bug::LittleEndianDistance, Some("closest")) => {
                let target = hex::decode(req["target"].as_str().unwrap()).unwrap();
                let mut ids: Vec<String> = req["ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                let le = |id: &String| {
                    let b = hex::decode(id).unwrap();
                    b.iter()
                        .zip(&target)
                        .map(|(x, y)| x ^ y)
                        .rev()
                        .collect::<Vec<u8>>()
                };
                ids.sort_by_key(le);
                ids.truncate(req["k"].as_u64().unwrap() as usize);
                return Ok(json!({"ok": ids}));
            }
            (Bug::TrustsAnySigner, Some("pgp_message")) => {
                let a = self.inner.call(&req)?;
                if a["ok"]["verdict"] == "wrong-signer" {
                    return Ok(json!({"ok": {"verdict": "good"}}));
                }
                return Ok(a);
            }
            (Bug::NoNonceWindow, Some("pgp_auth")) => {
                req["window_ms"] = json!(u64::MAX / 2);
            }
            _ => {}
        }
        self.inner.call(&req)
    }
}

fn failing(bug: Bug) -> (BTreeSet<String>, BTreeSet<String>) {
    let files = vectors::load(&vectors::Source::Embedded).unwrap();
    let cases = vectors::run(
        &files,
        &mut Mutant {
            inner: InProcess,
            bug,
        },
    );
    let failed: Vec<_> = cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    (
        failed.iter().map(|c| c.id.clone()).collect(),
        failed.iter().map(|c| c.rule.clone()).collect(),
    )
}

#[test]
fn each_mutant_fails_exactly_its_rule() {
    let (ids, rules) = failing(Bug::LibmuttrKey);
    assert_eq!(rules, BTreeSet::from(["P-V2".to_string()]), "{ids:?}");
    assert!(ids.contains("store.refuse.libmuttr-key"), "{ids:?}");
    assert!(ids.iter().any(|i| i.starts_with("value-key.")), "{ids:?}");

    let (ids, rules) = failing(Bug::BracketedIpv6NodeId);
    assert_eq!(rules, BTreeSet::from(["P-W3".to_string()]));
    assert!(
        ids.contains("node-id.ipv6-loopback") && !ids.contains("node-id.loopback-4000"),
        "{ids:?}"
    );

    let (ids, rules) = failing(Bug::UppercaseNodeIdAccepted);
    assert_eq!(rules, BTreeSet::from(["P-W4".to_string()]), "{ids:?}");
    assert_eq!(ids.len(), 8, "one per message type: {ids:?}");

    let (ids, rules) = failing(Bug::LittleEndianDistance);
    // Only closest-k cases (all about the ordering of P-K1) fail, the big-endian one among them.
    assert!(ids.iter().all(|i| i.starts_with("closest.")), "{ids:?}");
    assert!(ids.contains("closest.big-endian"), "{ids:?}");
    assert!(rules.contains("P-K1"), "{rules:?}");

    let (ids, rules) = failing(Bug::TrustsAnySigner);
    assert_eq!(
        ids,
        BTreeSet::from(["pgp.message.wrong-signer".to_string()])
    );
    assert_eq!(rules, BTreeSet::from(["P-G3".to_string()]));

    let (ids, rules) = failing(Bug::NoNonceWindow);
    assert_eq!(ids, BTreeSet::from(["pgp.auth.stale-nonce".to_string()]));
    assert_eq!(rules, BTreeSet::from(["P-A2".to_string()]));
}

/// `list` names every case the run covers; `--only` / `--skip` select by glob, before the
/// cases run; a bad glob is a usage error (exit 2).
#[test]
fn list_shows_every_case_and_only_skip_select_them() {
    let bin = env!("CARGO_BIN_EXE_muttr-conformance");
    let files = vectors::load(&vectors::Source::Embedded).unwrap();
    let all: BTreeSet<String> = files
        .iter()
        .flat_map(|(_, d)| d["cases"].as_array().unwrap().clone())
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let list = |args: &[&str]| -> BTreeSet<String> {
        let out = Command::new(bin).arg("list").args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                assert_eq!(cols.len(), 3, "id, rule, description: {l}");
                cols[0].to_string()
            })
            .collect()
    };
    let listed = list(&["vectors"]);
    assert_eq!(listed, all);
    assert!(listed.len() >= 489, "{} cases", listed.len());
    // The live suites' cases come from their catalogues; without a suite, all three.
    for (suite, live, at_least) in [("seed", Live::Seed, 208), ("pod", Live::Pod, 287)] {
        let ids = list(&[suite]);
        let want: BTreeSet<String> = catalogue::entries(live)
            .iter()
            .map(|e| e.id.clone())
            .collect();
        assert_eq!(ids, want, "{suite}");
        assert!(ids.len() >= at_least, "{suite}: {}", ids.len());
    }
    let everything = list(&[]);
    let mut union = all.clone();
    for live in Live::ALL {
        union.extend(catalogue::entries(live).iter().map(|e| e.id.clone()));
    }
    assert_eq!(everything, union);
    assert_eq!(
        list(&["pod", "--only", "pod.fed.*", "--skip", "*.json-error"]).len(),
        10
    );

    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("r.json");
    let out = Command::new(bin)
        .args(["vectors", "--only", "wire.*", "--only", "rest.register.*"])
        .args(["--skip", "wire.datagram.*", "--json"])
        .arg(&json_path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let ran: BTreeSet<String> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let expected: BTreeSet<String> = all
        .iter()
        .filter(|id| {
            (id.starts_with("wire.") || id.starts_with("rest.register."))
                && !id.starts_with("wire.datagram.")
        })
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(ran, expected);

    let out = Command::new(bin)
        .args(["vectors", "--skip", "rest.[oops"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a glob"));
}

/// The reference adapter in another language (`conformance/adapters/muttr_adapter.py`) passes
/// every case of the ops it implements and fails none.
#[test]
fn the_python_reference_adapter_passes_what_it_implements() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/adapters/muttr_adapter.py");
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args([
            "vectors",
            "--impl",
            &format!("python3 '{script}'"),
            "--json",
        ])
        .arg(&json_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(report["summary"]["fail"], 0);
    let passed: BTreeSet<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "pass")
        .map(|c| c["id"].as_str().unwrap().split('.').next().unwrap())
        .collect();
    for suite in ["node-id", "distance", "closest", "value-key"] {
        assert!(passed.contains(suite), "{suite} not passed: {passed:?}");
    }
}

/// Every vector file is valid under its JSON Schema (`vectors/schema/`, draft 2020-12), with
/// `common.schema.json` resolved for the `$ref`s — what `scripts/validate-vector-schemas.py`
/// checked outside CI.
#[test]
fn every_vector_file_is_valid_under_its_json_schema() {
    let schemas = vectors_dir().join("schema");
    let read = |p: std::path::PathBuf| -> Value {
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
    };
    let common = read(schemas.join("common.schema.json"));
    let mut cases = 0;
    for suite in [
        "wire",
        "node-id",
        "distance",
        "closest",
        "value-key",
        "store",
        "pubkeyhash",
        "rest",
    ] {
        let schema = read(schemas.join(format!("{suite}.schema.json")));
        let validator = jsonschema::options()
            .with_resource(
                "json-schema:///common.schema.json",
                jsonschema::Resource::from_contents(common.clone()).unwrap(),
            )
            .build(&schema)
            .unwrap_or_else(|e| panic!("{suite}.schema.json: {e}"));
        let doc = read(vectors_dir().join(format!("{suite}.json")));
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .take(10)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{suite}.json: {errors:#?}");
        cases += doc["cases"].as_array().unwrap().len();
        // The schema is not vacuous: a case without its id breaks it.
        let mut broken = doc.clone();
        broken["cases"][0].as_object_mut().unwrap().remove("id");
        assert!(
            !validator.is_valid(&broken),
            "{suite}.schema.json accepts a case with no id"
        );
    }
    assert!(cases >= 400, "{cases} cases validated");
}

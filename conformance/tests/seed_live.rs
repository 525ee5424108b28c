//! The live seed suite over real loopback UDP: this repository's `muttr-seed` (as a real
//! process, and in-process through `spawn_seed`) passes every case, and a deliberately broken
//! seed, breaking one rule at a time, fails exactly that rule.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use muttr_conformance::catalogue::{self, Live};
use muttr_conformance::report::{CaseResult, Verdict};
use muttr_conformance::seed::{self, failing_rules};
use muttr_node::Config;
use muttr_node::driver::{SeedOptions, spawn_seed};
use muttr_node::id::NodeId;
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_node::value::{self, StoreRefusal};
use muttr_node::wire::{self, Body, Contact, FindValueResult, Message, WireError};
use serde_json::{Value, json};
use tokio::net::UdpSocket;

fn options(target: SocketAddr, rng_seed: u64) -> seed::Options {
    let mut o = seed::Options::new(target);
    o.reply_timeout = Duration::from_secs(2);
    o.silence = Duration::from_millis(400);
    o.rng_seed = rng_seed;
    o
}

fn not_passing(cases: &[CaseResult]) -> Vec<&CaseResult> {
    cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotApplicable))
        .collect()
}

/// The P-K3 cases ran (they are not-applicable when the bucket they use is not empty).
fn assert_table_checked(cases: &[CaseResult]) {
    let table: Vec<&CaseResult> = cases
        .iter()
        .filter(|c| c.id.starts_with("seed.table."))
        .collect();
    assert_eq!(table.len(), 6);
    assert!(
        table.iter().all(|c| c.verdict == Verdict::Pass),
        "{table:#?}"
    );
}

// ------------------------------------------------------------------ our seed, real process

#[path = "../../node/tests/common/process.rs"]
mod process;
use process::Process;

/// The `muttr-seed` binary of this workspace (`MUTTR_SEED_BIN` overrides). Cargo builds it
/// for `cargo test --workspace`; when only this package is tested it is built here.
fn seed_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MUTTR_SEED_BIN") {
        return PathBuf::from(p);
    }
    let me = PathBuf::from(env!("CARGO_BIN_EXE_muttr-conformance"));
    let path = me.with_file_name(format!("muttr-seed{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "muttr-node", "--bin", "muttr-seed"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building muttr-seed failed");
    }
    path
}

fn spawn_process() -> Process {
    Process::start(
        &seed_binary(),
        [
            "--listen",
            "127.0.0.1:0",
            "--log",
            "error",
            "--rng-seed",
            "7",
        ],
    )
}

#[test]
fn real_muttr_seed_process_passes_every_case() {
    let seed = spawn_process();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = rt
        .block_on(seed::run(&options(seed.seed_addr(), 1)))
        .unwrap();
    let bad = not_passing(&cases);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_table_checked(&cases);
    let ids: BTreeSet<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), cases.len(), "case ids are unique");
    assert!(cases.len() >= 150, "{} cases", cases.len());
}

#[test]
fn cli_against_real_seed_writes_reports_and_honours_expect_file() {
    let seed = spawn_process();
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_muttr-conformance");
    // One case listed as a known failure although it passes: reported as fixed, exit 0.
    let expect = tmp.path().join("expect.json");
    std::fs::write(
        &expect,
        r#"{"seed.store.key-mismatch-refused": "an old bug"}"#,
    )
    .unwrap();
    let out = Command::new(bin)
        .arg("seed")
        .arg(seed.seed_addr().to_string())
        .args(["--silence-ms", "400", "--json"])
        .arg(tmp.path().join("r.json"))
        .arg("--junit")
        .arg(tmp.path().join("r.xml"))
        .arg("--expect")
        .arg(&expect)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("known failure now passes (remove it from the expect file): seed.store.key-mismatch-refused"), "{stdout}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("r.json")).unwrap()).unwrap();
    assert_eq!(r["summary"]["fail"], 0);
    assert_eq!(
        r["summary"]["fixed"],
        json!(["seed.store.key-mismatch-refused"])
    );
    let xml = std::fs::read_to_string(tmp.path().join("r.xml")).unwrap();
    assert!(xml.contains("name=\"seed.store.key-mismatch-refused\""));
}

// ------------------------------------------------------------------ our seed, in-process

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_seed_passes_every_case() {
    let store = MemStore::new(Quotas::from_config(&Config::default()));
    let s = spawn_seed(
        TokioTransport,
        SeedOptions::new("127.0.0.1:0".parse().unwrap(), 3),
        store,
        Clock::system(),
    )
    .await
    .unwrap();
    let cases = seed::run(&options(s.local_addr(), 2)).await.unwrap();
    let bad = not_passing(&cases);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_table_checked(&cases);
    catalogue::check_run(Live::Seed, &cases).unwrap();
    s.shutdown().await.unwrap();
}

// ------------------------------------------------------------------ a broken seed

/// One rule broken at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Break {
    Nothing,
    /// Replies carry a referenceID that is not the request's rpcID (P-W2).
    WrongReferenceId,
    /// Replies name the seed's nodeID in uppercase (P-W4).
    UppercaseNodeId,
    /// UTF-8 text that is not JSON gets an error datagram back (P-W6).
    AnswersNonJson,
    /// Replies go to the claimed address, not the source (P-W7).
    RepliesToClaimedAddress,
    /// Spoofed senders are added to the table (P-W7).
    LearnsSpoofed,
    /// FIND_* replies list the seed itself (P-W8).
    IncludesSelf,
    /// FIND_* replies carry 5 contacts (P-W8).
    FiveContacts,
    /// Contacts come farthest first (P-W8).
    FarthestFirst,
    /// A STORE whose key is not sha1(value) is stored under that key (P-V2).
    AcceptsKeyMismatch,
    /// A STORE without timestamp is stored (P-V3).
    AcceptsMissingTimestamp,
    /// A found value comes with contacts too (P-W9).
    ValueAndContacts,
    /// The requester is sent back to itself (a SHOULD NOT of P-W8: non-strict only).
    ListsRequester,
    /// A full bucket turns newcomers away without pinging its oldest contact (P-K3).
    NeverEvicts,
    /// Stops for good (closes its socket) at the first datagram that is not JSON, as a seed
    /// that crashes on bad input does.
    DiesOnNonJson,
}

/// A minimal seed written for these tests: a flat table of 160 k-buckets with
/// ping-before-evict and a replacement cache (P-K3), values in a map, this crate's wire codec and
/// STORE check. It passes the whole suite, then breaks one rule at a time.
struct Mini {
    me: Contact,
    buckets: HashMap<usize, Vec<Contact>>,
    waiting: HashMap<usize, Vec<Contact>>,
    /// Eviction PINGs in flight: rpcID → (bucket, the pinged contact, deadline).
    pending: HashMap<String, (usize, Contact, tokio::time::Instant)>,
    values: HashMap<NodeId, String>,
    brk: Break,
    next_rpc: u64,
}

const K: usize = 20;

impl Mini {
    /// Notes a valid message from `c` (P-K4); may return an eviction PING to send.
    fn learn(&mut self, c: Contact) -> Option<(Vec<u8>, SocketAddr)> {
        let b = self.me.node_id.bucket_index(&c.node_id)?;
        let bucket = self.buckets.entry(b).or_default();
        if let Some(i) = bucket.iter().position(|x| *x == c) {
            bucket.remove(i);
            bucket.push(c);
            return None;
        }
        if bucket.len() < K {
            bucket.push(c);
            return None;
        }
        if self.brk == Break::NeverEvicts {
            return None;
        }
        let oldest = bucket[0];
        let wait = self.waiting.entry(b).or_default();
        wait.retain(|x| *x != c);
        wait.push(c);
        if self.pending.values().any(|(pb, _, _)| *pb == b) {
            return None;
        }
        self.next_rpc += 1;
        let rpc = format!("evict-{}", self.next_rpc);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        self.pending.insert(rpc.clone(), (b, oldest, deadline));
        let ping = wire::encode(&Message::new(self.me, rpc, Body::Ping));
        Some((ping, oldest.socket_addr()))
    }

    /// Evicts contacts whose eviction PING timed out, promoting the newest waiting one.
    fn expire(&mut self, now: tokio::time::Instant) {
        let late: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.2 <= now)
            .map(|(r, _)| r.clone())
            .collect();
        for rpc in late {
            if let Some((b, old, _)) = self.pending.remove(&rpc) {
                let bucket = self.buckets.entry(b).or_default();
                bucket.retain(|x| *x != old);
                if let Some(n) = self.waiting.get_mut(&b).and_then(Vec::pop) {
                    bucket.push(n);
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<tokio::time::Instant> {
        self.pending.values().map(|p| p.2).min()
    }

    fn contacts(&self, key: &NodeId, requester: &NodeId) -> Vec<Contact> {
        let mut list: Vec<Contact> = self
            .buckets
            .values()
            .flatten()
            .filter(|c| self.brk == Break::ListsRequester || c.node_id != *requester)
            .copied()
            .collect();
        list.sort_by_key(|c| c.node_id.distance(key));
        let width = if self.brk == Break::FiveContacts {
            5
        } else {
            3
        };
        list.truncate(width);
        match self.brk {
            Break::IncludesSelf => {
                list.truncate(2);
                list.push(self.me);
            }
            Break::FarthestFirst => list.reverse(),
            _ => {}
        }
        list
    }

    /// The reply to a datagram from `from`, and where to send it.
    /// What to send in answer to a datagram from `from`: a reply, and maybe an eviction PING.
    fn handle(&mut self, bytes: &[u8], from: SocketAddr) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut out = Vec::new();
        let m = match wire::decode(bytes) {
            Ok(m) => m,
            Err(WireError::NotJson(_))
                if self.brk == Break::AnswersNonJson && std::str::from_utf8(bytes).is_ok() =>
            {
                out.push((br#"{"error":"not JSON"}"#.to_vec(), from));
                return out;
            }
            Err(_) => return out,
        };
        let authentic = m.sender.socket_addr() == from;
        if !m.is_request() {
            // An answer to an eviction PING keeps the contact (it becomes most recently seen).
            if authentic
                && let Some((_, old, _)) = self.pending.remove(&m.rpc_id)
                && old == m.sender
            {
                out.extend(self.learn(m.sender));
            }
            return out;
        }
        if authentic || self.brk == Break::LearnsSpoofed {
            out.extend(self.learn(m.sender));
        }
        let requester = m.sender.node_id;
        let body = match m.body.clone() {
            Body::Ping => Body::Pong,
            Body::Store {
                key,
                value,
                timestamp,
                publisher,
            } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as u64;
                let ok =
                    match value::check_store(&key, &value, timestamp, publisher, now, 86_400_000) {
                        Ok(_) => true,
                        Err(StoreRefusal::KeyMismatch) => self.brk == Break::AcceptsKeyMismatch,
                        Err(StoreRefusal::MissingTimestamp) => {
                            self.brk == Break::AcceptsMissingTimestamp
                        }
                        Err(_) => false,
                    };
                if ok {
                    self.values.entry(key).or_insert(value);
                }
                Body::StoreReply { success: ok }
            }
            Body::FindNode { key } => Body::FindNodeReply {
                contacts: self.contacts(&key, &requester),
            },
            Body::FindValue { key } => match self.values.get(&key) {
                Some(v) => Body::FindValueReply(FindValueResult::Value(v.clone())),
                None => {
                    Body::FindValueReply(FindValueResult::Contacts(self.contacts(&key, &requester)))
                }
            },
            _ => return out,
        };
        let rpc = if self.brk == Break::WrongReferenceId {
            format!("not-{}", m.rpc_id)
        } else {
            m.rpc_id.clone()
        };
        let mut v = wire::to_json(&Message::new(self.me, rpc, body));
        if self.brk == Break::UppercaseNodeId {
            v["params"]["nodeID"] = json!(self.me.node_id.to_hex().to_uppercase());
        }
        if self.brk == Break::ValueAndContacts && v["params"].get("value").is_some() {
            v["params"]["contacts"] = json!([]);
        }
        let to = if self.brk == Break::RepliesToClaimedAddress {
            m.sender.socket_addr()
        } else {
            from
        };
        out.push((serde_json::to_vec(&v).unwrap(), to));
        out
    }
}

async fn mini_seed(brk: Break) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let mut mini = Mini {
        me: Contact::from_addr(addr),
        buckets: HashMap::new(),
        waiting: HashMap::new(),
        pending: HashMap::new(),
        values: HashMap::new(),
        brk,
        next_rpc: 0,
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            let deadline = mini.next_deadline().unwrap_or(far);
            tokio::select! {
                got = sock.recv_from(&mut buf) => {
                    let Ok((n, from)) = got else { return };
                    if mini.brk == Break::DiesOnNonJson
                        && serde_json::from_slice::<Value>(&buf[..n]).is_err()
                    {
                        return;
                    }
                    for (bytes, to) in mini.handle(&buf[..n], from) {
                        let _ = sock.send_to(&bytes, to).await;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => mini.expire(tokio::time::Instant::now()),
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_seed_fails_exactly_the_rule_it_breaks() {
    let expectations: [(Break, &[&str]); 14] = [
        (Break::Nothing, &[]),
        (Break::WrongReferenceId, &["P-W2"]),
        (Break::UppercaseNodeId, &["P-W4"]),
        (Break::AnswersNonJson, &["P-W6"]),
        (Break::RepliesToClaimedAddress, &["P-W7"]),
        (Break::LearnsSpoofed, &["P-W7"]),
        (Break::IncludesSelf, &["P-W8"]),
        (Break::FiveContacts, &["P-W8"]),
        (Break::FarthestFirst, &["P-W8"]),
        (Break::AcceptsKeyMismatch, &["P-V2"]),
        (Break::AcceptsMissingTimestamp, &["P-V3"]),
        (Break::ValueAndContacts, &["P-W9"]),
        (Break::ListsRequester, &[]),
        (Break::NeverEvicts, &["P-K3"]),
    ];
    let mut runs = Vec::new();
    for (i, (brk, _)) in expectations.iter().enumerate() {
        let addr = mini_seed(*brk).await;
        let opts = options(addr, 100 + i as u64);
        runs.push(tokio::spawn(async move { seed::run(&opts).await.unwrap() }));
    }
    for ((brk, rules), run) in expectations.iter().zip(runs) {
        let cases = run.await.unwrap();
        let want: BTreeSet<String> = rules.iter().map(|r| r.to_string()).collect();
        let failed: Vec<&CaseResult> = cases
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .collect();
        assert_eq!(failing_rules(&cases), want, "{brk:?}: {failed:#?}");
        catalogue::check_run(Live::Seed, &cases).unwrap();
        let non_strict: Vec<&str> = cases
            .iter()
            .filter(|c| c.verdict == Verdict::NonStrict)
            .map(|c| c.id.as_str())
            .collect();
        if *brk == Break::ListsRequester {
            assert_eq!(
                non_strict,
                [
                    "seed.find-node.not-requester",
                    "seed.find-value.not-requester"
                ],
                "{brk:?}"
            );
        } else if *brk == Break::Nothing {
            assert!(non_strict.is_empty(), "{non_strict:?}");
            assert!(failed.is_empty());
            assert_table_checked(&cases);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_stops_answering_is_named_once_and_the_rest_is_not_judged() {
    let addr = mini_seed(Break::DiesOnNonJson).await;
    let cases = seed::run(&options(addr, 7)).await.unwrap();
    // Every case of the catalogue is reported once, in order, reached or not.
    catalogue::check_run(Live::Seed, &cases).unwrap();
    let failed: Vec<&CaseResult> = cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    let stop = failed[0];
    assert!(
        stop.detail.contains("the seed stopped answering here")
            && stop.detail.contains("the last answer came during seed."),
        "{stop:#?}"
    );
    let at = cases.iter().position(|c| c.id == stop.id).unwrap();
    assert!(at > 10, "it answered the early phases: {at}");
    let rest = &cases[at + 1..];
    assert!(rest.len() > 50, "{}", rest.len());
    for c in rest {
        assert_eq!(c.verdict, Verdict::NotJudged, "{c:#?}");
        assert_eq!(
            c.detail,
            format!("not judged: the seed stopped answering at {}", stop.id)
        );
    }
    // Nothing before the stop is not-judged: those cases had a live seed.
    assert!(cases[..at].iter().all(|c| c.verdict != Verdict::NotJudged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_never_answers_gets_one_failure_and_nothing_judged() {
    // A bound socket that reads nothing: the seed "exists" but is silent.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let cases = seed::run(&options(silent.local_addr().unwrap(), 8))
        .await
        .unwrap();
    catalogue::check_run(Live::Seed, &cases).unwrap();
    assert_eq!(cases[0].id, "seed.probe.ping-answered");
    assert_eq!(cases[0].verdict, Verdict::Fail);
    assert!(cases[1..].iter().all(|c| c.verdict == Verdict::NotJudged));
}

/// Busy threads on every core (and one more) until dropped: the machine a CI job shares.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start() -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_faulty_seed_gets_the_same_verdicts_on_an_idle_and_a_loaded_machine() {
    let verdicts = |cases: Vec<CaseResult>| -> Vec<(String, Verdict)> {
        cases.into_iter().map(|c| (c.id, c.verdict)).collect()
    };
    let idle = verdicts(
        seed::run(&options(mini_seed(Break::FiveContacts).await, 11))
            .await
            .unwrap(),
    );
    let loaded = {
        let _load = Load::start();
        verdicts(
            seed::run(&options(mini_seed(Break::FiveContacts).await, 11))
                .await
                .unwrap(),
        )
    };
    assert!(idle.iter().any(|(_, v)| *v == Verdict::Fail));
    let differ: Vec<_> = idle.iter().zip(&loaded).filter(|(a, b)| a != b).collect();
    assert!(differ.is_empty(), "idle vs loaded: {differ:#?}");
    assert_eq!(idle.len(), loaded.len());
}

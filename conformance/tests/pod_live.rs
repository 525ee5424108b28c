//! The live pod suite over real loopback TCP: this repository's pod (in-process through
//! `muttr_pod::serve`, and the `muttr-pod` binary as a real process) passes every case, and
//! deliberately broken pods — the real router behind a wrapper that breaks one rule at a time
//! — fail exactly that rule, in the live suite and in the REST vectors of `vectors/rest.json`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use muttr_conformance::catalogue::{self, Live};
use muttr_conformance::pod::{self, Options};
use muttr_conformance::report::{CaseResult, Verdict};
use muttr_conformance::seed::failing_rules;
use muttr_conformance::{rest, vectors};
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::{Clock, TokioTransport};
use muttr_node::store::{MemStore, Quotas};
use muttr_pod::{AppState, PodConfig, Storage};
use serde_json::{Value, json};

#[path = "../../pod/tests/common/pg.rs"]
mod pg;

fn not_passing(cases: &[CaseResult]) -> Vec<&CaseResult> {
    cases
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::Pass | Verdict::NotApplicable))
        .collect()
}

/// Only the optional cases (RSA, the slow ones, `GET /openapi.json`) may be not applicable
/// in a run against this pod.
fn assert_only_optional_cases_not_applicable(cases: &[CaseResult]) {
    let optional: BTreeSet<&str> = [
        "pod.register.rsa",
        "pod.token.expires-after-30s",
        "pod.token.expires-after-30s.json-error",
        "pod.ws.silent-10s-4401",
        "pod.openapi.get-openapi-json",
    ]
    .into();
    let na: BTreeSet<&str> = cases
        .iter()
        .filter(|c| c.verdict == Verdict::NotApplicable)
        .map(|c| c.id.as_str())
        .collect();
    assert!(na.is_subset(&optional), "{na:?}");
}

fn ids(cases: &[CaseResult]) -> BTreeSet<String> {
    cases.iter().map(|c| c.id.clone()).collect()
}

fn options(url: String) -> Options {
    let mut o = Options::new(url);
    o.federation_host = Some("127.0.0.1:0".parse().unwrap());
    o.rng_seed = 42;
    o
}

/// A pod on a loopback port (its public host is that address), in insecure-federation mode
/// with loopback exempt from the per-IP limit; `wrap` may put a broken layer around the router.
struct LivePod {
    url: String,
    _seed: Seed<MemStore>,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LivePod {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn live_pod(wrap: Option<fn(Router, AppState) -> Router>) -> LivePod {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let storage = Storage::open(dir.path()).unwrap();
    let (seed, task) = pod_on(listener, addr.to_string(), storage, wrap).await;
    LivePod {
        url: format!("http://{addr}"),
        _seed: seed,
        _dir: dir,
        task,
    }
}

/// A pod serving on `listener` from `storage`, `host` its public host, with a seed of its
/// own on a loopback port.
async fn pod_on(
    listener: tokio::net::TcpListener,
    host: String,
    storage: Storage,
    wrap: Option<fn(Router, AppState) -> Router>,
) -> (Seed<MemStore>, tokio::task::JoinHandle<()>) {
    let config = PodConfig {
        public_host: host,
        insecure_federation: true,
        exempt_loopback: true,
        ..PodConfig::default()
    };
    let seed = spawn_seed(
        TokioTransport,
        SeedOptions::new("127.0.0.1:0".parse().unwrap(), 5),
        MemStore::new(Quotas::from_config(&muttr_node::Config::default())),
        Clock::system(),
    )
    .await
    .unwrap();
    let state = AppState::new(config, storage, Some(seed.handle()), Clock::system(), None);
    let task = match wrap {
        None => tokio::spawn(async move {
            muttr_pod::serve(listener, state, std::future::pending())
                .await
                .unwrap();
        }),
        Some(wrap) => {
            let app = wrap(muttr_pod::router(state.clone()), state.clone());
            tokio::spawn(async move {
                muttr_pod::server::serve_app(listener, app, state, std::future::pending())
                    .await
                    .unwrap();
            })
        }
    };
    (seed, task)
}

// ------------------------------------------------------------------ our pod

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_pod_in_process_passes_every_case() {
    let pod = live_pod(None).await;
    let started = std::time::Instant::now();
    let cases = pod::run(&options(pod.url.clone())).await.unwrap();
    let took = started.elapsed();
    let bad = not_passing(&cases);
    assert!(bad.is_empty(), "{bad:#?}");
    // Every case id is distinct, and there are enough of them.
    assert_eq!(ids(&cases).len(), cases.len(), "duplicate case ids");
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    assert_only_optional_cases_not_applicable(&cases);
    assert!(took.as_secs() < 20, "the suite took {took:?}");
    catalogue::check_run(Live::Pod, &cases).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_federation_host_the_federation_cases_are_not_applicable() {
    let pod = live_pod(None).await;
    let mut o = options(pod.url.clone());
    o.federation_host = None;
    let cases = pod::run(&o).await.unwrap();
    assert!(not_passing(&cases).is_empty(), "{:#?}", not_passing(&cases));
    let fed: Vec<&CaseResult> = cases
        .iter()
        .filter(|c| c.id.starts_with("pod.fed."))
        .collect();
    assert_eq!(
        fed.len(),
        16,
        "10 cases and 6 refinements of their error bodies"
    );
    assert!(fed.iter().all(|c| c.verdict == Verdict::NotApplicable));
    catalogue::check_run(Live::Pod, &cases).unwrap();
}

/// Told when the dying pod below gets its first `POST /tokens`.
static TOKENS_ASKED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A pod that hangs at its first `POST /tokens` (the test then stops it for good).
fn hangs_at_first_token(app: Router, _: AppState) -> Router {
    app.layer(middleware::from_fn(|req: Request, next: Next| async move {
        if req.method() == axum::http::Method::POST && req.uri().path() == "/tokens" {
            TOKENS_ASKED.notify_one();
            std::future::pending::<()>().await;
        }
        next.run(req).await
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_stops_answering_is_named_once_and_the_rest_is_not_judged() {
    let pod = live_pod(Some(hangs_at_first_token)).await;
    let mut o = options(pod.url.clone());
    o.timeout = std::time::Duration::from_secs(2);
    let run = tokio::spawn(async move { pod::run(&o).await.unwrap() });
    TOKENS_ASKED.notified().await;
    pod.task.abort();
    let cases = run.await.unwrap();
    catalogue::check_run(Live::Pod, &cases).unwrap();
    let stopped: Vec<&CaseResult> = cases
        .iter()
        .filter(|c| c.detail.contains("the pod stopped answering here"))
        .collect();
    assert_eq!(stopped.len(), 1, "{stopped:#?}");
    let at = cases.iter().position(|c| c.id == stopped[0].id).unwrap();
    assert!(at > 10, "registration ran first: {at}");
    assert!(cases[..at].iter().all(|c| c.verdict != Verdict::NotJudged));
    let rest = &cases[at + 1..];
    assert!(rest.len() > 100, "{}", rest.len());
    for c in rest {
        assert_eq!(c.verdict, Verdict::NotJudged, "{c:#?}");
    }
}

// ------------------------------------------------------------------ the muttr-pod binary

#[path = "../../node/tests/common/process.rs"]
mod process;
use process::Process;

/// A `muttr-pod` process and its data directory.
struct PodProcess {
    _process: Process,
    url: String,
    _dir: tempfile::TempDir,
}

/// The `muttr-pod` binary of this workspace (`MUTTR_POD_BIN` overrides); built here when only
/// this package is tested.
fn pod_binary() -> PathBuf {
    if let Ok(p) = std::env::var("MUTTR_POD_BIN") {
        return PathBuf::from(p);
    }
    let me = PathBuf::from(env!("CARGO_BIN_EXE_muttr-conformance"));
    let path = me.with_file_name(format!("muttr-pod{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "muttr-pod", "--bin", "muttr-pod"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building muttr-pod failed");
    }
    path
}

fn start_pod_process() -> PodProcess {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("pod.toml");
    std::fs::write(&config, "[pod]\nexempt_loopback = true\n").unwrap();
    let data = dir.path().join("data");
    let process = Process::start(
        &pod_binary(),
        [
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--seed-listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--insecure-federation".as_ref(),
            "--log".as_ref(),
            "warn".as_ref(),
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
    );
    PodProcess {
        url: process.url(),
        _process: process,
        _dir: dir,
    }
}

#[test]
fn the_muttr_pod_binary_passes_through_the_cli() {
    let pod = start_pod_process();
    let report = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args([
            "pod",
            &pod.url,
            "--federation-host",
            "127.0.0.1:0",
            "--json",
        ])
        .arg(report.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(report.path()).unwrap()).unwrap();
    assert_eq!(v["suite"], "pod");
    assert_eq!(v["summary"]["fail"], 0, "{stdout}");
    assert!(v["summary"]["pass"].as_u64().unwrap() >= 100, "{stdout}");
}

#[test]
fn an_unreachable_pod_fails_the_probe_and_a_bad_url_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args(["pod", "http://127.0.0.1:1", "--timeout-ms", "2000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pod.probe.http"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "not-judged: {} cases from {} on",
            catalogue::entries(Live::Pod).len() - 1,
            catalogue::entries(Live::Pod)[1].id
        )),
        "{stdout}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_muttr-conformance"))
        .args(["pod", "ftp://example"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ------------------------------------------------------------------ broken pods

/// What a broken pod fails: the rules and cases of the suite's own checks, and, apart, the
/// operations whose answers no longer match `pod/openapi.json` (`pod.openapi.*`, a second
/// view of the same answers) and the REST vectors the suite runs (`rest.*`).
struct Failed {
    rules: BTreeSet<String>,
    cases: Vec<CaseResult>,
    api: BTreeSet<String>,
    rest: Vec<CaseResult>,
}

/// Runs the suite against the real router behind `wrap`.
async fn broken(wrap: fn(Router, AppState) -> Router) -> Failed {
    let pod = live_pod(Some(wrap)).await;
    let cases = pod::run(&options(pod.url.clone())).await.unwrap();
    catalogue::check_run(Live::Pod, &cases).unwrap();
    let (api, cases): (Vec<CaseResult>, Vec<CaseResult>) = cases
        .into_iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .partition(|c| c.id.starts_with("pod.openapi."));
    let (rest, cases): (Vec<CaseResult>, Vec<CaseResult>) =
        cases.into_iter().partition(|c| c.id.starts_with("rest."));
    Failed {
        rules: failing_rules(&cases),
        cases,
        api: api.into_iter().map(|c| c.id).collect(),
        rest,
    }
}

fn rest_ids(cases: &[CaseResult]) -> BTreeSet<String> {
    cases.iter().map(|c| c.id.clone()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn failing_ids(cases: &[CaseResult]) -> BTreeSet<&str> {
    cases.iter().map(|c| c.id.as_str()).collect()
}

async fn text_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status().as_u16() >= 400 {
        return (res.status(), "something went wrong").into_response();
    }
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_answering_errors_as_text_fails_p_a7_and_its_readyz_error() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(|r, _| r.layer(middleware::from_fn(text_errors))).await;
    // The REST vectors that expect an error answer fail too; those that expect success pass.
    assert!(rest.len() >= 40, "{}", rest.len());
    assert!(rest.iter().all(|c| !c.id.ends_with("-ok")), "{rest:#?}");
    // The test pod's seed knows no contact, so /readyz answers 503: as text now (P-X3).
    assert_eq!(rules, set(&["P-A7", "P-X3"]), "{failing:#?}");
    // Every operation with an error answer documents it as JSON.
    assert!(api.contains("pod.openapi.post-tokens"), "{api:?}");
    assert!(api.contains("pod.openapi.get-aliases-alias"), "{api:?}");
    let other: Vec<&str> = failing
        .iter()
        .filter(|c| !c.id.ends_with(".json-error"))
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(other, ["pod.x3.readyz"]);
    assert!(failing.len() >= 40, "{}", failing.len());
}

async fn wrap_answers(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if res.status() != StatusCode::OK || !json {
        return res;
    }
    let bytes = to_bytes(res.into_body(), usize::MAX).await.unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    axum::Json(json!({"status": "success", "result": v})).into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_wrapping_answers_like_the_original_muttrpod_fails_p_a5_and_its_healthz() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(|r, _| r.layer(middleware::from_fn(wrap_answers))).await;
    // The REST vectors that read a successful answer's shape fail too.
    assert_eq!(
        rest_ids(&rest),
        set(&[
            "rest.aliases.create-ok",
            "rest.aliases.max-length-ok",
            "rest.aliases.punctuated-ok",
            "rest.aliases.query-ignored",
            "rest.inboxes.href-notify-ok",
            "rest.inboxes.notify-ok",
            "rest.inboxes.query-ignored",
            "rest.messages.store-again",
            "rest.messages.store-ok",
            "rest.register.charset-ok",
            "rest.register.ok",
            "rest.tokens.128-bits",
            "rest.tokens.create-ok",
            "rest.tokens.query-ignored",
        ])
    );
    // /healthz's 200 is wrapped too (P-X3).
    assert_eq!(rules, set(&["P-A5", "P-X3"]), "{failing:#?}");
    // The wrapped 200 answers match no documented schema. GET /aliases answers a key, not
    // JSON; /readyz answers 503 here (not wrapped); the status page of GET / is documented
    // with no required field, so its wrapped form still matches; the inbox calls need a
    // token the suite could not read, so they got only error answers.
    assert_eq!(
        api,
        set(&[
            "pod.openapi.get-healthz",
            "pod.openapi.post-aliases",
            "pod.openapi.post-inboxes-alias",
            "pod.openapi.post-messages",
            "pod.openapi.post-root",
            "pod.openapi.post-tokens",
        ])
    );
    // Every answer the suite reads a token or a key from is wrapped, so what depends on
    // them (playback, purge) is not-applicable rather than failed a second time.
    assert_eq!(
        failing_ids(&failing),
        BTreeSet::from([
            "pod.register.shape",
            "pod.inbox.post-shape",
            "pod.x3.healthz",
        ])
    );
}

type Seen = Arc<Mutex<HashMap<Vec<u8>, (StatusCode, Option<HeaderValue>, Vec<u8>)>>>;

/// Answers a POST body it has already seen accepted with the same answer again: a pod that
/// does not keep used nonces.
fn accept_replays(r: Router, _: AppState) -> Router {
    let seen: Seen = Arc::default();
    r.layer(middleware::from_fn(move |req: Request, next: Next| {
        let seen = seen.clone();
        async move {
            if req.method() != "POST" {
                return next.run(req).await;
            }
            let (parts, body) = req.into_parts();
            let bytes = to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default()
                .to_vec();
            if let Some((s, ct, b)) = seen.lock().unwrap().get(&bytes).cloned() {
                let mut res = (s, b).into_response();
                if let Some(ct) = ct {
                    res.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                return res;
            }
            let res = next
                .run(Request::from_parts(parts, Body::from(bytes.clone())))
                .await;
            if res.status() != StatusCode::OK || !bytes.starts_with(b"-----BEGIN PGP SIGNED") {
                return res;
            }
            let status = res.status();
            let ct = res.headers().get(header::CONTENT_TYPE).cloned();
            let b = to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            seen.lock()
                .unwrap()
                .insert(bytes, (status, ct.clone(), b.clone()));
            let mut res = (status, b).into_response();
            if let Some(ct) = ct {
                res.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            res
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_accepting_replayed_nonces_fails_p_a2_only() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(accept_replays).await;
    assert_eq!(
        rest_ids(&rest),
        set(&["rest.auth.replay-401", "rest.inboxes.replay-401"])
    );
    assert_eq!(rules, BTreeSet::from(["P-A2".to_string()]), "{failing:#?}");
    // The token answer replayed to POST /inboxes/:alias is not a notify answer.
    assert_eq!(api, set(&["pod.openapi.post-inboxes-alias"]));
    let ids = failing_ids(&failing);
    assert!(ids.contains("pod.auth.replay-401"), "{ids:?}");
    assert!(ids.contains("pod.inbox.replay-401"), "{ids:?}");
}

/// Deletes a user's inbox entries once one was pushed over a WebSocket, as the original
/// muttrpod did.
fn drop_after_push(r: Router, state: AppState) -> Router {
    r.layer(middleware::from_fn(move |req: Request, next: Next| {
        let state = state.clone();
        async move {
            let notify = req.method() == "POST" && req.uri().path().starts_with("/inboxes/");
            let res = next.run(req).await;
            if !notify || res.status() != StatusCode::OK {
                return res;
            }
            let (parts, body) = res.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            let owner = v["message"]["recipient"]["pubkeyhash"]
                .as_str()
                .unwrap_or("");
            if state.hub.subscribers(owner) > 0 {
                state.storage.purge(owner).await.unwrap();
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_dropping_pushed_entries_fails_p_a9_only() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(drop_after_push).await;
    assert!(rest.is_empty(), "{rest:#?}");
    assert_eq!(rules, BTreeSet::from(["P-A9".to_string()]), "{failing:#?}");
    assert!(
        api.is_empty(),
        "every answer is still as documented: {api:?}"
    );
    assert!(failing_ids(&failing).contains("pod.inbox.kept-after-push"));
}

async fn keys_as_text(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    if res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/pgp-keys")
    {
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_serving_keys_as_text_plain_fails_exactly_that_case() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(|r, _| r.layer(middleware::from_fn(keys_as_text))).await;
    // `GET /aliases/:alias` is checked by the REST vectors alone.
    assert_eq!(rest_ids(&rest), set(&["rest.aliases.get-ok"]));
    assert_eq!(rest[0].rule, "P-A5");
    assert_eq!(api, set(&["pod.openapi.get-aliases-alias"]));
    assert!(rules.is_empty(), "{failing:#?}");
}

/// Answers a GET/DELETE whose token it has seen accepted with the same answer again: tokens
/// usable more than once.
fn reusable_tokens(r: Router, _: AppState) -> Router {
    let seen: Seen = Arc::default();
    r.layer(middleware::from_fn(move |req: Request, next: Next| {
        let seen = seen.clone();
        async move {
            let key = req.uri().to_string().into_bytes();
            if !req.uri().query().is_some_and(|q| q.contains("token=")) {
                return next.run(req).await;
            }
            if let Some((s, ct, b)) = seen.lock().unwrap().get(&key).cloned() {
                let mut res = (s, b).into_response();
                if let Some(ct) = ct {
                    res.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                return res;
            }
            let res = next.run(req).await;
            if res.status() != StatusCode::OK {
                return res;
            }
            let status = res.status();
            let ct = res.headers().get(header::CONTENT_TYPE).cloned();
            let b = to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap()
                .to_vec();
            seen.lock()
                .unwrap()
                .insert(key, (status, ct.clone(), b.clone()));
            let mut res = (status, b).into_response();
            if let Some(ct) = ct {
                res.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            res
        }
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_accepting_a_token_twice_fails_exactly_that_case() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(reusable_tokens).await;
    // Token use is checked by the REST vectors alone.
    assert_eq!(rest_ids(&rest), set(&["rest.tokens.single-use-401"]));
    assert_eq!(rest[0].rule, "P-A6");
    assert!(
        api.is_empty(),
        "every answer is still as documented: {api:?}"
    );
    assert!(rules.is_empty(), "{failing:#?}");
}

// ------------------------------------------------------------------ broken pods vs the REST vectors

/// Runs the REST vectors of `vectors/rest.json` against the real router behind `wrap`;
/// answers the failing cases and the ids of every case checking `rule`.
async fn rest_vectors_against(
    wrap: fn(Router, AppState) -> Router,
    rule: &str,
) -> (Vec<CaseResult>, BTreeSet<String>) {
    let pod = live_pod(Some(wrap)).await;
    let files = vectors::load(&vectors::Source::Embedded).unwrap();
    let doc = vectors::rest_doc(&files).unwrap();
    let mut opts = rest::Options::new(pod.url.clone());
    opts.rng_seed = 9;
    let cases = rest::run(doc, &opts).await.unwrap();
    let of_rule = cases
        .iter()
        .filter(|c| c.rule == rule)
        .map(|c| c.id.clone())
        .collect();
    let not_passing = cases
        .into_iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .collect();
    (not_passing, of_rule)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_accepting_replays_fails_exactly_the_replay_rest_vectors() {
    let (bad, of_rule) = rest_vectors_against(accept_replays, "P-A2").await;
    let ids = failing_ids(&bad);
    assert_eq!(
        ids,
        BTreeSet::from(["rest.auth.replay-401", "rest.inboxes.replay-401"]),
        "{bad:#?}"
    );
    assert!(
        bad.iter()
            .all(|c| c.verdict == Verdict::Fail && c.rule == "P-A2")
    );
    assert!(ids.iter().all(|i| of_rule.contains(*i)));
    // The other P-A2 cases (the nonce window) still pass: the suite names the broken part.
    assert!(of_rule.len() > ids.len(), "{of_rule:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_accepting_a_token_twice_fails_exactly_that_rest_vector() {
    let (bad, _) = rest_vectors_against(reusable_tokens, "P-A6").await;
    assert_eq!(
        failing_ids(&bad),
        BTreeSet::from(["rest.tokens.single-use-401"]),
        "{bad:#?}"
    );
    assert_eq!(bad[0].verdict, Verdict::Fail);
    assert_eq!(bad[0].rule, "P-A6");
    assert!(bad[0].sent.is_some() && bad[0].received.is_some() && bad[0].expected.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_serving_keys_as_text_plain_fails_exactly_that_rest_vector() {
    let (bad, _) =
        rest_vectors_against(|r, _| r.layer(middleware::from_fn(keys_as_text)), "P-A5").await;
    assert_eq!(
        failing_ids(&bad),
        BTreeSet::from(["rest.aliases.get-ok"]),
        "{bad:#?}"
    );
    assert_eq!(bad[0].rule, "P-A5");
}

/// The whitepaper's purge, whatever the client asks: `upto` is dropped from the query, so
/// every `DELETE /inboxes` deletes the whole inbox (what a pod without P-X1 does).
async fn ignore_upto(mut req: Request, next: Next) -> Response {
    if req.method() == axum::http::Method::DELETE
        && let Some(q) = req.uri().query()
    {
        let kept: Vec<&str> = q.split('&').filter(|p| !p.starts_with("upto=")).collect();
        let uri = format!("{}?{}", req.uri().path(), kept.join("&"));
        *req.uri_mut() = uri.parse().unwrap();
    }
    next.run(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_purges_everything_fails_exactly_the_p_x1_purge_cases_of_both_suites() {
    let Failed {
        rules,
        cases: failing,
        api,
        rest,
    } = broken(|r, _| r.layer(middleware::from_fn(ignore_upto))).await;
    assert_eq!(
        rest_ids(&rest),
        set(&[
            "rest.inboxes.x1-purge-upto-keeps-later",
            "rest.inboxes.x1-upto-not-digits-400",
        ])
    );
    assert_eq!(rules, BTreeSet::from(["P-X1".to_string()]), "{failing:#?}");
    assert!(
        api.is_empty(),
        "every answer is still as documented: {api:?}"
    );
    assert_eq!(
        failing_ids(&failing),
        BTreeSet::from([
            "pod.x1.purge-upto-answers-remaining",
            "pod.x1.purge-upto-keeps-newer",
            "pod.x1.upto-not-digits-400",
        ]),
        "{failing:#?}"
    );
    // The REST vectors against the same pod: their P-X1 purge cases fail, and nothing else.
    let pod = live_pod(Some(|r, _| r.layer(middleware::from_fn(ignore_upto)))).await;
    let files = vectors::load(&vectors::Source::Embedded).unwrap();
    let doc = vectors::rest_doc(&files).unwrap().clone();
    let mut opts = rest::Options::new(pod.url.clone());
    opts.rng_seed = 7;
    let cases = rest::run(&doc, &opts).await.unwrap();
    let failing: Vec<&CaseResult> = cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .collect();
    assert_eq!(
        failing
            .iter()
            .map(|c| c.id.as_str())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([
            "rest.inboxes.x1-purge-upto-keeps-later",
            "rest.inboxes.x1-upto-not-digits-400",
        ]),
        "{failing:#?}"
    );
    assert!(failing.iter().all(|c| c.rule == "P-X1"));
}

// ------------------------------------------------------------------ replicas on PostgreSQL

/// The live pod suite against two replicas of this pod on one PostgreSQL database, behind a
/// proxy that sends each connection to the other replica in turn — the suite opens a
/// connection per request, so consecutive requests alternate: a nonce signed for one replica
/// is a replay at the other, a token issued by one is used at the other, and a notify through
/// one is pushed by the other to a WebSocket opened at it. Needs the PostgreSQL test cluster
/// (`MUTTR_TEST_POSTGRES`; `scripts/test.sh` starts one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_pass_every_case_with_requests_alternating() {
    let Some(db) = pg::fresh_database().await else {
        return;
    };
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = proxy.local_addr().unwrap();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let storage = Storage::connect(&db).await.unwrap();
        let (seed, task) = pod_on(listener, front.to_string(), storage, None).await;
        replicas.push((addr, seed, task));
    }
    let (a, b) = (replicas[0].0, replicas[1].0);
    let served = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let counts = served.clone();
    tokio::spawn(async move {
        let mut next = 0usize;
        while let Ok((mut inbound, _)) = proxy.accept().await {
            let i = next % 2;
            next += 1;
            counts[i].fetch_add(1, Ordering::Relaxed);
            let to = [a, b][i];
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });

    let mut o = Options::new(format!("http://{front}"));
    o.federation_host = Some("127.0.0.1:0".parse().unwrap());
    o.rng_seed = 7;
    let cases = pod::run(&o).await.unwrap();
    for (_, _, task) in &replicas {
        task.abort();
    }
    catalogue::check_run(Live::Pod, &cases).unwrap();
    let bad = not_passing(&cases);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_only_optional_cases_not_applicable(&cases);
    let (to_a, to_b) = (
        served[0].load(Ordering::Relaxed),
        served[1].load(Ordering::Relaxed),
    );
    assert!(to_a > 100 && to_b > 100, "{to_a} / {to_b} connections");
    eprintln!(
        "{} cases, {} passed; {to_a} connections to one replica, {to_b} to the other",
        cases.len(),
        cases.iter().filter(|c| c.verdict == Verdict::Pass).count()
    );
}

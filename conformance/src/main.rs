//! `muttr-conformance`: grade a Muttr implementation against the PROFILE.
//!
//! ```text
//! muttr-conformance gen-vectors [--check]          rebuild vectors/*.json (or check them)
//! muttr-conformance vectors [--impl CMD] [--pod URL] run the vectors (in-process or via an adapter;
//!                                                  the REST ones against our pod or URL); the
//!                                                  vectors are embedded, --vectors DIR reads others
//! muttr-conformance adapter                        serve this implementation as an adapter
//! muttr-conformance seed 127.0.0.1:4000            the live seed suite over UDP
//! muttr-conformance pod http://127.0.0.1:8080      the live pod suite over HTTP and WebSocket
//! ```
//! Reports: text on stdout, `--json FILE`, `--junit FILE`; `--expect FILE` lists known
//! failures. Exit status: 0 when no case failed unexpectedly, 1 otherwise, 2 on usage or I/O
//! errors.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use muttr_conformance::adapter::{self, InProcess, Subprocess};
use muttr_conformance::report::{CaseResult, Expectations, Meta, Report};
use muttr_conformance::select::Selection;
use muttr_conformance::{catalogue, generate, pod, rest, seed, vectors};

/// Conformance suite for Muttr implementations (PROFILE.md).
#[derive(Debug, Parser)]
#[command(name = "muttr-conformance", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Rebuild the vector files under the vectors directory (deterministic).
    GenVectors {
        /// The vectors directory of a checkout to write into.
        #[arg(long, default_value = "vectors")]
        dir: PathBuf,
        /// Do not write: exit 1 if a committed file differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
    /// Run every vector against this implementation, or another one through an adapter.
    Vectors {
        /// Read the vectors from this directory (laid out as the repository's `vectors/`)
        /// instead of the ones embedded in this binary.
        #[arg(long = "vectors", alias = "dir", value_name = "DIR")]
        dir: Option<PathBuf>,
        /// An adapter command (run with `sh -c`) speaking the JSON-lines adapter protocol.
        #[arg(long = "impl", value_name = "CMD")]
        imp: Option<String>,
        /// How long the adapter may take to answer one request (`10s`, `500ms`). One that
        /// misses it, exits or writes non-JSON fails that case and is not asked again.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
        impl_timeout: Duration,
        /// Run the REST cases (`rest.json`) against the pod at URL. Default: this
        /// implementation's pod started in-process on loopback; with `--impl` and no `--pod`
        /// they are not-applicable (an adapter has no HTTP side).
        #[arg(long, value_name = "URL")]
        pod: Option<String>,
        /// The pod's public host in its users' IDs (`alias@HOST`, P-A8); default: the URL's
        /// host[:port].
        #[arg(long, value_name = "HOST")]
        pod_host: Option<String>,
        /// How long one REST request may take, in ms.
        #[arg(long, default_value_t = 15_000)]
        timeout_ms: u64,
        #[command(flatten)]
        out: Output,
    },
    /// List the cases (id, rule, description) without running them: the vectors, the live
    /// seed suite, the live pod suite, or all of them.
    List {
        /// Which suite: `vectors`, `seed` or `pod` (default: all three).
        #[arg(value_enum)]
        suite: Option<ListSuite>,
        /// Read the vectors from this directory instead of the embedded ones.
        #[arg(long = "vectors", value_name = "DIR")]
        dir: Option<PathBuf>,
        /// List only the cases whose id matches this glob (repeatable).
        #[arg(long, value_name = "GLOB")]
        only: Vec<String>,
        /// Leave out the cases whose id matches this glob (repeatable).
        #[arg(long, value_name = "GLOB")]
        skip: Vec<String>,
    },
    /// Serve this implementation over the adapter protocol on stdin/stdout.
    Adapter,
    /// The live black-box suite against a seed at UDP_ADDR (PROFILE §1-§3).
    Seed {
        /// The seed's UDP address (`127.0.0.1:4000`).
        addr: SocketAddr,
        /// How long to wait for a reply, in ms.
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
        /// How long silence must last to count as a drop, in ms.
        #[arg(long, default_value_t = 1000)]
        silence_ms: u64,
        /// How long a contact that ignores the seed's eviction PING gets before the suite
        /// expects it evicted, in ms (the seed's response timeout plus a margin, P-K2, P-K3).
        #[arg(long, default_value_t = 6500)]
        eviction_wait_ms: u64,
        /// Seed of the suite's random values (default: from the clock).
        #[arg(long)]
        rng_seed: Option<u64>,
        #[command(flatten)]
        out: Output,
    },
    /// The live black-box suite against a pod at URL (PROFILE §5-§6).
    Pod {
        /// The pod's base URL (`http://127.0.0.1:8080`, `https://pod.example`).
        url: String,
        /// The pod's public host in its users' IDs (`alias@HOST`, P-A8); default: the URL's
        /// host[:port].
        #[arg(long, value_name = "HOST")]
        pod_host: Option<String>,
        /// Serve the suite's own federation pod (plain HTTP) on ADDR (`127.0.0.1:0` picks a
        /// port) and test href authentication (P-A3); the pod under test must run in
        /// insecure-federation mode and reach ADDR. Without it those cases are not-applicable.
        #[arg(long, value_name = "ADDR")]
        federation_host: Option<SocketAddr>,
        /// Also run the cases that wait: token expiry (31 s) and WebSocket silence (10 s).
        #[arg(long)]
        slow: bool,
        /// Also register an RSA-3072 key (P-G2).
        #[arg(long)]
        rsa: bool,
        /// How long one request may take, in ms.
        #[arg(long, default_value_t = 15_000)]
        timeout_ms: u64,
        /// Seed of the suite's random aliases and values (default: from the clock).
        #[arg(long)]
        rng_seed: Option<u64>,
        #[command(flatten)]
        out: Output,
    },
}

/// The suites `list` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ListSuite {
    Vectors,
    Seed,
    Pod,
}

#[derive(Debug, Args)]
struct Output {
    /// Run only the cases whose id matches this glob (repeatable; `rest.register.*`).
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// Leave out the cases whose id matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    skip: Vec<String>,
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a self-contained HTML report here (per-section summary, every case, filterable).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Known failures: a JSON object {"case.id": "reason"}; ids may end in `*`.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    /// List passing cases too.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("muttr-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let started = (std::time::SystemTime::now(), std::time::Instant::now());
    match cli.command {
        Cmd::GenVectors { dir, check } => {
            anyhow::ensure!(
                dir.is_dir(),
                "{} is not a directory: run from the repository's root or give --dir",
                dir.display()
            );
            let files = generate::generate(&dir)?;
            let mut differ = 0;
            for (name, text) in &files {
                let path = dir.join(name);
                if check {
                    if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                        eprintln!("differs from the generator: {}", path.display());
                        differ += 1;
                    }
                } else {
                    std::fs::write(&path, text)?;
                    println!("wrote {}", path.display());
                }
            }
            Ok(if differ == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Cmd::Vectors {
            dir,
            imp,
            impl_timeout,
            pod,
            pod_host,
            timeout_ms,
            out,
        } => {
            let source = dir.map_or(vectors::Source::Embedded, vectors::Source::Dir);
            let mut files = vectors::load(&source)?;
            Selection::new(&out.only, &out.skip)
                .map_err(anyhow::Error::msg)?
                .apply(&mut files);
            let adapter = imp.is_some();
            let imp_text = imp.clone();
            let mut cases = match imp {
                Some(cmd) => vectors::run(&files, &mut Subprocess::spawn(&cmd, impl_timeout)?),
                None => vectors::run(&files, &mut InProcess),
            };
            if let Some(doc) = vectors::rest_doc(&files) {
                if adapter && pod.is_none() {
                    cases.extend(rest::not_applicable(
                        doc,
                        "no --pod given: the REST cases need a pod (an adapter has no HTTP side)",
                    ));
                } else {
                    let rt = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()?;
                    cases.extend(rt.block_on(async {
                        let local = match &pod {
                            Some(_) => None,
                            None => Some(rest::LocalPod::start().await?),
                        };
                        let url = pod.clone().or(local.as_ref().map(|l| l.url.clone()));
                        let mut opts = rest::Options::new(url.unwrap_or_default());
                        opts.pod_host = pod_host;
                        opts.timeout = Duration::from_millis(timeout_ms);
                        rest::run(doc, &opts).await
                    })?);
                }
            }
            let target = match (&imp_text, &pod) {
                (Some(cmd), Some(url)) => format!("adapter {cmd:?}, pod {url}"),
                (Some(cmd), None) => format!("adapter {cmd:?}"),
                (None, Some(url)) => format!("this implementation, pod {url}"),
                (None, None) => "this implementation (in process)".to_string(),
            };
            finish("vectors", target, started, cases, &out)
        }
        Cmd::List {
            suite,
            dir,
            only,
            skip,
        } => {
            let selection = Selection::new(&only, &skip).map_err(anyhow::Error::msg)?;
            let mut rows: Vec<[String; 3]> = Vec::new();
            if suite.is_none_or(|s| s == ListSuite::Vectors) {
                let source = dir.map_or(vectors::Source::Embedded, vectors::Source::Dir);
                let mut files = vectors::load(&source)?;
                selection.apply(&mut files);
                for (_, doc) in &files {
                    for c in doc["cases"].as_array().into_iter().flatten() {
                        let text = |k: &str| c[k].as_str().unwrap_or("?").to_string();
                        rows.push([text("id"), text("rule"), text("description")]);
                    }
                }
            }
            for live in catalogue::Live::ALL {
                let wanted = match live {
                    catalogue::Live::Seed => ListSuite::Seed,
                    catalogue::Live::Pod => ListSuite::Pod,
                };
                if suite.is_none_or(|s| s == wanted) {
                    rows.extend(
                        catalogue::entries(live)
                            .iter()
                            .filter(|e| selection.covers(&e.id))
                            .map(|e| [e.id.clone(), e.rule.clone(), e.description.clone()]),
                    );
                }
            }
            // The pod suite runs the REST vectors too: each id once.
            let mut printed = std::collections::HashSet::new();
            rows.retain(|[id, _, _]| printed.insert(id.clone()));
            for [id, rule, description] in &rows {
                println!("{id}\t{rule}\t{description}");
            }
            eprintln!("{} cases", rows.len());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Adapter => {
            let stdin = std::io::stdin();
            adapter::serve(stdin.lock(), std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Seed {
            addr,
            timeout_ms,
            silence_ms,
            eviction_wait_ms,
            rng_seed,
            out,
        } => {
            let mut opts = seed::Options::new(addr);
            opts.reply_timeout = Duration::from_millis(timeout_ms);
            opts.silence = Duration::from_millis(silence_ms);
            opts.eviction_wait = Duration::from_millis(eviction_wait_ms);
            if let Some(s) = rng_seed {
                opts.rng_seed = s;
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let cases = rt.block_on(seed::run(&opts))?;
            finish("seed", addr.to_string(), started, cases, &out)
        }
        Cmd::Pod {
            url,
            pod_host,
            federation_host,
            slow,
            rsa,
            timeout_ms,
            rng_seed,
            out,
        } => {
            let target = url.clone();
            let mut opts = pod::Options::new(url);
            opts.pod_host = pod_host;
            opts.federation_host = federation_host;
            opts.slow = slow;
            opts.rsa = rsa;
            opts.timeout = Duration::from_millis(timeout_ms);
            if let Some(s) = rng_seed {
                opts.rng_seed = s;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let cases = rt.block_on(pod::run(&opts))?;
            finish("pod", target, started, cases, &out)
        }
    }
}

fn finish(
    suite: &str,
    target: String,
    started: (std::time::SystemTime, std::time::Instant),
    cases: Vec<CaseResult>,
    out: &Output,
) -> anyhow::Result<ExitCode> {
    let expectations = match &out.expect {
        Some(p) => Expectations::parse(&std::fs::read_to_string(p)?).map_err(anyhow::Error::msg)?,
        None => Expectations::default(),
    };
    // The live suites run whole; --only/--skip select what is reported (see `select`).
    let selection = Selection::new(&out.only, &out.skip).map_err(anyhow::Error::msg)?;
    let cases: Vec<CaseResult> = cases
        .into_iter()
        .filter(|c| selection.covers(&c.id))
        .collect();
    let report = Report::new(suite, cases, expectations).with_meta(Meta {
        target,
        started: started.0,
        duration: started.1.elapsed(),
        start: started.1,
    });
    print!("{}", report.text(out.verbose));
    if let Some(p) = &out.json {
        std::fs::write(p, serde_json::to_string_pretty(&report.json())? + "\n")?;
    }
    if let Some(p) = &out.junit {
        std::fs::write(p, report.junit())?;
    }
    if let Some(p) = &out.html {
        std::fs::write(p, report.html())?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

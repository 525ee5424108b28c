//! The scenario runner: builds the network, starts the processes, applies the faults on
//! schedule, follows the workload, and writes the report.
//!
//! ```text
//! setup     namespaces + veths (netns), switch process, impairment on from the start
//! start     seeds (muttr-seed, --data-dir), pods (muttr-pod, --insecure-federation),
//!           one client process per pod (muttr-testbed client, in the pod's namespace)
//! ready     every user registered → prefetch every other pod's users' keys → t0
//! workload  messages on the plan's schedule; partitions and SIGKILL/restarts on theirs
//! drain     until every message is settled, or drain_s after the workload
//! teardown  stop clients (they report what is pending), switch stats, kill, delete namespaces
//! ```
//!
//! Teardown runs on every path out — success, failure, an error, Ctrl-C/SIGTERM, a panic —
//! because the processes are `kill_on_drop` and [`Topology`] deletes its namespaces on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::netns::{self, Topology};
use crate::report::{Fault, Report, ReportHead, Tally};
use crate::scenario::Scenario;
use crate::switch::{Control, Stats};
use crate::workload::{self, Event, Plan, Planned, now_ms};

/// The seeds' UDP port.
pub const SEED_PORT: u16 = 4000;
/// The pods' HTTP port.
pub const POD_PORT: u16 = 8080;
/// How long the users may take to register.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// How long prefetching the keys may take.
pub const KEYS_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the binaries are and where the run writes.
#[derive(Debug, Clone)]
pub struct Options {
    /// Directory holding `muttr-seed` and `muttr-pod`.
    pub bin_dir: PathBuf,
    /// This program (for `switch` and `client`).
    pub me: PathBuf,
    /// Output directory (report, logs, data).
    pub out: PathBuf,
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
}

/// A fault or step on the timeline, at ms after `t0`.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Cut side B off (partition index).
    Partition(usize),
    /// Heal it.
    Heal(usize),
    /// SIGKILL seed host.
    Kill(usize),
    /// Restart it.
    Restart(usize),
}

/// Everything decided before the run from the scenario and its seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Per pod: its plan.
    pub plans: Vec<Plan>,
    /// Actions in time order.
    pub actions: Vec<(u64, Action)>,
    /// Per partition: the side of every host (0 = A, 1 = B).
    pub sides: Vec<Vec<u8>>,
}

/// The user ID of user `u` of pod `p` (host index `seeds + p`).
pub fn user_id(s: &Scenario, p: usize, u: usize) -> String {
    format!("u{u}@{}:{POD_PORT}", netns::host_ip(s.seeds + p))
}

/// Draws the messages, partition sides and kill victims from the scenario's seed.
pub fn schedule(s: &Scenario, seed: u64) -> Schedule {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let duration_ms = s.duration_s * 1000;
    let mut plans = Vec::new();
    for p in 0..s.pods {
        let mut messages = Vec::new();
        for u in 0..s.users_per_pod {
            let mut t = 0.0f64;
            let rate_per_ms = s.messages_per_user_per_min / 60_000.0;
            let mut n = 0;
            loop {
                if rate_per_ms <= 0.0 {
                    break;
                }
                // Exponential gaps: Poisson arrivals.
                let x: f64 = rng.random_range(f64::EPSILON..1.0);
                t += -x.ln() / rate_per_ms;
                if t >= duration_ms as f64 {
                    break;
                }
                let mut q = rng.random_range(0..s.pods - 1);
                if q >= p {
                    q += 1;
                }
                let v = rng.random_range(0..s.users_per_pod);
                messages.push(Planned {
                    id: format!("p{p}u{u}-{n}"),
                    from: u,
                    to: user_id(s, q, v),
                    at_ms: t as u64,
                });
                n += 1;
            }
        }
        messages.sort_by(|a, b| a.at_ms.cmp(&b.at_ms).then(a.id.cmp(&b.id)));
        plans.push(Plan {
            pod: p,
            pod_url: format!(
                "{}://{}:{POD_PORT}",
                if s.https { "https" } else { "http" },
                netns::host_ip(s.seeds + p)
            ),
            users: (0..s.users_per_pod).map(|u| format!("u{u}")).collect(),
            message_bytes: s.message_bytes,
            messages,
            ca_file: None,
        });
    }
    let mut actions = Vec::new();
    let mut sides = Vec::new();
    for (i, part) in s.partitions.iter().enumerate() {
        let mut seeds: Vec<usize> = (0..s.seeds).collect();
        seeds.shuffle(&mut rng);
        let mut side = vec![0u8; s.hosts()];
        for &h in seeds.iter().take(s.seeds_for(part.seed_fraction)) {
            side[h] = 1;
        }
        for &p in &part.pods {
            side[s.seeds + p] = 1;
        }
        sides.push(side);
        actions.push((part.start_s * 1000, Action::Partition(i)));
        actions.push((part.end_s * 1000, Action::Heal(i)));
    }
    let victims = s.seeds_for(s.kills.seed_fraction);
    if victims > 0 {
        let mut seeds: Vec<usize> = (0..s.seeds).collect();
        seeds.shuffle(&mut rng);
        seeds.truncate(victims);
        seeds.sort_unstable();
        for (k, &h) in seeds.iter().enumerate() {
            let at = s.kills.start_s * 1000 + s.kills.spread_s * 1000 * k as u64 / victims as u64;
            actions.push((at, Action::Kill(h)));
            actions.push((at + s.kills.down_s * 1000, Action::Restart(h)));
        }
    }
    actions.sort_by_key(|(t, _)| *t);
    Schedule {
        plans,
        actions,
        sides,
    }
}

/// A seed or pod process, restartable.
struct Proc {
    name: String,
    ns: String,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    killed_by_us: bool,
}

impl Proc {
    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("{}", self.log.display()))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.name))?;
        self.child = Some(child);
        self.killed_by_us = false;
        Ok(())
    }

    async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.killed_by_us = true;
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// `Some(status)` when it exited on its own.
    fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }
}

/// Seconds since the Unix epoch of a log line's RFC 3339 timestamp (tracing's default
/// format), if it starts with one.
fn log_time_ms(line: &str) -> Option<u64> {
    // 2026-11-26T17:20:01.123456Z
    let ts = line.split_whitespace().next()?;
    let ts = ts.strip_suffix('Z')?;
    let (date, time) = ts.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss: f64 = t.next()?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60;
    Some((secs as f64 * 1000.0 + ss * 1000.0) as u64)
}

/// When (Unix ms) the log at `path` first says "joined the network" after `since`.
fn rejoined_at(path: &Path, since: u64) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .filter(|l| l.contains("joined the network"))
        .filter_map(log_time_ms)
        .find(|&t| t >= since)
}

async fn send_line<T: serde::Serialize>(to: &mut ChildStdin, v: &T) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(v)?;
    line.push('\n');
    to.write_all(line.as_bytes()).await?;
    to.flush().await?;
    Ok(())
}

/// Runs `scenario`; returns its report (also written to `out/report.json` and `.txt`).
pub async fn run(scenario: &Scenario, opts: &Options) -> anyhow::Result<Report> {
    let wall = Instant::now();
    let seed = opts.seed.unwrap_or(scenario.seed);
    let mut sched = schedule(scenario, seed);
    for b in ["muttr-seed", "muttr-pod"] {
        if !opts.bin_dir.join(b).is_file() {
            bail!(
                "{} not found: build it first (`cargo build -p muttr-node -p muttr-pod`) or pass --bin-dir",
                opts.bin_dir.join(b).display()
            );
        }
    }
    let logs = opts.out.join("logs");
    let data = opts.out.join("data");
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("{}", data.display()))?;
    }
    std::fs::create_dir_all(&logs)?;
    std::fs::create_dir_all(&data)?;
    let seed_config = match &scenario.seed_config {
        Some(t) => {
            // The `[seed]` table of a configuration file, which muttr-seed and muttr-pod
            // both read.
            let path = opts.out.join("seed-config.toml");
            let mut file = toml::Table::new();
            file.insert("seed".into(), toml::Value::Table(t.clone()));
            std::fs::write(&path, toml::to_string(&file)?)?;
            Some(path)
        }
        None => None,
    };

    let run_id = format!("{:x}", (now_ms() ^ u64::from(std::process::id())) & 0xffff);
    eprintln!(
        "== testbed {}: run {run_id}, {} seeds + {} pods, seed {seed}",
        scenario.name, scenario.seeds, scenario.pods
    );
    let topo = tokio::task::spawn_blocking({
        let run_id = run_id.clone();
        let n = scenario.hosts();
        move || Topology::create(&run_id, n)
    })
    .await??;
    eprintln!(
        "== {} namespaces, {} veth pairs",
        topo.hosts.len() + 1,
        topo.hosts.len()
    );

    // The switch.
    let mut switch = Command::new("ip")
        .args(["netns", "exec", &topo.switch_ns])
        .arg(&opts.me)
        .args(["switch", "--seed", &seed.to_string(), "--ports"])
        .arg(topo.ports().join(","))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(logs.join("switch.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the switch")?;
    let mut switch_in = switch.stdin.take().context("switch stdin")?;
    let mut switch_out = BufReader::new(switch.stdout.take().context("switch stdout")?).lines();
    send_line(&mut switch_in, &Control::Impair(scenario.network)).await?;

    // A private CA for the run when pods serve HTTPS; the clients trust it too.
    let pki = if scenario.https {
        let pki = crate::pki::Pki::new(&data.join("ca"))?;
        for plan in &mut sched.plans {
            plan.ca_file = Some(pki.ca_file.clone());
        }
        Some(pki)
    } else {
        None
    };

    // Seeds and pods.
    let seed_addr = |i: usize| format!("{}:{SEED_PORT}", netns::host_ip(i));
    let boot: Vec<usize> = (0..scenario.seeds.min(3)).collect();
    let mut procs: Vec<Proc> = Vec::new();
    for h in &topo.hosts {
        let is_pod = h.index >= scenario.seeds;
        let mut args = Vec::new();
        for &b in boot.iter().filter(|&&b| b != h.index) {
            args.push("--bootstrap".to_string());
            args.push(seed_addr(b));
        }
        let dir = data.join(format!("host{}", h.index));
        std::fs::create_dir_all(&dir)?;
        let (name, program) = if is_pod {
            let p = h.index - scenario.seeds;
            args.extend([
                "--listen".into(),
                format!("{}:{POD_PORT}", h.ip),
                "--public-host".into(),
                format!("{}:{POD_PORT}", h.ip),
                "--seed-listen".into(),
                seed_addr(h.index),
                "--data-dir".into(),
                dir.display().to_string(),
                "--rng-seed".into(),
                (seed ^ (h.index as u64 + 1)).to_string(),
            ]);
            match &pki {
                Some(pki) => {
                    let (cert, key) = pki.server(&h.ip.to_string(), &dir)?;
                    args.extend([
                        "--tls-cert".into(),
                        cert.display().to_string(),
                        "--tls-key".into(),
                        key.display().to_string(),
                        "--ca-file".into(),
                        pki.ca_file.display().to_string(),
                    ]);
                }
                None => args.push("--insecure-federation".into()),
            }
            if let Some(c) = &seed_config {
                args.extend(["--config".into(), c.display().to_string()]);
            }
            (format!("pod{p}"), opts.bin_dir.join("muttr-pod"))
        } else {
            args.extend([
                "--listen".into(),
                seed_addr(h.index),
                "--data-dir".into(),
                dir.display().to_string(),
                "--rng-seed".into(),
                (seed ^ (h.index as u64 + 1)).to_string(),
            ]);
            if let Some(c) = &seed_config {
                args.extend(["--config".into(), c.display().to_string()]);
            }
            (format!("seed{}", h.index), opts.bin_dir.join("muttr-seed"))
        };
        let mut p = Proc {
            log: logs.join(format!("{name}.log")),
            name,
            ns: h.ns.clone(),
            program,
            args,
            child: None,
            killed_by_us: false,
        };
        p.start()?;
        procs.push(p);
    }
    let started_ms = now_ms();

    // Clients, one per pod, in the pod's namespace.
    let (ev_tx, mut ev_rx) = mpsc::channel::<(usize, Event)>(4096);
    let mut clients = Vec::new();
    let mut client_in = Vec::new();
    for plan in &sched.plans {
        let path = opts.out.join(format!("plan{}.json", plan.pod));
        std::fs::write(&path, serde_json::to_vec_pretty(plan)?)?;
        let mut c = Command::new("ip")
            .args(["netns", "exec", &topo.hosts[scenario.seeds + plan.pod].ns])
            .arg(&opts.me)
            .arg("client")
            .arg("--plan")
            .arg(&path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(
                logs.join(format!("client{}.log", plan.pod)),
            )?)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a client")?;
        client_in.push(c.stdin.take().context("client stdin")?);
        let mut lines = BufReader::new(c.stdout.take().context("client stdout")?).lines();
        let tx = ev_tx.clone();
        let pod = plan.pod;
        let mut raw = std::fs::File::create(opts.out.join(format!("events{pod}.jsonl")))?;
        tokio::spawn(async move {
            use std::io::Write;
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = writeln!(raw, "{line}");
                match serde_json::from_str::<Event>(&line) {
                    Ok(e) => {
                        if tx.send((pod, e)).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => eprintln!("client {pod}: unreadable event {line:?}: {e}"),
                }
            }
        });
        clients.push(c);
    }
    drop(ev_tx);

    let mut tally = Tally::new(sched.plans.iter().flat_map(|p| {
        p.messages
            .iter()
            .map(|m| (m.id.clone(), m.at_ms, m.to.clone()))
    }));
    let mut unexpected = Vec::new();

    // Ready → keys → t0.
    let mut users: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + READY_TIMEOUT;
    while users.len() < scenario.pods {
        match tokio::time::timeout_at(deadline, ev_rx.recv()).await {
            Ok(Some((p, Event::Ready { users: u, .. }))) => {
                users.insert(p, u);
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("every client exited before registering (see logs/client*.log)"),
            Err(_) => bail!(
                "users not registered after {} s: {} of {} pods ready (see logs/)",
                READY_TIMEOUT.as_secs(),
                users.len(),
                scenario.pods
            ),
        }
    }
    eprintln!(
        "== users registered ({} s after start)",
        (now_ms() - started_ms) / 1000
    );
    for (p, input) in client_in.iter_mut().enumerate() {
        let others: Vec<String> = users
            .iter()
            .filter(|(q, _)| **q != p)
            .flat_map(|(_, u)| u.clone())
            .collect();
        send_line(input, &workload::Command::Prefetch(others)).await?;
    }
    let mut with_keys = 0;
    let deadline = Instant::now() + KEYS_TIMEOUT;
    while with_keys < scenario.pods {
        match tokio::time::timeout_at(deadline, ev_rx.recv()).await {
            Ok(Some((_, Event::Keys { .. }))) => with_keys += 1,
            Ok(Some(_)) => {}
            Ok(None) => bail!("every client exited before fetching keys"),
            Err(_) => bail!("keys not fetched after {} s", KEYS_TIMEOUT.as_secs()),
        }
    }
    let warm_until = started_ms + scenario.warmup_s * 1000;
    tokio::time::sleep(Duration::from_millis(warm_until.saturating_sub(now_ms()))).await;
    let t0 = now_ms() + 500;
    let t0_instant = Instant::now() + Duration::from_millis(500);
    for input in client_in.iter_mut() {
        send_line(input, &workload::Command::Start(t0)).await?;
    }
    eprintln!(
        "== workload: {} messages over {} s",
        tally.messages.len(),
        scenario.duration_s
    );

    // The timeline.
    let mut faults: Vec<Fault> = Vec::new();
    let mut open_fault: BTreeMap<String, usize> = BTreeMap::new();
    let mut actions = sched.actions.iter().peekable();
    let end_workload = t0_instant + Duration::from_secs(scenario.duration_s);
    let end_drain = end_workload + Duration::from_secs(scenario.drain_s);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_progress = Instant::now();
    let shutdown = muttr_node::process::shutdown_signal();
    tokio::pin!(shutdown);
    let mut interrupted = false;
    loop {
        let next_action = actions
            .peek()
            .map(|(t, _)| t0_instant + Duration::from_millis(*t));
        tokio::select! {
            biased;
            _ = &mut shutdown => {
                eprintln!("== interrupted: cleaning up");
                interrupted = true;
                break;
            }
            _ = async {
                match next_action {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let (_, action) = actions.next().expect("peeked");
                let at_s = (now_ms().saturating_sub(t0)) as f64 / 1000.0;
                match action {
                    Action::Partition(i) => {
                        send_line(&mut switch_in, &Control::Partition(sched.sides[*i].clone())).await?;
                        let b: Vec<String> = sched.sides[*i]
                            .iter()
                            .enumerate()
                            .filter(|(_, s)| **s == 1)
                            .map(|(h, _)| procs[h].name.clone())
                            .collect();
                        eprintln!("== t+{at_s:.0}s partition {i}: side B = {}", b.join(" "));
                        open_fault.insert(format!("partition{i}"), faults.len());
                        faults.push(Fault {
                            kind: "partition".into(),
                            target: b.join(" "),
                            start_s: at_s,
                            end_s: None,
                            backlog: 0,
                            recovered_after_s: None,
                            rejoined_after_s: None,
                        });
                    }
                    Action::Heal(i) => {
                        send_line(&mut switch_in, &Control::Heal).await?;
                        eprintln!("== t+{at_s:.0}s partition {i} healed");
                        if let Some(&f) = open_fault.get(&format!("partition{i}")) {
                            faults[f].end_s = Some(at_s);
                        }
                    }
                    Action::Kill(h) => {
                        procs[*h].kill().await;
                        eprintln!("== t+{at_s:.0}s SIGKILL {}", procs[*h].name);
                        open_fault.insert(format!("kill{h}"), faults.len());
                        faults.push(Fault {
                            kind: "kill".into(),
                            target: procs[*h].name.clone(),
                            start_s: at_s,
                            end_s: None,
                            backlog: 0,
                            recovered_after_s: None,
                            rejoined_after_s: None,
                        });
                    }
                    Action::Restart(h) => {
                        procs[*h].start()?;
                        eprintln!("== t+{at_s:.0}s restarted {}", procs[*h].name);
                        if let Some(&f) = open_fault.get(&format!("kill{h}")) {
                            faults[f].end_s = Some(at_s);
                        }
                    }
                }
            }
            ev = ev_rx.recv() => {
                match ev {
                    Some((_, e)) => tally.apply(&e),
                    None => {
                        unexpected.push("every client exited".to_string());
                        break;
                    }
                }
            }
            _ = tick.tick() => {
                for p in procs.iter_mut() {
                    if let Some(status) = p.exited() {
                        eprintln!("== {} exited on its own: {status}", p.name);
                        unexpected.push(format!("{}: {status}", p.name));
                    }
                }
                let now = Instant::now();
                if now >= end_workload && actions.peek().is_none() && tally.settled() {
                    eprintln!("== every message settled");
                    break;
                }
                if now >= end_drain {
                    eprintln!("== drain time over");
                    break;
                }
                if now - last_progress >= Duration::from_secs(15) {
                    last_progress = now;
                    let acked = tally.messages.values().filter(|m| m.acked.is_some()).count();
                    let done = tally.messages.values().filter(|m| m.delivered.is_some()).count();
                    eprintln!(
                        "   t+{:.0}s: {acked} acknowledged, {done} delivered of {} planned",
                        (now_ms().saturating_sub(t0)) as f64 / 1000.0,
                        tally.messages.len()
                    );
                }
            }
        }
    }
    let ran_s = (now_ms().saturating_sub(t0)) as f64 / 1000.0;

    // Teardown: clients report what is pending, then everything stops.
    for input in client_in.iter_mut() {
        let _ = send_line(input, &workload::Command::Stop).await;
    }
    let mut done = 0;
    let stop_deadline = Instant::now() + Duration::from_secs(15);
    while done < scenario.pods {
        match tokio::time::timeout_at(stop_deadline, ev_rx.recv()).await {
            Ok(Some((_, Event::Done { .. }))) => done += 1,
            Ok(Some((_, e))) => tally.apply(&e),
            _ => break,
        }
    }
    let _ = send_line(&mut switch_in, &Control::Stats).await;
    let switch_stats =
        match tokio::time::timeout(Duration::from_secs(5), switch_out.next_line()).await {
            Ok(Ok(Some(line))) => serde_json::from_str::<Stats>(&line).ok(),
            _ => None,
        };
    drop(switch_in);
    for p in procs.iter_mut() {
        if let Some(status) = p.exited() {
            unexpected.push(format!("{}: {status}", p.name));
        }
        p.kill().await;
    }
    for mut c in clients {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    let _ = switch.start_kill();
    let _ = switch.wait().await;
    let mut topo = topo;
    let removed = tokio::task::spawn_blocking(move || topo.destroy()).await?;
    eprintln!("== removed {removed} namespaces");

    for f in faults.iter_mut() {
        if let Some(end) = f.end_s {
            let end_ms = t0 + (end * 1000.0) as u64;
            let (n, r) = tally.recovery_after(end_ms);
            f.backlog = n;
            f.recovered_after_s = r;
            if f.kind == "kill" {
                let log = logs.join(format!("{}.log", f.target));
                f.rejoined_after_s =
                    rejoined_at(&log, end_ms).map(|t| t.saturating_sub(end_ms) as f64 / 1000.0);
            }
        }
    }
    if interrupted {
        unexpected.push("the run was interrupted".into());
    }
    let head = ReportHead {
        scenario: scenario.name.clone(),
        seed,
        seeds: scenario.seeds,
        pods: scenario.pods,
        users: scenario.pods * scenario.users_per_pod,
        network: scenario.network,
        impairment_engine: "user-space switch (no sch_netem in this kernel)".into(),
        duration_s: scenario.duration_s,
        t0_ms: t0,
        ran_s,
        wall_s: wall.elapsed().as_secs_f64(),
        unexpected_exits: unexpected,
    };
    let report = tally.report(head, faults, switch_stats);
    std::fs::write(
        opts.out.join("report.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    std::fs::write(opts.out.join("report.txt"), report.text())?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        Scenario::parse(
            r#"
name = "t"
seeds = 10
pods = 3
users_per_pod = 2
duration_s = 600
messages_per_user_per_min = 3.0
[[partitions]]
start_s = 60
end_s = 120
seed_fraction = 0.5
pods = [2]
[kills]
seed_fraction = 0.2
start_s = 30
spread_s = 100
down_s = 20
"#,
        )
        .unwrap()
    }

    #[test]
    fn schedule_is_seeded_and_well_formed() {
        let s = scenario();
        let a = schedule(&s, 1);
        assert_eq!(a, schedule(&s, 1));
        assert_ne!(a.plans, schedule(&s, 2).plans);
        let total: usize = a.plans.iter().map(|p| p.messages.len()).sum();
        // 6 users × 3/min × 10 min = 180 expected; Poisson spread.
        assert!((120..=240).contains(&total), "{total}");
        for plan in &a.plans {
            assert!(plan.messages.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
            let own = format!("{}:{POD_PORT}", netns::host_ip(s.seeds + plan.pod));
            for m in &plan.messages {
                assert!(!m.to.ends_with(&own), "{} sent within its own pod", m.id);
                assert!(m.at_ms < 600_000);
                assert!(m.from < 2);
            }
        }
        let ids: std::collections::HashSet<_> = a
            .plans
            .iter()
            .flat_map(|p| &p.messages)
            .map(|m| &m.id)
            .collect();
        assert_eq!(ids.len(), total, "ids are unique");
    }

    #[test]
    fn faults_follow_the_scenario() {
        let s = scenario();
        let a = schedule(&s, 3);
        let side = &a.sides[0];
        assert_eq!(side.iter().take(10).filter(|&&x| x == 1).count(), 5);
        assert_eq!(&side[10..], &[0, 0, 1]);
        let kills: Vec<_> = a
            .actions
            .iter()
            .filter_map(|(t, a)| match a {
                Action::Kill(h) => Some((*t, *h)),
                _ => None,
            })
            .collect();
        assert_eq!(kills.len(), 2);
        assert_eq!(kills[0].0, 30_000);
        assert_eq!(kills[1].0, 80_000);
        assert!(kills.iter().all(|(_, h)| *h < 10), "only seeds are killed");
        for (t, h) in &kills {
            assert!(a.actions.contains(&(t + 20_000, Action::Restart(*h))));
        }
        assert!(a.actions.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(a.actions.contains(&(60_000, Action::Partition(0))));
        assert!(a.actions.contains(&(120_000, Action::Heal(0))));
    }

    #[test]
    fn reads_tracing_timestamps() {
        let t = log_time_ms(
            "2026-11-26T17:20:01.500000Z  INFO muttr_node::process: joined the network contacts=5",
        );
        assert_eq!(t, Some(1_795_713_601_500));
        assert_eq!(log_time_ms("not a time"), None);
        assert_eq!(log_time_ms("1970-01-01T00:00:00Z x"), Some(0));
    }
}

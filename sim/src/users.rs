//! Pods and their users: the messaging workload of the whitepaper's 12 steps, end to end.
//!
//! Each pod ([`crate::pod_host`]) has `users_per_pod` users. A user is the client library's
//! unchanged [`Client`] on a host of its own, over a [`SimDialer`]; an *active* user also runs
//! a seed of its own (stores and fetches through the DHT directly), a *passive* one goes through
//! its pod's REST API. Every user registers its key (step 3) and takes an alias `u<n>` (step 4).
//!
//! Messages (Poisson, `messages_per_user_per_min` per user, for the first `send_for_s`) go to
//! a random user of *another* pod: the sender fetches the recipient's key from its pod (6),
//! seals (7, sign + encrypt), stores (8) and notifies the recipient's pod (9, signed `href`
//! identity, which that pod checks by fetching the sender's key from the sender's pod). The
//! recipient learns of it by WebSocket push (the client library's `Listener`, which reconnects
//! and plays back what it missed) or by inbox playback (10), fetches it (11), decrypts and
//! verifies it (12), and purges its inbox up to the entries it has read (PROFILE P-X1). Each
//! stage is counted: sent → stored → acknowledged → notified → fetched → verified, and a
//! message that stops is lost with the stage as its reason. Every step runs under the client
//! library's one retry policy, as a real client would.
//!
//! For long horizons: recipients can be away (`recipients_offline_s`: nobody listens or plays
//! back until then), senders can leave for good once they have sent (`senders_leave`: their own
//! seeds stop, so nobody republishes what they published), and the pods' keep-alive (PROFILE
//! P-X2) can be switched off (`pod_keepalive = false`) to measure what it prevents.
//!
//! OpenPGP's random outputs (keys, seals) are recorded and replayed by [`CryptoCache`], so one
//! scenario and seed give one event log.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use muttr_node::client::{
    Client, ClientConfig, ClientError, Heard, InboxCursor, Notification, UserId,
};
use muttr_node::crypto::Identity;
use muttr_node::driver::{Seed, SeedOptions, spawn_seed};
use muttr_node::net::Clock;
use muttr_node::store::{MemStore, Quotas};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use turmoil_net::HostId;

use crate::cache::CryptoCache;
use crate::fabric::splitmix64;
use crate::net::SimTransport;
use crate::pod_host::{self, POD_SEED_PORT, PodSpec, RunningPod, SimPki};
use crate::report::{MessageReport, Summary};
use crate::scenario::Scenario;
use crate::tcp::SimDialer;

/// Picks up to `n` live seeds' addresses with the given RNG.
pub type SeedPicker = Box<dyn Fn(&mut ChaCha8Rng, usize) -> Vec<SocketAddr>>;

/// What the simulator gives the pods: hosts, shared clock and doorbell, a way to log, and a
/// way to find seeds to bootstrap through.
pub struct Env {
    /// Pod hosts (one per pod), then user hosts (one per user), with their host numbers.
    pub hosts: Vec<(HostId, Ipv4Addr)>,
    /// The fabric's doorbell.
    pub doorbell: Arc<Notify>,
    /// The simulation's clock.
    pub clock: Clock,
    /// The run's seed.
    pub seed: u64,
    /// The scenario.
    pub sc: Scenario,
    /// Record/replay directory of the crypto outputs (`None`: memory only).
    pub cache_dir: Option<PathBuf>,
    /// Appends one event (a JSON object with an `ev` field) to the run's log.
    pub log: Box<dyn Fn(String)>,
    /// Up to `n` live seeds' addresses, chosen with the given RNG.
    pub seeds_to_join: SeedPicker,
}

#[derive(Serialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
enum PodEvent<'a> {
    PodUp {
        pod: u32,
        contacts: usize,
    },
    PodDown {
        pod: u32,
    },
    PodFailed {
        pod: u32,
        error: String,
    },
    UserReady {
        user: u32,
        pod: u32,
        active: bool,
        push: bool,
    },
    UserFailed {
        user: u32,
        error: String,
    },
    MsgSent {
        m: u64,
        from: u32,
        to: u32,
        key: &'a str,
        tries: u32,
    },
    MsgNotified {
        m: u64,
        via: &'a str,
    },
    MsgVerified {
        m: u64,
        latency_ms: u64,
    },
    MsgLost {
        m: u64,
        reason: &'a str,
    },
    SendersLeft {
        seeds: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Started,
    Stored,
    Sent,
    Notified,
    Fetched,
    Done,
}

struct Msg {
    from: u32,
    to: u32,
    text: Vec<u8>,
    started: Instant,
    stage: Stage,
}

struct User {
    pod: u32,
    host: HostId,
    ip: Ipv4Addr,
    active: bool,
    push: bool,
    identity: Option<Identity>,
    client: Option<Rc<Client<SimDialer>>>,
    seed: Option<Seed<MemStore>>,
    seen: BTreeSet<String>,
    /// What it has read, by entry id: how far it may purge (P-X1).
    inbox: InboxCursor,
}

struct State {
    env: Env,
    specs: Vec<PodSpec>,
    running: Vec<Option<RunningPod>>,
    incarnation: Vec<u64>,
    users: Vec<User>,
    msgs: Vec<Msg>,
    by_key: BTreeMap<String, u64>,
    cache: CryptoCache,
    rng: ChaCha8Rng,
    r: MessageReport,
    latencies: Vec<f64>,
    pending: usize,
    /// When the workload starts (set by [`PodSim::start`]).
    workload_start: Option<Instant>,
    tasks: Vec<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

/// The pods of a run and their users.
#[derive(Clone)]
pub struct PodSim(Rc<RefCell<State>>);

impl PodSim {
    /// Sets up (nothing runs yet). `env.hosts` must hold `pods + pods × users_per_pod` hosts.
    pub fn new(env: Env) -> std::io::Result<PodSim> {
        let sc = env.sc.clone();
        let data = tempfile::Builder::new()
            .prefix("muttr-sim-pods")
            .tempdir()?;
        let pki = if sc.messaging.https {
            Some(SimPki::new().map_err(|e| std::io::Error::other(e.to_string()))?)
        } else {
            None
        };
        let specs = (0..sc.pods)
            .map(|p| {
                let (host, ip) = env.hosts[p as usize];
                let dir = data.path().join(format!("pod{p}"));
                let tls = match &pki {
                    Some(pki) => Some(pki.pod(p, ip, &dir.join("tls"))?),
                    None => None,
                };
                Ok(PodSpec {
                    index: p,
                    host,
                    ip,
                    dir,
                    config: sc.config.clone(),
                    rng_seed: splitmix64(env.seed ^ 0x9_0D00 ^ ((p as u64) << 32)),
                    keepalive: sc.messaging.pod_keepalive,
                    tls,
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(env.seed ^ 0x05E5));
        let users = (0..sc.pods * sc.users_per_pod)
            .map(|n| {
                let (host, ip) = env.hosts[(sc.pods + n) as usize];
                User {
                    pod: n / sc.users_per_pod.max(1),
                    host,
                    ip,
                    active: rng.random::<f64>() < sc.messaging.active_share,
                    push: rng.random::<f64>() < sc.messaging.push_share,
                    identity: None,
                    client: None,
                    seed: None,
                    seen: BTreeSet::new(),
                    inbox: InboxCursor::default(),
                }
            })
            .collect();
        let cache = CryptoCache::open(env.cache_dir.as_deref(), &sc.name, env.seed);
        Ok(PodSim(Rc::new(RefCell::new(State {
            running: (0..sc.pods).map(|_| None).collect(),
            incarnation: vec![0; sc.pods as usize],
            specs,
            users,
            msgs: Vec::new(),
            by_key: BTreeMap::new(),
            cache,
            rng,
            r: MessageReport {
                pods: sc.pods,
                ..MessageReport::default()
            },
            latencies: Vec::new(),
            pending: 0,
            workload_start: None,
            tasks: Vec::new(),
            _data: data,
            env,
        }))))
    }

    fn log(&self, ev: PodEvent<'_>) {
        let text = serde_json::to_string(&ev).unwrap_or_default();
        (self.0.borrow().env.log)(text);
    }

    fn spawn(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        let h = tokio::task::spawn_local(fut);
        self.0.borrow_mut().tasks.push(h);
    }

    /// Messages whose fate is still open (the run drains until this is 0).
    pub fn pending(&self) -> usize {
        self.0.borrow().pending
    }

    /// Schedules everything: pods start at `pods_at`, users set up right after, messages flow
    /// from `workload_start` to `workload_end`, pod restarts as the scenario says.
    pub fn start(&self, pods_at: Instant, workload_start: Instant, workload_end: Instant) {
        let sim = self.clone();
        self.spawn(async move {
            tokio::time::sleep_until(pods_at).await;
            // Pods start side by side; each pod's users set up as soon as it is up.
            let pods = sim.0.borrow().specs.len() as u32;
            for p in 0..pods {
                let s = sim.clone();
                sim.spawn(async move {
                    s.start_pod(p).await;
                    let users: Vec<u32> = {
                        let st = s.0.borrow();
                        (0..st.users.len() as u32)
                            .filter(|&n| st.users[n as usize].pod == p)
                            .collect()
                    };
                    for n in users {
                        let s2 = s.clone();
                        s.spawn(async move { s2.setup_user(n).await });
                    }
                });
            }
        });
        let restarts = self.0.borrow().env.sc.messaging.pod_restarts.clone();
        for r in restarts {
            let sim = self.clone();
            self.spawn(async move {
                tokio::time::sleep_until(workload_start + Duration::from_secs_f64(r.at_s)).await;
                let pod = sim.0.borrow_mut().running[r.pod as usize].take();
                if let Some(pod) = pod {
                    pod_host::stop(pod).await;
                    sim.log(PodEvent::PodDown { pod: r.pod });
                }
                tokio::time::sleep(Duration::from_secs_f64(r.down_s)).await;
                sim.start_pod(r.pod).await;
                sim.0.borrow_mut().r.pod_restarts += 1;
            });
        }
        let (send_for, leave) = {
            let mut s = self.0.borrow_mut();
            s.workload_start = Some(workload_start);
            (
                s.env.sc.messaging.send_for_s,
                s.env.sc.messaging.senders_leave,
            )
        };
        let send_end = send_for.map_or(workload_end, |s| {
            workload_end.min(workload_start + Duration::from_secs_f64(s))
        });
        let sim = self.clone();
        self.spawn(async move {
            tokio::time::sleep_until(workload_start).await;
            sim.workload(send_end).await;
            if leave {
                sim.senders_leave().await;
            }
        });
    }

    /// Once every send has settled, each user's own seed stops for good (its publications
    /// are no longer republished) and the user goes on passive, through its pod.
    async fn senders_leave(&self) {
        while self
            .0
            .borrow()
            .msgs
            .iter()
            .any(|m| m.stage < Stage::Sent && m.stage != Stage::Done)
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let leaving: Vec<(u32, Seed<MemStore>)> = self
            .0
            .borrow_mut()
            .users
            .iter_mut()
            .enumerate()
            .filter_map(|(n, u)| u.seed.take().map(|s| (n as u32, s)))
            .collect();
        let seeds = leaving.len() as u32;
        for (n, seed) in leaving {
            let _ = seed.shutdown().await;
            let identity = self.0.borrow().users[n as usize].identity.clone();
            let Some(identity) = identity else { continue };
            if let Ok(c) = self.pod_client(n, identity, Some(format!("u{n}"))) {
                let mut s = self.0.borrow_mut();
                s.users[n as usize].client = Some(Rc::new(c));
                s.users[n as usize].active = false;
            }
        }
        self.0.borrow_mut().r.seeds_left = seeds;
        self.log(PodEvent::SendersLeft { seeds });
    }

    /// A passive client of user `n` at its pod, on its host; `alias` if it already has one.
    fn pod_client(
        &self,
        n: u32,
        identity: Identity,
        alias: Option<String>,
    ) -> Result<Client<SimDialer>, ClientError> {
        let s = self.0.borrow();
        let u = &s.users[n as usize];
        let spec = &s.specs[u.pod as usize];
        let mut cfg = ClientConfig::new(spec.url());
        cfg.insecure = spec.tls.is_none();
        cfg.alias = alias;
        let dialer = SimDialer::new(u.host, s.env.doorbell.clone())
            .with_tls(spec.tls.as_ref().map(|t| t.client.clone()));
        Client::with_dialer(identity, cfg, s.env.clock, dialer)
    }

    async fn start_pod(&self, p: u32) {
        let (spec, bell, clock, inc) = {
            let mut s = self.0.borrow_mut();
            s.incarnation[p as usize] += 1;
            (
                s.specs[p as usize].clone(),
                s.env.doorbell.clone(),
                s.env.clock,
                s.incarnation[p as usize],
            )
        };
        match pod_host::start(&spec, bell, clock, inc).await {
            Ok(pod) => {
                let via = {
                    let mut s = self.0.borrow_mut();
                    let s = &mut *s;
                    let n = s.env.sc.bootstrap_via;
                    (s.env.seeds_to_join)(&mut s.rng, n)
                };
                let contacts = pod.seed().bootstrap(via).await.unwrap_or(0);
                self.0.borrow_mut().running[p as usize] = Some(pod);
                self.log(PodEvent::PodUp { pod: p, contacts });
            }
            Err(error) => self.log(PodEvent::PodFailed { pod: p, error }),
        }
    }

    async fn setup_user(&self, n: u32) {
        match self.try_setup_user(n).await {
            Ok(()) => {
                let (pod, active, push) = {
                    let mut s = self.0.borrow_mut();
                    s.r.users_ready += 1;
                    let u = &s.users[n as usize];
                    let (pod, active, push) = (u.pod, u.active, u.push);
                    s.r.active_users += u32::from(active);
                    s.r.push_users += u32::from(push);
                    (pod, active, push)
                };
                self.log(PodEvent::UserReady {
                    user: n,
                    pod,
                    active,
                    push,
                });
                let s = self.clone();
                self.spawn(async move { s.receive(n).await });
            }
            Err(error) => {
                self.0.borrow_mut().r.users_failed += 1;
                self.log(PodEvent::UserFailed { user: n, error });
            }
        }
    }

    async fn try_setup_user(&self, n: u32) -> Result<(), String> {
        let (identity, host, ip, active, bell, clock, config, rng_seed) = {
            let mut s = self.0.borrow_mut();
            let s = &mut *s;
            let now = s.env.clock.now_system();
            let identity = s.cache.identity(n, now)?;
            let u = &s.users[n as usize];
            (
                identity,
                u.host,
                u.ip,
                u.active,
                s.env.doorbell.clone(),
                s.env.clock,
                s.env.sc.config.clone(),
                splitmix64(s.env.seed ^ 0x05E4 ^ ((n as u64) << 24)),
            )
        };
        self.0.borrow_mut().users[n as usize].identity = Some(identity.clone());
        let mut client = self
            .pod_client(n, identity, None)
            .map_err(|e| e.to_string())?;
        if active {
            let quotas = Quotas::from_config(&config);
            let seed = spawn_seed(
                SimTransport::new(host, ip, bell),
                SeedOptions {
                    bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), POD_SEED_PORT),
                    advertise: Some(SocketAddr::new(IpAddr::V4(ip), POD_SEED_PORT)),
                    config,
                    rng_seed,
                },
                MemStore::new(quotas),
                clock,
            )
            .await
            .map_err(|e| format!("seed: {e}"))?;
            let via = {
                let mut s = self.0.borrow_mut();
                let s = &mut *s;
                let k = s.env.sc.bootstrap_via;
                (s.env.seeds_to_join)(&mut s.rng, k)
            };
            seed.handle()
                .bootstrap(via)
                .await
                .map_err(|e| format!("bootstrap: {e}"))?;
            client = client.with_seed(seed.handle());
            self.0.borrow_mut().users[n as usize].seed = Some(seed);
        }
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let r = async {
                client.register().await?;
                client.add_alias(&format!("u{n}")).await?;
                Ok::<_, ClientError>(())
            }
            .await;
            match r {
                Ok(()) => {
                    self.0.borrow_mut().users[n as usize].client = Some(Rc::new(client));
                    return Ok(());
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    fn user_id(&self, n: u32) -> UserId {
        let s = self.0.borrow();
        let u = &s.users[n as usize];
        UserId {
            alias: format!("u{n}"),
            host: s.specs[u.pod as usize].ip.to_string(),
        }
    }

    async fn workload(&self, end: Instant) {
        let (rate, users) = {
            let s = self.0.borrow();
            (
                s.env.sc.messaging.messages_per_user_per_min / 60.0 * s.users.len() as f64,
                s.users.len() as u32,
            )
        };
        let pods = self.0.borrow().specs.len() as u32;
        if rate <= 0.0 || users == 0 || pods < 2 {
            return;
        }
        loop {
            let (at, from, to, text) = {
                let mut s = self.0.borrow_mut();
                let u: f64 = s.rng.random::<f64>().max(f64::MIN_POSITIVE);
                let at = Instant::now() + Duration::from_secs_f64(-u.ln() / rate);
                let from = s.rng.random_range(0..users);
                let to = loop {
                    let t = s.rng.random_range(0..users);
                    if s.users[t as usize].pod != s.users[from as usize].pod {
                        break t;
                    }
                };
                let (lo, hi) = (
                    s.env.sc.messaging.min_text_bytes,
                    s.env.sc.messaging.max_text_bytes,
                );
                let len = s.rng.random_range(lo..=hi);
                let m = s.msgs.len();
                let mut text = format!("m{m} u{from}>u{to} ").into_bytes();
                while text.len() < len {
                    text.push(b'a' + s.rng.random_range(0..26u8));
                }
                (at, from, to, text)
            };
            if at >= end {
                return;
            }
            tokio::time::sleep_until(at).await;
            let m = {
                let mut s = self.0.borrow_mut();
                s.msgs.push(Msg {
                    from,
                    to,
                    text,
                    started: at,
                    stage: Stage::Started,
                });
                s.r.sent += 1;
                s.pending += 1;
                s.msgs.len() as u64 - 1
            };
            let sim = self.clone();
            self.spawn(async move { sim.send(m).await });
        }
    }

    fn lose(&self, m: u64, reason: &str) {
        {
            let mut s = self.0.borrow_mut();
            let msg = &mut s.msgs[m as usize];
            if msg.stage == Stage::Done {
                return;
            }
            msg.stage = Stage::Done;
            *s.r.lost.entry(reason.to_string()).or_default() += 1;
            s.pending -= 1;
        }
        self.log(PodEvent::MsgLost { m, reason });
    }

    fn advance(&self, m: u64, stage: Stage) -> bool {
        let mut s = self.0.borrow_mut();
        let msg = &mut s.msgs[m as usize];
        if msg.stage >= stage {
            return false;
        }
        msg.stage = stage;
        match stage {
            Stage::Stored => s.r.stored += 1,
            Stage::Notified => s.r.notified += 1,
            Stage::Fetched => s.r.fetched += 1,
            _ => {}
        }
        true
    }

    async fn send(&self, m: u64) {
        let (from, to) = {
            let s = self.0.borrow();
            (s.msgs[m as usize].from, s.msgs[m as usize].to)
        };
        let client = self.0.borrow().users[from as usize].client.clone();
        let Some(client) = client else {
            return self.lose(m, "sender_not_ready");
        };
        let to_id = self.user_id(to);
        // Each step under the client library's one retry policy (`client::retry`): it waits
        // out a pod restart instead of counting the message lost.
        // Step 6.
        let Ok(their_key) = client.with_retry(|| client.key_of(&to_id)).await else {
            return self.lose(m, "recipient_key_unavailable");
        };
        // Step 7, recorded/replayed.
        let value = {
            let mut s = self.0.borrow_mut();
            let s = &mut *s;
            let text = &s.msgs[m as usize].text;
            let keys = format!(
                "{}>{}",
                &client.public_key().fingerprint()[..16],
                &their_key.fingerprint()[..16]
            );
            s.cache.seal(from, to, m, &keys, text, || {
                client.seal(&their_key, text).map_err(|e| e.to_string())
            })
        };
        let Ok(value) = value else {
            return self.lose(m, "seal_failed");
        };
        // Step 8.
        let Ok((key, _)) = client.with_retry(|| client.store(value.clone())).await else {
            return self.lose(m, "store_failed");
        };
        self.advance(m, Stage::Stored);
        self.0.borrow_mut().by_key.insert(key.clone(), m);
        // Step 9.
        match client.with_retry(|| client.notify(&to_id, &key)).await {
            Ok(_) => {
                // Counted here, not by the stage: a push may have reached the recipient
                // (stage `Notified`) before the sender heard the pod's answer.
                self.0.borrow_mut().r.acknowledged += 1;
                self.advance(m, Stage::Sent);
                self.log(PodEvent::MsgSent {
                    m,
                    from,
                    to,
                    key: &key,
                    tries: 1,
                });
            }
            Err(_) => self.lose(m, "notify_failed"),
        }
    }

    /// Step 10 for user `n`, forever, from when the recipients are back
    /// (`recipients_offline_s`): push through the client library's [`Listener`] (it
    /// reconnects and plays back what it missed), or periodic playback; either way, every
    /// `poll_s` the user purges what it has read, up to an id (P-X1).
    ///
    /// [`Listener`]: muttr_node::client::Listener
    async fn receive(&self, n: u32) {
        let (push, poll, back) = {
            let s = self.0.borrow();
            let m = &s.env.sc.messaging;
            (
                s.users[n as usize].push,
                Duration::from_secs_f64(m.poll_s),
                s.workload_start
                    .map(|t| t + Duration::from_secs_f64(m.recipients_offline_s)),
            )
        };
        if let Some(back) = back {
            tokio::time::sleep_until(back).await;
        }
        // After the wait: a sender that left has a new (passive) client.
        let client = self.0.borrow().users[n as usize].client.clone();
        let Some(client) = client else { return };
        if push {
            let sim = self.clone();
            let c = client.clone();
            self.spawn(async move {
                loop {
                    tokio::time::sleep(poll).await;
                    sim.purge_read(n, &c).await;
                }
            });
            let mut listener = loop {
                match client.listener().await {
                    Ok(l) => break l,
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            // What was there before the listener: its entries are not heard through it.
            self.playback(n, &client).await;
            loop {
                if let Heard::Entry(note) = listener.next().await {
                    self.notified(n, &client, note, "push");
                }
            }
        } else {
            self.playback(n, &client).await;
            loop {
                tokio::time::sleep(poll).await;
                self.purge_read(n, &client).await;
                self.playback(n, &client).await;
            }
        }
    }

    async fn playback(&self, n: u32, client: &Rc<Client<SimDialer>>) {
        if let Ok(notes) = client.with_retry(|| client.notifications()).await {
            for note in notes {
                self.notified(n, client, note, "playback");
            }
        }
    }

    /// Purges user `n`'s inbox up to what it has read (P-X1), if that moved.
    async fn purge_read(&self, n: u32, client: &Rc<Client<SimDialer>>) {
        let Some(upto) = self.0.borrow().users[n as usize].inbox.purgeable() else {
            return;
        };
        let id = upto.to_string();
        if client.with_retry(|| client.purge(Some(&id))).await.is_ok() {
            let mut s = self.0.borrow_mut();
            s.r.purges += 1;
            s.users[n as usize].inbox.purged(upto);
        }
    }

    fn notified(&self, n: u32, client: &Rc<Client<SimDialer>>, note: Notification, via: &str) {
        let id = note.id_number();
        let m = {
            let mut s = self.0.borrow_mut();
            let u = &mut s.users[n as usize];
            let fresh = u.seen.insert(note.key.clone());
            let mine = match s.by_key.get(&note.key) {
                Some(&m) if fresh && s.msgs[m as usize].to == n => Some(m),
                _ => None,
            };
            let reading = mine.is_some_and(|m| s.msgs[m as usize].stage < Stage::Notified);
            if let Some(id) = id {
                s.users[n as usize].inbox.heard(id, reading);
            }
            match mine {
                Some(m) if reading => m,
                _ => return,
            }
        };
        self.advance(m, Stage::Notified);
        {
            let mut s = self.0.borrow_mut();
            if via == "push" {
                s.r.notified_by_push += 1;
            } else {
                s.r.notified_by_playback += 1;
            }
        }
        self.log(PodEvent::MsgNotified { m, via });
        let sim = self.clone();
        let client = client.clone();
        self.spawn(async move {
            sim.open(m, &client, note).await;
            if let Some(id) = id {
                sim.0.borrow_mut().users[n as usize].inbox.read(id);
            }
        });
    }

    /// Steps 11–12.
    async fn open(&self, m: u64, client: &Client<SimDialer>, note: Notification) {
        let expected_from = self
            .user_id(self.0.borrow().msgs[m as usize].from)
            .to_string();
        match client.open(note).await {
            Ok(got) => {
                self.advance(m, Stage::Fetched);
                let (problem, started) = {
                    let s = self.0.borrow();
                    let msg = &s.msgs[m as usize];
                    let problem = if !got.verdict.is_good() {
                        // E.g. the sender's pod was down when its key was fetched: the client
                        // never presents such a message as from its claimed sender (P-G3).
                        Some("signature_not_verified")
                    } else if got.plaintext != msg.text {
                        Some("wrong_plaintext")
                    } else if got.notification.sender.user_id != expected_from {
                        Some("wrong_sender")
                    } else {
                        None
                    };
                    (problem, msg.started)
                };
                if let Some(reason) = problem {
                    return self.lose(m, reason);
                }
                let latency_ms = started.elapsed().as_millis() as u64;
                {
                    let mut s = self.0.borrow_mut();
                    s.msgs[m as usize].stage = Stage::Done;
                    s.r.verified += 1;
                    s.latencies.push(latency_ms as f64);
                    s.pending -= 1;
                }
                self.log(PodEvent::MsgVerified { m, latency_ms });
            }
            Err(u) => match u.error {
                ClientError::Crypto(_) => {
                    self.advance(m, Stage::Fetched);
                    self.lose(m, "decrypt_failed");
                }
                ClientError::NotFound(_) => self.lose(m, "not_found"),
                _ => self.lose(m, "fetch_failed"),
            },
        }
    }

    /// Stops every user and pod, judges the messages still open, saves the crypto cache, and
    /// returns the report.
    pub async fn finish(&self) -> MessageReport {
        let tasks = std::mem::take(&mut self.0.borrow_mut().tasks);
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
        let open: Vec<(u64, Stage)> = self
            .0
            .borrow()
            .msgs
            .iter()
            .enumerate()
            .filter(|(_, m)| m.stage != Stage::Done)
            .map(|(i, m)| (i as u64, m.stage))
            .collect();
        for (m, stage) in open {
            self.lose(
                m,
                match stage {
                    Stage::Started => "not_sent_in_time",
                    Stage::Stored => "not_notified_in_time",
                    Stage::Sent => "not_received",
                    Stage::Notified => "not_fetched_in_time",
                    Stage::Fetched | Stage::Done => "not_verified",
                },
            );
        }
        let users: Vec<Option<Seed<MemStore>>> = self
            .0
            .borrow_mut()
            .users
            .iter_mut()
            .map(|u| {
                u.client = None;
                u.seed.take()
            })
            .collect();
        for seed in users.into_iter().flatten() {
            let _ = seed.shutdown().await;
        }
        let pods: Vec<RunningPod> = self
            .0
            .borrow_mut()
            .running
            .iter_mut()
            .filter_map(Option::take)
            .collect();
        for pod in pods {
            pod_host::stop(pod).await;
        }
        let mut s = self.0.borrow_mut();
        if let Err(e) = s.cache.save() {
            eprintln!("muttr-sim: cannot save the crypto cache: {e}");
        }
        s.r.latency_ms = Summary::of(&s.latencies);
        s.r.success_rate = if s.r.sent == 0 {
            1.0
        } else {
            s.r.verified as f64 / s.r.sent as f64
        };
        s.r.delivered_of_acknowledged = if s.r.acknowledged == 0 {
            1.0
        } else {
            s.r.verified as f64 / s.r.acknowledged as f64
        };
        s.r.clone()
    }
}

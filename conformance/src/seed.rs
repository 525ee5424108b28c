//! The live seed suite: a black-box check of PROFILE §1–§3 against a seed over real UDP.
//!
//! The suite plays several peers, each on its own socket (so replies, learned contacts and
//! spoofed claims can be told apart), and judges only what it sees on the wire. Silence within
//! [`Options::silence`] counts as a drop (P-W6); a request unanswered within
//! [`Options::reply_timeout`] counts as no reply. Phases:
//!
//! 1. probe: a PING must get a PONG (without it nothing else can be judged);
//! 2. reply shape, for each of the four request types (P-W1–P-W4, P-W7);
//! 3. `rpcID` echo byte for byte, unknown fields ignored, the largest datagram (P-W1, P-W2);
//! 4. bad input, all at once from fresh sockets: every datagram must go unanswered (P-W1–P-W6),
//!    and the seed must still answer afterwards — the datagrams are rows of the case table
//!    (`cases/seed.json`, read by the `table` module);
//! 5. spoofed senders: replies go to the source, spoofed contacts are never learned (P-W7);
//! 6. routing: contacts learned from each request type (P-K4), FIND_NODE / FIND_VALUE contact
//!    lists at most 3, closest first, the true closest, never the seed, not the requester (P-W8);
//! 7. STORE and FIND_VALUE: valid values stored and found again, each refusal of P-V1–P-V3
//!    answered `success: false` with nothing stored — the STOREs are rows of the case table too;
//! 8. the routing table (P-K3), on an empty bucket: filled to k, a newcomer makes the seed
//!    PING the least-recently-seen contact, which stays when it answers and is replaced by a
//!    waiting newcomer when it does not.
//!
//! The seed's own node ID is taken to be SHA-1 of the target's `address:port` text (P-W3).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use futures::future::join_all;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};
use tokio::net::UdpSocket;

use crate::canon;
use crate::catalogue::{self, Live};
use crate::pgp::{self, hex_of, sha1_hex};
use crate::report::{CaseResult, Strength, Verdict};

mod table;

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// The seed under test.
    pub target: SocketAddr,
    /// How long to wait for a reply.
    pub reply_timeout: Duration,
    /// How long silence must last to count as a drop.
    pub silence: Duration,
    /// How long to wait for a silent contact to be evicted (P-K3): the seed's response timeout
    /// (5 s by default, P-K2) plus a margin.
    pub eviction_wait: Duration,
    /// Seed for the values and rpcIDs the suite makes up (fresh values per run avoid
    /// confusion with what an earlier run stored).
    pub rng_seed: u64,
}

impl Options {
    /// Defaults: 2 s reply timeout, 1 s silence, an RNG seed from the clock.
    pub fn new(target: SocketAddr) -> Options {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Options {
            target,
            reply_timeout: Duration::from_secs(2),
            silence: Duration::from_secs(1),
            eviction_wait: Duration::from_millis(6_500),
            rng_seed: nanos,
        }
    }
}

const REQUESTS: [&str; 4] = ["PING", "STORE", "FIND_NODE", "FIND_VALUE"];

/// A datagram received by a peer.
#[derive(Debug, Clone)]
struct Reply {
    bytes: Vec<u8>,
    from: SocketAddr,
    json: Option<Value>,
}

impl Reply {
    fn shown(&self) -> Value {
        match &self.json {
            Some(v) => v.clone(),
            None => json!({"raw": String::from_utf8_lossy(&self.bytes)}),
        }
    }

    fn params(&self) -> Option<&Map<String, Value>> {
        self.json.as_ref()?.get("params")?.as_object()
    }

    /// The `contacts` array of a FIND_NODE / FIND_VALUE reply.
    fn contacts(&self) -> Option<&Vec<Value>> {
        self.params()?.get("contacts")?.as_array()
    }

    fn ty(&self) -> Option<&str> {
        self.json.as_ref()?.get("type")?.as_str()
    }
}

/// One simulated peer: a socket and the identity P-W3 gives it.
struct Peer {
    sock: UdpSocket,
    addr: SocketAddr,
    id: String,
    watch: Arc<Watch>,
}

/// Whether the target still answers, shared by every peer of a run.
///
/// A request the seed leaves unanswered is followed by two PINGs from a fresh socket; when
/// neither gets a PONG the seed is taken to have stopped (crashed, hung), and from then on
/// peers wait for nothing: what is still to be checked is reported `not-judged` instead of
/// failing one timeout at a time ([`Suite::push`]). Datagrams from the target are counted,
/// so the report can name the last case that got an answer: silence after it proves nothing.
struct Watch {
    target: SocketAddr,
    ip: IpAddr,
    wait: Duration,
    dead: AtomicBool,
    heard: AtomicU64,
}

impl Watch {
    fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    fn heard(&self) {
        self.heard.fetch_add(1, Ordering::Relaxed);
    }

    fn heard_count(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }

    /// Two PINGs from a fresh socket; no PONG to either marks the target dead.
    async fn confirm(&self) {
        let Ok(sock) = UdpSocket::bind(SocketAddr::new(self.ip, 0)).await else {
            return;
        };
        let Ok(addr) = sock.local_addr() else { return };
        let mut buf = vec![0u8; 65_536];
        for attempt in 0..2 {
            let mut p = claim(addr);
            p.insert(
                "rpcID".into(),
                sha1_hex(&format!("liveness-{}-{attempt}", addr.port())).into(),
            );
            let ping = canon::compact(&message("PING", p, json!({})));
            if sock.send_to(ping.as_bytes(), self.target).await.is_err() {
                continue;
            }
            let deadline = tokio::time::Instant::now() + self.wait;
            while let Ok(Ok((_, from))) =
                tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await
            {
                if from == self.target {
                    return;
                }
            }
        }
        self.dead.store(true, Ordering::Relaxed);
    }
}

fn ip_text(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

fn id_of(addr: SocketAddr) -> String {
    sha1_hex(&format!("{}:{}", ip_text(addr.ip()), addr.port()))
}

impl Peer {
    async fn bind(ip: IpAddr, watch: &Arc<Watch>) -> std::io::Result<Peer> {
        let sock = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let addr = sock.local_addr()?;
        Ok(Peer {
            sock,
            addr,
            id: id_of(addr),
            watch: watch.clone(),
        })
    }

    /// `address`, `port`, `nodeID` of this peer.
    fn me(&self) -> Map<String, Value> {
        claim(self.addr)
    }

    async fn send(&self, to: SocketAddr, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.send_to(bytes, to).await.map(|_| ())
    }

    /// The next datagram within `wait`, answering any PING the seed sends us meanwhile (it
    /// may be checking that we are alive before evicting someone, P-K3).
    async fn recv(&self, wait: Duration) -> Option<Reply> {
        if self.watch.is_dead() {
            return None;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let mut buf = vec![0u8; 65_536];
        loop {
            let (n, from) = tokio::time::timeout_at(deadline, self.sock.recv_from(&mut buf))
                .await
                .ok()?
                .ok()?;
            if from == self.watch.target {
                self.watch.heard();
            }
            let bytes = buf[..n].to_vec();
            let json = serde_json::from_slice::<Value>(&bytes).ok();
            let r = Reply { bytes, from, json };
            if r.ty() == Some("PING")
                && let Some(rpc) = r.params().and_then(|p| p.get("rpcID")).cloned()
            {
                let mut p = self.me();
                p.insert("referenceID".into(), rpc);
                let pong = canon::compact(&json!({"type": "PONG", "params": p}));
                let _ = self.send(from, pong.as_bytes()).await;
                continue;
            }
            if r.ty().is_some_and(|t| REQUESTS.contains(&t)) {
                continue; // a request of the seed's own (a lookup); not an answer
            }
            return Some(r);
        }
    }

    /// Sends `msg` and waits for the first non-request datagram. When the target leaves it
    /// unanswered, checks that the target is still alive ([`Watch::confirm`]).
    async fn ask(&self, to: SocketAddr, msg: &Value, wait: Duration) -> Option<Reply> {
        if self.watch.is_dead() {
            return None;
        }
        self.send(to, canon::compact(msg).as_bytes()).await.ok()?;
        let r = self.recv(wait).await;
        if r.is_none() && to == self.watch.target {
            self.watch.confirm().await;
        }
        r
    }
}

fn claim(addr: SocketAddr) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("address".into(), ip_text(addr.ip()).into());
    m.insert("port".into(), addr.port().into());
    m.insert("nodeID".into(), id_of(addr).into());
    m
}

fn message(ty: &str, mut params: Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(e) = extra {
        for (k, v) in e {
            if v.is_null() {
                params.remove(&k);
            } else {
                params.insert(k, v);
            }
        }
    }
    json!({"type": ty, "params": params})
}

fn unhex(s: &str) -> Option<[u8; 20]> {
    let mut a = [0u8; 20];
    hex::decode_to_slice(s, &mut a).ok()?;
    Some(a)
}

fn distance(a: &str, b: &str) -> Option<[u8; 20]> {
    let (x, y) = (unhex(a)?, unhex(b)?);
    let mut d = [0u8; 20];
    for i in 0..20 {
        d[i] = x[i] ^ y[i];
    }
    Some(d)
}

/// The bucket index of `id` seen from `from`: floor(log2(distance)), None when equal.
fn bucket_of(from: &str, id: &str) -> Option<usize> {
    let d = distance(from, id)?;
    d.iter()
        .position(|&b| b != 0)
        .map(|i| (19 - i) * 8 + 7 - d[i].leading_zeros() as usize)
}

fn is_lower_hex40(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A contact as sent by the seed, checked against P-W2/P-W3/P-W4: its nodeID, or why not.
fn contact_id(c: &Value) -> Result<String, String> {
    let addr = c["address"]
        .as_str()
        .ok_or("contact without a string `address`")?;
    addr.parse::<IpAddr>()
        .map_err(|_| format!("contact address {addr:?} is not an IP text"))?;
    let port = c["port"]
        .as_u64()
        .filter(|p| (1..=65_535).contains(p))
        .ok_or("contact port is not an integer 1-65535")?;
    let id = c["nodeID"]
        .as_str()
        .ok_or("contact without a string `nodeID`")?;
    if !is_lower_hex40(id) {
        return Err(format!("contact nodeID {id:?} is not 40 lowercase hex"));
    }
    if sha1_hex(&format!("{addr}:{port}")) != id {
        return Err(format!("contact nodeID {id} is not sha1({addr}:{port})"));
    }
    Ok(id.to_string())
}

/// A fresh rpcID: the run's seed and a counter, hashed.
fn rpc_id(counter: &AtomicU64, seed: u64) -> String {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    sha1_hex(&format!("{seed}-{n}"))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

struct Suite {
    opts: Options,
    ip: IpAddr,
    seed_id: String,
    counter: AtomicU64,
    rng: ChaCha8Rng,
    cases: Vec<CaseResult>,
    watch: Arc<Watch>,
    /// Where the seed stopped answering, if it did.
    stopped: catalogue::Stopped,
    /// The last case recorded after a datagram came from the target, and the count then.
    last_answered: Option<String>,
    heard_at_push: u64,
}

/// Runs the whole suite against `opts.target`.
pub async fn run(opts: &Options) -> anyhow::Result<Vec<CaseResult>> {
    // The local address the target is reached from: peers claim it, so it must be the
    // datagrams' real source (P-W7).
    let probe = std::net::UdpSocket::bind(SocketAddr::new(
        if opts.target.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))?;
    probe.connect(opts.target)?;
    let ip = probe.local_addr()?.ip();
    drop(probe);
    let mut s = Suite {
        opts: opts.clone(),
        ip,
        seed_id: id_of(opts.target),
        counter: AtomicU64::new(0),
        rng: ChaCha8Rng::seed_from_u64(opts.rng_seed),
        cases: Vec::new(),
        watch: Arc::new(Watch {
            target: opts.target,
            ip,
            wait: opts.reply_timeout,
            dead: AtomicBool::new(false),
            heard: AtomicU64::new(0),
        }),
        stopped: catalogue::Stopped::default(),
        last_answered: None,
        heard_at_push: 0,
    };
    if !s.probe().await? {
        catalogue::complete(
            Live::Seed,
            &mut s.cases,
            "not judged: the seed did not answer the first PING",
        );
        return Ok(s.cases);
    }
    s.shapes().await?;
    s.echo_and_leniency().await?;
    s.drops().await?;
    s.spoofing().await?;
    s.routing().await?;
    s.storage().await?;
    s.table().await?;
    s.stopped.finish(Live::Seed, &mut s.cases, "the seed");
    Ok(s.cases)
}

impl Suite {
    fn rpc(&self) -> String {
        rpc_id(&self.counter, self.opts.rng_seed)
    }

    async fn peer(&self) -> anyhow::Result<Peer> {
        Ok(Peer::bind(self.ip, &self.watch).await?)
    }

    /// Records a case ([`catalogue::Stopped`]); the note on the case where the seed stopped
    /// names the last case that got an answer: those between passed on silence, which a
    /// stopped seed gives too.
    fn push(&mut self, c: CaseResult) {
        let dead = self.watch.is_dead();
        if !dead && self.watch.heard_count() != self.heard_at_push {
            self.heard_at_push = self.watch.heard_count();
            self.last_answered = Some(c.id.clone());
        }
        let last = &self.last_answered;
        let how = || {
            let since = match last {
                Some(id) => format!("the last answer came during {id}"),
                None => "it never answered".to_string(),
            };
            format!("two PINGs from a fresh socket got no PONG ({since})")
        };
        let c = self.stopped.record(dead, c, "the seed", how);
        self.cases.push(c);
    }

    /// Records a case: pass when `ok`, else the strength's verdict with the evidence.
    #[allow(clippy::too_many_arguments)] // one flat call per case keeps the case list readable
    fn check(
        &mut self,
        id: &str,
        rule: &str,
        strength: Strength,
        ok: bool,
        detail: impl Into<String>,
        sent: Option<&Value>,
        got: Option<&Reply>,
        expected: Value,
    ) {
        let detail = detail.into();
        let c = if ok {
            CaseResult::pass(id, rule, detail)
        } else {
            CaseResult::with(id, rule, strength.violated(), detail).evidence(
                sent.cloned(),
                Some(got.map(Reply::shown).unwrap_or(Value::Null)),
                expected,
            )
        };
        self.push(c);
    }

    fn request(&self, peer: &Peer, ty: &str, extra: Value) -> (Value, String) {
        let rpc = self.rpc();
        let mut p = peer.me();
        p.insert("rpcID".into(), rpc.clone().into());
        (message(ty, p, extra), rpc)
    }

    /// The datagram of a table row ([`table`]) sent by `peer`.
    fn make(&mut self, row: &catalogue::Entry, peer: &Peer) -> anyhow::Result<table::Made> {
        let (counter, seed) = (&self.counter, self.opts.rng_seed);
        let rpc = move || rpc_id(counter, seed);
        let mut run = table::Run {
            key: &sha1_hex(&format!("drop-{seed}")),
            publisher: &id_of(SocketAddr::new(self.ip, 1)),
            now_ms: now_ms(),
            rng: &mut self.rng,
            rpc: &rpc,
        };
        table::make(row, &peer.me(), &mut run).map_err(anyhow::Error::msg)
    }

    fn fresh_value(&mut self, len: usize) -> String {
        hex_of(&pgp::armor_message(&pgp::encrypted(&mut self.rng, len)))
    }

    fn store_params(&mut self) -> Value {
        let v = self.fresh_value(64);
        json!({"key": sha1_hex(&v), "value": v, "timestamp": now_ms(), "publisher": id_of(SocketAddr::new(self.ip, 1))})
    }

    // ------------------------------------------------------------------ 1. probe

    async fn probe(&mut self) -> anyhow::Result<bool> {
        let p = self.peer().await?;
        let (msg, _) = self.request(&p, "PING", json!({}));
        let r = p.ask(self.opts.target, &msg, self.opts.reply_timeout).await;
        let ok = r.is_some();
        self.check(
            "seed.probe.ping-answered",
            "P-W2",
            Strength::Must,
            ok,
            if ok {
                "the seed answers a PING"
            } else {
                "the seed did not answer a PING: nothing else can be judged"
            },
            Some(&msg),
            r.as_ref(),
            json!({"type": "PONG"}),
        );
        Ok(ok)
    }

    // ------------------------------------------------------------------ 1b. routing table

    /// P-K3, on bucket 150 (IDs sharing the seed's first 9 bits, then differing), which a
    /// seed with a few hundred contacts almost never holds anything in: fill it with k = 20
    /// peers that answer PINGs (their ports chosen so that sha1(ip:port) lands there), then
    /// watch what a newcomer causes. Assumes one k-bucket per distance range
    /// [2^i, 2^(i+1)), as the PROFILE's bucket indexes (vectors/distance.json) describe.
    async fn table(&mut self) -> anyhow::Result<()> {
        const K: usize = 20;
        /// Far buckets tried in turn (1/1,024 of the ID space and less each).
        const BUCKETS: [usize; 4] = [150, 149, 148, 147];
        const IDS: [&str; 6] = [
            "seed.table.full-bucket-pings-oldest",
            "seed.table.answering-oldest-kept",
            "seed.table.newcomer-waits",
            "seed.table.least-recently-seen-next",
            "seed.table.silent-oldest-evicted",
            "seed.table.replacement-promoted",
        ];
        let na = |s: &mut Suite, why: String| {
            for id in IDS {
                s.push(CaseResult::with(
                    id,
                    "P-K3",
                    Verdict::NotApplicable,
                    why.clone(),
                ));
            }
        };
        // Peers are placed by choosing ports: sha1(ip:port) decides the bucket. The bucket
        // must be empty at the seed; an earlier case's peer (ephemeral ports, 1 in 1,024 per
        // bucket) may already sit in one, so a few far buckets are tried in turn.
        let mut chosen = None;
        let mut why = String::new();
        for bucket in BUCKETS {
            let mut far = Vec::new();
            for port in 1025..=65_535u16 {
                let addr = SocketAddr::new(self.ip, port);
                if bucket_of(&self.seed_id, &id_of(addr)) != Some(bucket) {
                    continue;
                }
                if let Ok(sock) = UdpSocket::bind(addr).await {
                    far.push(Peer {
                        sock,
                        addr,
                        id: id_of(addr),
                        watch: self.watch.clone(),
                    });
                    if far.len() == K + 2 {
                        break;
                    }
                }
            }
            if far.len() < K + 2 {
                why = format!(
                    "could not bind {} ports whose IDs fall in bucket {bucket}",
                    K + 2
                );
                continue;
            }
            let mut near = Vec::new();
            while near.len() < 2 {
                let p = self.peer().await?;
                if bucket_of(&self.seed_id, &p.id) != Some(bucket) {
                    near.push(p);
                }
            }
            // Contacts of the bucket, if any, are the closest to an ID inside it (asked twice
            // if the first answer does not come: a busy machine is not a broken seed).
            let mut occupied = None;
            for _ in 0..2 {
                let (_, _, list) = self.contacts_near(&near[0], &far[0].id).await;
                if let Some(l) = list {
                    occupied = Some(
                        l.iter()
                            .filter(|c| {
                                c["nodeID"]
                                    .as_str()
                                    .and_then(|id| bucket_of(&self.seed_id, id))
                                    == Some(bucket)
                            })
                            .count(),
                    );
                    break;
                }
            }
            match occupied {
                Some(0) => {
                    chosen = Some((bucket, far, near));
                    break;
                }
                Some(_) => why = format!("bucket {bucket} of the seed is not empty"),
                None => why = "FIND_NODE got no answer".to_string(),
            }
        }
        let Some((_, far, mut near)) = chosen else {
            na(
                self,
                format!("{why}: P-K3 is checked on an empty bucket, and none of {BUCKETS:?} was"),
            );
            return Ok(());
        };
        let q = near.pop().expect("two near peers");
        let e = near.pop().expect("one near peer");
        let t = self.opts.target;
        let wait = self.opts.reply_timeout;
        // The far peers answer the seed's PINGs from background tasks while `answer` is set,
        // and log who was pinged, in order.
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
        let mut answer = Vec::new();
        let mut socks = Vec::new();
        let mut tasks = Vec::new();
        let far: Vec<(std::sync::Arc<UdpSocket>, SocketAddr, String)> = far
            .into_iter()
            .map(|p| (std::sync::Arc::new(p.sock), p.addr, p.id))
            .collect();
        for (i, (sock, addr, _)) in far.iter().enumerate() {
            let sock = sock.clone();
            let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let (sock2, flag2, log2, me) = (sock.clone(), flag.clone(), log.clone(), claim(*addr));
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = sock2.recv_from(&mut buf).await {
                    let Ok(v) = serde_json::from_slice::<Value>(&buf[..n]) else {
                        continue;
                    };
                    if v["type"] != "PING" {
                        continue;
                    }
                    if let Ok(mut l) = log2.lock() {
                        l.push(i);
                    }
                    if flag2.load(Ordering::SeqCst) {
                        let mut pm = me.clone();
                        pm.insert("referenceID".into(), v["params"]["rpcID"].clone());
                        let pong = canon::compact(&json!({"type": "PONG", "params": pm}));
                        let _ = sock2.send_to(pong.as_bytes(), from).await;
                    }
                }
            }));
            answer.push(flag);
            socks.push(sock);
        }
        let ping = |s: &Suite, i: usize| {
            let mut pm = claim(far[i].1);
            pm.insert("rpcID".into(), s.rpc().into());
            canon::compact(&message("PING", pm, json!({})))
        };
        for (i, sock) in socks.iter().enumerate().take(K) {
            let _ = sock.send_to(ping(self, i).as_bytes(), t).await;
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pings_before = log.lock().map(|l| l.len()).unwrap_or(0);
        // Newcomer 1: the bucket is full; the oldest (far[0]) must be pinged, and answers.
        let _ = socks[K].send_to(ping(self, K).as_bytes(), t).await;
        tokio::time::sleep(wait.min(Duration::from_millis(1_000))).await;
        let pinged: Vec<usize> = log
            .lock()
            .map(|l| l[pings_before..].to_vec())
            .unwrap_or_default();
        let shown = json!({"pings_seen_by_peer_index": pinged, "oldest": 0});
        self.check(
            IDS[0],
            "P-K3",
            Strength::Must,
            pinged.first() == Some(&0),
            "with its bucket full, a newcomer makes the seed PING the least-recently-seen contact",
            Some(&json!(
                "20 peers PING in turn, then a 21st in the same bucket"
            )),
            None,
            shown,
        );
        let (fm, r, list) = self.contacts_near(&q, &far[0].2).await;
        let has = |l: &Option<Vec<Value>>, id: &str| {
            l.as_ref()
                .is_some_and(|l| l.iter().any(|c| c["nodeID"] == json!(id)))
        };
        self.check(
            IDS[1],
            "P-K3",
            Strength::Must,
            has(&list, &far[0].2),
            "the oldest contact answered the PING, so it stays",
            Some(&fm),
            r.as_ref(),
            json!({"contacts": [claim(far[0].1)]}),
        );
        let (fm, r, list) = self.contacts_near(&q, &far[K].2).await;
        self.check(
            IDS[2],
            "P-K3",
            Strength::Must,
            list.is_some() && !has(&list, &far[K].2),
            "the newcomer waits (replacement cache) while the oldest answers",
            Some(&fm),
            r.as_ref(),
            json!({"contacts": format!("without {}", far[K].2)}),
        );
        // Newcomer 2, with far[1] (now the least recently seen) silent.
        answer[1].store(false, Ordering::SeqCst);
        let pings_before = log.lock().map(|l| l.len()).unwrap_or(0);
        let _ = socks[K + 1].send_to(ping(self, K + 1).as_bytes(), t).await;
        tokio::time::sleep(wait.min(Duration::from_millis(1_000))).await;
        let pinged: Vec<usize> = log
            .lock()
            .map(|l| l[pings_before..].to_vec())
            .unwrap_or_default();
        let shown = json!({"pings_seen_by_peer_index": pinged, "least_recently_seen": 1});
        self.check(IDS[3], "P-K3", Strength::Must, pinged.first() == Some(&1), "after the oldest answered it is most recently seen: the next newcomer makes the seed PING the next oldest", Some(&json!("a 22nd peer in the full bucket")), None, shown);
        tokio::time::sleep(self.opts.eviction_wait).await;
        let (fm, r, list) = self.contacts_near(&q, &far[1].2).await;
        self.check(
            IDS[4],
            "P-K3",
            Strength::Must,
            list.is_some() && !has(&list, &far[1].2),
            "a contact that does not answer the eviction PING is evicted",
            Some(&fm),
            r.as_ref(),
            json!({"contacts": format!("without {}", far[1].2)}),
        );
        let (_, _, l1) = self.contacts_near(&q, &far[K].2).await;
        let (fm, r, l2) = self.contacts_near(&q, &far[K + 1].2).await;
        self.check(
            IDS[5],
            "P-K3",
            Strength::Must,
            has(&l1, &far[K].2) || has(&l2, &far[K + 1].2),
            "a waiting newcomer takes the evicted contact's place",
            Some(&fm),
            r.as_ref(),
            json!("one of the two newcomers in the table"),
        );
        for t in tasks {
            t.abort();
        }
        drop(e);
        Ok(())
    }

    // ------------------------------------------------------------------ 2. reply shapes

    fn shape(&mut self, prefix: &str, reply_ty: &str, sent: &Value, rpc: &str, r: Option<&Reply>) {
        let id = |s: &str| format!("{prefix}.reply.{s}");
        let Some(r) = r else {
            self.check(
                &format!("{prefix}.answered"),
                "P-W2",
                Strength::Must,
                false,
                "no reply",
                Some(sent),
                None,
                json!({"type": reply_ty}),
            );
            for s in [
                "json-object",
                "type",
                "reference-id",
                "no-rpc-id",
                "address",
                "port",
                "node-id-hex",
                "node-id-matches",
                "claims-source",
            ] {
                self.push(CaseResult::with(
                    id(s),
                    "P-W2",
                    Verdict::NotApplicable,
                    "no reply to check",
                ));
            }
            return;
        };
        self.check(
            &format!("{prefix}.answered"),
            "P-W2",
            Strength::Must,
            true,
            "answered",
            None,
            None,
            Value::Null,
        );
        let obj = r
            .json
            .as_ref()
            .is_some_and(|j| j.is_object() && j.get("params").is_some_and(Value::is_object));
        self.check(
            &id("json-object"),
            "P-W1",
            Strength::Must,
            obj,
            "the reply is a JSON object with a `params` object",
            Some(sent),
            Some(r),
            json!({"type": reply_ty, "params": {}}),
        );
        let p = r.params().cloned().unwrap_or_default();
        self.check(
            &id("type"),
            "P-W2",
            Strength::Must,
            r.ty() == Some(reply_ty),
            format!("the reply's type is {reply_ty}"),
            Some(sent),
            Some(r),
            json!({"type": reply_ty}),
        );
        self.check(
            &id("reference-id"),
            "P-W2",
            Strength::Must,
            p.get("referenceID").and_then(Value::as_str) == Some(rpc),
            "`referenceID` is the request's rpcID, byte for byte",
            Some(sent),
            Some(r),
            json!({"referenceID": rpc}),
        );
        self.check(
            &id("no-rpc-id"),
            "P-W2",
            Strength::Must,
            !p.contains_key("rpcID"),
            "a reply carries `referenceID`, not also `rpcID` (exactly one of)",
            Some(sent),
            Some(r),
            json!({"rpcID": null}),
        );
        let addr = p.get("address").and_then(Value::as_str);
        let addr_ok = addr.is_some_and(|a| a.parse::<IpAddr>().is_ok());
        self.check(
            &id("address"),
            "P-W2",
            Strength::Must,
            addr_ok,
            "`address` is IPv4 dotted or IPv6 text without brackets",
            Some(sent),
            Some(r),
            json!({"address": ip_text(self.opts.target.ip())}),
        );
        let port = p
            .get("port")
            .and_then(Value::as_u64)
            .filter(|p| (1..=65_535).contains(p));
        self.check(
            &id("port"),
            "P-W2",
            Strength::Must,
            port.is_some(),
            "`port` is a JSON integer 1-65535",
            Some(sent),
            Some(r),
            json!({"port": self.opts.target.port()}),
        );
        let nid = p.get("nodeID").and_then(Value::as_str).unwrap_or_default();
        self.check(
            &id("node-id-hex"),
            "P-W4",
            Strength::Must,
            is_lower_hex40(nid),
            "`nodeID` is 40 lowercase hex characters",
            Some(sent),
            Some(r),
            json!({"nodeID": self.seed_id}),
        );
        let matches = match (addr, port) {
            (Some(a), Some(port)) => sha1_hex(&format!("{a}:{port}")) == nid.to_ascii_lowercase(),
            _ => false,
        };
        self.check(
            &id("node-id-matches"),
            "P-W3",
            Strength::Must,
            matches,
            "`nodeID` = sha1(address:port)",
            Some(sent),
            Some(r),
            json!({"nodeID": "sha1(address:port)"}),
        );
        let claims = addr
            .and_then(|a| a.parse::<IpAddr>().ok())
            .zip(port)
            .map(|(ip, port)| SocketAddr::new(ip, port as u16));
        self.check(&id("claims-source"), "P-W7", Strength::Should, claims == Some(r.from) && r.from == self.opts.target, "the reply comes from the target and claims the address it comes from (else peers cannot add it, P-W7)", Some(sent), Some(r), json!({"address": ip_text(self.opts.target.ip()), "port": self.opts.target.port(), "from": self.opts.target.to_string()}));
    }

    async fn shapes(&mut self) -> anyhow::Result<()> {
        let p = self.peer().await?;
        let t = self.opts.target;
        let wait = self.opts.reply_timeout;
        let (m, rpc) = self.request(&p, "PING", json!({}));
        let r = p.ask(t, &m, wait).await;
        self.shape("seed.ping", "PONG", &m, &rpc, r.as_ref());

        let sp = self.store_params();
        let (m, rpc) = self.request(&p, "STORE", sp);
        let r = p.ask(t, &m, wait).await;
        self.shape("seed.store", "STORE_REPLY", &m, &rpc, r.as_ref());
        if let Some(r) = &r {
            let b = r
                .params()
                .and_then(|p| p.get("success"))
                .is_some_and(Value::is_boolean);
            self.check(
                "seed.store.reply.success-boolean",
                "P-W6",
                Strength::Must,
                b,
                "STORE_REPLY carries a boolean `success`",
                Some(&m),
                Some(r),
                json!({"success": true}),
            );
        }

        let key = sha1_hex(&format!("shape-{}", self.opts.rng_seed));
        let (m, rpc) = self.request(&p, "FIND_NODE", json!({"key": key}));
        let r = p.ask(t, &m, wait).await;
        self.shape("seed.find-node", "FIND_NODE_REPLY", &m, &rpc, r.as_ref());
        if let Some(r) = &r {
            let list = r.contacts();
            self.check(
                "seed.find-node.reply.contacts-array",
                "P-W6",
                Strength::Must,
                list.is_some(),
                "FIND_NODE_REPLY carries a `contacts` array",
                Some(&m),
                Some(r),
                json!({"contacts": []}),
            );
        }

        let (m, rpc) = self.request(&p, "FIND_VALUE", json!({"key": key}));
        let r = p.ask(t, &m, wait).await;
        self.shape("seed.find-value", "FIND_VALUE_REPLY", &m, &rpc, r.as_ref());
        if let Some(r) = &r {
            let p = r.params().cloned().unwrap_or_default();
            let (v, c) = (
                p.get("value").is_some_and(|v| !v.is_null()),
                p.get("contacts").is_some_and(|v| !v.is_null()),
            );
            self.check(
                "seed.find-value.unknown-key.contacts-not-value",
                "P-W9",
                Strength::Must,
                c && !v,
                "an unknown key gets `contacts`, never both, never a value",
                Some(&m),
                Some(r),
                json!({"contacts": []}),
            );
        }
        Ok(())
    }

    // ------------------------------------------------------------------ 3. echo & leniency

    async fn echo_and_leniency(&mut self) -> anyhow::Result<()> {
        let p = self.peer().await?;
        let t = self.opts.target;
        let wait = self.opts.reply_timeout;
        let ids: [(&str, String); 5] = [
            ("1-char", "x".into()),
            ("128-chars", "z".repeat(128)),
            ("punctuation", " \"\\~{}[]".into()),
            ("uuid", "6f1a0c2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b".into()),
            ("mixed-case", "AbC-dEf_123".into()),
        ];
        for (slug, rpc) in ids {
            let mut pm = p.me();
            pm.insert("rpcID".into(), rpc.clone().into());
            let m = message("PING", pm, json!({}));
            let r = p.ask(t, &m, wait).await;
            let got = r
                .as_ref()
                .and_then(|r| r.params())
                .and_then(|p| p.get("referenceID"))
                .and_then(Value::as_str);
            self.check(
                &format!("seed.echo.rpc-id-{slug}"),
                "P-W2",
                Strength::Must,
                got == Some(rpc.as_str()),
                "the reply's referenceID is this rpcID byte for byte (P-W4 allows it)",
                Some(&m),
                r.as_ref(),
                json!({"referenceID": rpc}),
            );
        }

        let lenient: [(&str, &str, Value, bool); 5] = [
            ("unknown-param", "PING", json!({"mip42": {"x": 1}}), false),
            ("last-seen", "PING", json!({"lastSeen": 1}), false),
            ("unknown-top-level", "PING", json!({}), true),
            (
                "find-node-unknown-param",
                "FIND_NODE",
                json!({"key": self.seed_id, "hops": 3}),
                false,
            ),
            (
                "find-value-unknown-param",
                "FIND_VALUE",
                json!({"key": self.seed_id, "ttl": 3}),
                false,
            ),
        ];
        for (slug, ty, extra, top) in lenient {
            let (mut m, _) = self.request(&p, ty, extra);
            if top {
                m["mip"] = json!(true);
            }
            let r = p.ask(t, &m, wait).await;
            let want = format!("{ty}_REPLY").replace("PING_REPLY", "PONG");
            self.check(
                &format!("seed.lenient.{slug}"),
                "P-W1",
                Strength::Must,
                r.as_ref().and_then(Reply::ty) == Some(want.as_str()),
                "unknown fields are ignored: the request is answered",
                Some(&m),
                r.as_ref(),
                json!({"type": want}),
            );
        }

        // The largest datagram a receiver must accept (P-W1), padded with JSON whitespace.
        let (m, _) = self.request(&p, "PING", json!({}));
        let mut bytes = canon::compact(&m).into_bytes();
        bytes.resize(65_507, b' ');
        let sent = p.send(t, &bytes).await;
        match sent {
            Err(e) => self.push(CaseResult::with(
                "seed.datagram.max-size-accepted",
                "P-W1",
                Verdict::NotApplicable,
                format!("cannot send 65,507 bytes from here: {e}"),
            )),
            Ok(()) => {
                let r = p.recv(wait).await;
                let shown = json!({"datagram": format!("PING padded to {} bytes", bytes.len())});
                self.check(
                    "seed.datagram.max-size-accepted",
                    "P-W1",
                    Strength::Must,
                    r.as_ref().and_then(Reply::ty) == Some("PONG"),
                    "a 65,507-byte datagram is accepted",
                    Some(&shown),
                    r.as_ref(),
                    json!({"type": "PONG"}),
                );
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ 4. bad input

    /// The table's `no-reply` rows (`cases/seed.json`), each from a fresh peer, all at once;
    /// then an oversize datagram, and whether the seed still answers.
    async fn drops(&mut self) -> anyhow::Result<()> {
        let mut sends = Vec::new();
        for row in table::rows(catalogue::entries(Live::Seed), "seed.drop.", "no-reply") {
            let p = self.peer().await?;
            let made = self.make(row, &p)?;
            sends.push((row, p, made));
        }
        let target = self.opts.target;
        let silence = self.opts.silence;
        let outcomes = join_all(sends.iter().map(|(_, p, made)| async move {
            p.send(target, &made.bytes).await?;
            Ok::<_, std::io::Error>(p.recv(silence).await)
        }))
        .await;
        for ((row, _, made), out) in sends.iter().zip(outcomes) {
            let shown = match std::str::from_utf8(&made.bytes) {
                Ok(t) => json!(t),
                Err(_) => json!({"hex": hex::encode(&made.bytes)}),
            };
            match out {
                Err(e) => self.push(CaseResult::with(
                    row.id.clone(),
                    &row.rule,
                    Verdict::NotApplicable,
                    format!("could not send: {e}"),
                )),
                Ok(r) => self.check(
                    &row.id,
                    &row.rule,
                    row.strength,
                    r.is_none(),
                    row.description.clone(),
                    Some(&shown),
                    r.as_ref(),
                    Value::Null,
                ),
            }
        }
        // An oversize datagram can only be sent over IPv6 (the IPv4 UDP payload limit is 65,507).
        let p = self.peer().await?;
        let (m, _) = self.request(&p, "PING", json!({}));
        let mut big = canon::compact(&m).into_bytes();
        big.resize(65_508, b' ');
        match p.send(target, &big).await {
            Err(e) => self.push(CaseResult::with(
                "seed.drop.oversize",
                "P-W1",
                Verdict::NotApplicable,
                format!("65,508 bytes cannot be sent to this target ({e})"),
            )),
            Ok(()) => {
                // Accepting more than required is not forbidden (P-W1 sets a floor); the seed
                // must survive it (P-W6).
                let _ = p.recv(silence).await;
                let (m, _) = self.request(&p, "PING", json!({}));
                let r = p.ask(target, &m, self.opts.reply_timeout).await;
                self.check(
                    "seed.drop.oversize",
                    "P-W6",
                    Strength::Must,
                    r.as_ref().and_then(Reply::ty) == Some("PONG"),
                    "after a 65,508-byte datagram the seed still answers",
                    Some(&m),
                    r.as_ref(),
                    json!({"type": "PONG"}),
                );
            }
        }
        // The seed is still up (P-W6).
        let p = self.peer().await?;
        let (m, _) = self.request(&p, "PING", json!({}));
        let r = p.ask(target, &m, self.opts.reply_timeout).await;
        self.check(
            "seed.drop.still-alive",
            "P-W6",
            Strength::Must,
            r.as_ref().and_then(Reply::ty) == Some("PONG"),
            "after all the bad input, the seed still answers a PING",
            Some(&m),
            r.as_ref(),
            json!({"type": "PONG"}),
        );
        Ok(())
    }

    // ------------------------------------------------------------------ 5. spoofing

    /// Asks `asker` for the contacts closest to `key`, from a FIND_NODE.
    async fn contacts_near(
        &self,
        asker: &Peer,
        key: &str,
    ) -> (Value, Option<Reply>, Option<Vec<Value>>) {
        let (m, _) = self.request(asker, "FIND_NODE", json!({"key": key}));
        let r = asker
            .ask(self.opts.target, &m, self.opts.reply_timeout)
            .await;
        let list = r.as_ref().and_then(Reply::contacts).cloned();
        (m, r, list)
    }

    async fn spoofing(&mut self) -> anyhow::Result<()> {
        let a = self.peer().await?;
        let b = self.peer().await?; // never sends anything itself
        let t = self.opts.target;
        for (slug, ty, extra) in [
            ("ping", "PING", json!({})),
            ("find-node", "FIND_NODE", json!({"key": self.seed_id})),
            ("store", "STORE", self.store_params()),
        ] {
            let mut pm = claim(b.addr);
            pm.insert("rpcID".into(), self.rpc().into());
            let m = message(ty, pm, extra);
            let r = a.ask(t, &m, self.opts.reply_timeout).await;
            self.check(
                &format!("seed.spoof.{slug}-reply-to-source"),
                "P-W7",
                Strength::Must,
                r.is_some(),
                "a request claiming another address is answered at its source",
                Some(&m),
                r.as_ref(),
                json!({"to": a.addr.to_string()}),
            );
            let misdirected = b.recv(Duration::from_millis(200)).await;
            self.check(
                &format!("seed.spoof.{slug}-not-to-claimed-address"),
                "P-W7",
                Strength::Must,
                misdirected.is_none(),
                "nothing is sent to the claimed address",
                Some(&m),
                misdirected.as_ref(),
                Value::Null,
            );
        }
        let c = self.peer().await?;
        let (m, r, list) = self.contacts_near(&c, &b.id).await;
        let learned = list
            .as_ref()
            .is_some_and(|l| l.iter().any(|x| x["nodeID"] == json!(b.id)));
        self.check("seed.spoof.not-learned", "P-W7", Strength::Must, list.is_some() && !learned, "a contact whose claimed address was not the datagram's source is not in the routing table", Some(&m), r.as_ref(), json!({"contacts": format!("without {}", b.id)}));
        Ok(())
    }

    // ------------------------------------------------------------------ 6. routing

    async fn routing(&mut self) -> anyhow::Result<()> {
        let t = self.opts.target;
        let wait = self.opts.reply_timeout;
        // Peers that introduce themselves through each request type (P-K4).
        let mut known: Vec<Peer> = Vec::new();
        let q = self.peer().await?;
        for ty in ["PING", "FIND_NODE", "FIND_VALUE", "STORE"] {
            let p = self.peer().await?;
            let extra = match ty {
                "FIND_NODE" | "FIND_VALUE" => json!({"key": p.id}),
                "STORE" => self.store_params(),
                _ => json!({}),
            };
            let (m, _) = self.request(&p, ty, extra);
            let _ = p.ask(t, &m, wait).await;
            let (fm, r, list) = self.contacts_near(&q, &p.id).await;
            let listed = list
                .as_ref()
                .is_some_and(|l| l.iter().any(|c| c["nodeID"] == json!(p.id)));
            let slug = ty.to_lowercase().replace('_', "-");
            self.check(
                &format!("seed.learn.from-{slug}"),
                "P-K4",
                Strength::Must,
                listed,
                format!("a peer that sent a valid {ty} is learned: FIND_NODE for its ID lists it"),
                Some(&fm),
                r.as_ref(),
                json!({"contacts": [claim(p.addr)]}),
            );
            known.push(p);
        }
        // A known peer's own ID as the key: that peer comes first (distance 0).
        let first = &known[0];
        let (fm, r, list) = self.contacts_near(&q, &first.id).await;
        let head = list
            .as_ref()
            .and_then(|l| l.first())
            .map(|c| c["nodeID"].clone());
        self.check(
            "seed.find-node.exact-match-first",
            "P-W8",
            Strength::Must,
            head == Some(json!(first.id)),
            "a contact whose ID equals the key is listed first",
            Some(&fm),
            r.as_ref(),
            json!({"contacts": [claim(first.addr)]}),
        );
        // Peers whose only datagram was invalid are not learned.
        for (slug, rule, extra) in [
            ("invalid-request", "P-W6", json!({"rpcID": null})),
            (
                "mismatched-node-id",
                "P-W3",
                json!({"nodeID": sha1_hex("127.0.0.1:2")}),
            ),
        ] {
            let p = self.peer().await?;
            let (m, _) = self.request(&p, "PING", extra);
            let _ = p.send(t, canon::compact(&m).as_bytes()).await;
            let _ = p.recv(Duration::from_millis(200)).await;
            let (fm, r, list) = self.contacts_near(&q, &p.id).await;
            let learned = list
                .as_ref()
                .is_some_and(|l| l.iter().any(|x| x["nodeID"] == json!(p.id)));
            self.check(
                &format!("seed.learn.not-from-{slug}"),
                rule,
                Strength::Must,
                list.is_some() && !learned,
                "a dropped datagram does not put its sender in the routing table",
                Some(&fm),
                r.as_ref(),
                json!({"contacts": format!("without {}", p.id)}),
            );
        }
        for _ in 0..4 {
            let p = self.peer().await?;
            let (m, _) = self.request(&p, "PING", json!({}));
            let _ = p.ask(t, &m, wait).await;
            known.push(p);
        }
        // q itself is known too (it sent valid FIND_NODEs).
        let known_ids: Vec<String> = known.iter().map(|p| p.id.clone()).collect();
        for ty in ["FIND_NODE", "FIND_VALUE"] {
            let slug = ty.to_lowercase().replace('_', "-");
            let target_key = sha1_hex(&format!("routing-{slug}-{}", self.opts.rng_seed));
            let (m, _) = self.request(&q, ty, json!({"key": target_key}));
            let r = q.ask(t, &m, wait).await;
            self.contact_list_checks(
                &format!("seed.{slug}"),
                &target_key,
                &q,
                &known_ids,
                &m,
                r.as_ref(),
            );
            // The seed's own ID as the key: the seed must not list itself; the requester's
            // own ID: the requester is not sent back to itself.
            let own = [
                (
                    self.seed_id.clone(),
                    "never-self-even-for-own-id",
                    Strength::Must,
                    "looking up the seed's own ID does not return the seed",
                ),
                (
                    q.id.clone(),
                    "not-requester",
                    Strength::Should,
                    "the requester is not sent back to itself (SHOULD NOT)",
                ),
            ];
            for (key, case, strength, what) in own {
                let (m, _) = self.request(&q, ty, json!({"key": key}));
                let r = q.ask(t, &m, wait).await;
                let list = r.as_ref().and_then(Reply::contacts);
                let listed = list
                    .as_ref()
                    .is_some_and(|l| l.iter().any(|c| c["nodeID"] == json!(key)));
                self.check(
                    &format!("seed.{slug}.{case}"),
                    "P-W8",
                    strength,
                    list.is_some() && !listed,
                    what,
                    Some(&m),
                    r.as_ref(),
                    json!({"contacts": format!("without {key}")}),
                );
            }
        }
        Ok(())
    }

    fn contact_list_checks(
        &mut self,
        prefix: &str,
        key: &str,
        q: &Peer,
        known: &[String],
        sent: &Value,
        r: Option<&Reply>,
    ) {
        let list = r.and_then(Reply::contacts).cloned();
        let id = |s: &str| format!("{prefix}.{s}");
        let Some(list) = list else {
            self.check(
                &id("contacts-returned"),
                "P-W8",
                Strength::Must,
                false,
                "no contact list came back",
                Some(sent),
                r,
                json!({"contacts": []}),
            );
            return;
        };
        self.check(
            &id("contacts-returned"),
            "P-W8",
            Strength::Must,
            true,
            "a contact list came back",
            None,
            None,
            Value::Null,
        );
        let ids: Vec<Result<String, String>> = list.iter().map(contact_id).collect();
        let bad: Vec<&String> = ids.iter().filter_map(|r| r.as_ref().err()).collect();
        self.check(
            &id("contacts-well-formed"),
            "P-W3",
            Strength::Must,
            bad.is_empty(),
            match bad.first() {
                Some(e) => format!(
                    "every contact is address/port/nodeID with nodeID = sha1(address:port): {e}"
                ),
                None => "every contact is well formed".into(),
            },
            Some(sent),
            r,
            json!("contacts with nodeID = sha1(address:port)"),
        );
        let good: Vec<String> = ids.into_iter().filter_map(Result::ok).collect();
        self.check(
            &id("at-most-3"),
            "P-W8",
            Strength::Must,
            list.len() <= 3,
            format!("{} contacts; at most 3", list.len()),
            Some(sent),
            r,
            json!("at most 3 contacts"),
        );
        let dists: Vec<[u8; 20]> = good.iter().filter_map(|g| distance(g, key)).collect();
        let sorted = dists.windows(2).all(|w| w[0] < w[1]);
        self.check(
            &id("closest-first"),
            "P-W8",
            Strength::Must,
            sorted,
            "contacts are ordered by XOR distance to the key, closest first, no repeats",
            Some(sent),
            r,
            json!("ascending XOR distance"),
        );
        let has_self = good.contains(&self.seed_id);
        self.check(
            &id("never-self"),
            "P-W8",
            Strength::Must,
            !has_self,
            "the seed never lists itself",
            Some(sent),
            r,
            json!({"contacts": format!("without {}", self.seed_id)}),
        );
        // The reply must hold the closest of the peers the seed knows (it may know others too).
        let others: Vec<&String> = known.iter().filter(|k| **k != q.id).collect();
        let returned: BTreeSet<&String> = good.iter().collect();
        let worst = dists.iter().max().copied();
        let missed: Vec<&&String> = others
            .iter()
            .filter(|k| !returned.contains(**k))
            .filter(|k| match (distance(k, key), worst) {
                (Some(d), Some(w)) => list.len() < 3 || d < w,
                _ => false,
            })
            .collect();
        self.check(&id("truly-closest"), "P-W8", Strength::Must, missed.is_empty(), match missed.first() { Some(m) => format!("known peer {m} is closer than a returned contact (or was left out of a short list)"), None => "no known peer closer than the returned ones was left out".into() }, Some(sent), r, json!("the 3 closest known contacts"));
        let want = others.len().min(3);
        self.check(
            &id("full-width"),
            "P-K2",
            Strength::Should,
            list.len() >= want,
            format!(
                "{} contacts returned while the seed knows at least {} others: reply width is 3",
                list.len(),
                others.len()
            ),
            Some(sent),
            r,
            json!(format!("{want} contacts")),
        );
    }

    // ------------------------------------------------------------------ 7. storage

    /// The table's `accepted` rows one after the other, each STORE then found from another
    /// peer (and the valid value stored again); then its `refused` rows all at once, each
    /// answered `success: false` with nothing stored under the key sent nor the value's own.
    async fn storage(&mut self) -> anyhow::Result<()> {
        let t = self.opts.target;
        let wait = self.opts.reply_timeout;
        let entries = catalogue::entries(Live::Seed);
        let s = self.peer().await?;
        let other = self.peer().await?;
        let success = |r: &Option<Reply>| {
            r.as_ref()
                .and_then(|r| r.params())
                .and_then(|p| p.get("success"))
                .and_then(Value::as_bool)
        };
        let found = |r: &Option<Reply>| {
            r.as_ref()
                .and_then(|r| r.params())
                .and_then(|p| p.get("value"))
                .and_then(Value::as_str)
                .map(String::from)
        };

        let mut first = None;
        for row in table::rows(entries, "seed.store.", "accepted") {
            let m = self.make(row, &s)?.message.unwrap_or_default();
            let r = s.ask(t, &m, wait).await;
            self.check(
                &row.id,
                &row.rule,
                row.strength,
                success(&r) == Some(true),
                row.description.clone(),
                Some(&clip_value(&m)),
                r.as_ref(),
                json!({"success": true}),
            );
            let (fm, _) = self.request(&other, "FIND_VALUE", json!({"key": m["params"]["key"]}));
            let fr = other.ask(t, &fm, wait).await;
            let then = follow_up(entries, row, "-accepted", "-found")?;
            self.check(
                &then.id,
                &then.rule,
                then.strength,
                found(&fr).as_deref() == m["params"]["value"].as_str(),
                then.description.clone(),
                Some(&fm),
                fr.as_ref().map(clip_reply).as_ref(),
                json!({"value": "the stored value"}),
            );
            first.get_or_insert((m, fm, fr));
        }
        let (m, fm, fr) = first.context("the case table has no accepted STORE")?;
        let c = fr
            .as_ref()
            .and_then(|r| r.params())
            .is_some_and(|p| p.get("contacts").is_some_and(|c| !c.is_null()));
        self.check(
            "seed.find-value.found.value-not-contacts",
            "P-W9",
            Strength::Must,
            found(&fr).is_some() && !c,
            "a found value comes without `contacts`",
            Some(&fm),
            fr.as_ref().map(clip_reply).as_ref(),
            json!({"value": "…"}),
        );
        let (m2, _) = self.request(&s, "STORE", m["params"].clone());
        let r2 = s.ask(t, &m2, wait).await;
        self.check(
            "seed.store.again-succeeds",
            "P-V3",
            Strength::Must,
            success(&r2) == Some(true),
            "storing an existing key again succeeds",
            Some(&clip_value(&m2)),
            r2.as_ref(),
            json!({"success": true}),
        );
        let fr = other.ask(t, &fm, wait).await;
        self.check(
            "seed.store.again-changes-nothing",
            "P-V3",
            Strength::Must,
            found(&fr).as_deref() == m["params"]["value"].as_str(),
            "the value is unchanged after the second STORE",
            Some(&fm),
            fr.as_ref().map(clip_reply).as_ref(),
            json!({"value": "the stored value"}),
        );

        let mut refused = Vec::new();
        for row in table::rows(entries, "seed.store.", "refused") {
            let (p, o) = (self.peer().await?, self.peer().await?);
            let m = self.make(row, &p)?.message.unwrap_or_default();
            let params = &m["params"];
            let (f1, _) = self.request(&o, "FIND_VALUE", json!({"key": params["key"]}));
            let own = params["value"].as_str().map(sha1_hex).unwrap_or_default();
            let (f2, _) = self.request(&o, "FIND_VALUE", json!({"key": own}));
            let then = follow_up(entries, row, "-refused", "-not-stored")?;
            refused.push((row, then, p, o, m, f1, f2));
        }
        let outs = join_all(refused.iter().map(|(_, _, p, o, m, f1, f2)| async move {
            let r = p.ask(t, m, wait).await;
            let a = o.ask(t, f1, wait).await;
            let b = o.ask(t, f2, wait).await;
            (r, a, b)
        }))
        .await;
        for ((row, then, _, _, m, f1, f2), (r, a, b)) in refused.iter().zip(outs) {
            self.check(
                &row.id,
                &row.rule,
                row.strength,
                success(&r) == Some(false),
                row.description.clone(),
                Some(&clip_value(m)),
                r.as_ref(),
                json!({"success": false}),
            );
            let (which, got) = if found(&a).is_some() {
                (f1, &a)
            } else {
                (f2, &b)
            };
            self.check(
                &then.id,
                &then.rule,
                then.strength,
                found(&a).is_none() && found(&b).is_none(),
                then.description.clone(),
                Some(which),
                got.as_ref().map(clip_reply).as_ref(),
                json!({"contacts": "…"}),
            );
        }
        Ok(())
    }
}

/// The case that follows `row` in the table: its id with `from` replaced by `to` at the end.
fn follow_up(
    entries: &'static [catalogue::Entry],
    row: &catalogue::Entry,
    from: &str,
    to: &str,
) -> anyhow::Result<&'static catalogue::Entry> {
    let id = format!("{}{to}", row.id.trim_end_matches(from));
    entries
        .iter()
        .find(|e| e.id == id)
        .with_context(|| format!("{}: the case table has no {id}", row.id))
}

fn clip_str(s: &str) -> Value {
    if s.len() > 200 {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        json!(format!("{}… ({} chars)", &s[..end], s.len()))
    } else {
        json!(s)
    }
}

fn clip_value(m: &Value) -> Value {
    let mut m = m.clone();
    if let Some(v) = m["params"]["value"].as_str() {
        let c = clip_str(v);
        m["params"]["value"] = c;
    }
    m
}

fn clip_reply(r: &Reply) -> Reply {
    let mut r = r.clone();
    if let Some(j) = &r.json {
        r.json = Some(clip_value(j));
    }
    r
}

/// The distinct rules among failing cases (for tests and summaries).
pub fn failing_rules(cases: &[CaseResult]) -> BTreeSet<String> {
    cases
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.rule.clone())
        .collect()
}

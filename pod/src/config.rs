//! [`PodConfig`]: every limit and policy of a pod in one place, loadable from TOML.
//!
//! Each constant is explained where it is defined; the defaults follow PROFILE §5–§6 where the
//! profile fixes a value (nonce window, token lifetime, WebSocket auth timeout) and are
//! conservative choices where it does not (body size, rate limits).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A pod's settings: the `[pod]` table of the `muttr-pod` configuration file (durations
/// written `"10s"`, `"5m"`). `public_host`, `insecure_federation` and `ca_files` are not in that
/// table: they are the binary's top-level options (`--public-host`, `--insecure-federation`,
/// `--ca-file`), which it copies here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodConfig {
    /// The pod's public host as users name it (`muttr.me`, `127.0.0.1:8080`): the part after
    /// `@` in every `userID` (P-A8), with `:port` when not the scheme's default.
    #[serde(skip)]
    pub public_host: String,
    /// Fetch `href` identities over plain `http://` instead of `https://` (P-A3). Only for
    /// local networks and simulation.
    #[serde(skip)]
    pub insecure_federation: bool,
    /// Largest request body accepted, in bytes (413 beyond). A value must fit one STORE
    /// datagram (65,507 bytes, P-W1), so its hex text never needs more than that; 128 KiB
    /// leaves room for armored keys with many signatures.
    pub max_body_bytes: usize,
    /// P-A2: a nonce more than this far from the pod's clock is refused (5 minutes).
    #[serde(with = "muttr_node::settings::duration")]
    pub nonce_window: Duration,
    /// P-A6: how long a token stays valid (30 s).
    #[serde(with = "muttr_node::settings::duration")]
    pub token_ttl: Duration,
    /// P-A6: token length in random bytes (32 bytes = 256 bits, the profile asks ≥ 128).
    pub token_bytes: usize,
    /// P-S1: how long a WebSocket client has to send its auth frame (10 s).
    #[serde(with = "muttr_node::settings::duration")]
    pub ws_auth_timeout: Duration,
    /// Frames waiting for one WebSocket client at most. A client that lets its queue fill is
    /// disconnected (close code 4408); its entries stay in the inbox for playback (P-A9), so a
    /// slow client never blocks the others and loses nothing.
    pub ws_queue: usize,
    /// WebSocket sessions one identity may hold at once (a user's devices); one more is
    /// closed with [`crate::ws::CLOSE_TOO_MANY`] right after authentication.
    pub ws_per_identity: usize,
    /// WebSocket connections the pod holds at once, authenticated or not; beyond, the upgrade
    /// is refused with 429 before any work is done.
    pub ws_total: usize,
    /// Per-IP rate limit: sustained requests per second (429 beyond, P-A7).
    pub ip_rate_per_sec: f64,
    /// Per-IP rate limit: burst size.
    pub ip_burst: f64,
    /// Per-identity rate limit on authenticated requests: sustained requests per second.
    pub identity_rate_per_sec: f64,
    /// Per-identity rate limit: burst size.
    pub identity_burst: f64,
    /// Loopback clients skip the per-IP limit (local tools, a reverse proxy on the same host,
    /// benchmarks). Off by default: behind a proxy, turn it on and rate-limit in the proxy.
    pub exempt_loopback: bool,
    /// How long fetching another pod's key (`href`, P-A3) may take.
    #[serde(with = "muttr_node::settings::duration")]
    pub fetch_timeout: Duration,
    /// Largest key accepted from another pod, in bytes.
    pub max_fetched_key_bytes: usize,
    /// How long `POST /messages` and `GET /messages/:hash` wait for the DHT.
    #[serde(with = "muttr_node::settings::duration")]
    pub dht_timeout: Duration,
    /// P-X2: keep the values named by unpurged inbox entries alive in the DHT (the pod's seed
    /// adopts and republishes them, see [`crate::keepalive`]). On by default; `false` is for
    /// measuring what it prevents (the simulator's keep-alive-off runs).
    pub keepalive: bool,
    /// How often the keep-alive reconciles inboxes with what the seed republishes (it also
    /// runs at once after every notify and purge), 60 s: a value the DHT did not have
    /// yet is retried within a minute; the republication itself is the seed's, every
    /// `republish_interval` (23 h).
    #[serde(with = "muttr_node::settings::duration")]
    pub keepalive_sweep: Duration,
    /// Extra trust roots (PEM files) for outgoing HTTPS: fetching other pods' keys (P-A3) when
    /// their certificates come from a private CA or are self-signed. Added to the Mozilla and
    /// system roots. `--ca-file` on the command line.
    #[serde(skip)]
    pub ca_files: Vec<PathBuf>,
    /// How long a connection has to deliver a complete request head (request line and
    /// headers), counted from when the pod starts waiting for it: from the accept on a new
    /// connection, from the end of the previous answer on a kept-alive one. 10 s: generous for
    /// any real client, and what stops a client that opens a connection and sends half a
    /// request (slowloris) from holding it. hyper's header-read timer.
    #[serde(with = "muttr_node::settings::duration")]
    pub header_timeout: Duration,
    /// How long a kept-alive connection with no request in flight may stay silent before the
    /// pod closes it (5 s, as Node.js). A new connection that sends nothing is closed by
    /// this too. Longer than `header_timeout` has no effect: the header timer fires first.
    #[serde(with = "muttr_node::settings::duration")]
    pub keep_alive_timeout: Duration,
    /// How long the body of a request may take to arrive after its head (408 beyond). 30 s:
    /// a 128 KiB body at a slow 5 KiB/s.
    #[serde(with = "muttr_node::settings::duration")]
    pub body_timeout: Duration,
    /// How long a request may take in all, DHT waits included (408 beyond); longer than
    /// `dht_timeout`, so a DHT timeout answers its own 503 first.
    #[serde(with = "muttr_node::settings::duration")]
    pub request_timeout: Duration,
    /// Largest request head (request line and headers) in bytes: 431 beyond. 16 KiB: an auth
    /// query string is a few kilobytes.
    pub max_header_bytes: usize,
    /// HTTP connections open at once, all clients together; one more is answered 503 and
    /// closed at once. WebSocket sessions, once upgraded, count against `ws_total` instead.
    pub max_connections: usize,
    /// HTTP connections one client address may hold open at once (503 beyond). Trusted proxies
    /// are exempt (they carry many clients), and so is loopback when `exempt_loopback`.
    pub max_connections_per_ip: usize,
    /// Peers (CIDRs, e.g. `10.0.0.0/8`, `127.0.0.1/32`) whose `Forwarded` / `X-Forwarded-For`
    /// header is believed: behind such a reverse proxy, per-IP limits count the client's
    /// address from the header instead of the proxy's. Headers from any other peer are
    /// ignored (a client cannot pick its own address). Empty by default.
    #[serde(deserialize_with = "muttr_node::settings::list::deserialize")]
    pub trusted_proxies: Vec<IpNet>,
    /// After SIGTERM: how long requests in flight may take to finish before their connections
    /// are dropped (15 s, inside systemd's and Kubernetes' default stop timeouts).
    #[serde(with = "muttr_node::settings::duration")]
    pub shutdown_timeout: Duration,
}

impl Default for PodConfig {
    fn default() -> PodConfig {
        PodConfig {
            public_host: "localhost".into(),
            insecure_federation: false,
            max_body_bytes: 128 * 1024,
            nonce_window: Duration::from_secs(5 * 60),
            token_ttl: Duration::from_secs(30),
            token_bytes: 32,
            ws_auth_timeout: Duration::from_secs(10),
            ws_queue: 256,
            ws_per_identity: 8,
            ws_total: 10_000,
            ip_rate_per_sec: 50.0,
            ip_burst: 200.0,
            identity_rate_per_sec: 20.0,
            identity_burst: 100.0,
            exempt_loopback: false,
            fetch_timeout: Duration::from_secs(5),
            max_fetched_key_bytes: 64 * 1024,
            dht_timeout: Duration::from_secs(30),
            keepalive: true,
            keepalive_sweep: Duration::from_secs(60),
            ca_files: Vec::new(),
            header_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_connections: 4096,
            max_connections_per_ip: 256,
            trusted_proxies: Vec::new(),
            shutdown_timeout: Duration::from_secs(15),
        }
    }
}

impl PodConfig {
    /// Reads the `[pod]` table's text (unknown keys are an error, so a typo is not silently
    /// ignored).
    pub fn from_toml(text: &str) -> Result<PodConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Whether `peer` is a trusted proxy (its forwarding headers are believed).
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        let peer = muttr_node::id::canonical_ip(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }

    /// `alias@public_host`, the userID of an alias here (P-A8).
    pub fn user_id(&self, alias: &str) -> String {
        format!("{alias}@{}", self.public_host)
    }
}

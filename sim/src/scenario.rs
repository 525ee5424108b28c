//! Scenario files: what to simulate, as TOML (`sim/scenarios/*.toml`).
//!
//! Every field but `seeds` has a default, so a scenario names only what it changes. Times are in
//! simulated seconds. The `[config]` table overrides the protocol constants of
//! [`muttr_node::Config`] (same field names and units as a seed's own TOML file), which is how a
//! MIP is prototyped: two scenarios that differ in one `[config]` line, run with
//! `muttr-sim compare`.

use std::path::Path;

use muttr_node::Config;
use serde::{Deserialize, Serialize};

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name for reports.
    #[serde(default)]
    pub name: String,
    /// Master RNG seed; every random choice of the run derives from it (`--seed` overrides).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Number of seeds at the start.
    pub seeds: u32,
    /// Number of pods (the unchanged `muttr_pod` server, each with its embedded seed).
    #[serde(default)]
    pub pods: u32,
    /// Users (aliases, each with its own key) per pod.
    #[serde(default)]
    pub users_per_pod: u32,
    /// What the pods' users do (messages between users of different pods).
    #[serde(default)]
    pub messaging: Messaging,
    /// Seconds over which the seeds join, one after another, before the workload starts.
    #[serde(default = "default_bootstrap_s")]
    pub bootstrap_s: f64,
    /// How many random earlier (live) seeds a joining seed is given to bootstrap through.
    #[serde(default = "default_bootstrap_via")]
    pub bootstrap_via: usize,
    /// Seconds of workload after the join phase.
    #[serde(default = "default_duration_s")]
    pub duration_s: f64,
    /// The network between hosts.
    #[serde(default)]
    pub network: Network,
    /// Nodes leaving, joining, crashing and restarting.
    #[serde(default)]
    pub churn: Churn,
    /// What the users do.
    #[serde(default)]
    pub workload: Workload,
    /// Invariant checking.
    #[serde(default)]
    pub checks: Checks,
    /// Protocol constants (overrides of P-K2 defaults).
    #[serde(default)]
    pub config: Config,
}

fn default_seed() -> u64 {
    1
}
fn default_bootstrap_s() -> f64 {
    30.0
}
fn default_bootstrap_via() -> usize {
    3
}
fn default_duration_s() -> f64 {
    120.0
}

/// The one-way delay of a datagram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    /// Always `ms`.
    Fixed {
        /// Milliseconds.
        ms: f64,
    },
    /// Uniform in `[min_ms, max_ms]`.
    Uniform {
        /// Lower bound, ms.
        min_ms: f64,
        /// Upper bound, ms.
        max_ms: f64,
    },
    /// Log-normal with the given median and shape σ (a long right tail, like the Internet).
    Lognormal {
        /// Median, ms.
        median_ms: f64,
        /// σ of the underlying normal.
        sigma: f64,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Lognormal {
            median_ms: 40.0,
            sigma: 0.5,
        }
    }
}

/// A network partition: from `start_s` to `end_s` (after the join phase), a `fraction` of the
/// nodes (chosen by the RNG seed) cannot exchange datagrams with the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Start, seconds into the workload phase.
    pub start_s: f64,
    /// End, seconds into the workload phase.
    pub end_s: f64,
    /// Share of nodes on the minority side, 0..=1.
    pub fraction: f64,
}

/// The network model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// One-way latency distribution.
    #[serde(default)]
    pub latency: Latency,
    /// Independent per-datagram loss probability, 0..=1.
    #[serde(default)]
    pub loss: f64,
    /// Partitions.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// The engine's window, ms (0, the default, means 1: tokio's timer resolution): the least
    /// latency of any datagram or segment, and how far the workers of a parallel run go between
    /// two barriers (see the `engine` module). Latencies drawn below it are raised to it. A wider
    /// window means fewer barriers and a coarser least latency. (`batch_ms`, its former name,
    /// is still read.)
    #[serde(default, alias = "batch_ms")]
    pub window_ms: u64,
}

/// Churn during the workload phase (Poisson events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Share of the initial node count replaced per simulated hour: a node leaves (its store is
    /// gone) and a new node with a fresh address joins.
    #[serde(default)]
    pub replace_per_hour: f64,
    /// Share of the initial node count that crashes per simulated hour; a crashed node restarts
    /// at the same address with the store it had (durable store) after `restart_after_s`.
    #[serde(default)]
    pub crash_per_hour: f64,
    /// Downtime of a crashed node, seconds.
    #[serde(default = "default_restart_after_s")]
    pub restart_after_s: f64,
}

fn default_restart_after_s() -> f64 {
    30.0
}

impl Default for Churn {
    fn default() -> Self {
        Churn {
            replace_per_hour: 0.0,
            crash_per_hour: 0.0,
            restart_after_s: default_restart_after_s(),
        }
    }
}

/// What users do, per live node (Poisson arrivals).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// FIND_VALUE lookups of an already published key, per node per minute.
    #[serde(default = "default_lookups")]
    pub lookups_per_node_per_min: f64,
    /// Values published, per node per minute.
    #[serde(default = "default_publishes")]
    pub publishes_per_node_per_min: f64,
    /// Smallest ciphertext of a published value, bytes.
    #[serde(default = "default_min_bytes")]
    pub min_value_bytes: usize,
    /// Largest ciphertext of a published value, bytes.
    #[serde(default = "default_max_bytes")]
    pub max_value_bytes: usize,
    /// After a publish, another node looks the value up this many seconds later (delivery).
    #[serde(default = "default_fetch_delay_s")]
    pub fetch_delay_s: f64,
}

fn default_lookups() -> f64 {
    1.0
}
fn default_publishes() -> f64 {
    0.2
}
fn default_min_bytes() -> usize {
    200
}
fn default_max_bytes() -> usize {
    2_000
}
fn default_fetch_delay_s() -> f64 {
    10.0
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            lookups_per_node_per_min: default_lookups(),
            publishes_per_node_per_min: default_publishes(),
            min_value_bytes: default_min_bytes(),
            max_value_bytes: default_max_bytes(),
            fetch_delay_s: default_fetch_delay_s(),
        }
    }
}

/// Invariant checks during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checks {
    /// Seconds between checks of the storage invariant.
    #[serde(default = "default_check_interval_s")]
    pub interval_s: f64,
    /// Published values checked per round (a deterministic sample; 0 = all).
    #[serde(default = "default_sample")]
    pub sample: usize,
}

fn default_check_interval_s() -> f64 {
    60.0
}
fn default_sample() -> usize {
    200
}

impl Default for Checks {
    fn default() -> Self {
        Checks {
            interval_s: default_check_interval_s(),
            sample: default_sample(),
        }
    }
}

/// Why a scenario cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("invalid scenario {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid scenario: {0}")]
    Invalid(String),
}

impl Scenario {
    /// Parses and validates a scenario.
    pub fn from_toml(text: &str) -> Result<Scenario, ScenarioError> {
        let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: "<text>".into(),
            source: e,
        })?;
        s.validate()?;
        Ok(s)
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError::Read {
            path: path.display().to_string(),
            source: e,
        })?;
        let mut s: Scenario = toml::from_str(&text).map_err(|e| ScenarioError::Parse {
            path: path.display().to_string(),
            source: e,
        })?;
        if s.name.is_empty() {
            s.name = path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |m: &str| Err(ScenarioError::Invalid(m.to_string()));
        let finite_nonneg = |x: f64| x.is_finite() && x >= 0.0;
        if self.seeds < 2 {
            return bad("seeds must be at least 2");
        }
        if self.seeds > 1_000_000 {
            return bad("seeds must be at most 1,000,000");
        }
        if self.pods > 250 || self.users_per_pod > 10_000 {
            return bad("at most 250 pods and 10,000 users per pod");
        }
        if let Err(e) = self.messaging.validate(self.pods) {
            return bad(&e);
        }
        if self.bootstrap_via == 0 {
            return bad("bootstrap_via must be at least 1");
        }
        if !finite_nonneg(self.bootstrap_s) || !finite_nonneg(self.duration_s) {
            return bad("bootstrap_s and duration_s must be finite and >= 0");
        }
        if self.network.window_ms > 1_000 {
            return bad("network.window_ms must be at most 1000");
        }
        if !(0.0..=1.0).contains(&self.network.loss) {
            return bad("network.loss must be in 0..=1");
        }
        match self.network.latency {
            Latency::Fixed { ms } if !finite_nonneg(ms) => return bad("latency ms must be >= 0"),
            Latency::Uniform { min_ms, max_ms }
                if !finite_nonneg(min_ms) || !finite_nonneg(max_ms) || min_ms > max_ms =>
            {
                return bad("uniform latency needs 0 <= min_ms <= max_ms");
            }
            Latency::Lognormal { median_ms, sigma }
                if !finite_nonneg(median_ms) || !finite_nonneg(sigma) =>
            {
                return bad("lognormal latency needs median_ms >= 0 and sigma >= 0");
            }
            _ => {}
        }
        for p in &self.network.partitions {
            if !finite_nonneg(p.start_s) || !finite_nonneg(p.end_s) || p.end_s < p.start_s {
                return bad("a partition needs 0 <= start_s <= end_s");
            }
            if !(0.0..=1.0).contains(&p.fraction) {
                return bad("partition fraction must be in 0..=1");
            }
        }
        let c = &self.churn;
        if !finite_nonneg(c.replace_per_hour)
            || !finite_nonneg(c.crash_per_hour)
            || !finite_nonneg(c.restart_after_s)
        {
            return bad("churn rates and restart_after_s must be finite and >= 0");
        }
        let w = &self.workload;
        if !finite_nonneg(w.lookups_per_node_per_min)
            || !finite_nonneg(w.publishes_per_node_per_min)
            || !finite_nonneg(w.fetch_delay_s)
        {
            return bad("workload rates and fetch_delay_s must be finite and >= 0");
        }
        if w.min_value_bytes == 0 || w.min_value_bytes > w.max_value_bytes {
            return bad("workload needs 1 <= min_value_bytes <= max_value_bytes");
        }
        if w.max_value_bytes > 40_000 {
            return bad(
                "max_value_bytes must be at most 40000 (hex doubles it; P-W1 datagram limit)",
            );
        }
        if !(self.checks.interval_s.is_finite() && self.checks.interval_s > 0.0) {
            return bad("checks.interval_s must be > 0");
        }
        self.config
            .validate()
            .map_err(|e| ScenarioError::Invalid(format!("config: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = Scenario::from_toml("seeds = 10").unwrap();
        assert_eq!(s.seeds, 10);
        assert_eq!(s.config, Config::default());
        assert_eq!(s.network.loss, 0.0);
    }

    #[test]
    fn overrides_and_faults_parse() {
        let s = Scenario::from_toml(
            r#"
            seeds = 50
            seed = 7
            [network]
            latency = { kind = "uniform", min_ms = 10, max_ms = 30 }
            loss = 0.05
            [[network.partitions]]
            start_s = 10
            end_s = 20
            fraction = 0.5
            [churn]
            replace_per_hour = 0.3
            [config]
            reply_width = 20
            alpha = 5
            "#,
        )
        .unwrap();
        assert_eq!(s.config.reply_width, 20);
        assert_eq!(s.config.alpha, 5);
        assert_eq!(s.network.partitions.len(), 1);
        assert_eq!(
            s.network.latency,
            Latency::Uniform {
                min_ms: 10.0,
                max_ms: 30.0
            }
        );
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (text, needle) in [
            ("seeds = 1", "at least 2"),
            ("seeds = 10\n[network]\nloss = 2.0", "loss"),
            ("seeds = 10\nbogus = 1", "unknown field"),
            ("seeds = 10\npods = 300", "pods"),
            (
                "seeds = 10\npods = 2\n[messaging]\nactive_share = 2.0",
                "active_share",
            ),
            (
                "seeds = 10\npods = 2\n[[messaging.pod_restarts]]\npod = 5\nat_s = 1",
                "pod_restarts",
            ),
            ("seeds = 10\n[config]\nk = 0", "config"),
        ] {
            let e = Scenario::from_toml(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }
}

/// The `[messaging]` table of a scenario: what the pods' users do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Messaging {
    /// Messages each user sends per minute (to users of other pods).
    #[serde(default = "default_rate")]
    pub messages_per_user_per_min: f64,
    /// Smallest plaintext, bytes.
    #[serde(default = "default_min_text")]
    pub min_text_bytes: usize,
    /// Largest plaintext, bytes.
    #[serde(default = "default_max_text")]
    pub max_text_bytes: usize,
    /// Share of users with a seed of their own (active mode); the others are passive.
    #[serde(default = "default_half")]
    pub active_share: f64,
    /// Share of users listening on the pod's WebSocket; the others play their inbox back
    /// every `poll_s`.
    #[serde(default = "default_half")]
    pub push_share: f64,
    /// Inbox playback period of users without push, seconds.
    #[serde(default = "default_poll_s")]
    pub poll_s: f64,
    /// Pods stopped and started again (same data directory) during the workload.
    #[serde(default)]
    pub pod_restarts: Vec<PodRestart>,
    /// Messages are started only in the first `send_for_s` seconds of the workload (the rest
    /// of it is for delivery); unset: all through it.
    #[serde(default)]
    pub send_for_s: Option<f64>,
    /// The recipients are away this long: no user listens or plays its inbox back until
    /// `recipients_offline_s` seconds into the workload. 0: online from the start.
    #[serde(default)]
    pub recipients_offline_s: f64,
    /// When sending ends (and every send has settled), the users' own seeds (active mode) stop
    /// for good, and with them the republishing of what they published (P-K2); the users go on
    /// as passive users of their pods.
    #[serde(default)]
    pub senders_leave: bool,
    /// Whether the pods keep their users' messages alive ([`muttr_pod::PodConfig::keepalive`],
    /// PROFILE P-X2). On by default; off only to measure the loss it prevents.
    #[serde(default = "default_true")]
    pub pod_keepalive: bool,
    /// Pods serve HTTPS with certificates of a CA made for the run and federate over
    /// `https://` trusting it; users reach them over `https://` and `wss://` with the same
    /// trust (what `--tls-cert`, `--ca-file` and `muttr --ca-file` do outside the simulator).
    #[serde(default)]
    pub https: bool,
}

/// A pod that stops at `at_s` (seconds into the workload) and starts again `down_s` later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodRestart {
    /// Pod number.
    pub pod: u32,
    /// When it stops, seconds into the workload phase.
    pub at_s: f64,
    /// How long it stays down, seconds.
    #[serde(default = "default_down_s")]
    pub down_s: f64,
}

fn default_rate() -> f64 {
    1.0
}
fn default_min_text() -> usize {
    100
}
fn default_max_text() -> usize {
    2_000
}
fn default_half() -> f64 {
    0.5
}
fn default_poll_s() -> f64 {
    15.0
}
fn default_down_s() -> f64 {
    10.0
}
fn default_true() -> bool {
    true
}

impl Default for Messaging {
    fn default() -> Self {
        Messaging {
            messages_per_user_per_min: default_rate(),
            min_text_bytes: default_min_text(),
            max_text_bytes: default_max_text(),
            active_share: default_half(),
            push_share: default_half(),
            poll_s: default_poll_s(),
            pod_restarts: Vec::new(),
            send_for_s: None,
            recipients_offline_s: 0.0,
            senders_leave: false,
            pod_keepalive: true,
            https: false,
        }
    }
}

impl Messaging {
    /// Checks ranges (`pods`: the scenario's pod count).
    pub fn validate(&self, pods: u32) -> Result<(), String> {
        let ok = |x: f64| x.is_finite() && x >= 0.0;
        if !ok(self.messages_per_user_per_min) {
            return Err("messaging.messages_per_user_per_min must be finite and >= 0".into());
        }
        if !(0.0..=1.0).contains(&self.active_share) || !(0.0..=1.0).contains(&self.push_share) {
            return Err("messaging.active_share and push_share must be in 0..=1".into());
        }
        if self.min_text_bytes == 0 || self.min_text_bytes > self.max_text_bytes {
            return Err("messaging needs 1 <= min_text_bytes <= max_text_bytes".into());
        }
        if self.max_text_bytes > 30_000 {
            return Err("messaging.max_text_bytes must be at most 30,000 (one datagram)".into());
        }
        if !self.send_for_s.is_none_or(ok) || !ok(self.recipients_offline_s) {
            return Err(
                "messaging.send_for_s and recipients_offline_s must be finite and >= 0".into(),
            );
        }
        if !(self.poll_s.is_finite() && self.poll_s >= 0.1) {
            return Err("messaging.poll_s must be at least 0.1".into());
        }
        for r in &self.pod_restarts {
            if r.pod >= pods || !ok(r.at_s) || !ok(r.down_s) {
                return Err(format!(
                    "messaging.pod_restarts: pod {} must be < pods ({pods}), times >= 0",
                    r.pod
                ));
            }
        }
        Ok(())
    }
}

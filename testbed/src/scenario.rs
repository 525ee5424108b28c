//! Scenario files (TOML): how many seeds and pods, the workload, the network and the faults.
//!
//! ```toml
//! name = "faults30"
//! seed = 1                          # RNG seed: schedule, partition sides, victims, switch
//! seeds = 30
//! pods = 3
//! users_per_pod = 3
//! warmup_s = 20                     # after the processes start, before the workload
//! duration_s = 240                  # workload
//! drain_s = 180                     # at most this long after the workload for deliveries
//! messages_per_user_per_min = 2.0   # Poisson, each to a random user of another pod
//! message_bytes = 500               # plaintext size
//!
//! [network]                         # every link, from the start (netem's meaning)
//! delay_ms = 100
//! jitter_ms = 50
//! loss = 0.10
//! reorder = 0.0
//!
//! [[partitions]]                    # seconds into the workload
//! start_s = 60
//! end_s = 120
//! seed_fraction = 0.5               # share of the seeds on side B
//! pods = [2]                        # pods on side B (indexes)
//!
//! [kills]                           # SIGKILL, then restart with the same data dir and address
//! seed_fraction = 0.2
//! start_s = 30                      # first kill, seconds into the workload
//! spread_s = 120                    # kills spread evenly over this span
//! down_s = 20                       # how long each victim stays dead
//! ```
//!
//! Times of the workload are seconds after its start (`t0`), so a scenario reads as a timeline.

use serde::Deserialize;

use crate::switch::Impairment;

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Its name (the output directory's default name).
    pub name: String,
    /// RNG seed.
    #[serde(default = "one")]
    pub seed: u64,
    /// Seeds (one per namespace).
    pub seeds: usize,
    /// Pods (one per namespace, each with its embedded seed); at least 2.
    pub pods: usize,
    /// Users registered at each pod.
    #[serde(default = "three")]
    pub users_per_pod: usize,
    /// Seconds between starting the processes and the workload (joins, registration).
    #[serde(default = "twenty")]
    pub warmup_s: u64,
    /// Seconds of workload.
    pub duration_s: u64,
    /// Seconds allowed after the workload for deliveries still in flight.
    #[serde(default = "drain")]
    pub drain_s: u64,
    /// Messages each user sends per minute (Poisson arrivals).
    #[serde(default = "two")]
    pub messages_per_user_per_min: f64,
    /// Plaintext bytes per message.
    #[serde(default = "bytes")]
    pub message_bytes: usize,
    /// The links' impairment.
    #[serde(default)]
    pub network: Impairment,
    /// Partitions.
    #[serde(default)]
    pub partitions: Vec<Partition>,
    /// Seeds killed and restarted.
    #[serde(default)]
    pub kills: Kills,
    /// Protocol constants for every seed (fields of `muttr_node::Config`), written to a file
    /// given to `--config` as its `[seed]` table (muttr-seed and muttr-pod alike).
    #[serde(default)]
    pub seed_config: Option<toml::Table>,
    /// Pods serve HTTPS with certificates of a private CA made for the run (one per pod, for
    /// its IP address), federate over `https://` trusting that CA (`--ca-file`, no
    /// `--insecure-federation`), and the clients reach them with the same CA file.
    #[serde(default)]
    pub https: bool,
}

/// One partition: side B (some seeds and pods) is cut from side A between `start_s` and
/// `end_s`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// Start, seconds into the workload.
    pub start_s: u64,
    /// End (healed), seconds into the workload.
    pub end_s: u64,
    /// Share of the seeds on side B (chosen by the RNG).
    #[serde(default)]
    pub seed_fraction: f64,
    /// Pods on side B.
    #[serde(default)]
    pub pods: Vec<usize>,
}

/// Seeds killed with SIGKILL and restarted.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Kills {
    /// Share of the seeds killed (each once), chosen by the RNG.
    #[serde(default)]
    pub seed_fraction: f64,
    /// First kill, seconds into the workload.
    #[serde(default)]
    pub start_s: u64,
    /// Kills spread evenly over this many seconds.
    #[serde(default)]
    pub spread_s: u64,
    /// Seconds each victim stays down before its restart.
    #[serde(default = "twenty")]
    pub down_s: u64,
}

fn one() -> u64 {
    1
}
fn two() -> f64 {
    2.0
}
fn three() -> usize {
    3
}
fn twenty() -> u64 {
    20
}
fn drain() -> u64 {
    180
}
fn bytes() -> usize {
    500
}

/// Hosts the address plan has room for (10.77.0.10 – 10.77.255.209).
pub const MAX_HOSTS: usize = 200 * 256;

impl Scenario {
    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    /// Reads and checks a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Scenario::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Checks ranges and cross-references.
    pub fn validate(&self) -> Result<(), String> {
        if self.seeds == 0 {
            return Err("seeds must be at least 1".into());
        }
        if self.pods < 2 {
            return Err("pods must be at least 2 (messages go between pods)".into());
        }
        if self.seeds + self.pods > MAX_HOSTS {
            return Err(format!("at most {MAX_HOSTS} hosts"));
        }
        if self.users_per_pod == 0 || self.users_per_pod > 1_000 {
            return Err("users_per_pod must be 1–1000".into());
        }
        if !(self.messages_per_user_per_min.is_finite() && self.messages_per_user_per_min >= 0.0) {
            return Err("messages_per_user_per_min must be ≥ 0".into());
        }
        if self.message_bytes < 32 || self.message_bytes > 256 * 1024 {
            return Err("message_bytes must be 32–262144".into());
        }
        if self.duration_s == 0 {
            return Err("duration_s must be at least 1".into());
        }
        self.network.validate()?;
        for (i, p) in self.partitions.iter().enumerate() {
            if p.end_s <= p.start_s {
                return Err(format!("partition {i}: end_s must be after start_s"));
            }
            if !(0.0..=1.0).contains(&p.seed_fraction) {
                return Err(format!("partition {i}: seed_fraction must be in [0, 1]"));
            }
            if let Some(&bad) = p.pods.iter().find(|&&j| j >= self.pods) {
                return Err(format!("partition {i}: no pod {bad}"));
            }
            if p.pods.len() == self.pods && p.seed_fraction >= 1.0 {
                return Err(format!("partition {i}: side A would be empty"));
            }
        }
        if !(0.0..=1.0).contains(&self.kills.seed_fraction) {
            return Err("kills.seed_fraction must be in [0, 1]".into());
        }
        Ok(())
    }

    /// Hosts in all.
    pub fn hosts(&self) -> usize {
        self.seeds + self.pods
    }

    /// The number of seeds `fraction` stands for (rounded to nearest, at least 1 when
    /// `fraction > 0`).
    pub fn seeds_for(&self, fraction: f64) -> usize {
        if fraction <= 0.0 {
            0
        } else {
            ((fraction * self.seeds as f64).round() as usize).clamp(1, self.seeds)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
name = "t"
seed = 9
seeds = 30
pods = 3
duration_s = 240
[network]
delay_ms = 100
jitter_ms = 50
loss = 0.1
[[partitions]]
start_s = 60
end_s = 120
seed_fraction = 0.5
pods = [2]
[kills]
seed_fraction = 0.2
start_s = 30
spread_s = 120
down_s = 20
[seed_config]
alpha = 3
"#;

    #[test]
    fn parses_a_full_scenario_with_defaults() {
        let s = Scenario::parse(FULL).unwrap();
        assert_eq!(s.seed, 9);
        assert_eq!(s.users_per_pod, 3);
        assert_eq!(s.drain_s, 180);
        assert_eq!(s.network.loss, 0.1);
        assert_eq!(s.partitions[0].pods, vec![2]);
        assert_eq!(s.seeds_for(s.kills.seed_fraction), 6);
        assert_eq!(s.seeds_for(0.0), 0);
        assert_eq!(s.seeds_for(0.001), 1);
        assert_eq!(s.hosts(), 33);
        assert_eq!(
            s.seed_config.unwrap()["alpha"],
            toml::Value::Integer(3),
            "protocol overrides pass through"
        );
    }

    #[test]
    fn refuses_bad_scenarios_with_a_reason() {
        let cases = [
            ("pods = 1", "pods = 3", "at least 2"),
            ("seeds = 0", "seeds = 30", "seeds must"),
            ("loss = 1.5", "loss = 0.1", "loss must"),
            ("jitter_ms = 500", "jitter_ms = 50", "jitter_ms"),
            ("end_s = 50", "end_s = 120", "end_s must"),
            ("pods = [7]", "pods = [2]", "no pod 7"),
            (
                "seed_fraction = 2.0\nstart_s = 30",
                "seed_fraction = 0.2\nstart_s = 30",
                "kills",
            ),
            ("bogus = 1\nname", "name", "unknown field"),
        ];
        for (bad, good, why) in cases {
            let text = FULL.replacen(good, bad, 1);
            assert_ne!(text, FULL, "case {bad} did not apply");
            let err = Scenario::parse(&text).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn committed_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap();
                n += 1;
            }
        }
        assert!(n >= 2, "{n} scenarios");
    }
}

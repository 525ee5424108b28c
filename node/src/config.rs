//! Protocol constants, all in one place (PROFILE P-K2).
//!
//! A Muttr Improvement Proposal that changes the protocol's numbers (wider replies, more
//! parallel lookups, shorter expiry) is prototyped by changing a [`Config`], in a seed's TOML
//! file or in a simulator scenario, without touching code. Durations are written in seconds in
//! TOML (`response_timeout = 5`, fractions allowed).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The Kademlia and store parameters of a seed. `Config::default()` is PROFILE P-K2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// k: bucket size, and how many nodes a value is replicated to (P-K2: 20). Twenty is
    /// Kademlia's choice so that the chance of all k contacts of a bucket failing within an
    /// hour is negligible.
    pub k: usize,
    /// α: how many requests of one iterative lookup are in flight at once (P-K2: 3). Higher
    /// α lowers latency under loss at the cost of more messages.
    pub alpha: usize,
    /// How many contacts a FIND_NODE/FIND_VALUE reply carries (P-K2/P-W8: 3, the whitepaper's
    /// "3 closest"). Kademlia proper answers k; Muttr answers 3 to keep datagrams small.
    pub reply_width: usize,
    /// How long to wait for a reply before the request counts as failed (P-K2: 5 s).
    #[serde(with = "crate::settings::duration")]
    pub response_timeout: Duration,
    /// A bucket with no lookup through it for this long is refreshed by a lookup of a random
    /// identifier in its range (P-K2: 1 h).
    #[serde(with = "crate::settings::duration")]
    pub refresh_interval: Duration,
    /// Every value held is re-sent to the current k closest nodes this often (P-K2: 1 h), so
    /// values survive nodes leaving and reach nodes that joined near the key. A value another
    /// node stored here within the last interval is not re-sent (the Kademlia paper's
    /// optimisation: that node sent it to the other closest nodes too).
    #[serde(with = "crate::settings::duration")]
    pub replicate_interval: Duration,
    /// The original publisher re-publishes its values, with a fresh timestamp, this often
    /// (P-K2: 23 h). It must be shorter than `expiry`: republishing at the moment of expiry
    /// (the whitepaper's 24 h and 24 h) leaves every copy expired for a while each day; one
    /// hour's margin covers the lookup, lost STOREs and the once-a-minute housekeeping.
    #[serde(with = "crate::settings::duration")]
    pub republish_interval: Duration,
    /// A value expires this long after its `timestamp` (P-K2: 24 h).
    #[serde(with = "crate::settings::duration")]
    pub expiry: Duration,
    /// Replacement-cache size per bucket (P-K3): newcomers waiting for a slot.
    pub replacement_cache: usize,
    /// Most values one publisher may have held at this seed (P-V4).
    pub max_values_per_publisher: usize,
    /// Most values held in total (P-V4).
    pub max_values: usize,
    /// Most bytes of value text held in total (P-V4).
    pub max_bytes: u64,
    /// Most requests answered per second per source IP; further ones are dropped (abuse
    /// limit, not part of P-K2). 0 turns the limit off; loopback sources are never limited.
    pub max_requests_per_sec_per_source: u32,
    /// Amplification defence (not part of P-K2): a FIND_VALUE whose answer would be more than
    /// this many times the request's size is answered only once the source has proven its
    /// address — by answering a PING, or any earlier request of ours. Spoofed requests then get
    /// one PING sent to the victim (smaller than the request) instead of a value of up to
    /// 64 KB. Loopback sources, which cannot be spoofed from the network, are exempt. 0 turns
    /// the defence off.
    pub amplification_factor: u32,
    /// Lookup stall timer (not part of P-K2; see `kad::rtt`): a lookup request unanswered
    /// after the node's RTT estimate (`srtt + 4·rttvar`, at least 200 ms) frees its α slot so
    /// the lookup asks the next candidate, while the request still waits for its reply until
    /// `response_timeout`. `false` frees the slot only at `response_timeout`.
    pub lookup_stall: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            k: 20,
            alpha: 3,
            reply_width: 3,
            response_timeout: Duration::from_secs(5),
            refresh_interval: Duration::from_secs(3_600),
            replicate_interval: Duration::from_secs(3_600),
            republish_interval: Duration::from_secs(82_800),
            expiry: Duration::from_secs(86_400),
            replacement_cache: 8,
            max_values_per_publisher: 1_000,
            max_values: 100_000,
            max_bytes: 1 << 30,
            max_requests_per_sec_per_source: 200,
            amplification_factor: 3,
            lookup_stall: true,
        }
    }
}

impl Config {
    /// Parses a TOML document; absent fields keep their P-K2 defaults.
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks the values make sense together (positive sizes, α ≤ k, …).
    pub fn validate(&self) -> Result<(), String> {
        if self.k == 0 || self.alpha == 0 || self.reply_width == 0 {
            return Err("k, alpha and reply_width must be positive".into());
        }
        if self.alpha > self.k {
            return Err("alpha must not exceed k".into());
        }
        if self.reply_width > crate::wire::MAX_CONTACTS_ACCEPTED {
            return Err(format!(
                "reply_width must be at most {} (P-W8)",
                crate::wire::MAX_CONTACTS_ACCEPTED
            ));
        }
        if self.response_timeout.is_zero() {
            return Err("response_timeout must be positive".into());
        }
        if self.republish_interval.is_zero() || self.republish_interval >= self.expiry {
            return Err(format!(
                "republish_interval ({} s) must be positive and shorter than expiry ({} s), \
                 or republished values go unserved (P-K2)",
                self.republish_interval.as_secs_f64(),
                self.expiry.as_secs_f64()
            ));
        }
        Ok(())
    }
}

/// Serde helper: a `Duration` as (possibly fractional) seconds.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_profile_p_k2() {
        let c = Config::default();
        assert_eq!((c.k, c.alpha, c.reply_width), (20, 3, 3));
        assert_eq!(c.response_timeout, Duration::from_secs(5));
        assert_eq!(c.refresh_interval, Duration::from_secs(3_600));
        assert_eq!(c.replicate_interval, Duration::from_secs(3_600));
        assert_eq!(c.republish_interval, Duration::from_secs(82_800));
        assert!(
            c.republish_interval < c.expiry,
            "republish comes before expiry"
        );
        assert_eq!(c.expiry, Duration::from_secs(86_400));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn toml_overrides_and_rejects_unknown() {
        let c = Config::from_toml("k = 8\nalpha = 5\nresponse_timeout = 0.5\n").unwrap();
        assert_eq!((c.k, c.alpha), (8, 5));
        assert_eq!(c.response_timeout, Duration::from_millis(500));
        assert_eq!(c.reply_width, 3);
        assert!(c.validate().is_ok());
        let bad = Config::from_toml("k = 2\nalpha = 3\n").unwrap();
        assert!(bad.validate().is_err());
        let wide = Config::from_toml("reply_width = 21").unwrap();
        assert!(wide.validate().is_err());
        assert!(Config::from_toml("kk = 1").is_err());
        let late = Config::from_toml("republish_interval = 86400").unwrap();
        assert!(late.validate().unwrap_err().contains("republish_interval"));
    }
}

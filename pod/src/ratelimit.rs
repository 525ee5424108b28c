//! [`RateLimiter`]: token buckets per key (a client IP, an identity), for the 429 of P-A7.
//!
//! Each key has a bucket of `burst` tokens refilled at `rate` per second; a request takes one.
//! Time comes from the caller (tokio time in the pod), so the limiter is deterministic under a
//! paused clock. The number of buckets is bounded: when it reaches [`MAX_KEYS`], full buckets
//! (keys idle long enough to have refilled) are forgotten first, then the oldest.

use std::collections::HashMap;
use std::sync::Mutex;

/// Buckets kept at most; bounds the memory an attacker with many addresses can take.
pub const MAX_KEYS: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

/// Token buckets keyed by string.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_ms: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `rate` tokens per second, at most `burst` saved up.
    pub fn new(rate_per_sec: f64, burst: f64) -> RateLimiter {
        RateLimiter {
            rate_per_ms: rate_per_sec.max(0.0) / 1000.0,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now_ms`; false when the bucket is empty (rate limited).
    pub fn allow(&self, key: &str, now_ms: u64) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            self.shrink(&mut buckets, now_ms);
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            last_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.last_ms) as f64;
        b.tokens = (b.tokens + elapsed * self.rate_per_ms).min(self.burst);
        b.last_ms = now_ms;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn shrink(&self, buckets: &mut HashMap<String, Bucket>, now_ms: u64) {
        let full = |b: &Bucket| {
            b.tokens + now_ms.saturating_sub(b.last_ms) as f64 * self.rate_per_ms >= self.burst
        };
        buckets.retain(|_, b| !full(b));
        if buckets.len() >= MAX_KEYS {
            // Still full of active keys: forget the least recently used half.
            let mut ages: Vec<u64> = buckets.values().map(|b| b.last_ms).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            buckets.retain(|_, b| b.last_ms > cut);
        }
    }

    /// Buckets held (for tests and stats).
    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill_at_the_rate() {
        let l = RateLimiter::new(10.0, 3.0);
        assert!(l.allow("a", 0));
        assert!(l.allow("a", 0));
        assert!(l.allow("a", 0));
        assert!(!l.allow("a", 0), "burst of 3 spent");
        assert!(l.allow("b", 0), "other keys have their own bucket");
        assert!(!l.allow("a", 50), "half a token after 50 ms at 10/s");
        assert!(l.allow("a", 100), "one token after 100 ms");
        assert!(!l.allow("a", 100));
        // Idle for long: back to the burst, not beyond.
        for _ in 0..3 {
            assert!(l.allow("a", 10_000));
        }
        assert!(!l.allow("a", 10_000));
    }

    #[test]
    fn the_number_of_buckets_is_bounded() {
        let l = RateLimiter::new(1.0, 1.0);
        for i in 0..(MAX_KEYS + 10) {
            l.allow(&i.to_string(), i as u64);
        }
        assert!(l.len() <= MAX_KEYS);
    }
}

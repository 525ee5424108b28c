//! Round-trip time estimate and the lookup's *stall* timer.
//!
//! A lookup keeps α requests in flight. When one goes unanswered, waiting for the full response
//! timeout (P-K2: 5 s) before asking the next candidate makes every lost datagram, and every
//! unreachable contact, cost the lookup seconds: measured on the testbed (10 % loss,
//! 100 ms ± 50 ms links), publishing took a median 10.5 s, and during a partition of half the
//! network no publish finished within the client's 20 s. Kademlia's paper already lets the
//! initiator move on from nodes that "fail to respond quickly"; this module says how quickly.
//!
//! The node keeps one smoothed RTT estimate over all its replies, as TCP does per connection
//! (RFC 6298: `srtt`, `rttvar`, gains 1/8 and 1/4). A lookup request unanswered after
//! `srtt + 4·rttvar` (at least [`MIN_STALL_MS`], at most the response timeout) *stalls*: its α
//! slot is freed so the next candidate is asked, but the request stays pending — a late reply
//! is still merged, and the request only fails (routing-table failure count, `timeouts`) at the
//! response timeout, unchanged. Before the first reply there is no estimate and nothing stalls
//! early. STOREs and PINGs do not stall: their outcome is the answer itself.
//!
//! There is no retransmission, so every reply is an unambiguous sample (Karn's problem does not
//! arise).

/// The stall timer never fires sooner than this (ms), whatever the estimate: below it, a busy
/// peer's scheduling delay would be taken for loss.
pub const MIN_STALL_MS: u64 = 200;

/// Smoothed round-trip time and its variation (RFC 6298), in ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RttEstimator {
    srtt: Option<u64>,
    rttvar: u64,
}

impl RttEstimator {
    /// Takes one measured round trip.
    pub fn sample(&mut self, rtt_ms: u64) {
        match self.srtt {
            None => {
                self.srtt = Some(rtt_ms);
                self.rttvar = rtt_ms / 2;
            }
            Some(srtt) => {
                self.rttvar = (3 * self.rttvar + srtt.abs_diff(rtt_ms)) / 4;
                self.srtt = Some((7 * srtt + rtt_ms) / 8);
            }
        }
    }

    /// The smoothed RTT, once there is a sample.
    pub fn srtt(&self) -> Option<u64> {
        self.srtt
    }

    /// How long a lookup request may go unanswered before its slot is freed: `srtt + 4·rttvar`
    /// within [[`MIN_STALL_MS`], `max_ms`]; `max_ms` before the first sample.
    pub fn stall_after(&self, max_ms: u64) -> u64 {
        match self.srtt {
            None => max_ms,
            Some(srtt) => (srtt + 4 * self.rttvar).clamp(MIN_STALL_MS.min(max_ms), max_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_estimate_means_no_early_stall() {
        assert_eq!(RttEstimator::default().stall_after(5_000), 5_000);
    }

    #[test]
    fn follows_rfc6298() {
        let mut r = RttEstimator::default();
        r.sample(200);
        assert_eq!(r.srtt(), Some(200));
        assert_eq!(r.stall_after(5_000), 200 + 4 * 100);
        r.sample(300);
        // rttvar = (3·100 + |200 − 300|)/4 = 100; srtt = (7·200 + 300)/8 = 212
        assert_eq!(r.srtt(), Some(212));
        assert_eq!(r.stall_after(5_000), 212 + 400);
    }

    #[test]
    fn stays_within_its_bounds() {
        let mut fast = RttEstimator::default();
        for _ in 0..50 {
            fast.sample(1);
        }
        assert_eq!(fast.stall_after(5_000), MIN_STALL_MS);
        let mut slow = RttEstimator::default();
        slow.sample(4_000);
        assert_eq!(slow.stall_after(5_000), 5_000);
        // A response timeout below the floor wins.
        assert_eq!(fast.stall_after(100), 100);
    }

    #[test]
    fn converges_on_a_steady_rtt_and_widens_with_jitter() {
        let mut steady = RttEstimator::default();
        for _ in 0..100 {
            steady.sample(250);
        }
        assert_eq!(steady.srtt(), Some(250));
        let mut jittery = RttEstimator::default();
        for i in 0..100 {
            jittery.sample(if i % 2 == 0 { 150 } else { 350 });
        }
        assert!(jittery.stall_after(5_000) > steady.stall_after(5_000) + 200);
    }
}

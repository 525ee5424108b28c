//! [`Histogram`]: a fixed-bucket histogram of integer observations (lookup hops, lookup
//! milliseconds) kept by the sans-IO core, cheap to update and to copy into a metrics
//! snapshot. Counted per bucket; the Prometheus encoder makes them cumulative (`le`).

/// Counts of observations at or below each bound, plus those above the last bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    bounds: &'static [u64],
    /// `counts[i]`: observations in `(bounds[i-1], bounds[i]]`; the last slot counts those
    /// above every bound.
    counts: Vec<u64>,
    sum: u64,
}

/// Bounds for lookup hops: a lookup over n nodes takes about log2(n)/b hops.
pub const HOPS_BOUNDS: &[u64] = &[1, 2, 3, 4, 5, 6, 8, 10, 15, 20];

/// Bounds for lookup durations in milliseconds, from loopback to a lookup that waited out
/// several 5 s response timeouts.
pub const LATENCY_MS_BOUNDS: &[u64] = &[
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
];

impl Histogram {
    /// An empty histogram with these upper bounds (ascending).
    pub fn new(bounds: &'static [u64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0,
        }
    }

    /// Records one observation.
    pub fn observe(&mut self, v: u64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum = self.sum.saturating_add(v);
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations.
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// `(upper bound, observations in that bucket)` for each bound, ending with the bucket
    /// above the last bound as `(+Inf, …)`: the form `prometheus-client` encodes.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .map(|b| *b as f64)
            .chain([f64::INFINITY])
            .zip(self.counts.iter().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_is_not_below_them() {
        let mut h = Histogram::new(&[1, 2, 4]);
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.observe(v);
        }
        assert_eq!(h.count(), 7);
        assert_eq!(h.sum(), 115);
        assert_eq!(
            h.buckets(),
            vec![(1.0, 2), (2.0, 1), (4.0, 2), (f64::INFINITY, 2)]
        );
    }
}

//! Percentiles and summaries shared by the simulator (`muttr-sim`), the benchmarks
//! (`muttr-benches`) and the testbed (`muttr-testbed`), so that a "median" or a "p99" means the
//! same in every report the project publishes.
//!
//! ## The definition
//! - A **percentile** `q` of `n` sorted samples is the sample at *nearest rank*
//!   `⌈q·n⌉` (1-based, at least 1): always a value that was observed, never an interpolation.
//! - The **median** (`q = 0.5`) of an even count is the mean of the two middle samples, the
//!   usual convention (nearest rank would give the lower one).
//!
//! The samples are kept and sorted (exact, not a histogram's buckets): the project's runs
//! produce at most a few million samples per report, and reports compare runs to the unit.
//!
//! | item | what it is |
//! |---|---|
//! | [`percentile`] | one percentile of sorted samples |
//! | [`Summary`] | n, min, median, mean, p90, p99, max of samples in any order (`report.json`'s shape) |
//! | [`Sample`] | the numeric types samples come in |

use serde::{Deserialize, Serialize};

/// A numeric sample: anything that converts to `f64` without surprise.
pub trait Sample: Copy {
    /// The value as `f64`.
    fn to_f64(self) -> f64;
}

macro_rules! sample {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    )*};
}
sample!(u8, u16, u32, u64, usize, i32, i64, f32, f64);

/// The `q`-percentile (`0 ≤ q ≤ 1`) of `sorted` (ascending): the sample at nearest rank
/// `⌈q·n⌉`, except that the median of an even count is the mean of the two middle samples.
/// `None` for no samples.
pub fn percentile<T: Sample>(sorted: &[T], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    if q == 0.5 && n.is_multiple_of(2) {
        return Some((sorted[n / 2 - 1].to_f64() + sorted[n / 2].to_f64()) / 2.0);
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    Some(sorted[rank - 1].to_f64())
}

/// A summary of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Sample size.
    pub n: u64,
    /// Smallest.
    pub min: f64,
    /// Median.
    pub median: f64,
    /// Mean.
    pub mean: f64,
    /// 90th percentile.
    #[serde(default)]
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Summary {
    /// Summarises `values` (any order); all zero for none.
    pub fn of<T: Sample>(values: &[T]) -> Summary {
        let mut v: Vec<f64> = values.iter().map(|x| x.to_f64()).collect();
        v.sort_by(f64::total_cmp);
        Summary::of_sorted(&v)
    }

    /// Summarises `sorted` (ascending).
    pub fn of_sorted(sorted: &[f64]) -> Summary {
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return Summary::default();
        };
        let p = |q| percentile(sorted, q).unwrap_or(0.0);
        Summary {
            n: sorted.len() as u64,
            min,
            median: p(0.5),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p90: p(0.9),
            p99: p(0.99),
            max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.99), Some(99.0));
        assert_eq!(percentile(&v, 0.9), Some(90.0));
        assert_eq!(percentile(&v, 1.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        // p99 of fewer than 100 samples is the largest.
        assert_eq!(percentile(&[1u64, 2, 3], 0.99), Some(3.0));
        assert_eq!(percentile::<u64>(&[], 0.5), None);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(percentile(&[1u32, 2, 3, 10], 0.5), Some(2.5));
        assert_eq!(percentile(&[1u32, 2, 3], 0.5), Some(2.0));
        assert_eq!(percentile(&[7.0f64], 0.5), Some(7.0));
    }

    #[test]
    fn summaries_sort_and_keep_the_report_shape() {
        let s = Summary::of(&[5u64, 1, 4, 2, 3]);
        assert_eq!(
            (s.n, s.min, s.median, s.mean, s.p90, s.p99, s.max),
            (5, 1.0, 3.0, 3.0, 5.0, 5.0, 5.0)
        );
        assert_eq!(Summary::of::<f64>(&[]), Summary::default());
        // Reports written before p90 existed still read.
        let old = r#"{"n":1,"min":2.0,"median":2.0,"mean":2.0,"p99":2.0,"max":2.0}"#;
        let s: Summary = serde_json::from_str(old).unwrap();
        assert_eq!((s.n, s.p90, s.p99), (1, 0.0, 2.0));
    }
}

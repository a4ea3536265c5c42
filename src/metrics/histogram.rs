//! A histogram of fixed buckets in atomics: `observe` is a few relaxed increments.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Cumulative-on-read histogram: each observation lands in one bucket (or past the last).
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations in microseconds.
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    /// A histogram with the latency buckets (1 ms to 5 s).
    pub fn latency() -> Self {
        AtomicHistogram {
            bounds: &LATENCY_BUCKETS,
            counts: (0..=LATENCY_BUCKETS.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation of `micros` microseconds.
    pub fn observe_us(&self, micros: u64) {
        let secs = micros as f64 / 1e6;
        let slot = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// `(sum in seconds, count, per-bucket counts)`, the `+Inf` bucket last. Counts are per
    /// bucket, not cumulative: the OpenMetrics encoder accumulates them.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut buckets = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            let bound = self.bounds.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, c.load(Ordering::Relaxed)));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, self.count.load(Ordering::Relaxed), buckets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = AtomicHistogram::latency();
        h.observe_us(500); // 0.5 ms
        h.observe_us(30_000); // 30 ms
        h.observe_us(10_000_000); // 10 s, past the last bound
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 10.0305).abs() < 1e-9);
        assert_eq!(buckets[0], (0.001, 1));
        assert_eq!(buckets.last().copied(), Some((f64::INFINITY, 1)));
        let at_50ms = buckets.iter().find(|(b, _)| *b == 0.05).map(|(_, n)| *n);
        assert_eq!(at_50ms, Some(1));
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}

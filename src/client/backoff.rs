//! The reconnect delay policy: exponential growth, a cap, full jitter. A plain struct; the
//! caller passes the random source, so tests need no runtime and can seed it.

use std::time::Duration;

use rand::Rng;

/// Reconnect delays. After the `n`th failed attempt in a row (`n` from 1) the delay is drawn
/// uniformly from `[min, ceiling(n)]` where `ceiling(n) = min(max, min * factor^n)`: the
/// ceiling doubles (with factor 2) up to the cap, and the whole window is jittered so clients
/// dropped together (a server restart) do not come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    factor: f64,
    attempt: u32,
}

impl Backoff {
    /// A policy with the given bounds (`max` is raised to `min` when smaller; a factor under
    /// 1.0 counts as 1.0).
    pub fn new(min: Duration, max: Duration, factor: f64) -> Self {
        Backoff {
            min,
            max: max.max(min),
            factor: if factor.is_finite() && factor >= 1.0 {
                factor
            } else {
                1.0
            },
            attempt: 0,
        }
    }

    /// Failed attempts since the last [`Backoff::reset`].
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the delay after `attempt` failures in a row (`attempt` >= 1).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let min_ms = self.min.as_secs_f64() * 1000.0;
        let max_ms = self.max.as_secs_f64() * 1000.0;
        // powi on a capped exponent: no overflow, and the cap is reached long before 64.
        let grown = min_ms * self.factor.powi(attempt.min(64) as i32);
        Duration::from_secs_f64(grown.min(max_ms) / 1000.0)
    }

    /// Counts one more failed attempt and returns the delay before the next one.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let low = self.min;
        let high = self.ceiling(self.attempt);
        if high <= low {
            return low;
        }
        rng.gen_range(low..=high)
    }

    /// A connection succeeded: the next failure starts from the smallest window again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ceiling_grows_by_the_factor_until_the_cap() {
        let b = Backoff::new(ms(500), ms(20_000), 2.0);
        let ceilings: Vec<u64> = (1..=8).map(|n| b.ceiling(n).as_millis() as u64).collect();
        assert_eq!(
            ceilings,
            [1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000]
        );
        assert_eq!(b.ceiling(u32::MAX), ms(20_000), "huge attempts stay capped");
    }

    #[test]
    fn every_delay_is_within_min_and_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = Backoff::new(ms(500), ms(20_000), 2.0);
        for attempt in 1..=40u32 {
            let d = b.next_delay(&mut rng);
            assert_eq!(b.attempt(), attempt);
            assert!(d >= ms(500), "attempt {attempt}: {d:?} under the minimum");
            assert!(
                d <= b.ceiling(attempt),
                "attempt {attempt}: {d:?} over the ceiling"
            );
            assert!(d <= ms(20_000), "attempt {attempt}: {d:?} over the cap");
        }
    }

    #[test]
    fn jitter_spreads_over_the_whole_window() {
        let mut rng = StdRng::seed_from_u64(42);
        let mut samples = Vec::new();
        for _ in 0..2000 {
            let mut b = Backoff::new(ms(500), ms(20_000), 2.0);
            for _ in 0..5 {
                b.next_delay(&mut rng);
            }
            // The sixth window is [500, 20000].
            samples.push(b.next_delay(&mut rng));
        }
        let min = samples.iter().min().copied().expect("samples");
        let max = samples.iter().max().copied().expect("samples");
        assert!(min < ms(1500), "low end reached: {min:?}");
        assert!(max > ms(19_000), "high end reached: {max:?}");
        let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len() as f64;
        assert!(
            (mean - 10.25).abs() < 0.6,
            "uniform mean near 10.25s, got {mean}"
        );
    }

    #[test]
    fn reset_starts_over_and_degenerate_bounds_are_fixed_delays() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::new(ms(100), ms(400), 2.0);
        for _ in 0..10 {
            b.next_delay(&mut rng);
        }
        b.reset();
        assert_eq!(b.attempt(), 0);
        let d = b.next_delay(&mut rng);
        assert!(d >= ms(100) && d <= ms(200), "first window again: {d:?}");

        let mut fixed = Backoff::new(ms(50), ms(10), 0.1);
        assert_eq!(fixed.next_delay(&mut rng), ms(50));
        assert_eq!(fixed.next_delay(&mut rng), ms(50));
    }
}

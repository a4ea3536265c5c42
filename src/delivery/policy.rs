//! Pure policy: exponential backoff with full jitter, and retryable-vs-terminal
//! classification. No actors, no runtime.

use std::collections::HashSet;
use std::time::Duration;

use rand::Rng;

use crate::config::RetryConfig;
use crate::error::FailureKind;

/// Exponential backoff with an optional full jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Ceiling of the first retry's delay.
    pub base_delay: Duration,
    /// Cap on every delay.
    pub max_delay: Duration,
    /// Growth per retry.
    pub factor: f64,
    /// Full jitter: uniform in `[0, ceiling]`.
    pub jitter: bool,
}

impl RetryPolicy {
    /// The policy a configuration describes.
    pub fn from_config(c: &RetryConfig) -> Self {
        RetryPolicy {
            max_retries: c.max_retries,
            base_delay: Duration::from_millis(c.base_delay_ms),
            max_delay: Duration::from_millis(c.max_delay_ms),
            factor: c.backoff_factor,
            jitter: c.jitter,
        }
    }

    /// The largest delay before retry number `retry` (1 for the first retry):
    /// `min(max_delay, base_delay * factor^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let exp = self.factor.powi(retry.saturating_sub(1).min(1024) as i32);
        let ms = self.base_delay.as_secs_f64() * 1000.0 * exp;
        let cap = self.max_delay.as_secs_f64() * 1000.0;
        Duration::from_secs_f64(ms.min(cap).max(0.0) / 1000.0)
    }

    /// The delay before retry number `retry`: the ceiling, or uniform in `[0, ceiling]`
    /// with jitter.
    pub fn delay(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(retry);
        if !self.jitter || ceiling.is_zero() {
            return ceiling;
        }
        Duration::from_secs_f64(rng.gen_range(0.0..=ceiling.as_secs_f64()))
    }

    /// Whether another retry is allowed after `retries_done`.
    pub fn allows(&self, retries_done: u32) -> bool {
        retries_done < self.max_retries
    }
}

/// Retryable or terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Worth another attempt.
    Retryable,
    /// Final.
    Terminal,
}

/// Decides retryable vs terminal: the defaults of [`FailureKind::retryable_by_default`],
/// with per-kind overrides from the configuration (never from error text).
#[derive(Debug, Clone, Default)]
pub struct FailurePolicy {
    retryable: HashSet<FailureKind>,
    non_retryable: HashSet<FailureKind>,
}

impl FailurePolicy {
    /// The policy a configuration describes.
    pub fn from_config(c: &RetryConfig) -> Self {
        FailurePolicy {
            retryable: c.retryable.iter().copied().collect(),
            non_retryable: c.non_retryable.iter().copied().collect(),
        }
    }

    /// The verdict for one kind.
    pub fn classify(&self, kind: FailureKind) -> Verdict {
        let retry = if self.non_retryable.contains(&kind) {
            false
        } else if self.retryable.contains(&kind) {
            true
        } else {
            kind.retryable_by_default()
        };
        if retry {
            Verdict::Retryable
        } else {
            Verdict::Terminal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn policy() -> RetryPolicy {
        RetryPolicy::from_config(&RetryConfig::default())
    }

    #[test]
    fn backoff_grows_by_the_factor_and_caps() {
        let p = RetryPolicy {
            jitter: false,
            ..policy()
        };
        let ms: Vec<u128> = (1..=8)
            .map(|r| p.delay(r, &mut rand::thread_rng()).as_millis())
            .collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(
            p.ceiling(u32::MAX),
            Duration::from_millis(5000),
            "no overflow"
        );
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_ceiling_and_spreads() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        for retry in 1..=6 {
            let ceiling = p.ceiling(retry);
            let samples: Vec<Duration> = (0..500).map(|_| p.delay(retry, &mut rng)).collect();
            assert!(
                samples.iter().all(|d| *d <= ceiling),
                "retry {retry} over its ceiling"
            );
            let below_half = samples.iter().filter(|d| **d < ceiling / 2).count();
            assert!(
                (150..=350).contains(&below_half),
                "uniform-ish: {below_half}/500 below half"
            );
        }
    }

    #[test]
    fn retry_budget() {
        let p = policy();
        assert!(p.allows(0) && p.allows(2));
        assert!(!p.allows(3));
    }

    #[test]
    fn classification_table_with_overrides() {
        let default = FailurePolicy::default();
        let table = [
            (FailureKind::QueueFull, Verdict::Retryable),
            (FailureKind::ConnectionError, Verdict::Retryable),
            (FailureKind::WriteTimeout, Verdict::Retryable),
            (FailureKind::AckTimeout, Verdict::Retryable),
            (FailureKind::UserOffline, Verdict::Terminal),
            (FailureKind::Validation, Verdict::Terminal),
            (FailureKind::Permission, Verdict::Terminal),
            (FailureKind::RetriesExhausted, Verdict::Terminal),
            (FailureKind::Expired, Verdict::Terminal),
            (FailureKind::Internal, Verdict::Terminal),
        ];
        for (kind, verdict) in table {
            assert_eq!(default.classify(kind), verdict, "{kind}");
        }
        let custom = FailurePolicy::from_config(&RetryConfig {
            retryable: vec![FailureKind::UserOffline],
            non_retryable: vec![FailureKind::QueueFull],
            ..RetryConfig::default()
        });
        assert_eq!(
            custom.classify(FailureKind::UserOffline),
            Verdict::Retryable
        );
        assert_eq!(custom.classify(FailureKind::QueueFull), Verdict::Terminal);
        assert_eq!(custom.classify(FailureKind::AckTimeout), Verdict::Retryable);
    }
}

//! A token bucket for inbound frames.

use std::time::Instant;

/// Refills `rate` tokens a second up to `burst`; each inbound frame takes one.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket; `rate == 0` never limits.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            rate: f64::from(rate),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
        }
    }

    /// Takes a token; `false` when the bucket is empty.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts frames refused by the [`TokenBucket`] in a fixed window, to tell a burst from
/// sustained abuse.
#[derive(Debug, Clone)]
pub(crate) struct AbuseCounter {
    window_start: Instant,
    refused: u32,
}

impl AbuseCounter {
    /// No refusals yet.
    pub(crate) fn new(now: Instant) -> Self {
        AbuseCounter {
            window_start: now,
            refused: 0,
        }
    }

    /// Counts one refusal; `true` once `max` (non-zero) were counted within `window`.
    pub(crate) fn refused(&mut self, now: Instant, window: std::time::Duration, max: u32) -> bool {
        if now.saturating_duration_since(self.window_start) > window {
            self.window_start = now;
            self.refused = 0;
        }
        self.refused = self.refused.saturating_add(1);
        max > 0 && self.refused >= max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        assert!((0..3).all(|_| b.take(t0)));
        assert!(!b.take(t0));
        assert!(
            b.take(t0 + Duration::from_millis(100)),
            "one token after 1/rate"
        );
        assert!(!b.take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| b.take(later)).count(),
            3,
            "capped at burst"
        );
    }

    #[test]
    fn abuse_is_counted_per_window() {
        let t0 = Instant::now();
        let w = Duration::from_secs(1);
        let mut a = AbuseCounter::new(t0);
        assert!(!a.refused(t0, w, 3));
        assert!(!a.refused(t0, w, 3));
        assert!(!a.refused(t0 + Duration::from_secs(2), w, 3), "new window");
        assert!(!a.refused(t0 + Duration::from_secs(2), w, 3));
        assert!(a.refused(t0 + Duration::from_secs(2), w, 3));
        let mut never = AbuseCounter::new(t0);
        assert!((0..100).all(|_| !never.refused(t0, w, 0)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0, 0, t0);
        assert!((0..10_000).all(|_| b.take(t0)));
    }
}

//! The configuration the delivery path reads per message, kept in atomics so that a runtime
//! update ([`crate::hub::UpdateConfig`]) applies to new messages without a lock per frame.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::{FailurePolicy, Verdict};
use crate::config::Config;
use crate::error::FailureKind;
use crate::live_config::LiveConfig;

/// Per-message settings plus the live configuration they came from.
pub(crate) struct Tuning {
    pub(crate) live: LiveConfig,
    ack_timeout_ms: AtomicU64,
    max_retries: AtomicU32,
    store_plain: AtomicBool,
    ttl_ms: AtomicU64,
    /// The classifier retries a user's absence (so it is not stored at the first miss).
    offline_retryable: AtomicBool,
}

impl Tuning {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        let t = Tuning {
            live: LiveConfig::new((*config).clone()),
            ack_timeout_ms: AtomicU64::new(0),
            max_retries: AtomicU32::new(0),
            store_plain: AtomicBool::new(false),
            ttl_ms: AtomicU64::new(0),
            offline_retryable: AtomicBool::new(false),
        };
        t.load(&config);
        t
    }

    fn load(&self, c: &Config) {
        let r = Ordering::Relaxed;
        self.ack_timeout_ms.store(c.ack.ack_timeout_ms, r);
        self.max_retries.store(c.retry.max_retries, r);
        self.store_plain.store(c.store.store_plain, r);
        self.ttl_ms.store(c.store.ttl_ms, r);
        let offline = FailurePolicy::from_config(&c.retry).classify(FailureKind::UserOffline)
            == Verdict::Retryable;
        self.offline_retryable.store(offline, r);
    }

    /// Puts `config` in force for messages sent from now on.
    pub(crate) fn apply(&self, config: Arc<Config>) {
        self.load(&config);
        self.live.replace(config);
    }

    pub(crate) fn ack_timeout_ms(&self) -> u64 {
        self.ack_timeout_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn max_retries(&self) -> u32 {
        self.max_retries.load(Ordering::Relaxed)
    }

    pub(crate) fn store_plain(&self) -> bool {
        self.store_plain.load(Ordering::Relaxed)
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        self.ttl_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn offline_retryable(&self) -> bool {
        self.offline_retryable.load(Ordering::Relaxed)
    }
}

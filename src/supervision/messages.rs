//! Messages to the supervision actors.

use actix::prelude::*;

use crate::model::MessageKey;

/// Send a failed message again now, with a fresh retry budget, exactly where it was meant
/// to go; `false` when there is no such failed record.
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct RetryFailed {
    /// The message.
    pub key: MessageKey,
}

/// Stops the actor so that its supervisor restarts it; it re-arms its timer from its
/// deadline queue (used for runtime reconfiguration, and to prove nothing is lost).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Restart;

/// Re-reads the retry policy and failure overrides from the configuration in force (sent by
/// the hub after a runtime config update; failures classified from then on use it).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(crate) struct ReloadPolicy;

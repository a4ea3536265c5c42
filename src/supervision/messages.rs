//! Messages between the hub, sessions and the supervision actors.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::error::FailureKind;
use crate::protocol::{ClientId, Envelope, MessageId, UserId};

/// Start waiting for `user_id` to acknowledge delivery attempt `attempt` of `id`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct TrackAck {
    /// The message.
    pub id: MessageId,
    /// The recipient user.
    pub user_id: UserId,
    /// The sessions the frame was queued for.
    pub client_ids: Vec<ClientId>,
    /// How long to wait.
    pub timeout: Duration,
}

/// A client acknowledged a delivery (sent by its session).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct AckReceived {
    /// The acknowledged message.
    pub id: MessageId,
    /// The acknowledging user.
    pub user_id: UserId,
    /// The acknowledging session.
    pub client_id: ClientId,
}

/// A session ended abnormally (connection lost, write timeout): deliveries awaiting its ack
/// are failed as connection errors.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SessionLost {
    /// The session.
    pub client_id: ClientId,
    /// Its user.
    pub user_id: UserId,
}

/// A delivery failed for one recipient (to the failure classifier).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct DeliveryFailed {
    /// What kind of failure.
    pub kind: FailureKind,
    /// The message.
    pub envelope: Arc<Envelope>,
    /// The recipient user, when one is known.
    pub user_id: Option<UserId>,
    /// The recipient session, when one is involved.
    pub client_id: Option<ClientId>,
    /// How long the attempt waited (for timeouts).
    pub waited: Option<Duration>,
    /// A description.
    pub detail: String,
}

/// Several failures at once.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct DeliveriesFailed {
    /// One per missed recipient.
    pub failures: Vec<DeliveryFailed>,
}

/// Run retry number `retry` of `id` to `user_id` after `delay` (classifier to retry actor).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ScheduleRetry {
    /// The message.
    pub id: MessageId,
    /// The user to resend to.
    pub user_id: UserId,
    /// 1 for the first retry.
    pub retry: u32,
    /// The backoff.
    pub delay: Duration,
}

/// Send a failed message again now, with a fresh retry budget; `false` when there is no such
/// failed record.
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct RetryFailed {
    /// The message.
    pub id: MessageId,
}

/// Stops the actor so that its supervisor restarts it; it rebuilds its timers from the
/// message records (used for runtime reconfiguration, and to prove nothing is lost).
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Restart;

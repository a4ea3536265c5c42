//! The five failure-handler kinds. Each is a typed event delivered to every `Recipient`
//! registered for it with [`crate::hub::Subscribe`]; every specialised failure also reaches
//! the [`SendFailed`] handlers. A handler actor that stops or panics is dropped from the
//! list; the hub and the other handlers go on.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::error::FailureKind;
use crate::protocol::{ClientId, Envelope, UserId};

/// Any final delivery failure (the general handler; every specialised one comes here too).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SendFailed {
    /// The message.
    pub message: Arc<Envelope>,
    /// The recipient (user id, or `group:<name>` for a group).
    pub recipient: String,
    /// The failure reason (`retries_exhausted` after the last retry).
    pub reason: FailureKind,
    /// The last underlying failure, described.
    pub error: String,
}

/// A session's outbound queue overflowed with this message.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct QueueFull {
    /// The message.
    pub message: Arc<Envelope>,
    /// The recipient user.
    pub recipient: String,
    /// Which queue: `session_outbound` (a live session's) or `offline_store` (a user's
    /// offline queue over its cap).
    pub queue: &'static str,
    /// Description.
    pub error: String,
}

/// The recipient had no live session.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct UserOffline {
    /// The message.
    pub message: Arc<Envelope>,
    /// The user.
    pub user_id: UserId,
}

/// The recipient session's connection failed with the message in flight.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ConnectionError {
    /// The message.
    pub message: Arc<Envelope>,
    /// The session, when known.
    pub client_id: Option<ClientId>,
    /// Description.
    pub error: String,
}

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeoutKind {
    /// No acknowledgement.
    Ack,
    /// A socket write made no progress.
    Write,
}

/// A delivery timed out for good.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct DeliveryTimedOut {
    /// The message.
    pub message: Arc<Envelope>,
    /// The recipient user.
    pub recipient: String,
    /// Which wait ran out.
    pub timeout_kind: TimeoutKind,
    /// How long the last attempt waited.
    pub waited: Duration,
}

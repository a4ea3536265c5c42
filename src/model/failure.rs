//! Delivery failures as the supervision actors exchange them, and what one routing did.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::error::FailureKind;
use crate::protocol::{ClientId, Envelope, MessageId, OutboundFrame, UserId};

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
    /// The record attempt it belongs to (`None`: the recipient's current one).
    pub attempt: Option<u32>,
}

/// Several failures at once.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct DeliveriesFailed {
    /// One per missed recipient.
    pub failures: Vec<DeliveryFailed>,
}

/// A message that did not reach one session, with its frame.
#[derive(Debug, Clone)]
pub struct SessionFailure {
    /// The session.
    pub client_id: ClientId,
    /// Its user.
    pub user_id: UserId,
    /// Why.
    pub kind: FailureKind,
}

/// What routing one message did.
#[derive(Debug, Clone)]
pub struct RouteReport {
    /// The message id.
    pub id: MessageId,
    /// Sessions the frame was queued for.
    pub delivered: usize,
    /// Users named by the target with no session.
    pub offline_users: Vec<UserId>,
    /// The target group does not exist.
    pub unknown_group: bool,
    /// Sessions that could not take the frame.
    pub failed: Vec<SessionFailure>,
    /// `(user, session)` of every session that took the frame, when collected
    /// (`Router::route_collecting`).
    pub recipients: Vec<(UserId, ClientId)>,
}

impl RouteReport {
    /// Whether the hub took responsibility: the frame reached at least one session, or the
    /// target named nobody who could have missed it.
    pub fn accepted(&self) -> bool {
        self.delivered > 0
            || (self.offline_users.is_empty() && !self.unknown_group && self.failed.is_empty())
    }

    /// One [`DeliveryFailed`] per missed recipient.
    pub fn failures(&self, envelope: &Arc<Envelope>) -> Vec<DeliveryFailed> {
        let mut out: Vec<DeliveryFailed> = self
            .offline_users
            .iter()
            .map(|u| {
                failure(
                    FailureKind::UserOffline,
                    envelope,
                    Some(u.clone()),
                    None,
                    "recipient has no live session",
                )
            })
            .collect();
        if self.unknown_group {
            out.push(failure(
                FailureKind::Validation,
                envelope,
                None,
                None,
                "no such group",
            ));
        }
        out.extend(self.failed.iter().map(|f| {
            let detail = match f.kind {
                FailureKind::QueueFull => "session outbound queue overflowed",
                _ => "session closed before the frame was queued",
            };
            failure(
                f.kind,
                envelope,
                Some(f.user_id.clone()),
                Some(f.client_id.clone()),
                detail,
            )
        }));
        out
    }
}

/// A failure of `envelope` for one recipient.
pub fn failure(
    kind: FailureKind,
    envelope: &Arc<Envelope>,
    user_id: Option<UserId>,
    client_id: Option<ClientId>,
    detail: impl Into<String>,
) -> DeliveryFailed {
    DeliveryFailed {
        kind,
        envelope: envelope.clone(),
        user_id,
        client_id,
        waited: None,
        detail: detail.into(),
        attempt: None,
    }
}

/// Failures for frames a session was handed but never wrote (one place for the three paths
/// that find them: the hub closing a session, the session deregistering, the writer failing).
pub fn unwritten_failures(
    frames: Vec<OutboundFrame>,
    kind: FailureKind,
    user_id: &UserId,
    client_id: &ClientId,
) -> Vec<DeliveryFailed> {
    let detail = match kind {
        FailureKind::QueueFull => "dropped from an overflowed outbound queue",
        FailureKind::WriteTimeout => "socket write made no progress",
        _ => "session closed before the frame was written",
    };
    frames
        .iter()
        .map(|f| {
            failure(
                kind,
                f.envelope(),
                Some(user_id.clone()),
                Some(client_id.clone()),
                detail,
            )
        })
        .collect()
}

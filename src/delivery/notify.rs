//! Telling the failure handlers: each final failure reaches its specialised handler kind and
//! the general [`SendFailed`] handlers.

use std::sync::Arc;

use crate::error::FailureKind;
use crate::handlers::{
    publish, ConnectionError, DeliveryTimedOut, QueueFull, SendFailed, TimeoutKind, UserOffline,
};
use crate::model::lifecycle::Notice;
use crate::protocol::Envelope;
use crate::routing::Router;

/// Publishes `n` about `envelope` to the subscribed handlers.
pub(crate) fn notify(router: &Router, envelope: &Arc<Envelope>, n: &Notice) {
    let recipient = match (&n.user, &envelope.group) {
        (Some(u), _) => u.to_string(),
        (None, Some(g)) => format!("group:{g}"),
        (None, None) => String::new(),
    };
    let message = envelope.clone();
    let mut subs = router.subscribers();
    match n.kind {
        FailureKind::QueueFull => publish(
            &mut subs.queue_full,
            &QueueFull {
                message: message.clone(),
                recipient: recipient.clone(),
                queue: if n.client.is_some() {
                    "session_outbound"
                } else {
                    "offline_store"
                },
                error: n.detail.clone(),
            },
        ),
        FailureKind::UserOffline => {
            if let Some(u) = &n.user {
                publish(
                    &mut subs.user_offline,
                    &UserOffline {
                        message: message.clone(),
                        user_id: u.clone(),
                    },
                );
            }
        }
        FailureKind::ConnectionError => publish(
            &mut subs.connection_error,
            &ConnectionError {
                message: message.clone(),
                client_id: n.client.clone(),
                error: n.detail.clone(),
            },
        ),
        FailureKind::AckTimeout | FailureKind::WriteTimeout => publish(
            &mut subs.timed_out,
            &DeliveryTimedOut {
                message: message.clone(),
                recipient: recipient.clone(),
                timeout_kind: if n.kind == FailureKind::AckTimeout {
                    TimeoutKind::Ack
                } else {
                    TimeoutKind::Write
                },
                waited: n.waited.unwrap_or_default(),
            },
        ),
        FailureKind::Validation
        | FailureKind::Permission
        | FailureKind::RetriesExhausted
        | FailureKind::Expired
        | FailureKind::Internal => {}
    }
    publish(
        &mut subs.send_failed,
        &SendFailed {
            message,
            recipient,
            reason: n.reason,
            error: n.detail.clone(),
        },
    );
}

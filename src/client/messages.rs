//! The commands the client actor handles, and its state.

use actix::prelude::*;

use super::error::{FlushError, ReceiptError, SendError};
use super::frame::{IncomingMessage, OutgoingMessage, Receipt};
use crate::protocol::{GroupId, MessageId, UserId};

/// Where the client is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientState {
    /// Trying to make the first connection (retries included).
    Connecting,
    /// A connection is upgraded (the `Connected` event follows with the welcome).
    Connected,
    /// A connection was lost; waiting for or making the next attempt.
    Reconnecting,
    /// Stopped for good (see the `Closed` event for why).
    Closed,
}

/// Asks for the [`ClientState`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ClientState")]
pub struct GetState;

/// Sends a message: written now when connected, else queued (bounded by
/// `send_queue_capacity`) and written in order after the next connection. Answers the id
/// (assigned when the message had none).
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<MessageId, SendError>")]
pub struct SendMessage {
    /// The message.
    pub message: OutgoingMessage,
}

impl SendMessage {
    /// Wraps a message.
    pub fn new(message: OutgoingMessage) -> Self {
        SendMessage { message }
    }
}

/// Sends a message with `require_ack: true` and answers with the server's receipt
/// (`accepted`, or `failed` with the server's error), or an error after
/// `receipt_timeout_ms`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Receipt, ReceiptError>")]
pub struct SendWithReceipt {
    /// The message.
    pub message: OutgoingMessage,
}

impl SendWithReceipt {
    /// Wraps a message.
    pub fn new(message: OutgoingMessage) -> Self {
        SendWithReceipt { message }
    }
}

/// Joins a group and answers with the server's receipt. The client remembers the group and
/// joins it again on every reconnect.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Receipt, ReceiptError>")]
pub struct Join {
    /// The group.
    pub group: GroupId,
}

impl Join {
    /// Joins `group`.
    pub fn new(group: impl Into<GroupId>) -> Self {
        Join {
            group: group.into(),
        }
    }
}

/// Leaves a group (and stops rejoining it) and answers with the server's receipt.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Receipt, ReceiptError>")]
pub struct Leave {
    /// The group.
    pub group: GroupId,
}

impl Leave {
    /// Leaves `group`.
    pub fn new(group: impl Into<GroupId>) -> Self {
        Leave {
            group: group.into(),
        }
    }
}

/// Acknowledges a delivered message by hand (with `AckMode::Manual`; harmless otherwise).
/// A message is named by its sender and its id, since two senders may use the same id: the
/// ack frame is `{"type":"ack","id":..,"from":..}`. Build it from the received message with
/// [`Acknowledge::message`] (or `Acknowledge::from(&message)`).
///
/// Answers `false` when there is no connection to send it on; the server then resends the
/// message after its ack timeout and the client acks the duplicate itself.
///
/// ```
/// # use actix_wsc::client::{Acknowledge, IncomingMessage};
/// # fn demo(message: &IncomingMessage) {
/// let ack = Acknowledge::message(message);
/// assert_eq!((&ack.from, &ack.id), (&message.from, &message.id));
/// let same = Acknowledge::new(message.from.clone(), message.id.clone());
/// assert_eq!((same.from, same.id), (ack.from, ack.id));
/// # }
/// ```
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct Acknowledge {
    /// The delivered message's sender (its `from`).
    pub from: UserId,
    /// The delivered message's id.
    pub id: MessageId,
}

impl Acknowledge {
    /// Acknowledges the message `id` from `from`.
    pub fn new(from: impl Into<UserId>, id: impl Into<MessageId>) -> Self {
        Acknowledge {
            from: from.into(),
            id: id.into(),
        }
    }

    /// Acknowledges `message` (its `from` and `id`).
    pub fn message(message: &IncomingMessage) -> Self {
        Acknowledge {
            from: message.from.clone(),
            id: message.id.clone(),
        }
    }
}

impl From<&IncomingMessage> for Acknowledge {
    fn from(message: &IncomingMessage) -> Self {
        Acknowledge::message(message)
    }
}

/// Waits until every queued application frame is written to the socket.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), FlushError>")]
pub struct Flush;

/// Closes the client for good: frames queued before it are written first (when the client
/// is reconnecting, it waits up to `close_timeout_ms` for a connection to write them on),
/// then a 1000 close frame; answers once the client is closed. Frames that could not be
/// written are reported as `SendFailed`.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct Close;

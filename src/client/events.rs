//! Events the client reports to the application: one struct per event, each delivered to the
//! `Recipient` the application registered for it in [`ClientEvents`]. Events nobody registered
//! for are not built.

use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;

use super::error::{DialError, SendFailure, StopReason};
use super::frame::{FrameKind, IncomingMessage, OutgoingMessage};
use crate::protocol::{ClientId, CloseCode, MessageId, UserId};

/// The server welcomed a connection (its first frame); the client is connected.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Connected {
    /// The session's client id (assigned by the server unless configured).
    pub client_id: ClientId,
    /// The user the server sees.
    pub user_id: UserId,
    /// False for the first connection, true after a reconnect.
    pub reconnected: bool,
    /// The welcome frame's `data` object (heartbeat and ack settings, `node_id`, ...).
    pub welcome: Value,
}

/// A connection attempt failed.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ConnectFailed {
    /// Why.
    pub error: DialError,
    /// Failed attempts in a row, this one included.
    pub attempt: u32,
    /// Whether the client tries again.
    pub will_reconnect: bool,
    /// The delay before the next attempt, when there is one.
    pub retry_in: Option<Duration>,
}

/// A connection ended.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Disconnected {
    /// The server's close code; `None` when the connection dropped without a close frame
    /// (network failure, or a server silent for `server_timeout_ms`).
    pub code: Option<CloseCode>,
    /// The close reason text, or what the client saw.
    pub reason: String,
    /// Whether the client reconnects (PROTOCOL.md section 6).
    pub will_reconnect: bool,
    /// The delay before the next attempt, when there is one.
    pub retry_in: Option<Duration>,
}

/// An application message arrived (duplicates, same `from` and `id`, are dropped before this
/// event).
///
/// The handler's answer decides the acknowledgement: return `true` when the application took
/// the message; with `AckMode::Auto` the client then acks a `require_ack` frame. Return
/// `false` to leave it unacknowledged: the server resends it after its ack timeout, and the
/// resend is delivered again (a refused message is not remembered as a duplicate). With
/// `AckMode::Manual` the application acks with [`super::Acknowledge`] instead.
#[derive(Debug, Clone, Message)]
#[rtype(result = "bool")]
pub struct MessageReceived {
    /// The message.
    pub message: IncomingMessage,
}

/// Any text frame from the server, before the client acts on it (welcome, receipts, pongs,
/// errors, messages, duplicates included): a tap for logging and protocol tools.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct FrameReceived {
    /// What the client read it as.
    pub kind: FrameKind,
    /// The frame.
    pub text: String,
}

/// A frame was written to the socket.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Sent {
    /// Its id.
    pub id: MessageId,
}

/// A frame the client sent did not make it.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SendFailed {
    /// Its id, when known (an error frame may name none).
    pub id: Option<MessageId>,
    /// The message, when the client still held it (unwritten at close, a group rejoin).
    pub message: Option<OutgoingMessage>,
    /// Why.
    pub reason: SendFailure,
}

/// The server sent a WebSocket ping (the client answered it).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Ping;

/// A pong arrived: for the client's WebSocket ping (with the round trip) or a
/// `{"type":"pong"}` frame (without).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Pong {
    /// Time since the ping it answers.
    pub rtt: Option<Duration>,
}

/// The client stopped for good: it will not reconnect, and sends fail with `Closed`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Closed {
    /// Why.
    pub reason: StopReason,
}

/// The recipients of the client's events; register only those you handle.
///
/// ```no_run
/// # use actix::prelude::*;
/// use actix_wsc::client::{ClientEvents, MessageReceived};
///
/// struct App;
/// impl Actor for App { type Context = Context<Self>; }
/// impl Handler<MessageReceived> for App {
///     type Result = bool;
///     fn handle(&mut self, ev: MessageReceived, _: &mut Context<Self>) -> bool {
///         println!("{}: {}", ev.message.from, ev.message.content);
///         true // accepted: acknowledge it
///     }
/// }
/// # fn demo() {
/// let events = ClientEvents::new().on_message(App.start().recipient());
/// # }
/// ```
#[derive(Default, Clone)]
pub struct ClientEvents {
    pub(crate) connected: Option<Recipient<Connected>>,
    pub(crate) connect_failed: Option<Recipient<ConnectFailed>>,
    pub(crate) disconnected: Option<Recipient<Disconnected>>,
    pub(crate) message: Option<Recipient<MessageReceived>>,
    pub(crate) frame: Option<Recipient<FrameReceived>>,
    pub(crate) sent: Option<Recipient<Sent>>,
    pub(crate) send_failed: Option<Recipient<SendFailed>>,
    pub(crate) ping: Option<Recipient<Ping>>,
    pub(crate) pong: Option<Recipient<Pong>>,
    pub(crate) closed: Option<Recipient<Closed>>,
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident => $event:ty;)+) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, recipient: Recipient<$event>) -> Self {
                self.$field = Some(recipient);
                self
            }
        )+
    };
}

impl ClientEvents {
    /// No recipients.
    pub fn new() -> Self {
        ClientEvents::default()
    }

    setters! {
        /// Receives [`Connected`].
        on_connected: connected => Connected;
        /// Receives [`ConnectFailed`].
        on_connect_failed: connect_failed => ConnectFailed;
        /// Receives [`Disconnected`].
        on_disconnected: disconnected => Disconnected;
        /// Receives [`MessageReceived`]; its answer drives automatic acks.
        on_message: message => MessageReceived;
        /// Receives [`FrameReceived`].
        on_frame: frame => FrameReceived;
        /// Receives [`Sent`].
        on_sent: sent => Sent;
        /// Receives [`SendFailed`].
        on_send_failed: send_failed => SendFailed;
        /// Receives [`Ping`].
        on_ping: ping => Ping;
        /// Receives [`Pong`].
        on_pong: pong => Pong;
        /// Receives [`Closed`].
        on_closed: closed => Closed;
    }

    /// Every event to one actor that handles them all.
    pub fn all<A>(addr: &Addr<A>) -> Self
    where
        A: Actor<Context = Context<A>>
            + Handler<Connected>
            + Handler<ConnectFailed>
            + Handler<Disconnected>
            + Handler<MessageReceived>
            + Handler<FrameReceived>
            + Handler<Sent>
            + Handler<SendFailed>
            + Handler<Ping>
            + Handler<Pong>
            + Handler<Closed>,
    {
        ClientEvents {
            connected: Some(addr.clone().recipient()),
            connect_failed: Some(addr.clone().recipient()),
            disconnected: Some(addr.clone().recipient()),
            message: Some(addr.clone().recipient()),
            frame: Some(addr.clone().recipient()),
            sent: Some(addr.clone().recipient()),
            send_failed: Some(addr.clone().recipient()),
            ping: Some(addr.clone().recipient()),
            pong: Some(addr.clone().recipient()),
            closed: Some(addr.clone().recipient()),
        }
    }
}

/// Sends a notification when someone registered for it; the event is built only then.
pub(crate) fn notify<E>(recipient: &Option<Recipient<E>>, build: impl FnOnce() -> E)
where
    E: Message<Result = ()> + Send + 'static,
{
    if let Some(r) = recipient {
        // do_send queues even when the mailbox is full: events are never dropped while the
        // application's actor is alive.
        r.do_send(build());
    }
}

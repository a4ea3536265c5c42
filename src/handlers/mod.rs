//! Extension points: typed event messages delivered to the `Recipient`s applications register
//! with the hub ([`crate::hub::Subscribe`]). Register your own actor for any of them.
//!
//! ```no_run
//! use actix::prelude::*;
//! use actix_wsc::handlers::SessionConnected;
//! use actix_wsc::hub::{Hub, Subscribe};
//!
//! struct Audit;
//! impl Actor for Audit { type Context = Context<Self>; }
//! impl Handler<SessionConnected> for Audit {
//!     type Result = ();
//!     fn handle(&mut self, ev: SessionConnected, _: &mut Context<Self>) {
//!         println!("{} connected as {}", ev.info.user_id, ev.info.client_id);
//!     }
//! }
//!
//! # async fn demo(hub: Addr<Hub>) {
//! let audit = Audit.start();
//! hub.do_send(Subscribe(audit.recipient::<SessionConnected>()));
//! # }
//! ```

use std::sync::Arc;

use actix::prelude::*;

use crate::hub::SessionInfo;
use crate::protocol::{ClientId, CloseCode, Envelope, UserId};

/// A session registered with the hub.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SessionConnected {
    /// The session.
    pub info: SessionInfo,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client sent a close frame (with its code, if any).
    ClientClosed(Option<u16>),
    /// The connection ended without a close frame.
    ConnectionLost,
    /// The server closed the session with this code and reason (heartbeat timeout 4001,
    /// slow consumer 4000, replaced 4002, kicked 4500, shutdown 1001, too large 1009, ...).
    ServerClosed(CloseCode, String),
    /// A socket write made no progress within `write_timeout_ms`.
    WriteTimeout,
}

/// A session left the hub.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SessionDisconnected {
    /// The session's client id.
    pub client_id: ClientId,
    /// The session's user.
    pub user_id: UserId,
    /// Why.
    pub reason: DisconnectReason,
}

/// A client sent an application message (after validation, before routing).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct MessageReceived {
    /// The sending session.
    pub client_id: ClientId,
    /// The message as the hub routes it.
    pub envelope: Arc<Envelope>,
}

/// Why a message did not reach a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureCause {
    /// The user has no live session.
    UserOffline,
    /// The target group does not exist.
    UnknownGroup,
    /// The session's outbound queue overflowed (it is closed with 4000).
    QueueFull,
    /// The session closed before the frame was written.
    SessionClosed,
}

/// A message that could not be delivered to one recipient. Never dropped silently: the hub
/// logs it and sends this to every subscriber.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct DeliveryFailed {
    /// The message.
    pub envelope: Arc<Envelope>,
    /// The recipient user.
    pub user_id: Option<UserId>,
    /// The recipient session, when one was involved.
    pub client_id: Option<ClientId>,
    /// Why.
    pub cause: FailureCause,
}

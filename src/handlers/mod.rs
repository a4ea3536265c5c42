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

mod failures;

use std::sync::Arc;

use actix::prelude::*;

use crate::hub::SessionInfo;
pub use failures::{
    ConnectionError, DeliveryTimedOut, QueueFull, SendFailed, TimeoutKind, UserOffline,
};

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

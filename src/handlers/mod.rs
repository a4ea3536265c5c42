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

mod bus;
mod failures;

use std::sync::Arc;

use actix::prelude::*;

pub use crate::model::{DisconnectReason, SessionInfo};
pub(crate) use bus::{publish, Subscribers};
pub use failures::{
    ConnectionError, DeliveryTimedOut, QueueFull, SendFailed, TimeoutKind, UserOffline,
};

use crate::protocol::{ClientId, Envelope, UserId};

/// A session registered with the hub.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct SessionConnected {
    /// The session.
    pub info: SessionInfo,
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

/// A supervised actor was restarted by its supervisor (after a panic or a requested
/// restart); it rebuilt its state from the records and the store.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ActorRestarted {
    /// Which actor: `ack_tracker`, `retry_actor`, `failure_classifier`, `store_writer` or
    /// `store`.
    pub actor: &'static str,
}

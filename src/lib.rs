//! # actix-wsc
//!
//! An actor-model WebSocket messaging framework on [actix]: a [`hub::Hub`] actor supervises
//! one [`session::Session`] actor per connection and routes messages to users (all of their
//! devices), groups and everyone, over the `wsc.v1` wire protocol (`PROTOCOL.md`).
//!
//! ## Layout
//! - [`protocol`]: wire frames, ids, control frames, close codes (no actors)
//! - [`model`]: the shared data types (session info, targets, message records, failures) and
//!   the one state machine of a message's life; imports only `protocol` and `error`
//! - [`routing`]: the pure routing table, the shared router, the session inbox
//! - [`delivery`]: the one delivery path, the record book, offline store-and-forward
//! - [`supervision`]: the ACK tracker, retry actor and failure classifier
//! - [`store`]: the durable store (SQLite) and the in-memory one
//! - [`hub`]: the hub actor and its messages
//! - [`session`]: the session actor and its writer
//! - [`handlers`]: typed events applications subscribe to with their own actors
//! - [`auth`]: authenticator and welcome provider
//! - [`server`]: actix-web wiring to mount in your own `App`
//! - [`tls`]: rustls settings for `wss://` / `https://` (server and client)
//! - [`metrics`]: Prometheus counters and the `/metrics` exposition
//! - [`live_config`]: the configuration in force, updated at runtime
//! - [`config`], [`error`]
//!
//! ## Quick start
//! ```no_run
//! use actix::Actor;
//! use actix_web::{App, HttpServer};
//! use actix_wsc::prelude::*;
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let hub = Hub::new(Config::default()).start();
//!     HttpServer::new(move || App::new().configure(actix_wsc::server::routes(hub.clone())))
//!         .bind("127.0.0.1:8080")?
//!         .run()
//!         .await
//! }
//! ```

#![warn(missing_docs)]

pub mod auth;
pub mod client;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
pub mod hub;
pub mod live_config;
pub mod metrics;
pub mod model;
pub mod protocol;
pub mod routing;
pub mod server;
pub mod session;
pub mod store;
pub mod supervision;
pub mod tls;

/// The names most applications need.
pub mod prelude {
    pub use crate::auth::{Authenticator, ConnectRequest, Identity, Welcome, WelcomeProvider};
    pub use crate::config::Config;
    pub use crate::handlers::{
        ConnectionError, DeliveryTimedOut, DisconnectReason, MessageReceived, QueueFull,
        SendFailed, SessionConnected, SessionDisconnected, UserOffline,
    };
    pub use crate::hub::{
        DeliveryOutcome, DisconnectClient, Dispatch, DispatchLater, GetConfig, GetOnlineUsers,
        GetStats, Hub, JoinGroup, KickUser, LeaveGroup, RouteReport, SendTracked, SendWithAck,
        Shutdown, Subscribe, Target, UpdateConfig,
    };
    pub use crate::protocol::{
        ClientId, CloseCode, Envelope, GroupId, MessageId, MessageType, Priority, UserId, UserType,
    };
    pub use crate::server::WscServer;
}

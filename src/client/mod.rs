//! The reconnecting client: [`WscClient`], an actor on `awc` that speaks `wsc.v1`.
//!
//! - **Connect** to `/ws` as a user (query `user_id`, `client_id`, `user_type`; the token as
//!   `Authorization: Bearer` or `?token=`). [`GetState`] answers [`ClientState`].
//! - **Reconnect** after a drop, with exponential backoff and full jitter ([`Backoff`]),
//!   following the close codes of PROTOCOL.md section 6: reconnect on 1001, 1009, 1011,
//!   4000-4499 and abnormal drops; stop on 1000, 1008, 4002 and 4500-4999 ([`Closed`] says
//!   why). The client reuses the client id the server assigned, and rejoins its groups.
//! - **Heartbeat**: WebSocket pings every `ping_interval_ms`; server pings are answered; no
//!   frame from the server for `server_timeout_ms` counts as a drop.
//! - **Send** with [`SendMessage`] (a bounded queue that survives reconnects, in order;
//!   [`SendError::Full`] and [`SendError::Closed`] return the message), [`SendWithReceipt`]
//!   (the server's `accepted`/`failed`, or a timeout), [`Join`] and [`Leave`].
//! - **Receive**: a message is its `(from, id)` (ids are unique per sender): duplicates (same
//!   sender and id) are dropped within the last `dedup_window` messages, and two senders'
//!   messages with the same id are both delivered. `require_ack` frames are acked once the
//!   application's [`MessageReceived`] handler returns `true` (or by hand with
//!   [`Acknowledge`] under [`AckMode::Manual`]); every ack names the sender,
//!   `{"type":"ack","id":..,"from":..}`.
//! - **Events** go to the `Recipient`s in [`ClientEvents`]: [`Connected`], [`ConnectFailed`],
//!   [`Disconnected`], [`MessageReceived`], [`FrameReceived`], [`Sent`], [`SendFailed`],
//!   [`Ping`], [`Pong`], [`Closed`].
//!
//! ```text
//!  application ── SendMessage / Join / Close ──> WscClient (actor) ── events ──> your actors
//!                                                 | outbox (bounded, kept across reconnects)
//!                                                 | receipts, groups, dedup window, backoff
//!                          Outbound (mpsc) ──────>|<────── ConnEvent (in order, awaited)
//!                                          connection task (one per attempt):
//!                                          dial, read, batched writes, pings, silence timer
//! ```
//!
//! ```no_run
//! use actix::prelude::*;
//! use actix_wsc::client::*;
//!
//! struct Printer;
//! impl Actor for Printer { type Context = Context<Self>; }
//! impl Handler<MessageReceived> for Printer {
//!     type Result = bool;
//!     fn handle(&mut self, ev: MessageReceived, _: &mut Context<Self>) -> bool {
//!         println!("{} says {}", ev.message.from, ev.message.content);
//!         true
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new("ws://127.0.0.1:8080/ws", "alice");
//! let events = ClientEvents::new().on_message(Printer.start().recipient());
//! let client = WscClient::new(config)?.with_events(events).start();
//! client.send(SendMessage::new(OutgoingMessage::text_to("bob", "hi"))).await??;
//! let receipt = client.send(SendWithReceipt::new(OutgoingMessage::text_to("bob", "sure?"))).await??;
//! assert!(receipt.is_accepted());
//! client.send(Close).await?;
//! # Ok(())
//! # }
//! ```

mod actor;
mod backoff;
mod commands;
mod config;
mod connection;
mod dedup;
mod dial;
mod error;
mod events;
mod frame;
mod inbound;
mod messages;

pub use actor::WscClient;
pub use backoff::Backoff;
pub use config::{AckMode, ClientConfig, TokenPlacement};
pub use error::{DialError, FlushError, ReceiptError, SendError, SendFailure, StopReason};
pub use events::{
    ClientEvents, Closed, ConnectFailed, Connected, Disconnected, FrameReceived, MessageReceived,
    Ping, Pong, SendFailed, Sent,
};
pub use frame::{FrameKind, IncomingMessage, OutgoingMessage, Receipt, ReceiptStatus, ServerError};
pub use messages::{
    Acknowledge, ClientState, Close, Flush, GetState, Join, Leave, SendMessage, SendWithReceipt,
};

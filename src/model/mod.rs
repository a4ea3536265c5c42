//! The shared data types at the bottom of the crate: who a session is, where a message goes,
//! what a record holds, what a failure says, and the one state machine of a message's life
//! ([`lifecycle`]). This module imports only `protocol` and `error`; everything above it
//! (routing, store, delivery, supervision, hub, session, handlers) shares these types.

mod failure;
pub mod lifecycle;
mod record;
mod session;
mod target;

pub use failure::{
    failure, unwritten_failures, DeliveriesFailed, DeliveryFailed, RouteReport, SessionFailure,
};
pub use record::{
    now_ms, Attempt, DeliveryState, DeliveryStats, MessageKey, MessageRecord, MessageStatus,
    UserDelivery,
};
pub use session::{DisconnectReason, SessionInfo};
pub use target::{RecordTarget, SessionPredicate, Target};

//! Reliability as three supervised actors exchanging typed messages.
//!
//! ```text
//!  client frame / API / Hub::Send*                        session: {"type":"ack","id","from"}
//!            |                                                        |
//!            v                                                        v
//!   delivery::Reliability::send --insert--> Records <--lifecycle::on_ack-- Reliability::ack
//!            |  route (Router)                ^  ^  ^
//!            |--awaiting ack: push deadline--------------> AckTracker (one deadline queue,
//!            |                                |  |  |      one timer): deadline passed
//!            |                                |  |  |          | DeliveriesFailed
//!            +--no session / queue full / socket died ---------+---> FailureClassifier
//!                                             |  |  |                | lifecycle::on_failure
//!                                             |  |  +----------------+  retryable, budget left:
//!                                             |  |                      push resend deadline
//!                                             |  |                            |
//!                                             |  +--lifecycle::retry_due-- RetryActor (one
//!                                             |     resend same (from,id)  deadline queue)
//!                                             |
//!                                             +-- final: stored for the next connection
//!                                                 (storable) or failed; handlers: QueueFull,
//!                                                 UserOffline, ConnectionError,
//!                                                 DeliveryTimedOut, and SendFailed
//! ```
//!
//! - [`AckTracker`] owns the ack deadlines; a passed deadline whose attempt is still awaited
//!   becomes an `ack_timeout` failure.
//! - [`FailureClassifier`] decides retryable vs terminal ([`FailurePolicy`], an exhaustive
//!   `match` over [`crate::error::FailureKind`] with per-kind overrides) and applies the
//!   state machine's failure transition ([`crate::model::lifecycle::on_failure`]).
//! - [`RetryActor`] owns the scheduled resends ([`RetryPolicy`]: exponential, capped, full
//!   jitter) and re-sends the same frame (same `from` and `id`).
//!
//! All three run under `actix::Supervisor`. Their queues live in the delivery layer, so a
//! restart loses nothing: the restarted actor arms one timer for the earliest entry. Every
//! restart publishes [`crate::handlers::ActorRestarted`].

mod ack_tracker;
mod classifier;
mod messages;

mod retry;

use actix::prelude::*;

pub use crate::delivery::{FailurePolicy, RetryPolicy, Verdict};
pub use ack_tracker::AckTracker;
pub use classifier::FailureClassifier;
pub use messages::*;
pub use retry::RetryActor;

pub use crate::delivery::{Records, Reliability, TrackOptions};
pub use crate::model::{
    now_ms, Attempt, DeliveryState, MessageKey, MessageRecord, MessageStatus, RecordTarget,
    UserDelivery,
};

use crate::handlers::{publish, ActorRestarted};

/// The three actors' addresses.
#[derive(Clone)]
pub struct Supervisors {
    /// The ACK tracker.
    pub ack_tracker: Addr<AckTracker>,
    /// The retry actor.
    pub retry_actor: Addr<RetryActor>,
    /// The failure classifier.
    pub classifier: Addr<FailureClassifier>,
}

impl Supervisors {
    /// Starts the three actors under supervisors on the current arbiter and wires the
    /// delivery layer to the classifier.
    pub fn start(rel: &Reliability) -> Self {
        let r = rel.clone();
        let classifier = Supervisor::start(move |_| FailureClassifier::new(r));
        rel.set_classifier(classifier.clone().recipient());
        let r = rel.clone();
        let retry_actor = Supervisor::start(move |_| RetryActor::new(r));
        let r = rel.clone();
        let ack_tracker = Supervisor::start(move |_| AckTracker::new(r));
        Supervisors {
            ack_tracker,
            retry_actor,
            classifier,
        }
    }
}

/// Tells the subscribers that `actor` restarted.
pub(crate) fn restarted(rel: &Reliability, actor: &'static str) {
    rel.router().counters().metrics.restarted(actor);
    publish(
        &mut rel.router().subscribers().restarted,
        &ActorRestarted { actor },
    );
}

//! Reliability as three supervised actors exchanging typed messages.
//!
//! ```text
//!  client frame / API / Hub::SendWithAck                        session: {"type":"ack","id"}
//!            |                                                              |
//!            v                                                              v
//!   Reliability::send_tracked --record--> Records <--update--------  AckTracker
//!            |  route (Router)                ^  ^                   (TrackAck timers)
//!            |--delivered, ack wanted--TrackAck-> AckTracker -----AckTimedOut/ConnectionError--+
//!            |                                |  |                                              |
//!            +--no session / queue full / socket died: DeliveryFailed ---------------------+    |
//!                                             |  |                                         v    v
//!                                             |  +--update-- FailureClassifier <-- DeliveryFailed
//!                                             |                 | retryable, budget left   | final
//!                                             |                 v                          v
//!                                             +--update--  RetryActor            handlers: QueueFull,
//!                                                (backoff + jitter,              UserOffline,
//!                                                 resend same id --> Router,     ConnectionError,
//!                                                 TrackAck again)                DeliveryTimedOut,
//!                                                                                and SendFailed
//! ```
//!
//! - [`AckTracker`] arms one timer per `(message, user)` awaiting an ack; an ack confirms, a
//!   deadline or a lost session reports a [`DeliveryFailed`] to the classifier.
//! - [`FailureClassifier`] decides retryable vs terminal ([`FailurePolicy`], an exhaustive
//!   `match` over [`FailureKind`] with per-kind overrides), asks [`RetryActor`] for another
//!   attempt while the budget lasts, and otherwise marks the record final and dispatches the
//!   failure to the registered handlers (see [`crate::handlers`]).
//! - [`RetryActor`] waits the backoff ([`RetryPolicy`]: exponential, capped, full jitter) and
//!   re-sends the same frame (same `id`), recording every attempt.
//!
//! All three run under `actix::Supervisor`. Their timers live in their contexts, so a restart
//! drops them; everything needed to re-arm them (ack deadlines, scheduled retries, recipients)
//! is in the [`Records`], and each actor re-arms from there when it starts.

mod ack_tracker;
mod classifier;
mod messages;
mod policy;
mod records;
mod retry;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::prelude::*;

pub use ack_tracker::AckTracker;
pub use classifier::FailureClassifier;
pub use messages::*;
pub use policy::{FailurePolicy, RetryPolicy, Verdict};
pub use records::{now_ms, Attempt, MessageRecord, MessageStatus, RecordTarget, Records};
pub use retry::RetryActor;

use crate::config::Config;
use crate::error::FailureKind;
use crate::hub::{RouteReport, Router, Target};
use crate::protocol::{ClientId, Envelope, MessageId};

struct Wiring {
    ack: OnceLock<Addr<AckTracker>>,
    retry: OnceLock<Addr<RetryActor>>,
    classifier: OnceLock<Addr<FailureClassifier>>,
}

struct Inner {
    router: Router,
    records: Records,
    config: Arc<Config>,
    wiring: Wiring,
}

/// How a tracked message is sent.
#[derive(Debug, Clone, Copy)]
pub struct TrackOptions {
    /// Recipients must acknowledge; unacknowledged deliveries are resent.
    pub require_ack: bool,
    /// Routing failures (queue full, session lost) are retried too.
    pub retry_on_failure: bool,
    /// ACK wait per attempt.
    pub ack_timeout: Duration,
    /// Retries allowed.
    pub max_retries: u32,
}

/// The reliability layer: the records and the three supervised actors. Cheap to clone.
#[derive(Clone)]
pub struct Reliability {
    inner: Arc<Inner>,
}

impl Reliability {
    /// The layer, without its actors yet (see [`Reliability::start_actors`]).
    pub fn new(router: Router, records: Records, config: Arc<Config>) -> Self {
        Reliability {
            inner: Arc::new(Inner {
                router,
                records,
                config,
                wiring: Wiring {
                    ack: OnceLock::new(),
                    retry: OnceLock::new(),
                    classifier: OnceLock::new(),
                },
            }),
        }
    }

    /// Starts the three actors under supervisors on the current arbiter (once; later calls
    /// do nothing).
    pub fn start_actors(&self) {
        if self.inner.wiring.classifier.get().is_some() {
            return;
        }
        let rel = self.clone();
        let r = rel.clone();
        let classifier = Supervisor::start(move |_| FailureClassifier::new(r));
        let r = rel.clone();
        let retry = Supervisor::start(move |_| RetryActor::new(r));
        let r = rel.clone();
        let ack = Supervisor::start(move |_| AckTracker::new(r));
        let w = &rel.inner.wiring;
        // Set once, right after creation; the actors read them only when handling messages.
        let _ = w.classifier.set(classifier);
        let _ = w.retry.set(retry);
        let _ = w.ack.set(ack);
    }

    /// The message records.
    pub fn records(&self) -> &Records {
        &self.inner.records
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.inner.config
    }

    pub(crate) fn router(&self) -> &Router {
        &self.inner.router
    }

    /// The ACK tracker.
    pub fn ack_tracker(&self) -> Option<&Addr<AckTracker>> {
        self.inner.wiring.ack.get()
    }

    /// The retry actor.
    pub fn retry_actor(&self) -> Option<&Addr<RetryActor>> {
        self.inner.wiring.retry.get()
    }

    /// The failure classifier.
    pub fn classifier(&self) -> Option<&Addr<FailureClassifier>> {
        self.inner.wiring.classifier.get()
    }

    /// Options from the configuration, with or without acks.
    pub fn default_options(&self, require_ack: bool) -> TrackOptions {
        let c = &self.inner.config;
        TrackOptions {
            require_ack,
            retry_on_failure: false,
            ack_timeout: Duration::from_millis(c.ack.ack_timeout_ms),
            max_retries: c.retry.max_retries,
        }
    }

    /// Hands failures to the classifier.
    pub fn report(&self, failures: Vec<DeliveryFailed>) {
        if failures.is_empty() {
            return;
        }
        match self.classifier() {
            Some(c) => c.do_send(DeliveriesFailed { failures }),
            None => log::error!(
                "failure classifier not started; {} failures unclassified",
                failures.len()
            ),
        }
    }

    /// Creates a record for `envelope` and makes the first attempt.
    pub fn send_tracked(
        &self,
        target: Target,
        envelope: Envelope,
        options: TrackOptions,
        exclude: Option<&ClientId>,
    ) -> RouteReport {
        let record_target = match &target {
            Target::User(u) => RecordTarget::User(u.clone()),
            Target::Group(g) => RecordTarget::Group(g.clone()),
            _ => RecordTarget::Broadcast,
        };
        let mut record = MessageRecord::new(
            envelope.clone(),
            record_target,
            options.require_ack,
            options.ack_timeout,
        );
        record.retry_on_failure = options.retry_on_failure;
        record.max_retries = options.max_retries;
        let id = record.id.clone();
        self.inner.records.insert(record);
        self.attempt(&id, &target, Arc::new(envelope), exclude)
    }

    /// One delivery attempt of a recorded message.
    pub(crate) fn attempt(
        &self,
        id: &MessageId,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
    ) -> RouteReport {
        let records = &self.inner.records;
        let Some(ack_timeout) = records.update(id, |r| {
            r.start_attempt();
            Duration::from_millis(r.ack_timeout_ms)
        }) else {
            return self.inner.router.route(target, envelope, exclude);
        };
        let report = self
            .inner
            .router
            .route_collecting(target, envelope.clone(), exclude);
        let mut users: Vec<_> = report.recipients.iter().map(|(u, _)| u.clone()).collect();
        users.sort();
        users.dedup();
        if !users.is_empty() {
            let require_ack = records
                .update(id, |r| {
                    r.status = MessageStatus::Delivered;
                    if r.require_ack {
                        for u in &users {
                            if !r.pending_acks.contains(u) {
                                r.pending_acks.push(u.clone());
                            }
                        }
                        r.ack_deadline_ms = Some(now_ms() + r.ack_timeout_ms);
                    } else {
                        r.end_attempt(None);
                    }
                    r.require_ack
                })
                .unwrap_or(false);
            if require_ack {
                if let Some(ack) = self.ack_tracker() {
                    for u in users {
                        let client_ids = report
                            .recipients
                            .iter()
                            .filter(|(ru, _)| *ru == u)
                            .map(|(_, c)| c.clone())
                            .collect();
                        ack.do_send(TrackAck {
                            id: id.clone(),
                            user_id: u,
                            client_ids,
                            timeout: ack_timeout,
                        });
                    }
                }
            }
        }
        self.report(report.failures(&envelope));
        report
    }
}

/// Maps a routing report's misses to failures.
pub(crate) fn failure(
    kind: FailureKind,
    envelope: &Arc<Envelope>,
    user_id: Option<crate::protocol::UserId>,
    client_id: Option<ClientId>,
    detail: impl Into<String>,
) -> DeliveryFailed {
    DeliveryFailed {
        kind,
        envelope: envelope.clone(),
        user_id,
        client_id,
        waited: None,
        detail: detail.into(),
    }
}

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
use crate::protocol::{ClientId, Envelope, MessageId, OutboundFrame, Source, UserId};
use crate::store::{OfflineItem, StoreError, StoreHandle};

struct Wiring {
    store: OnceLock<StoreHandle>,
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
    /// After this long the message is not sent again (its record becomes `expired`).
    pub expires_in: Option<Duration>,
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
                    store: OnceLock::new(),
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

    /// Attaches the durable store (once, at startup): record changes are persisted and
    /// messages for offline users are stored.
    pub fn attach_store(&self, store: StoreHandle) {
        self.inner.records.persist_to(store.record_sink());
        let _ = self.inner.wiring.store.set(store);
    }

    /// The store, when one is attached.
    pub fn store(&self) -> Option<&StoreHandle> {
        self.inner.wiring.store.get()
    }

    /// Whether a message for an offline user is stored: ACK-requested ones always are,
    /// plain ones when `store.store_plain` is set.
    pub fn storable(&self, envelope: &Envelope) -> bool {
        self.store().is_some() && (envelope.require_ack || self.inner.config.store.store_plain)
    }

    /// Stores `envelope` for each offline user; resolves once durable. `None` when nothing
    /// is to be stored.
    pub fn store_offline(
        &self,
        users: &[UserId],
        envelope: &Envelope,
    ) -> Option<impl std::future::Future<Output = Result<(), StoreError>> + 'static> {
        if users.is_empty() || !self.storable(envelope) {
            return None;
        }
        let store = self.store()?.clone();
        let now = now_ms();
        let expires = now.saturating_add(self.inner.config.store.ttl_ms);
        let items = users
            .iter()
            .map(|u| OfflineItem {
                user_id: u.clone(),
                envelope: envelope.clone(),
                stored_ms: now,
                expires_ms: expires,
            })
            .collect();
        self.inner
            .records
            .update(&envelope.id, |r| r.stored_offline = true);
        Some(async move { store.enqueue(items).await })
    }

    /// Tells the failure handlers that storing `envelope` for `users` failed.
    pub fn report_store_error(&self, envelope: &Envelope, users: &[UserId], err: &StoreError) {
        log::error!(
            "cannot store message id={} for offline users: {err}",
            envelope.id
        );
        let envelope = Arc::new(envelope.clone());
        let failures = users
            .iter()
            .map(|u| {
                failure(
                    FailureKind::Internal,
                    &envelope,
                    Some(u.clone()),
                    None,
                    format!("offline store failed: {err}"),
                )
            })
            .collect();
        self.report(failures);
    }

    /// Pushes a newly connected session's stored messages into its inbox, oldest first,
    /// tracking acks for ACK-requested ones (removed from the store when acked) and
    /// removing plain ones once queued.
    pub(crate) fn deliver_stored(
        &self,
        user: &UserId,
        client_id: &ClientId,
        handle: &crate::hub::SessionHandle,
        items: Vec<OfflineItem>,
    ) {
        let mut delivered_plain = Vec::new();
        let mut failed = Vec::new();
        for item in items {
            let envelope = Arc::new(item.envelope);
            let frame = OutboundFrame::new(envelope.clone(), Source::Offline);
            if let Err(e) = handle.inbox.push_app(frame) {
                if matches!(e, crate::session::PushError::Full(_)) {
                    handle.addr.do_send(crate::session::QueueOverflowed);
                }
                // Still in the store: it comes again on the next connection.
                failed.push(envelope.id.clone());
                break;
            }
            if !envelope.require_ack {
                delivered_plain.push(envelope.id.clone());
                continue;
            }
            let timeout = Duration::from_millis(self.inner.config.ack.ack_timeout_ms);
            let known = self.inner.records.update(&envelope.id, |r| {
                r.start_attempt();
                r.status = MessageStatus::Delivered;
                r.stored_offline = true;
                if !r.pending_acks.contains(user) {
                    r.pending_acks.push(user.clone());
                }
                r.ack_deadline_ms = Some(now_ms() + r.ack_timeout_ms);
            });
            if known.is_none() {
                let mut r = MessageRecord::new(
                    Envelope::clone(&envelope),
                    RecordTarget::User(user.clone()),
                    true,
                    timeout,
                );
                r.max_retries = self.inner.config.retry.max_retries;
                r.stored_offline = true;
                r.start_attempt();
                r.status = MessageStatus::Delivered;
                r.pending_acks.push(user.clone());
                r.ack_deadline_ms = Some(now_ms() + r.ack_timeout_ms);
                self.inner.records.insert(r);
            }
            if let Some(ack) = self.ack_tracker() {
                ack.do_send(TrackAck {
                    id: envelope.id.clone(),
                    user_id: user.clone(),
                    client_ids: vec![client_id.clone()],
                    timeout,
                });
            }
        }
        if !failed.is_empty() {
            log::warn!("offline delivery to client_id={client_id} stopped: its queue is full");
        }
        if let (Some(store), false) = (self.store().cloned(), delivered_plain.is_empty()) {
            let user = user.clone();
            actix_rt::spawn(async move {
                if let Err(e) = store.remove(user.clone(), delivered_plain).await {
                    log::error!("cannot remove delivered offline messages of user_id={user}: {e}");
                }
            });
        }
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
            expires_in: None,
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
        record.expires_at_ms = options
            .expires_in
            .map(|d| now_ms().saturating_add(d.as_millis() as u64));
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

/// Failures for frames a session was handed but never wrote (one place for the three paths
/// that find them: the hub closing a session, the session deregistering, the writer failing).
pub(crate) fn unwritten_failures(
    frames: Vec<OutboundFrame>,
    kind: FailureKind,
    user_id: &crate::protocol::UserId,
    client_id: &ClientId,
) -> Vec<DeliveryFailed> {
    let detail = match kind {
        FailureKind::QueueFull => "dropped from an overflowed outbound queue",
        FailureKind::WriteTimeout => "socket write made no progress",
        _ => "session closed before the frame was written",
    };
    frames
        .iter()
        .map(|f| {
            failure(
                kind,
                f.envelope(),
                Some(user_id.clone()),
                Some(client_id.clone()),
                detail,
            )
        })
        .collect()
}

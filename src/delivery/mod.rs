//! The one delivery path and the owner of every message's life.
//!
//! [`Reliability::send`] routes a message, records it (when tracked), reports what missed,
//! and stores it for offline recipients; the hub, sessions, the HTTP API, retries and
//! delayed messages all call it. Every change to a record goes through the pure state
//! machine in [`crate::model::lifecycle`]; [`Reliability::execute`] carries out the actions it
//! returns (arm an ack deadline, schedule a resend, store a copy, remove a stored copy, tell
//! the handlers).
//!
//! The supervision actors ([`crate::supervision`]) own the timers (one deadline queue each)
//! and the failure classification; they reach this layer, never a session.

mod book;
mod cluster;
mod deadlines;
mod notify;
mod offline;
mod policy;
mod tuning;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix::prelude::*;

pub use crate::model::DeliveryStats;
pub use book::Records;
pub use deadlines::{DeadlineAdded, DeadlineQueue, EarliestTimer};
pub(crate) use notify::notify;
pub use policy::{FailurePolicy, RetryPolicy, Verdict};

use crate::config::Config;
use crate::error::FailureKind;
use crate::model::lifecycle::{self, Action, Routed};
use crate::model::{
    failure, now_ms, DeliveriesFailed, DeliveryFailed, MessageKey, MessageRecord, RecordTarget,
    RouteReport, Target,
};
use crate::protocol::{ClientId, Envelope, MessageId, UserId};
use crate::routing::Router;
use crate::store::{OfflineItem, StoreError, StoreHandle};

/// An ack deadline: `(message, user, attempt)`.
pub type AckDue = (MessageKey, UserId, u32);
/// A scheduled resend: `(message, user)`.
pub type RetryDue = (MessageKey, UserId);

/// A future that resolves once offline copies are durable.
pub type Durable = Pin<Box<dyn Future<Output = Result<(), StoreError>> + 'static>>;

struct Wiring {
    store: OnceLock<StoreHandle>,
    classifier: OnceLock<Recipient<DeliveriesFailed>>,
}

struct Inner {
    router: Router,
    records: Records,
    tuning: tuning::Tuning,
    wiring: Wiring,
    acks: DeadlineQueue<AckDue>,
    retries: DeadlineQueue<RetryDue>,
    stopping: AtomicBool,
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

/// What one send did.
pub struct Sent {
    /// Routing to live sessions.
    pub report: RouteReport,
    /// Offline users a copy is being stored for.
    pub stored_for: Vec<UserId>,
    /// Resolves once those copies are durable (`None`: nothing to store).
    pub durable: Option<Durable>,
    /// The hub took responsibility (before any copy is durable): the frame reached a
    /// session or the target named nobody who missed it, or the message is tracked and
    /// storable and only missed sessions that were closing (it is resent or stored).
    pub accepted: bool,
}

/// What an ack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// The delivery was confirmed.
    Confirmed(MessageKey),
    /// Nothing of this user was awaited (duplicate, late or unknown): harmless.
    Ignored,
    /// Several senders' messages with this id await the user's ack: nothing confirmed.
    Ambiguous(Vec<UserId>),
}

/// The delivery layer: the record book, the deadline queues and the one delivery path.
/// Cheap to clone.
#[derive(Clone)]
pub struct Reliability {
    inner: Arc<Inner>,
}

impl Reliability {
    /// The layer, without its actors yet (the hub starts them).
    pub fn new(router: Router, records: Records, config: Arc<Config>) -> Self {
        Reliability {
            inner: Arc::new(Inner {
                router,
                records,
                tuning: tuning::Tuning::new(config),
                wiring: Wiring {
                    store: OnceLock::new(),
                    classifier: OnceLock::new(),
                },
                acks: DeadlineQueue::default(),
                retries: DeadlineQueue::default(),
                stopping: AtomicBool::new(false),
            }),
        }
    }

    /// Where failures go to be classified (set once, by the hub).
    pub(crate) fn set_classifier(&self, classifier: Recipient<DeliveriesFailed>) {
        if self.inner.wiring.classifier.set(classifier).is_err() {
            log::warn!("delivery: a second failure classifier was ignored");
        }
    }

    /// Attaches the durable store (once, at startup).
    pub(crate) fn attach_store(&self, store: StoreHandle) {
        self.inner.records.persist_to(store.records_changed());
        if self.inner.wiring.store.set(store).is_err() {
            log::warn!("delivery: a second store was ignored");
        }
    }

    /// The store, when one is attached.
    pub fn store(&self) -> Option<&StoreHandle> {
        self.inner.wiring.store.get()
    }

    /// The message records.
    pub fn records(&self) -> &Records {
        &self.inner.records
    }

    /// The configuration in force (a snapshot; see [`Reliability::live_config`]).
    pub fn config(&self) -> Arc<Config> {
        self.inner.tuning.live.get()
    }

    /// The live configuration handle shared with the hub, its sessions and the server.
    pub fn live_config(&self) -> &crate::live_config::LiveConfig {
        &self.inner.tuning.live
    }

    /// Puts `config` in force: new messages use its ACK timeout, retries, offline settings.
    pub(crate) fn apply_config(&self, config: Arc<Config>) {
        self.inner.tuning.apply(config);
    }

    pub(crate) fn router(&self) -> &Router {
        &self.inner.router
    }

    /// Ack deadlines (owned by the ack tracker).
    pub fn ack_deadlines(&self) -> &DeadlineQueue<AckDue> {
        &self.inner.acks
    }

    /// Scheduled resends (owned by the retry actor).
    pub fn retry_deadlines(&self) -> &DeadlineQueue<RetryDue> {
        &self.inner.retries
    }

    /// Whether the server is shutting down.
    pub fn stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }

    /// Whether a message for an offline user is stored: ACK-requested ones always are,
    /// plain ones when `store.store_plain` is set.
    pub fn storable(&self, envelope: &Envelope) -> bool {
        self.store().is_some() && (envelope.require_ack || self.inner.tuning.store_plain())
    }

    /// Options from the configuration, with or without acks.
    pub fn default_options(&self, require_ack: bool) -> TrackOptions {
        let t = &self.inner.tuning;
        TrackOptions {
            require_ack,
            retry_on_failure: false,
            ack_timeout: Duration::from_millis(t.ack_timeout_ms()),
            max_retries: t.max_retries(),
            expires_in: None,
        }
    }

    /// Hands failures to the classifier (never dropped silently: an error is logged when
    /// it is not running).
    pub fn report(&self, failures: Vec<DeliveryFailed>) {
        if failures.is_empty() {
            return;
        }
        let metrics = &self.router().counters().metrics;
        for f in &failures {
            metrics.failed(f.kind);
        }
        match self.inner.wiring.classifier.get() {
            Some(c) if c.connected() => c.do_send(DeliveriesFailed { failures }),
            _ => {
                for f in &failures {
                    log::error!(
                        "failure classifier not running; unclassified failure id={} from={} user={:?}: {}",
                        f.envelope.id,
                        f.envelope.from,
                        f.user_id.as_ref().map(|u| u.as_str()),
                        f.kind
                    );
                }
            }
        }
    }

    /// The one delivery path: routes `envelope` to `target` (skipping `exclude`), records it
    /// when `track` is set, reports what missed, and stores it for offline recipients.
    pub fn send(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
        track: Option<TrackOptions>,
        tags: Vec<String>,
    ) -> Sent {
        let Some(options) = track else {
            return self.send_untracked(target, envelope, exclude);
        };
        let key = MessageKey::of(&envelope);
        // The book stays locked from routing to the record's insertion: an ack racing in
        // from the recipient's session (another worker) waits for the record.
        let mut book = self.inner.records.locked();
        let report = self
            .inner
            .router
            .route_collecting(target, envelope.clone(), exclude);
        let record_target = RecordTarget::of(target).unwrap_or_else(|| {
            RecordTarget::Clients(report.recipients.iter().map(|(_, c)| c.clone()).collect())
        });
        let mut record = MessageRecord::new(
            envelope.clone(),
            record_target,
            options.require_ack,
            options.ack_timeout,
        );
        record.retry_on_failure = options.retry_on_failure;
        record.storable = self.storable(&envelope);
        record.max_retries = options.max_retries;
        record.tags = tags;
        let now = now_ms();
        record.expires_at_ms = options
            .expires_in
            .map(|d| now.saturating_add(d.as_millis() as u64));
        let storable = record.storable;
        let routed = self.routed_of(&report, target, storable);
        let (actions, failures) = lifecycle::on_routed(&mut record, &routed, None, now);
        book.insert(record);
        drop(book);
        let (stored_for, durable) = self.execute_collecting(&key, &envelope, actions);
        self.report(self.to_failures(&envelope, failures));
        let kept = storable
            && !report.unknown_group
            && report.offline_users.is_empty()
            && !report.failed.is_empty();
        Sent {
            accepted: report.accepted() || kept,
            report,
            stored_for,
            durable,
        }
    }

    fn send_untracked(
        &self,
        target: &Target,
        envelope: Arc<Envelope>,
        exclude: Option<&ClientId>,
    ) -> Sent {
        let report = self.inner.router.route(target, envelope.clone(), exclude);
        self.report(report.failures(&envelope));
        let users = report.offline_users.clone();
        let durable = (!users.is_empty() && self.storable(&envelope))
            .then(|| Box::pin(self.store_reported(&envelope, users.clone(), None)) as Durable);
        let stored_for = if durable.is_some() { users } else { Vec::new() };
        Sent {
            accepted: report.accepted(),
            report,
            stored_for,
            durable,
        }
    }

    /// The per-user view of a routing report, as the state machine takes it.
    fn routed_of(&self, report: &RouteReport, target: &Target, storable: bool) -> Routed {
        let one_client = matches!(target, Target::Client(_));
        let mut reached: Vec<(UserId, Option<ClientId>)> = report
            .recipients
            .iter()
            .map(|(u, c)| (u.clone(), one_client.then(|| c.clone())))
            .collect();
        reached.sort_by(|a, b| a.0.cmp(&b.0));
        reached.dedup_by(|a, b| a.0 == b.0);
        let failed = report
            .failed
            .iter()
            .filter(|f| {
                reached
                    .binary_search_by(|(u, _)| u.cmp(&f.user_id))
                    .is_err()
            })
            .map(|f| (f.user_id.clone(), f.client_id.clone(), f.kind))
            .collect();
        Routed {
            reached,
            offline: report.offline_users.clone(),
            failed,
            unknown_group: report.unknown_group,
            store_offline_now: storable && !self.inner.tuning.offline_retryable(),
        }
    }

    fn to_failures(
        &self,
        envelope: &Arc<Envelope>,
        failures: Vec<lifecycle::Failure>,
    ) -> Vec<DeliveryFailed> {
        failures
            .into_iter()
            .map(|f| f.into_message(envelope))
            .collect()
    }

    /// Carries out a transition's actions. Copies to store are committed in the background;
    /// a failure to store reaches the handlers.
    pub fn execute(&self, key: &MessageKey, envelope: &Arc<Envelope>, actions: Vec<Action>) {
        let (_, durable) = self.execute_collecting(key, envelope, actions);
        if let Some(durable) = durable {
            actix_rt::spawn(async move {
                // Errors were handled inside (record updated, handlers told).
                let _ = durable.await;
            });
        }
    }

    fn execute_collecting(
        &self,
        key: &MessageKey,
        envelope: &Arc<Envelope>,
        actions: Vec<Action>,
    ) -> (Vec<UserId>, Option<Durable>) {
        let mut store_for = Vec::new();
        for a in actions {
            match a {
                Action::AwaitAck {
                    user,
                    attempt,
                    due_ms,
                } => self.inner.acks.push(due_ms, (key.clone(), user, attempt)),
                Action::ScheduleRetry { user, due_ms, .. } => {
                    self.router().counters().metrics.retried();
                    self.inner.retries.push(due_ms, (key.clone(), user))
                }
                Action::Resend { user } => self.resend(key, &user),
                Action::ResendTarget => self.reroute(key, None),
                Action::Store { user, redeliver } => store_for.push((user, redeliver)),
                Action::Unstore { user } => self.unstore(user, key.clone()),
                Action::Notify(n) => notify(self.router(), envelope, &n),
            }
        }
        if store_for.is_empty() {
            return (Vec::new(), None);
        }
        let users: Vec<UserId> = store_for.iter().map(|(u, _)| u.clone()).collect();
        let back: Vec<UserId> = store_for
            .into_iter()
            .filter_map(|(u, r)| r.then_some(u))
            .collect();
        let durable = self.store_tracked(key, envelope, users.clone(), back);
        (users, Some(durable))
    }

    /// Stores copies of a tracked message; on failure the recipients are given up and the
    /// handlers told; once stored, users that are online meanwhile get it at once.
    fn store_tracked(
        &self,
        key: &MessageKey,
        envelope: &Arc<Envelope>,
        users: Vec<UserId>,
        redeliver: Vec<UserId>,
    ) -> Durable {
        // The record is settled (the copies are its outcome) and usually never written yet:
        // the store keeps it with the first copy, one write for both.
        let record = self.inner.records.take_for_copy(key);
        let stored = self.store_reported(envelope, users.clone(), record);
        let (rel, key) = (self.clone(), key.clone());
        Box::pin(async move {
            let res = stored.await;
            match &res {
                Ok(()) => {
                    if let Some(remote) = rel.router().remote() {
                        // Cluster mode: a user offline everywhere as far as this node knows
                        // may have connected on another node a moment ago, after its backlog
                        // was read there; that node delivers the copy. (A user known to be
                        // online, who did not ack, gets it on its next connection.)
                        for u in users.iter().filter(|u| !redeliver.contains(u)) {
                            if !rel.stopping() && !rel.router().is_online_anywhere(u) {
                                remote.stored_for(u);
                            }
                        }
                    }
                    for u in &redeliver {
                        if !rel.stopping() && !rel.router().read().is_online(u) {
                            // Online on another node meanwhile: that node delivers it.
                            if let Some(remote) = rel.router().remote() {
                                remote.stored_for(u);
                            }
                            continue;
                        }
                        if !rel.stopping() {
                            // The user came back while the copy was being written.
                            let again = rel
                                .records()
                                .update(&key, |r| lifecycle::redeliver_stored(r, u))
                                .unwrap_or(false);
                            if again {
                                rel.resend(&key, u);
                            }
                        }
                    }
                }
                Err(e) => {
                    for u in &users {
                        rel.records()
                            .update(&key, |r| lifecycle::on_store_failed(r, u, &e.to_string()));
                    }
                }
            }
            res
        })
    }

    /// Stores `envelope` for each of `users`; resolves once durable. A failure reaches the
    /// handlers.
    fn store_reported(
        &self,
        envelope: &Arc<Envelope>,
        users: Vec<UserId>,
        record: Option<Arc<MessageRecord>>,
    ) -> impl Future<Output = Result<(), StoreError>> + 'static {
        let stored = self.store_copies(envelope, &users, record);
        let (rel, envelope) = (self.clone(), envelope.clone());
        async move {
            let res = stored.await;
            if let Err(e) = &res {
                rel.report_store_error(&envelope, &users, e);
            }
            res
        }
    }

    /// Stores `envelope` for each of `users` (queued now), the first copy carrying `record`;
    /// resolves once durable.
    fn store_copies(
        &self,
        envelope: &Arc<Envelope>,
        users: &[UserId],
        mut record: Option<Arc<MessageRecord>>,
    ) -> impl Future<Output = Result<(), StoreError>> + 'static {
        let store = self.store();
        let now = now_ms();
        let expires = now.saturating_add(self.inner.tuning.ttl_ms());
        let items = users
            .iter()
            .map(|u| OfflineItem {
                user_id: u.clone(),
                envelope: envelope.clone(),
                stored_ms: now,
                expires_ms: expires,
                seq: 0,
                record: record.take(),
            })
            .collect();
        // Queued now; only the answer is awaited.
        let stored = store.map(|s| s.enqueue(items));
        async move {
            match stored {
                Some(stored) => stored.await,
                None => Err(StoreError::Unavailable),
            }
        }
    }

    fn unstore(&self, user: UserId, key: MessageKey) {
        let Some(store) = self.store().cloned() else {
            return;
        };
        actix_rt::spawn(async move {
            if let Err(e) = store.remove(user.clone(), vec![key.clone()]).await {
                log::error!("cannot remove acked stored message {key} of user_id={user}: {e}");
            }
        });
    }

    /// Tells the failure handlers that storing `envelope` for `users` failed.
    pub fn report_store_error(&self, envelope: &Arc<Envelope>, users: &[UserId], err: &StoreError) {
        log::error!(
            "cannot store message id={} from={} for offline users: {err}",
            envelope.id,
            envelope.from
        );
        let failures = users
            .iter()
            .map(|u| {
                failure(
                    FailureKind::Internal,
                    envelope,
                    Some(u.clone()),
                    None,
                    format!("offline store failed: {err}"),
                )
            })
            .collect();
        self.report(failures);
    }

    /// Resends a record's message to one recipient (a retry, or a stored copy for a user who
    /// is back), exactly where it was meant to go.
    pub(crate) fn resend(&self, key: &MessageKey, user: &UserId) {
        self.reroute(key, Some(user));
    }

    /// Routes a record's message again: to one recipient (its session, for a `client`
    /// target), or to the record's whole target.
    fn reroute(&self, key: &MessageKey, user: Option<&UserId>) {
        // Held from reading the record to recording the outcome (see `send`).
        let mut book = self.inner.records.locked();
        let Some((envelope, target, storable)) = book.read(key, |r| {
            let target = match user {
                Some(u) => match r.recipient(u).and_then(|d| d.client_id.clone()) {
                    Some(c) => Target::Client(c),
                    None => Target::User(u.clone()),
                },
                None => r.target.to_target(),
            };
            (r.envelope.clone(), target, r.storable)
        }) else {
            return;
        };
        log::debug!("resending {key} to {target:?}");
        let report = self
            .inner
            .router
            .route_collecting(&target, envelope.clone(), None);
        let mut routed = self.routed_of(&report, &target, storable);
        if let Some(u) = user {
            // A resend to a single session that is gone: the user is offline for it.
            if matches!(target, Target::Client(_))
                && report.delivered == 0
                && routed.failed.is_empty()
            {
                routed.offline.push(u.clone());
            }
            // A user missing at a resend is a failure to classify, not a first miss.
            routed.store_offline_now = false;
        }
        let now = now_ms();
        let Some((actions, failures)) =
            book.update(key, |r| lifecycle::on_routed(r, &routed, user, now))
        else {
            return;
        };
        drop(book);
        self.execute(key, &envelope, actions);
        self.report(self.to_failures(&envelope, failures));
    }

    /// A client acknowledged `id` (from `from`, when it said), for a record of this node
    /// (never forwarded to other nodes; see [`Reliability::ack`]).
    pub fn ack_here(&self, user: &UserId, id: &MessageId, from: Option<&UserId>) -> AckOutcome {
        let key = match from {
            Some(f) => MessageKey::new(f.clone(), id.clone()),
            None => {
                let mut keys = self.inner.records.awaiting(user, Some(id));
                if keys.len() > 1 {
                    return AckOutcome::Ambiguous(keys.into_iter().map(|k| k.from).collect());
                }
                match keys.pop() {
                    Some(k) => k,
                    None => return AckOutcome::Ignored,
                }
            }
        };
        let now = now_ms();
        let out = self.inner.records.update(&key, |r| {
            let sent_ms = (r.attempts.iter().rev())
                .find(|a| a.user_id.as_ref().is_none_or(|u| u == user))
                .map(|a| a.started_ms);
            lifecycle::on_ack(r, user, now).map(|a| (a, r.envelope.clone(), sent_ms))
        });
        let Some(Some((actions, envelope, sent_ms))) = out else {
            return AckOutcome::Ignored;
        };
        if let Some(sent) = sent_ms {
            let latency_us = now.saturating_sub(sent).saturating_mul(1000);
            self.router()
                .counters()
                .metrics
                .ack_latency
                .observe_us(latency_us);
        }
        self.execute(&key, &envelope, actions);
        AckOutcome::Confirmed(key)
    }

    /// The user's last session is gone: what awaited its ack is stored for its next
    /// connection (a resend would find nobody).
    pub(crate) fn user_gone(&self, user: &UserId, client: &ClientId) {
        let now = now_ms();
        for key in self.inner.records.awaiting(user, None) {
            let Some((actions, envelope)) = self.inner.records.update(&key, |r| {
                let a = lifecycle::on_user_gone(
                    r,
                    user,
                    Some(client),
                    now,
                    "connection lost with the delivery awaiting its ack",
                );
                (a, r.envelope.clone())
            }) else {
                continue;
            };
            self.execute(&key, &envelope, actions);
        }
    }

    /// Graceful shutdown: nothing is resent any more, every delivery in flight goes to the
    /// store for its recipients' next connection, and the records are written; resolves
    /// once durable.
    pub fn persist_in_flight(&self) -> Durable {
        self.inner.stopping.store(true, Ordering::Release);
        self.store_in_flight()
    }

    /// Records loaded at startup that were in flight: their sessions did not survive, so
    /// their deliveries are stored for the recipients' next connection.
    pub(crate) fn replay_after_restart(&self) {
        let durable = self.store_in_flight();
        actix_rt::spawn(async move {
            if let Err(e) = durable.await {
                log::error!("startup: in-flight deliveries could not be stored: {e}");
            }
        });
    }

    fn store_in_flight(&self) -> Durable {
        self.store_in_flight_of(self.inner.records.in_flight_keys())
    }

    pub(crate) fn deliver_backlog(
        &self,
        user: UserId,
        client: ClientId,
        inbox: Arc<crate::routing::Inbox>,
    ) {
        offline::deliver_backlog(self.clone(), user, client, inbox);
    }
}

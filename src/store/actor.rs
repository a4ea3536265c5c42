//! The store as the rest of the crate uses it: a [`StoreHandle`] in front of the store
//! thread ([`super::thread`]), and the [`StoreWriter`] (the group-commit window for changed
//! records, supervised, on the hub's arbiter).
//!
//! Offline items go straight into the store thread's queue ([`Intake`]) from the caller's
//! thread and are committed with the next batch; their future resolves once the batch is
//! durable. Queries go to the same thread, in the order they were made: each method queues
//! its work when called, not when its future is first polled.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::intake::{Intake, Job, Removal};
use super::thread::{self, Wiring};
use super::{DelayedItem, OfflineItem, Store, StoreError};
use crate::config::StoreConfig;
use crate::metrics::AtomicHistogram;
use crate::model::{DeliveriesFailed, MessageKey, MessageRecord};
use crate::protocol::{MessageId, UserId};

/// Where the store pulls changed records from (the record book), so that no snapshot is
/// copied per change and none is lost if the writer restarts.
pub trait RecordSource: Send + Sync + 'static {
    /// Changed records due for writing (`all`: every changed one, at shutdown).
    fn take_changed(&self, now_ms: u64, all: bool) -> Vec<MessageRecord>;
}

/// Records changed: the writer has them pulled after its window.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct RecordsChanged;

/// The group-commit window for changed records: a change arms it, and when it ends the
/// store thread takes the records that are due (with the next batch of offline items, if
/// one waits). Supervised.
pub(crate) struct StoreWriter {
    intake: Arc<Intake>,
    on_restart: Arc<dyn Fn(&'static str) + Send + Sync>,
    window: Duration,
    armed: bool,
}

impl Actor for StoreWriter {
    type Context = Context<Self>;
}

impl Supervised for StoreWriter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("store writer restarting");
        // The window's timer went with the old context; changed records stay in the book.
        self.armed = false;
        (self.on_restart)("store_writer");
    }
}

impl Handler<RecordsChanged> for StoreWriter {
    type Result = ();

    fn handle(&mut self, _: RecordsChanged, ctx: &mut Context<Self>) {
        if self.armed {
            return;
        }
        self.armed = true;
        ctx.run_later(self.window, |act, _| {
            act.armed = false;
            act.intake.records_due();
        });
    }
}

/// Closes the store thread's queue when the last handle goes.
struct Alive(Arc<Intake>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The store as the hub and the delivery layer use it. Cheap to clone.
#[derive(Clone)]
pub struct StoreHandle {
    writer: Addr<StoreWriter>,
    intake: Arc<Intake>,
    _alive: Arc<Alive>,
}

impl StoreHandle {
    /// Starts the store thread and the supervised writer (here). `failures` hears about
    /// messages dropped by the per-user cap; `on_restart` about restarts of either.
    pub fn start(
        store: Box<dyn Store>,
        config: &StoreConfig,
        source: Arc<dyn RecordSource>,
        failures: Recipient<DeliveriesFailed>,
        on_restart: Arc<dyn Fn(&'static str) + Send + Sync>,
        commit_latency: Arc<AtomicHistogram>,
    ) -> Self {
        let intake = Arc::new(Intake::new(config.max_batch));
        thread::spawn(
            store,
            Wiring {
                intake: intake.clone(),
                source,
                failures,
                on_restart: on_restart.clone(),
                cap: config.per_user_cap.max(1),
                commit_latency,
            },
        );
        let writer = StoreWriter {
            window: Duration::from_millis(config.batch_window_ms),
            intake: intake.clone(),
            on_restart,
            armed: false,
        };
        let writer = Supervisor::start(move |_| writer);
        StoreHandle {
            writer,
            _alive: Arc::new(Alive(intake.clone())),
            intake,
        }
    }

    /// Where record changes are announced.
    pub fn records_changed(&self) -> Recipient<RecordsChanged> {
        self.writer.clone().recipient()
    }

    /// Runs `f` on the store thread, after what is queued before it.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut thread::Backend) -> Result<R, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<R, StoreError>> + 'static {
        let (tx, rx) = oneshot::channel();
        self.queue(Job::Run(Box::new(move |backend| {
            if tx.send(f(backend)).is_err() {
                log::debug!("store query answered with no caller waiting");
            }
        })));
        // Dropped unanswered (not queued, or the thread lost it): `Unavailable`.
        async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) }
    }

    fn queue(&self, job: Job) {
        if !self.intake.job(job) {
            log::error!("store thread not running: a store operation fails");
        }
    }

    /// Stores items (queued at once, committed with the next batch); the future resolves
    /// once they are durable.
    pub fn enqueue(
        &self,
        items: Vec<OfflineItem>,
    ) -> impl Future<Output = Result<(), StoreError>> + 'static {
        self.intake.push(items)
    }

    /// Writes every changed record and pending item now (shutdown).
    pub fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + 'static {
        self.call(|b| b.flush())
    }

    /// A user's queued items after `after_seq`, oldest first.
    pub fn fetch(
        &self,
        user_id: UserId,
        after_seq: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OfflineItem>, StoreError>> + 'static {
        let (done, rx) = oneshot::channel();
        self.queue(Job::Fetch {
            user: user_id,
            after_seq,
            limit,
            done,
        });
        async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) }
    }

    /// Removes delivered items (with the other removals waiting, in one transaction).
    pub fn remove(
        &self,
        user_id: UserId,
        keys: Vec<MessageKey>,
    ) -> impl Future<Output = Result<usize, StoreError>> + 'static {
        self.remove_through(user_id, keys, None)
    }

    /// Removes delivered items whose queue positions are at most `through_seq`: a later
    /// fetch of the user's queue after that position need not wait for it.
    pub(crate) fn remove_through(
        &self,
        user: UserId,
        keys: Vec<MessageKey>,
        through_seq: Option<u64>,
    ) -> impl Future<Output = Result<usize, StoreError>> + 'static {
        let (done, rx) = oneshot::channel();
        self.queue(Job::Remove(Removal {
            user,
            keys,
            through_seq,
            done,
        }));
        async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) }
    }

    /// Queued items of every user.
    pub fn offline_total(&self) -> impl Future<Output = Result<usize, StoreError>> + 'static {
        self.call(|b| b.with(|s| s.offline_total()))
    }

    /// How many items a user has queued.
    pub fn count(
        &self,
        user_id: UserId,
    ) -> impl Future<Output = Result<usize, StoreError>> + 'static {
        self.call(move |b| b.with(|s| s.offline_count(&user_id)))
    }

    /// One stored record.
    pub fn get_record(
        &self,
        key: MessageKey,
    ) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + 'static {
        self.call(move |b| b.with(|s| s.get_record(&key)))
    }

    /// The stored records with this id, from any sender.
    pub fn find_records(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<Vec<MessageRecord>, StoreError>> + 'static {
        self.call(move |b| b.with(|s| s.find_records(&id)))
    }

    /// Keeps a delayed message; resolves once durable.
    pub fn save_delayed(
        &self,
        item: DelayedItem,
    ) -> impl Future<Output = Result<(), StoreError>> + 'static {
        self.call(move |b| b.with(|s| s.save_delayed(&item)))
    }

    /// Forgets a delayed message that was sent.
    pub fn remove_delayed(
        &self,
        key: MessageKey,
    ) -> impl Future<Output = Result<(), StoreError>> + 'static {
        self.call(move |b| b.with(|s| s.remove_delayed(&key)))
    }

    /// Every delayed message.
    pub fn load_delayed(
        &self,
    ) -> impl Future<Output = Result<Vec<DelayedItem>, StoreError>> + 'static {
        self.call(|b| b.with(|s| s.load_delayed()))
    }

    /// Retention cleanup.
    pub fn purge(
        &self,
        now_ms: u64,
        records_before_ms: u64,
    ) -> impl Future<Output = Result<usize, StoreError>> + 'static {
        self.call(move |b| b.with(|s| s.purge(now_ms, records_before_ms)))
    }
}

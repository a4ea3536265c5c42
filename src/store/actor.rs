//! The store's actors: [`StoreActor`] (blocking backend on a `SyncArbiter` thread) and
//! [`StoreWriter`] (group commit on the hub's arbiter, supervised), behind a [`StoreHandle`].
//!
//! A store actor that panics is restarted by its `SyncArbiter` on the same backend, reopened
//! ([`Store::reopener`]); if it cannot be reopened, every operation fails with
//! [`StoreError::Unavailable`]: durability never switches quietly to memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{BatchOutcome, DelayedItem, OfflineItem, Reopen, Store, StoreError};
use crate::config::StoreConfig;
use crate::error::FailureKind;
use crate::metrics::AtomicHistogram;
use crate::model::{failure, now_ms, DeliveriesFailed, MessageKey, MessageRecord};
use crate::protocol::{MessageId, UserId};

/// Where the writer pulls changed records from (the record book), so that no snapshot is
/// copied per change and none is lost if the writer restarts.
pub trait RecordSource: Send + Sync + 'static {
    /// Changed records due for writing (`all`: every changed one, at shutdown).
    fn take_changed(&self, now_ms: u64, all: bool) -> Vec<MessageRecord>;
}

/// Records changed: the writer pulls them after its window.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct RecordsChanged;

/// Writes every changed record and pending item now; answers once committed.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "Result<(), StoreError>")]
pub(crate) struct FlushRecords;

/// Owns the backend; runs on its own thread.
pub(crate) struct StoreActor {
    store: Option<Box<dyn Store>>,
    /// How long each commit takes (`wsc_store_commit_seconds`).
    commit_latency: Arc<AtomicHistogram>,
}

impl StoreActor {
    /// Wraps a backend.
    pub fn new(store: Box<dyn Store>, commit_latency: Arc<AtomicHistogram>) -> Self {
        StoreActor {
            store: Some(store),
            commit_latency,
        }
    }

    /// An actor whose backend could not be reopened: every operation fails.
    fn unavailable(commit_latency: Arc<AtomicHistogram>) -> Self {
        StoreActor {
            store: None,
            commit_latency,
        }
    }

    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match self.store.as_mut() {
            Some(s) => f(s.as_mut()),
            None => Err(StoreError::Unavailable),
        }
    }
}

impl Actor for StoreActor {
    type Context = SyncContext<Self>;
}

/// Commits offline items and record snapshots in one transaction.
#[derive(Message)]
#[rtype(result = "Result<BatchOutcome, StoreError>")]
pub(crate) struct Commit {
    items: Vec<OfflineItem>,
    records: Vec<MessageRecord>,
    cap: usize,
}

/// One stored record.
#[derive(Message)]
#[rtype(result = "Result<Option<MessageRecord>, StoreError>")]
pub(crate) struct GetStoredRecord {
    /// The message.
    pub key: MessageKey,
}

#[derive(Message)]
#[rtype(result = "Result<Vec<MessageRecord>, StoreError>")]
struct FindStoredRecords(MessageId);

#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
struct SaveDelayed(DelayedItem);

#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
struct RemoveDelayed(MessageKey);

#[derive(Message)]
#[rtype(result = "Result<Vec<DelayedItem>, StoreError>")]
struct LoadDelayed;

/// Reads a user's queue after a position, oldest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<OfflineItem>, StoreError>")]
pub(crate) struct FetchOffline {
    /// The user.
    pub user_id: UserId,
    /// Items after this queue position.
    pub after_seq: u64,
    /// At most this many.
    pub limit: usize,
}

/// Removes delivered items.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub(crate) struct RemoveOffline {
    /// The user.
    pub user_id: UserId,
    /// The delivered messages.
    pub keys: Vec<MessageKey>,
}

/// Retention: drops expired items and old settled records.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub(crate) struct PurgeExpired {
    /// Now, in epoch ms.
    pub now_ms: u64,
    /// Settled records created before this go.
    pub records_before_ms: u64,
}

/// Counts a user's queued items.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub(crate) struct CountOffline {
    /// The user.
    pub user_id: UserId,
}

impl Handler<Commit> for StoreActor {
    type Result = Result<BatchOutcome, StoreError>;
    fn handle(&mut self, m: Commit, _: &mut SyncContext<Self>) -> Self::Result {
        let started = std::time::Instant::now();
        let out = self.with(|s| s.commit(&m.items, &m.records, m.cap));
        self.commit_latency
            .observe_us(started.elapsed().as_micros() as u64);
        out
    }
}

impl Handler<FetchOffline> for StoreActor {
    type Result = Result<Vec<OfflineItem>, StoreError>;
    fn handle(&mut self, m: FetchOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.fetch_offline(&m.user_id, m.after_seq, m.limit))
    }
}

impl Handler<RemoveOffline> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, m: RemoveOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.remove_offline(&m.user_id, &m.keys))
    }
}

impl Handler<PurgeExpired> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, m: PurgeExpired, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.purge(m.now_ms, m.records_before_ms))
    }
}

/// Counts the queued items of every user.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub(crate) struct CountAllOffline;

impl Handler<CountAllOffline> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, _: CountAllOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.offline_total())
    }
}

impl Handler<CountOffline> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, m: CountOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.offline_count(&m.user_id))
    }
}

impl Handler<GetStoredRecord> for StoreActor {
    type Result = Result<Option<MessageRecord>, StoreError>;
    fn handle(&mut self, m: GetStoredRecord, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.get_record(&m.key))
    }
}

impl Handler<FindStoredRecords> for StoreActor {
    type Result = Result<Vec<MessageRecord>, StoreError>;
    fn handle(&mut self, m: FindStoredRecords, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.find_records(&m.0))
    }
}

impl Handler<SaveDelayed> for StoreActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, m: SaveDelayed, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.save_delayed(&m.0))
    }
}

impl Handler<RemoveDelayed> for StoreActor {
    type Result = Result<(), StoreError>;
    fn handle(&mut self, m: RemoveDelayed, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.remove_delayed(&m.0))
    }
}

impl Handler<LoadDelayed> for StoreActor {
    type Result = Result<Vec<DelayedItem>, StoreError>;
    fn handle(&mut self, _: LoadDelayed, _: &mut SyncContext<Self>) -> Self::Result {
        self.with(|s| s.load_delayed())
    }
}

/// Stores messages for offline users; answers once they are durable.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub(crate) struct EnqueueOffline {
    /// The items.
    pub items: Vec<OfflineItem>,
}

/// Gathers writes for a short window and commits them together. Supervised: a restart keeps
/// its pending items (the actor object survives) and changed records stay in the book.
///
/// Group commit: at most [`MAX_IN_FLIGHT`] commits are in flight (one running, one queued
/// behind it, so the store thread never waits for this actor). What arrives meanwhile goes
/// in the next transaction, sent the moment one is durable (up to about `max_batch` items
/// each), so under load transactions grow instead of queueing one small commit per window
/// behind the store thread.
pub(crate) struct StoreWriter {
    store: Addr<StoreActor>,
    source: Arc<dyn RecordSource>,
    failures: Recipient<DeliveriesFailed>,
    on_restart: Arc<dyn Fn(&'static str) + Send + Sync>,
    window: Duration,
    max_batch: usize,
    cap: usize,
    items: Vec<OfflineItem>,
    /// Each enqueue's answer, with how many of `items` it added (in order).
    waiters: Vec<(oneshot::Sender<Result<(), StoreError>>, usize)>,
    flush_armed: bool,
    /// Commits sent to the store actor and not answered yet.
    in_flight: usize,
}

/// Commits the writer keeps sent to the store thread at once.
const MAX_IN_FLIGHT: usize = 2;

impl StoreWriter {
    fn arm(&mut self, ctx: &mut Context<Self>) {
        if self.in_flight >= MAX_IN_FLIGHT {
            // The commit in flight takes the next batch with it when it ends.
            return;
        }
        if self.items.len() >= self.max_batch {
            self.flush(false, None, ctx);
        } else if !self.flush_armed {
            self.flush_armed = true;
            ctx.run_later(self.window, |act, ctx| act.flush(false, None, ctx));
        }
    }

    /// The first waiters whose items add up to about `max_batch` (all of them when `all`),
    /// and those items.
    fn take_batch(
        &mut self,
        all: bool,
    ) -> (
        Vec<OfflineItem>,
        Vec<oneshot::Sender<Result<(), StoreError>>>,
    ) {
        let mut n_items = 0;
        let mut n_waiters = 0;
        for (_, n) in &self.waiters {
            if !all && n_items > 0 && n_items + n > self.max_batch {
                break;
            }
            n_items += n;
            n_waiters += 1;
        }
        let waiters = self.waiters.drain(..n_waiters).map(|(w, _)| w).collect();
        let items = if n_items >= self.items.len() {
            std::mem::take(&mut self.items)
        } else {
            self.items.drain(..n_items).collect()
        };
        (items, waiters)
    }

    fn flush(
        &mut self,
        all: bool,
        done: Option<oneshot::Sender<Result<(), StoreError>>>,
        ctx: &mut Context<Self>,
    ) {
        self.flush_armed = false;
        if self.in_flight >= MAX_IN_FLIGHT && done.is_none() {
            return; // a commit in flight flushes again when it ends
        }
        let records = self.source.take_changed(now_ms(), all);
        if self.items.is_empty() && records.is_empty() {
            if let Some(done) = done {
                // The shutdown path waits on this; it is still there.
                let _ = done.send(Ok(()));
            }
            return;
        }
        let (items, mut waiters) = self.take_batch(all);
        waiters.extend(done);
        let n_records = records.len();
        let commit = Commit {
            items,
            records,
            cap: self.cap,
        };
        let failures = self.failures.clone();
        let fut = self.store.send(commit);
        self.in_flight += 1;
        ctx.spawn(
            async move {
                let result = fut.await.unwrap_or(Err(StoreError::Unavailable));
                match result {
                    Ok(outcome) => {
                        for w in waiters {
                            let _ = w.send(Ok(())); // a caller that gave up: stored anyway
                        }
                        if !outcome.dropped.is_empty() {
                            log::warn!(
                                "offline queue cap reached: dropped {} oldest messages",
                                outcome.dropped.len()
                            );
                            let failures_list = outcome
                                .dropped
                                .into_iter()
                                .map(|i| {
                                    failure(
                                        FailureKind::QueueFull,
                                        &i.envelope,
                                        Some(i.user_id),
                                        None,
                                        "offline queue cap reached; oldest message dropped",
                                    )
                                })
                                .collect();
                            if let Err(e) = failures.try_send(DeliveriesFailed {
                                failures: failures_list,
                            }) {
                                log::error!("cannot report dropped offline messages: {e}");
                            }
                        }
                    }
                    Err(e) => {
                        log::error!("store commit failed ({n_records} records): {e}");
                        for w in waiters {
                            let _ = w.send(Err(e.clone())); // a caller that gave up
                        }
                    }
                }
            }
            .into_actor(self)
            .map(|(), act, ctx| {
                act.in_flight = act.in_flight.saturating_sub(1);
                if act.items.len() >= act.max_batch || (act.in_flight == 0 && !act.items.is_empty())
                {
                    // A full batch, or items that waited for the store: send them now.
                    act.flush(false, None, ctx);
                } else {
                    // Records that changed meanwhile wait for the window as usual.
                    act.arm(ctx);
                }
            }),
        );
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;
}

impl Supervised for StoreWriter {
    fn restarting(&mut self, _: &mut Context<Self>) {
        log::warn!("store writer restarting");
        self.flush_armed = false;
        // Commits in flight were dropped with the old context (their callers were told).
        self.in_flight = 0;
        (self.on_restart)("store_writer");
    }
}

impl Handler<EnqueueOffline> for StoreWriter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, m: EnqueueOffline, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiters.push((tx, m.items.len()));
        self.items.extend(m.items);
        self.arm(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) })
    }
}

impl Handler<RecordsChanged> for StoreWriter {
    type Result = ();

    fn handle(&mut self, _: RecordsChanged, ctx: &mut Context<Self>) {
        self.arm(ctx);
    }
}

impl Handler<FlushRecords> for StoreWriter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, _: FlushRecords, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.flush(true, Some(tx), ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) })
    }
}

/// The store as the hub and the delivery layer use it. Cheap to clone.
#[derive(Clone)]
pub struct StoreHandle {
    writer: Addr<StoreWriter>,
    actor: Addr<StoreActor>,
}

impl StoreHandle {
    /// Starts the store actor (on its own thread) and the supervised writer (here).
    /// `failures` hears about messages dropped by the per-user cap; `on_restart` about
    /// restarts of either actor.
    pub fn start(
        store: Box<dyn Store>,
        config: &StoreConfig,
        source: Arc<dyn RecordSource>,
        failures: Recipient<DeliveriesFailed>,
        on_restart: Arc<dyn Fn(&'static str) + Send + Sync>,
        commit_latency: Arc<AtomicHistogram>,
    ) -> Self {
        let reopen: Option<Reopen> = store.reopener();
        let first = Mutex::new(Some(store));
        let starts = AtomicUsize::new(0);
        let restarted = on_restart.clone();
        let actor = SyncArbiter::start(1, move || {
            if starts.fetch_add(1, Ordering::SeqCst) == 0 {
                if let Some(s) = first.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    return StoreActor::new(s, commit_latency.clone());
                }
            }
            restarted("store");
            match reopen.as_ref().map(|f| f()) {
                Some(Ok(s)) => {
                    log::error!("store actor restarted: reopened the same backend");
                    StoreActor::new(s, commit_latency.clone())
                }
                Some(Err(e)) => {
                    log::error!("store actor restarted and cannot reopen its backend: {e}; every store operation now fails");
                    StoreActor::unavailable(commit_latency.clone())
                }
                None => {
                    log::error!("store actor restarted; its backend cannot be reopened: every store operation now fails");
                    StoreActor::unavailable(commit_latency.clone())
                }
            }
        });
        let writer = StoreWriter {
            window: Duration::from_millis(config.batch_window_ms),
            max_batch: config.max_batch.max(1),
            cap: config.per_user_cap.max(1),
            store: actor.clone(),
            source,
            failures,
            on_restart,
            items: Vec::new(),
            waiters: Vec::new(),
            flush_armed: false,
            in_flight: 0,
        };
        let writer = Supervisor::start(move |_| writer);
        StoreHandle { writer, actor }
    }

    /// Where record changes are announced.
    pub fn records_changed(&self) -> Recipient<RecordsChanged> {
        self.writer.clone().recipient()
    }

    /// Stores items; resolves once they are durable.
    pub async fn enqueue(&self, items: Vec<OfflineItem>) -> Result<(), StoreError> {
        self.writer
            .send(EnqueueOffline { items })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Writes every changed record and pending item now (shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writer
            .send(FlushRecords)
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// A user's queued items after `after_seq`, oldest first.
    pub async fn fetch(
        &self,
        user_id: UserId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        self.actor
            .send(FetchOffline {
                user_id,
                after_seq,
                limit,
            })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Removes delivered items.
    pub async fn remove(
        &self,
        user_id: UserId,
        keys: Vec<MessageKey>,
    ) -> Result<usize, StoreError> {
        self.actor
            .send(RemoveOffline { user_id, keys })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Queued items of every user.
    pub async fn offline_total(&self) -> Result<usize, StoreError> {
        self.actor
            .send(CountAllOffline)
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// How many items a user has queued.
    pub async fn count(&self, user_id: UserId) -> Result<usize, StoreError> {
        self.actor
            .send(CountOffline { user_id })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// One stored record.
    pub async fn get_record(&self, key: MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        self.actor
            .send(GetStoredRecord { key })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// The stored records with this id, from any sender.
    pub async fn find_records(&self, id: MessageId) -> Result<Vec<MessageRecord>, StoreError> {
        self.actor
            .send(FindStoredRecords(id))
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Keeps a delayed message; resolves once durable.
    pub async fn save_delayed(&self, item: DelayedItem) -> Result<(), StoreError> {
        self.actor
            .send(SaveDelayed(item))
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Forgets a delayed message that was sent.
    pub async fn remove_delayed(&self, key: MessageKey) -> Result<(), StoreError> {
        self.actor
            .send(RemoveDelayed(key))
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Every delayed message.
    pub async fn load_delayed(&self) -> Result<Vec<DelayedItem>, StoreError> {
        self.actor
            .send(LoadDelayed)
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Retention cleanup.
    pub async fn purge(&self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError> {
        self.actor
            .send(PurgeExpired {
                now_ms,
                records_before_ms,
            })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }
}

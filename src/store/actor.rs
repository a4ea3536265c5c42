//! The store's actors: [`StoreActor`] (blocking backend on a `SyncArbiter` thread) and
//! [`StoreWriter`] (group commit on the hub's arbiter), behind a [`StoreHandle`].

use std::collections::HashMap;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::{BatchOutcome, OfflineItem, Store, StoreError};
use crate::error::FailureKind;
use crate::protocol::{MessageId, UserId};
use crate::supervision::{failure, MessageRecord, Reliability};

/// Owns the backend; runs on its own thread.
pub struct StoreActor {
    store: Box<dyn Store>,
}

impl StoreActor {
    /// Wraps a backend.
    pub fn new(store: Box<dyn Store>) -> Self {
        StoreActor { store }
    }
}

impl Actor for StoreActor {
    type Context = SyncContext<Self>;
}

/// Commits offline items and record snapshots in one transaction.
#[derive(Message)]
#[rtype(result = "Result<BatchOutcome, StoreError>")]
pub struct Commit {
    items: Vec<OfflineItem>,
    records: Vec<MessageRecord>,
    cap: usize,
}

/// Reads a user's queue, oldest first.
#[derive(Message)]
#[rtype(result = "Result<Vec<OfflineItem>, StoreError>")]
pub struct FetchOffline {
    /// The user.
    pub user_id: UserId,
    /// At most this many.
    pub limit: usize,
}

/// Removes delivered items.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct RemoveOffline {
    /// The user.
    pub user_id: UserId,
    /// The delivered messages.
    pub ids: Vec<MessageId>,
}

/// Retention: drops expired items and old settled records.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct PurgeExpired {
    /// Now, in epoch ms.
    pub now_ms: u64,
    /// Settled records created before this go.
    pub records_before_ms: u64,
}

/// Counts a user's queued items.
#[derive(Message)]
#[rtype(result = "Result<usize, StoreError>")]
pub struct CountOffline {
    /// The user.
    pub user_id: UserId,
}

impl Handler<Commit> for StoreActor {
    type Result = Result<BatchOutcome, StoreError>;
    fn handle(&mut self, m: Commit, _: &mut SyncContext<Self>) -> Self::Result {
        self.store.commit(&m.items, &m.records, m.cap)
    }
}

impl Handler<FetchOffline> for StoreActor {
    type Result = Result<Vec<OfflineItem>, StoreError>;
    fn handle(&mut self, m: FetchOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.store.fetch_offline(&m.user_id, m.limit)
    }
}

impl Handler<RemoveOffline> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, m: RemoveOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.store.remove_offline(&m.user_id, &m.ids)
    }
}

impl Handler<PurgeExpired> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, m: PurgeExpired, _: &mut SyncContext<Self>) -> Self::Result {
        self.store.purge(m.now_ms, m.records_before_ms)
    }
}

impl Handler<CountOffline> for StoreActor {
    type Result = Result<usize, StoreError>;
    fn handle(&mut self, m: CountOffline, _: &mut SyncContext<Self>) -> Self::Result {
        self.store.offline_count(&m.user_id)
    }
}

/// Stores messages for offline users; answers once they are durable.
#[derive(Message)]
#[rtype(result = "Result<(), StoreError>")]
pub struct EnqueueOffline {
    /// The items.
    pub items: Vec<OfflineItem>,
}

/// Persists a record snapshot (batched; the latest snapshot of an id wins).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SaveRecord {
    /// The record.
    pub record: MessageRecord,
}

/// Gathers writes for a short window and commits them together.
pub struct StoreWriter {
    store: Addr<StoreActor>,
    rel: Reliability,
    window: Duration,
    max_batch: usize,
    cap: usize,
    items: Vec<OfflineItem>,
    waiters: Vec<(usize, oneshot::Sender<Result<(), StoreError>>)>,
    records: HashMap<MessageId, MessageRecord>,
    flush_armed: bool,
}

impl StoreWriter {
    /// A writer committing to `store`.
    pub fn new(store: Addr<StoreActor>, rel: Reliability) -> Self {
        let c = &rel.config().store;
        StoreWriter {
            window: Duration::from_millis(c.batch_window_ms),
            max_batch: c.max_batch.max(1),
            cap: c.per_user_cap.max(1),
            store,
            rel,
            items: Vec::new(),
            waiters: Vec::new(),
            records: HashMap::new(),
            flush_armed: false,
        }
    }

    fn arm(&mut self, ctx: &mut Context<Self>) {
        if self.items.len() + self.records.len() >= self.max_batch {
            self.flush(ctx);
        } else if !self.flush_armed {
            self.flush_armed = true;
            ctx.run_later(self.window, |act, ctx| act.flush(ctx));
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        self.flush_armed = false;
        if self.items.is_empty() && self.records.is_empty() {
            return;
        }
        let items = std::mem::take(&mut self.items);
        let waiters = std::mem::take(&mut self.waiters);
        let records: Vec<MessageRecord> = self.records.drain().map(|(_, r)| r).collect();
        let n_records = records.len();
        let commit = Commit {
            items,
            records,
            cap: self.cap,
        };
        let rel = self.rel.clone();
        let fut = self.store.send(commit);
        ctx.spawn(
            async move {
                let result = match fut.await {
                    Ok(r) => r,
                    Err(_) => Err(StoreError::Unavailable),
                };
                match result {
                    Ok(outcome) => {
                        for (_, w) in waiters {
                            let _ = w.send(Ok(())); // the caller may have gone; stored anyway
                        }
                        if !outcome.dropped.is_empty() {
                            log::warn!(
                                "offline queue cap reached: dropped {} oldest messages",
                                outcome.dropped.len()
                            );
                            let failures = outcome
                                .dropped
                                .into_iter()
                                .map(|i| {
                                    failure(
                                        FailureKind::QueueFull,
                                        &std::sync::Arc::new(i.envelope),
                                        Some(i.user_id),
                                        None,
                                        "offline queue cap reached; oldest message dropped",
                                    )
                                })
                                .collect();
                            rel.report(failures);
                        }
                    }
                    Err(e) => {
                        log::error!("store commit failed ({n_records} records): {e}");
                        for (_, w) in waiters {
                            let _ = w.send(Err(e.clone()));
                        }
                    }
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for StoreWriter {
    type Context = Context<Self>;
}

impl Handler<EnqueueOffline> for StoreWriter {
    type Result = ResponseFuture<Result<(), StoreError>>;

    fn handle(&mut self, m: EnqueueOffline, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.waiters.push((m.items.len(), tx));
        self.items.extend(m.items);
        self.arm(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(StoreError::Unavailable)) })
    }
}

impl Handler<SaveRecord> for StoreWriter {
    type Result = ();

    fn handle(&mut self, m: SaveRecord, ctx: &mut Context<Self>) {
        self.records.insert(m.record.id.clone(), m.record);
        self.arm(ctx);
    }
}

/// The store as the hub and the supervision actors use it. Cheap to clone.
#[derive(Clone)]
pub struct StoreHandle {
    writer: Addr<StoreWriter>,
    actor: Addr<StoreActor>,
}

impl StoreHandle {
    /// Starts the store actor (on its own thread) and the writer (here).
    pub fn start(store: Box<dyn Store>, rel: Reliability) -> Self {
        let cell = std::sync::Mutex::new(Some(store));
        let actor = SyncArbiter::start(1, move || {
            let store = cell
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .unwrap_or_else(|| {
                    log::error!("store actor restarted: continuing with an in-memory store");
                    Box::new(super::MemoryStore::default())
                });
            StoreActor::new(store)
        });
        let writer = StoreWriter::new(actor.clone(), rel).start();
        StoreHandle { writer, actor }
    }

    /// Where record snapshots go.
    pub fn record_sink(&self) -> Recipient<SaveRecord> {
        self.writer.clone().recipient()
    }

    /// Stores items; resolves once they are durable.
    pub async fn enqueue(&self, items: Vec<OfflineItem>) -> Result<(), StoreError> {
        self.writer
            .send(EnqueueOffline { items })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// A user's queued items, oldest first.
    pub async fn fetch(
        &self,
        user_id: UserId,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        self.actor
            .send(FetchOffline { user_id, limit })
            .await
            .unwrap_or(Err(StoreError::Unavailable))
    }

    /// Removes delivered items.
    pub async fn remove(&self, user_id: UserId, ids: Vec<MessageId>) -> Result<usize, StoreError> {
        self.actor
            .send(RemoveOffline { user_id, ids })
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

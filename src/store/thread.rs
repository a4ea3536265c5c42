//! The store thread: owns the blocking backend, takes its work from the [`Intake`] (a batch
//! of offline items committed with the changed records that are due, and the queries), and
//! never runs on the hub's thread.
//!
//! A panic in the backend is caught: the batch or query fails, the restart is published
//! (`store`), and the same backend is reopened ([`Store::reopener`]); if it cannot be,
//! every later operation fails with [`StoreError::Unavailable`]: durability never switches
//! quietly to memory.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::Recipient;

use super::intake::{Intake, Job, Removal, Work};
use super::{BatchOutcome, OfflineItem, RecordSource, Reopen, Store, StoreError};
use crate::error::FailureKind;
use crate::metrics::AtomicHistogram;
use crate::model::{failure, now_ms, DeliveriesFailed, MessageRecord};

/// Keys removed in one transaction at most (unless one removal has more), so that a query
/// arriving meanwhile waits for one chunk, not for every removal held.
const REMOVE_CHUNK: usize = 1000;

/// What the store thread needs besides its backend.
pub(crate) struct Wiring {
    pub intake: Arc<Intake>,
    pub source: Arc<dyn RecordSource>,
    pub failures: Recipient<DeliveriesFailed>,
    pub on_restart: Arc<dyn Fn(&'static str) + Send + Sync>,
    pub cap: usize,
    /// How long each commit takes (`wsc_store_commit_seconds`).
    pub commit_latency: Arc<AtomicHistogram>,
}

/// The backend, as the store thread holds it.
pub(crate) struct Backend {
    store: Option<Box<dyn Store>>,
    reopen: Option<Reopen>,
    wiring: Wiring,
}

impl Backend {
    /// Runs `f` on the backend (`Unavailable` when it could not be reopened).
    pub fn with<R>(
        &mut self,
        f: impl FnOnce(&mut dyn Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match self.store.as_mut() {
            Some(s) => f(s.as_mut()),
            None => Err(StoreError::Unavailable),
        }
    }

    /// One transaction of `items` and `records`; tells the failure handlers about messages
    /// the per-user cap dropped.
    pub fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
    ) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let cap = self.wiring.cap;
        let out = self.with(|s| s.commit(items, records, cap));
        self.wiring
            .commit_latency
            .observe_us(started.elapsed().as_micros() as u64);
        match out {
            Ok(outcome) => {
                self.report_dropped(outcome);
                Ok(())
            }
            Err(e) => {
                log::error!(
                    "store commit failed ({} offline items, {} records): {e}",
                    items.len(),
                    records.len()
                );
                Err(e)
            }
        }
    }

    /// Commits every waiting item and every changed record (shutdown).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let batches = self.wiring.intake.take_all();
        let records = self.wiring.source.take_changed(now_ms(), true);
        let items: Vec<OfflineItem> = batches
            .iter()
            .flat_map(|b| b.items.iter().cloned())
            .collect();
        let result = if items.is_empty() && records.is_empty() {
            Ok(())
        } else {
            self.commit(&items, &records)
        };
        for b in batches {
            b.answer(result.clone());
        }
        result
    }

    fn report_dropped(&self, outcome: BatchOutcome) {
        if outcome.dropped.is_empty() {
            return;
        }
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
                    &i.envelope,
                    Some(i.user_id),
                    None,
                    "offline queue cap reached; oldest message dropped",
                )
            })
            .collect();
        if let Err(e) = self.wiring.failures.try_send(DeliveriesFailed { failures }) {
            log::error!("cannot report dropped offline messages: {e}");
        }
    }

    /// After a panic: the same backend, reopened, or none.
    fn restart(&mut self) {
        (self.wiring.on_restart)("store");
        self.store = match self.reopen.as_ref().map(|f| f()) {
            Some(Ok(s)) => {
                log::error!("store thread recovered from a panic: reopened the same backend");
                Some(s)
            }
            Some(Err(e)) => {
                log::error!("store thread panicked and cannot reopen its backend: {e}; every store operation now fails");
                None
            }
            None => {
                log::error!("store thread panicked; its backend cannot be reopened: every store operation now fails");
                None
            }
        };
    }

    /// One round: the queries, then the batch with the changed records that are due.
    ///
    /// Removals of delivered copies are not urgent; a reader waits for its fetch. So the
    /// removals of a round are held and done together, and a fetch runs before them unless
    /// it could read a copy one of them removes (then they go first); any other query waits
    /// for them. The held removals then go in chunks; if queries arrived meanwhile, the rest
    /// goes back to the head of the queue, behind nothing.
    fn round(&mut self, work: Work) {
        let mut removals: Vec<Removal> = Vec::new();
        for job in work.jobs {
            match job {
                Job::Remove(r) => removals.push(r),
                Job::Fetch {
                    user,
                    after_seq,
                    limit,
                    done,
                } => {
                    if removals.iter().any(|r| r.meets(&user, after_seq)) {
                        self.remove(std::mem::take(&mut removals));
                    }
                    let items =
                        self.guarded(|b| b.with(|s| s.fetch_offline(&user, after_seq, limit)));
                    if done.send(items).is_err() {
                        log::debug!("store fetch answered with no caller waiting");
                    }
                }
                Job::Run(f) => {
                    self.remove(std::mem::take(&mut removals));
                    if catch_unwind(AssertUnwindSafe(|| f(self))).is_err() {
                        // The job's answer went with it: its caller hears `Unavailable`.
                        self.restart();
                    }
                }
            }
        }
        self.remove_in_chunks(removals);
        if !work.records && work.batch.is_none() {
            return;
        }
        let records = self.wiring.source.take_changed(now_ms(), false);
        let Some(batch) = work.batch else {
            if !records.is_empty() {
                if let Err(e) = self.guarded(|b| b.commit(&[], &records)) {
                    // The book keeps them in memory; the next change writes them again.
                    log::warn!("{} changed records not written: {e}", records.len());
                }
            }
            return;
        };
        let result = self.guarded(|b| b.commit(&batch.items, &records));
        batch.answer(result);
    }

    /// The held removals, about [`REMOVE_CHUNK`] keys at a time; when queries arrived
    /// meanwhile, the rest goes back to the head of the queue (behind nothing: the next
    /// round takes it first, and lets fetches of other users' queues pass it again).
    fn remove_in_chunks(&mut self, mut removals: Vec<Removal>) {
        while !removals.is_empty() {
            let mut keys = 0;
            let n = removals
                .iter()
                .take_while(|r| {
                    let first = keys == 0;
                    keys += r.keys.len();
                    first || keys <= REMOVE_CHUNK
                })
                .count();
            let rest = removals.split_off(n);
            self.remove(removals);
            removals = rest;
            if !removals.is_empty() && self.wiring.intake.has_jobs() {
                let jobs = removals.into_iter().map(Job::Remove).collect();
                self.wiring.intake.requeue(jobs);
                return;
            }
        }
    }

    /// Removals, in one call to the backend; each answered.
    fn remove(&mut self, removals: Vec<Removal>) {
        if removals.is_empty() {
            return;
        }
        let (keys, answers): (Vec<_>, Vec<_>) = removals
            .into_iter()
            .map(|r| ((r.user, r.keys), r.done))
            .unzip();
        let results = match catch_unwind(AssertUnwindSafe(|| match self.store.as_mut() {
            Some(s) => s.remove_offline_many(&keys),
            None => keys.iter().map(|_| Err(StoreError::Unavailable)).collect(),
        })) {
            Ok(r) => r,
            Err(_) => {
                self.restart();
                keys.iter()
                    .map(|_| Err(StoreError::Backend("the store thread panicked".into())))
                    .collect()
            }
        };
        for (done, result) in answers.into_iter().zip(results) {
            if done.send(result).is_err() {
                log::debug!("store removal answered with no caller waiting");
            }
        }
    }

    /// Runs `f`; a panic restarts the backend and fails the call.
    fn guarded<R>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(r) => r,
            Err(_) => {
                self.restart();
                Err(StoreError::Backend("the store thread panicked".into()))
            }
        }
    }
}

/// Starts the store thread on `store`. If it cannot start, every operation fails.
pub(crate) fn spawn(store: Box<dyn Store>, wiring: Wiring) {
    let reopen = store.reopener();
    let intake = wiring.intake.clone();
    let mut backend = Backend {
        store: Some(store),
        reopen,
        wiring,
    };
    let started = std::thread::Builder::new()
        .name("wsc-store".into())
        .spawn(move || {
            let intake = backend.wiring.intake.clone();
            while let Some(work) = intake.next() {
                backend.round(work);
            }
        });
    if let Err(e) = started {
        log::error!("cannot start the store thread: {e}; every store operation fails");
        intake.kill();
    }
}

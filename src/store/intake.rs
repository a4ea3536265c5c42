//! The queue in front of the store thread: batches of offline items, which callers append
//! to under a short lock (no actor message, no task), and queries (boxed jobs). The store
//! thread sleeps on a condition variable until there is work, takes the oldest batch and
//! every query waiting, and answers every caller of a batch at once, when its transaction
//! is durable.
//!
//! Group commit without a timer: while the store thread commits one batch, the next one
//! fills; a batch closes at `max_batch` items (at a caller's boundary).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Condvar, Mutex, MutexGuard};

use futures_util::future::{FutureExt, Shared};
use tokio::sync::oneshot;

use super::thread::Backend;
use super::{OfflineItem, StoreError};
use crate::model::MessageKey;
use crate::protocol::UserId;

type Answer = Result<(), StoreError>;

/// Delivered copies to remove.
pub(crate) struct Removal {
    /// The user.
    pub user: UserId,
    /// The delivered messages.
    pub keys: Vec<MessageKey>,
    /// Their highest queue position, when known: a fetch of the user's queue after it
    /// cannot read them.
    pub through_seq: Option<u64>,
    /// How many were removed.
    pub done: oneshot::Sender<Result<usize, StoreError>>,
}

impl Removal {
    /// Whether a fetch of `user`'s queue after `after_seq` could read a copy this removes.
    pub fn meets(&self, user: &UserId, after_seq: u64) -> bool {
        self.user == *user && self.through_seq.is_none_or(|s| s > after_seq)
    }
}

/// A query for the store thread.
pub(crate) enum Job {
    /// Removes delivered copies; removals waiting together share one transaction.
    Remove(Removal),
    /// Reads a user's queue (a reader waits for it): runs before the removals waiting in
    /// the same round, unless it could read a copy one of them removes.
    Fetch {
        /// The user.
        user: UserId,
        /// Items after this queue position.
        after_seq: u64,
        /// At most this many.
        limit: usize,
        /// The items.
        done: oneshot::Sender<Result<Vec<OfflineItem>, StoreError>>,
    },
    /// Anything else, run on the backend.
    Run(Box<dyn FnOnce(&mut Backend) + Send>),
}

/// Items committed together, and their callers' answer.
pub(crate) struct Batch {
    /// The items, in arrival order.
    pub items: Vec<OfflineItem>,
    done: oneshot::Sender<Answer>,
    answer: Shared<oneshot::Receiver<Answer>>,
}

impl Batch {
    fn new() -> Self {
        let (done, rx) = oneshot::channel();
        Batch {
            items: Vec::new(),
            done,
            answer: rx.shared(),
        }
    }

    /// Answers every caller of the batch (a caller that gave up is fine: the items were
    /// stored, or the failure was reported, anyway).
    pub fn answer(self, result: Answer) {
        if self.done.send(result).is_err() {
            log::debug!("store batch answered with no caller waiting");
        }
    }
}

/// What the store thread takes in one round.
pub(crate) struct Work {
    /// The oldest batch of offline items.
    pub batch: Option<Batch>,
    /// Every query that was waiting (in order).
    pub jobs: Vec<Job>,
    /// Changed records are due (the writer's window ended, or a batch goes anyway).
    pub records: bool,
}

#[derive(Default)]
struct State {
    batches: VecDeque<Batch>,
    jobs: Vec<Job>,
    records_due: bool,
    /// The store thread sleeps (a push must wake it).
    sleeping: bool,
    /// No handle is left: the thread ends once the queue is empty.
    closed: bool,
    /// The store thread is not running: everything fails at once.
    dead: bool,
}

/// The shared queue.
pub(crate) struct Intake {
    state: Mutex<State>,
    wake: Condvar,
    max_batch: usize,
}

/// Resolves once the items are durable.
type Stored = futures_util::future::Map<
    Shared<oneshot::Receiver<Answer>>,
    fn(Result<Answer, oneshot::error::RecvError>) -> Answer,
>;

fn answer_of(r: Result<Answer, oneshot::error::RecvError>) -> Answer {
    // Dropped unanswered: the store thread stopped.
    r.unwrap_or(Err(StoreError::Unavailable))
}

impl Intake {
    pub fn new(max_batch: usize) -> Self {
        Intake {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            max_batch: max_batch.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every method leaves the queue consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the store thread if it sleeps (releasing the lock first).
    fn wake(&self, mut st: MutexGuard<'_, State>) {
        let sleeping = std::mem::replace(&mut st.sleeping, false);
        drop(st);
        if sleeping {
            self.wake.notify_one();
        }
    }

    /// Appends `items` to the open batch; resolves once they are durable.
    pub fn push(&self, items: Vec<OfflineItem>) -> impl Future<Output = Answer> + 'static {
        let mut st = self.lock();
        if st.dead {
            let (done, rx) = oneshot::channel();
            let failed = Batch {
                items: Vec::new(),
                done,
                answer: rx.shared(),
            };
            let answer: Stored = failed.answer.clone().map(answer_of as fn(_) -> _);
            failed.answer(Err(StoreError::Unavailable));
            return answer;
        }
        let fits = st
            .batches
            .back()
            .is_some_and(|b| b.items.is_empty() || b.items.len() + items.len() <= self.max_batch);
        if !fits {
            st.batches.push_back(Batch::new());
        }
        let last = st.batches.len() - 1;
        let batch = &mut st.batches[last];
        batch.items.extend(items);
        let answer: Stored = batch.answer.clone().map(answer_of as fn(_) -> _);
        self.wake(st);
        answer
    }

    /// Queues a query; `false` (and the job dropped, which answers its caller) when the
    /// store thread is not running.
    pub fn job(&self, job: Job) -> bool {
        let mut st = self.lock();
        if st.dead {
            return false;
        }
        st.jobs.push(job);
        self.wake(st);
        true
    }

    /// Puts jobs back at the head of the queue (older than anything queued since).
    pub fn requeue(&self, jobs: Vec<Job>) {
        let mut st = self.lock();
        let newer = std::mem::replace(&mut st.jobs, jobs);
        st.jobs.extend(newer);
    }

    /// Whether queries wait.
    pub fn has_jobs(&self) -> bool {
        !self.lock().jobs.is_empty()
    }

    /// The writer's window ended: changed records are due.
    pub fn records_due(&self) {
        let mut st = self.lock();
        st.records_due = true;
        self.wake(st);
    }

    /// The store thread's next round; sleeps until there is one. `None`: no handle is left
    /// and nothing waits, the thread ends.
    pub fn next(&self) -> Option<Work> {
        let mut st = self.lock();
        while st.batches.is_empty() && st.jobs.is_empty() && !st.records_due {
            if st.closed {
                return None;
            }
            st.sleeping = true;
            st = self.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        st.sleeping = false;
        let batch = st.batches.pop_front();
        let records = std::mem::take(&mut st.records_due) || batch.is_some();
        Some(Work {
            batch,
            jobs: std::mem::take(&mut st.jobs),
            records,
        })
    }

    /// Every waiting batch (shutdown flush).
    pub fn take_all(&self) -> Vec<Batch> {
        self.lock().batches.drain(..).collect()
    }

    /// No handle is left.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        self.wake(st);
    }

    /// The store thread is gone (or never started): every waiting caller fails, and so does
    /// every later one.
    pub fn kill(&self) {
        let (batches, jobs) = {
            let mut st = self.lock();
            st.dead = true;
            (
                st.batches.drain(..).collect::<Vec<_>>(),
                std::mem::take(&mut st.jobs),
            )
        };
        for b in batches {
            b.answer(Err(StoreError::Unavailable));
        }
        // A dropped job answers its caller `Unavailable`.
        drop(jobs);
    }
}

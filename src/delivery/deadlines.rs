//! One deadline queue per actor, one timer for its earliest entry (actix cancels timers by a
//! linear scan, so a timer per message is what this avoids). Any thread pushes; the owning
//! actor is woken only when a new entry is due before the timer it has armed.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use actix::prelude::*;

/// Wakes the actor that owns a [`DeadlineQueue`]: an entry is due earlier than its timer.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct DeadlineAdded;

struct Due<T> {
    at: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Due<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<T> Eq for Due<T> {}
impl<T> PartialOrd for Due<T> {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Due<T> {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// The one timer an actor keeps for the earliest entry of its deadline queue.
#[derive(Debug, Default)]
pub struct EarliestTimer(Option<(SpawnHandle, u64)>);

impl EarliestTimer {
    /// The timer ran (call first thing when it fires).
    pub fn fired(&mut self) {
        self.0 = None;
    }

    /// The actor restarted: the old context's timer is gone.
    pub fn reset(&mut self) {
        self.0 = None;
    }

    /// Arms for `next` (epoch ms), keeping an armed timer that is due no later; `None`
    /// cancels.
    pub fn arm<A>(
        &mut self,
        next: Option<u64>,
        ctx: &mut Context<A>,
        fire: fn(&mut A, &mut Context<A>),
    ) where
        A: Actor<Context = Context<A>>,
    {
        let Some(next) = next else {
            if let Some((h, _)) = self.0.take() {
                ctx.cancel_future(h);
            }
            return;
        };
        if let Some((h, at)) = self.0 {
            if at <= next {
                return;
            }
            ctx.cancel_future(h);
        }
        let wait = Duration::from_millis(next.saturating_sub(crate::model::now_ms()));
        let h = ctx.run_later(wait, fire);
        self.0 = Some((h, next));
    }
}

/// Entries in due order: a run pushed in order (the common case: one timeout for every
/// message, so deadlines arrive sorted) costs O(1) at both ends; others go to a heap.
struct Lanes<T> {
    sorted: VecDeque<(u64, T)>,
    heap: BinaryHeap<Reverse<Due<T>>>,
}

impl<T> Lanes<T> {
    fn earliest(&self) -> Option<u64> {
        let a = self.sorted.front().map(|(at, _)| *at);
        let b = self.heap.peek().map(|Reverse(d)| d.at);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn pop_if_due(&mut self, now: u64) -> Option<T> {
        let a = self
            .sorted
            .front()
            .map(|(at, _)| *at)
            .filter(|at| *at <= now);
        let b = self
            .heap
            .peek()
            .map(|Reverse(d)| d.at)
            .filter(|at| *at <= now);
        match (a, b) {
            (Some(a), Some(b)) if b < a => self.heap.pop().map(|Reverse(d)| d.item),
            (Some(_), _) => self.sorted.pop_front().map(|(_, item)| item),
            (None, Some(_)) => self.heap.pop().map(|Reverse(d)| d.item),
            (None, None) => None,
        }
    }
}

/// Entries ordered by due time (epoch ms).
pub struct DeadlineQueue<T> {
    lanes: Mutex<Lanes<T>>,
    seq: AtomicU64,
    armed: AtomicU64,
    waker: OnceLock<Recipient<DeadlineAdded>>,
}

impl<T> Default for DeadlineQueue<T> {
    fn default() -> Self {
        DeadlineQueue {
            lanes: Mutex::new(Lanes {
                sorted: VecDeque::new(),
                heap: BinaryHeap::new(),
            }),
            seq: AtomicU64::new(0),
            armed: AtomicU64::new(u64::MAX),
            waker: OnceLock::new(),
        }
    }
}

impl<T> DeadlineQueue<T> {
    fn lock(&self) -> MutexGuard<'_, Lanes<T>> {
        // Every method leaves the lanes consistent.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The actor to wake (set once, when it starts).
    pub fn set_waker(&self, waker: Recipient<DeadlineAdded>) {
        // A restarted actor keeps its address: the waker set first still reaches it, so a
        // second one is not needed.
        let _ = self.waker.set(waker);
    }

    /// Adds an entry due at `at`.
    pub fn push(&self, at: u64, item: T) {
        {
            let mut lanes = self.lock();
            if lanes.sorted.back().is_none_or(|(last, _)| *last <= at) {
                lanes.sorted.push_back((at, item));
            } else {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed);
                lanes.heap.push(Reverse(Due { at, seq, item }));
            }
        }
        if at < self.armed.load(Ordering::Acquire) {
            match self.waker.get() {
                Some(w) if w.connected() => w.do_send(DeadlineAdded),
                Some(_) => log::error!("deadline queue: its actor is gone; entry kept"),
                None => {} // the actor arms for the earliest entry when it starts
            }
        }
    }

    /// Removes and returns every entry due at or before `now`.
    pub fn pop_due(&self, now: u64) -> Vec<T> {
        let mut lanes = self.lock();
        let mut out = Vec::new();
        while let Some(item) = lanes.pop_if_due(now) {
            out.push(item);
        }
        out
    }

    /// The earliest due time, recorded as the armed timer's.
    pub fn arm_next(&self) -> Option<u64> {
        let next = self.lock().earliest();
        self.armed
            .store(next.unwrap_or(u64::MAX), Ordering::Release);
        next
    }

    /// Entries queued (some may be stale: settled before they came due).
    pub fn len(&self) -> usize {
        let lanes = self.lock();
        lanes.sorted.len() + lanes.heap.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_and_out_of_order_pushes_pop_in_due_order() {
        let q = DeadlineQueue::default();
        for (at, v) in [(10, 1), (20, 2), (15, 3), (30, 4), (5, 5), (30, 6)] {
            q.push(at, v);
        }
        assert_eq!(q.arm_next(), Some(5));
        assert_eq!(q.pop_due(29), vec![5, 1, 3, 2]);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop_due(30), vec![4, 6]);
        assert!(q.is_empty());
    }

    #[test]
    fn pops_in_due_order_and_only_what_is_due() {
        let q = DeadlineQueue::default();
        q.push(30, "c");
        q.push(10, "a");
        q.push(20, "b");
        assert_eq!(q.arm_next(), Some(10));
        assert_eq!(q.pop_due(20), vec!["a", "b"]);
        assert_eq!(q.arm_next(), Some(30));
        assert!(q.pop_due(29).is_empty());
        assert_eq!(q.pop_due(30), vec!["c"]);
        assert_eq!(q.arm_next(), None);
    }
}

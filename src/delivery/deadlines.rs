//! One deadline queue per actor, one timer for its earliest entry (actix cancels timers by a
//! linear scan, so a timer per message is what this avoids). Any thread pushes; the owning
//! actor is woken only when a new entry is due before the timer it has armed.

use std::cmp::{Ordering as CmpOrdering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
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

/// Entries ordered by due time (epoch ms).
pub struct DeadlineQueue<T> {
    heap: Mutex<BinaryHeap<Reverse<Due<T>>>>,
    seq: AtomicU64,
    armed: AtomicU64,
    waker: OnceLock<Recipient<DeadlineAdded>>,
}

impl<T> Default for DeadlineQueue<T> {
    fn default() -> Self {
        DeadlineQueue {
            heap: Mutex::new(BinaryHeap::new()),
            seq: AtomicU64::new(0),
            armed: AtomicU64::new(u64::MAX),
            waker: OnceLock::new(),
        }
    }
}

impl<T> DeadlineQueue<T> {
    /// The actor to wake (set once, when it starts).
    pub fn set_waker(&self, waker: Recipient<DeadlineAdded>) {
        // A restarted actor keeps its address: the waker set first still reaches it, so a
        // second one is not needed.
        let _ = self.waker.set(waker);
    }

    /// Adds an entry due at `at`.
    pub fn push(&self, at: u64, item: T) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        self.heap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Reverse(Due { at, seq, item }));
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
        let mut heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        while heap.peek().is_some_and(|Reverse(d)| d.at <= now) {
            if let Some(Reverse(d)) = heap.pop() {
                out.push(d.item);
            }
        }
        out
    }

    /// The earliest due time, recorded as the armed timer's.
    pub fn arm_next(&self) -> Option<u64> {
        let heap = self.heap.lock().unwrap_or_else(|p| p.into_inner());
        let next = heap.peek().map(|Reverse(d)| d.at);
        self.armed
            .store(next.unwrap_or(u64::MAX), Ordering::Release);
        next
    }

    /// Entries queued (some may be stale: settled before they came due).
    pub fn len(&self) -> usize {
        self.heap.lock().unwrap_or_else(|p| p.into_inner()).len()
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

//! A session's outbound queue: bounded in bytes, priority lanes, FIFO within a lane, and the
//! shared [`Inbox`] that routing threads push into.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytestring::ByteString;
use futures_util::task::AtomicWaker;
use tokio::sync::Notify;

use crate::protocol::{CloseCode, OutboundFrame};

/// Bytes a WebSocket ping or pong costs in the queue's accounting.
const CONTROL_COST: usize = 16;

/// One item a session writes.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A server-generated text frame (welcome, pong, receipt, error).
    Control(ByteString),
    /// A WebSocket ping.
    Ping,
    /// A WebSocket pong answering the peer's ping.
    Pong(bytes::Bytes),
    /// An application frame; the writer adds `seq_no`.
    App(OutboundFrame),
    /// A binary frame (only the `/echo` route sends these).
    Binary(bytes::Bytes),
}

impl Outgoing {
    fn cost(&self) -> usize {
        match self {
            Outgoing::Control(s) => s.len(),
            Outgoing::Ping => CONTROL_COST,
            Outgoing::Pong(b) => b.len() + CONTROL_COST,
            Outgoing::App(f) => f.len(),
            Outgoing::Binary(b) => b.len(),
        }
    }
}

/// Priority lanes bounded by a byte budget. Control frames go first, then application frames
/// from `critical` down to `low`.
#[derive(Debug)]
pub struct OutboundQueue {
    control: VecDeque<Outgoing>,
    lanes: [VecDeque<OutboundFrame>; 5],
    bytes: usize,
    capacity: usize,
    /// Since when something has been queued without the writer taking any of it.
    waiting_since: Option<Instant>,
}

impl OutboundQueue {
    /// An empty queue holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        OutboundQueue {
            control: VecDeque::new(),
            lanes: Default::default(),
            bytes: 0,
            capacity,
            waiting_since: None,
        }
    }

    /// How long queued items have waited without the writer taking any (`None` when the
    /// queue is empty). A writer that stopped making progress shows here.
    pub fn stalled_for(&self, now: Instant) -> Option<Duration> {
        self.waiting_since.map(|t| now.saturating_duration_since(t))
    }

    fn queued(&mut self) {
        if self.waiting_since.is_none() {
            self.waiting_since = Some(Instant::now());
        }
    }

    /// Bytes queued.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether `cost` more bytes fit.
    pub fn has_room(&self, cost: usize) -> bool {
        self.bytes + cost <= self.capacity
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.control.is_empty() && self.lanes.iter().all(VecDeque::is_empty)
    }

    /// Queues an item; gives it back when the byte budget would be exceeded.
    pub fn push(&mut self, item: Outgoing) -> Result<(), Outgoing> {
        let cost = item.cost();
        if self.bytes + cost > self.capacity {
            return Err(item);
        }
        self.bytes += cost;
        self.queued();
        match item {
            Outgoing::App(f) => self.lanes[f.priority().rank()].push_back(f),
            other => self.control.push_back(other),
        }
        Ok(())
    }

    /// Queues an item whatever the budget (held frames that were already accounted for).
    pub(crate) fn force_push(&mut self, item: Outgoing) {
        self.bytes += item.cost();
        self.queued();
        match item {
            Outgoing::App(f) => self.lanes[f.priority().rank()].push_back(f),
            other => self.control.push_back(other),
        }
    }

    fn pop(&mut self) -> Option<Outgoing> {
        let item = self.control.pop_front().or_else(|| {
            self.lanes
                .iter_mut()
                .rev()
                .find_map(VecDeque::pop_front)
                .map(Outgoing::App)
        })?;
        self.bytes -= item.cost();
        Some(item)
    }

    /// Moves items into `out`, highest priority first, until about `max_bytes` are taken
    /// (at least one item when any is queued).
    pub fn pop_batch(&mut self, max_bytes: usize, out: &mut Vec<Outgoing>) {
        let mut taken = 0;
        while taken < max_bytes {
            match self.pop() {
                Some(item) => {
                    taken += item.cost();
                    out.push(item);
                }
                None => break,
            }
        }
        if taken > 0 {
            // What is left starts waiting now: the writer just made progress.
            self.waiting_since = None;
            if !self.is_empty() {
                self.queued();
            }
        }
    }

    /// Empties the queue, returning the application frames that were not written.
    pub fn drain_app(&mut self) -> Vec<OutboundFrame> {
        self.control.clear();
        self.bytes = 0;
        self.waiting_since = None;
        self.lanes
            .iter_mut()
            .rev()
            .flat_map(|l| l.drain(..))
            .collect()
    }
}

/// Why a push into an inbox failed; the frame comes back.
#[derive(Debug)]
pub enum PushError {
    /// The byte budget is exhausted: the session is being closed with 4000.
    Full(OutboundFrame),
    /// The session is closing or closed.
    Closed(OutboundFrame),
}

/// The state behind an inbox's lock.
#[derive(Debug)]
pub(crate) struct InboxState {
    pub(crate) queue: OutboundQueue,
    /// Set once: no more pushes are accepted, with the close the writer should send.
    pub(crate) closing: Option<Closing>,
    /// While the user's stored messages are being queued, live frames wait here (in the
    /// same byte budget) so that none overtakes the backlog.
    held: Option<VecDeque<OutboundFrame>>,
    held_bytes: usize,
    /// The session's reads of its user's stored messages.
    backlog: Backlog,
}

/// One reader of the stored messages at a time per session, and never the same stored copy
/// twice: a later read (another node said it stored a message for this user) starts after
/// the highest queue position this session already took. Positions only grow (both stores
/// give every new copy a position above all before it), so such a read finds exactly the
/// copies stored since.
#[derive(Debug, Default)]
struct Backlog {
    /// The highest queue position queued to this session.
    after: u64,
    /// A read is under way.
    running: bool,
    /// Another read was asked for while one was under way: the running one goes on.
    again: bool,
}

impl InboxState {
    /// Every application frame not written: queued and held.
    pub(crate) fn drain_app(&mut self) -> Vec<OutboundFrame> {
        let mut v = self.queue.drain_app();
        if let Some(h) = self.held.as_mut() {
            v.extend(h.drain(..));
        }
        self.held_bytes = 0;
        v
    }
}

/// How a session closes.
#[derive(Debug, Clone)]
pub(crate) struct Closing {
    pub(crate) code: CloseCode,
    pub(crate) reason: String,
    /// Write what is queued first (graceful shutdown) or drop it (kick, overflow).
    pub(crate) flush: bool,
}

/// A session's outbound queue shared with routing threads: pushes take a short lock and
/// wake the session's writer, which drains batches: a WebSocket's response body (polled by
/// the connection's own task, woken through [`Inbox::register_writer`]) or an SSE writer
/// task (sleeping on a [`Notify`]).
#[derive(Debug)]
pub struct Inbox {
    state: Mutex<InboxState>,
    pub(crate) notify: Notify,
    waker: AtomicWaker,
    /// Signalled by the writer after it takes a batch (room may have opened).
    pub(crate) drained: Notify,
}

impl Inbox {
    /// An inbox holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Inbox {
            state: Mutex::new(InboxState {
                queue: OutboundQueue::new(capacity),
                closing: None,
                held: None,
                held_bytes: 0,
                backlog: Backlog::default(),
            }),
            notify: Notify::new(),
            waker: AtomicWaker::new(),
            drained: Notify::new(),
        }
    }

    /// The polled writer's waker: woken by every push (register before looking at the
    /// queue, so that no push falls between the look and the sleep).
    pub(crate) fn register_writer(&self, waker: &std::task::Waker) {
        self.waker.register(waker);
    }

    /// Forgets the polled writer's waker: its task is about to poll the writer anyway, and
    /// a push meanwhile need not schedule it once more (it registers again before it next
    /// looks at the queue).
    pub(crate) fn unregister_writer(&self) {
        drop(self.waker.take());
    }

    /// Wakes whichever writer the session has.
    fn wake(&self) {
        self.notify.notify_one();
        self.waker.wake();
    }

    /// Changes the byte limit (a runtime config update); frames already queued stay.
    pub(crate) fn set_capacity(&self, capacity: usize) {
        self.lock().queue.capacity = capacity;
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, InboxState> {
        // A panic while holding this lock leaves the queue consistent (every method is a
        // single push or pop), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues an application frame. On overflow the inbox starts closing with 4000 and the
    /// frame comes back as [`PushError::Full`]; the caller tells the session.
    pub fn push_app(&self, frame: OutboundFrame) -> Result<(), PushError> {
        let mut st = self.lock();
        if st.closing.is_some() {
            return Err(PushError::Closed(frame));
        }
        if st.held.is_some() {
            let cost = frame.len();
            if !st.queue.has_room(st.held_bytes + cost) {
                return Err(self.overflowed(st, frame));
            }
            st.held_bytes += cost;
            if let Some(h) = st.held.as_mut() {
                h.push_back(frame);
            }
            return Ok(());
        }
        match st.queue.push(Outgoing::App(frame)) {
            Ok(()) => {
                drop(st);
                self.wake();
                Ok(())
            }
            Err(Outgoing::App(frame)) => Err(self.overflowed(st, frame)),
            Err(_) => unreachable_push(),
        }
    }

    /// Starts the slow-consumer close (4000) and hands `frame` back.
    fn overflowed(&self, mut st: MutexGuard<'_, InboxState>, frame: OutboundFrame) -> PushError {
        st.closing = Some(Closing {
            code: CloseCode::SlowConsumer,
            reason: "outbound queue overflow".into(),
            flush: false,
        });
        drop(st);
        self.wake();
        PushError::Full(frame)
    }

    /// Holds live frames behind the stored backlog until [`Inbox::release`].
    pub(crate) fn hold(&self) {
        let mut st = self.lock();
        if st.held.is_none() {
            st.held = Some(VecDeque::new());
        }
    }

    /// Starts a read of the stored messages: the queue position to read after, or `None`
    /// when a read is under way (it reads once more before it ends, see [`Self::backlog_more`]).
    pub(crate) fn backlog_begin(&self) -> Option<u64> {
        let mut st = self.lock();
        let b = &mut st.backlog;
        if b.running {
            b.again = true;
            return None;
        }
        b.running = true;
        Some(b.after)
    }

    /// The running read found nothing after `after`: `true` when it should read once more
    /// (asked for meanwhile); otherwise it has ended.
    pub(crate) fn backlog_more(&self, after: u64) -> bool {
        let mut st = self.lock();
        let b = &mut st.backlog;
        b.after = b.after.max(after);
        if std::mem::take(&mut b.again) {
            return true;
        }
        b.running = false;
        false
    }

    /// The running read stopped early (the store failed or the session is closing), having
    /// queued everything up to `after`.
    pub(crate) fn backlog_stopped(&self, after: u64) {
        let mut st = self.lock();
        let b = &mut st.backlog;
        b.after = b.after.max(after);
        b.running = false;
        b.again = false;
    }

    /// Queues a stored frame if it fits now (never closing the session for its own
    /// backlog); otherwise gives it back, to retry after the writer drained some.
    pub(crate) fn push_backlog(&self, frame: OutboundFrame) -> Result<(), PushError> {
        let mut st = self.lock();
        if st.closing.is_some() {
            return Err(PushError::Closed(frame));
        }
        let held = st.held_bytes;
        let cost = frame.len();
        if !st.queue.has_room(held + cost) && !st.queue.is_empty() {
            return Err(PushError::Full(frame));
        }
        // An empty queue takes one frame even over the budget, so a backlog always moves.
        st.queue.force_push(Outgoing::App(frame));
        drop(st);
        self.wake();
        Ok(())
    }

    /// The backlog is queued: held live frames follow it.
    pub(crate) fn release(&self) {
        let mut st = self.lock();
        let Some(held) = st.held.take() else { return };
        st.held_bytes = 0;
        for f in held {
            st.queue.force_push(Outgoing::App(f));
        }
        drop(st);
        self.wake();
    }

    /// Queues a control item; `false` when the session is closing or the budget is exhausted
    /// (the caller closes with 4000).
    pub fn push_control(&self, item: Outgoing) -> bool {
        let mut st = self.lock();
        if st.closing.is_some() {
            return false;
        }
        let ok = st.queue.push(item).is_ok();
        drop(st);
        if ok {
            self.wake();
        }
        ok
    }

    /// Starts closing: no more pushes; returns the application frames dropped (none when
    /// `flush`). The first close wins; later calls return `None`.
    pub(crate) fn close(
        &self,
        code: CloseCode,
        reason: impl Into<String>,
        flush: bool,
    ) -> Option<Vec<OutboundFrame>> {
        let mut st = self.lock();
        if st.closing.is_some() {
            return None;
        }
        st.closing = Some(Closing {
            code,
            reason: reason.into(),
            flush,
        });
        let dropped = if flush {
            // Held frames are written after what is queued.
            if let Some(held) = st.held.take() {
                st.held_bytes = 0;
                for f in held {
                    st.queue.force_push(Outgoing::App(f));
                }
            }
            Vec::new()
        } else {
            st.drain_app()
        };
        drop(st);
        self.wake();
        Some(dropped)
    }

    /// The close the inbox is performing, if one started (code and reason).
    pub fn closing(&self) -> Option<(CloseCode, String)> {
        self.lock()
            .closing
            .as_ref()
            .map(|c| (c.code, c.reason.clone()))
    }

    /// Whether the inbox stopped accepting pushes.
    pub fn is_closing(&self) -> bool {
        self.lock().closing.is_some()
    }
}

#[cold]
fn unreachable_push() -> Result<(), PushError> {
    // `OutboundQueue::push` gives back exactly the item it was handed.
    log::error!("outbound queue returned a different item than it was given");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Envelope, Priority, Source};

    fn frame(id: &str, p: Priority) -> OutboundFrame {
        Envelope::system_text("x")
            .with_id(id)
            .with_priority(p)
            .encode(Source::Live)
    }

    fn ids(items: &[Outgoing]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Outgoing::App(f) => f.id().to_string(),
                Outgoing::Control(_) => "ctl".into(),
                _ => "ws".into(),
            })
            .collect()
    }

    #[test]
    fn higher_priority_first_fifo_within() {
        let mut q = OutboundQueue::new(1 << 20);
        for (id, p) in [
            ("l1", Priority::Low),
            ("n1", Priority::Normal),
            ("c1", Priority::Critical),
            ("n2", Priority::Normal),
            ("h1", Priority::High),
        ] {
            q.push(Outgoing::App(frame(id, p))).expect("room");
        }
        q.push(Outgoing::Control("{}".into())).expect("room");
        let mut out = Vec::new();
        q.pop_batch(usize::MAX, &mut out);
        assert_eq!(ids(&out), ["ctl", "c1", "h1", "n1", "n2", "l1"]);
        assert_eq!(q.bytes(), 0);
        assert!(q.is_empty());
    }

    #[test]
    fn byte_budget_is_enforced_and_batches_are_bounded() {
        let f = frame("a", Priority::Normal);
        let mut q = OutboundQueue::new(f.len() * 3);
        for _ in 0..3 {
            q.push(Outgoing::App(f.clone())).expect("room");
        }
        assert!(q.push(Outgoing::App(f.clone())).is_err());
        let mut out = Vec::new();
        q.pop_batch(1, &mut out);
        assert_eq!(out.len(), 1, "a batch takes at least one item");
        assert_eq!(q.bytes(), f.len() * 2);
    }

    #[test]
    fn inbox_overflow_closes_and_returns_the_frame() {
        let f = frame("a", Priority::Normal);
        let inbox = Inbox::new(f.len());
        inbox.push_app(f.clone()).expect("room");
        assert!(matches!(inbox.push_app(f.clone()), Err(PushError::Full(_))));
        assert!(matches!(inbox.push_app(f), Err(PushError::Closed(_))));
        assert!(inbox.is_closing());
        assert!(
            inbox.close(CloseCode::Normal, "", false).is_none(),
            "first close wins"
        );
    }
}

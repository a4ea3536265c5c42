//! The duplicate filter: the last N message ids delivered to the application, and whether the
//! application accepted each. A plain struct, tested without a runtime.

use std::collections::{HashMap, VecDeque};

use crate::protocol::MessageId;

/// What to do with an arriving message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A new id: deliver it to the application.
    New,
    /// A duplicate of a message the application has not answered yet: drop it.
    Pending,
    /// A duplicate of a message the application accepted: drop it, and ack it again when it
    /// asks for an ack (the first ack was lost, or the server resent before it arrived).
    Accepted,
}

/// Remembers up to `capacity` ids, oldest forgotten first.
#[derive(Debug)]
pub(crate) struct DedupWindow {
    capacity: usize,
    order: VecDeque<MessageId>,
    accepted: HashMap<MessageId, bool>,
}

impl DedupWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        DedupWindow {
            capacity,
            order: VecDeque::with_capacity(capacity.min(4096)),
            accepted: HashMap::with_capacity(capacity.min(4096)),
        }
    }

    /// Records `id` when new; says whether it is new or a duplicate.
    pub(crate) fn observe(&mut self, id: &MessageId) -> Seen {
        if self.capacity == 0 {
            return Seen::New;
        }
        match self.accepted.get(id) {
            Some(true) => return Seen::Accepted,
            Some(false) => return Seen::Pending,
            None => {}
        }
        while self.order.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.accepted.remove(&old);
                }
                None => break,
            }
        }
        self.order.push_back(id.clone());
        self.accepted.insert(id.clone(), false);
        Seen::New
    }

    /// The application accepted `id`: later duplicates are acked again.
    pub(crate) fn accept(&mut self, id: &MessageId) {
        if let Some(a) = self.accepted.get_mut(id) {
            *a = true;
        }
    }

    /// The application refused `id`: forget it, so a resend is delivered again.
    pub(crate) fn forget(&mut self, id: &MessageId) {
        if self.accepted.remove(id).is_some() {
            self.order.retain(|o| o != id);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> MessageId {
        MessageId::from(s)
    }

    #[test]
    fn duplicates_are_recognised_until_they_leave_the_window() {
        let mut w = DedupWindow::new(3);
        assert_eq!(w.observe(&id("a")), Seen::New);
        assert_eq!(w.observe(&id("a")), Seen::Pending);
        w.accept(&id("a"));
        assert_eq!(w.observe(&id("a")), Seen::Accepted);
        for x in ["b", "c", "d"] {
            assert_eq!(w.observe(&id(x)), Seen::New);
        }
        assert_eq!(w.len(), 3, "bounded");
        assert_eq!(w.observe(&id("a")), Seen::New, "a fell out of the window");
        assert_eq!(w.observe(&id("d")), Seen::Pending);
    }

    #[test]
    fn a_refused_message_is_delivered_again() {
        let mut w = DedupWindow::new(8);
        assert_eq!(w.observe(&id("r")), Seen::New);
        w.forget(&id("r"));
        assert_eq!(w.observe(&id("r")), Seen::New);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let mut w = DedupWindow::new(0);
        assert_eq!(w.observe(&id("a")), Seen::New);
        assert_eq!(w.observe(&id("a")), Seen::New);
    }
}

//! The duplicate filter: the last N messages delivered to the application, keyed by
//! `(from, id)` (ids are unique per sender, docs/DELIVERY.md "Keys"), and whether the
//! application accepted each. A plain struct, tested without a runtime.

use std::collections::{HashMap, VecDeque};

use crate::protocol::{MessageId, UserId};

/// What identifies a delivered message: its sender and its id. Two senders may use the same
/// id; those are two messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DeliveryKey {
    pub(crate) from: UserId,
    pub(crate) id: MessageId,
}

impl DeliveryKey {
    pub(crate) fn new(from: UserId, id: MessageId) -> Self {
        DeliveryKey { from, id }
    }
}

impl std::fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "from={} id={}", self.from, self.id)
    }
}

/// What to do with an arriving message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A new `(from, id)`: deliver it to the application.
    New,
    /// A duplicate of a message the application has not answered yet: drop it.
    Pending,
    /// A duplicate of a message the application accepted: drop it, and ack it again when it
    /// asks for an ack (the first ack was lost, or the server resent before it arrived).
    Accepted,
}

/// Remembers up to `capacity` keys, oldest forgotten first.
#[derive(Debug)]
pub(crate) struct DedupWindow {
    capacity: usize,
    order: VecDeque<DeliveryKey>,
    accepted: HashMap<DeliveryKey, bool>,
}

impl DedupWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        DedupWindow {
            capacity,
            order: VecDeque::with_capacity(capacity.min(4096)),
            accepted: HashMap::with_capacity(capacity.min(4096)),
        }
    }

    /// Records `key` when new; says whether it is new or a duplicate.
    pub(crate) fn observe(&mut self, key: &DeliveryKey) -> Seen {
        if self.capacity == 0 {
            return Seen::New;
        }
        match self.accepted.get(key) {
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
        self.order.push_back(key.clone());
        self.accepted.insert(key.clone(), false);
        Seen::New
    }

    /// The application accepted `key`: later duplicates are acked again.
    pub(crate) fn accept(&mut self, key: &DeliveryKey) {
        if let Some(a) = self.accepted.get_mut(key) {
            *a = true;
        }
    }

    /// The application refused `key`: forget it, so a resend is delivered again.
    pub(crate) fn forget(&mut self, key: &DeliveryKey) {
        if self.accepted.remove(key).is_some() {
            self.order.retain(|o| o != key);
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

    fn key(from: &str, id: &str) -> DeliveryKey {
        DeliveryKey::new(UserId::from(from), MessageId::from(id))
    }

    fn id(s: &str) -> DeliveryKey {
        key("alice", s)
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
    fn two_senders_with_the_same_id_are_two_messages() {
        let mut w = DedupWindow::new(8);
        assert_eq!(w.observe(&key("alice", "1")), Seen::New);
        assert_eq!(
            w.observe(&key("bob", "1")),
            Seen::New,
            "bob's 1 is not alice's 1"
        );
        assert_eq!(w.len(), 2);
        // Each is its own duplicate, and accepting or forgetting one leaves the other alone.
        w.accept(&key("alice", "1"));
        assert_eq!(w.observe(&key("alice", "1")), Seen::Accepted);
        assert_eq!(w.observe(&key("bob", "1")), Seen::Pending);
        w.forget(&key("bob", "1"));
        assert_eq!(w.observe(&key("alice", "1")), Seen::Accepted);
        assert_eq!(
            w.observe(&key("bob", "1")),
            Seen::New,
            "bob's was forgotten"
        );
        assert_eq!(w.len(), 2);
    }

    #[test]
    fn the_window_bounds_keys_of_all_senders_together() {
        let mut w = DedupWindow::new(2);
        assert_eq!(w.observe(&key("alice", "1")), Seen::New);
        assert_eq!(w.observe(&key("bob", "1")), Seen::New);
        assert_eq!(w.observe(&key("carol", "1")), Seen::New);
        assert_eq!(w.len(), 2, "bounded");
        assert_eq!(
            w.observe(&key("alice", "1")),
            Seen::New,
            "the oldest key fell out"
        );
        assert_eq!(w.observe(&key("carol", "1")), Seen::Pending);
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

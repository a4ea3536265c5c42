//! The record book: every tracked message's record, keyed by `(from, id)`, with an index of
//! the deliveries awaiting each user's ack, the waiters for final outcomes, and the set of
//! changed records the store's writer pulls (no snapshot is copied per change).
//!
//! Records in flight and failed ones always stay in memory; at most `max_records` in all,
//! the oldest settled ones leaving first (they remain in the durable store when they were
//! written there).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use actix::Recipient;
use foldhash::fast::RandomState;
use tokio::sync::oneshot;

use crate::model::{
    now_ms, DeliveryState, DeliveryStats, MessageKey, MessageRecord, MessageStatus,
};
use crate::protocol::MessageId;
use crate::protocol::UserId;
use crate::store::{RecordSource, RecordsChanged};

type FastMap<K, V> = HashMap<K, V, RandomState>;

struct Entry {
    /// Behind a pointer, so that the table stays small (cache-friendly probing and
    /// eviction); shared, so that the copy the store keeps with an offline copy costs no
    /// allocation (a change made while the store still holds it copies the record).
    record: Arc<MessageRecord>,
    dirty: bool,
    persisted: bool,
    /// Insertion order: what is stored for a user goes in the order it was sent.
    seq: u64,
}

struct State {
    map: FastMap<MessageKey, Entry>,
    order: VecDeque<MessageKey>,
    awaiting: FastMap<UserId, Vec<MessageKey>>,
    waiters: FastMap<MessageKey, Vec<oneshot::Sender<MessageRecord>>>,
    /// Changed records, by the time they are due for writing (nearly in order: a record is
    /// due `persist_delay_ms` after its creation, or at once when older).
    dirty: VecDeque<(u64, MessageKey)>,
    next_seq: u64,
}

/// The shared record book. Cheap to clone.
#[derive(Clone)]
pub struct Records {
    state: Arc<Mutex<State>>,
    sink: Arc<OnceLock<Recipient<RecordsChanged>>>,
    limits: Arc<Limits>,
}

struct Limits {
    max_records: usize,
    persist_delay_ms: u64,
    persist_settled: bool,
}

impl Default for Records {
    fn default() -> Self {
        Records::new(100_000, 0, true)
    }
}

fn awaiting_users(r: &MessageRecord) -> impl Iterator<Item = &UserId> {
    r.recipients
        .iter()
        .filter(|d| d.state == DeliveryState::AwaitingAck)
        .map(|d| &d.user_id)
}

/// Which recipients awaited an ack before a change: a bit per recipient (the common case,
/// no allocation), or the users when the record has more than 64 recipients.
enum Awaiting {
    Mask(usize, u64),
    Users(Vec<UserId>),
}

impl Awaiting {
    fn of(r: &MessageRecord) -> Self {
        if r.recipients.len() > 64 {
            return Awaiting::Users(awaiting_users(r).cloned().collect());
        }
        Awaiting::Mask(r.recipients.len(), mask(r))
    }

    /// Users that started and stopped awaiting an ack since.
    fn changes(self, r: &MessageRecord) -> (Vec<UserId>, Vec<UserId>) {
        match self {
            Awaiting::Mask(len, before) if len == r.recipients.len() => {
                let after = mask(r);
                let pick = |bits: u64| -> Vec<UserId> {
                    (0..len)
                        .filter(|i| bits & (1 << i) != 0)
                        .map(|i| r.recipients[i].user_id.clone())
                        .collect()
                };
                (pick(after & !before), pick(before & !after))
            }
            Awaiting::Users(before) => {
                let after: Vec<UserId> = awaiting_users(r).cloned().collect();
                let entered = after
                    .iter()
                    .filter(|u| !before.contains(u))
                    .cloned()
                    .collect();
                let left = before.into_iter().filter(|u| !after.contains(u)).collect();
                (entered, left)
            }
            Awaiting::Mask(..) => {
                // Recipients were added, so the bits moved: every recipient not awaiting now
                // may have left (removing an absent entry is harmless), and every awaiting
                // one is (re-)added.
                let (entered, left) = r
                    .recipients
                    .iter()
                    .partition::<Vec<_>, _>(|d| d.state == DeliveryState::AwaitingAck);
                (
                    entered.into_iter().map(|d| d.user_id.clone()).collect(),
                    left.into_iter().map(|d| d.user_id.clone()).collect(),
                )
            }
        }
    }
}

fn mask(r: &MessageRecord) -> u64 {
    r.recipients
        .iter()
        .enumerate()
        .filter(|(_, d)| d.state == DeliveryState::AwaitingAck)
        .fold(0, |m, (i, _)| m | (1 << i))
}

impl State {
    fn index_add(&mut self, user: &UserId, key: &MessageKey) {
        let keys = self.awaiting.entry(user.clone()).or_default();
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }

    fn index_remove(&mut self, user: &UserId, key: &MessageKey) {
        if let Some(keys) = self.awaiting.get_mut(user) {
            if let Some(i) = keys.iter().position(|k| k == key) {
                keys.swap_remove(i);
            }
            if keys.is_empty() {
                self.awaiting.remove(user);
            }
        }
    }
}

impl Records {
    /// A book keeping at most `max_records` in memory; changed records are written to the
    /// store once older than `persist_delay_ms` (or settled), and settled successful ones
    /// that were never written are written only when `persist_settled`.
    pub fn new(max_records: usize, persist_delay_ms: u64, persist_settled: bool) -> Self {
        Records {
            state: Arc::new(Mutex::new(State {
                map: FastMap::default(),
                order: VecDeque::new(),
                awaiting: FastMap::default(),
                waiters: FastMap::default(),
                dirty: VecDeque::new(),
                next_seq: 0,
            })),
            sink: Arc::new(OnceLock::new()),
            limits: Arc::new(Limits {
                max_records: max_records.max(1),
                persist_delay_ms,
                persist_settled,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every method leaves the book consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells `sink` (the store's writer) when records changed.
    pub fn persist_to(&self, sink: Recipient<RecordsChanged>) {
        if self.sink.set(sink).is_err() {
            log::warn!("record book: a second store writer was ignored");
        }
    }

    fn mark_dirty(&self, st: &mut State, key: &MessageKey) {
        if self.sink.get().is_none() {
            return;
        }
        let Some(e) = st.map.get_mut(key) else { return };
        if e.dirty {
            return;
        }
        e.dirty = true;
        let due = (e.record.created_ms + self.limits.persist_delay_ms).max(now_ms());
        let was_empty = st.dirty.is_empty();
        st.dirty.push_back((due, key.clone()));
        if was_empty {
            if let Some(sink) = self.sink.get() {
                sink.do_send(RecordsChanged);
            }
        }
    }

    fn settle(&self, st: &mut State, key: &MessageKey) {
        if st.waiters.is_empty() {
            return;
        }
        let Some(e) = st.map.get(key) else { return };
        if !e.record.is_final() {
            return;
        }
        if let Some(ws) = st.waiters.remove(key) {
            let mut snapshot = MessageRecord::clone(&e.record);
            snapshot.stamp();
            for w in ws {
                // A waiter that gave up (timed out) is fine: the record stays queryable.
                let _ = w.send(snapshot.clone());
            }
        }
    }

    /// Stores a new record (replacing one with the same key).
    pub fn insert(&self, record: MessageRecord) {
        let mut st = self.lock();
        self.insert_in(&mut st, record);
    }

    fn insert_in(&self, st: &mut State, record: MessageRecord) {
        let key = record.key.clone();
        for u in awaiting_users(&record) {
            let u = u.clone();
            st.index_add(&u, &key);
        }
        st.next_seq += 1;
        let entry = Entry {
            record: Arc::new(record),
            dirty: false,
            persisted: false,
            seq: st.next_seq,
        };
        if let Some(old) = st.map.insert(key.clone(), entry) {
            for u in awaiting_users(&old.record) {
                let u = u.clone();
                st.index_remove(&u, &key);
            }
            for u in awaiting_users(&st.map[&key].record)
                .cloned()
                .collect::<Vec<_>>()
            {
                st.index_add(&u, &key);
            }
        }
        st.order.push_back(key.clone());
        self.mark_dirty(st, &key);
        self.settle(st, &key);
        self.evict(st);
    }

    /// The book, held: a caller routes a message and records the outcome before any other
    /// thread sees the book in between. (A recipient's session on another worker may write
    /// the frame and receive its ack within microseconds; its ack then waits for the record
    /// instead of finding none.) Hold it only around routing: nothing that routes or
    /// takes the routing table's lock may wait on the book.
    pub(crate) fn locked(&self) -> Locked<'_> {
        Locked {
            book: self,
            st: self.lock(),
        }
    }

    fn evict(&self, st: &mut State) {
        let mut budget = 64;
        while st.map.len() > self.limits.max_records && budget > 0 {
            budget -= 1;
            let Some(key) = st.order.pop_front() else {
                break;
            };
            let keep = match st.map.get(&key) {
                None => continue,
                Some(e) => e.dirty || !e.record.is_final() || e.record.status.is_failure(),
            };
            if keep {
                st.order.push_back(key);
            } else {
                st.map.remove(&key);
            }
        }
    }

    /// A copy of `key`'s record for the store to keep with the message's offline copy (one
    /// write for both), when the record is settled and was never written: it then counts as
    /// written and leaves the changed set. `None` otherwise (a record written before goes
    /// through the changed set as usual, so the newest version is the one in the records
    /// table; an unsettled one changes again soon).
    pub(crate) fn take_for_copy(&self, key: &MessageKey) -> Option<Arc<MessageRecord>> {
        self.sink.get()?;
        let mut st = self.lock();
        let e = st.map.get_mut(key)?;
        let settled_ok = e.record.is_final() && !e.record.status.is_failure();
        if e.persisted || !e.record.is_final() || (settled_ok && !self.limits.persist_settled) {
            return None;
        }
        e.persisted = true;
        e.dirty = false;
        // The book's own record is stamped (as written now): the store shares it.
        Arc::make_mut(&mut e.record).stamp();
        Some(e.record.clone())
    }

    /// Loads records (at startup) without writing them again.
    pub fn load(&self, mut records: Vec<MessageRecord>) {
        // Oldest first: what is stored again for a user keeps the order it was sent in.
        records.sort_by_key(|r| r.created_ms);
        let mut st = self.lock();
        for r in records {
            let key = r.key.clone();
            for u in awaiting_users(&r) {
                let u = u.clone();
                st.index_add(&u, &key);
            }
            st.order.push_back(key.clone());
            st.next_seq += 1;
            let seq = st.next_seq;
            st.map.insert(
                key,
                Entry {
                    record: Arc::new(r),
                    dirty: false,
                    persisted: true,
                    seq,
                },
            );
        }
    }

    /// One record (a copy).
    pub fn get(&self, key: &MessageKey) -> Option<MessageRecord> {
        let mut r = self
            .lock()
            .map
            .get(key)
            .map(|e| MessageRecord::clone(&e.record))?;
        r.stamp();
        Some(r)
    }

    /// Reads a record without changing it. `None` for an unknown key.
    pub(crate) fn read<R>(
        &self,
        key: &MessageKey,
        f: impl FnOnce(&MessageRecord) -> R,
    ) -> Option<R> {
        self.lock().map.get(key).map(|e| f(&e.record))
    }

    /// The records with this id, from any sender.
    pub fn find_by_id(&self, id: &MessageId) -> Vec<MessageRecord> {
        let mut v: Vec<MessageRecord> = self
            .lock()
            .map
            .values()
            .filter(|e| &e.record.key.id == id)
            .map(|e| MessageRecord::clone(&e.record))
            .collect();
        v.iter_mut().for_each(MessageRecord::stamp);
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// Changes a record through the state machine; keeps the ack index, wakes waiters once
    /// it is final, and marks it for the store. `None` for an unknown key.
    pub(crate) fn update<R>(
        &self,
        key: &MessageKey,
        f: impl FnOnce(&mut MessageRecord) -> R,
    ) -> Option<R> {
        let mut st = self.lock();
        self.update_in(&mut st, key, f)
    }

    fn update_in<R>(
        &self,
        st: &mut State,
        key: &MessageKey,
        f: impl FnOnce(&mut MessageRecord) -> R,
    ) -> Option<R> {
        let e = st.map.get_mut(key)?;
        let before = Awaiting::of(&e.record);
        let out = f(Arc::make_mut(&mut e.record));
        let (entered, left) = before.changes(&e.record);
        for u in &left {
            st.index_remove(u, key);
        }
        for u in &entered {
            st.index_add(u, key);
        }
        self.mark_dirty(st, key);
        self.settle(st, key);
        Some(out)
    }

    /// Resolves with the record once it is final (at once if it already is).
    pub fn wait_final(&self, key: &MessageKey) -> oneshot::Receiver<MessageRecord> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        match st.map.get(key) {
            Some(e) if e.record.is_final() => {
                let mut r = MessageRecord::clone(&e.record);
                r.stamp();
                // The receiver is right here; it cannot have gone.
                let _ = tx.send(r);
            }
            _ => st.waiters.entry(key.clone()).or_default().push(tx),
        }
        rx
    }

    /// The keys of deliveries awaiting `user`'s ack (with this id, when given).
    /// Oldest first.
    pub(crate) fn awaiting(&self, user: &UserId, id: Option<&MessageId>) -> Vec<MessageKey> {
        let st = self.lock();
        let mut keys: Vec<(u64, MessageKey)> = st
            .awaiting
            .get(user)
            .map(|keys| {
                keys.iter()
                    .filter(|k| id.is_none_or(|id| &k.id == id))
                    .map(|k| (st.map.get(k).map_or(0, |e| e.seq), k.clone()))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort_unstable_by_key(|(seq, _)| *seq);
        keys.into_iter().map(|(_, k)| k).collect()
    }

    /// Keys of every record in flight, oldest first.
    pub(crate) fn in_flight_keys(&self) -> Vec<MessageKey> {
        let mut keys: Vec<(u64, MessageKey)> = self
            .lock()
            .map
            .values()
            .filter(|e| e.record.in_flight())
            .map(|e| (e.seq, e.record.key.clone()))
            .collect();
        keys.sort_unstable_by_key(|(seq, _)| *seq);
        keys.into_iter().map(|(_, k)| k).collect()
    }

    fn collect(&self, pred: impl Fn(&MessageRecord) -> bool) -> Vec<MessageRecord> {
        let mut v: Vec<MessageRecord> = self
            .lock()
            .map
            .values()
            .filter(|e| pred(&e.record))
            .map(|e| MessageRecord::clone(&e.record))
            .collect();
        v.sort_by_key(|r| r.created_ms);
        v.iter_mut().for_each(MessageRecord::stamp);
        v
    }

    /// Records `pred` accepts, oldest first.
    pub fn matching(&self, pred: impl Fn(&MessageRecord) -> bool) -> Vec<MessageRecord> {
        self.collect(pred)
    }

    /// Records with this status, oldest first.
    pub fn by_status(&self, status: MessageStatus) -> Vec<MessageRecord> {
        self.collect(|r| r.status == status)
    }

    /// Records that failed (any failure status), oldest first.
    pub fn failed(&self) -> Vec<MessageRecord> {
        self.collect(|r| r.status.is_failure())
    }

    /// Failed records that have not expired (candidates for `retry_failed`).
    pub fn retryable(&self) -> Vec<MessageRecord> {
        let now = now_ms();
        self.collect(|r| {
            r.status.is_failure() && r.status != MessageStatus::Expired && !r.expired(now)
        })
    }

    /// How many records have each status.
    pub fn stats(&self) -> BTreeMap<MessageStatus, usize> {
        let mut out: BTreeMap<MessageStatus, usize> =
            MessageStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for e in self.lock().map.values() {
            *out.entry(e.record.status).or_default() += 1;
        }
        out
    }

    /// What is in flight now.
    pub fn delivery_stats(&self) -> DeliveryStats {
        let st = self.lock();
        let mut s = DeliveryStats {
            records: st.map.len(),
            ..Default::default()
        };
        for e in st.map.values() {
            if e.record.in_flight() {
                s.in_flight += 1;
            }
            for d in &e.record.recipients {
                match d.state {
                    DeliveryState::AwaitingAck => s.awaiting_acks += 1,
                    DeliveryState::Retrying => s.scheduled_retries += 1,
                    _ => {}
                }
            }
        }
        s
    }

    /// Removes settled records created before `cutoff_ms`; returns how many.
    pub fn remove_final_before(&self, cutoff_ms: u64) -> usize {
        let mut st = self.lock();
        let before = st.map.len();
        st.map
            .retain(|_, e| e.dirty || !(e.record.is_final() && e.record.created_ms < cutoff_ms));
        let State { map, order, .. } = &mut *st;
        order.retain(|k| map.contains_key(k));
        before - st.map.len()
    }

    /// Number of records in memory.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether there are no records in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The record book held locked ([`Records::locked`]).
pub(crate) struct Locked<'a> {
    book: &'a Records,
    st: MutexGuard<'a, State>,
}

impl Locked<'_> {
    /// [`Records::insert`] under the held lock.
    pub(crate) fn insert(&mut self, record: MessageRecord) {
        self.book.insert_in(&mut self.st, record);
    }

    /// [`Records::update`] under the held lock.
    pub(crate) fn update<R>(
        &mut self,
        key: &MessageKey,
        f: impl FnOnce(&mut MessageRecord) -> R,
    ) -> Option<R> {
        self.book.update_in(&mut self.st, key, f)
    }

    /// [`Records::read`] under the held lock.
    pub(crate) fn read<R>(
        &self,
        key: &MessageKey,
        f: impl FnOnce(&MessageRecord) -> R,
    ) -> Option<R> {
        self.st.map.get(key).map(|e| f(&e.record))
    }
}

impl RecordSource for Records {
    fn take_changed(&self, now: u64, all: bool) -> Vec<MessageRecord> {
        let mut st = self.lock();
        let mut out = Vec::new();
        while let Some((due, _)) = st.dirty.front() {
            if !all && *due > now {
                break;
            }
            let Some((_, key)) = st.dirty.pop_front() else {
                break;
            };
            let Some(e) = st.map.get_mut(&key).filter(|e| e.dirty) else {
                continue; // gone, or written since with its offline copy
            };
            let settled_ok = e.record.is_final() && !e.record.status.is_failure();
            e.dirty = false;
            if settled_ok && !e.persisted && !self.limits.persist_settled {
                continue; // acknowledged before it was ever written: nothing to keep durable
            }
            e.persisted = true;
            let mut r = MessageRecord::clone(&e.record);
            r.stamp();
            out.push(r);
        }
        let more = !st.dirty.is_empty();
        drop(st);
        if more {
            // Changes not due yet: the writer comes back after its window (a change only
            // wakes it when the queue was empty).
            if let Some(sink) = self.sink.get() {
                sink.do_send(RecordsChanged);
            }
        }
        out
    }
}

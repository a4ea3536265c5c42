//! The in-memory backend: for tests and for applications that want no disk.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{BatchOutcome, DelayedItem, OfflineItem, Reopen, Store, StoreError};
use crate::model::{now_ms, MessageKey, MessageRecord};
use crate::protocol::{MessageId, UserId};

#[derive(Default)]
struct Inner {
    queues: HashMap<UserId, VecDeque<OfflineItem>>,
    records: HashMap<MessageKey, MessageRecord>,
    delayed: HashMap<MessageKey, DelayedItem>,
    seq: u64,
}

/// Everything in memory; clones share the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn same(a: &OfflineItem, b: &OfflineItem) -> bool {
    a.envelope.id == b.envelope.id && a.envelope.from == b.envelope.from
}

impl Store for MemoryStore {
    fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
        cap: usize,
    ) -> Result<BatchOutcome, StoreError> {
        let mut inner = self.lock();
        let mut out = BatchOutcome::default();
        for item in items {
            inner.seq += 1;
            let seq = inner.seq;
            let q = inner.queues.entry(item.user_id.clone()).or_default();
            if q.iter().any(|i| same(i, item)) {
                continue; // stored once per user and (from, id)
            }
            let mut item = item.clone();
            item.seq = seq;
            item.record = None;
            q.push_back(item);
            while q.len() > cap {
                if let Some(old) = q.pop_front() {
                    out.dropped.push(old);
                }
            }
        }
        // Records carried by items first: those of `records` are newer.
        let carried = items.iter().filter_map(|i| i.record.as_deref());
        for r in carried.chain(records) {
            inner.records.insert(r.key.clone(), r.clone());
        }
        Ok(out)
    }

    fn fetch_offline(
        &mut self,
        user: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        let now = now_ms();
        Ok(self
            .lock()
            .queues
            .get(user)
            .map(|q| {
                q.iter()
                    .filter(|i| i.expires_ms > now && i.seq > after_seq)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn remove_offline(&mut self, user: &UserId, keys: &[MessageKey]) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let Some(q) = inner.queues.get_mut(user) else {
            return Ok(0);
        };
        let before = q.len();
        q.retain(|i| {
            !keys
                .iter()
                .any(|k| k.id == i.envelope.id && k.from == i.envelope.from)
        });
        let removed = before - q.len();
        if q.is_empty() {
            inner.queues.remove(user);
        }
        Ok(removed)
    }

    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let mut n = 0;
        for q in inner.queues.values_mut() {
            let before = q.len();
            q.retain(|i| i.expires_ms > now_ms);
            n += before - q.len();
        }
        inner.queues.retain(|_, q| !q.is_empty());
        let before = inner.records.len();
        inner
            .records
            .retain(|_, r| !(r.is_final() && r.created_ms < records_before_ms));
        Ok(n + before - inner.records.len())
    }

    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(self.lock().records.values().cloned().collect())
    }

    fn get_record(&mut self, key: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.lock().records.get(key).cloned())
    }

    fn find_records(&mut self, id: &MessageId) -> Result<Vec<MessageRecord>, StoreError> {
        let g = self.lock();
        Ok(g.records
            .iter()
            .filter(|(k, _)| k.id == *id)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self.lock().queues.get(user).map_or(0, VecDeque::len))
    }

    fn offline_total(&mut self) -> Result<usize, StoreError> {
        Ok(self.lock().queues.values().map(VecDeque::len).sum())
    }

    fn save_delayed(&mut self, item: &DelayedItem) -> Result<(), StoreError> {
        self.lock().delayed.insert(item.key(), item.clone());
        Ok(())
    }

    fn remove_delayed(&mut self, key: &MessageKey) -> Result<(), StoreError> {
        self.lock().delayed.remove(key);
        Ok(())
    }

    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError> {
        let mut v: Vec<DelayedItem> = self.lock().delayed.values().cloned().collect();
        v.sort_by_key(|d| d.due_ms);
        Ok(v)
    }

    fn reopener(&self) -> Option<Reopen> {
        let same = self.clone();
        Some(Box::new(move || {
            Ok(Box::new(same.clone()) as Box<dyn Store>)
        }))
    }
}

//! The in-memory backend: for tests and for applications that want no disk.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{BatchOutcome, OfflineItem, Store, StoreError};
use crate::protocol::{MessageId, UserId};
use crate::supervision::MessageRecord;

#[derive(Default)]
struct Inner {
    queues: HashMap<UserId, VecDeque<OfflineItem>>,
    records: HashMap<MessageId, MessageRecord>,
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
            let q = inner.queues.entry(item.user_id.clone()).or_default();
            if q.iter().any(|i| i.envelope.id == item.envelope.id) {
                continue; // stored once per user and id
            }
            q.push_back(item.clone());
            while q.len() > cap {
                if let Some(old) = q.pop_front() {
                    out.dropped.push(old);
                }
            }
        }
        for r in records {
            inner.records.insert(r.id.clone(), r.clone());
        }
        Ok(out)
    }

    fn fetch_offline(
        &mut self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        let now = crate::supervision::now_ms();
        Ok(self
            .lock()
            .queues
            .get(user)
            .map(|q| {
                q.iter()
                    .filter(|i| i.expires_ms > now)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn remove_offline(&mut self, user: &UserId, ids: &[MessageId]) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let Some(q) = inner.queues.get_mut(user) else {
            return Ok(0);
        };
        let before = q.len();
        q.retain(|i| !ids.contains(&i.envelope.id));
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

    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        Ok(self.lock().queues.get(user).map_or(0, VecDeque::len))
    }
}

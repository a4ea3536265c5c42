//! Message records: one per tracked message, with a status lifecycle, the attempt history
//! and the timers' deadlines. Records are where the supervision actors keep the state a
//! restart must find: a restarted [`super::AckTracker`] or [`super::RetryActor`] re-arms its
//! timers from here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use actix::Recipient;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::error::FailureKind;
use crate::protocol::time::now_rfc3339;
use crate::protocol::{Envelope, GroupId, MessageId, UserId};
use crate::store::SaveRecord;

/// Where a tracked message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordTarget {
    /// Every session of a user.
    User(UserId),
    /// Every member of a group.
    Group(GroupId),
    /// Everyone.
    Broadcast,
}

/// A record's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Created, not yet routed.
    Pending,
    /// Being routed.
    Sending,
    /// Queued to at least one session (waiting for acks when they are required).
    Delivered,
    /// Every recipient acknowledged.
    Acked,
    /// A retry is scheduled.
    Retrying,
    /// Not acknowledged after every retry.
    AckTimeout,
    /// The recipient had no live session.
    UserOffline,
    /// Failed for good.
    Failed,
    /// Expired before delivery.
    Expired,
}

impl MessageStatus {
    /// Every status.
    pub const ALL: [MessageStatus; 9] = [
        MessageStatus::Pending,
        MessageStatus::Sending,
        MessageStatus::Delivered,
        MessageStatus::Acked,
        MessageStatus::Retrying,
        MessageStatus::AckTimeout,
        MessageStatus::UserOffline,
        MessageStatus::Failed,
        MessageStatus::Expired,
    ];

    /// A failure status that `retry_failed` may restart.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            MessageStatus::AckTimeout
                | MessageStatus::UserOffline
                | MessageStatus::Failed
                | MessageStatus::Expired
        )
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first send.
    pub number: u32,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Milliseconds from start to outcome (routing, or routing plus the ack wait).
    pub duration_ms: u64,
    /// Why it failed.
    pub error: Option<FailureKind>,
    /// Whether it succeeded.
    pub success: bool,
    /// Start time in epoch milliseconds (for durations).
    #[serde(skip)]
    pub(crate) started_ms: u64,
}

/// What the server knows about one tracked message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageRecord {
    /// The message id.
    pub id: MessageId,
    /// The message.
    pub envelope: Envelope,
    /// Where it goes.
    pub target: RecordTarget,
    /// Recipients must acknowledge.
    pub require_ack: bool,
    /// Routing failures are retried (send-with-retry).
    pub retry_on_failure: bool,
    /// Current status.
    pub status: MessageStatus,
    /// Why it failed, when it did.
    pub failure_reason: Option<FailureKind>,
    /// The last error's description.
    pub error: Option<String>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
    /// Retries scheduled so far.
    pub retry_count: u32,
    /// Application tags.
    pub tags: Vec<String>,
    /// Users whose acknowledgement is still awaited.
    pub pending_acks: Vec<UserId>,
    /// Users a scheduled retry goes to.
    pub retry_users: Vec<UserId>,
    /// Retries allowed for this message.
    pub max_retries: u32,
    /// ACK wait per attempt, in milliseconds.
    pub ack_timeout_ms: u64,
    /// When the current attempt's ack wait ends (epoch ms).
    pub ack_deadline_ms: Option<u64>,
    /// When the scheduled retry runs (epoch ms).
    pub next_retry_at_ms: Option<u64>,
    /// After this (epoch ms) the message is not sent again.
    pub expires_at_ms: Option<u64>,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Creation time in epoch ms.
    pub created_ms: u64,
    /// A copy waits in the recipient's offline queue (removed once delivered and acked).
    #[serde(default)]
    pub stored_offline: bool,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl MessageRecord {
    /// A new record in `pending`.
    pub fn new(
        envelope: Envelope,
        target: RecordTarget,
        require_ack: bool,
        ack_timeout: Duration,
    ) -> Self {
        let now = now_rfc3339();
        MessageRecord {
            id: envelope.id.clone(),
            envelope,
            target,
            require_ack,
            retry_on_failure: false,
            status: MessageStatus::Pending,
            failure_reason: None,
            error: None,
            attempts: Vec::new(),
            retry_count: 0,
            tags: Vec::new(),
            pending_acks: Vec::new(),
            retry_users: Vec::new(),
            max_retries: 3,
            ack_timeout_ms: ack_timeout.as_millis() as u64,
            ack_deadline_ms: None,
            next_retry_at_ms: None,
            expires_at_ms: None,
            created_at: now.clone(),
            updated_at: now,
            created_ms: now_ms(),
            stored_offline: false,
        }
    }

    /// Whether the record reached an outcome.
    pub fn is_final(&self) -> bool {
        match self.status {
            MessageStatus::Acked
            | MessageStatus::AckTimeout
            | MessageStatus::UserOffline
            | MessageStatus::Failed
            | MessageStatus::Expired => true,
            MessageStatus::Delivered => self.pending_acks.is_empty(),
            MessageStatus::Pending | MessageStatus::Sending | MessageStatus::Retrying => false,
        }
    }

    /// Starts attempt `attempts.len() + 1`.
    pub fn start_attempt(&mut self) -> u32 {
        let number = self.attempts.len() as u32 + 1;
        self.attempts.push(Attempt {
            number,
            started_at: now_rfc3339(),
            duration_ms: 0,
            error: None,
            success: false,
            started_ms: now_ms(),
        });
        self.status = MessageStatus::Sending;
        number
    }

    /// Ends the current attempt.
    pub fn end_attempt(&mut self, error: Option<FailureKind>) {
        if let Some(a) = self.attempts.last_mut() {
            a.duration_ms = now_ms().saturating_sub(a.started_ms);
            a.success = error.is_none();
            a.error = error;
        }
    }

    /// Total time from creation to now, or to the last attempt's end.
    pub fn total_time(&self) -> Duration {
        let end = self
            .attempts
            .last()
            .map(|a| a.started_ms + a.duration_ms)
            .unwrap_or(self.created_ms);
        Duration::from_millis(end.saturating_sub(self.created_ms))
    }
}

#[derive(Default)]
struct Inner {
    map: HashMap<MessageId, MessageRecord>,
    waiters: HashMap<MessageId, Vec<oneshot::Sender<MessageRecord>>>,
}

/// The shared record book: the working set in memory, every change also sent to the
/// store's writer when one is attached. Cheap to clone.
#[derive(Clone, Default)]
pub struct Records {
    inner: Arc<Mutex<Inner>>,
    sink: Arc<OnceLock<Recipient<SaveRecord>>>,
}

impl Records {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every method leaves the map consistent, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends every later change to `sink` (the durable store's writer).
    pub fn persist_to(&self, sink: Recipient<SaveRecord>) {
        let _ = self.sink.set(sink); // attached once at startup
    }

    fn persist(&self, record: &MessageRecord) {
        if let Some(sink) = self.sink.get() {
            sink.do_send(SaveRecord {
                record: record.clone(),
            });
        }
    }

    /// Stores a record (replacing one with the same id).
    pub fn insert(&self, record: MessageRecord) {
        self.persist(&record);
        self.lock().map.insert(record.id.clone(), record);
    }

    /// Loads records (at startup) without persisting them again.
    pub fn load(&self, records: Vec<MessageRecord>) {
        let mut inner = self.lock();
        for r in records {
            inner.map.insert(r.id.clone(), r);
        }
    }

    /// One record.
    pub fn get(&self, id: &MessageId) -> Option<MessageRecord> {
        self.lock().map.get(id).cloned()
    }

    /// Changes a record; wakes its waiters when it becomes final. `None` for an unknown id.
    pub fn update<R>(&self, id: &MessageId, f: impl FnOnce(&mut MessageRecord) -> R) -> Option<R> {
        let mut inner = self.lock();
        let rec = inner.map.get_mut(id)?;
        let out = f(rec);
        rec.updated_at = now_rfc3339();
        if let Some(sink) = self.sink.get() {
            sink.do_send(SaveRecord {
                record: rec.clone(),
            });
        }
        if rec.is_final() {
            let snapshot = rec.clone();
            if let Some(ws) = inner.waiters.remove(id) {
                for w in ws {
                    let _ = w.send(snapshot.clone()); // a waiter that gave up is fine
                }
            }
        }
        Some(out)
    }

    /// Resolves with the record once it is final (at once if it already is).
    pub fn wait_final(&self, id: &MessageId) -> oneshot::Receiver<MessageRecord> {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        match inner.map.get(id) {
            Some(r) if r.is_final() => {
                let _ = tx.send(r.clone());
            }
            _ => inner.waiters.entry(id.clone()).or_default().push(tx),
        }
        rx
    }

    /// Records with this status.
    pub fn by_status(&self, status: MessageStatus) -> Vec<MessageRecord> {
        let mut v: Vec<_> = self
            .lock()
            .map
            .values()
            .filter(|r| r.status == status)
            .cloned()
            .collect();
        v.sort_by_key(|r| r.created_ms);
        v
    }

    /// Records that failed (any failure status).
    pub fn failed(&self) -> Vec<MessageRecord> {
        let mut v: Vec<_> = self
            .lock()
            .map
            .values()
            .filter(|r| r.status.is_failure())
            .cloned()
            .collect();
        v.sort_by_key(|r| r.created_ms);
        v
    }

    /// Failed records that have not expired (candidates for `retry_failed`).
    pub fn retryable(&self) -> Vec<MessageRecord> {
        let now = now_ms();
        self.failed()
            .into_iter()
            .filter(|r| {
                r.status != MessageStatus::Expired && r.expires_at_ms.is_none_or(|e| e > now)
            })
            .collect()
    }

    /// How many records have each status.
    pub fn stats(&self) -> BTreeMap<MessageStatus, usize> {
        let mut out: BTreeMap<MessageStatus, usize> =
            MessageStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for r in self.lock().map.values() {
            *out.entry(r.status).or_default() += 1;
        }
        out
    }

    /// Records awaiting acks: `(id, user, deadline_ms)` for each pending user.
    pub fn awaiting_acks(&self) -> Vec<(MessageId, UserId, u64)> {
        self.lock()
            .map
            .values()
            .filter(|r| r.status == MessageStatus::Delivered)
            .flat_map(|r| {
                let deadline = r.ack_deadline_ms.unwrap_or(0);
                r.pending_acks
                    .iter()
                    .map(move |u| (r.id.clone(), u.clone(), deadline))
            })
            .collect()
    }

    /// Records with a scheduled retry: `(id, at_ms)`.
    pub fn scheduled_retries(&self) -> Vec<(MessageId, u64)> {
        self.lock()
            .map
            .values()
            .filter(|r| r.status == MessageStatus::Retrying && !r.retry_users.is_empty())
            .map(|r| (r.id.clone(), r.next_retry_at_ms.unwrap_or(0)))
            .collect()
    }

    /// Removes final records last changed before `cutoff_ms`; returns how many.
    pub fn remove_final_before(&self, cutoff_ms: u64) -> usize {
        let mut inner = self.lock();
        let before = inner.map.len();
        inner
            .map
            .retain(|_, r| !(r.is_final() && r.created_ms < cutoff_ms));
        before - inner.map.len()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> MessageRecord {
        MessageRecord::new(
            Envelope::system_text("x").with_id(id),
            RecordTarget::User("u".into()),
            true,
            Duration::from_secs(5),
        )
    }

    #[test]
    fn lifecycle_waiters_and_queries() {
        let records = Records::default();
        records.insert(record("a"));
        let mut rx = records.wait_final(&"a".into());
        records.update(&"a".into(), |r| {
            r.start_attempt();
            r.status = MessageStatus::Delivered;
            r.pending_acks = vec!["u".into()];
        });
        assert!(rx.try_recv().is_err(), "not final while an ack is pending");
        assert_eq!(records.awaiting_acks().len(), 1);
        records.update(&"a".into(), |r| {
            r.end_attempt(None);
            r.pending_acks.clear();
            r.status = MessageStatus::Acked;
        });
        let done = rx.try_recv().expect("final wakes the waiter");
        assert_eq!(done.status, MessageStatus::Acked);
        assert!(done.attempts[0].success);
        records.insert(record("b"));
        records.update(&"b".into(), |r| r.status = MessageStatus::Failed);
        assert_eq!(records.failed().len(), 1);
        assert_eq!(records.retryable().len(), 1);
        assert_eq!(records.stats()[&MessageStatus::Acked], 1);
        assert_eq!(records.by_status(MessageStatus::Failed)[0].id.as_str(), "b");
        assert_eq!(records.remove_final_before(u64::MAX), 2);
        assert!(records.is_empty());
    }
}

//! The store thread and its queue: a caller is answered only once its batch is durable,
//! batches keep callers whole and stay within `max_batch`, removals waiting together reach
//! the backend together (a fetch of another user's queue goes first, nothing else passes
//! them), and a panicking backend is reopened.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use actix::prelude::*;
use futures_util::FutureExt;

use super::{
    BatchOutcome, DelayedItem, OfflineItem, RecordSource, Reopen, Store, StoreError, StoreHandle,
};
use crate::config::StoreConfig;
use crate::metrics::AtomicHistogram;
use crate::model::{DeliveriesFailed, MessageKey, MessageRecord};
use crate::protocol::{Envelope, UserId};

/// A backend whose commits report their size and wait for the test's go; a commit of
/// `PANIC_AT` items panics. It logs the calls that reach it.
struct Gate {
    started: mpsc::Sender<usize>,
    go: Arc<Mutex<mpsc::Receiver<()>>>,
    committed: Arc<Mutex<Vec<usize>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

const PANIC_AT: usize = 13;

impl Store for Gate {
    fn commit(
        &mut self,
        items: &[OfflineItem],
        _: &[MessageRecord],
        _: usize,
    ) -> Result<BatchOutcome, StoreError> {
        if items.len() == PANIC_AT {
            panic!("a backend bug");
        }
        self.started.send(items.len()).expect("test listens");
        self.go
            .lock()
            .expect("go")
            .recv()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        self.committed.lock().expect("committed").push(items.len());
        Ok(BatchOutcome::default())
    }
    fn fetch_offline(
        &mut self,
        user: &UserId,
        _: u64,
        _: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("fetch {user}"));
        Ok(Vec::new())
    }
    fn remove_offline(&mut self, _: &UserId, _: &[MessageKey]) -> Result<usize, StoreError> {
        unreachable!("the store thread removes with remove_offline_many")
    }
    fn remove_offline_many(
        &mut self,
        removals: &[(UserId, Vec<MessageKey>)],
    ) -> Vec<Result<usize, StoreError>> {
        let users: Vec<&str> = removals.iter().map(|(u, _)| u.as_str()).collect();
        self.calls
            .lock()
            .expect("calls")
            .push(format!("remove {}", users.join(",")));
        removals.iter().map(|(_, keys)| Ok(keys.len())).collect()
    }
    fn purge(&mut self, _: u64, _: u64) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn get_record(&mut self, _: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        Ok(None)
    }
    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("count {user}"));
        Ok(0)
    }
    fn save_delayed(&mut self, _: &DelayedItem) -> Result<(), StoreError> {
        Ok(())
    }
    fn remove_delayed(&mut self, _: &MessageKey) -> Result<(), StoreError> {
        Ok(())
    }
    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError> {
        Ok(Vec::new())
    }
    fn reopener(&self) -> Option<Reopen> {
        let (started, go, committed, calls) = (
            self.started.clone(),
            self.go.clone(),
            self.committed.clone(),
            self.calls.clone(),
        );
        Some(Box::new(move || {
            Ok(Box::new(Gate {
                started: started.clone(),
                go: go.clone(),
                committed: committed.clone(),
                calls: calls.clone(),
            }) as Box<dyn Store>)
        }))
    }
}

struct NoRecords;

impl RecordSource for NoRecords {
    fn take_changed(&self, _: u64, _: bool) -> Vec<MessageRecord> {
        Vec::new()
    }
}

struct Sink;

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<DeliveriesFailed> for Sink {
    type Result = ();
    fn handle(&mut self, _: DeliveriesFailed, _: &mut Context<Self>) {}
}

struct Harness {
    store: StoreHandle,
    started: mpsc::Receiver<usize>,
    go: mpsc::Sender<()>,
    committed: Arc<Mutex<Vec<usize>>>,
    calls: Arc<Mutex<Vec<String>>>,
    restarts: Arc<Mutex<Vec<&'static str>>>,
}

fn harness(max_batch: usize) -> Harness {
    let (started_tx, started) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let committed = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let restarts = Arc::new(Mutex::new(Vec::new()));
    let gate = Gate {
        started: started_tx,
        go: Arc::new(Mutex::new(go_rx)),
        committed: committed.clone(),
        calls: calls.clone(),
    };
    let config = StoreConfig {
        max_batch,
        ..StoreConfig::default()
    };
    let seen = restarts.clone();
    let store = StoreHandle::start(
        Box::new(gate),
        &config,
        Arc::new(NoRecords),
        Sink.start().recipient(),
        Arc::new(move |actor| seen.lock().expect("restarts").push(actor)),
        Arc::new(AtomicHistogram::latency()),
    );
    Harness {
        store,
        started,
        go,
        committed,
        calls,
        restarts,
    }
}

fn items(n: usize) -> Vec<OfflineItem> {
    let envelope = Arc::new(Envelope::system_text("x"));
    (0..n)
        .map(|_| OfflineItem {
            user_id: "u".into(),
            envelope: envelope.clone(),
            stored_ms: 0,
            expires_ms: u64::MAX,
            seq: 0,
            record: None,
        })
        .collect()
}

#[actix_rt::test]
async fn callers_are_answered_once_their_batch_is_durable_in_whole_batches() {
    let h = harness(1000);
    let mut a = Box::pin(h.store.enqueue(items(400)));
    // The store thread took `a` alone and is inside its commit.
    assert_eq!(h.started.recv(), Ok(400));
    let mut b = Box::pin(h.store.enqueue(items(400)));
    let mut c = Box::pin(h.store.enqueue(items(400)));
    let mut d = Box::pin(h.store.enqueue(items(400)));
    assert!(
        a.as_mut().now_or_never().is_none(),
        "answered before durable"
    );
    h.go.send(()).expect("go");
    assert_eq!(a.await, Ok(()));
    // `b` and `c` share the next batch; `d` would take it over 1000.
    assert_eq!(h.started.recv(), Ok(800));
    assert!(b.as_mut().now_or_never().is_none());
    assert!(c.as_mut().now_or_never().is_none());
    h.go.send(()).expect("go");
    assert_eq!(b.await, Ok(()));
    assert_eq!(c.await, Ok(()));
    assert_eq!(h.started.recv(), Ok(400));
    assert!(d.as_mut().now_or_never().is_none());
    h.go.send(()).expect("go");
    assert_eq!(d.await, Ok(()));
    assert_eq!(*h.committed.lock().expect("committed"), [400, 800, 400]);
    // A caller larger than a batch is not split.
    let e = h.store.enqueue(items(1500));
    assert_eq!(h.started.recv(), Ok(1500));
    h.go.send(()).expect("go");
    assert_eq!(e.await, Ok(()));
}

#[actix_rt::test]
async fn a_panicking_backend_fails_its_batch_and_is_reopened() {
    let h = harness(1000);
    let failed = h.store.enqueue(items(PANIC_AT)).await;
    assert!(
        matches!(failed, Err(StoreError::Backend(ref m)) if m.contains("panicked")),
        "{failed:?}"
    );
    assert_eq!(*h.restarts.lock().expect("restarts"), ["store"]);
    // The same backend, reopened, takes the next batch.
    let next = h.store.enqueue(items(2));
    assert_eq!(h.started.recv(), Ok(2));
    h.go.send(()).expect("go");
    assert_eq!(next.await, Ok(()));
    assert_eq!(h.store.count("u".into()).await, Ok(0), "queries run too");
}

#[actix_rt::test]
async fn removals_waiting_together_reach_the_backend_together_in_order() {
    let h = harness(1000);
    let key = |id: &str| MessageKey::new("s", id);
    // The store thread is held in a commit while the queries queue up.
    let commit = h.store.enqueue(items(1));
    assert_eq!(h.started.recv(), Ok(1));
    let a = h.store.remove("a".into(), vec![key("1")]);
    let b = h.store.remove("b".into(), vec![key("2"), key("3")]);
    let count = h.store.count("c".into());
    let d = h.store.remove("d".into(), vec![key("4")]);
    h.go.send(()).expect("go");
    assert_eq!(commit.await, Ok(()));
    let (a, b, count, d) = tokio::join!(a, b, count, d);
    assert_eq!((a, b, count, d), (Ok(1), Ok(2), Ok(0), Ok(1)));
    // `a` and `b` in one call; the count, queued after them, sees them done; `d` after it.
    assert_eq!(
        *h.calls.lock().expect("calls"),
        ["remove a,b", "count c", "remove d"]
    );
}

#[actix_rt::test]
async fn a_fetch_goes_before_removals_of_other_users_never_before_its_own_users() {
    let h = harness(1000);
    let key = |id: &str| MessageKey::new("s", id);
    let commit = h.store.enqueue(items(1));
    assert_eq!(h.started.recv(), Ok(1));
    let a = h.store.remove("a".into(), vec![key("1")]);
    let b = h.store.remove("b".into(), vec![key("2")]);
    let fetch_c = h.store.fetch("c".into(), 0, 10);
    let fetch_a = h.store.fetch("a".into(), 0, 10);
    h.go.send(()).expect("go");
    assert_eq!(commit.await, Ok(()));
    let (a, b, fetch_c, fetch_a) = tokio::join!(a, b, fetch_c, fetch_a);
    assert_eq!((a, b), (Ok(1), Ok(1)));
    assert!(fetch_c.is_ok() && fetch_a.is_ok());
    // c's reader did not wait for a's and b's removals; a's fetch saw a's removal done.
    assert_eq!(
        *h.calls.lock().expect("calls"),
        ["fetch c", "remove a,b", "fetch a"]
    );
}

#[actix_rt::test]
async fn a_fetch_after_the_positions_being_removed_does_not_wait_for_them() {
    let h = harness(1000);
    let key = |id: &str| MessageKey::new("s", id);
    let commit = h.store.enqueue(items(1));
    assert_eq!(h.started.recv(), Ok(1));
    // A reader's backlog: page 1 (positions up to 7) delivered, its removal queued, then the
    // next page read after position 7; a new session of the same user reads from 0.
    let removed = h.store.remove_through("a".into(), vec![key("1")], Some(7));
    let next_page = h.store.fetch("a".into(), 7, 10);
    let new_session = h.store.fetch("a".into(), 0, 10);
    h.go.send(()).expect("go");
    assert_eq!(commit.await, Ok(()));
    let (removed, next_page, new_session) = tokio::join!(removed, next_page, new_session);
    assert_eq!(removed, Ok(1));
    assert!(next_page.is_ok() && new_session.is_ok());
    assert_eq!(
        *h.calls.lock().expect("calls"),
        ["fetch a", "remove a", "fetch a"]
    );
}

//! Order and reach of stored messages (docs/DELIVERY.md): every new session of a user gets the
//! user's stored messages right after the welcome, oldest first, before any live message (live
//! frames that arrive meanwhile wait behind the backlog), and a backlog larger than the
//! session's queue is paged in as the queue drains instead of closing the reader with 4000.

mod common;

use std::time::Duration;

use actix::prelude::*;
use actix_wsc::hub::{Hub, SendTracked, Target};
use actix_wsc::protocol::{Envelope, UserId};
use actix_wsc::store::{BatchOutcome, DelayedItem, MemoryStore, OfflineItem, Store, StoreError};
use actix_wsc::supervision::{MessageKey, MessageRecord};
use common::*;
use serde_json::json;

/// How long a frame that must come may take (far more than it needs).
const FRAME: Duration = Duration::from_secs(3);

/// The in-memory store, with a slow disk for one user's reads: the window in which that
/// user's new session is registered but its backlog is still being read is 300 ms wide
/// instead of a fraction of a millisecond, so live messages land in it every time.
struct SlowFetch {
    inner: MemoryStore,
    user: UserId,
    delay: Duration,
}

impl Store for SlowFetch {
    fn commit(
        &mut self,
        items: &[OfflineItem],
        records: &[MessageRecord],
        cap: usize,
    ) -> Result<BatchOutcome, StoreError> {
        self.inner.commit(items, records, cap)
    }
    fn fetch_offline(
        &mut self,
        user: &UserId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        if *user == self.user {
            // The store runs on its own thread: this is a slow disk, not a wait in the test.
            std::thread::sleep(self.delay);
        }
        self.inner.fetch_offline(user, after_seq, limit)
    }
    fn remove_offline(&mut self, user: &UserId, keys: &[MessageKey]) -> Result<usize, StoreError> {
        self.inner.remove_offline(user, keys)
    }
    fn purge(&mut self, now_ms: u64, records_before_ms: u64) -> Result<usize, StoreError> {
        self.inner.purge(now_ms, records_before_ms)
    }
    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        self.inner.load_records()
    }
    fn offline_count(&mut self, user: &UserId) -> Result<usize, StoreError> {
        self.inner.offline_count(user)
    }
    fn get_record(&mut self, key: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        self.inner.get_record(key)
    }
    fn save_delayed(&mut self, item: &DelayedItem) -> Result<(), StoreError> {
        self.inner.save_delayed(item)
    }
    fn remove_delayed(&mut self, key: &MessageKey) -> Result<(), StoreError> {
        self.inner.remove_delayed(key)
    }
    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError> {
        self.inner.load_delayed()
    }
}

/// Stores `n` plain messages `{prefix}{i}` with content `i` (padded to `pad` bytes) for an
/// offline `user`, each durable before the next.
async fn store_plain(server: &TestServer, user: &str, prefix: &str, n: usize, pad: usize) {
    for i in 0..n {
        let content = format!("{i:0>pad$}");
        let report = server
            .hub
            .send(SendTracked::new(
                Target::User(user.into()),
                Envelope::system_text(content).with_id(format!("{prefix}{i}")),
            ))
            .await
            .expect("hub");
        assert_eq!(report.stored_offline.len(), 1, "{prefix}{i} stored");
    }
}

/// `id/source` of a frame, for readable order assertions.
fn tag(v: &serde_json::Value) -> String {
    format!(
        "{}/{}",
        v["id"].as_str().unwrap_or("?"),
        v["source"].as_str().unwrap_or("?")
    )
}

#[actix_web::test]
async fn stored_messages_come_before_live_ones_sent_while_the_session_connects() {
    const STORED: usize = 20;
    const LIVE: usize = 5;
    let hub = Hub::new(fast_config())
        .with_store(Box::new(SlowFetch {
            inner: MemoryStore::default(),
            user: "bob".into(),
            delay: Duration::from_millis(300),
        }))
        .expect("records load")
        .start();
    let server = start_existing(hub).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    store_plain(&server, "bob", "s", STORED, 1).await;

    let (mut bob, _) = connect(&server, "user_id=bob").await;
    // Right after the upgrade, while bob's backlog is being read: live messages for him.
    for i in 0..LIVE {
        alice
            .send_json(&json!({"id":format!("l{i}"),"type":"text","to":"bob","content":"live"}))
            .await;
    }
    let mut got = Vec::new();
    for n in 1..=STORED + LIVE {
        let m = bob
            .expect_app(FRAME, &format!("bob's frame {n} of {}", STORED + LIVE))
            .await;
        got.push(tag(&m));
    }
    let expected: Vec<String> = (0..STORED)
        .map(|i| format!("s{i}/offline"))
        .chain((0..LIVE).map(|i| format!("l{i}/live")))
        .collect();
    assert_eq!(
        got, expected,
        "every stored message first, oldest first, then the live ones"
    );
    bob.assert_quiet().await;
}

#[actix_web::test]
async fn every_new_session_of_the_user_gets_the_stored_messages() {
    const N: usize = 5;
    let server = start(fast_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    for i in 0..N {
        alice
            .send_json(&json!({"id":format!("m{i}"),"type":"text","to":"bob",
                               "content":i.to_string(),"require_ack":true}))
            .await;
        let receipt = alice
            .next_matching(FRAME, |v| v["type"] == "ack")
            .await
            .expect("a receipt");
        assert_eq!(
            receipt["status"], "accepted",
            "stored counts as accepted: {receipt}"
        );
    }
    let expected: Vec<String> = (0..N).map(|i| format!("m{i}/offline")).collect();

    let (mut a, _) = connect(&server, "user_id=bob&client_id=a").await;
    let mut got_a = Vec::new();
    for n in 1..=N {
        got_a.push(tag(&a
            .expect_app(FRAME, &format!("session a: stored message {n}"))
            .await));
    }
    assert_eq!(got_a, expected, "session a");

    // A second device connects while the messages are still unacknowledged.
    let (mut b, _) = connect(&server, "user_id=bob&client_id=b").await;
    let mut got_b = Vec::new();
    for n in 1..=N {
        got_b.push(tag(&b
            .expect_app(FRAME, &format!("session b: stored message {n}"))
            .await));
    }
    assert_eq!(got_b, expected, "session b gets them too");

    // One ack per message (from either device) settles it for the user.
    for i in 0..N {
        a.ack_from(&format!("m{i}"), "alice").await;
    }
    wait_until(FRAME, "bob's acked messages leave the store", || async {
        match offline_count(&server, "bob").await {
            0 => Ok(()),
            n => Err(format!("{n} still stored")),
        }
    })
    .await;
    let (mut c, _) = connect(&server, "user_id=bob&client_id=c").await;
    c.assert_quiet().await;
    a.assert_quiet().await;
    b.assert_quiet().await;
}

#[actix_web::test]
async fn a_backlog_larger_than_the_session_queue_arrives_whole_and_in_order() {
    const N: usize = 200;
    let mut config = fast_config();
    config.session.queue_bytes = 8 * 1024;
    config.store.per_user_cap = 1_000;
    let server = start(config).await;
    // 200 frames of about 350 bytes each: some 70 KB, nine times the session's queue.
    store_plain(&server, "bob", "b", N, 200).await;
    assert_eq!(offline_count(&server, "bob").await, N);

    let (mut bob, _) = connect(&server, "user_id=bob").await;
    for i in 0..N {
        let m = bob
            .expect_app(
                FRAME,
                &format!(
                    "stored message {} of {N} (a reader is never closed for its own backlog)",
                    i + 1
                ),
            )
            .await;
        assert_eq!(tag(&m), format!("b{i}/offline"), "in order");
    }
    bob.assert_quiet().await;
    wait_until(
        FRAME,
        "plain stored messages leave the store once queued",
        || async {
            match offline_count(&server, "bob").await {
                0 => Ok(()),
                n => Err(format!("{n} still stored")),
            }
        },
    )
    .await;
}

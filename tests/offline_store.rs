//! Offline store-and-forward: order and `source`, ack-requested messages kept until acked,
//! caps and TTL, the SQLite backend across a hub restart, and store failures reported to the
//! handlers.

mod common;

use std::time::Duration;

use actix::prelude::*;
use actix_wsc::config::{Config, StoreBackend};
use actix_wsc::error::FailureKind;
use actix_wsc::handlers::{QueueFull, SendFailed, UserOffline};
use actix_wsc::hub::{
    Dispatch, GetReliability, Hub, RedeliverStored, RetryAllFailed, SendTracked, Subscribe, Target,
};
use actix_wsc::protocol::{Envelope, UserId};
use actix_wsc::store::DelayedItem;
use actix_wsc::store::{BatchOutcome, OfflineItem, Store, StoreError};
use actix_wsc::supervision::{MessageKey, MessageRecord, MessageStatus};
use common::*;
use serde_json::json;

async fn send_tracked(
    server: &TestServer,
    user: &str,
    envelope: Envelope,
) -> actix_wsc::hub::SendReport {
    server
        .hub
        .send(SendTracked::new(Target::User(user.into()), envelope))
        .await
        .expect("hub")
}

#[actix_web::test]
async fn stored_messages_arrive_after_the_welcome_oldest_first_once() {
    let server = start(fast_config()).await;
    let (off_tx, mut offline) = collector::<UserOffline>();
    server.hub.send(Subscribe(off_tx)).await.expect("hub");
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    for i in 0..3 {
        alice
            .send_json(&json!({"id":format!("c{i}"),"type":"text","to":"bob","content":i.to_string(),"require_ack":true}))
            .await;
        assert_eq!(
            alice.next_json().await["status"],
            "accepted",
            "stored counts as accepted"
        );
    }
    let report = send_tracked(&server, "bob", Envelope::system_text("3").with_id("api3")).await;
    assert_eq!(report.stored_offline, vec![UserId::from("bob")]);
    assert_eq!(
        wait_for(&mut offline, |_| true).await.user_id.as_str(),
        "bob"
    );

    let (mut bob, _) = connect(&server, "user_id=bob").await; // `connect` checks the welcome came first
    let mut ids = Vec::new();
    for i in 0..4 {
        let m = bob.next_json().await;
        assert_eq!(m["source"], "offline");
        assert_eq!(m["content"], i.to_string());
        assert_eq!(m["seq_no"], i + 1);
        ids.push(m["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(ids, ["c0", "c1", "c2", "api3"]);
    for id in &ids[..3] {
        bob.send_json(&json!({"type":"ack","id":id})).await;
    }
    // Acked ones and the plain one are gone from the store: a new session gets nothing.
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let store = rel.store().expect("store").clone();
    eventually(|| {
        let store = store.clone();
        async move { store.count("bob".into()).await == Ok(0) }
    })
    .await;
    let (mut bob2, _) = connect(&server, "user_id=bob").await;
    bob2.assert_quiet().await;
}

#[actix_web::test]
async fn unacked_message_goes_back_to_the_store_for_the_next_connection() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 150;
    config.retry.max_retries = 1;
    config.retry.base_delay_ms = 10;
    config.retry.max_delay_ms = 10;
    let server = start(config).await;
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let (mut u, _) = connect(&server, "user_id=u").await;
    let done = rel.records().wait_final(&MessageKey::new("system", "k1"));
    send_tracked(
        &server,
        "u",
        Envelope::system_text("ack me")
            .with_id("k1")
            .with_require_ack(true),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(u.next_json().await["id"], "k1"); // first try and one resend, never acked
    }
    let record = tokio::time::timeout(WAIT, done)
        .await
        .expect("settled")
        .expect("record");
    assert_eq!(record.status, MessageStatus::AckTimeout);
    let store = rel.store().expect("store").clone();
    eventually(|| {
        let store = store.clone();
        async move { store.count("u".into()).await == Ok(1) }
    })
    .await;
    u.close().await;
    let (mut u2, _) = connect(&server, "user_id=u").await;
    let m = u2.next_json().await;
    assert_eq!(m["id"], "k1");
    assert_eq!(m["source"], "offline");
    assert_eq!(m["require_ack"], true);
    u2.send_json(&json!({"type":"ack","id":"k1"})).await;
    eventually(|| {
        let store = store.clone();
        async move { store.count("u".into()).await == Ok(0) }
    })
    .await;
    assert_eq!(
        rel.records()
            .get(&MessageKey::new("system", "k1"))
            .map(|r| r.status),
        Some(MessageStatus::Acked)
    );
}

#[actix_web::test]
async fn per_user_cap_drops_the_oldest_and_tells_the_queue_full_handlers() {
    let mut config = fast_config();
    config.store.per_user_cap = 3;
    let server = start(config).await;
    let (qf_tx, mut queue_full) = collector::<QueueFull>();
    server.hub.send(Subscribe(qf_tx)).await.expect("hub");
    for i in 0..5 {
        let r = send_tracked(
            &server,
            "capped",
            Envelope::system_text(i.to_string()).with_id(format!("q{i}")),
        )
        .await;
        assert_eq!(r.stored_offline.len(), 1);
    }
    let mut dropped = Vec::new();
    for _ in 0..2 {
        let ev = wait_for(&mut queue_full, |_| true).await;
        assert_eq!(ev.queue, "offline_store");
        assert_eq!(ev.recipient, "capped");
        dropped.push(ev.message.id.to_string());
    }
    dropped.sort();
    assert_eq!(dropped, ["q0", "q1"]);
    let (mut c, _) = connect(&server, "user_id=capped").await;
    for i in 2..5 {
        assert_eq!(c.next_json().await["id"], format!("q{i}"));
    }
    c.assert_quiet().await;
}

#[actix_web::test]
async fn expired_messages_are_not_delivered() {
    let mut config = fast_config();
    config.store.ttl_ms = 1;
    let server = start(config).await;
    let r = send_tracked(&server, "late", Envelope::system_text("stale")).await;
    assert_eq!(r.stored_offline.len(), 1, "stored, with a 1 ms lifetime");
    // The commit alone takes the 2 ms batch window, so the item is expired by now.
    let (mut c, _) = connect(&server, "user_id=late").await;
    c.assert_quiet().await;
}

#[actix_web::test]
async fn plain_messages_are_not_stored_when_configured_so() {
    let mut config = fast_config();
    config.store.store_plain = false;
    let server = start(config).await;
    let r = server
        .hub
        .send(Dispatch::to_user("away", Envelope::system_text("plain")))
        .await
        .expect("hub");
    assert_eq!(r.offline_users.len(), 1);
    let r = send_tracked(
        &server,
        "away",
        Envelope::system_text("acked")
            .with_id("keep")
            .with_require_ack(true),
    )
    .await;
    assert_eq!(
        r.stored_offline.len(),
        1,
        "ACK-requested messages are always stored"
    );
    let (mut c, _) = connect(&server, "user_id=away").await;
    assert_eq!(c.next_json().await["id"], "keep");
    c.assert_quiet().await;
}

#[actix_web::test]
async fn sqlite_store_survives_a_hub_restart_with_records() {
    let dir = std::env::temp_dir().join(format!("wsc-sqlite-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = fast_config();
    config.server.data_dir = dir.clone();
    config.store.backend = Some(StoreBackend::Sqlite);
    {
        let hub = Hub::from_config(config.clone()).expect("open").start();
        let server = start_existing(hub).await;
        let r = send_tracked(
            &server,
            "dana",
            Envelope::system_text("kept").with_id("s-1"),
        )
        .await;
        assert_eq!(r.stored_offline.len(), 1);
        server.handle.stop(false).await;
    }
    let hub = Hub::from_config(config).expect("reopen").start();
    let server = start_existing(hub).await;
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let rec = rel
        .records()
        .get(&MessageKey::new("system", "s-1"))
        .expect("record loaded from disk");
    assert_eq!(rec.status, MessageStatus::UserOffline);
    let (mut dana, _) = connect(&server, "user_id=dana").await;
    let m = dana.next_json().await;
    assert_eq!(m["id"], "s-1");
    assert_eq!(m["source"], "offline");
    // retry_all_failed works on records loaded from disk: s-1 (user_offline) goes again, live.
    let n = server.hub.send(RetryAllFailed).await.expect("hub");
    assert!(n >= 1, "{n} records retried");
    let m = dana.next_json().await;
    assert_eq!(m["id"], "s-1");
    assert_eq!(m["source"], "live");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The rows of a table in a store's database (read beside the running store: WAL).
fn rows_in(dir: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(dir.join("wsc.db")).expect("open db");
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

#[actix_web::test]
async fn a_stored_message_is_one_row_and_its_record_outlives_the_copy() {
    let dir = std::env::temp_dir().join(format!("wsc-sqlite-{}-{}", std::process::id(), line!()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = fast_config();
    config.server.data_dir = dir.clone();
    config.store.backend = Some(StoreBackend::Sqlite);
    let ids = ["one-1", "one-2", "one-3"];
    {
        let hub = Hub::from_config(config.clone()).expect("open").start();
        let server = start_existing(hub).await;
        for id in ids {
            let r = send_tracked(&server, "ivy", Envelope::system_text(id).with_id(id)).await;
            assert_eq!(r.stored_offline.len(), 1);
        }
        // Every changed record written too: the records went with their copies, so the
        // database holds one row per message.
        let rel = server.hub.send(GetReliability).await.expect("hub");
        let store = rel.store().expect("store").clone();
        store.flush().await.expect("flush");
        assert_eq!(rows_in(&dir, "offline"), 3);
        assert_eq!(rows_in(&dir, "records"), 0, "no second row per message");
        for id in ids {
            let r = store
                .get_record(MessageKey::new("system", id))
                .await
                .expect("read")
                .expect("the record is on disk");
            assert_eq!(r.status, MessageStatus::UserOffline);
            assert_eq!(r.envelope.content, id);
        }
        // Delivered: the copies go, the records stay.
        let (mut ivy, _) = connect(&server, "user_id=ivy").await;
        for id in ids {
            assert_eq!(ivy.next_json().await["id"], id);
        }
        eventually(|| {
            let store = store.clone();
            async move { store.count("ivy".into()).await == Ok(0) }
        })
        .await;
        server.handle.stop(false).await;
    }
    let hub = Hub::from_config(config).expect("reopen").start();
    let server = start_existing(hub).await;
    let rel = server.hub.send(GetReliability).await.expect("hub");
    for id in ids {
        let r = rel
            .records()
            .get(&MessageKey::new("system", id))
            .expect("record loaded from disk after its copy was delivered");
        assert_eq!(r.status, MessageStatus::UserOffline);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_data_dir_is_a_clear_error() {
    let file = std::env::temp_dir().join(format!("wsc-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, b"x").expect("write");
    let mut config = Config::default();
    config.server.data_dir = file.join("data");
    config.store.backend = Some(StoreBackend::Sqlite);
    let err = Hub::from_config(config).err().expect("must fail");
    assert!(matches!(err, StoreError::DataDir(_)), "{err}");
    assert!(err.to_string().contains("data directory"), "{err}");
    let _ = std::fs::remove_file(&file);
}

/// A backend whose disk is full.
struct FullDisk;

impl Store for FullDisk {
    fn commit(
        &mut self,
        _: &[OfflineItem],
        _: &[MessageRecord],
        _: usize,
    ) -> Result<BatchOutcome, StoreError> {
        Err(StoreError::Backend("database or disk is full".into()))
    }
    fn fetch_offline(
        &mut self,
        _: &UserId,
        _: u64,
        _: usize,
    ) -> Result<Vec<OfflineItem>, StoreError> {
        Err(StoreError::Backend("disk I/O error".into()))
    }
    fn remove_offline(&mut self, _: &UserId, _: &[MessageKey]) -> Result<usize, StoreError> {
        Err(StoreError::Backend("database or disk is full".into()))
    }
    fn purge(&mut self, _: u64, _: u64) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn load_records(&mut self) -> Result<Vec<MessageRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn offline_count(&mut self, _: &UserId) -> Result<usize, StoreError> {
        Ok(0)
    }
    fn get_record(&mut self, _: &MessageKey) -> Result<Option<MessageRecord>, StoreError> {
        Ok(None)
    }
    fn save_delayed(&mut self, _: &DelayedItem) -> Result<(), StoreError> {
        Err(StoreError::Backend("database or disk is full".into()))
    }
    fn remove_delayed(&mut self, _: &MessageKey) -> Result<(), StoreError> {
        Ok(())
    }
    fn load_delayed(&mut self) -> Result<Vec<DelayedItem>, StoreError> {
        Ok(Vec::new())
    }
}

#[actix_web::test]
async fn store_failures_reach_the_handlers_and_the_callers() {
    let hub = Hub::new(fast_config())
        .with_store(Box::new(FullDisk))
        .expect("records load")
        .start();
    let server = start_existing(hub).await;
    let (sf_tx, mut send_failed) = collector::<SendFailed>();
    server.hub.send(Subscribe(sf_tx)).await.expect("hub");
    let r = send_tracked(
        &server,
        "nobody",
        Envelope::system_text("x").with_id("full-1"),
    )
    .await;
    assert!(r.stored_offline.is_empty());
    assert!(matches!(r.store_error, Some(StoreError::Backend(_))));
    let ev = wait_for(&mut send_failed, |e| e.reason == FailureKind::Internal).await;
    assert_eq!(ev.message.id.as_str(), "full-1");
    assert!(ev.error.contains("disk is full"), "{}", ev.error);
    // A client's reliable message gets a failed receipt; the session and hub keep working.
    let (mut a, _) = connect(&server, "user_id=a").await;
    a.send_json(&json!({"id":"full-2","type":"text","to":"ghost","require_ack":true}))
        .await;
    let r = a.next_json().await;
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["code"], "internal");
    a.assert_alive().await;
    let _ = Duration::ZERO;
}

#[actix_web::test]
async fn a_full_sqlite_database_fails_stores_cleanly() {
    let dir = std::env::temp_dir().join(format!("wsc-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = fast_config();
    config.server.data_dir = dir.clone();
    config.store.backend = Some(StoreBackend::Sqlite);
    config.store.max_db_bytes = 64 * 1024; // a "disk" of 64 KiB
    let hub = Hub::from_config(config).expect("open").start();
    let server = start_existing(hub).await;
    let (sf_tx, mut send_failed) = collector::<SendFailed>();
    server.hub.send(Subscribe(sf_tx)).await.expect("hub");
    let big = "x".repeat(2048);
    let mut stored = 0;
    let mut error = None;
    for i in 0..200 {
        let r = send_tracked(
            &server,
            "far",
            Envelope::system_text(big.clone()).with_id(format!("big{i}")),
        )
        .await;
        match r.store_error {
            Some(e) => {
                error = Some(e);
                break;
            }
            None => stored += 1,
        }
    }
    let error = error.expect("the database filled up within 200 messages");
    assert!(stored > 0, "some fit before it was full");
    assert!(error.to_string().contains("full"), "{error}");
    let ev = wait_for(&mut send_failed, |e| e.reason == FailureKind::Internal).await;
    assert!(ev.error.contains("full"), "{}", ev.error);
    // The hub keeps serving live traffic, and what was stored is still delivered.
    let (mut far, _) = connect(&server, "user_id=far").await;
    assert_eq!(far.next_json().await["id"], "big0");
    let (mut near, _) = connect(&server, "user_id=near").await;
    near.send_json(&json!({"type":"text","to":"near","content":"still up"}))
        .await;
    assert_eq!(near.next_json().await["content"], "still up");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A second read of a session's stored messages (in a cluster, another node said it stored
/// one for the user) queues only the copies stored since the first: a copy the session
/// already has (here one awaiting its ack, so still stored) is not queued again.
#[actix_web::test]
async fn a_second_backlog_read_queues_only_copies_stored_since() {
    let server = start(fast_config()).await;
    let acked = Envelope::system_text("first")
        .with_id("k0")
        .with_require_ack(true);
    let report = send_tracked(&server, "carol", acked).await;
    assert_eq!(report.stored_offline, vec![UserId::from("carol")]);
    let (mut carol, _) = connect(&server, "user_id=carol").await;
    let m = carol.next_json().await;
    assert_eq!(
        (&m["id"], &m["source"]),
        (&json!("k0"), &json!("offline")),
        "{m}"
    );

    // A copy written straight to the store (as another node would), then the nudge.
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let store = rel.store().expect("store").clone();
    let now = actix_wsc::model::now_ms();
    let later = OfflineItem {
        user_id: "carol".into(),
        envelope: Envelope::system_text("second").with_id("k1").into(),
        stored_ms: now,
        expires_ms: now + 60_000,
        seq: 0,
        record: None,
    };
    store.enqueue(vec![later]).await.expect("stored");
    server
        .hub
        .send(RedeliverStored {
            user: "carol".into(),
        })
        .await
        .expect("hub");
    let m = carol.next_json().await;
    assert_eq!(
        m["id"], "k1",
        "only the copy stored since, not k0 again: {m}"
    );
    carol.assert_quiet().await;
}

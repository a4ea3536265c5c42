//! The Redis store backend against a real `redis-server` on 127.0.0.1: the same contract
//! as the SQLite store (checked by running one conformance test on both), its refusal of a
//! Redis without AOF, and a `wsc-server` on Redis that loses nothing to `kill -9` even when
//! it restarts with an empty data directory.

mod common;
mod redis_harness;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use actix_wsc::model::{MessageKey, MessageRecord, MessageStatus, RecordTarget};
use actix_wsc::protocol::{Envelope, MessageType, UserId};
use actix_wsc::store::{DelayedItem, OfflineItem, RedisStore, SqliteStore, Store};
use common::*;
use redis_harness::RedisServer;

fn envelope(from: &str, id: &str, content: &str) -> Envelope {
    let mut e = Envelope::new(MessageType::Text, from, content);
    e.id = id.into();
    e
}

fn item(user: &str, from: &str, id: &str, expires_ms: u64) -> OfflineItem {
    OfflineItem {
        user_id: UserId::from(user),
        envelope: envelope(from, id, &format!("{from}/{id}")).into(),
        stored_ms: actix_wsc::model::now_ms(),
        expires_ms,
        seq: 0,
        record: None,
    }
}

fn ids(items: &[OfflineItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| format!("{}/{}", i.envelope.from, i.envelope.id))
        .collect()
}

/// An empty data directory for a node.
fn node_dir(tag: &str, n: u32) -> String {
    let d = std::env::temp_dir().join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d.to_string_lossy().into_owned()
}

/// The store contract every durable backend keeps.
fn conformance(store: &mut dyn Store) {
    let far = actix_wsc::model::now_ms() + 3_600_000;
    let bob = UserId::from("bob");

    // Keyed by (from, id): the same id from two senders is two messages; the same message
    // twice is stored once.
    let batch = [
        item("bob", "alice", "1", far),
        item("bob", "carol", "1", far),
        item("bob", "alice", "1", far),
        item("bob", "alice", "2", far),
    ];
    let out = store.commit(&batch, &[], 10).expect("commit");
    assert!(out.dropped.is_empty());
    assert_eq!(store.offline_count(&bob).expect("count"), 3);
    let all = store.fetch_offline(&bob, 0, 100).expect("fetch");
    assert_eq!(ids(&all), ["alice/1", "carol/1", "alice/2"], "oldest first");
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "positions increase"
    );
    assert!(all.iter().all(|i| i.user_id == bob));

    // Paging: after a position, at most `limit`.
    let page = store.fetch_offline(&bob, all[0].seq, 1).expect("page");
    assert_eq!(ids(&page), ["carol/1"]);

    // Over the cap: the oldest leave and are reported, oldest first.
    let out = store
        .commit(
            &[
                item("bob", "dave", "9", far),
                item("bob", "dave", "10", far),
            ],
            &[],
            3,
        )
        .expect("commit over cap");
    assert_eq!(ids(&out.dropped), ["alice/1", "carol/1"]);
    assert_eq!(
        ids(&store.fetch_offline(&bob, 0, 100).expect("fetch")),
        ["alice/2", "dave/9", "dave/10"]
    );

    // Removal by key, only for that user.
    let n = store
        .remove_offline(
            &bob,
            &[MessageKey::new("dave", "9"), MessageKey::new("nobody", "9")],
        )
        .expect("remove");
    assert_eq!(n, 1);
    assert_eq!(store.offline_count(&bob).expect("count"), 2);

    // Expired items are not fetched, and the purge removes them.
    let now = actix_wsc::model::now_ms();
    store
        .commit(&[item("eve", "alice", "old", now - 1)], &[], 10)
        .expect("commit expired");
    let eve = UserId::from("eve");
    assert!(store.fetch_offline(&eve, 0, 10).expect("fetch").is_empty());
    assert_eq!(store.offline_count(&eve).expect("count"), 1);

    // Records: saved, read back, updated in place, loaded at startup, purged once settled.
    let mut pending = MessageRecord::new(
        envelope("alice", "r1", "x"),
        RecordTarget::User(bob.clone()),
        true,
        Duration::from_secs(5),
    );
    let mut settled = MessageRecord::new(
        envelope("carol", "r1", "y"),
        RecordTarget::User(bob.clone()),
        true,
        Duration::from_secs(5),
    );
    settled.status = MessageStatus::Acked;
    store
        .commit(&[], &[pending.clone(), settled.clone()], 10)
        .expect("records");
    let got = store
        .get_record(&MessageKey::new("alice", "r1"))
        .expect("get")
        .expect("stored");
    assert_eq!(got.envelope.content, "x");
    assert_eq!(got.status, MessageStatus::Pending);
    pending.status = MessageStatus::Sending;
    store.commit(&[], &[pending.clone()], 10).expect("update");
    let loaded = store.load_records().expect("load");
    assert_eq!(loaded.len(), 2);
    assert!(loaded
        .iter()
        .any(|r| r.key == pending.key && r.status == MessageStatus::Sending));
    assert!(store
        .get_record(&MessageKey::new("nobody", "r1"))
        .expect("get")
        .is_none());

    let purged = store
        .purge(actix_wsc::model::now_ms(), settled.created_ms + 1)
        .expect("purge");
    assert_eq!(purged, 2, "the expired item and the settled record");
    assert_eq!(store.offline_count(&eve).expect("count"), 0);
    assert!(store.get_record(&settled.key).expect("get").is_none());
    assert!(
        store.get_record(&pending.key).expect("get").is_some(),
        "in flight stays"
    );
    assert_eq!(
        store.offline_count(&bob).expect("count"),
        2,
        "unexpired stay"
    );

    // Delayed messages: saved, loaded by due time, removed.
    let d = |id: &str, due_ms: u64| DelayedItem {
        target: RecordTarget::User(bob.clone()),
        envelope: envelope("alice", id, "later"),
        due_ms,
    };
    store.save_delayed(&d("late", far + 2)).expect("save");
    store.save_delayed(&d("soon", far + 1)).expect("save");
    let loaded: Vec<String> = store
        .load_delayed()
        .expect("load delayed")
        .iter()
        .map(|d| d.envelope.id.to_string())
        .collect();
    assert_eq!(loaded, ["soon", "late"]);
    store
        .remove_delayed(&MessageKey::new("alice", "soon"))
        .expect("remove delayed");
    assert_eq!(store.load_delayed().expect("load").len(), 1);

    // A reopened store sees the same data.
    let reopen = store.reopener().expect("durable backends reopen");
    let mut again = reopen().expect("reopen");
    assert_eq!(again.offline_count(&bob).expect("count"), 2);
    drop(again);

    carried_records(store);
}

/// A record an item carries is kept like a record: found by its key (and its id) while the
/// item waits and once it is gone, whatever took it (delivery, the cap, expiry); a record
/// given in `records` is newer and wins; and it follows the record retention.
fn carried_records(store: &mut dyn Store) {
    let far = actix_wsc::model::now_ms() + 3_600_000;
    let gina = UserId::from("gina");
    let record = |id: &str, status: MessageStatus| {
        let mut r = MessageRecord::new(
            envelope("frank", id, &format!("carried {id}")),
            RecordTarget::User(gina.clone()),
            false,
            Duration::from_secs(5),
        );
        r.status = status;
        r.stamp();
        r
    };
    // An item carries its own message's record (the same envelope).
    let carrying = |id: &str, r: &MessageRecord, expires_ms: u64| {
        let mut i = item("gina", "frank", id, expires_ms);
        i.envelope = r.envelope.clone();
        i.record = Some(Arc::new(r.clone()));
        i
    };
    let status = |s: &mut dyn Store, id: &str| {
        s.get_record(&MessageKey::new("frank", id))
            .expect("get")
            .map(|r| r.status)
    };

    let c1 = record("c1", MessageStatus::UserOffline);
    store
        .commit(&[carrying("c1", &c1, far)], &[], 10)
        .expect("commit carried");
    let got = store
        .get_record(&c1.key)
        .expect("get")
        .expect("kept while its item waits");
    assert_eq!(got.status, MessageStatus::UserOffline);
    assert_eq!(got.envelope.content, "carried c1");
    assert_eq!(got.updated_at, c1.updated_at);
    assert!(store
        .load_records()
        .expect("load")
        .iter()
        .any(|r| r.key == c1.key));
    let found = store.find_records(&"c1".into()).expect("find");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, c1.key);
    assert_eq!(
        ids(&store.fetch_offline(&gina, 0, 10).expect("fetch")),
        ["frank/c1"]
    );

    // A newer version given in `records` wins, the copy waiting or not.
    let mut newer = c1.clone();
    newer.status = MessageStatus::Failed;
    store.commit(&[], &[newer], 10).expect("newer");
    assert_eq!(status(store, "c1"), Some(MessageStatus::Failed));

    // Delivered and removed: the record stays.
    let c2 = record("c2", MessageStatus::UserOffline);
    store
        .commit(&[carrying("c2", &c2, far)], &[], 10)
        .expect("commit c2");
    // (Several removals at once: each answered with its own count.)
    let removed = store.remove_offline_many(&[
        (gina.clone(), vec![MessageKey::new("frank", "c1")]),
        ("nobody".into(), vec![c2.key.clone()]),
        (gina.clone(), vec![c2.key.clone()]),
    ]);
    assert_eq!(removed, [Ok(1), Ok(0), Ok(1)]);
    assert_eq!(
        status(store, "c1"),
        Some(MessageStatus::Failed),
        "newest kept"
    );
    assert_eq!(status(store, "c2"), Some(MessageStatus::UserOffline));
    assert!(store.fetch_offline(&gina, 0, 10).expect("fetch").is_empty());
    assert_eq!(store.offline_count(&gina).expect("count"), 0);

    // Stored again for the same user once delivered (sent again, missed again): a new copy.
    store
        .commit(&[carrying("c2", &c2, far)], &[], 10)
        .expect("commit c2 again");
    assert_eq!(
        ids(&store.fetch_offline(&gina, 0, 10).expect("fetch")),
        ["frank/c2"]
    );
    assert_eq!(store.offline_count(&gina).expect("count"), 1);
    assert_eq!(
        store.remove_offline(&gina, std::slice::from_ref(&c2.key)),
        Ok(1)
    );
    assert_eq!(status(store, "c2"), Some(MessageStatus::UserOffline));

    // An item stored twice: the record of the second still counts.
    store
        .commit(&[item("gina", "frank", "c3", far)], &[], 10)
        .expect("commit c3");
    let c3 = record("c3", MessageStatus::UserOffline);
    store
        .commit(&[carrying("c3", &c3, far)], &[], 10)
        .expect("commit c3 again");
    assert_eq!(store.offline_count(&gina).expect("count"), 1);
    assert_eq!(status(store, "c3"), Some(MessageStatus::UserOffline));

    // Dropped by the cap: the record stays.
    let c4 = record("c4", MessageStatus::UserOffline);
    let out = store
        .commit(&[carrying("c4", &c4, far)], &[], 1)
        .expect("over the cap");
    assert_eq!(ids(&out.dropped), ["frank/c3"]);
    assert_eq!(status(store, "c3"), Some(MessageStatus::UserOffline));

    // What a restart reads.
    let reopen = store.reopener().expect("durable backends reopen");
    let mut again = reopen().expect("reopen");
    let loaded: HashSet<String> = again
        .load_records()
        .expect("load")
        .iter()
        .filter(|r| r.key.from.as_str() == "frank")
        .map(|r| r.key.id.to_string())
        .collect();
    let all = |ids: &[&str]| ids.iter().map(|i| i.to_string()).collect::<HashSet<_>>();
    assert_eq!(loaded, all(&["c1", "c2", "c3", "c4"]));
    drop(again);

    // Expired and purged: the record stays until the retention drops it, and then goes
    // even while its item waits.
    let now = actix_wsc::model::now_ms();
    let c5 = record("c5", MessageStatus::UserOffline);
    store
        .commit(&[carrying("c5", &c5, now - 1)], &[], 10)
        .expect("commit c5");
    store.purge(now, 0).expect("purge expired items");
    assert_eq!(store.offline_count(&gina).expect("count"), 1, "c4 waits");
    assert_eq!(status(store, "c5"), Some(MessageStatus::UserOffline));
    store
        .purge(now, c5.created_ms + 1)
        .expect("purge settled records");
    for id in ["c1", "c2", "c3", "c4", "c5"] {
        assert_eq!(
            status(store, id),
            None,
            "{id}: settled, older than the retention"
        );
    }
    assert_eq!(
        store.offline_count(&gina).expect("count"),
        1,
        "c4 still waits"
    );
}

#[test]
fn sqlite_keeps_the_store_contract() {
    let dir = std::env::temp_dir().join(format!("wsc-conf-sqlite-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut store = SqliteStore::open(&dir).expect("open sqlite");
    conformance(&mut store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn redis_keeps_the_store_contract() {
    let redis = RedisServer::start();
    let mut store = RedisStore::open(&redis.url(), "wsc", true).expect("open redis");
    conformance(&mut store);
    // Everything it wrote is under its prefix.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut redis.conn())
        .expect("keys");
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| k.starts_with("wsc:")), "{keys:?}");
}

#[test]
fn cluster_nodes_own_their_records_and_delayed_messages() {
    let redis = RedisServer::start();
    // An owned store keeps the whole contract too.
    let mut c = RedisStore::open(&redis.url(), "conf", true)
        .expect("open")
        .owned_by("n0");
    conformance(&mut c);
    let mut a = RedisStore::open(&redis.url(), "wsc", true)
        .expect("open a")
        .owned_by("n1");
    let mut b = RedisStore::open(&redis.url(), "wsc", true)
        .expect("open b")
        .owned_by("n2");
    let rec = |from: &str, id: &str| {
        MessageRecord::new(
            envelope(from, id, "x"),
            RecordTarget::User("bob".into()),
            true,
            Duration::from_secs(1),
        )
    };
    a.commit(&[], &[rec("alice", "1")], 10).expect("commit a");
    b.commit(&[], &[rec("carol", "2")], 10).expect("commit b");
    let keys = |s: &mut RedisStore| -> Vec<String> {
        s.load_records()
            .expect("load")
            .iter()
            .map(|r| r.key.to_string())
            .collect()
    };
    assert_eq!(
        keys(&mut a),
        vec![MessageKey::new("alice", "1").to_string()]
    );
    assert_eq!(
        keys(&mut b),
        vec![MessageKey::new("carol", "2").to_string()]
    );
    // Readable from any node.
    let other = b
        .get_record(&MessageKey::new("alice", "1"))
        .expect("get")
        .expect("found through another node");
    assert_eq!(other.key.id.as_str(), "1");
    let later = DelayedItem {
        target: RecordTarget::User("bob".into()),
        envelope: envelope("alice", "d1", "later"),
        due_ms: actix_wsc::model::now_ms() + 60_000,
    };
    a.save_delayed(&later).expect("save delayed");
    assert_eq!(a.load_delayed().expect("a").len(), 1);
    assert!(
        b.load_delayed().expect("b").is_empty(),
        "only its owner sends it"
    );
}

#[test]
fn two_prefixes_share_one_redis_without_mixing() {
    let redis = RedisServer::start();
    let mut a = RedisStore::open(&redis.url(), "app-a", true).expect("open a");
    let mut b = RedisStore::open(&redis.url(), "app-b", true).expect("open b");
    let far = actix_wsc::model::now_ms() + 60_000;
    a.commit(&[item("bob", "alice", "1", far)], &[], 10)
        .expect("commit a");
    assert_eq!(a.offline_count(&UserId::from("bob")).expect("a"), 1);
    assert_eq!(b.offline_count(&UserId::from("bob")).expect("b"), 0);
}

#[test]
fn a_redis_without_aof_is_refused_with_a_clear_error() {
    let redis = RedisServer::start_with(&["--appendonly", "no"]);
    let err = match RedisStore::open(&redis.url(), "wsc", true) {
        Ok(_) => panic!("a Redis without AOF must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("append-only file off"), "{err}");
    assert!(err.contains("redis_require_aof"), "{err}");
    // Allowed when the operator says so.
    RedisStore::open(&redis.url(), "wsc", false).expect("opt out");
}

#[test]
fn an_unreachable_redis_is_an_error_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("redis://:secret@127.0.0.1:{port}/0");
    let err = match RedisStore::open(&url, "wsc", true) {
        Ok(_) => panic!("nothing listens there"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("secret"), "the password is not shown: {err}");
}

#[actix_web::test]
async fn server_on_redis_loses_nothing_to_sigkill_even_with_a_fresh_data_dir() {
    const N: usize = 40;
    let redis = RedisServer::start();
    let url = redis.url();
    let envs = [
        ("WSC_STORE", "redis"),
        ("WSC_STORE_REDIS_URL", url.as_str()),
    ];
    let (d1, d2) = (node_dir("wsc-redis-node", 1), node_dir("wsc-redis-node", 2));

    let mut first = spawn_server(&["--bind", "127.0.0.1:0", "--data-dir", &d1], &envs);
    let send = format!("http://{}/api/send", first.addr);
    let mut sent = Vec::new();
    for i in 0..N {
        let body = serde_json::json!({
            "to": "away", "content": i.to_string(), "require_ack": i % 2 == 0
        });
        let (status, answer) = post_json(&send, &body).await;
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["status"], "stored_offline", "{answer}");
        sent.push(answer["id"].as_str().expect("id").to_owned());
    }
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");

    // Another data directory: whatever arrives came from Redis.
    let second = spawn_server(&["--bind", "127.0.0.1:0", "--data-dir", &d2], &envs);
    let mut client = try_connect(&format!("ws://{}/ws?user_id=away", second.addr))
        .await
        .expect("connect after restart");
    assert_eq!(client.next_json().await["data"]["event"], "connected");
    let mut seen = HashSet::new();
    for (i, id) in sent.iter().enumerate() {
        let m = client.expect_app(WAIT, "a stored message").await;
        assert_eq!(m["content"], i.to_string(), "in order");
        assert_eq!(&m["id"], id.as_str());
        assert_eq!(m["source"], "offline");
        assert!(seen.insert(id.clone()), "no duplicates");
        if m["require_ack"] == true {
            let from = m["from"].as_str().expect("from").to_owned();
            client.ack_from(id, &from).await;
        }
    }
    client
        .assert_no_app_within(Duration::from_millis(300), "nothing more")
        .await;
    terminate(&second);
    assert!(wait_exit(second).success());
    for d in [d1, d2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn server_refuses_to_start_on_redis_without_a_url() {
    let out = run_bounded(
        std::process::Command::new(env!("CARGO_BIN_EXE_wsc-server"))
            .args(["--bind", "127.0.0.1:0"])
            .env("WSC_STORE", "redis")
            .env_remove("WSC_STORE_REDIS_URL"),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.redis_url"), "{err}");
}

#[actix_web::test]
async fn an_unacked_delivery_is_redelivered_after_sigkill_from_redis_records() {
    let redis = RedisServer::start();
    let url = redis.url();
    let envs = [
        ("WSC_STORE", "redis"),
        ("WSC_STORE_REDIS_URL", url.as_str()),
    ];
    let (d1, d2) = (
        node_dir("wsc-redis-inflight", 1),
        node_dir("wsc-redis-inflight", 2),
    );
    let first = spawn_server(&["--bind", "127.0.0.1:0", "--data-dir", &d1], &envs);
    let mut bob = try_connect(&format!("ws://{}/ws?user_id=bob", first.addr))
        .await
        .expect("connect");
    assert_eq!(bob.next_json().await["data"]["event"], "connected");
    let body = serde_json::json!({"to": "bob", "content": "keep me", "require_ack": true});
    let (status, answer) = post_json(&format!("http://{}/api/send", first.addr), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "accepted", "{answer}");
    let id = answer["id"].as_str().expect("id").to_owned();
    let got = bob.expect_app(WAIT, "the live delivery").await;
    assert_eq!(got["id"], id.as_str());
    // Withhold the ack until the record in flight is in Redis, then kill the node.
    let mut conn = redis.conn();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let n: usize = redis::cmd("HLEN")
            .arg("wsc:rec")
            .query(&mut conn)
            .expect("hlen");
        if n >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "record not written to Redis"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let mut first = first;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    drop(bob);

    let second = spawn_server(&["--bind", "127.0.0.1:0", "--data-dir", &d2], &envs);
    let mut bob = try_connect(&format!("ws://{}/ws?user_id=bob", second.addr))
        .await
        .expect("reconnect");
    assert_eq!(bob.next_json().await["data"]["event"], "connected");
    let again = bob.expect_app(WAIT, "the redelivery").await;
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["content"], "keep me");
    assert_eq!(again["require_ack"], true);
    let from = again["from"].as_str().expect("from").to_owned();
    bob.ack_from(&id, &from).await;
    // Acked: the record says so. (A copy that arrives again meanwhile is acked too, as any
    // client does: delivery is at-least-once.)
    let record = format!("http://{}/api/messages/{id}", second.addr);
    let deadline = std::time::Instant::now() + 2 * WAIT;
    loop {
        let (_, v) = get_json(&record).await;
        if v["status"] == "acked" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never acked: {v}");
        if let Some(Got::Json(m)) = bob.next_within(Duration::from_millis(100)).await {
            if m["id"] == id.as_str() {
                bob.ack_from(&id, &from).await;
            }
        }
    }
    terminate(&second);
    assert!(wait_exit(second).success());
    for d in [d1, d2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

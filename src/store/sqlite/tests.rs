//! The migration from schema version 2, on a database written the way version 2 wrote it.

use std::time::Duration;

use rusqlite::{params, Connection};

use super::schema::{SCHEMA_V2, SCHEMA_VERSION};
use super::SqliteStore;
use crate::model::{MessageKey, MessageRecord, MessageStatus, RecordTarget};
use crate::protocol::{Envelope, UserId};
use crate::store::{DelayedItem, OfflineItem, Store};

fn envelope(from: &str, id: &str) -> Envelope {
    let mut e = Envelope::system_text(format!("{from}/{id}")).with_id(id);
    e.from = from.into();
    e
}

fn dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("wsc-sqlite-unit-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

/// A version-2 database: three offline rows of which the middle one was delivered (a gap in
/// the positions, and the last position used is higher than any row's), a record (JSON) and
/// a delayed message.
fn version_2(dir: &std::path::Path, far: u64) -> MessageRecord {
    let conn = Connection::open(dir.join("wsc.db")).expect("open");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE schema_version (version INTEGER NOT NULL);
         {SCHEMA_V2}
         INSERT INTO schema_version (version) VALUES (2);"
    ))
    .expect("v2 schema");
    for (user, from, id) in [
        ("bob", "alice", "1"),
        ("bob", "alice", "2"),
        ("bob", "carol", "3"),
        ("zed", "alice", "4"),
    ] {
        conn.execute(
            "INSERT INTO offline (user_id, from_user, message_id, envelope, stored_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, 1, ?5)",
            params![
                user,
                from,
                id,
                serde_json::to_string(&envelope(from, id)).expect("json"),
                far as i64
            ],
        )
        .expect("offline row");
    }
    conn.execute("DELETE FROM offline WHERE message_id IN ('2', '4')", [])
        .expect("delivered");
    let mut record = MessageRecord::new(
        envelope("alice", "1"),
        RecordTarget::User("bob".into()),
        true,
        Duration::from_secs(5),
    );
    record.status = MessageStatus::UserOffline;
    record.stamp();
    conn.execute(
        "INSERT INTO records (from_user, id, record, final, created_ms) VALUES ('alice', '1', ?1, 1, ?2)",
        params![serde_json::to_string(&record).expect("json"), record.created_ms as i64],
    )
    .expect("record row");
    let delayed = DelayedItem {
        target: RecordTarget::User("bob".into()),
        envelope: envelope("alice", "later"),
        due_ms: far,
    };
    conn.execute(
        "INSERT INTO delayed (from_user, id, item, due_ms) VALUES ('alice', 'later', ?1, ?2)",
        params![serde_json::to_string(&delayed).expect("json"), far as i64],
    )
    .expect("delayed row");
    record
}

#[test]
fn a_version_2_database_is_migrated_keeping_its_data() {
    let dir = dir("v2");
    let far = crate::model::now_ms() + 3_600_000;
    let record = version_2(&dir, far);

    let mut store = SqliteStore::open(&dir).expect("migrates");
    let version: i64 = store
        .conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);

    // Offline rows: the same, in the same order, at the same positions.
    let bob = UserId::from("bob");
    let rows = store.fetch_offline(&bob, 0, 10).expect("fetch");
    let got: Vec<(String, u64)> = rows
        .iter()
        .map(|i| (format!("{}/{}", i.envelope.from, i.envelope.id), i.seq))
        .collect();
    assert_eq!(
        got,
        [("alice/1".to_string(), 1), ("carol/3".to_string(), 3)]
    );
    assert_eq!(rows[1].envelope.content, "carol/3");
    assert_eq!(store.offline_count(&bob).expect("count"), 2);

    // The version-2 record (JSON) reads as before.
    let loaded = store.get_record(&record.key).expect("get").expect("kept");
    assert_eq!(loaded.status, MessageStatus::UserOffline);
    assert_eq!(loaded.updated_at, record.updated_at);
    assert_eq!(store.load_records().expect("load").len(), 1);
    assert_eq!(store.load_delayed().expect("delayed").len(), 1);

    // New rows take positions after every one used before (never a delivered one's again),
    // and carry their records.
    let mut carried = MessageRecord::new(
        envelope("dave", "5"),
        RecordTarget::User(bob.clone()),
        false,
        Duration::from_secs(5),
    );
    carried.status = MessageStatus::UserOffline;
    let item = OfflineItem {
        user_id: bob.clone(),
        envelope: carried.envelope.clone(),
        stored_ms: 2,
        expires_ms: far,
        seq: 0,
        record: Some(carried.clone().into()),
    };
    store.commit(&[item], &[], 10).expect("commit");
    let rows = store.fetch_offline(&bob, 3, 10).expect("fetch new");
    assert_eq!(rows.len(), 1);
    assert!(rows[0].seq > 4, "position {} reused", rows[0].seq);
    assert_eq!(
        store
            .get_record(&MessageKey::new("dave", "5"))
            .expect("get")
            .map(|r| r.status),
        Some(MessageStatus::UserOffline)
    );

    // Opened again: nothing to migrate, same data.
    drop(store);
    let mut again = SqliteStore::open(&dir).expect("reopens");
    assert_eq!(again.offline_count(&bob).expect("count"), 3);
    assert_eq!(again.load_records().expect("load").len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Durability that never degrades quietly: delayed messages survive a restart, unreadable
//! records stop the start, supervision restarts are observable.

mod common;

use std::process::Command;
use std::time::Duration;

use actix::prelude::*;
use actix_wsc::config::{Config, StoreBackend};
use actix_wsc::handlers::ActorRestarted;
use actix_wsc::hub::{DispatchLater, GetSupervisors, Hub, ScheduleError, Subscribe, Target};
use actix_wsc::protocol::Envelope;
use actix_wsc::store::{SqliteStore, Store};
use actix_wsc::supervision::Restart;
use common::*;

fn sqlite_config(tag: &str) -> Config {
    let dir = std::env::temp_dir().join(format!("wsc-dur-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir); // a leftover of an earlier run, if any
    let mut config = fast_config();
    config.server.data_dir = dir;
    config.store.backend = Some(StoreBackend::Sqlite);
    config
}

#[actix_web::test]
async fn a_delayed_message_is_sent_after_a_restart() {
    let config = sqlite_config("delayed");
    let first = Hub::from_config(config.clone()).expect("open").start();
    let id = first
        .send(DispatchLater {
            delay: Duration::from_millis(700),
            target: Target::User("late".into()),
            envelope: Envelope::system_text("after the restart").with_id("d-1"),
        })
        .await
        .expect("hub")
        .expect("persisted");
    assert_eq!(id.as_str(), "d-1");
    // Durable before the answer: a second reader of the same database sees it.
    let mut reader = SqliteStore::open(&config.server.data_dir).expect("reader");
    let delayed = reader.load_delayed().expect("load");
    assert_eq!(delayed.len(), 1, "{delayed:?}");
    // A new hub on the same directory (the server restarted) sends it when due.
    let hub = Hub::from_config(config.clone()).expect("reopen").start();
    let server = start_existing(hub).await;
    let (mut late, _) = connect(&server, "user_id=late").await;
    let m = late.next_json().await;
    assert_eq!(m["id"], "d-1", "{m}");
    assert_eq!(m["content"], "after the restart");
    let _ = std::fs::remove_dir_all(&config.server.data_dir);
}

#[actix_web::test]
async fn a_matching_target_cannot_be_delayed() {
    let server = start(fast_config()).await;
    let pred: actix_wsc::hub::SessionPredicate = std::sync::Arc::new(|_| true);
    let res = server
        .hub
        .send(DispatchLater {
            delay: Duration::from_millis(10),
            target: Target::Matching(pred),
            envelope: Envelope::system_text("x"),
        })
        .await
        .expect("hub");
    assert_eq!(res, Err(ScheduleError::NotPersistable));
}

#[test]
fn unreadable_records_stop_the_start() {
    let config = sqlite_config("corrupt");
    let dir = config.server.data_dir.clone();
    drop(SqliteStore::open(&dir).expect("create"));
    let conn = rusqlite::Connection::open(dir.join("wsc.db")).expect("open db");
    conn.execute(
        "INSERT INTO records (from_user, id, record, final, created_ms) VALUES ('a', '1', 'not json', 0, 0)",
        [],
    )
    .expect("insert");
    drop(conn);
    let err = Hub::from_config(config)
        .err()
        .expect("an error, not an empty hub");
    assert!(
        err.to_string().contains("unreadable message record"),
        "{err}"
    );
    let out = run_bounded(
        Command::new(BIN)
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&dir),
    );
    assert_eq!(out.status.code(), Some(2), "exit code");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unreadable message record"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_web::test]
async fn supervision_restarts_are_published() {
    let server = start(fast_config()).await;
    let (tx, mut restarts) = collector::<ActorRestarted>();
    server.hub.send(Subscribe(tx)).await.expect("hub");
    let sup = server
        .hub
        .send(GetSupervisors)
        .await
        .expect("hub")
        .expect("started");
    sup.retry_actor.send(Restart).await.expect("running");
    let ev = wait_for(&mut restarts, |e| e.actor == "retry_actor").await;
    assert_eq!(ev.actor, "retry_actor");
    sup.ack_tracker.send(Restart).await.expect("running");
    wait_for(&mut restarts, |e| e.actor == "ack_tracker").await;
}

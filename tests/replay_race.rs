//! After `kill -9`, records found in flight are stored again at startup for their
//! recipients; a recipient that connects while that write is still running (its backlog
//! read misses the copy) still gets the message at once, not only at its next connection.
//! (When the write finishes between the backlog read and its delivery, a second copy can
//! follow: allowed, clients drop duplicates by (from, id).)

mod common;

use std::time::{Duration, Instant};

use common::*;

fn records_on_disk(dir: &str) -> i64 {
    let path = std::path::Path::new(dir).join("wsc.db");
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_delivery_in_flight_at_sigkill_reaches_a_client_that_connects_at_once() {
    let dir = std::env::temp_dir().join(format!("wsc-replay-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data_dir = dir.to_string_lossy().into_owned();
    let args = ["--bind", "127.0.0.1:0", "--data-dir", data_dir.as_str()];

    let mut first = spawn_server(&args, &[]);
    let mut bob = try_connect(&format!("ws://{}/ws?user_id=bob", first.addr))
        .await
        .expect("connect");
    assert_eq!(bob.next_json().await["data"]["event"], "connected");
    let body = serde_json::json!({"to": "bob", "content": "in flight", "require_ack": true});
    let (status, answer) = post_json(&format!("http://{}/api/send", first.addr), &body).await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["id"].as_str().expect("id").to_owned();
    assert_eq!(
        bob.expect_app(WAIT, "the live delivery").await["id"],
        id.as_str()
    );
    // No ack: wait until the record in flight is on disk, then kill the server.
    let deadline = Instant::now() + WAIT;
    while records_on_disk(&data_dir) < 1 {
        assert!(
            Instant::now() < deadline,
            "the record in flight was never written"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    drop(bob);

    // Connect the moment the server listens, racing the startup replay.
    let second = spawn_server(&args, &[]);
    let mut bob = try_connect(&format!("ws://{}/ws?user_id=bob", second.addr))
        .await
        .expect("reconnect");
    assert_eq!(bob.next_json().await["data"]["event"], "connected");
    let again = bob.expect_app(WAIT, "the redelivery").await;
    assert_eq!(again["id"], id.as_str());
    assert_eq!(again["content"], "in flight");
    let from = again["from"].as_str().expect("from").to_owned();
    bob.ack_from(&id, &from).await;
    // A second copy can follow when the startup write finished between the backlog read and
    // its delivery (at-least-once: the client drops it by (from, id)); nothing else does.
    while let Some(Got::Json(m)) = bob.next_within(Duration::from_millis(300)).await {
        if is_app_frame(&m) {
            assert_eq!(m["id"], id.as_str(), "only copies of the message: {m}");
            assert_eq!(m["from"], from.as_str());
            bob.ack_from(&id, &from).await;
        }
    }
    terminate(&second);
    assert!(wait_exit(second).success());
    let _ = std::fs::remove_dir_all(&dir);
}

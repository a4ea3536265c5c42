//! At-least-once across reconnections (docs/DELIVERY.md, "When a message is stored for
//! later"): an ACK-requested message that bob's session took but never acknowledged, because
//! the connection died, the retries ran out, or he left while a retry was scheduled, waits in
//! the offline store and reaches his next connection with the same `id` and `from` and
//! `source: offline`. So does a `SendWithAck` / `SendWithRetry` to a user who is offline.

mod common;

use std::time::Duration;

use actix_wsc::config::Config;
use actix_wsc::hub::{AckOptions, SendTracked, SendWithAck, SendWithRetry, Target};
use actix_wsc::protocol::Envelope;
use common::*;
use serde_json::{json, Value};

/// How long a frame that must come may take (far more than it needs).
const FRAME: Duration = Duration::from_secs(3);
/// How long the hub may take to put a lost delivery in the offline store.
const STORED: Duration = Duration::from_secs(3);

/// Acks wait long enough that only the dropped connection ends the first attempt.
fn drop_config() -> Config {
    let mut c = fast_config();
    c.ack.ack_timeout_ms = 2_000;
    c.retry.base_delay_ms = 50;
    c.retry.max_delay_ms = 200;
    c.retry.max_retries = 3;
    c
}

/// Waits for the record of `id` to have `status`.
// NEW API: the record is looked up by (from, id).
async fn wait_status(server: &TestServer, id: &str, status: &str, wait: Duration) {
    wait_until(
        wait,
        &format!("record {id} becomes {status}"),
        || async move {
            let now = record_status(server, id).await;
            if now == status {
                Ok(())
            } else {
                Err(format!("status {now}"))
            }
        },
    )
    .await;
}

/// The first application frame of a new connection of `user` is the stored `id` from `from`:
/// checks it, acks it (naming the sender) and waits for the record to become `acked`.
async fn reconnect_and_expect_stored(
    server: &TestServer,
    user: &str,
    id: &str,
    from: &str,
    content: &str,
) -> (Client, Value) {
    let (mut c, _) = connect(server, &format!("user_id={user}")).await;
    let m = c
        .expect_app(
            FRAME,
            &format!("{user} gets the unacknowledged {id} on reconnecting"),
        )
        .await;
    assert_eq!(m["id"], id, "{m}");
    assert_eq!(m["from"], from, "{m}");
    assert_eq!(m["source"], "offline", "{m}");
    assert_eq!(m["content"], content, "{m}");
    c.ack_from(id, from).await;
    wait_status(server, id, "acked", FRAME).await;
    (c, m)
}

// ---- hole 1: the connection drops before the ack ----

#[actix_web::test]
async fn client_message_survives_a_dropped_connection_before_the_ack() {
    let server = start(drop_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    alice
        .send_json(
            &json!({"id":"d1","type":"text","to":"bob","content":"before the drop",
                           "require_ack":true}),
        )
        .await;
    let receipt = alice
        .next_matching(FRAME, |v| v["type"] == "ack")
        .await
        .expect("a receipt");
    assert_eq!(receipt["status"], "accepted", "{receipt}");
    let m = bob.expect_app(FRAME, "bob gets d1 live").await;
    assert_eq!(
        (m["id"].as_str(), m["require_ack"].as_bool()),
        (Some("d1"), Some(true))
    );
    assert_eq!(m["source"], "live");
    bob.drop_connection(); // no close frame, no ack

    wait_stored_record(&server, "bob", 1, "d1", STORED).await;
    let (_bob, m) =
        reconnect_and_expect_stored(&server, "bob", "d1", "alice", "before the drop").await;
    assert_eq!(m["require_ack"], true, "{m}");
}

#[actix_web::test]
async fn send_tracked_message_survives_a_dropped_connection_before_the_ack() {
    let server = start(drop_config()).await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let report = server
        .hub
        .send(SendTracked::new(
            Target::User("bob".into()),
            Envelope::system_text("tracked")
                .with_id("d2")
                .with_require_ack(true),
        ))
        .await
        .expect("hub");
    assert_eq!(report.route.delivered, 1);
    let m = bob.expect_app(FRAME, "bob gets d2 live").await;
    assert_eq!(
        (m["id"].as_str(), m["require_ack"].as_bool()),
        (Some("d2"), Some(true))
    );
    bob.drop_connection();

    wait_stored_record(&server, "bob", 1, "d2", STORED).await;
    reconnect_and_expect_stored(&server, "bob", "d2", "system", "tracked").await;
}

#[actix_web::test]
async fn api_send_message_survives_a_dropped_connection_before_the_ack() {
    let server = start(drop_config()).await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let (status, answer) = post_json(
        &server.http_url("/api/send"),
        &json!({"id":"d3","to":"bob","from":"ops","content":"from the api","require_ack":true}),
    )
    .await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("accepted")),
        "{answer}"
    );
    let m = bob.expect_app(FRAME, "bob gets d3 live").await;
    assert_eq!(
        (m["id"].as_str(), m["from"].as_str()),
        (Some("d3"), Some("ops"))
    );
    bob.drop_connection();

    wait_stored_record(&server, "bob", 1, "d3", STORED).await;
    reconnect_and_expect_stored(&server, "bob", "d3", "ops", "from the api").await;
}

// ---- hole 2: the retries run out, or the user leaves while one is scheduled ----

/// The one path that already stores (an ack timeout after the last retry, with the user still
/// connected); kept beside the others so the rewrite keeps it.
#[actix_web::test]
async fn retries_run_out_while_connected_then_the_next_connection_gets_it() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 200;
    config.retry.max_retries = 1;
    config.retry.base_delay_ms = 50;
    config.retry.max_delay_ms = 100;
    let server = start(config).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    alice
        .send_json(
            &json!({"id":"r1","type":"text","to":"bob","content":"never acked",
                           "require_ack":true}),
        )
        .await;
    for attempt in 1..=2 {
        let m = bob
            .expect_app(FRAME, &format!("bob gets attempt {attempt} of r1"))
            .await;
        assert_eq!(m["id"], "r1", "{m}");
    }
    wait_status(&server, "r1", "ack_timeout", FRAME).await;
    wait_stored_record(&server, "bob", 1, "r1", STORED).await;
    let record = record_json(&server, "r1").await.expect("record r1");
    assert_eq!(record["stored_offline"], true, "{record}");
    bob.close().await;

    reconnect_and_expect_stored(&server, "bob", "r1", "alice", "never acked").await;
}

#[actix_web::test]
async fn a_clean_close_while_a_retry_is_scheduled_keeps_the_message() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 200;
    config.retry.max_retries = 2;
    config.retry.base_delay_ms = 1_500; // the retry waits long enough to leave before it
    config.retry.max_delay_ms = 1_500;
    config.retry.jitter = false;
    let server = start(config).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    alice
        .send_json(
            &json!({"id":"r2","type":"text","to":"bob","content":"left before the retry",
                           "require_ack":true}),
        )
        .await;
    assert_eq!(bob.expect_app(FRAME, "bob gets r2").await["id"], "r2");
    wait_status(&server, "r2", "retrying", FRAME).await;
    bob.close().await; // a close frame: the retry will find no session

    wait_stored_record(&server, "bob", 1, "r2", STORED).await;
    let record = record_json(&server, "r2").await.expect("record r2");
    assert_eq!(record["stored_offline"], true, "{record}");
    reconnect_and_expect_stored(&server, "bob", "r2", "alice", "left before the retry").await;
}

#[actix_web::test]
async fn a_clean_close_while_the_ack_is_awaited_keeps_the_message() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 300;
    config.retry.max_retries = 2;
    config.retry.base_delay_ms = 50;
    config.retry.max_delay_ms = 100;
    let server = start(config).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    alice
        .send_json(
            &json!({"id":"r3","type":"text","to":"bob","content":"closed before acking",
                           "require_ack":true}),
        )
        .await;
    assert_eq!(bob.expect_app(FRAME, "bob gets r3").await["id"], "r3");
    bob.close().await; // with the ack still awaited

    wait_stored_record(&server, "bob", 1, "r3", STORED).await;
    reconnect_and_expect_stored(&server, "bob", "r3", "alice", "closed before acking").await;
}

// ---- hole 3: SendWithAck / SendWithRetry to an offline user ----

#[actix_web::test]
async fn send_with_ack_to_an_offline_user_is_delivered_when_he_connects() {
    let server = start(drop_config()).await;
    let outcome = tokio::time::timeout(
        FRAME,
        server.hub.send(SendWithAck {
            user_id: "bob".into(),
            envelope: Envelope::system_text("while you were away").with_id("w1"),
            options: AckOptions::default(),
        }),
    )
    .await
    .expect("SendWithAck resolves: a stored message is not in flight")
    .expect("hub");
    log::info!("SendWithAck to offline bob: {outcome:?}");

    wait_stored_record(&server, "bob", 1, "w1", STORED).await;
    let (_bob, m) =
        reconnect_and_expect_stored(&server, "bob", "w1", "system", "while you were away").await;
    assert_eq!(m["require_ack"], true, "{m}");
}

#[actix_web::test]
async fn send_with_retry_to_an_offline_user_is_delivered_when_he_connects() {
    let server = start(drop_config()).await;
    let outcome = tokio::time::timeout(
        FRAME,
        server.hub.send(SendWithRetry {
            user_id: "bob".into(),
            envelope: Envelope::system_text("retry me later").with_id("w2"),
        }),
    )
    .await
    .expect("SendWithRetry resolves: a stored message is not in flight")
    .expect("hub");
    log::info!("SendWithRetry to offline bob: {outcome:?}");

    wait_stored_record(&server, "bob", 1, "w2", STORED).await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    let m = bob.expect_app(FRAME, "bob gets w2 when he connects").await;
    assert_eq!(m["id"], "w2", "{m}");
    assert_eq!(m["from"], "system", "{m}");
    assert_eq!(m["source"], "offline", "{m}");
    assert_ne!(m["require_ack"], true, "a plain message stays plain: {m}");
}

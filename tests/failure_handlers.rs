//! The failure handlers fire from real causes, every specialised failure also reaches the
//! send-failure handlers, send-with-retry reports its attempts, and a panicking handler is
//! isolated. (Queue-full fires in tests/slow_consumer.rs; delivery-timed-out and the final
//! failure after retries in tests/ack.rs.)

mod common;

use std::time::Duration;

use actix::prelude::*;
use actix_wsc::error::FailureKind;
use actix_wsc::handlers::{ConnectionError, SendFailed, UserOffline};
use actix_wsc::hub::{AckOptions, Dispatch, GetReliability, SendWithAck, SendWithRetry, Subscribe};
use actix_wsc::protocol::Envelope;
use actix_wsc::supervision::{MessageKey, MessageStatus};
use common::*;
use serde_json::json;

#[actix_web::test]
async fn user_offline_fires_for_a_user_with_no_session() {
    let server = start(fast_config()).await;
    let (off_tx, mut offline) = collector::<UserOffline>();
    let (sf_tx, mut send_failed) = collector::<SendFailed>();
    server.hub.send(Subscribe(off_tx)).await.expect("hub");
    server.hub.send(Subscribe(sf_tx)).await.expect("hub");
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    alice
        .send_json(&json!({"id":"o1","type":"text","to":"ghost","content":"anyone?"}))
        .await;
    let ev = wait_for(&mut offline, |_| true).await;
    assert_eq!(ev.user_id.as_str(), "ghost");
    assert_eq!(ev.message.id.as_str(), "o1");
    assert_eq!(ev.message.from.as_str(), "alice");
    let ev = wait_for(&mut send_failed, |_| true).await;
    assert_eq!(ev.reason, FailureKind::UserOffline);
    assert_eq!(ev.recipient, "ghost");

    let report = server
        .hub
        .send(Dispatch::to_user("ghost2", Envelope::system_text("x")))
        .await
        .expect("hub");
    assert_eq!(report.delivered, 0);
    assert_eq!(
        wait_for(&mut offline, |_| true).await.user_id.as_str(),
        "ghost2"
    );
}

#[actix_web::test]
async fn connection_error_fires_when_the_socket_dies_with_a_delivery_in_flight() {
    let server = start(fast_config()).await;
    let (ce_tx, mut conn_errors) = collector::<ConnectionError>();
    let (sf_tx, mut send_failed) = collector::<SendFailed>();
    server.hub.send(Subscribe(ce_tx)).await.expect("hub");
    server.hub.send(Subscribe(sf_tx)).await.expect("hub");
    let (mut u, welcome) = connect(&server, "user_id=u").await;
    let client_id = welcome["data"]["client_id"]
        .as_str()
        .expect("client id")
        .to_owned();
    let hub = server.hub.clone();
    let pending = actix_rt::spawn(async move {
        hub.send(SendWithAck {
            user_id: "u".into(),
            envelope: Envelope::system_text("in flight").with_id("f1"),
            options: AckOptions {
                timeout: Some(Duration::from_secs(30)),
                max_retries: Some(0),
            },
        })
        .await
        .expect("hub")
    });
    assert_eq!(u.next_json().await["id"], "f1");
    drop(u); // the TCP connection dies without a close frame, the ack never comes
    let ev = wait_for(&mut conn_errors, |_| true).await;
    assert_eq!(ev.message.id.as_str(), "f1");
    assert_eq!(
        ev.client_id.as_ref().map(|c| c.as_str()),
        Some(client_id.as_str())
    );
    let ev = wait_for(&mut send_failed, |_| true).await;
    assert_eq!(ev.message.id.as_str(), "f1");
    // The user has no session left: no resend, the message waits in the store.
    assert_eq!(ev.reason, FailureKind::ConnectionError);
    let outcome = pending.await.expect("task");
    assert!(!outcome.success);
    assert!(outcome.stored_offline, "kept for the next connection");
    assert_eq!(outcome.status, MessageStatus::Failed);
    assert_eq!(
        outcome.attempts[0].error,
        Some(FailureKind::ConnectionError)
    );
}

#[actix_web::test]
async fn send_with_retry_reports_attempts_and_succeeds_once_the_user_appears() {
    let mut config = fast_config();
    config.retry.retryable = vec![FailureKind::UserOffline];
    config.retry.base_delay_ms = 50;
    config.retry.max_delay_ms = 100;
    config.retry.max_retries = 50;
    let server = start(config).await;

    // Terminal by default elsewhere; here offline is retryable, so it waits for the user.
    let hub = server.hub.clone();
    let pending = actix_rt::spawn(async move {
        hub.send(SendWithRetry {
            user_id: "late".into(),
            envelope: Envelope::system_text("eventually").with_id("w1"),
        })
        .await
        .expect("hub")
    });
    let rel = server.hub.send(GetReliability).await.expect("hub");
    eventually(|| {
        let r = rel.records().get(&MessageKey::new("system", "w1"));
        async move { r.is_some_and(|r| r.retry_count >= 1) }
    })
    .await;
    let (mut late, _) = connect(&server, "user_id=late").await;
    assert_eq!(late.next_json().await["id"], "w1");
    let outcome = pending.await.expect("task");
    assert!(outcome.success);
    assert!(outcome.total_retries >= 1);
    assert_eq!(outcome.attempts.len() as u32, outcome.total_retries + 1);
    assert_eq!(outcome.attempts[0].error, Some(FailureKind::UserOffline));
    assert!(outcome.attempts.last().is_some_and(|a| a.success));
    assert!(outcome.total_time >= Duration::from_millis(1));
}

#[actix_web::test]
async fn send_with_retry_to_an_offline_user_fails_at_once_by_default() {
    let server = start(fast_config()).await;
    let outcome = server
        .hub
        .send(SendWithRetry {
            user_id: "nobody".into(),
            envelope: Envelope::system_text("x"),
        })
        .await
        .expect("hub");
    assert!(!outcome.success);
    assert_eq!(outcome.status, MessageStatus::UserOffline);
    assert_eq!(outcome.final_error, Some(FailureKind::UserOffline));
    assert_eq!(outcome.attempts.len(), 1);
    assert_eq!(outcome.total_retries, 0);
}

/// A handler that panics on every event.
struct Panicker;

impl Actor for Panicker {
    type Context = Context<Self>;
}

impl Handler<UserOffline> for Panicker {
    type Result = ();
    fn handle(&mut self, _: UserOffline, _: &mut Context<Self>) {
        panic!("handler bug");
    }
}

#[actix_web::test]
async fn a_panicking_handler_does_not_stop_the_hub_or_other_handlers() {
    let server = start(fast_config()).await;
    // The faulty handler runs on its own arbiter, as an application's actor would.
    let arbiter = Arbiter::new();
    let panicker = Panicker::start_in_arbiter(&arbiter.handle(), |_| Panicker);
    let (good_tx, mut good) = collector::<UserOffline>();
    server
        .hub
        .send(Subscribe(panicker.clone().recipient::<UserOffline>()))
        .await
        .expect("hub");
    server.hub.send(Subscribe(good_tx)).await.expect("hub");
    for n in 0..3 {
        let user = format!("ghost{n}");
        server
            .hub
            .send(Dispatch::to_user(user.as_str(), Envelope::system_text("x")))
            .await
            .expect("hub keeps answering");
        assert_eq!(wait_for(&mut good, |_| true).await.user_id.as_str(), user);
    }
    // The faulty handler really died (its mailbox is gone)...
    eventually(|| {
        let alive = panicker.connected();
        async move { !alive }
    })
    .await;
    // ...and the hub still serves connections.
    let (mut a, _) = connect(&server, "user_id=a").await;
    a.assert_alive().await;
}

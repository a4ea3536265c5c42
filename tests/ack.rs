//! Delivery with acknowledgement: confirm, resend with the same id and backoff, final
//! timeout, duplicate and late acks, retry of failed messages, and supervisor restarts.

mod common;

use std::time::{Duration, Instant};

use actix_wsc::error::FailureKind;
use actix_wsc::handlers::{DeliveryTimedOut, SendFailed, TimeoutKind};
use actix_wsc::hub::{
    AckOptions, DeliveryOutcome, GetRecord, GetReliability, RetryFailedMessage, SendWithAck,
    Subscribe,
};
use actix_wsc::protocol::Envelope;
use actix_wsc::supervision::{MessageKey, MessageStatus, Restart};
use common::*;
use serde_json::json;

fn ack_config() -> actix_wsc::config::Config {
    let mut c = fast_config();
    c.ack.ack_timeout_ms = 300;
    c.retry.base_delay_ms = 100;
    c.retry.max_delay_ms = 400;
    c.retry.max_retries = 3;
    c
}

/// The next application frame that asks for an ack.
async fn next_ack_request(c: &mut Client) -> serde_json::Value {
    loop {
        let v = c.next_json().await;
        if v["require_ack"] == true {
            return v;
        }
    }
}

async fn ack(c: &mut Client, id: &str) {
    c.send_json(&json!({"type":"ack","id":id})).await;
}

/// Starts a send-with-ack (default options) in the background; resolves to its outcome.
fn spawn_send_with_ack(
    server: &TestServer,
    user: &str,
    envelope: Envelope,
) -> tokio::task::JoinHandle<DeliveryOutcome> {
    let hub = server.hub.clone();
    let user_id = user.into();
    actix_rt::spawn(async move {
        hub.send(SendWithAck {
            user_id,
            envelope,
            options: AckOptions::default(),
        })
        .await
        .expect("hub")
    })
}

#[actix_web::test]
async fn ack_confirmed_on_first_try() {
    let server = start(ack_config()).await;
    let (mut u, _) = connect(&server, "user_id=u").await;
    let pending = spawn_send_with_ack(
        &server,
        "u",
        Envelope::system_text("please confirm").with_id("a1"),
    );
    let m = next_ack_request(&mut u).await;
    assert_eq!(m["id"], "a1");
    ack(&mut u, "a1").await;
    let outcome = pending.await.expect("task");
    assert!(outcome.success);
    assert_eq!(outcome.status, MessageStatus::Acked);
    assert_eq!(outcome.attempts.len(), 1);
    assert_eq!(outcome.total_retries, 0);
    assert!(outcome.attempts[0].success);
}

#[actix_web::test]
async fn client_to_client_reliable_message_and_go_wsc_ack_shape() {
    let server = start(ack_config()).await;
    let (mut alice, _) = connect(&server, "user_id=alice").await;
    let (mut bob, _) = connect(&server, "user_id=bob").await;
    alice
        .send_json(&json!({"id":"c1","type":"text","to":"bob","content":"hi","require_ack":true}))
        .await;
    assert_eq!(alice.next_json().await["status"], "accepted");
    let m = next_ack_request(&mut bob).await;
    assert_eq!(m["id"], "c1");
    let rx = {
        let rel = server.hub.send(GetReliability).await.expect("hub");
        rel.records().wait_final(&MessageKey::new("alice", "c1"))
    };
    // go-wsc's acknowledgement shape is accepted too.
    bob.send_json(&json!({"message_id":"c1","status":"confirmed"}))
        .await;
    let record = tokio::time::timeout(WAIT, rx)
        .await
        .expect("in time")
        .expect("record");
    assert_eq!(record.status, MessageStatus::Acked);
}

#[actix_web::test]
async fn acked_after_the_second_resend_with_the_same_id_and_backoff() {
    let config = ack_config();
    let server = start(config.clone()).await;
    let (mut u, _) = connect(&server, "user_id=u").await;
    let pending = spawn_send_with_ack(&server, "u", Envelope::system_text("again").with_id("r1"));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let m = next_ack_request(&mut u).await;
        seen.push((Instant::now(), m["id"].as_str().expect("id").to_owned()));
    }
    ack(&mut u, "r1").await;
    assert!(seen.iter().all(|(_, id)| id == "r1"), "resends keep the id");
    // Gap between deliveries = ack timeout + jittered backoff in [0, ceiling(retry)].
    let timeout = Duration::from_millis(config.ack.ack_timeout_ms);
    let slack = Duration::from_millis(250);
    for (retry, w) in (1..).zip(seen.windows(2)) {
        let gap = w[1].0 - w[0].0;
        let ceiling = Duration::from_millis(config.retry.base_delay_ms * 2u64.pow(retry - 1));
        assert!(
            gap >= timeout - Duration::from_millis(20),
            "retry {retry}: {gap:?} too early"
        );
        assert!(
            gap <= timeout + ceiling + slack,
            "retry {retry}: {gap:?} too late"
        );
    }
    let outcome = pending.await.expect("task");
    assert!(outcome.success);
    assert_eq!(outcome.attempts.len(), 3);
    assert_eq!(outcome.total_retries, 2);
    assert_eq!(outcome.attempts[0].error, Some(FailureKind::AckTimeout));
    assert_eq!(outcome.attempts[1].error, Some(FailureKind::AckTimeout));
    assert!(outcome.attempts[2].success);
}

#[actix_web::test]
async fn final_timeout_fires_handlers_and_marks_ack_timeout_then_retry_failed_recovers() {
    let mut config = ack_config();
    config.retry.max_retries = 2;
    let server = start(config).await;
    let (to_tx, mut timeouts) = collector::<DeliveryTimedOut>();
    let (sf_tx, mut send_failed) = collector::<SendFailed>();
    server.hub.send(Subscribe(to_tx)).await.expect("hub");
    server.hub.send(Subscribe(sf_tx)).await.expect("hub");
    let (mut u, _) = connect(&server, "user_id=u").await;
    let outcome = {
        let pending = spawn_send_with_ack(
            &server,
            "u",
            Envelope::system_text("never acked").with_id("t1"),
        );
        for _ in 0..3 {
            assert_eq!(next_ack_request(&mut u).await["id"], "t1");
        }
        pending.await.expect("task")
    };
    assert!(!outcome.success);
    assert_eq!(outcome.status, MessageStatus::AckTimeout);
    assert_eq!(outcome.attempts.len(), 3);
    assert_eq!(outcome.final_error, Some(FailureKind::RetriesExhausted));
    let ev = wait_for(&mut timeouts, |_| true).await;
    assert_eq!(ev.message.id.as_str(), "t1");
    assert_eq!(ev.timeout_kind, TimeoutKind::Ack);
    assert_eq!(ev.recipient, "u");
    assert!(ev.waited >= Duration::from_millis(250));
    let ev = wait_for(&mut send_failed, |_| true).await;
    assert_eq!(ev.reason, FailureKind::RetriesExhausted);
    let record = server
        .hub
        .send(GetRecord {
            key: MessageKey::new("system", "t1"),
        })
        .await
        .expect("hub")
        .expect("record");
    assert_eq!(record.status, MessageStatus::AckTimeout);

    assert!(record.stored_offline, "kept for the next connection");

    // retry_failed sends it again with a fresh budget; this time the client acks.
    assert!(server
        .hub
        .send(RetryFailedMessage {
            key: MessageKey::new("system", "t1")
        })
        .await
        .expect("hub"));
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let rx = rel.records().wait_final(&MessageKey::new("system", "t1"));
    assert_eq!(next_ack_request(&mut u).await["id"], "t1");
    ack(&mut u, "t1").await;
    let record = tokio::time::timeout(WAIT, rx)
        .await
        .expect("in time")
        .expect("record");
    assert_eq!(record.status, MessageStatus::Acked);
    assert_eq!(record.attempts.len(), 4);
    assert!(!record.stored_offline, "the stored copy goes once acked");

    // A late ack is harmless: no error frame, the record keeps its outcome.
    ack(&mut u, "t1").await;
    u.assert_quiet().await;
}

#[actix_web::test]
async fn duplicate_and_unknown_acks_are_harmless() {
    let server = start(ack_config()).await;
    let (mut u, _) = connect(&server, "user_id=u").await;
    let pending = spawn_send_with_ack(&server, "u", Envelope::system_text("x").with_id("d1"));
    next_ack_request(&mut u).await;
    ack(&mut u, "d1").await;
    ack(&mut u, "d1").await;
    ack(&mut u, "never-sent").await;
    u.send_json(&json!({"message_id":"d1","status":"confirmed"}))
        .await;
    let outcome = pending.await.expect("task");
    assert!(outcome.success);
    assert_eq!(outcome.attempts.len(), 1);
    u.assert_quiet().await;
}

#[actix_web::test]
async fn restarted_supervision_actors_lose_no_pending_ack_or_retry() {
    let mut config = ack_config();
    config.ack.ack_timeout_ms = 400;
    config.retry.base_delay_ms = 300;
    config.retry.max_delay_ms = 300;
    config.retry.jitter = false;
    let server = start(config).await;
    let rel = server.hub.send(GetReliability).await.expect("hub");
    let sup = server
        .hub
        .send(actix_wsc::hub::GetSupervisors)
        .await
        .expect("hub")
        .expect("started");
    let (mut u, _) = connect(&server, "user_id=u").await;
    let pending = spawn_send_with_ack(
        &server,
        "u",
        Envelope::system_text("survives").with_id("s1"),
    );
    assert_eq!(next_ack_request(&mut u).await["id"], "s1");
    // The ack wait is armed; restart the tracker (its timers die with its context).
    sup.ack_tracker.send(Restart).await.ok();
    // The re-armed deadline still fires and a retry gets scheduled; restart the retry actor
    // while that retry waits, and the classifier again.
    let rx_retrying = async {
        loop {
            if rel
                .records()
                .get(&MessageKey::new("system", "s1"))
                .map(|r| r.status)
                == Some(MessageStatus::Retrying)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, rx_retrying)
        .await
        .expect("retry scheduled after restart");
    // The classifier answers only after the handler that scheduled the retry returned, so
    // the retry actor has the ScheduleRetry queued before its Restart: the armed timer dies
    // with the restart and must be re-armed from the records.
    sup.classifier.send(Restart).await.ok();
    sup.retry_actor.send(Restart).await.ok();
    // The resend still comes, with the same id.
    assert_eq!(next_ack_request(&mut u).await["id"], "s1");
    ack(&mut u, "s1").await;
    let outcome = pending.await.expect("task");
    assert!(outcome.success);
    assert_eq!(outcome.attempts.len(), 2);
}

//! Acknowledgements and duplicates. Most ack tests use a fake server (a bare actix-ws route)
//! that sends `require_ack` frames and reads back exactly what the client answers (every ack
//! names the sender: `{"type":"ack","id":..,"from":..}`); the last ones check that the real
//! server's ack tracker sees the client's ack, and that two senders' messages with the same
//! id both reach the application through the real hub. The duplicate test runs through the
//! real hub.

mod client_common;
mod common;

use actix::Actor;
use actix_wsc::client::*;
use actix_wsc::hub::{AckOptions, Dispatch, SendWithAck};
use actix_wsc::protocol::Envelope;
use actix_wsc::supervision::MessageStatus;
use client_common::*;
use common::*;
use serde_json::json;

fn reliable(id: &str, content: &str) -> serde_json::Value {
    reliable_from("sys", id, content)
}

fn reliable_from(from: &str, id: &str, content: &str) -> serde_json::Value {
    json!({"id": id, "type": "text", "from": from, "to": "al", "content": content,
           "require_ack": true, "seq_no": 1, "source": "live"})
}

/// The ack the client must send for `from`'s message `id`.
fn ack(from: &str, id: &str) -> serde_json::Value {
    json!({"type": "ack", "id": id, "from": from})
}

#[actix_web::test]
async fn require_ack_frames_are_acked_once_the_application_accepts_them() {
    let mut fake = start_fake().await;
    let (events, mut ev) = event_log_with(|m| m.content != "refuse");
    let _client = WscClient::new(fast_client(&fake.url(), "al"))
        .expect("config")
        .with_events(events)
        .start();
    let mut conn = fake.accept().await;
    conn.welcome("al", "c-al").await;
    next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await;

    conn.send(reliable("r1", "refuse")).await;
    conn.send(reliable("r2", "take")).await;
    conn.send(json!({"id": "p1", "type": "text", "from": "sys", "content": "plain"}))
        .await;
    // r1 was refused, p1 needs no ack: the only ack is r2's.
    assert_eq!(conn.next_text().await, ack("sys", "r2"));
    for id in ["r1", "r2", "p1"] {
        assert_eq!(next_message(&mut ev).await.id.as_str(), id);
    }

    // The server resends r2 (its ack was "lost"): dropped, and acked again.
    conn.send(reliable("r2", "take")).await;
    assert_eq!(conn.next_text().await, ack("sys", "r2"));
    // The refused r1 comes again: delivered again (not a duplicate), and this time the
    // application takes it.
    conn.send(reliable("r1", "now take")).await;
    assert_eq!(conn.next_text().await, ack("sys", "r1"));
    let again = next_message(&mut ev).await;
    assert_eq!(
        (again.id.as_str(), again.content.as_str()),
        ("r1", "now take"),
        "the duplicate r2 never reached the application"
    );
}

#[actix_web::test]
async fn manual_mode_acks_only_on_request() {
    let mut fake = start_fake().await;
    let mut config = fast_client(&fake.url(), "al");
    config.ack_mode = AckMode::Manual;
    let (client, mut ev) = start_client(config);
    let mut conn = fake.accept().await;
    conn.welcome("al", "c-al").await;
    conn.send(reliable("m1", "one")).await;
    conn.send(reliable("m2", "two")).await;
    assert_eq!(next_message(&mut ev).await.id.as_str(), "m1");
    let m2 = next_message(&mut ev).await;
    assert_eq!(m2.id.as_str(), "m2");
    assert!(client
        .send(Acknowledge::message(&m2))
        .await
        .expect("client"));
    assert_eq!(
        conn.next_text().await,
        ack("sys", "m2"),
        "nothing was acked before the application asked"
    );
}

#[actix_web::test]
async fn two_senders_with_the_same_id_are_both_delivered_and_acked_by_sender() {
    let mut fake = start_fake().await;
    let (client, mut ev) = start_client(fast_client(&fake.url(), "al"));
    let mut conn = fake.accept().await;
    conn.welcome("al", "c-al").await;
    next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await;

    conn.send(reliable_from("alice", "1", "from alice")).await;
    conn.send(reliable_from("bob", "1", "from bob")).await;
    // Both are new messages: each is acked with its own sender, in order.
    assert_eq!(conn.next_text().await, ack("alice", "1"));
    assert_eq!(conn.next_text().await, ack("bob", "1"));
    for (from, content) in [("alice", "from alice"), ("bob", "from bob")] {
        let m = next_message(&mut ev).await;
        assert_eq!(
            (m.from.as_str(), m.id.as_str(), m.content.as_str()),
            (from, "1", content)
        );
    }

    // A resend of bob's 1 is a duplicate: dropped, and acked again naming bob.
    conn.send(reliable_from("bob", "1", "from bob")).await;
    assert_eq!(conn.next_text().await, ack("bob", "1"));
    // A third sender's 1 is new again.
    conn.send(reliable_from("carol", "1", "from carol")).await;
    assert_eq!(conn.next_text().await, ack("carol", "1"));
    let m = next_message(&mut ev).await;
    assert_eq!(
        (m.from.as_str(), m.content.as_str()),
        ("carol", "from carol"),
        "bob's resend never reached the application"
    );

    // A manual ack names the sender too (harmless in auto mode).
    assert!(client
        .send(Acknowledge::new("alice", "1"))
        .await
        .expect("client"));
    assert_eq!(conn.next_text().await, ack("alice", "1"));
}

#[actix_web::test]
async fn a_manual_ack_confirms_only_the_named_sender() {
    let mut fake = start_fake().await;
    let mut config = fast_client(&fake.url(), "al");
    config.ack_mode = AckMode::Manual;
    let (client, mut ev) = start_client(config);
    let mut conn = fake.accept().await;
    conn.welcome("al", "c-al").await;
    conn.send(reliable_from("alice", "7", "a")).await;
    conn.send(reliable_from("bob", "7", "b")).await;
    let from_alice = next_message(&mut ev).await;
    let from_bob = next_message(&mut ev).await;
    assert_eq!(
        (from_alice.from.as_str(), from_bob.from.as_str()),
        ("alice", "bob")
    );
    assert!(client
        .send(Acknowledge::from(&from_bob))
        .await
        .expect("client"));
    assert_eq!(conn.next_text().await, ack("bob", "7"));

    // bob's resend is acked again by the client (bob's was accepted); alice's resend is still
    // with the application: dropped, not acked, until the application acks alice's.
    conn.send(reliable_from("alice", "7", "a")).await;
    conn.send(reliable_from("bob", "7", "b")).await;
    assert_eq!(
        conn.next_text().await,
        ack("bob", "7"),
        "acking bob's 7 did not confirm alice's"
    );
    assert!(client
        .send(Acknowledge::message(&from_alice))
        .await
        .expect("client"));
    assert_eq!(conn.next_text().await, ack("alice", "7"));
    assert_no_ev(&mut ev, std::time::Duration::from_millis(200), |e| {
        matches!(e, Ev::Message(_))
    })
    .await;
}

#[actix_web::test]
async fn duplicates_from_the_hub_reach_the_application_once() {
    let server = start(fast_config()).await;
    let url = format!("ws://{}/ws", server.addr);
    let (_client, mut ev) = connected_client(fast_client(&url, "dora")).await;
    for content in ["first copy", "second copy"] {
        let report = server
            .hub
            .send(Dispatch::to_user(
                "dora",
                Envelope::system_text(content).with_id("same"),
            ))
            .await
            .expect("hub");
        assert_eq!(report.delivered, 1, "the server delivered both copies");
    }
    server
        .hub
        .send(Dispatch::to_user(
            "dora",
            Envelope::system_text("other").with_id("other"),
        ))
        .await
        .expect("hub");
    let mut copies_on_the_wire = 0;
    let mut delivered = Vec::new();
    loop {
        match next_ev(&mut ev, |e| matches!(e, Ev::Frame(_) | Ev::Message(_))).await {
            Ev::Frame(f) if f.kind == FrameKind::Message && f.text.contains(r#""id":"same""#) => {
                copies_on_the_wire += 1
            }
            Ev::Message(m) => {
                delivered.push((m.id.to_string(), m.content));
                if m.id.as_str() == "other" {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(copies_on_the_wire, 2, "the client read both copies");
    assert_eq!(
        delivered,
        [
            ("same".to_owned(), "first copy".to_owned()),
            ("other".to_owned(), "other".to_owned())
        ],
        "the second copy never reached the application"
    );
}

#[actix_web::test]
async fn the_server_tracker_sees_the_ack_after_a_refused_first_delivery() {
    let mut config = fast_config();
    config.ack.ack_timeout_ms = 200;
    config.retry.base_delay_ms = 20;
    config.retry.max_delay_ms = 50;
    config.retry.max_retries = 3;
    let server = start(config).await;
    let url = format!("ws://{}/ws", server.addr);
    // The application refuses the first delivery of each id and takes the next.
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    let (events, mut ev) =
        event_log_with(move |m| !seen.lock().expect("lock").insert(m.id.as_str().to_owned()));
    let _client = WscClient::new(fast_client(&url, "eve"))
        .expect("config")
        .with_events(events)
        .start();
    next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await;

    let outcome = server
        .hub
        .send(SendWithAck {
            user_id: "eve".into(),
            envelope: Envelope::system_text("confirm me").with_id("e2e"),
            options: AckOptions::default(),
        })
        .await
        .expect("hub");
    assert!(outcome.success, "{outcome:?}");
    assert_eq!(outcome.status, MessageStatus::Acked);
    assert!(
        outcome.total_retries >= 1,
        "the refused delivery was not acked, so the server resent it: {outcome:?}"
    );
    for _ in 0..2 {
        assert_eq!(next_message(&mut ev).await.id.as_str(), "e2e");
    }
}

#[actix_web::test]
async fn two_senders_with_the_same_id_both_reach_the_application_through_the_hub() {
    let mut config = fast_config();
    // An ack the server did not take would show as a resend within a second.
    config.ack.ack_timeout_ms = 250;
    config.retry.base_delay_ms = 20;
    config.retry.max_delay_ms = 50;
    config.retry.max_retries = 3;
    let server = start(config).await;
    let url = format!("ws://{}/ws", server.addr);
    let (_carol, mut ev) = connected_client(fast_client(&url, "carol")).await;
    let (alice, _alice_ev) = connected_client(fast_client(&url, "alice")).await;
    let (bob, _bob_ev) = connected_client(fast_client(&url, "bob")).await;

    for (sender, content) in [(&alice, "from alice"), (&bob, "from bob")] {
        let receipt = sender
            .send(SendWithReceipt::new(
                OutgoingMessage::text_to("carol", content).with_id("1"),
            ))
            .await
            .expect("client")
            .expect("a receipt");
        assert!(receipt.is_accepted(), "{receipt:?}");
    }
    let mut delivered = Vec::new();
    while delivered.len() < 2 {
        let m = next_message(&mut ev).await;
        assert!(m.require_ack, "{m:?}");
        delivered.push((m.from.to_string(), m.id.to_string(), m.content));
    }
    delivered.sort();
    assert_eq!(
        delivered,
        [
            ("alice".to_owned(), "1".to_owned(), "from alice".to_owned()),
            ("bob".to_owned(), "1".to_owned(), "from bob".to_owned()),
        ],
        "bob's 1 is not a duplicate of alice's 1"
    );
    // Both were confirmed: no resend (which the server makes after the ack timeout for a
    // delivery still unconfirmed, e.g. after an ambiguous ack) and no error frame.
    assert_no_ev(&mut ev, std::time::Duration::from_millis(1_200), |e| {
        matches!(e, Ev::Frame(f) if matches!(f.kind, FrameKind::Message | FrameKind::Error))
            || matches!(e, Ev::Message(_))
    })
    .await;
}

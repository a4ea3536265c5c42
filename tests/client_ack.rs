//! Acknowledgements and duplicates. Most ack tests use a fake server (a bare actix-ws route)
//! that sends `require_ack` frames and reads back exactly what the client answers; the last
//! one checks that the real server's ack tracker sees the client's ack. The duplicate test
//! runs through the real hub.

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
    json!({"id": id, "type": "text", "from": "sys", "to": "al", "content": content,
           "require_ack": true, "seq_no": 1, "source": "live"})
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
    assert_eq!(conn.next_text().await, json!({"type": "ack", "id": "r2"}));
    for id in ["r1", "r2", "p1"] {
        assert_eq!(next_message(&mut ev).await.id.as_str(), id);
    }

    // The server resends r2 (its ack was "lost"): dropped, and acked again.
    conn.send(reliable("r2", "take")).await;
    assert_eq!(conn.next_text().await, json!({"type": "ack", "id": "r2"}));
    // The refused r1 comes again: delivered again (not a duplicate), and this time the
    // application takes it.
    conn.send(reliable("r1", "now take")).await;
    assert_eq!(conn.next_text().await, json!({"type": "ack", "id": "r1"}));
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
    assert_eq!(next_message(&mut ev).await.id.as_str(), "m2");
    assert!(client
        .send(Acknowledge { id: "m2".into() })
        .await
        .expect("client"));
    assert_eq!(
        conn.next_text().await,
        json!({"type": "ack", "id": "m2"}),
        "nothing was acked before the application asked"
    );
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

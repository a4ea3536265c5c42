//! When the client stops for good: a kick (4500), a replacement (4002), a refused upgrade,
//! its own close; and the typed errors of a closed or full client.

mod client_common;
mod common;

use std::time::Duration;

use actix_wsc::client::*;
use actix_wsc::handlers::SessionConnected;
use actix_wsc::hub::{KickUser, Subscribe};
use actix_wsc::protocol::CloseCode;
use client_common::*;
use common::*;

fn url_of(server: &TestServer) -> String {
    format!("ws://{}/ws", server.addr)
}

#[actix_web::test]
async fn a_kick_stops_the_client_without_reconnecting() {
    let server = start(fast_config()).await;
    let (connects, mut connects_rx) = collector::<SessionConnected>();
    server.hub.send(Subscribe(connects)).await.expect("hub");
    let mut config = fast_client(&url_of(&server), "kim");
    config.min_reconnect_ms = 1;
    config.max_reconnect_ms = 5;
    let (client, mut ev) = connected_client(config).await;
    wait_for(&mut connects_rx, |e| e.info.user_id.as_str() == "kim").await;

    let n = server
        .hub
        .send(KickUser {
            user_id: "kim".into(),
            reason: "bye".into(),
        })
        .await
        .expect("hub");
    assert_eq!(n, 1);
    match next_ev(&mut ev, |e| matches!(e, Ev::Disconnected(_))).await {
        Ev::Disconnected(d) => {
            assert_eq!(d.code, Some(CloseCode::Kicked));
            assert!(!d.will_reconnect);
            assert_eq!(d.retry_in, None);
        }
        _ => unreachable!(),
    }
    match next_ev(&mut ev, |e| matches!(e, Ev::Closed(_))).await {
        Ev::Closed(StopReason::ServerClosed { code, .. }) => assert_eq!(code, CloseCode::Kicked),
        other => panic!("expected Closed after a kick, got {other:?}"),
    }
    assert_eq!(
        client.send(GetState).await.expect("client"),
        ClientState::Closed
    );
    // With reconnect delays of a few ms, a reconnect would show up well within this.
    let again = tokio::time::timeout(Duration::from_millis(300), async {
        wait_for(&mut connects_rx, |e| e.info.user_id.as_str() == "kim").await
    })
    .await;
    assert!(again.is_err(), "the client reconnected after a kick");
}

#[actix_web::test]
async fn sending_on_a_closed_client_gives_the_message_back() {
    let server = start(fast_config()).await;
    let (client, mut ev) = connected_client(fast_client(&url_of(&server), "cleo")).await;
    client.send(Close).await.expect("client");
    match next_ev(&mut ev, |e| matches!(e, Ev::Closed(_))).await {
        Ev::Closed(reason) => assert_eq!(reason, StopReason::ClientClosed),
        _ => unreachable!(),
    }
    let msg = OutgoingMessage::text_to("x", "too late");
    match client
        .send(SendMessage::new(msg.clone()))
        .await
        .expect("client")
    {
        Err(SendError::Closed(back)) => assert_eq!(back, msg),
        other => panic!("expected SendError::Closed, got {other:?}"),
    }
    match client
        .send(SendWithReceipt::new(msg.clone()))
        .await
        .expect("client")
    {
        Err(ReceiptError::Closed(back)) => assert_eq!(back.content, "too late"),
        other => panic!("expected ReceiptError::Closed, got {other:?}"),
    }
    assert!(matches!(
        client.send(Join::new("g")).await.expect("client"),
        Err(ReceiptError::Closed(_))
    ));
}

#[actix_web::test]
async fn close_writes_what_was_queued_first() {
    let server = start(fast_config()).await;
    let (_peer, mut peer_ev) = connected_client(fast_client(&url_of(&server), "pat")).await;
    let (client, mut ev) = connected_client(fast_client(&url_of(&server), "cleo")).await;
    for n in 0..20 {
        client
            .send(SendMessage::new(OutgoingMessage::text_to(
                "pat",
                format!("m{n}"),
            )))
            .await
            .expect("client")
            .expect("sent");
    }
    client.send(Close).await.expect("client");
    assert_eq!(
        client.send(GetState).await.expect("client"),
        ClientState::Closed,
        "Close answers once the client is closed"
    );
    for n in 0..20 {
        assert_eq!(next_message(&mut peer_ev).await.content, format!("m{n}"));
    }
    match next_ev(&mut ev, |e| {
        matches!(e, Ev::Disconnected(_) | Ev::SendFailed(_))
    })
    .await
    {
        Ev::Disconnected(d) => {
            assert_eq!(
                d.code,
                Some(CloseCode::Normal),
                "the server answered the close"
            );
            assert!(!d.will_reconnect);
        }
        other => panic!("nothing may fail on a clean close: {other:?}"),
    }
}

#[actix_web::test]
async fn a_replaced_session_stops() {
    let server = start(fast_config()).await;
    let mut config = fast_client(&url_of(&server), "rita");
    config.client_id = Some("rita-1".into());
    let (old, mut old_ev) = connected_client(config.clone()).await;
    let (_new, _new_ev) = connected_client(config).await;
    match next_ev(&mut old_ev, |e| matches!(e, Ev::Closed(_))).await {
        Ev::Closed(StopReason::ServerClosed { code, .. }) => assert_eq!(code, CloseCode::Replaced),
        other => panic!("expected Closed with 4002, got {other:?}"),
    }
    assert_eq!(
        old.send(GetState).await.expect("client"),
        ClientState::Closed
    );
}

#[actix_web::test]
async fn a_full_queue_gives_the_message_back() {
    let mut config = fast_client(&format!("ws://{}/ws", dead_addr()), "fred");
    config.send_queue_capacity = 2;
    config.close_timeout_ms = 100;
    let (client, mut ev) = start_client(config);
    let first = OutgoingMessage::text_to("x", "1");
    let second = OutgoingMessage::text_to("x", "2");
    let third = OutgoingMessage::text_to("x", "3");
    for m in [first, second] {
        client
            .send(SendMessage::new(m))
            .await
            .expect("client")
            .expect("queued while connecting");
    }
    match client
        .send(SendMessage::new(third.clone()))
        .await
        .expect("client")
    {
        Err(SendError::Full(back)) => assert_eq!(back, third),
        other => panic!("expected SendError::Full, got {other:?}"),
    }
    assert_eq!(
        client.send(GetState).await.expect("client"),
        ClientState::Connecting
    );
    // Closing with no server: the queued messages come back as SendFailed, in order.
    client.send(Close).await.expect("client");
    for content in ["1", "2"] {
        match next_ev(&mut ev, |e| matches!(e, Ev::SendFailed(_))).await {
            Ev::SendFailed(f) => {
                assert_eq!(f.reason, SendFailure::Closed);
                assert_eq!(f.message.map(|m| m.content), Some(content.to_owned()));
            }
            _ => unreachable!(),
        }
    }
    next_ev(&mut ev, |e| {
        matches!(e, Ev::Closed(StopReason::ClientClosed))
    })
    .await;
}

#[actix_web::test]
async fn a_refused_upgrade_stops_the_client() {
    let fake = start_fake().await;
    let config = fast_client(&format!("ws://{}/forbidden", fake.addr), "zed");
    let (_client, mut ev) = start_client(config);
    match next_ev(&mut ev, |e| matches!(e, Ev::ConnectFailed(_))).await {
        Ev::ConnectFailed(f) => {
            assert_eq!(f.error, DialError::Refused(403));
            assert!(!f.will_reconnect);
        }
        _ => unreachable!(),
    }
    match next_ev(&mut ev, |e| matches!(e, Ev::Closed(_))).await {
        Ev::Closed(reason) => assert_eq!(reason, StopReason::Refused(DialError::Refused(403))),
        _ => unreachable!(),
    }
}

//! The client against the real server: a message from one client to another, receipts,
//! groups, and what the welcome tells the client.

mod client_common;
mod common;

use actix_wsc::client::*;
use actix_wsc::protocol::{ErrorCode, MessageType};
use client_common::*;
use common::*;

#[actix_web::test]
async fn a_message_goes_from_one_client_to_another() {
    let server = start(fast_config()).await;
    let url = server.ws_url("").trim_end_matches('?').to_owned();
    let (alice, mut alice_ev) = connected_client(fast_client(&url, "alice")).await;
    let (_bob, mut bob_ev) = connected_client(fast_client(&url, "bob")).await;

    let msg = OutgoingMessage::text_to("bob", "hello bob").with_data(serde_json::json!({"k": 1}));
    let id = alice
        .send(SendMessage::new(msg))
        .await
        .expect("client")
        .expect("accepted for sending");
    match next_ev(&mut alice_ev, |e| matches!(e, Ev::Sent(_))).await {
        Ev::Sent(sent) => assert_eq!(sent, id),
        _ => unreachable!(),
    }

    let got = next_message(&mut bob_ev).await;
    assert_eq!(got.id, id, "the client-assigned id travels end to end");
    assert_eq!(got.content, "hello bob");
    assert_eq!(got.from.as_str(), "alice");
    assert_eq!(got.msg_type, MessageType::Text);
    assert_eq!(got.data, Some(serde_json::json!({"k": 1})));
    assert_eq!(got.seq_no, Some(1));
    assert!(!got.require_ack);
}

#[actix_web::test]
async fn receipts_report_accepted_and_failed() {
    let server = start(fast_config()).await;
    let url = server.ws_url("").trim_end_matches('?').to_owned();
    let (alice, _alice_ev) = connected_client(fast_client(&url, "alice")).await;
    let (_bob, mut bob_ev) = connected_client(fast_client(&url, "bob")).await;

    let receipt = alice
        .send(SendWithReceipt::new(OutgoingMessage::text_to(
            "bob", "sure?",
        )))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(receipt.is_accepted(), "{receipt:?}");
    let got = next_message(&mut bob_ev).await;
    assert_eq!(got.id, receipt.id);
    assert!(
        got.require_ack,
        "a reliable message asks its recipient for an ack"
    );

    let receipt = alice
        .send(SendWithReceipt::new(OutgoingMessage::text_to_group(
            "no-such-group",
            "hello?",
        )))
        .await
        .expect("client")
        .expect("a receipt");
    match receipt.status {
        ReceiptStatus::Failed(e) => assert_eq!(e.error_code(), Some(ErrorCode::UnknownGroup)),
        other => panic!("expected a failed receipt, got {other:?}"),
    }
}

#[actix_web::test]
async fn joined_groups_receive_group_messages() {
    let server = start(fast_config()).await;
    let url = server.ws_url("").trim_end_matches('?').to_owned();
    let (alice, _alice_ev) = connected_client(fast_client(&url, "alice")).await;
    let (bob, mut bob_ev) = connected_client(fast_client(&url, "bob")).await;

    let receipt = bob
        .send(Join::new("room"))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(receipt.is_accepted());
    let receipt = alice
        .send(SendWithReceipt::new(OutgoingMessage::text_to_group(
            "room", "hi room",
        )))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(receipt.is_accepted());
    let got = next_message(&mut bob_ev).await;
    assert_eq!(got.content, "hi room");
    assert_eq!(got.group.as_ref().map(|g| g.as_str()), Some("room"));

    let receipt = bob
        .send(Leave::new("room"))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(receipt.is_accepted());
    let receipt = alice
        .send(SendWithReceipt::new(OutgoingMessage::text_to_group(
            "room", "anyone?",
        )))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(
        !receipt.is_accepted(),
        "bob left, so nobody took it: {receipt:?}"
    );
}

#[actix_web::test]
async fn the_welcome_fills_the_connected_event_and_state() {
    let server = start(fast_config()).await;
    let url = server.ws_url("").trim_end_matches('?').to_owned();
    let mut config = fast_client(&url, "carol");
    config.client_id = Some("carol-phone".into());
    config.user_type = Some(actix_wsc::protocol::UserType::Agent);
    let (client, mut ev) = start_client(config);
    let connected = match next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await {
        Ev::Connected(c) => c,
        _ => unreachable!(),
    };
    assert_eq!(connected.client_id.as_str(), "carol-phone");
    assert_eq!(connected.user_id.as_str(), "carol");
    assert!(!connected.reconnected);
    assert_eq!(connected.welcome["protocol"], "wsc.v1");
    assert_eq!(
        client.send(GetState).await.expect("client"),
        ClientState::Connected
    );
    let info = server
        .hub
        .send(actix_wsc::hub::GetSession {
            client_id: "carol-phone".into(),
        })
        .await
        .expect("hub")
        .expect("the session is registered");
    assert_eq!(info.user_type, actix_wsc::protocol::UserType::Agent);
}

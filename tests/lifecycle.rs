//! Kick (4500), replacement by client id (4002), disconnecting one client, and the
//! lifecycle events applications subscribe to.

mod common;

use actix_wsc::handlers::{
    DisconnectReason, MessageReceived, SessionConnected, SessionDisconnected,
};
use actix_wsc::hub::{DisconnectClient, GetSession, GetStats, KickUser, SetMetadata, Subscribe};
use actix_wsc::protocol::CloseCode;
use common::*;
use serde_json::json;

#[actix_web::test]
async fn kick_closes_every_session_of_the_user_with_4500() {
    let server = start(fast_config()).await;
    let (mut k1, _) = connect(&server, "user_id=k").await;
    let (mut k2, _) = connect(&server, "user_id=k").await;
    let (mut other, _) = connect(&server, "user_id=o").await;
    let n = server
        .hub
        .send(KickUser {
            user_id: "k".into(),
            reason: "bye".into(),
        })
        .await
        .expect("hub");
    assert_eq!(n, 2);
    assert_eq!(k1.expect_close().await, Some(4500));
    assert_eq!(k2.expect_close().await, Some(4500));
    other.assert_quiet().await;
}

#[actix_web::test]
async fn same_client_id_replaces_the_old_session_with_4002() {
    let server = start(fast_config()).await;
    let (gone_tx, mut gone) = collector::<SessionDisconnected>();
    server.hub.send(Subscribe(gone_tx)).await.expect("hub");
    let (mut old, _) = connect(&server, "user_id=r&client_id=phone").await;
    let (mut new, _) = connect(&server, "user_id=r&client_id=phone").await;
    assert_eq!(old.expect_close().await, Some(4002));
    let ev = wait_for(&mut gone, |e| e.client_id.as_str() == "phone").await;
    assert!(matches!(
        ev.reason,
        DisconnectReason::ServerClosed(CloseCode::Replaced, _)
    ));
    // The old session's disconnect did not remove the new one.
    let (mut sender, _) = connect(&server, "user_id=s").await;
    sender
        .send_json(&json!({"type":"text","to":"r","content":"to the new one"}))
        .await;
    assert_eq!(new.next_json().await["content"], "to the new one");
    let stats = server.hub.send(GetStats).await.expect("hub");
    assert_eq!(stats.websocket_count, 2);
    assert_eq!(stats.online_users, 2);
}

#[actix_web::test]
async fn disconnect_client_and_metadata() {
    let server = start(fast_config()).await;
    let (mut a, _) = connect(&server, "user_id=a&client_id=a-1").await;
    assert!(server
        .hub
        .send(SetMetadata {
            client_id: "a-1".into(),
            key: "dept".into(),
            value: json!("sales"),
        })
        .await
        .expect("hub"));
    let info = server
        .hub
        .send(GetSession {
            client_id: "a-1".into(),
        })
        .await
        .expect("hub")
        .expect("session exists");
    assert_eq!(info.metadata["dept"], "sales");
    assert!(server
        .hub
        .send(DisconnectClient {
            client_id: "a-1".into(),
            code: CloseCode::Policy,
            reason: "token revoked".into(),
        })
        .await
        .expect("hub"));
    assert_eq!(a.expect_close().await, Some(1008));
    assert!(!server
        .hub
        .send(DisconnectClient {
            client_id: "nope".into(),
            code: CloseCode::Normal,
            reason: String::new(),
        })
        .await
        .expect("hub"));
}

#[actix_web::test]
async fn lifecycle_events_reach_subscribed_actors() {
    let server = start(fast_config()).await;
    let (c_tx, mut connected) = collector::<SessionConnected>();
    let (d_tx, mut disconnected) = collector::<SessionDisconnected>();
    let (m_tx, mut received) = collector::<MessageReceived>();
    server.hub.send(Subscribe(c_tx)).await.expect("hub");
    server.hub.send(Subscribe(d_tx)).await.expect("hub");
    server.hub.send(Subscribe(m_tx)).await.expect("hub");
    let (mut a, _) = connect(&server, "user_id=ev&client_id=ev-1&user_type=vip").await;
    let ev = wait_for(&mut connected, |_| true).await;
    assert_eq!(ev.info.client_id.as_str(), "ev-1");
    assert_eq!(ev.info.user_type, actix_wsc::protocol::UserType::Vip);
    a.send_json(&json!({"id":"r1","type":"text","to":"ev","content":"note to self"}))
        .await;
    let ev = wait_for(&mut received, |_| true).await;
    assert_eq!(ev.envelope.id.as_str(), "r1");
    assert_eq!(ev.envelope.content, "note to self");
    assert_eq!(ev.client_id.as_str(), "ev-1");
    a.close().await;
    let ev = wait_for(&mut disconnected, |_| true).await;
    assert_eq!(ev.client_id.as_str(), "ev-1");
    assert_eq!(ev.reason, DisconnectReason::ClientClosed(Some(1000)));
}

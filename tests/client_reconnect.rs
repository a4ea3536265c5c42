//! Reconnecting: after a server restart on the same port (the queue written once, in order),
//! group membership restored after a drop, the assigned client id reused.

mod client_common;
mod common;

use actix::Actor;
use actix_wsc::client::*;
use actix_wsc::handlers::MessageReceived as HubMessageReceived;
use actix_wsc::hub::{DisconnectClient, Dispatch, Hub, Shutdown, Subscribe};
use actix_wsc::protocol::{CloseCode, Envelope};
use client_common::*;
use common::*;

fn url_of(server: &TestServer) -> String {
    format!("ws://{}/ws", server.addr)
}

#[actix_web::test]
async fn reconnects_after_a_restart_and_sends_the_queue_once_in_order() {
    let first = start(fast_config()).await;
    let addr = first.addr;
    let (alice, mut ev) = connected_client(fast_client(&url_of(&first), "alice")).await;

    // The server goes away (1001), then stops listening.
    first
        .hub
        .send(Shutdown { timeout: WAIT })
        .await
        .expect("hub");
    match next_ev(&mut ev, |e| matches!(e, Ev::Disconnected(_))).await {
        Ev::Disconnected(d) => {
            assert_eq!(d.code, Some(CloseCode::GoingAway));
            assert!(d.will_reconnect);
            assert!(d.retry_in.is_some());
        }
        _ => unreachable!(),
    }
    first.handle.stop(true).await;

    // Sent while there is no server: queued.
    let mut ids = Vec::new();
    for n in 1..=3 {
        let msg = OutgoingMessage::text_to("alice", format!("queued {n}"));
        ids.push(
            alice
                .send(SendMessage::new(msg))
                .await
                .expect("client")
                .expect("queued"),
        );
    }
    assert_eq!(
        alice.send(GetState).await.expect("client"),
        ClientState::Reconnecting
    );

    // A new server on the same port, watched from the hub's side.
    let hub = Hub::new(fast_config()).start();
    let (tx, mut seen_by_hub) = collector::<HubMessageReceived>();
    hub.send(Subscribe(tx)).await.expect("hub");
    let _second = client_common::start_on(addr, hub).await;

    match next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await {
        Ev::Connected(c) => assert!(c.reconnected),
        _ => unreachable!(),
    }
    for id in &ids {
        let got = wait_for(&mut seen_by_hub, |_| true).await;
        assert_eq!(&got.envelope.id, id, "the server got the queue in order");
        let echoed = next_message(&mut ev).await;
        assert_eq!(&echoed.id, id, "and routed it back in order");
    }
    // Nothing was written twice: the next message the server sees is a fresh one.
    let marker = alice
        .send(SendMessage::new(OutgoingMessage::text_to(
            "alice", "marker",
        )))
        .await
        .expect("client")
        .expect("sent");
    let got = wait_for(&mut seen_by_hub, |_| true).await;
    assert_eq!(got.envelope.id, marker, "no duplicate of a queued message");
}

#[actix_web::test]
async fn groups_are_rejoined_after_a_reconnect() {
    let server = start(fast_config()).await;
    let mut config = fast_client(&url_of(&server), "gina");
    config.client_id = Some("gina-1".into());
    config.groups = vec!["lobby".into()];
    let (client, mut ev) = connected_client(config).await;
    let receipt = client
        .send(Join::new("room"))
        .await
        .expect("client")
        .expect("a receipt");
    assert!(receipt.is_accepted());
    let report = server
        .hub
        .send(Dispatch::to_group(
            "lobby",
            Envelope::system_text("in lobby"),
        ))
        .await
        .expect("hub");
    assert_eq!(
        report.delivered, 1,
        "configured groups are joined on connect"
    );
    assert_eq!(next_message(&mut ev).await.content, "in lobby");

    // 4001 means "reconnect"; the server forgets the session's groups.
    assert!(server
        .hub
        .send(DisconnectClient {
            client_id: "gina-1".into(),
            code: CloseCode::HeartbeatTimeout,
            reason: "test".into(),
        })
        .await
        .expect("hub"));
    match next_ev(&mut ev, |e| matches!(e, Ev::Disconnected(_))).await {
        Ev::Disconnected(d) => {
            assert_eq!(d.code, Some(CloseCode::HeartbeatTimeout));
            assert!(d.will_reconnect);
        }
        _ => unreachable!(),
    }
    next_ev(&mut ev, |e| matches!(e, Ev::Connected(c) if c.reconnected)).await;
    // Two rejoins (lobby, room), each answered with a receipt.
    for _ in 0..2 {
        next_ev(
            &mut ev,
            |e| matches!(e, Ev::Frame(f) if f.kind == FrameKind::Receipt),
        )
        .await;
    }
    for group in ["lobby", "room"] {
        let report = server
            .hub
            .send(Dispatch::to_group(group, Envelope::system_text(group)))
            .await
            .expect("hub");
        assert_eq!(report.delivered, 1, "{group} rejoined");
        assert_eq!(next_message(&mut ev).await.content, group);
    }
}

#[actix_web::test]
async fn the_assigned_client_id_is_reused_on_reconnect() {
    let server = start(fast_config()).await;
    let (_client, mut ev) = start_client(fast_client(&url_of(&server), "ivan"));
    let first = match next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await {
        Ev::Connected(c) => c.client_id,
        _ => unreachable!(),
    };
    assert!(server
        .hub
        .send(DisconnectClient {
            client_id: first.clone(),
            code: CloseCode::SlowConsumer,
            reason: "test".into(),
        })
        .await
        .expect("hub"));
    let second = match next_ev(&mut ev, |e| matches!(e, Ev::Connected(_))).await {
        Ev::Connected(c) => c,
        _ => unreachable!(),
    };
    assert!(second.reconnected);
    assert_eq!(second.client_id, first);
}

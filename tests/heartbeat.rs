//! Server pings and the 4001 heartbeat timeout.

mod common;

use std::time::{Duration, Instant};

use actix_wsc::handlers::{DisconnectReason, SessionDisconnected};
use actix_wsc::hub::Subscribe;
use actix_wsc::protocol::CloseCode;
use common::*;

fn short_heartbeat() -> actix_wsc::config::Config {
    let mut config = fast_config();
    config.session.heartbeat_interval_ms = 100;
    config.session.client_timeout_ms = 400;
    config
}

#[actix_web::test]
async fn silent_client_is_closed_with_4001() {
    let server = start(short_heartbeat()).await;
    let (tx, mut events) = collector::<SessionDisconnected>();
    server.hub.send(Subscribe(tx)).await.expect("hub");
    let (mut c, _) = connect(&server, "user_id=silent").await;
    c.auto_pong = false;
    let started = Instant::now();
    let mut pings = 0;
    let code = loop {
        match c.next_within(WAIT).await {
            Some(Got::Ping) => pings += 1,
            Some(Got::Close(code)) => break code,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, Some(4001));
    assert!(
        pings >= 2,
        "the server pinged every heartbeat interval ({pings})"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before client_timeout_ms"
    );
    let ev = wait_for(&mut events, |e| e.user_id.as_str() == "silent").await;
    assert!(matches!(
        ev.reason,
        DisconnectReason::ServerClosed(CloseCode::HeartbeatTimeout, _)
    ));
}

#[actix_web::test]
async fn pong_answering_client_stays_connected() {
    let server = start(short_heartbeat()).await;
    let (mut c, _) = connect(&server, "user_id=lively").await;
    c.auto_pong = true; // the helper answers every ping with a pong
    let mut other = connect(&server, "user_id=other").await.0;
    other.auto_pong = false;
    // Wait for the other, silent client to be closed (an event that takes well over
    // client_timeout_ms) while `c` reads and answers pings.
    loop {
        tokio::select! {
            got = other.next_within(WAIT) => match got {
                Some(Got::Close(code)) => {
                    assert_eq!(code, Some(4001));
                    break;
                }
                Some(Got::Ping) => {}
                x => panic!("unexpected {x:?}"),
            },
            got = c.next_within(WAIT) => panic!("the pong-answering client got {got:?}"),
        }
    }
    // The client that answered pings is still served.
    c.assert_alive().await;
}

#[actix_web::test]
async fn application_pings_keep_the_session_alive() {
    let server = start(short_heartbeat()).await;
    let (mut c, _) = connect(&server, "user_id=pinger").await;
    c.auto_pong = false;
    let started = Instant::now();
    // Twice client_timeout_ms of JSON pings only (one per server heartbeat); the server's
    // WebSocket pings go unanswered.
    while started.elapsed() < Duration::from_millis(800) {
        match c.next_within(WAIT).await {
            Some(Got::Ping) => {}
            x => panic!("expected a server ping, got {x:?}"),
        }
        c.send_text(r#"{"type":"ping"}"#).await;
        loop {
            match c.next_within(WAIT).await {
                Some(Got::Json(v)) if v["type"] == "pong" => break,
                Some(Got::Ping) => continue,
                x => panic!("unexpected {x:?}"),
            }
        }
    }
}
